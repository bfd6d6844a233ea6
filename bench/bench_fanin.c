/*
 * fanin_p1, fanin_p4: Savina's "counting", widened. 1 (or 4) producer actors
 * send n messages in all to one counting actor with an unbounded mailbox.
 *
 * This is the mailbox's throughput: many messages in flight, one consumer,
 * with fanin_p4 adding contention between concurrent senders on one
 * mailbox. Producers are actors and play fair with the scheduler: each turn
 * sends `chunk` messages, then a "continue" to itself, so they never hold a
 * worker thread for the whole run. Measured from the counter receiving GO
 * to the counter having counted n; each message carries its producer and
 * sequence number, and the counter checks every producer's order.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FANIN_MAX_PRODUCERS 4

enum {
  FI_COUNT = BENCH_MSG_USER, /* producer -> counter; producer << 56 | seq */
  FI_START,                  /* counter -> producer */
  FI_CONT,                   /* producer -> itself */
  FI_FAIL,                   /* producer -> counter; bench_note_t */
};

#define FI_SEQ_BITS 56
#define FI_SEQ_MASK ((UINT64_C(1) << FI_SEQ_BITS) - 1)

typedef struct fi_shared {
  uint64_t n, chunk;
  unsigned producers;
  bw_pid_t counter;
  bw_pid_t producer[FANIN_MAX_PRODUCERS];
  /* [0] = counter (work = messages counted); [1 + i] = producer i (work =
   * messages sent) */
  bench_slot_t slot[1 + FANIN_MAX_PRODUCERS];
} fi_shared_t;

/* Producer i sends n / producers, the first n % producers one more. */
static uint64_t fi_quota(const fi_shared_t *sh, unsigned i)
{
  return sh->n / sh->producers + (i < sh->n % sh->producers);
}

/* --- producer ----------------------------------------------------------- */

typedef struct fi_producer_arg {
  fi_shared_t *sh;
  unsigned idx;
} fi_producer_arg_t;

typedef struct fi_producer {
  fi_shared_t *sh;
  bench_slot_t *slot;
  uint64_t tag; /* idx << FI_SEQ_BITS */
  uint64_t seq; /* messages sent so far */
  uint64_t quota;
} fi_producer_t;

static int fi_producer_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fi_producer_t *p = state;
  const fi_producer_arg_t *a = arg;
  p->sh = a->sh;
  p->slot = &a->sh->slot[1 + a->idx];
  p->tag = (uint64_t)a->idx << FI_SEQ_BITS;
  p->quota = fi_quota(a->sh, a->idx);
  return 0;
}

static int fi_producer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fi_producer_t *p = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  p->slot->msgs++;
  if (msg->type != FI_START && msg->type != FI_CONT)
    return BW_EINVAL;

  uint64_t end = p->seq + p->sh->chunk;
  if (end > p->quota)
    end = p->quota;
  bw_pid_t counter = p->sh->counter;
  for (; p->seq < end; p->seq++) {
    uint64_t word = p->tag | p->seq;
    int rc = bw_send(rt, counter, FI_COUNT, &word, sizeof word);
    if (rc != 0) {
      bench_note_t note;
      memset(&note, 0, sizeof note);
      snprintf(note.error, sizeof note.error,
               "producer %u: bw_send of message %" PRIu64 ": %s",
               (unsigned)(p->tag >> FI_SEQ_BITS), p->seq, bw_strerror(rc));
      bw_send(rt, counter, FI_FAIL, &note, sizeof note);
      return BW_CONTINUE;
    }
  }
  p->slot->work = p->seq;
  if (p->seq < p->quota) {
    int rc = bw_send(rt, bw_self(ctx), FI_CONT, NULL, 0);
    if (rc != 0) {
      bench_note_t note;
      memset(&note, 0, sizeof note);
      snprintf(note.error, sizeof note.error,
               "producer %u: bw_send to itself: %s",
               (unsigned)(p->tag >> FI_SEQ_BITS), bw_strerror(rc));
      bw_send(rt, counter, FI_FAIL, &note, sizeof note);
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t fi_producer_behaviour = {
    .name = "bench.fanin.producer",
    .state_size = sizeof(fi_producer_t),
    .init = fi_producer_init,
    .handle = fi_producer_handle,
};

/* --- counter ------------------------------------------------------------ */

typedef struct fi_counter {
  fi_shared_t *sh;
  bench_slot_t *slot;
  uint64_t count;
  uint64_t n;
  uint64_t next[FANIN_MAX_PRODUCERS]; /* next sequence number expected */
  bool failed;
  bench_waiter_t waiter;
} fi_counter_t;

static int fi_counter_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fi_counter_t *c = state;
  c->sh = arg;
  c->slot = &c->sh->slot[0];
  c->n = c->sh->n;
  return 0;
}

static int fi_counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fi_counter_t *c = state;
  c->slot->msgs++;
  if (msg->type == FI_COUNT) {
    uint64_t word;
    if (c->failed)
      return BW_CONTINUE;
    if (msg->len != sizeof word) {
      c->failed = true;
      bench_waiter_fail(&c->waiter, ctx, "message with a bad payload");
      return BW_CONTINUE;
    }
    memcpy(&word, msg->data, sizeof word);
    unsigned p = (unsigned)(word >> FI_SEQ_BITS);
    uint64_t seq = word & FI_SEQ_MASK;
    if (p >= c->sh->producers || seq != c->next[p]) {
      c->failed = true;
      bench_waiter_fail(&c->waiter, ctx,
                        "producer %u's message %" PRIu64
                        " arrived when %" PRIu64 " was due (order broken)",
                        p, seq, p < FANIN_MAX_PRODUCERS ? c->next[p] : 0);
      return BW_CONTINUE;
    }
    c->next[p]++;
    if (++c->count == c->n) {
      c->slot->work = c->count;
      bench_waiter_ok(&c->waiter, ctx, bench_now_ns());
    }
    return BW_CONTINUE;
  }
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&c->waiter, msg) != 0)
      return BW_EINVAL;
    for (unsigned i = 0; i < c->sh->producers; i++) {
      int rc = bw_send(bw_ctx_runtime(ctx), c->sh->producer[i], FI_START,
                       NULL, 0);
      if (rc != 0) {
        c->failed = true;
        bench_waiter_fail(&c->waiter, ctx, "bw_send to producer %u: %s", i,
                          bw_strerror(rc));
        break;
      }
    }
    return BW_CONTINUE;
  }
  if (msg->type == FI_FAIL) {
    bench_note_t note;
    if (msg->len != sizeof note)
      return BW_EINVAL;
    memcpy(&note, msg->data, sizeof note);
    note.error[sizeof note.error - 1] = '\0';
    c->failed = true;
    bench_waiter_fail(&c->waiter, ctx, "%s", note.error);
    return BW_CONTINUE;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t fi_counter_behaviour = {
    .name = "bench.fanin.counter",
    .state_size = sizeof(fi_counter_t),
    .init = fi_counter_init,
    .handle = fi_counter_handle,
};

/* --- run ---------------------------------------------------------------- */

static int fi_run(bench_run_t *r, unsigned producers)
{
  fi_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.chunk = bench_param(r, "chunk");
  sh.producers = producers;

  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  /* The counter's mailbox is unbounded (the default): producers may run
   * ahead of it, and nothing may be lost. */
  int rc = bw_spawn(rt, &fi_counter_behaviour, &sh, NULL, &sh.counter);
  fi_producer_arg_t args[FANIN_MAX_PRODUCERS];
  for (unsigned i = 0; rc == 0 && i < producers; i++) {
    args[i].sh = &sh;
    args[i].idx = i;
    rc = bw_spawn(rt, &fi_producer_behaviour, &args[i], NULL, &sh.producer[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }

  bench_done_t done;
  int go = bench_go(r, rt, sh.counter, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;

  if (sh.slot[0].work != sh.n)
    return bench_fail(r, "counted %" PRIu64 " messages, expected %" PRIu64,
                      sh.slot[0].work, sh.n);
  uint64_t msgs = sh.slot[0].msgs;
  for (unsigned i = 0; i < producers; i++) {
    if (sh.slot[1 + i].work != fi_quota(&sh, i))
      return bench_fail(r, "producer %u sent %" PRIu64 ", expected %" PRIu64,
                        i, sh.slot[1 + i].work, fi_quota(&sh, i));
    msgs += sh.slot[1 + i].msgs;
  }
  if (bench_check_stats(r, &st, msgs, 1 + producers) != 0)
    return -1;
  return bench_rate(r, &done, sh.n);
}

static int fanin_p1_run(bench_run_t *r) { return fi_run(r, 1); }
static int fanin_p4_run(bench_run_t *r) { return fi_run(r, 4); }

#define FI_PARAMS                                                              \
  {{"n", 10000000, 1000000, 1, UINT64_C(1) << 40,                              \
    "messages counted, from all producers"},                                   \
   {"chunk", 1000, 1000, 1, 100000000,                                         \
    "messages a producer sends per turn before yielding"}}

const bench_t bench_fanin_p1 = {
    .name = "fanin_p1",
    .group = "runtime",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "1 producer actor floods a counting actor (mailbox throughput)",
    .params = FI_PARAMS,
    .run = fanin_p1_run,
};

const bench_t bench_fanin_p4 = {
    .name = "fanin_p4",
    .group = "runtime",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "4 producer actors flood one counting actor (contended mailbox)",
    .params = FI_PARAMS,
    .run = fanin_p4_run,
};
