/*
 * Supervision benchmarks.
 *
 * restart_latency / restart_latency_p99: one child under a one_for_one supervisor. The
 * coordinator crashes it and times until the replacement has handled its
 * first message: crash sent -> child fails -> EXIT to the supervisor ->
 * restart (spawn, init) -> the new child's "up" -> the coordinator pings it
 * -> its "pong". n samples per run; the run's figure is their median (p99).
 *
 * restart_throughput: 1,000 children under one one_for_one supervisor; the
 * coordinator crashes each child as soon as it reports up, until n restarts
 * have happened. restarts/s.
 *
 * rest_for_one_100: 100 children under rest_for_one; crashing child 0 stops
 * the other 99 (reverse order) and restarts all 100. Time per full group
 * restart, over n rounds.
 */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  SB_UP = BENCH_MSG_USER + 0x40, /* child -> coordinator, from its init */
  SB_CRASH,                      /* coordinator -> child */
  SB_PING,                       /* coordinator -> child */
  SB_PONG,                       /* child -> coordinator */
};

/* --- the child: reports up from init, crashes on request --------------- */

static int kid_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  bw_pid_t coord = *(const bw_pid_t *)arg;
  return bw_send(bw_ctx_runtime(ctx), coord, SB_UP, NULL, 0) == 0 ? 0 : BW_ENOPROC;
}

static int kid_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == SB_CRASH)
    return BW_ECRASH;
  if (msg->type == SB_PING)
    bw_send(bw_ctx_runtime(ctx), msg->from, SB_PONG, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t kid = {.name = "bench.kid", .init = kid_init, .handle = kid_handle};

/* --- coordinator ------------------------------------------------------------- */

enum { MODE_LATENCY, MODE_THROUGHPUT, MODE_GROUP };

typedef struct sb_cfg {
  int mode;
  uint64_t n;        /* samples / restarts / rounds */
  uint64_t group;    /* children in the tree */
  uint64_t *samples; /* latency: n slots */
  bw_pid_t *pids;    /* group slots: the children that reported up at start */
} sb_cfg_t;

typedef struct sb_state {
  sb_cfg_t cfg;
  bench_waiter_t waiter;
  bool going;
  uint64_t ups;      /* "up" reports seen */
  uint64_t done;     /* samples / restarts / rounds completed */
  uint64_t t_crash;
  uint64_t round_ups;
  bw_pid_t first; /* group mode: child 0 of the current round */
} sb_state_t;

static int sb_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((sb_state_t *)state)->cfg = *(const sb_cfg_t *)arg;
  return 0;
}

static void crash(bw_ctx_t *ctx, bw_pid_t who) {
  bw_send(bw_ctx_runtime(ctx), who, SB_CRASH, NULL, 0);
}

static int sb_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  sb_state_t *s = state;
  switch (msg->type) {
  case BENCH_MSG_GO:
    if (bench_waiter_arm(&s->waiter, msg) != 0 || s->ups != s->cfg.group)
      return BW_EINVAL;
    s->going = true;
    /* the first crash(es): child 0, or every child for throughput */
    s->t_crash = bench_now_ns();
    if (s->cfg.mode == MODE_THROUGHPUT)
      for (uint64_t i = 0; i < s->cfg.group; i++)
        crash(ctx, s->cfg.pids[i]);
    else
      crash(ctx, s->cfg.pids[0]);
    return BW_CONTINUE;
  case SB_UP:
    if (!s->going) { /* the initial start, in child order */
      if (s->ups < s->cfg.group)
        s->cfg.pids[s->ups] = msg->from;
      s->ups++;
      return BW_CONTINUE;
    }
    switch (s->cfg.mode) {
    case MODE_LATENCY:
      bw_send(bw_ctx_runtime(ctx), msg->from, SB_PING, NULL, 0);
      return BW_CONTINUE;
    case MODE_THROUGHPUT:
      if (++s->done >= s->cfg.n) {
        bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
        s->going = false;
        return BW_CONTINUE;
      }
      crash(ctx, msg->from);
      return BW_CONTINUE;
    default: /* MODE_GROUP: child 0's "up" comes first in each round (its
              * init runs first, on the supervisor's thread) */
      if (s->round_ups++ == 0)
        s->first = msg->from;
      if (s->round_ups < s->cfg.group)
        return BW_CONTINUE;
      s->round_ups = 0;
      if (++s->done >= s->cfg.n) {
        bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
        s->going = false;
        return BW_CONTINUE;
      }
      crash(ctx, s->first);
      return BW_CONTINUE;
    }
  case SB_PONG:
    if (s->cfg.mode == MODE_LATENCY && s->going) {
      s->cfg.samples[s->done++] = bench_now_ns() - s->t_crash;
      if (s->done >= s->cfg.n) {
        bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
        s->going = false;
        return BW_CONTINUE;
      }
      s->t_crash = bench_now_ns();
      crash(ctx, msg->from);
    }
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t coordinator = {.name = "bench.sup_coordinator",
                                           .state_size = sizeof(sb_state_t),
                                           .init = sb_init,
                                           .handle = sb_handle};

/* Main's side: how the first crash is triggered once GO is armed. */
static bw_pid_t coord_pid; /* the children's init argument */

static int run_tree(bench_run_t *r, int mode, bw_strategy_t strategy, uint64_t nkids,
                    uint64_t n, uint64_t *samples, bench_done_t *done) {
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_child_spec_t *kids = calloc(nkids, sizeof(*kids));
  char (*ids)[24] = calloc(nkids, sizeof(*ids));
  bw_pid_t *pids = calloc(nkids, sizeof(*pids));
  int ret = 0;
  if (kids == NULL || ids == NULL || pids == NULL) {
    ret = bench_fail(r, "out of memory");
    goto out;
  }
  sb_cfg_t cfg = {.mode = mode, .n = n, .group = nkids, .samples = samples, .pids = pids};
  int rc = bw_spawn(rt, &coordinator, &cfg, NULL, &coord_pid);
  if (rc != 0) {
    ret = bench_fail(r, "spawn coordinator: %s", bw_strerror(rc));
    goto out;
  }
  for (uint64_t i = 0; i < nkids; i++) {
    snprintf(ids[i], sizeof(ids[i]), "k%llu", (unsigned long long)i);
    kids[i] = (bw_child_spec_t){.id = ids[i], .behaviour = &kid, .arg = &coord_pid,
                                .shutdown_ms = BW_SHUTDOWN_BRUTAL_KILL};
  }
  /* intensity out of the way: the figures are about restarting */
  bw_sup_spec_t spec = {.name = "bench", .strategy = strategy, .intensity = 1000000,
                        .period_ms = 1, .children = kids, .nchildren = nkids};
  bw_pid_t sup;
  bw_sup_error_t err;
  rc = bw_supervisor_start(rt, &spec, &sup, &err);
  if (rc != 0) {
    ret = bench_fail(r, "supervisor start: %s", err.message);
    goto out;
  }
  ret = bench_go(r, rt, coord_pid, NULL, 0, done);
  /* the tree goes first: its children report to the coordinator */
  bw_sup_stop(rt, sup);
out:;
  bw_runtime_stats_t st;
  if (bench_runtime_finish(r, rt, &st) != 0 && ret == 0)
    ret = -1;
  if (ret == 0 && st.crashed < n)
    ret = bench_fail(r, "only %llu crashes for %llu restarts", (unsigned long long)st.crashed,
                     (unsigned long long)n);
  free(kids);
  free(ids);
  free(pids);
  return ret;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int run_latency(bench_run_t *r, double pct) {
  uint64_t n = bench_param(r, "n");
  uint64_t *samples = calloc(n, sizeof(*samples));
  if (samples == NULL)
    return bench_fail(r, "out of memory");
  bench_done_t done;
  int ret = run_tree(r, MODE_LATENCY, BW_ONE_FOR_ONE, 1, n, samples, &done);
  if (ret == 0) {
    qsort(samples, n, sizeof(*samples), cmp_u64);
    size_t k = (size_t)((double)(n - 1) * pct);
    r->value = (double)samples[k] / 1000.0; /* microseconds */
    r->seconds = (double)(done.t1_ns - done.t0_ns) / 1e9;
    r->work = n;
  }
  free(samples);
  return ret;
}

static int run_p50(bench_run_t *r) { return run_latency(r, 0.50); }
static int run_p99(bench_run_t *r) { return run_latency(r, 0.99); }

static int run_throughput(bench_run_t *r) {
  uint64_t n = bench_param(r, "n"), kids = bench_param(r, "children");
  bench_done_t done;
  if (run_tree(r, MODE_THROUGHPUT, BW_ONE_FOR_ONE, kids, n, NULL, &done) != 0)
    return -1;
  return bench_rate(r, &done, n);
}

static int run_group(bench_run_t *r) {
  uint64_t n = bench_param(r, "rounds"), kids = bench_param(r, "children");
  bench_done_t done;
  if (run_tree(r, MODE_GROUP, BW_REST_FOR_ONE, kids, n, NULL, &done) != 0)
    return -1;
  r->seconds = (double)(done.t1_ns - done.t0_ns) / 1e9;
  r->work = n;
  if (r->seconds <= 0)
    return bench_fail(r, "no time measured");
  r->value = r->seconds * 1e6 / (double)n; /* microseconds per group restart */
  return 0;
}

const bench_t bench_restart_latency = {
    .name = "restart_latency",
    .group = "supervision",
    .unit = "us",
    .higher_is_better = false,
    .summary = "crash to replacement handling its first message, one_for_one, median",
    .params = {{"n", 20000, 2000, 10, 10000000, "restarts sampled"}},
    .run = run_p50,
};

const bench_t bench_restart_latency_p99 = {
    .name = "restart_latency_p99",
    .group = "supervision",
    .unit = "us",
    .higher_is_better = false,
    .summary = "crash to replacement handling its first message, one_for_one, 99th percentile",
    .params = {{"n", 20000, 2000, 100, 10000000, "restarts sampled"}},
    .run = run_p99,
};

const bench_t bench_restart_throughput = {
    .name = "restart_throughput",
    .group = "supervision",
    .unit = "restarts/s",
    .higher_is_better = true,
    .summary = "one_for_one supervisor, children crashing as soon as they are up",
    .params = {{"n", 500000, 50000, 1000, 100000000, "restarts in all"},
               {"children", 1000, 1000, 1, 100000, "children of the supervisor"}},
    .run = run_throughput,
};

const bench_t bench_rest_for_one_100 = {
    .name = "rest_for_one_100",
    .group = "supervision",
    .unit = "us/restart",
    .higher_is_better = false,
    .summary = "rest_for_one, 100 children, child 0 crashes: all 100 restarted",
    .params = {{"rounds", 2000, 200, 1, 10000000, "group restarts"},
               {"children", 100, 100, 2, 100000, "children of the supervisor"}},
    .run = run_group,
};
