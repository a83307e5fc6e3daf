"""pytest fixtures of the writable-mount tests (tests/test_write_*.py import them).

    w        a WriteEnv: a private, empty registry (w.reg, w.client) and a `-o push -d` mount
             of it (w.mnt); fresh per test, stopped and unmounted by the conftest factories.
    wimages  session: extra images in their own BlobStore: "medium" (one 4 MiB layer), "a"
             (OCI) and "b" (Docker) sharing two base layers; "store" is the BlobStore.

Sources for pushes are built per test with w.source(obj, name) (skopeo write order and
inode order, see writes.source_dir); the sample set's images (samples fixture) are used too,
and the session registry serves as the source of `skopeo copy docker://...`.
"""

import os

import pytest

from . import imagegen as ig
from . import tools
from . import writes
from .regclient import RegistryClient


class WriteEnv:
    """The mount is started on first use (w.mnt, w.path): images put into the registry
    beforehand with w.preload() are seen by it (its catalog and tag lists live for ttl)."""

    def __init__(self, reg, client, mount, tmp, store):
        self.reg = reg
        self.client = client
        self._mount = mount
        self._started = False
        self.tmp = str(tmp)
        self.store = store          # default BlobStore for source()

    @property
    def mnt(self):
        if not self._started:       # once: a test may stop it (w.mnt.stop()) to unmount
            self._started = True
            self._mount.start()
        return self._mount

    def allow_delete(self):
        """Mount with -o allow_delete (rm -r deletes tags, mv drops the old tag)."""
        assert not self._started, "allow_delete() before the first use of the mount"
        self._mount.options["allow_delete"] = True

    def preload(self, repo, tags, obj, store=None):
        """Push obj to REPO:TAGS with the harness client, before the mount starts."""
        assert not self._started, "preload() before the first use of the mount"
        self.client.push(store or self.store, repo, tags, obj)

    def path(self, *parts):
        return self.mnt.path(*parts)

    def mkdirs(self, rel):
        """mkdir -p of a path under the mount (namespaces / repositories), asserted."""
        tools.ok(["mkdir", "-p", self.path(rel)])

    def source(self, obj, name, store=None, tag="v1"):
        """A fresh skopeo-order dir: of obj at TMP/src/NAME/TAG (the dir's name is TAG, so
        `cp -r SRC MOUNT/REPO/` and tar archives carry it)."""
        dest = os.path.join(self.tmp, "src", name, tag)
        return writes.source_dir(store or self.store, obj, dest)

    def push(self, tool, src, repo, tag):
        """Write the dir: image at src into MOUNT/REPO/TAG with a tool; returns its Result.

        tool: "cp -r", "cp -a", "rsync -a", "rsync --inplace", "tar -x" (an archive made with
        --sort=name, so version comes last; src's basename must be TAG), "skopeo dir:"
        (skopeo copy --all dir:SRC dir:DEST). REPO's directories are made first (mkdir -p)."""
        self.mkdirs(repo)
        dest = self.path(repo, tag)
        if tool == "cp -r":
            return tools.run(["cp", "-r", src, dest])
        if tool == "cp -a":
            return tools.run(["cp", "-a", src, dest])
        if tool == "rsync -a":
            return tools.run(["rsync", "-a", src + "/", dest + "/"])
        if tool == "rsync --inplace":
            return tools.run(["rsync", "-a", "--inplace", src + "/", dest + "/"])
        if tool == "tar -x":
            assert os.path.basename(src) == tag, (src, tag)
            tarball = writes.tar_of(src, os.path.join(self.tmp, "%s-%s.tar" % (
                repo.replace("/", "_"), tag)))
            return tools.run(["tar", "-C", self.path(repo), "-xf", tarball])
        if tool == "skopeo dir:":
            return tools.skopeo("copy", "--all", "dir:" + src, "dir:" + dest)
        raise ValueError(tool)

    def digest(self, repo, ref):
        return writes.pushed_digest(self.reg, repo, ref)

    def tags(self, repo):
        return writes.tags(self.client, repo)

    def mark(self):
        return writes.mark(self.reg)

    def requests(self, since, method=None, path_re=None):
        return writes.requests(self.reg, since, method, path_re)

    def uploads(self, since):
        return writes.uploads(self.reg, since)

    def mounts(self, since):
        return writes.mounts(self.reg, since)

    def mounted(self, since):
        """[(digest, from_repo, status)] of cross-repository mounts after since."""
        return writes.mounted(self.reg, since)

    def status(self, rel):
        return writes.status(self.path(rel))

    def describe(self, since=0):
        return writes.describe(self.reg, self.mnt, since)

    def assert_published(self, repo, tag, obj):
        """The registry serves obj's exact manifest bytes under REPO:TAG (and, for an index,
        every instance by digest)."""
        got = self.digest(repo, tag)
        assert got == obj.digest, "%s:%s is %s, want %s\n%s" % (
            repo, tag, got, obj.digest, self.describe())
        if isinstance(obj, ig.Index):
            for img in obj.images:
                assert self.digest(repo, img.digest) == img.digest, img.digest

    def assert_not_published(self, repo, tag, since=0):
        assert tag not in self.tags(repo), self.describe(since)
        puts = [a for a in writes.manifest_puts(self.reg, since)
                if a.path.endswith("/manifests/" + tag)]
        assert puts == [], self.describe(since)


@pytest.fixture(scope="session")
def wimages(session_dir):
    """Extra images for write tests (their own store)."""
    store = ig.BlobStore(session_dir / "wgen" / "blobs")
    base = [ig.make_layer(store, "w/base/os"), ig.make_layer(store, "w/base/lib")]
    imgs = {
        "store": store,
        # one 4 MiB incompressible layer: many write() calls, hashed across FUSE requests
        "medium": ig.make_image(store, "w/medium",
                                [ig.make_large_layer(store, "w/medium/big", 4)]),
        "a": ig.make_image(store, "w/a", base + [ig.make_layer(store, "w/a/1")]),
        "b": ig.make_image(store, "w/b", base + [ig.make_layer(store, "w/b/1")],
                           fmt="docker"),
    }
    return imgs


@pytest.fixture
def w(registry_factory, mount_factory, tmp_path, samples):
    reg = registry_factory()
    mnt = mount_factory(reg.url, start=False, options={"push": True}, debug=True)
    with RegistryClient(reg.url) as c:
        yield WriteEnv(reg, c, mnt, tmp_path, samples.store)
