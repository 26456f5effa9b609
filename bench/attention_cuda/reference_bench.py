#!/usr/bin/env python3
"""PyTorch baselines for bench/attention_cuda: flex_attention (torch.compile'd, block mask from
create_block_mask with the same mask) and SDPA with a dense boolean mask.

Same problem as bench_attention_cuda: BOS + 5 isolated segments (each sees BOS and itself,
causal), 24 query heads / 8 KV heads (GQA), head_dim 128, bf16, batch 1. Times are medians of
CUDA-event timed runs after warm-up (no cache flush, as in the C++ bench). Prints JSON."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def group_ids(L, device):
    rest = L - 1
    lengths = [rest // 5] * 5
    lengths[-1] += rest - 5 * (rest // 5)
    ids = [0]
    for i, n in enumerate(lengths):
        ids += [i + 1] * n
    return torch.tensor(ids, dtype=torch.int32, device=device)


def time_us(fn, warmup=5, reps=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in evs:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    t = sorted(a.elapsed_time(b) * 1000.0 for a, b in evs)
    return t[len(t) // 2]


def main():
    lengths = [int(x) for x in sys.argv[1:]] or [640, 4096, 16384]
    dev = "cuda"
    H, Hkv, d = 24, 8, 128
    flex = torch.compile(flex_attention)
    rows = []
    torch.manual_seed(0)
    for L in lengths:
        gid = group_ids(L, dev)

        def mask_mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & ((gid[q_idx] == gid[kv_idx]) | (gid[kv_idx] == 0))

        q = torch.randn(1, H, L, d, device=dev, dtype=torch.bfloat16)
        k = torch.randn(1, Hkv, L, d, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, Hkv, L, d, device=dev, dtype=torch.bfloat16)

        bm = create_block_mask(mask_mod, None, None, L, L, device=dev)
        cbm = time_us(lambda: create_block_mask(mask_mod, None, None, L, L, device=dev), warmup=2, reps=10)
        flex_us = time_us(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True), reps=30 if L >= 16384 else 100)

        pos = torch.arange(L, device=dev)
        dense = (pos[None, :] <= pos[:, None]) & ((gid[:, None] == gid[None, :]) | (gid[None, :] == 0))
        sdpa_us = time_us(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense, enable_gqa=True),
                          reps=20 if L >= 16384 else 100)
        # Agreement of the two baselines (sanity: same mask).
        a = flex(q, k, v, block_mask=bm, enable_gqa=True).float()
        b = F.scaled_dot_product_attention(q, k, v, attn_mask=dense, enable_gqa=True).float()
        rel = ((a - b).norm() / b.norm()).item()
        rows.append({"L": L, "flex_us": flex_us, "sdpa_dense_mask_us": sdpa_us, "create_block_mask_us": cbm,
                     "flex_vs_sdpa_rel_err": rel})
        print(f"L {L}: flex {flex_us:.1f} us, sdpa {sdpa_us:.1f} us, create_block_mask {cbm:.0f} us",
              file=sys.stderr)
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
