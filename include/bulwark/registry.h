/*
 * bulwark: the name registry.
 */
#ifndef BULWARK_REGISTRY_H
#define BULWARK_REGISTRY_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BW_NAME_MAX 127u

/* Registers name (copied; 1..BW_NAME_MAX bytes) for pid until pid exits or
 * bw_unregister. Returns 0, BW_EINVAL, BW_EEXIST (a live actor has it),
 * BW_ENOPROC, BW_ESHUTDOWN. */
int bw_register(bw_runtime_t *rt, const char *name, bw_pid_t pid);

/* Returns 0, BW_EINVAL, BW_ENOTFOUND. */
int bw_unregister(bw_runtime_t *rt, const char *name);

/* Looks a name up. Returns 0 (with *out), BW_EINVAL, BW_ENOTFOUND. */
int bw_whereis(const bw_runtime_t *rt, const char *name, bw_pid_t *out);

/* bw_send to a registered name. Returns bw_send's codes, or BW_ENOTFOUND
 * (then the message is a dead letter with reason noproc). */
int bw_send_named(bw_runtime_t *rt, const char *name, uint32_t type,
                  const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
