/* The Vulkan backend: GPUs (and Mesa's lavapipe) through Vulkan 1.2 compute,
 * loaded at run time through volk. */
#ifndef STRATA_VULKAN_BACKEND_H
#define STRATA_VULKAN_BACKEND_H

#include "../backend.h"

extern const backend_registration vulkan_backend_registration;

#endif
