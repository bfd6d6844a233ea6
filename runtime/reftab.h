/*
 * bulwark internal: a hash of ref-keyed entries (runtime/reftab.c), the one
 * ref map: an actor's monitors and outstanding requests (runtime/), and an
 * executor's attempts in flight (patterns/retry.c, policy_executor.c).
 * Open addressing, linear probing, backward-shift deletion (no
 * tombstones), load under a half: O(1) per put and take however many
 * entries. One owner (an actor): no locks, no atomics.
 */
#ifndef BW_RUNTIME_REFTAB_H
#define BW_RUNTIME_REFTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "bulwark/timer.h"
#include "bulwark/types.h"

/* An entry keyed by a ref (never 0: refs come from the runtime's counter).
 * A monitor is (ref, pid); a request (ref, its target, its deadline
 * timer); an executor's attempt (ref, its target, its table slot). */
typedef struct bw__refent {
  uint64_t ref; /* 0 = free slot */
  bw_pid_t pid; /* the other actor */
  union {
    bw_timer_t timer; /* requests: deadline timer, 0 if none */
    uint64_t slot;    /* executors: the attempt's slot in their table */
  };
} bw__refent;

typedef struct bw__reftab {
  bw__refent *e;
  uint32_t n, cap; /* cap: 0 or a power of two */
} bw__reftab;

/* Adds (ref, pid, val); val goes to the union (a timer or a slot). Returns
 * false if the table had to grow and could not. Never allocates while
 * fewer entries are held than a bw__reftab_reserve asked for. */
bool bw__reftab_put(bw__reftab *t, uint64_t ref, bw_pid_t pid, uint64_t val);
/* Removes ref's entry into *out (may be NULL); false if absent. */
bool bw__reftab_take(bw__reftab *t, uint64_t ref, bw__refent *out);
/* Whether ref has an entry (the table unchanged). */
bool bw__reftab_has(const bw__reftab *t, uint64_t ref);
/* Sizes an empty table for n entries at once, so that puts up to n never
 * allocate (an executor's fixed table). Returns false out of memory. */
bool bw__reftab_reserve(bw__reftab *t, uint32_t n);
void bw__reftab_free(bw__reftab *t);

/* An executor's take: ref's slot, or UINT32_MAX if absent. */
static inline uint32_t bw__reftab_take_slot(bw__reftab *t, uint64_t ref) {
  bw__refent e;
  return bw__reftab_take(t, ref, &e) ? (uint32_t)e.slot : UINT32_MAX;
}

#endif
