/*
 * bulwark: a policy, the stages of resilience around one target
 * (policy.h; the order of stages and its reasons: POLICY.md).
 *
 * This file: the handle (options, lifecycle, the counters both forms add
 * to) and the decisions both forms share (which counter a cause goes to,
 * whether a status may be retried). The executor actor is in
 * policy_executor.c, the in-caller form in policy_caller.c; the handle's
 * layout in policy_internal.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/policy.h"
#include "bulwark/runtime.h"
#include "patterns/policy_internal.h"
#include "runtime/atomic.h"

const char *bw_policy_cause_name(int cause) {
  static const char *const names[] = {"none",     "breaker",  "ratelimit", "bulkhead",
                                      "timeout",  "deadline", "budget",    "failure"};
  return cause >= 0 && cause < BW_POLICY_CAUSE__COUNT ? names[cause] : "unknown";
}

/* --- Options ----------------------------------------------------------------- */

void bw_policy_opts_init(bw_policy_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->capacity = 256;
  o->max_attempts = 1;
  o->backoff.kind = BW_RETRY_BACKOFF_EXPONENTIAL;
  o->backoff.initial_ms = 100;
  o->backoff.max_ms = 10000;
  o->backoff.multiplier = 2.0;
  bw_retry_budget_opts_init(&o->budget_opts);
  bw_breaker_opts_init(&o->breaker_opts);
  o->rate_period_ms = 1000;
  o->fallback_on = BW_POLICY_FB_ALL;
}

int bw_policy_opts_validate(const bw_policy_opts_t *o) {
  if (o == NULL)
    return BW_EINVAL;
  if ((o->target == BW_PID_NONE) == (o->target_name == NULL))
    return BW_EINVAL;
  if (o->target_name != NULL && (o->target_name[0] == '\0' || strlen(o->target_name) > BW_NAME_MAX))
    return BW_EINVAL;
  if (o->name != NULL && strlen(o->name) > BW_POLICY_NAME_MAX)
    return BW_EINVAL;
  if (o->capacity == 0 || o->capacity > BW_POLICY_CAPACITY_MAX)
    return BW_EINVAL;
  if (o->max_attempts == 0 || o->max_attempts > BW_RETRY_ATTEMPTS_MAX)
    return BW_EINVAL;
  if (bw_retry_backoff_validate(&o->backoff) != 0)
    return BW_EINVAL;
  if (o->deadline_ms > BW_POLICY_MS_MAX || o->attempt_timeout_ms > BW_POLICY_MS_MAX ||
      o->rate_wait_ms > BW_POLICY_MS_MAX || o->queue_timeout_ms > BW_POLICY_MS_MAX ||
      o->rate_period_ms > BW_POLICY_MS_MAX)
    return BW_EINVAL;
  if (o->budget && o->shared_budget == NULL) {
    const bw_retry_budget_opts_t *b = &o->budget_opts;
    /* the same bounds bw_retry_budget_init checks; !(x >= 0) catches NaN */
    if (!(b->ratio >= 0.0) || b->ratio > 1.0 || b->min_retries_per_sec > 1000000u ||
        b->window_ms < BW_RETRY_BUDGET_SLICES || b->window_ms > 3600000u)
      return BW_EINVAL;
  }
  if (o->breaker && o->shared_breaker == NULL && bw_breaker_opts_validate(&o->breaker_opts) != 0)
    return BW_EINVAL;
  /* shared pieces that were never initialised would fail every use with
   * BW_EINVAL, which the stages ignore: refuse them here instead */
  bw_retry_budget_stats_t bs;
  if (o->shared_budget != NULL && bw_retry_budget_stats(o->shared_budget, &bs) != 0)
    return BW_EINVAL;
  bw_ratelimit_stats_t rs;
  if (o->shared_limiter != NULL && bw_ratelimit_stats(o->shared_limiter, &rs) != 0)
    return BW_EINVAL;
  if (o->rate_limit && o->shared_limiter == NULL) {
    if (o->rate == 0 || o->rate_burst == 0 || o->rate_burst > BW_RATELIMIT_MAX_BURST)
      return BW_EINVAL;
    uint64_t period = o->rate_period_ms ? o->rate_period_ms : 1000;
    uint64_t period_ns = period * 1000000ull;
    if (o->rate > period_ns) /* an interval below 1 ns */
      return BW_EINVAL;
    uint64_t interval = (period_ns + o->rate - 1) / o->rate;
    if (interval > (1ull << 62) / o->rate_burst)
      return BW_EINVAL;
  }
  if ((o->max_queued > 0) != (o->queue_timeout_ms > 0))
    return BW_EINVAL;
  if (o->max_queued > BW_POLICY_CAPACITY_MAX || o->max_concurrent > BW_POLICY_CAPACITY_MAX)
    return BW_EINVAL;
  if (o->max_queued > 0 && o->max_concurrent == 0)
    return BW_EINVAL;
  if (o->fallback != NULL && o->fallback_pid != BW_PID_NONE)
    return BW_EINVAL;
  if ((o->fallback_on & ~(uint32_t)BW_POLICY_FB_ALL) != 0)
    return BW_EINVAL;
  return 0;
}

/* --- Lifecycle ----------------------------------------------------------------- */

/* The policy's own breaker: its own refusals (reported BW_ECANCELED) prove
 * nothing about the target, so they are ignored; the rest goes to the
 * user's classifier. */
static int policy_classify(int status, void *arg) {
  const bw_policy_t *p = arg;
  if (status == BW_ECANCELED)
    return BW_BREAKER_IGNORED;
  if (p->user_classify != NULL)
    return p->user_classify(status, p->user_classify_arg);
  return status == 0 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
}

int bw_policy_new(bw_runtime_t *rt, const bw_policy_opts_t *opts, bw_policy_t **out) {
  if (rt == NULL || out == NULL || bw_policy_opts_validate(opts) != 0)
    return BW_EINVAL;
  bw_policy_t *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
  if (p == NULL)
    return BW_ENOMEM;
  memset(p, 0, sizeof *p);
  p->o = *opts;
  p->rt = rt;
  snprintf(p->name, sizeof p->name, "%s", opts->name != NULL ? opts->name : "policy");
  p->o.name = p->name;
  if (opts->target_name != NULL) {
    snprintf(p->target_name, sizeof p->target_name, "%s", opts->target_name);
    p->o.target_name = p->target_name;
  }
  int rc = 0;
  if (opts->shared_budget != NULL)
    p->budget = opts->shared_budget;
  else if (opts->budget && (rc = bw_retry_budget_init(&p->own_budget, rt, &opts->budget_opts)) == 0)
    p->budget = &p->own_budget;
  if (rc == 0 && opts->shared_limiter != NULL)
    p->rl = opts->shared_limiter;
  else if (rc == 0 && opts->rate_limit &&
           (rc = bw_ratelimit_init(&p->own_rl, rt, opts->rate, opts->rate_period_ms,
                                   opts->rate_burst)) == 0)
    p->rl = &p->own_rl;
  if (rc == 0 && opts->shared_breaker != NULL) {
    p->br = opts->shared_breaker;
  } else if (rc == 0 && opts->breaker) {
    bw_breaker_opts_t bo = opts->breaker_opts;
    if (bo.name == NULL)
      bo.name = p->name;
    p->user_classify = bo.classify;
    p->user_classify_arg = bo.classify_arg;
    bo.classify = policy_classify;
    bo.classify_arg = p;
    rc = bw_breaker_new(rt, &bo, &p->own_br);
    p->br = p->own_br;
  }
  if (rc != 0) {
    free(p);
    return rc == BW_ENOMEM ? BW_ENOMEM : BW_EINVAL;
  }
  p->br_timed = p->br != NULL && bw_breaker_slow_call_ms(p->br) != 0;
  p->pid = BW_PID_NONE;
  p->started = BW_PID_NONE;
  p->magic = POLICY_MAGIC;
  *out = p;
  return 0;
}

bw_breaker_t *bw_policy_breaker(const bw_policy_t *p) {
  return p != NULL && p->magic == POLICY_MAGIC ? p->br : NULL;
}

int bw_policy_child_spec(bw_policy_t *p, const char *id, bw_child_spec_t *out) {
  if (p == NULL || p->magic != POLICY_MAGIC || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_policy_behaviour;
  out->arg = p;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

bw_pid_t bw_policy_pid(const bw_policy_t *p) {
  /* acquire: pairs with the executor's release store at the end of its init */
  return p == NULL ? BW_PID_NONE : bw__ld64_acq(&p->pid);
}

/* Executors of p alive now. acquire: pairs with the decrement (a full
 * barrier) in an executor's cleanup, which runs before its exit is reported. */
static uint32_t live_executors(const bw_policy_t *p) { return bw__ld32_acq(&p->live); }

int bw_policy_start(bw_policy_t *p, bw_pid_t *out) {
  if (p == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  if (live_executors(p) > 0)
    return BW_EALREADY;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(p->rt, &bw_policy_behaviour, p, NULL, &pid);
  if (rc != 0)
    return rc;
  p->started = pid;
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_policy_stop(bw_policy_t *p) {
  if (p == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  if (live_executors(p) == 0)
    return 0;
  bw_pid_t pid = p->started;
  if (pid == BW_PID_NONE || !bw_is_alive(p->rt, pid))
    return BW_ERUNNING; /* only executors we did not start */
  /* Refuse on a scheduler thread before anything is stopped: BW_EWOULDBLOCK
   * leaves the policy whole and running. */
  if (!bw_may_block(p->rt))
    return BW_EWOULDBLOCK;
  (void)bw_exit(p->rt, pid, BW_REASON_SHUTDOWN, 0, "policy stopped");
  int rc = bw_wait_exit(p->rt, pid, 0, NULL);
  if (rc == BW_EWOULDBLOCK)
    return rc;
  p->started = BW_PID_NONE;
  return 0;
}

int bw_policy_destroy(bw_policy_t *p) {
  if (p == NULL)
    return 0;
  if (p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  /* refused on a scheduler thread if its own breaker's actor would have to
   * be waited for, before the executor is stopped (nothing half torn down) */
  if (p->own_br != NULL && bw_is_alive(p->rt, bw_breaker_pid(p->own_br)) &&
      !bw_may_block(p->rt))
    return BW_EWOULDBLOCK;
  int rc = bw_policy_stop(p);
  if (rc == 0 && live_executors(p) > 0)
    rc = BW_ERUNNING; /* a supervised one besides ours */
  if (rc == 0 && p->own_br != NULL && (rc = bw_breaker_destroy(p->own_br)) == 0)
    p->own_br = NULL;
  if (rc != 0)
    return rc;
  p->magic = 0;
  free(p);
  return 0;
}

int bw_policy_stats(const bw_policy_t *p, bw_policy_stats_t *out) {
  if (p == NULL || out == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t ic_calls = bw__ld64_rlx(&p->ctr[C_IC_CALLS]);
  uint64_t ic_succ = bw__ld64_rlx(&p->ctr[C_IC_SUCC]);
  out->calls = bw__ld64_rlx(&p->ctr[C_CALLS]) + ic_calls;
  out->refused = bw__ld64_rlx(&p->ctr[C_REFUSED]);
  out->successes = bw__ld64_rlx(&p->ctr[C_SUCC]) + ic_succ;
  out->failures = bw__ld64_rlx(&p->ctr[C_FAIL]);
  out->rejected_breaker = bw__ld64_rlx(&p->ctr[C_BREAKER]);
  out->rejected_ratelimit = bw__ld64_rlx(&p->ctr[C_RL]);
  out->rejected_bulkhead = bw__ld64_rlx(&p->ctr[C_BH]);
  out->timeouts = bw__ld64_rlx(&p->ctr[C_TIMEOUT]);
  out->deadlines = bw__ld64_rlx(&p->ctr[C_DEADLINE]);
  out->budget_exhausted = bw__ld64_rlx(&p->ctr[C_BUDGET]);
  out->target_failures = bw__ld64_rlx(&p->ctr[C_TARGET]);
  out->fallbacks = bw__ld64_rlx(&p->ctr[C_FB]);
  out->fallback_errors = bw__ld64_rlx(&p->ctr[C_FB_ERR]);
  out->attempts = bw__ld64_rlx(&p->ctr[C_ATTEMPTS]) + ic_calls;
  out->retries = bw__ld64_rlx(&p->ctr[C_RETRIES]);
  out->queued = bw__ld64_rlx(&p->ctr[C_QUEUED]);
  out->rate_waits = bw__ld64_rlx(&p->ctr[C_RL_WAITS]);
  out->abandoned = bw__ld64_rlx(&p->ctr[C_ABANDONED]);
  uint64_t done = bw__ld64_rlx(&p->ctr[C_DONE]) + ic_succ + out->abandoned;
  out->in_flight = out->calls > done ? out->calls - done : 0;
  return 0;
}

/* --- Shared by both forms ---------------------------------------------------------- */

const int bw__policy_cause_ctr[BW_POLICY_CAUSE__COUNT] = {
    [BW_POLICY_CAUSE_NONE] = C_SUCC,          [BW_POLICY_CAUSE_BREAKER] = C_BREAKER,
    [BW_POLICY_CAUSE_RATELIMIT] = C_RL,       [BW_POLICY_CAUSE_BULKHEAD] = C_BH,
    [BW_POLICY_CAUSE_TIMEOUT] = C_TIMEOUT,    [BW_POLICY_CAUSE_DEADLINE] = C_DEADLINE,
    [BW_POLICY_CAUSE_BUDGET] = C_BUDGET,      [BW_POLICY_CAUSE_FAILURE] = C_TARGET,
};

/* Whether a failed attempt's status may be retried (both forms). A pid
 * target that is gone stays gone; a named one may be restarted. */
void bw__policy_retry_ask(const bw_policy_t *p, int status, uint32_t attempts,
                          bw_retry_backoff_state_t *bo, uint64_t deadline_at_ms,
                          bw__retry_ask *a) {
  const bw_policy_opts_t *o = &p->o;
  *a = (bw__retry_ask){.status = status,
                       .fixed_pid = o->target != BW_PID_NONE,
                       .pred = o->retryable,
                       .pred_arg = o->retryable_arg,
                       .attempts = attempts,
                       .max_attempts = o->max_attempts,
                       .backoff = &o->backoff,
                       .bo = bo,
                       .deadline_at_ms = deadline_at_ms,
                       .budget = p->budget};
}
