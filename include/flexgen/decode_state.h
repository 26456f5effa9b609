// The device side of a continuous-batching decode, owned by the model layer: the KV cache of a
// fixed set of rows, each row's mask in the forms the model's backend needs, the step's input
// buffers and, on CUDA, the device mask table and the captured graph. Rows are addressed by
// index; which sample a row serves is the caller's (the scheduler's) business. The caller never
// needs to know the device: every method works the same on each backend.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "flexgen/llama.h"
#include "flexgen/mask.h"

namespace flexgen {

struct DecodeStateOptions {
  int64_t rows = 1;          // cache rows (sequences decoded together)
  int64_t length = 1;        // cache slots per row (longest prompt + new tokens)
  int64_t block_size = 128;  // block size of the block masks
  bool block_sparse = true;  // CPU: attend through the block-sparse kernel (else the dense
                             // reference); CUDA always runs its block-sparse kernel
  bool graphs = true;        // CUDA: replay decode steps from a captured CUDA graph (a size's first step eager)
  bool batch_invariant = true;  // steps and prefills: a row's logits do not depend on the other rows
  bool prefix_own_pass = false;  // prefix_needs_own_pass() (tests of the own-pass path on the CPU)
  // A prefill's norms, linears and MLP run on the columns that hold tokens only (prefill's `real`;
  // the same bits): on the CPU, and on CUDA under batch invariance (its row-invariant prefill
  // linear). Off: every column (tests).
  bool pack_prefill = true;
};

// Input tokens a decode step takes from device memory (the previous step's picks, before the host
// has read them): row rows[i] feeds ids[index[i]] (ids: int64 on the model's device); every other
// row feeds its host token.
struct DeviceFeed {
  at::Tensor ids;
  std::vector<int64_t> rows, index;
};

// Device values on their way to host memory: wait() returns them once copied, without waiting for
// work queued on the device after the copy.
class HostCopy {
 public:
  at::Tensor wait() const;

 private:
  friend class DecodeState;
  at::Tensor host_;
  std::function<void()> ready_;  // blocks until the copy is done
};

class DecodeState {
 public:
  // Row counts of the CUDA step graphs: multiples of this (the tail of a run, when the last
  // samples leave rows free, steps over fewer rows; few graphs are captured). The decode linear
  // takes rows 64 at a time, so a step of 66 rows costs about what one of 128 does (an H200:
  // with multiples of 32, `flex --shared-context` at batch 128 got 1% slower, a graph captured
  // for 96 rows; with 64, `avg` at batch 32, 10 rows in the last wave, 5% less a step).
  static constexpr int64_t kStepRowBucket = 64;

  DecodeState(const LlamaModel& model, const DecodeStateOptions& options);
  ~DecodeState();
  DecodeState(const DecodeState&) = delete;
  DecodeState& operator=(const DecodeState&) = delete;

  int64_t rows() const { return options_.rows; }

  // Prefills rows [first, first + masks.size()) with `tokens` and `positions` (int64 [n, L], host):
  // the prompts padded to one length, each row's mask over its padded positions (covering
  // the tokens it will generate too, and at least the L slots of the pass). A row whose mask is
  // nullopt is idle: it is fed padding and keeps the idle mask. Returns fp32 logits [n, L, V] (All)
  // or [n, 1, V] (Last) on the model's device.
  // Last: row b's logits at column last[b] of the pass (empty: column L - 1 for every row).
  // With start > 0 the rows' cache slots [0, start) already hold their K/V (write_prefix) and
  // `tokens`/`positions` are slots [start, start + L) only (a prefill chunk at that offset); the
  // masks still cover every slot from 0.
  // real: the columns b * L + c of the pass that hold tokens, ascending (empty: all); the others
  // are padding no row attends to, or slots a decode step writes before anything reads them
  // (llama_forward's `real`: packed where pack_prefill is on).
  // copies: llama_forward's, rows counted from `first`.
  at::Tensor prefill(int64_t first, const at::Tensor& tokens, const at::Tensor& positions,
                     std::vector<std::optional<AttentionMask>> masks, LogitsMode mode, int64_t start = 0,
                     const std::vector<int64_t>& last = {}, const std::vector<int64_t>& real = {},
                     const KvSlotCopies& copies = {});

  // Run-level KV store support. True where a plain causal prefix's K/V are bitwise the same in
  // every row and pass with the same tokens and position ids at cache slots from 0, given
  // prefix_needs_own_pass(): the CPU; CUDA under batch invariance (its prefill is row-invariant)
  // or with prefix_own_pass; not CUDA with batch_invariant off (its GEMMs depend on the pass's rows).
  bool prefix_reuse_is_exact() const;
  // True where prefixes are computed in a pass of their own (one row, the prefix alone):
  // DecodeStateOptions::prefix_own_pass only. No backend needs it for exact reuse (the CPU kernels
  // and the batch-invariant CUDA prefill compute a row's K/V the same in any pass).
  bool prefix_needs_own_pass() const;
  // K and V of cache slots [0, length) of `row`, copied out: [layers, kv_heads, length, head_dim].
  std::pair<at::Tensor, at::Tensor> read_prefix(int64_t row, int64_t length) const;
  // Writes such a copy into cache slots [0, k.size(2)) of rows [row, row + count) (one copy for
  // them all). On CUDA the copy (the same tensor k, while rows use it) is also held in a row of
  // its own past the rows, from which decode steps read those rows' prefix keys: every row of one
  // prefix reads the same memory (the same bytes as its own copy, so the same bits).
  void write_prefix(int64_t row, const at::Tensor& k, const at::Tensor& v, int64_t count = 1);

  // Cache rows past `rows` that hold prefixes for the decode steps' reads (CUDA, at least
  // kSharedPrefixMinRows rows; FLEXGEN_CUDA_SHARED_PREFIX=0 turns them off for A/B runs).
  static constexpr int64_t kSharedPrefixRows = 2;
  static constexpr int64_t kSharedPrefixMinRows = 8;
  // The rows reading their prefix from a shared row now (tests, the debug log).
  int64_t rows_reading_shared_prefix() const;

  // Rows [first, first + count) serve nothing from now on (idle mask; their cache is reused).
  void release(int64_t first, int64_t count);

  // One decode step: the token each row feeds, its RoPE position id and the cache slot it goes
  // to (one entry per row). Idle rows are fed anything at slot 0; those past the last row in use
  // (prefilled, not released) are not computed. Returns fp32 logits [n, V] of rows [0, n) on the
  // model's device, finished computing: n = the last row in use + 1 (with CUDA graphs rounded up
  // to a multiple of kStepRowBucket, at most rows: one graph per size). A row's logits do not
  // depend on n (the kernels are row-invariant).
  at::Tensor step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
                  const std::vector<int64_t>& slots);
  // step() without waiting for the device: the logits are computed in the order work is queued, so
  // what is queued after (a pick, copy_to_host) sees them, and the host may prepare the next step
  // meanwhile. `feed` (optional) replaces some rows' tokens with values in the model's memory.
  // Where the logits are on the host (the CPU) it is step() with the fed tokens read there.
  at::Tensor step_queued(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
                         const std::vector<int64_t>& slots, const DeviceFeed* feed = nullptr);
  // Copies `values` (on the model's device) to host memory, queued after the work queued so far.
  HostCopy copy_to_host(const at::Tensor& values) const;

  // True where the logits stay in device memory (a GPU): picking tokens there saves moving
  // [rows, V] logits to the host every step.
  bool logits_on_device() const;

  // True where prefilling several samples in one pass gives each the same bits as alone: the CPU
  // kernels; CUDA under batch_invariant (a row-invariant prefill GEMM), not with it off.
  bool grouped_prefill_is_invariant() const;
  // The most tokens (rows x the slots the pass computes) worth putting in one grouped prefill
  // pass: 16384 on CUDA; on the CPU as many as keep the widest linear's output of a pass within
  // 32 MiB (glibc's largest reused allocation: beyond it every call maps fresh pages, ~10% slower;
  // 2048 for a 1B model in bf16), at most 16384. Counting computed slots, not whole prompts,
  // matters with reused prefixes: a pass then computes a few slots a row (1B demo model, `avg`, 16
  // samples on 2 cores: 7 passes -> 2, prefill 7.6 -> 5.7 s).
  int64_t prefill_tokens_per_pass() const;

 private:
  struct Cuda;  // the CUDA step's buffers, mask table and graph

  RowMask row_mask(AttentionMask mask) const;
  // The rows a step computes (see step()).
  int64_t step_rows() const;

  // A prefix held in a shared row: the tensor it was copied from (its identity, a store entry,
  // and its length: k.size(2)) and the rows reading from it.
  struct SharedPrefix {
    at::Tensor k;
    int64_t users = 0;
  };
  // Row r reads no shared prefix from now on.
  void detach_shared_prefix(int64_t r);

  const LlamaModel& model_;
  DecodeStateOptions options_;
  int64_t block_size_ = 0;  // of the row masks (0 = dense reference)
  KVCache cache_;
  KVCache shared_cache_;                   // the shared rows (views past cache_'s rows, same memory)
  std::vector<SharedPrefix> shared_;       // per shared row
  std::vector<int64_t> row_shared_;        // per row: its shared row, or -1
  RowMask idle_;
  std::vector<RowMask> masks_;  // per row
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace flexgen
