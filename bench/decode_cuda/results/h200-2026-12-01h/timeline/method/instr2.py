# Scratch: timestamps inside the decode attention kernel (thread 0 of each CTA), GPU machine only.
def patch(f, pairs):
    s = open(f).read()
    for old, new in pairs:
        assert s.count(old) == 1, (f, old[:80], s.count(old))
        s = s.replace(old, new)
    open(f, 'w').write(s)
open('src/ops/cuda/dbg_attn.cuh', 'w').write(r'''
#pragma once
#include <cstdio>
#include <cuda_runtime.h>
struct DbgA { unsigned long long t[8]; int cta, live; };
static __device__ DbgA g_dbga[65536];
static __device__ unsigned g_dbga_n;
__device__ __forceinline__ unsigned long long dbg_now() { unsigned long long t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t) :: "memory"); return t; }
void dbg_reset_attn() { unsigned z = 0; cudaMemcpyToSymbol(g_dbga_n, &z, 4); }
void dbg_dump_attn(FILE* f) { unsigned n = 0; cudaDeviceSynchronize(); cudaMemcpyFromSymbol(&n, g_dbga_n, 4); if (n > 65536) n = 65536;
  static DbgA h[65536]; cudaMemcpyFromSymbol(h, g_dbga, sizeof(DbgA) * n);
  for (unsigned i = 0; i < n; ++i) { fprintf(f, "%d %d", h[i].cta, h[i].live); for (int k = 0; k < 8; ++k) fprintf(f, " %llu", h[i].t[k]); fprintf(f, "\n"); } }
''')
A = 'src/ops/cuda/block_sparse_attention_kernel.cu'
patch(A, [
 ('#include "bsa_params.h"\n', '#include "bsa_params.h"\n#include "dbg_attn.cuh"\n'),
 ('  float(*so)[G][D] = reinterpret_cast<float(*)[G][D]>(sbuf);\n', '  float(*so)[G][D] = reinterpret_cast<float(*)[G][D]>(sbuf);\n  unsigned long long dt[8] = {dbg_now(), 0, 0, 0, 0, 0, 0, 0};\n'),
 ('  cuda_pdl::pdl_wait();\n  cuda_pdl::pdl_trigger();  // the combine may launch now (it waits for this kernel\'s end)\n',
  '  cuda_pdl::pdl_wait();\n  cuda_pdl::pdl_trigger();  // the combine may launch now (it waits for this kernel\'s end)\n  dt[1] = dbg_now();\n'),
 ('    for (int i = 0; i < KP; ++i) qf[i] = quad < g ? *reinterpret_cast<const uint4*>(qp + 32 * i) : make_uint4(0, 0, 0, 0);\n  }\n',
  '    for (int i = 0; i < KP; ++i) qf[i] = quad < g ? *reinterpret_cast<const uint4*>(qp + 32 * i) : make_uint4(0, 0, 0, 0);\n  }\n  if (qf[0].x == 0x7fffffffu && qf[KP - 1].w == 0x7fffffffu) dt[7] = 1;\n  dt[2] = dbg_now();\n'),
 ('        const unsigned okm = __ballot_sync(0xffffffffu, ok);  // keys past nk are never ok\n',
  '        const unsigned okm = __ballot_sync(0xffffffffu, ok);  // keys past nk are never ok\n        if (kf[0][0].x == 0x7fffffffu && kf[3][KP - 1].w == 0x7fffffffu) dt[7] = 2;\n        if (dt[3] == 0) dt[3] = dbg_now();\n'),
 ('        cp_async_wait<0>();\n        __syncwarp();\n        // Rows of keys the mask hides',
  '        cp_async_wait<0>();\n        __syncwarp();\n        if (dt[4] == 0) dt[4] = dbg_now();\n        // Rows of keys the mask hides'),
 ('    __syncthreads();  // every warp done with sv before it becomes the merge buffer\n',
  '    __syncthreads();  // every warp done with sv before it becomes the merge buffer\n    if (dt[5] == 0) dt[5] = dbg_now();\n'),
 ('    cluster_arrive();\n    cluster_wait();\n    const int active',
  '    dt[6] = dbg_now();\n    cluster_arrive();\n    cluster_wait();\n    const int active'),
 ('      store_merged<T>(p, M, b, h, c, oo, m0, l0);\n    }\n  }\n}\n\ntemplate <typename T, int D>\n__global__ void bsa_decode_combine',
  '      store_merged<T>(p, M, b, h, c, oo, m0, l0);\n    }\n  }\n  if (threadIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0) { const unsigned i = atomicAdd(&g_dbga_n, 1u); if (i < 65536) { DbgA r; for (int k = 0; k < 8; ++k) r.t[k] = dt[k]; r.t[7] = dbg_now() + (dt[7] > 10 ? 0 : dt[7]); r.cta = blockIdx.x; r.live = (int)(dt[6] - dt[5]); g_dbga[i] = r; } }\n}\n\ntemplate <typename T, int D>\n__global__ void bsa_decode_combine'),
])
S = 'bench/decode_cuda/step.cpp'
patch(S, [
 ('namespace bench_decode {\n', '#include <cstdio>\n#include <cstdlib>\nvoid dbg_reset_attn(); void dbg_dump_attn(FILE*);\nnamespace bench_decode {\n'),
 ('    state.step(tokens, same, same);\n', '    const bool dbg_last = graphs && i + 1 == kWarmupSteps + s.steps && std::getenv("DBG_OUT");\n    if (dbg_last) { cudaDeviceSynchronize(); dbg_reset_attn(); }\n    state.step(tokens, same, same);\n    if (dbg_last) { FILE* f = std::fopen(std::getenv("DBG_OUT"), "w"); dbg_dump_attn(f); std::fclose(f); }\n'),
 ('#include <ATen/ATen.h>\n', '#include <ATen/ATen.h>\n#include <cuda_runtime.h>\n'),
])
print("patched2")
