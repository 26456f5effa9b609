# Scratch instrumentation (GPU machine only, never committed): per-CTA globaltimer records of the
# decode step's kernels (entry, after pdl_wait, end, SM id) for one graph replay.
import re, sys
def patch(f, pairs):
    s = open(f).read()
    for old, new in pairs:
        assert s.count(old) == 1, (f, old[:80], s.count(old))
        s = s.replace(old, new)
    open(f, 'w').write(s)

open('src/ops/cuda/dbg_timeline.cuh', 'w').write(r'''
#pragma once
#include <cstdio>
#include <cuda_runtime.h>
struct DbgRec { unsigned long long t0, t1, t2; const void* id; int kind, cta, sm, n; };
static __device__ DbgRec g_dbg[65536];
static __device__ unsigned g_dbg_n;
__device__ __forceinline__ unsigned long long dbg_time() { unsigned long long t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }
__device__ __forceinline__ void dbg_rec(int kind, const void* id, int n, unsigned long long t0, unsigned long long t1) {
  if (threadIdx.x != 0) return;
  unsigned sm; asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  const unsigned i = atomicAdd(&g_dbg_n, 1u);
  if (i < 65536) { DbgRec r; r.t0 = t0; r.t1 = t1; r.t2 = dbg_time(); r.id = id; r.kind = kind; r.cta = (int)(blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y); r.sm = (int)sm; r.n = n; g_dbg[i] = r; }
}
#define DBG_TU(name) \
  void dbg_reset_##name() { unsigned z = 0; cudaMemcpyToSymbol(g_dbg_n, &z, 4); } \
  void dbg_dump_##name(FILE* f) { unsigned n = 0; cudaDeviceSynchronize(); cudaMemcpyFromSymbol(&n, g_dbg_n, 4); if (n > 65536) n = 65536; \
    static DbgRec h[65536]; cudaMemcpyFromSymbol(h, g_dbg, sizeof(DbgRec) * n); \
    for (unsigned i = 0; i < n; ++i) fprintf(f, "%d %p %d %d %d %llu %llu %llu\n", h[i].kind, h[i].id, h[i].n, h[i].cta, h[i].sm, h[i].t0, h[i].t1, h[i].t2); }
''')

A = 'src/ops/cuda/block_sparse_attention_kernel.cu'
patch(A, [
 ('#include "bsa_params.h"\n', '#include "bsa_params.h"\n#include "dbg_timeline.cuh"\n'),
 ('  float(*so)[G][D] = reinterpret_cast<float(*)[G][D]>(sbuf);\n', '  float(*so)[G][D] = reinterpret_cast<float(*)[G][D]>(sbuf);\n  const unsigned long long dbg_t0 = dbg_time();\n'),
 ('  cuda_pdl::pdl_wait();\n  cuda_pdl::pdl_trigger();  // the combine may launch now (it waits for this kernel\'s end)\n',
  '  cuda_pdl::pdl_wait();\n  cuda_pdl::pdl_trigger();  // the combine may launch now (it waits for this kernel\'s end)\n  const unsigned long long dbg_t1 = dbg_time();\n'),
 ('      store_merged<T>(p, M, b, h, c, oo, m0, l0);\n    }\n  }\n}\n\ntemplate <typename T, int D>\n__global__ void bsa_decode_combine',
  '      store_merged<T>(p, M, b, h, c, oo, m0, l0);\n    }\n  }\n  dbg_rec(1, p.k, p.Lk, dbg_t0, dbg_t1);\n}\n\ntemplate <typename T, int D>\n__global__ void bsa_decode_combine'),
 ('}  // namespace cuda_bsa\n}  // namespace flexgen\n', '}  // namespace cuda_bsa\n}  // namespace flexgen\nDBG_TU(attn)\n'),
])
L = 'src/ops/cuda/mma_linear_kernel.cu'
s = open(L).read()
inc = s.split('\n')
patch(L, [
 ('  extern __shared__ __align__(16) unsigned char smem[];\n  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;\n',
  '  extern __shared__ __align__(16) unsigned char smem[];\n  const unsigned long long dbg_t0 = dbg_time();\n  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;\n'),
 ('  pdl_wait();\n  // One row: the CTA copies x whole', '  pdl_wait();\n  const unsigned long long dbg_t1 = dbg_time();\n  // One row: the CTA copies x whole'),
 ('    return;\n  }\n#pragma unroll\n  for (int c = 0; c < CW; ++c) {\n    const int na = n0 + 16 * c + g, nb = na + 8;',
  '    dbg_rec(10 + (int)ep.kind, w, N, dbg_t0, dbg_t1);\n    return;\n  }\n#pragma unroll\n  for (int c = 0; c < CW; ++c) {\n    const int na = n0 + 16 * c + g, nb = na + 8;'),
 ('        if (r1 < rows) y[static_cast<int64_t>(r1) * N + nb] = cuda_half::to<T>(acc[c][j][3]);\n      }\n    }\n  }\n}\n',
  '        if (r1 < rows) y[static_cast<int64_t>(r1) * N + nb] = cuda_half::to<T>(acc[c][j][3]);\n      }\n    }\n  }\n  dbg_rec(10, w, N, dbg_t0, dbg_t1);\n}\n'),
])
s = open(L).read()
i = s.index('#include', s.index('#include') + 1)
s = s.replace('namespace flexgen {', '#include "dbg_timeline.cuh"\nnamespace flexgen {', 1)
s = s.rstrip('\n') + '\nDBG_TU(lin)\n'
open(L, 'w').write(s)
F = 'src/ops/cuda/fused_ops_kernel.cu'
patch(F, [
 ('  const int64_t row = blockIdx.x;\n  T* x = h + row * n;\n', '  const unsigned long long dbg_t0 = dbg_time();\n  const int64_t row = blockIdx.x;\n  T* x = h + row * n;\n'),
 ('  pdl_wait();\n  if (!early) pdl_trigger();\n#pragma unroll\n  for (int i = 0; i < C; ++i) load8(x,', '  pdl_wait();\n  if (!early) pdl_trigger();\n  const unsigned long long dbg_t1 = dbg_time();\n#pragma unroll\n  for (int i = 0; i < C; ++i) load8(x,'),
 ('    store8(out + row * n, 8 * (threadIdx.x + blockDim.x * i), n, vec, ov);\n  }\n}\n', '    store8(out + row * n, 8 * (threadIdx.x + blockDim.x * i), n, vec, ov);\n  }\n  dbg_rec(ADD ? 21 : 20, w, n, dbg_t0, dbg_t1);\n}\n'),
])
s = open(F).read()
s = s.replace('namespace flexgen {', '#include "dbg_timeline.cuh"\nnamespace flexgen {', 1)
s = s.rstrip('\n') + '\nDBG_TU(fused)\n'
open(F, 'w').write(s)
S = 'bench/decode_cuda/step.cpp'
patch(S, [
 ('namespace bench_decode {\n', '#include <cstdio>\n#include <cstdlib>\nvoid dbg_reset_attn(); void dbg_reset_lin(); void dbg_reset_fused();\nvoid dbg_dump_attn(FILE*); void dbg_dump_lin(FILE*); void dbg_dump_fused(FILE*);\nnamespace bench_decode {\n'),
 ('    state.step(tokens, same, same);\n', '    const bool dbg_last = graphs && i + 1 == kWarmupSteps + s.steps && std::getenv("DBG_OUT");\n    if (dbg_last) { cudaDeviceSynchronize(); dbg_reset_attn(); dbg_reset_lin(); dbg_reset_fused(); }\n    state.step(tokens, same, same);\n    if (dbg_last) { FILE* f = std::fopen(std::getenv("DBG_OUT"), "w"); dbg_dump_attn(f); dbg_dump_lin(f); dbg_dump_fused(f); std::fclose(f); }\n'),
 ('#include <ATen/ATen.h>\n', '#include <ATen/ATen.h>\n#include <cuda_runtime.h>\n'),
])
print("patched")
