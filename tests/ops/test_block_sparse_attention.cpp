// Exactness of the block-sparse attention kernel against a dense fp64 reference with the
// materialised mask.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "flexgen/attention.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/block_mask.h"
#include "cpu/block_sparse_attention.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "../attention_reference.h"
#include "../random_masks.h"

using namespace flexgen;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using flexgen::testing::random_spec;

SequenceLayout random_layout(std::mt19937& rng, int max_seg = 60) {
  return flexgen::testing::random_layout(rng, {6, 2, max_seg, 30, 20});
}

struct Case {
  SequenceLayout layout;
  AttentionMask mask;
  BlockMask bm;
};

Case make_case(const SequenceLayout& layout, const MaskSpec& spec, int64_t block) {
  Case c{layout, make_attention_mask(layout, spec), {}};
  c.bm = build_block_mask(layout, spec, block);
  return c;
}

// The dense fp64 reference (tests/attention_reference.h): out [B, H, Lq, d] and lse [B, H, Lq].
std::pair<at::Tensor, at::Tensor> reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const std::vector<SparseMaskRef>& masks, double scale) {
  return flexgen::testing::dense_attention_fp64(
      q, k, v,
      [&](int64_t b) {
        const SparseMaskRef& r = masks.size() == 1 ? masks[0] : masks[b];
        return flexgen::testing::allowed_pairs(*r.mask, r.block_mask->q_len, r.block_mask->kv_len, r.q_offset,
                                               r.k_offset, q.size(2), k.size(2));
      },
      scale);
}

// Kernel vs reference; fp32 within 1e-5, bf16 within 2^-8 relative + 1e-5 (see below).
void expect_close(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const std::vector<SparseMaskRef>& masks, BlockSparseAttentionOptions opt,
                  const std::string& what) {
  opt.return_lse = true;
  const BlockSparseAttentionResult got = block_sparse_attention(q, k, v, masks, opt);
  auto [ref, ref_lse] = reference(q, k, v, masks, opt.scale);
  ASSERT_EQ(got.out.scalar_type(), q.scalar_type());
  ASSERT_EQ(got.out.sizes(), q.sizes());
  const at::Tensor o = got.out.to(at::kDouble);
  ASSERT_FALSE(o.isnan().any().item<bool>()) << what;
  const at::Tensor diff = (o - ref).abs();
  // bf16: inputs are exact bf16 values, the kernel works in fp32 (error ~1e-6) and rounds the
  // output once to bf16 (at most half an ulp = 2^-9 relative); 2^-8 relative leaves a 2x margin.
  const double rel = q.scalar_type() == at::kBFloat16 ? std::ldexp(1.0, -8) : 0.0;
  const at::Tensor bound = ref.abs() * rel + 1e-5;
  const bool ok = (diff <= bound).all().item<bool>();
  EXPECT_TRUE(ok) << what << ": max abs error " << diff.max().item<double>();
  // lse: -inf exactly where the reference is -inf, else within 1e-5 (relative for large values).
  const at::Tensor gl = got.lse.to(at::kDouble);
  const at::Tensor ref_inf = ref_lse == -kInf, got_inf = gl == -kInf;
  EXPECT_TRUE(at::equal(ref_inf, got_inf)) << what << ": lse -inf pattern differs";
  const at::Tensor fin = ref_inf.logical_not();
  if (fin.any().item<bool>()) {
    const at::Tensor le = (gl.masked_select(fin) - ref_lse.masked_select(fin)).abs();
    const at::Tensor lb = ref_lse.masked_select(fin).abs() * 1e-6 + 1e-5;
    EXPECT_TRUE((le <= lb).all().item<bool>()) << what << ": lse error " << le.max().item<double>();
  }
}

at::Tensor randn(std::vector<int64_t> shape, at::ScalarType t, at::Generator& gen) {
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(t);
}

// Every test runs on every instruction-set path this CPU can execute (portable C++ included).
class BlockSparseAttention : public ::testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override {
    gen_ = at::make_generator<at::CPUGeneratorImpl>(1234);
    set_cpu_isa(GetParam());
  }
  void TearDown() override { set_cpu_isa(best_cpu_isa()); }
  at::Generator gen_;
};

}  // namespace

// Random layouts and groups, GQA ratios 1/3/4, head_dim 64/128/80, block sizes 16..128.
TEST_P(BlockSparseAttention, RandomLayoutsMatchDenseReference) {
  std::mt19937 rng(7);
  const int64_t ratios[] = {1, 3, 4};
  const int64_t dims[] = {64, 128, 80};
  const int64_t blocks[] = {16, 32, 48, 64, 128};
  for (int it = 0; it < 30; ++it) {
    const SequenceLayout layout = random_layout(rng);
    const MaskSpec spec = random_spec(layout, rng, it % 3 == 0);
    const int64_t block = blocks[it % 5];
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length();
    const int64_t g = ratios[it % 3], d = dims[(it / 3) % 3], Hkv = 1 + it % 2;
    const at::ScalarType dt = it % 4 == 3 ? at::kBFloat16 : at::kFloat;
    at::Tensor q = randn({1, Hkv * g, L, d}, dt, gen_), k = randn({1, Hkv, L, d}, dt, gen_),
               v = randn({1, Hkv, L, d}, dt, gen_);
    BlockSparseAttentionOptions opt;
    if (it % 5 == 1) opt.q_tile = 7;  // tiles smaller than and unaligned to the block
    if (it % 6 == 4) opt.scale = 0.3;
    expect_close(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, opt,
                 "it " + std::to_string(it) + " L " + std::to_string(L) + " block " +
                     std::to_string(block) + " g " + std::to_string(g) + " d " + std::to_string(d));
  }
}

// The generic builder gives the same block mask, and so the same result.
TEST_P(BlockSparseAttention, GenericBlockMask) {
  std::mt19937 rng(11);
  const SequenceLayout layout = random_layout(rng);
  const MaskSpec spec = random_spec(layout, rng, false);
  const AttentionMask mask = make_attention_mask(layout, spec);
  const int64_t L = layout.length();
  const BlockMask bm = build_block_mask_generic(L, L, 32, [&](int64_t a, int64_t b) { return mask.allowed(a, b); });
  at::Tensor q = randn({1, 4, L, 64}, at::kFloat, gen_), k = randn({1, 2, L, 64}, at::kFloat, gen_),
             v = randn({1, 2, L, 64}, at::kFloat, gen_);
  expect_close(q, k, v, {SparseMaskRef{&bm, &mask, 0, 0}}, {}, "generic");
}

// Rows with nothing allowed give zeros and lse = -inf, never NaN or uniform attention.
TEST_P(BlockSparseAttention, FullyMaskedRowsAreZero) {
  const SequenceLayout layout = layout_from_lengths({20, 1, 37}, true, 5, 2, 3);
  MaskSpec spec = default_mask_spec(layout);
  const int32_t para1 = layout.spans[3].group;  // BOS, context, para 0, sep, para 1 (1 token)
  for (int32_t k = 0; k < spec.num_groups; ++k) spec.set(para1, k, false);
  const int32_t para0 = layout.spans[2].group;
  for (int32_t k = 0; k < spec.num_groups; ++k) spec.set(para0, k, false);
  for (int64_t block : {16, 64}) {
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length();
    for (auto dt : {at::kFloat, at::kBFloat16}) {
      at::Tensor q = randn({1, 3, L, 64}, dt, gen_), k = randn({1, 1, L, 64}, dt, gen_),
                 v = randn({1, 1, L, 64}, dt, gen_);
      BlockSparseAttentionOptions opt;
      opt.return_lse = true;
      const auto res = block_sparse_attention(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, opt);
      const auto span = layout.spans[2];
      EXPECT_EQ(res.out.slice(2, span.start, span.end).abs().max().item<float>(), 0.0f);
      EXPECT_TRUE((res.lse.slice(2, span.start, span.end) == -std::numeric_limits<float>::infinity())
                      .all()
                      .item<bool>());
      expect_close(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, {}, "masked rows");
    }
  }
}

// Single-token segments everywhere.
TEST_P(BlockSparseAttention, SingleTokenSegments) {
  const SequenceLayout layout = layout_from_lengths({1, 1, 1, 1, 1, 1, 1}, true, 1, 1, 1);
  const MaskSpec spec = default_mask_spec(layout);
  for (int64_t block : {16, 128}) {
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length();
    at::Tensor q = randn({1, 8, L, 80}, at::kFloat, gen_), k = randn({1, 2, L, 80}, at::kFloat, gen_),
               v = randn({1, 2, L, 80}, at::kFloat, gen_);
    expect_close(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, {}, "single tokens");
  }
}

// A prefill in chunks at offsets that are not multiples of the block size, against a cache
// holding everything before the chunk; plus decode steps (Lq = 1) at the end.
TEST_P(BlockSparseAttention, PrefillChunksAtOffsetAndDecode) {
  std::mt19937 rng(3);
  for (int it = 0; it < 6; ++it) {
    const SequenceLayout layout = random_layout(rng, 90);
    const MaskSpec spec = random_spec(layout, rng, false);
    const int64_t block = it % 2 ? 32 : 64;
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length(), g = it % 3 == 0 ? 4 : 3, d = it % 2 ? 128 : 64;
    const at::ScalarType dt = it == 5 ? at::kBFloat16 : at::kFloat;
    at::Tensor q = randn({1, 2 * g, L, d}, dt, gen_), k = randn({1, 2, L, d}, dt, gen_),
               v = randn({1, 2, L, d}, dt, gen_);
    const at::Tensor whole = block_sparse_attention(q, k, v, c.bm, c.mask);
    int64_t off = 0;
    while (off < L) {
      const int64_t n = std::min<int64_t>(L - off, 1 + rng() % 50);
      const at::Tensor qc = q.slice(2, off, off + n), kc = k.slice(2, 0, off + n), vc = v.slice(2, 0, off + n);
      const std::vector<SparseMaskRef> m{SparseMaskRef{&c.bm, &c.mask, off, 0}};
      expect_close(qc, kc, vc, m, {}, "chunk at " + std::to_string(off));
      const at::Tensor part = block_sparse_attention(qc, kc, vc, c.bm, c.mask, off, 0);
      if (dt == at::kFloat && spec.causal) {  // non-causal chunks legitimately miss later keys
        EXPECT_LE((part - whole.slice(2, off, off + n)).abs().max().item<float>(), 1e-5f);
      }
      off += n;
    }
    // Decode steps: one query row at the last positions.
    for (int64_t p = std::max<int64_t>(0, L - 3); p < L; ++p) {
      const std::vector<SparseMaskRef> m{SparseMaskRef{&c.bm, &c.mask, p, 0}};
      expect_close(q.slice(2, p, p + 1), k.slice(2, 0, p + 1), v.slice(2, 0, p + 1), m, {},
                   "decode at " + std::to_string(p));
    }
  }
}

// Keys that start at an offset (a cache that dropped its first positions).
TEST_P(BlockSparseAttention, KeyOffset) {
  const SequenceLayout layout = layout_from_lengths({40, 33, 51}, true, 9, 2, 7);
  const MaskSpec spec = default_mask_spec(layout);
  const Case c = make_case(layout, spec, 32);
  const int64_t L = layout.length();
  at::Tensor q = randn({1, 3, L, 64}, at::kFloat, gen_), k = randn({1, 1, L, 64}, at::kFloat, gen_),
             v = randn({1, 1, L, 64}, at::kFloat, gen_);
  for (int64_t koff : {1, 17, 40}) {
    const std::vector<SparseMaskRef> m{SparseMaskRef{&c.bm, &c.mask, 50, koff}};
    expect_close(q.slice(2, 50), k.slice(2, koff), v.slice(2, koff), m, {}, "k_offset " + std::to_string(koff));
  }
}

// Batch rows with different layouts (padded to the longest), and a shared mask.
TEST_P(BlockSparseAttention, BatchWithDifferentLayouts) {
  std::mt19937 rng(5);
  std::vector<Case> cases;
  int64_t Lmax = 0;
  for (int b = 0; b < 3; ++b) {
    const SequenceLayout layout = random_layout(rng);
    cases.push_back(make_case(layout, random_spec(layout, rng, b == 1), 16 << b));
    Lmax = std::max(Lmax, layout.length());
  }
  for (auto dt : {at::kFloat, at::kBFloat16}) {
    at::Tensor q = randn({3, 6, Lmax, 64}, dt, gen_), k = randn({3, 2, Lmax, 64}, dt, gen_),
               v = randn({3, 2, Lmax, 64}, dt, gen_);
    std::vector<SparseMaskRef> m;
    for (const Case& c : cases) m.push_back(SparseMaskRef{&c.bm, &c.mask, 0, 0});
    expect_close(q, k, v, m, {}, "batch");
    // Padding rows past a shorter row's mask are zeros.
    const at::Tensor out = block_sparse_attention(q, k, v, m).out;
    for (int b = 0; b < 3; ++b) {
      const int64_t len = cases[b].layout.length();
      if (len < Lmax) {
        EXPECT_EQ(out[b].slice(1, len).abs().max().item<float>(), 0.0f);
      }
    }
    // Shared mask for all rows.
    const Case& c0 = cases[0];
    const int64_t L0 = c0.layout.length();
    expect_close(q.slice(2, 0, L0), k.slice(2, 0, L0), v.slice(2, 0, L0), {SparseMaskRef{&c0.bm, &c0.mask, 0, 0}},
                 {}, "shared");
  }
}

// Strided views (a [B, L, H, d] tensor transposed) work without copies by the caller.
TEST_P(BlockSparseAttention, StridedInputs) {
  const SequenceLayout layout = layout_from_lengths({30, 41, 25}, true, 12, 1, 4);
  const Case c = make_case(layout, default_mask_spec(layout), 32);
  const int64_t L = layout.length();
  at::Tensor q = randn({2, L, 6, 64}, at::kFloat, gen_).transpose(1, 2);
  at::Tensor k = randn({2, L, 2, 64}, at::kFloat, gen_).transpose(1, 2);
  at::Tensor v = randn({2, L, 2, 64}, at::kFloat, gen_).transpose(1, 2);
  expect_close(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, {}, "strided");
}

// Runs over many key blocks (longer than one run), a longer sequence, 1 and 2 threads.
TEST_P(BlockSparseAttention, LongerSequenceAndThreads) {
  const SequenceLayout layout = layout_from_lengths({300, 250, 280}, true, 150, 0, 20);
  const MaskSpec spec = default_mask_spec(layout);
  const Case c = make_case(layout, spec, 16);
  const int64_t L = layout.length();
  at::Tensor q = randn({1, 3, L, 64}, at::kFloat, gen_), k = randn({1, 1, L, 64}, at::kFloat, gen_),
             v = randn({1, 1, L, 64}, at::kFloat, gen_);
  const int threads = at::get_num_threads();
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    expect_close(q, k, v, {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, {}, "threads " + std::to_string(t));
  }
  at::set_num_threads(threads);
}

TEST_P(BlockSparseAttention, BadInputsThrow) {
  const SequenceLayout layout = layout_from_lengths({10, 10}, true, 0, 0, 0);
  const Case c = make_case(layout, default_mask_spec(layout), 16);
  const int64_t L = layout.length();
  at::Tensor q = at::randn({1, 4, L, 64}), k = at::randn({1, 3, L, 64}), v = at::randn({1, 3, L, 64});
  EXPECT_THROW(block_sparse_attention(q, k, v, c.bm, c.mask), std::invalid_argument);  // 4 % 3
  at::Tensor k2 = at::randn({1, 2, L, 64}), v2 = at::randn({1, 2, L, 32});
  EXPECT_THROW(block_sparse_attention(q, k2, v2, c.bm, c.mask), std::invalid_argument);
  EXPECT_THROW(block_sparse_attention(q.to(at::kDouble), k2.to(at::kDouble), k2.to(at::kDouble), c.bm, c.mask),
               std::invalid_argument);
  const std::vector<SparseMaskRef> two(2, SparseMaskRef{&c.bm, &c.mask, 0, 0});
  EXPECT_THROW(block_sparse_attention(q, k2, k2, two), std::invalid_argument);
  AttentionMask short_mask = c.mask;
  short_mask.group_ids.resize(5);
  EXPECT_THROW(block_sparse_attention(q, k2, k2, c.bm, short_mask), std::invalid_argument);
}

// The row-restricted analytic builder equals build_block_mask on the requested rows.
TEST(BlockMaskRows, MatchesAnalyticBuilderOnRequestedRows) {
  std::mt19937 rng(21);
  for (int it = 0; it < 40; ++it) {
    const SequenceLayout layout = random_layout(rng);
    const MaskSpec spec = random_spec(layout, rng, it % 2 == 0);
    const int64_t block = 8 << (it % 5);
    const AttentionMask mask = make_attention_mask(layout, spec);
    const BlockMask ref = build_block_mask(layout, spec, block);
    const int64_t L = layout.length();
    const int64_t a = rng() % L, b = a + 1 + rng() % (L - a);
    const BlockMask got = build_block_mask_rows(mask, block, a, b);
    ASSERT_EQ(got.num_q_blocks, ref.num_q_blocks);
    for (int64_t qb = 0; qb < ref.num_q_blocks; ++qb) {
      const bool used = qb * block < b && (qb + 1) * block > a;
      for (int64_t kb = 0; kb < ref.num_kv_blocks; ++kb)
        ASSERT_EQ(got.classify(qb, kb), used ? ref.classify(qb, kb) : BlockClass::Empty)
            << it << " " << qb << " " << kb;
    }
    if (a == 0 && b == L) {
      EXPECT_EQ(got.allowed_pairs, ref.allowed_pairs);
    }
  }
  AttentionMask bad = make_attention_mask(layout_from_lengths({3}, true, 0, 0, 0),
                                          default_mask_spec(layout_from_lengths({3}, true, 0, 0, 0)));
  bad.group_ids[1] = 99;
  EXPECT_THROW(build_block_mask_rows(bad, 16, 0, 4), std::invalid_argument);
}

// The model's entry point (group masks) agrees with the dense reference attention of
// include/flexgen/attention.h on prefill, chunks and decode, batch rows with their own masks.
TEST_P(BlockSparseAttention, GroupsEntryMatchesAttentionDense) {
  std::mt19937 rng(9);
  std::vector<AttentionMask> masks;
  int64_t L = 0;
  for (int b = 0; b < 2; ++b) {
    const SequenceLayout layout = layout_from_lengths({40 + 13 * b, 27, 35}, true, 10 * b, 2, 0);
    masks.push_back(make_attention_mask(layout, default_mask_spec(layout)));
    L = std::max(L, layout.length());
  }
  // Pad the shorter row's mask to L as generated tokens (its own group sees everything).
  for (auto& m : masks)
    while (m.length() < L) m.group_ids.push_back(m.group_ids.back());
  for (auto dt : {at::kFloat, at::kBFloat16}) {
    at::Tensor q = randn({2, 6, L, 64}, dt, gen_), k = randn({2, 2, L, 64}, dt, gen_),
               v = randn({2, 2, L, 64}, dt, gen_);
    const double scale = 0.125;
    for (auto [off, n] : std::vector<std::pair<int64_t, int64_t>>{{0, L}, {37, 20}, {L - 1, 1}}) {
      const at::Tensor qc = q.slice(2, off, off + n), kc = k.slice(2, 0, off + n), vc = v.slice(2, 0, off + n);
      const at::Tensor got = block_sparse_attention_groups(qc, kc, vc, masks, scale, off, 0, 32);
      // The kernel keeps scores, P and the accumulator in fp32 and rounds the output to the input
      // dtype once, so the reference is the fp32 dense path on the same (exactly widened) inputs.
      // bf16: the output is that fp32 result rounded once, i.e. within one bf16 ulp (2^-7 of
      // the magnitude) plus fp32 summation-order noise, on every ISA path (not a tuned number).
      const at::Tensor ref = attention_dense(qc.to(at::kFloat), kc.to(at::kFloat), vc.to(at::kFloat),
                                             BatchMask::rows(masks), scale, off, 0);
      const at::Tensor err = (got.to(at::kFloat) - ref).abs();
      const at::Tensor bound = dt == at::kFloat ? at::full_like(ref, 1e-5) : ref.abs() * std::ldexp(1.0, -7) + 1e-5;
      EXPECT_TRUE((err <= bound).all().item<bool>())
          << "offset " << off << ", dtype " << dt << ": max error " << err.max().item<float>()
          << ", worst error / bound " << (err / bound).max().item<float>();
    }
  }
  at::Tensor q = at::randn({2, 6, L, 64}), k = at::randn({2, 2, L + 1, 64});
  EXPECT_THROW(block_sparse_attention_groups(q, k, k, masks, 0.125, 0, 0), std::invalid_argument);
}

// BatchMask::causal() maps to one group that sees itself, causal.
TEST_P(BlockSparseAttention, PlainCausalAsOneGroup) {
  const int64_t L = 150;
  AttentionMask causal;
  causal.group_ids.assign(L, 0);
  causal.spec.num_groups = 1;
  causal.spec.visible = {1};
  causal.spec.causal = true;
  at::Tensor q = randn({1, 4, L, 128}, at::kFloat, gen_), k = randn({1, 1, L, 128}, at::kFloat, gen_),
             v = randn({1, 1, L, 128}, at::kFloat, gen_);
  const at::Tensor got = block_sparse_attention_groups(q.slice(2, 100), k, v, {causal}, 0.1, 100, 0);
  const at::Tensor ref = attention_dense(q.slice(2, 100), k, v, BatchMask::causal(), 0.1, 100, 0);
  EXPECT_LE((got - ref).abs().max().item<float>(), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(IsaPaths, BlockSparseAttention, ::testing::ValuesIn(runnable_cpu_isas()),
                         [](const ::testing::TestParamInfo<CpuIsa>& i) { return std::string(to_string(i.param)); });

namespace {

// One random problem: a batch of rows with their own layouts and masks, at an offset (prefill
// chunk) or one query row each (decode); fp32 or bf16; head_dim even or odd.
struct Problem {
  std::vector<AttentionMask> masks;
  std::vector<BlockMask> blocks;
  at::Tensor q, k, v;
  int64_t q_offset = 0;
};

Problem random_problem(std::mt19937& rng, at::Generator& gen, int it) {
  Problem p;
  const int64_t B = 1 + it % 3, g = 1 + it % 4, Hkv = 1 + (it / 4) % 2;
  const int64_t dims[] = {64, 128, 80, 37};
  const int64_t d = dims[it % 4];
  const at::ScalarType dt = it % 2 == 0 ? at::kBFloat16 : at::kFloat;
  int64_t L = 0;
  for (int64_t b = 0; b < B; ++b) {
    const SequenceLayout layout = random_layout(rng, 50);
    p.masks.push_back(make_attention_mask(layout, random_spec(layout, rng, it % 3 == 0)));
    L = std::max(L, layout.length());
  }
  for (auto& m : p.masks)
    while (m.length() < L) m.group_ids.push_back(m.group_ids.back());
  const int64_t mode = it % 3;  // 0: whole prefill, 1: chunk at an offset, 2: decode (one row)
  p.q_offset = mode == 0 ? 0 : mode == 1 ? L / 3 : L - 1;
  const int64_t Lq = mode == 0 ? L : mode == 1 ? L - L / 3 : 1;
  const int64_t block = 16 << (it % 3);
  for (const auto& m : p.masks) p.blocks.push_back(build_block_mask_rows(m, block, p.q_offset, p.q_offset + Lq));
  p.q = randn({B, Hkv * g, Lq, d}, dt, gen) * 2;
  p.k = randn({B, Hkv, L, d}, dt, gen);
  p.v = randn({B, Hkv, L, d}, dt, gen);
  return p;
}

BlockSparseAttentionResult run(const Problem& p, int64_t q_tile = 0) {
  std::vector<SparseMaskRef> refs;
  for (size_t b = 0; b < p.masks.size(); ++b) refs.push_back(SparseMaskRef{&p.blocks[b], &p.masks[b], p.q_offset, 0});
  BlockSparseAttentionOptions opt;
  opt.return_lse = true;
  opt.q_tile = q_tile;
  return block_sparse_attention(p.q, p.k, p.v, refs, opt);
}

}  // namespace

// Every instruction-set path gives bitwise the portable C++ result (fp32 and bf16, odd head_dim,
// prefill, chunks, decode, GQA).
TEST(BlockSparseAttentionPaths, EveryPathEqualsPortableBitwise) {
  std::mt19937 rng(3);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(77);
  for (int it = 0; it < 24; ++it) {
    const Problem p = random_problem(rng, gen, it);
    set_cpu_isa(CpuIsa::Portable);
    const BlockSparseAttentionResult ref = run(p);
    for (CpuIsa isa : runnable_cpu_isas()) {
      set_cpu_isa(isa);
      const BlockSparseAttentionResult got = run(p);
      EXPECT_TRUE(at::equal(got.out, ref.out)) << "it " << it << " path " << to_string(isa) << " dtype "
                                               << p.q.scalar_type() << " d " << p.q.size(3);
      EXPECT_TRUE(at::equal(got.lse, ref.lse)) << "it " << it << " path " << to_string(isa);
    }
  }
  set_cpu_isa(best_cpu_isa());
}

// A row's result does not depend on the tile size, the threads, or the other rows of the batch
// and how long their caches are (each row alone, with its keys cut to its own length, equals
// the row in the batch).
TEST(BlockSparseAttentionPaths, ARowsResultDependsOnItsOwnInputsOnly) {
  std::mt19937 rng(5);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(99);
  const int threads = at::get_num_threads();
  for (int it = 0; it < 12; ++it) {
    const Problem p = random_problem(rng, gen, it);
    const BlockSparseAttentionResult all = run(p);
    for (int64_t tile : {1, 7, 64}) EXPECT_TRUE(at::equal(run(p, tile).out, all.out)) << "it " << it << " tile " << tile;
    at::set_num_threads(1);
    EXPECT_TRUE(at::equal(run(p).out, all.out)) << "it " << it << " one thread";
    at::set_num_threads(threads);
    for (size_t b = 0; b < p.masks.size(); ++b) {
      Problem one;
      one.masks = {p.masks[b]};
      one.blocks = {p.blocks[b]};
      one.q_offset = p.q_offset;
      const int64_t own = std::min<int64_t>(p.k.size(2), p.q_offset + p.q.size(2));  // keys a causal row can need
      one.q = p.q.narrow(0, b, 1);
      one.k = p.k.narrow(0, b, 1).narrow(2, 0, own);
      one.v = p.v.narrow(0, b, 1).narrow(2, 0, own);
      const BlockSparseAttentionResult alone = run(one);
      if (!p.masks[b].spec.causal) continue;  // non-causal rows may see keys past the queries
      EXPECT_TRUE(at::equal(alone.out, all.out.narrow(0, b, 1))) << "it " << it << " row " << b;
    }
  }
}
