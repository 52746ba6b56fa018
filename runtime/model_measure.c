/* Ceilings for the benchmark, measured on the device that holds the output
 * (the model's only device when it is not split). */
#include "model.h"

static const backend_device *primary_device(const strata_model *model)
{
    return &model->devices[model->output.device].device;
}

strata_status strata_model_measure_bandwidth(const strata_model *model, int n_threads, double *bytes_per_second,
                                             const char **method, strata_error *err)
{
    const backend_device *device = primary_device(model);
    const backend_ops *ops = device->ops;
    if (ops->measure_bandwidth) {
        if (method)
            *method = "device-to-device copy";
        return ops->measure_bandwidth(device->ctx, bytes_per_second, err);
    }
    if (method)
        *method = STRATA_HOST_BANDWIDTH_METHOD;
    return strata_measure_host_bandwidth(n_threads, bytes_per_second, err);
}

strata_status strata_model_measure_gemm_peak(const strata_model *model, double *flops, strata_error *err)
{
    const backend_device *device = primary_device(model);
    const backend_ops *ops = device->ops;
    if (!ops->measure_gemm_peak)
        return strata_fail(err, STRATA_UNSUPPORTED, "the %s backend has no GEMM peak measurement", ops->name);
    return ops->measure_gemm_peak(device->ctx, flops, err);
}
