/*
 * bulwark: the policy executor, an actor that runs each request through the
 * stages of a policy (policy.h; the order and its reasons: POLICY.md).
 *
 * One request's life (a slot of the in-flight table):
 *
 *   arrive -> [deadline set] -> attempt:
 *     breaker acquire --open--------------------------------> failed
 *     rate limiter --no token in time (permit released)-----> failed
 *        \--token later: RL_WAIT (timer) --+
 *     bulkhead --full (permit released)---------------------> failed
 *        \--queue: QUEUED (timer = queue timeout) --+
 *     send (timeout = min(attempt, deadline left)): CALL
 *        reply / timeout -> bulkhead slot freed (next queued goes),
 *                           breaker report (status, duration)
 *        0 ------------------------------------------------> answer
 *   failed -> retry? (predicate, attempts, deadline, budget) -> BACKOFF (timer) -> attempt
 *          \-> end: fallback (function now, or actor: FALLBACK) -> answer
 *
 * One timer at most per slot (backoff, token wait or queue wait); its
 * message carries the slot and a sequence number, so a stale tick (a
 * cancelled timer whose message was already queued, a reused slot) is
 * recognised and ignored. The overall deadline needs no timer: every wait
 * and attempt is cut to end by it.
 *
 * Memory: the slots, their free stack and the ref map (refmap.h) are
 * allocated in init, freed in terminate: nothing per request.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/policy.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/refmap.h"
#include "runtime/atomic.h"

#define POLICY_MAGIC 0x504F4C59u /* "POLY" */

/* Counters of bw_policy_t.ctr: relaxed adds (bw__faa64 is acq_rel, which is
 * stronger than needed; the counters publish nothing else). Several
 * executors may share a policy. The in-caller form's hot path counts one
 * add at enter and one at exit: C_IC_CALLS stands for a call and its first
 * attempt (which every new in-caller request makes: its deadline cannot
 * have passed yet), C_IC_SUCC for a success and its end (the executor
 * counts C_DONE when it answers, which may be later than C_SUCC/C_FAIL);
 * bw_policy_metrics adds them in. */
enum {
  C_CALLS, C_REFUSED, C_SUCC, C_FAIL, C_BREAKER, C_RL, C_BH, C_TIMEOUT, C_DEADLINE, C_BUDGET,
  C_TARGET, C_FB, C_FB_ERR, C_ATTEMPTS, C_RETRIES, C_QUEUED, C_RL_WAITS, C_ABANDONED, C_DONE,
  C_IC_CALLS, C_IC_SUCC,
  C__COUNT
};

struct bw_policy {
  bw_policy_opts_t o; /* name and target_name point into the buffers below */
  char name[BW_POLICY_NAME_MAX + 1];
  char target_name[BW_NAME_MAX + 1];
  bw_runtime_t *rt;
  bw_retry_budget_t own_budget;
  bw_retry_budget_t *budget;
  bw_ratelimit_t own_rl;
  bw_ratelimit_t *rl;
  bw_breaker_t *own_br;
  bw_breaker_t *br;
  bw_breaker_classify_fn user_classify;
  void *user_classify_arg;
  bool br_timed; /* the breaker detects slow calls: exit needs a duration */
  uint64_t incarnations;
  uint32_t magic;
  /* executors bw_policy_start spawned (destroy stops them); under mu */
  pthread_mutex_t mu;
  bw_pid_t *started;
  uint32_t nstarted, cap_started;
  /* on a line of their own: every executor adds to them */
  _Alignas(64) uint64_t ctr[C__COUNT];
  /* the in-caller form's concurrency limit (attempts between enter and
   * exit); its own line: every in-caller attempt CASes it twice */
  _Alignas(64) uint32_t active;
};

enum { M_TICK = BW_MSG_POLICY_BASE + 0x80u };
#define POLICY_RANGE_END (BW_MSG_POLICY_BASE + 0x100u)

enum { S_FREE = 0, S_BACKOFF, S_RL_WAIT, S_QUEUED, S_CALL, S_FALLBACK };

typedef struct tick {
  uint32_t slot;
  uint32_t seq;
} tick_t;

#define NIL UINT32_MAX

typedef struct slot {
  bw_msg_t req;         /* the requester's message (data cleared): bw_reply needs it */
  uint64_t ref;         /* the attempt or fallback request in flight; 0 if none */
  uint64_t deadline_at; /* ms on the runtime's clock; 0 = none */
  uint64_t sent_ns;     /* when the attempt was sent (the breaker's duration) */
  bw_timer_t timer;     /* the armed timer; 0 if none */
  bw_retry_backoff_state_t bo;
  bw_breaker_permit_t permit;
  uint32_t seq;         /* the armed timer's tick number */
  uint32_t attempts;
  uint32_t type;
  uint32_t len;
  uint32_t q_prev, q_next; /* the bulkhead queue (a list through the slots) */
  uint8_t state;
  bool permit_held;
  bool holds_bh;
  uint8_t data[BW_MSG_INLINE_MAX];
} slot_t;

typedef struct exec {
  bw_policy_t *p;
  const bw_policy_opts_t *o;
  bw_runtime_t *rt;
  bw_pid_t self;
  uint64_t rng;
  bw_pid_t named_pid;
  slot_t *slots;
  uint32_t *free_stack;
  uint32_t nfree;
  bw__refmap_t map;
  /* the policy-held bulkhead */
  uint32_t active, nqueued, q_head, q_tail;
  bool pumping;
} exec_t;

static inline void count(bw_policy_t *p, int c) {
  /* relaxed would do: see the enum; the shim's add is what there is */
  (void)bw__faa64(&p->ctr[c], 1);
}

const char *bw_policy_cause_name(int cause) {
  static const char *const names[] = {"none",     "breaker",  "ratelimit", "bulkhead",
                                      "timeout",  "deadline", "budget",    "failure"};
  return cause >= 0 && cause < BW_POLICY_CAUSE__COUNT ? names[cause] : "unknown";
}

/* --- Options ----------------------------------------------------------------- */

void bw_policy_opts_init(bw_policy_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->capacity = 256;
  o->max_attempts = 1;
  o->backoff.kind = BW_RETRY_BACKOFF_EXPONENTIAL;
  o->backoff.initial_ms = 100;
  o->backoff.max_ms = 10000;
  o->backoff.multiplier = 2.0;
  bw_retry_budget_opts_init(&o->budget_opts);
  bw_breaker_opts_init(&o->breaker_opts);
  o->rate_period_ms = 1000;
  o->fallback_on = BW_POLICY_FB_ALL;
}

int bw_policy_opts_validate(const bw_policy_opts_t *o) {
  if (o == NULL)
    return BW_EINVAL;
  if ((o->target == BW_PID_NONE) == (o->target_name == NULL))
    return BW_EINVAL;
  if (o->target_name != NULL && (o->target_name[0] == '\0' || strlen(o->target_name) > BW_NAME_MAX))
    return BW_EINVAL;
  if (o->name != NULL && strlen(o->name) > BW_POLICY_NAME_MAX)
    return BW_EINVAL;
  if (o->capacity == 0 || o->capacity > BW_POLICY_CAPACITY_MAX)
    return BW_EINVAL;
  if (o->max_attempts == 0 || o->max_attempts > BW_RETRY_ATTEMPTS_MAX)
    return BW_EINVAL;
  if (bw_retry_backoff_validate(&o->backoff) != 0)
    return BW_EINVAL;
  if (o->deadline_ms > BW_POLICY_MS_MAX || o->attempt_timeout_ms > BW_POLICY_MS_MAX ||
      o->rate_wait_ms > BW_POLICY_MS_MAX || o->queue_timeout_ms > BW_POLICY_MS_MAX ||
      o->rate_period_ms > BW_POLICY_MS_MAX)
    return BW_EINVAL;
  if (o->budget && o->shared_budget == NULL) {
    const bw_retry_budget_opts_t *b = &o->budget_opts;
    /* the same bounds bw_retry_budget_init checks; !(x >= 0) catches NaN */
    if (!(b->ratio >= 0.0) || b->ratio > 1.0 || b->min_retries_per_sec > 1000000u ||
        b->window_ms < BW_RETRY_BUDGET_SLICES || b->window_ms > 3600000u)
      return BW_EINVAL;
  }
  if (o->breaker && o->shared_breaker == NULL && bw_breaker_opts_validate(&o->breaker_opts) != 0)
    return BW_EINVAL;
  /* shared pieces that were never initialised would fail every use with
   * BW_EINVAL, which the stages ignore: refuse them here instead */
  bw_retry_budget_stats_t bs;
  if (o->shared_budget != NULL && bw_retry_budget_stats(o->shared_budget, &bs) != 0)
    return BW_EINVAL;
  bw_ratelimit_stats_t rs;
  if (o->shared_limiter != NULL && bw_ratelimit_stats(o->shared_limiter, &rs) != 0)
    return BW_EINVAL;
  if (o->rate_limit && o->shared_limiter == NULL) {
    if (o->rate == 0 || o->rate_burst == 0 || o->rate_burst > BW_RATELIMIT_MAX_BURST)
      return BW_EINVAL;
    uint64_t period = o->rate_period_ms ? o->rate_period_ms : 1000;
    uint64_t period_ns = period * 1000000ull;
    if (o->rate > period_ns) /* an interval below 1 ns */
      return BW_EINVAL;
    uint64_t interval = (period_ns + o->rate - 1) / o->rate;
    if (interval > (1ull << 62) / o->rate_burst)
      return BW_EINVAL;
  }
  if ((o->max_queued > 0) != (o->queue_timeout_ms > 0))
    return BW_EINVAL;
  if (o->max_queued > BW_POLICY_CAPACITY_MAX || o->max_concurrent > BW_POLICY_CAPACITY_MAX)
    return BW_EINVAL;
  if (o->max_queued > 0 && o->max_concurrent == 0)
    return BW_EINVAL;
  if (o->fallback != NULL && o->fallback_pid != BW_PID_NONE)
    return BW_EINVAL;
  if ((o->fallback_on & ~(uint32_t)BW_POLICY_FB_ALL) != 0)
    return BW_EINVAL;
  return 0;
}

/* --- Lifecycle ----------------------------------------------------------------- */

/* The policy's own breaker: its own refusals (reported BW_ECANCELED) prove
 * nothing about the target, so they are ignored; the rest goes to the
 * user's classifier. */
static int policy_classify(int status, void *arg) {
  const bw_policy_t *p = arg;
  if (status == BW_ECANCELED)
    return BW_BREAKER_IGNORED;
  if (p->user_classify != NULL)
    return p->user_classify(status, p->user_classify_arg);
  return status == 0 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
}

int bw_policy_new(bw_runtime_t *rt, const bw_policy_opts_t *opts, bw_policy_t **out) {
  if (rt == NULL || out == NULL || bw_policy_opts_validate(opts) != 0)
    return BW_EINVAL;
  bw_policy_t *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
  if (p == NULL)
    return BW_ENOMEM;
  memset(p, 0, sizeof *p);
  p->o = *opts;
  p->rt = rt;
  snprintf(p->name, sizeof p->name, "%s", opts->name != NULL ? opts->name : "policy");
  p->o.name = p->name;
  if (opts->target_name != NULL) {
    snprintf(p->target_name, sizeof p->target_name, "%s", opts->target_name);
    p->o.target_name = p->target_name;
  }
  int rc = 0;
  if (opts->shared_budget != NULL)
    p->budget = opts->shared_budget;
  else if (opts->budget && (rc = bw_retry_budget_init(&p->own_budget, rt, &opts->budget_opts)) == 0)
    p->budget = &p->own_budget;
  if (rc == 0 && opts->shared_limiter != NULL)
    p->rl = opts->shared_limiter;
  else if (rc == 0 && opts->rate_limit &&
           (rc = bw_ratelimit_init(&p->own_rl, rt, opts->rate, opts->rate_period_ms,
                                   opts->rate_burst)) == 0)
    p->rl = &p->own_rl;
  if (rc == 0 && opts->shared_breaker != NULL) {
    p->br = opts->shared_breaker;
  } else if (rc == 0 && opts->breaker) {
    bw_breaker_opts_t bo = opts->breaker_opts;
    if (bo.name == NULL)
      bo.name = p->name;
    p->user_classify = bo.classify;
    p->user_classify_arg = bo.classify_arg;
    bo.classify = policy_classify;
    bo.classify_arg = p;
    rc = bw_breaker_new(rt, &bo, &p->own_br);
    p->br = p->own_br;
  }
  if (rc != 0) {
    free(p);
    return rc == BW_ENOMEM ? BW_ENOMEM : BW_EINVAL;
  }
  p->br_timed = p->br != NULL && bw_breaker_slow_call_ms(p->br) != 0;
  pthread_mutex_init(&p->mu, NULL);
  p->magic = POLICY_MAGIC;
  *out = p;
  return 0;
}

bw_breaker_t *bw_policy_breaker(const bw_policy_t *p) {
  return p != NULL && p->magic == POLICY_MAGIC ? p->br : NULL;
}

int bw_policy_start(bw_policy_t *p, const bw_spawn_opts_t *opts, bw_pid_t *out) {
  if (p == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  pthread_mutex_lock(&p->mu);
  if (p->nstarted == p->cap_started) {
    uint32_t n = p->cap_started ? 2 * p->cap_started : 4;
    bw_pid_t *a = realloc(p->started, n * sizeof *a);
    if (a == NULL) {
      pthread_mutex_unlock(&p->mu);
      return BW_ENOMEM;
    }
    p->started = a;
    p->cap_started = n;
  }
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(p->rt, &bw_policy_behaviour, p, opts, &pid);
  if (rc == 0)
    p->started[p->nstarted++] = pid;
  pthread_mutex_unlock(&p->mu);
  if (rc == 0 && out != NULL)
    *out = pid;
  return rc;
}

int bw_policy_destroy(bw_policy_t *p) {
  if (p == NULL)
    return 0;
  if (p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  pthread_mutex_lock(&p->mu);
  /* Refuse on a scheduler thread before anything is stopped, if there is
   * anything to wait for: BW_EWOULDBLOCK then leaves the policy whole and
   * running (stopping an executor and then refusing would leave it half
   * torn down). Waiting for BW_PID_NONE asks "may this thread block?": at
   * once 0, or BW_EWOULDBLOCK. */
  bool live = p->own_br != NULL && bw_is_alive(p->rt, bw_breaker_pid(p->own_br));
  for (uint32_t i = 0; i < p->nstarted && !live; i++)
    live = bw_is_alive(p->rt, p->started[i]);
  if (live && !bw_may_block(p->rt)) {
    pthread_mutex_unlock(&p->mu);
    return BW_EWOULDBLOCK;
  }
  for (uint32_t i = 0; i < p->nstarted; i++) {
    bw_pid_t pid = p->started[i];
    if (!bw_is_alive(p->rt, pid))
      continue;
    bw_exit(p->rt, pid, BW_REASON_SHUTDOWN, 0, "policy destroyed");
    if (bw_wait_exit(p->rt, pid, 0, NULL) == BW_EWOULDBLOCK) {
      pthread_mutex_unlock(&p->mu);
      return BW_EWOULDBLOCK;
    }
  }
  pthread_mutex_unlock(&p->mu);
  if (p->own_br != NULL) {
    int rc = bw_breaker_destroy(p->own_br);
    if (rc != 0)
      return rc;
    p->own_br = NULL;
  }
  p->magic = 0;
  pthread_mutex_destroy(&p->mu);
  free(p->started);
  free(p);
  return 0;
}

int bw_policy_metrics(const bw_policy_t *p, bw_policy_metrics_t *out) {
  if (p == NULL || out == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t ic_calls = bw__ld64_rlx(&p->ctr[C_IC_CALLS]);
  uint64_t ic_succ = bw__ld64_rlx(&p->ctr[C_IC_SUCC]);
  out->calls = bw__ld64_rlx(&p->ctr[C_CALLS]) + ic_calls;
  out->refused = bw__ld64_rlx(&p->ctr[C_REFUSED]);
  out->successes = bw__ld64_rlx(&p->ctr[C_SUCC]) + ic_succ;
  out->failures = bw__ld64_rlx(&p->ctr[C_FAIL]);
  out->rejected_breaker = bw__ld64_rlx(&p->ctr[C_BREAKER]);
  out->rejected_ratelimit = bw__ld64_rlx(&p->ctr[C_RL]);
  out->rejected_bulkhead = bw__ld64_rlx(&p->ctr[C_BH]);
  out->timeouts = bw__ld64_rlx(&p->ctr[C_TIMEOUT]);
  out->deadlines = bw__ld64_rlx(&p->ctr[C_DEADLINE]);
  out->budget_exhausted = bw__ld64_rlx(&p->ctr[C_BUDGET]);
  out->target_failures = bw__ld64_rlx(&p->ctr[C_TARGET]);
  out->fallbacks = bw__ld64_rlx(&p->ctr[C_FB]);
  out->fallback_errors = bw__ld64_rlx(&p->ctr[C_FB_ERR]);
  out->attempts = bw__ld64_rlx(&p->ctr[C_ATTEMPTS]) + ic_calls;
  out->retries = bw__ld64_rlx(&p->ctr[C_RETRIES]);
  out->queued = bw__ld64_rlx(&p->ctr[C_QUEUED]);
  out->rate_waits = bw__ld64_rlx(&p->ctr[C_RL_WAITS]);
  out->abandoned = bw__ld64_rlx(&p->ctr[C_ABANDONED]);
  uint64_t done = bw__ld64_rlx(&p->ctr[C_DONE]) + ic_succ + out->abandoned;
  out->in_flight = out->calls > done ? out->calls - done : 0;
  return 0;
}

/* --- Slots, timers, the bulkhead queue -------------------------------------------- */

static uint64_t left_ms(const slot_t *s, uint64_t now) {
  return s->deadline_at > now ? s->deadline_at - now : 0;
}

/* Arms the slot's one timer (0 ms: a message to self, round the mailbox). */
static int arm(exec_t *x, uint32_t si, uint64_t ms) {
  slot_t *s = &x->slots[si];
  tick_t t = {.slot = si, .seq = ++s->seq};
  s->timer = 0;
  if (ms == 0)
    return bw_send(x->rt, x->self, M_TICK, &t, sizeof t);
  return bw_send_after(x->rt, x->self, ms, M_TICK, &t, sizeof t, &s->timer);
}

static void disarm(exec_t *x, slot_t *s) {
  s->seq++; /* a tick already queued is stale now */
  if (s->timer != 0) {
    (void)bw_timer_cancel(x->rt, s->timer);
    s->timer = 0;
  }
}

static void q_push(exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  s->q_next = NIL;
  s->q_prev = x->q_tail;
  if (x->q_tail != NIL)
    x->slots[x->q_tail].q_next = si;
  else
    x->q_head = si;
  x->q_tail = si;
  x->nqueued++;
}

static void q_remove(exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  if (s->q_prev != NIL)
    x->slots[s->q_prev].q_next = s->q_next;
  else
    x->q_head = s->q_next;
  if (s->q_next != NIL)
    x->slots[s->q_next].q_prev = s->q_prev;
  else
    x->q_tail = s->q_prev;
  s->q_prev = s->q_next = NIL;
  x->nqueued--;
}

/* Gives back a breaker permit that was not used on the target. */
static void permit_cancel(exec_t *x, slot_t *s) {
  if (s->permit_held) {
    s->permit_held = false;
    (void)bw_breaker_report_ns(x->p->br, &s->permit, BW_ECANCELED, 0);
  }
}

static void send_attempt(bw_ctx_t *ctx, exec_t *x, uint32_t si);

/* Frees the slot's place in the bulkhead, and lets queued attempts in. */
static void bh_release(bw_ctx_t *ctx, exec_t *x, slot_t *s) {
  if (!s->holds_bh)
    return;
  s->holds_bh = false;
  x->active--;
  if (x->pumping)
    return; /* the loop below, further up the stack, goes on */
  x->pumping = true;
  while (x->active < x->o->max_concurrent && x->q_head != NIL) {
    uint32_t h = x->q_head;
    q_remove(x, h);
    disarm(x, &x->slots[h]);
    x->slots[h].holds_bh = true;
    x->active++;
    send_attempt(ctx, x, h); /* may fail at once and release again: the loop sees it */
  }
  x->pumping = false;
}

/* --- Ending a request ------------------------------------------------------------------ */

static void answer(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  uint32_t type = 0;
  const void *data = NULL;
  size_t len = 0;
  if (rep != NULL && rep->status == status) {
    type = rep->type;
    data = rep->data;
    len = rep->len;
    if (len > BW_MSG_INLINE_MAX) { /* a big moved payload: its ownership cannot follow */
      status = BW_ETOOBIG;
      type = 0;
      data = NULL;
      len = 0;
    }
  }
  count(x->p, C_DONE);
  /* a requester that is gone gets a dead letter: nothing else to do */
  (void)bw_reply(ctx, &s->req, status, type, data, len);
  disarm(x, s);
  s->state = S_FREE;
  x->free_stack[x->nfree++] = si;
}

static const int cause_ctr[BW_POLICY_CAUSE__COUNT] = {
    [BW_POLICY_CAUSE_NONE] = C_SUCC,          [BW_POLICY_CAUSE_BREAKER] = C_BREAKER,
    [BW_POLICY_CAUSE_RATELIMIT] = C_RL,       [BW_POLICY_CAUSE_BULKHEAD] = C_BH,
    [BW_POLICY_CAUSE_TIMEOUT] = C_TIMEOUT,    [BW_POLICY_CAUSE_DEADLINE] = C_DEADLINE,
    [BW_POLICY_CAUSE_BUDGET] = C_BUDGET,      [BW_POLICY_CAUSE_FAILURE] = C_TARGET,
};

/* The request is over (the protected call succeeded or failed for good):
 * counts it, gives the fallback its chance, answers. */
static void end(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, int cause, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  const bw_policy_opts_t *o = x->o;
  if (status == 0) {
    count(x->p, C_SUCC);
    answer(ctx, x, si, 0, rep);
    return;
  }
  count(x->p, C_FAIL);
  count(x->p, cause_ctr[cause]);
  if ((o->fallback_on & BW_POLICY_FB(cause)) == 0 || (o->fallback == NULL && o->fallback_pid == BW_PID_NONE)) {
    answer(ctx, x, si, status, rep);
    return;
  }
  if (o->fallback != NULL) {
    bw_policy_answer_t a;
    a.status = status;
    a.type = 0;
    a.len = 0;
    bw_msg_t view = s->req;
    view.type = s->type;
    view.len = s->len;
    view.data = s->len ? s->data : NULL;
    if (o->fallback(status, cause, &view, &a, o->fallback_arg) == 0 && a.len <= BW_MSG_INLINE_MAX) {
      count(x->p, C_FB);
      bw_msg_t r = {.type = a.type, .len = a.len, .data = a.len ? a.data : NULL, .status = a.status};
      answer(ctx, x, si, a.status, &r);
      return;
    }
    answer(ctx, x, si, status, rep);
    return;
  }
  /* the fallback actor: a request of its own, bounded like an attempt */
  uint64_t timeout = o->attempt_timeout_ms ? o->attempt_timeout_ms : o->deadline_ms;
  uint64_t ref = 0;
  int rc = bw_request(ctx, o->fallback_pid, s->type, s->len ? s->data : NULL, s->len, timeout, &ref);
  if (rc != 0) {
    count(x->p, C_FB_ERR);
    answer(ctx, x, si, status, rep);
    return;
  }
  s->ref = ref;
  s->state = S_FALLBACK;
  bw__refmap_put(&x->map, ref, si);
}

/* Whether a failed attempt's status may be retried (both forms). A pid
 * target that is gone stays gone; a named one may be restarted. */
static bool is_retryable(const bw_policy_opts_t *o, int status) {
  return status != BW_EINVAL && status != BW_ESHUTDOWN &&
         !(status == BW_ENOPROC && o->target != BW_PID_NONE) &&
         (o->retryable != NULL ? o->retryable(status, o->retryable_arg)
                               : bw_retry_default_retryable(status, NULL));
}

/* An attempt failed: retry after a backoff if everything allows it. */
static void failed(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, int cause, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  const bw_policy_opts_t *o = x->o;
  if (!is_retryable(o, status) || s->attempts >= o->max_attempts) {
    end(ctx, x, si, status, cause, rep);
    return;
  }
  uint64_t delay = bw_retry_backoff_next(&o->backoff, &s->bo);
  if (s->deadline_at != 0 && bw_now_ms(x->rt) + delay >= s->deadline_at) {
    end(ctx, x, si, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE, NULL); /* no attempt could start in time */
    return;
  }
  if (x->p->budget != NULL && bw_retry_budget_try_withdraw(x->p->budget) != 0) {
    end(ctx, x, si, BW_EBUDGET, BW_POLICY_CAUSE_BUDGET, NULL);
    return;
  }
  s->state = S_BACKOFF;
  if (arm(x, si, delay) != 0) {
    end(ctx, x, si, status, cause, rep); /* shutting down: the request cannot go on */
    return;
  }
  count(x->p, C_RETRIES); /* once the timer runs: a test may then move the clock */
}

/* --- The stages ------------------------------------------------------------------------ */

/* Innermost: the call to the target, with the attempt's timeout. */
static void send_attempt(bw_ctx_t *ctx, exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  uint64_t timeout = x->o->attempt_timeout_ms;
  if (s->deadline_at != 0) {
    uint64_t left = left_ms(s, bw_now_ms(x->rt));
    if (left == 0) {
      permit_cancel(x, s);
      bh_release(ctx, x, s);
      end(ctx, x, si, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE, NULL);
      return;
    }
    if (timeout == 0 || left < timeout)
      timeout = left;
  }
  bw_pid_t to = x->o->target;
  int rc = 0;
  if (to == BW_PID_NONE) {
    /* cached while it lives: bw_whereis takes the registry's lock,
     * bw_is_alive is one load; a restarted target has a new pid */
    if (x->named_pid == BW_PID_NONE || !bw_is_alive(x->rt, x->named_pid)) {
      x->named_pid = BW_PID_NONE;
      rc = bw_whereis(x->rt, x->o->target_name, &x->named_pid);
    }
    to = x->named_pid;
  }
  uint64_t ref = 0;
  if (s->permit_held)
    s->sent_ns = bw_now_ns(x->rt);
  if (rc == 0)
    rc = bw_request(ctx, to, s->type, s->len ? s->data : NULL, s->len, timeout, &ref);
  if (rc != 0) {
    if (s->permit_held) {
      s->permit_held = false;
      (void)bw_breaker_report_ns(x->p->br, &s->permit, rc, 0);
    }
    bh_release(ctx, x, s);
    failed(ctx, x, si, rc, BW_POLICY_CAUSE_FAILURE, NULL);
    return;
  }
  s->ref = ref;
  s->state = S_CALL;
  bw__refmap_put(&x->map, ref, si);
}

/* The bulkhead: a place among max_concurrent, or in the queue. */
static void bulkhead(bw_ctx_t *ctx, exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  const bw_policy_opts_t *o = x->o;
  if (o->max_concurrent == 0) {
    send_attempt(ctx, x, si);
    return;
  }
  if (x->active < o->max_concurrent && x->q_head == NIL) {
    x->active++;
    s->holds_bh = true;
    send_attempt(ctx, x, si);
    return;
  }
  if (x->nqueued < o->max_queued) {
    uint64_t wait = o->queue_timeout_ms;
    if (s->deadline_at != 0) {
      uint64_t left = left_ms(s, bw_now_ms(x->rt));
      if (left < wait)
        wait = left;
    }
    s->state = S_QUEUED;
    if (wait > 0 && arm(x, si, wait) == 0) {
      q_push(x, si);
      count(x->p, C_QUEUED);
      return;
    }
  }
  permit_cancel(x, s);
  failed(ctx, x, si, BW_EBULKHEAD_FULL, BW_POLICY_CAUSE_BULKHEAD, NULL);
}

/* One attempt from the top: deadline, breaker, rate limiter, then on. */
static void attempt(bw_ctx_t *ctx, exec_t *x, uint32_t si) {
  slot_t *s = &x->slots[si];
  const bw_policy_opts_t *o = x->o;
  uint64_t now = bw_now_ms(x->rt);
  if (s->deadline_at != 0 && now >= s->deadline_at) {
    end(ctx, x, si, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE, NULL);
    return;
  }
  s->attempts++;
  count(x->p, C_ATTEMPTS);
  if (x->p->br != NULL) {
    if (bw_breaker_acquire(x->p->br, &s->permit) != 0) {
      failed(ctx, x, si, BW_ECIRCUIT_OPEN, BW_POLICY_CAUSE_BREAKER, NULL);
      return;
    }
    s->permit_held = true;
  }
  if (x->p->rl != NULL) {
    uint64_t wait = o->rate_wait_ms;
    if (s->deadline_at != 0 && s->deadline_at - now < wait)
      wait = s->deadline_at - now;
    uint64_t wait_ns = 0;
    if (bw_ratelimit_acquire(x->p->rl, wait, &wait_ns) != 0) {
      permit_cancel(x, s);
      failed(ctx, x, si, BW_ERATE_LIMITED, BW_POLICY_CAUSE_RATELIMIT, NULL);
      return;
    }
    if (wait_ns > 0) {
      /* the token is reserved: wait for it */
      s->state = S_RL_WAIT;
      if (arm(x, si, bw_ratelimit_wait_ms(wait_ns)) == 0) {
        count(x->p, C_RL_WAITS);
        return;
      }
      permit_cancel(x, s);
      end(ctx, x, si, BW_ESHUTDOWN, BW_POLICY_CAUSE_FAILURE, NULL);
      return;
    }
  }
  bulkhead(ctx, x, si);
}

static void arrive(bw_ctx_t *ctx, exec_t *x, const bw_msg_t *msg) {
  if (msg->type >= BW_MSG_POLICY_BASE && msg->type < POLICY_RANGE_END) {
    count(x->p, C_REFUSED);
    bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    return;
  }
  if (msg->len > BW_MSG_INLINE_MAX) {
    count(x->p, C_REFUSED);
    bw_reply(ctx, msg, BW_ETOOBIG, 0, NULL, 0);
    return;
  }
  if (x->nfree == 0) {
    count(x->p, C_REFUSED);
    bw_reply(ctx, msg, BW_ELIMIT, 0, NULL, 0);
    return;
  }
  uint32_t si = x->free_stack[--x->nfree];
  slot_t *s = &x->slots[si];
  uint32_t seq = s->seq; /* kept across reuse: old ticks stay stale */
  memset(s, 0, offsetof(slot_t, data));
  s->seq = seq;
  s->req = *msg;
  s->req.data = NULL;
  s->req.len = 0;
  s->type = msg->type;
  s->len = msg->len;
  if (msg->len > 0)
    memcpy(s->data, msg->data, msg->len);
  s->q_prev = s->q_next = NIL;
  s->deadline_at = x->o->deadline_ms ? bw_now_ms(x->rt) + x->o->deadline_ms : 0;
  bw_retry_backoff_start(&x->o->backoff, bw_retry_rand64(&x->rng), &s->bo);
  count(x->p, C_CALLS);
  if (x->p->budget != NULL)
    bw_retry_budget_deposit(x->p->budget);
  attempt(ctx, x, si);
}

/* --- The in-caller form ---------------------------------------------------------------------
 *
 * The executor's stages, run by the caller on its ticket. A ticket is
 * IDLE (no request, or the last one is over), WAIT (a request started,
 * between attempts: the caller comes back after retry_in_ms) or IN (an
 * attempt enter let through; exit ends it). Everything a ticket holds
 * (permit, slot) is held only in IN; a reserved token (token_held) is not
 * given back, it is spent.
 */

#define TICKET_MAGIC 0x54494B54u /* "TIKT" */

enum { T_IDLE = 0, T_WAIT, T_IN };

void bw_policy_ticket_init(bw_policy_ticket_t *t) {
  if (t == NULL)
    return;
  /* not the answer's payload: 192 bytes nobody reads until fallback_used */
  memset(t, 0, offsetof(bw_policy_ticket_t, answer));
  memset(&t->priv_, 0, sizeof t->priv_);
  t->answer.status = 0;
  t->answer.type = 0;
  t->answer.len = 0;
  t->priv_.magic = TICKET_MAGIC;
}

static void t_permit_cancel(bw_policy_t *p, bw_policy_ticket_t *t) {
  if (t->priv_.permit_held) {
    t->priv_.permit_held = false;
    (void)bw_breaker_report_ns(p->br, &t->priv_.permit, BW_ECANCELED, 0);
  }
}

/* The request is over: counts it, gives the fallback function its chance
 * (into t->answer). Returns status, the request's own. */
static int t_end(bw_policy_t *p, bw_policy_ticket_t *t, int status, int cause) {
  const bw_policy_opts_t *o = &p->o;
  t->priv_.state = T_IDLE;
  t->cause = cause;
  if (status == 0) {
    count(p, C_IC_SUCC); /* a success and its end: one add (see the enum) */
    return 0;
  }
  count(p, C_FAIL);
  count(p, C_DONE);
  count(p, cause_ctr[cause]);
  if ((o->fallback_on & BW_POLICY_FB(cause)) == 0)
    return status;
  if (o->fallback_pid != BW_PID_NONE) {
    t->fallback_pid = o->fallback_pid; /* the caller forwards, if it wants to */
    return status;
  }
  if (o->fallback == NULL)
    return status;
  bw_policy_answer_t *a = &t->answer;
  a->status = status;
  a->type = 0;
  a->len = 0;
  bw_msg_t empty;
  const bw_msg_t *req = t->req;
  if (req == NULL) {
    memset(&empty, 0, sizeof empty);
    req = &empty;
  }
  if (o->fallback(status, cause, req, a, o->fallback_arg) == 0 && a->len <= BW_MSG_INLINE_MAX) {
    count(p, C_FB);
    t->fallback_used = true;
  } else {
    a->status = status;
    a->type = 0;
    a->len = 0;
  }
  return status;
}

/* An attempt, or a refusal in front of one, failed: a retry after a
 * backoff if everything allows it (the executor's failed()). */
static int t_failed(bw_policy_t *p, bw_policy_ticket_t *t, int status, int cause, uint64_t now_ms) {
  const bw_policy_opts_t *o = &p->o;
  if (!is_retryable(o, status) || t->attempts >= o->max_attempts)
    return t_end(p, t, status, cause);
  if (t->attempts == 1) {
    /* the backoff sequence starts at the first retry: a request that never
     * retries (the hot path) pays nothing for it. The seed only needs to
     * differ between tickets and requests. */
    uint64_t seed = (o->seed != 0 ? o->seed : bw_now_ns(p->rt)) ^ (uint64_t)(uintptr_t)t;
    (void)bw_retry_backoff_start(&o->backoff, bw_retry_rand64(&seed), &t->priv_.bo);
  }
  uint64_t delay = bw_retry_backoff_next(&o->backoff, &t->priv_.bo);
  if (t->priv_.deadline_at_ms != 0 && now_ms + delay >= t->priv_.deadline_at_ms)
    return t_end(p, t, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE); /* no attempt could start in time */
  if (p->budget != NULL && bw_retry_budget_try_withdraw(p->budget) != 0)
    return t_end(p, t, BW_EBUDGET, BW_POLICY_CAUSE_BUDGET);
  count(p, C_RETRIES);
  t->retry_in_ms = delay;
  t->wait_ns = 0;
  t->priv_.state = T_WAIT;
  return BW_POLICY_RETRY;
}

/* Takes a place among max_concurrent: a CAS loop rather than add-then-undo,
 * so a refused caller never makes a concurrent one see the limit full.
 * The shim's CAS is acq_rel; relaxed would do: the counter guards a number,
 * not data. Retried only when another caller changed it meanwhile. */
static bool slot_take(bw_policy_t *p) {
  uint32_t max = p->o.max_concurrent;
  uint32_t v = bw__ld32_rlx(&p->active);
  for (;;) {
    if (v >= max)
      return false;
    if (bw__cas32(&p->active, v, v + 1))
      return true;
    v = bw__ld32_rlx(&p->active);
  }
}

int bw_policy_enter(bw_policy_t *p, bw_policy_ticket_t *t) {
  if (p == NULL || t == NULL || p->magic != POLICY_MAGIC || t->priv_.magic != TICKET_MAGIC ||
      t->priv_.state == T_IN)
    return BW_EINVAL;
  const bw_policy_opts_t *o = &p->o;
  uint64_t now_ns = bw_now_ns(p->rt);
  uint64_t now = now_ns / 1000000u; /* bw_now_ms's own arithmetic: the same clock */
  if (t->priv_.state == T_IDLE) {
    /* a new request: the executor's arrive() */
    t->attempts = 0;
    t->cause = BW_POLICY_CAUSE_NONE;
    t->fallback_used = false;
    t->fallback_pid = BW_PID_NONE;
    t->answer.status = 0;
    t->answer.type = 0;
    t->answer.len = 0;
    t->priv_.deadline_at_ms = o->deadline_ms ? now + o->deadline_ms : 0;
    t->priv_.token_held = false;
    t->priv_.state = T_WAIT;
    count(p, C_IC_CALLS); /* the call and its first attempt, below */
    if (p->budget != NULL)
      (void)bw_retry_budget_deposit(p->budget);
  }
  t->retry_in_ms = 0;
  t->wait_ns = 0;
  t->deadline_ns = 0;
  t->timeout_ms = 0;
  uint64_t deadline = t->priv_.deadline_at_ms;
  if (deadline != 0 && now >= deadline) {
    t->priv_.token_held = false;
    return t_end(p, t, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE);
  }
  /* back from a token wait: the same attempt, its token already reserved */
  bool waited = t->priv_.token_held;
  t->priv_.token_held = false;
  if (!waited && ++t->attempts > 1)
    count(p, C_ATTEMPTS); /* the first is in C_IC_CALLS */
  if (p->br != NULL) {
    if (bw_breaker_acquire(p->br, &t->priv_.permit) != 0)
      return t_failed(p, t, BW_ECIRCUIT_OPEN, BW_POLICY_CAUSE_BREAKER, now);
    t->priv_.permit_held = true;
  }
  if (p->rl != NULL && !waited) {
    uint64_t wait = o->rate_wait_ms;
    if (deadline != 0 && deadline - now < wait)
      wait = deadline - now;
    uint64_t wait_ns = 0;
    /* no wait allowed and the limiter on our clock: take the token at the
     * time already read (the same as acquire with no wait, one clock read
     * fewer) */
    int rrc = wait == 0 && p->rl->rt == p->rt
                  ? bw_ratelimit_try_acquire_at(p->rl, now_ns, &wait_ns)
                  : bw_ratelimit_acquire(p->rl, wait, &wait_ns);
    if (rrc != 0) {
      t_permit_cancel(p, t);
      return t_failed(p, t, BW_ERATE_LIMITED, BW_POLICY_CAUSE_RATELIMIT, now);
    }
    if (wait_ns > 0) {
      /* the token is reserved: come back for it, holding nothing else */
      t_permit_cancel(p, t);
      t->priv_.token_held = true;
      t->wait_ns = wait_ns;
      t->retry_in_ms = bw_ratelimit_wait_ms(wait_ns);
      count(p, C_RL_WAITS);
      return BW_POLICY_RETRY;
    }
  }
  if (o->max_concurrent != 0) {
    if (!slot_take(p)) {
      t_permit_cancel(p, t);
      return t_failed(p, t, BW_EBULKHEAD_FULL, BW_POLICY_CAUSE_BULKHEAD, now);
    }
    t->priv_.slot_held = true;
  }
  uint64_t timeout = o->attempt_timeout_ms;
  if (deadline != 0 && (timeout == 0 || deadline - now < timeout))
    timeout = deadline - now; /* > 0: checked above */
  t->timeout_ms = timeout;
  t->deadline_ns = timeout != 0 ? now_ns + timeout * 1000000u : 0;
  t->priv_.start_ns = now_ns;
  t->priv_.state = T_IN;
  return 0;
}

int bw_policy_exit(bw_policy_t *p, bw_policy_ticket_t *t, int status, uint64_t *retry_in_ms) {
  if (p == NULL || t == NULL || p->magic != POLICY_MAGIC || t->priv_.magic != TICKET_MAGIC ||
      t->priv_.state != T_IN)
    return BW_EINVAL;
  if (status == BW_POLICY_RETRY)
    status = BW_EINVAL; /* reserved: a final, unretried failure, never echoed back */
  /* The clock only when something needs it: the breaker's slow-call
   * detection, or a failure (the deadline, the backoff). A success on a
   * breaker without detection reads no clock at all. */
  uint64_t now_ns = p->br_timed || status != 0 ? bw_now_ns(p->rt) : t->priv_.start_ns;
  uint64_t now = now_ns / 1000000u;
  if (t->priv_.permit_held) {
    t->priv_.permit_held = false;
    (void)bw_breaker_report_ns(p->br, &t->priv_.permit, status, now_ns - t->priv_.start_ns);
  }
  if (t->priv_.slot_held) {
    t->priv_.slot_held = false;
    /* the shim's add is acq_rel; relaxed would do (see slot_take) */
    (void)bw__faa32(&p->active, UINT32_MAX); /* - 1 */
  }
  t->priv_.state = T_WAIT;
  int rc;
  if (status == 0)
    rc = t_end(p, t, 0, BW_POLICY_CAUSE_NONE);
  else if (status == BW_ETIMEDOUT && t->priv_.deadline_at_ms != 0 && now >= t->priv_.deadline_at_ms)
    rc = t_end(p, t, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE);
  else
    rc = t_failed(p, t, status,
                  status == BW_ETIMEDOUT ? BW_POLICY_CAUSE_TIMEOUT : BW_POLICY_CAUSE_FAILURE, now);
  if (retry_in_ms != NULL)
    *retry_in_ms = rc == BW_POLICY_RETRY ? t->retry_in_ms : 0;
  return rc;
}

/* --- The behaviour ------------------------------------------------------------------------ */

static int exec_init(bw_ctx_t *ctx, void *state, void *arg) {
  exec_t *x = state;
  bw_policy_t *p = arg;
  if (p == NULL || p->magic != POLICY_MAGIC)
    return BW_EINVAL;
  uint32_t cap = p->o.capacity;
  x->slots = calloc(cap, sizeof *x->slots);
  x->free_stack = calloc(cap, sizeof *x->free_stack);
  if (x->slots == NULL || x->free_stack == NULL || bw__refmap_init(&x->map, cap) != 0) {
    free(x->slots);
    free(x->free_stack);
    x->slots = NULL;
    return BW_ENOMEM;
  }
  if (p->own_br != NULL) {
    int rc = bw_breaker_start(p->own_br); /* one actor for all executors */
    if (rc != 0 && rc != BW_EALREADY) {
      free(x->slots);
      free(x->free_stack);
      bw__refmap_free(&x->map);
      x->slots = NULL;
      return rc;
    }
  }
  x->p = p;
  x->o = &p->o;
  x->rt = bw_ctx_runtime(ctx);
  x->self = bw_self(ctx);
  x->q_head = x->q_tail = NIL;
  for (uint32_t i = 0; i < cap; i++)
    x->free_stack[i] = cap - 1 - i;
  x->nfree = cap;
  /* each executor its own jitter sequence; only distinctness matters */
  uint64_t inc = bw__faa64(&p->incarnations, 1);
  uint64_t seed = p->o.seed != 0 ? p->o.seed : (bw_now_ns(x->rt) ^ x->self);
  x->rng = seed + inc * 0xD1B54A32D192ED03ull;
  return 0;
}

static void on_tick(bw_ctx_t *ctx, exec_t *x, const bw_msg_t *msg) {
  tick_t t;
  if (msg->len != sizeof t)
    return;
  memcpy(&t, msg->data, sizeof t);
  if (t.slot >= x->o->capacity)
    return;
  slot_t *s = &x->slots[t.slot];
  if (s->state == S_FREE || s->seq != t.seq)
    return; /* stale */
  s->timer = 0;
  switch (s->state) {
  case S_BACKOFF:
    attempt(ctx, x, t.slot);
    break;
  case S_RL_WAIT:
    bulkhead(ctx, x, t.slot);
    break;
  case S_QUEUED: {
    /* waited too long for a place */
    q_remove(x, t.slot);
    permit_cancel(x, s);
    if (s->deadline_at != 0 && bw_now_ms(x->rt) >= s->deadline_at)
      end(ctx, x, t.slot, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE, NULL);
    else
      failed(ctx, x, t.slot, BW_ETIMEDOUT, BW_POLICY_CAUSE_BULKHEAD, NULL);
    break;
  }
  default:
    break;
  }
}

/* A reply (rep) or a request timeout (rep NULL) for slot si's request. */
static void on_answer(bw_ctx_t *ctx, exec_t *x, uint32_t si, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  s->ref = 0;
  int status = rep != NULL ? rep->status : BW_ETIMEDOUT;
  if (s->state == S_FALLBACK) {
    count(x->p, status == 0 ? C_FB : C_FB_ERR);
    answer(ctx, x, si, status, rep);
    return;
  }
  if (s->state != S_CALL)
    return;
  if (s->permit_held) {
    s->permit_held = false;
    uint64_t now = bw_now_ns(x->rt);
    (void)bw_breaker_report_ns(x->p->br, &s->permit, status, now - s->sent_ns);
  }
  bh_release(ctx, x, s);
  if (status == 0)
    end(ctx, x, si, 0, BW_POLICY_CAUSE_NONE, rep);
  else if (rep != NULL)
    failed(ctx, x, si, status, BW_POLICY_CAUSE_FAILURE, rep);
  else if (s->deadline_at != 0 && bw_now_ms(x->rt) >= s->deadline_at)
    end(ctx, x, si, BW_ETIMEDOUT, BW_POLICY_CAUSE_DEADLINE, NULL);
  else
    failed(ctx, x, si, BW_ETIMEDOUT, BW_POLICY_CAUSE_TIMEOUT, NULL);
}

static int exec_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  exec_t *x = state;
  if (msg->flags & BW_MSGF_REPLY) {
    uint32_t si = bw__refmap_take(&x->map, msg->ref);
    if (si != UINT32_MAX)
      on_answer(ctx, x, si, msg);
    return BW_CONTINUE;
  }
  if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    uint32_t si = bw__refmap_take(&x->map, msg->ref);
    if (si != UINT32_MAX)
      on_answer(ctx, x, si, NULL);
    return BW_CONTINUE;
  }
  if (msg->type == M_TICK && msg->from == x->self && !(msg->flags & BW_MSGF_REQUEST)) {
    on_tick(ctx, x, msg);
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
    if (s->state == S_FREE)
      continue;
    /* the requester monitors us and gets BW_ENOPROC */
    disarm(x, s);
    permit_cancel(x, s);
    count(x->p, C_ABANDONED);
  }
  free(x->slots);
  free(x->free_stack);
  bw__refmap_free(&x->map);
  x->slots = NULL;
}

const bw_behaviour_t bw_policy_behaviour = {
    .name = "bw_policy",
    .state_size = sizeof(exec_t),
    .init = exec_init,
    .handle = exec_handle,
    .terminate = exec_terminate,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};
