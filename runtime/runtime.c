/*
 * bulwark: the runtime's lifecycle and statistics.
 *
 * Stop is graceful: new spawns are refused, every live actor is asked to
 * exit with reason shutdown (it runs terminate; messages still queued are
 * dead-lettered "shutdown"), the caller waits until none is left, then
 * timers (pending ones dead-lettered) and threads stop. After stop the
 * runtime answers only statistics until it is destroyed.
 */
#include <stdlib.h>
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
  if (out == NULL || opts->workers > 256 || opts->batch > 1000000)
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
  bw__clock_init(rt);
  pthread_mutex_init(&rt->pool_mx, NULL);
  pthread_mutex_init(&rt->park_mx, NULL);
  pthread_mutex_init(&rt->life_mx, NULL);
  pthread_cond_init(&rt->life_cv, NULL);
  pthread_rwlock_init(&rt->reg_lock, NULL);
  pthread_rwlock_init(&rt->dl_lock, NULL);
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
    bw__pool_destroy(rt);
    free(rt);
    return rc;
  }
  *out = rt;
  return 0;
}

static void ask_to_exit(bw__runtime *rt, bw_pid_t pid, void *ud) {
  (void)ud;
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return;
  /* release (CAS): set before the WAKE is queued; never downgrade a kill */
  bw__cas32(&a->pending_exit, 0, 1u + BW_REASON_SHUTDOWN);
  bw__pid_unpin(s);
  bw__send_sys(rt, pid, BW_PID_NONE, BW__K_WAKE, 0, NULL);
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
  /* ask every actor to exit; actors spawned meanwhile are refused, but an
   * actor's terminate may still send, so repeat until nothing is left */
  for (;;) {
    bw__pid_foreach_live(rt, ask_to_exit, NULL);
    pthread_mutex_lock(&rt->life_mx);
    if (bw__ld64_acq(&rt->live) != 0) {
      pthread_cond_wait(&rt->life_cv, &rt->life_mx);
    }
    bool empty = bw__ld64_acq(&rt->live) == 0 && rt->ndedicated_running == 0;
    pthread_mutex_unlock(&rt->life_mx);
    if (empty)
      break;
  }
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
  if (bw__ld32_acq(&rt->state) != BW__RT_STOPPED)
    bw_runtime_stop(rt);
  if (bw__tl.rt_id == rt->id) {
    bw__tl.rt_id = 0;
    bw__tl.ext_cache = NULL;
  }
  bw__timers_destroy(rt);
  bw__sched_destroy(rt);
  bw__registry_destroy(rt);
  bw__dead_letter_destroy(rt);
  bw__pid_destroy(rt);
  bw__pool_destroy(rt);
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
  for (unsigned i = 0; rt->workers != NULL && i < rt->nworkers; i++) {
    out->sent += bw__ld64_rlx(&rt->workers[i].ctr.sent);
    out->handled += bw__ld64_rlx(&rt->workers[i].ctr.handled);
  }
  for (int i = 0; i < BW_DL__COUNT; i++) {
    out->dead_by_reason[i] = bw__ld64_rlx(&rt->dead[i]);
    out->dead_letters += out->dead_by_reason[i];
  }
  out->rejected = bw__ld64_rlx(&rt->rejected);
  out->spawned = bw__ld64_rlx(&rt->spawned);
  out->exited = bw__ld64_rlx(&rt->exited);
  out->crashed = bw__ld64_rlx(&rt->crashed);
  out->live = bw__ld64_rlx(&rt->live);
  return 0;
}
