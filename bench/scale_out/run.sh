#!/usr/bin/env bash
# Scale-out bench for a 2-GPU machine: the bundled WebQA x7 (322 samples) as 1 process on one GPU,
# then as 2 ranks (one per GPU, as torchrun would start them) sharing one {rank} output pattern,
# merged with `flexgen merge`; checks the merged records equal the 1-process run's byte for byte
# (cmp), samples both GPUs' utilisation while the ranks run, and prints one JSON.
#
#   bench/scale_out/run.sh BUILD_DIR MODEL_DIR OUT_DIR
#
# Optional env: SCALE_ARGS (generate options; default below), SCALE_TIMEOUT (s per generate run,
# default 1200), PYTHON (python3). Run from the repository root (data/webqa/ is read from there).
set -uo pipefail

if (( $# != 3 )); then echo "usage: $0 BUILD_DIR MODEL_DIR OUT_DIR" >&2; exit 2; fi
bin=$1/bin/flexgen model=$2 out=$3
py=${PYTHON:-python3}
run_timeout=${SCALE_TIMEOUT:-1200}
read -r -a gen_args <<<"${SCALE_ARGS:---method flex --shared-context --batch-size 32 --max-new-tokens 20 --stop none}"
mkdir -p "$out" || exit 1
rm -f "$out"/{single,part.*,sum.*,merged}.{jsonl,json} "$out"/{util.csv,errors.txt,*.log}
errors=$out/errors.txt
: >"$errors"
fail() { echo "$*" >>"$errors"; echo "scale_out: $*" >&2; }
now() { date +%s.%N; }
# No launcher variables from the calling shell: this script sets them itself.
unset RANK WORLD_SIZE LOCAL_RANK SLURM_PROCID SLURM_NTASKS SLURM_LOCALID OMPI_COMM_WORLD_LOCAL_RANK MPI_LOCALRANKID

[[ -x $bin ]] || { fail "$bin not found or not executable"; }
[[ -d $model ]] || { fail "model folder $model not found"; }

# The bundled 46 questions 7 times over, with distinct uuids (as bench/e2e_gpu/run_e2e.sh builds it).
data=$out/webqa_x7.jsonl
timeout 60 "$py" - "$data" <<'PY' || fail "could not write $data"
import json, sys
rows = [json.loads(l) for l in open("data/webqa/test.jsonl") if l.strip()]
with open(sys.argv[1], "w") as f:
    for k in range(7):
        for r in rows:
            f.write(json.dumps(dict(r, uuid=f"{r['uuid']}-{k}")) + "\n")
PY

gpus=$(timeout 30 nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l)
(( gpus >= 2 )) || fail "this bench needs 2 GPUs; nvidia-smi lists $gpus"

# generate NAME [env VAR=...] -- [extra options]: one flexgen run under the timeout, log in OUT/NAME.log.
generate() {
  local name=$1; shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  timeout -k 10 "$run_timeout" env "${envs[@]}" "$bin" --log-level warn generate --model "$model" \
    --device auto --dataset "$data" --train data/webqa/train.jsonl "${gen_args[@]}" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  (( rc == 0 )) || fail "$name: rc=$rc ($( (( rc == 124 || rc == 137 )) && echo "timed out after $run_timeout s, ")$(tail -2 "$out/$name.log" | tr '\n' ' '))"
  return $rc
}

# 1 process on GPU 0.
t0=$(now)
generate single CUDA_VISIBLE_DEVICES=0 -- --shard 0/1 --output "$out/single.jsonl" --summary "$out/single.json"
t1=$(now)

# 2 ranks, one GPU each (--device auto binds LOCAL_RANK's GPU), one {rank} pattern; GPUs sampled meanwhile.
timeout -k 5 $((run_timeout + 60)) nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used \
  --format=csv,noheader,nounits -lms 500 >"$out/util.csv" 2>/dev/null &
sampler=$!
t2=$(now)
pids=()
for r in 0 1; do
  generate "rank$r" LOCAL_RANK=$r RANK=$r WORLD_SIZE=2 -- \
    --output "$out/part.{rank}.jsonl" --summary "$out/sum.{rank}.json" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t3=$(now)
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null

# Merge, and compare with the 1-process run.
timeout 300 "$bin" --log-level warn merge --output "$out/merged.jsonl" --summary "$out/merged.json" \
  "$out/part.0.jsonl" "$out/part.1.jsonl" --summaries "$out/sum.0.json" "$out/sum.1.json" >"$out/merge.log" 2>&1 ||
  fail "merge: rc=$?: $(tail -3 "$out/merge.log" | tr '\n' ' ')"
identical=false
if [[ -s $out/merged.jsonl && -s $out/single.jsonl ]]; then
  if timeout 60 cmp "$out/single.jsonl" "$out/merged.jsonl" >"$out/cmp.log" 2>&1; then identical=true
  else fail "merged records differ from the 1-process run: $(head -1 "$out/cmp.log")"; fi
fi

timeout 60 "$py" - "$out" "$t0" "$t1" "$t2" "$t3" "$identical" <<'PY'
import json, os, sys
out, t0, t1, t2, t3, identical = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6] == "true"
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return None
def lines(name):
    try:
        return sum(1 for l in open(os.path.join(out, name)) if l.strip())
    except Exception:
        return None
def run(summary, wall=None):
    s = summary or {}
    return {"wall_s": round(wall, 2) if wall else None,  # the process(es), model loading included
            "run_wall_seconds": s.get("wall_seconds"),  # the run itself (longest rank), loading excluded
            "samples": s.get("samples"), "samples_per_second": s.get("samples_per_second"),
            "samples_per_second_incl_load": round(s["samples"] / wall, 3) if s.get("samples") and wall else None,
            "accuracy": s.get("accuracy"), "peak_rss_bytes": s.get("peak_rss_bytes")}
util = {}
try:
    for line in open(os.path.join(out, "util.csv")):
        f = [x.strip() for x in line.split(",")]
        if len(f) == 4 and f[2].isdigit():
            util.setdefault("gpu" + f[1], []).append(int(f[2]))
except Exception:
    pass
errors = [l.strip() for l in open(os.path.join(out, "errors.txt")) if l.strip()]
result = {
    "samples_in_dataset": lines("webqa_x7.jsonl"),
    "one_process": run(load("single.json"), t1 - t0),
    "two_ranks": dict(run(load("merged.json"), t3 - t2), ranks=[run(load(f"sum.{r}.json")) for r in (0, 1)]),
    "records_identical": identical,
    "records": {"one_process": lines("single.jsonl"), "merged": lines("merged.jsonl")},
    "gpu_utilisation_percent": {g: {"mean": round(sum(v) / len(v), 1), "samples": v} for g, v in sorted(util.items())},
    "errors": errors,
}
a, b = result["one_process"]["run_wall_seconds"], result["two_ranks"]["run_wall_seconds"]
result["speedup"] = round(a / b, 3) if a and b else None
print(json.dumps(result, indent=1))
PY
[[ -s $errors ]] && exit 1 || exit 0
