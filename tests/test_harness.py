"""Self-checks of the harness: these need no registryfs binary.

If one of these fails, the failures elsewhere say nothing about registryfs.
"""

import hashlib
import os

import pytest

from harness import imagegen as ig
from harness import tools
from harness.auth import Htpasswd, TokenServer
from harness.regclient import RegistryClient, RegistryHTTPError
from harness.registry import _port_open
from harness.samples import N_REPOS, N_TAGS, build_demo


def test_registry_stop_restart_same_port_and_storage(registry_factory, tmp_path):
    reg = registry_factory()
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_simple(store, "restart")
    with RegistryClient(reg.url) as c:
        c.push(store, "r/app", "v1", img)
    port = reg.port
    reg.stop()
    assert not reg.running and not _port_open(port)
    r = tools.run(["curl", "-sS", "-m", "2", reg.url + "/v2/"])
    assert r.returncode != 0, "registry still answers after stop"
    reg.start()
    assert reg.port == port
    with RegistryClient(reg.url) as c:
        body, _, digest = c.get_manifest("r/app", "v1")
    assert body == img.manifest and digest == img.digest


def test_generator_is_deterministic(tmp_path):
    def gen(d):
        s = ig.BlobStore(d)
        base = ig.make_layer(s, "det/base")
        a = ig.make_image(s, "det/a", [base, ig.make_large_layer(s, "det/big", 3)])
        b = ig.make_multiarch(s, "det/m", fmt="docker", base=[base])
        return a, b

    a1, b1 = gen(tmp_path / "one")
    a2, b2 = gen(tmp_path / "two")
    assert (a1.digest, b1.digest) == (a2.digest, b2.digest)
    assert a1.layers == a2.layers
    # the files hold what their names say
    s = ig.BlobStore(tmp_path / "one")
    for b in a1.blobs + b1.blobs:
        with open(s.path(b.digest), "rb") as f:
            data = f.read()
        assert len(data) == b.size and ig.sha256_digest(data) == b.digest
    big = a1.layers[1]
    assert big.size > 3 * 1024 * 1024  # incompressible


def test_sample_digests_are_stable_across_runs(samples, tmp_path):
    """A second, independent generation yields the session's digests."""
    from harness.samples import build_samples
    again = build_samples(tmp_path / "again", big_mib=1)
    for name in ("oci", "docker", "multi", "multidocker", "deep", "manytags"):
        assert again[name].digest == samples[name].digest, name


@pytest.mark.parametrize("name", ["oci", "docker", "multi", "multidocker", "deep", "big"])
def test_pushed_manifest_is_what_skopeo_sees(registry, samples, name):
    ref = samples[name]
    r = tools.skopeo("inspect", "--raw", "--tls-verify=false",
                     "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag))
    assert r.returncode == 0, r
    assert r.stdout.encode() == ref.obj.manifest


@pytest.mark.parametrize("name", ["oci", "docker", "multi", "multidocker"])
def test_write_dir_equals_skopeo_copy_all(samples, skopeo_dir, tmp_path, name):
    ref = samples[name]
    mine = ig.write_dir(samples.store, ref.obj, str(tmp_path / "mine"))
    r = tools.run(["diff", "-r", skopeo_dir(ref), mine])
    assert r.returncode == 0, r
    assert sorted(os.listdir(mine)) == sorted(ig.dir_files(ref.obj))


def test_write_dir_platform_equals_skopeo_single(samples, skopeo_dir, tmp_path):
    ref = samples["multi"]
    mine = ig.write_dir(samples.store, ref.obj, str(tmp_path / "arm"), platform=("linux", "arm64"))
    r = tools.run(["diff", "-r", skopeo_dir(ref, ("linux", "arm64")), mine])
    assert r.returncode == 0, r


def test_catalog_and_tags(client, samples):
    cat = client.catalog()
    assert set(samples.repos) <= set(cat)
    assert len([c for c in cat if c.startswith("bulk/")]) == N_REPOS
    # distribution 2.8 pages the catalog at 100 without ?n=
    r = client.request("GET", "/v2/_catalog")
    assert len(r.json()["repositories"]) == 100 and 'rel="next"' in r.headers["Link"]
    assert sorted(client.tags("manytags/app")) == ["t%03d" % i for i in range(N_TAGS)]


def test_access_log_counts_blob_gets(registry, client, samples):
    ref = samples["oci"]
    layer = ref.obj.layers[-1]
    mark = registry.mark()
    data = client.get_blob(ref.repo, layer.digest)
    assert ig.sha256_digest(data) == layer.digest
    gets = registry.blob_gets(layer.digest, since=mark)
    assert len(gets) == 1 and gets[0].status == 200


def test_corrupting_proxy(registry, client, samples, proxy_factory):
    ref = samples["oci"]
    p = proxy_factory(registry.host, corrupt_blobs=True)
    with RegistryClient(p.url) as pc:
        body, _, _ = pc.get_manifest(ref.repo, ref.tag)
        assert body == ref.obj.manifest               # manifests pass untouched
        layer = ref.obj.layers[0]
        data = pc.get_blob(ref.repo, layer.digest)
    assert len(data) == layer.size
    assert ig.sha256_digest(data) != layer.digest
    assert p.corrupted == [layer.digest]


def test_paginating_proxy(registry, samples, proxy_factory):
    p = proxy_factory(registry.host, paginate=25)
    with RegistryClient(p.url) as pc:
        tags = pc.tags("manytags/app")
        cat = pc.catalog()
    assert sorted(tags) == samples.tags_of("manytags/app")
    assert len([q for q in p.requests if "/tags/list" in q[1]]) == (N_TAGS + 24) // 25
    assert set(samples.repos) <= set(cat)
    assert len([q for q in p.requests if "_catalog" in q[1]]) >= 5


def test_stalling_proxy_times_out(registry, samples, proxy_factory):
    p = proxy_factory(registry.host, stall_blobs=True)
    ref = samples["oci"]
    r = tools.run(["curl", "-sS", "-m", "1", "%s/v2/%s/blobs/%s" % (p.url, ref.repo,
                                                                    ref.obj.config.digest)])
    assert r.returncode == 28, r          # curl: operation timed out


def test_htpasswd_registry(registry_factory, tmp_path):
    auth = Htpasswd(tmp_path, {"alice": "wonderland"})
    reg = registry_factory(auth=auth)
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_simple(store, "auth/basic")
    with RegistryClient(reg.url, "alice", "wonderland") as c:
        c.push(store, "sec/app", "v1", img)
        assert c.get_manifest("sec/app", "v1")[0] == img.manifest
    with RegistryClient(reg.url) as anon:
        with pytest.raises(RegistryHTTPError) as e:
            anon.get_manifest("sec/app", "v1")
        assert e.value.status == 401


def test_token_registry(registry_factory, tmp_path):
    ts = TokenServer(tmp_path, users={"admin": "pw"}, denied=("private/",)).start()
    try:
        reg = registry_factory(auth=ts)
        store = ig.BlobStore(tmp_path / "blobs")
        img = ig.make_simple(store, "auth/token")
        with RegistryClient(reg.url, "admin", "pw") as c:
            c.push(store, "pub/app", "v1", img)
            c.push(store, "private/app", "v1", img)
        with RegistryClient(reg.url) as anon:
            assert anon.get_manifest("pub/app", "v1")[0] == img.manifest
            assert set(anon.catalog()) == {"pub/app", "private/app"}
            with pytest.raises(RegistryHTTPError) as e:
                anon.get_manifest("private/app", "v1")
            assert e.value.status == 401
        r = tools.skopeo("inspect", "--raw", "--tls-verify=false",
                         "docker://%s/pub/app:v1" % reg.host)
        assert r.returncode == 0 and r.stdout.encode() == img.manifest, r
    finally:
        reg.stop()
        ts.stop()


def test_demo_samples_push(registry_factory, tmp_path):
    s = build_demo(tmp_path / "demo")
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        s.push(c)
        assert sorted(c.catalog()) == s.repos


def test_keystream_matches_shake():
    ks = ig.KeyStream("x", 3 * ig.KeyStream.BLOCK + 5)
    parts = [ks.read(1000), ks.read(ig.KeyStream.BLOCK), ks.read(-1)]
    data = b"".join(parts)
    assert len(data) == 3 * ig.KeyStream.BLOCK + 5
    assert data[:ig.KeyStream.BLOCK] == hashlib.shake_256(b"x/0").digest(ig.KeyStream.BLOCK)
