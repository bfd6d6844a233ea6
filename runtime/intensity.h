/*
 * bulwark internal: restart intensity (runtime/intensity.c), the times of
 * the latest events and whether more than max of them fall within a
 * period. One copy for the supervisor's restarts (supervisor/restart.c), a
 * bulkhead's worker restarts (patterns/bulkhead_pool.c) and the health
 * monitor's restart storms (observe/health_monitor.c). Times are in the
 * caller's unit (ms or ns), the period in the same.
 *
 * The window, decided once for the three: an event at t counts while
 * now - t < period, that is for exactly period. The bulkhead and the health
 * monitor counted so; the supervisor also counted an event exactly period
 * old (OTP's rule, which OTP applies in whole seconds). An event stamped
 * after now (another thread's clock read) counts.
 *
 * Only the latest max + 1 times are kept: enough to tell "more than max".
 * The ring grows on demand up to that (a supervisor may allow a million
 * restarts and see none), or is reserved whole at init. One owner, no
 * locks.
 */
#ifndef BW_RUNTIME_INTENSITY_H
#define BW_RUNTIME_INTENSITY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct bw__intensity {
  uint64_t *t;     /* a ring of times; the oldest at (next + cap - n) % cap */
  uint64_t period;
  uint32_t max;  /* events allowed within a period */
  uint32_t cap;  /* slots allocated, <= max + 1 */
  uint32_t n;    /* times held */
  uint32_t next; /* the slot the next time goes to */
} bw__intensity;

/* max is clamped to UINT32_MAX - 1. Returns 0, or BW_ENOMEM when reserve
 * asked for the whole ring at once and it could not be allocated. */
int bw__intensity_init(bw__intensity *w, uint32_t max, uint64_t period, bool reserve);
void bw__intensity_free(bw__intensity *w);
/* Forgets every time; the ring stays allocated. */
void bw__intensity_clear(bw__intensity *w);
/* Records an event at t, dropping the oldest once max + 1 are held.
 * Returns false, recording nothing, if the ring had to grow and could not. */
bool bw__intensity_add(bw__intensity *w, uint64_t t);
/* The recorded events that count at now (at most max + 1). O(max). */
uint32_t bw__intensity_count(const bw__intensity *w, uint64_t now);
/* More than max events count at now. */
bool bw__intensity_exceeded(const bw__intensity *w, uint64_t now);

#endif
