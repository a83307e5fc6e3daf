"""Run ./registryfs and always unmount.

    m = Mount(mountpoint, "http://127.0.0.1:5000", cache_dir=..., log_file=...,
              options={"ttl": 60})
    m.start()              # foreground (-f) child we own; waits for /proc/mounts
    ... m.path("oci/app/v1/manifest.json") ...
    m.stop()               # fusermount3 -u (retries), then -u -z, then SIGTERM/SIGKILL by pid

registry=None mounts in root mode (the root lists registry hosts).
foreground=False runs the binary as a user would (it daemonizes once the mount is up); the
daemon's pid is then found by scanning /proc for a registryfs process whose command line
holds our (unique) mount point, so that it can still be stopped by pid.
"""

import os
import signal
import subprocess
import time

from . import tools

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))


def registryfs_bin():
    return os.environ.get("REGISTRYFS_BIN", os.path.join(REPO_ROOT, "registryfs"))


class MountError(RuntimeError):
    pass


def _opt_string(options):
    parts = []
    for k, v in (options or {}).items():
        if v is None or v is False:
            continue
        parts.append(k if v is True else "%s=%s" % (k, v))
    return ",".join(parts)


class Mount:
    def __init__(self, mountpoint, registry=None, cache_dir=None, log_file=None, options=None,
                 foreground=True, debug=False, extra_args=(), workdir=None, cwd=None):
        self.cwd = str(cwd) if cwd is not None else None   # working directory of registryfs
        self.mountpoint = os.path.abspath(str(mountpoint))
        self.registry = registry
        self.workdir = os.path.abspath(str(workdir or os.path.dirname(self.mountpoint)))
        self.cache_dir = os.path.abspath(str(cache_dir)) if cache_dir else \
            os.path.join(self.workdir, "cache")
        self.log_file = os.path.abspath(str(log_file)) if log_file else \
            os.path.join(self.workdir, "registryfs.log")
        self.options = dict(options or {})
        self.foreground = foreground
        self.debug = debug
        self.extra_args = list(extra_args)
        self.proc = None
        self.daemon_pid = None
        self.stdout_path = os.path.join(self.workdir, "registryfs.stdout")
        self.stderr_path = os.path.join(self.workdir, "registryfs.stderr")
        self.start_result = None
        self.exit_code = None
        self.pids = []          # every registryfs pid this mount ran (for sanitizer logs)

    # -- helpers -------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def argv(self):
        # cache_min_free=0: the default 5 % rule would evict the tests' caches on a machine
        # whose disk is nearly full; tests of the rule (test_cache_bound.py) set it themselves
        opts = {"cache_dir": self.cache_dir, "log_file": self.log_file, "cache_min_free": "0"}
        opts.update(self.options)
        argv = [registryfs_bin()]
        if self.foreground:
            argv.append("-f")
        if self.debug:
            argv.append("-d")
        argv += ["-o", _opt_string(opts)] + self.extra_args
        if self.registry:
            argv.append(self.registry)
        argv.append(self.mountpoint)
        return argv

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def sanitizer_reports(self):
        """AddressSanitizer / UBSan / LeakSanitizer reports of our process(es) (asan builds):
        from its stderr and log file, and from ASAN_OPTIONS/UBSAN_OPTIONS log_path=P files
        (P.<pid>) of the pids this mount ran."""
        text = self.stderr() + "\n" + self.log()
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            for opt in os.environ.get(var, "").split(":"):
                if opt.startswith("log_path="):
                    prefix = opt[len("log_path="):]
                    for pid in self.pids:
                        try:
                            with open("%s.%d" % (prefix, pid), errors="replace") as f:
                                text += "\n" + f.read()
                        except OSError:
                            pass
        return [l for l in text.splitlines()
                if "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l
                or "runtime error:" in l]

    @property
    def is_mounted(self):
        return tools.mounted(self.mountpoint) is not None

    def describe(self):
        return "argv: %s\n--- stderr ---\n%s\n--- log (tail) ---\n%s" % (
            " ".join(self.argv()), self.stderr()[-3000:], self.log()[-3000:])

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout=30):
        binary = registryfs_bin()
        if not os.access(binary, os.X_OK):
            raise MountError("registryfs binary not found at %s (run `make`, or set "
                             "REGISTRYFS_BIN)" % binary)
        os.makedirs(self.mountpoint, exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        if self.is_mounted:
            raise MountError("already mounted: " + self.mountpoint)
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            if self.foreground:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, start_new_session=True,
                                             cwd=self.cwd)
                self.pids.append(self.proc.pid)
            else:
                # The parent must return only once the mount is up; never block forever.
                t0 = time.monotonic()
                try:
                    p = subprocess.run(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=err, timeout=timeout, cwd=self.cwd)
                    rc = p.returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                self.start_result = (rc, time.monotonic() - t0)
                self.daemon_pid = self._find_daemon()
                if self.daemon_pid:
                    self.pids.append(self.daemon_pid)
                if rc != 0:
                    self.stop()
                    raise MountError("registryfs (daemon mode) exited %s\n%s"
                                     % (rc, self.describe()))
                return self
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_mounted:
                return self
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise MountError("registryfs exited %s before mounting\n%s"
                                 % (rc, self.describe()))
            time.sleep(0.05)
        self.stop()
        raise MountError("mount did not appear within %ss\n%s" % (timeout, self.describe()))

    def _find_daemon(self):
        """pid of a registryfs process whose argv holds our mount point (ours is unique)."""
        want = os.path.basename(registryfs_bin()).encode()
        mp = self.mountpoint.encode()
        me = os.getpid()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == want and mp in argv:
                return int(d)
        return None

    def _pid_alive(self, pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ", 1)[1][0] != "Z"
        except (OSError, IndexError):
            return False

    def unmount(self, timeout=10):
        """fusermount3 -u with retries (busy mounts), then lazy. True if it was mounted."""
        if not self.is_mounted:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = tools.run(["fusermount3", "-u", self.mountpoint], timeout=10)
            if r.returncode == 0 or not self.is_mounted:
                return True
            time.sleep(0.2)
        tools.run(["fusermount3", "-u", "-z", self.mountpoint], timeout=10)
        return True

    def stop(self, timeout=10):
        """Unmount and make sure our process is gone. Idempotent."""
        try:
            self.unmount()
        finally:
            self._reap(timeout)

    def _reap(self, timeout):
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.exit_code = self.proc.returncode
            self.proc = None
        if self.daemon_pid is None and not self.foreground:
            self.daemon_pid = self._find_daemon()
        if self.daemon_pid is not None:
            pid, self.daemon_pid = self.daemon_pid, None
            if not tools.wait_for(lambda: not self._pid_alive(pid), timeout):
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        break
                    if tools.wait_for(lambda: not self._pid_alive(pid), 5):
                        break
        if self.is_mounted:     # the process died but the kernel mount stayed
            tools.run(["fusermount3", "-u", "-z", self.mountpoint], timeout=10)

    def remount(self, **changes):
        """Stop, apply attribute changes (e.g. cache_dir=...), start again."""
        self.stop()
        for k, v in changes.items():
            setattr(self, k, v)
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
