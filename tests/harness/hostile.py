"""A registry that misbehaves on purpose (issue 9, faults and hostile input).

    reg = HostileRegistry(store, image, repo="app", tag="v1",
                          basic=("alice", "pw"),            # or challenge='Bearer realm=...'
                          blob_redirect="cdn",              # or "file:///etc/passwd", None
                          manifest_pad=0).start()           # bytes added to the manifest body
    ... mount reg.url ...
    reg.steal.requests  -> [{"method", "path", "authorization"}]  (what the thief received)
    reg.stop()

Three threaded HTTP/1.1 servers on 127.0.0.1, each on its own free port:
  - the registry: just enough of /v2/ for one image (ping, catalog, tags list, manifests by
    tag or digest, blobs; GET and HEAD). With `basic`, every request needs those Basic
    credentials (401 `Basic realm=...` otherwise); with `challenge`, every request is answered
    401 with that WWW-Authenticate value (a registry whose challenge cannot be answered).
  - the "cdn", where `blob_redirect="cdn"` sends blob GETs (307): it answers 401 with a Bearer
    challenge whose realm is the third server -- a redirect target asking for credentials.
  - the "steal" endpoint: records every request (with its Authorization header) and hands out
    a token, so a client that trusts the cdn's challenge shows up here.
Handlers are (method, path regex, function) rows; every server records what it was sent.
"""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .registry import free_port


class _Reply:
    def __init__(self, status, body=b"", headers=()):
        self.status, self.body, self.headers = status, body, list(headers)


class _Server:
    """One HTTP server answering from a table of (method, regex, fn(match, headers) -> _Reply)."""

    def __init__(self, routes):
        self.routes = routes
        self.port = free_port()
        self.requests = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _answer(self, method, path, headers):
        with self._lock:
            self.requests.append({"method": method, "path": path,
                                  "authorization": headers.get("Authorization")})
        for m, pattern, fn in self.routes:
            match = re.fullmatch(pattern, path.split("?", 1)[0])
            if match and method in m:
                return fn(match, headers)
        return _Reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}')

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            # Go servers (the registry) set TCP_NODELAY; without it a reused connection waits
            # 40 ms (Nagle against delayed ACKs) on every response whose body follows its headers.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                r = server._answer(self.command, self.path, self.headers)
                self.send_response(r.status)
                for name, value in r.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(r.body)

            do_GET = do_HEAD = do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread:
            self._thread.join(5)
            self._thread = None


class HostileRegistry:
    def __init__(self, store, image, repo="app", tag="v1", basic=None, challenge=None,
                 blob_redirect=None, manifest_pad=0):
        self.store, self.image, self.repo, self.tag = store, image, repo, tag
        self.basic = basic
        self.challenge = challenge
        self.blob_redirect = blob_redirect
        # padding after the JSON: still "a manifest", just too big
        self.manifest = image.manifest + b" " * manifest_pad
        self.steal = _Server([("GETPOST", r"/steal", self._steal)])
        self.cdn = _Server([("GETHEAD", r"/blobs/.*", self._cdn_blob)])
        self.reg = _Server(self._registry_routes())

    @property
    def url(self):
        return self.reg.url

    @property
    def host(self):
        return "127.0.0.1:%d" % self.reg.port

    def _registry_routes(self):
        name = re.escape(self.repo)
        return [
            ("GETHEAD", r"/v2/", self._guard(lambda m, h: _Reply(200, b"{}"))),
            ("GET", r"/v2/_catalog", self._guard(self._catalog)),
            ("GET", r"/v2/%s/tags/list" % name, self._guard(self._tags)),
            ("GETHEAD", r"/v2/%s/manifests/([^/]+)" % name, self._guard(self._manifest)),
            ("GETHEAD", r"/v2/%s/blobs/(sha256:[0-9a-f]{64})" % name, self._guard(self._blob)),
        ]

    # -- the registry ------------------------------------------------------------------

    def _guard(self, fn):
        """fn behind the configured authentication."""
        def guarded(match, headers):
            if self.challenge:
                return _Reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              [("WWW-Authenticate", self.challenge)])
            if self.basic and not _basic_ok(headers.get("Authorization"), self.basic):
                return _Reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              [("WWW-Authenticate", 'Basic realm="hostile"')])
            return fn(match, headers)
        return guarded

    def _catalog(self, match, headers):
        return _json({"repositories": [self.repo]})

    def _tags(self, match, headers):
        return _json({"name": self.repo, "tags": [self.tag]})

    def _manifest(self, match, headers):
        if match.group(1) not in (self.tag, self.image.digest):
            return _Reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        return _Reply(200, self.manifest, [("Content-Type", self.image.media_type),
                                           ("Docker-Content-Digest", self.image.digest)])

    def _blob(self, match, headers):
        digest = match.group(1)
        if not self.store.has(digest):
            return _Reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        if self.blob_redirect == "cdn":
            return _Reply(307, headers=[("Location", "%s/blobs/%s" % (self.cdn.url, digest))])
        if self.blob_redirect:
            return _Reply(307, headers=[("Location", self.blob_redirect)])
        return _Reply(200, self.store.read(digest), [("Content-Type", "application/octet-stream")])

    # -- the redirect target and the thief ---------------------------------------------

    def _cdn_blob(self, match, headers):
        realm = 'Bearer realm="%s/steal",service="cdn"' % self.steal.url
        return _Reply(401, b"", [("WWW-Authenticate", realm)])

    def _steal(self, match, headers):
        return _json({"token": "stolen-token", "expires_in": 300})

    def start(self):
        for s in (self.steal, self.cdn, self.reg):
            s.start()
        return self

    def stop(self):
        for s in (self.reg, self.cdn, self.steal):
            s.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def _json(obj):
    return _Reply(200, json.dumps(obj).encode(), [("Content-Type", "application/json")])


def _basic_ok(header, creds):
    want = "Basic " + base64.b64encode(("%s:%s" % creds).encode()).decode()
    return header == want
