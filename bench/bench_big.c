/*
 * big: Savina's "big". `actors` actors; each sends a ping to a random
 * other actor, waits for its pong, and repeats until it has had n pongs;
 * meanwhile it answers every ping it receives with a pong. Many-to-many
 * traffic with no hot spot: every actor is both a client and a server.
 *
 * Checked: each actor received exactly n pongs, each for its own latest
 * ping (sequence numbers), and the pings the actors served add up to
 * actors * n.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  BG_START = BENCH_MSG_USER, /* coordinator -> actor */
  BG_PING,                   /* actor -> actor; uint64_t seq */
  BG_PONG,                   /* actor -> actor; the same seq */
  BG_DONE,                   /* actor -> coordinator; bench_note_t */
};

typedef struct bg_shared {
  uint64_t n, actors;
  bw_pid_t *pid;
  bw_pid_t coord;
  bench_slot_t *slot; /* work = pongs received; msgs */
  uint64_t *served;   /* [actors] pings answered */
  uint64_t coord_msgs;
} bg_shared_t;

typedef struct bg_arg {
  bg_shared_t *sh;
  uint64_t idx;
} bg_arg_t;

typedef struct bg_actor {
  bg_shared_t *sh;
  uint64_t idx;
  uint64_t seq;
  uint64_t rng;
  uint64_t served;
} bg_actor_t;

static int bg_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bg_actor_t *a = state;
  const bg_arg_t *g = arg;
  a->sh = g->sh;
  a->idx = g->idx;
  a->rng = g->idx * 7919 + 1;
  return 0;
}

static int bg_ping(bw_ctx_t *ctx, bg_actor_t *a)
{
  uint64_t k = bench_rand(&a->rng) % (a->sh->actors - 1);
  if (k >= a->idx)
    k++; /* never itself */
  a->seq++;
  return bw_send(bw_ctx_runtime(ctx), a->sh->pid[k], BG_PING, &a->seq,
                 sizeof a->seq);
}

static int bg_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bg_actor_t *a = state;
  bench_slot_t *slot = &a->sh->slot[a->idx];
  slot->msgs++;
  int rc = 0;
  switch (msg->type) {
  case BG_START:
    rc = bg_ping(ctx, a);
    break;
  case BG_PING:
    a->served++;
    a->sh->served[a->idx] = a->served;
    rc = bw_send(bw_ctx_runtime(ctx), msg->from, BG_PONG, msg->data, msg->len);
    break;
  case BG_PONG: {
    uint64_t seq;
    if (msg->len != sizeof seq)
      return BW_EINVAL;
    memcpy(&seq, msg->data, sizeof seq);
    if (seq != a->seq) {
      bench_note(ctx, a->sh->coord, BG_DONE,
                 "actor %" PRIu64 " got pong %" PRIu64 ", expected %" PRIu64,
                 a->idx, seq, a->seq);
      return BW_CONTINUE;
    }
    if (++slot->work == a->sh->n)
      rc = bench_note(ctx, a->sh->coord, BG_DONE, NULL);
    else
      rc = bg_ping(ctx, a);
    break;
  }
  default:
    return BW_EINVAL;
  }
  if (rc != 0)
    bench_note(ctx, a->sh->coord, BG_DONE, "actor %" PRIu64 ": bw_send: %s",
               a->idx, bw_strerror(rc));
  return BW_CONTINUE;
}

static const bw_behaviour_t bg_behaviour = {
    .name = "bench.big",
    .state_size = sizeof(bg_actor_t),
    .init = bg_init,
    .handle = bg_handle,
};

typedef struct bg_coord {
  bg_shared_t *sh;
  uint64_t done;
  bench_waiter_t waiter;
} bg_coord_t;

static int bg_coord_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ((bg_coord_t *)state)->sh = arg;
  return 0;
}

static int bg_coord_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bg_coord_t *c = state;
  c->sh->coord_msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < c->sh->actors; i++) {
      int rc = bw_send(bw_ctx_runtime(ctx), c->sh->pid[i], BG_START, NULL, 0);
      if (rc != 0) {
        bench_waiter_fail(&c->waiter, ctx, "bw_send: %s", bw_strerror(rc));
        break;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type == BG_DONE) {
    bench_note_t note;
    if (msg->len != sizeof note)
      return BW_EINVAL;
    memcpy(&note, msg->data, sizeof note);
    if (note.error[0] || ++c->done == c->sh->actors)
      bench_waiter_note(&c->waiter, ctx, msg);
    return BW_CONTINUE;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t bg_coord_behaviour = {
    .name = "bench.big.coordinator",
    .state_size = sizeof(bg_coord_t),
    .init = bg_coord_init,
    .handle = bg_coord_handle,
};

static int bg_run(bench_run_t *r)
{
  bg_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.actors = bench_param(r, "actors");
  sh.pid = calloc(sh.actors, sizeof *sh.pid);
  sh.served = calloc(sh.actors, sizeof *sh.served);
  sh.slot = bench_slots(sh.actors);
  int ret = -1;
  if (!sh.pid || !sh.served || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  int rc = bw_spawn(rt, &bg_coord_behaviour, &sh, NULL, &sh.coord);
  for (uint64_t i = 0; rc == 0 && i < sh.actors; i++) {
    bg_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &bg_behaviour, &a, NULL, &sh.pid[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  bench_done_t done;
  int go = bench_go(r, rt, sh.coord, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;
  uint64_t handled = sh.coord_msgs, served = 0;
  for (uint64_t i = 0; i < sh.actors; i++) {
    if (sh.slot[i].work != sh.n) {
      bench_fail(r, "actor %" PRIu64 " got %" PRIu64 " pongs, not %" PRIu64, i,
                 sh.slot[i].work, sh.n);
      goto out;
    }
    handled += sh.slot[i].msgs;
    served += sh.served[i];
  }
  if (served != sh.n * sh.actors) {
    bench_fail(r, "%" PRIu64 " pings served, expected %" PRIu64, served,
               sh.n * sh.actors);
    goto out;
  }
  if (bench_check_stats(r, &st, handled, sh.actors + 1) != 0)
    goto out;
  /* every ping and every pong is a message */
  ret = bench_rate(r, &done, 2 * sh.n * sh.actors);
out:
  free(sh.pid);
  free(sh.served);
  free(sh.slot);
  return ret;
}

const bench_t bench_big = {
    .name = "big",
    .group = "savina",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "actors ping random neighbours and answer their pings (Savina big)",
    .params = {{"n", 20000, 2000, 1, UINT64_C(1) << 32,
                "pings each actor sends (and pongs it waits for)"},
               {"actors", 120, 120, 2, 1000000, "actors"}},
    .run = bg_run,
};
