// Shared by the fuzz targets (fuzz/README in the top-level README, "Fuzzing").
//
// FLEXGEN_FUZZ_TARGET(name) { ... } defines one target's body over (data, size). Built with
// libFuzzer (FLEXGEN_FUZZ) it is LLVMFuzzerTestOneInput of the binary fuzz_<name>; otherwise it is
// registered under `name` in fuzz_replay, which ctest runs over the committed seeds and the
// regression inputs (fuzz/seeds/<name>, fuzz/regressions/<name>), so the properties stay checked
// in every build.
//
// A target checks properties with FUZZ_CHECK (abort with a message: libFuzzer keeps the input)
// and runs readers under expect_only<Error>(), which allows the project's error type for the
// input (with a message naming the source) and turns every other exception into a failure.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace flexgen::fuzz {

using TargetFn = int (*)(const uint8_t*, size_t);

inline std::map<std::string, TargetFn>& registry() {
  static std::map<std::string, TargetFn> targets;
  return targets;
}

struct Registration {
  Registration(const char* name, TargetFn fn) { registry()[name] = fn; }
};

// The pieces of text between the `sep` bytes (n separators: n + 1 pieces, empty ones kept): how
// targets cut one input into records or fields.
inline std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t at = text.find(sep, start);
    out.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

[[noreturn]] inline void fail(const char* check, const std::string& detail, const char* file, int line) {
  std::fprintf(stderr, "\n%s:%d: fuzz property failed: %s\n  %s\n", file, line, check, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// This process's scratch folder (in /dev/shm when there is one), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      namespace fs = std::filesystem;
      const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
      std::string tmpl = (base / "flexgen-fuzz-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
      }
      path = tmpl;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path;
}

// Writes `bytes` to scratch_dir()/name (replacing it); returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = (scratch_dir() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Runs `body`. An exception of type Error whose message contains `source` is an accepted outcome
// (returns false, message in *message); any other exception fails the target. True when `body`
// returned.
template <class Error, class Body>
bool expect_only(const std::string& source, Body&& body, const char* file, int line, std::string* message = nullptr) {
  try {
    body();
    return true;
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(source) == std::string::npos)
      fail("the error message names the source",
           std::string(typeid(Error).name()) + " '" + what + "' does not name '" + source + "'", file, line);
    if (message) *message = what;
    return false;
  } catch (const std::exception& e) {
    fail("only the reader's own error type escapes",
         std::string("unexpected ") + typeid(e).name() + ": " + e.what(), file, line);
  } catch (...) {
    fail("only the reader's own error type escapes", "a non-std exception", file, line);
  }
}

}  // namespace flexgen::fuzz

using flexgen::fuzz::scratch_dir;
using flexgen::fuzz::write_scratch;

#define FUZZ_CHECK(cond, detail)                                            \
  do {                                                                      \
    if (!(cond)) ::flexgen::fuzz::fail(#cond, (detail), __FILE__, __LINE__); \
  } while (0)

// EXPECT_ONLY(Error, source, { body }) / EXPECT_ONLY_MSG(Error, source, &message, { body }).
#define EXPECT_ONLY(Error, source, ...) ::flexgen::fuzz::expect_only<Error>((source), [&] __VA_ARGS__, __FILE__, __LINE__)
#define EXPECT_ONLY_MSG(Error, source, message, ...) \
  ::flexgen::fuzz::expect_only<Error>((source), [&] __VA_ARGS__, __FILE__, __LINE__, (message))

#ifdef FLEXGEN_FUZZ_REPLAY
#define FLEXGEN_FUZZ_TARGET(name)                                                               \
  static int flexgen_fuzz_##name(const uint8_t* data, size_t size);                             \
  static const ::flexgen::fuzz::Registration flexgen_fuzz_reg_##name(#name, flexgen_fuzz_##name); \
  static int flexgen_fuzz_##name(const uint8_t* data, size_t size)
#else
#define FLEXGEN_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#endif
