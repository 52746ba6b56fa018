# The CUDA backend (backends/cuda/ host code, kernels/*.cu), included by
# CMakeLists.txt when STRATA_CUDA=ON.
#
# Architectures: CMAKE_CUDA_ARCHITECTURES when given (for example
# -DCMAKE_CUDA_ARCHITECTURES=90, or "native" for the GPUs of this machine);
# otherwise Turing through Blackwell, workstation and datacenter, keeping
# those this nvcc can compile for (CUDA 13 dropped everything before
# Turing). Each architecture adds compile time: CI builds one.

set(STRATA_CUDA_DEFAULT_ARCHITECTURES 75 80 86 89 90 100 120)

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "STRATA_CUDA=ON but no CUDA compiler (nvcc) was found: install the CUDA toolkit, "
                      "put nvcc on PATH or set CMAKE_CUDA_COMPILER")
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --list-gpu-arch
                  OUTPUT_VARIABLE STRATA_NVCC_ARCHS RESULT_VARIABLE STRATA_NVCC_RESULT ERROR_QUIET)
  set(STRATA_CUDA_ARCHS_FOUND "")
  foreach(arch ${STRATA_CUDA_DEFAULT_ARCHITECTURES})
    if(STRATA_NVCC_RESULT EQUAL 0 AND STRATA_NVCC_ARCHS MATCHES "compute_${arch}([^0-9]|$)")
      list(APPEND STRATA_CUDA_ARCHS_FOUND ${arch})
    endif()
  endforeach()
  if(NOT STRATA_CUDA_ARCHS_FOUND)
    # an nvcc too old for --list-gpu-arch: the architectures every CUDA 12 has
    set(STRATA_CUDA_ARCHS_FOUND 75 80 86 89 90)
  endif()
  set(CMAKE_CUDA_ARCHITECTURES "${STRATA_CUDA_ARCHS_FOUND}" CACHE STRING "CUDA architectures to build for")
endif()

enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
message(STATUS "strata: CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")

file(GLOB STRATA_CUDA_SOURCES CONFIGURE_DEPENDS backends/cuda/*.c kernels/*.cu)
target_sources(strata_lib PRIVATE ${STRATA_CUDA_SOURCES})
# strata_lib was created before the CUDA language was enabled: give it the
# architectures explicitly
set_property(TARGET strata_lib PROPERTY CUDA_ARCHITECTURES ${CMAKE_CUDA_ARCHITECTURES})
target_compile_definitions(strata_lib PUBLIC STRATA_WITH_CUDA)
# the list as one word for messages: a CMake list (75;80;...) would be cut
# into several definitions at its semicolons, and spaces would need quoting
# that the generators do not all agree on
string(REPLACE ";" "," STRATA_CUDA_ARCHITECTURES_TEXT "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(strata_lib PRIVATE "STRATA_CUDA_ARCHITECTURES=\"${STRATA_CUDA_ARCHITECTURES_TEXT}\"")
target_link_libraries(strata_lib PUBLIC CUDA::cudart CUDA::cublas)

# The project's options (-Wall -Wextra, sanitizers, ...) are gcc flags that
# nvcc rejects: keep them for C, hand them to the host compiler for CUDA.
get_target_property(STRATA_LIB_OPTIONS strata_lib COMPILE_OPTIONS)
if(STRATA_LIB_OPTIONS)
  set(STRATA_LIB_OPTIONS_BY_LANGUAGE "")
  foreach(option ${STRATA_LIB_OPTIONS})
    list(APPEND STRATA_LIB_OPTIONS_BY_LANGUAGE "$<$<COMPILE_LANGUAGE:C>:${option}>")
    # options with commas (-fsanitize=a,b) would be split by -Xcompiler: C only
    if(NOT option MATCHES ",")
      list(APPEND STRATA_LIB_OPTIONS_BY_LANGUAGE "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${option}>")
    endif()
  endforeach()
  set_property(TARGET strata_lib PROPERTY COMPILE_OPTIONS ${STRATA_LIB_OPTIONS_BY_LANGUAGE})
endif()
# device-side warnings too; -Werror when the project asks for it
target_compile_options(strata_lib PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-warn-spills>)
if(STRATA_WERROR)
  target_compile_options(strata_lib PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
endif()

# --- the CUDA backend on a CPU emulation of CUDA (tests only) ------------------------------
# tests/cuda_emulator/ stands in for the CUDA runtime, cuBLAS and the device:
# the backend's host code and the kernels/*.cu sources (launch syntax
# rewritten) build against it into a separate library, and the op-conformance
# suite, the end-to-end logits and the device test run on it as ctest tests,
# here and in CI, where no GPU is. Nothing of it reaches libstrata.
option(STRATA_CUDA_EMULATED_TESTS "Also run the CUDA tests on the CPU emulation of CUDA" ON)
if(STRATA_CUDA_EMULATED_TESTS)
  enable_language(CXX)
  set(STRATA_EMU_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_emulator)
  file(GLOB STRATA_EMU_KERNELS CONFIGURE_DEPENDS kernels/*.cu)
  set(STRATA_EMU_KERNEL_SOURCES "")
  foreach(kernel ${STRATA_EMU_KERNELS})
    get_filename_component(kernel_name ${kernel} NAME_WE)
    set(generated ${CMAKE_CURRENT_BINARY_DIR}/cuda_emulated/${kernel_name}.cpp)
    add_custom_command(OUTPUT ${generated}
                       COMMAND ${CMAKE_COMMAND} -DINPUT=${kernel} -DOUTPUT=${generated}
                               -P ${STRATA_EMU_DIR}/rewrite_launches.cmake
                       DEPENDS ${kernel} ${STRATA_EMU_DIR}/rewrite_launches.cmake
                       COMMENT "Rewriting ${kernel_name}.cu for the CUDA emulator")
    list(APPEND STRATA_EMU_KERNEL_SOURCES ${generated})
  endforeach()
  file(GLOB STRATA_EMU_C_SOURCES CONFIGURE_DEPENDS base/*.c runtime/*.c backends/*.c backends/cpu/*.c backends/cuda/*.c)
  add_library(strata_cuda_emulated STATIC ${STRATA_EMU_C_SOURCES} ${STRATA_EMU_KERNEL_SOURCES}
                                          ${STRATA_EMU_DIR}/emulator.cpp ${STRATA_EMU_DIR}/emulator_runtime.cpp)
  target_include_directories(strata_cuda_emulated BEFORE PUBLIC ${STRATA_EMU_DIR}/include)
  target_include_directories(strata_cuda_emulated PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/runtime ${CMAKE_CURRENT_SOURCE_DIR}/base ${CMAKE_CURRENT_SOURCE_DIR}
                                                         ${CMAKE_CURRENT_SOURCE_DIR}/kernels ${STRATA_GENERATED_DIR})
  target_compile_definitions(strata_cuda_emulated PUBLIC STRATA_WITH_CUDA STRATA_CUDA_EMULATED
                                                         "STRATA_CUDA_ARCHITECTURES=\"emulated\"")
  target_compile_definitions(strata_cuda_emulated PRIVATE UNPACK_CHECK_ALIGNMENT)
  set_source_files_properties(${STRATA_EMU_KERNEL_SOURCES} PROPERTIES
    COMPILE_OPTIONS "-include;${STRATA_EMU_DIR}/include/emulator_device.h;-Wno-unknown-pragmas;-Wno-unused-parameter")
  set_target_properties(strata_cuda_emulated PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_link_libraries(strata_cuda_emulated PUBLIC Threads::Threads m strata_pcre2 strata_jansson)

  # the strata command on the emulator, for trying the CUDA paths of run/bench
  # (and serve) without a GPU: the server's sources built against the emulated library
  file(GLOB STRATA_EMU_TOOL_SOURCES CONFIGURE_DEPENDS tools/*.c server/*.c)
  add_executable(strata_cli_cuda_emulated ${STRATA_EMU_TOOL_SOURCES})
  target_include_directories(strata_cli_cuda_emulated PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/server)
  target_link_libraries(strata_cli_cuda_emulated PRIVATE strata_cuda_emulated strata_jansson strata_microhttpd)
  set_target_properties(strata_cli_cuda_emulated PROPERTIES OUTPUT_NAME strata-cuda-emulated)

  enable_testing()
  file(GLOB STRATA_EMU_TEST_COMMON CONFIGURE_DEPENDS tests/common/*.c)
  foreach(test_name test_backend_ops test_cuda_e2e_logits test_cuda_device test_cuda_peer test_cuda_workspace
                    test_cuda_split_logits)
    set(emulated_name ${test_name}_cuda_emulated)
    add_executable(${emulated_name} tests/${test_name}.c ${STRATA_EMU_TEST_COMMON})
    target_link_libraries(${emulated_name} PRIVATE strata_cuda_emulated)
    target_include_directories(${emulated_name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tests/common)
    target_compile_definitions(${emulated_name} PRIVATE
      STRATA_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/tests/data" STRATA_MODELS_DIR="${CMAKE_CURRENT_SOURCE_DIR}/models")
    # the op suite on the emulated GPU only: its CPU runs (scalar, AVX2,
    # AVX-512, thread counts) are the same code as test_backend_ops' own
    set(emulated_args "")
    if(test_name STREQUAL "test_backend_ops")
      set(emulated_args cuda)
    endif()
    add_test(NAME ${emulated_name} COMMAND ${emulated_name} ${emulated_args})
    set_tests_properties(${emulated_name} PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)
  endforeach()
  # several emulated devices of different sizes (peer copies, per-device
  # memory, out of memory on the small one); once more as GPUs without peer
  # access, whose copies CUDA stages through the host; and the one-device
  # test on device 0 of several
  set_tests_properties(test_cuda_peer_cuda_emulated PROPERTIES ENVIRONMENT STRATA_EMU_DEVICES=1024,384,2048)
  # a model split across three small devices (each mostly taken by its
  # cuBLAS workspace) and the CPU
  set_tests_properties(test_cuda_split_logits_cuda_emulated PROPERTIES ENVIRONMENT STRATA_EMU_DEVICES=40,48,44)
  add_test(NAME test_cuda_peer_cuda_emulated_no_peer_access COMMAND test_cuda_peer_cuda_emulated)
  set_tests_properties(test_cuda_peer_cuda_emulated_no_peer_access PROPERTIES LABELS cuda SKIP_RETURN_CODE 77
                       ENVIRONMENT "STRATA_EMU_DEVICES=512,1024;STRATA_EMU_PEER_ACCESS=0")
  add_test(NAME test_cuda_device_cuda_emulated_devices COMMAND test_cuda_device_cuda_emulated)
  set_tests_properties(test_cuda_device_cuda_emulated_devices PROPERTIES LABELS cuda SKIP_RETURN_CODE 77
                       ENVIRONMENT STRATA_EMU_DEVICES=2048,1024)
  # the op kernels once more with the threads of each block run last first:
  # a missing __syncthreads shows in one order or the other
  add_test(NAME test_backend_ops_cuda_emulated_reverse COMMAND test_backend_ops_cuda_emulated cuda)
  set_tests_properties(test_backend_ops_cuda_emulated_reverse PROPERTIES LABELS cuda SKIP_RETURN_CODE 77
                       ENVIRONMENT STRATA_EMU_ORDER=reverse)
  # prompt matmuls in GEMM tiles of a few rows each: the tile loop, the last
  # partial tile and the offsets into dst
  add_test(NAME test_backend_ops_cuda_emulated_small_tiles COMMAND test_backend_ops_cuda_emulated cuda)
  set_tests_properties(test_backend_ops_cuda_emulated_small_tiles PROPERTIES LABELS cuda SKIP_RETURN_CODE 77
                       ENVIRONMENT STRATA_CUDA_GEMM_TILE_MIB=0.01)
  # every attention case through each attention kernel, whatever the shapes would pick
  foreach(attention rows tiled)
    add_test(NAME test_backend_ops_cuda_emulated_attention_${attention} COMMAND test_backend_ops_cuda_emulated cuda)
    set_tests_properties(test_backend_ops_cuda_emulated_attention_${attention} PROPERTIES LABELS cuda
                         SKIP_RETURN_CODE 77 ENVIRONMENT STRATA_CUDA_ATTENTION=${attention})
  endforeach()
endif()
