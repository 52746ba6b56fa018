/* strata synth: write a model with random weights of a real shape. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "runtime/synth.h"
#include "strata.h"

static void print_synth_usage(FILE *out)
{
    fprintf(out,
            "usage: strata synth --preset NAME --type TYPE -o FILE [--arch ARCH] [--seed S] [--vocab FILE]\n"
            "                    [--distinct-rows N] [--header-only]\n"
            "       strata synth --list\n"
            "\n"
            "Writes a GGUF model of a real shape with random weights (for tests and benchmarks).\n"
            "\n"
            "  --arch ARCH     llama, qwen2, qwen3, olmo2, gemma2, gemma3, phi3, mixtral (written as\n"
            "                  llama with experts), qwen3moe or qwen2moe (default: the preset's own;\n"
            "                  needed to pick a tiny one)\n"
            "  --preset NAME   tiny, llama2-7b, llama3-8b, llama3-70b, qwen2.5-7b, qwen3-8b, olmo2-7b,\n"
            "                  gemma2-9b, gemma3-12b, phi3-mini, mixtral-8x7b, qwen3-30b-a3b,\n"
            "                  qwen1.5-moe-a2.7b (--list)\n"
            "  --type TYPE     f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq1_s\n"
            "                  iq1_m iq2_xxs iq2_xs iq2_s iq3_xxs iq3_s iq4_nl iq4_xs mxfp4 tq1_0 tq2_0\n"
            "                  (every matrix in that format) or a llama.cpp-style mix: q2_k_mix q3_k_m\n"
            "                  q4_k_s q4_k_m q5_k_m iq1_s_mix iq1_m_mix iq2_xxs_mix iq2_xs_mix iq2_s_mix\n"
            "                  iq2_m iq3_xxs_mix iq3_s_mix iq3_m iq4_nl_mix iq4_xs_mix\n"
            "  --seed S        random seed (default 1); the same seed gives the same file\n"
            "  --vocab FILE    copy the tokenizer of this GGUF file (default: a byte-level vocabulary)\n"
            "  --distinct-rows N\n"
            "                  draw only the first N rows of each matrix and repeat them (row r\n"
            "                  holds row r %% N): much faster, for speed benchmarks (default: every row)\n"
            "  --header-only   write the metadata and tensor table only and extend the file to its\n"
            "                  full size without data (a sparse file of zeros, seconds for a 70B): for\n"
            "                  `strata plan` on big shapes, not for running\n"
            "  -o FILE         output path\n"
            "  --list          list the presets and the size of each at q4_k_m\n");
}

static void print_progress(void *user, double fraction)
{
    int *last_percent = user;
    int percent = (int)(fraction * 100.0);
    if (percent == *last_percent)
        return;
    *last_percent = percent;
    fprintf(stderr, "\rsynth: %3d%%", percent);
    fflush(stderr);
}

static int list_presets(void)
{
    const char *const *names = strata_synth_preset_names();
    printf("%-24s %10s %14s\n", "arch/preset", "tensors", "q4_k_m bytes");
    for (size_t i = 0; names[i]; i++) {
        char arch[32];
        const char *slash = strchr(names[i], '/');
        size_t arch_len = slash ? (size_t)(slash - names[i]) : 0;
        if (!slash || arch_len >= sizeof arch)
            continue;
        memcpy(arch, names[i], arch_len);
        arch[arch_len] = '\0';
        synth_plan plan;
        strata_error err = {0};
        if (synth_plan_create(arch, slash + 1, "q4_k_m", 0, &plan, &err) != STRATA_OK) {
            fprintf(stderr, "strata synth: %s\n", err.message);
            return 1;
        }
        printf("%-24s %10lld %14llu\n", names[i], (long long)plan.n_tensors, (unsigned long long)plan.total_bytes);
        synth_plan_free(&plan);
    }
    return 0;
}

/* A non-negative integer (decimal, or 0x hex), the whole of text. */
static bool parse_unsigned(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return false;
    *out = value;
    return true;
}

int cmd_synth(int argc, char **argv)
{
    strata_synth_params params = {.seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            print_synth_usage(stdout);
            return 0;
        }
        if (strcmp(flag, "--list") == 0)
            return list_presets();
        if (strcmp(flag, "--header-only") == 0) {
            params.header_only = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "strata synth: unknown option or missing value: %s\n\n", flag);
            print_synth_usage(stderr);
            return 2;
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--arch") == 0) {
            params.arch = value;
        } else if (strcmp(flag, "--preset") == 0) {
            params.preset = value;
        } else if (strcmp(flag, "--type") == 0) {
            params.type = value;
        } else if (strcmp(flag, "--vocab") == 0) {
            params.vocab_path = value;
        } else if (strcmp(flag, "-o") == 0 || strcmp(flag, "--output") == 0) {
            params.output_path = value;
        } else if (strcmp(flag, "--seed") == 0) {
            if (!parse_unsigned(value, &params.seed)) {
                fprintf(stderr, "strata synth: --seed expects a non-negative integer, got '%s'\n", value);
                return 2;
            }
        } else if (strcmp(flag, "--distinct-rows") == 0) {
            uint64_t rows = 0;
            if (!parse_unsigned(value, &rows) || rows == 0 || rows > (1u << 20)) {
                fprintf(stderr, "strata synth: --distinct-rows expects an integer from 1 to %u, got '%s'\n", 1u << 20,
                        value);
                return 2;
            }
            params.distinct_rows = (int64_t)rows;
        } else {
            fprintf(stderr, "strata synth: unknown option: %s\n\n", flag);
            print_synth_usage(stderr);
            return 2;
        }
    }
    if (!params.preset || !params.type || !params.output_path) {
        fprintf(stderr, "strata synth: --preset, --type and -o are required\n\n");
        print_synth_usage(stderr);
        return 2;
    }
    int last_percent = -1;
    if (isatty(STDERR_FILENO)) {
        params.progress = print_progress;
        params.progress_user = &last_percent;
    }
    strata_error err = {0};
    strata_status status = strata_synth(&params, &err);
    if (params.progress)
        fprintf(stderr, "\n");
    if (status != STRATA_OK) {
        fprintf(stderr, "strata synth: %s\n", err.message);
        return 1;
    }
    return 0;
}
