"""A registry whose blob GETs redirect to another server, as registries on object storage do.

    blobs = BlobServer(store, tls=(cert, key)).start()       # "the CDN": another port
    front = RedirectFront(workdir, upstream=reg.url, target=blobs.url, tls=(cert, key)).start()
    ... mount front.url ...
    front.requests()   -> [(method, uri, status, had_authorization)]   (nginx access log)
    blobs.requests     -> [{"method", "path", "authorization", "range"}]
    front.stop(); blobs.stop()

RedirectFront is nginx (Debian's nginx-light) in front of the registry: every
`GET /v2/NAME/blobs/sha256:HEX` is answered `307 Location: TARGET/blobs/sha256:HEX`, everything
else is proxied to the registry unchanged (auth challenges and all). BlobServer serves those
blobs from an imagegen BlobStore and records the headers it was sent, so a test can assert that
the Authorization header never reached it. Both are stopped by pid.
"""

import os
import re
import signal
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .registry import _port_open, free_port

NGINX_BIN = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")


class BlobServer:
    def __init__(self, store, tls=None, port=None):
        self.store = store
        self.tls = tls
        self.port = port or free_port()
        self.requests = []
        self._server = None
        self._thread = None
        self._lock = threading.Lock()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            # Go servers (the registry) set TCP_NODELAY; without it a reused connection waits
            # 40 ms (Nagle against delayed ACKs) on every response whose body follows its headers.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with srv._lock:
                    srv.requests.append({"method": "GET", "path": self.path,
                                         "authorization": self.headers.get("Authorization"),
                                         "range": self.headers.get("Range")})
                m = re.match(r"^/blobs/(sha256:[0-9a-f]{64})$", self.path)
                path = srv.store.path(m.group(1)) if m else None
                if not path or not os.path.exists(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = os.path.getsize(path)
                start = 0
                rng = re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
                if rng and int(rng.group(1)) < size:
                    start = int(rng.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size - start))
                self.end_headers()
                with open(path, "rb") as f:
                    f.seek(start)
                    while True:
                        chunk = f.read(1 << 16)
                        if not chunk:
                            break
                        self.wfile.write(chunk)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(5)
            self._thread = None


_CONF = """
worker_processes 1;
{user}
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    map $http_authorization $auth_present {{ "" no; default yes; }}
    log_format front '$request_method $request_uri $status auth=$auth_present';
    access_log {dir}/access.log front;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {certs}
        location ~ "^/v2/.+/blobs/(?<digest>sha256:[0-9a-f]{{64}})$" {{
            if ($request_method = GET) {{
                return 307 {target}/blobs/$digest;
            }}
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_ssl_verify off;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_http_version 1.1;
            proxy_ssl_verify off;
        }}
    }}
}}
"""


class RedirectFront:
    def __init__(self, workdir, upstream, target, tls=None, port=None):
        self.workdir = os.path.abspath(str(workdir))
        self.upstream = upstream.rstrip("/")
        self.target = target.rstrip("/")
        self.tls = tls
        self.port = port or free_port()
        self.proc = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def config_text(self):
        certs = ""
        if self.tls:
            certs = "ssl_certificate %s; ssl_certificate_key %s;" % self.tls
        return _CONF.format(dir=self.workdir, port=self.port, ssl=" ssl" if self.tls else "",
                            certs=certs, target=self.target, upstream=self.upstream,
                            user="user root;" if os.geteuid() == 0 else "")

    def start(self, timeout=10):
        os.makedirs(os.path.join(self.workdir, "tmp"), exist_ok=True)
        conf = os.path.join(self.workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.config_text())
        err = open(os.path.join(self.workdir, "nginx.stderr"), "ab")
        try:
            self.proc = subprocess.Popen(
                [NGINX_BIN, "-p", self.workdir, "-c", conf, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        finally:
            err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if _port_open(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within %ss:\n%s" % (timeout, self.log_tail()))

    def stop(self, timeout=10):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)     # the master takes its workers with it
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        self.proc = None

    def log_tail(self, n=30):
        out = []
        for name in ("nginx.stderr", "error.log"):
            try:
                with open(os.path.join(self.workdir, name), errors="replace") as f:
                    out += f.readlines()[-n:]
            except OSError:
                pass
        return "".join(out)

    def requests(self, settle=0.3):
        """(method, uri, status, had_authorization) per request, from nginx's access log."""
        if settle:
            time.sleep(settle)
        out = []
        try:
            with open(os.path.join(self.workdir, "access.log"), errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 4:
                        out.append((parts[0], parts[1], int(parts[2]), parts[3] == "auth=yes"))
        except FileNotFoundError:
            pass
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
