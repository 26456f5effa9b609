// Dense masked attention: the reference behind flexgen::attention (attention.h), and the bool
// "allowed" tensor a mask describes.
#include "flexgen/attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace flexgen {
namespace {

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw std::invalid_argument("attention: q, k, v must be 4-D, got q " + shape_str(q) +
                                " k " + shape_str(k) + " v " + shape_str(v));
  if (k.sizes() != v.sizes())
    throw std::invalid_argument("attention: k " + shape_str(k) + " and v " + shape_str(v) +
                                " differ");
  if (q.size(0) != k.size(0) || q.size(3) != k.size(3))
    throw std::invalid_argument("attention: batch or head_dim of q " + shape_str(q) +
                                " does not match k " + shape_str(k));
  if (k.size(1) == 0 || q.size(1) % k.size(1) != 0)
    throw std::invalid_argument("attention: query heads " + std::to_string(q.size(1)) +
                                " not a multiple of KV heads " + std::to_string(k.size(1)));
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type())
    throw std::invalid_argument("attention: q, k, v dtypes differ");
}

}  // namespace

at::Tensor dense_allowed(const BatchMask& mask, int64_t batch, int64_t q_len,
                         int64_t kv_len, int64_t q_offset, int64_t kv_offset) {
  if (q_offset < 0 || kv_offset < 0)
    throw std::invalid_argument("attention: negative q_offset/kv_offset");
  switch (mask.kind()) {
    case BatchMask::Kind::Causal: {
      auto qpos = at::arange(q_offset, q_offset + q_len, at::kLong).unsqueeze(1);
      auto kpos = at::arange(kv_offset, kv_offset + kv_len, at::kLong).unsqueeze(0);
      return kpos.le(qpos).unsqueeze(0);
    }
    case BatchMask::Kind::Dense: {
      const at::Tensor& d = mask.dense_allowed_tensor();
      if (!d.defined() || d.scalar_type() != at::kBool || d.dim() != 3 ||
          (d.size(0) != 1 && d.size(0) != batch) || d.size(1) != q_len || d.size(2) != kv_len)
        throw std::invalid_argument("attention: dense mask must be bool [" +
                                    std::to_string(batch) + " or 1, " + std::to_string(q_len) +
                                    ", " + std::to_string(kv_len) + "], got " +
                                    (d.defined() ? shape_str(d) : std::string("none")));
      return d;
    }
    case BatchMask::Kind::Rows: {
      const size_t count = mask.row_masks().size();
      if (count != 1 && static_cast<int64_t>(count) != batch)
        throw std::invalid_argument("attention: need one AttentionMask per batch row (" +
                                    std::to_string(batch) + ") or one for all");
      const int64_t rows = static_cast<int64_t>(count);
      auto out = at::empty({rows, q_len, kv_len}, at::kBool);
      auto* p = out.data_ptr<bool>();
      for (int64_t b = 0; b < rows; ++b) {
        const AttentionMask& m = mask.groups_of(static_cast<size_t>(b));
        if (m.length() < q_offset + q_len || m.length() < kv_offset + kv_len)
          throw std::invalid_argument(
              "attention: AttentionMask of row " + std::to_string(b) + " covers " +
              std::to_string(m.length()) + " positions, attention needs queries up to " +
              std::to_string(q_offset + q_len) + " and keys up to " +
              std::to_string(kv_offset + kv_len));
        if (static_cast<int64_t>(m.spec.visible.size()) !=
            static_cast<int64_t>(m.spec.num_groups) * m.spec.num_groups)
          throw std::invalid_argument("attention: AttentionMask visibility matrix is not " +
                                      std::to_string(m.spec.num_groups) + "^2");
        for (int64_t i = 0; i < q_len; ++i) {
          const int64_t qa = q_offset + i;
          const int32_t gq = m.group_ids[qa];
          if (gq < 0 || gq >= m.spec.num_groups)
            throw std::invalid_argument("attention: group id out of range at position " +
                                        std::to_string(qa));
          bool* row = p + (b * q_len + i) * kv_len;
          for (int64_t j = 0; j < kv_len; ++j) {
            const int64_t ka = kv_offset + j;
            const int32_t gk = m.group_ids[ka];
            if (gk < 0 || gk >= m.spec.num_groups)
              throw std::invalid_argument("attention: group id out of range at position " +
                                          std::to_string(ka));
            row[j] = (!m.spec.causal || ka <= qa) && m.spec.sees(gq, gk);
          }
        }
      }
      return out;
    }
    case BatchMask::Kind::Decode:
    case BatchMask::Kind::DecodeTable:
      break;
  }
  throw std::invalid_argument("attention: a decode-step mask has no dense form");
}

at::Tensor attention_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const BatchMask& mask, double scale, int64_t q_offset,
                           int64_t kv_offset) {
  check_inputs(q, k, v);
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Lk = k.size(2), G = H / Hkv;
  const at::Tensor allowed = dense_allowed(mask, B, Lq, Lk, q_offset, kv_offset).to(q.device());

  // GQA without copying K/V: query heads h = kv * G + g grouped as [B, Hkv, G*Lq, D].
  const at::Tensor qg = q.reshape({B, Hkv, G * Lq, D});
  at::Tensor scores = at::matmul(qg, k.transpose(-1, -2));  // [B, Hkv, G*Lq, Lk], dtype of q
  scores = scores.to(at::kFloat).mul_(scale).view({B, Hkv, G, Lq, Lk});
  const at::Tensor allow5 = allowed.view({allowed.size(0), 1, 1, Lq, Lk});
  scores.masked_fill_(allow5.logical_not(), -std::numeric_limits<float>::infinity());
  at::Tensor probs = at::softmax(scores, -1);
  // Rows with nothing allowed: softmax of all -inf is NaN; they return zeros.
  const at::Tensor any = allow5.any(-1, /*keepdim=*/true);
  probs = at::where(any, probs, at::zeros({}, probs.options()));
  probs = probs.to(v.scalar_type()).view({B, Hkv, G * Lq, Lk});
  return at::matmul(probs, v).view({B, H, Lq, D});
}

}  // namespace flexgen
