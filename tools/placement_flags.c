/* The placement and context flag groups (see placement_flags.h). */
#include "placement_flags.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

/* -ts 3,1 (or 3/1): proportions of the GPU layers per GPU */
static bool parse_tensor_split(const char *cmd, const char *flag, const char *value, void *options)
{
    placement_options *o = options;
    o->n_tensor_split = 0;
    const char *cursor = value;
    while (*cursor) {
        size_t len = strcspn(cursor, ",/");
        char part[32];
        if (len == 0 || len >= sizeof part) {
            fprintf(stderr, "%s: %s: '%s' is not a list of proportions (e.g. 3,1)\n", cmd, flag, value);
            return false;
        }
        if (o->n_tensor_split == STRATA_MAX_DEVICES) {
            fprintf(stderr, "%s: %s: more than %d proportions\n", cmd, flag, STRATA_MAX_DEVICES);
            return false;
        }
        memcpy(part, cursor, len);
        part[len] = '\0';
        double proportion;
        if (!args_parse_float(cmd, flag, part, 0, 1e9, &proportion))
            return false;
        o->tensor_split[o->n_tensor_split++] = proportion;
        cursor += len + (cursor[len] != '\0');
    }
    double total = 0;
    for (int i = 0; i < o->n_tensor_split; i++)
        total += o->tensor_split[i];
    if (!(total > 0)) {
        fprintf(stderr, "%s: %s: '%s' gives no layer to any GPU\n", cmd, flag, value);
        return false;
    }
    return true;
}

/* A device name as `strata devices` prints it: cpu, cuda0, vulkan1 */
static bool valid_device_name(const char *name, size_t len)
{
    if (len == 0 || len >= STRATA_DEVICE_NAME_MAX || !islower((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]))
            return false;
    return true;
}

/* -ot REGEX=DEV, repeatable; the last '=' separates them, so the pattern may
 * hold one */
static bool parse_override(const char *cmd, const char *flag, const char *value, void *options)
{
    placement_options *o = options;
    const char *equals = strrchr(value, '=');
    if (!equals || equals == value || !valid_device_name(equals + 1, strlen(equals + 1))) {
        fprintf(stderr, "%s: %s: '%s' is not PATTERN=DEVICE (e.g. 'blk\\.[0-9]+\\.ffn_.*=cpu')\n", cmd, flag, value);
        return false;
    }
    if (o->n_overrides == STRATA_MAX_OVERRIDES) {
        fprintf(stderr, "%s: %s: more than %d overrides\n", cmd, flag, STRATA_MAX_OVERRIDES);
        return false;
    }
    size_t pattern_len = (size_t)(equals - value);
    char *pattern = o->override_patterns[o->n_overrides];
    if (pattern_len >= sizeof o->override_patterns[0]) {
        fprintf(stderr, "%s: %s: the pattern is longer than %zu bytes\n", cmd, flag,
                sizeof o->override_patterns[0] - 1);
        return false;
    }
    memcpy(pattern, value, pattern_len);
    pattern[pattern_len] = '\0';
    strata_tensor_override *override = &o->overrides[o->n_overrides++];
    override->pattern = pattern;
    snprintf(override->device, sizeof override->device, "%s", equals + 1);
    return true;
}

/* --vram cuda0=24G[,cpu=64G], repeatable */
static bool parse_vram(const char *cmd, const char *flag, const char *value, void *options)
{
    placement_options *o = options;
    const char *cursor = value;
    while (*cursor) {
        size_t len = strcspn(cursor, ",");
        const char *equals = memchr(cursor, '=', len);
        char size_text[32];
        size_t size_len = equals ? len - (size_t)(equals - cursor) - 1 : 0;
        if (!equals || !valid_device_name(cursor, (size_t)(equals - cursor)) || size_len == 0 ||
            size_len >= sizeof size_text) {
            fprintf(stderr, "%s: %s: '%.*s' is not DEVICE=SIZE (e.g. cuda0=24G)\n", cmd, flag, (int)len, cursor);
            return false;
        }
        memcpy(size_text, equals + 1, size_len);
        size_text[size_len] = '\0';
        uint64_t bytes;
        if (!args_parse_size(cmd, flag, size_text, &bytes))
            return false;
        char name[STRATA_DEVICE_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(equals - cursor), cursor);
        int slot = -1;
        for (int i = 0; i < o->n_caps; i++)
            if (strcmp(o->caps[i].device, name) == 0)
                slot = i; /* a later cap for the same device replaces the earlier */
        if (slot < 0) {
            if (o->n_caps == STRATA_MAX_DEVICES) {
                fprintf(stderr, "%s: %s: more than %d caps\n", cmd, flag, STRATA_MAX_DEVICES);
                return false;
            }
            slot = o->n_caps++;
        }
        snprintf(o->caps[slot].device, sizeof o->caps[slot].device, "%s", name);
        o->caps[slot].bytes = bytes;
        cursor += len + (cursor[len] != '\0');
    }
    return true;
}

/* A rate with a unit: "1008GB/s", "60GB/s", "900MB/s" (decimal, like
 * vendors' figures) */
static bool parse_rate(const char *text, const char *unit_suffix, double *out)
{
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || !(value > 0))
        return false;
    double scale = 1;
    switch (*end) {
    case 'K': scale = 1e3; end++; break;
    case 'M': scale = 1e6; end++; break;
    case 'G': scale = 1e9; end++; break;
    case 'T': scale = 1e12; end++; break;
    default: break;
    }
    if (strcmp(end, unit_suffix) != 0)
        return false;
    *out = value * scale;
    return true;
}

static bool all_digits(const char *text);

/* --device-spec NAME:MEMORY[:BANDWIDTH[:FLOPS[:LINK]]], e.g.
 * cuda0:24G:1008GB/s:165TFLOPS:25GB/s */
static bool parse_device_spec(const char *cmd, const char *flag, const char *value, void *options)
{
    placement_options *o = options;
    char fields[5][48] = {{0}};
    int n_fields = 0;
    const char *cursor = value;
    /* whether the last field read ends the text: a sixth field or one too
     * long to read is refused, not ignored */
    bool complete = false;
    while (n_fields < 5) {
        size_t len = strcspn(cursor, ":");
        if (len >= sizeof fields[0])
            break;
        memcpy(fields[n_fields], cursor, len);
        fields[n_fields][len] = '\0';
        n_fields++;
        if (cursor[len] != ':') {
            complete = true;
            break;
        }
        cursor += len + 1;
    }
    bool ok = n_fields >= 2 && complete && valid_device_name(fields[0], strlen(fields[0]));
    strata_device_spec spec = {0};
    if (ok) {
        snprintf(spec.name, sizeof spec.name, "%.*s", (int)sizeof spec.name - 1, fields[0]);
        if (!args_parse_size(cmd, flag, fields[1], &spec.memory_bytes))
            return false;
    }
    if (ok && n_fields >= 3)
        ok = parse_rate(fields[2], "B/s", &spec.bandwidth);
    if (ok && n_fields >= 4)
        ok = parse_rate(fields[3], "FLOPS", &spec.matmul_flops);
    if (ok && n_fields >= 5)
        ok = parse_rate(fields[4], "B/s", &spec.link_bandwidth);
    if (!ok) {
        fprintf(stderr,
                "%s: %s: '%s' is not NAME:MEMORY[:BANDWIDTH[:FLOPS[:LINK]]] (e.g. "
                "cuda0:24G:1008GB/s:165TFLOPS:25GB/s)\n",
                cmd, flag, value);
        return false;
    }
    /* a name no backend has, or one given twice, is bad usage (exit 2) here,
     * not an error from the library after the model is read */
    size_t stem = strcspn(spec.name, "0123456789");
    bool indexed = spec.name[stem] != '\0' && all_digits(spec.name + stem);
    if (!(strcmp(spec.name, "cpu") == 0 || (indexed && stem == 4 && strncmp(spec.name, "cuda", 4) == 0) ||
          (indexed && stem == 6 && strncmp(spec.name, "vulkan", 6) == 0))) {
        fprintf(stderr, "%s: %s: '%s': the device name must be cpu, cudaN or vulkanN\n", cmd, flag, value);
        return false;
    }
    for (int i = 0; i < o->n_specs; i++)
        if (strcmp(o->specs[i].name, spec.name) == 0) {
            fprintf(stderr, "%s: %s: %s is given twice\n", cmd, flag, spec.name);
            return false;
        }
    if (o->n_specs == STRATA_MAX_DEVICES) {
        fprintf(stderr, "%s: %s: more than %d devices\n", cmd, flag, STRATA_MAX_DEVICES);
        return false;
    }
    o->specs[o->n_specs++] = spec;
    return true;
}

static bool parse_kv_type(const char *cmd, const char *flag, const char *value, void *options)
{
    static const char *const kv_types[] = {"f16", "f32", NULL};
    if (!args_parse_choice(cmd, flag, value, kv_types))
        return false;
    ((context_options *)options)->kv_type = value;
    return true;
}

#define PLACEMENT(field) offsetof(placement_options, field)
static const flag_spec placement_flags[] = {
    FLAG_VALUE(NULL, "--device", "LIST",
               "devices in order, as `strata devices` names them: cpu,\n"
               "cuda0, vulkan1, ... (default: every GPU, then cpu);\n"
               "the first holds the output layer",
               FLAG_STRING, PLACEMENT(device_text)),
    FLAG_VALUE(NULL, "--backend", "NAME",
               "shorthand for one device: cpu, cuda or vulkan (its\n"
               "device 0, or --device N)",
               FLAG_STRING, PLACEMENT(backend)),
    FLAG_BOUNDED_SET("-ngl", "--gpu-layers", "N",
                     "layers on the GPUs (default: as many as fit); the\n"
                     "rest run on the CPU",
                     FLAG_INT, PLACEMENT(gpu_layers), 0, 1 << 20, PLACEMENT(gpu_layers_set)),
    FLAG_ON(NULL, "--cpu-moe",
            "keep the experts' weights of every layer of a\n"
            "mixture-of-experts model in host RAM, computed by\n"
            "the CPU (attention and router stay on the GPUs)",
            PLACEMENT(cpu_moe)),
    FLAG_BOUNDED_SET(NULL, "--n-cpu-moe", "N",
                     "the same for the experts of the first N layers only\n"
                     "(default: the planner keeps experts in host RAM when\n"
                     "the model does not fit and that is predicted faster)",
                     FLAG_INT, PLACEMENT(n_cpu_moe), 0, 1 << 20, PLACEMENT(n_cpu_moe_set)),
    FLAG_PARSED("-ts", "--tensor-split", "A,B,...", "proportions of the GPU layers per GPU, in order",
                parse_tensor_split),
    FLAG_PARSED("-ot", "--override-tensor", "RE=DEV",
                "tensors whose name matches RE (PCRE2, anywhere in\n"
                "the name) go to DEV; repeatable; the rest is fitted",
                parse_override),
    FLAG_PARSED(NULL, "--vram", "DEV=SIZE,...",
                "cap what the plan uses on a device (24G, 512M,\n"
                "bytes); default: its free memory minus a margin",
                parse_vram),
    FLAG_BOUNDED("-t", "--threads", "N", "CPU threads (default 0 = all cores)", FLAG_INT, PLACEMENT(n_threads), 0,
                 4096),
    FLAG_ON(NULL, "--no-mmap",
            "read the model into memory instead of mapping it (the\n"
            "run then survives the file changing under it)",
            PLACEMENT(no_mmap)),
};
const flag_group placement_flag_group = {"devices and placement", placement_flags,
                                         sizeof placement_flags / sizeof placement_flags[0]};

static const flag_spec device_spec_flags[] = {
    FLAG_PARSED(NULL, "--device-spec", "SPEC",
                "plan for a device that need not be present:\n"
                "NAME:MEMORY[:BANDWIDTH[:FLOPS[:LINK]]], e.g.\n"
                "cuda0:24G:1008GB/s:165TFLOPS:25GB/s (LINK: to the\n"
                "host); repeatable, in order",
                parse_device_spec),
    FLAG_ON(NULL, "--no-measure", "do not measure present devices (no speed prediction)", PLACEMENT(no_measure)),
};
const flag_group device_spec_flag_group = {"hypothetical devices", device_spec_flags,
                                           sizeof device_spec_flags / sizeof device_spec_flags[0]};
#undef PLACEMENT

#define CONTEXT(field) offsetof(context_options, field)
static const flag_spec context_flags[] = {
    FLAG_BOUNDED("-c", "--ctx", "N",
                 "context length (default: the model's, at most 4096,\n"
                 "less when that does not fit, said aloud)",
                 FLAG_INT, CONTEXT(n_ctx), 0, 1 << 24),
    FLAG_PARSED(NULL, "--kv-type", "f16|f32", "KV-cache element type (default f16)", parse_kv_type),
    FLAG_BOUNDED("-b", "--batch", "N", "most tokens per forward step (default 512)", FLAG_INT, CONTEXT(batch), 1,
                 65536),
};
#undef CONTEXT
const flag_group context_flag_group = {"context", context_flags, sizeof context_flags / sizeof context_flags[0]};

void placement_options_init(placement_options *options)
{
    memset(options, 0, sizeof *options);
}

void context_options_init(context_options *options)
{
    memset(options, 0, sizeof *options);
    options->kv_type = "f16";
}

strata_dtype context_options_kv_dtype(const context_options *context)
{
    return context->kv_type && strcmp(context->kv_type, "f32") == 0 ? DTYPE_F32 : DTYPE_F16;
}

static bool all_digits(const char *text)
{
    if (!*text)
        return false;
    for (; *text; text++)
        if (!isdigit((unsigned char)*text))
            return false;
    return true;
}

bool placement_options_apply(const char *cmd, const placement_options *placement, const context_options *context,
                             strata_model_params *params, char *device_list, size_t device_list_size)
{
    params->n_threads = (int)placement->n_threads;
    params->no_mmap = placement->no_mmap;
    params->backend = NULL;
    params->device = 0;
    strata_placement_params *p = &params->placement;
    *p = strata_placement_default_params();
    if (placement->device_text && all_digits(placement->device_text)) {
        /* the old shorthand: --backend NAME --device N */
        int64_t index;
        if (!args_parse_int(cmd, "--device", placement->device_text, 0, 1024, &index))
            return false;
        if (!placement->backend) {
            fprintf(stderr, "%s: --device %s: give the device by name (cuda%s, vulkan%s; see `strata devices`) or "
                            "with --backend NAME\n",
                    cmd, placement->device_text, placement->device_text, placement->device_text);
            return false;
        }
        /* the one device "<backend><index>" ("cpu" for the CPU) */
        if (strcmp(placement->backend, "cpu") == 0 && index == 0)
            snprintf(device_list, device_list_size, "cpu");
        else
            snprintf(device_list, device_list_size, "%s%lld", placement->backend, (long long)index);
        p->devices = device_list;
    } else if (placement->device_text) {
        if (placement->backend) {
            fprintf(stderr, "%s: give either --device LIST or --backend NAME, not both\n", cmd);
            return false;
        }
        snprintf(device_list, device_list_size, "%s", placement->device_text);
        p->devices = device_list;
    } else if (placement->backend) {
        snprintf(device_list, device_list_size, strcmp(placement->backend, "cpu") == 0 ? "%s" : "%s0",
                 placement->backend);
        p->devices = device_list;
    }
    /* with --device-spec the devices are known now: a cap or an override
     * naming another one is bad usage */
    for (int i = 0; placement->n_specs > 0 && i < placement->n_caps + placement->n_overrides; i++) {
        const char *name =
            i < placement->n_caps ? placement->caps[i].device : placement->overrides[i - placement->n_caps].device;
        bool known = false;
        for (int d = 0; d < placement->n_specs; d++)
            known = known || strcmp(placement->specs[d].name, name) == 0;
        if (!known) {
            fprintf(stderr, "%s: %s %s: %s is not among the --device-spec devices\n", cmd,
                    i < placement->n_caps ? "--vram" : "--override-tensor", name, name);
            return false;
        }
    }
    p->gpu_layers_set = placement->gpu_layers_set;
    p->gpu_layers = placement->gpu_layers;
    p->tensor_split = placement->n_tensor_split > 0 ? placement->tensor_split : NULL;
    p->n_tensor_split = placement->n_tensor_split;
    p->overrides = placement->overrides;
    p->n_overrides = placement->n_overrides;
    p->cpu_moe = placement->cpu_moe;
    p->n_cpu_moe_set = placement->n_cpu_moe_set;
    p->n_cpu_moe = placement->n_cpu_moe;
    p->caps = placement->caps;
    p->n_caps = placement->n_caps;
    p->specs = placement->specs;
    p->n_specs = placement->n_specs;
    p->measure = false; /* the command decides: plan and bench measure, run does not */
    if (context) {
        p->n_ctx = context->n_ctx;
        p->kv_dtype = context_options_kv_dtype(context);
        p->max_batch = (int)context->batch;
    }
    return true;
}
