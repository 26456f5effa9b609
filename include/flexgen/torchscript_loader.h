// Loading a LLaMA model from a TorchScript archive (torch.jit.save of a module
// whose parameters/buffers carry the Hugging Face names, or of a module holding
// the state dict as a Dict[str, Tensor] attribute).
#pragma once

#include <filesystem>
#include <optional>

#include "flexgen/llama.h"
#include "flexgen/model_loader.h"

namespace flexgen {

// Tensors of the archive by name: parameters and buffers (recursive, dotted
// names) plus the entries of every Dict[str, Tensor] attribute of the root.
// Throws ModelError naming the file when it cannot be read or holds no tensors.
NamedTensors read_torchscript_tensors(const std::filesystem::path& archive);

// The model; its config from `config_json`, else a config.json beside the archive.
LlamaModel load_llama_from_torchscript(const std::filesystem::path& archive,
                                       const std::optional<std::filesystem::path>& config_json,
                                       const LoadOptions& options = {});

}  // namespace flexgen
