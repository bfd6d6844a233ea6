/*
 * bulwark: the node actor ("bw.node"): the heartbeat and the silence
 * check on an interval timer of the runtime's clock (so under the manual
 * clock a test decides when silence has lasted long enough), watches of
 * named pids, and the remote spawns of exported behaviours. Started by
 * bw_node_start (node.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "bulwark/node.h"
#include "node/node_impl.h"
#include "node/node_internal.h"
#include "node/wire.h"
#include "runtime/internal.h"

/* --- the node actor: heartbeat and silence check ------------------------- */

static void node_tick(node *n) {
  if (bw__ld32_acq(&n->state) != N_RUNNING)
    return;
  bw__node_publish_control(n, BW__WK_HEARTBEAT, 0);
  uint64_t tick = bw__faa64(&n->ticks, 1) + 1;
  for (unsigned id = 1; id < 256; id++) {
    txchan *t = &n->tx[id];
    if (bw__ld32_acq(&n->m[id].state) != M_UP)
      continue;
    pthread_mutex_lock(&t->mx);
    /* unacknowledged for a whole period: the frames or the ACK were lost */
    if (t->next - 1 > t->acked && tick - t->acked_at_tick >= 2) {
      bw__node_channel_resend(n, id, t, t->acked + 1);
      t->acked_at_tick = tick;
    }
    pthread_mutex_unlock(&t->mx);
  }
  uint64_t now = bw_now_ms(n->rt);
  uint64_t limit = (uint64_t)n->hb_ms * n->misses;
  for (unsigned id = 1; id < 256; id++) {
    if (bw__ld32_acq(&n->m[id].state) != M_UP)
      continue;
    uint64_t seen = bw__ld64_rlx(&n->m[id].last_seen_ms);
    if (now > seen && now - seen > limit)
      bw__node_lost(n, id, true, false);
  }
}

typedef struct agent_state {
  node *n;
} agent_state;

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  agent_state *s = state;
  s->n = arg;
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), s->n->hb_ms, T_TICK, NULL, 0,
                          NULL);
}

/* A supervisor on some node asks for a child here: payload = name length
 * (u8), exported behaviour name, init argument bytes. The child is linked
 * to the supervisor from both sides before anything else can happen to it,
 * and the answer comes from the child, after its LINK, so the supervisor
 * knows the pid before any exit of it can arrive. */
static void agent_spawn(bw_ctx_t *ctx, node *n, const bw_msg_t *msg) {
  bw__runtime *rt = n->rt;
  const uint8_t *p = msg->data;
  if (msg->len < 1 || msg->len < 1u + p[0] || p[0] == 0 || p[0] >= 64 || msg->from == BW_PID_NONE) {
    bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    return;
  }
  char name[64];
  memcpy(name, p + 1, p[0]);
  name[p[0]] = '\0';
  uint8_t arg[BW_REMOTE_ARG_MAX];
  size_t arg_len = msg->len - 1u - p[0];
  if (arg_len > sizeof arg) {
    bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    return;
  }
  memcpy(arg, p + 1 + p[0], arg_len);
  const bw_behaviour_t *b = NULL;
  pthread_mutex_lock(&n->mx);
  for (uint32_t i = 0; i < n->nexports; i++)
    if (strcmp(n->exports[i].name, name) == 0)
      b = n->exports[i].b;
  pthread_mutex_unlock(&n->mx);
  if (b == NULL) {
    bw_reply(ctx, msg, BW_ENOTFOUND, 0, NULL, 0);
    return;
  }
  bw_pid_t sup = msg->from, child;
  int rc = bw_spawn(rt, b, arg_len ? arg : NULL, NULL, &child);
  if (rc != 0) {
    bw_reply(ctx, msg, rc, 0, NULL, 0);
    return;
  }
  if (!bw__pid_is_local(rt, sup)) {
    pthread_mutex_lock(&n->mx);
    bw__node_rel_add(n, R_LINK, child, sup, 0);
    pthread_mutex_unlock(&n->mx);
  }
  bw__send_sys(rt, child, sup, BW__K_LINK, 0, NULL); /* the child's side */
  bw__send_sys(rt, sup, child, BW__K_LINK, 0, NULL); /* the supervisor's side */
  bw__msg *m = bw__msg_new(rt, sup, BW__K_USER, T_SPAWN, &child, sizeof child);
  if (m == NULL)
    return; /* the request's monitor on us does not fire: its deadline does */
  m->pub.from = child;
  m->pub.ref = msg->ref;
  m->pub.flags = BW_MSGF_REPLY;
  bw__deliver(rt, m, false);
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  agent_state *s = state;
  if (msg->type == T_SPAWN && (msg->flags & BW_MSGF_REQUEST)) {
    agent_spawn(ctx, s->n, msg);
  } else if (msg->type == T_TICK) {
    node_tick(s->n);
  } else if (msg->type == T_WATCH_NAME && msg->len == sizeof(bw_pid_t)) {
    bw_pid_t pid;
    uint64_t ref;
    memcpy(&pid, msg->data, sizeof pid);
    bw_monitor(ctx, pid, &ref); /* a DOWN comes, at once if already gone */
  } else if (msg->type == BW_MSG_DOWN) {
    bw__node_names_owner_down(s->n, msg->from);
  }
  return BW_CONTINUE;
}

/* The runtime is stopping (or the node): actors muted on a channel must
 * be able to run to their exit. */
static void agent_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)reason;
  bw__node_gates_open_all(((agent_state *)state)->n);
}

const bw_behaviour_t bw__node_agent_behaviour = {
    .name = "bw.node", .state_size = sizeof(agent_state), .init = agent_init,
    .handle = agent_handle, .terminate = agent_terminate,
    .never_muted = true}; /* the node agent keeps the cluster alive */
