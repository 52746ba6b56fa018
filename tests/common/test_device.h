/* Opening a backend's first device for a test that needs one. */
#ifndef STRATA_TEST_DEVICE_H
#define STRATA_TEST_DEVICE_H

#include "backends/backend.h"

/* Opens device 0 of backend (default options) into *dev. Returns 0 when it
 * is open; otherwise prints why and returns the test's exit status: 77
 * (ctest's skip) when the backend is not built in or finds no device, 1
 * when a device is there but cannot be opened. */
int test_open_first_device(const char *backend, backend_device *dev);

#endif
