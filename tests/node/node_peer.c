/*
 * A node process for tests/node/test_cluster.c (and the node benchmarks):
 *
 *   node_peer URL NAME ID [CLUSTER]
 *
 * Joins the cluster with the real clock, exports "rworker" (for remote
 * supervisors), and runs a supervised service actor registered cluster-wide
 * as "NAME.svc". It lives until its standard input closes (the test that
 * started it ends) or it is killed. Its figures go back to whoever asks
 * (T_REPORT), so the test process checks them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulwark/bulwark.h"
#include "tests/node/peer_proto.h"

static char svc_name[80];

typedef struct svc_state {
  peer_report_t r;
  uint32_t next_seq;
} svc_state;

#define SVC_REGISTER 99

static int svc_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  (void)arg;
  /* the name moves to each new incarnation of the service, once it runs */
  return bw_send(bw_ctx_runtime(ctx), bw_self(ctx), SVC_REGISTER, NULL, 0);
}

static int svc_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  svc_state *s = state;
  switch (msg->type) {
  case SVC_REGISTER:
    /* the last incarnation's name may still be on its way out: again soon */
    if (bw_node_register(bw_ctx_runtime(ctx), svc_name, bw_self(ctx)) == BW_EEXIST)
      bw_send_after(bw_ctx_runtime(ctx), bw_self(ctx), 20, SVC_REGISTER, NULL, 0, NULL);
    return BW_CONTINUE;
  case PEER_COUNT:
    s->r.count++;
    return BW_CONTINUE;
  case PEER_ECHO:
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, PEER_ECHO, msg->data, msg->len);
    return BW_CONTINUE;
  case PEER_SEQ: {
    uint32_t v;
    if (msg->len != sizeof v)
      return BW_CONTINUE;
    memcpy(&v, msg->data, sizeof v);
    if (v != s->next_seq)
      s->r.seq_bad++;
    s->next_seq = v + 1;
    s->r.seq_seen++;
    return BW_CONTINUE;
  }
  case PEER_REPORT:
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, PEER_REPORT, &s->r, sizeof s->r);
    return BW_CONTINUE;
  case PEER_CRASH:
    return BW_ECRASH;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t svc_b = {.name = "svc", .state_size = sizeof(svc_state),
                                     .init = svc_init, .handle = svc_handle};

static int rworker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == PEER_ECHO && (msg->flags & BW_MSGF_REQUEST))
    bw_reply(ctx, msg, 0, PEER_ECHO, msg->data, msg->len);
  return msg->type == PEER_CRASH ? BW_ECRASH : BW_CONTINUE;
}
static const bw_behaviour_t rworker_b = {.name = "rworker", .handle = rworker_handle};

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: node_peer URL NAME ID [CLUSTER]\n");
    return 2;
  }
  snprintf(svc_name, sizeof svc_name, "%s.svc", argv[2]);
  bw_runtime_opts_t ro;
  bw_runtime_opts_init(&ro);
  ro.workers = 2;
  ro.node_id = (unsigned)atoi(argv[3]);
  bw_runtime_t *rt = NULL;
  int rc = bw_runtime_create(&ro, &rt);
  if (rc != 0) {
    fprintf(stderr, "node_peer: runtime: %s\n", bw_strerror(rc));
    return 1;
  }
  bw_node_opts_t no;
  bw_node_opts_init(&no);
  no.url = argv[1];
  no.name = argv[2];
  no.cluster = argc > 4 ? argv[4] : "bwcluster";
  no.heartbeat_ms = 50;
  /* the test's own node runs a manual clock and is silent between its
   * steps: the peers never give up on it by silence (it says goodbye) */
  no.heartbeat_misses = 1000000;
  if ((rc = bw_node_start(rt, &no)) != 0 ||
      (rc = bw_node_export(rt, "rworker", &rworker_b)) != 0) {
    fprintf(stderr, "node_peer: node: %s\n", bw_strerror(rc));
    return 1;
  }
  static const bw_child_spec_t kids[] = {{.id = "svc", .behaviour = &svc_b}};
  static const bw_sup_spec_t spec = {.name = "peer", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 100, .period_ms = 1000,
                                     .children = kids, .nchildren = 1};
  bw_pid_t sup;
  bw_sup_error_t err;
  if ((rc = bw_supervisor_start(rt, &spec, &sup, &err)) != 0) {
    fprintf(stderr, "node_peer: supervisor: %s\n", err.message);
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  bw_runtime_destroy(rt);
  return 0;
}
