"""Pushing through a writable mount (-o push) with the tools users have: cp -r, cp -a,
rsync -a, rsync --inplace, tar -x, skopeo copy and skopeo sync --dest dir (docs/write.md).

Every push is checked on the registry side: `skopeo inspect --raw` of the new tag hashes to
the source's digest (the manifest bytes went through unchanged), and for an index every
instance is there by digest. Each test has its own empty registry (the `w` fixture).
"""

import os

import pytest

from harness import imagegen as ig
from harness import writes
from harness.tools import ls, ok, run, skopeo
from harness.write_fixtures import w, wimages  # noqa: F401  (fixtures)
from harness.writes import write_files

FILE_TOOLS = ["cp -r", "cp -a", "rsync -a", "rsync --inplace", "tar -x", "skopeo dir:"]


def _check_pushed(w, src, repo, tag, obj, result):
    assert result.returncode == 0, "%s\n%s" % (result, w.describe())
    w.assert_published(repo, tag, obj)
    # the directory now shows the registry's image: the same files, the same bytes
    assert sorted(ls(w.path(repo, tag))) == sorted(ig.dir_files(obj)), w.describe()
    r = run(["diff", "-r", src, w.path(repo, tag)])
    assert r.returncode == 0, r
    assert w.status(os.path.join(repo, tag)) == (0, "published")


@pytest.mark.parametrize("tool", FILE_TOOLS)
@pytest.mark.parametrize("name", ["oci", "multi"])
def test_push_dir_image(w, samples, tool, name):
    obj = samples[name].obj
    src = w.source(obj, name, tag="v1")
    r = w.push(tool, src, "push/app", "v1")
    _check_pushed(w, src, "push/app", "v1", obj, r)


@pytest.mark.parametrize("tool", ["cp -r", "rsync -a"])
@pytest.mark.parametrize("name", ["docker", "multidocker"])
def test_push_docker_media_types(w, samples, tool, name):
    """Docker schema2 and a Docker manifest list are pushed with their own media types."""
    obj = samples[name].obj
    src = w.source(obj, name, tag="v2")
    r = w.push(tool, src, "dock/app", "v2")
    _check_pushed(w, src, "dock/app", "v2", obj, r)
    _, ctype, _ = w.client.get_manifest("dock/app", "v2")
    assert ctype == obj.media_type


@pytest.mark.parametrize("name", ["multi", "multidocker"])
def test_rsync_of_skopeos_own_multiarch_dir(w, samples, skopeo_dir, name):
    """rsync -a of the directory `skopeo copy --all docker://... dir:` wrote keeps the index
    digest."""
    ref = samples[name]
    src = skopeo_dir(ref)
    w.mkdirs("sk/multi")
    r = run(["rsync", "-a", src + "/", w.path("sk/multi", "v1") + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("sk/multi", "v1", ref.obj)


@pytest.mark.parametrize("tool", ["cp -r", "tar -x", "rsync -a"])
def test_push_multi_mib_layer(w, wimages, tool):
    """A 4 MiB layer arrives in many writes (tar: ~10 KiB pieces) and is hashed as it comes."""
    obj = wimages["medium"]
    src = w.source(obj, "medium", store=wimages["store"], tag="big")
    mark = w.mark()
    r = w.push(tool, src, "med/app", "big")
    _check_pushed(w, src, "med/app", "big", obj, r)
    # each blob was uploaded exactly once
    puts = [a for a in w.uploads(mark) if a.method == "PUT"]
    assert len(puts) == len(obj.blobs), w.describe(mark)


@pytest.mark.parametrize("name", ["oci", "docker", "multi", "multidocker"])
def test_skopeo_copy_docker_to_mount(w, registry, samples, name):
    """skopeo copy [--all] docker://SRC dir:MOUNT/REPO/TAG publishes the same digest."""
    ref = samples[name]
    w.mkdirs("sk")
    r = skopeo("copy", "--all", "--src-tls-verify=false",
               "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag),
               "dir:" + w.path("sk", "img"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    # dir:MOUNT/sk/img: repository "sk", tag "img"
    w.assert_published("sk", "img", ref.obj)
    assert sorted(ls(w.path("sk", "img"))) == sorted(ig.dir_files(ref.obj))


def test_skopeo_copy_single_platform_of_index(w, registry, samples):
    """Without --all skopeo writes one instance as manifest.json: that instance is pushed."""
    ref = samples["multi"]
    inst = ref.obj.for_platform("linux", "arm64", "v8")
    w.mkdirs("plat/app")
    r = skopeo("copy", "--src-tls-verify=false", "--override-arch", "arm64",
               "--override-variant", "v8",
               "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag),
               "dir:" + w.path("plat/app/arm64"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("plat/app", "arm64", inst)


def test_skopeo_sync_dest_dir(w, registry, samples):
    """skopeo sync --dest dir creates DEST/NAME:TAG for every tag of the source repository:
    the REPO:TAG directories become tags of DEST/NAME."""
    ref = samples["oci"]            # oci/app has tags v1 and latest (same image)
    w.mkdirs("synced")
    r = skopeo("sync", "--src", "docker", "--dest", "dir", "--src-tls-verify=false",
               "%s/%s" % (registry.host, ref.repo), w.path("synced"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    assert w.tags("synced/app") == ["latest", "v1"], w.describe()
    w.assert_published("synced/app", "v1", ref.obj)
    w.assert_published("synced/app", "latest", ref.obj)
    # REPO:TAG names are aliases: the listing shows the repository once, tags below it
    assert "app" in ls(w.path("synced"))
    assert sorted(ls(w.path("synced/app"))) == ["latest", "v1"]
    assert ok(["cat", w.path("synced/app:v1/manifest.json")], text=False).stdout == \
        ref.obj.manifest


def test_skopeo_sync_dest_dir_multiarch_all(w, registry, samples):
    ref = samples["multidocker"]
    w.mkdirs("ms")
    r = skopeo("sync", "--all", "--src", "docker", "--dest", "dir", "--src-tls-verify=false",
               "%s/%s:%s" % (registry.host, ref.repo, ref.tag), w.path("ms"))
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("ms/docker", ref.tag, ref.obj)


def test_skopeo_sync_scoped_in_root_mode(registry_factory, mount_factory, registry, samples,
                                         tmp_path):
    """--scoped names DEST/HOST/PATH:TAG; in root mode that is the registry HOST itself.

    skopeo reads the source through a registries.conf mirror, so the (empty) registry named
    in the scoped path is the one written to."""
    dst = registry_factory()
    m = mount_factory(None, options={"push": True}, debug=True)
    ref = samples["oci"]
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "%s"\ninsecure = true\n'
                    '[[registry.mirror]]\nlocation = "%s"\ninsecure = true\n'
                    % (dst.host, registry.host))
    r = skopeo("--registries-conf", str(conf), "sync", "--scoped", "--src", "docker",
               "--dest", "dir", "--src-tls-verify=false",
               "%s/%s:%s" % (dst.host, ref.repo, ref.tag), m.mountpoint)
    assert r.returncode == 0, "%s\n%s" % (r, writes.describe(dst, m))
    assert writes.pushed_digest(dst, ref.repo, ref.tag) == ref.digest, writes.describe(dst, m)


def test_mkdir_repo_colon_tag_then_cp(w, samples):
    """An image list script: mkdir NS/REPO:TAG, then copy the files into it."""
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    w.mkdirs("lists")
    ok(["mkdir", w.path("lists/app:1.0")])
    r = run(["sh", "-c", 'cp "$1"/* "$2"/', "sh", src, w.path("lists/app:1.0")])
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("lists/app", "1.0", obj)
    assert ls(w.path("lists")) == ["app"]


def test_concurrent_cp_into_two_repositories_sharing_layers(w, wimages):
    """Two cp -r at once, images sharing two base layers: both publish their digest."""
    a, b = wimages["a"], wimages["b"]
    assert set(x.digest for x in a.layers) & set(x.digest for x in b.layers)
    src_a = w.source(a, "a", store=wimages["store"])
    src_b = w.source(b, "b", store=wimages["store"])
    w.mkdirs("par/one")
    w.mkdirs("par/two")
    import subprocess
    procs = [subprocess.Popen(["cp", "-r", s, w.path(repo, "v1")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for s, repo in ((src_a, "par/one"), (src_b, "par/two"))]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=60) + (p.returncode,))
        except subprocess.TimeoutExpired:
            p.kill()
            outs.append(p.communicate() + ("TIMEOUT",))
    assert [o[2] for o in outs] == [0, 0], (outs, w.describe())
    w.assert_published("par/one", "v1", a)
    w.assert_published("par/two", "v1", b)


def test_setattr_fsync_and_xattrs_while_writing(w, samples):
    """chmod, chown, utimens, truncate and fsync succeed on files being written (by fd and by
    path); setting xattrs is EOPNOTSUPP; the status xattr reads; the image still publishes."""
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    w.mkdirs("attrs/app/v1")
    d = w.path("attrs/app/v1")
    layer = obj.layers[0].hex
    ops = [("write", os.path.join(d, "version"), os.path.join(src, "version")),
           ("attrs", os.path.join(d, layer), os.path.join(src, layer)),
           ("chmod", os.path.join(d, layer), 0o600),
           ("chown", os.path.join(d, layer)),
           ("utime", os.path.join(d, layer)),
           ("setxattr", os.path.join(d, layer), "user.test", "1"),
           ("setxattr", d, "user.test", "1"),
           ("chmod", d, 0o700),
           ("chown", d),
           ("getxattr", d, "user.registryfs.status")]
    res = write_files(ops)
    assert res[0] == "OK"
    assert res[1] == {"result": "OK", "steps": [
        "fchmod=OK", "fchown=OK", "futimens=OK", "fsync=OK", "fdatasync=OK",
        "ftruncate+=OK", "ftruncate-=OK", "fsetxattr=EOPNOTSUPP"]}, res[1]
    assert res[2:5] == ["OK"] * 3, res
    assert res[5:7] == ["EOPNOTSUPP"] * 2, res
    assert res[7:9] == ["OK"] * 2, res
    assert res[9].startswith("incomplete"), res[9]
    rest = [b.hex for b in obj.blobs if b.hex != layer] + ["manifest.json"]
    res = write_files([("write", os.path.join(d, n), os.path.join(src, n)) for n in rest])
    assert res == ["OK"] * len(rest), (res, w.describe())
    w.assert_published("attrs/app", "v1", obj)


def test_temporary_names_are_staged_not_pushed(w, samples):
    """rsync's .NAME.XXXXXX, skopeo's dir-put-blob* and ln's Cu* are accepted, listed while
    they exist and never sent; renamed onto a final name they commit it."""
    obj = samples["oci"].obj        # 4 blobs
    src = w.source(obj, "oci")
    w.mkdirs("tmpn/app/v1")
    d = w.path("tmpn/app/v1")
    blobs = [b.hex for b in obj.blobs]
    temps = [".%s.Ab12Cd" % blobs[0], "dir-put-blob123456789", "CuAbCdEf"]
    blobs = blobs[:3]
    mark = w.mark()
    res = write_files([("write", os.path.join(d, t), os.path.join(src, b))
                       for t, b in zip(temps, blobs)])
    assert res == ["OK"] * len(temps)
    assert sorted(ls(w.path("tmpn/app/v1"), "-A")) == sorted(temps)
    assert w.requests(mark, method="PUT") == [] and w.uploads(mark) == []
    last = obj.blobs[3].hex
    res = write_files([("write", os.path.join(d, "version"), os.path.join(src, "version"))] +
                      [("rename", os.path.join(d, t), os.path.join(d, b))
                       for t, b in zip(temps, blobs)] +
                      [("write", os.path.join(d, n), os.path.join(src, n))
                       for n in (last, "manifest.json")])
    assert res == ["OK"] * (len(temps) + 3), (res, w.describe(mark))
    w.assert_published("tmpn/app", "v1", obj)


def test_truncate_by_path_to_the_same_size_changes_nothing(w, samples):
    """`truncate -s SIZE` of a written blob (its own size) succeeds and leaves it committed:
    the image still publishes when the rest arrives."""
    obj = samples["docker"].obj
    src = w.source(obj, "docker")
    w.mkdirs("trunc/app/v1")
    d = w.path("trunc/app/v1")
    layer = obj.layers[0]
    names = ["version", layer.hex]
    res = write_files([("write", os.path.join(d, n), os.path.join(src, n)) for n in names] +
                      [("truncate", os.path.join(d, layer.hex), layer.size)])
    assert res == ["OK"] * 3, res
    rest = [b.hex for b in obj.blobs if b != layer] + ["manifest.json"]
    res = write_files([("write", os.path.join(d, n), os.path.join(src, n)) for n in rest])
    assert res == ["OK"] * len(rest), (res, w.describe())
    w.assert_published("trunc/app", "v1", obj)
