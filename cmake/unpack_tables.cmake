# The lookup tables of the low-bit block formats (grids, signs, levels) for
# kernels/quant_unpack_lowbit.h, written at configure time from
# base/quant_iq_grids.c, the tables the CPU computes with, so the CUDA
# kernels read the very same data and nobody types a table twice.
#
# Each table `const T quant_NAME[N] = {...};` of that file becomes
#     #define UNPACK_TABLE_DEFINE_NAME(name) const T name[N] = {...}
# in generated/unpack_tables.h, which the header expands once for the host
# (C tests, the CUDA emulator) and once as __device__ memory for the GPU.
# tests/test_cuda_unpack.c checks every expansion against the base arrays.
#
# Also a script (scripts/kernel-report.sh compiles the kernels without a
# build directory):
#   cmake -DSTRATA_UNPACK_TABLES_SOURCE=base/quant_iq_grids.c -DSTRATA_GENERATED_DIR=DIR -P cmake/unpack_tables.cmake
if(NOT DEFINED STRATA_UNPACK_TABLES_SOURCE)
  set(STRATA_UNPACK_TABLES_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/base/quant_iq_grids.c)
endif()
if(NOT DEFINED STRATA_GENERATED_DIR)
  set(STRATA_GENERATED_DIR ${CMAKE_CURRENT_BINARY_DIR}/generated)
endif()
if(NOT CMAKE_SCRIPT_MODE_FILE)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${STRATA_UNPACK_TABLES_SOURCE})
endif()

file(READ ${STRATA_UNPACK_TABLES_SOURCE} strata_tables_source)
string(REGEX MATCHALL "const [a-z0-9_]+ quant_[a-z0-9_]+\\[[0-9]+\\] = {[^}]*}" strata_tables
       "${strata_tables_source}")
set(strata_tables_header "/* generated at configure time from base/quant_iq_grids.c by cmake/unpack_tables.cmake; do not edit */\n")
string(APPEND strata_tables_header "#ifndef STRATA_UNPACK_TABLES_H\n#define STRATA_UNPACK_TABLES_H\n\n")
set(strata_tables_count 0)
foreach(table IN LISTS strata_tables)
  if(NOT table MATCHES "^const ([a-z0-9_]+) quant_([a-z0-9_]+)\\[([0-9]+)\\] = ({[^}]*})$")
    message(FATAL_ERROR "cmake/unpack_tables.cmake: cannot read a table of ${STRATA_UNPACK_TABLES_SOURCE}")
  endif()
  set(table_type ${CMAKE_MATCH_1})
  string(TOUPPER ${CMAKE_MATCH_2} table_name)
  set(table_size ${CMAKE_MATCH_3})
  string(REPLACE "\n" " \\\n" table_values "${CMAKE_MATCH_4}")
  string(APPEND strata_tables_header
         "#define UNPACK_TABLE_DEFINE_${table_name}(name) const ${table_type} name[${table_size}] = ${table_values}\n\n")
  math(EXPR strata_tables_count "${strata_tables_count} + 1")
endforeach()
if(NOT strata_tables_count EQUAL 9)
  message(FATAL_ERROR "cmake/unpack_tables.cmake: found ${strata_tables_count} tables in "
                      "${STRATA_UNPACK_TABLES_SOURCE}, expected 9 (kernels/quant_unpack_lowbit.h names them)")
endif()
string(APPEND strata_tables_header "#endif\n")
# written only when it changes, so a reconfigure does not rebuild every kernel
file(CONFIGURE OUTPUT ${STRATA_GENERATED_DIR}/unpack_tables.h CONTENT "${strata_tables_header}" @ONLY)
