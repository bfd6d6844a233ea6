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

/* --- JSON writing (the same small writer as health.c) ------------------------------------- */

typedef struct jw {
  char *b;
  size_t cap, len;
} jw_t;

static void jw_raw(jw_t *w, const char *s, size_t n) {
  if (w->len < w->cap) {
    size_t room = w->cap - w->len;
    memcpy(w->b + w->len, s, n < room ? n : room);
  }
  w->len += n;
}

static void jw_lit(jw_t *w, const char *s) { jw_raw(w, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void jw_fmt(jw_t *w, const char *fmt, ...) {
  char tmp[96];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    jw_raw(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s, or 0 (then the byte becomes
 * U+FFFD: the JSON stays valid whatever bytes an id holds). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (c >= 0xF5)
    n = 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

static void jw_str(jw_t *w, const char *s) {
  jw_raw(w, "\"", 1);
  const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
  while (*p != '\0') {
    unsigned c = *p;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      jw_raw(w, e, 2);
      p++;
    } else if (c < 0x20) {
      jw_fmt(w, "\\u%04x", c);
      p++;
    } else if (c < 0x80) {
      jw_raw(w, (const char *)p, 1);
      p++;
    } else {
      size_t n = utf8_len(p);
      if (n == 0) {
        jw_lit(w, "\\ufffd");
        p++;
      } else {
        jw_raw(w, (const char *)p, n);
        p += n;
      }
    }
  }
  jw_raw(w, "\"", 1);
}

static void jw_pid(jw_t *w, bw_pid_t pid) { jw_fmt(w, "\"%llu\"", (unsigned long long)pid); }

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
  jw_t w;
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

static void rate(jw_t *w, const char *key, double v) {
  if (v < 0)
    jw_fmt(w, ",\"%s\":null", key);
  else
    jw_fmt(w, ",\"%s\":%.2f", key, v);
}

/* The decorations of one node (the registry is locked by the caller). */
static void decorate(walk_t *k, bw_pid_t pid, const char *id) {
  jw_t *w = &k->w;
  for (uint32_t i = 0; i < DECOR_MAX; i++) {
    const decor_t *d = &decors[i];
    if (d->rt != k->rt)
      continue;
    if (d->kind == D_BREAKER && pid != BW_PID_NONE &&
        bw_breaker_pid((const bw_breaker_t *)d->handle) == pid) {
      bw_breaker_metrics_t m;
      bw_breaker_metrics((const bw_breaker_t *)d->handle, &m);
      jw_lit(w, ",\"breaker\":{\"name\":");
      jw_str(w, bw_breaker_name((const bw_breaker_t *)d->handle));
      jw_lit(w, ",\"state\":");
      jw_str(w, bw_breaker_state_name(m.state));
      jw_fmt(w, ",\"successful\":%llu,\"failed\":%llu,\"rejected\":%llu,\"opens\":%llu",
             (unsigned long long)m.successful, (unsigned long long)m.failed,
             (unsigned long long)m.rejected, (unsigned long long)m.opens);
      rate(w, "failure_rate", m.failure_rate);
      jw_lit(w, "}");
    } else if (d->kind == D_HEALTH && pid != BW_PID_NONE &&
               bw_health_pid((const bw_health_t *)d->handle) == pid) {
      jw_lit(w, ",\"health\":{\"status\":");
      jw_str(w, bw_health_status_name(bw_health_status((const bw_health_t *)d->handle)));
      jw_lit(w, "}");
    } else if (d->kind == D_BULKHEAD && pid != BW_PID_NONE &&
               ((d->pid != BW_PID_NONE && d->pid == pid) ||
                (d->child_id[0] != '\0' && strcmp(d->child_id, id) == 0))) {
      bw_bulkhead_metrics_t m;
      int rc = bw_bulkhead_metrics(k->rt, pid, &m);
      jw_lit(w, ",\"bulkhead\":{");
      if (rc != 0) {
        jw_lit(w, "\"error\":");
        jw_str(w, bw_err_name(rc));
      } else {
        jw_lit(w, "\"name\":");
        jw_str(w, m.name);
        jw_fmt(w, ",\"workers\":%u,\"busy\":%u,\"idle\":%u,\"lent\":%u", m.workers, m.busy,
               m.idle, m.lent);
        jw_fmt(w, ",\"queued\":%u,\"queue_capacity\":%u,\"overflow\":%u", m.queued,
               m.queue_capacity, m.overflow);
        jw_fmt(w, ",\"completed\":%llu,\"rejected\":%llu,\"timed_out\":%llu}",
               (unsigned long long)m.completed, (unsigned long long)m.rejected,
               (unsigned long long)m.timed_out);
        continue;
      }
      jw_lit(w, "}");
    }
  }
}

static void mailbox(walk_t *k, bw_pid_t pid) {
  uint32_t depth = 0;
  if (pid != BW_PID_NONE && bw_mailbox_depth(k->rt, pid, &depth) == 0)
    jw_fmt(&k->w, ",\"mailbox\":%u", depth);
  else
    jw_lit(&k->w, ",\"mailbox\":null");
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
  jw_t *w = &k->w;
  bw_child_info_t *kids = NULL;
  size_t n = 0;
  int rc = depth > DEPTH_MAX ? BW_ELIMIT : children_of(k, sup, &kids, &n);
  if (rc != 0) {
    if (rc == BW_ENOMEM)
      k->err = rc;
    jw_lit(w, ",\"children\":null,\"error\":");
    jw_str(w, rc == BW_ENOPROC ? "noproc" : bw_err_name(rc));
    return rc;
  }
  jw_lit(w, ",\"children\":[");
  for (size_t i = 0; i < n && k->err == 0; i++) {
    const bw_child_info_t *c = &kids[i];
    jw_lit(w, i ? ",{\"id\":" : "{\"id\":");
    jw_str(w, c->id);
    jw_lit(w, ",\"pid\":");
    if (c->pid != BW_PID_NONE)
      jw_pid(w, c->pid);
    else
      jw_lit(w, "null");
    jw_lit(w, ",\"type\":");
    jw_str(w, c->type == BW_SUPERVISOR ? "supervisor" : "worker");
    jw_lit(w, ",\"state\":");
    jw_str(w, state_name(c->state));
    jw_lit(w, ",\"restart\":");
    jw_str(w, restart_name(c->restart));
    jw_fmt(w, ",\"restarts\":%u", c->restarts);
    mailbox(k, c->pid);
    decorate(k, c->pid, c->id);
    if (c->type == BW_SUPERVISOR) {
      if (c->pid != BW_PID_NONE && c->state == BW_CHILD_RUNNING)
        (void)children(k, c->pid, depth + 1);
      else
        jw_lit(w, ",\"children\":[]");
    }
    jw_lit(w, "}");
  }
  jw_lit(w, "]");
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
  jw_lit(&k.w, "{\"id\":\"\",\"pid\":");
  jw_pid(&k.w, root);
  jw_lit(&k.w, ",\"type\":\"supervisor\",\"state\":\"running\"");
  mailbox(&k, root);
  decorate(&k, root, "");
  rc = children(&k, root, 1);
  jw_lit(&k.w, "}");
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
