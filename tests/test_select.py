"""Selecting images out of a big storage tree by hardlinks (docs/packaging.md, "Selecting
images out of a big tree"; issue 11, item 1).

The module fixture `big` is a real distribution storage tree: docker-registry's own storage
after eight images sharing base layers were pushed to it. A selection of five of them is
then made

  - with registryfs: `registryfs BIG MNT_BIG` and `registryfs -o push,link_from=BIG NEW
    MNT_NEW`, `mkdir -p` + `cp -r` (or `rsync -a`) per list line, as docs/packaging.md says;
  - the seeds' way: their image-select.sh (with only its brace-quoting bug fixed, see
    test_packaging.QUOTE_BUG), run from inside the big tree.

Both results must hold exactly the selected blobs as hardlinks of the big tree's (same
inode, st_nlink >= 2), cost at most 2 MiB of extra disk (du -sb of BIG and NEW together, a
hardlinked file counted once, minus du -sb of BIG), and be served by docker-registry with
the source digests. A damaged blob in a link_from tree is never linked (a verified copy is
stored instead), and a link_from that is not a storage tree stops the mount.
"""

import os
import shutil
import types

import pytest

from harness import imagegen as ig
from harness import tools
from harness import writes
from harness.mount import MountError
from harness.packaging import run_flow
from harness.regclient import RegistryClient
from harness.registry import Registry
from test_packaging import (IMAGE_SELECT, QUOTE_BUG, QUOTE_FIX, all_digests, assert_clean,
                            assert_served, blob_data, new_mount, repo_files, serve,
                            write_list)

MiB = 1 << 20
EXTRA_MAX = 2 * MiB           # the bound for a selection: directories and link files


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """docker-registry's storage after pushing 8 images (Docker and OCI alternating): every
    one on base `os`, two of three also on `rt`, each with its own layer. 5 are selected."""
    work = tmp_path_factory.mktemp("select")
    store = ig.BlobStore(work / "blobs")
    base_os = ig.make_large_layer(store, "select/base-os", 3)
    base_rt = ig.make_large_layer(store, "select/base-rt", 2)
    images = []
    for i in range(8):
        layers = [base_os, base_rt] if i % 3 != 2 else [base_os]
        layers.append(ig.make_large_layer(store, "select/top-%d" % i, 1))
        images.append(("select/app%d" % i, "1.%d" % i,
                       ig.make_image(store, "select/img-%d" % i, layers,
                                     fmt="docker" if i % 2 == 0 else "oci")))
    reg = Registry(work / "registry")
    reg.start()
    try:
        with RegistryClient(reg.url) as c:
            for repo, tag, obj in images:
                c.push(store, repo, tag, obj)
    finally:
        reg.stop()
    chosen = [images[i] for i in (0, 1, 2, 4, 7)]
    return types.SimpleNamespace(work=work, store=store, root=os.path.abspath(reg.storage),
                                 images=images, chosen=chosen,
                                 list=write_list(work / "image-list.txt", chosen))


def du_bytes(*paths):
    """`du -sbc PATHS` total: apparent bytes, a file hardlinked in several places once."""
    r = tools.ok(["du", "-sbc"] + [str(p) for p in paths])
    return int(r.stdout.strip().splitlines()[-1].split()[0])


def wanted_hexes(images):
    return {ig.hex_of(d) for d in all_digests(obj for _, _, obj in images)}


def assert_hardlinked_selection(big, new):
    """NEW holds exactly the chosen images' blobs, each the big tree's file (same inode,
    st_nlink >= 2), and costs at most EXTRA_MAX bytes of disk beyond BIG."""
    got, src = blob_data(new), blob_data(big.root)
    assert set(got) == wanted_hexes(big.chosen)
    for hx, p in got.items():
        st = os.stat(p)
        assert st.st_ino == os.stat(src[hx]).st_ino and st.st_nlink >= 2, \
            "blob %s of %s is not a hardlink of the big tree's (inode %d, nlink %d)" % (
                hx[:12], new, st.st_ino, st.st_nlink)
    extra = du_bytes(big.root, new) - du_bytes(big.root)
    assert 0 < extra <= EXTRA_MAX, "the selection costs %d bytes of disk" % extra
    return extra


def select_with_mounts(big, tmp_path, tool="cp", link_from=None, images=None):
    """The documented flow: big tree read-only, NEW -o push,link_from; returns (NEW, mounts)."""
    os.makedirs(str(tmp_path), exist_ok=True)
    new = tmp_path / "new"
    lst = write_list(tmp_path / "list.txt", images) if images else big.list
    msrc = new_mount(tmp_path, "mbig", big.root, cache_dir=tmp_path / "cache")
    mnew = new_mount(tmp_path, "mnew", str(new), cache_dir=tmp_path / "cache", debug=True,
                     options={"push": True, "link_from": link_from or big.root})
    try:
        msrc.start()
        mnew.start()
        r = run_flow(tool, msrc.mountpoint, mnew.mountpoint, lst)
        assert r.returncode == 0, "%s\n%s" % (r, mnew.log()[-3000:])
        for repo, tag, _ in images or big.chosen:
            assert writes.status(mnew.path(repo, tag)) == (0, "published"), mnew.log()[-3000:]
    finally:
        mnew.stop()
        msrc.stop()
    assert_clean(msrc, mnew)
    assert not os.path.exists(new / ".registryfs-partial")
    return new, (msrc, mnew)


@pytest.mark.parametrize("tool", ["cp", "rsync"])
def test_selection_by_mounts_is_hardlinks(big, tmp_path, tool):
    """cp -r (or rsync -a) of 5 images from the mounted big tree into a new tree mounted
    -o push,link_from=BIG: every blob is the big tree's inode, the selection costs only
    directories and link files (<= 2 MiB), the tree is distribution's layout and
    docker-registry serves every selected image with its digest (and pulls it)."""
    before = {hx: os.stat(p).st_nlink for hx, p in blob_data(big.root).items()}
    new, (_, mnew) = select_with_mounts(big, tmp_path, tool)
    assert_hardlinked_selection(big, new)
    log = mnew.log()
    assert "hashes to" not in log and "not published" not in log, log[-3000:]
    after = blob_data(big.root)
    assert sorted(after) == sorted(before), "the big tree changed"
    assert all(os.stat(after[hx]).st_nlink == before[hx] + 1 for hx in wanted_hexes(big.chosen))
    with serve(tmp_path / "serve", new) as reg:
        assert_served(reg, big.chosen, pull_dir=tmp_path / "pull", store=big.store)
        with RegistryClient(reg.url) as c:
            assert sorted(c.catalog()) == sorted({r for r, _, _ in big.chosen})


def run_seed_select(big, tmp_path):
    """The seed's image-select.sh (quote fix only), the way its author ran it: from inside
    the storage root (its layer `ln -f` paths are relative), lists in a directory of *.list
    files, output directory last."""
    with open(IMAGE_SELECT) as f:
        text = f.read()
    script = tmp_path / "image-select-fixed.sh"
    script.write_text(text.replace(QUOTE_BUG, QUOTE_FIX))
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.copy(big.list, str(lists / "customer.list"))
    out = tmp_path / "seed-selected"
    r = tools.run(["bash", str(script), str(lists), big.root, str(out)], cwd=big.root)
    assert r.returncode == 0, r
    return out


def test_selection_matches_the_seeds_image_select(big, tmp_path):
    """The seeds' image-select.sh over the same big tree and list gives the same blobs (the
    same inodes) and the same link files as the selection through the mounts; both are
    within 2 MiB of extra disk and served by docker-registry."""
    seed = run_seed_select(big, tmp_path)
    new, _ = select_with_mounts(big, tmp_path / "rfs")
    seed_extra = assert_hardlinked_selection(big, seed)
    rfs_extra = assert_hardlinked_selection(big, new)
    assert {hx: os.stat(p).st_ino for hx, p in blob_data(seed).items()} == \
        {hx: os.stat(p).st_ino for hx, p in blob_data(new).items()}
    assert repo_files(new) == repo_files(seed)
    # the seed's script also makes empty _uploads directories; registryfs makes none
    assert rfs_extra <= seed_extra + 64 * 1024, (rfs_extra, seed_extra)
    with serve(tmp_path / "serve", seed) as reg:
        assert_served(reg, big.chosen)


def test_damaged_blob_in_link_from_is_not_linked(big, tmp_path):
    """A link_from tree whose copy of a layer is damaged (same size, one byte flipped): that
    layer is stored as a verified copy (its own inode, one link), the other blobs are still
    hardlinked from that tree, the log names the damaged file, and the damaged tree is left
    exactly as it was."""
    damaged = tmp_path / "damaged"
    tools.ok(["cp", "-a", big.root, str(damaged)])
    repo, tag, obj = big.chosen[1]
    victim = obj.layers[-1]
    path = blob_data(damaged)[victim.hex]
    with open(path, "r+b") as f:
        f.seek(victim.size // 2)
        b = f.read(1)
        f.seek(victim.size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    st_before = os.stat(path)
    new, (_, mnew) = select_with_mounts(big, tmp_path / "sel", link_from=str(damaged),
                                        images=[(repo, tag, obj)])
    got, linked = blob_data(new), blob_data(damaged)
    assert set(got) == wanted_hexes([(repo, tag, obj)])
    for hx, p in got.items():
        same = os.stat(p).st_ino == os.stat(linked[hx]).st_ino
        assert same == (hx != victim.hex), "blob %s: linked=%s" % (hx[:12], same)
    assert os.stat(got[victim.hex]).st_nlink == 1
    assert tools.sha256sum(got[victim.hex]) == victim.hex
    assert path in mnew.log() and "not linking it" in mnew.log(), mnew.log()[-3000:]
    st_after = os.stat(path)
    assert (st_after.st_ino, st_after.st_size, st_after.st_nlink, st_after.st_mtime_ns) == \
        (st_before.st_ino, st_before.st_size, st_before.st_nlink, st_before.st_mtime_ns)
    assert tools.sha256sum(path) != victim.hex
    with serve(tmp_path / "serve", new) as reg:
        assert_served(reg, [(repo, tag, obj)], pull_dir=tmp_path / "pull", store=big.store)


def test_wrong_bytes_under_a_known_blob_name_fail(big, mount_factory, tmp_path):
    """A file named after a blob the link_from tree holds, written with other bytes of the
    same size: the close fails with EIO and nothing is published; the right bytes then
    publish (the comparison is a verification, not a shortcut around it)."""
    repo, tag, obj = big.chosen[0]
    src = tmp_path / "image"
    writes.source_dir(big.store, obj, src)  # skopeo's inode order: cp -r copies in it
    layer = obj.layers[-1]
    bad = tmp_path / "bad"
    with open(str(src / layer.hex), "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 3] ^= 0x01
    bad.write_bytes(bytes(data))
    m = mount_factory(str(tmp_path / "new"), options={"push": True, "link_from": big.root},
                      cache_dir=tmp_path / "cache")
    dest = m.path("wrong", "t1")
    tools.ok(["mkdir", "-p", dest])
    r = tools.run(["cp", str(bad), os.path.join(dest, layer.hex)])
    assert r.returncode != 0 and "Input/output error" in r.stderr, r
    r = tools.run(["cp", "-r", str(src) + "/.", dest])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    assert writes.status(dest) == (0, "published"), m.log()[-3000:]
    assert tools.sha256sum(os.path.join(dest, layer.hex)) == layer.hex


@pytest.mark.parametrize("value,message", [
    ("/nonexistent/big", "-o link_from=/nonexistent/big: No such file or directory"),
    ("EMPTY", "not a storage tree"),
    ("", "-o link_from: an empty directory name"),
])
def test_link_from_must_be_a_storage_tree(mount_factory, tmp_path, value, message):
    """A link_from directory that is not there, or holds no docker/registry/v2, stops the
    mount with a message naming the option."""
    if value == "EMPTY":
        value = str(tmp_path / "empty")
        os.makedirs(value)
    m = mount_factory(str(tmp_path / "new"), start=False,
                      options={"push": True, "link_from": value})
    with pytest.raises(MountError) as e:
        m.start()
    assert message in str(e.value), str(e.value)
    assert not m.is_mounted


def test_registry_mount_links_its_cache_from_link_from(big, mount_factory, tmp_path):
    """A registry mount with -o link_from: a blob the named tree holds is hardlinked into the
    cache (after its hash) instead of being downloaded; reading gives the right bytes."""
    repo, tag, obj = big.chosen[2]
    with serve(tmp_path / "serve", big.root) as reg:
        cache = tmp_path / "cache"
        m = mount_factory(reg.url, options={"link_from": big.root}, cache_dir=cache)
        mark = reg.mark()
        for b in obj.blobs:
            assert tools.sha256sum(m.path(repo, tag, b.hex)) == b.hex
        got = [b.hex[:12] for b in obj.blobs if reg.blob_gets(b.digest, mark)]
        assert got == [], "downloaded although link_from holds them: %s" % got
        m.stop()
    cached, src = blob_data(cache / reg.host), blob_data(big.root)
    for b in obj.blobs:
        assert os.stat(cached[b.hex]).st_ino == os.stat(src[b.hex]).st_ino, b.hex[:12]
