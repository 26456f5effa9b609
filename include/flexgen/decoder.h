// The generation loop: rows (sequences of one batch, each with its own mask and
// position ids) prefilled once, then decoded with the KV cache; streams pick one
// token per step from the logits of their rows (one row, or an ensemble).
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexgen/decode_plan.h"
#include "flexgen/llama.h"
#include "flexgen/tokenizer.h"

namespace flexgen {

// A job whose decoding failed for a reason of its own (logits that are not finite, ...): its
// index, so that the caller can name the sample.
struct JobError : std::runtime_error {
  JobError(size_t job_index, const std::string& what) : std::runtime_error(what), job(job_index) {}
  size_t job;
};

// Continuous batching: up to `in_flight` jobs decode together, one step for all their rows at
// a time; when a job finishes, its rows take the next job (prefilled on its own, its rows
// padded to one length: [padding][row], or on the CPU [shared prefix][padding][rest], the prefix
// K/V from the run-level KV store when DecodeConfig::kv_reuse) while the others go on. on_done(job index, results: one per
// stream) is called as each job finishes, so not necessarily in job order. The results do
// not depend on `in_flight`. Throws std::invalid_argument on bad plans.
void decode_jobs(const LlamaModel& model, const Tokenizer& tokenizer, const std::vector<DecodeJob>& jobs,
                 const DecodeConfig& config, int64_t in_flight,
                 const std::function<void(size_t, std::vector<StreamResult>)>& on_done,
                 DecodeStats* stats = nullptr);

// Launches once, on tiny inputs, the device work of decode_jobs besides the model's passes (the
// picks of greedy tokens), so that CUDA loads its kernels now, as part of loading, not inside a
// run's first pass (13 ms of a 3B WebQA run on an H200). Nothing on the CPU.
void warm_up_decoding(const LlamaModel& model);

// One job: prefill and decode for the rows (padded to one length, as above); one result per
// stream, in order.
std::vector<StreamResult> decode_streams(const LlamaModel& model, const Tokenizer& tokenizer,
                                         const std::vector<RowPlan>& rows,
                                         const std::vector<StreamPlan>& streams, const DecodeConfig& config,
                                         DecodeStats* stats = nullptr);

}  // namespace flexgen
