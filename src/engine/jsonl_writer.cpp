// The line writer of output files (see jsonl_writer.h).
#include "flexgen/jsonl_writer.h"

#include <cerrno>
#include <cstring>

namespace flexgen {

JsonlWriter::JsonlWriter(const std::string& path, bool append) {
  if (path == "-") {
    name_ = "stdout";
    file_ = stdout;
    return;
  }
  name_ = path;
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!file_) throw OutputFileError(path + ": cannot open for writing: " + std::strerror(errno));
  owns_ = true;
}

JsonlWriter::~JsonlWriter() {
  if (owns_) std::fclose(file_);
}

void JsonlWriter::write_line(std::string_view line) {
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fputc('\n', file_) == EOF ||
      std::fflush(file_) != 0)
    throw OutputFileError(name_ + ": write failed: " + std::strerror(errno));
}

}  // namespace flexgen
