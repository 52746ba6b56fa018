/* llamacpp_logits: decodes a fixed token sequence with llama.cpp (its public
 * C API, libllama) and writes the logits of every position, so that
 * test_llamacpp_logits can compare strata with llama.cpp without needing it.
 * Built and run by tests/tools/make_llamacpp_fixtures.py; not part of the
 * strata build.
 *
 *   llamacpp_logits MODEL.gguf OUT.bin TOKEN...
 *
 * OUT.bin, little-endian: "LCPL", u32 n_tokens, u32 n_vocab,
 * i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab]. The context uses
 * llama.cpp's defaults (f16 KV cache, flash attention "auto") on the CPU,
 * one batch holding every token, 2 threads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

static int write_u32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fwrite(b, 1, 4, f) == 4;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: llamacpp_logits MODEL.gguf OUT.bin TOKEN...\n");
        return 2;
    }
    int n_tokens = argc - 3;
    llama_token *tokens = malloc((size_t)n_tokens * sizeof *tokens);
    if (!tokens)
        return 1;
    for (int i = 0; i < n_tokens; i++)
        tokens[i] = (llama_token)strtol(argv[3 + i], NULL, 10);

    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llamacpp_logits: cannot load %s\n", argv[1]);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_ubatch = 256;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llamacpp_logits: cannot create a context\n");
        return 1;
    }
    int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    struct llama_batch batch = llama_batch_init(n_tokens, 0, 1);
    for (int i = 0; i < n_tokens; i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_tokens;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llamacpp_logits: llama_decode failed\n");
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        fprintf(stderr, "llamacpp_logits: cannot write %s\n", argv[2]);
        return 1;
    }
    int ok = fwrite("LCPL", 1, 4, out) == 4 && write_u32(out, (uint32_t)n_tokens) && write_u32(out, (uint32_t)n_vocab);
    for (int i = 0; ok && i < n_tokens; i++)
        ok = write_u32(out, (uint32_t)tokens[i]);
    for (int i = 0; ok && i < n_tokens; i++) {
        const float *row = llama_get_logits_ith(ctx, i);
        for (int32_t v = 0; ok && v < n_vocab; v++) {
            uint32_t bits;
            memcpy(&bits, &row[v], 4);
            ok = write_u32(out, bits);
        }
    }
    if (fclose(out) != 0 || !ok) {
        fprintf(stderr, "llamacpp_logits: write error on %s\n", argv[2]);
        return 1;
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(tokens);
    return 0;
}
