/*
 * idle_mem, idle_cpu: what actors cost while they do nothing.
 *
 * idle_mem: the resident memory n idle actors add, per actor. Measured
 * as the growth of this process's RSS (/proc/self/statm) across spawning
 * them, so it counts everything an actor really costs (state, mailbox,
 * pid slot, registry entries, allocator slack), not what a sizeof says.
 * Each run is a fresh child process, so no page freed by an earlier run is
 * silently reused.
 *
 * idle_cpu: CPU time the whole process burns over a wall-clock window while
 * its runtime has live actors and no work, in percent of one core. A
 * scheduler that spins or polls while idle shows here.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int idle_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_CONTINUE;
}

static const bw_behaviour_t idle_behaviour = {
    .name = "bench.idle",
    .state_size = 16,
    .handle = idle_handle,
};

/* Spawns n idle actors whose state is state_size bytes. b must outlive
 * them. Returns 0 or -1 with r->error set. */
static int idle_spawn(bench_run_t *r, bw_runtime_t *rt, const bw_behaviour_t *b,
                      uint64_t n)
{
  for (uint64_t i = 0; i < n; i++) {
    int rc = bw_spawn(rt, b, NULL, NULL, NULL);
    if (rc != 0)
      return bench_fail(r, "bw_spawn of actor %" PRIu64 ": %s", i,
                        bw_strerror(rc));
  }
  bw_runtime_stats_t st;
  if (bw_runtime_stats(rt, &st) != 0 || st.live != n)
    return bench_fail(r, "%" PRIu64 " actors live after spawning %" PRIu64,
                      st.live, n);
  return 0;
}

static int idle_mem_run(bench_run_t *r)
{
  uint64_t n = bench_param(r, "n");
  /* A copy with the size asked for; the runtime may keep a pointer to it,
   * and it lives until the runtime is destroyed below. */
  bw_behaviour_t b = idle_behaviour;
  b.state_size = (size_t)bench_param(r, "state");

  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  /* Baseline after the runtime exists: its fixed cost is not per actor. */
  uint64_t rss0 = bench_rss_bytes();
  uint64_t t0 = bench_now_ns();
  if (idle_spawn(r, rt, &b, n) != 0) {
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  uint64_t t1 = bench_now_ns();
  /* Let anything the workers do for new actors settle before counting. */
  bench_sleep_ms(50);
  uint64_t rss1 = bench_rss_bytes();

  bw_runtime_stats_t st;
  if (bench_runtime_finish(r, rt, &st) != 0)
    return -1;
  if (bench_check_stats(r, &st, 0, n) != 0)
    return -1;
  if (rss0 == 0 || rss1 == 0)
    return bench_fail(r, "cannot read /proc/self/statm");
  r->work = n;
  r->seconds = (double)(t1 - t0) / 1e9; /* spawn time, for the CSV */
  r->value = rss1 >= rss0 ? (double)(rss1 - rss0) / (double)n : 0.0;
  return 0;
}

static uint64_t cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int idle_cpu_run(bench_run_t *r)
{
  uint64_t actors = bench_param(r, "actors");
  uint64_t settle = bench_param(r, "settle_ms");
  uint64_t window = bench_param(r, "window_ms");

  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  if (idle_spawn(r, rt, &idle_behaviour, actors) != 0) {
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  bench_sleep_ms(settle);
  uint64_t c0 = cpu_ns(), t0 = bench_now_ns();
  bench_sleep_ms(window);
  uint64_t c1 = cpu_ns(), t1 = bench_now_ns();

  bw_runtime_stats_t st;
  if (bench_runtime_finish(r, rt, &st) != 0)
    return -1;
  if (bench_check_stats(r, &st, 0, actors) != 0)
    return -1;
  r->work = actors;
  r->seconds = (double)(t1 - t0) / 1e9;
  r->value = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
  return 0;
}

static uint64_t idle_cpu_wait_ms(const bench_run_t *r)
{
  return bench_param(r, "settle_ms") + bench_param(r, "window_ms");
}

const bench_t bench_idle_mem = {
    .name = "idle_mem",
    .group = "runtime",
    .unit = "bytes/actor",
    .higher_is_better = false,
    .summary = "resident memory per idle actor (RSS growth / n)",
    .params = {{"n", 100000, 10000, 1, 100000000, "idle actors spawned"},
               {"state", 16, 16, 0, 1 << 20,
                "state_size of each actor, bytes"}},
    .run = idle_mem_run,
};

const bench_t bench_idle_cpu = {
    .name = "idle_cpu",
    .group = "runtime",
    .unit = "%cpu",
    .higher_is_better = false,
    .summary = "process CPU use with idle actors and no work (% of one core)",
    .params = {{"actors", 1000, 1000, 0, 10000000, "idle actors alive"},
               {"settle_ms", 200, 100, 0, 60000, "wait before measuring"},
               {"window_ms", 1000, 500, 10, 600000,
                "wall-clock window measured"}},
    .run = idle_cpu_run,
    .wait_ms = idle_cpu_wait_ms,
};
