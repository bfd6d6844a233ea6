/*
 * The name registry: register, whereis, send_named, duplicates, names freed
 * when their actor exits, spawn with opts.name, unregister, bad names.
 */
#include "support.h"

enum { T_PING = 1, T_GET, T_STOP };

static int counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  int *pings = state;
  switch (msg->type) {
  case T_PING:
    ++*pings;
    return BW_CONTINUE;
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, pings, sizeof *pings);
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t counter = {
    .name = "counter", .state_size = sizeof(int), .handle = counter_handle};

static bw_pid_t spawn_named(bw_runtime_t *rt, const char *name, int *rc) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.name = name;
  bw_pid_t pid = BW_PID_NONE;
  *rc = bw_spawn(rt, &counter, NULL, &o, &pid);
  return pid;
}

static bw_pid_t spawn_plain(bw_runtime_t *rt) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &pid), 0);
  return pid;
}

static int pings_of(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  int n;
  memcpy(&n, rep.data, sizeof n);
  return n;
}

static void test_register_whereis_send_named(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_plain(rt), b = spawn_plain(rt);
  char name[16];
  strcpy(name, "alpha");
  assert_int_equal(bw_register(rt, name, a), 0);
  strcpy(name, "zzzzz"); /* the name was copied */
  bw_pid_t found = BW_PID_NONE;
  assert_int_equal(bw_whereis(rt, "alpha", &found), 0);
  assert_int_equal(found, a);
  assert_int_equal(bw_whereis(rt, "zzzzz", &found), BW_ENOTFOUND);

  assert_int_equal(bw_send_named(rt, "alpha", T_PING, NULL, 0), 0);
  assert_int_equal(bw_send_named(rt, "alpha", T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, a), 2);
  assert_int_equal(pings_of(rt, b), 0);

  /* taken by a live actor */
  assert_int_equal(bw_register(rt, "alpha", b), BW_EEXIST);
  assert_int_equal(bw_register(rt, "alpha", a), BW_EEXIST);
  assert_int_equal(bw_whereis(rt, "alpha", &found), 0);
  assert_int_equal(found, a);

  /* names are case-sensitive and exact */
  assert_int_equal(bw_register(rt, "Alpha", b), 0);
  assert_int_equal(bw_whereis(rt, "Alpha", &found), 0);
  assert_int_equal(found, b);
  bw_runtime_destroy(rt);
}

static void test_name_freed_on_exit(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_plain(rt);
  assert_int_equal(bw_register(rt, "svc", a), 0);
  assert_int_equal(bw_send(rt, a, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, a);
  bw_pid_t found = BW_PID_NONE;
  BWT_POLL(bw_whereis(rt, "svc", &found) == BW_ENOTFOUND);

  /* a send to the freed name is a noproc dead letter */
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send_named(rt, "svc", T_PING, NULL, 0), BW_ENOTFOUND);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);

  /* and the name can be taken again */
  bw_pid_t b = spawn_plain(rt);
  assert_int_equal(bw_register(rt, "svc", b), 0);
  assert_int_equal(bw_whereis(rt, "svc", &found), 0);
  assert_int_equal(found, b);
  assert_int_equal(bw_send_named(rt, "svc", T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, b), 1);

  /* also after a kill, which skips terminate */
  assert_int_equal(bw_exit(rt, b, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, b);
  BWT_POLL(bw_whereis(rt, "svc", &found) == BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

static void test_spawn_with_name(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  int rc;
  char name[16];
  strcpy(name, "worker-1");
  bw_pid_t a = spawn_named(rt, name, &rc);
  assert_int_equal(rc, 0);
  strcpy(name, "clobbered");
  bw_pid_t found = BW_PID_NONE;
  assert_int_equal(bw_whereis(rt, "worker-1", &found), 0);
  assert_int_equal(found, a);
  assert_int_equal(bw_send_named(rt, "worker-1", T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, a), 1);

  /* a taken name fails the spawn; nothing is left behind */
  bw_runtime_stats_t before = bwt_stats(rt);
  bw_pid_t b = spawn_named(rt, "worker-1", &rc);
  (void)b;
  assert_int_equal(rc, BW_EEXIST);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.spawned, before.spawned);
  assert_int_equal(after.live, before.live);
  assert_int_equal(bw_whereis(rt, "worker-1", &found), 0);
  assert_int_equal(found, a);

  /* the spawned name is freed on exit like a registered one */
  assert_int_equal(bw_send(rt, a, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, a);
  BWT_POLL(bw_whereis(rt, "worker-1", &found) == BW_ENOTFOUND);
  bw_pid_t c = spawn_named(rt, "worker-1", &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(bw_whereis(rt, "worker-1", &found), 0);
  assert_int_equal(found, c);
  bw_runtime_destroy(rt);
}

static void test_unregister(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_plain(rt);
  assert_int_equal(bw_register(rt, "x", a), 0);
  assert_int_equal(bw_unregister(rt, "x"), 0);
  bw_pid_t found;
  assert_int_equal(bw_whereis(rt, "x", &found), BW_ENOTFOUND);
  assert_int_equal(bw_unregister(rt, "x"), BW_ENOTFOUND);
  assert_int_equal(bw_send_named(rt, "x", T_PING, NULL, 0), BW_ENOTFOUND);
  /* the actor lives on and can take the name again */
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(bw_register(rt, "x", a), 0);
  assert_int_equal(bw_send_named(rt, "x", T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, a), 1);
  bw_runtime_destroy(rt);
}

static void test_bad_names_and_pids(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_plain(rt);
  bw_pid_t found;
  char longest[BW_NAME_MAX + 1];
  memset(longest, 'n', BW_NAME_MAX);
  longest[BW_NAME_MAX] = '\0';
  char too_long[BW_NAME_MAX + 2];
  memset(too_long, 'n', BW_NAME_MAX + 1);
  too_long[BW_NAME_MAX + 1] = '\0';

  assert_int_equal(bw_register(rt, longest, a), 0);
  assert_int_equal(bw_whereis(rt, longest, &found), 0);
  assert_int_equal(found, a);
  assert_int_equal(bw_register(rt, too_long, a), BW_EINVAL);
  assert_int_equal(bw_register(rt, "", a), BW_EINVAL);
  assert_int_equal(bw_register(rt, NULL, a), BW_EINVAL);
  assert_int_equal(bw_register(NULL, "n", a), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, NULL, &found), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, "n", NULL), BW_EINVAL);
  assert_int_equal(bw_whereis(NULL, "n", &found), BW_EINVAL);
  assert_int_equal(bw_unregister(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_unregister(NULL, "n"), BW_EINVAL);
  assert_int_equal(bw_send_named(rt, NULL, T_PING, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send_named(NULL, "n", T_PING, NULL, 0), BW_EINVAL);
  /* bw_send's own checks apply */
  assert_int_equal(bw_send_named(rt, longest, BW_MSG_SYSTEM_BASE, NULL, 0), BW_EINVAL);
  uint8_t big[BW_MSG_INLINE_MAX + 1] = {0};
  assert_int_equal(bw_send_named(rt, longest, T_PING, big, sizeof big), BW_ETOOBIG);

  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.name = too_long;
  assert_int_equal(bw_spawn(rt, &counter, NULL, &o, NULL), BW_EINVAL);

  /* a dead pid cannot be registered */
  bw_pid_t d = spawn_plain(rt);
  assert_int_equal(bw_send(rt, d, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, d);
  assert_int_equal(bw_register(rt, "dead", d), BW_ENOPROC);
  assert_int_equal(bw_whereis(rt, "dead", &found), BW_ENOTFOUND);
  int rc = bw_register(rt, "none", BW_PID_NONE);
  assert_true(rc == BW_ENOPROC || rc == BW_EINVAL);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_whereis_send_named),
      cmocka_unit_test(test_name_freed_on_exit),
      cmocka_unit_test(test_spawn_with_name),
      cmocka_unit_test(test_unregister),
      cmocka_unit_test(test_bad_names_and_pids),
  };
  return BWT_RUN_SUITE(tests);
}
