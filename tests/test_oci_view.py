"""The OCI image-layout view of a tag (docs/tree.md "OCI layout view"): REPO/TAG.oci/ and
REPO:TAG.oci/, read by real consumers (skopeo's oci: transport, umoci), checked against the
registry; never listed; a real tag named like the view wins; read-only.

skopeo and umoci split oci:PATH:REF at the first colon, so they are given the colon-free
spelling REPO/TAG.oci; the REPO:TAG.oci spelling is checked with plain file reads.
"""

import hashlib
import json
import os
import tarfile

import pytest

from harness import imagegen as ig
from harness.regclient import RegistryClient
from harness.tools import errno_of, ls, probe, read_bytes, run, skopeo, tree

ALL = ["oci", "docker", "multi", "multidocker"]


def view_of(mnt, ref, colon=False):
    return mnt.path("%s%s%s.oci" % (ref.repo, ":" if colon else "/", ref.tag))


def is_oci_typed(ref):
    return ref.obj.media_type.startswith("application/vnd.oci.")


def oci_spec(view, ref):
    """skopeo's oci: reference. skopeo 1.9 looks a name up only among OCI-typed descriptors:
    a Docker-typed image is read as the layout's only image (oci:PATH)."""
    return "oci:%s:%s" % (view, ref.tag) if is_oci_typed(ref) else "oci:%s" % view


def layout_blobs(obj):
    """{hex: digest} of every blob an OCI layout of obj holds: manifests, configs, layers."""
    out = {obj.hex: obj.digest}
    for img in getattr(obj, "images", []):
        out[img.hex] = img.digest
    for b in obj.blobs:
        out[b.hex] = b.digest
    return out


@pytest.mark.parametrize("colon", [False, True], ids=["slash", "colon"])
@pytest.mark.parametrize("name", ALL)
def test_view_is_an_oci_layout_of_the_registry_bytes(mnt, client, samples, name, colon):
    ref = samples[name]
    view = view_of(mnt, ref, colon)
    assert ls(view) == ["blobs", "index.json", "oci-layout"]
    assert ls(os.path.join(view, "blobs")) == ["sha256"]
    assert json.loads(read_bytes(os.path.join(view, "oci-layout"))) == \
        {"imageLayoutVersion": "1.0.0"}
    index = json.loads(read_bytes(os.path.join(view, "index.json")))
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    body, content_type, digest = client.get_manifest(ref.repo, ref.tag)
    assert index["manifests"] == [{
        "mediaType": content_type.split(";")[0],
        "digest": digest,
        "size": len(body),
        "annotations": {"org.opencontainers.image.ref.name": ref.tag},
    }]
    assert index["manifests"][0]["digest"] == ref.digest
    blobs = os.path.join(view, "blobs", "sha256")
    want = layout_blobs(ref.obj)
    assert ls(blobs) == sorted(want)
    for hex_ in want:
        data = read_bytes(os.path.join(blobs, hex_))
        assert hashlib.sha256(data).hexdigest() == hex_
        assert probe("stat", os.path.join(blobs, hex_))[1]["size"] == len(data)
    sizes = {line.split("\t")[0]: line.split("\t")[1:] for line in tree(view)}
    assert sizes["index.json"][:2] == ["f", str(len(read_bytes(os.path.join(view, "index.json"))))]
    assert all(m[2] in ("444", "555") for m in sizes.values()), sizes


@pytest.mark.parametrize("name", ALL)
def test_skopeo_inspect_raw_gives_the_registry_digest(mnt, registry, samples, name):
    ref = samples[name]
    r = skopeo("inspect", "--raw", oci_spec(view_of(mnt, ref), ref))
    assert r.returncode == 0, r
    assert r.stdout.encode() == ref.obj.manifest
    reg = skopeo("inspect", "--raw", "--tls-verify=false",
                 "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag))
    assert reg.returncode == 0, reg
    assert hashlib.sha256(r.stdout.encode()).hexdigest() == \
        hashlib.sha256(reg.stdout.encode()).hexdigest() == ref.obj.hex


@pytest.mark.parametrize("name", ALL)
def test_skopeo_inspect_digest_and_layers_match_the_registry(mnt, registry, samples, name):
    ref = samples[name]
    got = skopeo("inspect", oci_spec(view_of(mnt, ref), ref))
    want = skopeo("inspect", "--tls-verify=false",
                  "docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag))
    assert got.returncode == 0 and want.returncode == 0, (got, want)
    got, want = json.loads(got.stdout), json.loads(want.stdout)
    assert got["Layers"] == want["Layers"]
    assert got["Digest"] == want["Digest"] == ref.digest
    assert got["Architecture"] == want["Architecture"]


def dir_contents(path):
    return {f: read_bytes(os.path.join(path, f)) for f in sorted(os.listdir(path))}


@pytest.mark.parametrize("name", ALL)
def test_skopeo_copy_all_from_the_view_equals_the_registry(mnt, samples, skopeo_dir, tmp_path,
                                                          name):
    ref = samples[name]
    dest = tmp_path / "copy"
    r = skopeo("copy", "--all", oci_spec(view_of(mnt, ref), ref), "dir:%s" % dest)
    assert r.returncode == 0, r
    got = dir_contents(str(dest))
    assert sorted(got) == sorted(ig.dir_files(ref.obj))
    assert got == dir_contents(skopeo_dir(ref))        # skopeo copy --all docker://... dir:


def test_skopeo_copy_of_one_platform_of_the_index(mnt, samples, skopeo_dir, tmp_path):
    ref = samples["multi"]
    dest = tmp_path / "arm64"
    r = skopeo("copy", "--override-os", "linux", "--override-arch", "arm64",
               oci_spec(view_of(mnt, ref), ref), "dir:%s" % dest)
    assert r.returncode == 0, r
    assert dir_contents(str(dest)) == dir_contents(skopeo_dir(ref, ("linux", "arm64")))


def layer_files(store, img):
    """Regular files an unpacked img holds: {path: bytes} from its layers' tars."""
    out = {}
    for layer in img.layers:
        with tarfile.open(store.path(layer.digest), "r:gz") as tf:
            for m in tf.getmembers():
                if m.isfile():
                    out[m.name] = tf.extractfile(m).read()
    return out


def umoci_unpack(image, bundle):
    return run(["umoci", "unpack", "--rootless", "--image", image, str(bundle)])


def assert_rootfs(bundle, files):
    rootfs = os.path.join(str(bundle), "rootfs")
    for path, data in files.items():
        with open(os.path.join(rootfs, path), "rb") as f:
            assert f.read() == data, path
    assert os.path.exists(os.path.join(str(bundle), "config.json"))


def test_umoci_unpacks_the_view(mnt, samples, tmp_path):
    ref = samples["oci"]
    r = umoci_unpack("%s:%s" % (view_of(mnt, ref), ref.tag), tmp_path / "bundle")
    assert r.returncode == 0, r
    assert_rootfs(tmp_path / "bundle", layer_files(samples.store, ref.obj))


def test_umoci_unpacks_one_platform_with_the_platform_option(mount_factory, registry, samples,
                                                             tmp_path):
    """umoci 0.4.7 finds a whole index ambiguous; -o platform makes the view one instance."""
    m = mount_factory(registry.url, options={"platform": "linux/arm64"})
    ref = samples["multi"]
    inst = ref.obj.for_platform("linux", "arm64")
    view = view_of(m, ref)
    index = json.loads(read_bytes(os.path.join(view, "index.json")))
    assert index["manifests"][0]["digest"] == inst.digest
    r = umoci_unpack("%s:%s" % (view, ref.tag), tmp_path / "bundle")
    assert r.returncode == 0, r
    assert_rootfs(tmp_path / "bundle", layer_files(samples.store, inst))


def test_views_are_never_listed(mnt, samples):
    for name in ALL:
        ref = samples[name]
        assert probe("stat", view_of(mnt, ref))[0] == "OK"
        assert ref.tag + ".oci" not in ls(mnt.path(ref.repo))
    for top in ("oci", "docker", "multi"):
        names = [line.split("\t")[0] for line in tree(mnt.path(top))]
        assert not [n for n in names if ".oci" in n or ":" in n], names


@pytest.mark.parametrize("rel", [
    "oci/app/nosuchtag.oci",
    "oci/app:nosuchtag.oci",
    "oci/app/.oci",
    "oci/app:.oci",
    "oci/app/v1.oci/nosuchfile",
    "oci/app/v1.oci/manifest.json",
    "oci/app/v1.oci/blobs/sha512",
    "oci/app/v1.oci/blobs/sha256/" + "0" * 64,
    "oci/app/v1.oci/blobs/sha256/version",
    "oci/app/v1/v1.oci",
    "oci.oci",
])
def test_unknown_names_in_and_around_the_view_are_enoent(mnt, samples, rel):
    assert errno_of("stat", mnt.path(rel)) == "ENOENT"


def test_a_blob_of_the_view_is_not_a_directory(mnt, samples):
    ref = samples["oci"]
    blob = os.path.join(view_of(mnt, ref), "blobs", "sha256", ref.obj.config.hex)
    assert errno_of("stat", os.path.join(blob, "x")) == "ENOTDIR"


@pytest.fixture
def own_registry(registry_factory, samples):
    """A private registry: oci/app with tags v1 and v1.oci (another image), and docker/app v1."""
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(samples.store, "oci/app", "v1", samples["oci"].obj)
        c.push(samples.store, "oci/app", "v1.oci", samples["deep"].obj)
        c.push(samples.store, "docker/app", "v1", samples["docker"].obj)
    return reg


def test_a_real_tag_named_like_the_view_wins(mount_factory, own_registry, samples):
    m = mount_factory(own_registry.url)
    real = samples["deep"].obj
    assert ls(m.path("oci/app")) == ["v1", "v1.oci"]
    for spelling in ("oci/app/v1.oci", "oci/app:v1.oci"):
        assert ls(m.path(spelling)) == sorted(ig.dir_files(real))
        assert read_bytes(m.path(spelling, "manifest.json")) == real.manifest
    # the view of the tag v1.oci itself is v1.oci.oci
    index = json.loads(read_bytes(m.path("oci/app/v1.oci.oci/index.json")))
    assert index["manifests"][0]["digest"] == real.digest
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1.oci"


@pytest.mark.parametrize("op,rel", [
    ("create", "docker/app/v1.oci/version"),
    ("create", "docker/app/v1.oci/blobs/sha256/" + "a" * 64),
    ("mkdir", "docker/app/v1.oci/blobs/sha512"),
    ("open_write", "docker/app/v1.oci/index.json"),
    ("open_rdwr", "docker/app/v1.oci/oci-layout"),
    ("truncate", "docker/app/v1.oci/index.json"),
    ("unlink", "docker/app/v1.oci/index.json"),
    ("unlink", "docker/app/v1.oci/blobs/sha256/{config}"),
    ("rmdir", "docker/app/v1.oci/blobs"),
    ("rmdir", "docker/app/v1.oci"),
])
@pytest.mark.parametrize("push", [False, True], ids=["ro", "push"])
def test_writes_into_the_view_fail(mount_factory, own_registry, samples, push, op, rel):
    m = mount_factory(own_registry.url, options={"push": push})
    ref = samples["docker"]
    st = probe(op, m.path(rel.format(config=ref.obj.config.hex)))
    assert st[0] in (("EPERM", "EROFS") if push else ("EROFS",)), st
    assert ls(m.path("docker/app")) == ["v1"]
    assert read_bytes(m.path("docker/app/v1/manifest.json")) == ref.obj.manifest
    assert ls(m.path("docker/app/v1.oci/blobs/sha256")) == sorted(layout_blobs(ref.obj))
    with RegistryClient(own_registry.url) as c:
        assert c.tags("docker/app") == ["v1"]
