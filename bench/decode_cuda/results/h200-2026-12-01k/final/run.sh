set -uo pipefail
T0=$(date +%s)
PFX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
O=/tmp/o63; mkdir -p $O
cmake -S . -B /tmp/bnew -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$PFX > $O/cfg_new.log 2>&1 &&
  cmake --build /tmp/bnew -j16 --target test_fused_ops_cuda test_model_cuda bench_decode_cuda > $O/build_new.log 2>&1; echo "build rc=$? $(( $(date +%s) - T0 )) s"
grep -E "error" -A5 $O/build_new.log | head -30
B=/tmp/bnew
timeout 90 $B/tests/cuda/test_fused_ops_cuda --gtest_brief=1 > $O/fused.log 2>&1; echo "fused rc=$?"; grep -E "FAILED|PASSED" $O/fused.log | head -5
(cd /tmp/bnew && timeout 250 ctest -R 'test_model_cuda_layer_kernel' --output-on-failure > $O/model_lk.log 2>&1; echo "model layer kernel rc=$?"; tail -3 $O/model_lk.log)
echo "t=$(( $(date +%s) - T0 ))"
for s in 1b 3b; do for a in 0 1; do
  FLEXGEN_CUDA_LAYER_KERNEL=$a timeout 60 $B/bin/bench_decode_cuda --shape $s --reps 5 > $O/d_${s}_$a.json 2> $O/d_${s}_$a.log; echo "$s $a rc=$?"
done; done
echo "t=$(( $(date +%s) - T0 ))"
tar -czf $OUT/r63.tgz -C $O .
