/* A conversation over one KV cache (see chat_session.h). */
#include "chat_session.h"

#include <stdlib.h>
#include <string.h>

#include "units.h"

/* The length of the common prefix of a[0..na) and b[0..nb). */
static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The conversation with the system message alone (or nothing). */
static strata_status start_messages(chat_session *session, strata_error *err)
{
    json_decref(session->messages);
    session->messages = json_array();
    if (!session->messages)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (!session->system)
        return STRATA_OK;
    json_t *content = json_string(session->system);
    if (!content)
        return strata_fail(err, STRATA_INVALID_INPUT, "the system message is not valid UTF-8");
    json_t *message = json_pack("{s:s, s:o}", "role", "system", "content", content);
    if (!message || json_array_append_new(session->messages, message) != 0)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

strata_status chat_session_init(chat_session *session, strata_model *model, strata_context *ctx,
                                const strata_chat_template *tmpl, const char *system,
                                const strata_sampler_params *sampling, strata_error *err)
{
    memset(session, 0, sizeof *session);
    session->model = model;
    session->ctx = ctx;
    session->tmpl = tmpl;
    session->system = system;
    session->sampling = *sampling;
    /* the cache never holds more than the context's positions */
    session->cached_capacity = (size_t)strata_context_size(ctx);
    session->cached = malloc(session->cached_capacity * sizeof *session->cached);
    if (!session->cached)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for %zu token ids", session->cached_capacity);
    strata_context_reset(ctx);
    return start_messages(session, err);
}

void chat_session_free(chat_session *session)
{
    json_decref(session->messages);
    free(session->cached);
    memset(session, 0, sizeof *session);
}

strata_status chat_session_clear(chat_session *session, strata_error *err)
{
    strata_context_reset(session->ctx);
    session->n_cached = 0;
    return start_messages(session, err);
}

/* Appends {"role": role, "content": text} to the conversation. */
static strata_status append_message(chat_session *session, const char *role, const char *text, size_t len,
                                    strata_error *err)
{
    json_t *content = json_stringn(text, len);
    if (!content)
        return strata_fail(err, STRATA_INVALID_INPUT, "the %s message is not valid UTF-8", role);
    json_t *message = json_pack("{s:s, s:o}", "role", role, "content", content);
    if (!message || json_array_append_new(session->messages, message) != 0)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

/* The conversation rendered with the generation prompt and tokenized as the
 * server does: BOS added when the model asks for it, unless a real template
 * wrote the BOS text itself; control tokens recognized in what a real
 * template wrote, plain text in the fallback's. */
static strata_status prompt_tokens(const chat_session *session, int32_t **ids, size_t *n_ids, strata_error *err)
{
    strata_chat_options options = {.add_generation_prompt = true};
    char *text = NULL;
    size_t len = 0;
    strata_status status = strata_chat_template_render(session->tmpl, session->messages, &options, &text, &len, err);
    if (status != STRATA_OK)
        return status;
    const strata_tokenizer *tokenizer = strata_model_tokenizer(session->model);
    bool templated = !strata_chat_template_is_fallback(session->tmpl);
    bool add_bos = strata_tokenizer_adds_bos(tokenizer);
    const char *bos_text = strata_chat_template_bos_token(session->tmpl);
    if (templated && bos_text && bos_text[0] && strncmp(text, bos_text, strlen(bos_text)) == 0)
        add_bos = false;
    status = strata_tokenize(tokenizer, text, len, add_bos, templated, ids, n_ids, err);
    free(text);
    if (status == STRATA_OK && *n_ids == 0) {
        free(*ids);
        *ids = NULL;
        status = strata_fail(err, STRATA_INVALID_INPUT, "the chat template rendered an empty prompt");
    }
    return status;
}

/* Puts ids[0..n_ids) in the cache: keeps the common prefix with what it
 * holds (less the last token, whose logits the reply needs) and decodes the
 * rest. *n_reused gets the prefix kept. */
static strata_status feed_prompt(chat_session *session, const int32_t *ids, size_t n_ids, size_t *n_reused,
                                 strata_error *err)
{
    size_t keep = common_prefix(session->cached, session->n_cached, ids, n_ids);
    if (keep == n_ids)
        keep = n_ids - 1;
    if (keep < session->n_cached) {
        strata_status status = strata_context_truncate(session->ctx, (int64_t)keep, err);
        if (status != STRATA_OK)
            return status;
        session->n_cached = keep;
    }
    *n_reused = keep;
    strata_status status = strata_decode(session->ctx, ids + keep, (int64_t)(n_ids - keep), false, err);
    if (status != STRATA_OK)
        return status; /* the cache still holds the prefix kept */
    memcpy(session->cached + keep, ids + keep, (n_ids - keep) * sizeof *ids);
    session->n_cached = n_ids;
    return STRATA_OK;
}

/* The reply's text, as passed on. */
typedef struct reply_text {
    char *data;
    size_t len, capacity;
    chat_text_fn on_text;
    void *user;
} reply_text;

static strata_status reply_append(reply_text *reply, const char *text, size_t len, strata_error *err)
{
    if (len == 0)
        return STRATA_OK;
    if (reply->len + len + 1 > reply->capacity) {
        size_t capacity = reply->capacity ? reply->capacity : 256;
        while (capacity < reply->len + len + 1)
            capacity *= 2;
        char *grown = realloc(reply->data, capacity);
        if (!grown)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for the reply");
        reply->data = grown;
        reply->capacity = capacity;
    }
    memcpy(reply->data + reply->len, text, len);
    reply->len += len;
    reply->data[reply->len] = '\0';
    if (reply->on_text)
        reply->on_text(reply->user, text, len);
    return STRATA_OK;
}

/* Samples and decodes the reply after the prompt in the cache, as `strata
 * run` does after its prompt: stops at an end-of-generation token (not
 * decoded), max_tokens (the last one not decoded) or the end of the
 * context. The sampler has seen the whole prompt; last_index is the index,
 * in the last strata_decode, of the token whose logits come next. */
static strata_status generate_reply(chat_session *session, strata_sampler *sampler, int64_t last_index,
                                    int64_t max_tokens, reply_text *reply, chat_turn_stats *stats, strata_error *err)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(session->model);
    size_t piece_size = strata_detokenizer_out_size(tokenizer);
    char *piece = malloc(piece_size);
    if (!piece)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    strata_detokenizer detok;
    strata_detokenizer_init(&detok, tokenizer, false);
    detok.at_start = false; /* the reply follows the prompt's text: no leading-space rule */
    strata_status status = STRATA_OK;
    while (max_tokens < 0 || stats->n_generated < max_tokens) {
        int32_t token = strata_sampler_sample(sampler, strata_get_logits(session->ctx, last_index));
        if (strata_token_is_eog(tokenizer, token))
            break;
        strata_sampler_accept(sampler, token);
        int64_t n = strata_detokenizer_push(&detok, token, piece, piece_size);
        if (n > 0 && (status = reply_append(reply, piece, (size_t)n, err)) != STRATA_OK)
            goto done;
        stats->n_generated++;
        if (max_tokens >= 0 && stats->n_generated >= max_tokens)
            break;
        if (strata_context_position(session->ctx) >= strata_context_size(session->ctx)) {
            stats->context_full = true;
            break;
        }
        if ((status = strata_decode(session->ctx, &token, 1, false, err)) != STRATA_OK)
            goto done;
        session->cached[session->n_cached++] = token;
        last_index = 0;
    }
    int64_t n = strata_detokenizer_flush(&detok, piece, piece_size);
    if (n > 0)
        status = reply_append(reply, piece, (size_t)n, err);
done:
    free(piece);
    return status;
}

strata_status chat_session_turn(chat_session *session, const char *user_text, size_t user_len, int64_t max_tokens,
                                chat_text_fn on_text, void *user, chat_turn_stats *stats, strata_error *err)
{
    memset(stats, 0, sizeof *stats);
    size_t n_before = json_array_size(session->messages);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    strata_sampler *sampler = NULL;
    reply_text reply = {.on_text = on_text, .user = user};
    strata_status status = append_message(session, "user", user_text, user_len, err);
    if (status != STRATA_OK)
        goto fail;
    if ((status = prompt_tokens(session, &ids, &n_ids, err)) != STRATA_OK)
        goto fail;
    stats->n_prompt = n_ids;
    int64_t n_ctx = strata_context_size(session->ctx);
    if ((int64_t)n_ids > n_ctx) {
        status = strata_fail(err, STRATA_INVALID_INPUT,
                             "the conversation is %zu tokens and the context holds %lld positions "
                             "(/clear starts over; --ctx makes it longer)",
                             n_ids, (long long)n_ctx);
        goto fail;
    }
    int64_t n_vocab = strata_model_hparams(session->model)->n_vocab;
    if ((status = strata_sampler_create(&session->sampling, n_vocab, &sampler, err)) != STRATA_OK)
        goto fail;
    for (size_t i = 0; i < n_ids; i++)
        strata_sampler_accept(sampler, ids[i]);
    double start = units_now_seconds();
    if ((status = feed_prompt(session, ids, n_ids, &stats->n_reused, err)) != STRATA_OK)
        goto fail;
    stats->prompt_seconds = units_now_seconds() - start;
    start = units_now_seconds();
    int64_t last_index = (int64_t)(n_ids - stats->n_reused) - 1;
    if ((status = generate_reply(session, sampler, last_index, max_tokens, &reply, stats, err)) != STRATA_OK)
        goto fail;
    stats->generate_seconds = units_now_seconds() - start;
    if ((status = append_message(session, "assistant", reply.data ? reply.data : "", reply.len, err)) != STRATA_OK)
        goto fail;
    free(ids);
    free(reply.data);
    strata_sampler_free(sampler);
    return STRATA_OK;
fail:
    /* the conversation as it was */
    while (json_array_size(session->messages) > n_before)
        json_array_remove(session->messages, json_array_size(session->messages) - 1);
    free(ids);
    free(reply.data);
    strata_sampler_free(sampler);
    return status;
}
