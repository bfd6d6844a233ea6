/*
 * bulwark: dedicated-thread actors: an actor spawned with dedicated_thread
 * runs its init and its turns on a thread of its own, sleeping on a
 * semaphore while idle. The thread frees the actor when its loop ends, and
 * is joined later (bw__dedicated_reap, from spawn and stop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

static void dedicated_loop(bw__thread *th, bw__actor *a) {
  jmp_buf jb;
  bw__tl.jb = &jb;
  if (setjmp(jb) != 0) {
    bw__actor_crashed(th);
    return;
  }
  for (;;) {
    int r = bw__actor_run(th, a);
    if (r == BW__RUN_DEAD)
      return;
    if (r == BW__RUN_IDLE || r == BW__RUN_MUTED) {
      /* muted: the receiver's unmute schedules us, which posts */
      while (sem_wait(&a->ext->wake) != 0 && errno == EINTR) {
      }
    }
  }
}

/* What a dedicated thread needs to finish, however it ends. */
typedef struct dedicated_end {
  bw__runtime *rt;
  bw__actor *a;
  bw__thread *th;
  pthread_t self;
  bool watched;
} dedicated_end_t;

/* The thread's last steps: free the actor (after a successful init; the
 * spawner releases it otherwise), hand the cache on, leave itself to be
 * joined, and let bw_runtime_stop know one less thread runs. */
static void dedicated_finish(dedicated_end_t *d, bool inited) {
  bw__runtime *rt = d->rt;
  bw__thread *th = d->th;
  if (inited) {
    bw__ext_free(d->a);
    bw__actor_free(rt, d->a);
  }
  if (th->cache != NULL)
    bw__cache_release(rt, th->cache);
  bw__tl.th = NULL;
  bw__tl.cur = NULL;
  pthread_mutex_lock(&rt->life_mx);
  if (d->watched) {
    bw__thread **pp = &rt->watch_list;
    while (*pp != NULL && *pp != th)
      pp = &(*pp)->watch_next;
    if (*pp != NULL)
      *pp = th->watch_next;
  }
  if (rt->nzombies == rt->capzombies) {
    uint32_t cap = rt->capzombies ? rt->capzombies * 2 : 16;
    pthread_t *z = realloc(rt->zombies, cap * sizeof(*z));
    if (z != NULL) {
      rt->zombies = z;
      rt->capzombies = cap;
    }
  }
  if (rt->nzombies < rt->capzombies)
    rt->zombies[rt->nzombies++] = d->self;
  else
    pthread_detach(d->self);
  rt->ndedicated_running--;
  pthread_cond_broadcast(&rt->life_cv);
  pthread_mutex_unlock(&rt->life_mx);
}

/* The thread ended inside the actor's loop (a handler called pthread_exit,
 * or the thread was cancelled): the actor is treated as crashed, stderr
 * says so, and the thread finishes as usual, so bw_runtime_stop does not
 * wait for it forever. Runs as the loop's cleanup handler. */
static void dedicated_died(void *arg) {
  dedicated_end_t *d = arg;
  bw__actor *a = d->a;
  fprintf(stderr,
          "bulwark: the thread of dedicated actor %#llx (%s) ended (pthread_exit or "
          "cancellation); the actor is treated as crashed\n",
          (unsigned long long)a->pid, bw_ctx_name((bw_ctx_t *)a));
  bw__reason_set(&bw__tl.crash, BW_REASON_CRASH, BW_ECRASH,
                 "its thread ended inside the handler (pthread_exit)");
  if (bw__tl.cur == a) {
    bw__actor_crashed(d->th);
  } else {
    bw_reason_t r = bw__tl.crash; /* ended between messages */
    bw__actor_die(a, &r);
  }
  dedicated_finish(d, true);
}

void *bw__dedicated_main(void *arg) {
  bw__actor *a = arg;
  bw__runtime *rt = a->rt;
  bw__thread th = {.kind = BW__TH_DEDICATED, .rt = rt, .ctr = &rt->ext_ctr};
  th.cache = bw__cache_acquire(rt);
  bw__tl.th = &th;
  bw__tl.cur = NULL;
  bw__actor_ext *e = a->ext;
  dedicated_end_t d = {.rt = rt, .a = a, .th = &th, .self = pthread_self(),
                       .watched = (a->cflags & BW__CF_WATCHED) != 0};
  if (d.watched) {
    pthread_mutex_lock(&rt->life_mx);
    th.watch_next = rt->watch_list;
    rt->watch_list = &th;
    pthread_mutex_unlock(&rt->life_mx);
  }
  int rc = th.cache == NULL ? BW_ENOMEM : bw__run_init(a, e->init_arg, &e->init_reason);
  e->init_rc = rc;
  if (rc == 0)
    a->flags |= BW__AF_INITED;
  sem_post(&e->init_done);
  /* the spawner waits for init_done before it looks at the actor again,
   * and for a failed init it releases the actor itself */
  if (rc == 0) {
    pthread_cleanup_push(dedicated_died, &d);
    dedicated_loop(&th, a);
    pthread_cleanup_pop(0);
  }
  dedicated_finish(&d, rc == 0);
  return NULL;
}

/* Joins dedicated threads that have finished. */
void bw__dedicated_reap(bw__runtime *rt) {
  pthread_mutex_lock(&rt->life_mx);
  uint32_t n = rt->nzombies;
  pthread_t local[64];
  if (n > 64)
    n = 64;
  for (uint32_t i = 0; i < n; i++)
    local[i] = rt->zombies[--rt->nzombies];
  pthread_mutex_unlock(&rt->life_mx);
  for (uint32_t i = 0; i < n; i++)
    pthread_join(local[i], NULL);
}
