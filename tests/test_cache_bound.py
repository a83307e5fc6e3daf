"""The bounded cache (issue 10, item 1): -o cache_max_size evicts least recently used blobs,
never one that is open or staged for a push that is not published yet; -o cache_min_free
keeps free space on the cache's filesystem; eviction leaves no link file naming a blob that
is gone, and an evicted blob comes back when it is read again. docs/cache.md, "Bounded cache".
"""

import os
import shutil
import time

import pytest

from harness import imagegen as ig
from harness import writes
from harness.regclient import RegistryClient
from harness.tools import cache_path, ok, read_bytes, sha256sum, wait_for
from test_auth_tls import start_fails

KIB = 1 << 10
MIB = 1 << 20
N_IMAGES = 4
LIMIT = 2500 * KIB      # under the sum of the images' layers (4 x ~1 MiB)


@pytest.fixture
def bound_env(registry_factory, tmp_path):
    """A private registry with N_IMAGES images of one ~1 MiB incompressible layer each."""
    reg = registry_factory()
    store = ig.BlobStore(tmp_path / "blobs")
    imgs = [ig.make_image(store, "bound/%d" % i, [ig.make_large_layer(store, "bound/%d" % i, 1)])
            for i in range(N_IMAGES)]
    with RegistryClient(reg.url) as c:
        for i, img in enumerate(imgs):
            c.push(store, "b/app%d" % i, "v1", img)
    return reg, store, imgs


def blobs_root(m, host):
    return os.path.join(m.cache_dir, host, "docker", "registry", "v2")


def cache_bytes(m):
    """Bytes of stored blobs (each inode once) and downloads in progress in m's cache."""
    seen, total = set(), 0
    for top, _, files in os.walk(m.cache_dir):
        for name in files:
            p = os.path.join(top, name)
            in_store = name == "data" and "/blobs/sha256/" in p
            if not in_store and os.path.basename(top) != "partial":
                continue
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def dangling_links(m, host):
    """Link files under repositories/ whose blob is not in the store."""
    root = blobs_root(m, host)
    bad, count = [], 0
    for top, _, files in os.walk(os.path.join(root, "repositories")):
        for name in files:
            if name != "link":
                continue
            count += 1
            with open(os.path.join(top, name)) as f:
                digest = f.read()
            hx = digest.split(":", 1)[1]
            if not os.path.isfile(os.path.join(root, "blobs", "sha256", hx[:2], hx, "data")):
                bad.append(os.path.join(top, name))
    return bad, count


def layer_of(img):
    return img.layers[0]


def copy_all(m, imgs, dest, which=None):
    os.makedirs(str(dest), exist_ok=True)
    for i in which or range(len(imgs)):
        img = imgs[i]
        out = os.path.join(str(dest), "app%d" % i)
        ok(["cp", "-r", m.path("b/app%d" % i, "v1"), out])
        assert sha256sum(os.path.join(out, layer_of(img).hex)) == layer_of(img).hex


def settle_under(m, limit, timeout=10):
    assert wait_for(lambda: cache_bytes(m) <= limit, timeout), \
        "cache holds %d bytes, limit %d" % (cache_bytes(m), limit)


@pytest.mark.parametrize("foreground", [True, False], ids=["foreground", "daemon"])
def test_reads_stay_within_cache_max_size(mount_factory, bound_env, tmp_path, foreground):
    """(As a daemon too: the bound's thread starts after the fork.)"""
    reg, store, imgs = bound_env
    m = mount_factory(reg.url, options={"cache_max_size": "2500K"}, foreground=foreground)
    copy_all(m, imgs, tmp_path / "out")
    settle_under(m, LIMIT)
    assert "cache: evicted" in m.log()
    bad, count = dangling_links(m, reg.host)
    assert count and not bad, bad
    # The first image's layer went first (least recently used); read again, it comes back.
    first = layer_of(imgs[0])
    assert not os.path.exists(cache_path(m, reg.host, first.digest))
    mark = reg.mark()
    ok(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"])  # past the kernel's page cache
    assert sha256sum(m.path("b/app0/v1", first.hex)) == first.hex
    assert len(reg.blob_gets(first.digest, mark)) == 1
    settle_under(m, LIMIT)
    bad, _ = dangling_links(m, reg.host)
    assert not bad, bad


def test_open_blob_is_not_evicted(mount_factory, bound_env, tmp_path):
    reg, store, imgs = bound_env
    m = mount_factory(reg.url, options={"cache_max_size": "1200K"})
    held = layer_of(imgs[0])
    with open(m.path("b/app0/v1", held.hex), "rb") as f:
        head = f.read(4096)
        copy_all(m, imgs, tmp_path / "out", [1, 2, 3])      # each alone nearly fills the limit
        settle_under(m, 1200 * KIB + held.size)      # only the open one is over
        assert os.path.isfile(cache_path(m, reg.host, held.digest))
        data = head + f.read()
    assert ig.sha256_digest(data) == held.digest
    settle_under(m, 1200 * KIB)                      # closed: evictable like the rest
    bad, _ = dangling_links(m, reg.host)
    assert not bad, bad


def test_remount_with_a_smaller_limit_evicts_what_is_stored(mount_factory, bound_env, tmp_path):
    reg, store, imgs = bound_env
    m = mount_factory(reg.url)
    copy_all(m, imgs, tmp_path / "out")
    assert cache_bytes(m) > LIMIT
    m.remount(options={"cache_max_size": "2500K"})
    settle_under(m, LIMIT)
    bad, count = dangling_links(m, reg.host)
    assert count and not bad, bad
    shutil.rmtree(str(tmp_path / "out"))
    copy_all(m, imgs, tmp_path / "out")              # whatever went comes back


def test_staged_push_blobs_stay_until_published(mount_factory, registry_factory, bound_env,
                                                tmp_path):
    reg0, store, imgs = bound_env
    reg = registry_factory()
    img = ig.make_image(store, "push/app", [ig.make_large_layer(store, "push/%d" % i, 1)
                                            for i in range(3)])
    src = writes.source_dir(store, img, tmp_path / "src")
    m = mount_factory(reg.url, options={"push": True, "cache_max_size": "1200K"})
    dest = m.path("p/app/v1")
    os.makedirs(dest)
    for layer in img.layers:                          # the blobs, not yet the manifest
        ok(["cp", os.path.join(src, layer.hex), dest])
    ok(["cp", os.path.join(src, img.config.hex), dest])
    assert wait_for(lambda: "other blobs are in use" in m.log(), 10), m.log()
    time.sleep(1.5)                                   # a round of the bound more, to be sure
    for layer in img.layers:                          # 3 MiB over a 1.2 MiB limit, all kept
        assert os.path.isfile(cache_path(m, reg.host, layer.digest))
    ok(["cp", os.path.join(src, "version"), dest])
    ok(["cp", os.path.join(src, "manifest.json"), dest])
    with RegistryClient(reg.url) as c:
        for layer in img.layers:
            assert c.get_blob("p/app", layer.digest) == store.read(layer.digest)
    settle_under(m, 1200 * KIB)                       # published: ordinary cache now
    bad, _ = dangling_links(m, reg.host)
    assert not bad, bad


def test_root_mode_counts_a_hardlinked_blob_once(mount_factory, registry_factory, tmp_path):
    """Two registries of a root-mode mount share one budget; a blob both hold is hardlinked
    (stored once), counted once, and evicted from both stores at once."""
    store = ig.BlobStore(tmp_path / "blobs")
    shared = ig.make_image(store, "twin", [ig.make_large_layer(store, "twin", 1)])
    other = ig.make_image(store, "other", [ig.make_large_layer(store, "other", 1)])
    regs = [registry_factory(), registry_factory()]
    for reg in regs:
        with RegistryClient(reg.url) as c:
            c.push(store, "t/app", "v1", shared)
            c.push(store, "o/app", "v1", other)
    m = mount_factory(None, options={"cache_max_size": "1500K"})
    layer = layer_of(shared)
    for reg in regs:
        assert sha256sum(m.path(reg.host, "t/app/v1", layer.hex)) == layer.hex
    copies = [cache_path(m, reg.host, layer.digest) for reg in regs]
    assert os.stat(copies[0]).st_ino == os.stat(copies[1]).st_ino
    time.sleep(1.5)                                   # a round of the bound: 1 MiB fits
    assert "cache: evicted" not in m.log()
    assert all(os.path.isfile(p) for p in copies)
    last = layer_of(other)
    assert sha256sum(m.path(regs[0].host, "o/app/v1", last.hex)) == last.hex
    assert wait_for(lambda: not any(os.path.exists(p) for p in copies), 10), m.log()
    settle_under(m, 1500 * KIB)
    for reg in regs:
        bad, _ = dangling_links(m, reg.host)
        assert not bad, bad


def test_cache_min_free_all_keeps_the_cache_empty(mount_factory, bound_env, tmp_path):
    reg, store, imgs = bound_env
    m = mount_factory(reg.url, options={"cache_min_free": "100%"})
    copy_all(m, imgs, tmp_path / "out", [0, 1])
    settle_under(m, 0)
    assert "cache_min_free" in m.log()
    bad, _ = dangling_links(m, reg.host)
    assert not bad, bad
    assert read_bytes(m.path("b/app1/v1", layer_of(imgs[1]).hex)) == \
        store.read(layer_of(imgs[1]).digest)


@pytest.mark.parametrize("option,value", [("cache_max_size", "10X"), ("cache_max_size", "0"),
                                          ("cache_max_size", ""), ("cache_min_free", "101%"),
                                          ("cache_min_free", "5 %"), ("cache_min_free", "lots")])
def test_bad_cache_bound_refused(mount_factory, bound_env, option, value):
    reg, _, _ = bound_env
    m = mount_factory(reg.url, options={option: value}, start=False)
    err = start_fails(m)
    assert "exited 1 before mounting" in err, err
    assert option in m.stderr() and "'%s'" % value in m.stderr(), m.stderr()
    assert not m.is_mounted
