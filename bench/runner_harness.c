/*
 * The helpers benchmarks call (runner.h): parameters, errors, the clock,
 * a runtime's creation and final counters, and the GO / answer handshake
 * between main and a run's coordinator actor. All of it runs inside a
 * measured run (the child process, runner_run.c).
 */
#include "runner_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_param(const bench_run_t *r, const char *key)
{
  for (size_t i = 0; i < BENCH_MAX_PARAMS && r->bench->params[i].key; i++)
    if (strcmp(r->bench->params[i].key, key) == 0)
      return r->param[i];
  fprintf(stderr, "%s: benchmark %s has no parameter '%s' (bug)\n",
          runner_prog, r->bench->name, key);
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
  /* the restart benchmarks crash thousands of children a second: a report
   * each would cost a write(2) per crash inside the figure, and fill the
   * tables' terminal with lines; benchmarks measure the runtime silent */
  opts.log_level = BW_LOG_OFF;
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
