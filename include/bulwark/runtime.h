/*
 * bulwark: the runtime: worker threads, clock, lifecycle, statistics.
 */
#ifndef BULWARK_RUNTIME_H
#define BULWARK_RUNTIME_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_runtime_opts {
  /* Scheduler threads; 0 = the number of online CPUs. At most 256. */
  unsigned workers;
  /* Messages an actor handles per turn before others get a turn; 0 = 64. */
  unsigned batch;
  /* Use a manual clock that starts at 0 and only moves with
   * bw_clock_advance: for deterministic tests of time-based behaviour. */
  bool manual_clock;
  /* bw_runtime_stop first sends a (trappable) shutdown exit to the actors
   * spawned from outside an actor with ordered_shutdown (top-level
   * supervisors), and waits up to this long (wall clock) for them to stop
   * their trees before it makes the rest exit; 0 = 5000 ms. */
  uint64_t stop_grace_ms;
  /* This runtime's node number in a cluster (bulwark/node.h), 1..255; every
   * pid it makes carries it, so pids stay valid on other nodes, inside
   * payloads too. 0 (the default) = a plain single-process runtime. */
  unsigned node_id;
  /* Pending timers of the application at most (bulwark/timer.h: cost and
   * what counts); beyond it arming one returns BW_ELIMIT. 0 = 1,048,576
   * (BW_TIMERS_DEFAULT_MAX, about 130 MB); at most BW_TIMERS_MAX. */
  uint32_t max_timers;
  /* The logger (bulwark/log.h): lines below this level are dropped.
   * 0 (BW_LOG_DEFAULT) = the environment's BW_LOG_LEVEL, else
   * BW_LOG_NOTICE (crash, restart and escalation reports show);
   * BW_LOG_OFF = nothing. A value here wins over the environment. */
  int log_level;
  /* BW_LOG_TEXT or BW_LOG_JSON (JSON lines); 0 = the environment's
   * BW_LOG_FORMAT, else text. */
  int log_format;
} bw_runtime_opts_t;

/* Fills opts with the defaults. */
void bw_runtime_opts_init(bw_runtime_opts_t *opts);

/*
 * Creates a runtime and starts its threads. opts may be NULL (defaults).
 * Returns 0, BW_EINVAL (NULL out, workers > 256, max_timers > BW_TIMERS_MAX,
 * log_level or log_format out of range), BW_ENOMEM, BW_ETHREAD.
 */
int bw_runtime_create(const bw_runtime_opts_t *opts, bw_runtime_t **out);

/*
 * Graceful stop: every live actor gets a shutdown exit (first the ones
 * spawned from outside an actor with ordered_shutdown, such as top-level
 * supervisors, then, once they are gone or after stop_grace_ms, all the
 * rest) and runs its terminate callback; messages still queued are
 * dead-lettered with reason
 * "shutdown"; pending timers are cancelled (their messages dead-lettered with
 * reason "shutdown"); then the threads exit. Blocks until done. Afterwards the
 * runtime only answers bw_runtime_stats and calls fail with BW_ESHUTDOWN.
 * While it runs, sends and replies still work (terminate callbacks may
 * send); spawns are refused with BW_ESHUTDOWN. A C handler cannot be
 * preempted: stop waits for running handlers to return (put blocking work on
 * dedicated-thread actors; the watchdog reports handlers that overrun), and
 * says so on stderr if that takes over 10 s. Stop needs no memory: it works
 * after allocations have begun to fail (BW_ENOMEM).
 * Must not be called from inside an actor.
 * Returns 0, BW_EINVAL (NULL), BW_ESHUTDOWN (already stopped),
 * BW_EWOULDBLOCK (called from an actor of this runtime).
 */
int bw_runtime_stop(bw_runtime_t *rt);

/*
 * Stops the runtime if it is running (as bw_runtime_stop), then frees it.
 * NULL is a no-op. Called from inside an actor of rt, or from any thread of
 * rt (a terminate callback, a dedicated actor's thread), it would wait for
 * itself forever and then free the memory it runs on: it prints why on
 * stderr and aborts the process instead. Stop such a runtime from outside.
 */
void bw_runtime_destroy(bw_runtime_t *rt);

/* Number of scheduler threads. */
unsigned bw_runtime_workers(const bw_runtime_t *rt);

/* --- Clock: one clock for all time in a runtime ------------------------ */

/* Monotonic time in nanoseconds (manual clock: the manual time). */
uint64_t bw_now_ns(const bw_runtime_t *rt);
uint64_t bw_now_ms(const bw_runtime_t *rt);

/*
 * Manual clock only: moves time forward by ms and fires every timer that is
 * then due, in due order, before returning (so their messages are queued).
 * Returns 0, BW_EINVAL (NULL, or the runtime has a real clock), BW_ESHUTDOWN.
 */
int bw_clock_advance(bw_runtime_t *rt, uint64_t ms);

/* --- Statistics ---------------------------------------------------------- */

typedef enum bw_dead_reason {
  BW_DL_NOPROC = 0,  /* sent to a dead or stale pid */
  BW_DL_FULL,        /* dropped by a full mailbox with the drop policy */
  BW_DL_SHUTDOWN,    /* still queued (or a pending timer) when the runtime stopped */
  BW_DL_EXITED,      /* still queued when its receiver exited */
  BW_DL_LATE_REPLY,  /* a reply that arrived after its deadline, or whose requester was gone */
  BW_DL_NOCONNECTION, /* for a pid on another node that is not connected (bulwark/node.h) */
  BW_DL_UNDECODABLE, /* from another node, a moved payload this node has no serializer for */
  BW_DL__COUNT
} bw_dead_reason_t;

/* "noproc", "full", "shutdown", "exited", "late_reply", "noconnection",
 * "undecodable". */
const char *bw_dead_reason_name(int reason);

typedef struct bw_runtime_stats {
  /* User messages accepted by the runtime: every send that was queued or
   * dead-lettered (rejected sends, BW_EFULL with the reject policy and
   * argument errors, are not counted). Invariant, once all mailboxes are
   * drained: sent == handled + dead_letters + forwarded. */
  uint64_t sent;
  uint64_t forwarded;     /* user messages handed to another node (bulwark/node.h) */
  uint64_t handled;       /* user messages passed to a handler */
  uint64_t dead_letters;  /* sum of by_reason */
  uint64_t dead_by_reason[BW_DL__COUNT];
  uint64_t dead_internal; /* of dead_letters, the library's internal types (bulwark/message.h) */
  uint64_t rejected;      /* sends refused with BW_EFULL (reject policy) */
  uint64_t spawned;       /* actors whose init succeeded */
  uint64_t exited;        /* actors that exited after a successful init */
  uint64_t crashed;       /* exits with reason crash */
  uint64_t live;          /* actors alive now */
  /* Scheduler utilisation: over an interval, 1 - d(idle_ns) /
   * (d(uptime_ns) * workers). Monotonic time, whatever the runtime's clock;
   * idle = parked (the brief spin before parking counts as busy). */
  uint64_t uptime_ns;     /* since bw_runtime_create */
  uint64_t idle_ns;       /* summed over the scheduler workers */
  uint32_t workers;       /* scheduler workers now (with spares started for hung handlers) */
} bw_runtime_stats_t;

/* Reads the counters (each exact; the set is not an atomic snapshot while
 * actors run). Returns 0 or BW_EINVAL. Works after bw_runtime_stop. */
int bw_runtime_stats(const bw_runtime_t *rt, bw_runtime_stats_t *out);

/* Whether the calling thread may block on rt: false on rt's scheduler
 * threads (its workers and its timer thread), where the blocking calls
 * (bw_call, bw_wait_exit, bw_supervisor_start, the destroy functions that
 * wait for an actor) return BW_EWOULDBLOCK; true anywhere else, including
 * a dedicated-thread actor's own thread. False for a NULL rt. */
bool bw_may_block(const bw_runtime_t *rt);

#ifdef __cplusplus
}
#endif
#endif
