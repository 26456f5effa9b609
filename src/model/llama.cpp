// LLaMA forward pass and assembly of its weights.
#include "flexgen/llama.h"

#include "flexgen/fused_ops_cuda.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIndexing.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace flexgen {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string origin_of(const NamedTensors& named, const std::string& name) {
  auto it = named.origin.find(name);
  return it != named.origin.end() ? it->second : named.source;
}

class Assembler {
 public:
  Assembler(const ModelConfig& c, const NamedTensors& n, at::ScalarType dtype, at::Device device)
      : config_(c), named_(n), dtype_(dtype), device_(device) {}

  at::Tensor take(const std::string& name, std::vector<int64_t> shape) {
    used_.insert(name);
    auto it = named_.tensors.find(name);
    if (it == named_.tensors.end())
      throw ModelError(named_.source + ": missing tensor '" + name + "' (needed by config " +
                       config_.source + ")");
    const at::Tensor& t = it->second;
    if (t.sizes().vec() != shape)
      throw ModelError(origin_of(named_, name) + ": tensor '" + name + "': shape " + shape_str(t.sizes()) +
                       " but config " + config_.source + " needs " + shape_str(shape));
    const auto st = t.scalar_type();
    if (st != at::kFloat && st != at::kBFloat16 && st != at::kHalf)
      throw ModelError(origin_of(named_, name) + ": tensor '" + name + "': dtype " + c10::toString(st) +
                       " (supported: F32, BF16, F16)");
    if (t.device().type() != at::kCPU)
      throw ModelError(origin_of(named_, name) + ": tensor '" + name + "' is not on the CPU");
    at::Tensor out = t.contiguous();  // no-op for file tensors
    if (!device_.is_cpu()) return out.to(device_).to(dtype_);  // convert on the device
    return st == dtype_ ? out : out.to(dtype_);
  }

  // Names present but not used (apart from tolerated extras) are an error.
  void check_unused() const {
    for (const auto& [name, t] : named_.tensors) {
      if (used_.count(name)) continue;
      if (name.size() >= 20 && name.compare(name.size() - 20, 20, "rotary_emb.inv_freq") == 0) continue;
      if (config_.tie_word_embeddings && name == "lm_head.weight") continue;  // transformers ignores it too
      throw ModelError(origin_of(named_, name) + ": unexpected tensor '" + name +
                       "' (not part of a LlamaForCausalLM with config " + config_.source + ")");
    }
  }

 private:
  const ModelConfig& config_;
  const NamedTensors& named_;
  at::ScalarType dtype_;
  at::Device device_;
  std::set<std::string> used_;
};

// transformers' LlamaRMSNorm: fp32 statistics, cast back, then scale.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const auto in_type = x.scalar_type();
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  xf = xf * at::rsqrt(var + eps);
  return weight * xf.to(in_type);
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

void fuse_projections(LlamaModel& model) {
  auto fuse = [](std::vector<at::Tensor*> parts, at::Tensor& fused) {
    std::vector<at::Tensor> list;
    for (at::Tensor* t : parts) list.push_back(*t);
    fused = at::cat(list, 0);
    int64_t at = 0;
    for (at::Tensor* t : parts) {
      const int64_t n = t->size(0);
      *t = fused.narrow(0, at, n);
      at += n;
    }
  };
  for (LayerWeights& l : model.weights.layers) {
    fuse({&l.q_proj, &l.k_proj, &l.v_proj}, l.qkv_proj);
    fuse({&l.gate_proj, &l.up_proj}, l.gate_up_proj);
    if (l.q_bias.defined()) fuse({&l.q_bias, &l.k_bias, &l.v_bias}, l.qkv_bias);
    if (l.gate_bias.defined()) fuse({&l.gate_bias, &l.up_bias}, l.gate_up_bias);
  }
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp32" || name == "float32" || name == "float") return at::kFloat;
  throw ModelError("unsupported compute dtype \"" + name + "\" (supported: bf16, fp32)");
}

void set_num_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  // _compute_default_rope_parameters
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = at::pow(c10::Scalar(c.rope_theta), exponent).reciprocal();
  if (c.rope_type == RopeType::Default) return inv_freq;
  // _compute_llama3_parameters, operation for operation.
  const double factor = c.rope_factor;
  const double low = c.rope_low_freq_factor;
  const double high = c.rope_high_freq_factor;
  const double old_len = static_cast<double>(c.rope_original_max_position_embeddings);
  const double low_freq_wavelen = old_len / low;
  const double high_freq_wavelen = old_len / high;
  at::Tensor wavelen = inv_freq.reciprocal() * (2 * M_PI);
  at::Tensor llama = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
  at::Tensor smooth = (wavelen.reciprocal() * old_len - low) / (high - low);
  at::Tensor smoothed = (1 - smooth) * llama / factor + smooth * llama;
  at::Tensor medium = (wavelen < high_freq_wavelen).logical_not() * (wavelen > low_freq_wavelen).logical_not();
  return at::where(medium, smoothed, llama);
}

LlamaModel assemble_llama(const ModelConfig& config, const NamedTensors& named, const LoadOptions& options) {
  if (options.dtype != at::kFloat && options.dtype != at::kBFloat16)
    throw ModelError(std::string("unsupported compute dtype ") + c10::toString(options.dtype) +
                     " (supported: fp32, bf16)");
  config.validate();
  LlamaModel m;
  m.config = config;
  m.dtype = options.dtype;
  m.device = options.device;
  Assembler a(config, named, options.dtype, options.device);
  const int64_t hid = config.hidden_size, inter = config.intermediate_size;
  m.weights.embed = a.take("model.embed_tokens.weight", {config.vocab_size, hid});
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.input_norm = a.take(p + "input_layernorm.weight", {hid});
    l.q_proj = a.take(p + "self_attn.q_proj.weight", {config.q_dim(), hid});
    l.k_proj = a.take(p + "self_attn.k_proj.weight", {config.kv_dim(), hid});
    l.v_proj = a.take(p + "self_attn.v_proj.weight", {config.kv_dim(), hid});
    l.o_proj = a.take(p + "self_attn.o_proj.weight", {hid, config.q_dim()});
    if (config.attention_bias) {
      l.q_bias = a.take(p + "self_attn.q_proj.bias", {config.q_dim()});
      l.k_bias = a.take(p + "self_attn.k_proj.bias", {config.kv_dim()});
      l.v_bias = a.take(p + "self_attn.v_proj.bias", {config.kv_dim()});
      l.o_bias = a.take(p + "self_attn.o_proj.bias", {hid});
    }
    l.post_norm = a.take(p + "post_attention_layernorm.weight", {hid});
    l.gate_proj = a.take(p + "mlp.gate_proj.weight", {inter, hid});
    l.up_proj = a.take(p + "mlp.up_proj.weight", {inter, hid});
    l.down_proj = a.take(p + "mlp.down_proj.weight", {hid, inter});
    if (config.mlp_bias) {
      l.gate_bias = a.take(p + "mlp.gate_proj.bias", {inter});
      l.up_bias = a.take(p + "mlp.up_proj.bias", {inter});
      l.down_bias = a.take(p + "mlp.down_proj.bias", {hid});
    }
    m.weights.layers.push_back(std::move(l));
  }
  m.weights.final_norm = a.take("model.norm.weight", {hid});
  m.weights.lm_head = config.tie_word_embeddings ? m.weights.embed
                                                 : a.take("lm_head.weight", {config.vocab_size, hid});
  a.check_unused();
  m.inv_freq = rope_inv_freq(config).to(options.device);
  if (options.device.is_cuda()) fuse_projections(m);
  return m;
}

NamedTensors read_safetensors_directory(const std::filesystem::path& dir,
                                        std::vector<std::shared_ptr<SafetensorsFile>>* files) {
  namespace fs = std::filesystem;
  NamedTensors named;
  named.source = dir.string();
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";
  auto add_file = [&](const fs::path& p) {
    auto f = SafetensorsFile::open(p);
    if (files) files->push_back(f);
    return f;
  };
  if (fs::is_regular_file(index)) {
    nlohmann::json j;
    {
      std::ifstream in(index);
      std::stringstream ss;
      ss << in.rdbuf();
      try {
        j = nlohmann::json::parse(ss.str());
      } catch (const nlohmann::json::exception& e) {
        throw ModelError(index.string() + ": malformed JSON: " + e.what());
      }
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw ModelError(index.string() + ": no \"weight_map\" object");
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw ModelError(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        throw ModelError(index.string() + ": weight_map entry '" + it.key() + "' names a file outside the directory");
      by_file[file].push_back(it.key());
    }
    for (const auto& [file, names] : by_file) {
      const fs::path p = dir / file;
      if (!fs::is_regular_file(p))
        throw ModelError(index.string() + ": shard " + p.string() + " (tensor '" + names.front() + "') does not exist");
      auto f = add_file(p);
      std::set<std::string> listed(names.begin(), names.end());
      for (const auto& name : names) {
        if (!f->contains(name))
          throw ModelError(p.string() + ": tensor '" + name + "' listed in " + index.filename().string() + " is missing");
      }
      for (const auto& info : f->tensors()) {
        if (!listed.count(info.name))
          throw ModelError(p.string() + ": tensor '" + info.name + "' is not listed in " + index.string());
        named.tensors[info.name] = f->tensor(info.name);
        named.origin[info.name] = p.string();
      }
    }
  } else if (fs::is_regular_file(single)) {
    auto f = add_file(single);
    for (const auto& info : f->tensors()) {
      named.tensors[info.name] = f->tensor(info.name);
      named.origin[info.name] = single.string();
    }
  } else {
    throw ModelError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
  }
  return named;
}

LlamaModel load_llama_from_directory(const std::filesystem::path& dir, const LoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw ModelError(dir.string() + ": not a directory");
  ModelConfig config = load_model_config(dir / "config.json");
  if (fs::is_regular_file(dir / "generation_config.json"))
    apply_generation_config(dir / "generation_config.json", config);
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  NamedTensors named = read_safetensors_directory(dir, &files);
  LlamaModel m = assemble_llama(config, named, options);
  named = NamedTensors();  // drop the views; converted weights no longer need the mapping
  // Keep (and report) only the files some weight aliases; the others are unmapped now,
  // so fp32 compute from bf16 files does not hold the file pages resident.
  for (auto& f : files) {
    bool used = f->maps(m.weights.embed.data_ptr()) || f->maps(m.weights.lm_head.data_ptr()) ||
                f->maps(m.weights.final_norm.data_ptr());
    for (const auto& l : m.weights.layers)
      for (const at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.post_norm,
                                  &l.gate_proj, &l.up_proj, &l.down_proj})
        used = used || f->maps(t->data_ptr());
    if (used) m.files.push_back(std::move(f));
  }
  return m;
}

KVCache allocate_kv_cache(int64_t layers, int64_t batch, int64_t kv_heads, int64_t max_len, int64_t head_dim,
                          at::ScalarType dtype, const at::Device& device) {
  KVCache c;
  c.k = at::zeros({layers, batch, kv_heads, max_len, head_dim}, at::TensorOptions().dtype(dtype).device(device));
  c.v = at::zeros_like(c.k);
  c.length = 0;
  return c;
}

KVCache make_kv_cache(const LlamaModel& model, int64_t batch, int64_t max_len) {
  return allocate_kv_cache(model.config.num_layers, batch, model.config.num_kv_heads, max_len,
                           model.config.head_dim, model.dtype, model.device);
}

KVCache kv_cache_rows(const KVCache& cache, int64_t first, int64_t count) {
  KVCache c;
  c.k = cache.k.narrow(1, first, count);
  c.v = cache.v.narrow(1, first, count);
  c.length = 0;
  return c;
}

namespace {

// RoPE tables for position ids [B, L]: cos and sin [B, 1, L, head_dim] in the compute dtype
// (computed in fp32 like transformers).
std::pair<at::Tensor, at::Tensor> rope_tables(const LlamaModel& model, const at::Tensor& positions) {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * model.inv_freq.view({1, 1, -1});
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(model.dtype).unsqueeze(1), emb.sin().to(model.dtype).unsqueeze(1)};
}

// The decoder layers over hidden states h [B, L, hidden]; attend(layer, q, k, v) stores k/v
// in the cache and returns the attention output [B, H, L, head_dim].
template <class Attend>
at::Tensor decoder_layers(const LlamaModel& model, at::Tensor h, const at::Tensor& cos, const at::Tensor& sin,
                          Attend&& attend) {
  const ModelConfig& c = model.config;
  const int64_t B = h.size(0), L = h.size(1), H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const LayerWeights& l = model.weights.layers[i];
    at::Tensor x = rms_norm(h, l.input_norm, c.rms_norm_eps);
    std::vector<at::Tensor> qkv =
        linear_layers(x, {l.q_proj, l.k_proj, l.v_proj}, {l.q_bias, l.k_bias, l.v_bias});
    at::Tensor q = qkv[0].view({B, L, H, D}).transpose(1, 2);
    at::Tensor k = qkv[1].view({B, L, Hkv, D}).transpose(1, 2);
    at::Tensor v = qkv[2].view({B, L, Hkv, D}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    at::Tensor a = attend(i, q.contiguous(), k, v);
    a = a.transpose(1, 2).reshape({B, L, H * D});
    h = h + linear_layer(a, l.o_proj, l.o_bias);
    x = rms_norm(h, l.post_norm, c.rms_norm_eps);
    std::vector<at::Tensor> gu = linear_layers(x, {l.gate_proj, l.up_proj}, {l.gate_bias, l.up_bias});
    at::Tensor g = at::silu(gu[0]);
    g.mul_(gu[1]);
    h = h + linear_layer(g, l.down_proj, l.down_bias);
  }
  return h;
}

// The decoder layers on CUDA (bf16): fused q|k|v and gate|up GEMMs, one kernel for RoPE + the
// K/V cache write (new tokens of row b go to slots first_slot[b] ..), fused residual-add +
// RMSNorm and SiLU x up: 9 launches per layer. attend(layer, q, k_cache, v_cache) returns the
// attention output [B, H, L, head_dim]. Returns the final-normed hidden states.
template <class Attend>
at::Tensor decoder_layers_cuda(const LlamaModel& model, KVCache& cache, at::Tensor h, const at::Tensor& cos,
                               const at::Tensor& sin, const at::Tensor& first_slot, Attend&& attend) {
  const ModelConfig& c = model.config;
  const int64_t B = h.size(0), L = h.size(1), H = c.num_heads, D = c.head_dim;
  if (model.dtype != at::kBFloat16 || !model.weights.layers.at(0).qkv_proj.defined())
    throw std::invalid_argument("llama_forward: a CUDA model must be bf16 with fused projections (fuse_projections)");
  const double eps = c.rms_norm_eps;
  at::Tensor delta;  // the last layer's MLP output, added to h by the next norm
  at::Tensor x;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const LayerWeights& l = model.weights.layers[i];
    x = i == 0 ? rms_norm_cuda(h, l.input_norm, eps) : add_rms_norm_cuda(h, delta, l.input_norm, eps);
    const at::Tensor qkv = linear_cuda(x, l.qkv_proj, l.qkv_bias);
    at::Tensor kc = cache.k.select(0, i);  // [B, Hkv, T, D]
    at::Tensor vc = cache.v.select(0, i);
    const at::Tensor q = rope_qkv_cuda(qkv, cos, sin, H, c.num_kv_heads, kc, vc, first_slot);
    const at::Tensor a = attend(i, q, kc, vc).transpose(1, 2).reshape({B, L, H * D});
    x = add_rms_norm_cuda(h, linear_cuda(a, l.o_proj, l.o_bias), l.post_norm, eps);
    delta = linear_cuda(silu_mul_cuda(linear_cuda(x, l.gate_up_proj, l.gate_up_bias)), l.down_proj, l.down_bias);
  }
  return add_rms_norm_cuda(h, delta, model.weights.final_norm, eps);
}

at::Tensor lm_head(const LlamaModel& model, const at::Tensor& h) {
  return linear_layer(rms_norm(h, model.weights.final_norm, model.config.rms_norm_eps), model.weights.lm_head)
      .to(at::kFloat);
}

void check_cache(const LlamaModel& model, const KVCache& cache, int64_t B, const char* who) {
  const ModelConfig& c = model.config;
  if (!cache.k.defined() || cache.batch() != B || cache.k.size(0) != c.num_layers ||
      cache.k.size(2) != c.num_kv_heads || cache.k.size(4) != c.head_dim || cache.k.scalar_type() != model.dtype ||
      cache.k.device() != model.device)
    throw std::invalid_argument(std::string(who) + ": KV cache does not fit this model and batch " + std::to_string(B));
}

}  // namespace

at::Tensor llama_forward(const LlamaModel& model, KVCache& cache, const at::Tensor& tokens_in,
                         const at::Tensor& positions_in, const AttentionMaskRef& mask, LogitsMode logits_mode) {
  const ModelConfig& c = model.config;
  if (tokens_in.dim() != 2 || tokens_in.scalar_type() != at::kLong)
    throw std::invalid_argument("llama_forward: tokens must be int64 [B, L], got " + shape_str(tokens_in.sizes()));
  if (positions_in.sizes() != tokens_in.sizes() || positions_in.scalar_type() != at::kLong)
    throw std::invalid_argument("llama_forward: positions must be int64 " + shape_str(tokens_in.sizes()) +
                                ", got " + shape_str(positions_in.sizes()));
  const int64_t B = tokens_in.size(0), L = tokens_in.size(1);
  check_cache(model, cache, B, "llama_forward");
  const int64_t start = cache.length;
  if (start + L > cache.max_length())
    throw std::invalid_argument("llama_forward: " + std::to_string(start + L) + " positions exceed the KV cache (" +
                                std::to_string(cache.max_length()) + ")");
  if (L == 0) throw std::invalid_argument("llama_forward: no tokens");
  if (tokens_in.min().item<int64_t>() < 0 || tokens_in.max().item<int64_t>() >= c.vocab_size)
    throw std::invalid_argument("llama_forward: token id outside the vocabulary (" + std::to_string(c.vocab_size) + ")");

  c10::NoGradGuard no_grad;
  const at::Tensor tokens = tokens_in.to(model.device), positions = positions_in.to(model.device);
  const auto [cos, sin] = rope_tables(model, positions);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  if (model.device.is_cuda()) {
    const at::Tensor first = at::full({B}, start, tokens.options());
    at::Tensor x = decoder_layers_cuda(
        model, cache, at::embedding(model.weights.embed, tokens), cos, sin, first,
        [&](int64_t, const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc) {
          return attention(q, kc.narrow(2, 0, start + L), vc.narrow(2, 0, start + L), mask, scale, start, 0);
        });
    cache.length = start + L;
    if (logits_mode == LogitsMode::Last) x = x.narrow(1, L - 1, 1).contiguous();
    return linear_cuda(x, model.weights.lm_head).to(at::kFloat);
  }
  at::Tensor h = decoder_layers(model, at::embedding(model.weights.embed, tokens), cos, sin,
                                [&](int64_t i, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
                                  at::Tensor kc = cache.k.select(0, i);  // [B, Hkv, T, D]
                                  at::Tensor vc = cache.v.select(0, i);
                                  kc.narrow(2, start, L).copy_(k);
                                  vc.narrow(2, start, L).copy_(v);
                                  return attention(q, kc.narrow(2, 0, start + L), vc.narrow(2, 0, start + L), mask,
                                                   scale, start, 0);
                                });
  cache.length = start + L;
  if (logits_mode == LogitsMode::Last) h = h.narrow(1, L - 1, 1);
  return lm_head(model, h);
}

at::Tensor llama_step(const LlamaModel& model, KVCache& cache, const StepInputs& in, const AttentionMaskRef& mask) {
  const int64_t R = in.tokens.size(0);
  if (in.tokens.dim() != 2 || in.tokens.size(1) != 1 || in.positions.sizes() != in.tokens.sizes() ||
      in.slots.dim() != 1 || in.slots.size(0) != R || in.rows.dim() != 1 || in.rows.size(0) != R)
    throw std::invalid_argument("llama_step: tokens/positions [R, 1], slots/rows [R] expected, got tokens " +
                                shape_str(in.tokens.sizes()));
  check_cache(model, cache, R, "llama_step");
  c10::NoGradGuard no_grad;
  const auto [cos, sin] = rope_tables(model, in.positions);
  const double scale = 1.0 / std::sqrt(static_cast<double>(model.config.head_dim));
  if (model.device.is_cuda()) {
    const at::Tensor x = decoder_layers_cuda(
        model, cache, at::embedding(model.weights.embed, in.tokens), cos, sin, in.slots,
        [&](int64_t, const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc) {
          return attention(q, kc, vc, mask, scale, 0, 0);
        });
    return linear_cuda(x.select(1, 0).contiguous(), model.weights.lm_head).to(at::kFloat);
  }
  using at::indexing::Slice;
  at::Tensor h = decoder_layers(model, at::embedding(model.weights.embed, in.tokens), cos, sin,
                                [&](int64_t i, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
                                  at::Tensor kc = cache.k.select(0, i);  // [R, Hkv, T, D]
                                  at::Tensor vc = cache.v.select(0, i);
                                  // kc[r, :, slots[r], :] = k[r, :, 0, :]
                                  kc.index_put_({in.rows, Slice(), in.slots}, k.select(2, 0));
                                  vc.index_put_({in.rows, Slice(), in.slots}, v.select(2, 0));
                                  return attention(q, kc, vc, mask, scale, 0, 0);
                                });
  return lm_head(model, h.select(1, 0));
}

at::Tensor llama_forward_full(const LlamaModel& model, const at::Tensor& tokens, const at::Tensor& positions,
                              const AttentionMaskRef& mask) {
  KVCache cache = make_kv_cache(model, tokens.size(0), tokens.size(1));
  return llama_forward(model, cache, tokens, positions, mask, LogitsMode::All);
}

}  // namespace flexgen
