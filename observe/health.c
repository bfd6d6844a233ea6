/*
 * bulwark: the health monitor's API (see include/bulwark/health.h and
 * observe/HEALTH.md): names, options and components, the handle's
 * lifecycle, registration, and the readers. The published snapshot is in
 * health_snapshot.c, the monitor actor in health_monitor.c, recovery and
 * the helper actors in health_recovery.c, the event recorder in
 * health_recorder.c; shared types in health_internal.h.
 *
 * The handle holds what outlives one incarnation of the actor: the
 * component descriptors (immutable once added), the subscribers, the
 * statuses (reset by each new incarnation), the published snapshot and the
 * counters. The actor is the only writer of statuses, counters and
 * snapshots; registration (bw_health_add) is the only other writer and
 * takes a mutex that the actor never takes. The subscribers are a
 * runtime/subs.h list: the actor takes its lock (a leaf, held for a few
 * stores) only to drop a subscriber it found dead.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/health.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "observe/health_internal.h"
#include "runtime/atomic.h"

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
void bw__health_inc(uint64_t *f) { bw__st64_rlx(f, bw__ld64_rlx(f) + 1); }

void bw__health_copy_text(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* snprintf for texts that are cut to fit on purpose (reasons, names). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void bw__health_fmt_text(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
}

bool bw__health_status_ok(int32_t s) {
  return s >= BW_HEALTH_HEALTHY && s <= BW_HEALTH_UNHEALTHY;
}

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
      !bw__health_status_ok(o->hang_status) ||
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
    if (c->breaker == NULL || !bw__health_status_ok(c->open_status) ||
        !bw__health_status_ok(c->half_open_status) || !bw__health_status_ok(c->forced_open_status))
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
  bw__intensity_free(&h->rst);
  free(h->rec_rst);
  pthread_mutex_destroy(&h->reg_mx);
  bw__subs_destroy(&h->subs);
  free(h);
}

static void builtin_add(bw_health_t *h, bw_health_kind_t kind, const char *name) {
  comp_t *c = &h->comps[h->ncomp++];
  bw_health_component_init(&c->d, kind, NULL);
  bw__health_copy_text(c->name, sizeof c->name, name);
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
  bw__subs_init(&h->subs, BW_HEALTH_MAX_SUBSCRIBERS);
  h->rt = rt;
  h->cfg = *opts;
  bw__health_copy_text(h->name, sizeof h->name, opts->name != NULL ? opts->name : "health");
  h->cfg.name = h->name;
  h->cap = NBUILTIN + opts->max_components;
  h->comps = calloc(h->cap, sizeof *h->comps);
  h->st = calloc(h->cap, sizeof *h->st);
  int rrc = 0;
  if (opts->restart_limit > 0) {
    rrc = bw__intensity_init(&h->rst, opts->restart_limit, opts->restart_window_ms, true);
    h->rec_rst = calloc(opts->restart_limit + 1u, sizeof *h->rec_rst);
  }
  if (h->comps == NULL || h->st == NULL ||
      (opts->restart_limit > 0 && (rrc != 0 || h->rec_rst == NULL))) {
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
  if (!bw__health_publish(h, 0)) {
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

int bw_health_start(bw_health_t *h, bw_pid_t *out) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(h->rt, &bw_health_behaviour, h, NULL, &pid);
  if (rc != 0)
    return rc;
  h->owned = true;
  if (out != NULL)
    *out = pid;
  return 0;
}

static int wait_gone(bw_runtime_t *rt, bw_pid_t pid) {
  if (pid == BW_PID_NONE)
    return 0;
  int rc = bw_wait_exit(rt, pid, 0, NULL);
  return rc == BW_EWOULDBLOCK ? rc : 0;
}

int bw_health_stop(bw_health_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_health_pid(h);
  if (pid == BW_PID_NONE || !bw_is_alive(h->rt, pid))
    return 0;
  if (!h->owned)
    return BW_ERUNNING;
  /* Refuse on a scheduler thread before the monitor is told to stop, so
   * that BW_EWOULDBLOCK leaves everything as it was (a monitor stopped
   * behind the caller's back would never run again). */
  if (!bw_may_block(h->rt))
    return BW_EWOULDBLOCK;
  bw_exit(h->rt, pid, BW_REASON_SHUTDOWN, 0, "health monitor stopped");
  if (wait_gone(h->rt, pid) != 0)
    return BW_EWOULDBLOCK;
  h->owned = false;
  return 0;
}

int bw_health_destroy(bw_health_t *h) {
  if (h == NULL)
    return 0;
  int rc = bw_health_stop(h);
  if (rc != 0)
    return rc;
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
    bw__health_copy_text(e->name, sizeof e->name, c->name);
    e->d.name = e->name;
    if (c->target_name != NULL) {
      bw__health_copy_text(e->target, sizeof e->target, c->target_name);
      e->d.target_name = e->target;
    }
    if (c->child_id != NULL) {
      bw__health_copy_text(e->child_id, sizeof e->child_id, c->child_id);
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
  return bw__subs_add(&h->subs, pid, BW__SUBS_ALL);
}

int bw_health_unsubscribe(bw_health_t *h, bw_pid_t pid) {
  if (h == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  return bw__subs_remove(&h->subs, pid);
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

int bw_health_status(const bw_health_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  /* relaxed: one word, read alone; the snapshot is the consistent view */
  return (int)bw__ld32_rlx(&h->status_pub);
}

int bw_health_json(const bw_health_t *h, char *buf, size_t cap, size_t *len, int *status) {
  if (h == NULL || len == NULL || (cap > 0 && buf == NULL))
    return BW_EINVAL;
  const snap_t *s = bw__health_snap_pin(h);
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
  bw__health_snap_unpin(h);
  return rc;
}

int bw_health_component_info(const bw_health_t *h, const char *name, bw_health_info_t *out) {
  if (h == NULL || name == NULL || out == NULL)
    return BW_EINVAL;
  const snap_t *s = bw__health_snap_pin(h);
  int rc = BW_ENOTFOUND;
  for (uint32_t i = 0; i < s->ncomp; i++) {
    if (strcmp(s->info[i].name, name) == 0) {
      *out = s->info[i];
      rc = 0;
      break;
    }
  }
  bw__health_snap_unpin(h);
  return rc;
}

int bw_health_stats(const bw_health_t *h, bw_health_stats_t *out) {
  if (h == NULL || out == NULL)
    return BW_EINVAL;
  const uint64_t *src = (const uint64_t *)(const void *)&h->m;
  uint64_t *dst = (uint64_t *)(void *)out;
  for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
    dst[i] = bw__ld64_rlx(&src[i]); /* relaxed: see bw__health_inc() */
  return 0;
}

int bw_health_answer(bw_ctx_t *ctx, const bw_msg_t *req, int status, const char *reason) {
  if (ctx == NULL || req == NULL || !bw__health_status_ok(status))
    return BW_EINVAL;
  bw_health_answer_t a;
  memset(&a, 0, sizeof a);
  a.status = status;
  bw__health_copy_text(a.reason, sizeof a.reason, reason);
  return bw_reply(ctx, req, 0, BW_HEALTH_MSG_ANSWER, &a, sizeof a);
}
