#!/usr/bin/env bash
# End-to-end GPU bench in one call: random-weight Llama-3.2-3B-shaped model, flexgen generate in several
# configurations, the Python reference loops on flexgen's exact token sequences, one table.
# Usage (repo root, GPU machine): TOKENIZER_DIR=DIR bench/e2e_gpu/run_e2e.sh BUILD_DIR OUT_DIR [SAMPLES]
#   TOKENIZER_DIR  folder with tokenizer.json + tokenizer_config.json (LLaMA-3)
#   SAMPLES        flexgen samples per configuration (default 46 = the bundled WebQA sample)
# Optional env: PYTHON (python3), E2E_SHAPE (3b|1b|tiny), E2E_MODEL (/tmp/e2e-model-$E2E_SHAPE),
#   REF_SAMPLES (10), E2E_DEADLINE_S (560: the whole script's wall budget; steps get what is left),
#   FLEXGEN_TIMEOUT_S (300 per flexgen run), E2E_SKIP_REFERENCE (set: flexgen rows only),
#   E2E_DECODE_BENCH (1: run BUILD_DIR/bin/bench_decode_cuda --shape 1b and 3b last, when it exists; 0: not),
#   DECODE_TIMEOUT_S (240 per bench_decode_cuda run).
# Writes OUT_DIR/{flexgen_NAME.{jsonl,summary.json,log,error}, tokens.jsonl, reference.json,
#   decode_{1b,3b}.{json,log,error}, table.md, e2e.json}.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_e2e.sh BUILD_DIR OUT_DIR [SAMPLES]}
out=${2:?usage: run_e2e.sh BUILD_DIR OUT_DIR [SAMPLES]}
samples=${3:-46}
py=${PYTHON:-python3}
shape=${E2E_SHAPE:-3b}
model=${E2E_MODEL:-/tmp/e2e-model-$shape}
ref_samples=${REF_SAMPLES:-10}
deadline=$(( $(date +%s) + ${E2E_DEADLINE_S:-560} ))
flexgen_timeout=${FLEXGEN_TIMEOUT_S:-300}
bin=$build/bin/flexgen
export PYTHONUNBUFFERED=1
mkdir -p "$out" || { echo "run_e2e: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)

left() { echo $(( deadline - $(date +%s) )); }
# step timeout: min(wanted, time left - reserve), at least 5 s
budget() { local l=$(( $(left) - ${2:-20} )); (( l < $1 )) && echo $(( l > 5 ? l : 5 )) || echo "$1"; }

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -4 || echo "nvidia-smi: not available"
[[ -x $bin ]] && echo "flexgen: $("$bin" --version 2>&1 | head -1)" || echo "run_e2e: $bin not found or not executable"

if [[ -z ${TOKENIZER_DIR:-} ]]; then
  echo "run_e2e: error: set TOKENIZER_DIR to a folder holding tokenizer.json and tokenizer_config.json" >&2
  exit 2
fi
start=$(date +%s)
timeout -k 10 "$(budget 420 60)" "$py" "$here/make_model.py" --out "$model" --tokenizer-dir "$TOKENIZER_DIR" --shape "$shape" \
  >"$out/make_model.log" 2>&1
rc=$?
cat "$out/make_model.log"
echo "make_model: rc=$rc, $(( $(date +%s) - start )) s"
if (( rc != 0 )); then
  echo "run_e2e: error: no model; nothing to bench" >&2
  printf 'make_model.py failed (rc=%s): %s\n' "$rc" "$(tail -3 "$out/make_model.log" | tr '\n' ' ')" >"$out/make_model.error"
fi

# run_flexgen NAME [extra generate options...]
run_flexgen() {
  local name=$1; shift
  local base=$out/flexgen_$name
  rm -f "$base.jsonl" "$base.summary.json" "$base.error" "$base.log"
  if [[ -e $out/make_model.error ]]; then cp "$out/make_model.error" "$base.error"; return; fi
  if [[ ! -x $bin ]]; then echo "$bin not found or not executable" >"$base.error"; return; fi
  local t; t=$(budget "$flexgen_timeout" 30)
  local s0; s0=$(date +%s)
  timeout -k 10 "$t" "$bin" --log-level warn generate --model "$model" --device cuda --dataset webqa \
    --max-samples "$samples" --stop none --max-new-tokens 20 \
    --output "$base.jsonl" --summary "$base.summary.json" "$@" >"$base.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - s0 ))
  if (( rc == 124 || rc == 137 )); then
    printf 'timed out after %s s: %s\n' "$t" "$(tail -2 "$base.log" | tr '\n' ' ')" >"$base.error"
  elif (( rc != 0 )); then
    printf 'rc=%s: %s\n' "$rc" "$(tail -4 "$base.log" | tr '\n' ' ')" >"$base.error"
  elif [[ ! -s $base.summary.json ]]; then
    echo "rc=0 but no summary written" >"$base.error"
  fi
  if [[ -e $base.error ]]; then
    echo "flexgen $name: ERROR ($took s): $(cat "$base.error")"
  else
    echo "flexgen $name: ok ($took s): $(tr -d '\n ' <"$base.summary.json" | grep -oE '"(samples|wall_seconds|samples_per_second)":[0-9.e+-]+' | tr '\n' ' ')"
  fi
}

# flex_b1 first (it writes the tokens the reference needs), then the reference, then the other configurations.
rm -f "$out/tokens.jsonl"
run_flexgen flex_b1 --method flex --batch-size 1 --save-tokens "$out/tokens.jsonl"
if [[ -e $out/flexgen_flex_b1.error ]] && grep -q -- "--save-tokens" "$out/flexgen_flex_b1.log" 2>/dev/null; then
  echo "run_e2e: this flexgen refused --save-tokens; flex_b1 again without it (the reference rows will have no tokens)"
  cp "$out/flexgen_flex_b1.log" "$out/flexgen_flex_b1.save-tokens.log"
  run_flexgen flex_b1 --method flex --batch-size 1
fi

rm -f "$out/reference.json" "$out/reference.error"
if [[ -n ${E2E_SKIP_REFERENCE:-} ]]; then
  echo "E2E_SKIP_REFERENCE set: reference rows not run" >"$out/reference.error"
elif [[ -e $out/make_model.error ]]; then
  cp "$out/make_model.error" "$out/reference.error"
elif [[ ! -s $out/tokens.jsonl ]]; then
  echo "no $out/tokens.jsonl (the flex_b1 run with --save-tokens failed or wrote nothing)" >"$out/reference.error"
else
  # keep ~150 s for the other flexgen configurations; each of the 3 rows gets a share of the rest for timed samples
  t=$(budget 400 150)
  mb=$(( (t - 60) / 4 )); (( mb < 10 )) && mb=10
  s0=$(date +%s)
  timeout -k 10 "$t" "$py" "$here/reference_pipeline.py" --model "$model" --tokens "$out/tokens.jsonl" \
    --max-new-tokens 20 --samples "$ref_samples" --method-budget "$mb" --out "$out/reference.json" \
    2>"$out/reference.stderr.log"
  rc=$?
  echo "reference_pipeline: rc=$rc, $(( $(date +%s) - s0 )) s (timeout $t s, per-row budget $mb s)"
  if (( rc != 0 )) || grep -q Traceback "$out/reference.stderr.log"; then
    echo "--- reference_pipeline stderr (last 40 lines; all in reference.stderr.log) ---"
    tail -40 "$out/reference.stderr.log"
  fi
  if (( rc != 0 )); then
    printf 'reference_pipeline.py rc=%s%s: %s\n' "$rc" "$( (( rc == 124 || rc == 137 )) && echo " (timed out after $t s)")" \
      "$(tail -3 "$out/reference.stderr.log" | tr '\n' ' ')" >"$out/reference.error"
  fi
fi

run_flexgen flex_shared_b1 --method flex --shared-context --batch-size 1
run_flexgen flex_b32 --method flex --batch-size 32
run_flexgen flex_shared_b32 --method flex --shared-context --batch-size 32
run_flexgen avg_b1 --method avg --batch-size 1

# Steady-state throughput: the bundled 46 questions 7 times over (distinct uuids), so batch 32
# is not dominated by one partly filled last wave.
big=$out/webqa_x7.jsonl
python3 - "$big" <<'PY'
import json, sys
rows = [json.loads(l) for l in open("data/webqa/test.jsonl") if l.strip()]
with open(sys.argv[1], "w") as f:
    for k in range(7):
        for r in rows:
            f.write(json.dumps(dict(r, uuid=f"{r['uuid']}-{k}")) + "\n")
PY
samples_saved=$samples
samples=322
run_flexgen flex_shared_b32_x7 --method flex --shared-context --batch-size 32 --dataset "$big" --train data/webqa/train.jsonl
# Issue 15's row at the batch sizes it runs fastest at: 128, and all 322 samples in one batch.
run_flexgen flex_shared_b128_x7 --method flex --shared-context --batch-size 128 --dataset "$big" --train data/webqa/train.jsonl
run_flexgen flex_shared_b322_x7 --method flex --shared-context --batch-size 322 --dataset "$big" --train data/webqa/train.jsonl
run_flexgen flex_b32_x7 --method flex --batch-size 32 --dataset "$big" --train data/webqa/train.jsonl
run_flexgen flex_restart_b32_x7 --method flex --positions restart --batch-size 32 --dataset "$big" --train data/webqa/train.jsonl
run_flexgen avg_b32_x7 --method avg --batch-size 32 --dataset "$big" --train data/webqa/train.jsonl
samples=$samples_saved

# One decode step kernel by kernel (bench/decode_cuda), both shapes, on random weights it builds itself:
# run_decode_bench SHAPE writes OUT/decode_SHAPE.json (stdout), .log (stderr) or .error.
decode_bin=$build/bin/bench_decode_cuda
decode_timeout=${DECODE_TIMEOUT_S:-240}
run_decode_bench() {
  local base=$out/decode_$1
  if (( $(left) < 60 )); then
    echo "skipped: $(left) s left before the deadline (E2E_DEADLINE_S)" >"$base.error"
    echo "bench_decode_cuda $1: $(cat "$base.error")"
    return
  fi
  local t; t=$(budget "$decode_timeout" 15)
  local s0; s0=$(date +%s)
  timeout -k 10 "$t" "$decode_bin" --shape "$1" >"$base.json.part" 2>"$base.log"
  local rc=$?
  local took=$(( $(date +%s) - s0 ))
  if (( rc == 0 )) && [[ -s $base.json.part ]]; then
    mv "$base.json.part" "$base.json"
    echo "bench_decode_cuda $1: ok ($took s): $(tr -d '\n ' <"$base.json" | grep -oE '"(step_ms|ideal_ms|fraction)":[0-9.e+-]+' | tr '\n' ' ')"
  else
    rm -f "$base.json.part"
    if (( rc == 124 || rc == 137 )); then
      printf 'timed out after %s s: %s\n' "$t" "$(tail -2 "$base.log" | tr '\n' ' ')" >"$base.error"
    else
      printf 'rc=%s: %s\n' "$rc" "$(tail -3 "$base.log" | tr '\n' ' ')" >"$base.error"
    fi
    echo "bench_decode_cuda $1: ERROR ($took s): $(cat "$base.error")"
  fi
}
rm -f "$out"/decode_{1b,3b}.{json,json.part,log,error}
if [[ ${E2E_DECODE_BENCH:-1} != 1 ]]; then
  echo "E2E_DECODE_BENCH=${E2E_DECODE_BENCH}: bench_decode_cuda not run"
elif [[ ! -x $decode_bin ]]; then
  echo "run_e2e: $decode_bin not found or not executable; bench_decode_cuda not run"
else
  run_decode_bench 1b
  run_decode_bench 3b
fi

"$py" "$here/summarize.py" "$out" >"$out/table.md"
rc=$?
cat "$out/table.md"
echo "run_e2e: total $(( $(date +%s) - start )) s; results in $out (table.md, e2e.json)"
exit $rc
