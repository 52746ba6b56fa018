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
            "Lists every device of every backend built into this strata by the name\n"
            "--device takes (cpu, cuda0, vulkan1, ...), with the device's own name, its\n"
            "memory (total and free) and key features. A backend without a device says\n"
            "why (for example: no Vulkan loader or driver). Without --device, run, bench\n"
            "and plan use every GPU listed (CUDA before Vulkan for the same card;\n"
            "software devices such as lavapipe only when named), then the CPU.\n"
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
    printf("%-8s %-44s %21s  %s\n", "device", "name", "memory total / free", "features");
    for (int b = 0; b < n_backends; b++) {
        strata_error err = {0};
        int n_devices = registry[b]->device_count(&err);
        if (n_devices <= 0) {
            printf("%-8s (%s: %s)\n", "-", registry[b]->name, err.message[0] ? err.message : "no device found");
            continue;
        }
        for (int d = 0; d < n_devices; d++) {
            backend_device device;
            backend_options options = {0};
            strata_error open_err = {0};
            if (backend_open(registry[b]->name, d, &options, &device, &open_err) != STRATA_OK) {
                printf("%s%-*d (cannot open: %s)\n", registry[b]->name, 8 - (int)strlen(registry[b]->name), d,
                       open_err.message);
                failures++;
                continue;
            }
            device_info info;
            device.ops->get_info(device.ctx, &info);
            char device_name[32];
            if (strcmp(registry[b]->name, "cpu") == 0)
                snprintf(device_name, sizeof device_name, "cpu");
            else
                snprintf(device_name, sizeof device_name, "%s%d", registry[b]->name, d);
            printf("%-8s %-44.44s %8.1f / %6.1f GiB  %s%s\n", device_name, info.name, gib(info.total_bytes),
                   gib(info.free_bytes), info.features[0] ? info.features : "-",
                   info.software ? " (software: used only when named)" : "");
            backend_close(&device);
        }
    }
    return failures ? ARGS_EXIT_ERROR : ARGS_EXIT_OK;
}
