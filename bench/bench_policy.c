/*
 * Policy pipeline overhead: ns per call of a 5-strategy policy (rate
 * limiter, breaker, retry (3), per-attempt timeout, concurrency limit) in
 * front of an echo actor, excluding the protected work. Every call succeeds
 * at once, so no retry, timer wait or queue is exercised: the steady-state
 * cost of the stages.
 *
 * pipeline: the in-caller form. One client actor makes request after
 * request (one in flight), alternating blocks of `block` calls: plain
 * bw_request to the echo actor, then bw_policy_enter -> bw_request(echo,
 * t.timeout_ms) -> on the reply bw_policy_exit. Each pair of blocks gives
 * (policy block - direct block) / block; the figure is the median of those
 * differences, so a noisy stretch of the run (the machine is shared) moves
 * one pair, not the figure. Params for taking the cost apart: flush_ms (the
 * breaker's report_flush_ms; 0 = a wake-up of the breaker's actor per
 * report, the behaviour before batching), timeout=0 (no timer per call:
 * not a valid use, for measurement only), via=0 (both blocks direct: with
 * callgrind, (Ir(via=1) - Ir(via=0)) / calls is the instruction count of
 * the stages per call).
 *
 * pipeline_actor: the executor form, measured the same way: blocks of
 * `block` requests straight to the echo actor alternate with blocks through
 * the executor (bw_policy_behaviour, target the echo actor); the figure is
 * the median of the per-pair differences: the stages plus the executor's
 * extra round trip. (It used to be one span each way, direct then via the
 * executor, which a noisy stretch could turn negative.)
 *
 * Declared here, not in runner.h: to run them, they must be listed in
 * runner.h / runner.c's benches[] (the runner's files).
 */
#include "runner.h"

#include <bulwark/policy.h>
#include <stdio.h>
#include <stdlib.h>
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
  uint64_t block, pairs;
  double *diff;             /* pairs entries: ns per call, executor - direct */
  double direct_sum, via_sum; /* ns per call, summed over the blocks */
  uint64_t t0, t1; /* written by the coordinator, read after bench_go */
  uint64_t failed;
} pl_shared_t;

typedef struct pl_state {
  pl_shared_t *sh;
  uint64_t pair, in_block, block_t0, direct_ns;
  bool second; /* this block goes through the executor */
  bench_waiter_t waiter;
} pl_state_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_sorted(double *v, uint64_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int pl_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((pl_state_t *)state)->sh = arg;
  return 0;
}

static void pl_send(bw_ctx_t *ctx, pl_state_t *s) {
  bw_pid_t to = s->second ? s->sh->policy : s->sh->echo;
  uint64_t v = s->in_block;
  if (bw_request(ctx, to, PL_WORK, &v, sizeof v, 0, NULL) != 0)
    s->sh->failed++;
}

static int pl_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  pl_state_t *s = state;
  pl_shared_t *sh = s->sh;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    sh->t0 = s->block_t0 = bench_now_ns();
    pl_send(ctx, s);
    return BW_CONTINUE;
  }
  if (!(msg->flags & BW_MSGF_REPLY))
    return BW_CONTINUE;
  if (msg->status != 0)
    sh->failed++;
  if (++s->in_block == sh->block) {
    uint64_t now = bench_now_ns();
    uint64_t span = now - s->block_t0;
    if (!s->second) {
      s->direct_ns = span;
      sh->direct_sum += (double)span / (double)sh->block;
    } else {
      sh->via_sum += (double)span / (double)sh->block;
      sh->diff[s->pair++] = ((double)span - (double)s->direct_ns) / (double)sh->block;
    }
    s->second = !s->second;
    s->in_block = 0;
    if (s->pair == sh->pairs || sh->failed) {
      sh->t1 = now;
      if (sh->failed)
        bench_waiter_fail(&s->waiter, ctx, "%llu requests failed", (unsigned long long)sh->failed);
      else
        bench_waiter_ok(&s->waiter, ctx, now);
      return BW_CONTINUE;
    }
    s->block_t0 = bench_now_ns();
  }
  pl_send(ctx, s);
  return BW_CONTINUE;
}

static const bw_behaviour_t pl_b = {.name = "pl_coord", .state_size = sizeof(pl_state_t),
                                    .init = pl_init, .handle = pl_handle};

static int pipeline_actor_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint64_t block = bench_param(r, "block");
  if (n < block)
    return bench_fail(r, "n (%llu) must be at least block (%llu)", (unsigned long long)n,
                      (unsigned long long)block);
  static pl_shared_t sh; /* one run per process */
  memset(&sh, 0, sizeof sh);
  sh.block = block;
  sh.pairs = n / block;
  sh.diff = calloc(sh.pairs, sizeof *sh.diff);
  if (sh.diff == NULL)
    return bench_fail(r, "out of memory");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0) {
    free(sh.diff);
    return -1;
  }
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
    rc = bw_policy_start(p, &sh.policy);
  if (rc == 0)
    rc = bw_spawn(rt, &pl_b, &sh, NULL, &coord);
  if (rc != 0) {
    bw_policy_destroy(p); /* before the runtime goes: it stops the executor */
    bench_runtime_finish(r, rt, NULL);
    free(sh.diff);
    return bench_fail(r, "setup failed: %s", bw_strerror(rc));
  }
  bench_done_t done;
  int grc = bench_go(r, rt, coord, NULL, 0, &done);
  bw_policy_stats_t m;
  bw_policy_stats(p, &m);
  bw_policy_destroy(p);
  if (bench_runtime_finish(r, rt, NULL) != 0 || grc != 0) {
    free(sh.diff);
    return -1;
  }
  uint64_t calls = sh.pairs * block;
  if (m.calls != calls || m.successes != calls || m.attempts != calls) {
    free(sh.diff);
    return bench_fail(r, "policy counted %llu calls, %llu successes", (unsigned long long)m.calls,
                      (unsigned long long)m.successes);
  }
  double med = median_sorted(sh.diff, sh.pairs);
  fprintf(stderr,
          "pipeline_actor: direct %.0f ns/call, via executor %.0f ns/call (means); "
          "per-pair overhead median %.0f, min %.0f, max %.0f over %llu pairs\n",
          sh.direct_sum / (double)sh.pairs, sh.via_sum / (double)sh.pairs, med, sh.diff[0],
          sh.diff[sh.pairs - 1], (unsigned long long)sh.pairs);
  free(sh.diff);
  r->seconds = (double)(sh.t1 - sh.t0) / 1e9;
  r->work = 2 * calls;
  r->value = med;
  return 0;
}

const bench_t bench_policy_pipeline_actor = {
    .name = "pipeline_actor",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "ns of overhead per call through a policy executor actor vs direct (interleaved)",
    .params = {{"n", 200000, 20000, 1, UINT64_C(1) << 40, "requests each way"},
               {"block", 1000, 1000, 1, UINT64_C(1) << 30, "calls per block (blocks alternate)"}},
    .run = pipeline_actor_run,
};

/* --- pipeline: the in-caller form, interleaved --------------------------------- */

static void pl_policy_opts(bw_policy_opts_t *o, bw_pid_t echo, uint64_t flush_ms) {
  bw_policy_opts_init(o);
  o->breaker_opts.report_flush_ms = (uint32_t)flush_ms;
  o->target = echo;
  o->rate_limit = true; /* never limiting: the cost of taking a token */
  o->rate = 1000000000;
  o->rate_burst = 1000000;
  o->breaker = true;
  o->max_attempts = 3;
  o->attempt_timeout_ms = 60000;
  o->max_concurrent = 64;
}

typedef struct fp_shared {
  bw_pid_t echo;
  bw_policy_t *p;
  uint64_t block, pairs;
  bool timeout; /* pass t.timeout_ms to bw_request (the attempt timeout) */
  bool direct_only; /* calibration: the "policy" blocks are direct too */
  double *diff;        /* pairs entries: ns per call, policy - direct */
  double direct_sum, policy_sum; /* ns per call, summed over the blocks */
  uint64_t failed;
  uint64_t t0, t1;
} fp_shared_t;

typedef struct fp_state {
  fp_shared_t *sh;
  bw_policy_ticket_t t;
  uint64_t pair, in_block, block_t0, direct_ns;
  bool second; /* this block is the second of its pair (the policy's) */
  bool via;    /* this block goes through the policy (second, unless via=0) */
  bench_waiter_t waiter;
} fp_state_t;

static int fp_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  fp_state_t *s = state;
  s->sh = arg;
  bw_policy_ticket_init(&s->t);
  return 0;
}

static void fp_send(bw_ctx_t *ctx, fp_state_t *s) {
  uint64_t v = s->in_block;
  uint64_t timeout = 0;
  if (s->via) {
    int rc = bw_policy_enter(s->sh->p, &s->t);
    if (rc != 0) { /* never here in this set-up: counted, and the run fails */
      s->sh->failed++;
      return;
    }
    timeout = s->sh->timeout ? s->t.timeout_ms : 0;
  }
  if (bw_request(ctx, s->sh->echo, PL_WORK, &v, sizeof v, timeout, NULL) != 0)
    s->sh->failed++;
}

static int fp_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  fp_state_t *s = state;
  fp_shared_t *sh = s->sh;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    sh->t0 = s->block_t0 = bench_now_ns();
    fp_send(ctx, s);
    return BW_CONTINUE;
  }
  if (!(msg->flags & BW_MSGF_REPLY))
    return BW_CONTINUE;
  int status = msg->status;
  if (s->via && bw_policy_exit(sh->p, &s->t, status, NULL) != 0)
    sh->failed++;
  else if (status != 0)
    sh->failed++;
  if (++s->in_block == sh->block) {
    uint64_t now = bench_now_ns();
    uint64_t span = now - s->block_t0;
    if (!s->second) {
      s->direct_ns = span;
      sh->direct_sum += (double)span / (double)sh->block;
    } else {
      sh->policy_sum += (double)span / (double)sh->block;
      sh->diff[s->pair++] = ((double)span - (double)s->direct_ns) / (double)sh->block;
    }
    s->second = !s->second;
    s->via = s->second && !sh->direct_only;
    s->in_block = 0;
    if (s->pair == sh->pairs || sh->failed) {
      sh->t1 = now;
      if (sh->failed)
        bench_waiter_fail(&s->waiter, ctx, "%llu requests failed", (unsigned long long)sh->failed);
      else
        bench_waiter_ok(&s->waiter, ctx, now);
      return BW_CONTINUE;
    }
    s->block_t0 = bench_now_ns();
  }
  fp_send(ctx, s);
  return BW_CONTINUE;
}

static const bw_behaviour_t fp_b = {.name = "fp_client", .state_size = sizeof(fp_state_t),
                                    .init = fp_init, .handle = fp_handle};

static int pipeline_run(bench_run_t *r) {
  uint64_t n = bench_param(r, "n");
  uint64_t block = bench_param(r, "block");
  if (n < block)
    return bench_fail(r, "n (%llu) must be at least block (%llu)", (unsigned long long)n,
                      (unsigned long long)block);
  static fp_shared_t sh; /* one run per process */
  memset(&sh, 0, sizeof sh);
  sh.block = block;
  sh.timeout = bench_param(r, "timeout") != 0;
  sh.direct_only = bench_param(r, "via") == 0;
  sh.pairs = n / block;
  sh.diff = calloc(sh.pairs, sizeof *sh.diff);
  if (sh.diff == NULL)
    return bench_fail(r, "out of memory");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0) {
    free(sh.diff);
    return -1;
  }
  bw_pid_t client;
  int rc = bw_spawn(rt, &echo_b, NULL, NULL, &sh.echo);
  if (rc == 0) {
    bw_policy_opts_t o;
    pl_policy_opts(&o, sh.echo, bench_param(r, "flush_ms"));
    rc = bw_policy_new(rt, &o, &sh.p);
  }
  if (rc == 0) /* the in-caller form needs the breaker's actor running too */
    rc = bw_breaker_start(bw_policy_breaker(sh.p), NULL);
  if (rc == 0)
    rc = bw_spawn(rt, &fp_b, &sh, NULL, &client);
  if (rc != 0) {
    bw_policy_destroy(sh.p);
    bench_runtime_finish(r, rt, NULL);
    free(sh.diff);
    return bench_fail(r, "setup failed: %s", bw_strerror(rc));
  }
  bench_done_t done;
  int grc = bench_go(r, rt, client, NULL, 0, &done);
  bw_policy_stats_t m;
  bw_policy_stats(sh.p, &m);
  bw_policy_destroy(sh.p);
  if (bench_runtime_finish(r, rt, NULL) != 0 || grc != 0) {
    free(sh.diff);
    return -1;
  }
  uint64_t calls = sh.direct_only ? 0 : sh.pairs * block;
  if (m.calls != calls || m.successes != calls || m.attempts != calls) {
    free(sh.diff);
    return bench_fail(r, "policy counted %llu calls, %llu successes", (unsigned long long)m.calls,
                      (unsigned long long)m.successes);
  }
  double med = median_sorted(sh.diff, sh.pairs);
  fprintf(stderr,
          "pipeline: direct %.0f ns/call, in-caller policy %.0f ns/call (means); "
          "per-pair overhead median %.0f, min %.0f, max %.0f over %llu pairs\n",
          sh.direct_sum / (double)sh.pairs, sh.policy_sum / (double)sh.pairs, med, sh.diff[0],
          sh.diff[sh.pairs - 1], (unsigned long long)sh.pairs);
  free(sh.diff);
  r->seconds = (double)(sh.t1 - sh.t0) / 1e9;
  r->work = 2 * calls;
  r->value = med;
  return 0;
}

const bench_t bench_policy_pipeline = {
    .name = "pipeline",
    .group = "patterns",
    .unit = "ns/call",
    .higher_is_better = false,
    .summary = "ns of overhead per call of an in-caller 5-strategy policy vs direct (interleaved)",
    .params = {{"n", 200000, 20000, 1, UINT64_C(1) << 40, "requests each way"},
               {"block", 1000, 1000, 1, UINT64_C(1) << 30, "calls per block (blocks alternate)"},
               {"flush_ms", BW_BREAKER_REPORT_FLUSH_MS, BW_BREAKER_REPORT_FLUSH_MS, 0, 60000,
                "breaker report_flush_ms (0 = a wake-up per report, as before)"},
               {"timeout", 1, 1, 0, 1,
                "1 = the attempt timeout rides on bw_request (a timer per call); 0 = measure "
                "without it (not a valid use: no timeout)"},
               {"via", 1, 1, 0, 1,
                "0 = calibration: both blocks of a pair go direct (for instruction counts)"}},
    .run = pipeline_run,
};
