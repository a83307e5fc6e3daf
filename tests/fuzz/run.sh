#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on its seed corpus (tests/fuzz/corpus/NAME, read
# only) plus a scratch corpus under $FUZZ_BUILD that gets what it finds. Fails when any
# target crashed, leaked or violated an invariant; its log and reproducer stay there.
# usage: run.sh SECONDS build-fuzz/fuzz_NAME...
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=$1
shift
build=${FUZZ_BUILD:-build-fuzz}
status=0
for bin in "$@"; do
  name=${bin##*/fuzz_}
  scratch=$build/corpus/$name
  mkdir -p "$scratch" "$build/artifacts" "$build/logs"
  log=$build/logs/$name.log
  start=$SECONDS
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$name-" "$scratch" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz $name: ${runs:-?} runs in $((SECONDS - start)) s, no crash"
  else
    echo "fuzz $name: FAILED (log: $log)" >&2
    grep -A30 -m1 -e '^==[0-9]*==ERROR' -e 'runtime error' -e 'invariant violated' \
      -e 'deadly signal' "$log" >&2 || tail -n 40 "$log" >&2
    ls "$build/artifacts/$name-"* 2>/dev/null >&2 || true
    status=1
  fi
done
exit $status
