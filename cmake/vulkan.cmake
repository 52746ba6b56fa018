# The Vulkan backend: host code in backends/vulkan/, compute shaders in
# shaders/ compiled to SPIR-V by glslc at build time and embedded in the
# library as C arrays (no shader files are looked up at run time).
#
# Needs: Vulkan headers, volk (Debian: libvulkan-volk-dev, which ships
# volk.h and volk.c as sources), glslc. The Vulkan loader itself is opened at
# run time by volk, so the library does not link libvulkan: a machine without
# a loader gets "Vulkan loader not found", not a failure to start.

find_package(Vulkan REQUIRED COMPONENTS glslc)
find_path(STRATA_VOLK_INCLUDE_DIR volk.h HINTS ${Vulkan_INCLUDE_DIRS} PATH_SUFFIXES volk)
if(NOT STRATA_VOLK_INCLUDE_DIR OR NOT EXISTS ${STRATA_VOLK_INCLUDE_DIR}/volk.c)
  message(FATAL_ERROR "STRATA_VULKAN=ON needs volk (volk.h and volk.c; Debian/Ubuntu: libvulkan-volk-dev)")
endif()
if(NOT Vulkan_GLSLC_EXECUTABLE)
  message(FATAL_ERROR "STRATA_VULKAN=ON needs glslc (Debian/Ubuntu: glslc)")
endif()

# --- shader variants, as data: name | file | defines (space separated) -------
set(STRATA_VK_SHADER_VARIANTS
  "add|elementwise.comp|EW_ADD"
  "mul|elementwise.comp|EW_MUL"
  "scale|elementwise.comp|EW_SCALE"
  "swiglu|elementwise.comp|EW_SWIGLU"
  "geglu|elementwise.comp|EW_GEGLU"
  "rms_norm|rms_norm.comp|"
  "softmax|softmax.comp|"
  "argmax|argmax.comp|"
  "rope|rope.comp|"
  "kv_store_f32|kv_store.comp|"
  "kv_store_f16|kv_store.comp|CACHE_F16"
  "attention_f32|attention.comp|"
  "attention_f16|attention.comp|CACHE_F16"
  "attention_combine|attention_combine.comp|"
  "copy|copy.comp|"
  "topk|topk.comp|"
  "moe_weights|moe_weights.comp|"
  "moe_sum|moe_sum.comp|"
  "moe_group|moe_group.comp|"
)
# The weight-format shaders (matmul, get_rows) come from a separate piece of
# work; they are listed here and built once their files exist.
set(STRATA_VK_WEIGHT_FORMATS f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k
  iq2_xxs iq2_xs iq2_s iq3_xxs iq3_s iq1_s iq1_m iq4_nl iq4_xs mxfp4 tq1_0 tq2_0)
foreach(format ${STRATA_VK_WEIGHT_FORMATS})
  string(TOUPPER ${format} format_upper)
  foreach(family matmul matmul_tiled get_rows)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${family}.comp)
      list(APPEND STRATA_VK_SHADER_VARIANTS "${family}_${format}|${family}.comp|WEIGHT_TYPE_${format_upper}")
    endif()
  endforeach()
  # OP_MATMUL_ID: the matmuls reading the chosen experts' rows (few tokens, many)
  list(APPEND STRATA_VK_SHADER_VARIANTS "matmul_id_${format}|matmul.comp|WEIGHT_TYPE_${format_upper} MATMUL_ID")
  list(APPEND STRATA_VK_SHADER_VARIANTS
       "matmul_id_tiled_${format}|matmul_tiled.comp|WEIGHT_TYPE_${format_upper} MATMUL_ID")
endforeach()

# --- compile each variant to SPIR-V -----------------------------------------
set(STRATA_VK_SPIRV_DIR ${CMAKE_CURRENT_BINARY_DIR}/spirv)
file(MAKE_DIRECTORY ${STRATA_VK_SPIRV_DIR})
set(STRATA_VK_SPIRV_FILES "")
set(STRATA_VK_SHADER_NAMES "")
foreach(variant ${STRATA_VK_SHADER_VARIANTS})
  string(REPLACE "|" ";" fields "${variant}")
  list(GET fields 0 shader_name)
  list(GET fields 1 shader_file)
  list(LENGTH fields field_count)
  set(define_flags "")
  if(field_count GREATER 2)
    list(GET fields 2 shader_defines)
    string(REPLACE " " ";" shader_defines "${shader_defines}")
    foreach(define ${shader_defines})
      if(define)
        list(APPEND define_flags "-D${define}=1")
      endif()
    endforeach()
  endif()
  set(spirv ${STRATA_VK_SPIRV_DIR}/${shader_name}.spv)
  add_custom_command(
    OUTPUT ${spirv}
    COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.2 -O -Werror ${define_flags}
            -I ${CMAKE_CURRENT_SOURCE_DIR}/shaders -MD -MF ${spirv}.d
            -o ${spirv} ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${shader_file}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${shader_file}
    DEPFILE ${spirv}.d
    COMMENT "glslc ${shader_file} -> ${shader_name}.spv"
    VERBATIM)
  list(APPEND STRATA_VK_SPIRV_FILES ${spirv})
  list(APPEND STRATA_VK_SHADER_NAMES ${shader_name})
endforeach()

# --- embed every SPIR-V blob in one generated C file --------------------------
set(STRATA_VK_EMBEDDED_C ${CMAKE_CURRENT_BINARY_DIR}/vulkan_shaders_embedded.c)
string(REPLACE ";" "," shader_name_list "${STRATA_VK_SHADER_NAMES}")
add_custom_command(
  OUTPUT ${STRATA_VK_EMBEDDED_C}
  COMMAND ${CMAKE_COMMAND} -DSPIRV_DIR=${STRATA_VK_SPIRV_DIR} -DSHADER_NAMES=${shader_name_list}
          -DOUTPUT=${STRATA_VK_EMBEDDED_C} -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/vulkan_embed_spirv.cmake
  DEPENDS ${STRATA_VK_SPIRV_FILES} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/vulkan_embed_spirv.cmake
  COMMENT "embedding the SPIR-V shaders"
  VERBATIM)

# --- the backend in libstrata -------------------------------------------------
file(GLOB STRATA_VULKAN_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/backends/vulkan/*.c)
# volk.c is compiled as is; it is not our code, so its warnings are not ours
set(STRATA_VOLK_SOURCE ${CMAKE_CURRENT_BINARY_DIR}/volk_impl.c)
configure_file(${STRATA_VOLK_INCLUDE_DIR}/volk.c ${STRATA_VOLK_SOURCE} COPYONLY)
set_source_files_properties(${STRATA_VOLK_SOURCE} PROPERTIES COMPILE_OPTIONS "-w")
target_sources(strata_lib PRIVATE ${STRATA_VULKAN_SOURCES} ${STRATA_VK_EMBEDDED_C} ${STRATA_VOLK_SOURCE})
target_include_directories(strata_lib PRIVATE ${Vulkan_INCLUDE_DIRS} ${STRATA_VOLK_INCLUDE_DIR})
target_compile_definitions(strata_lib PUBLIC STRATA_WITH_VULKAN=1)
target_compile_definitions(strata_lib PRIVATE VK_NO_PROTOTYPES=1)
target_link_libraries(strata_lib PUBLIC ${CMAKE_DL_LIBS})
