/* Chat templates: a conversation (messages as JSON, in the OpenAI / Hugging
 * Face shape) rendered into the prompt text a model was trained on, by the
 * model's own Jinja template (tokenizer.chat_template in a GGUF file) or a
 * template file.
 *
 * The reference is Python's jinja2 as Hugging Face's apply_chat_template
 * runs it; strata's interpreter (runtime/jinja*.c) renders the templates of
 * tests/data/templates byte for byte like it. The template sees:
 *
 *   messages               the conversation (a JSON array of objects)
 *   tools                  the JSON array given, or none
 *   documents              none (a variable may set it)
 *   add_generation_prompt  true to end with the assistant's turn opening
 *   bos_token, eos_token   the model's token texts (undefined when unknown)
 *   raise_exception(msg)   fails the render with msg
 *   strftime_now(format)   the date given, else the current local time
 *   ...                    any further variables given (enable_thinking,
 *                          reasoning_effort, ...)
 *
 * A template strata cannot render is an error naming the construct and the
 * line ("chat template line 12: unsupported tag 'include'"). A model
 * without a template gets the fallback (strata_chat_template_fallback),
 * one "ROLE: CONTENT" block per message:
 *
 *   system: You are terse.
 *
 *   user: Hi
 *
 *   assistant:
 *
 * (the last line only with add_generation_prompt; the content of a message
 * whose content is a list of parts is its text parts joined by newlines).
 *
 * Thread safety: a template is immutable once made; several threads may
 * render it at once. */
#ifndef STRATA_CHAT_TEMPLATE_H
#define STRATA_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct strata_chat_template strata_chat_template;

/* Parses a template from source (UTF-8; name is used in messages). Syntax
 * errors and unsupported tags fail here with STRATA_INVALID_INPUT. *out is
 * freed with strata_chat_template_free. */
strata_status strata_chat_template_parse(const char *source, size_t len, const char *name,
                                         strata_chat_template **out, strata_error *err);

/* Reads and parses a template file (at most 1 MiB; a path that is not a
 * regular file is refused). */
strata_status strata_chat_template_load_file(const char *path, strata_chat_template **out, strata_error *err);

/* The template of a GGUF model file (tokenizer.chat_template), with the
 * texts of its BOS and EOS tokens. A file without a template gets the
 * fallback (strata_chat_template_is_fallback then says so); a file that is
 * not valid GGUF is an error. Reads the header only. */
strata_status strata_chat_template_from_gguf(const char *model_path, strata_chat_template **out,
                                             strata_error *err);

/* The plain fallback template described above. */
strata_status strata_chat_template_fallback(strata_chat_template **out, strata_error *err);

/* Sets the BOS / EOS token texts the template sees when the options give
 * none (NULL: undefined). Copies the strings. */
strata_status strata_chat_template_set_tokens(strata_chat_template *tmpl, const char *bos_token,
                                              const char *eos_token, strata_error *err);

/* The BOS / EOS texts set (owned by tmpl), or NULL. */
const char *strata_chat_template_bos_token(const strata_chat_template *tmpl);
const char *strata_chat_template_eos_token(const strata_chat_template *tmpl);

bool strata_chat_template_is_fallback(const strata_chat_template *tmpl);
/* The Jinja source (NUL-terminated; owned by tmpl). */
const char *strata_chat_template_source(const strata_chat_template *tmpl);

void strata_chat_template_free(strata_chat_template *tmpl); /* NULL is fine */

typedef struct strata_chat_options {
    bool add_generation_prompt;
    const char *bos_token;     /* NULL: the template's (from the GGUF file), if any */
    const char *eos_token;
    const json_t *tools;       /* a JSON array, or NULL: tools is none */
    const json_t *variables;   /* a JSON object of further variables, or NULL */
    const char *date;          /* "YYYY-MM-DD" (strftime_now sees midnight of that
                                  day), or NULL: now, in local time */
    uint64_t max_steps;        /* 0: 50 million evaluation steps */
    size_t max_output_bytes;   /* 0: 64 MiB */
    double max_seconds;        /* 0: 10 seconds of wall-clock time */
} strata_chat_options;

/* Renders messages (a JSON array of objects; borrowed) into a malloc'ed,
 * NUL-terminated prompt (*out, *out_len bytes; free it). options may be
 * NULL (no generation prompt, no tools). Errors, all STRATA_INVALID_INPUT
 * with a message: messages that are not an array of objects, variables
 * that are not an object or name messages/tools/add_generation_prompt, a
 * bad date, the template failing (its line and what failed; for
 * raise_exception the template's own text), or a limit exceeded (steps,
 * memory, output). Blocks only for the CPU time it takes. */
strata_status strata_chat_template_render(const strata_chat_template *tmpl, const json_t *messages,
                                          const strata_chat_options *options, char **out, size_t *out_len,
                                          strata_error *err);

#endif
