/*
 * bw-bench: the harness every benchmark plugs into.
 *
 * A benchmark is a bench_t: a name, a unit, its parameters with their full
 * and --quick defaults, and a run function. The runner calls run once per
 * measured run, each time in a fresh child process (so one run's heap,
 * threads or crash cannot bias or kill the next), and the run creates and
 * destroys its own runtime. A run either fills r->value or fails with a
 * message: a run whose work did not check out never produces a number.
 *
 * Benchmarks use only the public API (<bulwark/bulwark.h>), as a user would.
 */
#ifndef BW_BENCH_RUNNER_H
#define BW_BENCH_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bulwark/bulwark.h>

#define BENCH_MAX_PARAMS 6
#define BENCH_ERR_MAX 400

typedef struct bench_param {
  const char *key;
  uint64_t def;   /* default */
  uint64_t quick; /* default under --quick */
  uint64_t min;   /* smallest accepted value */
  uint64_t max;   /* largest accepted value */
  const char *doc;
} bench_param_t;

typedef struct bench_run bench_run_t;

typedef struct bench {
  const char *name;
  const char *group; /* "runtime", "savina" or "supervision": --report's
                        charts, one per group */
  const char *unit;
  bool higher_is_better;
  const char *summary; /* one line, for --list */
  bench_param_t params[BENCH_MAX_PARAMS]; /* ends at the first NULL key */
  /* Returns 0 with r->value set, or -1 with r->error set (bench_fail). */
  int (*run)(bench_run_t *r);
  /* Optional: wall time a run spends waiting on purpose (idle_cpu's
   * window), which the watchdog adds to its limit. */
  uint64_t (*wait_ms)(const bench_run_t *r);
} bench_t;

struct bench_run {
  /* in */
  const bench_t *bench;
  uint64_t param[BENCH_MAX_PARAMS]; /* resolved values, indexed as params */
  unsigned workers;                 /* runtime workers; 0 = online CPUs */
  uint64_t timeout_ms;              /* watchdog for the measured part */
  /* out */
  double value;   /* the figure, in bench->unit */
  double seconds; /* length of the measured part; 0 if not a timed run */
  uint64_t work;  /* units of work checked (messages, hops, actors...) */
  unsigned calls; /* answers bench_go received (see bench_check_stats) */
  char error[BENCH_ERR_MAX];
};

/* The benchmarks; runner_benches.c lists them in the order --list and a
 * full run show them. */
extern const bench_t bench_pingpong;
extern const bench_t bench_ring;
extern const bench_t bench_fanin_p1;
extern const bench_t bench_fanin_p4;
extern const bench_t bench_spawn;
extern const bench_t bench_idle_mem;
extern const bench_t bench_idle_cpu;
extern const bench_t bench_flood;
extern const bench_t bench_inbox_rtt;
extern const bench_t bench_tcp_echo_rtt;
extern const bench_t bench_tcp_echo_rtt_epoll;
extern const bench_t bench_tcp_echo_rtt_epoll1;
extern const bench_t bench_then_rtt;
extern const bench_t bench_then_rtt_plain;
extern const bench_t bench_then_ratio;
#ifdef BW_BENCH_HTTP /* bench_http.c: built when libcurl is found */
extern const bench_t bench_http_rtt;
extern const bench_t bench_http_rtt_curl;
extern const bench_t bench_http_concurrency;
extern const bench_t bench_http_concurrency_threads;
extern const bench_t bench_http_concurrency_rss;
#endif
extern const bench_t bench_counting;
extern const bench_t bench_chameneos;
extern const bench_t bench_big;
extern const bench_t bench_fjthrput;
extern const bench_t bench_fjcreate;
extern const bench_t bench_fib;
extern const bench_t bench_banking;
extern const bench_t bench_bndbuffer;
extern const bench_t bench_concdict;
extern const bench_t bench_restart_latency;
extern const bench_t bench_restart_latency_p99;
extern const bench_t bench_restart_throughput;
extern const bench_t bench_rest_for_one_100;
extern const bench_t bench_breaker_guard;
extern const bench_t bench_breaker_guard_2t;
extern const bench_t bench_breaker_open;
extern const bench_t bench_bulkhead_rtt;
extern const bench_t bench_bulkhead_rtt_call;
extern const bench_t bench_bulkhead_throughput;
extern const bench_t bench_ratelimit_acquire;
extern const bench_t bench_retry_backoff;
extern const bench_t bench_retry_budget;
extern const bench_t bench_retry_proxy;
extern const bench_t bench_policy_pipeline;
extern const bench_t bench_policy_pipeline_actor;
extern const bench_t bench_metrics_counter;
extern const bench_t bench_metrics_counter_2t;
extern const bench_t bench_metrics_histogram;
extern const bench_t bench_metrics_overhead;
extern const bench_t bench_remote_rtt;
extern const bench_t bench_nats_rtt;
extern const bench_t bench_remote_fanin;

/* --- Helpers for benchmarks --------------------------------------------- */

/* The value of parameter key; aborts if the benchmark has no such key
 * (a programming error in the benchmark, not a user error). */
uint64_t bench_param(const bench_run_t *r, const char *key);

/* Records the first error of the run and returns -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int bench_fail(bench_run_t *r, const char *fmt, ...);

/* CLOCK_MONOTONIC in nanoseconds: the only clock measurements use. */
uint64_t bench_now_ns(void);

/* Creates a runtime with r->workers threads (real clock).
 * Returns 0, or -1 with r->error set. */
int bench_runtime_create(bench_run_t *r, bw_runtime_t **out);

/*
 * Stops the runtime, reads its final counters into *st (may be NULL), then
 * destroys it. Counters read after bw_runtime_stop are final, so checks
 * against them are exact. Returns 0, or -1 with r->error set (the runtime
 * is destroyed in every case).
 */
int bench_runtime_finish(bench_run_t *r, bw_runtime_t *rt,
                         bw_runtime_stats_t *st);

/*
 * Coordination between the main thread and the actors of one run.
 *
 * Main sends BENCH_MSG_GO to a coordinator actor with bench_go, and blocks
 * in bw_call (the watchdog: r->timeout_ms) until the coordinator answers.
 * The coordinator keeps the request in a bench_waiter_t (bench_waiter_arm,
 * which also takes the start time), and answers it once with
 * bench_waiter_ok (end time) or bench_waiter_fail (an error text). The
 * answer carries both timestamps, so the measured span is taken where the
 * work starts and ends, not where main wakes up.
 */
enum {
  BENCH_MSG_GO = 0x6200, /* main -> coordinator; a request */
  BENCH_MSG_USER = 0x6300, /* first type free for a benchmark's own messages */
};

#define BENCH_DONE_ERR_MAX 168u

/* The coordinator's answer; fits an inline reply. */
typedef struct bench_done {
  uint64_t t0_ns; /* when the measured work started */
  uint64_t t1_ns; /* when it was complete */
  char error[BENCH_DONE_ERR_MAX]; /* empty on success */
} bench_done_t;

typedef struct bench_waiter {
  bw_msg_t req; /* a copy of the GO request (data cleared): bw_reply needs it */
  uint64_t t0_ns;
  bool armed;
  bool answered;
} bench_waiter_t;

/* In the coordinator's handler, on BENCH_MSG_GO: keeps the request and
 * takes the start time. Returns 0, or BW_EINVAL if msg is not a request or
 * the waiter was already armed. */
int bench_waiter_arm(bench_waiter_t *w, const bw_msg_t *msg);

/* Answers the kept request once, with success and the end time t1_ns.
 * Later answers do nothing. Returns bw_reply's code. */
int bench_waiter_ok(bench_waiter_t *w, bw_ctx_t *ctx, uint64_t t1_ns);

/* Answers the kept request once with an error (the text main reports).
 * Later answers do nothing. Returns bw_reply's code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int bench_waiter_fail(bench_waiter_t *w, bw_ctx_t *ctx, const char *fmt, ...);

/* From main: sends GO (with an optional inline payload) to the coordinator
 * and waits for its answer within r->timeout_ms. On success fills *done
 * and returns 0; otherwise returns -1 with r->error set (timeout, runtime
 * error, or the error the coordinator reported). */
int bench_go(bench_run_t *r, bw_runtime_t *rt, bw_pid_t coordinator,
             const void *data, size_t len, bench_done_t *done);

/* Sets r->seconds, r->work and r->value = work / seconds from a done
 * answer. Returns 0, or -1 if the span is not positive. */
int bench_rate(bench_run_t *r, const bench_done_t *done, uint64_t work);

/* What a worker actor tells its coordinator when the work is complete, or
 * failed (error not empty); fits an inline message. */
typedef struct bench_note {
  uint64_t t1_ns;
  char error[BENCH_DONE_ERR_MAX];
} bench_note_t;

/* Counters on a cache line of their own: each actor of a run writes only
 * its own slot, so counting never makes two workers fight over one line.
 * Main reads the slots after the runtime is destroyed (threads joined). */
typedef struct bench_slot {
  _Alignas(64) uint64_t work; /* units of work this actor did or received */
  uint64_t msgs;              /* user messages its handler was given */
} bench_slot_t;

/*
 * Checks a stopped runtime's final counters against what the run's actors
 * counted themselves: exactly `handled` user messages given to their
 * handlers, plus one per answer bench_go received (the runtime counts a
 * reply taken by bw_call as handled, which keeps its invariant sent ==
 * handled + dead_letters); that invariant; `spawned` actors spawned and all
 * of them exited; no crash; no dead letter.
 * Returns 0, or -1 with r->error set.
 */
int bench_check_stats(bench_run_t *r, const bw_runtime_stats_t *st,
                      uint64_t handled, uint64_t spawned);

/* n zeroed slots on their own cache lines (aligned_alloc), or NULL;
 * free with free(). */
bench_slot_t *bench_slots(size_t n);

/* Sends a bench_note_t of type `type` from the calling actor to `to`: now
 * as the end time, and the formatted error (fmt NULL: success). For
 * workers telling their coordinator. Returns bw_send's code. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int bench_note(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const char *fmt,
               ...);

/* On a bench_note_t message in a coordinator: answers the waiter with the
 * note's end time or its error. Returns 0, or BW_EINVAL for a bad payload
 * (then the waiter is answered with an error). */
int bench_waiter_note(bench_waiter_t *w, bw_ctx_t *ctx, const bw_msg_t *msg);

/* A deterministic pseudo-random sequence (splitmix64): the same work on
 * every machine and every run for a given seed. */
static inline uint64_t bench_rand(uint64_t *state)
{
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* The small computation Savina's fork-join benchmarks do per message,
 * made exact: `rounds` steps of an integer mix of x. Integer, so the
 * result can be checked bit for bit (Savina's floating sin/sqrt loop could
 * only be checked approximately). */
static inline uint64_t bench_work(uint64_t x, unsigned rounds)
{
  for (unsigned i = 0; i < rounds; i++) {
    x ^= x >> 33;
    x *= UINT64_C(0xFF51AFD7ED558CCD);
    x ^= x >> 29;
  }
  return x;
}

/* Resident set size of this process in bytes (/proc/self/statm), or 0. */
uint64_t bench_rss_bytes(void);

/* Sleeps ms on CLOCK_MONOTONIC, through signals. */
void bench_sleep_ms(uint64_t ms);

#endif
