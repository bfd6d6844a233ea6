/*
 * bulwark: the circuit breaker's actor, the one writer of its state
 * (patterns/BREAKER.md, "The actor", "Supervision and restarts").
 *
 * The state machine (closed, open with backoff, half-open, the manual
 * states), its timers, events and published counters, and the behaviour
 * that dispatches the protocol. Outcomes come in from the journal
 * (breaker_journal.c) and from proxied calls (breaker_proxy.c); the handle
 * and the guard are in breaker.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/breaker_internal.h"
#include "patterns/window.h"
#include "runtime/backoff.h"

/* --- the actor ------------------------------------------------------------------------------ */

static uint64_t now_ms(const br_actor_t *a) { return bw_now_ms(a->br->rt); }

/* The wait of the n-th consecutive open: grown, capped, then shortened by
 * up to jitter_pct percent (never lengthened, so the cap holds); the
 * supervisor's restart backoff, from the same pieces (runtime/backoff.h). */
static uint64_t open_wait_ms(bw_breaker_t *br) {
  const bw_breaker_opts_t *c = &br->cfg;
  uint64_t cap = c->open_max_ms != 0 ? c->open_max_ms : BR_DEFAULT_MAX_OPEN_MS;
  if (cap < c->open_ms)
    cap = c->open_ms;
  uint32_t n = br->open_count > 0 ? br->open_count - 1 : 0;
  uint64_t wait = bw__backoff_exp(c->open_ms, c->open_multiplier, n, cap);
  wait = bw__backoff_jitter_down(wait, c->jitter_pct, &br->rng);
  return wait == 0 ? 1 : wait;
}

static void cancel_timers(br_actor_t *a) {
  if (a->open_timer) {
    bw_timer_cancel(a->br->rt, a->open_timer);
    a->open_timer = 0;
  }
  if (a->ho_timer) {
    bw_timer_cancel(a->br->rt, a->ho_timer);
    a->ho_timer = 0;
  }
}

void bw__br_publish_event(br_actor_t *a, uint32_t type, int64_t ea, int64_t eb) {
  bw_runtime_t *rt = a->br->rt;
  if (!bw_event_wanted(rt, (int)type))
    return;
  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.source = bw_self(a->ctx);
  ev.subject = ev.source;
  ev.a = ea;
  ev.b = eb;
  bw_event_set_names(&ev, a->br->name, a->br->name, NULL);
  bw_event_publish(rt, &ev);
}

/* Publishes guard rejections counted since the last time, as one event. */
static void publish_rejections(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  /* exchange first (a full barrier), then sum: see bw__br_count_reject in breaker_journal.c */
  (void)bw__xchg32(&br->rej_notice, 0);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < BR_STRIPES; i++)
    sum += bw__ld64_rlx(&br->stripes[i].rejected);
  if (sum > br->rej_published) {
    bw__br_publish_event(a, BW_EV_CALL_REJECTED, (int64_t)(sum - br->rej_published), 0);
    br->rej_published = sum;
  }
}

/* Recomputes the window rates for the stats. */
static void publish_rates(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  if (br->cfg.window == BW_BREAKER_WINDOW_NONE)
    return;
  bw__window_totals_t t;
  bw__window_totals(&br->win, now_ms(a), &t);
  bw__st64_rlx(&br->pub.window_calls, t.calls);
  int64_t fr = -1, sr = -1;
  if (t.calls >= br->cfg.minimum_calls && t.calls > 0) {
    fr = (int64_t)(t.failures * 100000u / t.calls);
    if (br->slow_ns != 0)
      sr = (int64_t)(t.slow * 100000u / t.calls);
  }
  bw__st64_rlx(&br->pub.failure_rate_milli, (uint64_t)fr);
  bw__st64_rlx(&br->pub.slow_rate_milli, (uint64_t)sr);
}

static void arm(br_actor_t *a, uint64_t ms, uint32_t type, uint32_t epoch, bw_timer_t *t) {
  /* a timer that cannot be set (out of memory, stopping) leaves the state
   * as it is; reset or a restart recovers */
  if (bw_send_after(a->br->rt, bw_self(a->ctx), ms, type, &epoch, sizeof epoch, t) != 0)
    *t = 0;
}

/* The only place the state changes. */
static void transition(br_actor_t *a, int to) {
  bw_breaker_t *br = a->br;
  int from = W_STATE(a->word);
  uint32_t epoch = W_EPOCH(a->word) + 1;
  uint32_t permits = 0;
  cancel_timers(a);
  a->consecutive = 0;
  a->ho_successes = 0;
  switch (to) {
  case BW_BREAKER_OPEN: {
    br->open_count++;
    uint64_t wait = open_wait_ms(br);
    /* relaxed: published by the release store of the word below */
    bw__st64_rlx(&br->open_until_ns, bw_now_ns(br->rt) + wait * 1000000ull);
    arm(a, wait, BR_MSG_OPEN_DONE, epoch, &a->open_timer);
    bw__br_pub_add(&br->pub.opens, 1);
    break;
  }
  case BW_BREAKER_HALF_OPEN:
    permits = br->cfg.half_open_permits;
    if (br->cfg.half_open_max_ms > 0)
      arm(a, br->cfg.half_open_max_ms, BR_MSG_HALF_OPEN_MAX, epoch, &a->ho_timer);
    break;
  case BW_BREAKER_CLOSED:
    br->open_count = 0;
    /* fall through */
  default:
    if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_reset(&br->win);
    break;
  }
  a->word = W_MAKE(epoch, to, permits);
  /* release: open_until_ns (and the reset window) before the state that
   * makes callers read them */
  bw__st64_rel(&br->word, a->word);
  bw__br_pub_add(&br->pub.transitions, 1);
  bw__br_publish_event(a, BW_EV_BREAKER_STATE, from, to);
  publish_rates(a);
}

/* Trip check in the closed state. */
static bool should_trip(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  if (br->cfg.failure_threshold > 0 && a->consecutive >= br->cfg.failure_threshold)
    return true;
  if (br->cfg.window == BW_BREAKER_WINDOW_NONE)
    return false;
  bw__window_totals_t t;
  bw__window_totals(&br->win, now_ms(a), &t);
  if (t.calls == 0 || t.calls < br->cfg.minimum_calls)
    return false;
  /* rate >= threshold, as failures * 100 >= pct * calls (no division) */
  if ((double)t.failures * 100.0 >= br->cfg.failure_rate_pct * (double)t.calls)
    return true;
  return br->slow_ns != 0 && (double)t.slow * 100.0 >= br->cfg.slow_rate_pct * (double)t.calls;
}

/* n outcomes of one kind, granted in epoch (only its low 16 bits are
 * compared: journal records carry 16). */
void bw__br_on_outcome(br_actor_t *a, int kind, bool slow, uint32_t epoch, uint64_t n) {
  bw_breaker_t *br = a->br;
  switch (kind) {
  case BW_BREAKER_SUCCESS:
    bw__br_pub_add(&br->pub.successful, n);
    break;
  case BW_BREAKER_FAILURE:
    bw__br_pub_add(&br->pub.failed, n);
    break;
  default:
    bw__br_pub_add(&br->pub.ignored, n);
    break;
  }
  if (slow)
    bw__br_pub_add(&br->pub.slow, n);
  if ((epoch & 0xFFFFu) != (W_EPOCH(a->word) & 0xFFFFu))
    return; /* granted in an earlier state: counted, not judged */
  int st = W_STATE(a->word);
  if (st == BW_BREAKER_CLOSED || st == BW_BREAKER_METRICS_ONLY) {
    if (kind == BW_BREAKER_IGNORED)
      return;
    if (kind == BW_BREAKER_FAILURE)
      a->consecutive += n;
    else
      a->consecutive = 0;
    if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_add(&br->win, now_ms(a), kind == BW_BREAKER_FAILURE, slow, n);
    if (st == BW_BREAKER_CLOSED && should_trip(a))
      transition(a, BW_BREAKER_OPEN);
    return;
  }
  if (st != BW_BREAKER_HALF_OPEN)
    return;
  if (kind == BW_BREAKER_IGNORED) {
    /* an ignored call proves nothing: its permit goes back, so the
     * half-open can still reach its success threshold */
    /* CAS: callers take permits from the same word concurrently */
    uint64_t w = bw__ld64_acq(&br->word);
    while (W_EPOCH(w) == W_EPOCH(a->word) && W_PERMITS(w) + n <= br->cfg.half_open_permits &&
           !bw__cas64(&br->word, w, w + n))
      w = bw__ld64_acq(&br->word);
    return;
  }
  if (kind == BW_BREAKER_FAILURE || (slow && br->slow_ns != 0)) {
    transition(a, BW_BREAKER_OPEN);
    return;
  }
  a->ho_successes += n;
  if (a->ho_successes >= br->cfg.success_threshold)
    transition(a, BW_BREAKER_CLOSED);
}

/* Takes every record it can, and comes back for the rest. */
static void catch_up(br_actor_t *a) {
  a->rewake = false;
  bw__br_drain(a);
  if (a->rewake)
    (void)bw_send(a->br->rt, bw_self(a->ctx), BR_MSG_WAKE, NULL, 0);
  publish_rejections(a);
  publish_rates(a);
}

static void on_ctl(br_actor_t *a, uint32_t to) {
  int st = W_STATE(a->word);
  if (to == BW_BREAKER_CLOSED && st == BW_BREAKER_CLOSED) {
    /* reset of a closed breaker: forget, no transition */
    a->consecutive = 0;
    a->br->open_count = 0;
    if (a->br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_reset(&a->br->win);
    publish_rates(a);
    return;
  }
  if ((int)to == st)
    return;
  if (to == BW_BREAKER_CLOSED)
    a->br->open_count = 0;
  transition(a, (int)to);
}

/* --- behaviour ------------------------------------------------------------------------------ */

static int br_init(bw_ctx_t *ctx, void *state, void *arg) {
  br_actor_t *a = state;
  bw_breaker_t *br = arg;
  if (br == NULL || br->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_breaker_pid(br);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(br->rt, old))
    return BW_EALREADY; /* one actor per handle */
  a->br = br;
  a->ctx = ctx;
  /* Take over: a fresh judgement (window, consecutive count, proxied calls
   * of the last incarnation, whose requesters got BW_ENOPROC), the
   * published state kept. */
  if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
    bw__window_reset(&br->win);
  memset(br->pend, 0, ((size_t)br->pend_mask + 1) * sizeof *br->pend);
  br->npend = 0;
  a->word = bw__ld64_acq(&br->word);
  /* release: the handle's state set up above before callers find us */
  bw__st64_rel(&br->pid, bw_self(ctx));
  int st = W_STATE(a->word);
  if (st == BW_BREAKER_OPEN) {
    /* relaxed: the last actor's writes reach us through its exit and our
     * spawn (the supervisor's messages order them) */
    uint64_t until = bw__ld64_rlx(&br->open_until_ns), now = bw_now_ns(br->rt);
    if (until > now)
      arm(a, (until - now + 999999u) / 1000000u, BR_MSG_OPEN_DONE, W_EPOCH(a->word), &a->open_timer);
    else
      transition(a, BW_BREAKER_HALF_OPEN);
  } else if (st == BW_BREAKER_HALF_OPEN) {
    /* the permits of the last half-open may never report: start a new one
     * (new epoch, N permits), without an event: the state is the same */
    uint32_t epoch = W_EPOCH(a->word) + 1;
    a->word = W_MAKE(epoch, BW_BREAKER_HALF_OPEN, br->cfg.half_open_permits);
    bw__st64_rel(&br->word, a->word);
    if (br->cfg.half_open_max_ms > 0)
      arm(a, br->cfg.half_open_max_ms, BR_MSG_HALF_OPEN_MAX, epoch, &a->ho_timer);
  }
  /* a flush the last incarnation owed (or one asked while none ran): the
   * drain below takes what it would have; exchange before the drain, as
   * on_flush_tick */
  (void)bw__xchg32(&br->flush_armed, 0);
  catch_up(a);
  return 0;
}

static int br_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  br_actor_t *a = state;
  a->ctx = ctx;
  uint32_t epoch = 0;
  /* Replies first: a target may answer with any type, even one of this
   * range (a breaker behind a breaker answers BW_BREAKER_MSG_OPEN). */
  if (msg->flags & BW_MSGF_REPLY) {
    bw__br_proxy_settle(a, msg, false);
    return BW_CONTINUE;
  }
  if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    bw__br_proxy_settle(a, msg, true);
    return BW_CONTINUE;
  }
  if (msg->type >= BW_MSG_BREAKER_BASE && msg->type <= BR_MSG_LAST) {
    switch (msg->type) {
    case BR_MSG_WAKE:
    case BR_MSG_REJECTED:
      catch_up(a);
      break;
    case BR_MSG_REPORT: {
      uint64_t rec;
      if (msg->len == sizeof rec) {
        memcpy(&rec, msg->data, sizeof rec);
        bw__br_on_record(a, rec);
      }
      catch_up(a);
      break;
    }
    case BR_MSG_CTL: {
      uint32_t to;
      if (msg->len == sizeof to) {
        memcpy(&to, msg->data, sizeof to);
        if (to == BW_BREAKER_CLOSED || to == BW_BREAKER_FORCED_OPEN ||
            to == BW_BREAKER_DISABLED || to == BW_BREAKER_METRICS_ONLY)
          on_ctl(a, to);
      }
      break;
    }
    case BR_MSG_FLUSH:
      catch_up(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, 0, BR_MSG_FLUSH, NULL, 0);
      break;
    case BR_MSG_OPEN_DONE:
      if (msg->len == sizeof epoch)
        memcpy(&epoch, msg->data, sizeof epoch);
      if (msg->ref == a->open_timer)
        a->open_timer = 0;
      if (W_STATE(a->word) == BW_BREAKER_OPEN && epoch == W_EPOCH(a->word))
        transition(a, BW_BREAKER_HALF_OPEN);
      break;
    case BR_MSG_FLUSH_ARM:
      /* deferred records wait: take them within flush_ms (one timer at a
       * time; a timer that cannot be set means a flush now) */
      if (a->flush_timer == 0 &&
          bw_send_after(a->br->rt, bw_self(ctx), a->br->flush_ms, BR_MSG_FLUSH_TICK, NULL, 0,
                        &a->flush_timer) != 0) {
        a->flush_timer = 0;
        (void)bw__xchg32(&a->br->flush_armed, 0);
        catch_up(a);
      }
      break;
    case BR_MSG_FLUSH_TICK:
      if (msg->ref == a->flush_timer)
        a->flush_timer = 0;
      /* exchange (a full barrier) before the drain: see flush_arm in breaker_journal.c */
      (void)bw__xchg32(&a->br->flush_armed, 0);
      catch_up(a);
      break;
    case BR_MSG_HALF_OPEN_MAX:
      if (msg->len == sizeof epoch)
        memcpy(&epoch, msg->data, sizeof epoch);
      if (msg->ref == a->ho_timer)
        a->ho_timer = 0;
      if (W_STATE(a->word) == BW_BREAKER_HALF_OPEN && epoch == W_EPOCH(a->word))
        transition(a, BW_BREAKER_OPEN);
      break;
    default:
      /* a request of this range that is not ours: answer, never leave
       * a caller waiting */
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      break;
    }
    return BW_CONTINUE;
  }
  if ((msg->flags & BW_MSGF_REQUEST) && msg->type < BW_MSG_SYSTEM_BASE) {
    bw__br_proxy_request(a, msg);
    return BW_CONTINUE;
  }
  return BW_CONTINUE; /* anything else is not for us */
}

static void br_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  br_actor_t *a = state;
  if (a->br == NULL)
    return;
  cancel_timers(a);
  if (a->flush_timer) {
    /* the flag stays set: the next actor's init clears it and drains */
    bw_timer_cancel(a->br->rt, a->flush_timer);
    a->flush_timer = 0;
  }
  /* Callers stop waking a dead pid; a successor publishes its own. A
   * failed CAS means a successor already did. */
  (void)bw__cas64(&a->br->pid, bw_self(ctx), BW_PID_NONE);
}

const bw_behaviour_t bw__br_behaviour = {
    .name = "bw.breaker",
    .state_size = sizeof(br_actor_t),
    .init = br_init,
    .handle = br_handle,
    .terminate = br_terminate,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};
