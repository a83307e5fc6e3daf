"""Re-runs are clean (issue 11, part 3): copying an image over a tag that already holds it
(`cp -rT`, `rsync -a`, `skopeo copy`, a second `skopeo sync`) exits 0, moves no blob bytes and
leaves the tag published with no warning; copying a different image over it moves the tag to
the new digest without the tag ever missing from the registry. Mirroring and packaging scripts
are re-run every day. (`skopeo sync --dest dir` refuses an existing destination directory on
any file system; the mount answers as a disk does.)
"""

import os
import threading
import time

import pytest

from harness import writes
from harness.tools import ls, run, skopeo
from harness.write_fixtures import w, wimages  # noqa: F401  (fixtures)

TOOLS = {
    "cp -rT": lambda src, dest: run(["cp", "-rT", src, dest]),
    "rsync -a": lambda src, dest: run(["rsync", "-a", src + "/", dest + "/"]),
    "skopeo copy": lambda src, dest: skopeo("copy", "--all", "dir:" + src, "dir:" + dest),
}


def assert_clean(w, repo, tag):
    st = w.status("%s/%s" % (repo, tag))
    assert st[1] == "published", "%s\n%s" % (st, w.mnt.log()[-6000:])
    w.mnt.stop()
    assert "not published" not in w.mnt.log(), w.mnt.log()[-3000:]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_same_image_again_is_a_clean_no_op(w, samples, tool):
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    w.mkdirs("again/app")
    dest = w.path("again/app/v1")
    r = TOOLS[tool](src, dest)
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("again/app", "v1", obj)
    mark = w.mark()
    r = TOOLS[tool](src, dest)
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("again/app", "v1", obj)
    assert w.uploads(mark) == [], w.describe(mark)
    assert_clean(w, "again/app", "v1")


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_same_image_over_a_preloaded_tag(w, samples, tool):
    """The tag was pushed by someone else (a previous day's run): the copy is a no-op too."""
    obj = samples["docker"].obj
    w.preload("pre/app", "v1", obj)
    src = w.source(obj, "docker")
    mark = w.mark()
    r = TOOLS[tool](src, w.path("pre/app/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("pre/app", "v1", obj)
    assert w.uploads(mark) == [], w.describe(mark)
    assert_clean(w, "pre/app", "v1")


def watch_tag(w, repo, tag, stop, seen):
    """Polls REPO:TAG in the registry until stop is set; records every answer's digest."""
    while not stop.is_set():
        seen.append(w.digest(repo, tag))
        time.sleep(0.01)


@pytest.mark.parametrize("tool", ["cp -rT", "rsync -a"])
def test_different_image_moves_the_tag_and_it_never_goes_missing(w, samples, tool):
    old, new = samples["oci"].obj, samples["docker"].obj
    w.preload("move/app", "v1", old)
    src = w.source(new, "docker")
    seen, stop = [], threading.Event()
    t = threading.Thread(target=watch_tag, args=(w, "move/app", "v1", stop, seen))
    t.start()
    try:
        r = TOOLS[tool](src, w.path("move/app/v1"))
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("move/app", "v1", new)
    assert None not in seen, "the tag was missing during the copy: %s" % seen
    assert set(seen) <= {old.digest, new.digest}, seen
    assert_clean(w, "move/app", "v1")


def test_second_skopeo_sync_into_the_mount_is_refused_as_on_disk(w, registry, samples, tmp_path):
    """skopeo sync --dest dir refuses any destination directory that exists, on every file
    system (skopeo's sync.go, destinationReference, 1.9 to today): the mount answers as a disk
    does, and the refused run changes nothing. Re-runs use rsync -a or cp -rT (above)."""
    ref = samples["oci"]
    w.mkdirs("mirror")
    src = "%s/%s" % (registry.host, ref.repo)

    def sync(dest):
        return skopeo("sync", "--all", "--src", "docker", "--dest", "dir",
                      "--src-tls-verify=false", src, dest)
    disk = tmp_path / "disk"
    disk.mkdir()
    assert sync(str(disk)).returncode == 0
    on_disk = sync(str(disk))
    r = sync(w.path("mirror"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    mark = w.mark()
    r = sync(w.path("mirror"))
    assert on_disk.returncode != 0 and "Refusing to overwrite destination directory" in \
        on_disk.stderr, on_disk
    assert r.returncode != 0 and "Refusing to overwrite destination directory" in r.stderr, r
    assert w.requests(mark, method="PUT") == [] and w.uploads(mark) == [], w.describe(mark)
    for tag in ("latest", "v1"):
        w.assert_published("mirror/app", tag, ref.obj)
    w.mnt.stop()
    assert "not published" not in w.mnt.log(), w.mnt.log()[-3000:]


def test_mirror_between_registries_twice(registry_factory, mount_factory, samples, registry):
    """Root mode, `rsync -a SRC_HOST/REPO/ DST_HOST/REPO/`, run twice: the second run exits 0
    and sends nothing."""
    from harness import writes
    dst = registry_factory()
    m = mount_factory(None, options={"push": True}, debug=True)
    src_repo = m.path(registry.host, "oci", "app")
    dst_repo = m.path(dst.host, "mirror", "app")
    run(["mkdir", "-p", dst_repo], check=True)
    r = run(["rsync", "-a", src_repo + "/", dst_repo + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    mark = writes.mark(dst)
    r = run(["rsync", "-a", src_repo + "/", dst_repo + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    assert writes.uploads(dst, mark) == []
    for tag in ("latest", "v1"):
        assert writes.pushed_digest(dst, "mirror/app", tag) == samples["oci"].obj.digest
    m.stop()
    assert "not published" not in m.log(), m.log()[-3000:]


def test_cp_order_manifest_before_blobs_the_registry_has(w, samples):
    """cp -r writes in the source's inode order, which need not be the order the files were
    made in: manifest.json and version may come before blobs, and when the registry already
    has those blobs the image is published before cp creates them (O_EXCL). Those creates must
    still succeed (the new tag lingers as what was written), and nothing is sent twice."""
    obj = samples["oci"].obj
    w.preload("late/app", "old", obj)                 # the repository has every blob
    src = w.source(obj, "oci")
    w.mkdirs("late/app/v1")
    tag = w.path("late/app/v1")
    names = ["version", "manifest.json"] + [b.hex for b in obj.blobs]
    mark = w.mark()
    res = writes.write_files([("create", os.path.join(tag, n), os.path.join(src, n))
                              for n in names])
    assert res == ["OK"] * len(names), (list(zip(names, res)), w.describe(mark))
    w.assert_published("late/app", "v1", obj)
    assert len(writes.manifest_puts(w.reg, mark)) == 1, w.describe(mark)
    assert sorted(ls(tag)) == sorted(names)
    r = run(["diff", "-r", src, tag])
    assert r.returncode == 0, r
    assert_clean(w, "late/app", "v1")
