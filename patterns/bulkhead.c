/*
 * bulwark: the bulkhead's API (include/bulwark/bulkhead.h; design in
 * patterns/BULKHEAD.md): the options, starting and stopping a pool, and the
 * calls that talk to it (its protocol in bulkhead_internal.h). The pool
 * actor is in bulkhead_pool.c, its workers' wrapper in bulkhead_worker.c.
 */
#include <stdint.h>
#include <string.h>

#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/ratelimit.h"
#include "bulwark/runtime.h"

/* --- options ---------------------------------------------------------------- */

void bw_bulkhead_opts_init(bw_bulkhead_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->workers = 1;
}

int bw_bulkhead_validate(const bw_bulkhead_opts_t *o) {
  if (o == NULL || o->workers == 0 || o->workers > BW_BULKHEAD_MAX_WORKERS ||
      o->max_overflow > BW_BULKHEAD_MAX_WORKERS || o->queue_capacity > BW_BULKHEAD_MAX_QUEUE ||
      o->queue_timeout_ms > BW_BULKHEAD_MAX_MS || o->overflow_idle_ms > BW_BULKHEAD_MAX_MS ||
      o->restart_period_ms > BW_BULKHEAD_MAX_MS || o->max_restarts < -1 ||
      o->max_restarts > BW_BULKHEAD_MAX_RESTARTS)
    return BW_EINVAL;
  /* a queue needs a timeout (waiting forever is what a bulkhead exists to
   * prevent), and a timeout without a queue means nothing: both are
   * mistakes, so both are refused */
  if ((o->queue_capacity > 0) != (o->queue_timeout_ms > 0))
    return BW_EINVAL;
  if (o->name != NULL && strlen(o->name) > BW_BULKHEAD_NAME_MAX)
    return BW_EINVAL;
  if (o->worker != NULL && o->worker->handle == NULL)
    return BW_EINVAL;
  if (o->rate_limit) {
    if (o->rate == 0 || o->rate_burst == 0 || o->rate_period_ms > BW_RATELIMIT_MAX_PERIOD_MS ||
        o->rate_burst > BW_RATELIMIT_MAX_BURST)
      return BW_EINVAL;
    uint64_t period_ns = (o->rate_period_ms ? o->rate_period_ms : 1000) * 1000000ull;
    if (o->rate > period_ns)
      return BW_EINVAL;
    /* bw_ratelimit_init's last bound (burst * interval within 2^62 ns),
     * so that validate accepts exactly what the pool's init accepts */
    uint64_t interval = period_ns / o->rate + (period_ns % o->rate != 0);
    if (interval > (1ull << 62) / o->rate_burst)
      return BW_EINVAL;
  } else if (o->rate != 0 || o->rate_burst != 0 || o->rate_period_ms != 0) {
    return BW_EINVAL; /* a rate without rate_limit set: surely a mistake */
  }
  return 0;
}

/* ===== The API ============================================================== */

int bw_bulkhead_start(bw_runtime_t *rt, const bw_bulkhead_opts_t *opts, bw_pid_t *out) {
  if (rt == NULL || bw_bulkhead_validate(opts) != 0)
    return BW_EINVAL;
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.trap_exit = true;
  /* at runtime stop a top-level pool stops its workers itself, first */
  so.ordered_shutdown = true;
  return bw_spawn(rt, &bw_bulkhead_behaviour, (void *)opts, &so, out);
}

int bw_bulkhead_stop(bw_runtime_t *rt, bw_pid_t pool) {
  if (rt == NULL || pool == BW_PID_NONE)
    return BW_EINVAL;
  int rc = bw_exit(rt, pool, BW_REASON_SHUTDOWN, 0, "bulkhead: stop");
  if (rc != 0)
    return rc;
  return bw_wait_exit(rt, pool, 0, NULL);
}

int bw_bulkhead_submit(bw_runtime_t *rt, bw_pid_t pool, uint32_t type, const void *data,
                       size_t len, uint64_t timeout_ms, bw_reply_t *out) {
  if (type >= BW_MSG_PATTERN_BASE)
    return BW_EINVAL;
  if (len > BW_BULKHEAD_PAYLOAD_MAX)
    return BW_ETOOBIG;
  return bw_call(rt, pool, type, data, len, timeout_ms, out);
}

int bw_bulkhead_run(bw_runtime_t *rt, bw_pid_t pool, bw_bulkhead_fn fn, void *arg,
                    uint64_t timeout_ms) {
  if (fn == NULL)
    return BW_EINVAL;
  bw_bulkhead_job_t job = {fn, arg};
  bw_reply_t r;
  return bw_call(rt, pool, BW_BULKHEAD_RUN, &job, sizeof job, timeout_ms, &r);
}

int bw_bulkhead_checkout(bw_runtime_t *rt, bw_pid_t pool, bw_pid_t borrower, uint64_t timeout_ms,
                         bw_bulkhead_lease_t *lease) {
  if (lease == NULL)
    return BW_EINVAL;
  bw_reply_t r;
  int rc = bw_call(rt, pool, BW_BULKHEAD_CHECKOUT, &borrower, sizeof borrower, timeout_ms, &r);
  if (rc != 0)
    return rc;
  if (r.len != sizeof *lease)
    return BW_EINVAL;
  memcpy(lease, r.data, sizeof *lease);
  return 0;
}

int bw_bulkhead_metrics(bw_runtime_t *rt, bw_pid_t pool, bw_bulkhead_metrics_t *out) {
  if (out == NULL)
    return BW_EINVAL;
  bw_reply_t r;
  int rc = bw_call(rt, pool, BW_BULKHEAD_METRICS, NULL, 0, 0, &r);
  if (rc != 0)
    return rc;
  if (r.len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, r.data, sizeof *out);
  return 0;
}

int bw_bulkhead_checkin(bw_runtime_t *rt, bw_pid_t pool, const bw_bulkhead_lease_t *lease) {
  if (lease == NULL)
    return BW_EINVAL;
  return bw_send(rt, pool, BW_BULKHEAD_CHECKIN, lease, sizeof *lease);
}

int bw_bulkhead_run_request(bw_ctx_t *ctx, bw_pid_t pool, bw_bulkhead_fn fn, void *arg,
                            uint64_t timeout_ms, uint64_t *ref) {
  if (fn == NULL)
    return BW_EINVAL;
  bw_bulkhead_job_t job = {fn, arg};
  return bw_request(ctx, pool, BW_BULKHEAD_RUN, &job, sizeof job, timeout_ms, ref);
}

int bw_bulkhead_checkout_request(bw_ctx_t *ctx, bw_pid_t pool, uint64_t timeout_ms,
                                 uint64_t *ref) {
  return bw_request(ctx, pool, BW_BULKHEAD_CHECKOUT, NULL, 0, timeout_ms, ref);
}

int bw_bulkhead_metrics_request(bw_ctx_t *ctx, bw_pid_t pool, uint64_t *ref) {
  return bw_request(ctx, pool, BW_BULKHEAD_METRICS, NULL, 0, 0, ref);
}

int bw_bulkhead_lease_from_reply(const bw_msg_t *reply, bw_bulkhead_lease_t *out) {
  if (reply == NULL || out == NULL || !(reply->flags & BW_MSGF_REPLY))
    return BW_EINVAL;
  if (reply->status != 0)
    return reply->status;
  if (reply->type != BW_BULKHEAD_CHECKOUT || reply->len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, reply->data, sizeof *out);
  return 0;
}

int bw_bulkhead_metrics_from_reply(const bw_msg_t *reply, bw_bulkhead_metrics_t *out) {
  if (reply == NULL || out == NULL || !(reply->flags & BW_MSGF_REPLY))
    return BW_EINVAL;
  if (reply->status != 0)
    return reply->status;
  if (reply->type != BW_BULKHEAD_METRICS || reply->len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, reply->data, sizeof *out);
  return 0;
}
