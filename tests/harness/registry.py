"""Run Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port.

    with Registry(workdir) as reg:          # or reg.start() ... reg.stop()
        reg.url        -> "http://127.0.0.1:PORT"
        reg.host       -> "127.0.0.1:PORT"
        reg.mark()     -> position in the access log
        reg.requests(since=mark, method="GET", path_re=r"/blobs/")  -> [AccessLine]
        reg.stop(); reg.start()              # restart on the same port and storage

The registry's stdout is gorilla's combined access log (one line per request), kept in
WORKDIR/access.log; its application log (logrus) goes to WORKDIR/registry.log.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

REGISTRY_BIN = os.environ.get("REGISTRY_BIN", "/usr/bin/docker-registry")

_ACCESS_RE = re.compile(
    r'^(?P<addr>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) (?P<proto>[^"]+)" (?P<status>\d{3}) (?P<size>\S+)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)


def free_port():
    """A currently free TCP port on 127.0.0.1 (tiny race window; fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AccessLine:
    method: str
    uri: str
    status: int
    agent: str

    @property
    def path(self):
        return self.uri.split("?", 1)[0]


class RegistryError(RuntimeError):
    pass


class Registry:
    """One docker-registry process with its own storage directory under `workdir`.

    auth: None, or an object with .registry_config() -> dict (the `auth:` section),
          see harness.auth.Htpasswd and harness.auth.TokenServer.
    tls:  None, or (certfile, keyfile) to serve https.
    catalog_maxentries: passed to the `catalog: maxentries:` setting when given
          (note: distribution 2.8 answers 400 to `_catalog?n=` larger than it).
    tls_client_cas: None, or a list of CA files: clients must present a certificate signed by
          one of them (`http.tls.clientcas`; needs tls); then tls_client_cert=(cert, key) is
          what the readiness probe presents.
    """

    def __init__(self, workdir, port=None, auth=None, tls=None, catalog_maxentries=None,
                 log_level="info", tls_client_cas=None, tls_client_cert=None):
        self.workdir = os.path.abspath(str(workdir))
        os.makedirs(self.workdir, exist_ok=True)
        self.storage = os.path.join(self.workdir, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.port = port or free_port()
        self.auth = auth
        self.tls = tls
        self.catalog_maxentries = catalog_maxentries
        self.log_level = log_level
        self.tls_client_cas = list(tls_client_cas or [])
        self.tls_client_cert = tls_client_cert
        self.config_path = os.path.join(self.workdir, "config.yml")
        self.access_log = os.path.join(self.workdir, "access.log")
        self.app_log = os.path.join(self.workdir, "registry.log")
        self.proc = None

    # -- addresses -----------------------------------------------------------------
    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.host)

    # -- config --------------------------------------------------------------------
    def config_text(self):
        """The YAML config. Written by hand (JSON is valid YAML; no PyYAML needed)."""
        cfg = {
            "version": 0.1,
            "log": {
                "level": self.log_level,
                "formatter": "text",
                "accesslog": {"disabled": False},
                "fields": {"service": "registry"},
            },
            "storage": {
                "filesystem": {"rootdirectory": self.storage},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.tls:
            cfg["http"]["tls"] = {"certificate": self.tls[0], "key": self.tls[1]}
            if self.tls_client_cas:
                cfg["http"]["tls"]["clientcas"] = [str(c) for c in self.tls_client_cas]
        if self.auth is not None:
            cfg["auth"] = self.auth.registry_config()
        if self.catalog_maxentries:
            cfg["catalog"] = {"maxentries": int(self.catalog_maxentries)}
        return json.dumps(cfg, indent=2) + "\n"

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=20):
        if self.running:
            return self
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        out = open(self.access_log, "ab")
        err = open(self.app_log, "ab")
        try:
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", self.config_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True)
        finally:
            out.close()
            err.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if self.tls_client_cert:
                ctx.load_cert_chain(*self.tls_client_cert)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RegistryError("docker-registry exited with %s:\n%s"
                                    % (self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=2, context=ctx) as r:
                    r.read()
                    return
            except urllib.error.HTTPError as e:
                if e.code == 401:      # auth enabled: answering is enough
                    return
                last = e
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.05)
        raise RegistryError("docker-registry did not answer /v2/ within %ss (%s):\n%s"
                            % (timeout, last, self.log_tail()))

    def stop(self, timeout=10):
        """Terminate our process by PID and wait for it. Safe to call repeatedly."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        self.proc = None
        # The port must be free again before a restart on it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.05)

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=30):
        lines = []
        for path in (self.app_log, self.access_log):
            try:
                with open(path, errors="replace") as f:
                    lines += f.readlines()[-n:]
            except OSError:
                pass
        return "".join(lines)

    # -- access log ----------------------------------------------------------------
    def _read_access(self):
        try:
            with open(self.access_log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def mark(self, settle=0.0):
        """Number of access-log lines so far (pass `since=` this later)."""
        if settle:
            time.sleep(settle)
        return len(self._read_access())

    def requests(self, since=0, method=None, path_re=None, settle=0.3):
        """Parsed access-log lines after position `since`.

        The log line is written right after the response, so a client can see the
        response a moment before the line exists: wait `settle` seconds first.
        """
        if settle:
            time.sleep(settle)
        out = []
        rx = re.compile(path_re) if isinstance(path_re, str) else path_re
        for line in self._read_access()[since:]:
            m = _ACCESS_RE.match(line)
            if not m:
                continue
            a = AccessLine(m["method"], m["uri"], int(m["status"]), m["agent"] or "")
            if method and a.method != method:
                continue
            if rx and not rx.search(a.uri):
                continue
            out.append(a)
        return out

    def blob_gets(self, digest, since=0, settle=0.3):
        """GET requests for one blob (any repository) after `since`."""
        return self.requests(since, method="GET",
                             path_re=r"/blobs/" + re.escape(digest) + r"($|\?)",
                             settle=settle)


def _port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def self_signed_cert(workdir, cn="127.0.0.1"):
    """(certfile, keyfile) for a self-signed cert with IP SAN 127.0.0.1, via openssl."""
    cert = os.path.join(workdir, "tls.crt")
    key = os.path.join(workdir, "tls.key")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", key, "-out", cert, "-subj", "/CN=" + cn,
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True)
    return cert, key
