#!/usr/bin/env python3
"""Writes the fixtures of test_tokenizer_hf: for each family, a small tokenizer
built the way the family's published one is (its algorithm, normalizer,
pre-tokenizer, special and added tokens), saved by Hugging Face transformers,
converted by llama.cpp's own convert_hf_to_gguf.py (--vocab-only), and the
ids and texts transformers gives for a fixed list of strings.

    tests/data/tokenizers/<name>.gguf   the converter's output (tokenizer keys only)
    tests/data/tokenizers/<name>.inp    the strings, each followed by a line __ggml_vocab_test__
    tests/data/tokenizers/<name>.out    per string, the ids of tokenizer.encode(s) (special tokens
                                        added as the tokenizer adds them: BOS for SentencePiece)
    tests/data/tokenizers/<name>.dec    per string, decode(ids) (specials rendered), each
                                        followed by a separator line as in the .inp
    tests/data/tokenizers/<name>.skip   per string, decode(ids, skip_special_tokens=True)

Needs transformers, tokenizers, sentencepiece, protobuf, torch (the converter
imports it) and a llama.cpp source tree; CI needs none of them, only the files.

    python3 tests/tools/make_tokenizer_fixtures.py --llama-cpp DIR [--only NAME ...]

The files in tests/data/tokenizers were written with transformers 5.25.0,
tokenizers 0.23.3 and sentencepiece 0.2.3, and the llama.cpp tree vendored in
the llama-cpp-python 0.3.36 source package (vendor/llama.cpp).

The pre-tokenizer name. For byte-level BPE vocabularies the converter names
the pre-tokenizer by hashing the ids the tokenizer gives for a fixed text, and
a table maps the hashes of published tokenizers to names. A tokenizer trained
here has a vocabulary of its own, so its hash is in no table and the converter
stops. The converter then runs with its get_vocab_base_pre wrapped: the
original runs first, and only when it finds no name does the wrapper return
the name the table gives the family's published tokenizer (FAMILIES[...]
["pre"]: "qwen2" for Qwen3, whose published tokenizers hash to the "qwen2"
entries; "dbrx" for OLMo 2, whose cl100k-based tokenizer splits and encodes
the check text as DBRX's does). Nothing else of the conversion is touched.
SentencePiece families are not hashed ("default").
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

SEPARATOR = "\n__ggml_vocab_test__\n"

# the regular expressions of the published tokenizer.json files
PAT_CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
PAT_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")

GEMMA_SPECIAL = ["<start_of_turn>", "<end_of_turn>"]
GEMMA3_SPECIAL = GEMMA_SPECIAL + ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]
# Gemma's vocabulary holds runs of newlines, tabs and spaces as user-defined pieces
GEMMA_WHITESPACE = ["\n", "\n\n", "\n\n\n", "\t", "\t\t", "  ", "   ", "    ", "        "]

FAMILIES = {
    "gemma2": dict(kind="gemma", arch="Gemma2ForCausalLM", model_type="gemma2", vocab=420, add_bos=True,
                   special=GEMMA_SPECIAL),
    "gemma3": dict(kind="gemma", arch="Gemma3ForCausalLM", model_type="gemma3_text", vocab=560, add_bos=True,
                   special=GEMMA3_SPECIAL),
    # Phi-3: LLaMA 2's SentencePiece model plus chat tokens after it (added_tokens);
    # rstrip as in the published tokenizer.json: on the chat tokens and </s>,
    # not on <|endoftext|>
    "phi3": dict(kind="llama", arch="Phi3ForCausalLM", model_type="phi3", vocab=400, legacy=False, add_bos=False,
                 published_json=True,  # llama2_published_pipeline
                 added=[("<|endoftext|>", False), ("<|assistant|>", True), ("<|system|>", True), ("<|end|>", True),
                        ("<|user|>", True)], rstrip_base=["</s>"]),
    "mixtral": dict(kind="llama", arch="MixtralForCausalLM", model_type="mixtral", vocab=400, legacy=True,
                    published_json=True,
                    add_bos=True, added=[]),
    "olmo2": dict(kind="bpe", arch="Olmo2ForCausalLM", model_type="olmo2", vocab=600, pattern=PAT_CL100K, nfc=False,
                  tokenizer_class="GPT2Tokenizer", pre="dbrx",
                  special=["<|endoftext|>", "<|pad|>"], user=[], eos="<|endoftext|>", bos="<|endoftext|>",
                  pad="<|pad|>"),
    "qwen3": dict(kind="bpe", arch="Qwen3ForCausalLM", model_type="qwen3", vocab=600, pattern=PAT_QWEN2, nfc=True,
                  tokenizer_class="Qwen2Tokenizer", pre="qwen2",
                  special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], user=["<think>", "</think>"],
                  eos="<|im_end|>", bos=None, pad="<|endoftext|>"),
}

# Training text: words of several scripts, digits, code and whitespace runs.
WORDS = ["strata", "gemma", "tensor", "layer", "the", "of", "and", "to", "in", "hello", "world", "Hello", "World",
         "über", "naïve", "café", "日本語", "中文", "テスト", "한국어", "привет", "мир", "12345", "3.14", "2024",
         "don't", "it's", "I'm", "we'll", "(x)", "{y}", "[z]", "a+b", "x=1;", "->", "==", "!!", "??", "...",
         "🦙", "🚀", "😀", "✅"]


def training_lines():
    rng = random.Random(7)
    lines = [" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(3000)]
    lines += ["def f(x):\n    return x + 1\n\n", "\tint main(void) {\n\t\treturn 0;\n\t}\n", "a  b   c    d"] * 40
    return lines


# The strings: plain text, whitespace runs, digits, emoji, CJK, accents in
# composed and decomposed form, text around special and added tokens, and
# text that looks like a token but is not one.
VECTORS = [
    "", " ", "  ", "\t", "\n", "\n\n\n", " \n \n\n \t\t ", "Hello world", " Hello world", "Hello  World ",
    "hello\nworld\n", "   leading and trailing   ", "tab\tseparated\tvalues", "\r\nwindows line\r\n",
    "1", "12", "123", "1234", "12345678", "3.14159 and 2,718", "version 2024-12-04", "x1y22z333",
    "I'm sure it's fine, we'll see. DON'T SHOUT", "'s 'S 're 'RE", "!!!???...---===",
    "🦙🦙 llama 🚀 (rocket) 😶‍🌫️", "✅ done", "日本語のテスト", "中文测试 mixed with English", "한국어 텍스트",
    "привет мир", "café naïve über", "cafe\u0301 nai\u0308ve", "Ångström \u212b", "ｆｕｌｌｗｉｄｔｈ",
    "<unk> <s> </s> <bos> <eos> <pad>", "<|im_start|> is written out", "<start_of_turn>user\nHi there<end_of_turn>\n",
    "<start_of_turn>model\n", "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n", "<|user|> spaced <|end|> ",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<think>\nreasoning\n</think>\n\nanswer",
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext", "<think", "<0x41>", "\u2581 marker \u2581\u2581",
    "def f(x):\n    return x + 1\n", "\tint main(void) {\n\t\treturn 0;\n\t}\n", "zero\u200bwidth", "\u00a0nbsp\u00a0",
    "mixed 日本 and 한국 and Ελληνικά", "  \n  \n", "end with space ", "x" * 200,
    "<|end|> \u3000\u00a0\tx<|endoftext|> y", "</s>  z </s>", "\u1100\u1161\u11a8 Vie\u0323\u0302t q\u0307\u0323",
    "a\u0328\u0301 \u0958 \u2126",
]


def llama2_published_pipeline(directory):
    """Phi-3 and Mixtral publish tokenizer.json with LLaMA 2's pipeline as transformers 4
    wrote it: a normalizer that prepends U+2581 and replaces spaces by it, no
    pre-tokenizer, and a decoder that strips the one leading space."""
    path = os.path.join(directory, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    data["pre_tokenizer"] = None
    data["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)


def set_rstrip(directory, texts):
    """Marks tokens of the SentencePiece model rstrip (as Phi-3 publishes
    </s>), in tokenizer.json's added_tokens and tokenizer_config.json's
    added_tokens_decoder, as the published files have it."""
    for name, key in (("tokenizer.json", "added_tokens"), ("tokenizer_config.json", "added_tokens_decoder")):
        path = os.path.join(directory, name)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        tokens = data[key] if isinstance(data[key], list) else data[key].values()
        for token in tokens:
            if token["content"] in texts:
                token["rstrip"] = True
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=None if key == "added_tokens" else 1)


def write_config(directory, family):
    config = {"architectures": [family["arch"]], "model_type": family["model_type"], "vocab_size": family["n_vocab"],
              "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
              "rope_theta": 10000.0, "num_local_experts": 2, "num_experts_per_tok": 1, "sliding_window": 16}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)


def train_sentencepiece(directory, family, gemma):
    import sentencepiece as spm
    options = dict(vocab_size=family["vocab"], model_type="bpe", byte_fallback=True, character_coverage=1.0,
                   minloglevel=2)
    if gemma:  # Gemma's normalizer: none, no dummy prefix, spaces kept, digits split
        options.update(add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
                       split_digits=True, allow_whitespace_only_pieces=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                       pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
                       control_symbols=["<mask>", "[@BOS@]"],
                       user_defined_symbols=family["special"] + GEMMA_WHITESPACE)
    else:  # LLaMA 2's: a dummy prefix, whitespace kept
        options.update(add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
                       split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(training_lines()),
                                   model_prefix=os.path.join(directory, "tokenizer"), **options)


def build_gemma(directory, family):
    import transformers
    train_sentencepiece(directory, family, gemma=True)
    tok = transformers.GemmaTokenizer.from_pretrained(directory, add_bos_token=True)
    # the chat tokens are special in the published tokenizer_config.json
    tok.add_special_tokens({"additional_special_tokens": family["special"]})
    return tok


def build_llama(directory, family):
    import transformers
    from tokenizers import AddedToken
    train_sentencepiece(directory, family, gemma=False)
    tok = transformers.LlamaTokenizer.from_pretrained(directory, legacy=family["legacy"],
                                                      add_bos_token=family["add_bos"])
    if family["added"]:
        tok.add_tokens([AddedToken(text, special=True, normalized=False, rstrip=rstrip, lstrip=False)
                        for text, rstrip in family["added"]], special_tokens=True)
    return tok


def build_bpe(directory, family):
    import transformers
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    backend = Tokenizer(models.BPE(ignore_merges=False))
    if family["nfc"]:
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(family["pattern"]), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=family["vocab"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    backend.train_from_iterator(training_lines(), trainer)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in family["special"]])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in family["user"]])
    # Saved as tokenizers wrote it: wrapping it in a transformers 5 class
    # first would replace its pre-tokenizer with the class's own.
    backend.save(os.path.join(directory, "tokenizer.json"))
    config = dict(tokenizer_class=family["tokenizer_class"], bos_token=family["bos"], eos_token=family["eos"],
                  pad_token=family["pad"], unk_token=None, add_bos_token=False, add_prefix_space=False,
                  added_tokens_decoder={
                      str(i): dict(content=t.content, lstrip=t.lstrip, normalized=t.normalized, rstrip=t.rstrip,
                                   single_word=t.single_word, special=t.special)
                      for i, t in sorted(backend.get_added_tokens_decoder().items())})
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return None


def write_added_tokens_decoder(directory, tok, family):
    """transformers 5 no longer writes added_tokens_decoder (nor add_bos_token)
    into tokenizer_config.json; the published files, written by transformers
    4, carry both, and the converter reads them (which added tokens are
    special, whether to add BOS). They are written here as transformers 4
    wrote them, from the tokenizer's own tables."""
    config_path = os.path.join(directory, "tokenizer_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["added_tokens_decoder"] = {
        str(i): dict(content=t.content, lstrip=t.lstrip, normalized=t.normalized, rstrip=t.rstrip,
                     single_word=t.single_word, special=t.special)
        for i, t in sorted(tok.added_tokens_decoder.items())}
    if "add_bos" in family:
        config["add_bos_token"] = family["add_bos"]
        config["add_eos_token"] = False
    with open(config_path, "w") as f:
        json.dump(config, f, indent=1)


def convert(llama_cpp, family, model_dir, out_path):
    patch = ""
    if family["kind"] == "bpe":
        patch = ("import conversion.base as base\n"
                 "original = base.TextModel.get_vocab_base_pre\n"
                 "def named(self, tokenizer):\n"
                 "    try:\n"
                 "        return original(self, tokenizer)\n"
                 "    except NotImplementedError:\n"
                 f"        return {family['pre']!r}\n"
                 "base.TextModel.get_vocab_base_pre = named\n")
    code = ("import sys\n"
            f"sys.path.insert(0, {llama_cpp!r})\n"
            f"sys.argv = ['convert_hf_to_gguf.py', {model_dir!r}, '--vocab-only', '--outfile', {out_path!r}]\n"
            + patch +
            "import convert_hf_to_gguf\n"
            "convert_hf_to_gguf.main()\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(llama_cpp, "gguf-py") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=llama_cpp, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def write_vectors(out_dir, name, tok):
    import transformers
    ids = [tok.encode(text) for text in VECTORS]
    with open(os.path.join(out_dir, f"{name}.inp"), "w", encoding="utf-8", newline="") as f:
        f.write("".join(text + SEPARATOR for text in VECTORS))
    with open(os.path.join(out_dir, f"{name}.out"), "w") as f:
        f.write("".join(" ".join(str(i) for i in line) + "\n" for line in ids))
    for suffix, skip in (("dec", False), ("skip", True)):
        texts = [tok.decode(line, skip_special_tokens=skip) for line in ids]
        with open(os.path.join(out_dir, f"{name}.{suffix}"), "w", encoding="utf-8", newline="") as f:
            f.write("".join(text + SEPARATOR for text in texts))
    return ids


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp", required=True, help="llama.cpp source tree (convert_hf_to_gguf.py)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "tokenizers"))
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import transformers
    builders = {"gemma": build_gemma, "llama": build_llama, "bpe": build_bpe}
    for name in args.only or list(FAMILIES):
        family = FAMILIES[name]
        with tempfile.TemporaryDirectory() as temp:
            directory = os.path.join(temp, name)
            os.mkdir(directory)
            built = builders[family["kind"]](directory, family)
            if built is not None:  # a transformers tokenizer, saved as transformers 4 saved it
                built.save_pretrained(directory)
                write_added_tokens_decoder(directory, built, family)
            if family.get("published_json"):
                llama2_published_pipeline(directory)
            if family.get("rstrip_base"):
                set_rstrip(directory, family["rstrip_base"])
            with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
                saved = json.load(f)
            family["n_vocab"] = len(saved["model"]["vocab"]) + sum(
                t["content"] not in saved["model"]["vocab"] for t in saved["added_tokens"])
            write_config(directory, family)
            # The reference is what transformers loads from the finished
            # directory, as for a downloaded model: which class it picks
            # depends on config.json's model_type (olmo2 and phi3 read
            # tokenizer.json as it is; llama, mixtral, gemma and qwen3 rebuild
            # their pipeline from the class's definition).
            tok = transformers.AutoTokenizer.from_pretrained(directory)
            gguf_path = os.path.abspath(os.path.join(args.out, f"{name}.gguf"))
            convert(os.path.abspath(args.llama_cpp), family, directory, gguf_path)
            ids = write_vectors(args.out, name, tok)
        print(f"{name}: {type(tok).__name__}, {len(tok)} tokens, {os.path.getsize(gguf_path)} bytes, "
              f"{sum(len(i) for i in ids)} ids over {len(ids)} strings")


if __name__ == "__main__":
    main()
