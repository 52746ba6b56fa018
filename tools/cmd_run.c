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
#include "strata.h"
#include "units.h"

static const char *const RUN_CMD = "strata run";

/* Context used when --ctx is not given: the model's training context, capped
 * so that a 128k-context model does not reserve gigabytes of KV cache for a
 * short prompt. */
#define RUN_DEFAULT_CTX_CAP 4096

typedef struct run_options {
    const char *model_path;
    const char *prompt;
    const char *token_list;
    int64_t n_predict;
    strata_sampler_params sampling;
    bool seed_given;
    int64_t n_threads;
    int64_t n_ctx;
    const char *backend;
    int64_t device;
    strata_dtype kv_dtype;
    bool parse_special;
    bool no_bos;
    bool echo;
    const char *dump_logits_path;
    bool verbose;
    bool no_mmap;
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

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: strata run -m MODEL (-p TEXT | --tokens \"ID ID ...\") [options]\n"
            "\n"
            "Generates a continuation of a prompt. stdout gets the prompt (echoed as\n"
            "given) followed by the generated text, streamed token by token; statistics\n"
            "and messages go to stderr.\n"
            "\n"
            "input:\n"
            "  -m, --model FILE          GGUF model\n"
            "  -p, --prompt TEXT         prompt text (tokenized with the model's tokenizer)\n"
            "      --tokens \"ID ...\"     prompt as token ids, bypassing the tokenizer; with a\n"
            "                            model without tokenizer the output is ids as numbers\n"
            "      --special             parse control tokens written in the prompt text\n"
            "      --no-bos              do not add BOS (default: as the model file asks)\n"
            "      --no-echo             do not print the prompt before the continuation\n"
            "generation:\n"
            "  -n, --n-predict N         tokens to generate (default 128; -1 = until an\n"
            "                            end-of-generation token or the end of the context)\n"
            "      --temp T              temperature (default 0.8; 0 = greedy)\n"
            "      --top-k K             keep the K most likely tokens (default 40; 0 = off)\n"
            "      --top-p P             nucleus sampling (default 0.95; 1 = off)\n"
            "      --min-p P             drop tokens below P x the top probability (default 0.05)\n"
            "      --repeat-penalty R    penalty for recent tokens (default 1.0 = off)\n"
            "      --repeat-last-n N     how many recent tokens the penalties see (default 64)\n"
            "      --presence-penalty P  (default 0 = off)\n"
            "      --frequency-penalty P (default 0 = off)\n"
            "  -s, --seed S              sampling seed (default: random, printed by --verbose)\n"
            "device and memory:\n"
            "  -c, --ctx N               context length (default: the model's, at most %d)\n"
            "      --kv-type f16|f32     KV-cache element type (default f16)\n"
            "  -t, --threads N           CPU threads (default 0 = all cores)\n"
            "      --backend NAME        cpu (default), cuda, vulkan\n"
            "      --device N            device index within the backend (default 0)\n"
            "      --no-mmap             read the model into memory instead of mapping it\n"
            "                            (the run then never depends on the file again)\n"
            "output:\n"
            "      --dump-logits FILE    write the logits of every prompt position as\n"
            "                            little-endian float32, n_prompt x n_vocab, row-major\n"
            "  -v, --verbose             print the seed, device and token counts on stderr\n"
            "  -h, --help                this help\n",
            RUN_DEFAULT_CTX_CAP);
}

static bool parse_float_flag(const char *flag, const char *value, double min, double max, float *out)
{
    double parsed;
    if (!args_parse_float(RUN_CMD, flag, value, min, max, &parsed))
        return false;
    *out = (float)parsed;
    return true;
}

static bool parse_int32_flag(const char *flag, const char *value, int64_t min, int64_t max, int32_t *out)
{
    int64_t parsed;
    if (!args_parse_int(RUN_CMD, flag, value, min, max, &parsed))
        return false;
    *out = (int32_t)parsed;
    return true;
}

/* Handles one flag that takes a value; returns false on a bad value. */
static bool parse_valued_flag(const char *flag, const char *value, run_options *opts)
{
    strata_sampler_params *s = &opts->sampling;
    if (!strcmp(flag, "-m") || !strcmp(flag, "--model"))
        opts->model_path = value;
    else if (!strcmp(flag, "-p") || !strcmp(flag, "--prompt"))
        opts->prompt = value;
    else if (!strcmp(flag, "--tokens"))
        opts->token_list = value;
    else if (!strcmp(flag, "-n") || !strcmp(flag, "--n-predict"))
        return args_parse_int(RUN_CMD, flag, value, -1, (int64_t)1 << 30, &opts->n_predict);
    else if (!strcmp(flag, "--temp"))
        return parse_float_flag(flag, value, 0, 100, &s->temperature);
    else if (!strcmp(flag, "--top-k"))
        return parse_int32_flag(flag, value, 0, INT32_MAX, &s->top_k);
    else if (!strcmp(flag, "--top-p"))
        return parse_float_flag(flag, value, 0, 1, &s->top_p);
    else if (!strcmp(flag, "--min-p"))
        return parse_float_flag(flag, value, 0, 1, &s->min_p);
    else if (!strcmp(flag, "--repeat-penalty"))
        return parse_float_flag(flag, value, 0, 100, &s->repeat_penalty);
    else if (!strcmp(flag, "--repeat-last-n"))
        return parse_int32_flag(flag, value, 0, INT32_MAX, &s->repeat_last_n);
    else if (!strcmp(flag, "--presence-penalty"))
        return parse_float_flag(flag, value, -100, 100, &s->presence_penalty);
    else if (!strcmp(flag, "--frequency-penalty"))
        return parse_float_flag(flag, value, -100, 100, &s->frequency_penalty);
    else if (!strcmp(flag, "-s") || !strcmp(flag, "--seed")) {
        opts->seed_given = true;
        return args_parse_u64(RUN_CMD, flag, value, &s->seed);
    } else if (!strcmp(flag, "-t") || !strcmp(flag, "--threads"))
        return args_parse_int(RUN_CMD, flag, value, 0, 4096, &opts->n_threads);
    else if (!strcmp(flag, "-c") || !strcmp(flag, "--ctx"))
        return args_parse_int(RUN_CMD, flag, value, 0, (int64_t)1 << 24, &opts->n_ctx);
    else if (!strcmp(flag, "--backend"))
        opts->backend = value;
    else if (!strcmp(flag, "--device"))
        return args_parse_int(RUN_CMD, flag, value, 0, 1024, &opts->device);
    else if (!strcmp(flag, "--kv-type")) {
        static const char *const kv_types[] = {"f16", "f32", NULL};
        if (!args_parse_choice(RUN_CMD, flag, value, kv_types))
            return false;
        opts->kv_dtype = strcmp(value, "f32") == 0 ? DTYPE_F32 : DTYPE_F16;
    } else if (!strcmp(flag, "--dump-logits"))
        opts->dump_logits_path = value;
    return true;
}

static bool flag_takes_value(const char *flag)
{
    static const char *const valued[] = {
        "-m",       "--model",        "-p",     "--prompt",         "--tokens",          "-n",
        "--n-predict", "--temp",      "--top-k", "--top-p",         "--min-p",           "--repeat-penalty",
        "--repeat-last-n", "--presence-penalty", "--frequency-penalty", "-s", "--seed",  "-t",
        "--threads", "-c",            "--ctx",  "--backend",        "--device",          "--kv-type",
        "--dump-logits", NULL,
    };
    for (size_t i = 0; valued[i]; i++)
        if (strcmp(flag, valued[i]) == 0)
            return true;
    return false;
}

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, run_options *opts)
{
    *opts = (run_options){.n_predict = 128, .sampling = strata_sampler_default_params(), .kv_dtype = DTYPE_F16,
                          .echo = true};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (args_is_help(arg)) {
            print_help(stdout);
            return ARGS_EXIT_OK;
        } else if (flag_takes_value(arg)) {
            const char *value = args_take_value(RUN_CMD, argc, argv, &i);
            if (!value || !parse_valued_flag(arg, value, opts))
                return ARGS_EXIT_USAGE;
        } else if (!strcmp(arg, "--special")) {
            opts->parse_special = true;
        } else if (!strcmp(arg, "--no-bos")) {
            opts->no_bos = true;
        } else if (!strcmp(arg, "--no-echo")) {
            opts->echo = false;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            opts->verbose = true;
        } else if (!strcmp(arg, "--no-mmap")) {
            opts->no_mmap = true;
        } else if (arg[0] == '-') {
            return args_unknown(RUN_CMD, arg);
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (the prompt goes after -p)\n", RUN_CMD, arg);
            return ARGS_EXIT_USAGE;
        }
    }
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", RUN_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->prompt == !opts->token_list) {
        fprintf(stderr, "%s: give exactly one of -p TEXT and --tokens \"ID ...\"\n", RUN_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->seed_given)
        opts->sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock();
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

static int64_t choose_context_size(const run_options *opts, const strata_hparams *hp, size_t n_prompt)
{
    if (opts->n_ctx > 0)
        return opts->n_ctx;
    int64_t n_ctx = hp->n_ctx_train < RUN_DEFAULT_CTX_CAP ? hp->n_ctx_train : RUN_DEFAULT_CTX_CAP;
    return n_ctx < (int64_t)n_prompt ? (int64_t)n_prompt : n_ctx;
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

int cmd_run(int argc, char **argv)
{
    run_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status >= 0)
        return exit_status;

    run_state state = {0};
    strata_error err = {0};
    exit_status = ARGS_EXIT_ERROR;
    if (opts.dump_logits_path && !(state.logits_file = fopen(opts.dump_logits_path, "wb"))) {
        fprintf(stderr, "%s: --dump-logits: cannot create %s\n", RUN_CMD, opts.dump_logits_path);
        goto done;
    }
    int progress_shown = -1;
    strata_model_params model_params = {.path = opts.model_path, .backend = opts.backend,
                                        .device = (int)opts.device, .n_threads = (int)opts.n_threads,
                                        .progress = isatty(STDERR_FILENO) ? cmd_load_progress : NULL,
                                        .progress_user = &progress_shown, .no_mmap = opts.no_mmap};
    double load_start = units_now_seconds();
    strata_status load_status = strata_model_load(&model_params, &state.model, &err);
    if (progress_shown >= 0) /* a failed load leaves its bar: erase it before the message */
        fprintf(stderr, "\r\033[K");
    if (load_status != STRATA_OK) {
        print_library_error("loading the model", &err);
        goto done;
    }
    const strata_hparams *hp = strata_model_hparams(state.model);
    if (opts.verbose)
        fprintf(stderr, "%s: loaded %s (%s, %lld layers, vocab %lld) on %s in %.2f s; seed %llu\n", RUN_CMD,
                opts.model_path, hp->arch_name, (long long)hp->n_layer, (long long)hp->n_vocab,
                strata_model_device_name(state.model), units_now_seconds() - load_start,
                (unsigned long long)opts.sampling.seed);
    if (!prepare_prompt(&opts, &state))
        goto done;

    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.n_ctx = choose_context_size(&opts, hp, state.n_prompt);
    ctx_params.kv_dtype = opts.kv_dtype;
    if ((int64_t)state.n_prompt > ctx_params.n_ctx) {
        fprintf(stderr, "%s: the prompt has %zu tokens but the context only %lld positions (raise --ctx)\n",
                RUN_CMD, state.n_prompt, (long long)ctx_params.n_ctx);
        goto done;
    }
    if (strata_context_create(state.model, &ctx_params, &state.ctx, &err) != STRATA_OK) {
        print_library_error("creating the context", &err);
        goto done;
    }
    if (strata_sampler_create(&opts.sampling, hp->n_vocab, &state.sampler, &err) != STRATA_OK) {
        print_library_error("creating the sampler", &err);
        goto done;
    }
    if (opts.verbose)
        fprintf(stderr, "%s: %zu prompt tokens, context %lld, kv %s\n", RUN_CMD, state.n_prompt,
                (long long)ctx_params.n_ctx, dtype_name(opts.kv_dtype));
    for (size_t i = 0; i < state.n_prompt; i++)
        strata_sampler_accept(state.sampler, state.prompt_tokens[i]);

    bool first_id = true;
    if (opts.echo)
        echo_prompt(&opts, &state, &first_id);

    double prompt_start = units_now_seconds();
    if (strata_decode(state.ctx, state.prompt_tokens, (int64_t)state.n_prompt, opts.dump_logits_path != NULL,
                      &err) != STRATA_OK) {
        if (opts.echo)
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
    exit_status = ARGS_EXIT_OK;
done:
    free_state(&state);
    return exit_status;
}
