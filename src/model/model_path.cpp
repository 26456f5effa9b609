#include "flexgen/model_path.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "flexgen/model_config.h"

namespace flexgen {
namespace fs = std::filesystem;

std::optional<std::string> model_alias(const std::string& name) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"llama3.2_1b", "meta-llama/Llama-3.2-1B"},
      {"llama3.2_1b_it", "meta-llama/Llama-3.2-1B-Instruct"},
      {"llama3.2_3b", "meta-llama/Llama-3.2-3B"},
      {"llama3.2_3b_it", "meta-llama/Llama-3.2-3B-Instruct"},
      {"llama3.1_8b", "meta-llama/Llama-3.1-8B"},
      {"llama3.1_8b_it", "meta-llama/Llama-3.1-8B-Instruct"},
      {"llama2_7b", "meta-llama/Llama-2-7b-hf"},
      {"llama2_7b_it", "meta-llama/Llama-2-7b-chat-hf"},
      {"qwen2.5_0.5b", "Qwen/Qwen2.5-0.5B"},
      {"qwen2.5_0.5b_it", "Qwen/Qwen2.5-0.5B-Instruct"},
      {"qwen2.5_1.5b", "Qwen/Qwen2.5-1.5B"},
      {"qwen2.5_1.5b_it", "Qwen/Qwen2.5-1.5B-Instruct"},
      {"qwen2.5_3b", "Qwen/Qwen2.5-3B"},
      {"qwen2.5_3b_it", "Qwen/Qwen2.5-3B-Instruct"},
      {"qwen2.5_7b", "Qwen/Qwen2.5-7B"},
      {"qwen2.5_7b_it", "Qwen/Qwen2.5-7B-Instruct"},
  };
  for (const auto& [alias, repo] : kAliases)
    if (name == alias) return std::string(repo);
  return std::nullopt;
}

std::vector<fs::path> hf_hub_cache_dirs() {
  std::vector<fs::path> out;
  auto add = [&](const fs::path& p) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  if (const char* v = std::getenv("HF_HUB_CACHE"); v && *v) add(v);
  if (const char* v = std::getenv("HF_HOME"); v && *v) add(fs::path(v) / "hub");
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) add(fs::path(v) / "huggingface" / "hub");
  if (const char* v = std::getenv("HOME"); v && *v) add(fs::path(v) / ".cache" / "huggingface" / "hub");
  return out;
}

ResolvedModel resolve_model_path(const std::string& spec) {
  if (spec.empty()) throw ModelError("model: empty model name");
  std::error_code ec;
  if (fs::is_directory(spec, ec)) return {fs::path(spec), ModelFormat::HfDirectory, ""};
  if (fs::is_regular_file(spec, ec)) {
    const std::string ext = fs::path(spec).extension().string();
    if (ext == ".safetensors" || ext == ".json")
      throw ModelError(spec + ": give the model directory, not one of its files");
    return {fs::path(spec), ModelFormat::TorchScript, ""};
  }
  const std::optional<std::string> alias = model_alias(spec);
  const std::string repo = alias.value_or(spec);
  std::vector<std::string> looked = {spec + " (no such directory or file)"};
  const auto slash = repo.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size() ||
      repo.find('/', slash + 1) != std::string::npos) {
    throw ModelError("model '" + spec + "' not found: not a directory or file, and not a Hugging Face repo id "
                     "(ORG/NAME) or alias (llama3.2_1b, llama3.2_1b_it, llama3.2_3b, llama3.2_3b_it, "
                     "llama3.1_8b, llama3.1_8b_it, llama2_7b(_it), qwen2.5_{0.5b,1.5b,3b,7b}(_it))");
  }
  const std::string folder = "models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1);
  for (const fs::path& root : hf_hub_cache_dirs()) {
    const fs::path base = root / folder;
    if (!fs::is_directory(base, ec)) {
      looked.push_back(base.string() + " (no such directory)");
      continue;
    }
    // refs/main names the snapshot transformers would use; otherwise any complete snapshot.
    std::vector<fs::path> candidates;
    std::ifstream ref(base / "refs" / "main");
    std::string rev;
    if (ref && std::getline(ref, rev) && !rev.empty()) candidates.push_back(base / "snapshots" / rev);
    if (fs::is_directory(base / "snapshots", ec)) {
      std::vector<fs::path> snaps;
      for (const auto& e : fs::directory_iterator(base / "snapshots", ec))
        if (e.is_directory()) snaps.push_back(e.path());
      std::sort(snaps.begin(), snaps.end());
      candidates.insert(candidates.end(), snaps.begin(), snaps.end());
    }
    for (const fs::path& snap : candidates) {
      if (fs::is_regular_file(snap / "config.json", ec) &&
          (fs::exists(snap / "model.safetensors", ec) || fs::exists(snap / "model.safetensors.index.json", ec)))
        return {snap, ModelFormat::HfDirectory, repo};
      looked.push_back(snap.string() + " (no config.json with model.safetensors[.index.json])");
    }
    if (candidates.empty()) looked.push_back((base / "snapshots").string() + " (no snapshots)");
  }
  std::string msg = "model '" + spec + "'" + (alias ? " (" + repo + ")" : "") +
                    " not found offline (nothing is downloaded); looked in:";
  for (const auto& l : looked) msg += "\n  " + l;
  throw ModelError(msg);
}

}  // namespace flexgen
