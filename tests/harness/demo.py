"""Sample registry for demos and manual testing.

    /usr/bin/python3 tests/harness/demo.py up DIR [--full]   start docker-registry in the
        background (storage, logs and pid under DIR), push the demo images (single-arch OCI,
        Docker schema2, a multi-arch index; --full: the whole test sample set), print its URL
    /usr/bin/python3 tests/harness/demo.py down DIR          stop it (by the pid in DIR)
    /usr/bin/python3 tests/harness/demo.py serve DIR [--full] same, in the foreground until ^C

Files in DIR: registry.pid, registry.url, registry/{config.yml,access.log,registry.log,storage}.
"""

import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.regclient import RegistryClient  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.samples import build_demo, build_samples  # noqa: E402


def _pid_is_registry(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0]
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ", 1)[1][0] == "Z":
                return False
    except (OSError, IndexError):
        return False
    return os.path.basename(argv0) == b"docker-registry"


def up(workdir, full=False, foreground=False):
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    pidfile = os.path.join(workdir, "registry.pid")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
        if pid and _pid_is_registry(pid):
            with open(os.path.join(workdir, "registry.url")) as f:
                print(f.read().strip())
            return 0
    samples = (build_samples if full else build_demo)(os.path.join(workdir, "gen"))
    reg = Registry(os.path.join(workdir, "registry"))
    reg.start()
    try:
        with RegistryClient(reg.url) as c:
            samples.push(c)
    except BaseException:
        reg.stop()
        raise
    with open(pidfile, "w") as f:
        f.write("%d\n" % reg.proc.pid)
    with open(os.path.join(workdir, "registry.url"), "w") as f:
        f.write(reg.url + "\n")
    for ref in samples.refs.values():
        print("  pushed %s:%s  %s  %s" % (ref.repo, ref.tag, ref.obj.media_type, ref.digest),
              file=sys.stderr)
    print(reg.url)
    sys.stdout.flush()
    if foreground:
        try:
            while reg.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            reg.stop()
            os.unlink(pidfile)
    return 0


def down(workdir):
    pidfile = os.path.join(os.path.abspath(workdir), "registry.pid")
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    if _pid_is_registry(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _pid_is_registry(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    os.unlink(pidfile)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "down", "serve"])
    ap.add_argument("workdir")
    ap.add_argument("--full", action="store_true", help="push the whole test sample set")
    a = ap.parse_args(argv)
    if a.command == "down":
        return down(a.workdir)
    return up(a.workdir, a.full, foreground=a.command == "serve")


if __name__ == "__main__":
    sys.exit(main())
