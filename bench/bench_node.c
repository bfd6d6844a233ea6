/*
 * Node benchmarks (bulwark/node.h): two nodes on this machine, each a
 * runtime with its own NATS connection, through a private nats-server on a
 * free loopback port (started per run; Debian's nats-server package).
 *
 * remote_rtt: an actor on node 2 sends a ball to an actor on node 1, which
 *   sends it back, n times: microseconds per round trip (two frames each
 *   way's NATS publish and delivery, plus the channel's acknowledgements).
 * nats_rtt: the same machine, the same server, plain libnats: one
 *   connection answers requests on a subject, another makes n requests
 *   (natsConnection_Request), microseconds per round trip. The yardstick
 *   for remote_rtt: what the transport alone costs.
 * remote_fanin: `producers` actors on node 2 send n messages in all to one
 *   actor on node 1: messages per second, every one counted at the sink.
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_server.h"

#ifdef BW_HAVE_NATS
#include <nats/nats.h>
#endif

enum {
  ND_BALL = BENCH_MSG_USER, /* payload: uint64_t */
  ND_START,                 /* coordinator -> producers: go */
  ND_ITEM,                  /* producer -> sink */
};

#define ND_CLUSTER "bwbench"

static int node_pair(bench_run_t *r, bench_nats_t *srv, bw_runtime_t **a, bw_runtime_t **b,
                     bool batch) {
  *a = *b = NULL;
  if (bench_nats_start(r, srv) != 0)
    return -1;
  bw_runtime_t *rts[2] = {NULL, NULL};
  const char *names[2] = {"bench1", "bench2"};
  for (int i = 0; i < 2; i++) {
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    o.workers = r->workers;
    o.node_id = (unsigned)i + 1;
    o.log_level = BW_LOG_OFF; /* silent, as bench_runtime_create's */
    int rc = bw_runtime_create(&o, &rts[i]);
    if (rc != 0)
      return bench_fail(r, "bw_runtime_create: %s", bw_strerror(rc));
    bw_node_opts_t no;
    bw_node_opts_init(&no);
    no.name = names[i];
    no.url = srv->url;
    no.cluster = ND_CLUSTER;
    no.batch_writes = batch;
    if ((rc = bw_node_start(rts[i], &no)) != 0)
      return bench_fail(r, "bw_node_start: %s", bw_strerror(rc));
  }
  if (bw_node_wait(rts[0], "bench2", 10000, NULL) != 0 ||
      bw_node_wait(rts[1], "bench1", 10000, NULL) != 0)
    return bench_fail(r, "the nodes did not see each other");
  *a = rts[0];
  *b = rts[1];
  return 0;
}

static void node_pair_end(bench_nats_t *srv, bw_runtime_t *a, bw_runtime_t *b) {
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
  bench_nats_stop(srv);
}

/* --- remote_rtt ------------------------------------------------------------------ */

typedef struct rtt_state {
  bw_pid_t peer;
  uint64_t n, got;
  bench_waiter_t waiter;
} rtt_state_t;

typedef struct rtt_arg {
  bw_pid_t peer;
  uint64_t n;
} rtt_arg_t;

static int rtt_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  rtt_state_t *s = state;
  if (arg != NULL) {
    s->peer = ((rtt_arg_t *)arg)->peer;
    s->n = ((rtt_arg_t *)arg)->n;
  }
  return 0;
}

/* node 1: sends every ball back */
static int pong_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == ND_BALL)
    bw_send(bw_ctx_runtime(ctx), msg->from, ND_BALL, msg->data, msg->len);
  return BW_CONTINUE;
}

/* node 2: the coordinator, n round trips, each ball numbered */
static int ping_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  rtt_state_t *s = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  uint64_t ball = 0;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
  } else if (msg->type == ND_BALL && msg->len == sizeof ball) {
    memcpy(&ball, msg->data, sizeof ball);
    if (ball != s->got + 1) {
      bench_waiter_fail(&s->waiter, ctx, "ball %" PRIu64 " after %" PRIu64, ball, s->got);
      return BW_CONTINUE;
    }
    if (++s->got == s->n) {
      bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
      return BW_CONTINUE;
    }
  } else {
    return BW_CONTINUE;
  }
  ball = s->got + 1;
  int rc = bw_send(rt, s->peer, ND_BALL, &ball, sizeof ball);
  if (rc != 0)
    bench_waiter_fail(&s->waiter, ctx, "bw_send: %s", bw_strerror(rc));
  return BW_CONTINUE;
}

static const bw_behaviour_t pong_b = {.name = "bench.node.pong", .handle = pong_handle};
static const bw_behaviour_t ping_b = {.name = "bench.node.ping",
                                      .state_size = sizeof(rtt_state_t),
                                      .init = rtt_init,
                                      .handle = ping_handle};

static int remote_rtt_run(bench_run_t *r) {
  bench_nats_t srv = {0};
  bw_runtime_t *a, *b;
  int rc = node_pair(r, &srv, &a, &b, bench_param(r, "batch") != 0);
  if (rc == 0) {
    uint64_t n = bench_param(r, "n");
    bw_pid_t pong, ping;
    rtt_arg_t arg;
    if (bw_spawn(a, &pong_b, NULL, NULL, &pong) != 0)
      rc = bench_fail(r, "spawn pong");
    arg.peer = pong;
    arg.n = n;
    if (rc == 0 && bw_spawn(b, &ping_b, &arg, NULL, &ping) != 0)
      rc = bench_fail(r, "spawn ping");
    bench_done_t done;
    if (rc == 0 && (rc = bench_go(r, b, ping, NULL, 0, &done)) == 0) {
      r->seconds = (double)(done.t1_ns - done.t0_ns) / 1e9;
      r->work = n;
      r->value = r->seconds * 1e6 / (double)n;
    }
  }
  node_pair_end(&srv, a, b);
  return rc;
}

const bench_t bench_remote_rtt = {
    .name = "remote_rtt",
    .group = "nodes",
    .unit = "us",
    .higher_is_better = false,
    .summary = "round trip between actors on two nodes through nats-server (us)",
    .params = {{"n", 20000, 2000, 10, 100000000, "round trips"},
               {"batch", 0, 0, 0, 1, "1: the nodes batch their writes (bw_node_opts.batch_writes)"}},
    .run = remote_rtt_run,
};

/* --- nats_rtt ------------------------------------------------------------------------ */

#ifdef BW_HAVE_NATS
static void echo_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure) {
  (void)sub;
  (void)closure;
  const char *reply = natsMsg_GetReply(m);
  if (reply != NULL)
    natsConnection_Publish(nc, reply, natsMsg_GetData(m), natsMsg_GetDataLength(m));
  natsMsg_Destroy(m);
}
#endif

static int nats_rtt_run(bench_run_t *r) {
#ifndef BW_HAVE_NATS
  return bench_fail(r, "built without libnats");
#else
  bench_nats_t srv = {0};
  if (bench_nats_start(r, &srv) != 0)
    return -1;
  natsConnection *server_side = NULL, *client = NULL;
  natsSubscription *sub = NULL;
  int rc = 0;
  natsOptions *o = NULL;
  /* the fastest plain configuration: each publish written at once, as the
   * node layer does */
  if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, srv.url) != NATS_OK ||
      natsOptions_SetSendAsap(o, true) != NATS_OK)
    rc = bench_fail(r, "natsOptions");
  if (rc != 0 || natsConnection_Connect(&server_side, o) != NATS_OK ||
      natsConnection_Connect(&client, o) != NATS_OK ||
      natsConnection_Subscribe(&sub, server_side, "bench.echo", echo_cb, NULL) != NATS_OK ||
      natsConnection_Flush(server_side) != NATS_OK)
    rc = bench_fail(r, "could not set up the NATS connections");
  uint64_t n = bench_param(r, "n");
  if (rc == 0) {
    uint64_t ball;
    natsMsg *reply = NULL;
    /* warm the client's response subscription up before timing */
    if (natsConnection_Request(&reply, client, "bench.echo", &ball, sizeof ball, 5000) != NATS_OK)
      rc = bench_fail(r, "natsConnection_Request failed");
    natsMsg_Destroy(reply);
    uint64_t t0 = bench_now_ns();
    for (ball = 1; rc == 0 && ball <= n; ball++) {
      reply = NULL;
      if (natsConnection_Request(&reply, client, "bench.echo", &ball, sizeof ball, 5000) !=
          NATS_OK)
        rc = bench_fail(r, "natsConnection_Request failed at %" PRIu64, ball);
      else if (natsMsg_GetDataLength(reply) != sizeof ball ||
               memcmp(natsMsg_GetData(reply), &ball, sizeof ball) != 0)
        rc = bench_fail(r, "wrong answer at %" PRIu64, ball);
      natsMsg_Destroy(reply);
    }
    uint64_t t1 = bench_now_ns();
    if (rc == 0) {
      r->seconds = (double)(t1 - t0) / 1e9;
      r->work = n;
      r->value = r->seconds * 1e6 / (double)n;
    }
  }
  natsSubscription_Destroy(sub);
  natsOptions_Destroy(o);
  natsConnection_Destroy(client);
  natsConnection_Destroy(server_side);
  bench_nats_stop(&srv);
  return rc;
#endif
}

const bench_t bench_nats_rtt = {
    .name = "nats_rtt",
    .group = "nodes",
    .unit = "us",
    .higher_is_better = false,
    .summary = "plain NATS request/reply round trip, the yardstick for remote_rtt (us)",
    .params = {{"n", 20000, 2000, 10, 100000000, "round trips"}},
    .run = nats_rtt_run,
};

/* --- remote_fanin ------------------------------------------------------------------ */

typedef struct fan_arg {
  uint64_t per; /* messages each producer sends */
  bw_pid_t sink;
  const bw_pid_t *producers;
  uint32_t nproducers;
} fan_arg_t;

typedef struct fan_state {
  fan_arg_t a;
  uint64_t got, sent;
  bench_waiter_t waiter;
} fan_state_t;

static int fan_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((fan_state_t *)state)->a = *(fan_arg_t *)arg;
  return 0;
}

/* node 1: counts, answers GO when all arrived */
static int sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  fan_state_t *s = state;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&s->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint32_t i = 0; i < s->a.nproducers; i++)
      bw_send(bw_ctx_runtime(ctx), s->a.producers[i], ND_START, NULL, 0);
  } else if (msg->type == ND_ITEM) {
    if (++s->got == s->a.per * s->a.nproducers)
      bench_waiter_ok(&s->waiter, ctx, bench_now_ns());
  }
  return BW_CONTINUE;
}

/* node 2: sends its share, 256 per handler call (so back-pressure can mute it) */
static int producer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  fan_state_t *s = state;
  if (msg->type != ND_START)
    return BW_CONTINUE;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  for (int i = 0; i < 256 && s->sent < s->a.per; i++, s->sent++)
    if (bw_send(rt, s->a.sink, ND_ITEM, &s->sent, sizeof s->sent) != 0)
      return BW_ECRASH; /* the count at the sink then never completes: the run fails */
  if (s->sent < s->a.per)
    bw_send(rt, bw_self(ctx), ND_START, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t sink_b = {.name = "bench.node.sink", .state_size = sizeof(fan_state_t),
                                      .init = fan_init, .handle = sink_handle};
static const bw_behaviour_t producer_b = {.name = "bench.node.producer",
                                          .state_size = sizeof(fan_state_t),
                                          .init = fan_init, .handle = producer_handle};

static int remote_fanin_run(bench_run_t *r) {
  bench_nats_t srv = {0};
  bw_runtime_t *a, *b;
  int rc = node_pair(r, &srv, &a, &b, bench_param(r, "batch") != 0);
  uint32_t np = (uint32_t)bench_param(r, "producers");
  uint64_t n = bench_param(r, "n");
  bw_pid_t producers[16];
  if (rc == 0) {
    fan_arg_t pa = {.per = n / np, .nproducers = np, .producers = producers};
    bw_pid_t sink;
    /* the sink first (producers need its pid), then the producers, whose
     * pids the sink reads at GO */
    if (bw_spawn(a, &sink_b, &pa, NULL, &sink) != 0)
      rc = bench_fail(r, "spawn sink");
    pa.sink = sink;
    for (uint32_t i = 0; rc == 0 && i < np; i++)
      if (bw_spawn(b, &producer_b, &pa, NULL, &producers[i]) != 0)
        rc = bench_fail(r, "spawn producer");
    bench_done_t done;
    if (rc == 0 && (rc = bench_go(r, a, sink, NULL, 0, &done)) == 0)
      rc = bench_rate(r, &done, pa.per * np);
  }
  node_pair_end(&srv, a, b);
  return rc;
}

const bench_t bench_remote_fanin = {
    .name = "remote_fanin",
    .group = "nodes",
    .unit = "msg/s",
    .higher_is_better = true,
    .summary = "producers on one node to one actor on another, through nats-server",
    .params = {{"n", 1000000, 50000, 1000, 1000000000, "messages in all"},
               {"producers", 4, 4, 1, 16, "producer actors"},
               {"batch", 0, 0, 0, 1, "1: the nodes batch their writes (bw_node_opts.batch_writes)"}},
    .run = remote_fanin_run,
};
