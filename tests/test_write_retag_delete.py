"""Re-push, retag, cross-repository mounts, overwrite and delete through a writable mount
(docs/write.md "Overwrite, retag, delete").

"No blob bytes" is checked in the registry's access log: no upload requests (POST
.../blobs/uploads/ without mount=, PUT/PATCH of an upload session); cross-repository mounts
are POSTs with mount=&from=.
"""

import json
import os

import pytest

from harness import imagegen as ig
from harness.regclient import RegistryClient
from harness import writes
from harness.tools import ls, ok, run, skopeo
from harness.write_fixtures import w, wimages  # noqa: F401  (fixtures)
from harness.writes import dump_manifest, write_files


# -- re-push ------------------------------------------------------------------------------

@pytest.mark.parametrize("tool", ["cp -r", "rsync -a", "tar -x", "skopeo dir:"])
def test_repush_to_new_tag_uploads_no_blob(w, samples, tool):
    obj = samples["oci"].obj
    src = w.source(obj, "oci", tag="v1")
    r = w.push("cp -r", src, "re/app", "v1")
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("re/app", "v1", obj)
    src2 = w.source(obj, "oci2", tag="v2")
    mark = w.mark()
    r = w.push(tool, src2, "re/app", "v2")
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("re/app", "v2", obj)
    assert w.uploads(mark) == [], w.describe(mark)
    assert w.tags("re/app") == ["v1", "v2"]


def test_rsync_twice_onto_the_same_tag_uploads_nothing(w, samples):
    obj = samples["multi"].obj
    src = w.source(obj, "multi")
    w.mkdirs("twice/app")
    dest = w.path("twice/app/v1")
    r = run(["rsync", "-a", src + "/", dest + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    mark = w.mark()
    r = run(["rsync", "-a", src + "/", dest + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("twice/app", "v1", obj)
    assert w.uploads(mark) == [], w.describe(mark)


def test_repush_to_another_repository_cross_mounts(w, samples):
    """A blob another repository of the registry is known to hold is mounted, not sent."""
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    r = w.push("cp -r", src, "home/app", "v1")
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    mark = w.mark()
    r = w.push("cp -r", src, "elsewhere/app", "v1")
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("elsewhere/app", "v1", obj)
    assert w.uploads(mark) == [], w.describe(mark)
    assert sorted(w.mounted(mark)) == sorted((b.digest, "home/app", 201) for b in obj.blobs), \
        w.describe(mark)


# -- retag inside the mount ----------------------------------------------------------------

@pytest.mark.parametrize("cp", [["cp", "-r"], ["cp", "-a"], ["cp", "-al"]],
                         ids=["cp -r", "cp -a", "cp -al"])
@pytest.mark.parametrize("same_repo", [True, False], ids=["same-repo", "other-repo"])
def test_copy_of_a_tag_inside_the_mount_moves_no_blob_bytes(w, samples, cp, same_repo):
    ref = samples["oci"]
    w.preload("src/app", "v1", ref.obj)
    dest_repo = "src/app" if same_repo else "dst/app"
    w.mkdirs(dest_repo)
    mark = w.mark()
    r = run(cp + [w.path("src/app/v1"), w.path(dest_repo, "v2")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published(dest_repo, "v2", ref.obj)
    assert w.uploads(mark) == [], w.describe(mark)
    if not same_repo:
        assert sorted(w.mounted(mark)) == sorted((b.digest, "src/app", 201)
                                                 for b in ref.obj.blobs), w.describe(mark)
    assert w.digest("src/app", "v1") == ref.digest


@pytest.mark.parametrize("cp", [["cp", "-r"], ["cp", "-a"]], ids=["cp -r", "cp -a"])
def test_copy_of_a_tag_inside_the_mount_downloads_no_blob(w, samples, cp):
    """docs/write.md: the blobs of cp -r / cp -a inside one registry become references,
    "no bytes move": neither uploaded nor downloaded."""
    ref = samples["oci"]
    w.preload("src/app", "v1", ref.obj)
    w.mkdirs("dst/app")
    mark = w.mark()
    r = run(cp + [w.path("src/app/v1"), w.path("dst/app/v2")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("dst/app", "v2", ref.obj)
    assert w.requests(mark, method="GET", path_re=r"/blobs/") == [], w.describe(mark)


def test_copy_of_an_index_inside_the_mount(w, samples):
    ref = samples["multidocker"]
    w.preload("idx/app", "v1", ref.obj)
    w.mkdirs("idx2/app")
    mark = w.mark()
    r = run(["cp", "-r", w.path("idx/app/v1"), w.path("idx2/app/v1")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("idx2/app", "v1", ref.obj)
    assert w.uploads(mark) == [], w.describe(mark)


def test_ln_of_a_blob_is_a_cross_repository_mount(w, samples):
    obj = samples["oci"].obj
    w.preload("la/app", "v1", obj)
    w.mkdirs("lb/app/v2")
    blob = obj.layers[0]
    mark = w.mark()
    r = run(["ln", w.path("la/app/v1", blob.hex), w.path("lb/app/v2", blob.hex)])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    assert w.mounted(mark) == [(blob.digest, "la/app", 201)], w.describe(mark)
    assert w.client.blob_exists("lb/app", blob.digest)
    assert w.uploads(mark) == [], w.describe(mark)
    assert w.tags("lb/app") == []          # not an image yet
    # ln -f onto the existing name goes through ln's Cu* temporary name
    r = run(["ln", "-f", w.path("la/app/v1", blob.hex), w.path("lb/app/v2", blob.hex)])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    assert ls(w.path("lb/app/v2")) == [blob.hex]
    # the other blobs by links too, then version and manifest.json written: published
    others = [b.hex for b in obj.blobs if b != blob]
    r = run(["ln"] + [w.path("la/app/v1", n) for n in others] + [w.path("lb/app/v2")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    src = w.source(obj, "oci")
    res = write_files([("write", w.path("lb/app/v2", n), os.path.join(src, n))
                       for n in ("version", "manifest.json")])
    assert res == ["OK", "OK"], (res, w.describe(mark))
    w.assert_published("lb/app", "v2", obj)
    assert w.uploads(mark) == [], w.describe(mark)
    assert sorted(m[0] for m in w.mounted(mark)) == sorted(b.digest for b in obj.blobs)


def test_ln_of_every_file_of_a_tag(w, samples):
    """ln of version and manifest.json copies their bytes; with the blobs mounted the
    linked tag is published."""
    obj = samples["oci"].obj
    w.preload("lc/app", "v1", obj)
    w.mkdirs("ld/app/v2")
    mark = w.mark()
    names = ["version"] + [b.hex for b in obj.blobs] + ["manifest.json"]
    r = run(["ln"] + [w.path("lc/app/v1", n) for n in names] + [w.path("ld/app/v2")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published("ld/app", "v2", obj)
    assert w.uploads(mark) == [], w.describe(mark)


@pytest.mark.parametrize("dest_repo", ["mv/app", "mv/other"])
def test_mv_of_a_tag_retags_and_keeps_the_old_tag(w, samples, dest_repo):
    """distribution 2.x deletes manifests by digest only: the old tag stays, with a log line."""
    w.allow_delete()
    ref = samples["docker"]
    w.preload("mv/app", "v1", ref.obj)
    w.mkdirs(dest_repo)
    mark = w.mark()
    r = run(["mv", w.path("mv/app/v1"), w.path(dest_repo, "v9")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_published(dest_repo, "v9", ref.obj)
    assert w.uploads(mark) == [], w.describe(mark)
    w.assert_published("mv/app", "v1", ref.obj)
    assert "the old tag stays" in w.mnt.log(), w.mnt.log()[-3000:]


# -- overwrite ------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["docker", "dir"])
def test_skopeo_overwrites_a_published_tag(w, registry, samples, source):
    """skopeo reads `version`, unlinks every entry, writes the new image: it is published."""
    old, new = samples["oci"], samples["docker"]
    w.preload("ow/app", "v1", old.obj)
    if source == "docker":
        src = "docker://%s/%s:%s" % (registry.host, new.repo, new.tag)
    else:
        src = "dir:" + w.source(new.obj, "new")
    r = skopeo("copy", "--src-tls-verify=false", src, "dir:" + w.path("ow/app/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("ow/app", "v1", new.obj)
    assert sorted(ls(w.path("ow/app/v1"))) == sorted(ig.dir_files(new.obj))


def test_rsync_onto_a_changed_tag(w, samples):
    old, new = samples["oci"], samples["multi"]
    w.preload("rs/app", "v1", old.obj)
    src = w.source(new.obj, "new")
    r = run(["rsync", "-a", src + "/", w.path("rs/app/v1") + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("rs/app", "v1", new.obj)
    assert sorted(ls(w.path("rs/app/v1"))) == sorted(ig.dir_files(new.obj))


def test_replacing_only_manifest_json_of_a_published_tag(w, samples):
    """Published files not replaced still count: a new manifest.json over the same blobs."""
    obj = samples["oci"].obj
    w.preload("man/app", "v1", obj)
    man = json.loads(obj.manifest)
    man["annotations"] = {"org.opencontainers.image.title": "retitled"}
    data = dump_manifest(man)
    path = os.path.join(w.tmp, "manifest.json")
    with open(path, "wb") as f:
        f.write(data)
    mark = w.mark()
    res = write_files([("write", w.path("man/app/v1/manifest.json"), path)])
    assert res == ["OK"], (res, w.describe(mark))
    assert w.digest("man/app", "v1") == ig.sha256_digest(data), w.describe(mark)
    assert w.uploads(mark) == []


# -- delete ----------------------------------------------------------------------------------

def test_rm_r_deletes_the_tag(w, samples):
    w.allow_delete()
    a, b = samples["oci"].obj, samples["docker"].obj
    w.preload("del/app", "v1", a)
    w.preload("del/app", "v2", b)
    assert sorted(ls(w.path("del/app"))) == ["v1", "v2"]
    r = run(["rm", "-r", w.path("del/app/v1")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    assert w.tags("del/app") == ["v2"], w.describe()
    assert w.digest("del/app", "v1") is None
    assert w.digest("del/app", a.digest) is None      # the manifest is gone too
    w.assert_published("del/app", "v2", b)
    assert ls(w.path("del/app")) == ["v2"]


def test_rm_r_of_a_tag_pushed_through_the_mount(w, samples):
    w.allow_delete()
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    w.mkdirs("del2/app")
    r = run(["cp", "-r", src, w.path("del2/app/v1")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("del2/app", "v1", obj)
    r = run(["rm", "-r", w.path("del2/app/v1")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    assert w.tags("del2/app") == []
    assert "v1" not in ls(w.path("del2/app"))


def test_rm_r_refuses_when_another_tag_shares_the_digest(w, samples):
    w.allow_delete()
    obj = samples["oci"].obj
    w.preload("share/app", ["v1", "v2"], obj)
    mark = w.mark()
    r = run(["rm", "-r", w.path("share/app/v1")])
    assert r.returncode != 0, "%s\n%s" % (r, w.describe(mark))
    assert "Device or resource busy" in r.stderr, r
    assert w.tags("share/app") == ["v1", "v2"]
    w.assert_published("share/app", "v1", obj)
    w.assert_published("share/app", "v2", obj)
    # a DELETE by tag may be tried (distribution 2.x answers 400); nothing by digest
    deletes = w.requests(mark, method="DELETE")
    assert [a for a in deletes if a.status < 300 or "/manifests/sha256:" in a.uri] == [], \
        w.describe(mark)
    lines = [l for l in w.mnt.log().splitlines() if "share/app:v1: not deleted" in l]
    assert lines and "v2" in lines[0], w.mnt.log()[-3000:]
    assert sorted(ls(w.path("share/app"))) == ["v1", "v2"]
    # the refused delete changed nothing a listing shows (issue 11, part 4)
    assert sorted(ls(w.path("share/app/v1"))) == sorted(ig.dir_files(obj))


def test_rm_r_without_allow_delete_is_refused_and_the_tag_stays(w, samples):
    """-o push alone never deletes: rm -r fails with EPERM, nothing is sent, and the tag's
    files are listed again (rm unlinked them before its rmdir was refused)."""
    obj = samples["oci"].obj
    w.preload("keep/app", "v1", obj)
    before = sorted(ls(w.path("keep/app/v1")))
    mark = w.mark()
    r = run(["rm", "-r", w.path("keep/app/v1")])
    assert r.returncode != 0, "%s\n%s" % (r, w.describe(mark))
    assert "Operation not permitted" in r.stderr, r
    assert w.requests(mark, method="DELETE") == [], w.describe(mark)
    w.assert_published("keep/app", "v1", obj)
    assert sorted(ls(w.path("keep/app/v1"))) == before
    assert "needs -o allow_delete" in w.mnt.log(), w.mnt.log()[-3000:]


def test_mv_without_allow_delete_is_refused(w, samples):
    """mv would drop the old tag: without -o allow_delete it is EPERM and changes nothing
    (cp -r is the way to retag)."""
    obj = samples["oci"].obj
    w.preload("mvno/app", "v1", obj)
    mark = w.mark()
    r = run(["mv", w.path("mvno/app/v1"), w.path("mvno/app/v2")])
    assert r.returncode != 0, "%s\n%s" % (r, w.describe(mark))
    assert "Operation not permitted" in r.stderr, r
    assert w.tags("mvno/app") == ["v1"], w.describe(mark)
    assert w.requests(mark, method="PUT") == [], w.describe(mark)


def test_cp_between_two_registries_in_root_mode(registry_factory, mount_factory, samples):
    """Root mode: cp -r from one registry's directory to another's pushes the image there,
    every blob streamed from the source's download as it arrives."""
    a, b = registry_factory(), registry_factory()
    ref = samples["multi"]
    with RegistryClient(a.url) as c:
        c.push(samples.store, "x/app", "v1", ref.obj)
    m = mount_factory(None, options={"push": True}, debug=True)
    ok(["mkdir", "-p", m.path(b.host, "y/app")])
    r = run(["cp", "-r", m.path(a.host, "x/app/v1"), m.path(b.host, "y/app/v1")])
    assert r.returncode == 0, "%s\n%s" % (r, writes.describe(b, m))
    assert writes.pushed_digest(b, "y/app", "v1") == ref.digest, writes.describe(b, m)
    for img in ref.obj.images:
        assert writes.pushed_digest(b, "y/app", img.digest) == img.digest
    # the blobs went from a's download straight into b's uploads (fs/prefill.c), not file by
    # file behind cp
    assert "blobs straight from %s/x/app" % a.host in m.log(), m.log()[-3000:]
