#!/usr/bin/env python3
"""End-to-end timings of the Python ways of running the flex (paraphrase-concatenation) job, on the
exact token sequences flexgen used (`flexgen generate --save-tokens FILE`).

Rows (greedy argmax, exactly --max-new-tokens tokens, no early stop, batch 1, sample by sample):
  reference_nocache_sdpa  every step re-runs the whole sequence with a dense 4-D boolean mask
                          [1,1,L,L] rebuilt each step, sdpa attention (the reference's no-cache loop)
  reference_flex_loop     every step re-runs the whole sequence; the BlockMask is rebuilt each step with
                          create_block_mask and passed to the model with attn_implementation=flex_attention
  hf_kv_cache             prefill once with the dense 4-D mask, then decode with the KV cache
                          (DynamicCache), attention_mask=None for the one-token decode steps

Mask (positions exact): causal AND (key is BOS or shared context, or query and key in the same
paraphrase segment / the same separator, or the query is a generated token). Position ids 0..L-1.

Usage: reference_pipeline.py --model DIR --tokens TOKENS.jsonl [--max-new-tokens 20] [--samples 10]
                             --out results.json [--only name,name] [--method-budget SECONDS]"""
import argparse
import inspect
import json
import statistics
import sys
import time
import traceback

METHODS = ["reference_nocache_sdpa", "hf_kv_cache", "reference_flex_loop"]  # run order: flex last


def log(msg):
    print(msg, flush=True)


def err_text(e):
    return f"{type(e).__name__}: {e}".strip()[:2000]


def load_records(path, n):
    recs = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                paras = r["paraphrases"]
                if not isinstance(paras, list) or not paras or not all(isinstance(p, list) and p for p in paras):
                    raise ValueError("'paraphrases' must be a non-empty list of non-empty id lists")
            except Exception as e:  # noqa: BLE001
                raise SystemExit(f"reference_pipeline: error: {path}:{lineno}: bad record: {err_text(e)}")
            recs.append(r)
            if len(recs) == n:
                break
    if not recs:
        raise SystemExit(f"reference_pipeline: error: {path} holds no records")
    return recs


def build_sequence(r):
    """[bos] + shared_context + p0 + sep + p1 + ... + p_{P-1}, and the group of every position:
    0 = BOS / shared context (seen by all), i+1 = paraphrase i, P+1+j = separator instance j."""
    ids, groups = [], []
    if r.get("bos") is not None:
        ids.append(int(r["bos"]))
        groups.append(0)
    shared = [int(t) for t in (r.get("shared_context") or [])]
    ids += shared
    groups += [0] * len(shared)
    paras, sep = r["paraphrases"], [int(t) for t in (r.get("separator") or [])]
    next_sep = len(paras) + 1
    for i, p in enumerate(paras):
        if i > 0 and sep:
            ids += sep
            groups += [next_sep] * len(sep)
            next_sep += 1
        ids += [int(t) for t in p]
        groups += [i + 1] * len(p)
    return ids, groups


def allowed(g, q, k):
    """The mask rule; g: group per position (-1 = generated). Works on broadcast index tensors (dense
    mask) and inside a flex mask_mod (scalar indices)."""
    gq, gk = g[q], g[k]
    return (k <= q) & ((gk == 0) | (gq == gk) | (gq < 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="", help="comma list of rows to run (default: all)")
    ap.add_argument("--attn", default="sdpa", help="attention of the dense-mask rows (default sdpa)")
    ap.add_argument("--method-budget", type=float, default=0,
                    help="stop timing a row's further samples once its timed samples took this many seconds (0 = off)")
    a = ap.parse_args()
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in METHODS]
    if unknown:
        raise SystemExit(f"reference_pipeline: error: --only: unknown rows {unknown}; known: {METHODS}")
    methods = [m for m in METHODS if not only or m in only]
    T = a.max_new_tokens
    if T < 1 or a.samples < 1:
        raise SystemExit("reference_pipeline: error: --max-new-tokens and --samples must be at least 1")

    recs = load_records(a.tokens, a.samples)
    seqs = [build_sequence(r) for r in recs]
    prompt_mean = sum(len(s[0]) for s in seqs) / len(seqs)
    log(f"reference_pipeline: {len(seqs)} samples, prompt tokens mean {prompt_mean:.1f} "
        f"(min {min(len(s[0]) for s in seqs)}, max {max(len(s[0]) for s in seqs)})")

    try:
        import torch
        import transformers
        from transformers import LlamaForCausalLM
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"reference_pipeline: error: cannot import torch/transformers: {err_text(e)}")
    if not torch.cuda.is_available():
        raise SystemExit("reference_pipeline: error: no CUDA device")
    dev = torch.device("cuda")
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": transformers.__version__, "samples": len(seqs), "max_new_tokens": T,
              "prompt_tokens_mean": prompt_mean, "rows": []}

    def write_result():
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)

    t = time.time()
    try:
        try:
            model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation=a.attn)
        except TypeError:  # transformers < 4.56 spells it torch_dtype
            model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation=a.attn)
        model = model.to(dev).eval()
    except Exception as e:  # noqa: BLE001
        result["error"] = f"loading {a.model}: {err_text(e)}"
        write_result()
        raise SystemExit(f"reference_pipeline: error: {result['error']}")
    log(f"reference_pipeline: loaded {a.model} ({model.config._attn_implementation}) in {time.time() - t:.1f} s; "
        f"{result['device']}, torch {torch.__version__}, transformers {transformers.__version__}")
    keep1 = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    neg1 = torch.full((1,), -1, dtype=torch.int32, device=dev)

    def tensors(seq):
        ids, groups = seq
        return (torch.tensor([ids], dtype=torch.long, device=dev), torch.tensor(groups, dtype=torch.int32, device=dev))

    def dense_mask(g):
        idx = torch.arange(g.numel(), device=dev)
        return allowed(g, idx[:, None], idx[None, :])[None, None]  # [1,1,L,L] bool, True = attend

    def positions(L):
        return torch.arange(L, device=dev).unsqueeze(0)

    def set_impl(impl):
        if model.config._attn_implementation == impl:
            return
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(impl)
        else:
            model.config._attn_implementation = impl
        if model.config._attn_implementation != impl:
            raise RuntimeError(f"could not switch the model to attn_implementation={impl} "
                               f"(still {model.config._attn_implementation})")

    def nocache_loop(seq, mask_fn):
        ids, g = tensors(seq)
        out = []
        for _ in range(T):
            L = ids.shape[1]
            logits = model(input_ids=ids, attention_mask=mask_fn(g), position_ids=positions(L), use_cache=False).logits
            nxt = logits[0, -1].argmax()
            out.append(nxt)
            ids = torch.cat([ids, nxt.view(1, 1)], 1)
            g = torch.cat([g, neg1])
        return torch.stack(out), {}

    def run_nocache_sdpa(seq):
        return nocache_loop(seq, dense_mask)

    def run_flex(seq):
        from torch.nn.attention.flex_attention import create_block_mask

        def block_mask(g):
            L = g.numel()

            def mask_mod(b, h, q_idx, kv_idx):
                return allowed(g, q_idx, kv_idx)
            return create_block_mask(mask_mod, 1, None, L, L, device="cuda")
        return nocache_loop(seq, block_mask)

    def run_kv(seq):
        ids, g = tensors(seq)
        L0 = ids.shape[1]
        out = model(input_ids=ids, attention_mask=dense_mask(g), position_ids=positions(L0), use_cache=True, **keep1)
        cache = out.past_key_values
        if cache is None:
            raise RuntimeError("the prefill returned no past_key_values")
        nxt = out.logits[0, -1].argmax()
        toks = [nxt]
        torch.cuda.synchronize()
        t_prefill = time.perf_counter()
        for s in range(1, T):
            pos = torch.full((1, 1), L0 + s - 1, dtype=torch.long, device=dev)
            out = model(input_ids=nxt.view(1, 1), past_key_values=cache, position_ids=pos, use_cache=True, **keep1)
            cache = out.past_key_values
            nxt = out.logits[0, -1].argmax()
            toks.append(nxt)
        torch.cuda.synchronize()
        return torch.stack(toks), {"t_prefill_end": t_prefill, "t_end": time.perf_counter()}

    def mask_check(seq):
        """Last hidden states of the prompt under: the dense mask (sdpa), plain causal (sdpa), the BlockMask
        (flex). flex must match dense to bf16 noise and be far from causal, or the BlockMask was not applied."""
        from torch.nn.attention.flex_attention import create_block_mask
        ids, g = tensors(seq)
        L = ids.shape[1]
        set_impl(a.attn)
        h_dense = model.model(input_ids=ids, attention_mask=dense_mask(g), position_ids=positions(L),
                              use_cache=False).last_hidden_state.float()
        h_causal = model.model(input_ids=ids, position_ids=positions(L), use_cache=False).last_hidden_state.float()
        set_impl("flex_attention")
        bm = create_block_mask(lambda b, h, q, k: allowed(g, q, k), 1, None, L, L, device="cuda")
        h_flex = model.model(input_ids=ids, attention_mask=bm, position_ids=positions(L),
                             use_cache=False).last_hidden_state.float()
        n = h_dense.norm()
        c = {"flex_vs_dense_rel": ((h_flex - h_dense).norm() / n).item(),
             "causal_vs_dense_rel": ((h_causal - h_dense).norm() / n).item()}
        if not c["flex_vs_dense_rel"] < 0.25 * c["causal_vs_dense_rel"]:
            c["warning"] = "flex output is not much closer to the dense-mask output than plain causal is"
        return c

    runners = {"reference_nocache_sdpa": run_nocache_sdpa, "hf_kv_cache": run_kv, "reference_flex_loop": run_flex}
    generated = {}
    for name in methods:
        row = {"name": name}
        try:
            with torch.inference_mode():
                if name == "reference_flex_loop":
                    try:
                        row["mask_check"] = mask_check(seqs[0])
                    except Exception as e:  # noqa: BLE001
                        row["mask_check"] = {"error": err_text(e)}
                    set_impl("flex_attention")
                else:
                    set_impl(a.attn)
                try:
                    import torch._dynamo.utils as dyn_utils
                    graphs_before = dyn_utils.counters["stats"]["unique_graphs"]
                except Exception:  # noqa: BLE001
                    dyn_utils, graphs_before = None, None
                fn = runners[name]
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn(seqs[0])  # untimed warm-up (torch.compile of flex_attention happens here)
                torch.cuda.synchronize()
                row["warmup_seconds"] = time.perf_counter() - t0
                graphs_warm = dyn_utils.counters["stats"]["unique_graphs"] if dyn_utils else None
                times, gens, prefill, decode, plen = [], [], [], [], []
                for seq in seqs:
                    if a.method_budget and sum(times) > a.method_budget:
                        break
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    toks, info = fn(seq)
                    torch.cuda.synchronize()
                    t1 = time.perf_counter()
                    times.append(t1 - t0)
                    gens.append(toks.tolist())
                    plen.append(len(seq[0]))
                    if info:
                        prefill.append(info["t_prefill_end"] - t0)
                        decode.append((info["t_end"] - info["t_prefill_end"]) / max(1, T - 1))
            total = sum(times)
            row.update({"samples": len(times), "seconds_per_sample": total / len(times),
                        "median_seconds_per_sample": statistics.median(times),
                        "samples_per_second": len(times) / total, "prompt_tokens_mean": sum(plen) / len(plen),
                        "new_tokens_per_sample": T})
            if prefill:
                row["prefill_ms"] = 1000 * sum(prefill) / len(prefill)
                row["decode_step_ms"] = 1000 * sum(decode) / len(decode)
            if dyn_utils:
                row["dynamo_graphs_compiled_warmup"] = graphs_warm - graphs_before
                row["dynamo_graphs_compiled_timed"] = dyn_utils.counters["stats"]["unique_graphs"] - graphs_warm
            generated[name] = gens
            ref = generated.get("reference_nocache_sdpa")
            if ref is not None and name != "reference_nocache_sdpa":
                m = min(len(ref), len(gens))
                row["same_tokens_as_nocache_sdpa"] = sum(ref[i] == gens[i] for i in range(m)) / m
                row["same_first_token_as_nocache_sdpa"] = sum(ref[i][0] == gens[i][0] for i in range(m)) / m
            msg = (f"{name}: {row['seconds_per_sample']:.4f} s/sample ({row['samples_per_second']:.2f} samples/s, "
                   f"{len(times)} samples, warm-up {row['warmup_seconds']:.1f} s)")
            if "decode_step_ms" in row:
                msg += f"; prefill {row['prefill_ms']:.1f} ms, decode step {row['decode_step_ms']:.2f} ms"
            if "same_tokens_as_nocache_sdpa" in row:
                msg += f"; same tokens as nocache_sdpa on {100 * row['same_tokens_as_nocache_sdpa']:.0f}% of samples"
            if "mask_check" in row:
                msg += f"; mask check {row['mask_check']}"
            log(msg)
        except Exception as e:  # noqa: BLE001
            row["error"] = err_text(e)
            log(f"{name}: ERROR {row['error']}")
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        finally:
            torch.cuda.empty_cache()
        result["rows"].append(row)
        write_result()
    write_result()
    log(f"reference_pipeline: wrote {a.out}")


if __name__ == "__main__":
    main()
