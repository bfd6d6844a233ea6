/*
 * bulwark: nodes over NATS (include/bulwark/node.h; design in node/NODE.md).
 *
 * Subjects: "<cluster>.n.<id>" carries frames to node <id> (each node
 * subscribes to its own); "<cluster>.ctl" carries HELLO, HEARTBEAT and BYE
 * to everyone. One NATS connection per node, so frames from one node to
 * another arrive in the order they were published: per-pair order holds
 * because an actor runs on one thread at a time and publishes in program
 * order.
 *
 * Membership: a node is up from its first frame (a HELLO, a heartbeat, or
 * a message that overtook them on the other subscription), and lost when
 * silent for heartbeat_ms * heartbeat_misses on this node's runtime clock,
 * when it says BYE, when it tells us it declared us lost (DISCONNECT), or
 * when it comes back with a new incarnation (it restarted). The check runs
 * in the node's actor on an interval timer, so under the manual clock a
 * test decides exactly when silence has lasted long enough.
 *
 * Channels (numbering, acknowledgement, resending, back-pressure) are in
 * channel.c, the name directory in names.c; this file applies what arrives.
 *
 * Cross-node links and monitors are recorded here (a small table under a
 * mutex: only link, unlink, monitor, demonitor, exit and down frames take
 * it, never a plain message), so that when a node is lost every local
 * actor linked to or monitoring one of its actors gets its noconnection
 * signal, and monitors held by its actors on ours are dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulwark/node.h"
#include "node/node_internal.h"
#include "node/wire.h"
#include "runtime/internal.h"

void bw_node_opts_init(bw_node_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->cluster = "bulwark";
  opts->heartbeat_ms = 250;
  opts->heartbeat_misses = 4;
  opts->connect_timeout_ms = 5000;
}

#ifndef BW_HAVE_NATS

int bw_node_start(bw_runtime_t *rt, const bw_node_opts_t *opts) {
  if (rt == NULL || opts == NULL)
    return BW_EINVAL;
  return BW_ENOTSUP;
}
int bw_node_stop(bw_runtime_t *rt) { return rt == NULL ? BW_EINVAL : BW_ESTATE; }
int bw_node_wait(bw_runtime_t *rt, const char *name, uint64_t timeout_ms, unsigned *id) {
  (void)timeout_ms;
  (void)id;
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
bool bw_node_connected(bw_runtime_t *rt, unsigned id) {
  (void)rt;
  (void)id;
  return false;
}
int bw_node_stats(bw_runtime_t *rt, bw_node_stats_t *out) {
  return rt == NULL || out == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw__node_sever(bw_runtime_t *rt) {
  (void)rt;
  return BW_ESTATE;
}
int bw_node_register(bw_runtime_t *rt, const char *name, bw_pid_t pid) {
  (void)pid;
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_export(bw_runtime_t *rt, const char *name, const bw_behaviour_t *b) {
  return rt == NULL || name == NULL || b == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_serializer(bw_runtime_t *rt, uint32_t type, const bw_serializer_t *s) {
  (void)type;
  return rt == NULL || s == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw__node_remote_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref) {
  (void)ctx;
  (void)rc;
  (void)ref;
  return BW_ENOTSUP;
}
int bw_node_unregister(bw_runtime_t *rt, const char *name) {
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_whereis(bw_runtime_t *rt, const char *name, bw_pid_t *out) {
  return rt == NULL || name == NULL || out == NULL ? BW_EINVAL : BW_ESTATE;
}

#else

#include <nats/nats.h>

#include "node/node_impl.h"

static const bw_reason_t *noconnection(void) {
  static const bw_reason_t r = {.kind = BW_REASON_NOCONNECTION, .code = BW_ENOCONN,
                                .text = "node lost"};
  return &r;
}

static const bw_serializer_t *serializer_of(node *n, uint32_t type);

void bw__node_copy_str(char *dst, size_t cap, const char *src) {
  size_t len = strnlen(src, cap - 1);
  memcpy(dst, src, len);
  dst[len] = '\0';
}

bool bw__node_grow(void **arr, uint32_t *cap, uint32_t n, size_t elem) {
  if (n < *cap)
    return true;
  uint32_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, nc * elem);
  if (p == NULL)
    return false;
  *arr = p;
  *cap = nc;
  return true;
}

/* --- the relation table (under mx) ---------------------------------------- */

static rel *rel_find(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref) {
  for (uint32_t i = 0; i < n->nrels; i++) {
    rel *r = &n->rels[i];
    if (r->kind != kind)
      continue;
    if (kind == R_LINK ? (r->local == local && r->remote == remote) : r->ref == ref)
      return r;
  }
  return NULL;
}

static bool rel_add(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref) {
  if (rel_find(n, kind, local, remote, ref) != NULL)
    return true;
  if (!bw__node_grow((void **)&n->rels, &n->caprels, n->nrels, sizeof(rel)))
    return false;
  n->rels[n->nrels++] = (rel){.kind = kind, .local = local, .remote = remote, .ref = ref};
  return true;
}

static void rel_del(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref) {
  rel *r = rel_find(n, kind, local, remote, ref);
  if (r != NULL)
    *r = n->rels[--n->nrels];
}

/* --- publishing ------------------------------------------------------------ */

void bw__node_publish_control(node *n, uint8_t kind, unsigned dst) {
  bw__frame f;
  memset(&f, 0, sizeof(f));
  f.kind = kind;
  f.src = (uint8_t)n->rt->node_id;
  f.dst = (uint8_t)dst;
  f.from = n->agent; /* who starts remote children here */
  f.incarnation = n->incarnation;
  memcpy(f.name, n->name, sizeof(f.name));
  bw__node_publish(n, dst == 0 ? n->ctl_subj : n->subj[dst], &f);
}

static void node_event(node *n, int type, unsigned id, const char *name, int64_t b) {
  if (!bw_event_wanted(n->rt, type))
    return;
  bw_event_t ev = {.type = (uint32_t)type, .a = (int64_t)id, .b = b, .source = n->agent};
  bw_event_set_names(&ev, "bw.node", name, NULL);
  bw_event_publish(n->rt, &ev);
}

/* --- membership ----------------------------------------------------------- */

/* Marks id lost and delivers the noconnection signals. tell: send it a
 * DISCONNECT (we decided; it may not know yet). */
void bw__node_lost(node *n, unsigned id, bool tell, bool bye) {
  char name[BW__WIRE_NAME_MAX + 1];
  pthread_mutex_lock(&n->mx);
  if (bw__ld32_rlx(&n->m[id].state) != M_UP) {
    pthread_mutex_unlock(&n->mx);
    return;
  }
  /* release: senders that see LOST find its relations already taken */
  bw__st32_rel(&n->m[id].state, M_LOST);
  memcpy(name, n->m[id].name, sizeof(name));
  rel *gone = NULL;
  uint32_t ngone = 0;
  for (uint32_t i = 0; i < n->nrels;) {
    if (bw_pid_node(n->rels[i].remote) == id) {
      rel *p = realloc(gone, (ngone + 1) * sizeof(*p));
      if (p != NULL) {
        gone = p;
        gone[ngone++] = n->rels[i];
      }
      n->rels[i] = n->rels[--n->nrels];
    } else {
      i++;
    }
  }
  bw__node_names_drop_node(n, id);
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mx);
  bw__faa64(&n->nodes_lost, 1);
  bw__node_channel_reset(n, id);
  for (uint32_t i = 0; i < ngone; i++) {
    rel *r = &gone[i];
    if (r->kind == R_LINK)
      bw__exit_signal(n->rt, r->local, r->remote, noconnection(), true);
    else if (r->kind == R_MON_OUT)
      bw__send_sys(n->rt, r->local, r->remote, BW__K_DOWN, r->ref, noconnection());
    else
      bw__send_sys(n->rt, r->local, r->remote, BW__K_DEMONITOR, r->ref, NULL);
  }
  free(gone);
  if (tell)
    bw__node_publish_control(n, BW__WK_DISCONNECT, id);
  node_event(n, BW_EV_NODE_DOWN, id, name, bye ? 1 : 0);
}

/* A frame from id: up it comes (first sight, rejoin, or a restart, which is
 * the loss of the old incarnation first). inc = 0: a frame that does not
 * carry one (a message that overtook the HELLO). */
static void node_seen(node *n, unsigned id, uint64_t inc, const char *name, bw_pid_t agent) {
  member *mm = &n->m[id];
  bw__st64_rlx(&mm->last_seen_ms, bw_now_ms(n->rt)); /* relaxed: a timestamp */
  uint32_t st = bw__ld32_acq(&mm->state);
  if (st == M_UP && (inc == 0 || inc == mm->incarnation))
    return; /* the common case, lock-free (incarnation only changes here, on
               this node's frame-handling threads, under mx below) */
  pthread_mutex_lock(&n->mx);
  bool restarted = bw__ld32_rlx(&mm->state) == M_UP && inc != 0 && mm->incarnation != 0 &&
                   mm->incarnation != inc;
  pthread_mutex_unlock(&n->mx);
  if (restarted)
    bw__node_lost(n, id, false, false);
  pthread_mutex_lock(&n->mx);
  bool up = bw__ld32_rlx(&mm->state) != M_UP;
  if (inc != 0) {
    mm->incarnation = inc;
    mm->agent = agent;
    bw__node_copy_str(mm->name, sizeof(mm->name), name);
  } else if (up) {
    mm->incarnation = 0;
    snprintf(mm->name, sizeof(mm->name), "node%u", id);
  }
  /* release: its subject and name are set before senders see it up */
  bw__st32_rel(&mm->state, M_UP);
  char nm[BW__WIRE_NAME_MAX + 1];
  memcpy(nm, mm->name, sizeof(nm));
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mx);
  if (up) {
    bw__faa64(&n->nodes_up, 1);
    bw__node_names_send_all(n, id);
    node_event(n, BW_EV_NODE_UP, id, nm, 0);
  }
}

static void on_control(node *n, const bw__frame *f) {
  if (f->src == n->rt->node_id)
    return; /* another process with our id: misconfigured; ignored */
  switch (f->kind) {
  case BW__WK_HELLO: {
    node_seen(n, f->src, f->incarnation, f->name, f->from);
    bw__node_publish_control(n, BW__WK_HEARTBEAT, 0); /* so the newcomer learns us now */
    /* a HELLO from a node we know: it reconnected, and what we sent while
     * its subscription was gone may be lost: again, all of it */
    txchan *t = &n->tx[f->src];
    pthread_mutex_lock(&t->mx);
    if (t->next - 1 > t->acked)
      bw__node_channel_resend(n, f->src, t, t->acked + 1);
    pthread_mutex_unlock(&t->mx);
    break;
  }
  case BW__WK_HEARTBEAT:
    node_seen(n, f->src, f->incarnation, f->name, f->from);
    break;
  case BW__WK_BYE:
    if (f->incarnation == n->m[f->src].incarnation || n->m[f->src].incarnation == 0)
      bw__node_lost(n, f->src, false, true);
    break;
  default:
    break;
  }
}

/* --- frames in ------------------------------------------------------------ */

/* A serialized payload: rebuilt by this node's serializer for its type,
 * delivered as a moved payload; without one, a dead letter (undecodable). */
static bw__msg *deserialize(node *n, const bw__frame *f) {
  bw__runtime *rt = n->rt;
  const bw_serializer_t *s = serializer_of(n, f->type);
  void *ptr = NULL;
  size_t len = 0;
  void (*dtor)(void *) = NULL;
  if (s == NULL || s->decode(f->payload, f->len, &ptr, &len, &dtor) != 0 || len > UINT32_MAX) {
    if (ptr != NULL && dtor != NULL)
      dtor(ptr);
    bw__msg *note = bw__msg_new(rt, f->to, BW__K_USER, f->type, NULL, 0);
    if (note != NULL) {
      note->pub.from = f->from;
      bw__counters *c = bw__my_counters(rt);
      bw__ctr_add(rt, c, &c->sent, 1);
      bw__dead_letter(rt, note, BW_DL_UNDECODABLE);
    }
    return NULL;
  }
  bw__msg *m = bw__msg_alloc(rt, sizeof(bw__dtor_fn));
  if (m == NULL) {
    if (dtor != NULL)
      dtor(ptr);
    return NULL;
  }
  m->to = f->to;
  m->pub.type = f->type;
  m->pub.len = (uint32_t)len;
  m->pub.data = ptr;
  m->pub.flags = BW_MSGF_MOVED;
  bw__msg_set_dtor(m, dtor);
  return m;
}

static void deliver_user(node *n, const bw__frame *f) {
  bw__runtime *rt = n->rt;
  bw__msg *m = (f->flags & BW__WF_MOVED) ? deserialize(n, f)
                                         : bw__msg_new(rt, f->to, BW__K_USER, f->type, f->payload, f->len);
  if (m == NULL)
    return;
  m->pub.from = f->from;
  m->pub.ref = f->ref;
  m->pub.status = f->status;
  m->pub.flags |= f->flags & (BW_MSGF_REQUEST | BW_MSGF_REPLY);
  if (bw__deliver(rt, m, true) == BW_EFULL) {
    /* a full bounded mailbox: the sender cannot be told, so it is a dead
     * letter here (reason full), never a silent drop */
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
    bw__dead_letter(rt, m, BW_DL_FULL);
  }
}

static void on_signal(node *n, const bw__frame *f) {
  bw__runtime *rt = n->rt;
  bw_reason_t noproc;
  bw__reason_set(&noproc, BW_REASON_NOPROC, BW_ENOPROC, NULL);
  switch (f->kind) {
  case BW__WK_EXIT:
    if (f->flags & BW__WF_LINKEXIT) {
      pthread_mutex_lock(&n->mx);
      rel_del(n, R_LINK, f->to, f->from, 0);
      pthread_mutex_unlock(&n->mx);
    }
    bw__exit_signal(rt, f->to, f->from, &f->reason, (f->flags & BW__WF_LINKEXIT) != 0);
    break;
  case BW__WK_DOWN:
    pthread_mutex_lock(&n->mx);
    rel_del(n, R_MON_OUT, 0, 0, f->ref);
    pthread_mutex_unlock(&n->mx);
    bw__send_sys(rt, f->to, f->from, BW__K_DOWN, f->ref, &f->reason);
    break;
  case BW__WK_LINK: {
    pthread_mutex_lock(&n->mx);
    bool ok = rel_add(n, R_LINK, f->to, f->from, 0);
    pthread_mutex_unlock(&n->mx);
    int rc = ok ? bw__send_sys(rt, f->to, f->from, BW__K_LINK, 0, NULL) : BW_ENOMEM;
    if (rc != 0) {
      pthread_mutex_lock(&n->mx);
      rel_del(n, R_LINK, f->to, f->from, 0);
      pthread_mutex_unlock(&n->mx);
      /* as a dead local actor's link is answered: an exit, noproc */
      bw__exit_signal(rt, f->from, f->to, &noproc, true);
    }
    break;
  }
  case BW__WK_UNLINK:
    pthread_mutex_lock(&n->mx);
    rel_del(n, R_LINK, f->to, f->from, 0);
    pthread_mutex_unlock(&n->mx);
    bw__send_sys(rt, f->to, f->from, BW__K_UNLINK, 0, NULL);
    break;
  case BW__WK_MONITOR: {
    pthread_mutex_lock(&n->mx);
    bool ok = rel_add(n, R_MON_IN, f->to, f->from, f->ref);
    pthread_mutex_unlock(&n->mx);
    int rc = ok ? bw__send_sys(rt, f->to, f->from, BW__K_MONITOR, f->ref, NULL) : BW_ENOMEM;
    if (rc != 0) {
      pthread_mutex_lock(&n->mx);
      rel_del(n, R_MON_IN, 0, 0, f->ref);
      pthread_mutex_unlock(&n->mx);
      bw__send_sys(rt, f->from, f->to, BW__K_DOWN, f->ref, &noproc);
    }
    break;
  }
  case BW__WK_DEMONITOR:
    pthread_mutex_lock(&n->mx);
    rel_del(n, R_MON_IN, 0, 0, f->ref);
    pthread_mutex_unlock(&n->mx);
    bw__send_sys(rt, f->to, f->from, BW__K_DEMONITOR, f->ref, NULL);
    break;
  default:
    break;
  }
}

static void on_data(node *n, const bw__frame *f) {
  if (f->dst != n->rt->node_id || f->src == n->rt->node_id) {
    bw__faa64(&n->bad_frames, 1);
    return;
  }
  if (f->kind == BW__WK_DISCONNECT) {
    if (f->incarnation == n->m[f->src].incarnation || n->m[f->src].incarnation == 0)
      bw__node_lost(n, f->src, false, false);
    return;
  }
  if (f->kind == BW__WK_ACK || f->kind == BW__WK_NACK) {
    bw__node_on_ack(n, f);
    return;
  }
  /* the channel from f->src: in order, once */
  rxchan *r = &n->rx[f->src];
  if (f->epoch != r->epoch) {
    if (f->seq != 1) {
      /* the middle of a channel we never saw the start of: from 1, please */
      if (r->nacked != 1 || r->epoch != f->epoch) {
        r->epoch = f->epoch;
        r->expected = 1;
        r->nacked = 1;
        bw__node_channel_control(n, f->src, BW__WK_NACK, 1, f->epoch);
      }
      return;
    }
    r->epoch = f->epoch;
    r->expected = 1;
    r->nacked = 0;
    r->since_ack = 0;
  }
  if (f->seq < r->expected) {
    bw__faa64(&n->duplicates, 1);
    if (f->seq + 1 == r->expected || ++r->since_ack >= ACK_EVERY) {
      r->since_ack = 0; /* resent frames: say again how far we are */
      bw__node_channel_control(n, f->src, BW__WK_ACK, r->expected - 1, r->epoch);
    }
    return;
  }
  if (f->seq > r->expected) {
    if (r->nacked != r->expected) {
      r->nacked = r->expected;
      bw__node_channel_control(n, f->src, BW__WK_NACK, r->expected, r->epoch);
    }
    return;
  }
  r->expected++;
  int pending = 0, pending_bytes = 0;
  if (++r->since_ack >= ACK_EVERY ||
      (natsSubscription_GetPending(n->sub_data, &pending, &pending_bytes) == NATS_OK &&
       pending == 0)) {
    r->since_ack = 0;
    bw__node_channel_control(n, f->src, BW__WK_ACK, f->seq, r->epoch);
  }
  uint32_t st = bw__ld32_acq(&n->m[f->src].state);
  if (st == M_LOST) {
    /* a node we declared lost, still talking before it hears so: its
     * links are already broken; a message is a dead letter here */
    bw__faa64(&n->unreachable, 1);
    if (f->kind == BW__WK_USER) {
      bw__msg *m = bw__msg_new(n->rt, f->to, BW__K_USER, f->type, f->payload, f->len);
      if (m != NULL) {
        m->pub.from = f->from;
        bw__counters *c = bw__my_counters(n->rt);
        bw__ctr_add(n->rt, c, &c->sent, 1);
        bw__dead_letter(n->rt, m, BW_DL_NOCONNECTION);
      }
    }
    return;
  }
  node_seen(n, f->src, 0, NULL, BW_PID_NONE);
  if (f->kind == BW__WK_USER)
    deliver_user(n, f);
  else if (f->kind == BW__WK_NAME_ADD || f->kind == BW__WK_NAME_DEL)
    bw__node_on_name(n, f);
  else
    on_signal(n, f);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
  (void)nc;
  node *n = closure;
  bw__frame f;
  int len = natsMsg_GetDataLength(msg);
  int rc = bw__wire_decode((const uint8_t *)natsMsg_GetData(msg), len < 0 ? 0 : (size_t)len, &f);
  if (rc != 0) {
    bw__faa64(&n->bad_frames, 1);
  } else if (!bw__rt_running(n->rt) || bw__ld32_acq(&n->state) != N_RUNNING) {
    /* too late: counted, and a message goes to dead letters here */
    if (f.kind == BW__WK_USER && f.dst == n->rt->node_id) {
      bw__msg *m = bw__msg_new(n->rt, f.to, BW__K_USER, f.type, f.payload, f.len);
      if (m != NULL) {
        bw__counters *c = bw__my_counters(n->rt);
        bw__ctr_add(n->rt, c, &c->sent, 1);
        bw__dead_letter(n->rt, m, BW_DL_SHUTDOWN);
      }
    }
  } else {
    bw__faa64(&n->frames_in, 1);
    if (sub == n->sub_ctl)
      on_control(n, &f);
    else
      on_data(n, &f);
  }
  natsMsg_Destroy(msg);
}

static void on_sub_complete(void *closure) {
  node *n = closure;
  pthread_mutex_lock(&n->mx);
  n->subs_live--;
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mx);
}

/* --- frames out (the runtime's hook) --------------------------------------- */

/* --- serializers (moved payloads) ---------------------------------------------- */

static const bw_serializer_t *serializer_of(node *n, uint32_t type) {
  const bw_serializer_t *s = NULL;
  pthread_mutex_lock(&n->mx);
  for (uint32_t i = 0; i < n->nser; i++)
    if (n->ser[i].type == type)
      s = &n->ser[i].s;
  pthread_mutex_unlock(&n->mx);
  return s;
}

/* Writes m's moved payload into a new frame buffer after the header. */
static int serialize(node *n, const bw__msg *m, bw__frame *f, uint8_t **big, size_t *cap) {
  const bw_serializer_t *s = serializer_of(n, m->pub.type);
  if (s == NULL)
    return BW_EREMOTE; /* bw_send_move asked first; a race with nothing */
  uint8_t *buf = malloc(BW__WIRE_BIG_MAX);
  if (buf == NULL)
    return BW_ENOMEM;
  long w = s->encode(m->pub.data, m->pub.len, buf + BW__WIRE_HDR, BW__WIRE_MOVED_MAX);
  if (w < 0 || (unsigned long)w > BW__WIRE_MOVED_MAX) {
    free(buf);
    return w < 0 ? (int)w : BW_ETOOBIG;
  }
  f->flags |= BW__WF_MOVED;
  f->len = (uint32_t)w;
  f->payload = buf + BW__WIRE_HDR; /* in place: the encoder skips the copy */
  *big = buf;
  *cap = BW__WIRE_BIG_MAX;
  return 0;
}

static bool node_can_move(bw__runtime *rt, uint32_t type, void *ud) {
  (void)rt;
  return serializer_of(ud, type) != NULL;
}

static uint8_t wire_kind(int kind) {
  switch (kind) {
  case BW__K_USER: return BW__WK_USER;
  case BW__K_EXIT: return BW__WK_EXIT;
  case BW__K_DOWN: return BW__WK_DOWN;
  case BW__K_LINK: return BW__WK_LINK;
  case BW__K_UNLINK: return BW__WK_UNLINK;
  case BW__K_MONITOR: return BW__WK_MONITOR;
  case BW__K_DEMONITOR: return BW__WK_DEMONITOR;
  default: return 0;
  }
}

/* Records (or drops) the relation an outgoing signal makes or ends. Under
 * mx, with the target's node up (checked under the same lock), so a loss
 * either happens first (we see it) or later (it finds the record). */
static bool track_out(node *n, const bw__msg *m, unsigned id) {
  pthread_mutex_lock(&n->mx);
  bool up = bw__ld32_rlx(&n->m[id].state) == M_UP;
  bool ok = up;
  if (up) {
    switch (m->kind) {
    case BW__K_LINK: ok = rel_add(n, R_LINK, m->pub.from, m->to, 0); break;
    case BW__K_UNLINK: rel_del(n, R_LINK, m->pub.from, m->to, 0); break;
    case BW__K_EXIT:
      rel_del(n, R_LINK, m->pub.from, m->to, 0); /* harmless if not a link exit */
      break;
    case BW__K_MONITOR: ok = rel_add(n, R_MON_OUT, m->pub.from, m->to, m->pub.ref); break;
    case BW__K_DEMONITOR: rel_del(n, R_MON_OUT, 0, 0, m->pub.ref); break;
    case BW__K_DOWN: rel_del(n, R_MON_IN, 0, 0, m->pub.ref); break;
    default: break;
    }
  }
  pthread_mutex_unlock(&n->mx);
  return ok;
}

static void untrack_out(node *n, const bw__msg *m) {
  pthread_mutex_lock(&n->mx);
  if (m->kind == BW__K_LINK)
    rel_del(n, R_LINK, m->pub.from, m->to, 0);
  else if (m->kind == BW__K_MONITOR)
    rel_del(n, R_MON_OUT, 0, 0, m->pub.ref);
  pthread_mutex_unlock(&n->mx);
}

/* Not connected: a message is a dead letter (noconnection); a link or a
 * monitor is answered as a lost node's would be, so the caller learns of
 * it the same way whenever the loss happened. */
static int unreachable(node *n, bw__msg *m) {
  bw__runtime *rt = n->rt;
  bw__faa64(&n->unreachable, 1);
  if (m->kind == BW__K_USER) {
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
    bw__dead_letter(rt, m, BW_DL_NOCONNECTION);
    return BW_ENOCONN;
  }
  int kind = m->kind;
  if (kind == BW__K_LINK)
    bw__exit_signal(rt, m->pub.from, m->to, noconnection(), true);
  else if (kind == BW__K_MONITOR)
    bw__send_sys(rt, m->pub.from, m->to, BW__K_DOWN, m->pub.ref, noconnection());
  bw__msg_free(rt, m);
  /* a monitor stands (bw_monitor keeps it, and the DOWN above settles it);
   * everything else reports the failure */
  return kind == BW__K_MONITOR ? 0 : BW_ENOCONN;
}

static int node_deliver(bw__runtime *rt, bw__msg *m, void *ud) {
  node *n = ud;
  unsigned id = BW__PID_NODE(m->to);
  uint8_t wk = wire_kind(m->kind);
  if (wk == 0) {
    bw__msg_free(rt, m); /* a local-only signal (wake, timeouts): never sent */
    return BW_ENOPROC;
  }
  /* acquire: pairs with the release stores of state and membership */
  if (bw__ld32_acq(&n->state) != N_RUNNING || bw__ld32_acq(&n->m[id].state) != M_UP)
    return unreachable(n, m);
  bw__frame f;
  memset(&f, 0, sizeof(f));
  f.kind = wk;
  f.src = (uint8_t)rt->node_id;
  f.dst = (uint8_t)id;
  f.from = m->pub.from;
  f.to = m->to;
  f.ref = m->pub.ref;
  uint8_t *big = NULL;
  size_t bigcap = 0;
  if (wk == BW__WK_USER) {
    f.type = m->pub.type;
    f.status = m->pub.status;
    f.flags = m->pub.flags & (BW_MSGF_REQUEST | BW_MSGF_REPLY);
    f.len = m->pub.len;
    f.payload = m->pub.data;
    if (m->pub.flags & BW_MSGF_MOVED) {
      /* a pointer: its type's serializer writes it into the frame (the
       * frame is allocated: a moved payload is the large-message path) */
      int rc = serialize(n, m, &f, &big, &bigcap);
      if (rc != 0) {
        bw__counters *c = bw__my_counters(rt);
        bw__ctr_add(rt, c, &c->sent, 1);
        bw__dead_letter(rt, m, BW_DL_UNDECODABLE);
        return rc;
      }
    }
  } else if (wk == BW__WK_EXIT || wk == BW__WK_DOWN) {
    memcpy(&f.reason, m->inl, sizeof(f.reason));
    f.reason.text[BW_REASON_TEXT_MAX - 1] = '\0';
    if (wk == BW__WK_EXIT && (m->pub.flags & BW__MF_LINKEXIT))
      f.flags = BW__WF_LINKEXIT;
  }
  bool signal = wk != BW__WK_USER;
  if (signal && !track_out(n, m, id))
    return unreachable(n, m);
  if (!bw__node_channel_send(n, id, &f, big, bigcap)) {
    free(big);
    if (signal)
      untrack_out(n, m);
    return unreachable(n, m);
  }
  if (!signal) {
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
    bw__faa64(&rt->forwarded, 1);
  }
  bw__msg_free(rt, m);
  return 0;
}

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
    rel_add(n, R_LINK, child, sup, 0);
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

static const bw_behaviour_t agent_behaviour = {
    .name = "bw.node", .state_size = sizeof(agent_state), .init = agent_init,
    .handle = agent_handle, .terminate = agent_terminate,
    .never_muted = true}; /* the node agent keeps the cluster alive */

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

static const bw__remote_ops node_ops = {
    .deliver = node_deliver, .destroy = node_destroy, .can_move = node_can_move};

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
  s = natsConnection_Subscribe(&n->sub_data, n->nc, n->subj[rt->node_id], on_msg, n);
  if (s == NATS_OK) {
    n->subs_live++;
    s = natsSubscription_SetOnCompleteCB(n->sub_data, on_sub_complete, n);
  }
  /* no client-side limit on frames waiting for the callback: libnats would
   * drop the excess silently (a "slow consumer"); the callback only queues
   * into mailboxes, so the wait is short, and memory is the bound */
  if (s == NATS_OK)
    s = natsSubscription_SetPendingLimits(n->sub_data, -1, -1);
  if (s == NATS_OK)
    s = natsConnection_Subscribe(&n->sub_ctl, n->nc, n->ctl_subj, on_msg, n);
  if (s == NATS_OK) {
    n->subs_live++;
    s = natsSubscription_SetOnCompleteCB(n->sub_ctl, on_sub_complete, n);
  }
  if (s == NATS_OK)
    s = natsConnection_FlushTimeout(n->nc, opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                                    : 5000);
  if (s == NATS_OK) {
    bw_spawn_opts_t so;
    bw_spawn_opts_init(&so);
    so.name = "bw.node";
    rc = bw_spawn(rt, &agent_behaviour, n, &so, &n->agent);
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

int bw__node_remote_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref) {
  bw__runtime *rt = bw_ctx_runtime(ctx);
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ENOTSUP;
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

#endif /* BW_HAVE_NATS */
