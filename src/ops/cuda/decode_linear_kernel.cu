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
using cuda_async::cp_async16_full;
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

// XR: x rows a stage and rows a row group (8 or 16); W warps a CTA; ST stages a warp. A warp
// owns 16 output columns (two n8 tiles: the 16-column tiles of the pair epilogues).
template <int XR, int W, int ST>
struct Shape {
  static_assert((XR == 8 || XR == 16) && ST >= 2, "decode linear shape");
  static constexpr int kStageBytes = (16 + XR) * 128;  // 16 weight rows, then XR x rows
  static constexpr int kSmemBytes = W * ST * kStageBytes;
};

// The loop is lean on purpose: with one accumulator chain over K a warp walks K / 16 steps alone
// (one warp a scheduler at one row), so its time is its own instruction stream. Every address a
// lane uses is computed once (copy sources advance by a stage, shared offsets are fixed per lane
// and slot); only the last stage, where elements past K may be, takes predicated copies.
template <typename T, int XR, int W, int ST>
__global__ void __launch_bounds__(W * 32, 1) decode_linear_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                               T* __restrict__ y, int rows, int N, int K,
                                                               bool read_once, const __grid_constant__ MmaEpilogue ep,
                                                               bool early) {
  using S = Shape<XR, W, ST>;
  constexpr int kStage = S::kStageBytes, kXU = XR / 4;  // x units a lane copies a stage
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // CTA b: column tile b / R, row group b % R (rows XR g .. XR g + XR - 1 of the call).
  const int row_groups = (rows + XR - 1) / XR;
  const int group = static_cast<int>(blockIdx.x) % row_groups;
  const int n0 = (static_cast<int>(blockIdx.x) / row_groups * W + warp) * 16;
  if (early) cuda_pdl::pdl_trigger();
  if (n0 >= N) return;  // warps share nothing: a warp without columns leaves
  const int row0 = group * XR;
  x += static_cast<int64_t>(row0) * K;
  if (ep.kind == Kind::Plain) y += static_cast<int64_t>(row0) * N;
  rows = min(rows - row0, XR);
  const int ktiles = (K + 63) / 64, kfull = K / 64;  // stages; stages with no element past K
  const uint32_t ring = smem_u32(smem) + warp * ST * kStage;

  uint64_t policy;
  if (read_once)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  // Lane l copies weight units q = l + 32 i (i < 4) of a stage: tile column q / 8 (columns past N
  // read column N - 1, whose results are not written), 16-byte unit q % 8; and x units q = l + 32 u
  // (u < XR / 4) of rows q / 8 < rows (the other x rows of every slot are zeroed once).
  const T* wsrc[4];
  uint32_t wdst[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int q = lane + 32 * i;
    wsrc[i] = w + static_cast<int64_t>(weight_row(ep, min(n0 + (q >> 3), N - 1), N)) * K + 8 * (q & 7);
    wdst[i] = unit_offset(q >> 3, q & 7);
  }
  const T* xsrc[kXU];
  uint32_t xdst[kXU];
  bool xok[kXU];
#pragma unroll
  for (int u = 0; u < kXU; ++u) {
    const int q = lane + 32 * u, r = q >> 3;
    xok[u] = r < rows;
    xsrc[u] = x + static_cast<int64_t>(xok[u] ? r : 0) * K + 8 * (q & 7);
    xdst[u] = 16 * 128 + unit_offset(r, q & 7);
    if (!xok[u])
#pragma unroll
      for (int s = 0; s < ST; ++s)
        asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(ring + s * kStage + xdst[u]), "r"(0u));
  }
  auto load_w = [&](int kt, uint32_t slot) {
    const int k0 = 64 * kt;
    if (kt < kfull) {
#pragma unroll
      for (int i = 0; i < 4; ++i) cp_async16_full(slot + wdst[i], wsrc[i] + k0, policy);
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int q = lane + 32 * i;
        cp_async16(slot + wdst[i], wsrc[i] + k0, k0 + 8 * (q & 7) < K, policy);
      }
    }
  };
  auto load_x = [&](int kt, uint32_t slot) {
    const int k0 = 64 * kt;
#pragma unroll
    for (int u = 0; u < kXU; ++u) {
      if (!xok[u]) continue;
      if (kt < kfull) cp_async16_full(slot + xdst[u], xsrc[u] + k0);
      else cp_async16(slot + xdst[u], xsrc[u] + k0, k0 + 8 * ((lane + 32 * u) & 7) < K);
    }
  };
  // The weights do not depend on the previous kernel: the first stages are in flight before
  // waiting for it. Group s holds stage s's x (and group 0 the first stages' weights).
#pragma unroll
  for (int s = 0; s < ST - 1; ++s)
    if (s < ktiles) load_w(s, ring + s * kStage);
  cuda_pdl::pdl_wait();
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < ktiles) load_x(s, ring + s * kStage);
    cp_async_commit();
  }

  // ldmatrix row addresses within a slot, per k16 step: A as prefill_linear's fragments (matrices
  // rows 0-7 / 8-15 x k 0-7 / 8-15; with 8 x rows only rows 0-7 are read and rows 8-15 are zeros),
  // B two n8 tiles (columns 0-7 / 8-15 x k 0-7 / 8-15).
  uint32_t aoff[4], boff[4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    aoff[kk] = XR == 8 ? 16 * 128 + unit_offset(lane & 7, 2 * kk + ((lane >> 3) & 1))
                       : 16 * 128 + unit_offset((lane & 7) + ((lane >> 3) & 1) * 8, 2 * kk + (lane >> 4));
    boff[kk] = unit_offset((lane & 7) + (lane >> 4) * 8, 2 * kk + ((lane >> 3) & 1));
  }
  float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  const uint32_t ring_end = ring + ST * kStage;
  uint32_t use = ring, fill = ring + (ST - 1) * kStage;  // slots of stage kt and kt + ST - 1
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<ST - 2>();
    __syncwarp();  // every lane's copies of stage kt are visible; the slot filled next is free
    if (kt + ST - 1 < ktiles) {
      load_w(kt + ST - 1, fill);
      load_x(kt + ST - 1, fill);
    }
    cp_async_commit();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4], b[4];
      if constexpr (XR == 8) {
        uint32_t h[2];
        ldmatrix_x2(h, use + aoff[kk]);
        a[0] = h[0], a[1] = 0u, a[2] = h[1], a[3] = 0u;
      } else {
        ldmatrix_x4(a, use + aoff[kk]);
      }
      ldmatrix_x4(b, use + boff[kk]);
      Mma<T>::run(acc[0], a, b[0], b[1]);
      Mma<T>::run(acc[1], a, b[2], b[3]);
    }
    use = use + kStage == ring_end ? ring : use + kStage;
    fill = fill + kStage == ring_end ? ring : fill + kStage;
  }
  cp_async_wait<0>();
  if (!early) cuda_pdl::pdl_trigger();

  // Accumulator (nt, e): row g + 8 (e >> 1), column n0 + 8 nt + 2 t + (e & 1).
  if (ep.kind != Kind::Plain) {  // tile 0: 8 outputs, tile 1: their partners
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = g + 8 * h;
      if (r >= rows) continue;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int na = n0 + 2 * t + e;
        if (na < N) pair_epilogue<T>(ep, y, row0 + r, na, N, acc[0][2 * h + e], acc[1][2 * h + e]);
      }
    }
    return;
  }
  using T2 = typename cuda_half::Pair<T>::type;
  const bool pairs = (N & 1) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = g + 8 * h;
    if (r >= rows) continue;
    T* yr = y + static_cast<int64_t>(r) * N;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int c = n0 + 8 * nt + 2 * t;
      const float lo = acc[nt][2 * h], hi = acc[nt][2 * h + 1];
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

template <typename T, int XR, int W, int ST>
int launch_shape(const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
                 bool pdl, cudaStream_t st) {
  using S = Shape<XR, W, ST>;
  constexpr auto kernel = decode_linear_kernel<T, XR, W, ST>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(S::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  const int64_t row_groups = (rows + XR - 1) / XR;
  const int64_t warps = (N + 15) / 16;
  const dim3 grid(static_cast<unsigned>(row_groups * ((warps + W - 1) / W))), block(W * 32);
  // With several row groups the other groups read the weights from L2 just after the first.
  return static_cast<int>(cuda_pdl::launch(kernel, grid, block, S::kSmemBytes, st, pdl, x, w, y, rows, N, K,
                                           read_once && row_groups == 1, ep, cuda_pdl::trigger_early(pdl, rows)));
}

// The launch shapes: those of 8 x rows serve launches of up to 8 rows, the others any number
// (row groups of 16 side by side); the last, prefill_linear, plain launches of more than 8 rows.
struct ShapeInfo {
  const char* name;
  bool few;  // up to 8 rows only
};
constexpr ShapeInfo kShapes[] = {{"x8 w1 st8", true},   {"x8 w1 st16", true},  {"x8 w2 st8", true},
                                 {"x8 w4 st6", true},   {"x16 w1 st8", false}, {"x16 w1 st12", false},
                                 {"x16 w2 st8", false}, {"x16 w4 st6", false}, {"prefill_linear", false}};
constexpr int kShapeCount = sizeof(kShapes) / sizeof(kShapes[0]);
constexpr int kPrefillShape = kShapeCount - 1;

// Shape c's index among those serving `rows` rows, and back.
int shape_index(int64_t rows, int i) {
  for (int c = 0; c < kShapeCount; ++c) {
    const bool serves = rows <= 8 ? c != kPrefillShape : !kShapes[c].few;
    if (serves && i-- == 0) return c;
  }
  return -1;
}
int shapes_for(int64_t rows) {
  int n = 0;
  while (shape_index(rows, n) >= 0) ++n;
  return n;
}

// The shape decode_linear picks (speed only).
int default_shape(int64_t rows, int N, const MmaEpilogue& ep) {
  if (rows <= 8) return (N + 15) / 16 >= 1024 ? 2 : 1;
  if (rows > 64 && ep.kind == Kind::Plain) return kPrefillShape;
  return 4;
}

template <typename T>
int launch_t(int i, const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
             bool pdl, cudaStream_t st) {
  const int c = i < 0 ? default_shape(rows, N, ep) : shape_index(rows, i);
  switch (c) {
    case 0: return launch_shape<T, 8, 1, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 1: return launch_shape<T, 8, 1, 16>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 2: return launch_shape<T, 8, 2, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 3: return launch_shape<T, 8, 4, 6>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 4: return launch_shape<T, 16, 1, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 5: return launch_shape<T, 16, 1, 12>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 6: return launch_shape<T, 16, 2, 8>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case 7: return launch_shape<T, 16, 4, 6>(x, w, y, rows, N, K, read_once, ep, pdl, st);
    case kPrefillShape:
      if (ep.kind != Kind::Plain) return static_cast<int>(cudaErrorInvalidValue);
      return prefill_linear(std::is_same_v<T, __half> ? DType::FP16 : DType::BF16, x, w, y, rows, N, K, st, pdl);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace

int decode_linear_shapes(int64_t rows) { return rows <= 0 ? 0 : shapes_for(rows); }

const char* decode_linear_shape_name(int64_t rows, int i) {
  const int c = rows <= 0 || i < 0 ? -1 : shape_index(rows, i);
  return c < 0 ? "" : kShapes[c].name;
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
