#!/usr/bin/env python3
"""Outside check of the C reference forward pass (tests/common/reference_forward.c).

Computes the logits of every position of a token list for a llama / qwen2 /
qwen3 GGUF file with numpy in float64, dequantizing with the gguf package's
own dequantizer, and writes them as little-endian float32 [n_tokens][n_vocab].
Nothing here shares code with strata. test_e2e_logits compares the C reference
with the files this script wrote (tests/data/e2e/*.bin).

GGUF stores llama Q/K rows permuted for the "normal" rope (adjacent pairs
2i, 2i+1); qwen2/qwen3 use neox rope (pairs i, i + n_rot/2). Both are written
here in the GGUF convention, so no un-permuting is needed.

usage: reference_logits.py MODEL.gguf OUT.bin [TOKEN ...]
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

DEFAULT_TOKENS = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111]


def field_value(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def load_tensors(reader):
    tensors = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float64)
        shape = [int(n) for n in t.shape]  # ne0 first
        tensors[t.name] = values.reshape(list(reversed(shape))) if len(shape) > 1 else values.reshape(-1)
    return tensors


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base, factors, neox):
    """x: [n_heads, head_dim] at position pos."""
    half = n_rot // 2
    freqs = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    if factors is not None:
        freqs = freqs / factors
    angles = pos * freqs
    c, s = np.cos(angles), np.sin(angles)
    out = x.copy()
    if neox:
        a, b = x[:, :half], x[:, half:n_rot]
        out[:, :half] = a * c - b * s
        out[:, half:n_rot] = a * s + b * c
    else:
        a, b = x[:, 0:n_rot:2], x[:, 1:n_rot:2]
        out[:, 0:n_rot:2] = a * c - b * s
        out[:, 1:n_rot:2] = a * s + b * c
    return out


def forward(path, tokens):
    reader = GGUFReader(path)
    arch = field_value(reader, "general.architecture")
    neox = arch in ("qwen2", "qwen3")
    n_embd = int(field_value(reader, f"{arch}.embedding_length"))
    n_layer = int(field_value(reader, f"{arch}.block_count"))
    n_head = int(field_value(reader, f"{arch}.attention.head_count"))
    n_head_kv = int(field_value(reader, f"{arch}.attention.head_count_kv", n_head))
    head_dim = int(field_value(reader, f"{arch}.attention.key_length", n_embd // n_head))
    n_rot = int(field_value(reader, f"{arch}.rope.dimension_count", head_dim))
    eps = float(field_value(reader, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5))
    base = float(field_value(reader, f"{arch}.rope.freq_base", 10000.0))
    w = load_tensors(reader)
    factors = w.get("rope_freqs.weight")
    output = w.get("output.weight", w["token_embd.weight"])
    group = n_head // n_head_kv

    n = len(tokens)
    x = w["token_embd.weight"][tokens]  # [n, n_embd]
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for l in range(n_layer):
        p = f"blk.{l}."
        xb = rms_norm(x, w[p + "attn_norm.weight"], eps)
        q = xb @ w[p + "attn_q.weight"].T + w.get(p + "attn_q.bias", 0.0)  # [n, n_head*hd]
        k = xb @ w[p + "attn_k.weight"].T + w.get(p + "attn_k.bias", 0.0)
        v = xb @ w[p + "attn_v.weight"].T + w.get(p + "attn_v.bias", 0.0)
        q = q.reshape(n, n_head, head_dim)
        k = k.reshape(n, n_head_kv, head_dim)
        v = v.reshape(n, n_head_kv, head_dim)
        if p + "attn_q_norm.weight" in w:
            q = rms_norm(q, w[p + "attn_q_norm.weight"], eps)
            k = rms_norm(k, w[p + "attn_k_norm.weight"], eps)
        q = np.stack([rope(q[t], t, n_rot, base, factors, neox) for t in range(n)])
        k = np.stack([rope(k[t], t, n_rot, base, factors, neox) for t in range(n)])
        k = np.repeat(k, group, axis=1)  # [n, n_head, hd]
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        att = np.einsum("hqk,khd->qhd", probs, v).reshape(n, n_head * head_dim)
        x = x + att @ w[p + "attn_output.weight"].T
        xb = rms_norm(x, w[p + "ffn_norm.weight"], eps)
        gate = xb @ w[p + "ffn_gate.weight"].T
        up = xb @ w[p + "ffn_up.weight"].T
        x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
    x = rms_norm(x, w["output_norm.weight"], eps)
    return x @ output.T


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tokens = [int(t) for t in sys.argv[3:]] or DEFAULT_TOKENS
    logits = forward(sys.argv[1], tokens)
    logits.astype("<f4").tofile(sys.argv[2])
    print(f"{sys.argv[2]}: {logits.shape[0]} x {logits.shape[1]} logits, argmax {logits.argmax(axis=1).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
