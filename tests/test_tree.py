"""The directory tree: catalog, namespaces, tags, tag directories, aliases, ENOENT, root mode."""

import os

import pytest

from harness import imagegen as ig
from harness.samples import N_REPOS, N_TAGS
from harness.tools import errno_of, ls, probe, read_bytes, run


def test_root_lists_top_level_namespaces(mnt, client):
    want = sorted({r.split("/")[0] for r in client.catalog()})
    assert ls(mnt.mountpoint) == want


def test_catalog_over_100_repositories(mnt, samples):
    """distribution pages the catalog at 100: all 120 bulk repos need page 2."""
    got = ls(mnt.path("bulk"))
    assert got == ["r%03d" % i for i in range(N_REPOS)]
    # a repository from the second page is a working repository
    assert ls(mnt.path("bulk", "r119")) == ["v1"]


def test_catalog_pagination_forced_by_proxy(mount_factory, registry, samples, proxy_factory):
    p = proxy_factory(registry.host, paginate=25)
    m = mount_factory(p.url)
    assert ls(m.path("bulk")) == ["r%03d" % i for i in range(N_REPOS)]
    pages = [q for q in p.requests if q[1].startswith("/v2/_catalog")]
    assert len(pages) >= (len(samples.repos) + 24) // 25, pages


def test_repo_with_over_100_tags(mnt, samples):
    assert ls(mnt.path("manytags", "app")) == ["t%03d" % i for i in range(N_TAGS)]
    last = samples["manytags_last"]
    assert read_bytes(mnt.path(last.repo, last.tag, "manifest.json")) == last.obj.manifest


def test_tags_pagination_forced_by_proxy(mount_factory, registry, samples, proxy_factory):
    """distribution 2.8 never pages tags/list; the proxy serves pages of 25 with Link."""
    p = proxy_factory(registry.host, paginate=25)
    m = mount_factory(p.url)
    assert ls(m.path("manytags", "app")) == ["t%03d" % i for i in range(N_TAGS)]
    pages = [q for q in p.requests if q[1].startswith("/v2/manytags/app/tags/list")]
    assert len(pages) >= (N_TAGS + 24) // 25, pages


def test_namespaces_three_deep(mnt, samples):
    assert "a" in ls(mnt.mountpoint)
    assert ls(mnt.path("a")) == ["b"]
    assert ls(mnt.path("a", "b")) == ["c", "other"]      # namespace and repository side by side
    assert ls(mnt.path("a", "b", "c")) == ["app"]
    assert ls(mnt.path("a", "b", "c", "app")) == ["v1"]
    ref = samples["deep"]
    assert read_bytes(mnt.path("a/b/c/app/v1/manifest.json")) == ref.obj.manifest
    assert ls(mnt.path("a", "b", "other")) == ["v1"]


def test_repo_lists_its_tags(mnt, samples):
    assert ls(mnt.path("oci", "app")) == ["latest", "v1"]
    assert ls(mnt.path("multi")) == ["app", "docker"]


@pytest.mark.parametrize("name", ["oci", "docker", "multi", "multidocker", "big"])
def test_tag_dir_holds_exactly_the_dir_transport_files(mnt, samples, name):
    ref = samples[name]
    assert ls(mnt.path(ref.repo, ref.tag)) == sorted(ig.dir_files(ref.obj))


def test_entry_types(mnt, samples):
    ref = samples["multi"]
    r = run(["stat", "-c", "%F", mnt.path("multi"), mnt.path("multi/app"),
             mnt.path(ref.path), mnt.path(ref.path, "manifest.json"),
             mnt.path(ref.path, ref.obj.images[0].hex + ".manifest.json"),
             mnt.path(ref.path, ref.obj.images[0].layers[0].hex)])
    assert r.returncode == 0, r
    assert r.stdout.split("\n")[:6] == ["directory"] * 3 + ["regular file"] * 3


def test_tag_alias_resolves_but_is_not_listed(mnt, samples):
    for name in ("oci", "deep", "multi"):
        ref = samples[name]
        repo_dir = os.path.dirname(mnt.path(ref.repo))
        alias = mnt.path("%s:%s" % (ref.repo, ref.tag))
        assert probe("stat", alias)[0] == "OK", probe("stat", alias)
        assert ls(alias) == sorted(ig.dir_files(ref.obj))
        assert read_bytes(os.path.join(alias, "manifest.json")) == ref.obj.manifest
        assert not [n for n in ls(repo_dir) if ":" in n or "@" in n], ls(repo_dir)


def test_digest_alias_resolves_but_is_not_listed(mnt, samples):
    for name in ("oci", "docker", "deep", "multi"):
        ref = samples[name]
        alias = mnt.path("%s@%s" % (ref.repo, ref.digest))
        assert ls(alias) == sorted(ig.dir_files(ref.obj)), alias
        assert read_bytes(os.path.join(alias, "manifest.json")) == ref.obj.manifest
        assert "@" not in "".join(ls(os.path.dirname(alias)))
        assert not [n for n in ls(mnt.path(ref.repo)) if "@" in n or ":" in n]


def test_digest_alias_of_an_index_instance(mnt, samples):
    """An instance manifest (no tag of its own) is reachable by digest."""
    ref = samples["multi"]
    inst = ref.obj.for_platform("linux", "arm64")
    alias = mnt.path("%s@%s" % (ref.repo, inst.digest))
    assert ls(alias) == sorted(ig.dir_files(inst))
    assert read_bytes(os.path.join(alias, "manifest.json")) == inst.manifest


@pytest.mark.parametrize("rel", [
    "nosuchrepo",
    "oci/nosuchrepo",
    "a/b/c/nosuch",
    "a/b/c/app/nosuchtag",
    "oci/app/nosuchtag",
    "oci/app/v1/signature-1",
    "oci/app/v1/nosuchfile",
    "oci/app/v1/" + "0" * 64,
    "oci/app:nosuchtag",
    "oci/app@sha256:" + "0" * 64,
    "oci/app@sha256:nothex",
    "nosuchrepo:v1",
])
def test_unknown_names_are_enoent(mnt, samples, rel):
    assert errno_of("stat", mnt.path(rel)) == "ENOENT"


def test_enoent_from_real_clients(mnt):
    r = run(["ls", mnt.path("oci/app/nosuchtag")])
    assert r.returncode != 0 and "No such file or directory" in r.stderr, r
    r = run(["cat", mnt.path("oci/app/v1/signature-1")])
    assert r.returncode != 0 and "No such file or directory" in r.stderr, r


def test_signature_probe_then_rest_still_works(mnt, samples):
    """skopeo probes signature-1 and stops at ENOENT; the tag must stay usable afterwards."""
    ref = samples["oci"]
    assert errno_of("stat", mnt.path(ref.path, "signature-1")) == "ENOENT"
    assert read_bytes(mnt.path(ref.path, "manifest.json")) == ref.obj.manifest


def test_root_mode_host_lookup(mount_factory, registry, samples):
    m = mount_factory(None)
    host = registry.host
    assert ls(m.path(host, "oci", "app")) == ["latest", "v1"]
    ref = samples["docker"]
    assert read_bytes(m.path(host, ref.repo, ref.tag, "manifest.json")) == ref.obj.manifest
    assert ls(m.path(host)) == sorted({r.split("/")[0] for r in samples.repos})
    # the host looked up is listed at the root now
    assert host in ls(m.mountpoint)


def test_root_mode_unreachable_host_fails_fast(mount_factory, registry, samples):
    m = mount_factory(None)
    st, msg = probe("stat", m.path("127.0.0.1:1"), timeout=30)
    assert st in ("ENOENT", "EIO"), (st, msg)
    # and the mount still serves a live host afterwards
    ref = samples["oci"]
    assert read_bytes(m.path(registry.host, ref.repo, ref.tag, "manifest.json")) == ref.obj.manifest


# -- registries without a catalog (Docker Hub, GHCR) -----------------------------------------

@pytest.fixture
def catalogless(registry_factory, proxy_factory, tmp_path):
    """A private registry behind a proxy that answers /v2/_catalog with 404 UNSUPPORTED, with
    a repository nested in another (GHCR allows that): gh/owner/tool and gh/owner/tool/sub."""
    from harness.regclient import RegistryClient
    reg = registry_factory()
    store = ig.BlobStore(tmp_path / "blobs")
    imgs = {}
    with RegistryClient(reg.url) as c:
        for repo in ("gh/owner/tool", "gh/owner/tool/sub", "lib/app"):
            imgs[repo] = ig.make_image(store, repo, [ig.make_layer(store, repo)])
            c.push(store, repo, "v1", imgs[repo])
    return proxy_factory(reg.url, hide_catalog=True), imgs


def test_catalogless_mistyped_tag_is_enoent(mount_factory, catalogless, tmp_path):
    """Issue 11, part 5: a name under a repository that is neither a tag nor a digest alias is
    ENOENT, so `cp -r MNT/REPO/TYPO` fails as it does with a catalog."""
    proxy, imgs = catalogless
    m = mount_factory(proxy.url)
    assert ls(m.mountpoint) == []                      # nothing to list without a catalog
    assert ls(m.path("lib", "app")) == ["v1"]
    assert read_bytes(m.path("lib/app/v1/manifest.json")) == imgs["lib/app"].manifest
    assert read_bytes(m.path("lib/app@%s" % imgs["lib/app"].digest, "manifest.json")) == \
        imgs["lib/app"].manifest
    assert errno_of("stat", m.path("lib/app/v9")) == "ENOENT"
    r = run(["cp", "-r", m.path("lib/app/v9"), str(tmp_path / "out")])
    assert r.returncode != 0 and "No such file" in r.stderr, r
    assert not (tmp_path / "out").exists()
    assert any(p.startswith("/v2/_catalog") for _, p in proxy.requests)


def test_catalogless_nested_repository_is_reachable(mount_factory, catalogless):
    """A repository inside a repository resolves (its tag list answers); namespaces above
    repositories resolve as before."""
    proxy, imgs = catalogless
    m = mount_factory(proxy.url)
    assert ls(m.path("gh/owner/tool")) == ["v1"]
    assert read_bytes(m.path("gh/owner/tool/sub/v1/manifest.json")) == \
        imgs["gh/owner/tool/sub"].manifest
    assert errno_of("stat", m.path("gh/owner/tool/nope")) == "ENOENT"
    assert errno_of("stat", m.path("gh/owner/tool/sub/v2")) == "ENOENT"
