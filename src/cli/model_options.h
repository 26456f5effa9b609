// The model options shared by the commands that run a model (--model, --tokenizer,
// --config, --device, --dtype, --threads) and loading what they name.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "flexgen/llama.h"
#include "flexgen/tokenizer.h"

namespace flexgen::cli {

struct ModelArgs {
  std::string model;
  std::string tokenizer;  // default: beside the model
  std::string config;     // TorchScript archives: config.json when not beside it
  std::string device = "auto";
  std::string dtype = "auto";
  int threads = 0;        // 0 = all cores
};

void add_model_options(CLI::App& app, ModelArgs& args);

struct LoadedModel {
  LlamaModel model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Validates --device/--dtype/--threads (UsageError), then loads the model and its tokenizer.
LoadedModel load_model_and_tokenizer(const ModelArgs& args);

}  // namespace flexgen::cli
