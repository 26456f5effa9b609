// Runs a shell command and captures its exit code, stdout and stderr (for CLI tests).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace flexgen::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `launcher` goes before and `args` after the flexgen binary's path; passed through /bin/sh.
inline CommandResult run_flexgen_in(const std::string& launcher, const std::string& args, const std::string& tmp_prefix) {
  const std::string out = tmp_prefix + ".out", err = tmp_prefix + ".err";
  const std::string cmd = launcher + "'" + FLEXGEN_BINARY + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline CommandResult run_flexgen(const std::string& args, const std::string& tmp_prefix) {
  return run_flexgen_in("", args, tmp_prefix);
}

// As run_flexgen, with `env` ("NAME=value ...") set for the command.
inline CommandResult run_flexgen_env(const std::string& env, const std::string& args, const std::string& tmp_prefix) {
  return run_flexgen_in("env " + env + " ", args, tmp_prefix);
}

}  // namespace flexgen::testing
