/*
 * bulwark: restart intensity, a ring of the latest event times
 * (runtime/intensity.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "runtime/intensity.h"

/* nc * 8 bytes below never overflows (the runtime needs 64-bit size_t) */
_Static_assert(SIZE_MAX / sizeof(uint64_t) >= UINT32_MAX, "size_t too small for the ring");

int bw__intensity_init(bw__intensity *w, uint32_t max, uint64_t period, bool reserve) {
  memset(w, 0, sizeof *w);
  w->max = max < UINT32_MAX ? max : UINT32_MAX - 1;
  w->period = period;
  if (!reserve)
    return 0;
  w->t = calloc((size_t)w->max + 1, sizeof *w->t);
  if (w->t == NULL)
    return BW_ENOMEM;
  w->cap = w->max + 1;
  return 0;
}

void bw__intensity_free(bw__intensity *w) {
  free(w->t);
  w->t = NULL;
  w->cap = w->n = w->next = 0;
}

void bw__intensity_clear(bw__intensity *w) { w->n = w->next = 0; }

/* Doubles the ring, up to max + 1 slots, keeping its order. Called when it
 * is full: the oldest part [next, cap) moves to the end of the new one. */
static bool ring_grow(bw__intensity *w) {
  uint32_t limit = w->max + 1;
  uint32_t nc = w->cap == 0 ? 8 : (w->cap > limit / 2 ? limit : w->cap * 2);
  if (nc > limit)
    nc = limit;
  uint64_t *t = realloc(w->t, (size_t)nc * sizeof *t);
  if (t == NULL)
    return false;
  uint32_t tail = w->cap - w->next;
  memmove(t + nc - tail, t + w->next, (size_t)tail * sizeof *t);
  w->t = t;
  w->cap = nc;
  return true;
}

bool bw__intensity_add(bw__intensity *w, uint64_t t) {
  if (w->n == w->cap && w->cap < w->max + 1 && !ring_grow(w))
    return false;
  w->t[w->next] = t;
  w->next = (w->next + 1) % w->cap;
  if (w->n < w->cap)
    w->n++;
  return true;
}

uint32_t bw__intensity_count(const bw__intensity *w, uint64_t now) {
  uint32_t in = 0;
  for (uint32_t k = 0; k < w->n; k++) {
    uint32_t i = (w->next + w->cap - w->n + k) % w->cap;
    if (w->t[i] > now || now - w->t[i] < w->period)
      in++;
  }
  return in;
}

bool bw__intensity_exceeded(const bw__intensity *w, uint64_t now) {
  return bw__intensity_count(w, now) > w->max;
}
