// Parameters of the CUDA block-sparse attention kernels. Plain C++ (no torch, no CUDA types) so
// that the .cu file compiles without libtorch headers and the host wrapper without nvcc.
#pragma once

#include <cstdint>

namespace flexgen {
namespace cuda_bsa {

// One batch row's mask, as device pointers into a DeviceBlockMask, plus the row's offsets.
struct MaskDesc {
  const int32_t* full_off;  // [num_q_blocks + 1]
  const int32_t* full_idx;
  const int32_t* part_off;  // [num_q_blocks + 1]
  const int32_t* part_idx;
  const int32_t* part_cols;  // per partial entry: [lo, hi) of the block's columns that may be allowed
  const int32_t* gid;  // group id per absolute position
  const int32_t* vis;  // [G * G], row-major, 0/1
  int32_t q_len, kv_len, block_size, num_q_blocks, num_groups, causal;
  int32_t q_offset, k_offset;
  // Keys at positions [0, shared_len) are bitwise those of batch row shared_row of the same k/v
  // memory (a run-level prefix many rows hold): the decode kernel reads them from there, so rows of
  // one prefix read one copy (from L2 after the first). 0: none. Table masks only (k_offset 0).
  int32_t shared_row, shared_len;
};

constexpr int kMaxRowsPerLaunch = 32;  // batch rows per launch (kernel parameter space)

// A decode row's key blocks for its query, read from the host copy of its block mask when a mask
// table is written (update_device_mask_table), so that the decode kernel reads them in one trip
// instead of walking the mask's lists (offsets, then indices, then columns) and the group ids
// and visibility of every key of a partial block. The same integers as that walk: the same keys,
// the same arithmetic.
constexpr int kDecodeCountedKvHeads = 32;  // KV heads a mask table keeps split counters for
constexpr int kDecodePlanBlocks = 16;  // listed blocks a plan holds (more: the kernel walks the lists)
struct alignas(16) DecodePlan {
  int32_t n;     // key blocks listed for the query (full ones first); -1: not planned (more than
                 // kDecodePlanBlocks, or plans turned off): the kernel reads the MaskDesc's lists
  int32_t nf;    // full blocks among them
  int32_t vrow;  // gid[q] * num_groups, the query group's row of the visibility matrix; -1: that
                 // group sees every group (a key of a partial block is visible when in range and,
                 // for a causal mask, at or before the query)
  int32_t open;  // bit e: every key of listed block e's [ks, ke) is visible (full blocks; partial
                 // blocks whose keys all lie in groups the query's group sees): no per-key reads
  int32_t keys[2 * kDecodePlanBlocks];  // listed block e: keys [keys[2e], keys[2e + 1]) clipped to
                                        // the mask's keys (the kernel clips them to the cache's)
};
static_assert(sizeof(DecodePlan) % 16 == 0, "the kernel reads a plan's head (n, nf, vrow, open) as one int4");

struct Params {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  float* lse;  // nullptr unless requested; [B, H, Lq]
  int64_t qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, os0, os1, os2;  // element strides
  int32_t B, H, Hkv, g, Lq, Lk;
  int32_t b0;      // first batch row of this launch
  int32_t nmasks;  // 1: masks[0] for every row; else masks[b - b0]
  float scale_log2;  // softmax scale * log2(e)
  // When set, batch row b's mask is mtab[b] in device memory (a DeviceMaskTable; Lq == 1) and
  // `masks` is unused; table_block_size is the block size of all its masks.
  const MaskDesc* mtab;
  const DecodePlan* plan;  // with mtab (decode steps): row b's plan is plan[b]; else nullptr
  // With mtab (decode steps, many rows): arrival counts of the splits of (row b, KV head h) at
  // counters[b * kDecodeCountedKvHeads + h], zero between launches: the last split to finish
  // merges them (no combine kernel). nullptr: the combine kernel merges.
  int32_t* counters;
  int32_t table_block_size;
  MaskDesc masks[kMaxRowsPerLaunch];
};

enum class DType : int { BF16 = 0, FP16 = 1 };

// Kernel configurations (rows per warp x warps x key tile).
//   0: 4 warps x 32 rows (BM 128), BN 64   (default for prefill)
//   1: 8 warps x 16 rows (BM 128), BN 64
//   2: 4 warps x 16 rows (BM 64),  BN 64, 2 CTAs/SM  (short / decode-like query ranges)
//   3: 4 warps x 16 rows (BM 64),  BN 32, 3 CTAs/SM
//   4: 8 warps x 16 rows (BM 128), BN 32, 2 CTAs/SM
//   5: 4 warps x 32 rows (BM 128), BN 32
//   6: wgmma, 2 warpgroups (BM 128), BN 64: variant 0's bits (Hopper; not for device mask tables)
//   7: wgmma, 1 warpgroup (BM 64), BN 64, 2 CTAs/SM: variant 2's bits (the same)
//   8, 9: 6 and 7 software-pipelined (a chunk's softmax while the previous chunk's P V runs)
constexpr int kNumVariants = 10;
constexpr int kFirstWgmmaVariant = 6;
int variant_block_m(int variant);

// The wgmma kernel (block_sparse_attention_wgmma_kernel.cu): whether the current device runs it
// (compute capability 9.0), and its launch (variants 6-9) for batch rows [b0, b0 + nb) (p.mtab
// must be null). Its outputs are bitwise those of `launch` with BN 64 kernels.
bool wgmma_available();
int launch_wgmma(const Params& p, DType dtype, int head_dim, int variant, int nb, void* stream);

// Launches the kernel for batch rows [b0, b0 + nb) on `stream` (a cudaStream_t).
// Returns a cudaError_t value (0 = success).
int launch(const Params& p, DType dtype, int head_dim, int variant, int nb, void* stream);

// Decode path (Lq == 1, g = H / Hkv <= decode_max_group()): split-K over the listed key blocks,
// up to `splits` CTAs per (KV head, batch row), then the partials are merged in split order: by a
// combine kernel, or with cluster_merge (sm_90+; launches of up to 8 rows) by the same CTAs,
// launched as one thread-block cluster per (KV head, row), after a cluster barrier (one launch;
// the same bits). `ws` holds B * H * splits * (head_dim + 2) floats (rows b0 .. b0 + nb - 1 are
// used). With `pdl` the kernels launch with programmatic dependent launch (cuda_pdl_enabled()).
int decode_max_group();
int launch_decode(const Params& p, DType dtype, int head_dim, int nb, int splits, float* ws, bool pdl,
                  bool cluster_merge, void* stream);

}  // namespace cuda_bsa
}  // namespace flexgen
