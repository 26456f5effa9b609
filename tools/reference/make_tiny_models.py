#!/usr/bin/env python3
"""Builds tiny random LLaMA-3, LLaMA-2 and Qwen2 models with Hugging Face transformers and
writes golden outputs for flexgen's C++ model tests (tests/model/).

Run where torch + transformers + safetensors (+ sentencepiece for tiny_llama2) exist (the GPU
machine; CPU compute):
    python3 tools/reference/make_tiny_models.py OUTDIR [NAME,NAME,...]
then copy OUTDIR/* into tests/data/model/. Without names every model is made; each model's
weights depend only on its own seed, so making a subset leaves the others' files as they are.

For each model NAME it writes:
    NAME/config.json, model.safetensors, generation_config.json   (HF directory)
    NAME/golden.safetensors   prompt_logits [B, L, V], mask_logits [B, L, V]
                              (fp32; computed by transformers, eager attention, CPU, fp32)
    NAME/golden.json          prompt ids, mask description (group ids, visibility,
                              causality, position ids), greedy ids and margins
and TorchScript archives ts_nested/ (parameters under HF names, config.json beside
it) and ts_dict/ (a Dict[str, Tensor] attribute; no config beside it).
"""
import json
import math
import os
import shutil
import sys
from typing import Dict

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

torch.manual_seed(0)
torch.set_num_threads(4)

MODELS = [
    # GQA 3:1, head_dim 16, tied, llama3 RoPE scaling, transformers 5.x config style, fp32.
    dict(name="tiny_gqa_tied", hidden=96, heads=6, kv=2, head_dim=16, inter=192, layers=2,
         vocab=256, tied=True, rope="llama3", theta=10000.0, style="v5", dtype=torch.float32,
         eos=[1, 2]),
    # MHA 1:1, head_dim 32, untied, llama3 RoPE, transformers 4.x config style, bf16 weights.
    dict(name="tiny_mha_untied_bf16", hidden=128, heads=4, kv=4, head_dim=32, inter=256,
         layers=2, vocab=256, tied=False, rope="llama3", theta=500000.0, style="v4",
         dtype=torch.bfloat16, eos=2),
    # GQA 2:1, head_dim 32 != hidden/heads (96/4), untied, plain RoPE, 4.x style, fp32.
    dict(name="tiny_headdim", hidden=96, heads=4, kv=2, head_dim=32, inter=128, layers=2,
         vocab=256, tied=False, rope="default", theta=10000.0, style="v4",
         dtype=torch.float32, eos=2),
    # Qwen2 (issue 17): q/k/v bias, untied head (1.5B+ style), rope_theta 1e6 without scaling,
    # sliding-window fields present but unused (use_sliding_window false), 4.x config, fp32.
    dict(name="tiny_qwen2", family="qwen2", hidden=64, heads=4, kv=2, head_dim=16, inter=160,
         layers=2, vocab=256, tied=False, rope="default", theta=1000000.0, style="v4",
         dtype=torch.float32, eos=[2, 1], bos=1, seed=4242),
    # Qwen2, tied head (0.5B style), GQA 6:2, bf16 weights, transformers 5.x config.
    dict(name="tiny_qwen2_tied_bf16", family="qwen2", hidden=96, heads=6, kv=2, head_dim=16,
         inter=192, layers=2, vocab=256, tied=True, rope="default", theta=1000000.0, style="v5",
         dtype=torch.bfloat16, eos=2, bos=1, seed=4343),
    # LLaMA with attention_bias and mlp_bias (bias on q/k/v/o and gate/up/down), fp32.
    dict(name="tiny_llama_bias", hidden=64, heads=4, kv=4, head_dim=16, inter=128, layers=2,
         vocab=256, tied=False, rope="default", theta=10000.0, style="v4", dtype=torch.float32,
         eos=2, bias=True, seed=4444),
    # LLaMA-2 style: plain RoPE theta 1e4, MHA, untied, bos 1 / eos 2, 4.x config, fp16 weights
    # as LLaMA-2 checkpoints ship, and a SentencePiece tokenizer.model (committed in
    # tests/data/model/tiny_llama2, trained with spm_train): its vocabulary is the model's.
    dict(name="tiny_llama2", hidden=64, heads=4, kv=4, head_dim=16, inter=172, layers=2,
         vocab=None, tied=False, rope="default", theta=10000.0, style="v4", dtype=torch.float16,
         eos=2, bos=1, seed=4545, spm=True),
    # Qwen2 with a Qwen2-style byte-level tokenizer.json (256 byte tokens + <|endoftext|>,
    # <|im_start|>, <|im_end|> at 256..258, Qwen2's split pattern, NFC, no merges, no BOS) and
    # Qwen2.5's chat template: the e2e golden is `--chat` through transformers' apply_chat_template.
    dict(name="tiny_qwen2_chat", family="qwen2", hidden=64, heads=4, kv=2, head_dim=16, inter=160,
         layers=2, vocab=259, tied=False, rope="default", theta=1000000.0, style="v4",
         dtype=torch.float32, eos=[258, 256], bos=256, seed=4646, chat=True, max_pos=4096),
]
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen2.5's chat template without its tools branch (what flexgen's --chat writes: a user turn).
QWEN_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (the ByteLevel pre-tokenizer's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_qwen_tokenizer(d):
    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    added = [dict(id=256 + i, content=c, single_word=False, lstrip=False, rstrip=False, normalized=False,
                  special=True) for i, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "NFC"},
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": QWEN_SPLIT}, "behavior": "Isolated", "invert": False},
               byte_level]},
           "post_processor": byte_level, "decoder": byte_level,
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": []}}
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "unk_token": None, "add_prefix_space": False,
                   "model_max_length": 4096, "chat_template": QWEN_CHAT_TEMPLATE}, f)
E2E_QUESTION = "what is the capital of australia?"
E2E_INSTRUCTION = ("Answer the question based on general world knowledge. Provide a short and "
                   "direct answer.")
ROPE_LLAMA3 = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)


def family(m):
    return m.get("family", "llama")


def make_config(m):
    kw = dict(vocab_size=m["vocab"], hidden_size=m["hidden"], intermediate_size=m["inter"],
              num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
              num_key_value_heads=m["kv"], max_position_embeddings=m.get("max_pos", 256),
              rms_norm_eps=1e-5 if family(m) == "llama" else 1e-6, tie_word_embeddings=m["tied"],
              bos_token_id=m.get("bos", 0), eos_token_id=m["eos"])
    if family(m) == "llama":
        kw.update(head_dim=m["head_dim"], attention_bias=m.get("bias", False),
                  mlp_bias=m.get("bias", False))
        Config = LlamaConfig
    else:
        assert m["head_dim"] * m["heads"] == m["hidden"]
        kw.update(use_sliding_window=False, sliding_window=4096, max_window_layers=1)
        Config = Qwen2Config
    rope = {"rope_type": m["rope"], "rope_theta": m["theta"]}
    if m["rope"] == "llama3":
        rope.update(ROPE_LLAMA3)
    try:
        cfg = Config(rope_parameters=rope, **kw)
    except TypeError:
        scaling = None if m["rope"] == "default" else dict(rope, rope_type="llama3")
        cfg = Config(rope_theta=m["theta"], rope_scaling=scaling, **kw)
    cfg._attn_implementation = "eager"
    return cfg


def init_weights(model, m):
    """Large enough weights that logits are far from uniform (diverse greedy output)."""
    g = torch.Generator().manual_seed(m.get("seed", 1234 + m["hidden"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                # Tied: a small embedding keeps the residual stream from echoing the input token.
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 if m["tied"] else 1.0))
            elif "o_proj" in name or "down_proj" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (3.0 / math.sqrt(p.shape[-1])))
            elif "lm_head" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) * (1.2 / math.sqrt(fan_in)))


def greedy_continuation(model, ids, steps):
    """Greedy ids after the prompt `ids` (full recompute each step) and each step's top-1/top-2 margin."""
    cur = torch.tensor([ids])
    out, margins = [], []
    for _ in range(steps):
        lg = model(cur).logits[0, -1].float()
        top = torch.topk(lg, 2)
        out.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        cur = torch.cat([cur, top.indices[:1].view(1, 1)], 1)
    return out, margins


def ref_forward(model, cfg, ids, allowed, pos):
    """Independent plain-torch LLaMA forward (for checking what transformers did with the mask)."""
    sd = {k: v.float() for k, v in model.state_dict().items()}
    H, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    inv = model.model.rotary_emb.inv_freq.float()
    x = sd["model.embed_tokens.weight"][ids]
    B, L, _ = x.shape

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + cfg.rms_norm_eps))

    fr = pos[:, :, None].float() * inv[None, None, :]
    emb = torch.cat([fr, fr], -1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]

    def rope(t):
        t1, t2 = t[..., : D // 2], t[..., D // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    def lin(t, name):
        out = t @ sd[name + ".weight"].T
        return out + sd[name + ".bias"] if name + ".bias" in sd else out

    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj").view(B, L, H, D).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").view(B, L, Hkv, D).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").view(B, L, Hkv, D).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // Hkv, 1)
        v = v.repeat_interleave(H // Hkv, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(~allowed[:, None], float("-inf"))
        a = torch.softmax(s, -1) @ v
        x = x + lin(a.transpose(1, 2).reshape(B, L, H * D), p + "self_attn.o_proj")
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        gt = lin(h, p + "mlp.gate_proj")
        up = lin(h, p + "mlp.up_proj")
        x = x + lin(torch.nn.functional.silu(gt) * up, p + "mlp.down_proj")
    x = rms(x, sd["model.norm.weight"])
    w = sd["model.embed_tokens.weight"] if cfg.tie_word_embeddings else sd["lm_head.weight"]
    return x @ w.T


def mask_rows():
    """Two rows of an ensemble-style mask: group ids, visibility, causality, positions."""
    # Row 0: BOS | para1 (5) | sep (2) | para2 (5) | generated (5), restart positions.
    g0 = [0] + [1] * 5 + [2] * 2 + [3] * 5 + [4] * 5
    vis0 = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [1, 0, 0, 1, 0], [1, 1, 1, 1, 1]]
    pos0 = [0] + [1, 2, 3, 4, 5] + [1, 2] + [1, 2, 3, 4, 5] + [6, 7, 8, 9, 10]
    # Row 1: BOS | shared context (3) | para1 (4) | para2 (6) | generated (4), arbitrary offsets.
    g1 = [0] + [1] * 3 + [2] * 4 + [3] * 6 + [4] * 4
    vis1 = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 1, 0], [1, 1, 1, 1, 1]]
    pos1 = [5 + i for i in range(4)] + [20 + i for i in range(4)] + [20 + i for i in range(6)] + \
           [40 + i for i in range(4)]
    return [dict(group_ids=g0, visible=vis0, causal=True, positions=pos0),
            dict(group_ids=g1, visible=vis1, causal=True, positions=pos1)]


def dense_allowed(rows):
    L = len(rows[0]["group_ids"])
    out = torch.zeros(len(rows), L, L, dtype=torch.bool)
    for b, r in enumerate(rows):
        g = r["group_ids"]
        for q in range(L):
            for k in range(L):
                out[b, q, k] = (not r["causal"] or k <= q) and bool(r["visible"][g[q]][g[k]])
    return out


def load_pretrained(d, dtype, m=None):
    Model = Qwen2ForCausalLM if m is not None and family(m) == "qwen2" else LlamaForCausalLM
    try:
        mod = Model.from_pretrained(d, dtype=dtype, attn_implementation="eager")
    except TypeError:
        mod = Model.from_pretrained(d, torch_dtype=dtype, attn_implementation="eager")
    assert mod.model.rotary_emb.inv_freq.dtype == torch.float32
    return mod.eval()


def rewrite_v4_config(path, m):
    with open(path) as f:
        c = json.load(f)
    rp = c.pop("rope_parameters", None)
    if rp is not None:
        c["rope_theta"] = rp.get("rope_theta", m["theta"])
        if rp.get("rope_type", "default") != "default":
            c["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
        else:
            c["rope_scaling"] = None
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    c["transformers_version"] = "4.46.0"
    if family(m) == "qwen2":
        # As Qwen2.5's own configs: the window fields are there, the window is off.
        c.pop("layer_types", None)
        c.update(use_sliding_window=False, sliding_window=4096, max_window_layers=1)
    with open(path, "w") as f:
        json.dump(c, f, indent=2)


def torchscript_nested(sd: Dict[str, torch.Tensor]):
    class Node(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Node()
    for name, t in sd.items():
        parts = name.split(".")
        mod = root
        for p in parts[:-1]:
            if not hasattr(mod, p):
                mod.add_module(p, Node())
            mod = getattr(mod, p)
        mod.register_parameter(parts[-1], torch.nn.Parameter(t.clone(), requires_grad=False))
    return torch.jit.script(root)


class DictHolder(torch.nn.Module):
    def __init__(self, sd: Dict[str, torch.Tensor]):
        super().__init__()
        self.weights: Dict[str, torch.Tensor] = sd

    def forward(self, name: str) -> torch.Tensor:
        return self.weights[name]


def main():
    out = sys.argv[1]
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    os.makedirs(out, exist_ok=True)
    print("torch", torch.__version__, "transformers", transformers.__version__)
    report = {}
    for m in MODELS:
        if only is not None and m["name"] not in only:
            continue
        d = os.path.join(out, m["name"])
        sp = None
        if m.get("spm"):
            import sentencepiece as spm
            tok_model = os.path.join(REPO, "tests", "data", "model", m["name"], "tokenizer.model")
            sp = spm.SentencePieceProcessor(model_file=tok_model)
            m["vocab"] = sp.get_piece_size()
            assert sp.bos_id() == m["bos"] and sp.eos_id() == m["eos"]
            os.makedirs(d, exist_ok=True)
            shutil.copy(tok_model, os.path.join(d, "tokenizer.model"))
        torch.manual_seed(0)
        cfg = make_config(m)
        model = (Qwen2ForCausalLM if family(m) == "qwen2" else LlamaForCausalLM)(cfg)
        init_weights(model, m)
        model = model.to(m["dtype"]).eval()
        model.save_pretrained(d, safe_serialization=True)
        model.generation_config.eos_token_id = m["eos"]
        model.generation_config.bos_token_id = m.get("bos", 0)
        model.generation_config.save_pretrained(d)
        print(m["name"], "config.json as saved:", open(os.path.join(d, "config.json")).read())
        # Goldens from the saved directory as transformers loads it, in fp32 (bf16
        # weights upcast exactly). Loading (not model.float()) keeps the RoPE inv_freq
        # buffer in fp32: a .to(bfloat16) of the module would round it to bf16.
        model32 = load_pretrained(d, torch.float32, m)
        if m["style"] == "v4":
            rewrite_v4_config(os.path.join(d, "config.json"), m)
        g = torch.Generator().manual_seed(7)
        B, L = 2, 11
        prompt = torch.randint(3, m["vocab"], (B, L), generator=g)
        prompt[:, 0] = m.get("bos", 0)
        rows = mask_rows()
        ML = len(rows[0]["group_ids"])
        mask_ids = torch.randint(3, m["vocab"], (B, ML), generator=g)
        mask_ids[:, 0] = m.get("bos", 0)
        mpos = torch.tensor([r["positions"] for r in rows])
        allowed = dense_allowed(rows)
        with torch.no_grad():
            plogits = model32(prompt).logits.float()
            causal = torch.tril(torch.ones(L, L, dtype=torch.bool))[None].expand(B, L, L)
            ppos = torch.arange(L)[None].expand(B, L)
            pref = ref_forward(model32, cfg, prompt, causal, ppos)
            mref = ref_forward(model32, cfg, mask_ids, allowed, mpos)
            # A custom 4-D mask: additive float (0 / finfo.min) first, a bool mask otherwise;
            # whichever transformers applies as meant (checked against the plain-torch ref).
            add = torch.zeros(B, 1, ML, ML).masked_fill(~allowed[:, None],
                                                        torch.finfo(torch.float32).min)
            mask_kind = "additive"
            mlogits = model32(mask_ids, attention_mask=add, position_ids=mpos).logits.float()
            if (mlogits - mref).abs().max().item() > 1e-4:
                mask_kind = "bool"
                mlogits = model32(mask_ids, attention_mask=allowed[:, None],
                                  position_ids=mpos).logits.float()
            # Greedy continuation, full recompute each step, margins top1 - top2.
            ids = prompt[:1].clone()
            greedy, margins = [], []
            for _ in range(16):
                lg = model32(ids).logits[0, -1].float()
                top = torch.topk(lg, 2)
                greedy.append(int(top.indices[0]))
                margins.append(float(top.values[0] - top.values[1]))
                ids = torch.cat([ids, top.indices[:1].view(1, 1)], 1)
            extra = {}
            if m["dtype"] == torch.bfloat16:
                mb = load_pretrained(d, torch.bfloat16, m)
                assert mb.model.rotary_emb.inv_freq.dtype == torch.float32
                extra["prompt_logits_bf16"] = mb(prompt).logits.float().contiguous()
            e2e = None
            if sp is not None:
                # What `flexgen generate --method origin --few-shot 0` feeds the model for a
                # record whose question is E2E_QUESTION: BOS + the whole prompt, encoded at once.
                text = E2E_INSTRUCTION + "\n\n" + "Q: " + E2E_QUESTION + "\nA:"
                ids = [sp.bos_id()] + sp.encode(text)
                e2e_ids, e2e_margins = greedy_continuation(model32, ids, 12)
                # transformers' own generate (KV cache) agrees up to its eos stop.
                hf = model32.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                                      pad_token_id=0)[0, len(ids):].tolist()
                assert hf == e2e_ids[:len(hf)], (hf, e2e_ids)
                e2e = dict(question=E2E_QUESTION, prompt_text=text, prompt_ids=ids,
                           greedy_ids=e2e_ids, greedy_margins=e2e_margins,
                           greedy_text=sp.decode(e2e_ids))
                print(m["name"], "e2e:", e2e)
            elif m.get("chat"):
                # What `flexgen generate --chat --method origin --few-shot 0` feeds the model: the
                # whole prompt as one user turn of the chat template, tokenized by the `tokenizers`
                # library (no BOS).
                write_qwen_tokenizer(d)
                tok = transformers.AutoTokenizer.from_pretrained(d)
                text = E2E_INSTRUCTION + "\n\n" + "Q: " + E2E_QUESTION + "\nA:"
                msgs = [{"role": "user", "content": text}]
                chat_text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
                ids = tok(chat_text, add_special_tokens=False)["input_ids"]
                direct = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
                if not isinstance(direct, list):
                    direct = direct["input_ids"]
                assert list(direct) == ids, (direct, ids)
                e2e_ids, e2e_margins = greedy_continuation(model32, ids, 12)
                e2e = dict(question=E2E_QUESTION, prompt_text=chat_text, prompt_ids=ids,
                           greedy_ids=e2e_ids, greedy_margins=e2e_margins)
                print(m["name"], "e2e:", e2e)
        d_prompt = (plogits - pref).abs().max().item()
        d_mask = (mlogits - mref).abs().max().item()
        print(f"{m['name']}: mask {mask_kind}; HF vs plain-torch ref: prompt {d_prompt:.3g} mask {d_mask:.3g}; "
              f"logit std {plogits.std().item():.3g}; greedy {greedy}; min margin {min(margins):.3g}")
        assert d_prompt < 1e-4 and d_mask < 1e-4, "transformers' result disagrees with the ref"
        save_file({"prompt_logits": plogits.contiguous(), "mask_logits": mlogits.contiguous(),
                   **extra}, os.path.join(d, "golden.safetensors"))
        golden = dict(model=m["name"], transformers=transformers.__version__,
                      torch=torch.__version__, weights_dtype=str(m["dtype"]),
                      prompt_ids=prompt.tolist(), mask_ids=mask_ids.tolist(), mask_rows=rows,
                      greedy_prompt=prompt[0].tolist(), mask_kind=mask_kind, greedy_ids=greedy, greedy_margins=margins)
        if e2e is not None:
            golden["e2e"] = e2e
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f)
        report[m["name"]] = dict(prompt=d_prompt, mask=d_mask)
        sd = {k: v.float().contiguous() for k, v in model32.state_dict().items()}
        if cfg.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        if m["name"] == "tiny_gqa_tied":
            ts = os.path.join(out, "ts_nested")
            os.makedirs(ts, exist_ok=True)
            torch.jit.save(torchscript_nested(sd), os.path.join(ts, "model.pt"))
            shutil.copy(os.path.join(d, "config.json"), os.path.join(ts, "config.json"))
        if m["name"] == "tiny_headdim":
            ts = os.path.join(out, "ts_dict")
            os.makedirs(ts, exist_ok=True)
            torch.jit.save(torch.jit.script(DictHolder(sd)), os.path.join(ts, "model.pt"))
    print(json.dumps(report))
    for root, _, files in os.walk(out):
        for f in files:
            p = os.path.join(root, f)
            print(p, os.path.getsize(p))


if __name__ == "__main__":
    main()
