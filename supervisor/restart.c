/*
 * bulwark: the supervisor's restarts: intensity over a sliding period
 * (escalation past it), backoff with jitter, restarts waiting out their
 * backoff on a timer of the child's own, and the restart decision when a
 * child exits or hangs (OTP's rules by restart type and strategy).
 * Starting is start.c's, stopping stop.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backoff.h"
#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- intensity and backoff ------------------------------------------------------ */

/* Records a restart; false when that makes more than `intensity` restarts
 * within the period (runtime/intensity.h: a restart counts for exactly
 * period ms). Out of memory, the restart is not recorded, as before. */
bool bw__sup_add_restart(bw_ctx_t *ctx, sup_t *s) {
  uint64_t now = bw_now_ms(bw__sup_rt_of(ctx));
  (void)bw__intensity_add(&s->rst, now);
  return !bw__intensity_exceeded(&s->rst, now);
}

uint64_t bw__sup_backoff_delay(bw_ctx_t *ctx, sup_t *s, child_t *c) {
  const bw_backoff_t *b = &s->spec->backoff;
  if (b->initial_ms == 0)
    return 0;
  uint64_t now = bw_now_ms(bw__sup_rt_of(ctx));
  if (c->last_start_ms != 0 && now - c->last_start_ms >= s->period_ms)
    c->backoff_n = 0; /* it stayed up a whole period: start over */
  uint64_t max = b->max_ms ? b->max_ms : 30000;
  uint64_t mult = b->multiplier ? b->multiplier : 2;
  uint64_t d = bw__backoff_exp(b->initial_ms, mult, c->backoff_n, max);
  c->backoff_n++;
  return bw__backoff_jitter_down(d, b->jitter_pct, &s->rng); /* runtime/backoff.h */
}

/* --- restarts waiting out a backoff --------------------------------------------- */

/* Child i (and, under one_for_all / rest_for_one, the group it heads) is
 * restarted when a timer of its own fires (BW__SUP_BACKOFF), not by a job:
 * a job at the head of the queue would hold up every later job (another
 * child's restart, the run-time API, a shutdown) for the whole delay.
 * False if no timer could be armed: the caller restarts at once. */
bool bw__sup_restart_later(bw_ctx_t *ctx, sup_t *s, uint32_t i, uint64_t d) {
  bw_timer_t t = 0;
  if (bw_send_after(bw__sup_rt_of(ctx), bw_self(ctx), d, BW__SUP_BACKOFF, NULL, 0, &t) != 0 ||
      t == 0)
    return false;
  s->ch[i].restart_timer = t;
  return true;
}

void bw__sup_restart_cancel(bw_ctx_t *ctx, child_t *c) {
  if (c->restart_timer != 0)
    bw_timer_cancel(bw__sup_rt_of(ctx), c->restart_timer);
  c->restart_timer = 0;
}

bool bw__sup_group_strategy(const sup_t *s) {
  return s->spec->strategy == BW_ONE_FOR_ALL || s->spec->strategy == BW_REST_FOR_ONE;
}

/* Where the restart of child i (and its group) starts, and whether it is
 * that child alone. */
static void restart_range(const sup_t *s, uint32_t i, uint32_t *from, bool *only_one) {
  *from = s->spec->strategy == BW_ONE_FOR_ALL ? 0 : i;
  *only_one = !bw__sup_group_strategy(s);
}

static void push_restart(sup_t *s, uint32_t i) {
  job_t *start = bw__sup_job_push(s, J_START);
  if (start == NULL)
    return;
  start->mode = MODE_RESTART;
  restart_range(s, i, &start->from, &start->only_one);
  start->cur = start->from;
}

/* A restart timer fired: its child's (group's) start joins the queue. */
void bw__sup_backoff_fired(sup_t *s, bw_timer_t t) {
  if (s->exiting)
    return;
  for (uint32_t i = 0; i < s->n; i++) {
    if (!s->ch[i].gone && s->ch[i].restart_timer == t) {
      s->ch[i].restart_timer = 0;
      push_restart(s, i);
      return;
    }
  }
}

/* Child i is deleted with its restart timer pending: that timer was the
 * group's too (the child itself was terminated during its backoff), so it
 * moves to the next child of the group still waiting for it, or is
 * cancelled when none is left. */
void bw__sup_restart_handoff(bw_ctx_t *ctx, sup_t *s, uint32_t i) {
  child_t *c = &s->ch[i];
  if (c->restart_timer == 0)
    return;
  uint32_t from = s->spec->strategy == BW_REST_FOR_ONE ? i + 1 : 0;
  for (uint32_t k = from; bw__sup_group_strategy(s) && k < s->n; k++) {
    child_t *o = &s->ch[k];
    if (k != i && !o->gone && o->state == BW_CHILD_RESTARTING && o->restart_timer == 0) {
      o->restart_timer = c->restart_timer;
      c->restart_timer = 0;
      return;
    }
  }
  bw__sup_restart_cancel(ctx, c);
}

/* The supervisor is going away: no restart is pending any more. */
void bw__sup_restarts_drop(bw_ctx_t *ctx, sup_t *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    child_t *c = &s->ch[i];
    bw__sup_restart_cancel(ctx, c);
    if (!c->gone && c->pid == BW_PID_NONE && c->state == BW_CHILD_RESTARTING)
      c->state = BW_CHILD_STOPPED;
  }
}

/* Stops everything and exits with a reason saying why (escalation). */
void bw__sup_escalate(bw_ctx_t *ctx, sup_t *s) {
  char text[BW_REASON_TEXT_MAX];
  snprintf(text, sizeof(text), "reached max restart intensity (%d in %llu ms)", (int)s->intensity,
           (unsigned long long)s->period_ms);
  /* abandon queued work: requesters learn the supervisor is going away */
  while (s->njobs > 0) {
    job_t *j = &s->jobs[0];
    if (j->has_req) {
      j->has_err = false;
      bw__sup_reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
    }
    bw__sup_job_pop(ctx, s);
  }
  bw__sup_restarts_drop(ctx, s);
  job_t *x = bw__sup_job_push(s, J_EXIT);
  if (x != NULL)
    bw__sup_reason_set(&x->reason, BW_REASON_CRASH, BW_ELIMIT, text);
  s->exiting = true;
  bw_reason_t r;
  bw__sup_reason_set(&r, BW_REASON_CRASH, BW_ELIMIT, text);
  bw__sup_event(ctx, s, BW_EV_SUP_ESCALATED, NULL, bw_self(ctx), &r,
                bw__intensity_count(&s->rst, bw_now_ms(bw__sup_rt_of(ctx))),
                (int64_t)s->period_ms);
}

/* --- restart decisions --------------------------------------------------------- */

void bw__sup_child_exited(bw_ctx_t *ctx, sup_t *s, uint32_t i, const bw_reason_t *r) {
  child_t *c = &s->ch[i];
  c->pid = BW_PID_NONE;
  bool abnormal = bw_reason_is_abnormal(r);
  if (c->spec->restart == BW_TEMPORARY) {
    c->gone = true;
    return;
  }
  if (s->exiting || (c->spec->restart == BW_TRANSIENT && !abnormal)) {
    c->state = BW_CHILD_STOPPED;
    if (c->dynamic)
      c->gone = true;
    return;
  }
  c->state = BW_CHILD_RESTARTING;
  c->restarts++;
  if (!bw__sup_add_restart(ctx, s)) {
    bw__sup_escalate(ctx, s);
    return;
  }
  uint64_t d = bw__sup_backoff_delay(ctx, s, c);
  bw__sup_restart_cancel(ctx, c);
  if (bw__sup_group_strategy(s)) {
    uint32_t from = s->spec->strategy == BW_REST_FOR_ONE ? i + 1 : 0;
    /* this group restart takes over the restarts its members were
     * waiting for (a sibling's backoff, a failed start's retry): they
     * come back with the group, after this child's backoff */
    for (uint32_t k = from; k < s->n; k++)
      bw__sup_restart_cancel(ctx, &s->ch[k]);
    job_t *stop = bw__sup_job_push(s, J_STOP);
    if (stop == NULL)
      return;
    stop->target = BW_CHILD_RESTARTING;
    bw__sup_stop_list_build(s, stop, from, (int)i);
  }
  /* the backoff is a timer of this child's: the stop above runs now, the
   * restart joins the queue when the timer fires */
  if (d > 0 && bw__sup_restart_later(ctx, s, i, d))
    return;
  push_restart(s, i);
}

/* The watchdog reports child i hung. With hang_is_crash: kill it (effective
 * when its handler returns; its exit is then ignored) and restart it now. */
void bw__sup_child_hung(bw_ctx_t *ctx, sup_t *s, const bw_hang_t *h) {
  int i = bw__sup_find_pid(s, h->pid);
  if (i < 0)
    return;
  child_t *c = &s->ch[i];
  /* the event, with the child's id and how long its handler has run */
  bw__sup_event(ctx, s, BW_EV_WATCHDOG_HUNG, c, h->pid, NULL, (int64_t)(h->running_ms * 1000000ull),
            (int64_t)h->limit_ms);
  if (!c->spec->hang_is_crash || s->exiting)
    return;
  bw__sup_ignore_add(s, c->pid);
  bw_exit(bw__sup_rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
  if (c->spec->name != NULL)
    bw_unregister(bw__sup_rt_of(ctx), c->spec->name); /* for the replacement */
  bw_reason_t r;
  char text[BW_REASON_TEXT_MAX];
  snprintf(text, sizeof(text), "hung: handler ran %llu ms (limit %llu ms)",
           (unsigned long long)h->running_ms, (unsigned long long)h->limit_ms);
  bw__sup_reason_set(&r, BW_REASON_CRASH, BW_ETIMEDOUT, text);
  bw__sup_event(ctx, s, BW_EV_CHILD_EXITED, c, h->pid, &r, 0, 0);
  bw__sup_child_exited(ctx, s, (uint32_t)i, &r);
}
