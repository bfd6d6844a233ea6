/*
 * bulwark: inboxes (bulwark/inbox.h): a pid and a mailbox for a thread that
 * is not an actor.
 *
 * An inbox is a bw_call waiter kept (actor.c, bw__waiter_new): a pseudo-
 * actor with a pid, a mailbox, an ext for links, monitors and requests, and
 * a semaphore instead of a behaviour, which the scheduler posts when a
 * message reaches it while it is marked empty (bw__schedule). The thread
 * plays the actor's part: a receive takes messages as a turn would, turning
 * signals into BW_MSG_EXIT and BW_MSG_DOWN (turn.c's dispatch), and the
 * calls that act "as the calling actor" (bw_send's sender, bw_link,
 * bw_monitor, bw_request) run with the inbox as the thread's current actor
 * for their length (as_begin), so they are the runtime's own, not copies.
 *
 * The inbox's lock (mx) stands for "running the actor": whoever holds it
 * owns the mailbox's consumer end and the ext. A receive holds it while it
 * takes messages and lets it go to sleep; closing takes it, so
 * bw_runtime_stop can close an inbox whose thread is busy elsewhere, and a
 * receive asleep wakes to find it closed. The pseudo-actor's memory (and so
 * its semaphore) stays until bw_inbox_destroy, so a thread never sleeps on
 * freed memory.
 *
 * Lock order: the list's lock, then an inbox's, then the registry's (a
 * close drops the name; bw_call_named holds an inbox's while it resolves).
 * No path holds two inboxes' locks.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/actor_internal.h"
#include "runtime/internal.h"
#include "runtime/mailbox.h"

int bw__waiter_new(bw__runtime *rt, bw__actor **out);
void bw__waiter_free(bw__runtime *rt, bw__actor *w);

struct bw_inbox {
  bw__runtime *rt;
  bw__actor *a;
  pthread_mutex_t mx;
  /* the rest under mx */
  bw__msg *held;                /* what the last receive returned */
  bw__msg *saved, *saved_tail;  /* passed over by receive_match, in arrival order */
  int closed;                   /* 0 open; else what calls return: BW_ESHUTDOWN, BW_ENOPROC */
  bool receiving;               /* a thread is inside a receive (maybe asleep) */
  bool named;
  /* the process's inboxes, under list_mx (bw_runtime_stop closes its own) */
  struct bw_inbox *prev, *next;
};

static pthread_mutex_t list_mx = PTHREAD_MUTEX_INITIALIZER;
static bw_inbox_t *list_head;

/* --- closing ------------------------------------------------------------------ */

/* The pid exits with reason r, as an actor's exit path does (release.c),
 * except that the memory stays for bw_inbox_destroy. Under mx. */
static void close_locked(bw_inbox_t *ib, const bw_reason_t *r, int rc) {
  bw__runtime *rt = ib->rt;
  bw__actor *a = ib->a;
  bw_pid_t pid = a->pid;
  bw__pid_mark_exiting(rt, pid);
  if (ib->named)
    bw__registry_drop_pid(rt, pid);
  bw__link_on_exit(a, r);
  bw__request_on_exit(a);
  bw__pid_invalidate(rt, pid); /* no sender reaches the mailbox from here on */
  /* relaxed: which reason the dead letters get, as release.c's exit path */
  int dl = bw__ld32_rlx(&rt->state) != BW__RT_RUNNING ? BW_DL_SHUTDOWN : BW_DL_EXITED;
  while (ib->saved != NULL) {
    bw__msg *m = ib->saved;
    ib->saved = (bw__msg *)m->q.next;
    bw__drain_one(rt, a, m, r, dl);
  }
  ib->saved_tail = NULL;
  bw__qnode *q;
  while ((q = bw__mpsc_pop(&a->mb, &a->mbc)) != NULL)
    if (q != &a->exit_q)
      bw__drain_one(rt, a, (bw__msg *)q, r, dl);
  /* an inbox traps exits, so no exit waits here; taken as release.c does,
   * with the exchange's full barrier */
  bw__msg *u = BW__XCHG(&a->urgent, NULL);
  if (u != NULL)
    bw__msg_free(rt, u);
  bw__pid_free(rt, pid);
  ib->closed = rc;
  bw__live_dec(rt, false); /* last: bw_runtime_stop may go on once it drops */
}

/* A kill or the runtime's stop made an exit pending (link.c sets the
 * words, and its wake-up posts the semaphore): close now. Under mx. */
static void close_pending(bw_inbox_t *ib) {
  bw_reason_t r;
  /* relaxed: the exit wake-up popped before this, or the stop's close
   * under mx, orders it; a kill and a shutdown only ever go up */
  if (bw__ld32_rlx(&ib->a->force) == BW__FORCE_KILL) {
    bw__reason_set(&r, BW_REASON_KILLED, 0, "killed");
    close_locked(ib, &r, BW_ENOPROC);
  } else {
    bw__reason_set(&r, BW_REASON_SHUTDOWN, 0, NULL);
    close_locked(ib, &r, BW_ESHUTDOWN);
  }
}

void bw__inbox_stop(bw__runtime *rt) {
  bw_reason_t r;
  bw__reason_set(&r, BW_REASON_SHUTDOWN, 0, "runtime stopping");
  pthread_mutex_lock(&list_mx);
  for (bw_inbox_t *ib = list_head; ib != NULL; ib = ib->next) {
    if (ib->rt != rt)
      continue;
    pthread_mutex_lock(&ib->mx);
    if (ib->closed == 0)
      close_locked(ib, &r, BW_ESHUTDOWN);
    pthread_mutex_unlock(&ib->mx);
    bw__waiter_wake(ib->a); /* a receive asleep wakes to find it closed */
  }
  pthread_mutex_unlock(&list_mx);
}

/* --- the list ------------------------------------------------------------------- */

/* Adds ib unless the runtime is stopping. Under list_mx, so that either
 * bw__inbox_stop (which takes it after stop's CAS of the state) sees ib, or
 * this sees the state: no inbox is left open for stop to wait on. */
static bool list_add(bw_inbox_t *ib) {
  pthread_mutex_lock(&list_mx);
  /* acquire, though the mutex orders it: stop's CAS of the state comes
   * before it takes list_mx in bw__inbox_stop */
  bool ok = bw__ld32_acq(&ib->rt->state) == BW__RT_RUNNING;
  if (ok) {
    ib->next = list_head;
    if (list_head != NULL)
      list_head->prev = ib;
    list_head = ib;
  }
  pthread_mutex_unlock(&list_mx);
  return ok;
}

static void list_remove(bw_inbox_t *ib) {
  pthread_mutex_lock(&list_mx);
  if (ib->prev != NULL)
    ib->prev->next = ib->next;
  else
    list_head = ib->next;
  if (ib->next != NULL)
    ib->next->prev = ib->prev;
  pthread_mutex_unlock(&list_mx);
}

/* --- lifecycle ---------------------------------------------------------------------- */

static int check_name(const char *name) {
  return name != NULL && (name[0] == '\0' || strlen(name) > BW_NAME_MAX) ? BW_EINVAL : 0;
}

static void free_shell(bw_inbox_t *ib) {
  bw__ext_free(ib->a); /* its semaphore too: nobody sleeps on it any more */
  bw__actor_free(ib->rt, ib->a);
  pthread_mutex_destroy(&ib->mx);
  free(ib);
}

int bw_inbox_new(bw_runtime_t *rt, const char *name, bw_inbox_t **out) {
  if (rt == NULL || out == NULL || check_name(name) != 0)
    return BW_EINVAL;
  *out = NULL;
  if (!bw_may_block(rt))
    return BW_EWOULDBLOCK;
  /* acquire: an early answer; list_add decides under the list's lock */
  if (bw__ld32_acq(&rt->state) != BW__RT_RUNNING)
    return BW_ESHUTDOWN;
  bw_inbox_t *ib = calloc(1, sizeof(*ib));
  if (ib == NULL)
    return BW_ENOMEM;
  int rc = bw__waiter_new(rt, &ib->a);
  if (rc != 0) {
    free(ib);
    return rc;
  }
  ib->rt = rt;
  pthread_mutex_init(&ib->mx, NULL);
  /* it traps exits: a thread is told, never made to exit. Release: set
   * before anyone can know the pid to signal it (the name, below) */
  bw__st32_rel(&ib->a->trap, BW__SIG_TRAP);
  if (name != NULL && (rc = bw__registry_add(rt, name, ib->a->pid)) == 0)
    ib->named = true;
  if (rc == 0 && !list_add(ib))
    rc = BW_ESHUTDOWN;
  if (rc != 0) {
    if (ib->named)
      bw__registry_drop_pid(rt, ib->a->pid);
    bw__waiter_free(rt, ib->a); /* what was sent meanwhile: dead letters */
    pthread_mutex_destroy(&ib->mx);
    free(ib);
    return rc;
  }
  *out = ib;
  return 0;
}

void bw_inbox_destroy(bw_inbox_t *ib) {
  if (ib == NULL)
    return;
  /* from a handler: the pin its turn keeps (send.c) may be on this inbox,
   * and a stop closing it under the lock would wait for that pin while we
   * wait for the lock; a close drops it anyway (bw__pid_invalidate) */
  bw__pin_release();
  list_remove(ib);
  pthread_mutex_lock(&ib->mx);
  if (ib->closed == 0) {
    bw_reason_t r;
    bw__reason_set(&r, BW_REASON_NORMAL, 0, NULL);
    close_locked(ib, &r, BW_ENOPROC);
  }
  if (ib->held != NULL)
    bw__msg_free(ib->rt, ib->held);
  pthread_mutex_unlock(&ib->mx);
  free_shell(ib);
}

void bw__inbox_destroy_all(bw__runtime *rt) {
  pthread_mutex_lock(&list_mx);
  bw_inbox_t *ib = list_head, *mine = NULL;
  while (ib != NULL) { /* stop closed them all: unlink rt's, free outside the lock */
    bw_inbox_t *next = ib->next;
    if (ib->rt == rt) {
      if (ib->prev != NULL)
        ib->prev->next = next;
      else
        list_head = next;
      if (next != NULL)
        next->prev = ib->prev;
      ib->next = mine;
      mine = ib;
    }
    ib = next;
  }
  pthread_mutex_unlock(&list_mx);
  while (mine != NULL) {
    bw_inbox_t *next = mine->next;
    if (mine->held != NULL)
      bw__msg_free(rt, mine->held);
    free_shell(mine);
    mine = next;
  }
}

bw_pid_t bw_inbox_pid(const bw_inbox_t *ib) { return ib == NULL ? BW_PID_NONE : ib->a->pid; }

/* --- acting as the inbox ------------------------------------------------------------- */

/* The thread's actor context while a call runs as the inbox. */
typedef struct as_saved {
  bw__actor *cur;
  bw_pid_t mute_on;
  struct bw__gate *mute_gate;
} as_saved;

/* Takes the lock and makes the inbox the thread's current actor, so the
 * runtime's "calling actor" functions act as it. Its back-pressure marks
 * (an inbox is never muted: nothing would unmute a thread) are put back
 * afterwards. Returns 0, or the code the call returns instead. */
static int as_begin(bw_inbox_t *ib, as_saved *s) {
  if (ib == NULL)
    return BW_EINVAL;
  if (!bw_may_block(ib->rt))
    return BW_EWOULDBLOCK;
  pthread_mutex_lock(&ib->mx);
  if (ib->closed != 0) {
    int rc = ib->closed;
    pthread_mutex_unlock(&ib->mx);
    return rc;
  }
  s->cur = bw__tl.cur;
  s->mute_on = bw__tl.mute_on;
  s->mute_gate = bw__tl.mute_gate;
  bw__tl.cur = ib->a;
  return 0;
}

static void as_end(bw_inbox_t *ib, const as_saved *s) {
  bw__tl.cur = s->cur;
  bw__tl.mute_on = s->mute_on;
  bw__tl.mute_gate = s->mute_gate;
  pthread_mutex_unlock(&ib->mx);
}

int bw_inbox_send(bw_inbox_t *ib, bw_pid_t to, uint32_t type, const void *data, size_t len) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_send(ib->rt, to, type, data, len);
  as_end(ib, &s);
  return rc;
}

int bw_inbox_request(bw_inbox_t *ib, bw_pid_t to, uint32_t type, const void *data, size_t len,
                     uint64_t timeout_ms, uint64_t *ref) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_request((bw_ctx_t *)ib->a, to, type, data, len, timeout_ms, ref);
  as_end(ib, &s);
  return rc;
}

/* bw_inbox_request to name's holder, resolved and sent under the
 * registry's read lock (bw__registry_with): for bw_call_named. */
typedef struct named_req {
  bw_inbox_t *ib;
  uint32_t type;
  const void *data;
  size_t len;
  uint64_t timeout_ms;
  uint64_t *ref;
} named_req;

static int request_holder(bw__runtime *rt, bw_pid_t pid, void *ud) {
  (void)rt;
  const named_req *q = ud;
  return bw_request((bw_ctx_t *)q->ib->a, pid, q->type, q->data, q->len, q->timeout_ms, q->ref);
}

int bw__inbox_request_named(bw_inbox_t *ib, const char *name, uint32_t type, const void *data,
                            size_t len, uint64_t timeout_ms, uint64_t *ref) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  named_req q = {ib, type, data, len, timeout_ms, ref};
  rc = bw__registry_with(ib->rt, name, request_holder, &q);
  as_end(ib, &s);
  return rc;
}

int bw_inbox_reply(bw_inbox_t *ib, const bw_msg_t *req, int status, uint32_t type,
                   const void *data, size_t len) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_reply((bw_ctx_t *)ib->a, req, status, type, data, len);
  as_end(ib, &s);
  return rc;
}

int bw_inbox_link(bw_inbox_t *ib, bw_pid_t pid) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_link((bw_ctx_t *)ib->a, pid);
  as_end(ib, &s);
  return rc;
}

int bw_inbox_unlink(bw_inbox_t *ib, bw_pid_t pid) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_unlink((bw_ctx_t *)ib->a, pid);
  as_end(ib, &s);
  return rc;
}

int bw_inbox_monitor(bw_inbox_t *ib, bw_pid_t pid, uint64_t *ref) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_monitor((bw_ctx_t *)ib->a, pid, ref);
  as_end(ib, &s);
  return rc;
}

/* A DOWN for ref that receive_match passed over: gone with the monitor.
 * Under mx. */
static bool unsave_down(bw_inbox_t *ib, uint64_t ref) {
  for (bw__msg **pp = &ib->saved, *prev = NULL; *pp != NULL;
       prev = *pp, pp = (bw__msg **)&(*pp)->q.next) {
    bw__msg *m = *pp;
    if (m->pub.type == BW_MSG_DOWN && m->kind != BW__K_USER && m->pub.ref == ref) {
      *pp = (bw__msg *)m->q.next;
      if (ib->saved_tail == m)
        ib->saved_tail = prev;
      bw__msg_free(ib->rt, m);
      return true;
    }
  }
  return false;
}

int bw_inbox_demonitor(bw_inbox_t *ib, uint64_t ref) {
  as_saved s;
  int rc = as_begin(ib, &s);
  if (rc != 0)
    return rc;
  rc = bw_demonitor((bw_ctx_t *)ib->a, ref);
  if (rc == BW_ENOTFOUND && unsave_down(ib, ref))
    rc = 0;
  as_end(ib, &s);
  return rc;
}

/* --- receiving ---------------------------------------------------------------------------- */

/*
 * What the inbox does with a message it takes, before the thread sees it,
 * as a turn's dispatch does for an actor (turn.c): 1 = a message for the
 * thread (a signal rewritten as BW_MSG_EXIT or BW_MSG_DOWN, a request's
 * deadline or its target's death as a timeout or a reply); 0 = consumed
 * (freed or dead-lettered; an unrecordable link closes the inbox). Under
 * mx.
 */
static int accept(bw_inbox_t *ib, bw__msg *m) {
  bw__actor *a = ib->a;
  bw__runtime *rt = ib->rt;
  switch (m->kind) {
  case BW__K_USER:
    if ((m->pub.flags & BW_MSGF_REPLY) && !bw__request_on_reply(a, m)) {
      m->to = a->pid;
      bw__dead_letter(rt, m, BW_DL_LATE_REPLY);
      return 0;
    }
    return 1;
  case BW__K_REQTIMEOUT:
    if (!bw__request_on_timeout(a, m))
      break;
    m->pub.type = BW_MSG_REQUEST_TIMEOUT;
    m->pub.len = 0;
    m->pub.data = NULL;
    return 1;
  case BW__K_DOWN:
    if (bw__request_on_down(a, m)) {
      m->kind = BW__K_WAKE; /* a reply made here, not a sent message */
      return 1;
    }
    __attribute__((fallthrough)); /* an ordinary monitor */
  case BW__K_EXIT:
  case BW__K_LINK:
  case BW__K_UNLINK:
  case BW__K_MONITOR:
  case BW__K_DEMONITOR: {
    bw_reason_t r;
    int v = bw__link_handle(a, m, &r);
    if (v == 2)
      return 1;
    bw__msg_free(rt, m);
    if (v == 1)
      close_locked(ib, &r, BW_ENOPROC); /* a link it could not record */
    return 0;
  }
  default:
    break; /* the exit wake-up's kin (WAKE), timers and I/O of actors */
  }
  bw__msg_free(rt, m);
  return 0;
}

/* The next message from the mailbox, accepted; NULL when it is empty (a
 * push between its exchange and its link reads as empty: the caller does
 * not sleep on that, see wait_for_more). Under mx. */
static bw__msg *pop_accepted(bw_inbox_t *ib) {
  bw__actor *a = ib->a;
  for (;;) {
    if (bw__actor_exit_pending(a)) {
      close_pending(ib);
      return NULL;
    }
    bw__qnode *q = bw__mpsc_pop(&a->mb, &a->mbc);
    if (q == NULL)
      return NULL;
    if (q == &a->exit_q)
      continue; /* the exit wake-up: the check above takes the exit */
    bw__msg *m = (bw__msg *)q;
    /* relaxed store: owner-only count, read by bw_mailbox_depth */
    bw__st32_rlx(&a->mb_popped, a->mb_popped + 1);
    if (m->pub.flags & BW__MF_SELF) { /* sent to itself (send.c) */
      m->pub.flags &= ~(uint32_t)BW__MF_SELF;
      a->self_queued--;
    }
    if (accept(ib, m))
      return m;
    if (ib->closed != 0)
      return NULL;
  }
}

typedef struct match {
  uint32_t type; /* BW_INBOX_ANY_TYPE: any */
  uint64_t ref;  /* 0: any */
} match_t;

static bool matches(const match_t *w, const bw__msg *m) {
  return w == NULL || ((w->type == BW_INBOX_ANY_TYPE || m->pub.type == w->type) &&
                       (w->ref == 0 || m->pub.ref == w->ref));
}

/* The first saved message that matches, taken out of the save queue. */
static bw__msg *unsave(bw_inbox_t *ib, const match_t *w) {
  bw__msg *prev = NULL;
  for (bw__msg *m = ib->saved; m != NULL; prev = m, m = (bw__msg *)m->q.next) {
    if (!matches(w, m))
      continue;
    bw__msg *next = (bw__msg *)m->q.next;
    if (prev != NULL)
      prev->q.next = (bw__qnode *)next;
    else
      ib->saved = next;
    if (ib->saved_tail == m)
      ib->saved_tail = prev;
    return m;
  }
  return NULL;
}

static void save(bw_inbox_t *ib, bw__msg *m) {
  m->q.next = NULL;
  if (ib->saved_tail != NULL)
    ib->saved_tail->q.next = &m->q;
  else
    ib->saved = m;
  ib->saved_tail = m;
}

/*
 * Nothing to take: sleep until a message or the deadline (NULL: none).
 * Returns 0 to look again, or BW_ETIMEDOUT. Called with mx held; lets it go
 * while asleep.
 *
 * The mailbox's empty mark (mailbox.h) is what makes the next push post the
 * semaphore. Either we set it now, or it is still set from a wait that
 * timed out, or a push is between its two steps (neither: look again after
 * a pause; it completes in a few instructions). A post can outlive its
 * wait (the wait timed out, then the message came and a later receive
 * took it without sleeping): the next sleep then wakes once for nothing,
 * finds the mark still set and sleeps again. So no wake-up is lost and
 * none spins.
 */
static int wait_for_more(bw_inbox_t *ib, const struct timespec *deadline, unsigned *spins) {
  bw__actor *a = ib->a;
  if (!bw__mpsc_mark_empty(&a->mb, &a->mbc)) {
    /* acquire: a marked head means the next push sees the mark and posts */
    bool marked = ((uintptr_t)bw__ld_ptr_acq((void *const *)&a->mb.head) & 1u) != 0;
    if (!marked) {
      if (++*spins < 64)
        bw__cpu_relax();
      else
        sched_yield(); /* the pusher was preempted between its steps */
      return 0;
    }
  }
  *spins = 0;
  pthread_mutex_unlock(&ib->mx);
  int rc = 0;
  for (;;) {
    int w = deadline == NULL ? sem_wait(&a->ext->wake)
                             : sem_clockwait(&a->ext->wake, CLOCK_MONOTONIC, deadline);
    if (w == 0)
      break;
    if (errno == ETIMEDOUT) {
      rc = BW_ETIMEDOUT;
      break;
    }
    /* EINTR: a signal handler ran; wait again */
  }
  pthread_mutex_lock(&ib->mx);
  return rc;
}

/* The next message (or the next that matches), or an error. Under mx. */
static int take(bw_inbox_t *ib, const match_t *w, const struct timespec *deadline, bool block,
                bw__msg **out) {
  bw__msg *m = unsave(ib, w);
  unsigned spins = 0;
  while (m == NULL) {
    if (ib->closed != 0)
      return ib->closed;
    m = pop_accepted(ib);
    if (m != NULL && !matches(w, m)) {
      save(ib, m);
      m = NULL;
      continue;
    }
    if (m != NULL || ib->closed != 0)
      continue;
    if (!block)
      return BW_ETIMEDOUT;
    int rc = wait_for_more(ib, deadline, &spins);
    if (rc != 0)
      return ib->closed != 0 ? ib->closed : rc;
  }
  *out = m;
  return 0;
}

static int receive(bw_inbox_t *ib, const match_t *w, uint64_t timeout_ms, const bw_msg_t **out) {
  if (out != NULL)
    *out = NULL;
  if (ib == NULL || out == NULL ||
      (timeout_ms != BW_INBOX_FOREVER && timeout_ms > UINT64_MAX / 2000000ull))
    return BW_EINVAL;
  if (!bw_may_block(ib->rt))
    return BW_EWOULDBLOCK;
  struct timespec dl;
  bool block = timeout_ms > 0, forever = timeout_ms == BW_INBOX_FOREVER;
  if (block && !forever) {
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + (timeout_ms % 1000u) * 1000000ull;
    dl.tv_sec += (time_t)(timeout_ms / 1000u + ns / 1000000000ull);
    dl.tv_nsec = (long)(ns % 1000000000ull);
  }
  pthread_mutex_lock(&ib->mx);
  if (ib->receiving) {
    pthread_mutex_unlock(&ib->mx);
    return BW_ESTATE;
  }
  if (ib->held != NULL) { /* the previous message's life ends here */
    bw__msg_free(ib->rt, ib->held);
    ib->held = NULL;
  }
  ib->receiving = true;
  bw__msg *m = NULL;
  int rc = ib->closed != 0 ? ib->closed : take(ib, w, forever ? NULL : &dl, block, &m);
  if (rc == 0) {
    if (m->kind == BW__K_USER) { /* counted as a handler's message is */
      bw__counters *c = bw__my_counters(ib->rt);
      bw__ctr_add(ib->rt, c, &c->handled, 1);
    }
    ib->held = m;
    *out = &m->pub;
  }
  ib->receiving = false;
  pthread_mutex_unlock(&ib->mx);
  return rc;
}

int bw_inbox_receive(bw_inbox_t *ib, uint64_t timeout_ms, const bw_msg_t **out) {
  return receive(ib, NULL, timeout_ms, out);
}

int bw_inbox_receive_match(bw_inbox_t *ib, uint32_t type, uint64_t ref, uint64_t timeout_ms,
                           const bw_msg_t **out) {
  match_t w = {.type = type, .ref = ref};
  return receive(ib, &w, timeout_ms, out);
}

static bw__msg *held_locked(bw_inbox_t *ib, const bw_msg_t *msg) {
  return (ib->held != NULL && msg == &ib->held->pub) ? ib->held : NULL;
}

void bw_inbox_msg_free(bw_inbox_t *ib, const bw_msg_t *msg) {
  if (ib == NULL || msg == NULL)
    return;
  pthread_mutex_lock(&ib->mx);
  bw__msg *m = held_locked(ib, msg);
  if (m != NULL) {
    ib->held = NULL;
    bw__msg_free(ib->rt, m);
  }
  pthread_mutex_unlock(&ib->mx);
}

/* The reply msg (the held message) into *out as bw_call gives it: an
 * inline payload copied, a moved one handed over with its destructor. */
void bw__inbox_reply_out(bw_inbox_t *ib, const bw_msg_t *msg, bw_reply_t *out) {
  pthread_mutex_lock(&ib->mx);
  bw__msg *m = held_locked(ib, msg);
  out->status = msg->status;
  out->type = msg->type;
  out->len = msg->len;
  out->ptr = NULL;
  out->dtor = NULL;
  if (m != NULL && (m->pub.flags & BW_MSGF_MOVED)) {
    out->ptr = (void *)m->pub.data;
    out->dtor = bw__msg_dtor(m);
    bw__msg_set_dtor(m, NULL); /* the caller's now */
    m->pub.flags &= ~(uint32_t)BW_MSGF_MOVED;
  } else if (msg->len > 0) {
    memcpy(out->data, msg->data, msg->len); /* inline: at most sizeof out->data */
  }
  pthread_mutex_unlock(&ib->mx);
}

void *bw_inbox_msg_take(bw_inbox_t *ib, const bw_msg_t *msg) {
  if (ib == NULL || msg == NULL)
    return NULL;
  pthread_mutex_lock(&ib->mx);
  bw__msg *m = held_locked(ib, msg);
  void *p = NULL;
  if (m != NULL && (m->pub.flags & BW_MSGF_MOVED)) {
    p = (void *)m->pub.data;
    bw__msg_set_dtor(m, NULL); /* the caller's now: no destructor, */
    m->pub.flags &= ~(uint32_t)BW_MSGF_MOVED; /* and taken once */
  }
  pthread_mutex_unlock(&ib->mx);
  return p;
}
