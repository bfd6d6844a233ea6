/*
 * Requests by registered name (registry.h): bw_call_named, bw_request_named
 * and bw_send_named resolve the name when they send, so they reach a
 * supervised child restarted under it; a name without a live holder is
 * BW_ENOPROC (BW_ENOTFOUND for bw_send_named, its older code).
 */
#include "support.h"

enum { T_WHO = 1, T_CRASH, T_HOLD, T_MOVE, T_GO, T_RESULT, T_HELD };

/* The service: answers T_WHO with its pid; holds T_HOLD (telling its
 * report inbox, the init argument, when one arrives). */
typedef struct svc {
  bw_pid_t report;
} svc_t;

static int svc_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx;
  ((svc_t *)st)->report = arg != NULL ? *(const bw_pid_t *)arg : BW_PID_NONE;
  return 0;
}

static void free_it(void *p) { free(p); }

static int svc_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  svc_t *s = st;
  bw_pid_t me = bw_self(ctx);
  switch (m->type) {
  case T_WHO:
    bw_reply(ctx, m, 0, T_WHO, &me, sizeof me);
    return BW_CONTINUE;
  case T_CRASH:
    bw_fail(ctx, BW_ECRASH, "told to");
  case T_HOLD:
    if (s->report != BW_PID_NONE)
      bw_send(bw_ctx_runtime(ctx), s->report, T_HELD, NULL, 0);
    return BW_CONTINUE;
  case T_MOVE: {
    char *p = malloc(300);
    memset(p, 'x', 300);
    bw_reply_move(ctx, m, 0, T_MOVE, p, 300, free_it);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t svc_b = {.name = "svc", .state_size = sizeof(svc_t),
                                     .init = svc_init, .handle = svc_handle};

static bw_pid_t report_pid; /* the test's inbox, for the service's notes */
static const bw_child_spec_t kids[] = {
    {.id = "svc", .behaviour = &svc_b, .arg = &report_pid, .name = "svc"}};
static const bw_sup_spec_t tree = {.name = "named_root", .strategy = BW_ONE_FOR_ONE,
                                   .intensity = 1000, .period_ms = 1000, .children = kids,
                                   .nchildren = 1};

static bw_pid_t who(bw_runtime_t *rt, const char *name) {
  bw_reply_t r;
  assert_int_equal(bw_call_named(rt, name, T_WHO, NULL, 0, 0, &r), 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.len, sizeof(bw_pid_t));
  bw_pid_t p;
  memcpy(&p, r.data, sizeof p);
  return p;
}

/* Crashes the holder of "svc" and waits for its successor. */
static bw_pid_t restart_svc(bw_runtime_t *rt, bw_pid_t sup, bw_pid_t old) {
  assert_int_equal(bw_send(rt, old, T_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, old, 0, NULL), 0);
  bw_pid_t now = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, "svc", &now) == 0 && now != old);
  return now;
}

static void finish(bw_runtime_t *rt) {
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_call_named_follows_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &tree, &sup, NULL), 0);
  bw_pid_t p1 = who(rt, "svc"), p;
  assert_int_equal(bw_sup_child_pid(rt, sup, "svc", &p), 0);
  assert_int_equal(p1, p);
  bw_pid_t p2 = restart_svc(rt, sup, p1);
  /* a pid kept from a whereis is stale now; the name is not */
  bw_reply_t r;
  assert_int_equal(bw_call(rt, p1, T_WHO, NULL, 0, 0, &r), BW_ENOPROC);
  assert_int_equal(who(rt, "svc"), p2);
  bw_pid_t p3 = restart_svc(rt, sup, p2);
  assert_int_equal(who(rt, "svc"), p3);
  assert_int_equal(bw_send_named(rt, "svc", T_WHO, NULL, 0), 0);
  finish(rt);
}

/* A client actor: on T_GO (payload: a name) requests T_WHO by name and
 * reports the outcome (rc or the reply's status, and the pid) to report. */
typedef struct result {
  int rc;
  bw_pid_t pid;
} result_t;

static int client_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  result_t res = {0, BW_PID_NONE};
  if (m->flags & BW_MSGF_REPLY) {
    res.rc = m->status;
    if (m->status == 0)
      memcpy(&res.pid, m->data, sizeof res.pid);
    bw_send(rt, report_pid, T_RESULT, &res, sizeof res);
  } else if (m->type == T_GO) {
    uint64_t ref;
    res.rc = bw_request_named(ctx, m->data, T_WHO, NULL, 0, 0, &ref);
    if (res.rc != 0)
      bw_send(rt, report_pid, T_RESULT, &res, sizeof res);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t client_b = {.name = "client", .handle = client_handle};

static result_t ask_by_actor(bw_runtime_t *rt, bw_inbox_t *ib, bw_pid_t client, const char *name) {
  assert_int_equal(bw_send(rt, client, T_GO, name, strlen(name) + 1), 0);
  const bw_msg_t *m = NULL;
  assert_int_equal(bw_inbox_receive_match(ib, T_RESULT, 0, BWT_WAIT_SECONDS * 1000u, &m), 0);
  result_t res;
  memcpy(&res, m->data, sizeof res);
  return res;
}

static void test_request_named_from_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib;
  assert_int_equal(bw_inbox_new(rt, NULL, &ib), 0);
  report_pid = bw_inbox_pid(ib);
  bw_pid_t sup, client;
  assert_int_equal(bw_supervisor_start(rt, &tree, &sup, NULL), 0);
  assert_int_equal(bw_spawn(rt, &client_b, NULL, NULL, &client), 0);
  bw_pid_t p1;
  assert_int_equal(bw_sup_child_pid(rt, sup, "svc", &p1), 0);
  result_t res = ask_by_actor(rt, ib, client, "svc");
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.pid, p1);
  bw_pid_t p2 = restart_svc(rt, sup, p1);
  res = ask_by_actor(rt, ib, client, "svc");
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.pid, p2);
  /* nobody holds it: refused at once, the request dead-lettered noproc */
  bw_runtime_stats_t s0 = bwt_stats(rt);
  res = ask_by_actor(rt, ib, client, "nobody");
  assert_int_equal(res.rc, BW_ENOPROC);
  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.dead_by_reason[BW_DL_NOPROC] - s0.dead_by_reason[BW_DL_NOPROC], 1);
  /* outside an actor */
  uint64_t ref;
  assert_int_equal(bw_request_named(NULL, "svc", T_WHO, NULL, 0, 0, &ref), BW_ENOTACTOR);
  bw_inbox_destroy(ib);
  report_pid = BW_PID_NONE;
  finish(rt);
}

static void test_no_live_holder(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_reply_t r;
  bw_runtime_stats_t s0 = bwt_stats(rt);
  assert_int_equal(bw_call_named(rt, "nobody", T_WHO, NULL, 0, 0, &r), BW_ENOPROC);
  assert_int_equal(bw_send_named(rt, "nobody", T_WHO, NULL, 0), BW_ENOTFOUND);
  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.dead_by_reason[BW_DL_NOPROC] - s0.dead_by_reason[BW_DL_NOPROC], 2);
  /* registered with bw_register, and its holder gone: the entry stays
   * but names nobody */
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &svc_b, NULL, NULL, &p), 0);
  assert_int_equal(bw_register(rt, "late", p), 0);
  assert_int_equal(bw_call_named(rt, "late", T_WHO, NULL, 0, 0, &r), 0);
  assert_int_equal(bw_send(rt, p, T_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, p, 0, NULL), 0);
  assert_int_equal(bw_call_named(rt, "late", T_WHO, NULL, 0, 0, &r), BW_ENOPROC);
  /* re-registered to another actor: reaches that one */
  bw_pid_t q;
  assert_int_equal(bw_spawn(rt, &svc_b, NULL, NULL, &q), 0);
  assert_int_equal(bw_register(rt, "late", q), 0);
  assert_int_equal(who(rt, "late"), q);
  finish(rt);
}

/* bw_call_named on another thread, for the cases main must drive. */
typedef struct named_call {
  bw_runtime_t *rt;
  uint32_t type;
  uint64_t timeout_ms;
  int rc;
} named_call_t;

static void *call_thread(void *p) {
  named_call_t *c = p;
  bw_reply_t r;
  c->rc = bw_call_named(c->rt, "svc", c->type, NULL, 0, c->timeout_ms, &r);
  return NULL;
}

static void test_call_named_deadline_and_death(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib;
  assert_int_equal(bw_inbox_new(rt, NULL, &ib), 0);
  report_pid = bw_inbox_pid(ib);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &tree, &sup, NULL), 0);
  const bw_msg_t *m;
  /* a deadline on the runtime's clock */
  named_call_t c = {rt, T_HOLD, 100, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, call_thread, &c), 0);
  assert_int_equal(bw_inbox_receive_match(ib, T_HELD, 0, BWT_WAIT_SECONDS * 1000u, &m), 0);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, BW_ETIMEDOUT);
  /* the holder dies with the request: BW_ENOPROC */
  c = (named_call_t){rt, T_HOLD, 0, 1};
  assert_int_equal(pthread_create(&th, NULL, call_thread, &c), 0);
  assert_int_equal(bw_inbox_receive_match(ib, T_HELD, 0, BWT_WAIT_SECONDS * 1000u, &m), 0);
  bw_pid_t p;
  assert_int_equal(bw_sup_child_pid(rt, sup, "svc", &p), 0);
  assert_int_equal(bw_send(rt, p, T_CRASH, NULL, 0), 0);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, BW_ENOPROC);
  /* a moved reply is handed over with its destructor */
  bw_reply_t r;
  BWT_POLL(bw_sup_child_pid(rt, sup, "svc", &p) == 0);
  assert_int_equal(bw_call_named(rt, "svc", T_MOVE, NULL, 0, 0, &r), 0);
  assert_non_null(r.ptr);
  assert_int_equal(r.len, 300);
  assert_ptr_equal(r.dtor, free_it);
  assert_int_equal(((char *)r.ptr)[299], 'x');
  r.dtor(r.ptr);
  bw_inbox_destroy(ib);
  report_pid = BW_PID_NONE;
  finish(rt);
}

/* From a handler: refused. */
static int nested_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  bw_reply_t r;
  int rc = bw_call_named(bw_ctx_runtime(ctx), "svc", T_WHO, NULL, 0, 0, &r);
  bw_reply(ctx, m, 0, 0, &rc, sizeof rc);
  return BW_CONTINUE;
}
static const bw_behaviour_t nested_b = {.name = "nested", .handle = nested_handle};

static void test_refusals(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_reply_t r;
  char long_name[BW_NAME_MAX + 2];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  assert_int_equal(bw_call_named(NULL, "svc", T_WHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, NULL, T_WHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, "", T_WHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, long_name, T_WHO, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, "svc", T_WHO, NULL, 0, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, "svc", BW_MSG_SYSTEM_BASE, NULL, 0, 0, &r), BW_EINVAL);
  assert_int_equal(bw_call_named(rt, "svc", T_WHO, NULL, 1, 0, &r), BW_EINVAL);
  char big[BW_MSG_INLINE_MAX + 1] = {0};
  assert_int_equal(bw_call_named(rt, "svc", T_WHO, big, sizeof big, 0, &r), BW_ETOOBIG);
  assert_int_equal(bw_send_named(rt, "", T_WHO, NULL, 0), BW_EINVAL);
  bw_pid_t a;
  assert_int_equal(bw_spawn(rt, &nested_b, NULL, NULL, &a), 0);
  assert_int_equal(bw_call(rt, a, 1, NULL, 0, 0, &r), 0);
  int rc;
  memcpy(&rc, r.data, sizeof rc);
  assert_int_equal(rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_call_named(rt, "svc", T_WHO, NULL, 0, 0, &r), BW_ESHUTDOWN);
  assert_int_equal(bw_send_named(rt, "svc", T_WHO, NULL, 0), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

/* --- calls by name while the holder is restarted again and again ------------ */

typedef struct storm {
  bw_runtime_t *rt;
  int calls, ok, noproc, other;
  int stop; /* atomic */
} storm_t;

static void *storm_calls(void *p) {
  storm_t *s = p;
  while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
    bw_reply_t r;
    int rc = bw_call_named(s->rt, "svc", T_WHO, NULL, 0, 0, &r);
    s->calls++;
    if (rc == 0)
      s->ok++;
    else if (rc == BW_ENOPROC) /* between the exit and the successor's start */
      s->noproc++;
    else
      s->other++;
  }
  return NULL;
}

static void test_calls_across_restarts(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &tree, &sup, NULL), 0);
  storm_t s = {.rt = rt};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, storm_calls, &s), 0);
  bw_pid_t p = who(rt, "svc");
  unsigned long rounds = bwt_scaled(200);
  for (unsigned long i = 0; i < rounds; i++)
    p = restart_svc(rt, sup, p);
  __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
  pthread_join(th, NULL);
  assert_int_equal(s.other, 0); /* never a timeout, never another error */
  assert_int_equal(s.calls, s.ok + s.noproc);
  assert_true(s.calls > 0);
  assert_int_equal(who(rt, "svc"), p); /* the last successor holds it */
  finish(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_call_named_follows_restart),
      cmocka_unit_test(test_request_named_from_actor),
      cmocka_unit_test(test_no_live_holder),
      cmocka_unit_test(test_call_named_deadline_and_death),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_calls_across_restarts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
