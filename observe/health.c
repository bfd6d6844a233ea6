/*
 * bulwark: the health monitor (see include/bulwark/health.h and
 * observe/HEALTH.md).
 *
 * The handle holds what outlives one incarnation of the actor: the
 * component descriptors (immutable once added), the subscribers, the
 * statuses (reset by each new incarnation), the published snapshot and the
 * counters. The actor is the only writer of statuses, counters and
 * snapshots; registration (bw_health_add, bw_health_subscribe) is the only
 * other writer and takes a mutex that the actor never takes.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/health.h"
#include "bulwark/message.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "runtime/atomic.h"
#include "runtime/jsonw.h"

/* Internal message types. */
enum {
  HM_TICK = BW_MSG_HEALTH_BASE + 0x80u, /* a round: the interval timer, or check_now */
  HM_RUN,          /* monitor -> check helper: run check idx (hm_run_t) */
  HM_DONE,         /* check helper -> monitor: its result (hm_done_t) */
  HM_DEADLINE,     /* timer -> monitor: a check's deadline (hm_run_t) */
  HM_FLUSH,        /* request: answered once everything before it is handled */
  HM_RECOVER,      /* monitor -> recovery helper: act on component idx (uint32_t) */
  HM_RECOVER_DONE, /* recovery helper -> monitor (hm_rdone_t) */
  HM_EVENT,        /* recorder -> monitor: a bus event, as it happens (bw_event_t) */
  HM_REPLAY,       /* recorder -> monitor: a recorded event, replayed (bw_event_t) */
  HM_ATTACH,       /* monitor -> recorder: forward to me, after a replay (bw_pid_t) */
};

typedef struct hm_run {
  uint32_t idx, seq;
} hm_run_t;

typedef struct hm_done {
  uint32_t idx, seq;
  int32_t rc;
  uint32_t _pad;
  char reason[BW_HEALTH_REASON_MAX];
} hm_done_t;

typedef struct hm_rdone {
  uint32_t idx;
  int32_t rc;
} hm_rdone_t;

#define NBUILTIN 3u
#define RETIRE_MAX 16u

/* A registered component: immutable once counted in h->ncomp. */
typedef struct comp {
  bw_health_component_t d; /* its strings point into the fields below */
  char name[BW_HEALTH_NAME_MAX];
  char target[BW_NAME_MAX + 1];
  char child_id[BW_SUP_ID_MAX];
} comp_t;

/* A component's judgement: written by the monitor only. */
typedef struct cst {
  int32_t status;
  uint64_t since_ms;
  char reason[BW_HEALTH_REASON_MAX];
  /* recovery */
  uint64_t next_action_ms; /* while unhealthy: when the next action is due */
  uint64_t actions;
  int32_t action_rc;
  /* actor and bulkhead: an action is repeated only on a judgement from a
   * probe made after it (the answer to one made before, or the target's
   * own exit caused by the action, says nothing about the result) */
  uint64_t acted_seq;  /* probe count when the last action was taken */
  uint64_t probes;     /* probes made */
  uint64_t judged_seq; /* the probe the current judgement comes from */
  uint64_t pending_seq; /* the probe in flight */
  /* actor and bulkhead: the request in flight */
  bool pending;
  uint64_t ref;
  bw_pid_t target_pid;
  /* bulkhead: the rejection count of the last answer */
  bool bh_have;
  uint64_t bh_rejected;
  /* check: the run in flight */
  bool running, overrun;
  uint32_t seq;
  bw_timer_t deadline;
  bw_pid_t helper;
  /* escalations, watchdog: bad until then */
  uint64_t until_ms;
} cst_t;

/* An immutable published snapshot: one allocation, info[] then json. */
typedef struct snap {
  int32_t status;
  uint32_t ncomp;
  size_t json_len;
  bw_health_info_t *info;
  char *json;
} snap_t;

struct bw_health {
  bw_runtime_t *rt;
  bw_health_opts_t cfg;
  char name[BW_HEALTH_NAME_MAX];
  uint32_t cap; /* entries: built-ins + max_components */
  uint32_t nbuiltin;
  uint32_t ncomp; /* published with release by bw_health_add */
  comp_t *comps;
  cst_t *st;
  pthread_mutex_t reg_mx; /* writers of comps/subs only; never the monitor */
  bw_pid_t subs[BW_HEALTH_MAX_SUBSCRIBERS];
  bw_pid_t pid; /* the running monitor */
  bool owned;   /* spawned by bw_health_start */
  bw_timer_t tick_timer; /* of the latest incarnation: a successor cancels it */
  bw_pid_t recovery_helper;
  /* The event recorder (an actor of the handle, like the helpers): the
   * only subscriber to the built-ins' events, so none is lost while the
   * monitor is down (a monitor restarted with its siblings missed theirs).
   * The pid is read by bw_health_flush on any thread (atomic); the fields
   * below it are written by the recorder only, read by nobody else. */
  bw_pid_t recorder;
  bw_event_t *rec_rst; /* the last restart_limit + 1 BW_EV_CHILD_RESTARTED */
  uint32_t rec_rst_n, rec_rst_pos;
  bw_event_t rec_esc, rec_hang; /* the last escalation and hang report (type 0: none) */
  /* restart storm, as the monitor judges it: the last restart_limit + 1
   * restart times (rebuilt by each incarnation from the recorder's replay) */
  uint64_t *rst;
  uint32_t rst_n, rst_pos;
  char rst_last[BW_HEALTH_REASON_MAX];
  /* the aggregate */
  int32_t agg;
  uint64_t agg_since;
  uint32_t status_pub; /* for bw_health_status */
  bool running, dirty;
  uint32_t seen; /* components the monitor has picked up */
  /* snapshots */
  snap_t *snap;
  uint64_t readers;
  snap_t *retired[RETIRE_MAX];
  uint32_t nretired;
  char *scratch;
  size_t scratch_cap;
  bw_health_metrics_t m;
};

typedef struct hm_actor {
  bw_health_t *h;
  bw_ctx_t *ctx;
} hm_actor_t;

/* --- names ---------------------------------------------------------------------------- */

const char *bw_health_status_name(int s) {
  static const char *const n[] = {"healthy", "degraded", "unhealthy"};
  return s >= 0 && s <= 2 ? n[s] : "unknown";
}

const char *bw_health_cause_name(int c) {
  static const char *const n[] = {"none",
                                  "health_fell",
                                  "health_recovered",
                                  "component_fell",
                                  "component_recovered",
                                  "breaker_opened",
                                  "breaker_closed",
                                  "bulkhead_rejecting",
                                  "bulkhead_recovered",
                                  "recovery_action"};
  return c > 0 && c <= BW_HEALTH_CAUSE_RECOVERY_ACTION ? n[c] : "unknown";
}

const char *bw_health_kind_name(int k) {
  static const char *const n[] = {"none",     "actor",    "check",       "breaker",
                                  "bulkhead", "restarts", "escalations", "watchdog"};
  return k > 0 && k <= BW_HEALTH_KIND_WATCHDOG ? n[k] : "unknown";
}

/* --- small helpers ------------------------------------------------------------------------ */

/* The counters have one writer (the monitor); readers load them relaxed:
 * each is exact, the set is not a snapshot, as documented. */
static void inc(uint64_t *f) { bw__st64_rlx(f, bw__ld64_rlx(f) + 1); }

static void copy_text(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* snprintf for texts that are cut to fit on purpose (reasons, names). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fmt_text(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
}

static bool status_ok(int32_t s) { return s >= BW_HEALTH_HEALTHY && s <= BW_HEALTH_UNHEALTHY; }

/* --- JSON writing (a copy lives in tree.c: both files are self-contained) ------------------ */

/* Writes into b[cap] and counts what did not fit, so the caller learns the
 * length it needs. */

/* --- options and components --------------------------------------------------------------- */

void bw_health_opts_init(bw_health_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->name = "health";
  o->period_ms = 1000;
  o->max_components = 32;
  o->restart_limit = 5;
  o->restart_window_ms = 60000;
  o->escalation_hold_ms = 60000;
  o->hang_hold_ms = 60000;
  o->hang_status = BW_HEALTH_DEGRADED;
}

int bw_health_opts_validate(const bw_health_opts_t *o) {
  if (o == NULL || o->period_ms == 0 || o->period_ms > BW_HEALTH_MAX_MS ||
      o->max_components == 0 || o->max_components > BW_HEALTH_MAX_COMPONENTS ||
      o->restart_limit > 1000 || o->restart_window_ms > BW_HEALTH_MAX_MS ||
      (o->restart_limit > 0 && o->restart_window_ms == 0) ||
      o->escalation_hold_ms > BW_HEALTH_MAX_MS || o->hang_hold_ms > BW_HEALTH_MAX_MS ||
      !status_ok(o->hang_status) ||
      (o->name != NULL && (o->name[0] == '\0' || strlen(o->name) >= BW_HEALTH_NAME_MAX)))
    return BW_EINVAL;
  return 0;
}

void bw_health_component_init(bw_health_component_t *c, bw_health_kind_t kind, const char *name) {
  if (c == NULL)
    return;
  memset(c, 0, sizeof *c);
  c->name = name;
  c->kind = kind;
  c->open_status = BW_HEALTH_DEGRADED;
  c->half_open_status = BW_HEALTH_DEGRADED;
  c->forced_open_status = BW_HEALTH_UNHEALTHY;
  c->queue_fraction = 0.8;
}

static int comp_validate(const bw_health_component_t *c) {
  if (c->name == NULL || c->name[0] == '\0' || strlen(c->name) >= BW_HEALTH_NAME_MAX ||
      c->timeout_ms > BW_HEALTH_MAX_MS || c->action_after_ms > BW_HEALTH_MAX_MS)
    return BW_EINVAL;
  bool by_pid = c->pid != BW_PID_NONE, by_name = c->target_name != NULL;
  switch (c->kind) {
  case BW_HEALTH_KIND_ACTOR:
    if (by_pid == by_name)
      return BW_EINVAL;
    break;
  case BW_HEALTH_KIND_BULKHEAD:
    if (by_pid == by_name || !(c->queue_fraction > 0.0 && c->queue_fraction <= 1.0))
      return BW_EINVAL;
    break;
  case BW_HEALTH_KIND_CHECK:
    if (c->check == NULL)
      return BW_EINVAL;
    break;
  case BW_HEALTH_KIND_BREAKER:
    if (c->breaker == NULL || !status_ok(c->open_status) || !status_ok(c->half_open_status) ||
        !status_ok(c->forced_open_status))
      return BW_EINVAL;
    break;
  default:
    return BW_EINVAL;
  }
  if (by_name && (c->target_name[0] == '\0' || strlen(c->target_name) >= BW_NAME_MAX))
    return BW_EINVAL;
  switch (c->action) {
  case BW_HEALTH_ACTION_NONE:
    return 0;
  case BW_HEALTH_ACTION_RESTART:
    if (c->kind != BW_HEALTH_KIND_ACTOR)
      return BW_EINVAL;
    if ((c->sup != BW_PID_NONE) != (c->child_id != NULL))
      return BW_EINVAL;
    if (c->child_id != NULL && (c->child_id[0] == '\0' || strlen(c->child_id) >= BW_SUP_ID_MAX))
      return BW_EINVAL;
    break;
  case BW_HEALTH_ACTION_RESET_BREAKER:
    if (c->kind != BW_HEALTH_KIND_BREAKER)
      return BW_EINVAL;
    break;
  case BW_HEALTH_ACTION_CALL:
    if (c->recover == NULL)
      return BW_EINVAL;
    break;
  default:
    return BW_EINVAL;
  }
  return c->action_after_ms > 0 ? 0 : BW_EINVAL;
}

/* --- snapshots ------------------------------------------------------------------------------ */

/*
 * Readers (any thread) announce themselves in h->readers, then load the
 * pointer and copy; the monitor swaps in a new snapshot and frees retired
 * ones only when it sees no reader. A Dekker pair with seq_cst fences on
 * both sides: a reader that loaded the old pointer had incremented the
 * count before, so the monitor, whose load of the count follows its swap,
 * sees it (or its decrement, after the copy). A reader that keeps the count
 * up all the time only delays freeing; at RETIRE_MAX retired snapshots the
 * monitor stops publishing (keeps its state dirty) until readers let go.
 * Rejected: a mutex (the monitor must never wait for an HTTP thread), and
 * a seqlock over one buffer (readers would copy torn bytes and retry).
 */
static void reclaim(bw_health_t *h) {
  if (h->nretired == 0)
    return;
  bw__fence_seq_cst(); /* orders our swap before the count's load (Dekker) */
  /* acquire: pairs with readers' decrements, so their copies are done */
  if (bw__ld64_acq(&h->readers) != 0)
    return;
  for (uint32_t i = 0; i < h->nretired; i++)
    free(h->retired[i]);
  h->nretired = 0;
}

static snap_t *snap_build(bw_health_t *h, uint32_t n, const char *json, size_t len) {
  size_t info_sz = (size_t)n * sizeof(bw_health_info_t);
  snap_t *s = malloc(sizeof *s + info_sz + len + 1);
  if (s == NULL)
    return NULL;
  s->status = h->running ? h->agg : BW_HEALTH_UNHEALTHY;
  s->ncomp = n;
  s->info = (bw_health_info_t *)(void *)(s + 1);
  s->json = (char *)(s->info + n);
  s->json_len = len;
  for (uint32_t i = 0; i < n; i++) {
    bw_health_info_t *in = &s->info[i];
    memset(in, 0, sizeof *in);
    copy_text(in->name, sizeof in->name, h->comps[i].name);
    in->kind = h->comps[i].d.kind;
    in->status = h->st[i].status;
    in->since_ms = h->st[i].since_ms;
    in->actions = h->st[i].actions;
    copy_text(in->reason, sizeof in->reason, h->st[i].reason);
  }
  memcpy(s->json, json, len);
  s->json[len] = '\0';
  return s;
}

static void render(bw_health_t *h, bw__jw_t *w, uint32_t n, uint64_t now) {
  int32_t status = h->running ? h->agg : BW_HEALTH_UNHEALTHY;
  bw__jw_raw(w, "{\"monitor\":", 11);
  bw__jw_str(w, h->name);
  bw__jw_fmt(w, ",\"running\":%s,\"status\":", h->running ? "true" : "false");
  bw__jw_str(w, bw_health_status_name(status));
  bw__jw_fmt(w, ",\"since_ms\":%llu,\"time_ms\":%llu,\"components\":[",
         (unsigned long long)h->agg_since, (unsigned long long)now);
  for (uint32_t i = 0; i < n; i++) {
    const cst_t *c = &h->st[i];
    bw__jw_raw(w, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
    bw__jw_str(w, h->comps[i].name);
    bw__jw_raw(w, ",\"kind\":", 8);
    bw__jw_str(w, bw_health_kind_name(h->comps[i].d.kind));
    bw__jw_raw(w, ",\"status\":", 10);
    bw__jw_str(w, bw_health_status_name(c->status));
    bw__jw_raw(w, ",\"reason\":", 10);
    bw__jw_str(w, c->reason);
    bw__jw_fmt(w, ",\"since_ms\":%llu,\"actions\":%llu", (unsigned long long)c->since_ms,
           (unsigned long long)c->actions);
    if (c->actions > 0)
      bw__jw_fmt(w, ",\"action_rc\":%d", (int)c->action_rc);
    bw__jw_raw(w, "}", 1);
  }
  bw__jw_raw(w, "]}", 2);
}

/* Renders and publishes the current state. Returns false if it could not
 * (memory, or too many retired snapshots still read): the state stays dirty
 * and the next message tries again. */
static bool publish(bw_health_t *h, uint32_t n) {
  reclaim(h);
  if (h->nretired == RETIRE_MAX)
    return false;
  uint64_t now = bw_now_ms(h->rt);
  bw__jw_t w = {h->scratch, h->scratch_cap, 0};
  render(h, &w, n, now);
  if (w.len > h->scratch_cap) {
    char *nb = realloc(h->scratch, w.len);
    if (nb == NULL)
      return false;
    h->scratch = nb;
    h->scratch_cap = w.len;
    w = (bw__jw_t){h->scratch, h->scratch_cap, 0};
    render(h, &w, n, now);
  }
  snap_t *s = snap_build(h, n, h->scratch, w.len);
  if (s == NULL)
    return false;
  /* release (full barrier): the snapshot's bytes before its pointer */
  snap_t *old = BW__XCHG(&h->snap, s);
  if (old != NULL)
    h->retired[h->nretired++] = old;
  /* relaxed: a hint for bw_health_status; the snapshot is the exact word */
  bw__st32_rlx(&h->status_pub, (uint32_t)s->status);
  inc(&h->m.snapshots);
  reclaim(h);
  return true;
}

/* --- lifecycle ------------------------------------------------------------------------------- */

static void h_free(bw_health_t *h) {
  if (h == NULL)
    return;
  free(h->snap);
  for (uint32_t i = 0; i < h->nretired; i++)
    free(h->retired[i]);
  free(h->scratch);
  free(h->comps);
  free(h->st);
  free(h->rst);
  free(h->rec_rst);
  pthread_mutex_destroy(&h->reg_mx);
  free(h);
}

static void builtin_add(bw_health_t *h, bw_health_kind_t kind, const char *name) {
  comp_t *c = &h->comps[h->ncomp++];
  bw_health_component_init(&c->d, kind, NULL);
  copy_text(c->name, sizeof c->name, name);
  c->d.name = c->name;
}

int bw_health_new(bw_runtime_t *rt, const bw_health_opts_t *opts, bw_health_t **out) {
  bw_health_opts_t def;
  if (opts == NULL) {
    bw_health_opts_init(&def);
    opts = &def;
  }
  if (rt == NULL || out == NULL || bw_health_opts_validate(opts) != 0)
    return BW_EINVAL;
  bw_health_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return BW_ENOMEM;
  pthread_mutex_init(&h->reg_mx, NULL);
  h->rt = rt;
  h->cfg = *opts;
  copy_text(h->name, sizeof h->name, opts->name != NULL ? opts->name : "health");
  h->cfg.name = h->name;
  h->cap = NBUILTIN + opts->max_components;
  h->comps = calloc(h->cap, sizeof *h->comps);
  h->st = calloc(h->cap, sizeof *h->st);
  if (opts->restart_limit > 0) {
    h->rst = calloc(opts->restart_limit + 1u, sizeof *h->rst);
    h->rec_rst = calloc(opts->restart_limit + 1u, sizeof *h->rec_rst);
  }
  if (h->comps == NULL || h->st == NULL ||
      (opts->restart_limit > 0 && (h->rst == NULL || h->rec_rst == NULL))) {
    h_free(h);
    return BW_ENOMEM;
  }
  if (opts->restart_limit > 0)
    builtin_add(h, BW_HEALTH_KIND_RESTARTS, "restarts");
  if (opts->escalation_hold_ms > 0)
    builtin_add(h, BW_HEALTH_KIND_ESCALATIONS, "escalations");
  if (opts->hang_hold_ms > 0)
    builtin_add(h, BW_HEALTH_KIND_WATCHDOG, "watchdog");
  h->nbuiltin = h->ncomp;
  h->agg = BW_HEALTH_UNHEALTHY;
  h->status_pub = BW_HEALTH_UNHEALTHY;
  if (!publish(h, 0)) {
    h_free(h);
    return BW_ENOMEM;
  }
  *out = h;
  return 0;
}

bw_pid_t bw_health_pid(const bw_health_t *h) {
  /* acquire: a caller that then sends to it sees the actor set up */
  return h == NULL ? BW_PID_NONE : bw__ld64_acq(&h->pid);
}

int bw_health_child_spec(bw_health_t *h, const char *id, bw_child_spec_t *out) {
  if (h == NULL || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_health_behaviour;
  out->arg = h;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

int bw_health_start(bw_health_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  int rc = bw_spawn(h->rt, &bw_health_behaviour, h, NULL, NULL);
  if (rc == 0)
    h->owned = true;
  return rc;
}

int bw_health_create(bw_runtime_t *rt, const bw_health_opts_t *opts, bw_health_t **out) {
  bw_health_t *h = NULL;
  if (out == NULL)
    return BW_EINVAL;
  int rc = bw_health_new(rt, opts, &h);
  if (rc != 0)
    return rc;
  if ((rc = bw_health_start(h)) != 0) {
    h_free(h);
    return rc;
  }
  *out = h;
  return 0;
}

static int wait_gone(bw_runtime_t *rt, bw_pid_t pid) {
  if (pid == BW_PID_NONE)
    return 0;
  int rc = bw_wait_exit(rt, pid, 0, NULL);
  return rc == BW_EWOULDBLOCK ? rc : 0;
}

int bw_health_destroy(bw_health_t *h) {
  if (h == NULL)
    return 0;
  bw_pid_t pid = bw_health_pid(h);
  if (pid != BW_PID_NONE && bw_is_alive(h->rt, pid)) {
    if (!h->owned)
      return BW_ERUNNING;
    /* Refuse on a scheduler thread before the monitor is told to stop, so
     * that BW_EWOULDBLOCK leaves everything as it was (a monitor stopped
     * behind the caller's back would never run again). Waiting for
     * BW_PID_NONE asks "may this thread block?": at once 0, or
     * BW_EWOULDBLOCK. */
    if (!bw_may_block(h->rt))
      return BW_EWOULDBLOCK;
    bw_exit(h->rt, pid, BW_REASON_SHUTDOWN, 0, "health monitor destroyed");
    if (wait_gone(h->rt, pid) != 0)
      return BW_EWOULDBLOCK;
  }
  /* the helpers: one inside a blocking check exits when it returns, and
   * reads the handle until then */
  for (uint32_t i = 0; i <= h->cap + 1u; i++) {
    /* acquire (recorder): pairs with hm_init's release store */
    bw_pid_t hp = i < h->cap ? h->st[i].helper
                  : i == h->cap ? h->recovery_helper
                                : bw__ld64_acq(&h->recorder);
    if (hp == BW_PID_NONE)
      continue;
    (void)bw_exit(h->rt, hp, BW_REASON_SHUTDOWN, 0, "health monitor destroyed");
    if (wait_gone(h->rt, hp) != 0)
      return BW_EWOULDBLOCK;
    if (i == h->cap + 1u)
      (void)bw_event_unsubscribe(h->rt, hp); /* BW_ENOTFOUND after its terminate */
  }
  h_free(h);
  return 0;
}

int bw_health_add(bw_health_t *h, const bw_health_component_t *c) {
  if (h == NULL || c == NULL || comp_validate(c) != 0)
    return BW_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&h->reg_mx);
  /* relaxed: writers of ncomp are serialized by reg_mx */
  uint32_t n = bw__ld32_rlx(&h->ncomp);
  for (uint32_t i = 0; i < n && rc == 0; i++)
    if (strcmp(h->comps[i].name, c->name) == 0)
      rc = BW_EEXIST;
  if (rc == 0 && n == h->cap)
    rc = BW_ELIMIT;
  if (rc == 0) {
    comp_t *e = &h->comps[n];
    e->d = *c;
    copy_text(e->name, sizeof e->name, c->name);
    e->d.name = e->name;
    if (c->target_name != NULL) {
      copy_text(e->target, sizeof e->target, c->target_name);
      e->d.target_name = e->target;
    }
    if (c->child_id != NULL) {
      copy_text(e->child_id, sizeof e->child_id, c->child_id);
      e->d.child_id = e->child_id;
    }
    if (e->d.timeout_ms == 0)
      e->d.timeout_ms = h->cfg.period_ms;
    /* release: the descriptor is complete before the monitor (and, through
     * the monitor's messages, a helper) reads it */
    bw__st32_rel(&h->ncomp, n + 1);
  }
  pthread_mutex_unlock(&h->reg_mx);
  return rc;
}

int bw_health_subscribe(bw_health_t *h, bw_pid_t pid) {
  if (h == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  int rc = BW_ELIMIT;
  pthread_mutex_lock(&h->reg_mx);
  /* relaxed: only the pid values are compared; nothing else is published */
  for (uint32_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS && rc != 0; i++)
    if (bw__ld64_rlx(&h->subs[i]) == pid)
      rc = 0;
  for (uint32_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS && rc != 0; i++)
    /* CAS: the monitor may clear a dead subscriber's slot at the same time;
     * it never fills one, so a free slot stays ours once taken */
    if (bw__ld64_rlx(&h->subs[i]) == BW_PID_NONE && bw__cas64(&h->subs[i], BW_PID_NONE, pid))
      rc = 0;
  pthread_mutex_unlock(&h->reg_mx);
  return rc;
}

int bw_health_unsubscribe(bw_health_t *h, bw_pid_t pid) {
  if (h == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  int rc = BW_ENOTFOUND;
  pthread_mutex_lock(&h->reg_mx);
  /* CAS: the monitor may clear the same slot (a dead subscriber) */
  for (uint32_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS; i++)
    if (bw__cas64(&h->subs[i], pid, BW_PID_NONE))
      rc = 0;
  pthread_mutex_unlock(&h->reg_mx);
  return rc;
}

int bw_health_check_now(bw_health_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_health_pid(h);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  return bw_send(h->rt, pid, HM_TICK, NULL, 0);
}

int bw_health_flush(bw_health_t *h, uint64_t timeout_ms) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_health_pid(h);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  bw_reply_t r;
  /* The recorder first: once it has answered, every event published
   * before this call has been forwarded to the monitor, ahead of the
   * monitor's flush below (the forward was queued before the reply that
   * we wait for). A recorder that is gone has nothing left to forward.
   * acquire: pairs with hm_init's release store */
  bw_pid_t rec = bw__ld64_acq(&h->recorder);
  int rc = 0;
  if (rec != BW_PID_NONE) {
    rc = bw_call(h->rt, rec, HM_FLUSH, NULL, 0, timeout_ms, &r);
    if (r.ptr != NULL && r.dtor != NULL)
      r.dtor(r.ptr);
    if (rc == BW_ENOPROC)
      rc = 0;
    if (rc != 0)
      return rc;
  }
  rc = bw_call(h->rt, pid, HM_FLUSH, NULL, 0, timeout_ms, &r);
  if (r.ptr != NULL && r.dtor != NULL)
    r.dtor(r.ptr);
  return rc;
}

/* --- reading ------------------------------------------------------------------------------ */

/* Pins the current snapshot (see reclaim). The handle's reader count is
 * the one field readers write, hence the casts from const. */
static const snap_t *snap_pin(const bw_health_t *h) {
  bw_health_t *m = (bw_health_t *)(uintptr_t)h;
  bw__faa64(&m->readers, 1);
  bw__fence_seq_cst(); /* orders the count before the pointer's load (Dekker) */
  /* acquire: the snapshot's bytes, written before its pointer */
  return BW__LD_ACQ(&m->snap);
}

static void snap_unpin(const bw_health_t *h) {
  /* release (acq_rel RMW): our copy is done before the monitor frees */
  bw__faa64(&((bw_health_t *)(uintptr_t)h)->readers, UINT64_MAX);
}

int bw_health_status(const bw_health_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  /* relaxed: one word, read alone; the snapshot is the consistent view */
  return (int)bw__ld32_rlx(&h->status_pub);
}

int bw_health_json(const bw_health_t *h, char *buf, size_t cap, size_t *len, int *status) {
  if (h == NULL || len == NULL || (cap > 0 && buf == NULL))
    return BW_EINVAL;
  const snap_t *s = snap_pin(h);
  size_t n = s->json_len;
  *len = n;
  if (status != NULL)
    *status = s->status;
  int rc = BW_ETOOBIG;
  if (cap > n) {
    memcpy(buf, s->json, n);
    buf[n] = '\0';
    rc = 0;
  }
  snap_unpin(h);
  return rc;
}

int bw_health_component_info(const bw_health_t *h, const char *name, bw_health_info_t *out) {
  if (h == NULL || name == NULL || out == NULL)
    return BW_EINVAL;
  const snap_t *s = snap_pin(h);
  int rc = BW_ENOTFOUND;
  for (uint32_t i = 0; i < s->ncomp; i++) {
    if (strcmp(s->info[i].name, name) == 0) {
      *out = s->info[i];
      rc = 0;
      break;
    }
  }
  snap_unpin(h);
  return rc;
}

int bw_health_metrics(const bw_health_t *h, bw_health_metrics_t *out) {
  if (h == NULL || out == NULL)
    return BW_EINVAL;
  const uint64_t *src = (const uint64_t *)(const void *)&h->m;
  uint64_t *dst = (uint64_t *)(void *)out;
  for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
    dst[i] = bw__ld64_rlx(&src[i]); /* relaxed: see inc() */
  return 0;
}

int bw_health_answer(bw_ctx_t *ctx, const bw_msg_t *req, int status, const char *reason) {
  if (ctx == NULL || req == NULL || !status_ok(status))
    return BW_EINVAL;
  bw_health_answer_t a;
  memset(&a, 0, sizeof a);
  a.status = status;
  copy_text(a.reason, sizeof a.reason, reason);
  return bw_reply(ctx, req, 0, BW_HEALTH_MSG_ANSWER, &a, sizeof a);
}

/* --- the monitor: signals and transitions ------------------------------------------------- */

static void signal_all(hm_actor_t *a, int kind, int cause, int from, int to, const char *comp,
                       const char *reason) {
  bw_health_t *h = a->h;
  bw_health_signal_t sg;
  memset(&sg, 0, sizeof sg);
  sg.kind = kind;
  sg.cause = cause;
  sg.from = from;
  sg.to = to;
  sg.time_ms = bw_now_ms(h->rt);
  copy_text(sg.component, sizeof sg.component, comp);
  copy_text(sg.reason, sizeof sg.reason, reason);
  for (uint32_t i = 0; i < BW_HEALTH_MAX_SUBSCRIBERS; i++) {
    /* acquire: pairs with the subscriber's CAS; only the pid is read */
    bw_pid_t p = bw__ld64_acq(&h->subs[i]);
    if (p == BW_PID_NONE)
      continue;
    int rc = bw_send(h->rt, p, BW_HEALTH_MSG_SIGNAL, &sg, sizeof sg);
    if (rc == BW_ENOPROC)
      (void)bw__cas64(&h->subs[i], p, BW_PID_NONE);
    else if (rc == 0)
      inc(&h->m.signals);
  }
}

static int cause_of(int kind, bool worse) {
  switch (kind) {
  case BW_HEALTH_KIND_BREAKER:
    return worse ? BW_HEALTH_CAUSE_BREAKER_OPENED : BW_HEALTH_CAUSE_BREAKER_CLOSED;
  case BW_HEALTH_KIND_BULKHEAD:
    return worse ? BW_HEALTH_CAUSE_BULKHEAD_REJECTING : BW_HEALTH_CAUSE_BULKHEAD_RECOVERED;
  default:
    return worse ? BW_HEALTH_CAUSE_COMPONENT_FELL : BW_HEALTH_CAUSE_COMPONENT_RECOVERED;
  }
}

/* Sets component i's judgement; a change of status is a transition (since,
 * a signal, the recovery clock). */
static void set_status(hm_actor_t *a, uint32_t i, int32_t status, const char *reason) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  const char *r = reason != NULL ? reason : "";
  if (status == c->status) {
    if (strncmp(c->reason, r, sizeof c->reason - 1) != 0) {
      copy_text(c->reason, sizeof c->reason, r);
      h->dirty = true;
    }
    return;
  }
  int32_t from = c->status;
  uint64_t now = bw_now_ms(h->rt);
  c->status = status;
  c->since_ms = now;
  copy_text(c->reason, sizeof c->reason, r);
  if (status == BW_HEALTH_UNHEALTHY)
    c->next_action_ms = now + h->comps[i].d.action_after_ms;
  h->dirty = true;
  inc(&h->m.transitions);
  bool worse = status > from;
  signal_all(a, worse ? BW_HEALTH_PAIN : BW_HEALTH_PLEASURE, cause_of(h->comps[i].d.kind, worse),
             from, status, h->comps[i].name, c->reason);
}

/* After each message: the aggregate, its transition, and a new snapshot if
 * anything changed. */
static void settle(hm_actor_t *a) {
  bw_health_t *h = a->h;
  if (!h->dirty)
    return;
  int32_t worst = BW_HEALTH_HEALTHY;
  uint32_t wi = UINT32_MAX;
  for (uint32_t i = 0; i < h->seen; i++) {
    if (h->st[i].status > worst) {
      worst = h->st[i].status;
      wi = i;
    }
  }
  if (worst != h->agg) {
    int32_t from = h->agg;
    h->agg = worst;
    h->agg_since = bw_now_ms(h->rt);
    inc(&h->m.aggregate_transitions);
    char why[BW_HEALTH_REASON_MAX];
    if (wi != UINT32_MAX)
      fmt_text(why, sizeof why, "%s: %s", h->comps[wi].name, h->st[wi].reason);
    else
      copy_text(why, sizeof why, "all components healthy");
    if (bw_event_wanted(h->rt, BW_EV_HEALTH_CHANGED)) {
      bw_event_t ev;
      memset(&ev, 0, sizeof ev);
      ev.type = BW_EV_HEALTH_CHANGED;
      ev.source = bw_self(a->ctx);
      ev.subject = bw_self(a->ctx);
      ev.a = from;
      ev.b = worst;
      bw_event_set_names(&ev, h->name, wi != UINT32_MAX ? h->comps[wi].name : NULL, why);
      bw_event_publish(h->rt, &ev);
    }
    bool worse = worst > from;
    signal_all(a, worse ? BW_HEALTH_PAIN : BW_HEALTH_PLEASURE,
               worse ? BW_HEALTH_CAUSE_HEALTH_FELL : BW_HEALTH_CAUSE_HEALTH_RECOVERED, from, worst,
               "", why);
  }
  if (publish(h, h->seen))
    h->dirty = false;
}

/* --- the monitor: checks ----------------------------------------------------------------------- */

static bw_pid_t resolve(const comp_t *c, bw_runtime_t *rt) {
  if (c->d.target_name == NULL)
    return c->d.pid;
  bw_pid_t p = BW_PID_NONE;
  return bw_whereis(rt, c->d.target_name, &p) == 0 ? p : BW_PID_NONE;
}

static void unhealthy_code(hm_actor_t *a, uint32_t i, int rc) {
  set_status(a, i, BW_HEALTH_UNHEALTHY,
             rc == BW_ENOPROC || rc == BW_ENOTFOUND ? "not running" : bw_strerror(rc));
}

/* actor and bulkhead: one request in flight at most */
static void request(hm_actor_t *a, uint32_t i) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  const comp_t *d = &h->comps[i];
  if (c->pending)
    return; /* its own deadline settles it */
  c->probes++;
  bw_pid_t pid = resolve(d, h->rt);
  if (pid == BW_PID_NONE) {
    c->judged_seq = c->probes;
    unhealthy_code(a, i, BW_ENOPROC);
    return;
  }
  if (pid != c->target_pid)
    c->bh_have = false; /* a new pool: its counters start over */
  c->target_pid = pid;
  uint32_t type = d->d.kind == BW_HEALTH_KIND_ACTOR ? BW_HEALTH_MSG_CHECK : BW_BULKHEAD_METRICS;
  int rc = bw_request(a->ctx, pid, type, NULL, 0, d->d.timeout_ms, &c->ref);
  inc(&h->m.checks);
  if (rc != 0) {
    c->judged_seq = c->probes;
    unhealthy_code(a, i, rc);
    return;
  }
  c->pending = true;
  c->pending_seq = c->probes;
}

static void spawn_helper(hm_actor_t *a, bw_pid_t *slot);

static void run_check(hm_actor_t *a, uint32_t i) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  if (c->running && !(c->overrun && !bw_is_alive(h->rt, c->helper))) {
    if (c->overrun)
      inc(&h->m.overruns);
    return; /* not started again until it has returned */
  }
  if (c->helper == BW_PID_NONE || !bw_is_alive(h->rt, c->helper))
    spawn_helper(a, &c->helper);
  if (c->helper == BW_PID_NONE) {
    set_status(a, i, BW_HEALTH_UNHEALTHY, "no helper thread");
    return;
  }
  hm_run_t r = {i, ++c->seq};
  int rc = bw_send(h->rt, c->helper, HM_RUN, &r, sizeof r);
  inc(&h->m.checks);
  if (rc != 0) {
    unhealthy_code(a, i, rc);
    return;
  }
  c->running = true;
  c->overrun = false;
  c->deadline = 0;
  bw_send_after(h->rt, bw_self(a->ctx), h->comps[i].d.timeout_ms, HM_DEADLINE, &r, sizeof r,
                &c->deadline);
}

static void poll_breaker(hm_actor_t *a, uint32_t i) {
  const bw_health_component_t *d = &a->h->comps[i].d;
  switch (bw_breaker_state(d->breaker)) {
  case BW_BREAKER_OPEN:
    set_status(a, i, d->open_status, "open");
    break;
  case BW_BREAKER_HALF_OPEN:
    set_status(a, i, d->half_open_status, "half_open");
    break;
  case BW_BREAKER_FORCED_OPEN:
    set_status(a, i, d->forced_open_status, "forced_open");
    break;
  default:
    set_status(a, i, BW_HEALTH_HEALTHY, "");
    break;
  }
}

static void eval_restarts(hm_actor_t *a, uint32_t i, uint64_t now) {
  bw_health_t *h = a->h;
  uint32_t in = 0;
  for (uint32_t k = 0; k < h->rst_n; k++)
    if (h->rst[k] + h->cfg.restart_window_ms > now)
      in++;
  if (in > h->cfg.restart_limit) {
    char why[BW_HEALTH_REASON_MAX];
    fmt_text(why, sizeof why, "%u restarts in %llu ms, last %s", in,
             (unsigned long long)h->cfg.restart_window_ms, h->rst_last);
    set_status(a, i, BW_HEALTH_DEGRADED, why);
  } else {
    set_status(a, i, BW_HEALTH_HEALTHY, "");
  }
}

static void expire_hold(hm_actor_t *a, uint32_t i, uint64_t now) {
  if (a->h->st[i].status != BW_HEALTH_HEALTHY && now >= a->h->st[i].until_ms)
    set_status(a, i, BW_HEALTH_HEALTHY, "");
}

/* --- the monitor: recovery ----------------------------------------------------------------- */

static void recover(hm_actor_t *a, uint32_t i, uint64_t now) {
  bw_health_t *h = a->h;
  cst_t *c = &h->st[i];
  const bw_health_component_t *d = &h->comps[i].d;
  if (d->action == BW_HEALTH_ACTION_NONE || c->status != BW_HEALTH_UNHEALTHY ||
      now < c->next_action_ms)
    return;
  bool probed = d->kind == BW_HEALTH_KIND_ACTOR || d->kind == BW_HEALTH_KIND_BULKHEAD;
  if (probed && c->actions > 0 && c->judged_seq <= c->acted_seq)
    return; /* no probe since the last action has answered yet */
  /* the probe this round makes right after (round_) races with the action
   * (it may reach the instance being replaced): it does not count either */
  c->acted_seq = c->probes + 1;
  c->next_action_ms = now + d->action_after_ms;
  const char *what = "";
  int rc = 0;
  if (d->action == BW_HEALTH_ACTION_RESET_BREAKER) {
    what = "reset breaker";
    rc = bw_breaker_reset(d->breaker);
  } else if (d->action == BW_HEALTH_ACTION_RESTART && d->sup == BW_PID_NONE) {
    what = "restart: kill";
    bw_pid_t pid = resolve(&h->comps[i], h->rt);
    rc = pid == BW_PID_NONE ? BW_ENOPROC
                            : bw_exit(h->rt, pid, BW_REASON_KILL, 0, "health: recovery restart");
  } else {
    /* through the supervisor or a user function: both may block (bw_call),
     * so on the recovery helper's thread */
    what = d->action == BW_HEALTH_ACTION_CALL ? "call" : "restart: supervisor";
    if (h->recovery_helper == BW_PID_NONE || !bw_is_alive(h->rt, h->recovery_helper))
      spawn_helper(a, &h->recovery_helper);
    uint32_t idx = i;
    rc = h->recovery_helper == BW_PID_NONE
             ? BW_ETHREAD
             : bw_send(h->rt, h->recovery_helper, HM_RECOVER, &idx, sizeof idx);
  }
  c->actions++;
  c->action_rc = rc;
  h->dirty = true;
  inc(&h->m.actions);
  char why[BW_HEALTH_REASON_MAX];
  fmt_text(why, sizeof why, "%s%s%s", what, rc != 0 ? ": " : "", rc != 0 ? bw_strerror(rc) : "");
  signal_all(a, BW_HEALTH_ACTION, BW_HEALTH_CAUSE_RECOVERY_ACTION, c->status, c->status,
             h->comps[i].name, why);
}

/* --- the monitor: rounds and messages ------------------------------------------------------- */

/* Picks up components added since the last look. */
static void pick_up(hm_actor_t *a) {
  bw_health_t *h = a->h;
  /* acquire: pairs with bw_health_add's release; the descriptors are complete */
  uint32_t n = bw__ld32_acq(&h->ncomp);
  uint64_t now = bw_now_ms(h->rt);
  for (uint32_t i = h->seen; i < n; i++) {
    cst_t *c = &h->st[i];
    /* the helper and the run sequence outlive an incarnation: a result of
     * a predecessor's run must not pass for one of ours */
    bw_pid_t helper = c->helper;
    uint32_t seq = c->seq;
    memset(c, 0, sizeof *c);
    c->helper = helper;
    c->seq = seq;
    c->status = BW_HEALTH_HEALTHY;
    c->since_ms = now;
    copy_text(c->reason, sizeof c->reason, i < h->nbuiltin ? "" : "not checked yet");
    h->dirty = true;
  }
  h->seen = n;
}

static void round_(hm_actor_t *a) {
  bw_health_t *h = a->h;
  inc(&h->m.rounds);
  pick_up(a);
  uint64_t now = bw_now_ms(h->rt);
  for (uint32_t i = 0; i < h->seen; i++) {
    recover(a, i, now);
    switch (h->comps[i].d.kind) {
    case BW_HEALTH_KIND_ACTOR:
    case BW_HEALTH_KIND_BULKHEAD:
      request(a, i);
      break;
    case BW_HEALTH_KIND_CHECK:
      run_check(a, i);
      break;
    case BW_HEALTH_KIND_BREAKER:
      poll_breaker(a, i);
      break;
    case BW_HEALTH_KIND_RESTARTS:
      eval_restarts(a, i, now);
      break;
    default:
      expire_hold(a, i, now);
      break;
    }
  }
}

static uint32_t find_builtin(const bw_health_t *h, int kind) {
  for (uint32_t i = 0; i < h->nbuiltin; i++)
    if ((int)h->comps[i].d.kind == kind)
      return i;
  return UINT32_MAX;
}

/* A bus event: live (counted in events) or replayed by the recorder to a
 * new incarnation (the restart ring is rebuilt from the replay, with the
 * events' own times, so the window is judged as if nobody had restarted). */
static void on_event(hm_actor_t *a, const bw_event_t *ev, bool live) {
  bw_health_t *h = a->h;
  if (live)
    inc(&h->m.events);
  uint64_t t = ev->time_ns / 1000000ull, now = bw_now_ms(h->rt);
  uint32_t i;
  char why[BW_HEALTH_REASON_MAX];
  switch (ev->type) {
  case BW_EV_CHILD_RESTARTED:
    if ((i = find_builtin(h, BW_HEALTH_KIND_RESTARTS)) == UINT32_MAX)
      return;
    h->rst[h->rst_pos] = t;
    h->rst_pos = (h->rst_pos + 1) % (h->cfg.restart_limit + 1u);
    if (h->rst_n < h->cfg.restart_limit + 1u)
      h->rst_n++;
    fmt_text(h->rst_last, sizeof h->rst_last, "%.24s/%.24s", ev->source_name, ev->subject_id);
    eval_restarts(a, i, now);
    break;
  case BW_EV_SUP_ESCALATED:
    if ((i = find_builtin(h, BW_HEALTH_KIND_ESCALATIONS)) == UINT32_MAX ||
        t + h->cfg.escalation_hold_ms <= now)
      return; /* (a replayed one whose hold is over says nothing now) */
    h->st[i].until_ms = t + h->cfg.escalation_hold_ms;
    fmt_text(why, sizeof why, "supervisor %.31s escalated", ev->source_name);
    set_status(a, i, BW_HEALTH_UNHEALTHY, why);
    expire_hold(a, i, now);
    break;
  case BW_EV_WATCHDOG_HUNG:
    if ((i = find_builtin(h, BW_HEALTH_KIND_WATCHDOG)) == UINT32_MAX ||
        t + h->cfg.hang_hold_ms <= now)
      return;
    h->st[i].until_ms = t + h->cfg.hang_hold_ms;
    if (ev->subject_id[0] != '\0')
      fmt_text(why, sizeof why, "%.31s hung (%lld ms)", ev->subject_id,
               (long long)(ev->a / 1000000));
    else
      fmt_text(why, sizeof why, "actor %llu hung (%lld ms)", (unsigned long long)ev->subject,
               (long long)(ev->a / 1000000));
    set_status(a, i, h->cfg.hang_status, why);
    expire_hold(a, i, now);
    break;
  case BW_EV_BREAKER_STATE:
    /* react at once rather than at the next round */
    for (i = h->nbuiltin; i < h->seen; i++)
      if (h->comps[i].d.kind == BW_HEALTH_KIND_BREAKER)
        poll_breaker(a, i);
    break;
  default:
    break;
  }
}

static uint32_t find_pending(const bw_health_t *h, uint64_t ref) {
  for (uint32_t i = h->nbuiltin; i < h->seen; i++)
    if (h->st[i].pending && h->st[i].ref == ref)
      return i;
  return UINT32_MAX;
}

static void on_reply(hm_actor_t *a, const bw_msg_t *msg) {
  bw_health_t *h = a->h;
  uint32_t i = find_pending(h, msg->ref);
  if (i == UINT32_MAX)
    return;
  cst_t *c = &h->st[i];
  const comp_t *d = &h->comps[i];
  c->pending = false;
  c->judged_seq = c->pending_seq;
  inc(&h->m.answers);
  if (d->d.kind == BW_HEALTH_KIND_ACTOR) {
    if (msg->status != 0) {
      unhealthy_code(a, i, msg->status);
    } else if (msg->type == BW_HEALTH_MSG_ANSWER && msg->len == sizeof(bw_health_answer_t)) {
      bw_health_answer_t ans;
      memcpy(&ans, msg->data, sizeof ans);
      ans.reason[sizeof ans.reason - 1] = '\0';
      set_status(a, i, status_ok(ans.status) ? ans.status : BW_HEALTH_UNHEALTHY, ans.reason);
    } else {
      set_status(a, i, BW_HEALTH_HEALTHY, "");
    }
    return;
  }
  bw_bulkhead_metrics_t m;
  int rc = bw_bulkhead_metrics_from_reply(msg, &m);
  if (rc != 0) {
    unhealthy_code(a, i, rc);
    return;
  }
  bool rejecting = c->bh_have && m.rejected > c->bh_rejected;
  uint64_t fresh = rejecting ? m.rejected - c->bh_rejected : 0;
  c->bh_have = true;
  c->bh_rejected = m.rejected;
  bool deep = m.queue_capacity > 0 && (double)m.queued > d->d.queue_fraction * m.queue_capacity;
  char why[BW_HEALTH_REASON_MAX];
  if (rejecting)
    fmt_text(why, sizeof why, "rejecting (%llu since last check)", (unsigned long long)fresh);
  else if (deep)
    fmt_text(why, sizeof why, "queue %u of %u", m.queued, m.queue_capacity);
  set_status(a, i, rejecting || deep ? BW_HEALTH_DEGRADED : BW_HEALTH_HEALTHY,
             rejecting || deep ? why : "");
}

static void on_request_timeout(hm_actor_t *a, const bw_msg_t *msg) {
  uint32_t i = find_pending(a->h, msg->ref);
  if (i == UINT32_MAX)
    return;
  a->h->st[i].pending = false;
  a->h->st[i].judged_seq = a->h->st[i].pending_seq;
  inc(&a->h->m.timeouts);
  set_status(a, i, BW_HEALTH_UNHEALTHY, "timeout");
}

static void on_check_done(hm_actor_t *a, const hm_done_t *d) {
  bw_health_t *h = a->h;
  if (d->idx >= h->seen || h->comps[d->idx].d.kind != BW_HEALTH_KIND_CHECK)
    return;
  cst_t *c = &h->st[d->idx];
  if (!c->running || d->seq != c->seq)
    return;
  c->running = false;
  if (c->overrun) {
    inc(&h->m.late);
    return; /* reported unhealthy at its deadline; the next round runs it again */
  }
  if (c->deadline != 0)
    bw_timer_cancel(h->rt, c->deadline);
  c->deadline = 0;
  inc(&h->m.answers);
  char reason[BW_HEALTH_REASON_MAX];
  memcpy(reason, d->reason, sizeof reason);
  reason[sizeof reason - 1] = '\0';
  if (d->rc < 0)
    set_status(a, d->idx, BW_HEALTH_UNHEALTHY, reason[0] ? reason : bw_strerror(d->rc));
  else if (status_ok(d->rc))
    set_status(a, d->idx, d->rc, reason);
  else
    set_status(a, d->idx, BW_HEALTH_UNHEALTHY, "check returned an unknown status");
}

static void on_check_deadline(hm_actor_t *a, const hm_run_t *r) {
  bw_health_t *h = a->h;
  if (r->idx >= h->seen)
    return;
  cst_t *c = &h->st[r->idx];
  if (!c->running || c->overrun || r->seq != c->seq)
    return;
  c->overrun = true;
  c->deadline = 0;
  inc(&h->m.timeouts);
  set_status(a, r->idx, BW_HEALTH_UNHEALTHY, "timeout");
}

/* --- helpers: dedicated-thread actors for checks and recovery ------------------------------------ */

typedef struct helper {
  bw_health_t *h;
} helper_t;

static int helper_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((helper_t *)state)->h = arg;
  return 0;
}

static int helper_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  bw_health_t *h = ((helper_t *)state)->h;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  if (msg->type == HM_RUN && msg->len == sizeof(hm_run_t)) {
    hm_run_t r;
    memcpy(&r, msg->data, sizeof r);
    /* the descriptor was published before the monitor sent this */
    const bw_health_component_t *d = &h->comps[r.idx].d;
    hm_done_t out;
    memset(&out, 0, sizeof out);
    out.idx = r.idx;
    out.seq = r.seq;
    out.rc = d->check(d->check_arg, out.reason, sizeof out.reason);
    out.reason[sizeof out.reason - 1] = '\0';
    (void)bw_send(rt, msg->from, HM_DONE, &out, sizeof out);
  } else if (msg->type == HM_RECOVER && msg->len == sizeof(uint32_t)) {
    uint32_t idx;
    memcpy(&idx, msg->data, sizeof idx);
    const bw_health_component_t *d = &h->comps[idx].d;
    int rc;
    if (d->action == BW_HEALTH_ACTION_CALL) {
      rc = d->recover(d->recover_arg, d->name);
    } else {
      rc = bw_sup_terminate_child(rt, d->sup, d->child_id);
      if (rc == 0)
        rc = bw_sup_restart_child(rt, d->sup, d->child_id, NULL);
    }
    hm_rdone_t out = {idx, rc};
    (void)bw_send(rt, msg->from, HM_RECOVER_DONE, &out, sizeof out);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t helper_behaviour = {
    .name = "bw.health.helper",
    .state_size = sizeof(helper_t),
    .init = helper_init,
    .handle = helper_handle,
    .never_muted = true, /* see RUNTIME.md, "Back-pressure" */
};

/* Spawns a helper on a thread of its own. Helpers belong to the handle, not
 * to one incarnation of the monitor (they are not linked to it): a
 * restarted monitor finds a check that is still blocked where it was, and
 * never runs it twice at once. bw_health_destroy stops them. */
static void spawn_helper(hm_actor_t *a, bw_pid_t *slot) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = true;
  bw_pid_t pid = BW_PID_NONE;
  if (bw_spawn(a->h->rt, &helper_behaviour, a->h, &o, &pid) != 0)
    pid = BW_PID_NONE;
  *slot = pid;
}

/* --- the event recorder ---------------------------------------------------------------------- */

/*
 * The built-ins judge from bus events, and an event sent to a monitor
 * that is down is lost: a monitor placed after its siblings in a
 * rest_for_one (or anywhere in a one_for_all) is stopped before they are
 * restarted and started after, so it never saw their restarts, and a
 * storm of them passed for calm. The recorder is an actor of the handle
 * (like the helpers: not linked to the monitor, not in the tree, stopped
 * by bw_health_destroy), and the only subscriber to those events. It keeps
 * the last restart_limit + 1 restarts, the last escalation and the last
 * hang report in the handle, and forwards each event to the monitor that
 * attached last. A new incarnation attaches (HM_ATTACH); the recorder
 * replays what it keeps, then forwards: one actor handles both in order,
 * so no event is lost or seen twice. Rejected: a history the monitor
 * derives from supervisors (it does not know them, and they keep counts,
 * not times), and a ring the recorder writes while the monitor reads (a
 * second writer to the monitor's state, and a lock or a seqlock for the
 * texts).
 */
typedef struct recorder {
  bw_health_t *h;
  bw_pid_t target; /* the monitor that attached last, while it lives */
} recorder_t;

static int rec_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((recorder_t *)state)->h = arg;
  return 0;
}

static void rec_forward(bw_ctx_t *ctx, recorder_t *r, uint32_t type, const bw_event_t *ev) {
  if (r->target == BW_PID_NONE)
    return;
  /* a monitor gone meanwhile: its successor attaches and gets the replay */
  if (bw_send(bw_ctx_runtime(ctx), r->target, type, ev, sizeof *ev) == BW_ENOPROC)
    r->target = BW_PID_NONE;
}

static void rec_keep(bw_health_t *h, const bw_event_t *ev) {
  switch (ev->type) {
  case BW_EV_CHILD_RESTARTED:
    if (h->rec_rst == NULL)
      return;
    h->rec_rst[h->rec_rst_pos] = *ev;
    h->rec_rst_pos = (h->rec_rst_pos + 1) % (h->cfg.restart_limit + 1u);
    if (h->rec_rst_n < h->cfg.restart_limit + 1u)
      h->rec_rst_n++;
    break;
  case BW_EV_SUP_ESCALATED:
    h->rec_esc = *ev;
    break;
  case BW_EV_WATCHDOG_HUNG:
    h->rec_hang = *ev;
    break;
  default:
    break;
  }
}

static int rec_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  recorder_t *r = state;
  bw_health_t *h = r->h;
  if (msg->type == BW_MSG_EVENT && msg->len == sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    rec_keep(h, &ev);
    rec_forward(ctx, r, HM_EVENT, &ev);
  } else if (msg->type == HM_ATTACH && msg->len == sizeof(bw_pid_t)) {
    memcpy(&r->target, msg->data, sizeof r->target);
    /* oldest first, so the monitor's ring ends as ours */
    uint32_t size = h->cfg.restart_limit + 1u;
    for (uint32_t k = 0; k < h->rec_rst_n; k++)
      rec_forward(ctx, r, HM_REPLAY, &h->rec_rst[(h->rec_rst_pos + size - h->rec_rst_n + k) % size]);
    if (h->rec_esc.type != 0)
      rec_forward(ctx, r, HM_REPLAY, &h->rec_esc);
    if (h->rec_hang.type != 0)
      rec_forward(ctx, r, HM_REPLAY, &h->rec_hang);
  } else if (msg->flags & BW_MSGF_REQUEST) {
    /* HM_FLUSH (see bw_health_flush), or anything: never leave a caller waiting */
    bw_reply(ctx, msg, msg->type == HM_FLUSH ? 0 : BW_EINVAL, HM_FLUSH, NULL, 0);
  }
  return BW_CONTINUE;
}

/* The bus drops a dead subscriber only when it next publishes to it, and
 * holds 32: leave at once (bw_health_destroy also unsubscribes it, for a
 * recorder that was killed). */
static void rec_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)state;
  (void)reason;
  (void)bw_event_unsubscribe(bw_ctx_runtime(ctx), bw_self(ctx));
}

static const bw_behaviour_t recorder_behaviour = {
    .name = "bw.health.recorder",
    .state_size = sizeof(recorder_t),
    .init = rec_init,
    .handle = rec_handle,
    .terminate = rec_terminate,
};

/* The events the recorder keeps (those of the built-ins watched), and the
 * breakers' transitions, which it only forwards: the monitor takes one
 * of the bus's 32 subscriber places, not two. */
static uint64_t recorded_mask(const bw_health_t *h) {
  uint64_t m = BW_EV_MASK(BW_EV_BREAKER_STATE);
  if (h->cfg.restart_limit > 0)
    m |= BW_EV_MASK(BW_EV_CHILD_RESTARTED);
  if (h->cfg.escalation_hold_ms > 0)
    m |= BW_EV_MASK(BW_EV_SUP_ESCALATED);
  if (h->cfg.hang_hold_ms > 0)
    m |= BW_EV_MASK(BW_EV_WATCHDOG_HUNG);
  return m;
}

/* In hm_init: finds or spawns the recorder and attaches to it. Returns the
 * events the monitor must subscribe to itself: none, or all of them when
 * no recorder could be had (then as before: events while the monitor is
 * down are lost). */
static uint64_t rec_attach(hm_actor_t *a) {
  bw_health_t *h = a->h;
  uint64_t mask = recorded_mask(h);
  /* relaxed: only incarnations of the monitor write it, one after another */
  bw_pid_t rec = bw__ld64_rlx(&h->recorder);
  if (rec == BW_PID_NONE || !bw_is_alive(h->rt, rec)) {
    if (bw_spawn(h->rt, &recorder_behaviour, h, NULL, &rec) != 0)
      rec = BW_PID_NONE;
    /* release: pairs with bw_health_flush's and destroy's acquire */
    bw__st64_rel(&h->recorder, rec);
  }
  bw_pid_t self = bw_self(a->ctx);
  if (rec == BW_PID_NONE || bw_event_subscribe(h->rt, rec, mask) != 0 ||
      bw_send(h->rt, rec, HM_ATTACH, &self, sizeof self) != 0)
    return mask;
  return 0;
}

/* --- the behaviour ------------------------------------------------------------------------------ */

static int hm_init(bw_ctx_t *ctx, void *state, void *arg) {
  hm_actor_t *a = state;
  bw_health_t *h = arg;
  if (h == NULL || h->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_health_pid(h);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(h->rt, old))
    return BW_EALREADY; /* one monitor per handle */
  a->h = h;
  a->ctx = ctx;
  /* a predecessor that was killed left its interval timer running */
  if (h->tick_timer != 0)
    (void)bw_timer_cancel(h->rt, h->tick_timer);
  h->tick_timer = 0;
  /* statuses start afresh (the restart ring too: the recorder's replay
   * rebuilds it); components, subscribers and counters stay */
  h->seen = 0;
  h->rst_n = 0;
  h->rst_pos = 0;
  h->rst_last[0] = '\0';
  h->running = true;
  h->agg = BW_HEALTH_HEALTHY;
  h->agg_since = bw_now_ms(h->rt);
  pick_up(a);
  int rc = bw_send_interval(h->rt, bw_self(ctx), h->cfg.period_ms, HM_TICK, NULL, 0,
                            &h->tick_timer);
  /* the events come through the recorder; without one, to us directly */
  uint64_t own = rc == 0 ? rec_attach(a) : 0;
  if (own != 0)
    rc = bw_event_subscribe(h->rt, bw_self(ctx), own);
  if (rc == 0)
    rc = bw_send(h->rt, bw_self(ctx), HM_TICK, NULL, 0); /* the first round at once */
  if (rc != 0) {
    if (h->tick_timer != 0)
      (void)bw_timer_cancel(h->rt, h->tick_timer);
    h->tick_timer = 0;
    (void)bw_event_unsubscribe(h->rt, bw_self(ctx));
    h->running = false;
    return rc;
  }
  /* release: the handle set up above before callers find us */
  bw__st64_rel(&h->pid, bw_self(ctx));
  settle(a);
  return 0;
}

static int hm_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  hm_actor_t *a = state;
  a->ctx = ctx;
  if (msg->flags & BW_MSGF_REPLY) {
    on_reply(a, msg);
  } else if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    on_request_timeout(a, msg);
  } else if (msg->type == BW_MSG_EVENT && msg->len == sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    on_event(a, &ev, true);
  } else if ((msg->type == HM_EVENT || msg->type == HM_REPLAY) && msg->len == sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    on_event(a, &ev, msg->type == HM_EVENT);
  } else {
    switch (msg->type) {
    case HM_TICK:
      round_(a);
      break;
    case HM_DONE:
      if (msg->len == sizeof(hm_done_t)) {
        hm_done_t d;
        memcpy(&d, msg->data, sizeof d);
        on_check_done(a, &d);
      }
      break;
    case HM_DEADLINE:
      if (msg->len == sizeof(hm_run_t)) {
        hm_run_t r;
        memcpy(&r, msg->data, sizeof r);
        on_check_deadline(a, &r);
      }
      break;
    case HM_RECOVER_DONE:
      if (msg->len == sizeof(hm_rdone_t)) {
        hm_rdone_t d;
        memcpy(&d, msg->data, sizeof d);
        if (d.idx < a->h->seen) {
          a->h->st[d.idx].action_rc = d.rc;
          a->h->dirty = true;
        }
      }
      break;
    case HM_FLUSH:
      settle(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, 0, HM_FLUSH, NULL, 0);
      break;
    case BW_HEALTH_MSG_CHECK:
      /* the monitor is a component too: it answers with the aggregate */
      settle(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_health_answer(ctx, msg, a->h->agg, "");
      break;
    default:
      /* never leave a caller waiting */
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      break;
    }
  }
  settle(a);
  return BW_CONTINUE;
}

static void hm_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  hm_actor_t *a = state;
  bw_health_t *h = a->h;
  if (h == NULL)
    return;
  if (h->tick_timer != 0)
    (void)bw_timer_cancel(h->rt, h->tick_timer);
  h->tick_timer = 0;
  for (uint32_t i = 0; i < h->seen; i++)
    if (h->st[i].deadline != 0)
      (void)bw_timer_cancel(h->rt, h->st[i].deadline);
  (void)bw_event_unsubscribe(h->rt, bw_self(ctx));
  /* readers see the monitor gone (unhealthy) until a successor publishes */
  h->running = false;
  (void)publish(h, h->seen);
  /* A failed CAS means a successor already published itself. */
  (void)bw__cas64(&h->pid, bw_self(ctx), BW_PID_NONE);
}

const bw_behaviour_t bw_health_behaviour = {
    .name = "bw.health",
    .state_size = sizeof(hm_actor_t),
    .init = hm_init,
    .handle = hm_handle,
    .terminate = hm_terminate,
    .never_muted = true, /* see RUNTIME.md, "Back-pressure" */
};
