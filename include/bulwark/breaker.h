/*
 * bulwark: the circuit breaker.
 *
 * A breaker is a handle (bw_breaker_t, created by the user, stable for its
 * whole life) and an actor that alone decides its state. The actor publishes
 * the state in the handle, so there are two ways in:
 *
 *   Guard: any thread (an actor's handler or a plain thread) asks permission
 *   without a round trip, makes the call itself, and reports the outcome:
 *
 *     bw_breaker_permit_t p;
 *     if (bw_breaker_acquire(br, &p) == 0) {
 *       int status = do_the_call();
 *       bw_breaker_report(br, &p, status);
 *     } else {
 *       ... BW_ECIRCUIT_OPEN: fail fast, fall back ...
 *     }
 *
 *   Proxy: send requests to the breaker's actor (bw_call, bw_request) and it
 *   forwards them to a target actor, times them, and relays the reply; or
 *   answers BW_ECIRCUIT_OPEN with the time until retry.
 *
 * States: closed (calls flow; outcomes are judged), open (calls are refused
 * until the wait is over; then half-open), half-open (exactly N calls may
 * try; enough successes close, a failure reopens), and three set by hand:
 * disabled (everything flows, nothing is recorded), forced-open (everything
 * is refused until reset) and metrics-only (everything flows, outcomes are
 * recorded and rates computed, the breaker never trips).
 *
 * Every transition publishes BW_EV_BREAKER_STATE (a = from, b = to,
 * source_name = the breaker's name); rejections publish BW_EV_CALL_REJECTED
 * (a = how many rejections the event stands for: guard rejections are
 * counted by the callers and reported by the actor in batches).
 *
 * See patterns/BREAKER.md for the design.
 */
#ifndef BULWARK_BREAKER_H
#define BULWARK_BREAKER_H

#include "bulwark/types.h"
#include "bulwark/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_breaker bw_breaker_t;

typedef enum bw_breaker_state {
  BW_BREAKER_CLOSED = 0,
  BW_BREAKER_OPEN = 1,
  BW_BREAKER_HALF_OPEN = 2,
  BW_BREAKER_DISABLED = 3,
  BW_BREAKER_FORCED_OPEN = 4,
  BW_BREAKER_METRICS_ONLY = 5,
} bw_breaker_state_t;

/* "closed", "open", "half_open", "disabled", "forced_open", "metrics_only";
 * "unknown" otherwise. */
const char *bw_breaker_state_name(int state);

/* The sliding window that failure and slow-call rates are measured over. */
typedef enum bw_breaker_window {
  BW_BREAKER_WINDOW_NONE = 0,  /* no rates: only consecutive failures trip */
  BW_BREAKER_WINDOW_COUNT = 1, /* the last window_size calls */
  BW_BREAKER_WINDOW_TIME = 2,  /* the last window_size seconds, in buckets */
} bw_breaker_window_t;

/* How an outcome counts. */
typedef enum bw_breaker_outcome {
  BW_BREAKER_SUCCESS = 0,
  BW_BREAKER_FAILURE = 1,
  BW_BREAKER_IGNORED = 2, /* counted as ignored; neither success nor failure */
} bw_breaker_outcome_t;

/*
 * Classifies a call's status code (0 or a negative BW_E code, or the
 * caller's own code) into a bw_breaker_outcome_t. Guard mode runs it on the
 * reporting thread, proxy mode in the breaker's actor: it must be cheap,
 * thread-safe and must not block. NULL = status 0 is a success, anything
 * else a failure.
 */
typedef int (*bw_breaker_classify_fn)(int status, void *arg);

/* Message type of a proxy's BW_ECIRCUIT_OPEN reply; its payload is a
 * uint64_t: ms until the breaker next lets a call try (UINT64_MAX when
 * forced open). Types from BW_MSG_BREAKER_BASE + 0x80 are the breaker's
 * internal ones (bulwark/message.h). */
#define BW_BREAKER_MSG_OPEN (BW_MSG_BREAKER_BASE + 0x00u)

typedef struct bw_breaker_opts {
  /* For events and metrics (copied; < 32 bytes). NULL = "breaker". */
  const char *name;

  /* Trip on this many failures in a row (closed state). 0 = off (then a
   * window must be set). Default 5. */
  uint32_t failure_threshold;

  /* Rates over a sliding window. Default BW_BREAKER_WINDOW_TIME, 60 s in
   * buckets of 1 s, failure rate 50 %, minimum 10 calls. */
  bw_breaker_window_t window;
  uint32_t window_size;     /* calls (count) or seconds (time); > 0 */
  uint32_t bucket_ms;       /* time window bucket width; must divide the window */
  uint32_t minimum_calls;   /* rates are judged from this many calls on; > 0,
                               and <= window_size for a count window */
  double failure_rate_pct;  /* trip at or above this failure rate, (0, 100] */

  /* Slow calls: a call that took longer than slow_call_ms is slow (in
   * addition to its outcome). 0 = no slow-call detection (the default; it
   * costs the guard two clock reads per call). With a window, trip when the
   * slow rate reaches slow_rate_pct, (0, 100], default 100. In half-open a
   * slow call counts as a failure. */
  uint64_t slow_call_ms;
  double slow_rate_pct;

  /* Half-open: half_open_permits calls may try (never more, whatever the
   * concurrency); success_threshold successes close the breaker, any
   * failure reopens it. permits >= success_threshold >= 1. Default 3 and 3.
   * half_open_max_ms: the longest a half-open may last. When it passes
   * before the permitted calls have settled it (no traffic, or calls that
   * never report), the breaker goes back to open, as resilience4j's
   * maxWaitDurationInHalfOpenState does: a new open wait (counted as a
   * consecutive open for open_multiplier), then a new half-open with fresh
   * permits. Without it a breaker left half-open with no traffic stayed so
   * for good. Default BW_BREAKER_HALF_OPEN_MAX_MS (60 s); 0 = wait forever
   * for the permitted calls to report. */
  uint32_t success_threshold;
  uint32_t half_open_permits;
  uint64_t half_open_max_ms;

  /* Open: wait open_ms (default 60000, > 0) before half-open. The n-th
   * consecutive open (reopened from half-open without closing in between)
   * waits min(open_max_ms, open_ms * open_multiplier^(n-1)), then shortened
   * by up to jitter_pct percent at random. open_multiplier: 1 = constant
   * (default), up to 1000. open_max_ms: 0 = 24 h, else >= open_ms. */
  uint64_t open_ms;
  uint32_t open_multiplier;
  uint32_t jitter_pct; /* 0..100 */
  uint64_t open_max_ms;
  uint64_t seed; /* jitter's random sequence; 0 = from the clock */

  /* Outcome classification (see bw_breaker_classify_fn). */
  bw_breaker_classify_fn classify;
  void *classify_arg;

  /* Proxy mode: the target actor, by pid or by registered name (looked up
   * per call, so a supervised target that restarts is found again); not
   * both. Neither: the breaker answers proxied requests with BW_ESTATE.
   * call_timeout_ms: a call without a reply by then is answered
   * BW_ETIMEDOUT and counts as a failure (0 = no deadline; default 10000).
   * max_inflight: proxied calls in flight at once (1..65536, default 256);
   * beyond it requests are answered BW_ELIMIT. */
  bw_pid_t target;
  const char *target_name; /* copied; < 64 bytes */
  uint64_t call_timeout_ms;
  uint32_t max_inflight;

  /* Guard mode: records each reporting thread's stripe of the outcome
   * journal holds (a power of two, 16..65536; default 256). A full stripe
   * falls back to one message per report. */
  uint32_t journal_size;

  /* Guard mode: how long a report that cannot change the state may wait in
   * the journal before the actor takes it. Such a report (a success or an
   * ignored outcome, not slow, of a permit granted while closed or
   * metrics-only) does not wake an idle actor: it is taken, in its
   * stripe's order, with the next report that can change the state (a
   * failure, a slow call, any half-open outcome), or by a flush timer the
   * first deferred report of an idle period starts, at most this many ms
   * later (for a time window, at most bucket_ms). Until then the counters
   * and rates lag by up to that long (bw_breaker_flush takes everything at
   * once), and a time window files those outcomes up to that late. Saves
   * a message and an actor turn per call on a lightly loaded breaker.
   * 0 = every report wakes an idle actor (the behaviour before). Up to
   * 60000; bw_breaker_opts_init sets 10 (BW_BREAKER_REPORT_FLUSH_MS). */
  uint32_t report_flush_ms;
} bw_breaker_opts_t;

#define BW_BREAKER_REPORT_FLUSH_MS 10u
#define BW_BREAKER_HALF_OPEN_MAX_MS 60000u /* bw_breaker_opts_init's half_open_max_ms */

/* Fills opts with the defaults above. */
void bw_breaker_opts_init(bw_breaker_opts_t *opts);

/* Checks opts without creating anything. Returns 0 or BW_EINVAL. */
int bw_breaker_opts_validate(const bw_breaker_opts_t *opts);

/* --- Lifecycle ------------------------------------------------------------ */

/*
 * Creates a handle (opts copied; NULL = defaults) without an actor: run the
 * actor as a supervised child (bw_breaker_child_spec) or spawn it with
 * bw_breaker_start. Until an actor runs the state is closed and reports wait
 * in the journal. Returns 0, BW_EINVAL (NULL rt or out, bad opts), BW_ENOMEM.
 */
int bw_breaker_new(bw_runtime_t *rt, const bw_breaker_opts_t *opts, bw_breaker_t **out);

/*
 * Fills a child spec (id copied by reference: it must outlive the spec, as
 * with every child spec; restart permanent, worker) whose behaviour runs
 * this breaker's actor. The handle must outlive the supervisor's tree. A
 * restarted actor takes over the handle: it keeps the counters and the
 * published state (an open breaker stays open for the rest of its wait, a
 * half-open one starts its half-open again), and reads the journal from
 * where the last one stopped. Returns 0, BW_EINVAL.
 */
int bw_breaker_child_spec(bw_breaker_t *br, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: spawns the actor for a handle made with bw_breaker_new
 * (*out, optional: its pid) / stops it (shutdown, then waits for it).
 * start returns 0, BW_EINVAL, BW_EALREADY (an actor of this handle is
 * alive, started or supervised), and bw_spawn's codes. stop returns 0 (also
 * when no actor runs), BW_EINVAL, BW_ERUNNING (the actor runs under a
 * supervisor: stop it there), BW_EWOULDBLOCK (on a scheduler thread; the
 * actor keeps running). After stop the handle keeps its counters and state;
 * start may run it again.
 */
int bw_breaker_start(bw_breaker_t *br, bw_pid_t *out);
int bw_breaker_stop(bw_breaker_t *br);

/*
 * Stops the actor if bw_breaker_start spawned it (as bw_breaker_stop) and
 * frees the handle. NULL is a no-op. A supervised actor must be stopped by
 * its supervisor first: while it lives, destroy refuses with BW_ERUNNING
 * and frees nothing. Not from a scheduler thread (BW_EWOULDBLOCK, nothing
 * stopped or freed) unless no actor of its own runs (after bw_runtime_stop,
 * for one). Returns 0, BW_ERUNNING, BW_EWOULDBLOCK.
 */
int bw_breaker_destroy(bw_breaker_t *br);

/* The actor's pid now (it changes when a supervisor restarts it), or
 * BW_PID_NONE while none runs. Send proxied requests here. */
bw_pid_t bw_breaker_pid(const bw_breaker_t *br);

/* The name the breaker was created with (never NULL). */
const char *bw_breaker_name(const bw_breaker_t *br);

/* --- Guard: lock-free, no round trip ------------------------------------- */

/* What acquire hands back and report takes back: copy it, but report each
 * permit at most once. */
typedef struct bw_breaker_permit {
  uint64_t start_ns; /* with slow-call detection: when acquired */
  uint32_t epoch;    /* the state episode it was granted in */
  uint32_t flags;
} bw_breaker_permit_t;

/*
 * Asks permission for one call. Lock-free; no allocation, no message in
 * the closed state (one load); in half-open one CAS takes one of the N
 * permits. Returns 0 (make the call, then report it), BW_ECIRCUIT_OPEN
 * (open, forced open, or half-open with no permit left: do not call), or
 * BW_EINVAL (NULL).
 */
int bw_breaker_acquire(bw_breaker_t *br, bw_breaker_permit_t *permit);

/*
 * Reports the outcome of a permitted call: status goes through the
 * classifier; with slow-call detection the duration is measured since
 * acquire on the runtime's clock. Lock-free: appends to the reporting
 * thread's journal stripe (usually one CAS), and wakes the actor with one
 * message only when it was idle and the outcome can change the state
 * (others wait up to report_flush_ms: see the option; at most one flush
 * message per idle period). If the stripe is full the report is sent
 * as a message instead; if that fails too its code is returned (the outcome
 * was not recorded). Returns 0, BW_EINVAL (NULL), or bw_send's codes
 * (BW_ENOPROC: no actor runs; BW_ESHUTDOWN).
 */
int bw_breaker_report(bw_breaker_t *br, const bw_breaker_permit_t *permit, int status);

/* Like bw_breaker_report with a duration the caller measured itself (no
 * clock read here). */
int bw_breaker_report_ns(bw_breaker_t *br, const bw_breaker_permit_t *permit, int status,
                         uint64_t duration_ns);

/* The published state (one load). */
bw_breaker_state_t bw_breaker_state(const bw_breaker_t *br);

/* The breaker's slow_call_ms (0: no slow-call detection, or NULL). A caller
 * that measures its own durations for bw_breaker_report_ns needs a clock
 * read only when this is not 0. */
uint64_t bw_breaker_slow_call_ms(const bw_breaker_t *br);

/* Open: ms until it goes half-open (0 if due); forced open: UINT64_MAX;
 * otherwise 0. */
uint64_t bw_breaker_retry_after_ms(const bw_breaker_t *br);

/* --- Control: messages to the actor --------------------------------------- */

/*
 * Manual transitions, sent to the actor (which alone changes state); they
 * take effect when it handles them (bw_breaker_flush waits for that).
 * reset: closed, with an empty window and no backoff history. The other
 * three enter their state and stay there until reset.
 * Returns 0, BW_EINVAL, BW_ENOPROC (no actor runs), BW_ESHUTDOWN.
 */
int bw_breaker_reset(bw_breaker_t *br);
int bw_breaker_force_open(bw_breaker_t *br);
int bw_breaker_disable(bw_breaker_t *br);
int bw_breaker_metrics_only(bw_breaker_t *br);

/*
 * From a thread that is not a scheduler thread: waits until the actor has
 * handled everything sent to it before this call and every report already
 * in the journal (rejection counts published too). timeout_ms on the
 * runtime's clock (0 = none). Returns 0, BW_EINVAL, and bw_call's codes
 * (BW_ENOPROC, BW_ETIMEDOUT, BW_EWOULDBLOCK, BW_ESHUTDOWN).
 */
int bw_breaker_flush(bw_breaker_t *br, uint64_t timeout_ms);

/* --- Stats ------------------------------------------------------------------ */

typedef struct bw_breaker_stats {
  int32_t state;           /* bw_breaker_state_t */
  uint32_t half_open_permits_left;
  uint64_t successful;     /* outcomes classified success (slow ones too) */
  uint64_t failed;         /* classified failure, proxy timeouts included */
  uint64_t slow;           /* slow calls, whatever their outcome */
  uint64_t ignored;        /* classified ignored */
  uint64_t rejected;       /* calls refused (BW_ECIRCUIT_OPEN), all causes */
  uint64_t not_permitted;  /* of those, refused in half-open: no permit left */
  uint64_t timeouts;       /* proxy calls answered BW_ETIMEDOUT */
  uint64_t transitions;    /* state changes */
  uint64_t opens;          /* transitions into open */
  uint64_t journal_fallbacks; /* reports sent as messages: journal stripe full */
  uint64_t window_calls;   /* calls inside the window (ignored ones excluded) */
  double failure_rate;     /* percent over the window; -1 below minimum_calls */
  double slow_rate;        /* percent; -1 below minimum_calls or no detection */
} bw_breaker_stats_t;

/*
 * Reads the counters (lock-free, from any thread or actor; each is exact,
 * the set is not an atomic snapshot). The rates are as of the actor's last
 * batch of outcomes (bw_breaker_flush refreshes them); rejected counts guard
 * rejections at once. Returns 0 or BW_EINVAL.
 */
int bw_breaker_stats(const bw_breaker_t *br, bw_breaker_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
