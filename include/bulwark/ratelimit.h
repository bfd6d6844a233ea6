/*
 * bulwark: a lock-free token bucket (rate limiter).
 *
 *   bw_ratelimit_t rl;
 *   bw_ratelimit_init(&rl, rt, 100, 1000, 20); // 100 per second, bursts of 20
 *   uint64_t wait_ns;
 *   if (bw_ratelimit_try_acquire(&rl, &wait_ns) == BW_ERATE_LIMITED)
 *     ... // refused; a token comes back in wait_ns
 *
 * The bucket is GCRA (the generic cell rate algorithm): one 64-bit
 * "theoretical arrival time" (TAT), moved forward by one interval per token
 * with a compare-and-swap. It admits exactly what a token bucket of
 * capacity `burst` refilled at `rate` per `period` admits, with no refill
 * thread, no lock and one word of shared state. Usable from any thread and
 * from actors; time is the runtime's clock (the manual clock in tests).
 *
 * The caller allocates the struct and keeps it alive while it is used; there
 * is nothing to free.
 */
#ifndef BULWARK_RATELIMIT_H
#define BULWARK_RATELIMIT_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of bw_ratelimit_init's arguments. */
#define BW_RATELIMIT_MAX_PERIOD_MS (86400000ull) /* one day */
#define BW_RATELIMIT_MAX_BURST (1000000000u)

/*
 * A token bucket. Fields are private (read them with the functions below);
 * the struct is public only so that callers can embed it (in an actor's
 * state, too: it needs no more than 8-byte alignment). A bucket many
 * threads hammer is best given a cache line of its own by its owner.
 */
typedef struct bw_ratelimit {
  /* the theoretical arrival time, ns on the runtime's clock: the bucket is
   * full when tat <= now; it holds (tolerance - (tat - now)) / interval
   * tokens otherwise. The only word the acquire path writes with a CAS;
   * the counters below share its cache line (one line per acquire). */
  uint64_t tat;
  uint64_t acquired; /* tokens handed out (relaxed counter) */
  uint64_t limited;  /* refusals (relaxed counter) */
  uint64_t interval_ns;  /* period / rate, rounded up */
  uint64_t tolerance_ns; /* burst * interval */
  uint64_t rate;
  uint64_t period_ms;
  uint32_t burst;
  uint32_t _pad;
  const bw_runtime_t *rt;
} bw_ratelimit_t;

/*
 * Sets up a full bucket: `rate` tokens per `period_ms` (0 = 1000: rate per
 * second), at most `burst` at once. The interval between tokens is
 * period / rate rounded up to a whole nanosecond, so the limiter never
 * admits more than the rate (it is exact when rate divides period_ns).
 * Returns 0; BW_EINVAL (NULL rl or rt, rate 0, burst 0 or above
 * BW_RATELIMIT_MAX_BURST, period above BW_RATELIMIT_MAX_PERIOD_MS, an
 * interval below 1 ns, or burst * interval beyond 2^62 ns).
 */
int bw_ratelimit_init(bw_ratelimit_t *rl, const bw_runtime_t *rt, uint64_t rate,
                      uint64_t period_ms, uint32_t burst);

/*
 * Takes one token if there is one now. Lock-free (one CAS, retried only
 * when another thread took a token meanwhile); no allocation.
 * Returns 0 (*wait_ns, optional, = 0), or BW_ERATE_LIMITED with *wait_ns =
 * how long until a token is there (nothing taken); BW_EINVAL (NULL rl).
 */
int bw_ratelimit_try_acquire(bw_ratelimit_t *rl, uint64_t *wait_ns);

/* The same at an explicit time now_ns (the runtime's clock, or any
 * monotonic nanosecond clock used consistently): for callers that already
 * read the clock. */
int bw_ratelimit_try_acquire_at(bw_ratelimit_t *rl, uint64_t now_ns, uint64_t *wait_ns);

/*
 * Reserves one token that may lie in the future, for actors: if a token is
 * there within timeout_ms, it is reserved (no one else can take it) and
 * *wait_ns says how long the caller must wait before it uses it (0 = now;
 * an actor arms a timer with bw_ratelimit_wait_ms(*wait_ns) and goes on
 * when it fires; it must not block). If the wait would be longer than
 * timeout_ms, nothing is reserved and the call fails with *wait_ns = the
 * wait it would have needed. timeout_ms 0 is try_acquire.
 * Returns 0, BW_ERATE_LIMITED, BW_EINVAL (NULL rl or wait_ns, timeout_ms
 * above BW_RATELIMIT_MAX_PERIOD_MS).
 */
int bw_ratelimit_acquire(bw_ratelimit_t *rl, uint64_t timeout_ms, uint64_t *wait_ns);

/* Tokens available now (0..burst); 0 for NULL. A snapshot: others may take
 * them at once. */
uint32_t bw_ratelimit_available(const bw_ratelimit_t *rl);

typedef struct bw_ratelimit_stats {
  uint64_t rate, period_ms;
  uint32_t burst;
  uint32_t available; /* tokens now */
  uint64_t acquired;  /* tokens taken (try_acquire and reservations) */
  uint64_t limited;   /* refusals */
} bw_ratelimit_stats_t;

/* Fills *out (each counter exact; the set is not one snapshot while others
 * acquire). Returns 0, BW_EINVAL. */
int bw_ratelimit_stats(const bw_ratelimit_t *rl, bw_ratelimit_stats_t *out);

/* A wait in ns as whole milliseconds, rounded up (for bw_send_after). */
static inline uint64_t bw_ratelimit_wait_ms(uint64_t wait_ns) {
  return wait_ns / 1000000u + (wait_ns % 1000000u != 0);
}

#ifdef __cplusplus
}
#endif
#endif
