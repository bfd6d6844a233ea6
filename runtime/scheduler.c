/*
 * bulwark: the scheduler.
 *
 * N worker threads. Each has a bounded FIFO run queue that only it pushes
 * to and that any worker may pop from (the owner pops its own; idle workers
 * steal). Actors made runnable by a thread that is not a worker of this
 * runtime (main, a dedicated-thread actor, the timer thread) go through one
 * injection queue (an MPSC on the same design as mailboxes; workers take
 * turns consuming it). An actor is on at most one queue at a time: the
 * mailbox mark guarantees a single schedule per idle period.
 *
 * Idle workers spin briefly looking for work, then park on a condition
 * variable, so an idle runtime uses no CPU. A worker that makes work wakes
 * a parked one only when there is more work than it will run itself (its
 * queue holds two or more actors), or when the work came from outside;
 * so ping-pong between two actors stays on one core instead of paying a
 * futex wake per message. Parking re-checks every queue after announcing
 * itself (seq_cst), and wakers announce work before reading the parked
 * count (seq_cst), so no wake-up is lost.
 *
 * I/O (runtime/io.c, IO.md): in a runtime with descriptors, the last
 * worker to park parks in epoll_wait instead (the I/O leader), woken by
 * readiness or by an eventfd kick when other work needs it; it delivers
 * what it saw to its own queue and runs it. Busy workers look without
 * blocking when they run out of work, while they spin and every 64
 * actors; a worker parked while others run leads if they stop looking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "runtime/internal.h"
#include "runtime/mailbox.h"

#define SPIN_ROUNDS 64
#define IO_BATCH 64 /* readiness events taken per look */

static bw__actor *actor_of_rq(bw__qnode *q) {
  return (bw__actor *)((char *)q - offsetof(bw__actor, rq));
}

/* --- local ring --------------------------------------------------------- */

static bool rq_push(bw__worker *w, bw__actor *a) {
  uint32_t t = bw__ld32_rlx(&w->rq_tail);
  /* acquire: slots freed by consumers (their CAS on head) may be reused */
  uint32_t h = bw__ld32_acq(&w->rq_head);
  if (t - h >= BW__RQ_SIZE)
    return false;
  BW__ST_RLX(&w->rq[t & (BW__RQ_SIZE - 1)], a);
  /* release: the slot's content is visible before the new tail */
  bw__st32_rel(&w->rq_tail, t + 1);
  return true;
}

static bw__actor *rq_pop(bw__worker *w) {
  for (;;) {
    /* acquire on both: see the slot written before the tail was published */
    uint32_t h = bw__ld32_acq(&w->rq_head);
    uint32_t t = bw__ld32_acq(&w->rq_tail);
    if (h == t)
      return NULL;
    bw__actor *a = BW__LD_RLX(&w->rq[h & (BW__RQ_SIZE - 1)]);
    /* acq_rel CAS: claims the slot; if another consumer won, the value we
     * read may be stale and is discarded */
    if (bw__cas32(&w->rq_head, h, h + 1))
      return a;
  }
}

static uint32_t rq_len(bw__worker *w) {
  return bw__ld32_rlx(&w->rq_tail) - bw__ld32_rlx(&w->rq_head);
}

/* --- injection queue ------------------------------------------------------ */

static void inject_push(bw__runtime *rt, bw__actor *a) {
  bw__faa32(&rt->inject_len, 1);
  bw__mpsc_push(&rt->inject, &a->rq);
}

static bw__actor *inject_pop(bw__runtime *rt) {
  if (bw__ld32_rlx(&rt->inject_len) == 0)
    return NULL;
  /* one consumer at a time; a worker that loses the race looks elsewhere */
  if (bw__xchg32(&rt->inject_lock, 1) != 0)
    return NULL;
  bw__qnode *q = bw__mpsc_pop(&rt->inject, &rt->inject_c);
  /* release: our consumer-side updates of the queue (its tail) are visible
   * to the next worker that takes the lock */
  bw__st32_rel(&rt->inject_lock, 0);
  if (q == NULL)
    return NULL;
  bw__faa32(&rt->inject_len, (uint32_t)-1);
  return actor_of_rq(q);
}

/* --- parking ---------------------------------------------------------------- */

static void wake_one(bw__runtime *rt) {
  /* seq_cst: our queue push must be visible before we read nparked, and a
   * parking worker publishes nparked before re-reading the queues (Dekker) */
  bw__fence_seq_cst();
  if (bw__ld32_rlx(&rt->nparked) == 0 || bw__ld32_rlx(&rt->nsearching) != 0)
    return;
  pthread_mutex_lock(&rt->park_mx);
  /* a worker on its condition variable first: the one in epoll_wait stays
   * there, watching the runtime's descriptors */
  bw__worker *leader = NULL;
  for (unsigned i = 0, n = bw__nworkers(rt); i < n; i++) {
    bw__worker *w = &rt->workers[i];
    if (!w->parked || w->wake)
      continue;
    if (w == BW__LD_RLX(&rt->io_leader)) {
      leader = w;
      continue;
    }
    w->wake = true;
    pthread_cond_signal(&w->park_cv);
    leader = NULL;
    break;
  }
  if (leader != NULL) {
    leader->wake = true;
    bw__io_kick(rt);
  }
  pthread_mutex_unlock(&rt->park_mx);
}

void bw__sched_wake_all(bw__runtime *rt) {
  pthread_mutex_lock(&rt->park_mx);
  for (unsigned i = 0, n = bw__nworkers(rt); i < n; i++) {
    rt->workers[i].wake = true;
    pthread_cond_signal(&rt->workers[i].park_cv);
  }
  if (BW__LD_RLX(&rt->io_leader) != NULL)
    bw__io_kick(rt);
  pthread_mutex_unlock(&rt->park_mx);
}

/* The epoll set was created while every idle worker may be parked on its
 * condition variable, where readiness would not reach it: wake one, which
 * parks again in epoll_wait. (A worker that checks bw__io_on under park_mx
 * after this either saw the set, or was parked here and is woken.) */
void bw__sched_io_started(bw__runtime *rt) {
  pthread_mutex_lock(&rt->park_mx);
  for (unsigned i = 0, n = bw__nworkers(rt); BW__LD_RLX(&rt->io_leader) == NULL && i < n; i++) {
    bw__worker *w = &rt->workers[i];
    if (w->parked && !w->wake) {
      w->wake = true;
      pthread_cond_signal(&w->park_cv);
      break;
    }
  }
  pthread_mutex_unlock(&rt->park_mx);
}

void bw__schedule(bw__runtime *rt, bw__actor *a) {
  if (a->cflags & (BW__CF_DEDICATED | BW__CF_WAITER)) {
    bw__waiter_wake(a);
    return;
  }
  bw__thread *th = bw__tl.th;
  if (th != NULL && th->kind == BW__TH_WORKER && th->rt == rt) {
    bw__worker *w = th->worker;
    if (rq_push(w, a)) {
      if (rq_len(w) >= 2)
        wake_one(rt);
      return;
    }
  }
  inject_push(rt, a);
  wake_one(rt);
}

/*
 * Called during a long turn (the running actor has more messages) when it
 * may have made other actors runnable on this worker's queue, where they
 * would wait for the turn to end: wakes a parked worker to steal them. The
 * queue-length rule of bw__schedule does not see this case: one actor
 * queued behind a turn that goes on (a producer streaming to a consumer).
 * Returns true if it woke (or found a searcher), so a turn calls it until
 * then and no more. Relaxed loads: hints; wake_one re-checks after a
 * seq_cst fence.
 */
bool bw__sched_handoff(bw__worker *w) {
  bw__runtime *rt = w->th.rt;
  if (rq_len(w) == 0)
    return false;
  /* relaxed store, then wake_one's seq_cst fence before it reads nparked:
   * a worker parking concurrently either sees the flag in any_work or is
   * counted in nparked and woken (Dekker, as for every wake) */
  bw__st32_rlx(&w->handoff, 1);
  wake_one(rt);
  return true;
}

/*
 * Schedules a for another worker than this one: through the injection queue,
 * waking a parked worker. For senders an overloaded actor unmutes while it
 * still has a backlog: on this worker's own queue they would wait behind it
 * or displace it, when the point is that both run at once.
 */
void bw__schedule_elsewhere(bw__runtime *rt, bw__actor *a) {
  if ((a->cflags & (BW__CF_DEDICATED | BW__CF_WAITER)) || bw__nworkers(rt) < 2) {
    bw__schedule(rt, a);
    return;
  }
  inject_push(rt, a);
  wake_one(rt);
}

#define BW__LINGER_NS 1500u       /* wait for more before going idle ... */
#define BW__LINGER_BATCH_NS 6000u /* ... and, once more came, for a batch
                                   * (fan-in: shorter batch waits lost up to
                                   * a third of fanin_p4 in A/B runs) */

/*
 * An actor that has just drained its mailbox, on a worker with nothing else
 * queued, waits a moment for more before it goes idle. A consumer that keeps
 * up with a fast producer would otherwise go idle after every few messages,
 * and each message would pay for a schedule and a steal (fan-in ran at half
 * speed that way). Bounded (about a microsecond), and only where the worker
 * would spin looking for work anyway; not when others wait on this worker.
 * Returns true if a message arrived.
 */
bool bw__sched_linger(bw__worker *w, const bw__mpsc_c *c, bool batch) {
  if (rq_len(w) != 0)
    return false;
  /* bounded by time, not by a count of pauses: a pause costs 5 ns on some
   * cores and over 25 ns on others (26 ns on the bench machine, where 256
   * of them made every single-message actor wait 7 us before going idle) */
  uint64_t t0 = bw__mono_ns();
  for (;;) {
    for (int k = 0; k < 8; k++)
      bw__cpu_relax();
    if (bw__mpsc_has_more(c)) {
      /* a consumer that answers nobody is being streamed to: let a few
       * more arrive, so the next turn takes a batch instead of chasing
       * the producer message by message across the cores */
      if (batch) {
        uint64_t t1 = bw__mono_ns();
        while (bw__mono_ns() - t1 < BW__LINGER_BATCH_NS)
          for (int k = 0; k < 8; k++)
            bw__cpu_relax();
      }
      return true;
    }
    if (bw__mono_ns() - t0 >= BW__LINGER_NS)
      return false;
  }
}

/* --- the worker loop ------------------------------------------------------ */

static bw__actor *steal(bw__runtime *rt, bw__worker *self) {
  unsigned n = bw__nworkers(rt);
  if (n < 2)
    return NULL;
  self->rng = self->rng * 1103515245u + 12345u;
  unsigned start = (self->rng >> 16) % n;
  for (unsigned i = 0; i < n; i++) {
    bw__worker *v = &rt->workers[(start + i) % n];
    if (v == self)
      continue;
    /* a lone actor queued behind a short turn is its worker's next: taking
     * it would split a conversation (ping-pong) across the cores for good.
     * Take it only when that worker asked for help (a long turn, see
     * bw__sched_handoff) or has more queued. Relaxed: hints. */
    if (rq_len(v) < 2 && !bw__ld32_rlx(&v->handoff))
      continue;
    bw__actor *a = rq_pop(v);
    if (a != NULL)
      return a;
  }
  return NULL;
}

/* Work this worker could take: its own queue, the injection queue, or what
 * steal would take from a peer (two or more queued, or a turn that asked
 * for help). A lone actor behind a peer's short turn is not: counting it
 * would keep this worker spinning, never parked, for as long as that turn
 * lasts; the peer runs it next, and wakes a parked worker if its turn turns
 * long (bw__sched_handoff) or a second actor queues (bw__schedule). */
static bool any_work(bw__runtime *rt, bw__worker *self) {
  if (bw__ld32_rlx(&rt->inject_len) != 0)
    return true;
  for (unsigned i = 0, n = bw__nworkers(rt); i < n; i++) {
    bw__worker *v = &rt->workers[i];
    uint32_t len = rq_len(v);
    if (len != 0 && (v == self || len >= 2 || bw__ld32_rlx(&v->handoff)))
      return true;
  }
  return false;
}

/* --- I/O while parked ---------------------------------------------------------- */

#define IO_STALL_NS 10000000ull /* no poll for this long: a parked worker leads */

/* Blocks w in epoll_wait as the I/O leader (park_mx held on entry and on
 * return, released while waiting). Returns the ready events. */
static int lead_io(bw__runtime *rt, bw__worker *w, struct epoll_event *evs) {
  /* relaxed store: under park_mx for wake_one; a hint for poll_io */
  BW__ST_RLX(&rt->io_leader, w);
  pthread_mutex_unlock(&rt->park_mx);
  int n = bw__io_poll(rt, evs, IO_BATCH, -1); /* blocks: never a busy wait */
  pthread_mutex_lock(&rt->park_mx);
  BW__ST_RLX(&rt->io_leader, NULL);
  /* relaxed: progress for parked workers' stall check, a counter only */
  bw__faa32_rlx(&rt->io_polls, 1);
  /* the others may be parked without a deadline (the runtime was idle):
   * one of them watches for a stall while w runs (park_wait) */
  for (unsigned i = 0, k = bw__nworkers(rt); i < k; i++) {
    bw__worker *v = &rt->workers[i];
    if (v != w && v->parked && !v->wake && !v->io_watch) {
      v->io_recheck = true;
      pthread_cond_signal(&v->park_cv);
      break;
    }
  }
  return n;
}

/* park_mx held: w waits on its condition variable until dl (NULL: no
 * deadline), woken, or told to look again. Returns true on the deadline. */
static bool park_cv_wait(bw__runtime *rt, bw__worker *w, const struct timespec *dl) {
  int rc = 0;
  w->io_watch = dl != NULL;
  while (!w->wake && !rt->workers_exit && !w->io_recheck && rc != ETIMEDOUT)
    rc = dl != NULL ? pthread_cond_timedwait(&w->park_cv, &rt->park_mx, dl)
                    : pthread_cond_wait(&w->park_cv, &rt->park_mx);
  w->io_watch = false;
  return rc == ETIMEDOUT;
}

/*
 * park_mx held: w parks. A plain condition wait, except in a runtime with
 * descriptors:
 * - with no leader, the last worker to park leads (lead_io);
 * - a worker that parks while others run watches them: it waits with a
 *   deadline (IO_STALL_NS) and leads if nobody looked at the descriptors
 *   meanwhile (they are stuck in long handlers: readiness would wait for
 *   them). While there is activity it keeps watching: a timed wake-up per
 *   IO_STALL_NS, not one per event;
 * - once a deadline passes with no activity and a leader waiting, the
 *   runtime is idle: it waits without a deadline, and the leader, when it
 *   leaves epoll_wait, tells it to watch again (lead_io). An idle runtime
 *   wakes nobody.
 * Returns ready events (when it led).
 */
static int park_wait(bw__runtime *rt, bw__worker *w, struct epoll_event *evs) {
  bool deep = false;
  while (!w->wake && !rt->workers_exit) {
    if (w->io_recheck)
      deep = false; /* a leader left epoll_wait: watch again */
    w->io_recheck = false;
    bool io = bw__io_on(rt);
    bool leaderless = BW__LD_RLX(&rt->io_leader) == NULL;
    if (io && leaderless && bw__ld32_rlx(&rt->nparked) >= bw__nworkers(rt))
      return lead_io(rt, w, evs); /* every worker is parked: the runtime is idle */
    if (!io || deep) {
      park_cv_wait(rt, w, NULL);
      continue;
    }
    /* relaxed: a counter compared with itself */
    uint32_t seen = bw__ld32_rlx(&rt->io_polls);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + IO_STALL_NS;
    dl.tv_sec += (time_t)(ns / 1000000000ull);
    dl.tv_nsec = (long)(ns % 1000000000ull);
    if (!park_cv_wait(rt, w, &dl) || bw__ld32_rlx(&rt->io_polls) != seen)
      continue; /* woken, or there was activity: watch on */
    if (BW__LD_RLX(&rt->io_leader) == NULL)
      return lead_io(rt, w, evs); /* nobody polled for IO_STALL_NS */
    deep = true; /* a leader waits and nothing happened: idle */
  }
  return 0;
}

/*
 * Parks w until there is work. In a runtime with descriptors, the worker
 * that parks last (every other one is parked already) parks in epoll_wait
 * on them instead of on its condition variable: it is the I/O leader,
 * woken by readiness or by a kick (wake_one). The last, not the first: the
 * worker that was busy until now is the one whose answers are coming, and
 * a worker blocked in epoll_wait is woken by every readiness even while a
 * busy worker would have seen it by polling (a context switch per event
 * on a second core). Readiness is delivered after w counts itself awake
 * again, so the owners it makes runnable go on w's own queue and run next,
 * here, with no hand-off. Returns false when the runtime tells workers to
 * exit.
 */
static bool park(bw__runtime *rt, bw__worker *w) {
  struct epoll_event evs[IO_BATCH];
  int nev = 0;
  pthread_mutex_lock(&rt->park_mx);
  if (rt->workers_exit) {
    pthread_mutex_unlock(&rt->park_mx);
    return false;
  }
  w->parked = true;
  w->wake = false;
  /* seq_cst (RMW + fence): announce before the re-check below */
  bw__faa32(&rt->nparked, 1);
  bw__fence_seq_cst();
  if (!any_work(rt, w)) {
    /* relaxed: statistics, read by bw_runtime_stats; the clock is read only
     * when a worker really sleeps, never per message */
    uint64_t t0 = bw__mono_ns();
    bw__st64_rlx(&w->park_since, t0);
    nev = park_wait(rt, w, evs);
    bw__st64_rlx(&w->park_since, 0);
    bw__faa64(&w->idle_ns, bw__mono_ns() - t0);
  }
  w->parked = false;
  bw__faa32(&rt->nparked, (uint32_t)-1);
  bool go_on = !rt->workers_exit;
  pthread_mutex_unlock(&rt->park_mx);
  if (nev > 0)
    bw__io_fire(rt, evs, nev);
  return go_on;
}

/* A look at the runtime's descriptors without blocking, when no worker is
 * blocked in epoll_wait for them (then it would see them first): a busy
 * worker's way of noticing readiness. Returns an actor it made runnable
 * here, or NULL. */
static bw__actor *poll_io(bw__runtime *rt, bw__worker *w) {
  /* relaxed: a hint; a stale NULL costs one empty epoll_wait, a stale
   * leader one look skipped (the leader itself sees the event) */
  if (BW__LD_RLX(&rt->io_leader) != NULL || !bw__io_on(rt))
    return NULL;
  struct epoll_event evs[IO_BATCH];
  int n = bw__io_poll(rt, evs, IO_BATCH, 0);
  /* relaxed: progress for a parked worker's stall check (park_wait) */
  bw__faa32_rlx(&rt->io_polls, 1);
  if (n == 0)
    return NULL;
  bw__io_fire(rt, evs, n);
  return rq_pop(w);
}

/*
 * Adaptive spin, for a runtime with descriptors whose other workers are all
 * parked: then what this worker spins for is mostly readiness, an answer
 * from another process. If that process needs the core the spin is taking
 * (a loaded machine), the spin only delays the answer. So a spin that found
 * nothing makes the next 1, 2, 4, ... up to 64 such spins be skipped (the
 * worker parks at once, as the I/O leader), and one that found work resets
 * it: on a quiet machine answers come within the spin and it keeps
 * spinning; on a loaded one it mostly sleeps, as a plain event loop does.
 */
static bool io_alone(bw__runtime *rt) {
  /* relaxed: a hint; park decides under its lock */
  return bw__io_on(rt) && bw__ld32_rlx(&rt->nparked) + 1 >= bw__nworkers(rt);
}

static bool skip_spin(bw__runtime *rt, bw__worker *w) {
  if (w->spin_skip == 0 || !io_alone(rt))
    return false;
  w->spin_skip--;
  return true;
}

static void spin_wasted(bw__runtime *rt, bw__worker *w) {
  if (!io_alone(rt))
    return;
  w->spin_backoff = w->spin_backoff ? (w->spin_backoff < 64 ? w->spin_backoff * 2 : 64) : 1;
  w->spin_skip = w->spin_backoff;
}

static bw__actor *next_actor(bw__runtime *rt, bw__worker *w) {
  bw__actor *a;
  /* now and then look at the injection queue first, so outside work is
   * not starved by a busy local queue */
  if ((++w->tick & 31) == 0 && (a = inject_pop(rt)) != NULL)
    return a;
  /* and now and then at the descriptors, so readiness is not left waiting
   * while every worker is busy */
  if ((w->tick & 63) == 1 && (a = poll_io(rt, w)) != NULL)
    return a;
  if ((a = rq_pop(w)) != NULL)
    return a;
  for (;;) {
    if ((a = inject_pop(rt)) != NULL)
      return a;
    /* out of work: a descriptor may be ready (a reply to what the last
     * actor wrote); taking it here saves a wake-up of the leader */
    if ((a = poll_io(rt, w)) != NULL)
      return a;
    if (skip_spin(rt, w)) {
      if (!park(rt, w))
        return NULL;
      if ((a = rq_pop(w)) != NULL)
        return a; /* what it saw as the leader is on its own queue */
      continue;
    }
    bw__faa32(&rt->nsearching, 1);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
      /* the descriptors too, every 8th round (a system call each): an
       * answer to what the last actor wrote often comes within the spin,
       * and would otherwise wait for it to end and the leader to wake */
      if ((a = steal(rt, w)) != NULL || (a = inject_pop(rt)) != NULL ||
          (a = rq_pop(w)) != NULL || ((i & 7) == 7 && (a = poll_io(rt, w)) != NULL)) {
        bw__faa32(&rt->nsearching, (uint32_t)-1);
        w->spin_backoff = 0; /* the spin paid */
        /* we took work that may have more behind it: let a parked peer look */
        if (any_work(rt, w))
          wake_one(rt);
        return a;
      }
      for (int k = 0; k < 16; k++)
        bw__cpu_relax();
    }
    bw__faa32(&rt->nsearching, (uint32_t)-1);
    spin_wasted(rt, w);
    if (!park(rt, w))
      return NULL;
  }
}

static void worker_loop(bw__runtime *rt, bw__worker *w) {
  bw__actor *a;
  while ((a = next_actor(rt, w)) != NULL) {
    int r = bw__actor_run(&w->th, a);
    /* relaxed: a hint, also set by the watchdog's thread for a hung turn */
    if (bw__ld32_rlx(&w->handoff))
      bw__st32_rlx(&w->handoff, 0); /* the long turn is over */
    if (r == BW__RUN_AGAIN) {
      if (!rq_push(w, a))
        inject_push(rt, a);
      if (rq_len(w) >= 2)
        wake_one(rt);
    }
  }
}

static void *worker_main(void *arg);

/*
 * A worker thread ended without returning: a handler called pthread_exit
 * (or the thread was cancelled inside a handler that enabled it). Runs as
 * the thread's cleanup handler, on what is left of its stack. Silently,
 * this left the actor half-run, never to exit, and bw_runtime_stop waiting
 * for it forever. Now: the actor is treated as crashed (terminate, links,
 * monitors, its supervisor restarts it), stderr says so, and a new thread
 * takes over the worker (its run queue and cache), so the runtime keeps
 * its workers and a later stop finishes.
 */
static void worker_died(void *arg) {
  bw__worker *w = arg;
  bw__runtime *rt = w->th.rt;
  unsigned index = w->index;
  bw__actor *a = bw__tl.cur;
  if (a != NULL) {
    fprintf(stderr,
            "bulwark: worker thread %u ended (pthread_exit or cancellation) inside a handler "
            "of actor %#llx (%s); the actor is treated as crashed\n",
            index, (unsigned long long)a->pid, bw_ctx_name((bw_ctx_t *)a));
    bw__reason_set(&bw__tl.crash, BW_REASON_CRASH, BW_ECRASH,
                   "its thread ended inside the handler (pthread_exit)");
    bw__actor_crashed(&w->th);
  } else {
    fprintf(stderr, "bulwark: worker thread %u ended outside any handler\n", index);
  }
  bw__tl.th = NULL;
  bw__tl.jb = NULL;
  bw__tl.cur = NULL;
  /* under spare_mx, as bw__sched_join sets workers_exit: either the join
   * has not begun and joins the new thread, or it has, and joins this one */
  pthread_mutex_lock(&rt->spare_mx);
  pthread_mutex_lock(&rt->park_mx);
  bool exiting = rt->workers_exit;
  pthread_mutex_unlock(&rt->park_mx);
  pthread_t t;
  if (!exiting && pthread_create(&t, NULL, worker_main, w) == 0) {
    /* from here the new thread owns w; this one only finishes ending */
    pthread_detach(pthread_self());
    w->thread = t;
    fprintf(stderr, "bulwark: a new thread runs worker %u\n", index);
  } else if (!exiting) {
    fprintf(stderr, "bulwark: worker %u lost: no thread could replace it\n", index);
    /* relaxed: a hint; the others steal its queue (see steal) */
    bw__st32_rlx(&w->handoff, 1);
  }
  pthread_mutex_unlock(&rt->spare_mx);
}

static void *worker_main(void *arg) {
  bw__worker *w = arg;
  bw__runtime *rt = w->th.rt;
  bw__tl.th = &w->th;
  bw__tl.cur = NULL;
  /* nobody cancels a worker: a stray cancel in park() would end it holding
   * park_mx. A handler that calls pthread_exit is caught by worker_died. */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  jmp_buf jb;
  bw__tl.jb = &jb;
  /* the setjmp is inside the cleanup region: bw_fail's longjmp must not
   * leave it (that would leave the handler registered on a dead frame) */
  pthread_cleanup_push(worker_died, w);
  if (setjmp(jb) != 0) {
    /* bw_fail unwound out of a handler on this thread */
    bw__tl.jb = &jb;
    bw__actor_crashed(&w->th);
  }
  worker_loop(rt, w);
  pthread_cleanup_pop(0);
  bw__tl.th = NULL;
  bw__tl.jb = NULL;
  return NULL;
}

static int worker_init(bw__runtime *rt, unsigned i) {
  bw__worker *w = &rt->workers[i];
  w->index = i;
  w->rng = 0x9E3779B9u * (i + 1);
  w->rq = calloc(BW__RQ_SIZE, sizeof(*w->rq));
  w->th.kind = BW__TH_WORKER;
  w->th.rt = rt;
  w->th.ctr = &w->ctr;
  w->th.worker = w;
  w->th.cache = bw__cache_acquire(rt);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* park_wait's deadline */
  pthread_cond_init(&w->park_cv, &ca);
  pthread_condattr_destroy(&ca);
  if (w->rq == NULL || w->th.cache == NULL)
    return BW_ENOMEM;
  return 0;
}

int bw__sched_start(bw__runtime *rt) {
  rt->max_workers = rt->nworkers * 2;
  size_t bytes = sizeof(bw__worker) * rt->max_workers;
  rt->workers = aligned_alloc(BW__CACHELINE, (bytes + BW__CACHELINE - 1) & ~(size_t)(BW__CACHELINE - 1));
  if (rt->workers == NULL)
    return BW_ENOMEM;
  memset(rt->workers, 0, bytes);
  pthread_mutex_init(&rt->spare_mx, NULL);
  bw__mpsc_init(&rt->inject, &rt->inject_c, false);
  for (unsigned i = 0; i < rt->nworkers; i++)
    if (worker_init(rt, i) != 0)
      return BW_ENOMEM;
  for (unsigned i = 0; i < rt->nworkers; i++) {
    if (pthread_create(&rt->workers[i].thread, NULL, worker_main, &rt->workers[i]) != 0) {
      pthread_mutex_lock(&rt->park_mx);
      rt->workers_exit = true;
      pthread_mutex_unlock(&rt->park_mx);
      bw__st32_rel(&rt->nworkers_live, i);
      bw__sched_wake_all(rt);
      for (unsigned j = 0; j < i; j++)
        pthread_join(rt->workers[j].thread, NULL);
      return BW_ETHREAD;
    }
    /* release: this worker's struct is complete before others count it */
    bw__st32_rel(&rt->nworkers_live, i + 1);
  }
  return 0;
}

/* A worker is stuck in a hung handler: start one more (up to as many spares
 * as workers) so the other actors keep their share of the CPU. */
void bw__sched_add_spare(bw__runtime *rt) {
  pthread_mutex_lock(&rt->spare_mx);
  unsigned n = bw__nworkers(rt);
  pthread_mutex_lock(&rt->park_mx);
  bool exiting = rt->workers_exit;
  pthread_mutex_unlock(&rt->park_mx);
  if (n < rt->max_workers && !exiting && worker_init(rt, n) == 0) {
    /* release: the struct is complete before stealers see the count */
    bw__st32_rel(&rt->nworkers_live, n + 1);
    if (pthread_create(&rt->workers[n].thread, NULL, worker_main, &rt->workers[n]) != 0)
      rt->workers[n].thread = 0; /* counted, never runs; joined as absent */
  }
  pthread_mutex_unlock(&rt->spare_mx);
}

void bw__sched_join(bw__runtime *rt) {
  pthread_mutex_lock(&rt->spare_mx);
  pthread_mutex_lock(&rt->park_mx);
  rt->workers_exit = true;
  pthread_mutex_unlock(&rt->park_mx);
  pthread_mutex_unlock(&rt->spare_mx);
  bw__sched_wake_all(rt);
  for (unsigned i = 0, n = bw__nworkers(rt); i < n; i++)
    if (rt->workers[i].thread != 0)
      pthread_join(rt->workers[i].thread, NULL);
}

void bw__sched_destroy(bw__runtime *rt);
void bw__sched_destroy(bw__runtime *rt) {
  if (rt->workers == NULL)
    return;
  for (unsigned i = 0; i < rt->max_workers; i++) {
    if (rt->workers[i].rq == NULL)
      continue; /* never initialised */
    free(rt->workers[i].rq);
    pthread_cond_destroy(&rt->workers[i].park_cv);
  }
  free(rt->workers);
  rt->workers = NULL;
  pthread_mutex_destroy(&rt->spare_mx);
}
