#!/usr/bin/env bash
# Installs what building, the demo and the tests need on Debian 12. Idempotent: does nothing
# when every package is already there.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config clang-format man-db groff-base
  clang libclang-rt-14-dev
  libfuse3-dev fuse3 libcurl4-openssl-dev libcjson-dev libssl-dev
  docker-registry skopeo umoci podman rsync tar coreutils attr apache2-utils openssl nginx-light
  python3 python3-pytest python3-pytest-xdist python3-cryptography python3-jwt curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's docker-registry package starts a system registry on :5000 where systemd runs;
# the tests start their own on free ports and do not need it.
[ -e /dev/fuse ] || { echo "setup: /dev/fuse is missing" >&2; exit 1; }
