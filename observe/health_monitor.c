/*
 * bulwark: the health monitor actor (see observe/HEALTH.md, "A round" and
 * "Transitions and signals"): judges components, sends signals, runs rounds
 * and handles answers, deadlines and events. Recovery actions and the
 * helper actors are in health_recovery.c, the event recorder in
 * health_recorder.c, the published snapshot in health_snapshot.c, the
 * handle in health.c.
 */
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/health.h"
#include "bulwark/message.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "observe/health_internal.h"
#include "runtime/atomic.h"

/* --- the monitor: signals and transitions ------------------------------------------------- */

void bw__health_signal_all(hm_actor_t *a, int kind, int cause, int from, int to,
                           const char *comp, const char *reason) {
  bw_health_t *h = a->h;
  bw_health_signal_t sg;
  memset(&sg, 0, sizeof sg);
  sg.kind = kind;
  sg.cause = cause;
  sg.from = from;
  sg.to = to;
  sg.time_ms = bw_now_ms(h->rt);
  bw__health_copy_text(sg.component, sizeof sg.component, comp);
  bw__health_copy_text(sg.reason, sizeof sg.reason, reason);
  for (uint32_t i = 0; i < h->subs.cap; i++) {
    bw_pid_t p = bw__subs_at(&h->subs, i, NULL);
    if (p == BW_PID_NONE)
      continue;
    int rc = bw_send(h->rt, p, BW_HEALTH_MSG_SIGNAL, &sg, sizeof sg);
    if (rc == BW_ENOPROC)
      bw__subs_drop(&h->subs, i, p);
    else if (rc == 0)
      bw__health_inc(&h->m.signals);
  }
}

static int cause_of(int kind, bool worse) {
  switch (kind) {
  case BW_HEALTH_KIND_BREAKER:
    return worse ? BW_HEALTH_CAUSE_BREAKER_OPENED : BW_HEALTH_CAUSE_BREAKER_CLOSED;
  case BW_HEALTH_KIND_BULKHEAD:
    return worse ? BW_HEALTH_CAUSE_BULKHEAD_REJECTING : BW_HEALTH_CAUSE_BULKHEAD_RECOVERED;
  default:
    return worse ? BW_HEALTH_CAUSE_COMPONENT_FELL : BW_HEALTH_CAUSE_COMPONENT_RECOVERED;
  }
}

/* Sets component i's judgement; a change of status is a transition (since,
 * a signal, the recovery clock). */
static void set_status(hm_actor_t *a, uint32_t i, int32_t status, const char *reason) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  const char *r = reason != NULL ? reason : "";
  if (status == c->status) {
    if (strncmp(c->reason, r, sizeof c->reason - 1) != 0) {
      bw__health_copy_text(c->reason, sizeof c->reason, r);
      h->dirty = true;
    }
    return;
  }
  int32_t from = c->status;
  uint64_t now = bw_now_ms(h->rt);
  c->status = status;
  c->since_ms = now;
  bw__health_copy_text(c->reason, sizeof c->reason, r);
  if (status == BW_HEALTH_UNHEALTHY)
    c->next_action_ms = now + h->comps[i].d.action_after_ms;
  h->dirty = true;
  bw__health_inc(&h->m.transitions);
  bool worse = status > from;
  bw__health_signal_all(a, worse ? BW_HEALTH_PAIN : BW_HEALTH_PLEASURE,
                        cause_of(h->comps[i].d.kind, worse), from, status, h->comps[i].name,
                        c->reason);
}

/* After each message: the aggregate, its transition, and a new snapshot if
 * anything changed. */
static void settle(hm_actor_t *a) {
  bw_health_t *h = a->h;
  if (!h->dirty)
    return;
  int32_t worst = BW_HEALTH_HEALTHY;
  uint32_t wi = UINT32_MAX;
  for (uint32_t i = 0; i < h->seen; i++) {
    if (h->st[i].status > worst) {
      worst = h->st[i].status;
      wi = i;
    }
  }
  if (worst != h->agg) {
    int32_t from = h->agg;
    h->agg = worst;
    h->agg_since = bw_now_ms(h->rt);
    bw__health_inc(&h->m.aggregate_transitions);
    char why[BW_HEALTH_REASON_MAX];
    if (wi != UINT32_MAX)
      bw__health_fmt_text(why, sizeof why, "%s: %s", h->comps[wi].name, h->st[wi].reason);
    else
      bw__health_copy_text(why, sizeof why, "all components healthy");
    if (bw_event_wanted(h->rt, BW_EV_HEALTH_CHANGED)) {
      bw_event_t ev;
      memset(&ev, 0, sizeof ev);
      ev.type = BW_EV_HEALTH_CHANGED;
      ev.source = bw_self(a->ctx);
      ev.subject = bw_self(a->ctx);
      ev.a = from;
      ev.b = worst;
      bw_event_set_names(&ev, h->name, wi != UINT32_MAX ? h->comps[wi].name : NULL, why);
      bw_event_publish(h->rt, &ev);
    }
    bool worse = worst > from;
    bw__health_signal_all(a, worse ? BW_HEALTH_PAIN : BW_HEALTH_PLEASURE,
                          worse ? BW_HEALTH_CAUSE_HEALTH_FELL : BW_HEALTH_CAUSE_HEALTH_RECOVERED,
                          from, worst, "", why);
  }
  if (bw__health_publish(h, h->seen))
    h->dirty = false;
}

/* --- the monitor: checks ----------------------------------------------------------------------- */

bw_pid_t bw__health_resolve(const comp_t *c, bw_runtime_t *rt) {
  if (c->d.target_name == NULL)
    return c->d.pid;
  bw_pid_t p = BW_PID_NONE;
  return bw_whereis(rt, c->d.target_name, &p) == 0 ? p : BW_PID_NONE;
}

static void unhealthy_code(hm_actor_t *a, uint32_t i, int rc) {
  set_status(a, i, BW_HEALTH_UNHEALTHY,
             rc == BW_ENOPROC || rc == BW_ENOTFOUND ? "not running" : bw_strerror(rc));
}

/* actor and bulkhead: one request in flight at most */
static void request(hm_actor_t *a, uint32_t i) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  const comp_t *d = &h->comps[i];
  if (c->pending)
    return; /* its own deadline settles it */
  c->probes++;
  bw_pid_t pid = bw__health_resolve(d, h->rt);
  if (pid == BW_PID_NONE) {
    c->judged_seq = c->probes;
    unhealthy_code(a, i, BW_ENOPROC);
    return;
  }
  if (pid != c->target_pid)
    c->bh_have = false; /* a new pool: its counters start over */
  c->target_pid = pid;
  uint32_t type = d->d.kind == BW_HEALTH_KIND_ACTOR ? BW_HEALTH_MSG_CHECK : BW_BULKHEAD_STATS;
  int rc = bw_request(a->ctx, pid, type, NULL, 0, d->d.timeout_ms, &c->ref);
  bw__health_inc(&h->m.checks);
  if (rc != 0) {
    c->judged_seq = c->probes;
    unhealthy_code(a, i, rc);
    return;
  }
  c->pending = true;
  c->pending_seq = c->probes;
}

static void run_check(hm_actor_t *a, uint32_t i) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  if (c->running && !(c->overrun && !bw_is_alive(h->rt, c->helper))) {
    if (c->overrun)
      bw__health_inc(&h->m.overruns);
    return; /* not started again until it has returned */
  }
  if (c->helper == BW_PID_NONE || !bw_is_alive(h->rt, c->helper))
    bw__health_spawn_helper(a, &c->helper);
  if (c->helper == BW_PID_NONE) {
    set_status(a, i, BW_HEALTH_UNHEALTHY, "no helper thread");
    return;
  }
  hm_run_t r = {i, ++c->seq};
  int rc = bw_send(h->rt, c->helper, HM_RUN, &r, sizeof r);
  bw__health_inc(&h->m.checks);
  if (rc != 0) {
    unhealthy_code(a, i, rc);
    return;
  }
  c->running = true;
  c->overrun = false;
  c->deadline = 0;
  bw_send_after(h->rt, bw_self(a->ctx), h->comps[i].d.timeout_ms, HM_DEADLINE, &r, sizeof r,
                &c->deadline);
}

static void poll_breaker(hm_actor_t *a, uint32_t i) {
  const bw_health_component_t *d = &a->h->comps[i].d;
  switch (bw_breaker_state(d->breaker)) {
  case BW_BREAKER_OPEN:
    set_status(a, i, d->open_status, "open");
    break;
  case BW_BREAKER_HALF_OPEN:
    set_status(a, i, d->half_open_status, "half_open");
    break;
  case BW_BREAKER_FORCED_OPEN:
    set_status(a, i, d->forced_open_status, "forced_open");
    break;
  default:
    set_status(a, i, BW_HEALTH_HEALTHY, "");
    break;
  }
}

static void eval_restarts(hm_actor_t *a, uint32_t i, uint64_t now) {
  bw_health_t *h = a->h;
  uint32_t in = bw__intensity_count(&h->rst, now);
  if (in > h->cfg.restart_limit) {
    char why[BW_HEALTH_REASON_MAX];
    bw__health_fmt_text(why, sizeof why, "%u restarts in %llu ms, last %s", in,
                        (unsigned long long)h->cfg.restart_window_ms, h->rst_last);
    set_status(a, i, BW_HEALTH_DEGRADED, why);
  } else {
    set_status(a, i, BW_HEALTH_HEALTHY, "");
  }
}

static void expire_hold(hm_actor_t *a, uint32_t i, uint64_t now) {
  if (a->h->st[i].status != BW_HEALTH_HEALTHY && now >= a->h->st[i].until_ms)
    set_status(a, i, BW_HEALTH_HEALTHY, "");
}

/* --- the monitor: rounds and messages ------------------------------------------------------- */

/* Picks up components added since the last look. */
static void pick_up(hm_actor_t *a) {
  bw_health_t *h = a->h;
  /* acquire: pairs with bw_health_add's release; the descriptors are complete */
  uint32_t n = bw__ld32_acq(&h->ncomp);
  uint64_t now = bw_now_ms(h->rt);
  for (uint32_t i = h->seen; i < n; i++) {
    cst_t *c = &h->st[i];
    /* the helper and the run sequence outlive an incarnation: a result of
     * a predecessor's run must not pass for one of ours */
    bw_pid_t helper = c->helper;
    uint32_t seq = c->seq;
    memset(c, 0, sizeof *c);
    c->helper = helper;
    c->seq = seq;
    c->status = BW_HEALTH_HEALTHY;
    c->since_ms = now;
    bw__health_copy_text(c->reason, sizeof c->reason, i < h->nbuiltin ? "" : "not checked yet");
    h->dirty = true;
  }
  h->seen = n;
}

static void round_(hm_actor_t *a) {
  bw_health_t *h = a->h;
  bw__health_inc(&h->m.rounds);
  pick_up(a);
  uint64_t now = bw_now_ms(h->rt);
  for (uint32_t i = 0; i < h->seen; i++) {
    bw__health_recover(a, i, now);
    switch (h->comps[i].d.kind) {
    case BW_HEALTH_KIND_ACTOR:
    case BW_HEALTH_KIND_BULKHEAD:
      request(a, i);
      break;
    case BW_HEALTH_KIND_CHECK:
      run_check(a, i);
      break;
    case BW_HEALTH_KIND_BREAKER:
      poll_breaker(a, i);
      break;
    case BW_HEALTH_KIND_RESTARTS:
      eval_restarts(a, i, now);
      break;
    default:
      expire_hold(a, i, now);
      break;
    }
  }
}

static uint32_t find_builtin(const bw_health_t *h, int kind) {
  for (uint32_t i = 0; i < h->nbuiltin; i++)
    if ((int)h->comps[i].d.kind == kind)
      return i;
  return UINT32_MAX;
}

/* A bus event: live (counted in events) or replayed by the recorder to a
 * new incarnation (the restart ring is rebuilt from the replay, with the
 * events' own times, so the window is judged as if nobody had restarted). */
static void on_event(hm_actor_t *a, const bw_event_t *ev, bool live) {
  bw_health_t *h = a->h;
  if (live)
    bw__health_inc(&h->m.events);
  uint64_t t = ev->time_ns / 1000000ull, now = bw_now_ms(h->rt);
  uint32_t i;
  char why[BW_HEALTH_REASON_MAX];
  switch (ev->type) {
  case BW_EV_CHILD_RESTARTED:
    if ((i = find_builtin(h, BW_HEALTH_KIND_RESTARTS)) == UINT32_MAX)
      return;
    (void)bw__intensity_add(&h->rst, t); /* reserved at create: cannot fail */
    bw__health_fmt_text(h->rst_last, sizeof h->rst_last, "%.24s/%.24s", ev->source_name,
                        ev->subject_id);
    eval_restarts(a, i, now);
    break;
  case BW_EV_SUP_ESCALATED:
    if ((i = find_builtin(h, BW_HEALTH_KIND_ESCALATIONS)) == UINT32_MAX ||
        t + h->cfg.escalation_hold_ms <= now)
      return; /* (a replayed one whose hold is over says nothing now) */
    h->st[i].until_ms = t + h->cfg.escalation_hold_ms;
    bw__health_fmt_text(why, sizeof why, "supervisor %.31s escalated", ev->source_name);
    set_status(a, i, BW_HEALTH_UNHEALTHY, why);
    expire_hold(a, i, now);
    break;
  case BW_EV_WATCHDOG_HUNG:
    if ((i = find_builtin(h, BW_HEALTH_KIND_WATCHDOG)) == UINT32_MAX ||
        t + h->cfg.hang_hold_ms <= now)
      return;
    h->st[i].until_ms = t + h->cfg.hang_hold_ms;
    if (ev->subject_id[0] != '\0')
      bw__health_fmt_text(why, sizeof why, "%.31s hung (%lld ms)", ev->subject_id,
                          (long long)(ev->a / 1000000));
    else
      bw__health_fmt_text(why, sizeof why, "actor %llu hung (%lld ms)",
                          (unsigned long long)ev->subject, (long long)(ev->a / 1000000));
    set_status(a, i, h->cfg.hang_status, why);
    expire_hold(a, i, now);
    break;
  case BW_EV_BREAKER_STATE:
    /* react at once rather than at the next round */
    for (i = h->nbuiltin; i < h->seen; i++)
      if (h->comps[i].d.kind == BW_HEALTH_KIND_BREAKER)
        poll_breaker(a, i);
    break;
  default:
    break;
  }
}

static uint32_t find_pending(const bw_health_t *h, uint64_t ref) {
  for (uint32_t i = h->nbuiltin; i < h->seen; i++)
    if (h->st[i].pending && h->st[i].ref == ref)
      return i;
  return UINT32_MAX;
}

static void on_reply(hm_actor_t *a, const bw_msg_t *msg) {
  bw_health_t *h = a->h;
  uint32_t i = find_pending(h, msg->ref);
  if (i == UINT32_MAX)
    return;
  cst_t *c = &h->st[i];
  const comp_t *d = &h->comps[i];
  c->pending = false;
  c->judged_seq = c->pending_seq;
  bw__health_inc(&h->m.answers);
  if (d->d.kind == BW_HEALTH_KIND_ACTOR) {
    if (msg->status != 0) {
      unhealthy_code(a, i, msg->status);
    } else if (msg->type == BW_HEALTH_MSG_ANSWER && msg->len == sizeof(bw_health_answer_t)) {
      bw_health_answer_t ans;
      memcpy(&ans, msg->data, sizeof ans);
      ans.reason[sizeof ans.reason - 1] = '\0';
      set_status(a, i, bw__health_status_ok(ans.status) ? ans.status : BW_HEALTH_UNHEALTHY,
                 ans.reason);
    } else {
      set_status(a, i, BW_HEALTH_HEALTHY, "");
    }
    return;
  }
  bw_bulkhead_stats_t m;
  int rc = bw_bulkhead_stats_from_reply(msg, &m);
  if (rc != 0) {
    unhealthy_code(a, i, rc);
    return;
  }
  bool rejecting = c->bh_have && m.rejected > c->bh_rejected;
  uint64_t fresh = rejecting ? m.rejected - c->bh_rejected : 0;
  c->bh_have = true;
  c->bh_rejected = m.rejected;
  bool deep = m.queue_capacity > 0 && (double)m.queued > d->d.queue_fraction * m.queue_capacity;
  char why[BW_HEALTH_REASON_MAX];
  if (rejecting)
    bw__health_fmt_text(why, sizeof why, "rejecting (%llu since last check)",
                        (unsigned long long)fresh);
  else if (deep)
    bw__health_fmt_text(why, sizeof why, "queue %u of %u", m.queued, m.queue_capacity);
  set_status(a, i, rejecting || deep ? BW_HEALTH_DEGRADED : BW_HEALTH_HEALTHY,
             rejecting || deep ? why : "");
}

static void on_request_timeout(hm_actor_t *a, const bw_msg_t *msg) {
  uint32_t i = find_pending(a->h, msg->ref);
  if (i == UINT32_MAX)
    return;
  a->h->st[i].pending = false;
  a->h->st[i].judged_seq = a->h->st[i].pending_seq;
  bw__health_inc(&a->h->m.timeouts);
  set_status(a, i, BW_HEALTH_UNHEALTHY, "timeout");
}

static void on_check_done(hm_actor_t *a, const hm_done_t *d) {
  bw_health_t *h = a->h;
  if (d->idx >= h->seen || h->comps[d->idx].d.kind != BW_HEALTH_KIND_CHECK)
    return;
  cst_t *c = &h->st[d->idx];
  if (!c->running || d->seq != c->seq)
    return;
  c->running = false;
  if (c->overrun) {
    bw__health_inc(&h->m.late);
    return; /* reported unhealthy at its deadline; the next round runs it again */
  }
  if (c->deadline != 0)
    bw_timer_cancel(h->rt, c->deadline);
  c->deadline = 0;
  bw__health_inc(&h->m.answers);
  char reason[BW_HEALTH_REASON_MAX];
  memcpy(reason, d->reason, sizeof reason);
  reason[sizeof reason - 1] = '\0';
  if (d->rc < 0)
    set_status(a, d->idx, BW_HEALTH_UNHEALTHY, reason[0] ? reason : bw_strerror(d->rc));
  else if (bw__health_status_ok(d->rc))
    set_status(a, d->idx, d->rc, reason);
  else
    set_status(a, d->idx, BW_HEALTH_UNHEALTHY, "check returned an unknown status");
}

static void on_check_deadline(hm_actor_t *a, const hm_run_t *r) {
  bw_health_t *h = a->h;
  if (r->idx >= h->seen)
    return;
  cst_t *c = &h->st[r->idx];
  if (!c->running || c->overrun || r->seq != c->seq)
    return;
  c->overrun = true;
  c->deadline = 0;
  bw__health_inc(&h->m.timeouts);
  set_status(a, r->idx, BW_HEALTH_UNHEALTHY, "timeout");
}

/* --- the behaviour ------------------------------------------------------------------------------ */

static int hm_init(bw_ctx_t *ctx, void *state, void *arg) {
  hm_actor_t *a = state;
  bw_health_t *h = arg;
  if (h == NULL || h->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_health_pid(h);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(h->rt, old))
    return BW_EALREADY; /* one monitor per handle */
  a->h = h;
  a->ctx = ctx;
  /* a predecessor that was killed left its interval timer running */
  if (h->tick_timer != 0)
    (void)bw_timer_cancel(h->rt, h->tick_timer);
  h->tick_timer = 0;
  /* statuses start afresh (the restart ring too: the recorder's replay
   * rebuilds it); components, subscribers and counters stay */
  h->seen = 0;
  bw__intensity_clear(&h->rst);
  h->rst_last[0] = '\0';
  h->running = true;
  h->agg = BW_HEALTH_HEALTHY;
  h->agg_since = bw_now_ms(h->rt);
  pick_up(a);
  int rc = bw_send_interval(h->rt, bw_self(ctx), h->cfg.period_ms, HM_TICK, NULL, 0,
                            &h->tick_timer);
  /* the events come through the recorder; without one, to us directly */
  uint64_t own = rc == 0 ? bw__health_rec_attach(a) : 0;
  if (own != 0)
    rc = bw_event_subscribe(h->rt, bw_self(ctx), own);
  if (rc == 0)
    rc = bw_send(h->rt, bw_self(ctx), HM_TICK, NULL, 0); /* the first round at once */
  if (rc != 0) {
    if (h->tick_timer != 0)
      (void)bw_timer_cancel(h->rt, h->tick_timer);
    h->tick_timer = 0;
    (void)bw_event_unsubscribe(h->rt, bw_self(ctx));
    h->running = false;
    return rc;
  }
  /* release: the handle set up above before callers find us */
  bw__st64_rel(&h->pid, bw_self(ctx));
  settle(a);
  return 0;
}

static int hm_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  hm_actor_t *a = state;
  a->ctx = ctx;
  if (msg->flags & BW_MSGF_REPLY) {
    on_reply(a, msg);
  } else if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    on_request_timeout(a, msg);
  } else if (msg->type == BW_MSG_EVENT && msg->len == sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    on_event(a, &ev, true);
  } else if ((msg->type == HM_EVENT || msg->type == HM_REPLAY) && msg->len == sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    on_event(a, &ev, msg->type == HM_EVENT);
  } else {
    switch (msg->type) {
    case HM_TICK:
      round_(a);
      break;
    case HM_DONE:
      if (msg->len == sizeof(hm_done_t)) {
        hm_done_t d;
        memcpy(&d, msg->data, sizeof d);
        on_check_done(a, &d);
      }
      break;
    case HM_DEADLINE:
      if (msg->len == sizeof(hm_run_t)) {
        hm_run_t r;
        memcpy(&r, msg->data, sizeof r);
        on_check_deadline(a, &r);
      }
      break;
    case HM_RECOVER_DONE:
      if (msg->len == sizeof(hm_rdone_t)) {
        hm_rdone_t d;
        memcpy(&d, msg->data, sizeof d);
        if (d.idx < a->h->seen) {
          a->h->st[d.idx].action_rc = d.rc;
          a->h->dirty = true;
        }
      }
      break;
    case HM_FLUSH:
      settle(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, 0, HM_FLUSH, NULL, 0);
      break;
    case BW_HEALTH_MSG_CHECK:
      /* the monitor is a component too: it answers with the aggregate */
      settle(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_health_answer(ctx, msg, a->h->agg, "");
      break;
    default:
      /* never leave a caller waiting */
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      break;
    }
  }
  settle(a);
  return BW_CONTINUE;
}

static void hm_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  hm_actor_t *a = state;
  bw_health_t *h = a->h;
  if (h == NULL)
    return;
  if (h->tick_timer != 0)
    (void)bw_timer_cancel(h->rt, h->tick_timer);
  h->tick_timer = 0;
  for (uint32_t i = 0; i < h->seen; i++)
    if (h->st[i].deadline != 0)
      (void)bw_timer_cancel(h->rt, h->st[i].deadline);
  (void)bw_event_unsubscribe(h->rt, bw_self(ctx));
  /* readers see the monitor gone (unhealthy) until a successor publishes */
  h->running = false;
  (void)bw__health_publish(h, h->seen);
  /* A failed CAS means a successor already published itself. */
  (void)bw__cas64(&h->pid, bw_self(ctx), BW_PID_NONE);
}

const bw_behaviour_t bw_health_behaviour = {
    .name = "bw.health",
    .state_size = sizeof(hm_actor_t),
    .init = hm_init,
    .handle = hm_handle,
    .terminate = hm_terminate,
    .never_muted = true, /* see RUNTIME.md, "Back-pressure" */
};
