// Backslash escapes and printable text (see text_escape.h).
#include "flexgen/text_escape.h"

#include <cstdio>
#include <stdexcept>

#include "utf8.h"

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
      const int v = i + 1 < text.size() ? utf8::hex_digit(text[i + 1]) : -1;
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

namespace {

// Terminal columns of UTF-8 text: one per code point (continuation bytes do not count).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The first `n` code points of `s`.
std::string take_columns(const std::string& s, size_t n) {
  size_t cols = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cols == n) break;
      ++cols;
    }
  }
  return s.substr(0, i);
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// The last `n` code points of `s`.
std::string last_columns(const std::string& s, size_t n) {
  const size_t total = columns(s);
  if (total <= n) return s;
  const std::string head = take_columns(s, total - n);
  return s.substr(head.size());
}

}  // namespace

std::string printable_text(const std::string& text) {
  const std::string e = escape_text(text);
  std::string out;
  for (size_t i = 0; i < e.size();) {
    const size_t n = utf8_length(e, i);
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
  if (columns(p) <= n) return p;
  const size_t head = (n - 5) / 2;
  return take_columns(p, head) + " ... " + last_columns(p, n - 5 - head);
}

}  // namespace flexgen
