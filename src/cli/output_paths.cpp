#include "output_paths.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "commands.h"
#include "flexgen/model_path.h"

namespace flexgen::cli {

namespace {

namespace fs = std::filesystem;

bool names_file(const FileArg& f) { return !f.path.empty() && f.path != "-"; }

// Whether two paths name one file: the same inode when both exist, else the same absolute path.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool same = fs::equivalent(a, b, ec);
    return !ec && same;
  }
  const fs::path ca = fs::weakly_canonical(fs::absolute(a, ec), ec);
  const fs::path cb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return ca == cb;
}

std::string named(const FileArg& f) { return f.flag + " " + f.path; }

}  // namespace

std::vector<FileArg> model_inputs(const ModelArgs& a) {
  std::vector<FileArg> out;
  std::error_code ec;
  try {
    const ResolvedModel where = resolve_model_path(a.model);
    if (fs::is_directory(where.path, ec)) {
      for (const auto& e : fs::directory_iterator(where.path, ec))
        if (e.is_regular_file(ec)) out.push_back({"--model", e.path().string()});
    } else {
      out.push_back({"--model", where.path.string()});
    }
  } catch (const std::exception&) {
    // Not found: the model loader reports it.
  }
  if (!a.tokenizer.empty() && !fs::is_directory(a.tokenizer, ec)) out.push_back({"--tokenizer", a.tokenizer});
  if (!a.config.empty()) out.push_back({"--config", a.config});
  return out;
}

void check_output_paths(const std::vector<FileArg>& outputs, const std::vector<FileArg>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const FileArg& out = outputs[i];
    if (!names_file(out)) continue;
    for (const FileArg& in : inputs)
      if (names_file(in) && same_file(out.path, in.path))
        throw UsageError(named(out) + ": the same file as " + (in.flag == "--model" ? "a file of --model" : in.flag) +
                         " " + in.path + " (it would be overwritten); give another file");
    for (size_t j = 0; j < i; ++j)
      if (names_file(outputs[j]) && same_file(out.path, outputs[j].path))
        throw UsageError(named(out) + ": the same file as " + named(outputs[j]) + "; give each output its own file");
  }
  for (const FileArg& out : outputs) {
    if (!names_file(out)) continue;
    std::error_code ec;
    if (fs::is_directory(out.path, ec)) throw std::runtime_error(named(out) + ": is a folder, not a file");
    fs::path folder = fs::path(out.path).parent_path();
    if (folder.empty()) folder = ".";
    if (!fs::exists(folder, ec)) throw std::runtime_error(named(out) + ": folder " + folder.string() + " does not exist");
    if (!fs::is_directory(folder, ec)) throw std::runtime_error(named(out) + ": " + folder.string() + " is not a folder");
    if (::access(folder.c_str(), W_OK) != 0)
      throw std::runtime_error(named(out) + ": cannot write in folder " + folder.string());
    if (fs::exists(out.path, ec) && ::access(out.path.c_str(), W_OK) != 0)
      throw std::runtime_error(named(out) + ": the file is not writable");
  }
}

}  // namespace flexgen::cli
