// Built without PCRE2: split patterns the scanner does not implement are refused.
#include <stdexcept>

#include "pretokenizer.h"

namespace flexgen::tokenizer_detail {

std::unique_ptr<PreTokenizer> make_pcre2_pretokenizer(const std::string& pattern) {
  throw std::invalid_argument("this flexgen was built without PCRE2 (libpcre2-dev), which the pattern '" +
                              pattern.substr(0, 60) + (pattern.size() > 60 ? "...'" : "'") + " needs");
}

}  // namespace flexgen::tokenizer_detail
