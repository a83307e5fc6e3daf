"""Faults (issue 9): transient 503/429 on every kind of request, a mount ended while the
network stalls, a download nobody reads any more, a Link loop.

The chaos runs go through harness.proxy.Proxy(faults=...), which answers a share of requests
(uploads included) with 503, or 429 + Retry-After, in front of the real docker-registry.
Every access to a mount is a child process with a timeout.
"""

import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import imagegen as ig
from harness import tools, writes
from harness.faults import RateLimitedRelay, raw_layer
from harness.regclient import RegistryClient
from harness.registry import free_port
from harness.tools import ls, run

MiB = 1 << 20
CHAOS = (0.10, 0.05, 1234)  # 10 % 503, 5 % 429
CHAOS_IMAGES = 20


@pytest.fixture(scope="module")
def chaos_images(tmp_path_factory):
    """20 small images sharing one base layer."""
    store = ig.BlobStore(tmp_path_factory.mktemp("chaos") / "blobs")
    base = ig.make_layer(store, "chaos/base", files=3)
    imgs = [ig.make_image(store, "chaos/%d" % i, [base, ig.make_layer(store, "chaos/own/%d" % i)],
                          fmt="docker" if i % 2 else "oci") for i in range(CHAOS_IMAGES)]
    return store, imgs


def files_of(path):
    with os.scandir(path) as it:
        return {e.name: open(e.path, "rb").read() for e in it}


def test_chaos_pull_copies_every_image(registry_factory, proxy_factory, mount_factory,
                                       chaos_images, tmp_path):
    """10 % 503 + 5 % 429 on every request: cp -r of 20 images exits 0 and copies them
    byte-identical (the faults are ridden out by retries, never reported)."""
    store, imgs = chaos_images
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        for i, img in enumerate(imgs):
            c.push(store, "chaos/img%d" % i, "v1", img)
    proxy = proxy_factory(reg.host, faults=CHAOS)
    m = mount_factory(proxy.url)
    for i, img in enumerate(imgs):
        dst = tmp_path / ("out%d" % i)
        r = run(["cp", "-r", m.path("chaos/img%d/v1" % i), str(dst)], timeout=120)
        assert r.returncode == 0, (i, r, m.log()[-2000:])
        want = tmp_path / ("want%d" % i)
        ig.write_dir(store, img, str(want), link=False)
        assert files_of(dst) == files_of(want), i
    assert proxy.faulted > 10, proxy.faulted


def test_chaos_push_publishes_every_image(registry_factory, proxy_factory, mount_factory,
                                          chaos_images, tmp_path):
    """The same faults on uploads: cp -r of 20 dir: images into a writable mount exits 0 and
    every image is published with its own digest."""
    store, imgs = chaos_images
    reg = registry_factory()
    proxy = proxy_factory(reg.host, faults=CHAOS)
    m = mount_factory(proxy.url, options={"push": True})
    mark = reg.mark()
    for i, img in enumerate(imgs):
        tools.ok(["mkdir", "-p", m.path("pushed/img%d" % i)])
        # skopeo's inode order, which cp -r copies in (writes.source_dir)
        src = writes.source_dir(store, img, tmp_path / ("src%d" % i))
        r = run(["cp", "-r", str(src), m.path("pushed/img%d" % i, "v1")], timeout=120)
        assert r.returncode == 0, (i, r, m.log()[-2000:])
    with RegistryClient(reg.url) as c:
        for i, img in enumerate(imgs):
            got = c.get_manifest("pushed/img%d" % i, "v1")
            assert got[0] == img.manifest, i
    # one manifest PUT reached the registry per image: no publish was repeated
    puts = [a.uri for a in reg.requests(mark, method="PUT", path_re=r"/manifests/")]
    assert sorted(puts) == sorted("/v2/pushed/img%d/manifests/v1" % i
                                  for i in range(len(imgs))), puts
    assert proxy.faulted > 10, proxy.faulted


# -- ending a mount while the network stalls --------------------------------------------------

def stalled_mount(registry_factory, proxy_factory, mount_factory, tmp_path):
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_image(store, "stall", [raw_layer(store, "stall/l", 4 * MiB)])
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(store, "stall/app", "v1", img)
    proxy = proxy_factory(reg.host, stall_blobs=True)
    m = mount_factory(proxy.url)
    path = m.path("stall/app/v1", img.layers[0].hex)
    ls(m.path("stall/app/v1"))
    reader = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)                   # the read waits for a blob GET that is never answered
    assert reader.poll() is None
    return m, reader


def wait_exit(proc, timeout):
    t0 = time.monotonic()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - t0


def test_unmount_ends_the_daemon_while_a_download_stalls(registry_factory, proxy_factory,
                                                         mount_factory, tmp_path):
    """The reader is killed and the mount unmounted: the daemon exits within 2 s, although
    its download is still waiting for the registry."""
    m, reader = stalled_mount(registry_factory, proxy_factory, mount_factory, tmp_path)
    reader.kill()
    reader.wait(10)
    daemon = m.proc
    r = run(["fusermount3", "-u", m.mountpoint], timeout=10)
    assert r.returncode == 0, r
    took = wait_exit(daemon, 10)
    assert took is not None and took <= 2, "daemon still running %s s after unmount" % took


def test_sigterm_ends_the_daemon_while_a_read_waits(registry_factory, proxy_factory,
                                                    mount_factory, tmp_path):
    """SIGTERM while a reader waits for a stalled blob: the reader gets an error and the
    daemon exits (unmounting) within 2 s."""
    m, reader = stalled_mount(registry_factory, proxy_factory, mount_factory, tmp_path)
    daemon = m.proc
    daemon.send_signal(signal.SIGTERM)
    took = wait_exit(daemon, 10)
    try:
        assert took is not None and took <= 2, "daemon still running %s s after SIGTERM" % took
        assert wait_exit(reader, 5) is not None and reader.returncode != 0
    finally:
        if reader.poll() is None:
            reader.kill()
        reader.wait(5)


def test_download_nobody_reads_is_stopped(registry_factory, mount_factory, tmp_path):
    """A slow blob whose reader went away stops downloading (what arrived is kept for later):
    the connection goes quiet within a few seconds instead of running to the end."""
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_image(store, "gone", [raw_layer(store, "gone/l", 8 * MiB)])
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(store, "gone/app", "v1", img)
    relay = RateLimitedRelay(reg.port, 256 << 10).start()
    try:
        m = mount_factory(relay.url, options={"part_size": "32M"})
        path = m.path("gone/app/v1", img.layers[0].hex)
        ls(m.path("gone/app/v1"))
        reader = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL)
        assert tools.wait_for(lambda: relay.bytes_down > 256 << 10, 20), "no bytes flowing"
        reader.kill()
        reader.wait(10)
        # the image is no longer read: stopped within the grace of 5 s (+ checks)
        assert tools.wait_for(lambda: "nobody reads it any more" in m.log(), 10), \
            m.log()[-2000:]
        time.sleep(0.5)              # the connection's last buffered bytes
        before = relay.bytes_down
        time.sleep(1.5)
        assert relay.bytes_down - before < 64 << 10, (before, relay.bytes_down)
        assert relay.bytes_down < 6 * MiB, relay.bytes_down
    finally:
        relay.stop()


# -- a hostile listing ------------------------------------------------------------------------

class LoopingCatalog:
    """/v2/ 200, and a catalog whose two pages name each other as the next one."""

    def __init__(self):
        self.port = free_port()
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True   # as Go servers do (see harness/proxy.py)
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner.requests += 1
                if self.path.startswith("/v2/_catalog"):
                    page = "2" if "page=1" in self.path else "1"
                    body = b'{"repositories":["loop/r%s"]}' % page.encode()
                    link = '</v2/_catalog?page=%s>; rel="next"' % page
                else:
                    body, link = b"{}", None
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if link:
                    self.send_header("Link", link)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_link_loop_ends_the_listing(mount_factory):
    srv = LoopingCatalog()
    try:
        m = mount_factory("http://127.0.0.1:%d" % srv.port)
        r = run(["ls", m.mountpoint], timeout=30)
        assert r.returncode != 0 and "Input/output error" in r.stderr, r
        assert r.elapsed < 5, r.elapsed
        assert srv.requests < 20, srv.requests
        assert "leads back" in m.log(), m.log()[-2000:]
    finally:
        srv.stop()


def test_trickling_blob_is_cut(registry_factory, proxy_factory, mount_factory, tmp_path):
    """A blob served at 4 bytes/s is slower than the speed floor: the read fails (EIO) after
    the retries instead of never finishing."""
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_image(store, "trickle", [raw_layer(store, "trickle/l", MiB)])
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(store, "trickle/app", "v1", img)
    proxy = proxy_factory(reg.host, trickle_blobs=4)
    m = mount_factory(proxy.url, options={"timeout": 2})
    r = run(["cat", m.path("trickle/app/v1", img.layers[0].hex)], timeout=60, text=False)
    assert r.returncode != 0 and b"Input/output error" in r.stderr, r
    assert r.elapsed < 20, r.elapsed
    assert "too slow" in m.log(), m.log()[-3000:]


def test_interrupted_upload_resumes_where_the_registry_got_to(registry_factory, proxy_factory,
                                                              mount_factory, tmp_path):
    """A large blob goes up in chunks (PATCH with Content-Range); the connection dies in the
    middle of one: the upload asks the registry how far it got and goes on from there, instead
    of starting again from byte 0. rsync names blobs by rename, so they go up from the file."""
    store = ig.BlobStore(tmp_path / "blobs")
    img = ig.make_image(store, "resume", [raw_layer(store, "resume/l", 40 * MiB)])
    src = tmp_path / "src"
    ig.write_dir(store, img, str(src), link=False)
    reg = registry_factory()
    proxy = proxy_factory(reg.host, cut_patch=4 * MiB)
    m = mount_factory(proxy.url, options={"push": True})
    tools.ok(["mkdir", "-p", m.path("resume/app")])
    mark = reg.mark()
    r = run(["rsync", "-a", str(src) + "/", m.path("resume/app/v1") + "/"], timeout=120)
    assert r.returncode == 0, (r, m.log()[-3000:])
    assert proxy.patches_cut == 1
    assert "resuming at byte" in m.log(), m.log()[-3000:]
    assert "trying again from the start" not in m.log()
    with RegistryClient(reg.url) as c:
        assert c.get_manifest("resume/app", "v1")[0] == img.manifest
        assert c.get_blob("resume/app", img.layers[0].digest) == \
            open(store.path(img.layers[0].digest), "rb").read()
    patches = reg.requests(mark, method="PATCH")
    assert len(patches) >= 3, patches        # 40 MiB in 16 MiB chunks, the cut one not counted
