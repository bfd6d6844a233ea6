/*
 * bulwark: continuations on requests (bw_request_then, bw_then) and the
 * await form (bw_await): include/bulwark/reply.h.
 *
 * A continuation rides on a request the actor made with bw_request: the
 * request keeps its record in the actor's request table (request.c: the
 * deadline, the monitor on the target), and this file adds a second map
 * from the same ref to the function to run. The turn (turn.c) asks, for
 * each answer the request table accepted (a reply, the deadline, the
 * target's DOWN), whether the ref has a continuation: if so the entry is
 * taken out first, then its function runs in place of the handler. Taken
 * before it runs, so it runs at most once; run on every way a request is
 * settled, so exactly once while the actor lives; and the request table
 * and this map are emptied together at exit, where the closures are freed
 * without running.
 *
 * Memory: the map (a reftab: ref -> index) and the array of entries grow
 * by doubling and are reused through a free list. A request checks for
 * room before it sends, so nothing can fail after it went out, and costs
 * no allocation once the tables have grown to the number in flight.
 * Rejected: a node allocated per continuation (an allocation per request),
 * and the closure inside the request's own entry (which every request and
 * monitor would then pay for, in the table every reply looks up).
 *
 * The await: while an await is in progress (await_ref != 0) the turn
 * takes its messages through bw__then_pop, which lets through what
 * settles the awaited request and the bookkeeping no handler sees, and
 * holds the rest in a list threaded through the messages' own mailbox
 * links (no allocation). When the awaited continuation has run, the held
 * messages are handled first, in arrival order, then the mailbox again.
 * A held message is not yet counted as popped (turn.c counts it when it
 * is handled): it stays in the backlog that back-pressure and
 * bw_mailbox_depth see, and in a bounded mailbox's count.
 *
 * Everything here is the owner's: the actor's own thread reads and writes
 * these tables and a->flags; no atomics, no locks.
 */
#include <stdlib.h>

#include "bulwark/reply.h"
#include "runtime/grow.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

typedef struct bw__cont {
  bw_then_fn fn;
  void *closure;
  void (*closure_free)(void *);
  uint32_t next_free; /* on the free list: the next free entry's index + 1 */
} bw__cont;

struct bw__thens {
  bw__reftab map;    /* request ref -> index in cont (the reftab's slot) */
  bw__cont *cont;    /* the entries; a free one is on the free list */
  uint32_t ncont;    /* entries ever handed out (the rest are beyond) */
  uint32_t capcont;
  uint32_t free1;    /* the first free entry's index + 1; 0 = none */
  bw__cont run;      /* the one running now (fn set): freed at exit if fn unwound */
  uint64_t await_ref; /* the awaited request; 0 = none */
  bw__msg *held, *held_tail; /* messages held by the await, oldest first */
};

static bw__actor *running_actor(bw_ctx_t *ctx) {
  bw__actor *a = (bw__actor *)ctx;
  return a != NULL && bw__tl.cur == a ? a : NULL;
}

static struct bw__thens *thens_get(bw__actor *a) {
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return NULL;
  if (e->thens == NULL)
    e->thens = calloc(1, sizeof(*e->thens));
  return e->thens;
}

/* Room for one more continuation, so that attaching one never fails once
 * its request has gone out. O(1) unless a table must grow. */
static bool room(struct bw__thens *t) {
  if ((t->map.n + 1) * 2 > t->map.cap && !bw__reftab_reserve(&t->map, t->map.n + 1))
    return false;
  return t->free1 != 0 ||
         bw__grow((void **)&t->cont, &t->capcont, t->ncont, sizeof(*t->cont), 8);
}

/* After room(): cannot fail. */
static void attach(struct bw__thens *t, uint64_t ref, bw_then_fn fn, void *closure,
                   void (*closure_free)(void *)) {
  uint32_t i;
  if (t->free1 != 0) {
    i = t->free1 - 1;
    t->free1 = t->cont[i].next_free;
  } else {
    i = t->ncont++;
  }
  t->cont[i] = (bw__cont){.fn = fn, .closure = closure, .closure_free = closure_free};
  (void)bw__reftab_put(&t->map, ref, BW_PID_NONE, i);
}

bool bw__then_take(bw__actor *a, uint64_t ref) {
  struct bw__thens *t = a->ext->thens;
  uint32_t i = bw__reftab_take_slot(&t->map, ref);
  if (i == UINT32_MAX)
    return false;
  t->run = t->cont[i];
  t->cont[i] = (bw__cont){.next_free = t->free1};
  t->free1 = i + 1;
  if (t->await_ref == ref)
    t->await_ref = 0; /* over: the held messages come next (bw__then_pop) */
  return true;
}

/* What the continuation is told: the reply, or NULL when the runtime
 * settled the request (the deadline; the callee's DOWN, or what its exit
 * path answers for it, BW_ENOPROC or BW_ENOREPLY, which carry nothing). */
static const bw_msg_t *outcome(const bw__msg *m, int *status) {
  switch (m->kind) {
  case BW__K_USER:
    *status = m->pub.status;
    /* the runtime's answers for a callee that exited: nothing to read */
    if ((m->pub.status == BW_ENOPROC || m->pub.status == BW_ENOREPLY) && m->pub.type == 0 &&
        m->pub.len == 0)
      return NULL;
    return &m->pub;
  case BW__K_REQTIMEOUT:
    *status = BW_ETIMEDOUT;
    return NULL;
  default: /* the target's DOWN */
    *status = BW_ENOPROC;
    return NULL;
  }
}

int bw__then_run(bw__actor *a, bw__msg *m) {
  struct bw__thens *t = a->ext->thens;
  int status;
  const bw_msg_t *reply = outcome(m, &status);
  bw__cont c = t->run;
  int rc = c.fn((bw_ctx_t *)a, a->state, reply, status, c.closure);
  /* not reached if fn unwound (bw_fail): t->run is still set, and the
   * exit path frees the closure (bw__then_on_exit) */
  t->run.fn = NULL;
  if (c.closure_free != NULL)
    c.closure_free(c.closure);
  return rc;
}

/* --- the public calls ------------------------------------------------------- */

/* What every call that records a continuation checks first. */
static int prepare(bw_ctx_t *ctx, bw_then_fn fn, struct bw__thens **out) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (fn == NULL)
    return BW_EINVAL;
  struct bw__thens *t = thens_get(a);
  if (t == NULL || !room(t))
    return BW_ENOMEM;
  *out = t;
  return 0;
}

int bw_request_then(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data, size_t len,
                    uint64_t timeout_ms, bw_then_fn fn, void *closure,
                    void (*closure_free)(void *), uint64_t *ref) {
  struct bw__thens *t;
  uint64_t r;
  int rc = prepare(ctx, fn, &t);
  if (rc == 0)
    rc = bw_request(ctx, to, type, data, len, timeout_ms, &r);
  if (rc != 0)
    return rc;
  attach(t, r, fn, closure, closure_free);
  if (ref != NULL)
    *ref = r;
  return 0;
}

int bw_request_then_move(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                         void (*dtor)(void *), uint64_t timeout_ms, bw_then_fn fn,
                         void *closure, void (*closure_free)(void *), uint64_t *ref) {
  struct bw__thens *t;
  uint64_t r;
  int rc = prepare(ctx, fn, &t);
  if (rc == 0)
    rc = bw_request_move(ctx, to, type, ptr, len, dtor, timeout_ms, &r);
  if (rc != 0)
    return rc;
  attach(t, r, fn, closure, closure_free);
  if (ref != NULL)
    *ref = r;
  return 0;
}

int bw_then(bw_ctx_t *ctx, uint64_t ref, bw_then_fn fn, void *closure,
            void (*closure_free)(void *)) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (fn == NULL)
    return BW_EINVAL;
  /* a pending request of ours: else nothing would ever settle it */
  if (a->ext == NULL || !bw__reftab_has(&a->ext->reqs, ref))
    return BW_ENOTFOUND;
  if (a->ext->thens != NULL && bw__reftab_has(&a->ext->thens->map, ref))
    return BW_ESTATE;
  struct bw__thens *t;
  int rc = prepare(ctx, fn, &t);
  if (rc != 0)
    return rc;
  attach(t, ref, fn, closure, closure_free);
  return 0;
}

int bw_await(bw_ctx_t *ctx, uint64_t ref) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  struct bw__thens *t = a->ext != NULL ? a->ext->thens : NULL;
  if (t == NULL || !bw__reftab_has(&t->map, ref))
    return BW_ENOTFOUND;
  if (t->await_ref != 0)
    return BW_ESTATE;
  t->await_ref = ref;
  /* owner-only word: the turn reads it before its next pop */
  a->flags |= BW__AF_HOLD;
  return 0;
}

int bw_request_await(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data, size_t len,
                     uint64_t timeout_ms, bw_then_fn fn, void *closure,
                     void (*closure_free)(void *), uint64_t *ref) {
  bw__actor *a = running_actor(ctx);
  if (a != NULL && a->ext != NULL && a->ext->thens != NULL && a->ext->thens->await_ref != 0)
    return BW_ESTATE; /* before sending: one await at a time */
  uint64_t r;
  int rc = bw_request_then(ctx, to, type, data, len, timeout_ms, fn, closure, closure_free, &r);
  if (rc != 0)
    return rc;
  (void)bw_await(ctx, r); /* cannot fail: ours, pending, no await in progress */
  if (ref != NULL)
    *ref = r;
  return 0;
}

/* --- the await's hold ------------------------------------------------------- */

/* Whether m goes to dispatch while the await is in progress: the
 * awaited request's answer, deadline or DOWN, and the signals that only
 * keep books (links, monitors, a wake-up) and never reach a handler. */
static bool passes(const bw__msg *m, uint64_t ref) {
  switch (m->kind) {
  case BW__K_USER:
    return (m->pub.flags & BW_MSGF_REPLY) && m->pub.ref == ref;
  case BW__K_REQTIMEOUT:
  case BW__K_DOWN:
    return m->pub.ref == ref;
  case BW__K_LINK:
  case BW__K_UNLINK:
  case BW__K_MONITOR:
  case BW__K_DEMONITOR:
  case BW__K_WAKE:
    return true;
  default: /* exits and DOWNs a handler would see, timeouts, readiness */
    return false;
  }
}

static void hold(struct bw__thens *t, bw__msg *m) {
  m->q.next = NULL;
  if (t->held_tail != NULL)
    t->held_tail->q.next = &m->q;
  else
    t->held = m;
  t->held_tail = m;
}

bw__qnode *bw__then_pop(bw__actor *a) {
  struct bw__thens *t = a->ext->thens;
  /* a flood while awaiting must not keep the worker: after a batch of
   * holds, "nothing now" ends the turn (the mailbox is not empty, so the
   * actor goes back on a run queue, turn.c) */
  for (unsigned holds = 0; holds < a->rt->batch; holds++) {
    if (t->await_ref == 0) {
      bw__msg *m = t->held;
      if (m != NULL) {
        t->held = (bw__msg *)m->q.next;
        if (t->held == NULL)
          t->held_tail = NULL;
        return &m->q;
      }
      a->flags &= (uint16_t)~BW__AF_HOLD; /* nothing held, no await */
      return bw__mpsc_pop(&a->mb, &a->mbc);
    }
    bw__qnode *q = bw__mpsc_pop(&a->mb, &a->mbc);
    if (q == NULL || q == &a->exit_q || passes((bw__msg *)q, t->await_ref))
      return q;
    hold(t, (bw__msg *)q);
  }
  return NULL;
}

bool bw__then_held_ready(const bw__actor *a) {
  const struct bw__thens *t = a->ext->thens;
  return t->await_ref == 0 && t->held != NULL;
}

/* --- exit ------------------------------------------------------------------- */

bw__msg *bw__then_on_exit(bw__actor *a) {
  struct bw__thens *t = a->ext != NULL ? a->ext->thens : NULL;
  if (t == NULL)
    return NULL;
  /* a continuation that unwound (bw_fail) never reached its free */
  if (t->run.fn != NULL && t->run.closure_free != NULL)
    t->run.closure_free(t->run.closure);
  for (uint32_t i = 0; i < t->map.cap; i++) {
    if (t->map.e[i].ref == 0)
      continue;
    bw__cont *c = &t->cont[t->map.e[i].slot];
    if (c->closure_free != NULL)
      c->closure_free(c->closure);
  }
  bw__msg *held = t->held;
  bw__reftab_free(&t->map);
  free(t->cont);
  free(t);
  a->ext->thens = NULL;
  a->flags &= (uint16_t)~BW__AF_HOLD;
  return held;
}
