"""The parallel, streaming data path (issue 8): -o max_transfers / -o part_size, prefetch of a
tag's blobs on the first read, parallel ranged GETs of big blobs (each range once, hashed in
order, the end held back until the digest matches), one download for concurrent readers,
parallel uploads whose failure surfaces at the operation that completes the image, a
registry killed mid-transfer, bounded memory, and byte-identical pulls.

Images live in a module-scoped private registry (`preg`), except where a test stops its
registry (registry_factory). Slow links are a RateLimitedRelay (harness/faults.py) between
registryfs and the registry: paced per connection, so serial and parallel transfers differ in
time, and a registry can be killed while bytes are still flowing. Every access to a mount is
a child process with a timeout.
"""

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from harness import imagegen as ig
from harness import tools, writes
from harness.faults import raw_layer, storage_blobs, verified_cache_files
from harness.mount import Mount
from harness.regclient import RegistryClient
from harness.registry import Registry
from harness.tools import cache_path, files_under, ls, ok, run, sha256sum
from harness.write_fixtures import WriteEnv

KiB = 1 << 10
MiB = 1 << 20
P = 256 * KiB                 # the small part size of the part-count tests
MEM_BLOBS = 16
MEM_MIB = 32


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pimages(tmp_path_factory):
    """Images of this file, in their own BlobStore (generated once)."""
    store = ig.BlobStore(tmp_path_factory.mktemp("pgen") / "blobs")
    small = [ig.make_layer(store, "par/small/%d" % i, files=2) for i in range(4)]
    imgs = {"store": store}
    # prefetch: four small layers and one of 1 MiB
    imgs["pre"] = ig.make_image(store, "par/pre",
                                small + [raw_layer(store, "par/pre/raw", MiB)])
    # an index over two instances (a shared base layer, one own layer each)
    imgs["idx"] = ig.make_multiarch(store, "par/idx", base=small[:1])
    # exact sizes around the part size P
    imgs["parts"] = ig.make_image(store, "par/parts", [
        raw_layer(store, "par/parts/eq", P),            # 1 part
        raw_layer(store, "par/parts/plus1", P + 1),     # 1 part (the tail joins it)
        raw_layer(store, "par/parts/x2h", 2 * P + P // 2),  # 3 parts
        raw_layer(store, "par/parts/x3", 3 * P),        # 3 parts
        raw_layer(store, "par/parts/x10", 10 * P + 7),  # 10 parts (1M parts: 3)
    ])
    # one 4 MiB blob (timing of parallel parts; corruption)
    imgs["one4m"] = ig.make_image(store, "par/one4m", [raw_layer(store, "par/one4m", 4 * MiB)])
    # six real gzip'd tar layers, two of them multi-MiB
    imgs["six"] = ig.make_image(store, "par/six", [
        ig.make_large_layer(store, "par/six/big0", 1.5), small[1],
        ig.make_layer(store, "par/six/a", files=5), ig.make_large_layer(store, "par/six/big1", 2),
        small[2], ig.make_layer(store, "par/six/b")], fmt="docker")
    # for killing a registry mid-transfer: four 12 MiB layers (more than the registry's socket
    # buffers hold: a smaller blob requested before the kill still arrives whole)
    imgs["kill"] = ig.make_image(store, "par/kill", [raw_layer(store, "par/kill/%d" % i, 12 * MiB)
                                                     for i in range(4)])
    # uploads: one 4 MiB layer; four 1 MiB layers
    imgs["up1"] = ig.make_image(store, "par/up1", [raw_layer(store, "par/up1", 4 * MiB)])
    imgs["up4"] = ig.make_image(store, "par/up4", [raw_layer(store, "par/up4/%d" % i, MiB)
                                                   for i in range(4)])
    return imgs


READ_IMAGES = {"pre": "par/pre", "idx": "par/idx", "parts": "par/parts", "one4m": "par/one4m",
               "six": "par/six"}


@pytest.fixture(scope="module")
def preg(tmp_path_factory, pimages):
    """A private registry holding READ_IMAGES at REPO:v1 (storage removed at the end)."""
    reg = Registry(tmp_path_factory.mktemp("preg"))
    reg.start()
    try:
        with RegistryClient(reg.url) as c:
            for name, repo in READ_IMAGES.items():
                c.push(pimages["store"], repo, "v1", pimages[name])
        yield reg
    finally:
        reg.stop()
        shutil.rmtree(reg.storage, ignore_errors=True)


@pytest.fixture(scope="module")
def mem_images(preg):
    """MEM_BLOBS images mem/rNN:v1, each one MEM_MIB MiB incompressible layer written straight
    into preg's storage (no local copy: check readers against the blob's name; the blobs
    share all but their last 16 bytes, which registryfs cannot know or use)."""
    store = ig.BlobStore(os.path.join(preg.workdir, "memgen"))
    repos = ["mem/r%02d" % i for i in range(MEM_BLOBS)]
    descs = storage_blobs(preg, repos, "par/mem", MEM_MIB * MiB)
    out = []
    with RegistryClient(preg.url) as c:
        for repo, desc in zip(repos, descs):
            img = ig.make_image(store, repo, [ig.Layer(desc, "sha256:" + "0" * 64)])
            c.push(store, repo, "v1", img)      # the layer is found by HEAD: not sent again
            out.append((repo + "/v1", img))
    return out


# -- helpers ----------------------------------------------------------------------------------


def blob_gets(reg, since):
    """{digest: number of GETs} of every blob GET after `since` (manifests excluded)."""
    out = {}
    for a in writes.requests(reg, since, method="GET", path_re=r"/blobs/sha256:[0-9a-f]{64}$"):
        d = a.path.rsplit("/", 1)[1]
        out[d] = out.get(d, 0) + 1
    return out


def nparts(size, part):
    """Parts of about `part` bytes (docs/cache.md): a tail shorter than half a part joins the
    part before it instead of costing a request of its own."""
    return 1 if size <= part + part // 2 else (size + part // 2) // part


def vm_hwm_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM for pid %d" % pid)


def parallel_sha256(paths, timeout=180):
    """sha256sum of every path, all at once (one process each, via xargs -P)."""
    r = run(["sh", "-c", 'printf "%s\\n" "$@" | xargs -d "\\n" -n 1 -P "$#" sha256sum', "sh"]
            + [str(p) for p in paths], timeout=timeout)
    sums = {}
    for line in r.stdout.splitlines():
        hx, _, path = line.partition("  ")
        sums.setdefault(path, []).append(hx)
    return r, sums


def open_without_read(paths):
    """open(O_RDONLY) + close of each path in a child; returns the child's Result."""
    code = "import sys\nfor p in sys.argv[1:]:\n    open(p, 'rb').close()\n"
    return run([tools.PYTHON, "-c", code] + [str(p) for p in paths], timeout=60)


class Bg:
    """A child process in the background (stopped by PID in close())."""

    def __init__(self, cmd):
        self.p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.t0 = time.monotonic()
        self.t_exit = None
        self.out = self.err = ""
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        self.out, self.err = self.p.communicate()
        self.t_exit = time.monotonic()

    def running(self):
        return self.p.poll() is None

    def wait(self, timeout):
        self._reader.join(timeout)
        return self.t_exit is not None

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self._reader.join(10)

    def __str__(self):
        return "$ %s\n[exit %s]\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.p.args), self.p.returncode, self.out[-2000:], self.err[-2000:])


def expect_start_failure(tmp_path, url, options):
    """Run registryfs (daemon mode) with options: it must fail to start, say why, not mount."""
    mp = tmp_path / "mnt"
    mp.mkdir(exist_ok=True)
    m = Mount(mp, url, workdir=tmp_path, foreground=False, options=options)
    r = run(m.argv(), timeout=30)
    try:
        assert r.returncode not in (0, -9), r
        assert not tools.mounted(mp), "mounted although the start should fail"
    finally:
        m.stop()
    return r


# -- the relay itself -------------------------------------------------------------------------

def test_relay_paces_each_connection_and_closes(relay_factory):
    """Harness self-check: 1 MiB through a 2 MiB/s relay takes ~0.5 s, four connections at
    once take about as long as one (not 2 s), and stop() leaves nothing open."""
    payload = os.urandom(MiB)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=lambda c=c: (c.recv(16), c.sendall(payload), c.close()),
                             daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    relay = relay_factory(srv.getsockname()[1], 2 * MiB)
    try:
        def fetch(out):
            with socket.create_connection(("127.0.0.1", relay.port), timeout=20) as s:
                s.sendall(b"hi")
                got = bytearray()
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
                out.append(bytes(got))

        outs = []
        t0 = time.monotonic()
        ths = [threading.Thread(target=fetch, args=(outs,)) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(30)
        took = time.monotonic() - t0
        assert outs == [payload] * 4
        assert 0.45 <= took < 1.5, took
        assert relay.bytes_down == 4 * MiB and relay.connections == 4
    finally:
        stop.set()
        srv.close()
        t.join(5)
    relay.stop()
    assert relay.open_now == 0 and all(s.fileno() == -1 for s in relay._socks)


# -- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("opts", [
    {"max_transfers": 1, "part_size": 65536}, {"max_transfers": 64, "part_size": "64K"},
    {"part_size": "8M"}, {"max_transfers": 3, "part_size": "1G"},
], ids=lambda o: ",".join("%s=%s" % kv for kv in o.items()))
def test_transfer_options_are_accepted(mount_factory, preg, pimages, opts):
    """The bounds (1, 64, 64K) and the suffixes K/M/G (and plain bytes) mount and read."""
    m = mount_factory(preg.url, options=opts)
    img = pimages["parts"]
    assert tools.read_bytes(m.path("par/parts/v1/manifest.json")) == img.manifest
    assert sha256sum(m.path("par/parts/v1", img.layers[1].hex)) == img.layers[1].hex


@pytest.mark.parametrize("opt,value", [
    ("max_transfers", "0"), ("max_transfers", "65"), ("max_transfers", "-1"),
    ("max_transfers", "abc"), ("max_transfers", ""), ("max_transfers", "4x"),
    ("part_size", "65535"), ("part_size", "63K"), ("part_size", "0"), ("part_size", "abc"),
    ("part_size", "8Q"), ("part_size", ""), ("part_size", "-8M"),
])
def test_bad_transfer_option_is_a_startup_error(tmp_path, preg, opt, value):
    """Out of range or unparsable: the start fails with a message naming the option (not
    libfuse's "unknown option")."""
    r = expect_start_failure(tmp_path, preg.url, {opt: value})
    err = r.stderr
    assert opt in err, "the error does not name %s:\n%s" % (opt, r)
    assert "unknown option" not in err.lower(), "%s is not a known option:\n%s" % (opt, r)


# -- prefetch on read -------------------------------------------------------------------------

def _blob_files(obj):
    """Blob descriptors shown in a tag directory of obj (every instance of an index)."""
    return list(obj.blobs)


@pytest.mark.parametrize("name", ["pre", "idx"])
def test_metadata_access_starts_no_blob_download(mount_factory, preg, pimages, name):
    obj = pimages[name]
    m = mount_factory(preg.url)
    tag = m.path(READ_IMAGES[name], "v1")
    ls(m.path(READ_IMAGES[name]))
    mark = writes.mark(preg)
    files = sorted(ig.dir_files(obj))
    ok(["ls", "-l", tag])
    ok(["stat"] + [os.path.join(tag, f) for f in files])
    ok(["cat", os.path.join(tag, "manifest.json"), os.path.join(tag, "version")])
    if isinstance(obj, ig.Index):
        ok(["cat"] + [os.path.join(tag, i.hex + ".manifest.json") for i in obj.images])
    r = open_without_read([os.path.join(tag, b.hex) for b in _blob_files(obj)])
    assert r.returncode == 0, r
    time.sleep(1.5)             # a background download would have started by now
    gets = blob_gets(preg, mark)
    blobs = {b.digest for b in _blob_files(obj)}
    assert not (set(gets) & blobs), "blob GETs without a read: %s" % gets
    cached = [b.hex for b in _blob_files(obj)
              if os.path.exists(cache_path(m, preg.host, b.digest))]
    assert cached == [], cached


def _wait_all_cached(m, host, blobs, timeout):
    def done():
        return all(os.path.exists(cache_path(m, host, b.digest)) for b in blobs)
    return tools.wait_for(done, timeout, interval=0.1)


@pytest.mark.parametrize("name", ["pre", "idx"])
def test_first_read_prefetches_the_other_blobs_of_the_tag(mount_factory, preg, pimages, name):
    obj = pimages[name]
    m = mount_factory(preg.url)
    tag = m.path(READ_IMAGES[name], "v1")
    assert sorted(ls(tag)) == sorted(ig.dir_files(obj))
    first = obj.layers[0] if isinstance(obj, ig.Image) else obj.images[0].layers[-1]
    mark = writes.mark(preg)
    r = run(["head", "-c", "1", os.path.join(tag, first.hex)], text=False)
    assert r.returncode == 0 and len(r.stdout) == 1, r
    blobs = _blob_files(obj)
    _wait_all_cached(m, preg.host, blobs, 10)
    have = verified_cache_files(m.cache_dir)
    missing = [b.hex for b in blobs if b.hex not in have]
    assert missing == [], "not prefetched within 10 s of the first read: %s\n%s" % (
        missing, writes.describe(preg, m, mark))
    bad = [hx for hx, good in have.items() if not good]
    assert bad == [], "cache files not matching their digest: %s" % bad
    # each blob was fetched once, and reading them all now fetches nothing more
    ok(["cat"] + [os.path.join(tag, b.hex) for b in blobs], text=False)
    gets = blob_gets(preg, mark)
    assert {b.digest: gets.get(b.digest, 0) for b in blobs} == {b.digest: 1 for b in blobs}


def test_prefetch_is_limited_to_the_listed_instance(mount_factory, preg, pimages):
    """With -o platform= the directory lists one instance: only its blobs are prefetched."""
    obj = pimages["idx"]
    inst = obj.for_platform("linux", "arm64", "v8")
    others = [b for b in obj.blobs if b not in inst.blobs]
    assert others
    m = mount_factory(preg.url, options={"platform": "linux/arm64/v8"})
    tag = m.path("par/idx/v1")
    assert sorted(ls(tag)) == sorted(ig.dir_files(inst))
    mark = writes.mark(preg)
    ok(["head", "-c", "1", os.path.join(tag, inst.layers[-1].hex)], text=False)
    assert _wait_all_cached(m, preg.host, inst.blobs, 10), writes.describe(preg, m, mark)
    time.sleep(1)
    gets = blob_gets(preg, mark)
    assert not ({b.digest for b in others} & set(gets)), gets


# -- parallel ranged GETs ---------------------------------------------------------------------

def test_big_blobs_are_fetched_as_ranged_parts_each_once(mount_factory, preg, pimages,
                                                         relay_factory):
    """part_size=256K: each blob is about size/256K GETs whose ranges tile it exactly (blobs
    of at most 1.5 x 256K, config included, are one GET; a short tail joins the last part)."""
    obj = pimages["parts"]
    relay = relay_factory(preg.port, 512 * MiB)        # not slowed: only to see Range headers
    m = mount_factory(relay.url, options={"part_size": "256K"})
    tag = m.path("par/parts/v1")
    ls(tag)
    mark = writes.mark(preg)
    for b in obj.blobs:
        assert sha256sum(os.path.join(tag, b.hex)) == b.hex
    gets = blob_gets(preg, mark)
    want = {b.digest: nparts(b.size, P) for b in obj.blobs}
    assert {d: gets.get(d, 0) for d in want} == want, writes.describe(preg, m, mark)
    for b in obj.blobs:
        rs = relay.ranges(b.digest, b.size)
        assert all(isinstance(a, int) for a, _ in rs), rs
        rs.sort()
        assert rs[0][0] == 0 and rs[-1][1] == b.size - 1, (b.size, rs)
        for (a0, a1), (b0, _) in zip(rs, rs[1:]):
            assert b0 == a1 + 1, "ranges overlap or leave a gap: %s" % rs
        assert all(hi - lo + 1 < P + P // 2 for lo, hi in rs), (b.size, rs)


@pytest.mark.parametrize("n", [2, 4])
def test_parts_are_fetched_in_parallel_up_to_max_transfers(mount_factory, preg, pimages,
                                                           relay_factory, n):
    """A 4 MiB blob, 512K parts, 512 KiB/s per connection: serially that is >= 8 s; with n
    transfers at once about 8/n s, and never faster (at most n connections carry data)."""
    obj = pimages["one4m"]
    layer = obj.layers[0]
    rate = 512 * KiB
    relay = relay_factory(preg.port, rate)
    m = mount_factory(relay.url, options={"part_size": "512K", "max_transfers": n})
    tag = m.path("par/one4m/v1")
    ls(tag)
    r = run(["sha256sum", os.path.join(tag, layer.hex)], timeout=120)
    assert r.returncode == 0 and r.stdout.split()[0] == layer.hex, r
    serial = layer.size / rate
    assert r.elapsed >= 0.9 * serial / n, \
        "%.2fs: faster than %d transfers at once allow (%.2fs)" % (r.elapsed, n, serial / n)
    limit = serial * (0.8 if n == 2 else 0.55)
    assert r.elapsed <= limit, "%.2fs for %.0fs of serial transfer with max_transfers=%d " \
        "(limit %.2fs): parts not fetched in parallel" % (r.elapsed, serial, n, limit)
    assert len(relay.blob_gets(layer.digest)) == nparts(layer.size, 512 * KiB)


@pytest.mark.parametrize("opts,parts", [
    ({}, 1), ({"part_size": "8M"}, 1), ({"part_size": "1M"}, 3),
], ids=["default", "part8M", "part1M"])
def test_ten_readers_share_one_download(mount_factory, preg, pimages, opts, parts):
    """Ten concurrent readers of one 2.5 MiB blob: one GET when it is one part, else one GET
    per part."""
    obj = pimages["parts"]
    layer = obj.layers[4]
    assert nparts(layer.size, MiB) == 3
    m = mount_factory(preg.url, options=opts)
    tag = m.path("par/parts/v1")
    ls(tag)
    mark = writes.mark(preg)
    p = os.path.join(tag, layer.hex)
    r, sums = parallel_sha256([p] * 10)
    assert r.returncode == 0 and sums.get(p) == [layer.hex] * 10, r
    gets = blob_gets(preg, mark).get(layer.digest, 0)
    assert gets == parts, "%d GETs of %s, want %d\n%s" % (
        gets, layer.hex, parts, writes.describe(preg, m, mark))


@pytest.mark.parametrize("opts", [{}, {"part_size": "256K"}], ids=["default", "part256K"])
def test_corrupt_blob_is_eio_and_not_cached(mount_factory, preg, pimages, proxy_factory, opts):
    """Every blob GET (every part) has one byte flipped: the reader gets EIO, never the whole
    blob, and no data file is stored."""
    obj = pimages["one4m"]
    layer = obj.layers[0]
    p = proxy_factory(preg.host, corrupt_blobs=True)
    m = mount_factory(p.url, options=opts)
    tag = m.path("par/one4m/v1")
    assert tools.read_bytes(os.path.join(tag, "manifest.json")) == obj.manifest
    r = run(["cat", os.path.join(tag, layer.hex)], text=False, timeout=120)
    assert r.returncode != 0 and b"Input/output error" in r.stderr, r
    assert len(r.stdout) < layer.size, "the reader got all %d bytes of a corrupt blob" % len(
        r.stdout)
    assert layer.digest in p.corrupted
    if opts:
        ngets = len([1 for meth, path in p.requests
                     if meth == "GET" and path.endswith("/blobs/" + layer.digest)])
        assert ngets > 1, "one GET of a 4 MiB blob with 256K parts: %s" % p.requests
    assert not os.path.exists(cache_path(m, p.host, layer.digest)), files_under(m.cache_dir)
    assert tools.errno_of("read", os.path.join(tag, layer.hex), timeout=120) == "EIO"
    assert not os.path.exists(cache_path(m, p.host, layer.digest))


# -- byte-identical pulls ---------------------------------------------------------------------

@pytest.mark.parametrize("opts", [
    {}, {"max_transfers": 4, "part_size": "256K"}, {"max_transfers": 1, "part_size": "1M"},
], ids=["default", "parallel-256K", "serial-1M"])
def test_cp_r_pull_is_byte_identical(mount_factory, preg, pimages, tmp_path, opts):
    obj = pimages["six"]
    assert len(obj.layers) == 6
    want = ig.write_dir(pimages["store"], obj, str(tmp_path / "want"))
    m = mount_factory(preg.url, options=opts)
    dst = tmp_path / "got"
    r = run(["cp", "-r", m.path("par/six/v1"), str(dst)], timeout=120)
    assert r.returncode == 0, r
    r = run(["diff", "-r", want, str(dst)])
    assert r.returncode == 0, r
    for b in obj.blobs:
        assert sha256sum(str(dst / b.hex)) == b.hex


# -- memory -----------------------------------------------------------------------------------

# ASan's shadow memory and quarantine multiply RSS: the plain pass measures the bound.
sanitized = pytest.mark.skipif("asan" in os.path.basename(os.environ.get("REGISTRYFS_BIN", "")),
                               reason="RSS of a sanitized binary says nothing about the bound")


@sanitized
def test_memory_one_reader_of_a_large_blob(mount_factory, preg, mem_images):
    """Default options: one reader of a 32 MiB blob."""
    path, img = mem_images[0]
    m = mount_factory(preg.url)
    try:
        assert sha256sum(m.path(path, img.layers[0].hex)) == img.layers[0].hex
        hwm = vm_hwm_mib(m.proc.pid)
        assert hwm <= 64, "peak RSS %.1f MiB > 64 MiB for one reader" % hwm
    finally:
        m.stop()
        shutil.rmtree(m.cache_dir, ignore_errors=True)


@sanitized
def test_memory_sixteen_readers_of_sixteen_blobs(mount_factory, preg, mem_images):
    """16 blobs of 4 parts each (part_size=8M), max_transfers=8 parts in flight."""
    m = mount_factory(preg.url, options={"part_size": "8M"})
    try:
        paths = [m.path(path, img.layers[0].hex) for path, img in mem_images]
        r, sums = parallel_sha256(paths, timeout=300)
        assert r.returncode == 0, r
        for p, (_, img) in zip(paths, mem_images):
            assert sums.get(p) == [img.layers[0].hex], (p, sums.get(p))
        hwm = vm_hwm_mib(m.proc.pid)
        assert hwm <= 128, "peak RSS %.1f MiB > 128 MiB for %d readers" % (hwm, len(paths))
    finally:
        m.stop()
        shutil.rmtree(m.cache_dir, ignore_errors=True)


# -- a registry killed mid-transfer -----------------------------------------------------------

def _kill_when(reg, bg, cond, what, timeout=60):
    """Wait until cond() (bytes are flowing) with bg still running, then kill reg."""
    assert tools.wait_for(lambda: cond() or not bg.running(), timeout, interval=0.02), \
        "no %s within %ss" % (what, timeout)
    assert bg.running(), "finished before the registry could be killed:\n%s" % bg
    reg.stop()
    return time.monotonic()


@pytest.mark.parametrize("opts", [{}, {"max_transfers": 4, "part_size": "1M"}],
                         ids=["default", "parallel-1M"])
def test_registry_killed_mid_pull(registry_factory, relay_factory, mount_factory, pimages,
                                  tmp_path, opts):
    obj = pimages["kill"]
    reg = registry_factory()
    with RegistryClient(reg.url) as c:
        c.push(pimages["store"], "kill/app", "v1", obj)
    relay = relay_factory(reg.port, MiB)
    m = mount_factory(relay.url, options=opts)
    tag = m.path("kill/app/v1")
    ls(tag)
    bg = Bg(["cp", "-r", tag, str(tmp_path / "dst")])
    try:
        t_kill = _kill_when(reg, bg, lambda: relay.bytes_down >= MiB, "blob bytes")
        assert bg.wait(60), "cp still running 60 s after the registry was killed"
    finally:
        bg.close()
    took = bg.t_exit - t_kill
    assert bg.p.returncode != 0, bg
    assert "Input/output error" in bg.err, bg
    assert took <= 15, "cp ended %.1f s after the registry was killed" % took
    # whatever was stored is verified
    bad = [hx for hx, good in verified_cache_files(m.cache_dir).items() if not good]
    assert bad == [], bad


@pytest.mark.parametrize("opts", [{}, {"max_transfers": 4}], ids=["default", "parallel"])
def test_registry_killed_mid_push(registry_factory, relay_factory, mount_factory, pimages,
                                  tmp_path, opts):
    obj = pimages["kill"]
    reg = registry_factory()
    relay = relay_factory(reg.port, MiB)
    m = mount_factory(relay.url, options=dict(opts, push=True), debug=True)
    src = writes.source_dir(pimages["store"], obj, tmp_path / "src" / "v1")
    ok(["mkdir", "-p", m.path("kill/app")])
    mark = writes.mark(reg)
    bg = Bg(["cp", "-r", src, m.path("kill/app/v1")])
    try:
        t_kill = _kill_when(reg, bg, lambda: relay.bytes_up >= MiB, "upload bytes")
        assert bg.wait(60), "cp still running 60 s after the registry was killed"
    finally:
        bg.close()
    took = bg.t_exit - t_kill
    assert bg.p.returncode != 0, bg
    assert took <= 15, "cp ended %.1f s after the registry was killed" % took
    reg.start()
    with RegistryClient(reg.url) as c:
        for pause in (1, 0):    # not published, and not later either
            assert writes.tags(c, "kill/app") == [], writes.describe(reg, m, mark)
            assert writes.pushed_digest(reg, "kill/app", "v1") is None
            time.sleep(pause)
    assert writes.manifest_puts(reg, mark) == [], writes.describe(reg, m, mark)


# -- parallel uploads -------------------------------------------------------------------------

def _rw_env(registry_factory, relay_factory, mount_factory, tmp_path, store, up_rate,
            options=None, **relay_kw):
    reg = registry_factory()
    relay = relay_factory(reg.port, 256 * MiB, up_bytes_per_sec=up_rate, **relay_kw)
    mnt = mount_factory(relay.url, start=False, options=dict(options or {}, push=True),
                        debug=True)
    client = RegistryClient(reg.url)
    return WriteEnv(reg, client, mnt, tmp_path, store), relay


def test_blob_close_returns_before_its_upload(registry_factory, relay_factory, mount_factory,
                                              pimages, tmp_path):
    """Uploads at 1 MiB/s: the close() of a 4 MiB blob returns once it is verified (well
    before its >= 4 s upload); the close() of manifest.json (completing the image) waits for
    the upload and the manifest PUT, so the tag is there when it returns."""
    obj = pimages["up1"]
    w, relay = _rw_env(registry_factory, relay_factory, mount_factory, tmp_path,
                       pimages["store"], MiB)
    src = w.source(obj, "up1")
    w.mkdirs("up/one/v1")
    tag = w.path("up/one/v1")
    layer = obj.layers[0]
    t0 = time.monotonic()
    res = writes.write_image_files(src, tag, ["version", layer.hex])
    t_blob = time.monotonic() - t0
    assert res == ["OK", "OK"], (res, w.describe())
    assert t_blob < 2.0, "writing + closing the blob took %.2f s: the close waited for the " \
        "upload (%.1f s at 1 MiB/s)" % (t_blob, layer.size / MiB)
    res = writes.write_image_files(src, tag, [obj.config.hex, "manifest.json"])
    t_all = time.monotonic() - t0
    assert res == ["OK", "OK"], (res, w.describe())
    w.assert_published("up/one", "v1", obj)
    assert t_all >= 0.9 * layer.size / MiB, "published after %.2f s, before the upload could " \
        "have finished (relay not pacing?)" % t_all


@pytest.mark.parametrize("n", [1, 4, None], ids=["max1", "max4", "default"])
def test_uploads_run_in_parallel(registry_factory, relay_factory, mount_factory, pimages,
                                 tmp_path, n):
    """Four 1 MiB layers uploaded at 1 MiB/s per connection: >= 4 s one at a time, ~1 s
    in parallel. cp -r exits 0 only once the image is published."""
    obj = pimages["up4"]
    opts = {} if n is None else {"max_transfers": n}
    w, relay = _rw_env(registry_factory, relay_factory, mount_factory, tmp_path,
                       pimages["store"], MiB, options=opts)
    src = w.source(obj, "up4")
    r = w.push("cp -r", src, "up/four", "v1")
    assert r.returncode == 0, "%s\n%s" % (r, w.describe())
    w.assert_published("up/four", "v1", obj)
    serial = sum(l.size for l in obj.layers) / MiB
    if n == 1:
        assert r.elapsed >= 0.9 * serial, \
            "%.2f s with max_transfers=1: uploads overlapped" % r.elapsed
    else:
        assert r.elapsed <= 0.65 * serial, "cp -r took %.2f s (serial: %.1f s): uploads did " \
            "not run in parallel" % (r.elapsed, serial)


@pytest.mark.parametrize("tool", ["cp -r", "rsync -a", "tar -x", "skopeo dir:"])
def test_failed_upload_fails_the_tool_and_publishes_nothing(registry_factory, relay_factory,
                                                            mount_factory, pimages, tmp_path,
                                                            tool):
    obj = pimages["up4"]
    bad = obj.layers[2]
    w, relay = _rw_env(registry_factory, relay_factory, mount_factory, tmp_path,
                       pimages["store"], 256 * MiB, options={"retries": 1},
                       fail_uploads_of=[bad.digest])  # one retry: the failure is permanent
    src = w.source(obj, "up4")
    mark = w.mark()
    r = w.push(tool, src, "fail/app", "v1")
    assert relay.refused, "the upload of %s was never attempted\n%s" % (bad.hex, w.describe())
    assert r.returncode != 0, "%s\n%s" % (r, w.describe(mark))
    w.assert_not_published("fail/app", "v1", mark)
    assert writes.manifest_puts(w.reg, mark) == [], w.describe(mark)


@pytest.mark.parametrize("how", ["close", "rename"])
def test_failed_upload_surfaces_at_the_completing_operation(registry_factory, relay_factory,
                                                            mount_factory, pimages, tmp_path,
                                                            how):
    """Every blob's commit succeeds (verified; its upload is not waited for); the commit that
    completes the image returns the failed upload; nothing is published.
    close: skopeo's order, files written under their names (manifest.json's close completes);
    rename: rsync's way, sorted names written as .NAME.XXXXXX and renamed (version's rename
    completes)."""
    obj = pimages["up4"]
    bad = obj.layers[2]
    w, relay = _rw_env(registry_factory, relay_factory, mount_factory, tmp_path,
                       pimages["store"], 256 * MiB, options={"retries": 1},
                       fail_uploads_of=[bad.digest])  # one retry: the failure is permanent
    src = w.source(obj, "up4")
    w.mkdirs("fail2/app/v1")
    tag = w.path("fail2/app/v1")
    mark = w.mark()
    if how == "close":
        names = writes.skopeo_order(obj)
        res = writes.write_image_files(src, tag, names)
    else:
        names = sorted(os.listdir(src))
        assert names[-1] == "version"
        ops = []
        for n in names:
            tmp = os.path.join(tag, ".%s.Xy12Ab" % n)
            ops += [("write", tmp, os.path.join(src, n)), ("rename", tmp, os.path.join(tag, n))]
        res = writes.write_files(ops)
        assert res[0::2] == ["OK"] * len(names), (list(zip(names, res[0::2])), w.describe(mark))
        res = res[1::2]
    assert relay.refused, w.describe(mark)
    assert res[:-1] == ["OK"] * (len(names) - 1), (list(zip(names, res)), w.describe(mark))
    assert res[-1] != "OK", (list(zip(names, res)), w.describe(mark))
    w.assert_not_published("fail2/app", "v1", mark)
    assert writes.manifest_puts(w.reg, mark) == [], w.describe(mark)
