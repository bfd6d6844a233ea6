/*
 * bulwark: pid slots.
 *
 * A pid is node | runtime tag | generation | slot (internal.h; the layout
 * and its arithmetic are in RUNTIME.md, "Pids"). Slots live in pages that
 * are allocated on demand and never freed before the runtime, so reading a
 * slot is always safe. A slot's word holds the live generation and a pin
 * count: a sender pins (one fetch-add), checks the generation, pushes into
 * the mailbox and unpins. The reaper of a dying actor first clears the
 * generation (new pins fail) and then waits for the pins to drain, so once
 * it drains the mailbox no sender can still be touching the actor. The pin
 * is a single uncontended atomic add on the receiver's slot line in the
 * common case. Rejected alternative: epoch-based reclamation (ck_epoch)
 * needs every sending thread registered, including the user's own threads.
 *
 * Reuse order. A freed slot is pushed on the young stack, which counts its
 * entries; an allocation pops the reusable stack, and when that is empty
 * takes the whole young stack as the next reusable batch only once it holds
 * the quarantine's batch size, and otherwise takes a fresh slot. A slot is
 * in at most one batch per reuse and a batch takes that many frees to fill,
 * so a slot's generation advances at most once per batch: one short-lived
 * actor spawned again and again walks through a batch of slots instead of
 * hammering one. The batch size grows with use, one slot per 1,024 reused
 * so far, from 64 to 65,536, so the runtime keeps back about one slot per
 * 1,024 actors ever spawned (24 bytes each, 1.5 MB at most) rather than
 * 1.5 MB as soon as it churns: it reaches full size after 67M reuses, in
 * about 8,200 batches, and from then on a slot's generation advances at
 * most once per 65,536 frees (the arithmetic: RUNTIME.md, "Pids"). Only
 * when every fresh slot is taken (4M live actors) is a smaller batch taken.
 * Rejected: a FIFO of free slots gives the same spread but needs a
 * multi-producer multi-consumer queue; the two stacks are two Treiber
 * stacks of indices in 64-bit words, single-width CAS. The reusable one
 * carries a 32-bit tag against ABA (pops read the top's link before their
 * CAS); the young one needs none (a push whose CAS succeeds links to the
 * current top whatever happened in between, and a take owns exactly what
 * its CAS removed), so its high half is the count.
 *
 * Runtime tags. Each runtime takes a tag at create from a process-wide
 * counter (1..255, never 0) that skips tags of live runtimes, and gives it
 * back at destroy. A pid of another live runtime of the process, or of a
 * destroyed one, thus has other top bits and is refused here: the check
 * reads only this runtime's state, never the other runtime's. A destroyed
 * runtime's tag comes back only when the counter has gone round: after
 * 254 other creates, less one for each runtime that stays live. The
 * counter starts at a value drawn from the clock and the process id, so a
 * node that restarts (a new process, the same node id) most likely has
 * another tag, and pids its peers kept from before are refused too.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"

/* --- runtime tags ------------------------------------------------------------ */

/* Process-wide, under tag_mx (create and destroy only): how many live
 * runtimes hold each tag, and the tag handed out last (0: none yet). */
static pthread_mutex_t tag_mx = PTHREAD_MUTEX_INITIALIZER;
static uint32_t tag_live[256];
static uint32_t tag_last;

static uint32_t tag_after(uint32_t t) { return t % 255u + 1u; } /* 1..255, cycling */

static uint32_t tag_take(void) {
  pthread_mutex_lock(&tag_mx);
  if (tag_last == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
    tag_last = (uint32_t)((x ^ (x >> 29)) % 255u) + 1u;
  }
  /* the next tag no live runtime holds; with all 255 held (255 live
   * runtimes in one process), the next one, shared */
  uint32_t t = tag_after(tag_last);
  for (uint32_t i = 0; i < 255u && tag_live[t] != 0; i++)
    t = tag_after(t);
  if (tag_live[t] != 0)
    t = tag_after(tag_last);
  tag_live[t]++;
  tag_last = t;
  pthread_mutex_unlock(&tag_mx);
  return t;
}

static void tag_give_back(uint32_t t) {
  pthread_mutex_lock(&tag_mx);
  if (tag_live[t] > 0)
    tag_live[t]--;
  pthread_mutex_unlock(&tag_mx);
}

void bw__pid_init(bw__runtime *rt) {
  rt->pid_runtime = rt->node_id << 8 | tag_take();
  /* relaxed: set before the runtime is handed out */
  bw__st32_rlx(&rt->slot_quarantine, BW__SLOT_QUARANTINE);
}

/* A pid this runtime may have minted: its node and tag, a live generation. */
static bool pid_mine(const bw__runtime *rt, bw_pid_t pid) {
  return BW__PID_RUNTIME(pid) == rt->pid_runtime && BW__PID_GEN(pid) != 0 &&
         BW__PID_SLOT(pid) < bw__ld32_rlx(&rt->slot_bump);
}

/* --- slots ---------------------------------------------------------------- */

static bw__slot *slot_at(const bw__runtime *rt, uint32_t idx) {
  /* acquire: the page's zeroed contents are visible once we see it */
  bw__slot *page = BW__LD_ACQ((bw__slot **)&rt->slot_pages[idx >> BW__SLOT_PAGE_BITS]);
  if (page == NULL)
    return NULL;
  return &page[idx & (BW__SLOT_PAGE - 1)];
}

bw__actor *bw__pid_pin(bw__runtime *rt, bw_pid_t pid, bw__slot **out) {
  if (!pid_mine(rt, pid))
    return NULL;
  bw__slot *s = slot_at(rt, BW__PID_SLOT(pid));
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

/* Makes the chain first..(a link of 0) the reusable stack, or puts it on
 * top of it. We own the chain (our CAS took it off the young stack). */
static void reusable_push_chain(bw__runtime *rt, uint32_t first) {
  uint32_t last = 0; /* found only if the stack is not empty: rare */
  for (;;) {
    uint64_t h = bw__ld64_acq(&rt->slot_free);
    if ((uint32_t)h != 0 && last == 0) {
      /* another batch got there first (allocators racing): walk ours */
      last = first;
      for (uint32_t n; (n = bw__ld32_rlx(&slot_at(rt, last - 1)->free_next)) != 0;)
        last = n;
    }
    if (last != 0)
      bw__st32_rlx(&slot_at(rt, last - 1)->free_next, (uint32_t)h);
    uint64_t nh = ((h >> 32) + 1) << 32 | first;
    /* release (acq_rel CAS): the chain's links and next_gen, written by
     * the threads that freed them (we acquired them with the take), are
     * visible to whoever pops these slots */
    if (bw__cas64(&rt->slot_free, h, nh))
      return;
  }
}

/* The batch size: one per 2^SHIFT slots reused so far, within [MIN, cap]. */
static uint64_t quarantine(const bw__runtime *rt) {
  /* relaxed: sizes only; any recent value will do */
  uint64_t q = bw__ld64_rlx(&rt->slot_reused) >> BW__SLOT_QUARANTINE_SHIFT;
  uint64_t cap = bw__ld32_rlx(&rt->slot_quarantine);
  q = q < BW__SLOT_QUARANTINE_MIN ? BW__SLOT_QUARANTINE_MIN : q;
  return q < cap ? q : cap;
}

int bw__pid_alloc(bw__runtime *rt, bw__actor *a) {
  uint32_t idx;
  for (;;) {
    /* 1. the reusable stack */
    uint64_t h = bw__ld64_acq(&rt->slot_free);
    uint32_t top = (uint32_t)h;
    if (top != 0) {
      bw__slot *s = slot_at(rt, top - 1);
      uint32_t next = bw__ld32_rlx(&s->free_next);
      uint64_t nh = ((h >> 32) + 1) << 32 | next;
      if (bw__cas64(&rt->slot_free, h, nh)) {
        idx = top - 1;
        break;
      }
      continue;
    }
    /* 2. the young stack as the next batch, once it is big enough, or when
     * no fresh slot is left */
    /* acquire: the links and next_gen its pushers wrote before their CAS */
    uint64_t y = bw__ld64_acq(&rt->slot_young);
    if ((uint32_t)y != 0 &&
        ((y >> 32) >= quarantine(rt) || bw__ld32_rlx(&rt->slot_bump) >= BW__SLOT_MAX)) {
      if (!bw__cas64(&rt->slot_young, y, 0))
        continue;
      /* a count that sizes the next batches: no order needed (the add is
       * acq_rel because that is the one add atomic.h has; once per batch) */
      bw__faa64(&rt->slot_reused, y >> 32);
      /* its top is ours; the rest becomes the reusable stack */
      idx = (uint32_t)y - 1;
      uint32_t rest = bw__ld32_rlx(&slot_at(rt, idx)->free_next);
      if (rest != 0)
        reusable_push_chain(rt, rest);
      break;
    }
    /* 3. a fresh slot */
    idx = bw__faa32(&rt->slot_bump, 1);
    if (idx >= BW__SLOT_MAX) {
      bw__faa32(&rt->slot_bump, (uint32_t)-1);
      /* relaxed: a hint; a slot freed meanwhile is found by the next pass */
      if ((uint32_t)bw__ld64_rlx(&rt->slot_free) != 0 ||
          (uint32_t)bw__ld64_rlx(&rt->slot_young) != 0)
        continue;
      return BW_ELIMIT;
    }
    grow_page(rt, idx);
    if (slot_at(rt, idx) == NULL)
      return BW_ENOMEM; /* the index is lost; only under memory exhaustion */
    break;
  }
  bw__slot *s = slot_at(rt, idx);
  s->actor = a;
  a->pid = BW__PID_MAKE(rt->pid_runtime, idx, s->next_gen);
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
    uint64_t y = bw__ld64_rlx(&rt->slot_young);
    bw__st32_rlx(&s->free_next, (uint32_t)y);
    uint64_t ny = ((y >> 32) + 1) << 32 | (idx + 1);
    /* release (acq_rel CAS): next_gen and free_next are written before the
     * slot can be taken by another thread */
    if (bw__cas64(&rt->slot_young, y, ny))
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
      fn(rt, BW__PID_MAKE(rt->pid_runtime, i, g), ud);
  }
}

void bw__pid_destroy(bw__runtime *rt) {
  for (uint32_t i = 0; i < BW__SLOT_DIR; i++) {
    free(rt->slot_pages[i]);
    rt->slot_pages[i] = NULL;
  }
  if ((rt->pid_runtime & 0xFFu) != 0)
    tag_give_back(rt->pid_runtime & 0xFFu);
  rt->pid_runtime = 0;
}

void bw__pid_test_quarantine(bw__runtime *rt, uint32_t batch) {
  bw__st32_rlx(&rt->slot_quarantine, batch); /* relaxed: set while nothing spawns */
}

void bw__pid_test_next_gen(bw__runtime *rt, uint32_t slot, uint32_t gen) {
  bw__slot *s = slot < bw__ld32_rlx(&rt->slot_bump) ? slot_at(rt, slot) : NULL;
  if (s != NULL && (gen & BW__GEN_MASK) != 0)
    s->next_gen = gen & BW__GEN_MASK;
}

bool bw_is_alive(const bw_runtime_t *rt, bw_pid_t pid) {
  if (rt == NULL || !pid_mine(rt, pid))
    return false;
  bw__slot *s = slot_at(rt, BW__PID_SLOT(pid));
  if (s == NULL)
    return false;
  uint64_t w = bw__ld64_acq(&s->word);
  return (uint32_t)(w >> 32) == BW__PID_GEN(pid) && !((uint32_t)w & BW__SLOT_EXITING);
}
