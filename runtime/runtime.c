/*
 * bulwark: the runtime's lifecycle and statistics.
 *
 * Stop is graceful: new spawns are refused, every live actor is asked to
 * exit with reason shutdown (it runs terminate; messages still queued are
 * dead-lettered "shutdown"), the caller waits until none is left, then
 * timers (pending ones dead-lettered) and threads stop. After stop the
 * runtime answers only statistics until it is destroyed. Stop does not
 * depend on allocating: an exit's wake-up is part of the actor, and a
 * signal that cannot be allocated falls back to a forced exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "runtime/internal.h"

void bw__clock_init(bw__runtime *rt);
void bw__sched_destroy(bw__runtime *rt);

static uint64_t next_runtime_id = 0;

void bw_runtime_opts_init(bw_runtime_opts_t *o) {
  if (o != NULL)
    memset(o, 0, sizeof(*o));
}

unsigned bw_runtime_workers(const bw_runtime_t *rt) { return rt == NULL ? 0 : rt->nworkers; }

int bw_runtime_create(const bw_runtime_opts_t *opts, bw_runtime_t **out) {
  bw_runtime_opts_t d;
  if (opts == NULL) {
    bw_runtime_opts_init(&d);
    opts = &d;
  }
  if (out == NULL || opts->workers > 256 || opts->batch > 1000000 || opts->node_id > 255 ||
      opts->max_timers > BW_TIMERS_MAX || !bw__log_opts_valid(opts))
    return BW_EINVAL;
  *out = NULL;
  bw__runtime *rt = aligned_alloc(BW__CACHELINE, (sizeof(*rt) + BW__CACHELINE - 1) &
                                                     ~(size_t)(BW__CACHELINE - 1));
  if (rt == NULL)
    return BW_ENOMEM;
  memset(rt, 0, sizeof(*rt));
  rt->id = bw__faa64(&next_runtime_id, 1) + 1;
  unsigned n = opts->workers;
  if (n == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (unsigned)c : 1;
    if (n > 256)
      n = 256;
  }
  rt->nworkers = n;
  rt->batch = opts->batch ? opts->batch : 64;
  rt->manual_clock = opts->manual_clock;
  rt->node_id = opts->node_id;
  rt->stop_grace_ms = opts->stop_grace_ms ? opts->stop_grace_ms : 5000;
  rt->timers.max = opts->max_timers; /* 0: bw__timers_init's default */
  bw__log_init(rt, opts); /* before anything that could log */
  bw__clock_init(rt);
  pthread_mutex_init(&rt->pool_mx, NULL);
  pthread_mutex_init(&rt->park_mx, NULL);
  pthread_mutex_init(&rt->life_mx, NULL);
  pthread_cond_init(&rt->life_cv, NULL);
  pthread_rwlock_init(&rt->reg_lock, NULL);
  bw__dead_letter_init(rt);
  bw__event_init(rt);
  int rc = bw__timers_init(rt);
  if (rc == 0)
    rc = bw__sched_start(rt);
  if (rc != 0) {
    rt->state = BW__RT_STOPPED;
    bw__timers_stop(rt);
    bw__timers_destroy(rt);
    bw__sched_destroy(rt);
    bw__registry_destroy(rt);
    bw__dead_letter_destroy(rt);
    bw__event_destroy(rt);
    bw__pool_destroy(rt);
    bw__log_destroy(rt);
    free(rt);
    return rc;
  }
  bw__pid_init(rt); /* the runtime tag its pids carry (pid.c) */
  bw__log_env_check(rt);
  *out = rt;
  return 0;
}

/* Phase 1: a shutdown exit signal to each root that asked for an ordered
 * shutdown (trappable, so a supervisor stops its subtree in order). */
static void signal_root(bw__runtime *rt, bw_pid_t pid, void *ud) {
  (void)ud;
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return;
  bool root = (a->cflags & BW__CF_ROOT) != 0;
  bw__pid_unpin(s);
  if (root) {
    bw_reason_t r;
    bw__reason_set(&r, BW_REASON_SHUTDOWN, 0, "runtime stopping");
    /* a trapping root's signal is a message; without memory for it, the
     * root exits at once rather than holding up the stop for the grace */
    if (bw__exit_signal(rt, pid, BW_PID_NONE, &r, false) == BW_ENOMEM)
      bw__force_exit(rt, pid, BW__FORCE_SHUTDOWN);
  }
}

/* Phase 2: whatever is left exits before its next message. */
static void force_exit(bw__runtime *rt, bw_pid_t pid, void *ud) {
  (void)ud;
  bw__force_exit(rt, pid, BW__FORCE_SHUTDOWN);
}

/* How long stop waits for the last actors before it says so on stderr (it
 * goes on waiting: a handler cannot be preempted). */
#define BW__STOP_REPORT_S 10

static uint64_t wall_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* Waits until *counter is 0 or the deadline (0: none). Without one, it
 * says on stderr after BW__STOP_REPORT_S seconds (once) how many it still
 * waits for, so a stop held up by a handler that never returns is not a
 * silent hang. Lost wake-ups are not what it guards against: exits need
 * no memory (release.c, bw__exit_wake), so none is lost. */
static void wait_until(bw__runtime *rt, uint64_t *counter, uint64_t deadline_ns) {
  uint64_t report_at = deadline_ns == 0 ? wall_ns() + BW__STOP_REPORT_S * 1000000000ull : 0;
  pthread_mutex_lock(&rt->life_mx);
  while (bw__ld64_acq(counter) != 0) {
    if (deadline_ns == 0 && report_at == 0) {
      pthread_cond_wait(&rt->life_cv, &rt->life_mx);
    } else if (deadline_ns == 0) {
      struct timespec ts = {.tv_sec = (time_t)(report_at / 1000000000ull),
                            .tv_nsec = (long)(report_at % 1000000000ull)};
      if (pthread_cond_timedwait(&rt->life_cv, &rt->life_mx, &ts) == ETIMEDOUT) {
        fprintf(stderr,
                "bulwark: bw_runtime_stop: %llu actors still running after %d s; a handler "
                "that does not return holds up the stop\n",
                (unsigned long long)bw__ld64_acq(counter), BW__STOP_REPORT_S);
        report_at = 0;
      }
    } else {
      struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                            .tv_nsec = (long)(deadline_ns % 1000000000ull)};
      if (pthread_cond_timedwait(&rt->life_cv, &rt->life_mx, &ts) == ETIMEDOUT)
        break;
    }
  }
  pthread_mutex_unlock(&rt->life_mx);
}

int bw_runtime_stop(bw_runtime_t *rt) {
  if (rt == NULL)
    return BW_EINVAL;
  if (bw__tl.th != NULL && bw__tl.th->rt == rt)
    return BW_EWOULDBLOCK;
  if (bw__tl.cur != NULL && bw__tl.cur->rt == rt)
    return BW_EWOULDBLOCK;
  if (!bw__cas32(&rt->state, BW__RT_RUNNING, BW__RT_STOPPING))
    return BW_ESHUTDOWN;
  /* new spawns are refused from here on. Phase 1: roots get a trappable
   * shutdown and a grace period (wall clock, so it also ends under a
   * manual clock) to stop their subtrees in order */
  bw__pid_foreach_live(rt, signal_root, NULL);
  wait_until(rt, &rt->live_roots, wall_ns() + rt->stop_grace_ms * 1000000ull);
  /* Phase 2: everything left exits at once (terminate still runs) */
  bw__pid_foreach_live(rt, force_exit, NULL);
  bw__inbox_stop(rt); /* a thread's inbox: nobody runs it to take the exit */
  wait_until(rt, &rt->live, 0);
  pthread_mutex_lock(&rt->life_mx);
  while (rt->ndedicated_running != 0)
    pthread_cond_wait(&rt->life_cv, &rt->life_mx);
  pthread_mutex_unlock(&rt->life_mx);
  bw__timers_stop(rt);
  bw__sched_join(rt);
  bw__dedicated_reap(rt);
  pthread_mutex_lock(&rt->life_mx);
  while (rt->nzombies > 0) {
    pthread_mutex_unlock(&rt->life_mx);
    bw__dedicated_reap(rt);
    pthread_mutex_lock(&rt->life_mx);
  }
  pthread_mutex_unlock(&rt->life_mx);
  bw__st32_rel(&rt->state, BW__RT_STOPPED);
  return 0;
}

void bw_runtime_destroy(bw_runtime_t *rt) {
  if (rt == NULL)
    return;
  /* from its own actor or thread it would wait for itself, then free the
   * memory it runs on: a programming error that cannot be returned from a
   * void call, so it is stopped loudly rather than hung (as bw_fail does) */
  if ((bw__tl.th != NULL && bw__tl.th->rt == rt) || (bw__tl.cur != NULL && bw__tl.cur->rt == rt)) {
    fprintf(stderr, "bulwark: bw_runtime_destroy called from inside an actor (or a thread) of "
                    "the runtime it destroys: it would wait for itself forever; aborting\n");
    abort();
  }
  if (bw__ld32_acq(&rt->state) != BW__RT_STOPPED)
    bw_runtime_stop(rt);
  bw__inbox_destroy_all(rt); /* closed by the stop; their memory is the pool's */
  if (bw__tl.rt_id == rt->id) {
    bw__tl.rt_id = 0;
    bw__tl.ext_cache = NULL;
  }
  const bw__remote_ops *ops = BW__LD_ACQ(&rt->remote_ops);
  if (ops != NULL && ops->destroy != NULL)
    ops->destroy(rt, rt->remote_ud);
  bw__io_destroy(rt);
  bw__timers_destroy(rt);
  bw__sched_destroy(rt);
  bw__registry_destroy(rt);
  bw__dead_letter_destroy(rt);
  bw__event_destroy(rt);
  bw__pid_destroy(rt);
  bw__pool_destroy(rt);
  bw__log_destroy(rt);
  free(rt->zombies);
  pthread_mutex_destroy(&rt->pool_mx);
  pthread_mutex_destroy(&rt->park_mx);
  pthread_mutex_destroy(&rt->life_mx);
  pthread_cond_destroy(&rt->life_cv);
  free(rt);
}

int bw_runtime_stats(const bw_runtime_t *rt, bw_runtime_stats_t *out) {
  if (rt == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof(*out));
  out->sent = bw__ld64_rlx(&rt->ext_ctr.sent) + bw__ld64_rlx(&rt->timers.ctr.sent);
  out->handled = bw__ld64_rlx(&rt->ext_ctr.handled) + bw__ld64_rlx(&rt->timers.ctr.handled);
  for (unsigned i = 0, n = rt->workers ? bw__nworkers(rt) : 0; i < n; i++) {
    out->sent += bw__ld64_rlx(&rt->workers[i].ctr.sent);
    out->handled += bw__ld64_rlx(&rt->workers[i].ctr.handled);
  }
  for (int i = 0; i < BW_DL__COUNT; i++) {
    out->dead_by_reason[i] = bw__ld64_rlx(&rt->dead[i]);
    out->dead_letters += out->dead_by_reason[i];
  }
  out->dead_internal = bw__ld64_rlx(&rt->dead_internal);
  out->rejected = bw__ld64_rlx(&rt->rejected);
  out->forwarded = bw__ld64_rlx(&rt->forwarded);
  out->spawned = bw__ld64_rlx(&rt->spawned);
  out->exited = bw__ld64_rlx(&rt->exited);
  out->crashed = bw__ld64_rlx(&rt->crashed);
  out->live = bw__ld64_rlx(&rt->live);
  uint64_t now = bw__mono_ns();
  out->uptime_ns = now - rt->epoch_ns;
  out->workers = rt->workers ? bw__nworkers(rt) : 0;
  for (unsigned i = 0; i < out->workers; i++) {
    bw__worker *w = &rt->workers[i];
    /* relaxed: a sample; a park in progress counts up to now */
    uint64_t since = bw__ld64_rlx(&w->park_since);
    out->idle_ns += bw__ld64_rlx(&w->idle_ns) + (since != 0 && since < now ? now - since : 0);
  }
  return 0;
}
