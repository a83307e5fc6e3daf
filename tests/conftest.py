"""Fixtures for the registryfs integration suite (see tests/README.md).

Session scope:
  samples        the standard sample set (harness/samples.py), generated once
  registry       docker-registry on 127.0.0.1:<free port> with `samples` pushed
  client         harness RegistryClient for `registry`
  skopeo_dir     skopeo_dir(ref, platform=None) -> path of `skopeo copy [--all] docker://... dir:`
                 (computed once per ref/platform)
Function scope:
  mount_factory  mount_factory(registry_url_or_None, **Mount kwargs) -> started Mount;
                 every mount is unmounted (and its process reaped) at teardown, pass or fail
  mnt            a started Mount of `registry` (fresh cache dir per test)
  registry_factory  registry_factory(**Registry kwargs) -> a started private Registry
  proxy_factory  proxy_factory(upstream, **Proxy kwargs) -> a started Proxy
  relay_factory  relay_factory(upstream_port, bytes_per_sec, **kw) -> a started
                 RateLimitedRelay (harness/faults.py), stopped at teardown
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tools  # noqa: E402
from harness.mount import Mount, MountError  # noqa: E402
from harness.faults import RateLimitedRelay  # noqa: E402
from harness.proxy import Proxy  # noqa: E402
from harness.regclient import RegistryClient  # noqa: E402
from harness.registry import Registry  # noqa: E402
from harness.samples import build_samples  # noqa: E402


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def samples(session_dir):
    return build_samples(session_dir / "gen")


@pytest.fixture(scope="session")
def registry(session_dir, samples):
    reg = Registry(session_dir / "registry")
    reg.start()
    try:
        with RegistryClient(reg.url) as c:
            samples.push(c)
        reg.samples = samples
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def client(registry):
    with RegistryClient(registry.url) as c:
        yield c


@pytest.fixture(scope="session")
def skopeo_dir(registry, session_dir):
    done = {}

    def get(ref, platform=None):
        key = (ref.repo, ref.tag, platform)
        if key not in done:
            name = "%s_%s_%s" % (ref.repo.replace("/", "_"), ref.tag,
                                 "all" if platform is None else "-".join(platform))
            dest = session_dir / "skopeo" / name
            dest.parent.mkdir(exist_ok=True)
            args = ["copy", "--src-tls-verify=false"]
            if platform is None:
                args.append("--all")
            else:
                args += ["--override-os", platform[0], "--override-arch", platform[1]]
                if len(platform) > 2:
                    args += ["--override-variant", platform[2]]
            args += ["docker://%s/%s:%s" % (registry.host, ref.repo, ref.tag), "dir:%s" % dest]
            tools.skopeo(*args, check=True)
            done[key] = str(dest)
        return done[key]

    return get


@pytest.fixture
def mount_factory(tmp_path):
    mounts = []
    counter = [0]

    def make(registry_url, start=True, **kw):
        counter[0] += 1
        base = tmp_path / ("m%d" % counter[0])
        base.mkdir()
        kw.setdefault("cache_dir", base / "cache")
        kw.setdefault("log_file", base / "registryfs.log")
        m = Mount(base / "mnt", registry_url, workdir=base, **kw)
        mounts.append(m)
        if start:
            err = None
            try:
                m.start()
            except MountError as e:
                err = str(e)
            if err:
                pytest.fail(err, pytrace=False)
        return m

    yield make
    errors = []
    for m in reversed(mounts):
        try:
            m.stop()
        except Exception as e:          # keep unmounting the others
            errors.append("%s: %s" % (m.mountpoint, e))
        if m.is_mounted:
            errors.append("still mounted after stop: " + m.mountpoint)
        reports = m.sanitizer_reports()
        if reports:
            errors.append("sanitizer report from %s (see %s):\n%s"
                          % (m.mountpoint, m.stderr_path, "\n".join(reports[:20])))
    assert not errors, "\n".join(errors)


@pytest.fixture
def mnt(mount_factory, registry):
    return mount_factory(registry.url)


@pytest.fixture
def registry_factory(tmp_path):
    regs = []

    def make(**kw):
        reg = Registry(tmp_path / ("reg%d" % len(regs)), **kw)
        regs.append(reg)
        reg.start()
        return reg

    yield make
    for r in regs:
        r.stop()


@pytest.fixture
def proxy_factory():
    proxies = []

    def make(upstream, **kw):
        p = Proxy(upstream, **kw).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()


def pytest_sessionfinish(session, exitstatus):
    """Last line of defence: nothing of ours may stay mounted."""
    base = str(session.config._tmp_path_factory.getbasetemp()) \
        if hasattr(session.config, "_tmp_path_factory") else None
    if not base:
        return
    with open("/proc/mounts") as f:
        left = [l.split()[1] for l in f if l.split()[1].startswith(base)]
    for mp in left:
        tools.run(["fusermount3", "-u", "-z", mp], timeout=10)


@pytest.fixture
def relay_factory():
    relays = []

    def make(upstream_port, bytes_per_sec, **kw):
        r = RateLimitedRelay(upstream_port, bytes_per_sec, **kw).start()
        relays.append(r)
        return r

    yield make
    for r in relays:
        r.stop()
