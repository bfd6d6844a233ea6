/*
 * retry: what the retry pattern costs.
 *
 * retry_backoff  ns per delay computed (bw_retry_backoff_next), cycling
 *                through the five kinds: the per-retry arithmetic alone.
 * retry_budget   ns per call's budget bookkeeping: one deposit and one
 *                try_withdraw (granted or refused), on the runtime's clock.
 * retry_proxy    requests per second answered through a retry executor in
 *                front of an echo actor (direct=1: straight to the echo
 *                actor, the baseline), `window` requests kept in flight by a
 *                coordinator actor; every request succeeds at once, so this is
 *                the executor's forwarding overhead (slot, ref map, one extra
 *                hop and request each way).
 *
 * Declared here, not in runner.h: to run them they must be listed in
 * runner.h / runner.c's benches[] (the runner's files).
 */
#include "runner.h"

#include <bulwark/retry.h>
#include <stdio.h>
#include <string.h>

/* --- backoff ----------------------------------------------------------------- */

static int backoff_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  bw_retry_backoff_t b[BW_RETRY_BACKOFF__COUNT];
  bw_retry_backoff_state_t st[BW_RETRY_BACKOFF__COUNT];
  for (int k = 0; k < BW_RETRY_BACKOFF__COUNT; k++) {
    b[k] = (bw_retry_backoff_t){.kind = k, .initial_ms = 10, .max_ms = 60000, .multiplier = 2.0};
    if (bw_retry_backoff_start(&b[k], (uint64_t)k + 1, &st[k]) != 0)
      return bench_fail(r, "backoff_start failed");
  }
  uint64_t sum = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    unsigned k = (unsigned)(i % BW_RETRY_BACKOFF__COUNT);
    if ((i & 15) == 15) /* restart now and then, as a new request would */
      bw_retry_backoff_start(&b[k], i, &st[k]);
    sum += bw_retry_backoff_next(&b[k], &st[k]);
  }
  uint64_t t1 = bench_now_ns();
  if (sum == 0 || sum > n * 60000)
    return bench_fail(r, "delays out of bounds (sum %llu)", (unsigned long long)sum);
  r->seconds = (double)(t1 - t0) / 1e9;
  r->work = n;
  r->value = (double)(t1 - t0) / (double)n;
  return 0;
}

const bench_t bench_retry_backoff = {
    .name = "retry_backoff",
    .group = "runtime",
    .unit = "ns/op",
    .higher_is_better = false,
    .summary = "ns per retry delay computed (all five backoff kinds)",
    .params = {{"n", 50000000, 5000000, 1, UINT64_C(1) << 40, "delays computed"}},
    .run = backoff_run,
};

/* --- budget ------------------------------------------------------------------ */

static int budget_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_retry_budget_t b;
  bw_retry_budget_opts_t o;
  bw_retry_budget_opts_init(&o);
  if (bw_retry_budget_init(&b, rt, &o) != 0) {
    bench_runtime_finish(r, rt, NULL);
    return bench_fail(r, "budget_init failed");
  }
  uint64_t granted = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    bw_retry_budget_deposit(&b);
    granted += bw_retry_budget_try_withdraw(&b) == 0;
  }
  uint64_t t1 = bench_now_ns();
  bw_retry_budget_stats_t st;
  bw_retry_budget_stats(&b, &st);
  if (bench_runtime_finish(r, rt, NULL) != 0)
    return -1;
  if (st.deposits != n || st.withdrawals != granted || st.withdrawals + st.refused != n)
    return bench_fail(r, "budget counts do not add up");
  r->seconds = (double)(t1 - t0) / 1e9;
  r->work = n;
  r->value = (double)(t1 - t0) / (double)n;
  return 0;
}

const bench_t bench_retry_budget = {
    .name = "retry_budget",
    .group = "runtime",
    .unit = "ns/op",
    .higher_is_better = false,
    .summary = "ns per budget deposit + try_withdraw pair",
    .params = {{"n", 20000000, 2000000, 1, UINT64_C(1) << 40, "deposit/withdraw pairs"}},
    .run = budget_run,
};

/* --- proxy ------------------------------------------------------------------- */

enum { RP_WORK = BENCH_MSG_USER };

static int echo_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == RP_WORK && (msg->flags & BW_MSGF_REQUEST))
    bw_reply(ctx, msg, 0, RP_WORK, msg->data, msg->len);
  return BW_CONTINUE;
}

static const bw_behaviour_t echo_b = {.name = "rp_echo", .handle = echo_handle};

typedef struct rp_arg {
  bw_pid_t to;
  uint64_t n, window;
} rp_arg_t;

typedef struct rp_state {
  rp_arg_t a;
  uint64_t sent, answered, failed;
  bench_waiter_t waiter;
} rp_state_t;

static int rp_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  rp_state_t *s = state;
  s->a = *(const rp_arg_t *)arg;
  return 0;
}

static void rp_send(bw_ctx_t *ctx, rp_state_t *s) {
  uint64_t v = s->sent++;
  if (bw_request(ctx, s->a.to, RP_WORK, &v, sizeof v, 0, NULL) != 0)
    s->failed++;
}

static int rp_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  rp_state_t *s = state;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    while (s->sent < s->a.n && s->sent < s->a.window)
      rp_send(ctx, s);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    s->answered++;
    if (msg->status != 0)
      s->failed++;
    if (s->sent < s->a.n)
      rp_send(ctx, s);
    else if (s->answered == s->a.n) {
      if (s->failed)
        bench_waiter_fail(&s->waiter, ctx, "%llu requests failed", (unsigned long long)s->failed);
      else
        bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t rp_b = {.name = "rp_coord", .state_size = sizeof(rp_state_t),
                                    .init = rp_init, .handle = rp_handle};

static int proxy_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n"), window = bench_param(r, "window");
  bool direct = bench_param(r, "direct") != 0;
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_pid_t echo, exec = BW_PID_NONE, coord;
  bw_retry_t *rp = NULL;
  int rc = bw_spawn(rt, &echo_b, NULL, NULL, &echo);
  if (rc == 0 && !direct) {
    bw_retry_opts_t o;
    bw_retry_opts_init(&o);
    o.target = echo;
    o.capacity = (uint32_t)window;
    o.attempt_timeout_ms = 60000;
    rc = bw_retry_new(rt, &o, &rp);
    if (rc == 0)
      rc = bw_retry_start(rp, &exec);
  }
  rp_arg_t a = {.to = direct ? echo : exec, .n = n, .window = window};
  if (rc == 0)
    rc = bw_spawn(rt, &rp_b, &a, NULL, &coord);
  if (rc != 0) {
    bw_retry_destroy(rp);
    bench_runtime_finish(r, rt, NULL);
    return bench_fail(r, "setup failed: %s", bw_strerror(rc));
  }
  bench_done_t done;
  int grc = bench_go(r, rt, coord, NULL, 0, &done);
  bw_retry_stats_t m = {0};
  if (!direct)
    bw_retry_stats(rp, &m);
  bw_retry_destroy(rp); /* before the runtime goes: it stops the executor */
  if (bench_runtime_finish(r, rt, NULL) != 0 || grc != 0)
    return -1;
  if (!direct) {
    if (m.calls != n || m.successes != n || m.attempts != n)
      return bench_fail(r, "executor counted %llu calls, %llu successes",
                        (unsigned long long)m.calls, (unsigned long long)m.successes);
  }
  return bench_rate(r, &done, n);
}

const bench_t bench_retry_proxy = {
    .name = "retry_proxy",
    .group = "runtime",
    .unit = "req/s",
    .higher_is_better = true,
    .summary = "requests/s through a retry executor to an echo actor (direct=1: baseline)",
    .params = {{"n", 1000000, 100000, 1, UINT64_C(1) << 40, "requests in all"},
               {"window", 64, 64, 1, BW_RETRY_CAPACITY_MAX, "requests kept in flight"},
               {"direct", 0, 0, 0, 1, "1: skip the executor (baseline)"}},
    .run = proxy_run,
};
