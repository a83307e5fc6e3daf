"""registryfs as an administrator runs it (issue 10, parts 3 and 4): installed by `make
install`, mounted by mount(8) (`mount -t fuse.registryfs`, an fstab line), writes an explicit
choice (`-o push`, `-o allow_delete`), a mount point that holds files refused.

mount(8) always passes `rw`: it must not make the mount writable, so a `defaults` fstab line is
read-only. The binary is installed by `make install` into /usr/local, where mount(8)'s own PATH finds it
(under the ASan pass, REGISTRYFS_BIN is installed so the sanitizer still watches). mount(8)'s daemon is found by the mount point in its command line and stopped by pid.
"""

import os
import re
import shutil

import pytest

from harness import tools
from harness.mount import REPO_ROOT, Mount, MountError, registryfs_bin
from harness.tools import errno_of, ls, read_bytes, run


@pytest.fixture(scope="module")
def prefix():
    """`make install` with its default PREFIX, /usr/local: mount(8) runs helpers with its own
    PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:...), so a private prefix is not found.
    Under the ASan pass, the sanitized binary is what gets installed."""
    root = "/usr/local"
    r = run(["make", "-s", "install"], cwd=REPO_ROOT, timeout=300)
    assert r.returncode == 0, r
    installed = os.path.join(root, "bin", "registryfs")
    if os.path.realpath(registryfs_bin()) != os.path.realpath(os.path.join(REPO_ROOT,
                                                                           "registryfs")):
        shutil.copy(registryfs_bin(), installed)
    assert os.access(installed, os.X_OK)
    assert os.path.exists(os.path.join(root, "share", "man", "man1", "registryfs.1"))
    return root


class SystemMount(Mount):
    """A mount made by mount(8): started by `mount ...`, stopped like any daemon mount."""

    def __init__(self, mountpoint, prefix, **kw):
        super().__init__(mountpoint, foreground=False, **kw)

    def mount(self, argv):
        os.makedirs(self.mountpoint, exist_ok=True)
        r = run(argv, timeout=60)
        self.daemon_pid = self._find_installed_daemon()
        if self.daemon_pid:
            self.pids.append(self.daemon_pid)
        return r

    def _find_installed_daemon(self):
        mp = self.mountpoint.encode()
        for d in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"registryfs") and mp in argv:
                return int(d)
        return None


@pytest.fixture
def system_mount(tmp_path, prefix):
    made = []

    def make(name="mnt"):
        m = SystemMount(str(tmp_path / name), prefix, workdir=str(tmp_path))
        made.append(m)
        return m
    yield make
    for m in made:
        m.stop()
    for m in made:
        reports = m.sanitizer_reports()
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)


def mount_options(m, *extra):
    return ",".join(["cache_dir=" + m.cache_dir, "log_file=" + m.log_file] + list(extra))


def mount_flags(m):
    """The options column of the mount's /proc/mounts line, as a list."""
    entry = tools.mounted(m.mountpoint)
    assert entry is not None, m.describe()
    return entry[3].split(",")


def assert_read_only(m, ref):
    assert read_bytes(m.path(ref.path, "manifest.json")) == ref.obj.manifest
    assert errno_of("mkdir", m.path(ref.repo, "new-tag")) == "EROFS"
    r = run(["rm", "-r", m.path(ref.path)])
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r


# -- mount(8) ---------------------------------------------------------------------------------

def mount_t(m, source):
    """`mount -t fuse.registryfs SOURCE MNT -o cache_dir=...,log_file=...`, asserted."""
    r = m.mount(["mount", "-t", "fuse.registryfs", source, m.mountpoint,
                 "-o", mount_options(m)])
    assert r.returncode == 0, "%s\n%s" % (r, m.describe())


def test_mount_t_fuse_registryfs_is_read_only(system_mount, registry, samples):
    """`mount -t fuse.registryfs URL MNT`: mount(8) passes "rw", which enables nothing."""
    ref = samples["oci"]
    m = system_mount()
    mount_t(m, registry.url)
    assert "ro" in mount_flags(m), mount_flags(m)
    assert_read_only(m, ref)


def test_fstab_defaults_line_is_read_only(system_mount, registry, samples, tmp_path):
    """An fstab line with `defaults` (and the usual noauto,_netdev): `mount MNT` with it."""
    ref = samples["docker"]
    m = system_mount()
    fstab = tmp_path / "fstab"
    fstab.write_text("%s %s fuse.registryfs defaults,noauto,_netdev,%s 0 0\n"
                     % (registry.url, m.mountpoint, mount_options(m, "ttl=5")))
    r = m.mount(["mount", "--fstab", str(fstab), m.mountpoint])
    assert r.returncode == 0, "%s\n%s" % (r, m.describe())
    assert ref.tag in ls(m.path(ref.repo))
    assert_read_only(m, ref)


def test_fstab_push_line_is_writable(system_mount, registry_factory, tmp_path):
    """`push` in the fstab options: a writable mount (mkdir of a new repository works)."""
    reg = registry_factory()
    m = system_mount()
    fstab = tmp_path / "fstab"
    fstab.write_text("%s %s fuse.registryfs push,noauto,%s 0 0\n"
                     % (reg.url, m.mountpoint, mount_options(m)))
    r = m.mount(["mount", "--fstab", str(fstab), m.mountpoint])
    assert r.returncode == 0, "%s\n%s" % (r, m.describe())
    assert "rw" in mount_flags(m), mount_flags(m)
    tools.ok(["mkdir", "-p", m.path("ns", "repo")])
    assert ls(m.path("ns")) == ["repo"]


def test_mount_t_of_a_storage_tree(system_mount, registry, samples):
    """SOURCE a storage tree path: docker-registry's own storage, read-only."""
    ref = samples["oci"]
    m = system_mount()
    mount_t(m, registry.storage)
    assert read_bytes(m.path(ref.path, "manifest.json")) == ref.obj.manifest
    assert errno_of("mkdir", m.path(ref.repo, "new-tag")) == "EROFS"


def test_installed_man_page_renders(prefix):
    r = run(["man", "-l", "-Tutf8", os.path.join(prefix, "share/man/man1/registryfs.1")],
            env=dict(os.environ, MANWIDTH="100"))
    text = re.sub(".\b", "", r.stdout)           # man's bold and underline overstrikes
    assert r.returncode == 0 and "-o allow_delete" in text and "fuse.registryfs" in text, r


# -- the command line -------------------------------------------------------------------------

def test_rw_on_the_command_line_is_refused(mount_factory, registry):
    m = mount_factory(registry.url, options={"rw": True}, start=False)
    with pytest.raises(MountError):
        m.start()
    assert "-o push" in m.stderr() and "-o allow_delete" in m.stderr(), m.stderr()
    assert not m.is_mounted


def test_allow_delete_implies_push(mount_factory, registry_factory):
    reg = registry_factory()
    m = mount_factory(reg.url, options={"allow_delete": True})
    assert "rw" in mount_flags(m)
    tools.ok(["mkdir", "-p", m.path("ns", "repo")])


def full_mount_point(m):
    os.makedirs(m.mountpoint)
    precious = os.path.join(m.mountpoint, "precious")
    with open(precious, "w") as f:
        f.write("keep me")
    return precious


def test_non_empty_mount_point_is_refused(mount_factory, registry):
    m = mount_factory(registry.url, start=False)
    precious = full_mount_point(m)
    with pytest.raises(MountError):
        m.start()
    assert "not empty" in m.stderr() and "nonempty" in m.stderr(), m.stderr()
    assert not m.is_mounted
    assert open(precious).read() == "keep me"


def test_nonempty_option_mounts_over_files(mount_factory, registry):
    m = mount_factory(registry.url, start=False, options={"nonempty": True})
    precious = full_mount_point(m)
    m.start()
    assert "oci" in ls(m.mountpoint)
    m.stop()
    assert open(precious).read() == "keep me"
