/*
 * bulwark: nodes over NATS (include/bulwark/node.h; design in node/NODE.md):
 * starting, stopping and destroying a node, and the API on a running one.
 *
 * Subjects: "<cluster>.n.<id>" carries frames to node <id> (each node
 * subscribes to its own); "<cluster>.ctl" carries HELLO, HEARTBEAT and BYE
 * to everyone. One NATS connection per node, so frames from one node to
 * another arrive in the order they were published: per-pair order holds
 * because an actor runs on one thread at a time and publishes in program
 * order.
 *
 * The node layer is these files, one idea each (their shared state is
 * node_impl.h):
 *   opts.c        the options' defaults (built with or without libnats);
 *   node.c        this file: start, stop, destroy, the API;
 *   membership.c  which nodes are up, the cross-node links and monitors;
 *   frames_in.c   what arrives, applied;
 *   frames_out.c  the runtime's hook: messages and signals to other nodes;
 *   agent.c       the node actor: heartbeat, silence check, remote spawns;
 *   channel.c     numbered, acknowledged channels to each node;
 *   names.c       the cluster-wide name directory;
 *   wire.c        the frame format (built with or without libnats);
 *   node_none.c   built instead of the libnats files when libnats is
 *                 missing: bw_node_start says BW_ENOTSUP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bulwark/node.h"
#include "node/node_impl.h"
#include "node/node_internal.h"
#include "node/wire.h"
#include "runtime/internal.h"

const bw_reason_t *bw__node_noconnection(void) {
  static const bw_reason_t r = {.kind = BW_REASON_NOCONNECTION, .code = BW_ENOCONN,
                                .text = "node lost"};
  return &r;
}

void bw__node_copy_str(char *dst, size_t cap, const char *src) {
  size_t len = strnlen(src, cap - 1);
  memcpy(dst, src, len);
  dst[len] = '\0';
}

/* --- start, stop, destroy -------------------------------------------------- */

static void node_shutdown(node *n);

static void node_destroy(bw__runtime *rt, void *ud) {
  (void)rt;
  node *n = ud;
  node_shutdown(n);
  if (n->sub_data != NULL)
    natsSubscription_Destroy(n->sub_data);
  if (n->sub_ctl != NULL)
    natsSubscription_Destroy(n->sub_ctl);
  natsConnection_Destroy(n->nc);
  pthread_mutex_destroy(&n->mx);
  pthread_cond_destroy(&n->cv);
  for (unsigned i = 0; i < 256; i++) {
    pthread_mutex_destroy(&n->tx[i].mx);
    for (uint64_t s = n->tx[i].acked + 1; n->tx[i].ring != NULL && s < n->tx[i].next; s++)
      free(n->tx[i].ring[s & (n->tx[i].cap - 1)].big);
    free(n->tx[i].ring);
  }
  free(n->rels);
  free(n->names);
  free(n);
}

static int node_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref, void *ud);

static const bw__remote_ops node_ops = {.deliver = bw__node_deliver,
                                        .destroy = node_destroy,
                                        .can_move = bw__node_can_move,
                                        .spawn = node_spawn};

node *bw__node_of(bw__runtime *rt) {
  /* acquire: pairs with bw__remote_install's release */
  if (rt == NULL || BW__LD_ACQ(&rt->remote_ops) != &node_ops)
    return NULL;
  return rt->remote_ud;
}

bool bw__node_valid_token(const char *s, size_t max, bool dots_ok) {
  size_t len = s != NULL ? strnlen(s, max + 1) : 0;
  if (len == 0 || len > max)
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x21 || c > 0x7e || c == '*' || c == '>' || (!dots_ok && c == '.'))
      return false;
  }
  return true;
}

static int nats_code(natsStatus s) {
  switch (s) {
  case NATS_OK: return 0;
  case NATS_TIMEOUT: return BW_ETIMEDOUT;
  case NATS_NO_MEMORY: return BW_ENOMEM;
  case NATS_INVALID_ARG: return BW_EINVAL;
  default: return BW_ENOCONN;
  }
}

static natsStatus set_options(natsOptions *o, const bw_node_opts_t *opts) {
  natsStatus s = natsOptions_SetURL(o, opts->url);
  if (s == NATS_OK)
    s = natsOptions_SetName(o, opts->name);
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(o, opts->connect_timeout_ms ? opts->connect_timeout_ms : 5000);
  if (s == NATS_OK)
    s = natsOptions_SetNoEcho(o, true); /* our own heartbeats are not news */
  /* write each frame at once rather than on the flusher's next round
   * (which costs about a millisecond of latency per hop) */
  if (s == NATS_OK)
    s = natsOptions_SetSendAsap(o, !opts->batch_writes);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(o, -1); /* a server restart is waited out */
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(o, 100);
  if (s == NATS_OK && opts->token != NULL)
    s = natsOptions_SetToken(o, opts->token);
  if (s == NATS_OK && opts->user != NULL)
    s = natsOptions_SetUserInfo(o, opts->user, opts->password);
  if (s == NATS_OK && opts->creds_file != NULL)
    s = natsOptions_SetUserCredentialsFromFiles(o, opts->creds_file, NULL);
  bool tls = opts->secure || opts->ca_file != NULL || opts->cert_file != NULL;
  if (s == NATS_OK && tls)
    s = natsOptions_SetSecure(o, true);
  if (s == NATS_OK && opts->ca_file != NULL)
    s = natsOptions_LoadCATrustedCertificates(o, opts->ca_file);
  if (s == NATS_OK && opts->cert_file != NULL)
    s = natsOptions_LoadCertificatesChain(o, opts->cert_file, opts->key_file);
  return s;
}

int bw_node_start(bw_runtime_t *rt, const bw_node_opts_t *opts) {
  if (rt == NULL || opts == NULL || rt->node_id == 0 || opts->url == NULL ||
      !bw__node_valid_token(opts->name, BW__WIRE_NAME_MAX, true) ||
      !bw__node_valid_token(opts->cluster ? opts->cluster : "bulwark", 32, false) ||
      (opts->user == NULL) != (opts->password == NULL) ||
      (opts->key_file != NULL && opts->cert_file == NULL))
    return BW_EINVAL;
  if (!bw_may_block(rt))
    return BW_EWOULDBLOCK;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  if (BW__LD_ACQ(&rt->remote_ops) != NULL)
    return BW_EALREADY;
  node *n = calloc(1, sizeof(*n));
  if (n == NULL)
    return BW_ENOMEM;
  n->rt = rt;
  n->hb_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 250;
  n->misses = opts->heartbeat_misses ? opts->heartbeat_misses : 4;
  bw__node_copy_str(n->name, sizeof(n->name), opts->name);
  const char *cluster = opts->cluster ? opts->cluster : "bulwark";
  snprintf(n->ctl_subj, sizeof(n->ctl_subj), "%s.ctl", cluster);
  for (unsigned i = 1; i < 256; i++)
    snprintf(n->subj[i], sizeof(n->subj[i]), "%s.n.%u", cluster, i);
  /* an incarnation tells a restarted node from its earlier self */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  n->incarnation = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
                   ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)n;
  if (n->incarnation == 0)
    n->incarnation = 1;
  pthread_mutex_init(&n->mx, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&n->cv, &ca);
  pthread_condattr_destroy(&ca);
  for (unsigned i = 0; i < 256; i++) {
    pthread_mutex_init(&n->tx[i].mx, NULL);
    n->tx[i].epoch = bw__node_new_epoch();
    n->tx[i].next = 1;
  }
  n->state = N_RUNNING;

  natsOptions *o = NULL;
  natsStatus s = natsOptions_Create(&o);
  if (s == NATS_OK)
    s = set_options(o, opts);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(o, bw__node_on_reconnected, n);
  if (s == NATS_OK)
    s = natsConnection_Connect(&n->nc, o);
  natsOptions_Destroy(o);
  int rc = nats_code(s);
  if (rc == 0) {
    rc = bw__remote_install(rt, &node_ops, n);
  }
  if (rc != 0) {
    if (n->nc != NULL)
      natsConnection_Destroy(n->nc);
    pthread_mutex_destroy(&n->mx);
    pthread_cond_destroy(&n->cv);
    for (unsigned i = 0; i < 256; i++)
      pthread_mutex_destroy(&n->tx[i].mx);
    free(n);
    return rc;
  }
  /* installed: from here on node_destroy (bw_runtime_destroy) cleans up */
  s = natsConnection_Subscribe(&n->sub_data, n->nc, n->subj[rt->node_id], bw__node_on_msg, n);
  if (s == NATS_OK) {
    n->subs_live++;
    s = natsSubscription_SetOnCompleteCB(n->sub_data, bw__node_on_sub_complete, n);
  }
  /* no client-side limit on frames waiting for the callback: libnats would
   * drop the excess silently (a "slow consumer"); the callback only queues
   * into mailboxes, so the wait is short, and memory is the bound */
  if (s == NATS_OK)
    s = natsSubscription_SetPendingLimits(n->sub_data, -1, -1);
  if (s == NATS_OK)
    s = natsConnection_Subscribe(&n->sub_ctl, n->nc, n->ctl_subj, bw__node_on_msg, n);
  if (s == NATS_OK) {
    n->subs_live++;
    s = natsSubscription_SetOnCompleteCB(n->sub_ctl, bw__node_on_sub_complete, n);
  }
  if (s == NATS_OK)
    s = natsConnection_FlushTimeout(n->nc, opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                                    : 5000);
  if (s == NATS_OK) {
    bw_spawn_opts_t so;
    bw_spawn_opts_init(&so);
    so.name = "bw.node";
    rc = bw_spawn(rt, &bw__node_agent_behaviour, n, &so, &n->agent);
  } else {
    rc = nats_code(s);
  }
  if (rc != 0) {
    node_shutdown(n);
    return rc;
  }
  bw__node_publish_control(n, BW__WK_HELLO, 0);
  natsConnection_Flush(n->nc);
  return 0;
}

/* Stops the frames in and waits (bounded) until no subscription callback
 * can run any more. */
static void unsubscribe_all(node *n) {
  if (n->sub_data != NULL)
    natsSubscription_Unsubscribe(n->sub_data);
  if (n->sub_ctl != NULL)
    natsSubscription_Unsubscribe(n->sub_ctl);
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += 5;
  pthread_mutex_lock(&n->mx);
  while (n->subs_live > 0)
    if (pthread_cond_timedwait(&n->cv, &n->mx, &dl) != 0)
      break;
  pthread_mutex_unlock(&n->mx);
}

int bw__node_sever(bw_runtime_t *rt) {
  node *n = bw__node_of(rt);
  /* acq_rel CAS: one caller stops the node */
  if (n == NULL || !bw__cas32(&n->state, N_RUNNING, N_STOPPED))
    return BW_ESTATE;
  if (n->agent != BW_PID_NONE)
    bw_exit(n->rt, n->agent, BW_REASON_KILL, 0, NULL);
  bw__node_gates_open_all(n);
  unsubscribe_all(n);
  natsConnection_Close(n->nc);
  return 0;
}

/* Leaves: goodbye, no more frames in, every remote relation noconnection,
 * connection closed (the object stays for senders racing with us: their
 * publish fails and they dead-letter). Idempotent. */
static void node_shutdown(node *n) {
  uint32_t st = bw__ld32_acq(&n->state);
  /* acq_rel CAS: one caller shuts down */
  if (st != N_RUNNING || !bw__cas32(&n->state, N_RUNNING, N_STOPPED))
    return;
  if (n->agent != BW_PID_NONE)
    bw_exit(n->rt, n->agent, BW_REASON_KILL, 0, NULL);
  bw__node_gates_open_all(n);
  bw__node_publish_control(n, BW__WK_BYE, 0);
  natsConnection_FlushTimeout(n->nc, 1000);
  unsubscribe_all(n);
  for (unsigned id = 1; id < 256; id++)
    bw__node_lost(n, id, false, false);
  natsConnection_Close(n->nc);
}

int bw_node_stop(bw_runtime_t *rt) {
  if (rt == NULL)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL || bw__ld32_acq(&n->state) != N_RUNNING)
    return BW_ESTATE;
  if (!bw_may_block(rt))
    return BW_EWOULDBLOCK;
  node_shutdown(n);
  return 0;
}

int bw_node_wait(bw_runtime_t *rt, const char *name, uint64_t timeout_ms, unsigned *id) {
  if (rt == NULL || name == NULL || timeout_ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ESTATE;
  if (timeout_ms > 0 && !bw_may_block(rt))
    return BW_EWOULDBLOCK;
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  uint64_t ns = (uint64_t)dl.tv_nsec + (timeout_ms % 1000) * 1000000ull;
  dl.tv_sec += (time_t)(timeout_ms / 1000 + ns / 1000000000ull);
  dl.tv_nsec = (long)(ns % 1000000000ull);
  int rc = BW_ETIMEDOUT;
  pthread_mutex_lock(&n->mx);
  for (;;) {
    for (unsigned i = 1; i < 256; i++) {
      if (bw__ld32_rlx(&n->m[i].state) == M_UP && strcmp(n->m[i].name, name) == 0) {
        if (id != NULL)
          *id = i;
        rc = 0;
        break;
      }
    }
    if (rc == 0 || timeout_ms == 0 || bw__ld32_rlx(&n->state) != N_RUNNING)
      break;
    if (pthread_cond_timedwait(&n->cv, &n->mx, &dl) != 0)
      break;
  }
  pthread_mutex_unlock(&n->mx);
  return rc;
}

bool bw_node_connected(bw_runtime_t *rt, unsigned id) {
  node *n = bw__node_of(rt);
  return n != NULL && id > 0 && id < 256 && bw__ld32_acq(&n->state) == N_RUNNING &&
         bw__ld32_acq(&n->m[id].state) == M_UP;
}

int bw_node_serializer(bw_runtime_t *rt, uint32_t type, const bw_serializer_t *s) {
  if (rt == NULL || s == NULL || s->encode == NULL || s->decode == NULL ||
      type >= BW_MSG_SYSTEM_BASE)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ESTATE;
  int rc = 0;
  pthread_mutex_lock(&n->mx);
  uint32_t i = 0;
  while (i < n->nser && n->ser[i].type != type)
    i++;
  if (i < n->nser)
    rc = BW_EEXIST;
  else if (n->nser == SER_MAX)
    rc = BW_ELIMIT;
  else {
    n->ser[i].type = type;
    n->ser[i].s = *s;
    n->nser++;
  }
  pthread_mutex_unlock(&n->mx);
  return rc;
}

int bw_node_export(bw_runtime_t *rt, const char *name, const bw_behaviour_t *b) {
  if (rt == NULL || name == NULL || name[0] == '\0' || strlen(name) >= 64 || b == NULL ||
      b->handle == NULL)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ESTATE;
  int rc = 0;
  pthread_mutex_lock(&n->mx);
  uint32_t i = 0;
  while (i < n->nexports && strcmp(n->exports[i].name, name) != 0)
    i++;
  if (i < n->nexports)
    rc = n->exports[i].b == b ? 0 : BW_EEXIST;
  else if (n->nexports == EXPORTS_MAX)
    rc = BW_ELIMIT;
  else {
    bw__node_copy_str(n->exports[i].name, sizeof(n->exports[i].name), name);
    n->exports[i].b = b;
    n->nexports++;
  }
  pthread_mutex_unlock(&n->mx);
  return rc;
}

/* The hook's spawn (bw__remote_ops; the contract at bw__remote_spawn). */
static int node_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref, void *ud) {
  node *n = ud;
  if (rc == NULL || rc->behaviour == NULL || rc->arg_len > BW_REMOTE_ARG_MAX)
    return BW_EINVAL;
  size_t nl = strlen(rc->behaviour);
  if (nl == 0 || nl >= 64)
    return BW_EINVAL;
  bw_pid_t agent = BW_PID_NONE;
  pthread_mutex_lock(&n->mx);
  for (int k = 0; k < BW_REMOTE_NODES_MAX && rc->nodes[k] != NULL && agent == BW_PID_NONE; k++) {
    if (strcmp(rc->nodes[k], n->name) == 0 && bw__ld32_rlx(&n->state) == N_RUNNING) {
      agent = n->agent; /* this node is on the list: start it here */
      break;
    }
    for (unsigned id = 1; id < 256; id++) {
      if (bw__ld32_rlx(&n->m[id].state) == M_UP && n->m[id].agent != BW_PID_NONE &&
          strcmp(n->m[id].name, rc->nodes[k]) == 0) {
        agent = n->m[id].agent;
        break;
      }
    }
  }
  pthread_mutex_unlock(&n->mx);
  if (agent == BW_PID_NONE)
    return BW_ENOCONN;
  uint8_t buf[1 + 64 + BW_REMOTE_ARG_MAX];
  buf[0] = (uint8_t)nl;
  memcpy(buf + 1, rc->behaviour, nl);
  if (rc->arg_len > 0)
    memcpy(buf + 1 + nl, rc->arg, rc->arg_len);
  return bw_request(ctx, agent, T_SPAWN, buf, 1 + nl + rc->arg_len,
                    rc->timeout_ms ? rc->timeout_ms : 5000, ref);
}

int bw_node_stats(bw_runtime_t *rt, bw_node_stats_t *out) {
  if (rt == NULL || out == NULL)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ESTATE;
  memset(out, 0, sizeof(*out));
  out->frames_out = bw__ld64_rlx(&n->frames_out);
  out->frames_in = bw__ld64_rlx(&n->frames_in);
  out->bad_frames = bw__ld64_rlx(&n->bad_frames);
  out->unreachable = bw__ld64_rlx(&n->unreachable);
  out->nodes_up = bw__ld64_rlx(&n->nodes_up);
  out->nodes_lost = bw__ld64_rlx(&n->nodes_lost);
  for (unsigned i = 1; i < 256; i++)
    out->connected += bw__ld32_rlx(&n->m[i].state) == M_UP;
  pthread_mutex_lock(&n->mx);
  out->links = n->nrels;
  out->names = n->nnames;
  pthread_mutex_unlock(&n->mx);
  out->name_conflicts = bw__ld64_rlx(&n->name_conflicts);
  out->resent = bw__ld64_rlx(&n->resent);
  out->duplicates = bw__ld64_rlx(&n->duplicates);
  int64_t dropped = 0;
  if (n->sub_data != NULL && natsSubscription_GetDropped(n->sub_data, &dropped) == NATS_OK &&
      dropped > 0)
    out->frames_dropped = (uint64_t)dropped;
  return 0;
}
