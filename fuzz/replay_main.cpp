// fuzz_replay TARGET PATH...: runs a fuzz target (compiled in with FLEXGEN_FUZZ_REPLAY) over
// files and every file under folders, as libFuzzer would run one input; a failed property
// aborts with its message. Used by ctest (fuzz/CMakeLists.txt) and to replay a crash input
// without clang: build/bin/fuzz_replay dataset crash-1234.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  auto& targets = flexgen::fuzz::registry();
  if (argc < 2 || !targets.count(argv[1])) {
    std::fprintf(stderr, "usage: fuzz_replay TARGET [FILE|FOLDER]...\ntargets:");
    for (const auto& [name, fn] : targets) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  const auto fn = targets.at(argv[1]);
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::exists(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz_replay: %s does not exist\n", p.c_str());
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "%s: %s (%zu bytes)\n", argv[1], f.c_str(), bytes.size());
    fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%s: %zu inputs passed\n", argv[1], files.size());
  return 0;
}
