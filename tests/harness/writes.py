"""Helpers for the writable-mount (`-o push`) tests: source `dir:` images, a file writer that
reports the errno of every step, registry-side checks (digest via `skopeo inspect --raw`,
tags, upload/mount counts in the access log).

    src = source_dir(store, obj, tmp / "src" / "v1")     # version, blobs, manifest.json,
                                                        # with inode order = write order
    res = write_files([("write", mnt.path("r/v1/version"), src + "/version"), ...])
    res == ["OK", "EIO@close", ...]
    pushed_digest(reg, "r", "v1") -> "sha256:..." or None (no such tag)
    uploads(reg, since) -> blob upload requests (POST without mount=, PUT/PATCH of uploads)
    mounts(reg, since)  -> cross-repository mount requests (POST ?mount=&from=)

Every access to a mount happens in a child process (tools.run), never in pytest itself.
"""

import hashlib
import json
import os
import shutil

from . import imagegen as ig
from . import tools

STATUS_XATTR = "user.registryfs.status"


# -- source images -----------------------------------------------------------------------

def inode_order(path):
    """Names of `path` in the order `cp -r` copies them (ascending inode numbers)."""
    names = os.listdir(path)
    return sorted(names, key=lambda n: os.lstat(os.path.join(path, n)).st_ino)


def source_dir(store, obj, dest, platform=None, tries=20):
    """A skopeo-order `dir:` copy of obj (Image or Index) at dest, made of fresh files.

    cp copies in source inode order; a filesystem may hand out a lower inode number to a
    later file (reused inodes), so the directory is rebuilt until `version` comes first and
    `manifest.json` last in inode order, as in a directory skopeo wrote.
    """
    dest = str(dest)
    for _ in range(tries):
        shutil.rmtree(dest, ignore_errors=True)
        ig.write_dir(store, obj, dest, platform=platform, link=False)
        order = inode_order(dest)
        if order[0] == "version" and order[-1] == "manifest.json":
            return dest
    raise AssertionError("could not get skopeo inode order in %s: %s" % (dest, order))


def replace_bytes(path, data):
    """Rewrite a file of a source dir in place (keeps its inode, so its place in cp order)."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)


def flip_byte(path, offset=None):
    """Corrupt one byte of a file in place (same size, same inode)."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        i = len(data) // 2 if offset is None else offset
        data[i] ^= 0xFF
        f.seek(0)
        f.write(bytes(data))


def dump_manifest(obj):
    """Bytes as imagegen writes manifests (3-space indent), for edited manifests."""
    return (json.dumps(obj, indent=3) + "\n").encode()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(src_dir, tarball):
    """`tar --sort=name -cf tarball -C parent NAME`: names sorted, so `version` comes last."""
    src_dir = os.path.abspath(str(src_dir))
    tools.ok(["tar", "--sort=name", "-cf", str(tarball), "-C", os.path.dirname(src_dir),
              os.path.basename(src_dir)])
    return str(tarball)


# -- writing into the mount from a child process ------------------------------------------

_WRITER = r"""
import errno, json, os, sys
ops = json.load(sys.stdin)
res = []

def en(e):
    if e.errno == errno.EOPNOTSUPP:     # == ENOTSUP on Linux; say what docs/write.md says
        return "EOPNOTSUPP"
    return errno.errorcode.get(e.errno, str(e.errno))

for op in ops:
    kind, path = op[0], op[1]
    try:
        if kind in ("write", "create"):  # write PATH SRC [CHUNK ["keep-mtime"]]: open, write,
            src = op[2]                  # close; create: as cp -r does, with O_EXCL
            chunk = op[3] if len(op) > 3 and op[3] else 65536
            flags = os.O_EXCL if kind == "create" else os.O_TRUNC
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
            except OSError as e:
                res.append("%s@open" % en(e))
                continue
            err = None
            try:
                stage = "write"
                with open(src, "rb") as f:
                    while True:
                        b = f.read(chunk)
                        if not b:
                            break
                        while b:
                            n = os.write(fd, b)
                            b = b[n:]
            except OSError as e:
                err = "%s@%s" % (en(e), stage)
            try:
                os.close(fd)
            except OSError as e:
                err = err or "%s@close" % en(e)
            if len(op) > 4 and op[4] == "keep-mtime":
                # the source's mtime, as rsync -a leaves a file (it sets the time on its
                # temporary file before the rename that commits it, failed or not)
                st = os.stat(src)
                try:
                    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
                except OSError as e:
                    err = err or "%s@utime" % en(e)
            res.append(err or "OK")
            continue
        if kind == "rename":
            os.rename(path, op[2])
        elif kind == "unlink":
            os.unlink(path)
        elif kind == "mkdir":
            os.mkdir(path)
        elif kind == "rmdir":
            os.rmdir(path)
        elif kind == "link":
            os.link(path, op[2])
        elif kind == "utime":
            os.utime(path, (1600000000, 1600000000))
        elif kind == "chmod":
            os.chmod(path, op[2])
        elif kind == "chown":
            os.chown(path, os.getuid(), os.getgid())
        elif kind == "truncate":
            os.truncate(path, op[2])
        elif kind == "setxattr":
            os.setxattr(path, op[2], op[3].encode())
        elif kind == "getxattr":
            res.append(os.getxattr(path, op[2]).decode())
            continue
        elif kind == "attrs":        # every fd-level call tools make on a file being written
            src = op[2]
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            err = None
            steps = []
            try:
                with open(src, "rb") as f:
                    data = f.read()
                os.write(fd, data[: len(data) // 2])
                for name, fn in (
                        ("fchmod", lambda: os.fchmod(fd, 0o600)),
                        ("fchown", lambda: os.fchown(fd, os.getuid(), os.getgid())),
                        ("futimens", lambda: os.utime(fd, (1600000000, 1600000000))),
                        ("fsync", lambda: os.fsync(fd)),
                        ("fdatasync", lambda: os.fdatasync(fd)),
                        ("ftruncate+", lambda: os.ftruncate(fd, len(data) + 100)),
                        ("ftruncate-", lambda: os.ftruncate(fd, len(data) // 2)),
                        ("fsetxattr", lambda: os.setxattr(fd, "user.x", b"1"))):
                    try:
                        fn()
                        steps.append("%s=OK" % name)
                    except OSError as e:
                        steps.append("%s=%s" % (name, en(e)))
                os.lseek(fd, len(data) // 2, 0)
                os.write(fd, data[len(data) // 2:])
                os.fchmod(fd, 0o644)
            except OSError as e:
                err = "%s@attrs" % en(e)
            try:
                os.close(fd)
            except OSError as e:
                err = err or "%s@close" % en(e)
            res.append({"result": err or "OK", "steps": steps})
            continue
        else:
            raise SystemExit("unknown op %r" % kind)
        res.append("OK")
    except OSError as e:
        res.append(en(e))
print(json.dumps(res))
"""


def write_files(ops, timeout=tools.DEFAULT_TIMEOUT):
    """Run filesystem ops in order in one child python; returns one result per op:
    "OK", an errno name ("EINVAL"), or for "write" "ERRNO@open|write|close".

    ops: ("write", dest, srcfile[, chunk[, "keep-mtime"]]), ("create", dest, srcfile) (O_EXCL,
         as cp -r into a directory it made), ("rename", a, b), ("unlink", p), ("mkdir", p),
         ("rmdir", p), ("link", a, b), ("utime", p), ("chmod", p, mode), ("chown", p),
         ("truncate", p, size), ("setxattr", p, name, value), ("getxattr", p, name),
         ("attrs", dest, srcfile)  (-> {"result":..., "steps": [...]})
    """
    ops = [[str(x) if isinstance(x, os.PathLike) else x for x in op] for op in ops]
    r = tools.run([tools.PYTHON, "-c", _WRITER], input=json.dumps(ops), timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("writer failed:\n%s" % r)
    return json.loads(r.stdout.strip().splitlines()[-1])


def write_image_files(src_dir, dest_dir, names, keep_mtime=False):
    """write_files of `names` from src_dir into dest_dir (directly under final names);
    keep_mtime: then set each file's mtime to the source's, as rsync -a leaves it."""
    return write_files([("write", os.path.join(str(dest_dir), n), os.path.join(str(src_dir), n),
                         0, "keep-mtime" if keep_mtime else "")
                        for n in names])


def skopeo_order(obj):
    """File names in the order skopeo writes them: version, blobs (instances: their blobs
    then HEX.manifest.json), manifest.json."""
    names = ["version"]
    if isinstance(obj, ig.Index):
        seen = set()
        for img in obj.images:
            for b in img.blobs:
                if b.hex not in seen:
                    seen.add(b.hex)
                    names.append(b.hex)
            names.append(img.hex + ".manifest.json")
    else:
        names += [b.hex for b in obj.blobs]
    names.append("manifest.json")
    return names


def status(path):
    """`getfattr -n user.registryfs.status --only-values PATH` -> (exit code, text)."""
    r = tools.run(["getfattr", "-n", STATUS_XATTR, "--only-values", "--absolute-names",
                   str(path)])
    return r.returncode, (r.stdout if r.returncode == 0 else r.stderr).strip()


# -- registry side ----------------------------------------------------------------------

def sync_log(reg, timeout=5.0):
    """Wait until the registry's access log holds every request answered so far.

    Sends GET /v2/?registryfs-test-sync=UUID and waits for its line: the requests of a
    command that has finished were answered before this one was even sent. Faster and
    firmer than sleeping (Registry.requests' settle)."""
    import time
    import urllib.error
    import urllib.request
    import uuid
    token = uuid.uuid4().hex
    url = "%s/v2/?registryfs-test-sync=%s" % (reg.url, token)
    ctx = None
    if reg.scheme == "https":
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            r.read()
    except urllib.error.HTTPError:
        pass                    # 401 with auth: logged all the same
    except (urllib.error.URLError, OSError):
        time.sleep(0.3)         # registry down: nothing more will be logged anyway
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(reg.access_log, errors="replace") as f:
            if token in f.read():
                return
        time.sleep(0.01)
    raise AssertionError("the registry's access log did not show the sync request")


def mark(reg):
    """Position in the access log after every request answered so far."""
    sync_log(reg)
    return reg.mark()


def requests(reg, since, method=None, path_re=None):
    """reg.requests() without the sleep: synchronised with sync_log (the sync requests
    themselves are left out)."""
    sync_log(reg)
    return [a for a in reg.requests(since, method=method, path_re=path_re, settle=0)
            if "registryfs-test-sync=" not in a.uri]


def raw_manifest(reg, repo, ref):
    """`skopeo inspect --raw docker://HOST/REPO:REF` bytes, or None when there is no such
    manifest (manifest/name unknown)."""
    sep = "@" if ref.startswith("sha256:") else ":"
    args = ["skopeo", "--insecure-policy", "inspect", "--raw", "--tls-verify=false",
            "docker://%s/%s%s%s" % (reg.host, repo, sep, ref)]
    r = tools.run(args, text=False)
    if r.returncode == 0:
        return r.stdout
    err = r.stderr.decode(errors="replace")
    if "manifest unknown" in err or "name unknown" in err or "not found" in err.lower():
        return None
    raise AssertionError("skopeo inspect failed:\n%s" % r)


def pushed_digest(reg, repo, ref):
    """sha256 of the raw manifest the registry serves for REPO:REF (None if absent)."""
    raw = raw_manifest(reg, repo, ref)
    return None if raw is None else sha256_digest(raw)


def tags(client, repo):
    """Tags of repo; [] when the repository does not exist (404)."""
    from .regclient import RegistryHTTPError
    try:
        return sorted(client.tags(repo))
    except RegistryHTTPError as e:
        if "404" in str(e):
            return []
        raise


def catalog(client):
    return sorted(client.catalog())


def uploads(reg, since):
    """Blob upload requests after `since`: POST .../blobs/uploads/ without mount=, and
    PUT/PATCH of an upload session."""
    out = []
    for a in requests(reg, since, path_re=r"/blobs/uploads/"):
        if a.method == "POST" and "mount=" not in a.uri:
            out.append(a)
        elif a.method in ("PUT", "PATCH"):
            out.append(a)
    return out


def mounts(reg, since):
    """Cross-repository mount requests (POST .../blobs/uploads/?mount=...&from=...)."""
    return [a for a in requests(reg, since, method="POST", path_re=r"/blobs/uploads/")
            if "mount=" in a.uri]


def mounted(reg, since):
    """[(digest, from_repo, status)] of the cross-repository mount requests after since."""
    import urllib.parse
    out = []
    for a in mounts(reg, since):
        q = urllib.parse.parse_qs(a.uri.split("?", 1)[1])
        out.append((q.get("mount", [""])[0], q.get("from", [""])[0], a.status))
    return out


def manifest_puts(reg, since):
    return requests(reg, since, method="PUT", path_re=r"/manifests/")


def write_requests(reg, since):
    """Every request after `since` that could change the registry."""
    return [a for a in requests(reg, since) if a.method in ("POST", "PUT", "PATCH", "DELETE")]


def describe(reg, mnt=None, since=0):
    """Context for assertion messages: the registry's requests and the mount's log."""
    lines = ["%s %s %s" % (a.method, a.uri[:160], a.status)
             for a in reg.requests(since, settle=0) if "registryfs-test-sync=" not in a.uri]
    s = "--- registry requests ---\n" + "\n".join(lines[-60:])
    if mnt is not None:
        s += "\n--- registryfs log (tail) ---\n" + mnt.log()[-4000:]
    return s
