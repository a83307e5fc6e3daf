"""Authentication back-ends for the test registry.

Htpasswd(workdir, users={"alice": "secret"})
    bcrypt htpasswd file (via apache2-utils' htpasswd); registry config `auth: htpasswd:`.

TokenServer(workdir, users={"admin": "pw"}, anonymous_pull=True, denied=("private/",))
    docker/distribution token auth: a threaded HTTP server issuing RS256 JWTs signed by a
    self-signed certificate that the registry trusts (rootcertbundle). The JWT header
    carries the certificate in `x5c`. Policy:
      - a user in `users` with the right password gets every action asked for;
      - anonymous (or unknown) callers get `pull` when anonymous_pull, and the catalog
        (`registry:catalog:*`), except on repositories starting with a `denied` prefix;
      - wrong passwords get 401.
    `requests` records (user, scopes) per token request for assertions.

    Optional (issue 4, credentials and TLS):
      tls=(certfile, keyfile)   serve the realm over https
      refresh_tokens={"rt": "admin"}
                                OAuth2: POST /token with grant_type=refresh_token and one of
                                these identity tokens is that user (`posts` records them)
      effective_ttl=N           the registry refuses a token N seconds after it was issued
                                (the JWT exp compensates distribution's 60 s leeway), while
                                the answer still says expires_in=ttl: set ttl=N for an honest
                                server, a larger ttl for one whose tokens die early (revoked)
    `issued` lists every token handed out (to check that none reaches a log).

Use: Registry(workdir, auth=TokenServer(...).start()); stop the server after the registry.
"""

import base64
import datetime
import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .registry import free_port


class Htpasswd:
    def __init__(self, workdir, users, realm="registryfs-test"):
        self.path = os.path.join(str(workdir), "htpasswd")
        self.users = dict(users)
        self.realm = realm
        with open(self.path, "w") as f:
            for user, pw in self.users.items():
                r = subprocess.run(["htpasswd", "-nbB", user, pw], check=True,
                                   capture_output=True, text=True)
                f.write(r.stdout.strip() + "\n")

    def registry_config(self):
        return {"htpasswd": {"realm": self.realm, "path": self.path}}

    def start(self):
        return self

    def stop(self):
        pass


class TokenServer:
    service = "registryfs-test"
    issuer = "registryfs-test-issuer"

    DISTRIBUTION_LEEWAY = 60    # seconds distribution accepts a token past its exp

    def __init__(self, workdir, users=None, anonymous_pull=True, denied=(), ttl=300, tls=None,
                 refresh_tokens=None, effective_ttl=None):
        self.workdir = str(workdir)
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.denied = tuple(denied)
        self.ttl = ttl
        self.tls = tls
        self.refresh_tokens = dict(refresh_tokens or {})
        self.effective_ttl = effective_ttl
        self.port = free_port()
        self.requests = []
        self.posts = []            # (user, scopes) of OAuth2 refresh-token grants
        self.issued = []
        self._server = None
        self._thread = None
        self._make_key()

    @property
    def realm(self):
        return "%s://127.0.0.1:%d/token" % ("https" if self.tls else "http", self.port)

    def _make_key(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registryfs-test-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert_path = os.path.join(self.workdir, "token.crt")
        with open(self.cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self._key_pem = key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def registry_config(self):
        return {"token": {"realm": self.realm, "service": self.service,
                          "issuer": self.issuer, "rootcertbundle": self.cert_path}}

    # -- policy --------------------------------------------------------------------
    def grant(self, user, scope):
        """scope 'repository:NAME:pull,push' -> access entry (or None)."""
        parts = scope.split(":")
        if len(parts) < 3:
            return None
        typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
        if user is not None:
            return {"type": typ, "name": name, "actions": actions}
        if any(name.startswith(p) for p in self.denied):
            return {"type": typ, "name": name, "actions": []}
        if typ == "registry" and name == "catalog":
            return {"type": typ, "name": name, "actions": ["*"]}
        if typ == "repository" and self.anonymous_pull:
            return {"type": typ, "name": name, "actions": [a for a in actions if a == "pull"]}
        return {"type": typ, "name": name, "actions": []}

    def issue(self, user, scopes):
        import jwt
        now = int(time.time())
        access = [g for g in (self.grant(user, s) for s in scopes) if g]
        exp = now + self.ttl
        nbf = now - 10
        if self.effective_ttl is not None:
            exp = now + self.effective_ttl - self.DISTRIBUTION_LEEWAY
            nbf = exp - self.effective_ttl - 10
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service,
                  "exp": exp, "nbf": nbf, "iat": nbf,
                  "jti": uuid.uuid4().hex, "access": access}
        tok = jwt.encode(claims, self._key_pem, algorithm="RS256",
                         headers={"x5c": [self._x5c]})
        self.issued.append(tok)
        return tok

    # -- server --------------------------------------------------------------------
    def start(self):
        ts = self

        class Handler(BaseHTTPRequestHandler):
            # Go servers (the registry) set TCP_NODELAY; without it a reused connection waits
            # 40 ms (Nagle against delayed ACKs) on every response whose body follows its headers.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, body, extra=()):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urlparse(self.path)
                if u.path != "/token":
                    return self._reply(404, {"error": "not found"})
                q = parse_qs(u.query)
                scopes = []
                for s in q.get("scope", []):
                    scopes += s.split(" ")
                user = None
                h = self.headers.get("Authorization", "")
                if h.startswith("Basic "):
                    try:
                        name, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                    except Exception:
                        return self._reply(400, {"error": "bad basic auth"})
                    if ts.users.get(name) != pw:
                        return self._reply(401, {"error": "bad credentials"},
                                           [("WWW-Authenticate", 'Basic realm="token"')])
                    user = name
                ts.requests.append((user, scopes))
                tok = ts.issue(user, scopes)
                return self._reply(200, {"token": tok, "access_token": tok,
                                         "expires_in": ts.ttl,
                                         "issued_at": datetime.datetime.now(
                                             datetime.timezone.utc).isoformat()})

            def do_POST(self):
                """OAuth2 (distribution's spec): grant_type=refresh_token only."""
                u = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode(errors="replace")) \
                    if length else {}
                if u.path != "/token":
                    return self._reply(404, {"error": "not found"})
                if form.get("grant_type", [""])[0] != "refresh_token":
                    return self._reply(400, {"error": "unsupported_grant_type"})
                user = ts.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if user is None:
                    return self._reply(401, {"error": "invalid_grant"})
                scopes = []
                for s in form.get("scope", []):
                    scopes += s.split(" ")
                ts.requests.append((user, scopes))
                ts.posts.append((user, scopes))
                tok = ts.issue(user, scopes)
                return self._reply(200, {"access_token": tok, "expires_in": ts.ttl,
                                         "scope": " ".join(scopes)})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
