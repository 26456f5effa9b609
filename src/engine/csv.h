// RFC 4180 CSV reading and writing (internal header).
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace flexgen::csv {

// One record and the line its first field starts on (1-based).
struct Row {
  std::vector<std::string> fields;
  size_t line = 0;
};

// Reads records one at a time: quoted fields may hold commas, quotes ("") and line breaks;
// CRLF and LF both end records; a blank line is skipped. Throws std::runtime_error
// "line N: ..." on a quote left open or text after a closing quote.
class Reader {
 public:
  explicit Reader(std::istream& in) : in_(in) {}
  std::optional<Row> next();

 private:
  std::istream& in_;
  size_t line_ = 1;
};

// A field quoted when it holds a comma, quote, CR or LF, or starts/ends with a space.
std::string quote(const std::string& field);
// Fields joined by commas and ended by "\n".
std::string format_row(const std::vector<std::string>& fields);

}  // namespace flexgen::csv
