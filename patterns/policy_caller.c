/*
 * bulwark: the policy's in-caller form, bw_policy_enter / bw_policy_exit
 * (policy.h; POLICY.md, "Two forms").
 *
 * The executor's stages, run by the caller on its ticket. A ticket is
 * IDLE (no request, or the last one is over), WAIT (a request started,
 * between attempts: the caller comes back after retry_in_ms) or IN (an
 * attempt enter let through; exit ends it). Everything a ticket holds
 * (permit, slot) is held only in IN; a reserved token (token_held) is not
 * given back, it is spent.
 *
 * The handle, and the classification and counters shared with the
 * executor (policy_executor.c), are in policy.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/policy.h"
#include "bulwark/runtime.h"
#include "patterns/policy_internal.h"
#include "runtime/atomic.h"

#define TICKET_MAGIC 0x54494B54u /* "TIKT" */

enum { T_IDLE = 0, T_WAIT, T_IN };

void bw_policy_ticket_init(bw_policy_ticket_t *t) {
  if (t == NULL)
    return;
  /* not the answer's payload: 192 bytes nobody reads until fallback_used */
  memset(t, 0, offsetof(bw_policy_ticket_t, answer));
  memset(&t->priv_, 0, sizeof t->priv_);
  t->answer.status = 0;
  t->answer.type = 0;
  t->answer.len = 0;
  t->priv_.magic = TICKET_MAGIC;
}

static void t_permit_cancel(bw_policy_t *p, bw_policy_ticket_t *t) {
  if (t->priv_.permit_held) {
    t->priv_.permit_held = false;
    (void)bw_breaker_report_ns(p->br, &t->priv_.permit, BW_ECANCELED, 0);
  }
}

/* The request is over: counts it, gives the fallback function its chance
 * (into t->answer). Returns status, the request's own. */
static int t_end(bw_policy_t *p, bw_policy_ticket_t *t, int status, int cause) {
  const bw_policy_opts_t *o = &p->o;
  t->priv_.state = T_IDLE;
  t->cause = cause;
  if (status == 0) {
    bw__policy_count(p, C_IC_SUCC); /* a success and its end: one add (see the enum) */
    return 0;
  }
  bw__policy_count(p, C_FAIL);
  bw__policy_count(p, C_DONE);
  bw__policy_count(p, bw__policy_cause_ctr[cause]);
  if ((o->fallback_on & BW_POLICY_FB(cause)) == 0)
    return status;
  if (o->fallback_pid != BW_PID_NONE) {
    t->fallback_pid = o->fallback_pid; /* the caller forwards, if it wants to */
    return status;
  }
  if (o->fallback == NULL)
    return status;
  bw_policy_answer_t *a = &t->answer;
  a->status = status;
  a->type = 0;
  a->len = 0;
  bw_msg_t empty;
  const bw_msg_t *req = t->req;
  if (req == NULL) {
    memset(&empty, 0, sizeof empty);
    req = &empty;
  }
  if (o->fallback(status, cause, req, a, o->fallback_arg) == 0 && a->len <= BW_MSG_INLINE_MAX) {
    bw__policy_count(p, C_FB);
    t->fallback_used = true;
  } else {
    a->status = status;
    a->type = 0;
    a->len = 0;
  }
  return status;
}

/* An attempt, or a refusal in front of one, failed: a retry after a
 * backoff if everything allows it (the executor's failed()). */
static int t_failed(bw_policy_t *p, bw_policy_ticket_t *t, int status, int cause, uint64_t now_ns) {
  bw__retry_ask a;
  bw__policy_retry_ask(p, status, t->attempts, &t->priv_.bo, t->priv_.deadline_at_ms, &a);
  a.now_ms = now_ns / 1000000u;
  if (t->attempts == 1) {
    /* the backoff sequence starts at the first retry: a request that never
     * retries (the hot path) pays nothing for it. The seed only needs to
     * differ between tickets and requests. */
    uint64_t seed = (p->o.seed != 0 ? p->o.seed : now_ns) ^ (uint64_t)(uintptr_t)t;
    a.bo_start = true;
    a.bo_seed = bw_retry_rand64(&seed);
  }
  uint64_t delay = 0;
  int fin = status;
  switch (bw__retry_decide(&a, &delay, &fin)) { /* the one decision: retry_internal.h */
  case BW__RETRY_FINAL:
    return t_end(p, t, status, cause);
  case BW__RETRY_DEADLINE: /* no attempt could start in time */
    return t_end(p, t, fin, BW_POLICY_CAUSE_DEADLINE);
  case BW__RETRY_BUDGET:
    return t_end(p, t, fin, BW_POLICY_CAUSE_BUDGET);
  case BW__RETRY_AGAIN:
    break;
  }
  bw__policy_count(p, C_RETRIES);
  t->retry_in_ms = delay;
  t->wait_ns = 0;
  t->priv_.state = T_WAIT;
  return BW_POLICY_RETRY;
}

/* Takes a place among max_concurrent: a CAS loop rather than add-then-undo,
 * so a refused caller never makes a concurrent one see the limit full.
 * Relaxed: the counter guards a number, not data. Retried only when
 * another caller changed it meanwhile. */
static bool slot_take(bw_policy_t *p) {
  uint32_t max = p->o.max_concurrent;
  uint32_t v = bw__ld32_rlx(&p->active);
  for (;;) {
    if (v >= max)
      return false;
    if (bw__cas32_rlx(&p->active, v, v + 1))
      return true;
    v = bw__ld32_rlx(&p->active);
  }
}

int bw_policy_enter(bw_policy_t *p, bw_policy_ticket_t *t) {
  if (p == NULL || t == NULL || p->magic != POLICY_MAGIC || t->priv_.magic != TICKET_MAGIC ||
      t->priv_.state == T_IN)
    return BW_EINVAL;
  const bw_policy_opts_t *o = &p->o;
  uint64_t now_ns = bw_now_ns(p->rt);
  uint64_t now = now_ns / 1000000u; /* bw_now_ms's own arithmetic: the same clock */
  if (t->priv_.state == T_IDLE) {
    /* a new request: the executor's arrive() */
    t->attempts = 0;
    t->cause = BW_POLICY_CAUSE_NONE;
    t->fallback_used = false;
    t->fallback_pid = BW_PID_NONE;
    t->answer.status = 0;
    t->answer.type = 0;
    t->answer.len = 0;
    t->priv_.deadline_at_ms = o->deadline_ms ? now + o->deadline_ms : 0;
    t->priv_.token_held = false;
    t->priv_.state = T_WAIT;
    bw__policy_count(p, C_IC_CALLS); /* the call and its first attempt, below */
    if (p->budget != NULL)
      (void)bw_retry_budget_deposit(p->budget);
  }
  t->retry_in_ms = 0;
  t->wait_ns = 0;
  t->deadline_ns = 0;
  t->timeout_ms = 0;
  uint64_t deadline = t->priv_.deadline_at_ms;
  if (deadline != 0 && now >= deadline) {
    t->priv_.token_held = false;
    return t_end(p, t, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE);
  }
  /* back from a token wait: the same attempt, its token already reserved */
  bool waited = t->priv_.token_held;
  t->priv_.token_held = false;
  if (!waited && ++t->attempts > 1)
    bw__policy_count(p, C_ATTEMPTS); /* the first is in C_IC_CALLS */
  if (p->br != NULL) {
    if (bw_breaker_acquire(p->br, &t->priv_.permit) != 0)
      return t_failed(p, t, BW_ECIRCUIT_OPEN, BW_POLICY_CAUSE_BREAKER, now_ns);
    t->priv_.permit_held = true;
  }
  if (p->rl != NULL && !waited) {
    uint64_t wait = o->rate_wait_ms;
    if (deadline != 0 && deadline - now < wait)
      wait = deadline - now;
    uint64_t wait_ns = 0;
    /* no wait allowed and the limiter on our clock: take the token at the
     * time already read (the same as acquire with no wait, one clock read
     * fewer) */
    int rrc = wait == 0 && p->rl->rt == p->rt
                  ? bw_ratelimit_try_acquire_at(p->rl, now_ns, &wait_ns)
                  : bw_ratelimit_acquire(p->rl, wait, &wait_ns);
    if (rrc != 0) {
      t_permit_cancel(p, t);
      return t_failed(p, t, BW_ERATE_LIMITED, BW_POLICY_CAUSE_RATELIMIT, now_ns);
    }
    if (wait_ns > 0) {
      /* the token is reserved: come back for it, holding nothing else */
      t_permit_cancel(p, t);
      t->priv_.token_held = true;
      t->wait_ns = wait_ns;
      t->retry_in_ms = bw_ratelimit_wait_ms(wait_ns);
      bw__policy_count(p, C_RL_WAITS);
      return BW_POLICY_RETRY;
    }
  }
  if (o->max_concurrent != 0) {
    if (!slot_take(p)) {
      t_permit_cancel(p, t);
      return t_failed(p, t, BW_EBULKHEAD_FULL, BW_POLICY_CAUSE_BULKHEAD, now_ns);
    }
    t->priv_.slot_held = true;
  }
  uint64_t timeout = o->attempt_timeout_ms;
  if (deadline != 0 && (timeout == 0 || deadline - now < timeout))
    timeout = deadline - now; /* > 0: checked above */
  t->timeout_ms = timeout;
  t->deadline_ns = timeout != 0 ? now_ns + timeout * 1000000u : 0;
  t->priv_.start_ns = now_ns;
  t->priv_.state = T_IN;
  return 0;
}

int bw_policy_exit(bw_policy_t *p, bw_policy_ticket_t *t, int status, uint64_t *retry_in_ms) {
  if (p == NULL || t == NULL || p->magic != POLICY_MAGIC || t->priv_.magic != TICKET_MAGIC ||
      t->priv_.state != T_IN)
    return BW_EINVAL;
  if (status == BW_POLICY_RETRY)
    status = BW_EINVAL; /* reserved: a final, unretried failure, never echoed back */
  /* The clock only when something needs it: the breaker's slow-call
   * detection, or a failure (the deadline, the backoff). A success on a
   * breaker without detection reads no clock at all. */
  uint64_t now_ns = p->br_timed || status != 0 ? bw_now_ns(p->rt) : t->priv_.start_ns;
  uint64_t now = now_ns / 1000000u;
  if (t->priv_.permit_held) {
    t->priv_.permit_held = false;
    (void)bw_breaker_report_ns(p->br, &t->priv_.permit, status, now_ns - t->priv_.start_ns);
  }
  if (t->priv_.slot_held) {
    t->priv_.slot_held = false;
    /* relaxed, as slot_take's CAS */
    (void)bw__faa32_rlx(&p->active, UINT32_MAX); /* - 1 */
  }
  t->priv_.state = T_WAIT;
  int rc;
  if (status == 0)
    rc = t_end(p, t, 0, BW_POLICY_CAUSE_NONE);
  else if (status == BW_ETIMEDOUT && t->priv_.deadline_at_ms != 0 && now >= t->priv_.deadline_at_ms)
    rc = t_end(p, t, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE);
  else
    rc = t_failed(p, t, status,
                  status == BW_ETIMEDOUT ? BW_POLICY_CAUSE_TIMEOUT : BW_POLICY_CAUSE_FAILURE, now_ns);
  if (retry_in_ms != NULL)
    *retry_in_ms = rc == BW_POLICY_RETRY ? t->retry_in_ms : 0;
  return rc;
}

