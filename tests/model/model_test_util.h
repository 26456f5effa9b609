// Shared helpers of the model tests: paths of the committed tiny models and goldens.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "flexgen/mask.h"
#include "flexgen/safetensors.h"

namespace flexgen::test {

inline std::filesystem::path model_data_dir() {
  return std::filesystem::path(FLEXGEN_SOURCE_DIR) / "tests" / "data" / "model";
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline at::Tensor ids_tensor(const nlohmann::json& rows) {
  std::vector<int64_t> flat;
  int64_t b = 0, l = 0;
  for (const auto& r : rows) {
    l = static_cast<int64_t>(r.size());
    for (const auto& v : r) flat.push_back(v.get<int64_t>());
    ++b;
  }
  return at::tensor(flat, at::kLong).view({b, l});
}

inline at::Tensor sequential_positions(int64_t b, int64_t l, int64_t start = 0) {
  return at::arange(start, start + l, at::kLong).unsqueeze(0).expand({b, l}).contiguous();
}

// AttentionMask rows of golden.json's "mask_rows".
inline std::vector<AttentionMask> golden_masks(const nlohmann::json& rows) {
  std::vector<AttentionMask> out;
  for (const auto& r : rows) {
    AttentionMask m;
    m.group_ids = r["group_ids"].get<std::vector<int32_t>>();
    const auto vis = r["visible"];
    m.spec.num_groups = static_cast<int32_t>(vis.size());
    for (const auto& row : vis)
      for (const auto& v : row) m.spec.visible.push_back(static_cast<uint8_t>(v.get<int>()));
    m.spec.causal = r["causal"].get<bool>();
    out.push_back(std::move(m));
  }
  return out;
}

inline at::Tensor golden_positions(const nlohmann::json& rows) {
  std::vector<std::vector<int64_t>> p;
  for (const auto& r : rows) p.push_back(r["positions"].get<std::vector<int64_t>>());
  return ids_tensor(nlohmann::json(p));
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace flexgen::test
