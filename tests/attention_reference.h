// The dense fp64 reference the block-sparse attention kernels are tested against (the CPU suite,
// tests/ops, and the CUDA suite, tests/cuda): the same arithmetic for both.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>

#include "flexgen/mask.h"

namespace flexgen::testing {

// Which of Lq x Lk (query, key) pairs a row may attend: positions q_offset + i, k_offset + j of
// `mask`, and only those within its q_len / kv_len. [Lq, Lk] bool on the CPU.
inline at::Tensor allowed_pairs(const AttentionMask& mask, int64_t q_len, int64_t kv_len, int64_t q_offset,
                                int64_t k_offset, int64_t Lq, int64_t Lk) {
  at::Tensor allowed = at::zeros({Lq, Lk}, at::kBool);
  auto acc = allowed.accessor<bool, 2>();
  for (int64_t i = 0; i < Lq; ++i)
    for (int64_t j = 0; j < Lk; ++j) {
      const int64_t qp = q_offset + i, kp = k_offset + j;
      acc[i][j] = qp < q_len && kp < kv_len && mask.allowed(qp, kp);
    }
  return allowed;
}

// Softmax attention in fp64 of q [B, H, Lq, d] over k, v [B, Hkv, Lk, d] (query head h reads KV
// head h / (H / Hkv)), batch row b under allowed(b) ([Lq, Lk] bool): out [B, H, Lq, d] and the
// log-sum-exp lse [B, H, Lq] (-inf and a zero output where a query sees no key), on q's device.
// scale 0: 1 / sqrt(d).
inline std::pair<at::Tensor, at::Tensor> dense_attention_fp64(const at::Tensor& q, const at::Tensor& k,
                                                             const at::Tensor& v,
                                                             const std::function<at::Tensor(int64_t)>& allowed,
                                                             double scale) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), d = q.size(3);
  const int64_t g = H / k.size(1);
  if (scale == 0) scale = 1.0 / std::sqrt(static_cast<double>(d));
  const auto opts = q.options().dtype(at::kDouble);
  at::Tensor out = at::zeros({B, H, Lq, d}, opts);
  at::Tensor lse = at::full({B, H, Lq}, -kInf, opts);
  for (int64_t b = 0; b < B; ++b) {
    const at::Tensor hidden = allowed(b).to(q.device()).logical_not().unsqueeze(0);
    const at::Tensor kd = k[b].to(at::kDouble).repeat_interleave(g, 0);
    const at::Tensor vd = v[b].to(at::kDouble).repeat_interleave(g, 0);
    at::Tensor s = at::matmul(q[b].to(at::kDouble), kd.transpose(1, 2)) * scale;  // [H, Lq, Lk]
    s.masked_fill_(hidden, -kInf);
    at::Tensor mx = std::get<0>(s.max(2, true));
    mx.masked_fill_(mx == -kInf, 0.0);
    const at::Tensor e = (s - mx).exp();
    const at::Tensor sum = e.sum(2, true);
    out[b].copy_(at::matmul(e, vd) / sum.clamp_min(1e-300));
    lse[b].copy_((sum.log() + mx).squeeze(2));
  }
  return {out, lse};
}

}  // namespace flexgen::testing
