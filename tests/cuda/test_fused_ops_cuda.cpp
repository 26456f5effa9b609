// The fused CUDA kernels of the forward pass against the libtorch ops they replace, in bf16 and
// in fp16 (skipped without a GPU). Results may differ from libtorch's by the last bit of the
// dtype where the fp32 summation order differs (reductions, GEMV); elementwise chains agree bit
// for bit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/fused_ops_cuda.h"
#include "cuda/kernel_preload.h"

using namespace flexgen;

namespace {

class FusedOpsCuda : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    if (!cuda_block_sparse_attention_available()) GTEST_SKIP() << "no CUDA device";
    at::manual_seed(3);
  }
  static at::ScalarType dtype() { return GetParam(); }
  static at::TensorOptions opts() { return at::TensorOptions().dtype(dtype()).device(at::kCUDA); }
  static at::Tensor randn(std::vector<int64_t> shape, double scale = 1.0) {
    return (at::randn(shape, at::TensorOptions().device(at::kCUDA)) * scale).to(dtype());
  }
  // |a - b| <= ulps steps of the dtype at |b| (+ a floor), elementwise: a step is 2^-7 of the
  // value in bf16 (8 significant bits), 2^-10 in fp16 (11).
  static void near(const at::Tensor& a, const at::Tensor& b, double ulps, double floor, const char* what) {
    const at::Tensor af = a.to(at::kFloat).cpu(), bf = b.to(at::kFloat).cpu();
    ASSERT_EQ(af.sizes(), bf.sizes()) << what;
    const double step = dtype() == at::kBFloat16 ? 1.0 / 128.0 : 1.0 / 1024.0;
    const at::Tensor err = (af - bf).abs();
    const at::Tensor bound = bf.abs() * (ulps * step) + floor;
    EXPECT_TRUE(err.le(bound).all().item<bool>())
        << what << ": max error " << err.max().item<float>() << ", max |ref| " << bf.abs().max().item<float>();
  }
  static at::Tensor rms_ref(const at::Tensor& x, const at::Tensor& w, double eps) {
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor r = at::rsqrt(xf.pow(2).mean(-1, true) + eps);
    return w * (xf * r).to(dtype());
  }
};

TEST_P(FusedOpsCuda, RmsNormAndResidualAdd) {
  const at::Tensor x = randn({5, 3, 384}, 2.0), d = randn({5, 3, 384}), w = randn({384}, 0.5);
  near(rms_norm_cuda(x, w, 1e-5), rms_ref(x, w, 1e-5), 1, 1e-6, "rms_norm");
  at::Tensor h = x.clone();
  const at::Tensor out = add_rms_norm_cuda(h, d, w, 1e-5);
  EXPECT_TRUE(h.equal(x + d));  // the residual add: one bf16 rounding
  near(out, rms_ref(x + d, w, 1e-5), 1, 1e-6, "add_rms_norm");
  // Rows of 1024 chunks (1024 threads) and longer (4 chunks a thread): the kernels launch.
  for (int64_t n : {8192, 8200, 20000}) {
    const at::Tensor xl = randn({2, 1, n}, 2.0), dl = randn({2, 1, n}), wl = randn({n}, 0.5);
    const std::string what = "rms_norm, n " + std::to_string(n);
    near(rms_norm_cuda(xl, wl, 1e-5), rms_ref(xl, wl, 1e-5), 1, 1e-6, what.c_str());
    at::Tensor hl = xl.clone();
    near(add_rms_norm_cuda(hl, dl, wl, 1e-5), rms_ref(xl + dl, wl, 1e-5), 1, 1e-6, ("add_" + what).c_str());
  }
}

TEST_P(FusedOpsCuda, SiluMul) {
  const at::Tensor gu = randn({4, 2, 2 * 200}, 3.0);
  const at::Tensor ref = at::silu(gu.narrow(-1, 0, 200)) * gu.narrow(-1, 200, 200);
  near(silu_mul_cuda(gu), ref, 1, 1e-6, "silu_mul");
}

TEST_P(FusedOpsCuda, RopeWritesQAndTheCacheSlots) {
  const int64_t B = 3, L = 5, H = 4, Hkv = 2, D = 64, T = 16;
  const at::Tensor qkv = randn({B, L, (H + 2 * Hkv) * D});
  const at::Tensor pos = at::randint(0, 1000, {B, L}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  const at::Tensor inv = at::pow(10000.0, -at::arange(0, D, 2, at::TensorOptions().device(at::kCUDA)) / D);
  const at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv;
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(dtype()).unsqueeze(1), sin = emb.sin().to(dtype()).unsqueeze(1);
  at::Tensor kc = at::zeros({B, Hkv, T, D}, opts()), vc = at::zeros({B, Hkv, T, D}, opts());
  const at::Tensor first = at::tensor({0, 7, 11}, at::kLong).to(at::kCUDA);
  const at::Tensor q = rope_qkv_cuda(qkv, cos, sin, H, Hkv, kc, vc, first);
  auto rot = [&](const at::Tensor& x) {  // [B, heads, L, D]
    const at::Tensor r = at::cat({x.narrow(-1, D / 2, D / 2).neg(), x.narrow(-1, 0, D / 2)}, -1);
    return x * cos + r * sin;
  };
  const at::Tensor qr = qkv.narrow(2, 0, H * D).view({B, L, H, D}).transpose(1, 2);
  const at::Tensor kr = qkv.narrow(2, H * D, Hkv * D).view({B, L, Hkv, D}).transpose(1, 2);
  const at::Tensor vr = qkv.narrow(2, (H + Hkv) * D, Hkv * D).view({B, L, Hkv, D}).transpose(1, 2);
  near(q, rot(qr), 1, 1e-6, "q");
  const std::vector<int64_t> firsts = {0, 7, 11};
  for (int64_t b = 0; b < B; ++b) {
    near(kc[b].narrow(1, firsts[b], L), rot(kr)[b], 1, 1e-6, "k cache");
    EXPECT_TRUE(vc[b].narrow(1, firsts[b], L).equal(vr[b]));
    for (const at::Tensor* c : {&kc, &vc}) {
      at::Tensor rest = (*c)[b].clone();
      rest.narrow(1, firsts[b], L).zero_();
      EXPECT_EQ(rest.abs().max().item<float>(), 0.f) << "slots outside the new tokens' must stay untouched";
    }
  }
}

// Packed q|k|v (a prefill's listed tokens only): bitwise the [B, L] layout with zeros at the
// unlisted tokens, for q, the K/V cache slots and both kernels (head_dim 64: 16-byte vectors; 24:
// the per-element kernel).
TEST_P(FusedOpsCuda, RopePackedGivesTheUnpackedLayoutsBits) {
  for (const int64_t D : {int64_t{64}, int64_t{24}}) {
    const int64_t B = 3, L = 7, H = 4, Hkv = 2, T = 20, W = (H + 2 * Hkv) * D;
    const auto lopts = at::TensorOptions().dtype(at::kLong).device(at::kCUDA);
    const at::Tensor listed = at::rand({B * L}, at::TensorOptions().device(at::kCUDA)) < 0.7;
    const at::Tensor real = listed.nonzero().view({-1});  // ascending
    const at::Tensor packed = randn({1, real.size(0), W});
    const at::Tensor unpacked = at::zeros({B * L, W}, opts()).index_copy_(0, real, packed[0]).view({B, L, W});
    const at::Tensor rows = at::full({B * L}, -1, lopts).index_copy_(0, real, at::arange(real.size(0), lopts));
    const at::Tensor pos = at::randint(0, 1000, {B, L}, lopts);
    const at::Tensor inv = at::pow(10000.0, -at::arange(0, D, 2, at::TensorOptions().device(at::kCUDA)) / D);
    const at::Tensor emb = at::cat({pos.to(at::kFloat).unsqueeze(-1) * inv, pos.to(at::kFloat).unsqueeze(-1) * inv}, -1);
    const at::Tensor cos = emb.cos().to(dtype()).unsqueeze(1), sin = emb.sin().to(dtype()).unsqueeze(1);
    const at::Tensor first = at::tensor({0, 5, 9}, at::kLong).to(at::kCUDA);
    at::Tensor kc1 = at::full({B, Hkv, T, D}, 3.0, opts()), vc1 = kc1.clone(), kc2 = kc1.clone(), vc2 = kc1.clone();
    const at::Tensor q1 = rope_qkv_cuda(unpacked, cos, sin, H, Hkv, kc1, vc1, first);
    const at::Tensor q2 = rope_qkv_packed_cuda(packed, rows, B, L, cos, sin, H, Hkv, kc2, vc2, first);
    const std::string what = "head_dim " + std::to_string(D) + ", " + std::to_string(real.size(0)) + " listed";
    auto bits = [](const at::Tensor& t) { return t.contiguous().view(at::kShort); };  // +0 vs -0 too
    EXPECT_TRUE(bits(q1).equal(bits(q2))) << what;
    EXPECT_TRUE(bits(kc1).equal(bits(kc2))) << what;
    EXPECT_TRUE(bits(vc1).equal(bits(vc2))) << what;
    EXPECT_LT(real.size(0), B * L) << what;  // some tokens are unlisted
  }
}

// The RoPE tables of one launch: bitwise libtorch's chain (positions to fp32, x inv_freq, cat,
// cos / sin, to the dtype), for positions up to 130k (large angles) and a LLaMA-3 inv_freq.
TEST_P(FusedOpsCuda, RopeTablesAreLibtorchsBits) {
  const int64_t D = 128;
  const at::Tensor inv = at::pow(500000.0, -at::arange(0, D, 2, at::kDouble) / D).to(at::kFloat).to(at::kCUDA);
  const at::Tensor pos = at::randint(0, 131072, {3, 37}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  const auto [c, s] = rope_tables_cuda(pos, inv, dtype());
  const at::Tensor f = pos.to(at::kFloat).unsqueeze(-1) * inv.view({1, 1, -1});
  const at::Tensor emb = at::cat({f, f}, -1);
  EXPECT_TRUE(at::equal(c, emb.cos().to(dtype()).unsqueeze(1)));
  EXPECT_TRUE(at::equal(s, emb.sin().to(dtype()).unsqueeze(1)));
  EXPECT_EQ(c.sizes(), (at::IntArrayRef{3, 1, 37, D}));
}

TEST_P(FusedOpsCuda, LinearGemvRowsAndCublasBeyond) {
  const int64_t K = 256, N = 520;  // N not a multiple of 8: a partial last block
  const at::Tensor w = randn({N, K}, 0.1);
  for (int64_t rows : {1, 2, 3, 5, 8}) {
    const at::Tensor x = randn({rows, 1, K});
    // fp32 reference of the same inputs; the GEMV result is rounded once to the dtype.
    const at::Tensor ref = at::matmul(x.to(at::kFloat), w.to(at::kFloat).t());
    near(linear_cuda(x, w), ref, 1.5, 1e-3 * ref.abs().max().item<double>(), "linear_cuda (GEMV)");
  }
  const at::Tensor many = randn({9, K});  // more than 8 rows: cuBLAS
  EXPECT_TRUE(linear_cuda(many, w).equal(at::linear(many, w)));
}

// The GEMV's arithmetic per output depends on K and the shape-chosen warps per column only: each
// row of a multi-row call equals that row alone, bitwise, for shapes that take 1, 2, 4 and 8 warps
// per column (N = 8200, 4096, 2048, 520); and it is the fp32 dot product rounded once.
TEST_P(FusedOpsCuda, GemvRowsAreBatchInvariantForEveryWarpSplit) {
  const int64_t K = 1024;
  for (int64_t N : {8200, 4096, 2048, 520}) {
    const at::Tensor w = randn({N, K}, 0.05);
    const at::Tensor x = randn({8, 1, K});
    const at::Tensor all = linear_cuda(x, w);
    for (int64_t r = 0; r < 8; ++r) EXPECT_TRUE(linear_cuda(x.narrow(0, r, 1), w).equal(all.narrow(0, r, 1))) << "N " << N << " row " << r;
    const at::Tensor ref = at::matmul(x.to(at::kFloat), w.to(at::kFloat).t());
    near(all, ref, 1.5, 1e-3 * ref.abs().max().item<double>(), "linear_cuda (GEMV)");
  }
}

// The row-invariant tensor-core linear (rows_apart, the batch-invariant decode steps): each row's
// result is the same bits whatever else is in the call (alone, any prefix of the batch, the batch
// reversed; on Hopper launches of 33+ rows run the wgmma kernel, so rows alone and short prefixes
// (mma.sync) are compared with the 200-row call (wgmma, two 128-row tiles) and prefixes of every
// wgmma tile height (64, 128, 192 rows)), for shapes that take 1, 2, 4 and 8 K splits
// (N = 40000, 16400, 8200, 4096), N not a multiple of 16 and K not a multiple of 32; and it is the
// fp32 dot product rounded once (plus the bias, rounded like at::add).
TEST_P(FusedOpsCuda, RowInvariantLinearGivesEveryRowItsOwnBitsInAnyBatch) {
  for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{40000, 512}, {16400, 256}, {8200, 1024}, {4096, 1000}, {520, 2048}, {131, 264}}) {
    const at::Tensor w = randn({N, K}, 0.05);
    const at::Tensor x = randn({200, 1, K});
    const at::Tensor all = linear_cuda(x, w, {}, true);
    const at::Tensor ref = at::matmul(x.to(at::kFloat), w.to(at::kFloat).t());
    const std::string what = "N " + std::to_string(N) + " K " + std::to_string(K);
    near(all, ref, 1.5, 1e-3 * ref.abs().max().item<double>(), what.c_str());
    for (int64_t rows : {1, 2, 7, 8, 9, 16, 17, 33, 64, 65, 100, 129, 192})
      EXPECT_TRUE(linear_cuda(x.narrow(0, 0, rows), w, {}, true).equal(all.narrow(0, 0, rows))) << what << ", first " << rows << " rows";
    for (int64_t r : {0, 5, 63, 64, 129, 199})
      EXPECT_TRUE(linear_cuda(x.narrow(0, r, 1), w, {}, true).equal(all.narrow(0, r, 1))) << what << ", row " << r << " alone";
    EXPECT_TRUE(linear_cuda(x.flip(0), w, {}, true).equal(all.flip(0))) << what << ", rows reversed";
  }
  const at::Tensor w = randn({300, 256}, 0.05), bias = randn({300});
  const at::Tensor x = randn({3, 256});
  EXPECT_TRUE(linear_cuda(x, w, bias, true).equal(linear_cuda(x, w, {}, true) + bias));
  // Shapes the kernel cannot take are refused, not computed another way.
  EXPECT_THROW(linear_cuda(randn({2, 100}), randn({64, 100}), {}, true), std::invalid_argument);
}

// The tiled row-invariant linear of batch-invariant prefill passes: every row (token) gets the
// same bits whatever else is in the pass (alone, any prefix, at another place in its tile, the
// pass reversed or shuffled, passes of 1 to 1500 rows: both tile shapes), for N and K that are not
// multiples of the tile (N odd: single-element stores), and it is the fp32 dot product rounded once.
TEST_P(FusedOpsCuda, PrefillLinearGivesEveryTokenItsOwnBitsInAnyPass) {
  for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{3072, 3072}, {4096, 1000}, {520, 8192}, {131, 264}, {257, 72}}) {
    const int64_t M = 1500;
    const at::Tensor w = randn({N, K}, 0.05);
    const at::Tensor x = randn({M, K});
    const at::Tensor all = linear_cuda(x.view({10, M / 10, K}), w, {}, true, true).view({M, N});
    const at::Tensor ref = at::matmul(x.to(at::kFloat), w.to(at::kFloat).t());
    const std::string what = "N " + std::to_string(N) + " K " + std::to_string(K);
    near(all, ref, 1.5, 1e-3 * ref.abs().max().item<double>(), what.c_str());
    for (int64_t rows : {1, 2, 77, 128, 129, 300, 1000})
      EXPECT_TRUE(linear_cuda(x.narrow(0, 0, rows), w, {}, true, true).equal(all.narrow(0, 0, rows)))
          << what << ", first " << rows << " rows";
    for (int64_t r : std::vector<int64_t>{0, 5, 127, 128, M - 1})
      EXPECT_TRUE(linear_cuda(x.narrow(0, r, 1), w, {}, true, true).equal(all.narrow(0, r, 1))) << what << ", row " << r << " alone";
    EXPECT_TRUE(linear_cuda(x.narrow(0, 3, 500), w, {}, true, true).equal(all.narrow(0, 3, 500))) << what << ", shifted";
    EXPECT_TRUE(linear_cuda(x.flip(0), w, {}, true, true).equal(all.flip(0))) << what << ", rows reversed";
    const at::Tensor perm = at::randperm(M, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
    EXPECT_TRUE(linear_cuda(x.index_select(0, perm), w, {}, true, true).equal(all.index_select(0, perm)))
        << what << ", rows shuffled";
  }
  const at::Tensor w = randn({300, 256}, 0.05), bias = randn({300});
  const at::Tensor x = randn({3, 256});
  EXPECT_TRUE(linear_cuda(x, w, bias, true, true).equal(linear_cuda(x, w, {}, true, true) + bias));
  EXPECT_THROW(linear_cuda(randn({2, 100}), randn({64, 100}), {}, true, true), std::invalid_argument);
}

// Decode steps of 1 to 8 rows fold SiLU x up into the gate|up projection's epilogue: the same bits
// as the row-invariant linear followed by silu_mul_cuda, with and without a bias, for K splits 8
// and 2; more rows run the two kernels (the same bits by construction: checked up to 70 rows, and
// with FLEXGEN_CUDA_DECODE_EPILOGUE=all the epilogue itself at every row-tile shape).
TEST_P(FusedOpsCuda, SiluEpilogueGivesTheSeparateKernelsBits) {
  for (const auto& [I, K] : std::vector<std::pair<int64_t, int64_t>>{{200, 264}, {8192, 512}}) {
    const at::Tensor w = randn({2 * I, K}, 0.1), bias = randn({2 * I});
    for (int64_t rows : {1, 3, 8, 9, 17, 33, 70}) {
      const at::Tensor x = randn({rows, 1, K});
      for (const at::Tensor* b : {static_cast<const at::Tensor*>(nullptr), &bias}) {
        const at::Tensor bb = b ? *b : at::Tensor();
        const at::Tensor fused = linear_silu_mul_cuda(x, w, bb);
        const at::Tensor separate = silu_mul_cuda(linear_cuda(x, w, bb, true));
        ASSERT_EQ(fused.sizes(), separate.sizes());
        EXPECT_TRUE(fused.equal(separate)) << "I " << I << ", " << rows << " rows" << (b ? ", bias" : "");
      }
    }
  }
}

// Prefill passes of 256+ rows on Hopper fold SiLU x up into the tiled gate|up projection (gate and
// up halves loaded side by side): the same bits as the row-invariant prefill linear followed by
// silu_mul_cuda, for I that is not a multiple of any tile's half (the last tile's gate and up boxes
// end at I, overlapping the tile before, and it stores only its own columns; so does the last row
// tile of 300, 600 and 1000 rows), passes below 256 rows (the two kernels), a bias or I % 8 != 0
// (the two calls).
// ctest runs it with every tile width forced (FLEXGEN_CUDA_PREFILL_BN).
TEST_P(FusedOpsCuda, PrefillSiluEpilogueGivesTheSeparateKernelsBits) {
  for (const auto& [I, K] : std::vector<std::pair<int64_t, int64_t>>{{8192, 3072}, {1000, 264}, {200, 72}, {132, 64}}) {
    const at::Tensor w = randn({2 * I, K}, 0.1), bias = randn({2 * I});
    for (int64_t rows : {255, 256, 300, 600, 1000}) {
      const at::Tensor x = randn({1, rows, K});
      const at::Tensor separate = silu_mul_cuda(linear_cuda(x, w, {}, true, true));
      const at::Tensor fused = prefill_linear_silu_mul_cuda(x, w);
      ASSERT_EQ(fused.sizes(), separate.sizes());
      EXPECT_TRUE(fused.equal(separate)) << "I " << I << " K " << K << ", " << rows << " rows";
      EXPECT_TRUE(prefill_linear_silu_mul_cuda(x, w, bias).equal(silu_mul_cuda(linear_cuda(x, w, bias, true, true))))
          << "I " << I << ", " << rows << " rows, bias";
    }
  }
  EXPECT_THROW(prefill_linear_silu_mul_cuda(randn({300, 64}), randn({101, 64})), std::invalid_argument);
}

// silu_mul and rope_qkv run 8 elements a thread on 16-byte aligned data and one element a thread
// otherwise: the same bits (inputs at an odd element offset of a larger buffer take the element
// kernels), for head_dim 16 .. 128 and a head_dim that is not a multiple of 16 (element kernel both).
TEST_P(FusedOpsCuda, VectorAndElementKernelsGiveTheSameBits) {
  auto shifted = [](const at::Tensor& t) {  // the same values, contiguous, 2 bytes off alignment
    at::Tensor buf = at::empty({t.numel() + 1}, t.options());
    at::Tensor v = buf.narrow(0, 1, t.numel()).view(t.sizes());
    v.copy_(t);
    return v;
  };
  const at::Tensor gu = randn({3, 7, 2 * 96}, 3.0);
  EXPECT_TRUE(silu_mul_cuda(gu).equal(silu_mul_cuda(shifted(gu)))) << "silu_mul";
  const int64_t B = 2, L = 9, H = 5, Hkv = 1, T = 20;
  for (int64_t D : {16, 40, 64, 128}) {
    const at::Tensor qkv = randn({B, L, (H + 2 * Hkv) * D});
    const at::Tensor pos = at::randint(0, 3000, {B, L}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
    const at::Tensor inv = at::pow(10000.0, -at::arange(0, D, 2, at::TensorOptions().device(at::kCUDA)) / D);
    const at::Tensor emb = at::cat({pos.to(at::kFloat).unsqueeze(-1) * inv, pos.to(at::kFloat).unsqueeze(-1) * inv}, -1);
    const at::Tensor cos = emb.cos().to(dtype()).unsqueeze(1), sin = emb.sin().to(dtype()).unsqueeze(1);
    const at::Tensor first = at::tensor({3, 10}, at::kLong).to(at::kCUDA);
    const at::Tensor kc0 = randn({B, Hkv, T, D}), vc0 = randn({B, Hkv, T, D});
    at::Tensor kc1 = kc0.clone(), vc1 = vc0.clone(), kc2 = kc0.clone(), vc2 = vc0.clone();
    const at::Tensor q1 = rope_qkv_cuda(qkv, cos, sin, H, Hkv, kc1, vc1, first);
    const at::Tensor q2 = rope_qkv_cuda(shifted(qkv), cos, sin, H, Hkv, kc2, vc2, first);
    const std::string what = "D " + std::to_string(D);
    EXPECT_TRUE(q1.equal(q2)) << what << ": q";
    EXPECT_TRUE(kc1.equal(kc2)) << what << ": k cache";
    EXPECT_TRUE(vc1.equal(vc2)) << what << ": v cache";
    EXPECT_FALSE(kc1.equal(kc0)) << what << ": the new tokens' keys were written";
  }
}


// Decode steps of 1 to 8 rows fold RoPE and the cache write into the q|k|v projection's epilogue:
// q and both caches (every slot: the new token's and the untouched rest) are the separate
// kernels' bits, for head dims 48, 64 and 128, each row at its own position and slot, with a bias
// (70 rows: the separate kernels; with FLEXGEN_CUDA_DECODE_EPILOGUE=all, the epilogue).
TEST_P(FusedOpsCuda, RopeEpilogueGivesTheSeparateKernelsBits) {
  const int64_t H = 6, Hkv = 2, K = 320, T = 24;
  for (int64_t D : {48, 64, 128}) {
    const at::Tensor w = randn({(H + 2 * Hkv) * D, K}, 0.1), bias = randn({(H + 2 * Hkv) * D});
    const at::Tensor inv = at::pow(10000.0, -at::arange(0, D, 2, at::TensorOptions().device(at::kCUDA)) / D);
    for (int64_t B : {1, 5, 70}) {
      const at::Tensor x = randn({B, 1, K});
      const at::Tensor pos = at::randint(0, 4000, {B, 1}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
      const at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv;
      const at::Tensor emb = at::cat({freqs, freqs}, -1);
      const at::Tensor cos = emb.cos().to(dtype()).unsqueeze(1), sin = emb.sin().to(dtype()).unsqueeze(1);
      const at::Tensor first = at::randint(0, T, {B}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
      for (const at::Tensor* b : {static_cast<const at::Tensor*>(nullptr), &bias}) {
        const at::Tensor bb = b ? *b : at::Tensor();
        const at::Tensor kc0 = randn({B, Hkv, T, D}), vc0 = randn({B, Hkv, T, D});
        at::Tensor kc1 = kc0.clone(), vc1 = vc0.clone(), kc2 = kc0.clone(), vc2 = vc0.clone();
        const at::Tensor fused = linear_rope_qkv_cuda(x, w, bb, cos, sin, H, Hkv, kc1, vc1, first);
        const at::Tensor separate = rope_qkv_cuda(linear_cuda(x, w, bb, true), cos, sin, H, Hkv, kc2, vc2, first);
        const std::string what = "D " + std::to_string(D) + ", " + std::to_string(B) + " rows" + (b ? ", bias" : "");
        ASSERT_EQ(fused.sizes(), separate.sizes()) << what;
        EXPECT_TRUE(fused.equal(separate)) << what << ": q";
        EXPECT_TRUE(kc1.equal(kc2)) << what << ": k cache";
        EXPECT_TRUE(vc1.equal(vc2)) << what << ": v cache";
        EXPECT_FALSE(kc1.equal(kc0)) << what << ": the new tokens' keys were written";
      }
    }
  }
}

// A batch-1 decode step's layer tail in one persistent launch gives the bits of the kernels it
// replaces (o + add_rms_norm, gate|up + SiLU, down, add_rms_norm, q|k|v + RoPE + cache write), for
// the splits of Llama-3.2 1B and 3B-like shapes (1-8 warps a tile) and odd ones, with and without
// the next layer's q|k|v, over several launches in a row (its barrier counter carries on) and
// in other barrier slots.
TEST_P(FusedOpsCuda, DecodeLayerTailGivesTheSeparateKernelsBits) {
  struct Shape {
    int64_t hidden, inter, H, Hkv, D;
  };
  const int64_t T = 40;
  const double eps = 1e-5;
  for (const Shape& sh : {Shape{2048, 8192, 32, 8, 64}, Shape{3072, 8192, 24, 8, 128}, Shape{392, 1048, 7, 1, 64},
                          Shape{64, 16, 2, 1, 16}}) {
    const int64_t hidden = sh.hidden, I = sh.inter, H = sh.H, Hkv = sh.Hkv, D = sh.D;
    const std::string shape = "hidden " + std::to_string(hidden) + ", intermediate " + std::to_string(I);
    DecodeLayerTail tail{randn({hidden, H * D}, 0.05), randn({hidden}, 0.5) + 1.0, randn({2 * I, hidden}, 0.05),
                         randn({hidden, I}, 0.05), eps, 0};
    const at::Tensor in_norm = randn({hidden}, 0.5) + 1.0, qkv = randn({(H + 2 * Hkv) * D, hidden}, 0.05);
    const at::Tensor inv = at::pow(10000.0, -at::arange(0, D, 2, at::TensorOptions().device(at::kCUDA)) / D);
    for (int round = 0; round < 3; ++round) {
      tail.index = round == 2 ? 17 : 0;
      const std::string what = shape + ", round " + std::to_string(round);
      const at::Tensor h0 = randn({1, 1, hidden}), a = randn({1, 1, H * D});
      const at::Tensor freqs = at::full({1, 1, 1}, 37.0 + round, inv.options()) * inv;
      const at::Tensor emb = at::cat({freqs, freqs}, -1);
      const at::Tensor cos = emb.cos().to(dtype()).unsqueeze(1), sin = emb.sin().to(dtype()).unsqueeze(1);
      const at::Tensor first = at::full({1}, 5 + round, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
      const at::Tensor kc0 = randn({1, Hkv, T, D}), vc0 = randn({1, Hkv, T, D});
      // The separate kernels.
      at::Tensor h2 = h0.clone(), kc2 = kc0.clone(), vc2 = vc0.clone();
      const at::Tensor x = add_rms_norm_cuda(h2, linear_cuda(a, tail.o_proj, {}, true), tail.post_norm, eps);
      const at::Tensor delta = linear_cuda(linear_silu_mul_cuda(x, tail.gate_up_proj), tail.down_proj, {}, true);
      const at::Tensor x2 = add_rms_norm_cuda(h2, delta, in_norm, eps);
      const at::Tensor q2 = linear_rope_qkv_cuda(x2, qkv, {}, cos, sin, H, Hkv, kc2, vc2, first);
      // One launch with the next layer's q|k|v, one without.
      at::Tensor h1 = h0.clone(), kc1 = kc0.clone(), vc1 = vc0.clone(), h3 = h0.clone();
      const NextLayerQkv next{in_norm, qkv, cos, sin, kc1, vc1, first, H, Hkv};
      const at::Tensor q1 = decode_layer_tail_cuda(h1, a, tail, &next);
      EXPECT_FALSE(decode_layer_tail_cuda(h3, a, tail).defined()) << what;
      EXPECT_TRUE(h1.equal(h2)) << what << ": residual";
      EXPECT_TRUE(h3.equal(h2)) << what << ": residual without the next layer";
      ASSERT_EQ(q1.sizes(), q2.sizes()) << what;
      EXPECT_TRUE(q1.equal(q2)) << what << ": q";
      EXPECT_TRUE(kc1.equal(kc2)) << what << ": k cache";
      EXPECT_TRUE(vc1.equal(vc2)) << what << ": v cache";
      EXPECT_FALSE(kc1.equal(kc0)) << what << ": the new key was written";
      EXPECT_FALSE(h1.equal(h0)) << what << ": the residual was updated";
    }
  }
}

// The kernels refuse mixed dtypes and fp32 with a message, never convert silently.
TEST_P(FusedOpsCuda, MixedOrFp32InputsAreRefused) {
  const at::Tensor x = randn({2, 64}), w = randn({64});
  const at::ScalarType other = dtype() == at::kBFloat16 ? at::kHalf : at::kBFloat16;
  EXPECT_THROW(rms_norm_cuda(x, w.to(other), 1e-5), std::invalid_argument);
  EXPECT_THROW(rms_norm_cuda(x.to(at::kFloat), w.to(at::kFloat), 1e-5), std::invalid_argument);
  EXPECT_THROW(silu_mul_cuda(x.to(at::kFloat)), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedOpsCuda, ::testing::Values(at::kBFloat16, at::kHalf),
                         [](const ::testing::TestParamInfo<at::ScalarType>& i) {
                           return std::string(i.param == at::kBFloat16 ? "bf16" : "fp16");
                         });

// Every kernel of flexgen's nine CUDA modules loads ahead of its first launch, once.
TEST(KernelPreload, LoadsEveryKernelOfFlexgensModulesOnce) {
  if (!cuda_block_sparse_attention_available()) GTEST_SKIP() << "no CUDA device";
  const KernelPreload first = preload_cuda_kernels();
  if (!first.supported) GTEST_SKIP() << "the driver has no cuFuncLoad (CUDA < 12.4)";
  EXPECT_EQ(first.modules, 9);
  EXPECT_GT(first.kernels, 4 * first.modules);  // each module's anchor and its kernels
  const KernelPreload again = preload_cuda_kernels();
  EXPECT_EQ(again.kernels, first.kernels);
  EXPECT_EQ(again.loaded, 0);
}

}  // namespace
