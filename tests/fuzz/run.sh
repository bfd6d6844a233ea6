#!/usr/bin/env bash
# Runs each libFuzzer harness for a while on a copy of its seed corpus (and
# its regression inputs); fails if any harness finds a crash, a leak, a
# timeout or an out-of-memory.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]
#
# BUILD_DIR was configured with -DCMAKE_C_COMPILER=clang -DBW_BUILD_FUZZ=ON
# (and -DBW_SANITIZE=address,undefined), and built (targets fuzz_*).
# SECONDS per harness, default 60. Environment:
#   FUZZ_HARNESSES  which ones (default "spec api observer")
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 30)
#   FUZZ_RSS_MB     memory limit (default 2048)
#   FUZZ_OUT        where crash inputs, logs and the grown corpora go
#                   (default BUILD_DIR/fuzz-out)
# The corpus a run grew stays in FUZZ_OUT/<harness>/corpus (FUZZING.md says
# how to fold it back into the seeds). A crash input lands in
# FUZZ_OUT/<harness>/; reproduce it with
#   BUILD_DIR/tests/fuzz/fuzz_<harness> FILE   (or replay_fuzz_<harness> FILE)
# and, once understood, copy it to tests/fuzz/regress/fuzz_<harness>/.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
harnesses=${FUZZ_HARNESSES:-spec api observer}
timeout_s=${FUZZ_TIMEOUT:-30}
rss=${FUZZ_RSS_MB:-2048}
out=${FUZZ_OUT:-$build/fuzz-out}
mkdir -p "$out"

failed=0
summary=""
for h in $harnesses; do
  bin=$build/tests/fuzz/fuzz_$h
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing (configure with clang and -DBW_BUILD_FUZZ=ON, build fuzz_$h)" >&2
    failed=1
    summary+="fuzz_$h: not built"$'\n'
    continue
  fi
  corpus=$out/$h/corpus
  rm -rf "$corpus"
  mkdir -p "$corpus" "$out/$h"
  for d in "$here/corpus/fuzz_$h" "$here/regress/fuzz_$h"; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus/" \;
  done
  log=$out/$h/fuzz.log
  touch "$log.start"
  echo "== fuzz_$h: ${secs}s, $(ls "$corpus" | wc -l) seed inputs"
  # -max_total_time bounds the run; the outer timeout only catches a
  # harness that wedges libFuzzer itself
  timeout --signal=KILL $((secs + timeout_s + 120)) \
    "$bin" "$corpus" -max_total_time="$secs" -timeout="$timeout_s" -rss_limit_mb="$rss" \
    -print_final_stats=1 -artifact_prefix="$out/$h/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(find "$out/$h" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$log.start" | head -5)
  if [ $rc -ne 0 ] || [ -n "$found" ]; then
    failed=1
    echo "run.sh: fuzz_$h FAILED (exit $rc); inputs: ${found:-none written}; log: $log" >&2
    grep -E 'fuzz_[a-z]+: |ERROR|SUMMARY|Test unit' "$log" | head -20 >&2
    summary+="fuzz_$h: FAILED after ${execs:-?} executions"$'\n'
  else
    summary+="fuzz_$h: ${execs:-?} executions in ${secs}s (${rate:-?}/s), no crash"$'\n'
  fi
done
echo "== fuzz summary"
printf '%s' "$summary"
exit $failed
