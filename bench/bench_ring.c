/*
 * ring: the thread-ring benchmark. `actors` actors in a ring pass one token
 * around, `hops` deliveries in all.
 *
 * Like pingpong one message is in flight at a time, but every hop wakes a
 * different actor, so the figure also pays for touching a cold actor each
 * time (its state, its mailbox) rather than two hot ones.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  RING_TOKEN = BENCH_MSG_USER, /* uint64_t: hops still to go after this one */
  RING_DONE,                   /* last receiver -> actor 0; bench_note_t */
};

typedef struct ring_shared {
  uint64_t hops;
  uint32_t actors;
  bw_pid_t *pids;     /* written by main before GO, read-only afterwards */
  bench_slot_t *slot; /* [actors]; work = tokens received */
} ring_shared_t;

typedef struct ring_arg {
  ring_shared_t *sh;
  uint32_t idx;
} ring_arg_t;

typedef struct ring_state {
  ring_shared_t *sh;
  bench_slot_t *slot;
  bw_pid_t next;
  uint32_t idx;
  bench_waiter_t waiter; /* actor 0 only */
} ring_state_t;

static int ring_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ring_state_t *s = state;
  const ring_arg_t *a = arg;
  s->sh = a->sh;
  s->idx = a->idx;
  s->slot = &a->sh->slot[a->idx];
  return 0;
}

/* The ring is closed only once every actor exists, so each actor looks its
 * successor up on its first token (main filled pids before sending GO). */
static int ring_pass(bw_ctx_t *ctx, ring_state_t *s, uint64_t left)
{
  if (s->next == BW_PID_NONE)
    s->next = s->sh->pids[(s->idx + 1) % s->sh->actors];
  return bw_send(bw_ctx_runtime(ctx), s->next, RING_TOKEN, &left, sizeof left);
}

static void ring_finish(bw_ctx_t *ctx, ring_state_t *s, const char *err)
{
  uint64_t t1 = bench_now_ns();
  if (s->idx == 0) {
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
  bw_send(bw_ctx_runtime(ctx), s->sh->pids[0], RING_DONE, &note, sizeof note);
}

static int ring_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  ring_state_t *s = state;
  char err[BENCH_DONE_ERR_MAX];
  s->slot->msgs++;
  switch (msg->type) {
  case BENCH_MSG_GO: {
    if (s->idx != 0 || bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    int rc = ring_pass(ctx, s, s->sh->hops - 1);
    if (rc != 0)
      bench_waiter_fail(&s->waiter, ctx, "bw_send: %s", bw_strerror(rc));
    return BW_CONTINUE;
  }
  case RING_TOKEN: {
    uint64_t left;
    if (msg->len != sizeof left) {
      ring_finish(ctx, s, "token with a bad payload");
      return BW_CONTINUE;
    }
    memcpy(&left, msg->data, sizeof left);
    s->slot->work++;
    if (left == 0) {
      ring_finish(ctx, s, NULL);
      return BW_CONTINUE;
    }
    int rc = ring_pass(ctx, s, left - 1);
    if (rc != 0) {
      snprintf(err, sizeof err, "actor %" PRIu32 ": bw_send: %s", s->idx,
               bw_strerror(rc));
      ring_finish(ctx, s, err);
    }
    return BW_CONTINUE;
  }
  case RING_DONE:
    if (s->idx != 0)
      return BW_EINVAL;
    return bench_waiter_note(&s->waiter, ctx, msg) == 0 ? BW_CONTINUE : BW_EINVAL;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t ring_behaviour = {
    .name = "bench.ring",
    .state_size = sizeof(ring_state_t),
    .init = ring_init,
    .handle = ring_handle,
};

static int ring_run(bench_run_t *r)
{
  ring_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.hops = bench_param(r, "hops");
  sh.actors = (uint32_t)bench_param(r, "actors");
  sh.pids = calloc(sh.actors, sizeof *sh.pids);
  sh.slot = aligned_alloc(_Alignof(bench_slot_t), sh.actors * sizeof *sh.slot);
  ring_arg_t *args = calloc(sh.actors, sizeof *args);
  int ret = -1;
  bw_runtime_t *rt = NULL;
  if (!sh.pids || !sh.slot || !args) {
    bench_fail(r, "out of memory");
    goto out;
  }
  memset(sh.slot, 0, sh.actors * sizeof *sh.slot);
  if (bench_runtime_create(r, &rt) != 0)
    goto out;

  for (uint32_t i = 0; i < sh.actors; i++) {
    args[i].sh = &sh;
    args[i].idx = i;
    int rc = bw_spawn(rt, &ring_behaviour, &args[i], NULL, &sh.pids[i]);
    if (rc != 0) {
      bench_fail(r, "bw_spawn of actor %" PRIu32 ": %s", i, bw_strerror(rc));
      bench_runtime_finish(r, rt, NULL);
      goto out;
    }
  }

  bench_done_t done;
  int go = bench_go(r, rt, sh.pids[0], NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;

  uint64_t tokens = 0, msgs = 0;
  for (uint32_t i = 0; i < sh.actors; i++) {
    tokens += sh.slot[i].work;
    msgs += sh.slot[i].msgs;
  }
  if (tokens != sh.hops) {
    bench_fail(r, "the actors received %" PRIu64 " tokens, expected %" PRIu64,
               tokens, sh.hops);
    goto out;
  }
  /* Every actor gets hops/actors tokens, the first hops%actors one more
   * (actor 0 serves, so actor 1 receives the first token). */
  for (uint32_t i = 0; i < sh.actors; i++) {
    /* its place in the order of delivery, counting from actor 1 */
    uint64_t pos = (i + sh.actors - 1) % sh.actors;
    uint64_t want = sh.hops / sh.actors + (pos < sh.hops % sh.actors);
    if (sh.slot[i].work != want) {
      bench_fail(r,
                 "actor %" PRIu32 " received %" PRIu64
                 " tokens, expected %" PRIu64,
                 i, sh.slot[i].work, want);
      goto out;
    }
  }
  if (bench_check_stats(r, &st, msgs, sh.actors) != 0)
    goto out;
  ret = bench_rate(r, &done, sh.hops);

out:
  free(args);
  free(sh.slot);
  free(sh.pids);
  return ret;
}

const bench_t bench_ring = {
    .name = "ring",
    .group = "savina",
    .unit = "hops/s",
    .higher_is_better = true,
    .summary = "a token passed around a ring of actors (thread ring)",
    .params = {{"actors", 1000, 1000, 2, 10000000, "actors in the ring"},
               {"hops", 1000000, 100000, 1, UINT64_C(1) << 40,
                "token deliveries in all"}},
    .run = ring_run,
};
