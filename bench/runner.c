/*
 * bw-bench: the benchmark runner.
 *
 * The parent process never creates a runtime: it parses the command line,
 * then runs each measured run in a child made with fork(), reads the run's
 * figures back through a pipe, and reports. A child per run costs about a
 * millisecond and buys three things: every run starts from the same small
 * heap (idle_mem would otherwise measure pages an earlier run left
 * resident), a crash or a hang in one run is reported as that benchmark's
 * error instead of ending the whole suite, and a hung run can be killed
 * (the watchdog). --no-fork runs in-process, for a debugger.
 *
 * Exit status: 0 all selected benchmarks passed; 1 one or more failed (or an
 * output file could not be written; for --check-json: the file is bad); 2 bad
 * command line, or a build whose figures would mislead (sanitizers, no
 * optimisation) without --force; 3 all passed, but one or more are slower
 * than the --baseline by more than --fail-over.
 */
#include "runner.h"

#include "baseline.h"
#include "report.h"
#include "stats.h"

#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Set by bench/CMakeLists.txt; the fallbacks serve a build without CMake. */
#ifndef BW_BENCH_BUILD_TYPE
#define BW_BENCH_BUILD_TYPE ""
#endif
#ifndef BW_BENCH_SANITIZE
#define BW_BENCH_SANITIZE ""
#endif
#ifndef BW_BENCH_LIB_OPTIMIZED
#if defined(__OPTIMIZE__)
#define BW_BENCH_LIB_OPTIMIZED 1
#else
#define BW_BENCH_LIB_OPTIMIZED 0
#endif
#endif

/* A sanitizer the build flags did not announce still shows in the macros. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZER_SEEN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||   \
    __has_feature(memory_sanitizer)
#define BENCH_SANITIZER_SEEN 1
#endif
#endif
#ifndef BENCH_SANITIZER_SEEN
#define BENCH_SANITIZER_SEEN 0
#endif

#if defined(__clang__)
#define BENCH_COMPILER __VERSION__
#elif defined(__GNUC__)
#define BENCH_COMPILER "gcc " __VERSION__
#else
#define BENCH_COMPILER "unknown"
#endif

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_REGRESSED 3

/* --same-band default: runs on a quiet machine differ by a few percent. */
#define SAME_BAND_PCT 5.0

/* Setup and teardown (spawning, bw_runtime_stop) are outside the bw_call
 * watchdog; the parent allows them this much on top of it before it kills
 * the child. */
#define HARD_GRACE_MS 60000u

static const bench_t *const benches[] = {
    /* savina */
    &bench_pingpong, &bench_counting, &bench_ring, &bench_chameneos,
    &bench_big, &bench_fjthrput, &bench_fjcreate, &bench_fib, &bench_banking,
    &bench_bndbuffer, &bench_concdict,
    /* runtime */
    &bench_spawn, &bench_idle_mem, &bench_idle_cpu, &bench_fanin_p1,
    &bench_fanin_p4, &bench_flood, &bench_tcp_echo_rtt, &bench_tcp_echo_rtt_epoll,
    /* supervision */
    &bench_restart_latency, &bench_restart_latency_p99,
    &bench_restart_throughput, &bench_rest_for_one_100,
    /* patterns */
    &bench_breaker_guard, &bench_breaker_guard_2t, &bench_breaker_open,
    &bench_bulkhead_rtt, &bench_bulkhead_rtt_call, &bench_bulkhead_throughput,
    &bench_ratelimit_acquire, &bench_retry_backoff, &bench_retry_budget,
    &bench_retry_proxy, &bench_policy_pipeline,
    &bench_policy_pipeline_actor,
#ifdef BW_BENCH_HTTP
    &bench_http_rtt, &bench_http_rtt_curl, &bench_http_concurrency,
    &bench_http_concurrency_threads, &bench_http_concurrency_rss,
#endif
    /* observability */
    &bench_metrics_counter, &bench_metrics_counter_2t, &bench_metrics_histogram,
    &bench_metrics_overhead,
    &bench_remote_rtt,
    &bench_nats_rtt,
    &bench_remote_fanin,
};
#define NBENCH (sizeof benches / sizeof benches[0])

static const char *prog = "bw-bench";

/* ------------------------------------------------------------------------ */
/* Helpers for benchmarks (runner.h)                                        */
/* ------------------------------------------------------------------------ */

uint64_t bench_param(const bench_run_t *r, const char *key)
{
  for (size_t i = 0; i < BENCH_MAX_PARAMS && r->bench->params[i].key; i++)
    if (strcmp(r->bench->params[i].key, key) == 0)
      return r->param[i];
  fprintf(stderr, "%s: benchmark %s has no parameter '%s' (bug)\n", prog,
          r->bench->name, key);
  abort();
}

int bench_fail(bench_run_t *r, const char *fmt, ...)
{
  if (r->error[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
  }
  return -1;
}

uint64_t bench_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_runtime_create(bench_run_t *r, bw_runtime_t **out)
{
  bw_runtime_opts_t opts;
  bw_runtime_opts_init(&opts);
  opts.workers = r->workers;
  opts.manual_clock = false; /* figures come from the real clock only */
  int rc = bw_runtime_create(&opts, out);
  if (rc != 0)
    return bench_fail(r, "bw_runtime_create: %s", bw_strerror(rc));
  return 0;
}

int bench_runtime_finish(bench_run_t *r, bw_runtime_t *rt,
                         bw_runtime_stats_t *st)
{
  int ret = 0;
  int rc = bw_runtime_stop(rt);
  if (rc != 0)
    ret = bench_fail(r, "bw_runtime_stop: %s", bw_strerror(rc));
  if (st) {
    memset(st, 0, sizeof *st);
    rc = bw_runtime_stats(rt, st);
    if (rc != 0)
      ret = bench_fail(r, "bw_runtime_stats: %s", bw_strerror(rc));
  }
  bw_runtime_destroy(rt);
  return ret;
}

int bench_waiter_arm(bench_waiter_t *w, const bw_msg_t *msg)
{
  if (!(msg->flags & BW_MSGF_REQUEST) || w->armed)
    return BW_EINVAL;
  /* The message is only valid during the handler; bw_reply needs its
   * sender, ref and flags, which the copy keeps. The payload is not. */
  w->req = *msg;
  w->req.data = NULL;
  w->req.len = 0;
  w->armed = true;
  w->answered = false;
  w->t0_ns = bench_now_ns();
  return 0;
}

static int waiter_answer(bench_waiter_t *w, bw_ctx_t *ctx, uint64_t t1_ns,
                         const char *err)
{
  if (!w->armed || w->answered)
    return 0;
  bench_done_t d;
  memset(&d, 0, sizeof d);
  d.t0_ns = w->t0_ns;
  d.t1_ns = t1_ns;
  snprintf(d.error, sizeof d.error, "%s", err);
  w->answered = true;
  return bw_reply(ctx, &w->req, 0, BENCH_MSG_GO, &d, sizeof d);
}

int bench_waiter_ok(bench_waiter_t *w, bw_ctx_t *ctx, uint64_t t1_ns)
{
  return waiter_answer(w, ctx, t1_ns, "");
}

int bench_waiter_fail(bench_waiter_t *w, bw_ctx_t *ctx, const char *fmt, ...)
{
  char err[BENCH_DONE_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, sizeof err, fmt, ap);
  va_end(ap);
  if (err[0] == '\0')
    snprintf(err, sizeof err, "failed");
  return waiter_answer(w, ctx, bench_now_ns(), err);
}

int bench_go(bench_run_t *r, bw_runtime_t *rt, bw_pid_t coordinator,
             const void *data, size_t len, bench_done_t *done)
{
  bw_reply_t rep;
  memset(&rep, 0, sizeof rep);
  int rc = bw_call(rt, coordinator, BENCH_MSG_GO, data, len, r->timeout_ms,
                   &rep);
  if (rc == BW_ETIMEDOUT)
    return bench_fail(r,
                      "no answer within %" PRIu64 " s (watchdog timeout; "
                      "hung or far too slow)",
                      r->timeout_ms / 1000);
  if (rc != 0)
    return bench_fail(r, "bw_call to the coordinator: %s (%s)",
                      bw_err_name(rc), bw_strerror(rc));
  r->calls++;
  if (rep.len != sizeof *done)
    return bench_fail(r, "the coordinator's answer has %u bytes, not %zu",
                      (unsigned)rep.len, sizeof *done);
  memcpy(done, rep.data, sizeof *done);
  done->error[sizeof done->error - 1] = '\0';
  if (done->error[0] != '\0')
    return bench_fail(r, "%s", done->error);
  return 0;
}

int bench_rate(bench_run_t *r, const bench_done_t *done, uint64_t work)
{
  if (done->t1_ns <= done->t0_ns)
    return bench_fail(r, "measured span is not positive (t0 %" PRIu64
                         ", t1 %" PRIu64 ")",
                      done->t0_ns, done->t1_ns);
  r->seconds = (double)(done->t1_ns - done->t0_ns) / 1e9;
  r->work = work;
  r->value = (double)work / r->seconds;
  return 0;
}

int bench_check_stats(bench_run_t *r, const bw_runtime_stats_t *st,
                      uint64_t handled, uint64_t spawned)
{
  if (st->handled != handled + r->calls)
    return bench_fail(r, "runtime counted %" PRIu64 " handled messages, the "
                         "actors counted %" PRIu64 " (+%u bw_call replies)",
                      st->handled, handled, r->calls);
  if (st->sent != st->handled + st->dead_letters)
    return bench_fail(r, "runtime counters disagree: sent %" PRIu64
                         " != handled %" PRIu64 " + dead letters %" PRIu64,
                      st->sent, st->handled, st->dead_letters);
  if (st->dead_letters != 0)
    return bench_fail(r, "%" PRIu64 " dead letters (noproc %" PRIu64
                         ", full %" PRIu64 ", shutdown %" PRIu64
                         ", exited %" PRIu64 ", late_reply %" PRIu64 ")",
                      st->dead_letters, st->dead_by_reason[BW_DL_NOPROC],
                      st->dead_by_reason[BW_DL_FULL],
                      st->dead_by_reason[BW_DL_SHUTDOWN],
                      st->dead_by_reason[BW_DL_EXITED],
                      st->dead_by_reason[BW_DL_LATE_REPLY]);
  if (st->crashed != 0)
    return bench_fail(r, "%" PRIu64 " actors crashed", st->crashed);
  if (st->spawned != spawned)
    return bench_fail(r,
                      "runtime counted %" PRIu64 " spawns, expected %" PRIu64,
                      st->spawned, spawned);
  if (st->exited != spawned || st->live != 0)
    return bench_fail(r, "after stop: %" PRIu64 " exited, %" PRIu64
                         " live, of %" PRIu64 " spawned",
                      st->exited, st->live, spawned);
  return 0;
}

bench_slot_t *bench_slots(size_t n)
{
  size_t bytes = (n ? n : 1) * sizeof(bench_slot_t);
  bench_slot_t *s = aligned_alloc(_Alignof(bench_slot_t), bytes);
  if (s)
    memset(s, 0, bytes);
  return s;
}

int bench_note(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const char *fmt,
               ...)
{
  bench_note_t note;
  memset(&note, 0, sizeof note);
  note.t1_ns = bench_now_ns();
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note.error, sizeof note.error, fmt, ap);
    va_end(ap);
    if (note.error[0] == '\0')
      snprintf(note.error, sizeof note.error, "failed");
  }
  return bw_send(bw_ctx_runtime(ctx), to, type, &note, sizeof note);
}

int bench_waiter_note(bench_waiter_t *w, bw_ctx_t *ctx, const bw_msg_t *msg)
{
  bench_note_t note;
  if (msg->len != sizeof note) {
    bench_waiter_fail(w, ctx, "a note with a bad payload");
    return BW_EINVAL;
  }
  memcpy(&note, msg->data, sizeof note);
  note.error[sizeof note.error - 1] = '\0';
  if (note.error[0])
    bench_waiter_fail(w, ctx, "%s", note.error);
  else
    bench_waiter_ok(w, ctx, note.t1_ns);
  return 0;
}

uint64_t bench_rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  if (n != 2)
    return 0;
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void bench_sleep_ms(uint64_t ms)
{
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

typedef struct override {
  const char *arg;   /* as given, for messages */
  char scope[64];    /* benchmark name, or "" for every selected one */
  char key[64];
  uint64_t value;
  bool used;
} override_t;

typedef struct options {
  unsigned runs;
  bool quick;
  bool force;
  bool no_fork;
  unsigned workers;
  uint64_t timeout_ms;
  const char *json_path;
  const char *csv_path;
  const char *baseline_path;
  double same_band_pct;
  double fail_over_pct; /* < 0: no threshold */
  const char *report_dir;
  const char *check_json_path;
  override_t *ov;
  size_t nov;
  bool selected[NBENCH];
} options_t;

static void usage(FILE *f)
{
  fprintf(f,
"usage: %s [options] [NAME|GLOB ...]\n"
"\n"
"Runs bulwark's benchmarks (all of them, or those whose names match one of\n"
"the shell-style globs) and reports the median of several runs, each in a\n"
"fresh runtime, with the machine they ran on.\n"
"\n"
"options:\n"
"  --list               list the (selected) benchmarks, their parameters\n"
"                       and units\n"
"  --runs N             measured runs per benchmark (default 5; median kept)\n"
"  --quick              small sizes: the whole suite in well under a minute\n"
"  --param KEY=VALUE    override a parameter of every selected benchmark\n"
"                       that has it; NAME.KEY=VALUE for one benchmark.\n"
"                       VALUE is an integer, with an optional k, M or G\n"
"                       (x1000) suffix. Repeatable.\n"
"  --workers N          runtime worker threads (default 0 = online CPUs)\n"
"  --timeout SEC        watchdog per run (default 120); a run that takes\n"
"                       longer is reported as an error\n"
"  --json FILE          write the results as JSON\n"
"  --csv FILE           write every run's raw figures as CSV\n"
"  --baseline FILE      compare with a saved --json file: each benchmark\n"
"                       (matched by name and params) is faster, slower or\n"
"                       the same, with the speed-up ratio (>1 is faster)\n"
"  --same-band PCT      ratios within 1 +- PCT/100 are 'same' (default 5)\n"
"  --fail-over PCT      with --baseline: exit 3 if a benchmark is more than\n"
"                       PCT percent slower than its baseline\n"
"  --report DIR         write an SVG chart per benchmark group and an\n"
"                       index.html into DIR (created if missing)\n"
"  --check-json FILE    validate a --json file instead of running: it\n"
"                       parses, has a result for every selected benchmark,\n"
"                       none failed, every figure positive; exit 0 or 1\n"
"  --force              report figures even from a sanitizer or unoptimised\n"
"                       build (they are marked as such)\n"
"  --no-fork            run in this process instead of a child per run\n"
"                       (for debuggers; no crash isolation)\n"
"  -h, --help           this help\n"
"\n"
"exit status: 0 all passed; 1 a benchmark failed (--check-json: the file\n"
"is bad); 2 bad usage or a refused build; 3 slower than the baseline by\n"
"more than --fail-over\n",
          prog);
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
static void die_usage(const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(try '%s --help')\n", prog);
  exit(EXIT_USAGE);
}

/* Parses a non-negative integer with an optional k/M/G (x1000) suffix.
 * Returns 0, or -1 on anything else, including overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
  if (*s < '0' || *s > '9')
    return -1;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  uint64_t mul = 1;
  switch (*s) {
  case '\0': break;
  case 'k': case 'K': mul = 1000u; s++; break;
  case 'm': case 'M': mul = 1000000u; s++; break;
  case 'g': case 'G': mul = 1000000000u; s++; break;
  default: return -1;
  }
  if (*s != '\0' || (v != 0 && v > UINT64_MAX / mul))
    return -1;
  *out = v * mul;
  return 0;
}

static unsigned parse_count(const char *opt, const char *s, unsigned lo,
                            unsigned hi)
{
  uint64_t v;
  if (parse_u64(s, &v) != 0 || v < lo || v > hi)
    die_usage("%s: '%s' is not an integer from %u to %u", opt, s, lo, hi);
  return (unsigned)v;
}

/* A percentage from 0 to 1000, decimals allowed. */
static double parse_pct(const char *opt, const char *s)
{
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0 && v <= 1000))
    die_usage("%s: '%s' is not a percentage from 0 to 1000", opt, s);
  return v;
}

static void parse_override(options_t *o, const char *arg)
{
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || eq[1] == '\0')
    die_usage("--param '%s': expected KEY=VALUE or NAME.KEY=VALUE", arg);
  override_t ov;
  memset(&ov, 0, sizeof ov);
  ov.arg = arg;
  const char *key = arg;
  const char *dot = memchr(arg, '.', (size_t)(eq - arg));
  if (dot) {
    if (dot == arg || (size_t)(dot - arg) >= sizeof ov.scope)
      die_usage("--param '%s': bad benchmark name", arg);
    memcpy(ov.scope, arg, (size_t)(dot - arg));
    key = dot + 1;
  }
  if (key == eq || (size_t)(eq - key) >= sizeof ov.key)
    die_usage("--param '%s': bad parameter name", arg);
  memcpy(ov.key, key, (size_t)(eq - key));
  if (parse_u64(eq + 1, &ov.value) != 0)
    die_usage("--param '%s': '%s' is not a non-negative integer "
              "(k, M, G suffixes allowed)",
              arg, eq + 1);
  override_t *grown = realloc(o->ov, (o->nov + 1) * sizeof *o->ov);
  if (!grown) {
    fprintf(stderr, "%s: out of memory\n", prog);
    exit(EXIT_FAILED);
  }
  o->ov = grown;
  o->ov[o->nov++] = ov;
}

static int bench_index(const char *name)
{
  for (size_t i = 0; i < NBENCH; i++)
    if (strcmp(benches[i]->name, name) == 0)
      return (int)i;
  return -1;
}

static void parse_args(options_t *o, int argc, char **argv, bool *list)
{
  enum { O_LIST = 256, O_RUNS, O_QUICK, O_PARAM, O_WORKERS, O_TIMEOUT,
         O_JSON, O_CSV, O_FORCE, O_NOFORK, O_BASELINE, O_SAME_BAND,
         O_FAIL_OVER, O_REPORT, O_CHECK_JSON };
  static const struct option longopts[] = {
      {"list", no_argument, NULL, O_LIST},
      {"runs", required_argument, NULL, O_RUNS},
      {"quick", no_argument, NULL, O_QUICK},
      {"param", required_argument, NULL, O_PARAM},
      {"workers", required_argument, NULL, O_WORKERS},
      {"timeout", required_argument, NULL, O_TIMEOUT},
      {"json", required_argument, NULL, O_JSON},
      {"csv", required_argument, NULL, O_CSV},
      {"force", no_argument, NULL, O_FORCE},
      {"no-fork", no_argument, NULL, O_NOFORK},
      {"baseline", required_argument, NULL, O_BASELINE},
      {"same-band", required_argument, NULL, O_SAME_BAND},
      {"fail-over", required_argument, NULL, O_FAIL_OVER},
      {"report", required_argument, NULL, O_REPORT},
      {"check-json", required_argument, NULL, O_CHECK_JSON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };

  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case O_LIST: *list = true; break;
    case O_RUNS: o->runs = parse_count("--runs", optarg, 1, 1000); break;
    case O_QUICK: o->quick = true; break;
    case O_PARAM: parse_override(o, optarg); break;
    case O_WORKERS:
      o->workers = parse_count("--workers", optarg, 0, 256);
      break;
    case O_TIMEOUT:
      o->timeout_ms = 1000u * parse_count("--timeout", optarg, 1, 86400);
      break;
    case O_JSON: o->json_path = optarg; break;
    case O_CSV: o->csv_path = optarg; break;
    case O_FORCE: o->force = true; break;
    case O_NOFORK: o->no_fork = true; break;
    case O_BASELINE: o->baseline_path = optarg; break;
    case O_SAME_BAND:
      o->same_band_pct = parse_pct("--same-band", optarg);
      break;
    case O_FAIL_OVER:
      o->fail_over_pct = parse_pct("--fail-over", optarg);
      break;
    case O_REPORT: o->report_dir = optarg; break;
    case O_CHECK_JSON: o->check_json_path = optarg; break;
    case 'h': usage(stdout); exit(0);
    case ':': die_usage("option '%s' needs a value", argv[optind - 1]);
    default: die_usage("unknown option '%s'", argv[optind - 1]);
    }
  }

  bool any = false;
  for (int i = optind; i < argc; i++) {
    bool matched = false;
    for (size_t b = 0; b < NBENCH; b++) {
      if (fnmatch(argv[i], benches[b]->name, 0) == 0) {
        o->selected[b] = true;
        matched = true;
      }
    }
    if (!matched)
      die_usage("no benchmark matches '%s' (see --list)", argv[i]);
    any = true;
  }
  if (!any)
    for (size_t b = 0; b < NBENCH; b++)
      o->selected[b] = true;
  if (o->fail_over_pct >= 0 && !o->baseline_path)
    die_usage("--fail-over needs --baseline");
}

/* Resolves the parameters of benchmark b: defaults, --quick, overrides. */
static void resolve_params(options_t *o, size_t b, uint64_t *param)
{
  const bench_t *bench = benches[b];
  for (size_t i = 0; i < BENCH_MAX_PARAMS && bench->params[i].key; i++) {
    const bench_param_t *p = &bench->params[i];
    param[i] = o->quick ? p->quick : p->def;
    for (size_t k = 0; k < o->nov; k++) {
      override_t *ov = &o->ov[k];
      if (strcmp(ov->key, p->key) != 0)
        continue;
      if (ov->scope[0] && strcmp(ov->scope, bench->name) != 0)
        continue;
      if (ov->value < p->min || ov->value > p->max)
        die_usage("--param %s: %s needs %s from %" PRIu64 " to %" PRIu64,
                  ov->arg, bench->name, p->key, p->min, p->max);
      param[i] = ov->value;
      ov->used = true;
    }
  }
}

static void check_overrides(const options_t *o)
{
  for (size_t k = 0; k < o->nov; k++) {
    const override_t *ov = &o->ov[k];
    if (ov->used)
      continue;
    if (ov->scope[0]) {
      int b = bench_index(ov->scope);
      if (b < 0)
        die_usage("--param %s: there is no benchmark '%s' (see --list)",
                  ov->arg, ov->scope);
      if (!o->selected[b])
        die_usage("--param %s: benchmark %s is not selected", ov->arg,
                  ov->scope);
      die_usage("--param %s: %s has no parameter '%s' (see --list)", ov->arg,
                ov->scope, ov->key);
    }
    die_usage("--param %s: no selected benchmark has a parameter '%s' "
              "(see --list)",
              ov->arg, ov->key);
  }
}

static void format_params(const bench_t *b, const uint64_t *param, char *buf,
                          size_t cap)
{
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < BENCH_MAX_PARAMS && b->params[i].key; i++) {
    int w = snprintf(buf + n, cap - n, "%s%s=%" PRIu64, i ? " " : "",
                     b->params[i].key, param[i]);
    if (w < 0 || (size_t)w >= cap - n)
      break;
    n += (size_t)w;
  }
}

static void list_benches(const options_t *o)
{
  for (size_t b = 0; b < NBENCH; b++) {
    const bench_t *bench = benches[b];
    if (!o->selected[b])
      continue;
    printf("%-12s %s\n", bench->name, bench->summary);
    printf("%-12s unit: %s (%s is better)\n", "", bench->unit,
           bench->higher_is_better ? "higher" : "lower");
    for (size_t i = 0; i < BENCH_MAX_PARAMS && bench->params[i].key; i++) {
      const bench_param_t *p = &bench->params[i];
      printf("%-12s %s=%" PRIu64 " (--quick %" PRIu64 ")  %s\n", "", p->key,
             p->def, p->quick, p->doc);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The machine                                                              */
/* ------------------------------------------------------------------------ */

typedef struct machine {
  char cpu[160];
  long cores;
  char kernel[200];
  char build_type[64];
  char sanitize[64];
  char date[32];
} machine_t;

static void trim(char *s)
{
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  size_t lead = strspn(s, " \t");
  memmove(s, s + lead, n - lead + 1);
}

static void cpu_model(char *out, size_t cap)
{
  /* x86 says "model name"; some ARM kernels only say "Hardware" or
   * "Processor". */
  static const char *const keys[] = {"model name", "Processor", "Hardware",
                                     "cpu model"};
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  int best = (int)(sizeof keys / sizeof keys[0]);
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    trim(line);
    for (int k = 0; k < best; k++) {
      if (strcmp(line, keys[k]) == 0) {
        char *val = colon + 1;
        trim(val);
        if (*val) {
          snprintf(out, cap, "%s", val);
          best = k;
        }
        break;
      }
    }
    if (best == 0)
      break;
  }
  fclose(f);
}

static void machine_probe(machine_t *m, time_t start)
{
  memset(m, 0, sizeof *m);
  cpu_model(m->cpu, sizeof m->cpu);
  m->cores = sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release,
             u.machine);
  else
    snprintf(m->kernel, sizeof m->kernel, "unknown");
  snprintf(m->build_type, sizeof m->build_type, "%s",
           BW_BENCH_BUILD_TYPE[0] ? BW_BENCH_BUILD_TYPE : "(none)");
  snprintf(m->sanitize, sizeof m->sanitize, "%s",
           BW_BENCH_SANITIZE[0] ? BW_BENCH_SANITIZE
           : BENCH_SANITIZER_SEEN ? "yes"
                                  : "");
  struct tm tm;
  gmtime_r(&start, &tm);
  strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Figures from a sanitizer build or an unoptimised library say nothing
 * about the runtime's speed; refuse them unless asked. Returns a reason,
 * or NULL if the build is fit to measure. */
static const char *build_unfit(void)
{
  if (BW_BENCH_SANITIZE[0])
    return "this is a sanitizer build (BW_SANITIZE=" BW_BENCH_SANITIZE ")";
  if (BENCH_SANITIZER_SEEN)
    return "this build has a sanitizer compiled in";
  if (strcasecmp(BW_BENCH_BUILD_TYPE, "Debug") == 0)
    return "this is a Debug build";
  if (!BW_BENCH_LIB_OPTIMIZED)
    return "the library is built without optimisation (build type '"
           BW_BENCH_BUILD_TYPE "' and no -O in the C flags)";
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct result {
  const bench_t *bench;
  uint64_t param[BENCH_MAX_PARAMS];
  char params[256];
  unsigned done;   /* runs completed */
  double *value;   /* [runs] */
  double *seconds; /* [runs] */
  uint64_t *work;  /* [runs] */
  bool failed;
  unsigned failed_run; /* 1-based */
  char error[BENCH_ERR_MAX];
  double median, min, max;
} result_t;

static int write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* What a child sends back: the filled run, and run's return code. */
typedef struct child_report {
  int rc;
  bench_run_t run;
} child_report_t;

static void run_in_child(bench_run_t *r, uint64_t hard_ms)
{
  int fds[2];
  if (pipe(fds) != 0) {
    bench_fail(r, "pipe: %s", strerror(errno));
    return;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    bench_fail(r, "fork: %s", strerror(errno));
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    child_report_t rep;
    memset(&rep, 0, sizeof rep);
    rep.run = *r;
    rep.rc = r->bench->run(&rep.run);
    fflush(NULL); /* whatever the run printed; _exit does not flush */
    _exit(write_all(fds[1], &rep, sizeof rep) == 0 ? 0 : 3);
  }
  close(fds[1]);

  child_report_t rep;
  size_t got = 0;
  bool timed_out = false;
  uint64_t deadline = bench_now_ns() + hard_ms * 1000000u;
  for (;;) {
    uint64_t now = bench_now_ns();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    uint64_t left_ms = (deadline - now) / 1000000u + 1;
    int pr = poll(&pfd, 1, left_ms > 60000 ? 60000 : (int)left_ms);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      break;
    if (pr == 0)
      continue;
    ssize_t n = read(fds[0], (char *)&rep + got, sizeof rep - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (got == sizeof rep)
      break;
  }
  close(fds[0]);
  if (timed_out)
    kill(pid, SIGKILL);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;

  if (timed_out) {
    bench_fail(r, "hung: no result after %" PRIu64 " s, run killed",
               hard_ms / 1000);
    return;
  }
  if (got == sizeof rep) {
    r->value = rep.run.value;
    r->seconds = rep.run.seconds;
    r->work = rep.run.work;
    memcpy(r->error, rep.run.error, sizeof r->error);
    r->error[sizeof r->error - 1] = '\0';
    if (rep.rc != 0 && r->error[0] == '\0')
      bench_fail(r, "failed without saying why");
    return;
  }
  if (WIFSIGNALED(status))
    bench_fail(r, "crashed: killed by signal %d (%s)", WTERMSIG(status),
               strsignal(WTERMSIG(status)));
  else if (WIFEXITED(status))
    bench_fail(r, "the run exited with status %d before reporting",
               WEXITSTATUS(status));
  else
    bench_fail(r, "the run ended before reporting");
}

static void run_one(const options_t *o, bench_run_t *r)
{
  if (o->no_fork) {
    if (r->bench->run(r) != 0 && r->error[0] == '\0')
      bench_fail(r, "failed without saying why");
    return;
  }
  uint64_t wait = r->bench->wait_ms ? r->bench->wait_ms(r) : 0;
  run_in_child(r, o->timeout_ms + HARD_GRACE_MS + wait);
}

static void summarise(result_t *res)
{
  bench_summary_t sum;
  if (bench_summarise(res->value, res->done, &sum) != 0) {
    /* Every run's figure was range-checked when it came in. */
    fprintf(stderr, "%s: cannot summarise %s (out of memory?)\n", prog,
            res->bench->name);
    exit(EXIT_FAILED);
  }
  res->median = sum.median;
  res->min = sum.min;
  res->max = sum.max;
}

static const char *human(double v, char *buf, size_t cap)
{
  return bench_human(v, buf, cap);
}

static bool tty_progress;

static void progress_run(size_t idx, size_t total, const result_t *res,
                         unsigned run, unsigned runs)
{
  if (!tty_progress)
    return;
  char last[64] = "";
  if (res->done) {
    char h[24];
    snprintf(last, sizeof last, "  last %s %s",
             human(res->value[res->done - 1], h, sizeof h), res->bench->unit);
  }
  fprintf(stderr, "\r\033[K[%zu/%zu] %s %s  run %u/%u%s", idx, total,
          res->bench->name, res->params, run, runs, last);
  fflush(stderr);
}

static void progress_done(size_t idx, size_t total, const result_t *res)
{
  char a[24], b[24], c[24];
  if (tty_progress)
    fprintf(stderr, "\r\033[K");
  if (res->failed)
    fprintf(stderr, "[%zu/%zu] %s %s: FAILED (run %u): %s\n", idx, total,
            res->bench->name, res->params, res->failed_run, res->error);
  else
    fprintf(stderr, "[%zu/%zu] %s %s: %s %s (median of %u; min %s, max %s)\n",
            idx, total, res->bench->name, res->params,
            human(res->median, a, sizeof a), res->bench->unit, res->done,
            human(res->min, b, sizeof b), human(res->max, c, sizeof c));
  fflush(stderr);
}

/* ------------------------------------------------------------------------ */
/* Reports                                                                  */
/* ------------------------------------------------------------------------ */

static void print_table(FILE *f, const result_t *res, size_t n,
                        const machine_t *m, const options_t *o,
                        unsigned workers)
{
  int wn = (int)strlen("benchmark"), wp = (int)strlen("parameters");
  int wu = (int)strlen("unit");
  for (size_t i = 0; i < n; i++) {
    int l = (int)strlen(res[i].bench->name);
    if (l > wn) wn = l;
    l = (int)strlen(res[i].params);
    if (l > wp) wp = l;
    l = (int)strlen(res[i].bench->unit);
    if (l > wu) wu = l;
  }
  fprintf(f, "\n%-*s  %-*s  %9s  %9s  %9s  %s\n", wn, "benchmark", wp,
          "parameters", "median", "min", "max", "unit");
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    if (r->failed) {
      fprintf(f, "%-*s  %-*s  FAILED: %s\n", wn, r->bench->name, wp,
              r->params, r->error);
      continue;
    }
    char a[24], b[24], c[24];
    fprintf(f, "%-*s  %-*s  %9s  %9s  %9s  %s%s\n", wn, r->bench->name, wp,
            r->params, human(r->median, a, sizeof a),
            human(r->min, b, sizeof b), human(r->max, c, sizeof c),
            r->bench->unit,
            r->bench->higher_is_better ? "" : " (lower is better)");
  }
  fprintf(f, "\nmachine: %s, %ld cores, %s, %s, build %s%s%s\n", m->cpu,
          m->cores, m->kernel, BENCH_COMPILER, m->build_type,
          m->sanitize[0] ? ", sanitize=" : "", m->sanitize);
  fprintf(f, "runs: %u per benchmark (median), workers: %u, %s%s\n", o->runs,
          workers, m->date, o->quick ? ", --quick sizes" : "");
  const char *unfit = build_unfit();
  if (unfit)
    fprintf(f, "WARNING: %s: these figures do not describe a release build "
               "(--force)\n",
            unfit);
}

static bench_cmp_t compare_result(const result_t *r,
                                  const bench_baseline_t *base,
                                  const options_t *o,
                                  const bench_base_entry_t **entry)
{
  *entry = bench_baseline_find(base, r->bench->name, r->params);
  return bench_compare(!r->failed, r->median, r->params, r->bench->unit,
                       r->bench->higher_is_better, *entry, o->same_band_pct,
                       o->fail_over_pct);
}

/* The comparison with --baseline, after the table. Returns true if a
 * benchmark is slower than its baseline by more than --fail-over. */
static bool print_comparison(FILE *f, const result_t *res, size_t n,
                             const bench_baseline_t *base, const options_t *o)
{
  int wn = (int)strlen("benchmark");
  for (size_t i = 0; i < n; i++) {
    int l = (int)strlen(res[i].bench->name);
    if (l > wn) wn = l;
  }
  fprintf(f, "\nbaseline: %s (%s; %s)\n", base->path, base->date,
          base->machine);
  fprintf(f, "%-*s  %9s  %9s  %8s  %s\n", wn, "benchmark", "median",
          "baseline", "speed-up", "verdict");
  bool regressed = false;
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    const bench_base_entry_t *e;
    bench_cmp_t c = compare_result(r, base, o, &e);
    char a[24] = "-", b[24] = "-", ratio[24] = "-";
    if (!r->failed)
      human(r->median, a, sizeof a);
    if (e && e->ok)
      human(e->median, b, sizeof b);
    if (c.verdict <= BENCH_SLOWER)
      snprintf(ratio, sizeof ratio, isinf(c.ratio) ? "inf" : "%.2fx",
               c.ratio);
    char why[400] = "";
    if (c.verdict == BENCH_NOT_COMPARABLE && e)
      snprintf(why, sizeof why, " (baseline: %s, %s)", e->params, e->unit);
    else if (c.verdict == BENCH_SLOWER || (c.regressed))
      snprintf(why, sizeof why, " (%.1f%% slower%s)", c.slower_pct,
               c.regressed ? "; over --fail-over: REGRESSION" : "");
    else if (c.verdict == BENCH_FASTER && !isinf(c.ratio))
      snprintf(why, sizeof why, " (%.1f%% faster)", (c.ratio - 1) * 100);
    fprintf(f, "%-*s  %9s  %9s  %8s  %s%s\n", wn, r->bench->name, a, b,
            ratio, bench_verdict_name(c.verdict), why);
    regressed |= c.regressed;
  }
  fprintf(f, "speed-up: baseline/now for figures where lower is better, "
             "now/baseline otherwise; 'same' within %g%%",
          o->same_band_pct);
  if (o->fail_over_pct >= 0)
    fprintf(f, "; --fail-over %g%%: %s", o->fail_over_pct,
            regressed ? "REGRESSED" : "no regression");
  fputc('\n', f);
  return regressed;
}

/* --report: the charts and index.html. Returns 0, or -1 (said why). */
static int write_report(const result_t *res, size_t n, const machine_t *m,
                        const options_t *o, unsigned workers,
                        const bench_baseline_t *base)
{
  report_row_t *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) {
    fprintf(stderr, "%s: out of memory\n", prog);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    report_row_t *w = &rows[i];
    w->name = r->bench->name;
    w->group = r->bench->group ? r->bench->group : "other";
    w->unit = r->bench->unit;
    w->params = r->params;
    w->higher_is_better = r->bench->higher_is_better;
    w->ok = !r->failed;
    w->error = r->error;
    w->median = r->median;
    w->min = r->min;
    w->max = r->max;
    if (o->baseline_path) {
      const bench_base_entry_t *e;
      bench_cmp_t c = compare_result(r, base, o, &e);
      w->verdict = bench_verdict_name(c.verdict);
      w->has_base = c.verdict <= BENCH_SLOWER;
      if (w->has_base) {
        w->base_median = e->median;
        w->ratio = c.ratio;
      }
    }
  }
  char mline[700], rline[200], bline[600];
  snprintf(mline, sizeof mline, "%s, %ld cores, %s, %s, build %s%s%s",
           m->cpu, m->cores, m->kernel, BENCH_COMPILER, m->build_type,
           m->sanitize[0] ? ", sanitize=" : "", m->sanitize);
  snprintf(rline, sizeof rline, "%u runs per benchmark (median), %u workers, "
                                "%s%s",
           o->runs, workers, m->date, o->quick ? ", --quick sizes" : "");
  snprintf(bline, sizeof bline, "%s (%s; %s)", base->path, base->date,
           base->machine);
  const char *unfit = build_unfit();
  char warn[300];
  snprintf(warn, sizeof warn, "WARNING: %s (--force): not a release build's "
                              "figures",
           unfit ? unfit : "");
  report_info_t info = {.machine = mline,
                        .run = rline,
                        .baseline = o->baseline_path ? bline : NULL,
                        .warning = unfit ? warn : NULL};
  char err[600];
  int rc = bench_report_write(o->report_dir, rows, n, &info, err, sizeof err);
  free(rows);
  if (rc != 0) {
    fprintf(stderr, "%s: --report: %s\n", prog, err);
    return -1;
  }
  fprintf(stderr, "%s: report written to %s/index.html\n", prog,
          o->report_dir);
  return 0;
}

/* --check-json: validates a results file against the selected benchmarks. */
static int check_json(const options_t *o)
{
  const char *names[NBENCH];
  size_t n = 0;
  for (size_t b = 0; b < NBENCH; b++)
    if (o->selected[b])
      names[n++] = benches[b]->name;
  int problems = bench_check_json(o->check_json_path, names, n, stderr);
  if (problems) {
    fprintf(stderr, "%s: %s: %d problem%s\n", prog, o->check_json_path,
            problems, problems == 1 ? "" : "s");
    return EXIT_FAILED;
  }
  printf("%s: good: a result for each of %zu benchmarks, every figure "
         "sane\n",
         o->check_json_path, n);
  return 0;
}

static void json_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    case '\b': fputs("\\b", f); break;
    case '\f': fputs("\\f", f); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f);
    }
  }
  fputc('"', f);
}

static void json_num(FILE *f, double v)
{
  /* Every figure here is a finite, positive-or-zero rate, size or
   * percentage. Three decimals for figures of 1 and more; six significant
   * digits below, so a small positive figure (idle_cpu's thousandths of a
   * percent) never reads back as 0. */
  if (v != 0 && fabs(v) < 1)
    fprintf(f, "%.6g", v);
  else
    fprintf(f, "%.3f", v);
}

static int write_json(FILE *f, const result_t *res, size_t n,
                      const machine_t *m, const options_t *o,
                      unsigned workers)
{
  fputs("{\n  \"machine\": {\"cpu\": ", f);
  json_str(f, m->cpu);
  fprintf(f, ", \"cores\": %ld, \"kernel\": ", m->cores);
  json_str(f, m->kernel);
  fputs(", \"compiler\": ", f);
  json_str(f, BENCH_COMPILER);
  fputs(", \"build_type\": ", f);
  json_str(f, BW_BENCH_BUILD_TYPE);
  fputs(", \"sanitize\": ", f);
  json_str(f, m->sanitize);
  fputs(", \"date\": ", f);
  json_str(f, m->date);
  fprintf(f,
          "},\n  \"config\": {\"bulwark\": \"%d.%d.%d\", \"runs\": %u, "
          "\"workers\": %u, \"quick\": %s, \"forced\": %s},\n",
          BW_VERSION_MAJOR, BW_VERSION_MINOR, BW_VERSION_PATCH, o->runs,
          workers, o->quick ? "true" : "false",
          (o->force && build_unfit()) ? "true" : "false");
  fputs("  \"results\": [", f);
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    fputs(i ? ",\n    {\"name\": " : "\n    {\"name\": ", f);
    json_str(f, r->bench->name);
    fputs(", \"params\": {", f);
    for (size_t k = 0; k < BENCH_MAX_PARAMS && r->bench->params[k].key; k++) {
      if (k)
        fputs(", ", f);
      json_str(f, r->bench->params[k].key);
      fprintf(f, ": %" PRIu64, r->param[k]);
    }
    fputs("}, \"unit\": ", f);
    json_str(f, r->bench->unit);
    fprintf(f, ", \"higher_is_better\": %s",
            r->bench->higher_is_better ? "true" : "false");
    if (r->failed) {
      fputs(", \"error\": ", f);
      json_str(f, r->error);
      fputs(", \"median\": null, \"min\": null, \"max\": null, \"runs\": []}",
            f);
      continue;
    }
    fputs(", \"median\": ", f);
    json_num(f, r->median);
    fputs(", \"min\": ", f);
    json_num(f, r->min);
    fputs(", \"max\": ", f);
    json_num(f, r->max);
    fputs(", \"runs\": [", f);
    for (unsigned k = 0; k < r->done; k++) {
      if (k)
        fputs(", ", f);
      json_num(f, r->value[k]);
    }
    fputs("]}", f);
  }
  fputs("\n  ]\n}\n", f);
  return ferror(f) ? -1 : 0;
}

static void csv_field(FILE *f, const char *s)
{
  if (strpbrk(s, ",\"\n\r") == NULL) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static int write_csv(FILE *f, const result_t *res, size_t n)
{
  fputs("benchmark,params,run,value,unit,seconds,work,error\n", f);
  for (size_t i = 0; i < n; i++) {
    const result_t *r = &res[i];
    for (unsigned k = 0; k < r->done; k++) {
      csv_field(f, r->bench->name);
      fputc(',', f);
      csv_field(f, r->params);
      fprintf(f, ",%u,%.3f,", k + 1, r->value[k]);
      csv_field(f, r->bench->unit);
      fprintf(f, ",%.6f,%" PRIu64 ",\n", r->seconds[k], r->work[k]);
    }
    if (r->failed) {
      csv_field(f, r->bench->name);
      fputc(',', f);
      csv_field(f, r->params);
      fprintf(f, ",%u,,", r->failed_run);
      csv_field(f, r->bench->unit);
      fputs(",,,", f);
      csv_field(f, r->error);
      fputc('\n', f);
    }
  }
  return ferror(f) ? -1 : 0;
}

static FILE *open_output(const char *path, const char *what)
{
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "%s: cannot write the %s file '%s': %s\n", prog, what,
            path, strerror(errno));
    exit(EXIT_USAGE);
  }
  return f;
}

static int close_output(FILE *f, const char *path, int wrote)
{
  if (fclose(f) != 0 || wrote != 0) {
    fprintf(stderr, "%s: writing '%s' failed: %s\n", prog, path,
            strerror(errno));
    return -1;
  }
  return 0;
}

static void free_results(result_t *res, size_t n, options_t *o)
{
  for (size_t i = 0; i < n; i++) {
    free(res[i].value);
    free(res[i].seconds);
    free(res[i].work);
  }
  free(res);
  free(o->ov);
  o->ov = NULL;
}

int main(int argc, char **argv)
{
  options_t o;
  memset(&o, 0, sizeof o);
  o.runs = 5;
  o.timeout_ms = 120000;
  o.same_band_pct = SAME_BAND_PCT;
  o.fail_over_pct = -1;
  bool list = false;
  parse_args(&o, argc, argv, &list);

  if (list) {
    list_benches(&o);
    free(o.ov);
    return 0;
  }
  if (o.check_json_path) {
    int rc = check_json(&o);
    free(o.ov);
    return rc;
  }

  size_t nsel = 0;
  result_t *res = calloc(NBENCH, sizeof *res);
  if (!res) {
    fprintf(stderr, "%s: out of memory\n", prog);
    return EXIT_FAILED;
  }
  for (size_t b = 0; b < NBENCH; b++) {
    if (!o.selected[b])
      continue;
    result_t *r = &res[nsel++];
    r->bench = benches[b];
    resolve_params(&o, b, r->param);
    format_params(r->bench, r->param, r->params, sizeof r->params);
    r->value = calloc(o.runs, sizeof *r->value);
    r->seconds = calloc(o.runs, sizeof *r->seconds);
    r->work = calloc(o.runs, sizeof *r->work);
    if (!r->value || !r->seconds || !r->work) {
      fprintf(stderr, "%s: out of memory\n", prog);
      return EXIT_FAILED;
    }
  }
  check_overrides(&o);

  const char *unfit = build_unfit();
  if (unfit && !o.force) {
    fprintf(stderr,
            "%s: refusing to report figures: %s.\n"
            "Benchmark an optimised build without sanitizers, e.g.\n"
            "  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release "
            "-DBW_SANITIZE=\n"
            "or pass --force to run anyway (the report is then marked).\n",
            prog, unfit);
    free_results(res, nsel, &o);
    return EXIT_USAGE;
  }

  /* Read the baseline and open the outputs now: a bad file or path should
   * fail before minutes of runs. */
  bench_baseline_t base;
  memset(&base, 0, sizeof base);
  if (o.baseline_path) {
    char err[512];
    if (bench_baseline_load(o.baseline_path, &base, err, sizeof err) != 0) {
      fprintf(stderr, "%s: --baseline %s\n", prog, err);
      free_results(res, nsel, &o);
      return EXIT_USAGE;
    }
  }
  FILE *json = o.json_path ? open_output(o.json_path, "JSON") : NULL;
  FILE *csv = o.csv_path ? open_output(o.csv_path, "CSV") : NULL;

  machine_t m;
  machine_probe(&m, time(NULL));
  unsigned workers =
      o.workers ? o.workers : (unsigned)(m.cores > 0 ? m.cores : 1);
  tty_progress = isatty(STDERR_FILENO);
  if (unfit)
    fprintf(stderr, "%s: WARNING: %s; running anyway (--force)\n", prog,
            unfit);

  int exit_code = 0;
  for (size_t i = 0; i < nsel; i++) {
    result_t *r = &res[i];
    for (unsigned k = 0; k < o.runs; k++) {
      progress_run(i + 1, nsel, r, k + 1, o.runs);
      bench_run_t run;
      memset(&run, 0, sizeof run);
      run.bench = r->bench;
      memcpy(run.param, r->param, sizeof run.param);
      run.workers = o.workers;
      run.timeout_ms = o.timeout_ms;
      run_one(&o, &run);
      if (run.error[0] == '\0' && !(run.value >= 0 && run.value < 1e300))
        bench_fail(&run, "figure out of range (%g)", run.value);
      if (run.error[0] != '\0') {
        r->failed = true;
        r->failed_run = k + 1;
        memcpy(r->error, run.error, sizeof r->error);
        exit_code = EXIT_FAILED;
        break;
      }
      r->value[r->done] = run.value;
      r->seconds[r->done] = run.seconds;
      r->work[r->done] = run.work;
      r->done++;
    }
    if (!r->failed)
      summarise(r);
    progress_done(i + 1, nsel, r);
  }

  print_table(stdout, res, nsel, &m, &o, workers);
  if (o.baseline_path && print_comparison(stdout, res, nsel, &base, &o) &&
      exit_code == 0)
    exit_code = EXIT_REGRESSED;
  fflush(stdout);

  if (json && close_output(json, o.json_path,
                           write_json(json, res, nsel, &m, &o, workers)) != 0)
    exit_code = EXIT_FAILED;
  if (csv && close_output(csv, o.csv_path, write_csv(csv, res, nsel)) != 0)
    exit_code = EXIT_FAILED;
  if (o.report_dir &&
      write_report(res, nsel, &m, &o, workers, &base) != 0)
    exit_code = EXIT_FAILED;

  bench_baseline_free(&base);
  free_results(res, nsel, &o);
  return exit_code;
}
