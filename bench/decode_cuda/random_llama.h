// bench_decode_cuda's model: a random-weight LLaMA of the Llama-3.2-1B or -3B shape, built on the GPU
// from a config.json text and tensors by name (no files), through the library's own assemble_llama.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "flexgen/llama.h"
#include "flexgen/model_config.h"

namespace bench_decode {

// The Hugging Face config.json text of the shape "1b" (Llama-3.2-1B) or "3b" (Llama-3.2-3B), the keys
// bench/e2e_gpu/make_model.py writes; std::invalid_argument for another name.
std::string shape_config_json(const std::string& shape);

// Every weight the config names drawn on `device` in `dtype` (projections and embedding N(0, 0.02),
// norm weights 1 + N(0, 0.02)) from `seed`, then assembled by flexgen::assemble_llama onto `device`.
// assemble_llama takes host tensors, so each one is copied to host memory right after it is drawn and
// assemble_llama copies it back. Throws what assemble_llama throws (e.g. a dtype the library refuses).
flexgen::LlamaModel random_llama(const flexgen::ModelConfig& config, at::ScalarType dtype, const at::Device& device,
                                 uint64_t seed);

// Bytes of the weights one decode step reads once: every layer's norms and (fused) projections, the
// final norm and the LM head (the embedding row is ignored; a tied LM head counts once).
double step_weight_bytes(const flexgen::LlamaModel& model);

}  // namespace bench_decode
