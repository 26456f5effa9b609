// flexgen: paraphrase-ensemble question answering with block-sparse attention.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <new>
#include <vector>

#include "commands.h"
#include "memory_reuse.h"
#include "version_info.h"

namespace {

void setup_logging(const std::string& level, bool quiet) {
  auto logger = spdlog::stderr_color_mt("flexgen");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(quiet ? spdlog::level::err : spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  flexgen::cli::keep_freed_memory_for_reuse();
  CLI::App app{"flexgen: paraphrase-ensemble QA with LLaMA-family models and block-sparse attention"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (-q, --log-level) may follow the subcommand
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated option: the last wins
  std::string log_level = "info";
  bool quiet = false;
  app.set_version_flag("--version", [] { return flexgen::cli::version_text(); }, "Print the version and exit");
  app.add_option("--log-level", log_level, "Log level on stderr")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  std::vector<flexgen::cli::Command> commands;
  commands.push_back(flexgen::cli::add_generate_command(app));
  commands.push_back(flexgen::cli::add_mask_command(app));
  commands.push_back(flexgen::cli::add_tokenize_command(app));
  commands.push_back(flexgen::cli::add_eval_command(app));
  commands.push_back(flexgen::cli::add_merge_command(app));
  commands.push_back(flexgen::cli::add_debug_command(app));
  commands.push_back(flexgen::cli::add_paraphrase_command(app));
  commands.push_back(flexgen::cli::add_doctor_command(app));
  commands.push_back(flexgen::cli::add_completion_command(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  setup_logging(log_level, quiet);
  try {
    for (auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const flexgen::cli::UsageError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const c10::Error& e) {
    // libtorch: its message without the C++ source location and backtrace that follow it.
    std::string m = e.what_without_backtrace();
    m = m.substr(0, m.find('\n'));
    for (const char* noise : {" (Triggered internally at", "  (Could this error message be improved?"})
      if (const size_t at = m.find(noise); at != std::string::npos) m = m.substr(0, at);
    spdlog::error("libtorch: {}", m);
    return 1;
  } catch (const nlohmann::json::exception& e) {
    // A JSON error not caught where its file is read (each reader names its file): without the
    // library's "[json.exception.type_error.302] " prefix.
    std::string m = e.what();
    if (const size_t b = m.find("] "); b != std::string::npos) m = m.substr(b + 2);
    spdlog::error("bad JSON value: {}", m);
    return 1;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 1;
}
