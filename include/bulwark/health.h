/*
 * bulwark: the health monitor.
 *
 * A monitor is a handle (bw_health_t, created by the user, stable for its
 * whole life) and an actor that alone judges health. Every period (a
 * bw_send_interval on the runtime's clock) it checks the registered
 * components:
 *
 *   actor     a component actor answers a BW_HEALTH_MSG_CHECK request
 *             (bw_health_answer); no answer within the timeout = unhealthy,
 *             reason "timeout"; a dead target = unhealthy.
 *   check     a function runs on a dedicated-thread helper actor (one per
 *             check, so a blocking check never holds a scheduler thread nor
 *             another check); past its timeout it is unhealthy ("timeout")
 *             and is not started again until it has returned.
 *   breaker   the breaker's published state (one load): open = degraded,
 *             half-open = degraded, forced open = unhealthy (configurable).
 *   bulkhead  the pool's metrics (a request): queue above a fraction of its
 *             capacity = degraded, new rejections since the last round =
 *             degraded, no answer = unhealthy.
 *
 * and, from the event bus (options): more than restart_limit child restarts
 * within restart_window_ms = degraded ("restarts"); a supervisor escalation
 * = unhealthy for escalation_hold_ms ("escalations"); a watchdog hang report
 * = hang_status for hang_hold_ms ("watchdog").
 *
 * The aggregate is the worst component status. On every component
 * transition subscribers get a signal message (BW_HEALTH_MSG_SIGNAL,
 * bw_health_signal_t): pain when it got worse (breaker opened, bulkhead
 * rejecting, component fell), pleasure when it got better; on every
 * aggregate transition another signal (health fell / recovered) and the
 * event BW_EV_HEALTH_CHANGED (a = from, b = to) on the runtime's bus.
 *
 * Recovery: a component may carry an action that fires when it has stayed
 * unhealthy for action_after_ms (and again every action_after_ms while it
 * stays so): kill its actor so that its supervisor restarts it, restart it
 * through its supervisor, reset (probe) a breaker, or call a function. Each
 * action is a signal (BW_HEALTH_CAUSE_RECOVERY_ACTION) to subscribers.
 *
 * Readers on any thread (an HTTP server's threads) get the latest state as
 * JSON with bw_health_json: the actor publishes an immutable rendered
 * snapshot by an atomic pointer swap; readers copy it. See
 * observe/HEALTH.md.
 */
#ifndef BULWARK_HEALTH_H
#define BULWARK_HEALTH_H

#include "bulwark/types.h"
#include "bulwark/breaker.h"
#include "bulwark/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_health bw_health_t;

typedef enum bw_health_status {
  BW_HEALTH_HEALTHY = 0,
  BW_HEALTH_DEGRADED = 1,
  BW_HEALTH_UNHEALTHY = 2,
} bw_health_status_t;

/* "healthy", "degraded", "unhealthy"; "unknown" otherwise. */
const char *bw_health_status_name(int status);

#define BW_HEALTH_NAME_MAX 32u   /* component and monitor names, with the NUL */
#define BW_HEALTH_REASON_MAX 64u /* reason texts, with the NUL (longer ones are cut) */
#define BW_HEALTH_MAX_COMPONENTS 256u
#define BW_HEALTH_MAX_SUBSCRIBERS 16u
#define BW_HEALTH_MAX_MS (86400000ull) /* any duration: one day */

/* --- The protocol ------------------------------------------------------------ */

enum {
  /* request, monitor -> component actor: "how are you?". Answer with
   * bw_health_answer (or any bw_reply: status 0 without a payload =
   * healthy; a negative status = unhealthy, reason its bw_strerror). */
  BW_HEALTH_MSG_CHECK = BW_MSG_HEALTH_BASE,
  /* the type of bw_health_answer's reply; payload bw_health_answer_t */
  BW_HEALTH_MSG_ANSWER,
  /* message, monitor -> subscribers; payload bw_health_signal_t */
  BW_HEALTH_MSG_SIGNAL,
  /* types from BW_MSG_HEALTH_BASE + 0x80 are the monitor's internal ones */
};

typedef struct bw_health_answer {
  int32_t status; /* bw_health_status_t */
  uint32_t _pad;
  char reason[BW_HEALTH_REASON_MAX];
} bw_health_answer_t;

/* In a component's handler: answers a BW_HEALTH_MSG_CHECK request with a
 * status and a reason (may be NULL). Returns bw_reply's codes; BW_EINVAL
 * for a status out of range. */
int bw_health_answer(bw_ctx_t *ctx, const bw_msg_t *req, int status, const char *reason);

typedef enum bw_health_signal_kind {
  BW_HEALTH_PAIN = 1,     /* something got worse */
  BW_HEALTH_PLEASURE = 2, /* something got better */
  BW_HEALTH_ACTION = 3,   /* the monitor took a recovery action */
} bw_health_signal_kind_t;

typedef enum bw_health_cause {
  BW_HEALTH_CAUSE_HEALTH_FELL = 1,      /* aggregate got worse (component = "") */
  BW_HEALTH_CAUSE_HEALTH_RECOVERED,     /* aggregate got better (component = "") */
  BW_HEALTH_CAUSE_COMPONENT_FELL,       /* an actor, check or supervision entry got worse */
  BW_HEALTH_CAUSE_COMPONENT_RECOVERED,
  BW_HEALTH_CAUSE_BREAKER_OPENED,       /* a breaker component got worse */
  BW_HEALTH_CAUSE_BREAKER_CLOSED,       /* ... and better again */
  BW_HEALTH_CAUSE_BULKHEAD_REJECTING,   /* a bulkhead component got worse */
  BW_HEALTH_CAUSE_BULKHEAD_RECOVERED,
  BW_HEALTH_CAUSE_RECOVERY_ACTION,      /* kind BW_HEALTH_ACTION; reason names the action */
} bw_health_cause_t;

/* "health_fell", "health_recovered", ... */
const char *bw_health_cause_name(int cause);

/* The payload of BW_HEALTH_MSG_SIGNAL. */
typedef struct bw_health_signal {
  int32_t kind;  /* bw_health_signal_kind_t */
  int32_t cause; /* bw_health_cause_t */
  int32_t from, to; /* statuses: the component's, or the aggregate's */
  uint64_t time_ms; /* the runtime's clock */
  char component[BW_HEALTH_NAME_MAX]; /* "" for the aggregate */
  char reason[BW_HEALTH_REASON_MAX];
} bw_health_signal_t;

/* --- Components ------------------------------------------------------------- */

typedef enum bw_health_kind {
  BW_HEALTH_KIND_ACTOR = 1,
  BW_HEALTH_KIND_CHECK,
  BW_HEALTH_KIND_BREAKER,
  BW_HEALTH_KIND_BULKHEAD,
  /* built in, from the event bus (not for bw_health_add) */
  BW_HEALTH_KIND_RESTARTS,
  BW_HEALTH_KIND_ESCALATIONS,
  BW_HEALTH_KIND_WATCHDOG,
} bw_health_kind_t;

/* "actor", "check", "breaker", "bulkhead", "restarts", "escalations",
 * "watchdog"; "unknown" otherwise. */
const char *bw_health_kind_name(int kind);

/*
 * A check function: runs on its own dedicated-thread helper actor, may
 * block. Writes a reason (optional) into reason[cap] and returns a
 * bw_health_status_t, or a negative code (= unhealthy; reason its
 * bw_strerror unless the function wrote one).
 */
typedef int (*bw_health_check_fn)(void *arg, char *reason, size_t cap);

/* A recovery function: runs on the monitor's dedicated-thread recovery
 * helper (so it may block, and may use bw_call and the bw_sup_* API).
 * Returns 0 or a negative code (recorded). */
typedef int (*bw_health_recover_fn)(void *arg, const char *component);

typedef enum bw_health_action {
  BW_HEALTH_ACTION_NONE = 0,
  /* actor components: with sup and child_id set, terminate and restart
   * the child through its supervisor (bw_sup_terminate_child, then
   * bw_sup_restart_child, on the recovery helper); otherwise kill the
   * actor (bw_exit kill) so that its supervisor restarts it. */
  BW_HEALTH_ACTION_RESTART,
  /* breaker components: bw_breaker_reset, so calls probe the target
   * again (the breaker trips again if it still fails). */
  BW_HEALTH_ACTION_RESET_BREAKER,
  /* any component: recover(recover_arg, name) on the recovery helper */
  BW_HEALTH_ACTION_CALL,
} bw_health_action_t;

typedef struct bw_health_component {
  const char *name;      /* required, copied; 1 .. BW_HEALTH_NAME_MAX - 1 bytes, unique */
  bw_health_kind_t kind; /* ACTOR, CHECK, BREAKER or BULKHEAD */

  /* ACTOR and BULKHEAD: the target, by pid or by registered name (looked
   * up each round, so a supervised target that restarts is found again);
   * exactly one of the two. */
  bw_pid_t pid;
  const char *target_name; /* copied; < BW_NAME_MAX bytes */
  /* ACTOR, CHECK, BULKHEAD: how long an answer may take (0 = the
   * monitor's period); at most BW_HEALTH_MAX_MS. */
  uint64_t timeout_ms;

  /* CHECK */
  bw_health_check_fn check;
  void *check_arg;

  /* BREAKER: the handle (must outlive the monitor) and what its states
   * mean. Defaults (bw_health_component_init): open and half-open
   * degraded, forced open unhealthy; closed, disabled and metrics-only
   * are always healthy. */
  bw_breaker_t *breaker;
  int32_t open_status, half_open_status, forced_open_status;

  /* BULKHEAD: degraded when queued > queue_fraction * queue_capacity
   * (and the pool has a queue); default 0.8, in (0, 1]. */
  double queue_fraction;

  /* Recovery (see bw_health_action_t): after action_after_ms (> 0)
   * unhealthy without a break, and again every action_after_ms while it
   * stays unhealthy. */
  bw_health_action_t action;
  uint64_t action_after_ms;
  bw_pid_t sup;              /* RESTART through a supervisor ... */
  const char *child_id;      /* ... this child (copied; < BW_SUP_ID_MAX) */
  bw_health_recover_fn recover; /* CALL */
  void *recover_arg;
} bw_health_component_t;

/* Zeroes c and fills the defaults above for kind and name (by reference). */
void bw_health_component_init(bw_health_component_t *c, bw_health_kind_t kind, const char *name);

/* --- Options and lifecycle ------------------------------------------------------ */

typedef struct bw_health_opts {
  const char *name;        /* for events and JSON (copied; < BW_HEALTH_NAME_MAX). NULL = "health" */
  uint64_t period_ms;      /* between rounds; > 0, default 1000 */
  uint32_t max_components; /* registrable components, 1 .. BW_HEALTH_MAX_COMPONENTS; default 32 */
  /* Restart storms: more than restart_limit BW_EV_CHILD_RESTARTED within
   * restart_window_ms = degraded. restart_limit 0 = not watched; at most
   * 1000. Defaults 5 in 60000 ms. These events, escalations and hang
   * reports are kept by a recorder actor of the handle, so a monitor
   * restarted with its siblings still sees theirs (and counts its own);
   * see "Placement in a tree" in observe/HEALTH.md. */
  uint32_t restart_limit;
  uint64_t restart_window_ms;
  /* BW_EV_SUP_ESCALATED = unhealthy for this long. 0 = not watched.
   * Default 60000. */
  uint64_t escalation_hold_ms;
  /* BW_EV_WATCHDOG_HUNG = hang_status for this long. 0 = not watched.
   * Default 60000, degraded. */
  uint64_t hang_hold_ms;
  int32_t hang_status;
} bw_health_opts_t;

/* Fills opts with the defaults above. */
void bw_health_opts_init(bw_health_opts_t *opts);

/* Checks opts. Returns 0 or BW_EINVAL. */
int bw_health_opts_validate(const bw_health_opts_t *opts);

/*
 * Creates a handle (opts copied; NULL = defaults) without an actor: run it
 * as a supervised child (bw_health_child_spec) or with bw_health_start.
 * Until an actor runs, the published status is unhealthy ("monitor not
 * running"). Returns 0, BW_EINVAL, BW_ENOMEM.
 */
int bw_health_new(bw_runtime_t *rt, const bw_health_opts_t *opts, bw_health_t **out);

/*
 * Fills a child spec (id by reference; worker, permanent) that runs this
 * monitor. The handle must outlive the tree. A restarted monitor takes over
 * the handle: components and subscribers stay; statuses start afresh.
 * Returns 0, BW_EINVAL.
 */
int bw_health_child_spec(bw_health_t *h, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns the monitor for the handle (*out, optional:
 * its pid) / stop shuts it down and waits for it (its helper actors, the
 * recorder among them, belong to the handle: destroy stops them). start
 * returns 0, BW_EALREADY (one runs), BW_EINVAL, and bw_spawn's codes. stop
 * returns 0 (also when none runs), BW_EINVAL, BW_ERUNNING (a supervisor
 * runs it: stop it there), BW_EWOULDBLOCK (on a scheduler thread: nothing
 * is stopped).
 */
int bw_health_start(bw_health_t *h, bw_pid_t *out);
int bw_health_stop(bw_health_t *h);

/*
 * bw_health_stop, then waits for the handle's helper actors to exit (a
 * check still blocked is waited for: the helper's thread reads the handle)
 * and frees the handle. NULL is a no-op. A supervised monitor must be
 * stopped by its supervisor first (else BW_ERUNNING, nothing freed). No
 * reader (bw_health_json) may be running. Not from a scheduler thread
 * (BW_EWOULDBLOCK) unless the runtime is stopped. Returns 0, BW_ERUNNING,
 * BW_EWOULDBLOCK.
 */
int bw_health_destroy(bw_health_t *h);

/* The monitor's pid now, or BW_PID_NONE while none runs. */
bw_pid_t bw_health_pid(const bw_health_t *h);

/*
 * Registers a component (copied; from any thread, before or after start;
 * picked up by the next round). Returns 0; BW_EINVAL (NULL, bad fields:
 * kind, name, no target or both, no check, no breaker, statuses out of
 * range, fraction, durations, an action that does not fit the kind);
 * BW_EEXIST (name taken); BW_ELIMIT (max_components reached).
 */
int bw_health_add(bw_health_t *h, const bw_health_component_t *c);

/* Signals go to pid (an actor) from now on. Idempotent. Returns 0,
 * BW_EINVAL, BW_ELIMIT (BW_HEALTH_MAX_SUBSCRIBERS). A subscriber that
 * exits is dropped. */
int bw_health_subscribe(bw_health_t *h, bw_pid_t pid);
/* Returns 0, BW_EINVAL, BW_ENOTFOUND. */
int bw_health_unsubscribe(bw_health_t *h, bw_pid_t pid);

/* Asks for a round now (between periods). Returns 0, BW_EINVAL, and
 * bw_send's codes (BW_ENOPROC: no monitor runs). */
int bw_health_check_now(bw_health_t *h);

/* From a thread that is not a scheduler thread: waits until the monitor has
 * handled everything sent to it, and every bus event published, before this
 * call. Answers to checks sent meanwhile may still be on their way.
 * Returns 0 and bw_call's codes. */
int bw_health_flush(bw_health_t *h, uint64_t timeout_ms);

/* --- Reading (any thread, lock-free) ------------------------------------------- */

/* The published aggregate status (one load), or BW_EINVAL. */
int bw_health_status(const bw_health_t *h);

/*
 * Copies the latest snapshot as JSON (NUL-terminated) into buf:
 *
 *   {"monitor":"health","running":true,"status":"degraded","since_ms":1000,
 *    "time_ms":1500,"components":[{"name":"db","kind":"actor",
 *    "status":"unhealthy","reason":"timeout","since_ms":1000,"actions":0}]}
 *
 * *len = the JSON's length without the NUL; *status (optional) = its
 * aggregate (for an HTTP answer: 200 when healthy, 503 otherwise). Costs a
 * copy of the snapshot and two atomic adds; never blocks the monitor.
 * Returns 0; BW_EINVAL (NULL h, buf with cap > 0, or len); BW_ETOOBIG
 * (cap <= *len: nothing copied, *len says what is needed).
 */
int bw_health_json(const bw_health_t *h, char *buf, size_t cap, size_t *len, int *status);

/* One component as of the latest snapshot. */
typedef struct bw_health_info {
  char name[BW_HEALTH_NAME_MAX];
  int32_t kind;   /* bw_health_kind_t */
  int32_t status; /* bw_health_status_t */
  uint64_t since_ms;
  uint64_t actions; /* recovery actions taken */
  char reason[BW_HEALTH_REASON_MAX];
} bw_health_info_t;

/* Returns 0, BW_EINVAL, BW_ENOTFOUND (not in the snapshot yet). */
int bw_health_component_info(const bw_health_t *h, const char *name, bw_health_info_t *out);

typedef struct bw_health_stats {
  uint64_t rounds;      /* rounds started (ticks and check_now) */
  uint64_t checks;      /* actor, check and bulkhead checks started */
  uint64_t answers;     /* of those, answered in time */
  uint64_t timeouts;    /* of those, not answered in time */
  uint64_t overruns;    /* rounds a check was skipped: still running past its timeout */
  uint64_t late;        /* check results that came after their deadline (ignored) */
  uint64_t transitions; /* component status changes */
  uint64_t aggregate_transitions;
  uint64_t signals;     /* signal messages sent */
  uint64_t actions;     /* recovery actions taken */
  uint64_t events;      /* bus events handled */
  uint64_t snapshots;   /* snapshots published */
} bw_health_stats_t;

/* Reads the counters (each exact, the set not atomic). Returns 0, BW_EINVAL. */
int bw_health_stats(const bw_health_t *h, bw_health_stats_t *out);

/* The monitor's behaviour, for a child spec by hand: arg = bw_health_t *. */
extern const bw_behaviour_t bw_health_behaviour;

#ifdef __cplusplus
}
#endif
#endif
