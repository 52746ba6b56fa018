/* The endpoints: health, the model list, metrics, and the two completion
 * endpoints with and without streaming (server-sent events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "response.h"
#include "server_internal.h"

enum {
    WAIT_SLICE_MS = 200, /* how often a waiting handler looks whether its client is still there */
    STREAM_BLOCK_BYTES = 16 * 1024,
};

static enum MHD_Result respond_json(struct MHD_Connection *connection, int status, char *body, int *status_out)
{
    if (!body) {
        api_error err;
        api_fail(&err, 500, NULL, "out of memory");
        *status_out = 500;
        return http_respond_error(connection, &err);
    }
    *status_out = status;
    enum MHD_Result result = http_respond(connection, status, "application/json", body, strlen(body));
    free(body);
    return result;
}

static enum MHD_Result respond_error(struct MHD_Connection *connection, const api_error *err, int *status_out)
{
    *status_out = err->http_status;
    return http_respond_error(connection, err);
}

static enum MHD_Result not_ready(struct MHD_Connection *connection, int *status)
{
    api_error err;
    api_fail(&err, 503, NULL, "the model is loading");
    return respond_error(connection, &err, status);
}

enum MHD_Result route_health(server_state *server, struct MHD_Connection *connection, int *status)
{
    if (!atomic_load(&server->ready)) {
        *status = 503;
        static const char loading[] = "{\"status\":\"loading\"}";
        return http_respond(connection, 503, "application/json", loading, sizeof loading - 1);
    }
    *status = 200;
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_respond(connection, 200, "application/json", ok, sizeof ok - 1);
}

enum MHD_Result route_models(server_state *server, struct MHD_Connection *connection, int *status)
{
    return respond_json(connection, 200, api_reply_models(server->config->model_name, server->created), status);
}

enum MHD_Result route_metrics(server_state *server, struct MHD_Connection *connection, int *status)
{
    metrics_gauges gauges = {0};
    gauges.ready = atomic_load(&server->ready);
    if (gauges.ready)
        scheduler_gauges(server->sched, &gauges);
    text_buffer text = {0};
    enum MHD_Result result;
    if (metrics_render(&server->metrics, &gauges, &text)) {
        *status = 200;
        result = http_respond(connection, 200, "text/plain; version=0.0.4", text.data, text.len);
    } else {
        api_error err;
        api_fail(&err, 500, NULL, "out of memory");
        result = respond_error(connection, &err, status);
    }
    text_buffer_free(&text);
    return result;
}

/* --- prompts ------------------------------------------------------------------------------------ */

/* The chat's prompt text through the chat template (with the generation
 * prompt), malloc'ed into *out. */
static bool render_chat(server_state *server, const api_request *request, char **out, size_t *out_len,
                        api_error *err)
{
    strata_chat_options options = {.add_generation_prompt = true};
    strata_error serr = {0};
    strata_status status =
        strata_chat_template_render(server->chat_template, request->messages_json, &options, out, out_len, &serr);
    if (status != STRATA_OK)
        return api_fail(err, status == STRATA_OUT_OF_MEMORY ? 500 : 400, "messages",
                        "the chat template cannot render these messages: %s", serr.message);
    return true;
}

/* Tokenizes text as the model asks: BOS added when the file asks for it,
 * unless the text begins with the BOS text already (a chat template that
 * writes bos_token itself); control tokens recognized in what a real chat
 * template wrote, plain text otherwise. */
static bool tokenize_prompt(server_state *server, const api_request *request, const char *text, size_t len,
                            job_input *input, api_error *err)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(server->model);
    bool templated = request->kind == API_CHAT_COMPLETIONS && !strata_chat_template_is_fallback(server->chat_template);
    bool add_bos = strata_tokenizer_adds_bos(tokenizer);
    const char *bos_text = strata_chat_template_bos_token(server->chat_template);
    if (templated && bos_text && bos_text[0] && strncmp(text, bos_text, strlen(bos_text)) == 0)
        add_bos = false;
    strata_error serr = {0};
    strata_status status =
        strata_tokenize(tokenizer, text, len, add_bos, templated, &input->prompt, &input->n_prompt, &serr);
    if (status != STRATA_OK)
        return api_fail(err, status == STRATA_OUT_OF_MEMORY ? 500 : 400,
                        request->kind == API_COMPLETIONS ? "prompt" : "messages", "tokenizing the prompt: %s",
                        serr.message);
    return true;
}

/* The request's prompt as token ids (into *input), checked against the
 * vocabulary and the context. */
static bool build_prompt(server_state *server, const api_request *request, job_input *input, api_error *err)
{
    int64_t n_vocab = strata_model_hparams(server->model)->n_vocab;
    const char *field = request->kind == API_COMPLETIONS ? "prompt" : "messages";
    if (request->prompt_tokens) {
        for (size_t i = 0; i < request->n_prompt_tokens; i++)
            if (request->prompt_tokens[i] >= n_vocab)
                return api_fail(err, 400, "prompt", "'prompt' token %zu (id %d) is outside the vocabulary [0, %lld)",
                                i, request->prompt_tokens[i], (long long)n_vocab);
        input->prompt = malloc(request->n_prompt_tokens * sizeof *input->prompt);
        if (!input->prompt)
            return api_fail(err, 500, NULL, "out of memory");
        memcpy(input->prompt, request->prompt_tokens, request->n_prompt_tokens * sizeof *input->prompt);
        input->n_prompt = request->n_prompt_tokens;
    } else {
        if (!strata_model_tokenizer(server->model))
            return api_fail(err, 400, field, "the model has no tokenizer: give the prompt as a list of token ids");
        if (request->kind == API_CHAT_COMPLETIONS) {
            char *text = NULL;
            size_t len = 0;
            bool ok = render_chat(server, request, &text, &len, err) &&
                      tokenize_prompt(server, request, text, len, input, err);
            free(text);
            if (!ok)
                return false;
        } else if (!tokenize_prompt(server, request, request->prompt_text, strlen(request->prompt_text), input,
                                    err)) {
            return false;
        }
    }
    int64_t n_ctx = scheduler_context_size(server->sched);
    if (input->n_prompt == 0)
        return api_fail(err, 400, field, "the prompt is empty (and the model adds no BOS)");
    if ((int64_t)input->n_prompt > n_ctx)
        return api_fail(err, 400, field, "the prompt has %zu tokens but the context holds %lld positions",
                        input->n_prompt, (long long)n_ctx);
    return true;
}

/* A seed for a request that gave none and a server without --seed. */
static uint64_t fresh_seed(server_state *server)
{
    uint64_t x = server->id_base ^ (atomic_fetch_add(&server->id_counter, 1) * 0x9E3779B97F4A7C15ull) ^
                 (uint64_t)time(NULL);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

/* --- streaming ------------------------------------------------------------------------------------ */

typedef struct stream_state {
    server_state *server;
    sched_job *job;
    int fd;                   /* the client's socket, to notice it leaving */
    api_reply_head head;
    char id[48];
    bool include_usage;
    bool sent_first;
    bool finished;            /* every event is in pending */
    text_buffer pending;      /* events not yet handed to the daemon */
    text_buffer text;         /* new generated text */
} stream_state;

static bool add_event(text_buffer *out, char *json)
{
    bool ok = json && text_buffer_append_str(out, "data: ") && text_buffer_append_str(out, json) &&
              text_buffer_append_str(out, "\n\n");
    free(json);
    return ok;
}

/* Turns what the job produced since the last call into events. */
static bool stream_collect(stream_state *stream, const job_update *update)
{
    bool ok = true;
    if (!stream->sent_first && stream->head.kind == API_CHAT_COMPLETIONS && !(update->done && update->failed)) {
        ok = add_event(&stream->pending, api_reply_chunk(&stream->head, "", 0, true, -1, stream->include_usage));
        stream->sent_first = true;
    }
    if (ok && stream->text.len > 0)
        ok = add_event(&stream->pending, api_reply_chunk(&stream->head, stream->text.data, stream->text.len, false, -1,
                                                         stream->include_usage));
    text_buffer_clear(&stream->text);
    if (!ok || !update->done)
        return ok;
    stream->finished = true;
    if (update->failed) {
        api_error err;
        api_fail(&err, update->http_status, NULL, "%s", update->error);
        return add_event(&stream->pending, api_reply_error(&err));
    }
    api_usage usage = {update->prompt_tokens, update->completion_tokens};
    ok = add_event(&stream->pending,
                   api_reply_chunk(&stream->head, "", 0, false, (int)update->finish, stream->include_usage));
    if (ok && stream->include_usage)
        ok = add_event(&stream->pending, api_reply_usage_chunk(&stream->head, &usage));
    return ok && text_buffer_append_str(&stream->pending, "data: [DONE]\n\n");
}

static ssize_t stream_read(void *cls, uint64_t position, char *buffer, size_t max)
{
    (void)position;
    stream_state *stream = cls;
    while (stream->pending.len == 0) {
        if (stream->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        job_update update;
        if (!scheduler_wait(stream->server->sched, stream->job, WAIT_SLICE_MS / 1000.0, &stream->text, &update) ||
            !stream_collect(stream, &update))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (stream->pending.len == 0 && http_client_gone(stream->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the free callback cancels the job */
    }
    size_t n = stream->pending.len < max ? stream->pending.len : max;
    memcpy(buffer, stream->pending.data, n);
    text_buffer_consume(&stream->pending, n);
    return (ssize_t)n;
}

/* The daemon is done with the response: the client read it all or left. */
static void stream_free(void *cls)
{
    stream_state *stream = cls;
    scheduler_cancel(stream->server->sched, stream->job);
    scheduler_release(stream->server->sched, stream->job);
    text_buffer_free(&stream->pending);
    text_buffer_free(&stream->text);
    free(stream);
}

static int connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? (int)info->connect_fd : -1;
}

static enum MHD_Result respond_stream(server_state *server, struct MHD_Connection *connection, sched_job *job,
                                      const api_request *request, const api_reply_head *head, int *status)
{
    stream_state *stream = calloc(1, sizeof *stream);
    if (!stream) {
        scheduler_cancel(server->sched, job);
        scheduler_release(server->sched, job);
        api_error err;
        api_fail(&err, 500, NULL, "out of memory");
        return respond_error(connection, &err, status);
    }
    stream->server = server;
    stream->job = job;
    stream->fd = connection_fd(connection);
    stream->head = *head;
    snprintf(stream->id, sizeof stream->id, "%s", head->id);
    stream->head.id = stream->id;
    stream->include_usage = request->include_usage;
    struct MHD_Response *response =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_read, stream, stream_free);
    if (!response) {
        stream_free(stream);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    *status = 200;
    enum MHD_Result result = MHD_queue_response(connection, 200, response);
    MHD_destroy_response(response);
    return result;
}

/* --- whole responses -------------------------------------------------------------------------------- */

static enum MHD_Result respond_whole(server_state *server, struct MHD_Connection *connection, sched_job *job,
                                     const api_reply_head *head, int *status)
{
    text_buffer text = {0};
    job_update update = {0};
    int fd = connection_fd(connection);
    enum MHD_Result result = MHD_NO;
    for (;;) {
        if (!scheduler_wait(server->sched, job, WAIT_SLICE_MS / 1000.0, &text, &update)) {
            api_error err;
            api_fail(&err, 500, NULL, "out of memory for the generated text");
            result = respond_error(connection, &err, status);
            goto done;
        }
        if (update.done)
            break;
        if (http_client_gone(fd)) {
            scheduler_cancel(server->sched, job);
            *status = 499; /* nginx's "client closed request": counted, never sent */
            goto done;
        }
    }
    if (update.failed) {
        api_error err;
        api_fail(&err, update.http_status, NULL, "%s", update.error);
        result = respond_error(connection, &err, status);
        goto done;
    }
    api_usage usage = {update.prompt_tokens, update.completion_tokens};
    result = respond_json(connection, 200,
                          api_reply_full(head, text.data ? text.data : "", text.len, update.finish, &usage), status);
done:
    scheduler_release(server->sched, job);
    text_buffer_free(&text);
    return result;
}

enum MHD_Result route_completion(server_state *server, struct MHD_Connection *connection, api_kind kind,
                                 const char *body, size_t len, int *status)
{
    if (!atomic_load(&server->ready))
        return not_ready(connection, status);
    api_request request;
    api_error err;
    job_input input = {0};
    enum MHD_Result result;
    if (!api_request_parse(kind, body, len, &server->config->sampling, &request, &err))
        return respond_error(connection, &err, status);
    if (!build_prompt(server, &request, &input, &err)) {
        result = respond_error(connection, &err, status);
        goto done;
    }
    input.sampling = request.sampling;
    if (!request.seed_given && !server->config->seed_given)
        input.sampling.seed = fresh_seed(server);
    input.max_tokens = request.max_tokens;
    for (size_t i = 0; i < request.n_stop; i++) {
        input.stop[i] = request.stop[i];
        request.stop[i] = NULL;
    }
    input.n_stop = request.n_stop;
    request.n_stop = 0;
    input.arrival = metrics_now_seconds();

    char id[48];
    snprintf(id, sizeof id, "%s-%016llx%08llx", kind == API_COMPLETIONS ? "cmpl" : "chatcmpl",
             (unsigned long long)server->id_base,
             (unsigned long long)(atomic_fetch_add(&server->id_counter, 1) & 0xffffffffu));
    api_reply_head head = {.kind = kind, .id = id, .created = (int64_t)time(NULL),
                           .model = server->config->model_name};
    sched_job *job = NULL;
    sched_admit admit = scheduler_submit(server->sched, &input, &job);
    if (admit != SCHED_ADMITTED) {
        api_fail(&err, 503, NULL,
                 admit == SCHED_STOPPING ? "the server is shutting down"
                                         : "the server is busy: every sequence is taken and the queue is full");
        result = respond_error(connection, &err, status);
        goto done;
    }
    result = request.stream ? respond_stream(server, connection, job, &request, &head, status)
                            : respond_whole(server, connection, job, &head, status);
done:
    free(input.prompt);
    for (size_t i = 0; i < input.n_stop; i++)
        free(input.stop[i]);
    api_request_free(&request);
    return result;
}
