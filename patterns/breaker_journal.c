/*
 * bulwark: the circuit breaker's outcome journal (patterns/BREAKER.md,
 * "Outcomes reach the actor through a journal").
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
 *
 * This file holds both sides of it: the reporting threads' (report, merge,
 * claim, wake-up, deferred flush, fallback; rejection counts per stripe)
 * and the actor's drain. The handle and guard are in breaker.c, the actor
 * that judges the outcomes in breaker_actor.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/runtime.h"
#include "patterns/breaker_internal.h"

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

/* Each reporting thread's stripe: assigned round robin on first use, so two
 * busy threads land on different stripes (and cache lines). */
static uint32_t next_stripe;
static _Thread_local uint32_t tl_stripe_plus1;

static inline br_stripe_t *my_stripe(bw_breaker_t *br) {
  uint32_t s = tl_stripe_plus1;
  if (s == 0) {
    /* any order would do: only distinct indices matter, once per thread */
    s = (bw__faa32(&next_stripe, 1) % BR_STRIPES) + 1;
    tl_stripe_plus1 = s;
  }
  return &br->stripes[s - 1];
}

/* Counts a guard rejection in the caller's stripe and, if someone listens
 * to rejections and no notice is on its way, sends the actor one. */
void bw__br_count_reject(bw_breaker_t *br, bool half_open) {
  br_stripe_t *s = my_stripe(br);
  /* The fetch-add is a full barrier, ordered before the notice load: the
   * actor clears the notice (exchange) before it sums the counts, so either
   * it sees this count or we see the cleared notice and send a new one. */
  bw__faa64(&s->rejected, 1);
  if (half_open)
    bw__faa64(&s->not_permitted, 1);
  if (bw__ld32_rlx(&br->rej_notice) != 0 || !bw_event_wanted(br->rt, BW_EV_CALL_REJECTED))
    return;
  if (bw__cas32(&br->rej_notice, 0, 1)) {
    /* With no actor (or a dying one) the notice stays set: the next
     * actor's init clears it and publishes the counts. */
    bw_pid_t pid = bw_breaker_pid(br);
    if (pid != BW_PID_NONE)
      (void)bw_send(br->rt, pid, BR_MSG_REJECTED, NULL, 0);
  }
}

/* Sends a record as a message: the journal stripe was full. */
static int journal_fallback(bw_breaker_t *br, br_stripe_t *s, uint64_t rec) {
  bw__faa64(&s->fallbacks, 1);
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
  if (bw__ld32_rlx(&br->flush_armed) != 0 || !bw__cas32(&br->flush_armed, 0, 1))
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
  uint64_t t = bw__ld64_acq(&s->tail);
  uint64_t pos = t >> 1;
  if (pos > 0) {
    /* Merge into the newest record if it is published, not yet taken, and
     * has the same outcome and epoch: keeps this stripe's order, and a
     * steady stream of one outcome needs no new slot (nor wake-up). */
    br_slot_t *last = &s->slots[(pos - 1) & br->jmask];
    if (bw__ld64_acq(&last->seq) == pos) {
      uint64_t v = bw__ld64_rlx(&last->rec);
      if (R_COUNT(v) != 0 && R_COUNT(v) < R_COUNT_MAX &&
          (v & ~R_COUNT_MAX) == (key | R_TAG(pos - 1)) && bw__cas64(&last->rec, v, v + 1))
        return 0;
    }
  }
  br_slot_t *sl;
  for (;;) {
    sl = &s->slots[pos & br->jmask];
    /* acquire: pairs with the actor's release of the slot (seq = p + cap),
     * which it stores after it has taken the record */
    uint64_t seq = bw__ld64_acq(&sl->seq);
    if (seq == pos) {
      /* claim: a full barrier, and it clears the idle mark (a deferred
       * claim keeps it); if the mark was set, this claim owes the actor
       * its wake-up, or a flush */
      if (bw__cas64(&s->tail, t, ((pos + 1) << 1) | (defer ? (t & 1u) : 0u)))
        break;
    } else if (seq < pos) {
      /* the slot still holds the record of position pos - cap: full */
      return journal_fallback(br, s, key | R_TAG(pos) | 1u);
    }
    t = bw__ld64_acq(&s->tail);
    pos = t >> 1;
  }
  /* relaxed: nobody reads the slot before the release below publishes it */
  bw__st64_rlx(&sl->rec, key | R_TAG(pos) | 1u);
  /* release: the record before the sequence number that publishes it */
  bw__st64_rel(&sl->seq, pos + 1);
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
  int kind = bw__br_classify(br, status);
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

void bw__br_on_record(br_actor_t *a, uint64_t rec) {
  uint64_t n = R_COUNT(rec);
  if (n == 0)
    return;
  bw__br_on_outcome(a, R_KIND(rec), R_SLOW(rec), R_EPOCH16(rec), n);
}

/* Takes every published record from every stripe; marks each stripe idle
 * when it has caught up with its tail. */
void bw__br_drain(br_actor_t *a) {
  bw_breaker_t *br = a->br;
  const uint64_t cap = (uint64_t)br->jmask + 1;
  for (uint32_t i = 0; i < BR_STRIPES; i++) {
    br_stripe_t *s = &br->stripes[i];
    uint64_t head = s->head;
    for (;;) {
      br_slot_t *sl = &s->slots[head & br->jmask];
      /* acquire: pairs with the producer's release of seq (the record) */
      if (bw__ld64_acq(&sl->seq) == head + 1) {
        /* exchange: closes the record against merges, atomically with
         * reading its final count */
        uint64_t rec = bw__xchg64(&sl->rec, 0);
        /* release: the slot is free for position head + cap only after
         * we took the record */
        bw__st64_rel(&sl->seq, head + cap);
        head++;
        bw__br_on_record(a, rec);
        continue;
      }
      /* acquire: a claim we see here, we see its slot's state after */
      uint64_t t = bw__ld64_acq(&s->tail);
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
      if ((t & 1u) || bw__cas64(&s->tail, t, t | 1u))
        break;
    }
    s->head = head;
  }
}

