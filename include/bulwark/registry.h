/*
 * bulwark: the name registry.
 */
#ifndef BULWARK_REGISTRY_H
#define BULWARK_REGISTRY_H

#include "bulwark/message.h"
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

/*
 * Sending by name: the name is resolved when the message is sent, and the
 * two are one step with respect to the registry: no exit, unregister or
 * re-registration moves the name between them. So the message lands in
 * the mailbox of the actor that holds the name at that instant, never in
 * that of an earlier holder (a bw_whereis then a send can reach a child
 * that has crashed since, while its restarted successor, registered under
 * the same name by its supervisor, would have answered). An actor that
 * holds the name but is exiting does not count: its successor cannot have
 * taken the name yet, and the send fails as to a dead pid. As with any
 * send, the holder may still exit after the message landed: a request
 * then gets its BW_ENOPROC reply.
 */

/* bw_send to a registered name. Returns bw_send's codes; BW_EINVAL (NULL
 * rt, NULL, empty or too long name); BW_ENOTFOUND when no live actor
 * holds it (then the message is a dead letter with reason noproc; this
 * code is older than the two below, which say BW_ENOPROC). */
int bw_send_named(bw_runtime_t *rt, const char *name, uint32_t type,
                  const void *data, size_t len);

/*
 * bw_request to a registered name, from inside an actor (see above).
 * Returns bw_request's codes (BW_ENOTACTOR outside an actor); BW_EINVAL
 * (bad name); BW_ENOPROC when no live actor holds the name (the request is
 * a dead letter noproc; no reply or timeout follows).
 */
int bw_request_named(bw_ctx_t *ctx, const char *name, uint32_t type, const void *data,
                     size_t len, uint64_t timeout_ms, uint64_t *ref);

/*
 * bw_call to a registered name, from a thread that is not a scheduler
 * thread (see above). It waits on an inbox of its own (bulwark/inbox.h),
 * made for the call. Returns bw_call's codes: the replier's status with
 * *out filled, BW_ETIMEDOUT (timeout_ms on the runtime's clock; 0 = none),
 * BW_ENOPROC (no live actor holds the name, or its holder exited before
 * answering), BW_EWOULDBLOCK, BW_ESHUTDOWN (also when the runtime stops
 * during the wait), BW_ETOOBIG, BW_ELIMIT, BW_ENOMEM; BW_EINVAL (NULL rt or
 * out, bad name, reserved type, NULL data with len > 0).
 */
int bw_call_named(bw_runtime_t *rt, const char *name, uint32_t type, const void *data,
                  size_t len, uint64_t timeout_ms, bw_reply_t *out);

#ifdef __cplusplus
}
#endif
#endif
