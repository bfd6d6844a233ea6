/*
 * pingpong: two actors bounce one message back and forth, n messages in all.
 *
 * Only one message is ever in flight, so the figure is bound by the latency
 * of one send-to-handle step (enqueue, make the receiver runnable, schedule
 * it, dequeue), not by mailbox throughput. Each ball carries its number; each
 * side checks it receives every second number in order.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
  PP_BALL = BENCH_MSG_USER, /* payload: uint64_t ball number, 1..n */
  PP_DONE,                  /* b -> a; payload: bench_note_t */
};

typedef struct pp_shared {
  uint64_t n;
  bench_slot_t slot[2]; /* [0] = a, [1] = b; work = balls received */
} pp_shared_t;

typedef struct pp_arg {
  pp_shared_t *sh;
  int side;      /* 0: a, the coordinator, serves ball 1; 1: b */
  bw_pid_t peer; /* a only: b's pid (b learns a's from the first ball) */
} pp_arg_t;

typedef struct pp_state {
  pp_shared_t *sh;
  bench_slot_t *slot;
  int side;
  bw_pid_t peer;
  uint64_t expect; /* the next ball number this side must receive */
  bench_waiter_t waiter;
} pp_state_t;

static int pp_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  pp_state_t *s = state;
  const pp_arg_t *a = arg;
  s->sh = a->sh;
  s->side = a->side;
  s->slot = &a->sh->slot[a->side];
  s->peer = a->peer;
  s->expect = a->side == 0 ? 2 : 1;
  return 0;
}

/* b cannot answer main: it tells a, which holds the request. */
static void pp_finish(bw_ctx_t *ctx, pp_state_t *s, const char *err)
{
  uint64_t t1 = bench_now_ns();
  if (s->side == 0) {
    if (err)
      bench_waiter_fail(&s->waiter, ctx, "%s", err);
    else
      bench_waiter_ok(&s->waiter, ctx, t1);
    return;
  }
  bench_note_t note;
  memset(&note, 0, sizeof note);
  note.t1_ns = t1;
  if (err)
    snprintf(note.error, sizeof note.error, "%s", err);
  bw_send(bw_ctx_runtime(ctx), s->peer, PP_DONE, &note, sizeof note);
}

static int pp_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  pp_state_t *s = state;
  s->slot->msgs++;
  switch (msg->type) {
  case BENCH_MSG_GO: {
    if (s->side != 0 || bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    uint64_t ball = 1;
    int rc = bw_send(bw_ctx_runtime(ctx), s->peer, PP_BALL, &ball, sizeof ball);
    if (rc != 0)
      bench_waiter_fail(&s->waiter, ctx, "bw_send: %s", bw_strerror(rc));
    return BW_CONTINUE;
  }
  case PP_BALL: {
    uint64_t ball;
    if (msg->len != sizeof ball) {
      pp_finish(ctx, s, "ball with a bad payload");
      return BW_CONTINUE;
    }
    memcpy(&ball, msg->data, sizeof ball);
    if (s->side == 1)
      s->peer = msg->from;
    if (ball != s->expect) {
      char err[BENCH_DONE_ERR_MAX];
      snprintf(err, sizeof err,
               "side %c got ball %" PRIu64 ", expected %" PRIu64,
               "ab"[s->side], ball, s->expect);
      pp_finish(ctx, s, err);
      return BW_CONTINUE;
    }
    s->expect += 2;
    s->slot->work++;
    if (ball == s->sh->n) {
      pp_finish(ctx, s, NULL);
      return BW_CONTINUE;
    }
    ball++;
    int rc = bw_send(bw_ctx_runtime(ctx), s->peer, PP_BALL, &ball, sizeof ball);
    if (rc != 0) {
      char err[BENCH_DONE_ERR_MAX];
      snprintf(err, sizeof err, "bw_send: %s", bw_strerror(rc));
      pp_finish(ctx, s, err);
    }
    return BW_CONTINUE;
  }
  case PP_DONE:
    if (s->side != 0)
      return BW_EINVAL;
    return bench_waiter_note(&s->waiter, ctx, msg) == 0 ? BW_CONTINUE : BW_EINVAL;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t pp_behaviour = {
    .name = "bench.pingpong",
    .state_size = sizeof(pp_state_t),
    .init = pp_init,
    .handle = pp_handle,
};

static int pp_run(bench_run_t *r)
{
  pp_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");

  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  pp_arg_t args[2] = {{&sh, 0, BW_PID_NONE}, {&sh, 1, BW_PID_NONE}};
  bw_pid_t a = BW_PID_NONE, b = BW_PID_NONE;
  int rc = bw_spawn(rt, &pp_behaviour, &args[1], NULL, &b);
  if (rc == 0) {
    args[0].peer = b;
    rc = bw_spawn(rt, &pp_behaviour, &args[0], NULL, &a);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }

  bench_done_t done;
  int go = bench_go(r, rt, a, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;

  /* a receives the even balls, b the odd ones. */
  if (sh.slot[0].work != sh.n / 2 || sh.slot[1].work != sh.n - sh.n / 2)
    return bench_fail(r, "balls received: a %" PRIu64 ", b %" PRIu64
                         "; expected %" PRIu64 " and %" PRIu64,
                      sh.slot[0].work, sh.slot[1].work, sh.n / 2,
                      sh.n - sh.n / 2);
  if (bench_check_stats(r, &st, sh.slot[0].msgs + sh.slot[1].msgs, 2) != 0)
    return -1;
  return bench_rate(r, &done, sh.n);
}

const bench_t bench_pingpong = {
    .name = "pingpong",
    .group = "savina",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "2 actors bounce one message back and forth (latency-bound)",
    .params = {{"n", 2000000, 200000, 1, UINT64_C(1) << 40,
                "messages in all (both directions)"}},
    .run = pp_run,
};
