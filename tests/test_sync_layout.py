"""-o sync_layout: namespaces list their images as NAME:TAG directories, the layout
`skopeo sync --dest dir` writes and `skopeo sync --src dir` reads (issue 11, item 2).

The seeds' upload.sh runs, per project (first-level namespace) of a directory tree,
`skopeo sync --src dir --dest docker DIR/PROJECT REG/PROJECT`. skopeo 1.9 walks DIR/PROJECT for
directories holding a `manifest.json` and names each destination after the *last* component of
its path (the whole relative path with --scoped). Over the plain tree (NAME/TAG/) that last
component is the tag, so every image lands in REG/PROJECT/TAG:latest. These tests run that
workflow as the seeds do, against real registries: once over a local tree written by skopeo
itself (the reference), once over the mount; every name, tag and digest is checked in the
target registries.
"""

import os

import pytest

from harness import imagegen as ig
from harness import writes
from harness.regclient import RegistryClient
from harness.registry import Registry
from harness.tools import ls, ok, run, skopeo

# (repository, tag, seed, format). Four calico images share a tag (the case), node has
# two tags and is also a namespace (node/sub), tools is a namespace two levels deep.
IMAGES = [
    ("calico/node", "v3.15.1", "node1", "docker"),
    ("calico/node", "v3.16.0", "node2", "docker"),
    ("calico/cni", "v3.15.1", "cni", "oci"),
    ("calico/kube-controllers", "v3.15.1", "kc", "docker"),
    ("calico/pod2daemon-flexvol", "v3.15.1", "flex", "oci"),
    ("calico/node/sub", "v1", "sub", "oci"),
    ("calico/tools/ctl", "v1", "ctl", "docker"),
    ("library/alpine", "3.19", "alpine", "oci"),
    ("library/alpine", "latest", "alpine", "oci"),
]
PROJECTS = ["calico", "library"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A registry holding IMAGES; .digests maps (repo, tag) to the manifest digest."""
    work = tmp_path_factory.mktemp("sync_source")
    store = ig.BlobStore(work / "blobs")
    base = [ig.make_layer(store, "sync/base")]
    reg = Registry(work / "registry")
    reg.start()
    try:
        reg.digests = {}
        with RegistryClient(reg.url) as c:
            for repo, tag, seed, fmt in IMAGES:
                obj = ig.make_simple(store, "sync/" + seed, fmt=fmt, base=base)
                reg.digests[(repo, tag)] = c.push(store, repo, tag, obj)
        yield reg
    finally:
        reg.stop()


def _sync(*args):
    r = skopeo("sync", "--src-tls-verify=false", "--dest-tls-verify=false", *args)
    return r


def _local_tree(source, root):
    """The seeds' download side: skopeo sync --src docker --dest dir of each repository into
    the directory of its namespace, giving ROOT/NS/.../NAME:TAG."""
    for repo in sorted({i[0] for i in IMAGES}):
        dest = os.path.join(root, os.path.dirname(repo))
        os.makedirs(dest, exist_ok=True)
        r = _sync("--src", "docker", "--dest", "dir", "%s/%s" % (source.host, repo), dest)
        assert r.returncode == 0, r


def _upload(root, target, scoped=False):
    """upload.sh's sync_image(): for project in $(ls ROOT); skopeo sync --src dir ..."""
    for project in ls(root):
        extra = ["--scoped"] if scoped else []
        r = _sync(*extra, "--src", "dir", "--dest", "docker", os.path.join(root, project),
                  "%s/%s" % (target.host, project))
        assert r.returncode == 0, r


def _contents(reg):
    """{(repo, tag): digest} of everything in reg, from its catalog and tag lists."""
    out = {}
    with RegistryClient(reg.url) as c:
        for repo in writes.catalog(c):
            for tag in writes.tags(c, repo):
                out[(repo, tag)] = writes.pushed_digest(reg, repo, tag)
    return out


def _flattened(digests):
    """Where skopeo sync --src dir without --scoped puts each image: REPO's namespace's
    project plus the last path component (what it does with a local tree too)."""
    return {("%s/%s" % (repo.split("/")[0], repo.split("/")[-1]), tag): d
            for (repo, tag), d in digests.items()}


def _dirs(root):
    """Relative paths of every directory below root, and the files of each image."""
    r = ok(["find", root, "-mindepth", "1"])
    return sorted(os.path.relpath(p, root) for p in r.stdout.splitlines())


def test_listing_is_what_skopeo_sync_dest_dir_writes(source, mount_factory, tmp_path):
    """The mount's tree is the tree skopeo sync --dest dir makes, file for file."""
    local = str(tmp_path / "skopeo")
    _local_tree(source, local)
    m = mount_factory(source.url, options={"sync_layout": True})
    assert ls(m.mountpoint) == PROJECTS
    assert ls(m.path("calico")) == [
        "cni:v3.15.1", "kube-controllers:v3.15.1", "node", "node:v3.15.1", "node:v3.16.0",
        "pod2daemon-flexvol:v3.15.1", "tools"]
    assert ls(m.path("calico/node")) == ["sub:v1"]      # no TAG/ entries: see the docstring
    assert ls(m.path("library")) == ["alpine:3.19", "alpine:latest"]
    assert _dirs(m.mountpoint) == _dirs(local)
    r = run(["diff", "-r", local, m.mountpoint])
    assert r.returncode == 0, r
    # the plain paths still resolve by name
    d = source.digests[("calico/node", "v3.16.0")]
    data = ok(["cat", m.path("calico/node/v3.16.0/manifest.json")], text=False).stdout
    assert writes.sha256_digest(data) == d


def test_upload_sh_pushes_every_image_under_its_name(source, registry_factory, mount_factory,
                                                    tmp_path):
    """upload.sh over the mount = upload.sh over skopeo's own tree, image for image."""
    local = str(tmp_path / "skopeo")
    _local_tree(source, local)
    from_local, from_mount = registry_factory(), registry_factory()
    _upload(local, from_local)
    m = mount_factory(source.url, options={"sync_layout": True})
    _upload(m.mountpoint, from_mount)
    got = _contents(from_mount)
    assert got == _contents(from_local)
    # every two-level image under its own name and tag with its digest; nested ones under
    # PROJECT/NAME, as skopeo does without --scoped from any directory
    assert got == _flattened(source.digests)
    assert len(got) == len(IMAGES)


def test_upload_scoped_keeps_nested_names(source, registry_factory, mount_factory):
    """With --scoped the whole relative path is kept: the target is a copy of the source."""
    target = registry_factory()
    m = mount_factory(source.url, options={"sync_layout": True})
    _upload(m.mountpoint, target, scoped=True)
    assert _contents(target) == source.digests


def test_without_the_option_nothing_changes(source, registry_factory, mount_factory):
    """The plain tree: repositories and tags as directories. upload.sh over it is the issue's
    bug (skopeo takes each tag for a repository name), kept here as the reason for the
    option."""
    m = mount_factory(source.url)
    assert ls(m.path("calico")) == ["cni", "kube-controllers", "node",
                                    "pod2daemon-flexvol", "tools"]
    assert ls(m.path("calico/node")) == ["sub", "v3.15.1", "v3.16.0"]
    assert ls(m.path("library/alpine")) == ["3.19", "latest"]
    target = registry_factory()
    r = _sync("--src", "dir", "--dest", "docker", m.path("calico"), "%s/calico" % target.host)
    assert r.returncode == 0, r
    names = set(_contents(target))
    assert ("calico/v3.15.1", "latest") in names
    assert not names & set(source.digests)


def test_sync_dest_dir_into_writable_mount(source, registry_factory, mount_factory, tmp_path):
    """skopeo sync --src docker --dest dir REG/REPO MNT/NS publishes NS/NAME:TAG; the new
    images are listed as NAME:TAG. A second run of the same sync is refused by skopeo itself
    ("Refusing to overwrite destination directory"), exactly as over a local directory, and
    leaves the registry as it was; syncing further repositories into the same namespace
    (the seeds' sync.sh, one image at a time) works."""
    target = registry_factory()
    m = mount_factory(target.url, options={"push": True, "sync_layout": True}, debug=True)
    src = "%s/calico/node" % source.host
    r = _sync("--src", "docker", "--dest", "dir", src, m.path("calico"))
    assert r.returncode == 0, "%s\n%s" % (r, writes.describe(target, m))
    want = {k: v for k, v in source.digests.items() if k[0] == "calico/node"}
    assert _contents(target) == want, writes.describe(target, m)
    assert ls(m.path("calico")) == ["node:v3.15.1", "node:v3.16.0"]

    local = tmp_path / "local"
    assert _sync("--src", "docker", "--dest", "dir", src, local).returncode == 0
    again_local = _sync("--src", "docker", "--dest", "dir", src, local)
    again = _sync("--src", "docker", "--dest", "dir", src, m.path("calico"))
    assert again_local.returncode != 0 and "Refusing to overwrite" in again_local.stderr
    assert again.returncode != 0 and "Refusing to overwrite" in again.stderr, again
    assert _contents(target) == want, writes.describe(target, m)

    for repo, tag in (("calico/cni", "v3.15.1"), ("calico/tools/ctl", "v1")):
        dest = m.path(os.path.dirname(repo))
        r = _sync("--src", "docker", "--dest", "dir", "%s/%s:%s" % (source.host, repo, tag),
                  dest)
        assert r.returncode == 0, "%s\n%s" % (r, writes.describe(target, m))
        want[(repo, tag)] = source.digests[(repo, tag)]
    assert _contents(target) == want, writes.describe(target, m)
    assert ls(m.path("calico")) == ["cni:v3.15.1", "node:v3.15.1", "node:v3.16.0", "tools"]
    assert ls(m.path("calico/tools")) == ["ctl:v1"]


def test_root_mode_host_directory(source, registry_factory, mount_factory):
    """In root mode each HOST directory is a registry root in the same layout; the root
    still lists hosts."""
    m = mount_factory(None, options={"sync_layout": True})
    host = m.path(source.host)
    assert ls(host) == PROJECTS
    assert ls(os.path.join(host, "library")) == ["alpine:3.19", "alpine:latest"]
    assert source.host in ls(m.mountpoint)
    target = registry_factory()
    _upload(host, target, scoped=True)
    assert _contents(target) == source.digests


def test_listed_while_written_and_empty_dirs(registry_factory, mount_factory):
    """A NAME:TAG being written lists as such before it is published (skopeo stats it,
    then writes into it); a namespace made by mkdir lists while empty."""
    target = registry_factory()
    m = mount_factory(target.url, options={"push": True, "sync_layout": True})
    ok(["mkdir", "-p", m.path("ns/app:v1"), m.path("ns/empty"), m.path("top:v1")])
    assert ls(m.path("ns")) == ["app:v1", "empty"]
    assert ls(m.mountpoint) == ["ns", "top:v1"]
    assert ls(m.path("ns/app:v1")) == []
    assert ls(m.path("ns/app")) == []


def test_help_names_the_option():
    from harness.mount import registryfs_bin
    r = run([registryfs_bin(), "--help"])
    assert "-o sync_layout" in r.stdout + r.stderr
