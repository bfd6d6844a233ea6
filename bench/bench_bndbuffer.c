/*
 * bndbuffer: Savina's bounded buffer. `producers` producers and
 * `consumers` consumers exchange items through one manager actor holding
 * a buffer of `buffer` items, like a bulkhead: back-pressure by credit. A
 * producer makes its next item only when the manager grants it a free
 * slot, so the buffer can never hold more than `buffer` items; consumers
 * ask for items and wait when the buffer is empty. Producing and consuming
 * an item each cost a small computation (bench_work), as in Savina.
 *
 * Checked: every item of every producer was consumed exactly once (a
 * bitmap), the consumers' checksums add up to the producers', and the
 * buffer never held more than `buffer` items.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  BB_PRODUCE = BENCH_MSG_USER, /* manager -> producer: one slot granted */
  BB_DATA,                     /* producer -> manager; bb_item_t */
  BB_WANT,                     /* consumer -> manager */
  BB_ITEM,                     /* manager -> consumer; bb_item_t */
};

#define BB_COST 25 /* rounds of bench_work to make or use an item */

typedef struct bb_item {
  uint64_t id;    /* producer * items + seq */
  uint64_t value; /* bench_work(id, BB_COST) */
} bb_item_t;

typedef struct bb_shared {
  uint64_t items, producers, consumers, buffer;
  bw_pid_t manager;
  bw_pid_t *producer, *consumer;
  bench_slot_t *slot; /* [producers + consumers + 1]: work = items, msgs */
  uint64_t *checksum; /* [consumers] */
  uint8_t *seen;      /* [producers * items] */
  uint64_t max_fill;
  bool duplicate;
} bb_shared_t;

typedef struct bb_arg {
  bb_shared_t *sh;
  uint64_t idx;
} bb_arg_t;

/* --- producer and consumer ---------------------------------------------- */

typedef struct bb_peer {
  bb_shared_t *sh;
  uint64_t idx;
  bench_slot_t *slot;
  uint64_t sum;
} bb_peer_t;

static int bb_producer_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bb_peer_t *p = state;
  const bb_arg_t *a = arg;
  p->sh = a->sh;
  p->idx = a->idx;
  p->slot = &a->sh->slot[a->idx];
  return 0;
}

static int bb_consumer_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bb_peer_t *p = state;
  const bb_arg_t *a = arg;
  p->sh = a->sh;
  p->idx = a->idx;
  p->slot = &a->sh->slot[a->sh->producers + a->idx];
  return 0;
}

static int bb_producer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bb_peer_t *p = state;
  p->slot->msgs++;
  if (msg->type != BB_PRODUCE || p->slot->work >= p->sh->items)
    return BW_EINVAL; /* a grant beyond its items: the manager is wrong */
  bb_item_t it;
  it.id = p->idx * p->sh->items + p->slot->work++;
  it.value = bench_work(it.id, BB_COST);
  return bw_send(bw_ctx_runtime(ctx), p->sh->manager, BB_DATA, &it, sizeof it);
}

static int bb_consumer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bb_peer_t *p = state;
  p->slot->msgs++;
  if (msg->type == BB_ITEM) {
    bb_item_t it;
    if (msg->len != sizeof it)
      return BW_EINVAL;
    memcpy(&it, msg->data, sizeof it);
    /* using an item costs as much as making it; the result is checked */
    if (bench_work(it.id, BB_COST) != it.value)
      return BW_EINVAL;
    p->sum += it.value;
    p->sh->checksum[p->idx] = p->sum;
    p->slot->work++;
  } else if (msg->type != BB_WANT) { /* BB_WANT from the manager: start */
    return BW_EINVAL;
  }
  /* the next request says whether this consumer has just used an item: the
   * manager counts the run done when the last item was used, not sent */
  uint8_t used = msg->type == BB_ITEM;
  return bw_send(bw_ctx_runtime(ctx), p->sh->manager, BB_WANT, &used, sizeof used);
}

static const bw_behaviour_t bb_producer_behaviour = {
    .name = "bench.bndbuffer.producer",
    .state_size = sizeof(bb_peer_t),
    .init = bb_producer_init,
    .handle = bb_producer_handle,
};

static const bw_behaviour_t bb_consumer_behaviour = {
    .name = "bench.bndbuffer.consumer",
    .state_size = sizeof(bb_peer_t),
    .init = bb_consumer_init,
    .handle = bb_consumer_handle,
};

/* --- manager (and coordinator) ------------------------------------------ */

/* A FIFO of pids, fixed capacity: each producer or consumer waits in it at
 * most once. */
typedef struct bb_fifo {
  bw_pid_t *v;
  uint64_t cap, head, len;
} bb_fifo_t;

static void fifo_push(bb_fifo_t *f, bw_pid_t p)
{
  f->v[(f->head + f->len++) % f->cap] = p;
}

static bw_pid_t fifo_pop(bb_fifo_t *f)
{
  bw_pid_t p = f->v[f->head];
  f->head = (f->head + 1) % f->cap;
  f->len--;
  return p;
}

typedef struct bb_manager {
  bb_shared_t *sh;
  bb_item_t *buf; /* ring of sh->buffer items */
  uint64_t head, fill;
  uint64_t credits;   /* buffer - fill - slots granted but not yet filled */
  bb_fifo_t producers; /* waiting for a slot */
  bb_fifo_t consumers; /* waiting for an item */
  uint64_t consumed, total;
  bool failed;
  bench_waiter_t waiter;
} bb_manager_t;

static int bb_manager_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bb_manager_t *m = state;
  m->sh = arg;
  m->buf = calloc(m->sh->buffer, sizeof *m->buf);
  m->producers.v = calloc(m->sh->producers, sizeof(bw_pid_t));
  m->producers.cap = m->sh->producers;
  m->consumers.v = calloc(m->sh->consumers, sizeof(bw_pid_t));
  m->consumers.cap = m->sh->consumers;
  m->credits = m->sh->buffer;
  m->total = m->sh->producers * m->sh->items;
  if (!m->buf || !m->producers.v || !m->consumers.v) {
    free(m->buf);
    free(m->producers.v);
    free(m->consumers.v);
    return BW_ENOMEM;
  }
  return 0;
}

static void bb_manager_terminate(bw_ctx_t *ctx, void *state,
                                 const bw_reason_t *reason)
{
  (void)ctx;
  (void)reason;
  bb_manager_t *m = state;
  free(m->buf);
  free(m->producers.v);
  free(m->consumers.v);
}

static int bb_fail(bw_ctx_t *ctx, bb_manager_t *m, int rc)
{
  m->failed = true;
  bench_waiter_fail(&m->waiter, ctx, "manager: bw_send: %s", bw_strerror(rc));
  return BW_CONTINUE;
}

/* Grants free slots to waiting producers, items to waiting consumers. */
static int bb_dispatch(bw_ctx_t *ctx, bb_manager_t *m)
{
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  while (m->fill && m->consumers.len) {
    bb_item_t it = m->buf[m->head];
    m->head = (m->head + 1) % m->sh->buffer;
    m->fill--;
    m->credits++;
    int rc = bw_send(rt, fifo_pop(&m->consumers), BB_ITEM, &it, sizeof it);
    if (rc != 0)
      return bb_fail(ctx, m, rc);
  }
  while (m->credits && m->producers.len) {
    m->credits--;
    int rc = bw_send(rt, fifo_pop(&m->producers), BB_PRODUCE, NULL, 0);
    if (rc != 0)
      return bb_fail(ctx, m, rc);
  }
  return BW_CONTINUE;
}

static int bb_manager_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bb_manager_t *m = state;
  bb_shared_t *sh = m->sh;
  bench_slot_t *slot = &sh->slot[sh->producers + sh->consumers];
  slot->msgs++;
  if (m->failed)
    return BW_CONTINUE;
  switch (msg->type) {
  case BENCH_MSG_GO:
    if (bench_waiter_arm(&m->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < sh->producers; i++)
      if (sh->items)
        fifo_push(&m->producers, sh->producer[i]);
    for (uint64_t i = 0; i < sh->consumers; i++) {
      int rc = bw_send(bw_ctx_runtime(ctx), sh->consumer[i], BB_WANT, NULL, 0);
      if (rc != 0)
        return bb_fail(ctx, m, rc);
    }
    return bb_dispatch(ctx, m);
  case BB_DATA: {
    bb_item_t it;
    if (msg->len != sizeof it || m->fill == sh->buffer)
      return BW_EINVAL; /* more items than slots granted */
    memcpy(&it, msg->data, sizeof it);
    if (it.id >= m->total || sh->seen[it.id]) {
      sh->duplicate = true;
      return BW_EINVAL;
    }
    sh->seen[it.id] = 1;
    m->buf[(m->head + m->fill++) % sh->buffer] = it;
    if (m->fill > sh->max_fill)
      sh->max_fill = m->fill;
    if ((it.id % sh->items) + 1 < sh->items)
      fifo_push(&m->producers, msg->from); /* it has more to make */
    slot->work++;
    return bb_dispatch(ctx, m);
  }
  case BB_WANT:
    if (msg->len == 1 && *(const uint8_t *)msg->data &&
        ++m->consumed == m->total)
      bench_waiter_ok(&m->waiter, ctx, bench_now_ns());
    fifo_push(&m->consumers, msg->from);
    return bb_dispatch(ctx, m);
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t bb_manager_behaviour = {
    .name = "bench.bndbuffer.manager",
    .state_size = sizeof(bb_manager_t),
    .init = bb_manager_init,
    .handle = bb_manager_handle,
    .terminate = bb_manager_terminate,
};

static int bb_run(bench_run_t *r)
{
  bb_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.items = bench_param(r, "items");
  sh.producers = bench_param(r, "producers");
  sh.consumers = bench_param(r, "consumers");
  sh.buffer = bench_param(r, "buffer");
  uint64_t total = sh.items * sh.producers;
  uint64_t nslots = sh.producers + sh.consumers + 1;
  sh.producer = calloc(sh.producers, sizeof *sh.producer);
  sh.consumer = calloc(sh.consumers, sizeof *sh.consumer);
  sh.checksum = calloc(sh.consumers, sizeof *sh.checksum);
  sh.seen = calloc(total ? total : 1, 1);
  sh.slot = bench_slots(nslots);
  int ret = -1;
  if (!sh.producer || !sh.consumer || !sh.checksum || !sh.seen || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  int rc = bw_spawn(rt, &bb_manager_behaviour, &sh, NULL, &sh.manager);
  for (uint64_t i = 0; rc == 0 && i < sh.producers; i++) {
    bb_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &bb_producer_behaviour, &a, NULL, &sh.producer[i]);
  }
  for (uint64_t i = 0; rc == 0 && i < sh.consumers; i++) {
    bb_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &bb_consumer_behaviour, &a, NULL, &sh.consumer[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  bench_done_t done;
  int go = bench_go(r, rt, sh.manager, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;

  uint64_t want = 0, got = 0, made = 0, used = 0, handled = 0;
  for (uint64_t id = 0; id < total; id++) {
    want += bench_work(id, BB_COST);
    if (!sh.seen[id]) {
      bench_fail(r, "item %" PRIu64 " never reached the buffer", id);
      goto out;
    }
  }
  for (uint64_t i = 0; i < sh.consumers; i++)
    got += sh.checksum[i];
  for (uint64_t i = 0; i < nslots; i++)
    handled += sh.slot[i].msgs;
  for (uint64_t i = 0; i < sh.producers; i++)
    made += sh.slot[i].work;
  for (uint64_t i = 0; i < sh.consumers; i++)
    used += sh.slot[sh.producers + i].work;
  if (made != total || used != total || got != want) {
    bench_fail(r, "made %" PRIu64 ", consumed %" PRIu64 " of %" PRIu64
               " items; checksum %s",
               made, used, total, got == want ? "right" : "WRONG");
    goto out;
  }
  if (sh.max_fill > sh.buffer) {
    bench_fail(r, "the buffer held %" PRIu64 " items, its bound is %" PRIu64,
               sh.max_fill, sh.buffer);
    goto out;
  }
  if (bench_check_stats(r, &st, handled, nslots) != 0)
    goto out;
  ret = bench_rate(r, &done, total);
out:
  free(sh.producer);
  free(sh.consumer);
  free(sh.checksum);
  free(sh.seen);
  free(sh.slot);
  return ret;
}

const bench_t bench_bndbuffer = {
    .name = "bndbuffer",
    .group = "savina",
    .unit = "items/s",
    .higher_is_better = true,
    .summary = "producers and consumers through a bounded buffer actor, "
               "back-pressure by credit",
    .params = {{"items", 1000, 500, 1, 100000000, "items per producer"},
               {"producers", 40, 40, 1, 100000, "producer actors"},
               {"consumers", 40, 40, 1, 100000, "consumer actors"},
               {"buffer", 50, 50, 1, 10000000, "buffer capacity, items"}},
    .run = bb_run,
};
