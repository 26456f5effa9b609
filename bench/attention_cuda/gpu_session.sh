#!/usr/bin/env bash
# One full device call: configure + build the CUDA targets, run the parity tests, run the bench.
# Usage (on the GPU machine, repo root): bench/attention_cuda/gpu_session.sh OUT_DIR [tests|bench|all]
set -uo pipefail
out=${1:?out dir}
what=${2:-all}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
start=$(date +%s)
# Only the CUDA targets are built here. The tokenizer layer needs PCRE2 and SentencePiece dev
# packages at configure time; where the GPU image lacks them, stand-ins let configure pass
# (nothing that links them is built).
extra=()
if ! pkg-config --exists libpcre2-8 2>/dev/null; then
  mkdir -p /tmp/pc
  printf 'Name: libpcre2-8\nDescription: stand-in\nVersion: 10.42\nLibs: -lpcre2-8\nCflags:\n' >/tmp/pc/libpcre2-8.pc
  export PKG_CONFIG_PATH=/tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
fi
if [[ ! -e /usr/include/sentencepiece_processor.h ]]; then
  mkdir -p /tmp/spm && touch /tmp/spm/sentencepiece_processor.h /tmp/spm/libsentencepiece.so
  extra+=(-DSENTENCEPIECE_LIBRARY=/tmp/spm/libsentencepiece.so -DSENTENCEPIECE_INCLUDE=/tmp/spm)
fi
cmake -S . -B /tmp/b -G Ninja "${extra[@]}" -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep -E "flexgen:" "$out/configure.log"
cmake --build /tmp/b -j16 --target flexgen_ops_cuda test_block_sparse_attention_cuda bench_attention_cuda \
  >"$out/build.log" 2>&1 || { grep -E "error|Error" -A3 "$out/build.log" | head -60; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
if [[ $what == all || $what == tests ]]; then
  timeout 240 /tmp/b/tests/cuda/test_block_sparse_attention_cuda --gtest_brief=1 >"$out/tests.log" 2>&1
  echo "tests rc=$?"; grep -E "FAILED|Failure|error|PASSED|SKIPPED|tests ran" "$out/tests.log" | head -40
fi
if [[ $what == all || $what == ncu ]]; then
  # One launch per kernel variant at L=16384 under Nsight Compute, plus the SASS of the kernels.
  FLEXGEN_BENCH_PROFILE=1 timeout 180 ncu -k regex:bsa_ --launch-count 8 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_tensor_op_hmma.sum,smsp__inst_executed.sum" \
    /tmp/b/bin/bench_attention_cuda 16384 >"$out/ncu.txt" 2>&1
  echo "ncu rc=$?"
  cuobjdump -sass /tmp/b/CMakeFiles/flexgen_ops_cuda.dir/src/ops/cuda/block_sparse_attention_kernel.cu.o 2>/dev/null | gzip >"$out/kernel.sass.gz"
  grep -E "bsa_fwd_kernel<|smsp__inst_executed.sum|sm__inst_executed_pipe_tensor_op_hmma.sum" "$out/ncu.txt" | sed -E 's/ +/ /g' | cut -c1-110
  grep -E "bsa_(fwd_kernel|decode_kernel|decode_combine)<|Duration|hmma_cycles|Warp Cycles Per Issued" "$out/ncu.txt" | sed -E 's/ +/ /g' | cut -c1-110
fi
if [[ $what == all || $what == bench ]]; then
  timeout 300 bench/attention_cuda/run_bench.sh /tmp/b "$out" 2>"$out/bench_stderr.log"
  echo "bench rc=$?"; tail -5 "$out/bench_stderr.log"
fi
