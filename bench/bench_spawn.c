/*
 * spawn: a parent actor spawns n short-lived children; each child's first
 * (and only) message makes it send one message to the parent and stop.
 *
 * The figure is the whole life of an actor: spawn, first message,
 * schedule, send, exit and its slot recycled. The parent spawns `chunk`
 * children per turn, then sends itself a "continue", so it never holds a
 * worker for the whole run. Measured from the parent receiving GO until it
 * has heard from all n children; every child reports its number once.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  SP_START = BENCH_MSG_USER, /* parent -> child; uint64_t child number */
  SP_HELLO,                  /* child -> parent; the same number */
  SP_CONT,                   /* parent -> itself */
};

/* What a child holds: a small state like most actors have; unused. */
#define SP_CHILD_STATE 16

typedef struct sp_shared {
  uint64_t n, chunk;
  uint8_t *seen;     /* n bits: which children said hello */
  bench_slot_t slot; /* the parent's: work = hellos received */
} sp_shared_t;

static int sp_child_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  (void)state;
  if (msg->type != SP_START || msg->len != sizeof(uint64_t))
    return BW_EINVAL;
  /* msg->from is the parent: the child needs no init and no argument. */
  int rc = bw_send(bw_ctx_runtime(ctx), msg->from, SP_HELLO, msg->data,
                   msg->len);
  return rc == 0 ? BW_STOP : rc;
}

static const bw_behaviour_t sp_child_behaviour = {
    .name = "bench.spawn.child",
    .state_size = SP_CHILD_STATE,
    .handle = sp_child_handle,
};

typedef struct sp_parent {
  sp_shared_t *sh;
  uint64_t spawned;
  uint64_t hellos;
  bool failed;
  bench_waiter_t waiter;
} sp_parent_t;

static int sp_parent_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  sp_parent_t *p = state;
  p->sh = arg;
  return 0;
}

static void sp_spawn_chunk(bw_ctx_t *ctx, sp_parent_t *p)
{
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  uint64_t end = p->spawned + p->sh->chunk;
  if (end > p->sh->n)
    end = p->sh->n;
  for (; p->spawned < end; p->spawned++) {
    bw_pid_t child;
    int rc = bw_spawn(rt, &sp_child_behaviour, NULL, NULL, &child);
    if (rc != 0) {
      p->failed = true;
      bench_waiter_fail(&p->waiter, ctx, "bw_spawn of child %" PRIu64 ": %s",
                        p->spawned, bw_strerror(rc));
      return;
    }
    uint64_t num = p->spawned;
    rc = bw_send(rt, child, SP_START, &num, sizeof num);
    if (rc != 0) {
      p->failed = true;
      bench_waiter_fail(&p->waiter, ctx, "bw_send to child %" PRIu64 ": %s",
                        num, bw_strerror(rc));
      return;
    }
  }
  if (p->spawned < p->sh->n) {
    int rc = bw_send(rt, bw_self(ctx), SP_CONT, NULL, 0);
    if (rc != 0) {
      p->failed = true;
      bench_waiter_fail(&p->waiter, ctx, "bw_send to itself: %s",
                        bw_strerror(rc));
    }
  }
}

static int sp_parent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  sp_parent_t *p = state;
  p->sh->slot.msgs++;
  switch (msg->type) {
  case SP_HELLO: {
    uint64_t num;
    if (p->failed)
      return BW_CONTINUE;
    if (msg->len != sizeof num) {
      p->failed = true;
      bench_waiter_fail(&p->waiter, ctx, "hello with a bad payload");
      return BW_CONTINUE;
    }
    memcpy(&num, msg->data, sizeof num);
    uint8_t bit = (uint8_t)(1u << (num & 7));
    if (num >= p->spawned || (p->sh->seen[num >> 3] & bit)) {
      p->failed = true;
      bench_waiter_fail(&p->waiter, ctx,
                        "hello from child %" PRIu64 " is %s", num,
                        num >= p->spawned ? "unknown" : "a duplicate");
      return BW_CONTINUE;
    }
    p->sh->seen[num >> 3] |= bit;
    if (++p->hellos == p->sh->n) {
      p->sh->slot.work = p->hellos;
      bench_waiter_ok(&p->waiter, ctx, bench_now_ns());
    }
    return BW_CONTINUE;
  }
  case SP_CONT:
    if (!p->failed)
      sp_spawn_chunk(ctx, p);
    return BW_CONTINUE;
  case BENCH_MSG_GO:
    if (bench_waiter_arm(&p->waiter, msg) != 0)
      return BW_EINVAL;
    sp_spawn_chunk(ctx, p);
    return BW_CONTINUE;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t sp_parent_behaviour = {
    .name = "bench.spawn.parent",
    .state_size = sizeof(sp_parent_t),
    .init = sp_parent_init,
    .handle = sp_parent_handle,
};

static int sp_run(bench_run_t *r)
{
  sp_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.chunk = bench_param(r, "chunk");
  sh.seen = calloc(sh.n / 8 + 1, 1);
  if (!sh.seen)
    return bench_fail(r, "out of memory");

  int ret = -1;
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  bw_pid_t parent;
  int rc = bw_spawn(rt, &sp_parent_behaviour, &sh, NULL, &parent);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }

  bench_done_t done;
  int go = bench_go(r, rt, parent, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;

  if (sh.slot.work != sh.n) {
    bench_fail(r, "%" PRIu64 " children said hello, expected %" PRIu64,
               sh.slot.work, sh.n);
    goto out;
  }
  /* Each child handled exactly its one start message. */
  if (bench_check_stats(r, &st, sh.slot.msgs + sh.n, sh.n + 1) != 0)
    goto out;
  ret = bench_rate(r, &done, sh.n);
out:
  free(sh.seen);
  return ret;
}

const bench_t bench_spawn = {
    .name = "spawn",
    .group = "runtime",
    .unit = "actors/s",
    .higher_is_better = true,
    .summary = "an actor spawns short-lived children that each report once",
    .params = {{"n", 1000000, 100000, 1, UINT64_C(1) << 36, "children in all"},
               {"chunk", 1000, 1000, 1, 100000000,
                "children the parent spawns per turn before yielding"}},
    .run = sp_run,
};
