/*
 * bulwark: the actor object: its memory and its ext, the calls a handler
 * makes on its own context (bw_self, bw_fail, bw_exit_self, bw_trap_exit),
 * bw_call's waiters, and a few queries by pid.
 *
 * The rest of an actor's life is in a file per idea: spawn.c (options,
 * init, publishing), turn.c (one turn of message handling, crashes),
 * mute.c (back-pressure: muting and unmuting senders), release.c (the exit
 * path), dedicated.c (actors on their own threads).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

void bw__reason_set(bw_reason_t *r, int kind, int code, const char *text) {
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  r->code = code;
  if (text != NULL)
    snprintf(r->text, sizeof(r->text), "%s", text);
}

bw_pid_t bw_self(const bw_ctx_t *ctx) {
  return ctx == NULL ? BW_PID_NONE : ((const bw__actor *)ctx)->pid;
}

bw_runtime_t *bw_ctx_runtime(const bw_ctx_t *ctx) {
  return ctx == NULL ? NULL : ((const bw__actor *)ctx)->rt;
}

const char *bw_ctx_name(const bw_ctx_t *ctx) {
  const bw__actor *a = (const bw__actor *)ctx;
  return (a == NULL || a->beh == NULL || a->beh->name == NULL) ? "" : a->beh->name;
}

bw_pid_t bw_parent(const bw_ctx_t *ctx) {
  const bw__actor *a = (const bw__actor *)ctx;
  /* the ext's lineage is the actor's own, written before its init */
  return (a == NULL || a->ext == NULL) ? BW_PID_NONE : a->ext->parent;
}

const char *bw_child_id(const bw_ctx_t *ctx) {
  const bw__actor *a = (const bw__actor *)ctx;
  return (a == NULL || a->ext == NULL) ? NULL : a->ext->child_id;
}

void bw_fail(bw_ctx_t *ctx, int code, const char *fmt, ...) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a || bw__tl.jb == NULL) {
    fprintf(stderr, "bulwark: bw_fail called outside its actor's callback; aborting\n");
    abort();
  }
  bw__reason_set(&bw__tl.crash, BW_REASON_CRASH, code == 0 ? BW_ECRASH : code, NULL);
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bw__tl.crash.text, sizeof(bw__tl.crash.text), fmt, ap);
    va_end(ap);
  }
  longjmp(*bw__tl.jb, 1);
}

int bw_exit_self(bw_ctx_t *ctx, int kind, int code, const char *text) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a || kind < 0 || kind >= BW_REASON__COUNT ||
      kind == BW_REASON_KILL)
    return BW_EINVAL;
  bw_reason_t r;
  bw__reason_set(&r, kind, code, text);
  bw__msg *m = bw__msg_new(a->rt, a->pid, BW__K_EXIT, 0, &r, sizeof(r));
  if (m == NULL)
    return BW_ENOMEM;
  /* release (CAS): the reason is written before it is taken; an urgent exit
   * that another actor already sent wins */
  if (!BW__CAS(&a->urgent, NULL, m))
    bw__msg_free(a->rt, m);
  return 0;
}

void bw_trap_exit(bw_ctx_t *ctx, bool on) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL)
    return;
  /* release: senders read it (relaxed) to choose urgent or in-order exits;
   * a race with a concurrent signal is inherent, as in Erlang. The owner is
   * the only writer of this word, so a load and a store make no lost update */
  uint32_t w = bw__ld32_rlx(&a->trap);
  bw__st32_rel(&a->trap, on ? (w | BW__SIG_TRAP) : (w & ~(uint32_t)BW__SIG_TRAP));
}

bw__actor_ext *bw__ext_get(bw__actor *a) {
  if (a->ext == NULL) {
    bw__actor_ext *e = calloc(1, sizeof(bw__actor_ext));
    /* release: the zeroed ext is complete before a signaller that loads
     * the pointer (bw__wake_muted, acquire) reads its muted_on */
    BW__ST_REL(&a->ext, e);
  }
  return a->ext;
}

/* --- memory ------------------------------------------------------------- */

_Static_assert(offsetof(bw__actor, state) == 2 * BW__CACHELINE,
               "actor header: two cache lines (senders', owner's)");

bw__actor *bw__actor_alloc(bw__runtime *rt, size_t size) {
  int cls = bw__pool_class(size);
  bw__actor *a;
  if (cls >= 0) {
    bw__cache *c = bw__my_cache(rt);
    a = c != NULL ? bw__pool_alloc(c, cls) : NULL;
  } else {
    a = aligned_alloc(64, (size + 63) & ~(size_t)63);
  }
  if (a == NULL)
    return NULL;
  memset(a, 0, size);
  a->cls = cls >= 0 ? (uint8_t)cls : 0xFF;
  a->exit_q.next = BW__EXITQ_UNUSED;
  return a;
}

void bw__actor_free(bw__runtime *rt, bw__actor *a) {
  if (a->cls == 0xFF)
    free(a);
  else
    bw__pool_free(bw__my_cache(rt), a);
}

void bw__ext_free(bw__actor *a) {
  bw__actor_ext *e = a->ext;
  if (e == NULL)
    return;
  if (a->cflags & (BW__CF_DEDICATED | BW__CF_WAITER)) {
    sem_destroy(&e->wake);
    if (a->cflags & BW__CF_DEDICATED)
      sem_destroy(&e->init_done);
  }
  free(e->links);
  bw__reftab_free(&e->mon_out);
  bw__reftab_free(&e->mon_in);
  bw__reftab_free(&e->reqs);
  free(e);
  a->ext = NULL;
}

/* --- scheduling hook for dedicated actors and waiters ---------------------- */

void bw__waiter_wake(bw__actor *a) {
  /* sem_post is lock-free in glibc (an atomic add, and a futex wake only if
   * the thread sleeps) */
  sem_post(&a->ext->wake);
}

/* --- waiters (bw_call) ------------------------------------------------------ */

int bw__waiter_new(bw__runtime *rt, bw__actor **out);
int bw__waiter_new(bw__runtime *rt, bw__actor **out) {
  bw__actor *a = bw__actor_alloc(rt, sizeof(bw__actor));
  if (a == NULL)
    return BW_ENOMEM;
  a->rt = rt;
  a->cflags = BW__CF_WAITER;
  bw__mpsc_init(&a->mb, &a->mbc, false); /* the caller is "running" it until it waits */
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL || sem_init(&e->wake, 0, 0) != 0) {
    free(a->ext);
    bw__actor_free(rt, a);
    return BW_ENOMEM;
  }
  int rc = bw__pid_alloc(rt, a);
  if (rc != 0) {
    sem_destroy(&e->wake);
    free(e);
    bw__actor_free(rt, a);
    return rc;
  }
  bw__faa64(&rt->live, 1);
  bw__pid_publish(rt, a);
  *out = a;
  return 0;
}

void bw__waiter_free(bw__runtime *rt, bw__actor *w);
void bw__waiter_free(bw__runtime *rt, bw__actor *w) {
  bw_reason_t r;
  bw__reason_set(&r, BW_REASON_NORMAL, 0, NULL);
  bw__pid_invalidate(rt, w->pid);
  bw__msg *u = BW__XCHG(&w->urgent, NULL);
  if (u != NULL)
    bw__msg_free(rt, u);
  bw__qnode *q;
  while ((q = bw__mpsc_pop(&w->mb, &w->mbc)) != NULL) {
    if (q == &w->exit_q)
      continue;
    bw__msg *m = (bw__msg *)q;
    m->to = w->pid;
    if (m->kind == BW__K_USER)
      bw__dead_letter(rt, m, (m->pub.flags & BW_MSGF_REPLY) ? BW_DL_LATE_REPLY : BW_DL_EXITED);
    else {
      bw__link_bounce(rt, m, &r);
      bw__msg_free(rt, m);
    }
  }
  bw__ext_free(w);
  bw__pid_free(rt, w->pid);
  bw__actor_free(rt, w);
  bw__live_dec(rt, false);
}


int bw_mailbox_depth(bw_runtime_t *rt, bw_pid_t pid, uint32_t *out) {
  if (rt == NULL || out == NULL)
    return BW_EINVAL;
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return BW_ENOPROC;
  /* relaxed: a snapshot of two counters that move independently */
  int32_t d = (int32_t)(bw__ld32_rlx(&a->mb_pushed) - bw__ld32_rlx(&a->mb_popped));
  bw__pid_unpin(s);
  *out = d > 0 ? (uint32_t)d : 0; /* batched counts: see send.c */
  return 0;
}

int bw__actor_behaviour(bw_runtime_t *rt, bw_pid_t pid, const bw_behaviour_t **out) {
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return BW_ENOPROC;
  *out = a->beh; /* fixed at spawn */
  bw__pid_unpin(s);
  return 0;
}
