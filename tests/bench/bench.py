#!/usr/bin/python3
"""registryfs micro-benchmarks against a local docker-registry (make bench).

Compares, in one run on this machine (absolute numbers vary by ±30% between runs: read the
ratios):
  curl of the blob (baseline)    vs  first read through the mount (download + verify + cache)
  cached read (page cache dropped) and hot read (page cache)
  skopeo copy docker:// -> dir:  vs  cp -r of the tag directory from the mount
  ls -l of a 130-tag repository, first and repeated (within ttl)
  a no-op rsync of a mounted repository

    /usr/bin/python3 tests/bench/bench.py [--mib 256] [--keep DIR]
Environment: REGISTRYFS_BIN as for the tests.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import imagegen as ig  # noqa: E402
from harness.mount import Mount  # noqa: E402
from harness.regclient import RegistryClient  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.tools import ok, skopeo  # noqa: E402


def timed(cmd, **kw):
    t0 = time.monotonic()
    ok(cmd, text=False, **kw)
    return time.monotonic() - t0


def drop_caches():
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=int(os.environ.get("BENCH_MIB", "256")))
    ap.add_argument("--keep", help="work directory to use and keep")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="registryfs-bench.")
    os.makedirs(work, exist_ok=True)
    rows = []

    def row(name, seconds, mib=None):
        rate = "%8.1f MiB/s" % (mib / seconds) if mib else ""
        rows.append((name, seconds, rate))
        print("%-46s %8.3f s %s" % (name, seconds, rate), flush=True)

    print("generating a %d MiB layer ..." % a.mib, flush=True)
    store = ig.BlobStore(os.path.join(work, "blobs"))
    big = ig.make_image(store, "bench/big", [ig.make_large_layer(store, "bench/big", a.mib)])
    tiny = ig.make_simple(store, "bench/tiny")
    layer = big.layers[0]
    mib = layer.size / (1 << 20)

    reg = Registry(os.path.join(work, "registry"))
    m = None
    try:
        reg.start()
        with RegistryClient(reg.url) as c:
            c.push(store, "bench/big", "v1", big)
            c.push(store, "bench/tags", ["t%03d" % i for i in range(130)], tiny)
        url = "%s/v2/bench/big/blobs/%s" % (reg.url, layer.digest)
        drop_caches()
        row("curl blob -> /dev/null", timed(["curl", "-sSf", "-o", "/dev/null", url]), mib)
        row("curl blob | sha256sum", timed(["sh", "-c", "curl -sSf '%s' | sha256sum" % url]), mib)

        m = Mount(os.path.join(work, "mnt"), reg.url, workdir=work, options={"ttl": 300})
        m.start()
        blob = m.path("bench/big/v1", layer.hex)
        ok(["ls", "-l", m.path("bench/big/v1")])
        t = timed(["sh", "-c", "cat '%s' > /dev/null" % blob])
        row("mount: first read (fetch+verify+cache)", t, mib)
        dropped = drop_caches()
        t = timed(["sh", "-c", "cat '%s' > /dev/null" % blob])
        row("mount: cached read%s" % (" (page cache dropped)" if dropped else ""), t, mib)
        t = timed(["sh", "-c", "cat '%s' > /dev/null" % blob])
        row("mount: hot read (page cache)", t, mib)

        dst = os.path.join(work, "skopeo-dir")
        t0 = time.monotonic()
        r = skopeo("copy", "--src-tls-verify=false", "docker://%s/bench/big:v1" % reg.host,
                   "dir:" + dst, timeout=600)
        if r.returncode != 0:
            print(r)
        row("skopeo copy docker:// -> dir:", time.monotonic() - t0, mib)
        cp_dst = os.path.join(work, "cp-dir")
        row("cp -r MNT/bench/big/v1 (cached)", timed(["cp", "-r", m.path("bench/big/v1"),
                                                      cp_dst]), mib)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(cp_dst, ignore_errors=True)

        m.remount(cache_dir=os.path.join(work, "cache2"))
        row("ls -l of 130 tags (first)", timed(["ls", "-l", m.path("bench/tags")]))
        row("ls -l of 130 tags (again, within ttl)", timed(["ls", "-l", m.path("bench/tags")]))
        t = timed(["sh", "-c", "ls -l %s/*/ > /dev/null" % m.path("bench/tags")])
        row("ls -l of every tag dir (130 manifests)", t)
        rs = os.path.join(work, "rsync")
        timed(["rsync", "-a", m.path("bench/tags") + "/", rs])
        row("rsync -a no-op of 130 tags", timed(["rsync", "-a", m.path("bench/tags") + "/", rs]))
    finally:
        if m:
            m.stop()
        reg.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
