/* A model's chat template from its GGUF file: tokenizer.chat_template,
 * and the texts of the BOS and EOS tokens (tokenizer.ggml.bos_token_id /
 * eos_token_id into tokenizer.ggml.tokens) that templates print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "gguf.h"

/* The text of the token that key names, as a malloc'ed string; NULL (and
 * STRATA_OK) when the file has no such token. */
static strata_status token_text(const gguf_file *file, const char *key, char **out, strata_error *err)
{
    *out = NULL;
    int64_t id;
    strata_status status = gguf_get_int_or(file, key, -1, &id, err);
    if (status != STRATA_OK || id < 0 || gguf_find_key(file, "tokenizer.ggml.tokens") < 0)
        return status;
    gguf_array tokens;
    if ((status = gguf_get_array(file, "tokenizer.ggml.tokens", &tokens, err)) != STRATA_OK)
        return status;
    if (tokens.elem_type != GGUF_TYPE_STRING)
        return strata_fail(err, STRATA_INVALID_INPUT, "%s: tokenizer.ggml.tokens is not an array of strings",
                           gguf_path(file));
    if ((uint64_t)id >= tokens.count)
        return STRATA_OK; /* an id outside the vocabulary names no text */
    gguf_string text = gguf_array_string(&tokens, (uint64_t)id);
    if (memchr(text.data, '\0', text.len))
        return STRATA_OK;
    if (!(*out = malloc(text.len + 1)))
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", gguf_path(file));
    memcpy(*out, text.data, text.len);
    (*out)[text.len] = '\0';
    return STRATA_OK;
}

strata_status strata_chat_template_from_gguf(const char *model_path, strata_chat_template **out,
                                             strata_error *err)
{
    *out = NULL;
    gguf_file *file = NULL;
    char *bos = NULL, *eos = NULL;
    strata_chat_template *tmpl = NULL;
    strata_status status = gguf_open(model_path, &file, err);
    if (status != STRATA_OK)
        return status;
    if (gguf_find_key(file, "tokenizer.chat_template") >= 0) {
        gguf_string source;
        if ((status = gguf_get_string(file, "tokenizer.chat_template", &source, err)) != STRATA_OK)
            goto done;
        char name[512];
        snprintf(name, sizeof name, "%s (tokenizer.chat_template)", model_path);
        status = strata_chat_template_parse(source.data, (size_t)source.len, name, &tmpl, err);
    } else {
        status = strata_chat_template_fallback(&tmpl, err);
    }
    if (status != STRATA_OK)
        goto done;
    if ((status = token_text(file, "tokenizer.ggml.bos_token_id", &bos, err)) != STRATA_OK ||
        (status = token_text(file, "tokenizer.ggml.eos_token_id", &eos, err)) != STRATA_OK ||
        (status = strata_chat_template_set_tokens(tmpl, bos, eos, err)) != STRATA_OK)
        goto done;
    *out = tmpl;
    tmpl = NULL;
done:
    strata_chat_template_free(tmpl);
    free(bos);
    free(eos);
    gguf_close(file);
    return status;
}
