"""Hostile registries (issue 9): a redirect target that asks for credentials, an oversized
manifest, a redirect to file:, an absurd token realm. Each fails the one request cleanly
(EIO), says why in one log line, and never hands a credential to anyone but the registry and
the token realm the registry itself named (docs/auth-tls.md).
"""

import base64
import json
import os

import pytest

from harness import imagegen as ig
from harness.hostile import HostileRegistry
from harness.tools import probe, read_bytes

USER, PASSWORD = "alice", "h0stile-Pa55:w0rd"
MANIFEST_MAX = 4 << 20      # MANIFEST_MAX_BYTES


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    store = ig.BlobStore(tmp_path_factory.mktemp("hostileimg") / "blobs")
    return store, ig.make_simple(store, "hostile/app", layers=1)


@pytest.fixture
def hostile(image):
    regs = []

    def make(**kw):
        reg = HostileRegistry(image[0], image[1], **kw).start()
        regs.append(reg)
        return reg

    yield make
    for reg in regs:
        reg.stop()


def authfile(tmp_path, reg):
    path = tmp_path / "auth.json"
    cred = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    path.write_text(json.dumps({"auths": {reg.host: {"auth": cred}}}))
    os.chmod(path, 0o600)
    return str(path)


def log_lines(m, needle):
    return [l for l in m.log().splitlines() if needle in l]


def assert_no_secrets(m):
    text = m.log() + m.stderr()
    cred = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    assert PASSWORD not in text and cred not in text, "a credential in the log"


def test_redirect_target_never_gets_the_password(mount_factory, hostile, image, tmp_path):
    """A blob GET redirected to another host that answers 401 with its own Bearer realm: the
    registry's credentials go neither to that realm nor anywhere else; the read fails."""
    reg = hostile(basic=(USER, PASSWORD), blob_redirect="cdn")
    m = mount_factory(reg.url, options={"authfile": authfile(tmp_path, reg)}, debug=True)
    img = image[1]
    assert read_bytes(m.path("app/v1/manifest.json")) == img.manifest
    layer = img.layers[0]
    err = probe("read", m.path("app/v1", layer.hex))[0]
    assert reg.cdn.requests, "the blob GET was not redirected"
    assert all(r["authorization"] is None for r in reg.cdn.requests), reg.cdn.requests
    assert reg.steal.requests == [], "credentials went to the redirect target's realm"
    assert err == "EIO"
    lines = log_lines(m, "asked for credentials")
    assert lines and all("not sent" in l for l in lines), m.log()[-3000:]
    assert_no_secrets(m)


def test_oversized_manifest_is_eio(mount_factory, hostile, image):
    reg = hostile(manifest_pad=MANIFEST_MAX + 1 - len(image[1].manifest))
    m = mount_factory(reg.url)
    assert probe("listdir", m.path("app/v1"))[0] == "EIO"
    assert probe("read", m.path("app/v1/manifest.json"))[0] == "EIO"
    assert log_lines(m, "manifest larger than %d bytes" % MANIFEST_MAX), m.log()[-3000:]
    assert not log_lines(m, "EFBIG") and not log_lines(m, "too large")


def test_redirect_to_file_url_is_eio(mount_factory, hostile, image):
    reg = hostile(blob_redirect="file:///etc/passwd")
    m = mount_factory(reg.url)
    layer = image[1].layers[0]
    assert probe("read", m.path("app/v1", layer.hex))[0] == "EIO"
    lines = log_lines(m, layer.hex)
    assert any("redirect to a non-HTTP(S) URL (file:) refused" in l for l in lines), \
        m.log()[-3000:]
    # every attempt says so (retries on a reused connection handle once said "Input/output
    # error": curl 7.88 leaves such a handle unusable)
    assert not any(l.endswith(("HTTP 307", "Input/output error")) and "from byte" in l
                   for l in lines), lines


def test_absurd_token_challenge_is_eio(mount_factory, hostile):
    """A Bearer challenge with a 5000-character service: EIO, and the line says the challenge
    is too long (not "unsupported authentication scheme")."""
    reg = hostile(challenge='Bearer realm="http://127.0.0.1:1/token",service="%s"' % ("s" * 5000))
    m = mount_factory(reg.url)
    assert probe("listdir", m.path("app"))[0] == "EIO"
    assert log_lines(m, "authentication challenge too long"), m.log()[-3000:]
    assert not log_lines(m, "unsupported authentication scheme")
