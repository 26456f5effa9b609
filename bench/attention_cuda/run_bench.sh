#!/usr/bin/env bash
# Runs our CUDA kernel's bench and the PyTorch baselines side by side and prints a table.
# Usage: bench/attention_cuda/run_bench.sh BUILD_DIR [OUT_DIR] [L ...]
# BUILD_DIR must hold bin/bench_attention_cuda (cmake --build BUILD_DIR --target bench_attention_cuda).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?build dir}
outdir=${2:-.}
shift $(( $# >= 2 ? 2 : $# ))
mkdir -p "$outdir"
"$build/bin/bench_attention_cuda" "$@" >"$outdir/ours.json"
PYTHONUNBUFFERED=1 python3 "$here/reference_bench.py" "$@" >"$outdir/reference.json"
python3 - "$outdir/ours.json" "$outdir/reference.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2]))
refs = {r["L"]: r for r in ref["rows"]}
print(f"device: {ours['device']} (torch {ref['torch']})")
print("| L | ours (us) | flex_attention (us) | SDPA dense mask (us) | ours vs flex | ours in a CUDA graph (us) | ours TFLOP/s | variants 0-5 (us) | decode Lq=1 (us): calls / graph | mask build+upload (us) | create_block_mask (us) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in ours["rows"]:
    f = refs.get(r["L"], {})
    fl = f.get("flex_us", float("nan")); sd = f.get("sdpa_dense_mask_us", float("nan"))
    var = "/".join(f"{r['variants'][k]['us']:.0f}" for k in sorted(r["variants"]))
    print(f"| {r['L']} | {r['ours_us']:.1f} | {fl:.1f} | {sd:.1f} | {fl / r['ours_us']:.2f}x | {r['ours_graph_us']:.1f} | {r['ours_tflops']:.0f} | {var} | "
          f"{r['decode_us']:.1f} / {r['decode_graph_us']:.1f} | {r['mask_total_us']:.1f} (build {r['mask_build_us']:.1f}, mask {r['attention_mask_us']:.1f}, upload {r['upload_us']:.1f}) | "
          f"{f.get('create_block_mask_us', float('nan')):.0f} |")
PY
