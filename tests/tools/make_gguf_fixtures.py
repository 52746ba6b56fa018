#!/usr/bin/env python3
"""Generates the GGUF test fixtures under tests/data/gguf/.

python_reference.gguf is written by the gguf package's own GGUFWriter, so the
C reader is checked against an independent writer. malformed/*.gguf are built
byte by byte with struct packing, each broken in one way, and
malformed/EXPECTED lists, per file, the status and a fragment the reader's
error message must contain.

Run from the repository root: python3 tests/tools/make_gguf_fixtures.py
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "gguf")
MALFORMED = os.path.join(OUT, "malformed")

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types used here
T_F32, T_F16, T_Q4_0, T_Q8_0, T_I32, T_F64 = 0, 1, 2, 8, 26, 28


def write_reference():
    import gguf

    path = os.path.join(OUT, "python_reference.gguf")
    w = gguf.GGUFWriter(path, arch="testarch")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float32("test.f32", 1.5)
    w.add_float64("test.f64", -2.25e-300)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo \u4e16\u754c")
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_f32", [0.5, -1.0])
    w.add_array("test.array_str", ["a", "", "xyz"])
    w.add_array("test.nested", [[1, 2, 3], [4, 5]])
    w.add_array("test.nested_str", [["ab", "c"], ["d"]])
    w.add_array("test.nested3", [[[7]], [[8, 9], [10]]])
    w.add_array("test.nested4", [[[[-1.5]]]])  # the deepest nesting the reader accepts
    w.add_tensor("t.f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("t.f16", np.array([1.0, -2.0, 0.5], dtype=np.float16))
    q8 = bytes(range(34)) * 2  # two q8_0 blocks, raw
    w.add_tensor("t.q8_0", np.frombuffer(q8, dtype=np.uint8).reshape(1, 68), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("t.i32", np.array([[7, -8]], dtype=np.int32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --- byte-level builder for malformed files ---------------------------------

def s(text):
    raw = text if isinstance(text, bytes) else text.encode()
    return struct.pack("<Q", len(raw)) + raw


def kv(name, vtype, value_bytes):
    return s(name) + struct.pack("<I", vtype) + value_bytes


def kv_u32(name, value):
    return kv(name, U32, struct.pack("<I", value))


def tensor_info(name, dims, ttype, offset):
    return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + \
        struct.pack("<IQ", ttype, offset)


def gguf_bytes(kvs=(), tensors=(), data=b"", version=3, n_kv=None, n_tensors=None, alignment=32, magic=b"GGUF"):
    head = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * ((alignment - len(body) % alignment) % alignment)
    return body + data


def valid_parts():
    """One well-formed file: two keys, a string array, two f32 tensors."""
    kvs = [kv("general.architecture", STRING, s("llama")),
           kv_u32("test.count", 7),
           kv("test.words", ARRAY, struct.pack("<IQ", STRING, 2) + s("ab") + s("cd"))]
    tensors = [tensor_info("a.weight", [8], T_F32, 0), tensor_info("b.weight", [4, 2], T_F32, 32)]
    data = bytes(32) + bytes(32)
    return kvs, tensors, data


def malformed_cases():
    cases = []  # (name, bytes, status, fragment)

    def add(name, blob, fragment, status="invalid"):
        cases.append((name, blob, status, fragment))

    kvs, tensors, data = valid_parts()
    full = gguf_bytes(kvs, tensors, data)
    head = 24
    add("empty", b"", "too small for a GGUF header")
    add("tiny", b"GGUF\x03\0\0\0", "too small for a GGUF header")
    add("bad_magic", b"GGUX" + full[4:], "bad magic")
    add("version1", gguf_bytes(kvs, tensors, data, version=1), "GGUF version 1 is not supported")
    add("version99", gguf_bytes(kvs, tensors, data, version=99), "unknown GGUF version 99")
    add("big_endian", gguf_bytes(kvs, tensors, data, version=0x03000000), "big-endian")
    add("absurd_kv_count", gguf_bytes(kvs, tensors, data, n_kv=1 << 62), "key count 4611686018427387904 cannot fit")
    add("absurd_tensor_count", gguf_bytes(kvs, tensors, data, n_tensors=(1 << 64) - 1),
        "tensor count 18446744073709551615 cannot fit")

    # truncated at every section of the valid file
    k0 = kvs[0]
    # truncations inside the first key use a file with one key and no tensors,
    # so the counts still fit what remains and the reader reaches the cut
    one_key = gguf_bytes([k0], [], b"")
    add("trunc_header", full[:20], "too small for a GGUF header")
    add("trunc_key_name_length", one_key[:head + 4], "key count 1 cannot fit in the 4 bytes that remain")
    add("trunc_key_name", one_key[:head + 8 + 5], "key 0: key name length 20")
    add("trunc_value_type", one_key[:head + len(k0) - 15], "key 0 (general.architecture): truncated: value type")
    add("trunc_string_value", one_key[:head + len(k0) - 3], "string value length 5")
    off_k1 = head + len(k0)
    add("trunc_u32_value", full[:off_k1 + len(kvs[1]) - 2], "key 1 (test.count): truncated: uint32")
    off_k2 = off_k1 + len(kvs[1])
    add("trunc_array_header", full[:off_k2 + 8 + 10 + 4 + 6], "truncated: array element count")
    add("trunc_array_strings", full[:off_k2 + len(kvs[2]) - 3], "key 2 (test.words)")
    off_t0 = off_k2 + len(kvs[2])
    add("trunc_tensor_name", full[:off_t0 + 4], "tensor 0: truncated: tensor name")
    add("trunc_tensor_dims", full[:off_t0 + 8 + 8 + 4 + 3], "tensor 0 (a.weight): truncated: dimension")
    add("trunc_tensor_type", full[:off_t0 + len(tensors[0]) - 10], "tensor 0 (a.weight): truncated: tensor type")
    add("trunc_tensor_offset", full[:off_t0 + len(tensors[0]) - 1], "truncated: tensor data offset")
    off_end = off_t0 + len(tensors[0]) + len(tensors[1])
    add("trunc_padding", full[:off_end + 1], "data section should start")
    add("trunc_data", full[:-5], "tensor 1 (b.weight): data [")

    def with_kv(extra, **kw):
        return gguf_bytes(kvs + [extra], tensors, data, **kw)

    add("string_past_eof", with_kv(kv("test.s", STRING, struct.pack("<Q", 1000) + b"abc")),
        "string value length 1000")
    add("huge_string_length", with_kv(kv("test.s", STRING, struct.pack("<Q", (1 << 64) - 1))),
        "string value length 18446744073709551615")
    add("huge_key_name_length", gguf_bytes([struct.pack("<Q", 1 << 63) + bytes(8)], [], b""), "key name length")
    add("unknown_value_type", with_kv(kv("test.x", 13, b"\0" * 8)), "key 3 (test.x): unknown value type 13")
    add("unknown_array_elem_type", with_kv(kv("test.x", ARRAY, struct.pack("<IQ", 99, 1) + b"\0" * 8)),
        "unknown array element type 99")
    add("array_count_huge", with_kv(kv("test.x", ARRAY, struct.pack("<IQ", U64, 1 << 61))),
        "array of 2305843009213693952 uint64 elements")
    add("array_strings_count_huge", with_kv(kv("test.x", ARRAY, struct.pack("<IQ", STRING, 1 << 40))),
        "string elements")
    deep = struct.pack("<IQ", U8, 1) + b"\x05"
    for _ in range(4):
        deep = struct.pack("<IQ", ARRAY, 1) + deep
    add("nesting_too_deep", with_kv(kv("test.deep", ARRAY, deep)), "nested deeper than 4")
    add("empty_key_name", with_kv(kv("", U8, b"\0")), "key name is empty")
    add("key_name_nul", with_kv(kv(b"test\0x", U8, b"\0")), "key name contains a NUL byte")
    add("duplicate_key", with_kv(kv_u32("test.count", 8)), "key 3 (test.count): duplicate key")

    def with_alignment(value_kv):
        return gguf_bytes(kvs + [value_kv], tensors, data)

    add("alignment_zero", with_alignment(kv_u32("general.alignment", 0)),
        "key 3 (general.alignment): 0 is not a non-zero power of two")
    add("alignment_three", with_alignment(kv_u32("general.alignment", 3)), "3 is not a non-zero power of two")
    add("alignment_u64", with_alignment(kv("general.alignment", U64, struct.pack("<Q", 32))),
        "general.alignment): must be a uint32, found uint64")
    add("alignment_string", with_alignment(kv("general.alignment", STRING, s("32"))), "must be a uint32, found string")

    def with_tensor(info, extra_data=b"", n_tensors=None):
        return gguf_bytes(kvs, tensors + [info], data + extra_data)

    add("ndims_zero", with_tensor(tensor_info("c.weight", [], T_F32, 64)), "tensor 2 (c.weight): n_dims 0 is outside")
    add("ndims_five", with_tensor(tensor_info("c.weight", [1, 1, 1, 1, 1], T_F32, 64), bytes(32)), "n_dims 5")
    add("dim_zero", with_tensor(tensor_info("c.weight", [4, 0], T_F32, 64), bytes(32)), "dimension 1 is 0")
    add("dim_negative", with_tensor(tensor_info("c.weight", [(1 << 64) - 4], T_F32, 64), bytes(32)),
        "dimension 0 is 18446744073709551612")
    add("dim_too_large", with_tensor(tensor_info("c.weight", [1 << 62], T_F32, 64), bytes(32)),
        "dimension 0 is 4611686018427387904")
    add("dim_product_overflow", with_tensor(tensor_info("c.weight", [1 << 40, 1 << 40], T_F32, 64), bytes(32)),
        "product of the dimensions overflows")
    add("size_overflow", with_tensor(tensor_info("c.weight", [1 << 40, 1 << 22], T_F64, 64), bytes(32)),
        "size in bytes overflows")
    add("unknown_dtype", with_tensor(tensor_info("c.weight", [8], 4, 64), bytes(32)), "unknown tensor type 4")
    add("unknown_dtype_huge", with_tensor(tensor_info("c.weight", [8], 0xFFFFFFFF, 64), bytes(32)),
        "unknown tensor type 4294967295")
    add("ne0_not_block_multiple", with_tensor(tensor_info("c.weight", [33], T_Q4_0, 64), bytes(64)),
        "ne[0] = 33 is not a multiple of the q4_0 block size 32")
    add("offset_past_eof", with_tensor(tensor_info("c.weight", [8], T_F32, 1 << 20), bytes(32)),
        "tensor 2 (c.weight): data offset 0x100000")
    add("offset_huge", with_tensor(tensor_info("c.weight", [8], T_F32, (1 << 64) - 32), bytes(32)),
        "past end of file")
    add("data_past_eof", with_tensor(tensor_info("c.weight", [64], T_F32, 64), bytes(32)),
        "tensor 2 (c.weight): data [0x")
    add("misaligned_offset", with_tensor(tensor_info("c.weight", [4], T_F32, 68), bytes(32)),
        "data offset 0x44 is not a multiple of the alignment 32")
    add("overlapping_tensors", with_tensor(tensor_info("c.weight", [16], T_F32, 32), bytes(32)), "overlaps")
    add("duplicate_tensor_name", with_tensor(tensor_info("a.weight", [8], T_F32, 64), bytes(32)),
        "tensor 2 (a.weight): duplicate tensor name")
    add("empty_tensor_name", with_tensor(tensor_info("", [8], T_F32, 64), bytes(32)), "tensor name is empty")
    add("tensor_name_nul", with_tensor(tensor_info(b"c\0d", [8], T_F32, 64), bytes(32)), "tensor name contains a NUL")
    return cases


def main():
    os.makedirs(MALFORMED, exist_ok=True)
    write_reference()
    # the valid byte-built file doubles as a fuzzing seed and a positive check
    kvs, tensors, data = valid_parts()
    with open(os.path.join(OUT, "small_valid.gguf"), "wb") as f:
        f.write(gguf_bytes(kvs, tensors, data))
    lines = ["# file<TAB>status (invalid|io)<TAB>fragment the error message must contain",
             "# generated by tests/tools/make_gguf_fixtures.py; regression inputs found by fuzzing are added by hand"]
    keep = set()
    old_manifest = os.path.join(MALFORMED, "EXPECTED")
    regression = []
    if os.path.exists(old_manifest):
        for line in open(old_manifest, encoding="utf-8"):
            if line.startswith("fuzz_"):
                regression.append(line.rstrip("\n"))
                keep.add(line.split("\t")[0])
    for name, blob, status, fragment in malformed_cases():
        file_name = name + ".gguf"
        with open(os.path.join(MALFORMED, file_name), "wb") as f:
            f.write(blob)
        lines.append(f"{file_name}\t{status}\t{fragment}")
    lines.extend(regression)
    with open(old_manifest, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 2} malformed cases", file=sys.stderr)


if __name__ == "__main__":
    main()
