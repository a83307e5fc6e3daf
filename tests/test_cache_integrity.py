"""Faults of the cache directory itself (issue 9): a cached blob damaged on disk is verified
once per mount and fetched again, never served or hardlinked; leftovers of dead mounts and of
a full disk are removed (docs/cache.md)."""

import fcntl
import glob
import hashlib
import os
import subprocess

import pytest

from harness import imagegen as ig
from harness.regclient import RegistryClient
from harness.tools import ok, probe, run, sha256sum, wait_for
from harness.writes import flip_byte


def cache_path(cache_dir, host, digest):
    hx = ig.hex_of(digest)
    return os.path.join(cache_dir, host, "docker", "registry", "v2", "blobs", "sha256",
                        hx[:2], hx, "data")


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def drop_caches():
    ok(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"])


def test_damaged_cached_blob_is_fetched_again(mount_factory, registry, samples):
    """One byte of a cached blob flipped (same size) while unmounted: the next mount verifies
    it before serving its end, discards it and fetches it again, so sha256sum through the
    mount is right, the registry saw a new GET, and the cache file is right afterwards."""
    ref = samples["oci"]
    layer = ref.obj.layers[-1]
    m = mount_factory(registry.url)
    f = m.path(ref.path, layer.hex)
    assert sha256sum(f) == layer.hex
    data = cache_path(m.cache_dir, registry.host, layer.digest)
    m.stop()
    flip_byte(data)
    assert file_sha256(data) != layer.hex
    drop_caches()
    m.start()
    mark = registry.mark()
    assert sha256sum(f) == layer.hex, m.log()[-3000:]
    assert len(registry.blob_gets(layer.digest, mark)) == 1
    assert file_sha256(data) == layer.hex
    assert layer.hex in m.log(), "no log line naming the damaged blob"
    # verified once per mount: the next read goes straight to the (good) file
    mark = registry.mark()
    assert sha256sum(f) == layer.hex
    assert registry.blob_gets(layer.digest, mark) == []


def test_damaged_big_blob_never_gives_a_wrong_digest(mount_factory, registry, samples):
    """A blob larger than the up-front limit is hashed behind the reader: a reader that got
    damaged bytes before the verdict gets EIO, never a successful end; the next read is right
    (fetched again)."""
    ref = samples["big"]
    layer = ref.obj.layers[0]
    m = mount_factory(registry.url)
    f = m.path(ref.path, layer.hex)
    assert sha256sum(f) == layer.hex
    data = cache_path(m.cache_dir, registry.host, layer.digest)
    m.stop()
    flip_byte(data, offset=layer.size // 3)
    drop_caches()
    m.start()
    r = run(["sha256sum", f], timeout=120)
    assert r.returncode != 0 or r.stdout.split()[0] == layer.hex, r
    drop_caches()
    assert sha256sum(f) == layer.hex
    assert wait_for(lambda: os.path.exists(data) and file_sha256(data) == layer.hex, 30)


@pytest.fixture
def two_registries(registry_factory, tmp_path):
    """Two registries holding the same 3-layer image (A: a/app:v1, B: b/app:v1)."""
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_image(store, "twin/app", [ig.make_layer(store, "twin/%d" % i, files=2)
                                            for i in range(3)])
    regs = []
    for name in ("a", "b"):
        reg = registry_factory()
        with RegistryClient(reg.url) as c:
            c.push(store, "%s/app" % name, "v1", img)
        regs.append(reg)
    return regs[0], regs[1], img


def test_damaged_sibling_copy_is_never_linked(mount_factory, two_registries):
    """Root mode, one cache: registry A's store holds a damaged copy of a blob registry B also
    has. Reading it through B neither serves nor hardlinks the damaged bytes: B's copy is
    fetched from B (and A's damaged copy is discarded)."""
    a, b, img = two_registries
    layer = img.layers[0]
    m = mount_factory(None)
    assert sha256sum(m.path(a.host, "a/app", "v1", layer.hex)) == layer.hex
    in_a = cache_path(m.cache_dir, a.host, layer.digest)
    m.stop()
    flip_byte(in_a)
    drop_caches()
    m.start()
    mark = b.mark()
    assert sha256sum(m.path(b.host, "b/app", "v1", layer.hex)) == layer.hex, m.log()[-3000:]
    in_b = cache_path(m.cache_dir, b.host, layer.digest)
    # (a hardlink of the damaged copy would hash wrong; its inode number may be reused)
    assert file_sha256(in_b) == layer.hex, "the damaged copy was hardlinked into B's store"
    assert len(b.blob_gets(layer.digest, mark)) == 1
    assert not os.path.exists(in_a) or file_sha256(in_a) == layer.hex
    # and an undamaged blob of A is still shared by a hardlink, not fetched again
    other = img.layers[1]
    assert sha256sum(m.path(a.host, "a/app", "v1", other.hex)) == other.hex
    mark = b.mark()
    assert sha256sum(m.path(b.host, "b/app", "v1", other.hex)) == other.hex
    assert os.stat(cache_path(m.cache_dir, a.host, other.digest)).st_ino == \
        os.stat(cache_path(m.cache_dir, b.host, other.digest)).st_ino
    assert b.blob_gets(other.digest, mark) == []


def test_leftovers_of_dead_mounts_are_removed(mount_factory, registry, samples):
    """A 100 MiB upload spill file and a temporaries directory left by mounts that were
    killed disappear at the next mount; a live mount's directory (its lock held) stays."""
    m = mount_factory(registry.url, start=False)
    partial = os.path.join(m.cache_dir, registry.host, "partial")
    os.makedirs(partial)
    spill = os.path.join(partial, "upload.Ab3dE9")
    with open(spill, "wb") as f:
        f.truncate(100 << 20)
    dead = os.path.join(partial, "tmp.k1LLed")
    os.mkdir(dead)
    with open(os.path.join(dead, "upload.x1y2z3"), "wb") as f:
        f.truncate(10 << 20)
    live = os.path.join(partial, "tmp.l1v3ly")
    os.mkdir(live)
    with open(os.path.join(live, "upload.q1w2e3"), "wb") as f:
        f.write(b"in use")
    keep = os.path.join(partial, "0" * 64)       # an interrupted download: resumed, not removed
    with open(keep, "wb") as f:
        f.write(b"prefix")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        m.start()
        ok(["ls", m.path(samples["oci"].path)])
        assert not os.path.exists(spill), os.listdir(partial)
        assert not os.path.exists(dead), os.listdir(partial)
        assert os.path.exists(os.path.join(live, "upload.q1w2e3"))
        assert os.path.exists(keep)
    finally:
        os.close(fd)
    # the mount's own directory is gone after a clean unmount
    m.stop()
    assert sorted(os.listdir(partial)) == sorted([os.path.basename(live), os.path.basename(keep)])


@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "tmpfs"
    d.mkdir()
    ok(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(d)])
    yield str(d)
    if subprocess.run(["umount", str(d)]).returncode != 0:
        subprocess.run(["umount", "-l", str(d)])


def test_full_disk_leaves_no_partial_file(mount_factory, registry, samples, small_tmpfs):
    """The cache directory on an 8 MiB tmpfs, a 20 MiB blob read: EIO, and afterwards no
    partial file holds the disk full."""
    ref = samples["big"]
    layer = ref.obj.layers[0]
    assert layer.size > 16 << 20
    m = mount_factory(registry.url, cache_dir=small_tmpfs)
    st = probe("read", m.path(ref.path, layer.hex), timeout=120)
    assert st[0] == "EIO", st
    partial = os.path.join(small_tmpfs, registry.host, "partial")
    left = [p for p in glob.glob(os.path.join(partial, "**"), recursive=True)
            if layer.hex in p]
    assert left == [], left

    def room():
        v = os.statvfs(small_tmpfs)
        return v.f_bavail * v.f_frsize
    assert wait_for(lambda: room() > 6 << 20, 10), "only %d bytes free" % room()
    assert layer.hex in m.log()
    m.stop()
