#!/usr/bin/env bash
# registryfs demo: install what is needed (Debian), build, start a local registry with sample
# images (single-arch OCI, Docker schema2, a multi-arch index), mount it, look around, clean up.
# Idempotent: every run works in a fresh temporary directory and removes it on exit.
#
#   scripts/demo.sh            # or: make demo
#   KEEP=1 scripts/demo.sh     # leave mount and registry up until Enter is pressed
#   SKIP_BUILD=1 scripts/demo.sh  # do not run make (use the existing ./registryfs)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3

PKGS=(build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev libcjson-dev libssl-dev
      docker-registry skopeo rsync python3 curl)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

# -- 1. packages -----------------------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
    step "packages: all present"
fi

# -- 2. build --------------------------------------------------------------------------------
if [ -n "${SKIP_BUILD:-}" ] && [ -x ./registryfs ]; then
    step "SKIP_BUILD set: using the existing ./registryfs"
else
    step "make"
    make
fi

# -- 3. registry with sample images ----------------------------------------------------------
WORK=$(mktemp -d /tmp/registryfs-demo.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"

cleanup() {
    set +e
    if grep -q " $MNT fuse" /proc/mounts 2>/dev/null; then
        for _ in 1 2 3 4 5; do fusermount3 -u "$MNT" 2>/dev/null && break; sleep 0.5; done
        grep -q " $MNT fuse" /proc/mounts && fusermount3 -u -z "$MNT"
    fi
    "$PY" "$ROOT/tests/harness/demo.py" down "$WORK" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "starting docker-registry and pushing sample images"
REG=$("$PY" "$ROOT/tests/harness/demo.py" up "$WORK")
echo "registry: $REG"

# -- 4. mount --------------------------------------------------------------------------------
step "mounting $REG on $MNT"
show ./registryfs -o "cache_dir=$WORK/cache,log_file=$WORK/registryfs.log" "$REG" "$MNT"

step "the tree"
show find "$MNT" -maxdepth 3
echo
show ls "$MNT/demo" "$MNT/demo/oci-app"

TAG=$MNT/demo/oci-app/v1
step "a tag directory is a skopeo dir: image"
show ls -l "$TAG"
show cat "$TAG/version"
show cat "$TAG/manifest.json"
echo
show sha256sum "$TAG"/[0-9a-f]*

step "a multi-arch index: the index, each instance manifest, and all blobs"
show ls -l "$MNT/demo/multi-app/v1"

step "skopeo reads it as an image"
show skopeo --insecure-policy inspect "dir:$TAG"

if [ -n "${KEEP:-}" ]; then
    echo; echo "mounted at $MNT (registry $REG); press Enter to unmount and clean up"
    read -r _
fi

step "unmounting"
show fusermount3 -u "$MNT"
echo "done"
