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
 * through while closed, reported once half-open) is counted in the metrics
 * but never judged by the wrong state. Half-open permits live in the same
 * word, so taking one is a CAS that fails if the state or epoch changed:
 * never more than N per half-open episode, whatever the concurrency.
 *
 * Outcomes reach the actor through a journal: BR_STRIPES bounded rings, a
 * reporting thread using the stripe its thread-local index picks (two busy
 * threads do not share a cache line). A report usually merges into the
 * stripe's newest record (same outcome, same epoch: one CAS on its count),
 * else claims a new slot (one CAS on the stripe's tail). The tail's low bit
 * is the actor's "idle" mark: the claim that clears it sends the one wake-up
 * message for that idle period. A report that cannot change the state (a
 * success or ignored outcome of a closed-state permit, not slow) claims
 * without clearing the mark: it waits for the next report that can, or for
 * a flush timer the first such report of an idle period has the actor arm
 * (report_flush_ms). A full stripe falls back to one message per report.
 * Rejections are counted per stripe with one fetch-add; the actor
 * publishes them as events in batches.
 */
#include "bulwark/breaker.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/message.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/window.h"

/* --- atomics ---------------------------------------------------------------
 * Concurrency Kit's ck_pr, as the runtime uses; under ThreadSanitizer (which
 * cannot see ck's inline assembly) the compiler's __atomic builtins with the
 * same orders. RMWs are full barriers here (ck's on x86-64 are locked
 * instructions; __ATOMIC_SEQ_CST under TSan): the journal's idle-mark and
 * the rejection notice rely on that (see where they are used). */
#if defined(BW_TSAN) && BW_TSAN
static inline uint64_t ld64_rlx(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t ld64_acq(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void st64_rlx(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void st64_rel(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline bool cas64(uint64_t *p, uint64_t e, uint64_t v) {
  return __atomic_compare_exchange_n(p, &e, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint64_t faa64(uint64_t *p, uint64_t d) { return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST); }
static inline uint64_t xchg64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t ld32_rlx(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline bool cas32(uint32_t *p, uint32_t e, uint32_t v) {
  return __atomic_compare_exchange_n(p, &e, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint32_t xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t faa32(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST); }
#else
#include <ck_pr.h>
static inline uint64_t ld64_rlx(const uint64_t *p) { return ck_pr_load_64(p); }
static inline uint64_t ld64_acq(const uint64_t *p) {
  uint64_t v = ck_pr_load_64(p);
  ck_pr_fence_acquire();
  return v;
}
static inline void st64_rlx(uint64_t *p, uint64_t v) { ck_pr_store_64(p, v); }
static inline void st64_rel(uint64_t *p, uint64_t v) {
  ck_pr_fence_release();
  ck_pr_store_64(p, v);
}
static inline bool cas64(uint64_t *p, uint64_t e, uint64_t v) {
  ck_pr_fence_atomic();
  bool r = ck_pr_cas_64(p, e, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint64_t faa64(uint64_t *p, uint64_t d) {
  ck_pr_fence_atomic();
  uint64_t r = ck_pr_faa_64(p, d);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint64_t xchg64(uint64_t *p, uint64_t v) {
  ck_pr_fence_atomic();
  uint64_t r = ck_pr_fas_64(p, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint32_t ld32_rlx(const uint32_t *p) { return ck_pr_load_32(p); }
static inline bool cas32(uint32_t *p, uint32_t e, uint32_t v) {
  ck_pr_fence_atomic();
  bool r = ck_pr_cas_32(p, e, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint32_t xchg32(uint32_t *p, uint32_t v) {
  ck_pr_fence_atomic();
  uint32_t r = ck_pr_fas_32(p, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint32_t faa32(uint32_t *p, uint32_t d) {
  ck_pr_fence_atomic();
  uint32_t r = ck_pr_faa_32(p, d);
  ck_pr_fence_atomic_load();
  return r;
}
#endif

/* --- the published word ----------------------------------------------------- */

#define W_PERMITS_MASK 0xFFFFFFull
#define W_MAKE(epoch, state, permits)                                                    \
  (((uint64_t)(uint32_t)(epoch) << 32) | ((uint64_t)((state)&0xFFu) << 24) |            \
   ((uint64_t)(permits)&W_PERMITS_MASK))
#define W_EPOCH(w) ((uint32_t)((w) >> 32))
#define W_STATE(w) ((int)(((w) >> 24) & 0xFFu))
#define W_PERMITS(w) ((uint32_t)((w)&W_PERMITS_MASK))
#define BR_MAX_PERMITS (1u << 20)

/* --- journal records -----------------------------------------------------------
 * One 64-bit word: count (20 bits, >= 1 while the record is live; 0 = taken
 * by the actor, which closes it against merges), outcome kind (2), slow (1),
 * low 16 bits of the epoch, and 24 bits of the slot's position, so a merge
 * cannot land in a slot that was reused since it was read (ABA). */
#define R_COUNT_BITS 20
#define R_COUNT_MAX ((1ull << R_COUNT_BITS) - 1)
#define R_KIND_SHIFT 20
#define R_SLOW_SHIFT 22
#define R_EPOCH_SHIFT 23
#define R_TAG_SHIFT 39
#define R_TAG_MASK 0xFFFFFFull
#define R_KEY(kind, slow, epoch)                                                       \
  (((uint64_t)(kind) << R_KIND_SHIFT) | ((uint64_t)((slow) ? 1 : 0) << R_SLOW_SHIFT) | \
   ((uint64_t)((epoch)&0xFFFFu) << R_EPOCH_SHIFT))
#define R_TAG(pos) (((uint64_t)(pos)&R_TAG_MASK) << R_TAG_SHIFT)
#define R_COUNT(r) ((r)&R_COUNT_MAX)
#define R_KIND(r) ((int)(((r) >> R_KIND_SHIFT) & 3u))
#define R_SLOW(r) ((((r) >> R_SLOW_SHIFT) & 1u) != 0)
#define R_EPOCH16(r) ((uint32_t)(((r) >> R_EPOCH_SHIFT) & 0xFFFFu))

#define BR_STRIPES 8u
#define BR_NAME_MAX 32u
#define BR_TARGET_NAME_MAX 64u
#define BR_MAX_MS (30ull * 24 * 3600 * 1000) /* 30 days: any longer is a unit mistake */
#define BR_DEFAULT_MAX_OPEN_MS (24ull * 3600 * 1000)

/* A journal slot: Vyukov's bounded-queue sequence number (free for
 * position p when seq == p, published when seq == p + 1) and the record. */
typedef struct br_slot {
  uint64_t seq;
  uint64_t rec;
} br_slot_t;

typedef struct br_stripe {
  /* Written by the reporting threads of this stripe. */
  _Alignas(64) uint64_t tail; /* next position << 1 | idle mark */
  uint64_t rejected;          /* guard rejections counted here */
  uint64_t not_permitted;     /* of which half-open without a permit */
  uint64_t fallbacks;         /* reports sent as messages (stripe full) */
  br_slot_t *slots;           /* read-only after creation */
  /* The actor's read position (the actor alone). */
  _Alignas(64) uint64_t head;
} br_stripe_t;

/* A proxied call in flight: the request to answer, kept by copy. */
typedef struct br_pend {
  uint64_t ref; /* our request's ref to the target; 0 = free */
  uint64_t start_ns;
  uint32_t epoch;
  uint32_t flags; /* PF_* of its admission */
  bw_msg_t req;   /* the requester's message, payload cleared */
} br_pend_t;

/* Counters the actor writes (one writer: plain read-modify-store with
 * relaxed atomics, so readers on other threads never see torn values). */
typedef struct br_pub {
  uint64_t successful, failed, slow, ignored;
  uint64_t rejected, not_permitted; /* proxy rejections (guard ones are in the stripes) */
  uint64_t timeouts, transitions, opens, window_calls;
  uint64_t failure_rate_milli; /* int64: percent * 1000, -1 below minimum */
  uint64_t slow_rate_milli;
} br_pub_t;

struct bw_breaker {
  /* Read by every caller: the state, the time an open ends, the actor. */
  _Alignas(64) uint64_t word;
  uint64_t open_until_ns;
  uint64_t pid; /* bw_pid_t of the actor now, BW_PID_NONE if none */
  bw_runtime_t *rt;
  bw_breaker_opts_t cfg; /* name and target_name point into this handle */
  uint64_t slow_ns;      /* cfg.slow_call_ms in ns (0: no detection) */
  uint32_t jmask;        /* journal_size - 1 */
  uint32_t flush_ms;     /* deferred reports wait at most this (0: none wait) */
  bool owned;            /* bw_breaker_start spawned the actor */
  /* Set by a rejecting caller that sends the actor a notice, cleared by the
   * actor before it reads the counts: one notice per batch of rejections. */
  _Alignas(64) uint32_t rej_notice;
  /* Set by a reporter that deferred a record while the actor was idle and
   * sent it BR_MSG_FLUSH_ARM; cleared by the actor (exchange) before the
   * flush that timer ends in: one flush timer per idle period. */
  uint32_t flush_armed;
  br_stripe_t stripes[BR_STRIPES];
  _Alignas(64) br_pub_t pub;
  /* The actor's own (persist across restarts; one actor at a time). */
  bw__window_t win;
  br_pend_t *pend;
  uint32_t pend_mask, npend;
  uint64_t rej_published; /* guard rejections already published as events */
  uint32_t open_count;    /* consecutive opens, for the backoff */
  uint64_t rng;
  char name[BR_NAME_MAX];
  char target_name[BR_TARGET_NAME_MAX];
};

/* The actor's protocol: the internal half of the BW_MSG_BREAKER_BASE block
 * (bulwark/message.h), so that a dead letter of one (a timer or a report
 * to an actor that restarted meanwhile) is marked internal. */
enum {
  BR_MSG_WAKE = BW_MSG_BREAKER_BASE + BW_MSG_BLOCK_INTERNAL + 1, /* the journal has records */
  BR_MSG_REPORT,                         /* fallback report: uint64_t record */
  BR_MSG_REJECTED,                       /* guard rejections to publish */
  BR_MSG_CTL,                            /* uint32_t: the state to enter */
  BR_MSG_FLUSH,                          /* request: answer when caught up */
  BR_MSG_OPEN_DONE,                      /* timer: uint32_t epoch, open wait over */
  BR_MSG_HALF_OPEN_MAX,                  /* timer: uint32_t epoch, half-open too long */
  BR_MSG_FLUSH_ARM,                      /* deferred records wait: arm the flush timer */
  BR_MSG_FLUSH_TICK,                     /* timer: take the deferred records */
};
#define BR_MSG_LAST (BW_MSG_BREAKER_BASE + 0xFFu)

/* The actor's per-incarnation state. */
typedef struct br_actor {
  bw_breaker_t *br;
  bw_ctx_t *ctx;
  uint64_t word;        /* what we last published */
  uint64_t consecutive; /* failures in a row (closed) */
  uint64_t ho_successes;
  bw_timer_t open_timer, ho_timer;
  bw_timer_t flush_timer; /* kept across transitions: only terminate cancels it */
  bool rewake; /* a claimed slot was not yet written: look again */
} br_actor_t;

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

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Single-writer counter update (the actor): readers see whole values. */
static inline void pub_add(uint64_t *f, uint64_t n) { st64_rlx(f, ld64_rlx(f) + n); }

/* Each reporting thread's stripe: assigned round robin on first use, so two
 * busy threads land on different stripes (and cache lines). */
static uint32_t next_stripe;
static _Thread_local uint32_t tl_stripe_plus1;

static inline br_stripe_t *my_stripe(bw_breaker_t *br) {
  uint32_t s = tl_stripe_plus1;
  if (s == 0) {
    /* any order would do: only distinct indices matter, once per thread */
    s = (faa32(&next_stripe, 1) % BR_STRIPES) + 1;
    tl_stripe_plus1 = s;
  }
  return &br->stripes[s - 1];
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
  st64_rlx(&br->pub.failure_rate_milli, (uint64_t)-1);
  st64_rlx(&br->pub.slow_rate_milli, (uint64_t)-1);
  if (rc != 0) {
    br_free(br);
    return rc;
  }
  *out = br;
  return 0;
}

bw_pid_t bw_breaker_pid(const bw_breaker_t *br) {
  /* acquire: a caller that then sends to it sees the actor set up */
  return br == NULL ? BW_PID_NONE : ld64_acq(&br->pid);
}

const char *bw_breaker_name(const bw_breaker_t *br) { return br == NULL ? "" : br->name; }

static const bw_behaviour_t br_behaviour;

int bw_breaker_child_spec(bw_breaker_t *br, const char *id, bw_child_spec_t *out) {
  if (br == NULL || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &br_behaviour;
  out->arg = br;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

int bw_breaker_start(bw_breaker_t *br) {
  if (br == NULL)
    return BW_EINVAL;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(br->rt, &br_behaviour, br, NULL, &pid);
  if (rc == 0)
    br->owned = true;
  return rc;
}

int bw_breaker_create(bw_runtime_t *rt, const bw_breaker_opts_t *opts, bw_breaker_t **out) {
  bw_breaker_t *br = NULL;
  if (out == NULL)
    return BW_EINVAL;
  int rc = bw_breaker_new(rt, opts, &br);
  if (rc != 0)
    return rc;
  if ((rc = bw_breaker_start(br)) != 0) {
    br_free(br);
    return rc;
  }
  *out = br;
  return 0;
}

int bw_breaker_destroy(bw_breaker_t *br) {
  if (br == NULL)
    return 0;
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid != BW_PID_NONE && bw_is_alive(br->rt, pid)) {
    if (!br->owned)
      return BW_ERUNNING;
    /* refuse on a scheduler thread before the actor is told anything */
    if (!bw_may_block(br->rt))
      return BW_EWOULDBLOCK;
    bw_exit(br->rt, pid, BW_REASON_SHUTDOWN, 0, "breaker destroyed");
    int rc = bw_wait_exit(br->rt, pid, 0, NULL);
    if (rc == BW_EWOULDBLOCK)
      return rc;
  }
  br_free(br);
  return 0;
}

/* --- guard ------------------------------------------------------------------------------ */

enum { PF_RECORD = 1u, PF_HALF = 2u };

/* Counts a guard rejection in the caller's stripe and, if someone listens
 * to rejections and no notice is on its way, sends the actor one. */
static void count_reject(bw_breaker_t *br, bool half_open) {
  br_stripe_t *s = my_stripe(br);
  /* The fetch-add is a full barrier, ordered before the notice load: the
   * actor clears the notice (exchange) before it sums the counts, so either
   * it sees this count or we see the cleared notice and send a new one. */
  faa64(&s->rejected, 1);
  if (half_open)
    faa64(&s->not_permitted, 1);
  if (ld32_rlx(&br->rej_notice) != 0 || !bw_event_wanted(br->rt, BW_EV_CALL_REJECTED))
    return;
  if (cas32(&br->rej_notice, 0, 1)) {
    /* With no actor (or a dying one) the notice stays set: the next
     * actor's init clears it and publishes the counts. */
    bw_pid_t pid = bw_breaker_pid(br);
    if (pid != BW_PID_NONE)
      (void)bw_send(br->rt, pid, BR_MSG_REJECTED, NULL, 0);
  }
}

/* The admission decision, shared by the guard and the proxy. Returns 0 with
 * *flags and *epoch set, or BW_ECIRCUIT_OPEN with *half set when it was
 * half-open without a permit. */
static int admit(bw_breaker_t *br, uint32_t *flags, uint32_t *epoch, bool *half) {
  /* acquire: pairs with the actor's release store of the word, so what it
   * published before (open_until_ns) is visible with the state */
  uint64_t w = ld64_acq(&br->word);
  *half = false;
  for (;;) {
    switch (W_STATE(w)) {
    case BW_BREAKER_CLOSED:
    case BW_BREAKER_METRICS_ONLY:
      *flags = PF_RECORD;
      *epoch = W_EPOCH(w);
      return 0;
    case BW_BREAKER_DISABLED:
      *flags = 0;
      *epoch = W_EPOCH(w);
      return 0;
    case BW_BREAKER_HALF_OPEN:
      if (W_PERMITS(w) == 0) {
        *half = true;
        return BW_ECIRCUIT_OPEN;
      }
      /* The CAS fails if anything in the word moved (another permit taken,
       * or a transition): at most N permits per epoch. */
      if (cas64(&br->word, w, w - 1)) {
        *flags = PF_RECORD | PF_HALF;
        *epoch = W_EPOCH(w);
        return 0;
      }
      w = ld64_acq(&br->word);
      continue;
    default: /* open, forced open */
      return BW_ECIRCUIT_OPEN;
    }
  }
}

int bw_breaker_acquire(bw_breaker_t *br, bw_breaker_permit_t *p) {
  if (br == NULL || p == NULL)
    return BW_EINVAL;
  bool half;
  int rc = admit(br, &p->flags, &p->epoch, &half);
  if (rc != 0) {
    count_reject(br, half);
    return rc;
  }
  /* the clock costs ~20 ns a read: only when slow calls are detected */
  p->start_ns = br->slow_ns != 0 && (p->flags & PF_RECORD) ? bw_now_ns(br->rt) : 0;
  return 0;
}

static int classify(const bw_breaker_t *br, int status) {
  if (br->cfg.classify == NULL)
    return status == 0 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
  int k = br->cfg.classify(status, br->cfg.classify_arg);
  return k == BW_BREAKER_SUCCESS || k == BW_BREAKER_IGNORED ? k : BW_BREAKER_FAILURE;
}

/* Sends a record as a message: the journal stripe was full. */
static int journal_fallback(bw_breaker_t *br, br_stripe_t *s, uint64_t rec) {
  faa64(&s->fallbacks, 1);
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  return bw_send(br->rt, pid, BR_MSG_REPORT, &rec, sizeof rec);
}

/* A deferred record was claimed while the actor was idle: make sure a flush
 * timer will take it. The claim (a full barrier) comes before the load of
 * flush_armed, and the actor exchanges flush_armed to 0 (a full barrier)
 * before the drain that timer ends in: either that drain sees our claim
 * (and takes the record, or waits for it to be written), or we see 0 and
 * arm the next one. One message per idle period, not per report. */
static void flush_arm(bw_breaker_t *br) {
  if (ld32_rlx(&br->flush_armed) != 0 || !cas32(&br->flush_armed, 0, 1))
    return;
  /* No actor (yet, or restarting): the next one clears the flag and
   * drains at init. */
  bw_pid_t pid = bw_breaker_pid(br);
  if (pid != BW_PID_NONE)
    (void)bw_send(br->rt, pid, BR_MSG_FLUSH_ARM, NULL, 0);
}

/* Appends one outcome to the caller's stripe (see the file comment).
 * defer: the outcome cannot change the state, so its claim keeps the
 * actor's idle mark and does not wake it (flush_arm instead). */
static int journal_put(bw_breaker_t *br, uint64_t key, bool defer) {
  br_stripe_t *s = my_stripe(br);
  /* acquire: the slot states we read next are at least as new as the claim */
  uint64_t t = ld64_acq(&s->tail);
  uint64_t pos = t >> 1;
  if (pos > 0) {
    /* Merge into the newest record if it is published, not yet taken, and
     * has the same outcome and epoch: keeps this stripe's order, and a
     * steady stream of one outcome needs no new slot (nor wake-up). */
    br_slot_t *last = &s->slots[(pos - 1) & br->jmask];
    if (ld64_acq(&last->seq) == pos) {
      uint64_t v = ld64_rlx(&last->rec);
      if (R_COUNT(v) != 0 && R_COUNT(v) < R_COUNT_MAX &&
          (v & ~R_COUNT_MAX) == (key | R_TAG(pos - 1)) && cas64(&last->rec, v, v + 1))
        return 0;
    }
  }
  br_slot_t *sl;
  for (;;) {
    sl = &s->slots[pos & br->jmask];
    /* acquire: pairs with the actor's release of the slot (seq = p + cap),
     * which it stores after it has taken the record */
    uint64_t seq = ld64_acq(&sl->seq);
    if (seq == pos) {
      /* claim: a full barrier, and it clears the idle mark (a deferred
       * claim keeps it); if the mark was set, this claim owes the actor
       * its wake-up, or a flush */
      if (cas64(&s->tail, t, ((pos + 1) << 1) | (defer ? (t & 1u) : 0u)))
        break;
    } else if (seq < pos) {
      /* the slot still holds the record of position pos - cap: full */
      return journal_fallback(br, s, key | R_TAG(pos) | 1u);
    }
    t = ld64_acq(&s->tail);
    pos = t >> 1;
  }
  /* relaxed: nobody reads the slot before the release below publishes it */
  st64_rlx(&sl->rec, key | R_TAG(pos) | 1u);
  /* release: the record before the sequence number that publishes it */
  st64_rel(&sl->seq, pos + 1);
  if ((t & 1u) && defer) {
    flush_arm(br);
  } else if (t & 1u) {
    bw_pid_t pid = bw_breaker_pid(br);
    /* No actor (yet, or restarting): the next one drains at init. A send
     * that fails for a dying actor likewise. */
    if (pid != BW_PID_NONE)
      (void)bw_send(br->rt, pid, BR_MSG_WAKE, NULL, 0);
  }
  return 0;
}

int bw_breaker_report_ns(bw_breaker_t *br, const bw_breaker_permit_t *p, int status,
                         uint64_t duration_ns) {
  if (br == NULL || p == NULL)
    return BW_EINVAL;
  if (!(p->flags & PF_RECORD))
    return 0; /* disabled when granted: nothing is recorded */
  int kind = classify(br, status);
  bool slow = br->slow_ns != 0 && duration_ns > br->slow_ns;
  /* Only a failure, a slow call or a half-open outcome can move the state
   * (a success or ignored outcome of a closed-state permit never trips, and
   * one granted in an earlier epoch is only counted): the rest may wait. */
  bool defer = br->flush_ms != 0 && !(p->flags & PF_HALF) && kind != BW_BREAKER_FAILURE && !slow;
  return journal_put(br, R_KEY(kind, slow, p->epoch), defer);
}

int bw_breaker_report(bw_breaker_t *br, const bw_breaker_permit_t *p, int status) {
  if (br == NULL || p == NULL)
    return BW_EINVAL;
  uint64_t d = 0;
  if (br->slow_ns != 0 && (p->flags & PF_RECORD)) {
    uint64_t now = bw_now_ns(br->rt);
    d = now > p->start_ns ? now - p->start_ns : 0;
  }
  return bw_breaker_report_ns(br, p, status, d);
}

uint64_t bw_breaker_slow_call_ms(const bw_breaker_t *br) {
  return br == NULL ? 0 : br->cfg.slow_call_ms;
}

bw_breaker_state_t bw_breaker_state(const bw_breaker_t *br) {
  if (br == NULL)
    return BW_BREAKER_CLOSED;
  return (bw_breaker_state_t)W_STATE(ld64_acq(&br->word));
}

uint64_t bw_breaker_retry_after_ms(const bw_breaker_t *br) {
  if (br == NULL)
    return 0;
  uint64_t w = ld64_acq(&br->word);
  if (W_STATE(w) == BW_BREAKER_FORCED_OPEN)
    return UINT64_MAX;
  if (W_STATE(w) != BW_BREAKER_OPEN)
    return 0;
  /* relaxed: ordered after the word's acquire load above, and the actor
   * stores it before its release store of the word */
  uint64_t until = ld64_rlx(&br->open_until_ns), now = bw_now_ns(br->rt);
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

int bw_breaker_metrics(const bw_breaker_t *br, bw_breaker_metrics_t *out) {
  if (br == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t w = ld64_acq(&br->word);
  out->state = W_STATE(w);
  out->half_open_permits_left = W_STATE(w) == BW_BREAKER_HALF_OPEN ? W_PERMITS(w) : 0;
  /* relaxed: each counter is whole and exact on its own; the set is not
   * a snapshot (as documented), so no ordering between them is needed */
  const br_pub_t *p = &br->pub;
  out->successful = ld64_rlx(&p->successful);
  out->failed = ld64_rlx(&p->failed);
  out->slow = ld64_rlx(&p->slow);
  out->ignored = ld64_rlx(&p->ignored);
  out->rejected = ld64_rlx(&p->rejected);
  out->not_permitted = ld64_rlx(&p->not_permitted);
  out->timeouts = ld64_rlx(&p->timeouts);
  out->transitions = ld64_rlx(&p->transitions);
  out->opens = ld64_rlx(&p->opens);
  out->window_calls = ld64_rlx(&p->window_calls);
  for (uint32_t i = 0; i < BR_STRIPES; i++) {
    out->rejected += ld64_rlx(&br->stripes[i].rejected);
    out->not_permitted += ld64_rlx(&br->stripes[i].not_permitted);
    out->journal_fallbacks += ld64_rlx(&br->stripes[i].fallbacks);
  }
  int64_t fr = (int64_t)ld64_rlx(&p->failure_rate_milli);
  int64_t sr = (int64_t)ld64_rlx(&p->slow_rate_milli);
  out->failure_rate = fr < 0 ? -1.0 : (double)fr / 1000.0;
  out->slow_rate = sr < 0 ? -1.0 : (double)sr / 1000.0;
  return 0;
}

/* --- the actor ------------------------------------------------------------------------------ */

static uint64_t now_ms(const br_actor_t *a) { return bw_now_ms(a->br->rt); }

/* The wait of the n-th consecutive open: grown, capped, then shortened by
 * up to jitter_pct percent (never lengthened, so the cap holds). */
static uint64_t open_wait_ms(bw_breaker_t *br) {
  const bw_breaker_opts_t *c = &br->cfg;
  uint64_t cap = c->open_max_ms != 0 ? c->open_max_ms : BR_DEFAULT_MAX_OPEN_MS;
  if (cap < c->open_ms)
    cap = c->open_ms;
  uint64_t wait = c->open_ms;
  if (c->open_multiplier > 1)
    for (uint32_t i = 1; i < br->open_count && wait < cap; i++)
      wait = wait > cap / c->open_multiplier ? cap : wait * c->open_multiplier;
  if (wait > cap)
    wait = cap;
  if (c->jitter_pct > 0) {
    uint64_t span = wait * c->jitter_pct / 100u;
    if (span > 0)
      wait -= splitmix(&br->rng) % (span + 1);
  }
  return wait == 0 ? 1 : wait;
}

static void cancel_timers(br_actor_t *a) {
  if (a->open_timer) {
    bw_timer_cancel(a->br->rt, a->open_timer);
    a->open_timer = 0;
  }
  if (a->ho_timer) {
    bw_timer_cancel(a->br->rt, a->ho_timer);
    a->ho_timer = 0;
  }
}

static void publish_event(br_actor_t *a, uint32_t type, int64_t ea, int64_t eb) {
  bw_runtime_t *rt = a->br->rt;
  if (!bw_event_wanted(rt, (int)type))
    return;
  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.source = bw_self(a->ctx);
  ev.subject = ev.source;
  ev.a = ea;
  ev.b = eb;
  bw_event_set_names(&ev, a->br->name, a->br->name, NULL);
  bw_event_publish(rt, &ev);
}

/* Publishes guard rejections counted since the last time, as one event. */
static void publish_rejections(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  /* exchange first (a full barrier), then sum: see count_reject */
  (void)xchg32(&br->rej_notice, 0);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < BR_STRIPES; i++)
    sum += ld64_rlx(&br->stripes[i].rejected);
  if (sum > br->rej_published) {
    publish_event(a, BW_EV_CALL_REJECTED, (int64_t)(sum - br->rej_published), 0);
    br->rej_published = sum;
  }
}

/* Recomputes the window rates for metrics. */
static void publish_rates(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  if (br->cfg.window == BW_BREAKER_WINDOW_NONE)
    return;
  bw__window_totals_t t;
  bw__window_totals(&br->win, now_ms(a), &t);
  st64_rlx(&br->pub.window_calls, t.calls);
  int64_t fr = -1, sr = -1;
  if (t.calls >= br->cfg.minimum_calls && t.calls > 0) {
    fr = (int64_t)(t.failures * 100000u / t.calls);
    if (br->slow_ns != 0)
      sr = (int64_t)(t.slow * 100000u / t.calls);
  }
  st64_rlx(&br->pub.failure_rate_milli, (uint64_t)fr);
  st64_rlx(&br->pub.slow_rate_milli, (uint64_t)sr);
}

static void arm(br_actor_t *a, uint64_t ms, uint32_t type, uint32_t epoch, bw_timer_t *t) {
  /* a timer that cannot be set (out of memory, stopping) leaves the state
   * as it is; reset or a restart recovers */
  if (bw_send_after(a->br->rt, bw_self(a->ctx), ms, type, &epoch, sizeof epoch, t) != 0)
    *t = 0;
}

/* The only place the state changes. */
static void transition(br_actor_t *a, int to) {
  bw_breaker_t *br = a->br;
  int from = W_STATE(a->word);
  uint32_t epoch = W_EPOCH(a->word) + 1;
  uint32_t permits = 0;
  cancel_timers(a);
  a->consecutive = 0;
  a->ho_successes = 0;
  switch (to) {
  case BW_BREAKER_OPEN: {
    br->open_count++;
    uint64_t wait = open_wait_ms(br);
    /* relaxed: published by the release store of the word below */
    st64_rlx(&br->open_until_ns, bw_now_ns(br->rt) + wait * 1000000ull);
    arm(a, wait, BR_MSG_OPEN_DONE, epoch, &a->open_timer);
    pub_add(&br->pub.opens, 1);
    break;
  }
  case BW_BREAKER_HALF_OPEN:
    permits = br->cfg.half_open_permits;
    if (br->cfg.half_open_max_ms > 0)
      arm(a, br->cfg.half_open_max_ms, BR_MSG_HALF_OPEN_MAX, epoch, &a->ho_timer);
    break;
  case BW_BREAKER_CLOSED:
    br->open_count = 0;
    /* fall through */
  default:
    if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_reset(&br->win);
    break;
  }
  a->word = W_MAKE(epoch, to, permits);
  /* release: open_until_ns (and the reset window) before the state that
   * makes callers read them */
  st64_rel(&br->word, a->word);
  pub_add(&br->pub.transitions, 1);
  publish_event(a, BW_EV_BREAKER_STATE, from, to);
  publish_rates(a);
}

/* Trip check in the closed state. */
static bool should_trip(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  if (br->cfg.failure_threshold > 0 && a->consecutive >= br->cfg.failure_threshold)
    return true;
  if (br->cfg.window == BW_BREAKER_WINDOW_NONE)
    return false;
  bw__window_totals_t t;
  bw__window_totals(&br->win, now_ms(a), &t);
  if (t.calls == 0 || t.calls < br->cfg.minimum_calls)
    return false;
  /* rate >= threshold, as failures * 100 >= pct * calls (no division) */
  if ((double)t.failures * 100.0 >= br->cfg.failure_rate_pct * (double)t.calls)
    return true;
  return br->slow_ns != 0 && (double)t.slow * 100.0 >= br->cfg.slow_rate_pct * (double)t.calls;
}

/* n outcomes of one kind, granted in epoch (only its low 16 bits are
 * compared: journal records carry 16). */
static void on_outcome(br_actor_t *a, int kind, bool slow, uint32_t epoch, uint64_t n) {
  bw_breaker_t *br = a->br;
  switch (kind) {
  case BW_BREAKER_SUCCESS:
    pub_add(&br->pub.successful, n);
    break;
  case BW_BREAKER_FAILURE:
    pub_add(&br->pub.failed, n);
    break;
  default:
    pub_add(&br->pub.ignored, n);
    break;
  }
  if (slow)
    pub_add(&br->pub.slow, n);
  if ((epoch & 0xFFFFu) != (W_EPOCH(a->word) & 0xFFFFu))
    return; /* granted in an earlier state: counted, not judged */
  int st = W_STATE(a->word);
  if (st == BW_BREAKER_CLOSED || st == BW_BREAKER_METRICS_ONLY) {
    if (kind == BW_BREAKER_IGNORED)
      return;
    if (kind == BW_BREAKER_FAILURE)
      a->consecutive += n;
    else
      a->consecutive = 0;
    if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_add(&br->win, now_ms(a), kind == BW_BREAKER_FAILURE, slow, n);
    if (st == BW_BREAKER_CLOSED && should_trip(a))
      transition(a, BW_BREAKER_OPEN);
    return;
  }
  if (st != BW_BREAKER_HALF_OPEN)
    return;
  if (kind == BW_BREAKER_IGNORED) {
    /* an ignored call proves nothing: its permit goes back, so the
     * half-open can still reach its success threshold */
    /* CAS: callers take permits from the same word concurrently */
    uint64_t w = ld64_acq(&br->word);
    while (W_EPOCH(w) == W_EPOCH(a->word) && W_PERMITS(w) + n <= br->cfg.half_open_permits &&
           !cas64(&br->word, w, w + n))
      w = ld64_acq(&br->word);
    return;
  }
  if (kind == BW_BREAKER_FAILURE || (slow && br->slow_ns != 0)) {
    transition(a, BW_BREAKER_OPEN);
    return;
  }
  a->ho_successes += n;
  if (a->ho_successes >= br->cfg.success_threshold)
    transition(a, BW_BREAKER_CLOSED);
}

static void on_record(br_actor_t *a, uint64_t rec) {
  uint64_t n = R_COUNT(rec);
  if (n == 0)
    return;
  on_outcome(a, R_KIND(rec), R_SLOW(rec), R_EPOCH16(rec), n);
}

/* Takes every published record from every stripe; marks each stripe idle
 * when it has caught up with its tail. */
static void drain(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  const uint64_t cap = (uint64_t)br->jmask + 1;
  for (uint32_t i = 0; i < BR_STRIPES; i++) {
    br_stripe_t *s = &br->stripes[i];
    uint64_t head = s->head;
    for (;;) {
      br_slot_t *sl = &s->slots[head & br->jmask];
      /* acquire: pairs with the producer's release of seq (the record) */
      if (ld64_acq(&sl->seq) == head + 1) {
        /* exchange: closes the record against merges, atomically with
         * reading its final count */
        uint64_t rec = xchg64(&sl->rec, 0);
        /* release: the slot is free for position head + cap only after
         * we took the record */
        st64_rel(&sl->seq, head + cap);
        head++;
        on_record(a, rec);
        continue;
      }
      /* acquire: a claim we see here, we see its slot's state after */
      uint64_t t = ld64_acq(&s->tail);
      if ((t >> 1) != head) {
        /* claimed but not yet written: the producer is between its two
         * steps and will not wake us (we are not idle); look again
         * after the messages queued now */
        a->rewake = true;
        break;
      }
      /* caught up: set the idle mark, unless a claim raced in (the CAS
       * fails and we look again). Both this CAS and the producer's claim
       * are full barriers on the same word, so exactly one of them sees
       * the other: no wake-up is lost. */
      if ((t & 1u) || cas64(&s->tail, t, t | 1u))
        break;
    }
    s->head = head;
  }
}

/* Takes every record it can, and comes back for the rest. */
static void catch_up(br_actor_t *a) {
  a->rewake = false;
  drain(a);
  if (a->rewake)
    (void)bw_send(a->br->rt, bw_self(a->ctx), BR_MSG_WAKE, NULL, 0);
  publish_rejections(a);
  publish_rates(a);
}

static void on_ctl(br_actor_t *a, uint32_t to) {
  int st = W_STATE(a->word);
  if (to == BW_BREAKER_CLOSED && st == BW_BREAKER_CLOSED) {
    /* reset of a closed breaker: forget, no transition */
    a->consecutive = 0;
    a->br->open_count = 0;
    if (a->br->cfg.window != BW_BREAKER_WINDOW_NONE)
      bw__window_reset(&a->br->win);
    publish_rates(a);
    return;
  }
  if ((int)to == st)
    return;
  if (to == BW_BREAKER_CLOSED)
    a->br->open_count = 0;
  transition(a, (int)to);
}

/* --- proxy --------------------------------------------------------------------------------- */

static uint32_t pend_home(const bw_breaker_t *br, uint64_t ref) {
  return (uint32_t)((ref * 0x9E3779B97F4A7C15ull) >> 32) & br->pend_mask;
}

static br_pend_t *pend_find(bw_breaker_t *br, uint64_t ref) {
  if (ref == 0)
    return NULL;
  for (uint32_t i = pend_home(br, ref);; i = (i + 1) & br->pend_mask) {
    if (br->pend[i].ref == ref)
      return &br->pend[i];
    if (br->pend[i].ref == 0)
      return NULL;
  }
}

static void pend_put(bw_breaker_t *br, const br_pend_t *e) {
  uint32_t i = pend_home(br, e->ref);
  while (br->pend[i].ref != 0)
    i = (i + 1) & br->pend_mask;
  br->pend[i] = *e;
  br->npend++;
}

/* Removes by backward shift (linear probing keeps no tombstones). */
static void pend_remove(bw_breaker_t *br, br_pend_t *e) {
  uint32_t i = (uint32_t)(e - br->pend), j = i;
  for (;;) {
    j = (j + 1) & br->pend_mask;
    if (br->pend[j].ref == 0)
      break;
    uint32_t k = pend_home(br, br->pend[j].ref);
    /* move j back to i unless its home lies cyclically in (i, j] */
    bool in = i <= j ? (k > i && k <= j) : (k > i || k <= j);
    if (!in) {
      br->pend[i] = br->pend[j];
      i = j;
    }
  }
  br->pend[i].ref = 0;
  br->npend--;
}

static void proxy_outcome(br_actor_t *a, int status, uint32_t epoch, uint64_t dur_ns) {
  bw_breaker_t *br = a->br;
  bool slow = br->slow_ns != 0 && dur_ns > br->slow_ns;
  on_outcome(a, classify(br, status), slow, epoch, 1);
}

static void proxy_request(br_actor_t *a, const bw_msg_t *msg) {
  bw_breaker_t *br = a->br;
  bw_ctx_t *ctx = a->ctx;
  bw_pid_t target = br->cfg.target;
  if (target == BW_PID_NONE && br->cfg.target_name == NULL) {
    bw_reply(ctx, msg, BW_ESTATE, 0, NULL, 0);
    return;
  }
  if (msg->flags & BW_MSGF_MOVED) {
    bw_reply(ctx, msg, BW_ETOOBIG, 0, NULL, 0); /* forwards inline payloads only */
    return;
  }
  if (br->npend >= br->cfg.max_inflight) {
    bw_reply(ctx, msg, BW_ELIMIT, 0, NULL, 0);
    return;
  }
  uint32_t flags, epoch;
  bool half;
  if (admit(br, &flags, &epoch, &half) != 0) {
    pub_add(&br->pub.rejected, 1);
    if (half)
      pub_add(&br->pub.not_permitted, 1);
    uint64_t retry = bw_breaker_retry_after_ms(br);
    bw_reply(ctx, msg, BW_ECIRCUIT_OPEN, BW_BREAKER_MSG_OPEN, &retry, sizeof retry);
    publish_event(a, BW_EV_CALL_REJECTED, 1, 0);
    return;
  }
  int rc = 0;
  if (br->cfg.target_name != NULL)
    rc = bw_whereis(br->rt, br->cfg.target_name, &target) == 0 ? 0 : BW_ENOPROC;
  uint64_t ref = 0;
  if (rc == 0)
    rc = bw_request(ctx, target, msg->type, msg->data, msg->len, br->cfg.call_timeout_ms, &ref);
  if (rc != 0) {
    bw_reply(ctx, msg, rc, 0, NULL, 0);
    if (flags & PF_RECORD)
      proxy_outcome(a, rc, epoch, 0);
    return;
  }
  br_pend_t e;
  memset(&e, 0, sizeof e);
  e.ref = ref;
  e.start_ns = bw_now_ns(br->rt);
  e.epoch = epoch;
  e.flags = flags;
  e.req = *msg;
  e.req.data = NULL;
  e.req.len = 0;
  pend_put(br, &e);
}

/* A reply from the target, or its deadline (status BW_ETIMEDOUT). */
static void proxy_settle(br_actor_t *a, const bw_msg_t *msg, bool timed_out) {
  bw_breaker_t *br = a->br;
  br_pend_t *p = pend_find(br, msg->ref);
  if (p == NULL)
    return;
  br_pend_t e = *p;
  pend_remove(br, p);
  uint64_t now = bw_now_ns(br->rt);
  uint64_t dur = now > e.start_ns ? now - e.start_ns : 0;
  int status;
  if (timed_out) {
    status = BW_ETIMEDOUT;
    pub_add(&br->pub.timeouts, 1);
    bw_reply(a->ctx, &e.req, status, 0, NULL, 0);
  } else if (msg->flags & BW_MSGF_MOVED) {
    /* a moved payload's destructor is not ours to pass on: the runtime
     * frees it after this handler; the requester gets the status only */
    status = msg->status;
    bw_reply(a->ctx, &e.req, status != 0 ? status : BW_ETOOBIG, msg->type, NULL, 0);
  } else {
    status = msg->status;
    bw_reply(a->ctx, &e.req, status, msg->type, msg->data, msg->len);
  }
  if (e.flags & PF_RECORD)
    proxy_outcome(a, status, e.epoch, dur);
}

/* --- behaviour ------------------------------------------------------------------------------ */

static int br_init(bw_ctx_t *ctx, void *state, void *arg) {
  br_actor_t *a = state;
  bw_breaker_t *br = arg;
  if (br == NULL || br->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_breaker_pid(br);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(br->rt, old))
    return BW_EALREADY; /* one actor per handle */
  a->br = br;
  a->ctx = ctx;
  /* Take over: a fresh judgement (window, consecutive count, proxied calls
   * of the last incarnation, whose requesters got BW_ENOPROC), the
   * published state kept. */
  if (br->cfg.window != BW_BREAKER_WINDOW_NONE)
    bw__window_reset(&br->win);
  memset(br->pend, 0, ((size_t)br->pend_mask + 1) * sizeof *br->pend);
  br->npend = 0;
  a->word = ld64_acq(&br->word);
  /* release: the handle's state set up above before callers find us */
  st64_rel(&br->pid, bw_self(ctx));
  int st = W_STATE(a->word);
  if (st == BW_BREAKER_OPEN) {
    /* relaxed: the last actor's writes reach us through its exit and our
     * spawn (the supervisor's messages order them) */
    uint64_t until = ld64_rlx(&br->open_until_ns), now = bw_now_ns(br->rt);
    if (until > now)
      arm(a, (until - now + 999999u) / 1000000u, BR_MSG_OPEN_DONE, W_EPOCH(a->word), &a->open_timer);
    else
      transition(a, BW_BREAKER_HALF_OPEN);
  } else if (st == BW_BREAKER_HALF_OPEN) {
    /* the permits of the last half-open may never report: start a new one
     * (new epoch, N permits), without an event: the state is the same */
    uint32_t epoch = W_EPOCH(a->word) + 1;
    a->word = W_MAKE(epoch, BW_BREAKER_HALF_OPEN, br->cfg.half_open_permits);
    st64_rel(&br->word, a->word);
    if (br->cfg.half_open_max_ms > 0)
      arm(a, br->cfg.half_open_max_ms, BR_MSG_HALF_OPEN_MAX, epoch, &a->ho_timer);
  }
  /* a flush the last incarnation owed (or one asked while none ran): the
   * drain below takes what it would have; exchange before the drain, as
   * on_flush_tick */
  (void)xchg32(&br->flush_armed, 0);
  catch_up(a);
  return 0;
}

static int br_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  br_actor_t *a = state;
  a->ctx = ctx;
  uint32_t epoch = 0;
  /* Replies first: a target may answer with any type, even one of this
   * range (a breaker behind a breaker answers BW_BREAKER_MSG_OPEN). */
  if (msg->flags & BW_MSGF_REPLY) {
    proxy_settle(a, msg, false);
    return BW_CONTINUE;
  }
  if (msg->type == BW_MSG_REQUEST_TIMEOUT) {
    proxy_settle(a, msg, true);
    return BW_CONTINUE;
  }
  if (msg->type >= BW_MSG_BREAKER_BASE && msg->type <= BR_MSG_LAST) {
    switch (msg->type) {
    case BR_MSG_WAKE:
    case BR_MSG_REJECTED:
      catch_up(a);
      break;
    case BR_MSG_REPORT: {
      uint64_t rec;
      if (msg->len == sizeof rec) {
        memcpy(&rec, msg->data, sizeof rec);
        on_record(a, rec);
      }
      catch_up(a);
      break;
    }
    case BR_MSG_CTL: {
      uint32_t to;
      if (msg->len == sizeof to) {
        memcpy(&to, msg->data, sizeof to);
        if (to == BW_BREAKER_CLOSED || to == BW_BREAKER_FORCED_OPEN ||
            to == BW_BREAKER_DISABLED || to == BW_BREAKER_METRICS_ONLY)
          on_ctl(a, to);
      }
      break;
    }
    case BR_MSG_FLUSH:
      catch_up(a);
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, 0, BR_MSG_FLUSH, NULL, 0);
      break;
    case BR_MSG_OPEN_DONE:
      if (msg->len == sizeof epoch)
        memcpy(&epoch, msg->data, sizeof epoch);
      if (msg->ref == a->open_timer)
        a->open_timer = 0;
      if (W_STATE(a->word) == BW_BREAKER_OPEN && epoch == W_EPOCH(a->word))
        transition(a, BW_BREAKER_HALF_OPEN);
      break;
    case BR_MSG_FLUSH_ARM:
      /* deferred records wait: take them within flush_ms (one timer at a
       * time; a timer that cannot be set means a flush now) */
      if (a->flush_timer == 0 &&
          bw_send_after(a->br->rt, bw_self(ctx), a->br->flush_ms, BR_MSG_FLUSH_TICK, NULL, 0,
                        &a->flush_timer) != 0) {
        a->flush_timer = 0;
        (void)xchg32(&a->br->flush_armed, 0);
        catch_up(a);
      }
      break;
    case BR_MSG_FLUSH_TICK:
      if (msg->ref == a->flush_timer)
        a->flush_timer = 0;
      /* exchange (a full barrier) before the drain: see flush_arm */
      (void)xchg32(&a->br->flush_armed, 0);
      catch_up(a);
      break;
    case BR_MSG_HALF_OPEN_MAX:
      if (msg->len == sizeof epoch)
        memcpy(&epoch, msg->data, sizeof epoch);
      if (msg->ref == a->ho_timer)
        a->ho_timer = 0;
      if (W_STATE(a->word) == BW_BREAKER_HALF_OPEN && epoch == W_EPOCH(a->word))
        transition(a, BW_BREAKER_OPEN);
      break;
    default:
      /* a request of this range that is not ours: answer, never leave
       * a caller waiting */
      if (msg->flags & BW_MSGF_REQUEST)
        bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
      break;
    }
    return BW_CONTINUE;
  }
  if ((msg->flags & BW_MSGF_REQUEST) && msg->type < BW_MSG_SYSTEM_BASE) {
    proxy_request(a, msg);
    return BW_CONTINUE;
  }
  return BW_CONTINUE; /* anything else is not for us */
}

static void br_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  br_actor_t *a = state;
  if (a->br == NULL)
    return;
  cancel_timers(a);
  if (a->flush_timer) {
    /* the flag stays set: the next actor's init clears it and drains */
    bw_timer_cancel(a->br->rt, a->flush_timer);
    a->flush_timer = 0;
  }
  /* Callers stop waking a dead pid; a successor publishes its own. A
   * failed CAS means a successor already did. */
  (void)cas64(&a->br->pid, bw_self(ctx), BW_PID_NONE);
}

static const bw_behaviour_t br_behaviour = {
    .name = "bw.breaker",
    .state_size = sizeof(br_actor_t),
    .init = br_init,
    .handle = br_handle,
    .terminate = br_terminate,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};
