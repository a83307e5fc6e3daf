"""File contents: version, manifests, blobs, dir: equivalence with skopeo, platform selection,
round trips through skopeo, rsync stability."""

import os
import re
import time

import pytest

from harness import imagegen as ig
from harness.regclient import RegistryClient
from harness.tools import ls, ok, read_bytes, run, sha256sum, skopeo

FORMATS = ["oci", "docker", "multi", "multidocker"]


def test_version_file(mnt, samples):
    for name in FORMATS:
        ref = samples[name]
        assert read_bytes(mnt.path(ref.path, "version")) == b"Directory Transport Version: 1.1\n"
    r = ok(["stat", "-c", "%s", mnt.path(samples["oci"].path, "version")])
    assert r.stdout.strip() == "33"


@pytest.mark.parametrize("name", FORMATS + ["deep"])
def test_manifest_bytes_identical(mnt, registry, samples, name):
    ref = samples[name]
    got = read_bytes(mnt.path(ref.path, "manifest.json"))
    r = skopeo("inspect", "--raw", "--tls-verify=false",
               "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag))
    assert r.returncode == 0, r
    assert got == r.stdout.encode(), "manifest.json differs from the registry's bytes"
    assert ig.sha256_digest(got) == ref.digest


@pytest.mark.parametrize("name", ["multi", "multidocker"])
def test_instance_manifests_identical(mnt, client, samples, name):
    ref = samples[name]
    for img in ref.obj.images:
        got = read_bytes(mnt.path(ref.path, img.hex + ".manifest.json"))
        body, _, _ = client.get_manifest(ref.repo, img.digest)
        assert got == body == img.manifest


@pytest.mark.parametrize("name", FORMATS)
def test_every_file_hashes_to_its_name(mnt, samples, name):
    ref = samples[name]
    d = mnt.path(ref.path)
    files = [f for f in ls(d) if f not in ("version", "manifest.json")]
    assert files
    r = ok(["sha256sum"] + files, cwd=d)
    for line in r.stdout.splitlines():
        h, f = line.split(None, 1)
        assert h == f.split(".", 1)[0], line


def test_stat_sizes_come_from_descriptors_without_blob_fetch(mnt, registry, samples):
    ref = samples["multi"]
    mark = registry.mark()
    r = ok(["stat", "-c", "%n %s", "--"] + [f for f in sorted(ig.dir_files(ref.obj))],
           cwd=mnt.path(ref.path))
    sizes = dict(l.rsplit(" ", 1) for l in r.stdout.splitlines())
    want = {b.hex: b.size for b in ref.obj.blobs}
    want.update({i.hex + ".manifest.json": len(i.manifest) for i in ref.obj.images})
    want["manifest.json"] = len(ref.obj.manifest)
    want["version"] = 33
    assert {k: int(v) for k, v in sizes.items()} == want
    r2 = ok(["ls", "-l", mnt.path(ref.path)])
    assert r2.stdout.count("\n") >= len(want)
    assert registry.requests(mark, method="GET", path_re=r"/manifests/"), \
        "no manifest GET seen (access log not parsed?)"
    gets = registry.requests(mark, method="GET", path_re=r"/blobs/", settle=0)
    assert gets == [], "listing/stat fetched blobs: %s" % gets


@pytest.mark.parametrize("name", FORMATS + ["deep", "big"])
def test_diff_against_skopeo_copy_all(mnt, samples, skopeo_dir, name):
    ref = samples[name]
    r = run(["diff", "-r", skopeo_dir(ref), mnt.path(ref.path)], timeout=300)
    assert r.returncode == 0, r


def test_big_layer_bytes(mnt, samples):
    ref = samples["big"]
    layer = ref.obj.layers[0]
    p = mnt.path(ref.path, layer.hex)
    assert int(ok(["stat", "-c", "%s", p]).stdout) == layer.size
    assert sha256sum(p) == layer.hex
    r = run(["cmp", samples.store.path(layer.digest), p])
    assert r.returncode == 0, r


def test_cp_r_copy_is_a_valid_image(mnt, samples, skopeo_dir, tmp_path):
    ref = samples["multi"]
    dest = tmp_path / "copy"
    ok(["cp", "-r", mnt.path(ref.path), str(dest)])
    r = run(["diff", "-r", skopeo_dir(ref), str(dest)])
    assert r.returncode == 0, r
    r = skopeo("inspect", "--raw", "dir:%s" % dest)
    assert r.returncode == 0 and r.stdout.encode() == ref.obj.manifest, r


def test_skopeo_reads_the_mount_directly(mnt, samples):
    ref = samples["oci"]
    r = skopeo("inspect", "--raw", "dir:" + mnt.path(ref.path))
    assert r.returncode == 0 and r.stdout.encode() == ref.obj.manifest, r
    r = skopeo("inspect", "--config", "--raw", "dir:" + mnt.path(ref.path))
    assert r.returncode == 0, r
    assert r.stdout.encode() == samples.store.read(ref.obj.config.digest)


@pytest.mark.parametrize("platform,name", [
    ("linux/arm64", "multi"),
    ("linux/amd64", "multi"),
    ("linux/arm64/v8", "multi"),
    ("linux/arm/v7", "multidocker"),
])
def test_platform_option_shows_one_instance(mount_factory, registry, samples, skopeo_dir,
                                            platform, name):
    m = mount_factory(registry.url, options={"platform": platform})
    ref = samples[name]
    parts = platform.split("/")
    inst = ref.obj.for_platform(*parts)
    assert read_bytes(m.path(ref.path, "manifest.json")) == inst.manifest
    assert ls(m.path(ref.path)) == sorted(ig.dir_files(inst))
    plat = tuple(parts) if parts[1] != "arm64" else ("linux", "arm64")
    r = run(["diff", "-r", skopeo_dir(ref, plat), m.path(ref.path)])
    assert r.returncode == 0, r
    # single-platform images are shown unchanged
    oci = samples["oci"]
    assert read_bytes(m.path(oci.path, "manifest.json")) == oci.obj.manifest


@pytest.mark.parametrize("name", ["oci", "docker", "multi", "multidocker"])
def test_skopeo_copy_preserve_digests_from_mount(mnt, samples, registry_factory, name):
    ref = samples[name]
    dest = registry_factory()
    r = skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
               "dir:" + mnt.path(ref.path), "docker://%s/copy/%s:x" % (dest.host, name),
               timeout=300)
    assert r.returncode == 0, r
    with RegistryClient(dest.url) as c:
        body, _, digest = c.get_manifest("copy/" + name, "x")
    assert digest == ref.digest and body == ref.obj.manifest


# -- rsync and stable metadata -------------------------------------------------------------

def _rsync(src, dest):
    r = run(["rsync", "-a", "--stats", "--itemize-changes", src, dest], timeout=300)
    assert r.returncode == 0, r
    m = re.search(r"Number of regular files transferred: ([\d,]+)", r.stdout)
    assert m, r
    n = int(m.group(1).replace(",", ""))
    changes = [l for l in r.stdout.splitlines() if re.match(r"^[<>ch.*][fdLDS]", l)]
    return n, changes, r


def _stat_all(root):
    r = ok(["find", root, "-printf", "%P %y %s %T@ %m\n"], timeout=300)
    return sorted(r.stdout.splitlines())


RSYNC_SRC = ("oci", "multi")   # top-level namespaces copied by the rsync tests


def test_rsync_twice_transfers_nothing_the_second_time(mnt, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    for ns in RSYNC_SRC:
        n1, _, r1 = _rsync(mnt.path(ns) + "/", str(dest / ns))
        assert n1 > 0, r1
    for ns in RSYNC_SRC:
        n2, changes, r2 = _rsync(mnt.path(ns) + "/", str(dest / ns))
        assert n2 == 0, r2
        assert changes == [], "second rsync changed entries:\n%s" % r2


def test_rsync_after_remount_transfers_nothing(mount_factory, registry, tmp_path):
    m = mount_factory(registry.url)
    dest = tmp_path / "dest"
    before = _stat_all(m.path("oci"))
    _rsync(m.path("oci") + "/", str(dest))
    m.remount()
    assert _stat_all(m.path("oci")) == before
    n, changes, r = _rsync(m.path("oci") + "/", str(dest))
    assert n == 0, r
    assert changes == [], r


def test_rsync_after_remount_with_fresh_cache_transfers_nothing(mount_factory, registry,
                                                                tmp_path):
    m = mount_factory(registry.url)
    dest = tmp_path / "dest"
    before = _stat_all(m.path("multi"))
    _rsync(m.path("multi") + "/", str(dest))
    m.remount(cache_dir=str(tmp_path / "fresh-cache"))
    assert _stat_all(m.path("multi")) == before
    n, changes, r = _rsync(m.path("multi") + "/", str(dest))
    assert n == 0, r
    assert changes == [], r


def test_metadata_stable_between_listings(mount_factory, registry, samples):
    m = mount_factory(registry.url, options={"ttl": 1})
    first = _stat_all(m.path("oci"))
    # read every file once (fetches blobs), let the ttl expire, list again
    ok(["find", m.path("oci"), "-type", "f", "-exec", "cat", "{}", "+"], timeout=120, text=False)
    time.sleep(2.2)
    assert _stat_all(m.path("oci")) == first
    for line in first:
        parts = line.split(" ")
        typ, mode = parts[-4], parts[-1]
        assert mode == ("555" if typ == "d" else "444"), line


def test_find_walks_the_whole_repository(mnt, samples):
    ref = samples["oci"]
    r = ok(["find", mnt.path("oci/app"), "-type", "f"])
    names = {os.path.relpath(p, mnt.path("oci/app")) for p in r.stdout.split()}
    want = {"%s/%s" % (t, f) for t in ("v1", "latest") for f in ig.dir_files(ref.obj)}
    assert names == want
