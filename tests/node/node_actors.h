/*
 * Actors the node tests share (test_node.c, test_cluster.c):
 *
 * - a pump: sends `total` numbered messages of type `seq_type` to `target`,
 *   1,000 per handler call (so back-pressure can mute it between calls),
 *   counting refused sends in pump_failed;
 * - a watcher: traps exits; on T_WATCH / T_LINK with a pid it monitors /
 *   links to it (recording the call's code + 1000), and records the DOWN
 *   and EXIT it gets and their reasons.
 *
 * Included once per test program (static definitions).
 */
#ifndef BW_TESTS_NODE_ACTORS_H
#define BW_TESTS_NODE_ACTORS_H

#include <stdatomic.h>
#include <string.h>

#include "bulwark/bulwark.h"

enum { T_PUMP = 900, T_WATCH, T_LINK };

typedef struct pump_arg {
  bw_pid_t target;
  uint32_t total;
  uint32_t seq_type;
} pump_arg;

typedef struct pump_state {
  pump_arg a;
  uint32_t sent;
} pump_state;

static atomic_uint pump_failed;

static int pump_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((pump_state *)state)->a = *(pump_arg *)arg;
  return 0;
}

static int pump_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  pump_state *s = state;
  if (msg->type != T_PUMP)
    return BW_CONTINUE;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  for (int i = 0; i < 1000 && s->sent < s->a.total; i++, s->sent++)
    if (bw_send(rt, s->a.target, s->a.seq_type, &s->sent, sizeof s->sent) != 0)
      atomic_fetch_add(&pump_failed, 1);
  if (s->sent < s->a.total)
    bw_send(rt, bw_self(ctx), T_PUMP, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t pump_b = {.name = "pump", .state_size = sizeof(pump_state),
                                      .init = pump_init, .handle = pump_handle};

typedef struct watcher_rec {
  atomic_int downs, exits;
  atomic_int down_kind, exit_kind;
  atomic_int monitor_rc, link_rc;
} watcher_rec;

static int watcher_init(bw_ctx_t *ctx, void *state, void *arg) {
  *(watcher_rec **)state = arg;
  bw_trap_exit(ctx, true);
  return 0;
}

static int watcher_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  watcher_rec *r = *(watcher_rec **)state;
  bw_pid_t p;
  uint64_t ref;
  switch (msg->type) {
  case T_WATCH:
    memcpy(&p, msg->data, sizeof p);
    atomic_store(&r->monitor_rc, bw_monitor(ctx, p, &ref) + 1000);
    break;
  case T_LINK:
    memcpy(&p, msg->data, sizeof p);
    atomic_store(&r->link_rc, bw_link(ctx, p) + 1000);
    break;
  case BW_MSG_DOWN:
    atomic_store(&r->down_kind, ((const bw_reason_t *)msg->data)->kind);
    atomic_fetch_add(&r->downs, 1);
    break;
  case BW_MSG_EXIT:
    atomic_store(&r->exit_kind, ((const bw_reason_t *)msg->data)->kind);
    atomic_fetch_add(&r->exits, 1);
    break;
  default:
    break;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t watcher_b = {.name = "watcher", .state_size = sizeof(void *),
                                         .init = watcher_init, .handle = watcher_handle};

#endif
