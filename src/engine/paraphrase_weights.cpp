// Per-paraphrase weights (see paraphrase_weights.h).
#include "flexgen/paraphrase_weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <stdexcept>

namespace flexgen {

WeightTable read_weights(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the weights file");
  WeightTable table;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      throw std::runtime_error(where + "not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("uuid") || !j["uuid"].is_string())
      throw std::runtime_error(where + "expected an object with a string \"uuid\"");
    auto& row = table[j["uuid"].get<std::string>()];
    auto weight = [&](const nlohmann::json& w) {
      if (!w.is_number() || !(w.get<double>() >= 0)) throw std::runtime_error(where + "weights must be numbers >= 0");
      return w.get<double>();
    };
    if (j.contains("weights")) {
      if (!j["weights"].is_array()) throw std::runtime_error(where + "\"weights\" must be a list");
      for (size_t i = 0; i < j["weights"].size(); ++i) row[i] = weight(j["weights"][i]);
    } else if (j.contains("index") && j.contains("weight")) {
      if (!j["index"].is_number_unsigned()) throw std::runtime_error(where + "\"index\" must be an integer >= 0");
      row[j["index"].get<size_t>()] = weight(j["weight"]);
    } else {
      throw std::runtime_error(where + "expected \"weights\": [...] or \"index\" and \"weight\"");
    }
  }
  return table;
}

}  // namespace flexgen
