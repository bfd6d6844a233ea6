/*
 * bulwark: cluster-wide names (node/NODE.md, "Names"). Every node keeps the
 * whole directory: each owner sends its names to every node over the
 * channels, and all of them to a node that joins; a name goes with its
 * actor, when unregistered, or with its node. Two nodes claiming one name
 * at once: the lower node id keeps it, everywhere alike.
 */
#include <string.h>

#include "node/node_impl.h"

static name_ent *name_find(node *n, const char *name) {
  for (uint32_t i = 0; i < n->nnames; i++)
    if (strcmp(n->names[i].name, name) == 0)
      return &n->names[i];
  return NULL;
}

static bool name_put(node *n, const char *name, bw_pid_t pid) {
  name_ent *e = name_find(n, name);
  if (e == NULL) {
    if (!bw__grow((void **)&n->names, &n->capnames, n->nnames, sizeof(name_ent), 16))
      return false;
    e = &n->names[n->nnames++];
    bw__node_copy_str(e->name, sizeof(e->name), name);
  }
  e->pid = pid;
  return true;
}

static void name_drop_at(node *n, uint32_t i) { n->names[i] = n->names[--n->nnames]; }

void bw__node_names_drop_node(node *n, unsigned id) {
  for (uint32_t i = 0; i < n->nnames;) {
    if (bw_pid_node(n->names[i].pid) == id)
      name_drop_at(n, i);
    else
      i++;
  }
}

/* A name change, to node dst, or (dst 0) to every node up, each over its
 * channel (so a server restart cannot lose it). */
static void publish_name(node *n, uint8_t kind, const char *name, bw_pid_t pid, unsigned dst) {
  for (unsigned id = dst ? dst : 1; id < (dst ? dst + 1 : 256u); id++) {
    if (id == n->rt->node_id || bw__ld32_acq(&n->m[id].state) != M_UP)
      continue;
    bw__frame f;
    memset(&f, 0, sizeof(f));
    f.kind = kind;
    f.src = (uint8_t)n->rt->node_id;
    f.dst = (uint8_t)id;
    f.from = pid;
    bw__node_copy_str(f.name, sizeof(f.name), name);
    bw__node_channel_send(n, id, &f, NULL, 0);
  }
}

/* Sends every name of ours to node id (it just came up). */
void bw__node_names_send_all(node *n, unsigned id) {
  pthread_mutex_lock(&n->mx);
  uint32_t cnt = 0;
  name_ent *mine = malloc((n->nnames ? n->nnames : 1) * sizeof(*mine));
  for (uint32_t i = 0; mine != NULL && i < n->nnames; i++)
    if (bw_pid_node(n->names[i].pid) == n->rt->node_id)
      mine[cnt++] = n->names[i];
  pthread_mutex_unlock(&n->mx);
  for (uint32_t i = 0; i < cnt; i++)
    publish_name(n, BW__WK_NAME_ADD, mine[i].name, mine[i].pid, id);
  free(mine);
}

/* Another node's NAME_ADD or NAME_DEL (its node is up: checked by the
 * caller). */
void bw__node_on_name(node *n, const bw__frame *f) {
  unsigned self = n->rt->node_id;
  bool reassert = false, lost = false;
  bw_pid_t mine = BW_PID_NONE;
  pthread_mutex_lock(&n->mx);
  name_ent *e = name_find(n, f->name);
  if (f->kind == BW__WK_NAME_DEL) {
    if (e != NULL && e->pid == f->from)
      name_drop_at(n, (uint32_t)(e - n->names));
  } else if (e == NULL || e->pid == f->from) {
    name_put(n, f->name, f->from);
  } else {
    /* taken: the lower node id keeps it, everywhere alike */
    unsigned holder = bw_pid_node(e->pid);
    if (f->src < holder) {
      lost = holder == self;
      mine = e->pid;
      e->pid = f->from;
    } else if (holder == self) {
      reassert = true; /* we keep it: tell the claimant so it drops its own */
      mine = e->pid;
    }
  }
  pthread_mutex_unlock(&n->mx);
  if (lost || reassert)
    bw__faa64(&n->name_conflicts, 1);
  if (reassert)
    publish_name(n, BW__WK_NAME_ADD, f->name, mine, f->src);
}

/* A named actor of ours exited: its names go, everywhere. */
void bw__node_names_owner_down(node *n, bw_pid_t pid) {
  char gone[16][BW__WIRE_NAME_MAX + 1];
  for (;;) {
    uint32_t cnt = 0;
    pthread_mutex_lock(&n->mx);
    for (uint32_t i = 0; i < n->nnames && cnt < 16;) {
      if (n->names[i].pid == pid) {
        memcpy(gone[cnt++], n->names[i].name, sizeof(gone[0]));
        name_drop_at(n, i);
      } else {
        i++;
      }
    }
    pthread_mutex_unlock(&n->mx);
    for (uint32_t i = 0; i < cnt; i++)
      publish_name(n, BW__WK_NAME_DEL, gone[i], pid, 0);
    if (cnt < 16)
      return;
  }
}

int bw_node_register(bw_runtime_t *rt, const char *name, bw_pid_t pid) {
  if (rt == NULL || !bw__node_valid_token(name, BW__WIRE_NAME_MAX, true))
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL || bw__ld32_acq(&n->state) != N_RUNNING)
    return BW_ESTATE;
  if (!bw_is_alive(rt, pid))
    return BW_ENOPROC; /* a local live actor only: its node announces it */
  pthread_mutex_lock(&n->mx);
  name_ent *e = name_find(n, name);
  int rc = e != NULL ? (e->pid == pid ? 0 : BW_EEXIST) : (name_put(n, name, pid) ? 1 : BW_ENOMEM);
  pthread_mutex_unlock(&n->mx);
  if (rc != 1)
    return rc;
  /* the node's actor watches it, so the name goes when it exits */
  bw_send(rt, n->agent, T_WATCH_NAME, &pid, sizeof pid);
  publish_name(n, BW__WK_NAME_ADD, name, pid, 0);
  return 0;
}

int bw_node_unregister(bw_runtime_t *rt, const char *name) {
  if (rt == NULL || name == NULL)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL || bw__ld32_acq(&n->state) != N_RUNNING)
    return BW_ESTATE;
  pthread_mutex_lock(&n->mx);
  name_ent *e = name_find(n, name);
  bw_pid_t pid = BW_PID_NONE;
  if (e != NULL && bw_pid_node(e->pid) == rt->node_id) {
    pid = e->pid;
    name_drop_at(n, (uint32_t)(e - n->names));
  }
  pthread_mutex_unlock(&n->mx);
  if (pid == BW_PID_NONE)
    return BW_ENOTFOUND;
  publish_name(n, BW__WK_NAME_DEL, name, pid, 0);
  return 0;
}

int bw_node_whereis(bw_runtime_t *rt, const char *name, bw_pid_t *out) {
  if (rt == NULL || name == NULL || out == NULL)
    return BW_EINVAL;
  node *n = bw__node_of(rt);
  if (n == NULL)
    return BW_ESTATE;
  pthread_mutex_lock(&n->mx);
  name_ent *e = name_find(n, name);
  if (e != NULL)
    *out = e->pid;
  pthread_mutex_unlock(&n->mx);
  return e != NULL ? 0 : BW_ENOTFOUND;
}
