// bench_decode_cuda's kernels alone: each CUDA kernel of one decode step (KernelSetup::rows rows) run through the
// library's public CUDA functions (src/ops/cuda/fused_ops_cuda.h, flexgen::attention), once per layer
// over all layers in sequence (so the weights stream from memory as in a step, not from the L2 cache),
// captured as one CUDA graph and replayed; time per launch and the bytes it must move.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "flexgen/llama.h"
#include "bandwidth.h"

namespace bench_decode {

struct KernelSetup {
  int64_t context = 600;       // cached tokens the decode step's attention reads (its query at slot `context`)
  int64_t cache_length = 672;  // KV cache slots per layer (as the step's DecodeState: context + steps + 8)
  int64_t block_size = 128;    // of the attention's block mask
  bool batch_invariant = true; // as DecodeStateOptions: the step's linears and attention take this path
  int64_t reps = 200;          // graph replays
  int64_t rows = 1;            // rows decoded at once (each a token; the batch of the step)
};

struct KernelResult {
  std::string name;
  std::string what;               // the call and its shapes
  double us = 0;                  // median time per launch
  double bytes = 0;               // bytes one launch must move: weights + activations in and out
  int64_t launches_per_step = 0;  // launches of it in one decode step of the model
  int64_t launches_per_replay = 0;
  int64_t replays = 0;
  nlohmann::ordered_json to_json(const Limits& limits) const;
};

// In decode-step order: rms_norm, qkv_proj, rope_qkv, attention, o_proj, add_rms_norm, gate_up_proj,
// silu_mul, down_proj, lm_head. The model must be on a CUDA device, with fused projections.
std::vector<KernelResult> measure_kernels(const flexgen::LlamaModel& model, const KernelSetup& setup);

}  // namespace bench_decode
