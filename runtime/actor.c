/*
 * bulwark: actors: spawn, one turn of message handling, crashes, exit.
 *
 * Split out so far: the turn in turn.c, back-pressure in mute.c, the exit
 * path in release.c, dedicated threads in dedicated.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

void bw__reason_set(bw_reason_t *r, int kind, int code, const char *text) {
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  r->code = code;
  if (text != NULL)
    snprintf(r->text, sizeof(r->text), "%s", text);
}

void bw_spawn_opts_init(bw_spawn_opts_t *o) {
  if (o != NULL)
    memset(o, 0, sizeof(*o));
}

bw_pid_t bw_self(const bw_ctx_t *ctx) {
  return ctx == NULL ? BW_PID_NONE : ((const bw__actor *)ctx)->pid;
}

bw_runtime_t *bw_ctx_runtime(const bw_ctx_t *ctx) {
  return ctx == NULL ? NULL : ((const bw__actor *)ctx)->rt;
}

const char *bw_ctx_name(const bw_ctx_t *ctx) {
  const bw__actor *a = (const bw__actor *)ctx;
  return (a == NULL || a->beh == NULL || a->beh->name == NULL) ? "" : a->beh->name;
}

void bw_fail(bw_ctx_t *ctx, int code, const char *fmt, ...) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a || bw__tl.jb == NULL) {
    fprintf(stderr, "bulwark: bw_fail called outside its actor's callback; aborting\n");
    abort();
  }
  bw__reason_set(&bw__tl.crash, BW_REASON_CRASH, code == 0 ? BW_ECRASH : code, NULL);
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bw__tl.crash.text, sizeof(bw__tl.crash.text), fmt, ap);
    va_end(ap);
  }
  longjmp(*bw__tl.jb, 1);
}

int bw_exit_self(bw_ctx_t *ctx, int kind, int code, const char *text) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || bw__tl.cur != a || kind < 0 || kind >= BW_REASON__COUNT ||
      kind == BW_REASON_KILL)
    return BW_EINVAL;
  bw_reason_t r;
  bw__reason_set(&r, kind, code, text);
  bw__msg *m = bw__msg_new(a->rt, a->pid, BW__K_EXIT, 0, &r, sizeof(r));
  if (m == NULL)
    return BW_ENOMEM;
  /* release (CAS): the reason is written before it is taken; an urgent exit
   * that another actor already sent wins */
  if (!BW__CAS(&a->urgent, NULL, m))
    bw__msg_free(a->rt, m);
  return 0;
}

void bw_trap_exit(bw_ctx_t *ctx, bool on) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL)
    return;
  /* release: senders read it (relaxed) to choose urgent or in-order exits;
   * a race with a concurrent signal is inherent, as in Erlang. The owner is
   * the only writer of this word, so a load and a store make no lost update */
  uint32_t w = bw__ld32_rlx(&a->trap);
  bw__st32_rel(&a->trap, on ? (w | BW__SIG_TRAP) : (w & ~(uint32_t)BW__SIG_TRAP));
}

bw__actor_ext *bw__ext_get(bw__actor *a) {
  if (a->ext == NULL) {
    bw__actor_ext *e = calloc(1, sizeof(bw__actor_ext));
    /* release: the zeroed ext is complete before a signaller that loads
     * the pointer (bw__wake_muted, acquire) reads its muted_on */
    BW__ST_REL(&a->ext, e);
  }
  return a->ext;
}

/* --- memory ------------------------------------------------------------- */

_Static_assert(offsetof(bw__actor, state) == 2 * BW__CACHELINE,
               "actor header: two cache lines (senders', owner's)");

static size_t actor_size(const bw_behaviour_t *b) {
  size_t st = b != NULL ? (b->state_size + 15u) & ~(size_t)15u : 0;
  return sizeof(bw__actor) + st;
}

static bw__actor *actor_alloc(bw__runtime *rt, size_t size) {
  int cls = bw__pool_class(size);
  bw__actor *a;
  if (cls >= 0) {
    bw__cache *c = bw__my_cache(rt);
    a = c != NULL ? bw__pool_alloc(c, cls) : NULL;
  } else {
    a = aligned_alloc(64, (size + 63) & ~(size_t)63);
  }
  if (a == NULL)
    return NULL;
  memset(a, 0, size);
  a->cls = cls >= 0 ? (uint8_t)cls : 0xFF;
  a->exit_q.next = BW__EXITQ_UNUSED;
  return a;
}

void bw__actor_free(bw__runtime *rt, bw__actor *a) {
  if (a->cls == 0xFF)
    free(a);
  else
    bw__pool_free(bw__my_cache(rt), a);
}

void bw__ext_free(bw__actor *a) {
  bw__actor_ext *e = a->ext;
  if (e == NULL)
    return;
  if (a->cflags & (BW__CF_DEDICATED | BW__CF_WAITER)) {
    sem_destroy(&e->wake);
    if (a->cflags & BW__CF_DEDICATED)
      sem_destroy(&e->init_done);
  }
  free(e->links);
  bw__reftab_free(&e->mon_out);
  bw__reftab_free(&e->mon_in);
  bw__reftab_free(&e->reqs);
  free(e);
  a->ext = NULL;
}

/* --- scheduling hook for dedicated actors and waiters ---------------------- */

void bw__waiter_wake(bw__actor *a) {
  /* sem_post is lock-free in glibc (an atomic add, and a futex wake only if
   * the thread sleeps) */
  sem_post(&a->ext->wake);
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

int bw_spawn(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg, const bw_spawn_opts_t *opts,
             bw_pid_t *out) {
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

  bw__actor *a = actor_alloc(rt, actor_size(b));
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
      free(a->ext);
      a->ext = NULL;
    }
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

/* --- waiters (bw_call) ------------------------------------------------------ */

int bw__waiter_new(bw__runtime *rt, bw__actor **out);
int bw__waiter_new(bw__runtime *rt, bw__actor **out) {
  bw__actor *a = actor_alloc(rt, sizeof(bw__actor));
  if (a == NULL)
    return BW_ENOMEM;
  a->rt = rt;
  a->cflags = BW__CF_WAITER;
  bw__mpsc_init(&a->mb, &a->mbc, false); /* the caller is "running" it until it waits */
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL || sem_init(&e->wake, 0, 0) != 0) {
    free(a->ext);
    bw__actor_free(rt, a);
    return BW_ENOMEM;
  }
  int rc = bw__pid_alloc(rt, a);
  if (rc != 0) {
    sem_destroy(&e->wake);
    free(e);
    bw__actor_free(rt, a);
    return rc;
  }
  bw__faa64(&rt->live, 1);
  bw__pid_publish(rt, a);
  *out = a;
  return 0;
}

void bw__waiter_free(bw__runtime *rt, bw__actor *w);
void bw__waiter_free(bw__runtime *rt, bw__actor *w) {
  bw_reason_t r;
  bw__reason_set(&r, BW_REASON_NORMAL, 0, NULL);
  bw__pid_invalidate(rt, w->pid);
  bw__msg *u = BW__XCHG(&w->urgent, NULL);
  if (u != NULL)
    bw__msg_free(rt, u);
  bw__qnode *q;
  while ((q = bw__mpsc_pop(&w->mb, &w->mbc)) != NULL) {
    if (q == &w->exit_q)
      continue;
    bw__msg *m = (bw__msg *)q;
    m->to = w->pid;
    if (m->kind == BW__K_USER)
      bw__dead_letter(rt, m, (m->pub.flags & BW_MSGF_REPLY) ? BW_DL_LATE_REPLY : BW_DL_EXITED);
    else {
      bw__link_bounce(rt, m, &r);
      bw__msg_free(rt, m);
    }
  }
  bw__ext_free(w);
  bw__pid_free(rt, w->pid);
  bw__actor_free(rt, w);
  bw__live_dec(rt, false);
}


int bw_mailbox_depth(bw_runtime_t *rt, bw_pid_t pid, uint32_t *out) {
  if (rt == NULL || out == NULL)
    return BW_EINVAL;
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return BW_ENOPROC;
  /* relaxed: a snapshot of two counters that move independently */
  int32_t d = (int32_t)(bw__ld32_rlx(&a->mb_pushed) - bw__ld32_rlx(&a->mb_popped));
  bw__pid_unpin(s);
  *out = d > 0 ? (uint32_t)d : 0; /* batched counts: see send.c */
  return 0;
}

int bw__actor_behaviour(bw_runtime_t *rt, bw_pid_t pid, const bw_behaviour_t **out) {
  bw__slot *s;
  bw__actor *a = bw__pid_pin(rt, pid, &s);
  if (a == NULL)
    return BW_ENOPROC;
  *out = a->beh; /* fixed at spawn */
  bw__pid_unpin(s);
  return 0;
}
