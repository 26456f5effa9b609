// JSON or Python list literals of strings (see list_literal.h).
#include "list_literal.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "flexgen/text_escape.h"
#include "flexgen/utf8.h"

namespace flexgen {

namespace {

// Python's repr of a list of str: quotes ' or ", escapes \\ \' \" \n \t \r \xHH \uXXXX \UXXXXXXXX.
std::vector<std::string> parse_python_list(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("not a list of strings (" + what + " at character " + std::to_string(i + 1) + ")");
  };
  auto skip_space = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  skip_space();
  if (i >= s.size() || s[i] != '[') fail("no '['");
  ++i;
  skip_space();
  if (i < s.size() && s[i] == ']') {
    ++i;
  } else {
    while (true) {
      skip_space();
      if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail("expected a quoted string");
      const char q = s[i++];
      std::string item;
      while (true) {
        if (i >= s.size()) fail("unterminated string");
        const char c = s[i++];
        if (c == q) break;
        if (c != '\\') {
          item += c;
          continue;
        }
        if (i >= s.size()) fail("unterminated string");
        const char e = s[i++];
        int digits = 0;
        switch (e) {
          case '\\': item += '\\'; break;
          case '\'': item += '\''; break;
          case '"': item += '"'; break;
          case 'n': item += '\n'; break;
          case 't': item += '\t'; break;
          case 'r': item += '\r'; break;
          case 'x': digits = 2; break;
          case 'u': digits = 4; break;
          case 'U': digits = 8; break;
          default: fail(std::string("unknown escape \\") + e);
        }
        if (digits) {
          uint32_t cp = 0;
          for (int k = 0; k < digits; ++k) {
            const int v = i < s.size() ? hex_digit(s[i]) : -1;
            if (v < 0) fail("bad hex escape");
            cp = cp * 16 + static_cast<uint32_t>(v);
            ++i;
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("bad code point");
          utf8::append(item, cp);
        }
      }
      out.push_back(std::move(item));
      skip_space();
      if (i < s.size() && s[i] == ',') {
        ++i;
        skip_space();
        if (i < s.size() && s[i] == ']') {
          ++i;
          break;
        }
        continue;
      }
      if (i < s.size() && s[i] == ']') {
        ++i;
        break;
      }
      fail("expected ',' or ']'");
    }
  }
  skip_space();
  if (i != s.size()) fail("text after ']'");
  return out;
}

}  // namespace

std::vector<std::string> parse_string_list(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    if (!j.is_array()) throw std::invalid_argument("not a list of strings");
    std::vector<std::string> out;
    for (const auto& v : j) {
      if (!v.is_string()) throw std::invalid_argument("not a list of strings (an item is not a string)");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  return parse_python_list(text);
}

}  // namespace flexgen
