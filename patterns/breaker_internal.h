/*
 * bulwark: the circuit breaker's shared internals (patterns/breaker*.c; the
 * design in patterns/BREAKER.md). The handle's layout, the published word,
 * the actor's protocol and state, and the few helpers more than one of the
 * files needs:
 *
 *   breaker.c          the handle: options, lifecycle, the guard's
 *                      acquire, state, control, stats
 *   breaker_journal.c  the outcome journal: reporting, and the actor's drain
 *   breaker_actor.c    the actor: the state machine, timers, events
 *   breaker_proxy.c    proxy mode: forwarding requests to the target
 *
 * The atomics are runtime/atomic.h's. Its unsuffixed RMWs (faa, cas, xchg)
 * are full barriers, in ck builds and under TSan alike: the journal's idle
 * mark and the rejection notice rely on that (see where they are used).
 */
#ifndef BULWARK_PATTERNS_BREAKER_INTERNAL_H
#define BULWARK_PATTERNS_BREAKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bulwark/actor.h"
#include "bulwark/breaker.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/window.h"
#include "runtime/atomic.h"

/* --- the published word ----------------------------------------------------- */

#define W_PERMITS_MASK 0xFFFFFFull
#define W_MAKE(epoch, state, permits)                                                    \
  (((uint64_t)(uint32_t)(epoch) << 32) | ((uint64_t)((state)&0xFFu) << 24) |            \
   ((uint64_t)(permits)&W_PERMITS_MASK))
#define W_EPOCH(w) ((uint32_t)((w) >> 32))
#define W_STATE(w) ((int)(((w) >> 24) & 0xFFu))
#define W_PERMITS(w) ((uint32_t)((w)&W_PERMITS_MASK))
#define BR_MAX_PERMITS (1u << 20)

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

/* Permit flags (bw_breaker_permit_t.flags). */
enum { PF_RECORD = 1u, PF_HALF = 2u };

/* Single-writer counter update (the actor): readers see whole values. */
static inline void bw__br_pub_add(uint64_t *f, uint64_t n) { bw__st64_rlx(f, bw__ld64_rlx(f) + n); }

/* The outcome kind of a status, by the user's classifier (guard and proxy). */
static inline int bw__br_classify(const bw_breaker_t *br, int status) {
  if (br->cfg.classify == NULL)
    return status == 0 ? BW_BREAKER_SUCCESS : BW_BREAKER_FAILURE;
  int k = br->cfg.classify(status, br->cfg.classify_arg);
  return k == BW_BREAKER_SUCCESS || k == BW_BREAKER_IGNORED ? k : BW_BREAKER_FAILURE;
}

/* The admission decision, shared by the guard and the proxy. Returns 0 with
 * *flags and *epoch set, or BW_ECIRCUIT_OPEN with *half set when it was
 * half-open without a permit. */
static inline int bw__br_admit(bw_breaker_t *br, uint32_t *flags, uint32_t *epoch, bool *half) {
  /* acquire: pairs with the actor's release store of the word, so what it
   * published before (open_until_ns) is visible with the state */
  uint64_t w = bw__ld64_acq(&br->word);
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
      if (bw__cas64(&br->word, w, w - 1)) {
        *flags = PF_RECORD | PF_HALF;
        *epoch = W_EPOCH(w);
        return 0;
      }
      w = bw__ld64_acq(&br->word);
      continue;
    default: /* open, forced open */
      return BW_ECIRCUIT_OPEN;
    }
  }
}

/* The journal (breaker_journal.c). */
void bw__br_count_reject(bw_breaker_t *br, bool half_open);
void bw__br_drain(br_actor_t *a);
void bw__br_on_record(br_actor_t *a, uint64_t rec);

/* The actor (breaker_actor.c). */
extern const bw_behaviour_t bw__br_behaviour;
void bw__br_on_outcome(br_actor_t *a, int kind, bool slow, uint32_t epoch, uint64_t n);
void bw__br_publish_event(br_actor_t *a, uint32_t type, int64_t ea, int64_t eb);

/* Proxy mode (breaker_proxy.c). */
void bw__br_proxy_request(br_actor_t *a, const bw_msg_t *msg);
void bw__br_proxy_settle(br_actor_t *a, const bw_msg_t *msg, bool timed_out);

#endif
