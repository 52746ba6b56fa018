/* The memory of strata_tokenize is its output plus a bounded working set,
 * not a multiple of the text: tokenizing 10 MiB of text with a BPE
 * vocabulary (gpt-2) and a SentencePiece one (llama-spm) may raise the peak
 * resident memory by at most the ids (4 bytes each, and there are at most
 * as many as bytes of text, so at most 4 bytes per byte) plus 8 MiB. The
 * ids alone take 2 to 3 bytes per byte of this text; when the
 * pre-tokenizer's words and SentencePiece's symbols were all held at once,
 * the rise was 4.3 (gpt-2) and 31 (llama-spm) bytes per byte of it. Each
 * measurement runs in a child process of its own, so that one's peak does
 * not hide the next. Also: a text over STRATA_TOKENIZE_MAX_BYTES is refused
 * with a message that says the limit. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strata.h"
#include "test_check.h"

#define TEXT_BYTES ((size_t)10 << 20)
#define WORKING_SET_BYTES ((size_t)8 << 20)

/* AddressSanitizer keeps freed memory in quarantine and adds shadow memory:
 * the peak then measures the sanitizer, not the tokenizer */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static strata_tokenizer *load_vocab(const char *name)
{
    char path[1024];
    strata_error err = {0};
    strata_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", STRATA_TEST_DATA_DIR, name);
    CHECK(strata_tokenizer_load(path, NULL, &tok, &err) == STRATA_OK, "%s: %s", name, err.message);
    return tok;
}

/* size bytes of text: the vocabulary test strings (prose, code, numbers,
 * several scripts, runs of spaces) one per line, over and over. */
static char *make_text(size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-gpt-2.gguf.inp", STRATA_TEST_DATA_DIR);
    FILE *file = fopen(path, "rb");
    char *sample = malloc(1 << 16);
    size_t sample_len = file && sample ? fread(sample, 1, 1 << 16, file) : 0;
    if (file)
        fclose(file);
    char *text = sample_len > 0 ? malloc(size) : NULL;
    for (size_t used = 0; text && used < size;) {
        size_t n = size - used < sample_len ? size - used : sample_len;
        memcpy(text + used, sample, n);
        used += n;
    }
    /* the separator lines become plain newlines; the cut must not split a
     * UTF-8 character: end on ASCII */
    for (size_t i = 0; text && i + 20 <= size; i++)
        if (memcmp(text + i, "__ggml_vocab_test__\n", 20) == 0)
            memset(text + i, '\n', 20);
    while (text && size > 0 && ((unsigned char)text[size - 1] & 0x80))
        text[--size] = '\n';
    free(sample);
    return text;
}

/* Resident bytes now (Linux); 0 when unknown. */
static size_t resident_bytes(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    unsigned long pages_total = 0, pages_resident = 0;
    if (!file)
        return 0;
    int fields = fscanf(file, "%lu %lu", &pages_total, &pages_resident);
    fclose(file);
    return fields == 2 ? (size_t)pages_resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static size_t peak_resident_bytes(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (size_t)usage.ru_maxrss * 1024; /* kilobytes on Linux */
}

/* In a child: tokenizes TEXT_BYTES with vocab name and checks the rise of
 * the peak resident memory. */
static int measure_child(const char *name)
{
    strata_tokenizer *tok = load_vocab(name);
    char *text = make_text(TEXT_BYTES);
    CHECK(text, "cannot build the text");
    if (!tok || !text)
        return 1;
    size_t before = resident_bytes();
    if (before == 0)
        before = peak_resident_bytes();
    int32_t *ids = NULL;
    size_t n_ids = 0;
    strata_error err = {0};
    strata_status status = strata_tokenize(tok, text, TEXT_BYTES, false, false, &ids, &n_ids, &err);
    size_t peak = peak_resident_bytes();
    CHECK(status == STRATA_OK, "%s: %s", name, err.message);
    size_t rise = peak > before ? peak - before : 0;
    size_t bound = n_ids * sizeof *ids + WORKING_SET_BYTES;
    printf("%s: %zu bytes of text -> %zu ids; peak resident memory rose by %.1f MiB (%.2f bytes per byte of "
           "text; bound %.1f MiB)\n",
           name, TEXT_BYTES, n_ids, rise / 1048576.0, (double)rise / TEXT_BYTES, bound / 1048576.0);
    if (UNDER_ASAN)
        printf("%s: the bound is not checked under AddressSanitizer (its quarantine and shadow memory count)\n",
               name);
    else
        CHECK(rise <= bound, "%s: tokenizing %zu bytes raised the peak by %zu bytes, more than %zu", name, TEXT_BYTES,
              rise, bound);
    free(ids);
    free(text);
    strata_tokenizer_free(tok);
    return failures ? 1 : 0;
}

/* One byte over the limit is refused at once, naming the limit. In a child
 * with an alarm, so that a tokenizer without the limit fails the test
 * instead of working through 64 MiB. */
static int oversized_child(void)
{
    strata_tokenizer *tok = load_vocab("gpt-2");
    size_t len = STRATA_TOKENIZE_MAX_BYTES + 1;
    char *text = malloc(len);
    if (!tok || !text)
        return 1;
    for (size_t i = 0; i < len; i++)
        text[i] = "a b\n"[i % 4];
    alarm(30);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    strata_error err = {0};
    strata_status status = strata_tokenize(tok, text, len, false, false, &ids, &n_ids, &err);
    alarm(0);
    CHECK(status == STRATA_INVALID_INPUT && strstr(err.message, "64 MiB") && ids == NULL,
          "a text of %zu bytes: status %d, message '%s'", len, (int)status, err.message);
    /* exactly the limit is accepted */
    status = strata_tokenize(tok, text, len - 1, false, false, &ids, &n_ids, &err);
    CHECK(status == STRATA_OK && n_ids > 0, "a text of exactly the limit: %s", err.message);
    free(ids);
    free(text);
    strata_tokenizer_free(tok);
    return failures ? 1 : 0;
}

/* Runs child() in a fresh process and counts its failure. */
static void in_child(const char *what, int (*child)(const char *), const char *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int code = child(arg);
        fflush(stdout);
        _exit(code);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "%s: fork failed", what);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the child %s %d", what,
          WIFEXITED(status) ? "exited with status" : "was killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static int oversized_adapter(const char *unused)
{
    (void)unused;
    return oversized_child();
}

int main(void)
{
    in_child("gpt-2 (BPE)", measure_child, "gpt-2");
    in_child("llama-spm (SentencePiece)", measure_child, "llama-spm");
    in_child("over the limit", oversized_adapter, NULL);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("tokenizer memory: all checks passed\n");
    return 0;
}
