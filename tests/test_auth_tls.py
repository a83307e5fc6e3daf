"""Credentials and TLS the way skopeo users already have them (issue 4).

Two TLS registries signed by a private CA: one with distribution's token auth (our token server,
RS256 JWTs with an x5c header) and one with htpasswd Basic auth. Credentials come from auth
files, credential helpers and identity tokens; certificates from certs.d-style directories.
Every mount runs with -d, and every test ends by checking that its log holds no password, no
base64 credential and no token.
"""

import base64
import json
import os
import re
import stat
import time

import pytest

from harness import imagegen as ig
from harness import tls
from harness.auth import Htpasswd, TokenServer
from harness.mount import MountError
from harness.proxy import Proxy
from harness.redirect_proxy import BlobServer, RedirectFront
from harness.regclient import RegistryClient
from harness.registry import Registry
from harness.tools import cache_path, errno_of, ls, probe, read_bytes, run, sha256sum, wait_for

USER, PASSWORD = "alice", "s3cr3t-Pa55:w0rd"        # a ':' in the password on purpose
BOB, BOB_PASSWORD = "bob", "b0b-Hunter2-secret"
WRONG_PASSWORD = "not-the-Pa55word-42"
REFRESH_TOKEN = "rt-7d1f0c9e-identity-token-for-alice"
BIG_MIB = 6


def b64(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch, tmp_path):
    """The mounts must see only the credentials a test gives them, not root's own."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return home


class Pki:
    pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = Pki()
    p.ca = tls.CA(d / "ca", "registryfs-test-ca")
    p.server = p.ca.issue("server")
    p.client = p.ca.issue("client", client=True)
    p.other_ca = tls.CA(d / "other", "untrusted-ca")
    p.other_server = p.other_ca.issue("server")
    p.certs = tls.cert_dir(d / "certs", p.ca)       # DIR/ca.crt: the private CA
    return p


class Images:
    pass


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    store = ig.BlobStore(tmp_path_factory.mktemp("authimg") / "blobs")
    im = Images()
    im.store = store
    im.small = ig.make_simple(store, "auth/small", layers=2)
    im.other = ig.make_simple(store, "auth/other", layers=2)
    im.big = ig.make_image(store, "auth/big", [ig.make_large_layer(store, "auth/big/l", BIG_MIB),
                                               ig.make_layer(store, "auth/big/s")])
    im.push = ig.make_simple(store, "auth/push", layers=2)
    return im


def push_set(url, images, user, password):
    with RegistryClient(url, user, password) as c:
        c.push(images.store, "pub/app", "v1", images.small)
        c.push(images.store, "pub/other", "v1", images.other)
        c.push(images.store, "private/app", "v1", images.small)
        c.push(images.store, "big/app", "v1", images.big)


class Env:
    pass


@pytest.fixture(scope="module")
def token_env(tmp_path_factory, pki, images):
    """TLS registry with token auth; anonymous pull except under private/."""
    d = tmp_path_factory.mktemp("tokenreg")
    e = Env()
    e.ts = TokenServer(d, users={USER: PASSWORD}, anonymous_pull=True, denied=("private/",),
                       tls=pki.server, refresh_tokens={REFRESH_TOKEN: USER}).start()
    e.reg = Registry(d / "reg", auth=e.ts, tls=pki.server)
    try:
        e.reg.start()
        push_set(e.reg.url, images, USER, PASSWORD)
        yield e
    finally:
        e.reg.stop()
        e.ts.stop()


@pytest.fixture(scope="module")
def basic_env(tmp_path_factory, pki, images):
    """TLS registry with htpasswd Basic auth (no anonymous access at all)."""
    d = tmp_path_factory.mktemp("basicreg")
    e = Env()
    e.auth = Htpasswd(d, {BOB: BOB_PASSWORD})
    e.reg = Registry(d / "reg", auth=e.auth, tls=pki.server)
    try:
        e.reg.start()
        push_set(e.reg.url, images, BOB, BOB_PASSWORD)
        yield e
    finally:
        e.reg.stop()


def write_authfile(path, entries=None, **top):
    """auths = {key: {"auth": b64(user, pw)} or a dict}, plus top-level keys."""
    auths = {}
    for key, v in (entries or {}).items():
        auths[key] = {"auth": b64(*v)} if isinstance(v, tuple) else v
    doc = dict(top)
    if entries is not None:
        doc["auths"] = auths
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)
    return str(path)


def secrets_of(*envs):
    out = [PASSWORD, BOB_PASSWORD, WRONG_PASSWORD, REFRESH_TOKEN, b64(USER, PASSWORD),
           b64(BOB, BOB_PASSWORD), b64(USER, WRONG_PASSWORD), b64(BOB, WRONG_PASSWORD)]
    for e in envs:
        ts = getattr(e, "ts", None)
        for tok in (ts.issued if ts else []):
            out.append(tok)
            out += [part for part in tok.split(".")[1:] if len(part) > 16]
    return out


def assert_no_secrets(m, *envs):
    text = m.log() + m.stderr()
    leaked = [s for s in secrets_of(*envs) if s in text]
    assert not leaked, "secrets in the log of %s: %s" % (m.mountpoint, [s[:12] for s in leaked])


def warn_lines(m, needle):
    return [l for l in m.log().splitlines()
            if needle in l and (" warn: " in l or " error: " in l)]


def cp_into(src, dest):
    """cp -r SRC DEST, creating DEST's parent first (namespaces are created with mkdir)."""
    r = run(["mkdir", "-p", os.path.dirname(dest)])
    if r.returncode != 0:
        return r
    return run(["cp", "-r", src, dest])


def push_dir(src, dest):
    """rsync -a SRC/ DEST/: writes in a fixed order (cp -r follows readdir order, and a
    manifest.json arriving before its blobs is an error by design, docs/write.md)."""
    r = run(["mkdir", "-p", os.path.dirname(dest)])
    if r.returncode != 0:
        return r
    return run(["rsync", "-a", src + "/", dest + "/"])


def start_fails(m):
    with pytest.raises(MountError) as e:
        m.start()
    return str(e.value)


# -- token registry, TLS with a private CA -----------------------------------------------

def test_token_registry_read_with_authfile(mount_factory, token_env, pki, images, tmp_path):
    reg, ts = token_env.reg, token_env.ts
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    before = len(ts.requests)
    assert ls(m.path("private/app")) == ["v1"]
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    for layer in images.small.layers:
        assert sha256sum(m.path("private/app/v1", layer.hex)) == layer.hex
    users = {u for u, _ in ts.requests[before:]}
    assert users == {USER}, ts.requests[before:]
    assert ["repository:private/app:pull"] in [s for _, s in ts.requests[before:]]
    # one token per scope, reused: not one token request per HTTP request
    assert len(ts.requests) - before <= 3, ts.requests[before:]
    assert_no_secrets(m, token_env)


def test_token_registry_anonymous_read_and_denied(mount_factory, token_env, pki, images):
    reg, ts = token_env.reg, token_env.ts
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    before = len(ts.requests)
    assert read_bytes(m.path("pub/app/v1/manifest.json")) == images.small.manifest
    assert sha256sum(m.path("pub/app/v1", images.small.layers[0].hex)) == \
        images.small.layers[0].hex
    assert all(u is None for u, _ in ts.requests[before:])
    st = probe("listdir", m.path("private/app"))
    assert st[0] == "EACCES", st
    assert errno_of("stat", m.path("private/app/v1/manifest.json")) == "EACCES"
    lines = warn_lines(m, "private/app")
    assert len(lines) == 1, m.log()
    assert reg.host in lines[0] and "anonymous" in lines[0], lines
    assert_no_secrets(m, token_env)


def test_token_registry_wrong_password(mount_factory, token_env, pki, tmp_path):
    reg = token_env.reg
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, WRONG_PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    assert errno_of("listdir", m.path("private/app")) == "EACCES"
    # the token service refuses the credentials whatever the repository
    assert errno_of("read", m.path("pub/app/v1/manifest.json")) == "EACCES"
    assert errno_of("listdir", m.path("private/app")) == "EACCES"
    lines = warn_lines(m, "refused the credentials")
    assert len(lines) == 1, m.log()
    assert reg.host in lines[0] and authfile in lines[0], lines
    assert_no_secrets(m, token_env)


def test_token_registry_push_with_authfile(mount_factory, token_env, pki, images, tmp_path):
    reg, ts = token_env.reg, token_env.ts
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    src = ig.write_dir(images.store, images.push, str(tmp_path / "src"))
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs, "push": True},
                      debug=True)
    before = len(ts.requests)
    r = push_dir(src, m.path("pub/pushed/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    with RegistryClient(reg.url, USER, PASSWORD) as c:
        assert c.get_manifest("pub/pushed", "v1")[0] == images.push.manifest
    assert ["repository:pub/pushed:pull,push"] in [s for _, s in ts.requests[before:]], \
        ts.requests[before:]
    assert_no_secrets(m, token_env)


def test_token_registry_cross_mount_asks_pull_on_the_source(mount_factory, token_env, pki,
                                                             images, tmp_path):
    """cp of a tag inside the registry: blobs are cross-mounted, which needs pull on the
    source repository in the same token as pull,push on the destination."""
    reg, ts = token_env.reg, token_env.ts
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs, "push": True},
                      debug=True)
    before = len(ts.requests)
    r = cp_into(m.path("pub/other/v1"), m.path("pub/copied/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    with RegistryClient(reg.url, USER, PASSWORD) as c:
        assert c.get_manifest("pub/copied", "v1")[0] == images.other.manifest
    scopes = [sorted(s) for _, s in ts.requests[before:]]
    assert sorted(["repository:pub/copied:pull,push", "repository:pub/other:pull"]) in scopes, \
        ts.requests[before:]
    assert_no_secrets(m, token_env)


def test_token_registry_anonymous_push_refused(mount_factory, token_env, pki, images,
                                               tmp_path):
    reg = token_env.reg
    src = ig.write_dir(images.store, images.push, str(tmp_path / "src"))
    m = mount_factory(reg.url, options={"cert_dir": pki.certs, "push": True}, debug=True)
    r = push_dir(src, m.path("pub/anon/v1"))
    assert r.returncode != 0, r
    assert "Permission denied" in r.stderr, r
    with RegistryClient(reg.url, USER, PASSWORD) as c:
        assert c.head_manifest("pub/anon", "v1").status == 404
    lines = warn_lines(m, "pub/anon")
    assert lines and all(reg.host in l for l in lines), m.log()
    assert any("anonymous" in l for l in lines), lines
    assert_no_secrets(m, token_env)


def test_identity_token_refresh_grant(mount_factory, token_env, pki, images, tmp_path):
    """An auth file entry with an identitytoken gets access tokens by OAuth2 refresh POST."""
    reg, ts = token_env.reg, token_env.ts
    authfile = write_authfile(tmp_path / "auth.json",
                              {reg.host: {"auth": b64(USER, ""),
                                          "identitytoken": REFRESH_TOKEN}})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    before = len(ts.posts)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert [USER, ["repository:private/app:pull"]] in [list(p) for p in ts.posts[before:]]
    assert_no_secrets(m, token_env)


def test_namespaced_authfile_keys_longest_match(mount_factory, token_env, pki, images,
                                                tmp_path):
    """host/namespace keys: the longest one that matches the repository wins."""
    reg = token_env.reg
    authfile = write_authfile(tmp_path / "auth.json", {
        reg.host: (USER, WRONG_PASSWORD),
        "%s/private" % reg.host: (USER, PASSWORD),
        "%s/private/nothing" % reg.host: (USER, WRONG_PASSWORD),
    })
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    # pub/ uses the host-wide entry, whose password is wrong
    assert errno_of("read", m.path("pub/app/v1/manifest.json")) == "EACCES"
    assert_no_secrets(m, token_env)


def test_default_authfile_search(mount_factory, token_env, pki, images, tmp_path, monkeypatch,
                                 no_ambient_credentials):
    """Without -o authfile: $REGISTRY_AUTH_FILE, else ... ~/.docker/config.json."""
    reg = token_env.reg
    home = no_ambient_credentials
    # a docker config with a scheme-prefixed key, found under ~/.docker/
    write_authfile(home / ".docker" / "config.json", {"https://" + reg.host: (USER, PASSWORD)})
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert_no_secrets(m, token_env)
    m.stop()
    # $REGISTRY_AUTH_FILE comes first: wrong credentials there win over the good ones
    bad = write_authfile(tmp_path / "registry-auth.json", {reg.host: (USER, WRONG_PASSWORD)})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", bad)
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    assert errno_of("read", m.path("private/app/v1/manifest.json")) == "EACCES"
    assert_no_secrets(m, token_env)


def test_authfile_written_after_mount_is_used(mount_factory, token_env, pki, images, tmp_path):
    """`skopeo login` after mounting: the auth file is re-read when it changes."""
    reg = token_env.reg
    path = tmp_path / "auth.json"
    authfile = write_authfile(path, {reg.host: (USER, WRONG_PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs, "ttl": 0},
                      debug=True)
    assert errno_of("read", m.path("private/app/v1/manifest.json")) == "EACCES"
    time.sleep(1.1)       # another mtime, and past the 2 s re-check window below
    write_authfile(path, {reg.host: (USER, PASSWORD)})
    time.sleep(2.2)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert_no_secrets(m, token_env)


def test_credential_helper(mount_factory, token_env, pki, images, tmp_path, monkeypatch):
    """credHelpers: docker-credential-NAME get, with the registry host on stdin."""
    reg = token_env.reg
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "helper-calls"
    helper = bindir / "docker-credential-rfstest"
    helper.write_text("#!/bin/sh\n"
                      "server=$(cat)\n"
                      "echo \"$1 $server\" >> %s\n"
                      "[ \"$1\" = get ] || exit 1\n"
                      "printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' "
                      "\"$server\"\n" % (calls, USER, PASSWORD))
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    authfile = write_authfile(tmp_path / "auth.json",
                              {reg.host: (USER, WRONG_PASSWORD)},   # the helper wins
                              credHelpers={reg.host: "rfstest"})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert sha256sum(m.path("private/app/v1", images.small.layers[1].hex)) == \
        images.small.layers[1].hex
    got = calls.read_text().splitlines()
    assert got and all(l == "get " + reg.host for l in got), got
    assert len(got) <= 2, got            # its answer is kept, not asked per request
    assert_no_secrets(m, token_env)


def test_creds_store(mount_factory, token_env, pki, images, tmp_path, monkeypatch):
    """credsStore: one helper for every registry (docker's desktop/pass/secretservice)."""
    reg = token_env.reg
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-rfsstore"
    helper.write_text("#!/bin/sh\ncat >/dev/null\n"
                      "printf '{\"Username\":\"%s\",\"Secret\":\"%s\"}'\n" % (USER, PASSWORD))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: {}}, credsStore="rfsstore")
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert_no_secrets(m, token_env)


# -- token expiry --------------------------------------------------------------------------

def test_token_expiring_between_reads_is_renewed_before_use(mount_factory, token_env, pki,
                                                            images, tmp_path):
    """expires_in is respected: a token past its lifetime is replaced before the request, so
    the registry never sees it (no 401)."""
    reg, ts = token_env.reg, token_env.ts
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    old = ts.ttl, ts.effective_ttl
    ts.ttl, ts.effective_ttl = 3, 3
    try:
        m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                          debug=True)
        a, b = images.small.layers
        assert sha256sum(m.path("private/app/v1", a.hex)) == a.hex
        # the read fetched b ahead: forget it, so that reading it needs a request again
        b_cached = cache_path(m, reg.host, b.digest)
        assert wait_for(lambda: os.path.exists(b_cached), 30), b_cached
        os.unlink(b_cached)
        before = len(ts.requests)
        time.sleep(4)                          # the registry would now refuse that token
        mark = reg.mark()
        assert sha256sum(m.path("private/app/v1", b.hex)) == b.hex
        assert len(ts.requests) > before, "no new token after expires_in"
        got = reg.requests(mark, path_re=r"/private/app/")
        assert got and all(a.status != 401 for a in got), got
    finally:
        ts.ttl, ts.effective_ttl = old
    assert_no_secrets(m, token_env)


def test_token_dying_during_a_large_read(mount_factory, tmp_path, images):
    """A large blob read is cut mid-way (a proxy stalls, then drops the connection); by the
    time the download resumes with Range the token has died, earlier than its expires_in said
    (revoked, clock skew). The registry answers 401; the token is fetched again and the
    resumed transfer completes with the right bytes."""
    ts = TokenServer(tmp_path, users={USER: PASSWORD}, anonymous_pull=False, ttl=300,
                     effective_ttl=2).start()
    reg = Registry(tmp_path / "reg", auth=ts)
    proxy = None
    try:
        reg.start()
        with RegistryClient(reg.url, USER, PASSWORD) as c:
            c.push(images.store, "big/app", "v1", images.big)
        proxy = Proxy(reg.host, cut_blobs=(2 << 20, 3)).start()
        authfile = write_authfile(tmp_path / "auth.json", {proxy.host: (USER, PASSWORD)})
        m = mount_factory(proxy.url, options={"authfile": authfile}, debug=True)
        layer = images.big.layers[0]
        mark = reg.mark()
        assert sha256sum(m.path("big/app/v1", layer.hex)) == layer.hex
        assert layer.digest in proxy.cut, proxy.cut  # (read-ahead fetches the others too)
        gets = reg.blob_gets(layer.digest, mark)
        statuses = [g.status for g in gets]
        # ranged parts (206); the part cut mid-way resumes after a 401 and a new token
        assert statuses[0] in (200, 206) and 401 in statuses and statuses[-1] == 206, statuses
        assert "resuming" in m.log()
        e = Env()
        e.ts = ts
        assert_no_secrets(m, e)
    finally:
        if proxy:
            proxy.stop()
        reg.stop()
        ts.stop()


# -- Basic auth registry --------------------------------------------------------------------

def test_basic_registry_read_and_push_with_authfile(mount_factory, basic_env, pki, images,
                                                    tmp_path):
    reg = basic_env.reg
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (BOB, BOB_PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs, "push": True},
                      debug=True)
    assert "pub" in ls(m.path())
    assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
    assert sha256sum(m.path("pub/app/v1", images.small.layers[0].hex)) == \
        images.small.layers[0].hex
    mark = reg.mark()
    src = ig.write_dir(images.store, images.push, str(tmp_path / "src"))
    r = push_dir(src, m.path("pub/pushed/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    with RegistryClient(reg.url, BOB, BOB_PASSWORD) as c:
        assert c.get_manifest("pub/pushed", "v1")[0] == images.push.manifest
    # Basic is sent from the start once the registry asked for it: no 401 per request
    ours = [a for a in reg.requests(mark) if a.agent.startswith("registryfs")]
    assert ours and [a for a in ours if a.status == 401] == [], ours
    assert_no_secrets(m, basic_env)


def test_basic_registry_without_credentials(mount_factory, basic_env, pki, images):
    reg = basic_env.reg
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    assert errno_of("read", m.path("pub/app/v1/manifest.json")) == "EACCES"
    lines = warn_lines(m, "wants credentials")
    assert len(lines) == 1 and reg.host in lines[0], m.log()
    assert_no_secrets(m, basic_env)


def test_basic_registry_wrong_password(mount_factory, basic_env, pki, images, tmp_path):
    reg = basic_env.reg
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (BOB, WRONG_PASSWORD)})
    m = mount_factory(reg.url, options={"authfile": authfile, "cert_dir": pki.certs},
                      debug=True)
    assert errno_of("read", m.path("pub/app/v1/manifest.json")) == "EACCES"
    assert errno_of("listdir", m.path("private/app")) == "EACCES"
    lines = warn_lines(m, "refused the credentials")
    assert len(lines) == 1, m.log()
    assert reg.host in lines[0] and authfile in lines[0], lines
    assert_no_secrets(m, basic_env)


# -- TLS verification -----------------------------------------------------------------------

@pytest.fixture
def untrusted_registry(tmp_path, pki, images):
    reg = Registry(tmp_path / "untrusted", tls=pki.other_server)
    try:
        reg.start()
        with RegistryClient(reg.url) as c:
            c.push(images.store, "pub/app", "v1", images.small)
        yield reg
    finally:
        reg.stop()


@pytest.mark.parametrize("scheme", ["https://", ""])
def test_untrusted_certificate_refused(mount_factory, untrusted_registry, pki, scheme):
    """Verified by default: a certificate from an unknown CA stops the mount with a clear log
    line, and never makes it fall back to plain http (also for a loopback address given
    without a scheme, where http is otherwise tried)."""
    reg = untrusted_registry
    mark = reg.mark()
    m = mount_factory(scheme + reg.host, options={"cert_dir": pki.certs}, debug=True,
                      start=False)
    err = start_fails(m)
    assert "does not answer as a registry" in err, err
    log = m.log()
    assert "TLS certificate verification failed" in log, log
    assert "tls_verify=false" in log
    assert "http://%s" % reg.host not in log.replace("https://", ""), log
    # the registry saw TLS handshakes only, never a plain http request
    assert reg.requests(mark) == [], reg.requests(mark)
    with open(reg.app_log, errors="replace") as f:
        assert "HTTP request to an HTTPS server" not in f.read()


def test_untrusted_certificate_accepted_with_tls_verify_false(mount_factory, untrusted_registry,
                                                              images):
    m = mount_factory(untrusted_registry.url, options={"tls_verify": "false"}, debug=True)
    assert read_bytes(m.path("pub/app/v1/manifest.json")) == images.small.manifest


def test_cert_dir_per_host_subdirectory(mount_factory, basic_env, pki, images, tmp_path):
    """-o cert_dir=DIR also reads DIR/HOST:PORT/ (the certs.d layout)."""
    reg = basic_env.reg
    certs = tls.cert_dir(tmp_path / "certs.d", pki.ca, host=reg.host)
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (BOB, BOB_PASSWORD)})
    m = mount_factory(reg.url, options={"cert_dir": certs, "authfile": authfile}, debug=True)
    assert read_bytes(m.path("pub/app/v1/manifest.json")) == images.small.manifest


def test_client_certificate(mount_factory, pki, images, tmp_path):
    """client.cert/client.key in the cert directory, for a registry that demands one."""
    reg = Registry(tmp_path / "mtls", tls=pki.server, tls_client_cas=[pki.ca.cert_path],
                   tls_client_cert=pki.client)
    try:
        reg.start()
        with_client = tls.cert_dir(tmp_path / "with", pki.ca, host=reg.host, client=pki.client)
        m = mount_factory(reg.url, options={"cert_dir": with_client}, debug=True)
        assert ls(m.path()) == []
        m.stop()
        m2 = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True, start=False)
        start_fails(m2)
        assert "ping" in m2.log(), m2.log()
    finally:
        reg.stop()


# -- blobs redirected to another host ---------------------------------------------------------

def test_redirected_blob_gets_no_authorization(mount_factory, token_env, pki, images, tmp_path):
    """Blob GETs answered 307 to another server (object storage, CDN) are followed, without
    the Authorization header the registry got."""
    blobs = BlobServer(images.store, tls=pki.server).start()
    front = RedirectFront(tmp_path / "nginx", upstream=token_env.reg.url, target=blobs.url,
                          tls=pki.server)
    try:
        front.start()
        authfile = write_authfile(tmp_path / "auth.json", {front.host: (USER, PASSWORD)})
        m = mount_factory(front.url, options={"authfile": authfile, "cert_dir": pki.certs},
                          debug=True)
        assert read_bytes(m.path("private/app/v1/manifest.json")) == images.small.manifest
        for layer in images.small.layers:
            assert sha256sum(m.path("private/app/v1", layer.hex)) == layer.hex
        redirected = [r for r in front.requests() if "/blobs/" in r[1] and r[2] == 307]
        assert len(redirected) >= 2, front.requests()
        assert all(r[3] for r in redirected), "the registry side should get the token"
        got = [r for r in blobs.requests if r["method"] == "GET"]
        assert len(got) >= 2, blobs.requests
        assert all(r["authorization"] is None for r in got), got
        assert_no_secrets(m, token_env)
    finally:
        front.stop()
        blobs.stop()


# -- registries.conf ---------------------------------------------------------------------------

def test_registries_conf_mirror_for_reads(mount_factory, registry_factory, images, tmp_path):
    """Root mode: [[registry.mirror]] entries are tried in order for reads; an image the
    mirror lacks comes from the primary; writes go to the primary."""
    primary = registry_factory()
    mirror = registry_factory()
    dead = Registry(tmp_path / "dead")       # never started: a mirror that does not answer
    with RegistryClient(primary.url) as c:
        c.push(images.store, "pub/app", "v1", images.small)
        c.push(images.store, "pub/other", "v1", images.other)
    with RegistryClient(mirror.url) as c:
        c.push(images.store, "cache/pub/app", "v1", images.small)
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "%s"\ninsecure = true\n\n'
                    '[[registry.mirror]]\nlocation = "%s"\ninsecure = true\n\n'
                    '[[registry.mirror]]\nlocation = "%s/cache"\ninsecure = true\n'
                    % (primary.host, dead.host, mirror.host))
    m = mount_factory(None, options={"registries_conf": str(conf), "push": True}, debug=True)
    pmark, mmark = primary.mark(), mirror.mark()
    base = m.path(primary.host)
    assert read_bytes(os.path.join(base, "pub/app/v1/manifest.json")) == images.small.manifest
    layer = images.small.layers[0]
    assert sha256sum(os.path.join(base, "pub/app/v1", layer.hex)) == layer.hex
    assert mirror.blob_gets(layer.digest, mmark), "the mirror was not used"
    assert primary.blob_gets(layer.digest, pmark) == []
    assert primary.requests(pmark, path_re=r"/pub/app/manifests/") == []
    # not on the mirror: from the primary
    assert read_bytes(os.path.join(base, "pub/other/v1/manifest.json")) == \
        images.other.manifest
    # writes go to the primary only
    src = ig.write_dir(images.store, images.push, str(tmp_path / "src"))
    r = push_dir(src, os.path.join(base, "pub/pushed/v1"))
    assert r.returncode == 0, "%s\n%s" % (r, m.log()[-3000:])
    with RegistryClient(primary.url) as c:
        assert c.get_manifest("pub/pushed", "v1")[0] == images.push.manifest
    assert mirror.requests(mmark, method="PUT") == []


def test_registries_conf_insecure_host(mount_factory, untrusted_registry, images, tmp_path):
    """insecure = true: that host's certificate is not verified (others still are)."""
    reg = untrusted_registry
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "%s"\ninsecure = true\n' % reg.host)
    m = mount_factory(None, options={"registries_conf": str(conf)}, debug=True)
    assert read_bytes(m.path(reg.host, "pub/app/v1/manifest.json")) == images.small.manifest
    conf.write_text('[[registry]]\nlocation = "elsewhere.example"\ninsecure = true\n')
    m2 = mount_factory(None, options={"registries_conf": str(conf)}, debug=True)
    assert errno_of("listdir", m2.path(reg.host)) != "OK"
    assert "TLS certificate verification failed" in m2.log()


def test_registries_conf_blocked_and_broken(mount_factory, registry_factory, images, tmp_path):
    reg = registry_factory()
    mark = reg.mark()
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "%s"\nblocked = true\n' % reg.host)
    m = mount_factory(None, options={"registries_conf": str(conf)}, debug=True)
    assert errno_of("listdir", m.path(reg.host)) != "OK"
    assert reg.requests(mark) == []
    assert "blocked" in m.log()
    # a file that does not parse is ignored as a whole, with the line that is wrong
    conf.write_text('[[registry]]\nlocation = "%s"\ninsecure = maybe\n' % reg.host)
    m2 = mount_factory(None, options={"registries_conf": str(conf)}, debug=True)
    assert ls(m2.path(reg.host)) == []
    assert re.search(r"registries.conf .*line 3", m2.log()), m2.log()
