// The decode linear that gives every row its prefill bits (contract: decode_linear_params.h).
//
// The arithmetic is prefill_linear's (prefill_linear_kernel.cu): the rows are the MMA's A operand
// (m16 tiles), the weights its B operand (n8 tiles), both loaded by ldmatrix from 64-element
// stages of K in the same swizzled layout, and one fp32 accumulator per output takes the k16
// steps of K in increasing order through mma.sync m16n8k16; rounded once. An MMA's output element
// depends on its own row of A and column of B only, so a row's bits are the same here, alone or
// among any rows, and in a prefill pass of either kernel there (the tests compare them bitwise).
//
// What differs is the shape, made for few rows: a warp owns 8 CN output columns and streams their
// weights (and its rows' x) through its own ring of ST shared-memory stages by cp.async, so the
// loads in flight hold no registers and a warp keeps many of them; W warps a CTA share nothing
// but the launch. With at most 8 rows a stage holds 8 x rows and the A fragment's rows 8..15 are
// zeros (ldmatrix of rows 0..7 only). No K split: one warp walks all of K for its columns, in the
// order above. Launches of more rows take row groups side by side in the grid (the CTAs of one
// column tile together, so its weights come from memory once and from L2 for the other groups),
// or prefill_linear itself (the same bits) where that is faster.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "cp_async.cuh"
#include "decode_linear_params.h"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "ldmatrix.cuh"
#include "linear_epilogue.cuh"
#include "pdl.cuh"
#include "prefill_linear_params.h"

namespace flexgen {
namespace cuda_fused {

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::ldmatrix_x2;
using cuda_async::ldmatrix_x4;
using cuda_async::smem_u32;
using cuda_epilogue::pair_epilogue;
using cuda_epilogue::weight_row;
using cuda_half::Mma;
using Kind = MmaEpilogue::Kind;

// A stage row: 64 elements of K (128 bytes), 16-byte units XOR-swizzled by row & 7, as
// prefill_linear's stages (ldmatrix reads 8 rows of one unit without bank conflicts).
__device__ __forceinline__ uint32_t unit_offset(int r, int u) {
  return static_cast<uint32_t>(r * 128 + ((u ^ (r & 7)) << 4));
}

// XR: x rows a stage and rows a row group (8, or 16 MT); CN: n8 column tiles a warp (even: pairs
// of tiles are the 16-column tiles of the pair epilogues); W warps a CTA; ST stages a warp.
template <int MT, int XR, int CN, int W, int ST>
struct Shape {
  static_assert(CN % 2 == 0 && (XR == 8 ? MT == 1 : XR == 16 * MT), "decode linear shape");
  static constexpr int kWRows = 8 * CN;
  static constexpr int kStageBytes = (kWRows + XR) * 128;
  static constexpr int kSmemBytes = W * ST * kStageBytes;
};

template <typename T, int MT, int XR, int CN, int W, int ST>
__global__ void __launch_bounds__(W * 32) decode_linear_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                               T* __restrict__ y, int rows, int N, int K,
                                                               bool read_once, const __grid_constant__ MmaEpilogue ep,
                                                               bool early) {
  using S = Shape<MT, XR, CN, W, ST>;
  constexpr int kStage = S::kStageBytes, kWRows = S::kWRows;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // CTA b: column tile b / R, row group b % R (rows XR g .. XR g + XR - 1 of the call).
  const int row_groups = (rows + XR - 1) / XR;
  const int group = static_cast<int>(blockIdx.x) % row_groups;
  const int n0 = (static_cast<int>(blockIdx.x) / row_groups * W + warp) * kWRows;
  if (early) cuda_pdl::pdl_trigger();
  if (n0 >= N) return;  // warps share nothing: a warp without columns leaves
  const int row0 = group * XR;
  x += static_cast<int64_t>(row0) * K;
  if (ep.kind == Kind::Plain) y += static_cast<int64_t>(row0) * N;
  rows = min(rows - row0, XR);
  const int ktiles = (K + 63) / 64;
  const uint32_t ring = smem_u32(smem) + warp * ST * kStage;

  uint64_t policy;
  if (read_once)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  // Lane l copies weight units q = l + 32 i of a stage: tile column q / 8 (columns past N read
  // column N - 1, whose results are not written), 16-byte unit q % 8.
  const T* src[kWRows / 4];
#pragma unroll
  for (int i = 0; i < kWRows / 4; ++i) {
    const int q = lane + 32 * i;
    src[i] = w + static_cast<int64_t>(weight_row(ep, min(n0 + (q >> 3), N - 1), N)) * K + 8 * (q & 7);
  }
  auto load_w = [&](int kt) {
    const int k0 = 64 * kt;
    const uint32_t dst = ring + (kt % ST) * kStage;
#pragma unroll
    for (int i = 0; i < kWRows / 4; ++i) {
      const int q = lane + 32 * i;
      cp_async16(dst + unit_offset(q >> 3, q & 7), src[i] + k0, k0 + 8 * (q & 7) < K, policy);
    }
  };
  // x: units q = lane + 32 u, row q / 8, unit q % 8; rows past `rows` and elements past K are zeros.
  auto load_x = [&](int kt) {
    const int k0 = 64 * kt;
    const uint32_t dst = ring + (kt % ST) * kStage + kWRows * 128;
#pragma unroll
    for (int u = 0; u < XR / 4; ++u) {
      const int q = lane + 32 * u, r = q >> 3, e = k0 + 8 * (q & 7);
      cp_async16(dst + unit_offset(r, q & 7), x + static_cast<int64_t>(r < rows ? r : 0) * K + e, r < rows && e < K);
    }
  };
  // The weights do not depend on the previous kernel: the first stages are in flight before
  // waiting for it. Group s holds stage s's x (and group 0 the first stages' weights).
#pragma unroll
  for (int s = 0; s < ST - 1; ++s)
    if (s < ktiles) load_w(s);
  cuda_pdl::pdl_wait();
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < ktiles) load_x(s);
    cp_async_commit();
  }

  const int mts = (rows + 15) / 16;  // m16 tiles holding a row of the call: the others are skipped
  float acc[MT][CN][4];
#pragma unroll
  for (int a = 0; a < MT; ++a)
#pragma unroll
    for (int b = 0; b < CN; ++b)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[a][b][e] = 0.f;

  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<ST - 2>();
    __syncwarp();  // every lane's copies of stage kt are visible; the slot loaded next is free
    if (kt + ST - 1 < ktiles) {
      load_w(kt + ST - 1);
      load_x(kt + ST - 1);
    }
    cp_async_commit();
    const uint32_t sw = ring + (kt % ST) * kStage, sx = sw + kWRows * 128;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      // A: prefill_linear's fragments (matrices: rows 0-7 / 8-15 x k 0-7 / 8-15 of the step).
      uint32_t a[MT][4];
      if constexpr (XR == 8) {
        uint32_t h[2];
        ldmatrix_x2(h, sx + unit_offset(lane & 7, 2 * kk + ((lane >> 3) & 1)));
        a[0][0] = h[0], a[0][1] = 0u, a[0][2] = h[1], a[0][3] = 0u;
      } else {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          if (mt >= mts) break;
          ldmatrix_x4(a[mt], sx + unit_offset(mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, 2 * kk + (lane >> 4)));
        }
      }
      uint32_t b[CN / 2][4];
#pragma unroll
      for (int nn = 0; nn < CN / 2; ++nn)
        ldmatrix_x4(b[nn], sw + unit_offset(nn * 16 + (lane & 7) + (lane >> 4) * 8, 2 * kk + ((lane >> 3) & 1)));
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if (mt >= mts) break;
#pragma unroll
        for (int nt = 0; nt < CN; ++nt)
          Mma<T>::run(acc[mt][nt], a[mt], b[nt >> 1][2 * (nt & 1)], b[nt >> 1][2 * (nt & 1) + 1]);
      }
    }
  }
  cp_async_wait<0>();
  if (!early) cuda_pdl::pdl_trigger();

  // Accumulator (mt, nt, e): row 16 mt + g + 8 (e >> 1), column n0 + 8 nt + 2 t + (e & 1).
  if (ep.kind != Kind::Plain) {  // tiles 2p and 2p + 1: 8 outputs and their partners
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = 16 * mt + g + 8 * h;
        if (r >= rows) continue;
#pragma unroll
        for (int p = 0; p < CN / 2; ++p)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int na = n0 + 16 * p + 2 * t + e;
            if (na < N) pair_epilogue<T>(ep, y, row0 + r, na, N, acc[mt][2 * p][2 * h + e], acc[mt][2 * p + 1][2 * h + e]);
          }
      }
    return;
  }
  using T2 = typename cuda_half::Pair<T>::type;
  const bool pairs = (N & 1) == 0;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 16 * mt + g + 8 * h;
      if (r >= rows) continue;
      T* yr = y + static_cast<int64_t>(r) * N;
#pragma unroll
      for (int nt = 0; nt < CN; ++nt) {
        const int c = n0 + 8 * nt + 2 * t;
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

template <typename T, int MT, int XR, int CN, int W, int ST>
int launch_shape(const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
                 bool pdl, cudaStream_t st) {
  using S = Shape<MT, XR, CN, W, ST>;
  constexpr auto kernel = decode_linear_kernel<T, MT, XR, CN, W, ST>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(S::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  const int64_t row_groups = (rows + XR - 1) / XR;
  const int64_t warps = (N + S::kWRows - 1) / S::kWRows;
  const dim3 grid(static_cast<unsigned>(row_groups * ((warps + W - 1) / W))), block(W * 32);
  // With several row groups the other groups read the weights from L2 just after the first.
  return static_cast<int>(cuda_pdl::launch(kernel, grid, block, S::kSmemBytes, st, pdl, x, w, y, rows, N, K,
                                           read_once && row_groups == 1, ep, cuda_pdl::trigger_early(pdl, rows)));
}

// The launch shapes by rows: band 0 up to 8 rows, 1 up to 16, 2 up to 32, 3 more (row groups of
// 64; its last shape is prefill_linear, for plain launches). Names as "MT x XR / CN / W / ST".
struct ShapeInfo {
  const char* name;
};
constexpr ShapeInfo kBand0[] = {{"x8 cn2 w1 st8"}, {"x8 cn2 w1 st16"}, {"x8 cn2 w2 st8"}, {"x8 cn2 w2 st12"}, {"x8 cn2 w4 st6"}};
constexpr ShapeInfo kBand1[] = {{"x16 cn2 w2 st8"}, {"x16 cn4 w2 st6"}, {"x16 cn4 w4 st4"}};
constexpr ShapeInfo kBand2[] = {{"x32 cn4 w2 st4"}, {"x32 cn4 w4 st3"}, {"x32 cn2 w4 st4"}};
constexpr ShapeInfo kBand3[] = {{"x64 cn4 w2 st3"}, {"x64 cn4 w4 st2"}, {"x64 cn2 w4 st3"}, {"prefill_linear"}};
constexpr int kBandSize[] = {5, 3, 3, 4};

int band_of(int64_t rows) { return rows <= 8 ? 0 : rows <= 16 ? 1 : rows <= 32 ? 2 : 3; }

// The shape decode_linear picks (speed only).
int default_shape(int64_t rows, int N, const MmaEpilogue& ep) {
  switch (band_of(rows)) {
    case 0: return (N + 15) / 16 >= 1024 ? 2 : 1;
    case 1: return 1;
    case 2: return 0;
    default: return rows > 64 && ep.kind == Kind::Plain ? 3 : 0;
  }
}

template <typename T>
int launch_t(int c, const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
             bool pdl, cudaStream_t st) {
  const int band = band_of(rows);
  if (c < 0) c = default_shape(rows, N, ep);
  if (c >= kBandSize[band]) return static_cast<int>(cudaErrorInvalidValue);
  switch (band * 8 + c) {
    case 0: return launch_shape<T, 1, 8, 2, 1, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 1: return launch_shape<T, 1, 8, 2, 1, 16>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 2: return launch_shape<T, 1, 8, 2, 2, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 3: return launch_shape<T, 1, 8, 2, 2, 12>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 4: return launch_shape<T, 1, 8, 2, 4, 6>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 8: return launch_shape<T, 1, 16, 2, 2, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 9: return launch_shape<T, 1, 16, 4, 2, 6>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 10: return launch_shape<T, 1, 16, 4, 4, 4>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 16: return launch_shape<T, 2, 32, 4, 2, 4>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 17: return launch_shape<T, 2, 32, 4, 4, 3>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 18: return launch_shape<T, 2, 32, 2, 4, 4>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 24: return launch_shape<T, 4, 64, 4, 2, 3>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 25: return launch_shape<T, 4, 64, 4, 4, 2>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 26: return launch_shape<T, 4, 64, 2, 4, 3>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 27:
      if (ep.kind != Kind::Plain) return static_cast<int>(cudaErrorInvalidValue);
      return prefill_linear(std::is_same_v<T, __half> ? DType::FP16 : DType::BF16, x, w, y, rows, N, K, st, pdl);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace

int decode_linear_shapes(int64_t rows) { return rows <= 0 ? 0 : kBandSize[band_of(rows)]; }

const char* decode_linear_shape_name(int64_t rows, int c) {
  const int band = band_of(rows);
  if (rows <= 0 || c < 0 || c >= kBandSize[band]) return "";
  const ShapeInfo* names[] = {kBand0, kBand1, kBand2, kBand3};
  return names[band][c].name;
}

int decode_linear_with_shape(int c, DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K,
                             bool read_once, const MmaEpilogue& ep, void* stream, bool pdl) {
  if (rows < 0 || rows > (int64_t{1} << 30) || N <= 0 || K <= 0 || K % 8 != 0)
    return static_cast<int>(cudaErrorInvalidValue);
  // Pair epilogues need whole 16-column tiles of pairs.
  if ((ep.kind == Kind::SiluMul && N % 16 != 0) ||
      (ep.kind == Kind::RopeCache && (ep.D <= 0 || ep.D % 16 != 0 || ep.H <= 0 || ep.Hkv <= 0 ||
                                      N != (ep.H + 2 * ep.Hkv) * ep.D)))
    return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  const auto st = static_cast<cudaStream_t>(stream);
  const int r = static_cast<int>(rows);
  return t == DType::BF16
             ? launch_t(c, static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                        static_cast<__nv_bfloat16*>(y), r, N, K, read_once, ep, pdl, st)
             : launch_t(c, static_cast<const __half*>(x), static_cast<const __half*>(w), static_cast<__half*>(y), r, N,
                        K, read_once, ep, pdl, st);
}

int decode_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, bool read_once,
                  const MmaEpilogue& ep, void* stream, bool pdl) {
  return decode_linear_with_shape(-1, t, x, w, y, rows, N, K, read_once, ep, stream, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen
