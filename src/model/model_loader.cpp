// Model loading (model_loader.h): the model a --model spec names, Hugging Face safetensors
// directories, and the assembly of named tensors into a LlamaModel.
#include "flexgen/model_loader.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "flexgen/compute_device.h"
#include "flexgen/mask.h"
#include "flexgen/md5.h"
#include "flexgen/torchscript_loader.h"
#include "cuda/block_sparse_attention_cuda.h"
#include "shape_text.h"

namespace flexgen {
namespace fs = std::filesystem;
namespace {

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
                       "' (not part of a " + config_.architecture + " with config " + config_.source + ")");
    }
  }

 private:
  const ModelConfig& config_;
  const NamedTensors& named_;
  at::ScalarType dtype_;
  at::Device device_;
  std::set<std::string> used_;
};

}  // namespace

namespace {

std::string file_prefix(const fs::path& p, uint64_t max_bytes) {
  std::ifstream in(p, std::ios::binary);
  std::string out(static_cast<size_t>(std::min<uint64_t>(max_bytes, fs::file_size(p))), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// The bytes that identify a model (LlamaModel::fingerprint): configs and weight headers.
std::string model_fingerprint(const ResolvedModel& r, const std::optional<fs::path>& config_json) {
  std::string id;
  const fs::path dir = r.format == ModelFormat::TorchScript ? (config_json ? config_json->parent_path() : r.path.parent_path())
                                                            : r.path;
  const fs::path config = config_json ? *config_json : dir / "config.json";
  for (const fs::path& p : {config, dir / "generation_config.json"})
    if (fs::is_regular_file(p)) id += md5_hex(file_prefix(p, 1 << 20));
  if (r.format == ModelFormat::TorchScript) {
    id += std::to_string(fs::file_size(r.path)) + md5_hex(file_prefix(r.path, 1 << 20));
  } else {
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(r.path))
      if (e.path().extension() == ".safetensors") shards.push_back(e.path());
    std::sort(shards.begin(), shards.end());
    for (const fs::path& p : shards) {
      // The header: an 8-byte little-endian length, then that many bytes of JSON.
      const std::string len = file_prefix(p, 8);
      uint64_t n = 0;
      for (size_t i = len.size(); i-- > 0;) n = (n << 8) | static_cast<unsigned char>(len[i]);
      id += p.filename().string() + md5_hex(file_prefix(p, 8 + std::min<uint64_t>(n, 100u << 20)));
    }
  }
  return md5_hex(id);
}

// A CUDA device's first work for this model, as part of loading rather than inside a run's first
// passes and steps (where it cost ~45 ms of a 3B WebQA run on an H200): the CUDA context, flexgen's
// kernels (preloaded), and the libtorch kernels and cuBLAS handles of a forward pass, which CUDA
// loads at their first launch (10-20 ms for some of libtorch's modules). Two small passes: one
// token, as a decode step reads it; then two rows of 24 tokens as a run's prefill: packed with
// one column left out (more than 16 indices: libtorch's index kernels for many), a K/V slot copy,
// block masks on the device and each row's last logits.
void warm_up_device(LlamaModel& m) {
  m.kernels_preloaded = preload_device_kernels(m.device);
  KVCache one = make_kv_cache(m, 1, 1);
  llama_forward(m, one, at::zeros({1, 1}, at::kLong), at::zeros({1, 1}, at::kLong), BatchMask::causal(),
                LogitsMode::Last)
      .cpu();
  // A model the run's prefill kernels do not take (fp32, a head dim they have no kernel for, a
  // linear's K not a multiple of 8) has no run's prefill to prepare (only the dense reference's).
  const ModelConfig& c = m.config;
  const bool half = m.dtype == at::kBFloat16 || m.dtype == at::kHalf;
  if (!half || !cuda_attention_takes_head_dim(c.head_dim) || c.hidden_size % 8 != 0 || c.intermediate_size % 8 != 0)
    return;
  constexpr int64_t kRows = 2, kLen = 24, kBlock = 128;
  KVCache two = make_kv_cache(m, kRows, kLen);
  std::vector<RowMask> masks;
  for (int64_t r = 0; r < kRows; ++r) masks.push_back(make_row_mask(causal_mask(kLen), kBlock, m.device));
  BatchMask mask = BatchMask::rows(std::move(masks));
  mask.with_batch_invariance(true);
  const KvSlotCopies copies{{0}, {1}, {kLen - 1}};  // row 0: its last slot's K/V from slot 1
  std::vector<int64_t> real;
  for (int64_t col = 0; col < kRows * kLen; ++col)
    if (col != kLen - 1) real.push_back(col);
  llama_forward(m, two, at::zeros({kRows, kLen}, at::kLong), at::arange(kLen, at::kLong).repeat({kRows, 1}), mask,
                LogitsMode::Last, at::tensor(std::vector<int64_t>{kLen - 2, kLen - 1}, at::kLong),
                at::tensor(real, at::kLong), copies)
      .cpu();
}

}  // namespace

LlamaModel load_model(const std::string& spec, const LoadOptions& options,
                      const std::optional<fs::path>& config_json) {
  const ResolvedModel r = resolve_model_path(spec);
  if (config_json && r.format != ModelFormat::TorchScript)
    throw ModelError(spec + ": an explicit config is only for TorchScript archives");
  bind_device(options.device);
  LlamaModel m = r.format == ModelFormat::TorchScript ? load_llama_from_torchscript(r.path, config_json, options)
                                                      : load_llama_from_directory(r.path, options);
  m.fingerprint = model_fingerprint(r, config_json);
  if (m.device.is_cuda()) warm_up_device(m);
  return m;
}

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
  if (name == "fp16" || name == "float16" || name == "half") return at::kHalf;
  if (name == "fp32" || name == "float32" || name == "float") return at::kFloat;
  throw ModelError("unsupported compute dtype \"" + name + "\" (supported: bf16, fp16, fp32)");
}

std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    case at::kFloat: return "fp32";
    default: return c10::toString(dtype);
  }
}

LlamaModel assemble_llama(const ModelConfig& config, const NamedTensors& named, const LoadOptions& options) {
  if (options.dtype != at::kFloat && options.dtype != at::kBFloat16 && options.dtype != at::kHalf)
    throw ModelError("unsupported compute dtype " + dtype_name(options.dtype) + " (supported: bf16, fp16, fp32)");
  // Each backend's kernels: the CPU ones take bf16 and fp32, the CUDA ones bf16 and fp16.
  if (options.device.is_cpu() && options.dtype == at::kHalf)
    throw ModelError("fp16 compute runs on CUDA only (the CPU kernels take bf16 or fp32)");
  if (options.device.is_cuda() && options.dtype == at::kFloat)
    throw ModelError("fp32 compute runs on the CPU only (the CUDA kernels take bf16 or fp16)");
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
    if (config.qkv_bias || config.attention_bias) {  // Qwen2: q/k/v only
      l.q_bias = a.take(p + "self_attn.q_proj.bias", {config.q_dim()});
      l.k_bias = a.take(p + "self_attn.k_proj.bias", {config.kv_dim()});
      l.v_bias = a.take(p + "self_attn.v_proj.bias", {config.kv_dim()});
    }
    if (config.attention_bias) l.o_bias = a.take(p + "self_attn.o_proj.bias", {hid});
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
    std::ifstream in(index);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto by_file = parse_safetensors_index(ss.str(), index.string());
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

}  // namespace flexgen
