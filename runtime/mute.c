/*
 * bulwark: back-pressure: an actor that sent to an overloaded actor (or
 * through a closed gate) is parked on its muted stack at the end of its
 * turn, and rescheduled when that actor drains or exits. The decision to
 * mute, and the overload mark, are made at the end of a turn (turn.c); see
 * runtime/RUNTIME.md, "Back-pressure".
 */
#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

static bw__actor *actor_of_rq(bw__qnode *q) {
  return (bw__actor *)((char *)q - offsetof(bw__actor, rq));
}

/* Takes every sender muted on a and makes it runnable again. */
void bw__unmute_all(bw__runtime *rt, bw__actor *a) {
  /* acquire (in the exchange): the pushers' link writes are visible */
  bw__qnode *q = BW__XCHG(&a->muted, NULL);
  while (q != NULL) {
    bw__qnode *next = BW__LD_RLX(&q->next); /* before the run queue reuses the link */
    bw__schedule_elsewhere(rt, actor_of_rq(q));
    q = next;
  }
}

/*
 * At the end of a's turn: a sent to an actor that was overloaded. Park a on
 * that actor's muted stack instead of running it again; the overloaded
 * actor reschedules it when it drains (or exits). Returns false if there is
 * nothing to wait for. After a successful push, a belongs to whoever drains
 * the stack: this thread must not touch it again.
 *
 * No lost wake-up: the push is a seq_cst RMW and then we read the flag; the
 * receiver clears the flag, then a seq_cst fence, then takes the stack. If
 * we still see the flag set, its take comes after our push; if we see it
 * clear, we take the stack ourselves (each node is taken exactly once).
 */
bool bw__mute_on(bw__runtime *rt, bw__actor *a, bw_pid_t on) {
  bw__slot *s;
  bw__actor *r = bw__pid_pin(rt, on, &s);
  if (r == NULL)
    return false;
  if (!(bw__ld32_rlx(&r->trap) & BW__SIG_OVERLOADED)) {
    bw__pid_unpin(s);
    return false;
  }
  bw_pid_t self = a->pid;
  /* where a signaller finds what a is muted on; without it a would not be
   * woken for an exit, so no memory means no muting (a hint, not a rule) */
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL) {
    bw__pid_unpin(s);
    return false;
  }
  /* relaxed: ordered before the exit check below by the push and fence;
   * read by whoever signals an exit to a (bw__wake_muted) */
  bw__st64_rlx(&e->muted_on, on);
  bw__qnode *old = BW__LD_RLX(&r->muted);
  do {
    BW__ST_RLX(&a->rq.next, old);
    /* release (acq_rel CAS): the link is visible to the one who takes it */
  } while (!BW__CAS(&r->muted, old, &a->rq) && ((old = BW__LD_RLX(&r->muted)), true));
  bw__fence_seq_cst();
  if (!(bw__ld32_rlx(&r->trap) & BW__SIG_OVERLOADED)) {
    bw__unmute_all(rt, r);
  } else {
    /* an exit signalled meanwhile: the signaller either sees muted_on
     * (its fence after setting the exit, ours after the push: a Dekker
     * pair) and unmutes r, or we see its exit here and do it ourselves.
     * a may already be running elsewhere, or gone: only through a pin */
    bw__slot *as;
    bw__actor *me = bw__pid_pin(rt, self, &as);
    if (me != NULL) {
      if (bw__actor_exit_pending(me))
        bw__unmute_all(rt, r);
      bw__pid_unpin(as);
    }
  }
  bw__pid_unpin(s);
  return true;
}

/*
 * After an exit was signalled to a (its force or urgent word set, then its
 * WAKE queued): if a is muted, it would not look at its exit until the
 * actor it is muted on drains. So the signaller unmutes that actor's
 * senders: a runs and exits; the others run once and, if they send to it
 * again while it is still overloaded, are muted again. A stale muted_on
 * (a has run since) costs the same spurious round, nothing else. Only for
 * exits, so never on the send path of plain messages.
 */
void bw__wake_muted(bw__runtime *rt, bw__actor *a) {
  bw__fence_seq_cst(); /* the exit's store before this load: see mute_on */
  /* acquire: pairs with bw__ext_get's release (a is pinned by the caller,
   * so its ext lives) */
  bw__actor_ext *e = BW__LD_ACQ(&a->ext);
  if (e == NULL)
    return; /* never muted */
  bw_pid_t on = bw__ld64_rlx(&e->muted_on);
  if (on == BW_PID_NONE)
    return;
  bw__slot *s;
  bw__actor *r = bw__pid_pin(rt, on, &s);
  if (r == NULL)
    return; /* gone: its exit freed everyone muted on it */
  bw__unmute_all(rt, r);
  bw__pid_unpin(s);
}

/* The same, on a gate (internal.h): closed is checked after the push. */
bool bw__mute_on_gate(bw__runtime *rt, bw__actor *a, bw__gate *g) {
  if (!bw__ld32_acq(&g->closed))
    return false;
  bw__qnode *old = BW__LD_RLX(&g->muted);
  do {
    BW__ST_RLX(&a->rq.next, old);
    /* release (acq_rel CAS): the link is visible to the one who takes it */
  } while (!BW__CAS(&g->muted, old, &a->rq) && ((old = BW__LD_RLX(&g->muted)), true));
  bw__fence_seq_cst(); /* the push before the re-check: see mute_on */
  if (!bw__ld32_rlx(&g->closed))
    bw__gate_open(rt, g);
  return true;
}

void bw__gate_open(bw__runtime *rt, bw__gate *g) {
  bw__st32_rel(&g->closed, 0);
  bw__fence_seq_cst(); /* the clear before the take: see mute_on */
  /* acquire (in the exchange): the pushers' link writes are visible */
  bw__qnode *q = BW__XCHG(&g->muted, NULL);
  while (q != NULL) {
    bw__qnode *next = BW__LD_RLX(&q->next); /* before the run queue reuses the link */
    bw__schedule_elsewhere(rt, actor_of_rq(q));
    q = next;
  }
}
