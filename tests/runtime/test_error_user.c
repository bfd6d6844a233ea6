/*
 * Application error codes (error.h, bw_error_register): names and texts
 * that bw_strerror, bw_err_name and the reports built on them show.
 * The table is process-wide: the tests use distinct codes, and the one
 * that fills it runs last.
 */
#include "support.h"
#include "log_sink.h"

#include <limits.h>

enum { APP_EQUOTA = -2001, APP_EBADCFG = -2002, APP_ETHREADS = -3000 };

static void test_register_and_lookup(void **state) {
  (void)state;
  assert_string_equal(bw_strerror(APP_EQUOTA), "unknown error");
  assert_string_equal(bw_err_name(APP_EQUOTA), "BW_UNKNOWN");
  assert_int_equal(bw_error_register(APP_EQUOTA, "APP_EQUOTA", "quota exceeded"), 0);
  assert_string_equal(bw_strerror(APP_EQUOTA), "quota exceeded");
  assert_string_equal(bw_err_name(APP_EQUOTA), "APP_EQUOTA");
  /* the first code of the range is the application's */
  assert_int_equal(bw_error_register(BW_ERR_USER_FIRST, "APP_FIRST", "first"), 0);
  assert_string_equal(bw_strerror(BW_ERR_USER_FIRST), "first");
  /* ours are unchanged, and an unregistered neighbour stays unknown */
  assert_string_equal(bw_err_name(BW_EFULL), "BW_EFULL");
  assert_string_equal(bw_strerror(APP_EQUOTA - 1), "unknown error");
}

static void test_register_again(void **state) {
  (void)state;
  assert_int_equal(bw_error_register(APP_EBADCFG, "APP_EBADCFG", "bad configuration"), 0);
  /* the same again: 0 (a library's init run twice) */
  assert_int_equal(bw_error_register(APP_EBADCFG, "APP_EBADCFG", "bad configuration"), 0);
  assert_int_equal(bw_error_register(APP_EBADCFG, "APP_EBADCFG", "another text"), BW_EEXIST);
  assert_int_equal(bw_error_register(APP_EBADCFG, "APP_OTHER", "bad configuration"), BW_EEXIST);
  assert_string_equal(bw_strerror(APP_EBADCFG), "bad configuration");
}

static void test_register_rejects(void **state) {
  (void)state;
  char long_name[BW_ERR_NAME_MAX + 2], long_text[BW_ERR_TEXT_MAX + 2];
  memset(long_name, 'N', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  memset(long_text, 't', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  /* bulwark's range, 0 and positive codes */
  const int ours[] = {0, 1, INT_MAX, BW_EINVAL, BW__ERR_LAST, -999, BW_ERR_USER_FIRST + 1};
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
    assert_int_equal(bw_error_register(ours[i], "X", "x"), BW_EINVAL);
  assert_string_equal(bw_strerror(BW_EINVAL), "invalid argument");
  assert_int_equal(bw_error_register(-4000, NULL, "x"), BW_EINVAL);
  assert_int_equal(bw_error_register(-4000, "", "x"), BW_EINVAL);
  assert_int_equal(bw_error_register(-4000, "X", NULL), BW_EINVAL);
  assert_int_equal(bw_error_register(-4000, "X", ""), BW_EINVAL);
  assert_int_equal(bw_error_register(-4000, long_name, "x"), BW_EINVAL);
  assert_int_equal(bw_error_register(-4000, "X", long_text), BW_EINVAL);
  /* at the limits exactly: accepted */
  long_name[BW_ERR_NAME_MAX] = '\0';
  long_text[BW_ERR_TEXT_MAX] = '\0';
  assert_int_equal(bw_error_register(-4000, long_name, long_text), 0);
  assert_string_equal(bw_err_name(-4000), long_name);
  assert_string_equal(bw_strerror(-4000), long_text);
  assert_int_equal(bw_error_register(INT_MIN, "APP_MIN", "lowest"), 0);
  assert_string_equal(bw_err_name(INT_MIN), "APP_MIN");
}

/* --- reports: a crash's reason, a supervisor's start error ----------------- */

static int quota_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx, (void)st, (void)m;
  return APP_EQUOTA; /* a crash with the application's code */
}
static const bw_behaviour_t quota_b = {.name = "quota", .handle = quota_handle};

static int badcfg_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx, (void)st, (void)arg;
  return APP_EBADCFG;
}
static const bw_behaviour_t badcfg_b = {.name = "badcfg", .init = badcfg_init,
                                        .handle = quota_handle};

static void test_reports_show_registered(void **state) {
  (void)state;
  assert_int_equal(bw_error_register(APP_EQUOTA, "APP_EQUOTA", "quota exceeded"), 0);
  assert_int_equal(bw_error_register(APP_EBADCFG, "APP_EBADCFG", "bad configuration"), 0);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &quota_b, NULL, NULL, &pid), 0);
  bw_inbox_t *ib; /* watches before the crash, so the reason is the crash's */
  uint64_t ref;
  assert_int_equal(bw_inbox_new(rt, NULL, &ib), 0);
  assert_int_equal(bw_inbox_monitor(ib, pid, &ref), 0);
  assert_int_equal(bw_send(rt, pid, 1, NULL, 0), 0);
  const bw_msg_t *down;
  assert_int_equal(bw_inbox_receive_match(ib, BW_MSG_DOWN, ref, BW_INBOX_FOREVER, &down), 0);
  bw_reason_t why = *(const bw_reason_t *)down->data;
  bw_inbox_destroy(ib);
  assert_int_equal(why.kind, BW_REASON_CRASH);
  assert_int_equal(why.code, APP_EQUOTA);
  assert_string_equal(why.text, "handler returned APP_EQUOTA");
  /* a spawn whose init fails with it */
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.init_error = &why;
  assert_int_equal(bw_spawn(rt, &badcfg_b, NULL, &o, NULL), APP_EBADCFG);
  assert_string_equal(why.text, "init returned APP_EBADCFG");
  /* a supervisor's start error names the text */
  static const bw_child_spec_t kids[] = {{.id = "cfg", .behaviour = &badcfg_b}};
  static const bw_sup_spec_t sup = {.name = "errsup", .strategy = BW_ONE_FOR_ONE,
                                    .children = kids, .nchildren = 1};
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(rt, &sup, NULL, &err), APP_EBADCFG);
  assert_non_null(strstr(err.message, "bad configuration"));
  bw_runtime_destroy(rt);
}

/* The logger's crash report (bulwark/log.h) names the code and its text. */
static void test_crash_report_shows_registered(void **state) {
  (void)state;
  assert_int_equal(bw_error_register(APP_EQUOTA, "APP_EQUOTA", "quota exceeded"), 0);
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.workers = 2;
  o.log_level = BW_LOG_ERROR;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  bwt_log_reset();
  assert_int_equal(bw_log_set_sink(rt, bwt_log_sink, NULL), 0);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &quota_b, NULL, NULL, &pid), 0);
  assert_int_equal(bw_send(rt, pid, 1, NULL, 0), 0);
  BWT_POLL(bwt_log_find("actor crashed", pid) != NULL);
  const bwt_log_rec *r = bwt_log_find("actor crashed", pid);
  assert_string_equal(bwt_log_field(r, "code"), "APP_EQUOTA");
  assert_string_equal(bwt_log_field(r, "error"), "quota exceeded");
  bw_runtime_destroy(rt);
}

/* --- thread safety: registrations while others look up ---------------------- */

#define RACE_PER_THREAD 40

typedef struct race_arg {
  int first; /* codes first, first - 1, ... */
  int seen_bad; /* a lookup that returned a torn or wrong string */
} race_arg_t;

static void *race_register(void *p) {
  race_arg_t *a = p;
  char name[32], text[48];
  for (int i = 0; i < RACE_PER_THREAD; i++) {
    int code = a->first - i;
    snprintf(name, sizeof name, "APP_R%d", -code);
    snprintf(text, sizeof text, "race text %d", -code);
    if (bw_error_register(code, name, text) != 0)
      a->seen_bad++;
    /* every code this thread registered so far reads back whole */
    for (int j = 0; j <= i; j++) {
      snprintf(text, sizeof text, "race text %d", -(a->first - j));
      if (strcmp(bw_strerror(a->first - j), text) != 0)
        a->seen_bad++;
    }
  }
  return NULL;
}

static void *race_lookup(void *p) {
  race_arg_t *a = p;
  char want[48];
  for (int round = 0; round < 200; round++)
    for (int code = -5000; code > -5000 - 2 * RACE_PER_THREAD; code--) {
      const char *t = bw_strerror(code);
      snprintf(want, sizeof want, "race text %d", -code);
      if (strcmp(t, "unknown error") != 0 && strcmp(t, want) != 0)
        a->seen_bad++;
    }
  return NULL;
}

static void test_register_concurrently(void **state) {
  (void)state;
  race_arg_t a = {.first = -5000}, b = {.first = -5000 - RACE_PER_THREAD}, c = {0};
  pthread_t ta, tb, tc;
  assert_int_equal(pthread_create(&ta, NULL, race_register, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, race_register, &b), 0);
  assert_int_equal(pthread_create(&tc, NULL, race_lookup, &c), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_join(tc, NULL);
  assert_int_equal(a.seen_bad, 0);
  assert_int_equal(b.seen_bad, 0);
  assert_int_equal(c.seen_bad, 0);
  assert_string_equal(bw_err_name(-5000 - 2 * RACE_PER_THREAD + 1), "APP_R5079");
}

/* Last: fills the table. */
static void test_register_limit(void **state) {
  (void)state;
  int code = -100000, rc = 0, added = 0;
  while ((rc = bw_error_register(code, "APP_FILL", "filler")) == 0) {
    code--;
    added++;
  }
  assert_int_equal(rc, BW_ELIMIT);
  assert_true(added > 0 && added < (int)BW_ERR_USER_CAP);
  /* what was registered before still reads back; a known code is still 0 */
  assert_string_equal(bw_strerror(APP_EQUOTA), "quota exceeded");
  assert_int_equal(bw_error_register(APP_EQUOTA, "APP_EQUOTA", "quota exceeded"), 0);
  assert_int_equal(bw_error_register(APP_ETHREADS, "APP_ETHREADS", "x"), BW_ELIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_and_lookup),
      cmocka_unit_test(test_register_again),
      cmocka_unit_test(test_register_rejects),
      cmocka_unit_test(test_reports_show_registered),
      cmocka_unit_test(test_crash_report_shows_registered),
      cmocka_unit_test(test_register_concurrently),
      cmocka_unit_test(test_register_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
