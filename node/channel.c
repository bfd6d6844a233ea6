/*
 * bulwark: the node layer's channels (node/NODE.md, "Channels" and
 * "Back-pressure"). The receiving side is frames_in.c's on_data.
 *
 * Channels: frames to one node (messages, signals, names) carry a number
 * per (sender, receiver) pair and an epoch. NATS delivers at most once, and
 * a server restart can lose what it held, so the sender keeps each frame
 * until the receiver acknowledges it (ACK, cumulative, every 64 frames or
 * when its queue runs dry), and sends again what is not acknowledged: when
 * the receiver reports a gap (NACK), when the connection comes back, and
 * when a heartbeat period passes with no progress. The receiver applies
 * frames in number order exactly once and drops duplicates. A new epoch
 * (after a loss) starts again from 1. The remote send path takes one
 * mutex per destination (numbering and the resend buffer) and libnats's
 * connection lock; the local send path takes none. At most TX_MAX frames
 * per destination wait for acknowledgement; beyond that a send is refused
 * as unreachable (a dead letter, noconnection), never queued without bound.
 * Before that, back-pressure: from TX_HIGH unacknowledged frames on, an
 * actor that sends to that node is muted at the end of its handler call
 * (as one sending to an overloaded local actor is) until acknowledgements
 * bring it down to TX_LOW; threads that are not actors are not muted.
 * When a node is lost, its unacknowledged messages become dead letters here
 * (noconnection), so each message is counted once: delivered there, or
 * dead here.
 *
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/node_impl.h"

bool bw__node_publish(node *n, const char *subj, const bw__frame *f) {
  uint8_t buf[BW__WIRE_MAX];
  size_t len = bw__wire_encode(f, buf, sizeof buf);
  if (len == 0 || natsConnection_Publish(n->nc, subj, buf, (int)len) != NATS_OK)
    return false;
  bw__faa64(&n->frames_out, 1);
  return true;
}

uint32_t bw__node_new_epoch(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  static uint32_t salt; /* atomic */
  uint32_t e = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^
               bw__faa32(&salt, 0x9E3779B9u);
  return e != 0 ? e : 1;
}

/* Sends a frame on the channel to id: numbers it, keeps it until it is
 * acknowledged. False if it cannot (buffer full, connection closed). */
bool bw__node_channel_send(node *n, unsigned id, bw__frame *f, uint8_t *big, size_t bigcap) {
  txchan *t = &n->tx[id];
  pthread_mutex_lock(&t->mx);
  uint64_t inflight = t->next - 1 - t->acked;
  if (inflight >= t->cap) {
    uint32_t nc = t->cap ? t->cap * 2 : 64;
    txslot *r = nc <= TX_MAX ? malloc((size_t)nc * sizeof(*r)) : NULL;
    if (r == NULL) {
      pthread_mutex_unlock(&t->mx);
      return false;
    }
    for (uint64_t s = t->acked + 1; s < t->next; s++)
      r[s & (nc - 1)] = t->ring[s & (t->cap - 1)];
    free(t->ring);
    t->ring = r;
    t->cap = nc;
  }
  f->seq = t->next;
  f->epoch = t->epoch;
  txslot *slot = &t->ring[f->seq & (t->cap - 1)];
  uint8_t *out = big != NULL ? big : slot->buf;
  size_t len = bw__wire_encode(f, out, big != NULL ? bigcap : sizeof slot->buf);
  bool ok = len != 0 && natsConnection_Publish(n->nc, n->subj[id], out, (int)len) == NATS_OK;
  if (ok) {
    slot->seq = f->seq;
    slot->len = (uint32_t)len;
    slot->big = big; /* ours now */
    t->next++;
    bw__faa64(&n->frames_out, 1);
    /* relaxed: gates_off only ever goes 0 -> 1, and a late close is opened
     * again by whoever set it (node_shutdown opens every gate after) */
    if (inflight + 1 >= TX_HIGH && !bw__ld32_rlx(&n->gates_off)) {
      bw__st32_rel(&t->gate.closed, 1);
      bw__gate_wait(&t->gate);
    }
  }
  pthread_mutex_unlock(&t->mx);
  return ok;
}

void bw__node_gates_open_all(node *n) {
  bw__st32_rel(&n->gates_off, 1);
  for (unsigned id = 1; id < 256; id++) {
    pthread_mutex_lock(&n->tx[id].mx);
    bw__gate_open(n->rt, &n->tx[id].gate);
    pthread_mutex_unlock(&n->tx[id].mx);
  }
}

/* Sends again every unacknowledged frame from seq on (under t->mx). */
void bw__node_channel_resend(node *n, unsigned id, txchan *t, uint64_t from) {
  if (from <= t->acked)
    from = t->acked + 1;
  for (uint64_t s = from; s < t->next; s++) {
    txslot *slot = &t->ring[s & (t->cap - 1)];
    if (natsConnection_Publish(n->nc, n->subj[id], slot_frame(slot), (int)slot->len) != NATS_OK)
      break;
    bw__faa64(&n->resent, 1);
  }
}

void bw__node_channel_control(node *n, unsigned id, uint8_t kind, uint64_t seq, uint32_t epoch) {
  bw__frame f;
  memset(&f, 0, sizeof(f));
  f.kind = kind;
  f.src = (uint8_t)n->rt->node_id;
  f.dst = (uint8_t)id;
  f.seq = seq;
  f.epoch = epoch;
  bw__node_publish(n, n->subj[id], &f);
}

/* The channel to a lost node starts over: its unacknowledged messages are
 * dead letters here (they were counted as forwarded: no longer). */
void bw__node_channel_reset(node *n, unsigned id) {
  txchan *t = &n->tx[id];
  pthread_mutex_lock(&t->mx);
  for (uint64_t s = t->acked + 1; s < t->next; s++) {
    txslot *slot = &t->ring[s & (t->cap - 1)];
    bw__frame f;
    int bad = bw__wire_decode(slot_frame(slot), slot->len, &f);
    free(slot->big);
    slot->big = NULL;
    if (bad != 0 || f.kind != BW__WK_USER)
      continue;
    /* a serialized payload is gone with the frame: the notice has none */
    bool moved = (f.flags & BW__WF_MOVED) != 0;
    bw__msg *m = bw__msg_new(n->rt, f.to, BW__K_USER, f.type, moved ? NULL : f.payload,
                             moved ? 0 : f.len);
    if (m == NULL)
      continue;
    m->pub.from = f.from;
    m->pub.ref = f.ref;
    m->pub.flags = f.flags & (BW_MSGF_REQUEST | BW_MSGF_REPLY);
    bw__faa64(&n->rt->forwarded, (uint64_t)-1);
    bw__faa64(&n->unreachable, 1);
    bw__dead_letter(n->rt, m, BW_DL_NOCONNECTION);
  }
  t->epoch = bw__node_new_epoch();
  t->next = 1;
  t->acked = 0;
  bw__gate_open(n->rt, &t->gate); /* nothing to wait for any more */
  pthread_mutex_unlock(&t->mx);
}

void bw__node_on_ack(node *n, const bw__frame *f) {
  txchan *t = &n->tx[f->src];
  bool reset = false;
  pthread_mutex_lock(&t->mx);
  if (f->epoch == t->epoch) {
    if (f->kind == BW__WK_ACK) {
      if (f->seq > t->acked && f->seq < t->next) {
        for (uint64_t s = t->acked + 1; s <= f->seq; s++) {
          txslot *slot = &t->ring[s & (t->cap - 1)];
          free(slot->big);
          slot->big = NULL;
        }
        t->acked = f->seq;
        t->acked_at_tick = bw__ld64_rlx(&n->ticks);
        if (t->next - 1 - t->acked <= TX_LOW && bw__ld32_rlx(&t->gate.closed))
          bw__gate_open(n->rt, &t->gate);
      }
    } else if (f->seq > t->acked) {
      bw__faa64(&n->gaps, 1);
      bw__node_channel_resend(n, f->src, t, f->seq);
    } else {
      reset = true; /* it wants what it already acknowledged: it started over */
    }
  }
  pthread_mutex_unlock(&t->mx);
  if (reset)
    bw__node_lost(n, f->src, true, false);
}

/* Called on the connection's thread when it is back: whatever the server
 * may have lost goes again. */
void bw__node_on_reconnected(natsConnection *nc, void *closure) {
  (void)nc;
  node *n = closure;
  for (unsigned id = 1; id < 256; id++) {
    txchan *t = &n->tx[id];
    pthread_mutex_lock(&t->mx);
    if (t->next - 1 > t->acked)
      bw__node_channel_resend(n, id, t, t->acked + 1);
    pthread_mutex_unlock(&t->mx);
  }
  /* and ask the others for what they sent us meanwhile */
  bw__node_publish_control(n, BW__WK_HELLO, 0);
}
