/*
 * bulwark: what comes back from a request, without plumbing.
 *
 * Continuations (CAF's request(...).then(...)): an actor sends a request
 * and names the function to run when it is settled, instead of matching
 * reply refs in its handler:
 *
 *   static int on_sum(bw_ctx_t *ctx, void *state, const bw_msg_t *reply,
 *                     int status, void *closure) {
 *     if (status != 0)                     // BW_ETIMEDOUT, BW_ENOPROC, the replier's code
 *       return BW_CONTINUE;
 *     ... reply->data, reply->len ...       // reply != NULL when status came from a replier
 *     return BW_CONTINUE;                   // or BW_STOP, or a negative code (a crash)
 *   }
 *   ...
 *   bw_request_then(ctx, adder, T_SUM, &v, sizeof v, 1000, on_sum, NULL, NULL, NULL);
 *
 * Deferred replies (gen_server's noreply, then gen_server:reply(From, ...)):
 * a handler keeps a request to answer later as a reply token, a small value
 * it may copy anywhere in its state; the token answers once, and one still
 * unanswered when the actor exits is answered BW_ENOREPLY by the runtime:
 *
 *   bw_reply_token_t tok;
 *   bw_reply_defer(ctx, msg, &tok);         // in the request's handler
 *   ...                                     // later, in any handler of this actor:
 *   bw_reply_token(ctx, &tok, 0, T_DONE, &result, sizeof result);
 */
#ifndef BULWARK_REPLY_H
#define BULWARK_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- Continuations ---------------------------------------------------------- */

/*
 * A continuation. It runs once, in the actor that made the request, on
 * that actor's thread in one of its turns, with its state, as a handler
 * does (one message at a time: never beside the handler or another
 * continuation), when the request is settled:
 *
 *   status                      reply
 *   the replier's (0 or < 0)    the reply (type, data, len, from; a moved
 *                               payload may be taken with bw_msg_take)
 *   BW_ETIMEDOUT                NULL: the deadline passed first
 *   BW_ENOPROC                  NULL: the callee was dead, or exited (or
 *                               crashed) without answering
 *   BW_ENOREPLY                 NULL: the callee exited holding the request
 *                               deferred (bw_reply_defer, below)
 *
 * reply is NULL exactly when there is nothing to read: the deadline, or
 * the callee's exit, however the runtime learnt of it (its DOWN, or the
 * answer its exit path gives a request it held). A reply after
 * the deadline is a dead letter "late_reply", as for bw_request: it is
 * counted, never delivered, and the continuation has run already.
 *
 * Returns what a handler returns: BW_CONTINUE, BW_STOP (the actor exits,
 * reason normal), or a negative code (a crash with that code); bw_fail
 * works in it as in a handler. closure is the pointer given with it.
 */
typedef int (*bw_then_fn)(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                          void *closure);

/*
 * Sends a request, as bw_request (same deadline, the same monitor on the
 * target), and records fn to run when it is settled: the reply (or the
 * deadline, or the callee's death) goes to fn, not to the handler.
 * closure_free (may be NULL) runs on closure once, after fn returns (or
 * unwinds with bw_fail); or, if the actor exits with the request still
 * pending, at its exit, after terminate and cleanup, and fn never runs:
 * so closure_free must only free, and must not touch the actor's state.
 * *ref (ref may be NULL) is the request's ref, for bw_await.
 *
 * Cost: what bw_request costs, and an entry in a per-actor table of
 * continuations that grows by doubling and is reused: no allocation per
 * request once it has grown to the number in flight.
 *
 * Returns 0; BW_EINVAL (NULL fn); BW_ENOMEM (the table could not grow:
 * nothing sent); and bw_request's codes (BW_ENOTACTOR, BW_ENOPROC for a
 * dead target, BW_EFULL, BW_ETOOBIG, BW_ESHUTDOWN, BW_ELIMIT, ...). On any
 * code but 0, fn and closure_free are never called: the caller keeps
 * closure.
 */
int bw_request_then(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data, size_t len,
                    uint64_t timeout_ms, bw_then_fn fn, void *closure,
                    void (*closure_free)(void *), uint64_t *ref);

/*
 * bw_request_then with a payload moved by pointer (any size), as
 * bw_request_move: on 0 and BW_ENOPROC the runtime owns ptr, on every
 * other code the caller keeps it. Returns bw_request_then's codes and
 * BW_EREMOTE (the target is on another node, where a pointer means
 * nothing).
 */
int bw_request_then_move(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                         void (*dtor)(void *), uint64_t timeout_ms, bw_then_fn fn,
                         void *closure, void (*closure_free)(void *), uint64_t *ref);

/*
 * Attaches fn to a request this actor made and whose answer it has not
 * yet handled, by its ref: for requests made by another function (the
 * HTTP client's bw_http_request, a pattern's request helper) or with
 * bw_request. From then on the request is settled as by bw_request_then.
 * In the same handler call as the request, nothing can settle it before
 * fn is attached (the answer is handled in a later call).
 *
 *   bw_http_request(ctx, client, q, 5000, &ref);
 *   bw_then(ctx, ref, on_response, p, free);
 *
 * Returns 0; BW_ENOTACTOR (not from the running actor); BW_EINVAL (NULL
 * fn); BW_ENOTFOUND (ref is not a request of this actor that is still
 * pending: never made, already answered, or 0); BW_ESTATE (ref has a
 * continuation already); BW_ENOMEM. On failure the caller keeps closure.
 */
int bw_then(bw_ctx_t *ctx, uint64_t ref, bw_then_fn fn, void *closure,
            void (*closure_free)(void *));

/*
 * Suspends the actor's other work until the continuation of ref has run:
 * messages that arrive meanwhile are held, in their order, and handled
 * after it (then before anything that arrives later). Nothing blocks: the
 * actor's turns end as usual (a scheduler thread goes on with other
 * actors), only its dispatch waits. What is not held: ref's own answer,
 * deadline and DOWN; link and monitor bookkeeping, which never reaches a
 * handler; and exits that kill (bw_exit with BW_REASON_KILL, a runtime
 * stop, an exit signal it does not trap), which take effect at once (an
 * exit signal it traps is a message, held like the others). Held
 * messages stay counted in bw_mailbox_depth and against a bounded
 * mailbox's capacity until they are handled; at the actor's exit they
 * become dead letters as queued messages do.
 *
 * One await at a time. A request with no deadline to an actor that never
 * answers and never exits holds the actor's messages for good; one to the
 * actor itself can only time out: give it a deadline.
 *
 * Returns 0; BW_ENOTACTOR; BW_ENOTFOUND (ref has no pending continuation
 * of this actor); BW_ESTATE (an await is already in progress).
 */
int bw_await(bw_ctx_t *ctx, uint64_t ref);

/*
 * bw_request_then and bw_await in one call: the await form, where the
 * actor handles nothing else until fn has run. Returns bw_request_then's
 * codes, and BW_ESTATE (an await is already in progress: nothing sent).
 */
int bw_request_await(bw_ctx_t *ctx, bw_pid_t to, uint32_t type, const void *data, size_t len,
                     uint64_t timeout_ms, bw_then_fn fn, void *closure,
                     void (*closure_free)(void *), uint64_t *ref);

/* --- Deferred replies --------------------------------------------------------- */

/* A reply token: a request kept to answer later. A plain value (copy it
 * into the state, an array, a closure); the runtime keeps its own record
 * of the live ones, so every copy answers at most once in all. */
typedef struct bw_reply_token {
  bw_pid_t to;     /* the requester (the request's msg->from) */
  uint64_t ref;    /* the request's ref */
  bw_pid_t owner;  /* the actor that deferred it: only it may answer */
  uint32_t flags;  /* BW_REPLY_TOKEN_ANSWERED once answered through this copy */
  uint32_t reserved;
} bw_reply_token_t;

#define BW_REPLY_TOKEN_ANSWERED 1u

/*
 * In the handler of a request (req is the message being handled, with
 * BW_MSGF_REQUEST): keeps it to answer later with bw_reply_token. The
 * handler may then return (even BW_STOP) without answering; the runtime
 * does not answer it for the handler any more. If the actor exits (a stop,
 * a crash, a kill, a runtime stop) with the token unanswered, whether it
 * is held or was lost, the runtime answers the requester with BW_ENOREPLY
 * from the exit path, before its links and monitors are told (a bw_call
 * returns BW_ENOREPLY; a bw_request's reply has that status).
 *
 * Answering the request the old way, bw_reply on a copy of it, from this
 * actor, also spends the token (the exit does not answer it again).
 *
 * Cost: an entry in a per-actor table that grows by doubling and is
 * reused (no allocation per request once grown).
 *
 * Returns 0 with *out filled; BW_ENOTACTOR (not from the running actor);
 * BW_EINVAL (NULL req or out, req not a request, or not the message this
 * handler call was given); BW_ESTATE (deferred already); BW_EREPLIED (the
 * handler answered it already); BW_ENOMEM.
 */
int bw_reply_defer(bw_ctx_t *ctx, const bw_msg_t *req, bw_reply_token_t *out);

/*
 * Answers a deferred request once, as bw_reply would have (status 0 or a
 * negative code, an optional inline payload), from any handler or
 * continuation of the actor that deferred it, and marks *t answered.
 * Returns 0; BW_ENOTACTOR; BW_EINVAL (NULL t, a token of another actor,
 * status > 0, a reserved type, NULL data with len > 0: the token stays
 * live); BW_ETOOBIG (len > BW_MSG_INLINE_MAX: stays live); BW_EREPLIED
 * (answered already, through this copy or another); BW_ENOPROC (the
 * requester is gone: the answer is a dead letter "late_reply" and the
 * token is spent); BW_ESHUTDOWN (after the runtime stopped: unreachable
 * from a live actor, as bw_reply's; during a stop, terminate can still
 * answer); BW_ENOMEM (stays live).
 */
int bw_reply_token(bw_ctx_t *ctx, bw_reply_token_t *t, int status, uint32_t type,
                   const void *data, size_t len);

/*
 * bw_reply_token with a payload moved by pointer (any size), as
 * bw_reply_move: the requester owns ptr once it has the answer; if nobody
 * takes it, the runtime calls dtor(ptr). Returns bw_reply_token's codes
 * (its payload size limit is BW_EINVAL, as bw_reply_move's) and BW_EREMOTE
 * (the requester is on another node); on every code but 0 and BW_ENOPROC
 * the caller keeps ptr.
 */
int bw_reply_token_move(bw_ctx_t *ctx, bw_reply_token_t *t, int status, uint32_t type,
                        void *ptr, size_t len, void (*dtor)(void *));

#ifdef __cplusplus
}
#endif
#endif
