/*
 * The catalogue: every benchmark bw-bench knows, in the order --list and a
 * full run show them. A new benchmark is declared in runner.h and listed
 * here (bench/README.md, "Adding a benchmark").
 */
#include "runner_internal.h"

#include <string.h>

const bench_t *const runner_benches[] = {
    /* savina */
    &bench_pingpong, &bench_counting, &bench_ring, &bench_chameneos,
    &bench_big, &bench_fjthrput, &bench_fjcreate, &bench_fib, &bench_banking,
    &bench_bndbuffer, &bench_concdict,
    /* runtime */
    &bench_spawn, &bench_idle_mem, &bench_idle_cpu, &bench_fanin_p1,
    &bench_fanin_p4, &bench_flood, &bench_inbox_rtt, &bench_tcp_echo_rtt, &bench_tcp_echo_rtt_epoll,
    &bench_tcp_echo_rtt_epoll1, &bench_then_rtt, &bench_then_rtt_plain,
    &bench_then_ratio,
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

const size_t runner_nbench = sizeof runner_benches / sizeof runner_benches[0];

_Static_assert(sizeof runner_benches / sizeof runner_benches[0] <=
                   RUNNER_MAX_BENCHES,
               "more benchmarks than RUNNER_MAX_BENCHES (runner_internal.h)");

int runner_bench_index(const char *name)
{
  for (size_t i = 0; i < runner_nbench; i++)
    if (strcmp(runner_benches[i]->name, name) == 0)
      return (int)i;
  return -1;
}
