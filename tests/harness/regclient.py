"""A minimal registry (distribution API v2) client for the tests.

One keep-alive connection, Basic and Bearer (token) auth, paginated catalog/tags, blob
upload (POST + PUT ?digest=, streamed from files; skipped when HEAD finds the blob; optional
cross-repository mount), manifest PUT with Content-Type = mediaType, GETs and DELETEs.

    c = RegistryClient("http://127.0.0.1:5000")
    c.push(store, "ns/app", "v1", image_or_index)
    body, ctype, digest = c.get_manifest("ns/app", "v1")
"""

import base64
import http.client
import json
import os
import re
import ssl
import urllib.parse

from .imagegen import Index

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class RegistryHTTPError(RuntimeError):
    def __init__(self, method, path, status, body):
        super().__init__("%s %s -> %s: %s" % (method, path, status, body[:500]))
        self.status = status
        self.body = body


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers     # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def json(self):
        return json.loads(self.body)


def _parse_challenge(h):
    """'Bearer realm="x",service="y",scope="z"' -> ('bearer', {realm:..., ...})."""
    scheme, _, rest = h.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _next_link(headers):
    link = headers.get("Link")
    if not link:
        return None
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    return m.group(1) if m else None


class RegistryClient:
    def __init__(self, url, username=None, password=None, timeout=60):
        u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        self.scheme = u.scheme
        self.netloc = u.netloc
        self.url = "%s://%s" % (self.scheme, self.netloc)
        self.username = username
        self.password = password
        self.timeout = timeout
        self._conn = None
        self._tokens = {}          # repo name (or "*catalog") -> bearer token
        self._basic = False

    # -- connection ----------------------------------------------------------------
    def _new_conn(self, netloc=None, scheme=None):
        netloc = netloc or self.netloc
        scheme = scheme or self.scheme
        if scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def close(self):
        if self._conn:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _raw(self, method, path, headers, body):
        """One request on the keep-alive connection; reconnect once if it went stale."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._new_conn()
            try:
                if hasattr(body, "seek"):
                    body.seek(0)
                self._conn.request(method, path, body=body, headers=headers)
                r = self._conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return Response(r.status, r.headers, data)
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise

    # -- auth ----------------------------------------------------------------------
    def _auth_key(self, path):
        m = re.match(r"/v2/(.+?)/(blobs|manifests|tags)/", path)
        return m.group(1) if m else "*catalog" if path.startswith("/v2/_catalog") else "*"

    def _authorize(self, key, challenge):
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            self._basic = True
            return
        if scheme != "bearer":
            raise RuntimeError("unsupported auth challenge: " + challenge)
        q = {"service": params.get("service", "")}
        if params.get("scope"):
            q["scope"] = params["scope"]
        realm = urllib.parse.urlsplit(params["realm"])
        conn = self._new_conn(realm.netloc, realm.scheme)
        headers = {}
        if self.username is not None:
            cred = base64.b64encode(("%s:%s" % (self.username, self.password)).encode())
            headers["Authorization"] = "Basic " + cred.decode()
        try:
            conn.request("GET", realm.path + "?" + urllib.parse.urlencode(q), headers=headers)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise RegistryHTTPError("GET", params["realm"], r.status, data)
        j = json.loads(data)
        self._tokens[key] = j.get("token") or j.get("access_token")

    def request(self, method, path, headers=None, body=None, ok=(200,), auth_retry=True):
        headers = dict(headers or {})
        key = self._auth_key(path)
        if self._basic and self.username is not None:
            cred = base64.b64encode(("%s:%s" % (self.username, self.password)).encode())
            headers["Authorization"] = "Basic " + cred.decode()
        elif key in self._tokens:
            headers["Authorization"] = "Bearer " + self._tokens[key]
        r = self._raw(method, path, headers, body)
        if r.status == 401 and auth_retry and r.headers.get("WWW-Authenticate"):
            self._authorize(key, r.headers["WWW-Authenticate"])
            return self.request(method, path, headers, body, ok, auth_retry=False)
        if ok is not None and r.status not in ok:
            raise RegistryHTTPError(method, path, r.status, r.body)
        return r

    def _path(self, location):
        """Absolute or relative Location -> path?query on our host."""
        u = urllib.parse.urlsplit(location)
        if u.netloc and u.netloc != self.netloc:
            raise RuntimeError("cross-host location not supported: " + location)
        return u.path + ("?" + u.query if u.query else "")

    # -- reading -------------------------------------------------------------------
    def ping(self):
        return self.request("GET", "/v2/", ok=None).status

    def _paginate(self, path, field, n=None):
        out = []
        if n:
            path += ("&" if "?" in path else "?") + "n=%d" % n
        while path:
            r = self.request("GET", path)
            out += r.json().get(field) or []
            nxt = _next_link(r.headers)
            path = self._path(urllib.parse.urljoin(self.url + path, nxt)) if nxt else None
        return out

    def catalog(self, n=None):
        return self._paginate("/v2/_catalog", "repositories", n)

    def tags(self, repo, n=None):
        return self._paginate("/v2/%s/tags/list" % repo, "tags", n)

    def get_manifest(self, repo, ref, accept=ACCEPT_ALL):
        r = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": accept})
        return r.body, r.headers.get("Content-Type"), r.headers.get("Docker-Content-Digest")

    def head_manifest(self, repo, ref, accept=ACCEPT_ALL):
        r = self.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": accept},
                         ok=None)
        return r

    def get_blob(self, repo, digest):
        return self.request("GET", "/v2/%s/blobs/%s" % (repo, digest)).body

    def blob_exists(self, repo, digest):
        r = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404))
        return r.status == 200

    # -- writing -------------------------------------------------------------------
    def push_blob(self, repo, digest, path=None, data=None, mount_from=None):
        """Upload one blob unless the repository already has it. Returns True if sent."""
        if self.blob_exists(repo, digest):
            return False
        if mount_from:
            r = self.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                             % (repo, digest, mount_from), {"Content-Length": "0"},
                             body=b"", ok=(201, 202))
            if r.status == 201:
                return False
        else:
            r = self.request("POST", "/v2/%s/blobs/uploads/" % repo,
                             {"Content-Length": "0"}, body=b"", ok=(202,))
        loc = self._path(r.headers["Location"])
        loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
        if data is None:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                self.request("PUT", loc, {"Content-Type": "application/octet-stream",
                                          "Content-Length": str(size)}, body=f, ok=(201,))
        else:
            self.request("PUT", loc, {"Content-Type": "application/octet-stream",
                                      "Content-Length": str(len(data))}, body=data, ok=(201,))
        return True

    def push_manifest(self, repo, ref, data, media_type):
        r = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref),
                         {"Content-Type": media_type, "Content-Length": str(len(data))},
                         body=data, ok=(201,))
        return r.headers.get("Docker-Content-Digest")

    def push(self, store, repo, tags, obj, mount_from=None):
        """Push an Image or Index (blobs, instance manifests, then each tag)."""
        if isinstance(tags, str):
            tags = [tags]
        for b in obj.blobs:
            self.push_blob(repo, b.digest, path=store.path(b.digest), mount_from=mount_from)
        if isinstance(obj, Index):
            for img in obj.images:
                self.push_manifest(repo, img.digest, img.manifest, img.media_type)
        if not tags:
            self.push_manifest(repo, obj.digest, obj.manifest, obj.media_type)
        for t in tags:
            d = self.push_manifest(repo, t, obj.manifest, obj.media_type)
            if d and d != obj.digest:
                raise RuntimeError("registry digest %s != %s" % (d, obj.digest))
        return obj.digest

    def delete_manifest(self, repo, digest):
        return self.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest),
                            ok=(202,)).status

    def delete_blob(self, repo, digest):
        return self.request("DELETE", "/v2/%s/blobs/%s" % (repo, digest), ok=(202,)).status

