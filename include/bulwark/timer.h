/*
 * bulwark: timers. All time comes from the runtime's clock (see
 * bw_clock_advance for the manual clock). Handlers never sleep; they ask for
 * a message later.
 */
#ifndef BULWARK_TIMER_H
#define BULWARK_TIMER_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t bw_timer_t;

/*
 * Sends a copy of data to pid after ms (from the calling actor, if any);
 * the message's ref is the timer id. Timers due at the same time fire in
 * the order they were set. *timer (optional) receives the id.
 * Returns 0, BW_EINVAL, BW_ETOOBIG, BW_ENOMEM, BW_ESHUTDOWN.
 */
int bw_send_after(bw_runtime_t *rt, bw_pid_t to, uint64_t ms, uint32_t type,
                  const void *data, size_t len, bw_timer_t *timer);

/* Like bw_send_after, then again every period_ms (> 0) until cancelled, or
 * until its target is dead: the first tick after that is a noproc dead
 * letter, and the timer ends (so an actor killed before it could cancel
 * leaves nothing behind). */
int bw_send_interval(bw_runtime_t *rt, bw_pid_t to, uint64_t period_ms,
                     uint32_t type, const void *data, size_t len,
                     bw_timer_t *timer);

/* Cancels a timer. Returns 0; BW_ENOTFOUND if it already fired (one-shot)
 * or was cancelled; BW_EINVAL; BW_ESHUTDOWN. */
int bw_timer_cancel(bw_runtime_t *rt, bw_timer_t timer);

#ifdef __cplusplus
}
#endif
#endif
