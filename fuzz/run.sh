#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR SECONDS [TARGET...]: runs each libFuzzer target (all when none is named)
# for SECONDS on its corpus, one after another, and prints a table of targets, time, runs and
# outcome. Corpus: BUILD_DIR/fuzz-work/corpus/<target> (kept between runs; new inputs go there),
# read together with fuzz/seeds/<target>, fuzz/regressions/<target> and the seeds fuzz_seeds
# generates. A failing input is saved as BUILD_DIR/fuzz-work/artifacts/<target>-crash-...; copy
# it to fuzz/regressions/<target>/ once fixed, so that ctest (Fuzz.<target>) replays it.
# FUZZ_LLAMA3_TOKENIZER=tokenizer.json also runs tokenizer_roundtrip on that tokenizer (make fuzz
# passes the LLaMA-3 tokenizer the tokenizer tests fetch into build/.cache, when it is there).
# Exits 1 when a target failed.
set -uo pipefail
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
bin=$build/fuzz
work=$build/fuzz-work
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$src"/fuzz_*.cpp; do
    t=$(basename "$f" .cpp)
    targets+=("${t#fuzz_}")
  done
fi

mkdir -p "$work/artifacts" "$work/logs"
rm -rf "$work/seeds"
"$bin/fuzz_seeds" "$work/seeds" >/dev/null || { echo "fuzz: fuzz_seeds failed" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
# run_one NAME TARGET: runs fuzz_TARGET on the corpus of NAME (NAME = TARGET but for variants).
run_one() {
  local name=$1 t=$2
  local exe=$bin/fuzz_$t
  if [ ! -x "$exe" ]; then
    echo "fuzz: no target $t ($exe)" >&2
    exit 2
  fi
  local corpus=$work/corpus/$name
  mkdir -p "$corpus"
  local dirs=("$corpus")
  for d in "$src/seeds/$t" "$src/regressions/$t" "$work/seeds/$t"; do
    if [ -d "$d" ]; then dirs+=("$d"); fi
  done
  local dict=()
  case "$t" in
    text_escape|list_literal|csv|tokenizer_roundtrip) ;;
    *) dict=(-dict="$src/json.dict") ;;
  esac
  local log=$work/logs/$name.log
  local start
  start=$(date +%s.%N)
  "$exe" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$name-" "${dict[@]}" "${dirs[@]}" >"$log" 2>&1
  local rc=$?
  local took runs inputs outcome
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  inputs=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    outcome=ok
  else
    outcome="FAILED (exit $rc)"
    failed+=("$name")
  fi
  summary+=("$(printf '%-28s %7ss %10s runs %6s corpus  %s' "$name" "$took" "${runs:-?}" "$inputs" "$outcome")")
  echo "${summary[-1]}"
  if [ $rc -ne 0 ]; then
    echo "---- $log (tail) ----"
    tail -n 40 "$log"
    ls -1 "$work/artifacts/$name-"* 2>/dev/null | sed 's/^/input: /'
    echo "----"
  fi
}

for t in "${targets[@]}"; do
  run_one "$t" "$t"
  # The round trip again on the real LLaMA-3 tokenizer when the tokenizer tests fetched it.
  if [ "$t" = tokenizer_roundtrip ] && [ -n "${FUZZ_LLAMA3_TOKENIZER:-}" ] && [ -f "$FUZZ_LLAMA3_TOKENIZER" ]; then
    FLEXGEN_FUZZ_TOKENIZER=$FUZZ_LLAMA3_TOKENIZER run_one tokenizer_roundtrip_llama3 tokenizer_roundtrip
  fi
done
echo "== fuzz summary ($seconds s per target) =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $work/artifacts; replay: $bin/fuzz_<target> INPUT)" >&2
  exit 1
fi
