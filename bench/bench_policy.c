/*
 * policy_pipeline: ns of overhead per call of a 5-strategy policy (rate
 * limiter, breaker, retry, per-attempt timeout, policy-held bulkhead limit)
 * in front of an echo actor, excluding the protected work.
 *
 * One coordinator actor makes request after request (one in flight), first
 * n straight to the echo actor, then n through the policy executor, in the
 * same run and runtime; the figure is (policy span - direct span) / n. Every
 * call succeeds at once, so no retry, timer or queue is exercised: this is
 * the steady-state cost of the stages plus the executor's extra hop each way.
 *
 * Declared here, not in runner.h: to run it, it must be listed in runner.h /
 * runner.c's benches[] (the runner's files).
 */
#include "runner.h"

#include <bulwark/policy.h>
#include <stdio.h>
#include <string.h>

enum { PL_WORK = BENCH_MSG_USER };

static int echo_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == PL_WORK && (msg->flags & BW_MSGF_REQUEST))
    bw_reply(ctx, msg, 0, PL_WORK, msg->data, msg->len);
  return BW_CONTINUE;
}

static const bw_behaviour_t echo_b = {.name = "pl_echo", .handle = echo_handle};

typedef struct pl_shared {
  bw_pid_t echo, policy;
  uint64_t n;
  uint64_t t0, t_mid, t1; /* written by the coordinator, read after bench_go */
  uint64_t failed;
} pl_shared_t;

typedef struct pl_state {
  pl_shared_t *sh;
  uint64_t done;
  bench_waiter_t waiter;
} pl_state_t;

static int pl_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((pl_state_t *)state)->sh = arg;
  return 0;
}

static void pl_send(bw_ctx_t *ctx, pl_state_t *s) {
  bw_pid_t to = s->done < s->sh->n ? s->sh->echo : s->sh->policy;
  uint64_t v = s->done;
  if (bw_request(ctx, to, PL_WORK, &v, sizeof v, 0, NULL) != 0)
    s->sh->failed++;
}

static int pl_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  pl_state_t *s = state;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    s->sh->t0 = bench_now_ns();
    pl_send(ctx, s);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    if (msg->status != 0)
      s->sh->failed++;
    s->done++;
    if (s->done == s->sh->n)
      s->sh->t_mid = bench_now_ns();
    if (s->done < 2 * s->sh->n) {
      pl_send(ctx, s);
    } else {
      s->sh->t1 = bench_now_ns();
      if (s->sh->failed)
        bench_waiter_fail(&s->waiter, ctx, "%llu requests failed",
                          (unsigned long long)s->sh->failed);
      else
        bench_waiter_ok(&s->waiter, ctx, s->sh->t1);
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t pl_b = {.name = "pl_coord", .state_size = sizeof(pl_state_t),
                                    .init = pl_init, .handle = pl_handle};

static int pipeline_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  static pl_shared_t sh; /* one run per process */
  memset(&sh, 0, sizeof sh);
  sh.n = n;
  bw_policy_t *p = NULL;
  bw_pid_t coord;
  int rc = bw_spawn(rt, &echo_b, NULL, NULL, &sh.echo);
  if (rc == 0) {
    bw_policy_opts_t o;
    bw_policy_opts_init(&o);
    o.target = sh.echo;
    o.rate_limit = true; /* never limiting: the cost of taking a token */
    o.rate = 1000000000;
    o.rate_burst = 1000000;
    o.breaker = true;
    o.max_attempts = 3;
    o.attempt_timeout_ms = 60000;
    o.max_concurrent = 64;
    rc = bw_policy_new(rt, &o, &p);
  }
  if (rc == 0)
    rc = bw_policy_start(p, NULL, &sh.policy);
  if (rc == 0)
    rc = bw_spawn(rt, &pl_b, &sh, NULL, &coord);
  if (rc != 0) {
    bw_policy_destroy(p); /* before the runtime goes: it stops the executor */
    bench_runtime_finish(r, rt, NULL);
    return bench_fail(r, "setup failed: %s", bw_strerror(rc));
  }
  bench_done_t done;
  int grc = bench_go(r, rt, coord, NULL, 0, &done);
  bw_policy_metrics_t m;
  bw_policy_metrics(p, &m);
  bw_policy_destroy(p);
  if (bench_runtime_finish(r, rt, NULL) != 0 || grc != 0)
    return -1;
  if (m.calls != n || m.successes != n || m.attempts != n)
    return bench_fail(r, "policy counted %llu calls, %llu successes", (unsigned long long)m.calls,
                      (unsigned long long)m.successes);
  double direct = (double)(sh.t_mid - sh.t0) / (double)n;
  double via = (double)(sh.t1 - sh.t_mid) / (double)n;
  fprintf(stderr, "policy_pipeline: direct %.0f ns/call, via policy %.0f ns/call\n", direct, via);
  r->seconds = (double)(sh.t1 - sh.t0) / 1e9;
  r->work = 2 * n;
  r->value = via - direct;
  return 0;
}

const bench_t bench_policy_pipeline = {
    .name = "pipeline",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "ns of overhead per call through a 5-strategy policy vs direct (same run)",
    .params = {{"n", 200000, 20000, 1, UINT64_C(1) << 40, "requests each way"}},
    .run = pipeline_run,
};
