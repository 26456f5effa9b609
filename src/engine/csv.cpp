// RFC 4180 CSV (see csv.h).
#include "csv.h"

#include <stdexcept>

namespace flexgen::csv {

std::optional<Row> Reader::next() {
  while (true) {
    int c = in_.peek();
    if (c == EOF) return std::nullopt;
    if (c == '\n' || c == '\r') {  // blank line
      in_.get();
      if (c == '\r' && in_.peek() == '\n') in_.get();
      ++line_;
      continue;
    }
    break;
  }
  Row row;
  row.line = line_;
  std::string field;
  bool quoted = false, after_quote = false;
  size_t quote_line = 0;
  while (true) {
    const int c = in_.get();
    if (quoted) {
      if (c == EOF)
        throw FormatError("line " + std::to_string(quote_line) + ": a quoted field is never closed");
      if (c == '"') {
        if (in_.peek() == '"') {
          in_.get();
          field += '"';
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++line_;
        field += static_cast<char>(c);
      }
      continue;
    }
    if (c == EOF || c == '\n' || c == '\r' || c == ',') {
      row.fields.push_back(std::move(field));
      field.clear();
      after_quote = false;
      if (c == ',') continue;
      if (c == '\r' && in_.peek() == '\n') in_.get();
      if (c != EOF) ++line_;
      return row;
    }
    if (after_quote)
      throw FormatError("line " + std::to_string(line_) + ": text after the closing quote of field " +
                               std::to_string(row.fields.size() + 1));
    if (c == '"' && field.empty()) {
      quoted = true;
      quote_line = line_;
      continue;
    }
    field += static_cast<char>(c);
  }
}

TableReader::TableReader(std::istream& in) : reader_(in) {
  auto header = reader_.next();
  if (!header) throw FormatError("empty file");
  columns_ = std::move(header->fields);
  if (!columns_.empty() && columns_[0].rfind("\xEF\xBB\xBF", 0) == 0) columns_[0] = columns_[0].substr(3);
}

nlohmann::json TableReader::object(const Row& row) const {
  if (row.fields.size() != columns_.size())
    throw RowShapeError("has " + std::to_string(row.fields.size()) + " fields; the header has " +
                        std::to_string(columns_.size()));
  nlohmann::json obj = nlohmann::json::object();
  for (size_t i = 0; i < columns_.size(); ++i)
    if (!columns_[i].empty()) obj[columns_[i]] = row.fields[i];
  return obj;
}

std::string quote(const std::string& field) {
  const bool needs = field.find_first_of(",\"\r\n") != std::string::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!needs) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string format_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += quote(fields[i]);
  }
  return out + "\n";
}

}  // namespace flexgen::csv
