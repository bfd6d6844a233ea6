/*
 * Tests of patterns/bulkhead.c: the pool actor.
 *
 * Jobs that block (until the main thread opens their gate) run on
 * dedicated-thread workers, so "N busy" is a fact the test can wait for
 * (bwt_gate_await_waiting), not a timing guess. A client actor makes the
 * requests that must stay outstanding while the main thread looks on
 * (bw_request does not block) and records each answer; the main thread
 * waits for answers on a condition variable and asserts. Queue timeouts,
 * overflow retirement and the rate limit run on the manual clock.
 */
#include "support.h"

#include <stdatomic.h>

#include "bulwark/bulkhead.h"
#include "bulwark/ratelimit.h"

/* --- answers the client actor records ------------------------------------- */

#define MAXR 32

typedef struct result {
  bool done;
  int status;
  uint32_t type;
  uint32_t len;
  unsigned char data[BW_MSG_INLINE_MAX];
} result_t;

static bwt_sync_t rs = BWT_SYNC_INIT;
static result_t res[MAXR];

static void results_reset(void) {
  bwt_lock(&rs);
  memset(res, 0, sizeof res);
  bwt_unlock(&rs);
}

static void record(int idx, int status, const bw_msg_t *m) {
  bwt_lock(&rs);
  res[idx].done = true;
  res[idx].status = status;
  if (m != NULL) {
    res[idx].type = m->type;
    res[idx].len = m->len;
    if (m->len > 0 && m->len <= sizeof res[idx].data)
      memcpy(res[idx].data, m->data, m->len);
  }
  bwt_unlock_signal(&rs);
}

/* Waits for answer idx; returns its status. */
static int answer_of(int idx) {
  BWT_AWAIT(&rs, res[idx].done);
  bwt_lock(&rs);
  int st = res[idx].status;
  bwt_unlock(&rs);
  return st;
}

static bool answered(int idx) {
  bwt_lock(&rs);
  bool d = res[idx].done;
  bwt_unlock(&rs);
  return d;
}

/* --- the client actor ------------------------------------------------------ */

enum { OP_RUN = 1, OP_SUBMIT, OP_CHECKOUT };
enum { C_CMD = 0x100 };

typedef struct cmd {
  int op;
  int idx;
  bw_pid_t pool;
  bw_bulkhead_fn fn;
  void *arg;
  uint32_t type;
  uint32_t len;
  unsigned char data[64];
} cmd_t;

typedef struct client {
  uint64_t refs[MAXR];
} client_t;

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  client_t *c = state;
  if (m->flags & BW_MSGF_REPLY) {
    for (int i = 0; i < MAXR; i++)
      if (c->refs[i] == m->ref) {
        c->refs[i] = 0;
        record(i, m->status, m);
        break;
      }
    return BW_CONTINUE;
  }
  if (m->type != C_CMD || m->len != sizeof(cmd_t))
    return BW_CONTINUE;
  cmd_t cmd;
  memcpy(&cmd, m->data, sizeof cmd);
  int rc = BW_EINVAL;
  switch (cmd.op) {
  case OP_RUN:
    rc = bw_bulkhead_run_request(ctx, cmd.pool, cmd.fn, cmd.arg, 0, &c->refs[cmd.idx]);
    break;
  case OP_SUBMIT:
    rc = bw_request(ctx, cmd.pool, cmd.type, cmd.data, cmd.len, 0, &c->refs[cmd.idx]);
    break;
  case OP_CHECKOUT:
    rc = bw_bulkhead_checkout_request(ctx, cmd.pool, 0, &c->refs[cmd.idx]);
    break;
  }
  if (rc != 0)
    record(cmd.idx, rc, NULL);
  return BW_CONTINUE;
}

static const bw_behaviour_t client_beh = {
    .name = "client", .state_size = sizeof(client_t), .handle = client_handle};

static bw_pid_t client_new(bw_runtime_t *rt) {
  bw_pid_t c;
  assert_int_equal(bw_spawn(rt, &client_beh, NULL, NULL, &c), 0);
  return c;
}

/* The client's requests go to the pool's pid (the actor forms take a pid). */
static void client_run(bw_runtime_t *rt, bw_pid_t c, const bw_bulkhead_t *pool, int idx,
                       bw_bulkhead_fn fn, void *arg) {
  cmd_t cmd = {.op = OP_RUN, .idx = idx, .pool = bw_bulkhead_pid(pool), .fn = fn, .arg = arg};
  assert_int_equal(bw_send(rt, c, C_CMD, &cmd, sizeof cmd), 0);
}

static void client_checkout(bw_runtime_t *rt, bw_pid_t c, const bw_bulkhead_t *pool, int idx) {
  cmd_t cmd = {.op = OP_CHECKOUT, .idx = idx, .pool = bw_bulkhead_pid(pool)};
  assert_int_equal(bw_send(rt, c, C_CMD, &cmd, sizeof cmd), 0);
}

/* --- jobs -------------------------------------------------------------------- */

#define NGATES 16
static bwt_gate_t gates[NGATES];

static void gates_init(void) {
  for (int i = 0; i < NGATES; i++)
    bwt_gate_init(&gates[i]);
}

static void gates_open_all(void) {
  for (int i = 0; i < NGATES; i++)
    bwt_gate_open(&gates[i]);
}

static int gate_entered(bwt_gate_t *g) {
  pthread_mutex_lock(&g->mu);
  int n = g->entered;
  pthread_mutex_unlock(&g->mu);
  return n;
}

static void gates_destroy(void) {
  for (int i = 0; i < NGATES; i++)
    bwt_gate_destroy(&gates[i]);
}

/* Blocks its (dedicated) worker until its gate opens. */
static int gate_job(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)ctx;
  (void)resource;
  return bwt_gate_pass(arg) ? 0 : BW_ETIMEDOUT;
}

/* Returns its argument as the status. */
static int status_job(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)ctx;
  (void)resource;
  return (int)(intptr_t)arg;
}

static int crash_job(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)resource;
  (void)arg;
  bw_fail(ctx, BW_ECRASH, "job crashed");
}

/* --- a resource: a "connection" worker behaviour ------------------------------ */

enum { CONN_ECHO = 0x200, CONN_CRASH, CONN_GET };

static atomic_int conn_inits, conn_terms;

typedef struct conn {
  int serial; /* which init this is */
  int uses;   /* jobs run on this incarnation */
} conn_t;

static int conn_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)arg;
  ((conn_t *)state)->serial = atomic_fetch_add(&conn_inits, 1) + 1;
  return 0;
}

static int conn_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  conn_t *c = state;
  switch (m->type) {
  case CONN_ECHO:
    c->uses++;
    if (m->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, m, 0, CONN_ECHO, m->data, m->len);
    return BW_CONTINUE;
  case CONN_GET: {
    bw_pid_t self = bw_self(ctx);
    bw_reply(ctx, m, 0, CONN_GET, &self, sizeof self);
    return BW_CONTINUE;
  }
  case CONN_CRASH:
    bw_fail(ctx, BW_ECRASH, "connection lost");
  default:
    return BW_CONTINUE;
  }
}

static void conn_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *r) {
  (void)ctx;
  (void)state;
  (void)r;
  atomic_fetch_add(&conn_terms, 1);
}

static const bw_behaviour_t conn_beh = {.name = "conn",
                                        .state_size = sizeof(conn_t),
                                        .init = conn_init,
                                        .handle = conn_handle,
                                        .terminate = conn_terminate};

/* Reads the resource's state inside a with-resource job. */
static int serial_job(bw_ctx_t *ctx, void *resource, void *arg) {
  (void)ctx;
  *(int *)arg = ((conn_t *)resource)->serial;
  return 0;
}

/* --- events -------------------------------------------------------------- */

static bwt_sync_t evs = BWT_SYNC_INIT;
static int ev_count[BW_EV__COUNT];
static int64_t ev_last_a[BW_EV__COUNT];
static int32_t ev_last_code[BW_EV__COUNT];
static char ev_last_name[BW_EV__COUNT][32];

static int evrec_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  (void)ctx;
  (void)state;
  if (m->type == BW_MSG_EVENT && m->len >= sizeof(bw_event_t)) {
    const bw_event_t *e = m->data;
    if (e->type < BW_EV__COUNT) {
      bwt_lock(&evs);
      ev_count[e->type]++;
      ev_last_a[e->type] = e->a;
      ev_last_code[e->type] = e->reason_code;
      memcpy(ev_last_name[e->type], e->source_name, 32);
      bwt_unlock_signal(&evs);
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t evrec_beh = {.name = "evrec", .handle = evrec_handle};

static void events_listen(bw_runtime_t *rt) {
  bwt_lock(&evs);
  memset(ev_count, 0, sizeof ev_count);
  bwt_unlock(&evs);
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &evrec_beh, NULL, NULL, &p), 0);
  assert_int_equal(bw_event_subscribe(rt, p,
                                      BW_EV_MASK(BW_EV_BULKHEAD_REJECTED) |
                                          BW_EV_MASK(BW_EV_BULKHEAD_TIMEOUT) |
                                          BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                          BW_EV_MASK(BW_EV_CHILD_EXITED)),
                   0);
}

/* --- helpers ----------------------------------------------------------------- */

static bw_runtime_t *setup(void) {
  results_reset();
  gates_init();
  atomic_store(&conn_inits, 0);
  atomic_store(&conn_terms, 0);
  return bwt_runtime(2, true);
}

/* The pools a test made (pool_start), destroyed by teardown once the
 * runtime has stopped them. */
#define MAXPOOLS 8
static bw_bulkhead_t *pools[MAXPOOLS];
static int npools;

static void teardown(bw_runtime_t *rt) {
  gates_open_all();
  (void)bw_runtime_stop(rt); /* BW_ESHUTDOWN if the test stopped it already */
  for (int i = 0; i < npools; i++)
    assert_int_equal(bw_bulkhead_destroy(pools[i]), 0);
  npools = 0;
  bw_runtime_destroy(rt);
  gates_destroy();
}

static bw_bulkhead_opts_t opts_of(uint32_t workers, uint32_t overflow, uint32_t qcap,
                                  uint64_t qtimeout) {
  bw_bulkhead_opts_t o;
  bw_bulkhead_opts_init(&o);
  o.name = "test-pool";
  o.workers = workers;
  o.max_overflow = overflow;
  o.queue_capacity = qcap;
  o.queue_timeout_ms = qtimeout;
  o.dedicated_threads = true;
  return o;
}

/* A pool handle kept for teardown (its pool not started). */
static bw_bulkhead_t *pool_new(bw_runtime_t *rt, const bw_bulkhead_opts_t *o) {
  assert_true(npools < MAXPOOLS);
  bw_bulkhead_t *b = NULL;
  assert_int_equal(bw_bulkhead_new(rt, o, &b), 0);
  pools[npools++] = b;
  return b;
}

static bw_bulkhead_t *pool_start(bw_runtime_t *rt, const bw_bulkhead_opts_t *o) {
  bw_bulkhead_t *b = pool_new(rt, o);
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_bulkhead_start(b, &p), 0);
  assert_int_equal(p, bw_bulkhead_pid(b));
  return b;
}

static bw_bulkhead_stats_t stats(const bw_bulkhead_t *pool) {
  bw_bulkhead_stats_t m;
  memset(&m, 0xA5, sizeof m);
  assert_int_equal(bw_bulkhead_stats(pool, &m), 0);
  return m;
}

/* Polls the pool's stats until cond (over m) holds. */
#define AWAIT_STATS(pool, m, cond)                                             \
  do {                                                                         \
    struct timespec dl_ = bwt_deadline();                                      \
    unsigned sp_ = 0;                                                          \
    for (;;) {                                                                 \
      (m) = stats(pool);                                                       \
      if (cond)                                                                \
        break;                                                                 \
      if (bwt_past(&dl_))                                                      \
        fail_msg("gave up waiting for: %s", #cond);                            \
      bwt_relax(&sp_);                                                         \
    }                                                                          \
  } while (0)

static void assert_balanced(const bw_bulkhead_stats_t *m) {
  assert_int_equal(m->submitted, m->started + m->rejected + m->timed_out + m->queued);
  assert_int_equal(m->started, m->completed + m->crashed + m->leases + m->busy);
}

/* --- tests ------------------------------------------------------------------- */

/* N busy: the next waits in the queue, the one after is refused; as
 * workers free up the queue drains in order. */
static void test_concurrency_limit(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  events_listen(rt);
  bw_bulkhead_opts_t o = opts_of(2, 0, 1, 1000);
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  bw_bulkhead_stats_t m = stats(pool);
  assert_string_equal(m.name, "test-pool");
  assert_int_equal(m.workers, 2);
  assert_int_equal(m.available, 2);
  assert_int_equal(m.idle, 2);

  client_run(rt, c, pool, 0, gate_job, &gates[0]);
  client_run(rt, c, pool, 1, gate_job, &gates[1]);
  assert_true(bwt_gate_await_waiting(&gates[0], 1));
  assert_true(bwt_gate_await_waiting(&gates[1], 1));
  client_run(rt, c, pool, 2, gate_job, &gates[2]);
  AWAIT_STATS(pool, m, m.queued == 1);
  assert_int_equal(m.busy, 2);
  assert_int_equal(m.available, 0);
  client_run(rt, c, pool, 3, gate_job, &gates[3]);
  assert_int_equal(answer_of(3), BW_EBULKHEAD_FULL);
  assert_false(answered(0) || answered(1) || answered(2));
  assert_int_equal(gate_entered(&gates[2]), 0); /* job 2 has not started */

  bwt_gate_open(&gates[0]);
  assert_int_equal(answer_of(0), 0);
  assert_true(bwt_gate_await_waiting(&gates[2], 1)); /* the queued job runs */
  bwt_gate_open(&gates[1]);
  bwt_gate_open(&gates[2]);
  assert_int_equal(answer_of(1), 0);
  assert_int_equal(answer_of(2), 0);
  assert_int_equal(res[0].type, BW_BULKHEAD_RESULT);

  m = stats(pool); /* function jobs: counted before their answer */
  assert_int_equal(m.submitted, 4);
  assert_int_equal(m.started, 3);
  assert_int_equal(m.completed, 3);
  assert_int_equal(m.rejected, 1);
  assert_int_equal(m.rate_limited, 0);
  assert_int_equal(m.timed_out, 0);
  assert_int_equal(m.busy, 0);
  assert_int_equal(m.queued, 0);
  assert_int_equal(m.idle, 2);
  assert_balanced(&m);
  BWT_AWAIT(&evs, ev_count[BW_EV_BULKHEAD_REJECTED] == 1);
  bwt_lock(&evs);
  assert_int_equal(ev_last_a[BW_EV_BULKHEAD_REJECTED], BW_EBULKHEAD_FULL);
  assert_string_equal(ev_last_name[BW_EV_BULKHEAD_REJECTED], "test-pool");
  bwt_unlock(&evs);
  teardown(rt);
}

/* The queue timeout runs on the manual clock: each waiter gets
 * BW_ETIMEDOUT exactly when its own wait is up. */
static void test_queue_timeout(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  events_listen(rt);
  bw_bulkhead_opts_t o = opts_of(1, 0, 2, 100);
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  bw_bulkhead_stats_t m;

  client_run(rt, c, pool, 0, gate_job, &gates[0]);
  assert_true(bwt_gate_await_waiting(&gates[0], 1));
  client_run(rt, c, pool, 1, gate_job, &gates[1]); /* waits from t = 0 */
  AWAIT_STATS(pool, m, m.queued == 1);
  assert_int_equal(bw_clock_advance(rt, 50), 0);
  client_run(rt, c, pool, 2, gate_job, &gates[2]); /* waits from t = 50 */
  AWAIT_STATS(pool, m, m.queued == 2);

  assert_int_equal(bw_clock_advance(rt, 49), 0);
  m = stats(pool);
  assert_int_equal(m.timed_out, 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0); /* t = 100 */
  assert_int_equal(answer_of(1), BW_ETIMEDOUT);
  m = stats(pool);
  assert_int_equal(m.timed_out, 1);
  assert_int_equal(m.queued, 1);
  assert_false(answered(2));
  assert_int_equal(bw_clock_advance(rt, 50), 0); /* t = 150 */
  assert_int_equal(answer_of(2), BW_ETIMEDOUT);
  assert_int_equal(gate_entered(&gates[1]) + gate_entered(&gates[2]), 0); /* never ran */

  bwt_gate_open(&gates[0]);
  assert_int_equal(answer_of(0), 0);
  m = stats(pool);
  assert_int_equal(m.submitted, 3);
  assert_int_equal(m.completed, 1);
  assert_int_equal(m.timed_out, 2);
  assert_int_equal(m.completed + m.rejected + m.timed_out, m.submitted);
  assert_balanced(&m);
  BWT_AWAIT(&evs, ev_count[BW_EV_BULKHEAD_TIMEOUT] == 2);
  bwt_lock(&evs);
  assert_int_equal(ev_last_a[BW_EV_BULKHEAD_TIMEOUT], 100); /* waited ms */
  bwt_unlock(&evs);
  teardown(rt);
}

/* Overflow workers start when all are busy, and retire when idle: at once
 * (overflow_idle_ms 0) or after overflow_idle_ms on the clock. */
static void test_overflow_started_and_retired(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(1, 2, 0, 0);
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  bw_bulkhead_stats_t m;

  client_run(rt, c, pool, 0, gate_job, &gates[0]);
  assert_true(bwt_gate_await_waiting(&gates[0], 1));
  m = stats(pool);
  assert_int_equal(m.overflow, 0);
  client_run(rt, c, pool, 1, gate_job, &gates[1]);
  client_run(rt, c, pool, 2, gate_job, &gates[2]);
  assert_true(bwt_gate_await_waiting(&gates[1], 1));
  assert_true(bwt_gate_await_waiting(&gates[2], 1));
  m = stats(pool);
  assert_int_equal(m.overflow, 2);
  assert_int_equal(m.overflow_started, 2);
  assert_int_equal(m.busy, 3);
  client_run(rt, c, pool, 3, gate_job, &gates[3]);
  assert_int_equal(answer_of(3), BW_EBULKHEAD_FULL); /* 1 + 2, no queue */

  bwt_gate_open(&gates[1]);
  assert_int_equal(answer_of(1), 0);
  AWAIT_STATS(pool, m, m.overflow == 1);
  assert_int_equal(m.overflow_retired, 1);
  bwt_gate_open(&gates[2]);
  assert_int_equal(answer_of(2), 0);
  AWAIT_STATS(pool, m, m.overflow == 0);
  assert_int_equal(m.overflow_retired, 2);
  /* the base worker is not retired */
  bwt_gate_open(&gates[0]);
  assert_int_equal(answer_of(0), 0);
  m = stats(pool);
  assert_int_equal(m.idle, 1);
  assert_int_equal(m.completed, 3);
  assert_balanced(&m);

  /* a second pool keeps an idle overflow worker 100 ms */
  o = opts_of(1, 1, 0, 0);
  o.overflow_idle_ms = 100;
  bw_bulkhead_t *p2 = pool_start(rt, &o);
  client_run(rt, c, p2, 4, gate_job, &gates[4]);
  assert_true(bwt_gate_await_waiting(&gates[4], 1));
  client_run(rt, c, p2, 5, gate_job, &gates[5]);
  assert_true(bwt_gate_await_waiting(&gates[5], 1));
  bwt_gate_open(&gates[5]);
  assert_int_equal(answer_of(5), 0);
  AWAIT_STATS(p2, m, m.idle == 1);
  assert_int_equal(m.overflow, 1);
  /* reused while idle: the retirement is called off */
  assert_int_equal(bw_clock_advance(rt, 60), 0);
  assert_int_equal(bw_bulkhead_run(p2, status_job, NULL, 0), 0);
  AWAIT_STATS(p2, m, m.idle == 1);
  assert_int_equal(bw_clock_advance(rt, 60), 0); /* 120 ms since it first went idle */
  m = stats(p2);
  assert_int_equal(m.overflow, 1);
  assert_int_equal(m.overflow_retired, 0);
  assert_int_equal(bw_clock_advance(rt, 40), 0); /* 100 ms since its last job */
  AWAIT_STATS(p2, m, m.overflow == 0);
  assert_int_equal(m.overflow_retired, 1);
  assert_int_equal(m.overflow_started, 1);
  bwt_gate_open(&gates[4]);
  assert_int_equal(answer_of(4), 0);
  teardown(rt);
}

/* Message jobs: the worker behaviour answers the requester; payloads and
 * types pass through; bad jobs are refused. */
static void test_message_jobs(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(2, 0, 0, 0);
  o.worker = &conn_beh;
  o.dedicated_threads = false;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  assert_int_equal(atomic_load(&conn_inits), 2);
  bw_reply_t r;
  const char hello[] = "hello";
  assert_int_equal(bw_bulkhead_submit(pool, CONN_ECHO, hello, sizeof hello, 0, &r), 0);
  assert_int_equal(r.type, CONN_ECHO);
  assert_int_equal(r.len, sizeof hello);
  assert_memory_equal(r.data, hello, sizeof hello);
  /* bw_call straight to the pool's pid is the same thing */
  bw_pid_t pid = bw_bulkhead_pid(pool);
  unsigned char big[BW_MSG_INLINE_MAX];
  memset(big, 7, sizeof big);
  assert_int_equal(bw_call(rt, pid, CONN_ECHO, big, BW_BULKHEAD_PAYLOAD_MAX, 0, &r), 0);
  assert_int_equal(r.len, BW_BULKHEAD_PAYLOAD_MAX);
  assert_memory_equal(r.data, big, BW_BULKHEAD_PAYLOAD_MAX);
  assert_int_equal(bw_call(rt, pid, CONN_ECHO, big, BW_BULKHEAD_PAYLOAD_MAX + 1, 0, &r),
                   BW_ETOOBIG);
  assert_int_equal(bw_bulkhead_submit(pool, CONN_ECHO, big, BW_BULKHEAD_PAYLOAD_MAX + 1, 0, &r),
                   BW_ETOOBIG);
  /* a crash in the handler: BW_ECRASH, and the worker is restarted */
  assert_int_equal(bw_bulkhead_submit(pool, CONN_CRASH, NULL, 0, 0, &r), BW_ECRASH);
  bw_bulkhead_stats_t m;
  AWAIT_STATS(pool, m, m.restarted == 1 && m.idle == 2);
  assert_int_equal(atomic_load(&conn_inits), 3);
  assert_int_equal(m.crashed, 1);
  /* the message jobs' DONE notes may trail their answers */
  AWAIT_STATS(pool, m, m.completed == 2);
  assert_int_equal(m.submitted, 3); /* refused payloads do not count */
  assert_balanced(&m);
  /* a status other than 0 passes through a function job */
  assert_int_equal(bw_bulkhead_run(pool, status_job, (void *)(intptr_t)BW_ENOTFOUND, 0),
                   BW_ENOTFOUND);
  /* a fire-and-forget job (bw_send) runs too */
  assert_int_equal(bw_send(rt, pid, CONN_ECHO, hello, sizeof hello), 0);
  AWAIT_STATS(pool, m, m.completed == 4);
  /* a pool with no worker behaviour refuses message jobs */
  bw_bulkhead_opts_t o2 = opts_of(1, 0, 0, 0);
  o2.dedicated_threads = false;
  bw_bulkhead_t *p2 = pool_start(rt, &o2);
  assert_int_equal(bw_bulkhead_submit(p2, CONN_ECHO, hello, sizeof hello, 0, &r), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run(p2, status_job, (void *)0, 0), 0);
  /* another pattern's type is not a job */
  assert_int_equal(bw_call(rt, bw_bulkhead_pid(p2), BW_MSG_BREAKER_BASE, NULL, 0, 0, &r),
                   BW_EINVAL);
  m = stats(p2);
  assert_int_equal(m.submitted, 1);
  teardown(rt);
}

/* (b) checkout and checkin: the worker is lent exclusively; the next
 * borrower waits in the queue and gets the same worker back. */
static void test_checkout_checkin(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(1, 0, 1, 1000);
  o.worker = &conn_beh;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  bw_bulkhead_lease_t lease;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &lease), 0);
  assert_true(bw_is_alive(rt, lease.worker));
  /* the borrower talks to the resource directly */
  bw_reply_t r;
  assert_int_equal(bw_call(rt, lease.worker, CONN_GET, NULL, 0, 0, &r), 0);
  bw_pid_t got;
  memcpy(&got, r.data, sizeof got);
  assert_true(got == lease.worker);
  /* a job has to wait: the only worker is lent */
  client_checkout(rt, c, pool, 0);
  bw_bulkhead_stats_t m;
  AWAIT_STATS(pool, m, m.queued == 1);
  assert_int_equal(m.lent, 1);
  assert_int_equal(m.available, 0);
  assert_false(answered(0));

  assert_int_equal(bw_bulkhead_checkin(pool, &lease), 0);
  assert_int_equal(answer_of(0), 0);
  bw_bulkhead_lease_t l2;
  memcpy(&l2, res[0].data, sizeof l2);
  assert_true(l2.worker == lease.worker);
  assert_int_not_equal(l2.epoch, lease.epoch);
  /* the old lease is stale: checking it in again does nothing */
  assert_int_equal(bw_bulkhead_checkin(pool, &lease), 0);
  m = stats(pool);
  assert_int_equal(m.lent, 1);
  assert_int_equal(m.leases, 2);
  assert_int_equal(m.returns, 1);
  assert_balanced(&m);
  assert_int_equal(bw_bulkhead_checkin(pool, &l2), 0);
  AWAIT_STATS(pool, m, m.lent == 0 && m.idle == 1);
  assert_int_equal(m.returns, 2);
  teardown(rt);
}

/* A borrower that dies returns the resource. */
static void test_borrower_death_returns(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(1, 0, 0, 0);
  o.worker = &conn_beh;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  client_checkout(rt, c, pool, 0); /* the client is the borrower */
  assert_int_equal(answer_of(0), 0);
  bw_bulkhead_lease_t lease;
  memcpy(&lease, res[0].data, sizeof lease);
  bw_bulkhead_lease_t other;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &other), BW_EBULKHEAD_FULL);

  assert_int_equal(bw_exit(rt, c, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, c);
  bw_bulkhead_stats_t m;
  AWAIT_STATS(pool, m, m.lent == 0);
  assert_int_equal(m.returns, 1);
  assert_int_equal(m.idle, 1);
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &other), 0);
  assert_true(other.worker == lease.worker); /* the same resource, not restarted */
  assert_int_equal(atomic_load(&conn_inits), 1);

  /* a borrower already dead: the lease comes back at once */
  assert_int_equal(bw_bulkhead_checkin(pool, &other), 0);
  assert_int_equal(bw_bulkhead_checkout(pool, c, 0, &other), 0);
  AWAIT_STATS(pool, m, m.lent == 0 && m.returns == 3);
  teardown(rt);
}

/* (c) with-resource: the job gets the worker's state; a job that crashes
 * still returns the worker (restarted: a fresh resource), and the
 * requester gets BW_ECRASH. A worker that dies while lent is replaced
 * too. */
static void test_with_resource_crash(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  events_listen(rt);
  bw_bulkhead_opts_t o = opts_of(1, 0, 1, 1000);
  o.worker = &conn_beh;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  int serial = 0;
  assert_int_equal(bw_bulkhead_run(pool, serial_job, &serial, 0), 0);
  assert_int_equal(serial, 1);
  bw_bulkhead_lease_t before;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &before), 0);
  assert_int_equal(bw_bulkhead_checkin(pool, &before), 0);

  assert_int_equal(bw_bulkhead_run(pool, crash_job, NULL, 0), BW_ECRASH);
  BWT_AWAIT_DEAD(rt, before.worker);
  assert_int_equal(bw_bulkhead_run(pool, serial_job, &serial, 0), 0);
  assert_int_equal(serial, 2); /* a new incarnation */
  bw_bulkhead_stats_t m = stats(pool);
  assert_int_equal(m.crashed, 1);
  assert_int_equal(m.restarted, 1);
  assert_int_equal(m.completed, 2);
  assert_int_equal(m.idle, 1);
  assert_balanced(&m);
  BWT_AWAIT(&evs, ev_count[BW_EV_CHILD_RESTARTED] == 1);
  assert_int_equal(atomic_load(&conn_terms), 1); /* the crashed one's terminate */

  /* lent, then crashed by its borrower: the lease ends, the worker is
   * replaced, and the stale lease is ignored */
  bw_bulkhead_lease_t l;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &l), 0);
  assert_int_equal(bw_send(rt, l.worker, CONN_CRASH, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, l.worker);
  AWAIT_STATS(pool, m, m.restarted == 2 && m.idle == 1);
  assert_int_equal(m.lent, 0);
  assert_int_equal(bw_bulkhead_checkin(pool, &l), 0);
  assert_int_equal(bw_bulkhead_run(pool, serial_job, &serial, 0), 0);
  assert_int_equal(serial, 3);
  teardown(rt);
}

/* The optional rate limit on the pool: bursts, then the rate, on the
 * manual clock. */
static void test_rate_limit(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  events_listen(rt);
  bw_bulkhead_opts_t o = opts_of(4, 0, 0, 0);
  o.dedicated_threads = false;
  o.rate_limit = true;
  o.rate = 10; /* one per 100 ms */
  o.rate_burst = 2;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), BW_ERATE_LIMITED);
  bw_bulkhead_lease_t l;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &l), BW_ERATE_LIMITED);
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), BW_ERATE_LIMITED);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), BW_ERATE_LIMITED);
  bw_bulkhead_stats_t m = stats(pool);
  assert_int_equal(m.submitted, 7);
  assert_int_equal(m.completed, 3);
  assert_int_equal(m.rejected, 4);
  assert_int_equal(m.rate_limited, 4);
  assert_int_equal(m.completed + m.rejected + m.timed_out, m.submitted);
  BWT_AWAIT(&evs, ev_count[BW_EV_BULKHEAD_REJECTED] == 4);
  bwt_lock(&evs);
  assert_int_equal(ev_last_a[BW_EV_BULKHEAD_REJECTED], BW_ERATE_LIMITED);
  bwt_unlock(&evs);
  teardown(rt);
}

/* A storm: every outcome at once, and they add up. */
static void test_stats_balance(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(2, 1, 3, 100);
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t c = client_new(rt);
  const int n = 12; /* 3 run, 3 wait, 6 are refused */
  for (int i = 0; i < n; i++)
    client_run(rt, c, pool, i, gate_job, &gates[i]);
  int refused = 0;
  for (int i = 6; i < n; i++)
    refused += answer_of(i) == BW_EBULKHEAD_FULL;
  assert_int_equal(refused, 6);
  bw_bulkhead_stats_t m;
  AWAIT_STATS(pool, m, m.queued == 3 && m.busy == 3);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  for (int i = 3; i < 6; i++)
    assert_int_equal(answer_of(i), BW_ETIMEDOUT);
  for (int i = 0; i < 3; i++)
    bwt_gate_open(&gates[i]);
  for (int i = 0; i < 3; i++)
    assert_int_equal(answer_of(i), 0);
  AWAIT_STATS(pool, m, m.busy == 0 && m.overflow == 0);
  assert_int_equal(m.submitted, (uint64_t)n);
  assert_int_equal(m.completed, 3);
  assert_int_equal(m.rejected, 6);
  assert_int_equal(m.timed_out, 3);
  assert_int_equal(m.completed + m.rejected + m.timed_out, m.submitted);
  assert_balanced(&m);
  teardown(rt);
}

/* The pool as a supervised child: crashed, it is restarted by its
 * supervisor with a fresh set of workers; past its own restart intensity
 * it exits (escalates), and is restarted again. The handle follows it. */
static const bw_bulkhead_opts_t sup_pool_opts = {
    .name = "supervised", .workers = 2, .worker = &conn_beh, .max_restarts = -1};
static bw_child_spec_t sup_kids[1]; /* bw_bulkhead_child_spec fills it */
static const bw_sup_spec_t sup_spec = {
    .name = "root", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .children = sup_kids,
    .nchildren = 1};

static void test_supervised_pool(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_t *pool = pool_new(rt, &sup_pool_opts);
  assert_int_equal(bw_bulkhead_child_spec(pool, "pool", &sup_kids[0]), 0);
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &sup_spec, &sup, &err), 0);
  bw_pid_t p1;
  assert_int_equal(bw_sup_child_pid(rt, sup, "pool", &p1), 0);
  assert_int_equal(bw_bulkhead_pid(pool), p1);
  /* supervised: start, stop and destroy refuse while it runs */
  assert_int_equal(bw_bulkhead_start(pool, NULL), BW_EALREADY);
  assert_int_equal(bw_bulkhead_stop(pool), BW_ERUNNING);
  assert_int_equal(bw_bulkhead_destroy(pool), BW_ERUNNING);
  int serial = 0;
  assert_int_equal(bw_bulkhead_run(pool, serial_job, &serial, 0), 0);
  assert_int_equal(atomic_load(&conn_inits), 2);
  bw_bulkhead_lease_t l1;
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, &l1), 0);
  events_listen(rt);

  /* crashed from outside: its workers go with it (links), the supervisor
   * restarts it. (Not an untrappable kill: after a kill no terminate runs,
   * so the pool could not free its tables; see BULKHEAD.md.) */
  assert_int_equal(bw_exit(rt, p1, BW_REASON_CRASH, BW_ECRASH, "test"), 0);
  BWT_AWAIT_DEAD(rt, p1);
  bw_pid_t p2 = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, "pool", &p2) == 0 && p2 != p1);
  BWT_POLL(bw_bulkhead_pid(pool) == p2);
  assert_int_equal(bw_bulkhead_run(pool, serial_job, &serial, 0), 0);
  assert_int_equal(atomic_load(&conn_inits), 4);
  BWT_AWAIT_DEAD(rt, l1.worker); /* the old workers went with it */
  bw_bulkhead_stats_t m = stats(pool);
  assert_string_equal(m.name, "supervised");
  assert_int_equal(m.completed, 1); /* fresh counters */

  /* no worker restart allowed: a crashed job makes the pool exit */
  bwt_lock(&evs);
  memset(ev_count, 0, sizeof ev_count);
  bwt_unlock(&evs);
  assert_int_equal(bw_bulkhead_run(pool, crash_job, NULL, 0), BW_ECRASH);
  BWT_AWAIT_DEAD(rt, p2);
  BWT_AWAIT(&evs, ev_count[BW_EV_CHILD_EXITED] == 1); /* the supervisor saw why */
  bwt_lock(&evs);
  assert_int_equal(ev_last_code[BW_EV_CHILD_EXITED], BW_ELIMIT);
  bwt_unlock(&evs);
  bw_pid_t p3 = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, "pool", &p3) == 0 && p3 != p2);
  BWT_POLL(bw_bulkhead_pid(pool) == p3);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), 0);

  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_false(bw_is_alive(rt, p3));
  assert_int_equal(bw_bulkhead_pid(pool), BW_PID_NONE);
  teardown(rt);
}

/* Stop: waiting requesters are told, workers' terminate runs; calls
 * afterwards fail cleanly; the handle can start a new pool. */
static void test_stop(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o = opts_of(1, 0, 2, 1000);
  o.worker = &conn_beh;
  bw_bulkhead_t *pool = pool_start(rt, &o);
  bw_pid_t pid = bw_bulkhead_pid(pool);
  bw_pid_t c = client_new(rt);
  client_run(rt, c, pool, 0, gate_job, &gates[0]);
  assert_true(bwt_gate_await_waiting(&gates[0], 1));
  client_run(rt, c, pool, 1, status_job, NULL);
  bw_bulkhead_stats_t m;
  AWAIT_STATS(pool, m, m.queued == 1);
  /* the pool exits at once; its worker is still in job 0 */
  assert_int_equal(bw_bulkhead_stop(pool), 0);
  assert_false(bw_is_alive(rt, pid));
  assert_int_equal(bw_bulkhead_pid(pool), BW_PID_NONE);
  assert_int_equal(answer_of(1), BW_ESHUTDOWN); /* the waiter is told */
  assert_int_equal(answer_of(0), BW_ENOPROC);   /* the request's monitor on the pool */
  assert_int_equal(atomic_load(&conn_terms), 0);
  bwt_gate_open(&gates[0]);
  BWT_POLL(atomic_load(&conn_terms) == 1); /* then the worker stops, terminate runs */
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_stats(pool, &m), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_stop(pool), 0); /* nothing runs: nothing to do */
  /* the same handle starts a new pool */
  assert_int_equal(bw_bulkhead_start(pool, NULL), 0);
  assert_int_not_equal(bw_bulkhead_pid(pool), pid);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_bulkhead_run(pool, status_job, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_bulkhead_start(pool, NULL), BW_ESHUTDOWN);
  teardown(rt);
}

static int failing_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  (void)arg;
  return BW_ENOTFOUND;
}

static const bw_behaviour_t failing_beh = {
    .name = "failing", .state_size = sizeof(conn_t), .init = failing_init, .handle = conn_handle};

static void test_bad_configs(void **state) {
  (void)state;
  bw_runtime_t *rt = setup();
  bw_bulkhead_opts_t o;
  bw_bulkhead_t *h = (bw_bulkhead_t *)(uintptr_t)0x1;
  assert_int_equal(bw_bulkhead_opts_validate(NULL), BW_EINVAL);
  bw_bulkhead_opts_init(NULL); /* no-op */
  bw_bulkhead_opts_init(&o);
  assert_int_equal(bw_bulkhead_opts_validate(&o), 0);
#define BAD(stmt)                                                              \
  do {                                                                         \
    bw_bulkhead_opts_init(&o);                                                 \
    stmt;                                                                      \
    assert_int_equal(bw_bulkhead_opts_validate(&o), BW_EINVAL);                \
    assert_int_equal(bw_bulkhead_new(rt, &o, &h), BW_EINVAL);                  \
  } while (0)
  BAD(o.workers = 0);
  BAD(o.workers = BW_BULKHEAD_MAX_WORKERS + 1);
  BAD(o.max_overflow = BW_BULKHEAD_MAX_WORKERS + 1);
  BAD(o.queue_capacity = 4);                          /* a queue, no timeout */
  BAD(o.queue_timeout_ms = 100);                      /* a timeout, no queue */
  BAD((o.queue_capacity = BW_BULKHEAD_MAX_QUEUE + 1, o.queue_timeout_ms = 1));
  BAD((o.queue_capacity = 1, o.queue_timeout_ms = BW_BULKHEAD_MAX_MS + 1));
  BAD(o.overflow_idle_ms = BW_BULKHEAD_MAX_MS + 1);
  BAD((o.rate_limit = true, o.rate = 0, o.rate_burst = 1)); /* rate 0 */
  BAD((o.rate_limit = true, o.rate = 10, o.rate_burst = 0)); /* burst 0 */
  BAD((o.rate_limit = true, o.rate = 10, o.rate_burst = 1, o.rate_period_ms = BW_RATELIMIT_MAX_PERIOD_MS + 1));
  BAD((o.rate_limit = true, o.rate = 2000000000ull, o.rate_burst = 1, o.rate_period_ms = 1));
  BAD(o.rate = 10);                                   /* a rate with the limit off */
  BAD(o.name = "a-name-that-is-much-too-long-for-events");
  BAD(o.max_restarts = -2);
  BAD(o.max_restarts = BW_BULKHEAD_MAX_RESTARTS + 1);
  BAD(o.restart_period_ms = BW_BULKHEAD_MAX_MS + 1);
  static const bw_behaviour_t no_handle = {.name = "nohandle"};
  BAD(o.worker = &no_handle);
#undef BAD
  assert_true(h == (bw_bulkhead_t *)(uintptr_t)0x1); /* *out untouched */
  bw_bulkhead_opts_init(&o);
  assert_int_equal(bw_bulkhead_new(NULL, &o, &h), BW_EINVAL);
  assert_int_equal(bw_bulkhead_new(rt, &o, NULL), BW_EINVAL);
  /* NULL handles */
  bw_child_spec_t cs;
  assert_int_equal(bw_bulkhead_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_destroy(NULL), 0);
  assert_int_equal(bw_bulkhead_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_bulkhead_child_spec(NULL, "pool", &cs), BW_EINVAL);
  /* a worker whose init fails fails the pool's start, with its code ... */
  o.worker = &failing_beh;
  bw_bulkhead_t *failing = pool_new(rt, &o);
  assert_int_equal(bw_bulkhead_start(failing, NULL), BW_ENOTFOUND);
  assert_int_equal(bw_bulkhead_pid(failing), BW_PID_NONE);
  o.worker = NULL;
  /* ... and so the supervisor's, when the pool is a child */
  static bw_child_spec_t kids[1];
  assert_int_equal(bw_bulkhead_child_spec(failing, NULL, &kids[0]), BW_EINVAL);
  assert_int_equal(bw_bulkhead_child_spec(failing, "pool", NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_child_spec(failing, "pool", &kids[0]), 0);
  static const bw_sup_spec_t spec = {.name = "s", .children = kids, .nchildren = 1};
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), BW_ENOTFOUND);

  /* bad arguments to the API */
  bw_bulkhead_t *pool = pool_start(rt, &o);
  /* one pool actor per handle: a second one (a child on the same handle) is refused */
  assert_int_equal(bw_bulkhead_child_spec(pool, "pool", &kids[0]), 0);
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, &err), BW_EALREADY);
  bw_bulkhead_lease_t l = {0};
  bw_bulkhead_stats_t m;
  bw_reply_t r;
  bw_pid_t pid = bw_bulkhead_pid(pool);
  assert_int_equal(bw_bulkhead_run(pool, NULL, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run(NULL, status_job, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkout(pool, BW_PID_NONE, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkout(NULL, BW_PID_NONE, 0, &l), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkin(pool, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkin(NULL, &l), BW_EINVAL);
  assert_int_equal(bw_bulkhead_checkin(pool, &l), 0); /* a bogus lease: ignored */
  assert_int_equal(bw_bulkhead_stats(pool, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stats(NULL, &m), BW_EINVAL);
  assert_int_equal(bw_bulkhead_submit(pool, BW_MSG_PATTERN_BASE, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_bulkhead_submit(pool, 1, NULL, 0, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_submit(NULL, 1, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run_request(NULL, pid, NULL, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_bulkhead_run_request(NULL, pid, status_job, NULL, 0, NULL), BW_ENOTACTOR);
  assert_int_equal(bw_bulkhead_checkout_request(NULL, pid, 0, NULL), BW_ENOTACTOR);
  assert_int_equal(bw_bulkhead_stats_request(NULL, pid, NULL), BW_ENOTACTOR);
  assert_int_equal(bw_bulkhead_lease_from_reply(NULL, &l), BW_EINVAL);
  assert_int_equal(bw_bulkhead_stats_from_reply(NULL, &m), BW_EINVAL);
  bw_msg_t not_reply = {.type = BW_BULKHEAD_CHECKOUT};
  assert_int_equal(bw_bulkhead_lease_from_reply(&not_reply, &l), BW_EINVAL);
  /* malformed protocol messages are answered, not crashed on */
  assert_int_equal(bw_call(rt, pid, BW_BULKHEAD_RUN, "x", 1, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call(rt, pid, BW_BULKHEAD_CHECKOUT, "xyz", 3, 0, &r), BW_EINVAL);
  bw_bulkhead_job_t nulljob = {NULL, NULL};
  assert_int_equal(bw_call(rt, pid, BW_BULKHEAD_RUN, &nulljob, sizeof nulljob, 0, &r), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, BW_BULKHEAD_CHECKIN, "x", 1), 0);
  assert_int_equal(bw_send(rt, pid, BW_MSG_BULKHEAD_BASE + 0x82, "x", 1), 0); /* a forged DONE */
  m = stats(pool);
  assert_int_equal(m.submitted, 0);
  assert_int_equal(m.idle, 1);
  assert_true(bw_is_alive(rt, pid));
  teardown(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrency_limit),
      cmocka_unit_test(test_queue_timeout),
      cmocka_unit_test(test_overflow_started_and_retired),
      cmocka_unit_test(test_message_jobs),
      cmocka_unit_test(test_checkout_checkin),
      cmocka_unit_test(test_borrower_death_returns),
      cmocka_unit_test(test_with_resource_crash),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_stats_balance),
      cmocka_unit_test(test_supervised_pool),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_bad_configs),
  };
  return BWT_RUN_SUITE(tests);
}
