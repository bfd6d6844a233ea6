/*
 * bulwark: the retry budget.
 *
 * Finagle's RetryBudget model: every call deposits, every retry withdraws,
 * both expire after the window, and a retry is allowed while
 *
 *   reserve + ratio * deposits - withdrawals >= 1
 *
 * over the window, with reserve = min_retries_per_sec * window. So retries
 * are at most ratio * calls + reserve per window, however many clients fail
 * at once: a storm of failing calls cannot turn into a storm of retries.
 *
 * Why a sliding window of counters rather than gRPC's token bucket (tokens
 * -1 per failure, +ratio per success, retry only above half)? The bucket's
 * state depends on outcomes and never expires, so after a long quiet spell
 * it still reflects an old storm; the window forgets on a clock, which tests
 * can drive with the manual clock, and its bound is the simple one above.
 *
 * Representation: BW_RETRY_BUDGET_SLICES slices per window; each slice's
 * deposits (and withdrawals) are one 64-bit word (slice number << 32 | count).
 * A word whose slice number is not among the last SLICES slices counts zero,
 * and the first writer in a new slice swaps it to (slice << 32 | 1) with one
 * CAS, so expiry needs no sweeper, no lock, and never mixes two slices'
 * counts. Cost: deposit = 1 CAS (plus retries under contention); withdraw =
 * 2 x SLICES relaxed loads + 1 CAS.
 *
 * All atomics here are relaxed: the counts are the only data, nothing else
 * is published through them, so no ordering with other memory is needed;
 * atomicity alone (the CAS) makes withdrawals exact.
 */
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/retry.h"
#include "bulwark/runtime.h"
#include "runtime/atomic.h"

#define BUDGET_MAGIC 0x42554447u /* "BUDG": set by init, so use of an uninitialised budget is caught */
#define PPM 1000000ull
#define WINDOW_MAX_MS 3600000ull
#define FLOOR_MAX 1000000u

void bw_retry_budget_opts_init(bw_retry_budget_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->ratio = 0.2;
  o->min_retries_per_sec = 10;
  o->window_ms = 10000;
}

int bw_retry_budget_init(bw_retry_budget_t *b, bw_runtime_t *rt, const bw_retry_budget_opts_t *o) {
  if (b == NULL || rt == NULL || o == NULL)
    return BW_EINVAL;
  if (!(o->ratio >= 0.0 && o->ratio <= 1.0)) /* NaN fails too */
    return BW_EINVAL;
  if (o->window_ms < BW_RETRY_BUDGET_SLICES || o->window_ms > WINDOW_MAX_MS ||
      o->min_retries_per_sec > FLOOR_MAX)
    return BW_EINVAL;
  memset(b, 0, sizeof *b);
  b->rt = rt;
  b->slice_ms = o->window_ms / BW_RETRY_BUDGET_SLICES;
  b->ratio_ppm = (uint64_t)(o->ratio * (double)PPM + 0.5);
  /* min/s * window_ms / 1000 retries, in millionths: < 2^62 by the bounds */
  b->reserve_ppm = (uint64_t)o->min_retries_per_sec * o->window_ms * (PPM / 1000u);
  b->magic = BUDGET_MAGIC;
  return 0;
}

static bool valid(const bw_retry_budget_t *b) { return b != NULL && b->magic == BUDGET_MAGIC; }

/* The current slice number. Words keep its low 32 bits (the distance test
 * below works modulo 2^32); the slot index comes from all 64. */
static uint64_t slice_now(const bw_retry_budget_t *b) { return bw_now_ms(b->rt) / b->slice_ms; }

/* A word's count if its slice is one of the last SLICES ones, else 0. */
static uint64_t live_count(uint64_t w, uint32_t cur) {
  uint32_t age = cur - (uint32_t)(w >> 32);
  return age < BW_RETRY_BUDGET_SLICES ? (w & 0xFFFFFFFFull) : 0;
}

/* Adds one to slot's count for slice cur, resetting a word of an older
 * slice. A count saturates at 2^32-1 (never wraps into the slice number). */
static void bump(uint64_t *slot, uint32_t cur) {
  for (;;) {
    uint64_t w = bw__ld64_rlx(slot);
    uint64_t n;
    if ((uint32_t)(w >> 32) == cur) {
      if ((w & 0xFFFFFFFFull) == 0xFFFFFFFFull)
        return;
      n = w + 1;
    } else {
      n = ((uint64_t)cur << 32) | 1u;
    }
    if (bw__cas64_rlx(slot, w, n))
      return;
  }
}

int bw_retry_budget_deposit(bw_retry_budget_t *b) {
  if (!valid(b))
    return BW_EINVAL;
  uint64_t now = slice_now(b);
  bump(&b->deposits[now % BW_RETRY_BUDGET_SLICES], (uint32_t)now);
  (void)bw__faa64_rlx(&b->total_deposits, 1);
  return 0;
}

/* Balance in millionths of a retry; *wslot_word gets the current slice's
 * withdrawal word as read, for the CAS that claims a retry. */
static int64_t balance_ppm(const bw_retry_budget_t *b, uint64_t now, uint64_t *wslot_word) {
  uint32_t cur = (uint32_t)now;
  uint64_t dep = 0, wd = 0;
  for (unsigned i = 0; i < BW_RETRY_BUDGET_SLICES; i++) {
    dep += live_count(bw__ld64_rlx(&b->deposits[i]), cur);
    uint64_t w = bw__ld64_rlx(&b->withdrawals[i]);
    if (i == now % BW_RETRY_BUDGET_SLICES && wslot_word != NULL)
      *wslot_word = w;
    wd += live_count(w, cur);
  }
  /* each term < 2^32 * SLICES * 10^6 < 2^62: no overflow */
  return (int64_t)(b->reserve_ppm + dep * b->ratio_ppm) - (int64_t)(wd * PPM);
}

int bw_retry_budget_try_withdraw(bw_retry_budget_t *b) {
  if (!valid(b))
    return BW_EINVAL;
  uint64_t now = slice_now(b);
  uint32_t cur = (uint32_t)now;
  uint64_t *slot = &b->withdrawals[now % BW_RETRY_BUDGET_SLICES];
  for (;;) {
    uint64_t w = 0;
    if (balance_ppm(b, now, &w) < (int64_t)PPM) {
      (void)bw__faa64_rlx(&b->total_refused, 1);
      return BW_EBUDGET;
    }
    uint64_t n = (uint32_t)(w >> 32) == cur ? w + 1 : ((uint64_t)cur << 32) | 1u;
    /* The CAS claims the retry only if no other withdrawal of this slice
     * happened since the balance was read: concurrent withdrawers cannot
     * both spend the last retry. A failed CAS re-reads the balance. */
    if (bw__cas64_rlx(slot, w, n)) {
      (void)bw__faa64_rlx(&b->total_withdrawals, 1);
      return 0;
    }
  }
}

int64_t bw_retry_budget_balance(const bw_retry_budget_t *b) {
  if (!valid(b))
    return 0;
  int64_t p = balance_ppm(b, slice_now(b), NULL);
  /* floor division, also for a negative balance */
  return p >= 0 ? p / (int64_t)PPM : -((-p + (int64_t)PPM - 1) / (int64_t)PPM);
}

int bw_retry_budget_stats(const bw_retry_budget_t *b, bw_retry_budget_stats_t *out) {
  if (!valid(b) || out == NULL)
    return BW_EINVAL;
  out->deposits = bw__ld64_rlx(&b->total_deposits);
  out->withdrawals = bw__ld64_rlx(&b->total_withdrawals);
  out->refused = bw__ld64_rlx(&b->total_refused);
  out->balance = bw_retry_budget_balance(b);
  return 0;
}
