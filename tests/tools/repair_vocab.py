#!/usr/bin/env python3
"""Rebuilds the tokenizer vocab fixtures of tests/data/vocab from damaged copies.

The copies of the llama.cpp ggml-vocab-*.gguf files we were given had been
passed once through a lossy UTF-8 text conversion: every byte sequence that
was not valid UTF-8 became U+FFFD (EF BF BD). Strings (tokens, merges) are
valid UTF-8 and survived; binary numbers with a byte >= 0x80 did not (array
counts, long string lengths, some token ids, most float scores).

This script reads a damaged file with vocab_tolerant_reader (which recovers
damaged string lengths by requiring the following strings to parse), then
fills what was lost:
  - array counts: from the strings actually read;
  - token ids that were damaged (gpt-2 bos/eos): the id of <|endoftext|>;
  - SentencePiece scores (llama-spm, phi-3): from the intact LLaMA-2 vocab in
    models/llama-2-tiny-random.gguf (its 32000 tokens are checked to be equal),
    and for phi-3's 64 added tokens from a small list of candidates.
Every recovered score array is verified: re-encoding it as float32 and
applying the same lossy conversion must give back the damaged bytes exactly.
Only tokenizer keys and general.architecture/name are written.

usage: repair_vocab.py DAMAGED_DIR OUT_DIR MODELS_DIR
"""
import os
import struct
import sys

import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vocab_tolerant_reader as tolerant  # noqa: E402

NAMES = ['llama-spm', 'phi-3', 'gpt-2', 'deepseek-coder', 'mpt', 'refact']


def lossy(raw):
    return raw.decode('utf-8', errors='replace').encode('utf-8')


def score_segment(path, n):
    """Bytes of the damaged scores array: from after its count to the next key."""
    data = open(path, 'rb').read()
    key = b'tokenizer.ggml.scores'
    at = data.index(struct.pack('<Q', len(key)) + key)
    start = at + 8 + len(key) + 4 + 4 + 8
    end = data.index(struct.pack('<Q', 25) + b'tokenizer.ggml.token_type', start)
    return data[start:end]


def reference_spm(models_dir):
    r = gguf.GGUFReader(os.path.join(models_dir, 'llama-2-tiny-random.gguf'))
    f = r.fields['tokenizer.ggml.tokens']
    tokens = [bytes(f.parts[i]) for i in f.data]
    f = r.fields['tokenizer.ggml.scores']
    scores = [float(f.parts[i][0]) for i in f.data]
    return tokens, scores


def recover_scores(path, tokens, ref_tokens, ref_scores):
    if tokens[:len(ref_tokens)] != ref_tokens:
        raise SystemExit(f'{path}: tokens differ from the LLaMA-2 reference vocab')
    segment = score_segment(path, len(tokens))
    extra = len(tokens) - len(ref_tokens)
    # phi-3's first tokens and added tokens: try the scores converters write
    # (-1000 for added tokens, -10000 for the [PADnnnnn] fillers)
    added_tokens = tokens[len(ref_tokens):]
    added_choices = ([0.0] * extra, [-1000.0] * extra,
                     [-10000.0 if t.startswith(b'[PAD') else -1000.0 for t in added_tokens])
    for head in ([0.0, 0.0, 0.0], [-1000.0, -1000.0, -1000.0]):
        for added in added_choices:
            scores = head + ref_scores[3:] + added
            raw = struct.pack(f'<{len(scores)}f', *scores)
            if lossy(raw) == segment:
                return scores
    raise SystemExit(f'{path}: no candidate scores reproduce the damaged bytes')


def write(out_path, kv, scores):
    arch = kv['general.architecture'].decode()
    w = gguf.GGUFWriter(out_path, arch)
    w.add_name(kv['general.name'].decode())
    for key, value in kv.items():
        if not key.startswith('tokenizer.'):
            continue
        if key == 'tokenizer.ggml.scores':
            w.add_array(key, [float(s) for s in scores])
        elif key == 'tokenizer.ggml.token_type':
            w.add_array(key, [int(t) for t in value])
        elif key in ('tokenizer.ggml.tokens', 'tokenizer.ggml.merges'):
            w.add_array(key, [s.decode('utf-8') for s in value])
        elif isinstance(value, bytes):
            w.add_string(key, value.decode('utf-8'))
        elif isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            raise SystemExit(f'{key}: unexpected value {value!r}')
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    damaged_dir, out_dir, models_dir = sys.argv[1:4]
    ref_tokens, ref_scores = reference_spm(models_dir)
    for name in NAMES:
        path = os.path.join(damaged_dir, f'ggml-vocab-{name}.gguf')
        kv, damaged, _, _ = tolerant.load(path)
        tokens = kv['tokenizer.ggml.tokens']
        for key in ('tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id'):
            if key in kv and kv[key] is None:
                kv[key] = tokens.index(b'<|endoftext|>')
        for key, value in kv.items():
            if key.startswith('tokenizer.') and key != 'tokenizer.ggml.scores' and (
                    value is None or (isinstance(value, list) and None in value)):
                raise SystemExit(f'{path}: {key} is damaged and has no recovery rule')
        scores = None
        if 'tokenizer.ggml.scores' in kv:
            scores = recover_scores(path, tokens, ref_tokens, ref_scores)
        out_path = os.path.join(out_dir, f'ggml-vocab-{name}.gguf')
        write(out_path, kv, scores)
        print(f'{name}: {len(tokens)} tokens, repaired {sorted(damaged)}')


if __name__ == '__main__':
    main()
