/*
 * bulwark: retry with backoff and jitter, a retry budget, and per-request
 * timeouts.
 *
 * Three pieces, usable alone or together:
 *
 * - Backoff (bw_retry_backoff_*): pure delay computation. Fixed, exponential,
 *   and exponential with full, equal or decorrelated jitter (the formulas of
 *   the AWS Architecture Blog's "Exponential Backoff And Jitter"), with a
 *   splitmix64 generator seeded by the caller, so a seed gives one exact
 *   sequence of delays.
 *
 * - Budget (bw_retry_budget_*): retries may be at most a fraction of the
 *   calls of the last window, plus a floor of retries per second (Finagle's
 *   RetryBudget model). Lock-free; one budget may be shared by any number of
 *   executors and threads, so that in a storm retries cannot multiply load.
 *
 * - Executor (bw_retry_behaviour): an actor that proxies requests to a target
 *   actor. It forwards each request it gets, waits for the reply with a
 *   per-attempt timeout, retries failures the predicate calls retryable after
 *   a backoff delay (a timer, never a sleep), within an optional overall
 *   deadline and the budget, and answers the requester with the target's
 *   final reply, the last error, or the error of what stopped the retries
 *   (BW_ETIMEDOUT for the deadline, BW_EBUDGET for the budget).
 *
 *   bw_retry_opts_t o;
 *   bw_retry_opts_init(&o);
 *   o.target_name = "db";              // followed across the target's restarts
 *   o.max_attempts = 4;
 *   o.attempt_timeout_ms = 200;
 *   o.deadline_ms = 1000;
 *   bw_retry_t *r;
 *   bw_retry_new(rt, &o, &r);          // a handle, no executor yet
 *   bw_retry_start(r, &pid);           // or supervised: bw_retry_child_spec(r, "db-retry", &spec)
 *   bw_call(rt, pid, MY_QUERY, &q, sizeof q, 0, &reply);   // or bw_request from an actor
 *   ...
 *   bw_retry_destroy(r);               // stops the executor, frees the handle
 */
#ifndef BULWARK_RETRY_H
#define BULWARK_RETRY_H

#include "bulwark/actor.h"
#include "bulwark/message.h"
#include "bulwark/supervisor.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- Backoff --------------------------------------------------------------- */

/* The longest delay (and timeout) any option accepts: one day, in ms. */
#define BW_RETRY_DELAY_MAX_MS 86400000ull
/* The largest multiplier accepted. */
#define BW_RETRY_MULTIPLIER_MAX 1000.0

typedef enum bw_retry_backoff_kind {
  /* Every delay is initial_ms. */
  BW_RETRY_BACKOFF_FIXED = 0,
  /* Delay n (n = 0 for the first retry) is min(max_ms, initial_ms *
   * multiplier^n), truncated to whole ms. */
  BW_RETRY_BACKOFF_EXPONENTIAL,
  /* Uniform in [0, exponential delay n]: spreads a herd of clients the most
   * (AWS's "full jitter"). */
  BW_RETRY_BACKOFF_FULL_JITTER,
  /* e/2 + uniform in [0, e - e/2] with e the exponential delay n: never less
   * than half of it ("equal jitter"). */
  BW_RETRY_BACKOFF_EQUAL_JITTER,
  /* min(max_ms, uniform in [initial_ms, prev * multiplier]) with prev the
   * previous delay, initial_ms at first ("decorrelated jitter"; AWS uses a
   * multiplier of 3). Always within [initial_ms, max_ms]. */
  BW_RETRY_BACKOFF_DECORRELATED,
  BW_RETRY_BACKOFF__COUNT
} bw_retry_backoff_kind_t;

typedef struct bw_retry_backoff {
  int kind;           /* bw_retry_backoff_kind_t */
  uint64_t initial_ms; /* 1 .. max_ms: the first delay (or its ceiling) */
  uint64_t max_ms;     /* initial_ms .. BW_RETRY_DELAY_MAX_MS: the cap of every delay */
  double multiplier;   /* 1 .. BW_RETRY_MULTIPLIER_MAX; ignored by FIXED */
} bw_retry_backoff_t;

/* The state of one sequence of delays (one request's retries). Plain data:
 * copy it, keep it anywhere. */
typedef struct bw_retry_backoff_state {
  uint64_t rng;     /* splitmix64 state */
  double ceil_ms;   /* exponential kinds: the next exponential delay, capped */
  uint64_t prev_ms; /* decorrelated: the previous delay */
  uint32_t retries; /* delays computed so far */
} bw_retry_backoff_state_t;

/* Returns 0 if b is a valid backoff (bounds above), else BW_EINVAL. */
int bw_retry_backoff_validate(const bw_retry_backoff_t *b);

/* Starts a sequence: the same b and seed always give the same delays.
 * Returns 0, BW_EINVAL (NULL or invalid b). */
int bw_retry_backoff_start(const bw_retry_backoff_t *b, uint64_t seed,
                           bw_retry_backoff_state_t *st);

/* The delay before the next retry, in ms, and advances st. O(1), no
 * allocation, no locks. b must be valid and the one st was started with
 * (not checked: this is the per-retry path). */
uint64_t bw_retry_backoff_next(const bw_retry_backoff_t *b, bw_retry_backoff_state_t *st);

/* splitmix64: the next 64 random bits from *state (any value, 0 included). */
uint64_t bw_retry_rand64(uint64_t *state);

/* --- Budget ---------------------------------------------------------------- */

/* The window is kept as this many slices; a deposit or withdrawal counts for
 * between (slices-1)/slices and all of window_ms. */
#define BW_RETRY_BUDGET_SLICES 10u

typedef struct bw_retry_budget_opts {
  /* Retries allowed per call of the window, 0..1 (0.1: one retry per ten
   * calls). */
  double ratio;
  /* A floor: this many retries per second are allowed whatever the calls
   * (min_retries_per_sec * window_ms / 1000 per window), so clients that
   * just started, or that make few calls, can still retry. 0..1000000. */
  uint32_t min_retries_per_sec;
  /* How long a call or retry counts, BW_RETRY_BUDGET_SLICES .. 3600000 ms. */
  uint64_t window_ms;
} bw_retry_budget_opts_t;

/* Caller-allocated; fields are private (lock-free counters). */
typedef struct bw_retry_budget {
  bw_runtime_t *rt;
  uint64_t slice_ms;
  uint64_t ratio_ppm;   /* retries per call, in millionths */
  uint64_t reserve_ppm; /* the floor for one window, in millionths of a retry */
  /* per slice: (slice number << 32) | count, reset when a new slice reuses it */
  uint64_t deposits[BW_RETRY_BUDGET_SLICES];
  uint64_t withdrawals[BW_RETRY_BUDGET_SLICES];
  uint64_t total_deposits, total_withdrawals, total_refused;
  uint32_t magic;
} bw_retry_budget_t;

typedef struct bw_retry_budget_stats {
  uint64_t deposits;    /* calls recorded, since init */
  uint64_t withdrawals; /* retries allowed, since init */
  uint64_t refused;     /* retries refused, since init */
  int64_t balance;      /* retries allowed now */
} bw_retry_budget_stats_t;

/* Fills o with the defaults: ratio 0.2, 10 retries per second, 10 s window. */
void bw_retry_budget_opts_init(bw_retry_budget_opts_t *o);

/* Initialises b on rt's clock. b must not move while in use and must outlive
 * its users. Returns 0, BW_EINVAL (NULL, ratio outside [0, 1] or NaN, window
 * or floor out of bounds). */
int bw_retry_budget_init(bw_retry_budget_t *b, bw_runtime_t *rt, const bw_retry_budget_opts_t *o);

/* Records one call (a first attempt). Lock-free: one CAS, from any thread.
 * Returns 0, BW_EINVAL. */
int bw_retry_budget_deposit(bw_retry_budget_t *b);

/* Asks for one retry: 0 if the budget allows it (it is then counted), else
 * BW_EBUDGET. Lock-free, from any thread; O(slices). Under concurrent
 * withdrawals it never allows more than the balance, except for at most one
 * extra retry per thread racing a slice boundary. Returns also BW_EINVAL. */
int bw_retry_budget_try_withdraw(bw_retry_budget_t *b);

/* The retries allowed now (may be <= 0). */
int64_t bw_retry_budget_balance(const bw_retry_budget_t *b);

/* Returns 0, BW_EINVAL. */
int bw_retry_budget_stats(const bw_retry_budget_t *b, bw_retry_budget_stats_t *out);

/* --- Executor -------------------------------------------------------------- */

/*
 * Decides whether a failed attempt's status (a negative BW_E code or a user
 * code) may be retried. Runs in the executor's handler: keep it short,
 * never block. BW_EINVAL and BW_ESHUTDOWN are never retried whatever it says.
 */
typedef bool (*bw_retry_pred_fn)(int status, void *arg);

/*
 * The default predicate: retries BW_ETIMEDOUT (the attempt got no answer in
 * time), BW_ENOPROC (the target is gone: with a target_name a supervisor may
 * restart it), BW_ENOTFOUND (target_name not registered yet) and BW_EFULL (a
 * full mailbox). Everything else is final, notably BW_ECIRCUIT_OPEN (retrying
 * an open breaker is the storm breakers exist to stop: pass a predicate that
 * says yes to it if you really mean to), BW_EBULKHEAD_FULL, BW_ERATE_LIMITED,
 * BW_EBUDGET and user codes.
 */
bool bw_retry_default_retryable(int status, void *arg);

/* Largest max_attempts and capacity accepted. */
#define BW_RETRY_ATTEMPTS_MAX 100u
#define BW_RETRY_CAPACITY_MAX 65536u

typedef struct bw_retry_opts {
  /* The policy's name, for metrics and events (copied; may be NULL). */
  const char *name;
  /* Where requests go: a pid, or a registered name looked up at each attempt
   * (copied), which follows a supervised target across restarts. At most
   * one; with neither, every request must name its target
   * (BW_MSG_RETRY_CALL). A fixed pid that is dead stays dead (pids are never
   * reused), so BW_ENOPROC from a fixed pid is never retried. */
  bw_pid_t target;
  const char *target_name;
  /* Attempts per request, first one included: 1 = no retry. 1 ..
   * BW_RETRY_ATTEMPTS_MAX. */
  uint32_t max_attempts;
  bw_retry_backoff_t backoff;
  /* Each attempt's timeout, 1 .. BW_RETRY_DELAY_MAX_MS: an attempt without
   * an answer by then failed with BW_ETIMEDOUT, and its late reply becomes a
   * dead letter (late_reply). */
  uint64_t attempt_timeout_ms;
  /* Optional overall deadline per request from its arrival, 0 (none) or 1 ..
   * BW_RETRY_DELAY_MAX_MS. Attempt timeouts are cut to fit in it. */
  uint64_t deadline_ms;
  /* NULL = bw_retry_default_retryable. */
  bw_retry_pred_fn retryable;
  void *retryable_arg;
  /* Optional, shared: each request deposits, each retry withdraws. */
  bw_retry_budget_t *budget;
  /* Requests in flight per executor, 1 .. BW_RETRY_CAPACITY_MAX; the table
   * is allocated once at start. Beyond it a request is answered BW_ELIMIT. */
  uint32_t capacity;
  /* Jitter seed; each executor of the handle (each restart too) derives
   * its own sequence from it (deterministic for tests). 0 = from the pid
   * and clock. */
  uint64_t seed;
} bw_retry_opts_t;

/* Fills o with the defaults: no target, 3 attempts, full-jitter exponential
 * backoff 100 ms x2 up to 10 s, attempt timeout 1000 ms, no deadline, the
 * default predicate, no budget, capacity 64, seed 0. */
void bw_retry_opts_init(bw_retry_opts_t *o);

/* Checks o. Returns 0 or BW_EINVAL (NULL; both target and target_name;
 * max_attempts 0 or too big; invalid backoff: unknown kind, initial_ms 0,
 * max_ms < initial_ms, multiplier < 1 or NaN; attempt_timeout_ms 0; values
 * over their bounds; capacity 0 or too big). */
int bw_retry_opts_validate(const bw_retry_opts_t *o);

/* --- Lifecycle ------------------------------------------------------------ */

/*
 * A retry policy: a handle with the validated options (strings copied; the
 * budget by reference: it must outlive the handle) and the counters of
 * every executor it runs.
 */
typedef struct bw_retry bw_retry_t;

/* A handle, no executor yet. Returns 0, BW_EINVAL (NULL rt or out, bad
 * opts; NULL opts = defaults), BW_ENOMEM. */
int bw_retry_new(bw_runtime_t *rt, const bw_retry_opts_t *opts, bw_retry_t **out);

/*
 * The executor's behaviour; its init argument is the handle (init fails
 * with BW_EINVAL otherwise). bw_retry_child_spec fills a child spec with it
 * (id by reference; restart permanent, worker); the handle must outlive the
 * tree. Several executors may run one handle (several children, or
 * bw_spawn of the behaviour): they share its counters and budget, each
 * with its own table and jitter sequence. Returns 0, BW_EINVAL. Protocol:
 *
 * - A request (bw_request or bw_call) of any type outside the retry range
 *   [BW_MSG_RETRY_BASE, +0x100) is forwarded as is (type, inline payload) to
 *   the target, as a request from the executor.
 * - BW_MSG_RETRY_CALL: the payload is a bw_retry_call_t header naming the
 *   target and the type, then the payload to forward (bw_retry_call_pack).
 * - The requester gets the target's successful reply (status 0, its type and
 *   inline payload), or after the last attempt the final failure: the
 *   target's failing reply as is, or status BW_ETIMEDOUT (the attempt timed
 *   out, or the overall deadline passed), BW_ENOPROC, ... A moved reply
 *   payload (bw_reply_move) up to BW_MSG_INLINE_MAX bytes is copied; a larger
 *   one is answered BW_ETOOBIG.
 * - A request beyond capacity is answered BW_ELIMIT at once; a malformed
 *   BW_MSG_RETRY_CALL or a plain request with no target configured, BW_EINVAL.
 * - The overall deadline ends a request with BW_ETIMEDOUT when it passes, or
 *   as soon as the next backoff would end past it (no attempt can start in
 *   time, so nobody waits for nothing).
 * - When the budget refuses a retry, the request ends with BW_EBUDGET and
 *   budget_exhausted counts it, as a policy's request does (bulwark/policy.h:
 *   one decision for both). It used to end with its last error; the
 *   budget's own code says why it ended, and is final for
 *   bw_retry_default_retryable, so an outer retry layer does not multiply
 *   the load the budget is cutting.
 * - If the executor exits, requests in flight are answered BW_ENOPROC by the
 *   runtime (their requesters monitor it) and counted as abandoned.
 * Messages without BW_MSGF_REQUEST are ignored.
 */
extern const bw_behaviour_t bw_retry_behaviour;
int bw_retry_child_spec(bw_retry_t *r, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns an executor (*out, optional: its pid) / stop
 * stops the one start spawned and waits for it. start returns 0, BW_EINVAL,
 * BW_EALREADY (an executor of this handle runs, started or supervised), and
 * bw_spawn's codes. stop returns 0 (also when none runs), BW_EINVAL,
 * BW_ERUNNING (only executors a supervisor runs are alive: stop them
 * there), BW_EWOULDBLOCK (on a scheduler thread: nothing is stopped).
 */
int bw_retry_start(bw_retry_t *r, bw_pid_t *out);
int bw_retry_stop(bw_retry_t *r);

/* bw_retry_stop, then frees the handle. NULL is a no-op. Returns 0, or
 * BW_ERUNNING (an executor still runs: nothing freed) / BW_EWOULDBLOCK. */
int bw_retry_destroy(bw_retry_t *r);

/* The executor's pid (with several, the latest to start, while it runs),
 * or BW_PID_NONE. */
bw_pid_t bw_retry_pid(const bw_retry_t *r);

/* The name the handle was made with (NULL if none, or for NULL). */
const char *bw_retry_name(const bw_retry_t *r);

/* The request that names its target. Payload: bw_retry_call_t, then up to
 * BW_RETRY_CALL_PAYLOAD_MAX bytes forwarded with type. */
#define BW_MSG_RETRY_CALL (BW_MSG_RETRY_BASE + 0u)

typedef struct bw_retry_call {
  bw_pid_t target;
  uint32_t type; /* the type forwarded to target; below BW_MSG_SYSTEM_BASE */
  uint32_t reserved;
} bw_retry_call_t;

#define BW_RETRY_CALL_PAYLOAD_MAX (BW_MSG_INLINE_MAX - sizeof(bw_retry_call_t))

/* Writes a BW_MSG_RETRY_CALL payload into buf (BW_MSG_INLINE_MAX bytes) and
 * its length into *out_len. Returns 0, BW_EINVAL, BW_ETOOBIG. */
int bw_retry_call_pack(void *buf, bw_pid_t target, uint32_t type, const void *data, size_t len,
                       size_t *out_len);

/* Counters of every executor of one handle, since bw_retry_new. */
typedef struct bw_retry_stats {
  uint64_t calls;            /* requests accepted */
  uint64_t rejected;         /* requests refused: BW_ELIMIT (table full) or BW_EINVAL */
  uint64_t attempts;         /* requests sent to a target, first ones and retries */
  uint64_t retries;          /* retries scheduled (counted when the backoff wait is
                              * armed): attempts after the first, plus those cut
                              * short by their executor's exit */
  uint64_t successes;        /* calls answered with status 0 */
  uint64_t successes_after_retry; /* of which needed more than one attempt */
  uint64_t failures;         /* calls answered with an error */
  uint64_t budget_exhausted; /* calls ended because the budget refused a retry */
  uint64_t timeouts;         /* attempts that timed out */
  uint64_t deadlines;        /* calls ended by their overall deadline */
  uint64_t abandoned;        /* calls in flight when their executor exited */
  uint64_t in_flight;        /* calls now in flight */
} bw_retry_stats_t;

/* Reads the counters (relaxed: each exact, the set not a snapshot while
 * executors run). From any thread, actors included. Returns 0, BW_EINVAL. */
int bw_retry_stats(const bw_retry_t *r, bw_retry_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
