/*
 * bulwark: exit signals, links and monitors, with Erlang's semantics.
 *
 * Both ends of a link hold the other's pid; the link is made by adding the
 * peer locally and sending it a LINK signal, through the same mailbox as
 * messages, so per-pair order holds (a LINK before an EXIT from the same
 * sender is always seen first). A monitor is held by the watcher (mon_out)
 * and the target (mon_in). When an actor exits it sends an EXIT to each
 * link and a DOWN to each monitor; signals still queued when it died get
 * the same answers (a LINK gets an EXIT, a MONITOR a DOWN), and signals to
 * an actor already gone are answered by the sender at once (noproc).
 * Per-actor sets are small arrays in the actor's lazily allocated ext,
 * touched only by the actor's own thread.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/grow.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

static bw__msg *exit_msg(bw__runtime *rt, bw_pid_t to, bw_pid_t from, const bw_reason_t *r,
                         bool link_exit);

static bool links_has(bw__actor_ext *e, bw_pid_t pid) {
  for (uint32_t i = 0; i < e->nlinks; i++)
    if (e->links[i] == pid)
      return true;
  return false;
}

static bool links_add(bw__actor *a, bw_pid_t pid) {
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return false;
  if (links_has(e, pid))
    return true;
  if (!bw__grow((void **)&e->links, &e->caplinks, e->nlinks, sizeof(bw_pid_t), 4))
    return false;
  e->links[e->nlinks++] = pid;
  return true;
}

static bool links_remove(bw__actor *a, bw_pid_t pid) {
  bw__actor_ext *e = a->ext;
  if (e == NULL)
    return false;
  for (uint32_t i = 0; i < e->nlinks; i++) {
    if (e->links[i] == pid) {
      e->links[i] = e->links[--e->nlinks];
      return true;
    }
  }
  return false;
}


static bw__actor *own_actor(bw_ctx_t *ctx) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a)
    return NULL;
  return a;
}


int bw_link(bw_ctx_t *ctx, bw_pid_t pid) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (pid == a->pid || pid == BW_PID_NONE)
    return BW_EINVAL;
  if (!links_add(a, pid))
    return BW_ENOMEM;
  int rc = bw__send_sys(a->rt, pid, a->pid, BW__K_LINK, 0, NULL);
  if (rc == BW_ENOPROC) {
    links_remove(a, pid);
    if ((bw__ld32_rlx(&a->trap) & BW__SIG_TRAP)) {
      bw_reason_t r;
      bw__reason_set(&r, BW_REASON_NOPROC, BW_ENOPROC, NULL);
      bw__msg *m = exit_msg(a->rt, a->pid, pid, &r, false);
      if (m != NULL)
        bw__deliver(a->rt, m, false);
    }
  }
  return rc;
}

int bw_unlink(bw_ctx_t *ctx, bw_pid_t pid) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (pid == BW_PID_NONE)
    return BW_EINVAL;
  if (links_remove(a, pid))
    bw__send_sys(a->rt, pid, a->pid, BW__K_UNLINK, 0, NULL);
  return 0;
}

int bw_monitor(bw_ctx_t *ctx, bw_pid_t pid, uint64_t *ref) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (ref == NULL)
    return BW_EINVAL;
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return BW_ENOMEM;
  uint64_t r = bw__new_ref(a->rt);
  if (!bw__reftab_put(&e->mon_out, r, pid, 0))
    return BW_ENOMEM;
  *ref = r;
  int rc = bw__send_sys(a->rt, pid, a->pid, BW__K_MONITOR, r, NULL);
  if (rc == BW_ENOPROC) {
    bw_reason_t why;
    bw__reason_set(&why, BW_REASON_NOPROC, BW_ENOPROC, NULL);
    bw__send_sys(a->rt, a->pid, pid, BW__K_DOWN, r, &why);
    return 0;
  }
  if (rc != 0)
    bw__reftab_take(&e->mon_out, r, NULL);
  return rc;
}

int bw_demonitor(bw_ctx_t *ctx, uint64_t ref) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  bw__refent m;
  if (a->ext == NULL || !bw__reftab_take(&a->ext->mon_out, ref, &m))
    return BW_ENOTFOUND;
  bw__send_sys(a->rt, m.pid, a->pid, BW__K_DEMONITOR, ref, NULL);
  return 0;
}

int bw__force_exit(bw__runtime *rt, bw_pid_t pid, uint32_t force) {
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return BW_ENOPROC;
  /* acq_rel CAS: set before the wake-up below is queued (the owner
   * re-reads after popping it); a kill overrides a forced shutdown, never
   * the other way round */
  uint32_t old = bw__ld32_rlx(&a->force);
  while ((old == 0 || (old == BW__FORCE_SHUTDOWN && force == BW__FORCE_KILL)) &&
         !bw__cas32(&a->force, old, force))
    old = bw__ld32_rlx(&a->force);
  /* no allocation: the kill cannot fail for want of memory (release.c) */
  bw__exit_wake(rt, a);
  bw__pid_unpin(s);
  return 0;
}

static bw__msg *exit_msg(bw__runtime *rt, bw_pid_t to, bw_pid_t from, const bw_reason_t *r,
                         bool link_exit) {
  bw__msg *m = bw__msg_new(rt, to, BW__K_EXIT, 0, r, sizeof(*r));
  if (m == NULL)
    return NULL;
  m->pub.from = from;
  m->pub.flags = link_exit ? BW__MF_LINKEXIT : 0;
  return m;
}

int bw__exit_signal(bw__runtime *rt, bw_pid_t to, bw_pid_t from, const bw_reason_t *r,
                    bool link_exit) {
  if (!bw__pid_is_local(rt, to)) {
    /* another node's actor: the signal travels as a message; its node
     * applies it (urgency, kill) with bw__exit_signal there */
    bw__msg *m = exit_msg(rt, to, from, r, link_exit);
    return m != NULL ? bw__deliver(rt, m, false) : BW_ENOMEM;
  }
  if (r->kind == BW_REASON_KILL)
    return bw__force_exit(rt, to, BW__FORCE_KILL);
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, to, &s);
  if (a == NULL)
    return BW_ENOPROC;
  /* relaxed: whether it traps now; see bw_trap_exit */
  bool urgent = r->kind != BW_REASON_NORMAL && (bw__ld32_rlx(&a->trap) & BW__SIG_TRAP) == 0;
  bw__pid_unpin(s);
  bw__msg *m = exit_msg(rt, to, from, r, link_exit);
  if (m == NULL)
    return BW_ENOMEM;
  if (!urgent)
    return bw__deliver(rt, m, false);
  a = bw__pid_pin(rt, to, &s);
  if (a == NULL) {
    bw__msg_free(rt, m);
    return BW_ENOPROC;
  }
  /* release (CAS): the node's reason is written before the owner can take
   * it; the first urgent exit wins, later ones are dropped (the actor is
   * exiting anyway) */
  if (!BW__CAS(&a->urgent, NULL, m))
    bw__msg_free(rt, m);
  bw__exit_wake(rt, a);
  bw__pid_unpin(s);
  return 0;
}

int bw_exit(bw_runtime_t *rt, bw_pid_t pid, int kind, int code, const char *text) {
  if (rt == NULL || kind < 0 || kind >= BW_REASON__COUNT)
    return BW_EINVAL;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  bw_reason_t r;
  bw__reason_set(&r, kind, code, text);
  return bw__exit_signal(rt, pid, bw__current_pid(rt), &r, false);
}

/* Runs on the receiving actor. Returns 0 (consumed), 1 (exit with *die),
 * or 2 (deliver m to the handler, rewritten as BW_MSG_EXIT / BW_MSG_DOWN). */
int bw__link_handle(bw__actor *a, bw__msg *m, bw_reason_t *die) {
  bw__actor_ext *e;
  bw_pid_t from = m->pub.from;
  switch (m->kind) {
  case BW__K_EXIT: {
    bw_reason_t r;
    memcpy(&r, m->inl, sizeof(r));
    if (m->pub.flags & BW__MF_LINKEXIT) {
      /* the peer is gone; an exit from an unlinked pid (we unlinked
       * meanwhile) is ignored, as in Erlang */
      if (!links_remove(a, from))
        return 0;
    }
    if ((bw__ld32_rlx(&a->trap) & BW__SIG_TRAP)) {
      m->kind = BW__K_WAKE; /* a signal, not counted as a user message */
      m->pub.type = BW_MSG_EXIT;
      m->pub.data = m->inl;
      m->pub.len = sizeof(bw_reason_t);
      m->pub.flags &= BW_MSGF_REQUEST | BW_MSGF_REPLY | BW_MSGF_MOVED;
      return 2;
    }
    if (r.kind == BW_REASON_NORMAL)
      return 0;
    *die = r;
    return 1;
  }
  case BW__K_DOWN:
    if (a->ext == NULL || !bw__reftab_take(&a->ext->mon_out, m->pub.ref, NULL))
      return 0; /* demonitored meanwhile */
    m->kind = BW__K_WAKE;
    m->pub.type = BW_MSG_DOWN;
    m->pub.data = m->inl;
    m->pub.len = sizeof(bw_reason_t);
    m->pub.flags &= BW_MSGF_REQUEST | BW_MSGF_REPLY | BW_MSGF_MOVED;
    return 2;
  case BW__K_LINK:
    if (!links_add(a, from)) {
      /* cannot record the link: fail safe, tell the peer we are gone */
      bw_reason_t r;
      bw__reason_set(&r, BW_REASON_CRASH, BW_ENOMEM, "out of memory recording a link");
      *die = r;
      return 1;
    }
    return 0;
  case BW__K_UNLINK:
    links_remove(a, from);
    return 0;
  case BW__K_MONITOR:
    e = bw__ext_get(a);
    if (e == NULL || !bw__reftab_put(&e->mon_in, m->pub.ref, from, 0)) {
      bw_reason_t r;
      bw__reason_set(&r, BW_REASON_NOPROC, BW_ENOMEM, "out of memory recording a monitor");
      bw__send_sys(a->rt, from, a->pid, BW__K_DOWN, m->pub.ref, &r);
    }
    return 0;
  case BW__K_DEMONITOR:
    if (a->ext != NULL)
      bw__reftab_take(&a->ext->mon_in, m->pub.ref, NULL);
    return 0;
  default:
    return 0;
  }
}

static void send_exit(bw__runtime *rt, bw_pid_t to, bw_pid_t from, const bw_reason_t *r) {
  bw__exit_signal(rt, to, from, r, true);
}

/* A signal found in a dead actor's mailbox gets the answer it would have
 * got: a LINK an EXIT with the reason, a MONITOR a DOWN. */
void bw__link_bounce(bw__runtime *rt, bw__msg *m, const bw_reason_t *r) {
  if (m->kind == BW__K_LINK)
    send_exit(rt, m->pub.from, m->to, r);
  else if (m->kind == BW__K_MONITOR)
    bw__send_sys(rt, m->pub.from, m->to, BW__K_DOWN, m->pub.ref, r);
}

void bw__link_on_exit(bw__actor *a, const bw_reason_t *r) {
  bw__actor_ext *e = a->ext;
  if (e == NULL)
    return;
  for (uint32_t i = 0; i < e->nlinks; i++)
    send_exit(a->rt, e->links[i], a->pid, r);
  e->nlinks = 0;
  for (uint32_t i = 0; i < e->mon_in.cap; i++)
    if (e->mon_in.e[i].ref != 0)
      bw__send_sys(a->rt, e->mon_in.e[i].pid, a->pid, BW__K_DOWN, e->mon_in.e[i].ref, r);
  bw__reftab_free(&e->mon_in);
  for (uint32_t i = 0; i < e->mon_out.cap; i++)
    if (e->mon_out.e[i].ref != 0)
      bw__send_sys(a->rt, e->mon_out.e[i].pid, a->pid, BW__K_DEMONITOR, e->mon_out.e[i].ref, NULL);
  bw__reftab_free(&e->mon_out);
}
