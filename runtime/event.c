/*
 * bulwark: the telemetry event bus.
 *
 * Up to 32 subscribers (pid + mask) in the runtime's subscriber list
 * (runtime/subs.h), which publishers read without a lock. An event goes to
 * each matching subscriber as an ordinary pooled message, so publishing is
 * a lock-free send per subscriber and never blocks. A subscriber that is
 * gone is dropped from its slot by the first publisher that finds it dead.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/internal.h"

static const char *const names[BW_EV__COUNT] = {
    "none",           "child_started",  "child_exited",      "child_restarted",
    "sup_escalated",  "sup_shutdown",   "child_start_failed", "watchdog_hung",
    "dead_letter",    "breaker_state",  "call_rejected",     "bulkhead_rejected",
    "bulkhead_timeout", "health_changed", "node_up",           "node_down"};

const char *bw_event_type_name(int type) {
  return (type > 0 && type < BW_EV__COUNT) ? names[type] : "unknown";
}

void bw__event_init(bw__runtime *rt) { bw__subs_init(&rt->ev_subs, 32); }
void bw__event_destroy(bw__runtime *rt) { bw__subs_destroy(&rt->ev_subs); }

int bw_event_subscribe(bw_runtime_t *rt, bw_pid_t pid, uint64_t mask) {
  if (rt == NULL || pid == BW_PID_NONE || mask == 0)
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  if (!bw_is_alive(rt, pid))
    return BW_ENOPROC;
  return bw__subs_add(&rt->ev_subs, pid, mask);
}

int bw_event_unsubscribe(bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  return bw__subs_remove(&rt->ev_subs, pid);
}

bool bw_event_wanted(const bw_runtime_t *rt, int type) {
  if (rt == NULL || type <= 0 || type >= 64)
    return false;
  return bw__subs_wants(&rt->ev_subs, BW_EV_MASK(type)); /* a hint: see subs.h */
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
  for (uint32_t i = 0; i < rt->ev_subs.cap; i++) {
    uint64_t mask;
    bw_pid_t pid = bw__subs_at(&rt->ev_subs, i, &mask);
    if (pid == BW_PID_NONE || !(mask & BW_EV_MASK(ev->type)))
      continue;
    bw__msg *m = bw__msg_new(rt, pid, BW__K_USER, BW_MSG_EVENT, ev, sizeof(*ev));
    if (m == NULL)
      continue;
    m->pub.from = ev->source;
    m->pub.flags = BW__MF_NO_NOTIFY;
    if (bw__deliver(rt, m, false) == BW_ENOPROC)
      bw__subs_drop(&rt->ev_subs, i, pid);
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
