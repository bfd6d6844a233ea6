/*
 * bulwark: validation of supervision tree specs, before anything starts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/sup_internal.h"

#define MAX_DEPTH 32

static int fail(bw_sup_error_t *err, const char *child, const char *fmt, ...) {
  if (err != NULL) {
    memset(err, 0, sizeof(*err));
    err->code = BW_EINVAL;
    snprintf(err->child, sizeof(err->child), "%s", child ? child : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    bw_reason_t *r = &err->reason;
    r->kind = BW_REASON_CRASH;
    r->code = BW_EINVAL;
    snprintf(r->text, sizeof(r->text), "%.119s", err->message);
  }
  return BW_EINVAL;
}

static const char *sup_name(const bw_sup_spec_t *s) { return s->name ? s->name : "(unnamed)"; }

int bw__sup_check_child(const bw_sup_spec_t *parent, const bw_child_spec_t *c, size_t index,
                        bw_sup_error_t *err) {
  const char *pn = sup_name(parent);
  char idx[32];
  snprintf(idx, sizeof(idx), "#%zu", index);
  const char *id = (c->id && c->id[0]) ? c->id : idx;
  if (c->id == NULL || c->id[0] == '\0')
    return fail(err, id, "supervisor %s: child %s has no id", pn, idx);
  if (strlen(c->id) >= BW_SUP_ID_MAX)
    return fail(err, id, "supervisor %s: child id '%.40s...' is too long", pn, c->id);
  if ((c->behaviour != NULL) + (c->supervisor != NULL) + (c->remote != NULL) != 1)
    return fail(err, id,
                "supervisor %s: child '%s' needs exactly one of behaviour, supervisor or remote",
                pn, id);
  if (c->remote != NULL) {
    const bw_remote_child_t *r = c->remote;
    if (r->behaviour == NULL || r->behaviour[0] == '\0' || strlen(r->behaviour) >= 64)
      return fail(err, id, "supervisor %s: remote child '%s' needs an exported behaviour name",
                  pn, id);
    if (r->nodes[0] == NULL)
      return fail(err, id, "supervisor %s: remote child '%s' names no node", pn, id);
    if (r->arg_len > BW_REMOTE_ARG_MAX || (r->arg_len > 0 && r->arg == NULL))
      return fail(err, id, "supervisor %s: remote child '%s' argument too long (max %u bytes)",
                  pn, id, BW_REMOTE_ARG_MAX);
    if (c->type != BW_WORKER)
      return fail(err, id, "supervisor %s: remote child '%s' must be a worker", pn, id);
  }
  if (c->behaviour != NULL && c->behaviour->handle == NULL)
    return fail(err, id, "supervisor %s: child '%s' behaviour has no handle callback", pn, id);
  if (c->restart != BW_PERMANENT && c->restart != BW_TRANSIENT && c->restart != BW_TEMPORARY)
    return fail(err, id, "supervisor %s: child '%s' has an unknown restart type %d", pn, id,
                (int)c->restart);
  if (c->type != BW_WORKER && c->type != BW_SUPERVISOR)
    return fail(err, id, "supervisor %s: child '%s' has an unknown type %d", pn, id, (int)c->type);
  if (c->type == BW_SUPERVISOR && c->supervisor == NULL)
    return fail(err, id, "supervisor %s: child '%s' is of type supervisor without a spec", pn, id);
  if (c->shutdown_ms < BW_SHUTDOWN_INFINITY)
    return fail(err, id, "supervisor %s: child '%s' has an invalid shutdown %lld", pn, id,
                (long long)c->shutdown_ms);
  if (c->overflow != BW_OVERFLOW_REJECT && c->overflow != BW_OVERFLOW_DROP)
    return fail(err, id, "supervisor %s: child '%s' has an invalid overflow policy", pn, id);
  if (c->name != NULL && (c->name[0] == '\0' || strlen(c->name) > BW_NAME_MAX))
    return fail(err, id, "supervisor %s: child '%s' has an invalid registered name", pn, id);
  return 0;
}

static int check(const bw_sup_spec_t *s, int depth, bw_sup_error_t *err) {
  const char *pn = sup_name(s);
  if (depth > MAX_DEPTH)
    return fail(err, pn, "supervisor %s: tree deeper than %d levels", pn, MAX_DEPTH);
  if (s->name != NULL && strlen(s->name) > BW_NAME_MAX)
    return fail(err, pn, "supervisor name '%.40s...' is too long (max %u bytes)", s->name,
                BW_NAME_MAX);
  if (s->strategy < BW_ONE_FOR_ONE || s->strategy > BW_SIMPLE_ONE_FOR_ONE)
    return fail(err, pn, "supervisor %s: unknown strategy %d", pn, (int)s->strategy);
  if (s->intensity < BW_INTENSITY_NONE || s->intensity > 1000000)
    return fail(err, pn, "supervisor %s: intensity %d out of range (-1..1000000)", pn,
                (int)s->intensity);
  if (s->period_ms > 86400000ull)
    return fail(err, pn, "supervisor %s: period %llu ms out of range (at most a day)", pn,
                (unsigned long long)s->period_ms);
  if (s->backoff.jitter_pct > 100)
    return fail(err, pn, "supervisor %s: backoff jitter %u%% over 100", pn, s->backoff.jitter_pct);
  if (s->backoff.multiplier > 1000)
    return fail(err, pn, "supervisor %s: backoff multiplier %u out of range", pn,
                s->backoff.multiplier);
  if (s->nchildren > 0 && s->children == NULL)
    return fail(err, pn, "supervisor %s: nchildren is %zu but children is NULL", pn, s->nchildren);
  if (s->strategy == BW_SIMPLE_ONE_FOR_ONE && s->nchildren != 1)
    return fail(err, pn, "supervisor %s: simple_one_for_one needs exactly one template child, has %zu",
                pn, s->nchildren);
  for (size_t i = 0; i < s->nchildren; i++) {
    const bw_child_spec_t *c = &s->children[i];
    int rc = bw__sup_check_child(s, c, i, err);
    if (rc != 0)
      return rc;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->children[j].id, c->id) == 0)
        return fail(err, c->id, "supervisor %s: duplicate child id '%s'", pn, c->id);
    if (c->supervisor != NULL && (rc = check(c->supervisor, depth + 1, err)) != 0)
      return rc;
  }
  return 0;
}

int bw_supervisor_validate(const bw_sup_spec_t *spec, bw_sup_error_t *err) {
  if (spec == NULL)
    return fail(err, "", "supervisor spec is NULL");
  return check(spec, 1, err);
}
