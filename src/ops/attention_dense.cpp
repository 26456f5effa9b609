// Dense masked attention: the reference behind flexgen::attention (see attention.h).
#include "flexgen/attention.h"
#include "flexgen/block_sparse_attention.h"
#include "flexgen/block_sparse_attention_cuda.h"

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

at::Tensor dense_allowed(const AttentionMaskRef& mask, int64_t batch, int64_t q_len,
                         int64_t kv_len, int64_t q_offset, int64_t kv_offset) {
  if (q_offset < 0 || kv_offset < 0)
    throw std::invalid_argument("attention: negative q_offset/kv_offset");
  switch (mask.kind) {
    case AttentionMaskRef::Kind::Causal: {
      auto qpos = at::arange(q_offset, q_offset + q_len, at::kLong).unsqueeze(1);
      auto kpos = at::arange(kv_offset, kv_offset + kv_len, at::kLong).unsqueeze(0);
      return kpos.le(qpos).unsqueeze(0);
    }
    case AttentionMaskRef::Kind::Dense: {
      const at::Tensor& d = mask.dense;
      if (!d.defined() || d.scalar_type() != at::kBool || d.dim() != 3 ||
          (d.size(0) != 1 && d.size(0) != batch) || d.size(1) != q_len || d.size(2) != kv_len)
        throw std::invalid_argument("attention: dense mask must be bool [" +
                                    std::to_string(batch) + " or 1, " + std::to_string(q_len) +
                                    ", " + std::to_string(kv_len) + "], got " +
                                    (d.defined() ? shape_str(d) : std::string("none")));
      return d;
    }
    case AttentionMaskRef::Kind::Groups: {
      if (mask.groups == nullptr || (mask.groups->size() != 1 &&
                                     static_cast<int64_t>(mask.groups->size()) != batch))
        throw std::invalid_argument("attention: need one AttentionMask per batch row (" +
                                    std::to_string(batch) + ") or one for all");
      const int64_t rows = static_cast<int64_t>(mask.groups->size());
      auto out = at::empty({rows, q_len, kv_len}, at::kBool);
      auto* p = out.data_ptr<bool>();
      for (int64_t b = 0; b < rows; ++b) {
        const AttentionMask& m = (*mask.groups)[b];
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
  }
  throw std::invalid_argument("attention: unknown mask kind");
}

at::Tensor attention_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const AttentionMaskRef& mask, double scale, int64_t q_offset,
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

namespace {

// Decode step of rows at their own positions, dense reference: row by row over the keys up to
// the row's position (the masks are causal, so later cache slots are never allowed).
at::Tensor attention_rows_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const AttentionMaskRef& mask, double scale) {
  const std::vector<int64_t>& pos = *mask.row_q_offsets;
  const int64_t B = q.size(0);
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<AttentionMask> one{(*mask.groups)[mask.groups->size() == 1 ? 0 : b]};
    const int64_t keys = std::min(k.size(2), pos[b] + 1);
    out.push_back(attention_dense(q.narrow(0, b, 1), k.narrow(0, b, 1).narrow(2, 0, keys),
                                  v.narrow(0, b, 1).narrow(2, 0, keys), AttentionMaskRef::from_groups(one), scale,
                                  pos[b], 0));
  }
  return at::cat(out, 0);
}

void check_rows_mode(const at::Tensor& q, const AttentionMaskRef& mask) {
  if (mask.kind != AttentionMaskRef::Kind::Groups || mask.groups == nullptr)
    throw std::invalid_argument("attention: per-row positions need group masks");
  if (q.size(2) != 1) throw std::invalid_argument("attention: per-row positions take one query row per batch row");
  if (mask.device_table == nullptr) {
    if (mask.row_q_offsets == nullptr || static_cast<int64_t>(mask.row_q_offsets->size()) != q.size(0))
      throw std::invalid_argument("attention: need one query position per batch row");
    if (mask.groups->size() != 1 && static_cast<int64_t>(mask.groups->size()) != q.size(0))
      throw std::invalid_argument("attention: need one AttentionMask per batch row or one for all");
    for (const AttentionMask& m : *mask.groups)
      if (!m.spec.causal) throw std::invalid_argument("attention: per-row positions need causal masks");
  }
}

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMaskRef& mask, double scale, int64_t q_offset,
                     int64_t kv_offset) {
  const bool rows_mode = mask.row_q_offsets != nullptr || mask.device_table != nullptr;
  if (rows_mode) check_rows_mode(q, mask);
  // Block-sparse kernels take one mask reference per batch row (rows mode) or per given mask
  // (1 = shared by all rows); in rows mode each row has its own query position.
  const bool groups = mask.kind == AttentionMaskRef::Kind::Groups && mask.groups != nullptr;
  const size_t refs_count = rows_mode ? static_cast<size_t>(q.size(0)) : groups ? mask.groups->size() : 0;
  auto mask_of = [&](size_t i) { return mask.groups->size() == 1 ? size_t{0} : i; };
  auto q_of = [&](size_t i) { return rows_mode ? (*mask.row_q_offsets)[i] : q_offset; };
  const int64_t k_of = rows_mode ? 0 : kv_offset;
  BlockSparseAttentionOptions options;
  options.scale = scale;
  if (q.is_cuda() && mask.kind == AttentionMaskRef::Kind::Groups) {
    if (mask.device_table != nullptr) return block_sparse_attention_cuda_table(q, k, v, *mask.device_table, options).out;
    if (mask.device_blocks == nullptr)
      throw std::invalid_argument("attention: group masks on CUDA need their block masks uploaded (device_blocks)");
    if (!groups || mask.device_blocks->size() != mask.groups->size())
      throw std::invalid_argument("attention: one device block mask per group mask is needed");
    std::vector<DeviceMaskRef> refs;
    refs.reserve(refs_count);
    for (size_t i = 0; i < refs_count; ++i) refs.push_back(DeviceMaskRef{&(*mask.device_blocks)[mask_of(i)], q_of(i), k_of});
    return block_sparse_attention_cuda(q, k, v, refs, options).out;
  }
  if (mask.kind == AttentionMaskRef::Kind::Groups && mask.blocks != nullptr) {
    if (!groups || mask.blocks->size() != mask.groups->size())
      throw std::invalid_argument("attention: one block mask per group mask is needed");
    std::vector<SparseMaskRef> refs;
    refs.reserve(refs_count);
    for (size_t i = 0; i < refs_count; ++i)
      refs.push_back(SparseMaskRef{&(*mask.blocks)[mask_of(i)], &(*mask.groups)[mask_of(i)], q_of(i), k_of});
    return block_sparse_attention(q, k, v, refs, options).out;
  }
  if (rows_mode) {
    if (mask.device_table != nullptr) throw std::invalid_argument("attention: a device mask table needs CUDA tensors");
    return attention_rows_dense(q, k, v, mask, scale);
  }
  return attention_dense(q, k, v, mask, scale, q_offset, kv_offset);
}

}  // namespace flexgen
