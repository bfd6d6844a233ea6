/*
 * bulwark: actors: behaviours, spawn, exits, links, monitors.
 */
#ifndef BULWARK_ACTOR_H
#define BULWARK_ACTOR_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a handle callback returns. */
enum {
  BW_CONTINUE = 0, /* keep going */
  BW_STOP = 1,     /* exit with reason normal */
  /* any negative BW_E code: crash with that code */
};

/*
 * A behaviour: the callbacks of an actor. Usually a static const.
 * The runtime owns state_size bytes of zeroed, 16-byte aligned state from
 * spawn until terminate returns.
 */
typedef struct bw_behaviour {
  const char *name;
  size_t state_size;
  /* Optional. Runs before spawn returns. Returns 0, or a negative code:
   * then spawn fails with that code and terminate is not called.
   * May call bw_fail. */
  int (*init)(bw_ctx_t *ctx, void *state, void *arg);
  /* Required. One call per message. Returns BW_CONTINUE, BW_STOP, or a
   * negative code (crash). May call bw_fail. */
  int (*handle)(bw_ctx_t *ctx, void *state, const bw_msg_t *msg);
  /* Optional. Runs once when the actor exits, with the reason: after a
   * crash, a stop, a shutdown; not after an untrappable kill, nor when init
   * failed. */
  void (*terminate)(bw_ctx_t *ctx, void *state, const bw_reason_t *reason);
  /* Optional. Runs last, whenever init ran, however the actor ends: after
   * terminate, and also after an untrappable kill or a failed init, where
   * terminate does not run. For releasing what the state owns (memory,
   * descriptors) only: no ctx, so no messages. */
  void (*cleanup)(void *state);
  /* Never muted by back-pressure, whoever spawns it (see bw_mailbox_depth).
   * For actors others depend on, whose progress must not wait on the
   * actors they send to: every supervisor and resilience or observability
   * actor of the library has it. Here rather than only in bw_spawn_opts_t
   * so that it holds however the actor is started (from a child spec, at
   * each restart). */
  bool never_muted;
} bw_behaviour_t;

/* What a full bounded mailbox does with a new message. */
typedef enum bw_overflow {
  BW_OVERFLOW_REJECT = 0, /* the send fails with BW_EFULL; the sender keeps the message */
  BW_OVERFLOW_DROP = 1,   /* the send succeeds; the message goes to dead letters ("full") */
} bw_overflow_t;

typedef struct bw_spawn_opts {
  /* Mailbox capacity in messages; 0 = unbounded (the default, which never
   * loses a message). */
  uint32_t mailbox_capacity;
  bw_overflow_t overflow;
  /* Run on a thread of its own, for handlers that block (I/O, sleeps,
   * foreign calls), so they never hold up the schedulers. */
  bool dedicated_thread;
  /* Register under this name (copied). Spawn fails with BW_EEXIST if taken. */
  const char *name;
  /* Link the new actor to the calling actor (spawn_link). Only from inside
   * an actor; otherwise BW_ENOTACTOR. */
  bool link;
  /* Start trapping exits before init runs. */
  bool trap_exit;
  /* At bw_runtime_stop, if spawned from outside an actor: receive a
   * trappable shutdown exit first and up to stop_grace_ms to exit (for
   * actors that stop a subtree in order, such as supervisors), before the
   * remaining actors are made to exit. */
  bool ordered_shutdown;
  /* Hung-actor watchdog: if one handler call runs longer than this (on the
   * runtime's clock), the runtime sends BW_MSG_HUNG to hang_report_to (a
   * supervisor then publishes the BW_EV_WATCHDOG_HUNG event with the child's
   * id), or, with nobody to tell, publishes that event itself; and when the
   * handler holds a scheduler thread it starts a spare one so other actors
   * keep running. Once per handler call. 0 = not watched (no cost). */
  uint32_t hang_limit_ms;
  bw_pid_t hang_report_to;
  /* Optional out: filled with the reason when init fails. */
  bw_reason_t *init_error;
  /* Never mute this actor (back-pressure; see bw_mailbox_depth), as the
   * behaviour's never_muted does for every actor of a behaviour. */
  bool never_muted;
} bw_spawn_opts_t;

/* Fills opts with the defaults. */
void bw_spawn_opts_init(bw_spawn_opts_t *opts);

/*
 * Spawns an actor and runs its init before returning; then *out (optional)
 * holds its pid. opts may be NULL. From an actor or any thread.
 * Returns 0; BW_EINVAL (NULL rt or behaviour, no handle callback, bad
 * options); BW_ENOMEM; BW_ETHREAD; BW_EEXIST (name taken); BW_ESHUTDOWN;
 * BW_ENOTACTOR (link from outside an actor); BW_ELIMIT (4,194,304 actors
 * of this runtime are live: every pid slot is taken); or init's negative
 * code.
 */
int bw_spawn(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg,
             const bw_spawn_opts_t *opts, bw_pid_t *out);

/* --- Inside callbacks ---------------------------------------------------- */

bw_pid_t bw_self(const bw_ctx_t *ctx);
bw_runtime_t *bw_ctx_runtime(const bw_ctx_t *ctx);
const char *bw_ctx_name(const bw_ctx_t *ctx); /* the behaviour's name */

/*
 * The actor's parent: the actor responsible for it, the one its exit
 * reaches through a link (OTP's $parent, the head of $ancestors).
 * - A supervisor's child, however started (a child spec of the tree, a
 *   bw_sup_start_child spec, a simple_one_for_one child of
 *   bw_sup_start_dynamic), and every restart of it: the supervisor that
 *   started it. A nested supervisor's parent is the supervisor above it,
 *   and its children's parent is the nested supervisor (so a child of a
 *   restarted nested supervisor sees that supervisor's new pid).
 * - An actor spawned from inside an actor with bw_spawn_opts_t.link: the
 *   spawning actor.
 * - BW_PID_NONE for the rest: spawned from a thread that is not an actor
 *   (main, your threads; so the root supervisor of bw_supervisor_start),
 *   spawned by an actor without link (nothing ties their lives, so neither
 *   answers for the other; recording it would cost every plain spawn an
 *   allocation), a remote child on its own node (its node starts it and
 *   links it to the supervisor afterwards); a NULL ctx.
 * Fixed at spawn, before init (init may ask): a parent that has exited
 * since is still named, by its dead pid. From the actor's own callbacks.
 */
bw_pid_t bw_parent(const bw_ctx_t *ctx);

/*
 * The actor's id in its supervision tree: its child spec's id ("conn");
 * for a simple_one_for_one child, the template's id, the same for every
 * dynamic child of that supervisor (tell them apart by their argument).
 * The same after a restart. NULL outside a tree: an actor that no
 * supervisor started (bw_spawn with or without link, the root supervisor,
 * a remote child on its own node), or a NULL ctx. The string is the
 * spec's (specs outlive their tree), valid for the actor's life. From the
 * actor's own callbacks, init included.
 */
const char *bw_child_id(const bw_ctx_t *ctx);

/*
 * Crashes the calling actor: unwinds out of the running init or handle
 * callback (like a panic: nothing between here and there is cleaned up),
 * and the actor exits with reason crash, the code and the formatted text.
 * code should be a negative BW_E code or a user code. Must be called from
 * the callback's own thread with its own ctx; otherwise the process aborts
 * with a message (a programming error, like a failed assert).
 */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
void bw_fail(bw_ctx_t *ctx, int code, const char *fmt, ...);

/*
 * Exits the calling actor with this reason once the running callback
 * returns (terminate runs with it). For a reason other than normal; the
 * handler's own return value is then ignored. Returns 0, BW_EINVAL.
 */
int bw_exit_self(bw_ctx_t *ctx, int kind, int code, const char *text);

/* Turn exit signals into BW_MSG_EXIT messages (true) or not (false). */
void bw_trap_exit(bw_ctx_t *ctx, bool on);

/*
 * Receive timeout: if no message arrives for ms, the handler gets one
 * BW_MSG_TIMEOUT; the next message re-arms it. 0 turns it off.
 * Returns 0, BW_EINVAL, BW_ENOMEM; BW_ELIMIT (the runtime's max_timers
 * timers are pending: bulwark/timer.h): then the actor has no receive
 * timeout (a previous one is cancelled too). Once set, its re-arming is
 * never refused.
 */
int bw_set_receive_timeout(bw_ctx_t *ctx, uint64_t ms);

/* --- Exit signals, links, monitors (Erlang's semantics) ------------------ */

/*
 * Sends an exit signal to pid, from the calling actor (or from no one, from
 * a non-actor thread). With kind BW_REASON_KILL the target dies with reason
 * killed and cannot trap it. Otherwise: a target that traps exits gets a
 * BW_MSG_EXIT message; a target that does not dies with the same reason,
 * unless the reason is normal (ignored). code and text (may be NULL) go into
 * the reason. Returns 0, BW_EINVAL, BW_ENOPROC (no such actor), BW_ESHUTDOWN.
 * A kill needs no memory, so 0 always means the target dies; any other
 * signal carries its reason in a message and may fail with BW_ENOMEM.
 */
int bw_exit(bw_runtime_t *rt, bw_pid_t pid, int kind, int code, const char *text);

/*
 * Links the calling actor and pid: when either exits, the other gets an
 * exit signal with its reason; one that does not trap exits then exits with
 * that reason too, unless it is normal (so shutdown and crashes propagate,
 * as in Erlang). Idempotent.
 * Returns 0; BW_ENOTACTOR; BW_EINVAL (self or NULL); BW_ENOPROC if pid is dead
 * (then, if the caller traps exits, it also gets BW_MSG_EXIT with reason
 * noproc).
 */
int bw_link(bw_ctx_t *ctx, bw_pid_t pid);

/* Removes a link. Returns 0, BW_ENOTACTOR, BW_EINVAL. */
int bw_unlink(bw_ctx_t *ctx, bw_pid_t pid);

/*
 * Monitors pid: when it exits the caller gets one BW_MSG_DOWN with the
 * reason (at once, with reason noproc, if pid is already dead).
 * *ref identifies the monitor. Returns 0, BW_ENOTACTOR, BW_EINVAL.
 */
int bw_monitor(bw_ctx_t *ctx, bw_pid_t pid, uint64_t *ref);

/* Removes a monitor; no DOWN arrives for it afterwards.
 * Returns 0, BW_ENOTACTOR, BW_ENOTFOUND. */
int bw_demonitor(bw_ctx_t *ctx, uint64_t ref);

/*
 * From a thread that is not a scheduler thread: waits until pid has exited
 * (at once if it is already gone, with reason noproc), at most timeout_ms on
 * the runtime's clock (0 = no limit). *reason (optional) gets the exit reason.
 * Returns 0, BW_ETIMEDOUT, BW_EINVAL, BW_EWOULDBLOCK, BW_ESHUTDOWN;
 * BW_ELIMIT (a timeout, and the runtime's timers are full: bulwark/timer.h).
 */
int bw_wait_exit(bw_runtime_t *rt, bw_pid_t pid, uint64_t timeout_ms, bw_reason_t *reason);

/* True if pid names a live actor of this runtime (false for a pid of
 * another runtime, live or destroyed). */
bool bw_is_alive(const bw_runtime_t *rt, bw_pid_t pid);

/*
 * How many messages wait in pid's mailbox (user messages and signals),
 * as of the end of its last turn: a snapshot for monitoring, never exact
 * while it runs. From any thread. Returns 0, BW_EINVAL (NULL rt or out),
 * BW_ENOPROC (dead or stale pid).
 *
 * Back-pressure: an actor found behind on messages from others (32 batches
 * or more of them still queued after a turn; 2,048 by default) is
 * "overloaded". What an actor queued for itself does not count: a long
 * backlog of its own work makes it busy, not overloaded. An actor that
 * sends a plain user message (bw_send, bw_send_move, bw_request) to an
 * overloaded actor is muted at the end of the handler call that sent: it
 * is not run again, although it stays alive and its mailbox keeps filling,
 * until the overloaded actor is down to 8 batches or exits (or it is
 * killed, or sent an exit it does not trap: that takes effect at once).
 * Sends themselves never block or fail because of it.
 * Never muted:
 * - for exit signals, links and monitors, replies (bw_reply), timer
 *   messages, or the runtime's own message types;
 * - an actor whose behaviour or spawn options set never_muted: every
 *   supervisor, breaker, bulkhead (its pool and workers), retry and policy
 *   executor, health monitor and metrics reporter of the library; set it
 *   for your own actors that others depend on, whose timers must fire on
 *   time (a muted actor's messages, timer messages included, wait until it
 *   is unmuted);
 * - senders that are not actors (other threads), and an actor that is
 *   itself overloaded (so two actors flooding each other cannot both wait).
 * Bounded mailboxes remain the tool for a hard limit.
 */
int bw_mailbox_depth(bw_runtime_t *rt, bw_pid_t pid, uint32_t *out);

#ifdef __cplusplus
}
#endif
#endif
