/*
 * bulwark: bulkhead pools. A pool is an actor that owns N worker actors
 * (optionally on dedicated threads, for blocking calls) plus up to M
 * overflow workers started when all are busy and retired when idle again,
 * and a bounded wait queue with a queue timeout. Work beyond pool + queue
 * is refused with BW_EBULKHEAD_FULL; work that waited too long gets
 * BW_ETIMEDOUT. See patterns/BULKHEAD.md for the design.
 *
 * Three forms:
 *
 * (a) Submit a job and get the reply. Any request (bw_request / bw_call) of
 *     a user type (below BW_MSG_PATTERN_BASE, payload up to
 *     BW_BULKHEAD_PAYLOAD_MAX) sent to the pool is a *message job*: a free
 *     worker's behaviour (opts.worker) handles it as if the requester had
 *     sent it the request, and answers with bw_reply; the answer goes to the
 *     requester directly. A plain bw_send of a user type is a job without
 *     a reply. A worker that exits before it has finished a job (crash,
 *     BW_STOP) makes the pool answer BW_ECRASH; if the worker had answered
 *     already, that second answer is a dead letter (late_reply). A *function job* (bw_bulkhead_run) runs fn(ctx, resource,
 *     arg) on a worker; fn's return value is the reply's status.
 *
 *       bw_bulkhead_opts_t o;
 *       bw_bulkhead_opts_init(&o);
 *       o.name = "db"; o.workers = 4; o.worker = &conn_behaviour;
 *       o.queue_capacity = 64; o.queue_timeout_ms = 500;
 *       bw_bulkhead_t *db;
 *       bw_bulkhead_new(rt, &o, &db);                       // a handle, no actor yet
 *       bw_bulkhead_start(db, NULL);                        // or bw_bulkhead_child_spec
 *       bw_reply_t r;
 *       int rc = bw_bulkhead_submit(db, MY_QUERY, q, qlen, 1000, &r); // form (a)
 *       ...
 *       bw_bulkhead_destroy(db);                            // stops it, frees the handle
 *
 * (b) Check out a worker (the resource, e.g. a connection actor): it is
 *     lent to the borrower exclusively until bw_bulkhead_checkin. The pool
 *     monitors the borrower; if the borrower dies, the worker comes back.
 *
 * (c) With-resource: bw_bulkhead_run(pool, fn, arg, ...) runs fn on a
 *     worker with the worker's state (the resource) and always returns the
 *     worker to the pool, even when fn crashes (bw_fail): the pool then
 *     restarts the worker and the requester gets BW_ECRASH.
 *
 * The pool supervises its workers itself (links and traps exits) with a
 * restart intensity; beyond it the pool exits with a crash, so its own
 * supervisor sees it. It runs as a supervised child (bw_bulkhead_child_spec)
 * or through start/stop.
 *
 * Handle or pid: a pool is a handle (bw_bulkhead_t, like every pattern); its
 * actor's pid changes when a supervisor restarts it, and bw_bulkhead_pid
 * gives the current one. The calls from a plain thread (submit, run,
 * checkout, stats) and checkin take the handle, so they follow the pool
 * across restarts. The calls from an actor that build a request (the ones
 * taking a bw_ctx_t: run_request, checkout_request, stats_request) take the
 * pool's pid, as bw_http_request does: they are messages, and an actor may
 * know a pool only by its pid or registered name (bw_whereis), as the
 * metrics reporter and the health monitor do. Any actor may also use the
 * protocol below directly with bw_request or bw_send.
 */
#ifndef BULWARK_BULKHEAD_H
#define BULWARK_BULKHEAD_H

#include "bulwark/actor.h"
#include "bulwark/message.h"
#include "bulwark/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pool's protocol, in the bulkhead's range of message types. */
enum {
  /* request: a function job; payload bw_bulkhead_job_t. The reply has the
   * job's status and type BW_BULKHEAD_RESULT, no payload. */
  BW_BULKHEAD_RUN = BW_MSG_BULKHEAD_BASE,
  /* request: check a worker out. Payload: none (the borrower is the
   * sender, which the pool monitors), or a bw_pid_t borrower (BW_PID_NONE:
   * nobody is monitored; needed from a thread, where bw_call's temporary
   * pid is gone as soon as the call returns). The reply's payload is a
   * bw_bulkhead_lease_t. */
  BW_BULKHEAD_CHECKOUT,
  /* message: return a lease; payload bw_bulkhead_lease_t. */
  BW_BULKHEAD_CHECKIN,
  /* request: the stats; the reply's payload is bw_bulkhead_stats_t. */
  BW_BULKHEAD_STATS,
  /* the type of a function job's reply */
  BW_BULKHEAD_RESULT,
  /* types from BW_MSG_BULKHEAD_BASE + 0x80 are the pool's internal ones */
};

/* Largest payload of a message job (the pool adds who to answer to). */
#define BW_BULKHEAD_PAYLOAD_MAX (BW_MSG_INLINE_MAX - 24u)
/* Limits of the options. */
#define BW_BULKHEAD_MAX_WORKERS 4096u   /* workers, and overflow workers */
#define BW_BULKHEAD_MAX_QUEUE 65536u
#define BW_BULKHEAD_MAX_MS (86400000ull) /* any duration: one day */
#define BW_BULKHEAD_NAME_MAX 31u
#define BW_BULKHEAD_MAX_RESTARTS 10000

/*
 * A function job: runs on a worker actor as fn(ctx, resource, arg), where
 * ctx is the worker's, resource its behaviour's state (NULL for a pool
 * without opts.worker) and arg the caller's. Returns 0 or a negative code:
 * the reply's status. To crash the worker (it is restarted), bw_fail.
 * On a dedicated-thread pool fn may block. arg must stay valid until fn
 * has run: if the caller stops waiting (its own deadline), the job may
 * still run later, so give such jobs an arg that does not live on the
 * waiting stack, or a deadline longer than queue timeout + run time.
 */
typedef int (*bw_bulkhead_fn)(bw_ctx_t *ctx, void *resource, void *arg);

typedef struct bw_bulkhead_job {
  bw_bulkhead_fn fn;
  void *arg;
} bw_bulkhead_job_t;

/* A lent worker. */
typedef struct bw_bulkhead_lease {
  bw_pid_t worker; /* talk to it directly (bw_request, bw_call, bw_send) */
  uint32_t slot;   /* for the pool */
  uint32_t epoch;  /* for the pool: a stale lease is ignored */
} bw_bulkhead_lease_t;

typedef struct bw_bulkhead_opts {
  /* For events and metrics (copied; at most BW_BULKHEAD_NAME_MAX bytes).
   * NULL = "bulkhead". Not registered: use a child spec's name, or
   * bw_register. */
  const char *name;
  /* Workers started with the pool and restarted when they die: 1 ..
   * BW_BULKHEAD_MAX_WORKERS. */
  uint32_t workers;
  /* Overflow workers, started when all are busy, at most this many at
   * once (0 .. BW_BULKHEAD_MAX_WORKERS); a crashed one is not restarted
   * (another starts on demand). */
  uint32_t max_overflow;
  /* An overflow worker with nothing to do is stopped after this long
   * (0 = as soon as it is idle and the queue is empty). */
  uint64_t overflow_idle_ms;
  /* Waiting room when every worker is busy: 0 = none (refuse at once). */
  uint32_t queue_capacity;
  /* How long work may wait there (> 0 when there is a queue), then the
   * requester gets BW_ETIMEDOUT. */
  uint64_t queue_timeout_ms;
  /* Each worker's behaviour (the resource: a connection, a client ...) and
   * its init argument (the same for all). The behaviour must outlive the
   * pool (a static const). NULL: workers that only run function jobs. */
  const bw_behaviour_t *worker;
  void *worker_arg;
  /* Workers on threads of their own: for jobs that block. */
  bool dedicated_threads;
  /* Optional rate limit on the work the pool accepts (jobs and
   * checkouts): rate per rate_period_ms (0 = 1000), bursts of rate_burst.
   * Refused work gets BW_ERATE_LIMITED. With rate_limit set, rate and
   * rate_burst must be > 0. */
  bool rate_limit;
  uint64_t rate;
  uint64_t rate_period_ms;
  uint32_t rate_burst;
  /* Restart intensity: more than max_restarts worker restarts within
   * restart_period_ms make the pool exit (crash, code BW_ELIMIT).
   * 0 = 10; -1 = none allowed; at most BW_BULKHEAD_MAX_RESTARTS.
   * restart_period_ms 0 = 5000. */
  int32_t max_restarts;
  uint64_t restart_period_ms;
} bw_bulkhead_opts_t;

/* What bw_bulkhead_stats gives back; fits an inline reply.
 * Once nothing is in flight: submitted = started + rejected + timed_out +
 * queued, and started = completed + crashed + leases (checkouts granted)
 * + busy. completed counts a job when its worker tells the pool it is
 * done, which for a message job may be just after the requester has the
 * reply. */
typedef struct bw_bulkhead_stats {
  char name[BW_BULKHEAD_NAME_MAX + 1];
  uint32_t workers, max_overflow, queue_capacity; /* the configuration */
  uint32_t available;  /* workers that could take work now: capacity - busy - lent */
  uint32_t idle;       /* started and free */
  uint32_t busy;       /* running a job */
  uint32_t lent;       /* checked out */
  uint32_t queued;     /* waiting */
  uint32_t overflow;   /* overflow workers running */
  uint32_t _pad;
  uint64_t submitted;  /* jobs and checkouts received */
  uint64_t started;    /* handed to a worker (jobs and checkouts) */
  uint64_t completed;  /* jobs finished */
  uint64_t crashed;    /* jobs whose worker died (requester got BW_ECRASH) */
  uint64_t rejected;   /* BW_EBULKHEAD_FULL and BW_ERATE_LIMITED */
  uint64_t rate_limited; /* of which BW_ERATE_LIMITED */
  uint64_t timed_out;  /* waited past queue_timeout_ms */
  uint64_t leases;     /* checkouts granted */
  uint64_t returns;    /* leases ended: checkin, borrower down, worker died */
  uint64_t restarted;  /* workers restarted after an exit the pool did not ask for */
  uint64_t overflow_started, overflow_retired;
} bw_bulkhead_stats_t;

/* Fills opts with the defaults: 1 worker, no overflow, no queue, no rate
 * limit, intensity 10 per 5 s. */
void bw_bulkhead_opts_init(bw_bulkhead_opts_t *opts);

/* Checks options. Returns 0 or BW_EINVAL (NULL; workers 0 or too many;
 * overflow too many; a queue without a timeout, or a timeout without a
 * queue; a queue too long; durations above BW_BULKHEAD_MAX_MS; rate limit
 * on with rate 0 or burst 0, or a rate the limiter cannot represent; rate
 * fields set without rate_limit; name too long; max_restarts below -1; a
 * worker behaviour without a handle callback). */
int bw_bulkhead_opts_validate(const bw_bulkhead_opts_t *opts);

/* --- Lifecycle -------------------------------------------------------------- */

typedef struct bw_bulkhead bw_bulkhead_t;

/* A pool handle (opts copied, the name too; the worker behaviour and its
 * argument by reference: they must outlive the handle) without an actor.
 * Returns 0, BW_EINVAL (NULL rt or out, bad opts; NULL opts = defaults),
 * BW_ENOMEM. */
int bw_bulkhead_new(bw_runtime_t *rt, const bw_bulkhead_opts_t *opts, bw_bulkhead_t **out);

/*
 * The pool's behaviour; arg = the handle (which must outlive the tree).
 * bw_bulkhead_child_spec fills a child spec with it (id by reference;
 * restart permanent, worker; add .name to register the pool). A restarted
 * pool starts fresh workers and counters; init fails with BW_EALREADY while
 * another actor of the handle lives, or with a worker's start error.
 * Returns 0, BW_EINVAL.
 */
extern const bw_behaviour_t bw_bulkhead_behaviour;
int bw_bulkhead_child_spec(bw_bulkhead_t *pool, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns the pool (its workers are up when it returns;
 * *out, optional: its pid). From any thread or actor. Returns 0,
 * BW_EINVAL, BW_EALREADY (an actor of this handle is alive), and
 * bw_spawn's codes.
 *
 * stop stops the pool and its workers (shutdown; each worker's terminate
 * runs) and waits until the pool is gone (its workers follow: one still
 * inside a blocking job stops when the job returns). Waiting requesters get
 * BW_ESHUTDOWN; those whose job is running get the worker's answer, or
 * BW_ENOPROC if the pool is gone first. Returns 0 (also when no pool runs),
 * BW_EINVAL, BW_ERUNNING (a supervisor runs it: stop it there),
 * BW_EWOULDBLOCK (on a scheduler thread: nothing is stopped).
 */
int bw_bulkhead_start(bw_bulkhead_t *pool, bw_pid_t *out);
int bw_bulkhead_stop(bw_bulkhead_t *pool);

/* bw_bulkhead_stop, then frees the handle. NULL is a no-op. Returns 0, or
 * stop's BW_ERUNNING / BW_EWOULDBLOCK (nothing freed). */
int bw_bulkhead_destroy(bw_bulkhead_t *pool);

/* The pool actor's pid now, or BW_PID_NONE while none runs. */
bw_pid_t bw_bulkhead_pid(const bw_bulkhead_t *pool);

/* The pool's counters now (a request to the pool: from a thread that is not
 * a scheduler thread; from an actor use bw_bulkhead_stats_request). Returns
 * 0, BW_EINVAL, BW_ENOPROC (no pool runs), or bw_call's codes. */
int bw_bulkhead_stats(const bw_bulkhead_t *pool, bw_bulkhead_stats_t *out);

/* --- From a thread (synchronous; not on a scheduler thread) -------------- */

/* Each sends to the pool the handle runs now: BW_ENOPROC while none runs. */

/* Form (a): a message job; bw_call to the pool. Returns the worker's
 * status with *out filled, or the pool's refusal (BW_EBULKHEAD_FULL,
 * BW_ETIMEDOUT, BW_ERATE_LIMITED, BW_ECRASH, BW_ETOOBIG, BW_EINVAL: the
 * pool has no worker behaviour), or bw_call's codes. */
int bw_bulkhead_submit(bw_bulkhead_t *pool, uint32_t type, const void *data, size_t len,
                       uint64_t timeout_ms, bw_reply_t *out);

/* Form (c): runs fn(ctx, resource, arg) on a worker; returns fn's status,
 * BW_ECRASH if the worker crashed running it, or the pool's refusal or
 * bw_call's codes (BW_EINVAL: NULL pool or fn). timeout_ms 0 = no deadline. */
int bw_bulkhead_run(bw_bulkhead_t *pool, bw_bulkhead_fn fn, void *arg, uint64_t timeout_ms);

/* Form (b): checks a worker out for borrower (an actor the pool monitors;
 * BW_PID_NONE = nobody: then only checkin returns it). Returns 0 with
 * *lease, the pool's refusal, or bw_call's codes. */
int bw_bulkhead_checkout(bw_bulkhead_t *pool, bw_pid_t borrower, uint64_t timeout_ms,
                         bw_bulkhead_lease_t *lease);

/* --- From any thread or actor -------------------------------------------- */

/* Returns a lease (asynchronous: a message to the pool). A lease that is no
 * longer current (already returned, its worker restarted) is ignored. An
 * actor that knows only the pool's pid sends the lease itself:
 * bw_send(rt, pid, BW_BULKHEAD_CHECKIN, lease, sizeof *lease).
 * Returns 0, BW_EINVAL, BW_ENOPROC (no pool runs), and bw_send's codes. */
int bw_bulkhead_checkin(bw_bulkhead_t *pool, const bw_bulkhead_lease_t *lease);

/* --- From an actor (asynchronous: the reply arrives as a message) --------
 * These take the pool's pid (bw_bulkhead_pid, bw_whereis): see the file
 * comment. */

/* bw_request of a function job; the reply's status is fn's. */
int bw_bulkhead_run_request(bw_ctx_t *ctx, bw_pid_t pool, bw_bulkhead_fn fn, void *arg,
                            uint64_t timeout_ms, uint64_t *ref);

/* bw_request of a checkout with the calling actor as borrower. */
int bw_bulkhead_checkout_request(bw_ctx_t *ctx, bw_pid_t pool, uint64_t timeout_ms,
                                 uint64_t *ref);

/* bw_request of the stats. */
int bw_bulkhead_stats_request(bw_ctx_t *ctx, bw_pid_t pool, uint64_t *ref);

/* Decode replies: return the reply's status (0 with *out filled), or
 * BW_EINVAL if msg is not such a reply. */
int bw_bulkhead_lease_from_reply(const bw_msg_t *reply, bw_bulkhead_lease_t *out);
int bw_bulkhead_stats_from_reply(const bw_msg_t *reply, bw_bulkhead_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
