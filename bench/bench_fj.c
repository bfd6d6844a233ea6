/*
 * fjthrput, fjcreate: Savina's fork-join benchmarks.
 *
 * fjthrput (throughput): `actors` workers; the coordinator sends each of
 * them n messages (message by message, round robin, as Savina does); each
 * message makes its worker do a small computation (bench_work). Many
 * mailboxes receiving at once, each with a little work per message.
 *
 * fjcreate: n messages, each to a newly spawned actor that does the same
 * computation, reports its result and stops: spawn, first message and exit
 * per unit of work.
 *
 * Checked: every worker did exactly its messages and the sum of the
 * computations' results equals the sum main computes alone (exact: integer
 * arithmetic), so no message was lost, doubled or altered.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  FJ_WORK = BENCH_MSG_USER, /* -> worker; uint64_t input */
  FJ_DONE,                  /* worker -> coordinator; uint64_t result sum */
  FJ_CONT,                  /* coordinator -> itself */
};

/* Savina's fork-join does a short sin/sqrt loop per message; these rounds
 * of integer mixing cost about as much (tens of nanoseconds). */
#define FJ_ROUNDS 40

typedef struct fj_shared {
  uint64_t n, actors, chunk;
  bool create;          /* fjcreate */
  bw_pid_t *worker;     /* fjthrput: [actors] */
  bench_slot_t *slot;   /* fjthrput: [actors] work = messages, msgs */
  uint64_t coord_msgs;
  uint64_t sum;         /* results the coordinator collected */
  uint64_t reports;
} fj_shared_t;

/* --- worker ------------------------------------------------------------- */

typedef struct fj_worker {
  fj_shared_t *sh;
  bench_slot_t *slot; /* fjthrput only */
  uint64_t acc;
} fj_worker_t;

typedef struct fj_worker_arg {
  fj_shared_t *sh;
  uint64_t idx;
} fj_worker_arg_t;

static int fj_worker_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fj_worker_t *w = state;
  const fj_worker_arg_t *a = arg;
  w->sh = a->sh;
  w->slot = a->sh->create ? NULL : &a->sh->slot[a->idx];
  return 0;
}

static int fj_worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fj_worker_t *w = state;
  uint64_t x;
  if (msg->type != FJ_WORK || msg->len != sizeof x)
    return BW_EINVAL;
  memcpy(&x, msg->data, sizeof x);
  uint64_t y = bench_work(x, FJ_ROUNDS);
  if (w->sh->create) {
    /* fjcreate: one message, then report and stop */
    int rc = bw_send(bw_ctx_runtime(ctx), msg->from, FJ_DONE, &y, sizeof y);
    return rc == 0 ? BW_STOP : rc;
  }
  w->slot->msgs++;
  w->acc += y;
  if (++w->slot->work == w->sh->n)
    return bw_send(bw_ctx_runtime(ctx), msg->from, FJ_DONE, &w->acc,
                   sizeof w->acc) == 0
               ? BW_CONTINUE
               : BW_EINVAL;
  return BW_CONTINUE;
}

static const bw_behaviour_t fj_worker_behaviour = {
    .name = "bench.fj.worker",
    .state_size = sizeof(fj_worker_t),
    .init = fj_worker_init,
    .handle = fj_worker_handle,
};

/* --- coordinator -------------------------------------------------------- */

typedef struct fj_coord {
  fj_shared_t *sh;
  uint64_t sent; /* messages (fjthrput) or actors (fjcreate) so far */
  uint64_t total;
  uint64_t expect_reports;
  bool failed;
  bench_waiter_t waiter;
} fj_coord_t;

static int fj_coord_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fj_coord_t *c = state;
  c->sh = arg;
  c->total = c->sh->create ? c->sh->n : c->sh->n * c->sh->actors;
  c->expect_reports = c->sh->create ? c->sh->n : c->sh->actors;
  return 0;
}

/* Sends the next chunk, then a "continue" to itself: the coordinator
 * never holds a worker thread for the whole run. */
static void fj_send_chunk(bw_ctx_t *ctx, fj_coord_t *c)
{
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  fj_shared_t *sh = c->sh;
  uint64_t end = c->sent + sh->chunk;
  if (end > c->total)
    end = c->total;
  for (; c->sent < end; c->sent++) {
    uint64_t x = c->sent;
    bw_pid_t to;
    int rc = 0;
    if (sh->create) {
      fj_worker_arg_t a = {sh, 0};
      rc = bw_spawn(rt, &fj_worker_behaviour, &a, NULL, &to);
    } else {
      to = sh->worker[c->sent % sh->actors];
    }
    if (rc == 0)
      rc = bw_send(rt, to, FJ_WORK, &x, sizeof x);
    if (rc != 0) {
      c->failed = true;
      bench_waiter_fail(&c->waiter, ctx, "spawn or send #%" PRIu64 ": %s",
                        c->sent, bw_strerror(rc));
      return;
    }
  }
  if (c->sent < c->total) {
    int rc = bw_send(rt, bw_self(ctx), FJ_CONT, NULL, 0);
    if (rc != 0) {
      c->failed = true;
      bench_waiter_fail(&c->waiter, ctx, "bw_send to itself: %s",
                        bw_strerror(rc));
    }
  }
}

static int fj_coord_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fj_coord_t *c = state;
  c->sh->coord_msgs++;
  switch (msg->type) {
  case BENCH_MSG_GO:
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    fj_send_chunk(ctx, c);
    return BW_CONTINUE;
  case FJ_CONT:
    if (!c->failed)
      fj_send_chunk(ctx, c);
    return BW_CONTINUE;
  case FJ_DONE: {
    uint64_t y;
    if (msg->len != sizeof y)
      return BW_EINVAL;
    memcpy(&y, msg->data, sizeof y);
    c->sh->sum += y;
    if (++c->sh->reports == c->expect_reports)
      bench_waiter_ok(&c->waiter, ctx, bench_now_ns());
    return BW_CONTINUE;
  }
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t fj_coord_behaviour = {
    .name = "bench.fj.coordinator",
    .state_size = sizeof(fj_coord_t),
    .init = fj_coord_init,
    .handle = fj_coord_handle,
};

/* --- run ---------------------------------------------------------------- */

static int fj_run(bench_run_t *r, bool create)
{
  fj_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.create = create;
  sh.n = bench_param(r, "n");
  sh.actors = create ? 0 : bench_param(r, "actors");
  sh.chunk = 1000;
  int ret = -1;
  if (!create) {
    sh.worker = calloc(sh.actors, sizeof *sh.worker);
    sh.slot = bench_slots(sh.actors);
    if (!sh.worker || !sh.slot) {
      bench_fail(r, "out of memory");
      goto out;
    }
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  int rc = 0;
  for (uint64_t i = 0; rc == 0 && i < sh.actors; i++) {
    fj_worker_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &fj_worker_behaviour, &a, NULL, &sh.worker[i]);
  }
  bw_pid_t coord;
  if (rc == 0)
    rc = bw_spawn(rt, &fj_coord_behaviour, &sh, NULL, &coord);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  bench_done_t done;
  int go = bench_go(r, rt, coord, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;

  uint64_t total = create ? sh.n : sh.n * sh.actors;
  uint64_t expect = 0;
  for (uint64_t x = 0; x < total; x++)
    expect += bench_work(x, FJ_ROUNDS);
  if (sh.sum != expect) {
    bench_fail(r, "results sum to %" PRIu64 ", expected %" PRIu64, sh.sum,
               expect);
    goto out;
  }
  uint64_t handled = sh.coord_msgs;
  for (uint64_t i = 0; i < sh.actors; i++) {
    if (sh.slot[i].work != sh.n) {
      bench_fail(r, "worker %" PRIu64 " did %" PRIu64 " messages, not %" PRIu64,
                 i, sh.slot[i].work, sh.n);
      goto out;
    }
    handled += sh.slot[i].msgs;
  }
  if (create)
    handled += sh.n; /* each created actor handled its one message */
  if (bench_check_stats(r, &st, handled, 1 + (create ? sh.n : sh.actors)) != 0)
    goto out;
  ret = bench_rate(r, &done, total);
out:
  free(sh.worker);
  free(sh.slot);
  return ret;
}

static int fjthrput_run(bench_run_t *r) { return fj_run(r, false); }
static int fjcreate_run(bench_run_t *r) { return fj_run(r, true); }

const bench_t bench_fjthrput = {
    .name = "fjthrput",
    .group = "savina",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "fork-join throughput: n messages to each of many actors, a "
               "small computation each",
    .params = {{"n", 10000, 2000, 1, UINT64_C(1) << 32,
                "messages per actor"},
               {"actors", 60, 60, 1, 100000, "worker actors"}},
    .run = fjthrput_run,
};

const bench_t bench_fjcreate = {
    .name = "fjcreate",
    .group = "savina",
    .unit = "actors/s",
    .higher_is_better = true,
    .summary = "fork-join create: an actor per message computes, reports, "
               "and exits",
    .params = {{"n", 40000, 20000, 1, UINT64_C(1) << 32,
                "actors created (one message each)"}},
    .run = fjcreate_run,
};
