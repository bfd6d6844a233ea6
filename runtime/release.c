/*
 * bulwark: the exit path of an actor.
 *
 * Exit: terminate runs (not after a kill or a failed init), then the pid is
 * invalidated (new sends fail) and the slot's pins drain, so nobody else can
 * touch the mailbox; then the mailbox is drained to dead letters (requests
 * get a BW_ENOPROC reply, link and monitor requests get their exit/DOWN),
 * links and monitors are notified, and the memory goes back to the pool.
 * Deferred requests still unanswered get BW_ENOREPLY first; pending
 * continuations' closures are freed; messages an await held are drained
 * before the mailbox.
 */
#include <setjmp.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

/*
 * Kill and shutdown must not depend on memory: the wake-up that makes an
 * idle actor look at its pending exit is a node inside the actor. The
 * first one to claim it (the CAS from UNUSED) pushes it; every exit made
 * pending later rides on it, since the owner reads force and urgent
 * before each message and dies once either is set (neither is ever
 * cleared). So a kill that returned 0 always takes effect.
 * Rejected: a WAKE message per kill (an allocation that can fail, and did
 * under ulimit -v, leaving the actor idle and bw_runtime_stop waiting).
 */
void bw__exit_wake(bw__runtime *rt, bw__actor *a) {
  /* acq_rel CAS: the force or urgent word set before this call is visible
   * to the owner that pops the node (the push below releases it too) */
  if (!BW__CAS(&a->exit_q.next, BW__EXITQ_UNUSED, NULL))
    return;
  if (bw__mpsc_push(&a->mb, &a->exit_q))
    bw__schedule(rt, a);
  /* a muted actor would not look at its exit until the one it is muted on
   * drains: free it now (see bw__wake_muted) */
  bw__wake_muted(rt, a);
}

void bw__drain_one(bw__runtime *rt, bw__actor *a, bw__msg *m, const bw_reason_t *r, int dl) {
  m->to = a->pid; /* the link word held the queue's next pointer */
  switch (m->kind) {
  case BW__K_USER:
    if (m->pub.flags & BW_MSGF_REQUEST)
      bw__reply_status(rt, m->pub.from, a->pid, m->pub.ref, BW_ENOPROC);
    bw__dead_letter(rt, m, dl);
    return;
  default:
    bw__link_bounce(rt, m, r);
    bw__msg_free(rt, m);
    return;
  }
}

void bw__live_dec(bw__runtime *rt, bool root) {
  if (root)
    bw__faa64(&rt->live_roots, (uint64_t)-1);
  if (bw__faa64(&rt->live, (uint64_t)-1) == 1 || root) {
    pthread_mutex_lock(&rt->life_mx);
    pthread_cond_broadcast(&rt->life_cv);
    pthread_mutex_unlock(&rt->life_mx);
  }
}

/* Everything after terminate; also used when init fails. */
void bw__actor_release(bw__actor *a, const bw_reason_t *r) {
  bw__runtime *rt = a->rt;
  bw_pid_t pid = a->pid;
  /* not alive any more, for anyone who asks from now on */
  bw__pid_mark_exiting(rt, pid);
  /* the name first, so a replacement can take it as soon as it hears */
  if (a->cflags & BW__CF_NAMED)
    bw__registry_drop_pid(rt, pid);
  /* the counters too: once anyone hears of the exit, stats show it */
  if (a->flags & BW__AF_INITED) {
    bw__faa64(&rt->exited, 1);
    if (r->kind == BW_REASON_CRASH) {
      bw__faa64(&rt->crashed, 1);
      bw__log_lone_crash(a, r); /* before anyone hears: log.c */
    }
  }
  bw__live_dec(rt, (a->cflags & BW__CF_ROOT) != 0);
  if (a->cflags & BW__CF_WATCHED)
    bw__faa32(&rt->nwatched, (uint32_t)-1);
  /* tell links and monitors before the pid dies: whoever then finds the pid
   * dead (a monitor answered noproc at once, bw_wait_exit) knows they have
   * been told. A LINK or MONITOR that arrives meanwhile is answered from
   * the drain below, with the same reason. */
  /* requests it deferred and never answered: their callers hear
   * BW_ENOREPLY before the DOWN below (defer.c) */
  if (a->ext != NULL)
    bw__defer_on_exit(a);
  bw__link_on_exit(a, r);
  bw__request_on_exit(a);
  /* continuations still pending: closures freed, never run (then.c) */
  bw__msg *held = bw__then_on_exit(a);
  if (a->ext != NULL && a->ext->io_watches != NULL)
    bw__io_on_exit(a); /* watches removed, owned fds closed; queued events dropped below */
  if (a->ext != NULL && a->ext->rt_timer != 0)
    bw__timer_cancel(rt, a->ext->rt_timer);
  bw__pid_invalidate(rt, pid);
  /* no sender can pin us any more, so none can mute on us: free them all */
  bw__unmute_all(rt, a);
  int dl = bw__ld32_rlx(&rt->state) != BW__RT_RUNNING ? BW_DL_SHUTDOWN : BW_DL_EXITED;
  /* what an await held arrived before what is still queued */
  while (held != NULL) {
    bw__msg *next = (bw__msg *)held->q.next; /* the drain overwrites the link */
    bw__drain_one(rt, a, held, r, dl);
    held = next;
  }
  bw__qnode *q;
  while ((q = bw__mpsc_pop(&a->mb, &a->mbc)) != NULL)
    if (q != &a->exit_q)
      bw__drain_one(rt, a, (bw__msg *)q, r, dl);
  bw__msg *u = BW__XCHG(&a->urgent, NULL);
  if (u != NULL)
    bw__msg_free(rt, u);
  bool dedicated = (a->cflags & BW__CF_DEDICATED) != 0;
  if (!dedicated)
    bw__ext_free(a);
  bw__pid_free(rt, pid);
  if (!dedicated)
    bw__actor_free(rt, a);
  /* a dedicated actor's thread frees it when its loop ends */
}

void bw__actor_die(bw__actor *a, const bw_reason_t *reason) {
  bw_reason_t r = *reason;
  bw__actor *saved_cur = bw__tl.cur;
  jmp_buf *saved_jb = bw__tl.jb;
  /* terminate is skipped only after the untrappable kill itself: an exit
   * signal that merely carries reason "killed" (a linked actor was killed)
   * is an ordinary exit and runs it */
  bool killed = r.kind == BW_REASON_KILLED && bw__ld32_rlx(&a->force) == BW__FORCE_KILL;
  if ((a->flags & BW__AF_INITED) && !killed && a->beh->terminate) {
    jmp_buf jb;
    bw__tl.cur = a;
    bw__tl.jb = &jb;
    if (setjmp(jb) == 0)
      a->beh->terminate((bw_ctx_t *)a, a->state, &r);
    /* a crash inside terminate is ignored: the actor is exiting anyway */
  }
  if ((a->flags & BW__AF_INITED) && a->beh->cleanup != NULL)
    a->beh->cleanup(a->state);
  bw__tl.cur = saved_cur == a ? NULL : saved_cur;
  bw__tl.jb = saved_jb;
  bw__actor_release(a, &r);
}
