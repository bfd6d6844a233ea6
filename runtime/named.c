/*
 * bulwark: requests by registered name (bw_request_named, bw_call_named;
 * bw_send_named is in registry.c): the name is resolved when the request
 * is sent, under the registry's read lock, so the request reaches the
 * actor holding the name at that instant (a supervised child restarted
 * under it, not the incarnation a whereis saw before it crashed), and a
 * name that no live actor holds answers BW_ENOPROC, as a dead pid does
 * (registry.c, bw__registry_with).
 *
 * bw_call_named waits on an inbox of its own (inbox.c), made and
 * destroyed per call, rather than on bw_call's waiter: that waiter's
 * request is sent from request.c's own code, where the name could not be
 * resolved under the lock without a second copy of it. The price is an
 * allocation and a lock or two per call beside bw_call's; a call by name
 * is for finding a service, and a hot path keeps the pid.
 */
#include <string.h>

#include "runtime/internal.h"

typedef struct named_ask {
  bw_ctx_t *ctx;
  uint32_t type;
  const void *data;
  size_t len;
  uint64_t timeout_ms;
  uint64_t *ref;
} named_ask;

static int ask_holder(bw__runtime *rt, bw_pid_t pid, void *ud) {
  (void)rt;
  const named_ask *q = ud;
  return bw_request(q->ctx, pid, q->type, q->data, q->len, q->timeout_ms, q->ref);
}

int bw_request_named(bw_ctx_t *ctx, const char *name, uint32_t type, const void *data,
                     size_t len, uint64_t timeout_ms, uint64_t *ref) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a)
    return BW_ENOTACTOR;
  named_ask q = {ctx, type, data, len, timeout_ms, ref};
  return bw__registry_with(a->rt, name, ask_holder, &q);
}

static int call_check(bw_runtime_t *rt, const char *name, uint32_t type, const void *data,
                      size_t len, bw_reply_t *out) {
  if (rt == NULL || out == NULL || name == NULL || name[0] == '\0' ||
      strlen(name) > BW_NAME_MAX || type >= BW_MSG_SYSTEM_BASE || (len > 0 && data == NULL))
    return BW_EINVAL;
  memset(out, 0, sizeof(*out));
  if (len > BW_MSG_INLINE_MAX)
    return BW_ETOOBIG;
  return bw_may_block(rt) ? 0 : BW_EWOULDBLOCK;
}

int bw_call_named(bw_runtime_t *rt, const char *name, uint32_t type, const void *data,
                  size_t len, uint64_t timeout_ms, bw_reply_t *out) {
  int rc = call_check(rt, name, type, data, len, out);
  bw_inbox_t *ib = NULL;
  if (rc == 0)
    rc = bw_inbox_new(rt, NULL, &ib); /* BW_ESHUTDOWN once the runtime stops */
  uint64_t ref = 0;
  if (rc == 0)
    rc = bw__inbox_request_named(ib, name, type, data, len, timeout_ms, &ref);
  const bw_msg_t *m = NULL;
  if (rc == 0) /* the deadline is the request's, on the runtime's clock */
    rc = bw_inbox_receive_match(ib, BW_INBOX_ANY_TYPE, ref, BW_INBOX_FOREVER, &m);
  if (rc == 0 && m->type == BW_MSG_REQUEST_TIMEOUT) {
    rc = BW_ETIMEDOUT; /* a reply's type is never a system type */
  } else if (rc == 0) {
    bw__inbox_reply_out(ib, m, out);
    rc = m->status; /* the replier's, or BW_ENOPROC: it died first */
  }
  bw_inbox_destroy(ib);
  return rc;
}
