set -uo pipefail
T0=$(date +%s)
PFX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
O=$OUT
cmake -S . -B /tmp/bnew -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$PFX > $O/cfg_new.log 2>&1 &&
  cmake --build /tmp/bnew -j16 --target test_fused_ops_cuda bench_decode_cuda > $O/build_new.log 2>&1; echo "build rc=$? $(( $(date +%s) - T0 )) s"
grep -E "error" -A5 $O/build_new.log | head -20
B=/tmp/bnew
FLEXGEN_CUDA_LAYER_WARPS=8 timeout 30 $B/tests/cuda/test_fused_ops_cuda --gtest_brief=1 --gtest_filter='*bf16*DecodeLayerTail*:*DecodeLayerTail*bf16*' > $O/tail8.log 2>&1; echo "tail W8 rc=$?"; grep -E "FAILED|PASSED" $O/tail8.log | head -3
for v in 0_16 1_16 1_8; do for s in 1b 3b; do
  IFS=_ read a w <<< "$v"
  FLEXGEN_CUDA_LAYER_KERNEL=$a FLEXGEN_CUDA_LAYER_WARPS=$w timeout 30 $B/bin/bench_decode_cuda --shape $s --reps 3 > $O/d_${s}_$v.json 2> $O/d_${s}_$v.log
  python3 -c "import json; d=json.load(open('$O/d_${s}_$v.json')); print('$s $v', d['step']['step_ms_overlapped'])" 2>&1 | tail -1
  echo "t=$(( $(date +%s) - T0 ))"
done; done
