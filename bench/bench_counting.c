/*
 * counting: Savina's counting actor. One producer sends n increments to a
 * counter, then asks it for its count (bw_request) and checks the answer
 * is exactly n.
 *
 * Unlike fanin_p1, the producer sends all n in one handler call, as
 * Savina's does, and the measured span ends with the request/reply round
 * trip that reads the count back: the figure includes draining the whole
 * backlog, not just enqueueing it.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
  CT_INC = BENCH_MSG_USER, /* producer -> counter; no payload */
  CT_GET,                  /* producer -> counter; a request */
};

typedef struct ct_shared {
  uint64_t n;
  bw_pid_t counter;
  bench_slot_t slot[2]; /* [0] producer (work = count read back), [1] counter */
} ct_shared_t;

static int ct_counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  ct_shared_t *sh = *(ct_shared_t **)state;
  bench_slot_t *slot = &sh->slot[1];
  slot->msgs++;
  if (msg->type == CT_INC) {
    slot->work++;
    return BW_CONTINUE;
  }
  if (msg->type == CT_GET) {
    uint64_t count = slot->work;
    return bw_reply(ctx, msg, 0, CT_GET, &count, sizeof count) == 0
               ? BW_CONTINUE
               : BW_EINVAL;
  }
  return BW_EINVAL;
}

static int ct_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  *(ct_shared_t **)state = arg;
  return 0;
}

static const bw_behaviour_t ct_counter_behaviour = {
    .name = "bench.counting.counter",
    .state_size = sizeof(ct_shared_t *),
    .init = ct_init,
    .handle = ct_counter_handle,
};

typedef struct ct_producer {
  ct_shared_t *sh;
  bench_waiter_t waiter;
  uint64_t ref;
} ct_producer_t;

static int ct_producer_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  ((ct_producer_t *)state)->sh = arg;
  return 0;
}

static int ct_producer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  ct_producer_t *p = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  p->sh->slot[0].msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&p->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < p->sh->n; i++) {
      int rc = bw_send(rt, p->sh->counter, CT_INC, NULL, 0);
      if (rc != 0) {
        bench_waiter_fail(&p->waiter, ctx, "bw_send of increment %" PRIu64
                                           ": %s",
                          i, bw_strerror(rc));
        return BW_CONTINUE;
      }
    }
    int rc = bw_request(ctx, p->sh->counter, CT_GET, NULL, 0, 0, &p->ref);
    if (rc != 0)
      bench_waiter_fail(&p->waiter, ctx, "bw_request: %s", bw_strerror(rc));
    return BW_CONTINUE;
  }
  if ((msg->flags & BW_MSGF_REPLY) && msg->ref == p->ref) {
    uint64_t count = 0;
    uint64_t t1 = bench_now_ns();
    if (msg->status != 0 || msg->len != sizeof count) {
      bench_waiter_fail(&p->waiter, ctx, "count request failed: %s",
                        bw_strerror(msg->status));
      return BW_CONTINUE;
    }
    memcpy(&count, msg->data, sizeof count);
    p->sh->slot[0].work = count;
    if (count != p->sh->n)
      bench_waiter_fail(&p->waiter, ctx,
                        "the counter counted %" PRIu64 ", expected %" PRIu64,
                        count, p->sh->n);
    else
      bench_waiter_ok(&p->waiter, ctx, t1);
    return BW_CONTINUE;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t ct_producer_behaviour = {
    .name = "bench.counting.producer",
    .state_size = sizeof(ct_producer_t),
    .init = ct_producer_init,
    .handle = ct_producer_handle,
};

static int ct_run(bench_run_t *r)
{
  ct_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    return -1;
  bw_pid_t producer;
  int rc = bw_spawn(rt, &ct_counter_behaviour, &sh, NULL, &sh.counter);
  if (rc == 0)
    rc = bw_spawn(rt, &ct_producer_behaviour, &sh, NULL, &producer);
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    return -1;
  }
  bench_done_t done;
  int go = bench_go(r, rt, producer, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    return -1;
  if (sh.slot[1].work != sh.n || sh.slot[0].work != sh.n)
    return bench_fail(r, "counter at %" PRIu64 ", read back %" PRIu64
                         ", expected %" PRIu64,
                      sh.slot[1].work, sh.slot[0].work, sh.n);
  if (bench_check_stats(r, &st, sh.slot[0].msgs + sh.slot[1].msgs, 2) != 0)
    return -1;
  return bench_rate(r, &done, sh.n);
}

const bench_t bench_counting = {
    .name = "counting",
    .group = "savina",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "1 producer sends n increments to a counter, reads the count back",
    .params = {{"n", 1000000, 200000, 1, UINT64_C(1) << 36,
                "increments sent"}},
    .run = ct_run,
};
