"""Progress you can watch (issue 10): `registryfs status MOUNTPOINT`, its --watch and --json,
the mount root's user.registryfs.transfers xattr (JSON) and the bytes in a tag's
user.registryfs.status, while a `cp -r` runs through a rate-limited relay (1 MiB/s per
connection), out of a mount (downloads) and into a writable one (uploads).

Every access to a mount is a child process with a timeout; waits poll with a deadline.
"""

import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from harness import imagegen as ig
from harness.faults import raw_layer
from harness.mount import registryfs_bin
from harness.regclient import RegistryClient
from harness.tools import run
from harness.write_fixtures import WriteEnv

KiB = 1 << 10
MiB = 1 << 20
RATE = MiB                  # per connection, each way
LAYER = 3 * MiB             # two of them: about 3 s at RATE, in parallel


@pytest.fixture(scope="module")
def simages(tmp_path_factory):
    store = ig.BlobStore(tmp_path_factory.mktemp("sgen") / "blobs")
    layers = [raw_layer(store, "status/%d" % i, LAYER) for i in range(2)]
    return {"store": store, "img": ig.make_image(store, "st/app", layers)}


class Bg:
    """A child process in the background, killed by its pid in close()."""

    def __init__(self, cmd):
        self.p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.out = self.err = ""
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        self.out, self.err = self.p.communicate()

    def wait(self, timeout):
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self._reader.join(10)

    def __str__(self):
        return "%s: exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(map(str, self.p.args)), self.p.returncode, self.out[-3000:],
            self.err[-3000:])


def status(mnt, *args, timeout=20):
    return run([registryfs_bin(), "status"] + list(args) + [mnt.mountpoint], timeout=timeout)


def transfers(mnt):
    """The root xattr, through getfattr (as a script would read it), parsed."""
    r = run(["getfattr", "--only-values", "-n", "user.registryfs.transfers",
             mnt.mountpoint], timeout=20)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def tag_status(path, must=True):
    """The tag's status text; with must=False "" when it cannot be read (yet)."""
    r = run(["getfattr", "--only-values", "-n", "user.registryfs.status", path], timeout=20)
    assert r.returncode == 0 or not must, r
    return r.stdout if r.returncode == 0 else ""


def poll(what, fn, timeout=15, step=0.1):
    """fn() until it returns something true; fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for " + what)
        time.sleep(step)


def entries(doc, direction, repo):
    return [t for t in doc["transfers"] if t["direction"] == direction and t["repo"] == repo]


def running_partial(doc, direction, repo):
    """Entries of repo still running with some but not all of a known total."""
    return [t for t in entries(doc, direction, repo) if t["state"] == "running"
            and t["total"] is not None and t["done"] < t["total"]]


def layer_digests(obj):
    return {l.digest for l in obj.layers}


def assert_all_done(doc, direction, repo, obj):
    es = entries(doc, direction, repo)
    by_digest = {t["digest"]: t for t in es}
    for d in layer_digests(obj):
        assert d in by_digest, (d, doc)
        t = by_digest[d]
        assert t["state"] == "done", t
        assert t["done"] == t["total"] == LAYER, t
        assert t["rate"] > 0 and t["eta"] is None, t
    assert doc["running"] == 0 or all(t["state"] != "running" for t in es), doc


def check_table_row(out, image):
    rows = [l for l in out.splitlines() if image in l]
    assert rows, out
    return rows


# -- downloads: cp -r out of a mount ---------------------------------------------------------

def test_status_of_a_download(registry_factory, relay_factory, mount_factory, simages,
                              tmp_path):
    reg = registry_factory()
    obj = simages["img"]
    with RegistryClient(reg.url) as c:
        c.push(simages["store"], "st/app", "v1", obj)
    relay = relay_factory(reg.port, RATE)
    m = mount_factory(relay.url)
    host = relay.host
    empty = transfers(m)
    assert empty["version"] == 1 and empty["transfers"] == [] and empty["running"] == 0, empty
    r = status(m)
    assert r.returncode == 0 and "No transfers" in r.stdout, r

    cp = Bg(["cp", "-r", m.path("st/app/v1"), tmp_path / "out"])
    watch = None
    try:
        doc = poll("a running download with bytes < total",
                   lambda: (lambda d: d if running_partial(d, "download", "st/app") else None)(
                       transfers(m)))
        t = running_partial(doc, "download", "st/app")[0]
        assert t["host"] == host and t["tag"] == "v1" and t["digest"] in layer_digests(obj), t
        assert t["total"] == LAYER and 0 <= t["done"] < LAYER, t
        watch = Bg([registryfs_bin(), "status", "--watch", m.mountpoint])
        r = status(m)
        assert r.returncode == 0, r
        assert "Transferred:" in r.stdout, r
        rows = check_table_row(r.stdout, "%s/st/app:v1" % host)
        assert any(row.split()[0] == "download" and "running" in row for row in rows), r.stdout
        assert cp.wait(30), "cp -r did not end: %s" % cp
        assert cp.p.returncode == 0, cp
        # --watch ends by itself once nothing runs
        assert watch.wait(10), "status --watch still running after the copy: %s" % watch
        assert watch.p.returncode == 0, watch
        assert watch.out.count("Transferred:") >= 2, watch      # redrawn at least once
    finally:
        cp.close()
        if watch:
            watch.close()
    doc = transfers(m)
    assert_all_done(doc, "download", "st/app", obj)
    r = status(m)
    rows = check_table_row(r.stdout, "%s/st/app:v1" % host)
    assert all(row.rstrip().endswith("done") for row in rows), r.stdout
    assert "0 running" in r.stdout, r.stdout
    r = status(m, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["running"] == 0, r


# -- uploads: cp -r into a writable mount ----------------------------------------------------

def test_status_of_an_upload(registry_factory, relay_factory, mount_factory, simages, tmp_path):
    reg = registry_factory()
    relay = relay_factory(reg.port, 256 * MiB, up_bytes_per_sec=RATE)
    m = mount_factory(relay.url, start=False, options={"push": True})
    w = WriteEnv(reg, RegistryClient(reg.url), m, tmp_path, simages["store"])
    obj = simages["img"]
    src = w.source(obj, "app")
    w.mkdirs("st/up")
    tag_dir = w.path("st/up/v1")
    cp = Bg(["cp", "-r", src, tag_dir])
    try:
        # both seen while the same uploads run: the tag's status, then the table
        seen = {}

        def both():
            if "text" not in seen:
                text = tag_status(tag_dir, must=False)    # cp may not have made it yet
                if "blobs sent:" in text and " running" in text:
                    seen["text"] = text
            doc = transfers(m)
            if running_partial(doc, "upload", "st/up"):
                seen["doc"] = doc
            return "text" in seen and "doc" in seen

        poll("a running upload with bytes < total, and the tag's status with bytes", both)
        t = running_partial(seen["doc"], "upload", "st/up")[0]
        assert t["host"] == relay.host and t["tag"] == "v1", t
        assert t["digest"] in layer_digests(obj) and t["total"] == LAYER, t
        assert seen["text"].startswith("incomplete"), seen["text"]
        r = status(m)
        assert r.returncode == 0, r
        rows = check_table_row(r.stdout, "%s/st/up:v1" % relay.host)
        assert any(row.split()[0] == "upload" and "running" in row for row in rows), r.stdout
        assert cp.wait(30), "cp -r did not end: %s" % cp
        assert cp.p.returncode == 0, cp
    finally:
        cp.close()
    w.assert_published("st/up", "v1", obj)
    assert_all_done(transfers(m), "upload", "st/up", obj)
    assert tag_status(tag_dir) == "published"     # exactly, as before: its uploads are over
    r = status(m, "--watch", timeout=10)            # nothing runs: one table, then exit 0
    assert r.returncode == 0 and r.stdout.count("Transferred:") == 1, r


# -- copies between two registries of a root-mode mount ----------------------------------------

def test_status_of_a_copy_between_registries(registry_factory, relay_factory, mount_factory,
                                             simages):
    """cp -r MNT/A/REPO/TAG MNT/B/REPO2/TAG: B's blobs stream from A's download (fs/prefill.c);
    they show as copies into B with A as their source, beside A's downloads."""
    a, b = registry_factory(), registry_factory()
    obj = simages["img"]
    with RegistryClient(a.url) as c:
        c.push(simages["store"], "st/app", "v1", obj)
    ra = relay_factory(a.port, RATE)
    rb = relay_factory(b.port, 256 * MiB, up_bytes_per_sec=RATE)
    m = mount_factory(None, options={"push": True})
    assert run(["mkdir", "-p", m.path(rb.host, "st/copy")], timeout=20).returncode == 0
    cp = Bg(["cp", "-r", m.path(ra.host, "st/app/v1"), m.path(rb.host, "st/copy/v1")])
    try:
        doc = poll("a running copy with bytes < total",
                   lambda: (lambda d: d if running_partial(d, "copy", "st/copy") else None)(
                       transfers(m)))
        t = running_partial(doc, "copy", "st/copy")[0]
        assert t["host"] == rb.host and t["tag"] == "v1", t
        assert t["from"] == ra.host + "/st/app", t
        r = status(m)
        rows = check_table_row(r.stdout, "%s/st/copy:v1" % rb.host)
        assert any(row.split()[0] == "copy" and "(from %s/st/app)" % ra.host in row
                   for row in rows), r.stdout
        assert cp.wait(30), "cp -r did not end: %s" % cp
        assert cp.p.returncode == 0, cp
    finally:
        cp.close()
    doc = transfers(m)
    assert_all_done(doc, "download", "st/app", obj)
    copies = entries(doc, "copy", "st/copy")
    assert copies and all(t["state"] == "done" and t["done"] == t["total"] for t in copies), doc


# -- the command's errors --------------------------------------------------------------------

def test_status_outside_a_mount(tmp_path):
    r = run([registryfs_bin(), "status", tmp_path], timeout=10)
    assert r.returncode == 1 and "not the mount point of a registryfs mount" in r.stderr, r
    r = run([registryfs_bin(), "status"], timeout=10)
    assert r.returncode == 2 and "usage" in r.stderr, r
    r = run([registryfs_bin(), "status", "--bogus", tmp_path], timeout=10)
    assert r.returncode == 2, r
    r = run([registryfs_bin(), "status", tmp_path / "missing"], timeout=10)
    assert r.returncode == 1 and "No such file" in r.stderr, r
    r = run([registryfs_bin(), "status", "--help"], timeout=10)
    assert r.returncode == 0 and "--watch" in r.stdout, r
