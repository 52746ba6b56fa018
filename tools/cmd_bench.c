/* strata bench: prompt-processing and generation throughput, like
 * llama-bench, with the decode roofline measured in the same run.
 *
 * pp N: N seeded random tokens in one strata_decode call on an empty cache.
 * tg N: N tokens decoded one at a time from an empty cache.
 * One warm-up run of each test first; then mean and standard deviation of
 * tokens/s over the repetitions. For tg, bytes read per token (weights of
 * one decode step + the KV cache at the average position) x tokens/s gives
 * the achieved bandwidth, reported as a fraction of the memory bandwidth of
 * the model's device measured in the same run (strata_model_measure_bandwidth:
 * the device's own copy test where the backend has one, else the host read
 * bandwidth). For pp, where the device measures its GEMM peak, tokens/s x 2 x
 * parameters as a fraction of it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "file_type.h"
#include "placement_flags.h"
#include "strata.h"
#include "units.h"

/* The load progress bar of run and bench (cmd_run.c). */
void cmd_load_progress(void *user, double fraction);

static const char *const BENCH_CMD = "strata bench";

#define BENCH_MAX_REPETITIONS 1000

typedef enum bench_format { BENCH_MD, BENCH_JSON, BENCH_CSV } bench_format;

typedef struct bench_options {
    const char *model_path;
    int64_t n_prompt;
    int64_t n_gen;
    int64_t repetitions;
    const char *format_text;
    bench_format format;
    uint64_t seed;
    bool no_bandwidth;
    placement_options placement;
    context_options context;
} bench_options;

/* One row of the report. */
typedef struct bench_result {
    char test[32];
    int64_t n_tokens;
    double mean_tps;
    double stddev_tps;
    double bytes_per_token; /* tg only; 0 for pp */
} bench_result;

typedef struct bench_state {
    strata_model *model;
    strata_context *ctx;
    int32_t *tokens;
    double *samples;
    bool show_progress;
} bench_state;

static bool parse_format(const char *cmd, const char *flag, const char *value, void *options)
{
    static const char *const formats[] = {"md", "json", "csv", NULL};
    if (!args_parse_choice(cmd, flag, value, formats))
        return false;
    bench_options *opts = options;
    opts->format = !strcmp(value, "json") ? BENCH_JSON : !strcmp(value, "csv") ? BENCH_CSV : BENCH_MD;
    return true;
}

#define BENCH(field) offsetof(bench_options, field)
static const flag_spec bench_flags[] = {
    FLAG_VALUE("-m", "--model", "FILE", "GGUF model", FLAG_STRING, BENCH(model_path)),
    FLAG_BOUNDED("-p", "--n-prompt", "N", "prompt tokens for the pp test (default 512; 0 = skip)", FLAG_INT,
                 BENCH(n_prompt), 0, 1 << 20),
    FLAG_BOUNDED("-n", "--n-gen", "N", "generated tokens for the tg test (default 128; 0 = skip)", FLAG_INT,
                 BENCH(n_gen), 0, 1 << 20),
    FLAG_BOUNDED("-r", "--repetitions", "R", "timed runs of each test (default 5)", FLAG_INT, BENCH(repetitions), 1,
                 BENCH_MAX_REPETITIONS),
    FLAG_PARSED("-o", "--output", "F", "md (default), json or csv, on stdout", parse_format),
    FLAG_VALUE(NULL, "--seed", "S", "seed of the random tokens (default 42)", FLAG_U64, BENCH(seed)),
    FLAG_ON(NULL, "--no-bandwidth", "skip measuring the devices (no roofline, no prediction)", BENCH(no_bandwidth)),
};
#undef BENCH
static const flag_group bench_group = {"benchmark", bench_flags, sizeof bench_flags / sizeof bench_flags[0]};

static const char *const BENCH_USAGE =
    "usage: strata bench -m MODEL [-p 512] [-n 128] [-r 5] [options]\n"
    "\n"
    "Measures prompt processing (pp: P random tokens in one batch) and text\n"
    "generation (tg: N tokens one at a time), each from an empty KV cache, after\n"
    "one warm-up run; reports mean +- standard deviation of tokens/s. For tg it\n"
    "also reports the achieved memory bandwidth (bytes read per token x tokens/s)\n"
    "and its fraction of the device's bandwidth measured in the same run, and\n"
    "next to every row the speed the placement plan predicted from the devices\n"
    "measured in this run.\n";

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, bench_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->n_prompt = 512;
    opts->n_gen = 128;
    opts->repetitions = 5;
    opts->seed = 42;
    placement_options_init(&opts->placement);
    context_options_init(&opts->context);
    flag_target targets[] = {{&bench_group, opts},
                             {&placement_flag_group, &opts->placement},
                             {&context_flag_group, &opts->context}};
    int status = flags_parse(BENCH_CMD, BENCH_USAGE, argc, argv, targets, sizeof targets / sizeof targets[0], NULL);
    if (status != FLAGS_CONTINUE)
        return status;
    if (!opts->model_path) {
        fprintf(stderr, "%s: no model given (-m MODEL)\n", BENCH_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (opts->n_prompt == 0 && opts->n_gen == 0) {
        fprintf(stderr, "%s: nothing to measure (-p 0 and -n 0)\n", BENCH_CMD);
        return ARGS_EXIT_USAGE;
    }
    return -1;
}

/* splitmix64: seeded, reproducible token ids without libc's rand state. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_random_tokens(int32_t *tokens, int64_t count, int64_t n_vocab, uint64_t seed)
{
    uint64_t state = seed;
    for (int64_t i = 0; i < count; i++)
        tokens[i] = (int32_t)(next_random(&state) % (uint64_t)n_vocab);
}

static void mean_and_stddev(const double *samples, int64_t count, double *mean, double *stddev)
{
    double sum = 0;
    for (int64_t i = 0; i < count; i++)
        sum += samples[i];
    *mean = sum / (double)count;
    double squares = 0;
    for (int64_t i = 0; i < count; i++)
        squares += (samples[i] - *mean) * (samples[i] - *mean);
    *stddev = count > 1 ? sqrt(squares / (double)(count - 1)) : 0;
}

/* Times one run of a test on an empty cache: the whole batch at once (pp) or
 * token by token (tg). Returns tokens per second, or -1 after printing. */
static double time_one_run(bench_state *state, int64_t n_tokens, bool one_at_a_time)
{
    strata_error err = {0};
    strata_context_reset(state->ctx);
    double start = units_now_seconds();
    strata_status status = STRATA_OK;
    if (one_at_a_time) {
        for (int64_t i = 0; i < n_tokens && status == STRATA_OK; i++)
            status = strata_decode(state->ctx, &state->tokens[i], 1, false, &err);
    } else {
        status = strata_decode(state->ctx, state->tokens, n_tokens, false, &err);
    }
    double seconds = units_now_seconds() - start;
    if (status != STRATA_OK) {
        fprintf(stderr, "%s: decoding: %s\n", BENCH_CMD, err.message);
        return -1;
    }
    return seconds > 0 ? (double)n_tokens / seconds : 0;
}

/* Warm-up plus the timed repetitions of one test; fills result. */
static bool run_test(const bench_options *opts, bench_state *state, int64_t n_tokens, bool one_at_a_time,
                     bench_result *result)
{
    snprintf(result->test, sizeof result->test, "%s%lld", one_at_a_time ? "tg" : "pp", (long long)n_tokens);
    result->n_tokens = n_tokens;
    for (int64_t rep = -1; rep < opts->repetitions; rep++) {
        if (state->show_progress)
            fprintf(stderr, "\r%s: %s %s %lld/%lld   ", BENCH_CMD, result->test, rep < 0 ? "warm-up" : "run",
                    (long long)(rep < 0 ? 0 : rep + 1), (long long)opts->repetitions);
        double tps = time_one_run(state, n_tokens, one_at_a_time);
        if (tps < 0)
            return false;
        if (rep >= 0)
            state->samples[rep] = tps;
    }
    if (state->show_progress)
        fprintf(stderr, "\r%60s\r", "");
    mean_and_stddev(state->samples, opts->repetitions, &result->mean_tps, &result->stddev_tps);
    return true;
}

typedef struct bench_report {
    const bench_options *opts;
    char model_desc[96];
    uint64_t size_bytes;
    uint64_t n_params;
    uint64_t n_params_active;    /* per token: the chosen experts only */
    const char *backend;         /* the devices, "cuda0,cpu" */
    int threads;
    double bandwidth;            /* bytes/s of the model's device; 0 when not measured or split */
    const char *bandwidth_method; /* what was measured */
    double gemm_peak;            /* FLOP/s of the device's prefill matmuls; 0 when unknown or split */
    const char *device_name;
    double predicted_tg;         /* tokens/s the plan predicts; 0 when unknown */
    double predicted_pp;
} bench_report;

/* The predicted tokens/s of a row, or 0. */
static double row_predicted(const bench_report *report, const bench_result *row)
{
    return row->bytes_per_token > 0 ? report->predicted_tg : report->predicted_pp;
}

/* Achieved GB/s and roofline fraction of a tg row; false for pp rows. */
static bool row_bandwidth(const bench_report *report, const bench_result *row, double *gbps, double *fraction)
{
    if (row->bytes_per_token <= 0)
        return false;
    *gbps = row->bytes_per_token * row->mean_tps / 1e9;
    *fraction = report->bandwidth > 0 ? row->bytes_per_token * row->mean_tps / report->bandwidth : 0;
    return true;
}

/* Fraction of the measured GEMM peak a pp row reaches (2 FLOP per parameter
 * a token multiplies by: of a mixture of experts, only its chosen experts);
 * false for tg rows or when the peak is unknown. */
static bool row_gemm_fraction(const bench_report *report, const bench_result *row, double *fraction)
{
    if (row->bytes_per_token > 0 || report->gemm_peak <= 0)
        return false;
    *fraction = 2.0 * (double)report->n_params_active * row->mean_tps / report->gemm_peak;
    return true;
}

static void print_markdown(const bench_report *report, const bench_result *rows, int n_rows)
{
    char size[32], params[32];
    units_format_bytes(report->size_bytes, size, sizeof size);
    units_format_count(report->n_params, params, sizeof params);
    printf("| model | size | params | devices | threads | test | t/s | predicted t/s | GB/s | roofline |\n");
    printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for (int r = 0; r < n_rows; r++) {
        double gbps, fraction;
        char gbps_text[32] = "-", roofline_text[32] = "-";
        if (row_bandwidth(report, &rows[r], &gbps, &fraction)) {
            snprintf(gbps_text, sizeof gbps_text, "%.2f", gbps);
            if (report->bandwidth > 0)
                snprintf(roofline_text, sizeof roofline_text, "%.1f %%", 100 * fraction);
        } else if (row_gemm_fraction(report, &rows[r], &fraction)) {
            snprintf(roofline_text, sizeof roofline_text, "%.1f %% of GEMM", 100 * fraction);
        }
        char predicted_text[32] = "-";
        double predicted = row_predicted(report, &rows[r]);
        if (predicted > 0)
            snprintf(predicted_text, sizeof predicted_text, "%.2f", predicted);
        printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %s | %s |\n", report->model_desc, size, params,
               report->backend, report->threads, rows[r].test, rows[r].mean_tps, rows[r].stddev_tps, predicted_text,
               gbps_text, roofline_text);
    }
    printf("\ndevice: %s\n", report->device_name);
    if (report->bandwidth > 0)
        printf("memory bandwidth: %.2f GB/s (%s, %d thread%s), measured in this run\n", report->bandwidth / 1e9,
               report->bandwidth_method, report->threads, report->threads == 1 ? "" : "s");
    if (report->gemm_peak > 0)
        printf("matmul peak: %.1f GFLOP/s (%s), measured in this run\n", report->gemm_peak / 1e9,
               strstr(report->device_name, "cpu") == report->device_name ? "Q8_0 2048x2048 by 64 columns"
                                                                         : "the device's prefill GEMM");
    if (report->predicted_tg > 0 || report->predicted_pp > 0)
        printf("predicted: the placement plan's bandwidth model with the devices measured in this run\n");
}

static void print_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static void print_json(const bench_report *report, const bench_result *rows, int n_rows)
{
    printf("{\n  \"model\": ");
    print_json_string(report->model_desc);
    printf(",\n  \"model_path\": ");
    print_json_string(report->opts->model_path);
    printf(",\n  \"size_bytes\": %llu,\n  \"n_params\": %llu,\n  \"backend\": ",
           (unsigned long long)report->size_bytes, (unsigned long long)report->n_params);
    print_json_string(report->backend);
    printf(",\n  \"device\": ");
    print_json_string(report->device_name);
    printf(",\n  \"threads\": %d,\n  \"repetitions\": %lld,\n  \"bandwidth_gbps\": %.3f,\n  \"results\": [\n",
           report->threads, (long long)report->opts->repetitions, report->bandwidth / 1e9);
    for (int r = 0; r < n_rows; r++) {
        double gbps = 0, fraction = 0;
        bool has_bw = row_bandwidth(report, &rows[r], &gbps, &fraction);
        printf("    {\"test\": \"%s\", \"n_tokens\": %lld, \"tps_mean\": %.4f, \"tps_stddev\": %.4f", rows[r].test,
               (long long)rows[r].n_tokens, rows[r].mean_tps, rows[r].stddev_tps);
        if (row_predicted(report, &rows[r]) > 0)
            printf(", \"tps_predicted\": %.4f", row_predicted(report, &rows[r]));
        if (has_bw)
            printf(", \"bytes_per_token\": %.0f, \"gbps\": %.4f, \"roofline\": %.4f", rows[r].bytes_per_token, gbps,
                   fraction);
        printf("}%s\n", r + 1 < n_rows ? "," : "");
    }
    printf("  ]\n}\n");
}

static void print_csv(const bench_report *report, const bench_result *rows, int n_rows)
{
    printf("model,size_bytes,n_params,backend,threads,test,n_tokens,tps_mean,tps_stddev,gbps,roofline,"
           "bandwidth_gbps,tps_predicted\n");
    for (int r = 0; r < n_rows; r++) {
        double gbps = 0, fraction = 0;
        bool has_bw = row_bandwidth(report, &rows[r], &gbps, &fraction);
        printf("\"%s\",%llu,%llu,%s,%d,%s,%lld,%.4f,%.4f,", report->model_desc, (unsigned long long)report->size_bytes,
               (unsigned long long)report->n_params, report->backend, report->threads, rows[r].test,
               (long long)rows[r].n_tokens, rows[r].mean_tps, rows[r].stddev_tps);
        if (has_bw)
            printf("%.4f,%.4f,", gbps, fraction);
        else
            printf(",,");
        printf("%.3f,", report->bandwidth / 1e9);
        if (row_predicted(report, &rows[r]) > 0)
            printf("%.4f", row_predicted(report, &rows[r]));
        printf("\n");
    }
}

static void free_state(bench_state *state)
{
    strata_context_free(state->ctx);
    strata_model_free(state->model);
    free(state->tokens);
    free(state->samples);
}

int cmd_bench(int argc, char **argv)
{
    bench_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status >= 0)
        return exit_status;

    bench_state state = {.show_progress = isatty(STDERR_FILENO) != 0};
    strata_error err = {0};
    exit_status = ARGS_EXIT_ERROR;
    bench_result rows[2];
    int n_rows = 0;

    int progress_shown = -1;
    char device_list[256];
    strata_model_params model_params = {.path = opts.model_path,
                                        .progress = state.show_progress ? cmd_load_progress : NULL,
                                        .progress_user = &progress_shown};
    if (!placement_options_apply(BENCH_CMD, &opts.placement, &opts.context, &model_params, device_list,
                                 sizeof device_list))
        return ARGS_EXIT_USAGE;
    /* the context the tests need, planned for; the devices measured for the ceilings and the prediction */
    int64_t n_ctx = opts.context.n_ctx > 0 ? opts.context.n_ctx
                                           : (opts.n_prompt > opts.n_gen ? opts.n_prompt : opts.n_gen);
    if (n_ctx < opts.n_prompt || n_ctx < opts.n_gen) {
        fprintf(stderr, "%s: --ctx %lld is shorter than the tests (-p %lld, -n %lld)\n", BENCH_CMD, (long long)n_ctx,
                (long long)opts.n_prompt, (long long)opts.n_gen);
        return ARGS_EXIT_USAGE;
    }
    model_params.placement.n_ctx = n_ctx;
    model_params.placement.measure = !opts.no_bandwidth;
    if (state.show_progress)
        fprintf(stderr, "%s: loading %s%s\n", BENCH_CMD, opts.model_path,
                opts.no_bandwidth ? "" : " (measuring the devices first)");
    strata_status load_status = strata_model_load(&model_params, &state.model, &err);
    if (progress_shown >= 0) /* a failed load leaves its bar: erase it before the message */
        fprintf(stderr, "\r\033[K");
    if (load_status != STRATA_OK) {
        fprintf(stderr, "%s: loading the model: %s\n", BENCH_CMD, err.message);
        goto done;
    }
    const strata_hparams *hp = strata_model_hparams(state.model);
    const strata_plan *plan = strata_model_plan(state.model);
    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.kv_dtype = context_options_kv_dtype(&opts.context);
    if (strata_context_create(state.model, &ctx_params, &state.ctx, &err) != STRATA_OK) {
        fprintf(stderr, "%s: creating the context: %s\n", BENCH_CMD, err.message);
        goto done;
    }
    state.tokens = malloc((size_t)n_ctx * sizeof *state.tokens);
    state.samples = malloc((size_t)opts.repetitions * sizeof *state.samples);
    if (!state.tokens || !state.samples) {
        fprintf(stderr, "%s: out of memory\n", BENCH_CMD);
        goto done;
    }
    fill_random_tokens(state.tokens, n_ctx, hp->n_vocab, opts.seed);

    if (opts.n_prompt > 0) {
        if (!run_test(&opts, &state, opts.n_prompt, false, &rows[n_rows]))
            goto done;
        rows[n_rows++].bytes_per_token = 0;
    }
    if (opts.n_gen > 0) {
        if (!run_test(&opts, &state, opts.n_gen, true, &rows[n_rows]))
            goto done;
        /* token i attends over i + 1 cached positions: on average (n + 1) / 2 */
        double kv_bytes = (double)strata_kv_cache_bytes(hp, 1, ctx_params.kv_dtype) * (double)(opts.n_gen + 1) / 2;
        rows[n_rows++].bytes_per_token = (double)strata_model_decode_weight_bytes(state.model) + kv_bytes;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char devices[STRATA_MAX_DEVICES * (STRATA_DEVICE_NAME_MAX + 1)];
    size_t used = 0;
    int devices_used = 0, only_device = 0;
    devices[0] = '\0';
    for (int d = 0; d < plan->n_devices; d++) {
        if (plan->devices[d].planned_bytes == 0)
            continue;
        used += (size_t)snprintf(devices + used, sizeof devices - used, "%s%s", devices_used ? "," : "",
                                 plan->devices[d].name);
        devices_used++;
        only_device = d;
    }
    bench_report report = {
        .opts = &opts,
        .size_bytes = hp->weight_bytes,
        .n_params = hp->n_params,
        .n_params_active = hp->n_params_active,
        .backend = devices,
        .threads = opts.placement.n_threads > 0 ? (int)opts.placement.n_threads : (int)(cores > 0 ? cores : 1),
        .device_name = strata_model_device_name(state.model),
        .predicted_tg = plan->tg_tokens_per_s,
        .predicted_pp = plan->pp_tokens_per_s,
    };
    file_type_describe_model(opts.model_path, hp, report.model_desc, sizeof report.model_desc);
    /* a model on one device: its measured ceilings, as before; split, the
     * prediction is the ceiling */
    if (!opts.no_bandwidth && devices_used == 1) {
        report.bandwidth = plan->devices[only_device].read_bandwidth;
        report.bandwidth_method = strcmp(plan->devices[only_device].name, "cpu") == 0
                                      ? STRATA_HOST_BANDWIDTH_METHOD
                                      : "device-to-device copy";
        report.gemm_peak = plan->devices[only_device].matmul_flops;
    }
    if (opts.format == BENCH_JSON)
        print_json(&report, rows, n_rows);
    else if (opts.format == BENCH_CSV)
        print_csv(&report, rows, n_rows);
    else
        print_markdown(&report, rows, n_rows);
    exit_status = ARGS_EXIT_OK;
done:
    free_state(&state);
    return exit_status;
}
