/*
 * fib: Savina's recursive Fibonacci. Computing fib(n) is an actor: for
 * n <= 2 it answers 1; otherwise it spawns two actors for n - 1 and n - 2,
 * adds their answers, answers its own parent, and stops. fib(25) makes
 * 242,785 actors, each living for one request and at most two answers:
 * spawn cost, short lives and fan-in of results.
 *
 * Checked: the answer is exactly fib(n); the runtime spawned exactly the
 * 2 fib(n + 1) - 1 actors the recursion makes (plus the coordinator), and
 * handled exactly one request per actor and two answers per inner one.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
  FB_REQ = BENCH_MSG_USER, /* parent -> child; uint32_t n */
  FB_ANS,                  /* child -> parent; uint64_t value */
  FB_FAIL,                 /* any -> coordinator; bench_note_t */
};

typedef struct fb_state {
  bw_pid_t parent;
  bw_pid_t coord;
  uint64_t sum;
  unsigned answers;
} fb_state_t;

static int fb_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ((fb_state_t *)state)->coord = *(const bw_pid_t *)arg;
  return 0;
}

static const bw_behaviour_t fb_behaviour;

static int fb_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fb_state_t *s = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  if (msg->type == FB_REQ) {
    uint32_t n;
    if (msg->len != sizeof n)
      return BW_EINVAL;
    memcpy(&n, msg->data, sizeof n);
    s->parent = msg->from;
    if (n <= 2) {
      uint64_t one = 1;
      int rc = bw_send(rt, s->parent, FB_ANS, &one, sizeof one);
      if (rc != 0)
        bench_note(ctx, s->coord, FB_FAIL, "bw_send: %s", bw_strerror(rc));
      return BW_STOP;
    }
    for (uint32_t k = 1; k <= 2; k++) {
      bw_pid_t child;
      uint32_t m = n - k;
      int rc = bw_spawn(rt, &fb_behaviour, &s->coord, NULL, &child);
      if (rc == 0)
        rc = bw_send(rt, child, FB_REQ, &m, sizeof m);
      if (rc != 0) {
        bench_note(ctx, s->coord, FB_FAIL, "spawn or send for fib(%u): %s", m,
                   bw_strerror(rc));
        return BW_STOP;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type == FB_ANS) {
    uint64_t v;
    if (msg->len != sizeof v)
      return BW_EINVAL;
    memcpy(&v, msg->data, sizeof v);
    s->sum += v;
    if (++s->answers < 2)
      return BW_CONTINUE;
    int rc = bw_send(rt, s->parent, FB_ANS, &s->sum, sizeof s->sum);
    if (rc != 0)
      bench_note(ctx, s->coord, FB_FAIL, "bw_send: %s", bw_strerror(rc));
    return BW_STOP;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t fb_behaviour = {
    .name = "bench.fib",
    .state_size = sizeof(fb_state_t),
    .init = fb_init,
    .handle = fb_handle,
};

typedef struct fb_shared {
  uint32_t n;
  uint64_t value; /* the root's answer */
  uint64_t msgs;  /* the coordinator's handled messages */
} fb_shared_t;

typedef struct fb_coord {
  fb_shared_t *sh;
  bench_waiter_t waiter;
} fb_coord_t;

static int fb_coord_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ((fb_coord_t *)state)->sh = arg;
  return 0;
}

static int fb_coord_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fb_coord_t *c = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  c->sh->msgs++;
  switch (msg->type) {
  case BENCH_MSG_GO: {
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    bw_pid_t self = bw_self(ctx), root;
    int rc = bw_spawn(rt, &fb_behaviour, &self, NULL, &root);
    if (rc == 0)
      rc = bw_send(rt, root, FB_REQ, &c->sh->n, sizeof c->sh->n);
    if (rc != 0)
      bench_waiter_fail(&c->waiter, ctx, "spawn or send the root: %s",
                        bw_strerror(rc));
    return BW_CONTINUE;
  }
  case FB_ANS:
    if (msg->len != sizeof c->sh->value)
      return BW_EINVAL;
    memcpy(&c->sh->value, msg->data, sizeof c->sh->value);
    bench_waiter_ok(&c->waiter, ctx, bench_now_ns());
    return BW_CONTINUE;
  case FB_FAIL:
    bench_waiter_note(&c->waiter, ctx, msg);
    return BW_CONTINUE;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t fb_coord_behaviour = {
    .name = "bench.fib.coordinator",
    .state_size = sizeof(fb_coord_t),
    .init = fb_coord_init,
    .handle = fb_coord_handle,
};

static int fb_run(bench_run_t *r)
{
  fb_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = (uint32_t)bench_param(r, "n");
  uint32_t n = sh.n;
  /* fib(n) and the actors the recursion spawns: a(n) = 1 + a(n-1) + a(n-2),
   * a(1) = a(2) = 1; inner actors (n > 2) get two answers each. */
  uint64_t fib[64], actors[64], inner[64];
  fib[1] = fib[2] = 1;
  actors[1] = actors[2] = 1;
  inner[1] = inner[2] = 0;
  for (uint32_t k = 3; k <= n; k++) {
    fib[k] = fib[k - 1] + fib[k - 2];
    actors[k] = 1 + actors[k - 1] + actors[k - 2];
    inner[k] = 1 + inner[k - 1] + inner[k - 2];
  }

  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_pid_t coord;
  int rc = bw_spawn(rt, &fb_coord_behaviour, &sh, NULL, &coord);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  bench_done_t done;
  int go = bench_go(r, rt, coord, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;
  if (sh.value != fib[n])
    return bench_fail(r, "fib(%u) came out as %" PRIu64 ", not %" PRIu64, n,
                      sh.value, fib[n]);
  if (bench_check_stats(r, &st, sh.msgs + actors[n] + 2 * inner[n],
                        actors[n] + 1) != 0)
    return -1;
  return bench_rate(r, &done, actors[n]);
}

const bench_t bench_fib = {
    .name = "fib",
    .group = "savina",
    .unit = "actors/s",
    .higher_is_better = true,
    .summary = "recursive Fibonacci, an actor per call (Savina fib)",
    .params = {{"n", 25, 20, 3, 35, "compute fib(n)"}},
    .run = fb_run,
};
