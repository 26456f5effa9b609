set -uo pipefail
T0=$(date +%s)
PFX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
O=/tmp/o61; mkdir -p $O
( cmake -S . -B /tmp/btl -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLEXGEN_BUILD_TESTS=OFF -DFLEXGEN_CUDA_TIMELINE=ON -DCMAKE_PREFIX_PATH=$PFX > $O/cfg_tl.log 2>&1 &&
  cmake --build /tmp/btl -j8 --target bench_decode_cuda > $O/build_tl.log 2>&1; echo "build tl rc=$?" ) &
cmake -S . -B /tmp/bnew -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$PFX > $O/cfg_new.log 2>&1 &&
  cmake --build /tmp/bnew -j10 --target test_fused_ops_cuda test_model_cuda bench_decode_cuda > $O/build_new.log 2>&1; echo "build rc=$? $(( $(date +%s) - T0 )) s"
grep -E "error" -A5 $O/build_new.log | head -30
B=/tmp/bnew
timeout 60 $B/tests/cuda/test_fused_ops_cuda --gtest_brief=1 --gtest_filter='*DecodeLayerTail*' > $O/tail.log 2>&1; echo "tail rc=$?"; grep -E "FAILED|PASSED|Failure|Expected|Which|rror" $O/tail.log | head -20
timeout 200 $B/tests/cuda/test_model_cuda --gtest_brief=1 > $O/model.log 2>&1; echo "model rc=$?"; grep -E "FAILED|PASSED|Failure" $O/model.log | head -10
echo "t=$(( $(date +%s) - T0 ))"
J() { python3 - "$@" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(sys.argv[2:], "no json", e); sys.exit()
st = d['step']
print(*sys.argv[2:], "step %.4f overlapped %.4f runs %s" % (st['step_ms'], st['step_ms_overlapped'], [round(x, 4) for x in st['step_ms_overlapped_runs']]))
PY
}
for s in 3b 1b; do for v in 0_6_2 1_6_2 1_4_2 1_3_1 1_3_2 1_5_1; do
  IFS=_ read a st h <<< "$v"
  FLEXGEN_CUDA_LAYER_KERNEL=$a FLEXGEN_CUDA_LAYER_STAGES=$st FLEXGEN_CUDA_LAYER_AHEAD=$h timeout 60 $B/bin/bench_decode_cuda --shape $s --reps 5 > $O/d_${s}_${v}.json 2> $O/d_${s}_${v}.log; echo "rc=$?"; J $O/d_${s}_${v}.json $s $v
done; done
wait
echo "t=$(( $(date +%s) - T0 ))"
for s in 1b 3b; do for v in 1_3_2 1_6_2; do
  IFS=_ read a st h <<< "$v"
  FLEXGEN_CUDA_LAYER_KERNEL=$a FLEXGEN_CUDA_LAYER_STAGES=$st FLEXGEN_CUDA_LAYER_AHEAD=$h timeout 100 /tmp/btl/bin/bench_decode_cuda --shape $s --reps 5 --timeline $O/tl_${s}_$v.txt > $O/t_${s}_$v.json 2> $O/t_${s}_$v.log; echo "tl rc=$?"
done; done
echo "t=$(( $(date +%s) - T0 ))"
gzip $O/tl_*.txt
tar -czf $OUT/r61.tgz -C $O .
