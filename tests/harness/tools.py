"""Subprocess helpers: every access to a mount goes through a child process with a timeout,
so a hung FUSE request can fail a test but never hang the pytest process itself.
"""

import os
import shutil
import subprocess
import time

DEFAULT_TIMEOUT = float(os.environ.get("REGISTRYFS_TEST_TIMEOUT", "120"))
PYTHON = "/usr/bin/python3"


class Result(subprocess.CompletedProcess):
    """CompletedProcess plus .elapsed and .cmd for messages."""

    def __str__(self):
        return "$ %s\n[exit %s, %.2fs]\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(map(str, self.args)), self.returncode, self.elapsed,
            _clip(self.stdout), _clip(self.stderr))


def _clip(s, n=3000):
    if isinstance(s, bytes):
        s = s.decode(errors="replace")
    s = s or ""
    return s if len(s) <= n else s[:n] + "\n...[%d more chars]" % (len(s) - n)


def run(cmd, timeout=DEFAULT_TIMEOUT, check=False, text=True, env=None, cwd=None, input=None):
    """Run cmd (list), capture output. On timeout: a Result with returncode -9 and
    'TIMEOUT' in stderr (the child is killed), never an exception."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=text,
                           timeout=timeout, env=env, cwd=cwd, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        r = Result(p.args, p.returncode, p.stdout, p.stderr)
    except subprocess.TimeoutExpired as e:
        out, err = e.stdout or b"", e.stderr or b""
        if text:    # TimeoutExpired carries bytes even with text=True
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            err = err.decode(errors="replace") if isinstance(err, bytes) else err
            err += "\nTIMEOUT after %ss" % timeout
        else:
            err += b"\nTIMEOUT"
        r = Result(e.cmd, -9, out, err)
    r.elapsed = time.monotonic() - t0
    if check and r.returncode != 0:
        raise AssertionError("command failed:\n%s" % r)
    return r


def ok(cmd, **kw):
    """run() that must succeed; returns the Result."""
    kw["check"] = True
    return run(cmd, **kw)


# -- filesystem probes in a child process ----------------------------------------------

_PROBE = r"""
import errno, os, sys, json
op, path = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
try:
    if op == "stat":
        st = os.stat(path); res = {"mode": st.st_mode, "size": st.st_size, "mtime": st.st_mtime_ns,
                                 "nlink": st.st_nlink, "ino": st.st_ino}
    elif op == "lstat":
        st = os.lstat(path); res = {"mode": st.st_mode, "size": st.st_size}
    elif op == "listdir":
        res = sorted(os.listdir(path))
    elif op == "read":
        with open(path, "rb") as f: res = len(f.read())
    elif op == "mkdir":
        os.mkdir(path); res = None
    elif op == "rmdir":
        os.rmdir(path); res = None
    elif op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)); res = None
    elif op == "open_write":
        os.close(os.open(path, os.O_WRONLY)); res = None
    elif op == "open_rdwr":
        os.close(os.open(path, os.O_RDWR)); res = None
    elif op == "truncate":
        os.truncate(path, 0); res = None
    elif op == "unlink":
        os.unlink(path); res = None
    elif op == "rename":
        os.rename(path, arg); res = None
    elif op == "chmod":
        os.chmod(path, 0o777); res = None
    elif op == "utime":
        os.utime(path, (0, 0)); res = None
    elif op == "symlink":
        os.symlink("x", path); res = None
    elif op == "link":
        os.link(path, arg); res = None
    elif op == "setxattr":
        os.setxattr(path, "user.test", b"1"); res = None
    elif op == "access_w":
        res = os.access(path, os.W_OK)
    else:
        raise SystemExit("unknown op " + op)
    print(json.dumps({"ok": True, "result": res}))
except OSError as e:
    print(json.dumps({"ok": False, "errno": errno.errorcode.get(e.errno, str(e.errno)),
                      "msg": str(e)}))
"""


def probe(op, path, arg=None, timeout=60):
    """Run one os call on `path` in a child python; returns ("OK", result) or
    (ERRNO_NAME, message), or ("TIMEOUT", ...)."""
    import json
    cmd = [PYTHON, "-c", _PROBE, op, str(path)] + ([str(arg)] if arg is not None else [])
    r = run(cmd, timeout=timeout)
    if r.returncode == -9:
        return "TIMEOUT", str(r)
    if r.returncode != 0:
        return "CRASH", str(r)
    j = json.loads(r.stdout.strip().splitlines()[-1])
    if j["ok"]:
        return "OK", j["result"]
    return j["errno"], j["msg"]


def errno_of(op, path, arg=None, timeout=60):
    return probe(op, path, arg, timeout)[0]


def sha256sum(path, timeout=DEFAULT_TIMEOUT):
    r = ok(["sha256sum", path], timeout=timeout)
    return r.stdout.split()[0]


def read_bytes(path, timeout=DEFAULT_TIMEOUT):
    """`cat` a file; returns bytes (asserts success)."""
    r = run(["cat", path], timeout=timeout, text=False)
    if r.returncode != 0:
        raise AssertionError("cat %s failed:\n%s" % (path, r))
    return r.stdout


def ls(path, *flags, timeout=DEFAULT_TIMEOUT):
    """`ls -1 [flags] path` -> list of names (asserts success)."""
    r = run(["ls", "-1"] + list(flags) + [path], timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("ls %s failed:\n%s" % (path, r))
    return [l for l in r.stdout.splitlines() if l]


# -- skopeo -----------------------------------------------------------------------------

SKOPEO = os.environ.get("SKOPEO_BIN", "skopeo")


def skopeo(*args, timeout=DEFAULT_TIMEOUT, isolated=True, check=False):
    """Run `skopeo --insecure-policy ARGS...`.

    isolated: give skopeo an empty blob-info cache. As root skopeo 1.9 keeps it in
    /var/lib/containers/cache (no flag moves it), so run it in a private mount namespace
    with a fresh tmpfs over /var/lib/containers (`unshare -m`; mounts, FUSE included,
    stay visible). Falls back to a plain run when not root / no unshare.
    """
    cmd = [SKOPEO, "--insecure-policy"] + [str(a) for a in args]
    if isolated and os.geteuid() == 0 and shutil.which("unshare"):
        os.makedirs("/var/lib/containers", exist_ok=True)
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=64m tmpfs /var/lib/containers && exec "$@"', "sh"] + cmd
    return run(cmd, timeout=timeout, check=check)


def mounted(mountpoint):
    """Is `mountpoint` a mount point in /proc/mounts (our namespace)?"""
    mp = os.path.realpath(str(mountpoint))
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1 and _unescape(parts[1]) == mp:
                return parts
    return None


def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 1 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def wait_for(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def tree(root, timeout=DEFAULT_TIMEOUT):
    """`find root -printf '%P %y %s %m\n'` -> sorted lines (relative path, type, size, mode)."""
    r = ok(["find", root, "-mindepth", "1", "-printf", "%P\t%y\t%s\t%m\n"], timeout=timeout)
    return sorted(r.stdout.splitlines())



def cache_path(m, host, digest):
    """Where mount m's cache keeps blob digest of registry host (a distribution storage root)."""
    hx = digest.split(":", 1)[-1]
    return os.path.join(m.cache_dir, host, "docker", "registry", "v2", "blobs", "sha256",
                        hx[:2], hx, "data")


def files_under(root):
    out = []
    for d, _, fs in os.walk(root):
        out += [os.path.join(d, f) for f in fs]
    return out
