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
target_compile_definitions(strata_lib PRIVATE "STRATA_CUDA_ARCHITECTURES=\"${CMAKE_CUDA_ARCHITECTURES}\"")
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
