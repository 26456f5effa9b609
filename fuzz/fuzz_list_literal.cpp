// List cells of CSV datasets (JSON or Python list literals of strings) and WebQuestions
// targetValue strings.
//   parse_string_list(x) / parse_target_value(x): a list, or std::invalid_argument;
//   a list L (the input cut at 0x1F bytes) written as a Python literal (pandas' way) and, when
//   it is valid UTF-8, as JSON, parses back to L; non-empty items written as a targetValue
//   "(list (description \"...\") ...)" parse back to themselves.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "flexgen/dataset.h"
#include "flexgen/utf8.h"
#include "fuzz_target.h"
#include "list_literal.h"

namespace {

using flexgen::fuzz::split;

// Python's repr of a list of str, bytes >= 0x80 left as they are (pandas writes UTF-8).
std::string python_list(const std::vector<std::string>& items) {
  static const char* hex = "0123456789abcdef";
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += '\'';
    for (char ch : items[i]) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '\\' || c == '\'') {
        out += '\\';
        out += ch;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c < 0x20 || c == 0x7F) {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += ch;
      }
    }
    out += '\'';
  }
  return out + "]";
}

std::string target_value(const std::vector<std::string>& items) {
  std::string out = "(list";
  for (const auto& item : items) {
    out += " (description \"";
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\")";
  }
  return out + ")";
}

std::string show(const std::vector<std::string>& items) { return nlohmann::json(items).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace); }

}  // namespace

FLEXGEN_FUZZ_TARGET(list_literal) {
  using namespace flexgen;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> list;
  EXPECT_ONLY(std::invalid_argument, "", { list = parse_string_list(text); });
  EXPECT_ONLY(std::invalid_argument, "", { list = parse_target_value(text); });

  const std::vector<std::string> items = split(text, '\x1f');
  const std::string py = python_list(items);
  std::vector<std::string> back;
  FUZZ_CHECK(EXPECT_ONLY(std::invalid_argument, "", { back = parse_string_list(py); }),
             "parse_string_list rejected the Python literal " + py);
  FUZZ_CHECK(back == items, "Python literal " + py + " parsed as " + show(back));
  bool valid = true;
  for (const auto& item : items) valid = valid && utf8::find_invalid(item) == std::string::npos;
  if (valid) {
    const std::string js = nlohmann::json(items).dump();
    FUZZ_CHECK(EXPECT_ONLY(std::invalid_argument, "", { back = parse_string_list(js); }),
               "parse_string_list rejected the JSON list " + js);
    FUZZ_CHECK(back == items, "JSON list " + js + " parsed as " + show(back));
  }

  std::vector<std::string> answers;
  for (const auto& item : items)
    if (!item.empty()) answers.push_back(item);
  if (!answers.empty()) {
    const std::string tv = target_value(answers);
    FUZZ_CHECK(EXPECT_ONLY(std::invalid_argument, "", { back = parse_target_value(tv); }),
               "parse_target_value rejected " + tv);
    FUZZ_CHECK(back == answers, tv + " parsed as " + show(back));
  }
  return 0;
}
