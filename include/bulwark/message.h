/*
 * bulwark: sending, request/reply and synchronous calls.
 *
 * Ordering: messages from one sender to one receiver arrive in send order.
 * The sender is the calling actor (its pid is msg->from), or BW_PID_NONE
 * from a thread that is not running an actor; a bw_call request comes from
 * a temporary pid that exists for the call, so the reply can reach it.
 */
#ifndef BULWARK_MESSAGE_H
#define BULWARK_MESSAGE_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Message type ranges, all in one place (the bases are in types.h):
 *
 *   [0, BW_MSG_PATTERN_BASE)     yours: any protocol of your own.
 *   [BW_MSG_PATTERN_BASE, BW_MSG_SYSTEM_BASE)
 *                                the library's actors, in blocks of
 *                                BW_MSG_BLOCK_SIZE types (breaker, bulkhead,
 *                                retry, rate limiter, policy, health,
 *                                metrics: BW_MSG_BREAKER_BASE ...):
 *       block + 0x00 .. 0x7F     public: the requests you send, the replies
 *                                and notifications you receive
 *                                (BW_BULKHEAD_RUN, BW_BREAKER_MSG_OPEN,
 *                                BW_HEALTH_MSG_SIGNAL, ...).
 *       block + 0x80 .. 0xFF     internal: between the library's own actors
 *                                and their timers (a bulkhead worker's
 *                                "done" note to its pool, a monitor's tick).
 *       BW_MSG_NODE_BASE block   internal throughout (node/ actors).
 *   [BW_MSG_SYSTEM_BASE, 2^32)   the runtime's (BW_MSG_EXIT, BW_MSG_DOWN, the
 *                                timeouts, BW_MSG_DEAD_LETTER, BW_MSG_EVENT,
 *                                BW_MSG_HUNG): internal too.
 *
 * "Internal" means: not a type of yours, nor a pattern's public protocol.
 * Such messages still become dead letters when they cannot be delivered
 * (the invariant sent = handled + dead-lettered + queued counts them), for
 * example a worker's note to a pool that restarted meanwhile; the dead
 * letter record says so (bw_dead_letter_t.internal) and bw_runtime_stats
 * counts them apart (dead_internal), so a subscriber that watches its own
 * traffic can tell them from its messages.
 */
#define BW_MSG_BLOCK_SIZE 0x100u
#define BW_MSG_BLOCK_INTERNAL 0x80u /* offset in a block where internal types begin */
#define BW_MSG_NODE_BASE (BW_MSG_PATTERN_BASE + 0x0800u)

/* True if type is one of the library's internal types (see above). */
bool bw_msg_type_is_internal(uint32_t type);

/*
 * Sends a copy of len bytes (at most BW_MSG_INLINE_MAX) to pid.
 * Lock-free; no allocation in steady state.
 * Returns 0; BW_EINVAL (NULL rt, NULL data with len > 0, reserved type);
 * BW_ETOOBIG (len too large: use bw_send_move); BW_EFULL (bounded mailbox
 * full, reject policy: nothing was queued); BW_ENOPROC (dead or stale pid:
 * the message was dead-lettered, reason noproc); BW_ENOCONN (pid is on
 * another node that is not connected: dead-lettered, reason noconnection);
 * BW_ESHUTDOWN. A pid of another node (bulwark/node.h) is sent to the same
 * way: the payload bytes are copied into a frame, in order per sender and
 * receiver.
 */
int bw_send(bw_runtime_t *rt, bw_pid_t to, uint32_t type, const void *data,
            size_t len);

/*
 * Sends a pointer payload, moving its ownership to the runtime. The
 * receiver's handler sees it as msg->data; after the handler returns the
 * runtime calls dtor(ptr) (dtor may be NULL) unless the handler took it
 * with bw_msg_take. If the message is dead-lettered, dtor runs then.
 * On BW_EINVAL, BW_EFULL, BW_EREMOTE and BW_ESHUTDOWN the caller keeps
 * ownership; on 0, BW_ENOPROC and BW_ENOCONN the runtime has it. Same codes
 * as bw_send, and BW_EREMOTE: pid is on another node (bulwark/node.h), where
 * a pointer means nothing.
 */
int bw_send_move(bw_runtime_t *rt, bw_pid_t to, uint32_t type, void *ptr,
                 size_t len, void (*dtor)(void *));

/* In a handler: takes ownership of the current message's moved payload
 * (its destructor will not run). Returns NULL if the payload is not moved. */
void *bw_msg_take(bw_ctx_t *ctx, const bw_msg_t *msg);

/*
 * Sends a request from the calling actor. The reply arrives later as a
 * message with BW_MSGF_REPLY, msg->ref == *ref and msg->status the
 * replier's status; if none arrives within timeout_ms (0 = no deadline) a
 * BW_MSG_REQUEST_TIMEOUT with that ref arrives instead, and a reply after
 * that is a dead letter (late_reply). If the target is dead, or exits
 * before answering (with the request queued, while handling it, or keeping
 * it to answer later), the reply has status BW_ENOPROC: the request
 * monitors its target until it is settled. To have the answer run a
 * function instead of reaching the handler: bw_request_then, or bw_then on
 * *ref (bulwark/reply.h).
 * Returns 0, BW_ENOTACTOR, BW_ENOPROC, and bw_send's codes; BW_ELIMIT (a
 * deadline, and the runtime's timers are full: bulwark/timer.h; nothing
 * sent).
 */
int bw_request(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data,
               size_t len, uint64_t timeout_ms, uint64_t *ref);

/*
 * Like bw_request, with a payload moved by pointer (any size), as
 * bw_send_move: the receiver takes it with bw_msg_take, or dtor(ptr) runs
 * after its handler (or when the request is dead-lettered). On 0 and
 * BW_ENOPROC the runtime owns ptr; on every other code the caller keeps it.
 * Returns bw_request's codes and BW_EREMOTE (the target is on another
 * node, where a pointer means nothing).
 */
int bw_request_move(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                    void (*dtor)(void *), uint64_t timeout_ms, uint64_t *ref);

/*
 * Answers a request (msg has BW_MSGF_REQUEST) with status 0 or a negative
 * code, and an optional inline payload. A reply nobody waits for any more is
 * a dead letter (late_reply). To answer later, from another handler call,
 * keep the request as a reply token (bw_reply_defer, bulwark/reply.h).
 * Returns 0, BW_EINVAL (not a request), BW_ETOOBIG, BW_ESHUTDOWN, and
 * BW_ENOPROC when the requester is gone (the reply was dead-lettered).
 */
int bw_reply(bw_ctx_t *ctx, const bw_msg_t *req, int status, uint32_t type,
             const void *data, size_t len);

/*
 * Like bw_reply, with a payload moved by pointer (any size): the requester
 * owns ptr once it has the reply (bw_call: out->ptr and out->dtor; an actor:
 * bw_msg_take). If nobody takes it, the runtime calls dtor(ptr).
 * Returns bw_reply's codes, and BW_EREMOTE when the requester is on another
 * node (a pointer means nothing there); on BW_EINVAL, BW_EREMOTE and
 * BW_ESHUTDOWN the caller keeps ptr.
 */
int bw_reply_move(bw_ctx_t *ctx, const bw_msg_t *req, int status, uint32_t type, void *ptr,
                  size_t len, void (*dtor)(void *));

/* What a synchronous call gives back. */
typedef struct bw_reply {
  int32_t status; /* the replier's status */
  uint32_t type;
  uint32_t len;
  uint8_t data[BW_MSG_INLINE_MAX]; /* an inline payload */
  /* a moved payload (bw_reply_move): the caller owns ptr and frees it with
   * dtor (which may be NULL); NULL if the payload was inline */
  void *ptr;
  void (*dtor)(void *);
} bw_reply_t;

/*
 * Synchronous request from a thread that is not a scheduler thread (main,
 * your own threads, a dedicated-thread actor): sends, then blocks until the
 * reply or the deadline (timeout_ms on the runtime's clock; 0 = none).
 * Returns the replier's status (0 or negative) with *out filled;
 * BW_ETIMEDOUT; BW_ENOPROC (target dead or exited before answering);
 * BW_EWOULDBLOCK (called on a scheduler thread); BW_ETOOBIG (the reply's
 * payload did not fit in out); and bw_send's codes; BW_ELIMIT (as
 * bw_request's).
 */
int bw_call(bw_runtime_t *rt, bw_pid_t to, uint32_t type, const void *data,
            size_t len, uint64_t timeout_ms, bw_reply_t *out);

/*
 * bw_call with a payload moved by pointer (any size). The runtime owns ptr
 * whatever the outcome: the receiver takes it with bw_msg_take, or
 * dtor(ptr) runs (after the receiver's handler, when the request is
 * dead-lettered, or at once when the call fails before sending).
 * Returns bw_call's codes, and BW_EREMOTE (target on another node).
 */
int bw_call_move(bw_runtime_t *rt, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                 void (*dtor)(void *), uint64_t timeout_ms, bw_reply_t *out);

#ifdef __cplusplus
}
#endif
#endif
