/*
 * Continuations (bulwark/reply.h) against replies matched by hand.
 *
 * then_rtt: a client actor makes n requests to a server actor, one at a
 *   time: each with bw_request_then, the next sent from the continuation
 *   that the reply runs. The round trip of a request whose reply the
 *   runtime matches to its continuation, in microseconds.
 * then_rtt_plain: the same requests with bw_request, the reply matched by
 *   hand in the client's handler (its ref against the one kept), the next
 *   sent from there. The yardstick: run both in one invocation
 *   (`bw-bench 'then_rtt*'`) and take the ratio.
 *
 * Both use the same deadline per request (`deadline_ms`, 0 = none: then
 * the figure is the messages and the matching, not the timer heap's
 * mutex). The server echoes the request's number plus one; the client
 * checks every answer, and the runtime's counters must be exact: per
 * request, the request at the server and the reply at the client.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
  TH_REQ = BENCH_MSG_USER, /* client -> server, a request: uint64_t number */
  TH_ANS,                  /* the reply: the number + 1 */
};

typedef struct th_shared {
  uint64_t n, deadline_ms;
  bool plain;
  bench_slot_t slot[2]; /* [0] client: work = answers checked; [1] server */
} th_shared_t;

typedef struct th_client {
  th_shared_t *sh;
  bw_pid_t server;
  uint64_t next;  /* the number of the request in flight */
  uint64_t ref;   /* plain: the ref kept to match */
  bench_waiter_t waiter;
} th_client_t;

typedef struct th_arg {
  th_shared_t *sh;
  bw_pid_t server;
} th_arg_t;

/* --- the server -------------------------------------------------------------- */

static int th_server_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  th_shared_t *sh = *(th_shared_t **)state;
  sh->slot[1].msgs++;
  uint64_t v;
  if (msg->type != TH_REQ || msg->len != sizeof v)
    return BW_EINVAL;
  memcpy(&v, msg->data, sizeof v);
  v++;
  sh->slot[1].work++;
  return bw_reply(ctx, msg, 0, TH_ANS, &v, sizeof v) == 0 ? BW_CONTINUE : BW_EINVAL;
}

static int th_server_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  *(th_shared_t **)state = arg;
  return 0;
}

static const bw_behaviour_t th_server = {
    .name = "bench.then.server",
    .state_size = sizeof(th_shared_t *),
    .init = th_server_init,
    .handle = th_server_handle,
};

/* --- the client -------------------------------------------------------------- */

static int th_on_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                        void *closure);

/* Sends request number s->next (the first, or the one after an answer). */
static int th_send(bw_ctx_t *ctx, th_client_t *s) {
  th_shared_t *sh = s->sh;
  int rc = sh->plain ? bw_request(ctx, s->server, TH_REQ, &s->next, sizeof s->next,
                                  sh->deadline_ms, &s->ref)
                     : bw_request_then(ctx, s->server, TH_REQ, &s->next, sizeof s->next,
                                       sh->deadline_ms, th_on_answer, NULL, NULL, NULL);
  if (rc != 0)
    bench_waiter_fail(&s->waiter, ctx, "request %" PRIu64 ": %s", s->next, bw_strerror(rc));
  return BW_CONTINUE;
}

/* The answer to request s->next, however it was found. */
static int th_answer(bw_ctx_t *ctx, th_client_t *s, const bw_msg_t *reply, int status) {
  uint64_t v = 0;
  if (reply != NULL && reply->len == sizeof v)
    memcpy(&v, reply->data, sizeof v);
  if (status != 0 || v != s->next + 1) {
    bench_waiter_fail(&s->waiter, ctx, "answer to %" PRIu64 ": status %d, value %" PRIu64,
                      s->next, status, v);
    return BW_CONTINUE;
  }
  s->sh->slot[0].work++;
  if (++s->next > s->sh->n)
    return bench_waiter_ok(&s->waiter, ctx, bench_now_ns()) == 0 ? BW_CONTINUE : BW_EINVAL;
  return th_send(ctx, s);
}

static int th_on_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                        void *closure) {
  (void)closure;
  th_client_t *s = state;
  s->sh->slot[0].msgs++; /* a reply handled, as the handler counts them */
  return th_answer(ctx, s, reply, status);
}

static int th_client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  th_client_t *s = state;
  s->sh->slot[0].msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    s->next = 1;
    return th_send(ctx, s);
  }
  /* plain: match the reply by hand */
  if (!(msg->flags & BW_MSGF_REPLY) || msg->ref != s->ref) {
    bench_waiter_fail(&s->waiter, ctx, "unexpected message type %u", msg->type);
    return BW_CONTINUE;
  }
  s->ref = 0;
  return th_answer(ctx, s, msg, msg->status);
}

static int th_client_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  th_client_t *s = state;
  const th_arg_t *a = arg;
  s->sh = a->sh;
  s->server = a->server;
  return 0;
}

static const bw_behaviour_t th_client_b = {
    .name = "bench.then.client",
    .state_size = sizeof(th_client_t),
    .init = th_client_init,
    .handle = th_client_handle,
};

/* --- the run ----------------------------------------------------------------- */

static int th_run(bench_run_t *r, bool plain) {
  th_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.deadline_ms = bench_param(r, "deadline_ms");
  sh.plain = plain;
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  th_arg_t a = {&sh, BW_PID_NONE};
  bw_pid_t client = BW_PID_NONE;
  int rc = bw_spawn(rt, &th_server, &sh, NULL, &a.server);
  if (rc == 0)
    rc = bw_spawn(rt, &th_client_b, &a, NULL, &client);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  bench_done_t done;
  int go = bench_go(r, rt, client, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;
  if (sh.slot[0].work != sh.n || sh.slot[1].work != sh.n)
    return bench_fail(r, "answers checked %" PRIu64 ", requests served %" PRIu64
                         "; expected %" PRIu64 " each",
                      sh.slot[0].work, sh.slot[1].work, sh.n);
  if (bench_check_stats(r, &st, sh.slot[0].msgs + sh.slot[1].msgs, 2) != 0)
    return -1;
  if (bench_rate(r, &done, sh.n) != 0)
    return -1;
  r->value = r->seconds * 1e6 / (double)sh.n; /* us per round trip */
  return 0;
}

static int then_run(bench_run_t *r) { return th_run(r, false); }
static int plain_run(bench_run_t *r) { return th_run(r, true); }

const bench_t bench_then_rtt = {
    .name = "then_rtt",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "request/reply round trip, the reply run as a continuation (bw_request_then)",
    .params = {{"n", 1000000, 100000, 1, UINT64_C(1) << 40, "round trips"},
               {"deadline_ms", 0, 0, 0, 86400000, "each request's deadline (0 = none)"}},
    .run = then_run,
};

const bench_t bench_then_rtt_plain = {
    .name = "then_rtt_plain",
    .group = "runtime",
    .unit = "us",
    .higher_is_better = false,
    .summary = "the same round trip with bw_request, the reply matched by hand: then_rtt's yardstick",
    .params = {{"n", 1000000, 100000, 1, UINT64_C(1) << 40, "round trips"},
               {"deadline_ms", 0, 0, 0, 86400000, "each request's deadline (0 = none)"}},
    .run = plain_run,
};
