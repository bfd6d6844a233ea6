/*
 * bulwark: a hash of ref-keyed entries (runtime/reftab.h), for an actor's
 * monitors and its outstanding requests, and an executor's attempts.
 *
 * Refs come from one counter, so they are distinct and never 0 (0 marks a
 * free slot). Open addressing with linear probing keeps an entry in one
 * array; deletion shifts the rest of a probe run back into the hole, so no
 * tombstones pile up. The load stays under a half. An actor with thousands
 * of requests in flight or watchers pays O(1) per reply or demonitor, where
 * a list would make N of them cost O(N^2).
 */
#include <stdlib.h>

#include "runtime/reftab.h"

static uint32_t slot_of(uint64_t ref, uint32_t mask) {
  ref ^= ref >> 33;
  ref *= 0xff51afd7ed558ccdull; /* a 64-bit mixer: refs are sequential */
  ref ^= ref >> 33;
  return (uint32_t)ref & mask;
}

static void place(bw__refent *tab, uint32_t cap, const bw__refent *e) {
  uint32_t mask = cap - 1;
  uint32_t i = slot_of(e->ref, mask);
  while (tab[i].ref != 0)
    i = (i + 1) & mask;
  tab[i] = *e;
}

/* Moves the entries into a table of nc cells (a power of two). */
static bool resize(bw__reftab *t, uint32_t nc) {
  bw__refent *ne = calloc(nc, sizeof(*ne));
  if (ne == NULL)
    return false;
  for (uint32_t i = 0; i < t->cap; i++)
    if (t->e[i].ref != 0)
      place(ne, nc, &t->e[i]);
  free(t->e);
  t->e = ne;
  t->cap = nc;
  return true;
}

bool bw__reftab_reserve(bw__reftab *t, uint32_t n) {
  if (n > UINT32_MAX / 4)
    return false;
  uint32_t nc = 8;
  while (nc < 2 * n)
    nc <<= 1;
  return nc <= t->cap || resize(t, nc);
}

bool bw__reftab_put(bw__reftab *t, uint64_t ref, bw_pid_t pid, uint64_t val) {
  if ((t->n + 1) * 2 > t->cap) {
    if (t->cap > UINT32_MAX / 2 || !resize(t, t->cap ? t->cap * 2 : 8))
      return false;
  }
  bw__refent e = {.ref = ref, .pid = pid, .slot = val};
  place(t->e, t->cap, &e);
  t->n++;
  return true;
}

bool bw__reftab_has(const bw__reftab *t, uint64_t ref) {
  if (t->n == 0 || ref == 0)
    return false;
  uint32_t mask = t->cap - 1;
  for (uint32_t i = slot_of(ref, mask); t->e[i].ref != 0; i = (i + 1) & mask)
    if (t->e[i].ref == ref)
      return true;
  return false;
}

bool bw__reftab_take(bw__reftab *t, uint64_t ref, bw__refent *out) {
  if (t->n == 0 || ref == 0)
    return false;
  uint32_t mask = t->cap - 1;
  uint32_t i = slot_of(ref, mask);
  while (t->e[i].ref != ref) {
    if (t->e[i].ref == 0)
      return false;
    i = (i + 1) & mask;
  }
  if (out != NULL)
    *out = t->e[i];
  t->n--;
  /* move later entries of the run into the hole when their home allows */
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & mask; t->e[j].ref != 0; j = (j + 1) & mask) {
    uint32_t home = slot_of(t->e[j].ref, mask);
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      t->e[hole] = t->e[j];
      hole = j;
    }
  }
  t->e[hole].ref = 0;
  return true;
}

void bw__reftab_free(bw__reftab *t) {
  free(t->e);
  t->e = NULL;
  t->n = t->cap = 0;
}
