#include "test_device.h"

#include <stdio.h>

int test_open_first_device(const char *backend, backend_device *dev)
{
    strata_error err = {0};
    const backend_registration *registration = backend_find(backend);
    if (!registration) {
        printf("skip: the %s backend is not built in\n", backend);
        return 77;
    }
    if (registration->device_count(&err) <= 0) {
        printf("skip: no %s device (%s)\n", backend, err.message[0] ? err.message : "none found");
        return 77;
    }
    backend_options options = {0};
    if (backend_open(backend, 0, &options, dev, &err) != STRATA_OK) {
        printf("FAIL: cannot open the %s device: %s\n", backend, err.message);
        return 1;
    }
    return 0;
}
