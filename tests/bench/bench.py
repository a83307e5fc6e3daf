#!/usr/bin/python3
"""registryfs benchmark (`make bench`): the mount against the tools it replaces, run side by
side in one run on this machine, reported as ratios (absolute numbers vary by 15-30 % between
runs; never compare them across runs).

Read path (issue #2)
  1   cold read of the big blob: `cat MNT/REPO/TAG/HEX` (fresh mount, empty cache dir)
      vs `curl URL | openssl dgst -sha256`                      target time ratio <= 1.25
  1b  the same cold read vs `curl -o /dev/null URL`                    (report only)
  2   second read through the same mount vs `cat` of the cache file
      CACHE/HOST/docker/registry/v2/blobs/sha256/XX/HEX/data    target time ratio <= 1.25
  3   `cp -r MNT/REPO/TAG DST` (fresh mount, empty cache) vs
      `skopeo copy docker://REG/REPO:TAG dir:DST`               target time ratio <= 0.5
  4   peak RSS (VmHWM) of the registryfs process after the cold read      target <= 64 MiB
Write path (issue #3, `-o rw`, docs/write.md)
  5   `cp -r LOCAL MNT/NEWREPO/TAG` (fresh rw mount + cache, fresh repository)
      vs `skopeo copy dir:LOCAL docker://REG/NEWREPO2:TAG`     target time ratio <= 0.6
  5r  peak RSS of registryfs after that push                               (report only)
  6   root mode: `cp -r MNT/HOST_A/REPO/TAG MNT/HOST_B/NEWREPO/TAG` vs
      `skopeo copy docker://A/REPO:TAG docker://B/NEWREPO2:TAG` target time ratio <= 0.6
  7a  re-push of an image the repository holds (`cp -r LOCAL MNT/REPO/TAG2`, fresh mount):
      blob upload PUTs in the registry's access log                      target 0
  7b  the same with `rsync -a LOCAL/ MNT/REPO/TAG3/`                       target 0

Every time is the median of BENCH_RUNS runs (default 3); the two sides of a comparison
alternate which goes first, with `sync` before each timed command. skopeo always runs with an
empty blob-info cache (harness.tools.skopeo: a private tmpfs over /var/lib/containers, so it
never learns blob locations from an earlier run and the real cache file is never touched).
A MISS does not fail the command; the exit status is non-zero only when the bench itself
broke (setup failed, or a read-path measurement could not run). Write-path failures (the
write code is younger) are shown as ERROR rows and the bench goes on.

    /usr/bin/python3 tests/bench/bench.py [--only 1,3,5] [--runs N] [--mib M] [--keep DIR]

Environment: BENCH_MIB (size of the big layer, default 256), BENCH_RUNS (default 3),
BENCH_ONLY (comma-separated measurement groups: read, copy, push, reg2reg, repush),
BENCH_KEEP=DIR (work directory to use and keep), REGISTRYFS_BIN as for the tests.

Adding a measurement: write `def m_NAME(ctx)` that creates its rows with ctx.row(...),
fills them with ctx.sample(row, side, fn) (side "rfs" or "base"; fn returns seconds or a
value, raises on failure), and append it to MEASUREMENTS.
"""

import argparse
import glob
import hashlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

from harness import imagegen as ig  # noqa: E402
from harness import tools  # noqa: E402
from harness import writes  # noqa: E402
from harness.mount import Mount, registryfs_bin  # noqa: E402
from harness.regclient import ACCEPT_ALL, RegistryClient  # noqa: E402
from harness.registry import Registry  # noqa: E402

TIMEOUT = 900           # per command; a hung mount fails its measurement, never the bench
MiB = 1 << 20


class BenchError(RuntimeError):
    pass


# -- running and timing commands ----------------------------------------------------------

def sh(script, *args, timeout=TIMEOUT):
    """bash -o pipefail -c SCRIPT ARGS...; returns the Result, raises BenchError on failure."""
    r = tools.run(["bash", "-o", "pipefail", "-c", script, "bash"] + [str(a) for a in args],
                  timeout=timeout)
    if r.returncode != 0:
        raise BenchError(_short(r))
    return r


def timed(script, *args, timeout=TIMEOUT, check_out=None):
    """sync, then the wall time of `bash -c SCRIPT ARGS` (must exit 0)."""
    os.sync()
    t0 = time.perf_counter()
    r = tools.run(["bash", "-o", "pipefail", "-c", script, "bash"] + [str(a) for a in args],
                  timeout=timeout)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise BenchError(_short(r))
    if check_out is not None and check_out not in r.stdout:
        raise BenchError("unexpected output %r (want %r)" % (r.stdout.strip()[:200], check_out))
    return dt


def timed_skopeo(*args, timeout=TIMEOUT):
    """sync, then the wall time of an isolated `skopeo --insecure-policy ARGS` (must exit 0)."""
    os.sync()
    t0 = time.perf_counter()
    r = tools.skopeo(*args, timeout=timeout)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise BenchError(_short(r))
    return dt


def _short(r, n=600):
    err = (r.stderr or "").strip() or (r.stdout or "").strip()
    cmd = " ".join(map(str, r.args))
    if len(cmd) > 200:
        cmd = cmd[:200] + "..."
    return "exit %s: %s: %s" % (r.returncode, cmd, err[-n:])


def vm_hwm_mib(pid):
    """Peak resident set size (VmHWM) of a process, in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise BenchError("no VmHWM for pid %d" % pid)


# -- results ------------------------------------------------------------------------------

class Row:
    """One line of the table: registryfs samples vs baseline samples.

    kind "time": medians of seconds, ratio = rfs / base, PASS when ratio <= target.
    kind "value": a registryfs value (unit), PASS when value <= target (baseline optional).
    target None: report only (INFO).
    """

    def __init__(self, key, name, base_name=None, target=None, kind="time", unit="s",
                 agg="median", strict=True):
        self.key, self.name, self.base_name = key, name, base_name
        self.target, self.kind, self.unit, self.agg = target, kind, unit, agg
        self.strict = strict        # an error here makes the bench exit non-zero
        self.samples = {"rfs": [], "base": []}
        self.errors = {}            # side -> message
        self.notes = []

    def value(self, side):
        s = self.samples[side]
        if not s:
            return None
        return max(s) if self.agg == "max" else statistics.median(s)

    def ratio(self):
        a, b = self.value("rfs"), self.value("base")
        if self.kind != "time" or a is None or not b:
            return None
        return a / b

    def result(self):
        if self.errors:
            return "ERROR"
        if self.target is None:
            return "INFO"
        v = self.ratio() if self.kind == "time" else self.value("rfs")
        if v is None:
            return "ERROR"
        return "PASS" if v <= self.target else "MISS"

    def fmt(self, side):
        v = self.value(side)
        if v is None:
            return "error" if side in self.errors else "-"
        if self.unit == "s":
            return "%.3f s" % v
        if self.unit == "MiB":
            return "%.1f MiB" % v
        return "%g %s" % (v, self.unit)

    def fmt_target(self):
        if self.target is None:
            return "-"
        if self.kind == "time":
            return "<= %.2f" % self.target
        return "<= %g %s" % (self.target, self.unit) if self.unit != "PUTs" else \
            "%g %s" % (self.target, self.unit)


class Ctx:
    def __init__(self, work, mib, runs):
        self.work = work
        self.mib = mib
        self.runs = runs
        self.rows = []
        self.mounts = []
        self.registries = []
        self.n = 0

    # rows
    def row(self, *a, **kw):
        r = Row(*a, **kw)
        self.rows.append(r)
        return r

    def sample(self, row, side, fn):
        """Run fn() for one sample of row's side; a failure is recorded and that side of the
        row is not tried again. Returns the value or None."""
        if side in row.errors:
            return None
        try:
            v = fn()
        except Exception as e:      # noqa: BLE001 -- reported in the table
            msg = str(e) if isinstance(e, BenchError) else \
                "%s: %s" % (type(e).__name__, e)
            row.errors[side] = msg
            log("  %s %s: ERROR %s" % (row.key, side, msg.splitlines()[0][:300] if msg else ""))
            return None
        row.samples[side].append(v)
        log("  %-3s %-4s run %d: %s" % (row.key, side, len(row.samples[side]),
                                         ("%.3f s" % v) if row.unit == "s" else
                                         ("%g %s" % (round(v, 1), row.unit))))
        return v

    # resources
    def fresh(self, name):
        """A new empty directory under the work dir."""
        self.n += 1
        d = os.path.join(self.work, "%s.%d" % (name, self.n))
        os.makedirs(d)
        return d

    def mount(self, name, registry_url, rw=False):
        """A started fresh mount (new mount point, empty cache dir). Use ctx.unmount()."""
        d = self.fresh(name)
        opts = {"rw": True} if rw else {}
        m = Mount(os.path.join(d, "mnt"), registry_url, cache_dir=os.path.join(d, "cache"),
                  log_file=os.path.join(d, "registryfs.log"), options=opts, workdir=d)
        self.mounts.append(m)
        m.start()
        m.bench_dir = d
        return m

    def unmount(self, m, remove=True):
        try:
            m.stop()
        finally:
            if m in self.mounts:
                self.mounts.remove(m)
        if remove and not tools.mounted(m.mountpoint):
            shutil.rmtree(m.bench_dir, ignore_errors=True)

    def registry(self, name):
        reg = Registry(self.fresh(name))
        self.registries.append(reg)
        reg.start()
        return reg

    def cleanup(self):
        for m in list(self.mounts):
            try:
                self.unmount(m, remove=False)
            except Exception as e:      # noqa: BLE001
                log("cleanup: unmount %s: %s" % (m.mountpoint, e))
        for reg in self.registries:
            try:
                reg.stop()
            except Exception as e:      # noqa: BLE001
                log("cleanup: registry %s: %s" % (reg.url, e))


def log(msg):
    print(msg, flush=True)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def mibps(row, side, nbytes):
    v = row.value(side)
    return "%.0f MiB/s" % (nbytes / MiB / v) if v else "-"


# -- registry-side checks -----------------------------------------------------------------

def published_digest(reg, repo, tag):
    """sha256 of the manifest bytes REG serves for REPO:TAG, or None."""
    with RegistryClient(reg.url) as c:
        r = c.request("GET", "/v2/%s/manifests/%s" % (repo, tag), {"Accept": ACCEPT_ALL},
                      ok=None)
    if r.status != 200:
        return None
    return "sha256:" + hashlib.sha256(r.body).hexdigest()


def expect_published(reg, repo, tag, obj, what):
    got = published_digest(reg, repo, tag)
    if got != obj.digest:
        raise BenchError("%s returned 0 but %s:%s is %s on %s, want %s" % (
            what, repo, tag, got or "absent", reg.host, obj.digest))


def upload_counts(reg, since):
    """(upload PUTs, upload POSTs/PATCHes, cross-repo mount POSTs) in the access log."""
    reqs = reg.requests(since, path_re=r"/blobs/uploads/")
    puts = sum(1 for a in reqs if a.method == "PUT")
    posts = sum(1 for a in reqs if a.method == "PATCH" or
                (a.method == "POST" and "mount=" not in a.uri))
    mounts = sum(1 for a in reqs if a.method == "POST" and "mount=" in a.uri)
    return puts, posts, mounts


def check_dir_copy(path, obj):
    """The dir: copy at path has obj's files with the right sizes."""
    want = ig.dir_files(obj)
    got = sorted(os.listdir(path))
    if got != sorted(want):
        raise BenchError("%s holds %s, want %s" % (path, got, sorted(want)))
    for b in obj.blobs:
        sz = os.path.getsize(os.path.join(path, b.hex))
        if sz != b.size:
            raise BenchError("%s/%s is %d bytes, want %d" % (path, b.hex, sz, b.size))


def cached_blob(m, desc):
    """Path of desc's verified blob in mount m's cache dir (CACHE/HOST/docker/registry/v2/
    blobs/sha256/XX/HEX/data); raises if it is not there with the right size."""
    found = glob.glob(os.path.join(m.cache_dir, "*", "docker/registry/v2/blobs/sha256",
                                   desc.hex[:2], desc.hex, "data"))
    if len(found) != 1 or os.path.getsize(found[0]) != desc.size:
        raise BenchError("no verified %s in the cache dir after the read (%s)"
                         % (desc.digest, found))
    return found[0]


# -- measurements -------------------------------------------------------------------------

def m_read(ctx):
    """1, 1b, 2, 4: cold read, second read, peak RSS (one fresh mount per run)."""
    layer = ctx.layer
    size_mib = layer.size / MiB
    url = "%s/v2/%s/blobs/%s" % (ctx.reg.url, ctx.repo, layer.digest)
    r1 = ctx.row("1", "cold read %.0f MiB blob vs curl | openssl" % size_mib,
                 "curl -sSf URL | openssl dgst -sha256; registryfs: cat MNT/REPO/TAG/HEX, "
                 "fresh mount, empty cache dir", target=1.25)
    r1b = ctx.row("1b", "cold read (as 1) vs plain curl", "curl -sSf -o /dev/null URL")
    r2 = ctx.row("2", "second read (same mount) vs cat of cache file",
                 "cat CACHE/HOST/docker/registry/v2/blobs/sha256/XX/HEX/data", target=1.25)
    r4 = ctx.row("4", "peak RSS of registryfs, cold read", "(none) VmHWM after the read",
                 target=64, kind="value", unit="MiB", agg="max")

    def curl_sha():
        return timed('curl -sSf "$1" | openssl dgst -sha256', url, check_out=layer.hex)

    def curl_null():
        return timed('curl -sSf -o /dev/null "$1"', url)

    for i in range(ctx.runs):
        m = ctx.mount("read", ctx.reg.url)
        try:
            tagdir = m.path(ctx.repo, ctx.tag)
            sh('ls -l "$1" > /dev/null', tagdir)     # manifest lookup is not part of the read
            blob = os.path.join(tagdir, layer.hex)

            def cold():
                t = timed('cat "$1" > /dev/null', blob)
                cached_blob(m, layer)       # the read left a verified blob in the cache
                return t

            if i % 2:
                ctx.sample(r1, "base", curl_sha)
                ctx.sample(r1b, "base", curl_null)
            v = ctx.sample(r1, "rfs", cold)
            if v is not None:
                r1b.samples["rfs"].append(v)
                ctx.sample(r4, "rfs", lambda: vm_hwm_mib(m.proc.pid))
            elif "rfs" in r1.errors:
                r1b.errors.setdefault("rfs", r1.errors["rfs"])
            if not i % 2:
                ctx.sample(r1, "base", curl_sha)
                ctx.sample(r1b, "base", curl_null)

            if v is not None:
                cache_file = cached_blob(m, layer)
                second = lambda: timed('cat "$1" > /dev/null', blob)       # noqa: E731
                direct = lambda: timed('cat "$1" > /dev/null', cache_file)  # noqa: E731
                for side, fn in ([("base", direct), ("rfs", second)] if i % 2 else
                                 [("rfs", second), ("base", direct)]):
                    ctx.sample(r2, side, fn)
            else:
                r2.errors.setdefault("rfs", "no cold read")
        finally:
            ctx.unmount(m)

    r1.notes.append("throughput: registryfs %s, curl|openssl %s, curl %s" % (
        mibps(r1, "rfs", layer.size), mibps(r1, "base", layer.size),
        mibps(r1b, "base", layer.size)))
    r2.notes.append("throughput: registryfs %s, cache file %s" % (
        mibps(r2, "rfs", layer.size), mibps(r2, "base", layer.size)))


def m_copy(ctx):
    """3: cp -r of a tag out of a fresh mount vs skopeo copy docker:// dir:."""
    r3 = ctx.row("3", "cp -r MNT/REPO/TAG vs skopeo docker->dir",
                 "skopeo copy docker://REG/REPO:TAG dir:DST; registryfs: cp -r "
                 "MNT/REPO/TAG DST, fresh mount, empty cache dir", target=0.5)
    ref = "docker://%s/%s:%s" % (ctx.reg.host, ctx.repo, ctx.tag)
    for i in range(ctx.runs):
        m = ctx.mount("copy", ctx.reg.url)
        dst_cp = os.path.join(ctx.fresh("cp-out"), ctx.tag)
        dst_sk = os.path.join(ctx.fresh("skopeo-out"), ctx.tag)
        try:
            def cp():
                t = timed('cp -r "$1" "$2"', m.path(ctx.repo, ctx.tag), dst_cp)
                check_dir_copy(dst_cp, ctx.big)
                return t

            def sk():
                t = timed_skopeo("copy", "--src-tls-verify=false", ref, "dir:" + dst_sk)
                check_dir_copy(dst_sk, ctx.big)
                return t

            for side, fn in ([("base", sk), ("rfs", cp)] if i % 2 else
                             [("rfs", cp), ("base", sk)]):
                ctx.sample(r3, side, fn)
        finally:
            ctx.unmount(m)
            rmtree(os.path.dirname(dst_cp))
            rmtree(os.path.dirname(dst_sk))
    r3.notes.append("throughput: registryfs %s, skopeo %s" % (
        mibps(r3, "rfs", ctx.image_bytes), mibps(r3, "base", ctx.image_bytes)))


def m_push(ctx):
    """5, 5r: cp -r of a local dir: image into a fresh repository through a fresh rw mount
    vs skopeo copy dir: docker:// to a fresh repository."""
    r5 = ctx.row("5", "push: cp -r dir: into mount vs skopeo dir->docker",
                 "skopeo copy dir:LOCAL docker://REG/NEWREPO2:TAG; registryfs: cp -r LOCAL "
                 "MNT/NEWREPO/TAG, fresh -o rw mount, empty cache dir", target=0.6,
                 strict=False)
    r5r = ctx.row("5r", "peak RSS of registryfs, push", "(none) VmHWM after the push",
                  kind="value", unit="MiB", agg="max", strict=False)
    reg, src = ctx.reg, ctx.src
    counts = {"rfs": [], "base": []}
    for i in range(ctx.runs):
        m = None

        def cp():
            nonlocal m
            m = ctx.mount("push", reg.url, rw=True)
            repo = "bench5/rfs%d" % i
            sh('mkdir -p "$1"', m.path(repo))
            mark = reg.mark()
            t = timed('cp -r "$1" "$2"', src, m.path(repo, ctx.tag))
            expect_published(reg, repo, ctx.tag, ctx.big, "cp -r")
            counts["rfs"].append(upload_counts(reg, mark))
            ctx.sample(r5r, "rfs", lambda: vm_hwm_mib(m.proc.pid))
            return t

        def sk():
            repo = "bench5/sk%d" % i
            mark = reg.mark()
            t = timed_skopeo("copy", "--dest-tls-verify=false", "dir:" + src,
                             "docker://%s/%s:%s" % (reg.host, repo, ctx.tag))
            expect_published(reg, repo, ctx.tag, ctx.big, "skopeo copy")
            counts["base"].append(upload_counts(reg, mark))
            return t

        try:
            for side, fn in ([("base", sk), ("rfs", cp)] if i % 2 else
                             [("rfs", cp), ("base", sk)]):
                ctx.sample(r5, side, fn)
        finally:
            if m is not None:
                ctx.unmount(m)
    if "rfs" in r5.errors:
        r5r.errors["rfs"] = "push failed"
    r5.notes.append("throughput: registryfs %s, skopeo %s" % (
        mibps(r5, "rfs", ctx.image_bytes), mibps(r5, "base", ctx.image_bytes)))
    r5.notes.append("blob uploads per run (upload PUTs / POST+PATCH / mounts): registryfs %s, "
                    "skopeo %s; %d blobs in the image" % (counts["rfs"], counts["base"],
                                                          len(ctx.big.blobs)))


def m_reg2reg(ctx):
    """6: root mode cp -r MNT/A/REPO/TAG MNT/B/NEWREPO/TAG vs skopeo copy docker:// docker://."""
    r6 = ctx.row("6", "registry A->B: cp -r in mount vs skopeo",
                 "skopeo copy docker://A/REPO:TAG docker://B/NEWREPO2:TAG; registryfs: cp -r "
                 "MNT/HOST_A/REPO/TAG MNT/HOST_B/NEWREPO/TAG, root mode, fresh -o rw mount, "
                 "empty cache dir", target=0.6, strict=False)
    a = ctx.reg
    b = ctx.registry("registry-b")
    counts = {"rfs": [], "base": []}
    for i in range(ctx.runs):
        m = None

        def cp():
            nonlocal m
            m = ctx.mount("reg2reg", None, rw=True)
            repo = "bench6/rfs%d" % i
            sh('mkdir -p "$1"', m.path(b.host, repo))
            mark = b.mark()
            t = timed('cp -r "$1" "$2"', m.path(a.host, ctx.repo, ctx.tag),
                      m.path(b.host, repo, ctx.tag))
            expect_published(b, repo, ctx.tag, ctx.big, "cp -r")
            counts["rfs"].append(upload_counts(b, mark))
            return t

        def sk():
            repo = "bench6/sk%d" % i
            mark = b.mark()
            t = timed_skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                             "docker://%s/%s:%s" % (a.host, ctx.repo, ctx.tag),
                             "docker://%s/%s:%s" % (b.host, repo, ctx.tag))
            expect_published(b, repo, ctx.tag, ctx.big, "skopeo copy")
            counts["base"].append(upload_counts(b, mark))
            return t

        try:
            for side, fn in ([("base", sk), ("rfs", cp)] if i % 2 else
                             [("rfs", cp), ("base", sk)]):
                ctx.sample(r6, side, fn)
        finally:
            if m is not None:
                ctx.unmount(m)
    r6.notes.append("throughput: registryfs %s, skopeo %s" % (
        mibps(r6, "rfs", ctx.image_bytes), mibps(r6, "base", ctx.image_bytes)))
    r6.notes.append("blob uploads to B per run (upload PUTs / POST+PATCH / mounts): "
                    "registryfs %s, skopeo %s" % (counts["rfs"], counts["base"]))


def m_repush(ctx):
    """7a, 7b: pushing an image the repository already holds sends no blob."""
    reg, src = ctx.reg, ctx.src
    rows = [
        (ctx.row("7a", "re-push (cp -r): blob upload PUTs",
                 "(none) cp -r LOCAL MNT/REPO/TAG2, REPO already holds the image, fresh -o rw "
                 "mount", target=0, kind="value", unit="PUTs", strict=False),
         "v2", 'cp -r "$1" "$2"', lambda m: (src, m.path(ctx.repo, "v2"))),
        (ctx.row("7b", "re-push (rsync -a): blob upload PUTs",
                 "(none) rsync -a LOCAL/ MNT/REPO/TAG3/, REPO already holds the image, fresh "
                 "-o rw mount", target=0, kind="value", unit="PUTs", strict=False),
         "v3", 'rsync -a "$1"/ "$2"/', lambda m: (src, m.path(ctx.repo, "v3"))),
    ]
    for row, tag, script, paths in rows:
        m = None

        def once():
            nonlocal m
            m = ctx.mount("repush", reg.url, rw=True)
            mark = reg.mark()
            t = timed(script, *paths(m))
            expect_published(reg, ctx.repo, tag, ctx.big, script.split()[0])
            puts, posts, mounts = upload_counts(reg, mark)
            row.notes.append("%.2f s for %.0f MiB; upload POST/PATCH %d, mounts %d" % (
                t, ctx.image_bytes / MiB, posts, mounts))
            return puts

        try:
            ctx.sample(row, "rfs", once)
        finally:
            if m is not None:
                ctx.unmount(m)


MEASUREMENTS = [
    ("read", m_read),           # 1, 1b, 2, 4
    ("copy", m_copy),           # 3
    ("push", m_push),           # 5, 5r
    ("reg2reg", m_reg2reg),     # 6
    ("repush", m_repush),       # 7a, 7b
]


# -- setup, table, main -------------------------------------------------------------------

def setup(ctx):
    t0 = time.perf_counter()
    log("generating a %d MiB incompressible layer ..." % ctx.mib)
    store = ig.BlobStore(os.path.join(ctx.work, "blobs"))
    layer = ig.make_large_layer(store, "bench/big", ctx.mib)
    ctx.big = ig.make_image(store, "bench/big", [layer])
    ctx.layer = ctx.big.layers[0]
    ctx.image_bytes = sum(b.size for b in ctx.big.blobs) + len(ctx.big.manifest)
    ctx.repo, ctx.tag = "bench/big", "v1"
    ctx.store = store
    # the local dir: image of measurements 5 and 7 (skopeo's order: version first and
    # manifest.json last in inode order, which is what cp -r follows)
    ctx.src = writes.source_dir(store, ctx.big, os.path.join(ctx.work, "src", ctx.tag))
    ctx.reg = ctx.registry("registry-a")
    with RegistryClient(ctx.reg.url) as c:
        c.push(store, ctx.repo, ctx.tag, ctx.big)
    os.sync()
    log("setup: %.1f s (layer %s, %d bytes; registry %s)" % (
        time.perf_counter() - t0, ctx.layer.digest, ctx.layer.size, ctx.reg.url))


def print_table(ctx):
    hdr = ("#", "measurement", "registryfs", "baseline", "ratio", "target", "result")
    lines = []
    rows = sorted(ctx.rows, key=lambda r: r.key)
    for r in rows:
        ratio = r.ratio()
        lines.append((r.key, r.name, r.fmt("rfs"), r.fmt("base"),
                      "%.2f" % ratio if ratio is not None else "-", r.fmt_target(),
                      r.result()))
    w = [max(len(x[i]) for x in [hdr] + lines) for i in range(len(hdr))]
    w[1] = min(w[1], 60)
    fmt = "%-*s  %-*s  %*s  %*s  %*s  %-*s  %s"

    def out(cols):
        name = cols[1]
        first = True
        while first or name:
            piece, name = name[:w[1]], name[w[1]:]
            if first:
                log(fmt % (w[0], cols[0], w[1], piece, w[2], cols[2], w[3], cols[3], w[4],
                           cols[4], w[5], cols[5], cols[6]))
            else:
                log("%-*s  %s" % (w[0], "", piece))
            first = False

    log("")
    log("=" * 100)
    out(hdr)
    log("-" * 100)
    for r, cols in zip(rows, lines):
        out(cols)
        for side, msg in r.errors.items():
            first = (msg.strip().splitlines() or [""])[0]
            log("%-*s  ! %s: %s" % (w[0], "", "registryfs" if side == "rfs" else "baseline",
                                    first[:120]))
    log("=" * 100)
    log("time rows: median of %d runs, ratio = registryfs time / baseline time (lower is "
        "faster); value rows: max over runs" % ctx.runs)
    for r in rows:
        extra = []
        if r.base_name:
            extra.append(("how: " if r.base_name.startswith("(none)") else "baseline: ")
                         + r.base_name.replace("(none) ", ""))
        for side in ("rfs", "base"):
            if r.samples[side] and len(r.samples[side]) > 1:
                extra.append("%s samples: %s" % ("registryfs" if side == "rfs" else "baseline",
                                                  ", ".join("%.3f" % v
                                                            for v in r.samples[side])))
        extra += r.notes
        for side, msg in r.errors.items():
            extra.append("ERROR (%s): %s" % ("registryfs" if side == "rfs" else "baseline",
                                             msg.strip().replace("\n", "\n        ")[:1500]))
        if extra:
            log("%-3s %s" % (r.key, ("\n    ").join(extra)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=int(os.environ.get("BENCH_MIB", "256")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="comma-separated groups: " + ",".join(n for n, _ in MEASUREMENTS))
    ap.add_argument("--keep", default=os.environ.get("BENCH_KEEP"),
                    help="work directory to use and keep")
    a = ap.parse_args()
    only = [x for x in a.only.split(",") if x]
    unknown = set(only) - {n for n, _ in MEASUREMENTS}
    if unknown:
        ap.error("unknown measurement group(s): %s" % ", ".join(sorted(unknown)))
    if os.geteuid() != 0:
        log("bench: needs root (FUSE mounts, unshare for skopeo)")
        return 1
    if not os.access(registryfs_bin(), os.X_OK):
        log("bench: no registryfs binary at %s (run make)" % registryfs_bin())
        return 1

    work = a.keep or tempfile.mkdtemp(prefix="registryfs-bench.")
    os.makedirs(work, exist_ok=True)
    ctx = Ctx(work, a.mib, max(1, a.runs))

    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    rev = subprocess.run(["git", "-C", os.path.dirname(TESTS), "describe", "--always",
                          "--dirty"], capture_output=True, text=True).stdout.strip()
    log("registryfs bench: %s (%s), %d MiB, %d runs, %d CPUs, kernel %s, work dir %s" % (
        registryfs_bin(), rev or "?", a.mib, ctx.runs, os.cpu_count(), platform.release(),
        work))
    t_start = time.perf_counter()
    status = 0
    try:
        setup(ctx)
        for name, fn in MEASUREMENTS:
            if only and name not in only:
                continue
            log("== %s" % name)
            t0 = time.perf_counter()
            before = len(ctx.rows)
            try:
                fn(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as e:      # noqa: BLE001 -- one broken measurement, go on
                log(traceback.format_exc())
                new = ctx.rows[before:]
                if new:
                    for r in new:
                        if not r.samples["rfs"]:
                            r.errors.setdefault("rfs", "%s: %s" % (type(e).__name__, e))
                else:
                    ctx.row(name, "%s (crashed)" % name).errors["rfs"] = \
                        "%s: %s" % (type(e).__name__, e)
            log("   (%s: %.1f s)" % (name, time.perf_counter() - t0))
    except KeyboardInterrupt as e:
        log("bench: interrupted (%s)" % (e or "SIGINT"))
        status = 130
    except Exception:       # noqa: BLE001 -- setup broke
        log(traceback.format_exc())
        status = 1
    finally:
        ctx.cleanup()
        if not a.keep:
            rmtree(work)
    if ctx.rows:
        print_table(ctx)
    log("total %.0f s" % (time.perf_counter() - t_start))
    if status == 0 and any(r.errors and r.strict for r in ctx.rows):
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
