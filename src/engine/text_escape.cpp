// Backslash escapes and printable text (see text_escape.h).
#include "flexgen/text_escape.h"

#include <cstdio>
#include <stdexcept>

#include "flexgen/utf8.h"

namespace flexgen {

std::string unescape_text(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    const size_t at = i;
    if (i + 1 >= text.size())
      throw std::invalid_argument("a lone backslash ends the text (write \\\\ for a backslash)");
    const char e = text[++i];
    switch (e) {
      case 'n': out += '\n'; continue;
      case 't': out += '\t'; continue;
      case 'r': out += '\r'; continue;
      case '0': out += '\0'; continue;
      case '\\': out += '\\'; continue;
      case '"': out += '"'; continue;
      case '\'': out += '\''; continue;
      default: break;
    }
    const int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (digits == 0)
      throw std::invalid_argument("unknown escape '\\" + std::string(1, e) + "' at character " +
                                  std::to_string(at + 1) + " (known: \\n \\t \\r \\0 \\\\ \\\" \\' \\xHH \\uXXXX \\UXXXXXXXX)");
    uint32_t cp = 0;
    for (int k = 0; k < digits; ++k) {
      const int v = i + 1 < text.size() ? hex_digit(text[i + 1]) : -1;
      if (v < 0)
        throw std::invalid_argument("escape '\\" + std::string(1, e) + "' at character " + std::to_string(at + 1) +
                                    " needs " + std::to_string(digits) + " hex digits");
      cp = cp * 16 + static_cast<uint32_t>(v);
      ++i;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      throw std::invalid_argument("escape at character " + std::to_string(at + 1) +
                                  " is not a Unicode scalar value");
    utf8::append(out, cp);
  }
  return out;
}

std::string escape_text(const std::string& text) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string printable_text(const std::string& text) {
  const std::string e = escape_text(text);
  std::string out;
  for (size_t i = 0; i < e.size();) {
    const size_t n = utf8::sequence_length(e, i);
    if (n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(e[i]));
      out += buf;
      ++i;
    } else {
      out.append(e, i, n);
      i += n;
    }
  }
  return out;
}

std::string preview_text(const std::string& text, size_t n) {
  const std::string p = printable_text(text);
  const size_t total = utf8::count_chars(p);
  if (total <= n) return p;
  const size_t head = (n - 5) / 2, tail = n - 5 - head;
  return p.substr(0, utf8::prefix_bytes(p, head)) + " ... " + p.substr(utf8::prefix_bytes(p, total - tail));
}

}  // namespace flexgen
