/*
 * bulwark: the breaker's sliding windows (see window.h for the contract).
 */
#include "patterns/window.h"

#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"

int bw__window_init(bw__window_t *w, int kind, uint32_t size, uint64_t bucket_ms) {
  if (w == NULL || size == 0 || size > BW__WIN_MAX_SIZE)
    return BW_EINVAL;
  memset(w, 0, sizeof *w);
  w->kind = kind;
  w->size = size;
  if (kind == BW__WIN_COUNT) {
    w->ring = calloc(size, 1);
    return w->ring == NULL ? BW_ENOMEM : 0;
  }
  if (kind == BW__WIN_TIME) {
    if (bucket_ms == 0)
      return BW_EINVAL;
    w->bucket_ms = bucket_ms;
    w->buckets = calloc(size, sizeof *w->buckets);
    return w->buckets == NULL ? BW_ENOMEM : 0;
  }
  return BW_EINVAL;
}

void bw__window_free(bw__window_t *w) {
  if (w == NULL)
    return;
  free(w->ring);
  free(w->buckets);
  w->ring = NULL;
  w->buckets = NULL;
}

void bw__window_reset(bw__window_t *w) {
  w->calls = w->failures = w->slow = 0;
  w->pos = w->filled = 0;
  if (w->ring != NULL)
    memset(w->ring, 0, w->size);
  if (w->buckets != NULL)
    memset(w->buckets, 0, (size_t)w->size * sizeof *w->buckets);
  w->head_id = 0;
}

/* Moves the newest bucket up to now_ms's, dropping the buckets that leave
 * the window from the totals. O(min(buckets passed, size)). */
static void time_advance(bw__window_t *w, uint64_t now_ms) {
  uint64_t nid = now_ms / w->bucket_ms;
  if (nid <= w->head_id)
    return;
  uint64_t passed = nid - w->head_id;
  if (passed >= w->size) {
    /* everything inside is older than the window now */
    memset(w->buckets, 0, (size_t)w->size * sizeof *w->buckets);
    w->calls = w->failures = w->slow = 0;
  } else {
    for (uint64_t i = 1; i <= passed; i++) {
      bw__bucket_t *b = &w->buckets[(w->head_id + i) % w->size];
      w->calls -= b->calls;
      w->failures -= b->failures;
      w->slow -= b->slow;
      memset(b, 0, sizeof *b);
    }
  }
  w->head_id = nid;
  w->buckets[nid % w->size].id = nid;
}

static void count_add_one(bw__window_t *w, uint8_t bits) {
  if (w->filled == w->size) {
    uint8_t old = w->ring[w->pos];
    w->calls--;
    w->failures -= old & 1u;
    w->slow -= (old >> 1) & 1u;
  } else {
    w->filled++;
  }
  w->ring[w->pos] = bits;
  w->calls++;
  w->failures += bits & 1u;
  w->slow += (bits >> 1) & 1u;
  w->pos = w->pos + 1 == w->size ? 0 : w->pos + 1;
}

void bw__window_add(bw__window_t *w, uint64_t now_ms, bool failure, bool slow, uint64_t n) {
  if (n == 0)
    return;
  if (w->kind == BW__WIN_COUNT) {
    uint8_t bits = (uint8_t)((failure ? 1u : 0u) | (slow ? 2u : 0u));
    uint64_t k = n < w->size ? n : w->size;
    for (uint64_t i = 0; i < k; i++)
      count_add_one(w, bits);
    return;
  }
  time_advance(w, now_ms);
  bw__bucket_t *b = &w->buckets[w->head_id % w->size];
  /* a bucket's counts saturate rather than wrap (4 billion calls per
   * bucket is far past anything a breaker sees) */
  uint32_t add = n > UINT32_MAX - b->calls ? UINT32_MAX - b->calls : (uint32_t)n;
  b->calls += add;
  w->calls += add;
  if (failure) {
    b->failures += add;
    w->failures += add;
  }
  if (slow) {
    b->slow += add;
    w->slow += add;
  }
}

void bw__window_totals(bw__window_t *w, uint64_t now_ms, bw__window_totals_t *out) {
  if (w->kind == BW__WIN_TIME)
    time_advance(w, now_ms);
  out->calls = w->calls;
  out->failures = w->failures;
  out->slow = w->slow;
}
