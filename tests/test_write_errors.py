"""Writes that must not publish: corrupt blobs, descriptor sizes that disagree with the blob,
missing blobs, invalid manifests and versions, invalid names, a registry that goes away in
the middle of a push, and a read-only mount. Each publishes nothing (the registry has no
such tag afterwards) and makes the writing tool exit non-zero where it can: the declaring
points of docs/write.md ("When does a missing blob become an error?").
"""

import json
import os
import time

import pytest

from harness import imagegen as ig
from harness import writes
from harness.regclient import RegistryClient
from harness import tools
from harness.tools import ls, ok, probe, run, skopeo
from harness.write_fixtures import w, wimages  # noqa: F401  (fixtures)
from harness.writes import (dump_manifest, flip_byte, replace_bytes, skopeo_order,
                            uploads, write_files, write_image_files, write_requests)

# tools that declare the image finished (manifest.json after version, or directory times)
DECLARING_TOOLS = ["cp -r", "cp -a", "rsync -a", "tar -x"]


def _assert_failed(w, r, repo, tag, since=0):
    assert r.returncode != 0, "%s\n%s" % (r, w.describe(since))
    w.assert_not_published(repo, tag, since)


@pytest.mark.parametrize("tool", DECLARING_TOOLS + ["skopeo dir:"])
def test_corrupt_blob_is_dropped_and_nothing_published(w, samples, tool):
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    bad = obj.layers[-1]
    flip_byte(os.path.join(src, bad.hex))
    mark = w.mark()
    r = w.push(tool, src, "bad/app", "v1")
    _assert_failed(w, r, "bad/app", "v1", mark)
    # the corrupt bytes never reached the registry under the blob's name
    assert not w.client.blob_exists("bad/app", bad.digest), w.describe(mark)
    if tool != "skopeo dir:":        # skopeo may refuse the corrupt source itself
        assert "Input/output error" in r.stderr, r
        assert "blob %s has content" % bad.hex in w.mnt.log(), w.mnt.log()[-3000:]
        # dropped: the directory does not show it
        assert bad.hex not in ls(w.path("bad/app/v1"))


@pytest.mark.parametrize("tool", DECLARING_TOOLS)
def test_descriptor_size_disagrees_with_blob(w, samples, tool):
    """'Wrong size': the blob is intact (it hashes to its name) but the manifest's
    descriptor gives another size. A registry would accept it; the mount must not."""
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    man = json.loads(obj.manifest)
    man["layers"][0]["size"] += 1
    replace_bytes(os.path.join(src, "manifest.json"), dump_manifest(man))
    mark = w.mark()
    r = w.push(tool, src, "size/app", "v1")
    _assert_failed(w, r, "size/app", "v1", mark)
    assert "Input/output error" in r.stderr, r


def test_descriptor_size_disagrees_with_blob_already_in_registry(w, samples):
    """Only version + manifest.json are written; the blobs are already in the repository,
    with sizes other than the descriptor's. Still nothing is published."""
    obj = samples["oci"].obj
    w.preload("size2/app", "orig", obj)
    man = json.loads(obj.manifest)
    man["layers"][0]["size"] += 1
    bad = os.path.join(w.tmp, "bad-manifest.json")
    with open(bad, "wb") as f:
        f.write(dump_manifest(man))
    version = os.path.join(w.tmp, "version")
    with open(version, "wb") as f:
        f.write(ig.DIR_VERSION)
    w.mkdirs("size2/app")
    ok(["mkdir", w.path("size2/app/bad")])
    mark = w.mark()
    res = write_files([("write", w.path("size2/app/bad/version"), version),
                       ("write", w.path("size2/app/bad/manifest.json"), bad)])
    assert res == ["OK", "EIO@close"], (res, w.describe(mark))
    w.assert_not_published("size2/app", "bad", mark)


@pytest.mark.parametrize("tool", DECLARING_TOOLS)
def test_missing_blob_fails_the_tool(w, samples, tool):
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    missing = obj.layers[1]
    os.unlink(os.path.join(src, missing.hex))
    mark = w.mark()
    r = w.push(tool, src, "miss/app", "v1")
    _assert_failed(w, r, "miss/app", "v1", mark)
    assert "Input/output error" in r.stderr, r
    rc, text = w.status("miss/app/v1")
    assert rc == 0 and text.startswith("failed"), (rc, text)
    # and it is reported at unmount
    w.mnt.stop()
    log = w.mnt.log()
    assert "miss/app:v1 was written but not published" in log, log[-3000:]


def test_status_and_log_name_the_missing_blob(w, samples):
    """After the declaration failed (cp -r, manifest.json last), the status xattr, the error
    log line and the unmount report say which blob is missing."""
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    missing = obj.layers[1]
    os.unlink(os.path.join(src, missing.hex))
    r = w.push("cp -r", src, "why/app", "v1")
    assert r.returncode != 0, r
    rc, text = w.status("why/app/v1")
    assert rc == 0 and text.startswith("failed") and missing.hex in text, (rc, text)
    errors = [l for l in w.mnt.log().splitlines() if "why/app:v1: not published" in l]
    assert errors and all(missing.hex in l for l in errors), errors
    w.mnt.stop()
    report = [l for l in w.mnt.log().splitlines()
              if "why/app:v1 was written but not published" in l]
    assert len(report) == 1 and missing.hex in report[0], report


def test_missing_blob_without_declaration_waits(w, samples):
    """Until both version and manifest.json are written the image is not declared done
    (docs/write.md): a blob not written yet is waited for. Every close succeeds, nothing is
    published, the status says what is missing; the missing blob and version complete it."""
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    missing = obj.layers[0]
    names = ["manifest.json"] + [b.hex for b in obj.blobs if b != missing]
    w.mkdirs("wait/app/v1")
    mark = w.mark()
    res = write_image_files(src, w.path("wait/app/v1"), names)
    assert res == ["OK"] * len(names), (res, w.describe(mark))
    w.assert_not_published("wait/app", "v1", mark)
    rc, text = w.status("wait/app/v1")
    assert rc == 0 and text.startswith("incomplete") and missing.hex in text, (rc, text)
    # writing the missing blob, then version, completes and publishes the image
    res = write_image_files(src, w.path("wait/app/v1"), [missing.hex, "version"])
    assert res == ["OK", "OK"], (res, w.describe(mark))
    w.assert_published("wait/app", "v1", obj)


def test_unpublished_stage_reported_at_unmount(w, samples):
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    w.mkdirs("half/app/v1")
    res = write_image_files(src, w.path("half/app/v1"), ["version", obj.layers[0].hex])
    assert res == ["OK", "OK"]
    w.mnt.stop()
    log = w.mnt.log()
    assert "half/app:v1 was written but not published" in log, log[-3000:]
    assert w.tags("half/app") == []


@pytest.mark.parametrize("tool,content", [
    ("cp -r", b"{\"schemaVersion\": 2, \"mediaType\": "),
    ("rsync -a", b"not json\n"),
    ("cp -r", b""),
], ids=["truncated-cp", "garbage-rsync", "empty-cp"])
def test_invalid_manifest_json(w, samples, tool, content):
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    replace_bytes(os.path.join(src, "manifest.json"), content)
    mark = w.mark()
    r = w.push(tool, src, "json/app", "v1")
    _assert_failed(w, r, "json/app", "v1", mark)
    assert "Input/output error" in r.stderr, r


@pytest.mark.parametrize("tool", ["cp -r", "rsync -a"])
def test_invalid_version(w, samples, tool):
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    replace_bytes(os.path.join(src, "version"), b"Directory Transport Version: 1.0\n")
    mark = w.mark()
    r = w.push(tool, src, "ver/app", "v1")
    _assert_failed(w, r, "ver/app", "v1", mark)
    assert "Input/output error" in r.stderr, r


def test_instance_manifest_not_matching_its_name(w, samples):
    obj = samples["multi"].obj
    src = w.source(obj, "multi")
    inst = obj.images[0]
    replace_bytes(os.path.join(src, inst.hex + ".manifest.json"), inst.manifest + b" ")
    mark = w.mark()
    r = w.push("cp -r", src, "inst/app", "v1")
    _assert_failed(w, r, "inst/app", "v1", mark)


def test_index_with_missing_instance_manifest(w, samples):
    obj = samples["multi"].obj
    src = w.source(obj, "multi")
    os.unlink(os.path.join(src, obj.images[1].hex + ".manifest.json"))
    mark = w.mark()
    r = w.push("cp -a", src, "inst2/app", "v1")
    _assert_failed(w, r, "inst2/app", "v1", mark)


INVALID_DIRS = [
    "UPPER",            # top level: a namespace must be a lower-case component
    "-dash",
    "ns/-dash",
    "ns/bad name",
    "ns/app:bad tag",
    "ns/app:-tag",
    "ns/App:v1",        # REPO:TAG with an invalid repository
    "ns/:v1",
    "ns/app:",
    "ns/app:" + "t" * 129,
]


def test_mkdir_invalid_name_is_einval(w):
    w.mkdirs("ns")
    mark = w.mark()
    res = write_files([("mkdir", w.path(n)) for n in INVALID_DIRS])
    assert dict(zip(INVALID_DIRS, res)) == {n: "EINVAL" for n in INVALID_DIRS}
    assert write_requests(w.reg, mark) == []
    assert ls(w.mnt.mountpoint) == ["ns"]
    assert ls(w.path("ns")) == []
    log = w.mnt.log()
    assert all("mkdir /%s: not a valid" % n in log for n in INVALID_DIRS), log[-3000:]


INVALID_FILES = ["notes.txt", "MANIFEST.JSON", "abc", "sha256:abcd", "0" * 63, "0" * 65,
                 "signature-1", "version.bak", "manifest.json.orig"]


def test_create_invalid_file_name_is_einval(w):
    w.mkdirs("names/app/v1")
    src = os.path.join(w.tmp, "f")
    with open(src, "wb") as f:
        f.write(b"x")
    res = write_files([("write", w.path("names/app/v1", n), src) for n in INVALID_FILES])
    assert dict(zip(INVALID_FILES, res)) == {n: "EINVAL@open" for n in INVALID_FILES}
    assert ls(w.path("names/app/v1")) == []


def test_refused_places_say_what_is_expected(w):
    """A file in a top-level directory (a namespace, never a tag) or in a repository listing:
    EINVAL, and one log line saying where files go (issue 11, part 6)."""
    w.mkdirs("top")
    src = os.path.join(w.tmp, "v")
    with open(src, "wb") as f:
        f.write(b'{"Directory Transport Version": "1.1"}\n')
    res = write_files([("write", w.path("top", "version"), src)])
    assert res == ["EINVAL@open"], res
    assert "/top: a tag directory goes inside a repository (REPO/TAG/)" in w.mnt.log(), \
        w.mnt.log()[-2000:]


def test_nothing_is_sent_before_there_is_something_to_push(w):
    mark = w.mark()
    for d in ("ns", "ns/repo", "ns/repo/tag", "ns/app:v1", "ns/repo/V1.0"):
        st = probe("mkdir", w.path(d))
        assert st[0] == "OK", (d, st)
    version = os.path.join(w.tmp, "version")
    with open(version, "wb") as f:
        f.write(ig.DIR_VERSION)
    assert write_files([("write", w.path("ns/repo/tag/version"), version)]) == ["OK"]
    assert write_requests(w.reg, mark) == [], w.describe(mark)
    assert w.client.catalog() == []
    # the directories are there meanwhile
    assert sorted(ls(w.path("ns/repo"))) == ["V1.0", "tag"]


def test_mkdir_repo_colon_tag_is_listed_as_repo_and_tag(w):
    """mkdir NS/REPO:TAG makes a tag directory at once; like every tag being written it is
    listed (as NS/REPO/TAG; the alias itself is never listed)."""
    w.mkdirs("ns")
    ok(["mkdir", w.path("ns/app:v1")])
    version = os.path.join(w.tmp, "version")
    with open(version, "wb") as f:
        f.write(ig.DIR_VERSION)
    assert write_files([("write", w.path("ns/app:v1/version"), version)]) == ["OK"]
    assert ls(w.path("ns/app:v1")) == ["version"]
    assert ls(w.path("ns")) == ["app"]
    assert ls(w.path("ns/app")) == ["v1"]
    assert ls(w.path("ns/app/v1")) == ["version"]


def test_rmdir_of_unpublished_directory_forgets_it(w):
    version = os.path.join(w.tmp, "version")
    with open(version, "wb") as f:
        f.write(ig.DIR_VERSION)
    w.mkdirs("gone/app/v1")
    assert write_files([("write", w.path("gone/app/v1/version"), version),
                        ("unlink", w.path("gone/app/v1/version")),
                        ("rmdir", w.path("gone/app/v1")),
                        ("rmdir", w.path("gone/app")),
                        ("rmdir", w.path("gone"))]) == ["OK"] * 5
    assert "gone" not in ls(w.mnt.mountpoint)


@pytest.mark.parametrize("retry", ["rsync -a", "skopeo copy", "rm -r + cp -r"])
def test_registry_stopped_mid_push_then_retry(w, samples, retry):
    """The registry goes away after some blobs were committed: the close that completes the
    image fails with EIO (quickly; a blob's close may succeed, its upload runs in the
    background and the completing close reports it), nothing is published; after a restart
    the retry publishes and does not send the blobs that had arrived again. (rsync sees files
    of the right size and mtime and sends nothing: the retry is its setting the directory's
    times.)"""
    obj = samples["oci"].obj
    src = w.source(obj, "oci")
    dest = w.path("flaky/app/v1")
    w.mkdirs("flaky/app/v1")
    names = skopeo_order(obj)      # version, 3 layers, config, manifest.json
    first, rest = names[:4], names[4:]
    # files keep the source's mtimes, as an interrupted rsync -a leaves them
    mark0 = w.mark()
    assert write_image_files(src, dest, first, keep_mtime=True) == ["OK"] * 4, w.describe()
    # their uploads run in the background: let them land before the registry goes away
    assert tools.wait_for(lambda: len([a for a in uploads(w.reg, mark0)
                                       if a.method == "PUT"]) == 3, 30), w.describe(mark0)
    w.reg.stop()
    t0 = time.monotonic()
    res = write_image_files(src, dest, rest, keep_mtime=True)
    elapsed = time.monotonic() - t0
    assert res[-1] == "EIO@close" and set(res) <= {"OK", "EIO@close"}, (res, w.mnt.log()[-3000:])
    assert elapsed < 30, elapsed
    w.reg.start()
    w.assert_not_published("flaky/app", "v1")
    rc, text = w.status("flaky/app/v1")
    assert rc == 0 and text.startswith("failed"), (rc, text)

    mark = w.mark()
    if retry == "rsync -a":
        r = run(["rsync", "-a", src + "/", dest + "/"])
    elif retry == "skopeo copy":
        r = skopeo("copy", "dir:" + src, "dir:" + dest)
    else:
        r = run(["rm", "-r", dest])
        assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
        r = run(["cp", "-r", src, dest])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("flaky/app", "v1", obj)
    sent = [a for a in uploads(w.reg, mark) if a.method == "PUT"]
    resent = [a for a in sent if any(h in a.uri for h in first[1:])]
    assert resent == [], w.describe(mark)
    assert len(sent) == len(obj.blobs) - 3, w.describe(mark)


def test_read_only_mount_refuses_every_write(mount_factory, registry_factory, samples,
                                             tmp_path):
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(samples.store, "ro/app", ["v1", "v2"], samples["oci"].obj)
    m = mount_factory(reg.url)          # no -o push
    src = ig.write_dir(samples.store, samples["oci"].obj, str(tmp_path / "src" / "v3"))
    mark = writes.mark(reg)
    blob = samples["oci"].obj.layers[0].hex
    cmds = [["mkdir", m.path("ro/new")],
            ["cp", "-r", src, m.path("ro/app/v3")],
            ["rsync", "-a", src + "/", m.path("ro/app/v1") + "/"],
            ["ln", m.path("ro/app/v1", blob), m.path("ro/app/v2", "x" + blob)],
            ["mv", m.path("ro/app/v1"), m.path("ro/app/v9")],
            ["rm", "-r", m.path("ro/app/v2")],
            ["touch", m.path("ro/app/v1/version")]]
    for cmd in cmds:
        r = run(cmd)
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r
    for op, rel in (("mkdir", "ro/x"), ("unlink", "ro/app/v1/version"),
                    ("rmdir", "ro/app/v1"), ("chmod", "ro/app/v1/version"),
                    ("utime", "ro/app/v1"), ("truncate", "ro/app/v1/manifest.json")):
        st = probe(op, m.path(rel))
        assert st[0] == "EROFS", (op, st)
    assert writes.write_requests(reg, mark) == []
    with RegistryClient(reg.url) as c:
        assert sorted(c.tags("ro/app")) == ["v1", "v2"]
