// Errors about one setting of a run, in the library's words: which setting, the value given
// and what is wrong with it, so that a front end can name its own flag for the setting.
#pragma once

#include <stdexcept>
#include <string>

namespace flexgen {

enum class Setting {
  DataFolder,       // the folder of the bundled datasets
  Dataset,          // which dataset (a name or a file)
  FewShotCount,     // few-shot examples per prompt
  ParaphraseCount,  // paraphrases per sample
  Weights,          // the per-paraphrase weights file
  Temperature,
  TopK,
  TopP,
  StopCriteria,
  TokenIdsFile,     // where each sample's token ids are written
  RecordsFile,      // where the output records are written
  SummaryFile,      // where the run's summary is written
  MaxNewTokens,     // generated tokens per sample at most
  BlockSize,        // block size of the block mask
};

// The setting in words: "data folder", "dataset", "few-shot count", ...
const char* setting_name(Setting setting);

// What is wrong with a setting; `value` may be empty (a missing setting, or one whose value
// the problem already says).
struct SettingProblem {
  Setting setting;
  std::string value;
  std::string problem;
};

// "<setting name>[ <value>]: <problem>"
std::string describe(const SettingProblem& p);

// An error of type `Base` (std::invalid_argument, std::runtime_error, DatasetError, ...) about
// one setting; what() is describe(). Catch `const SettingProblem&` to reword it.
template <class Base>
struct SettingError : Base, SettingProblem {
  SettingError(Setting s, std::string value, std::string problem)
      : Base(describe(SettingProblem{s, value, problem})), SettingProblem{s, std::move(value), std::move(problem)} {}
};

// A value that cannot be used.
using InvalidSetting = SettingError<std::invalid_argument>;

}  // namespace flexgen
