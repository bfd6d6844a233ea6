/*
 * bulwark: the supervisor's run-time API: synchronous requests to the
 * supervisor actor (bw_call), so they follow its job order.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/atomic.h"
#include "supervisor/sup_internal.h"

/* The deadline of every call below, in ms on the runtime's clock: bw_call's
 * own (its timer, then BW_ETIMEDOUT), so a supervisor that cannot answer
 * (a child's init that never returns, a supervisor muted or descheduled)
 * never holds a caller for good. Process-wide, read on every call: relaxed,
 * since the value stands alone (nothing else is published with it). */
static uint64_t call_timeout_ms = BW_SUP_CALL_TIMEOUT_DEFAULT;

int bw_sup_set_call_timeout(uint64_t ms) {
  if (ms > BW_SUP_CALL_TIMEOUT_MAX)
    return BW_EINVAL;
  bw__st64_rlx(&call_timeout_ms, ms ? ms : BW_SUP_CALL_TIMEOUT_DEFAULT);
  return 0;
}

uint64_t bw_sup_call_timeout(void) { return bw__ld64_rlx(&call_timeout_ms); }

static int call(bw_runtime_t *rt, bw_pid_t sup, uint32_t type, const void *data, size_t len,
                bw_reply_t *r) {
  if (rt == NULL)
    return BW_EINVAL;
  /* an actor that is not a supervisor would never answer: refuse it at
   * once rather than after the deadline */
  const bw_behaviour_t *b = NULL;
  if (bw__actor_behaviour(rt, sup, &b) == 0 && b != &bw__supervisor_behaviour)
    return BW_EINVAL; /* (a dead pid: bw_call says noproc, or shutdown) */
  int rc = bw_call(rt, sup, type, data, len, bw_sup_call_timeout(), r);
  if (r->ptr != NULL && (rc != 0 || type != BW__SUP_WHICH)) {
    if (r->dtor)
      r->dtor(r->ptr);
    r->ptr = NULL;
  }
  return rc;
}

static int id_call(bw_runtime_t *rt, bw_pid_t sup, uint32_t type, const char *id,
                   bw_reply_t *r) {
  if (id == NULL || id[0] == '\0' || strlen(id) >= BW_SUP_ID_MAX)
    return BW_EINVAL;
  return call(rt, sup, type, id, strlen(id) + 1, r);
}

static int pid_out(int rc, const bw_reply_t *r, bw_pid_t *out) {
  if (rc == 0 && out != NULL && r->len == sizeof(bw_pid_t))
    memcpy(out, r->data, sizeof(*out));
  return rc;
}

int bw_sup_which_children(bw_runtime_t *rt, bw_pid_t sup, bw_child_info_t *out, size_t cap,
                          size_t *n) {
  if (n == NULL || (cap > 0 && out == NULL))
    return BW_EINVAL;
  bw_reply_t r;
  int rc = call(rt, sup, BW__SUP_WHICH, NULL, 0, &r);
  if (rc != 0)
    return rc;
  size_t count = r.len / sizeof(bw_child_info_t);
  if (r.ptr != NULL) {
    if (cap > 0)
      memcpy(out, r.ptr, (count < cap ? count : cap) * sizeof(bw_child_info_t));
    if (r.dtor)
      r.dtor(r.ptr);
  }
  *n = count;
  return 0;
}

int bw_sup_count_children(bw_runtime_t *rt, bw_pid_t sup, bw_child_counts_t *out) {
  if (out == NULL)
    return BW_EINVAL;
  bw_reply_t r;
  int rc = call(rt, sup, BW__SUP_COUNT, NULL, 0, &r);
  if (rc == 0 && r.len == sizeof(*out))
    memcpy(out, r.data, sizeof(*out));
  return rc;
}

int bw_sup_child_pid(bw_runtime_t *rt, bw_pid_t sup, const char *id, bw_pid_t *out) {
  if (out == NULL)
    return BW_EINVAL;
  bw_reply_t r;
  return pid_out(id_call(rt, sup, BW__SUP_CHILD_PID, id, &r), &r, out);
}

int bw_sup_start_child(bw_runtime_t *rt, bw_pid_t sup, const bw_child_spec_t *spec,
                       bw_pid_t *out) {
  if (spec == NULL)
    return BW_EINVAL;
  bw_reply_t r;
  return pid_out(call(rt, sup, BW__SUP_START_CHILD, &spec, sizeof(spec), &r), &r, out);
}

int bw_sup_start_dynamic(bw_runtime_t *rt, bw_pid_t sup, void *arg, bw_pid_t *out) {
  bw_reply_t r;
  return pid_out(call(rt, sup, BW__SUP_START_DYN, &arg, sizeof(arg), &r), &r, out);
}

int bw_sup_terminate_child(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_reply_t r;
  return id_call(rt, sup, BW__SUP_TERMINATE, id, &r);
}

int bw_sup_terminate_pid(bw_runtime_t *rt, bw_pid_t sup, bw_pid_t child) {
  bw_reply_t r;
  return call(rt, sup, BW__SUP_TERMINATE_PID, &child, sizeof(child), &r);
}

int bw_sup_restart_child(bw_runtime_t *rt, bw_pid_t sup, const char *id, bw_pid_t *out) {
  bw_reply_t r;
  return pid_out(id_call(rt, sup, BW__SUP_RESTART, id, &r), &r, out);
}

int bw_sup_delete_child(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_reply_t r;
  return id_call(rt, sup, BW__SUP_DELETE, id, &r);
}

int bw_sup_stop(bw_runtime_t *rt, bw_pid_t sup) {
  if (rt == NULL)
    return BW_EINVAL;
  /* only a supervisor, as for the rest of this API; and only from where
   * the wait is possible (a shutdown from another actor would be ignored
   * as a stranger's) */
  const bw_behaviour_t *b = NULL;
  if (bw__actor_behaviour(rt, sup, &b) == 0 && b != &bw__supervisor_behaviour)
    return BW_EINVAL;
  if (!bw_may_block(rt))
    return BW_EWOULDBLOCK;
  int rc = bw_exit(rt, sup, BW_REASON_SHUTDOWN, 0, "bw_sup_stop");
  if (rc != 0)
    return rc;
  return bw_wait_exit(rt, sup, bw_sup_call_timeout(), NULL);
}
