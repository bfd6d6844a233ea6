/*
 * bulwark: an open-addressing map from a request ref to a table slot, for
 * executors that keep requests in flight (retry.c's and policy_executor.c's
 * tables).
 *
 * Refs are the runtime's request refs: never 0 (0 marks an empty cell),
 * mostly sequential. The caller sizes the map at twice the table or more
 * (a power of two): with a load factor of at most 1/2 probe chains stay
 * short, and deletion shifts entries back instead of leaving tombstones, so
 * a long-running executor never degrades. One owner (an actor): no atomics.
 * Allocated once by the owner (no allocation per request).
 */
#ifndef BW_PATTERNS_REFMAP_H
#define BW_PATTERNS_REFMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct bw__refmap {
  uint64_t *ref;
  uint32_t *slot;
  uint32_t mask;
} bw__refmap_t;

/* Sizes the map for up to cap entries. Returns 0 or -1 (out of memory). */
static inline int bw__refmap_init(bw__refmap_t *m, uint32_t cap) {
  uint32_t n = 2;
  while (n < 2 * cap)
    n <<= 1;
  m->ref = calloc(n, sizeof *m->ref);
  m->slot = calloc(n, sizeof *m->slot);
  m->mask = n - 1;
  if (m->ref == NULL || m->slot == NULL) {
    free(m->ref);
    free(m->slot);
    m->ref = NULL;
    m->slot = NULL;
    return -1;
  }
  return 0;
}

static inline void bw__refmap_free(bw__refmap_t *m) {
  free(m->ref);
  free(m->slot);
  m->ref = NULL;
  m->slot = NULL;
}

static inline uint32_t bw__refmap_home(const bw__refmap_t *m, uint64_t ref) {
  /* Fibonacci hashing: refs are sequential, the multiply spreads them */
  return (uint32_t)((ref * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
}

static inline void bw__refmap_put(bw__refmap_t *m, uint64_t ref, uint32_t slot) {
  uint32_t i = bw__refmap_home(m, ref);
  while (m->ref[i] != 0)
    i = (i + 1) & m->mask;
  m->ref[i] = ref;
  m->slot[i] = slot;
}

/* Removes ref; returns its slot, or UINT32_MAX if absent. Backward-shift
 * deletion keeps probe chains whole without tombstones. */
static inline uint32_t bw__refmap_take(bw__refmap_t *m, uint64_t ref) {
  uint32_t i = bw__refmap_home(m, ref);
  while (m->ref[i] != ref) {
    if (m->ref[i] == 0)
      return UINT32_MAX;
    i = (i + 1) & m->mask;
  }
  uint32_t slot = m->slot[i];
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & m->mask; m->ref[j] != 0; j = (j + 1) & m->mask) {
    uint32_t home = bw__refmap_home(m, m->ref[j]);
    /* move j into the hole unless its home lies cyclically in (hole, j] */
    bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      m->ref[hole] = m->ref[j];
      m->slot[hole] = m->slot[j];
      hole = j;
    }
  }
  m->ref[hole] = 0;
  return slot;
}

#endif
