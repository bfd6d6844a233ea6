/*
 * bulwark: the bulkhead's API (include/bulwark/bulkhead.h; design in
 * patterns/BULKHEAD.md): the options, the handle's lifecycle, and the calls
 * that talk to the pool (its protocol in bulkhead_internal.h). The pool
 * actor is in bulkhead_pool.c, its workers' wrapper in bulkhead_worker.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/ratelimit.h"
#include "bulwark/runtime.h"
#include "patterns/bulkhead_internal.h"
#include "runtime/atomic.h"

/* --- options ---------------------------------------------------------------- */

void bw_bulkhead_opts_init(bw_bulkhead_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->workers = 1;
}

int bw_bulkhead_opts_validate(const bw_bulkhead_opts_t *o) {
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

/* --- lifecycle ----------------------------------------------------------------- */

int bw_bulkhead_new(bw_runtime_t *rt, const bw_bulkhead_opts_t *opts, bw_bulkhead_t **out) {
  bw_bulkhead_opts_t def;
  if (opts == NULL) {
    bw_bulkhead_opts_init(&def);
    opts = &def;
  }
  if (rt == NULL || out == NULL || bw_bulkhead_opts_validate(opts) != 0)
    return BW_EINVAL;
  bw_bulkhead_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return BW_ENOMEM;
  b->rt = rt;
  b->opts = *opts;
  snprintf(b->name, sizeof b->name, "%s", opts->name != NULL ? opts->name : "bulkhead");
  b->opts.name = b->name;
  b->pid = BW_PID_NONE;
  *out = b;
  return 0;
}

int bw_bulkhead_child_spec(bw_bulkhead_t *b, const char *id, bw_child_spec_t *out) {
  if (b == NULL || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_bulkhead_behaviour;
  out->arg = b;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

bw_pid_t bw_bulkhead_pid(const bw_bulkhead_t *b) {
  /* acquire: pairs with the pool's release store at the end of its init */
  return b == NULL ? BW_PID_NONE : bw__ld64_acq(&b->pid);
}

int bw_bulkhead_start(bw_bulkhead_t *b, bw_pid_t *out) {
  if (b == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_bulkhead_pid(b);
  if (pid != BW_PID_NONE && bw_is_alive(b->rt, pid))
    return BW_EALREADY;
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.trap_exit = true;
  /* at runtime stop a top-level pool stops its workers itself, first */
  so.ordered_shutdown = true;
  int rc = bw_spawn(b->rt, &bw_bulkhead_behaviour, b, &so, &pid);
  if (rc != 0)
    return rc;
  b->started_here = true;
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_bulkhead_stop(bw_bulkhead_t *b) {
  if (b == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_bulkhead_pid(b);
  if (pid == BW_PID_NONE || !bw_is_alive(b->rt, pid))
    return 0;
  if (!b->started_here)
    return BW_ERUNNING;
  /* refuse on a scheduler thread before the pool is told anything */
  if (!bw_may_block(b->rt))
    return BW_EWOULDBLOCK;
  (void)bw_exit(b->rt, pid, BW_REASON_SHUTDOWN, 0, "bulkhead: stop");
  int rc = bw_wait_exit(b->rt, pid, 0, NULL);
  if (rc == BW_EWOULDBLOCK)
    return rc;
  b->started_here = false;
  return 0;
}

int bw_bulkhead_destroy(bw_bulkhead_t *b) {
  if (b == NULL)
    return 0;
  int rc = bw_bulkhead_stop(b);
  if (rc != 0)
    return rc;
  free(b);
  return 0;
}

/* The pool's pid for a call from a thread: BW_ENOPROC while none runs. */
static int pool_pid(const bw_bulkhead_t *b, bw_pid_t *pid) {
  if (b == NULL)
    return BW_EINVAL;
  *pid = bw_bulkhead_pid(b);
  return *pid == BW_PID_NONE ? BW_ENOPROC : 0;
}

int bw_bulkhead_stats(const bw_bulkhead_t *b, bw_bulkhead_stats_t *out) {
  bw_pid_t pid;
  if (out == NULL)
    return BW_EINVAL;
  int rc = pool_pid(b, &pid);
  if (rc != 0)
    return rc;
  bw_reply_t r;
  if ((rc = bw_call(b->rt, pid, BW_BULKHEAD_STATS, NULL, 0, 0, &r)) != 0)
    return rc;
  if (r.len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, r.data, sizeof *out);
  return 0;
}

/* --- the calls ------------------------------------------------------------------- */

int bw_bulkhead_submit(bw_bulkhead_t *b, uint32_t type, const void *data, size_t len,
                       uint64_t timeout_ms, bw_reply_t *out) {
  bw_pid_t pid;
  if (type >= BW_MSG_PATTERN_BASE)
    return BW_EINVAL;
  if (len > BW_BULKHEAD_PAYLOAD_MAX)
    return BW_ETOOBIG;
  int rc = pool_pid(b, &pid);
  return rc != 0 ? rc : bw_call(b->rt, pid, type, data, len, timeout_ms, out);
}

int bw_bulkhead_run(bw_bulkhead_t *b, bw_bulkhead_fn fn, void *arg, uint64_t timeout_ms) {
  bw_pid_t pid;
  if (fn == NULL)
    return BW_EINVAL;
  int rc = pool_pid(b, &pid);
  if (rc != 0)
    return rc;
  bw_bulkhead_job_t job = {fn, arg};
  bw_reply_t r;
  return bw_call(b->rt, pid, BW_BULKHEAD_RUN, &job, sizeof job, timeout_ms, &r);
}

int bw_bulkhead_checkout(bw_bulkhead_t *b, bw_pid_t borrower, uint64_t timeout_ms,
                         bw_bulkhead_lease_t *lease) {
  bw_pid_t pid;
  if (lease == NULL)
    return BW_EINVAL;
  int rc = pool_pid(b, &pid);
  if (rc != 0)
    return rc;
  bw_reply_t r;
  rc = bw_call(b->rt, pid, BW_BULKHEAD_CHECKOUT, &borrower, sizeof borrower, timeout_ms, &r);
  if (rc != 0)
    return rc;
  if (r.len != sizeof *lease)
    return BW_EINVAL;
  memcpy(lease, r.data, sizeof *lease);
  return 0;
}

int bw_bulkhead_checkin(bw_bulkhead_t *b, const bw_bulkhead_lease_t *lease) {
  bw_pid_t pid;
  if (lease == NULL)
    return BW_EINVAL;
  int rc = pool_pid(b, &pid);
  return rc != 0 ? rc : bw_send(b->rt, pid, BW_BULKHEAD_CHECKIN, lease, sizeof *lease);
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

int bw_bulkhead_stats_request(bw_ctx_t *ctx, bw_pid_t pool, uint64_t *ref) {
  return bw_request(ctx, pool, BW_BULKHEAD_STATS, NULL, 0, 0, ref);
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

int bw_bulkhead_stats_from_reply(const bw_msg_t *reply, bw_bulkhead_stats_t *out) {
  if (reply == NULL || out == NULL || !(reply->flags & BW_MSGF_REPLY))
    return BW_EINVAL;
  if (reply->status != 0)
    return reply->status;
  if (reply->type != BW_BULKHEAD_STATS || reply->len != sizeof *out)
    return BW_EINVAL;
  memcpy(out, reply->data, sizeof *out);
  return 0;
}
