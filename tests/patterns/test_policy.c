/*
 * Policy pipelines, on the manual clock: the order of the stages (an open
 * breaker refuses before the rate limiter spends a token; each retry goes
 * through the breaker again; the rate limiter's wait; the bulkhead's limit,
 * queue and queue timeout), the budget cutting retries, the per-attempt
 * timeout against the overall deadline, the fallback (function and actor)
 * on rejection and on failure but never on success, the presets' values,
 * and bad options.
 *
 * Observing without sleeping: the test waits for a counter (the target's
 * log, the policy's stats) that is written before the state it stands
 * for can change again, then moves the clock. retries is counted once the
 * backoff timer is armed, and the breaker report happens before that.
 */
#include "support.h"

#include "bulwark/policy.h"

enum {
  T_WORK = 1, /* request to the target; payload uint32 id */
  T_GO,       /* to the client: make a request to the policy; payload uint32 id */
};

#define USER_ERR (-1000)
#define MAXIDS 64

/* what the target does */
enum { MODE_OK = 0, MODE_FAIL, MODE_HOLD };

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static int mode;
static int nlog;
static uint64_t log_t[256];
static int reply_status[MAXIDS];
static uint32_t reply_val[MAXIDS];
static uint64_t req_ref[MAXIDS];
static bw_pid_t policy_pid;
static int fallback_calls;
static int fallback_cause;

static void reset(int m) {
  bwt_lock(&sync_);
  mode = m;
  nlog = 0;
  for (int i = 0; i < MAXIDS; i++)
    reply_status[i] = 1; /* no answer yet */
  memset(reply_val, 0, sizeof reply_val);
  memset(req_ref, 0, sizeof req_ref);
  fallback_calls = 0;
  fallback_cause = -1;
  bwt_unlock(&sync_);
}

static int get_nlog(void) {
  bwt_lock(&sync_);
  int n = nlog;
  bwt_unlock(&sync_);
  return n;
}

static int get_status(uint32_t id) {
  bwt_lock(&sync_);
  int s = reply_status[id];
  bwt_unlock(&sync_);
  return s;
}

/* --- actors -------------------------------------------------------------------- */

static int target_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type != T_WORK || !(msg->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;
  uint32_t id = 0;
  if (msg->len == sizeof id)
    memcpy(&id, msg->data, sizeof id);
  bwt_lock(&sync_);
  int m = mode;
  if (nlog < 256)
    log_t[nlog] = bw_now_ms(bw_ctx_runtime(ctx));
  nlog++;
  bwt_unlock_signal(&sync_);
  if (m == MODE_OK) {
    uint32_t v = id + 1000;
    bw_reply(ctx, msg, 0, T_WORK, &v, sizeof v);
  } else if (m == MODE_FAIL) {
    bw_reply(ctx, msg, USER_ERR, T_WORK, &id, sizeof id);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t target_b = {.name = "target", .handle = target_handle};

/* The fallback actor: answers 0 with id + 5000. */
static int fb_actor_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (!(msg->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;
  uint32_t id = 0;
  if (msg->len == sizeof id)
    memcpy(&id, msg->data, sizeof id);
  uint32_t v = id + 5000;
  bw_reply(ctx, msg, 0, T_WORK, &v, sizeof v);
  return BW_CONTINUE;
}

static const bw_behaviour_t fb_actor_b = {.name = "fallback", .handle = fb_actor_handle};

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_GO) {
    uint32_t id;
    memcpy(&id, msg->data, sizeof id);
    bwt_lock(&sync_);
    bw_pid_t to = policy_pid;
    bwt_unlock(&sync_);
    uint64_t ref = 0;
    int rc = bw_request(ctx, to, T_WORK, &id, sizeof id, 0, &ref);
    bwt_lock(&sync_);
    req_ref[id] = ref;
    if (rc != 0)
      reply_status[id] = 1000 + rc;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    uint32_t v = 0;
    if (msg->len == sizeof v)
      memcpy(&v, msg->data, sizeof v);
    bwt_lock(&sync_);
    for (uint32_t id = 0; id < MAXIDS; id++) {
      if (req_ref[id] == msg->ref && msg->ref != 0) {
        reply_status[id] = msg->status;
        reply_val[id] = v;
        break;
      }
    }
    bwt_unlock_signal(&sync_);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t client_b = {.name = "client", .handle = client_handle};

/* A fallback function: answers 0 with id + 9000, and records the cause. */
static int fb_fn(int status, int cause, const bw_msg_t *req, bw_policy_answer_t *out, void *arg) {
  (void)status;
  (void)arg;
  uint32_t id = 0;
  if (req->len == sizeof id)
    memcpy(&id, req->data, sizeof id);
  bwt_lock(&sync_);
  fallback_calls++;
  fallback_cause = cause;
  bwt_unlock(&sync_);
  uint32_t v = id + 9000;
  out->status = 0;
  out->type = T_WORK;
  out->len = sizeof v;
  memcpy(out->data, &v, sizeof v);
  return 0;
}

static bool retry_user_err(int status, void *arg) {
  (void)arg;
  return status == USER_ERR || status == BW_ETIMEDOUT;
}

/* --- fixture ---------------------------------------------------------------------- */

typedef struct fx {
  bw_runtime_t *rt;
  bw_pid_t target, client;
  bw_policy_t *pol;
  bw_pid_t exec;
} fx_t;

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, b, NULL, NULL, &p), 0);
  return p;
}

static void fx_base(fx_t *f, int m) {
  reset(m);
  f->rt = bwt_runtime(2, true);
  f->target = spawn(f->rt, &target_b);
  f->client = spawn(f->rt, &client_b);
  f->pol = NULL;
}

static void fx_opts(fx_t *f, bw_policy_opts_t *o) {
  bw_policy_opts_init(o);
  o->target = f->target;
}

static void fx_start(fx_t *f, const bw_policy_opts_t *o) {
  assert_int_equal(bw_policy_new(f->rt, o, &f->pol), 0);
  assert_int_equal(bw_policy_start(f->pol, &f->exec), 0);
  bwt_lock(&sync_);
  policy_pid = f->exec;
  bwt_unlock(&sync_);
}

static void stop_one(bw_runtime_t *rt, bw_pid_t p) {
  if (bw_is_alive(rt, p)) {
    bw_exit(rt, p, BW_REASON_SHUTDOWN, 0, NULL);
    assert_int_equal(bw_wait_exit(rt, p, 0, NULL) == 0 || !bw_is_alive(rt, p), 1);
  }
}

static void fx_done(fx_t *f) {
  /* one at a time, newest first (see test_retry.c's teardown) */
  assert_int_equal(bw_policy_destroy(f->pol), 0);
  stop_one(f->rt, f->client);
  stop_one(f->rt, f->target);
  bw_runtime_destroy(f->rt);
}

static void go(fx_t *f, uint32_t id) {
  assert_int_equal(bw_send(f->rt, f->client, T_GO, &id, sizeof id), 0);
}

static bw_policy_stats_t stats(const fx_t *f) {
  bw_policy_stats_t m;
  assert_int_equal(bw_policy_stats(f->pol, &m), 0);
  return m;
}

static uint64_t m_retries(const fx_t *f) { return stats(f).retries; }
static uint64_t m_in_flight(const fx_t *f) { return stats(f).in_flight; }

/* --- tests ------------------------------------------------------------------------- */

/* Success passes through every stage; the fallback is not consulted. */
static void test_success_all_stages(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_OK);
  bw_policy_opts_t o;
  assert_int_equal(bw_policy_preset("api", &o), 0);
  o.target = f.target;
  o.rate_limit = true;
  o.rate = 100;
  o.rate_burst = 10;
  o.fallback = fb_fn;
  fx_start(&f, &o);
  bw_reply_t r;
  uint32_t id = 7;
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  uint32_t v;
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 1007);
  assert_int_equal(fallback_calls, 0);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.successes, 1);
  assert_int_equal(m.failures, 0);
  assert_int_equal(m.attempts, 1);
  assert_int_equal(m.fallbacks, 0);
  assert_int_equal(m.in_flight, 0);
  assert_non_null(bw_policy_breaker(f.pol));
  fx_done(&f);
}

/* An open breaker refuses before the rate limiter: no token is spent, the
 * target sees nothing; the fallback answers the rejection. */
static void test_breaker_before_ratelimit(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_OK);
  static bw_ratelimit_t rl;
  assert_int_equal(bw_ratelimit_init(&rl, f.rt, 1, 1000, 3), 0);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.breaker = true;
  o.shared_limiter = &rl;
  o.fallback = fb_fn;
  o.fallback_on = BW_POLICY_FB_REJECTED;
  fx_start(&f, &o);
  bw_breaker_t *br = bw_policy_breaker(f.pol);
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_FORCED_OPEN);
  bw_reply_t r;
  uint32_t id = 1;
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  uint32_t v;
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 9001); /* the fallback's answer */
  assert_int_equal(fallback_cause, BW_POLICY_CAUSE_BREAKER);
  assert_int_equal(bw_ratelimit_available(&rl), 3); /* no token spent */
  assert_int_equal(get_nlog(), 0);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.failures, 1);
  assert_int_equal(m.rejected_breaker, 1);
  assert_int_equal(m.fallbacks, 1);
  /* closed again: the call goes through and spends one token */
  assert_int_equal(bw_breaker_reset(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 1001);
  assert_int_equal(bw_ratelimit_available(&rl), 2);
  assert_int_equal(get_nlog(), 1);
  fx_done(&f);
}

/* Each retry goes through the breaker again: two failures trip it, the
 * third attempt is refused by it (and BW_ECIRCUIT_OPEN is final). */
static void test_retry_reenters_breaker(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_FAIL);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.breaker = true;
  o.breaker_opts.failure_threshold = 2;
  o.max_attempts = 5;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 100;
  o.retryable = retry_user_err;
  fx_start(&f, &o);
  bw_breaker_t *br = bw_policy_breaker(f.pol);
  go(&f, 1);
  BWT_POLL(m_retries(&f) == 1);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED);
  assert_int_equal(bw_clock_advance(f.rt, 100), 0);
  BWT_POLL(m_retries(&f) == 2);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
  assert_int_equal(bw_clock_advance(f.rt, 100), 0);
  BWT_POLL(get_status(1) != 1);
  assert_int_equal(get_status(1), BW_ECIRCUIT_OPEN);
  assert_int_equal(get_nlog(), 2);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.attempts, 3);
  assert_int_equal(m.retries, 2);
  assert_int_equal(m.rejected_breaker, 1);
  assert_int_equal(m.failures, 1);
  bw_breaker_stats_t bm;
  assert_int_equal(bw_breaker_stats(br, &bm), 0);
  assert_int_equal(bm.failed, 2);
  assert_true(bm.rejected >= 1);
  fx_done(&f);
}

/* A budget that allows no retry ends the request after its first attempt. */
static void test_budget_cuts_retries(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_FAIL);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.max_attempts = 5;
  o.retryable = retry_user_err;
  o.budget = true;
  o.budget_opts.ratio = 0.0;
  o.budget_opts.min_retries_per_sec = 0;
  fx_start(&f, &o);
  bw_reply_t r;
  uint32_t id = 2;
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), BW_EBUDGET);
  assert_int_equal(get_nlog(), 1);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.budget_exhausted, 1);
  assert_int_equal(m.retries, 0);
  assert_int_equal(m.failures, 1);
  fx_done(&f);
}

/* The per-attempt timeout ends attempts; the overall deadline cuts the
 * last one short and ends the request. */
static void test_attempt_timeout_vs_deadline(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_HOLD);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.max_attempts = 5;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 10;
  o.attempt_timeout_ms = 100;
  o.deadline_ms = 250;
  fx_start(&f, &o);
  go(&f, 3);
  BWT_POLL(get_nlog() == 1);
  assert_int_equal(bw_clock_advance(f.rt, 100), 0); /* t=100: attempt 1 times out */
  BWT_POLL(m_retries(&f) == 1);
  assert_int_equal(bw_clock_advance(f.rt, 10), 0); /* t=110: attempt 2 */
  BWT_POLL(get_nlog() == 2);
  assert_int_equal(bw_clock_advance(f.rt, 100), 0); /* t=210: times out */
  BWT_POLL(m_retries(&f) == 2);
  assert_int_equal(bw_clock_advance(f.rt, 10), 0); /* t=220: attempt 3, 30 ms left */
  BWT_POLL(get_nlog() == 3);
  assert_int_equal(bw_clock_advance(f.rt, 29), 0);
  assert_int_equal(get_status(3), 1); /* still waiting at t=249 */
  assert_int_equal(bw_clock_advance(f.rt, 1), 0); /* t=250: the deadline */
  BWT_POLL(get_status(3) != 1);
  assert_int_equal(get_status(3), BW_ETIMEDOUT);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.deadlines, 1);
  assert_int_equal(m.timeouts, 0);
  assert_int_equal(m.attempts, 3);
  fx_done(&f);

  /* no deadline, one attempt: the attempt timeout is the cause */
  fx_base(&f, MODE_HOLD);
  fx_opts(&f, &o);
  o.attempt_timeout_ms = 50;
  fx_start(&f, &o);
  go(&f, 4);
  BWT_POLL(get_nlog() == 1);
  assert_int_equal(bw_clock_advance(f.rt, 50), 0);
  BWT_POLL(get_status(4) != 1);
  assert_int_equal(get_status(4), BW_ETIMEDOUT);
  m = stats(&f);
  assert_int_equal(m.timeouts, 1);
  assert_int_equal(m.deadlines, 0);
  fx_done(&f);
}

/* The fallback: consulted on failure (function), with the cause; an actor
 * fallback answers instead; never on success. */
static void test_fallback(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_FAIL);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.fallback = fb_fn;
  fx_start(&f, &o);
  bw_reply_t r;
  uint32_t id = 5;
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  uint32_t v;
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 9005);
  assert_int_equal(fallback_calls, 1);
  assert_int_equal(fallback_cause, BW_POLICY_CAUSE_FAILURE);
  bwt_lock(&sync_);
  mode = MODE_OK;
  bwt_unlock(&sync_);
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 1005);
  assert_int_equal(fallback_calls, 1); /* not on success */
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.fallbacks, 1);
  assert_int_equal(m.target_failures, 1);
  assert_int_equal(m.successes, 1);
  fx_done(&f);

  /* failures only: a rejection is not given to the fallback */
  fx_base(&f, MODE_FAIL);
  fx_opts(&f, &o);
  o.breaker = true;
  o.fallback = fb_fn;
  o.fallback_on = BW_POLICY_FB(BW_POLICY_CAUSE_FAILURE);
  fx_start(&f, &o);
  assert_int_equal(bw_breaker_force_open(bw_policy_breaker(f.pol)), 0);
  assert_int_equal(bw_breaker_flush(bw_policy_breaker(f.pol), 0), 0);
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), BW_ECIRCUIT_OPEN);
  assert_int_equal(fallback_calls, 0);
  fx_done(&f);

  /* an actor as the fallback */
  fx_base(&f, MODE_FAIL);
  bw_pid_t fba = spawn(f.rt, &fb_actor_b);
  fx_opts(&f, &o);
  o.fallback_pid = fba;
  fx_start(&f, &o);
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), 0);
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 5005);
  m = stats(&f);
  assert_int_equal(m.fallbacks, 1);
  assert_int_equal(m.target_failures, 1);
  assert_int_equal(bw_policy_destroy(f.pol), 0);
  f.pol = NULL;
  stop_one(f.rt, fba);
  fx_done(&f);
}

/* The policy's bulkhead: one at a time, one waiting; the third is refused;
 * the waiting one times out in the queue; a finished call lets the next in. */
static void test_bulkhead(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_HOLD);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.max_concurrent = 1;
  o.max_queued = 1;
  o.queue_timeout_ms = 100;
  o.attempt_timeout_ms = 150;
  fx_start(&f, &o);
  go(&f, 1);
  BWT_POLL(get_nlog() == 1);
  go(&f, 2);
  BWT_POLL(stats(&f).queued == 1);
  go(&f, 3);
  BWT_POLL(get_status(3) != 1);
  assert_int_equal(get_status(3), BW_EBULKHEAD_FULL);
  assert_int_equal(bw_clock_advance(f.rt, 100), 0);
  BWT_POLL(get_status(2) != 1);
  assert_int_equal(get_status(2), BW_ETIMEDOUT);
  bw_policy_stats_t m = stats(&f);
  assert_int_equal(m.rejected_bulkhead, 2);
  assert_int_equal(get_nlog(), 1);
  /* a queued one goes in when the first ends (t=100; attempt 1 ends at 150) */
  go(&f, 4);
  BWT_POLL(stats(&f).queued == 2);
  assert_int_equal(bw_clock_advance(f.rt, 49), 0);
  assert_int_equal(get_nlog(), 1);
  assert_int_equal(bw_clock_advance(f.rt, 1), 0); /* t=150: attempt 1 times out */
  BWT_POLL(get_status(1) != 1);
  assert_int_equal(get_status(1), BW_ETIMEDOUT);
  BWT_POLL(get_nlog() == 2); /* request 4 reached the target */
  assert_int_equal(bw_clock_advance(f.rt, 150), 0);
  BWT_POLL(get_status(4) != 1);
  BWT_POLL(m_in_flight(&f) == 0);
  fx_done(&f);
}

/* The rate limiter waits for a token (a timer) up to rate_wait_ms, and
 * refuses when the wait would be longer. */
static void test_ratelimit_wait(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_OK);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.rate_limit = true;
  o.rate = 1;
  o.rate_period_ms = 1000;
  o.rate_burst = 1;
  o.rate_wait_ms = 1500;
  fx_start(&f, &o);
  go(&f, 1);
  BWT_POLL(get_status(1) != 1);
  assert_int_equal(get_status(1), 0);
  go(&f, 2); /* waits 1000 ms for its token */
  BWT_POLL(stats(&f).rate_waits == 1);
  go(&f, 3); /* would wait 2000 ms: refused */
  BWT_POLL(get_status(3) != 1);
  assert_int_equal(get_status(3), BW_ERATE_LIMITED);
  assert_int_equal(bw_clock_advance(f.rt, 999), 0);
  assert_int_equal(get_nlog(), 1);
  assert_int_equal(bw_clock_advance(f.rt, 1), 0);
  BWT_POLL(get_status(2) != 1);
  assert_int_equal(get_status(2), 0);
  bwt_lock(&sync_);
  uint64_t t = log_t[1];
  bwt_unlock(&sync_);
  assert_int_equal(t, 1000);
  assert_int_equal(stats(&f).rejected_ratelimit, 1);
  fx_done(&f);
}

/* Every preset: its values, and it validates once a target is set. */
static void test_presets(void **state) {
  (void)state;
  bw_policy_opts_t o;
  assert_int_equal(bw_policy_preset("api", &o), 0);
  assert_true(o.breaker);
  assert_int_equal(o.breaker_opts.failure_threshold, 5);
  assert_int_equal(o.breaker_opts.open_ms, 60000);
  assert_int_equal(o.max_attempts, 3);
  assert_int_equal(o.backoff.kind, BW_RETRY_BACKOFF_EXPONENTIAL);
  assert_int_equal(o.attempt_timeout_ms, 30000);
  assert_int_equal(o.max_concurrent, 50);
  assert_int_equal(o.max_queued, 100);
  assert_true(o.budget);
  assert_false(o.rate_limit);

  assert_int_equal(bw_policy_preset("database", &o), 0);
  assert_int_equal(o.breaker_opts.failure_threshold, 3);
  assert_int_equal(o.breaker_opts.open_ms, 30000);
  assert_int_equal(o.max_attempts, 2);
  assert_int_equal(o.attempt_timeout_ms, 5000);
  assert_int_equal(o.max_concurrent, 10);
  assert_int_equal(o.max_queued, 50);

  assert_int_equal(bw_policy_preset("ai", &o), 0);
  assert_int_equal(o.breaker_opts.open_ms, 120000);
  assert_int_equal(o.attempt_timeout_ms, 120000);
  assert_int_equal(o.deadline_ms, 300000);
  assert_true(o.rate_limit);
  assert_int_equal(o.rate, 1);
  assert_int_equal(o.rate_burst, 10);
  assert_int_equal(o.rate_wait_ms, 10000);
  assert_int_equal(o.max_concurrent, 5);
  assert_int_equal(o.backoff.kind, BW_RETRY_BACKOFF_DECORRELATED);

  assert_int_equal(bw_policy_preset("external", &o), 0);
  assert_int_equal(o.attempt_timeout_ms, 10000);
  assert_int_equal(o.deadline_ms, 30000);
  assert_int_equal(o.rate, 100);
  assert_int_equal(o.rate_wait_ms, 0);
  assert_int_equal(o.backoff.kind, BW_RETRY_BACKOFF_FULL_JITTER);
  assert_int_equal(o.max_concurrent, 20);

  assert_int_equal(bw_policy_preset("critical", &o), 0);
  assert_int_equal(o.breaker_opts.failure_threshold, 10);
  assert_int_equal(o.breaker_opts.open_ms, 15000);
  assert_int_equal(o.max_attempts, 5);
  assert_int_equal(o.deadline_ms, 5000);
  assert_int_equal(o.attempt_timeout_ms, 2000);
  assert_int_equal(o.max_concurrent, 100);

  for (int k = 0; k < BW_POLICY_PRESET__COUNT; k++) {
    bw_policy_opts_t a, b;
    assert_int_equal(bw_policy_preset_kind(k, &a), 0);
    assert_int_equal(bw_policy_preset(bw_policy_preset_name(k), &b), 0);
    assert_int_equal(a.max_attempts, b.max_attempts);
    assert_string_equal(a.name, bw_policy_preset_name(k));
    assert_int_equal(bw_policy_opts_validate(&a), BW_EINVAL); /* no target yet */
    a.target = (bw_pid_t)42;
    assert_int_equal(bw_policy_opts_validate(&a), 0);
  }
  assert_int_equal(bw_policy_preset("nope", &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset(NULL, &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset("api", NULL), BW_EINVAL);
  assert_int_equal(bw_policy_preset_kind(-1, &o), BW_EINVAL);
  assert_int_equal(bw_policy_preset_kind(BW_POLICY_PRESET__COUNT, &o), BW_EINVAL);
  assert_null(bw_policy_preset_name(99));
}

static bw_policy_opts_t good(void) {
  bw_policy_opts_t o;
  bw_policy_opts_init(&o);
  o.target = (bw_pid_t)42;
  return o;
}

static void test_bad_options(void **state) {
  (void)state;
  bw_policy_opts_t o = good();
  assert_int_equal(bw_policy_opts_validate(&o), 0);
  assert_int_equal(bw_policy_opts_validate(NULL), BW_EINVAL);
  o.target = BW_PID_NONE; /* no target */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.target_name = "x"; /* both */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.capacity = 0;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.max_attempts = 0;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.attempt_timeout_ms = (uint64_t)-5; /* a negative duration */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.deadline_ms = (uint64_t)(int64_t)-1;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.budget = true;
  o.budget_opts.ratio = 1.5; /* a ratio above 1 */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o.budget_opts.ratio = -0.1;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o.budget_opts.ratio = 0.2;
  o.budget_opts.window_ms = 0; /* a zero window */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.breaker = true;
  o.breaker_opts.window_size = 0; /* a zero window */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.breaker = true;
  o.breaker_opts.failure_rate_pct = 150.0; /* a rate above 100 % */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.rate_limit = true; /* rate 0 */
  o.rate_burst = 1;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o.rate = 10;
  o.rate_burst = 0;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.max_concurrent = 2;
  o.max_queued = 5; /* a queue without a timeout */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.fallback = fb_fn;
  o.fallback_pid = (bw_pid_t)7; /* both fallbacks */
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.backoff.initial_ms = 0;
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);
  o = good();
  o.name = "a name that is far too long for a policy name";
  assert_int_equal(bw_policy_opts_validate(&o), BW_EINVAL);

  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_t *p = NULL;
  o = good();
  o.capacity = 0;
  assert_int_equal(bw_policy_new(rt, &o, &p), BW_EINVAL);
  assert_null(p);
  o = good();
  assert_int_equal(bw_policy_new(NULL, &o, &p), BW_EINVAL);
  assert_int_equal(bw_policy_new(rt, &o, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_stats(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_destroy(NULL), 0);
  assert_null(bw_policy_breaker(NULL));
  assert_int_equal(bw_spawn(rt, &bw_policy_behaviour, NULL, NULL, NULL), BW_EINVAL);
  assert_string_equal(bw_policy_cause_name(BW_POLICY_CAUSE_BUDGET), "budget");
  assert_string_equal(bw_policy_cause_name(99), "unknown");
  bw_runtime_destroy(rt);
}

/* A request of the policy's own range and a full table are refused. */
static void test_refusals(void **state) {
  (void)state;
  fx_t f;
  fx_base(&f, MODE_HOLD);
  bw_policy_opts_t o;
  fx_opts(&f, &o);
  o.capacity = 1;
  fx_start(&f, &o);
  bw_reply_t r;
  assert_int_equal(bw_call(f.rt, f.exec, BW_MSG_POLICY_BASE, NULL, 0, 0, &r), BW_EINVAL);
  go(&f, 1);
  BWT_POLL(get_nlog() == 1);
  uint32_t id = 2;
  assert_int_equal(bw_call(f.rt, f.exec, T_WORK, &id, sizeof id, 0, &r), BW_ELIMIT);
  assert_int_equal(stats(&f).refused, 2);
  /* the held request is abandoned when the executor stops */
  assert_int_equal(bw_policy_destroy(f.pol), 0);
  BWT_POLL(get_status(1) != 1);
  assert_int_equal(get_status(1), BW_ENOPROC);
  f.pol = NULL;
  fx_done(&f);
}

/* --- the in-caller form (bw_policy_enter / bw_policy_exit) --------------------------
 *
 * Called from the test's own thread (any thread may): every outcome is the
 * return value, so no waiting is needed except for the breaker's actor,
 * which bw_breaker_flush waits for. */

static bw_policy_t *fast_new(bw_runtime_t *rt, const bw_policy_opts_t *o) {
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, o, &p), 0);
  return p;
}

static void fast_opts(bw_policy_opts_t *o) {
  bw_policy_opts_init(o);
  o->target = (bw_pid_t)1; /* validated only: the caller sends where it wants */
}

static bw_policy_stats_t fast_stats(const bw_policy_t *p) {
  bw_policy_stats_t m;
  assert_int_equal(bw_policy_stats(p, &m), 0);
  return m;
}

/* Success through every stage: the attempt's bound, counters, nothing held
 * after exit (the one slot of the limit is free again). */
static void test_fast_success(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  assert_int_equal(bw_policy_preset("api", &o), 0);
  o.target = (bw_pid_t)1;
  o.rate_limit = true;
  o.rate = 100;
  o.rate_burst = 10;
  o.max_concurrent = 1;
  o.max_queued = 0;
  o.queue_timeout_ms = 0;
  o.fallback = fb_fn;
  bw_policy_t *p = fast_new(rt, &o);
  assert_int_equal(bw_breaker_start(bw_policy_breaker(p), NULL), 0);
  bw_policy_ticket_t t;
  for (int i = 0; i < 3; i++) { /* one ticket, reused request after request */
    if (i == 0)
      bw_policy_ticket_init(&t);
    uint64_t now = bw_now_ns(rt);
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(t.timeout_ms, 30000);
    assert_int_equal(t.deadline_ns, now + 30000ull * 1000000u);
    assert_int_equal(t.attempts, 1);
    uint64_t rin = 7;
    assert_int_equal(bw_policy_exit(p, &t, 0, &rin), 0);
    assert_int_equal(rin, 0);
    assert_int_equal(t.cause, BW_POLICY_CAUSE_NONE);
    assert_false(t.fallback_used);
  }
  assert_int_equal(fallback_calls, 0);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.calls, 3);
  assert_int_equal(m.successes, 3);
  assert_int_equal(m.attempts, 3);
  assert_int_equal(m.failures, 0);
  assert_int_equal(m.in_flight, 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* Each stage refuses in its turn, and a refusal holds nothing: deadline
 * first, an open breaker before the limiter (no token spent), the limiter
 * before the concurrency limit, the limit last. */
static void test_fast_stage_order(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_ratelimit_t rl;
  assert_int_equal(bw_ratelimit_init(&rl, rt, 1, 1000, 2), 0);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.breaker = true;
  o.shared_limiter = &rl;
  o.max_concurrent = 1;
  bw_policy_t *p = fast_new(rt, &o);
  bw_breaker_t *br = bw_policy_breaker(p);
  assert_int_equal(bw_breaker_start(br, NULL), 0);

  /* breaker open: refused, the limiter untouched */
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  bw_policy_ticket_t a, b;
  bw_policy_ticket_init(&a);
  assert_int_equal(bw_policy_enter(p, &a), BW_ECIRCUIT_OPEN);
  assert_int_equal(a.cause, BW_POLICY_CAUSE_BREAKER);
  assert_int_equal(bw_ratelimit_available(&rl), 2);
  assert_int_equal(bw_breaker_reset(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);

  /* a takes a token and the one slot; b gets a token, then the limit is full */
  assert_int_equal(bw_policy_enter(p, &a), 0);
  bw_policy_ticket_init(&b);
  assert_int_equal(bw_policy_enter(p, &b), BW_EBULKHEAD_FULL);
  assert_int_equal(b.cause, BW_POLICY_CAUSE_BULKHEAD);
  assert_int_equal(bw_ratelimit_available(&rl), 0);
  /* no token left: the limiter refuses before the (still full) limit */
  assert_int_equal(bw_policy_enter(p, &b), BW_ERATE_LIMITED);
  assert_int_equal(b.cause, BW_POLICY_CAUSE_RATELIMIT);
  assert_int_equal(b.wait_ns, 0); /* final: no wait allowed */
  assert_int_equal(bw_policy_exit(p, &a, 0, NULL), 0);

  /* the slot is free again, the breaker's permits were handed back */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_policy_enter(p, &b), 0);
  assert_int_equal(bw_policy_exit(p, &b, 0, NULL), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  bw_breaker_stats_t bm;
  assert_int_equal(bw_breaker_stats(br, &bm), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED);

  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.calls, 5);
  assert_int_equal(m.successes, 2);
  assert_int_equal(m.failures, 3);
  assert_int_equal(m.rejected_breaker, 1);
  assert_int_equal(m.rejected_bulkhead, 1);
  assert_int_equal(m.rejected_ratelimit, 1);
  assert_int_equal(m.in_flight, 0);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* the overall deadline comes before everything */
  fast_opts(&o);
  o.deadline_ms = 100;
  o.max_attempts = 3;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 10;
  o.retryable = retry_user_err;
  p = fast_new(rt, &o);
  bw_policy_ticket_init(&a);
  assert_int_equal(bw_policy_enter(p, &a), 0);
  assert_int_equal(bw_policy_exit(p, &a, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(bw_policy_enter(p, &a), BW_ETIMEDOUT);
  assert_int_equal(a.cause, BW_POLICY_CAUSE_DEADLINE);
  assert_int_equal(a.attempts, 1);
  assert_int_equal(fast_stats(p).deadlines, 1);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* Retries come back with the backoff's delays; the last failure is final. */
static void test_fast_retry_backoff(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_attempts = 4;
  o.backoff.kind = BW_RETRY_BACKOFF_EXPONENTIAL;
  o.backoff.initial_ms = 100;
  o.backoff.multiplier = 2.0;
  o.backoff.max_ms = 300;
  o.retryable = retry_user_err;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  const uint64_t want[] = {100, 200, 300};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(t.attempts, (uint32_t)i + 1);
    uint64_t rin = 0;
    assert_int_equal(bw_policy_exit(p, &t, USER_ERR, &rin), BW_POLICY_RETRY);
    assert_int_equal(rin, want[i]);
    assert_int_equal(t.retry_in_ms, want[i]);
    assert_int_equal(bw_clock_advance(rt, rin), 0);
  }
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), USER_ERR);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_FAILURE);
  /* a status the predicate does not retry ends at once */
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, -2000, NULL), -2000);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.attempts, 5);
  assert_int_equal(m.retries, 3);
  assert_int_equal(m.target_failures, 2);
  assert_int_equal(m.in_flight, 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The budget refuses the retry: BW_EBUDGET, final. */
static void test_fast_budget(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_attempts = 5;
  o.retryable = retry_user_err;
  o.budget = true;
  o.budget_opts.ratio = 0.0;
  o.budget_opts.min_retries_per_sec = 0;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), BW_EBUDGET);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_BUDGET);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.budget_exhausted, 1);
  assert_int_equal(m.retries, 0);
  assert_int_equal(m.failures, 1);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* a budget that allows: a deposit per call (not per attempt) */
  o.budget_opts.ratio = 1.0;
  p = fast_new(rt, &o);
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(bw_clock_advance(rt, t.retry_in_ms), 0);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), BW_EBUDGET);
  assert_int_equal(fast_stats(p).retries, 1);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* Failures reported through exit open the breaker; the next enter is
 * refused, and the fallback answers into the ticket. */
static void test_fast_breaker_opens(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.breaker = true;
  o.breaker_opts.failure_threshold = 2;
  o.fallback = fb_fn;
  bw_policy_t *p = fast_new(rt, &o);
  bw_breaker_t *br = bw_policy_breaker(p);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), USER_ERR);
  }
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
  uint32_t id = 5;
  bw_msg_t req = {.type = T_WORK, .len = sizeof id, .data = &id};
  t.req = &req;
  assert_int_equal(bw_policy_enter(p, &t), BW_ECIRCUIT_OPEN);
  assert_true(t.fallback_used);
  assert_int_equal(t.answer.status, 0);
  uint32_t v = 0;
  memcpy(&v, t.answer.data, sizeof v);
  assert_int_equal(v, 9005);
  assert_int_equal(fallback_cause, BW_POLICY_CAUSE_BREAKER);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.rejected_breaker, 1);
  assert_int_equal(m.target_failures, 2);
  assert_int_equal(m.fallbacks, 3);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The concurrency limit from two threads at once: never more than N inside. */
typedef struct fast_thr {
  bw_policy_t *p;
  uint32_t *inside;
  uint32_t max_seen;
  uint64_t ok, full, iters;
  int bad;
} fast_thr_t;

static void *fast_thread(void *arg) {
  fast_thr_t *a = arg;
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  for (uint64_t i = 0; i < a->iters; i++) {
    int rc = bw_policy_enter(a->p, &t);
    if (rc == BW_EBULKHEAD_FULL) {
      a->full++;
      continue;
    }
    if (rc != 0) {
      a->bad++;
      continue;
    }
    uint32_t n = __atomic_add_fetch(a->inside, 1, __ATOMIC_SEQ_CST);
    if (n > a->max_seen)
      a->max_seen = n;
    sched_yield();
    __atomic_sub_fetch(a->inside, 1, __ATOMIC_SEQ_CST);
    if (bw_policy_exit(a->p, &t, 0, NULL) != 0)
      a->bad++;
    a->ok++;
  }
  return NULL;
}

static void test_fast_concurrency_threads(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_concurrent = 1;
  bw_policy_t *p = fast_new(rt, &o);
  uint32_t inside = 0;
  fast_thr_t a[2];
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    a[i] = (fast_thr_t){.p = p, .inside = &inside, .iters = bwt_scaled(20000)};
    assert_int_equal(pthread_create(&th[i], NULL, fast_thread, &a[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(a[i].bad, 0);
    assert_true(a[i].max_seen <= 1);
  }
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.successes, a[0].ok + a[1].ok);
  assert_int_equal(m.rejected_bulkhead, a[0].full + a[1].full);
  assert_int_equal(m.calls, 2 * bwt_scaled(20000));
  assert_int_equal(m.in_flight, 0);
  /* every slot came back: the one place is free */
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The attempt's bound is the attempt timeout, cut by what the overall
 * deadline leaves; a timeout at the deadline ends the request. */
static void test_fast_deadline_shrinks(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.deadline_ms = 1000;
  o.attempt_timeout_ms = 600;
  o.max_attempts = 5;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 100;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(t.timeout_ms, 600);
  assert_int_equal(bw_clock_advance(rt, 600), 0);
  assert_int_equal(bw_policy_exit(p, &t, BW_ETIMEDOUT, NULL), BW_POLICY_RETRY);
  assert_int_equal(t.retry_in_ms, 100);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  uint64_t now = bw_now_ns(rt);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(t.timeout_ms, 300); /* what the deadline leaves */
  assert_int_equal(t.deadline_ns, now + 300ull * 1000000u);
  assert_int_equal(bw_clock_advance(rt, 300), 0);
  assert_int_equal(bw_policy_exit(p, &t, BW_ETIMEDOUT, NULL), BW_ETIMEDOUT);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_DEADLINE);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.deadlines, 1);
  assert_int_equal(m.timeouts, 0);
  assert_int_equal(m.retries, 1);
  /* a timeout with time left, and no attempts left: cause timeout */
  o.max_attempts = 1;
  o.deadline_ms = 0;
  assert_int_equal(bw_policy_destroy(p), 0);
  p = fast_new(rt, &o);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(t.timeout_ms, 600);
  assert_int_equal(bw_policy_exit(p, &t, BW_ETIMEDOUT, NULL), BW_ETIMEDOUT);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_TIMEOUT);
  assert_int_equal(fast_stats(p).timeouts, 1);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The fallback on a final failure only, as fallback_on says; a fallback
 * actor is named in the ticket, not called. */
static void test_fast_fallback(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_attempts = 2;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 10;
  o.retryable = retry_user_err;
  o.fallback = fb_fn;
  bw_policy_t *p = fast_new(rt, &o);
  uint32_t id = 3;
  bw_msg_t req = {.type = T_WORK, .len = sizeof id, .data = &id};
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  t.req = &req;
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(fallback_calls, 0); /* not before the end */
  assert_false(t.fallback_used);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), USER_ERR);
  assert_true(t.fallback_used);
  assert_int_equal(fallback_calls, 1);
  assert_int_equal(fallback_cause, BW_POLICY_CAUSE_FAILURE);
  assert_int_equal(t.answer.status, 0);
  assert_int_equal(t.answer.type, T_WORK);
  uint32_t v = 0;
  memcpy(&v, t.answer.data, sizeof v);
  assert_int_equal(v, 9003);
  /* success never; the next request clears the answer */
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_false(t.fallback_used);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(fallback_calls, 1);
  /* no request view: the fallback sees an empty message, not NULL */
  t.req = NULL;
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, -2000, NULL), -2000);
  assert_true(t.fallback_used);
  memcpy(&v, t.answer.data, sizeof v);
  assert_int_equal(v, 9000);
  assert_int_equal(fast_stats(p).fallbacks, 2);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* a cause outside fallback_on: not consulted */
  o.fallback_on = BW_POLICY_FB_REJECTED;
  p = fast_new(rt, &o);
  o.max_attempts = 1;
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, -2000, NULL), -2000);
  assert_false(t.fallback_used);
  assert_int_equal(fallback_calls, 2);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* a fallback actor: named, for the caller to forward to */
  fast_opts(&o);
  o.fallback_pid = (bw_pid_t)2;
  p = fast_new(rt, &o);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(t.fallback_pid, BW_PID_NONE);
  assert_int_equal(bw_policy_exit(p, &t, -2000, NULL), -2000);
  assert_int_equal(t.fallback_pid, (bw_pid_t)2);
  assert_false(t.fallback_used);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* Waiting for a token: BW_POLICY_RETRY with the wait, the same attempt on
 * re-entry; with no wait allowed, a final BW_ERATE_LIMITED. */
static void test_fast_ratelimit_wait(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.rate_limit = true;
  o.rate = 10;
  o.rate_period_ms = 1000;
  o.rate_burst = 1;
  o.rate_wait_ms = 500;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_POLICY_RETRY);
  assert_int_equal(t.wait_ns, 100000000u);
  assert_int_equal(t.retry_in_ms, 100);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(t.attempts, 1);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.rate_waits, 1);
  assert_int_equal(m.attempts, 2);
  assert_int_equal(m.successes, 2);
  assert_int_equal(bw_policy_destroy(p), 0);

  o.rate_wait_ms = 0;
  p = fast_new(rt, &o);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_ERATE_LIMITED);
  assert_int_equal(t.cause, BW_POLICY_CAUSE_RATELIMIT);
  assert_int_equal(fast_stats(p).rejected_ratelimit, 1);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* Bad input: BW_EINVAL, nothing counted, nothing held. */
static void test_fast_bad_input(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_concurrent = 1;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(NULL);
  bw_policy_ticket_init(&t);
  assert_int_equal(bw_policy_enter(NULL, &t), BW_EINVAL);
  assert_int_equal(bw_policy_enter(p, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_exit(NULL, &t, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_exit(p, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), BW_EINVAL); /* no attempt */
  bw_policy_ticket_t raw;
  memset(&raw, 0, sizeof raw); /* never initialised */
  assert_int_equal(bw_policy_enter(p, &raw), BW_EINVAL);
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_enter(p, &t), BW_EINVAL); /* exit first */
  /* the reserved code is not echoed back as a status */
  assert_int_equal(bw_policy_exit(p, &t, BW_POLICY_RETRY, NULL), BW_EINVAL);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.failures, 1);
  assert_int_equal(m.in_flight, 0);
  assert_int_equal(bw_policy_enter(p, &t), 0); /* the slot came back */
  assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The hot path counts less (one add at enter, one at exit for a success):
 * the stats still come out exact, retries, waits and unfinished tickets
 * included, and the executor's counts add to the in-caller ones. */
static void test_fast_counts_exact(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.max_attempts = 3;
  o.backoff.kind = BW_RETRY_BACKOFF_FIXED;
  o.backoff.initial_ms = 10;
  o.retryable = retry_user_err;
  o.rate_limit = true;
  o.rate = 1;
  o.rate_period_ms = 100;
  o.rate_burst = 1;
  o.rate_wait_ms = 1000;
  o.max_concurrent = 2;
  bw_policy_t *p = fast_new(rt, &o);
  bw_policy_ticket_t a, b;
  bw_policy_ticket_init(&a);
  bw_policy_ticket_init(&b);
  /* a: fails once, then succeeds on its second attempt after the backoff;
   * its second attempt also waits for a token (the same attempt, counted
   * once) */
  assert_int_equal(bw_policy_enter(p, &a), 0);
  assert_int_equal(bw_policy_exit(p, &a, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(bw_clock_advance(rt, 10), 0);
  assert_int_equal(bw_policy_enter(p, &a), BW_POLICY_RETRY);
  assert_true(a.wait_ns > 0);
  assert_int_equal(bw_clock_advance(rt, a.retry_in_ms), 0);
  assert_int_equal(bw_policy_enter(p, &a), 0);
  assert_int_equal(a.attempts, 2);
  /* b: in flight, never exited yet */
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(bw_policy_enter(p, &b), 0);
  assert_int_equal(bw_policy_exit(p, &a, 0, NULL), 0);
  bw_policy_stats_t m = fast_stats(p);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.attempts, 3);
  assert_int_equal(m.retries, 1);
  assert_int_equal(m.rate_waits, 1);
  assert_int_equal(m.successes, 1);
  assert_int_equal(m.failures, 0);
  assert_int_equal(m.in_flight, 1); /* b */
  assert_int_equal(bw_policy_exit(p, &b, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(bw_policy_enter(p, &b), 0);
  assert_int_equal(bw_policy_exit(p, &b, USER_ERR, NULL), BW_POLICY_RETRY);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  assert_int_equal(bw_policy_enter(p, &b), 0);
  assert_int_equal(bw_policy_exit(p, &b, USER_ERR, NULL), USER_ERR); /* the 3rd: final */
  m = fast_stats(p);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.attempts, 5);
  assert_int_equal(m.retries, 3);
  assert_int_equal(m.successes, 1);
  assert_int_equal(m.failures, 1);
  assert_int_equal(m.target_failures, 1);
  assert_int_equal(m.in_flight, 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(rt);
}

/* The breaker behind the in-caller form batches its success reports (they
 * wait for the next failure or the flush timer) and still trips exactly;
 * a breaker that detects slow calls gets each attempt's real duration
 * (exit reads the clock only then). */
static void test_fast_breaker_batched(void **state) {
  (void)state;
  reset(MODE_OK);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_policy_opts_t o;
  fast_opts(&o);
  o.breaker = true;
  o.breaker_opts.window = BW_BREAKER_WINDOW_NONE;
  o.breaker_opts.failure_threshold = 3;
  o.breaker_opts.report_flush_ms = 60000; /* the timer never fires here */
  bw_policy_t *p = fast_new(rt, &o);
  bw_breaker_t *br = bw_policy_breaker(p);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  static const int seq[] = {0, 0, USER_ERR, USER_ERR, 0, USER_ERR, USER_ERR};
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(bw_policy_exit(p, &t, seq[i], NULL), seq[i]);
  }
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED); /* 2, reset, 2 */
  assert_int_equal(bw_policy_enter(p, &t), 0);
  assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), USER_ERR);
  /* the third in a row wakes the actor by itself */
  BWT_POLL(bw_breaker_state(br) == BW_BREAKER_OPEN);
  bw_breaker_stats_t bm;
  assert_int_equal(bw_breaker_stats(br, &bm), 0);
  assert_int_equal(bm.successful, 3);
  assert_int_equal(bm.failed, 5);
  assert_int_equal(bw_policy_enter(p, &t), BW_ECIRCUIT_OPEN);
  assert_int_equal(bw_policy_destroy(p), 0);

  /* slow-call detection: the duration is enter to exit on the runtime's
   * clock; 2 slow successes of 2 calls trip a 50 % slow rate */
  fast_opts(&o);
  o.breaker = true;
  o.breaker_opts.window = BW_BREAKER_WINDOW_COUNT;
  o.breaker_opts.window_size = 2;
  o.breaker_opts.minimum_calls = 2;
  o.breaker_opts.failure_threshold = 0;
  o.breaker_opts.slow_call_ms = 100;
  o.breaker_opts.slow_rate_pct = 50.0;
  p = fast_new(rt, &o);
  br = bw_policy_breaker(p);
  assert_int_equal(bw_breaker_slow_call_ms(br), 100);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(bw_clock_advance(rt, 101), 0);
    assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  }
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_stats(br, &bm), 0);
  assert_int_equal(bm.slow, 2);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
  assert_int_equal(bw_policy_destroy(p), 0);
  assert_int_equal(bw_breaker_slow_call_ms(NULL), 0);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_success_all_stages),
      cmocka_unit_test(test_breaker_before_ratelimit),
      cmocka_unit_test(test_retry_reenters_breaker),
      cmocka_unit_test(test_budget_cuts_retries),
      cmocka_unit_test(test_attempt_timeout_vs_deadline),
      cmocka_unit_test(test_fallback),
      cmocka_unit_test(test_bulkhead),
      cmocka_unit_test(test_ratelimit_wait),
      cmocka_unit_test(test_presets),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_fast_success),
      cmocka_unit_test(test_fast_stage_order),
      cmocka_unit_test(test_fast_retry_backoff),
      cmocka_unit_test(test_fast_budget),
      cmocka_unit_test(test_fast_breaker_opens),
      cmocka_unit_test(test_fast_concurrency_threads),
      cmocka_unit_test(test_fast_deadline_shrinks),
      cmocka_unit_test(test_fast_fallback),
      cmocka_unit_test(test_fast_ratelimit_wait),
      cmocka_unit_test(test_fast_bad_input),
      cmocka_unit_test(test_fast_counts_exact),
      cmocka_unit_test(test_fast_breaker_batched),
  };
  return BWT_RUN_SUITE(tests);
}
