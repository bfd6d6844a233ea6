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
 *   (`bw-bench 'then_*'`) and take the ratio.
 * then_ratio: the two in one run, in alternating blocks of `block` round
 *   trips (plain, then continuations); each pair of blocks gives the ratio
 *   of their spans, and the figure is the median of those ratios, so a
 *   noisy stretch of the shared machine moves one pair, not the figure
 *   (the two spans of a pair are adjacent). The target is 1.2.
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
#include <stdlib.h>
#include <string.h>

enum {
  TH_REQ = BENCH_MSG_USER, /* client -> server, a request: uint64_t number */
  TH_ANS,                  /* the reply: the number + 1 */
};

enum { TH_THEN, TH_PLAIN, TH_ALTERNATE };

typedef struct th_shared {
  uint64_t n, deadline_ms;
  int mode;
  uint64_t block;   /* TH_ALTERNATE: round trips per block */
  double *ratio;    /* TH_ALTERNATE: one per pair of blocks */
  uint64_t pairs;
  bench_slot_t slot[2]; /* [0] client: work = answers checked; [1] server */
} th_shared_t;

typedef struct th_client {
  th_shared_t *sh;
  bw_pid_t server;
  uint64_t next;  /* the number of the request in flight */
  uint64_t ref;   /* plain: the ref kept to match */
  bool plain;     /* this request is matched by hand */
  uint64_t in_block, block_t0, plain_ns, pair; /* TH_ALTERNATE */
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
  int rc = s->plain ? bw_request(ctx, s->server, TH_REQ, &s->next, sizeof s->next,
                                  sh->deadline_ms, &s->ref)
                     : bw_request_then(ctx, s->server, TH_REQ, &s->next, sizeof s->next,
                                       sh->deadline_ms, th_on_answer, NULL, NULL, NULL);
  if (rc != 0)
    bench_waiter_fail(&s->waiter, ctx, "request %" PRIu64 ": %s", s->next, bw_strerror(rc));
  return BW_CONTINUE;
}

/* TH_ALTERNATE: a block is over; after a continuations' block, its
 * pair's ratio. The next block is of the other kind. */
static void th_block_end(th_client_t *s) {
  uint64_t now = bench_now_ns(), span = now - s->block_t0;
  if (s->plain)
    s->plain_ns = span;
  else if (s->pair < s->sh->pairs)
    s->sh->ratio[s->pair++] = (double)span / (double)(s->plain_ns ? s->plain_ns : 1);
  s->plain = !s->plain;
  s->in_block = 0;
  s->block_t0 = now;
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
  if (s->sh->mode == TH_ALTERNATE && ++s->in_block == s->sh->block)
    th_block_end(s);
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
    s->plain = s->sh->mode != TH_THEN; /* alternating: a plain block first */
    s->block_t0 = bench_now_ns();
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

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of n ratios (sorted in place). */
static double median_ratio(double *v, uint64_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One run of sh (set up by th_run): spawn, go, check, figure. */
static int th_measure(bench_run_t *r, th_shared_t *sh) {
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  th_arg_t a = {sh, BW_PID_NONE};
  bw_pid_t client = BW_PID_NONE;
  int rc = bw_spawn(rt, &th_server, sh, NULL, &a.server);
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
  if (sh->slot[0].work != sh->n || sh->slot[1].work != sh->n)
    return bench_fail(r, "answers checked %" PRIu64 ", requests served %" PRIu64
                         "; expected %" PRIu64 " each",
                      sh->slot[0].work, sh->slot[1].work, sh->n);
  if (bench_check_stats(r, &st, sh->slot[0].msgs + sh->slot[1].msgs, 2) != 0)
    return -1;
  if (bench_rate(r, &done, sh->n) != 0)
    return -1;
  r->value = r->seconds * 1e6 / (double)sh->n; /* us per round trip */
  if (sh->mode == TH_ALTERNATE)
    r->value = median_ratio(sh->ratio, sh->pairs);
  return 0;
}

static int th_run(bench_run_t *r, int mode) {
  th_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.deadline_ms = bench_param(r, "deadline_ms");
  sh.mode = mode;
  if (mode == TH_ALTERNATE) {
    sh.block = bench_param(r, "block");
    sh.pairs = sh.n / (2 * sh.block);
    if (sh.pairs == 0)
      return bench_fail(r, "n must be at least 2 x block");
    sh.n = sh.pairs * 2 * sh.block;
    sh.ratio = calloc(sh.pairs, sizeof *sh.ratio);
    if (sh.ratio == NULL)
      return bench_fail(r, "out of memory");
  }
  int rc = th_measure(r, &sh);
  free(sh.ratio);
  return rc;
}

static int then_run(bench_run_t *r) { return th_run(r, TH_THEN); }
static int plain_run(bench_run_t *r) { return th_run(r, TH_PLAIN); }

static int ratio_run(bench_run_t *r) { return th_run(r, TH_ALTERNATE); }

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

const bench_t bench_then_ratio = {
    .name = "then_ratio",
    .group = "runtime",
    .unit = "x",
    .higher_is_better = false,
    .summary = "then_rtt / then_rtt_plain in one run: median ratio of adjacent blocks",
    .params = {{"n", 1000000, 100000, 2, UINT64_C(1) << 40, "round trips in all"},
               {"deadline_ms", 0, 0, 0, 86400000, "each request's deadline (0 = none)"},
               {"block", 2000, 2000, 1, UINT64_C(1) << 30, "round trips per block"}},
    .run = ratio_run,
};
