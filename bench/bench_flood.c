/*
 * flood: `senders` actors flood one slow actor whose mailbox is bounded
 * (`capacity` messages, the reject policy). Each sender must get `n`
 * messages accepted; a send refused with BW_EFULL is counted and retried
 * on the sender's next turn (it sends itself a "continue" and yields, so
 * the sink gets the worker). The sink does `cost` rounds of work per
 * message. The figure is the accepted messages per second: what a bounded
 * mailbox sustains under overload, and what refusing costs.
 *
 * Checked exactly: the sink handled every sender's n messages in order;
 * the runtime's rejected counter equals the refusals the senders saw;
 * sent == handled + dead letters with no dead letter; and memory stays
 * bounded: the RSS growth over the run (sampled by the sink every 4096
 * messages, and at the end) stays below FLOOD_RSS_BASE + capacity *
 * FLOOD_RSS_PER_MSG. An unbounded mailbox would grow with n instead.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  FL_MSG = BENCH_MSG_USER, /* sender -> sink; sender << 40 | seq */
  FL_START,                /* sink -> sender */
  FL_CONT,                 /* sender -> itself */
  FL_FAIL,                 /* sender -> sink; bench_note_t */
};

#define FL_SEQ_BITS 40
#define FL_CHUNK 256 /* sends a sender tries per turn */
/* The RSS bound: fixed slack for allocator and thread arenas, plus a
 * generous 1 KiB per message the mailbox may hold. */
#define FLOOD_RSS_BASE (UINT64_C(32) << 20)
#define FLOOD_RSS_PER_MSG UINT64_C(1024)

typedef struct fl_shared {
  uint64_t n, senders, capacity, cost;
  bw_pid_t sink;
  bw_pid_t *sender;
  bench_slot_t *slot;  /* [senders + 1]: senders' work = accepted; sink */
  uint64_t *rejected;  /* [senders] refusals seen (written in the slot's actor) */
  uint64_t rss0, rss_peak;
  uint64_t sink_sum;
} fl_shared_t;

typedef struct fl_arg {
  fl_shared_t *sh;
  uint64_t idx;
} fl_arg_t;

typedef struct fl_sender {
  fl_shared_t *sh;
  uint64_t idx;
  bench_slot_t *slot;
  uint64_t rejected;
} fl_sender_t;

static int fl_sender_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fl_sender_t *s = state;
  const fl_arg_t *a = arg;
  s->sh = a->sh;
  s->idx = a->idx;
  s->slot = &a->sh->slot[a->idx];
  return 0;
}

static int fl_sender_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fl_sender_t *s = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  s->slot->msgs++;
  if (msg->type != FL_START && msg->type != FL_CONT)
    return BW_EINVAL;
  for (unsigned i = 0; i < FL_CHUNK && s->slot->work < s->sh->n; i++) {
    uint64_t word = s->idx << FL_SEQ_BITS | s->slot->work;
    int rc = bw_send(rt, s->sh->sink, FL_MSG, &word, sizeof word);
    if (rc == BW_EFULL) {
      s->rejected++;
      s->sh->rejected[s->idx] = s->rejected;
      break; /* full: yield, and try again next turn */
    }
    if (rc != 0) {
      bench_note(ctx, s->sh->sink, FL_FAIL, "sender %" PRIu64 ": %s", s->idx,
                 bw_strerror(rc));
      return BW_CONTINUE;
    }
    s->slot->work++;
  }
  if (s->slot->work < s->sh->n) {
    int rc = bw_send(rt, bw_self(ctx), FL_CONT, NULL, 0);
    if (rc != 0)
      bench_note(ctx, s->sh->sink, FL_FAIL, "sender %" PRIu64 ": %s", s->idx,
                 bw_strerror(rc));
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t fl_sender_behaviour = {
    .name = "bench.flood.sender",
    .state_size = sizeof(fl_sender_t),
    .init = fl_sender_init,
    .handle = fl_sender_handle,
};

typedef struct fl_sink {
  fl_shared_t *sh;
  uint64_t *next; /* [senders] next sequence number due */
  uint64_t count, total;
  bool failed;
  bench_waiter_t waiter;
} fl_sink_t;

static int fl_sink_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  fl_sink_t *k = state;
  k->sh = arg;
  k->total = k->sh->n * k->sh->senders;
  k->next = calloc(k->sh->senders, sizeof *k->next);
  return k->next ? 0 : BW_ENOMEM;
}

static void fl_sink_terminate(bw_ctx_t *ctx, void *state,
                              const bw_reason_t *reason)
{
  (void)ctx;
  (void)reason;
  free(((fl_sink_t *)state)->next);
}

static void fl_sample_rss(fl_shared_t *sh)
{
  uint64_t rss = bench_rss_bytes();
  if (rss > sh->rss_peak)
    sh->rss_peak = rss;
}

static int fl_sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  fl_sink_t *k = state;
  fl_shared_t *sh = k->sh;
  bench_slot_t *slot = &sh->slot[sh->senders];
  slot->msgs++;
  switch (msg->type) {
  case FL_MSG: {
    uint64_t word;
    if (k->failed || msg->len != sizeof word)
      return BW_CONTINUE;
    memcpy(&word, msg->data, sizeof word);
    uint64_t s = word >> FL_SEQ_BITS, seq = word & ((UINT64_C(1) << FL_SEQ_BITS) - 1);
    if (s >= sh->senders || seq != k->next[s]) {
      k->failed = true;
      bench_waiter_fail(&k->waiter, ctx, "sender %" PRIu64 "'s message %"
                        PRIu64 " out of order", s, seq);
      return BW_CONTINUE;
    }
    k->next[s]++;
    sh->sink_sum += bench_work(word, (unsigned)sh->cost); /* the slow part */
    slot->work = ++k->count;
    if ((k->count & 4095) == 0)
      fl_sample_rss(sh);
    if (k->count == k->total)
      bench_waiter_ok(&k->waiter, ctx, bench_now_ns());
    return BW_CONTINUE;
  }
  case BENCH_MSG_GO:
    if (bench_waiter_arm(&k->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < sh->senders; i++)
      if (bw_send(bw_ctx_runtime(ctx), sh->sender[i], FL_START, NULL, 0) != 0)
        return BW_EINVAL;
    return BW_CONTINUE;
  case FL_FAIL:
    k->failed = true;
    bench_waiter_note(&k->waiter, ctx, msg);
    return BW_CONTINUE;
  default:
    return BW_EINVAL;
  }
}

static const bw_behaviour_t fl_sink_behaviour = {
    .name = "bench.flood.sink",
    .state_size = sizeof(fl_sink_t),
    .init = fl_sink_init,
    .handle = fl_sink_handle,
    .terminate = fl_sink_terminate,
};

static int fl_run(bench_run_t *r)
{
  fl_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.senders = bench_param(r, "senders");
  sh.capacity = bench_param(r, "capacity");
  sh.cost = bench_param(r, "cost");
  sh.sender = calloc(sh.senders, sizeof *sh.sender);
  sh.rejected = calloc(sh.senders, sizeof *sh.rejected);
  sh.slot = bench_slots(sh.senders + 1);
  int ret = -1;
  if (!sh.sender || !sh.rejected || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  bw_spawn_opts_t opts;
  bw_spawn_opts_init(&opts);
  opts.mailbox_capacity = (uint32_t)sh.capacity;
  opts.overflow = BW_OVERFLOW_REJECT;
  int rc = bw_spawn(rt, &fl_sink_behaviour, &sh, &opts, &sh.sink);
  for (uint64_t i = 0; rc == 0 && i < sh.senders; i++) {
    fl_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &fl_sender_behaviour, &a, NULL, &sh.sender[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  sh.rss0 = bench_rss_bytes();
  bench_done_t done;
  int go = bench_go(r, rt, sh.sink, NULL, 0, &done);
  fl_sample_rss(&sh); /* main, after the answer: the sink is idle */
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;

  uint64_t accepted = 0, rejected = 0, handled = 0;
  for (uint64_t i = 0; i < sh.senders; i++) {
    if (sh.slot[i].work != sh.n) {
      bench_fail(r, "sender %" PRIu64 " got %" PRIu64 " accepted, not %" PRIu64,
                 i, sh.slot[i].work, sh.n);
      goto out;
    }
    accepted += sh.slot[i].work;
    rejected += sh.rejected[i];
    handled += sh.slot[i].msgs;
  }
  handled += sh.slot[sh.senders].msgs;
  if (sh.slot[sh.senders].work != accepted) {
    bench_fail(r, "the sink handled %" PRIu64 " of %" PRIu64 " accepted",
               sh.slot[sh.senders].work, accepted);
    goto out;
  }
  if (st.rejected != rejected) {
    bench_fail(r, "the runtime counted %" PRIu64 " rejected sends, the "
               "senders saw %" PRIu64, st.rejected, rejected);
    goto out;
  }
  uint64_t bound = FLOOD_RSS_BASE + sh.capacity * FLOOD_RSS_PER_MSG;
  if (sh.rss0 == 0 || sh.rss_peak == 0) {
    bench_fail(r, "cannot read /proc/self/statm");
    goto out;
  }
  if (sh.rss_peak > sh.rss0 && sh.rss_peak - sh.rss0 > bound) {
    bench_fail(r, "RSS grew by %" PRIu64 " KiB, over the bound of %" PRIu64
               " KiB for a %" PRIu64 "-message mailbox",
               (sh.rss_peak - sh.rss0) >> 10, bound >> 10, sh.capacity);
    goto out;
  }
  if (bench_check_stats(r, &st, handled, sh.senders + 1) != 0)
    goto out;
  ret = bench_rate(r, &done, accepted);
out:
  free(sh.sender);
  free(sh.rejected);
  free(sh.slot);
  return ret;
}

const bench_t bench_flood = {
    .name = "flood",
    .group = "runtime",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "senders flood a slow actor's bounded mailbox (reject policy); "
               "accepted msg/s",
    .params = {{"n", 500000, 100000, 1, UINT64_C(1) << 36,
                "messages each sender gets accepted"},
               {"senders", 8, 8, 1, 10000, "sender actors"},
               /* At least 2: bench_go's bw_call to the sink sends a
                * monitor (a system message, counted against the capacity
                * though never refused) before its request, so with a
                * capacity of 1 the runtime refuses the GO request itself
                * (BW_EFULL), reported to the runtime's maintainers. */
               {"capacity", 1000, 1000, 2, 100000000,
                "the sink's mailbox capacity, messages (at least 2)"},
               {"cost", 20, 20, 0, 100000,
                "rounds of work the sink does per message"}},
    .run = fl_run,
};
