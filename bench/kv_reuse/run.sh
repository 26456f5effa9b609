#!/usr/bin/env bash
# The run-level KV store's gain in one run: flexgen generate with and without the store (--no-kv-reuse)
# for each method, side by side on one model and dataset, and ONE JSON document on stdout: samples/s,
# prompt tokens computed and reused, prefill passes, decode step, the ratio, and whether the records
# of the pair are byte-identical (they must be). See README.md here.
#
#   bench/kv_reuse/run.sh BUILD_DIR OUT_DIR [MODEL_DIR]
#
# MODEL_DIR defaults to `make demo-model`'s (BUILD_DIR/demo/random-llama3.2-1b). Environment (all
# optional): METHODS ("avg shared flex": avg, flex --shared-context, flex; also restart: flex
# --positions restart), DATASET (webqa),
# SAMPLES (0 = all), BATCH (16), NEW (20 new tokens, --stop none), DEVICE (cpu), EXTRA (more generate
# options). OUT_DIR gets each run's records, summary and log.
set -euo pipefail
if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 BUILD_DIR OUT_DIR [MODEL_DIR]" >&2
  exit 2
fi
build=$1
out=$2
model=${3:-$build/demo/random-llama3.2-1b}
bin=$build/bin/flexgen
here=$(cd "$(dirname "$0")" && pwd)
[[ -x $bin ]] || { echo "$0: $bin missing (make build)" >&2; exit 1; }
[[ -f $model/config.json && -f $model/tokenizer.json ]] ||
  { echo "$0: no model with a tokenizer at $model (make demo-model, or pass MODEL_DIR)" >&2; exit 1; }
mkdir -p "$out"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
samples=()
[[ ${SAMPLES:-0} != 0 ]] && samples=(--max-samples "$SAMPLES")
read -r -a extra <<<"${EXTRA:-}"
for m in ${METHODS:-avg shared flex}; do
  case $m in
    avg) args=(--method avg) ;;
    shared) args=(--method flex --shared-context) ;;
    flex) args=(--method flex) ;;
    restart) args=(--method flex --positions restart) ;;
    *) echo "$0: unknown method $m (avg, shared, flex, restart)" >&2; exit 2 ;;
  esac
  for store in on off; do
    flag=--kv-reuse
    [[ $store == off ]] && flag=--no-kv-reuse
    echo "kv_reuse: $m, store $store" >&2
    "$bin" generate -q --model "$model" --dataset "${DATASET:-webqa}" "${samples[@]}" "${args[@]}" "$flag" \
      --batch-size "${BATCH:-16}" --max-new-tokens "${NEW:-20}" --stop none --device "${DEVICE:-cpu}" "${extra[@]}" \
      --output "$out/${m}_$store.jsonl" --summary "$out/${m}_$store.summary.json" 2>"$out/${m}_$store.log"
  done
done
python3 "$here/summarize.py" "$out" "${METHODS:-avg shared flex}" "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
