/*
 * bulwark: the token bucket as GCRA (see include/bulwark/ratelimit.h).
 *
 * State: tat, the theoretical arrival time of the next token. Taking a token
 * at time now moves it to max(tat, now) + interval; the take is allowed if
 * the new tat is at most tolerance (= burst * interval) ahead of now. A full
 * bucket is tat <= now; each token pushes tat one interval ahead; time
 * catches up at one interval per token, which is the refill. So one word
 * replaces the (tokens, last refill) pair that would need a lock or a
 * 128-bit CAS, and nothing runs between calls.
 *
 * Rejected alternative: a counter refilled by a timer. It costs a timer per
 * bucket, refills in steps (a burst at every tick), and is wrong between
 * ticks; GCRA is exact at every nanosecond.
 */
#include <stddef.h>
#include <stdint.h>

#include "bulwark/error.h"
#include "bulwark/ratelimit.h"
#include "bulwark/runtime.h"
#include "runtime/atomic.h"

/*
 * Atomics (runtime/atomic.h's). Every access to tat and the counters is
 * relaxed: no other memory is published through them. A token is a number,
 * not a pointer to data, so all that matters is that each read-modify-write
 * of tat is atomic, and a CAS is (in any order). The counters are statistics.
 */

#define NS_PER_MS 1000000ull
/* tolerance + timeout stay below 2^63, so max(tat, now) + interval and the
 * differences below never wrap for any clock reading below 2^62 ns (146
 * years of uptime). */
#define MAX_TOLERANCE_NS (1ull << 62)

int bw_ratelimit_init(bw_ratelimit_t *rl, const bw_runtime_t *rt, uint64_t rate,
                      uint64_t period_ms, uint32_t burst) {
  if (rl == NULL || rt == NULL || rate == 0 || burst == 0 || burst > BW_RATELIMIT_MAX_BURST ||
      period_ms > BW_RATELIMIT_MAX_PERIOD_MS)
    return BW_EINVAL;
  if (period_ms == 0)
    period_ms = 1000;
  uint64_t period_ns = period_ms * NS_PER_MS;
  if (rate > period_ns)
    return BW_EINVAL; /* more than one token per ns: not representable */
  /* rounded up: never admit more than rate per period */
  uint64_t interval = period_ns / rate + (period_ns % rate != 0);
  if (interval > MAX_TOLERANCE_NS / burst)
    return BW_EINVAL;
  rl->tat = 0; /* <= any reading of the clock: the bucket starts full */
  rl->acquired = 0;
  rl->limited = 0;
  rl->interval_ns = interval;
  rl->tolerance_ns = interval * burst;
  rl->rate = rate;
  rl->period_ms = period_ms;
  rl->burst = burst;
  rl->_pad = 0;
  rl->rt = rt;
  return 0;
}

/* Takes a token whose use may be up to slack_ns in the future. Returns 0
 * with *wait_ns = how long until it may be used, or BW_ERATE_LIMITED with
 * *wait_ns = how long until one could be taken without slack. */
static int take(bw_ratelimit_t *rl, uint64_t now, uint64_t slack_ns, uint64_t *wait_ns) {
  uint64_t tat = bw__ld64_rlx(&rl->tat);
  for (;;) {
    uint64_t base = tat > now ? tat : now;
    uint64_t next = base + rl->interval_ns;
    /* the token is usable once next - now <= tolerance */
    uint64_t wait = next - now > rl->tolerance_ns ? next - now - rl->tolerance_ns : 0;
    if (wait > slack_ns) {
      (void)bw__faa64_rlx(&rl->limited, 1);
      *wait_ns = wait;
      return BW_ERATE_LIMITED;
    }
    uint64_t seen = bw__cas64_val_rlx(&rl->tat, tat, next);
    if (seen == tat) {
      (void)bw__faa64_rlx(&rl->acquired, 1);
      *wait_ns = wait;
      return 0;
    }
    tat = seen; /* another thread took a token: retry with its tat */
  }
}

int bw_ratelimit_try_acquire_at(bw_ratelimit_t *rl, uint64_t now_ns, uint64_t *wait_ns) {
  if (rl == NULL || rl->interval_ns == 0)
    return BW_EINVAL;
  uint64_t w;
  int rc = take(rl, now_ns, 0, &w);
  if (wait_ns != NULL)
    *wait_ns = w;
  return rc;
}

int bw_ratelimit_try_acquire(bw_ratelimit_t *rl, uint64_t *wait_ns) {
  if (rl == NULL || rl->rt == NULL)
    return BW_EINVAL;
  return bw_ratelimit_try_acquire_at(rl, bw_now_ns(rl->rt), wait_ns);
}

int bw_ratelimit_acquire(bw_ratelimit_t *rl, uint64_t timeout_ms, uint64_t *wait_ns) {
  if (rl == NULL || rl->rt == NULL || rl->interval_ns == 0 || wait_ns == NULL ||
      timeout_ms > BW_RATELIMIT_MAX_PERIOD_MS)
    return BW_EINVAL;
  return take(rl, bw_now_ns(rl->rt), timeout_ms * NS_PER_MS, wait_ns);
}

uint32_t bw_ratelimit_available(const bw_ratelimit_t *rl) {
  if (rl == NULL || rl->rt == NULL || rl->interval_ns == 0)
    return 0;
  uint64_t now = bw_now_ns(rl->rt);
  uint64_t tat = bw__ld64_rlx(&rl->tat);
  uint64_t ahead = tat > now ? tat - now : 0; /* the debt */
  if (ahead >= rl->tolerance_ns)
    return 0;
  return (uint32_t)((rl->tolerance_ns - ahead) / rl->interval_ns);
}

int bw_ratelimit_stats(const bw_ratelimit_t *rl, bw_ratelimit_stats_t *out) {
  if (rl == NULL || out == NULL || rl->interval_ns == 0)
    return BW_EINVAL;
  out->rate = rl->rate;
  out->period_ms = rl->period_ms;
  out->burst = rl->burst;
  out->available = bw_ratelimit_available(rl);
  out->acquired = bw__ld64_rlx(&rl->acquired);
  out->limited = bw__ld64_rlx(&rl->limited);
  return 0;
}
