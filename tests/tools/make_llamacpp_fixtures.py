#!/usr/bin/env python3
"""Writes tests/data/llamacpp/: a tiny llama model quantized by llama.cpp's own
llama-quantize to each low-bit format, llama.cpp's logits on it, and the gguf
package's dequantization of every tensor (as a checksum). test_llamacpp_logits
compares strata with these; it needs neither llama.cpp nor Python.

usage: make_llamacpp_fixtures.py LLAMA_CPP_BUILD_DIR [STRATA]

LLAMA_CPP_BUILD_DIR is a CPU build of llama.cpp (cmake) holding bin/llama-quantize,
bin/llama-imatrix and libllama; its source directory (for llama.h) is read from
its CMakeCache.txt. STRATA is the strata command (default: build/strata). Run
from the repository root.

Steps:
 1. `strata synth --arch llama --preset tiny --type f32 --seed 1`: 2 layers,
    n_embd 256, n_ff 512, the 258-token byte-level BPE vocabulary; every row
    length is a multiple of 256.
 2. An importance matrix: llama-imatrix over the strings of
    tests/data/vocab/ggml-vocab-gpt-2.gguf.inp (one token per byte).
 3. llama-quantize --imatrix to each type of TYPES, with llama.cpp's own mix
    for that type (so other tensors get the K-quants it picks). Its IQ2_S
    mix is IQ2_XS with some IQ3_S on this model, nothing in IQ2_S, so IQ2_M
    (mostly IQ2_S) is made instead. The 2-bit, 1-bit and IQ3_XXS types are
    refused without an importance matrix. MXFP4 has no dense recipe
    (MXFP4_MOE puts MXFP4 on expert tensors only and Q8_0 elsewhere), so its
    file asks for MXFP4 on every layer matrix with --tensor-type. A type
    llama-quantize refuses is reported and skipped.
 4. tests/tools/llamacpp_logits.c, compiled against libllama, decodes PROMPT
    in one batch (llama.cpp's default context: f16 KV cache, flash attention
    auto, 2 threads) and writes the logits of every position:
    tiny-<type>.logits.bin, "LCPL", u32 n_tokens, u32 n_vocab,
    i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab], little-endian.
 5. tiny-<type>.dequant.txt: for each tensor, "name ggml_type n_elements
    checksum" where checksum is sum over i of bits(x[i]) * (2 i + 1) modulo
    2^64 (hex), x the gguf package's dequantization as float32 in file order
    (bits: the float's IEEE-754 pattern as an unsigned 32-bit integer). Any
    single changed value changes the sum (an odd factor is invertible
    modulo 2^64).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(REPO, "tests", "data", "llamacpp")
CALIBRATION = os.path.join(REPO, "tests", "data", "vocab", "ggml-vocab-gpt-2.gguf.inp")

# llama-quantize type name -> fixture name (strata's name of the format)
TYPES = [
    ("IQ2_XXS", "iq2_xxs"), ("IQ2_XS", "iq2_xs"), ("IQ2_M", "iq2_m"), ("IQ3_XXS", "iq3_xxs"),
    ("IQ3_S", "iq3_s"), ("IQ1_S", "iq1_s"), ("IQ1_M", "iq1_m"), ("IQ4_NL", "iq4_nl"),
    ("IQ4_XS", "iq4_xs"), ("TQ1_0", "tq1_0"), ("TQ2_0", "tq2_0"), ("MXFP4_MOE", "mxfp4"),
]
LAYER_MATRICES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]

# BOS, then "Once upon a time, there was a little robot." one token per byte
PROMPT = [256] + list(b"Once upon a time, there was a little robot.")


def run(cmd, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def source_dir(build_dir):
    home = None
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"(?:llama\.cpp|llama)_SOURCE_DIR:STATIC=(.*)", line.strip())
            if m:
                return m.group(1)
            m = re.match(r"CMAKE_HOME_DIRECTORY:INTERNAL=(.*)", line.strip())
            if m:
                home = m.group(1)
    if not home:
        sys.exit("no source directory in %s/CMakeCache.txt" % build_dir)
    return home


def find_libdir(build_dir):
    for sub in ("bin", "src", "lib"):
        d = os.path.join(build_dir, sub)
        if os.path.isdir(d) and any(n.startswith("libllama.") for n in os.listdir(d)):
            return d
    sys.exit("no libllama in %s/bin, /src or /lib" % build_dir)


def checksum(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    weights = np.arange(bits.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * weights, dtype=np.uint64))


def write_dequant_checksums(gguf_path, out_path):
    reader = GGUFReader(gguf_path)
    with open(out_path, "w") as f:
        for t in reader.tensors:
            values = dequantize(t.data, t.tensor_type)
            f.write("%s %s %d %016x\n" % (t.name, t.tensor_type.name.lower(), int(values.size), checksum(values)))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build_dir = os.path.abspath(sys.argv[1])
    strata = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "build", "strata"))
    bin_dir = os.path.join(build_dir, "bin")
    src = source_dir(build_dir)
    lib_dir = find_libdir(build_dir)
    os.makedirs(OUT_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="strata_lcpp_")
    try:
        f32 = os.path.join(tmp, "tiny-f32.gguf")
        r = run([strata, "synth", "--arch", "llama", "--preset", "tiny", "--type", "f32", "--seed", "1", "-o", f32])
        if r.returncode:
            sys.exit("strata synth failed:\n" + r.stdout)

        # calibration text: the test strings without their separators
        with open(CALIBRATION, encoding="utf-8") as f:
            text = f.read().replace("__ggml_vocab_test__\n", "")
        calib = os.path.join(tmp, "calibration.txt")
        with open(calib, "w", encoding="utf-8") as f:
            f.write(text * 4)
        imatrix = os.path.join(tmp, "imatrix.gguf")
        # relative names, run in tmp: llama-quantize records the imatrix's file
        # and data set names in the GGUF, and no machine path belongs there
        r = run([os.path.join(bin_dir, "llama-imatrix"), "-m", "tiny-f32.gguf", "-f", "calibration.txt", "-o",
                 "imatrix.gguf", "-c", "128", "-b", "128", "-t", "2", "--no-ppl"], cwd=tmp)
        if r.returncode or not os.path.exists(imatrix):
            sys.exit("llama-imatrix failed:\n" + r.stdout[-3000:])

        dumper = os.path.join(tmp, "llamacpp_logits")
        r = run(["cc", "-O2", "-Wall", "-Wextra", "-o", dumper, os.path.join(REPO, "tests", "tools", "llamacpp_logits.c"),
                 "-I", os.path.join(src, "include"), "-I", os.path.join(src, "ggml", "include"), "-L", lib_dir,
                 "-Wl,-rpath," + lib_dir, "-lllama", "-lggml", "-lggml-base"])
        if r.returncode:
            sys.exit("cannot build llamacpp_logits:\n" + r.stdout)

        for lcpp_type, name in TYPES:
            out = os.path.join(OUT_DIR, "tiny-%s.gguf" % name)
            cmd = [os.path.join(bin_dir, "llama-quantize"), "--imatrix", "imatrix.gguf"]
            if lcpp_type == "MXFP4_MOE":
                for m in LAYER_MATRICES:
                    cmd += ["--tensor-type", "%s=mxfp4" % m]
            cmd += ["tiny-f32.gguf", out, lcpp_type, "2"]
            r = run(cmd, cwd=tmp)
            if r.returncode or not os.path.exists(out):
                lines = [l for l in r.stdout.splitlines() if l.strip()]
                print("%-8s refused by llama-quantize: %s" % (lcpp_type, " | ".join(lines[-3:])))
                if os.path.exists(out):
                    os.remove(out)
                continue
            types = sorted(set(re.findall(r"converting to (\w+)", r.stdout)))
            logits = os.path.join(OUT_DIR, "tiny-%s.logits.bin" % name)
            r = run([dumper, out, logits] + [str(t) for t in PROMPT])
            if r.returncode:
                sys.exit("llamacpp_logits failed on %s:\n%s" % (out, r.stdout))
            write_dequant_checksums(out, os.path.join(OUT_DIR, "tiny-%s.dequant.txt" % name))
            print("%-8s %8d bytes  tensor types: %s" % (lcpp_type, os.path.getsize(out), " ".join(types)))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
