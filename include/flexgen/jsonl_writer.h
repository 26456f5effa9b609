// Writes records one line at a time to a file or stdout, each flushed as it is written,
// so that a killed run loses nothing; errors name the file.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flexgen {

// A bad output or result file: the message names the file (and line) and the problem.
struct OutputFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class JsonlWriter {
 public:
  // "-" = stdout. A file is replaced, or appended to when `append` (resuming a run).
  // Throws OutputFileError "<path>: cannot open for writing: <reason>".
  explicit JsonlWriter(const std::string& path, bool append = false);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Writes `line` and "\n", then flushes. Throws OutputFileError "<name>: write failed: <reason>".
  void write_line(std::string_view line);
  // The file's path, or "stdout".
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::FILE* file_ = nullptr;
  bool owns_ = false;
};

}  // namespace flexgen
