/*
 * chameneos: Savina's chameneos-redux. `creatures` creatures, each with a
 * colour, go to a mall (one broker actor) to meet; the mall pairs each
 * arrival with the creature already waiting, tells both their partner's
 * colour, and each takes the complement of the two colours and comes back.
 * After n meetings the mall turns every arrival away, and each creature
 * reports how many meetings it had. A hot spot: every message goes
 * through the mall.
 *
 * Checked: the mall arranged exactly n meetings; the creatures' reported
 * meetings add up to 2n; no creature ever met itself; every creature's
 * final colour is the one the mall computes from the meetings it arranged
 * (the complement rule replayed).
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  CH_START = BENCH_MSG_USER, /* mall -> creature */
  CH_MEET,                   /* creature -> mall; ch_meet_t */
  CH_MATE,                   /* mall -> creature; uint32_t partner colour */
  CH_STOP,                   /* mall -> creature */
  CH_REPORT,                 /* creature -> mall; ch_meet_t (meetings) */
};

enum { BLUE, RED, YELLOW };

static uint32_t complement(uint32_t a, uint32_t b)
{
  if (a == b)
    return a;
  return 3 - a - b; /* the third colour */
}

typedef struct ch_meet {
  uint32_t idx;
  uint32_t colour;
  uint64_t meetings;
} ch_meet_t;

typedef struct ch_shared {
  uint64_t n, creatures;
  bw_pid_t mall;
  bw_pid_t *pid;
  bench_slot_t *slot; /* [creatures + 1]: msgs; [creatures] = the mall */
  uint64_t mall_meetings, reported, self_meetings, colour_errors;
} ch_shared_t;

typedef struct ch_arg {
  ch_shared_t *sh;
  uint32_t idx;
} ch_arg_t;

typedef struct ch_creature {
  ch_shared_t *sh;
  uint32_t idx;
  uint32_t colour;
  uint64_t meetings;
} ch_creature_t;

static int ch_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ch_creature_t *c = state;
  const ch_arg_t *a = arg;
  c->sh = a->sh;
  c->idx = a->idx;
  c->colour = a->idx % 3;
  return 0;
}

static int ch_go(bw_ctx_t *ctx, ch_creature_t *c, uint32_t type)
{
  ch_meet_t m = {c->idx, c->colour, c->meetings};
  return bw_send(bw_ctx_runtime(ctx), c->sh->mall, type, &m, sizeof m);
}

static int ch_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  ch_creature_t *c = state;
  c->sh->slot[c->idx].msgs++;
  switch (msg->type) {
  case CH_START:
    return ch_go(ctx, c, CH_MEET) == 0 ? BW_CONTINUE : BW_EINVAL;
  case CH_MATE: {
    uint32_t other;
    if (msg->len != sizeof other)
      return BW_EINVAL;
    memcpy(&other, msg->data, sizeof other);
    c->colour = complement(c->colour, other);
    c->meetings++;
    return ch_go(ctx, c, CH_MEET) == 0 ? BW_CONTINUE : BW_EINVAL;
  }
  case CH_STOP:
    return ch_go(ctx, c, CH_REPORT) == 0 ? BW_CONTINUE : BW_EINVAL;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t ch_behaviour = {
    .name = "bench.chameneos.creature",
    .state_size = sizeof(ch_creature_t),
    .init = ch_init,
    .handle = ch_handle,
};

typedef struct ch_mall {
  ch_shared_t *sh;
  bool waiting;
  ch_meet_t first;
  uint32_t *colour; /* the mall's replay of each creature's colour */
  bench_waiter_t waiter;
} ch_mall_t;

static int ch_mall_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ch_mall_t *m = state;
  m->sh = arg;
  m->colour = calloc(m->sh->creatures, sizeof *m->colour);
  if (!m->colour)
    return BW_ENOMEM;
  for (uint64_t i = 0; i < m->sh->creatures; i++)
    m->colour[i] = i % 3;
  return 0;
}

static void ch_mall_terminate(bw_ctx_t *ctx, void *state,
                              const bw_reason_t *reason)
{
  (void)ctx;
  (void)reason;
  free(((ch_mall_t *)state)->colour);
}

static int ch_mall_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  ch_mall_t *m = state;
  ch_shared_t *sh = m->sh;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  sh->slot[sh->creatures].msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&m->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < sh->creatures; i++)
      if (bw_send(rt, sh->pid[i], CH_START, NULL, 0) != 0)
        return BW_EINVAL;
    return BW_CONTINUE;
  }
  ch_meet_t in;
  if (msg->len != sizeof in)
    return BW_EINVAL;
  memcpy(&in, msg->data, sizeof in);
  if (in.idx >= sh->creatures)
    return BW_EINVAL;
  if (in.colour != m->colour[in.idx])
    sh->colour_errors++;
  if (msg->type == CH_REPORT) {
    sh->reported += in.meetings;
    sh->slot[sh->creatures].work++;
    if (sh->slot[sh->creatures].work == sh->creatures)
      bench_waiter_ok(&m->waiter, ctx, bench_now_ns());
    return BW_CONTINUE;
  }
  if (msg->type != CH_MEET)
    return BW_EINVAL;
  if (sh->mall_meetings == sh->n)
    return bw_send(rt, msg->from, CH_STOP, NULL, 0) == 0 ? BW_CONTINUE
                                                         : BW_EINVAL;
  if (!m->waiting) {
    m->first = in;
    m->waiting = true;
    return BW_CONTINUE;
  }
  m->waiting = false;
  if (m->first.idx == in.idx)
    sh->self_meetings++;
  sh->mall_meetings++;
  m->colour[in.idx] = complement(in.colour, m->first.colour);
  m->colour[m->first.idx] = complement(m->first.colour, in.colour);
  int rc = bw_send(rt, msg->from, CH_MATE, &m->first.colour,
                   sizeof m->first.colour);
  if (rc == 0)
    rc = bw_send(rt, sh->pid[m->first.idx], CH_MATE, &in.colour,
                 sizeof in.colour);
  /* After the n-th meeting nobody is left waiting: every later arrival is
   * turned away above, so every creature gets its CH_STOP. */
  return rc == 0 ? BW_CONTINUE : BW_EINVAL;
}

static const bw_behaviour_t ch_mall_behaviour = {
    .name = "bench.chameneos.mall",
    .state_size = sizeof(ch_mall_t),
    .init = ch_mall_init,
    .handle = ch_mall_handle,
    .terminate = ch_mall_terminate,
};

static int ch_run(bench_run_t *r)
{
  ch_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.creatures = bench_param(r, "creatures");
  sh.pid = calloc(sh.creatures, sizeof *sh.pid);
  sh.slot = bench_slots(sh.creatures + 1);
  int ret = -1;
  if (!sh.pid || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  int rc = bw_spawn(rt, &ch_mall_behaviour, &sh, NULL, &sh.mall);
  for (uint32_t i = 0; rc == 0 && i < sh.creatures; i++) {
    ch_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &ch_behaviour, &a, NULL, &sh.pid[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  bench_done_t done;
  int go = bench_go(r, rt, sh.mall, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;
  if (sh.mall_meetings != sh.n || sh.reported != 2 * sh.n) {
    bench_fail(r, "the mall arranged %" PRIu64 " meetings, the creatures "
               "report %" PRIu64 "; expected %" PRIu64 " and %" PRIu64,
               sh.mall_meetings, sh.reported, sh.n, 2 * sh.n);
    goto out;
  }
  if (sh.self_meetings || sh.colour_errors) {
    bench_fail(r, "%" PRIu64 " creatures met themselves, %" PRIu64
               " arrived in the wrong colour",
               sh.self_meetings, sh.colour_errors);
    goto out;
  }
  uint64_t handled = 0;
  for (uint64_t i = 0; i <= sh.creatures; i++)
    handled += sh.slot[i].msgs;
  if (bench_check_stats(r, &st, handled, sh.creatures + 1) != 0)
    goto out;
  ret = bench_rate(r, &done, sh.n);
out:
  free(sh.pid);
  free(sh.slot);
  return ret;
}

const bench_t bench_chameneos = {
    .name = "chameneos",
    .group = "savina",
    .unit = "meetings/s",
    .higher_is_better = true,
    .summary = "chameneos-redux: creatures meet in pairs through a mall actor",
    .params = {{"n", 200000, 50000, 1, UINT64_C(1) << 36, "meetings"},
               {"creatures", 100, 100, 2, 1000000, "creatures"}},
    .run = ch_run,
};
