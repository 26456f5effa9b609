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

// `args` is appended to the flexgen binary's path; it is passed through /bin/sh.
inline CommandResult run_flexgen(const std::string& args, const std::string& tmp_prefix) {
  const std::string out = tmp_prefix + ".out", err = tmp_prefix + ".err";
  const std::string cmd = std::string("'") + FLEXGEN_BINARY + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace flexgen::testing
