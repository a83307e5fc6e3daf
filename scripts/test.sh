#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 checkout: set-up, build, unit tests, the
# integration suite against real registries, then the same under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
make -j2
make unit
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"

# AddressSanitizer + UBSan: unit tests and the integration suite against the sanitized binary.
# Reports from the daemon go to files the harness checks after each test.
make -j2 asan
REGISTRYFS_BIN="$PWD/registryfs-asan" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
