// RFC 4180 CSV reading and writing (internal header).
#pragma once

#include <nlohmann/json.hpp>

#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flexgen::csv {

// One record and the line its first field starts on (1-based).
struct Row {
  std::vector<std::string> fields;
  size_t line = 0;
};

// Text that is not CSV: "line N: ..." (a quote left open, text after a closing quote), or
// "empty file" where a header row is needed.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A record whose field count is not the header's: "has N fields; the header has M".
struct RowShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads records one at a time: quoted fields may hold commas, quotes ("") and line breaks;
// CRLF and LF both end records; a blank line is skipped. Throws FormatError
// "line N: ..." on a quote left open or text after a closing quote.
class Reader {
 public:
  explicit Reader(std::istream& in) : in_(in) {}
  std::optional<Row> next();

 private:
  std::istream& in_;
  size_t line_ = 1;
};

// The records of a CSV file with a header row (datasets, result files), each as a JSON object
// of strings keyed by column name. A UTF-8 BOM before the first column name is dropped.
class TableReader {
 public:
  // Reads the header row; throws FormatError ("empty file" when there is none).
  explicit TableReader(std::istream& in);
  const std::vector<std::string>& columns() const { return columns_; }
  // The next record, or nullopt at the end; throws FormatError.
  std::optional<Row> next() { return reader_.next(); }
  // {column: field} of a record (columns with an empty name are left out); throws
  // RowShapeError when its field count is not the header's.
  nlohmann::json object(const Row& row) const;

 private:
  Reader reader_;
  std::vector<std::string> columns_;
};

// A field quoted when it holds a comma, quote, CR or LF, or starts/ends with a space.
std::string quote(const std::string& field);
// Fields joined by commas and ended by "\n".
std::string format_row(const std::vector<std::string>& fields);

}  // namespace flexgen::csv
