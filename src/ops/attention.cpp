// flexgen::attention (attention.h): the batch mask's kinds, the one builder of row masks, and
// the dispatch to the kernel the mask's forms call for.
#include "flexgen/attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "cpu/block_sparse_attention.h"
#include "cuda/block_sparse_attention_cuda.h"

namespace flexgen {

RowMask make_row_mask(AttentionMask mask, int64_t block_size, const at::Device& device) {
  if (block_size < 0) throw std::invalid_argument("make_row_mask: negative block size");
  if (device.is_cuda() && block_size == 0)
    throw std::invalid_argument("make_row_mask: attention on CUDA runs the block-sparse kernel; it needs a block size");
  RowMask row;
  auto groups = std::make_shared<const AttentionMask>(std::move(mask));
  if (block_size > 0) {
    auto blocks = std::make_shared<const BlockMask>(build_block_mask(*groups, block_size));
    if (device.is_cuda())
      row.device = std::make_shared<const DeviceBlockMask>(upload_block_mask(*blocks, *groups, device));
    row.blocks = std::move(blocks);
  }
  row.groups = std::move(groups);
  return row;
}

BatchMask BatchMask::dense(at::Tensor allowed) {
  BatchMask m(Kind::Dense);
  m.dense_ = std::move(allowed);
  return m;
}

BatchMask BatchMask::rows(std::vector<RowMask> rows) {
  if (rows.empty()) throw std::invalid_argument("attention: a row mask batch needs at least one row");
  for (const RowMask& r : rows)
    if (!r.groups) throw std::invalid_argument("attention: a row mask without its group mask");
  BatchMask m(Kind::Rows);
  m.rows_ = std::move(rows);
  return m;
}

BatchMask BatchMask::rows(const std::vector<AttentionMask>& masks, const std::vector<BlockMask>& blocks) {
  if (!blocks.empty() && blocks.size() != masks.size())
    throw std::invalid_argument("attention: one block mask per group mask is needed");
  std::vector<RowMask> rows(masks.size());
  for (size_t i = 0; i < masks.size(); ++i) {
    rows[i].groups = std::make_shared<const AttentionMask>(masks[i]);
    if (!blocks.empty()) rows[i].blocks = std::make_shared<const BlockMask>(blocks[i]);
  }
  return BatchMask::rows(std::move(rows));
}

BatchMask BatchMask::decode(std::vector<RowMask> rows, std::vector<int64_t> positions) {
  BatchMask m = BatchMask::rows(std::move(rows));
  m.kind_ = Kind::Decode;
  m.positions_ = std::move(positions);
  return m;
}

BatchMask BatchMask::decode_table(const DeviceMaskTable& table) {
  BatchMask m(Kind::DecodeTable);
  m.table_ = &table;
  return m;
}

namespace {

// Decode step of rows at their own positions, dense reference: row by row over the keys up to
// the row's position (the masks are causal, so later cache slots are never allowed).
at::Tensor decode_rows_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const BatchMask& mask,
                             double scale) {
  const std::vector<int64_t>& pos = mask.positions();
  const int64_t B = q.size(0);
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const RowMask& row = mask.row_masks()[mask.row_masks().size() == 1 ? 0 : static_cast<size_t>(b)];
    const int64_t keys = std::min(k.size(2), pos[b] + 1);
    out.push_back(attention_dense(q.narrow(0, b, 1), k.narrow(0, b, 1).narrow(2, 0, keys),
                                  v.narrow(0, b, 1).narrow(2, 0, keys), BatchMask::rows({row}), scale, pos[b], 0));
  }
  return at::cat(out, 0);
}

void check_decode(const at::Tensor& q, const BatchMask& mask) {
  if (q.size(2) != 1) throw std::invalid_argument("attention: per-row positions take one query row per batch row");
  if (static_cast<int64_t>(mask.positions().size()) != q.size(0))
    throw std::invalid_argument("attention: need one query position per batch row");
  const size_t n = mask.row_masks().size();
  if (n != 1 && static_cast<int64_t>(n) != q.size(0))
    throw std::invalid_argument("attention: need one AttentionMask per batch row or one for all");
  for (const RowMask& r : mask.row_masks())
    if (!r.groups->spec.causal) throw std::invalid_argument("attention: per-row positions need causal masks");
}

// The forms every row of the batch has: rows built for one device all have the same ones.
enum class Forms { Dense, CpuBlocks, DeviceBlocks };

Forms forms_of(const BatchMask& mask, const at::Tensor& q) {
  const std::vector<RowMask>& rows = mask.row_masks();
  const bool device = rows.front().device != nullptr, blocks = rows.front().blocks != nullptr;
  for (const RowMask& r : rows)
    if ((r.device != nullptr) != device || (r.blocks != nullptr) != blocks)
      throw std::invalid_argument("attention: the rows of a batch were built for different kernels");
  if (device != q.is_cuda())
    throw std::invalid_argument(std::string("attention: masks built for ") + (device ? "CUDA" : "the CPU") +
                                ", tensors on " + q.device().str());
  return device ? Forms::DeviceBlocks : blocks ? Forms::CpuBlocks : Forms::Dense;
}

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const BatchMask& mask,
                     double scale, int64_t q_offset, int64_t kv_offset) {
  BlockSparseAttentionOptions options;
  options.scale = scale;
  options.batch_invariant = mask.batch_invariant();
  switch (mask.kind()) {
    case BatchMask::Kind::Causal:
    case BatchMask::Kind::Dense:
      return attention_dense(q, k, v, mask, scale, q_offset, kv_offset);
    case BatchMask::Kind::DecodeTable:
      if (!q.is_cuda()) throw std::invalid_argument("attention: a device mask table needs CUDA tensors");
      return block_sparse_attention_cuda_table(q, k, v, *mask.table(), options).out;
    case BatchMask::Kind::Rows:
    case BatchMask::Kind::Decode:
      break;
  }
  // Rows: one mask reference per given row mask (1 = shared by all batch rows), at the call's
  // offsets; Decode: one per batch row, each at its own position, keys from slot 0.
  const bool decode = mask.kind() == BatchMask::Kind::Decode;
  if (decode) check_decode(q, mask);
  const Forms forms = forms_of(mask, q);
  const std::vector<RowMask>& rows = mask.row_masks();
  const size_t count = decode ? static_cast<size_t>(q.size(0)) : rows.size();
  auto row_of = [&](size_t i) -> const RowMask& { return rows[rows.size() == 1 ? 0 : i]; };
  auto q_of = [&](size_t i) { return decode ? mask.positions()[i] : q_offset; };
  const int64_t k_of = decode ? 0 : kv_offset;
  switch (forms) {
    case Forms::DeviceBlocks: {
      std::vector<DeviceMaskRef> refs;
      refs.reserve(count);
      for (size_t i = 0; i < count; ++i) refs.push_back(DeviceMaskRef{row_of(i).device.get(), q_of(i), k_of});
      return block_sparse_attention_cuda(q, k, v, refs, options).out;
    }
    case Forms::CpuBlocks: {
      std::vector<SparseMaskRef> refs;
      refs.reserve(count);
      for (size_t i = 0; i < count; ++i)
        refs.push_back(SparseMaskRef{row_of(i).blocks.get(), row_of(i).groups.get(), q_of(i), k_of});
      return block_sparse_attention(q, k, v, refs, options).out;
    }
    case Forms::Dense:
      break;
  }
  return decode ? decode_rows_dense(q, k, v, mask, scale) : attention_dense(q, k, v, mask, scale, q_offset, kv_offset);
}

}  // namespace flexgen
