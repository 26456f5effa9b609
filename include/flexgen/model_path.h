// Where a model lives: a directory, a TorchScript file, or a Hugging Face
// repo id (or one of the reference pipeline's short aliases) resolved offline
// in the local Hugging Face cache. Nothing is ever downloaded.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace flexgen {

enum class ModelFormat { HfDirectory, TorchScript };

struct ResolvedModel {
  std::filesystem::path path;  // directory or .pt file
  ModelFormat format = ModelFormat::HfDirectory;
  std::string repo_id;         // when resolved through the cache
};

// "llama3.2_3b_it" -> "meta-llama/Llama-3.2-3B-Instruct", ...; nullopt if not an alias.
std::optional<std::string> model_alias(const std::string& name);

// Hub cache roots in the order looked at: $HF_HUB_CACHE, $HF_HOME/hub,
// $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub (those set).
std::vector<std::filesystem::path> hf_hub_cache_dirs();

// Resolves `spec`; throws ModelError listing every place looked at.
ResolvedModel resolve_model_path(const std::string& spec);

}  // namespace flexgen
