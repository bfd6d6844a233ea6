/*
 * bulwark: inboxes: a pid and a mailbox for a thread that is not an actor
 * (main, your own threads, a dedicated-thread actor's handler), so that it
 * can be told things, not only ask (CAF's scoped_actor).
 *
 *   bw_inbox_t *ib;
 *   bw_inbox_new(rt, NULL, &ib);
 *   bw_spawn(rt, &job, &(struct job_arg){.report_to = bw_inbox_pid(ib)}, NULL, &pid);
 *   uint64_t ref;
 *   bw_inbox_monitor(ib, pid, &ref);           // DOWN if it dies first
 *   const bw_msg_t *m;
 *   if (bw_inbox_receive(ib, 5000, &m) == 0 && m->type == JOB_DONE)
 *     ...;                                      // valid until the next receive
 *   bw_inbox_destroy(ib);
 *
 * Actors send to an inbox's pid as to any actor's (bw_send, bw_send_move,
 * bw_reply to a request it made, bw_link, bw_monitor, bw_exit); the thread
 * takes the messages with bw_inbox_receive, in arrival order (per sender,
 * in send order), or selectively with bw_inbox_receive_match. Exit signals
 * and DOWN notifications arrive as BW_MSG_EXIT and BW_MSG_DOWN messages:
 * an inbox always traps exits (a thread cannot be made to exit), but an
 * untrappable kill closes the inbox (below).
 *
 * Waiting: a receive with a timeout sleeps on a semaphore that the first
 * message to an empty inbox posts (the runtime's own bw_call waiter), never
 * spinning. The timeout is real time (CLOCK_MONOTONIC): the thread is not
 * an actor, and the runtime's clock, manual in tests, does not move it;
 * deadlines of requests made with bw_inbox_request are on the runtime's
 * clock, as every request's is, and arrive as BW_MSG_REQUEST_TIMEOUT.
 *
 * One thread receives at a time (the inbox's consumer end is single); the
 * other calls may come from any thread that is not a scheduler thread, and
 * are serialised with the receive by the inbox's lock (held only while it
 * takes messages, not while it sleeps). On a scheduler thread (in a
 * handler) every call but bw_inbox_pid is refused with BW_EWOULDBLOCK: a
 * handler's turn holds a pin on what it sent to, which closing an inbox
 * waits for, and its lock would then wait for that turn. A dedicated-thread
 * actor may use one.
 *
 * Closing: the inbox's pid exits, as an actor's would (its links get an
 * exit signal and its monitors a DOWN, with the reason; messages still
 * queued, and those receive_match passed over, become dead letters, and
 * requests among them get a BW_ENOPROC reply; later sends are dead letters
 * noproc, BW_ENOPROC), when:
 * - bw_inbox_destroy is called (reason normal);
 * - bw_runtime_stop runs: it closes every inbox of the runtime, waiting for
 *   no thread (reason shutdown); a receive in progress, and every later
 *   call but bw_inbox_pid and bw_inbox_destroy, returns BW_ESHUTDOWN;
 * - bw_exit(rt, pid, BW_REASON_KILL, ...) kills its pid: the inbox closes
 *   with reason killed the next time its thread calls it (a thread cannot
 *   be interrupted), and that call, and every later one, returns
 *   BW_ENOPROC.
 * A closed inbox still needs bw_inbox_destroy. Destroy inboxes before
 * bw_runtime_destroy; it frees those still there (so a forgotten one is
 * not a leak), after which their handles must not be used.
 */
#ifndef BULWARK_INBOX_H
#define BULWARK_INBOX_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_inbox bw_inbox_t;

/* bw_inbox_receive's timeout meaning "wait as long as it takes". */
#define BW_INBOX_FOREVER UINT64_MAX
/* bw_inbox_receive_match's type meaning "any type" (no message has it). */
#define BW_INBOX_ANY_TYPE UINT32_MAX

/*
 * Creates an inbox with a pid of its own, registered under name (copied;
 * NULL: no name) until it closes. Counts as a live actor (bw_runtime_stats
 * .live) while open.
 * Returns 0; BW_EINVAL (NULL rt or out; name "" or over BW_NAME_MAX);
 * BW_EWOULDBLOCK (on a scheduler thread); BW_ESHUTDOWN (the runtime is
 * stopping or stopped); BW_EEXIST (a live actor holds the name); BW_ELIMIT
 * (every pid slot is taken); BW_ENOMEM.
 */
int bw_inbox_new(bw_runtime_t *rt, const char *name, bw_inbox_t **out);

/* Closes the inbox (reason normal, unless it was closed already) and frees
 * it, with the message the last receive returned. NULL is a no-op. From
 * any thread, a handler's included; not while another thread is inside a
 * call on it; not after bw_runtime_destroy (see above). */
void bw_inbox_destroy(bw_inbox_t *ib);

/* Its pid (dead once it is closed). BW_PID_NONE for NULL. Any thread. */
bw_pid_t bw_inbox_pid(const bw_inbox_t *ib);

/*
 * Takes the next message into *out, waiting up to timeout_ms of real time
 * for one (0: only looks; BW_INBOX_FOREVER: no limit). The message is the
 * inbox's: *out is valid until the next receive or receive_match on this
 * inbox, bw_inbox_msg_free or bw_inbox_destroy, whichever comes first; a
 * moved payload's destructor runs then, unless bw_inbox_msg_take took it.
 * It is a bw_msg_t as a handler sees it: a user message, a reply to
 * bw_inbox_request (BW_MSGF_REPLY, its ref; status BW_ENOPROC if the target
 * died first), BW_MSG_REQUEST_TIMEOUT, BW_MSG_EXIT from a link, BW_MSG_DOWN
 * from a monitor. A request (BW_MSGF_REQUEST) is answered with
 * bw_inbox_reply; a copy of *out can answer it later.
 * Returns 0; BW_ETIMEDOUT (nothing arrived in time; with 0, nothing was
 * queued); BW_ESHUTDOWN (closed by bw_runtime_stop: also at once, for a
 * message already queued); BW_ENOPROC (its pid was killed: closed);
 * BW_EINVAL (NULL ib or out; timeout over UINT64_MAX / 2e6 other than
 * BW_INBOX_FOREVER); BW_ESTATE (another thread is receiving on it);
 * BW_EWOULDBLOCK (on a scheduler thread). On every error *out is NULL.
 */
int bw_inbox_receive(bw_inbox_t *ib, uint64_t timeout_ms, const bw_msg_t **out);

/*
 * Like bw_inbox_receive, for the first message with this type (or
 * BW_INBOX_ANY_TYPE) and this ref (or 0: any): a reply to one request, a
 * DOWN of one monitor, one kind of message. Messages it passes over stay
 * queued, in order, for the next receives (Erlang's selective receive):
 * each is looked at once by this call, so the cost is the messages
 * passed over. The timeout counts for the match: other messages arriving
 * do not extend it. Returns bw_inbox_receive's codes.
 */
int bw_inbox_receive_match(bw_inbox_t *ib, uint32_t type, uint64_t ref, uint64_t timeout_ms,
                           const bw_msg_t **out);

/* Frees the message the last receive returned, before the next receive
 * would (a moved payload's destructor runs now). msg must be that message;
 * anything else (NULL, an older one) is ignored. */
void bw_inbox_msg_free(bw_inbox_t *ib, const bw_msg_t *msg);

/* Takes ownership of the moved payload of the message the last receive
 * returned (its destructor will not run; msg->data still points to it).
 * NULL if msg is not that message, its payload is not moved
 * (BW_MSGF_MOVED), or it was taken already (the flag is cleared). */
void *bw_inbox_msg_take(bw_inbox_t *ib, const bw_msg_t *msg);

/*
 * bw_send from the inbox: the receiver sees msg->from = its pid, so it can
 * answer with bw_send. Returns bw_send's codes; BW_EINVAL (NULL ib);
 * BW_ESHUTDOWN or BW_ENOPROC (the inbox is closed, as receive);
 * BW_EWOULDBLOCK (on a scheduler thread).
 */
int bw_inbox_send(bw_inbox_t *ib, bw_pid_t to, uint32_t type, const void *data, size_t len);

/*
 * bw_request from the inbox, without blocking: the reply arrives in the
 * inbox with BW_MSGF_REPLY and *ref (take it with bw_inbox_receive_match
 * on the ref); if none arrives within timeout_ms on the runtime's clock
 * (0: no deadline), a BW_MSG_REQUEST_TIMEOUT with that ref does, and a
 * later reply is a dead letter (late_reply). The target is monitored until
 * then: if it dies before answering, the reply has status BW_ENOPROC.
 * Several may be in flight. Returns bw_request's codes (BW_ENOPROC: the
 * target is dead, nothing will arrive); BW_EINVAL (NULL ib); the closed
 * inbox's code; BW_EWOULDBLOCK (on a scheduler thread).
 */
int bw_inbox_request(bw_inbox_t *ib, bw_pid_t to, uint32_t type, const void *data, size_t len,
                     uint64_t timeout_ms, uint64_t *ref);

/* bw_reply from the inbox to a request it received (req: the received
 * message, or a copy). Returns bw_reply's codes; BW_EINVAL (NULL ib); the
 * closed inbox's code; BW_EWOULDBLOCK (on a scheduler thread). */
int bw_inbox_reply(bw_inbox_t *ib, const bw_msg_t *req, int status, uint32_t type,
                   const void *data, size_t len);

/*
 * Links the inbox and pid (bw_link): when pid exits the inbox gets a
 * BW_MSG_EXIT with its reason (an inbox traps exits), and when the inbox
 * closes pid gets an exit signal with the inbox's reason (normal from
 * bw_inbox_destroy: ignored unless pid traps exits). Returns bw_link's
 * codes (BW_ENOPROC: pid is dead, and a BW_MSG_EXIT noproc follows);
 * BW_EINVAL (NULL ib); the closed inbox's code; BW_EWOULDBLOCK.
 */
int bw_inbox_link(bw_inbox_t *ib, bw_pid_t pid);
/* bw_unlink from the inbox. Returns 0, BW_EINVAL, the closed inbox's
 * code, BW_EWOULDBLOCK. */
int bw_inbox_unlink(bw_inbox_t *ib, bw_pid_t pid);

/*
 * Monitors pid from the inbox (bw_monitor): one BW_MSG_DOWN with *ref and
 * the reason arrives when it exits (at once, reason noproc, if it is dead).
 * Returns 0; BW_EINVAL (NULL ib or ref); BW_ENOMEM; the closed inbox's
 * code; BW_EWOULDBLOCK.
 */
int bw_inbox_monitor(bw_inbox_t *ib, bw_pid_t pid, uint64_t *ref);
/* Removes a monitor: no DOWN for it is received afterwards. Returns 0,
 * BW_EINVAL, BW_ENOTFOUND, the closed inbox's code, BW_EWOULDBLOCK. */
int bw_inbox_demonitor(bw_inbox_t *ib, uint64_t ref);

#ifdef __cplusplus
}
#endif
#endif
