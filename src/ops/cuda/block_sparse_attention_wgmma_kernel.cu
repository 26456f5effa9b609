// Block-sparse prefill attention on Hopper (sm_90a): the mma.sync kernel's arithmetic
// (block_sparse_attention_kernel.cu) with S = Q K^T and O += P V on warpgroup MMAs. Contract:
// bsa_params.h (launch_wgmma).
//
// One CTA per (query tile, head, batch row), WG warpgroups of 64 query rows (BM = 64 WG), tiles
// aligned to the mask's query blocks and walked over the same chunks of BN = 64 keys as the
// mma.sync kernel (bsa_tile_math.cuh). Q, and K and V in two stages, sit in shared memory in
// wgmma's 128-byte-swizzled layout: panels of 64 head dims, rows of 128 bytes whose 16-byte units
// are XOR-swizzled by row & 7, copied by cp.async. Per chunk and warpgroup:
//   S = Q K^T: wgmma m64n64k16, A = Q and B = K both K-major in shared memory, D / 16 steps in
//     head-dim order onto zeroed fp32 accumulators (mma.sync's k16 order);
//   mask, online softmax and P exactly as the mma.sync kernel (the shared functions: the
//     accumulators are laid out as its m16n8 tiles);
//   O += P V: A = P from registers (mma.sync's A fragments), B = V MN-major in shared memory, the
//     chunk's 16-key steps in order: one m64n128k16 a step for head_dim 128 in the pipelined
//     kernels, else one m64n64k16 a step and panel.
// So a row's outputs are the same bits through either kernel and in any tile (tested bitwise).
// Variants (bsa_params.h): 6 / 7 two warpgroups or one a CTA, each chunk S, softmax and
// P V in turn; 8 / 9 the same, software-pipelined (chunk j's softmax while P_{j-1} V_{j-1} runs).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "bsa_launch.cuh"
#include "bsa_params.h"
#include "bsa_tile_math.cuh"
#include "cp_async.cuh"
#include "kernel_module.cuh"
#include "tile_stages.cuh"
#include "wgmma.cuh"

namespace flexgen {
namespace cuda_bsa {

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::smem_u32;
using cuda_fused::tile_stages::unit_offset;
using tile_math::Chunk;
using tile_math::ChunkCursor;

constexpr int kBN = 64;          // keys a chunk (the mma.sync kernel's BN: the same chunks)
constexpr int kPanelCols = 64;   // head dims a 128-byte panel row holds

template <int D, int WG>
struct WgCfg {
  static constexpr int BM = 64 * WG, kThreads = 128 * WG, KCH = D / 8, PAN = D / kPanelCols;
  static constexpr uint32_t kQBytes = BM * D * 2;    // Q: PAN panels of BM rows
  static constexpr uint32_t kKVBytes = kBN * D * 2;  // one stage of K (or V): PAN panels of kBN rows
  static constexpr int kSmem = static_cast<int>(kQBytes + 4 * kKVBytes) + 2 * kBN * 4 + 1024;  // + alignment
};

// Byte offset of 16-byte unit c (of D / 8) of row `row` in a tile of `rows` rows stored as panels.
__device__ __forceinline__ uint32_t panel_offset(int rows, int row, int c) {
  return static_cast<uint32_t>((c >> 3) * rows * 128) + unit_offset(row, c & 7);
}

template <typename T, int D, int WG, int MINB, bool PIPE>
__global__ void __launch_bounds__(WG * 128, MINB) bsa_wgmma_kernel(const __grid_constant__ Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using C = WgCfg<D, WG>;
  constexpr int BM = C::BM, KCH = C::KCH, NT = C::kThreads, PAN = C::PAN;
  static_assert(D % kPanelCols == 0, "head_dim must be a multiple of 64");

  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t sQ = (raw + 1023u) & ~1023u;  // wgmma's swizzle atoms: 1024-byte aligned
  const uint32_t sK = sQ + C::kQBytes, sV = sK + 2 * C::kKVBytes;
  int* sG = reinterpret_cast<int*>(smem_raw + (sV + 2 * C::kKVBytes - raw));  // 2 stages of key group ids

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = WG == 1 ? 0 : warp >> 2;
  const int h = blockIdx.y, bl = blockIdx.z, b = p.b0 + bl;
  const MaskDesc& M = tile_math::row_mask(p, bl);
  tile_math::QueryTile qt;
  if (!tile_math::query_tile<BM>(p, M, gridDim.x - 1 - blockIdx.x, qt)) return;
  const int kvh = h / p.g;

  const T* qbase = static_cast<const T*>(p.q) + b * p.qs0 + h * p.qs1 + qt.r0 * p.qs2;
  const T* kbase = static_cast<const T*>(p.k) + b * p.ks0 + kvh * p.ks1;
  const T* vbase = static_cast<const T*>(p.v) + b * p.vs0 + kvh * p.vs1;

  // Q tile -> shared (zero rows past the tile).
  for (int idx = tid; idx < BM * KCH; idx += NT) {
    const int row = idx / KCH, c = idx % KCH;
    const bool ok = row < qt.nrows;
    cp_async16(sQ + panel_offset(BM, row, c), ok ? qbase + row * p.qs2 + c * 8 : qbase, ok);
  }
  cp_async_commit();

  // K/V chunk loads: thread -> fixed 16-byte unit lc and rows ldrow + i * RPP (row & 7 fixed).
  constexpr int RPP = NT / KCH, PASSES = kBN / RPP;
  static_assert(NT % KCH == 0 && RPP % 8 == 0 && kBN % RPP == 0, "load mapping");
  const int ldrow = tid / KCH, lc = tid % KCH;
  const uint32_t thr_off = panel_offset(kBN, ldrow, lc);
  // This thread's first row of key 0 (relative to the window k_offset); a chunk adds its start
  // once and each pass RPP rows, so no pass multiplies 64-bit offsets.
  const int64_t ks2 = p.ks2, vs2 = p.vs2, kstep = RPP * ks2, vstep = RPP * vs2;
  const int kofs = M.k_offset;
  const T* kthr = kbase + lc * 8 + static_cast<int64_t>(ldrow - kofs) * ks2;
  const T* vthr = vbase + lc * 8 + static_cast<int64_t>(ldrow - kofs) * vs2;
  const bool small_groups = M.num_groups <= 32;
  // Rows ldrow + i RPP < count hold keys; the others are zero-filled (their source is not read).
  auto load_rows = [&](const T* src, const T* base, int64_t step, uint32_t dst, int count) {
    const int valid = count - ldrow;
#pragma unroll
    for (int i = 0; i < PASSES; ++i) {
      const bool ok = i * RPP < valid;
      cp_async16(dst + i * RPP * 128, ok ? src : base, ok);
      src += step;
    }
  };
  auto load_k = [&](const Chunk& ch, int stage) {  // K rows and, for a partial chunk, the keys' groups
    load_rows(kthr + static_cast<int64_t>(ch.start) * ks2, kbase, kstep, sK + stage * C::kKVBytes + thr_off, ch.count);
    if (ch.partial) {
      for (int t = tid; t < kBN; t += NT) {
        const int g = t < ch.count ? __ldg(M.gid + ch.start + t) : 0;
        sG[stage * kBN + t] = small_groups ? static_cast<int>(1u << g) : g;
      }
    }
  };
  auto load_v = [&](const Chunk& ch, int stage) {
    load_rows(vthr + static_cast<int64_t>(ch.start) * vs2, vbase, vstep, sV + stage * C::kKVBytes + thr_off, ch.count);
  };

  const int wrow0 = warp * 16;  // this warp's first row in the tile (its warpgroup's rows 16 (warp % 4) ..)
  const tile_math::RowMask rm = tile_math::row_mask_of(M, qt, wrow0, lane, small_groups);
  float o[D / 8][4];
  float mrow[2] = {tile_math::kNegInf, tile_math::kNegInf}, lrow[2] = {0.f, 0.f};
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  // wgmma descriptors: their low words built once (a k16 step or a stage adds to the start
  // address field: no carry out of it below 256 KB), the high word a constant. P V runs as one
  // m64n128k16 a 16-key step for head_dim 128 in the pipelined kernels (V's two 64-column panels
  // kBN rows apart), else one m64n64k16 a panel.
  constexpr int PVN = PIPE && D == 128 ? 128 : 64;
  const uint32_t qlo = cuda_wgmma::desc_lo_k(sQ + wg * 64 * 128);  // this warpgroup's 64 rows of Q
  // n64: one block of N, the leading byte offset unused (set to the 8-row stride as well).
  const uint32_t klo = cuda_wgmma::desc_lo_k(sK), vlo = cuda_wgmma::desc_lo_mn(sV, PVN == 128 ? kBN * 128 : 1024);
  constexpr uint32_t kStageUnits = C::kKVBytes >> 4;

  // S = Q K^T of the chunk in K stage `stage` (issued, not waited for).
  auto issue_s = [&](float (&s)[kBN / 8][4], int stage) {
    const uint32_t ks = klo + stage * kStageUnits;
#pragma unroll
    for (int j = 0; j < kBN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    cuda_wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t pan = (kk >> 2), col = 32 * (kk & 3);
      cuda_wgmma::WgmmaAttn<T>::ss_n64(s, cuda_wgmma::desc(qlo + ((pan * BM * 128 + col) >> 4)),
                                       cuda_wgmma::desc(ks + ((pan * kBN * 128 + col) >> 4)));
    }
    cuda_wgmma::commit();
  };
  // O += P V with P's fragments pa and the chunk in V stage `stage` (issued, not waited for).
  auto issue_pv = [&](const uint32_t (&pa)[kBN / 16][4], int stage) {
    const uint32_t vs = vlo + stage * kStageUnits;
    cuda_wgmma::fence();
#pragma unroll
    for (int kc = 0; kc < kBN / 16; ++kc) {
      if constexpr (PVN == 128) {
        cuda_wgmma::WgmmaAttn<T>::rs_n128_mn(o, pa[kc], cuda_wgmma::desc(vs + ((kc * 16 * 128) >> 4)));
      } else {
#pragma unroll
        for (int pn = 0; pn < PAN; ++pn)
          cuda_wgmma::WgmmaAttn<T>::rs_n64_mn(reinterpret_cast<float(&)[8][4]>(o[8 * pn]), pa[kc],
                                              cuda_wgmma::desc(vs + ((pn * kBN * 128 + kc * 16 * 128) >> 4)));
      }
    }
    cuda_wgmma::commit();
  };

  ChunkCursor cur{0, 0, 0, false};
  Chunk ch, nxt;
  bool have = tile_math::next_chunk<kBN>(cur, ch, M, qt.qb, qt.nf, qt.np, qt.klo, qt.khi, qt.qmax);
  int stage = 0;
  uint32_t pa[kBN / 16][4];
  if constexpr (!PIPE) {
    // Chunk j's K/V land while chunk j - 1 computes: S, wait, mask + softmax, P V, wait.
    if (have) load_k(ch, 0), load_v(ch, 0);
    cp_async_commit();
    while (have) {
      const bool have_next = tile_math::next_chunk<kBN>(cur, nxt, M, qt.qb, qt.nf, qt.np, qt.klo, qt.khi, qt.qmax);
      if (have_next) load_k(nxt, stage ^ 1), load_v(nxt, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
      cuda_wgmma::fence_proxy_async();  // this thread's cp.async writes -> wgmma's async proxy
      __syncthreads();
      // Compiled twice like the mma.sync kernel's iteration: full chunks without any mask code.
      auto body = [&](auto masked_tag) {
        float s[kBN / 8][4];
        issue_s(s, stage);
        cuda_wgmma::wait<0>();
        if constexpr (decltype(masked_tag)::value)
          tile_math::mask_chunk<kBN>(s, rm, ch, sG + stage * kBN, M.vis, small_groups, lane);
        tile_math::online_softmax<kBN, D>(s, o, mrow, lrow, p.scale_log2);
#pragma unroll
        for (int kc = 0; kc < kBN / 16; ++kc) tile_math::p_fragment<T, kBN>(s, kc, pa[kc]);
        issue_pv(pa, stage);
        cuda_wgmma::wait<0>();
      };
      if (ch.partial || ch.count < kBN)
        body(std::true_type{});
      else
        body(std::false_type{});
      __syncthreads();  // this stage is free for the load two chunks ahead
      stage ^= 1;
      ch = nxt;
      have = have_next;
    }
  } else {
    // Software pipeline: iteration j issues S_j and then P_{j-1} V_{j-1}, computes chunk j's softmax
    // while the P V runs, then waits, rescales O by alpha_j and packs P_j. O sees the same
    // operations in the same order (... += P_{j-1} V_{j-1}, *= alpha_j, += P_j V_j ...). K_{j+1} and
    // V_j land during iteration j (K stage j % 2 holds K_j, V stage j % 2 V_j).
    if (have) load_k(ch, 0);
    cp_async_commit();
    bool have_prev = false;
    while (have) {
      const bool have_next = tile_math::next_chunk<kBN>(cur, nxt, M, qt.qb, qt.nf, qt.np, qt.klo, qt.khi, qt.qmax);
      cp_async_wait<0>();  // K_j, V_{j-1}
      cuda_wgmma::fence_proxy_async();
      __syncthreads();  // and every warp is done with S_{j-1} and P_{j-2} V_{j-2}: their stages are free
      if (have_next) load_k(nxt, stage ^ 1);
      load_v(ch, stage);
      cp_async_commit();
      auto body = [&](auto masked_tag) {
        float s[kBN / 8][4];
        issue_s(s, stage);
        if (have_prev) issue_pv(pa, stage ^ 1);
        if (have_prev) cuda_wgmma::wait<1>(); else cuda_wgmma::wait<0>();
        if constexpr (decltype(masked_tag)::value)
          tile_math::mask_chunk<kBN>(s, rm, ch, sG + stage * kBN, M.vis, small_groups, lane);
        float alpha[2];
        tile_math::softmax_chunk<kBN>(s, mrow, lrow, p.scale_log2, alpha);
        cuda_wgmma::wait<0>();
        tile_math::rescale_o<D>(o, alpha);
#pragma unroll
        for (int kc = 0; kc < kBN / 16; ++kc) tile_math::p_fragment<T, kBN>(s, kc, pa[kc]);
      };
      if (ch.partial || ch.count < kBN)
        body(std::true_type{});
      else
        body(std::false_type{});
      have_prev = true;
      stage ^= 1;
      ch = nxt;
      have = have_next;
    }
    if (have_prev) {  // the last chunk's P V
      cp_async_wait<0>();
      cuda_wgmma::fence_proxy_async();
      __syncthreads();
      issue_pv(pa, stage ^ 1);
      cuda_wgmma::wait<0>();
    }
  }
  cp_async_wait<0>();

  // Normalise and write this thread's two rows (pairs of columns).
  T* obase = static_cast<T*>(p.o) + b * p.os0 + h * p.os1 + qt.r0 * p.os2;
#pragma unroll
  for (int e2 = 0; e2 < 2; ++e2) {
    const float l = tile_math::row_total(lrow[e2]);
    const int r = wrow0 + (lane >> 2) + e2 * 8;
    const bool any = l > 0.f && r < qt.nvalid;
    const float inv = any ? 1.f / l : 0.f;
    if (r >= qt.nrows) continue;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const uint32_t v = cuda_half::Mma<T>::pack(o[j][2 * e2] * inv, o[j][2 * e2 + 1] * inv);
      *reinterpret_cast<uint32_t*>(obase + r * p.os2 + j * 8 + (lane & 3) * 2) = v;
    }
    if (p.lse != nullptr && (lane & 3) == 0)
      p.lse[(static_cast<int64_t>(b) * p.H + h) * p.Lq + qt.r0 + r] = tile_math::row_lse(any, mrow[e2], l);
  }
#else
  __trap();
#endif
}

template <typename T, int D, int WG, int MINB, bool PIPE>
int launch_cfg(const Params& p, int nb, cudaStream_t stream) {
  using C = WgCfg<D, WG>;
  return launch_query_tiles<bsa_wgmma_kernel<T, D, WG, MINB, PIPE>>(p, nb, C::BM, C::kThreads, C::kSmem, stream);
}

template <typename T, int D>
int launch_dim(const Params& p, int variant, int nb, cudaStream_t stream) {
  switch (variant) {
    case 6:
      return launch_cfg<T, D, 2, 1, false>(p, nb, stream);
    case 7:
      return launch_cfg<T, D, 1, 2, false>(p, nb, stream);
    case 8:
      return launch_cfg<T, D, 2, 1, true>(p, nb, stream);
    default:
      return launch_cfg<T, D, 1, 2, true>(p, nb, stream);
  }
}

}  // namespace

bool wgmma_available() { return cuda_fused::tile_stages::hopper(); }

int launch_wgmma(const Params& p, DType dtype, int head_dim, int variant, int nb, void* stream) {
  if (p.mtab != nullptr || variant < kFirstWgmmaVariant || variant >= kNumVariants)
    return static_cast<int>(cudaErrorInvalidValue);
  if (!wgmma_available()) return static_cast<int>(cudaErrorNotSupported);
  return with_type_and_dim(dtype, head_dim, [&](auto t, auto d) {
    return launch_dim<typename decltype(t)::type, decltype(d)::value>(p, variant, nb, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace cuda_bsa
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(block_sparse_attention_wgmma)
