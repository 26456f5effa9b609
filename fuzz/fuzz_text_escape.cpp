// Escapes of flag values (--separator, --stop) and text made printable for a terminal.
//   unescape_text(x): a string, or std::invalid_argument (never another exception);
//   unescape_text(escape_text(x)) == x for every byte string x;
//   printable_text(x) is valid UTF-8 without control characters; preview_text(x, n) has at most
//   n characters.
#include <string>

#include "flexgen/text_escape.h"
#include "flexgen/utf8.h"
#include "fuzz_target.h"

FLEXGEN_FUZZ_TARGET(text_escape) {
  using namespace flexgen;
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::string unescaped;
  if (EXPECT_ONLY(std::invalid_argument, "", { unescaped = unescape_text(text); })) {
    // Without a backslash nothing changes.
    if (text.find('\\') == std::string::npos) FUZZ_CHECK(unescaped == text, "unescape_text changed plain text");
  }

  const std::string escaped = escape_text(text);
  std::string back;
  const bool ok = EXPECT_ONLY(std::invalid_argument, "", { back = unescape_text(escaped); });
  FUZZ_CHECK(ok, "unescape_text rejected escape_text's output: " + escaped);
  FUZZ_CHECK(back == text, "unescape_text(escape_text(x)) != x for escaped '" + escaped + "'");

  const std::string printable = printable_text(text);
  FUZZ_CHECK(utf8::find_invalid(printable) == std::string::npos, "printable_text is not valid UTF-8: " + printable);
  for (unsigned char c : printable)
    FUZZ_CHECK(c >= 0x20 && c != 0x7F, "printable_text holds a control byte: " + printable);

  const size_t columns = 6 + (size % 40);
  const std::string preview = preview_text(text, columns);
  FUZZ_CHECK(utf8::count_chars(preview) <= columns,
             "preview_text(x, " + std::to_string(columns) + ") is longer: " + preview);
  FUZZ_CHECK(utf8::find_invalid(preview) == std::string::npos, "preview_text is not valid UTF-8: " + preview);
  return 0;
}
