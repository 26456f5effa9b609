// Errors about one setting (see setting_error.h).
#include "flexgen/setting_error.h"

namespace flexgen {

const char* setting_name(Setting setting) {
  switch (setting) {
    case Setting::DataFolder: return "data folder";
    case Setting::Dataset: return "dataset";
    case Setting::FewShotCount: return "few-shot count";
    case Setting::ParaphraseCount: return "paraphrase count";
    case Setting::Weights: return "paraphrase weights";
    case Setting::Temperature: return "temperature";
    case Setting::TopK: return "top-k";
    case Setting::TopP: return "top-p";
    case Setting::StopCriteria: return "stop criteria";
    case Setting::TokenIdsFile: return "token ids file";
    case Setting::RecordsFile: return "output file";
    case Setting::SummaryFile: return "summary file";
    case Setting::MaxNewTokens: return "new tokens";
    case Setting::BlockSize: return "block size";
  }
  return "setting";
}

std::string describe(const SettingProblem& p) {
  return std::string(setting_name(p.setting)) + (p.value.empty() ? "" : " " + p.value) + ": " + p.problem;
}

}  // namespace flexgen
