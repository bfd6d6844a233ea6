/*
 * Scheduling: dedicated-thread actors may block without holding up the
 * schedulers; a dedicated-thread actor may bw_call; bw_call on a scheduler
 * thread is refused; an actor that keeps sending itself messages does not
 * starve the others (bounded batches), even with one worker.
 *
 * A starved actor would make bw_call hang: the calls here have a real-time
 * deadline so that such a bug fails the test instead of hanging it.
 */
#include "support.h"

#include <stdatomic.h>

enum { T_BLOCK = 1, T_PING, T_SPIN, T_HALT, T_CALL_OTHER };

#define CALL_DEADLINE_MS 20000u

static bwt_gate_t gate;

typedef struct worker_state {
  int pings;
  bool halted;
  long spins;
} worker_state_t;

typedef struct call_result {
  int rc;
  int32_t status;
  int pings;
} call_result_t;

static _Atomic long spin_count;

static int worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  worker_state_t *st = state;
  switch (msg->type) {
  case T_BLOCK:
    bwt_gate_pass(&gate);
    return BW_CONTINUE;
  case T_PING:
    st->pings++;
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, T_PING, &st->pings, sizeof st->pings);
    return BW_CONTINUE;
  case T_SPIN:
    /* keeps itself busy forever: one message in, one message out */
    st->spins++;
    atomic_fetch_add_explicit(&spin_count, 1, memory_order_relaxed);
    if (!st->halted)
      bw_send(bw_ctx_runtime(ctx), bw_self(ctx), T_SPIN, NULL, 0);
    return BW_CONTINUE;
  case T_HALT:
    st->halted = true;
    bw_reply(ctx, msg, 0, T_HALT, NULL, 0);
    return BW_CONTINUE;
  case T_CALL_OTHER: {
    /* bw_call from inside a handler: allowed on a dedicated thread only */
    bw_pid_t other;
    memcpy(&other, msg->data, sizeof other);
    bw_reply_t rep;
    call_result_t r = {0, 0, 0};
    r.rc = bw_call(bw_ctx_runtime(ctx), other, T_PING, NULL, 0, CALL_DEADLINE_MS, &rep);
    r.status = rep.status;
    if (r.rc == 0 && rep.len == sizeof(int))
      memcpy(&r.pings, rep.data, sizeof(int));
    bw_reply(ctx, msg, 0, T_CALL_OTHER, &r, sizeof r);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t worker = {
    .name = "worker", .state_size = sizeof(worker_state_t), .handle = worker_handle};

static bw_pid_t spawn_worker(bw_runtime_t *rt, bool dedicated) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = dedicated;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &worker, NULL, &o, &pid), 0);
  return pid;
}

static int ping(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  int rc = bw_call(rt, pid, T_PING, NULL, 0, CALL_DEADLINE_MS, &rep);
  assert_int_equal(rc, 0);
  int n;
  assert_int_equal(rep.len, sizeof n);
  memcpy(&n, rep.data, sizeof n);
  return n;
}

static void test_dedicated_blocking_does_not_starve(void **state) {
  (void)state;
  bwt_gate_init(&gate);
  /* one scheduler thread: if a blocked handler held it, nothing would run */
  bw_runtime_t *rt = bwt_runtime(1, false);
  enum { NBLOCK = 3, NNORMAL = 20 };
  bw_pid_t blocked[NBLOCK], normal[NNORMAL];
  for (int i = 0; i < NBLOCK; i++) {
    blocked[i] = spawn_worker(rt, true);
    assert_int_equal(bw_send(rt, blocked[i], T_BLOCK, NULL, 0), 0);
  }
  assert_true(bwt_gate_await_waiting(&gate, NBLOCK));
  for (int i = 0; i < NNORMAL; i++)
    normal[i] = spawn_worker(rt, false);

  for (int round = 1; round <= 3; round++)
    for (int i = 0; i < NNORMAL; i++)
      assert_int_equal(ping(rt, normal[i]), round);

  /* a new actor spawned while they block is served too */
  bw_pid_t late = spawn_worker(rt, false);
  assert_int_equal(ping(rt, late), 1);

  /* the blocked ones are still blocked, then resume in order */
  assert_true(bwt_gate_await_waiting(&gate, NBLOCK));
  for (int i = 0; i < NBLOCK; i++)
    assert_int_equal(bw_send(rt, blocked[i], T_PING, NULL, 0), 0);
  bwt_gate_open(&gate);
  for (int i = 0; i < NBLOCK; i++)
    assert_int_equal(ping(rt, blocked[i]), 2);

  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_call_from_actors(void **state) {
  (void)state;
  bwt_gate_init(&gate);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t target = spawn_worker(rt, false);
  bw_pid_t ded = spawn_worker(rt, true);
  bw_pid_t sched = spawn_worker(rt, false);

  bw_reply_t rep;
  call_result_t r;
  assert_int_equal(bw_call(rt, ded, T_CALL_OTHER, &target, sizeof target, CALL_DEADLINE_MS, &rep), 0);
  memcpy(&r, rep.data, sizeof r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.pings, 1);

  assert_int_equal(bw_call(rt, sched, T_CALL_OTHER, &target, sizeof target, CALL_DEADLINE_MS, &rep), 0);
  memcpy(&r, rep.data, sizeof r);
  assert_int_equal(r.rc, BW_EWOULDBLOCK);
  /* nothing was sent: the target saw only the first ping */
  assert_int_equal(ping(rt, target), 2);

  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void fair_with(unsigned workers, unsigned batch) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = workers;
  o.batch = batch;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  atomic_store(&spin_count, 0);

  bw_pid_t spinners[2] = {spawn_worker(rt, false), spawn_worker(rt, false)};
  bw_pid_t other = spawn_worker(rt, false);
  for (int i = 0; i < 2; i++)
    assert_int_equal(bw_send(rt, spinners[i], T_SPIN, NULL, 0), 0);
  BWT_POLL(atomic_load_explicit(&spin_count, memory_order_relaxed) > 1000);
  for (int i = 1; i <= 50; i++)
    assert_int_equal(ping(rt, other), i);

  bw_reply_t rep;
  for (int i = 0; i < 2; i++)
    assert_int_equal(bw_call(rt, spinners[i], T_HALT, NULL, 0, CALL_DEADLINE_MS, &rep), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_self_flooding_actor_does_not_starve_others(void **state) {
  (void)state;
  fair_with(1, 0);
  fair_with(1, 1);
  fair_with(2, 64);
}

/* Scheduler utilisation in the stats: idle time only grows, never exceeds
 * the workers' time, and grows while the runtime has nothing to do. */
static void test_utilisation_stats(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_runtime_stats_t a = bwt_stats(rt);
  assert_int_equal(a.workers, 2);
  assert_true(a.uptime_ns > 0);
  assert_true(a.idle_ns <= a.uptime_ns * a.workers);
  /* an idle runtime parks its workers: idle time grows */
  BWT_POLL(bwt_stats(rt).idle_ns > a.idle_ns);
  bw_runtime_stats_t b = bwt_stats(rt);
  assert_true(b.uptime_ns >= a.uptime_ns);
  assert_true(b.idle_ns <= b.uptime_ns * b.workers);
  bw_runtime_destroy(rt);
}


/* A handler that hangs on a worker (past its watchdog limit) must not hold
 * up an actor it made runnable: once the hang is reported, another worker
 * takes it. Manual clock: the hang is "past the limit" when the test says. */
static atomic_int hung_release, hung_started, woken_ran;
static bw_pid_t woken_pid;
static int hanger_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type != T_SPIN)
    return BW_CONTINUE;
  bw_send(bw_ctx_runtime(ctx), woken_pid, T_PING, NULL, 0);
  atomic_store(&hung_started, 1);
  while (!atomic_load(&hung_release))
    sched_yield(); /* a handler stuck in a foreign call */
  return BW_CONTINUE;
}
static const bw_behaviour_t hanger_b = {.name = "hanger", .handle = hanger_handle};
static int woken_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == T_PING)
    atomic_store(&woken_ran, 1);
  return BW_CONTINUE;
}
static const bw_behaviour_t woken_b = {.name = "woken", .handle = woken_handle};

static void test_hung_handler_hands_off_its_queue(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  atomic_store(&hung_release, 0);
  atomic_store(&hung_started, 0);
  atomic_store(&woken_ran, 0);
  assert_int_equal(bw_spawn(rt, &woken_b, NULL, NULL, &woken_pid), 0);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.hang_limit_ms = 50;
  bw_pid_t h;
  assert_int_equal(bw_spawn(rt, &hanger_b, NULL, &o, &h), 0);
  assert_int_equal(bw_send(rt, h, T_SPIN, NULL, 0), 0);
  BWT_POLL(atomic_load(&hung_started) == 1);
  /* past the limit: reported, and the queue behind the hang is handed off */
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_POLL(atomic_load(&woken_ran) == 1);
  atomic_store(&hung_release, 1);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dedicated_blocking_does_not_starve),
      cmocka_unit_test(test_utilisation_stats),
      cmocka_unit_test(test_call_from_actors),
      cmocka_unit_test(test_self_flooding_actor_does_not_starve_others),
      cmocka_unit_test(test_hung_handler_hands_off_its_queue),
  };
  return BWT_RUN_SUITE(tests);
}
