#!/usr/bin/env bash
# On the GPU machine: configure + build flexgen with the CUDA libtorch of the machine's PyTorch
# into BUILD_DIR, then run the CUDA tests and the engine tests.
# Usage (repo root): bench/e2e_gpu/build_and_test.sh BUILD_DIR OUT_DIR [targets...]
set -uo pipefail
build=${1:?build dir}
out=${2:?out dir}
shift 2
mkdir -p "$out"
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')" >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; exit 1; }
grep -E "flexgen:" "$out/configure.log"
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(flexgen test_fused_ops_cuda test_block_sparse_attention_cuda test_model_cuda test_generate)
cmake --build "$build" -j16 --target "${targets[@]}" >"$out/build.log" 2>&1 ||
  { grep -E "error|Error" -A5 "$out/build.log" | head -80; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
for t in tests/cuda/test_fused_ops_cuda tests/cuda/test_model_cuda tests/cuda/test_block_sparse_attention_cuda tests/generate/test_generate; do
  [[ -x $build/$t ]] || continue
  timeout 240 "$build/$t" --gtest_brief=1 >"$out/$(basename $t).log" 2>&1
  echo "$t rc=$?"; grep -E "FAILED|Failure|error|Expected|Which is|PASSED|SKIPPED|tests ran" "$out/$(basename $t).log" | head -30
done
