// Row-invariant tiled tensor-core linear y = x . w^T (contract: prefill_linear_params.h), the
// projections of batch-invariant prefill passes (many rows: the tokens of several samples).
//
// A CTA computes a 128-row x 128-column tile of y with 8 warps (4 x 2, 32 x 64 each), or, for
// short passes, a 64 x 64 tile with 4 warps (2 x 2, 32 x 32 each): x and w tiles of 64 elements of
// K go through three or four shared-memory stages by cp.async (rows of 128 bytes,
// 16-byte units XOR-swizzled by row & 7, so ldmatrix reads them without bank conflicts); each warp
// feeds ldmatrix fragments to mma.sync m16n8k16 (bf16/fp16 in, fp32 accumulate). CTAs of one
// column tile are launched together (x varies fastest) so each weight tile is read from memory
// about once while the x tiles stay in L2.
//
// Arithmetic of one output (row r, column n): one fp32 accumulator takes the k16 steps 0, 16, 32,
// ... of K in increasing order, each an MMA of x[r, k .. k+15] with w[n, k .. k+15] in the PTX
// fragment layout; elements past K are zeros; rounded once to T. An MMA's output element depends
// on its own row of A and column of B only, and nothing else (rows, tile shape, warps) changes the
// order, so each row gets the same bits in any pass, in either tile shape.
//
// On Hopper (compute capability 9.0) the launcher runs the wgmma kernel below instead (passes of
// fewer than 256 rows) or the warp-specialized TMA kernel (prefill_linear_tma_kernel.cu, 256+
// rows), with the same contract; elsewhere (sm_80+ through the PTX) this one.
#include <cuda_runtime.h>

#include <cstdint>

#include "cp_async.cuh"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "ldmatrix.cuh"
#include "pdl.cuh"
#include "prefill_linear_params.h"
#include "prefill_linear_tma.h"
#include "tile_stages.cuh"
#include "wgmma.cuh"
#include "wgmma_tile.cuh"

namespace flexgen {
namespace cuda_fused {

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::ldmatrix_x4;
using cuda_async::smem_u32;
using cuda_half::Mma;

using tile_stages::kBK;
using tile_stages::kRowBytes;
using tile_stages::TileLoader;
using tile_stages::unit_offset;
using tile_stages::WgTile;

// A tile configuration: BM x BN tile of y a CTA, warps of WM x WN, ST shared-memory stages,
// MINB CTAs an SM. It sets the speed, never the bits.
template <int BM_, int BN_, int WM_, int WN_, int ST_, int MINB_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, ST = ST_, MINB = MINB_;
  static constexpr int kWarpsM = BM / WM, kThreads = kWarpsM * (BN / WN) * 32;
  static constexpr int kMT = WM / 16, kNT = WN / 8;  // m16 and n8 MMA tiles a warp
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kSmemBytes = ST * kStageBytes;
  static constexpr int kXUnits = BM * 8 / kThreads, kWUnits = BN * 8 / kThreads;  // 16-byte copies a thread a stage
  static_assert(BM * 8 % kThreads == 0 && BN * 8 % kThreads == 0 && kNT % 2 == 0, "tile shape");
};
// Chosen on an H200 by a sweep over the Llama-3.2-3B matrices at 77-8192 rows (a 128 x 256 tile with
// 64 x 64 warps was as fast at 2464 rows, 5% faster at 8192, slower below).
using BigTile = Tile<128, 128, 32, 64, 3, 2>;   // 8 warps, 96 KB: passes of many tokens
using SmallTile = Tile<64, 64, 32, 32, 4, 3>;   // 4 warps, 64 KB: short passes (more CTAs)

template <typename T, typename C>
__global__ void __launch_bounds__(C::kThreads, C::MINB) prefill_linear_kernel(const T* __restrict__ x,
                                                                             const T* __restrict__ w,
                                                                             T* __restrict__ y, int rows, int N, int K) {
  constexpr int ST = C::ST, MT = C::kMT, NT = C::kNT;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int m0 = blockIdx.x * C::BM, n0 = blockIdx.y * C::BN;
  const int ktiles = (K + kBK - 1) / kBK;
  const uint32_t base = smem_u32(smem);

  const TileLoader<T, C> ld(x, w, rows, N, K, m0, n0, base);
  ld.prologue();

  const int wm = (warp % C::kWarpsM) * C::WM, wn = (warp / C::kWarpsM) * C::WN;
  float acc[MT][NT][4];
#pragma unroll
  for (int a = 0; a < MT; ++a)
#pragma unroll
    for (int b = 0; b < NT; ++b)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[a][b][e] = 0.f;

  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<ST - 2>();
    __syncthreads();  // stage kt is in; every warp is done with the slot the next load reuses
    ld.next(kt);
    const uint32_t sx = ld.slot(kt), sw = sx + C::BM * kRowBytes;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t a[MT][4], b[NT / 2][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r = wm + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(a[mt], sx + unit_offset(r, 2 * kk + (lane >> 4)));
      }
#pragma unroll
      for (int nn = 0; nn < NT / 2; ++nn) {
        const int r = wn + nn * 16 + (lane & 7) + (lane >> 4) * 8;
        ldmatrix_x4(b[nn], sw + unit_offset(r, 2 * kk + ((lane >> 3) & 1)));
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          Mma<T>::run(acc[mt][nt], a[mt], b[nt >> 1][2 * (nt & 1)], b[nt >> 1][2 * (nt & 1) + 1]);
    }
  }
  cp_async_wait<0>();
  cuda_pdl::pdl_trigger();

  // Accumulator (mt, nt, e): row wm + 16 mt + g + 8 (e >> 1), column wn + 8 nt + 2 t + (e & 1).
  using T2 = typename cuda_half::Pair<T>::type;
  const bool pairs = (N & 1) == 0;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = m0 + wm + 16 * mt + g + 8 * h;
      if (r >= rows) continue;
      T* yr = y + static_cast<int64_t>(r) * N;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = n0 + wn + 8 * nt + 2 * t;
        const float lo = acc[mt][nt][2 * h], hi = acc[mt][nt][2 * h + 1];
        if (pairs && c + 1 < N) {
          const uint32_t v = Mma<T>::pack(lo, hi);
          *reinterpret_cast<T2*>(yr + c) = *reinterpret_cast<const T2*>(&v);
        } else {
          if (c < N) yr[c] = cuda_half::to<T>(lo);
          if (c + 1 < N) yr[c + 1] = cuda_half::to<T>(hi);
        }
      }
    }
}

// Hopper: the same arithmetic contract through wgmma (warpgroup MMA m64n128k16 reading both
// operands from the shared-memory stages, whose swizzled layout is wgmma's 128-byte K-major one).
// A CTA: a warpgroup of 64 rows x 128 columns. One output is one fp32 accumulator over the k16
// steps of K in order, as in the mma.sync kernel. A Hopper GPU runs this kernel for passes of
// fewer than 256 rows and the TMA one above that (the row invariance test compares them bitwise;
// an H200 sweep over the 3B matrices at 1-8192 rows also found the mma.sync kernel's outputs
// identical, but nothing here relies on that).
using WgSmallTile = WgTile<1, 4, 2>;  // 64 x 128, 97 KB

template <typename T, typename C>
__global__ void __launch_bounds__(C::kThreads, C::MINB) prefill_linear_wgmma_kernel(const T* __restrict__ x,
                                                                                   const T* __restrict__ w,
                                                                                   T* __restrict__ y, int rows, int N,
                                                                                   int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;  // swizzle atoms are 1024-byte aligned
  const int m0 = blockIdx.x * C::BM, n0 = blockIdx.y * C::BN;
  const TileLoader<T, C> ld(x, w, rows, N, K, m0, n0, base);
  ld.prologue();

  float d[64];
  tile_stages::wgmma_tile_loop(ld, d);
  tile_stages::wgmma_tile_store<T>(d, y, rows, N, m0, n0);
#else
  __trap();
#endif
}

template <typename T, typename C, bool kWgmma = false>
int launch_tile(const T* x, const T* w, T* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  constexpr auto kernel = [] {
    if constexpr (kWgmma) return prefill_linear_wgmma_kernel<T, C>;
    else return prefill_linear_kernel<T, C>;
  }();
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(C::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  // Row tiles vary fastest: the CTAs of one column tile run together and share its weights in L2.
  const dim3 grid(static_cast<unsigned>((rows + C::BM - 1) / C::BM), static_cast<unsigned>((N + C::BN - 1) / C::BN));
  return static_cast<int>(cuda_pdl::launch(kernel, grid, dim3(C::kThreads), C::kSmemBytes, st, pdl, x, w, y, rows, N, K));
}

// Hopper: 64 x 128 wgmma tiles (256+ rows go to the TMA kernel). Elsewhere mma.sync, the big tiles
// for long passes, else the small ones (a short pass in big tiles leaves most SMs idle): big where
// they make at least two CTAs an SM on a 132-SM GPU. Every kernel and tile gives the same bits.
template <typename T>
int launch(const T* x, const T* w, T* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  if (tile_stages::hopper()) return launch_tile<T, WgSmallTile, true>(x, w, y, rows, N, K, pdl, st);
  const int64_t big_ctas = static_cast<int64_t>((rows + BigTile::BM - 1) / BigTile::BM) * ((N + BigTile::BN - 1) / BigTile::BN);
  return big_ctas >= 264 ? launch_tile<T, BigTile>(x, w, y, rows, N, K, pdl, st)
                         : launch_tile<T, SmallTile>(x, w, y, rows, N, K, pdl, st);
}

// Hopper, 256+ rows: the warp-specialized TMA kernel (H200, 3B matrices: 1.1-1.35x the kernels
// above from 2464 rows, 1.15-1.25x at 512).
bool tma_rows(int64_t rows) { return rows >= 256 && rows <= (int64_t{1} << 30) && tile_stages::hopper(); }

}  // namespace

int prefill_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, void* stream,
                   bool pdl) {
  // Grid x counts 128-row tiles (at most 2^31 - 1 of them).
  if (rows < 0 || rows > (int64_t{1} << 30) || N <= 0 || K <= 0 || K % 8 != 0)
    return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  const auto st = static_cast<cudaStream_t>(stream);
  const int r = static_cast<int>(rows);
  if (tma_rows(rows)) return prefill_linear_tma(t, x, w, y, r, N, K, stream, pdl);
  return t == DType::BF16 ? launch(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                                   static_cast<__nv_bfloat16*>(y), r, N, K, pdl, st)
                          : launch(static_cast<const __half*>(x), static_cast<const __half*>(w),
                                   static_cast<__half*>(y), r, N, K, pdl, st);
}

bool prefill_linear_silu_mul_fused(int64_t rows) { return tma_rows(rows); }

int prefill_linear_silu_mul(DType t, const void* x, const void* w, void* y, int64_t rows, int inter, int K,
                            void* stream, bool pdl) {
  if (!prefill_linear_silu_mul_fused(rows)) return static_cast<int>(cudaErrorNotSupported);
  return prefill_linear_silu_mul_tma(t, x, w, y, static_cast<int>(rows), inter, K, stream, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(prefill_linear)
