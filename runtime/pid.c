/*
 * bulwark: pid slots.
 *
 * A pid is slot + generation. Slots live in pages that are allocated on
 * demand and never freed before the runtime, so reading a slot is always
 * safe. A slot's word holds the live generation and a pin count: a sender
 * pins (one fetch-add), checks the generation, pushes into the mailbox and
 * unpins. The reaper of a dying actor first clears the generation (new
 * pins fail) and then waits for the pins to drain, so once it drains the
 * mailbox no sender can still be touching the actor. The pin is a single
 * uncontended atomic add on the receiver's slot line in the common case.
 * Rejected alternative: epoch-based reclamation (ck_epoch) needs every
 * sending thread registered, including the user's own threads.
 *
 * Free slots form a Treiber stack of indices with a 32-bit tag in the same
 * 64-bit word, so a single-width CAS is ABA-safe.
 */
#include <sched.h>
#include <stdlib.h>

#include "runtime/internal.h"

static bw__slot *slot_at(const bw__runtime *rt, uint32_t idx) {
  /* acquire: the page's zeroed contents are visible once we see it */
  bw__slot *page = BW__LD_ACQ((bw__slot **)&rt->slot_pages[idx >> BW__SLOT_PAGE_BITS]);
  if (page == NULL)
    return NULL;
  return &page[idx & (BW__SLOT_PAGE - 1)];
}

bw__actor *bw__pid_pin(bw__runtime *rt, bw_pid_t pid, bw__slot **out) {
  if (BW__PID_NODE(pid) != rt->node_id || BW__PID_GEN(pid) == 0)
    return NULL;
  uint32_t idx = BW__PID_SLOT(pid);
  if (idx >= bw__ld32_rlx(&rt->slot_bump))
    return NULL;
  bw__slot *s = slot_at(rt, idx);
  if (s == NULL)
    return NULL;
  /* acq_rel: acquire orders our reads of s->actor and the actor after the
   * pin; the pin must be visible to a reaper before it drains */
  uint64_t w = bw__faa64(&s->word, 1);
  if ((uint32_t)(w >> 32) != BW__PID_GEN(pid)) {
    bw__pid_unpin(s);
    return NULL;
  }
  *out = s;
  return BW__LD_RLX(&s->actor);
}

static void grow_page(bw__runtime *rt, uint32_t idx) {
  bw__slot **pp = &rt->slot_pages[idx >> BW__SLOT_PAGE_BITS];
  if (BW__LD_ACQ(pp) != NULL)
    return;
  bw__slot *page = calloc(BW__SLOT_PAGE, sizeof(bw__slot));
  if (page == NULL)
    return;
  for (uint32_t i = 0; i < BW__SLOT_PAGE; i++)
    page[i].next_gen = 1;
  /* acq_rel CAS: publishes the initialised page */
  if (!BW__CAS(pp, NULL, page))
    free(page);
}

int bw__pid_alloc(bw__runtime *rt, bw__actor *a) {
  uint32_t idx;
  for (;;) {
    uint64_t h = bw__ld64_acq(&rt->slot_free);
    uint32_t top = (uint32_t)h;
    if (top == 0) {
      idx = bw__faa32(&rt->slot_bump, 1);
      if (idx >= BW__SLOT_DIR * BW__SLOT_PAGE) {
        bw__faa32(&rt->slot_bump, (uint32_t)-1);
        return BW_ELIMIT;
      }
      grow_page(rt, idx);
      if (slot_at(rt, idx) == NULL)
        return BW_ENOMEM; /* the index is lost; only under memory exhaustion */
      break;
    }
    bw__slot *s = slot_at(rt, top - 1);
    uint32_t next = bw__ld32_rlx(&s->free_next);
    uint64_t nh = ((h >> 32) + 1) << 32 | next;
    if (bw__cas64(&rt->slot_free, h, nh)) {
      idx = top - 1;
      break;
    }
  }
  bw__slot *s = slot_at(rt, idx);
  s->actor = a;
  a->pid = BW__PID_MAKE(rt->node_id, idx, s->next_gen);
  return 0;
}

void bw__pid_publish(bw__runtime *rt, bw__actor *a) {
  bw__slot *s = slot_at(rt, BW__PID_SLOT(a->pid));
  /* release (acq_rel add): the actor is fully initialised before a sender
   * can see its generation. An add, not a store, keeps the transient pins
   * of senders that are failing on the old generation. */
  bw__faa64(&s->word, (uint64_t)BW__PID_GEN(a->pid) << 32);
}

void bw__pid_mark_exiting(bw__runtime *rt, bw_pid_t pid) {
  bw__slot *s = slot_at(rt, BW__PID_SLOT(pid));
  /* acq_rel add: whoever is told of the exit afterwards (the notifications
   * follow this) and then asks bw_is_alive sees the bit */
  bw__faa64(&s->word, BW__SLOT_EXITING);
}

void bw__pid_invalidate(bw__runtime *rt, bw_pid_t pid) {
  bw__slot *s = slot_at(rt, BW__PID_SLOT(pid));
  /* a kept pin of ours (send.c) must go before we wait for pins: on this
   * slot we would wait for ourselves, and on another dying actor's slot two
   * exits could each wait for the other's pin */
  bw__pin_release();
  uint64_t w = bw__ld64_rlx(&s->word);
  uint64_t exiting = (w & BW__SLOT_EXITING) ? BW__SLOT_EXITING : 0;
  bw__faa64(&s->word, (uint64_t)0 - (((uint64_t)BW__PID_GEN(pid) << 32) + exiting));
  /* wait for pins: each is one mailbox push, a few ns, unless the pinning
   * thread was preempted; then yield the CPU */
  unsigned spins = 0;
  /* acquire: the pushes of the last pinned senders are visible after */
  while (((uint32_t)bw__ld64_acq(&s->word) & BW__SLOT_PINS) != 0) {
    if (++spins < 64)
      bw__cpu_relax();
    else
      sched_yield();
  }
}

void bw__pid_free(bw__runtime *rt, bw_pid_t pid) {
  uint32_t idx = BW__PID_SLOT(pid);
  bw__slot *s = slot_at(rt, idx);
  uint32_t g = (BW__PID_GEN(pid) + 1) & BW__GEN_MASK;
  s->next_gen = g == 0 ? 1 : g;
  BW__ST_RLX(&s->actor, NULL);
  for (;;) {
    uint64_t h = bw__ld64_acq(&rt->slot_free);
    bw__st32_rlx(&s->free_next, (uint32_t)h);
    uint64_t nh = ((h >> 32) + 1) << 32 | (idx + 1);
    /* release (acq_rel CAS): next_gen and free_next are written before the
     * slot can be popped by another thread */
    if (bw__cas64(&rt->slot_free, h, nh))
      return;
  }
}

void bw__pid_foreach_live(bw__runtime *rt, bw__pid_visit_fn fn, void *ud) {
  uint32_t n = bw__ld32_acq(&rt->slot_bump);
  for (uint32_t i = 0; i < n; i++) {
    bw__slot *s = slot_at(rt, i);
    if (s == NULL)
      continue;
    uint32_t g = (uint32_t)(bw__ld64_acq(&s->word) >> 32);
    if (g != 0)
      fn(rt, BW__PID_MAKE(rt->node_id, i, g), ud);
  }
}

void bw__pid_destroy(bw__runtime *rt) {
  for (uint32_t i = 0; i < BW__SLOT_DIR; i++) {
    free(rt->slot_pages[i]);
    rt->slot_pages[i] = NULL;
  }
}

bool bw_is_alive(const bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || BW__PID_GEN(pid) == 0 || BW__PID_NODE(pid) != rt->node_id)
    return false;
  uint32_t idx = BW__PID_SLOT(pid);
  if (idx >= bw__ld32_rlx(&rt->slot_bump))
    return false;
  bw__slot *s = slot_at(rt, idx);
  if (s == NULL)
    return false;
  uint64_t w = bw__ld64_acq(&s->word);
  return (uint32_t)(w >> 32) == BW__PID_GEN(pid) && !((uint32_t)w & BW__SLOT_EXITING);
}
