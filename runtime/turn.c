/*
 * bulwark: one turn of an actor: message handling, crashes.
 *
 * A turn handles up to rt->batch messages, then the actor either marks its
 * mailbox empty (idle: the next send schedules it) or goes back on a run
 * queue. A crash (bw_fail) unwinds with longjmp to the thread's loop, set
 * once per thread rather than per turn, so a turn costs no setjmp.
 *
 * Everything a turn does per message is in this file (static, so the
 * compiler can inline it into the loop); what leaves it is per turn
 * (muting, mute.c), per life (bw__actor_die, release.c) or was in another
 * file already.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

/* --- one message ----------------------------------------------------------- */

static int handler_result(int rc, bw_reason_t *r);

/* Calls the handler; returns 0 to go on, or 1 with *r set to exit. */
static int call_handler(bw__thread *th, bw__actor *a, bw__msg *m, bw_reason_t *r) {
  /* a message (not a signal, not the timeout itself): silence counts from
   * now, as Erlang's receive ... after */
  if ((a->flags & BW__AF_HAS_RT) && m->pub.type != BW_MSG_TIMEOUT)
    bw__rtimeout_touch(a);
  a->cur_msg = m;
  bw__tl.replied = false;
  int rc = a->beh->handle((bw_ctx_t *)a, a->state, &m->pub);
  a->cur_msg = NULL;
  bool user = m->kind == BW__K_USER;
  if (rc != BW_CONTINUE && user && (m->pub.flags & BW_MSGF_REQUEST) &&
      !bw__tl.replied)
    bw__reply_status(a->rt, m->pub.from, a->pid, m->pub.ref, BW_ENOPROC);
  bw__msg_free(a->rt, m);
  if (user)
    bw__ctr_add(a->rt, th->ctr, &th->ctr->handled, 1);
  return handler_result(rc, r);
}

/* A handler's (or a continuation's) return: 0 to go on, or 1 with *r set
 * to exit. */
static int handler_result(int rc, bw_reason_t *r) {
  if (rc == BW_CONTINUE)
    return 0;
  if (rc == BW_STOP) {
    bw__reason_set(r, BW_REASON_NORMAL, 0, NULL);
    return 1;
  }
  if (rc > 0) {
    bw__reason_set(r, BW_REASON_CRASH, BW_EINVAL, "handler returned an invalid value");
    return 1;
  }
  bw__reason_set(r, BW_REASON_CRASH, rc, NULL);
  snprintf(r->text, sizeof(r->text), "handler returned %s", bw_err_name(rc));
  return 1;
}

/* Runs the continuation of the request m settles (then.c) instead of the
 * handler: m is its reply, its deadline or its target's DOWN. */
static int call_then(bw__thread *th, bw__actor *a, bw__msg *m, bw_reason_t *r) {
  if (a->flags & BW__AF_HAS_RT)
    bw__rtimeout_touch(a);
  a->cur_msg = m; /* for bw_msg_take, and a crash's clean-up */
  int rc = bw__then_run(a, m);
  a->cur_msg = NULL;
  bool user = m->kind == BW__K_USER;
  bw__msg_free(a->rt, m);
  if (user)
    bw__ctr_add(a->rt, th->ctr, &th->ctr->handled, 1);
  return handler_result(rc, r);
}

static int dispatch(bw__thread *th, bw__actor *a, bw__msg *m, bw_reason_t *r) {
  switch (m->kind) {
  case BW__K_USER:
    if (m->pub.flags & BW_MSGF_REPLY) {
      if (!bw__request_on_reply(a, m)) {
        m->to = a->pid;
        bw__dead_letter(a->rt, m, BW_DL_LATE_REPLY);
        return 0;
      }
      if (bw__then_claim(a, m->pub.ref))
        return call_then(th, a, m, r);
    }
    return call_handler(th, a, m, r);
  case BW__K_RTIMEOUT:
    if (!bw__rtimeout_check(a)) {
      bw__msg_free(a->rt, m);
      return 0;
    }
    m->kind = BW__K_WAKE; /* not a user message for the counters */
    m->pub.type = BW_MSG_TIMEOUT;
    m->pub.len = 0;
    m->pub.data = NULL;
    return call_handler(th, a, m, r);
  case BW__K_REQTIMEOUT:
    if (!bw__request_on_timeout(a, m)) {
      bw__msg_free(a->rt, m);
      return 0;
    }
    if (bw__then_claim(a, m->pub.ref))
      return call_then(th, a, m, r);
    m->pub.type = BW_MSG_REQUEST_TIMEOUT;
    m->pub.len = 0;
    m->pub.data = NULL;
    return call_handler(th, a, m, r);
  case BW__K_WAKE:
    bw__msg_free(a->rt, m);
    return 0;
  case BW__K_IO:
  case BW__K_IOTIMER:
    if (!bw__io_on_msg(a, m)) {
      bw__msg_free(a->rt, m); /* its watch was removed meanwhile */
      return 0;
    }
    return call_handler(th, a, m, r);
  case BW__K_DOWN:
    if (bw__request_on_down(a, m)) {
      m->kind = BW__K_WAKE; /* a reply made here, not a sent message */
      if (bw__then_claim(a, m->pub.ref))
        return call_then(th, a, m, r);
      return call_handler(th, a, m, r);
    }
    __attribute__((fallthrough)); /* an ordinary monitor */
  default: {
    /* signals: exit, down, link, unlink, monitor, demonitor */
    int v = bw__link_handle(a, m, r);
    if (v == 2)
      return call_handler(th, a, m, r); /* delivered as BW_MSG_EXIT/DOWN */
    bw__msg_free(a->rt, m);
    return v;
  }
  }
}

/* Takes the pending urgent exit, if any, into *r. */
static bool take_exit(bw__actor *a, bw_reason_t *r) {
  uint32_t f = bw__ld32_rlx(&a->force);
  if (f == BW__FORCE_KILL) {
    bw__reason_set(r, BW_REASON_KILLED, 0, "killed");
    return true;
  }
  /* acquire (in the exchange): the node's reason written by the sender */
  bw__msg *u = BW__XCHG(&a->urgent, NULL);
  if (u != NULL) {
    memcpy(r, u->inl, sizeof(*r));
    bw__msg_free(a->rt, u);
    return true;
  }
  if (f == BW__FORCE_SHUTDOWN) {
    bw__reason_set(r, BW_REASON_SHUTDOWN, 0, NULL);
    return true;
  }
  return false;
}

static void watch_begin(bw__thread *th, bw__actor *a) {
  bw__st64_rlx(&th->busy_since, bw__now_ns(a->rt));
  bw__st64_rlx(&th->busy_limit_ms, a->ext->hang_ms);
  bw__st64_rlx(&th->busy_report_to, a->ext->hang_to);
  /* release: the fields above are visible to a scanner that sees the pid */
  bw__st64_rel(&th->busy_pid, a->pid);
}

static int actor_turn(bw__thread *th, bw__actor *a);

/* One turn; the pin its sends kept is released when it ends (see send.c). */
int bw__actor_run(bw__thread *th, bw__actor *a) {
  /* only a worker's turn is bounded and never blocks (see send.c) */
  bw__tl.pin_keep = th->kind == BW__TH_WORKER;
  int r = actor_turn(th, a);
  bw__pin_drop();
  return r;
}

static int actor_turn(bw__thread *th, bw__actor *a) {
  bw__runtime *rt = a->rt;
  unsigned batch = rt->batch, n = 0, popped = 0;
  bool handed = false, io_last = false;
  uint32_t sends0 = bw__tl.nsends;
  bw_reason_t r;
  bw__tl.cur = a;
  bw__tl.mute_on = BW_PID_NONE;
  bw__tl.mute_gate = NULL;
  /* running again: no longer muted (relaxed: a hint for bw__wake_muted) */
  if (a->ext != NULL && a->ext->muted_on != BW_PID_NONE)
    bw__st64_rlx(&a->ext->muted_on, BW_PID_NONE);
  for (;;) {
    if (bw__actor_exit_pending(a) && take_exit(a, &r)) {
      bw__actor_die(a, &r);
      bw__tl.cur = NULL;
      return BW__RUN_DEAD;
    }
    /* awaiting, or replaying what an await held (then.c): a flag test */
    bw__qnode *q = (a->flags & BW__AF_HOLD) ? bw__then_pop(a) : bw__mpsc_pop(&a->mb, &a->mbc);
    if (q == NULL)
      break;
    if (q == &a->exit_q)
      continue; /* the exit wake-up: the check above takes the exit */
    popped++;
    if (a->mb_cap != 0 && bw__msg_counts((bw__msg *)q))
      bw__faa32(&a->mb_count, (uint32_t)-1);
    if (a->cflags & BW__CF_WATCHED)
      watch_begin(th, a);
    if (((bw__msg *)q)->pub.flags & BW__MF_SELF) {
      /* its own backlog (send.c): taken off the count, and the mark off
       * the message before its handler sees it */
      ((bw__msg *)q)->pub.flags &= ~(uint32_t)BW__MF_SELF;
      a->self_queued--;
    }
    io_last = ((bw__msg *)q)->kind == BW__K_IO;
    int died = dispatch(th, a, (bw__msg *)q, &r);
    if (a->cflags & BW__CF_WATCHED)
      bw__watch_end(th);
    if (died) {
      bw__actor_die(a, &r);
      bw__tl.cur = NULL;
      return BW__RUN_DEAD;
    }
    if (++n >= batch)
      break;
    /* it sent to an overloaded actor: end the turn now and be muted, so a
     * fast sender overshoots by one handler call, not by a whole batch */
    if (bw__tl.mute_on != BW_PID_NONE || bw__tl.mute_gate != NULL)
      break;
    /* the turn goes on and the actors it made runnable wait behind it on
     * this worker's queue: let a parked worker take them (once a turn).
     * Not before a few messages: a second message in a short turn (an
     * I/O-driven actor's readiness and a request) is no long turn, and
     * waking a peer for it split a request/reply pair across the cores
     * for good (each feeding the other: 2 extra context switches per
     * HTTP round trip) */
    if (!handed && n >= 8 && th->kind == BW__TH_WORKER && bw__mpsc_has_more(&a->mbc))
      handed = bw__sched_handoff(th->worker);
  }
  if (bw__actor_exit_pending(a) && take_exit(a, &r)) {
    bw__actor_die(a, &r); /* bw_exit_self from the last handler */
    bw__tl.cur = NULL;
    return BW__RUN_DEAD;
  }
  bw__tl.cur = NULL;
  /* overloaded: 32 batches or more of messages from others still queued
   * after a turn, until it is down to 8 batches; clearing the flag lets the
   * muted senders run (see RUNTIME.md, "Back-pressure"). What it queued
   * for itself does not count: an actor working through its own backlog is
   * busy, not behind on others, and muting others would not shrink it. */
  uint32_t sig = bw__ld32_rlx(&a->trap);
  bool spent = n >= batch;
  /* relaxed store: owner-only counter, read by bw_mailbox_depth */
  bw__st32_rlx(&a->mb_popped, a->mb_popped + popped);
  /* relaxed: a count for a heuristic; a push racing with this load is
   * seen at the next turn */
  /* signed: senders add their counts in batches, so pops can run ahead */
  int32_t diff = (int32_t)(bw__ld32_rlx(&a->mb_pushed) - a->mb_popped - a->self_queued);
  uint32_t backlog = diff > 0 ? (uint32_t)diff : 0;
  if (!(sig & BW__SIG_OVERLOADED)) {
    /* not "spent": a turn can end early on a push in progress */
    if (backlog >= batch * BW__OVERLOAD_HIGH) {
      sig |= BW__SIG_OVERLOADED;
      bw__st32_rel(&a->trap, sig); /* release: owner-only word, read by senders */
    }
  } else if (backlog <= batch * BW__OVERLOAD_LOW) {
    sig &= ~(uint32_t)BW__SIG_OVERLOADED;
    bw__st32_rel(&a->trap, sig);
    bw__fence_seq_cst(); /* the clear before the take: see mute_on */
    bw__unmute_all(rt, a);
  }
  /* muted, unless overloaded itself: the head of any chain of muted actors
   * is overloaded and keeps running, so muting cannot deadlock */
  bw_pid_t on = bw__tl.mute_on;
  bw__gate *gate = bw__tl.mute_gate;
  bw__tl.mute_on = BW_PID_NONE;
  bw__tl.mute_gate = NULL;
  if (on != BW_PID_NONE && !(sig & BW__SIG_OVERLOADED) && bw__mute_on(rt, a, on))
    return BW__RUN_MUTED;
  if (gate != NULL && !(sig & BW__SIG_OVERLOADED) && bw__mute_on_gate(rt, a, gate))
    return BW__RUN_MUTED;
  /* only a turn that sent nothing lingers: one that sent may be waiting
   * for an answer, which should wake it on the answerer's worker (so a
   * conversation gathers on one core) rather than keep two cores spinning.
   * Nor one that ended on readiness: it has likely written to a socket,
   * and its next message comes from a descriptor, which the worker sees
   * by polling, not by lingering (1.5 us of a 10 us TCP round trip) */
  /* messages an await held and nothing holds any more: not idle */
  if ((a->flags & BW__AF_HOLD) && bw__then_held_ready(a))
    return BW__RUN_AGAIN;
  if (!spent && popped > 0 && !io_last && bw__tl.nsends == sends0 &&
      th->kind == BW__TH_WORKER && bw__sched_linger(th->worker, &a->mbc, popped > 1))
    return BW__RUN_AGAIN;
  if (!spent && bw__mpsc_mark_empty(&a->mb, &a->mbc))
    return BW__RUN_IDLE;
  return BW__RUN_AGAIN;
}

/* bw_fail unwound to the thread's loop: the actor in bw__tl.cur crashed
 * while handling its cur_msg. */
void bw__actor_crashed(bw__thread *th) {
  bw__actor *a = bw__tl.cur;
  bw__pin_drop();
  bw__watch_end(th);
  bw_reason_t r = bw__tl.crash;
  bw__msg *m = a->cur_msg;
  a->cur_msg = NULL;
  if (m != NULL) {
    if (m->kind == BW__K_USER) {
      if ((m->pub.flags & BW_MSGF_REQUEST) && !bw__tl.replied)
        bw__reply_status(a->rt, m->pub.from, a->pid, m->pub.ref, BW_ENOPROC);
      bw__ctr_add(a->rt, th->ctr, &th->ctr->handled, 1);
    }
    bw__msg_free(a->rt, m);
  }
  bw__actor_die(a, &r);
  bw__tl.cur = NULL;
}
