/* strata devices: every device of every backend built into this strata, with
 * its index (what --backend NAME --device N selects), name, memory and key
 * features. A backend with no device says why (no loader, no driver). */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "backends/backend.h"
#include "commands.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: strata devices\n"
            "\n"
            "Lists every device of every backend built into this strata: the index to\n"
            "pass as --device N together with --backend NAME, the device's name, its\n"
            "memory (total and free) and key features. A backend without a device says\n"
            "why (for example: no Vulkan loader or driver).\n"
            "\n"
            "  -h, --help        this help\n");
}

static double gib(uint64_t bytes)
{
    return (double)bytes / 1073741824.0;
}

int cmd_devices(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (args_is_help(argv[i])) {
            print_help(stdout);
            return ARGS_EXIT_OK;
        }
        fprintf(stderr, "strata devices: unknown argument '%s' (see --help)\n", argv[i]);
        return ARGS_EXIT_USAGE;
    }
    int n_backends = 0, failures = 0;
    const backend_registration *const *registry = backend_registry(&n_backends);
    printf("%-8s %-6s %-44s %21s  %s\n", "backend", "device", "name", "memory total / free", "features");
    for (int b = 0; b < n_backends; b++) {
        strata_error err = {0};
        int n_devices = registry[b]->device_count(&err);
        if (n_devices <= 0) {
            printf("%-8s %-6s (%s)\n", registry[b]->name, "-", err.message[0] ? err.message : "no device found");
            continue;
        }
        for (int d = 0; d < n_devices; d++) {
            backend_device device;
            backend_options options = {0};
            strata_error open_err = {0};
            if (backend_open(registry[b]->name, d, &options, &device, &open_err) != STRATA_OK) {
                printf("%-8s %-6d (cannot open: %s)\n", registry[b]->name, d, open_err.message);
                failures++;
                continue;
            }
            device_info info;
            device.ops->get_info(device.ctx, &info);
            printf("%-8s %-6d %-44.44s %8.1f / %6.1f GiB  %s\n", registry[b]->name, d, info.name,
                   gib(info.total_bytes), gib(info.free_bytes), info.features[0] ? info.features : "-");
            backend_close(&device);
        }
    }
    return failures ? ARGS_EXIT_ERROR : ARGS_EXIT_OK;
}
