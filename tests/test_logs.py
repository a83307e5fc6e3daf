"""Logs and versions: -o log_level, ISO 8601 timestamps, SIGHUP reopening the log file
(logrotate) without unmounting, -V naming the libraries, the man page covering --help."""

import os
import re
import signal

import pytest

from harness import writes
from harness.mount import Mount, registryfs_bin
from harness.tools import ls, mounted, read_bytes, run, wait_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d registryfs ")


def test_log_level_warn_hides_info_lines(mount_factory, registry, samples):
    quiet = mount_factory(registry.url, options={"log_level": "warn"})
    chatty = mount_factory(registry.url, options={"log_level": "info"})
    for m in (quiet, chatty):
        read_bytes(m.path(samples["oci"].path, "manifest.json"))
        m.stop()
    assert " info: " in chatty.log(), chatty.log()
    assert " info: " not in quiet.log() and " debug: " not in quiet.log(), quiet.log()


def test_log_level_debug_is_dash_d(mount_factory, registry, samples):
    m = mount_factory(registry.url, options={"log_level": "debug"})
    read_bytes(m.path(samples["oci"].path, "manifest.json"))
    m.stop()
    assert re.search(r" debug: http: GET \S+/v2/", m.log()), m.log()


def test_unknown_log_level_fails_the_mount(tmp_path, registry):
    mp = tmp_path / "mnt"
    mp.mkdir()
    m = Mount(mp, registry.url, foreground=False, workdir=tmp_path,
              options={"log_level": "loud"})
    try:
        r = run(m.argv(), timeout=30)
        assert r.returncode != 0, r
        assert "log_level" in r.stderr and "loud" in r.stderr, r
        assert not mounted(mp)
    finally:
        m.stop()


def test_log_file_lines_start_with_iso8601(mount_factory, registry, samples):
    m = mount_factory(registry.url, debug=True)
    ls(m.path("oci", "app"))
    read_bytes(m.path(samples["oci"].path, "manifest.json"))
    m.stop()
    lines = m.log().splitlines()
    assert len(lines) > 3, lines
    bad = [l for l in lines if not ISO_LINE.match(l)]
    assert not bad, bad


@pytest.mark.parametrize("foreground", [True, False], ids=["foreground", "daemon"])
def test_sighup_reopens_the_log_file(tmp_path, registry, samples, foreground):
    m = Mount(tmp_path / "mnt", registry.url, workdir=tmp_path, debug=True,
              foreground=foreground)
    try:
        m.start()
        ls(m.path("oci", "app"))
        rotated = m.log_file + ".1"
        os.rename(m.log_file, rotated)
        pid = m.proc.pid if foreground else m.daemon_pid
        assert pid
        os.kill(pid, signal.SIGHUP)
        assert wait_for(lambda: os.path.exists(m.log_file), 10), \
            "no new log file after SIGHUP\n" + m.describe()
        before = open(rotated).read()
        # the mount is still up and serving; what it does now goes to the new file
        assert mounted(m.mountpoint), "SIGHUP unmounted\n" + m.describe()
        ref = samples["multi"]
        read_bytes(m.path(ref.path, "manifest.json"))
        assert wait_for(lambda: "/v2/multi/app/manifests/" in m.log(), 10), m.log()
        assert "/v2/multi/app/manifests/" not in open(rotated).read()
        assert open(rotated).read() == before, "lines still went to the renamed file"
        assert all(ISO_LINE.match(l) for l in m.log().splitlines()), m.log()
    finally:
        m.stop()
    assert not mounted(m.mountpoint)


def test_version_names_the_libraries():
    r = run([registryfs_bin(), "-V"], timeout=10)
    assert r.returncode == 0, r
    for pattern in (r"^registryfs \d+\.\d+", r"^libfuse 3\.\d+", r"^libcurl \d+\.\d+",
                    r"^OpenSSL \d+\.\d+", r"^cJSON \d+\.\d+"):
        assert re.search(pattern, r.stdout, re.M), (pattern, r.stdout)


def test_man_page_checks_and_covers_help():
    r = run(["make", "-s", "-C", REPO_ROOT, "man"], timeout=60)
    assert r.returncode == 0, r
    page = os.path.join(REPO_ROOT, "docs", "registryfs.1")
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    r = run(["man", "-l", "-Tutf8", page], timeout=30, env=env)
    text = re.sub(r".\x08", "", r.stdout)     # overstrike bold/underline, when man keeps it
    assert r.returncode == 0 and "SYNOPSIS" in text, r
    helptext = run([registryfs_bin(), "--help"], timeout=10).stdout
    names = set(re.findall(r"-o (\w+)", helptext))
    assert {"log_level", "max_transfers", "part_size", "timeout", "retries"} <= names, names
    missing = [n for n in sorted(names) if n not in text]
    assert not missing, missing
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), section
    for word in ("user.registryfs.status", "fuse.registryfs", "REGISTRY_AUTH_FILE",
                 "XDG_CACHE_HOME", "skopeo(1)", "containers-auth.json(5)"):
        assert word in text, word


def test_debug_lines_of_uploads_say_the_bytes_sent(mount_factory, registry_factory, samples,
                                                   tmp_path):
    reg = registry_factory()
    # skopeo's inode order, which cp -r copies in (a manifest before its blobs is an error)
    src = writes.source_dir(samples.store, samples["oci"].obj, tmp_path / "src" / "v1")
    m = mount_factory(reg.url, debug=True, options={"push": True})
    os.makedirs(m.path("up", "app"))
    r = run(["cp", "-r", src, m.path("up", "app", "v1")])
    assert r.returncode == 0, "%s\n%s" % (r, m.describe())
    m.stop()
    sizes = {os.path.getsize(os.path.join(src, n)) for n in os.listdir(src)}
    sent = [int(x) for x in re.findall(r"http: (?:PUT|PATCH|POST) .*? (\d+) bytes sent", m.log())]
    assert sent, m.log()
    assert sizes & set(sent), (sizes, sent)
    assert not re.search(r"http: (GET|HEAD) .*bytes sent", m.log()), m.log()
