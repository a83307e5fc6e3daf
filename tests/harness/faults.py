"""Fault and pacing helpers for the parallel data path tests (tests/test_parallel.py).

    relay = RateLimitedRelay(reg.port, 1 << 20).start()   # 1 MiB/s per connection and direction
    m = mount_factory(relay.url)                          # registryfs talks through the relay
    relay.bytes_down, relay.bytes_up                      # bytes relayed so far
    relay.requests                                        # [RelayRequest] heads seen client->server
    relay.ranges(digest)                                  # [(first, last)] of its blob GETs
    relay.stop()                                          # closes every socket, joins threads

RateLimitedRelay is a plain TCP relay on 127.0.0.1 (loopback only, no HTTP rewriting): each
connection is paced on its own, in both directions, at most one chunk ahead of its rate (idle
time earns no credit), so S bytes through one connection take at least (S - chunk) / rate
seconds: a slow link that a test can interrupt (stop the registry behind it) and that makes
serial and parallel transfers tell apart by time. The relay keeps small socket buffers, so a
registry that is killed stops the flow at once instead of after megabytes of buffered data;
when the upstream connection ends (or cannot be made) the client's connection is closed too.

fail_uploads_of=[HEX, ...]: a client->server request line `POST|PUT|PATCH ...HEX...` (the
upload of that blob, or its cross-repository mount) is never forwarded: the connection is
closed instead (`refused` lists the request lines), so that upload fails however often it is
retried while every other request goes through.

Also: raw_layer(store, seed, size) - a layer descriptor over `size` incompressible keystream
bytes (not a tar: registries and registryfs never look inside layers), for exact blob sizes
(part boundaries); storage_blobs(reg, repos, seed, size) - one large blob per repository
written straight into a registry's filesystem storage (no HTTP push of hundreds of MiB);
verified_cache_files(root) - which cached `data` files hash to their names.
"""

import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

from . import imagegen as ig


@dataclass
class RelayRequest:
    t: float            # time.monotonic() when its head had arrived
    conn: int           # connection number (1, 2, ...)
    method: str
    target: str
    range: str          # the Range header, or None

    @property
    def path(self):
        return self.target.split("?", 1)[0]


def _port_of(upstream):
    if isinstance(upstream, int):
        return upstream
    return int(str(upstream).rstrip("/").rsplit(":", 1)[1])


class _HeadParser:
    """Request heads of one client->server byte stream (bodies by Content-Length skipped; a
    chunked body ends the parsing of that connection)."""

    def __init__(self, relay, conn):
        self.relay = relay
        self.conn = conn
        self.buf = b""
        self.body_left = 0
        self.lost = False

    def feed(self, data):
        if self.lost:
            return
        if self.body_left:
            skip = min(self.body_left, len(data))
            self.body_left -= skip
            data = data[skip:]
        self.buf += data
        while not self.lost and not self.body_left:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.lost = True
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) < 3:
                self.lost = True
                return
            hdrs = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            self.relay._record(RelayRequest(time.monotonic(), self.conn, parts[0], parts[1],
                                            hdrs.get("range")))
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                self.lost = True
                return
            n = int(hdrs.get("content-length") or 0)
            skip = min(n, len(self.buf))
            self.buf = self.buf[skip:]
            self.body_left = n - skip


class RateLimitedRelay:
    CHUNK = 16384

    def __init__(self, upstream_port, bytes_per_sec, up_bytes_per_sec=None, port=None,
                 fail_uploads_of=(), sockbuf=65536):
        self.upstream_port = _port_of(upstream_port)
        self.down_rate = float(bytes_per_sec)                       # server -> client
        self.up_rate = float(up_bytes_per_sec or bytes_per_sec)     # client -> server
        self.port = port
        self.sockbuf = sockbuf
        self.fail_re = None
        if fail_uploads_of:
            alts = b"|".join(re.escape(ig.hex_of(h) if ":" in h else h).encode()
                             for h in fail_uploads_of)
            self.fail_re = re.compile(rb"(?:POST|PUT|PATCH) [^ \r\n]*(?:" + alts + rb")")
        self.bytes_down = 0
        self.bytes_up = 0
        self.connections = 0
        self.open_now = 0
        self.max_open = 0
        self.requests = []
        self.refused = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = None
        self._acceptor = None
        self._socks = set()
        self._threads = []

    # -- addresses -----------------------------------------------------------------
    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    # -- lifecycle -----------------------------------------------------------------
    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sockbuf)   # inherited
        ls.bind(("127.0.0.1", self.port or 0))
        ls.listen(64)
        ls.settimeout(0.1)
        self.port = ls.getsockname()[1]
        self._listener = ls
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        """Stop accepting, close every socket, join every thread. Idempotent."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(5)          # no connection is accepted after this
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for s in socks:
            _close(s)
        for t in threads:
            t.join(5)
        with self._lock:
            self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- observations --------------------------------------------------------------
    def _record(self, req):
        with self._lock:
            self.requests.append(req)

    def blob_gets(self, digest):
        rx = re.compile(r"/blobs/" + re.escape(digest) + r"$")
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and rx.search(r.path)]

    def ranges(self, digest, size):
        """[(first, last)] byte ranges (inclusive) of the GETs of one blob; a GET without
        Range is (0, size - 1); `bytes=N-` ends at size - 1."""
        out = []
        for r in self.blob_gets(digest):
            if not r.range:
                out.append((0, size - 1))
                continue
            m = re.match(r"bytes=(\d+)-(\d*)$", r.range.strip())
            if not m:
                out.append((r.range, None))
                continue
            out.append((int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1))
        return out

    # -- relaying ------------------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            with self._lock:
                self.connections += 1
                n = self.connections
                self._socks.add(c)
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            t.start()
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, c, n):
        u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for s in (c, u):         # forward each chunk at once, as the registry sent it
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sockbuf)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sockbuf)
        with self._lock:
            self._socks.add(u)
        try:
            u.settimeout(5)
            u.connect(("127.0.0.1", self.upstream_port))
            u.settimeout(None)
        except OSError:
            self._drop(c, u)
            return
        with self._lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)
        parser = _HeadParser(self, n)
        up = threading.Thread(target=self._pump, args=(c, u, self.up_rate, parser, c, u),
                              daemon=True)
        up.start()
        self._pump(u, c, self.down_rate, None, c, u)
        up.join()
        with self._lock:
            self.open_now -= 1

    def _drop(self, c, u):
        for s in (c, u):
            _close(s)
        with self._lock:
            self._socks.discard(c)
            self._socks.discard(u)

    def _pump(self, src, dst, rate, parser, c, u):
        upward = parser is not None
        tail = b""
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                data = src.recv(self.CHUNK)
                if not data:
                    break
                if upward:
                    if self.fail_re is not None:
                        m = self.fail_re.search(tail + data)
                        if m:
                            with self._lock:
                                self.refused.append(m.group(0).decode("latin-1"))
                            break
                        tail = (tail + data)[-512:]
                    parser.feed(data)
                now = time.monotonic()
                next_t = max(next_t, now)
                dst.sendall(data)
                with self._lock:
                    if upward:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                next_t += len(data) / rate
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
        except OSError:
            pass
        finally:
            self._drop(c, u)       # either side gone: end the whole connection


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# -- blobs of exact sizes ---------------------------------------------------------------

def _stream_keystream(f, seed, size):
    h = hashlib.sha256()
    ks = ig.KeyStream(seed, size)
    while True:
        b = ks.read(1 << 20)
        if not b:
            break
        h.update(b)
        f.write(b)
    return "sha256:" + h.hexdigest()


def raw_layer(store, seed, size, media_type=ig.OCI_LAYER_GZIP):
    """A Layer whose blob is `size` keystream bytes (incompressible; not a real tar.gz)."""
    f, tmp = store.new_temp()
    try:
        digest = _stream_keystream(f, seed, size)
        f.close()
    except BaseException:
        f.close()
        os.unlink(tmp)
        raise
    store.commit_temp(tmp, digest)
    return ig.Layer(ig.Descriptor(media_type, digest, size), "sha256:" + "0" * 64)


def storage_blobs(reg, repos, seed, size, media_type=ig.OCI_LAYER_GZIP):
    """One `size`-byte blob per repository, written straight into reg's filesystem storage
    and linked into it (what a blob upload leaves behind); returns their Descriptors. Each is
    the same size - 16 keystream bytes followed by 16 bytes of its own (distinct digests,
    each incompressible, hashed from one shared prefix state: fast for hundreds of MiB). The
    blobs exist only there (no BlobStore copy): check readers against their names."""
    common = ig.KeyStream(seed, size - 16).read()
    h0 = hashlib.sha256(common)
    out = []
    for i, repo in enumerate(repos):
        tail = hashlib.sha256(("%s/%d" % (seed, i)).encode()).digest()[:16]
        h = h0.copy()
        h.update(tail)
        out.append(_store_blob(reg, repo, "sha256:" + h.hexdigest(), (common, tail),
                               media_type))
    return out


def _store_blob(reg, repo, digest, chunks, media_type):
    v2 = os.path.join(reg.storage, "docker", "registry", "v2")
    tmpdir = os.path.join(reg.storage, "_tmp_faults")       # beside the tree, same filesystem
    os.makedirs(tmpdir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="blob.")
    size = 0
    with os.fdopen(fd, "wb") as f:
        for c in chunks:
            f.write(c)
            size += len(c)
    hx = ig.hex_of(digest)
    bdir = os.path.join(v2, "blobs", "sha256", hx[:2], hx)
    os.makedirs(bdir, exist_ok=True)
    os.replace(tmp, os.path.join(bdir, "data"))
    ldir = os.path.join(v2, "repositories", repo, "_layers", "sha256", hx)
    os.makedirs(ldir, exist_ok=True)
    with open(os.path.join(ldir, "link"), "w") as f:
        f.write(digest)
    return ig.Descriptor(media_type, digest, size)


def verified_cache_files(root):
    """{hex: ok} for every `.../blobs/sha256/XX/HEX/data` under a cache root: ok is whether
    the file hashes to HEX."""
    out = {}
    for d, _, fs in os.walk(root):
        if "data" in fs and os.path.basename(os.path.dirname(d)) == os.path.basename(d)[:2]:
            h = hashlib.sha256()
            with open(os.path.join(d, "data"), "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            out[os.path.basename(d)] = h.hexdigest() == os.path.basename(d)
    return out
