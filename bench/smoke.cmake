# ctest's bench_smoke: every benchmark runs once at --quick sizes and
# writes JSON, then bw-bench itself validates the file (--check-json: it
# parses, a result for every benchmark, none failed, every figure sane).
# Needs nothing outside the project.
#
#   cmake -DBW_BENCH=path/to/bw-bench -DOUT=smoke.json -P smoke.cmake
#
# Under the sanitizers (CI sets BW_TEST_SCALE=4) every message costs
# several times more, and TSan on 2 cores runs the actors ~20x slower: the
# --quick sizes are then cut further with explicit --param values, so the
# whole smoke test stays within a few minutes. --force because a sanitizer
# build is refused otherwise; the figures are not the point here.
if(NOT BW_BENCH OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DBW_BENCH=... -DOUT=... -P smoke.cmake")
endif()

set(args --quick --runs 1 --force --timeout 600 --json ${OUT})
if(DEFINED ENV{BW_TEST_SCALE} AND NOT "$ENV{BW_TEST_SCALE}" STREQUAL "" AND
   NOT "$ENV{BW_TEST_SCALE}" STREQUAL "1")
  list(APPEND args
    --param pingpong.n=20k --param counting.n=20k
    --param ring.hops=20k --param ring.actors=100
    --param chameneos.n=5k --param big.n=200 --param fjthrput.n=200
    --param fjcreate.n=2k --param fib.n=15 --param banking.n=2k
    --param bndbuffer.items=50 --param concdict.n=200
    --param spawn.n=10k --param idle_mem.n=2k --param idle_cpu.window_ms=100
    --param fanin_p1.n=50k --param fanin_p4.n=50k --param flood.n=5k
    --param inbox_rtt.n=400 --param inbox_rtt.block=100
    --param tcp_echo_rtt.n=500 --param tcp_echo_rtt_epoll.n=500 --param tcp_echo_rtt_epoll1.n=500
    --param then_rtt.n=5k --param then_rtt_plain.n=5k --param then_ratio.n=8k --param then_ratio.block=1k
    --param restart_latency.n=200 --param restart_latency_p99.n=200
    --param restart_throughput.n=2k --param restart_throughput.children=100
    --param rest_for_one_100.rounds=10
    --param breaker_guard.n=100k --param breaker_guard_2t.n=100k
    --param breaker_open.n=100k --param bulkhead_rtt.n=2k
    --param bulkhead_rtt_call.n=500 --param bulkhead_throughput.n=8k
    --param ratelimit_acquire.n=100k --param retry_backoff.n=100k
    --param retry_budget.n=100k --param retry_proxy.n=2k
    --param pipeline.n=2k --param pipeline_actor.n=2k --param metrics_counter.n=100k --param metrics_counter_2t.n=100k
    --param metrics_histogram.n=100k --param metrics_overhead.n=5k
    --param remote_rtt.n=300 --param nats_rtt.n=300 --param remote_fanin.n=10k)
  # the HTTP benchmarks exist only in a build with libcurl (-DBW_HTTP=ON)
  if(BW_HTTP)
    list(APPEND args
      --param http_rtt.n=200 --param http_rtt_curl.n=200
      --param http_concurrency.actors=5 --param http_concurrency.depth=5
      --param http_concurrency.n=20 --param http_concurrency_threads.actors=5
      --param http_concurrency_threads.depth=5 --param http_concurrency_threads.n=20
      --param http_concurrency_rss.actors=5 --param http_concurrency_rss.depth=5
      --param http_concurrency_rss.n=20)
  endif()
endif()

execute_process(COMMAND ${BW_BENCH} ${args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bw-bench ${args} exited with ${rc}")
endif()
execute_process(COMMAND ${BW_BENCH} --check-json ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bw-bench --check-json ${OUT} exited with ${rc}")
endif()
