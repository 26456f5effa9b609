// What a decode runs, as plain data (no torch): the rows (sequences with their masks and
// position ids), the streams that pick one token per step from their rows' logits, the decode
// settings, and what comes back (ids, text, stop reason, per-step traces, timing).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "flexgen/mask.h"
#include "flexgen/sampler.h"
#include "flexgen/span_copy.h"
#include "flexgen/stop_criteria.h"

namespace flexgen {

// One sequence of the batch, described over its own positions 0 .. prompt + max_new_tokens.
struct RowPlan {
  std::vector<int32_t> tokens;                 // prompt ids
  AttentionMask mask;                          // covers prompt + max_new_tokens positions
  std::vector<int64_t> position_ids;           // RoPE ids, prompt + max_new_tokens entries
  std::vector<int64_t> first_logit_positions;  // prompt positions whose mean logits give the
                                               // first token; empty = the last prompt position
  bool block_sparse = false;                   // attend through the block-sparse kernel
  // Leading prompt tokens that every sample of the run may share (BOS + instruction + few-shot):
  // a hint for the run-level KV store. The scheduler uses only the part of it whose mask is
  // plain causal (each position sees exactly the positions before it, nothing else), so their
  // keys and values depend on their tokens and position ids alone.
  int64_t shared_prefix = 0;
  // Spans whose K/V are those of an earlier span of the row (flex under restart positions: each
  // paraphrase's instruction + few-shot block is paraphrase 1's): the prefill computes the source
  // and copies its K/V to them, layer by layer, instead of computing them. They must be exact
  // (span_copies_are_exact: the scheduler checks); a row's records are the same with the KV store
  // or without it, alone or in any batch.
  std::vector<SpanCopy> copies;
};

// How a stream turns its rows' logits into one distribution.
enum class Combine {
  Mean,     // weighted mean of raw logits (one row: the row's logits)
  MaxProb,  // element-wise max over rows of weight x softmax
};

struct StreamPlan {
  std::vector<int32_t> rows;    // indices into the batch's rows
  Combine combine = Combine::Mean;
  std::vector<double> weights;  // one per row (normalised here); empty = uniform
  uint64_t seed = 0;            // sampling seed of this stream
};

// One step of a stream, for traces (`flexgen debug --verbose`).
struct StepTrace {
  int64_t position = 0;                       // slot of the generated token
  std::vector<std::pair<int32_t, float>> top; // top tokens with probabilities
  int32_t chosen = 0;
  std::string text;                           // decoded text so far
};

struct StreamResult {
  std::vector<int32_t> ids;  // generated ids (the stop token included)
  std::string text;          // decoded generated text, special tokens skipped
  StopCriteria::Reason stop = StopCriteria::Reason::MaxTokens;
  std::vector<StepTrace> trace;  // filled when DecodeConfig::trace_top > 0
};

struct DecodeConfig {
  int64_t max_new_tokens = 20;
  StopCriteria stops;
  SamplingOptions sampling;      // seed is taken per stream from StreamPlan::seed
  int64_t block_size = 128;      // block mask block size for block-sparse rows
  int64_t trace_top = 0;         // > 0: record this many top tokens per step
  int32_t pad_id = 0;            // token fed to padding slots (never attended to)
  bool cuda_graphs = true;       // CUDA: replay decode steps from a captured CUDA graph
  // A sample's results do not depend on what else is decoded with it (on the CPU always). On CUDA
  // this keeps prefill and decode rows on row-invariant kernels; false allows left-padded grouped
  // prefill and batched GEMMs (faster at large batches; results may then depend on the batch).
  bool batch_invariant = true;
  // Asked between steps (none = never): true stops the run where it is; jobs not finished are
  // dropped (on_done is not called for them), finished ones have been handed over already.
  std::function<bool()> should_stop;
  // Run-level KV store: the K/V of a row's shared prefix (RowPlan::shared_prefix, keyed by its
  // token and position ids) are computed once per run and copied into each row's cache; the
  // prefill then runs on the rest of the row only. Records are bitwise those without it: rows are
  // laid out [prefix][padding][rest] whether the store is on or not (a job's layout is its own,
  // whatever shares its prefill pass). CUDA with batch_invariant off keeps [padding][row] and never
  // uses the store.
  bool kv_reuse = true;
  int64_t kv_store_bytes = int64_t{1024} << 20;  // the store's bound (least recently used out)
  // Compute every reusable prefix in a pass of its own (one row, the prefix alone) without the
  // store too (with it, a prefix not yet stored always is); no backend needs it for exact reuse
  // (tests keep the path working).
  bool prefix_own_pass = false;
  // Prefill passes compute the norms, linears and MLP of their tokens only, not of their padding
  // or span copies (DecodeStateOptions::pack_prefill: the CPU, CUDA under batch invariance; the
  // same bits). Off: every slot of a pass (tests).
  bool pack_prefill = true;
  // Greedy runs whose picks stay on the device (a GPU; Mean streams, batch invariance on): the
  // next step is queued before the host reads a step's picks, its tokens taken from them there,
  // so the device does not wait for the host between steps. The same records either way.
  bool overlap_steps = true;
  // Overlapped steps where the logits are on the host too (the CPU, whose steps finish before the
  // host goes on: no gain there; tests of the scheduling without a GPU).
  bool overlap_on_host = false;
};

struct DecodeStats {
  int64_t prefill_tokens = 0;  // real prompt tokens (padding not counted)
  int64_t prefill_passes = 0;  // forward passes of admission: one per prefill group, one per own-pass prefix
  int64_t prefill_tokens_reused = 0;  // of them: K/V copied from the run-level KV store
  int64_t prefill_tokens_copied = 0;  // of them: K/V copied from an earlier span of the row (RowPlan::copies)
  int64_t kv_store_entries = 0;       // prefixes computed into the store
  int64_t kv_store_peak_bytes = 0;
  double prefill_seconds = 0;
  int64_t decode_tokens = 0;   // generated tokens over all streams
  double decode_seconds = 0;
  int64_t decode_steps = 0;    // forward passes of decode steps (all rows in flight at once)
  // Their model time alone: to the logits on the device; overlapped steps (overlap_steps) from
  // being queued, or from the previous step's picks being read if later, to their picks being read.
  double step_forward_seconds = 0;
  int64_t steps_ahead = 0;     // of them: queued before the previous step's picks were read (overlap_steps)
};

// One sample's work: its rows and the streams over them (row indices into `rows`).
struct DecodeJob {
  std::vector<RowPlan> rows;
  std::vector<StreamPlan> streams;
};

}  // namespace flexgen
