/*
 * bulwark: the circuit breaker (include/bulwark/breaker.h; design in
 * patterns/BREAKER.md).
 *
 * One actor per breaker is the only writer of its state. It publishes the
 * state in the handle as one 64-bit word that callers read without a round
 * trip:
 *
 *   word = epoch (32) | state (8) | half-open permits left (24)
 *
 * epoch counts transitions. A caller's permit carries the epoch it was
 * granted in, so an outcome reported after the breaker moved on (a call let
 * through while closed, reported once half-open) is counted in the stats
 * but never judged by the wrong state. Half-open permits live in the same
 * word, so taking one is a CAS that fails if the state or epoch changed:
 * never more than N per half-open episode, whatever the concurrency.
 *
 * This file: the handle (options, lifecycle), the guard's admission, the
 * published state, control and stats. The journal is in
 * breaker_journal.c, the actor in breaker_actor.c, proxy mode in
 * breaker_proxy.c; their shared layout in breaker_internal.h.
 */
#include "bulwark/breaker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/runtime.h"
#include "patterns/breaker_internal.h"

/* --- small helpers ------------------------------------------------------------- */

const char *bw_breaker_state_name(int state) {
  switch (state) {
  case BW_BREAKER_CLOSED:
    return "closed";
  case BW_BREAKER_OPEN:
    return "open";
  case BW_BREAKER_HALF_OPEN:
    return "half_open";
  case BW_BREAKER_DISABLED:
    return "disabled";
  case BW_BREAKER_FORCED_OPEN:
    return "forced_open";
  case BW_BREAKER_METRICS_ONLY:
    return "metrics_only";
  default:
    return "unknown";
  }
}

/* --- options ------------------------------------------------------------------------ */

void bw_breaker_opts_init(bw_breaker_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->failure_threshold = 5;
  o->window = BW_BREAKER_WINDOW_TIME;
  o->window_size = 60;
  o->bucket_ms = 1000;
  o->minimum_calls = 10;
  o->failure_rate_pct = 50.0;
  o->slow_rate_pct = 100.0;
  o->success_threshold = 3;
  o->half_open_permits = 3;
  o->half_open_max_ms = BW_BREAKER_HALF_OPEN_MAX_MS;
  o->open_ms = 60000;
  o->open_multiplier = 1;
  o->call_timeout_ms = 10000;
  o->max_inflight = 256;
  o->journal_size = 256;
  o->report_flush_ms = BW_BREAKER_REPORT_FLUSH_MS;
}

static bool pct_ok(double p) { return !isnan(p) && p > 0.0 && p <= 100.0; }

int bw_breaker_opts_validate(const bw_breaker_opts_t *o) {
  if (o == NULL)
    return BW_EINVAL;
  if (o->name != NULL && strlen(o->name) >= BR_NAME_MAX)
    return BW_EINVAL;
  if (o->window != BW_BREAKER_WINDOW_NONE && o->window != BW_BREAKER_WINDOW_COUNT &&
      o->window != BW_BREAKER_WINDOW_TIME)
    return BW_EINVAL;
  /* something must be able to trip it */
  if (o->failure_threshold == 0 && o->window == BW_BREAKER_WINDOW_NONE)
    return BW_EINVAL;
  if (o->window != BW_BREAKER_WINDOW_NONE) {
    if (o->window_size == 0 || o->minimum_calls == 0 || !pct_ok(o->failure_rate_pct))
      return BW_EINVAL;
    if (o->window == BW_BREAKER_WINDOW_COUNT &&
        (o->window_size > BW__WIN_MAX_SIZE || o->minimum_calls > o->window_size))
      return BW_EINVAL;
    if (o->window == BW_BREAKER_WINDOW_TIME) {
      uint64_t wms = (uint64_t)o->window_size * 1000u;
      if (o->bucket_ms == 0 || wms > BR_MAX_MS || wms % o->bucket_ms != 0 ||
          wms / o->bucket_ms > BW__WIN_MAX_SIZE)
        return BW_EINVAL;
    }
    if (o->slow_call_ms > 0 && !pct_ok(o->slow_rate_pct))
      return BW_EINVAL;
  }
  if (o->slow_call_ms > BR_MAX_MS)
    return BW_EINVAL;
  if (o->success_threshold == 0 || o->half_open_permits == 0 ||
      o->half_open_permits < o->success_threshold || o->half_open_permits > BR_MAX_PERMITS)
    return BW_EINVAL;
  if (o->half_open_max_ms > BR_MAX_MS)
    return BW_EINVAL;
  if (o->open_ms == 0 || o->open_ms > BR_MAX_MS || o->open_multiplier == 0 ||
      o->open_multiplier > 1000 || o->jitter_pct > 100)
    return BW_EINVAL;
  if (o->open_max_ms != 0 && (o->open_max_ms < o->open_ms || o->open_max_ms > BR_MAX_MS))
    return BW_EINVAL;
  if (o->target != BW_PID_NONE && o->target_name != NULL)
    return BW_EINVAL;
  if (o->target_name != NULL && (o->target_name[0] == '\0' || strlen(o->target_name) >= BR_TARGET_NAME_MAX))
    return BW_EINVAL;
  if (o->call_timeout_ms > BR_MAX_MS)
    return BW_EINVAL;
  if (o->max_inflight == 0 || o->max_inflight > 65536)
    return BW_EINVAL;
  if (o->journal_size < 16 || o->journal_size > 65536 ||
      (o->journal_size & (o->journal_size - 1)) != 0)
    return BW_EINVAL;
  if (o->report_flush_ms > 60000u)
    return BW_EINVAL;
  return 0;
}

/* --- lifecycle -------------------------------------------------------------------------- */

static void br_free(bw_breaker_t *br) {
  if (br == NULL)
    return;
  for (uint32_t i = 0; i < BR_STRIPES; i++)
    free(br->stripes[i].slots);
  free(br->pend);
  bw__window_free(&br->win);
  free(br);
}

int bw_breaker_new(bw_runtime_t *rt, const bw_breaker_opts_t *opts, bw_breaker_t **out) {
  bw_breaker_opts_t def;
  if (opts == NULL) {
    bw_breaker_opts_init(&def);
    opts = &def;
  }
  if (rt == NULL || out == NULL || bw_breaker_opts_validate(opts) != 0)
    return BW_EINVAL;
  bw_breaker_t *br = aligned_alloc(64, (sizeof *br + 63) & ~(size_t)63);
  if (br == NULL)
    return BW_ENOMEM;
  memset(br, 0, sizeof *br);
  br->rt = rt;
  br->cfg = *opts;
  snprintf(br->name, sizeof br->name, "%s", opts->name != NULL ? opts->name : "breaker");
  br->cfg.name = br->name;
  if (opts->target_name != NULL) {
    snprintf(br->target_name, sizeof br->target_name, "%s", opts->target_name);
    br->cfg.target_name = br->target_name;
  }
  br->slow_ns = opts->slow_call_ms * 1000000ull;
  br->jmask = opts->journal_size - 1;
  br->flush_ms = opts->report_flush_ms;
  if (opts->window == BW_BREAKER_WINDOW_TIME && br->flush_ms > opts->bucket_ms)
    br->flush_ms = opts->bucket_ms; /* filed at most one bucket late */
  br->rng = opts->seed != 0 ? opts->seed : bw_now_ns(rt) ^ (uint64_t)(uintptr_t)br;
  br->word = W_MAKE(1, BW_BREAKER_CLOSED, 0);
  br->pid = BW_PID_NONE;
  int rc = 0;
  for (uint32_t i = 0; i < BR_STRIPES && rc == 0; i++) {
    br_stripe_t *s = &br->stripes[i];
    s->slots = calloc(opts->journal_size, sizeof *s->slots);
    if (s->slots == NULL) {
      rc = BW_ENOMEM;
      break;
    }
    for (uint32_t j = 0; j < opts->journal_size; j++)
      s->slots[j].seq = j;
    s->tail = 1; /* position 0, idle: the first report wakes the actor */
  }
  uint32_t pcap = 1;
  while (pcap < opts->max_inflight * 2u)
    pcap <<= 1;
  if (rc == 0 && (br->pend = calloc(pcap, sizeof *br->pend)) == NULL)
    rc = BW_ENOMEM;
  br->pend_mask = pcap - 1;
  if (rc == 0 && opts->window != BW_BREAKER_WINDOW_NONE) {
    if (opts->window == BW_BREAKER_WINDOW_COUNT)
      rc = bw__window_init(&br->win, BW__WIN_COUNT, opts->window_size, 0);
    else
      rc = bw__window_init(&br->win, BW__WIN_TIME,
                           (uint32_t)((uint64_t)opts->window_size * 1000u / opts->bucket_ms),
                           opts->bucket_ms);
  }
  bw__st64_rlx(&br->pub.failure_rate_milli, (uint64_t)-1);
  bw__st64_rlx(&br->pub.slow_rate_milli, (uint64_t)-1);
  if (rc != 0) {
    br_free(br);
    return rc;
  }
  *out = br;
  return 0;
}

bw_pid_t bw_breaker_pid(const bw_breaker_t *br) {
  /* acquire: a caller that then sends to it sees the actor set up */
  return br == NULL ? BW_PID_NONE : bw__ld64_acq(&br->pid);
}

const char *bw_breaker_name(const bw_breaker_t *br) { return br == NULL ? "" : br->name; }

int bw_breaker_child_spec(bw_breaker_t *br, const char *id, bw_child_spec_t *out) {
  if (br == NULL || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw__br_behaviour;
  out->arg = br;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

int bw_breaker_start(bw_breaker_t *br, bw_pid_t *out) {
  if (br == NULL)
    return BW_EINVAL;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(br->rt, &bw__br_behaviour, br, NULL, &pid);
  if (rc != 0)
    return rc;
  br->owned = true;
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_breaker_stop(bw_breaker_t *br) {
  if (br == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid == BW_PID_NONE || !bw_is_alive(br->rt, pid))
    return 0;
  if (!br->owned)
    return BW_ERUNNING;
  /* refuse on a scheduler thread before the actor is told anything */
  if (!bw_may_block(br->rt))
    return BW_EWOULDBLOCK;
  bw_exit(br->rt, pid, BW_REASON_SHUTDOWN, 0, "breaker stopped");
  int rc = bw_wait_exit(br->rt, pid, 0, NULL);
  if (rc == BW_EWOULDBLOCK)
    return rc;
  br->owned = false;
  return 0;
}

int bw_breaker_destroy(bw_breaker_t *br) {
  if (br == NULL)
    return 0;
  int rc = bw_breaker_stop(br);
  if (rc != 0)
    return rc;
  br_free(br);
  return 0;
}

/* --- guard ------------------------------------------------------------------------------ */

int bw_breaker_acquire(bw_breaker_t *br, bw_breaker_permit_t *p) {
  if (br == NULL || p == NULL)
    return BW_EINVAL;
  bool half;
  int rc = bw__br_admit(br, &p->flags, &p->epoch, &half);
  if (rc != 0) {
    bw__br_count_reject(br, half);
    return rc;
  }
  /* the clock costs ~20 ns a read: only when slow calls are detected */
  p->start_ns = br->slow_ns != 0 && (p->flags & PF_RECORD) ? bw_now_ns(br->rt) : 0;
  return 0;
}

uint64_t bw_breaker_slow_call_ms(const bw_breaker_t *br) {
  return br == NULL ? 0 : br->cfg.slow_call_ms;
}

bw_breaker_state_t bw_breaker_state(const bw_breaker_t *br) {
  if (br == NULL)
    return BW_BREAKER_CLOSED;
  return (bw_breaker_state_t)W_STATE(bw__ld64_acq(&br->word));
}

uint64_t bw_breaker_retry_after_ms(const bw_breaker_t *br) {
  if (br == NULL)
    return 0;
  uint64_t w = bw__ld64_acq(&br->word);
  if (W_STATE(w) == BW_BREAKER_FORCED_OPEN)
    return UINT64_MAX;
  if (W_STATE(w) != BW_BREAKER_OPEN)
    return 0;
  /* relaxed: ordered after the word's acquire load above, and the actor
   * stores it before its release store of the word */
  uint64_t until = bw__ld64_rlx(&br->open_until_ns), now = bw_now_ns(br->rt);
  return until > now ? (until - now + 999999u) / 1000000u : 0;
}

/* --- control ------------------------------------------------------------------------------ */

static int send_ctl(bw_breaker_t *br, uint32_t state) {
  if (br == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  return bw_send(br->rt, pid, BR_MSG_CTL, &state, sizeof state);
}

int bw_breaker_reset(bw_breaker_t *br) { return send_ctl(br, BW_BREAKER_CLOSED); }
int bw_breaker_force_open(bw_breaker_t *br) { return send_ctl(br, BW_BREAKER_FORCED_OPEN); }
int bw_breaker_disable(bw_breaker_t *br) { return send_ctl(br, BW_BREAKER_DISABLED); }
int bw_breaker_metrics_only(bw_breaker_t *br) { return send_ctl(br, BW_BREAKER_METRICS_ONLY); }

int bw_breaker_flush(bw_breaker_t *br, uint64_t timeout_ms) {
  if (br == NULL)
    return BW_EINVAL;
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  bw_reply_t rep;
  return bw_call(br->rt, pid, BR_MSG_FLUSH, NULL, 0, timeout_ms, &rep);
}

int bw_breaker_stats(const bw_breaker_t *br, bw_breaker_stats_t *out) {
  if (br == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t w = bw__ld64_acq(&br->word);
  out->state = W_STATE(w);
  out->half_open_permits_left = W_STATE(w) == BW_BREAKER_HALF_OPEN ? W_PERMITS(w) : 0;
  /* relaxed: each counter is whole and exact on its own; the set is not
   * a snapshot (as documented), so no ordering between them is needed */
  const br_pub_t *p = &br->pub;
  out->successful = bw__ld64_rlx(&p->successful);
  out->failed = bw__ld64_rlx(&p->failed);
  out->slow = bw__ld64_rlx(&p->slow);
  out->ignored = bw__ld64_rlx(&p->ignored);
  out->rejected = bw__ld64_rlx(&p->rejected);
  out->not_permitted = bw__ld64_rlx(&p->not_permitted);
  out->timeouts = bw__ld64_rlx(&p->timeouts);
  out->transitions = bw__ld64_rlx(&p->transitions);
  out->opens = bw__ld64_rlx(&p->opens);
  out->window_calls = bw__ld64_rlx(&p->window_calls);
  for (uint32_t i = 0; i < BR_STRIPES; i++) {
    out->rejected += bw__ld64_rlx(&br->stripes[i].rejected);
    out->not_permitted += bw__ld64_rlx(&br->stripes[i].not_permitted);
    out->journal_fallbacks += bw__ld64_rlx(&br->stripes[i].fallbacks);
  }
  int64_t fr = (int64_t)bw__ld64_rlx(&p->failure_rate_milli);
  int64_t sr = (int64_t)bw__ld64_rlx(&p->slow_rate_milli);
  out->failure_rate = fr < 0 ? -1.0 : (double)fr / 1000.0;
  out->slow_rate = sr < 0 ? -1.0 : (double)sr / 1000.0;
  return 0;
}

