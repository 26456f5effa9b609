// Loading a model: from what a user typed (--model: a Hugging Face directory, a TorchScript
// archive, a repo id or short alias in the local Hugging Face cache; see model_path.h), from a
// directory of safetensors, or from tensors by name; names and shapes checked against the config.
#pragma once

#include <ATen/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/llama.h"
#include "flexgen/model_config.h"
#include "flexgen/model_path.h"
#include "flexgen/safetensors.h"

namespace flexgen {

// `config_json` overrides the config found beside the weights (TorchScript).
LlamaModel load_model(const std::string& spec, const LoadOptions& options = {},
                      const std::optional<std::filesystem::path>& config_json = std::nullopt);

// Tensors by Hugging Face name, with where each came from (for messages).
struct NamedTensors {
  std::string source;  // the directory or archive (for messages)
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> origin;  // name -> file
};

// Checks names and shapes against the config and assembles the model; unknown,
// missing or misshapen tensors throw ModelError naming the tensor and its file.
LlamaModel assemble_llama(const ModelConfig& config, const NamedTensors& named,
                          const LoadOptions& options);

// Hugging Face directory: config.json, model.safetensors or the shards of
// model.safetensors.index.json, generation_config.json when present.
LlamaModel load_llama_from_directory(const std::filesystem::path& dir,
                                     const LoadOptions& options = {});

// Tensors of a directory's safetensors files (validated, zero-copy), by name.
NamedTensors read_safetensors_directory(const std::filesystem::path& dir,
                                        std::vector<std::shared_ptr<SafetensorsFile>>* files);

// Concatenates each layer's q/k/v and gate/up weights into one matrix (the separate ones become
// views of it): what the CUDA forward pass uses. Done by assemble_llama for CUDA models.
void fuse_projections(LlamaModel& model);

// Compute dtype by name: "bf16"/"bfloat16", "fp16"/"float16"/"half" or "fp32"/"float32"/"float";
// ModelError otherwise. The CPU computes in bf16 or fp32, CUDA in bf16 or fp16 (assemble_llama).
at::ScalarType parse_dtype(const std::string& name);
// The short name of a compute dtype: "bf16", "fp16", "fp32".
std::string dtype_name(at::ScalarType dtype);

}  // namespace flexgen
