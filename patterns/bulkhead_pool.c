/*
 * bulwark: the bulkhead pool actor (see include/bulwark/bulkhead.h and
 * patterns/BULKHEAD.md).
 *
 * The pool is one actor; everything it owns (worker table, idle stacks,
 * wait queue, restart history) is its private state, touched only by its
 * handler, so nothing here needs a lock or an atomic. All of it is
 * allocated at init, sized by the options: no allocation per job.
 *
 * A job travels: requester -> pool (its request) -> worker (W_JOB/W_FN,
 * carrying who to answer) -> requester (the worker's reply, directly), and
 * worker -> pool (W_DONE) so the pool can hand the worker the next job.
 * The reply goes straight from the worker to the requester: one hop less
 * than relaying it through the pool, and without the pool holding a
 * pending request per job (a bw_request from pool to worker would also
 * cost a monitor and a demonitor message per job). The pool still answers
 * every job it did not hand on (full, rate limited, timed out), and every
 * job whose worker died before its W_DONE (BW_ECRASH).
 *
 * The workers run the wrapper in bulkhead_worker.c; the options and the
 * API that talks to the pool are in bulkhead.c.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/ratelimit.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/bulkhead_internal.h"
#include "runtime/atomic.h"
#include "runtime/intensity.h"

enum { S_EMPTY = 0, S_IDLE, S_BUSY, S_LENT, S_RETIRING };
enum { K_MSG = 0, K_FN, K_LEASE };

typedef struct slot {
  bw_pid_t pid;
  bw_pid_t req_from; /* S_BUSY: who to answer if the worker dies */
  uint64_t req_ref;
  uint64_t mref;     /* S_LENT: the monitor on the borrower (0: none) */
  bw_timer_t rtimer; /* S_IDLE overflow: the retire timer (0: none) */
  uint32_t epoch;    /* bumped whenever the slot gets work or a lease */
  uint8_t state;
  bool overflow;
  bool req_reply;
} slot_t;

/* One waiting piece of work: the request, copied. */
typedef struct qent {
  uint64_t deadline_ns;
  uint64_t enq_ns;
  bw_pid_t from;
  uint64_t ref;
  uint32_t type;
  uint16_t kind;
  uint16_t reply;
  uint32_t len;
  uint32_t _pad;
  unsigned char data[BW_MSG_INLINE_MAX];
} qent_t;

typedef struct pool {
  bw_runtime_t *rt;
  bw_bulkhead_t *handle; /* publishes self while this actor runs */
  bw_pid_t self;
  const bw_behaviour_t *wbeh;
  const bw_behaviour_t *user;
  void *user_arg;
  char name[BW_BULKHEAD_NAME_MAX + 1];
  uint32_t nbase, novf, qcap;
  uint64_t qtimeout_ns, idle_ms;
  bool dedicated;
  bool limited;
  bw_ratelimit_t rl;

  slot_t *slots;          /* [0, nbase) base workers, then overflow */
  uint32_t *idle_base;    /* stack of idle base slots */
  uint32_t nidle_base;
  uint32_t *idle_ovf;     /* stack of idle overflow slots (most recent on top) */
  uint32_t nidle_ovf;
  uint32_t *free_ovf;     /* stack of empty overflow slots */
  uint32_t nfree_ovf;
  uint32_t busy, lent, ovf_live;

  qent_t *q; /* ring */
  uint32_t qhead, qlen;
  bw_timer_t qtimer; /* the one queue timer, due at or before the head's deadline */
  bool qtimer_armed;

  bw__intensity rst; /* worker restart times (ns): intensity over the period */

  bw_bulkhead_stats_t m; /* counters (gauges are filled on demand) */
} pool_t;

/* --- small helpers ------------------------------------------------------------ */

/* Answers a request that is not the message being handled (kept, or
 * carried by a worker's slot). */
static void answer(bw_ctx_t *ctx, bw_pid_t from, uint64_t ref, int status) {
  bw_msg_t req = {.from = from, .ref = ref, .flags = BW_MSGF_REQUEST};
  (void)bw_reply(ctx, &req, status, 0, NULL, 0);
}

static void publish(pool_t *p, int type, bw_pid_t subject, int64_t a, int64_t b,
                    const char *text) {
  if (!bw_event_wanted(p->rt, type))
    return; /* one load when nobody listens */
  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = (uint32_t)type;
  ev.subject = subject;
  ev.a = a;
  ev.b = b;
  bw_event_set_names(&ev, p->name, NULL, text);
  (void)bw_event_publish(p->rt, &ev);
}

static void reject(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg, int code) {
  p->m.rejected++;
  if (code == BW_ERATE_LIMITED)
    p->m.rate_limited++;
  if (msg->flags & BW_MSGF_REQUEST)
    (void)bw_reply(ctx, msg, code, 0, NULL, 0);
  publish(p, BW_EV_BULKHEAD_REJECTED, msg->from, code, p->qlen,
          code == BW_ERATE_LIMITED ? "rate limited" : "pool and queue full");
}

static void stack_remove(uint32_t *st, uint32_t *n, uint32_t v) {
  for (uint32_t i = *n; i-- > 0;)
    if (st[i] == v) {
      st[i] = st[--*n];
      return;
    }
}

/* --- workers ---------------------------------------------------------------- */

static int spawn_worker(bw_ctx_t *ctx, pool_t *p, uint32_t i) {
  (void)ctx;
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.link = true; /* the pool traps exits: it learns of every death */
  so.dedicated_thread = p->dedicated;
  warg a = {.pool = p->self, .user = p->user, .user_arg = p->user_arg, .slot = i};
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(p->rt, p->wbeh, &a, &so, &pid);
  if (rc != 0)
    return rc;
  slot_t *s = &p->slots[i];
  s->pid = pid;
  s->state = S_IDLE;
  s->mref = 0;
  s->rtimer = 0;
  return 0;
}

/* A free worker, started if need be: an idle base worker first (so overflow
 * workers fall idle and retire), then the overflow worker used last (the
 * others age towards retirement), then a new overflow worker. Returns the
 * slot, or -1. */
static int64_t take_worker(bw_ctx_t *ctx, pool_t *p) {
  if (p->nidle_base > 0)
    return p->idle_base[--p->nidle_base];
  if (p->nidle_ovf > 0) {
    uint32_t i = p->idle_ovf[--p->nidle_ovf];
    slot_t *s = &p->slots[i];
    if (s->rtimer != 0) {
      (void)bw_timer_cancel(p->rt, s->rtimer);
      s->rtimer = 0;
    }
    return i;
  }
  if (p->nfree_ovf > 0) {
    uint32_t i = p->free_ovf[p->nfree_ovf - 1];
    if (spawn_worker(ctx, p, i) != 0)
      return -1; /* counted as no capacity: the work queues or is refused */
    p->nfree_ovf--;
    p->ovf_live++;
    p->m.overflow_started++;
    return i;
  }
  return -1;
}

static void retire(pool_t *p, uint32_t i) {
  slot_t *s = &p->slots[i];
  s->state = S_RETIRING;
  s->rtimer = 0;
  p->m.overflow_retired++;
  /* shutdown, so the user's terminate runs; the EXIT empties the slot */
  (void)bw_exit(p->rt, s->pid, BW_REASON_SHUTDOWN, 0, "bulkhead: idle overflow worker retired");
}

/* Hands work to worker i: a job (sent to it) or a lease (answered here). */
static void start_work(bw_ctx_t *ctx, pool_t *p, uint32_t i, int kind, bw_pid_t from,
                       uint64_t ref, bool reply, uint32_t type, const void *data, uint32_t len) {
  slot_t *s = &p->slots[i];
  s->epoch++;
  p->m.started++;
  if (kind == K_LEASE) {
    bw_pid_t borrower = from;
    if (len == sizeof(bw_pid_t))
      memcpy(&borrower, data, sizeof borrower);
    s->state = S_LENT;
    s->mref = 0;
    p->lent++;
    p->m.leases++;
    /* a dead borrower: the DOWN (noproc) comes at once and returns it */
    if (borrower != BW_PID_NONE && bw_monitor(ctx, borrower, &s->mref) != 0)
      s->mref = 0;
    bw_bulkhead_lease_t lease = {.worker = s->pid, .slot = i, .epoch = s->epoch};
    if (reply) {
      bw_msg_t req = {.from = from, .ref = ref, .flags = BW_MSGF_REQUEST};
      (void)bw_reply(ctx, &req, 0, BW_BULKHEAD_CHECKOUT, &lease, sizeof lease);
    }
    return;
  }
  s->state = S_BUSY;
  s->req_from = from;
  s->req_ref = ref;
  s->req_reply = reply;
  p->busy++;
  unsigned char buf[BW_MSG_INLINE_MAX];
  job_hdr h = {.from = from, .ref = ref, .type = type, .reply = reply};
  memcpy(buf, &h, sizeof h);
  if (len > 0)
    memcpy(buf + sizeof h, data, len);
  /* if the worker just died, its EXIT is on the way and answers the job */
  (void)bw_send(p->rt, s->pid, kind == K_FN ? W_FN : W_JOB, buf, sizeof h + len);
}

/* --- the queue -------------------------------------------------------------- */

static void arm_queue_timer(pool_t *p, uint64_t now) {
  if (p->qtimer_armed || p->qlen == 0)
    return;
  uint64_t due = p->q[p->qhead].deadline_ns;
  uint64_t ms = due > now ? (due - now + 999999u) / 1000000u : 1;
  if (bw_send_after(p->rt, p->self, ms ? ms : 1, P_EXPIRE, NULL, 0, &p->qtimer) == 0)
    p->qtimer_armed = true;
}

static qent_t *queue_pop(pool_t *p) {
  qent_t *e = &p->q[p->qhead];
  p->qhead = p->qhead + 1 == p->qcap ? 0 : p->qhead + 1;
  p->qlen--;
  return e;
}

static void time_out(bw_ctx_t *ctx, pool_t *p, const qent_t *e, uint64_t now) {
  p->m.timed_out++;
  if (e->reply)
    answer(ctx, e->from, e->ref, BW_ETIMEDOUT);
  publish(p, BW_EV_BULKHEAD_TIMEOUT, e->from, (int64_t)((now - e->enq_ns) / 1000000u), p->qlen,
          "queue timeout");
}

/* Worker i has nothing to do: give it the oldest waiting work that has not
 * timed out, or make it idle (an overflow worker retires, now or after
 * overflow_idle_ms). */
static void worker_free(bw_ctx_t *ctx, pool_t *p, uint32_t i) {
  slot_t *s = &p->slots[i];
  uint64_t now = p->qlen > 0 ? bw_now_ns(p->rt) : 0;
  while (p->qlen > 0) {
    qent_t *e = queue_pop(p);
    if (e->deadline_ns <= now) {
      time_out(ctx, p, e, now);
      continue;
    }
    start_work(ctx, p, i, e->kind, e->from, e->ref, e->reply, e->type, e->data, e->len);
    return;
  }
  s->state = S_IDLE;
  s->epoch++;
  if (!s->overflow) {
    p->idle_base[p->nidle_base++] = i;
  } else if (p->idle_ms == 0) {
    retire(p, i);
  } else {
    p->idle_ovf[p->nidle_ovf++] = i;
    retire_note n = {i, s->epoch};
    if (bw_send_after(p->rt, p->self, p->idle_ms, P_RETIRE, &n, sizeof n, &s->rtimer) != 0)
      s->rtimer = 0;
  }
}

/* --- submissions ------------------------------------------------------------ */

static void submit(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg, int kind) {
  bool reply = (msg->flags & BW_MSGF_REQUEST) != 0;
  /* malformed work is refused before it counts */
  int bad = 0;
  if (kind == K_MSG && p->user == NULL)
    bad = BW_EINVAL; /* no worker behaviour to handle it */
  else if (kind == K_MSG && msg->len > BW_BULKHEAD_PAYLOAD_MAX)
    bad = BW_ETOOBIG;
  else if (kind == K_FN) {
    bw_bulkhead_job_t job;
    if (msg->len != sizeof job)
      bad = BW_EINVAL;
    else if (memcpy(&job, msg->data, sizeof job), job.fn == NULL)
      bad = BW_EINVAL;
  } else if (kind == K_LEASE && msg->len != 0 && msg->len != sizeof(bw_pid_t))
    bad = BW_EINVAL;
  if (bad != 0) {
    if (reply)
      (void)bw_reply(ctx, msg, bad, 0, NULL, 0);
    return;
  }
  p->m.submitted++;
  if (p->limited && bw_ratelimit_try_acquire(&p->rl, NULL) != 0) {
    reject(ctx, p, msg, BW_ERATE_LIMITED);
    return;
  }
  int64_t i = take_worker(ctx, p);
  if (i >= 0) {
    start_work(ctx, p, (uint32_t)i, kind, msg->from, msg->ref, reply, msg->type, msg->data,
               msg->len);
    return;
  }
  if (p->qlen == p->qcap) {
    reject(ctx, p, msg, BW_EBULKHEAD_FULL);
    return;
  }
  uint64_t now = bw_now_ns(p->rt);
  uint32_t tail = p->qhead + p->qlen;
  if (tail >= p->qcap)
    tail -= p->qcap;
  qent_t *e = &p->q[tail];
  e->enq_ns = now;
  e->deadline_ns = now + p->qtimeout_ns;
  e->from = msg->from;
  e->ref = msg->ref;
  e->type = msg->type;
  e->kind = (uint16_t)kind;
  e->reply = reply;
  e->len = msg->len;
  if (msg->len > 0)
    memcpy(e->data, msg->data, msg->len);
  p->qlen++;
  arm_queue_timer(p, now);
}

/* --- events from workers, borrowers and timers ------------------------------- */

static bool valid_slot(const pool_t *p, uint32_t i, bw_pid_t pid) {
  return i < p->nbase + p->novf && p->slots[i].pid == pid && pid != BW_PID_NONE;
}

static void on_done(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg) {
  done_note d;
  if (msg->len != sizeof d)
    return;
  memcpy(&d, msg->data, sizeof d);
  if (!valid_slot(p, d.slot, msg->from) || p->slots[d.slot].state != S_BUSY)
    return;
  p->busy--;
  p->m.completed++;
  worker_free(ctx, p, d.slot);
}

static void end_lease(bw_ctx_t *ctx, pool_t *p, uint32_t i) {
  slot_t *s = &p->slots[i];
  if (s->mref != 0)
    (void)bw_demonitor(ctx, s->mref);
  s->mref = 0;
  p->lent--;
  p->m.returns++;
}

static void on_checkin(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg) {
  bw_bulkhead_lease_t l;
  if (msg->len != sizeof l)
    return;
  memcpy(&l, msg->data, sizeof l);
  if (!valid_slot(p, l.slot, l.worker))
    return;
  slot_t *s = &p->slots[l.slot];
  if (s->state != S_LENT || s->epoch != l.epoch)
    return; /* stale: returned already, or its worker was restarted */
  end_lease(ctx, p, l.slot);
  worker_free(ctx, p, l.slot);
}

static void on_down(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg) {
  /* O(workers), on a borrower's death only */
  for (uint32_t i = 0; i < p->nbase + p->novf; i++) {
    slot_t *s = &p->slots[i];
    if (s->state == S_LENT && s->mref == msg->ref && s->mref != 0) {
      s->mref = 0; /* a DOWN ends the monitor */
      end_lease(ctx, p, i);
      worker_free(ctx, p, i);
      return;
    }
  }
}

static void on_expire(bw_ctx_t *ctx, pool_t *p) {
  p->qtimer_armed = false;
  p->qtimer = 0;
  uint64_t now = bw_now_ns(p->rt);
  while (p->qlen > 0 && p->q[p->qhead].deadline_ns <= now)
    time_out(ctx, p, queue_pop(p), now);
  arm_queue_timer(p, now);
}

static void on_retire(pool_t *p, const bw_msg_t *msg) {
  retire_note n;
  if (msg->len != sizeof n)
    return;
  memcpy(&n, msg->data, sizeof n);
  if (n.slot >= p->nbase + p->novf)
    return;
  slot_t *s = &p->slots[n.slot];
  if (!s->overflow || s->state != S_IDLE || s->epoch != n.epoch)
    return; /* it found work meanwhile */
  stack_remove(p->idle_ovf, &p->nidle_ovf, n.slot);
  retire(p, n.slot);
}

/* Records a restart now; true if it stays within the intensity (as a
 * supervisor's: runtime/intensity.h). The ring is reserved at init. */
static bool restart_allowed(pool_t *p) {
  uint64_t now = bw_now_ns(p->rt);
  (void)bw__intensity_add(&p->rst, now);
  return !bw__intensity_exceeded(&p->rst, now);
}

static void on_exit_signal(bw_ctx_t *ctx, pool_t *p, const bw_msg_t *msg) {
  bw_reason_t r;
  memset(&r, 0, sizeof r);
  if (msg->len >= sizeof r)
    memcpy(&r, msg->data, sizeof r);
  int64_t found = -1;
  if (msg->from != BW_PID_NONE)
    for (uint32_t i = 0; i < p->nbase + p->novf; i++) /* O(workers), on exits only */
      if (p->slots[i].pid == msg->from && p->slots[i].state != S_EMPTY) {
        found = i;
        break;
      }
  if (found < 0) {
    /* not a worker: the parent (a supervisor, bw_bulkhead_stop, runtime
     * stop) or another link. Do what an actor that does not trap exits
     * would do: exit with the same reason, unless it is normal. */
    if (r.kind != BW_REASON_NORMAL)
      (void)bw_exit_self(ctx, r.kind, r.code, r.text);
    return;
  }
  uint32_t i = (uint32_t)found;
  slot_t *s = &p->slots[i];
  switch (s->state) {
  case S_RETIRING: /* asked for */
    s->state = S_EMPTY;
    s->pid = BW_PID_NONE;
    p->ovf_live--;
    p->free_ovf[p->nfree_ovf++] = i;
    return;
  case S_BUSY:
    p->busy--;
    p->m.crashed++;
    if (s->req_reply)
      answer(ctx, s->req_from, s->req_ref, BW_ECRASH);
    break;
  case S_LENT:
    end_lease(ctx, p, i);
    break;
  case S_IDLE:
    if (s->overflow) {
      stack_remove(p->idle_ovf, &p->nidle_ovf, i);
      if (s->rtimer != 0)
        (void)bw_timer_cancel(p->rt, s->rtimer);
      s->rtimer = 0;
    } else {
      stack_remove(p->idle_base, &p->nidle_base, i);
    }
    break;
  default:
    break;
  }
  s->epoch++;
  s->pid = BW_PID_NONE;
  s->state = S_EMPTY;
  if (s->overflow) {
    /* not restarted: overflow workers start on demand */
    p->ovf_live--;
    p->free_ovf[p->nfree_ovf++] = i;
    if (p->qlen > 0) {
      int64_t j = take_worker(ctx, p);
      if (j >= 0)
        worker_free(ctx, p, (uint32_t)j);
    }
    return;
  }
  if (!restart_allowed(p)) {
    (void)bw_exit_self(ctx, BW_REASON_CRASH, BW_ELIMIT,
                       "bulkhead: worker restart intensity reached");
    return;
  }
  int rc = spawn_worker(ctx, p, i);
  if (rc != 0) {
    (void)bw_exit_self(ctx, BW_REASON_CRASH, rc, "bulkhead: worker restart failed");
    return;
  }
  p->m.restarted++;
  publish(p, BW_EV_CHILD_RESTARTED, s->pid, (int64_t)p->m.restarted, 0, r.text);
  worker_free(ctx, p, i);
}

static void fill_stats(const pool_t *p, bw_bulkhead_stats_t *out) {
  *out = p->m;
  memcpy(out->name, p->name, sizeof out->name);
  out->workers = p->nbase;
  out->max_overflow = p->novf;
  out->queue_capacity = p->qcap;
  out->busy = p->busy;
  out->lent = p->lent;
  out->queued = p->qlen;
  out->idle = p->nidle_base + p->nidle_ovf;
  out->overflow = p->ovf_live;
  out->available = p->nbase + p->novf - p->busy - p->lent;
  out->_pad = 0;
}

/* --- the behaviour ------------------------------------------------------------ */

/* The handle stops naming this actor: callers stop sending to a dead pid,
 * and a successor publishes its own (a failed CAS: it already did). */
static void unpublish(pool_t *p) {
  if (p->handle != NULL)
    (void)bw__cas64(&p->handle->pid, p->self, BW_PID_NONE);
  p->handle = NULL;
}

static void pool_free(pool_t *p) {
  unpublish(p);
  free(p->slots);
  free(p->idle_base);
  free(p->idle_ovf);
  free(p->free_ovf);
  free(p->q);
  bw__intensity_free(&p->rst);
  p->slots = NULL;
  p->idle_base = p->idle_ovf = p->free_ovf = NULL;
  p->q = NULL;
}

/* Stops every live worker (shutdown: their terminate runs). */
static void stop_workers(pool_t *p) {
  for (uint32_t i = 0; i < p->nbase + p->novf; i++)
    if (p->slots[i].state != S_EMPTY && p->slots[i].pid != BW_PID_NONE)
      (void)bw_exit(p->rt, p->slots[i].pid, BW_REASON_SHUTDOWN, 0, "bulkhead stopped");
}

/* One actor per handle: a live other one refuses this one. */
static int pool_claim(bw_ctx_t *ctx, bw_bulkhead_t *b) {
  if (b == NULL || b->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_bulkhead_pid(b);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(b->rt, old))
    return BW_EALREADY;
  return bw_bulkhead_opts_validate(&b->opts);
}

static int pool_init(bw_ctx_t *ctx, void *state, void *arg) {
  pool_t *p = state;
  bw_bulkhead_t *b = arg;
  int rc = pool_claim(ctx, b);
  if (rc != 0)
    return rc;
  const bw_bulkhead_opts_t *o = &b->opts;
  p->rt = bw_ctx_runtime(ctx);
  p->self = bw_self(ctx);
  p->user = o->worker;
  p->user_arg = o->worker_arg;
  snprintf(p->name, sizeof p->name, "%s", o->name != NULL ? o->name : "bulkhead");
  p->nbase = o->workers;
  p->novf = o->max_overflow;
  p->qcap = o->queue_capacity;
  p->qtimeout_ns = o->queue_timeout_ms * 1000000ull;
  p->idle_ms = o->overflow_idle_ms;
  p->dedicated = o->dedicated_threads;
  p->limited = o->rate_limit;
  if (p->limited && bw_ratelimit_init(&p->rl, p->rt, o->rate, o->rate_period_ms, o->rate_burst) != 0)
    return BW_EINVAL;
  int32_t mr = o->max_restarts == 0 ? 10 : o->max_restarts < 0 ? 0 : o->max_restarts;
  uint64_t period_ns = (o->restart_period_ms ? o->restart_period_ms : 5000) * 1000000ull;
  uint32_t n = p->nbase + p->novf;
  p->wbeh = bw__bulkhead_wrapper_for(p->user);
  p->slots = calloc(n, sizeof *p->slots);
  p->idle_base = calloc(p->nbase, sizeof(uint32_t));
  p->idle_ovf = calloc(p->novf ? p->novf : 1, sizeof(uint32_t));
  p->free_ovf = calloc(p->novf ? p->novf : 1, sizeof(uint32_t));
  p->q = calloc(p->qcap ? p->qcap : 1, sizeof(qent_t));
  int rrc = bw__intensity_init(&p->rst, (uint32_t)mr, period_ns, true);
  if (p->wbeh == NULL || p->slots == NULL || p->idle_base == NULL || p->idle_ovf == NULL ||
      p->free_ovf == NULL || p->q == NULL || rrc != 0) {
    pool_free(p);
    return BW_ENOMEM;
  }
  for (uint32_t i = p->nbase; i < n; i++) {
    p->slots[i].overflow = true;
    p->free_ovf[p->nfree_ovf++] = n - 1 - (i - p->nbase); /* lowest slot on top */
  }
  bw_trap_exit(ctx, true);
  for (uint32_t i = 0; i < p->nbase; i++) {
    rc = spawn_worker(ctx, p, i);
    if (rc != 0) {
      stop_workers(p);
      pool_free(p);
      return rc;
    }
  }
  /* idle stack: slot 0 on top, so work goes to workers in order */
  for (uint32_t i = p->nbase; i-- > 0;)
    p->idle_base[p->nidle_base++] = i;
  p->handle = b;
  /* release: the pool is set up before callers find it through the handle */
  bw__st64_rel(&b->pid, p->self);
  return 0;
}

static int pool_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  pool_t *p = state;
  switch (msg->type) {
  case W_DONE:
    on_done(ctx, p, msg);
    return BW_CONTINUE;
  case P_EXPIRE:
    if (msg->from == p->self)
      on_expire(ctx, p);
    return BW_CONTINUE;
  case P_RETIRE:
    if (msg->from == p->self)
      on_retire(p, msg);
    return BW_CONTINUE;
  case BW_BULKHEAD_RUN:
    submit(ctx, p, msg, K_FN);
    return BW_CONTINUE;
  case BW_BULKHEAD_CHECKOUT:
    submit(ctx, p, msg, K_LEASE);
    return BW_CONTINUE;
  case BW_BULKHEAD_CHECKIN:
    on_checkin(ctx, p, msg);
    return BW_CONTINUE;
  case BW_BULKHEAD_STATS:
    if (msg->flags & BW_MSGF_REQUEST) {
      bw_bulkhead_stats_t m;
      fill_stats(p, &m);
      (void)bw_reply(ctx, msg, 0, BW_BULKHEAD_STATS, &m, sizeof m);
    }
    return BW_CONTINUE;
  case BW_MSG_EXIT:
    on_exit_signal(ctx, p, msg);
    return BW_CONTINUE;
  case BW_MSG_DOWN:
    on_down(ctx, p, msg);
    return BW_CONTINUE;
  default:
    if (msg->type < BW_MSG_PATTERN_BASE) {
      submit(ctx, p, msg, K_MSG);
    } else if (msg->flags & BW_MSGF_REQUEST) {
      (void)bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0); /* not our protocol */
    }
    return BW_CONTINUE;
  }
}

static void pool_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  pool_t *p = state;
  if (p->slots == NULL)
    return;
  if (p->qtimer_armed)
    (void)bw_timer_cancel(p->rt, p->qtimer);
  while (p->qlen > 0) {
    qent_t *e = queue_pop(p);
    if (e->reply)
      answer(ctx, e->from, e->ref, BW_ESHUTDOWN);
  }
  for (uint32_t i = 0; i < p->nbase + p->novf; i++)
    if (p->slots[i].rtimer != 0)
      (void)bw_timer_cancel(p->rt, p->slots[i].rtimer);
  stop_workers(p);
  pool_free(p);
}

/* After a kill, which skips terminate: the pool's arrays (pool_free is
 * idempotent; after terminate there is nothing left). Its workers get the
 * kill's exit signal through their links, and its timers fire at a dead
 * pid: dead letters marked internal. Found by test_dead_letter's
 * test_internal_marked under LeakSanitizer. */
static void pool_cleanup(void *state) { pool_free(state); }

const bw_behaviour_t bw_bulkhead_behaviour = {.name = "bulkhead",
                                              .state_size = sizeof(pool_t),
                                              .init = pool_init,
                                              .handle = pool_handle,
                                              .terminate = pool_terminate,
                                              .cleanup = pool_cleanup,
                                              .never_muted = true};
