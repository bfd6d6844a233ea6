/*
 * The logger (bulwark/log.h, runtime/log.c): levels, the text and JSON
 * formats (exact text after the timestamp; JSON checked with json_check.h),
 * what a sink receives, escaping and cutting to BW_LOG_LINE_MAX, the crash
 * report of an actor nobody is linked to (and none for a linked one), no
 * payload in any line, BW_LOG_LEVEL / BW_LOG_FORMAT, whole lines from many
 * threads at once on stderr, and bw_log_set_sink's promise that the old
 * sink is never called once it returns. The allocation count of a log call
 * is in test_alloc.c; supervisors' reports in tests/supervisor/test_report.c.
 */
#include "support.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>

#include "json_check.h"
#include "log_sink.h"
#include "runtime/internal.h"

enum { T_LOG = 1, T_CRASH, T_LINK, T_SEEN };

/* A runtime with a level, the sink of log_sink.h, and the text format. */
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

static const bwt_log_rec *last_rec(void) {
  unsigned n = bwt_log_count();
  assert_true(n > 0 && n <= BWT_LOG_KEEP);
  return &bwt_log_g.recs[n - 1];
}

/* --- an actor that logs and crashes on request ------------------------------ */

typedef struct logger_st {
  bw_pid_t linked;
} logger_st;

static atomic_int exits_seen;

static int logger_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  logger_st *s = state;
  switch (msg->type) {
  case T_LOG: {
    bw_log_field_t f[] = {BW_LOG_STR("peer", "db-1"), BW_LOG_NUM("port", 5432)};
    bw_log_kv(ctx, BW_LOG_WARNING, f, 2, "slow peer after %d ms", 250);
    return BW_CONTINUE;
  }
  case T_CRASH: /* the payload is a secret: it must appear nowhere */
    bw_fail(ctx, BW_EINVAL, "bad input of %u bytes", msg->len);
    return BW_CONTINUE;
  case T_LINK:
    memcpy(&s->linked, msg->data, sizeof s->linked);
    bw_trap_exit(ctx, true);
    if (bw_link(ctx, s->linked) != 0)
      return BW_EINVAL;
    bw_reply(ctx, msg, 0, T_LINK, NULL, 0);
    return BW_CONTINUE;
  case BW_MSG_EXIT:
    atomic_fetch_add(&exits_seen, 1);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t logger_b = {
    .name = "logger", .state_size = sizeof(logger_st), .handle = logger_handle};

static bw_pid_t spawn_logger(bw_runtime_t *rt) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &logger_b, NULL, NULL, &pid), 0);
  return pid;
}

/* --- levels ------------------------------------------------------------------ */

static void test_levels_filter(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_WARNING, BW_LOG_TEXT);
  assert_int_equal(bw_log_get_level(rt), BW_LOG_WARNING);
  assert_int_equal(bw_log(rt, BW_LOG_DEBUG, "d"), 0);
  assert_int_equal(bw_log(rt, BW_LOG_INFO, "i"), 0);
  assert_int_equal(bw_log(rt, BW_LOG_NOTICE, "n"), 0);
  assert_int_equal(bwt_log_count(), 0);
  assert_int_equal(bw_log(rt, BW_LOG_WARNING, "w"), 1);
  assert_int_equal(bw_log(rt, BW_LOG_ERROR, "e"), 1);
  assert_int_equal(bwt_log_count(), 2);
  assert_int_equal(bwt_log_g.recs[0].level, BW_LOG_WARNING);
  assert_int_equal(bwt_log_g.recs[1].level, BW_LOG_ERROR);
  assert_false(bw_log_enabled(rt, BW_LOG_INFO));
  assert_true(bw_log_enabled(rt, BW_LOG_ERROR));

  assert_int_equal(bw_log_set_level(rt, BW_LOG_DEBUG), 0);
  assert_true(bw_log_enabled(rt, BW_LOG_DEBUG));
  assert_int_equal(bw_log(rt, BW_LOG_DEBUG, "d"), 1);
  assert_int_equal(bw_log_set_level(rt, BW_LOG_OFF), 0);
  assert_false(bw_log_enabled(rt, BW_LOG_ERROR));
  assert_int_equal(bw_log(rt, BW_LOG_ERROR, "e"), 0);
  assert_int_equal(bwt_log_count(), 3);
  bw_runtime_destroy(rt);
}

static void test_default_level_is_notice(void **state) {
  (void)state;
  char *saved = getenv("BW_LOG_LEVEL") ? strdup(getenv("BW_LOG_LEVEL")) : NULL;
  unsetenv("BW_LOG_LEVEL");
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(NULL, &rt), 0);
  assert_int_equal(bw_log_get_level(rt), BW_LOG_NOTICE);
  bw_runtime_destroy(rt);
  if (saved != NULL)
    setenv("BW_LOG_LEVEL", saved, 1);
  free(saved);
}

static void test_bad_arguments(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_DEBUG, BW_LOG_TEXT);
  assert_int_equal(bw_log_write(NULL, BW_LOG_ERROR, NULL, 0, "x"), BW_EINVAL);
  assert_int_equal(bw_log_write(rt, BW_LOG_DEFAULT, NULL, 0, "x"), BW_EINVAL);
  assert_int_equal(bw_log_write(rt, BW_LOG_OFF, NULL, 0, "x"), BW_EINVAL);
  assert_int_equal(bw_log_write(rt, BW_LOG_ERROR, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_log_set_level(NULL, BW_LOG_INFO), BW_EINVAL);
  assert_int_equal(bw_log_set_level(rt, BW_LOG_DEFAULT), BW_EINVAL);
  assert_int_equal(bw_log_set_level(rt, BW_LOG_OFF + 1), BW_EINVAL);
  assert_int_equal(bw_log_set_format(rt, BW_LOG_FORMAT_DEFAULT), BW_EINVAL);
  assert_int_equal(bw_log_set_format(NULL, BW_LOG_JSON), BW_EINVAL);
  assert_int_equal(bw_log_get_level(NULL), BW_EINVAL);
  assert_int_equal(bw_log_set_sink(NULL, NULL, NULL), BW_EINVAL);
  assert_false(bw_log_enabled(NULL, BW_LOG_ERROR));
  assert_int_equal(bwt_log_count(), 0);
  bw_runtime_destroy(rt);

  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.log_level = BW_LOG_OFF + 1;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
  o.log_level = -1;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
  o.log_level = 0;
  o.log_format = BW_LOG_JSON + 1;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
}

static void test_names_and_parsing(void **state) {
  (void)state;
  assert_string_equal(bw_log_level_name(BW_LOG_DEBUG), "debug");
  assert_string_equal(bw_log_level_name(BW_LOG_WARNING), "warning");
  assert_string_equal(bw_log_level_name(BW_LOG_OFF), "off");
  assert_string_equal(bw_log_level_name(0), "unknown");
  assert_string_equal(bw_log_level_name(99), "unknown");
  assert_int_equal(bw_log_level_parse("debug"), BW_LOG_DEBUG);
  assert_int_equal(bw_log_level_parse("INFO"), BW_LOG_INFO);
  assert_int_equal(bw_log_level_parse("Notice"), BW_LOG_NOTICE);
  assert_int_equal(bw_log_level_parse("warn"), BW_LOG_WARNING);
  assert_int_equal(bw_log_level_parse("warning"), BW_LOG_WARNING);
  assert_int_equal(bw_log_level_parse("err"), BW_LOG_ERROR);
  assert_int_equal(bw_log_level_parse("off"), BW_LOG_OFF);
  assert_int_equal(bw_log_level_parse("none"), BW_LOG_OFF);
  assert_int_equal(bw_log_level_parse("default"), BW_EINVAL);
  assert_int_equal(bw_log_level_parse("verbose"), BW_EINVAL);
  assert_int_equal(bw_log_level_parse(""), BW_EINVAL);
  assert_int_equal(bw_log_level_parse(NULL), BW_EINVAL);
  assert_int_equal(bw_log_format_parse("json"), BW_LOG_JSON);
  assert_int_equal(bw_log_format_parse("TEXT"), BW_LOG_TEXT);
  assert_int_equal(bw_log_format_parse("xml"), BW_EINVAL);
  assert_int_equal(bw_log_format_parse(NULL), BW_EINVAL);

  char b[32];
  assert_int_equal(bw_pid_format(BW_PID_NONE, b, sizeof b), 6);
  assert_string_equal(b, "<none>");
  bw_pid_t p = BW__PID_MAKE((3u << 8) | 7u, 5u, 9u); /* node 3, tag 7, slot 5, gen 9 */
  assert_int_equal(bw_pid_format(p, b, sizeof b), 7);
  assert_string_equal(b, "<3.5.9>");
  assert_int_equal(bw_pid_format(p, b, 4), 7); /* cut, as snprintf */
  assert_string_equal(b, "<3.");
  p = BW__PID_MAKE(0xFFFFu, BW__SLOT_MAX - 1u, BW__GEN_MASK);
  assert_int_equal(bw_pid_format(p, NULL, 0), 22); /* the longest: <255.4194303.67108863> */
}

/* --- formats ------------------------------------------------------------------- */

static void test_text_line_exact(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_INFO, BW_LOG_TEXT);
  bw_log_field_t f[] = {BW_LOG_STR("peer", "a b"), BW_LOG_NUM("port", 8080),
                        BW_LOG_STR("empty", ""), BW_LOG_STR("q", "say \"hi\"\\"),
                        BW_LOG_STR("odd key=", "x")};
  assert_int_equal(bw_log_kv(rt, BW_LOG_NOTICE, f, 5, "listening on %s", "127.0.0.1"), 1);
  const bwt_log_rec *r = last_rec();
  const char *rest = bwt_log_after_time(r->line);
  assert_non_null(rest);
  assert_string_equal(rest, "notice: listening on 127.0.0.1 peer=\"a b\" port=8080 empty=\"\" "
                            "q=\"say \\\"hi\\\"\\\\\" odd_key_=x\n");
  assert_int_equal(r->len, strlen(r->line));

  /* from an actor: its name and pid */
  bw_pid_t a = spawn_logger(rt);
  assert_int_equal(bw_send(rt, a, T_LOG, NULL, 0), 0);
  BWT_POLL(bwt_log_count() == 2);
  r = last_rec();
  char pid[32], want[256];
  bw_pid_format(a, pid, sizeof pid);
  snprintf(want, sizeof want, "warning logger %s: slow peer after 250 ms peer=db-1 port=5432\n",
           pid);
  assert_non_null(bwt_log_after_time(r->line));
  assert_string_equal(bwt_log_after_time(r->line), want);
  bw_runtime_destroy(rt);
}

static void test_json_line_exact(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_INFO, BW_LOG_JSON);
  bw_log_field_t f[] = {BW_LOG_STR("peer", "a \"b\"\n"), BW_LOG_NUM("port", -1)};
  assert_int_equal(bw_log_kv(rt, BW_LOG_ERROR, f, 2, "tab\there"), 1);
  const bwt_log_rec *r = last_rec();
  assert_true(r->len > 0 && r->line[r->len - 1] == '\n');
  char line[BW_LOG_LINE_MAX];
  memcpy(line, r->line, r->len - 1);
  line[r->len - 1] = '\0';
  assert_true(bwt_json_valid(line));
  /* {"time":"2026-...Z", then the rest, exactly */
  assert_memory_equal(line, "{\"time\":\"", 9);
  assert_true(bwt_log_is_time(line + 9));
  assert_string_equal(line + 9 + 24,
                      "\",\"level\":\"error\",\"msg\":\"tab\\there\",\"peer\":\"a \\\"b\\\"\\n\","
                      "\"port\":-1}");

  bw_pid_t a = spawn_logger(rt);
  assert_int_equal(bw_send(rt, a, T_LOG, NULL, 0), 0);
  BWT_POLL(bwt_log_count() == 2);
  r = last_rec();
  char pid[32], want[256];
  bw_pid_format(a, pid, sizeof pid);
  snprintf(want, sizeof want,
           "\",\"level\":\"warning\",\"msg\":\"slow peer after 250 ms\",\"actor\":\"logger\","
           "\"pid\":\"%s\",\"peer\":\"db-1\",\"port\":5432}\n",
           pid);
  assert_string_equal(r->line + 9 + 24, want);
  /* the format can change at run time */
  assert_int_equal(bw_log_set_format(rt, BW_LOG_TEXT), 0);
  bw_log(rt, BW_LOG_INFO, "plain");
  assert_string_equal(bwt_log_after_time(last_rec()->line), "info: plain\n");
  bw_runtime_destroy(rt);
}

/* Control characters never break a line; long input is cut to fit, the
 * JSON stays valid and says so. */
static void test_escaping_and_cutting(void **state) {
  (void)state;
  for (int format = BW_LOG_TEXT; format <= BW_LOG_JSON; format++) {
    bw_runtime_t *rt = rt_with(BW_LOG_DEBUG, format);
    static char big[4 * BW_LOG_LINE_MAX], ctl[BW_LOG_LINE_MAX];
    memset(big, 'x', sizeof big - 1);
    for (size_t i = 0; i < sizeof ctl - 1; i++)
      ctl[i] = (char)(1 + i % 31); /* controls only: six bytes each in JSON */
    bw_log_field_t f[BW_LOG_FIELDS_MAX + 4];
    for (size_t i = 0; i < BW_LOG_FIELDS_MAX + 4; i++)
      f[i] = i % 2 ? BW_LOG_STR("c", ctl) : BW_LOG_STR("big", big);
    assert_int_equal(bw_log_kv(rt, BW_LOG_INFO, f, BW_LOG_FIELDS_MAX + 4, "%s\n%s", ctl, big), 1);
    assert_int_equal(bw_log(rt, BW_LOG_INFO, "line\nbreak\r\x01\x7f"), 1);
    assert_int_equal(bwt_log_count(), 2);
    for (int k = 0; k < 2; k++) {
      const bwt_log_rec *r = &bwt_log_g.recs[k];
      assert_true(r->len <= BW_LOG_LINE_MAX);
      assert_int_equal(strlen(r->line), r->len); /* no NUL inside */
      assert_ptr_equal(strchr(r->line, '\n'), r->line + r->len - 1); /* one line */
      for (size_t i = 0; i + 1 < r->len; i++) /* (JSON may keep a DEL as it is) */
        assert_true((unsigned char)r->line[i] >= 0x20 &&
                    (r->line[i] != 0x7f || format == BW_LOG_JSON));
      if (format == BW_LOG_JSON) {
        char line[BW_LOG_LINE_MAX];
        memcpy(line, r->line, r->len - 1);
        line[r->len - 1] = '\0';
        assert_true(bwt_json_valid(line));
      }
    }
    const bwt_log_rec *r = &bwt_log_g.recs[0];
    assert_int_equal(strlen(r->msg), BW_LOG_MSG_MAX - 1); /* the message is cut ... */
    assert_string_equal(r->msg + BW_LOG_MSG_MAX - 4, "...");
    assert_int_equal(r->nfields, BW_LOG_FIELDS_MAX); /* ... and the fields beyond the max */
    if (format == BW_LOG_JSON)
      assert_non_null(strstr(r->line, ",\"truncated\":true}\n"));
    else
      assert_string_equal(r->line + r->len - 4, "...\n");
    const char *second = bwt_log_g.recs[1].line;
    assert_non_null(strstr(second, format == BW_LOG_JSON ? "line\\nbreak\\r\\u0001\x7f"
                                                         : "line\\nbreak\\r\\x01\\x7f"));
    bw_runtime_destroy(rt);
  }
}

/* What a sink gets: the parts of the line, and the line. */
static void test_sink_record_fields(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_DEBUG, BW_LOG_TEXT);
  struct timespec t0;
  clock_gettime(CLOCK_REALTIME, &t0);
  bw_pid_t a = spawn_logger(rt);
  assert_int_equal(bw_send(rt, a, T_LOG, NULL, 0), 0);
  BWT_POLL(bwt_log_count() == 1);
  const bwt_log_rec *r = last_rec();
  assert_int_equal(r->level, BW_LOG_WARNING);
  assert_int_equal(r->pid, a);
  assert_string_equal(r->actor, "logger");
  assert_string_equal(r->path, "");
  assert_string_equal(r->msg, "slow peer after 250 ms");
  assert_int_equal(r->nfields, 2);
  assert_string_equal(bwt_log_field(r, "peer"), "db-1");
  assert_string_equal(bwt_log_field(r, "port"), "5432");
  assert_true(r->is_num[1] && !r->is_num[0]);
  /* the wall clock, whatever the runtime's (a manual one here, at 0) */
  assert_true(r->time_ns / 1000000000ull + 1 >= (unsigned long long)t0.tv_sec);
  /* from a plain thread: nobody */
  bw_log(rt, BW_LOG_DEBUG, "from main");
  r = last_rec();
  assert_int_equal(r->pid, BW_PID_NONE);
  assert_string_equal(r->actor, "");
  assert_int_equal(r->nfields, 0);
  bw_runtime_destroy(rt);
}

/* --- crash reports ------------------------------------------------------------- */

#define SECRET "sk-SECRET-PAYLOAD-4242"

static void test_lone_crash_reported_without_payload(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_NOTICE, BW_LOG_TEXT);
  bw_pid_t a = spawn_logger(rt);
  assert_int_equal(bw_send(rt, a, T_CRASH, SECRET, sizeof SECRET), 0);
  BWT_AWAIT_DEAD(rt, a);
  const bwt_log_rec *r = bwt_log_find("actor crashed", a);
  assert_non_null(r);
  assert_int_equal(r->level, BW_LOG_ERROR);
  assert_string_equal(r->actor, "logger");
  assert_string_equal(bwt_log_field(r, "reason"), "crash");
  assert_string_equal(bwt_log_field(r, "code"), "BW_EINVAL");
  assert_string_equal(bwt_log_field(r, "error"), bw_strerror(BW_EINVAL));
  char detail[64];
  snprintf(detail, sizeof detail, "bad input of %zu bytes", sizeof SECRET);
  assert_string_equal(bwt_log_field(r, "detail"), detail);
  char pid[32], want[512];
  bw_pid_format(a, pid, sizeof pid);
  snprintf(want, sizeof want,
           "error logger %s: actor crashed reason=crash code=BW_EINVAL error=\"%s\" "
           "detail=\"%s\"\n",
           pid, bw_strerror(BW_EINVAL), detail);
  assert_string_equal(bwt_log_after_time(r->line), want);
  assert_false(bwt_log_any_line_has("SECRET"));
  bw_runtime_destroy(rt);
}

/* A linked actor's crash is its partner's to report (a supervisor's). */
static void test_linked_crash_not_reported(void **state) {
  (void)state;
  atomic_store(&exits_seen, 0);
  bw_runtime_t *rt = rt_with(BW_LOG_DEBUG, BW_LOG_TEXT);
  bw_pid_t victim = spawn_logger(rt), keeper = spawn_logger(rt);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, keeper, T_LINK, &victim, sizeof victim, 5000, &rep), 0);
  assert_int_equal(bw_send(rt, victim, T_CRASH, SECRET, sizeof SECRET), 0);
  BWT_AWAIT_DEAD(rt, victim);
  BWT_POLL(atomic_load(&exits_seen) == 1);
  assert_false(bwt_log_has("actor crashed"));
  assert_int_equal(bwt_log_count(), 0);
  /* and an actor that stops normally is never reported */
  bw_runtime_destroy(rt);
  assert_int_equal(bwt_log_count(), 0);
}

/* --- the environment ------------------------------------------------------------- */

/* Runs fn with fd 2 going into a pipe, and returns what it wrote there. */
static size_t capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(p[1], STDERR_FILENO) >= 0);
  close(p[1]);
  fn(arg);
  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0); /* closes the pipe's last writer */
  close(saved);
  size_t n = 0;
  ssize_t k;
  while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
    n += (size_t)k;
  out[n] = '\0';
  close(p[0]);
  return n;
}

static bw_runtime_t *env_rt;

static void create_default(void *arg) {
  const bw_runtime_opts_t *o = arg;
  assert_int_equal(bw_runtime_create(o, &env_rt), 0);
  bw_log(env_rt, BW_LOG_DEBUG, "debug line");
  bw_log(env_rt, BW_LOG_NOTICE, "notice line");
}

static int env_level(const char *level, const char *format, int opt_level, char *err, size_t cap) {
  setenv("BW_LOG_LEVEL", level, 1);
  if (format != NULL)
    setenv("BW_LOG_FORMAT", format, 1);
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  o.log_level = opt_level;
  capture_stderr(create_default, &o, err, cap);
  int l = bw_log_get_level(env_rt);
  bw_runtime_destroy(env_rt);
  unsetenv("BW_LOG_LEVEL");
  unsetenv("BW_LOG_FORMAT");
  return l;
}

static void test_environment(void **state) {
  (void)state;
  char *saved = getenv("BW_LOG_LEVEL") ? strdup(getenv("BW_LOG_LEVEL")) : NULL;
  char *saved_f = getenv("BW_LOG_FORMAT") ? strdup(getenv("BW_LOG_FORMAT")) : NULL;
  char err[4096];
  assert_int_equal(env_level("debug", NULL, BW_LOG_DEFAULT, err, sizeof err), BW_LOG_DEBUG);
  assert_non_null(strstr(err, " debug: debug line\n"));
  assert_non_null(strstr(err, " notice: notice line\n"));
  assert_int_equal(env_level("WARN", NULL, BW_LOG_DEFAULT, err, sizeof err), BW_LOG_WARNING);
  assert_string_equal(err, "");
  assert_int_equal(env_level("off", NULL, BW_LOG_DEFAULT, err, sizeof err), BW_LOG_OFF);
  /* the options win over the environment */
  assert_int_equal(env_level("error", NULL, BW_LOG_INFO, err, sizeof err), BW_LOG_INFO);
  assert_null(strstr(err, "debug line"));
  assert_non_null(strstr(err, "notice line"));
  /* not understood: the default, and a warning that does not repeat the value */
  assert_int_equal(env_level("loud-s3cr3t", NULL, BW_LOG_DEFAULT, err, sizeof err), BW_LOG_NOTICE);
  assert_non_null(strstr(err, "warning: BW_LOG_LEVEL not understood"));
  assert_null(strstr(err, "s3cr3t"));
  /* the format */
  assert_int_equal(env_level("notice", "json", BW_LOG_DEFAULT, err, sizeof err), BW_LOG_NOTICE);
  assert_memory_equal(err, "{\"time\":", 8);
  assert_non_null(strstr(err, "\"msg\":\"notice line\"}\n"));
  env_level("notice", "yaml", BW_LOG_DEFAULT, err, sizeof err);
  assert_non_null(strstr(err, "warning: BW_LOG_FORMAT not understood (text, json); using text"));
  if (saved != NULL)
    setenv("BW_LOG_LEVEL", saved, 1);
  if (saved_f != NULL)
    setenv("BW_LOG_FORMAT", saved_f, 1);
  free(saved);
  free(saved_f);
}

/* --- many threads ------------------------------------------------------------------ */

#define THREADS 4
#define LINES 2000

typedef struct writer_arg {
  bw_runtime_t *rt;
  int id;
  int lines;
} writer_arg;

static void *writer(void *p) {
  writer_arg *w = p;
  char pad[600]; /* long lines: more chances to interleave if anything could */
  memset(pad, 'a' + w->id, sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  for (int i = 0; i < w->lines; i++) {
    bw_log_field_t f[] = {BW_LOG_NUM("thread", w->id), BW_LOG_NUM("seq", i),
                          BW_LOG_STR("pad", pad)};
    bw_log_kv(w->rt, BW_LOG_INFO, f, 3, "line");
  }
  return NULL;
}

/* Each line of the file: "... info: line thread=T seq=S pad=PPP...P\n"
 * whole, and every (thread, seq) once. */
static void check_lines(const char *path, int lines) {
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  static char buf[2 * BW_LOG_LINE_MAX];
  static unsigned char seen[THREADS][LINES];
  memset(seen, 0, sizeof seen);
  int n = 0;
  while (fgets(buf, sizeof buf, fp) != NULL) {
    const char *rest = bwt_log_after_time(buf);
    assert_non_null(rest);
    int t = -1, s = -1, used = 0;
    assert_int_equal(sscanf(rest, "info: line thread=%d seq=%d pad=%n", &t, &s, &used), 2);
    assert_true(t >= 0 && t < THREADS && s >= 0 && s < lines);
    for (int k = 0; k < 599; k++)
      assert_int_equal(rest[used + k], 'a' + t);
    assert_string_equal(rest + used + 599, "\n");
    assert_int_equal(seen[t][s]++, 0);
    n++;
  }
  fclose(fp);
  assert_int_equal(n, THREADS * lines);
}

static void test_threads_whole_lines(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_INFO, BW_LOG_TEXT);
  assert_int_equal(bw_log_set_sink(rt, NULL, NULL), 0); /* stderr */
  char path[] = "/tmp/bw_test_log_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int flags = fcntl(fd, F_GETFL);
  assert_int_equal(fcntl(fd, F_SETFL, flags | O_APPEND), 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  int lines = (int)(LINES / bwt_scale() > 10 ? LINES / bwt_scale() : 10);
  pthread_t th[THREADS];
  writer_arg wa[THREADS];
  for (int i = 0; i < THREADS; i++) {
    wa[i] = (writer_arg){rt, i, lines};
    assert_int_equal(pthread_create(&th[i], NULL, writer, &wa[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  check_lines(path, lines);
  unlink(path);
  bw_runtime_destroy(rt);
}

/* --- the sink: switching it under load, and from inside one ------------------------- */

static atomic_ulong sink_a_calls, sink_b_calls;
static void sink_a(const bw_log_record_t *r, void *arg) {
  (void)r;
  (void)arg;
  atomic_fetch_add(&sink_a_calls, 1);
}
static void sink_b(const bw_log_record_t *r, void *arg) {
  (void)r;
  (void)arg;
  atomic_fetch_add(&sink_b_calls, 1);
}

static atomic_int stop_writers;

static void *busy_writer(void *p) {
  bw_runtime_t *rt = p;
  while (!atomic_load(&stop_writers))
    bw_log(rt, BW_LOG_INFO, "busy");
  return NULL;
}

static void test_set_sink_under_load(void **state) {
  (void)state;
  bw_runtime_t *rt = rt_with(BW_LOG_INFO, BW_LOG_TEXT);
  atomic_store(&stop_writers, 0);
  atomic_store(&sink_a_calls, 0);
  atomic_store(&sink_b_calls, 0);
  assert_int_equal(bw_log_set_sink(rt, sink_a, NULL), 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, busy_writer, rt), 0);
  for (int round = 0; round < 20; round++) {
    unsigned long b0 = atomic_load(&sink_b_calls);
    BWT_POLL(atomic_load(&sink_a_calls) > 100);
    assert_int_equal(bw_log_set_sink(rt, sink_b, NULL), 0);
    unsigned long a1 = atomic_load(&sink_a_calls); /* a is never called again ... */
    BWT_POLL(atomic_load(&sink_b_calls) > b0 + 100);
    assert_int_equal(atomic_load(&sink_a_calls), a1); /* ... while b is */
    atomic_store(&sink_a_calls, 0);
    assert_int_equal(bw_log_set_sink(rt, sink_a, NULL), 0);
    unsigned long b1 = atomic_load(&sink_b_calls);
    BWT_POLL(atomic_load(&sink_a_calls) > 100);
    assert_int_equal(atomic_load(&sink_b_calls), b1);
  }
  atomic_store(&stop_writers, 1);
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  bw_runtime_destroy(rt);
}

static bw_runtime_t *reentrant_rt;
static atomic_int reentrant_rc, reentrant_calls;

static void reentrant_sink(const bw_log_record_t *r, void *arg) {
  (void)r;
  (void)arg;
  atomic_fetch_add(&reentrant_calls, 1);
  atomic_store(&reentrant_rc, bw_log_set_sink(reentrant_rt, NULL, NULL));
  bw_log(reentrant_rt, BW_LOG_ERROR, "from inside the sink"); /* to stderr, not back here */
}

static void log_once(void *arg) {
  (void)arg;
  bw_log(reentrant_rt, BW_LOG_ERROR, "outer");
}

static void test_sink_reentry(void **state) {
  (void)state;
  reentrant_rt = rt_with(BW_LOG_INFO, BW_LOG_TEXT);
  assert_int_equal(bw_log_set_sink(reentrant_rt, reentrant_sink, NULL), 0);
  char err[1024];
  capture_stderr(log_once, NULL, err, sizeof err);
  assert_int_equal(atomic_load(&reentrant_calls), 1);
  assert_int_equal(atomic_load(&reentrant_rc), BW_EWOULDBLOCK);
  assert_non_null(strstr(err, " error: from inside the sink\n"));
  assert_null(strstr(err, "outer"));
  bw_runtime_destroy(reentrant_rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_levels_filter),
      cmocka_unit_test(test_default_level_is_notice),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_names_and_parsing),
      cmocka_unit_test(test_text_line_exact),
      cmocka_unit_test(test_json_line_exact),
      cmocka_unit_test(test_escaping_and_cutting),
      cmocka_unit_test(test_sink_record_fields),
      cmocka_unit_test(test_lone_crash_reported_without_payload),
      cmocka_unit_test(test_linked_crash_not_reported),
      cmocka_unit_test(test_environment),
      cmocka_unit_test(test_threads_whole_lines),
      cmocka_unit_test(test_set_sink_under_load),
      cmocka_unit_test(test_sink_reentry),
  };
  return BWT_RUN_SUITE(tests);
}
