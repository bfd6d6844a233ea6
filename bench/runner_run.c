/*
 * Running: every measured run in a child process, the results it fills.
 *
 * The parent process never creates a runtime: it runs each measured run in
 * a child made with fork(), reads the run's figures back through a pipe,
 * and reports. A child per run costs about a millisecond and buys three
 * things: every run starts from the same small heap (idle_mem would
 * otherwise measure pages an earlier run left resident), a crash or a hang
 * in one run is reported as that benchmark's error instead of ending the
 * whole suite, and a hung run can be killed (the watchdog). --no-fork runs
 * in-process, for a debugger.
 */
#include "runner_internal.h"

#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Setup and teardown (spawning, bw_runtime_stop) are outside the bw_call
 * watchdog; the parent allows them this much on top of it before it kills
 * the child. */
#define HARD_GRACE_MS 60000u

/* --- A run in a child ---------------------------------------------------- */

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

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void child_main(const bench_run_t *r, int fd)
{
  child_report_t rep;
  memset(&rep, 0, sizeof rep);
  rep.run = *r;
  rep.rc = r->bench->run(&rep.run);
  fflush(NULL); /* whatever the run printed; _exit does not flush */
  _exit(write_all(fd, &rep, sizeof rep) == 0 ? 0 : 3);
}

/* Forks a child that runs r and writes its child_report_t into a pipe; the
 * parent gets the pipe's read end in *fd. Returns the child's pid, or -1
 * with r->error set. */
static pid_t fork_run(bench_run_t *r, int *fd)
{
  int fds[2];
  if (pipe(fds) != 0) {
    bench_fail(r, "pipe: %s", strerror(errno));
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    bench_fail(r, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(r, fds[1]);
  }
  close(fds[1]);
  *fd = fds[0];
  return pid;
}

/* Reads the child's report from fd until it is whole, the pipe closes, or
 * hard_ms pass (*timed_out). Returns the bytes read. */
static size_t read_report(int fd, child_report_t *rep, uint64_t hard_ms,
                          bool *timed_out)
{
  size_t got = 0;
  uint64_t deadline = bench_now_ns() + hard_ms * 1000000u;
  for (;;) {
    uint64_t now = bench_now_ns();
    if (now >= deadline) {
      *timed_out = true;
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    uint64_t left_ms = (deadline - now) / 1000000u + 1;
    int pr = poll(&pfd, 1, left_ms > 60000 ? 60000 : (int)left_ms);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      break;
    if (pr == 0)
      continue;
    ssize_t n = read(fd, (char *)rep + got, sizeof *rep - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (got == sizeof *rep)
      break;
  }
  return got;
}

/* Takes a whole report's figures and error into r. */
static void take_report(bench_run_t *r, const child_report_t *rep)
{
  r->value = rep->run.value;
  r->seconds = rep->run.seconds;
  r->work = rep->run.work;
  memcpy(r->error, rep->run.error, sizeof r->error);
  r->error[sizeof r->error - 1] = '\0';
  if (rep->rc != 0 && r->error[0] == '\0')
    bench_fail(r, "failed without saying why");
}

/* Why a child that sent no whole report ended (its wait status). */
static void fail_ended(bench_run_t *r, int status)
{
  if (WIFSIGNALED(status))
    bench_fail(r, "crashed: killed by signal %d (%s)", WTERMSIG(status),
               strsignal(WTERMSIG(status)));
  else if (WIFEXITED(status))
    bench_fail(r, "the run exited with status %d before reporting",
               WEXITSTATUS(status));
  else
    bench_fail(r, "the run ended before reporting");
}

/* Runs r in a child, killed if it has not reported after hard_ms. */
static void run_in_child(bench_run_t *r, uint64_t hard_ms)
{
  int fd;
  pid_t pid = fork_run(r, &fd);
  if (pid < 0)
    return;
  child_report_t rep;
  bool timed_out = false;
  size_t got = read_report(fd, &rep, hard_ms, &timed_out);
  close(fd);
  if (timed_out)
    kill(pid, SIGKILL);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;

  if (timed_out)
    bench_fail(r, "hung: no result after %" PRIu64 " s, run killed",
               hard_ms / 1000);
  else if (got == sizeof rep)
    take_report(r, &rep);
  else
    fail_ended(r, status);
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

/* --- Results ------------------------------------------------------------- */

result_t *runner_results_new(options_t *o, size_t *n)
{
  *n = 0;
  result_t *res = calloc(runner_nbench, sizeof *res);
  if (!res) {
    fprintf(stderr, "%s: out of memory\n", runner_prog);
    return NULL;
  }
  for (size_t b = 0; b < runner_nbench; b++) {
    if (!o->selected[b])
      continue;
    result_t *r = &res[(*n)++];
    r->bench = runner_benches[b];
    runner_resolve_params(o, b, r->param);
    runner_format_params(r->bench, r->param, r->params, sizeof r->params);
    r->value = calloc(o->runs, sizeof *r->value);
    r->seconds = calloc(o->runs, sizeof *r->seconds);
    r->work = calloc(o->runs, sizeof *r->work);
    if (!r->value || !r->seconds || !r->work) {
      fprintf(stderr, "%s: out of memory\n", runner_prog);
      runner_results_free(res, *n);
      return NULL;
    }
  }
  return res;
}

void runner_results_free(result_t *res, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(res[i].value);
    free(res[i].seconds);
    free(res[i].work);
  }
  free(res);
}

static void summarise(result_t *res)
{
  bench_summary_t sum;
  if (bench_summarise(res->value, res->done, &sum) != 0) {
    /* Every run's figure was range-checked when it came in. */
    fprintf(stderr, "%s: cannot summarise %s (out of memory?)\n",
            runner_prog, res->bench->name);
    exit(EXIT_FAILED);
  }
  res->median = sum.median;
  res->min = sum.min;
  res->max = sum.max;
}

/* Measured run k (0-based) of r's benchmark. Returns false if it failed
 * (r->failed, with the run's error). */
static bool measure_once(const options_t *o, result_t *r, unsigned k)
{
  bench_run_t run;
  memset(&run, 0, sizeof run);
  run.bench = r->bench;
  memcpy(run.param, r->param, sizeof run.param);
  run.workers = o->workers;
  run.timeout_ms = o->timeout_ms;
  run_one(o, &run);
  if (run.error[0] == '\0' && !(run.value >= 0 && run.value < 1e300))
    bench_fail(&run, "figure out of range (%g)", run.value);
  if (run.error[0] != '\0') {
    r->failed = true;
    r->failed_run = k + 1;
    memcpy(r->error, run.error, sizeof r->error);
    return false;
  }
  r->value[r->done] = run.value;
  r->seconds[r->done] = run.seconds;
  r->work[r->done] = run.work;
  r->done++;
  return true;
}

int runner_run_all(const options_t *o, result_t *res, size_t n)
{
  int exit_code = 0;
  for (size_t i = 0; i < n; i++) {
    result_t *r = &res[i];
    for (unsigned k = 0; k < o->runs; k++) {
      runner_progress_run(i + 1, n, r, k + 1, o->runs);
      if (!measure_once(o, r, k)) {
        exit_code = EXIT_FAILED;
        break;
      }
    }
    if (!r->failed)
      summarise(r);
    runner_progress_done(i + 1, n, r);
  }
  return exit_code;
}
