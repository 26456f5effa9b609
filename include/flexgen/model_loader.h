// One entry point for loading a model from what a user typed (--model): a
// Hugging Face directory, a TorchScript archive, a repo id or short alias in
// the local Hugging Face cache (see model_path.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "flexgen/llama.h"
#include "flexgen/model_path.h"

namespace flexgen {

// `config_json` overrides the config found beside the weights (TorchScript).
LlamaModel load_model(const std::string& spec, const LoadOptions& options = {},
                      const std::optional<std::filesystem::path>& config_json = std::nullopt);

}  // namespace flexgen
