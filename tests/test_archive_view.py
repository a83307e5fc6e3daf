"""The docker-archive view (issue 13): REPO:TAG.tar beside REPO is a `docker save` file
synthesized from the manifest and read from the blob cache; checked with tar, python's tarfile,
skopeo (docker-archive: source) and podman load where it runs."""

import io
import json
import os
import shutil
import tarfile
import tempfile

import pytest

from harness import imagegen as ig
from harness.regclient import RegistryClient
from harness.tools import cache_path, errno_of, ls, probe, read_bytes, run, skopeo


def diff_ids(img, store):
    return json.loads(store.read(img.config.digest))["rootfs"]["diff_ids"]


def archive_path(m, ref):
    return m.path("%s:%s.tar" % (ref.repo, ref.tag))


def expected_size(manifest_json_len, img):
    """Headers, contents padded to 512, and the two zero blocks: from descriptor sizes."""
    pad = lambda n: (n + 511) // 512 * 512  # noqa: E731
    sizes = [manifest_json_len, img.config.size]
    seen = set()
    for l in img.layers:
        if l.digest not in seen:
            seen.add(l.digest)
            sizes.append(l.size)
    return sum(512 + pad(s) for s in sizes) + 1024


def check_archive(data, registry, ref, img, store):
    """The members skopeo's docker-archive writer makes, each holding the registry's bytes."""
    t = tarfile.open(fileobj=io.BytesIO(data))
    members = t.getmembers()
    cfg = img.config.hex + ".json"
    layers = [l.hex + ".tar" for l in img.layers]
    assert [m.name for m in members] == ["manifest.json", cfg] + list(dict.fromkeys(layers))
    for m in members:
        assert m.isreg() and m.mode == 0o444 and m.mtime == 0 and m.uid == 0 and m.gid == 0
    manifest = json.loads(t.extractfile("manifest.json").read())
    assert manifest == [{"Config": cfg, "RepoTags": ["%s/%s:%s" % (registry.host, ref.repo,
                                                                    ref.tag)],
                         "Layers": layers}]
    assert t.extractfile(cfg).read() == store.read(img.config.digest)
    for l in img.layers:
        assert t.extractfile(l.hex + ".tar").read() == store.read(l.digest)
    return manifest


@pytest.mark.parametrize("name", ["oci", "docker"])
def test_single_arch_archive(mnt, registry, samples, name):
    ref = samples[name]
    img = ref.obj
    path = archive_path(mnt, ref)
    rc, st = probe("stat", path)
    assert rc == "OK", st
    assert st["mode"] == 0o100444
    # the size is known from the manifest: no layer was fetched for it
    for l in img.layers:
        assert not os.path.exists(cache_path(mnt, registry.host, l.digest))
    data = read_bytes(path)
    assert len(data) == st["size"]
    manifest = check_archive(data, registry, ref, img, samples.store)
    assert st["size"] == expected_size(len(json.dumps(manifest, separators=(",", ":"))), img)
    r = run(["tar", "-tvf", path])
    assert r.returncode == 0, r
    assert [l.split()[-1] for l in r.stdout.splitlines()] == \
        ["manifest.json", img.config.hex + ".json"] + [l.hex + ".tar" for l in img.layers]


def test_big_archive_streams_the_layer(mnt, samples, tmp_path):
    """A 20 MiB layer read across many FUSE reads: cp, then tar extracts the registry's blob."""
    ref = samples["big"]
    dst = tmp_path / "big.tar"
    r = run(["cp", archive_path(mnt, ref), str(dst)])
    assert r.returncode == 0, r
    layer = ref.obj.layers[0]
    r = run(["tar", "-xf", str(dst), "-C", str(tmp_path), layer.hex + ".tar"])
    assert r.returncode == 0, r
    r = run(["sha256sum", str(tmp_path / (layer.hex + ".tar"))])
    assert r.stdout.split()[0] == layer.hex


def test_views_are_never_listed(mnt, samples):
    ref = samples["oci"]
    assert probe("stat", archive_path(mnt, ref))[0] == "OK"
    assert ls(mnt.path("oci")) == ["app"]
    assert ls(mnt.path("oci", "app")) == ["latest", "v1"]
    r = run(["find", mnt.path("oci"), "-name", "*.tar"])
    assert r.returncode == 0 and r.stdout == "", r


def test_names_that_are_no_view(mnt, samples):
    assert errno_of("stat", mnt.path("oci/app:nosuchtag.tar")) == "ENOENT"
    assert errno_of("stat", mnt.path("oci/nosuchrepo:v1.tar")) == "ENOENT"
    assert errno_of("stat", mnt.path("oci/app:v1.tar/manifest.json")) == "ENOTDIR"
    assert errno_of("listdir", mnt.path("oci/app:v1.tar")) == "ENOTDIR"
    assert errno_of("stat", mnt.path("oci/app:.tar")) == "ENOENT"
    assert errno_of("stat", mnt.path("oci/app/v1.tar")) == "ENOENT"  # beside REPO only


def test_read_only(mnt, mount_factory, registry, samples):
    ref = samples["oci"]
    path = archive_path(mnt, ref)
    assert errno_of("open_write", path) == "EROFS"
    assert errno_of("unlink", path) == "EROFS"
    push = mount_factory(registry.url, options={"push": None})
    path = archive_path(push, ref)
    assert probe("stat", path)[1]["mode"] == 0o100444
    assert errno_of("open_write", path) == "EROFS"
    assert errno_of("open_rdwr", path) == "EROFS"
    assert errno_of("truncate", path) in ("EROFS", "EPERM")
    assert errno_of("unlink", path) == "EROFS"
    assert errno_of("rename", path, push.path("oci", "x.tar")) in ("EROFS", "EXDEV")
    assert probe("stat", path)[0] == "OK"
    assert ls(push.path("oci", "app")) == ["latest", "v1"]


def test_real_tag_ending_in_tar_wins(mount_factory, registry_factory, samples):
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(samples.store, "x/app", "v1", samples["oci"].obj)
        c.push(samples.store, "x/app", "v1.tar", samples["docker"].obj)
        c.push(samples.store, "x/app", "v2", samples["docker"].obj)
    m = mount_factory(reg.url)
    assert ls(m.path("x/app:v1.tar")) == sorted(ig.dir_files(samples["docker"].obj))
    assert probe("stat", m.path("x/app:v2.tar"))[1]["mode"] == 0o100444
    assert ls(m.path("x", "app")) == ["v1", "v1.tar", "v2"]


def test_multi_arch_needs_a_platform(mnt, samples):
    ref = samples["multi"]
    assert errno_of("stat", archive_path(mnt, ref)) == "ENOENT"
    assert "choose its platform with -o platform" in mnt.log()


@pytest.mark.parametrize("platform,name", [("linux/arm64", "multi"),
                                           ("linux/arm/v7", "multidocker")])
def test_multi_arch_with_platform(mount_factory, registry, samples, platform, name):
    m = mount_factory(registry.url, options={"platform": platform})
    ref = samples[name]
    inst = ref.obj.for_platform(*platform.split("/"))
    check_archive(read_bytes(archive_path(m, ref)), registry, ref, inst, samples.store)
    r = run(["tar", "-tf", archive_path(m, ref)])
    assert r.returncode == 0 and r.stdout.splitlines()[1] == inst.config.hex + ".json", r


def colon_free(tmp_path, path):
    """skopeo's docker-archive: reference splits at the first ':' (PATH[:REF]): a symlink
    without one names the file on the mount."""
    link = tmp_path / "image.tar"
    os.symlink(path, link)
    return str(link)


@pytest.mark.parametrize("name,platform", [("oci", None), ("docker", None),
                                           ("multi", "linux/amd64")])
def test_skopeo_reads_the_archive(mount_factory, registry, registry_factory, samples, tmp_path,
                                  name, platform):
    m = mount_factory(registry.url, options={"platform": platform} if platform else None)
    ref = samples[name]
    img = ref.obj if not platform else ref.obj.for_platform(*platform.split("/"))
    src = "docker-archive:" + colon_free(tmp_path, archive_path(m, ref))
    r = skopeo("inspect", src)
    assert r.returncode == 0, r
    info = json.loads(r.stdout)
    assert info["Layers"] == diff_ids(img, samples.store)   # layers by their DiffID
    r = skopeo("inspect", "--config", "--raw", src)
    assert r.returncode == 0 and r.stdout.encode() == samples.store.read(img.config.digest), r
    dest = registry_factory()
    r = skopeo("copy", "--dest-tls-verify=false", src, "docker://%s/copy/app:v1" % dest.host)
    assert r.returncode == 0, r
    r = skopeo("inspect", "--raw", "--tls-verify=false", "docker://%s/copy/app:v1" % dest.host)
    assert r.returncode == 0, r
    copied = json.loads(r.stdout)
    assert copied["config"]["digest"] == img.config.digest
    assert len(copied["layers"]) == len(img.layers)
    r = skopeo("inspect", "--tls-verify=false", "docker://%s/copy/app:v1" % dest.host)
    assert r.returncode == 0, r
    r = skopeo("inspect", "--config", "--raw", "--tls-verify=false",
               "docker://%s/copy/app:v1" % dest.host)
    assert json.loads(r.stdout)["rootfs"]["diff_ids"] == diff_ids(img, samples.store)


@pytest.fixture
def podman(tmp_path):
    """podman as root with the vfs driver and a private store (docker has no daemon here)."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (docker has no daemon here)")
    run_root = tempfile.mkdtemp(prefix="rfs-podman-")  # podman wants runroot under 50 chars
    base = ["podman", "--storage-driver", "vfs", "--root", str(tmp_path / "root"),
            "--runroot", run_root, "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    try:
        yield base
    finally:
        run(base + ["system", "reset", "--force"], timeout=60)
        shutil.rmtree(run_root, ignore_errors=True)


def podman_or_skip(base):
    r = run(base + ["info"], timeout=60)
    if r.returncode != 0:
        pytest.skip("podman cannot run in this container: %s" % r.stderr.strip()[-300:])
    return base


@pytest.mark.parametrize("name", ["oci", "docker"])
def test_podman_load(mnt, registry, samples, podman, tmp_path, name):
    base = podman_or_skip(podman)
    ref = samples[name]
    # podman load -i, like skopeo, takes a ':' in the path for PATH:REF
    r = run(base + ["load", "-i", colon_free(tmp_path, archive_path(mnt, ref))], timeout=120)
    assert r.returncode == 0, r
    tag = "%s/%s:%s" % (registry.host, ref.repo, ref.tag)
    r = run(base + ["image", "inspect", tag], timeout=60)
    assert r.returncode == 0, r
    info = json.loads(r.stdout)[0]
    assert info["Id"] == ref.obj.config.hex
    assert info["RootFS"]["Layers"] == diff_ids(ref.obj, samples.store)
