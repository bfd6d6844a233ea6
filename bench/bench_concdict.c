/*
 * concdict: Savina's concurrent dictionary. `workers` actors each perform
 * n operations on one dictionary actor, request/reply (bw_request /
 * bw_reply), one at a time: `write_pct` percent writes, the rest reads.
 *
 * To check every answer exactly, each worker owns a key range (Savina's
 * keys are shared, which leaves a read's expected value open): a read must
 * return what the worker last wrote to that key, or "absent" if it never
 * wrote it. The dictionary is an open-addressing hash table.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  CD_START = BENCH_MSG_USER, /* coordinator -> worker */
  CD_OP,                     /* worker -> dictionary; request, cd_op_t */
  CD_DONE,                   /* worker -> coordinator; bench_note_t */
};

#define CD_KEYS 512 /* keys per worker */

typedef struct cd_op {
  uint64_t key;
  uint64_t value; /* write: the value; read: unused */
  uint32_t write;
} cd_op_t;

typedef struct cd_answer {
  uint64_t value;
  uint32_t found;
} cd_answer_t;

typedef struct cd_shared {
  uint64_t n, workers, write_pct;
  bw_pid_t dict, coord;
  bw_pid_t *worker;
  bench_slot_t *slot; /* [workers + 1]: [workers] = the dictionary */
  uint64_t coord_msgs;
  uint64_t dict_size; /* entries at the end */
} cd_shared_t;

/* --- dictionary ---------------------------------------------------------- */

typedef struct cd_dict {
  cd_shared_t *sh;
  uint64_t cap; /* power of two */
  uint64_t used;
  uint64_t *key; /* key + 1; 0 = empty */
  uint64_t *val;
} cd_dict_t;

static int cd_dict_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  cd_dict_t *d = state;
  d->sh = arg;
  /* room for every key at a load factor of 1/2: never grows mid-run */
  d->cap = 1;
  while (d->cap < 2 * CD_KEYS * d->sh->workers)
    d->cap <<= 1;
  d->key = calloc(d->cap, sizeof *d->key);
  d->val = calloc(d->cap, sizeof *d->val);
  if (!d->key || !d->val) {
    free(d->key);
    free(d->val);
    return BW_ENOMEM;
  }
  return 0;
}

static void cd_dict_terminate(bw_ctx_t *ctx, void *state,
                              const bw_reason_t *reason)
{
  (void)ctx;
  (void)reason;
  cd_dict_t *d = state;
  d->sh->dict_size = d->used;
  free(d->key);
  free(d->val);
}

static int cd_dict_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  cd_dict_t *d = state;
  d->sh->slot[d->sh->workers].msgs++;
  cd_op_t op;
  if (msg->type != CD_OP || msg->len != sizeof op)
    return BW_EINVAL;
  memcpy(&op, msg->data, sizeof op);
  uint64_t h = bench_work(op.key + 1, 1) & (d->cap - 1);
  while (d->key[h] != 0 && d->key[h] != op.key + 1)
    h = (h + 1) & (d->cap - 1);
  cd_answer_t ans = {0, 0};
  if (op.write) {
    if (d->key[h] == 0) {
      d->key[h] = op.key + 1;
      d->used++;
    }
    d->val[h] = op.value;
    ans.found = 1;
    ans.value = op.value;
  } else if (d->key[h] != 0) {
    ans.found = 1;
    ans.value = d->val[h];
  }
  d->sh->slot[d->sh->workers].work++;
  return bw_reply(ctx, msg, 0, CD_OP, &ans, sizeof ans) == 0 ? BW_CONTINUE
                                                             : BW_EINVAL;
}

static const bw_behaviour_t cd_dict_behaviour = {
    .name = "bench.concdict.dictionary",
    .state_size = sizeof(cd_dict_t),
    .init = cd_dict_init,
    .handle = cd_dict_handle,
    .terminate = cd_dict_terminate,
};

/* --- worker -------------------------------------------------------------- */

typedef struct cd_worker_arg {
  cd_shared_t *sh;
  uint64_t idx;
} cd_worker_arg_t;

typedef struct cd_worker {
  cd_shared_t *sh;
  bench_slot_t *slot;
  uint64_t idx;
  uint64_t rng;
  uint64_t ref;
  cd_op_t op;                  /* the operation in flight */
  uint64_t last[CD_KEYS];      /* the value last written to each key */
  uint8_t has[CD_KEYS];        /* 1 once a key has been written */
} cd_worker_t;

static int cd_worker_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  cd_worker_t *w = state;
  const cd_worker_arg_t *a = arg;
  w->sh = a->sh;
  w->idx = a->idx;
  w->slot = &a->sh->slot[a->idx];
  w->rng = 0xC0FFEE + a->idx;
  return 0;
}

static int cd_next(bw_ctx_t *ctx, cd_worker_t *w)
{
  uint64_t k = bench_rand(&w->rng) % CD_KEYS;
  w->op.key = w->idx * CD_KEYS + k;
  w->op.write = bench_rand(&w->rng) % 100 < w->sh->write_pct;
  w->op.value = w->op.write ? bench_rand(&w->rng) : 0;
  return bw_request(ctx, w->sh->dict, CD_OP, &w->op, sizeof w->op, 0, &w->ref);
}

static int cd_worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  cd_worker_t *w = state;
  w->slot->msgs++;
  int rc;
  if (msg->type == CD_START) {
    rc = cd_next(ctx, w);
  } else if ((msg->flags & BW_MSGF_REPLY) && msg->ref == w->ref) {
    cd_answer_t ans;
    if (msg->status != 0 || msg->len != sizeof ans) {
      bench_note(ctx, w->sh->coord, CD_DONE, "worker %" PRIu64
                 ": request failed: %s", w->idx, bw_strerror(msg->status));
      return BW_CONTINUE;
    }
    memcpy(&ans, msg->data, sizeof ans);
    uint64_t k = w->op.key - w->idx * CD_KEYS;
    bool ok = w->op.write ? (ans.found && ans.value == w->op.value)
                          : (w->has[k] ? ans.found && ans.value == w->last[k]
                                       : !ans.found);
    if (!ok) {
      bench_note(ctx, w->sh->coord, CD_DONE,
                 "worker %" PRIu64 ": key %" PRIu64 " %s a wrong answer",
                 w->idx, w->op.key, w->op.write ? "write" : "read");
      return BW_CONTINUE;
    }
    if (w->op.write) {
      w->last[k] = w->op.value;
      w->has[k] = 1;
    }
    if (++w->slot->work == w->sh->n)
      rc = bench_note(ctx, w->sh->coord, CD_DONE, NULL);
    else
      rc = cd_next(ctx, w);
  } else {
    return BW_EINVAL;
  }
  if (rc != 0)
    bench_note(ctx, w->sh->coord, CD_DONE, "worker %" PRIu64 ": %s", w->idx,
               bw_strerror(rc));
  return BW_CONTINUE;
}

static const bw_behaviour_t cd_worker_behaviour = {
    .name = "bench.concdict.worker",
    .state_size = sizeof(cd_worker_t),
    .init = cd_worker_init,
    .handle = cd_worker_handle,
};

/* --- coordinator --------------------------------------------------------- */

typedef struct cd_coord {
  cd_shared_t *sh;
  uint64_t done;
  bench_waiter_t waiter;
} cd_coord_t;

static int cd_coord_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ((cd_coord_t *)state)->sh = arg;
  return 0;
}

static int cd_coord_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  cd_coord_t *c = state;
  c->sh->coord_msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < c->sh->workers; i++) {
      int rc = bw_send(bw_ctx_runtime(ctx), c->sh->worker[i], CD_START, NULL, 0);
      if (rc != 0) {
        bench_waiter_fail(&c->waiter, ctx, "bw_send: %s", bw_strerror(rc));
        break;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type == CD_DONE) {
    bench_note_t note;
    if (msg->len != sizeof note)
      return BW_EINVAL;
    memcpy(&note, msg->data, sizeof note);
    if (note.error[0] || ++c->done == c->sh->workers)
      bench_waiter_note(&c->waiter, ctx, msg);
    return BW_CONTINUE;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t cd_coord_behaviour = {
    .name = "bench.concdict.coordinator",
    .state_size = sizeof(cd_coord_t),
    .init = cd_coord_init,
    .handle = cd_coord_handle,
};

static int cd_run(bench_run_t *r)
{
  cd_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.workers = bench_param(r, "workers");
  sh.write_pct = bench_param(r, "write_pct");
  sh.worker = calloc(sh.workers, sizeof *sh.worker);
  sh.slot = bench_slots(sh.workers + 1);
  int ret = -1;
  if (!sh.worker || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  int rc = bw_spawn(rt, &cd_dict_behaviour, &sh, NULL, &sh.dict);
  if (rc == 0)
    rc = bw_spawn(rt, &cd_coord_behaviour, &sh, NULL, &sh.coord);
  for (uint64_t i = 0; rc == 0 && i < sh.workers; i++) {
    cd_worker_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &cd_worker_behaviour, &a, NULL, &sh.worker[i]);
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
  uint64_t handled = sh.coord_msgs + sh.slot[sh.workers].msgs;
  for (uint64_t i = 0; i < sh.workers; i++) {
    if (sh.slot[i].work != sh.n) {
      bench_fail(r, "worker %" PRIu64 " did %" PRIu64 " operations, not %"
                 PRIu64, i, sh.slot[i].work, sh.n);
      goto out;
    }
    handled += sh.slot[i].msgs;
  }
  if (sh.slot[sh.workers].work != sh.n * sh.workers) {
    bench_fail(r, "the dictionary served %" PRIu64 " operations, not %" PRIu64,
               sh.slot[sh.workers].work, sh.n * sh.workers);
    goto out;
  }
  if (sh.dict_size > CD_KEYS * sh.workers) {
    bench_fail(r, "the dictionary holds %" PRIu64 " keys, more than %" PRIu64,
               sh.dict_size, CD_KEYS * sh.workers);
    goto out;
  }
  if (bench_check_stats(r, &st, handled, sh.workers + 2) != 0)
    goto out;
  ret = bench_rate(r, &done, sh.n * sh.workers);
out:
  free(sh.worker);
  free(sh.slot);
  return ret;
}

const bench_t bench_concdict = {
    .name = "concdict",
    .group = "savina",
    .unit = "ops/s",
    .higher_is_better = true,
    .summary = "workers read and write a dictionary actor by request/reply",
    .params = {{"n", 10000, 2000, 1, UINT64_C(1) << 32,
                "operations per worker"},
               {"workers", 20, 20, 1, 100000, "worker actors"},
               {"write_pct", 10, 10, 0, 100, "percent of operations that write"}},
    .run = cd_run,
};
