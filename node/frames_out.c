/*
 * bulwark: frames to other nodes: the runtime's remote-delivery hook
 * (node_ops in node.c), with the serializers that move payloads across,
 * and what is recorded of links and monitors on the way out. Sending on
 * a channel is channel.c's.
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

/* --- serializers (moved payloads) ---------------------------------------------- */

const bw_serializer_t *bw__node_serializer_of(node *n, uint32_t type) {
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
  const bw_serializer_t *s = bw__node_serializer_of(n, m->pub.type);
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

bool bw__node_can_move(bw__runtime *rt, uint32_t type, void *ud) {
  (void)rt;
  return bw__node_serializer_of(ud, type) != NULL;
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
    case BW__K_LINK: ok = bw__node_rel_add(n, R_LINK, m->pub.from, m->to, 0); break;
    case BW__K_UNLINK: bw__node_rel_del(n, R_LINK, m->pub.from, m->to, 0); break;
    case BW__K_EXIT:
      bw__node_rel_del(n, R_LINK, m->pub.from, m->to, 0); /* harmless if not a link exit */
      break;
    case BW__K_MONITOR: ok = bw__node_rel_add(n, R_MON_OUT, m->pub.from, m->to, m->pub.ref); break;
    case BW__K_DEMONITOR: bw__node_rel_del(n, R_MON_OUT, 0, 0, m->pub.ref); break;
    case BW__K_DOWN: bw__node_rel_del(n, R_MON_IN, 0, 0, m->pub.ref); break;
    default: break;
    }
  }
  pthread_mutex_unlock(&n->mx);
  return ok;
}

static void untrack_out(node *n, const bw__msg *m) {
  pthread_mutex_lock(&n->mx);
  if (m->kind == BW__K_LINK)
    bw__node_rel_del(n, R_LINK, m->pub.from, m->to, 0);
  else if (m->kind == BW__K_MONITOR)
    bw__node_rel_del(n, R_MON_OUT, 0, 0, m->pub.ref);
  pthread_mutex_unlock(&n->mx);
}

/* Not connected: a message is a dead letter (noconnection); a link or a
 * monitor is answered as a lost node's would be, so the caller learns of
 * it the same way whenever the loss happened. */
int bw__node_unreachable(node *n, bw__msg *m) {
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
    bw__exit_signal(rt, m->pub.from, m->to, bw__node_noconnection(), true);
  else if (kind == BW__K_MONITOR)
    bw__send_sys(rt, m->pub.from, m->to, BW__K_DOWN, m->pub.ref, bw__node_noconnection());
  bw__msg_free(rt, m);
  /* a monitor stands (bw_monitor keeps it, and the DOWN above settles it);
   * everything else reports the failure */
  return kind == BW__K_MONITOR ? 0 : BW_ENOCONN;
}

int bw__node_deliver(bw__runtime *rt, bw__msg *m, void *ud) {
  node *n = ud;
  unsigned id = BW__PID_NODE(m->to);
  uint8_t wk = wire_kind(m->kind);
  if (wk == 0) {
    bw__msg_free(rt, m); /* a local-only signal (wake, timeouts): never sent */
    return BW_ENOPROC;
  }
  /* acquire: pairs with the release stores of state and membership */
  if (bw__ld32_acq(&n->state) != N_RUNNING || bw__ld32_acq(&n->m[id].state) != M_UP)
    return bw__node_unreachable(n, m);
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
    return bw__node_unreachable(n, m);
  if (!bw__node_channel_send(n, id, &f, big, bigcap)) {
    free(big);
    if (signal)
      untrack_out(n, m);
    return bw__node_unreachable(n, m);
  }
  if (!signal) {
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
    bw__faa64(&rt->forwarded, 1);
  }
  bw__msg_free(rt, m);
  return 0;
}
