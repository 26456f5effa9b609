// The dense reference behind flexgen::attention: masks, GQA, empty rows, offsets.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "flexgen/attention.h"

namespace flexgen {
namespace {

// Naive per-head attention with repeated KV heads, fp64.
at::Tensor naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                 double scale) {
  const int64_t G = q.size(1) / k.size(1);
  at::Tensor kk = k.repeat_interleave(G, 1).to(at::kDouble), vv = v.repeat_interleave(G, 1).to(at::kDouble);
  at::Tensor s = at::matmul(q.to(at::kDouble), kk.transpose(-1, -2)) * scale;
  s = s.masked_fill(allowed.unsqueeze(1).logical_not(), -INFINITY);
  at::Tensor p = at::softmax(s, -1).nan_to_num(0.0);
  return at::matmul(p, vv);
}

TEST(AttentionDense, GroupsMaskGqaAndOffsets) {
  at::manual_seed(3);
  const int64_t B = 2, H = 6, Hkv = 2, L = 10, D = 8;
  at::Tensor q = at::randn({B, H, L, D}), k = at::randn({B, Hkv, L, D}), v = at::randn({B, Hkv, L, D});
  AttentionMask a;
  a.group_ids = {0, 1, 1, 1, 2, 2, 2, 3, 3, 3};
  a.spec.num_groups = 4;
  a.spec.visible = {1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1};
  AttentionMask b = a;
  b.spec.causal = false;
  std::vector<AttentionMask> rows = {a, b};
  const auto ref = BatchMask::rows(rows);
  at::Tensor allowed = dense_allowed(ref, B, L, L, 0, 0);
  for (int64_t qi = 0; qi < L; ++qi)
    for (int64_t ki = 0; ki < L; ++ki) {
      EXPECT_EQ(allowed[0][qi][ki].item<bool>(), a.allowed(qi, ki));
      EXPECT_EQ(allowed[1][qi][ki].item<bool>(), b.allowed(qi, ki));
    }
  at::Tensor out = attention(q, k, v, ref, 0.3, 0, 0);
  EXPECT_LT((out.to(at::kDouble) - naive(q, k, v, allowed, 0.3)).abs().max().item<double>(), 1e-5);
  // The last 3 query rows against all keys (a decode-like chunk): q_offset = 7.
  at::Tensor out_tail = attention(q.narrow(2, 7, 3).contiguous(), k, v, ref, 0.3, 7, 0);
  EXPECT_LT((out_tail - out.narrow(2, 7, 3)).abs().max().item<double>(), 1e-6);
  // Dense mask equals the groups mask.
  at::Tensor out_dense = attention(q, k, v, BatchMask::dense(allowed), 0.3, 0, 0);
  EXPECT_LT((out_dense - out).abs().max().item<double>(), 1e-6);
}

TEST(AttentionDense, EmptyRowGivesZerosNotNan) {
  const int64_t L = 4, D = 4;
  at::Tensor q = at::randn({1, 2, L, D}), k = at::randn({1, 1, L, D}), v = at::randn({1, 1, L, D});
  at::Tensor allowed = at::ones({1, L, L}, at::kBool).tril();
  allowed[0][2].fill_(false);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor out = attention(q.to(dtype), k.to(dtype), v.to(dtype), BatchMask::dense(allowed), 0.5, 0, 0);
    EXPECT_FALSE(out.isnan().any().item<bool>());
    EXPECT_EQ(out.select(2, 2).abs().sum().item<double>(), 0.0);
    EXPECT_GT(out.select(2, 3).abs().sum().item<double>(), 0.0);
  }
}

TEST(AttentionDense, CausalAndBadInputs) {
  at::Tensor q = at::randn({1, 4, 3, 8}), k = at::randn({1, 2, 5, 8}), v = at::randn({1, 2, 5, 8});
  // Queries at absolute 2..4 see keys 0..q.
  at::Tensor allowed = dense_allowed(BatchMask::causal(), 1, 3, 5, 2, 0);
  EXPECT_EQ(allowed.sum().item<int64_t>(), 3 + 4 + 5);
  at::Tensor out = attention(q, k, v, BatchMask::causal(), 0.35, 2, 0);
  EXPECT_LT((out.to(at::kDouble) - naive(q, k, v, allowed, 0.35)).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(attention(at::randn({1, 3, 3, 8}), k, v, BatchMask::causal(), 1.0, 0, 0), std::invalid_argument);
  AttentionMask short_mask;
  short_mask.group_ids = {0, 0, 0};
  short_mask.spec.num_groups = 1;
  short_mask.spec.visible = {1};
  std::vector<AttentionMask> rows = {short_mask};
  EXPECT_THROW(attention(q, k, v, BatchMask::rows(rows), 1.0, 2, 0), std::invalid_argument);
  EXPECT_THROW(attention(q, k, v, BatchMask::dense(at::ones({1, 3, 4}, at::kBool)), 1.0, 0, 0),
               std::invalid_argument);
}

}  // namespace
}  // namespace flexgen
