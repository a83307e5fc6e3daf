"""The standard sample set, generated deterministically and pushed once per session.

    s = build_samples(workdir)            # generate (BlobStore under workdir/blobs)
    s.push(client)                        # push everything (a few seconds)
    s["oci"]       -> Ref(repo="oci/app", tag="v1", obj=Image)
    s.repos        -> every repository pushed (sorted)

Names:
  oci          oci/app:v1 (+ :latest)   single-arch OCI manifest, 3 layers (2 shared base)
  docker       docker/app:v1            Docker schema2, shares the base layers with oci/app
  multi        multi/app:v1             OCI index: linux/amd64, linux/arm64/v8
  multidocker  multi/docker:v1          Docker manifest list: linux/amd64, linux/arm64/v8, linux/arm/v7
  deep         a/b/c/app:v1             three namespaces deep (a/b also holds repo `other`)
  deepother    a/b/other:v1
  manytags     manytags/app:t000..t129  130 tags on one image (+ a distinct image at t129)
  bulk         bulk/r000..r119:v1       120 repositories (catalog > 100)
  big          big/app:v1               one ~20 MiB incompressible layer (BIG_MIB)
"""

import os
from dataclasses import dataclass

from . import imagegen as ig

BIG_MIB = int(os.environ.get("REGISTRYFS_TEST_BIG_MIB", "20"))
N_TAGS = 130
N_REPOS = 120


@dataclass
class Ref:
    repo: str
    tag: str
    obj: object        # imagegen.Image or imagegen.Index

    @property
    def digest(self):
        return self.obj.digest

    @property
    def path(self):
        """REPO/TAG as it appears under the mount."""
        return "%s/%s" % (self.repo, self.tag)


class Samples:
    def __init__(self, store):
        self.store = store
        self.refs = {}
        self.extra_tags = {}       # repo -> [(tag, obj)]
        self.bulk = []             # [Ref]
        self.manytags = []         # [(tag, obj)]

    def __getitem__(self, name):
        return self.refs[name]

    @property
    def repos(self):
        r = {ref.repo for ref in self.refs.values()} | {b.repo for b in self.bulk}
        return sorted(r)

    def tags_of(self, repo):
        out = [ref.tag for ref in self.refs.values() if ref.repo == repo]
        out += [t for t, _ in self.extra_tags.get(repo, [])]
        out += [b.tag for b in self.bulk if b.repo == repo]
        if repo == "manytags/app":
            out += [t for t, _ in self.manytags]
        return sorted(set(out))

    def push(self, client):
        for ref in self.refs.values():
            if ref.repo == "manytags/app":
                continue
            client.push(self.store, ref.repo, ref.tag, ref.obj)
        for repo, items in self.extra_tags.items():
            for tag, obj in items:
                client.push(self.store, repo, tag, obj)
        first = None
        for b in self.bulk:
            client.push(self.store, b.repo, b.tag, b.obj, mount_from=first)
            first = first or b.repo
        # many tags: blobs once, then one manifest PUT per tag
        by_obj = {}
        for tag, obj in self.manytags:
            by_obj.setdefault(obj.digest, (obj, []))[1].append(tag)
        for obj, tags in by_obj.values():
            client.push(self.store, "manytags/app", tags, obj)


def build_samples(workdir, big_mib=BIG_MIB):
    store = ig.BlobStore(os.path.join(str(workdir), "blobs"))
    s = Samples(store)
    base = [ig.make_layer(store, "base/os", files=4), ig.make_layer(store, "base/runtime")]

    oci = ig.make_image(store, "oci/app", base + [ig.make_layer(store, "oci/app/1")], fmt="oci",
                        annotations={"org.opencontainers.image.title": "oci-app"})
    s.refs["oci"] = Ref("oci/app", "v1", oci)
    s.extra_tags["oci/app"] = [("latest", oci)]

    dock = ig.make_image(store, "docker/app", base + [ig.make_layer(store, "docker/app/1")],
                         fmt="docker")
    s.refs["docker"] = Ref("docker/app", "v1", dock)

    s.refs["multi"] = Ref("multi/app", "v1", ig.make_multiarch(store, "multi/app", fmt="oci",
                                                               base=base[:1]))
    s.refs["multidocker"] = Ref("multi/docker", "v1", ig.make_multiarch(
        store, "multi/docker", fmt="docker",
        platforms=(("linux", "amd64", None), ("linux", "arm64", "v8"), ("linux", "arm", "v7"))))

    s.refs["deep"] = Ref("a/b/c/app", "v1", ig.make_simple(store, "a/b/c/app"))
    s.refs["deepother"] = Ref("a/b/other", "v1", ig.make_simple(store, "a/b/other", fmt="docker"))

    tiny = ig.make_simple(store, "manytags/app")
    other = ig.make_simple(store, "manytags/app/last")
    s.manytags = [("t%03d" % i, tiny) for i in range(N_TAGS - 1)] + [("t%03d" % (N_TAGS - 1), other)]
    s.refs["manytags"] = Ref("manytags/app", "t000", tiny)
    s.refs["manytags_last"] = Ref("manytags/app", "t%03d" % (N_TAGS - 1), other)

    bulk_img = ig.make_simple(store, "bulk")
    s.bulk = [Ref("bulk/r%03d" % i, "v1", bulk_img) for i in range(N_REPOS)]

    big = ig.make_image(store, "big/app", [ig.make_large_layer(store, "big/app/large", big_mib)],
                        fmt="oci")
    s.refs["big"] = Ref("big/app", "v1", big)
    return s


def build_demo(workdir):
    """A small set for scripts/demo.sh: single-arch OCI, Docker schema2, a multi-arch index."""
    store = ig.BlobStore(os.path.join(str(workdir), "blobs"))
    s = Samples(store)
    base = [ig.make_layer(store, "base/os", files=4)]
    s.refs["oci"] = Ref("demo/oci-app", "v1",
                        ig.make_image(store, "demo/oci", base + [ig.make_layer(store, "demo/oci/1")]))
    s.refs["docker"] = Ref("demo/docker-app", "v1", ig.make_image(
        store, "demo/docker", base + [ig.make_layer(store, "demo/docker/1")], fmt="docker"))
    s.refs["multi"] = Ref("demo/multi-app", "v1", ig.make_multiarch(store, "demo/multi", base=base))
    s.extra_tags["demo/oci-app"] = [("latest", s.refs["oci"].obj)]
    return s
