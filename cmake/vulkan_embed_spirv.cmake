# cmake -P script: writes OUTPUT, a C file holding every SPIR-V blob of
# SPIRV_DIR/<name>.spv (names in SHADER_NAMES, comma separated) as a
# uint32_t array, plus a table that backends/vulkan/vulkan_shaders.h declares.
string(REPLACE "," ";" names "${SHADER_NAMES}")
set(body "/* Generated at build time from shaders/ by cmake/vulkan_embed_spirv.cmake; do not edit. */\n")
string(APPEND body "#include \"backends/vulkan/vulkan_shaders.h\"\n\n")
set(table "")
foreach(name ${names})
  file(READ ${SPIRV_DIR}/${name}.spv hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR byte_count "${hex_length} / 2")
  # SPIR-V is a stream of little-endian 32-bit words
  string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])"
         "0x\\4\\3\\2\\1u," words "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f]+u,){8})" "\\1\n    " words "${words}")
  string(APPEND body "static const uint32_t shader_${name}[] = {\n    ${words}\n};\n")
  string(APPEND table "    {\"${name}\", shader_${name}, ${byte_count}},\n")
endforeach()
string(APPEND body "\nconst vk_shader_blob vk_shader_blobs[] = {\n${table}};\n")
string(APPEND body "const size_t vk_shader_blob_count = sizeof vk_shader_blobs / sizeof vk_shader_blobs[0];\n")
file(WRITE ${OUTPUT}.tmp "${body}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
