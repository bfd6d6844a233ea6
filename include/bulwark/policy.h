/*
 * bulwark: policy pipelines. A policy runs each request through up to six
 * stages, always in this order (outermost first; patterns/POLICY.md says why):
 *
 *   fallback -> overall deadline -> retry (+ budget) -> breaker (guard)
 *     -> rate limiter (reject, or wait up to a limit) -> per-attempt timeout
 *     -> bulkhead (concurrency limit + queue) -> target actor
 *
 * The executor is an actor (bw_policy_behaviour, arg = the bw_policy_t *):
 * a requester sends it any user type with bw_request / bw_call, and gets
 * the target's reply, or the error that ended the request
 * (BW_ECIRCUIT_OPEN, BW_ERATE_LIMITED, BW_EBULKHEAD_FULL, BW_ETIMEDOUT,
 * BW_EBUDGET, or the target's failing status) after the fallback had its
 * chance.
 *
 *   bw_policy_opts_t o;
 *   bw_policy_preset("api", &o);        // then adjust
 *   o.target_name = "users";
 *   bw_policy_t *p;
 *   bw_policy_new(rt, &o, &p);          // a handle, no executor yet
 *   bw_pid_t pid;
 *   bw_policy_start(p, &pid);           // or supervised: bw_policy_child_spec(p, "users", &spec)
 *   bw_call(rt, pid, GET_USER, &id, sizeof id, 0, &reply);
 *   ...
 *   bw_policy_destroy(p);               // stops the executor, frees the policy
 */
#ifndef BULWARK_POLICY_H
#define BULWARK_POLICY_H

#include "bulwark/actor.h"
#include "bulwark/breaker.h"
#include "bulwark/message.h"
#include "bulwark/ratelimit.h"
#include "bulwark/retry.h"
#include "bulwark/supervisor.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a request failed (the cause its final error is counted under, and
 * what the fallback is told). */
typedef enum bw_policy_cause {
  BW_POLICY_CAUSE_NONE = 0,  /* success */
  BW_POLICY_CAUSE_BREAKER,   /* BW_ECIRCUIT_OPEN */
  BW_POLICY_CAUSE_RATELIMIT, /* BW_ERATE_LIMITED: no token within rate_wait_ms */
  BW_POLICY_CAUSE_BULKHEAD,  /* BW_EBULKHEAD_FULL, or BW_ETIMEDOUT after the queue wait */
  BW_POLICY_CAUSE_TIMEOUT,   /* BW_ETIMEDOUT: the last attempt timed out */
  BW_POLICY_CAUSE_DEADLINE,  /* BW_ETIMEDOUT: the overall deadline passed */
  BW_POLICY_CAUSE_BUDGET,    /* BW_EBUDGET: the budget refused a retry */
  BW_POLICY_CAUSE_FAILURE,   /* the target's failing status (or a send error) */
  BW_POLICY_CAUSE__COUNT
} bw_policy_cause_t;

/* "none", "breaker", "ratelimit", "bulkhead", "timeout", "deadline",
 * "budget", "failure"; "unknown" otherwise. */
const char *bw_policy_cause_name(int cause);

/* fallback_on bits: which causes consult the fallback. */
#define BW_POLICY_FB(cause) (1u << (cause))
#define BW_POLICY_FB_REJECTED                                                                  \
  (BW_POLICY_FB(BW_POLICY_CAUSE_BREAKER) | BW_POLICY_FB(BW_POLICY_CAUSE_RATELIMIT) |           \
   BW_POLICY_FB(BW_POLICY_CAUSE_BULKHEAD) | BW_POLICY_FB(BW_POLICY_CAUSE_BUDGET))
#define BW_POLICY_FB_ALL 0xFEu /* every cause but none */

/* What a fallback function fills; prefilled with the error (status, type
 * 0, no payload). */
typedef struct bw_policy_answer {
  int32_t status;
  uint32_t type;
  uint32_t len; /* <= BW_MSG_INLINE_MAX */
  uint8_t data[BW_MSG_INLINE_MAX];
} bw_policy_answer_t;

/*
 * A fallback function: runs in the executor's handler (keep it short, never
 * block) with the request's status and cause, and the request as the
 * policy got it (type, payload, sender). Returns 0 if it filled *out (the
 * requester gets out->status, type and payload, counted as a fallback
 * used), or anything else to decline (the requester gets the error).
 */
typedef int (*bw_policy_fallback_fn)(int status, int cause, const bw_msg_t *req,
                                     bw_policy_answer_t *out, void *arg);

/* Limits. */
#define BW_POLICY_NAME_MAX 31u
#define BW_POLICY_CAPACITY_MAX 65536u
#define BW_POLICY_MS_MAX 86400000ull /* any duration: one day */

typedef struct bw_policy_opts {
  /* For metrics (copied; at most BW_POLICY_NAME_MAX bytes). NULL = "policy". */
  const char *name;
  /* The protected actor: a pid (a bulkhead pool pid works: its refusals
   * come back as statuses), or a registered name (copied; looked up per
   * attempt, so a restarted target is found again). Exactly one. */
  bw_pid_t target;
  const char *target_name;
  /* Requests in flight per executor, 1 .. BW_POLICY_CAPACITY_MAX (the table
   * is allocated once, at the executor's init). Beyond it: BW_ELIMIT. */
  uint32_t capacity;

  /* Overall deadline from arrival, fallback excluded: 0 = none, else up to
   * BW_POLICY_MS_MAX. Every wait and attempt is cut to end by it. */
  uint64_t deadline_ms;

  /* Retry: attempts per request, first included (1 = no retry, up to
   * BW_RETRY_ATTEMPTS_MAX); delays from backoff (validated as in retry.h);
   * retryable NULL = bw_retry_default_retryable (so BW_ECIRCUIT_OPEN,
   * BW_ERATE_LIMITED and BW_EBULKHEAD_FULL end a request unless the
   * predicate says otherwise). */
  uint32_t max_attempts;
  bw_retry_backoff_t backoff;
  bw_retry_pred_fn retryable;
  void *retryable_arg;
  /* Retry budget: budget = true gives the policy its own (budget_opts);
   * shared_budget (caller-owned, outlives the policy) is used instead when
   * set. Each request deposits, each retry withdraws. */
  bool budget;
  bw_retry_budget_opts_t budget_opts;
  bw_retry_budget_t *shared_budget;

  /* Breaker (guard mode): breaker = true makes the policy create its own
   * from breaker_opts (its actor is started by the executor's init, stopped
   * by bw_policy_destroy); shared_breaker (caller-owned, e.g. from the
   * resilience registry) is used instead when set. The policy acquires a
   * permit per attempt and reports the attempt's status and duration
   * (send to reply). An attempt refused after the permit by the policy's own
   * rate limiter or bulkhead is reported as BW_ECANCELED, which the policy's
   * own breaker classifies as ignored (give a shared breaker a classifier
   * that does the same, or such refusals count as failures). */
  bool breaker;
  bw_breaker_opts_t breaker_opts;
  bw_breaker_t *shared_breaker;

  /* Rate limiter (token bucket): rate_limit = true gives the policy its own
   * (rate per rate_period_ms, 0 = 1000; bursts of rate_burst; see
   * ratelimit.h); shared_limiter (caller-owned) instead when set. Without a
   * token, wait up to rate_wait_ms for one (a timer; 0 = refuse at once). */
  bool rate_limit;
  uint64_t rate;
  uint64_t rate_period_ms;
  uint32_t rate_burst;
  uint64_t rate_wait_ms;
  bw_ratelimit_t *shared_limiter;

  /* Per-attempt timeout: 0 = none, else up to BW_POLICY_MS_MAX. */
  uint64_t attempt_timeout_ms;

  /* Bulkhead held by the policy: at most max_concurrent attempts at the
   * target at once (0 = no limit); beyond it up to max_queued wait (FIFO)
   * at most queue_timeout_ms (> 0 when max_queued > 0); beyond that
   * BW_EBULKHEAD_FULL. Per executor. */
  uint32_t max_concurrent;
  uint32_t max_queued;
  uint64_t queue_timeout_ms;

  /* Fallback: a function, or an actor the request is forwarded to (as a
   * request; its reply, whatever its status, is the answer); not both.
   * Consulted when a request ends with a cause in fallback_on (default
   * BW_POLICY_FB_ALL), never on success. */
  bw_policy_fallback_fn fallback;
  void *fallback_arg;
  bw_pid_t fallback_pid;
  uint32_t fallback_on;

  /* Jitter seed (0 = from the clock and pid). */
  uint64_t seed;
} bw_policy_opts_t;

/* Fills o with a policy that only forwards: no target, capacity 256, one
 * attempt (backoff: exponential 100 ms x2 up to 10 s, for when attempts
 * are raised), no deadline, no budget (budget_opts: retry.h's defaults),
 * no breaker (breaker_opts: breaker.h's defaults), no rate limit, no
 * timeout, no bulkhead, no fallback (fallback_on BW_POLICY_FB_ALL). */
void bw_policy_opts_init(bw_policy_opts_t *o);

/* Checks o. Returns 0 or BW_EINVAL (NULL; no target, or both; a name too
 * long; capacity 0 or too big; attempts 0 or too many; invalid backoff;
 * durations beyond BW_POLICY_MS_MAX, which is what a negative duration
 * cast to uint64_t becomes; a budget with ratio outside [0, 1], NaN, or a
 * window out of bounds; invalid breaker options (zero window, rates outside
 * (0, 100], ...); a rate limit with rate 0, burst 0 or an unrepresentable
 * rate; a queue without a timeout or a timeout without a queue; both
 * fallback kinds; fallback_on bits beyond BW_POLICY_FB_ALL). */
int bw_policy_opts_validate(const bw_policy_opts_t *o);

/* --- Presets --------------------------------------------------------------- */

typedef enum bw_policy_preset_kind {
  BW_POLICY_PRESET_API = 0,
  BW_POLICY_PRESET_DATABASE,
  BW_POLICY_PRESET_AI,
  BW_POLICY_PRESET_EXTERNAL,
  BW_POLICY_PRESET_CRITICAL,
  BW_POLICY_PRESET__COUNT
} bw_policy_preset_kind_t;

/*
 * Fills o with a preset (see patterns/POLICY.md for the table and the
 * reasons); every field not in the preset has bw_policy_opts_init's value,
 * and no target is set. name: "api", "database", "ai", "external",
 * "critical". Returns 0, BW_EINVAL (NULL, unknown name or kind).
 */
int bw_policy_preset(const char *name, bw_policy_opts_t *o);
int bw_policy_preset_kind(int kind, bw_policy_opts_t *o);
/* The preset's name, or NULL for an unknown kind. */
const char *bw_policy_preset_name(int kind);

/* --- Lifecycle --------------------------------------------------------------- */

typedef struct bw_policy bw_policy_t;

/*
 * Creates a policy (opts copied, strings too): validates, and makes its own
 * budget, rate limiter and breaker handle (not its actor yet) as asked; no
 * executor runs yet. Returns 0, BW_EINVAL (NULL rt, opts or out, bad opts),
 * BW_ENOMEM.
 */
int bw_policy_new(bw_runtime_t *rt, const bw_policy_opts_t *opts, bw_policy_t **out);

/*
 * The executor's behaviour; arg = a bw_policy_t * that outlives it.
 * bw_policy_child_spec fills a child spec with it (id by reference; restart
 * permanent, worker). Several executors may run one policy (several
 * children, or bw_spawn of the behaviour; they share its counters, budget,
 * limiter and breaker; each has its own table and bulkhead). Init starts
 * the policy's own breaker actor if none runs. Returns 0, BW_EINVAL.
 */
extern const bw_behaviour_t bw_policy_behaviour;
int bw_policy_child_spec(bw_policy_t *p, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns an executor (*out, optional: its pid) / stop
 * stops the one start spawned and waits for it (the policy's own breaker
 * keeps running: destroy stops it). start returns 0, BW_EINVAL, BW_EALREADY
 * (an executor of p runs, started or supervised), and bw_spawn's codes.
 * stop returns 0 (also when none runs), BW_EINVAL, BW_ERUNNING (only
 * executors a supervisor runs are alive: stop them there), BW_EWOULDBLOCK
 * (on a scheduler thread: nothing is stopped).
 */
int bw_policy_start(bw_policy_t *p, bw_pid_t *out);
int bw_policy_stop(bw_policy_t *p);

/*
 * bw_policy_stop, then stops the policy's own breaker and frees the policy.
 * Not from a scheduler thread (BW_EWOULDBLOCK, nothing stopped or freed)
 * while an executor it started or its own breaker's actor runs, unless the
 * runtime is stopped. NULL is a no-op. Returns 0, BW_EWOULDBLOCK,
 * BW_ERUNNING (an executor a supervisor runs is alive, or the breaker's
 * actor runs under a supervisor elsewhere: nothing freed; call again once
 * it is stopped).
 */
int bw_policy_destroy(bw_policy_t *p);

/* The executor's pid (with several, the latest to start, while it runs),
 * or BW_PID_NONE. */
bw_pid_t bw_policy_pid(const bw_policy_t *p);

/* The policy's own breaker, or the shared one; NULL if none. */
bw_breaker_t *bw_policy_breaker(const bw_policy_t *p);

/* --- Stats ------------------------------------------------------------------- */

typedef struct bw_policy_stats {
  uint64_t calls;     /* requests accepted */
  uint64_t refused;   /* requests refused at the door: BW_ELIMIT, BW_EINVAL */
  uint64_t successes; /* the target answered 0 */
  uint64_t failures;  /* ended with an error (before the fallback); the sum of: */
  uint64_t rejected_breaker, rejected_ratelimit, rejected_bulkhead;
  uint64_t timeouts;  /* the last attempt timed out */
  uint64_t deadlines; /* the overall deadline passed */
  uint64_t budget_exhausted;
  uint64_t target_failures;
  uint64_t fallbacks;        /* failures answered by the fallback */
  uint64_t fallback_errors;  /* fallback actor failed or did not answer in time */
  uint64_t attempts;         /* attempts that reached the breaker stage */
  uint64_t retries;          /* retries scheduled */
  uint64_t queued;           /* attempts that waited in the bulkhead queue */
  uint64_t rate_waits;       /* attempts that waited for a token */
  uint64_t abandoned;        /* in flight when their executor exited */
  uint64_t in_flight;        /* now */
} bw_policy_stats_t;

/* Reads the counters of every executor of p and of the in-caller form
 * (each exact; the set not a snapshot while they run). From any thread.
 * Returns 0, BW_EINVAL. */
int bw_policy_stats(const bw_policy_t *p, bw_policy_stats_t *out);

/* --- The in-caller form -------------------------------------------------------- */

/*
 * The same stages run in the calling actor or thread, with no executor hop:
 *
 *   bw_policy_ticket_t t;
 *   bw_policy_ticket_init(&t);          // once per request (or reuse: see below)
 *   t.req = msg;                        // optional: what the fallback function sees
 * again:
 *   rc = bw_policy_enter(p, &t);
 *   if (rc == 0) {                      // make the attempt yourself
 *     bw_request(ctx, target, type, data, len, t.timeout_ms, &ref);
 *     ... on its reply (status) or its BW_MSG_REQUEST_TIMEOUT (BW_ETIMEDOUT),
 *     ... or at once with bw_request's own error:
 *     rc = bw_policy_exit(p, &t, status, &retry_in_ms);
 *   }
 *   if (rc == BW_POLICY_RETRY)          // come back: bw_send_after(self, t.retry_in_ms)
 *     ... then goto again;
 *   else                                // over: rc is 0 or the final error; if
 *     ... t.fallback_used, answer with t.answer (status, type, payload)
 *
 * Which form: the actor form (bw_policy_behaviour) when the callers are plain
 * threads or want one call (bw_call) and no protocol; the in-caller form on
 * hot paths in actors (about the cost of the stages, no second round trip),
 * at the price of the caller keeping the ticket and re-entering on
 * BW_POLICY_RETRY.
 *
 * Same stages, order, counters (bw_policy_stats, shared with the
 * policy's executors) and classification as the executor, with these
 * differences:
 * - the concurrency limit (max_concurrent) is one atomic counter per policy,
 *   shared by every in-caller user (the executors each keep their own); it
 *   never queues: max_queued / queue_timeout_ms do not apply, a full limit
 *   is BW_EBULKHEAD_FULL at once (retried only if the predicate says so);
 * - the rate limiter's wait is BW_POLICY_RETRY with t.wait_ns (the exact
 *   wait) and t.retry_in_ms (rounded up): the token is reserved, nothing
 *   else is held (the breaker permit is handed back and asked again on
 *   re-entry, which is the same attempt);
 * - the target is whatever the caller sends to (opts.target / target_name
 *   are only validated);
 * - the fallback function runs in enter or exit, in the caller, with t.req
 *   (an empty message view if NULL); its answer goes to t.answer with
 *   t.fallback_used set, and the call still returns the request's own final
 *   status (so 0 always means "go" from enter, "succeeded" from exit). A
 *   fallback actor (fallback_pid) is not called: t.fallback_pid is set when
 *   the cause is in fallback_on, for the caller to forward to if it wants.
 */

/* "Come back after t->retry_in_ms, then call bw_policy_enter again":
 * positive, so never a bulwark error code; never a final status. */
#define BW_POLICY_RETRY 0x7FFFFFF0

typedef struct bw_policy_ticket {
  /* In (optional): the request the fallback function is shown. */
  const bw_msg_t *req;
  /* Out, after enter returned 0: when the attempt must have its answer
   * (runtime clock, ns; 0 = no bound), and the same as a bw_request timeout
   * in ms (0 = none): min(attempt_timeout_ms, what the deadline leaves). */
  uint64_t deadline_ns;
  uint64_t timeout_ms;
  /* Out, with BW_POLICY_RETRY: the delay before re-entering (a backoff, or
   * a token wait); wait_ns is the exact token wait (0 for a backoff). */
  uint64_t retry_in_ms;
  uint64_t wait_ns;
  /* Out: attempts made so far; once over, the cause (bw_policy_cause_t). */
  uint32_t attempts;
  int32_t cause;
  /* Out, once over with a failure: the fallback function's answer. */
  bool fallback_used;
  bw_pid_t fallback_pid; /* the fallback actor to forward to, if any (see above) */
  bw_policy_answer_t answer;
  /* Private to patterns/policy_caller.c. */
  struct {
    uint64_t deadline_at_ms; /* the overall deadline (runtime clock); 0 = none */
    uint64_t start_ns;       /* when the attempt went ahead: the breaker's duration */
    bw_retry_backoff_state_t bo;
    bw_breaker_permit_t permit;
    uint32_t magic;
    uint8_t state;
    bool permit_held, slot_held, token_held;
  } priv_;
} bw_policy_ticket_t;

/* Makes t a fresh ticket (no request started). A ticket whose request is
 * over (enter or exit returned a final status) starts a new request on its
 * next enter, so one ticket per in-flight request can be reused. NULL is a
 * no-op. */
void bw_policy_ticket_init(bw_policy_ticket_t *t);

/*
 * Runs the stages in front of one attempt: (first time: counts the call,
 * deposits in the budget, starts the deadline) overall deadline, breaker
 * permit, rate limiter token, concurrency slot, then the attempt's bound
 * (t->deadline_ns, t->timeout_ms). No message, lock or allocation (a
 * breaker refusal in half-open hands a permit back with one report).
 * Returns:
 *   0                  make the attempt, then call bw_policy_exit;
 *   BW_POLICY_RETRY    nothing held; re-enter after t->retry_in_ms (a token
 *                      wait, or a backoff after a refusal the predicate
 *                      retries);
 *   a final error      the request is over (t->cause; fallback in
 *                      t->answer if t->fallback_used): BW_ECIRCUIT_OPEN,
 *                      BW_ERATE_LIMITED, BW_EBULKHEAD_FULL, BW_ETIMEDOUT
 *                      (deadline), BW_EBUDGET;
 *   BW_EINVAL          NULL p or t, a destroyed policy, a ticket whose
 *                      attempt is in progress (exit first) or that was never
 *                      initialised; nothing counted.
 */
int bw_policy_enter(bw_policy_t *p, bw_policy_ticket_t *t);

/*
 * Ends the attempt enter let through: status is the target's reply status,
 * BW_ETIMEDOUT if the request timed out, or bw_request's error. Reports to
 * the breaker (status and the duration since enter, measured only when the
 * breaker detects slow calls: a success otherwise reads no clock), frees
 * the slot, then classifies as the executor does: 0 ends the request; a
 * failure is retried if the predicate allows it, attempts are left, the
 * backoff ends before the deadline and the budget allows it. Returns
 * BW_POLICY_RETRY
 * (*retry_in_ms, optional, = t->retry_in_ms = the backoff), or the final
 * status: 0, the target's error, BW_ETIMEDOUT (timeout or deadline),
 * BW_EBUDGET; the fallback is consulted as with enter. BW_EINVAL (NULL p
 * or t, a ticket not in an attempt): nothing done.
 */
int bw_policy_exit(bw_policy_t *p, bw_policy_ticket_t *t, int status, uint64_t *retry_in_ms);

#ifdef __cplusplus
}
#endif
#endif
