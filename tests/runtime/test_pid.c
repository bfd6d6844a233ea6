/*
 * Pids: a stale pid (its actor exited, its slot perhaps reused) stays dead
 * forever: sends to it are BW_ENOPROC dead letters (noproc) and never reach
 * the actor that now has the slot. Garbage pids are safe.
 */
#include "support.h"

enum { T_PING = 1, T_GET, T_STOP };

typedef struct counter_state {
  int pings;
} counter_state_t;

static int counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  counter_state_t *st = state;
  switch (msg->type) {
  case T_PING:
    st->pings++;
    return BW_CONTINUE;
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, &st->pings, sizeof st->pings);
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t counter = {
    .name = "counter", .state_size = sizeof(counter_state_t), .handle = counter_handle};

static int pings_of(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  int n;
  memcpy(&n, rep.data, sizeof n);
  return n;
}

static void test_stale_pid_after_reuse(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);

  /* many generations of short-lived actors, so slots are reused */
  enum { CYCLES = 200, FRESH = 300 };
  static bw_pid_t old[CYCLES];
  for (int i = 0; i < CYCLES; i++) {
    assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &old[i]), 0);
    assert_int_equal(bw_send(rt, old[i], T_PING, NULL, 0), 0);
    assert_int_equal(pings_of(rt, old[i]), 1);
    assert_int_equal(bw_send(rt, old[i], T_STOP, NULL, 0), 0);
    BWT_AWAIT_DEAD(rt, old[i]);
  }
  /* the counters trail bw_is_alive a little (not a snapshot) */
  BWT_POLL(bwt_stats(rt).live == 0);

  static bw_pid_t fresh[FRESH];
  for (int i = 0; i < FRESH; i++)
    assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &fresh[i]), 0);

  /* a pid is never handed out twice */
  for (int i = 0; i < CYCLES; i++) {
    for (int j = 0; j < i; j++)
      assert_int_not_equal(old[i], old[j]);
    for (int j = 0; j < FRESH; j++)
      assert_int_not_equal(old[i], fresh[j]);
  }

  bw_runtime_stats_t before = bwt_stats(rt);
  for (int i = 0; i < CYCLES; i++) {
    assert_false(bw_is_alive(rt, old[i]));
    assert_int_equal(bw_send(rt, old[i], T_PING, NULL, 0), BW_ENOPROC);
  }
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC],
                   before.dead_by_reason[BW_DL_NOPROC] + CYCLES);
  assert_int_equal(after.dead_letters, before.dead_letters + CYCLES);
  assert_int_equal(after.sent, before.sent + CYCLES);

  /* none of it reached the actors that live in those slots now; each call
   * queues behind anything main sent to that actor before */
  for (int j = 0; j < FRESH; j++) {
    assert_true(bw_is_alive(rt, fresh[j]));
    assert_int_equal(pings_of(rt, fresh[j]), 0);
  }

  /* a call to a stale pid fails the same way */
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, old[0], T_GET, NULL, 0, 0, &rep), BW_ENOPROC);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  /* the failed call may or may not count as a dead letter of its own */
  assert_in_range(s.dead_by_reason[BW_DL_NOPROC], CYCLES, CYCLES + 1);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_stale_pid_simple(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a, b;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &a), 0);
  assert_int_equal(bw_send(rt, a, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, a);
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &b), 0);
  assert_int_not_equal(a, b);
  assert_int_equal(bw_send(rt, a, T_PING, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_send(rt, b, T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, b), 1);
  assert_false(bw_is_alive(rt, a));
  assert_true(bw_is_alive(rt, b));
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_NOPROC], 1);
  bw_runtime_destroy(rt);
}

static void test_garbage_pids(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t live;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &live), 0);
  const bw_pid_t garbage[] = {
      UINT64_MAX, 0xDEADBEEFDEADBEEFull, 0x0123456789ABCDEFull,
      0x00000000FFFFFFFFull, 0xFFFFFFFF00000000ull, 1ull << 62,
  };
  bw_runtime_stats_t before = bwt_stats(rt);
  int n = 0;
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    if (garbage[i] == live)
      continue;
    n++;
    assert_false(bw_is_alive(rt, garbage[i]));
    assert_int_equal(bw_send(rt, garbage[i], T_PING, NULL, 0), BW_ENOPROC);
    assert_int_equal(bw_exit(rt, garbage[i], BW_REASON_SHUTDOWN, 0, NULL), BW_ENOPROC);
  }
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + n);

  /* BW_PID_NONE is never alive; a send to it is refused one way or another */
  assert_false(bw_is_alive(rt, BW_PID_NONE));
  int rc = bw_send(rt, BW_PID_NONE, T_PING, NULL, 0);
  assert_true(rc == BW_ENOPROC || rc == BW_EINVAL);

  assert_int_equal(pings_of(rt, live), 0);
  bw_runtime_destroy(rt);
}

static void test_pid_foreign_runtime(void **state) {
  (void)state;
  /* a pid of one runtime means nothing in another, even with the same slot */
  bw_runtime_t *r1 = bwt_runtime(1, false);
  bw_runtime_t *r2 = bwt_runtime(1, false);
  bw_pid_t a, b;
  assert_int_equal(bw_spawn(r1, &counter, NULL, NULL, &a), 0);
  assert_int_equal(bw_spawn(r2, &counter, NULL, NULL, &b), 0);
  assert_true(bw_is_alive(r1, a));
  assert_true(bw_is_alive(r2, b));
  assert_int_equal(bw_send(r1, a, T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(r1, a), 1);
  assert_int_equal(pings_of(r2, b), 0);
  bw_runtime_destroy(r1);
  bw_runtime_destroy(r2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stale_pid_simple),
      cmocka_unit_test(test_stale_pid_after_reuse),
      cmocka_unit_test(test_garbage_pids),
      cmocka_unit_test(test_pid_foreign_runtime),
  };
  return BWT_RUN_SUITE(tests);
}
