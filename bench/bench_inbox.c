/*
 * inbox_rtt: the main thread (not an actor) asks an echo actor with
 * bw_inbox_request and takes the reply with bw_inbox_receive from its inbox,
 * one exchange at a time: the round trip of a thread that is told things,
 * the receive's wake-up included. The same exchange done with bw_call
 * (request, reply, the thread asleep meanwhile) runs in the same run, in
 * alternating blocks of `block` exchanges, so both see the same machine
 * state; the figure is the median over the inbox blocks of their mean
 * microseconds per exchange, and stderr shows bw_call's and the median of
 * the per-pair ratios (inbox / call).
 *
 * Both forms are the same exchange: a request with a deadline (the
 * watchdog's, on the runtime's clock: a timer armed and cancelled), the
 * echo actor monitored for its length (so a dead target ends the wait),
 * the thread asleep on a semaphore until the reply; each reply carries the
 * request's sequence number, checked. What differs: bw_call makes a
 * waiter (a pid) per call and retires it after, the inbox is made once.
 * The runtime's counters must show 2 handled messages per exchange (the
 * request, and the reply the thread took) and nothing else.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IB_ECHO = BENCH_MSG_USER };

static int echo_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == IB_ECHO && (msg->flags & BW_MSGF_REQUEST))
    bw_reply(ctx, msg, 0, IB_ECHO, msg->data, msg->len);
  return BW_CONTINUE;
}

static const bw_behaviour_t echo_behaviour = {.name = "bench.inbox.echo", .handle = echo_handle};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, uint64_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One block of exchanges through the inbox; seq goes on from *seq. */
static int inbox_block(bench_run_t *r, bw_inbox_t *ib, bw_pid_t echo, uint64_t block,
                       uint64_t *seq) {
  for (uint64_t i = 0; i < block; i++) {
    uint64_t s = ++*seq, ref, got;
    int rc = bw_inbox_request(ib, echo, IB_ECHO, &s, sizeof s, r->timeout_ms, &ref);
    const bw_msg_t *m = NULL;
    if (rc == 0) /* the request's deadline ends the wait (BW_MSG_REQUEST_TIMEOUT) */
      rc = bw_inbox_receive(ib, BW_INBOX_FOREVER, &m);
    if (rc != 0)
      return bench_fail(r, "inbox exchange %" PRIu64 ": %s", s, bw_strerror(rc));
    if (!(m->flags & BW_MSGF_REPLY) || m->ref != ref || m->len != sizeof got)
      return bench_fail(r, "inbox exchange %" PRIu64 ": not its reply (type %" PRIu32 ")", s,
                        m->type);
    memcpy(&got, m->data, sizeof got);
    if (got != s)
      return bench_fail(r, "inbox exchange %" PRIu64 ": reply carries %" PRIu64, s, got);
  }
  return 0;
}

/* The same block with bw_call. */
static int call_block(bench_run_t *r, bw_runtime_t *rt, bw_pid_t echo, uint64_t block,
                      uint64_t *seq) {
  for (uint64_t i = 0; i < block; i++) {
    uint64_t s = ++*seq, got;
    bw_reply_t rep;
    int rc = bw_call(rt, echo, IB_ECHO, &s, sizeof s, r->timeout_ms, &rep);
    if (rc != 0 || rep.len != sizeof got)
      return bench_fail(r, "bw_call %" PRIu64 ": %s", s, bw_strerror(rc));
    memcpy(&got, rep.data, sizeof got);
    if (got != s)
      return bench_fail(r, "bw_call %" PRIu64 ": reply carries %" PRIu64, s, got);
  }
  return 0;
}

/* Alternating blocks; per pair, each form's mean us per exchange. */
static int run_pairs(bench_run_t *r, bw_runtime_t *rt, bw_inbox_t *ib, bw_pid_t echo,
                     uint64_t block, uint64_t pairs, double *inbox_us, double *call_us) {
  uint64_t seq = 0;
  for (uint64_t p = 0; p < pairs; p++) {
    uint64_t t0 = bench_now_ns();
    if (inbox_block(r, ib, echo, block, &seq) != 0)
      return -1;
    uint64_t t1 = bench_now_ns();
    if (call_block(r, rt, echo, block, &seq) != 0)
      return -1;
    uint64_t t2 = bench_now_ns();
    inbox_us[p] = (double)(t1 - t0) / 1e3 / (double)block;
    call_us[p] = (double)(t2 - t1) / 1e3 / (double)block;
  }
  return 0;
}

static int inbox_rtt_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n"), block = bench_param(r, "block");
  if (n < block)
    return bench_fail(r, "n (%" PRIu64 ") must be at least block (%" PRIu64 ")", n, block);
  uint64_t pairs = n / block;
  double *inbox_us = calloc(pairs, sizeof(double)), *call_us = calloc(pairs, sizeof(double));
  double *ratio = calloc(pairs, sizeof(double));
  bw_runtime_t *rt;
  if (inbox_us == NULL || call_us == NULL || ratio == NULL ||
      bench_runtime_create(r, &rt) != 0) {
    free(inbox_us), free(call_us), free(ratio);
    return r->error[0] ? -1 : bench_fail(r, "out of memory");
  }
  bw_pid_t echo;
  bw_inbox_t *ib = NULL;
  int rc = bw_spawn(rt, &echo_behaviour, NULL, NULL, &echo);
  if (rc == 0)
    rc = bw_inbox_new(rt, NULL, &ib);
  if (rc != 0)
    bench_fail(r, "setup: %s", bw_strerror(rc));
  uint64_t t0 = bench_now_ns();
  int ok = rc == 0 ? run_pairs(r, rt, ib, echo, block, pairs, inbox_us, call_us) : -1;
  uint64_t t1 = bench_now_ns();
  bw_inbox_destroy(ib);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  /* per exchange: the request the echo handled, the reply the thread took */
  if (ok == 0 && fin == 0)
    ok = bench_check_stats(r, &st, 2 * 2 * pairs * block, 1);
  if (ok == 0 && fin == 0) {
    for (uint64_t p = 0; p < pairs; p++)
      ratio[p] = inbox_us[p] / call_us[p];
    double mi = median(inbox_us, pairs), mc = median(call_us, pairs), mr = median(ratio, pairs);
    fprintf(stderr,
            "inbox_rtt: inbox %.3f us, bw_call %.3f us per exchange (medians of %" PRIu64
            " blocks of %" PRIu64 "); inbox / call per pair: median %.2f\n",
            mi, mc, pairs, block, mr);
    r->seconds = (double)(t1 - t0) / 1e9;
    r->work = 2 * pairs * block;
    r->value = mi;
  }
  free(inbox_us), free(call_us), free(ratio);
  return ok == 0 && fin == 0 ? 0 : -1;
}

const bench_t bench_inbox_rtt = {
    .name = "inbox_rtt",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "thread -> actor -> thread's inbox round trip, vs bw_call in the same run",
    .params = {{"n", 100000, 10000, 2, UINT64_C(1) << 32, "exchanges of each form"},
               {"block", 1000, 500, 1, UINT64_C(1) << 30, "exchanges per block (forms alternate)"}},
    .run = inbox_rtt_run,
};
