// Parity of the CUDA block-sparse attention kernel with a dense fp64 reference (computed on the
// GPU from the materialised mask) and with the CPU kernel. Skipped when no CUDA device is present.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include "flexgen/block_mask.h"
#include "cpu/block_sparse_attention.h"
#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/bsa_params.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "../attention_reference.h"
#include "../random_masks.h"

using namespace flexgen;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using flexgen::testing::random_spec;

SequenceLayout random_layout(std::mt19937& rng, int max_seg = 150) {
  return flexgen::testing::random_layout(rng, {6, 2, max_seg, 60, 40});
}

struct Case {
  AttentionMask mask;
  BlockMask bm;
  DeviceBlockMask dm;
};

Case make_case(const SequenceLayout& layout, const MaskSpec& spec, int64_t block) {
  Case c;
  c.mask = make_attention_mask(layout, spec);
  c.bm = build_block_mask(layout, spec, block);
  c.dm = upload_block_mask(c.bm, c.mask, at::Device(at::kCUDA, 0));
  return c;
}

struct RowRef {
  const Case* c;
  int64_t q_offset, k_offset;
};

// The dense fp64 reference (tests/attention_reference.h) on the GPU: out [B, H, Lq, d], lse [B, H, Lq].
std::pair<at::Tensor, at::Tensor> reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const std::vector<RowRef>& rows, double scale) {
  return flexgen::testing::dense_attention_fp64(
      q, k, v,
      [&](int64_t b) {
        const RowRef& r = rows.size() == 1 ? rows[0] : rows[b];
        return flexgen::testing::allowed_pairs(r.c->mask, r.c->bm.q_len, r.c->bm.kv_len, r.q_offset, r.k_offset,
                                               q.size(2), k.size(2));
      },
      scale);
}

std::vector<DeviceMaskRef> refs(const std::vector<RowRef>& rows) {
  std::vector<DeviceMaskRef> m;
  for (const RowRef& r : rows) m.push_back(DeviceMaskRef{&r.c->dm, r.q_offset, r.k_offset});
  return m;
}

// Kernel vs reference. 16-bit operands, fp32 accumulation, P rounded to 16 bits for the P.V
// product and the output rounded once: per element |err| <= 1e-2 + 1e-2 |ref| (bf16; 4x
// tighter for fp16) and ||err|| / ||ref|| <= 4e-3 (bf16), 1e-3 (fp16). lse within 1e-3.
void expect_close(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<RowRef>& rows,
                  BlockSparseAttentionOptions opt, const std::string& what) {
  opt.return_lse = true;
  {  // poison the memory the caching allocator will hand out for the output
    at::Tensor poison = at::full({q.size(0), q.size(1), q.size(2), q.size(3)},
                                 std::numeric_limits<float>::quiet_NaN(), q.options());
  }
  const BlockSparseAttentionResult got = block_sparse_attention_cuda(q, k, v, refs(rows), opt);
  auto [ref, ref_lse] = reference(q, k, v, rows, opt.scale);
  ASSERT_EQ(got.out.scalar_type(), q.scalar_type()) << what;
  ASSERT_EQ(got.out.sizes(), q.sizes()) << what;
  const at::Tensor o = got.out.to(at::kDouble);
  ASSERT_FALSE(o.isnan().any().item<bool>()) << what << ": NaN in output";
  const bool bf = q.scalar_type() == at::kBFloat16;
  const double tol = bf ? 1e-2 : 2.5e-3, rel_tol = bf ? 4e-3 : 1e-3;
  const at::Tensor diff = (o - ref).abs();
  const bool ok = (diff <= ref.abs() * tol + tol).all().item<bool>();
  EXPECT_TRUE(ok) << what << ": max abs error " << diff.max().item<double>();
  const double rn = ref.norm().item<double>();
  if (rn > 0) {
    const double rel = (o - ref).norm().item<double>() / rn;
    EXPECT_LE(rel, rel_tol) << what << ": relative error " << rel;
  } else {
    EXPECT_EQ(o.abs().max().item<double>(), 0.0) << what;
  }
  const at::Tensor gl = got.lse.to(at::kDouble);
  const at::Tensor ref_inf = ref_lse == -kInf, got_inf = gl == -kInf;
  EXPECT_TRUE(at::equal(ref_inf, got_inf)) << what << ": lse -inf pattern differs";
  const at::Tensor fin = ref_inf.logical_not();
  if (fin.any().item<bool>()) {
    const at::Tensor le = (gl.masked_select(fin) - ref_lse.masked_select(fin)).abs();
    EXPECT_LE(le.max().item<double>(), 1e-3) << what << ": lse error";
  }
}

at::Tensor randn(std::vector<int64_t> shape, at::ScalarType t, at::Generator& gen) {
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(t).to(at::kCUDA);
}

class BlockSparseAttentionCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!at::hasCUDA() || !cuda_block_sparse_attention_available()) GTEST_SKIP() << "no CUDA device";
    gen_ = at::make_generator<at::CPUGeneratorImpl>(4321);
  }
  at::Generator gen_;
};

// Three random causal layouts for decode rows (2-4 segments of 60 + [0, spread) tokens: spread0
// for the first layout, spread for the others; the second with random groups).
std::vector<Case> decode_cases(std::mt19937& rng, int64_t block, uint32_t spread0, uint32_t spread) {
  std::vector<Case> cases;
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> lengths(2 + rng() % 3);
    for (auto& n : lengths) n = 60 + rng() % (i == 0 ? spread0 : spread);
    const SequenceLayout layout = layout_from_lengths(lengths, rng() % 2, rng() % 50, rng() % 3, rng() % 20);
    MaskSpec spec = random_spec(layout, rng, i == 1);
    spec.causal = true;  // decode masks are causal
    cases.push_back(make_case(layout, spec, block));
  }
  return cases;
}

// R decode rows over `cases` in turn, each with its query at a random position in [from, length).
std::vector<RowRef> decode_rows(const std::vector<Case>& cases, int64_t R, int64_t from, std::mt19937& rng) {
  std::vector<RowRef> rows;
  for (int64_t r = 0; r < R; ++r) {
    const Case& c = cases[static_cast<size_t>(r) % cases.size()];
    rows.push_back(RowRef{&c, from + static_cast<int64_t>(rng() % static_cast<uint32_t>(c.mask.length() - from)), 0});
  }
  return rows;
}

}  // namespace

// Random layouts and groups (some rows fully masked), GQA 1 and 3, d 64/128, bf16/fp16, block
// sizes 16..256, lengths that are not multiples of the tile, both tile variants.
TEST_F(BlockSparseAttentionCuda, RandomLayoutsMatchDenseReference) {
  std::mt19937 rng(7);
  const int64_t blocks[] = {16, 32, 64, 128, 256, 48};
  for (int it = 0; it < 36; ++it) {
    const SequenceLayout layout = random_layout(rng);
    const MaskSpec spec = random_spec(layout, rng, it % 3 == 0);
    const int64_t block = blocks[it % 6];
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length();
    const int64_t g = it % 2 ? 3 : 1, d = (it / 2) % 2 ? 128 : 64, Hkv = 1 + (it / 4) % 2;
    const at::ScalarType dt = (it / 8) % 2 ? at::kHalf : at::kBFloat16;
    at::Tensor q = randn({1, Hkv * g, L, d}, dt, gen_), k = randn({1, Hkv, L, d}, dt, gen_),
               v = randn({1, Hkv, L, d}, dt, gen_);
    BlockSparseAttentionOptions opt;
    if (it % 5 == 1) opt.q_tile = 64;
    if (it % 6 == 4) opt.scale = 0.3;
    expect_close(q, k, v, {RowRef{&c, 0, 0}}, opt,
                 "it " + std::to_string(it) + " L " + std::to_string(L) + " block " + std::to_string(block) +
                     " g " + std::to_string(g) + " d " + std::to_string(d));
  }
}

// Same inputs through the CPU kernel (bf16): the two implementations agree.
TEST_F(BlockSparseAttentionCuda, MatchesCpuKernel) {
  std::mt19937 rng(19);
  for (int it = 0; it < 4; ++it) {
    const SequenceLayout layout = random_layout(rng, 300);
    const MaskSpec spec = random_spec(layout, rng, it == 1);
    const Case c = make_case(layout, spec, 128);
    const int64_t L = layout.length();
    at::Tensor q = randn({2, 6, L, 128}, at::kBFloat16, gen_), k = randn({2, 2, L, 128}, at::kBFloat16, gen_),
               v = randn({2, 2, L, 128}, at::kBFloat16, gen_);
    BlockSparseAttentionOptions opt;
    opt.return_lse = true;
    const auto cpu = block_sparse_attention(q.cpu(), k.cpu(), v.cpu(), {SparseMaskRef{&c.bm, &c.mask, 0, 0}}, opt);
    const auto gpu = block_sparse_attention_cuda(q, k, v, {DeviceMaskRef{&c.dm, 0, 0}}, opt);
    const at::Tensor diff = (gpu.out.cpu().to(at::kFloat) - cpu.out.to(at::kFloat)).abs();
    EXPECT_LE(diff.max().item<float>(), 3e-2f) << "it " << it;
    EXPECT_TRUE(at::equal(gpu.lse.cpu() == -INFINITY, cpu.lse == -INFINITY)) << "it " << it;
    const at::Tensor fin = cpu.lse != -INFINITY;
    if (fin.any().item<bool>()) {
      EXPECT_LE((gpu.lse.cpu().masked_select(fin) - cpu.lse.masked_select(fin)).abs().max().item<float>(), 1e-3f);
    }
  }
}

// Rows with nothing allowed: zeros and lse = -inf, never NaN.
TEST_F(BlockSparseAttentionCuda, FullyMaskedRowsAreZero) {
  const SequenceLayout layout = layout_from_lengths({200, 1, 137}, true, 5, 2, 3);
  MaskSpec spec = default_mask_spec(layout);
  for (int s : {2, 3})
    for (int32_t k = 0; k < spec.num_groups; ++k) spec.set(layout.spans[s].group, k, false);
  for (int64_t block : {16, 128}) {
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length();
    for (auto dt : {at::kBFloat16, at::kHalf}) {
      at::Tensor q = randn({1, 3, L, 64}, dt, gen_), k = randn({1, 1, L, 64}, dt, gen_),
                 v = randn({1, 1, L, 64}, dt, gen_);
      BlockSparseAttentionOptions opt;
      opt.return_lse = true;
      const auto res = block_sparse_attention_cuda(q, k, v, {DeviceMaskRef{&c.dm, 0, 0}}, opt);
      const auto span = layout.spans[2];
      EXPECT_EQ(res.out.slice(2, span.start, span.end).abs().max().item<float>(), 0.0f);
      EXPECT_TRUE((res.lse.slice(2, span.start, span.end) == -INFINITY).all().item<bool>());
      expect_close(q, k, v, {RowRef{&c, 0, 0}}, {}, "masked rows");
    }
  }
}

// Prefill in chunks at offsets not aligned to the block, against a cache holding everything
// before the chunk; decode steps (Lq = 1) at the end.
TEST_F(BlockSparseAttentionCuda, PrefillChunksAtOffsetAndDecode) {
  std::mt19937 rng(3);
  for (int it = 0; it < 6; ++it) {
    const SequenceLayout layout = random_layout(rng, 200);
    const MaskSpec spec = random_spec(layout, rng, false);
    const int64_t block = it % 2 ? 64 : 128;
    const Case c = make_case(layout, spec, block);
    const int64_t L = layout.length(), g = it % 3 == 0 ? 1 : 3, d = it % 2 ? 128 : 64;
    const at::ScalarType dt = it % 3 == 2 ? at::kHalf : at::kBFloat16;
    at::Tensor q = randn({1, 2 * g, L, d}, dt, gen_), k = randn({1, 2, L, d}, dt, gen_),
               v = randn({1, 2, L, d}, dt, gen_);
    int64_t off = 0;
    while (off < L) {
      const int64_t n = std::min<int64_t>(L - off, 1 + rng() % 170);
      expect_close(q.slice(2, off, off + n), k.slice(2, 0, off + n), v.slice(2, 0, off + n), {RowRef{&c, off, 0}},
                   {}, "chunk at " + std::to_string(off));
      off += n;
    }
    for (int64_t p = std::max<int64_t>(0, L - 3); p < L; ++p)
      expect_close(q.slice(2, p, p + 1), k.slice(2, 0, p + 1), v.slice(2, 0, p + 1), {RowRef{&c, p, 0}}, {},
                   "decode at " + std::to_string(p));
  }
}

// Keys starting at an offset; query rows past the end of the mask (zeros).
TEST_F(BlockSparseAttentionCuda, KeyOffsetAndRowsPastTheMask) {
  const SequenceLayout layout = layout_from_lengths({140, 33, 251}, true, 9, 2, 7);
  const MaskSpec spec = default_mask_spec(layout);
  const Case c = make_case(layout, spec, 64);
  const int64_t L = layout.length();
  at::Tensor q = randn({1, 3, L, 128}, at::kBFloat16, gen_), k = randn({1, 1, L, 128}, at::kBFloat16, gen_),
             v = randn({1, 1, L, 128}, at::kBFloat16, gen_);
  for (int64_t koff : {1, 17, 100}) {
    expect_close(q.slice(2, 150), k.slice(2, koff), v.slice(2, koff), {RowRef{&c, 150, koff}}, {},
                 "k_offset " + std::to_string(koff));
  }
  // Queries of a longer (padded) batch row: rows past q_len give zeros.
  at::Tensor qp = randn({1, 3, L + 37, 128}, at::kBFloat16, gen_);
  at::Tensor kp = randn({1, 1, L + 37, 128}, at::kBFloat16, gen_), vp = randn({1, 1, L + 37, 128}, at::kBFloat16, gen_);
  expect_close(qp, kp, vp, {RowRef{&c, 0, 0}}, {}, "rows past the mask");
}

// Batch rows with different layouts (padded to the longest), per-row masks and a shared mask;
// q as a strided view of a [B, L, H, d] tensor.
TEST_F(BlockSparseAttentionCuda, BatchWithDifferentLayouts) {
  std::mt19937 rng(5);
  std::vector<Case> cases;
  for (int b = 0; b < 3; ++b) {
    const SequenceLayout layout = random_layout(rng, 250);
    cases.push_back(make_case(layout, random_spec(layout, rng, b == 1), 128));
  }
  int64_t Lmax = 0;
  for (const Case& c : cases) Lmax = std::max(Lmax, c.mask.length());
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    at::Tensor q = randn({3, Lmax, 6, 128}, dt, gen_).transpose(1, 2);  // strided view
    at::Tensor k = randn({3, 2, Lmax, 128}, dt, gen_), v = randn({3, 2, Lmax, 128}, dt, gen_);
    std::vector<RowRef> rows;
    for (const Case& c : cases) rows.push_back(RowRef{&c, 0, 0});
    expect_close(q, k, v, rows, {}, "batch per-row masks");
    const int64_t L0 = cases[0].mask.length();
    expect_close(q.slice(2, 0, L0), k.slice(2, 0, L0), v.slice(2, 0, L0), {RowRef{&cases[0], 0, 0}}, {},
                 "batch shared mask");
  }
}

// A row's outputs do not depend on the pass around it, bit for bit (causal masks, as generation's):
// either query tile (64 or 128 rows), a pass right-padded past the row's prompt (keys and queries there hold other data the
// row's queries cannot see, as where a longer sample shares the pass), a second batch row with
// another mask, and the queries from an offset on (a prefill chunk after a prefix already in the
// cache). Batch-invariant prefill passes of samples of different lengths rely on it.
TEST_F(BlockSparseAttentionCuda, ARowsBitsDoNotDependOnThePassAroundIt) {
  std::mt19937 rng(11);
  const int64_t blocks[] = {16, 64, 128};
  for (int it = 0; it < 12; ++it) {
    const SequenceLayout layout = random_layout(rng);
    MaskSpec spec = random_spec(layout, rng, it % 3 == 0);
    spec.causal = true;  // as every generation mask: no query sees a key after it (the padding)
    const Case c = make_case(layout, spec, blocks[it % 3]);
    const SequenceLayout other_layout = random_layout(rng);
    const Case other = make_case(other_layout, random_spec(other_layout, rng, false), blocks[it % 3]);
    const int64_t Lm = c.mask.length();
    ASSERT_GE(Lm, 2);
    const int64_t L = Lm - 1 - static_cast<int64_t>(rng() % std::min<int64_t>(Lm - 1, 40));  // the prompt
    const int64_t Lpass = std::max(L + 1 + static_cast<int64_t>(rng() % (Lm - L)), other.mask.length());
    const int64_t g = it % 2 ? 3 : 1, d = (it / 2) % 2 ? 128 : 64;
    const at::ScalarType dt = (it / 4) % 2 ? at::kHalf : at::kBFloat16;
    const at::Tensor q = randn({2, 2 * g, Lpass, d}, dt, gen_), k = randn({2, 2, Lpass, d}, dt, gen_),
                     v = randn({2, 2, Lpass, d}, dt, gen_);
    auto run = [&](const at::Tensor& qq, const at::Tensor& kk, const at::Tensor& vv, std::vector<DeviceMaskRef> m,
                   int q_tile) {
      BlockSparseAttentionOptions opt;
      opt.q_tile = q_tile;
      return block_sparse_attention_cuda(qq, kk, vv, m, opt).out;
    };
    const std::string what = "it " + std::to_string(it) + " L " + std::to_string(L) + " pass " + std::to_string(Lpass);
    auto row0 = [&](int64_t n) { return std::vector<at::Tensor>{q[0].narrow(1, 0, n).unsqueeze(0).contiguous(),
                                                               k[0].narrow(1, 0, n).unsqueeze(0).contiguous(),
                                                               v[0].narrow(1, 0, n).unsqueeze(0).contiguous()}; };
    const auto a = row0(L);
    const at::Tensor alone = run(a[0], a[1], a[2], {DeviceMaskRef{&c.dm, 0, 0}}, 128);
    EXPECT_TRUE(at::equal(run(a[0], a[1], a[2], {DeviceMaskRef{&c.dm, 0, 0}}, 64), alone)) << what << ": 64-row tiles";
    const auto p = row0(Lpass);
    for (int tile : {0, 64, 128})
      EXPECT_TRUE(at::equal(run(p[0], p[1], p[2], {DeviceMaskRef{&c.dm, 0, 0}}, tile).narrow(2, 0, L), alone))
          << what << ": right-padded pass, q_tile " << tile;
    const at::Tensor both = run(q, k, v, {DeviceMaskRef{&c.dm, 0, 0}, DeviceMaskRef{&other.dm, 0, 0}}, 0);
    EXPECT_TRUE(at::equal(both[0].narrow(1, 0, L).unsqueeze(0), alone)) << what << ": beside another row";
    const int64_t s = static_cast<int64_t>(rng() % L);
    const at::Tensor chunk = run(a[0].narrow(2, s, L - s).contiguous(), a[1], a[2], {DeviceMaskRef{&c.dm, s, 0}}, 0);
    EXPECT_TRUE(at::equal(chunk, alone.narrow(2, s, L - s))) << what << ": queries from " << s;
  }
}

// The Hopper kernel (wgmma, variants 6-9: two tile sizes, plain and software-pipelined) gives every
// output and lse the bits of the mma.sync kernel with the same key chunks (variants 0 and 2): random layouts and groups (more than 32 in
// some, so the visibility lookup too: 40 segments), block sizes 16-256, GQA 1 and 3, d 64 and 128, bf16 and
// fp16, two batch rows with different masks, queries from an offset, a custom scale.
TEST_F(BlockSparseAttentionCuda, WgmmaKernelGivesTheMmaSyncKernelsBits) {
  if (!cuda_bsa::wgmma_available()) GTEST_SKIP() << "the wgmma kernel needs compute capability 9.0";
  struct VariantGuard {
    ~VariantGuard() { unsetenv("FLEXGEN_CUDA_BSA_VARIANT"); }
  } guard;
  std::mt19937 rng(23);
  const int64_t blocks[] = {16, 32, 64, 128, 256, 48};
  for (int it = 0; it < 24; ++it) {
    SequenceLayout la = random_layout(rng, 300);
    if (it % 8 == 7) {  // 40 segments: more than 32 groups
      std::vector<int64_t> lengths;
      for (int i = 0; i < 40; ++i) lengths.push_back(1 + static_cast<int64_t>(rng() % 12));
      la = layout_from_lengths(lengths, /*bos=*/true, 30, 1, 20);
    }
    const SequenceLayout lb = random_layout(rng, 300);
    const Case ca = make_case(la, random_spec(la, rng, it % 3 == 0), blocks[it % 6]);
    const Case cb = make_case(lb, random_spec(lb, rng, it % 4 == 0), blocks[it % 6]);
    const int64_t L = std::max(ca.mask.length(), cb.mask.length());
    const int64_t s = it % 3 == 2 ? static_cast<int64_t>(rng() % (L / 2 + 1)) : 0;
    const int64_t g = it % 2 ? 3 : 1, d = (it / 2) % 2 ? 128 : 64, Hkv = 2;
    const at::ScalarType dt = (it / 4) % 2 ? at::kHalf : at::kBFloat16;
    const at::Tensor q = randn({2, Hkv * g, L - s, d}, dt, gen_), k = randn({2, Hkv, L, d}, dt, gen_),
                     v = randn({2, Hkv, L, d}, dt, gen_);
    BlockSparseAttentionOptions opt;
    opt.return_lse = true;
    if (it % 5 == 3) opt.scale = 0.3;
    const std::vector<DeviceMaskRef> m{DeviceMaskRef{&ca.dm, s, 0}, DeviceMaskRef{&cb.dm, s, 0}};
    for (const auto& [mma_sync, wgmma] : {std::pair{0, 6}, std::pair{2, 7}, std::pair{0, 8}, std::pair{2, 9}}) {
      setenv("FLEXGEN_CUDA_BSA_VARIANT", std::to_string(mma_sync).c_str(), 1);
      const BlockSparseAttentionResult want = block_sparse_attention_cuda(q, k, v, m, opt);
      setenv("FLEXGEN_CUDA_BSA_VARIANT", std::to_string(wgmma).c_str(), 1);
      const BlockSparseAttentionResult got = block_sparse_attention_cuda(q, k, v, m, opt);
      const std::string what = "it " + std::to_string(it) + " L " + std::to_string(L) + " from " + std::to_string(s) +
                               " block " + std::to_string(blocks[it % 6]) + " g " + std::to_string(g) + " d " +
                               std::to_string(d) + " variant " + std::to_string(wgmma);
      ASSERT_FALSE(want.out.isnan().any().item<bool>()) << what;
      EXPECT_TRUE(at::equal(got.out, want.out))
          << what << ": max difference " << (got.out.to(at::kFloat) - want.out.to(at::kFloat)).abs().max().item<float>();
      EXPECT_TRUE(at::equal(got.lse, want.lse)) << what << ": lse";
    }
  }
}

// Batch-invariant decode steps: a row's output is bitwise the same computed alone (its mask in the
// parameters, the cache up to its query) and as one of 70 rows of a device mask table (one
// launch), whatever the other rows' masks and positions; rows listing 1 to 22 key blocks (more than
// the 16 splits), GQA 3, bf16 and fp16; and the reference holds, also where a key window (k_offset)
// leaves a row listing more blocks than the window has (its splits then share CTAs). On sm_90 a row
// alone and a launch of 8 rows merge their splits in thread-block clusters, and the 70-row launch
// in the CTA whose split of the (row, KV head) finishes last (with
// FLEXGEN_CUDA_DECODE_LAST_SPLIT_MERGE=0 in the combine kernel), so this also holds the merges to
// the same bits; both launches run twice (nothing of one launch is left for the next). NaN at the
// keys a row may not see changes none of its bits.
TEST_F(BlockSparseAttentionCuda, DecodeRowsKeepTheirBitsInATableOfManyRows) {
  std::mt19937 rng(29);
  constexpr int64_t kBlock = 64, R = 70, g = 3;
  std::vector<Case> cases = decode_cases(rng, kBlock, 60, 500);
  // And two layouts with the default visibility, whose generated tokens see every group: a short
  // one (its last query lists 6 key blocks) and a long one (its last query lists 23, more than a
  // decode plan holds). Rows 3 and 4 are their last queries.
  for (const std::vector<int64_t>& lengths : {std::vector<int64_t>{150, 120}, std::vector<int64_t>{700, 650}}) {
    const SequenceLayout layout = layout_from_lengths(lengths, true, 30, 1, 40);
    cases.push_back(make_case(layout, default_mask_spec(layout), kBlock));
  }
  int64_t Lk = 0;
  for (const Case& c : cases) Lk = std::max(Lk, c.mask.length());
  std::vector<RowRef> rows = decode_rows(cases, R, 1, rng);
  rows[3].q_offset = cases[3].mask.length() - 1;
  rows[4].q_offset = cases[4].mask.length() - 1;
  BlockSparseAttentionOptions opt;
  opt.batch_invariant = true;
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    const at::Tensor q = randn({R, 2 * g, 1, 128}, dt, gen_), k = randn({R, 2, Lk, 128}, dt, gen_),
                     v = randn({R, 2, Lk, 128}, dt, gen_);
    DeviceMaskTable table = make_device_mask_table(R, kBlock, q.device());
    update_device_mask_table(table, refs(rows));
    if (decode_plans()) {
      // The rows' decode plans cover each kind of row: planned rows whose query's group sees
      // every group, planned rows that look visibility up, and rows listing more key blocks than
      // a plan holds (the kernel walks their lists); among the partial blocks of the rows that
      // look up, open ones (every key visible: no lookups) and others. Each row's bits are checked
      // below against the row alone (no table, no plan) and with NaN at every key it may not see
      // (a block wrongly marked open would let them in).
      const auto* plans = reinterpret_cast<const cuda_bsa::DecodePlan*>(table.plan_staging.data_ptr());
      int unplanned = 0, sees_all = 0, looks_up = 0, open_partial = 0, checked_partial = 0;
      for (int64_t r = 0; r < R; ++r) {
        const cuda_bsa::DecodePlan& P = plans[r];
        if (P.n < 0) ++unplanned;
        else if (P.n > 0 && P.vrow < 0) ++sees_all;
        else if (P.n > 0) ++looks_up;
        if (P.n > 0 && P.vrow >= 0)
          for (int32_t e = P.nf; e < P.n; ++e) ++((P.open >> e) & 1 ? open_partial : checked_partial);
      }
      EXPECT_GT(unplanned, 0);
      EXPECT_GT(sees_all, 0);
      EXPECT_GT(looks_up, 0);
      EXPECT_GT(open_partial, 0);
      EXPECT_GT(checked_partial, 0);
    }
    const at::Tensor all = block_sparse_attention_cuda_table(q, k, v, table, opt).out;
    // Launched again: nothing of one launch is left for the next (its splits' arrival counts).
    EXPECT_TRUE(at::equal(block_sparse_attention_cuda_table(q, k, v, table, opt).out, all)) << "70-row launch, again";
    {
      constexpr int64_t kFew = 8;
      DeviceMaskTable few = make_device_mask_table(kFew, kBlock, q.device());
      update_device_mask_table(few, refs({rows.begin(), rows.begin() + kFew}));
      for (int pass = 0; pass < 2; ++pass) {
        const at::Tensor out = block_sparse_attention_cuda_table(q.narrow(0, 0, kFew), k.narrow(0, 0, kFew),
                                                                 v.narrow(0, 0, kFew), few, opt).out;
        EXPECT_TRUE(at::equal(out, all.narrow(0, 0, kFew))) << "8-row launch, pass " << pass;
      }
    }
    // What a row may not see never reaches its output: NaN in K and V at every slot hidden from its
    // query (other groups, later positions, past its mask) leaves every row's bits as they were.
    {
      at::Tensor hidden = at::zeros({R, 1, Lk, 1}, at::kBool);
      auto h = hidden.accessor<bool, 4>();
      for (int64_t r = 0; r < R; ++r) {
        const RowRef& row = rows[static_cast<size_t>(r)];
        for (int64_t key = 0; key < Lk; ++key)
          h[r][0][key][0] = key >= row.c->mask.length() || !row.c->mask.allowed(row.q_offset, key);
      }
      hidden = hidden.to(q.device());
      const double nan = std::numeric_limits<double>::quiet_NaN();
      const at::Tensor poisoned =
          block_sparse_attention_cuda_table(q, k.masked_fill(hidden, nan), v.masked_fill(hidden, nan), table, opt).out;
      EXPECT_TRUE(at::equal(poisoned, all)) << "NaN at hidden keys changed a row";
    }
    for (int64_t r = 0; r < R; ++r) {
      const RowRef& row = rows[static_cast<size_t>(r)];
      // Alone: the cache up to the row's query only (another grid, the same arithmetic).
      const int64_t n = row.q_offset + 1;
      const at::Tensor qr = q.narrow(0, r, 1), kr = k.narrow(0, r, 1).narrow(2, 0, n), vr = v.narrow(0, r, 1).narrow(2, 0, n);
      const at::Tensor alone = block_sparse_attention_cuda(qr, kr, vr, {DeviceMaskRef{&row.c->dm, row.q_offset, 0}}, opt).out;
      EXPECT_TRUE(at::equal(alone, all.narrow(0, r, 1))) << "row " << r << " at " << row.q_offset;
      if (r < 6) expect_close(qr, kr, vr, {row}, opt, "decode row " + std::to_string(r));
    }
    // A key window: the cache from k_offset on, fewer key blocks than the row lists.
    for (int64_t r = 0; r < 6; ++r) {
      const RowRef& row = rows[static_cast<size_t>(r)];
      const int64_t k0 = std::min<int64_t>(row.q_offset, 3 * kBlock + 5);
      expect_close(q.narrow(0, r, 1), k.narrow(0, r, 1).narrow(2, k0, row.q_offset + 1 - k0),
                   v.narrow(0, r, 1).narrow(2, k0, row.q_offset + 1 - k0), {RowRef{row.c, row.q_offset, k0}}, opt,
                   "decode row " + std::to_string(r) + " from key " + std::to_string(k0));
    }
  }
}

// Decode rows reading a stored prefix from a shared row (DeviceMaskRef::shared_row, issue 15):
// every row's keys [0, P) (P not a block multiple) the same, held once more in a row past the
// table's (the same memory, the same strides), and each row's own copy of them poisoned with NaN:
// every row's output is bitwise its output from its own copy (a table of 12 rows, the combine
// merge, and its first 5 rows as a table of their own, the cluster merge; bf16 and fp16). A
// table whose shared row k's memory does not hold is refused.
TEST_F(BlockSparseAttentionCuda, DecodeRowsReadAStoredPrefixFromASharedRow) {
  std::mt19937 rng(31);
  constexpr int64_t kBlock = 64, R = 12, g = 3, P = 100;
  const std::vector<Case> cases = decode_cases(rng, kBlock, 300, 300);
  int64_t Lk = 0;
  for (const Case& c : cases) Lk = std::max(Lk, c.mask.length());
  const std::vector<RowRef> rows = decode_rows(cases, R, P, rng);
  BlockSparseAttentionOptions opt;
  opt.batch_invariant = true;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    const char* dtype_name = dt == at::kHalf ? "fp16" : "bf16";
    const at::Tensor q = randn({R, 2 * g, 1, 128}, dt, gen_);
    at::Tensor k = randn({R + 1, 2, Lk, 128}, dt, gen_), v = randn({R + 1, 2, Lk, 128}, dt, gen_);
    // Row R holds the prefix; every row's keys [0, P) are the same.
    k.narrow(0, 0, R).narrow(2, 0, P).copy_(k.narrow(0, R, 1).narrow(2, 0, P).expand({R, 2, P, 128}));
    v.narrow(0, 0, R).narrow(2, 0, P).copy_(v.narrow(0, R, 1).narrow(2, 0, P).expand({R, 2, P, 128}));
    DeviceMaskTable own = make_device_mask_table(R, kBlock, q.device());
    update_device_mask_table(own, refs(rows));
    const at::Tensor want = block_sparse_attention_cuda_table(q, k.narrow(0, 0, R), v.narrow(0, 0, R), own, opt).out;
    ASSERT_FALSE(want.isnan().any().item<bool>());

    const at::Tensor kp = k.clone(), vp = v.clone();
    kp.narrow(0, 0, R).narrow(2, 0, P).fill_(nan);
    vp.narrow(0, 0, R).narrow(2, 0, P).fill_(nan);
    std::vector<DeviceMaskRef> shared = refs(rows);
    for (DeviceMaskRef& m : shared) m.shared_row = R, m.shared_len = P;
    DeviceMaskTable table = make_device_mask_table(R, kBlock, q.device(), 1);
    update_device_mask_table(table, shared);
    const at::Tensor got = block_sparse_attention_cuda_table(q, kp.narrow(0, 0, R), vp.narrow(0, 0, R), table, opt).out;
    EXPECT_TRUE(at::equal(got, want)) << dtype_name << ": 12 rows";
    constexpr int64_t kFew = 5;
    const DeviceMaskTable few = device_mask_table_rows(table, kFew);
    EXPECT_EQ(few.shared_rows, R + 1 - kFew);
    const at::Tensor got_few = block_sparse_attention_cuda_table(q.narrow(0, 0, kFew), kp.narrow(0, 0, kFew),
                                                                 vp.narrow(0, 0, kFew), few, opt).out;
    EXPECT_TRUE(at::equal(got_few, want.narrow(0, 0, kFew))) << dtype_name << ": 5 rows";
    // Without the shared row the poisoned copies are read (NaN, or zeros where a row's softmax sum
    // is NaN): other outputs, so the checks above can fail.
    const at::Tensor poisoned =
        block_sparse_attention_cuda_table(q, kp.narrow(0, 0, R), vp.narrow(0, 0, R), own, opt).out;
    EXPECT_FALSE(at::equal(poisoned, want)) << dtype_name;
    // k and v of R rows of their own: the shared row is not in their memory.
    const at::Tensor kr = k.narrow(0, 0, R).clone(), vr = v.narrow(0, 0, R).clone();
    EXPECT_THROW(block_sparse_attention_cuda_table(q, kr, vr, table, opt), std::invalid_argument);
  }
  // A shared row past the table's rows and its shared rows is refused.
  DeviceMaskTable table = make_device_mask_table(R, kBlock, at::Device(at::kCUDA, 0), 1);
  std::vector<DeviceMaskRef> bad = refs(rows);
  bad[3].shared_row = R + 1, bad[3].shared_len = P;
  EXPECT_THROW(update_device_mask_table(table, bad), std::invalid_argument);
}

// Many batch rows (more than one launch's worth of per-row masks).
TEST_F(BlockSparseAttentionCuda, ManyBatchRows) {
  const SequenceLayout layout = layout_from_lengths({30, 41, 17}, true, 0, 1, 0);
  const Case c = make_case(layout, default_mask_spec(layout), 32);
  const int64_t L = layout.length(), B = 37;
  at::Tensor q = randn({B, 3, L, 64}, at::kBFloat16, gen_), k = randn({B, 1, L, 64}, at::kBFloat16, gen_),
             v = randn({B, 1, L, 64}, at::kBFloat16, gen_);
  expect_close(q, k, v, std::vector<RowRef>(B, RowRef{&c, 0, 0}), {}, "37 rows");
}

// Decode steps on longer sequences (>= 1024 keys: the split-K decode kernel), per-row masks and
// offsets, GQA ratios 1, 2, 3, 8 (specialised), 6 (generic up to 8) and 12 (tiled kernel).
TEST_F(BlockSparseAttentionCuda, DecodeLongSequences) {
  std::mt19937 rng(23);
  int it = 0;
  for (int64_t g : {1, 2, 3, 6, 8, 12}) {
    std::vector<Case> cases;
    for (int b = 0; b < 2; ++b) {
      std::vector<int64_t> lengths(3 + rng() % 4);
      for (auto& n : lengths) n = 400 + rng() % 600;
      const SequenceLayout layout = layout_from_lengths(lengths, rng() % 2, rng() % 100, rng() % 3, rng() % 30);
      cases.push_back(make_case(layout, random_spec(layout, rng, it++ % 2 == 0), b == 0 ? 128 : 64));
    }
    int64_t L = 0;
    for (const Case& c : cases) L = std::max(L, c.mask.length());
    const int64_t d = g == 3 || g == 6 ? 64 : 128;
    const at::ScalarType dt = g == 8 || g == 2 ? at::kHalf : at::kBFloat16;
    at::Tensor q = randn({2, 2 * g, L, d}, dt, gen_), k = randn({2, 2, L, d}, dt, gen_),
               v = randn({2, 2, L, d}, dt, gen_);
    for (int64_t back : {1, 2, 50}) {
      const int64_t p0 = cases[0].mask.length() - back, p1 = cases[1].mask.length() - back;
      if (p0 < 0 || p1 < 0) continue;
      const int64_t pmax = std::max(p0, p1);
      // Row b's query is at its own position; q/k sliced to a common length, offsets per row.
      at::Tensor q1 = at::stack({q[0].slice(1, p0, p0 + 1), q[1].slice(1, p1, p1 + 1)});
      expect_close(q1, k.slice(2, 0, pmax + 1), v.slice(2, 0, pmax + 1), {RowRef{&cases[0], p0, 0}, RowRef{&cases[1], p1, 0}},
                   {}, "decode g " + std::to_string(g) + " back " + std::to_string(back));
    }
    // Key offset (cache window) for a decode step.
    const int64_t p0 = cases[0].mask.length() - 1;
    if (p0 > 40)
      expect_close(q[0].slice(1, p0, p0 + 1).unsqueeze(0), k[0].slice(1, 40, p0 + 1).unsqueeze(0),
                   v[0].slice(1, 40, p0 + 1).unsqueeze(0), {RowRef{&cases[0], p0, 40}}, {},
                   "decode k_offset g " + std::to_string(g));
  }
}

// Clear errors on bad input.
TEST_F(BlockSparseAttentionCuda, RejectsBadInput) {
  const SequenceLayout layout = layout_from_lengths({10, 10}, true, 0, 0, 0);
  const Case c = make_case(layout, default_mask_spec(layout), 16);
  const int64_t L = layout.length();
  at::Tensor q = randn({1, 2, L, 64}, at::kBFloat16, gen_), k = randn({1, 2, L, 64}, at::kBFloat16, gen_);
  EXPECT_THROW(block_sparse_attention_cuda(q, k, k, {}), std::invalid_argument);
  EXPECT_THROW(block_sparse_attention_cuda(q.to(at::kFloat), k.to(at::kFloat), k.to(at::kFloat),
                                           {DeviceMaskRef{&c.dm, 0, 0}}),
               std::invalid_argument);
  at::Tensor q80 = randn({1, 2, L, 80}, at::kBFloat16, gen_);
  EXPECT_THROW(block_sparse_attention_cuda(q80, q80, q80, {DeviceMaskRef{&c.dm, 0, 0}}), std::invalid_argument);
  EXPECT_THROW(block_sparse_attention_cuda(q.cpu(), k.cpu(), k.cpu(), {DeviceMaskRef{&c.dm, 0, 0}}),
               std::invalid_argument);
}
