"""A small threaded HTTP/1.1 proxy in front of the test registry, for fault injection.

    with Proxy(upstream="127.0.0.1:5000", corrupt_blobs=True) as p:
        p.url   -> "http://127.0.0.1:PORT"  (mount this instead of the registry)

Modes (combine freely):
  corrupt_blobs   flip one byte (the middle one) in the body of every blob GET response
  paginate=N      serve /v2/_catalog and /v2/NAME/tags/list in pages of at most N entries
                  (min of N and the client's ?n=), with `Link: <...>; rel="next"` headers,
                  from the full upstream list; exercises pagination on registries (like
                  distribution 2.8 for tags) that would otherwise answer in one page
  hide_catalog    /v2/_catalog answers 404 UNSUPPORTED, as registries without a catalog do
                  (Docker Hub, GHCR)
  stall_blobs     blob GETs are accepted but never answered (until the proxy stops)
  stall_all       every request is accepted but never answered
  cut_patch=N     the first PATCH (a chunk of an upload) is cut after N body bytes: the
                  proxy closes the connection without forwarding it
  trickle_blobs=B blob GET bodies are sent at B bytes per second (a server slower than any
                  sensible floor)
  faults=(P503, P429, SEED)  answer that share of requests (any method, uploads included)
                  with 503, or 429 + Retry-After: 1, without forwarding them; `faulted`
                  counts them
  cut_blobs=(N, S)  the first GET of each blob is cut: after N body bytes the proxy sends
                  nothing for S seconds, then closes the connection (a proxy or network cut in
                  the middle of a large read; the client resumes with Range); `cut` lists the
                  digests cut

`requests` lists (method, path) of every request received.
"""

import http.client
import json
import random
import re
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .registry import free_port

BLOB_RE = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")
TAGS_RE = re.compile(r"^/v2/(.+)/tags/list$")
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailers", "transfer-encoding", "upgrade"}


class Proxy:
    def __init__(self, upstream, corrupt_blobs=False, paginate=None, stall_blobs=False,
                 stall_all=False, port=None, cut_blobs=None, faults=None, trickle_blobs=None,
                 cut_patch=None, hide_catalog=False):
        self.upstream = upstream.split("://", 1)[-1].rstrip("/")
        self.corrupt_blobs = corrupt_blobs
        self.paginate = paginate
        self.stall_blobs = stall_blobs
        self.stall_all = stall_all
        self.port = port or free_port()
        self.requests = []
        self.corrupted = []
        self.cut_blobs = cut_blobs
        self.cut = []
        self.faults = faults
        self.faulted = 0
        self.trickle_blobs = trickle_blobs
        self.cut_patch = cut_patch
        self.hide_catalog = hide_catalog
        self.patches_cut = 0
        self._rng = random.Random(faults[2] if faults else 0)
        self._stop = threading.Event()
        self._server = None
        self._thread = None
        self._lock = threading.Lock()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def start(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # Go servers (the registry) set TCP_NODELAY; without it a reused connection waits
            # 40 ms (Nagle against delayed ACKs) on every response whose body follows its headers.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"
            timeout = 120

            def log_message(self, *a):
                pass

            def handle_one(self):
                u = urllib.parse.urlsplit(self.path)
                path = u.path
                with proxy._lock:
                    proxy.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                if self.command == "PATCH" and proxy.cut_patch and length > proxy.cut_patch:
                    with proxy._lock:
                        cut = proxy.patches_cut == 0
                        proxy.patches_cut += cut
                    if cut:
                        self.rfile.read(proxy.cut_patch)
                        self.close_connection = True
                        return
                body = self.rfile.read(length) if length else self._chunked_body()
                if proxy.stall_all or (proxy.stall_blobs and self.command == "GET"
                                       and BLOB_RE.match(path)):
                    proxy._stop.wait()
                    self.close_connection = True
                    return
                if proxy.faults and self._fault():
                    return
                if proxy.hide_catalog and path == "/v2/_catalog":
                    return self._unsupported()
                if proxy.paginate and self.command == "GET" and (
                        path == "/v2/_catalog" or TAGS_RE.match(path)):
                    return self._paginated(u)
                self._forward(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def _chunked_body(self):
                """A chunked request body (a streamed upload), whole; None when there is none."""
                if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                    return None
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass                                    # trailers
                        return bytes(data)
                    data += self.rfile.read(size)
                    self.rfile.readline()                           # CRLF after the chunk

            def _fault(self):
                with proxy._lock:
                    x = proxy._rng.random()
                    p503, p429 = proxy.faults[0], proxy.faults[1]
                    status = 503 if x < p503 else 429 if x < p503 + p429 else None
                    if status:
                        proxy.faulted += 1
                if not status:
                    return False
                body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS" if status == 429
                                               else "UNAVAILABLE", "message": "injected"}]})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body.encode())
                return True

            def _unsupported(self):
                body = json.dumps({"errors": [{"code": "UNSUPPORTED",
                                               "message": "catalog hidden"}]}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _upstream(self, method, path, body=None, headers=None):
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                hdrs = {k: v for k, v in (headers or {}).items() if k.lower() not in HOP}
                hdrs["Host"] = proxy.upstream
                conn.request(method, path, body=body, headers=hdrs)
                return conn, conn.getresponse()

            def _forward(self, body):
                conn, r = self._upstream(self.command, self.path, body, dict(self.headers))
                try:
                    self.send_response(r.status, r.reason)
                    clen = r.getheader("Content-Length")
                    for k, v in r.getheaders():
                        if k.lower() in HOP or k.lower() == "content-length":
                            continue
                        if k.lower() == "location":
                            v = v.replace(proxy.upstream, proxy.host)
                        self.send_header(k, v)
                    if self.command == "HEAD":
                        if clen is not None:
                            self.send_header("Content-Length", clen)
                        self.end_headers()
                        return
                    m = BLOB_RE.match(urllib.parse.urlsplit(self.path).path)
                    corrupt = proxy.corrupt_blobs and self.command == "GET" and m and \
                        r.status in (200, 206)
                    if clen is None:
                        data = r.read()
                        if corrupt and data:
                            data = _flip(data, len(data) // 2)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    total = int(clen)
                    self.send_header("Content-Length", str(total))
                    self.end_headers()
                    flip_at = total // 2 if corrupt and total else -1
                    if corrupt:
                        with proxy._lock:
                            proxy.corrupted.append(m.group(1))
                    cut_at = -1
                    if proxy.cut_blobs and self.command == "GET" and m and \
                            r.status in (200, 206):
                        with proxy._lock:
                            if m.group(1) not in proxy.cut:
                                proxy.cut.append(m.group(1))
                                cut_at = min(proxy.cut_blobs[0], total)
                    trickle = proxy.trickle_blobs if self.command == "GET" and m else None
                    pos = 0
                    while pos < total:
                        want = min(trickle or 65536, total - pos)
                        if trickle and proxy._stop.wait(1):
                            self.close_connection = True
                            return
                        if cut_at >= 0:
                            want = min(want, cut_at - pos)
                        if want <= 0:
                            self.wfile.flush()
                            proxy._stop.wait(proxy.cut_blobs[1])
                            self.close_connection = True
                            return
                        chunk = r.read(want)
                        if not chunk:
                            break
                        if pos <= flip_at < pos + len(chunk):
                            chunk = _flip(chunk, flip_at - pos)
                        self.wfile.write(chunk)
                        pos += len(chunk)
                finally:
                    conn.close()

            def _paginated(self, u):
                tm = TAGS_RE.match(u.path)
                field = "tags" if tm else "repositories"
                full_path = u.path + ("?n=1000" if not tm else "")
                conn, r = self._upstream("GET", full_path, None, dict(self.headers))
                data = r.read()
                conn.close()
                if r.status != 200:
                    self.send_response(r.status)
                    self.send_header("Content-Type", r.getheader("Content-Type", "text/plain"))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                j = json.loads(data)
                items = sorted(j.get(field) or [])
                q = urllib.parse.parse_qs(u.query)
                n = proxy.paginate
                if q.get("n"):
                    try:
                        n = max(1, min(n, int(q["n"][0])))
                    except ValueError:
                        pass
                last = q.get("last", [None])[0]
                if last is not None:
                    items = [i for i in items if i > last]
                page, more = items[:n], len(items) > n
                out = dict(j)
                out[field] = page
                body = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if more and page:
                    nxt = "%s?%s" % (u.path, urllib.parse.urlencode({"n": n, "last": page[-1]}))
                    self.send_header("Link", '<%s>; rel="next"' % nxt)
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(5)
            self._thread = None


def _flip(data, i):
    b = bytearray(data)
    b[i] ^= 0x5A
    return bytes(b)


def port_closed(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0
