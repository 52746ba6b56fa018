#!/usr/bin/env python3
"""Writes the block-format fixtures in tests/data/quant/ that tests/test_quant.c
checks the C code against. The reference is the PyPI `gguf` package
(gguf.quants), an implementation written apart from strata; for the two
formats it does not cover (Q8_1, Q8_K, activation-only formats) a few lines of
numpy below decode them.

Files (all little-endian, no headers; the C test knows the counts):
  <type>.blocks        random blocks of <type>: random bytes, with every
                       fp16 (f32 for Q8_K) scale field set to a finite,
                       moderate value
  <type>.dequant.f32   the reference dequantization of <type>.blocks
  <type>.qin.f32       random f32 input (types gguf.quants can quantize)
  <type>.qout.bin      gguf.quants' quantization of <type>.qin.f32
  <type>.grid          for the i-quant grid formats: gguf's expanded grid,
                       one int8 per coordinate, point after point

The low-bit formats (IQ*, MXFP4, TQ*) draw from a second generator, so adding
them left the older fixtures byte for byte as they were.

Run from the repository root:  python3 tests/tools/make_quant_fixtures.py
The output is deterministic (fixed seed)."""

import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES, quants

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "quant")

# blocks per dequantization fixture; small, to keep the committed data small
SMALL_BLOCKS = 24  # 32-element formats
K_BLOCKS = 4       # 256-element formats
QUANT_BLOCKS_32 = 8  # quantization fixtures: 8 blocks of 32 = 256 values

# byte offsets of the fp16 scale fields of each format
FP16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q8_0: [0], T.Q8_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def moderate_fp16(rng, n):
    """Finite fp16 scales of either sign, magnitudes 1e-4 .. 2."""
    mag = np.exp(rng.uniform(np.log(1e-4), np.log(2.0), n)).astype(np.float32)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    return (mag * sign).astype(np.float16)


# gguf-py still lists Q8_1 with the old 40-byte block (f32 d and s); ggml's
# block_q8_1 has been two fp16 fields and 32 quants (36 bytes) for a long time,
# and that is the layout strata uses.
BLOCK_BYTES_OVERRIDE = {T.Q8_1: 36}


def random_blocks(rng, qtype, n_blocks):
    block_bytes = BLOCK_BYTES_OVERRIDE.get(qtype, GGML_QUANT_SIZES[qtype][1])
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype == T.Q8_K:
        d = (rng.uniform(-0.05, 0.05, n_blocks)).astype(np.float32)
        raw[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
    for off in FP16_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = moderate_fp16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw


def numpy_dequant_q8_1(raw):
    d = raw[:, 0:2].copy().view(np.float16).astype(np.float32)
    qs = raw[:, 4:36].copy().view(np.int8).astype(np.float32)
    return (d * qs).reshape(-1)


def numpy_dequant_q8_k(raw):
    d = raw[:, 0:4].copy().view(np.float32)
    qs = raw[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (d * qs).reshape(-1)


def reference_dequant(qtype, raw):
    if qtype == T.Q8_1:
        return numpy_dequant_q8_1(raw)
    if qtype == T.Q8_K:
        return numpy_dequant_q8_k(raw)
    return quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)


def special_fp16_patterns(rng):
    """Every class of half: zeros, subnormals, normals, max, inf, nan."""
    fixed = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x3555,
             0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0x7fff, 0x0200]
    rest = rng.integers(0, 65536, size=256 - len(fixed), dtype=np.uint32)
    return np.array(fixed + list(rest), dtype=np.uint16)


def special_f32_inputs(rng):
    """Inputs for the f16 and bf16 quantization fixtures: the rounding
    boundaries, overflow, subnormals, inf, nan, and random values."""
    fixed = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.996, 65520.0, 1e9, -1e9,
                      6.1035156e-05, 6.097555e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08,
                      1e-10, np.inf, -np.inf, 3.4028235e38, 1.00048828125, 1.00146484375,
                      1.0009765625 + 2**-20, 1.0 + 2**-8, 1.0 + 3 * 2**-8], dtype=np.float32)
    nan_bits = np.array([0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff], dtype=np.uint32).view(np.float32)
    n_rest = 256 - len(fixed) - len(nan_bits)
    rest = (rng.standard_normal(n_rest) * np.exp(rng.uniform(-20, 12, n_rest))).astype(np.float32)
    return np.concatenate([fixed, nan_bits, rest]).astype(np.float32)


# byte offsets of the fp16 scale fields of the low-bit formats (IQ1_M spreads
# its scale over four nibbles and MXFP4 has a power-of-two byte: see
# lowbit_blocks)
LOWBIT_FP16_FIELDS = {
    T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0], T.IQ3_XXS: [0], T.IQ3_S: [0],
    T.IQ1_S: [0], T.IQ4_NL: [0], T.IQ4_XS: [0], T.TQ1_0: [52], T.TQ2_0: [64],
}
LOWBIT_TYPES = [T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ1_S, T.IQ1_M,
                T.IQ4_NL, T.IQ4_XS, T.MXFP4, T.TQ1_0, T.TQ2_0]
GRID_TYPES = {T.IQ2_XXS: quants.IQ2_XXS, T.IQ2_XS: quants.IQ2_XS, T.IQ2_S: quants.IQ2_S,
              T.IQ3_XXS: quants.IQ3_XXS, T.IQ3_S: quants.IQ3_S, T.IQ1_S: quants.IQ1_S}


def lowbit_blocks(rng, qtype, n_blocks):
    """Random blocks of a low-bit format with finite, moderate scales."""
    _, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in LOWBIT_FP16_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = moderate_fp16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    if qtype == T.IQ1_M:
        # the fp16 d is the top nibbles of the four uint16 scale words
        d = moderate_fp16(rng, n_blocks).view(np.uint16).astype(np.uint32)
        words = raw[:, 48:56].copy().view(np.uint16).astype(np.uint32)
        for k in range(4):
            words[:, k] = (words[:, k] & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12)
        raw[:, 48:56] = words.astype(np.uint16).view(np.uint8).reshape(n_blocks, 8)
    if qtype == T.MXFP4:
        # exponents around 2^0, plus the subnormal scales e = 0, 1 and e = 2
        e = rng.integers(100, 151, size=n_blocks, dtype=np.uint8)
        e[:3] = [0, 1, 2]
        raw[:, 0] = e
    return raw


def write_lowbit_fixtures():
    rng = np.random.default_rng(20261204)
    total = 0
    for qtype in LOWBIT_TYPES:
        block_elems, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = SMALL_BLOCKS if block_elems == 32 else 8
        raw = lowbit_blocks(rng, qtype, n_blocks)
        ref = quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
        assert ref.shape == (n_blocks * block_elems,) and np.all(np.isfinite(ref)), qtype.name
        name = qtype.name.lower()
        total += write(f"{name}.blocks", raw)
        total += write(f"{name}.dequant.f32", ref)
    for qtype, cls in GRID_TYPES.items():
        cls.init_grid()
        grid = np.asarray(cls.grid, dtype=np.float32).reshape(cls.grid_shape)
        total += write(f"{qtype.name.lower()}.grid", grid.astype(np.int8))
    # quantization: the low-bit formats gguf.quants can quantize
    for qtype in [T.MXFP4, T.TQ1_0, T.TQ2_0]:
        block_elems, _ = GGML_QUANT_SIZES[qtype]
        n = 8 * 256
        x = (rng.standard_normal(n) * 0.05).astype(np.float32)
        x[256:256 + block_elems] = 0.0                      # an all-zero block
        x[512:512 + block_elems] = np.abs(x[512:512 + block_elems])  # all positive
        # exact ties of the rounding (half-way between levels) and tiny values
        x[768:768 + 8] = np.array([0.5, -0.5, 1.5, -1.5, 0.25, 3.0, -6.0, 1e-30], dtype=np.float32)
        total += write(f"{qtype.name.lower()}.qin.f32", x)
        total += write(f"{qtype.name.lower()}.qout.bin", quants.quantize(x, qtype).view(np.uint8))
    return total


def write(name, array):
    path = os.path.join(OUT_DIR, name)
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(array).tobytes())
    return os.path.getsize(path)


def main():
    rng = np.random.default_rng(20240601)
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0

    # plain half types: decode every class of bit pattern
    f16_bits = special_fp16_patterns(rng)
    total += write("f16.blocks", f16_bits)
    total += write("f16.dequant.f32", f16_bits.view(np.float16).astype(np.float32))
    bf16_bits = rng.integers(0, 65536, size=256, dtype=np.uint32).astype(np.uint16)
    total += write("bf16.blocks", bf16_bits)
    total += write("bf16.dequant.f32", quants.dequantize(bf16_bits.view(np.uint8), T.BF16).astype(np.float32))

    block_types = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q8_1,
                   T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]
    for qtype in block_types:
        block_elems, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = SMALL_BLOCKS if block_elems == 32 else K_BLOCKS
        raw = random_blocks(rng, qtype, n_blocks)
        ref = reference_dequant(qtype, raw)
        assert ref.shape == (n_blocks * block_elems,) and np.all(np.isfinite(ref))
        name = qtype.name.lower()
        total += write(f"{name}.blocks", raw)
        total += write(f"{name}.dequant.f32", ref)

    # quantization: what gguf.quants can quantize
    for qtype in [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]:
        name = qtype.name.lower()
        if qtype in (T.F16, T.BF16):
            x = special_f32_inputs(rng)
        else:
            x = (rng.standard_normal(QUANT_BLOCKS_32 * 32) * 0.05).astype(np.float32)
            x[64:96] = 0.0           # an all-zero block (scale 0 path)
            x[96:128] = np.abs(x[96:128])  # an all-positive block (min > 0 path)
        with np.errstate(over="ignore", invalid="ignore"):
            q = quants.quantize(x, qtype)
        total += write(f"{name}.qin.f32", x)
        total += write(f"{name}.qout.bin", q.view(np.uint8))

    total += write_lowbit_fixtures()
    print(f"wrote {total} bytes to {os.path.normpath(OUT_DIR)}", file=sys.stderr)


if __name__ == "__main__":
    main()
