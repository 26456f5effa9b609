#!/usr/bin/env python3
"""Writes a random-weight Llama-3.2-3B-shaped (or -1B-shaped, or tiny) LlamaForCausalLM in bf16 safetensors,
plus the tokenizer files copied from --tokenizer-dir. Does nothing when OUT/config.json and a *.safetensors
exist.

Usage: make_model.py --out DIR --tokenizer-dir TOKDIR [--shape 3b|1b|tiny] [--seed 0]"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]
OPTIONAL_TOKENIZER_FILES = ["special_tokens_map.json"]

BASE = {  # the hub's config.json of Llama-3.2-3B (transformers 4.x layout; 5.x converts rope_* on load)
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "max_position_embeddings": 131072,
    "tie_word_embeddings": True,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "torch_dtype": "bfloat16",
}
ONE_B = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "head_dim": 64}  # Llama-3.2-1B
TINY = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64}


def die(msg):
    print(f"make_model: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def copy_tokenizer(tok_dir, out):
    for name in TOKENIZER_FILES:
        src = os.path.join(tok_dir, name)
        if not os.path.isfile(src):
            die(f"{src} not found (--tokenizer-dir must hold {', '.join(TOKENIZER_FILES)})")
        shutil.copyfile(src, os.path.join(out, name))
    for name in OPTIONAL_TOKENIZER_FILES:
        src = os.path.join(tok_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--shape", choices=["3b", "1b", "tiny"], default="3b")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    if not os.path.isdir(a.tokenizer_dir):
        die(f"--tokenizer-dir {a.tokenizer_dir}: not a directory")

    if os.path.isfile(os.path.join(out, "config.json")) and glob.glob(os.path.join(out, "*.safetensors")):
        copy_tokenizer(a.tokenizer_dir, out)
        print(f"make_model: {out} already holds a model; kept", flush=True)
        return

    try:
        import torch
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except Exception as e:  # noqa: BLE001
        die(f"cannot import torch/transformers: {type(e).__name__}: {e}")

    t0 = time.time()
    cfg_dict = dict(BASE)
    cfg_dict.update({"1b": ONE_B, "tiny": TINY}.get(a.shape, {}))
    try:
        cfg = LlamaConfig.from_dict(cfg_dict)
    except Exception as e:  # noqa: BLE001
        die(f"LlamaConfig.from_dict failed (transformers {transformers.__version__}): {type(e).__name__}: {e}")
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None)
    print(f"make_model: transformers {transformers.__version__}, torch {torch.__version__}; rope {rope}", flush=True)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        print("make_model: warning: no CUDA device, building on the CPU (slow for 3b)", flush=True)
    torch.manual_seed(a.seed)
    prev_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    except Exception as e:  # noqa: BLE001
        die(f"building LlamaForCausalLM failed: {type(e).__name__}: {e}")
    finally:
        torch.set_default_dtype(prev_dtype)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    bad = [(n, p) for n, p in model.named_parameters() if p.dtype != torch.bfloat16]
    if bad:  # only the weights; the rotary inv_freq buffer stays fp32 as transformers computes it
        print(f"make_model: converting {len(bad)} non-bf16 parameters to bf16 ({bad[0][0]}, ...)", flush=True)
        for _, p in bad:
            p.data = p.data.to(torch.bfloat16)
    with torch.inference_mode():  # smoke forward: the model runs and gives finite logits
        logits = model(torch.tensor([[128000, 791, 6864, 315, 9822, 374]], device=device)).logits
        if not torch.isfinite(logits.float()).all():
            die("the random model gives non-finite logits")
    print(f"make_model: built {a.shape} ({n_params / 1e9:.3f} B parameters) on {device} in {time.time() - t0:.1f} s",
          flush=True)

    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out) + ".tmp-", dir=parent)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        copy_tokenizer(a.tokenizer_dir, tmp)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except Exception as e:  # noqa: BLE001
        shutil.rmtree(tmp, ignore_errors=True)
        die(f"save_pretrained to {out} failed: {type(e).__name__}: {e}")
    files = sorted(os.listdir(out))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in files)
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    print(f"make_model: wrote {out} ({size / 1e9:.2f} GB: {', '.join(files)}); dtype in config: "
          f"{saved.get('dtype', saved.get('torch_dtype'))}; total {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
