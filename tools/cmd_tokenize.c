/* strata tokenize: turns text into token ids with a model's tokenizer and
 * prints them as a table (id, piece) or, with --ids-only, on one line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "strata.h"

static const char *const TOKENIZE_CMD = "strata tokenize";

typedef struct tokenize_options {
    const char *model_path;
    const char *prompt;
    const char *prompt_file;
    const char *force_pre;
    bool add_bos;
    bool parse_special;
    bool ids_only;
} tokenize_options;

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: strata tokenize -m MODEL (-p TEXT | -f FILE) [--bos] [--special] [--ids-only]\n"
            "\n"
            "Tokenizes text with the tokenizer stored in a GGUF file (a model, or a\n"
            "vocabulary-only file) and prints a table of token id and piece.\n"
            "\n"
            "  -m, --model FILE      the GGUF file\n"
            "  -p, --prompt TEXT     the text\n"
            "  -f, --file FILE       read the text from FILE (a file, FIFO or pipe such as\n"
            "                        /dev/stdin, read to its end; at most 64 MiB)\n"
            "      --bos             prepend BOS (off by default)\n"
            "      --special         recognize control tokens written in the text\n"
            "                        (e.g. <|im_start|>); otherwise they are plain text\n"
            "      --ids-only        print only the ids, on one line separated by spaces\n"
            "      --force-pre NAME  use pre-tokenizer NAME instead of tokenizer.ggml.pre\n"
            "  -h, --help            this help\n"
            "\n"
            "Text that is not valid UTF-8 is rejected with the byte offset, and text over\n"
            "64 MiB (the most tokenized at once) with a message (exit status 1).\n");
}

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, tokenize_options *opts)
{
    *opts = (tokenize_options){0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **target = NULL;
        if (args_is_help(arg)) {
            print_help(stdout);
            return ARGS_EXIT_OK;
        } else if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) {
            target = &opts->model_path;
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--prompt")) {
            target = &opts->prompt;
        } else if (!strcmp(arg, "-f") || !strcmp(arg, "--file")) {
            target = &opts->prompt_file;
        } else if (!strcmp(arg, "--force-pre")) {
            target = &opts->force_pre;
        } else if (!strcmp(arg, "--bos")) {
            opts->add_bos = true;
        } else if (!strcmp(arg, "--special")) {
            opts->parse_special = true;
        } else if (!strcmp(arg, "--ids-only")) {
            opts->ids_only = true;
        } else {
            return args_unknown(TOKENIZE_CMD, arg);
        }
        if (target && !(*target = args_take_value(TOKENIZE_CMD, argc, argv, &i)))
            return ARGS_EXIT_USAGE;
    }
    if (!opts->model_path) {
        fprintf(stderr, "%s: -m MODEL is required (see '%s --help')\n", TOKENIZE_CMD, TOKENIZE_CMD);
        return ARGS_EXIT_USAGE;
    }
    if (!opts->prompt == !opts->prompt_file) {
        fprintf(stderr, "%s: give exactly one of -p TEXT and -f FILE\n", TOKENIZE_CMD);
        return ARGS_EXIT_USAGE;
    }
    return -1;
}

/* Reads a whole file into a malloc'ed buffer; NULL (with a message) on
 * error. Unlike a model, the text may come from a stream: a FIFO or a pipe
 * (/dev/stdin, or <(...) in a shell) is read to its end, and opening a FIFO
 * waits for its writer, as cat does. Only a directory is refused up front.
 * Reading stops past the most the library tokenizes at once, so a file of
 * any size (or /dev/zero, which never ends) is never held in memory. */
static char *read_text_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    char *text = NULL;
    size_t size = 0, capacity = 0, n;
    if (!file) {
        fprintf(stderr, "%s: cannot open %s: %s\n", TOKENIZE_CMD, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s is a directory, not a text file\n", TOKENIZE_CMD, path);
        goto fail;
    }
    do {
        if (size + 65536 > capacity) {
            capacity = capacity ? capacity * 2 : 65536 * 2;
            char *grown = realloc(text, capacity);
            if (!grown) {
                fprintf(stderr, "%s: %s: out of memory\n", TOKENIZE_CMD, path);
                goto fail;
            }
            text = grown;
        }
        n = fread(text + size, 1, 65536, file);
        size += n;
        if (size > STRATA_TOKENIZE_MAX_BYTES) {
            fprintf(stderr, "%s: %s is larger than %zu MiB, the most that is tokenized at once; tokenize it in parts\n",
                    TOKENIZE_CMD, path, STRATA_TOKENIZE_MAX_BYTES >> 20);
            goto fail;
        }
    } while (n > 0);
    if (ferror(file)) {
        fprintf(stderr, "%s: reading %s failed\n", TOKENIZE_CMD, path);
        goto fail;
    }
    fclose(file);
    *len = size;
    return text;
fail:
    fclose(file);
    free(text);
    return NULL;
}

/* Bytes of the valid UTF-8 character at s[0..len), or 0. */
static size_t utf8_char_length(const unsigned char *s, size_t len)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (need == 0 || need > len)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return need;
}

/* Prints a piece with control characters, backslashes and bytes that are
 * not whole UTF-8 characters (a character split across tokens) escaped. */
static void print_piece(const char *piece, size_t len)
{
    const unsigned char *s = (const unsigned char *)piece;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_length(s + i, len - i);
        if (n > 1) {
            fwrite(s + i, 1, n, stdout);
            i += n;
            continue;
        }
        unsigned char c = s[i++];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c >= 0x7F)
            printf("\\x%02X", c);
        else
            putchar(c);
    }
}

static void print_table(const strata_tokenizer *tok, const int32_t *ids, size_t n)
{
    size_t piece_size = strata_detokenizer_out_size(tok);
    char *piece = malloc(piece_size);
    if (!piece)
        return;
    for (size_t i = 0; i < n; i++) {
        int64_t len = strata_token_to_bytes(tok, ids[i], true, piece, piece_size);
        printf("%8d  '", ids[i]);
        if (len > 0)
            print_piece(piece, (size_t)len < piece_size ? (size_t)len : piece_size);
        printf("'\n");
    }
    free(piece);
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_options opts;
    int exit_status = parse_options(argc, argv, &opts);
    if (exit_status >= 0)
        return exit_status;
    exit_status = ARGS_EXIT_ERROR;
    strata_tokenizer *tok = NULL;
    strata_error err = {0};
    char *file_text = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0, text_len = 0;
    const char *text = opts.prompt;
    if (strata_tokenizer_load(opts.model_path, opts.force_pre, &tok, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", TOKENIZE_CMD, err.message);
        goto done;
    }
    if (opts.prompt_file) {
        if (!(file_text = read_text_file(opts.prompt_file, &text_len)))
            goto done;
        text = file_text;
    } else {
        text_len = strlen(text);
    }
    if (strata_tokenize(tok, text, text_len, opts.add_bos, opts.parse_special, &ids, &n_ids, &err) != STRATA_OK) {
        fprintf(stderr, "%s: %s\n", TOKENIZE_CMD, err.message);
        goto done;
    }
    if (opts.ids_only) {
        for (size_t i = 0; i < n_ids; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    } else {
        print_table(tok, ids, n_ids);
    }
    exit_status = fflush(stdout) == 0 ? ARGS_EXIT_OK : ARGS_EXIT_ERROR;
done:
    free(ids);
    free(file_text);
    strata_tokenizer_free(tok);
    return exit_status;
}
