#!/usr/bin/env python3
"""Table of bench/e2e_gpu/run_e2e.sh's results. Usage: summarize.py OUT_DIR > OUT_DIR/table.md
Reads OUT_DIR/flexgen_NAME.summary.json (or .error), reference.json (or reference.error); prints a markdown
table and writes OUT_DIR/e2e.json ({"rows": [...]}). A row that failed shows "error" and the message.
Then, for each OUT_DIR/decode_SHAPE.json that bench_decode_cuda wrote (or decode_SHAPE.error), a per-kernel
table of one decode step: time per launch, GB/s, fraction of the measured bandwidth, and the step's line."""
import glob
import json
import os
import subprocess
import sys

FLEXGEN = {  # name -> what it runs (flexgen generate ... --stop none --max-new-tokens 20)
    "flex_b1": "--method flex --batch-size 1",
    "flex_shared_b1": "--method flex --shared-context --batch-size 1",
    "flex_b32": "--method flex --batch-size 32",
    "flex_shared_b32": "--method flex --shared-context --batch-size 32",
    "avg_b1": "--method avg --batch-size 1",
    "flex_shared_b32_x7": "--method flex --shared-context --batch-size 32 (WebQA x7: 322 samples)",
    "flex_shared_b128_x7": "--method flex --shared-context --batch-size 128 (WebQA x7: 322 samples)",
    "flex_shared_b322_x7": "--method flex --shared-context --batch-size 322 (WebQA x7: 322 samples)",
    "flex_b32_x7": "--method flex --batch-size 32 (WebQA x7: 322 samples)",
    "flex_restart_b32_x7": "--method flex --positions restart --batch-size 32 (WebQA x7: 322 samples)",
    "avg_b32_x7": "--method avg --batch-size 32 (WebQA x7: 322 samples)",
}
REFERENCE = ["reference_nocache_sdpa", "reference_flex_loop", "hf_kv_cache"]
BASELINE = "reference_nocache_sdpa"


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def read_json(path):
    text = read_text(path)
    if text is None:
        return None, f"{os.path.basename(path)} missing"
    try:
        return json.loads(text), None
    except ValueError as e:
        return None, f"{os.path.basename(path)}: bad JSON: {e}"


def flexgen_rows(out):
    names = list(FLEXGEN)
    for p in sorted(glob.glob(os.path.join(out, "flexgen_*.summary.json")) + glob.glob(os.path.join(out, "flexgen_*.error"))):
        n = os.path.basename(p)[len("flexgen_"):].split(".")[0]
        if n not in names:
            names.append(n)
    rows = []
    for n in names:
        row = {"name": f"flexgen {n}", "source": "flexgen", "options": FLEXGEN.get(n, "")}
        err = read_text(os.path.join(out, f"flexgen_{n}.error"))
        s, jerr = read_json(os.path.join(out, f"flexgen_{n}.summary.json"))
        if err:
            row["error"] = err
        elif s is None:
            row["error"] = jerr
        else:
            try:
                samples, wall = s["samples"], s["wall_seconds"]
                row.update({"samples": samples, "seconds_per_sample": wall / samples,
                            "samples_per_second": samples / wall, "wall_seconds": wall,
                            "prompt_tokens_per_sample": s.get("prefill_tokens", 0) / samples,
                            "prefill_tokens_per_second": s.get("prefill_tokens_per_second"),
                            "decode_tokens_per_second": s.get("decode_tokens_per_second"),
                            "flexgen_decode_step_ms": s.get("decode_step_ms"),
                            "accuracy": s.get("accuracy")})
            except (KeyError, TypeError, ZeroDivisionError) as e:
                row["error"] = f"summary lacks a usable samples/wall_seconds: {type(e).__name__}: {e}"
        rows.append(row)
    return rows


def reference_rows(out):
    ref, jerr = read_json(os.path.join(out, "reference.json"))
    err = read_text(os.path.join(out, "reference.error"))
    got = {r.get("name"): r for r in (ref or {}).get("rows", [])}
    rows = []
    for n in REFERENCE + [k for k in got if k not in REFERENCE]:
        row = {"name": n, "source": "python"}
        r = got.get(n)
        if r is None:
            row["error"] = (ref or {}).get("error") or err or jerr or "row not run"
        elif "error" in r:
            row["error"] = r["error"]
        else:
            row.update({k: v for k, v in r.items() if k != "name"})
            row["prompt_tokens_per_sample"] = r.get("prompt_tokens_mean")
        rows.append(row)
    return rows, ref or {}


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def fmt_bytes(b):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def pct(x):
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def decode_names(out):
    """SHAPE of every decode_SHAPE.json / .error in OUT (bench_decode_cuda's runs), in name order."""
    names = set()
    for p in glob.glob(os.path.join(out, "decode_*.json")) + glob.glob(os.path.join(out, "decode_*.error")):
        names.add(os.path.basename(p)[len("decode_"):].rsplit(".", 1)[0])
    return sorted(names)


def decode_section(out, name):
    """Markdown lines for one bench_decode_cuda run (bench/decode_cuda/README.md says what the fields mean)."""
    err = read_text(os.path.join(out, f"decode_{name}.error"))
    d, jerr = read_json(os.path.join(out, f"decode_{name}.json"))
    if err or d is None:
        return [f"### Decode step kernel by kernel: {name}", "", f"error: {' '.join(str(err or jerr).split())[:300]}"]
    try:
        lim, step, setup = d["limits"], d["step"], d.get("setup", {})
        lines = [f"### Decode step kernel by kernel: {d.get('shape', name)}, {d.get('dtype', '?')}, batch 1, "
                 f"context {setup.get('context', '?')} (bench_decode_cuda{', ' + d['device'] if d.get('device') else ''})",
                 "",
                 f"Measured limits: copy {lim['copy_gbps']:.0f} GB/s, read {lim['read_gbps']:.0f} GB/s. "
                 f"Step {step['step_ms']:.3f} ms with CUDA graphs ({step['step_ms_no_graphs']:.3f} ms without); "
                 f"kernels alone {step['sum_of_kernels_ms']:.3f} ms ({100 * step['kernels_over_step']:.0f}% of the step); "
                 f"ideal {step['ideal_ms']:.3f} ms ({fmt_bytes(step['weight_bytes'])} of weights at the read bandwidth): "
                 f"the step runs at {100 * step['fraction']:.0f}% of the bandwidth limit.",
                 "",
                 "| kernel | launches/step | us/launch | bytes/launch | GB/s | of copy bw | of read bw | ms/step |",
                 "|---|---|---|---|---|---|---|---|"]
        for k in d["kernels"]:
            lines.append(f"| {k['name']} | {k['launches_per_step']} | {k['us']:.2f} | {fmt_bytes(k['bytes'])} | "
                         f"{k['gbps']:.0f} | {pct(k['frac_copy_bw'])} | {pct(k['frac_read_bw'])} | "
                         f"{k['us'] * k['launches_per_step'] / 1e3:.3f} |")
        lines.append(f"| all kernels alone | | | | | | | {step['sum_of_kernels_ms']:.3f} |")
        lines.append(f"| step (CUDA graphs), weights only | | | {fmt_bytes(step['weight_bytes'])} | "
                     f"{step['weight_bytes'] / step['step_ms'] / 1e6:.0f} | "
                     f"{pct(step['weight_bytes'] / step['step_ms'] / 1e6 / lim['copy_gbps'])} | "
                     f"{pct(step['fraction'])} | {step['step_ms']:.3f} |")
        if "step_ms_overlapped" in step:
            lines += ["", f"Overlapped steps (as greedy runs decode): {step['step_ms_overlapped']:.3f} ms a step, "
                          f"{pct(step['fraction_overlapped'])} of the bandwidth limit."]
        pf = d.get("prefill")
        if pf:
            lines += ["", f"Prefill pass of {pf['rows']} row(s) x {pf['tokens_per_row']} tokens: {pf['ms']:.2f} ms "
                          f"({pf['tflops']:.0f} TFLOP/s, {pct(pf['fraction_of_matmul'])} of the dense matmul rate "
                          f"measured in the same run, {pf['matmul_tflops']:.0f} TFLOP/s); the host queued it in "
                          f"{pf['enqueue_ms']:.2f} ms."]
        return lines
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        return [f"### Decode step kernel by kernel: {name}", "",
                f"error: decode_{name}.json lacks a usable field: {type(e).__name__}: {e}"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py OUT_DIR")
    out = sys.argv[1]
    fg = flexgen_rows(out)
    ref_rows, ref = reference_rows(out)
    rows = fg + ref_rows
    base = next((r for r in ref_rows if r["name"] == BASELINE and "error" not in r), None)
    for r in rows:
        if base and "error" not in r:
            r["speedup_vs_" + BASELINE] = r["samples_per_second"] / base["samples_per_second"]
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        gpu = ref.get("device", "unknown")
    info = {"gpu": gpu, "torch": ref.get("torch"), "transformers": ref.get("transformers"),
            "max_new_tokens": 20, "reference_samples": ref.get("samples")}
    with open(os.path.join(out, "e2e.json"), "w") as f:
        json.dump({**info, "rows": rows}, f, indent=2)

    print(f"GPU: {gpu}; torch {info['torch']}, transformers {info['transformers']}; 20 new tokens per sample, "
          f"no early stop; flexgen rows: bundled WebQA; python rows: the first {info['reference_samples'] or 'N'} "
          f"samples of flex_b1's token sequences, batch 1\n")
    print(f"| row | samples | seconds/sample | samples/s | speed-up vs {BASELINE} | prompt tokens/sample | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            msg = " ".join(str(r["error"]).split())[:300].replace("|", "\\|")
            print(f"| {r['name']} | error | | | | | {msg} |")
            continue
        notes = []
        if r.get("options"):
            notes.append(r["options"])
        if r.get("decode_tokens_per_second"):
            notes.append(f"decode {r['decode_tokens_per_second']:.0f} tok/s")
        if r.get("prefill_tokens_per_second"):
            notes.append(f"prefill {r['prefill_tokens_per_second']:.0f} tok/s")
        if r.get("flexgen_decode_step_ms"):
            notes.append(f"decode step (model) {r['flexgen_decode_step_ms']:.2f} ms")
        if "decode_step_ms" in r:
            notes.append(f"prefill {r['prefill_ms']:.1f} ms, decode step {r['decode_step_ms']:.2f} ms")
        if "warmup_seconds" in r:
            notes.append(f"warm-up {r['warmup_seconds']:.1f} s")
        if "same_tokens_as_nocache_sdpa" in r:
            notes.append(f"same tokens as nocache {100 * r['same_tokens_as_nocache_sdpa']:.0f}%")
        mc = r.get("mask_check")
        if mc:
            notes.append(f"mask check: error {mc['error']}" if "error" in mc else
                         f"mask check: flex vs dense {mc['flex_vs_dense_rel']:.2e}, causal vs dense "
                         f"{mc['causal_vs_dense_rel']:.2e}" + (" WARNING" if "warning" in mc else ""))
        sp = r.get("speedup_vs_" + BASELINE)
        print(f"| {r['name']} | {r['samples']} | {r['seconds_per_sample']:.4f} | {r['samples_per_second']:.2f} | "
              f"{fmt(sp, '.1f') + 'x' if sp is not None else 'n/a'} | {fmt(r.get('prompt_tokens_per_sample'), '.0f')} | "
              f"{'; '.join(notes).replace('|', chr(92) + '|')} |")
    for name in decode_names(out):
        print()
        print("\n".join(decode_section(out, name)))


if __name__ == "__main__":
    main()
