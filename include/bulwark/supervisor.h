/*
 * bulwark: supervisors, declared as C data, with Erlang/OTP's semantics.
 *
 *   static const bw_child_spec_t kids[] = {
 *     {.id = "config", .behaviour = &config_actor},
 *     {.id = "conn", .behaviour = &conn_actor, .shutdown_ms = 2000},
 *     {.id = "agents", .supervisor = &agents_sup},
 *   };
 *   static const bw_sup_spec_t root = {
 *     .name = "root", .strategy = BW_REST_FOR_ONE,
 *     .children = kids, .nchildren = 3,
 *   };
 *   bw_pid_t sup;
 *   bw_sup_error_t err;
 *   int rc = bw_supervisor_start(rt, &root, &sup, &err);
 *
 * A supervisor is an actor that traps exits and links its children. It
 * never blocks a scheduler thread: stopping a child (shutdown signal, wait
 * up to its timeout on the runtime's clock, then kill) and starting a
 * nested supervisor are steps of a queue of jobs it works through, one at a
 * time, between messages. A restart backoff is a timer of the child's own,
 * not a step of that queue: while a child waits out its backoff the
 * supervisor goes on restarting other children, answering the run-time
 * API and stopping when told to. Specs are not copied: they must outlive
 * the tree (static const data, as above).
 *
 * Registered names (bulwark/registry.h): a child spec's .name registers
 * the child, worker or nested supervisor, under that name; the root
 * supervisor is registered under its spec's .name (a nested supervisor's
 * own spec .name is only a label for errors and events, so one spec can
 * serve several children). The name is taken at spawn (a nested
 * supervisor's before its children start), dropped when the actor exits
 * and taken again by the restarted one; a name held by a live actor fails
 * the start with BW_EEXIST (for a restart: a failed restart, retried under
 * the intensity rules).
 */
#ifndef BULWARK_SUPERVISOR_H
#define BULWARK_SUPERVISOR_H

#include "bulwark/actor.h"
#include "bulwark/message.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bw_strategy {
  BW_ONE_FOR_ONE = 0,     /* restart only the child that died */
  BW_ONE_FOR_ALL,         /* stop the others (reverse order), restart all */
  BW_REST_FOR_ONE,        /* stop those started after it (reverse), restart it and them */
  BW_SIMPLE_ONE_FOR_ONE,  /* one template child; children added at run time */
} bw_strategy_t;

typedef enum bw_restart {
  BW_PERMANENT = 0, /* always restarted */
  BW_TRANSIENT,     /* restarted only after an abnormal exit (not normal or shutdown) */
  BW_TEMPORARY,     /* never restarted; removed when it exits */
} bw_restart_t;

typedef enum bw_child_type { BW_WORKER = 0, BW_SUPERVISOR } bw_child_type_t;

/* shutdown_ms values besides a timeout in ms (> 0). */
#define BW_SHUTDOWN_DEFAULT 0          /* 5000 ms for a worker, infinity for a supervisor */
#define BW_SHUTDOWN_BRUTAL_KILL (-1)   /* kill at once (terminate does not run) */
#define BW_SHUTDOWN_INFINITY (-2)      /* wait for the child however long it takes */

/* intensity value meaning "no restart allowed" (0 in OTP). */
#define BW_INTENSITY_NONE (-1)

typedef struct bw_sup_spec bw_sup_spec_t;

/* Most bytes of init argument a remote child's spec can carry. */
#define BW_REMOTE_ARG_MAX 120u
#define BW_REMOTE_NODES_MAX 4

/*
 * A worker started on another node (bulwark/node.h): the behaviour is named
 * (each node exports what others may start there with bw_node_export), the
 * argument is bytes, copied (init gets a pointer to a copy that lives
 * during init only). The supervisor starts it on the first node of nodes
 * that is connected, so a lost node's children come back on the next one
 * (the loss is an exit with reason noconnection, and the restart strategy
 * applies as for any exit). Starting it is a step of the supervisor's job
 * queue, like a nested supervisor's start: a request to that node, answered
 * within timeout_ms (0 = 5000), never a blocked scheduler thread. The start
 * fails with BW_ENOTSUP when no node was started on the supervisor's
 * runtime (bw_node_start), and with BW_ENOCONN when none of nodes is
 * connected.
 */
typedef struct bw_remote_child {
  const char *behaviour;                      /* exported name (required, < 64 bytes) */
  const char *nodes[BW_REMOTE_NODES_MAX];     /* node names in order of preference (>= 1) */
  const void *arg;                            /* init argument bytes, copied */
  size_t arg_len;                             /* <= BW_REMOTE_ARG_MAX */
  uint32_t timeout_ms;
} bw_remote_child_t;

typedef struct bw_child_spec {
  const char *id;                   /* unique among its siblings (required, < 64 bytes) */
  const bw_behaviour_t *behaviour;  /* a worker's behaviour ... */
  void *arg;                        /* ... and its init argument: given to
                                     * init as is, at the start and at every
                                     * restart (not copied: it lives as long
                                     * as the spec) */
  const bw_sup_spec_t *supervisor;  /* or a nested supervisor (then type is BW_SUPERVISOR) */
  const bw_remote_child_t *remote;  /* or a worker on another node (see above) */
  bw_restart_t restart;
  int64_t shutdown_ms;              /* BW_SHUTDOWN_* or a timeout in ms */
  bw_child_type_t type;             /* BW_SUPERVISOR when .supervisor is set */
  /* spawn options of a worker */
  uint32_t mailbox_capacity;
  bw_overflow_t overflow;
  bool dedicated_thread;
  const char *name;                 /* registered name, worker or nested supervisor
                                     * (moves to each new pid; see above) */
  /* Watchdog (beyond OTP): a handler of this worker running longer than
   * hang_limit_ms is reported (event); with hang_is_crash the supervisor
   * also treats the child as crashed: it kills it (effective when the
   * handler returns) and starts a replacement at once. 0 = not watched. */
  uint32_t hang_limit_ms;
  bool hang_is_crash;
} bw_child_spec_t;

/* Restart backoff (beyond OTP): the n-th consecutive restart of a child waits
 * min(max_ms, initial_ms * multiplier^(n-1)), minus up to jitter_pct percent
 * at random. A child that stays up for the supervisor's period starts over.
 * Each waiting child has its own timer (under one_for_all / rest_for_one the
 * failed child's delays the group's restart; a later group restart that
 * covers a child already waiting takes its restart over). While it waits the
 * child is BW_CHILD_RESTARTING: restart_child and delete_child answer
 * BW_ERESTARTING, terminate_child cancels its restart (it becomes stopped;
 * under one_for_all / rest_for_one the others still come back when the
 * timer fires), and a shutdown or escalation cancels every pending one.
 * Restart intensity counts each exit when it happens, not when the delayed
 * restart runs. */
typedef struct bw_backoff {
  uint64_t initial_ms; /* 0 = no backoff: restart at once */
  uint64_t max_ms;     /* 0 = 30000 */
  uint32_t multiplier; /* 0 = 2 */
  uint32_t jitter_pct; /* 0..100 */
} bw_backoff_t;

struct bw_sup_spec {
  const char *name;                 /* for errors and events; registered for the root only */
  bw_strategy_t strategy;
  /* max restarts per period; 0 = 1 (OTP's default); BW_INTENSITY_NONE = 0.
   * A restart counts for period_ms after it happened: one exactly
   * period_ms old no longer does. */
  int32_t intensity;
  uint64_t period_ms;               /* 0 = 5000 (OTP's default) */
  bw_backoff_t backoff;
  const bw_child_spec_t *children;  /* simple_one_for_one: exactly one, the template */
  size_t nchildren;
};

#define BW_SUP_ID_MAX 64u

/* Why a start failed: the code, the child (path of ids from the root, e.g.
 * "agents/agent-2"), its exit reason, and a message naming the problem. */
typedef struct bw_sup_error {
  int code;
  char child[BW_SUP_ID_MAX];
  bw_reason_t reason;
  char message[192];
} bw_sup_error_t;

/*
 * Checks a tree of specs without starting anything: ids present, unique
 * among siblings and < BW_SUP_ID_MAX bytes; a behaviour with a handle, or a
 * nested spec (not both); known strategy, restart and type; shutdown >= -2;
 * intensity >= -1 and <= 1000000; period <= 1 day; simple_one_for_one with
 * exactly one child; backoff jitter <= 100; depth <= 32; a supervisor's
 * name at most BW_NAME_MAX bytes (bulwark/registry.h).
 * Returns 0 or BW_EINVAL with err (optional) naming the child.
 */
int bw_supervisor_validate(const bw_sup_spec_t *spec, bw_sup_error_t *err);

/*
 * Validates the tree, then starts it: children in declaration order, each
 * init finished before the next starts, nested supervisors to any depth.
 * If a child fails to start, those already started are stopped in reverse
 * order and the start fails with that child's id and reason in *err.
 * The root is registered under spec->name when it has one (see above).
 * From any thread that is not a scheduler thread (main, a dedicated-thread
 * actor); blocks until the tree is up or failed.
 * Returns 0; BW_EINVAL (invalid spec); BW_EWOULDBLOCK (scheduler thread);
 * BW_EEXIST (spec->name, or a child's name, is held by a live actor);
 * BW_ESHUTDOWN; or the failing child's code.
 */
int bw_supervisor_start(bw_runtime_t *rt, const bw_sup_spec_t *spec, bw_pid_t *out,
                        bw_sup_error_t *err);

/* --- Run-time API (synchronous calls, like bw_call) ----------------------- */

typedef enum bw_child_state {
  BW_CHILD_RUNNING = 0,
  BW_CHILD_STOPPED,     /* terminated (terminate_child, or a transient that exited normally) */
  BW_CHILD_RESTARTING,  /* waiting for its restart (backoff or a retry) */
} bw_child_state_t;

typedef struct bw_child_info {
  char id[BW_SUP_ID_MAX]; /* "" for simple_one_for_one children */
  bw_pid_t pid;           /* BW_PID_NONE when not running */
  int32_t type;           /* bw_child_type_t */
  int32_t restart;        /* bw_restart_t */
  int32_t state;          /* bw_child_state_t */
  uint32_t restarts;      /* times this child was restarted (its own exits and
                           * its siblings' under one_for_all / rest_for_one) */
} bw_child_info_t;

typedef struct bw_child_counts {
  uint32_t specs, active, supervisors, workers;
} bw_child_counts_t;

/* The run-time API below talks to a supervisor with bw_call (from a thread
 * that is not a scheduler thread: else BW_EWOULDBLOCK). A pid that is not a
 * supervisor's is refused with BW_EINVAL at once; a dead one, BW_ENOPROC.
 * Each call (bw_sup_stop's wait too) has a deadline on the runtime's clock,
 * bw_sup_call_timeout() ms: then it returns BW_ETIMEDOUT. The request is not
 * withdrawn: the supervisor still carries it out when it gets to it (a late
 * answer is a dead letter, late_reply). */

/* Default deadline of a run-time API call: three times a worker's default
 * shutdown timeout, since terminate_child rightly waits for one. */
#define BW_SUP_CALL_TIMEOUT_DEFAULT 15000u
#define BW_SUP_CALL_TIMEOUT_MAX 86400000u /* one day */

/* Sets the deadline of the run-time API calls, for every runtime of the
 * process (0 = BW_SUP_CALL_TIMEOUT_DEFAULT). Returns 0, or BW_EINVAL over
 * BW_SUP_CALL_TIMEOUT_MAX. */
int bw_sup_set_call_timeout(uint64_t ms);
/* The deadline in force, in ms. */
uint64_t bw_sup_call_timeout(void);

/* Fills up to cap entries (in start order); *n = the number of children
 * (may exceed cap). Returns 0, BW_EINVAL, BW_ENOPROC, or bw_call's codes. */
int bw_sup_which_children(bw_runtime_t *rt, bw_pid_t sup, bw_child_info_t *out, size_t cap,
                          size_t *n);
int bw_sup_count_children(bw_runtime_t *rt, bw_pid_t sup, bw_child_counts_t *out);

/* The pid of child id (changes on each restart). BW_ENOTFOUND, BW_ERESTARTING,
 * BW_ESTATE (not running). */
int bw_sup_child_pid(bw_runtime_t *rt, bw_pid_t sup, const char *id, bw_pid_t *out);

/* Adds and starts a child (spec must outlive the supervisor). BW_EALREADY if
 * the id is present (running or not), BW_EINVAL (bad spec), BW_ENOTSUP for
 * simple_one_for_one, or the child's start error. */
int bw_sup_start_child(bw_runtime_t *rt, bw_pid_t sup, const bw_child_spec_t *spec,
                       bw_pid_t *out);

/*
 * simple_one_for_one: starts a child from the template with this init
 * argument. The argument is not copied: the supervisor keeps the pointer
 * and gives it to init again, the same pointer, at every restart of that
 * child. So what it points to must stay valid, and unchanged in whatever
 * init reads, until that child is gone for good: bw_sup_terminate_pid
 * returned for it, or it exited without being restarted (a temporary
 * child, a transient one that exited normally or with shutdown: monitor
 * it to know), or the supervisor has exited. Freeing it in the child's
 * terminate or cleanup is a use after free at the next restart. Per-child
 * memory is best owned by whoever starts and terminates the children.
 * (bw_sup_which_children does not show the argument.)
 * Returns 0 with *out (optional), BW_ENOTSUP for other strategies, the
 * child's start error, and the codes of the run-time API (above).
 */
int bw_sup_start_dynamic(bw_runtime_t *rt, bw_pid_t sup, void *arg, bw_pid_t *out);

/* Stops a child (its shutdown spec applies) and keeps its spec (a temporary
 * child's is deleted). BW_ENOTFOUND. */
int bw_sup_terminate_child(bw_runtime_t *rt, bw_pid_t sup, const char *id);
/* simple_one_for_one: stops a dynamic child by pid. BW_ENOTFOUND. */
int bw_sup_terminate_pid(bw_runtime_t *rt, bw_pid_t sup, bw_pid_t child);

/* Starts a stopped child again. BW_ERUNNING, BW_ERESTARTING, BW_ENOTFOUND,
 * BW_ENOTSUP (simple_one_for_one), or its start error. */
int bw_sup_restart_child(bw_runtime_t *rt, bw_pid_t sup, const char *id, bw_pid_t *out);

/* Deletes a stopped child's spec. BW_ERUNNING, BW_ERESTARTING, BW_ENOTFOUND,
 * BW_ENOTSUP. */
int bw_sup_delete_child(bw_runtime_t *rt, bw_pid_t sup, const char *id);

/* Stops a supervisor and its whole tree (deepest first, each level in
 * reverse start order) and waits until it is gone. Returns 0, BW_ENOPROC,
 * BW_ETIMEDOUT (not gone within the deadline: the stop goes on). */
int bw_sup_stop(bw_runtime_t *rt, bw_pid_t sup);

#ifdef __cplusplus
}
#endif
#endif
