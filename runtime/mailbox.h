/*
 * bulwark internal: the mailbox queue.
 *
 * An intrusive multi-producer single-consumer queue after Dmitry Vyukov's
 * design, with the stub node embedded in the queue so an idle actor holds
 * no message memory. Producers do one exchange on head and one store; they
 * never wait for each other (unlike ck_ring's MP enqueue). The consumer
 * never writes head except to re-insert the stub or to mark the queue
 * empty.
 *
 * The low bit of head is the scheduling mark: set means "empty and nobody
 * is running or will run the owner". A push that finds it set returns true
 * and the pusher must schedule the owner: so a send schedules an idle actor
 * exactly once. Only the consumer sets the mark (bw__mpsc_mark_empty), and
 * only when the queue holds nothing but the stub.
 *
 * Cost: push = 1 exchange + 1 store; pop = loads plus, once per emptying,
 * one exchange to re-insert the stub.
 */
#ifndef BW_RUNTIME_MAILBOX_H
#define BW_RUNTIME_MAILBOX_H

#include "runtime/internal.h"

static inline void bw__mpsc_init(bw__mpsc *q, bw__mpsc_c *c, bool marked) {
  c->stub.next = NULL;
  c->tail = &c->stub;
  q->head = (uintptr_t)&c->stub | (marked ? 1u : 0u);
}

/* Returns true if the queue was marked empty: the caller must schedule. */
static inline bool bw__mpsc_push(bw__mpsc *q, bw__qnode *n) {
  BW__ST_RLX(&n->next, NULL);
  /* acq_rel exchange: release orders n's contents (payload, next = NULL)
   * before n becomes the head; acquire pairs with the consumer's release
   * when it marked the queue empty, so the actor state it left is visible
   * to whoever we now hand the actor to. */
  uintptr_t prev = (uintptr_t)bw__xchg_ptr((void **)&q->head, (void *)n);
  bw__qnode *p = (bw__qnode *)(prev & ~(uintptr_t)1);
  /* release: n (and everything written before the exchange) must be
   * visible before the consumer can reach n through p->next. */
  BW__ST_REL(&p->next, n);
  return (prev & 1u) != 0;
}

/* Pops the oldest node, or NULL when empty or when a producer is between
 * its exchange and its link (then the queue is not empty: retry later). */
static inline bw__qnode *bw__mpsc_pop(bw__mpsc *q, bw__mpsc_c *c) {
  bw__qnode *tail = c->tail;
  /* acquire: pairs with the producer's release store of next, so the
   * node's payload is visible once we see the link */
  bw__qnode *next = BW__LD_ACQ(&tail->next);
  if (tail == &c->stub) {
    if (next == NULL)
      return NULL;
    c->tail = next;
    tail = next;
    next = BW__LD_ACQ(&next->next);
  }
  if (next != NULL) {
    c->tail = next;
    return tail;
  }
  /* tail is the last linked node; hand it out only if it is also the head,
   * after putting the stub behind it */
  /* acquire: see the head a producer exchanged in */
  uintptr_t head = (uintptr_t)bw__ld_ptr_acq((void *const *)&q->head);
  if ((bw__qnode *)(head & ~(uintptr_t)1) != tail)
    return NULL; /* a push is in progress */
  bw__mpsc_push(q, &c->stub);
  next = BW__LD_ACQ(&tail->next);
  if (next != NULL) {
    c->tail = next;
    return tail;
  }
  return NULL;
}

/* Consumer: marks the queue empty (owner unscheduled). Fails, returning
 * false, if anything was pushed: the consumer must go on or reschedule. */
static inline bool bw__mpsc_mark_empty(bw__mpsc *q, bw__mpsc_c *c) {
  if (c->tail != &c->stub)
    return false;
  /* acq_rel CAS: release publishes the owner's state (written during its
   * turn) to the producer whose exchange sees the mark and schedules it. */
  return bw__cas_ptr((void **)&q->head, (void *)&c->stub,
                     (void *)((uintptr_t)&c->stub | 1u));
}

/* Consumer: true if a pop would find something now (a hint: a push between
 * its exchange and its link is not seen). tail is the next node to hand out,
 * or the stub with the first node linked behind it. */
static inline bool bw__mpsc_has_more(const bw__mpsc_c *c) {
  return c->tail != &c->stub || BW__LD_RLX(&c->stub.next) != NULL;
}

/* True if nothing is queued (racy hint, for parking decisions). */
static inline bool bw__mpsc_looks_empty(const bw__mpsc *q, const bw__mpsc_c *c) {
  uintptr_t head = (uintptr_t)bw__ld_ptr_acq((void *const *)&q->head);
  return (bw__qnode *)(head & ~(uintptr_t)1) == &c->stub;
}

#endif
