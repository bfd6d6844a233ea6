/*
 * bulwark internal: a subscriber list (runtime/subs.c), the one copy for
 * the event bus's subscribers (runtime/event.c), the dead-letter
 * subscribers (runtime/dead_letter.c), the health monitor's signal
 * subscribers and the metrics reporter's snapshot subscribers (observe/).
 *
 * A fixed set of slots, each a pid and a mask of what it wants (a plain
 * list passes BW__SUBS_ALL). Publishers walk the slots without a lock;
 * subscribe and unsubscribe, which are rare, take the list's mutex, as does
 * dropping a dead subscriber. Decided once for the four: a subscriber a
 * publisher finds dead (its send said BW_ENOPROC) is dropped, so a dead
 * actor never holds a place (the dead-letter list kept them until an
 * unsubscribe); subscribing again is not an error (it replaces the mask).
 */
#ifndef BW_RUNTIME_SUBS_H
#define BW_RUNTIME_SUBS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bulwark/types.h"
#include "runtime/atomic.h"

#define BW__SUBS_MAX 32u
#define BW__SUBS_ALL UINT64_MAX

typedef struct bw__subs {
  pthread_mutex_t mu;           /* writers only */
  uint32_t cap;                 /* places, <= BW__SUBS_MAX */
  bw_pid_t pid[BW__SUBS_MAX];   /* atomic; BW_PID_NONE = free */
  uint64_t mask[BW__SUBS_MAX];  /* atomic */
  uint64_t any;                 /* atomic: the union of the used slots' masks */
} bw__subs;

void bw__subs_init(bw__subs *s, uint32_t cap);
void bw__subs_destroy(bw__subs *s);
/* Adds pid with mask, or replaces its mask. Returns 0, BW_ELIMIT (every
 * place taken). */
int bw__subs_add(bw__subs *s, bw_pid_t pid, uint64_t mask);
/* Returns 0, BW_ENOTFOUND. */
int bw__subs_remove(bw__subs *s, bw_pid_t pid);
/* A publisher found slot i's pid dead: frees the slot if it still holds pid
 * (it may have been freed, even reused, meanwhile). */
void bw__subs_drop(bw__subs *s, uint32_t i, bw_pid_t pid);

/* Slot i's pid (BW_PID_NONE: free) and, if mask is not NULL, its mask. */
static inline bw_pid_t bw__subs_at(const bw__subs *s, uint32_t i, uint64_t *mask) {
  /* acquire: pairs with the release store of the pid in bw__subs_add, after
   * its mask */
  bw_pid_t pid = bw__ld64_acq(&s->pid[i]);
  if (mask != NULL)
    *mask = bw__ld64_rlx(&s->mask[i]);
  return pid;
}

/* Whether anyone wants one of bits. Relaxed: a hint; a subscriber added a
 * moment ago may miss what is published meanwhile. */
static inline bool bw__subs_wants(const bw__subs *s, uint64_t bits) {
  return (bw__ld64_rlx(&s->any) & bits) != 0;
}

#endif
