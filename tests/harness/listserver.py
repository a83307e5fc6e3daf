"""A fake registry that lists a lot: a catalog of `repos` repositories with `tags` tags each,
generated on the fly (nothing is pushed; manifests and blobs are 404).

    with ListServer(repos=12, tags=120_000) as s:
        s.url            -> "http://127.0.0.1:PORT"
        s.repo_names     -> ["big/r00", ...]
        s.tag_names(repo) -> the tags, sorted
        s.requests       -> paths asked for

/v2/ answers 200. /v2/_catalog and /v2/NAME/tags/list answer one page with everything, or, when
the client asks with ?n=N, pages of N with `Link: <...>; rel="next"` headers (distribution's
`last=` convention). Threaded; stop() closes the server and joins its thread.
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .registry import free_port


class ListServer:
    def __init__(self, repos=12, tags=120_000, port=None):
        self.n_repos = repos
        self.n_tags = tags
        self.port = port or free_port()
        self.requests = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self.repo_names = ["big/r%02d" % i for i in range(repos)]

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def tag_names(self, repo):
        return [self._tag(repo, i) for i in range(self.n_tags)]

    @staticmethod
    def _tag(repo, i):
        # sorted by i; the repository's number keeps the lists of different repositories apart
        return "%s-t%06d" % (repo.rsplit("r", 1)[-1], i)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def _page(self, count, item, index_after, query, path, key):
        """One page of `count` items (item(i) is the i-th, sorted), from after ?last=."""
        q = urllib.parse.parse_qs(query)
        start = index_after(q["last"][0]) if "last" in q else 0
        n = int(q["n"][0]) if "n" in q else count
        end = min(count, start + n)
        page = [item(i) for i in range(start, end)]
        link = None
        if end < count:
            link = '<%s?n=%d&last=%s>; rel="next"' % (path, n, urllib.parse.quote(page[-1]))
        return json.dumps({key: page}).encode(), link

    def start(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            # Go servers (the registry) set TCP_NODELAY; without it a reused connection waits
            # 40 ms (Nagle against delayed ACKs) on every response whose body follows its headers.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body=b"{}", link=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                if link:
                    self.send_header("Link", link)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                path, _, query = self.path.partition("?")
                with srv._lock:
                    srv.requests.append(path)
                if path == "/v2/":
                    return self.reply(200)
                if path == "/v2/_catalog":
                    names = srv.repo_names
                    body, link = srv._page(len(names), names.__getitem__,
                                           lambda last: names.index(last) + 1, query, path,
                                           "repositories")
                    return self.reply(200, body, link)
                if path.startswith("/v2/") and path.endswith("/tags/list"):
                    repo = path[len("/v2/"):-len("/tags/list")]
                    if repo not in srv.repo_names:
                        return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
                    body, link = srv._page(srv.n_tags, lambda i: srv._tag(repo, i),
                                           lambda last: int(last.rsplit("t", 1)[1]) + 1, query,
                                           path, "tags")
                    return self.reply(200, body, link)
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None
