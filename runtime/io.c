/*
 * bulwark: descriptor watches and the runtime's epoll set (see runtime/IO.md).
 *
 * One epoll instance per runtime, created by the first watch: a runtime
 * that never watches a descriptor pays nothing. There is no poller thread:
 * the workers poll (scheduler.c). An idle worker blocks in epoll_wait with
 * no timeout (deadlines are the timers' business, on the runtime's clock)
 * instead of on its condition variable, and is woken for other work by
 * an eventfd; busy workers look now and then without blocking. Readiness
 * is delivered by the worker that sees it, so the woken actor runs on
 * that worker next, with no hand-off between threads.
 *
 * A watch is a slot in a table of fixed pages (stable addresses; slots are
 * reused through a free list, never freed before the runtime). Its epoll
 * registration carries the watch id (generation << 32 | slot), never the
 * descriptor, so an event for a removed watch, or for a reused descriptor,
 * cannot reach the wrong watch: the generation no longer matches.
 *
 * Every watch owns one preallocated message node (BW__K_IO). Registrations
 * are EPOLLONESHOT, so at most one event per watch is ever in flight, and
 * the node is reused for each: no allocation per event. One atomic word
 * per watch (gen | interest | state) decides who owns the node:
 *
 *   IDLE      not armed; the node is home
 *   ARMED     registered for `interest`; the node is home
 *   INFLIGHT  a poller won the node (CAS from ARMED) and queued it; an
 *             arm now only records `interest | PENDING`, applied when the
 *             node comes back (bw__msg_free -> bw__io_msg_back)
 *   DEAD      removed (unwatch or the owner's exit); whoever holds the
 *             node last (the remover if it was home, else the one that
 *             frees the message) frees the slot
 *
 * Only the owner actor changes IDLE/ARMED, only a poller takes ARMED to
 * INFLIGHT (several workers may poll at once: the CAS picks one, and
 * EPOLLONESHOT reports each arming once anyway), and the node's return
 * takes INFLIGHT back; every change is a CAS on the word, so none of them
 * loses another's update.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/internal.h"

enum { ST_IDLE = 0, ST_ARMED = 1, ST_INFLIGHT = 2, ST_DEAD = 3 };
#define W_ST(w) ((uint32_t)((w) & 0xFFu))
#define W_EV(w) ((uint32_t)(((w) >> 8) & 0xFFu))
#define W_GEN(w) ((uint32_t)((w) >> 32))
#define W_MAKE(gen, ev, st) (((uint64_t)(gen) << 32) | ((uint64_t)(ev) << 8) | (uint64_t)(st))
#define EV_PENDING 0x80u /* INFLIGHT: re-arm with the low bits when the node is back */
#define EV_MASK (BW_IO_IN | BW_IO_OUT)

#define PAGE_BITS 8u
#define PAGE_SIZE (1u << PAGE_BITS)
#define MAX_PAGES 4096u /* 1M watches */

typedef struct bw__watch {
  uint64_t word;   /* atomic: gen << 32 | interest << 8 | state */
  bw_pid_t owner;  /* atomic (read by a stale caller's ownership check) */
  bw__msg *msg;    /* the watch's own node; pub.ref = its id */
  int fd;
  uint32_t flags;  /* BW_IO_OWNED */
  void *ud;
  void (*dtor)(void *);
  struct bw__watch *next, *prev; /* owner's list: owner thread only */
  uint32_t idx;
  uint32_t free_next; /* idx + 1, under mx */
} bw__watch;

typedef struct bw__io {
  bw__runtime *rt;
  int epfd;
  int evfd;           /* wakes the worker blocked in epoll_wait (id 0) */
  pthread_mutex_t mx; /* slot allocation only: watch and unwatch, never an event */
  bw__watch *pages[MAX_PAGES]; /* atomic entries */
  uint32_t npages;  /* under mx */
  uint32_t free_head; /* idx + 1, under mx */
  uint32_t nslots;  /* under mx */
} bw__io;

static bw__watch *slot_at(bw__io *io, uint32_t idx) {
  uint32_t p = idx >> PAGE_BITS;
  if (p >= MAX_PAGES)
    return NULL;
  /* acquire: a page's slots are initialised before the page is published */
  bw__watch *page = BW__LD_ACQ(&io->pages[p]);
  return page != NULL ? &page[idx & (PAGE_SIZE - 1)] : NULL;
}

static uint32_t to_epoll(uint32_t ev) {
  return ((ev & BW_IO_IN) ? EPOLLIN | EPOLLRDHUP : 0u) | ((ev & BW_IO_OUT) ? EPOLLOUT : 0u);
}

static uint32_t from_epoll(uint32_t e) {
  return ((e & EPOLLIN) ? BW_IO_IN : 0u) | ((e & EPOLLOUT) ? BW_IO_OUT : 0u) |
         ((e & EPOLLERR) ? BW_IO_ERR : 0u) | ((e & (EPOLLHUP | EPOLLRDHUP)) ? BW_IO_HUP : 0u);
}

/* Registers (op ADD or MOD) w for ev; 0 interest is a disabled registration. */
static int ctl(bw__io *io, int op, bw__watch *w, uint64_t id, uint32_t ev) {
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  /* one-shot even when disarmed: epoll always reports ERR and HUP, and a
   * level-triggered registration would report them on every wait */
  e.events = to_epoll(ev) | EPOLLONESHOT;
  e.data.u64 = id;
  return epoll_ctl(io->epfd, op, w->fd, &e);
}

static uint64_t watch_id(const bw__watch *w, uint32_t gen) {
  return ((uint64_t)gen << 32) | w->idx;
}

/* --- polling, from the workers ------------------------------------------------ */

static void fire(bw__runtime *rt, bw__io *io, uint64_t id, uint32_t events) {
  bw__watch *w = slot_at(io, (uint32_t)id);
  if (w == NULL)
    return;
  uint32_t gen = (uint32_t)(id >> 32);
  /* acquire: the owner's writes before arming (msg, fd, ud) are seen */
  uint64_t old = bw__ld64_acq(&w->word);
  for (;;) {
    if (W_GEN(old) != gen || W_ST(old) != ST_ARMED)
      return; /* removed, reused, or its node is already out: a stale event */
    /* acq_rel: winning the node; the owner's later arm sees INFLIGHT */
    if (bw__cas64(&w->word, old, W_MAKE(gen, 0, ST_INFLIGHT)))
      break;
    old = bw__ld64_acq(&w->word);
  }
  bw__msg *m = w->msg;
  bw_io_event_t ev;
  ev.watch = id;
  ev.fd = w->fd;
  ev.events = from_epoll(events);
  ev.ud = w->ud;
  memcpy(m->inl, &ev, sizeof ev);
  m->pub.data = m->inl;
  m->pub.len = sizeof ev;
  m->pub.from = BW_PID_NONE;
  m->to = bw__ld64_rlx(&w->owner); /* the node's link word: set per delivery */
  /* a system message: never refused, never muted; if the owner is gone it
   * comes straight back through bw__msg_free. From a worker, the owner
   * goes on this worker's own run queue. */
  bw__deliver(rt, m, false);
}

bool bw__io_on(bw__runtime *rt) {
  /* acquire: the epoll set is complete before a worker waits in it */
  return BW__LD_ACQ(&rt->io) != NULL;
}

int bw__io_poll(bw__runtime *rt, struct epoll_event *evs, int cap, int timeout_ms) {
  bw__io *io = BW__LD_ACQ(&rt->io);
  if (io == NULL)
    return 0;
  int n = epoll_wait(io->epfd, evs, cap, timeout_ms);
  if (n <= 0)
    return 0; /* EINTR or nothing: the caller looks for work again */
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].data.u64 == 0) {
      /* the kick. Only the blocking wait (the leader's) drains it: a busy
       * worker's look must not swallow a kick meant for the leader (at
       * stop it would never return). A kick after this read makes the
       * next wait return at once, which is only a spurious look. */
      uint64_t v;
      while (timeout_ms != 0 && read(io->evfd, &v, sizeof v) < 0 && errno == EINTR)
        ;
      continue;
    }
    evs[k++] = evs[i];
  }
  return k;
}

void bw__io_fire(bw__runtime *rt, const struct epoll_event *evs, int n) {
  bw__io *io = BW__LD_ACQ(&rt->io);
  for (int i = 0; i < n; i++)
    fire(rt, io, evs[i].data.u64, evs[i].events);
}

void bw__io_kick(bw__runtime *rt) {
  bw__io *io = BW__LD_ACQ(&rt->io);
  if (io == NULL)
    return;
  uint64_t one = 1;
  while (write(io->evfd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

static void io_free(bw__io *io) {
  if (io->epfd >= 0)
    close(io->epfd);
  if (io->evfd >= 0)
    close(io->evfd);
  for (uint32_t p = 0; p < io->npages; p++)
    free(io->pages[p]);
  pthread_mutex_destroy(&io->mx);
  free(io);
}

/* The runtime's epoll set, created on first use; NULL on failure (*rc set). */
static bw__io *io_get(bw__runtime *rt, int *rc) {
  /* acquire: the set's fields are initialised before it is published */
  bw__io *io = BW__LD_ACQ(&rt->io);
  if (io != NULL)
    return io;
  io = calloc(1, sizeof *io);
  if (io == NULL) {
    *rc = BW_ENOMEM;
    return NULL;
  }
  io->rt = rt;
  pthread_mutex_init(&io->mx, NULL);
  io->epfd = epoll_create1(EPOLL_CLOEXEC);
  io->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0};
  if (io->epfd < 0 || io->evfd < 0 || epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->evfd, &e) != 0) {
    *rc = io->epfd < 0 || io->evfd < 0 ? BW_ELIMIT : BW_ENOMEM;
    io_free(io);
    return NULL;
  }
  /* one epoll set per runtime: the first CAS publishes it (release: its
   * fields first); a loser (two actors' first watches at once) frees its
   * own, which has seen no watch */
  if (!BW__CAS(&rt->io, NULL, io)) {
    io_free(io);
    return BW__LD_ACQ(&rt->io);
  }
  bw__sched_io_started(rt); /* a parked worker comes to wait in it */
  return io;
}

void bw__io_destroy(bw__runtime *rt) {
  bw__io *io = BW__LD_ACQ(&rt->io);
  if (io == NULL)
    return;
  /* the workers are joined and every actor is gone, so every watch is
   * DEAD and its node freed; the pool's chunks go with the runtime anyway */
  io_free(io);
  rt->io = NULL;
}

/* --- slots ------------------------------------------------------------------ */

static bw__watch *slot_alloc(bw__io *io) {
  pthread_mutex_lock(&io->mx);
  bw__watch *w = NULL;
  if (io->free_head != 0) {
    w = slot_at(io, io->free_head - 1);
    io->free_head = w->free_next;
  } else {
    uint32_t idx = io->nslots;
    if ((idx >> PAGE_BITS) >= io->npages) {
      if (io->npages == MAX_PAGES) {
        pthread_mutex_unlock(&io->mx);
        return NULL;
      }
      bw__watch *page = calloc(PAGE_SIZE, sizeof *page);
      if (page == NULL) {
        pthread_mutex_unlock(&io->mx);
        return NULL;
      }
      for (uint32_t i = 0; i < PAGE_SIZE; i++)
        page[i].idx = io->npages * PAGE_SIZE + i;
      /* release: the slots' idx are set before the page is seen */
      BW__ST_REL(&io->pages[io->npages], page);
      io->npages++;
    }
    io->nslots++;
    w = slot_at(io, idx);
  }
  pthread_mutex_unlock(&io->mx);
  return w;
}

/* The slot is DEAD and its node is home (or never made): free both. */
static void slot_free(bw__runtime *rt, bw__io *io, bw__watch *w) {
  if (w->msg != NULL)
    bw__msg_release_node(rt, w->msg); /* not bw__msg_free: that sends it home */
  w->msg = NULL;
  pthread_mutex_lock(&io->mx);
  w->free_next = io->free_head;
  io->free_head = w->idx + 1;
  pthread_mutex_unlock(&io->mx);
}

/* --- the owner's side -------------------------------------------------------- */

static bw__actor *own_actor(bw_ctx_t *ctx) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a)
    return NULL;
  return a;
}

/* The live watch id of a's, or NULL. */
static bw__watch *own_watch(bw__actor *a, bw_io_t id, bw__io **iop) {
  bw__io *io = BW__LD_ACQ(&a->rt->io);
  if (io == NULL || id == 0)
    return NULL;
  bw__watch *w = slot_at(io, (uint32_t)id);
  if (w == NULL)
    return NULL;
  /* acquire: pairs with the release of the word at creation */
  uint64_t word = bw__ld64_acq(&w->word);
  if (W_GEN(word) != (uint32_t)(id >> 32) || W_ST(word) == ST_DEAD ||
      bw__ld64_rlx(&w->owner) != a->pid)
    return NULL;
  *iop = io;
  return w;
}

int bw__io_watch(bw_ctx_t *ctx, int fd, uint32_t events, uint32_t flags, void *ud,
                 void (*dtor)(void *), bw_io_t *out) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (out == NULL || (events & ~(uint32_t)EV_MASK) != 0 || (flags & ~(uint32_t)BW_IO_OWNED) != 0)
    return BW_EINVAL;
  if (!bw__rt_running(a->rt))
    return BW_ESHUTDOWN;
  int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  if (fl < 0)
    return BW_EBADF;
  bw__actor_ext *x = bw__ext_get(a);
  if (x == NULL)
    return BW_ENOMEM;
  int rc = 0;
  bw__io *io = io_get(a->rt, &rc);
  if (io == NULL)
    return rc;
  bw__watch *w = slot_alloc(io);
  if (w == NULL)
    return BW_ENOMEM;
  uint32_t gen = W_GEN(bw__ld64_acq(&w->word)) + 1;
  if (gen == 0)
    gen = 1;
  uint64_t id = watch_id(w, gen);
  bw_io_event_t zero;
  memset(&zero, 0, sizeof zero);
  w->msg = bw__msg_new(a->rt, a->pid, BW__K_IO, BW_MSG_IO, &zero, sizeof zero);
  if (w->msg == NULL) {
    bw__st64_rel(&w->word, W_MAKE(gen, 0, ST_DEAD));
    slot_free(a->rt, io, w);
    return BW_ENOMEM;
  }
  w->msg->pub.ref = id;
  w->fd = fd;
  w->flags = flags;
  w->ud = ud;
  w->dtor = dtor;
  bw__st64_rlx(&w->owner, a->pid);
  /* release: everything above is seen by whoever sees the new generation */
  bw__st64_rel(&w->word, W_MAKE(gen, events, events ? ST_ARMED : ST_IDLE));
  if (!(fl & O_NONBLOCK))
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  if (ctl(io, EPOLL_CTL_ADD, w, id, events) != 0) {
    int e = errno;
    bw__st64_rel(&w->word, W_MAKE(gen, 0, ST_DEAD));
    slot_free(a->rt, io, w);
    return e == EEXIST ? BW_EEXIST : e == ENOMEM || e == ENOSPC ? BW_ENOMEM : BW_EBADF;
  }
  w->prev = NULL;
  w->next = x->io_watches;
  if (w->next != NULL)
    w->next->prev = w;
  x->io_watches = w;
  *out = id;
  return 0;
}

int bw_io_watch(bw_ctx_t *ctx, int fd, uint32_t events, uint32_t flags, void *ud,
                bw_io_t *out) {
  return bw__io_watch(ctx, fd, events, flags, ud, NULL, out);
}

int bw_io_arm(bw_ctx_t *ctx, bw_io_t id, uint32_t events) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if ((events & ~(uint32_t)EV_MASK) != 0)
    return BW_EINVAL;
  bw__io *io;
  bw__watch *w = own_watch(a, id, &io);
  if (w == NULL)
    return BW_ENOTFOUND;
  uint32_t gen = (uint32_t)(id >> 32);
  for (;;) {
    uint64_t old = bw__ld64_acq(&w->word);
    uint64_t nw;
    switch (W_ST(old)) {
    case ST_INFLIGHT:
      /* the node is out: record the wish; bw__io_msg_back applies it */
      nw = W_MAKE(gen, events ? (events | EV_PENDING) : 0u, ST_INFLIGHT);
      /* acq_rel: the node's return reads the interest we leave */
      if (bw__cas64(&w->word, old, nw))
        return 0;
      continue;
    case ST_IDLE:
    case ST_ARMED:
      /* IDLE is disabled in epoll already (one-shot fired, never armed, or
       * disarmed): disarming it again needs no system call */
      if (events == 0 && W_ST(old) == ST_IDLE)
        return 0;
      /* ARMED -> ARMED may race the poller's CAS to INFLIGHT: the CAS then
       * fails and the loop records the wish instead */
      nw = W_MAKE(gen, events, events ? ST_ARMED : ST_IDLE);
      /* release: the state is set before the registration can fire */
      if (!bw__cas64(&w->word, old, nw))
        continue;
      if (ctl(io, EPOLL_CTL_MOD, w, id, events) != 0) {
        bw__cas64(&w->word, nw, W_MAKE(gen, 0, ST_IDLE));
        return BW_EBADF;
      }
      return 0;
    default:
      return BW_ENOTFOUND;
    }
  }
}

/* Takes w out of its owner's list and epoll, closes an owned fd, runs the
 * destructor; frees the slot unless the node is out. Owner thread. */
static void watch_remove(bw__runtime *rt, bw__io *io, bw__actor_ext *x, bw__watch *w) {
  uint64_t old = bw__ld64_acq(&w->word);
  /* acq_rel: from here no poller CAS succeeds; the node's holder sees DEAD */
  while (!bw__cas64(&w->word, old, W_MAKE(W_GEN(old), 0, ST_DEAD)))
    old = bw__ld64_acq(&w->word);
  epoll_ctl(io->epfd, EPOLL_CTL_DEL, w->fd, NULL); /* EBADF if closed under us: fine */
  if (w->flags & BW_IO_OWNED)
    close(w->fd);
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    x->io_watches = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  w->next = w->prev = NULL;
  /* ud and dtor stay as they are: a poller may be reading ud for the
   * node it holds; a new watch rewrites them only after the slot is free */
  void (*dtor)(void *) = w->dtor;
  void *ud = w->ud;
  if (W_ST(old) != ST_INFLIGHT)
    slot_free(rt, io, w); /* else the node's return frees it */
  if (dtor != NULL)
    dtor(ud);
}

int bw_io_unwatch(bw_ctx_t *ctx, bw_io_t id) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  bw__io *io;
  bw__watch *w = own_watch(a, id, &io);
  if (w == NULL)
    return BW_ENOTFOUND;
  watch_remove(a->rt, io, a->ext, w);
  return 0;
}

int bw_io_deadline(bw_ctx_t *ctx, bw_io_t id, uint64_t ms, bw_timer_t *timer) {
  bw__actor *a = own_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (ms > UINT64_MAX / 2000000ull)
    return BW_EINVAL;
  bw__io *io;
  bw__watch *w = own_watch(a, id, &io);
  if (w == NULL)
    return BW_ENOTFOUND;
  bw_io_event_t ev = {.watch = id, .fd = w->fd, .events = BW_IO_TIMEOUT, .ud = w->ud};
  bw__msg *m = bw__msg_new(a->rt, a->pid, BW__K_IOTIMER, BW_MSG_IO, &ev, sizeof ev);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.ref = id;
  bw_timer_t t = 0;
  int rc = bw__timer_arm(a->rt, ms * 1000000ull, 0, m, &t);
  if (rc != 0) {
    bw__msg_free(a->rt, m);
    return rc;
  }
  if (timer != NULL)
    *timer = t;
  return 0;
}

/* --- the node's way back, exit ------------------------------------------------ */

void bw__io_msg_back(bw__runtime *rt, bw__msg *m) {
  bw__io *io = BW__LD_ACQ(&rt->io);
  bw__watch *w = slot_at(io, (uint32_t)m->pub.ref);
  uint32_t gen = (uint32_t)(m->pub.ref >> 32);
  for (;;) {
    uint64_t old = bw__ld64_acq(&w->word);
    if (W_ST(old) == ST_DEAD) {
      slot_free(rt, io, w); /* removed while the node was out: we free it */
      return;
    }
    uint32_t want = W_EV(old);
    if (want & EV_PENDING) {
      want &= EV_MASK;
      /* acq_rel: armed before the registration can fire again */
      if (!bw__cas64(&w->word, old, W_MAKE(gen, want, ST_ARMED)))
        continue;
      ctl(io, EPOLL_CTL_MOD, w, m->pub.ref, want); /* a closed fd: nothing fires, unwatch frees */
      return;
    }
    if (bw__cas64(&w->word, old, W_MAKE(gen, 0, ST_IDLE)))
      return;
  }
}

int bw__io_on_msg(bw__actor *a, bw__msg *m) {
  bw__io *io = BW__LD_ACQ(&a->rt->io);
  if (io == NULL)
    return 0;
  bw__watch *w = slot_at(io, (uint32_t)m->pub.ref);
  if (w == NULL)
    return 0;
  uint64_t word = bw__ld64_acq(&w->word);
  if (W_GEN(word) != (uint32_t)(m->pub.ref >> 32) || W_ST(word) == ST_DEAD)
    return 0; /* unwatched meanwhile: no message after bw_io_unwatch */
  if (m->kind == BW__K_IOTIMER && bw__ld64_rlx(&w->owner) != a->pid)
    return 0;
  return 1;
}

void bw__io_on_exit(bw__actor *a) {
  bw__io *io = BW__LD_ACQ(&a->rt->io);
  bw__actor_ext *x = a->ext;
  while (x->io_watches != NULL)
    watch_remove(a->rt, io, x, x->io_watches);
}
