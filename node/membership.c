/*
 * bulwark: node membership and the cross-node relations (node/NODE.md).
 *
 *
 * Membership: a node is up from its first frame (a HELLO, a heartbeat, or
 * a message that overtook them on the other subscription), and lost when
 * silent for heartbeat_ms * heartbeat_misses on this node's runtime clock,
 * when it says BYE, when it tells us it declared us lost (DISCONNECT), or
 * when it comes back with a new incarnation (it restarted). The check runs
 * in the node's actor on an interval timer, so under the manual clock a
 * test decides exactly when silence has lasted long enough.
 *
 * Cross-node links and monitors are recorded here (a small table under a
 * mutex: only link, unlink, monitor, demonitor, exit and down frames take
 * it, never a plain message), so that when a node is lost every local
 * actor linked to or monitoring one of its actors gets its noconnection
 * signal, and monitors held by its actors on ours are dropped.
 *
 * Start and stop are node.c's; frames in, frames_in.c's.
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

bool bw__node_rel_add(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref) {
  if (rel_find(n, kind, local, remote, ref) != NULL)
    return true;
  if (!bw__grow((void **)&n->rels, &n->caprels, n->nrels, sizeof(rel), 16))
    return false;
  n->rels[n->nrels++] = (rel){.kind = kind, .local = local, .remote = remote, .ref = ref};
  return true;
}

void bw__node_rel_del(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref) {
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
      bw__exit_signal(n->rt, r->local, r->remote, bw__node_noconnection(), true);
    else if (r->kind == R_MON_OUT)
      bw__send_sys(n->rt, r->local, r->remote, BW__K_DOWN, r->ref, bw__node_noconnection());
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
void bw__node_seen(node *n, unsigned id, uint64_t inc, const char *name, bw_pid_t agent) {
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

void bw__node_on_control(node *n, const bw__frame *f) {
  if (f->src == n->rt->node_id)
    return; /* another process with our id: misconfigured; ignored */
  switch (f->kind) {
  case BW__WK_HELLO: {
    bw__node_seen(n, f->src, f->incarnation, f->name, f->from);
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
    bw__node_seen(n, f->src, f->incarnation, f->name, f->from);
    break;
  case BW__WK_BYE:
    if (f->incarnation == n->m[f->src].incarnation || n->m[f->src].incarnation == 0)
      bw__node_lost(n, f->src, false, true);
    break;
  default:
    break;
  }
}
