// Hopper (sm_90a) warpgroup MMA for the row-invariant linears (prefill_linear_kernel.cu and the
// TMA / split kernels) and the block-sparse attention (block_sparse_attention_wgmma_kernel.cu):
// shared-memory matrix descriptors for the tiles' 128-byte-swizzled K-major layout (the layout the
// kernel's cp.async stages already have: rows of 128 bytes, 16-byte unit u of row r at
// u ^ (r & 7)) and wgmma m64n128k16 with fp32 accumulators. Compiled to nothing but a trap for
// other architectures: the launcher takes this path only on compute capability 9.0.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace flexgen {
namespace cuda_wgmma {

// Descriptor of a K-major tile at shared address `addr` (1024-byte aligned atoms of 8 rows x 128
// bytes; addr may be advanced by 32 bytes per k16 step inside an atom), 128-byte swizzle.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  uint64_t d = static_cast<uint64_t>((addr & 0x3FFFF) >> 4);
  d |= static_cast<uint64_t>(1) << 16;            // leading byte offset (unused by swizzled K-major)
  d |= static_cast<uint64_t>(1024 >> 4) << 32;    // stride byte offset: 8 rows x 128 bytes
  d |= static_cast<uint64_t>(1) << 62;            // 128-byte swizzle
  return d;
}

// The attention kernel's descriptors as a variable low word (start address >> 4, and the leading
// byte offset) and a constant high word (stride byte offset 1024 bytes: 8 rows of 128; 128-byte
// swizzle), so a k16 step or a stage only adds to the low word. K-major: the leading byte offset
// is unused (1). MN-major (PTX ISA, "Shared Memory Matrix Layout", 128-byte swizzle): the leading
// byte offset is the stride between 64-element blocks of N (`lbo` bytes), the stride byte offset
// between 8-row groups of K.
constexpr uint32_t kDescHi = (1024 >> 4) | (1u << 30);
__device__ __forceinline__ uint32_t desc_lo_k(uint32_t addr) { return ((addr & 0x3FFFF) >> 4) | (1u << 16); }
__device__ __forceinline__ uint32_t desc_lo_mn(uint32_t addr, uint32_t lbo) {
  return ((addr & 0x3FFFF) >> 4) | ((lbo >> 4) << 16);
}
__device__ __forceinline__ uint64_t desc(uint32_t lo) { return (static_cast<uint64_t>(kDescHi) << 32) | lo; }

__device__ __forceinline__ void fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Warp specialization's register split (setmaxnreg; every warp of the warpgroup executes it, in a
// kernel whose entry register count is known: __launch_bounds__ with a minimum of CTAs an SM):
// producer warpgroups give registers back, consumer warpgroups take them.
template <int N>
__device__ __forceinline__ void release_registers() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void claim_registers() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
// Makes this thread's completed cp.async writes to shared memory visible to the async proxy
// (wgmma reads its operands through it).
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// The wgmma wrappers below are written once for both element types: `ty` is the PTX type (bf16,
// f16) of T. Wgmma: d (64 fp32: this thread's part of a 64 x 128 tile) += A . B^T, A and B
// K-major in shared memory.
template <typename T>
struct Wgmma;
template <typename T>
struct WgmmaAttn;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLEXGEN_WGMMA_ASM(...) asm volatile(__VA_ARGS__)
#else
#define FLEXGEN_WGMMA_ASM(...) ((void)0)
#endif

#define FLEXGEN_WGMMA_TYPE(T, ty)                                                                         \
  template <>                                                                                           \
  struct Wgmma<T> {                                                                                     \
    static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b, int accumulate) { \
      FLEXGEN_WGMMA_ASM(                                                                                \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                   \
          "wgmma.mma_async.sync.aligned.m64n128k16.f32." ty "." ty " "                                  \
          "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"                                                 \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                                                                               \
          : "l"(a), "l"(b), "r"(accumulate));                                                          \
    }                                                                                                   \
  };                                                                                                    \
  template <>                                                                                           \
  struct WgmmaAttn<T> {                                                                                 \
    static __device__ __forceinline__ void ss_n64(float (&d)[8][4], uint64_t a, uint64_t b) {           \
      FLEXGEN_WGMMA_ASM(                                                                                \
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                                     \
          "wgmma.mma_async.sync.aligned.m64n64k16.f32." ty "." ty " "                                   \
          "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"                                                 \
          : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])                                                                               \
          : "l"(a), "l"(b));                                                                            \
    }                                                                                                   \
    static __device__ __forceinline__ void rs_n64_mn(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b) { \
      FLEXGEN_WGMMA_ASM(                                                                                \
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                                     \
          "wgmma.mma_async.sync.aligned.m64n64k16.f32." ty "." ty " "                                   \
          "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                   \
          : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])                                                                               \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                        \
    }                                                                                                   \
    static __device__ __forceinline__ void rs_n128_mn(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b) { \
      FLEXGEN_WGMMA_ASM(                                                                                \
          "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                                     \
          "wgmma.mma_async.sync.aligned.m64n128k16.f32." ty "." ty " "                                  \
          "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                   \
          : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])                                                                               \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                                        \
    }                                                                                                   \
  };

// Attention shapes (block_sparse_attention_wgmma_kernel.cu): 64 rows x 64 columns, accumulators as
// the m16n8 tiles of mma.sync (d[j][e]: row 16 (warp % 4) + g + 8 (e >> 1), column 8 j + 2 t +
// (e & 1)), always accumulating (d += A . B, as mma.sync does). ss_n64: A and B K-major in shared
// memory. rs_n64_mn / rs_n128_mn: A in registers (a[0..3]: mma.sync m16n8k16's A fragment of the
// warp's 16 rows), B MN-major in shared memory (rows of B along K, 128-byte swizzled: desc_lo_mn),
// 64 or 128 columns.
FLEXGEN_WGMMA_TYPE(__nv_bfloat16, "bf16")
FLEXGEN_WGMMA_TYPE(__half, "f16")
#undef FLEXGEN_WGMMA_TYPE

// Wgmma of other widths for the prefill linear's tiles (prefill_linear_tma_kernel.cu): WgmmaN<T, N>
// is Wgmma<T> for N = 128, else d (N / 2 fp32: this thread's part of a 64 x N tile) += A . B^T in
// one m64nNk16 (B's N rows K-major in shared memory). d[4 j + e]: row 16 (warp % 4) + g + 8 (e >> 1),
// column 8 j + 2 t + (e & 1), as for 128 columns.
template <typename T, int N>
struct WgmmaN;
template <typename T>
struct WgmmaN<T, 128> {
  static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
    Wgmma<T>::run(d, a, b, accumulate);
  }
};
// One width: REGS the accumulators' operand list (%0 .. %(N/2 - 1)), A, B, P the operand numbers
// of the two descriptors and the accumulate flag, the outputs last.
#define FLEXGEN_WGMMA_N(T, ty, N, REGS, A, B, P, ...)                                                     \
  template <>                                                                                             \
  struct WgmmaN<T, N> {                                                                                   \
    static __device__ __forceinline__ void run(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate) { \
      FLEXGEN_WGMMA_ASM("{\n.reg .pred p;\nsetp.ne.b32 p, %" P ", 0;\n"                                    \
                        "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." ty "." ty " "                   \
                        "{" REGS "}, %" A ", %" B ", p, 1, 1, 0, 0;\n}\n"                                \
                        : __VA_ARGS__                                                                     \
                        : "l"(a), "l"(b), "r"(accumulate));                                              \
    }                                                                                                     \
  };
// Each width's operand lists extend the narrower one's (string and token concatenation).
#define FLEXGEN_WGMMA_REGS_160 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define FLEXGEN_WGMMA_OUTS_160 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79])
#define FLEXGEN_WGMMA_REGS_192 FLEXGEN_WGMMA_REGS_160 ", %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define FLEXGEN_WGMMA_OUTS_192 FLEXGEN_WGMMA_OUTS_160, "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
#define FLEXGEN_WGMMA_REGS_208 FLEXGEN_WGMMA_REGS_192 ", %96, %97, %98, %99, %100, %101, %102, %103"
#define FLEXGEN_WGMMA_OUTS_208 FLEXGEN_WGMMA_OUTS_192, "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103])
#define FLEXGEN_WGMMA_REGS_224 FLEXGEN_WGMMA_REGS_208 ", %104, %105, %106, %107, %108, %109, %110, %111"
#define FLEXGEN_WGMMA_OUTS_224 FLEXGEN_WGMMA_OUTS_208, "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111])
#define FLEXGEN_WGMMA_REGS_240 FLEXGEN_WGMMA_REGS_224 ", %112, %113, %114, %115, %116, %117, %118, %119"
#define FLEXGEN_WGMMA_OUTS_240 FLEXGEN_WGMMA_OUTS_224, "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119])
FLEXGEN_WGMMA_N(__nv_bfloat16, "bf16", 160, FLEXGEN_WGMMA_REGS_160, "80", "81", "82", FLEXGEN_WGMMA_OUTS_160)
FLEXGEN_WGMMA_N(__half, "f16", 160, FLEXGEN_WGMMA_REGS_160, "80", "81", "82", FLEXGEN_WGMMA_OUTS_160)
FLEXGEN_WGMMA_N(__nv_bfloat16, "bf16", 192, FLEXGEN_WGMMA_REGS_192, "96", "97", "98", FLEXGEN_WGMMA_OUTS_192)
FLEXGEN_WGMMA_N(__half, "f16", 192, FLEXGEN_WGMMA_REGS_192, "96", "97", "98", FLEXGEN_WGMMA_OUTS_192)
FLEXGEN_WGMMA_N(__nv_bfloat16, "bf16", 208, FLEXGEN_WGMMA_REGS_208, "104", "105", "106", FLEXGEN_WGMMA_OUTS_208)
FLEXGEN_WGMMA_N(__half, "f16", 208, FLEXGEN_WGMMA_REGS_208, "104", "105", "106", FLEXGEN_WGMMA_OUTS_208)
FLEXGEN_WGMMA_N(__nv_bfloat16, "bf16", 224, FLEXGEN_WGMMA_REGS_224, "112", "113", "114", FLEXGEN_WGMMA_OUTS_224)
FLEXGEN_WGMMA_N(__half, "f16", 224, FLEXGEN_WGMMA_REGS_224, "112", "113", "114", FLEXGEN_WGMMA_OUTS_224)
FLEXGEN_WGMMA_N(__nv_bfloat16, "bf16", 240, FLEXGEN_WGMMA_REGS_240, "120", "121", "122", FLEXGEN_WGMMA_OUTS_240)
FLEXGEN_WGMMA_N(__half, "f16", 240, FLEXGEN_WGMMA_REGS_240, "120", "121", "122", FLEXGEN_WGMMA_OUTS_240)
#undef FLEXGEN_WGMMA_N
#undef FLEXGEN_WGMMA_REGS_160
#undef FLEXGEN_WGMMA_OUTS_160
#undef FLEXGEN_WGMMA_REGS_192
#undef FLEXGEN_WGMMA_OUTS_192
#undef FLEXGEN_WGMMA_REGS_208
#undef FLEXGEN_WGMMA_OUTS_208
#undef FLEXGEN_WGMMA_REGS_224
#undef FLEXGEN_WGMMA_OUTS_224
#undef FLEXGEN_WGMMA_REGS_240
#undef FLEXGEN_WGMMA_OUTS_240
#undef FLEXGEN_WGMMA_ASM

}  // namespace cuda_wgmma
}  // namespace flexgen
