"""Deterministic container-image generator.

Everything is derived from string seeds, so the same calls give the same bytes and the same
digests on every run: tar members have fixed mtimes/owners, gzip streams have mtime 0 and no
file name, JSON is written with a fixed key order.

    store = BlobStore("/tmp/x/blobs")                 # content-addressed files on disk
    base = make_layer(store, "base")                  # Layer(desc, diff_id)
    img = make_image(store, "app", [base, make_layer(store, "app-1")], fmt="oci")
    idx = make_index(store, [img_amd64, img_arm64], fmt="oci")
    write_dir(store, idx, "/tmp/d")                   # what `skopeo copy --all ... dir:` writes

Manifests are pretty-printed with a 3-space indent and non-alphabetical key order on
purpose: a filesystem that re-serialised JSON instead of passing the registry's bytes
through would change them.

Large layers (make_large_layer) are streamed to disk from a SHAKE-256 keystream, never held
in memory.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field

# Media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)

DIR_VERSION = b"Directory Transport Version: 1.1\n"
FIXED_MTIME = 1700000000           # 2023-11-14T22:13:20Z
CREATED = "2023-11-14T22:13:20Z"


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest):
    return digest.split(":", 1)[1]


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict = None

    @property
    def hex(self):
        return hex_of(self.digest)

    def to_json(self):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = dict(self.platform)
        return d


@dataclass(frozen=True)
class Layer:
    desc: Descriptor        # the compressed blob
    diff_id: str            # sha256 of the uncompressed tar


class _Manifested:
    """Anything identified by the sha256 of its manifest bytes."""

    @property
    def digest(self):
        return sha256_digest(self.manifest)

    @property
    def hex(self):
        return hex_of(self.digest)


@dataclass
class Image(_Manifested):
    """A single-platform manifest (OCI or Docker schema2) with its config and layers."""
    manifest: bytes
    media_type: str
    config: Descriptor
    layers: list
    platform: dict = None

    @property
    def blobs(self):
        """Blob descriptors in the order skopeo copies them (layers, then config)."""
        return list(self.layers) + [self.config]

    def descriptor(self, platform=None):
        return Descriptor(self.media_type, self.digest, len(self.manifest),
                          platform or self.platform)


@dataclass
class Index(_Manifested):
    """An OCI image index or a Docker manifest list over Images."""
    manifest: bytes
    media_type: str
    images: list = field(default_factory=list)

    @property
    def blobs(self):
        seen, out = set(), []
        for img in self.images:
            for b in img.blobs:
                if b.digest not in seen:
                    seen.add(b.digest)
                    out.append(b)
        return out

    def for_platform(self, os_="linux", arch="amd64", variant=None):
        for img in self.images:
            p = img.platform or {}
            if p.get("os") == os_ and p.get("architecture") == arch and (
                    variant is None or p.get("variant") == variant):
                return img
        raise KeyError((os_, arch, variant))


class BlobStore:
    """Content-addressed blob files: ROOT/sha256/HEX."""

    def __init__(self, root):
        self.root = os.path.abspath(str(root))
        os.makedirs(os.path.join(self.root, "sha256"), exist_ok=True)

    def path(self, digest):
        algo, hx = digest.split(":", 1)
        return os.path.join(self.root, algo, hx)

    def has(self, digest):
        return os.path.exists(self.path(digest))

    def read(self, digest):
        with open(self.path(digest), "rb") as f:
            return f.read()

    def put_bytes(self, data, media_type):
        d = sha256_digest(data)
        p = self.path(d)
        if not os.path.exists(p):
            tmp = p + ".tmp%d" % os.getpid()
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        return Descriptor(media_type, d, len(data))

    def new_temp(self):
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        return os.fdopen(fd, "wb"), tmp

    def commit_temp(self, tmp, digest):
        p = self.path(digest)
        if os.path.exists(p):
            os.unlink(tmp)
        else:
            os.replace(tmp, p)
        return p


class _HashingWriter(io.RawIOBase):
    """Write-through file wrapper that hashes and counts what passes."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def tell(self):
        return self.n

    def write(self, b):
        b = bytes(b)
        self.h.update(b)
        self.n += len(b)
        if self.f is not None:
            self.f.write(b)
        return len(b)


class KeyStream(io.RawIOBase):
    """`size` deterministic, incompressible bytes from SHAKE-256(seed || block number)."""

    BLOCK = 1 << 20

    def __init__(self, seed, size):
        self.seed = seed.encode() if isinstance(seed, str) else seed
        self.size = size
        self.pos = 0
        self._buf = b""
        self._block = 0

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = []
        while n > 0:
            if not self._buf:
                self._buf = hashlib.shake_256(
                    self.seed + b"/" + str(self._block).encode()).digest(self.BLOCK)
                self._block += 1
            take = self._buf[:n]
            self._buf = self._buf[n:]
            out.append(take)
            n -= len(take)
            self.pos += len(take)
        return b"".join(out)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def seeded_text(seed, size):
    """Readable deterministic text of exactly `size` bytes."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += ("%s line %d %s\n" % (seed, i,
                                     hashlib.sha256(("%s/%d" % (seed, i)).encode())
                                     .hexdigest())).encode()
        i += 1
    return bytes(out[:size])


def _tarinfo(name, size=0, type_=tarfile.REGTYPE, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = type_
    ti.mode = mode
    ti.mtime = FIXED_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def _write_layer(store, add_members, media_type, compresslevel):
    """Build a tar (via add_members(tarfile)) gzip'd straight to a temp file."""
    f, tmp = store.new_temp()
    try:
        outer = _HashingWriter(f)
        with gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0,
                           compresslevel=compresslevel) as gz:
            inner = _HashingWriter(gz)
            with tarfile.open(fileobj=inner, mode="w", format=tarfile.GNU_FORMAT) as tf:
                add_members(tf)
        f.close()
        digest = "sha256:" + outer.h.hexdigest()
        store.commit_temp(tmp, digest)
        return Layer(Descriptor(media_type, digest, outer.n), "sha256:" + inner.h.hexdigest())
    except BaseException:
        f.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def make_layer(store, seed, files=3, file_size=2048, media_type=OCI_LAYER_GZIP):
    """A small gzip'd tar layer: dir `SEED/` with `files` text files."""
    top = seed.replace("/", "_")

    def add(tf):
        tf.addfile(_tarinfo(top + "/", type_=tarfile.DIRTYPE, mode=0o755))
        for i in range(files):
            data = seeded_text("%s/%d" % (seed, i), file_size + 97 * i)
            tf.addfile(_tarinfo("%s/file-%d.txt" % (top, i), len(data)), io.BytesIO(data))

    return _write_layer(store, add, media_type, compresslevel=6)


def make_large_layer(store, seed, mib, media_type=OCI_LAYER_GZIP):
    """A layer holding one file of `mib` MiB of keystream bytes (gzip barely shrinks it)."""
    top = seed.replace("/", "_")
    size = int(mib * (1 << 20))

    def add(tf):
        tf.addfile(_tarinfo(top + "/", type_=tarfile.DIRTYPE, mode=0o755))
        tf.addfile(_tarinfo(top + "/blob.bin", size), KeyStream(seed, size))

    return _write_layer(store, add, media_type, compresslevel=1)


def docker_layer(store, layer):
    """The same compressed bytes under the Docker media type (same digest)."""
    return Layer(Descriptor(DOCKER_LAYER_GZIP, layer.desc.digest, layer.desc.size), layer.diff_id)


def make_config(seed, diff_ids, os_="linux", arch="amd64", variant=None):
    """Config JSON bytes (field order as docker writes it)."""
    cfg = {"architecture": arch}
    if variant:
        cfg["variant"] = variant
    cfg["config"] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SEED=" + seed],
        "Cmd": ["/bin/sh"],
        "Labels": {"org.registryfs.test.seed": seed},
    }
    cfg["created"] = CREATED
    cfg["history"] = [{"created": CREATED, "created_by": "layer %d of %s" % (i, seed)}
                      for i in range(len(diff_ids))]
    cfg["os"] = os_
    cfg["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    return json.dumps(cfg, separators=(",", ":")).encode()


def _dump(obj):
    return (json.dumps(obj, indent=3) + "\n").encode()


def make_image(store, seed, layers, fmt="oci", os_="linux", arch="amd64", variant=None,
               annotations=None):
    """A single-platform image; fmt 'oci' or 'docker' (schema2)."""
    if fmt == "docker":
        layers = [docker_layer(store, l) if l.desc.media_type != DOCKER_LAYER_GZIP else l
                  for l in layers]
        cfg_type, man_type = DOCKER_CONFIG, DOCKER_MANIFEST
    elif fmt == "oci":
        layers = [Layer(Descriptor(OCI_LAYER_GZIP, l.desc.digest, l.desc.size), l.diff_id)
                  if l.desc.media_type != OCI_LAYER_GZIP else l for l in layers]
        cfg_type, man_type = OCI_CONFIG, OCI_MANIFEST
    else:
        raise ValueError(fmt)
    cfg = store.put_bytes(make_config(seed, [l.diff_id for l in layers], os_, arch, variant),
                          cfg_type)
    man = {"schemaVersion": 2, "mediaType": man_type, "config": cfg.to_json(),
           "layers": [l.desc.to_json() for l in layers]}
    if annotations and fmt == "oci":
        man["annotations"] = dict(annotations)
    platform = {"architecture": arch, "os": os_}
    if variant:
        platform["variant"] = variant
    data = _dump(man)
    store.put_bytes(data, man_type)
    return Image(data, man_type, cfg, [l.desc for l in layers], platform)


def make_index(store, images, fmt="oci"):
    """An OCI index ('oci') or a Docker manifest list ('docker') of `images`."""
    typ = OCI_INDEX if fmt == "oci" else DOCKER_LIST
    idx = {"schemaVersion": 2, "mediaType": typ,
           "manifests": [img.descriptor().to_json() for img in images]}
    data = _dump(idx)
    store.put_bytes(data, typ)
    return Index(data, typ, list(images))


def make_simple(store, seed, fmt="oci", layers=1, base=None, **kw):
    """Convenience: an image of `layers` fresh small layers (after optional `base`)."""
    ls = list(base or [])
    ls += [make_layer(store, "%s/layer%d" % (seed, i)) for i in range(layers)]
    return make_image(store, seed, ls, fmt=fmt, **kw)


def make_multiarch(store, seed, fmt="oci",
                   platforms=(("linux", "amd64", None), ("linux", "arm64", "v8")), base=None):
    """An index over one image per platform (each with its own layer, plus `base`)."""
    imgs = []
    for os_, arch, variant in platforms:
        tag = "%s-%s%s" % (os_, arch, "-" + variant if variant else "")
        ls = list(base or []) + [make_layer(store, "%s/%s" % (seed, tag))]
        imgs.append(make_image(store, "%s/%s" % (seed, tag), ls, fmt=fmt, os_=os_, arch=arch,
                               variant=variant))
    return make_index(store, imgs, fmt=fmt)


# -- skopeo dir: output -------------------------------------------------------------------

def dir_files(obj, platform=None):
    """{file name: digest-or-None} that `skopeo copy [--all] ... dir:` writes for obj.

    For an Index with platform=None that is the --all layout; with platform=(os, arch[,
    variant]) it is the single instance's layout (skopeo without --all).
    """
    if isinstance(obj, Index) and platform is not None:
        obj = obj.for_platform(*platform)
    files = {"version": None, "manifest.json": obj.digest}
    if isinstance(obj, Index):
        for img in obj.images:
            files[img.hex + ".manifest.json"] = img.digest
    for b in obj.blobs:
        files[b.hex] = b.digest
    return files


def write_dir(store, obj, dest, platform=None, link=True):
    """Write a skopeo `dir:` directory for obj (Image or Index) at dest."""
    if isinstance(obj, Index) and platform is not None:
        obj = obj.for_platform(*platform)
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "version"), "wb") as f:
        f.write(DIR_VERSION)
    for b in obj.blobs:
        _place(store.path(b.digest), os.path.join(dest, b.hex), link)
    if isinstance(obj, Index):
        for img in obj.images:
            with open(os.path.join(dest, img.hex + ".manifest.json"), "wb") as f:
                f.write(img.manifest)
    with open(os.path.join(dest, "manifest.json"), "wb") as f:
        f.write(obj.manifest)
    return dest


def _place(src, dst, link):
    if os.path.exists(dst):
        return
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)
