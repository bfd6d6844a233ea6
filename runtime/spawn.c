/*
 * bulwark: spawn: options, the actor's memory and pid, init (on the
 * spawner's thread, or on the actor's own thread for a dedicated actor),
 * publishing, and the undoing of a failed spawn.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

void bw_spawn_opts_init(bw_spawn_opts_t *o) {
  if (o != NULL)
    memset(o, 0, sizeof(*o));
}

static size_t actor_size(const bw_behaviour_t *b) {
  size_t st = b != NULL ? (b->state_size + 15u) & ~(size_t)15u : 0;
  return sizeof(bw__actor) + st;
}

/* --- init ------------------------------------------------------------------ */

/* Runs init on this thread; returns 0 or a negative code with *why set. */
int bw__run_init(bw__actor *a, void *arg, bw_reason_t *why) {
  if (a->beh->init == NULL)
    return 0;
  bw__actor *saved_cur = bw__tl.cur;
  jmp_buf *saved_jb = bw__tl.jb;
  jmp_buf jb;
  volatile int rc = 0;
  bw__tl.cur = a;
  bw__tl.jb = &jb;
  if (setjmp(jb) == 0) {
    rc = a->beh->init((bw_ctx_t *)a, a->state, arg);
    if (rc > 0)
      rc = BW_EINVAL;
    if (rc < 0) {
      bw__reason_set(why, BW_REASON_CRASH, rc, NULL);
      snprintf(why->text, sizeof(why->text), "init returned %s", bw_err_name(rc));
    }
  } else {
    *why = bw__tl.crash;
    rc = why->code;
  }
  bw__tl.cur = saved_cur;
  bw__tl.jb = saved_jb;
  /* init ran and failed: terminate will not, cleanup does */
  if (rc != 0 && a->beh->cleanup != NULL)
    a->beh->cleanup(a->state);
  return rc;
}

/* --- spawn --------------------------------------------------------------------- */

/*
 * A spawn that passed its "running?" check just before bw_runtime_stop
 * began may publish its actor after stop's scan of live actors, which then
 * never tells it to exit, and stop waits for it forever. So the spawner
 * looks again once the actor is live: seq_cst fence after the publish, and
 * stop's seq_cst CAS before its scan (a Dekker pair): either stop's scan
 * sees the actor, or this load sees the stop, or both (a second shutdown
 * signal is harmless).
 */
static void late_for_stop(bw__runtime *rt, bw_pid_t pid) {
  bw__fence_seq_cst();
  if (bw__ld32_rlx(&rt->state) != BW__RT_RUNNING)
    bw__force_exit(rt, pid, BW__FORCE_SHUTDOWN);
}

/* Lineage (bw_parent, bw_child_id) of an actor spawned with link: in its
 * ext, which a linked actor needs anyway for the link (it used to be made
 * when the LINK arrived), so a plain spawn pays nothing for it. Fixed
 * before init and never changed: only the actor reads it. */
static int set_lineage(bw__actor *a, const bw__actor *parent, const char *child_id) {
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return BW_ENOMEM;
  e->parent = parent->pid;
  e->child_id = child_id;
  return 0;
}

static int spawn_actor(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg,
                       const bw_spawn_opts_t *opts, const char *child_id, bw_pid_t *out);

int bw_spawn(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg, const bw_spawn_opts_t *opts,
             bw_pid_t *out) {
  return spawn_actor(rt, b, arg, opts, NULL, out);
}

int bw__spawn_child(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg,
                    const bw_spawn_opts_t *opts, const char *child_id, bw_pid_t *out) {
  return spawn_actor(rt, b, arg, opts, child_id, out);
}

static int spawn_actor(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg,
                       const bw_spawn_opts_t *opts, const char *child_id, bw_pid_t *out) {
  bw_spawn_opts_t defaults;
  if (opts == NULL) {
    bw_spawn_opts_init(&defaults);
    opts = &defaults;
  }
  if (rt == NULL || b == NULL || b->handle == NULL)
    return BW_EINVAL;
  if (opts->overflow != BW_OVERFLOW_REJECT && opts->overflow != BW_OVERFLOW_DROP)
    return BW_EINVAL;
  if (b->state_size > (size_t)1 << 30)
    return BW_EINVAL;
  if (opts->name != NULL && (opts->name[0] == '\0' || strlen(opts->name) > BW_NAME_MAX))
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) != BW__RT_RUNNING)
    return BW_ESHUTDOWN;
  bw__actor *parent = bw__tl.cur;
  if (parent != NULL && parent->rt != rt)
    parent = NULL;
  if (opts->link && parent == NULL)
    return BW_ENOTACTOR;
  if (opts->dedicated_thread)
    bw__dedicated_reap(rt);

  bw__actor *a = bw__actor_alloc(rt, actor_size(b));
  if (a == NULL)
    return BW_ENOMEM;
  a->rt = rt;
  a->beh = b;
  a->mb_cap = opts->mailbox_capacity;
  if (opts->overflow == BW_OVERFLOW_DROP)
    a->cflags |= BW__CF_DROP;
  if (opts->trap_exit)
    a->trap = BW__SIG_TRAP;
  if (opts->never_muted || b->never_muted)
    a->cflags |= BW__CF_NEVER_MUTED;
  /* unmarked: sends during init queue up without scheduling the actor */
  bw__mpsc_init(&a->mb, &a->mbc, false);
  if (opts->dedicated_thread) {
    a->cflags |= BW__CF_DEDICATED;
    bw__actor_ext *e = bw__ext_get(a);
    if (e == NULL || sem_init(&e->wake, 0, 0) != 0 || sem_init(&e->init_done, 0, 0) != 0) {
      free(a->ext);
      bw__actor_free(rt, a);
      return BW_ENOMEM;
    }
  }
  if (opts->hang_limit_ms != 0) {
    bw__actor_ext *e = bw__ext_get(a);
    if (e == NULL) {
      bw__actor_free(rt, a);
      return BW_ENOMEM;
    }
    e->hang_ms = opts->hang_limit_ms;
    e->hang_to = opts->hang_report_to;
    a->cflags |= BW__CF_WATCHED;
  }
  if (opts->link && set_lineage(a, parent, child_id) != 0) {
    bw__actor_free(rt, a); /* it has no ext: that is what failed */
    return BW_ENOMEM;
  }
  if (opts->name != NULL)
    a->cflags |= BW__CF_NAMED;
  if (parent == NULL && opts->ordered_shutdown)
    a->cflags |= BW__CF_ROOT;
  int rc = bw__pid_alloc(rt, a);
  if (rc != 0) {
    a->cflags &= (uint8_t)~BW__CF_DEDICATED;
    if (opts->dedicated_thread) {
      sem_destroy(&a->ext->wake);
      sem_destroy(&a->ext->init_done);
    }
    free(a->ext); /* a linked, watched or dedicated actor's: nothing in it yet */
    a->ext = NULL;
    bw__actor_free(rt, a);
    return rc;
  }
  bw__faa64(&rt->live, 1);
  if (a->cflags & BW__CF_ROOT)
    bw__faa64(&rt->live_roots, 1);
  if ((a->cflags & BW__CF_WATCHED) && bw__faa32(&rt->nwatched, 1) == 0 && !rt->manual_clock)
    bw__timers_kick(rt); /* the timer thread starts its watchdog ticks */
  bw__pid_publish(rt, a);

  bw_reason_t why;
  bw__reason_set(&why, BW_REASON_NORMAL, 0, NULL);
  if (opts->name != NULL) {
    rc = bw__registry_add(rt, opts->name, a->pid);
    if (rc != 0) {
      bw__reason_set(&why, BW_REASON_CRASH, rc, "name already registered");
      goto failed;
    }
  }
  if (opts->link) {
    rc = bw_link((bw_ctx_t *)parent, a->pid);
    if (rc != 0) {
      bw__reason_set(&why, BW_REASON_CRASH, rc, "link failed");
      goto failed;
    }
  }
  if (opts->dedicated_thread) {
    bw__actor_ext *e = a->ext;
    e->init_arg = arg;
    pthread_mutex_lock(&rt->life_mx);
    rt->ndedicated_running++;
    pthread_mutex_unlock(&rt->life_mx);
    if (pthread_create(&e->thread, NULL, bw__dedicated_main, a) != 0) {
      pthread_mutex_lock(&rt->life_mx);
      rt->ndedicated_running--;
      pthread_mutex_unlock(&rt->life_mx);
      rc = BW_ETHREAD;
      bw__reason_set(&why, BW_REASON_CRASH, rc, "could not create the actor's thread");
      goto failed;
    }
    while (sem_wait(&e->init_done) != 0 && errno == EINTR) {
    }
    rc = e->init_rc;
    if (rc != 0) {
      why = e->init_reason;
      goto failed; /* the thread is finishing without touching the actor */
    }
    bw__faa64(&rt->spawned, 1);
    bw_pid_t dpid = a->pid;
    late_for_stop(rt, dpid);
    if (out != NULL)
      *out = dpid;
    return 0;
  }
  rc = bw__run_init(a, arg, &why);
  if (rc != 0)
    goto failed;
  a->flags |= BW__AF_INITED;
  bw__faa64(&rt->spawned, 1);
  bw_pid_t pid = a->pid;
  /* end of the init "turn": go idle, or run if messages arrived meanwhile */
  if (bw__actor_exit_pending(a) || !bw__mpsc_mark_empty(&a->mb, &a->mbc))
    bw__schedule(rt, a);
  late_for_stop(rt, pid);
  if (out != NULL)
    *out = pid;
  return 0;

failed:
  if (opts->init_error != NULL)
    *opts->init_error = why;
  if (opts->dedicated_thread) {
    /* the actor's thread has ended or never started: release here */
    a->cflags &= (uint8_t)~BW__CF_DEDICATED;
    sem_destroy(&a->ext->wake);
    sem_destroy(&a->ext->init_done);
    a->cflags |= 0;
  }
  {
    bw__actor *saved = bw__tl.cur;
    bw__tl.cur = a;
    bw__actor_release(a, &why);
    bw__tl.cur = saved;
  }
  return rc;
}
