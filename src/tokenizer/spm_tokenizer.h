// SentencePiece tokenizer (tokenizer.model), run by the flexgen_spm module.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flexgen/tokenizer.h"

namespace flexgen::tokenizer_detail {

// Loads a SentencePiece .model through libflexgen_spm.so. Throws TokenizerError
// when the file is unusable or the module cannot be found.
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path);

// Where the module is looked for: only $FLEXGEN_SPM_MODULE when set; else next to
// the running executable, ../lib/flexgen (the installed layout) and ../lib from it, then the
// build tree it was built in.
std::vector<std::string> spm_module_candidates();

}  // namespace flexgen::tokenizer_detail
