#include "flexgen/stop_criteria.h"

#include <algorithm>
#include <stdexcept>

#include "flexgen/setting_error.h"
#include "flexgen/text_escape.h"

namespace flexgen {

StopCriteria::Reason StopCriteria::check(int32_t token, const std::string& generated_text) const {
  if (eos && std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end()) return Reason::Eos;
  if (newline && generated_text.find('\n') != std::string::npos) return Reason::Newline;
  for (const std::string& s : strings) {
    if (generated_text.find(s) != std::string::npos) return Reason::String;
  }
  return Reason::None;
}

bool StopCriteria::can_stop() const { return (eos && !eos_ids.empty()) || newline || !strings.empty(); }

StopCriteria parse_stop_criteria(const std::string& spec) {
  StopCriteria c;
  c.eos = false;
  c.newline = false;
  if (spec.empty()) throw InvalidSetting(Setting::StopCriteria, "", "empty (use 'none' for no stop)");
  size_t at = 0;
  bool none = false;
  while (true) {
    const size_t comma = spec.find(',', at);
    const std::string item = spec.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (item.empty()) throw InvalidSetting(Setting::StopCriteria, "", "empty item in '" + spec + "'");
    if (item == "eos") {
      c.eos = true;
    } else if (item == "newline") {
      c.newline = true;
    } else if (item == "none") {
      none = true;
    } else {
      std::string literal;
      try {
        literal = unescape_text(item);
      } catch (const std::invalid_argument& e) {
        throw InvalidSetting(Setting::StopCriteria, "", "'" + item + "': " + e.what());
      }
      c.strings.push_back(literal);
    }
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  if (none && (c.eos || c.newline || !c.strings.empty()))
    throw InvalidSetting(Setting::StopCriteria, "", "'none' cannot be combined with other stops");
  return c;
}

std::string to_string(StopCriteria::Reason reason) {
  switch (reason) {
    case StopCriteria::Reason::None: return "none";
    case StopCriteria::Reason::Eos: return "eos";
    case StopCriteria::Reason::Newline: return "newline";
    case StopCriteria::Reason::String: return "stop_string";
    case StopCriteria::Reason::MaxTokens: return "max_new_tokens";
  }
  return "?";
}

}  // namespace flexgen
