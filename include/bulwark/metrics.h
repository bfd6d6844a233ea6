/*
 * bulwark: the metrics reporter: counters, gauges and latency histograms,
 * collected periodically into immutable snapshots that subscribers receive
 * and that render as Prometheus text exposition format or JSON.
 *
 * A reporter is a handle (bw_metrics_t: the registry of metric families,
 * created by the user, stable for its whole life) plus an actor that
 * collects every period_ms on the runtime's clock:
 *
 *   bw_metrics_t *m;
 *   bw_metrics_new(rt, NULL, &m);                      // the registry, no actor yet
 *   bw_metrics_start(m, NULL);                         // or bw_metrics_child_spec
 *   bw_counter_t *served;
 *   bw_metrics_counter_new(m, "app_requests_total", "Requests served.", &served);
 *   ...
 *   bw_counter_add(served, 1);                         // hot path: a few ns
 *
 *   char buf[65536]; size_t len;
 *   bw_metrics_render(m, BW_METRICS_PROMETHEUS, buf, sizeof buf, &len);
 *
 * Hot paths never send a message: a counter or histogram update writes the
 * calling thread's own cell (one load and one store, no lock prefix, no
 * shared cache line with another thread); gauges are one atomic word. The
 * actor sums the cells at collection. Creating families and series takes a
 * lock and may allocate; updates never do.
 *
 * The actor also collects, each period: the runtime's counters
 * (bw_runtime_stats), restarts (from supervisor events), the mailbox depth
 * of actors added by name, every breaker, bulkhead pool and retry policy
 * added with bw_metrics_add_*. A pool answers asynchronously
 * (bw_bulkhead_stats_request): the snapshot of a period is published when
 * every pool has answered or its request timed out (one period).
 *
 * Metric names follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__" ("le" is reserved in
 * histograms); the reporter's own names start with bulwark_. Histograms
 * record nanoseconds and are exported in seconds (name them *_seconds).
 *
 * See observe/METRICS.md for the design.
 */
#ifndef BULWARK_METRICS_H
#define BULWARK_METRICS_H

#include "bulwark/types.h"
#include "bulwark/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_metrics bw_metrics_t;
typedef struct bw_metric_family bw_metric_family_t;
/* One series (a family's member for one set of label values). */
typedef struct bw_counter bw_counter_t;
typedef struct bw_gauge bw_gauge_t;
typedef struct bw_histogram bw_histogram_t;
/* An immutable, reference-counted collection result. */
typedef struct bw_metrics_snapshot bw_metrics_snapshot_t;

typedef enum bw_metric_type {
  BW_METRIC_COUNTER = 0,   /* monotonic; never decreases */
  BW_METRIC_GAUGE = 1,     /* a value that goes up and down */
  BW_METRIC_HISTOGRAM = 2, /* latency distribution, log-scale buckets (ns) */
} bw_metric_type_t;

/* Limits. */
#define BW_METRICS_NAME_MAX 127u   /* metric and label names, bytes */
#define BW_METRICS_VALUE_MAX 127u  /* a label value, bytes */
#define BW_METRICS_HELP_MAX 1023u  /* help text, bytes */
#define BW_METRICS_LABELS_MAX 8u   /* label names per family */
#define BW_METRICS_SUBSCRIBERS_MAX 16u

/* The message type snapshots arrive with. msg->data is a const
 * bw_metrics_snapshot_t *, valid during the handler; to keep it, take a
 * reference with bw_metrics_snapshot_retain (release it later). */
#define BW_METRICS_MSG_SNAPSHOT (BW_MSG_METRICS_BASE + 0u)
/* types from BW_MSG_METRICS_BASE + 0x80 are the reporter's internal ones */

typedef struct bw_metrics_opts {
  /* Collection period on the runtime's clock, 1 .. 86400000 ms.
   * Default 1000. */
  uint64_t period_ms;
  /* Collect the runtime's counters, restarts and breaker transitions
   * (events). Default true. */
  bool runtime_metrics;
  /* Families in the registry (built-in ones included), 1 .. 4096; default 256.
   * Series per family, 1 .. 65536; default 1024. */
  uint32_t max_families;
  uint32_t max_series;
  /* Per-thread cells for counters (1 each) and histograms
   * (BW_HISTOGRAM_CELLS each), 64 .. 1<<22; default 65536. The arena is
   * this many 8-byte cells times BW_METRICS_THREADS, reserved at once (the
   * OS maps pages as they are first written). */
  uint32_t max_cells;
} bw_metrics_opts_t;

/* Threads with a private cell slot at once; more threads share one slot
 * with atomic adds (slower, still exact). Slots are recycled on thread exit. */
#define BW_METRICS_THREADS 64u

/* Fills opts with the defaults above. */
void bw_metrics_opts_init(bw_metrics_opts_t *opts);
/* Returns 0 or BW_EINVAL (NULL; period_ms 0 or > 86400000; max_families 0
 * or > 4096; max_series 0 or > 65536; max_cells < 64 or > 1<<22). */
int bw_metrics_opts_validate(const bw_metrics_opts_t *opts);

/* --- Lifecycle ------------------------------------------------------------ */

/*
 * Creates a registry (opts copied; NULL = defaults) without an actor.
 * Returns 0, BW_EINVAL (NULL rt or out, bad opts), BW_ENOMEM.
 */
int bw_metrics_new(bw_runtime_t *rt, const bw_metrics_opts_t *opts, bw_metrics_t **out);

/*
 * The reporter's behaviour, for a child spec: arg = the bw_metrics_t *.
 * init fails with BW_EINVAL for another arg, BW_EALREADY if another actor
 * of this registry is alive. A restarted actor takes over the registry
 * (values, subscribers, sources) and collects on.
 */
extern const bw_behaviour_t bw_metrics_behaviour;

/* Fills a child spec (id by reference; restart permanent, worker).
 * Returns 0, BW_EINVAL. */
int bw_metrics_child_spec(bw_metrics_t *m, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns the actor (*out, optional: its pid) / stop
 * shuts down the one start spawned and waits for it. start returns 0,
 * BW_EINVAL, BW_EALREADY, bw_spawn's codes. stop returns 0 (also when none
 * runs), BW_EINVAL, BW_ERUNNING (the actor runs under a supervisor: stop it
 * there), BW_EWOULDBLOCK (on a scheduler thread: nothing is stopped), and
 * bw_exit's or bw_wait_exit's codes (BW_ESHUTDOWN, racing a runtime stop).
 */
int bw_metrics_start(bw_metrics_t *m, bw_pid_t *out);
int bw_metrics_stop(bw_metrics_t *m);

/*
 * bw_metrics_stop, then frees the registry and every family and series
 * handle (the latest snapshot is released; snapshots others hold stay valid
 * until released). A supervised actor must be stopped first: while one
 * lives, returns BW_ERUNNING and frees nothing. NULL is a no-op. Returns 0,
 * BW_ERUNNING, BW_EWOULDBLOCK.
 */
int bw_metrics_destroy(bw_metrics_t *m);

/* The actor's pid now, or BW_PID_NONE. */
bw_pid_t bw_metrics_pid(const bw_metrics_t *m);

/* The reporter's own counters (what it collects is in its snapshots). */
typedef struct bw_metrics_stats {
  uint64_t snapshots; /* snapshots published (the latest one's seq) */
  uint64_t families;  /* families registered, built-in ones included */
  uint64_t series;    /* series in them */
  uint64_t cells;     /* per-thread cells taken, of max_cells */
  uint64_t sources;   /* breakers, pools, retry policies, HTTP clients, actors added */
} bw_metrics_stats_t;

/* Reads them under the registry's lock (from any thread; not for hot
 * paths). Returns 0, BW_EINVAL. */
int bw_metrics_stats(const bw_metrics_t *m, bw_metrics_stats_t *out);

/* --- Families and series (may lock and allocate; not for hot paths) ------- */

/*
 * Registers a family: a name, help text (may be NULL), a type and label
 * names (nlabels 0 .. BW_METRICS_LABELS_MAX; label_names may be NULL when
 * nlabels is 0). Strings are copied.
 * Returns 0 with *out; BW_EINVAL (NULL m or out, unknown type, invalid name
 * or label name, duplicate label names, "le" in a histogram, strings too
 * long); BW_EEXIST (the name, or one of the series names it exposes, e.g.
 * x_count for a histogram x, is taken); BW_ELIMIT (max_families).
 */
int bw_metrics_family(bw_metrics_t *m, bw_metric_type_t type, const char *name,
                      const char *help, const char *const *label_names, size_t nlabels,
                      bw_metric_family_t **out);

/*
 * The family's series for these label values (exactly the family's number
 * of labels; NULL when it has none), created on first use: asking again
 * with the same values gives the same handle, so no series is ever
 * duplicated. Values are copied (any bytes but NUL; escaped on output).
 * Returns 0 with *out; BW_EINVAL (NULL, a value NULL or too long, the
 * family is of another type); BW_ELIMIT (max_series, or the cell arena is
 * full).
 */
int bw_metrics_counter(bw_metric_family_t *f, const char *const *label_values,
                       bw_counter_t **out);
int bw_metrics_gauge(bw_metric_family_t *f, const char *const *label_values, bw_gauge_t **out);
int bw_metrics_histogram(bw_metric_family_t *f, const char *const *label_values,
                         bw_histogram_t **out);

/* A family without labels and its one series, in one call. Returns the
 * codes of bw_metrics_family and of the series call. */
int bw_metrics_counter_new(bw_metrics_t *m, const char *name, const char *help,
                           bw_counter_t **out);
int bw_metrics_gauge_new(bw_metrics_t *m, const char *name, const char *help, bw_gauge_t **out);
int bw_metrics_histogram_new(bw_metrics_t *m, const char *name, const char *help,
                             bw_histogram_t **out);

/* --- Updates: any thread, lock-free, no allocation ----------------------- */

/* Adds n to a counter: the calling thread's cell (a load and a store; an
 * atomic add in the shared slot). Returns 0, BW_EINVAL (NULL, not a
 * counter). */
int bw_counter_add(bw_counter_t *c, uint64_t n);
static inline int bw_counter_inc(bw_counter_t *c) { return bw_counter_add(c, 1); }

/* Sets / adds to a gauge (one atomic word; add is a CAS loop). Returns 0,
 * BW_EINVAL. */
int bw_gauge_set(bw_gauge_t *g, double v);
int bw_gauge_add(bw_gauge_t *g, double d);

/* Records one observation in nanoseconds: its bucket, the sum and the max
 * in the calling thread's cells. Returns 0, BW_EINVAL. */
int bw_histogram_record(bw_histogram_t *h, uint64_t ns);

/* --- Sources the actor collects from ------------------------------------- */

typedef struct bw_breaker bw_breaker_t;
typedef struct bw_retry bw_retry_t;
typedef struct bw_http bw_http_t;

/*
 * Adds a breaker (read with bw_breaker_stats, labelled with its name):
 * bulwark_breaker_state{breaker}, bulwark_breaker_calls_total{breaker,result}
 * (result: successful, failed, ignored, rejected),
 * bulwark_breaker_slow_calls_total, bulwark_breaker_timeouts_total,
 * bulwark_breaker_failure_rate and _slow_rate (percent; absent below the
 * minimum number of calls). The handle must stay valid until removed.
 * Returns 0, BW_EINVAL, BW_EEXIST (a source of this kind has the name),
 * BW_ELIMIT, BW_ENOMEM.
 */
int bw_metrics_add_breaker(bw_metrics_t *m, bw_breaker_t *br);
int bw_metrics_remove_breaker(bw_metrics_t *m, bw_breaker_t *br);

/*
 * Adds a bulkhead pool under name (copied; the pool label): asked for its
 * metrics each period, asynchronously. pool BW_PID_NONE: the pool is looked
 * up by name in the registry each period (follows a supervised pool across
 * restarts, since bulkhead names are not registered by themselves: give
 * its child spec this name). A pool that does not answer (gone, or not a
 * pool) has its series absent from that snapshot. bulwark_bulkhead_executions_total
 * {pool,state} (state: completed, crashed, rejected, timed_out),
 * bulwark_bulkhead_available{pool}, _busy, _queued, _lent, _overflow.
 * Returns 0, BW_EINVAL, BW_EEXIST, BW_ELIMIT, BW_ENOMEM.
 */
int bw_metrics_add_bulkhead(bw_metrics_t *m, bw_pid_t pool, const char *name);
int bw_metrics_remove_bulkhead(bw_metrics_t *m, const char *name);

/*
 * Adds a retry policy under name (NULL = the policy's own name; one is
 * needed): bulwark_retry_attempts_total{policy}, bulwark_retry_retries_total,
 * bulwark_timeouts_total{policy} (attempts that timed out),
 * bulwark_retry_calls_total{policy,result} (result: success, failure,
 * rejected), bulwark_retry_budget_exhausted_total, bulwark_retry_in_flight.
 * The handle must stay valid until removed.
 */
int bw_metrics_add_retry(bw_metrics_t *m, const bw_retry_t *r, const char *name);
int bw_metrics_remove_retry(bw_metrics_t *m, const bw_retry_t *r);

/*
 * Adds an HTTP client (bulwark/http.h; read with bw_http_host_stats each
 * period), its series labelled with the client's name (bw_http_name) and
 * each host's key (http.h's "scheme://host:port", or "other"); a host's
 * series appear once it has been seen:
 *   bulwark_http_requests_received_total{client,host}   requests that came
 *   bulwark_http_requests_total{client,host,class}      responses by status
 *       class (class: 2xx, 3xx, 4xx, 5xx; every attempt's response)
 *   bulwark_http_errors_total{client,host,kind}         ends without a
 *       usable response (kind: timeout, connection, dns, tls, protocol,
 *       too_big, queue_full, refused)
 *   bulwark_http_throttled_total, _retries_total, _cancels_total,
 *       _fallbacks_total {client,host}
 *   bulwark_http_in_flight, bulwark_http_queued {client,host} (gauges)
 *   bulwark_http_bytes_total{client,host,direction}     sent, received
 *   bulwark_http_request_duration_seconds{client,host}  histogram of the
 *       requests answered with a response, arrival to answer
 * The client's handle must stay valid until removed. A host whose series
 * do not fit (max_series, max_families) is left out of the snapshots, and
 * tried again the next period. Returns 0, BW_EINVAL (NULL, or a client
 * without a name, as built without libcurl), BW_EEXIST (an HTTP client of
 * that name, or this one, is a source already), BW_ELIMIT, BW_ENOMEM.
 */
int bw_metrics_add_http(bw_metrics_t *m, bw_http_t *h);
int bw_metrics_remove_http(bw_metrics_t *m, bw_http_t *h);

/* Adds an actor by registered name (looked up each period, so it follows
 * restarts): bulwark_mailbox_depth{actor}, absent while the name is not
 * registered. */
int bw_metrics_add_actor(bw_metrics_t *m, const char *name);
int bw_metrics_remove_actor(bw_metrics_t *m, const char *name);
/* remove_*: 0, BW_EINVAL, BW_ENOTFOUND. A removed source's series leave
 * the snapshots; adding it again brings them back with its current values. */

/* --- Snapshots ------------------------------------------------------------ */

/* Sends each snapshot to pid (BW_METRICS_MSG_SNAPSHOT) until it exits or
 * unsubscribes. Returns 0, BW_EINVAL, BW_ELIMIT; unsubscribe: 0, BW_EINVAL,
 * BW_ENOTFOUND. */
int bw_metrics_subscribe(bw_metrics_t *m, bw_pid_t pid);
int bw_metrics_unsubscribe(bw_metrics_t *m, bw_pid_t pid);

/*
 * From a thread that is not a scheduler thread: makes the actor collect
 * now and waits until that snapshot is published (timeout_ms on the
 * runtime's clock; 0 = none). Returns 0, BW_EINVAL, bw_call's codes.
 */
int bw_metrics_collect(bw_metrics_t *m, uint64_t timeout_ms);

/* The latest snapshot, with a reference the caller releases; from any
 * thread. Returns 0, BW_EINVAL, BW_ENOTFOUND (nothing collected yet). */
int bw_metrics_latest(bw_metrics_t *m, bw_metrics_snapshot_t **out);

const bw_metrics_snapshot_t *bw_metrics_snapshot_retain(const bw_metrics_snapshot_t *s);
void bw_metrics_snapshot_release(const bw_metrics_snapshot_t *s); /* NULL: no-op */

uint64_t bw_metrics_snapshot_seq(const bw_metrics_snapshot_t *s);     /* 1, 2, ... */
uint64_t bw_metrics_snapshot_time_ns(const bw_metrics_snapshot_t *s); /* runtime clock */

/* What a histogram series holds, in nanoseconds. Percentiles are the upper
 * bound of the bucket the rank falls in (at most the max): never below the
 * true value, at most 25 % (one bucket) above it. 0 when count is 0. */
typedef struct bw_histogram_summary {
  uint64_t count, sum_ns, max_ns;
  uint64_t p50_ns, p90_ns, p99_ns;
} bw_histogram_summary_t;

/* One series' value by family name and label values (in the family's
 * label order). Counter and gauge: *out. Returns 0, BW_EINVAL, BW_ENOTFOUND
 * (no such family or series, or another type). */
int bw_metrics_snapshot_value(const bw_metrics_snapshot_t *s, const char *name,
                              const char *const *label_values, size_t n, double *out);
int bw_metrics_snapshot_histogram(const bw_metrics_snapshot_t *s, const char *name,
                                  const char *const *label_values, size_t n,
                                  bw_histogram_summary_t *out);

/* Walking a snapshot: families in registration order, series in creation
 * order. Pointers stay valid while the snapshot is referenced. */
typedef struct bw_metric_family_info {
  const char *name;
  const char *help; /* "" if none */
  int type;         /* bw_metric_type_t */
  size_t nlabels;
  const char *const *label_names;
  size_t nseries;
} bw_metric_family_info_t;

typedef struct bw_metric_series_info {
  const char *const *label_values;
  double value;             /* counter, gauge */
  bw_histogram_summary_t h; /* histogram */
  const uint64_t *buckets;  /* histogram: BW_HISTOGRAM_BUCKETS counts (not cumulative) */
} bw_metric_series_info_t;

size_t bw_metrics_snapshot_nfamilies(const bw_metrics_snapshot_t *s);
/* Returns 0, BW_EINVAL (NULL, index out of range). */
int bw_metrics_snapshot_family(const bw_metrics_snapshot_t *s, size_t i,
                               bw_metric_family_info_t *out);
int bw_metrics_snapshot_series(const bw_metrics_snapshot_t *s, size_t family, size_t i,
                               bw_metric_series_info_t *out);

/* --- Rendering ------------------------------------------------------------ */

typedef enum bw_metrics_format {
  BW_METRICS_PROMETHEUS = 0, /* text exposition format 0.0.4 */
  BW_METRICS_JSON = 1,
} bw_metrics_format_t;

/*
 * Renders a snapshot into buf (cap bytes), NUL-terminated, like snprintf:
 * *len = the text's length (without the NUL) even when it did not fit.
 * Returns 0; BW_ETOOBIG (cap <= *len: buf holds a truncated, terminated
 * prefix when cap > 0); BW_EINVAL (NULL s or len, unknown format, NULL buf
 * with cap > 0).
 */
int bw_metrics_snapshot_render(const bw_metrics_snapshot_t *s, int format, char *buf,
                               size_t cap, size_t *len);

/* The same into a malloc'd string (*out, free() it). Returns 0, BW_EINVAL,
 * BW_ENOMEM. */
int bw_metrics_snapshot_render_alloc(const bw_metrics_snapshot_t *s, int format, char **out,
                                     size_t *len);

/* Renders the latest snapshot; from any thread (the HTTP observer's):
 * bw_metrics_latest + render + release. Adds BW_ENOTFOUND. */
int bw_metrics_render(bw_metrics_t *m, int format, char *buf, size_t cap, size_t *len);
int bw_metrics_render_alloc(bw_metrics_t *m, int format, char **out, size_t *len);

/* --- Histogram buckets ------------------------------------------------------ */

/* Log-scale buckets: 4 per power of two (each at most 25 % wide), from 1 ns
 * up to 2^40 ns (about 18 minutes), then one overflow bucket. Bucket i
 * holds values v with upper(i-1) < v <= upper(i). */
#define BW_HISTOGRAM_BUCKETS 157u
/* Cells a histogram series uses per thread slot: the buckets, sum, max. */
#define BW_HISTOGRAM_CELLS (BW_HISTOGRAM_BUCKETS + 2u)

/* Bucket i's inclusive upper bound in ns; UINT64_MAX for the overflow
 * bucket and beyond. */
uint64_t bw_histogram_bucket_upper(unsigned i);
/* The bucket value ns falls in. */
unsigned bw_histogram_bucket_of(uint64_t ns);

/*
 * Summarises bucket counts (BW_HISTOGRAM_BUCKETS of them) with the sum and
 * max observed: count, and p50/p90/p99 as described at
 * bw_histogram_summary_t. Returns 0, BW_EINVAL.
 */
int bw_histogram_summarize(const uint64_t *buckets, uint64_t sum_ns, uint64_t max_ns,
                           bw_histogram_summary_t *out);

/* The q-quantile (0 < q <= 1) of bucket counts, capped at max_ns; 0 if
 * empty or q is out of range. */
uint64_t bw_histogram_quantile(const uint64_t *buckets, uint64_t max_ns, double q);

#ifdef __cplusplus
}
#endif
#endif
