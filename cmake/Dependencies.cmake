# Finds flexgen's dependencies. Debian ships CMake packages for all of them;
# elsewhere (e.g. a CUDA machine with only the headers in /usr/include) the
# header-only ones are found by their headers.

# libtorch: Debian's libtorch-dev (CPU) or any libtorch given by CMAKE_PREFIX_PATH.
find_package(Torch REQUIRED)
message(STATUS "flexgen: libtorch ${Torch_VERSION} from ${Torch_DIR}")
if(TARGET torch_cuda OR CUDA_FOUND OR TORCH_CUDA_LIBRARIES)
  set(FLEXGEN_TORCH_HAS_CUDA ON)
else()
  set(FLEXGEN_TORCH_HAS_CUDA OFF)
endif()
message(STATUS "flexgen: libtorch with CUDA: ${FLEXGEN_TORCH_HAS_CUDA}")
add_library(flexgen_torch INTERFACE)
target_link_libraries(flexgen_torch INTERFACE ${TORCH_LIBRARIES})
# TORCH_CXX_FLAGS carries -D_GLIBCXX_USE_CXX11_ABI=...; it must reach every TU of the binary.
separate_arguments(_flexgen_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
add_compile_options(${_flexgen_torch_flags})

find_package(nlohmann_json 3 CONFIG QUIET)
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_path(NLOHMANN_JSON_INCLUDE nlohmann/json.hpp REQUIRED)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json INTERFACE ${NLOHMANN_JSON_INCLUDE})
endif()

find_package(CLI11 CONFIG QUIET)
if(NOT TARGET CLI11::CLI11)
  find_path(CLI11_INCLUDE CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE})
endif()

find_package(spdlog CONFIG QUIET)
if(TARGET spdlog::spdlog)
  set(_flexgen_spdlog_target spdlog::spdlog)
else()
  find_path(SPDLOG_INCLUDE spdlog/spdlog.h REQUIRED)
  add_library(flexgen_spdlog_headers INTERFACE)
  target_include_directories(flexgen_spdlog_headers INTERFACE ${SPDLOG_INCLUDE})
  find_package(fmt CONFIG QUIET)
  if(TARGET fmt::fmt)
    target_compile_definitions(flexgen_spdlog_headers INTERFACE SPDLOG_FMT_EXTERNAL)
    target_link_libraries(flexgen_spdlog_headers INTERFACE fmt::fmt)
  endif()
  set(_flexgen_spdlog_target flexgen_spdlog_headers)
endif()

# A pip/CUDA libtorch ships its own fmt (v11+) in its include folder, which
# would shadow the fmt that the system spdlog was built for. Targets that log
# see the system fmt first through a folder holding only a link to it.
find_package(fmt CONFIG QUIET)
set(FLEXGEN_FMT_SHIM "")
if(TARGET fmt::fmt)
  get_target_property(_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  list(GET _fmt_inc 0 _fmt_inc)
  if(EXISTS "${_fmt_inc}/fmt/core.h")
    set(FLEXGEN_FMT_SHIM ${CMAKE_BINARY_DIR}/fmt-shim)
    file(MAKE_DIRECTORY ${FLEXGEN_FMT_SHIM})
    if(NOT EXISTS ${FLEXGEN_FMT_SHIM}/fmt)
      file(CREATE_LINK "${_fmt_inc}/fmt" ${FLEXGEN_FMT_SHIM}/fmt SYMBOLIC)
    endif()
  endif()
endif()

# flexgen_use_logging(target): links spdlog with the right fmt first on the include path.
function(flexgen_use_logging target)
  if(FLEXGEN_FMT_SHIM)
    target_include_directories(${target} SYSTEM BEFORE PRIVATE ${FLEXGEN_FMT_SHIM})
  endif()
  target_link_libraries(${target} PRIVATE ${_flexgen_spdlog_target})
endfunction()

find_package(PNG REQUIRED)
