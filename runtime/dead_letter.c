/*
 * bulwark: dead letters. Each undeliverable or unhandled user message is
 * counted by reason, offered to subscribers as a BW_MSG_DEAD_LETTER (a
 * summary: reason, to, from, type, length; not the payload), and freed
 * (running a moved payload's destructor). Notifications that are
 * themselves undeliverable are counted but not notified again. The
 * library's internal messages are dead letters like any other, marked
 * (see the type ranges in bulwark/message.h).
 */
#include <string.h>

#include "runtime/internal.h"

bool bw_msg_type_is_internal(uint32_t type) {
  if (type >= BW_MSG_SYSTEM_BASE)
    return true;
  if (type < BW_MSG_PATTERN_BASE)
    return false;
  if (type >= BW_MSG_NODE_BASE && type < BW_MSG_NODE_BASE + BW_MSG_BLOCK_SIZE)
    return true;
  return (type & (BW_MSG_BLOCK_SIZE - 1u)) >= BW_MSG_BLOCK_INTERNAL;
}

void bw__dead_letter(bw__runtime *rt, bw__msg *m, int reason) {
  bool internal = bw_msg_type_is_internal(m->pub.type);
  bw__faa64(&rt->dead[reason], 1);
  if (internal)
    bw__faa64(&rt->dead_internal, 1);
  if (!(m->pub.flags & BW__MF_NO_NOTIFY) && bw__subs_wants(&rt->dl_subs, BW__SUBS_ALL)) {
    bw_dead_letter_t dl = {.reason = reason,
                           .type = m->pub.type,
                           .to = m->to,
                           .from = m->pub.from,
                           .len = m->pub.len,
                           .flags = m->pub.flags & (BW_MSGF_REQUEST | BW_MSGF_REPLY | BW_MSGF_MOVED),
                           .internal = internal ? 1u : 0u};
    for (uint32_t i = 0; i < rt->dl_subs.cap; i++) {
      bw_pid_t sub = bw__subs_at(&rt->dl_subs, i, NULL);
      if (sub == BW_PID_NONE)
        continue;
      bw__msg *note = bw__msg_new(rt, sub, BW__K_USER, BW_MSG_DEAD_LETTER, &dl, sizeof(dl));
      if (note == NULL)
        continue;
      note->pub.from = BW_PID_NONE;
      note->pub.flags = BW__MF_NO_NOTIFY;
      if (bw__deliver(rt, note, false) == BW_ENOPROC)
        bw__subs_drop(&rt->dl_subs, i, sub); /* a dead subscriber: runtime/subs.h */
    }
  }
  if (!(m->pub.flags & BW__MF_NO_NOTIFY) && bw_event_wanted(rt, BW_EV_DEAD_LETTER)) {
    bw_event_t ev = {.type = BW_EV_DEAD_LETTER, .subject = m->to, .a = reason,
                     .b = m->pub.type};
    bw_event_set_names(&ev, NULL, NULL, bw_dead_reason_name(reason));
    ev.source = m->pub.from;
    bw_event_publish(rt, &ev);
  }
  bw__msg_free(rt, m);
}

int bw_dead_letter_subscribe(bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  if (!bw_is_alive(rt, pid))
    return BW_ENOPROC;
  return bw__subs_add(&rt->dl_subs, pid, BW__SUBS_ALL);
}

int bw_dead_letter_unsubscribe(bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || pid == BW_PID_NONE)
    return BW_EINVAL;
  return bw__subs_remove(&rt->dl_subs, pid);
}

void bw__dead_letter_init(bw__runtime *rt) { bw__subs_init(&rt->dl_subs, 16); }
void bw__dead_letter_destroy(bw__runtime *rt) { bw__subs_destroy(&rt->dl_subs); }
