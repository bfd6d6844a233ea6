/*
 * The retry executor, on the manual clock: success on the 3rd attempt with
 * the backoff delays honoured (the target's log of attempt times), the
 * per-attempt timeout and its late reply dead-lettered, the overall
 * deadline, the predicate (non-retryable codes, BW_EINVAL never, an open
 * breaker only when asked), a dead target (fixed pid: final; named target:
 * retried until it is registered), the in-flight table full (BW_ELIMIT),
 * many requests in flight, the budget cutting retries in a storm, the target
 * named per request, bad options and bad requests, and the executor
 * restarted under a supervisor.
 *
 * Observing without sleeping: bw_clock_advance queues due timer messages
 * before it returns. flush() then makes a request from the main thread to
 * the executor (refused at once: it counts as rejected, nothing else), a
 * ping to the target, and the executor again; per-mailbox FIFO order means
 * that when all three have answered, everything the advance set off has
 * reached the target and the target's answers have reached the executor
 * (so any backoff timer they lead to is armed before the next advance).
 */
#include "support.h"

#include "bulwark/policy.h"
#include "bulwark/retry.h"

enum {
  T_WORK = 1, /* request to the target; payload uint32 id */
  T_PING,     /* request to the target: answered 0 at once, not logged */
  T_RELEASE,  /* to the target: answer every held request (late) */
  T_GO,       /* to the client: make a request; payload go_t */
};

/* What the target does with the n-th attempt it sees of one id. */
#define A_OK 0   /* reply 0 with payload id + 1000 */
#define A_HOLD 1 /* keep it unanswered (the attempt times out) */
/* any negative value: reply with that status */

#define USER_ERR (-1000) /* a user failure code */
#define MAXLOG 512
#define MAXIDS 256

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static int script[8];
static int script_len;
static uint64_t log_t[MAXLOG]; /* when the target saw each attempt */
static uint32_t log_id[MAXLOG];
static int nlog;
static unsigned seen[MAXIDS];
static bw_msg_t held[MAXLOG];
static int nheld;
/* the client's answers, by id */
static int reply_status[MAXIDS];
static uint32_t reply_val[MAXIDS];
static uint64_t reply_t[MAXIDS];
static uint64_t req_ref[MAXIDS]; /* the client's request ref per id */
static int nreplies;

static void reset(const int *acts, int n) {
  bwt_lock(&sync_);
  memset(script, 0, sizeof script);
  for (int i = 0; i < n; i++)
    script[i] = acts[i];
  script_len = n;
  nlog = 0;
  nheld = 0;
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < MAXIDS; i++)
    reply_status[i] = 1; /* 1 = no answer yet */
  memset(reply_val, 0, sizeof reply_val);
  memset(req_ref, 0, sizeof req_ref);
  nreplies = 0;
  bwt_unlock(&sync_);
}

static int get_nlog(void) {
  bwt_lock(&sync_);
  int n = nlog;
  bwt_unlock(&sync_);
  return n;
}

static uint64_t get_log_t(int i) {
  bwt_lock(&sync_);
  uint64_t t = log_t[i];
  bwt_unlock(&sync_);
  return t;
}

static unsigned get_seen(uint32_t id) {
  bwt_lock(&sync_);
  unsigned n = seen[id % MAXIDS];
  bwt_unlock(&sync_);
  return n;
}

static int get_status(uint32_t id) {
  bwt_lock(&sync_);
  int s = reply_status[id];
  bwt_unlock(&sync_);
  return s;
}

/* --- target ---------------------------------------------------------------- */

static int target_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_PING) {
    bw_reply(ctx, msg, 0, T_PING, NULL, 0);
    return BW_CONTINUE;
  }
  if (msg->type == T_RELEASE) {
    bwt_lock(&sync_);
    int n = nheld;
    nheld = 0;
    bwt_unlock(&sync_);
    for (int i = 0; i < n; i++) {
      uint32_t v = 7;
      bw_reply(ctx, &held[i], 0, T_WORK, &v, sizeof v);
    }
    return BW_CONTINUE;
  }
  if (msg->type != T_WORK || msg->len != sizeof(uint32_t))
    return BW_CONTINUE;
  uint32_t id;
  memcpy(&id, msg->data, sizeof id);
  bwt_lock(&sync_);
  unsigned k = seen[id % MAXIDS]++;
  int act = script_len == 0 ? A_OK : script[k < (unsigned)script_len ? k : (unsigned)script_len - 1];
  if (nlog < MAXLOG) {
    log_t[nlog] = bw_now_ms(bw_ctx_runtime(ctx));
    log_id[nlog] = id;
  }
  nlog++;
  if (act == A_HOLD && nheld < MAXLOG) {
    held[nheld] = *msg;
    held[nheld].data = NULL;
    held[nheld].len = 0;
    nheld++;
  }
  bwt_unlock_signal(&sync_);
  if (act == A_OK) {
    uint32_t v = id + 1000;
    bw_reply(ctx, msg, 0, T_WORK, &v, sizeof v);
  } else if (act < 0) {
    bw_reply(ctx, msg, act, T_WORK, &id, sizeof id);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t target_b = {.name = "target", .handle = target_handle};

/* --- client: requests on T_GO, records the answers ------------------------- */

typedef struct go {
  bw_pid_t to;
  uint32_t id;
  uint32_t packed; /* send as BW_MSG_RETRY_CALL naming target */
  bw_pid_t target;
} go_t;

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_GO) {
    go_t g;
    memcpy(&g, msg->data, sizeof g);
    int rc;
    uint64_t ref = 0;
    if (g.packed) {
      uint8_t buf[BW_MSG_INLINE_MAX];
      size_t len = 0;
      rc = bw_retry_call_pack(buf, g.target, T_WORK, &g.id, sizeof g.id, &len);
      if (rc == 0)
        rc = bw_request(ctx, g.to, BW_MSG_RETRY_CALL, buf, len, 0, &ref);
    } else {
      rc = bw_request(ctx, g.to, T_WORK, &g.id, sizeof g.id, 0, &ref);
    }
    bwt_lock(&sync_);
    req_ref[g.id] = ref;
    if (rc != 0) {
      reply_status[g.id] = 1000 + rc; /* marks a failed send */
      nreplies++;
    }
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    /* the executor forwards the target's payload: id + 1000 on success, the
     * id itself on a failure reply; nothing on its own errors */
    uint32_t v = 0;
    if (msg->len == sizeof v)
      memcpy(&v, msg->data, sizeof v);
    bwt_lock(&sync_);
    for (uint32_t id = 0; id < MAXIDS; id++) {
      if (req_ref[id] == msg->ref && msg->ref != 0) {
        reply_status[id] = msg->status;
        reply_val[id] = v;
        reply_t[id] = bw_now_ms(bw_ctx_runtime(ctx));
        break;
      }
    }
    nreplies++;
    bwt_unlock_signal(&sync_);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t client_b = {.name = "client", .handle = client_handle};

/* --- helpers ---------------------------------------------------------------- */

/* The actors a test spawned, for teardown(). */
static bw_pid_t actors[32];
static int nactors;

static bw_pid_t track(bw_pid_t p) {
  if (nactors < 32)
    actors[nactors++] = p;
  return p;
}

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b, const char *name) {
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.name = name;
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, b, NULL, &so, &p), 0);
  return track(p);
}

/* The retry handles a test made, destroyed by teardown. */
#define MAXPOLS 8
static bw_retry_t *pols[MAXPOLS];
static int npols;

static bw_retry_t *retry_new(bw_runtime_t *rt, const bw_retry_opts_t *o) {
  assert_true(npols < MAXPOLS);
  bw_retry_t *r = NULL;
  assert_int_equal(bw_retry_new(rt, o, &r), 0);
  pols[npols++] = r;
  return r;
}

static bw_pid_t spawn_exec(bw_retry_t *pol) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_retry_start(pol, &p), 0);
  assert_int_equal(bw_retry_pid(pol), p);
  return track(p);
}

/*
 * Stops the test's actors one at a time, newest first, then the runtime.
 * Works around a runtime deadlock (see the report): two actors that exit at
 * the same moment on two workers, each holding the per-turn kept pin on the
 * other's slot (the exit path's DOWN / DEMONITOR sends take one), wait for
 * each other's pins forever in bw__pid_invalidate. bw_runtime_stop makes
 * all actors exit at once, which is when the executor (monitoring its
 * target for a pending attempt) and the target meet it.
 */
static void stop_actors(bw_runtime_t *rt) {
  for (int i = nactors - 1; i >= 0; i--) {
    if (bw_is_alive(rt, actors[i])) {
      bw_exit(rt, actors[i], BW_REASON_SHUTDOWN, 0, NULL);
      BWT_AWAIT_DEAD(rt, actors[i]);
    }
  }
  nactors = 0;
}

static void teardown(bw_runtime_t *rt) {
  stop_actors(rt);
  for (int i = 0; i < npols; i++)
    assert_int_equal(bw_retry_destroy(pols[i]), 0);
  npols = 0;
  bw_runtime_destroy(rt);
}

static void go(bw_runtime_t *rt, bw_pid_t client, bw_pid_t exec, uint32_t id) {
  go_t g = {.to = exec, .id = id, .packed = 0, .target = BW_PID_NONE};
  assert_int_equal(bw_send(rt, client, T_GO, &g, sizeof g), 0);
}

/* See the file comment: after it returns, what the last advance set off has
 * reached the target. */
static void flush(bw_runtime_t *rt, bw_pid_t exec, bw_pid_t target) {
  bw_reply_t r;
  assert_int_equal(bw_call(rt, exec, BW_MSG_RETRY_BASE + 1, NULL, 0, 0, &r), BW_EINVAL);
  if (target != BW_PID_NONE)
    assert_int_equal(bw_call(rt, target, T_PING, NULL, 0, 0, &r), 0);
  /* and the target's answers have been handled by the executor */
  assert_int_equal(bw_call(rt, exec, BW_MSG_RETRY_BASE + 1, NULL, 0, 0, &r), BW_EINVAL);
}

static bw_retry_stats_t stats(const bw_retry_t *p) {
  bw_retry_stats_t m;
  assert_int_equal(bw_retry_stats(p, &m), 0);
  return m;
}

static bool retry_all(int status, void *arg) {
  (void)status;
  (void)arg;
  return true;
}

static bool retry_user_err(int status, void *arg) {
  (void)arg;
  return status == USER_ERR || status == BW_ETIMEDOUT;
}

static bw_retry_opts_t base_opts(bw_pid_t target) {
  bw_retry_opts_t o;
  bw_retry_opts_init(&o);
  o.target = target;
  o.seed = 1234;
  return o;
}

/* --- tests --------------------------------------------------------------------- */

static void test_success_on_third_attempt(void **state) {
  (void)state;
  const int acts[] = {USER_ERR, A_HOLD, A_OK};
  reset(acts, 3);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.max_attempts = 5;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_EXPONENTIAL, .initial_ms = 100,
                                   .max_ms = 1000, .multiplier = 2.0};
  o.attempt_timeout_ms = 50;
  o.retryable = retry_user_err;
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);

  go(rt, client, exec, 5);
  BWT_AWAIT(&sync_, nlog == 1); /* attempt 1 at t = 0: fails with USER_ERR */
  flush(rt, exec, target);
  assert_int_equal(stats(pol).retries, 1); /* the retry is scheduled */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 1); /* not before its 100 ms */
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 2); /* attempt 2 at t = 100: held */
  assert_int_equal(get_log_t(1), 100);
  assert_int_equal(bw_clock_advance(rt, 49), 0);
  flush(rt, exec, target);
  assert_int_equal(stats(pol).timeouts, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 150: attempt 2 times out */
  flush(rt, exec, target);
  assert_int_equal(stats(pol).timeouts, 1);
  assert_int_equal(bw_clock_advance(rt, 199), 0); /* the 2nd delay is 200 ms */
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 2);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_nlog(), 3);
  assert_int_equal(get_log_t(0), 0);
  assert_int_equal(get_log_t(2), 350);
  assert_int_equal(get_status(5), 0);
  bwt_lock(&sync_);
  assert_int_equal(reply_val[5], 1005); /* the target's payload, forwarded */
  assert_int_equal(reply_t[5], 350);
  bwt_unlock(&sync_);

  bw_retry_stats_t m = stats(pol);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.attempts, 3);
  assert_int_equal(m.retries, 2);
  assert_int_equal(m.successes, 1);
  assert_int_equal(m.successes_after_retry, 1);
  assert_int_equal(m.failures, 0);
  assert_int_equal(m.timeouts, 1);
  assert_int_equal(m.in_flight, 0);

  /* the held attempt 2 answers now: too late, a dead letter */
  uint64_t late0 = bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY];
  assert_int_equal(bw_send(rt, target, T_RELEASE, NULL, 0), 0);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] == late0 + 1);
  flush(rt, exec, target);
  assert_int_equal(stats(pol).successes, 1); /* nothing changed */
  stop_actors(rt);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t st = bwt_stats(rt);
  bwt_assert_accounting(&st);
  bw_runtime_destroy(rt);
}

static void test_attempt_timeout(void **state) {
  (void)state;
  const int acts[] = {A_HOLD};
  reset(acts, 1);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.max_attempts = 2;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 10, .max_ms = 10};
  o.attempt_timeout_ms = 50;
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);
  go(rt, client, exec, 1);
  BWT_AWAIT(&sync_, nlog == 1);
  assert_int_equal(bw_clock_advance(rt, 50), 0); /* t = 50: timeout 1 */
  flush(rt, exec, target);
  assert_int_equal(bw_clock_advance(rt, 10), 0); /* t = 60: attempt 2 */
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 2);
  assert_int_equal(get_log_t(1), 60);
  assert_int_equal(bw_clock_advance(rt, 49), 0);
  flush(rt, exec, target);
  assert_int_equal(get_status(1), 1); /* still waiting at t = 109 */
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 110: timeout 2, final */
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(1), BW_ETIMEDOUT);
  bw_retry_stats_t m = stats(pol);
  assert_int_equal(m.attempts, 2);
  assert_int_equal(m.timeouts, 2);
  assert_int_equal(m.failures, 1);
  assert_int_equal(m.deadlines, 0);
  /* both held attempts answer late: two dead letters */
  uint64_t late0 = bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY];
  assert_int_equal(bw_send(rt, target, T_RELEASE, NULL, 0), 0);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] == late0 + 2);
  teardown(rt);
}

static void test_overall_deadline(void **state) {
  (void)state;
  const int acts[] = {A_HOLD};
  reset(acts, 1);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.max_attempts = 10;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 50, .max_ms = 50};
  o.attempt_timeout_ms = 100;
  o.deadline_ms = 230;
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);
  go(rt, client, exec, 1);
  BWT_AWAIT(&sync_, nlog == 1);
  assert_int_equal(bw_clock_advance(rt, 100), 0); /* timeout 1 */
  flush(rt, exec, target);
  assert_int_equal(bw_clock_advance(rt, 50), 0); /* t = 150: attempt 2, cut to 80 ms */
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 2);
  assert_int_equal(bw_clock_advance(rt, 79), 0);
  flush(rt, exec, target);
  assert_int_equal(get_status(1), 1);
  assert_int_equal(stats(pol).failures, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 230: the deadline */
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(1), BW_ETIMEDOUT);
  bwt_lock(&sync_);
  assert_int_equal(reply_t[1], 230);
  bwt_unlock(&sync_);
  bw_retry_stats_t m = stats(pol);
  assert_int_equal(m.deadlines, 1);
  assert_int_equal(m.attempts, 2);
  assert_int_equal(m.failures, 1);

  /* a backoff that would end past the deadline ends the request at once */
  const int fail[] = {USER_ERR};
  reset(fail, 1);
  o.retryable = retry_all;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 300, .max_ms = 300};
  bw_retry_t *pol2 = retry_new(rt, &o);
  bw_pid_t exec2 = spawn_exec(pol2);
  go(rt, client, exec2, 2);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(2), BW_ETIMEDOUT);
  m = stats(pol2);
  assert_int_equal(m.attempts, 1);
  assert_int_equal(m.deadlines, 1);
  assert_int_equal(m.retries, 0);
  teardown(rt);
}

static void test_predicate(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.max_attempts = 4;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 10, .max_ms = 10};
  bw_retry_t *dflt = retry_new(rt, &o);
  o.retryable = retry_all;
  bw_retry_t *all = retry_new(rt, &o);
  bw_pid_t e_dflt = spawn_exec(dflt);
  bw_pid_t e_all = spawn_exec(all);

  /* the default predicate: a user error and an open breaker are final */
  const int user[] = {USER_ERR};
  reset(user, 1);
  go(rt, client, e_dflt, 1);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(1), USER_ERR);
  const int open[] = {BW_ECIRCUIT_OPEN};
  reset(open, 1);
  go(rt, client, e_dflt, 2);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(2), BW_ECIRCUIT_OPEN);
  bw_retry_stats_t m = stats(dflt);
  assert_int_equal(m.attempts, 2);
  assert_int_equal(m.retries, 0);
  assert_int_equal(m.failures, 2);
  assert_false(bw_retry_default_retryable(BW_ECIRCUIT_OPEN, NULL));
  assert_false(bw_retry_default_retryable(BW_EINVAL, NULL));
  assert_true(bw_retry_default_retryable(BW_ETIMEDOUT, NULL));

  /* a predicate that says yes to everything: BW_EINVAL is still final */
  const int inval[] = {BW_EINVAL};
  reset(inval, 1);
  go(rt, client, e_all, 3);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(3), BW_EINVAL);
  assert_int_equal(stats(all).attempts, 1);
  /* ... while the open breaker is retried when asked, up to max_attempts */
  reset(open, 1);
  go(rt, client, e_all, 4);
  for (int i = 0; i < 3; i++) {
    BWT_AWAIT(&sync_, nlog == i + 1);
    flush(rt, e_all, target);
    assert_int_equal(bw_clock_advance(rt, 10), 0);
  }
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(4), BW_ECIRCUIT_OPEN);
  assert_int_equal(get_nlog(), 4);
  m = stats(all);
  assert_int_equal(m.attempts, 5);
  assert_int_equal(m.retries, 3);
  assert_int_equal(m.failures, 2);
  teardown(rt);
}

static void test_dead_target(void **state) {
  (void)state;
  reset(NULL, 0);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  /* a fixed pid that is dead: BW_ENOPROC at once, never retried */
  bw_pid_t dead = spawn(rt, &target_b, NULL);
  assert_int_equal(bw_exit(rt, dead, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, dead);
  bw_retry_opts_t o = base_opts(dead);
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 100, .max_ms = 100};
  o.retryable = retry_all;
  bw_retry_t *fixed = retry_new(rt, &o);
  bw_pid_t e1 = spawn_exec(fixed);
  go(rt, client, e1, 1);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(1), BW_ENOPROC);
  assert_int_equal(stats(fixed).attempts, 1);

  /* a named target: not registered yet (BW_ENOTFOUND), then up: retried */
  o = base_opts(BW_PID_NONE);
  o.target_name = "svc";
  o.max_attempts = 3;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 100, .max_ms = 100};
  bw_retry_t *named = retry_new(rt, &o);
  bw_pid_t e2 = spawn_exec(named);
  go(rt, client, e2, 2);
  BWT_POLL(stats(named).retries == 1);
  bw_pid_t svc = spawn(rt, &target_b, "svc");
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_AWAIT(&sync_, nreplies == 2);
  assert_int_equal(get_status(2), 0);
  bw_retry_stats_t m = stats(named);
  assert_int_equal(m.attempts, 2);
  assert_int_equal(m.successes_after_retry, 1);

  /* the named target dies holding the attempt (BW_ENOPROC): the retry
   * reaches its successor */
  const int hold_then_ok[] = {A_HOLD, A_OK};
  reset(hold_then_ok, 2);
  go(rt, client, e2, 3);
  BWT_AWAIT(&sync_, nlog == 1);
  assert_int_equal(bw_exit(rt, svc, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, svc);
  BWT_POLL(stats(named).retries == 2);
  spawn(rt, &target_b, "svc");
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(3), 0);
  assert_int_equal(get_nlog(), 2);
  assert_int_equal(stats(named).successes_after_retry, 2);
  teardown(rt);
}

static void test_table_full(void **state) {
  (void)state;
  const int acts[] = {A_HOLD};
  reset(acts, 1);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.max_attempts = 1;
  o.attempt_timeout_ms = 100;
  o.capacity = 2;
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);
  go(rt, client, exec, 1);
  go(rt, client, exec, 2);
  BWT_AWAIT(&sync_, nlog == 2);
  go(rt, client, exec, 3);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(3), BW_ELIMIT);
  bw_retry_stats_t m = stats(pol);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.rejected, 1);
  assert_int_equal(m.in_flight, 2);
  /* once they end, there is room again */
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_AWAIT(&sync_, nreplies == 3);
  assert_int_equal(get_status(1), BW_ETIMEDOUT);
  assert_int_equal(get_status(2), BW_ETIMEDOUT);
  const int ok[] = {A_OK};
  reset(ok, 1);
  go(rt, client, exec, 4);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(4), 0);
  m = stats(pol);
  assert_int_equal(m.calls, 3);
  assert_int_equal(m.in_flight, 0);
  teardown(rt);
}

static void test_many_in_flight(void **state) {
  (void)state;
  /* every id fails once, then succeeds: 200 requests, all retried once */
  const int acts[] = {USER_ERR, A_OK};
  reset(acts, 2);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(target);
  o.retryable = retry_user_err;
  o.capacity = 256;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_EQUAL_JITTER, .initial_ms = 20,
                                   .max_ms = 20, .multiplier = 2.0};
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);
  for (uint32_t id = 0; id < 200; id++)
    go(rt, client, exec, id);
  BWT_AWAIT(&sync_, nlog == 200);
  flush(rt, exec, target);
  assert_int_equal(stats(pol).in_flight, 200);
  assert_int_equal(bw_clock_advance(rt, 9), 0); /* equal jitter: no delay under 10 */
  flush(rt, exec, target);
  assert_int_equal(get_nlog(), 200);
  assert_int_equal(bw_clock_advance(rt, 11), 0); /* all within 20 */
  BWT_AWAIT(&sync_, nreplies == 200);
  for (uint32_t id = 0; id < 200; id++) {
    assert_int_equal(get_status(id), 0);
    assert_int_equal(reply_val[id], id + 1000);
  }
  bw_retry_stats_t m = stats(pol);
  assert_int_equal(m.calls, 200);
  assert_int_equal(m.attempts, 400);
  assert_int_equal(m.successes_after_retry, 200);
  assert_int_equal(m.in_flight, 0);
  teardown(rt);
}

/*
 * One retry decision (patterns/retry_internal.h) for the retry executor, a
 * policy's executor and its in-caller form: after a retryable failure the
 * three end a request the same way, with the same status and attempts:
 * no attempt left (the last error), the budget refusing (BW_EBUDGET: the
 * retry executor answered the last error before), the next backoff past
 * the deadline (BW_ETIMEDOUT).
 */
typedef struct agree_case {
  const char *what;
  uint32_t max_attempts;
  bool budget;
  uint64_t deadline_ms;
  int expect;
} agree_case_t;

static int agree_retry(bw_runtime_t *rt, bw_pid_t target, const agree_case_t *c,
                       bw_retry_budget_t *budget, uint32_t id) {
  bw_retry_opts_t o = base_opts(target);
  o.retryable = retry_all;
  o.max_attempts = c->max_attempts;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 100, .max_ms = 100};
  o.deadline_ms = c->deadline_ms;
  o.budget = c->budget ? budget : NULL;
  bw_pid_t exec = spawn_exec(retry_new(rt, &o));
  bw_reply_t r;
  return bw_call(rt, exec, T_WORK, &id, sizeof id, 0, &r);
}

static bw_policy_t *agree_policy(bw_runtime_t *rt, bw_pid_t target, const agree_case_t *c,
                                 bw_retry_budget_t *budget) {
  bw_policy_opts_t o;
  bw_policy_opts_init(&o);
  o.target = target;
  o.seed = 1234;
  o.retryable = retry_all;
  o.max_attempts = c->max_attempts;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 100, .max_ms = 100};
  o.deadline_ms = c->deadline_ms;
  o.shared_budget = c->budget ? budget : NULL;
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, &o, &p), 0);
  return p;
}

static void test_decision_agrees_with_policy(void **state) {
  (void)state;
  static const agree_case_t cases[] = {
      {"no attempt left", 1, false, 0, USER_ERR},
      {"budget refuses", 3, true, 0, BW_EBUDGET},
      {"backoff past the deadline", 3, false, 50, BW_ETIMEDOUT},
  };
  const int acts[] = {USER_ERR};
  reset(acts, 1);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  static bw_retry_budget_t budget;
  bw_retry_budget_opts_t bo;
  bw_retry_budget_opts_init(&bo);
  bo.ratio = 0.0;
  bo.min_retries_per_sec = 0; /* no retry ever */
  assert_int_equal(bw_retry_budget_init(&budget, rt, &bo), 0);
  uint32_t id = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const agree_case_t *c = &cases[i];
    print_message("case: %s\n", c->what);
    /* the retry executor */
    assert_int_equal(agree_retry(rt, target, c, &budget, id), c->expect);
    assert_int_equal(get_seen(id++), 1);
    /* the policy's executor */
    bw_policy_t *p = agree_policy(rt, target, c, &budget);
    bw_pid_t exec;
    assert_int_equal(bw_policy_start(p, &exec), 0);
    bw_reply_t r;
    assert_int_equal(bw_call(rt, exec, T_WORK, &id, sizeof id, 0, &r), c->expect);
    assert_int_equal(get_seen(id++), 1);
    /* the in-caller form: the attempt's failure reported by the caller */
    bw_policy_ticket_t t;
    bw_policy_ticket_init(&t);
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(bw_policy_exit(p, &t, USER_ERR, NULL), c->expect);
    assert_int_equal(t.attempts, 1);
    assert_int_equal(bw_policy_destroy(p), 0);
  }
  teardown(rt);
}

static void test_budget_cuts_retry_storm(void **state) {
  (void)state;
  const int acts[] = {USER_ERR};
  reset(acts, 1);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  static bw_retry_budget_t budget;
  bw_retry_budget_opts_t bo;
  bw_retry_budget_opts_init(&bo);
  bo.ratio = 0.1;
  bo.min_retries_per_sec = 1; /* floor: 10 per 10 s window */
  bo.window_ms = 10000;
  assert_int_equal(bw_retry_budget_init(&budget, rt, &bo), 0);
  bw_retry_opts_t o = base_opts(target);
  o.retryable = retry_all;
  o.max_attempts = 5;
  o.capacity = 256;
  o.budget = &budget;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_FIXED, .initial_ms = 10, .max_ms = 10};
  /* two executors share the budget */
  bw_retry_t *p1 = retry_new(rt, &o);
  bw_retry_t *p2 = retry_new(rt, &o);
  bw_pid_t e1 = spawn_exec(p1);
  bw_pid_t e2 = spawn_exec(p2);
  const uint32_t calls = 200;
  for (uint32_t id = 0; id < calls; id++)
    go(rt, client, id % 2 ? e2 : e1, id);
  BWT_AWAIT(&sync_, nlog >= (int)calls); /* every first attempt made */
  for (int step = 0; step < 10; step++) {
    flush(rt, e1, target);
    flush(rt, e2, target);
    assert_int_equal(bw_clock_advance(rt, 10), 0);
  }
  BWT_AWAIT(&sync_, nreplies == (int)calls);
  bw_retry_stats_t m1 = stats(p1), m2 = stats(p2);
  uint64_t retries = m1.retries + m2.retries;
  assert_int_equal(m1.calls + m2.calls, calls);
  assert_int_equal(m1.failures + m2.failures, calls);
  assert_true(retries <= calls / 10 + 10); /* ratio * calls + floor */
  assert_true(retries >= 10);              /* the floor at least was used */
  assert_true(m1.budget_exhausted + m2.budget_exhausted >= calls - retries);
  assert_int_equal(m1.attempts + m2.attempts, calls + retries);
  bw_retry_budget_stats_t bs;
  assert_int_equal(bw_retry_budget_stats(&budget, &bs), 0);
  assert_int_equal(bs.deposits, calls);
  assert_int_equal(bs.withdrawals, retries);
  /* a request the budget cut ends with BW_EBUDGET (the one retry decision,
   * as a policy's); one that used its attempts, with the last error */
  uint64_t cut = 0;
  for (uint32_t id = 0; id < calls; id++) {
    int st = get_status(id);
    assert_true(st == BW_EBUDGET || st == USER_ERR);
    cut += st == BW_EBUDGET;
  }
  assert_int_equal(cut, m1.budget_exhausted + m2.budget_exhausted);
  teardown(rt);
}

static void test_target_named_per_request(void **state) {
  (void)state;
  const int acts[] = {USER_ERR, A_OK};
  reset(acts, 2);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t target = spawn(rt, &target_b, NULL);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(BW_PID_NONE); /* no configured target */
  o.retryable = retry_user_err;
  o.backoff = (bw_retry_backoff_t){.kind = BW_RETRY_BACKOFF_DECORRELATED, .initial_ms = 10,
                                   .max_ms = 100, .multiplier = 3.0};
  bw_retry_t *pol = retry_new(rt, &o);
  bw_pid_t exec = spawn_exec(pol);
  go_t g = {.to = exec, .id = 9, .packed = 1, .target = target};
  assert_int_equal(bw_send(rt, client, T_GO, &g, sizeof g), 0);
  BWT_AWAIT(&sync_, nlog == 1);
  flush(rt, exec, target);
  assert_int_equal(bw_clock_advance(rt, 30), 0); /* decorrelated: within [10, 30] */
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(9), 0);
  uint64_t t2 = get_log_t(1);
  assert_true(t2 >= 10 && t2 <= 30);
  /* a plain request with no target configured, and bad call headers */
  bw_reply_t r;
  uint32_t v = 1;
  assert_int_equal(bw_call(rt, exec, T_WORK, &v, sizeof v, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call(rt, exec, BW_MSG_RETRY_CALL, &v, sizeof v, 0, &r), BW_EINVAL);
  bw_retry_call_t h = {.target = BW_PID_NONE, .type = T_WORK, .reserved = 0};
  assert_int_equal(bw_call(rt, exec, BW_MSG_RETRY_CALL, &h, sizeof h, 0, &r), BW_EINVAL);
  h.target = target;
  h.type = BW_MSG_SYSTEM_BASE;
  assert_int_equal(bw_call(rt, exec, BW_MSG_RETRY_CALL, &h, sizeof h, 0, &r), BW_EINVAL);
  assert_int_equal(stats(pol).rejected, 4 + 2); /* + the flush's two */
  /* pack's own checks */
  uint8_t buf[BW_MSG_INLINE_MAX];
  size_t len;
  uint8_t big[BW_MSG_INLINE_MAX];
  memset(big, 0, sizeof big);
  assert_int_equal(bw_retry_call_pack(NULL, target, T_WORK, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, BW_PID_NONE, T_WORK, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, target, BW_MSG_SYSTEM_BASE, NULL, 0, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, target, T_WORK, NULL, 3, &len), BW_EINVAL);
  assert_int_equal(bw_retry_call_pack(buf, target, T_WORK, big, BW_RETRY_CALL_PAYLOAD_MAX + 1, &len),
                   BW_ETOOBIG);
  assert_int_equal(bw_retry_call_pack(buf, target, T_WORK, big, BW_RETRY_CALL_PAYLOAD_MAX, &len), 0);
  assert_int_equal(len, BW_MSG_INLINE_MAX);
  teardown(rt);
}

static void test_bad_options(void **state) {
  (void)state;
  bw_retry_opts_t good;
  bw_retry_opts_init(&good);
  good.target = 1;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_retry_t *r = (bw_retry_t *)(uintptr_t)0x1;
  assert_int_equal(bw_retry_new(NULL, &good, &r), BW_EINVAL);
  assert_int_equal(bw_retry_new(rt, &good, NULL), BW_EINVAL);
  assert_int_equal(bw_retry_opts_validate(NULL), BW_EINVAL);
  bw_retry_opts_init(NULL); /* no crash */
  bw_retry_opts_t o;
#define BAD(stmt)                                                                                  \
  do {                                                                                             \
    o = good;                                                                                      \
    stmt;                                                                                          \
    assert_int_equal(bw_retry_opts_validate(&o), BW_EINVAL);                                       \
    assert_int_equal(bw_retry_new(rt, &o, &r), BW_EINVAL);                                         \
  } while (0)
  BAD(o.max_attempts = 0);
  BAD(o.max_attempts = BW_RETRY_ATTEMPTS_MAX + 1);
  BAD(o.backoff.multiplier = 0.5);
  BAD(o.backoff.max_ms = o.backoff.initial_ms - 1);
  BAD(o.backoff.kind = 99);
  BAD(o.backoff.initial_ms = 0);
  BAD(o.attempt_timeout_ms = 0);
  BAD(o.attempt_timeout_ms = BW_RETRY_DELAY_MAX_MS + 1);
  BAD(o.deadline_ms = BW_RETRY_DELAY_MAX_MS + 1);
  BAD(o.capacity = 0);
  BAD(o.capacity = BW_RETRY_CAPACITY_MAX + 1);
  BAD(o.target_name = "svc");       /* both a pid and a name */
  BAD((o.target = 0, o.target_name = "")); /* an empty name */
#undef BAD
  assert_true(r == (bw_retry_t *)(uintptr_t)0x1); /* *out untouched */
  o = good;
  o.max_attempts = 1; /* 1 = no retry: valid */
  r = retry_new(rt, &o);

  bw_pid_t p;
  bw_retry_stats_t m;
  bw_child_spec_t cs;
  assert_int_equal(bw_retry_start(NULL, &p), BW_EINVAL);
  assert_int_equal(bw_retry_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_retry_destroy(NULL), 0);
  assert_int_equal(bw_retry_pid(NULL), BW_PID_NONE);
  assert_null(bw_retry_name(NULL));
  assert_int_equal(bw_retry_child_spec(NULL, "x", &cs), BW_EINVAL);
  assert_int_equal(bw_retry_child_spec(r, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_retry_child_spec(r, "x", NULL), BW_EINVAL);
  assert_int_equal(bw_spawn(rt, &bw_retry_behaviour, NULL, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_retry_stats(NULL, &m), BW_EINVAL);
  assert_int_equal(bw_retry_stats(r, NULL), BW_EINVAL);
  /* start, a second start, stop, start again */
  assert_int_equal(bw_retry_pid(r), BW_PID_NONE);
  assert_int_equal(bw_retry_stop(r), 0); /* nothing runs */
  bw_pid_t first = BW_PID_NONE;
  assert_int_equal(bw_retry_start(r, &first), 0);
  assert_int_equal(bw_retry_pid(r), first);
  assert_int_equal(bw_retry_start(r, &p), BW_EALREADY);
  assert_int_equal(bw_retry_stop(r), 0);
  assert_false(bw_is_alive(rt, first));
  assert_int_equal(bw_retry_pid(r), BW_PID_NONE);
  assert_int_equal(bw_retry_start(r, NULL), 0);
  assert_int_not_equal(bw_retry_pid(r), first);
  /* after the runtime stops */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_retry_pid(r), BW_PID_NONE);
  assert_int_equal(bw_retry_start(r, &p), BW_ESHUTDOWN);
  assert_int_equal(bw_retry_stats(r, &m), 0);
  teardown(rt);
}

/* --- under a supervisor ------------------------------------------------------ */

static bw_child_spec_t sup_kids[2]; /* the retry's is filled from its handle */
static const bw_sup_spec_t sup_spec = {
    .name = "root", .strategy = BW_ONE_FOR_ONE, .intensity = 5, .period_ms = 5000,
    .children = sup_kids, .nchildren = 2,
};

static void test_supervised_restart(void **state) {
  (void)state;
  const int acts[] = {A_HOLD, A_OK};
  reset(acts, 2);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t client = spawn(rt, &client_b, NULL);
  bw_retry_opts_t o = base_opts(BW_PID_NONE);
  o.target_name = "svc";
  o.attempt_timeout_ms = 100;
  bw_retry_t *sup_pol = retry_new(rt, &o);
  sup_kids[0] = (bw_child_spec_t){.id = "svc", .behaviour = &target_b, .name = "svc"};
  assert_int_equal(bw_retry_child_spec(sup_pol, "retry", &sup_kids[1]), 0);
  sup_kids[1].name = "svc-retry";
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &sup_spec, &sup, &err), 0);
  bw_pid_t e1;
  assert_int_equal(bw_sup_child_pid(rt, sup, "retry", &e1), 0);

  /* a call in flight when the executor crashes: its requester gets ENOPROC */
  go(rt, client, e1, 1);
  BWT_AWAIT(&sync_, nlog == 1);
  assert_int_equal(bw_exit(rt, e1, BW_REASON_CRASH, BW_ECRASH, "boom"), 0);
  BWT_AWAIT(&sync_, nreplies == 1);
  assert_int_equal(get_status(1), BW_ENOPROC);
  bw_pid_t e2 = BW_PID_NONE;
  BWT_POLL(bw_whereis(rt, "svc-retry", &e2) == 0 && e2 != e1);
  BWT_POLL(bw_retry_pid(sup_pol) == e2); /* the handle names the new executor */
  /* supervised: start, stop and destroy refuse while it runs */
  assert_int_equal(bw_retry_start(sup_pol, NULL), BW_EALREADY);
  assert_int_equal(bw_retry_stop(sup_pol), BW_ERUNNING);
  assert_int_equal(bw_retry_destroy(sup_pol), BW_ERUNNING);
  assert_int_equal(stats(sup_pol).abandoned, 1);

  /* the new executor works, and the counters carried over */
  const int ok[] = {A_OK};
  reset(ok, 1);
  bw_reply_t r;
  uint32_t id = 3;
  assert_int_equal(bw_call(rt, e2, T_WORK, &id, sizeof id, 0, &r), 0);
  uint32_t v;
  memcpy(&v, r.data, sizeof v);
  assert_int_equal(v, 1003);
  bw_retry_stats_t m = stats(sup_pol);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.successes, 1);
  assert_int_equal(m.abandoned, 1);
  assert_int_equal(m.in_flight, 0);
  bw_child_info_t info[2];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 2, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(info[1].restarts, 1);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  teardown(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_success_on_third_attempt),
      cmocka_unit_test(test_attempt_timeout),
      cmocka_unit_test(test_overall_deadline),
      cmocka_unit_test(test_predicate),
      cmocka_unit_test(test_dead_target),
      cmocka_unit_test(test_table_full),
      cmocka_unit_test(test_many_in_flight),
      cmocka_unit_test(test_budget_cuts_retry_storm),
      cmocka_unit_test(test_decision_agrees_with_policy),
      cmocka_unit_test(test_target_named_per_request),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_supervised_restart),
  };
  return BWT_RUN_SUITE(tests);
}
