// RFC 4180 CSV, as datasets and result files are read and written.
//   Reading any text record by record gives records or csv::FormatError (never another
//   exception); a table's rows give their objects or csv::RowShapeError.
//   Rows made from the input (records cut at 0x1E bytes, fields at 0x1F) written with
//   format_row() read back as the same fields (a row of one empty field is a blank line,
//   which readers skip, so such rows are left out).
#include <sstream>
#include <string>
#include <vector>

#include "csv.h"
#include "fuzz_target.h"

namespace {

using flexgen::fuzz::split;

std::string show(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) out += "[" + f + "]";
  return out;
}

}  // namespace

FLEXGEN_FUZZ_TARGET(csv) {
  using namespace flexgen;
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::istringstream in(text);
    csv::Reader reader(in);
    size_t last_line = 0;
    EXPECT_ONLY(csv::FormatError, "line", {
      while (auto row = reader.next()) {
        FUZZ_CHECK(row->line > last_line, "record line numbers increase");
        last_line = row->line;
      }
    });
  }
  {
    std::istringstream in(text);
    std::string message;
    EXPECT_ONLY_MSG(csv::FormatError, "", &message, {
      csv::TableReader table(in);
      while (auto row = table.next()) {
        try {
          const auto obj = table.object(*row);
          FUZZ_CHECK(obj.is_object(), "a row is an object");
        } catch (const csv::RowShapeError& e) {
          FUZZ_CHECK(std::string(e.what()).find("fields") != std::string::npos, e.what());
        }
      }
    });
  }

  std::vector<std::vector<std::string>> rows;
  std::string written;
  for (const auto& record : split(text, '\x1e')) {
    auto fields = split(record, '\x1f');
    if (fields.size() == 1 && fields[0].empty()) continue;
    written += csv::format_row(fields);
    rows.push_back(std::move(fields));
  }
  std::istringstream in(written);
  csv::Reader reader(in);
  size_t i = 0;
  const bool ok = EXPECT_ONLY(csv::FormatError, "", {
    while (auto row = reader.next()) {
      FUZZ_CHECK(i < rows.size(), "more records read back than written");
      FUZZ_CHECK(row->fields == rows[i], "row " + std::to_string(i) + " wrote " + show(rows[i]) + " read " + show(row->fields));
      ++i;
    }
  });
  FUZZ_CHECK(ok, "format_row's output is not CSV: " + written);
  FUZZ_CHECK(i == rows.size(), "fewer records read back than written");
  return 0;
}
