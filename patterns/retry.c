/*
 * bulwark: the retry executor, an actor that proxies requests to a target
 * and retries failed attempts.
 *
 * One request's life (a slot of the in-flight table):
 *
 *   arrive --> attempt --reply 0--------------------------> answer 0
 *                 |  \--reply < 0 / timeout / send error--> failed
 *                 |                                            |
 *              backoff timer <-- retry allowed <---------------+
 *                                (predicate, attempts left, deadline, budget)
 *                                otherwise --------------------> answer error
 *
 * Attempts are bw_request calls from the executor, so the runtime does the
 * per-attempt deadline (BW_MSG_REQUEST_TIMEOUT) and dead-letters the reply
 * of an attempt that timed out; a target that dies mid-attempt answers
 * BW_ENOPROC through the request's monitor. Backoff waits are bw_send_after
 * to self. The overall deadline needs no timer of its own: every attempt's
 * timeout is cut to end by it, and a backoff that would end past it ends the
 * request at once, so the request never outlives its deadline.
 *
 * Memory: the table (slots, a free stack, and an open-addressing map from an
 * attempt's request ref to its slot) is allocated once in init and freed in
 * terminate (or cleanup, after a kill): no allocation per request. Lookups are O(1): replies by ref
 * through the map, timer messages by slot index checked against the slot's
 * generation (a stale timer of a reused slot is ignored).
 */
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/registry.h"
#include "bulwark/retry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/retry_internal.h"
#include "runtime/atomic.h"
#include "runtime/reftab.h"

#define RETRY_MAGIC 0x52545259u /* "RTRY": set by bw_retry_new */

/* Counters in bw_retry_t.ctr. Relaxed atomic adds: several executors may
 * share a handle, readers only want each number exact, and nothing else is
 * published through them. */
enum {
  C_CALLS, C_REJECTED, C_ATTEMPTS, C_RETRIES, C_SUCCESSES, C_SUCC_RETRY, C_FAILURES,
  C_BUDGET, C_TIMEOUTS, C_DEADLINES, C_ABANDONED, C__COUNT
};

/* The handle: what outlives the executors. */
struct bw_retry {
  bw_runtime_t *rt;
  bw_retry_opts_t opts; /* name and target_name point at the copies below */
  char *name, *target_name;
  uint64_t ctr[C__COUNT];
  uint64_t incarnations; /* executors ever started: each its own jitter sequence */
  uint64_t pid;          /* bw_pid_t of the latest executor; release in its init */
  uint32_t live;         /* executors whose init ran and whose cleanup has not */
  bw_pid_t started;      /* the one bw_retry_start spawned (BW_PID_NONE: none) */
  uint32_t magic;
};

/* Internal message types (timers to self). */
enum {
  M_BACKOFF = BW_MSG_RETRY_BASE + 0x80u, /* payload: tick_t; the wait is over */
};
#define RETRY_RANGE_END (BW_MSG_RETRY_BASE + 0x100u)

typedef struct tick {
  uint32_t slot;
  uint32_t gen;
} tick_t;

typedef struct slot {
  bw_msg_t req;          /* the requester's message (data cleared): bw_reply needs it */
  bw_pid_t target;       /* fixed for this request (0: look up target_name per attempt) */
  uint64_t attempt_ref;  /* the attempt in flight, 0 while waiting */
  uint64_t deadline_at;  /* ms on the runtime's clock; 0 = none */
  bw_timer_t backoff;    /* armed backoff timer, 0 if none */
  bw_retry_backoff_state_t bo;
  uint32_t gen;          /* bumped at each reuse: stale ticks fail the check */
  uint32_t attempts;
  uint32_t type;
  uint32_t len;
  bool live;
  bool fixed_pid;        /* BW_ENOPROC is final: that pid will never live again */
  uint8_t data[BW_MSG_INLINE_MAX];
} slot_t;

typedef struct exec {
  bw_retry_t *pol;
  const bw_retry_opts_t *o;
  bw_runtime_t *rt;
  bw_pid_t self;
  uint64_t rng;      /* seeds each request's backoff sequence */
  bw_pid_t named_pid; /* target_name's pid, while it is alive */
  slot_t *slots;
  uint32_t *free_stack;
  uint32_t nfree;
  /* open addressing, linear probing: ref -> slot index; ref 0 = empty */
  bw__reftab map; /* attempt ref -> slot (runtime/reftab.h), reserved in init */
  bool counted;   /* counted in pol->live: cleanup takes it back */
} exec_t;

static void count(exec_t *x, int c) { (void)bw__faa64_rlx(&x->pol->ctr[c], 1); }

/* --- Options and policy ----------------------------------------------------- */

void bw_retry_opts_init(bw_retry_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->max_attempts = 3;
  o->backoff.kind = BW_RETRY_BACKOFF_FULL_JITTER;
  o->backoff.initial_ms = 100;
  o->backoff.max_ms = 10000;
  o->backoff.multiplier = 2.0;
  o->attempt_timeout_ms = 1000;
  o->capacity = 64;
}

int bw_retry_opts_validate(const bw_retry_opts_t *o) {
  if (o == NULL)
    return BW_EINVAL;
  if (o->target != BW_PID_NONE && o->target_name != NULL)
    return BW_EINVAL;
  if (o->target_name != NULL && (o->target_name[0] == '\0' || strlen(o->target_name) > BW_NAME_MAX))
    return BW_EINVAL;
  if (o->max_attempts == 0 || o->max_attempts > BW_RETRY_ATTEMPTS_MAX)
    return BW_EINVAL;
  if (bw_retry_backoff_validate(&o->backoff) != 0)
    return BW_EINVAL;
  if (o->attempt_timeout_ms == 0 || o->attempt_timeout_ms > BW_RETRY_DELAY_MAX_MS ||
      o->deadline_ms > BW_RETRY_DELAY_MAX_MS)
    return BW_EINVAL;
  if (o->capacity == 0 || o->capacity > BW_RETRY_CAPACITY_MAX)
    return BW_EINVAL;
  /* a budget that was never initialised would refuse every deposit and
   * withdrawal with BW_EINVAL, silently: refuse it here instead */
  bw_retry_budget_stats_t bs;
  if (o->budget != NULL && bw_retry_budget_stats(o->budget, &bs) != 0)
    return BW_EINVAL;
  return 0;
}

static void retry_free(bw_retry_t *r) {
  r->magic = 0;
  free(r->name);
  free(r->target_name);
  free(r);
}

/* A copy of s, or NULL for NULL; *bad set when out of memory. */
static char *dup_opt(const char *s, bool *bad) {
  if (s == NULL)
    return NULL;
  char *d = strdup(s);
  if (d == NULL)
    *bad = true;
  return d;
}

int bw_retry_new(bw_runtime_t *rt, const bw_retry_opts_t *o, bw_retry_t **out) {
  bw_retry_opts_t def;
  if (o == NULL) {
    bw_retry_opts_init(&def);
    o = &def;
  }
  if (rt == NULL || out == NULL || bw_retry_opts_validate(o) != 0)
    return BW_EINVAL;
  bw_retry_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return BW_ENOMEM;
  bool bad = false;
  r->rt = rt;
  r->opts = *o;
  r->name = dup_opt(o->name, &bad);
  r->target_name = dup_opt(o->target_name, &bad);
  r->opts.name = r->name;
  r->opts.target_name = r->target_name;
  r->pid = BW_PID_NONE;
  r->started = BW_PID_NONE;
  r->magic = RETRY_MAGIC;
  if (bad) {
    retry_free(r);
    return BW_ENOMEM;
  }
  *out = r;
  return 0;
}

int bw_retry_child_spec(bw_retry_t *r, const char *id, bw_child_spec_t *out) {
  if (r == NULL || r->magic != RETRY_MAGIC || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_retry_behaviour;
  out->arg = r;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

bw_pid_t bw_retry_pid(const bw_retry_t *r) {
  /* acquire: pairs with the executor's release store at the end of its init */
  return r == NULL ? BW_PID_NONE : bw__ld64_acq(&r->pid);
}

const char *bw_retry_name(const bw_retry_t *r) { return r == NULL ? NULL : r->name; }

/* Executors of r alive now. acquire: pairs with the release decrement in
 * an executor's cleanup, which runs before its exit is reported. */
static uint32_t live_executors(const bw_retry_t *r) { return bw__ld32_acq(&r->live); }

int bw_retry_start(bw_retry_t *r, bw_pid_t *out) {
  if (r == NULL || r->magic != RETRY_MAGIC)
    return BW_EINVAL;
  if (live_executors(r) > 0)
    return BW_EALREADY;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(r->rt, &bw_retry_behaviour, r, NULL, &pid);
  if (rc != 0)
    return rc;
  r->started = pid;
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_retry_stop(bw_retry_t *r) {
  if (r == NULL || r->magic != RETRY_MAGIC)
    return BW_EINVAL;
  if (live_executors(r) == 0)
    return 0;
  bw_pid_t pid = r->started;
  if (pid == BW_PID_NONE || !bw_is_alive(r->rt, pid))
    return BW_ERUNNING; /* only executors we did not start */
  /* refuse on a scheduler thread before the executor is told anything */
  if (!bw_may_block(r->rt))
    return BW_EWOULDBLOCK;
  (void)bw_exit(r->rt, pid, BW_REASON_SHUTDOWN, 0, "retry executor stopped");
  int rc = bw_wait_exit(r->rt, pid, 0, NULL);
  if (rc == BW_EWOULDBLOCK)
    return rc;
  r->started = BW_PID_NONE;
  return 0;
}

int bw_retry_destroy(bw_retry_t *r) {
  if (r == NULL)
    return 0;
  int rc = bw_retry_stop(r);
  if (rc == 0 && live_executors(r) > 0)
    rc = BW_ERUNNING; /* a supervised one besides ours */
  if (rc != 0)
    return rc;
  retry_free(r);
  return 0;
}

int bw_retry_stats(const bw_retry_t *r, bw_retry_stats_t *out) {
  if (r == NULL || out == NULL || r->magic != RETRY_MAGIC)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->calls = bw__ld64_rlx(&r->ctr[C_CALLS]);
  out->rejected = bw__ld64_rlx(&r->ctr[C_REJECTED]);
  out->attempts = bw__ld64_rlx(&r->ctr[C_ATTEMPTS]);
  out->retries = bw__ld64_rlx(&r->ctr[C_RETRIES]);
  out->successes = bw__ld64_rlx(&r->ctr[C_SUCCESSES]);
  out->successes_after_retry = bw__ld64_rlx(&r->ctr[C_SUCC_RETRY]);
  out->failures = bw__ld64_rlx(&r->ctr[C_FAILURES]);
  out->budget_exhausted = bw__ld64_rlx(&r->ctr[C_BUDGET]);
  out->timeouts = bw__ld64_rlx(&r->ctr[C_TIMEOUTS]);
  out->deadlines = bw__ld64_rlx(&r->ctr[C_DEADLINES]);
  out->abandoned = bw__ld64_rlx(&r->ctr[C_ABANDONED]);
  uint64_t done = out->successes + out->failures + out->abandoned;
  out->in_flight = out->calls > done ? out->calls - done : 0;
  return 0;
}

bool bw_retry_default_retryable(int status, void *arg) {
  (void)arg;
  return status == BW_ETIMEDOUT || status == BW_ENOPROC || status == BW_ENOTFOUND ||
         status == BW_EFULL;
}

int bw_retry_call_pack(void *buf, bw_pid_t target, uint32_t type, const void *data, size_t len,
                       size_t *out_len) {
  if (buf == NULL || out_len == NULL || target == BW_PID_NONE || type >= BW_MSG_SYSTEM_BASE ||
      (len > 0 && data == NULL))
    return BW_EINVAL;
  if (len > BW_RETRY_CALL_PAYLOAD_MAX)
    return BW_ETOOBIG;
  bw_retry_call_t h = {.target = target, .type = type, .reserved = 0};
  memcpy(buf, &h, sizeof h);
  if (len > 0)
    memcpy((uint8_t *)buf + sizeof h, data, len);
  *out_len = sizeof h + len;
  return 0;
}

/* --- Requests -------------------------------------------------------------- */

/* Ends a request: answers the requester, frees the slot. status 0 or < 0;
 * rep (may be NULL) is a target reply whose type and payload go along. */
static void finish(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  if (s->attempt_ref != 0) {
    (void)bw__reftab_take(&x->map, s->attempt_ref, NULL);
    s->attempt_ref = 0;
  }
  if (s->backoff != 0) {
    bw_timer_cancel(x->rt, s->backoff);
    s->backoff = 0;
  }
  uint32_t type = 0;
  const void *data = NULL;
  size_t len = 0;
  if (rep != NULL && rep->status == status) {
    type = rep->type;
    data = rep->data;
    len = rep->len;
    if (len > BW_MSG_INLINE_MAX) { /* a big moved payload: we cannot forward its ownership */
      status = BW_ETOOBIG;
      type = 0;
      data = NULL;
      len = 0;
    }
  }
  /* counted before the answer goes, so whoever gets the answer sees them */
  if (status == 0) {
    count(x, C_SUCCESSES);
    if (s->attempts > 1)
      count(x, C_SUCC_RETRY);
  } else {
    count(x, C_FAILURES);
  }
  /* The requester may be gone: bw_reply then dead-letters the answer, which
   * is all there is to do. */
  (void)bw_reply(ctx, &s->req, status, type, data, len);
  s->live = false;
  s->gen++;
  x->free_stack[x->nfree++] = si;
}

static void failed(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, const bw_msg_t *rep);

/* Sends one attempt. A send that fails at once is a failed attempt. */
static void attempt(bw_ctx_t *ctx, exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  uint64_t timeout = x->o->attempt_timeout_ms;
  if (s->deadline_at != 0) {
    uint64_t now = bw_now_ms(x->rt);
    if (now >= s->deadline_at) {
      count(x, C_DEADLINES);
      finish(ctx, x, si, BW_ETIMEDOUT, NULL);
      return;
    }
    if (s->deadline_at - now < timeout)
      timeout = s->deadline_at - now; /* the attempt ends by the deadline */
  }
  bw_pid_t to = s->target;
  int rc = 0;
  if (to == BW_PID_NONE) {
    /* The name's pid is cached while it lives: bw_whereis takes the
     * registry's lock, bw_is_alive is one load. A restarted target has a new
     * pid, so the dead cached one sends us back to the registry. */
    if (x->named_pid == BW_PID_NONE || !bw_is_alive(x->rt, x->named_pid)) {
      x->named_pid = BW_PID_NONE;
      rc = bw_whereis(x->rt, x->o->target_name, &x->named_pid);
    }
    to = x->named_pid;
  }
  s->attempts++;
  count(x, C_ATTEMPTS);
  uint64_t ref = 0;
  if (rc == 0)
    rc = bw_request(ctx, to, s->type, s->len ? s->data : NULL, s->len, timeout, &ref);
  if (rc != 0) {
    failed(ctx, x, si, rc, NULL);
    return;
  }
  s->attempt_ref = ref;
  (void)bw__reftab_put(&x->map, ref, to, si); /* reserved: cannot fail */
}

/* An attempt failed with status: retry after a backoff if everything
 * allows it, else end the request (the one decision: retry_internal.h). */
static void failed(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  const bw_retry_opts_t *o = x->o;
  bw__retry_ask a = {.status = status,
                     .fixed_pid = s->fixed_pid,
                     .pred = o->retryable,
                     .pred_arg = o->retryable_arg,
                     .attempts = s->attempts,
                     .max_attempts = o->max_attempts,
                     .backoff = &o->backoff,
                     .bo = &s->bo,
                     .now_ms = s->deadline_at != 0 ? bw_now_ms(x->rt) : 0,
                     .deadline_at_ms = s->deadline_at,
                     .budget = o->budget};
  uint64_t delay = 0;
  int end = status;
  switch (bw__retry_decide(&a, &delay, &end)) {
  case BW__RETRY_FINAL:
    finish(ctx, x, si, status, rep);
    return;
  case BW__RETRY_DEADLINE: /* no attempt could start before the deadline: say so now */
    count(x, C_DEADLINES);
    finish(ctx, x, si, end, NULL);
    return;
  case BW__RETRY_BUDGET:
    count(x, C_BUDGET);
    finish(ctx, x, si, end, NULL);
    return;
  case BW__RETRY_AGAIN:
    break;
  }
  tick_t t = {.slot = si, .gen = s->gen};
  int rc;
  if (delay == 0) /* nothing to wait for (full jitter can draw 0): go round the mailbox */
    rc = bw_send(x->rt, x->self, M_BACKOFF, &t, sizeof t);
  else
    rc = bw_send_after(x->rt, x->self, delay, M_BACKOFF, &t, sizeof t, &s->backoff);
  if (rc != 0) { /* shutting down or out of memory: the request cannot go on */
    finish(ctx, x, si, status, rep);
    return;
  }
  /* counted once the wait is armed: a test (or a monitor) that sees it can
   * move the clock knowing the retry's timer already runs */
  count(x, C_RETRIES);
}

static void arrive(bw_ctx_t *ctx, exec_t *x, const bw_msg_t *msg) {
  bw_pid_t target = x->o->target;
  uint32_t type = msg->type;
  const uint8_t *data = msg->data;
  size_t len = msg->len;
  if (msg->flags & BW_MSGF_MOVED)
    len = BW_MSG_INLINE_MAX + 1; /* bw_request never moves; refuse below */
  if (type == BW_MSG_RETRY_CALL) {
    bw_retry_call_t h;
    if (len < sizeof h || len > BW_MSG_INLINE_MAX) {
      count(x, C_REJECTED);
      bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      return;
    }
    memcpy(&h, data, sizeof h);
    target = h.target;
    type = h.type;
    data += sizeof h;
    len -= sizeof h;
    if (target == BW_PID_NONE || type >= BW_MSG_SYSTEM_BASE) {
      count(x, C_REJECTED);
      bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      return;
    }
  } else if ((type >= BW_MSG_RETRY_BASE && type < RETRY_RANGE_END) || len > BW_MSG_INLINE_MAX ||
             (target == BW_PID_NONE && x->o->target_name == NULL)) {
    count(x, C_REJECTED);
    bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    return;
  }
  if (x->nfree == 0) {
    count(x, C_REJECTED);
    bw_reply(ctx, msg, BW_ELIMIT, 0, NULL, 0);
    return;
  }
  uint32_t si = x->free_stack[--x->nfree];
  slot_t *s = &x->slots[si];
  s->req = *msg;
  s->req.data = NULL;
  s->req.len = 0;
  s->target = target;
  s->fixed_pid = target != BW_PID_NONE;
  s->attempt_ref = 0;
  s->backoff = 0;
  s->attempts = 0;
  s->type = type;
  s->len = (uint32_t)len;
  if (len > 0)
    memcpy(s->data, data, len);
  s->deadline_at = x->o->deadline_ms ? bw_now_ms(x->rt) + x->o->deadline_ms : 0;
  bw_retry_backoff_start(&x->o->backoff, bw_retry_rand64(&x->rng), &s->bo);
  s->live = true;
  count(x, C_CALLS);
  if (x->o->budget != NULL)
    bw_retry_budget_deposit(x->o->budget);
  attempt(ctx, x, si);
}

/* --- The behaviour ----------------------------------------------------------- */

static int exec_init(bw_ctx_t *ctx, void *state, void *arg) {
  exec_t *x = state;
  bw_retry_t *pol = arg;
  if (pol == NULL || pol->magic != RETRY_MAGIC || pol->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  /* counted from here on: cleanup, which runs whenever init ran, takes it back */
  x->pol = pol;
  x->counted = true;
  (void)bw__faa32(&pol->live, 1);
  uint32_t cap = pol->opts.capacity;
  x->slots = calloc(cap, sizeof *x->slots);
  x->free_stack = calloc(cap, sizeof *x->free_stack);
  if (x->slots == NULL || x->free_stack == NULL || !bw__reftab_reserve(&x->map, cap)) {
    free(x->slots);
    free(x->free_stack);
    bw__reftab_free(&x->map);
    x->slots = NULL;
    x->free_stack = NULL;
    return BW_ENOMEM;
  }
  x->o = &pol->opts;
  x->rt = bw_ctx_runtime(ctx);
  x->self = bw_self(ctx);
  for (uint32_t i = 0; i < cap; i++) /* pop order 0, 1, 2, ...: tidy for debugging */
    x->free_stack[i] = cap - 1 - i;
  x->nfree = cap;
  /* each incarnation (restart, or another executor of the policy) its own
   * sequence; relaxed: only distinctness matters */
  uint64_t inc = bw__faa64_rlx(&pol->incarnations, 1);
  uint64_t seed = pol->opts.seed != 0 ? pol->opts.seed : (bw_now_ns(x->rt) ^ x->self);
  x->rng = seed + inc * 0xD1B54A32D192ED03ull;
  /* release: the executor is set up before callers find it through the handle */
  bw__st64_rel(&pol->pid, x->self);
  return 0;
}

static int exec_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  exec_t *x = state;
  if (msg->flags & BW_MSGF_REPLY) {
    uint32_t si = bw__reftab_take_slot(&x->map, msg->ref);
    if (si == UINT32_MAX)
      return BW_CONTINUE; /* not an attempt of ours (any more) */
    x->slots[si].attempt_ref = 0;
    if (msg->status == 0)
      finish(ctx, x, si, 0, msg);
    else
      failed(ctx, x, si, msg->status, msg);
    return BW_CONTINUE;
  }
  if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    uint32_t si = bw__reftab_take_slot(&x->map, msg->ref);
    if (si == UINT32_MAX)
      return BW_CONTINUE;
    x->slots[si].attempt_ref = 0;
    count(x, C_TIMEOUTS);
    failed(ctx, x, si, BW_ETIMEDOUT, NULL);
    return BW_CONTINUE;
  }
  if (msg->type == M_BACKOFF && msg->from == x->self && !(msg->flags & BW_MSGF_REQUEST)) {
    tick_t t;
    if (msg->len != sizeof t)
      return BW_CONTINUE;
    memcpy(&t, msg->data, sizeof t);
    if (t.slot >= x->o->capacity)
      return BW_CONTINUE;
    slot_t *s = &x->slots[t.slot];
    if (!s->live || s->gen != t.gen || s->attempt_ref != 0)
      return BW_CONTINUE; /* a stale tick of a finished request */
    s->backoff = 0;
    attempt(ctx, x, t.slot);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REQUEST)
    arrive(ctx, x, msg);
  return BW_CONTINUE;
}

static void exec_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)reason;
  exec_t *x = state;
  if (x->slots == NULL)
    return;
  for (uint32_t i = 0; i < x->o->capacity; i++) {
    slot_t *s = &x->slots[i];
    if (!s->live)
      continue;
    /* its requester monitors us and gets BW_ENOPROC; the pending backoff
     * would only become a dead letter */
    if (s->backoff != 0)
      bw_timer_cancel(x->rt, s->backoff);
    count(x, C_ABANDONED);
  }
  free(x->slots);
  free(x->free_stack);
  bw__reftab_free(&x->map);
  x->slots = NULL;
  x->free_stack = NULL;
}

/* Runs last, however the executor ended (after terminate, a kill, a failed
 * init): frees what a kill left, and the handle stops counting it. */
static void exec_cleanup(void *state) {
  exec_t *x = state;
  free(x->slots);
  free(x->free_stack);
  bw__reftab_free(&x->map);
  x->slots = NULL;
  x->free_stack = NULL;
  if (!x->counted)
    return;
  /* a successor that already published keeps its pid (the CAS fails) */
  (void)bw__cas64(&x->pol->pid, x->self, BW_PID_NONE);
  /* a full barrier (so a release): pairs with live_executors' acquire; a
   * destroy that sees 0 finds this executor done with the handle */
  (void)bw__faa32(&x->pol->live, UINT32_MAX);
  x->counted = false;
}

const bw_behaviour_t bw_retry_behaviour = {
    .name = "bw_retry",
    .state_size = sizeof(exec_t),
    .init = exec_init,
    .handle = exec_handle,
    .terminate = exec_terminate,
    .cleanup = exec_cleanup,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};
