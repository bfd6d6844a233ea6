/*
 * Who is my supervisor? bw_parent and bw_child_id (actor.h) for each way an
 * actor is started: one_for_one children, simple_one_for_one children,
 * nested supervisors, after restarts, bw_sup_start_child, and plain spawns
 * with and without link. Also the lifetime of a dynamic child's argument
 * (supervisor.h, bw_sup_start_dynamic): a restart gets the same pointer.
 */
#include "support.h"

enum { MSG_WHO = 1, MSG_CRASH, MSG_SPAWN };

/* What a child says about itself, in init and now. */
typedef struct who {
  bw_pid_t self, parent, init_parent;
  char id[BW_SUP_ID_MAX];
  char init_id[BW_SUP_ID_MAX];
  bool has_id;
  void *arg;
} who_t;

static void copy_id(char *dst, const char *id) {
  snprintf(dst, BW_SUP_ID_MAX, "%s", id != NULL ? id : "");
}

static int who_init(bw_ctx_t *ctx, void *st, void *arg) {
  who_t *w = st;
  w->init_parent = bw_parent(ctx);
  copy_id(w->init_id, bw_child_id(ctx));
  w->arg = arg;
  return 0;
}

static int spawn_plain(bw_ctx_t *ctx, bool link, bw_pid_t *out);

static int who_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  who_t *w = st;
  switch (m->type) {
  case MSG_WHO:
    w->self = bw_self(ctx);
    w->parent = bw_parent(ctx);
    w->has_id = bw_child_id(ctx) != NULL;
    copy_id(w->id, bw_child_id(ctx));
    bw_reply(ctx, m, 0, MSG_WHO, w, sizeof *w);
    return BW_CONTINUE;
  case MSG_CRASH:
    bw_fail(ctx, BW_ECRASH, "asked to");
  case MSG_SPAWN: { /* spawns a child, with link if the payload says so */
    bw_pid_t p = BW_PID_NONE;
    int rc = spawn_plain(ctx, *(const bool *)m->data, &p);
    bw_reply(ctx, m, rc, MSG_SPAWN, &p, sizeof p);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t who_b = {.name = "who", .state_size = sizeof(who_t),
                                     .init = who_init, .handle = who_handle};

static int spawn_plain(bw_ctx_t *ctx, bool link, bw_pid_t *out) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.link = link;
  return bw_spawn(bw_ctx_runtime(ctx), &who_b, NULL, &o, out);
}

static who_t ask(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t r;
  who_t w;
  assert_int_equal(bw_call(rt, pid, MSG_WHO, NULL, 0, 0, &r), 0);
  assert_int_equal(r.len, sizeof w);
  memcpy(&w, r.data, sizeof w);
  assert_int_equal(w.self, pid);
  /* init saw what the handler sees */
  assert_int_equal(w.init_parent, w.parent);
  assert_string_equal(w.init_id, w.id);
  return w;
}

static bw_pid_t child(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_sup_child_pid(rt, sup, id, &p), 0);
  return p;
}

/* Crashes pid; returns once its supervisor has answered a call queued
 * after the exit (so the restart is done: no backoff here). */
static void crash_and_settle(bw_runtime_t *rt, bw_pid_t sup, bw_pid_t pid) {
  assert_int_equal(bw_send(rt, pid, MSG_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, pid, 0, NULL), 0);
  bw_child_counts_t cc;
  BWT_POLL(bw_sup_count_children(rt, sup, &cc) == 0 && cc.active == cc.specs);
}

static bw_runtime_t *rt_new(void) { return bwt_runtime(2, true); }

/* --- one_for_one ---------------------------------------------------------- */

static const bw_child_spec_t ofo_kids[] = {{.id = "a", .behaviour = &who_b},
                                           {.id = "b", .behaviour = &who_b}};
static const bw_sup_spec_t ofo = {.name = "ofo", .strategy = BW_ONE_FOR_ONE,
                                  .intensity = 10, .children = ofo_kids, .nchildren = 2};

static void test_one_for_one(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &ofo, &sup, NULL), 0);
  bw_pid_t a = child(rt, sup, "a");
  who_t w = ask(rt, a);
  assert_int_equal(w.parent, sup);
  assert_true(w.has_id);
  assert_string_equal(w.id, "a");
  assert_string_equal(ask(rt, child(rt, sup, "b")).id, "b");
  /* after a restart: a new pid, the same parent and id */
  crash_and_settle(rt, sup, a);
  bw_pid_t a2 = child(rt, sup, "a");
  assert_int_not_equal(a2, a);
  w = ask(rt, a2);
  assert_int_equal(w.parent, sup);
  assert_string_equal(w.id, "a");
  bw_runtime_destroy(rt);
}

/* --- bw_sup_start_child ---------------------------------------------------- */

static void test_start_child(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup, p;
  assert_int_equal(bw_supervisor_start(rt, &ofo, &sup, NULL), 0);
  static const bw_child_spec_t extra = {.id = "extra", .behaviour = &who_b};
  assert_int_equal(bw_sup_start_child(rt, sup, &extra, &p), 0);
  who_t w = ask(rt, p);
  assert_int_equal(w.parent, sup);
  assert_string_equal(w.id, "extra");
  bw_runtime_destroy(rt);
}

/* --- simple_one_for_one, and the argument of dynamic children ---------------- */

static const bw_child_spec_t tmpl[] = {{.id = "agent", .behaviour = &who_b}};
static const bw_sup_spec_t sofo = {.name = "agents", .strategy = BW_SIMPLE_ONE_FOR_ONE,
                                   .intensity = 10, .children = tmpl, .nchildren = 1};

static void test_simple_one_for_one(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup, d0, d1;
  assert_int_equal(bw_supervisor_start(rt, &sofo, &sup, NULL), 0);
  /* the argument: the caller's memory, kept alive for the child's life */
  static char arg0[] = "config of d0", arg1[] = "config of d1";
  assert_int_equal(bw_sup_start_dynamic(rt, sup, arg0, &d0), 0);
  assert_int_equal(bw_sup_start_dynamic(rt, sup, arg1, &d1), 0);
  who_t w = ask(rt, d0);
  assert_int_equal(w.parent, sup);
  assert_string_equal(w.id, "agent"); /* the template's id, for every dynamic child */
  assert_ptr_equal(w.arg, arg0);
  assert_string_equal(ask(rt, d1).id, "agent");
  /* a restart: the same parent and id, and the very same argument pointer */
  crash_and_settle(rt, sup, d0);
  bw_child_info_t info[2];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 2, &n), 0);
  assert_int_equal(n, 2);
  bw_pid_t again = info[0].pid == d1 ? info[1].pid : info[0].pid;
  assert_int_not_equal(again, d0);
  w = ask(rt, again);
  assert_int_equal(w.parent, sup);
  assert_string_equal(w.id, "agent");
  assert_ptr_equal(w.arg, arg0);
  assert_string_equal((const char *)w.arg, "config of d0");
  bw_runtime_destroy(rt);
}

/* --- nested supervisors ------------------------------------------------------ */

static const bw_child_spec_t leaf_kids[] = {{.id = "w", .behaviour = &who_b}};
static const bw_sup_spec_t leaf = {.name = "leaf", .strategy = BW_ONE_FOR_ONE,
                                   .intensity = 10, .children = leaf_kids, .nchildren = 1};
static const bw_child_spec_t root_kids[] = {{.id = "top", .behaviour = &who_b},
                                            {.id = "mid", .supervisor = &leaf}};
static const bw_sup_spec_t root = {.name = "root", .strategy = BW_ONE_FOR_ONE,
                                   .intensity = 10, .children = root_kids, .nchildren = 2};

static void test_nested(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &root, &sup, NULL), 0);
  bw_pid_t mid = child(rt, sup, "mid");
  assert_int_equal(ask(rt, child(rt, sup, "top")).parent, sup);
  who_t w = ask(rt, child(rt, mid, "w"));
  assert_int_equal(w.parent, mid); /* its own supervisor, not the root */
  assert_string_equal(w.id, "w");
  /* the nested supervisor is restarted by the root: its new child names
   * the new supervisor */
  assert_int_equal(bw_exit(rt, mid, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, mid, 0, NULL), 0);
  bw_child_counts_t cc;
  bw_pid_t mid2 = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, "mid", &mid2) == 0 && mid2 != mid &&
           bw_sup_count_children(rt, mid2, &cc) == 0 && cc.active == 1);
  w = ask(rt, child(rt, mid2, "w"));
  assert_int_equal(w.parent, mid2);
  assert_string_equal(w.id, "w");
  bw_runtime_destroy(rt);
}

/* --- outside a tree ------------------------------------------------------------ */

static void test_plain_spawns(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_new();
  bw_pid_t a, linked, unlinked;
  assert_int_equal(bw_spawn(rt, &who_b, NULL, NULL, &a), 0);
  who_t w = ask(rt, a);
  assert_int_equal(w.parent, BW_PID_NONE); /* spawned from main */
  assert_false(w.has_id);
  bw_reply_t r;
  bool link = true;
  assert_int_equal(bw_call(rt, a, MSG_SPAWN, &link, sizeof link, 0, &r), 0);
  memcpy(&linked, r.data, sizeof linked);
  w = ask(rt, linked);
  assert_int_equal(w.parent, a); /* spawn_link: the spawner */
  assert_false(w.has_id);
  link = false;
  assert_int_equal(bw_call(rt, a, MSG_SPAWN, &link, sizeof link, 0, &r), 0);
  memcpy(&unlinked, r.data, sizeof unlinked);
  assert_int_equal(ask(rt, unlinked).parent, BW_PID_NONE); /* nobody answers for it */
  assert_int_equal(bw_parent(NULL), BW_PID_NONE);
  assert_null(bw_child_id(NULL));
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_for_one),
      cmocka_unit_test(test_start_child),
      cmocka_unit_test(test_simple_one_for_one),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_plain_spawns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
