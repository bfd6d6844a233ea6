/*
 * bulwark: the telemetry event bus.
 *
 * Up to 32 subscriber slots (pid + mask) that publishers read without a
 * lock; subscribing writes a slot under a mutex (rare). An event goes to
 * each matching subscriber as an ordinary pooled message, so publishing is a
 * lock-free send per subscriber and never blocks. A subscriber that is gone
 * is dropped from its slot by the first publisher that finds it dead.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/internal.h"

#define NSLOTS 32

static const char *const names[BW_EV__COUNT] = {
    "none",           "child_started",  "child_exited",      "child_restarted",
    "sup_escalated",  "sup_shutdown",   "child_start_failed", "watchdog_hung",
    "dead_letter",    "breaker_state",  "call_rejected",     "bulkhead_rejected",
    "bulkhead_timeout", "health_changed", "node_up",           "node_down"};

const char *bw_event_type_name(int type) {
  return (type > 0 && type < BW_EV__COUNT) ? names[type] : "unknown";
}

void bw__event_init(bw__runtime *rt) { pthread_mutex_init(&rt->ev_mx, NULL); }
void bw__event_destroy(bw__runtime *rt) { pthread_mutex_destroy(&rt->ev_mx); }

static void recompute_any(bw__runtime *rt) {
  uint64_t any = 0;
  for (int i = 0; i < NSLOTS; i++)
    if (bw__ld64_rlx(&rt->ev_pid[i]) != 0)
      any |= bw__ld64_rlx(&rt->ev_mask[i]);
  /* release: publishers that see a bit set then read the slots */
  bw__st64_rel(&rt->ev_any, any);
}

int bw_event_subscribe(bw_runtime_t *rt, bw_pid_t pid, uint64_t mask) {
  if (rt == NULL || pid == BW_PID_NONE || mask == 0)
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  if (!bw_is_alive(rt, pid))
    return BW_ENOPROC;
  int rc = BW_ELIMIT;
  pthread_mutex_lock(&rt->ev_mx);
  int free_slot = -1;
  for (int i = 0; i < NSLOTS; i++) {
    bw_pid_t p = bw__ld64_rlx(&rt->ev_pid[i]);
    if (p == pid) {
      bw__st64_rel(&rt->ev_mask[i], mask);
      rc = 0;
      break;
    }
    if (p == 0 && free_slot < 0)
      free_slot = i;
  }
  if (rc != 0 && free_slot >= 0) {
    bw__st64_rel(&rt->ev_mask[free_slot], mask);
    /* release: the mask is in place before the slot is seen in use */
    bw__st64_rel(&rt->ev_pid[free_slot], pid);
    rc = 0;
  }
  recompute_any(rt);
  pthread_mutex_unlock(&rt->ev_mx);
  return rc;
}

int bw_event_unsubscribe(bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  int rc = BW_ENOTFOUND;
  pthread_mutex_lock(&rt->ev_mx);
  for (int i = 0; i < NSLOTS; i++) {
    if (bw__ld64_rlx(&rt->ev_pid[i]) == pid) {
      bw__st64_rel(&rt->ev_pid[i], 0);
      rc = 0;
    }
  }
  recompute_any(rt);
  pthread_mutex_unlock(&rt->ev_mx);
  return rc;
}

bool bw_event_wanted(const bw_runtime_t *rt, int type) {
  if (rt == NULL || type <= 0 || type >= 64)
    return false;
  /* relaxed: a hint; a subscriber added a moment ago may miss one event */
  return (bw__ld64_rlx(&rt->ev_any) & BW_EV_MASK(type)) != 0;
}

static void drop_dead(bw__runtime *rt, int slot, bw_pid_t pid) {
  pthread_mutex_lock(&rt->ev_mx);
  if (bw__ld64_rlx(&rt->ev_pid[slot]) == pid)
    bw__st64_rel(&rt->ev_pid[slot], 0);
  recompute_any(rt);
  pthread_mutex_unlock(&rt->ev_mx);
}

int bw_event_publish(bw_runtime_t *rt, bw_event_t *ev) {
  if (rt == NULL || ev == NULL || ev->type == 0 || ev->type >= 64)
    return BW_EINVAL;
  if (!bw_event_wanted(rt, (int)ev->type))
    return 0;
  if (ev->time_ns == 0)
    ev->time_ns = bw__now_ns(rt);
  if (ev->source == BW_PID_NONE)
    ev->source = bw__current_pid(rt);
  int n = 0;
  for (int i = 0; i < NSLOTS; i++) {
    /* acquire: pairs with the release store of the slot */
    bw_pid_t pid = bw__ld64_acq(&rt->ev_pid[i]);
    if (pid == 0 || !(bw__ld64_rlx(&rt->ev_mask[i]) & BW_EV_MASK(ev->type)))
      continue;
    bw__msg *m = bw__msg_new(rt, pid, BW__K_USER, BW_MSG_EVENT, ev, sizeof(*ev));
    if (m == NULL)
      continue;
    m->pub.from = ev->source;
    m->pub.flags = BW__MF_NO_NOTIFY;
    if (bw__deliver(rt, m, false) == BW_ENOPROC)
      drop_dead(rt, i, pid);
    else
      n++;
  }
  return n;
}

void bw_event_set_names(bw_event_t *ev, const char *source_name, const char *subject_id,
                        const char *text) {
  if (ev == NULL)
    return;
  snprintf(ev->source_name, sizeof(ev->source_name), "%s", source_name ? source_name : "");
  snprintf(ev->subject_id, sizeof(ev->subject_id), "%s", subject_id ? subject_id : "");
  snprintf(ev->text, sizeof(ev->text), "%s", text ? text : "");
}
