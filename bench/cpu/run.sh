#!/usr/bin/env bash
# Makes the random-weight models bench_cpu needs (once) and runs it: OUT_DIR/cpu.json (the JSON document),
# OUT_DIR/cpu.log (its log).
#
#   bench/cpu/run.sh BUILD_DIR OUT_DIR
#
# Environment (all optional):
#   ISA=all|portable|avx2|avx512|avx512bf16   kernel paths to measure the model on (default: all)
#   THREADS=N        CPU threads (default: every CPU this process may use)
#   PROMPT=128 DECODE=16 REPS=3               prefill length, decode steps, repetitions
#   LAYERS=N         fewer layers than the preset, for a quick check (the model directory says so)
#   MODELS_DIR=DIR   where the random models are written and reused (default: BUILD_DIR/bench-cpu/models)
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR OUT_DIR" >&2
  exit 2
fi
build=$1
out=$2
bin=$build/bin
for b in bench_cpu make_random_model; do
  [[ -x $bin/$b ]] || { echo "$0: $bin/$b missing (cmake --build $build --target bench_cpu make_random_model)" >&2; exit 1; }
done
models=${MODELS_DIR:-$build/bench-cpu/models}
mkdir -p "$out" "$models"
log=$out/cpu.log
: >"$log"

layers_args=()
suffix=""
if [[ -n ${LAYERS:-} ]]; then
  layers_args=(--layers "$LAYERS")
  suffix="-${LAYERS}l"
fi

bench_args=(--isa "${ISA:-all}" --prompt "${PROMPT:-128}" --decode "${DECODE:-16}" --reps "${REPS:-3}")
[[ -n ${THREADS:-} ]] && bench_args+=(--threads "$THREADS")

# One model per preset; a preset make_random_model does not know is reported as not measured.
for preset in llama3.2-1b llama3.2-3b; do
  dir=$models/random-$preset$suffix
  if [[ ! -f $dir/model.safetensors ]]; then
    echo "== making $dir" >&2
    rm -rf "$dir.tmp"
    err=$(mktemp)
    if "$bin/make_random_model" --out "$dir.tmp" --preset "$preset" "${layers_args[@]}" >>"$log" 2>"$err"; then
      rm -f "$err"
      mv "$dir.tmp" "$dir"
    else
      why=$(head -n 1 "$err")
      cat "$err" >>"$log"
      rm -f "$err"
      rm -rf "$dir.tmp"
      echo "== $preset: not measured: $why" >&2
      bench_args+=(--not-measured "$preset: make_random_model cannot make it ($why)")
      continue
    fi
  fi
  bench_args+=(--model "$dir")
done

echo "== $bin/bench_cpu ${bench_args[*]}" >&2
# JSON to cpu.json (fd 3); the log to the terminal and cpu.log.
{ "$bin/bench_cpu" "${bench_args[@]}" 2>&1 1>&3 | tee -a "$log" >&2; } 3>"$out/cpu.json"
echo "== wrote $out/cpu.json (log: $log)" >&2
