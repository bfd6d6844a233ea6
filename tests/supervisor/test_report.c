/*
 * The supervisor's reports to the logger (supervisor/report.c): a child's
 * crash and its restart, with the child's id, pid and path in the tree
 * and the reason's kind, code name, bw_strerror text and text; a
 * supervisor giving up past its intensity and its parent's report of it;
 * a failed start; started children at info only; JSON; no payload in any
 * line. The manual clock: no restart intensity window ever closes.
 */
#include "support.h"

#include "json_check.h"
#include "log_sink.h"

enum { W_CRASH = 1 };

#define SECRET "sk-SECRET-PAYLOAD-4242"

static int w_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == W_CRASH)
    bw_fail(ctx, BW_EINVAL, "boom on request");
  return BW_CONTINUE;
}

static int w_init_fail(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  (void)arg;
  return BW_EIO;
}

static const bw_behaviour_t worker_b = {.name = "worker", .handle = w_handle};
static const bw_behaviour_t broken_b = {.name = "broken", .init = w_init_fail, .handle = w_handle};

/* top (one_for_one) -> inner (one_for_one, 1 restart at most) -> w */
static const bw_child_spec_t inner_kids[] = {{.id = "w", .behaviour = &worker_b}};
static const bw_sup_spec_t inner = {.name = "innerspec",
                                    .strategy = BW_ONE_FOR_ONE,
                                    .intensity = 1,
                                    .period_ms = 10000,
                                    .children = inner_kids,
                                    .nchildren = 1};
static const bw_child_spec_t top_kids[] = {{.id = "inner", .supervisor = &inner}};
static const bw_sup_spec_t top = {.name = "top",
                                  .strategy = BW_ONE_FOR_ONE,
                                  .intensity = 5,
                                  .period_ms = 10000,
                                  .children = top_kids,
                                  .nchildren = 1};

static const bw_child_spec_t bad_kids[] = {{.id = "w", .behaviour = &broken_b}};
static const bw_sup_spec_t bad = {
    .name = "bad", .strategy = BW_ONE_FOR_ONE, .children = bad_kids, .nchildren = 1};

typedef struct tree {
  bw_runtime_t *rt;
  bw_pid_t top, inner, w;
} tree_t;

static bw_runtime_t *rt_with(int level, int format) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.workers = 2;
  o.manual_clock = true;
  o.log_level = level;
  o.log_format = format;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  bwt_log_reset();
  assert_int_equal(bw_log_set_sink(rt, bwt_log_sink, NULL), 0);
  return rt;
}

/* A child's pid once it runs (after a restart, the new one). */
static bw_pid_t child_pid(bw_runtime_t *rt, bw_pid_t sup, const char *id, bw_pid_t not) {
  bw_pid_t pid = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, id, &pid) == 0 && pid != not);
  return pid;
}

static tree_t start_tree(int level, int format) {
  tree_t t = {.rt = rt_with(level, format)};
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(t.rt, &top, &t.top, &err), 0);
  t.inner = child_pid(t.rt, t.top, "inner", BW_PID_NONE);
  t.w = child_pid(t.rt, t.inner, "w", BW_PID_NONE);
  return t;
}

/* Number of kept records with this message. */
static unsigned count_msg(const char *msg) {
  unsigned n = 0;
  pthread_mutex_lock(&bwt_log_g.mx);
  for (unsigned i = 0; i < bwt_log_g.count && i < BWT_LOG_KEEP; i++)
    n += strcmp(bwt_log_g.recs[i].msg, msg) == 0;
  pthread_mutex_unlock(&bwt_log_g.mx);
  return n;
}

static void test_crash_and_restart_reports(void **state) {
  (void)state;
  tree_t t = start_tree(BW_LOG_NOTICE, BW_LOG_TEXT);
  assert_int_equal(bwt_log_count(), 0); /* started children: info, below notice */
  assert_int_equal(bw_send(t.rt, t.w, W_CRASH, SECRET, sizeof SECRET), 0);
  BWT_POLL(count_msg("child restarted") == 1);
  bw_pid_t w2 = child_pid(t.rt, t.inner, "w", t.w);

  const bwt_log_rec *c = bwt_log_find("child crashed", t.w);
  assert_non_null(c);
  assert_int_equal(c->level, BW_LOG_ERROR);
  assert_string_equal(c->actor, "w");
  assert_string_equal(c->path, "top/inner/w");
  assert_string_equal(bwt_log_field(c, "reason"), "crash");
  assert_string_equal(bwt_log_field(c, "code"), "BW_EINVAL");
  assert_string_equal(bwt_log_field(c, "error"), bw_strerror(BW_EINVAL));
  assert_string_equal(bwt_log_field(c, "detail"), "boom on request");
  assert_string_equal(bwt_log_field(c, "restarts"), "0");
  char pid[32], want[512];
  bw_pid_format(t.w, pid, sizeof pid);
  snprintf(want, sizeof want,
           "error top/inner/w %s: child crashed reason=crash code=BW_EINVAL error=\"%s\" "
           "detail=\"boom on request\" restarts=0\n",
           pid, bw_strerror(BW_EINVAL));
  assert_string_equal(bwt_log_after_time(c->line), want);

  const bwt_log_rec *r = bwt_log_find("child restarted", w2);
  assert_non_null(r);
  assert_int_equal(r->level, BW_LOG_NOTICE);
  assert_string_equal(r->path, "top/inner/w");
  assert_string_equal(bwt_log_field(r, "restarts"), "1");
  bw_pid_format(w2, pid, sizeof pid);
  snprintf(want, sizeof want, "notice top/inner/w %s: child restarted restarts=1\n", pid);
  assert_string_equal(bwt_log_after_time(r->line), want);

  assert_int_equal(bwt_log_count(), 2); /* the crash, the restart: nothing else */
  assert_false(bwt_log_any_line_has("SECRET"));
  bw_runtime_destroy(t.rt);
}

/* Past its intensity the inner supervisor gives up (its report), exits,
 * and its parent reports that child's crash and restarts it. */
static void test_escalation_reports(void **state) {
  (void)state;
  tree_t t = start_tree(BW_LOG_NOTICE, BW_LOG_TEXT);
  assert_int_equal(bw_send(t.rt, t.w, W_CRASH, SECRET, sizeof SECRET), 0);
  BWT_POLL(count_msg("child restarted") == 1);
  bw_pid_t w2 = child_pid(t.rt, t.inner, "w", t.w);
  assert_int_equal(bw_send(t.rt, w2, W_CRASH, SECRET, sizeof SECRET), 0);
  BWT_POLL(count_msg("child restarted") == 2); /* the inner supervisor, by top */

  const bwt_log_rec *g =
      bwt_log_find("supervisor gave up: too many restarts; stopping its children", t.inner);
  assert_non_null(g);
  assert_int_equal(g->level, BW_LOG_ERROR);
  assert_string_equal(g->actor, "innerspec");
  assert_string_equal(g->path, "top/inner");
  assert_string_equal(bwt_log_field(g, "reason"), "crash");
  assert_string_equal(bwt_log_field(g, "code"), "BW_ELIMIT");
  assert_string_equal(bwt_log_field(g, "restarts"), "2");
  assert_string_equal(bwt_log_field(g, "intensity"), "1");
  assert_string_equal(bwt_log_field(g, "period_ms"), "10000");
  assert_non_null(strstr(bwt_log_field(g, "detail"), "max restart intensity"));

  const bwt_log_rec *c = bwt_log_find("child crashed", t.inner);
  assert_non_null(c);
  assert_string_equal(c->path, "top/inner");
  assert_string_equal(bwt_log_field(c, "code"), "BW_ELIMIT");
  assert_string_equal(bwt_log_field(c, "restarts"), "0");
  const bwt_log_rec *r = bwt_log_find("child restarted", BW_PID_NONE);
  assert_non_null(r);
  assert_string_equal(r->path, "top/inner/w"); /* the first restart, of w */
  assert_int_equal(count_msg("child crashed"), 3); /* w twice, inner once */
  assert_false(bwt_log_any_line_has("SECRET"));
  bw_runtime_destroy(t.rt);
}

static void test_start_failure_report(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_NOTICE, BW_LOG_TEXT);
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &bad, &sup, &err), BW_EIO);
  const bwt_log_rec *f = bwt_log_find("child failed to start", BW_PID_NONE);
  assert_non_null(f);
  assert_int_equal(f->level, BW_LOG_ERROR);
  assert_string_equal(f->path, "bad/w");
  assert_string_equal(bwt_log_field(f, "code"), "BW_EIO");
  assert_string_equal(bwt_log_field(f, "error"), bw_strerror(BW_EIO));
  bw_runtime_destroy(rt);
}

/* At info, started children show; the stop of the tree shows, normally. */
static void test_info_level_progress(void **state) {
  (void)state;
  tree_t t = start_tree(BW_LOG_INFO, BW_LOG_TEXT);
  const bwt_log_rec *s = bwt_log_find("child started", t.w);
  assert_non_null(s);
  assert_int_equal(s->level, BW_LOG_INFO);
  assert_string_equal(s->path, "top/inner/w");
  assert_non_null(bwt_log_find("child started", t.inner));
  assert_int_equal(bw_sup_stop(t.rt, t.top), 0);
  BWT_POLL(!bw_is_alive(t.rt, t.top));
  const bwt_log_rec *st = bwt_log_find("child stopped", t.w);
  assert_non_null(st);
  assert_int_equal(st->level, BW_LOG_INFO);
  assert_string_equal(bwt_log_field(st, "reason"), "shutdown");
  assert_null(bwt_log_find("child crashed", BW_PID_NONE));
  bw_runtime_destroy(t.rt);
}

static void test_json_crash_report(void **state) {
  (void)state;
  tree_t t = start_tree(BW_LOG_NOTICE, BW_LOG_JSON);
  assert_int_equal(bw_send(t.rt, t.w, W_CRASH, SECRET, sizeof SECRET), 0);
  BWT_POLL(count_msg("child restarted") == 1);
  const bwt_log_rec *c = bwt_log_find("child crashed", t.w);
  assert_non_null(c);
  char line[BW_LOG_LINE_MAX];
  memcpy(line, c->line, c->len - 1);
  line[c->len - 1] = '\0';
  assert_true(bwt_json_valid(line));
  char pid[32], want[512];
  bw_pid_format(t.w, pid, sizeof pid);
  snprintf(want, sizeof want,
           "\",\"level\":\"error\",\"msg\":\"child crashed\",\"actor\":\"w\",\"pid\":\"%s\","
           "\"path\":\"top/inner/w\",\"reason\":\"crash\",\"code\":\"BW_EINVAL\",\"error\":\"%s\","
           "\"detail\":\"boom on request\",\"restarts\":0}",
           pid, bw_strerror(BW_EINVAL));
  assert_true(bwt_log_is_time(line + 9));
  assert_string_equal(line + 9 + 24, want);
  assert_false(bwt_log_any_line_has("SECRET"));
  bw_runtime_destroy(t.rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crash_and_restart_reports),
      cmocka_unit_test(test_escalation_reports),
      cmocka_unit_test(test_start_failure_report),
      cmocka_unit_test(test_info_level_progress),
      cmocka_unit_test(test_json_crash_report),
  };
  return BWT_RUN_SUITE(tests);
}
