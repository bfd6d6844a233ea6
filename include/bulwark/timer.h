/*
 * bulwark: timers. All time comes from the runtime's clock (see
 * bw_clock_advance for the manual clock). Handlers never sleep; they ask for
 * a message later.
 *
 * Cost: a pending timer holds about 124 bytes with a payload of up to 8
 * bytes (196 with 64, 340 with 192): its heap entry and slot (52 bytes, in
 * arrays that double as they grow and never shrink) and its prepared
 * message (a pool block of 64 to 256 bytes). Measured as the resident
 * memory added by 1,000,000 bw_send_after to one actor (runtime/RUNTIME.md,
 * "Time"): one million pending timers take about 121 MB.
 *
 * Bound: at most bw_runtime_opts.max_timers timers of the application are
 * pending (default BW_TIMERS_DEFAULT_MAX, about 130 MB); beyond it
 * bw_send_after, bw_send_interval and bw_set_receive_timeout return
 * BW_ELIMIT. Deadlines of bw_request, bw_call and bw_wait_exit may use a
 * quarter more (they still work when the application's own timers fill the
 * cap), and the library's own timers (types in [BW_MSG_PATTERN_BASE,
 * BW_MSG_SYSTEM_BASE): supervisors' shutdown and restart timers, the
 * patterns' ticks) are never refused for it.
 */
#ifndef BULWARK_TIMER_H
#define BULWARK_TIMER_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t bw_timer_t;

/* bw_runtime_opts.max_timers: the default (0) and the largest accepted. */
#define BW_TIMERS_DEFAULT_MAX (1u << 20) /* 1,048,576 */
#define BW_TIMERS_MAX (1u << 30)

/*
 * Sends a copy of data to pid after ms (from the calling actor, if any);
 * the message's ref is the timer id. Timers due at the same time fire in
 * the order they were set. *timer (optional) receives the id.
 * Returns 0, BW_EINVAL, BW_ETOOBIG, BW_ENOMEM, BW_ESHUTDOWN; BW_ELIMIT
 * (max_timers pending: see above; nothing armed, nothing counted).
 */
int bw_send_after(bw_runtime_t *rt, bw_pid_t to, uint64_t ms, uint32_t type,
                  const void *data, size_t len, bw_timer_t *timer);

/* Like bw_send_after, then again every period_ms (> 0) until cancelled, or
 * until its target is dead: the first tick after that is a noproc dead
 * letter, and the timer ends (so an actor killed before it could cancel
 * leaves nothing behind). Pending until then: one timer of the cap.
 * Same codes as bw_send_after. */
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
