/*
 * bulwark: the clock. One clock per runtime, for every timer, deadline and
 * timeout: the monotonic clock, or a manual clock that only tests move.
 */
#include <time.h>

#include "runtime/internal.h"

uint64_t bw__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bw__now_ns(const bw__runtime *rt) {
  if (rt->manual_clock)
    return bw__ld64_acq(&rt->manual_now_ns);
  return bw__mono_ns() - rt->epoch_ns;
}

uint64_t bw_now_ns(const bw_runtime_t *rt) { return rt == NULL ? 0 : bw__now_ns(rt); }

uint64_t bw_now_ms(const bw_runtime_t *rt) { return bw_now_ns(rt) / 1000000ull; }

int bw_clock_advance(bw_runtime_t *rt, uint64_t ms) {
  if (rt == NULL || !rt->manual_clock)
    return BW_EINVAL;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  if (ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  pthread_mutex_lock(&rt->timers.mx);
  /* release: timers and deadline checks that read the new time see it */
  bw__st64_rel(&rt->manual_now_ns, bw__ld64_rlx(&rt->manual_now_ns) + ms * 1000000ull);
  pthread_mutex_unlock(&rt->timers.mx);
  bw__timers_fire_due(rt);
  return 0;
}

void bw__clock_init(bw__runtime *rt);
void bw__clock_init(bw__runtime *rt) {
  rt->epoch_ns = bw__mono_ns() - 1000000ull; /* time starts at 1 ms, never 0 */
  rt->manual_now_ns = 0;
}
