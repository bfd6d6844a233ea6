/*
 * bulwark: request/reply with correlation refs and deadlines, the
 * synchronous call for non-actor threads, and receive timeouts.
 *
 * A request carries a fresh ref; the requester records it with its deadline
 * timer. The first reply with that ref is delivered and the record dropped;
 * a reply without a record (after the deadline, or a duplicate) is a dead
 * letter "late_reply". A target that dies with the request unanswered
 * replies BW_ENOPROC from its exit path.
 *
 * bw_call makes a one-shot waiter: a pid with a mailbox and a semaphore
 * instead of a behaviour. It monitors the target (so a target that dies
 * holding a deferred request still ends the call), sends the request, arms
 * the deadline on the runtime's clock, and sleeps on the semaphore, which
 * the mailbox's schedule hook posts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/mailbox.h"

/* The request is settled: stop its deadline and, unless its target is
 * gone (DOWN), the monitor on it. */
static void pending_done(bw__actor *a, const bw__refent *p, bool demonitor) {
  if (p->timer)
    bw__timer_cancel(a->rt, p->timer);
  if (demonitor)
    bw__send_sys(a->rt, p->pid, a->pid, BW__K_DEMONITOR, p->ref, NULL);
}

static bool pending_take(bw__actor *a, uint64_t ref, bw__refent *out) {
  return a->ext != NULL && bw__reftab_take(&a->ext->reqs, ref, out);
}

/* cls: the timer cap's class (runtime/timer.c, "The cap") */
static int arm_internal(bw__runtime *rt, bw_pid_t to, int kind, uint64_t ref, uint64_t ms,
                        bw_timer_t *out, int cls) {
  bw__msg *m = bw__msg_new(rt, to, kind, 0, NULL, 0);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.ref = ref;
  m->pub.from = to;
  int rc = bw__timer_arm_in(rt, ms * 1000000ull, 0, m, out, cls);
  if (rc != 0)
    bw__msg_free(rt, m);
  return rc;
}

static bw__msg *request_msg(bw__runtime *rt, bw_pid_t to, bw_pid_t from, uint32_t type,
                            const void *data, size_t len, uint64_t ref) {
  bw__msg *m = bw__msg_new(rt, to, BW__K_USER, type, data, len);
  if (m == NULL)
    return NULL;
  m->pub.from = from;
  m->pub.ref = ref;
  m->pub.flags = BW_MSGF_REQUEST;
  return m;
}

static int check_payload(uint32_t type, const void *data, size_t len) {
  if (type >= BW_MSG_SYSTEM_BASE || (len > 0 && data == NULL))
    return BW_EINVAL;
  if (len > BW_MSG_INLINE_MAX)
    return BW_ETOOBIG;
  return 0;
}

/* Records the request (ref, deadline), sends m (built by the caller, with
 * its payload) and monitors the target. On failure m is released without
 * its moved payload's destructor (the caller keeps a moved payload). */
static int send_request(bw__actor *a, bw_pid_t to, bw__msg *m, uint64_t timeout_ms,
                        uint64_t *ref) {
  bw__runtime *rt = a->rt;
  uint64_t r = bw__new_ref(rt);
  bw_timer_t timer = 0;
  int rc;
  if (timeout_ms > 0 && (rc = arm_internal(rt, a->pid, BW__K_REQTIMEOUT, r, timeout_ms, &timer,
                                           BW__TM_DEADLINE)) != 0) {
    bw__msg_release_node(rt, m);
    return rc;
  }
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL || !bw__reftab_put(&e->reqs, r, to, timer)) {
    if (timer)
      bw__timer_cancel(rt, timer);
    bw__msg_release_node(rt, m);
    return BW_ENOMEM;
  }
  m->pub.from = a->pid;
  m->pub.ref = r;
  m->pub.flags |= BW_MSGF_REQUEST;
  rc = bw__deliver(rt, m, true);
  if (rc == BW_EFULL)
    bw__msg_release_node(rt, m); /* not queued: the caller keeps a moved payload */
  if (rc != 0) {
    bw__refent p;
    if (pending_take(a, r, &p))
      pending_done(a, &p, false);
    return rc;
  }
  /* watch the target (after the request, so per-pair order puts a reply
   * before the DOWN), with the request's ref: if it exits with the request
   * held, the DOWN becomes a BW_ENOPROC reply. If it is already gone, its
   * exit path answers the request. */
  bw__send_sys(rt, to, a->pid, BW__K_MONITOR, r, NULL);
  if (ref != NULL)
    *ref = r;
  return 0;
}

int bw_request(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data, size_t len,
               uint64_t timeout_ms, uint64_t *ref) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a)
    return BW_ENOTACTOR;
  int rc = check_payload(type, data, len);
  if (rc != 0)
    return rc;
  if (!bw__rt_running(a->rt))
    return BW_ESHUTDOWN;
  bw__msg *m = request_msg(a->rt, to, a->pid, type, data, len, 0);
  if (m == NULL)
    return BW_ENOMEM;
  return send_request(a, to, m, timeout_ms, ref);
}

int bw_request_move(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                    void (*dtor)(void *), uint64_t timeout_ms, uint64_t *ref) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a)
    return BW_ENOTACTOR;
  if (type >= BW_MSG_SYSTEM_BASE || len > UINT32_MAX || (len > 0 && ptr == NULL))
    return BW_EINVAL;
  bw__runtime *rt = a->rt;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  /* a pointer means nothing in another process; the caller keeps it */
  if (!bw__move_ok(rt, to, type))
    return BW_EREMOTE;
  bw__msg *m = bw__msg_alloc(rt, sizeof(bw__dtor_fn));
  if (m == NULL)
    return BW_ENOMEM;
  m->to = to;
  m->pub.type = type;
  m->pub.len = (uint32_t)len;
  m->pub.data = ptr;
  m->pub.flags = BW_MSGF_MOVED;
  bw__msg_set_dtor(m, dtor);
  return send_request(a, to, m, timeout_ms, ref);
}

/* A request deferred as a reply token (defer.c) and answered the old way,
 * by bw_reply on a copy of it: the answer went out (or to the dead
 * letters), so the token is spent and the exit will not answer it again.
 * One compare when the actor holds no token. */
static int spend_token(bw__actor *a, uint64_t ref, int rc) {
  if ((rc == 0 || rc == BW_ENOPROC) && a->ext != NULL && a->ext->tokens.n != 0)
    (void)bw__reftab_take(&a->ext->tokens, ref, NULL);
  return rc;
}

int bw_reply(bw_ctx_t *ctx, const bw_msg_t *req, int status, uint32_t type, const void *data,
             size_t len) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || req == NULL || !(req->flags & BW_MSGF_REQUEST) || status > 0)
    return BW_EINVAL;
  int rc = check_payload(type, data, len);
  if (rc != 0)
    return rc;
  bw__runtime *rt = a->rt;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  if (a->cur_msg != NULL && &a->cur_msg->pub == req)
    bw__tl.replied = true;
  bw__msg *m = bw__msg_new(rt, req->from, BW__K_USER, type, data, len);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.from = a->pid;
  m->pub.ref = req->ref;
  m->pub.status = status;
  m->pub.flags = BW_MSGF_REPLY;
  return spend_token(a, req->ref, bw__deliver(rt, m, false));
}

int bw_reply_move(bw_ctx_t *ctx, const bw_msg_t *req, int status, uint32_t type, void *ptr,
                  size_t len, void (*dtor)(void *)) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || req == NULL || !(req->flags & BW_MSGF_REQUEST) || status > 0 ||
      type >= BW_MSG_SYSTEM_BASE || len > UINT32_MAX || (len > 0 && ptr == NULL))
    return BW_EINVAL;
  bw__runtime *rt = a->rt;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  /* a pointer means nothing in another process; the caller keeps it */
  if (!bw__move_ok(rt, req->from, type))
    return BW_EREMOTE;
  if (a->cur_msg != NULL && &a->cur_msg->pub == req)
    bw__tl.replied = true;
  bw__msg *m = bw__msg_alloc(rt, sizeof(bw__dtor_fn));
  if (m == NULL)
    return BW_ENOMEM;
  m->to = req->from;
  m->pub.type = type;
  m->pub.len = (uint32_t)len;
  m->pub.from = a->pid;
  m->pub.ref = req->ref;
  m->pub.status = status;
  m->pub.data = ptr;
  m->pub.flags = BW_MSGF_REPLY | BW_MSGF_MOVED;
  bw__msg_set_dtor(m, dtor);
  return spend_token(a, req->ref, bw__deliver(rt, m, false));
}

int bw__request_on_reply(bw__actor *a, bw__msg *m) {
  bw__refent p;
  if (!pending_take(a, m->pub.ref, &p))
    return 0;
  pending_done(a, &p, true);
  return 1;
}

int bw__request_on_timeout(bw__actor *a, bw__msg *m) {
  bw__refent p;
  if (!pending_take(a, m->pub.ref, &p))
    return 0;
  p.timer = 0; /* it fired */
  pending_done(a, &p, true);
  return 1;
}

int bw__request_on_down(bw__actor *a, bw__msg *m) {
  bw__refent p;
  if (!pending_take(a, m->pub.ref, &p))
    return 0;
  pending_done(a, &p, false);
  m->pub.type = 0;
  m->pub.len = 0;
  m->pub.data = NULL;
  m->pub.status = BW_ENOPROC;
  m->pub.flags = BW_MSGF_REPLY;
  return 1;
}

void bw__request_on_exit(bw__actor *a) {
  bw__actor_ext *e = a->ext;
  if (e == NULL)
    return;
  for (uint32_t i = 0; i < e->reqs.cap; i++)
    if (e->reqs.e[i].ref != 0)
      pending_done(a, &e->reqs.e[i], true);
  bw__reftab_free(&e->reqs);
}

/* --- receive timeout ------------------------------------------------------ */

int bw_set_receive_timeout(bw_ctx_t *ctx, uint64_t ms) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a || ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return BW_ENOMEM;
  e->rt_ms = ms;
  if (ms == 0) {
    a->flags &= (uint16_t)~BW__AF_HAS_RT;
    if (e->rt_timer) {
      bw__timer_cancel(a->rt, e->rt_timer);
      e->rt_timer = 0;
    }
    return 0;
  }
  a->flags |= BW__AF_HAS_RT;
  e->rt_last_ns = bw__now_ns(a->rt);
  if (e->rt_timer) {
    bw__timer_cancel(a->rt, e->rt_timer);
    e->rt_timer = 0;
  }
  int rc = arm_internal(a->rt, a->pid, BW__K_RTIMEOUT, 0, ms, &e->rt_timer, BW__TM_APP);
  if (rc != 0) { /* at the cap: no receive timeout at all, not a later one */
    a->flags &= (uint16_t)~BW__AF_HAS_RT;
    e->rt_ms = 0;
  }
  return rc;
}

/* A message other than the timeout itself arrived: inactivity counts from
 * now, and the check is armed if it was not (it fires once per silence).
 * An armed timer is left alone; when it fires it re-arms for what is left. */
void bw__rtimeout_touch(bw__actor *a) {
  bw__actor_ext *e = a->ext;
  e->rt_last_ns = bw__now_ns(a->rt);
  if (e->rt_timer == 0) /* a timeout already set: exempt from the cap */
    arm_internal(a->rt, a->pid, BW__K_RTIMEOUT, 0, e->rt_ms, &e->rt_timer, BW__TM_SYSTEM);
}

/* The check timer fired: 1 = deliver BW_MSG_TIMEOUT now. */
int bw__rtimeout_check(bw__actor *a) {
  bw__actor_ext *e = a->ext;
  if (e == NULL || !(a->flags & BW__AF_HAS_RT))
    return 0;
  e->rt_timer = 0;
  uint64_t now = bw__now_ns(a->rt);
  uint64_t due = e->rt_last_ns + e->rt_ms * 1000000ull;
  if (now >= due) {
    /* fires once; the next handled message re-arms it */
    return 1;
  }
  uint64_t left_ms = (due - now + 999999ull) / 1000000ull;
  arm_internal(a->rt, a->pid, BW__K_RTIMEOUT, 0, left_ms, &e->rt_timer, BW__TM_SYSTEM);
  return 0;
}

/* --- synchronous call -------------------------------------------------------- */

int bw__waiter_new(bw__runtime *rt, bw__actor **out);
void bw__waiter_free(bw__runtime *rt, bw__actor *w);

static bool on_scheduler(const bw__runtime *rt) {
  return bw__tl.th != NULL && bw__tl.th->rt == rt &&
         (bw__tl.th->kind == BW__TH_WORKER || bw__tl.th->kind == BW__TH_TIMER);
}

bool bw_may_block(const bw_runtime_t *rt) { return rt != NULL && !on_scheduler(rt); }

/* Blocks the calling thread until the waiter's mailbox has a message
 * (NULL: an exit was requested, i.e. the runtime is stopping). */
static bw__msg *waiter_next(bw__actor *w) {
  for (;;) {
    bw__qnode *q = bw__mpsc_pop(&w->mb, &w->mbc);
    if (q != NULL && q != &w->exit_q)
      return (bw__msg *)q;
    if (bw__actor_exit_pending(w))
      return NULL;
    if (bw__mpsc_mark_empty(&w->mb, &w->mbc)) {
      while (sem_wait(&w->ext->wake) != 0 && errno == EINTR) {
      }
    } else {
      bw__cpu_relax(); /* a push is between its two steps */
    }
  }
}

int bw_wait_exit(bw_runtime_t *rt, bw_pid_t pid, uint64_t timeout_ms, bw_reason_t *reason) {
  if (rt == NULL || timeout_ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  if (on_scheduler(rt))
    return BW_EWOULDBLOCK;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  bw__actor *w;
  int rc = bw__waiter_new(rt, &w);
  if (rc != 0)
    return rc;
  uint64_t mref = bw__new_ref(rt);
  bw_timer_t timer = 0;
  if (bw__send_sys(rt, pid, w->pid, BW__K_MONITOR, mref, NULL) != 0) {
    if (reason != NULL)
      bw__reason_set(reason, BW_REASON_NOPROC, BW_ENOPROC, NULL);
    bw__waiter_free(rt, w);
    return 0;
  }
  if (timeout_ms > 0 && (rc = arm_internal(rt, w->pid, BW__K_REQTIMEOUT, mref, timeout_ms, &timer,
                                              BW__TM_DEADLINE)) != 0)
    goto out;
  for (;;) {
    bw__msg *m = waiter_next(w);
    if (m == NULL) {
      rc = BW_ESHUTDOWN;
      break;
    }
    if (m->kind == BW__K_DOWN && m->pub.ref == mref) {
      if (reason != NULL)
        memcpy(reason, m->inl, sizeof(*reason));
      bw__msg_free(rt, m);
      timer = timer ? (bw__timer_cancel(rt, timer), 0) : 0;
      rc = 0;
      mref = 0;
      break;
    }
    if (m->kind == BW__K_REQTIMEOUT && m->pub.ref == mref) {
      bw__msg_free(rt, m);
      timer = 0;
      rc = BW_ETIMEDOUT;
      break;
    }
    m->to = w->pid;
    if (m->kind == BW__K_USER)
      bw__dead_letter(rt, m, BW_DL_EXITED);
    else
      bw__msg_free(rt, m);
  }
out:
  if (timer)
    bw__timer_cancel(rt, timer);
  if (mref != 0)
    bw__send_sys(rt, pid, w->pid, BW__K_DEMONITOR, mref, NULL);
  bw__waiter_free(rt, w);
  return rc;
}

/* The synchronous call: m is the request, built by the caller with its
 * payload; on a failure before it was queued m is released without its
 * moved payload's destructor (the caller keeps a moved payload). */
static int call_common(bw_runtime_t *rt, bw_pid_t to, bw__msg *m, uint64_t timeout_ms,
                       bw_reply_t *out) {
  int rc;
  bw__actor *w;
  if ((rc = bw__waiter_new(rt, &w)) != 0) {
    bw__msg_free(rt, m);
    return rc;
  }
  uint64_t ref = bw__new_ref(rt), mref = bw__new_ref(rt);
  bool monitored = bw__send_sys(rt, to, w->pid, BW__K_MONITOR, mref, NULL) == 0;
  /* the deadline counts from before the send */
  bw_timer_t timer = 0;
  if (timeout_ms > 0)
    rc = arm_internal(rt, w->pid, BW__K_REQTIMEOUT, ref, timeout_ms, &timer, BW__TM_DEADLINE);
  if (rc == 0) {
    m->pub.from = w->pid;
    m->pub.ref = ref;
    m->pub.flags |= BW_MSGF_REQUEST;
    rc = bw__deliver(rt, m, false);
  } else {
    bw__msg_free(rt, m);
  }
  bool done = rc != 0;
  while (!done) {
    bw__msg *r = waiter_next(w);
    if (r == NULL) {
      rc = BW_ESHUTDOWN;
      break;
    }
    if (r->kind == BW__K_USER && (r->pub.flags & BW_MSGF_REPLY) && r->pub.ref == ref) {
      bw__counters *c = bw__my_counters(rt);
      bw__ctr_add(rt, c, &c->handled, 1);
      rc = r->pub.status;
      out->status = r->pub.status;
      out->type = r->pub.type;
      out->len = r->pub.len;
      out->ptr = NULL;
      out->dtor = NULL;
      if (r->pub.flags & BW_MSGF_MOVED) {
        out->ptr = (void *)r->pub.data;
        out->dtor = bw__msg_dtor(r);
        bw__msg_set_dtor(r, NULL); /* the caller owns it now */
      } else if (r->pub.len > sizeof(out->data)) {
        rc = BW_ETOOBIG;
        out->len = 0;
      } else if (r->pub.len > 0) {
        memcpy(out->data, r->pub.data, r->pub.len);
      }
      bw__msg_free(rt, r);
      done = true;
    } else if (r->kind == BW__K_REQTIMEOUT && r->pub.ref == ref) {
      timer = 0;
      rc = BW_ETIMEDOUT;
      bw__msg_free(rt, r);
      done = true;
    } else if (r->kind == BW__K_DOWN && r->pub.ref == mref) {
      monitored = false;
      rc = BW_ENOPROC;
      bw__msg_free(rt, r);
      done = true;
    } else if (r->kind == BW__K_USER) {
      r->to = w->pid;
      bw__dead_letter(rt, r, BW_DL_LATE_REPLY);
    } else {
      bw__msg_free(rt, r);
    }
  }
  if (timer)
    bw__timer_cancel(rt, timer);
  if (monitored)
    bw__send_sys(rt, to, w->pid, BW__K_DEMONITOR, mref, NULL);
  bw__waiter_free(rt, w);
  return rc;
}

static int call_check(bw_runtime_t *rt, bw_reply_t *out) {
  if (rt == NULL || out == NULL)
    return BW_EINVAL;
  out->status = 0;
  out->type = 0;
  out->len = 0;
  out->ptr = NULL;
  out->dtor = NULL;
  return 0;
}

int bw_call(bw_runtime_t *rt, bw_pid_t to, uint32_t type, const void *data, size_t len,
            uint64_t timeout_ms, bw_reply_t *out) {
  int rc = call_check(rt, out);
  if (rc == 0)
    rc = check_payload(type, data, len);
  if (rc != 0)
    return rc;
  if (on_scheduler(rt))
    return BW_EWOULDBLOCK;
  if (bw__ld32_acq(&rt->state) != BW__RT_RUNNING)
    return BW_ESHUTDOWN;
  bw__msg *m = request_msg(rt, to, BW_PID_NONE, type, data, len, 0);
  if (m == NULL)
    return BW_ENOMEM;
  return call_common(rt, to, m, timeout_ms, out);
}

int bw_call_move(bw_runtime_t *rt, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                 void (*dtor)(void *), uint64_t timeout_ms, bw_reply_t *out) {
  int rc = call_check(rt, out);
  if (rc == 0 && (type >= BW_MSG_SYSTEM_BASE || len > UINT32_MAX || (len > 0 && ptr == NULL)))
    rc = BW_EINVAL;
  else if (rc == 0 && on_scheduler(rt))
    rc = BW_EWOULDBLOCK;
  else if (rc == 0 && bw__ld32_acq(&rt->state) != BW__RT_RUNNING)
    rc = BW_ESHUTDOWN;
  else if (rc == 0 && !bw__move_ok(rt, to, type))
    rc = BW_EREMOTE;
  bw__msg *m = rc == 0 ? bw__msg_alloc(rt, sizeof(bw__dtor_fn)) : NULL;
  if (rc == 0 && m == NULL)
    rc = BW_ENOMEM;
  if (rc != 0) {
    if (ptr != NULL && dtor != NULL)
      dtor(ptr); /* ours whatever the outcome */
    return rc;
  }
  m->to = to;
  m->pub.type = type;
  m->pub.len = (uint32_t)len;
  m->pub.data = ptr;
  m->pub.flags = BW_MSGF_MOVED;
  bw__msg_set_dtor(m, dtor);
  return call_common(rt, to, m, timeout_ms, out);
}
