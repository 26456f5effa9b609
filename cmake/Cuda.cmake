# CUDA kernels (flexgen_ops_cuda). Included once from the top-level CMakeLists.txt after the
# src/ layers. The CUDA language is enabled only when the libtorch found has CUDA
# (FLEXGEN_TORCH_HAS_CUDA, set by cmake/Dependencies.cmake); otherwise flexgen_ops_cuda is a
# small pure-C++ stub whose entry points throw "built without CUDA", so that users can link it
# unconditionally and dispatch at run time (cuda_block_sparse_attention_available()).
#
# Targets: Hopper (sm_90a machine code) plus compute_80 PTX so other GPUs >= sm_80 JIT it.
# Override with -DFLEXGEN_CUDA_GENCODE="...".

set(_flexgen_cuda_src ${PROJECT_SOURCE_DIR}/src/ops/cuda)

if(FLEXGEN_TORCH_HAS_CUDA)
  # Architectures come from the explicit -gencode flags below (target CUDA_ARCHITECTURES OFF).
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(FLEXGEN_CUDA_GENCODE
      "-gencode=arch=compute_90a,code=sm_90a;-gencode=arch=compute_80,code=compute_80"
      CACHE STRING "nvcc -gencode flags for flexgen's CUDA kernels")
  message(STATUS "flexgen: CUDA kernels on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}; ${FLEXGEN_CUDA_GENCODE})")

  add_library(flexgen_ops_cuda STATIC
    ${_flexgen_cuda_src}/block_sparse_attention_kernel.cu
    ${_flexgen_cuda_src}/block_sparse_attention_wgmma_kernel.cu
    ${_flexgen_cuda_src}/block_sparse_attention_cuda.cpp
    ${_flexgen_cuda_src}/cuda_graph.cpp
    ${_flexgen_cuda_src}/cuda_device.cpp
    ${_flexgen_cuda_src}/cuda_event.cpp
    ${_flexgen_cuda_src}/cuda_profiler.cpp
    ${_flexgen_cuda_src}/decode_layer_kernel.cu
    ${_flexgen_cuda_src}/fused_ops_kernel.cu
    ${_flexgen_cuda_src}/fused_ops_cuda.cpp
    ${_flexgen_cuda_src}/kernel_preload.cpp
    ${_flexgen_cuda_src}/max_prob_pick_kernel.cu
    ${_flexgen_cuda_src}/max_prob_pick_cuda.cpp
    ${_flexgen_cuda_src}/mma_linear_kernel.cu
    ${_flexgen_cuda_src}/mma_linear_wgmma_kernel.cu
    ${_flexgen_cuda_src}/prefill_linear_kernel.cu
    ${_flexgen_cuda_src}/prefill_linear_tma_kernel.cu
    ${_flexgen_cuda_src}/step_timeline.cpp
    ${_flexgen_cuda_src}/tensor_map.cpp)
  set_target_properties(flexgen_ops_cuda PROPERTIES
    CUDA_ARCHITECTURES OFF
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    POSITION_INDEPENDENT_CODE ON)
  # The directory-wide options (-Wall, -march=native, torch's ABI define) were written for the
  # C++ compiler: keep them for C++, pass -D as is and the rest through -Xcompiler for nvcc.
  get_target_property(_opts flexgen_ops_cuda COMPILE_OPTIONS)
  set(_new_opts "")
  if(_opts)
    foreach(o ${_opts})
      if(o MATCHES "^-D")
        list(APPEND _new_opts "${o}")
      else()
        list(APPEND _new_opts "$<$<COMPILE_LANGUAGE:CXX>:${o}>" "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${o}>")
      endif()
    endforeach()
  endif()
  set_property(TARGET flexgen_ops_cuda PROPERTY COMPILE_OPTIONS "${_new_opts}")
  target_compile_options(flexgen_ops_cuda PRIVATE
    "$<$<COMPILE_LANGUAGE:CUDA>:${FLEXGEN_CUDA_GENCODE};-O3;-lineinfo;--expt-relaxed-constexpr>")
  target_include_directories(flexgen_ops_cuda PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src/ops)
  target_compile_definitions(flexgen_ops_cuda PUBLIC FLEXGEN_WITH_CUDA=1)
  if(FLEXGEN_CUDA_TIMELINE)
    target_compile_definitions(flexgen_ops_cuda PRIVATE FLEXGEN_CUDA_TIMELINE=1)
    message(STATUS "flexgen: decode kernels stamp a timeline (FLEXGEN_CUDA_TIMELINE)")
  endif()
  target_link_libraries(flexgen_ops_cuda PUBLIC flexgen_core flexgen_torch CUDA::cudart)
else()
  add_library(flexgen_ops_cuda STATIC ${_flexgen_cuda_src}/cuda_stubs.cpp)
  target_include_directories(flexgen_ops_cuda PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src/ops)
  target_link_libraries(flexgen_ops_cuda PUBLIC flexgen_core flexgen_torch)
endif()
