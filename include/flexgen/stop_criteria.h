// When a generated stream stops: EOS ids, a newline in the decoded text, or
// literal strings; parsed from `--stop eos,newline,STR,...` or `none`. Pure C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flexgen {

struct StopCriteria {
  bool eos = true;
  bool newline = true;
  std::vector<std::string> strings;  // literal stop strings, matched on decoded text
  std::vector<int32_t> eos_ids;      // filled from the model's generation config

  enum class Reason { None, Eos, Newline, String, MaxTokens };
  // Whether generation stops after `token`, given the decoded text of everything
  // generated so far (including `token`).
  Reason check(int32_t token, const std::string& generated_text) const;
  // Whether check() can ever answer other than None (some EOS id, the newline or a string).
  bool can_stop() const;
};

// "eos,newline" (the default), "none", or literal strings (escapes as in
// text_escape.h) in a comma list. Throws InvalidSetting (stop criteria).
StopCriteria parse_stop_criteria(const std::string& spec);

std::string to_string(StopCriteria::Reason reason);

}  // namespace flexgen
