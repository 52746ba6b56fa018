/* Chat templates: parsing, the fallback, and rendering a conversation
 * (see chat_template.h). The GGUF side is chat_template_gguf.c. */
#include "chat_template.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jinja.h"

/* The largest template file read. */
#define CHAT_TEMPLATE_MAX_FILE (1u << 20)

struct strata_chat_template {
    jinja_template *jinja;
    char *source;
    char *bos_token; /* NULL: not known */
    char *eos_token;
    bool is_fallback;
};

/* The documented fallback: "ROLE: CONTENT" blocks separated by blank lines. */
static const char FALLBACK_SOURCE[] =
    "{%- for message in messages -%}\n"
    "    {%- if message.content is string -%}\n"
    "        {%- set content = message.content -%}\n"
    "    {%- elif message.content is iterable and message.content is not mapping -%}\n"
    "        {%- set content = message.content | selectattr('type', 'equalto', 'text') | map(attribute='text')"
    " | join('\\n') -%}\n"
    "    {%- else -%}\n"
    "        {%- set content = '' -%}\n"
    "    {%- endif -%}\n"
    "    {{- message.role ~ ': ' ~ content ~ '\\n\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{- 'assistant:' -}}\n"
    "{%- endif -%}\n";

strata_status strata_chat_template_parse(const char *source, size_t len, const char *name,
                                         strata_chat_template **out, strata_error *err)
{
    *out = NULL;
    strata_chat_template *tmpl = calloc(1, sizeof *tmpl);
    if (!tmpl || !(tmpl->source = malloc(len + 1))) {
        free(tmpl);
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    memcpy(tmpl->source, source, len);
    tmpl->source[len] = '\0';
    strata_status status = jinja_template_parse(source, len, name, &tmpl->jinja, err);
    if (status != STRATA_OK) {
        strata_chat_template_free(tmpl);
        return status;
    }
    *out = tmpl;
    return STRATA_OK;
}

strata_status strata_chat_template_fallback(strata_chat_template **out, strata_error *err)
{
    strata_status status =
        strata_chat_template_parse(FALLBACK_SOURCE, sizeof FALLBACK_SOURCE - 1, "fallback chat template", out, err);
    if (status == STRATA_OK)
        (*out)->is_fallback = true;
    return status;
}

strata_status strata_chat_template_load_file(const char *path, strata_chat_template **out, strata_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return strata_fail(err, STRATA_IO, "%s: cannot open the chat template: %s", path, strerror(errno));
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    strata_status status = STRATA_OK;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "%s: is a directory, not a chat template file", path);
        goto done;
    }
    text = malloc(CHAT_TEMPLATE_MAX_FILE + 1);
    if (!text) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    while (true) {
        ssize_t n = read(fd, text + len, CHAT_TEMPLATE_MAX_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = strata_fail(err, STRATA_IO, "%s: reading the chat template failed: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CHAT_TEMPLATE_MAX_FILE) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "%s: larger than %u KiB, too large for a chat template",
                                 path, CHAT_TEMPLATE_MAX_FILE >> 10);
            goto done;
        }
    }
    status = strata_chat_template_parse(text, len, path, out, err);
done:
    free(text);
    close(fd);
    return status;
}

static strata_status copy_token(const char *text, char **slot, strata_error *err)
{
    free(*slot);
    *slot = NULL;
    if (text && !(*slot = strdup(text)))
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "chat template: out of memory");
    return STRATA_OK;
}

strata_status strata_chat_template_set_tokens(strata_chat_template *tmpl, const char *bos_token,
                                              const char *eos_token, strata_error *err)
{
    strata_status status = copy_token(bos_token, &tmpl->bos_token, err);
    if (status == STRATA_OK)
        status = copy_token(eos_token, &tmpl->eos_token, err);
    return status;
}

const char *strata_chat_template_bos_token(const strata_chat_template *tmpl)
{
    return tmpl->bos_token;
}

const char *strata_chat_template_eos_token(const strata_chat_template *tmpl)
{
    return tmpl->eos_token;
}

bool strata_chat_template_is_fallback(const strata_chat_template *tmpl)
{
    return tmpl->is_fallback;
}

const char *strata_chat_template_source(const strata_chat_template *tmpl)
{
    return tmpl->source;
}

void strata_chat_template_free(strata_chat_template *tmpl)
{
    if (!tmpl)
        return;
    jinja_template_free(tmpl->jinja);
    free(tmpl->source);
    free(tmpl->bos_token);
    free(tmpl->eos_token);
    free(tmpl);
}

/* --- rendering ---------------------------------------------------------------- */

static bool set_var(jinja_rt *rt, jv globals, const char *name, jv value)
{
    jv key;
    if (!jv_cstring(rt, name, &key)) {
        jv_release(value);
        return false;
    }
    return jv_dict_set(rt, globals.u.dict, key, value);
}

static bool set_json_var(jinja_rt *rt, jv globals, const char *name, const json_t *json)
{
    jv value;
    return jinja_from_json(rt, json, &value) && set_var(rt, globals, name, value);
}

static bool set_text_var(jinja_rt *rt, jv globals, const char *name, const char *text)
{
    jv value;
    return jv_cstring(rt, text, &value) && set_var(rt, globals, name, value);
}

/* "YYYY-MM-DD" into *time (midnight), checking the day exists. */
static strata_status parse_date(const char *text, jinja_time *time, strata_error *err)
{
    int year, month, day, consumed = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &year, &month, &day, &consumed) != 3 || text[consumed] != '\0' ||
        strlen(text) != 10)
        return strata_fail(err, STRATA_INVALID_INPUT, "chat template date '%s' is not of the form YYYY-MM-DD", text);
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days[month - 1] || (month == 2 && day == 29 && !leap))
        return strata_fail(err, STRATA_INVALID_INPUT, "chat template date '%s' is not a day of the calendar", text);
    *time = (jinja_time){.year = year, .month = month, .day = day};
    return STRATA_OK;
}

static void current_time(jinja_time *out)
{
    time_t now = time(NULL);
    struct tm local;
    if (!localtime_r(&now, &local)) {
        *out = (jinja_time){.year = 1970, .month = 1, .day = 1};
        return;
    }
    *out = (jinja_time){.year = local.tm_year + 1900, .month = local.tm_mon + 1, .day = local.tm_mday,
                        .hour = local.tm_hour, .minute = local.tm_min, .second = local.tm_sec};
}

/* Checks the inputs' shapes, so a bad request is one clear message rather
 * than whatever the template makes of it. */
static strata_status check_inputs(const json_t *messages, const strata_chat_options *options, strata_error *err)
{
    if (!messages || !json_is_array(messages))
        return strata_fail(err, STRATA_INVALID_INPUT, "chat messages must be a JSON array of message objects");
    for (size_t i = 0; i < json_array_size(messages); i++)
        if (!json_is_object(json_array_get(messages, i)))
            return strata_fail(err, STRATA_INVALID_INPUT, "chat message %zu is not a JSON object", i);
    if (options->tools && !json_is_array(options->tools) && !json_is_null(options->tools))
        return strata_fail(err, STRATA_INVALID_INPUT, "chat tools must be a JSON array");
    if (options->variables) {
        if (!json_is_object(options->variables))
            return strata_fail(err, STRATA_INVALID_INPUT, "chat template variables must be a JSON object");
        static const char *const reserved[] = {"messages", "tools", "add_generation_prompt"};
        for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
            if (json_object_get(options->variables, reserved[i]))
                return strata_fail(err, STRATA_INVALID_INPUT,
                                   "chat template variable '%s' has its own option; it cannot be set as a variable",
                                   reserved[i]);
    }
    return STRATA_OK;
}

strata_status strata_chat_template_render(const strata_chat_template *tmpl, const json_t *messages,
                                          const strata_chat_options *options, char **out, size_t *out_len,
                                          strata_error *err)
{
    *out = NULL;
    *out_len = 0;
    strata_chat_options defaults = {0};
    if (!options)
        options = &defaults;
    strata_status status = check_inputs(messages, options, err);
    if (status != STRATA_OK)
        return status;
    jinja_time now;
    if (options->date) {
        if ((status = parse_date(options->date, &now, err)) != STRATA_OK)
            return status;
    } else {
        current_time(&now);
    }
    jinja_limits limits = jinja_default_limits();
    if (options->max_steps)
        limits.max_steps = options->max_steps;
    if (options->max_output_bytes)
        limits.max_output_bytes = options->max_output_bytes;
    if (options->max_seconds > 0)
        limits.max_seconds = options->max_seconds;
    jinja_rt *rt = jinja_rt_new(&limits);
    if (!rt)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "chat template: out of memory");
    jv globals = jv_undefined();
    const char *bos = options->bos_token ? options->bos_token : tmpl->bos_token;
    const char *eos = options->eos_token ? options->eos_token : tmpl->eos_token;
    bool ok = jv_dict_new(rt, &globals) && set_json_var(rt, globals, "messages", messages) &&
              (options->tools ? set_json_var(rt, globals, "tools", options->tools)
                              : set_var(rt, globals, "tools", jv_none())) &&
              set_var(rt, globals, "documents", jv_none()) &&
              set_var(rt, globals, "add_generation_prompt", jv_bool(options->add_generation_prompt)) &&
              (!bos || set_text_var(rt, globals, "bos_token", bos)) &&
              (!eos || set_text_var(rt, globals, "eos_token", eos));
    if (ok && options->variables) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)options->variables, key, value) {
            if (!(ok = set_json_var(rt, globals, key, value)))
                break;
        }
    }
    if (!ok) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "chat template inputs: %s", jinja_rt_message(rt));
    } else {
        status = jinja_render(tmpl->jinja, globals, &limits, &now, out, out_len, err);
    }
    jv_release(globals);
    jinja_rt_free(rt);
    return status;
}
