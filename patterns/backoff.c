/*
 * bulwark: retry delays. Pure functions over a small caller-held state: no
 * globals, no locks, no allocation, so the executor, a user loop or a
 * benchmark can all compute delays the same way.
 *
 * The formulas are those of the AWS Architecture Blog's "Exponential Backoff
 * And Jitter", with the growth factor generalised from 2 to multiplier:
 *   exponential   e(n)  = min(cap, base * multiplier^n)
 *   full jitter   rand[0, e(n)]
 *   equal jitter  e(n)/2 + rand[0, e(n) - e(n)/2]
 *   decorrelated  d = min(cap, rand[base, d_prev * multiplier]), d_0 = base
 * (Polly's DecorrelatedJitterBackoffV2 smooths the decorrelated curve with a
 * tanh-shaped median instead; it needs libm and can go below base, and the
 * AWS form's [base, cap] bound is the contract we promise, so it is not
 * offered.)
 *
 * e(n) is kept as a running product in the state rather than computed with
 * pow(): O(1) per retry, no libm, and exact for the integer products tests
 * check (doubles hold integers up to 2^53 exactly; the cap is far below).
 * It is not runtime/backoff.h's bw__backoff_exp on purpose: that one is
 * for the supervisor's and the breaker's integer multipliers, while the
 * public multiplier here is fractional (1.5 is common) and a running
 * product per sequence is O(1) per retry.
 */
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/retry.h"
#include "patterns/retry_internal.h"
#include "runtime/backoff.h"

/* The generator and the uniform draw are the runtime's (runtime/backoff.h),
 * shared with the supervisor's and the breaker's backoffs. */
uint64_t bw_retry_rand64(uint64_t *state) { return bw__rand64(state); }

int bw_retry_backoff_validate(const bw_retry_backoff_t *b) {
  if (b == NULL || b->kind < 0 || b->kind >= BW_RETRY_BACKOFF__COUNT)
    return BW_EINVAL;
  if (b->initial_ms == 0 || b->max_ms < b->initial_ms || b->max_ms > BW_RETRY_DELAY_MAX_MS)
    return BW_EINVAL;
  if (b->kind != BW_RETRY_BACKOFF_FIXED &&
      !(b->multiplier >= 1.0 && b->multiplier <= BW_RETRY_MULTIPLIER_MAX)) /* NaN fails too */
    return BW_EINVAL;
  return 0;
}

int bw_retry_backoff_start(const bw_retry_backoff_t *b, uint64_t seed,
                           bw_retry_backoff_state_t *st) {
  if (st == NULL || bw_retry_backoff_validate(b) != 0)
    return BW_EINVAL;
  memset(st, 0, sizeof *st);
  st->rng = seed;
  st->ceil_ms = (double)b->initial_ms;
  st->prev_ms = b->initial_ms;
  return 0;
}

/* e(n) for this retry, then e(n+1) kept for the next; stays at the cap once
 * there, so the product never overflows. */
static uint64_t exp_step(const bw_retry_backoff_t *b, bw_retry_backoff_state_t *st) {
  double cap = (double)b->max_ms;
  double e = st->ceil_ms < cap ? st->ceil_ms : cap;
  double next = e * b->multiplier;
  st->ceil_ms = next < cap ? next : cap;
  return (uint64_t)e; /* truncation: whole ms, never above the cap */
}

uint64_t bw_retry_backoff_next(const bw_retry_backoff_t *b, bw_retry_backoff_state_t *st) {
  uint64_t d;
  switch (b->kind) {
  case BW_RETRY_BACKOFF_FIXED:
    d = b->initial_ms;
    break;
  case BW_RETRY_BACKOFF_EXPONENTIAL:
    d = exp_step(b, st);
    break;
  case BW_RETRY_BACKOFF_FULL_JITTER:
    d = bw__rand_between(&st->rng, 0, exp_step(b, st));
    break;
  case BW_RETRY_BACKOFF_EQUAL_JITTER: {
    uint64_t e = exp_step(b, st);
    d = e / 2 + bw__rand_between(&st->rng, 0, e - e / 2);
    break;
  }
  case BW_RETRY_BACKOFF_DECORRELATED: {
    /* prev <= cap <= 1 day and multiplier <= 1000: hi < 2^37, exact */
    uint64_t hi = (uint64_t)((double)st->prev_ms * b->multiplier);
    if (hi < b->initial_ms)
      hi = b->initial_ms;
    d = bw__rand_between(&st->rng, b->initial_ms, hi);
    if (d > b->max_ms)
      d = b->max_ms;
    st->prev_ms = d;
    break;
  }
  default:
    d = b->max_ms; /* unreachable for a validated b; the safe answer */
    break;
  }
  st->retries++;
  return d;
}

/* --- the retry decision (patterns/retry_internal.h) ------------------------- */

bool bw__retry_retryable(int status, bool fixed_pid, bw_retry_pred_fn pred, void *arg) {
  if (status == BW_EINVAL || status == BW_ESHUTDOWN || (status == BW_ENOPROC && fixed_pid))
    return false;
  return pred != NULL ? pred(status, arg) : bw_retry_default_retryable(status, NULL);
}

bw__retry_verdict bw__retry_decide(const bw__retry_ask *a, uint64_t *delay_ms, int *end_status) {
  *end_status = a->status;
  if (!bw__retry_retryable(a->status, a->fixed_pid, a->pred, a->pred_arg) ||
      a->attempts >= a->max_attempts)
    return BW__RETRY_FINAL;
  if (a->bo_start)
    (void)bw_retry_backoff_start(a->backoff, a->bo_seed, a->bo);
  uint64_t delay = bw_retry_backoff_next(a->backoff, a->bo);
  if (a->deadline_at_ms != 0 && a->now_ms + delay >= a->deadline_at_ms) {
    *end_status = BW_ETIMEDOUT;
    return BW__RETRY_DEADLINE;
  }
  if (a->budget != NULL && bw_retry_budget_try_withdraw(a->budget) != 0) {
    *end_status = BW_EBUDGET;
    return BW__RETRY_BUDGET;
  }
  *delay_ms = delay;
  return BW__RETRY_AGAIN;
}
