/*
 * bulwark: the health monitor's published snapshot (see observe/HEALTH.md,
 * "Readers"): the monitor renders its state into one immutable allocation
 * and swaps it in; readers on any thread pin it. The readers' API is in
 * health.c, the monitor that publishes in health_monitor.c.
 */
#include <stdlib.h>
#include <string.h>

#include "bulwark/health.h"
#include "bulwark/runtime.h"
#include "observe/health_internal.h"
#include "runtime/atomic.h"
#include "runtime/jsonw.h"

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
    bw__health_copy_text(in->name, sizeof in->name, h->comps[i].name);
    in->kind = h->comps[i].d.kind;
    in->status = h->st[i].status;
    in->since_ms = h->st[i].since_ms;
    in->actions = h->st[i].actions;
    bw__health_copy_text(in->reason, sizeof in->reason, h->st[i].reason);
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
bool bw__health_publish(bw_health_t *h, uint32_t n) {
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
  bw__health_inc(&h->m.snapshots);
  reclaim(h);
  return true;
}


/* Pins the current snapshot (see reclaim). The handle's reader count is
 * the one field readers write, hence the casts from const. */
const snap_t *bw__health_snap_pin(const bw_health_t *h) {
  bw_health_t *m = (bw_health_t *)(uintptr_t)h;
  bw__faa64(&m->readers, 1);
  bw__fence_seq_cst(); /* orders the count before the pointer's load (Dekker) */
  /* acquire: the snapshot's bytes, written before its pointer */
  return BW__LD_ACQ(&m->snap);
}

void bw__health_snap_unpin(const bw_health_t *h) {
  /* release (acq_rel RMW): our copy is done before the monitor frees */
  bw__faa64(&((bw_health_t *)(uintptr_t)h)->readers, UINT64_MAX);
}
