/*
 * bulwark: the health monitor's event recorder (see observe/HEALTH.md,
 * "The recorder"): an actor of the handle that keeps the built-ins' events
 * while a monitor is down and replays them to the next incarnation. The
 * monitor (health_monitor.c) attaches to it in its init.
 */
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/health.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "observe/health_internal.h"
#include "runtime/atomic.h"

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
uint64_t bw__health_rec_attach(hm_actor_t *a) {
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
