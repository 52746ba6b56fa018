/* strata run: loads a model, decodes a prompt and streams a continuation.
 *
 * stdout carries only text: the prompt (echoed as given, like llama.cpp,
 * unless --no-echo), then the generated text token by token, then one
 * newline. Everything else (progress, the seed, statistics, errors) goes to
 * stderr, so `strata run ... > out.txt` keeps exactly the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "placement_flags.h"
#include "plan_print.h"
#include "sampling_flags.h"
#include "strata.h"
#include "units.h"

static const char *const RUN_CMD = "strata run";

typedef struct run_options {
    const char *model_path;
    const char *prompt;
    const char *token_list;
    int64_t n_predict;
    bool parse_special;
    bool no_bos;
    bool no_echo;
    const char *dump_logits_path;
    bool verbose;
    sampling_options sampling;
    placement_options placement;
    context_options context;
} run_options;

/* What one run holds; released in one place. */
typedef struct run_state {
    strata_model *model;
    strata_context *ctx;
    strata_sampler *sampler;
    int32_t *prompt_tokens;
    size_t n_prompt;
    FILE *logits_file; /* --dump-logits, opened before anything else is done */
} run_state;

/* strata_model_params.progress for run and bench (cmd_bench.c declares it
 * too): a one-line bar on stderr, redrawn only when the shown percentage
 * changes, erased at 1.0. user is an int holding the percentage on screen,
 * -1 before the first draw. Callers pass it only when stderr is a TTY. */
void cmd_load_progress(void *user, double fraction)
{
    enum { BAR_WIDTH = 40 };
    int *shown = user;
    if (fraction >= 1.0) {
        if (*shown >= 0)
            fprintf(stderr, "\r\033[K");
        *shown = -1;
        return;
    }
    int percent = fraction <= 0.0 ? 0 : (int)(fraction * 100.0);
    if (percent == *shown)
        return;
    *shown = percent;
    char bar[BAR_WIDTH + 1];
    int filled = percent * BAR_WIDTH / 100;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\rloading weights [%s] %3d%%", bar, percent);
}

#define INPUT(field) offsetof(run_options, field)
static const flag_spec input_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model", FLAG_STRING, INPUT(model_path)),
    FLAG_VALUE("-p", "--prompt", "TEXT", "prompt text (tokenized with the model's tokenizer)", FLAG_STRING,
               INPUT(prompt)),
    FLAG_VALUE(NULL, "--tokens", "\"ID ...\"",
               "prompt as token ids, bypassing the tokenizer; with a\n"
               "model without tokenizer the output is ids as numbers",
               FLAG_STRING, INPUT(token_list)),
    FLAG_ON(NULL, "--special", "parse control tokens written in the prompt text", INPUT(parse_special)),
    FLAG_ON(NULL, "--no-bos", "do not add BOS (default: as the model file asks)", INPUT(no_bos)),
    FLAG_ON(NULL, "--no-echo", "do not print the prompt before the continuation", INPUT(no_echo)),
    FLAG_BOUNDED("-n", "--n-predict", "N",
                 "tokens to generate (default 128; -1 = until an\n"
                 "end-of-generation token or the end of the context)",
                 FLAG_INT, INPUT(n_predict), -1, 1 << 30),
};
static const flag_group input_group = {"input and generation", input_flags,
                                       sizeof input_flags / sizeof input_flags[0]};
static const flag_spec output_flags[] = {
    FLAG_VALUE(NULL, "--dump-logits", "FILE",
               "write the logits of every prompt position as\n"
               "little-endian float32, n_prompt x n_vocab, row-major",
               FLAG_STRING, INPUT(dump_logits_path)),
    FLAG_ON("-v", "--verbose",
            "print the seed, the placement plan, token counts and\n"
            "each device's peak memory next to the plan on stderr",
            INPUT(verbose)),
};
#undef INPUT
static const flag_group output_group = {"output", output_flags, sizeof output_flags / sizeof output_flags[0]};

static const char *const RUN_USAGE =
    "usage: strata run -m MODEL (-p TEXT | --tokens \"ID ID ...\") [options]\n"
    "\n"
    "Generates a continuation of a prompt. stdout gets the prompt (echoed as\n"
    "given) followed by the generated text, streamed token by token; statistics\n"
    "and messages go to stderr. The model is placed on every GPU found, then\n"
    "the CPU for what does not fit (see `strata plan`).\n";

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, run_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->n_predict = 128;
    sampling_options_init(&opts->sampling);
    placement_options_init(&opts->placement);
    context_options_init(&opts->context);
    flag_target targets[] = {{&input_group, opts},
                             {&sampling_flag_group, &opts->sampling},
                             {&placement_flag_group, &opts->placement},
                             {&context_flag_group, &opts->context},
                             {&output_group, opts}};
    int status = flags_parse(RUN_CMD, RUN_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0], NULL);
    if (status != FLAGS_CONTINUE)
        return status;
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", RUN_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->prompt == !opts->token_list) {
        fprintf(stderr, "%s: give exactly one of -p TEXT and --tokens \"ID ...\"\n", RUN_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->sampling.seed_given)
        opts->sampling.params.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock();
    return -1;
}

/* Parses "ID ID ..." (spaces, tabs or commas between ids) into a malloc'ed
 * array. Returns false after printing a message. */
static bool parse_token_list(const char *text, int32_t **out_ids, size_t *out_count)
{
    size_t capacity = 16, count = 0;
    int32_t *ids = malloc(capacity * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "%s: out of memory\n", RUN_CMD);
        return false;
    }
    const char *cursor = text;
    for (;;) {
        while (*cursor == ' ' || *cursor == '\t' || *cursor == ',' || *cursor == '\n')
            cursor++;
        if (*cursor == '\0')
            break;
        char word[32];
        size_t len = strcspn(cursor, " \t,\n");
        if (len >= sizeof word) {
            fprintf(stderr, "%s: --tokens: '%.*s' is not a token id\n", RUN_CMD, (int)len, cursor);
            goto fail;
        }
        memcpy(word, cursor, len);
        word[len] = '\0';
        cursor += len;
        int64_t id;
        if (!args_parse_int(RUN_CMD, "--tokens", word, 0, INT32_MAX, &id))
            goto fail;
        if (count == capacity) {
            capacity *= 2;
            int32_t *grown = realloc(ids, capacity * sizeof *ids);
            if (!grown) {
                fprintf(stderr, "%s: out of memory\n", RUN_CMD);
                goto fail;
            }
            ids = grown;
        }
        ids[count++] = (int32_t)id;
    }
    if (count == 0) {
        fprintf(stderr, "%s: --tokens: no token ids given\n", RUN_CMD);
        goto fail;
    }
    *out_ids = ids;
    *out_count = count;
    return true;
fail:
    free(ids);
    return false;
}

static void print_library_error(const char *what, const strata_error *err)
{
    fprintf(stderr, "%s: %s: %s\n", RUN_CMD, what, err->message);
}

/* Fills state->prompt_tokens from --tokens or by tokenizing -p. */
static bool prepare_prompt(const run_options *opts, run_state *state)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(state->model);
    if (opts->token_list) {
        if (!parse_token_list(opts->token_list, &state->prompt_tokens, &state->n_prompt))
            return false;
        int64_t n_vocab = strata_model_hparams(state->model)->n_vocab;
        for (size_t i = 0; i < state->n_prompt; i++)
            if (state->prompt_tokens[i] >= n_vocab) {
                fprintf(stderr, "%s: --tokens: id %d is outside the vocabulary [0, %lld)\n", RUN_CMD,
                        state->prompt_tokens[i], (long long)n_vocab);
                return false;
            }
        return true;
    }
    if (!tokenizer) {
        fprintf(stderr, "%s: %s has no tokenizer; give the prompt as ids with --tokens\n", RUN_CMD,
                opts->model_path);
        return false;
    }
    bool add_bos = !opts->no_bos && strata_tokenizer_adds_bos(tokenizer);
    strata_error err = {0};
    if (strata_tokenize(tokenizer, opts->prompt, strlen(opts->prompt), add_bos, opts->parse_special,
                        &state->prompt_tokens, &state->n_prompt, &err) != STRATA_OK) {
        print_library_error("tokenizing the prompt", &err);
        return false;
    }
    if (state->n_prompt == 0) {
        fprintf(stderr, "%s: the prompt is empty (and no BOS was added)\n", RUN_CMD);
        return false;
    }
    return true;
}

/* Writes every prompt position's logits (row-major, little-endian f32) and
 * closes the file. */
static bool dump_logits(const run_options *opts, run_state *state, int64_t n_vocab)
{
    FILE *out = state->logits_file;
    state->logits_file = NULL;
    bool ok = true;
    for (size_t i = 0; i < state->n_prompt && ok; i++) {
        const float *row = strata_get_logits(state->ctx, (int64_t)i);
        /* x86-64, AArch64 and RISC-V hosts are little-endian: rows are written as they are */
        ok = row && fwrite(row, sizeof *row, (size_t)n_vocab, out) == (size_t)n_vocab;
    }
    if (fclose(out) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "%s: --dump-logits: writing %s failed\n", RUN_CMD, opts->dump_logits_path);
    return ok;
}

/* Prints one token: text through the detokenizer, or its id as a number
 * when the model has no tokenizer. */
static void emit_token(strata_detokenizer *detok, const strata_tokenizer *tokenizer, int32_t token, bool *first_id)
{
    if (!tokenizer) {
        printf("%s%d", *first_id ? "" : " ", token);
        *first_id = false;
    } else {
        /* some vocabularies hold tokens of ~1 KiB (long runs of spaces) */
        char stack_text[1024];
        size_t text_size = strata_detokenizer_out_size(tokenizer);
        char *text = text_size <= sizeof stack_text ? stack_text : malloc(text_size);
        if (text && strata_detokenizer_push(detok, token, text, text == stack_text ? sizeof stack_text : text_size) > 0)
            fputs(text, stdout);
        if (text != stack_text)
            free(text);
    }
    fflush(stdout);
}

static void echo_prompt(const run_options *opts, const run_state *state, bool *first_id)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(state->model);
    if (opts->prompt) {
        fputs(opts->prompt, stdout);
    } else {
        strata_detokenizer detok;
        if (tokenizer)
            strata_detokenizer_init(&detok, tokenizer, false);
        for (size_t i = 0; i < state->n_prompt; i++)
            emit_token(&detok, tokenizer, state->prompt_tokens[i], first_id);
        if (tokenizer) {
            char rest[16];
            if (strata_detokenizer_flush(&detok, rest, sizeof rest) > 0)
                fputs(rest, stdout);
        }
    }
    fflush(stdout);
}

/* Samples and decodes until -n, an end-of-generation token or the end of the
 * context. Returns false on a decode error; *n_generated counts the tokens
 * printed. */
static bool generate(const run_options *opts, run_state *state, bool first_id, int64_t *n_generated)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(state->model);
    strata_detokenizer detok;
    if (tokenizer)
        strata_detokenizer_init(&detok, tokenizer, false);
    /* the detokenizer's leading-space rule applies to the start of the text,
     * which the prompt already was */
    detok.at_start = false;
    int64_t last_index = (int64_t)state->n_prompt - 1;
    *n_generated = 0;
    while (opts->n_predict < 0 || *n_generated < opts->n_predict) {
        const float *logits = strata_get_logits(state->ctx, last_index);
        int32_t token = strata_sampler_sample(state->sampler, logits);
        if (tokenizer && strata_token_is_eog(tokenizer, token))
            break;
        strata_sampler_accept(state->sampler, token);
        emit_token(&detok, tokenizer, token, &first_id);
        *n_generated += 1;
        if (opts->n_predict >= 0 && *n_generated >= opts->n_predict)
            break;
        if (strata_context_position(state->ctx) >= strata_context_size(state->ctx)) {
            fprintf(stderr, "\n%s: stopped at the end of the context (%lld positions; see --ctx)\n", RUN_CMD,
                    (long long)strata_context_size(state->ctx));
            break;
        }
        strata_error err = {0};
        if (strata_decode(state->ctx, &token, 1, false, &err) != STRATA_OK) {
            fputc('\n', stdout);
            print_library_error("decoding", &err);
            return false;
        }
        last_index = 0;
    }
    if (tokenizer) {
        char rest[16];
        if (strata_detokenizer_flush(&detok, rest, sizeof rest) > 0)
            fputs(rest, stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
    return true;
}

static void free_state(run_state *state)
{
    strata_sampler_free(state->sampler);
    strata_context_free(state->ctx);
    strata_model_free(state->model);
    free(state->prompt_tokens);
    if (state->logits_file)
        fclose(state->logits_file);
}

/* run --verbose, at the end: each device's counted peak next to the plan. */
static void print_device_peaks(const strata_model *model)
{
    const strata_plan *plan = strata_model_plan(model);
    for (int d = 0; d < plan->n_devices; d++) {
        uint64_t allocated, peak, planned = plan->devices[d].planned_bytes;
        strata_model_device_usage(model, d, &allocated, &peak);
        if (planned == 0)
            continue;
        char peak_text[32], planned_text[32], budget_text[32];
        fprintf(stderr, "%s: %s: peak %s (%llu bytes) counted, planned %s (%llu bytes): %.1f%% of the plan; budget %s\n",
                RUN_CMD, plan->devices[d].name, units_format_bytes(peak, peak_text, sizeof peak_text),
                (unsigned long long)peak, units_format_bytes(planned, planned_text, sizeof planned_text),
                (unsigned long long)planned, 100.0 * (double)peak / (double)planned,
                units_format_bytes(plan->devices[d].budget_bytes, budget_text, sizeof budget_text));
    }
}

int cmd_run(int argc, char **argv)
{
    run_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status >= 0)
        return exit_status;

    run_state state = {0};
    strata_error err = {0};
    exit_status = ARGS_EXIT_ERROR;
    int progress_shown = -1;
    char device_list[256];
    strata_model_params model_params = {.path = opts.model_path,
                                        .progress = isatty(STDERR_FILENO) ? cmd_load_progress : NULL,
                                        .progress_user = &progress_shown};
    if (!placement_options_apply(RUN_CMD, &opts.placement, &opts.context, &model_params, device_list,
                                 sizeof device_list))
        return ARGS_EXIT_USAGE;
    if (opts.dump_logits_path && !(state.logits_file = fopen(opts.dump_logits_path, "wb"))) {
        fprintf(stderr, "%s: --dump-logits: cannot create %s\n", RUN_CMD, opts.dump_logits_path);
        goto done;
    }
    double load_start = units_now_seconds();
    strata_status load_status = strata_model_load(&model_params, &state.model, &err);
    if (progress_shown >= 0) /* a failed load leaves its bar: erase it before the message */
        fprintf(stderr, "\r\033[K");
    if (load_status != STRATA_OK) {
        print_library_error("loading the model", &err);
        goto done;
    }
    const strata_hparams *hp = strata_model_hparams(state.model);
    const strata_plan *plan = strata_model_plan(state.model);
    if (opts.context.n_ctx > hp->n_ctx_train)
        fprintf(stderr, "%s: warning: --ctx %lld is longer than the %lld positions the model was trained on\n",
                RUN_CMD, (long long)opts.context.n_ctx, (long long)hp->n_ctx_train);
    if (plan->note[0])
        fprintf(stderr, "%s: %s\n", RUN_CMD, plan->note);
    if (opts.verbose) {
        fprintf(stderr, "%s: loaded %s (%s, %lld layers, vocab %lld) on %s in %.2f s; seed %llu\n", RUN_CMD,
                opts.model_path, hp->arch_name, (long long)hp->n_layer, (long long)hp->n_vocab,
                strata_model_device_name(state.model), units_now_seconds() - load_start,
                (unsigned long long)opts.sampling.params.seed);
        plan_print_markdown(stderr, plan, false);
    }
    if (!prepare_prompt(&opts, &state))
        goto done;

    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.kv_dtype = context_options_kv_dtype(&opts.context); /* n_ctx, batch: as planned */
    if ((int64_t)state.n_prompt > plan->n_ctx) {
        fprintf(stderr, "%s: the prompt has %zu tokens but the context holds %lld positions (raise --ctx)\n",
                RUN_CMD, state.n_prompt, (long long)plan->n_ctx);
        goto done;
    }
    if (strata_context_create(state.model, &ctx_params, &state.ctx, &err) != STRATA_OK) {
        print_library_error("creating the context", &err);
        goto done;
    }
    if (strata_sampler_create(&opts.sampling.params, hp->n_vocab, &state.sampler, &err) != STRATA_OK) {
        print_library_error("creating the sampler", &err);
        goto done;
    }
    if (opts.verbose)
        fprintf(stderr, "%s: %zu prompt tokens, context %lld, kv %s\n", RUN_CMD, state.n_prompt,
                (long long)strata_context_size(state.ctx), opts.context.kv_type);
    for (size_t i = 0; i < state.n_prompt; i++)
        strata_sampler_accept(state.sampler, state.prompt_tokens[i]);

    bool first_id = true;
    if (!opts.no_echo)
        echo_prompt(&opts, &state, &first_id);

    double prompt_start = units_now_seconds();
    if (strata_decode(state.ctx, state.prompt_tokens, (int64_t)state.n_prompt, opts.dump_logits_path != NULL,
                      &err) != STRATA_OK) {
        if (!opts.no_echo)
            fputc('\n', stdout);
        print_library_error("decoding the prompt", &err);
        goto done;
    }
    double prompt_seconds = units_now_seconds() - prompt_start;
    if (opts.dump_logits_path && !dump_logits(&opts, &state, hp->n_vocab))
        goto done;

    int64_t n_generated = 0;
    double gen_start = units_now_seconds();
    if (!generate(&opts, &state, first_id, &n_generated))
        goto done;
    double gen_seconds = units_now_seconds() - gen_start;

    fprintf(stderr, "%s: prompt %zu tokens, %.2f tok/s | generated %lld tokens, %.2f tok/s\n", RUN_CMD,
            state.n_prompt, prompt_seconds > 0 ? (double)state.n_prompt / prompt_seconds : 0.0,
            (long long)n_generated, gen_seconds > 0 ? (double)n_generated / gen_seconds : 0.0);
    if (opts.verbose)
        print_device_peaks(state.model);
    exit_status = ARGS_EXIT_OK;
done:
    free_state(&state);
    return exit_status;
}
