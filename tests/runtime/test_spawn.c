/*
 * bw_spawn: init before return, state ownership, init failure (returned code
 * and bw_fail) with opts.init_error and no terminate, stop and terminate,
 * spawn (with link) from inside an actor, spawn options.
 */
#include "support.h"

enum { T_GET = 1, T_STOP, T_SPAWN_LINK, T_SPAWN_PLAIN };

#define MAX_REC 8

/* What callbacks saw; guarded by sync. */
typedef struct rec {
  int init_calls;
  int terminate_calls;
  bw_reason_t term_reason;
  bool after_fail; /* set by code after bw_fail: must stay false */
  bw_pid_t init_self;
  bool state_zeroed;
  bool state_aligned;
  bool name_ok;
  bool rt_ok;
  int exits;
  bw_pid_t exit_from;
  bw_reason_t exit_reason;
} rec_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static rec_t recs[MAX_REC];
static bw_runtime_t *cur_rt;

static void reset(void) {
  bwt_lock(&sync_);
  memset(recs, 0, sizeof recs);
  bwt_unlock(&sync_);
}

typedef struct probe_state {
  int id;
  int handled;
  unsigned char pad[200]; /* a state bigger than a cache line */
} probe_state_t;

typedef struct probe_info {
  int id;
  int handled;
} probe_info_t;

typedef struct spawn_reply {
  int rc;
  bw_pid_t child;
} spawn_reply_t;

static int probe_init(bw_ctx_t *ctx, void *state, void *arg) {
  int id = (int)(intptr_t)arg;
  const unsigned char *bytes = state;
  bool zero = true;
  for (size_t i = 0; i < sizeof(probe_state_t); i++)
    zero = zero && bytes[i] == 0;
  probe_state_t *st = state;
  st->id = id;
  bwt_lock(&sync_);
  recs[id].init_calls++;
  recs[id].init_self = bw_self(ctx);
  recs[id].state_zeroed = zero;
  recs[id].state_aligned = ((uintptr_t)state % 16) == 0;
  recs[id].name_ok = bw_ctx_name(ctx) != NULL && strcmp(bw_ctx_name(ctx), "probe") == 0;
  recs[id].rt_ok = bw_ctx_runtime(ctx) == cur_rt;
  bwt_unlock_signal(&sync_);
  return 0;
}

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg);

static void probe_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  probe_state_t *st = state;
  bwt_lock(&sync_);
  recs[st->id].terminate_calls++;
  recs[st->id].term_reason = *reason;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t probe = {
    .name = "probe",
    .state_size = sizeof(probe_state_t),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
};

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  probe_state_t *st = state;
  st->handled++;
  switch (msg->type) {
  case T_GET: {
    probe_info_t info = {st->id, st->handled};
    bw_reply(ctx, msg, 0, T_GET, &info, sizeof info);
    return BW_CONTINUE;
  }
  case T_STOP:
    return BW_STOP;
  case T_SPAWN_LINK:
  case T_SPAWN_PLAIN: {
    int child_id = *(const int *)msg->data;
    bw_spawn_opts_t o;
    bw_spawn_opts_init(&o);
    o.link = msg->type == T_SPAWN_LINK;
    spawn_reply_t r = {0, BW_PID_NONE};
    r.rc = bw_spawn(bw_ctx_runtime(ctx), &probe, (void *)(intptr_t)child_id, &o, &r.child);
    bw_reply(ctx, msg, 0, msg->type, &r, sizeof r);
    return BW_CONTINUE;
  }
  case BW_MSG_EXIT:
    bwt_lock(&sync_);
    recs[st->id].exits++;
    recs[st->id].exit_from = msg->from;
    recs[st->id].exit_reason = *(const bw_reason_t *)msg->data;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

/* --- init that fails ---------------------------------------------------- */

static int failing_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  bwt_lock(&sync_);
  recs[0].init_calls++;
  bwt_unlock(&sync_);
  return (int)(intptr_t)arg;
}

static int panicking_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  (void)arg;
  bwt_lock(&sync_);
  recs[0].init_calls++;
  bwt_unlock(&sync_);
  bw_fail(ctx, -4321, "init failed: %s #%d", "config", 7);
  /* not reached */
  bwt_lock(&sync_);
  recs[0].after_fail = true;
  bwt_unlock(&sync_);
  return 0;
}

static int noop_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_CONTINUE;
}

static void rec0_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)state;
  bwt_lock(&sync_);
  recs[0].terminate_calls++;
  recs[0].term_reason = *reason;
  bwt_unlock(&sync_);
}

/* --- tests ---------------------------------------------------------------- */

static void test_opts_defaults(void **state) {
  (void)state;
  bw_spawn_opts_t o;
  memset(&o, 0x5A, sizeof o);
  bw_spawn_opts_init(&o);
  assert_int_equal(o.mailbox_capacity, 0);
  assert_false(o.dedicated_thread);
  assert_null(o.name);
  assert_false(o.link);
  assert_false(o.trap_exit);
  assert_null(o.init_error);

  bw_runtime_opts_t r;
  memset(&r, 0x5A, sizeof r);
  bw_runtime_opts_init(&r);
  assert_int_equal(r.workers, 0);
  assert_int_equal(r.batch, 0);
  assert_false(r.manual_clock);
}

static void test_spawn_runs_init_before_return(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  cur_rt = rt;
  assert_int_equal(bw_runtime_workers(rt), 2);

  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)1, NULL, &pid), 0);
  assert_int_not_equal(pid, BW_PID_NONE);
  assert_true(bw_is_alive(rt, pid));

  /* init has finished when spawn returns: no waiting */
  bwt_lock(&sync_);
  rec_t r = recs[1];
  bwt_unlock(&sync_);
  assert_int_equal(r.init_calls, 1);
  assert_int_equal(r.init_self, pid);
  assert_true(r.state_zeroed);
  assert_true(r.state_aligned);
  assert_true(r.name_ok);
  assert_true(r.rt_ok);

  /* the state written in init is the state the handler sees */
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof(probe_info_t));
  probe_info_t info;
  memcpy(&info, rep.data, sizeof info);
  assert_int_equal(info.id, 1);
  assert_int_equal(info.handled, 1);
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  memcpy(&info, rep.data, sizeof info);
  assert_int_equal(info.handled, 2);

  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 1);
  assert_int_equal(s.live, 1);

  /* spawn's out is optional */
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)2, NULL, NULL), 0);
  s = bwt_stats(rt);
  assert_int_equal(s.spawned, 2);
  assert_int_equal(s.live, 2);

  bw_runtime_destroy(rt);
}

static void test_init_failure_code(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  const bw_behaviour_t b = {
      .name = "failing", .state_size = 8, .init = failing_init,
      .handle = noop_handle, .terminate = rec0_terminate};

  bw_reason_t why;
  memset(&why, 0, sizeof why);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.init_error = &why;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(rt, &b, (void *)(intptr_t)BW_ECANCELED, &o, &pid);
  assert_int_equal(rc, BW_ECANCELED);
  assert_int_equal(why.kind, BW_REASON_CRASH);
  assert_int_equal(why.code, BW_ECANCELED);

  /* a user code, and no opts at all */
  rc = bw_spawn(rt, &b, (void *)(intptr_t)-777, NULL, NULL);
  assert_int_equal(rc, -777);

  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 0);
  assert_int_equal(s.live, 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  assert_int_equal(s.exited, 0);
  bwt_lock(&sync_);
  assert_int_equal(recs[0].init_calls, 2);
  assert_int_equal(recs[0].terminate_calls, 0);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_init_bw_fail(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  const bw_behaviour_t b = {
      .name = "panicking", .state_size = 0, .init = panicking_init,
      .handle = noop_handle, .terminate = rec0_terminate};

  bw_reason_t why;
  memset(&why, 0, sizeof why);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.init_error = &why;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(rt, &b, NULL, &o, &pid);
  assert_int_equal(rc, -4321);
  assert_int_equal(why.kind, BW_REASON_CRASH);
  assert_int_equal(why.code, -4321);
  assert_string_equal(why.text, "init failed: config #7");

  /* the runtime is unharmed: a normal actor still works */
  bw_pid_t p2;
  cur_rt = rt;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)3, NULL, &p2), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, p2, T_GET, NULL, 0, 0, &rep), 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 1);
  bwt_lock(&sync_);
  assert_int_equal(recs[0].init_calls, 1);
  assert_false(recs[0].after_fail);
  assert_int_equal(recs[0].terminate_calls, 0);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_stop_runs_terminate_normal(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  cur_rt = rt;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)1, NULL, &pid), 0);
  assert_int_equal(bw_send(rt, pid, T_STOP, NULL, 0), 0);
  BWT_AWAIT(&sync_, recs[1].terminate_calls == 1);
  BWT_AWAIT_DEAD(rt, pid);
  bwt_lock(&sync_);
  assert_int_equal(recs[1].term_reason.kind, BW_REASON_NORMAL);
  bwt_unlock(&sync_);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 1);
  assert_int_equal(s.exited, 1);
  assert_int_equal(s.crashed, 0);
  assert_int_equal(s.live, 0);
  bwt_lock(&sync_);
  assert_int_equal(recs[1].terminate_calls, 1); /* not again at stop */
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_spawn_link_from_actor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  cur_rt = rt;
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.trap_exit = true;
  bw_pid_t parent;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)1, &o, &parent), 0);

  bw_reply_t rep;
  spawn_reply_t plain, linked;
  int id = 2;
  assert_int_equal(bw_call(rt, parent, T_SPAWN_PLAIN, &id, sizeof id, 0, &rep), 0);
  memcpy(&plain, rep.data, sizeof plain);
  assert_int_equal(plain.rc, 0);
  id = 3;
  assert_int_equal(bw_call(rt, parent, T_SPAWN_LINK, &id, sizeof id, 0, &rep), 0);
  memcpy(&linked, rep.data, sizeof linked);
  assert_int_equal(linked.rc, 0);
  assert_true(bw_is_alive(rt, plain.child));
  assert_true(bw_is_alive(rt, linked.child));
  bwt_lock(&sync_);
  assert_int_equal(recs[2].init_calls, 1);
  assert_int_equal(recs[3].init_calls, 1);
  bwt_unlock(&sync_);

  /* the unlinked child crashing sends the parent nothing */
  assert_int_equal(bw_exit(rt, plain.child, BW_REASON_CRASH, -98, "plain down"), 0);
  BWT_AWAIT(&sync_, recs[2].terminate_calls == 1);
  BWT_AWAIT_DEAD(rt, plain.child);

  /* the linked child crashing reaches the trapping parent as BW_MSG_EXIT */
  assert_int_equal(bw_exit(rt, linked.child, BW_REASON_CRASH, -99, "child down"), 0);
  BWT_AWAIT(&sync_, recs[1].exits >= 1);
  /* a call queues behind anything the children sent the parent */
  assert_int_equal(bw_call(rt, parent, T_GET, NULL, 0, 0, &rep), 0);
  bwt_lock(&sync_);
  rec_t p = recs[1];
  rec_t c = recs[3];
  bwt_unlock(&sync_);
  assert_int_equal(p.exits, 1);
  assert_int_equal(p.exit_from, linked.child);
  assert_int_equal(p.exit_reason.kind, BW_REASON_CRASH);
  assert_int_equal(p.exit_reason.code, -99);
  assert_string_equal(p.exit_reason.text, "child down");
  assert_int_equal(p.terminate_calls, 0);
  assert_int_equal(c.terminate_calls, 1);
  assert_int_equal(c.term_reason.kind, BW_REASON_CRASH);
  assert_int_equal(c.term_reason.code, -99);
  assert_true(bw_is_alive(rt, parent));

  bw_runtime_destroy(rt);
}

static void test_spawn_link_outside_actor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  cur_rt = rt;
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.link = true;
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)1, &o, &pid), BW_ENOTACTOR);
  bwt_lock(&sync_);
  assert_int_equal(recs[1].init_calls, 0);
  bwt_unlock(&sync_);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, 0);
  assert_int_equal(s.live, 0);
  bw_runtime_destroy(rt);
}

static void test_spawn_many_distinct(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(0, false);
  assert_true(bw_runtime_workers(rt) >= 1);
  enum { N = 300 };
  static bw_pid_t pids[N];
  const bw_behaviour_t b = {.name = "noop", .handle = noop_handle};
  for (int i = 0; i < N; i++) {
    assert_int_equal(bw_spawn(rt, &b, NULL, NULL, &pids[i]), 0);
    assert_int_not_equal(pids[i], BW_PID_NONE);
  }
  for (int i = 0; i < N; i++) {
    assert_true(bw_is_alive(rt, pids[i]));
    for (int j = 0; j < i; j++)
      assert_int_not_equal(pids[i], pids[j]);
  }
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.spawned, N);
  assert_int_equal(s.live, N);
  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  assert_int_equal(s.exited, N);
  assert_int_equal(s.live, 0);
  for (int i = 0; i < N; i++)
    assert_false(bw_is_alive(rt, pids[i]));
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opts_defaults),
      cmocka_unit_test(test_spawn_runs_init_before_return),
      cmocka_unit_test(test_init_failure_code),
      cmocka_unit_test(test_init_bw_fail),
      cmocka_unit_test(test_stop_runs_terminate_normal),
      cmocka_unit_test(test_spawn_link_from_actor),
      cmocka_unit_test(test_spawn_link_outside_actor),
      cmocka_unit_test(test_spawn_many_distinct),
  };
  return BWT_RUN_SUITE(tests);
}
