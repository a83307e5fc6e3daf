"""Offline packaging (docs/packaging.md): the cache is a distribution storage root, and a local
storage tree (`docker/registry/v2`) mounts as a registry, read-only or `-o push`.

The module fixture `pack` runs the documented flow once, on the connected side:

    registryfs -o cache_dir=CACHE  http://SRC  MNT_SRC
    registryfs -o push,cache_dir=CACHE  /abs/PACKAGE  MNT_PKG
    while read image; do mkdir -p MNT_PKG/$repo; cp -r MNT_SRC/$image MNT_PKG/$repo/$tag; done
    fusermount3 -u ...; tar -C PACKAGE -cf package.tar docker

over five small images (one OCI index, three sharing base layers). The tests then check the
package (blob count, exact link files, hardlinks into the cache), serve it and the cache with
docker-registry (`skopeo inspect --raw` digests, `skopeo copy --all`), run the seeds'
image-select.sh against the cache, push the unpacked tree into another registry with
`rsync -a` between two mounts, and damage copies of the tree (EIO, the mount keeps answering).

Every mount, registry and tmpfs is stopped in a finalizer. Nothing touches a mount from the
pytest process itself (tools.run / tools.probe children).
"""

import contextlib
import hashlib
import os
import shutil
import types
import urllib.parse

import pytest

from harness import imagegen as ig
from harness.packaging import run_flow
from harness import tools
from harness import writes
from harness.mount import Mount, MountError
from harness.regclient import RegistryClient
from harness.registry import Registry

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_SELECT = os.path.join(HERE, "data", "image-select.sh")   # the seed's script, verbatim


# -- the images -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pkgimages(tmp_path_factory):
    """Five images: apps/frontend and apps/backend share two base layers, tools/cli/worker one
    of them; multi/arch is an OCI index (amd64, arm64/v8); single/solo stands alone."""
    store = ig.BlobStore(tmp_path_factory.mktemp("pkggen") / "blobs")
    base_os = ig.make_layer(store, "pkg/base/os", files=4)
    base_lib = ig.make_layer(store, "pkg/base/lib")
    images = [
        ("apps/frontend", "1.0", ig.make_image(
            store, "pkg/frontend", [base_os, base_lib, ig.make_layer(store, "pkg/frontend/1")],
            fmt="oci")),
        ("apps/backend", "1.0", ig.make_image(
            store, "pkg/backend", [base_os, base_lib, ig.make_layer(store, "pkg/backend/1")],
            fmt="docker")),
        ("tools/cli/worker", "2.1", ig.make_image(
            store, "pkg/worker", [base_os, ig.make_layer(store, "pkg/worker/1")], fmt="oci")),
        ("multi/arch", "v1", ig.make_multiarch(store, "pkg/multi", fmt="oci")),
        ("single/solo", "latest", ig.make_simple(store, "pkg/solo", fmt="docker")),
    ]
    return types.SimpleNamespace(store=store, images=images)


def all_digests(objs):
    """Every blob distribution stores for objs: manifests (index instances included), configs,
    layers."""
    out = set()
    for obj in objs:
        out.add(obj.digest)
        if isinstance(obj, ig.Index):
            out |= {img.digest for img in obj.images}
        out |= {b.digest for b in obj.blobs}
    return out


def manifests_of(obj):
    return [obj] + (list(obj.images) if isinstance(obj, ig.Index) else [])


def expected_links(repo, tag, obj):
    """{path under docker/registry/v2/: content} of the link files distribution writes when
    REPO:TAG is pushed: tag current + index, a revision per manifest (instances of an index
    included), a _layers link per config/layer blob (manifests get none)."""
    r = "repositories/%s/" % repo
    links = {
        r + "_manifests/tags/%s/current/link" % tag: obj.digest,
        r + "_manifests/tags/%s/index/sha256/%s/link" % (tag, obj.hex): obj.digest,
    }
    for m in manifests_of(obj):
        links[r + "_manifests/revisions/sha256/%s/link" % m.hex] = m.digest
    for b in obj.blobs:
        links[r + "_layers/sha256/%s/link" % b.hex] = b.digest
    return links


# -- storage-tree helpers -----------------------------------------------------------------------

def v2(root, *parts):
    return os.path.join(str(root), "docker", "registry", "v2", *parts)


def blob_data(root):
    """{hex: path} of `find ROOT/docker/registry/v2/blobs -name data` (asserts the layout
    blobs/sha256/XX/HEX/data)."""
    r = tools.ok(["find", v2(root, "blobs"), "-name", "data"])
    out = {}
    for p in r.stdout.split():
        rel = os.path.relpath(p, v2(root, "blobs")).split("/")
        assert len(rel) == 4 and rel[0] == "sha256" and rel[1] == rel[2][:2] and \
            rel[3] == "data", "not distribution's blob layout: %s" % p
        out[rel[2]] = p
    return out


def repo_files(root):
    """{path under docker/registry/v2/: bytes} of every file below repositories/."""
    base = v2(root)
    out = {}
    for d, _, files in os.walk(v2(root, "repositories")):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, base)] = fh.read()
    return out


def snapshot(root):
    """Every path below root with type, size, inode, link count and (for files < 4 KiB) a
    hash of the content: to show that a read-only mount left a tree alone."""
    out = {}
    for d, dirs, files in os.walk(str(root)):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            h = None
            if os.path.isfile(p) and st.st_size < 4096:
                with open(p, "rb") as fh:
                    h = hashlib.sha256(fh.read()).hexdigest()
            out[os.path.relpath(p, str(root))] = (st.st_mode, st.st_size, st.st_ino,
                                                  st.st_nlink, st.st_mtime_ns, h)
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def assert_blob_files_verify(root):
    for hx, p in blob_data(root).items():
        assert sha256_file(p) == hx, "blob %s does not hash to its name" % p


def assert_links(root, images, exact=True):
    got = repo_files(root)
    want = {}
    for repo, tag, obj in images:
        want.update({k: v.encode() for k, v in expected_links(repo, tag, obj).items()})
    if exact:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        assert not missing and not extra, "link files of %s:\nmissing: %s\nextra: %s" % (
            root, missing[:20], extra[:20])
    else:
        missing = sorted(set(want) - set(got))
        assert not missing, "link files missing in %s: %s" % (root, missing[:20])
    bad = {k: got[k] for k in want if got[k] != want[k]}
    assert not bad, "link contents differ from 'sha256:HEX' (no newline): %s" % bad


def serve(workdir, root):
    """docker-registry serving the storage root `root` (config: storage.filesystem.
    rootdirectory = root, http.addr = 127.0.0.1:<free port>). Use as a context manager."""
    reg = Registry(workdir)
    reg.storage = os.path.abspath(str(root))
    return reg


def assert_served(reg, images, pull_dir=None, store=None):
    """reg serves every REPO:TAG with the source's digest (sha256 of `skopeo inspect --raw`),
    every instance of an index by digest; with pull_dir, `skopeo copy --all` of each works and
    gives the source's dir: files."""
    for repo, tag, obj in images:
        raw = writes.raw_manifest(reg, repo, tag)
        assert raw is not None, "%s:%s not served by %s\n%s" % (repo, tag, reg.host,
                                                                reg.log_tail())
        assert writes.sha256_digest(raw) == obj.digest, "%s:%s digest changed" % (repo, tag)
        if isinstance(obj, ig.Index):
            for img in obj.images:
                raw = writes.raw_manifest(reg, repo, img.digest)
                assert raw is not None and writes.sha256_digest(raw) == img.digest, \
                    "%s@%s not served\n%s" % (repo, img.digest, reg.log_tail())
        if pull_dir is not None:
            os.makedirs(str(pull_dir), exist_ok=True)
            dest = os.path.join(str(pull_dir), repo.replace("/", "_") + "_" + tag)
            r = tools.skopeo("copy", "--all", "--src-tls-verify=false",
                             "docker://%s/%s:%s" % (reg.host, repo, tag), "dir:" + dest)
            assert r.returncode == 0, "%s\n%s" % (r, reg.log_tail())
            want = ig.write_dir(store, obj, dest + ".want")
            d = tools.run(["diff", "-r", want, dest])
            assert d.returncode == 0, d


# -- the packaging flow (docs/packaging.md), once per module ----------------------------------

def write_list(path, images):
    with open(str(path), "w") as f:
        for repo, tag, _ in images:
            f.write("%s:%s\n" % (repo, tag))
    return str(path)


def assert_clean(*mounts):
    """No AddressSanitizer/UBSan/LeakSanitizer report from these (stopped) mounts (asan
    builds via REGISTRYFS_BIN; mount_factory checks its own mounts the same way)."""
    reports = [(m.mountpoint, r) for m in mounts for r in m.sanitizer_reports()]
    assert not reports, "sanitizer reports: %s" % reports[:10]


def new_mount(work, name, registry, **kw):
    base = os.path.join(str(work), name)
    os.makedirs(base, exist_ok=True)
    kw.setdefault("log_file", os.path.join(base, "registryfs.log"))
    return Mount(os.path.join(base, "mnt"), registry, workdir=base, **kw)


@pytest.fixture(scope="module")
def pack(tmp_path_factory, pkgimages):
    work = tmp_path_factory.mktemp("pack")
    P = types.SimpleNamespace(work=str(work), images=pkgimages.images, store=pkgimages.store)
    P.cache = str(work / "cache")
    P.package = str(work / "package")
    P.unpacked = str(work / "unpacked")
    os.makedirs(P.package)
    os.makedirs(P.unpacked)
    src = Registry(work / "src")
    mounts = []
    try:
        src.start()
        P.src = src
        P.cache_host = os.path.join(P.cache, src.host)
        with RegistryClient(src.url) as c:
            for repo, tag, obj in P.images:
                c.push(P.store, repo, tag, obj)
        msrc = new_mount(work, "msrc", src.url, cache_dir=P.cache)
        mounts.append(msrc)
        msrc.start()
        mpkg = new_mount(work, "mpkg", P.package, cache_dir=P.cache, options={"push": True},
                         debug=True)
        mounts.append(mpkg)
        mpkg.start()
        P.list = write_list(work / "image-list.txt", P.images)
        P.flow = run_flow("cp", msrc.mountpoint, mpkg.mountpoint, P.list)
        P.status = {"%s/%s" % (r, t): writes.status(mpkg.path(r, t)) for r, t, _ in P.images}
        mpkg.stop()
        msrc.stop()
        P.pkg_log = mpkg.log()
        P.mounts = (msrc, mpkg)
        P.exit_codes = (msrc.exit_code, mpkg.exit_code)
        P.tar = str(work / "package.tar")
        P.tar_result = tools.run(["tar", "-C", P.package, "-cf", P.tar, "docker"])
        P.untar_result = tools.run(["tar", "-C", P.unpacked, "-xf", P.tar])
        yield P
    finally:
        for m in reversed(mounts):
            m.stop()
        src.stop()


# -- the package ------------------------------------------------------------------------------

def test_pack_flow_publishes_every_image(pack):
    """The documented loop (mkdir -p + cp -r MNT_SRC/REPO:TAG) exits 0, every tag directory of
    the package mount says `published`, the staging directory is gone after unmount, and
    both mounts exit 0."""
    assert pack.flow.returncode == 0, "%s\n%s" % (pack.flow, pack.pkg_log[-4000:])
    bad = {k: v for k, v in pack.status.items() if v != (0, "published")}
    assert not bad, "not published: %s\n%s" % (bad, pack.pkg_log[-4000:])
    assert not os.path.exists(os.path.join(pack.package, ".registryfs-partial")), \
        "PATH/.registryfs-partial left after unmount"
    assert sorted(os.listdir(pack.package)) == ["docker"]
    assert pack.exit_codes == (0, 0)
    assert_clean(*pack.mounts)
    assert pack.tar_result.returncode == 0, pack.tar_result
    assert pack.untar_result.returncode == 0, pack.untar_result


def test_package_blob_count_is_unique_blobs(pack):
    """`find PKG/docker/registry/v2/blobs -name data` = one file per unique blob (configs,
    layers shared by three images counted once, every manifest incl. index instances)."""
    want = {ig.hex_of(d) for d in all_digests(o for _, _, o in pack.images)}
    got = blob_data(pack.package)
    assert len(got) == len(want), "blob files %d, unique blobs %d" % (len(got), len(want))
    assert set(got) == want
    assert set(got) == set(blob_data(pack.src.storage))     # what docker-registry stores
    assert_blob_files_verify(pack.package)
    # the tar holds each blob once too
    r = tools.ok(["tar", "-tf", pack.tar])
    datas = [n for n in r.stdout.split() if n.endswith("/data")]
    assert len(datas) == len(want)


def test_package_link_files_are_distributions(pack):
    """repositories/ holds exactly the link files distribution writes: tag current + index,
    revisions (index instances included), _layers per config/layer; `sha256:HEX`, no newline."""
    assert_links(pack.package, pack.images, exact=True)
    # ground truth: what the source docker-registry itself wrote for the same pushes
    assert repo_files(pack.package) == repo_files(pack.src.storage)


def manifest_hexes(images):
    return {m.hex for _, _, o in images for m in manifests_of(o)}


def not_hardlinked(pkg_root, cache_root, hexes):
    """[(hex, st_nlink, in cache)] of the blob files of pkg_root among hexes that are not the
    cache's inode."""
    cache = blob_data(cache_root)
    out = []
    for hx, p in blob_data(pkg_root).items():
        if hx not in hexes:
            continue
        st = os.stat(p)
        if hx not in cache or os.stat(cache[hx]).st_ino != st.st_ino or st.st_nlink < 2:
            out.append((hx[:12], st.st_nlink, hx in cache))
    return out


def test_package_layer_blobs_are_hardlinks_of_the_cache(pack):
    """Cache and package on one filesystem: every config/layer blob file of the package is the
    cache's inode (st_nlink >= 2), not a copy."""
    hexes = set(blob_data(pack.package)) - manifest_hexes(pack.images)
    bad = not_hardlinked(pack.package, pack.cache_host, hexes)
    assert not bad, "config/layer blobs not hardlinked from the cache (hex, nlink, in " \
        "cache): %s" % bad


def test_package_manifest_blobs_are_hardlinks_of_the_cache(pack):
    """Manifests are blobs in distribution's layout, and the cache holds them as blob files
    too: the package's manifest blob files are the cache's inodes as well."""
    bad = not_hardlinked(pack.package, pack.cache_host, manifest_hexes(pack.images))
    assert not bad, "manifest blobs (%d, index instances included) not hardlinked from the " \
        "cache (hex, nlink, in cache): %s" % (len(manifest_hexes(pack.images)), bad)


def test_package_tar_served_by_docker_registry(pack, tmp_path):
    """The unpacked tar, served by docker-registry: every tag with the source's digest, the
    index's instances by digest, and `skopeo copy --all` of every image (the multi-arch one
    included) gives the source's files."""
    with serve(tmp_path / "serve", pack.unpacked) as reg:
        assert_served(reg, pack.images, pull_dir=tmp_path / "pull", store=pack.store)
        with RegistryClient(reg.url) as c:
            assert sorted(c.catalog()) == sorted(r for r, _, _ in pack.images)


@contextlib.contextmanager
def flow_mounts(pack, tmp_path, pkg):
    """The flow's two mounts over a fresh package directory pkg: (source, package -o push)."""
    pkg.mkdir()
    msrc = new_mount(tmp_path, "msrc", pack.src.url, cache_dir=pack.cache)
    mpkg = new_mount(tmp_path, "mpkg", str(pkg), cache_dir=pack.cache, options={"push": True},
                     debug=True)
    try:
        msrc.start()
        mpkg.start()
        yield msrc, mpkg
    finally:
        mpkg.stop()
        msrc.stop()


def run_flow_ok(tool, pack, msrc, mpkg):
    """The documented loop exits 0 and every image of the list is published."""
    r = run_flow(tool, msrc.mountpoint, mpkg.mountpoint, pack.list)
    assert r.returncode == 0, "%s\n%s" % (r, mpkg.log()[-4000:])
    st = {"%s/%s" % (rp, t): writes.status(mpkg.path(rp, t)) for rp, t, _ in pack.images}
    assert all(v == (0, "published") for v in st.values()), st


def test_pack_with_rsync_gives_the_same_tree(pack, tmp_path):
    """The flow with `rsync -a MNT_SRC/REPO:TAG/ MNT_PKG/REPO/TAG/` instead of cp -r writes the
    same storage tree (same blobs, same link files), blobs hardlinked from the cache."""
    pkg2 = tmp_path / "package2"
    with flow_mounts(pack, tmp_path, pkg2) as (msrc, mpkg):
        mark = pack.src.mark()
        run_flow_ok("rsync", pack, msrc, mpkg)
        # everything came from the cache: no blob was downloaded again
        assert pack.src.requests(mark, method="GET", path_re=r"/blobs/") == []
    assert_clean(msrc, mpkg)
    assert not os.path.exists(pkg2 / ".registryfs-partial")
    assert sorted(blob_data(pkg2)) == sorted(blob_data(pack.package))
    assert repo_files(pkg2) == repo_files(pack.package)
    # config/layer blobs hardlinked (manifests: see the manifest hardlink test)
    hexes = set(blob_data(pkg2)) - manifest_hexes(pack.images)
    assert not_hardlinked(str(pkg2), pack.cache_host, hexes) == []


def test_pack_flow_run_twice_is_a_clean_no_op(pack, tmp_path):
    """The documented loop run twice on the same package (issue 11, part 3): the second run
    exits 0, every tag stays published, the tree is unchanged, and nothing warns."""
    pkg = tmp_path / "package"
    with flow_mounts(pack, tmp_path, pkg) as (msrc, mpkg):
        run_flow_ok("cp", pack, msrc, mpkg)
        tree = repo_files(pkg)
        run_flow_ok("cp", pack, msrc, mpkg)
    assert_clean(msrc, mpkg)
    assert "not published" not in mpkg.log(), mpkg.log()[-3000:]
    assert repo_files(pkg) == tree
    assert sorted(blob_data(pkg)) == sorted(blob_data(pack.package))


# -- the cache is a storage root ---------------------------------------------------------------

def test_cache_of_the_flow_has_links_and_is_served(pack, tmp_path):
    """CACHE/HOST after the flow: blobs verified, the repository links of every image read
    (exactly those), and docker-registry over it serves every image with its digest."""
    want = {ig.hex_of(d) for d in all_digests(o for _, _, o in pack.images)}
    assert set(blob_data(pack.cache_host)) == want
    assert_blob_files_verify(pack.cache_host)
    assert_links(pack.cache_host, pack.images, exact=True)
    assert repo_files(pack.cache_host) == repo_files(pack.src.storage)
    with serve(tmp_path / "serve", pack.cache_host) as reg:
        assert_served(reg, pack.images, pull_dir=tmp_path / "pull", store=pack.store)


def test_cache_of_cp_r_out_of_the_mount_is_servable(pack, mount_factory, tmp_path):
    """Read images with `cp -r MNT/REPO/TAG local/` (fresh cache), then serve CACHE/HOST with
    docker-registry: digests intact, `skopeo copy --all` of the index works."""
    m = mount_factory(pack.src.url)
    out = tmp_path / "out"
    out.mkdir()
    for repo, tag, _ in pack.images:
        r = tools.run(["cp", "-r", m.path(repo, tag), str(out / repo.replace("/", "_"))])
        assert r.returncode == 0, r
    host_root = os.path.join(m.cache_dir, pack.src.host)
    assert_links(host_root, pack.images, exact=True)
    with serve(tmp_path / "serve", host_root) as reg:
        assert_served(reg, pack.images, pull_dir=tmp_path / "pull", store=pack.store)


def test_cache_layers_link_written_once_blob_is_cached(pack, mount_factory):
    """Reading only manifest.json records the tag and revision links but no _layers link;
    the _layers link of a blob appears once the blob is in the cache."""
    repo, tag, obj = pack.images[4]                   # single/solo:latest
    m = mount_factory(pack.src.url)
    assert tools.read_bytes(m.path(repo, tag, "manifest.json")) == obj.manifest
    root = os.path.join(m.cache_dir, pack.src.host)
    links = repo_files(root)
    r = "repositories/%s/" % repo
    assert links.get(r + "_manifests/tags/%s/current/link" % tag) == obj.digest.encode()
    assert links.get(r + "_manifests/tags/%s/index/sha256/%s/link" % (tag, obj.hex)) == \
        obj.digest.encode()
    assert links.get(r + "_manifests/revisions/sha256/%s/link" % obj.hex) == \
        obj.digest.encode()
    layer = obj.layers[0]
    lpath = r + "_layers/sha256/%s/link" % layer.hex
    assert lpath not in links, "_layers link before the blob is cached"
    assert tools.sha256sum(m.path(repo, tag, layer.hex)) == layer.hex
    assert repo_files(root).get(lpath) == layer.digest.encode()


def test_blob_shared_by_two_registries_is_stored_once(pack, registry_factory, mount_factory,
                                                      tmp_path):
    """Root mode, one cache: an image read from registry 1, then the same blobs from
    registry 2 under another name: registry 2 is not asked for those blobs, and
    CACHE/HOST1 and CACHE/HOST2 hold the same inode for each."""
    reg2 = registry_factory()
    repo, tag, obj = pack.images[0]                   # apps/frontend:1.0
    with RegistryClient(reg2.url) as c:
        c.push(pack.store, "mirror/frontend", "1.0", obj)
    m = mount_factory(None)
    out = tmp_path / "out"
    out.mkdir()
    r = tools.run(["cp", "-r", m.path(pack.src.host, repo, tag), str(out / "one")])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    mark = reg2.mark(settle=0.3)
    r = tools.run(["cp", "-r", m.path(reg2.host, "mirror/frontend", "1.0"), str(out / "two")])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    assert tools.run(["diff", "-r", str(out / "one"), str(out / "two")]).returncode == 0
    gets = reg2.requests(mark, method="GET", path_re=r"/blobs/")
    assert gets == [], "blobs downloaded again from registry 2: %s" % [a.uri for a in gets]
    c1 = blob_data(os.path.join(m.cache_dir, pack.src.host))
    c2 = blob_data(os.path.join(m.cache_dir, reg2.host))
    for b in obj.blobs:
        assert b.hex in c1 and b.hex in c2, b.hex
        s1, s2 = os.stat(c1[b.hex]), os.stat(c2[b.hex])
        assert s1.st_ino == s2.st_ino and s1.st_nlink >= 2, \
            "blob %s stored twice (inodes %d, %d)" % (b.hex[:12], s1.st_ino, s2.st_ino)
    # and CACHE/HOST2 is itself a storage root docker-registry serves
    with serve(tmp_path / "serve", os.path.join(m.cache_dir, reg2.host)) as reg:
        assert_served(reg, [("mirror/frontend", "1.0", obj)])
    # the manifest is a blob of both storage roots too
    s1, s2 = os.stat(c1[obj.hex]), os.stat(c2[obj.hex])
    assert s1.st_ino == s2.st_ino, "manifest blob %s stored twice (inodes %d, %d)" % (
        obj.hex[:12], s1.st_ino, s2.st_ino)


# -- the seeds' image-select.sh ----------------------------------------------------------------

# The subset selected: single-arch images. The script cannot select an index: it links the
# index blob and greps the instance digests out of it as if they were layers (a _layers link,
# no revision link, the instances' own blobs never followed), so distribution would not serve
# the instances.
SELECTED = ("apps/frontend", "apps/backend", "tools/cli/worker")

# The one change that makes the seed script work: its `{current,index/sha256}` brace
# expansion is inside double quotes, so bash creates a directory literally named
# `{current,index` (with `sha256}` in it) and never `.../tags/TAG/current`; the following
# `echo -n ... > .../current/link` then fails (No such file or directory) and `set -e` stops
# the script at the first image.
QUOTE_BUG = '/_manifests/tags/${image_tag}/{current,index/sha256}"'
QUOTE_FIX = '/_manifests/tags/${image_tag}/"{current,index/sha256}'


def run_image_select(script, pack, tmp_path):
    """As its author evidently ran it: from inside the registry storage root (the layer
    `ln -f "${BLOB_DIR}/..."` paths are relative to the current directory), with a directory
    of *.list files, the storage root and an output directory."""
    lists = tmp_path / "lists"
    lists.mkdir()
    with open(str(lists / "customer.list"), "w") as f:
        f.write("# images for the customer\n")
        for repo, tag, _ in pack.images:
            if repo in SELECTED:
                f.write("%s:%s\n" % (repo, tag))
    out = tmp_path / "selected"
    r = tools.run(["bash", script, str(lists), pack.cache_host, str(out)], cwd=pack.cache_host)
    return r, str(out)


def check_selected(pack, out, tmp_path):
    subset = [i for i in pack.images if i[0] in SELECTED]
    want = {ig.hex_of(d) for d in all_digests(o for _, _, o in subset)}
    got = blob_data(out)
    assert set(got) == want
    cache = blob_data(pack.cache_host)
    for hx, p in got.items():
        assert os.stat(p).st_ino == os.stat(cache[hx]).st_ino, "not a hardlink: " + p
    with serve(tmp_path / "serve", out) as reg:
        assert_served(reg, subset, pull_dir=tmp_path / "pull", store=pack.store)
        with RegistryClient(reg.url) as c:
            assert sorted(c.catalog()) == sorted(SELECTED)


def test_image_select_unchanged_against_the_cache(pack, tmp_path):
    """The seed's image-select.sh, byte for byte, run from CACHE/HOST. It cannot work as
    written (see QUOTE_BUG): that exact failure is an expected failure; any other failure
    fails; success is checked like the fixed run."""
    r, out = run_image_select(IMAGE_SELECT, pack, tmp_path)
    if r.returncode != 0:
        tag = "1.0"
        literal = v2(out, "repositories", "apps/frontend", "_manifests", "tags", tag,
                     "{current,index")
        if ("/_manifests/tags/%s/current/link: No such file or directory" % tag in r.stderr
                and os.path.isdir(literal)):
            pytest.xfail("seed image-select.sh bug, not ours: quoted brace expansion "
                         "'%s' creates a directory named '{current,index' instead of "
                         "current/, so 'echo > .../current/link' fails under set -e:\n%s"
                         % (QUOTE_BUG, r.stderr.strip()))
    assert r.returncode == 0, r
    check_selected(pack, out, tmp_path)


def test_image_select_quote_fixed_against_the_cache(pack, tmp_path):
    """The seed's script with only its brace-quoting bug fixed, run from CACHE/HOST: its
    output (blobs hardlinked out of the cache) is served by docker-registry with every
    digest, and each selected image pulls."""
    with open(IMAGE_SELECT) as f:
        text = f.read()
    assert text.count(QUOTE_BUG) == 1
    fixed = tmp_path / "image-select-fixed.sh"
    fixed.write_text(text.replace(QUOTE_BUG, QUOTE_FIX))
    r, out = run_image_select(str(fixed), pack, tmp_path)
    assert r.returncode == 0, r
    check_selected(pack, out, tmp_path)


# -- a storage tree is a registry ---------------------------------------------------------------

def test_package_mount_reads_like_the_source(pack, mount_factory):
    """The unpacked tree mounted read-only shows the same tree of dir: views as the source
    registry (repositories, tags, files, bytes), and reading leaves the tree untouched."""
    before = snapshot(pack.unpacked)
    m = mount_factory(pack.unpacked)
    assert tools.ls(m.mountpoint) == sorted({r.split("/")[0] for r, _, _ in pack.images})
    for repo, tag, obj in pack.images:
        assert tools.ls(m.path(repo)) == [tag]
        assert sorted(tools.ls(m.path(repo, tag))) == sorted(ig.dir_files(obj))
        want = ig.write_dir(pack.store, obj, os.path.join(m.workdir, "want", repo, tag))
        d = tools.run(["diff", "-r", want, m.path(repo, tag)])
        assert d.returncode == 0, "%s\n%s" % (d, m.log()[-3000:])
    assert tools.errno_of("mkdir", m.path("new")) == "EROFS"
    m.stop()
    assert snapshot(pack.unpacked) == before, "a read-only mount changed the storage tree"


def test_rsync_package_into_registry(pack, registry_factory, mount_factory):
    """Offline side: `registryfs PKG MNT_PKG`, `registryfs -o push http://DST MNT_DST`,
    `rsync -a MNT_PKG/ MNT_DST/`: every image in DST with its digest (instances too), each
    blob uploaded at most once, and a second rsync transfers nothing."""
    dst = registry_factory()
    mpkg = mount_factory(pack.unpacked)
    mdst = mount_factory(dst.url, options={"push": True}, debug=True)
    mark = dst.mark()
    r = tools.run(["rsync", "-a", mpkg.mountpoint + "/", mdst.mountpoint + "/"])
    assert r.returncode == 0, "%s\n%s" % (r, writes.describe(dst, mdst, mark))
    for repo, tag, obj in pack.images:
        got = writes.pushed_digest(dst, repo, tag)
        assert got == obj.digest, "%s:%s is %s\n%s" % (repo, tag, got,
                                                      writes.describe(dst, mdst, mark))
        for img in manifests_of(obj)[1:]:
            assert writes.pushed_digest(dst, repo, img.digest) == img.digest
    puts = [a for a in dst.requests(mark, method="PUT", path_re=r"/blobs/uploads/")]
    digests = [urllib.parse.parse_qs(a.uri.split("?", 1)[1]).get("digest", ["?"])[0]
               for a in puts]
    dup = sorted({d for d in digests if digests.count(d) > 1})
    assert not dup, "blobs uploaded more than once: %s" % dup
    blobs = set()
    for _, _, obj in pack.images:
        blobs |= {b.digest for b in obj.blobs}
    assert set(digests) <= blobs
    r = tools.run(["rsync", "-ai", mpkg.mountpoint + "/", mdst.mountpoint + "/"])
    assert r.returncode == 0, r
    sent = [l for l in r.stdout.splitlines() if l.startswith(">f") or l.startswith("<f")]
    assert sent == [], r


# -- damaged trees --------------------------------------------------------------------------------

def _damage(root, kind, images):
    """Damage the storage tree `root` (a private copy); returns (path under the mount that
    must give EIO, the probe op, a good file path under the mount with its expected bytes
    or digest, a string the log line names)."""
    by = {r: (r, t, o) for r, t, o in images}
    blobs = v2(root, "blobs", "sha256")

    def bpath(hx):
        return os.path.join(blobs, hx[:2], hx, "data")

    if kind == "dangling-tag-link":         # a new tag pointing at a manifest that is not there
        repo, _, _ = by["apps/frontend"]
        ghost = hashlib.sha256(b"no such manifest").hexdigest()
        d = v2(root, "repositories", repo, "_manifests", "tags", "ghost")
        os.makedirs(os.path.join(d, "current"))
        os.makedirs(os.path.join(d, "index", "sha256", ghost))
        for p in (os.path.join(d, "current", "link"),
                  os.path.join(d, "index", "sha256", ghost, "link")):
            with open(p, "w") as f:
                f.write("sha256:" + ghost)
        return [("listdir", "apps/frontend/ghost"),
                ("read", "apps/frontend/ghost/manifest.json")], ghost
    if kind == "manifest-blob-missing":     # the tag's manifest blob deleted
        repo, tag, obj = by["tools/cli/worker"]
        os.unlink(bpath(obj.hex))
        return [("listdir", "%s/%s" % (repo, tag)),
                ("read", "%s/%s/manifest.json" % (repo, tag))], obj.hex
    if kind == "garbage-tag-link":          # current/link is not a digest
        repo, tag, obj = by["multi/arch"]
        with open(v2(root, "repositories", repo, "_manifests", "tags", tag, "current",
                     "link"), "w") as f:
            f.write("garbage\n")
        return [("listdir", "%s/%s" % (repo, tag))], repo
    if kind == "layer-blob-missing":        # a layer only this image has, deleted
        repo, tag, obj = by["apps/backend"]
        layer = obj.layers[-1]
        os.unlink(bpath(layer.hex))
        return [("read", "%s/%s/%s" % (repo, tag, layer.hex))], layer.hex
    if kind == "layer-blob-truncated":      # shorter than its descriptor says
        repo, tag, obj = by["tools/cli/worker"]
        layer = obj.layers[-1]
        os.truncate(bpath(layer.hex), layer.size // 2)
        return [("read", "%s/%s/%s" % (repo, tag, layer.hex))], layer.hex
    if kind == "manifest-blob-corrupt":     # one byte of the tag's manifest flipped
        repo, tag, obj = by["single/solo"]
        writes.flip_byte(bpath(obj.hex))
        return [("listdir", "%s/%s" % (repo, tag)),
                ("read", "%s/%s/manifest.json" % (repo, tag))], obj.hex
    if kind == "layer-blob-corrupt":        # one byte flipped, same size
        repo, tag, obj = by["single/solo"]
        layer = obj.layers[-1]
        writes.flip_byte(bpath(layer.hex))
        return [("read", "%s/%s/%s" % (repo, tag, layer.hex))], layer.hex
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["dangling-tag-link", "manifest-blob-missing",
                                  "garbage-tag-link", "manifest-blob-corrupt",
                                  "layer-blob-missing", "layer-blob-truncated",
                                  "layer-blob-corrupt"])
def test_damaged_tree_gives_eio_and_the_mount_keeps_answering(pack, mount_factory, tmp_path,
                                                              kind):
    """A storage tree with a dangling/damaged tag link or a missing/corrupt blob: EIO on that
    image (ls of the tag, cat of the file), a log line, no crash; the other images stay
    readable (the mount still answers afterwards)."""
    root = tmp_path / "damaged"
    tools.ok(["cp", "-a", pack.unpacked, str(root)])
    probes, named = _damage(str(root), kind, pack.images)
    m = mount_factory(str(root), debug=True)
    for op, rel in probes:
        res = tools.probe(op, m.path(rel))
        assert res[0] == "EIO", "%s %s -> %s (want EIO)\n%s" % (op, rel, res, m.log()[-3000:])
        assert m.proc is not None and m.proc.poll() is None, \
            "registryfs exited (%s) after %s %s\n%s" % (m.proc.returncode if m.proc else "?",
                                                         op, rel, m.describe())
    # a second try is EIO again (no stale success, no hang)
    op, rel = probes[-1]
    assert tools.probe(op, m.path(rel))[0] == "EIO"
    # the mount still answers; the undamaged images read fully
    assert tools.ls(m.mountpoint) == sorted({r.split("/")[0] for r, _, _ in pack.images})
    repo, tag, obj = pack.images[0]                   # apps/frontend:1.0
    assert tools.read_bytes(m.path(repo, tag, "manifest.json")) == obj.manifest
    for b in obj.blobs:
        assert tools.sha256sum(m.path(repo, tag, b.hex)) == b.hex
    assert m.proc.poll() is None
    log = m.log()
    assert named in log, "no log line naming %s:\n%s" % (named, log[-3000:])


# -- ln / cp inside a storage tree ---------------------------------------------------------------

@pytest.mark.parametrize("tool", ["cp -r", "cp -al", "ln"])
def test_copy_inside_tree_only_adds_links(pack, mount_factory, tmp_path, tool):
    """`cp -r`, `cp -al` or `ln` of a tag inside a `-o push` storage mount: the new tag is
    published, but no blob file is added or copied (same inodes, same count): the new
    repository only gains its _layers/revision/tag links."""
    root = tmp_path / "tree"
    tools.ok(["cp", "-a", pack.unpacked, str(root)])
    before = {hx: os.stat(p).st_ino for hx, p in blob_data(root).items()}
    nlinks = {hx: os.stat(p).st_nlink for hx, p in blob_data(root).items()}
    repo, tag, obj = pack.images[0]                   # apps/frontend:1.0 (OCI)
    m = mount_factory(str(root), options={"push": True}, debug=True, cache_dir=pack.cache)
    src = m.path(repo, tag)
    tools.ok(["mkdir", "-p", m.path("copies/frontend")])
    dest = m.path("copies/frontend", "v2")
    if tool == "cp -r":
        r = tools.run(["cp", "-r", src, dest])
    elif tool == "cp -al":
        r = tools.run(["cp", "-al", src, dest])
    else:
        names = ["version"] + [b.hex for b in obj.blobs] + ["manifest.json"]
        script = 'set -e; mkdir "$2"; for n in %s; do ln "$1/$n" "$2/$n"; done' % \
            " ".join(names)
        r = tools.run(["bash", "-c", script, "sh", src, dest])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    assert writes.status(dest) == (0, "published"), m.log()[-3000:]
    d = tools.run(["diff", "-r", src, dest])
    assert d.returncode == 0, d
    m.stop()
    after = {hx: os.stat(p).st_ino for hx, p in blob_data(root).items()}
    assert after == before, "blob files added or replaced by %s" % tool
    assert {hx: os.stat(p).st_nlink for hx, p in blob_data(root).items()} == nlinks
    assert_links(root, pack.images + [("copies/frontend", "v2", obj)], exact=True)
    assert not os.path.exists(root / ".registryfs-partial")


def test_ln_of_a_blob_inside_tree_is_a_layers_link(pack, mount_factory, tmp_path):
    """`ln REPO/TAG/HEX NEWREPO/TAG/HEX` in a `-o push` storage mount: the one stored blob gains
    a _layers link in NEWREPO at once (no new blob file, same inode, same link count); with
    `version` and `manifest.json` copied in, the new tag is published and served."""
    root = tmp_path / "tree"
    tools.ok(["cp", "-a", pack.unpacked, str(root)])
    before = {hx: (os.stat(p).st_ino, os.stat(p).st_nlink) for hx, p in blob_data(root).items()}
    repo, tag, obj = pack.images[2]                   # tools/cli/worker:2.1
    m = mount_factory(str(root), options={"push": True}, debug=True, cache_dir=pack.cache)
    src = m.path(repo, tag)
    dest = m.path("linked/worker", "v1")
    tools.ok(["mkdir", "-p", dest])
    layer = obj.layers[-1]
    r = tools.run(["ln", os.path.join(src, layer.hex), os.path.join(dest, layer.hex)])
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    link = v2(root, "repositories", "linked/worker", "_layers", "sha256", layer.hex, "link")
    assert os.path.isfile(link), "no _layers link after ln\n" + m.log()[-3000:]
    with open(link) as f:
        assert f.read() == layer.digest
    for b in obj.blobs:
        if b is not layer:
            r = tools.run(["ln", os.path.join(src, b.hex), os.path.join(dest, b.hex)])
            assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    for name in ("version", "manifest.json"):
        r = tools.run(["cp", os.path.join(src, name), os.path.join(dest, name)])
        assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    assert writes.status(dest) == (0, "published"), m.log()[-3000:]
    m.stop()
    after = {hx: (os.stat(p).st_ino, os.stat(p).st_nlink) for hx, p in blob_data(root).items()}
    assert after == before, "blob files added, replaced or linked by ln"
    assert_links(root, pack.images + [("linked/worker", "v1", obj)], exact=True)
    with serve(tmp_path / "serve", root) as reg:
        assert_served(reg, [("linked/worker", "v1", obj)], pull_dir=tmp_path / "pull",
                      store=pack.store)


# -- different filesystems, relative path --------------------------------------------------------

@pytest.fixture
def tmpfs_dir(tmp_path):
    d = tmp_path / "tmpfs"
    d.mkdir()
    tools.ok(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(d)])
    try:
        yield d
    finally:
        if tools.mounted(d):
            r = tools.run(["umount", str(d)])
            if r.returncode != 0:
                tools.run(["umount", "-l", str(d)])


def test_pack_across_filesystems_copies_blobs(pack, tmpfs_dir, tmp_path):
    """Package on another filesystem than the cache: blob files are copies (st_nlink 1),
    correct, and the tree is distribution's layout, served by docker-registry."""
    pkg = tmpfs_dir / "package"
    pkg.mkdir()
    images = [pack.images[0], pack.images[3]]         # frontend, the multi-arch index
    lst = write_list(tmp_path / "list.txt", images)
    msrc = new_mount(tmp_path, "msrc", pack.src.url, cache_dir=pack.cache)
    mpkg = new_mount(tmp_path, "mpkg", str(pkg), cache_dir=pack.cache, options={"push": True},
                     debug=True)
    try:
        msrc.start()
        mpkg.start()
        r = run_flow("cp", msrc.mountpoint, mpkg.mountpoint, lst)
        assert r.returncode == 0, "%s\n%s" % (r, mpkg.log()[-3000:])
        for repo, tag, _ in images:
            assert writes.status(mpkg.path(repo, tag)) == (0, "published"), mpkg.log()[-3000:]
    finally:
        mpkg.stop()
        msrc.stop()
    assert_clean(msrc, mpkg)
    got = blob_data(pkg)
    assert set(got) == {ig.hex_of(d) for d in all_digests(o for _, _, o in images)}
    assert [hx for hx, p in got.items() if os.stat(p).st_nlink != 1] == []
    assert_blob_files_verify(pkg)
    assert_links(pkg, images, exact=True)
    with serve(tmp_path / "serve", pkg) as reg:
        assert_served(reg, images, pull_dir=tmp_path / "pull", store=pack.store)


def test_relative_storage_path_in_daemon_mode(pack, tmp_path):
    """`registryfs ./PKG MNT` run from PKG's parent, daemonized (the daemon changes
    directory to /): the tree is still the one given, read-only and rw alike."""
    shutil.copytree(pack.unpacked, str(tmp_path / "pkg"), symlinks=True)
    m = new_mount(tmp_path, "m", "./pkg", foreground=False, cwd=str(tmp_path),
                  cache_dir=tmp_path / "cache")
    try:
        m.start()
        repo, tag, obj = pack.images[1]
        assert tools.ls(m.path(repo)) == [tag]
        assert tools.read_bytes(m.path(repo, tag, "manifest.json")) == obj.manifest
        assert tools.sha256sum(m.path(repo, tag, obj.layers[-1].hex)) == obj.layers[-1].hex
    finally:
        m.stop()
    w = new_mount(tmp_path, "w", "./pkg", foreground=False, cwd=str(tmp_path),
                  cache_dir=tmp_path / "cache", options={"push": True})
    try:
        w.start()
        repo, tag, obj = pack.images[4]
        tools.ok(["mkdir", "-p", w.path("again")])
        r = tools.run(["cp", "-r", w.path(repo, tag), w.path("again", "solo")])
        assert r.returncode == 0, "%s\n%s" % (r, w.log()[-3000:])
        assert writes.status(w.path("again", "solo")) == (0, "published"), w.log()[-3000:]
    finally:
        w.stop()
    assert_clean(m, w)
    assert (tmp_path / "pkg" / "docker" / "registry" / "v2" / "repositories" / "again" /
            "_manifests" / "tags" / "solo" / "current" / "link").read_text() == obj.digest
    assert not os.path.exists(tmp_path / "pkg" / ".registryfs-partial")


def test_push_mount_creates_a_missing_storage_tree(pack, mount_factory, tmp_path):
    """`registryfs -o push NEWDIR MNT` makes NEWDIR (issue 11, part 6); a read-only mount of a
    path that is not there is still an error."""
    missing = tmp_path / "new" / "package"
    ro = mount_factory(str(missing), start=False)
    with pytest.raises(MountError):
        ro.start()
    assert not missing.exists()
    m = mount_factory(str(missing), options={"push": True}, cache_dir=pack.cache)
    assert missing.is_dir()
    assert tools.ls(m.mountpoint) == []
    tools.ok(["mkdir", "-p", m.path("ns", "app")])
    assert "created an empty storage tree" in m.log(), m.log()[-2000:]
