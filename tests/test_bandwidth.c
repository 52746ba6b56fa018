/* strata_measure_host_bandwidth: a plausible figure for one and for all
 * threads, and a clear error for a bad thread count. */
#include <stdio.h>

#include "strata.h"

static int check_plausible(int n_threads)
{
    double bytes_per_second = 0;
    strata_error err = {0};
    if (strata_measure_host_bandwidth(n_threads, &bytes_per_second, &err) != STRATA_OK) {
        fprintf(stderr, "FAIL: %d threads: %s\n", n_threads, err.message);
        return 1;
    }
    /* 100 MB/s is slower than any memory of this century; 100 TB/s faster
     * than any host memory: outside means the timing is wrong */
    if (!(bytes_per_second > 1e8 && bytes_per_second < 1e14)) {
        fprintf(stderr, "FAIL: %d threads: implausible %.3g bytes/s\n", n_threads, bytes_per_second);
        return 1;
    }
    printf("%d thread(s): %.2f GB/s\n", n_threads, bytes_per_second / 1e9);
    return 0;
}

int main(void)
{
    int failures = check_plausible(1) + check_plausible(0);

    double bytes_per_second = 123;
    strata_error err = {0};
    if (strata_measure_host_bandwidth(-1, &bytes_per_second, &err) != STRATA_INVALID_INPUT || err.message[0] == '\0') {
        fprintf(stderr, "FAIL: -1 threads was not rejected with a message\n");
        failures++;
    }
    if (failures == 0)
        printf("bandwidth: all checks passed\n");
    return failures ? 1 : 0;
}
