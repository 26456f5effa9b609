// Host side of the block-sparse attention launchers (block_sparse_attention_kernel.cu, the mma.sync
// and decode kernels; block_sparse_attention_wgmma_kernel.cu): the element-type / head-dim dispatch
// and the launch of a tiled kernel over (query tiles, heads, batch rows).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "bsa_params.h"
#include "kernel_attribute.cuh"

namespace flexgen {
namespace cuda_bsa {

template <typename T>
struct TypeTag {
  using type = T;
};

// fn(TypeTag<T>{}, std::integral_constant<int, D>{}) for the launch's element type and head dim
// (64 or 128); cudaErrorInvalidValue for other head dims.
template <typename Fn>
int with_type_and_dim(DType dtype, int head_dim, Fn&& fn) {
  using D64 = std::integral_constant<int, 64>;
  using D128 = std::integral_constant<int, 128>;
  if (dtype == DType::BF16) {
    if (head_dim == 64) return fn(TypeTag<__nv_bfloat16>{}, D64{});
    if (head_dim == 128) return fn(TypeTag<__nv_bfloat16>{}, D128{});
  } else {
    if (head_dim == 64) return fn(TypeTag<__half>{}, D64{});
    if (head_dim == 128) return fn(TypeTag<__half>{}, D128{});
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

// Launches a tiled kernel (one CTA per query tile of bm rows, head and batch row; tiles aligned to
// the mask's query blocks) for batch rows [p.b0, p.b0 + nb). Decode steps from a device table
// (p.mtab, Lq == 1) take the tiles of one mask block.
template <auto Kernel>
int launch_query_tiles(const Params& p, int nb, int bm, int threads, int smem, cudaStream_t stream) {
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<Kernel>(smem); e != cudaSuccess)
    return static_cast<int>(e);
  int tiles = 0;
  if (p.mtab != nullptr) tiles = (p.table_block_size + bm - 1) / bm;
  for (int r = 0; p.mtab == nullptr && p.Lq > 0 && r < (p.nmasks == 1 ? 1 : nb); ++r) {
    const MaskDesc& m = p.masks[r];
    const int subs = (m.block_size + bm - 1) / bm;
    const int qb0 = m.q_offset / m.block_size, qb1 = (m.q_offset + p.Lq - 1) / m.block_size;
    tiles = std::max(tiles, (qb1 - qb0 + 1) * subs);
  }
  if (tiles == 0 || nb == 0 || p.H == 0) return 0;
  Kernel<<<dim3(tiles, p.H, nb), threads, smem, stream>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda_bsa
}  // namespace flexgen
