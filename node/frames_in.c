/*
 * bulwark: frames arriving from other nodes (node/NODE.md), applied: user
 * messages delivered (deserialized when a serializer moved them), link,
 * monitor, exit and down signals, spawn requests for the agent, and the
 * NATS callback that dispatches them. Control frames (HELLO, heartbeats,
 * BYE) go to membership.c, acknowledgements to channel.c, names to
 * names.c.
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

/* A serialized payload: rebuilt by this node's serializer for its type,
 * delivered as a moved payload; without one, a dead letter (undecodable). */
static bw__msg *deserialize(node *n, const bw__frame *f) {
  bw__runtime *rt = n->rt;
  const bw_serializer_t *s = bw__node_serializer_of(n, f->type);
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
      bw__node_rel_del(n, R_LINK, f->to, f->from, 0);
      pthread_mutex_unlock(&n->mx);
    }
    bw__exit_signal(rt, f->to, f->from, &f->reason, (f->flags & BW__WF_LINKEXIT) != 0);
    break;
  case BW__WK_DOWN:
    pthread_mutex_lock(&n->mx);
    bw__node_rel_del(n, R_MON_OUT, 0, 0, f->ref);
    pthread_mutex_unlock(&n->mx);
    bw__send_sys(rt, f->to, f->from, BW__K_DOWN, f->ref, &f->reason);
    break;
  case BW__WK_LINK: {
    pthread_mutex_lock(&n->mx);
    bool ok = bw__node_rel_add(n, R_LINK, f->to, f->from, 0);
    pthread_mutex_unlock(&n->mx);
    int rc = ok ? bw__send_sys(rt, f->to, f->from, BW__K_LINK, 0, NULL) : BW_ENOMEM;
    if (rc != 0) {
      pthread_mutex_lock(&n->mx);
      bw__node_rel_del(n, R_LINK, f->to, f->from, 0);
      pthread_mutex_unlock(&n->mx);
      /* as a dead local actor's link is answered: an exit, noproc */
      bw__exit_signal(rt, f->from, f->to, &noproc, true);
    }
    break;
  }
  case BW__WK_UNLINK:
    pthread_mutex_lock(&n->mx);
    bw__node_rel_del(n, R_LINK, f->to, f->from, 0);
    pthread_mutex_unlock(&n->mx);
    bw__send_sys(rt, f->to, f->from, BW__K_UNLINK, 0, NULL);
    break;
  case BW__WK_MONITOR: {
    pthread_mutex_lock(&n->mx);
    bool ok = bw__node_rel_add(n, R_MON_IN, f->to, f->from, f->ref);
    pthread_mutex_unlock(&n->mx);
    int rc = ok ? bw__send_sys(rt, f->to, f->from, BW__K_MONITOR, f->ref, NULL) : BW_ENOMEM;
    if (rc != 0) {
      pthread_mutex_lock(&n->mx);
      bw__node_rel_del(n, R_MON_IN, 0, 0, f->ref);
      pthread_mutex_unlock(&n->mx);
      bw__send_sys(rt, f->from, f->to, BW__K_DOWN, f->ref, &noproc);
    }
    break;
  }
  case BW__WK_DEMONITOR:
    pthread_mutex_lock(&n->mx);
    bw__node_rel_del(n, R_MON_IN, 0, 0, f->ref);
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
  bw__node_seen(n, f->src, 0, NULL, BW_PID_NONE);
  if (f->kind == BW__WK_USER)
    deliver_user(n, f);
  else if (f->kind == BW__WK_NAME_ADD || f->kind == BW__WK_NAME_DEL)
    bw__node_on_name(n, f);
  else
    on_signal(n, f);
}

void bw__node_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
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
      bw__node_on_control(n, &f);
    else
      on_data(n, &f);
  }
  natsMsg_Destroy(msg);
}

void bw__node_on_sub_complete(void *closure) {
  node *n = closure;
  pthread_mutex_lock(&n->mx);
  n->subs_live--;
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mx);
}
