// The 16-bit element types of the CUDA kernels (bf16, fp16), shared by ops/cuda's kernels:
// conversions to and from fp32 and the tensor-core MMA m16n8k16 (16-bit inputs, fp32 accumulate).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace flexgen {
namespace cuda_half {

// One element or a pair (what a 16-byte load holds four of) as fp32.
__device__ __forceinline__ float f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float f(__half x) { return __half2float(x); }
__device__ __forceinline__ float2 f2(__nv_bfloat162 x) { return __bfloat1622float2(x); }
__device__ __forceinline__ float2 f2(__half2 x) { return __half22float2(x); }

// fp32 rounded to nearest even in T.
template <typename T>
__device__ __forceinline__ T to(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 to<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ __forceinline__ __half to<__half>(float x) { return __float2half_rn(x); }

template <typename T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> { using type = __nv_bfloat162; };
template <>
struct Pair<__half> { using type = __half2; };

// c += A . B for one m16n8k16 tile (a: the A fragment, b0/b1: the B fragment; PTX ISA's layouts);
// pack: two fp32 rounded into one 32-bit register of two T.
template <typename T>
struct Mma;

template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

}  // namespace cuda_half
}  // namespace flexgen
