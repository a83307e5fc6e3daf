"""Options and credentials the way a user runs registryfs for real (issue 10, parts 8 and 9).

The auth file search follows containers-auth.json(5): each file of the order is looked at
until one has an entry for the registry. Options registryfs cannot use (tls_verify=maybe, an
authfile or cert_dir that is not there) stop the mount with a message naming the option, an
https:// address of a plain-http registry says to use http://, and a host that failed to
connect leaves no directory in the cache (root mode would list it as a host).
"""

import os
import socket

import pytest

from harness.tools import errno_of, ls, read_bytes
from test_auth_tls import (BOB, BOB_PASSWORD, USER, assert_no_secrets, basic_env,  # noqa: F401
                           images, no_ambient_credentials, pki, start_fails, untrusted_registry,
                           write_authfile)


def dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def not_mounted(m):
    return not m.is_mounted


# -- the auth file search order ------------------------------------------------------------

def test_search_skips_a_file_without_the_registry(mount_factory, basic_env, pki, images,
                                                  tmp_path, monkeypatch, no_ambient_credentials):
    """A stray $XDG_RUNTIME_DIR/containers/auth.json (credentials for another registry only)
    does not hide ~/.docker/config.json, which has ours."""
    reg, home = basic_env.reg, no_ambient_credentials
    xdg = tmp_path / "run"
    write_authfile(xdg / "containers" / "auth.json", {"other.example:5000": (USER, "x")})
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    write_authfile(home / ".docker" / "config.json", {reg.host: (BOB, BOB_PASSWORD)})
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    assert read_bytes(m.path("pub/app/v1/manifest.json")) == images.small.manifest
    assert "credentials from %s" % (home / ".docker" / "config.json") in m.log(), m.log()
    assert_no_secrets(m, basic_env)


def test_search_registry_auth_file_without_the_registry(mount_factory, basic_env, pki, images,
                                                        tmp_path, monkeypatch,
                                                        no_ambient_credentials):
    """$REGISTRY_AUTH_FILE first; without an entry for us, ~/.config/containers/auth.json."""
    reg, home = basic_env.reg, no_ambient_credentials
    monkeypatch.setenv("REGISTRY_AUTH_FILE",
                       write_authfile(tmp_path / "ra.json", {"elsewhere.example": (USER, "x")}))
    write_authfile(home / ".config" / "containers" / "auth.json", {reg.host: (BOB, BOB_PASSWORD)})
    m = mount_factory(reg.url, options={"cert_dir": pki.certs}, debug=True)
    assert ls(m.path("private/app")) == ["v1"]
    assert_no_secrets(m, basic_env)


def test_explicit_authfile_is_the_only_file(mount_factory, basic_env, pki, tmp_path,
                                            no_ambient_credentials):
    """-o authfile=FILE without an entry for the registry: the default files are not read."""
    reg, home = basic_env.reg, no_ambient_credentials
    write_authfile(home / ".docker" / "config.json", {reg.host: (BOB, BOB_PASSWORD)})
    only = write_authfile(tmp_path / "only.json", {"other.example": (USER, "x")})
    m = mount_factory(reg.url, options={"authfile": only, "cert_dir": pki.certs}, debug=True)
    assert errno_of("read", m.path("pub/app/v1/manifest.json")) == "EACCES"


# -- tls_verify ----------------------------------------------------------------------------

def test_tls_verify_no_means_false(mount_factory, untrusted_registry, images):
    m = mount_factory(untrusted_registry.url, options={"tls_verify": "no"}, debug=True)
    assert read_bytes(m.path("pub/app/v1/manifest.json")) == images.small.manifest


def test_tls_verify_maybe_refused(mount_factory, registry_factory):
    reg = registry_factory()
    m = mount_factory(reg.url, options={"tls_verify": "maybe"}, start=False)
    err = start_fails(m)
    assert "tls_verify" in m.stderr() and "maybe" in m.stderr(), err
    assert not_mounted(m)


# -- authfile and cert_dir that are not there ---------------------------------------------

@pytest.mark.parametrize("option,kind", [("authfile", "missing"), ("authfile", "dir"),
                                         ("cert_dir", "missing"), ("cert_dir", "file")])
def test_missing_path_option_refused(mount_factory, registry_factory, tmp_path, option, kind):
    reg = registry_factory()
    path = tmp_path / ("given-" + option)
    if kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_text("")
    m = mount_factory(reg.url, options={option: str(path)}, start=False)
    err = start_fails(m)
    assert "exited 1 before mounting" in err, err
    assert "-o %s=%s" % (option, path) in m.stderr(), m.stderr()
    assert not_mounted(m)


# -- https:// of a plain-http registry ------------------------------------------------------

def test_https_to_plain_http_registry_says_use_http(mount_factory, registry_factory):
    reg = registry_factory()
    m = mount_factory("https://" + reg.host, start=False)
    err = start_fails(m)
    text = m.stderr() + m.log()
    assert "https://%s answered in plain HTTP: use http://%s" % (reg.host, reg.host) in text, err
    assert not_mounted(m)
    # nothing left in the cache for the failed attempt
    assert reg.host not in os.listdir(m.cache_dir)


# -- a failed attempt leaves nothing in the cache directory ---------------------------------

def test_root_mode_failed_host_leaves_no_cache_dir(mount_factory, registry_factory, images):
    reg = registry_factory()
    m = mount_factory(None, options={"registries_conf": "/nonexistent"}, debug=True)
    dead = "127.0.0.1:%d" % dead_port()
    assert errno_of("listdir", m.path(dead)) is not None
    assert dead not in os.listdir(m.cache_dir)
    assert dead not in ls(m.mountpoint)
    # a host that does answer still gets its directory
    ls(m.path(reg.host))
    assert reg.host in os.listdir(m.cache_dir)
    assert reg.host in ls(m.mountpoint)
