// Block-sparse attention, CPU. See block_sparse_attention.h for the contract.
//
// Work item = (batch row, KV head, query tile). A tile holds up to Tq consecutive query
// positions inside ONE mask query block, for all g = H / Hkv query heads of the KV head, stacked
// position-major (lane r = position i * g + head j): K/V of a key range are read (and, for bf16,
// widened) once for the g heads, and a partial block's per-element mask is evaluated once per
// position, not once per head. The tile's rows live in vector lanes: Q is packed once per tile
// as Q^T [d][lanes]; per run of consecutive listed key blocks (up to kMaxRunCols keys):
//   partial blocks: a 16-bit lane mask per key and lane chunk, from the lanes' groups and
//                   causality; the run is trimmed to the keys and chunks with any allowed pair;
//                   full blocks: no mask work at all;
//   S^T [keys][lanes] = K . Q^T; online softmax in base 2 (fp32); O^T [d][lanes] += V^T . P^T.
// The arithmetic of those three steps (attention_kernels.h) is one contract with an
// implementation per instruction-set path, chosen at run time (cpu_isa()): every path, every
// tile shape and every batch gives a lane bitwise the same result. Runs are formed from the mask's
// blocks alone (never from how many keys a batch's cache holds), and a key that a lane may not see
// adds exactly nothing, so trimming does not change a result either.
// Work items are handed out dynamically (atomic counter, most expensive first) to the
// at::parallel_for threads; each thread keeps its scratch between calls.
#include "cpu/block_sparse_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu/attention_kernels.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;
constexpr int64_t kMaxRunCols = 256;  // widest key run handled at once (>= block size otherwise)

// ---------------------------------------------------------------------------------------------

struct RowMask {
  const BlockMask* bm;
  const AttentionMask* am;
  int64_t q_offset, k_offset;
};

struct WorkItem {
  int32_t b;
  int32_t kvh;
  int64_t r0, r1;  // query rows [r0, r1) of q (relative), inside one mask query block
  int64_t qb;      // mask query block
  int64_t cost;    // listed key blocks (for scheduling)
};

struct Problem {
  int64_t B, H, Hkv, g, Lq, Lk, d;
  float qmul;  // scale * log2(e)
  int64_t q_tile;
  std::vector<RowMask> rows;  // one per batch row
  const cpu::AttentionKernels* kern;
};

template <typename T>
struct Views {
  const T* q;
  const T* k;
  const T* v;
  T* out;
  float* lse;  // nullptr unless requested
  int64_t qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, os0, os1, os2;
};

// A listed key block clipped to the keys present in k/v: absolute keys [bs, be).
struct KeyBlock {
  int64_t bs, be;
  bool full;
};
// Consecutive key blocks handled together: keys [ks, ke), blocks [begin, end).
struct Run {
  int64_t ks, ke;
  bool any_partial;
  size_t begin, end;
};

// Per-thread scratch, kept between calls (grows, never shrinks).
struct Scratch {
  std::vector<float> qf, acc, s, kbuf, vbuf, m, l, row;
  std::vector<KeyBlock> blocks;
  std::vector<Run> runs;
  std::vector<uint16_t> lane_vis, kmask;
  void reserve(int64_t rows, int64_t cols, int64_t d) {
    const int64_t lanes = (rows + 31) / 32 * 32;
    auto grow = [](auto& v, int64_t n) {
      if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
    };
    grow(qf, lanes * d);
    grow(acc, lanes * d);
    grow(s, lanes * cols);
    grow(kbuf, cols * d);
    grow(vbuf, cols * d);
    grow(m, lanes);
    grow(l, lanes);
    grow(row, d);
    grow(kmask, cols * (lanes / 16));
  }
};

// The listed key blocks of query block qb (ascending) merged into runs of consecutive blocks of at
// most cols_cap keys, decided on the mask's blocks alone; then clipped to the keys present,
// [kv_lo, kv_hi) (blocks and runs left empty are dropped).
void collect_runs(const BlockMask& bm, int64_t qb, int64_t kv_lo, int64_t kv_hi, int64_t cols_cap, Scratch& S) {
  S.blocks.clear();
  S.runs.clear();
  const int32_t* f = bm.full_indices.data();
  const int32_t* p = bm.partial_indices.data();
  int32_t fi = bm.full_offsets[qb], fe = bm.full_offsets[qb + 1];
  int32_t pi = bm.partial_offsets[qb], pe = bm.partial_offsets[qb + 1];
  const int64_t B = bm.block_size;
  int64_t run_start = -1, run_end = -1;  // the unclipped extent of the current run
  while (fi < fe || pi < pe) {
    const bool full = pi >= pe || (fi < fe && f[fi] < p[pi]);
    const int64_t kb = full ? f[fi++] : p[pi++];
    const int64_t ub = kb * B, ue = (kb + 1) * B;  // unclipped
    const bool extend = run_start >= 0 && run_end == ub && ue - run_start <= cols_cap;
    if (extend) {
      run_end = ue;
    } else {
      run_start = ub;
      run_end = ue;
    }
    const int64_t bs = std::max(ub, kv_lo), be = std::min(ue, kv_hi);
    if (be <= bs) continue;
    if (extend && !S.runs.empty() && S.runs.back().ke == bs) {
      Run& r = S.runs.back();
      r.ke = be;
      r.any_partial |= !full;
      r.end = S.blocks.size() + 1;
    } else {
      S.runs.push_back(Run{bs, be, !full, S.blocks.size(), S.blocks.size() + 1});
    }
    S.blocks.push_back(KeyBlock{bs, be, full});
  }
}

inline void store_row(const float* src, float* dst, int64_t n, float mul) {
  for (int64_t c = 0; c < n; ++c) dst[c] = src[c] * mul;
}
inline void store_row(const float* src, c10::BFloat16* dst, int64_t n, float mul) {
  for (int64_t c = 0; c < n; ++c) dst[c] = c10::BFloat16(src[c] * mul);
}

// Lanes of chunk ch (16 lanes from 16 ch) whose query position is >= key kp: the lanes are in
// ascending position order (lane r is position qa + r / g), so they are a suffix.
inline uint16_t causal_lanes(int64_t kp, int64_t qa, int64_t g, int64_t ch) {
  const int64_t first = std::max<int64_t>(0, (kp - qa) * g) - ch * 16;  // first lane of the chunk that passes
  if (first <= 0) return 0xFFFF;
  if (first >= 16) return 0;
  return static_cast<uint16_t>(0xFFFFu << first);
}

template <typename T>
void run_tile(const Problem& P, const Views<T>& V, const WorkItem& w, Scratch& S, int64_t cols_cap) {
  const cpu::AttentionKernels& K = *P.kern;
  const RowMask& rm = P.rows[w.b];
  const BlockMask& bm = *rm.bm;
  const AttentionMask& am = *rm.am;
  const int64_t d = P.d, g = P.g;
  const int64_t npos = w.r1 - w.r0;
  const int64_t M = npos * g;             // lanes in use, r = i * g + j
  const int64_t nch = (M + 15) / 16;      // 16-lane chunks
  const int64_t Mp = nch * 16;            // lane stride of Q^T, S^T, O^T
  const int64_t qa = rm.q_offset + w.r0;  // absolute first query position of the tile

  // bf16: K and Q in the contract's pair-swapped order; with AVX512-BF16 (and an even head_dim)
  // the scores come straight from the bf16 K rows and Q packed as bf16 pairs.
  constexpr bool is_bf16 = std::is_same<T, c10::BFloat16>::value;
  const bool swap = is_bf16 && d % 2 == 0;
  const bool bf16_dot = swap && K.scores_bf16 != nullptr;
  float* qt = S.qf.data();
  uint32_t* qt2 = reinterpret_cast<uint32_t*>(S.qf.data());
  float* row = S.row.data();
  for (int64_t r = 0; r < Mp; ++r) {
    if (r >= M) {
      if (bf16_dot)
        for (int64_t t = 0; t < d / 2; ++t) qt2[t * Mp + r] = 0;
      else
        for (int64_t c = 0; c < d; ++c) qt[c * Mp + r] = 0.0f;
      continue;
    }
    const int64_t i = r / g, j = r % g;
    const T* src = V.q + w.b * V.qs0 + (w.kvh * g + j) * V.qs1 + (w.r0 + i) * V.qs2;
    if constexpr (is_bf16) {
      const uint16_t* raw = reinterpret_cast<const uint16_t*>(src);
      if (bf16_dot) {
        for (int64_t t = 0; t < d / 2; ++t) std::memcpy(qt2 + t * Mp + r, raw + 2 * t, sizeof(uint32_t));
        continue;
      }
      K.widen(raw, d, row, swap);
    } else {
      std::memcpy(row, src, d * sizeof(float));
    }
    for (int64_t c = 0; c < d; ++c) qt[c * Mp + r] = row[c];
  }
  float* ot = S.acc.data();  // O^T [d][Mp]
  std::fill(ot, ot + d * Mp, 0.0f);
  float* mlane = S.m.data();
  float* llane = S.l.data();
  std::fill(mlane, mlane + Mp, -std::numeric_limits<float>::infinity());
  std::fill(llane, llane + Mp, 0.0f);

  const int64_t kv_lo = std::max<int64_t>(rm.k_offset, 0);
  const int64_t kv_hi = std::min(rm.k_offset + P.Lk, bm.kv_len);
  collect_runs(bm, w.qb, kv_lo, kv_hi, cols_cap, S);

  // For partial blocks: per key group, which lanes see it.
  const int32_t* gid = am.group_ids.data();
  const int64_t G = am.spec.num_groups;
  const bool causal = am.spec.causal;
  bool any_partial_run = false;
  for (const Run& run : S.runs) any_partial_run |= run.any_partial;
  uint16_t valid[64];
  for (int64_t ch = 0; ch < nch; ++ch) {
    const int64_t left = M - ch * 16;
    valid[ch] = left >= 16 ? 0xFFFF : static_cast<uint16_t>((1u << left) - 1);
  }
  if (any_partial_run) {
    S.lane_vis.assign(G * nch, 0);
    for (int64_t r = 0; r < M; ++r) {
      const uint8_t* vrow = am.spec.visible.data() + static_cast<int64_t>(gid[qa + r / g]) * G;
      for (int64_t gk = 0; gk < G; ++gk)
        if (vrow[gk]) S.lane_vis[gk * nch + r / 16] |= static_cast<uint16_t>(1u << (r % 16));
    }
  }

  const T* kbase = V.k + w.b * V.ks0 + w.kvh * V.ks1;
  const T* vbase = V.v + w.b * V.vs0 + w.kvh * V.vs1;
  float* st = S.s.data();  // S^T [keys][Mp]

  for (const Run& run : S.runs) {
    const int64_t ks = run.ks, n_all = run.ke - run.ks;
    int64_t c0 = 0, c1 = n_all, ch0 = 0, ch1 = nch;
    uint16_t* km = S.kmask.data();  // [key][chunk]
    if (run.any_partial) {
      uint16_t lanes_or[64] = {0};
      c0 = n_all;
      c1 = 0;
      for (size_t bi = run.begin; bi < run.end; ++bi) {
        const KeyBlock& kb = S.blocks[bi];
        for (int64_t kp = kb.bs; kp < kb.be; ++kp) {
          const int64_t j = kp - ks;
          uint16_t any = 0;
          const uint16_t* lv = S.lane_vis.data() + static_cast<int64_t>(gid[kp]) * nch;
          for (int64_t ch = 0; ch < nch; ++ch) {
            uint16_t m = kb.full ? valid[ch] : lv[ch];
            if (!kb.full && causal && m) m &= causal_lanes(kp, qa, g, ch);
            km[j * nch + ch] = m;
            lanes_or[ch] |= m;
            any |= m;
          }
          if (any) {
            c0 = std::min(c0, j);
            c1 = j + 1;
          }
        }
      }
      if (c1 <= c0) continue;
      ch0 = 0;
      while (ch0 < nch && lanes_or[ch0] == 0) ++ch0;
      ch1 = nch;
      while (ch1 > ch0 && lanes_or[ch1 - 1] == 0) --ch1;
    }
    const int64_t n = c1 - c0, kfirst = ks + c0 - rm.k_offset;

    // S^T = K . Q^T
    if constexpr (is_bf16) {
      const uint16_t* kraw = reinterpret_cast<const uint16_t*>(kbase + kfirst * V.ks2);
      if (bf16_dot) {
        K.scores_bf16(n, d / 2, kraw, V.ks2, qt2, Mp, st, ch0, ch1);
      } else {
        for (int64_t c = 0; c < n; ++c) K.widen(kraw + c * V.ks2, d, S.kbuf.data() + c * d, swap);
        K.scores(n, d, S.kbuf.data(), d, qt, Mp, st, ch0, ch1);
      }
    } else {
      K.scores(n, d, kbase + kfirst * V.ks2, V.ks2, qt, Mp, st, ch0, ch1);
    }

    K.softmax(n, P.qmul, st, Mp, run.any_partial ? km + c0 * nch : nullptr, nch, mlane, llane, ot, d, ch0, ch1);

    // O^T += V^T . P^T
    if constexpr (is_bf16) {
      const uint16_t* vraw = reinterpret_cast<const uint16_t*>(vbase + kfirst * V.vs2);
      for (int64_t c = 0; c < n; ++c) K.widen(vraw + c * V.vs2, d, S.vbuf.data() + c * d, false);
      K.pv(n, d, S.vbuf.data(), d, st, Mp, ot, ch0, ch1);
    } else {
      K.pv(n, d, vbase + kfirst * V.vs2, V.vs2, st, Mp, ot, ch0, ch1);
    }
  }

  // Normalise and write out; lanes with nothing allowed stay zero.
  for (int64_t r = 0; r < M; ++r) {
    const int64_t i = r / g, j = r % g, h = w.kvh * g + j;
    const bool any = llane[r] > 0.0f;
    const float inv = any ? 1.0f / llane[r] : 0.0f;
    for (int64_t c = 0; c < d; ++c) row[c] = ot[c * Mp + r];
    T* dst = V.out + w.b * V.os0 + h * V.os1 + (w.r0 + i) * V.os2;
    store_row(row, dst, d, inv);
    if (V.lse != nullptr) {
      V.lse[(w.b * P.H + h) * P.Lq + w.r0 + i] =
          any ? static_cast<float>((mlane[r] + std::log2(static_cast<double>(llane[r]))) * kLn2) : kNegInf;
    }
  }
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("block_sparse_attention: " + what);
}

std::string shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Last dim contiguous and rows at least d apart (what the tile products need).
at::Tensor usable(const at::Tensor& t) {
  if (t.stride(3) == 1 && (t.size(2) <= 1 || t.stride(2) >= t.size(3))) return t;
  return t.contiguous();
}

template <typename T>
void launch(const Problem& P, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
            at::Tensor& out, float* lse) {
  Views<T> V{};
  V.q = q.data_ptr<T>();
  V.k = k.data_ptr<T>();
  V.v = v.data_ptr<T>();
  V.out = out.data_ptr<T>();
  V.lse = lse;
  V.qs0 = q.stride(0), V.qs1 = q.stride(1), V.qs2 = q.stride(2);
  V.ks0 = k.stride(0), V.ks1 = k.stride(1), V.ks2 = k.stride(2);
  V.vs0 = v.stride(0), V.vs1 = v.stride(1), V.vs2 = v.stride(2);
  V.os0 = out.stride(0), V.os1 = out.stride(1), V.os2 = out.stride(2);

  // Work items: split each batch row's query rows at mask-block boundaries, then into tiles.
  std::vector<WorkItem> items;
  int64_t max_block = 1;
  for (int64_t b = 0; b < P.B; ++b) {
    const RowMask& rm = P.rows[b];
    const BlockMask& bm = *rm.bm;
    max_block = std::max(max_block, bm.block_size);
    const int64_t lo = std::max<int64_t>(0, -rm.q_offset);
    const int64_t hi = std::min(P.Lq, bm.q_len - rm.q_offset);  // rows past the mask: zeros
    int64_t r = lo;
    while (r < hi) {
      const int64_t qb = (rm.q_offset + r) / bm.block_size;
      const int64_t block_end = std::min(hi, (qb + 1) * bm.block_size - rm.q_offset);
      const int64_t cost = (bm.full_offsets[qb + 1] - bm.full_offsets[qb]) +
                           (bm.partial_offsets[qb + 1] - bm.partial_offsets[qb]);
      for (int64_t t = r; t < block_end; t += P.q_tile) {
        const int64_t te = std::min(block_end, t + P.q_tile);
        if (cost == 0) continue;  // nothing listed: zeros
        for (int64_t h = 0; h < P.Hkv; ++h)
          items.push_back(WorkItem{static_cast<int32_t>(b), static_cast<int32_t>(h), t, te, qb,
                                   cost * (te - t)});
      }
      r = block_end;
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  if (items.empty()) return;

  const int64_t cols_cap = std::max(kMaxRunCols, max_block);
  const int64_t tile_cap = std::min(P.q_tile, P.Lq);  // a decode step needs one position
  const int64_t rows_cap = tile_cap * P.g;
  std::atomic<size_t> next{0};
  const int64_t nthreads = std::min<int64_t>(at::get_num_threads(), static_cast<int64_t>(items.size()));
  at::parallel_for(0, nthreads, 1, [&](int64_t tb, int64_t te) {
    const cpu::FlushDenormals ftz;  // the contract's denormal rule, on every path
    thread_local Scratch S;
    S.reserve(rows_cap, cols_cap, P.d);
    for (int64_t t = tb; t < te; ++t)
      for (size_t i = next.fetch_add(1); i < items.size(); i = next.fetch_add(1))
        run_tile<T>(P, V, items[i], S, cols_cap);
  });
}

}  // namespace

std::string block_sparse_attention_backend() {
  const CpuIsa isa = cpu_isa();
  std::string s = std::string(to_string(isa)) + " lanes kernels";
  if (isa == CpuIsa::Avx512Bf16) s += " (vdpbf16ps scores for bf16)";
  return s;
}

BlockSparseAttentionResult block_sparse_attention(const at::Tensor& q_in, const at::Tensor& k_in,
                                                  const at::Tensor& v_in,
                                                  const std::vector<SparseMaskRef>& masks,
                                                  const BlockSparseAttentionOptions& options) {
  check(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
        "q, k, v must be 4-D [batch, heads, length, head_dim]; got q " + shape(q_in) + ", k " +
            shape(k_in) + ", v " + shape(v_in));
  check(q_in.device().is_cpu() && k_in.device().is_cpu() && v_in.device().is_cpu(),
        "this is the CPU kernel; tensors must be on the CPU");
  const auto dtype = q_in.scalar_type();
  check(dtype == at::kFloat || dtype == at::kBFloat16, "dtype must be float32 or bfloat16");
  check(k_in.scalar_type() == dtype && v_in.scalar_type() == dtype, "q, k and v must have one dtype");
  const int64_t B = q_in.size(0), H = q_in.size(1), Lq = q_in.size(2), d = q_in.size(3);
  const int64_t Hkv = k_in.size(1), Lk = k_in.size(2);
  check(k_in.size(0) == B && v_in.size(0) == B, "batch sizes differ: q " + shape(q_in) + ", k " +
                                                   shape(k_in) + ", v " + shape(v_in));
  check(k_in.sizes() == v_in.sizes(), "k " + shape(k_in) + " and v " + shape(v_in) + " differ");
  check(k_in.size(3) == d, "head_dim of q (" + std::to_string(d) + ") and k (" +
                               std::to_string(k_in.size(3)) + ") differ");
  check(Hkv > 0 && H % Hkv == 0, "query heads (" + std::to_string(H) +
                                     ") must be a multiple of KV heads (" + std::to_string(Hkv) + ")");
  check(d > 0, "head_dim must be positive");
  check(masks.size() == 1 || static_cast<int64_t>(masks.size()) == B,
        "need 1 mask or one per batch row (" + std::to_string(B) + "), got " +
            std::to_string(masks.size()));

  Problem P;
  P.B = B, P.H = H, P.Hkv = Hkv, P.g = H / Hkv, P.Lq = Lq, P.Lk = Lk, P.d = d;
  const double scale = options.scale != 0.0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d));
  P.qmul = static_cast<float>(scale * kLog2e);
  // Measured on a 2-core AVX-512 VM (bench/attention): ~192 stacked rows (lanes) per tile.
  P.q_tile = options.q_tile > 0 ? options.q_tile : std::max<int64_t>(8, 192 / P.g);
  P.q_tile = std::max<int64_t>(1, std::min(P.q_tile, 1024 / P.g));  // lanes path: at most 1024 lanes
  P.kern = &cpu::attention_kernels(cpu_isa());
  for (int64_t b = 0; b < B; ++b) {
    const SparseMaskRef& ref = masks.size() == 1 ? masks[0] : masks[b];
    const std::string row = "batch row " + std::to_string(b) + ": ";
    check(ref.block_mask != nullptr && ref.mask != nullptr, row + "null mask");
    const BlockMask& bm = *ref.block_mask;
    check(bm.block_size > 0 && static_cast<int64_t>(bm.full_offsets.size()) == bm.num_q_blocks + 1 &&
              static_cast<int64_t>(bm.partial_offsets.size()) == bm.num_q_blocks + 1 &&
              bm.num_q_blocks * bm.block_size >= bm.q_len,
          row + "malformed block mask");
    check(ref.mask->length() >= std::max(bm.q_len, bm.kv_len),
          row + "attention mask has " + std::to_string(ref.mask->length()) +
              " positions, block mask covers " + std::to_string(std::max(bm.q_len, bm.kv_len)));
    check(ref.mask->spec.visible.size() ==
              static_cast<size_t>(ref.mask->spec.num_groups) * ref.mask->spec.num_groups,
          row + "mask spec visibility matrix has the wrong size");
    check(ref.q_offset >= 0 && ref.k_offset >= 0, row + "negative position offset");
    P.rows.push_back(RowMask{&bm, ref.mask, ref.q_offset, ref.k_offset});
  }

  const at::Tensor q = usable(q_in), k = usable(k_in), v = usable(v_in);
  BlockSparseAttentionResult res;
  res.out = at::zeros({B, H, Lq, d}, q_in.options());
  float* lse = nullptr;
  if (options.return_lse) {
    res.lse = at::full({B, H, Lq}, -std::numeric_limits<float>::infinity(), q_in.options().dtype(at::kFloat));
    lse = res.lse.data_ptr<float>();
  }
  if (B == 0 || H == 0 || Lq == 0) return res;
  if (dtype == at::kFloat)
    launch<float>(P, q, k, v, res.out, lse);
  else
    launch<c10::BFloat16>(P, q, k, v, res.out, lse);
  return res;
}

at::Tensor block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const BlockMask& block_mask, const AttentionMask& mask,
                                  int64_t q_offset, int64_t k_offset, double scale) {
  BlockSparseAttentionOptions opt;
  opt.scale = scale;
  return block_sparse_attention(q, k, v, {SparseMaskRef{&block_mask, &mask, q_offset, k_offset}}, opt).out;
}


at::Tensor block_sparse_attention_groups(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         const std::vector<AttentionMask>& masks, double scale,
                                         int64_t q_offset, int64_t k_offset, int64_t block_size) {
  check(q.dim() == 4 && k.dim() == 4, "q and k must be 4-D");
  const int64_t B = q.size(0), Lq = q.size(2), Lk = k.size(2);
  check(masks.size() == 1 || static_cast<int64_t>(masks.size()) == B,
        "need one AttentionMask per batch row (" + std::to_string(B) + ") or one for all, got " +
            std::to_string(masks.size()));
  check(q_offset >= 0 && k_offset >= 0, "negative q_offset/k_offset");
  std::vector<BlockMask> blocks;
  blocks.reserve(masks.size());
  std::vector<SparseMaskRef> refs;
  for (size_t b = 0; b < masks.size(); ++b) {
    const AttentionMask& m = masks[b];
    check(m.length() >= q_offset + Lq && m.length() >= k_offset + Lk,
          "AttentionMask of row " + std::to_string(b) + " covers " + std::to_string(m.length()) +
              " positions, attention needs queries up to " + std::to_string(q_offset + Lq) +
              " and keys up to " + std::to_string(k_offset + Lk));
    blocks.push_back(build_block_mask_rows(m, block_size, q_offset, q_offset + Lq));
  }
  for (size_t b = 0; b < masks.size(); ++b) refs.push_back(SparseMaskRef{&blocks[b], &masks[b], q_offset, k_offset});
  BlockSparseAttentionOptions opt;
  opt.scale = scale;
  return block_sparse_attention(q, k, v, refs, opt).out;
}

}  // namespace flexgen
