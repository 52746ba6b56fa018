#!/usr/bin/env python3
"""Writes the transformers fixtures of test_family_logits: for each family, a
tiny random-weight Hugging Face model (every feature of the family switched
on), converted to an F32 GGUF by llama.cpp's own convert_hf_to_gguf.py, and
the logits transformers computes for a fixed token id sequence (every
position).

    tests/data/families/<name>.gguf        the converter's output (F32)
    tests/data/families/<name>_logits.bin  float32 [n_tokens][n_vocab], little-endian

Needs torch, transformers, sentencepiece and a llama.cpp source tree (for
convert_hf_to_gguf.py and its gguf-py); CI needs none of them, only the files.

    python3 tests/tools/make_family_fixtures.py --llama-cpp DIR [--only NAME ...]

The files in tests/data/families were written with transformers 5.25.0 and
torch 2.15.0 on the CPU, and the llama.cpp tree vendored in the
llama-cpp-python 0.3.36 source package (vendor/llama.cpp).

The converter runs as a separate process. The tiny models carry a made-up
sentencepiece tokenizer (the logits are computed from token ids); olmo2's
converter only reads byte-level BPE tokenizers, so for olmo2 the process
reads the sentencepiece one instead (qwen3moe's and qwen2moe's likewise). Nothing else of the conversion is
touched.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers

N_VOCAB = 320
# 24 positions: longer than every sliding window below, so the windows cut.
TOKENS = [1, 17, 203, 45, 299, 8, 150, 77, 312, 64, 5, 190, 33, 271, 128, 99, 3, 256, 140, 11, 318, 60, 222, 101]

COMMON = dict(vocab_size=N_VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)

# name -> (config class, model class, config arguments, whether the norms are stored as w with (1 + w) applied)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM",
              dict(num_hidden_layers=2, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False), False),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM",
              dict(num_hidden_layers=2, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True), False),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM",
              dict(num_hidden_layers=2, head_dim=16, rms_norm_eps=1e-6, rope_theta=1000000.0,
                   tie_word_embeddings=False), False),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM",
              dict(num_hidden_layers=2, rms_norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=False), False),
    # query_pre_attn_scalar equals head_dim: the converter does not store it
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               dict(num_hidden_layers=4, head_dim=16, rms_norm_eps=1e-6, rope_theta=10000.0, query_pre_attn_scalar=16,
                    attn_logit_softcapping=2.0, final_logit_softcapping=5.0, sliding_window=6,
                    hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True), True),
    # 7 layers: 5 local, 1 global, 1 local again
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               dict(num_hidden_layers=7, head_dim=16, rms_norm_eps=1e-6, query_pre_attn_scalar=16,
                    sliding_window=6, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                    rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                     "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0}}),
               True),
    # LongRoPE with the long factors in use (24 positions > 16), half the head rotated
    "phi3": ("Phi3Config", "Phi3ForCausalLM",
             dict(num_hidden_layers=3, rms_norm_eps=1e-5, sliding_window=6, tie_word_embeddings=False,
                  original_max_position_embeddings=16,
                  rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                   "short_factor": [1.0, 1.25], "long_factor": [1.5, 3.0],
                                   "original_max_position_embeddings": 16}), False),
    # the same with the short factors in use (24 positions <= 64) and no attention factor
    "phi3_short": ("Phi3Config", "Phi3ForCausalLM",
                   dict(num_hidden_layers=3, rms_norm_eps=1e-5, sliding_window=6, tie_word_embeddings=False,
                        original_max_position_embeddings=64,
                        rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                         "short_factor": [1.0, 1.25], "long_factor": [1.5, 3.0],
                                         "original_max_position_embeddings": 64}), False),
    # mixtures of experts: 4 experts, 2 per token. A choice between experts
    # is a step function of the hidden state: where the 2nd and 3rd router
    # logits are close, the rounding of a quantized run flips it and the
    # logits jump. So the routers' weights are scaled up (ROUTER_SCALE) and
    # their seed is the one of ROUTER_SEEDS whose smallest margin (2nd minus
    # 3rd logit, over every token and layer) is the largest (router_seed).
    "mixtral": ("MixtralConfig", "MixtralForCausalLM",
                dict(num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2, rms_norm_eps=1e-5,
                     rope_theta=1000000.0, tie_word_embeddings=False), False),
    "qwen3moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM",
                 dict(num_hidden_layers=2, head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48,
                      norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[], rms_norm_eps=1e-6,
                      rope_theta=1000000.0, tie_word_embeddings=False), False),
    # routed experts 48 wide, not renormalized (as the published models); a
    # shared expert 96 wide behind its sigmoid gate; QKV biases
    "qwen2moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM",
                 dict(num_hidden_layers=2, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48,
                      shared_expert_intermediate_size=96, norm_topk_prob=False, decoder_sparse_step=1,
                      mlp_only_layers=[], use_sliding_window=False, qkv_bias=True, rms_norm_eps=1e-6,
                      rope_theta=1000000.0, tie_word_embeddings=False), False),
}
ROUTER_SCALE = 6.0
ROUTER_SEEDS = range(1234, 1434)


def is_router(pname):
    return pname.endswith("block_sparse_moe.gate.weight") or pname.endswith("mlp.gate.weight")


def write_tokenizer(directory):
    """A sentencepiece BPE model of N_VOCAB pieces with byte fallback."""
    import sentencepiece as spm
    words = ["strata", "gemma", "phi", "olmo", "llama", "qwen", "tensor", "layer", "window", "rope", "norm",
             "the", "a", "of", "and", "to", "in", "is", "it", "that", "on", "for", "with", "as", "at"]
    rng = np.random.default_rng(7)
    lines = [" ".join(rng.choice(words, size=12)) for _ in range(2000)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=os.path.join(directory, "tokenizer"),
                                   vocab_size=N_VOCAB, model_type="bpe", byte_fallback=True, character_coverage=1.0,
                                   unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)


def router_margin(model, k):
    """The smallest gap between the k-th and (k+1)-th router logit."""
    with torch.no_grad():
        out = model(torch.tensor([TOKENS]), output_router_logits=True)
    margins = []
    for logits in out.router_logits:
        ranked = torch.sort(logits.reshape(-1, logits.shape[-1]), dim=-1, descending=True).values
        margins.append((ranked[:, k - 1] - ranked[:, k]).min().item())
    return min(margins)


def router_seed(name):
    k = FAMILIES[name][2]["num_experts_per_tok"]
    best = max((router_margin(build_model(name, None, seed), k), seed) for seed in ROUTER_SEEDS)
    print(f"{name}: router seed {best[1]}, smallest margin {best[0]:.3f}")
    return best[1]


def build_model(name, directory, seed=1234):
    config_class, model_class, args, shifted_norms = FAMILIES[name]
    config = getattr(transformers, config_class)(**COMMON, **args)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                # norm weights: around 1 as applied ((1 + w) for gemma), biases small
                base = 0.0 if (shifted_norms or pname.endswith("bias")) else 1.0
                p.copy_(base + 0.2 * torch.randn_like(p))
            else:
                scale = ROUTER_SCALE if is_router(pname) else 1.0
                p.copy_(torch.randn_like(p) * (0.6 * scale / p.shape[-1] ** 0.5))
    if directory:
        model.save_pretrained(directory, safe_serialization=True)
    return model


def convert(llama_cpp, name, model_dir, out_path):
    patch = ""
    if name in ("olmo2", "qwen3moe", "qwen2moe"):
        patch = ("import conversion.base as b\n"
                 "b.TextModel.set_vocab = lambda self: self._set_vocab_sentencepiece()\n")
    code = ("import sys\n"
            f"sys.path.insert(0, {llama_cpp!r})\n"
            f"sys.argv = ['convert_hf_to_gguf.py', {model_dir!r}, '--outtype', 'f32', '--outfile', {out_path!r}]\n"
            + patch +
            "import convert_hf_to_gguf\n"
            "convert_hf_to_gguf.main()\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(llama_cpp, "gguf-py"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=llama_cpp, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp", required=True, help="llama.cpp source tree (convert_hf_to_gguf.py)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "families"))
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = args.only or list(FAMILIES)
    for name in names:
        with tempfile.TemporaryDirectory() as temp:
            directory = os.path.join(temp, name)  # the converter names the model after it
            os.mkdir(directory)
            write_tokenizer(directory)
            seed = router_seed(name) if "num_experts_per_tok" in FAMILIES[name][2] else 1234
            model = build_model(name, directory, seed)
            with torch.no_grad():
                logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()
            gguf_path = os.path.join(args.out, f"{name}.gguf")
            convert(os.path.abspath(args.llama_cpp), name, directory, os.path.abspath(gguf_path))
        logits.astype("<f4").tofile(os.path.join(args.out, f"{name}_logits.bin"))
        print(f"{name}: {os.path.getsize(gguf_path)} bytes, logits {logits.shape}, "
              f"range [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
