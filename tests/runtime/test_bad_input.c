/*
 * Bad input to every public entry point: NULL runtime, behaviour and out
 * pointers, a behaviour without handle, invalid options, invalid and stale
 * pids, oversized inline payloads, reserved message types, bad timer ids,
 * NULL contexts, misuse inside callbacks. A failing call never runs the
 * callback it was given and changes no counter.
 */
#include "support.h"

enum { T_DATA = 1, T_GET, T_MISUSE };

static int init_calls; /* only the main thread spawns in this suite's checks */

static int counting_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  (void)arg;
  __atomic_add_fetch(&init_calls, 1, __ATOMIC_SEQ_CST);
  return 0;
}

typedef struct misuse_result {
  int link_self;
  int monitor_null_ref;
  int demonitor_unknown;
  int set_timeout;
  int reply_not_request;
  int unlink_self;
} misuse_result_t;

static int h_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  int *data_msgs = state;
  if (msg->type == T_DATA) {
    ++*data_msgs;
  } else if (msg->type == T_GET) {
    bw_reply(ctx, msg, 0, T_GET, data_msgs, sizeof *data_msgs);
  } else if (msg->type == T_MISUSE) {
    misuse_result_t r;
    r.link_self = bw_link(ctx, bw_self(ctx));
    r.monitor_null_ref = bw_monitor(ctx, bw_self(ctx), NULL);
    r.demonitor_unknown = bw_demonitor(ctx, 0xFFFFFFFFFFull);
    r.set_timeout = bw_set_receive_timeout(NULL, 10);
    r.unlink_self = bw_unlink(ctx, bw_self(ctx));
    bw_msg_t fake = *msg;
    fake.flags = 0;
    r.reply_not_request = bw_reply(ctx, &fake, 0, T_GET, NULL, 0);
    bw_reply(ctx, msg, 0, T_MISUSE, &r, sizeof r);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t good = {
    .name = "good", .state_size = 16, .init = counting_init, .handle = h_handle};
static const bw_behaviour_t no_handle = {
    .name = "no_handle", .state_size = 16, .init = counting_init, .handle = NULL};

static void test_runtime_create_bad(void **state) {
  (void)state;
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  assert_int_equal(bw_runtime_create(&o, NULL), BW_EINVAL);
  assert_int_equal(bw_runtime_create(NULL, NULL), BW_EINVAL);
  o.workers = 257;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
  o.workers = 100000;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);

  /* the limit itself is fine, and NULL opts means the defaults */
  o.workers = 256;
  rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  assert_int_equal(bw_runtime_workers(rt), 256);
  bw_runtime_destroy(rt);
  rt = NULL;
  assert_int_equal(bw_runtime_create(NULL, &rt), 0);
  assert_true(bw_runtime_workers(rt) >= 1);
  bw_runtime_destroy(rt);

  assert_int_equal(bw_runtime_stop(NULL), BW_EINVAL);
  bw_runtime_stats_t s;
  assert_int_equal(bw_runtime_stats(NULL, &s), BW_EINVAL);
  assert_int_equal(bw_clock_advance(NULL, 1), BW_EINVAL);
  bw_runtime_destroy(NULL);
}

static void test_stats_null_out(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, false);
  assert_int_equal(bw_runtime_stats(rt, NULL), BW_EINVAL);
  bw_runtime_destroy(rt);
}

static void test_spawn_bad(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  __atomic_store_n(&init_calls, 0, __ATOMIC_SEQ_CST);
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(NULL, &good, NULL, NULL, &pid), BW_EINVAL);
  assert_int_equal(bw_spawn(rt, NULL, NULL, NULL, &pid), BW_EINVAL);
  assert_int_equal(bw_spawn(rt, &no_handle, NULL, NULL, &pid), BW_EINVAL);

  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.overflow = (bw_overflow_t)7;
  o.mailbox_capacity = 4;
  assert_int_equal(bw_spawn(rt, &good, NULL, &o, &pid), BW_EINVAL);

  bw_spawn_opts_init(&o);
  char long_name[BW_NAME_MAX + 2];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  o.name = long_name;
  assert_int_equal(bw_spawn(rt, &good, NULL, &o, &pid), BW_EINVAL);
  o.name = "";
  assert_int_equal(bw_spawn(rt, &good, NULL, &o, &pid), BW_EINVAL);

  bw_spawn_opts_init(&o);
  o.link = true; /* only from inside an actor */
  assert_int_equal(bw_spawn(rt, &good, NULL, &o, &pid), BW_ENOTACTOR);

  assert_int_equal(__atomic_load_n(&init_calls, __ATOMIC_SEQ_CST), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 0);
  assert_int_equal(s.live, 0);
  bw_runtime_destroy(rt);
}

static void test_send_bad(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &good, NULL, NULL, &pid), 0);
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 0, sizeof big);

  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send(NULL, pid, T_DATA, "x", 1), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, T_DATA, NULL, 4), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, BW_MSG_SYSTEM_BASE, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, BW_MSG_EXIT, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, BW_MSG_DOWN, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, BW_MSG_TIMEOUT, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, 0xFFFFFFFFu, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send(rt, pid, T_DATA, big, sizeof big), BW_ETOOBIG);
  assert_int_equal(bw_send(rt, pid, T_DATA, big, 1u << 20), BW_ETOOBIG);
  bw_reply_t rep;
  assert_int_equal(bw_call(NULL, pid, T_GET, NULL, 0, 0, &rep), BW_EINVAL);
  assert_int_equal(bw_call(rt, pid, BW_MSG_DEAD_LETTER, NULL, 0, 0, &rep), BW_EINVAL);
  assert_int_equal(bw_call(rt, pid, T_GET, big, sizeof big, 0, &rep), BW_ETOOBIG);
  assert_int_equal(bw_send_named(rt, "nobody", BW_MSG_SYSTEM_BASE + 100, NULL, 0), BW_EINVAL);
  bw_runtime_stats_t after = bwt_stats(rt);
  /* argument errors are not counted as sent, nor as dead letters */
  assert_int_equal(after.sent, before.sent);
  assert_int_equal(after.dead_letters, before.dead_letters);
  assert_int_equal(after.rejected, before.rejected);

  /* the largest user type is fine */
  assert_int_equal(bw_send(rt, pid, BW_MSG_SYSTEM_BASE - 1, NULL, 0), 0);
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  bw_runtime_destroy(rt);
}

static void test_pid_bad(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  assert_false(bw_is_alive(rt, BW_PID_NONE));
  assert_false(bw_is_alive(rt, 0xDEADBEEFDEADBEEFull));
  assert_false(bw_is_alive(rt, UINT64_MAX));
  assert_int_equal(bw_send(rt, UINT64_MAX, T_DATA, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_exit(rt, UINT64_MAX, BW_REASON_SHUTDOWN, 0, NULL), BW_ENOPROC);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, UINT64_MAX, T_GET, NULL, 0, 0, &rep), BW_ENOPROC);
  int rc = bw_send(rt, BW_PID_NONE, T_DATA, NULL, 0);
  assert_true(rc == BW_ENOPROC || rc == BW_EINVAL);
  bw_runtime_destroy(rt);
}

static void test_exit_bad(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &good, NULL, NULL, &pid), 0);
  assert_int_equal(bw_exit(NULL, pid, BW_REASON_KILL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_exit(rt, pid, -1, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_exit(rt, pid, BW_REASON__COUNT, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_exit(rt, pid, 99, 0, NULL), BW_EINVAL);
  assert_true(bw_is_alive(rt, pid));
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  bw_runtime_destroy(rt);
}

static void test_timer_bad(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &good, NULL, NULL, &pid), 0);
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 0, sizeof big);
  bw_timer_t t = 0;
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send_after(NULL, pid, 10, T_DATA, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_after(rt, pid, 10, BW_MSG_TIMEOUT, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_after(rt, pid, 10, T_DATA, NULL, 4, &t), BW_EINVAL);
  assert_int_equal(bw_send_after(rt, pid, 10, T_DATA, big, sizeof big, &t), BW_ETOOBIG);
  assert_int_equal(bw_send_interval(rt, pid, 0, T_DATA, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_interval(NULL, pid, 10, T_DATA, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_interval(rt, pid, 10, T_DATA, big, sizeof big, &t), BW_ETOOBIG);
  assert_int_equal(bw_timer_cancel(NULL, 1), BW_EINVAL);
  int rc = bw_timer_cancel(rt, 0);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTFOUND);
  assert_int_equal(bw_timer_cancel(rt, 0xDEADBEEFull), BW_ENOTFOUND);

  /* none of them set a timer */
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  int data_msgs;
  memcpy(&data_msgs, rep.data, sizeof data_msgs);
  assert_int_equal(data_msgs, 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_letters, before.dead_letters);

  /* a fired one-shot cannot be cancelled */
  assert_int_equal(bw_send_after(rt, pid, 5, T_DATA, NULL, 0, &t), 0);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

static void test_ctx_functions_without_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &good, NULL, NULL, &pid), 0);
  uint64_t ref = 0;
  int rc = bw_link(NULL, pid);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  rc = bw_unlink(NULL, pid);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  rc = bw_monitor(NULL, pid, &ref);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  rc = bw_demonitor(NULL, 1);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  rc = bw_request(NULL, pid, T_DATA, NULL, 0, 0, &ref);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  bw_msg_t m;
  memset(&m, 0, sizeof m);
  m.flags = BW_MSGF_REQUEST;
  m.from = pid;
  m.ref = 1;
  rc = bw_reply(NULL, &m, 0, T_DATA, NULL, 0);
  assert_true(rc == BW_EINVAL || rc == BW_ENOTACTOR);
  assert_int_equal(bw_set_receive_timeout(NULL, 10), BW_EINVAL);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  bw_runtime_destroy(rt);
}

static void test_misuse_inside_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &good, NULL, NULL, &pid), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_MISUSE, NULL, 0, 0, &rep), 0);
  misuse_result_t r;
  memcpy(&r, rep.data, sizeof r);
  assert_int_equal(r.link_self, BW_EINVAL);
  assert_int_equal(r.monitor_null_ref, BW_EINVAL);
  assert_int_equal(r.demonitor_unknown, BW_ENOTFOUND);
  assert_int_equal(r.set_timeout, BW_EINVAL);
  assert_int_equal(r.reply_not_request, BW_EINVAL);
  assert_true(r.unlink_self == BW_EINVAL || r.unlink_self == 0);
  assert_true(bw_is_alive(rt, pid));
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runtime_create_bad),
      cmocka_unit_test(test_stats_null_out),
      cmocka_unit_test(test_spawn_bad),
      cmocka_unit_test(test_send_bad),
      cmocka_unit_test(test_pid_bad),
      cmocka_unit_test(test_exit_bad),
      cmocka_unit_test(test_timer_bad),
      cmocka_unit_test(test_ctx_functions_without_actor),
      cmocka_unit_test(test_misuse_inside_actor),
  };
  return BWT_RUN_SUITE(tests);
}
