// Host side of the CUDA block-sparse attention: block-mask upload, argument checks, launch.
// Kernels: block_sparse_attention_kernel.cu (see there for the algorithm).
#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "bsa_params.h"
#include "env_switch.h"

namespace flexgen {

namespace {

constexpr double kLog2e = 1.4426950408889634;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("block_sparse_attention_cuda: " + what);
}

std::string shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Last dim contiguous, rows / heads / batches at 16-byte multiples, base 16-byte aligned.
at::Tensor usable(const at::Tensor& t) {
  const int64_t e = static_cast<int64_t>(t.element_size());
  const bool aligned = reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0 &&
                       (t.stride(0) * e) % 16 == 0 && (t.stride(1) * e) % 16 == 0 &&
                       (t.stride(2) * e) % 16 == 0;
  if (t.stride(3) == 1 && aligned) return t;
  return t.contiguous();
}

// FLEXGEN_CUDA_DECODE_LAST_SPLIT_MERGE: 1 (default) decode steps from a mask table merge each row's
// split partials in the CTA that finishes last; 0 in a second, combine kernel (as before
// 2026-12-02i; A/B runs and tests, the same bits). Decided once.
bool decode_last_split_merge() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_DECODE_LAST_SPLIT_MERGE", {"0", "1"}) != "0";
  return on;
}

// How decode steps of few rows merge their split partials: inside the decode kernel's thread-block
// clusters (GPUs of compute capability 9.0+, the default there) or by a second, combine kernel
// (FLEXGEN_CUDA_DECODE_MERGE=kernel; older GPUs). The same bits either way. Decided once.
bool decode_cluster_merge() {
  static const bool cluster = [] {
    const std::string v = cuda_env::env_switch("FLEXGEN_CUDA_DECODE_MERGE", {"cluster", "kernel"});
    const bool sm90 = at::cuda::getCurrentDeviceProperties()->major >= 9;
    if (v == "cluster" && !sm90)
      throw std::invalid_argument("FLEXGEN_CUDA_DECODE_MERGE=cluster needs a GPU of compute capability 9.0 or later");
    return sm90 && v != "kernel";
  }();
  return cluster;
}

// FLEXGEN_CUDA_BSA_VARIANT (benchmarks and tests of the tiled kernels; read at each call, so tests
// may set it between calls): -1 when unset.
int env_variant() {
  const char* s = std::getenv("FLEXGEN_CUDA_BSA_VARIANT");
  if (s == nullptr || *s == 0) return -1;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v >= cuda_bsa::kNumVariants)
    throw std::invalid_argument("FLEXGEN_CUDA_BSA_VARIANT must be a kernel variant 0-" +
                                std::to_string(cuda_bsa::kNumVariants - 1) + ", got '" + s + "'");
  return static_cast<int>(v);
}

// For every partial entry (q block qb, key block kb): the columns [lo, hi) of kb, relative to its
// first key, that some query row of qb may see (group visible from a group present in qb, and
// k <= last row of qb when causal); {0, 0} when none. Works on runs of equal group ids, so the
// cost is O(length + entries x runs per block), not O(entries x block_size).
void partial_columns(const BlockMask& bm, const AttentionMask& mask, int32_t* out) {
  const int64_t L = mask.length(), G = mask.spec.num_groups, B = bm.block_size;
  const int32_t* gid = mask.group_ids.data();
  std::vector<int64_t> run_start;  // starts of runs of equal group id, plus L
  for (int64_t i = 0; i < L; ++i)
    if (i == 0 || gid[i] != gid[i - 1]) run_start.push_back(i);
  run_start.push_back(L);
  auto run_of = [&](int64_t pos) {  // index of the run holding pos
    return static_cast<int64_t>(std::upper_bound(run_start.begin(), run_start.end(), pos) - run_start.begin()) - 1;
  };
  std::vector<uint8_t> any(static_cast<size_t>(G));
  for (int64_t qb = 0; qb < bm.num_q_blocks; ++qb) {
    const int32_t e0 = bm.partial_offsets[qb], e1 = bm.partial_offsets[qb + 1];
    if (e0 == e1) continue;
    const int64_t q0 = qb * B, q1 = std::min({q0 + B, bm.q_len, L});
    std::fill(any.begin(), any.end(), 0);
    for (int64_t r = run_of(q0); r + 1 < static_cast<int64_t>(run_start.size()) && run_start[r] < q1; ++r) {
      const uint8_t* row = mask.spec.visible.data() + static_cast<size_t>(gid[run_start[r]]) * G;
      for (int64_t g = 0; g < G; ++g) any[g] |= row[g];
    }
    for (int32_t e = e0; e < e1; ++e) {
      const int64_t k0 = static_cast<int64_t>(bm.partial_indices[e]) * B;
      int64_t k1 = std::min({k0 + B, bm.kv_len, L});
      if (mask.spec.causal) k1 = std::min(k1, q1);
      int64_t lo = -1, hi = -1;
      if (k0 < k1) {
        for (int64_t r = run_of(k0); r + 1 < static_cast<int64_t>(run_start.size()) && run_start[r] < k1; ++r) {
          if (!any[gid[run_start[r]]]) continue;
          if (lo < 0) lo = std::max(run_start[r], k0);
          hi = std::min(run_start[r + 1], k1);
        }
      }
      out[2 * e] = lo < 0 ? 0 : static_cast<int32_t>(lo - k0);
      out[2 * e + 1] = lo < 0 ? 0 : static_cast<int32_t>(hi - k0);
    }
  }
}

// The kernel's view of one batch row's mask (device pointers into the DeviceBlockMask).
cuda_bsa::MaskDesc describe(const DeviceMaskRef& ref, int64_t b, int64_t Lq, int64_t Lk, const at::Device& device) {
  auto row = [b] { return "batch row " + std::to_string(b) + ": "; };  // built only on error
  if (ref.mask == nullptr || !ref.mask->defined()) check(false, row() + "null or empty device mask");
  const DeviceBlockMask& m = *ref.mask;
  if (m.data.device() != device)
    check(false, row() + "device mask is on " + m.data.device().str() + ", tensors on " + device.str());
  if (ref.q_offset < 0 || ref.k_offset < 0) check(false, row() + "negative position offset");
  if (ref.q_offset + Lq > kInt32Max || ref.k_offset + Lk > kInt32Max)
    check(false, row() + "positions must fit in int32");
  const int32_t* base = m.data.data_ptr<int32_t>();
  cuda_bsa::MaskDesc md{};
  md.full_off = base + m.full_offsets, md.full_idx = base + m.full_indices;
  md.part_off = base + m.partial_offsets, md.part_idx = base + m.partial_indices;
  md.part_cols = base + m.partial_cols;
  md.gid = base + m.group_ids, md.vis = base + m.visible;
  md.q_len = static_cast<int32_t>(m.q_len), md.kv_len = static_cast<int32_t>(m.kv_len);
  md.block_size = static_cast<int32_t>(m.block_size), md.num_q_blocks = static_cast<int32_t>(m.num_q_blocks);
  md.num_groups = static_cast<int32_t>(m.num_groups), md.causal = m.causal ? 1 : 0;
  md.q_offset = static_cast<int32_t>(ref.q_offset), md.k_offset = static_cast<int32_t>(ref.k_offset);
  if (ref.shared_len < 0 || ref.shared_len > kInt32Max || ref.shared_row < 0 || ref.shared_row > kInt32Max)
    check(false, row() + "bad shared prefix rows");
  md.shared_row = static_cast<int32_t>(ref.shared_row), md.shared_len = static_cast<int32_t>(ref.shared_len);
  return md;
}

// Row `ref`'s decode plan: the listed key blocks of its query as the decode kernel would walk them
// in the device copy (decode_listed_blocks, decode_key_range: the same integers, from the host
// copy), clipped to the mask's keys (k_offset is 0 in tables), and whether the query's group sees
// every group. Not planned (n = -1) when more blocks are listed than a plan holds.
cuda_bsa::DecodePlan plan_of(const DeviceMaskRef& ref) {
  cuda_bsa::DecodePlan P{};
  P.n = -1;
  const DeviceBlockMask& m = *ref.mask;
  if (!m.host.defined()) return P;
  const int32_t* h = m.host.data_ptr<int32_t>();
  const int64_t qpos = ref.q_offset, bs = m.block_size, qb = qpos / bs;
  if (qpos >= m.q_len || qb >= m.num_q_blocks) {
    P.n = 0;
    return P;
  }
  const int32_t *fo = h + m.full_offsets, *po = h + m.partial_offsets;
  const int32_t nf = fo[qb + 1] - fo[qb], n = nf + po[qb + 1] - po[qb];
  if (n > cuda_bsa::kDecodePlanBlocks) return P;
  P.n = n, P.nf = nf;
  for (int32_t e = 0; e < n; ++e) {
    const bool partial = e >= nf;
    const int32_t at = partial ? po[qb] + (e - nf) : fo[qb] + e;
    int64_t ks = static_cast<int64_t>(h[(partial ? m.partial_indices : m.full_indices) + at]) * bs, ke = ks + bs;
    if (partial) {
      ke = ks + h[m.partial_cols + 2 * at + 1];
      ks += h[m.partial_cols + 2 * at];
      if (m.causal) ke = std::min(ke, qpos + 1);
    }
    P.keys[2 * e] = static_cast<int32_t>(std::max<int64_t>(ks, ref.k_offset));
    P.keys[2 * e + 1] = static_cast<int32_t>(std::min<int64_t>(ke, m.kv_len));
  }
  P.vrow = 0;
  if (n > 0) {
    const int64_t G = m.num_groups, row = static_cast<int64_t>(h[m.group_ids + qpos]) * G;
    const int32_t* vis = h + m.visible + row;
    bool all = true;
    for (int64_t j = 0; j < G && all; ++j) all = vis[j] != 0;
    P.vrow = all ? -1 : static_cast<int32_t>(row);
    // Open blocks: a partial block's keys (already clipped to the query's position when causal)
    // all in groups the query's group sees.
    const int32_t* gid = h + m.group_ids;
    for (int32_t e = 0; e < n; ++e) {
      bool open = e < nf || all;
      if (!open) {
        int64_t k = P.keys[2 * e];
        while (k < P.keys[2 * e + 1] && vis[gid[k]] != 0) ++k;
        open = k == P.keys[2 * e + 1];
      }
      if (open) P.open |= int32_t{1} << e;
    }
  }
  return P;
}

// q, k, v checks shared by both entry points.
void check_qkv(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in) {
  check(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
        "q, k, v must be 4-D [batch, heads, length, head_dim]; got q " + shape(q_in) + ", k " + shape(k_in) +
            ", v " + shape(v_in));
  check(q_in.is_cuda() && k_in.is_cuda() && v_in.is_cuda(), "q, k and v must be CUDA tensors");
  check(k_in.device() == q_in.device() && v_in.device() == q_in.device(), "q, k and v must be on one device");
  const auto dtype = q_in.scalar_type();
  check(dtype == at::kBFloat16 || dtype == at::kHalf, "dtype must be bfloat16 or float16");
  check(k_in.scalar_type() == dtype && v_in.scalar_type() == dtype, "q, k and v must have one dtype");
  const int64_t B = q_in.size(0), H = q_in.size(1), Lq = q_in.size(2), d = q_in.size(3);
  const int64_t Hkv = k_in.size(1), Lk = k_in.size(2);
  check(k_in.size(0) == B && v_in.size(0) == B,
        "batch sizes differ: q " + shape(q_in) + ", k " + shape(k_in) + ", v " + shape(v_in));
  check(k_in.sizes() == v_in.sizes(), "k " + shape(k_in) + " and v " + shape(v_in) + " differ");
  check(k_in.size(3) == d, "head_dim of q (" + std::to_string(d) + ") and k (" + std::to_string(k_in.size(3)) +
                               ") differ");
  check(cuda_attention_takes_head_dim(d), "head_dim must be 64 or 128, got " + std::to_string(d));
  check(Hkv > 0 && H % Hkv == 0,
        "query heads (" + std::to_string(H) + ") must be a multiple of KV heads (" + std::to_string(Hkv) + ")");
  check(H <= 65535 && Lq <= kInt32Max && Lk <= kInt32Max, "too many heads or positions");
}

// Everything of the launch but the masks.
cuda_bsa::Params base_params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             BlockSparseAttentionResult& res, const BlockSparseAttentionOptions& options) {
  cuda_bsa::Params p{};
  const int64_t d = q.size(3);
  p.q = q.data_ptr(), p.k = k.data_ptr(), p.v = v.data_ptr(), p.o = res.out.data_ptr();
  p.lse = res.lse.defined() ? res.lse.data_ptr<float>() : nullptr;
  p.qs0 = q.stride(0), p.qs1 = q.stride(1), p.qs2 = q.stride(2);
  p.ks0 = k.stride(0), p.ks1 = k.stride(1), p.ks2 = k.stride(2);
  p.vs0 = v.stride(0), p.vs1 = v.stride(1), p.vs2 = v.stride(2);
  p.os0 = res.out.stride(0), p.os1 = res.out.stride(1), p.os2 = res.out.stride(2);
  p.B = static_cast<int32_t>(q.size(0)), p.H = static_cast<int32_t>(q.size(1)), p.Hkv = static_cast<int32_t>(k.size(1));
  p.g = static_cast<int32_t>(q.size(1) / k.size(1)), p.Lq = static_cast<int32_t>(q.size(2));
  p.Lk = static_cast<int32_t>(k.size(2));
  const double scale = options.scale != 0.0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d));
  p.scale_log2 = static_cast<float>(scale * kLog2e);
  return p;
}

BlockSparseAttentionResult make_result(const at::Tensor& q, const BlockSparseAttentionOptions& options) {
  BlockSparseAttentionResult res;
  // [B, H, Lq, D] over memory laid out [B, Lq, H, D]: a position's heads side by side, as the o
  // projection reads them (the model's transpose(1, 2) then reshape is a view, not a copy).
  res.out = at::empty({q.size(0), q.size(2), q.size(1), q.size(3)}, q.options()).transpose(1, 2);
  if (options.return_lse) res.lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(at::kFloat));
  return res;
}

// Picks the kernel and launches it for batch rows in chunks of kMaxRowsPerLaunch; set_masks(b0, nb)
// fills p's masks of each chunk.
void launch_all(cuda_bsa::Params& p, const at::Tensor& q_in, const BlockSparseAttentionOptions& options,
                const std::function<void(int64_t, int64_t)>& set_masks) {
  const int64_t B = p.B, H = p.H, Hkv = p.Hkv, Lq = p.Lq, Lk = p.Lk, d = q_in.size(3);
  // Variant: environment override (benchmarks), then options.q_tile, then by query length.
  // Default (measured on an H100, bench/attention_cuda/NOTES.md): 128-row tiles with 4 warps x 32
  // rows when there are enough of them to fill the GPU a few times over, else 64-row tiles.
  // On Hopper the tiles run through the software-pipelined wgmma kernel (variants 9 and 8: the same
  // bits as 2 and 0), 64-row tiles unless 128 are asked for (H200, bench_attention_cuda, one call,
  // L = 640 / 4096 / 16384: 17.2 / 132 / 1028 us with 64 rows, 17.2 / 140 / 1096 with 128; not
  // pipelined 16.9 / 135 / 1069 and 18.0 / 158 / 1244; mma.sync variant 2 19.3 / 174 / 1588, 0 25.5
  // / 195 / 1540).
  int variant = env_variant();
  if (variant < 0 && p.mtab == nullptr && cuda_bsa::wgmma_available()) {
    variant = options.q_tile > 64 ? 8 : 9;
  } else if (variant < 0) {
    if (options.q_tile > 0) {
      variant = options.q_tile <= 64 ? 2 : 0;
    } else {
      const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
      const int64_t tiles128 = (Lq + 127) / 128 * H * B;
      variant = tiles128 >= 8 * sms ? 0 : 2;
    }
  } else if (variant >= cuda_bsa::kFirstWgmmaVariant) {
    if (!cuda_bsa::wgmma_available())
      throw std::invalid_argument("FLEXGEN_CUDA_BSA_VARIANT=" + std::to_string(variant) +
                                  " (wgmma) needs a GPU of compute capability 9.0");
    if (p.mtab != nullptr)
      throw std::invalid_argument("FLEXGEN_CUDA_BSA_VARIANT=" + std::to_string(variant) +
                                  " (wgmma) does not run decode steps from a device mask table");
  }
  const cuda_bsa::DType dt =
      q_in.scalar_type() == at::kBFloat16 ? cuda_bsa::DType::BF16 : cuda_bsa::DType::FP16;
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  // Decode steps (one query row): split-K kernel over the listed key blocks, all query heads of a
  // KV head together. Not when a variant is forced (benchmarks / tests of the tiled kernel).
  // Short caches of one sequence stay on the tiled kernel (measured faster below ~1-2k keys on an
  // H100); several rows (batched decode) always take the decode kernel, which reads each row's
  // K/V once for all query heads of a KV head instead of once per query head.
  // Batch-invariant: every decode step takes the decode kernel with a fixed split count (each row's
  // listed key blocks are cut into that many ranges), so a row's arithmetic depends on its own mask
  // alone, not on the batch, the cache length or the shard.
  const bool decode = Lq == 1 && (options.batch_invariant || Lk >= 1024 || B >= 4) &&
                      H / Hkv <= cuda_bsa::decode_max_group() && env_variant() < 0;
  at::Tensor ws;
  int splits = 1;
  if (decode) {
    const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const int64_t per_split = Hkv * std::min<int64_t>(B, cuda_bsa::kMaxRowsPerLaunch);
    splits = options.batch_invariant ? 16
                                     : static_cast<int>(std::clamp<int64_t>((2 * sms + per_split - 1) / per_split, 1, 64));
    ws = at::empty({B * H * splits * (d + 2)}, q_in.options().dtype(at::kFloat));
  }
  // Masks from the device table (decode steps): every row in one launch; else as many as the
  // parameters hold.
  const int64_t per = p.mtab != nullptr ? B : cuda_bsa::kMaxRowsPerLaunch;
  for (int64_t b0 = 0; b0 < B; b0 += per) {
    const int64_t nb = std::min(per, B - b0);
    p.b0 = static_cast<int32_t>(b0);
    set_masks(b0, nb);
    const int err = decode ? cuda_bsa::launch_decode(p, dt, static_cast<int>(d), static_cast<int>(nb), splits,
                                                     ws.data_ptr<float>(), cuda_pdl_enabled(), decode_cluster_merge(), stream)
                           : cuda_bsa::launch(p, dt, static_cast<int>(d), variant, static_cast<int>(nb), stream);
    if (err != 0)
      throw std::runtime_error(std::string("block_sparse_attention_cuda: launch failed: ") +
                               cudaGetErrorString(static_cast<cudaError_t>(err)));
  }
}

}  // namespace

DeviceBlockMask upload_block_mask(const BlockMask& bm, const AttentionMask& mask, const at::Device& device) {
  if (!device.is_cuda()) throw std::invalid_argument("upload_block_mask: device must be a CUDA device");
  if (bm.block_size <= 0 || static_cast<int64_t>(bm.full_offsets.size()) != bm.num_q_blocks + 1 ||
      static_cast<int64_t>(bm.partial_offsets.size()) != bm.num_q_blocks + 1 ||
      bm.num_q_blocks * bm.block_size < bm.q_len)
    throw std::invalid_argument("upload_block_mask: malformed block mask");
  if (mask.length() < std::max(bm.q_len, bm.kv_len))
    throw std::invalid_argument("upload_block_mask: attention mask has " + std::to_string(mask.length()) +
                                " positions, block mask covers " + std::to_string(std::max(bm.q_len, bm.kv_len)));
  const int64_t G = mask.spec.num_groups;
  if (static_cast<int64_t>(mask.spec.visible.size()) != G * G)
    throw std::invalid_argument("upload_block_mask: mask spec visibility matrix has the wrong size");
  if (mask.length() + bm.block_size > kInt32Max || bm.num_kv_blocks * bm.block_size > kInt32Max ||
      G * G > kInt32Max)
    throw std::invalid_argument("upload_block_mask: positions must fit in int32");

  DeviceBlockMask d;
  d.q_len = bm.q_len, d.kv_len = bm.kv_len, d.block_size = bm.block_size;
  d.num_q_blocks = bm.num_q_blocks, d.num_kv_blocks = bm.num_kv_blocks;
  d.length = mask.length(), d.num_groups = G, d.causal = mask.spec.causal;
  int64_t n = 0;
  auto place = [&n](int64_t count) {
    const int64_t at = n;
    n += (count + 3) / 4 * 4;  // 16-byte aligned segments
    return at;
  };
  d.full_offsets = place(static_cast<int64_t>(bm.full_offsets.size()));
  d.full_indices = place(static_cast<int64_t>(bm.full_indices.size()));
  d.partial_offsets = place(static_cast<int64_t>(bm.partial_offsets.size()));
  d.partial_indices = place(static_cast<int64_t>(bm.partial_indices.size()));
  d.partial_cols = place(2 * static_cast<int64_t>(bm.partial_indices.size()));
  d.group_ids = place(mask.length());
  d.visible = place(G * G);
  n = std::max<int64_t>(n, 4);

  at::Tensor host = at::empty({n}, at::TensorOptions().dtype(at::kInt).pinned_memory(true));
  int32_t* h = host.data_ptr<int32_t>();
  auto put = [h](int64_t at, const std::vector<int32_t>& v) {
    if (!v.empty()) std::memcpy(h + at, v.data(), v.size() * sizeof(int32_t));
  };
  put(d.full_offsets, bm.full_offsets);
  put(d.full_indices, bm.full_indices);
  put(d.partial_offsets, bm.partial_offsets);
  put(d.partial_indices, bm.partial_indices);
  put(d.group_ids, mask.group_ids);
  for (int64_t i = 0; i < G * G; ++i) h[d.visible + i] = mask.spec.visible[i] ? 1 : 0;
  partial_columns(bm, mask, h + d.partial_cols);
  d.data = host.to(device, /*non_blocking=*/true);
  d.host = host;
  return d;
}

BlockSparseAttentionResult block_sparse_attention_cuda(const at::Tensor& q_in, const at::Tensor& k_in,
                                                       const at::Tensor& v_in,
                                                       const std::vector<DeviceMaskRef>& masks,
                                                       const BlockSparseAttentionOptions& options) {
  check_qkv(q_in, k_in, v_in);
  const int64_t B = q_in.size(0), H = q_in.size(1), Lq = q_in.size(2), Lk = k_in.size(2);
  check(masks.size() == 1 || static_cast<int64_t>(masks.size()) == B,
        "need 1 mask or one per batch row (" + std::to_string(B) + "), got " + std::to_string(masks.size()));
  check(options.scale >= 0.0, "scale must be positive (0 = 1/sqrt(head_dim))");

  c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = usable(q_in), k = usable(k_in), v = usable(v_in);
  BlockSparseAttentionResult res = make_result(q_in, options);
  if (B == 0 || H == 0 || Lq == 0) return res;
  cuda_bsa::Params p = base_params(q, k, v, res, options);

  auto desc = [&](int64_t b) {
    return describe(masks.size() == 1 ? masks[0] : masks[b], b, Lq, Lk, q_in.device());
  };
  launch_all(p, q_in, options, [&](int64_t b0, int64_t nb) {
    if (masks.size() == 1) {
      p.nmasks = 1;
      p.masks[0] = desc(0);
    } else {
      p.nmasks = static_cast<int32_t>(nb);
      for (int64_t r = 0; r < nb; ++r) p.masks[r] = desc(b0 + r);
    }
  });
  return res;
}

DeviceMaskTable make_device_mask_table(int64_t rows, int64_t block_size, const at::Device& device,
                                       int64_t shared_rows) {
  if (!device.is_cuda()) throw std::invalid_argument("make_device_mask_table: device must be a CUDA device");
  if (rows < 1 || block_size < 1 || shared_rows < 0)
    throw std::invalid_argument("make_device_mask_table: rows and block size must be >= 1, shared rows >= 0");
  c10::cuda::CUDAGuard guard(device);  // the event below belongs to the table's device
  DeviceMaskTable t;
  const int64_t bytes = rows * static_cast<int64_t>(sizeof(cuda_bsa::MaskDesc));
  t.staging = at::zeros({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  t.device = at::zeros({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
  const int64_t plan_bytes = rows * static_cast<int64_t>(sizeof(cuda_bsa::DecodePlan));
  t.plan_staging = at::zeros({plan_bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  t.plan_device = at::zeros({plan_bytes}, at::TensorOptions().dtype(at::kByte).device(device));
  t.counters = at::zeros({rows * cuda_bsa::kDecodeCountedKvHeads}, at::TensorOptions().dtype(at::kInt).device(device));
  t.rows = rows;
  t.block_size = block_size;
  t.shared_rows = shared_rows;
  cudaEvent_t ev = nullptr;
  if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess)
    throw std::runtime_error("make_device_mask_table: cudaEventCreate failed");
  t.copy_done = std::shared_ptr<void>(ev, [](void* e) { cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
  return t;
}

DeviceMaskTable device_mask_table_rows(const DeviceMaskTable& table, int64_t rows) {
  if (!table.device.defined() || rows < 1 || rows > table.rows)
    throw std::invalid_argument("device_mask_table_rows: " + std::to_string(rows) + " rows of a table of " +
                                std::to_string(table.rows));
  const int64_t bytes = rows * static_cast<int64_t>(sizeof(cuda_bsa::MaskDesc));
  DeviceMaskTable t = table;
  t.device = table.device.narrow(0, 0, bytes);
  t.staging = table.staging.narrow(0, 0, bytes);
  const int64_t plan_bytes = rows * static_cast<int64_t>(sizeof(cuda_bsa::DecodePlan));
  t.plan_device = table.plan_device.narrow(0, 0, plan_bytes);
  t.plan_staging = table.plan_staging.narrow(0, 0, plan_bytes);
  t.shared_rows = table.rows + table.shared_rows - rows;
  t.rows = rows;
  return t;
}

void update_device_mask_table(DeviceMaskTable& t, const std::vector<DeviceMaskRef>& refs) {
  if (!t.device.defined()) throw std::invalid_argument("update_device_mask_table: empty table");
  if (static_cast<int64_t>(refs.size()) != t.rows)
    throw std::invalid_argument("update_device_mask_table: " + std::to_string(refs.size()) + " masks for a table of " +
                                std::to_string(t.rows) + " rows");
  c10::cuda::CUDAGuard guard(t.device.device());
  auto ev = static_cast<cudaEvent_t>(t.copy_done.get());
  // The previous upload must have left the staging buffer before it is rewritten.
  if (cudaEventSynchronize(ev) != cudaSuccess) throw std::runtime_error("update_device_mask_table: event wait failed");
  auto* h = reinterpret_cast<cuda_bsa::MaskDesc*>(t.staging.data_ptr());
  auto* plans = reinterpret_cast<cuda_bsa::DecodePlan*>(t.plan_staging.data_ptr());
  const bool plan = decode_plans();
  for (size_t b = 0; b < refs.size(); ++b) {
    if (refs[b].mask != nullptr && refs[b].mask->block_size != t.block_size)
      check(false, "batch row " + std::to_string(b) + ": block size " + std::to_string(refs[b].mask->block_size) +
                       " differs from the table's " + std::to_string(t.block_size));
    if (refs[b].k_offset != 0) check(false, "batch row " + std::to_string(b) + ": table masks need k_offset 0");
    if (refs[b].shared_len > 0 && (refs[b].shared_row < 0 || refs[b].shared_row >= t.rows + t.shared_rows))
      check(false, "batch row " + std::to_string(b) + ": shared row " + std::to_string(refs[b].shared_row) +
                       " outside the table's " + std::to_string(t.rows + t.shared_rows) + " rows");
    h[b] = describe(refs[b], static_cast<int64_t>(b), 1, 0, t.device.device());
    if (plan) {
      plans[b] = plan_of(refs[b]);
    } else {
      plans[b] = cuda_bsa::DecodePlan{};
      plans[b].n = -1;
    }
  }
  cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  cudaError_t e = cudaMemcpyAsync(t.device.data_ptr(), t.staging.data_ptr(), static_cast<size_t>(t.staging.numel()),
                                  cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(t.plan_device.data_ptr(), t.plan_staging.data_ptr(),
                        static_cast<size_t>(t.plan_staging.numel()), cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess) e = cudaEventRecord(ev, stream);
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("update_device_mask_table: ") + cudaGetErrorString(e));
}

BlockSparseAttentionResult block_sparse_attention_cuda_table(const at::Tensor& q_in, const at::Tensor& k_in,
                                                       const at::Tensor& v_in, const DeviceMaskTable& table,
                                                       const BlockSparseAttentionOptions& options) {
  check_qkv(q_in, k_in, v_in);
  check(table.device.defined() && table.device.device() == q_in.device(), "the mask table must be on q's device");
  check(q_in.size(2) == 1, "a mask table serves one query row per batch row, got " + shape(q_in));
  check(q_in.size(0) == table.rows,
        "batch " + std::to_string(q_in.size(0)) + " but the mask table has " + std::to_string(table.rows) + " rows");
  check(options.scale >= 0.0, "scale must be positive (0 = 1/sqrt(head_dim))");
  c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = usable(q_in), k = usable(k_in), v = usable(v_in);
  if (table.shared_rows > 0) {
    // Descriptors may name rows past k's and v's: they must be in their memory, at their strides.
    auto holds = [&](const at::Tensor& t, const at::Tensor& in) {
      const int64_t last = t.storage_offset() + (table.rows + table.shared_rows) * t.stride(0);
      return t.is_same(in) && last * static_cast<int64_t>(t.element_size()) <= static_cast<int64_t>(t.storage().nbytes());
    };
    check(holds(k, k_in) && holds(v, v_in), "k and v must lie in memory that holds the mask table's " +
                                                std::to_string(table.rows + table.shared_rows) + " rows");
  }
  BlockSparseAttentionResult res = make_result(q_in, options);
  if (q.size(0) == 0 || q.size(1) == 0) return res;
  cuda_bsa::Params p = base_params(q, k, v, res, options);
  p.mtab = reinterpret_cast<const cuda_bsa::MaskDesc*>(table.device.data_ptr());
  p.plan = reinterpret_cast<const cuda_bsa::DecodePlan*>(table.plan_device.data_ptr());
  // The last split of a (row, KV head) merges its partials, for up to kDecodeCountedKvHeads KV heads
  // (more: the combine kernel merges; the same bits).
  if (decode_last_split_merge() && table.counters.defined() && p.Hkv <= cuda_bsa::kDecodeCountedKvHeads)
    p.counters = table.counters.data_ptr<int32_t>();
  p.table_block_size = static_cast<int32_t>(table.block_size);
  launch_all(p, q_in, options, [](int64_t, int64_t) {});
  return res;
}

bool cuda_block_sparse_attention_available() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  if (!ok) (void)cudaGetLastError();  // clear the error state
  return ok;
}

std::string block_sparse_attention_cuda_backend() {
  return "cuda mma.sync m16n8k16 (bf16/fp16, fp32 accumulate), FA2-style, 2-stage cp.async, sm_90a; "
         "split-K decode kernel for Lq = 1";
}

bool shared_prefix_reads() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_SHARED_PREFIX", {"0", "1"}) != "0";
  return on;
}

bool decode_plans() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_DECODE_PLAN", {"0", "1"}) != "0";
  return on;
}

void read_attention_switches() {
  decode_cluster_merge();
  decode_last_split_merge();
  env_variant();
  shared_prefix_reads();
  decode_plans();
}

}  // namespace flexgen
