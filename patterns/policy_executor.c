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
 * Memory: the slots, their free stack and the ref map (runtime/reftab.h) are
 * allocated in init, freed in terminate (or cleanup, after a kill): nothing
 * per request.
 *
 * The policy's handle and what both forms share are in policy.c, the
 * in-caller form in policy_caller.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/policy.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/policy_internal.h"
#include "runtime/atomic.h"
#include "runtime/reftab.h"

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
  bw__reftab map; /* request ref -> slot, reserved in init */
  /* the policy-held bulkhead */
  uint32_t active, nqueued, q_head, q_tail;
  bool pumping;
  bool counted; /* counted in p->live: cleanup takes it back */
} exec_t;

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
  bw__policy_count(x->p, C_DONE);
  /* a requester that is gone gets a dead letter: nothing else to do */
  (void)bw_reply(ctx, &s->req, status, type, data, len);
  disarm(x, s);
  s->state = S_FREE;
  x->free_stack[x->nfree++] = si;
}

/* The request is over (the protected call succeeded or failed for good):
 * counts it, gives the fallback its chance, answers. */
static void end(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, int cause, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  const bw_policy_opts_t *o = x->o;
  if (status == 0) {
    bw__policy_count(x->p, C_SUCC);
    answer(ctx, x, si, 0, rep);
    return;
  }
  bw__policy_count(x->p, C_FAIL);
  bw__policy_count(x->p, bw__policy_cause_ctr[cause]);
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
      bw__policy_count(x->p, C_FB);
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
    bw__policy_count(x->p, C_FB_ERR);
    answer(ctx, x, si, status, rep);
    return;
  }
  s->ref = ref;
  s->state = S_FALLBACK;
  (void)bw__reftab_put(&x->map, ref, o->fallback_pid, si); /* reserved: cannot fail */
}

/* An attempt failed: retry after a backoff if everything allows it. */
static void failed(bw_ctx_t *ctx, exec_t *x, uint32_t si, int status, int cause, const bw_msg_t *rep) {
  slot_t *s = &x->slots[si];
  bw__retry_ask a;
  bw__policy_retry_ask(x->p, status, s->attempts, &s->bo, s->deadline_at, &a);
  a.now_ms = s->deadline_at != 0 ? bw_now_ms(x->rt) : 0;
  uint64_t delay = 0;
  int fin = status;
  switch (bw__retry_decide(&a, &delay, &fin)) { /* the one decision: retry_internal.h */
  case BW__RETRY_FINAL:
    end(ctx, x, si, status, cause, rep);
    return;
  case BW__RETRY_DEADLINE: /* no attempt could start in time */
    end(ctx, x, si, fin, BW_POLICY_CAUSE_DEADLINE, NULL);
    return;
  case BW__RETRY_BUDGET:
    end(ctx, x, si, fin, BW_POLICY_CAUSE_BUDGET, NULL);
    return;
  case BW__RETRY_AGAIN:
    break;
  }
  s->state = S_BACKOFF;
  if (arm(x, si, delay) != 0) {
    end(ctx, x, si, status, cause, rep); /* shutting down: the request cannot go on */
    return;
  }
  bw__policy_count(x->p, C_RETRIES); /* once the timer runs: a test may then move the clock */
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
  (void)bw__reftab_put(&x->map, ref, to, si); /* reserved: cannot fail */
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
      bw__policy_count(x->p, C_QUEUED);
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
  bw__policy_count(x->p, C_ATTEMPTS);
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
        bw__policy_count(x->p, C_RL_WAITS);
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
    bw__policy_count(x->p, C_REFUSED);
    bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    return;
  }
  if (msg->len > BW_MSG_INLINE_MAX) {
    bw__policy_count(x->p, C_REFUSED);
    bw_reply(ctx, msg, BW_ETOOBIG, 0, NULL, 0);
    return;
  }
  if (x->nfree == 0) {
    bw__policy_count(x->p, C_REFUSED);
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
  bw__policy_count(x->p, C_CALLS);
  if (x->p->budget != NULL)
    bw_retry_budget_deposit(x->p->budget);
  attempt(ctx, x, si);
}

/* --- The behaviour ------------------------------------------------------------------------ */

static int exec_init(bw_ctx_t *ctx, void *state, void *arg) {
  exec_t *x = state;
  bw_policy_t *p = arg;
  if (p == NULL || p->magic != POLICY_MAGIC || p->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  /* counted from here on: cleanup, which runs whenever init ran, takes it back */
  x->p = p;
  x->counted = true;
  (void)bw__faa32(&p->live, 1);
  uint32_t cap = p->o.capacity;
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
  if (p->own_br != NULL) {
    int rc = bw_breaker_start(p->own_br, NULL); /* one actor for all executors */
    if (rc != 0 && rc != BW_EALREADY) {
      free(x->slots);
      free(x->free_stack);
      bw__reftab_free(&x->map);
      x->slots = NULL;
      x->free_stack = NULL;
      return rc;
    }
  }
  x->o = &p->o;
  x->rt = bw_ctx_runtime(ctx);
  x->self = bw_self(ctx);
  x->q_head = x->q_tail = NIL;
  for (uint32_t i = 0; i < cap; i++)
    x->free_stack[i] = cap - 1 - i;
  x->nfree = cap;
  /* each executor its own jitter sequence; relaxed: only distinctness
   * matters (as retry.c's) */
  uint64_t inc = bw__faa64_rlx(&p->incarnations, 1);
  uint64_t seed = p->o.seed != 0 ? p->o.seed : (bw_now_ns(x->rt) ^ x->self);
  x->rng = seed + inc * 0xD1B54A32D192ED03ull;
  /* release: the executor is set up before callers find it through p */
  bw__st64_rel(&p->pid, x->self);
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
    bw__policy_count(x->p, status == 0 ? C_FB : C_FB_ERR);
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
    uint32_t si = bw__reftab_take_slot(&x->map, msg->ref);
    if (si != UINT32_MAX)
      on_answer(ctx, x, si, msg);
    return BW_CONTINUE;
  }
  if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    uint32_t si = bw__reftab_take_slot(&x->map, msg->ref);
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
    bw__policy_count(x->p, C_ABANDONED);
  }
  free(x->slots);
  free(x->free_stack);
  bw__reftab_free(&x->map);
  x->slots = NULL;
  x->free_stack = NULL;
}

/* Runs last, however the executor ended (after terminate, a kill, a failed
 * init): frees what a kill left, and the policy stops counting it. */
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
  (void)bw__cas64(&x->p->pid, x->self, BW_PID_NONE);
  /* a full barrier (so a release): pairs with live_executors' acquire in
   * policy.c; a destroy that sees 0 finds this executor done with p */
  (void)bw__faa32(&x->p->live, UINT32_MAX);
  x->counted = false;
}

const bw_behaviour_t bw_policy_behaviour = {
    .name = "bw_policy",
    .state_size = sizeof(exec_t),
    .init = exec_init,
    .handle = exec_handle,
    .terminate = exec_terminate,
    .cleanup = exec_cleanup,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};
