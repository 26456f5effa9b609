// Checks the files a command will write before it loads a model or computes anything: each
// output's folder exists and is writable, no output names a folder, and no output is the same file
// as an input (which it would overwrite) or as another output.
#pragma once

#include <string>
#include <vector>

#include "model_options.h"

namespace flexgen::cli {

// A file named by a flag ("--output", "--dataset", ...). "-" and "" name no file.
struct FileArg {
  std::string flag;
  std::string path;
};

// The files a model spec reads (--model: a TorchScript archive, or every file of a model folder;
// --tokenizer, --config), for check_output_paths. A model that cannot be found adds nothing
// (loading it says what is wrong).
std::vector<FileArg> model_inputs(const ModelArgs& args);

// Throws UsageError "--summary out.jsonl: the same file as --dataset out.jsonl (it would be
// overwritten)" for an output that is an input or another output, and std::runtime_error
// "--summary /no/such/dir/s.json: folder /no/such/dir does not exist" for one that cannot be written.
void check_output_paths(const std::vector<FileArg>& outputs, const std::vector<FileArg>& inputs);

}  // namespace flexgen::cli
