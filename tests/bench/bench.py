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
  3t  `cp MNT/REPO:TAG.tar DST` (docker-archive view, fresh mount, empty cache) vs
      `skopeo copy docker://REG/REPO:TAG docker-archive:DST`    target time ratio <= 0.5
Write path (issue #3, `-o push`, docs/write.md)
  5   `cp -r LOCAL MNT/NEWREPO/TAG` (fresh rw mount + cache, fresh repository)
      vs `skopeo copy dir:LOCAL docker://REG/NEWREPO2:TAG`     target time ratio <= 0.6
  5r  peak RSS of registryfs after that push                               (report only)
  6   root mode: `cp -r MNT/HOST_A/REPO/TAG MNT/HOST_B/NEWREPO/TAG` vs
      `skopeo copy docker://A/REPO:TAG docker://B/NEWREPO2:TAG` target time ratio <= 0.6
  7a  re-push of an image the repository holds (`cp -r LOCAL MNT/REPO/TAG2`, fresh mount):
      blob upload PUTs in the registry's access log                      target 0
  7b  the same with `rsync -a LOCAL/ MNT/REPO/TAG3/`                       target 0
Offline packaging (issue #5, docs/packaging.md), images sharing base layers
  8   the flow of docs/packaging.md (mount REG and an empty storage dir -o push with one cache
      dir, mkdir -p + cp -r MNT_SRC/REPO:TAG MNT_PKG/REPO/TAG per image, unmount both) vs the
      seeds' convert-images.sh (skopeo sync --src docker --dest dir per image, hardlinks
      into blobs/sha256/XX/HEX/data, link files)                target time ratio <= 1.0
  8b  package blob bytes (distinct inodes under PKG/docker/registry/v2/blobs) minus the
      unique blob bytes; baseline column: the seeds' package            target 0 bytes
  8c  disk used by each flow's directories (du -sbc, hardlinks once): registryfs
      CACHE+PKG, seeds IMAGES+PKG (its dir: copies hold every image's layers)  (report only)
      Both packages must be served by docker-registry (skopeo inspect --raw of every tag).
Image selection by hardlinks (issue 11, group select, docs/packaging.md)
  9   select BENCH_SEL_IMAGES (19) of BENCH_SEL_TREE (30) images out of a big storage tree
      (docker-registry's storage; every image on a shared base, two of three on a second,
      each with its own layer): mount BIG read-only and NEW -o push,link_from=BIG, mkdir -p +
      cp -r per list line, unmount both vs the seed's image-select.sh (quote fix only), run
      from the big tree                                         target time ratio <= 1.0
  9b  extra disk of the selection: du -sbc BIG NEW minus du -sb BIG (blobs are hardlinks,
      counted once); baseline column: the seed's                target <= 2 MiB
      Both selections must hold exactly the selected blobs as the big tree's inodes and be
      served by docker-registry.
WAN profile (issue #8, group wan): each registry behind its own delay line
(harness/delayline.py: BENCH_WAN_RTT_MS rtt, BENCH_WAN_MBIT per connection and direction,
default 40 ms / 100 Mbit/s); registryfs mounts http://DELAY (root mode: the host directory
127.0.0.1:PORT of the delay line) and skopeo / curl go through the same delay lines.
  W1  pull a 6 x 16 MiB image: `cp -r MNT/REPO/TAG DST` (fresh mount, empty cache dir) vs
      `skopeo copy docker://DELAY_A/REPO:TAG dir:DST`           target time ratio <= 0.35
  W2  push it: `cp -r LOCAL MNT/NEWREPO/TAG` (fresh -o push mount, fresh repository) vs
      `skopeo copy dir:LOCAL docker://DELAY_A/NEWREPO2:TAG`    target time ratio <= 0.40
  W3  registry A -> B (both distant), root mode: `cp -r MNT/DELAY_A/REPO/TAG
      MNT/DELAY_B/NEWREPO/TAG` vs `skopeo copy docker://DELAY_A/... docker://DELAY_B/...`
                                                                target time ratio <= 0.80
  W4  mirror 10 images (2 shared 8 MiB base layers + an own 2 MiB layer each) A -> B, root
      mode -o push: per image `mkdir -p MNT/DELAY_B/NS/REPO` + `rsync -a MNT/DELAY_A/NS0/REPO/
      TAG/ MNT/DELAY_B/NS/REPO/TAG/` vs one `skopeo sync --src yaml --dest docker` of a YAML
      listing exactly those 10 tags; every tag checked in B by digest  target ratio <= 0.80
  W5  cold read of a BENCH_WAN_MIB blob: `cat MNT/REPO/TAG/HEX` (fresh mount, empty cache)
      vs `curl -o /dev/null` of the blob through the delay line (one stream)
                                                                target time ratio <= 0.40
      (one 100 Mbit/s stream needs ~21 s for 256 MiB: mind BENCH_WAN_RUNS)

Every time is the median of BENCH_RUNS runs (default 3); the two sides of a comparison
alternate which goes first, with `sync` before each timed command. skopeo always runs with an
empty blob-info cache (harness.tools.skopeo: a private tmpfs over /var/lib/containers, so it
never learns blob locations from an earlier run and the real cache file is never touched).
A MISS does not fail the command; the exit status is non-zero only when the bench itself
broke (setup failed, or a read-path measurement could not run). Write-path failures (the
write code is younger) are shown as ERROR rows and the bench goes on.

    /usr/bin/python3 tests/bench/bench.py [--only read,package] [--runs N] [--mib M] [--keep DIR]

Environment: BENCH_MIB (size of the big layer, default 256), BENCH_RUNS (default 3),
BENCH_ONLY (comma-separated measurement groups: read, copy, archive, push, reg2reg, repush,
package, select, wan), BENCH_KEEP=DIR (work directory to use and keep), REGISTRYFS_BIN as for the
tests; BENCH_RFS_OPTS (extra -o options for every registryfs mount of the bench, e.g.
max_transfers=8); for 8: BENCH_PKG_IMAGES (default 6), BENCH_PKG_BASE_MIB (each of the 2
base layers, default 24), BENCH_PKG_TOP_MIB (each image's own layer, default 2); for 9:
BENCH_SEL_TREE (images in the big tree, default 30), BENCH_SEL_IMAGES (selected, default
19), BENCH_SEL_BASE_MIB (the shared base, default 2; the second base is half),
BENCH_SEL_TOP_MIB (each image's own layer, default 4: cp moves ~120 MiB, the issue's
figure); for W1-W5:
BENCH_WAN_RTT_MS (default 40), BENCH_WAN_MBIT (per connection and direction, default 100),
BENCH_WAN_MIB (W5's blob, default 256; the setup's big blob is reused when it equals
BENCH_MIB), BENCH_WAN_RUNS (runs of each WAN row, default 2, at most BENCH_RUNS: the group
takes a few minutes).

Adding a measurement: write `def m_NAME(ctx)` that creates its rows with ctx.row(...),
fills them with ctx.sample(row, side, fn) (side "rfs" or "base"; fn returns seconds or a
value, raises on failure), and append it to MEASUREMENTS.
"""

import argparse
import glob
import hashlib
import json
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
from harness import packaging  # noqa: E402
from harness import tools  # noqa: E402
from harness import writes  # noqa: E402
from harness.delayline import DelayLine  # noqa: E402
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
        # the WAN profile (group wan)
        self.wan_rtt_ms = float(os.environ.get("BENCH_WAN_RTT_MS", "40"))
        self.wan_mbit = float(os.environ.get("BENCH_WAN_MBIT", "100"))
        self.wan_mib = int(os.environ.get("BENCH_WAN_MIB", "256"))
        self.wan_runs = max(1, int(os.environ.get("BENCH_WAN_RUNS", str(min(2, runs)))))
        self.rows = []
        self.mounts = []
        self.registries = []
        self.delaylines = []
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
        opts = rfs_options(rw)
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

    def delayline(self, reg):
        """A started delay line (the WAN profile) in front of registry reg."""
        dl = DelayLine(reg.port, rtt_ms=self.wan_rtt_ms, mbit=self.wan_mbit)
        self.delaylines.append(dl)
        dl.start()
        return dl

    def cleanup(self):
        for m in list(self.mounts):
            try:
                self.unmount(m, remove=False)
            except Exception as e:      # noqa: BLE001
                log("cleanup: unmount %s: %s" % (m.mountpoint, e))
        for dl in list(self.delaylines):
            try:
                dl.stop()
                self.delaylines.remove(dl)
            except Exception as e:      # noqa: BLE001
                log("cleanup: delay line %s: %s" % (dl, e))
        for reg in self.registries:
            try:
                reg.stop()
            except Exception as e:      # noqa: BLE001
                log("cleanup: registry %s: %s" % (reg.url, e))


def log(msg):
    print(msg, flush=True)


def rfs_options(rw=False):
    """-o options of every registryfs mount of the bench: rw when asked, plus BENCH_RFS_OPTS
    (comma-separated NAME or NAME=VALUE, e.g. max_transfers=8)."""
    opts = {"push": True} if rw else {}
    for item in os.environ.get("BENCH_RFS_OPTS", "").split(","):
        item = item.strip()
        if item:
            k, eq, v = item.partition("=")
            opts[k] = v if eq else True
    return opts


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


def check_archive(path, obj):
    """A docker-archive holding obj: its members, and each blob's size."""
    import tarfile
    with tarfile.open(path) as t:
        sizes = {m.name: m.size for m in t.getmembers()}
        manifest = json.loads(t.extractfile("manifest.json").read())
    layers = manifest[0]["Layers"]
    if manifest[0]["Config"] != obj.config.hex + ".json" or len(layers) != len(obj.layers) or \
            any(n not in sizes for n in layers):
        raise BenchError("%s: not a docker-archive of %s: %s" % (path, obj.digest, manifest))


def m_archive(ctx):
    """3t: cp of the docker-archive view out of a fresh mount vs skopeo copy docker-archive:."""
    r = ctx.row("3t", "cp MNT/REPO:TAG.tar vs skopeo docker->docker-archive",
                "skopeo copy docker://REG/REPO:TAG docker-archive:DST; registryfs: cp "
                "MNT/REPO:TAG.tar DST, fresh mount, empty cache dir", target=0.5)
    ref = "docker://%s/%s:%s" % (ctx.reg.host, ctx.repo, ctx.tag)
    for i in range(ctx.runs):
        m = ctx.mount("archive", ctx.reg.url)
        out = ctx.fresh("archive-out")
        try:
            def cp():
                dst = os.path.join(out, "cp.tar")
                t = timed('cp "$1" "$2"', m.path("%s:%s.tar" % (ctx.repo, ctx.tag)), dst)
                check_archive(dst, ctx.big)
                return t

            def sk():
                dst = os.path.join(out, "skopeo.tar")
                t = timed_skopeo("copy", "--src-tls-verify=false", ref, "docker-archive:" + dst)
                check_archive(dst, ctx.big)
                return t

            for side, fn in ([("base", sk), ("rfs", cp)] if i % 2 else
                             [("rfs", cp), ("base", sk)]):
                ctx.sample(r, side, fn)
        finally:
            ctx.unmount(m)
            rmtree(out)
    r.notes.append("throughput: registryfs %s, skopeo %s" % (
        mibps(r, "rfs", ctx.image_bytes), mibps(r, "base", ctx.image_bytes)))
    r.notes.append("skopeo stores the layers decompressed (named by DiffID); the view serves "
                   "the registry's compressed blobs")


def m_push(ctx):
    """5, 5r: cp -r of a local dir: image into a fresh repository through a fresh rw mount
    vs skopeo copy dir: docker:// to a fresh repository."""
    r5 = ctx.row("5", "push: cp -r dir: into mount vs skopeo dir->docker",
                 "skopeo copy dir:LOCAL docker://REG/NEWREPO2:TAG; registryfs: cp -r LOCAL "
                 "MNT/NEWREPO/TAG, fresh -o push mount, empty cache dir", target=0.6,
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
                 "MNT/HOST_A/REPO/TAG MNT/HOST_B/NEWREPO/TAG, root mode, fresh -o push mount, "
                 "empty cache dir", target=0.6, strict=False)
    b = ctx.registry("registry-b")
    copy_between(ctx, r6, ctx.runs, "bench6", (ctx.reg.host, b.host), b, ctx.repo, ctx.tag,
                 ctx.big)
    r6.notes.append("throughput: registryfs %s, skopeo %s" % (
        mibps(r6, "rfs", ctx.image_bytes), mibps(r6, "base", ctx.image_bytes)))


def copy_between(ctx, row, runs, prefix, hosts, b, repo, tag, obj):
    """A tag copied from hosts[0] to hosts[1] (registry b behind it): root mode cp -r
    MNT/A/REPO/TAG MNT/B/NEWREPO/TAG vs skopeo copy docker:// docker://; rows 6 and W3."""
    counts = {"rfs": [], "base": []}
    for i in range(runs):
        m = None

        def cp():
            nonlocal m
            m = ctx.mount(prefix, None, rw=True)
            dst = "%s/rfs%d" % (prefix, i)
            sh('mkdir -p "$1"', m.path(hosts[1], dst))
            mark = b.mark()
            t = timed('cp -r "$1" "$2"', m.path(hosts[0], repo, tag), m.path(hosts[1], dst, tag))
            expect_published(b, dst, tag, obj, "cp -r")
            counts["rfs"].append(upload_counts(b, mark))
            return t

        def sk():
            dst = "%s/sk%d" % (prefix, i)
            mark = b.mark()
            t = timed_skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                             "docker://%s/%s:%s" % (hosts[0], repo, tag),
                             "docker://%s/%s:%s" % (hosts[1], dst, tag))
            expect_published(b, dst, tag, obj, "skopeo copy")
            counts["base"].append(upload_counts(b, mark))
            return t

        try:
            for side, fn in alternate(i, cp, sk):
                ctx.sample(row, side, fn)
        finally:
            if m is not None:
                ctx.unmount(m)
    row.notes.append("blob uploads to B per run (upload PUTs / POST+PATCH / mounts): "
                     "registryfs %s, skopeo %s" % (counts["rfs"], counts["base"]))


def m_repush(ctx):
    """7a, 7b: pushing an image the repository already holds sends no blob."""
    reg, src = ctx.reg, ctx.src
    rows = [
        (ctx.row("7a", "re-push (cp -r): blob upload PUTs",
                 "(none) cp -r LOCAL MNT/REPO/TAG2, REPO already holds the image, fresh -o push "
                 "mount", target=0, kind="value", unit="PUTs", strict=False),
         "v2", 'cp -r "$1" "$2"', lambda m: (src, m.path(ctx.repo, "v2"))),
        (ctx.row("7b", "re-push (rsync -a): blob upload PUTs",
                 "(none) rsync -a LOCAL/ MNT/REPO/TAG3/, REPO already holds the image, fresh "
                 "-o push mount", target=0, kind="value", unit="PUTs", strict=False),
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


# -- packaging (issue #5, docs/packaging.md) ----------------------------------------------

# The registryfs side: harness.packaging.run_flow, the loop of docs/packaging.md.

# The seeds' convert-images.sh (/work/shared/seeds/001_*.txt), verbatim except one fix: the
# seed calls `skopeo_sync" ${SOURCE_REGISTRY}/${image}" ...` (the quote glued to the function
# name makes bash look for a command named "skopeo_sync REG/IMAGE", and set -e ends the script
# with status 127 at the first image); here it reads `skopeo_sync "${SOURCE_REGISTRY}/${image}"
# ...`. Run as `bash convert-images.sh REG IMAGES_DIR` with IMAGES_LIST_FILE=LIST, its working
# directory the package directory (it writes docker/registry/v2 relative to it), inside a
# private mount namespace with a fresh tmpfs over /var/lib/containers: the isolation of
# harness.tools.skopeo, once for the whole script, so its skopeo calls start with an empty
# blob-info cache and the real one is never touched.
SEEDS_CONVERT_IMAGES = r'''#!/bin/bash

set -eo pipefail

GREEN_COL="\\033[32;1m"
RED_COL="\\033[1;31m"
NORMAL_COL="\\033[0;39m"

BASE_PATH=$(cd "$(dirname $0)" && pwd)

SOURCE_REGISTRY=$1
IMAGES_DIR=$2

: "${IMAGES_DIR:="images"}"
: "${IMAGES_LIST_FILE:="${BASE_PATH}/images-list.txt"}"
: "${SOURCE_REGISTRY:="docker.io"}"

# 仓库服务器中的目录
BLOBS_PATH="docker/registry/v2/blobs/sha256"
REPO_PATH="docker/registry/v2/repositories"

# 记录当前数和总镜像数
CURRENT_NUM=0
ALL_IMAGES=$(sed -n '/#/d;s/:/:/p' "${IMAGES_LIST_FILE}" | sort -u)
TOTAL_NUMS=$(echo "${ALL_IMAGES}" | wc -l)

# 从远程仓库同步指定镜像到本地目录中
skopeo_sync() {
    if skopeo sync \
        --insecure-policy --src-tls-verify=false --dest-tls-verify=false \
        --override-arch amd64 --override-os linux \
        --src docker --dest dir \
        "$1" "$2" > /dev/null; then
        echo -e "$GREEN_COL Progress: ${CURRENT_NUM}/${TOTAL_NUMS} sync $1 to $2 successful $NORMAL_COL"
    else
        echo -e "$RED_COL Progress: ${CURRENT_NUM}/${TOTAL_NUMS} sync $1 to $2 failed $NORMAL_COL"
        exit 2
    fi
}

convert_images() {
    rm -rf ${IMAGES_DIR}; mkdir -p ${IMAGES_DIR}
    for image in ${ALL_IMAGES}; do
        (( CURRENT_NUM="${CURRENT_NUM}"+1 ))

        # 取 images-list.txt 文本中的每一行，并分隔存储。
        image_name=${image%%:*}
        image_tag=${image##*:}
        image_repo=${image%%/*}

        # 函数调用 从仓库同步镜像到本地 images 目录
        skopeo_sync "${SOURCE_REGISTRY}/${image}" "${IMAGES_DIR}/${image_repo}"

        # 在本地 images 目录中，取得 get image manifest sha256sum 信息
        manifest="${IMAGES_DIR}/${image}/manifest.json"
        # 62ffc2ed7554e4c6d360bce40bbcf196573dd27c4ce080641a2c59867e732dee
        manifest_sha256=$(sha256sum "${manifest}" | awk '{print $1}')
        # docker/registry/v2/blobs/sha256/62/62ffc2ed7554e4c6d360bce40bbcf196573dd27c4ce080641a2c59867e732dee
        mkdir -p "${BLOBS_PATH}/${manifest_sha256:0:2}/${manifest_sha256}"
        #  该 data 文件实际上是镜像的 manifest.json 文件
        ln -f "${manifest}" "${BLOBS_PATH}/${manifest_sha256:0:2}/${manifest_sha256}/data"
        # make image repositories dir
        mkdir -p "${REPO_PATH}/${image_name}/"{_uploads,_layers,_manifests}
        mkdir -p "${REPO_PATH}/${image_name}/_manifests/revisions/sha256/${manifest_sha256}"
        mkdir -p "${REPO_PATH}/${image_name}/_manifests/tags/${image_tag}/"{current,index/sha256}
        mkdir -p "${REPO_PATH}/${image_name}/_manifests/tags/${image_tag}/index/sha256/${manifest_sha256}"
        # create image tag manifest link file
        # sha256:62ffc2ed7554e4c6d360bce40bbcf196573dd27c4ce080641a2c59867e732deer
        echo -n "sha256:${manifest_sha256}" > "${REPO_PATH}/${image_name}/_manifests/revisions/sha256/${manifest_sha256}/link"
        echo -n "sha256:${manifest_sha256}" > "${REPO_PATH}/${image_name}/_manifests/tags/${image_tag}/current/link"
        echo -n "sha256:${manifest_sha256}" > "${REPO_PATH}/${image_name}/_manifests/tags/${image_tag}/index/sha256/${manifest_sha256}/link"
        # link image layers file to registry blobs dir
        # 匹配 manifest.json 中"digest"两个不带sha256的值
        sed '/v1Compatibility/d' ${manifest} | grep -Eo "\b[a-f0-9]{64}\b" | while IFS= read -r layer ; do
            # 5cc84ad355aaa64f46ea9c7bbcc319a9d808ab15088a27209c9e70ef86e5a2aa 、 beae173ccac6ad749f76713cf4440fe3d21d1043fe616dfbe30775815d1d0f6a
            mkdir -p "${BLOBS_PATH}/${layer:0:2}/${layer}"
            # 5cc84ad355aaa64f46ea9c7bbcc319a9d808ab15088a27209c9e70ef86e5a2aa 、 beae173ccac6ad749f76713cf4440fe3d21d1043fe616dfbe30775815d1d0f6a
            mkdir -p "${REPO_PATH}/${image_name}/_layers/sha256/${layer}"
            # sha256:5cc84ad355aaa64f46ea9c7bbcc319a9d808ab15088a27209c9e70ef86e5a2aa
            echo -n "sha256:${layer}" > "${REPO_PATH}/${image_name}/_layers/sha256/${layer}/link"
            # 复制images目录中 "application/vnd.docker.container.image.v1+json" 容器配置 config 与 多个 "application/vnd.docker.image.rootfs.diff.tar.gzip" layer
            ln -f "${IMAGES_DIR}/${image}/${layer}" "${BLOBS_PATH}/${layer:0:2}/${layer}/data"
        done
    done
}

convert_images
'''


def pkg_images(ctx):
    """Generate the packaging image set (BENCH_PKG_IMAGES images; every image has base layer
    `os` (BENCH_PKG_BASE_MIB), two of three also `rt` (same size), and each its own top layer
    (BENCH_PKG_TOP_MIB); Docker and OCI manifests alternate) and push it to a fresh registry.
    Repositories have two path components (ns/name): the seeds' script relies on it (skopeo
    sync to dir: names the copy after the last component)."""
    n = int(os.environ.get("BENCH_PKG_IMAGES", "6"))
    base_mib = float(os.environ.get("BENCH_PKG_BASE_MIB", "24"))
    top_mib = float(os.environ.get("BENCH_PKG_TOP_MIB", "2"))
    names = [("bench8/web", "1.0"), ("bench8/web", "1.1"), ("bench8/api", "1.0"),
             ("bench8/worker", "2.0"), ("bench8/cli", "1.0"), ("bench8/tools", "3.1")]
    names += [("bench8/app%d" % i, "1.0") for i in range(len(names), n)]
    store = ig.BlobStore(os.path.join(ctx.work, "pkg-blobs"))
    base_os = ig.make_large_layer(store, "bench8/base-os", base_mib)
    base_rt = ig.make_large_layer(store, "bench8/base-rt", base_mib)
    images = []
    for i, (repo, tag) in enumerate(names[:n]):
        layers = [base_os, base_rt] if i % 3 != 2 else [base_os]
        layers.append(ig.make_large_layer(store, "bench8/top-%d" % i, top_mib))
        images.append((repo, tag, ig.make_image(store, "bench8/img-%d" % i, layers,
                                                fmt="docker" if i % 2 == 0 else "oci")))
    reg = ctx.registry("registry-pkg")
    with RegistryClient(reg.url) as c:
        for repo, tag, img in images:
            c.push(store, repo, tag, img)
    unique = {}         # hex -> size: manifests, configs, layers, each once
    per_image = 0       # what a dir: copy per image holds (blobs + manifest)
    for _, _, img in images:
        unique[img.hex] = len(img.manifest)
        for b in img.blobs:
            unique[b.hex] = b.size
        per_image += len(img.manifest) + sum(b.size for b in img.blobs)
    return reg, images, unique, per_image


def package_blobs(root):
    """({hex: (size, nlink)}, bytes of distinct inodes) of the files under
    ROOT/docker/registry/v2/blobs; raises on anything but blobs/sha256/XX/HEX/data files."""
    base = os.path.join(root, "docker", "registry", "v2", "blobs")
    out, seen, total = {}, set(), 0
    for d, _, files in os.walk(base):
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            rel = os.path.relpath(p, base).split("/")
            if not (os.path.isfile(p) and not os.path.islink(p) and len(rel) == 4 and
                    rel[0] == "sha256" and rel[1] == rel[2][:2] and rel[3] == "data"):
                raise BenchError("not distribution's blob layout: %s" % p)
            out[rel[2]] = (st.st_size, st.st_nlink)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return out, total


def du_bytes(*paths):
    """`du -sbc PATHS` total: apparent bytes, a file hardlinked in several places once."""
    r = sh('du -sbc "$@" | tail -n 1', *paths)
    return int(r.stdout.split()[0])


def check_package(root, unique, what):
    """The package at root holds exactly the unique blobs with their sizes; returns (blob
    files, distinct-inode bytes, files with more than one link)."""
    blobs, total = package_blobs(root)
    missing = sorted(set(unique) - set(blobs))
    extra = sorted(set(blobs) - set(unique))
    if missing or extra:
        raise BenchError("%s package: %d blob files, %d unique blobs; missing %s, extra %s" % (
            what, len(blobs), len(unique), missing[:3], extra[:3]))
    bad = [h for h in unique if blobs[h][0] != unique[h]]
    if bad:
        raise BenchError("%s package: blob %s is %d bytes, want %d" % (
            what, bad[0], blobs[bad[0]][0], unique[bad[0]]))
    return len(blobs), total, sum(1 for s, nl in blobs.values() if nl > 1)


def serve_check(ctx, root, images, what):
    """docker-registry serving the storage root `root` answers `skopeo inspect --raw` for
    every REPO:TAG with the source's manifest digest."""
    reg = Registry(ctx.fresh("serve"))
    reg.storage = root
    ctx.registries.append(reg)
    try:
        reg.start()
        for repo, tag, img in images:
            raw = writes.raw_manifest(reg, repo, tag)
            got = writes.sha256_digest(raw) if raw is not None else "absent"
            if got != img.digest:
                raise BenchError("%s package served by docker-registry: %s:%s is %s, want %s"
                                 % (what, repo, tag, got, img.digest))
    finally:
        reg.stop()
        ctx.registries.remove(reg)
        rmtree(reg.workdir)


def m_package(ctx):
    """8, 8b, 8c: offline packaging of images that share base layers: the registryfs flow of
    docs/packaging.md vs the seeds' skopeo sync + convert-images.sh, both in each run."""
    t0 = time.perf_counter()
    reg, images, unique, per_image = pkg_images(ctx)
    unique_bytes = sum(unique.values())
    n = len(images)
    log("  %d images, %d unique blobs, %.1f MiB unique, %.1f MiB as separate images "
        "(generated and pushed in %.1f s)" % (n, len(unique), unique_bytes / MiB,
                                               per_image / MiB, time.perf_counter() - t0))
    lst = os.path.join(ctx.fresh("pkg-list"), "images-list.txt")
    with open(lst, "w") as f:
        f.writelines("%s:%s\n" % (repo, tag) for repo, tag, _ in images)

    r8 = ctx.row("8", "package %d images (shared bases): registryfs vs seeds' flow" % n,
                 "bash convert-images.sh REG IMAGES (the seeds' script: skopeo sync --src "
                 "docker --dest dir per image, then hardlinks into blobs/sha256/XX/HEX/data "
                 "and link files); registryfs: mount REG and an empty PKG -o push (one fresh "
                 "cache dir), mkdir -p + cp -r MNT_SRC/REPO:TAG MNT_PKG/REPO/TAG per image, "
                 "unmount both (daemon exit included)", target=1.0, strict=False)
    r8b = ctx.row("8b", "package blob bytes (distinct inodes) - unique bytes",
                  "(none) sum of st_size over distinct inodes under "
                  "PKG/docker/registry/v2/blobs minus the sum of the unique blob sizes "
                  "(manifests, configs, layers); baseline column: the seeds' package",
                  target=0, kind="value", unit="bytes", strict=False)
    r8c = ctx.row("8c", "disk used by each flow's dirs (du -sb, hardlinks once)",
                  "(none) registryfs: du -sbc CACHE PKG; baseline: du -sbc IMAGES PKG",
                  kind="value", unit="MiB", strict=False)
    stats = {}

    def rfs_flow(d):
        cache, pkg = os.path.join(d, "cache"), os.path.join(d, "package")
        os.makedirs(cache)
        os.makedirs(pkg)
        ms = Mount(os.path.join(d, "msrc", "mnt"), reg.url, cache_dir=cache,
                   log_file=os.path.join(d, "msrc", "registryfs.log"), options=rfs_options(),
                   foreground=False, workdir=os.path.join(d, "msrc"))
        mp = Mount(os.path.join(d, "mpkg", "mnt"), pkg, cache_dir=cache,
                   log_file=os.path.join(d, "mpkg", "registryfs.log"),
                   options=rfs_options(True), foreground=False,
                   workdir=os.path.join(d, "mpkg"))
        for m in (ms, mp):
            m.bench_dir = m.workdir
            ctx.mounts.append(m)
        try:
            os.sync()
            t = time.perf_counter()
            ms.start()          # daemon mode, as a user runs it: returns once mounted
            mp.start()
            r = packaging.run_flow("cp", ms.mountpoint, mp.mountpoint, lst, timeout=TIMEOUT)
            if r.returncode != 0:
                raise BenchError("%s\n--- package mount log ---\n%s" % (
                    _short(r), mp.log()[-1500:]))
            ctx.unmount(mp, remove=False)
            ctx.unmount(ms, remove=False)
            t = time.perf_counter() - t
        finally:
            for m in (mp, ms):
                if m in ctx.mounts:
                    ctx.unmount(m, remove=False)
        if os.path.exists(os.path.join(pkg, ".registryfs-partial")):
            raise BenchError("PKG/.registryfs-partial left after unmount")
        files, blob_bytes, linked = check_package(pkg, unique, "registryfs")
        serve_check(ctx, pkg, images, "registryfs")
        stats["rfs"] = dict(files=files, blob_bytes=blob_bytes, linked=linked,
                            du_pkg=du_bytes(pkg), disk=du_bytes(cache, pkg),
                            du_cache=du_bytes(cache))
        return t

    def seeds_flow(d):
        pkg, imgs = os.path.join(d, "package"), os.path.join(d, "images")
        os.makedirs(pkg)
        script = os.path.join(d, "convert-images.sh")
        with open(script, "w") as f:
            f.write(SEEDS_CONVERT_IMAGES)
        os.makedirs("/var/lib/containers", exist_ok=True)
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=64m tmpfs /var/lib/containers && exec "$@"', "sh",
               "bash", script, reg.host, imgs]
        env = dict(os.environ, IMAGES_LIST_FILE=lst)
        os.sync()
        t = time.perf_counter()
        r = tools.run(cmd, timeout=TIMEOUT, env=env, cwd=pkg)
        t = time.perf_counter() - t
        if r.returncode != 0:
            raise BenchError(_short(r))
        files, blob_bytes, linked = check_package(pkg, unique, "seeds'")
        serve_check(ctx, pkg, images, "seeds'")
        # The conversion only adds hardlinks and link files: IMAGES is what skopeo wrote.
        stats["base"] = dict(files=files, blob_bytes=blob_bytes, linked=linked,
                             du_pkg=du_bytes(pkg), disk=du_bytes(imgs, pkg),
                             du_images=du_bytes(imgs))
        return t

    flows = {"rfs": ("pkg-rfs", rfs_flow), "base": ("pkg-seeds", seeds_flow)}
    try:
        for i in range(ctx.runs):
            for side in (("base", "rfs") if i % 2 else ("rfs", "base")):
                name, fn = flows[side]
                d = ctx.fresh(name)
                try:
                    if ctx.sample(r8, side, lambda: fn(d)) is not None:
                        s = stats[side]
                        ctx.sample(r8b, side, lambda: s["blob_bytes"] - unique_bytes)
                        ctx.sample(r8c, side, lambda: s["disk"] / MiB)
                    elif side in r8.errors:
                        r8b.errors.setdefault(side, "flow failed")
                        r8c.errors.setdefault(side, "flow failed")
                finally:
                    if not any(tools.mounted(m.mountpoint) for m in ctx.mounts
                               if m.mountpoint.startswith(d + os.sep)):
                        rmtree(d)
    finally:
        reg.stop()
        ctx.registries.remove(reg)

    layout = "%d images (Docker and OCI alternating): every one on base `os`, %d also on " \
        "base `rt` (%.0f MiB each), each with its own %.0f MiB top layer" % (
            n, sum(1 for i in range(n) if i % 3 != 2),
            float(os.environ.get("BENCH_PKG_BASE_MIB", "24")),
            float(os.environ.get("BENCH_PKG_TOP_MIB", "2")))
    r8.notes.append(layout)
    r8.notes.append("unique blobs: %d, %d bytes (%.1f MiB); the images one by one: %.1f MiB"
                    % (len(unique), unique_bytes, unique_bytes / MiB, per_image / MiB))
    served = " and ".join(w for k, w in (("rfs", "registryfs"), ("base", "seeds")) if k in stats)
    if served:
        r8.notes.append("%s package served by docker-registry: skopeo inspect --raw of all %d "
                        "tags gives the source digests (checked every run, not timed)"
                        % (served, n))
    for side, who, src in (("rfs", "registryfs", "the cache dir"),
                           ("base", "seeds", "the images dir")):
        s = stats.get(side)
        if s:
            r8b.notes.append("%s: %d blob files = %d unique blobs, %d bytes in distinct inodes "
                             "(unique %d); %d hardlinked with %s; du -sb PKG %d bytes "
                             "(%.1f MiB, directories and link files included)" % (
                                 who, s["files"], len(unique), s["blob_bytes"], unique_bytes,
                                 s["linked"], src, s["du_pkg"], s["du_pkg"] / MiB))
    if "base" in stats:
        s = stats["base"]
        r8c.notes.append("seeds' images dir before conversion (the skopeo sync dir: copies; the "
                         "conversion only adds hardlinks): du -sb %.1f MiB = %.2f x unique "
                         "%.1f MiB" % (s["du_images"] / MiB, s["du_images"] / unique_bytes,
                                       unique_bytes / MiB))
    if "rfs" in stats:
        s = stats["rfs"]
        r8c.notes.append("registryfs cache dir: du -sb %.1f MiB = %.2f x unique (the package "
                         "hardlinks its blobs)" % (s["du_cache"] / MiB,
                                                   s["du_cache"] / unique_bytes))


# -- image selection by hardlinks (issue 11, item 1, docs/packaging.md) -------------------

# The seed's image-select.sh (tests/data/image-select.sh, verbatim) with only its quoting bug
# fixed (see tests/test_packaging.py QUOTE_BUG: as written it stops at the first image).
SEED_IMAGE_SELECT = os.path.join(TESTS, "data", "image-select.sh")
SEED_QUOTE_BUG = '/_manifests/tags/${image_tag}/{current,index/sha256}"'
SEED_QUOTE_FIX = '/_manifests/tags/${image_tag}/"{current,index/sha256}'


def select_tree(ctx):
    """A big storage tree: docker-registry's storage after pushing BENCH_SEL_TREE images (every
    one on base `os` of BENCH_SEL_BASE_MIB, two of three also on `rt` of half that, each with
    its own BENCH_SEL_TOP_MIB layer; Docker and OCI alternating), and the list of the first
    BENCH_SEL_IMAGES of them. Returns (root, selected images, list path)."""
    n_tree = int(os.environ.get("BENCH_SEL_TREE", "30"))
    n_sel = min(n_tree, int(os.environ.get("BENCH_SEL_IMAGES", "19")))
    base_mib = float(os.environ.get("BENCH_SEL_BASE_MIB", "2"))
    top_mib = float(os.environ.get("BENCH_SEL_TOP_MIB", "4"))
    store = ig.BlobStore(os.path.join(ctx.work, "sel-blobs"))
    base_os = ig.make_large_layer(store, "bench9/base-os", base_mib)
    base_rt = ig.make_large_layer(store, "bench9/base-rt", base_mib / 2)
    images = []
    for i in range(n_tree):
        layers = [base_os, base_rt] if i % 3 != 2 else [base_os]
        layers.append(ig.make_large_layer(store, "bench9/top-%d" % i, top_mib))
        images.append(("bench9/app%02d" % i, "1.0", ig.make_image(
            store, "bench9/img-%d" % i, layers, fmt="docker" if i % 2 == 0 else "oci")))
    reg = ctx.registry("registry-sel")
    try:
        with RegistryClient(reg.url) as c:
            for repo, tag, img in images:
                c.push(store, repo, tag, img)
    finally:
        reg.stop()
        ctx.registries.remove(reg)
    chosen = images[:n_sel]
    lst = os.path.join(ctx.fresh("sel-list"), "images.list")    # image-select.sh: *.list
    with open(lst, "w") as f:
        f.writelines("%s:%s\n" % (repo, tag) for repo, tag, _ in chosen)
    return os.path.abspath(reg.storage), chosen, lst


def check_selection(root, new, chosen, what):
    """new holds exactly the chosen images' blobs, each the big tree's inode; returns the
    extra disk (du -sbc ROOT NEW minus du -sb ROOT)."""
    want = set()
    for _, _, img in chosen:
        want |= {img.hex} | {b.hex for b in img.blobs}
    got, _ = package_blobs(new)
    if set(got) != want:
        raise BenchError("%s selection: %d blob files, want %d" % (what, len(got), len(want)))
    for hx in want:
        rel = os.path.join("docker", "registry", "v2", "blobs", "sha256", hx[:2], hx, "data")
        if os.stat(os.path.join(new, rel)).st_ino != os.stat(os.path.join(root, rel)).st_ino:
            raise BenchError("%s selection: blob %s is not a hardlink of the big tree's"
                             % (what, hx[:12]))
    return du_bytes(root, new) - du_bytes(root)


def m_select(ctx):
    """9, 9b: select images out of a big storage tree into a new one: two registryfs mounts
    (-o push,link_from=BIG) and cp -r vs the seed's image-select.sh (hardlinks by hand)."""
    t0 = time.perf_counter()
    root, chosen, lst = select_tree(ctx)
    moved = sum(len(img.manifest) + sum(b.size for b in img.blobs) for _, _, img in chosen)
    log("  big tree %s (%.1f MiB), %d images selected: cp moves %.1f MiB (built in %.1f s)" % (
        root, du_bytes(root) / MiB, len(chosen), moved / MiB, time.perf_counter() - t0))
    r9 = ctx.row("9", "select %d images of a big tree: cp -r, link_from" % len(chosen),
                 "the seed's image-select.sh (quote fix only) run from the big tree: ln of "
                 "every blob, link files by echo; registryfs: mount BIG read-only and NEW "
                 "-o push,link_from=BIG (daemon mode), mkdir -p + cp -r MNT_BIG/REPO:TAG "
                 "MNT_NEW/REPO/TAG per list line, unmount both", target=1.0, strict=False)
    r9b = ctx.row("9b", "extra disk of the selection (du -sbc BIG NEW - du -sb BIG)",
                  "(none) hardlinked blobs count once; baseline column: the seed's",
                  target=2, kind="value", unit="MiB", strict=False)

    def rfs(d):
        new = os.path.join(d, "new")
        ms = Mount(os.path.join(d, "mbig", "mnt"), root, cache_dir=os.path.join(d, "cache"),
                   log_file=os.path.join(d, "mbig.log"), options=rfs_options(),
                   foreground=False, workdir=os.path.join(d, "mbig"))
        opts = dict(rfs_options(True), link_from=root)
        mn = Mount(os.path.join(d, "mnew", "mnt"), new, cache_dir=os.path.join(d, "cache"),
                   log_file=os.path.join(d, "mnew.log"), options=opts, foreground=False,
                   workdir=os.path.join(d, "mnew"))
        for m in (ms, mn):
            m.bench_dir = m.workdir
            ctx.mounts.append(m)
        try:
            os.sync()
            t = time.perf_counter()
            ms.start()
            mn.start()
            r = packaging.run_flow("cp", ms.mountpoint, mn.mountpoint, lst, timeout=TIMEOUT)
            if r.returncode != 0:
                raise BenchError("%s\n%s" % (_short(r), mn.log()[-1500:]))
            ctx.unmount(mn, remove=False)
            ctx.unmount(ms, remove=False)
            t = time.perf_counter() - t
        finally:
            for m in (mn, ms):
                if m in ctx.mounts:
                    ctx.unmount(m, remove=False)
        extra = check_selection(root, new, chosen, "registryfs")
        serve_check(ctx, new, chosen, "registryfs")
        return t, extra

    def seed(d):
        with open(SEED_IMAGE_SELECT) as f:
            text = f.read()
        script = os.path.join(d, "image-select.sh")
        with open(script, "w") as f:
            f.write(text.replace(SEED_QUOTE_BUG, SEED_QUOTE_FIX))
        new = os.path.join(d, "new")
        os.sync()
        t = time.perf_counter()
        r = tools.run(["bash", script, os.path.dirname(lst), root, new], cwd=root,
                      timeout=TIMEOUT)
        t = time.perf_counter() - t
        if r.returncode != 0:
            raise BenchError(_short(r))
        extra = check_selection(root, new, chosen, "seed's")
        serve_check(ctx, new, chosen, "seed's")
        return t, extra

    sides = {"rfs": ("sel-rfs", rfs), "base": ("sel-seed", seed)}
    for i in range(ctx.runs):
        for side in (("base", "rfs") if i % 2 else ("rfs", "base")):
            name, fn = sides[side]
            d = ctx.fresh(name)
            out = {}

            def once():
                out["t"], out["extra"] = fn(d)
                return out["t"]
            try:
                if ctx.sample(r9, side, once) is not None:
                    ctx.sample(r9b, side, lambda: out["extra"] / MiB)
                else:
                    r9b.errors.setdefault(side, "selection failed")
            finally:
                if not any(tools.mounted(m.mountpoint) for m in ctx.mounts
                           if m.mountpoint.startswith(d + os.sep)):
                    rmtree(d)
    r9.notes.append("%d of %d images, cp moves %.1f MiB through both mounts per run (the "
                    "kernel's copy_file_range fallback: 64 KiB splices); both selections "
                    "checked every run: exactly the selected blobs, each the big tree's inode, "
                    "served by docker-registry (not timed)" % (
                        len(chosen), int(os.environ.get("BENCH_SEL_TREE", "30")),
                        moved / MiB))


# -- WAN profile (issue 8, item 5): registries behind a delay line ------------------------

WAN_LAYERS, WAN_LAYER_MIB = 6, 16               # W1-W3: the image
WAN_MIRROR_IMAGES, WAN_MIRROR_BASE_MIB, WAN_MIRROR_TOP_MIB = 10, 8, 2     # W4


def wan_images(ctx):
    """Generate and push (to registry A directly, not through a delay line) the WAN images:
    the 6-layer image of W1-W3, the 10 images of W4 (2 shared base layers + an own layer
    each, Docker and OCI alternating), and W5's big blob (the setup's when BENCH_WAN_MIB is
    BENCH_MIB). Returns a namespace."""
    t0 = time.perf_counter()

    class W:
        pass
    w = W()
    store = ig.BlobStore(os.path.join(ctx.work, "wan-blobs"))
    w.store = store
    layers = [ig.make_large_layer(store, "benchw/layer-%d" % i, WAN_LAYER_MIB)
              for i in range(WAN_LAYERS)]
    w.six = ig.make_image(store, "benchw/six", layers)
    w.six_repo, w.tag = "benchw/six", "v1"
    w.six_bytes = sum(b.size for b in w.six.blobs) + len(w.six.manifest)
    w.src = writes.source_dir(store, w.six, os.path.join(ctx.work, "wan-src", w.tag))
    bases = [ig.make_large_layer(store, "benchw4/base-%d" % i, WAN_MIRROR_BASE_MIB)
             for i in range(2)]
    w.mirror = []
    for i in range(WAN_MIRROR_IMAGES):
        top = ig.make_large_layer(store, "benchw4/top-%d" % i, WAN_MIRROR_TOP_MIB)
        w.mirror.append(("app%d" % i, "1.0", ig.make_image(
            store, "benchw4/img-%d" % i, bases + [top], fmt="docker" if i % 2 == 0 else "oci")))
    w.mirror_src = "benchw4"            # repositories benchw4/appN:1.0 in A
    uniq = {}
    for _, _, img in w.mirror:
        uniq[img.hex] = len(img.manifest)
        uniq.update((b.hex, b.size) for b in img.blobs)
    w.mirror_unique = sum(uniq.values())
    w.mirror_total = sum(len(img.manifest) + sum(b.size for b in img.blobs)
                         for _, _, img in w.mirror)
    if ctx.wan_mib == ctx.mib:
        w.big_repo, w.big_layer = ctx.repo, ctx.layer
        w.big_tag = ctx.tag
        pushed = [(w.six_repo, w.tag, w.six)]
    else:
        big = ig.make_image(store, "benchw/big", [ig.make_large_layer(
            store, "benchw/big", ctx.wan_mib)])
        w.big_repo, w.big_tag, w.big_layer = "benchw/big", "v1", big.layers[0]
        pushed = [(w.six_repo, w.tag, w.six), (w.big_repo, w.big_tag, big)]
    pushed += [("%s/%s" % (w.mirror_src, r), t, img) for r, t, img in w.mirror]
    with RegistryClient(ctx.reg.url) as c:
        for repo, tag, img in pushed:
            c.push(store, repo, tag, img)
    os.sync()
    log("  WAN images generated and pushed in %.1f s: %d x %d MiB image (%.1f MiB), "
        "%d mirror images (%.1f MiB unique, %.1f MiB one by one), %.0f MiB blob for W5"
        % (time.perf_counter() - t0, WAN_LAYERS, WAN_LAYER_MIB, w.six_bytes / MiB,
           WAN_MIRROR_IMAGES, w.mirror_unique / MiB, w.mirror_total / MiB,
           w.big_layer.size / MiB))
    return w


def alternate(i, rfs, base):
    """The (side, fn) pairs of run i: registryfs first in even runs, the baseline in odd."""
    return [("base", base), ("rfs", rfs)] if i % 2 else [("rfs", rfs), ("base", base)]


def m_wan(ctx):
    """W1-W5: the WAN profile. Registry A (and B for W3/W4) behind their own delay line
    (harness.delayline: BENCH_WAN_RTT_MS rtt, BENCH_WAN_MBIT per connection and direction);
    registryfs and skopeo/curl both go through the same delay lines."""
    runs = ctx.wan_runs
    prof = "%.0f ms rtt, %g Mbit/s per connection" % (ctx.wan_rtt_ms, ctx.wan_mbit)
    rate = ctx.wan_mbit * 1e6 / 8 if ctx.wan_mbit else 0.0
    w1 = ctx.row("W1", "WAN pull %d x %d MiB image: cp -r vs skopeo docker->dir"
                 % (WAN_LAYERS, WAN_LAYER_MIB),
                 "skopeo copy docker://DELAY_A/REPO:TAG dir:DST; registryfs: cp -r "
                 "MNT/REPO/TAG DST, fresh mount of http://DELAY_A, empty cache dir",
                 target=0.35, strict=False)
    w2 = ctx.row("W2", "WAN push it: cp -r into mount vs skopeo dir->docker",
                 "skopeo copy dir:LOCAL docker://DELAY_A/NEWREPO2:TAG; registryfs: cp -r "
                 "LOCAL MNT/NEWREPO/TAG, fresh -o push mount of http://DELAY_A, empty cache dir",
                 target=0.40, strict=False)
    w3 = ctx.row("W3", "WAN registry A->B (each behind a delay line): cp -r vs skopeo",
                 "skopeo copy docker://DELAY_A/REPO:TAG docker://DELAY_B/NEWREPO2:TAG; "
                 "registryfs: cp -r MNT/DELAY_A/REPO/TAG MNT/DELAY_B/NEWREPO/TAG, root mode, "
                 "fresh -o push mount, empty cache dir", target=0.80, strict=False)
    w4 = ctx.row("W4", "WAN mirror %d images (shared bases) A->B: rsync vs skopeo sync"
                 % WAN_MIRROR_IMAGES,
                 "skopeo sync --src yaml --dest docker (one run, a YAML listing exactly the "
                 "%d tags of DELAY_A) DELAY_B/NEWNS; registryfs: per image mkdir -p "
                 "MNT/DELAY_B/NEWNS/REPO + rsync -a MNT/DELAY_A/NS/REPO/TAG/ "
                 "MNT/DELAY_B/NEWNS/REPO/TAG/, root mode, fresh -o push mount, empty cache dir"
                 % WAN_MIRROR_IMAGES, target=0.80, strict=False)
    w5 = ctx.row("W5", "WAN cold read of a %d MiB blob vs curl (one stream)" % ctx.wan_mib,
                 "curl -sSf -o /dev/null http://DELAY_A/v2/REPO/blobs/DIGEST; registryfs: "
                 "cat MNT/REPO/TAG/HEX, fresh mount of http://DELAY_A, empty cache dir",
                 target=0.40, strict=False)
    rows = (w1, w2, w3, w4, w5)
    try:
        w = wan_images(ctx)
    except Exception as e:      # noqa: BLE001
        for r in rows:
            r.errors["rfs"] = "setup: %s: %s" % (type(e).__name__, e)
        raise
    a = ctx.reg
    b = ctx.registry("registry-wan-b")
    dl_a = dl_b = None
    try:
        dl_a = ctx.delayline(a)
        dl_b = ctx.delayline(b)
        log("  delay lines (%s): A %s -> %s, B %s -> %s; %d runs per row"
            % (prof, dl_a.host, a.host, dl_b.host, b.host, runs))
        for fn, row in zip((wan_pull, wan_push, wan_reg2reg, wan_mirror, wan_read), rows):
            log("  -- %s %s" % (row.key, fn.__name__))
            try:
                fn(ctx, w, runs, a, b, dl_a, dl_b, row)
            except KeyboardInterrupt:
                raise
            except Exception as e:      # noqa: BLE001 -- one broken row, go on
                log(traceback.format_exc())
                row.errors.setdefault("rfs", "%s: %s" % (type(e).__name__, e))
    finally:
        for dl in (dl_a, dl_b):
            if dl is not None:
                dl.stop()
                ctx.delaylines.remove(dl)
        b.stop()
        ctx.registries.remove(b)
    for r in rows:
        r.notes.append("profile: %s, both sides through the same delay line(s); median of %d "
                       "runs (BENCH_WAN_RUNS)" % (prof, runs))
    if rate:
        w1.notes.append("line rate: %.1f s on one connection, %.1f s with %d in parallel" % (
            w.six_bytes / rate, w.six_bytes / rate / WAN_LAYERS, WAN_LAYERS))
        w5.notes.append("line rate of one connection: %.1f s" % (w.big_layer.size / rate))
    for r, nbytes in ((w1, w.six_bytes), (w2, w.six_bytes), (w3, w.six_bytes),
                      (w5, w.big_layer.size)):
        r.notes.append("throughput: registryfs %s, baseline %s" % (
            mibps(r, "rfs", nbytes), mibps(r, "base", nbytes)))


def wan_pull(ctx, w, runs, a, b, dl_a, dl_b, row):
    """W1: cp -r MNT/REPO/TAG DST (fresh mount of DELAY_A) vs skopeo docker://DELAY_A dir:."""
    ref = "docker://%s/%s:%s" % (dl_a.host, w.six_repo, w.tag)
    for i in range(runs):
        m = ctx.mount("wan-pull", dl_a.url)
        dst_cp = os.path.join(ctx.fresh("wan-cp-out"), w.tag)
        dst_sk = os.path.join(ctx.fresh("wan-skopeo-out"), w.tag)
        try:
            def cp():
                t = timed('cp -r "$1" "$2"', m.path(w.six_repo, w.tag), dst_cp)
                check_dir_copy(dst_cp, w.six)
                return t

            def sk():
                t = timed_skopeo("copy", "--src-tls-verify=false", ref, "dir:" + dst_sk)
                check_dir_copy(dst_sk, w.six)
                return t

            for side, fn in alternate(i, cp, sk):
                ctx.sample(row, side, fn)
        finally:
            ctx.unmount(m)
            rmtree(os.path.dirname(dst_cp))
            rmtree(os.path.dirname(dst_sk))


def wan_push(ctx, w, runs, a, b, dl_a, dl_b, row):
    """W2: cp -r LOCAL MNT/NEWREPO/TAG (fresh rw mount of DELAY_A) vs skopeo dir: docker://."""
    counts = {"rfs": [], "base": []}
    for i in range(runs):
        m = None

        def cp():
            nonlocal m
            m = ctx.mount("wan-push", dl_a.url, rw=True)
            repo = "benchw2/rfs%d" % i
            sh('mkdir -p "$1"', m.path(repo))
            mark = a.mark()
            t = timed('cp -r "$1" "$2"', w.src, m.path(repo, w.tag))
            expect_published(a, repo, w.tag, w.six, "cp -r")
            counts["rfs"].append(upload_counts(a, mark))
            return t

        def sk():
            repo = "benchw2/sk%d" % i
            mark = a.mark()
            t = timed_skopeo("copy", "--dest-tls-verify=false", "dir:" + w.src,
                             "docker://%s/%s:%s" % (dl_a.host, repo, w.tag))
            expect_published(a, repo, w.tag, w.six, "skopeo copy")
            counts["base"].append(upload_counts(a, mark))
            return t

        try:
            for side, fn in alternate(i, cp, sk):
                ctx.sample(row, side, fn)
        finally:
            if m is not None:
                ctx.unmount(m)
    row.notes.append("blob uploads per run (upload PUTs / POST+PATCH / mounts): registryfs "
                     "%s, skopeo %s; %d blobs in the image" % (
                         counts["rfs"], counts["base"], len(w.six.blobs)))


def wan_reg2reg(ctx, w, runs, a, b, dl_a, dl_b, row):
    """W3: root mode cp -r MNT/DELAY_A/REPO/TAG MNT/DELAY_B/NEWREPO/TAG vs skopeo
    docker://DELAY_A docker://DELAY_B."""
    copy_between(ctx, row, runs, "benchw3", (dl_a.host, dl_b.host), b, w.six_repo, w.tag, w.six)


# W4, the registryfs side: per image, mkdir -p of the target repository and rsync -a.
WAN_MIRROR_RSYNC = r'''
set -e
src=$1; dst=$2; tag=$3; shift 3
for repo in "$@"; do
  mkdir -p "$dst/$repo"
  rsync -a "$src/$repo/$tag/" "$dst/$repo/$tag/"
done
'''


def wan_mirror(ctx, w, runs, a, b, dl_a, dl_b, row):
    """W4: mirror the 10 images A -> B: rsync per image in a root-mode rw mount vs one
    skopeo sync --src yaml --dest docker of exactly those tags."""
    repos = [r for r, _, _ in w.mirror]
    tag = w.mirror[0][1]
    counts = {"rfs": [], "base": []}
    ydir = ctx.fresh("wan-sync-yaml")
    yml = os.path.join(ydir, "images.yaml")
    with open(yml, "w") as f:       # JSON is YAML
        json.dump({dl_a.host: {"images": {"%s/%s" % (w.mirror_src, r): [t]
                                          for r, t, _ in w.mirror},
                               "tls-verify": False}}, f, indent=2)

    def check(ns, what):
        for r, t, img in w.mirror:
            expect_published(b, "%s/%s" % (ns, r), t, img, what)

    for i in range(runs):
        m = None

        def rs():
            nonlocal m
            m = ctx.mount("wan-mirror", None, rw=True)
            ns = "benchw4r%d" % i
            mark = b.mark()
            t = timed(WAN_MIRROR_RSYNC, m.path(dl_a.host, w.mirror_src),
                      m.path(dl_b.host, ns), tag, *repos)
            check(ns, "rsync -a")
            counts["rfs"].append(upload_counts(b, mark))
            return t

        def sk():
            ns = "benchw4s%d" % i
            mark = b.mark()
            t = timed_skopeo("sync", "--src", "yaml", "--dest", "docker",
                             "--dest-tls-verify=false", yml, "%s/%s" % (dl_b.host, ns))
            check(ns, "skopeo sync")
            counts["base"].append(upload_counts(b, mark))
            return t

        try:
            for side, fn in alternate(i, rs, sk):
                ctx.sample(row, side, fn)
        finally:
            if m is not None:
                ctx.unmount(m)
    row.notes.append("%d images (Docker and OCI alternating), each on the same 2 base layers "
                     "of %d MiB plus its own %d MiB layer: %.1f MiB unique, %.1f MiB one by "
                     "one; every tag checked in B by manifest digest" % (
                         WAN_MIRROR_IMAGES, WAN_MIRROR_BASE_MIB, WAN_MIRROR_TOP_MIB,
                         w.mirror_unique / MiB, w.mirror_total / MiB))
    row.notes.append("blob uploads to B per run (upload PUTs / POST+PATCH / mounts): "
                     "registryfs %s, skopeo %s" % (counts["rfs"], counts["base"]))


def wan_read(ctx, w, runs, a, b, dl_a, dl_b, row):
    """W5: cold cat of the big blob (fresh mount of DELAY_A) vs curl of it (one stream)."""
    layer = w.big_layer
    url = "%s/v2/%s/blobs/%s" % (dl_a.url, w.big_repo, layer.digest)
    for i in range(runs):
        m = ctx.mount("wan-read", dl_a.url)
        try:
            tagdir = m.path(w.big_repo, w.big_tag)
            sh('ls -l "$1" > /dev/null', tagdir)     # manifest lookup is not part of the read
            blob = os.path.join(tagdir, layer.hex)

            def cold():
                t = timed('cat "$1" > /dev/null', blob)
                cached_blob(m, layer)
                return t

            def curl():
                return timed('curl -sSf -o /dev/null "$1"', url)

            for side, fn in alternate(i, cold, curl):
                ctx.sample(row, side, fn)
        finally:
            ctx.unmount(m)


MEASUREMENTS = [
    ("read", m_read),           # 1, 1b, 2, 4
    ("copy", m_copy),           # 3
    ("archive", m_archive),     # 3t
    ("push", m_push),           # 5, 5r
    ("reg2reg", m_reg2reg),     # 6
    ("repush", m_repush),       # 7a, 7b
    ("package", m_package),     # 8, 8b, 8c
    ("select", m_select),       # 9, 9b
    ("wan", m_wan),             # W1-W5
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
    log("time rows: median of %d runs%s, ratio = registryfs time / baseline time (lower is "
        "faster); value rows: max over runs" % (ctx.runs, " (WAN rows W*: %d)" % ctx.wan_runs
                                               if any(r.key.startswith("W") for r in rows)
                                               else ""))
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
    signal.signal(signal.SIGINT, signal.default_int_handler)    # even if started with it ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    rev = subprocess.run(["git", "-C", os.path.dirname(TESTS), "describe", "--always",
                          "--dirty"], capture_output=True, text=True).stdout.strip()
    log("registryfs bench: %s (%s), %d MiB, %d runs, %d CPUs, kernel %s, work dir %s" % (
        registryfs_bin(), rev or "?", a.mib, ctx.runs, os.cpu_count(), platform.release(),
        work))
    if os.environ.get("BENCH_RFS_OPTS"):
        log("registryfs mounts: -o %s" % os.environ["BENCH_RFS_OPTS"])
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
