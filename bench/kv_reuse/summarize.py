"""One JSON document from bench/kv_reuse/run.sh's OUT_DIR: each method with and without the store."""
import filecmp
import json
import os
import platform
import sys


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(out, name, store):
    s = json.load(open(os.path.join(out, f"{name}_{store}.summary.json")))
    k = s["kv_reuse"]
    return {
        "samples": s["samples"],
        "samples_per_second": s["samples_per_second"],
        "wall_seconds": s["wall_seconds"],
        "prompt_tokens_computed": k["prompt_tokens_computed"],
        "prompt_tokens_reused": k["prompt_tokens_reused"],
        "prompt_tokens_copied": k.get("prompt_tokens_copied", 0),
        "prefill_passes": s.get("prefill_passes"),
        "prefill_seconds": s["prefill_tokens"] / s["prefill_tokens_per_second"] if s["prefill_tokens_per_second"] else None,
        "decode_step_ms": s["decode_step_ms"],
        "decode_steps": s["decode_steps"],
        "compute": s.get("compute"),
    }


def main():
    out, methods, load_start, load_end = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
    what = {"avg": "--method avg", "shared": "--method flex --shared-context", "flex": "--method flex",
            "restart": "--method flex --positions restart"}
    rows = []
    for m in methods:
        on, off = run(out, m, "on"), run(out, m, "off")
        same = filecmp.cmp(os.path.join(out, f"{m}_on.jsonl"), os.path.join(out, f"{m}_off.jsonl"), shallow=False)
        rows.append({"method": m, "options": what[m], "store": on, "no_store": off,
                     "ratio": on["samples_per_second"] / off["samples_per_second"], "records_identical": same})
    # flexgen's CPU kernels are its own (compute.cpu_kernels); libtorch's OpenBLAS settings, if any, as set.
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_") or k == "FLEXGEN_CPU_ISA"}
    doc = {"bench": "kv_reuse", "cpu_model": cpu_model(), "cpus": os.cpu_count(), "env": env,
           "loadavg_start": load_start, "loadavg_end": load_end, "runs": rows}
    print(json.dumps(doc, indent=2))
    return 0 if all(r["records_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
