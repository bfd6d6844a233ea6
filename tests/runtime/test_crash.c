/*
 * Crash isolation: one actor of 1,000 crashes (a handler returns a negative
 * code, or calls bw_fail with a formatted text); the others keep answering;
 * the crashed one's terminate ran once with reason crash, its code and text;
 * messages queued behind the crash are dead letters (exited).
 */
#include "support.h"

enum { T_PING = 1, T_CRASH_RET, T_CRASH_FAIL, T_CRASH_LONG, T_BLOCK_FAIL };

#define NACTORS 1000

typedef struct term_rec {
  int terms;
  bw_reason_t reason;
} term_rec_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static term_rec_t recs[NACTORS]; /* under sync_ */
static int after_fail;           /* under sync_: must stay 0 */
static int term_by_kind[BW_REASON__COUNT];
static bwt_gate_t gate;

static void reset(void) {
  bwt_lock(&sync_);
  memset(recs, 0, sizeof recs);
  memset(term_by_kind, 0, sizeof term_by_kind);
  after_fail = 0;
  bwt_unlock(&sync_);
}

typedef struct member_state {
  int id;
} member_state_t;

static int member_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((member_state_t *)state)->id = (int)(intptr_t)arg;
  return 0;
}

static int member_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  member_state_t *st = state;
  switch (msg->type) {
  case T_PING:
    bw_reply(ctx, msg, 0, T_PING, &st->id, sizeof st->id);
    return BW_CONTINUE;
  case T_CRASH_RET: {
    int code;
    memcpy(&code, msg->data, sizeof code);
    return code;
  }
  case T_BLOCK_FAIL:
    bwt_gate_pass(&gate);
    /* fall through */
  case T_CRASH_FAIL:
    bw_fail(ctx, -4242, "worker %d failed: %s", st->id, "disk on fire");
    bwt_lock(&sync_);
    after_fail++;
    bwt_unlock(&sync_);
    return BW_CONTINUE;
  case T_CRASH_LONG: {
    char longtext[301];
    memset(longtext, 'x', 300);
    longtext[300] = '\0';
    bw_fail(ctx, BW_ECRASH, "%s", longtext);
  }
  default:
    return BW_CONTINUE;
  }
}

static void member_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  member_state_t *st = state;
  bwt_lock(&sync_);
  recs[st->id].terms++;
  recs[st->id].reason = *reason;
  if (reason->kind >= 0 && reason->kind < BW_REASON__COUNT)
    term_by_kind[reason->kind]++;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t member = {
    .name = "member",
    .state_size = sizeof(member_state_t),
    .init = member_init,
    .handle = member_handle,
    .terminate = member_terminate,
};

static bw_pid_t pids[NACTORS];

static void crash_one_of_many(bool via_fail) {
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  for (int i = 0; i < NACTORS; i++)
    assert_int_equal(bw_spawn(rt, &member, (void *)(intptr_t)i, NULL, &pids[i]), 0);

  const int victim = 500;
  if (via_fail) {
    assert_int_equal(bw_send(rt, pids[victim], T_CRASH_FAIL, NULL, 0), 0);
  } else {
    int code = BW_ECRASH;
    assert_int_equal(bw_send(rt, pids[victim], T_CRASH_RET, &code, sizeof code), 0);
  }
  BWT_AWAIT(&sync_, recs[victim].terms == 1);
  BWT_AWAIT_DEAD(rt, pids[victim]);

  bwt_lock(&sync_);
  term_rec_t v = recs[victim];
  bwt_unlock(&sync_);
  assert_int_equal(v.reason.kind, BW_REASON_CRASH);
  if (via_fail) {
    assert_int_equal(v.reason.code, -4242);
    assert_string_equal(v.reason.text, "worker 500 failed: disk on fire");
  } else {
    assert_int_equal(v.reason.code, BW_ECRASH);
  }

  /* every other actor keeps answering */
  for (int i = 0; i < NACTORS; i++) {
    if (i == victim)
      continue;
    bw_reply_t rep;
    assert_int_equal(bw_call(rt, pids[i], T_PING, NULL, 0, 0, &rep), 0);
    int id;
    memcpy(&id, rep.data, sizeof id);
    assert_int_equal(id, i);
  }
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pids[victim], T_PING, NULL, 0, 0, &rep), BW_ENOPROC);
  assert_int_equal(bw_send(rt, pids[victim], T_PING, NULL, 0), BW_ENOPROC);

  BWT_POLL(bwt_stats(rt).crashed == 1);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, NACTORS - 1);

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  assert_int_equal(s.spawned, NACTORS);
  assert_int_equal(s.exited, NACTORS);
  assert_int_equal(s.crashed, 1);
  assert_int_equal(s.live, 0);
  bwt_assert_accounting(&s);
  bwt_lock(&sync_);
  assert_int_equal(recs[victim].terms, 1);
  assert_int_equal(term_by_kind[BW_REASON_CRASH], 1);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], NACTORS - 1);
  assert_int_equal(after_fail, 0);
  for (int i = 0; i < NACTORS; i++)
    assert_int_equal(recs[i].terms, 1);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_crash_by_return_code(void **state) {
  (void)state;
  crash_one_of_many(false);
}

static void test_crash_by_bw_fail(void **state) {
  (void)state;
  crash_one_of_many(true);
}

static void test_crash_text_truncated(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &member, (void *)(intptr_t)7, NULL, &pid), 0);
  assert_int_equal(bw_send(rt, pid, T_CRASH_LONG, NULL, 0), 0);
  BWT_AWAIT(&sync_, recs[7].terms == 1);
  bwt_lock(&sync_);
  bw_reason_t r = recs[7].reason;
  bwt_unlock(&sync_);
  assert_int_equal(r.kind, BW_REASON_CRASH);
  assert_int_equal(r.code, BW_ECRASH);
  assert_int_equal(strnlen(r.text, BW_REASON_TEXT_MAX), BW_REASON_TEXT_MAX - 1);
  for (unsigned i = 0; i < BW_REASON_TEXT_MAX - 1; i++)
    assert_int_equal(r.text[i], 'x');
  bw_runtime_destroy(rt);
}

static void test_crash_dead_letters_queued(void **state) {
  (void)state;
  reset();
  bwt_gate_init(&gate);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = true;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &member, (void *)(intptr_t)3, &o, &pid), 0);
  assert_int_equal(bw_send(rt, pid, T_BLOCK_FAIL, NULL, 0), 0);
  assert_true(bwt_gate_await_waiting(&gate, 1));
  enum { QUEUED = 5 };
  for (int i = 0; i < QUEUED; i++)
    assert_int_equal(bw_send(rt, pid, T_PING, NULL, 0), 0);
  bwt_gate_open(&gate);
  BWT_AWAIT(&sync_, recs[3].terms == 1);
  BWT_AWAIT_DEAD(rt, pid);

  bwt_lock(&sync_);
  bw_reason_t r = recs[3].reason;
  int af = after_fail;
  bwt_unlock(&sync_);
  /* bw_fail unwinds on a dedicated thread as well */
  assert_int_equal(af, 0);
  assert_int_equal(r.kind, BW_REASON_CRASH);
  assert_int_equal(r.code, -4242);
  assert_string_equal(r.text, "worker 3 failed: disk on fire");

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_EXITED], QUEUED);
  assert_int_equal(s.dead_letters, QUEUED);
  assert_int_equal(s.handled, 1);
  assert_int_equal(s.sent, QUEUED + 1);
  assert_int_equal(s.crashed, 1);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}


/* --- terminate and cleanup, however an actor ends ------------------------------ */

static int term_calls, clean_calls, term_kind = -1;
static bwt_sync_t tc_sync = BWT_SYNC_INIT;
static int tc_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  int *mode = arg;
  *(int *)state = 1;
  if (mode != NULL && *mode == 1)
    return BW_EINVAL; /* a failed init */
  if (mode != NULL && *mode == 2) {
    bw_pid_t peer;
    memcpy(&peer, (const char *)arg + sizeof(int) * 2, sizeof peer);
    bw_link(ctx, peer);
  }
  return 0;
}
static int tc_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_CONTINUE;
}
static void tc_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)state;
  bwt_lock(&tc_sync);
  term_calls++;
  term_kind = reason->kind;
  bwt_unlock_signal(&tc_sync);
}
static void tc_cleanup(void *state) {
  bwt_lock(&tc_sync);
  clean_calls += *(int *)state; /* the state is still there */
  bwt_unlock_signal(&tc_sync);
}
static const bw_behaviour_t tc_b = {.name = "tc", .state_size = sizeof(int), .init = tc_init,
                                    .handle = tc_handle, .terminate = tc_terminate,
                                    .cleanup = tc_cleanup};

static void tc_reset(void) {
  bwt_lock(&tc_sync);
  term_calls = clean_calls = 0;
  term_kind = -1;
  bwt_unlock(&tc_sync);
}

static void test_cleanup_runs_however_it_ends(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p;
  /* killed: no terminate, but cleanup */
  tc_reset();
  assert_int_equal(bw_spawn(rt, &tc_b, NULL, NULL, &p), 0);
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, p, 0, NULL), 0);
  BWT_AWAIT(&tc_sync, clean_calls == 1);
  assert_int_equal(term_calls, 0);
  /* init failed: no terminate, but cleanup */
  tc_reset();
  int fail_mode[4] = {1, 0, 0, 0};
  assert_int_equal(bw_spawn(rt, &tc_b, fail_mode, NULL, &p), BW_EINVAL);
  BWT_AWAIT(&tc_sync, clean_calls == 1);
  assert_int_equal(term_calls, 0);
  /* an ordinary exit: terminate, then cleanup */
  tc_reset();
  assert_int_equal(bw_spawn(rt, &tc_b, NULL, NULL, &p), 0);
  assert_int_equal(bw_exit(rt, p, BW_REASON_SHUTDOWN, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, p, 0, NULL), 0);
  BWT_AWAIT(&tc_sync, clean_calls == 1 && term_calls == 1);
  bw_runtime_destroy(rt);
}

/* An actor linked to one that is killed dies with reason killed, but from
 * an ordinary exit signal: its terminate runs (only the kill itself skips
 * it). Found by the API fuzzer. */
static void test_terminate_after_linked_kill(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  tc_reset();
  bw_pid_t victim, linked;
  assert_int_equal(bw_spawn(rt, &tc_b, NULL, NULL, &victim), 0);
  struct {
    int mode, pad;
    bw_pid_t peer;
  } arg = {2, 0, victim};
  assert_int_equal(bw_spawn(rt, &tc_b, &arg, NULL, &linked), 0);
  assert_int_equal(bw_exit(rt, victim, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, linked, 0, NULL), 0);
  BWT_AWAIT(&tc_sync, clean_calls == 2 && term_calls == 1);
  assert_int_equal(term_kind, BW_REASON_KILLED);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crash_by_return_code),
      cmocka_unit_test(test_crash_by_bw_fail),
      cmocka_unit_test(test_crash_text_truncated),
      cmocka_unit_test(test_crash_dead_letters_queued),
      cmocka_unit_test(test_cleanup_runs_however_it_ends),
      cmocka_unit_test(test_terminate_after_linked_kill),
  };
  return BWT_RUN_SUITE(tests);
}
