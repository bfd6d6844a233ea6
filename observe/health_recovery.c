/*
 * bulwark: the health monitor's recovery (see observe/HEALTH.md,
 * "Recovery"): the actions a monitor fires on a component unhealthy for
 * too long, and the dedicated-thread helper actors that run what may
 * block (user checks, restarts through the supervisor, user recovery
 * functions). The monitor that calls them is in health_monitor.c.
 */
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/health.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "bulwark/supervisor.h"
#include "observe/health_internal.h"

/* --- the monitor: recovery ----------------------------------------------------------------- */

void bw__health_recover(hm_actor_t *a, uint32_t i, uint64_t now) {
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
    bw_pid_t pid = bw__health_resolve(&h->comps[i], h->rt);
    rc = pid == BW_PID_NONE ? BW_ENOPROC
                            : bw_exit(h->rt, pid, BW_REASON_KILL, 0, "health: recovery restart");
  } else {
    /* through the supervisor or a user function: both may block (bw_call),
     * so on the recovery helper's thread */
    what = d->action == BW_HEALTH_ACTION_CALL ? "call" : "restart: supervisor";
    if (h->recovery_helper == BW_PID_NONE || !bw_is_alive(h->rt, h->recovery_helper))
      bw__health_spawn_helper(a, &h->recovery_helper);
    uint32_t idx = i;
    rc = h->recovery_helper == BW_PID_NONE
             ? BW_ETHREAD
             : bw_send(h->rt, h->recovery_helper, HM_RECOVER, &idx, sizeof idx);
  }
  c->actions++;
  c->action_rc = rc;
  h->dirty = true;
  bw__health_inc(&h->m.actions);
  char why[BW_HEALTH_REASON_MAX];
  bw__health_fmt_text(why, sizeof why, "%s%s%s", what, rc != 0 ? ": " : "",
                      rc != 0 ? bw_strerror(rc) : "");
  bw__health_signal_all(a, BW_HEALTH_ACTION, BW_HEALTH_CAUSE_RECOVERY_ACTION, c->status,
                        c->status, h->comps[i].name, why);
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
void bw__health_spawn_helper(hm_actor_t *a, bw_pid_t *slot) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = true;
  bw_pid_t pid = BW_PID_NONE;
  if (bw_spawn(a->h->rt, &helper_behaviour, a->h, &o, &pid) != 0)
    pid = BW_PID_NONE;
  *slot = pid;
}
