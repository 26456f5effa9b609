// The one translation unit that includes <torch/script.h>.
#include "flexgen/torchscript_loader.h"
#include "flexgen/model_loader.h"

#include <torch/script.h>

namespace flexgen {
namespace fs = std::filesystem;

namespace {

// libtorch's message in words: its first line, without the request to report the message to
// PyTorch or where inside libtorch it was raised; its assertion on a missing archive record
// ("Expected hasRecord("version") to be true, but got false.") says which record is missing.
std::string torch_problem(const c10::Error& e) {
  std::string m = e.what_without_backtrace();
  m = m.substr(0, m.find('\n'));
  for (const char* noise : {"  (Could this error message be improved?", " (Could this error message be improved?",
                            " (Triggered internally at"})
    if (const size_t at = m.find(noise); at != std::string::npos) m = m.substr(0, at);
  const std::string expect = "Expected hasRecord(\"";
  if (m.rfind(expect, 0) == 0) {
    const size_t end = m.find('"', expect.size());
    if (end != std::string::npos) return "no \"" + m.substr(expect.size(), end - expect.size()) + "\" record in it";
  }
  return m.substr(0, 400);
}

}  // namespace

NamedTensors read_torchscript_tensors(const fs::path& archive) {
  if (!fs::is_regular_file(archive)) throw ModelError(archive.string() + ": no such file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(archive.string(), c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    throw ModelError(archive.string() + ": not a readable TorchScript archive: " + torch_problem(e));
  }
  NamedTensors named;
  named.source = archive.string();
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (named.tensors.count(name))
      throw ModelError(archive.string() + ": tensor '" + name + "' appears twice");
    named.tensors[name] = t.detach();
    named.origin[name] = archive.string();
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) add(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) add(b.name, b.value);
  // A state dict held as a Dict[str, Tensor] attribute of the root module.
  for (const auto& a : module.named_attributes(/*recurse=*/false)) {
    if (!a.value.isGenericDict()) continue;
    for (const auto& entry : a.value.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor())
        throw ModelError(archive.string() + ": attribute '" + a.name + "' is a dict but not Dict[str, Tensor]");
      add(entry.key().toStringRef(), entry.value().toTensor());
    }
  }
  if (named.tensors.empty())
    throw ModelError(archive.string() + ": no parameters, buffers or Dict[str, Tensor] attribute with tensors");
  return named;
}

LlamaModel load_llama_from_torchscript(const fs::path& archive, const std::optional<fs::path>& config_json,
                                       const LoadOptions& options) {
  const fs::path cfg_path = config_json ? *config_json : archive.parent_path() / "config.json";
  if (!fs::is_regular_file(cfg_path))
    throw ModelError(archive.string() + ": no config.json beside the archive (" + cfg_path.string() +
                     "); give the config path explicitly");
  ModelConfig config = load_model_config(cfg_path);
  const fs::path gen = cfg_path.parent_path() / "generation_config.json";
  if (fs::is_regular_file(gen)) apply_generation_config(gen, config);
  return assemble_llama(config, read_torchscript_tensors(archive), options);
}

}  // namespace flexgen
