"""Blob cache, request economy and failure handling: lazy fetch, one download for concurrent
readers, persistence across remounts, ttl, registry down, corruption, stalls, auth errors."""

import base64
import json
import os
import subprocess
import time

import pytest

from harness import imagegen as ig
from harness.auth import Htpasswd, TokenServer
from harness.regclient import RegistryClient
from harness.tools import (cache_path, errno_of, files_under, ls, ok, probe, read_bytes, run,
                           sha256sum, wait_for)



def test_blob_cache_layout(mnt, registry, samples):
    ref = samples["oci"]
    layer = ref.obj.layers[-1]
    data = read_bytes(mnt.path(ref.path, layer.hex))
    p = cache_path(mnt, registry.host, layer.digest)
    assert os.path.isfile(p), "not cached at %s; cache holds %s" % (p, files_under(mnt.cache_dir))
    with open(p, "rb") as f:
        assert f.read() == data == samples.store.read(layer.digest)


def test_blobs_are_fetched_lazily_and_once(mnt, registry, samples):
    ref = samples["docker"]
    layer = ref.obj.layers[-1]
    mark = registry.mark()
    ls(mnt.path(ref.path))
    assert registry.blob_gets(layer.digest, mark) == []
    assert not os.path.exists(cache_path(mnt, registry.host, layer.digest))
    assert sha256sum(mnt.path(ref.path, layer.hex)) == layer.hex
    assert sha256sum(mnt.path(ref.path, layer.hex)) == layer.hex
    ok(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"])     # force reads past page cache
    assert sha256sum(mnt.path(ref.path, layer.hex)) == layer.hex
    assert len(registry.blob_gets(layer.digest, mark)) == 1


def test_random_access_reads(mnt, samples):
    ref = samples["big"]
    layer = ref.obj.layers[0]
    p = mnt.path(ref.path, layer.hex)
    with open(samples.store.path(layer.digest), "rb") as f:
        for off in (layer.size // 2, 4096 * 1000 + 7, layer.size - 100):
            f.seek(off)
            want = f.read(100)
            r = run(["dd", "if=" + p, "bs=1", "skip=%d" % off, "count=100", "status=none"],
                    text=False)
            assert r.returncode == 0 and r.stdout == want, (off, r.returncode, r.stderr)
    r = run(["tail", "-c", "10", p], text=False)
    assert r.stdout == want[-10:]


def test_parallel_readers_share_one_download(mnt, registry, samples):
    ref = samples["big"]
    layer = ref.obj.layers[0]
    p = mnt.path(ref.path, layer.hex)
    ls(mnt.path(ref.path))
    mark = registry.mark()
    procs = [subprocess.Popen(["sha256sum", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(10)]
    outs = []
    for pr in procs:
        try:
            out, err = pr.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pr.kill()
            out, err = pr.communicate()
        outs.append((pr.returncode, out.split()[0] if out else "", err))
    assert all(o == (0, layer.hex, "") for o in outs), outs
    # one download: each part (default part_size 32 MiB; a short tail joins the last) is
    # fetched once
    step = 32 << 20
    parts = 1 if layer.size <= step + step // 2 else (layer.size + step // 2) // step
    gets = registry.blob_gets(layer.digest, mark)
    assert len(gets) == parts, "expected %d part GETs, got %d: %s" % (parts, len(gets), gets)
    assert all(g.status == 206 for g in gets) or parts == 1, gets


def test_cached_blobs_survive_remount(mount_factory, registry, samples):
    m = mount_factory(registry.url)
    ref = samples["multi"]
    mark = registry.mark()
    ok(["cat"] + [m.path(ref.path, b.hex) for b in ref.obj.blobs], text=False)
    first = {b.digest: len(registry.blob_gets(b.digest, mark, settle=0)) for b in ref.obj.blobs}
    assert set(first.values()) == {1}, first
    m.remount()
    mark2 = registry.mark()
    for b in ref.obj.blobs:
        assert sha256sum(m.path(ref.path, b.hex)) == b.hex
    again = registry.requests(mark2, method="GET", path_re=r"/blobs/")
    assert again == [], "blobs fetched again after remount: %s" % again


def test_listing_within_ttl_makes_no_request(mount_factory, registry, samples):
    m = mount_factory(registry.url, options={"ttl": 120})
    ref = samples["multi"]
    inst = ref.obj.images[0]

    def walk():
        ok(["ls", "-l", m.mountpoint, m.path("multi"), m.path("multi/app"), m.path(ref.path),
            m.path("bulk"), m.path("oci/app")])
        ok(["stat", m.path(ref.path, "manifest.json"), m.path(ref.path, inst.layers[0].hex),
            m.path(ref.path, inst.hex + ".manifest.json"), m.path("oci/app/v1/version")])

    mark0 = registry.mark()
    walk()
    assert registry.requests(mark0), "the first walk made no request (access log not parsed?)"
    mark = registry.mark()
    walk()
    time.sleep(1)
    walk()
    new = registry.requests(mark)
    assert new == [], "requests within ttl: %s" % new


def test_new_tags_and_repos_appear_after_ttl(mount_factory, registry_factory, tmp_path):
    reg = registry_factory()
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_simple(store, "ttl/app")
    with RegistryClient(reg.url) as c:
        c.push(store, "ttl/app", "v1", img)
        m = mount_factory(reg.url, options={"ttl": 1})
        assert ls(m.path("ttl", "app")) == ["v1"]
        assert ls(m.path("ttl")) == ["app"]
        c.push(store, "ttl/app", "v2", img)
        c.push(store, "ttl/second", "v1", img)
    time.sleep(2.5)
    assert ls(m.path("ttl", "app")) == ["v1", "v2"]
    assert ls(m.path("ttl")) == ["app", "second"]


@pytest.fixture
def small_private(registry_factory, tmp_path):
    """A private registry with one 3-layer image at p/app:v1."""
    reg = registry_factory()
    store = ig.BlobStore(tmp_path / "privblobs")
    img = ig.make_image(store, "private/app", [ig.make_layer(store, "private/%d" % i, files=2)
                                               for i in range(3)])
    with RegistryClient(reg.url) as c:
        c.push(store, "p/app", "v1", img)
    return reg, store, img


def test_registry_stopped_cached_readable_uncached_eio(mount_factory, small_private):
    reg, store, img = small_private
    m = mount_factory(reg.url)
    tag = m.path("p", "app", "v1")
    assert ls(tag) == sorted(ig.dir_files(img))
    cached, uncached = img.layers[0], img.layers[1]
    assert sha256sum(os.path.join(tag, cached.hex)) == cached.hex
    # reading a blob fetched the image's other blobs ahead: make them uncached again
    others = [cache_path(m, reg.host, b.digest) for b in img.blobs if b is not cached]
    assert wait_for(lambda: all(os.path.exists(p) for p in others), 30), others
    reg.stop()
    for p in others:
        os.unlink(p)
    assert sha256sum(os.path.join(tag, cached.hex)) == cached.hex
    t0 = time.monotonic()
    st = probe("read", os.path.join(tag, uncached.hex), timeout=60)
    took = time.monotonic() - t0
    assert st[0] == "EIO", st
    assert took < 10, "EIO took %.1f s" % took
    r = run(["cat", os.path.join(tag, img.layers[2].hex)], timeout=60)
    assert r.returncode != 0 and "Input/output error" in r.stderr, r
    assert r.elapsed < 10, r


def test_recovers_after_registry_restart(mount_factory, small_private):
    reg, store, img = small_private
    m = mount_factory(reg.url)
    tag = m.path("p", "app", "v1")
    ls(tag)
    reg.stop()
    assert errno_of("read", os.path.join(tag, img.layers[1].hex)) == "EIO"
    reg.start()
    assert sha256sum(os.path.join(tag, img.layers[1].hex)) == img.layers[1].hex


@pytest.mark.parametrize("which", ["small", "big"])
def test_corrupted_blob_is_eio_and_not_cached(mount_factory, registry, samples, proxy_factory,
                                              which):
    ref = samples["oci"] if which == "small" else samples["big"]
    layer = ref.obj.layers[-1]
    p = proxy_factory(registry.host, corrupt_blobs=True)
    m = mount_factory(p.url)
    f = m.path(ref.path, layer.hex)
    assert read_bytes(m.path(ref.path, "manifest.json")) == ref.obj.manifest
    r = run(["cat", f], text=False, timeout=120)
    assert r.returncode != 0 and b"Input/output error" in r.stderr, r
    assert layer.digest in p.corrupted
    # nothing kept for that digest, not even a partial or temp file of that size
    leftovers = [x for x in files_under(m.cache_dir) if layer.hex in x]
    assert leftovers == [], leftovers
    big = [(x, os.path.getsize(x)) for x in files_under(m.cache_dir)
           if os.path.getsize(x) >= layer.size]
    assert big == [], big
    # and a second read fails again rather than serving bad bytes
    assert errno_of("read", f) == "EIO"


def test_stalled_registry_gives_eio_not_a_hang(mount_factory, registry, samples, proxy_factory):
    p = proxy_factory(registry.host, stall_blobs=True)
    m = mount_factory(p.url)
    ref = samples["oci"]
    ls(m.path(ref.path))
    t0 = time.monotonic()
    st = probe("read", m.path(ref.path, ref.obj.layers[0].hex), timeout=120)
    took = time.monotonic() - t0
    assert st[0] == "EIO", st
    assert took <= 15, "stalled read took %.1f s" % took    # issue 10: bounded waits


def test_denied_repository_is_eacces(mount_factory, registry_factory, tmp_path):
    ts = TokenServer(tmp_path, users={"admin": "pw"}, denied=("private/",)).start()
    try:
        reg = registry_factory(auth=ts)
        store = ig.BlobStore(tmp_path / "blobs")
        img = ig.make_simple(store, "auth/eacces")
        with RegistryClient(reg.url, "admin", "pw") as c:
            c.push(store, "pub/app", "v1", img)
            c.push(store, "private/app", "v1", img)
        m = mount_factory(reg.url)
        # anonymous token flow works for the public repository
        assert read_bytes(m.path("pub/app/v1/manifest.json")) == img.manifest
        assert sha256sum(m.path("pub/app/v1", img.layers[0].hex)) == img.layers[0].hex
        st = probe("listdir", m.path("private/app"))
        assert st[0] == "EACCES", st
        st = probe("stat", m.path("private/app/v1"))
        assert st[0] == "EACCES", st
        r = run(["ls", m.path("private/app")])
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
    finally:
        reg.stop()
        ts.stop()


def test_authfile_credentials(mount_factory, registry_factory, tmp_path):
    """-o authfile= (containers auth.json) supplies Basic credentials (see --help)."""
    auth = Htpasswd(tmp_path, {"alice": "wonderland"})
    reg = registry_factory(auth=auth)
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_simple(store, "auth/basic")
    with RegistryClient(reg.url, "alice", "wonderland") as c:
        c.push(store, "sec/app", "v1", img)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {reg.host: {
        "auth": base64.b64encode(b"alice:wonderland").decode()}}}))
    m = mount_factory(reg.url, options={"authfile": str(authfile)})
    assert ls(m.path("sec")) == ["app"]
    assert read_bytes(m.path("sec/app/v1/manifest.json")) == img.manifest
    assert "wonderland" not in m.log()
