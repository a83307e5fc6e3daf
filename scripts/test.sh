#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 checkout: set-up, build, unit tests, the
# integration suite against real registries, a short run of the fuzz targets, then the same
# suite under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
make -j2
make unit
# Two workers (pytest-xdist), each test file on one of them: most of a test's time is spent
# waiting for a registry, a mount or a back-off, so two run side by side on two cores.
PYTEST=(/usr/bin/python3 -m pytest -q -p no:cacheprovider -n 2 --dist loadfile)
"${PYTEST[@]}" tests "$@"

# The libFuzzer targets (tests/fuzz/), a few seconds each so they stay buildable and running.
make -j2 fuzz-smoke

# AddressSanitizer + UBSan: unit tests and the integration suite against the sanitized binary.
# Reports from the daemon go to files the harness checks after each test.
make -j2 asan
reports=$(mktemp -d)
ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0" \
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1" \
REGISTRYFS_BIN="$PWD/registryfs-asan" "${PYTEST[@]}" tests "$@"
found=$(grep -l -e "ERROR: " -e "runtime error" "$reports"/* 2>/dev/null || true)
if [ -n "$found" ]; then
  echo "sanitizer reports from registryfs-asan:" >&2
  cat $found >&2
  exit 1
fi
echo "sanitizers: no reports"
