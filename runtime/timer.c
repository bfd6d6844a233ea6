/*
 * bulwark: timers.
 *
 * A binary min-heap of timer entries ordered by (due, creation sequence),
 * under one mutex: arming and cancelling are O(log n) and happen per timer,
 * not per message. Entries live in a growable array addressed by index;
 * a timer id is index + generation, so cancelling a fired or reused timer
 * is detected (BW_ENOTFOUND), never a wrong cancel.
 *
 * With the real clock a timer thread sleeps until the earliest due time
 * (condition variable on CLOCK_MONOTONIC) and delivers what is due. With
 * the manual clock the thread sleeps until stop, and bw_clock_advance
 * delivers what became due on the caller's thread before returning, in due
 * order: tests see their timer messages queued when advance returns.
 * Messages are delivered outside the lock.
 * Rejected for now: a hierarchical timing wheel (O(1) arm) would pay off
 * with hundreds of thousands of timers; the heap keeps exact ordering.
 *
 * Cost: a pending timer is an entry (48 bytes) and a heap slot (4 bytes),
 * in arrays that double as they grow and never shrink (the peak stays
 * paid), plus its prepared message, a pool block: 64 bytes for a payload up
 * to 8 bytes, 128 up to 72, 192 up to 136, 256 up to 192. Measured: about
 * 124 bytes per timer (RSS, 1,000,000 bw_send_after with 8 bytes; RUNTIME.md,
 * "Time", says how).
 *
 * The cap (bw_runtime_opts.max_timers, 0 = BW_TIMERS_DEFAULT_MAX): counted
 * over every pending timer (nheap; an interval counts once until it ends),
 * each arm says under which limit it may add one:
 * - BW__TM_APP, up to max: bw_send_after / bw_send_interval with an
 *   application type, and setting a receive timeout;
 * - BW__TM_DEADLINE, up to max + max / 4: the deadlines of bw_request,
 *   bw_call and bw_wait_exit, so that an application that fills the cap
 *   with its own timers still gets (and the patterns still make) requests
 *   with deadlines; beyond that the request fails with BW_ELIMIT, nothing
 *   sent;
 * - BW__TM_SYSTEM, never refused for the cap: timers with a type of the
 *   library's range [BW_MSG_PATTERN_BASE, BW_MSG_SYSTEM_BASE) (supervisors'
 *   shutdown and restart timers, the patterns' ticks and backoffs) and the
 *   re-arming of a receive timeout already set. These protect the system,
 *   and their number is bounded by actors and configured capacities, not by
 *   traffic; refusing them would fail silently where no caller looks.
 * Rejected: one limit for all (a full cap would stop supervisors from
 * killing children that ignore a shutdown); a cap in bytes (the cost
 * depends on the payload; a count is what a user can reason about).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/internal.h"

#define NO_HEAP UINT32_MAX

static bool earlier(const bw__timers *t, uint32_t a, uint32_t b) {
  const bw__timer_ent *x = &t->ents[a], *y = &t->ents[b];
  return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->seq < y->seq);
}

static void heap_set(bw__timers *t, uint32_t pos, uint32_t e) {
  t->heap[pos] = e;
  t->ents[e].heap_idx = pos;
}

static void sift_up(bw__timers *t, uint32_t pos) {
  uint32_t e = t->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (!earlier(t, e, t->heap[parent]))
      break;
    heap_set(t, pos, t->heap[parent]);
    pos = parent;
  }
  heap_set(t, pos, e);
}

static void sift_down(bw__timers *t, uint32_t pos) {
  uint32_t e = t->heap[pos];
  for (;;) {
    uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
    uint32_t best = e;
    if (l < t->nheap && earlier(t, t->heap[l], best)) {
      m = l;
      best = t->heap[l];
    }
    if (r < t->nheap && earlier(t, t->heap[r], best)) {
      m = r;
      best = t->heap[r];
    }
    if (m == pos)
      break;
    heap_set(t, pos, t->heap[m]);
    pos = m;
  }
  heap_set(t, pos, e);
}

static void heap_remove(bw__timers *t, uint32_t pos) {
  uint32_t e = t->heap[pos];
  t->ents[e].heap_idx = NO_HEAP;
  uint32_t last = t->heap[--t->nheap];
  if (pos == t->nheap)
    return;
  heap_set(t, pos, last);
  sift_down(t, pos);
  sift_up(t, t->ents[last].heap_idx);
}

static void ent_free(bw__timers *t, uint32_t e) {
  t->ents[e].msg = NULL;
  t->ents[e].gen = (t->ents[e].gen + 1) & 0x7FFFFFFFu;
  if (t->ents[e].gen == 0)
    t->ents[e].gen = 1;
  t->ents[e].free_next = t->free_head;
  t->free_head = e + 1;
}

/* Entries are addressed by a 32-bit index (index + 1 in the timer id); the
 * doubling stops here, far above any cap (BW_TIMERS_MAX + a quarter). */
#define CAPENTS_MAX (1u << 31)

int bw__timer_arm_in(bw__runtime *rt, uint64_t delay_ns, uint64_t period_ns, bw__msg *msg,
                     bw_timer_t *out, int cls) {
  bw__timers *t = &rt->timers;
  uint64_t limit = cls == BW__TM_APP        ? t->max
                   : cls == BW__TM_DEADLINE ? (uint64_t)t->max + t->reserve
                                            : UINT64_MAX;
  pthread_mutex_lock(&t->mx);
  if (t->stop) {
    pthread_mutex_unlock(&t->mx);
    return BW_ESHUTDOWN;
  }
  if (t->nheap >= limit) {
    pthread_mutex_unlock(&t->mx);
    return BW_ELIMIT;
  }
  uint32_t e;
  if (t->free_head != 0) {
    e = t->free_head - 1;
    t->free_head = t->ents[e].free_next;
  } else {
    if (t->nents == t->capents) {
      if (t->capents >= CAPENTS_MAX) {
        pthread_mutex_unlock(&t->mx);
        return BW_ENOMEM;
      }
      uint32_t nc = t->capents ? t->capents * 2 : 64;
      bw__timer_ent *ne = realloc(t->ents, nc * sizeof(*ne));
      uint32_t *nh = ne ? realloc(t->heap, nc * sizeof(*nh)) : NULL;
      if (ne != NULL)
        t->ents = ne;
      if (nh == NULL) {
        pthread_mutex_unlock(&t->mx);
        return BW_ENOMEM;
      }
      t->heap = nh;
      t->capents = nc;
      t->capheap = nc;
    }
    e = t->nents++;
    t->ents[e].gen = 1;
  }
  bw__timer_ent *ent = &t->ents[e];
  uint64_t now = bw__now_ns(rt);
  ent->due_ns = now + delay_ns;
  ent->period_ns = period_ns;
  ent->seq = ++t->seq;
  ent->msg = msg;
  bw_timer_t id = ((uint64_t)ent->gen << 32) | (e + 1);
  msg->pub.ref = msg->kind == BW__K_USER ? id : msg->pub.ref;
  t->nheap++;
  heap_set(t, t->nheap - 1, e);
  sift_up(t, t->nheap - 1);
  bool kick = t->heap[0] == e && ent->due_ns < t->sleep_until;
  pthread_mutex_unlock(&t->mx);
  if (kick && !rt->manual_clock)
    pthread_cond_signal(&t->cv);
  if (out != NULL)
    *out = id;
  return 0;
}

int bw__timer_arm(bw__runtime *rt, uint64_t delay_ns, uint64_t period_ns, bw__msg *msg,
                  bw_timer_t *out) {
  return bw__timer_arm_in(rt, delay_ns, period_ns, msg, out, BW__TM_SYSTEM);
}

int bw__timer_cancel(bw__runtime *rt, bw_timer_t id) {
  bw__timers *t = &rt->timers;
  uint32_t idx = (uint32_t)id;
  uint32_t gen = (uint32_t)(id >> 32);
  if (idx == 0)
    return BW_ENOTFOUND;
  pthread_mutex_lock(&t->mx);
  uint32_t e = idx - 1;
  if (e >= t->nents || t->ents[e].gen != gen || t->ents[e].heap_idx == NO_HEAP ||
      t->ents[e].msg == NULL) {
    pthread_mutex_unlock(&t->mx);
    return BW_ENOTFOUND;
  }
  bw__msg *m = t->ents[e].msg;
  heap_remove(t, t->ents[e].heap_idx);
  ent_free(t, e);
  pthread_mutex_unlock(&t->mx);
  bw__msg_free(rt, m);
  return 0;
}

static bw__msg *clone_msg(bw__runtime *rt, const bw__msg *m) {
  bw__msg *c = bw__msg_alloc(rt, m->pub.len);
  if (c == NULL)
    return NULL;
  uint8_t cls = c->cls;
  memcpy(c, m, BW__MSG_HDR + m->pub.len);
  c->cls = cls;
  if (m->pub.len > 0)
    c->pub.data = c->inl;
  return c;
}

#define DUE_BATCH 64

/* Takes up to DUE_BATCH due timers (in order) into out, re-arming periodic
 * ones; returns how many. (Not a list through the messages' link word:
 * that word still holds their receiver.) */
static size_t collect_due(bw__runtime *rt, uint64_t now, bw__msg **out) {
  bw__timers *t = &rt->timers;
  size_t n = 0;
  while (t->nheap > 0 && n < DUE_BATCH) {
    uint32_t e = t->heap[0];
    bw__timer_ent *ent = &t->ents[e];
    if (ent->due_ns > now)
      break;
    bw__msg *m;
    /* a periodic timer whose target is gone ends here: its last tick is a
     * noproc dead letter, and no more follow (a killed actor's terminate
     * never ran to cancel it) */
    if (ent->period_ns > 0 && bw_is_alive(rt, ent->msg->to)) {
      m = clone_msg(rt, ent->msg);
      ent->due_ns += ent->period_ns;
      ent->seq = ++t->seq;
      sift_down(t, 0);
      if (m == NULL)
        continue; /* out of memory: skip this tick rather than spin */
    } else {
      m = ent->msg;
      heap_remove(t, 0);
      ent_free(t, e);
    }
    out[n++] = m;
  }
  return n;
}

static void deliver_all(bw__runtime *rt, bw__msg **due, size_t n) {
  for (size_t i = 0; i < n; i++)
    bw__deliver(rt, due[i], false);
}

void bw__timers_fire_due(bw__runtime *rt) {
  bw__msg *due[DUE_BATCH];
  size_t n;
  do {
    pthread_mutex_lock(&rt->timers.mx);
    n = collect_due(rt, bw__now_ns(rt), due);
    pthread_mutex_unlock(&rt->timers.mx);
    deliver_all(rt, due, n);
  } while (n == DUE_BATCH);
  bw__watchdog_scan(rt);
}

void bw__timers_kick(bw__runtime *rt) {
  pthread_mutex_lock(&rt->timers.mx);
  pthread_cond_signal(&rt->timers.cv);
  pthread_mutex_unlock(&rt->timers.mx);
}

/* How often the timer thread looks at watched handlers (real clock). */
#define WATCHDOG_TICK_NS 5000000ull

static void *timer_main(void *arg) {
  bw__runtime *rt = arg;
  bw__timers *t = &rt->timers;
  bw__tl.th = &t->th;
  bw__tl.cur = NULL;
  pthread_mutex_lock(&t->mx);
  while (!t->stop) {
    bool watching = !rt->manual_clock && bw__ld32_rlx(&rt->nwatched) != 0;
    if (watching) {
      pthread_mutex_unlock(&t->mx);
      bw__watchdog_scan(rt);
      pthread_mutex_lock(&t->mx);
      if (t->stop)
        break;
    }
    if (rt->manual_clock || (t->nheap == 0 && !watching)) {
      t->sleep_until = UINT64_MAX;
      pthread_cond_wait(&t->cv, &t->mx);
      t->sleep_until = 0;
      continue;
    }
    uint64_t now = bw__now_ns(rt);
    uint64_t due = t->nheap > 0 ? t->ents[t->heap[0]].due_ns : UINT64_MAX;
    if (watching && due > now + WATCHDOG_TICK_NS)
      due = now + WATCHDOG_TICK_NS;
    if (due > now) {
      uint64_t abs = due + rt->epoch_ns;
      struct timespec ts = {.tv_sec = (time_t)(abs / 1000000000ull),
                            .tv_nsec = (long)(abs % 1000000000ull)};
      t->sleep_until = due;
      pthread_cond_timedwait(&t->cv, &t->mx, &ts);
      t->sleep_until = 0;
      continue;
    }
    if (t->nheap == 0)
      continue;
    bw__msg *due_msgs[DUE_BATCH];
    size_t n = collect_due(rt, now, due_msgs);
    pthread_mutex_unlock(&t->mx);
    deliver_all(rt, due_msgs, n);
    pthread_mutex_lock(&t->mx);
  }
  pthread_mutex_unlock(&t->mx);
  bw__tl.th = NULL;
  return NULL;
}

int bw__timers_init(bw__runtime *rt) {
  bw__timers *t = &rt->timers;
  if (t->max == 0)
    t->max = BW_TIMERS_DEFAULT_MAX;
  t->reserve = t->max / 4;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&t->mx, NULL);
  pthread_cond_init(&t->cv, &ca);
  pthread_condattr_destroy(&ca);
  t->th.kind = BW__TH_TIMER;
  t->th.rt = rt;
  t->th.ctr = &t->ctr;
  t->th.cache = bw__cache_acquire(rt);
  if (t->th.cache == NULL)
    return BW_ENOMEM;
  if (pthread_create(&t->thread, NULL, timer_main, rt) != 0)
    return BW_ETHREAD;
  return 0;
}

/* Stops the thread; pending timers' messages become dead letters
 * ("shutdown") so they are accounted for. */
void bw__timers_stop(bw__runtime *rt) {
  bw__timers *t = &rt->timers;
  pthread_mutex_lock(&t->mx);
  if (t->stop) {
    pthread_mutex_unlock(&t->mx);
    return;
  }
  t->stop = true;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mx);
  pthread_join(t->thread, NULL);
  pthread_mutex_lock(&t->mx);
  while (t->nheap > 0) {
    uint32_t e = t->heap[0];
    bw__msg *m = t->ents[e].msg;
    heap_remove(t, 0);
    ent_free(t, e);
    pthread_mutex_unlock(&t->mx);
    if (m->kind == BW__K_USER) {
      bw__counters *c = bw__my_counters(rt);
      bw__ctr_add(rt, c, &c->sent, 1);
      bw__dead_letter(rt, m, BW_DL_SHUTDOWN);
    } else {
      bw__msg_free(rt, m);
    }
    pthread_mutex_lock(&t->mx);
  }
  pthread_mutex_unlock(&t->mx);
}

void bw__timers_destroy(bw__runtime *rt) {
  bw__timers *t = &rt->timers;
  free(t->ents);
  free(t->heap);
  t->ents = NULL;
  t->heap = NULL;
  pthread_mutex_destroy(&t->mx);
  pthread_cond_destroy(&t->cv);
}

/* --- public API ------------------------------------------------------------- */

static int send_timer(bw_runtime_t *rt, bw_pid_t to, uint64_t ms, uint64_t period_ms,
                      uint32_t type, const void *data, size_t len, bw_timer_t *out) {
  if (rt == NULL || type >= BW_MSG_SYSTEM_BASE || (len > 0 && data == NULL) ||
      ms > UINT64_MAX / 2000000ull || period_ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  if (len > BW_MSG_INLINE_MAX)
    return BW_ETOOBIG;
  if (bw__ld32_acq(&rt->state) != BW__RT_RUNNING)
    return BW_ESHUTDOWN;
  bw__msg *m = bw__msg_new(rt, to, BW__K_USER, type, data, len);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.flags = BW__MF_TIMER;
  /* the library's own protocols (supervisors, patterns) are never capped */
  int cls = type >= BW_MSG_PATTERN_BASE ? BW__TM_SYSTEM : BW__TM_APP;
  int rc = bw__timer_arm_in(rt, ms * 1000000ull, period_ms * 1000000ull, m, out, cls);
  if (rc != 0)
    bw__msg_free(rt, m);
  return rc;
}

int bw_send_after(bw_runtime_t *rt, bw_pid_t to, uint64_t ms, uint32_t type, const void *data,
                  size_t len, bw_timer_t *timer) {
  return send_timer(rt, to, ms, 0, type, data, len, timer);
}

int bw_send_interval(bw_runtime_t *rt, bw_pid_t to, uint64_t period_ms, uint32_t type,
                     const void *data, size_t len, bw_timer_t *timer) {
  if (period_ms == 0)
    return BW_EINVAL;
  return send_timer(rt, to, period_ms, period_ms, type, data, len, timer);
}

int bw_timer_cancel(bw_runtime_t *rt, bw_timer_t timer) {
  if (rt == NULL || timer == 0)
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  return bw__timer_cancel(rt, timer);
}
