"""Read-only mount semantics and the command line: modes, EROFS, --help/--version, bad
addresses, daemonizing, the -d request log."""

import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.mount import Mount, registryfs_bin
from harness.registry import free_port
from harness.tools import ls, mounted, ok, probe, read_bytes, run

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_modes(mnt, samples):
    ref = samples["multi"]
    inst = ref.obj.images[0]
    dirs = [mnt.mountpoint, mnt.path("multi"), mnt.path("multi/app"), mnt.path(ref.path),
            mnt.path("a/b/c")]
    files = [mnt.path(ref.path, n) for n in
             ("version", "manifest.json", inst.hex + ".manifest.json", inst.config.hex,
              inst.layers[0].hex)]
    r = ok(["stat", "-c", "%a %F", "--"] + dirs + files)
    lines = r.stdout.splitlines()
    assert lines == ["555 directory"] * len(dirs) + ["444 regular file"] * len(files), r


@pytest.mark.parametrize("op,rel,arg", [
    ("mkdir", "newdir", None),
    ("mkdir", "oci/app/newtag", None),
    ("create", "oci/app/v1/newfile", None),
    ("create", "newfile", None),
    ("open_write", "oci/app/v1/version", None),
    ("open_rdwr", "oci/app/v1/manifest.json", None),
    ("truncate", "oci/app/v1/manifest.json", None),
    ("unlink", "oci/app/v1/version", None),
    ("rmdir", "oci/app/latest", None),
    ("rename", "oci/app/latest", "oci/app/renamed"),
    ("chmod", "oci/app/v1/version", None),
    ("utime", "oci/app/v1/version", None),
    ("symlink", "oci/app/v1/link", None),
])
def test_writes_fail_with_erofs(mnt, op, rel, arg):
    st = probe(op, mnt.path(rel), mnt.path(arg) if arg else None)
    assert st[0] == "EROFS", st


def test_write_commands_report_read_only(mnt, samples):
    tag = mnt.path(samples["oci"].path)
    for cmd in (["mkdir", mnt.path("x")], ["touch", os.path.join(tag, "new")],
                ["rm", "-f", os.path.join(tag, "version")],
                ["sh", "-c", "echo x > '%s'" % os.path.join(tag, "version")],
                ["cp", "/etc/hostname", tag + "/"]):
        r = run(cmd)
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r
    # nothing changed
    assert read_bytes(os.path.join(tag, "version")) == b"Directory Transport Version: 1.1\n"
    assert "new" not in ls(tag)


def _makefile_version():
    with open(os.path.join(REPO_ROOT, "Makefile")) as f:
        m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
    return m.group(1) if m else None


def test_help_and_version():
    exe = registryfs_bin()
    assert os.access(exe, os.X_OK), "no binary at %s (run make)" % exe
    r = run([exe, "--help"], timeout=10)
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    for word in ("REGISTRY", "MOUNTPOINT", "cache_dir", "platform", "ttl", "log_file"):
        assert word in out, (word, r)
    r = run([exe, "--version"], timeout=10)
    assert r.returncode == 0, r
    v = _makefile_version()
    assert "registryfs" in r.stdout and (v is None or v in r.stdout), r


def _expect_start_failure(tmp_path, registry_arg, timeout=40, extra=()):
    mp = tmp_path / "mnt"
    mp.mkdir(exist_ok=True)
    m = Mount(mp, registry_arg, foreground=False, workdir=tmp_path, extra_args=list(extra))
    t0 = time.monotonic()
    r = run(m.argv(), timeout=timeout)
    took = time.monotonic() - t0
    try:
        assert r.returncode not in (0, -9), r
        assert r.stderr.strip(), "no message on the terminal:\n%s" % r
        assert not mounted(mp), "mounted although the start failed"
    finally:
        m.stop()
    return r, took


def test_unreachable_registry_is_a_startup_error(tmp_path):
    port = free_port()              # nothing listens there
    r, took = _expect_start_failure(tmp_path, "http://127.0.0.1:%d" % port)
    assert took < 30, took
    assert "127.0.0.1:%d" % port in r.stderr, r


@pytest.mark.parametrize("addr", ["ftp://127.0.0.1:5000", "http://", "http://127.0.0.1:notaport",
                                  "http://127.0.0.1:5000/some/path?x"])
def test_malformed_registry_address_is_rejected(tmp_path, addr):
    _expect_start_failure(tmp_path, addr, timeout=20)


def test_non_registry_http_server_is_rejected(tmp_path):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        _expect_start_failure(tmp_path, "http://127.0.0.1:%d" % srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def test_missing_mountpoint_is_an_error(tmp_path, registry):
    r = run([registryfs_bin(), "-o", "cache_dir=%s" % (tmp_path / "c"), registry.url,
             str(tmp_path / "does-not-exist")], timeout=30)
    assert r.returncode != 0 and r.stderr.strip(), r
    assert not mounted(tmp_path / "does-not-exist")


def test_daemonizes_after_the_mount_is_up(tmp_path, registry, samples):
    m = Mount(tmp_path / "mnt", registry.url, foreground=False, workdir=tmp_path)
    try:
        m.start(timeout=30)
        rc, took = m.start_result
        assert rc == 0
        # the mount must be usable the moment the parent returned
        assert mounted(m.mountpoint), "parent exited before the mount was up"
        assert m.daemon_pid is not None, "no daemon process left running"
        ref = samples["oci"]
        assert read_bytes(m.path(ref.path, "manifest.json")) == ref.obj.manifest
    finally:
        m.stop()
    assert not mounted(m.mountpoint)


def test_foreground_process_exits_after_unmount(mount_factory, registry):
    m = mount_factory(registry.url)
    assert m.proc.poll() is None
    ok(["fusermount3", "-u", m.mountpoint])
    try:
        m.proc.wait(10)
    except Exception:
        pytest.fail("registryfs -f still running 10 s after fusermount3 -u")
    assert m.proc.returncode == 0, m.describe()


def test_debug_logs_one_line_per_http_request(tmp_path, registry, samples):
    m = Mount(tmp_path / "mnt", registry.url, debug=True, workdir=tmp_path)
    mark = registry.mark()
    try:
        m.start()
        ref = samples["oci"]
        ls(m.path("oci", "app"))
        read_bytes(m.path(ref.path, ref.obj.layers[-1].hex))
        read_bytes(m.path(ref.path, "manifest.json"))
    finally:
        m.stop()
    reqs = registry.requests(mark)
    assert reqs, "no requests reached the registry"
    log = m.log()
    lines = [l for l in log.splitlines()
             if re.search(r"\b(GET|HEAD|POST|PUT|PATCH|DELETE)\b", l) and "/v2/" in l]
    for a in reqs:
        assert any(a.path in l for l in lines), "request %s %s not logged:\n%s" % (
            a.method, a.uri, log[-3000:])
    assert len(lines) == len(reqs), "log lines %d != registry requests %d\n%s\n---\n%s" % (
        len(lines), len(reqs), "\n".join(lines), "\n".join("%s %s" % (a.method, a.uri)
                                                           for a in reqs))


def test_log_file_without_debug_has_no_request_lines(mount_factory, registry, samples):
    m = mount_factory(registry.url)
    ref = samples["oci"]
    read_bytes(m.path(ref.path, "manifest.json"))
    lines = [l for l in m.log().splitlines() if "/v2/" in l and re.search(r"\bGET\b", l)]
    assert lines == [], lines


def test_mount_shows_in_proc_mounts_as_read_only_fuse(mnt):
    entry = mounted(mnt.mountpoint)
    assert entry[2].startswith("fuse"), entry
    assert "ro" in entry[3].split(","), entry


def test_https_is_the_default_scheme(tmp_path, registry_factory, mount_factory, samples):
    """REGISTRY without a scheme means https (here with -o tls_verify=false, see --help);
    with verification on, a self-signed registry is a startup error on the terminal."""
    from harness import imagegen as ig
    from harness.regclient import RegistryClient
    from harness.registry import self_signed_cert
    cert, key = self_signed_cert(str(tmp_path))
    reg = registry_factory(tls=(cert, key))
    assert reg.url.startswith("https://")
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_simple(store, "tls/app")
    with RegistryClient(reg.url) as c:
        c.push(store, "tls/app", "v1", img)
    m = mount_factory(reg.host, options={"tls_verify": "false"})
    assert read_bytes(m.path("tls/app/v1/manifest.json")) == img.manifest
    assert read_bytes(m.path("tls/app/v1", img.layers[0].hex)) == store.read(img.layers[0].digest)
    (tmp_path / "verify").mkdir()
    _expect_start_failure(tmp_path / "verify", reg.host)
