# Turns a .cu file into C++ the CPU emulation compiles: every
# `kernel<<<grid, block[, shared_bytes[, stream]]>>>(args)` becomes
# `emu_launch(kernel, grid, block[, ...])(args)` (tests/cuda_emulator/).
# Usage: cmake -DINPUT=file.cu -DOUTPUT=file.cpp -P rewrite_launches.cmake
file(READ "${INPUT}" source)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*(<[^<>;]*>)?)<<<([^;>]*)>>>" "emu_launch(\\1, \\3)" rewritten "${source}")
if(rewritten MATCHES "<<<")
  message(FATAL_ERROR "${INPUT}: a kernel launch the emulator rewrite does not understand")
endif()
file(WRITE "${OUTPUT}" "// generated from ${INPUT} for the CPU emulation of CUDA; do not edit\n#line 1 \"${INPUT}\"\n${rewritten}")
