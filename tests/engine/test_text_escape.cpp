#include <gtest/gtest.h>

#include "flexgen/text_escape.h"

using flexgen::escape_text;
using flexgen::unescape_text;

TEST(TextEscape, DefaultSeparator) { EXPECT_EQ(unescape_text("\\n\\n[SEP]\\n\\n"), "\n\n[SEP]\n\n"); }

TEST(TextEscape, KnownEscapes) {
  EXPECT_EQ(unescape_text("a\\tb\\rc\\\\d\\\"e\\'f"), "a\tb\rc\\d\"e'f");
  EXPECT_EQ(unescape_text("\\u00a0"), "\xC2\xA0");
  EXPECT_EQ(unescape_text("\\x41\\u00E9\\U0001F600"), "A\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(unescape_text(std::string("x\\0y")), std::string("x\0y", 3));
  EXPECT_EQ(unescape_text("plain [SEP] text"), "plain [SEP] text");
  EXPECT_EQ(unescape_text(""), "");
}

TEST(TextEscape, BadEscapesNameThePosition) {
  auto message = [](const std::string& s) {
    try {
      unescape_text(s);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("ab\\q").find("unknown escape '\\q' at character 3"), std::string::npos);
  EXPECT_NE(message("ab\\").find("lone backslash"), std::string::npos);
  EXPECT_NE(message("\\u12").find("needs 4 hex digits"), std::string::npos);
  EXPECT_NE(message("\\uzzzz").find("needs 4 hex digits"), std::string::npos);
  EXPECT_NE(message("\\ud800").find("not a Unicode scalar value"), std::string::npos);
  EXPECT_NE(message("\\U00110000").find("not a Unicode scalar value"), std::string::npos);
}

TEST(TextEscape, EscapeRoundTrips) {
  const std::string text = "a\n\nb\t\\c\r\x01 \xC3\xA9";
  EXPECT_EQ(escape_text(text), "a\\n\\nb\\t\\\\c\\r\\x01 \xC3\xA9");
  EXPECT_EQ(unescape_text(escape_text(text)), text);
}
