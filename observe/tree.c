/*
 * bulwark: a JSON snapshot of a live supervision tree (see
 * include/bulwark/tree.h).
 *
 * A depth-first walk with one bw_sup_which_children call per supervisor,
 * writing straight into the caller's buffer and counting what does not
 * fit, so a caller whose buffer was too small learns the size in the same
 * walk. The decorations registry is a small array under a mutex: it is
 * read by observers, written by setup code, never touched by actors.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/supervisor.h"
#include "bulwark/tree.h"
#include "runtime/jsonw.h"

#define DECOR_MAX 256u
#define DEPTH_MAX 40 /* specs nest at most 32 deep (bw_supervisor_validate) */

enum { D_BREAKER = 1, D_BULKHEAD, D_HEALTH };

typedef struct decor {
  bw_runtime_t *rt; /* NULL = free entry */
  int kind;
  void *handle; /* breaker or monitor */
  bw_pid_t pid; /* pool */
  char child_id[BW_SUP_ID_MAX];
} decor_t;

static pthread_mutex_t decor_mx = PTHREAD_MUTEX_INITIALIZER;
static decor_t decors[DECOR_MAX];

/* --- JSON writing (the same small writer as health_snapshot.c) ------------------------------------- */


static void jw_pid(bw__jw_t *w, bw_pid_t pid) { bw__jw_fmt(w, "\"%llu\"", (unsigned long long)pid); }

/* --- decorations ------------------------------------------------------------------------ */

static bool decor_match(const decor_t *d, bw_runtime_t *rt, int kind, const void *handle,
                        bw_pid_t pid, const char *child_id) {
  return d->rt == rt && d->kind == kind && d->handle == handle && d->pid == pid &&
         strcmp(d->child_id, child_id != NULL ? child_id : "") == 0;
}

static int annotate(bw_runtime_t *rt, int kind, void *handle, bw_pid_t pid, const char *child_id) {
  int rc = BW_ELIMIT;
  pthread_mutex_lock(&decor_mx);
  decor_t *free_e = NULL;
  for (uint32_t i = 0; i < DECOR_MAX; i++) {
    if (decor_match(&decors[i], rt, kind, handle, pid, child_id)) {
      rc = 0;
      break;
    }
    if (decors[i].rt == NULL && free_e == NULL)
      free_e = &decors[i];
  }
  if (rc != 0 && free_e != NULL) {
    free_e->rt = rt;
    free_e->kind = kind;
    free_e->handle = handle;
    free_e->pid = pid;
    snprintf(free_e->child_id, sizeof free_e->child_id, "%s", child_id != NULL ? child_id : "");
    rc = 0;
  }
  pthread_mutex_unlock(&decor_mx);
  return rc;
}

static int forget(bw_runtime_t *rt, int kind, void *handle, bw_pid_t pid, const char *child_id) {
  int rc = BW_ENOTFOUND;
  pthread_mutex_lock(&decor_mx);
  for (uint32_t i = 0; i < DECOR_MAX; i++) {
    if (decor_match(&decors[i], rt, kind, handle, pid, child_id)) {
      memset(&decors[i], 0, sizeof decors[i]);
      rc = 0;
    }
  }
  pthread_mutex_unlock(&decor_mx);
  return rc;
}

static bool id_ok(const char *id) {
  return id == NULL || (id[0] != '\0' && strlen(id) < BW_SUP_ID_MAX);
}

int bw_tree_annotate_breaker(bw_runtime_t *rt, bw_breaker_t *br) {
  if (rt == NULL || br == NULL)
    return BW_EINVAL;
  return annotate(rt, D_BREAKER, br, BW_PID_NONE, NULL);
}

int bw_tree_forget_breaker(bw_runtime_t *rt, bw_breaker_t *br) {
  if (rt == NULL || br == NULL)
    return BW_EINVAL;
  return forget(rt, D_BREAKER, br, BW_PID_NONE, NULL);
}

int bw_tree_annotate_bulkhead(bw_runtime_t *rt, bw_pid_t pool, const char *child_id) {
  if (rt == NULL || (pool == BW_PID_NONE && child_id == NULL) || !id_ok(child_id))
    return BW_EINVAL;
  return annotate(rt, D_BULKHEAD, NULL, pool, child_id);
}

int bw_tree_forget_bulkhead(bw_runtime_t *rt, bw_pid_t pool, const char *child_id) {
  if (rt == NULL || (pool == BW_PID_NONE && child_id == NULL) || !id_ok(child_id))
    return BW_EINVAL;
  return forget(rt, D_BULKHEAD, NULL, pool, child_id);
}

int bw_tree_annotate_health(bw_runtime_t *rt, bw_health_t *h) {
  if (rt == NULL || h == NULL)
    return BW_EINVAL;
  return annotate(rt, D_HEALTH, h, BW_PID_NONE, NULL);
}

int bw_tree_forget_health(bw_runtime_t *rt, bw_health_t *h) {
  if (rt == NULL || h == NULL)
    return BW_EINVAL;
  return forget(rt, D_HEALTH, h, BW_PID_NONE, NULL);
}

int bw_tree_forget_all(bw_runtime_t *rt) {
  if (rt == NULL)
    return BW_EINVAL;
  int n = 0;
  pthread_mutex_lock(&decor_mx);
  for (uint32_t i = 0; i < DECOR_MAX; i++) {
    if (decors[i].rt == rt) {
      memset(&decors[i], 0, sizeof decors[i]);
      n++;
    }
  }
  pthread_mutex_unlock(&decor_mx);
  return n;
}

/* --- rendering ------------------------------------------------------------------------------- */

typedef struct walk {
  bw_runtime_t *rt;
  bw__jw_t w;
  int err; /* BW_ENOMEM: the walk cannot go on */
} walk_t;

static const char *state_name(int32_t s) {
  switch (s) {
  case BW_CHILD_RUNNING:
    return "running";
  case BW_CHILD_STOPPED:
    return "stopped";
  case BW_CHILD_RESTARTING:
    return "restarting";
  default:
    return "unknown";
  }
}

static const char *restart_name(int32_t r) {
  switch (r) {
  case BW_PERMANENT:
    return "permanent";
  case BW_TRANSIENT:
    return "transient";
  case BW_TEMPORARY:
    return "temporary";
  default:
    return "unknown";
  }
}

static void rate(bw__jw_t *w, const char *key, double v) {
  if (v < 0)
    bw__jw_fmt(w, ",\"%s\":null", key);
  else
    bw__jw_fmt(w, ",\"%s\":%.2f", key, v);
}

/* A pool's stats by its pid, through the pool's protocol (the walk knows
 * pids, not handles): bw_bulkhead_stats' round trip. */
static int pool_stats(bw_runtime_t *rt, bw_pid_t pid, bw_bulkhead_stats_t *out) {
  bw_reply_t r;
  int rc = bw_call(rt, pid, BW_BULKHEAD_STATS, NULL, 0, 0, &r);
  if (rc != 0)
    return rc;
  if (r.type != BW_BULKHEAD_STATS || r.len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, r.data, sizeof *out);
  return 0;
}

/* The decorations of one node (the registry is locked by the caller). */
static void decorate(walk_t *k, bw_pid_t pid, const char *id) {
  bw__jw_t *w = &k->w;
  for (uint32_t i = 0; i < DECOR_MAX; i++) {
    const decor_t *d = &decors[i];
    if (d->rt != k->rt)
      continue;
    if (d->kind == D_BREAKER && pid != BW_PID_NONE &&
        bw_breaker_pid((const bw_breaker_t *)d->handle) == pid) {
      bw_breaker_stats_t m;
      bw_breaker_stats((const bw_breaker_t *)d->handle, &m);
      bw__jw_lit(w, ",\"breaker\":{\"name\":");
      bw__jw_str(w, bw_breaker_name((const bw_breaker_t *)d->handle));
      bw__jw_lit(w, ",\"state\":");
      bw__jw_str(w, bw_breaker_state_name(m.state));
      bw__jw_fmt(w, ",\"successful\":%llu,\"failed\":%llu,\"rejected\":%llu,\"opens\":%llu",
             (unsigned long long)m.successful, (unsigned long long)m.failed,
             (unsigned long long)m.rejected, (unsigned long long)m.opens);
      rate(w, "failure_rate", m.failure_rate);
      bw__jw_lit(w, "}");
    } else if (d->kind == D_HEALTH && pid != BW_PID_NONE &&
               bw_health_pid((const bw_health_t *)d->handle) == pid) {
      bw__jw_lit(w, ",\"health\":{\"status\":");
      bw__jw_str(w, bw_health_status_name(bw_health_status((const bw_health_t *)d->handle)));
      bw__jw_lit(w, "}");
    } else if (d->kind == D_BULKHEAD && pid != BW_PID_NONE &&
               ((d->pid != BW_PID_NONE && d->pid == pid) ||
                (d->child_id[0] != '\0' && strcmp(d->child_id, id) == 0))) {
      bw_bulkhead_stats_t m;
      int rc = pool_stats(k->rt, pid, &m);
      bw__jw_lit(w, ",\"bulkhead\":{");
      if (rc != 0) {
        bw__jw_lit(w, "\"error\":");
        bw__jw_str(w, bw_err_name(rc));
      } else {
        bw__jw_lit(w, "\"name\":");
        bw__jw_str(w, m.name);
        bw__jw_fmt(w, ",\"workers\":%u,\"busy\":%u,\"idle\":%u,\"lent\":%u", m.workers, m.busy,
               m.idle, m.lent);
        bw__jw_fmt(w, ",\"queued\":%u,\"queue_capacity\":%u,\"overflow\":%u", m.queued,
               m.queue_capacity, m.overflow);
        bw__jw_fmt(w, ",\"completed\":%llu,\"rejected\":%llu,\"timed_out\":%llu}",
               (unsigned long long)m.completed, (unsigned long long)m.rejected,
               (unsigned long long)m.timed_out);
        continue;
      }
      bw__jw_lit(w, "}");
    }
  }
}

static void mailbox(walk_t *k, bw_pid_t pid) {
  uint32_t depth = 0;
  if (pid != BW_PID_NONE && bw_mailbox_depth(k->rt, pid, &depth) == 0)
    bw__jw_fmt(&k->w, ",\"mailbox\":%u", depth);
  else
    bw__jw_lit(&k->w, ",\"mailbox\":null");
}

/* Reads a supervisor's children into a fresh array (*out, free it). */
static int children_of(walk_t *k, bw_pid_t sup, bw_child_info_t **out, size_t *n) {
  size_t cap = 16;
  for (int tries = 0; tries < 4; tries++) {
    bw_child_info_t *a = malloc(cap * sizeof *a);
    if (a == NULL)
      return BW_ENOMEM;
    size_t got = 0;
    int rc = bw_sup_which_children(k->rt, sup, a, cap, &got);
    if (rc != 0) {
      free(a);
      return rc;
    }
    if (got <= cap) {
      *out = a;
      *n = got;
      return 0;
    }
    free(a);
    cap = got + 8; /* it grew meanwhile; try once more with room */
  }
  return BW_ELIMIT;
}

/* Writes ,"children":[...] for supervisor sup. Returns the which_children
 * code (already rendered as an error field when not 0). */
static int children(walk_t *k, bw_pid_t sup, int depth) {
  bw__jw_t *w = &k->w;
  bw_child_info_t *kids = NULL;
  size_t n = 0;
  int rc = depth > DEPTH_MAX ? BW_ELIMIT : children_of(k, sup, &kids, &n);
  if (rc != 0) {
    if (rc == BW_ENOMEM)
      k->err = rc;
    bw__jw_lit(w, ",\"children\":null,\"error\":");
    bw__jw_str(w, rc == BW_ENOPROC ? "noproc" : bw_err_name(rc));
    return rc;
  }
  bw__jw_lit(w, ",\"children\":[");
  for (size_t i = 0; i < n && k->err == 0; i++) {
    const bw_child_info_t *c = &kids[i];
    bw__jw_lit(w, i ? ",{\"id\":" : "{\"id\":");
    bw__jw_str(w, c->id);
    bw__jw_lit(w, ",\"pid\":");
    if (c->pid != BW_PID_NONE)
      jw_pid(w, c->pid);
    else
      bw__jw_lit(w, "null");
    bw__jw_lit(w, ",\"type\":");
    bw__jw_str(w, c->type == BW_SUPERVISOR ? "supervisor" : "worker");
    bw__jw_lit(w, ",\"state\":");
    bw__jw_str(w, state_name(c->state));
    bw__jw_lit(w, ",\"restart\":");
    bw__jw_str(w, restart_name(c->restart));
    bw__jw_fmt(w, ",\"restarts\":%u", c->restarts);
    mailbox(k, c->pid);
    decorate(k, c->pid, c->id);
    if (c->type == BW_SUPERVISOR) {
      if (c->pid != BW_PID_NONE && c->state == BW_CHILD_RUNNING)
        (void)children(k, c->pid, depth + 1);
      else
        bw__jw_lit(w, ",\"children\":[]");
    }
    bw__jw_lit(w, "}");
  }
  bw__jw_lit(w, "]");
  free(kids);
  return 0;
}

int bw_tree_json(bw_runtime_t *rt, bw_pid_t root, char *buf, size_t cap, size_t *len) {
  if (rt == NULL || len == NULL || (cap > 0 && buf == NULL) || root == BW_PID_NONE)
    return BW_EINVAL;
  /* Ask the root first, so that a wrong root fails cleanly rather than as
   * a document with an error in it. */
  size_t probe = 0;
  int rc = bw_sup_which_children(rt, root, NULL, 0, &probe);
  if (rc != 0)
    return rc;
  walk_t k = {rt, {buf, cap, 0}, 0};
  /* held for the walk: a forget that returns means no walk uses the handle */
  pthread_mutex_lock(&decor_mx);
  bw__jw_lit(&k.w, "{\"id\":\"\",\"pid\":");
  jw_pid(&k.w, root);
  bw__jw_lit(&k.w, ",\"type\":\"supervisor\",\"state\":\"running\"");
  mailbox(&k, root);
  decorate(&k, root, "");
  rc = children(&k, root, 1);
  bw__jw_lit(&k.w, "}");
  pthread_mutex_unlock(&decor_mx);
  if (k.err != 0)
    return k.err;
  if (rc != 0 && rc != BW_ENOMEM && rc != BW_ELIMIT)
    return rc; /* the root died between the probe and the walk */
  *len = k.w.len;
  if (k.w.len >= cap) {
    if (cap > 0)
      buf[0] = '\0';
    return BW_ETOOBIG;
  }
  buf[k.w.len] = '\0';
  return 0;
}
