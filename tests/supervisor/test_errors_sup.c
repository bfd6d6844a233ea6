/*
 * The error-code table (include/bulwark/ERRORS.md) for supervisor.h and
 * tree.h: every code the table lists for them is produced here by at least
 * one assert (tests/supervisor/test_supervisor.c covers the same API's
 * behaviour; this suite is about the refusals). Codes only reachable on
 * allocation failure (BW_ENOMEM) are not tested.
 *
 * Time-based behaviour (a restart waiting out its backoff) runs on the
 * manual clock; calls from a scheduler thread run in a probe actor. The
 * flags shared with children's init use seq_cst __atomic operations: the
 * simplest correct order, and their cost does not matter here.
 */
#include "support.h"

enum { T_CRASH = 1, T_PING, T_SUPOP };

/* --- children ------------------------------------------------------------------------ */

/* A child's init returns *arg when it has one (a dynamic child's code),
 * else fails once with fail_code when armed. */
static int fail_code; /* atomic: the code kid_init fails with when armed */
static int fail_armed; /* atomic: 1 = the next init fails */

static int kid_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  if (arg != NULL)
    return *(const int *)arg; /* a dynamic child's code */
  if (__atomic_exchange_n(&fail_armed, 0, __ATOMIC_SEQ_CST))
    return __atomic_load_n(&fail_code, __ATOMIC_SEQ_CST);
  return 0;
}

static int kid_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_CRASH)
    bw_fail(ctx, BW_ECRASH, "asked to crash");
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, T_PING, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t kid = {.name = "kid", .init = kid_init, .handle = kid_handle};
static const bw_behaviour_t no_handle = {.name = "no_handle", .init = kid_init};

static void arm_init_failure(int code) {
  __atomic_store_n(&fail_code, code, __ATOMIC_SEQ_CST);
  __atomic_store_n(&fail_armed, 1, __ATOMIC_SEQ_CST);
}

#define KID(ident) {.id = (ident), .behaviour = &kid}

static const bw_child_spec_t two_kids[] = {KID("a"), KID("b")};
static const bw_sup_spec_t two_spec = {
    .name = "two", .strategy = BW_ONE_FOR_ONE, .intensity = 100, .period_ms = 60000,
    .backoff = {.initial_ms = 1000, .max_ms = 1000}, .children = two_kids, .nchildren = 2};

/* the same tree without a name: a second instance beside two_spec's (the
 * root's spec name is registered) */
static const bw_sup_spec_t two_anon = {
    .strategy = BW_ONE_FOR_ONE, .intensity = 100, .period_ms = 60000,
    .backoff = {.initial_ms = 1000, .max_ms = 1000}, .children = two_kids, .nchildren = 2};

static const bw_child_spec_t tmpl[] = {KID("t")};
static const bw_sup_spec_t simple_spec = {
    .name = "simple", .strategy = BW_SIMPLE_ONE_FOR_ONE, .children = tmpl, .nchildren = 1};

/* --- a probe actor: supervisor calls from a scheduler thread ----------------------------- */

enum { SOP_START = 1, SOP_COUNT, SOP_STOP, SOP_TREE, SOP_WHICH, SOP_CHILD_PID };

typedef struct sop {
  int op;
  bw_pid_t sup;
} sop_t;

typedef struct sop_res {
  int rc;
  bw_pid_t pid;
} sop_res_t;

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type != T_SUPOP || msg->len != sizeof(sop_t))
    return kid_handle(ctx, state, msg);
  sop_t q;
  memcpy(&q, msg->data, sizeof q);
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  sop_res_t r = {0, BW_PID_NONE};
  bw_child_counts_t cc;
  bw_child_info_t info[2];
  size_t n;
  char buf[64];
  switch (q.op) {
  case SOP_START:
    r.rc = bw_supervisor_start(rt, &two_spec, &r.pid, NULL);
    break;
  case SOP_COUNT:
    r.rc = bw_sup_count_children(rt, q.sup, &cc);
    break;
  case SOP_WHICH:
    r.rc = bw_sup_which_children(rt, q.sup, info, 2, &n);
    break;
  case SOP_CHILD_PID:
    r.rc = bw_sup_child_pid(rt, q.sup, "a", &r.pid);
    break;
  case SOP_STOP:
    r.rc = bw_sup_stop(rt, q.sup);
    break;
  case SOP_TREE:
    r.rc = bw_tree_json(rt, q.sup, buf, sizeof buf, &n);
    break;
  default:
    r.rc = -9999;
  }
  bw_reply(ctx, msg, 0, T_SUPOP, &r, sizeof r);
  return BW_CONTINUE;
}

static const bw_behaviour_t probe_beh = {.name = "probe", .handle = probe_handle};

static sop_res_t sop(bw_runtime_t *rt, bw_pid_t probe, int op, bw_pid_t sup) {
  sop_t q = {op, sup};
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, probe, T_SUPOP, &q, sizeof q, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof(sop_res_t));
  sop_res_t r;
  memcpy(&r, rep.data, sizeof r);
  return r;
}

/* --- bw_supervisor_validate ----------------------------------------------------------- */

static void expect_invalid(const bw_sup_spec_t *s, const char *child) {
  bw_sup_error_t err;
  memset(&err, 0x5A, sizeof err);
  assert_int_equal(bw_supervisor_validate(s, &err), BW_EINVAL);
  assert_int_equal(err.code, BW_EINVAL);
  assert_string_equal(err.child, child);
  assert_true(err.message[0] != '\0');
  assert_int_equal(bw_supervisor_validate(s, NULL), BW_EINVAL); /* err is optional */
}

static void test_supervisor_validate(void **state) {
  (void)state;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_validate(NULL, &err), BW_EINVAL);
  assert_int_equal(bw_supervisor_validate(&two_spec, &err), 0);
  assert_int_equal(bw_supervisor_validate(&simple_spec, NULL), 0);

  bw_child_spec_t c[2] = {KID("x"), KID("y")};
  bw_sup_spec_t s = {.name = "s", .strategy = BW_ONE_FOR_ONE, .children = c, .nchildren = 2};
  char long_id[BW_SUP_ID_MAX + 1];
  memset(long_id, 'i', BW_SUP_ID_MAX);
  long_id[BW_SUP_ID_MAX] = '\0';
  char long_name[BW_NAME_MAX + 2];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';

  /* children */
  c[1].id = NULL;
  expect_invalid(&s, "#1");
  c[1].id = "";
  expect_invalid(&s, "#1");
  c[1].id = long_id; /* BW_SUP_ID_MAX bytes: one too many */
  expect_invalid(&s, long_id + 1); /* err.child holds at most 63 bytes */
  c[1] = (bw_child_spec_t)KID("y");
  c[1].supervisor = &two_spec; /* both */
  expect_invalid(&s, "y");
  c[1].behaviour = NULL;
  c[1].supervisor = NULL; /* neither */
  expect_invalid(&s, "y");
  c[1].behaviour = &no_handle;
  expect_invalid(&s, "y");
  c[1] = (bw_child_spec_t)KID("y");
  c[1].restart = (bw_restart_t)3;
  expect_invalid(&s, "y");
  c[1].restart = BW_TRANSIENT;
  c[1].type = (bw_child_type_t)2;
  expect_invalid(&s, "y");
  c[1].type = BW_SUPERVISOR; /* without a nested spec */
  expect_invalid(&s, "y");
  c[1].type = BW_WORKER;
  c[1].shutdown_ms = -3;
  expect_invalid(&s, "y");
  c[1].shutdown_ms = BW_SHUTDOWN_INFINITY;
  c[1].overflow = (bw_overflow_t)2;
  expect_invalid(&s, "y");
  c[1].overflow = BW_OVERFLOW_DROP;
  c[1].name = "";
  expect_invalid(&s, "y");
  c[1].name = long_name;
  expect_invalid(&s, "y");
  c[1].name = "fine";
  assert_int_equal(bw_supervisor_validate(&s, &err), 0);
  c[1].id = "x";
  expect_invalid(&s, "x"); /* duplicate */
  c[1].id = "y";

  /* the supervisor's own fields */
  s.name = long_name; /* registered for a root: at most BW_NAME_MAX bytes */
  char cut[BW_SUP_ID_MAX];
  memset(cut, 'n', sizeof cut - 1); /* the name, cut to fit err.child */
  cut[sizeof cut - 1] = '\0';
  expect_invalid(&s, cut);
  long_name[BW_NAME_MAX] = '\0'; /* BW_NAME_MAX bytes: fine */
  assert_int_equal(bw_supervisor_validate(&s, NULL), 0);
  s.name = "s";
  s.strategy = (bw_strategy_t)4;
  expect_invalid(&s, "s");
  s.strategy = BW_REST_FOR_ONE;
  s.intensity = -2;
  expect_invalid(&s, "s");
  s.intensity = 1000001;
  expect_invalid(&s, "s");
  s.intensity = BW_INTENSITY_NONE;
  s.period_ms = 86400001ull;
  expect_invalid(&s, "s");
  s.period_ms = 86400000ull;
  s.backoff.jitter_pct = 101;
  expect_invalid(&s, "s");
  s.backoff.jitter_pct = 100;
  s.backoff.multiplier = 1001; /* not in supervisor.h's list */
  expect_invalid(&s, "s");
  s.backoff.multiplier = 1000;
  assert_int_equal(bw_supervisor_validate(&s, &err), 0);
  s.children = NULL; /* nchildren 2 */
  expect_invalid(&s, "s");
  s.children = c;
  s.strategy = BW_SIMPLE_ONE_FOR_ONE; /* two children */
  expect_invalid(&s, "s");
  s.nchildren = 0;
  expect_invalid(&s, "s");
  s.nchildren = 1;
  assert_int_equal(bw_supervisor_validate(&s, &err), 0);

  /* depth: 32 levels are fine, 33 are not */
  enum { LEVELS = 33 };
  bw_sup_spec_t lv[LEVELS];
  bw_child_spec_t lc[LEVELS];
  for (int i = 0; i < LEVELS; i++) {
    lc[i] = (bw_child_spec_t){.id = "n", .type = BW_SUPERVISOR,
                              .supervisor = i + 1 < LEVELS ? &lv[i + 1] : NULL};
    lv[i] = (bw_sup_spec_t){.name = "lvl", .strategy = BW_ONE_FOR_ONE,
                            .children = i + 1 < LEVELS ? &lc[i] : NULL,
                            .nchildren = i + 1 < LEVELS ? 1 : 0};
  }
  assert_int_equal(bw_supervisor_validate(&lv[1], &err), 0); /* 32 levels */
  expect_invalid(&lv[0], "lvl");                             /* 33 */
}

/* --- bw_supervisor_start --------------------------------------------------------------- */

static int bad_code = -77; /* the init argument of child "bad": its init's result */
static const bw_child_spec_t bad_kids[] = {KID("ok"),
                                           {.id = "bad", .behaviour = &kid, .arg = &bad_code}};
static const bw_sup_spec_t bad_spec = {
    .name = "bad", .strategy = BW_ONE_FOR_ONE, .children = bad_kids, .nchildren = 2};

static void test_supervisor_start(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sup = BW_PID_NONE;
  bw_sup_error_t err;
  bw_sup_spec_t invalid = two_spec;
  invalid.strategy = (bw_strategy_t)9;
  assert_int_equal(bw_supervisor_start(NULL, &two_spec, &sup, &err), BW_EINVAL);
  assert_int_equal(bw_supervisor_start(rt, NULL, &sup, &err), BW_EINVAL);
  assert_int_equal(bw_supervisor_start(rt, &invalid, &sup, &err), BW_EINVAL);
  assert_int_equal(err.code, BW_EINVAL);
  assert_int_equal(bwt_stats(rt).live, 0); /* nothing started */

  /* the second child's init fails: its code, its id and reason; the first
   * is stopped again */
  __atomic_store_n(&fail_armed, 0, __ATOMIC_SEQ_CST);
  bw_pid_t probe;
  assert_int_equal(bw_spawn(rt, &probe_beh, NULL, NULL, &probe), 0);
  uint64_t live0 = bwt_stats(rt).live;
  memset(&err, 0, sizeof err);
  assert_int_equal(bw_supervisor_start(rt, &bad_spec, &sup, &err), -77);
  assert_int_equal(err.code, -77);
  assert_string_equal(err.child, "bad");
  assert_int_equal(err.reason.kind, BW_REASON_CRASH);
  assert_int_equal(err.reason.code, -77);
  BWT_POLL(bwt_stats(rt).live == live0); /* rolled back: nothing left */
  assert_int_equal(bwt_stats(rt).spawned, 3); /* probe, the supervisor, "ok" */

  /* from a scheduler thread */
  assert_int_equal(sop(rt, probe, SOP_START, 0).rc, BW_EWOULDBLOCK);

  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_supervisor_start(rt, &two_spec, &sup, &err), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

/*
 * bw_supervisor_start from a scheduler thread returns BW_EWOULDBLOCK
 * before it spawns anything (it used to leave the unstarted supervisor
 * alive).
 */
static void test_supervisor_start_wrong_thread_leaves_nothing(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t probe;
  assert_int_equal(bw_spawn(rt, &probe_beh, NULL, NULL, &probe), 0);
  uint64_t live0 = bwt_stats(rt).live;
  assert_int_equal(sop(rt, probe, SOP_START, 0).rc, BW_EWOULDBLOCK);
  bool leaked = bwt_stats(rt).live != live0;
  bw_runtime_destroy(rt);
  assert_false(leaked);
}

/* --- the run-time API ------------------------------------------------------------------- */

static bw_pid_t child_of(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_sup_child_pid(rt, sup, id, &p), 0);
  return p;
}

static void test_sup_runtime_api(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  __atomic_store_n(&fail_armed, 0, __ATOMIC_SEQ_CST);
  bw_pid_t sup, simple, probe, p;
  assert_int_equal(bw_supervisor_start(rt, &two_spec, &sup, NULL), 0);
  assert_int_equal(bw_supervisor_start(rt, &simple_spec, &simple, NULL), 0);
  assert_int_equal(bw_spawn(rt, &probe_beh, NULL, NULL, &probe), 0);
  bw_pid_t worker = child_of(rt, sup, "a");
  char long_id[BW_SUP_ID_MAX + 1];
  memset(long_id, 'i', BW_SUP_ID_MAX);
  long_id[BW_SUP_ID_MAX] = '\0';
  bw_child_info_t info[4];
  bw_child_counts_t cc;
  size_t n;

  /* common to all: NULL rt, a pid that is not a supervisor's, a dead pid,
   * a scheduler thread */
  assert_int_equal(bw_sup_which_children(NULL, sup, info, 4, &n), BW_EINVAL);
  assert_int_equal(bw_sup_which_children(rt, sup, info, 4, NULL), BW_EINVAL);
  assert_int_equal(bw_sup_which_children(rt, sup, NULL, 4, &n), BW_EINVAL);
  assert_int_equal(bw_sup_which_children(rt, sup, NULL, 0, &n), 0); /* just the count */
  assert_int_equal(n, 2);
  assert_int_equal(bw_sup_which_children(rt, worker, info, 4, &n), BW_EINVAL);
  assert_int_equal(bw_sup_count_children(NULL, sup, &cc), BW_EINVAL);
  assert_int_equal(bw_sup_count_children(rt, sup, NULL), BW_EINVAL);
  assert_int_equal(bw_sup_count_children(rt, worker, &cc), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, sup, "a", NULL), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, sup, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, sup, "", &p), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, sup, long_id, &p), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, worker, "a", &p), BW_EINVAL);
  assert_int_equal(bw_sup_child_pid(rt, sup, "zz", &p), BW_ENOTFOUND);
  assert_int_equal(bw_sup_start_child(rt, sup, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_sup_start_child(rt, worker, &two_kids[0], &p), BW_EINVAL);
  assert_int_equal(bw_sup_start_dynamic(NULL, simple, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_sup_start_dynamic(rt, worker, NULL, &p), BW_EINVAL);
  assert_int_equal(bw_sup_terminate_child(rt, sup, NULL), BW_EINVAL);
  assert_int_equal(bw_sup_terminate_child(rt, worker, "a"), BW_EINVAL);
  assert_int_equal(bw_sup_terminate_pid(NULL, simple, worker), BW_EINVAL);
  assert_int_equal(bw_sup_terminate_pid(rt, worker, worker), BW_EINVAL);
  assert_int_equal(bw_sup_restart_child(rt, sup, "", &p), BW_EINVAL);
  assert_int_equal(bw_sup_restart_child(rt, worker, "a", &p), BW_EINVAL);
  assert_int_equal(bw_sup_delete_child(rt, sup, long_id), BW_EINVAL);
  assert_int_equal(bw_sup_delete_child(rt, worker, "a"), BW_EINVAL);
  assert_int_equal(bw_sup_stop(NULL, sup), BW_EINVAL);
  assert_int_equal(sop(rt, probe, SOP_COUNT, sup).rc, BW_EWOULDBLOCK);
  assert_int_equal(sop(rt, probe, SOP_WHICH, sup).rc, BW_EWOULDBLOCK);
  assert_int_equal(sop(rt, probe, SOP_CHILD_PID, sup).rc, BW_EWOULDBLOCK);

  /* start_child */
  bw_child_spec_t badc = KID("c");
  badc.restart = (bw_restart_t)7;
  assert_int_equal(bw_sup_start_child(rt, sup, &badc, &p), BW_EINVAL);
  assert_int_equal(bw_sup_start_child(rt, sup, &two_kids[1], &p), BW_EALREADY);
  assert_int_equal(bw_sup_start_child(rt, simple, &two_kids[0], &p), BW_ENOTSUP);
  static const bw_child_spec_t kid_c = KID("c");
  arm_init_failure(-78);
  assert_int_equal(bw_sup_start_child(rt, sup, &kid_c, &p), -78); /* its start error */
  assert_int_equal(bw_sup_child_pid(rt, sup, "c", &p), BW_ENOTFOUND); /* not kept */
  /* a registered name held by a live actor (the root "two" itself) */
  static const bw_child_spec_t named_c = {.id = "c", .behaviour = &kid, .name = "two"};
  assert_int_equal(bw_sup_start_child(rt, sup, &named_c, &p), BW_EEXIST);
  assert_int_equal(bw_sup_child_pid(rt, sup, "c", &p), BW_ENOTFOUND);

  /* start_dynamic */
  assert_int_equal(bw_sup_start_dynamic(rt, sup, NULL, &p), BW_ENOTSUP);
  static const int dyn_fail = -79;
  assert_int_equal(bw_sup_start_dynamic(rt, simple, (void *)&dyn_fail, &p), -79);
  bw_pid_t dyn = BW_PID_NONE;
  assert_int_equal(bw_sup_start_dynamic(rt, simple, NULL, &dyn), 0);
  assert_true(bw_is_alive(rt, dyn));

  /* terminate_child / terminate_pid */
  assert_int_equal(bw_sup_terminate_child(rt, sup, "zz"), BW_ENOTFOUND);
  assert_int_equal(bw_sup_terminate_child(rt, simple, "t"), BW_ENOTSUP);
  assert_int_equal(bw_sup_terminate_pid(rt, sup, worker), BW_ENOTSUP);
  assert_int_equal(bw_sup_terminate_pid(rt, simple, worker), BW_ENOTFOUND);
  assert_int_equal(bw_sup_terminate_pid(rt, simple, dyn), 0);
  assert_int_equal(bw_sup_terminate_pid(rt, simple, dyn), BW_ENOTFOUND);

  /* restart_child / delete_child: running, restarting, stopped */
  assert_int_equal(bw_sup_restart_child(rt, sup, "a", &p), BW_ERUNNING);
  assert_int_equal(bw_sup_delete_child(rt, sup, "a"), BW_ERUNNING);
  assert_int_equal(bw_sup_restart_child(rt, sup, "zz", &p), BW_ENOTFOUND);
  assert_int_equal(bw_sup_delete_child(rt, sup, "zz"), BW_ENOTFOUND);
  assert_int_equal(bw_sup_restart_child(rt, simple, "t", &p), BW_ENOTSUP);
  assert_int_equal(bw_sup_delete_child(rt, simple, "t"), BW_ENOTSUP);
  /* "a" crashes and waits out its 1000 ms backoff (manual clock) */
  assert_int_equal(bw_send(rt, worker, T_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, worker, 0, NULL), 0); /* its EXIT is queued at sup */
  assert_int_equal(bw_sup_child_pid(rt, sup, "a", &p), BW_ERESTARTING); /* answered at once */
  /* (restart_child and delete_child would wait for the backoff here: see
   * test_sup_restart_delete_while_restarting) */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_POLL(bw_sup_child_pid(rt, sup, "a", &p) == 0);
  assert_true(bw_is_alive(rt, p));
  /* stopped: no pid (ESTATE); a restart that fails gives its start error */
  assert_int_equal(bw_sup_terminate_child(rt, sup, "b"), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "b", &p), BW_ESTATE);
  arm_init_failure(-80);
  assert_int_equal(bw_sup_restart_child(rt, sup, "b", &p), -80);
  assert_int_equal(bw_sup_child_pid(rt, sup, "b", &p), BW_ESTATE); /* still stopped */
  assert_int_equal(bw_sup_delete_child(rt, sup, "b"), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "b", &p), BW_ENOTFOUND);

  /* bw_sup_stop: a dead pid; then everything on a stopped supervisor */
  bw_pid_t stopped;
  /* bw_supervisor_start: the root's name ("two") is held by sup */
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &two_spec, &stopped, &err), BW_EEXIST);
  assert_int_equal(err.code, BW_EEXIST);
  assert_string_equal(err.child, "two");
  assert_non_null(strstr(err.message, "already registered"));
  assert_int_equal(bw_supervisor_start(rt, &two_anon, &stopped, NULL), 0);
  assert_int_equal(bw_sup_stop(rt, stopped), 0);
  assert_int_equal(bw_sup_stop(rt, stopped), BW_ENOPROC);
  assert_int_equal(bw_sup_which_children(rt, stopped, info, 4, &n), BW_ENOPROC);
  assert_int_equal(bw_sup_count_children(rt, stopped, &cc), BW_ENOPROC);
  assert_int_equal(bw_sup_child_pid(rt, stopped, "a", &p), BW_ENOPROC);
  assert_int_equal(bw_sup_start_child(rt, stopped, &kid_c, &p), BW_ENOPROC);
  assert_int_equal(bw_sup_start_dynamic(rt, stopped, NULL, &p), BW_ENOPROC);
  assert_int_equal(bw_sup_terminate_child(rt, stopped, "a"), BW_ENOPROC);
  assert_int_equal(bw_sup_terminate_pid(rt, stopped, worker), BW_ENOPROC);
  assert_int_equal(bw_sup_restart_child(rt, stopped, "a", &p), BW_ENOPROC);
  assert_int_equal(bw_sup_delete_child(rt, stopped, "a"), BW_ENOPROC);
  /* from a scheduler thread: BW_EWOULDBLOCK, and the supervisor goes on
   * (the shutdown exit comes from the calling actor, a stranger to it,
   * and a supervisor ignores exits from strangers) */
  bw_pid_t other;
  assert_int_equal(bw_supervisor_start(rt, &two_anon, &other, NULL), 0);
  assert_int_equal(sop(rt, probe, SOP_STOP, other).rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_sup_count_children(rt, other, &cc), 0); /* after the exit: still up */
  assert_int_equal(cc.active, 2);
  assert_int_equal(bw_sup_stop(rt, other), 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_sup_count_children(rt, sup, &cc), BW_ESHUTDOWN);
  assert_int_equal(bw_sup_which_children(rt, sup, info, 4, &n), BW_ESHUTDOWN);
  assert_int_equal(bw_sup_stop(rt, sup), BW_ESHUTDOWN);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* A worker that traps exits and ignores them: with an infinite shutdown
 * timeout its supervisor stays "exiting" until it is killed. */
static int stubborn_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  (void)arg;
  bw_trap_exit(ctx, true);
  return 0;
}

static const bw_behaviour_t stubborn = {
    .name = "stubborn", .init = stubborn_init, .handle = kid_handle};
static const bw_child_spec_t stubborn_kids[] = {
    {.id = "s", .behaviour = &stubborn, .shutdown_ms = BW_SHUTDOWN_INFINITY}};
static const bw_sup_spec_t stubborn_spec = {
    .name = "stubborn", .strategy = BW_ONE_FOR_ONE, .children = stubborn_kids, .nchildren = 1};

typedef struct stop_call {
  bw_runtime_t *rt;
  bw_pid_t sup;
  int rc;
  int done; /* atomic */
} stop_call_t;

static void *stop_thread(void *arg) {
  stop_call_t *c = arg;
  c->rc = bw_sup_stop(c->rt, c->sup);
  __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* A supervisor that is stopping its tree refuses run-time requests with
 * BW_ESHUTDOWN. */
static void test_sup_exiting(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sup, p;
  assert_int_equal(bw_supervisor_start(rt, &stubborn_spec, &sup, NULL), 0);
  bw_pid_t s = child_of(rt, sup, "s");
  /* from no actor: the supervisor takes it as a stop; the exit is queued
   * before the calls below (one thread's pushes keep their order) */
  assert_int_equal(bw_exit(rt, sup, BW_REASON_SHUTDOWN, 0, "stop"), 0);
  static const bw_child_spec_t kid_d = KID("d");
  assert_int_equal(bw_sup_start_child(rt, sup, &kid_d, &p), BW_ESHUTDOWN);
  assert_int_equal(bw_sup_terminate_child(rt, sup, "s"), BW_ESHUTDOWN);
  assert_int_equal(bw_sup_restart_child(rt, sup, "s", &p), BW_ESHUTDOWN);
  assert_int_equal(bw_sup_delete_child(rt, sup, "s"), BW_ESHUTDOWN);
  assert_true(bw_is_alive(rt, sup)); /* still waiting for "s" */
  /* bw_sup_stop's wait has the calls' deadline: BW_ETIMEDOUT, the stop
   * goes on (the manual clock moves until the waiting thread gives up:
   * it cannot finish any other way, "s" never exits by itself) */
  assert_int_equal(bw_sup_set_call_timeout(BW_SUP_CALL_TIMEOUT_MAX + 1), BW_EINVAL);
  assert_int_equal(bw_sup_set_call_timeout(100), 0);
  stop_call_t sc = {.rt = rt, .sup = sup};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, stop_thread, &sc), 0);
  struct timespec dl = bwt_deadline();
  while (!__atomic_load_n(&sc.done, __ATOMIC_SEQ_CST) && !bwt_past(&dl)) {
    assert_int_equal(bw_clock_advance(rt, 100), 0);
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
  pthread_join(th, NULL);
  assert_int_equal(sc.rc, BW_ETIMEDOUT);
  assert_int_equal(bw_sup_set_call_timeout(0), 0);
  assert_true(bw_is_alive(rt, sup));
  assert_int_equal(bw_exit(rt, s, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, sup, 0, NULL), 0);
  bw_runtime_destroy(rt);
}

/*
 * supervisor.h: bw_sup_restart_child and bw_sup_delete_child return
 * BW_ERESTARTING, at once, for a child waiting for its restart (during a
 * backoff); they used to queue behind the restart and block for the whole
 * backoff.
 */
static void test_sup_restart_delete_while_restarting(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sup, p;
  assert_int_equal(bw_supervisor_start(rt, &two_spec, &sup, NULL), 0);
  bw_pid_t worker = child_of(rt, sup, "a");
  assert_int_equal(bw_send(rt, worker, T_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, worker, 0, NULL), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "a", &p), BW_ERESTARTING);
  assert_int_equal(bw_sup_restart_child(rt, sup, "a", &p), BW_ERESTARTING);
  assert_int_equal(bw_sup_delete_child(rt, sup, "a"), BW_ERESTARTING);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_POLL(bw_sup_child_pid(rt, sup, "a", &p) == 0);
  bw_runtime_destroy(rt);
}

/*
 * supervisor.h: "A pid that is not a supervisor's is refused with BW_EINVAL
 * at once", bw_sup_stop included (it used to stop any actor).
 */
static void test_sup_stop_refuses_a_worker(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t w;
  assert_int_equal(bw_spawn(rt, &kid, NULL, NULL, &w), 0);
  int rc = bw_sup_stop(rt, w);
  bool alive = bw_is_alive(rt, w);
  bw_runtime_destroy(rt);
  assert_int_equal(rc, BW_EINVAL);
  assert_true(alive);
}

/* --- tree.h -------------------------------------------------------------------------------- */

static void test_tree_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  __atomic_store_n(&fail_armed, 0, __ATOMIC_SEQ_CST);
  bw_pid_t sup, probe, w;
  assert_int_equal(bw_supervisor_start(rt, &two_spec, &sup, NULL), 0);
  assert_int_equal(bw_spawn(rt, &probe_beh, NULL, NULL, &probe), 0);
  w = child_of(rt, sup, "a");
  char buf[4096];
  size_t len = 12345;

  /* bw_tree_json */
  assert_int_equal(bw_tree_json(NULL, sup, buf, sizeof buf, &len), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, sup, buf, sizeof buf, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, sup, NULL, 10, &len), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, BW_PID_NONE, buf, sizeof buf, &len), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, w, buf, sizeof buf, &len), BW_EINVAL); /* a worker */
  assert_int_equal(sop(rt, probe, SOP_TREE, sup).rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_tree_json(rt, sup, buf, sizeof buf, &len), 0);
  size_t need = len;
  assert_int_equal(strlen(buf), need);
  len = 0;
  assert_int_equal(bw_tree_json(rt, sup, buf, need, &len), BW_ETOOBIG); /* no room for NUL */
  assert_int_equal(len, need);
  assert_string_equal(buf, "");
  len = 0;
  assert_int_equal(bw_tree_json(rt, sup, NULL, 0, &len), BW_ETOOBIG); /* size probe */
  assert_int_equal(len, need);
  bw_pid_t gone;
  assert_int_equal(bw_supervisor_start(rt, &two_anon, &gone, NULL), 0);
  assert_int_equal(bw_sup_stop(rt, gone), 0);
  assert_int_equal(bw_tree_json(rt, gone, buf, sizeof buf, &len), BW_ENOPROC);

  /* decorations: handles are only stored (and compared) until a walk */
  int dummy_breaker, dummy_health;
  bw_breaker_t *br = (bw_breaker_t *)(void *)&dummy_breaker;
  bw_health_t *h = (bw_health_t *)(void *)&dummy_health;
  char long_id[BW_SUP_ID_MAX + 1];
  memset(long_id, 'i', BW_SUP_ID_MAX);
  long_id[BW_SUP_ID_MAX] = '\0';
  assert_int_equal(bw_tree_annotate_breaker(NULL, br), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_breaker(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_breaker(NULL, br), BW_EINVAL);
  assert_int_equal(bw_tree_forget_breaker(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_breaker(rt, br), BW_ENOTFOUND);
  assert_int_equal(bw_tree_annotate_breaker(rt, br), 0);
  assert_int_equal(bw_tree_annotate_breaker(rt, br), 0); /* already present */
  assert_int_equal(bw_tree_forget_breaker(rt, br), 0);
  assert_int_equal(bw_tree_forget_breaker(rt, br), BW_ENOTFOUND);

  assert_int_equal(bw_tree_annotate_health(NULL, h), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_health(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_health(NULL, h), BW_EINVAL);
  assert_int_equal(bw_tree_forget_health(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_health(rt, h), BW_ENOTFOUND);
  assert_int_equal(bw_tree_annotate_health(rt, h), 0);
  assert_int_equal(bw_tree_forget_health(rt, h), 0);

  assert_int_equal(bw_tree_annotate_bulkhead(NULL, w, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, ""), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, long_id), BW_EINVAL);
  assert_int_equal(bw_tree_forget_bulkhead(NULL, w, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_bulkhead(rt, BW_PID_NONE, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_bulkhead(rt, w, long_id), BW_EINVAL);
  assert_int_equal(bw_tree_forget_bulkhead(rt, w, NULL), BW_ENOTFOUND);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, "pool"), 0);
  assert_int_equal(bw_tree_forget_bulkhead(rt, BW_PID_NONE, "pool"), 0);

  /* the registry holds 256 entries for all runtimes */
  assert_int_equal(bw_tree_forget_all(NULL), BW_EINVAL);
  int added = 0;
  for (bw_pid_t fake = 1; fake <= 256; fake++)
    added += bw_tree_annotate_bulkhead(rt, fake, NULL) == 0;
  assert_int_equal(added, 256);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, 257, NULL), BW_ELIMIT);
  assert_int_equal(bw_tree_annotate_breaker(rt, br), BW_ELIMIT);
  assert_int_equal(bw_tree_annotate_health(rt, h), BW_ELIMIT);
  assert_int_equal(bw_tree_forget_all(rt), 256);
  assert_int_equal(bw_tree_forget_all(rt), 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_tree_json(rt, sup, buf, sizeof buf, &len), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_supervisor_validate),
      cmocka_unit_test(test_supervisor_start),
      cmocka_unit_test(test_supervisor_start_wrong_thread_leaves_nothing),
      cmocka_unit_test(test_sup_runtime_api),
      cmocka_unit_test(test_sup_exiting),
      cmocka_unit_test(test_sup_restart_delete_while_restarting),
      cmocka_unit_test(test_sup_stop_refuses_a_worker),
      cmocka_unit_test(test_tree_h),
  };
  return BWT_RUN_SUITE(tests);
}
