/*
 * bulwark internal: the sliding windows a circuit breaker judges calls over.
 *
 * A pure data structure: no clock of its own, no threads, no atomics. The
 * breaker actor owns one and is its only user; the caller passes the time
 * (runtime clock, ms) to every operation that needs it.
 *
 * - Count-based: the last `size` calls. A ring of one byte per call
 *   (failure and slow bits) with running totals: add is O(1) per call.
 * - Time-based: the last `size` buckets of `bucket_ms` each (the window is
 *   size * bucket_ms). A ring of buckets tagged with their bucket number;
 *   a bucket whose tag is older than the window counts for nothing, so
 *   expiry costs nothing until time moves, and then O(buckets passed),
 *   capped at size. Totals are exact at bucket granularity: a call leaves
 *   the window when its whole bucket does.
 *
 * Memory is allocated once, at init (never per call).
 */
#ifndef BW_PATTERNS_WINDOW_H
#define BW_PATTERNS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

enum {
  BW__WIN_COUNT = 1, /* last size calls */
  BW__WIN_TIME = 2,  /* last size buckets of bucket_ms */
};

/* Largest size either kind accepts (entries or buckets). */
#define BW__WIN_MAX_SIZE (1u << 20)

typedef struct bw__bucket {
  uint64_t id; /* now_ms / bucket_ms of the calls it holds */
  uint32_t calls, failures, slow;
  uint32_t _pad;
} bw__bucket_t;

typedef struct bw__window {
  int kind;
  uint32_t size;      /* entries (count) or buckets (time) */
  uint64_t bucket_ms; /* time only */
  /* running totals over what is inside the window */
  uint64_t calls, failures, slow;
  /* count: ring of size entries, bit 0 failure, bit 1 slow */
  uint8_t *ring;
  uint32_t pos;    /* next entry to write */
  uint32_t filled; /* entries in use (<= size) */
  /* time: ring of size buckets; head_id is the newest bucket number seen */
  bw__bucket_t *buckets;
  uint64_t head_id;
} bw__window_t;

typedef struct bw__window_totals {
  uint64_t calls, failures, slow;
} bw__window_totals_t;

/*
 * Allocates a window of the kind. size > 0 and <= BW__WIN_MAX_SIZE;
 * bucket_ms > 0 for a time window (ignored for count).
 * Returns 0, BW_EINVAL or BW_ENOMEM.
 */
int bw__window_init(bw__window_t *w, int kind, uint32_t size, uint64_t bucket_ms);

/* Frees what init allocated; the window may be zeroed or freed twice. */
void bw__window_free(bw__window_t *w);

/* Empties the window (the breaker closes, or restarts). O(size). */
void bw__window_reset(bw__window_t *w);

/*
 * Records n calls with the same outcome at now_ms (time windows: into the
 * bucket of now_ms; a now_ms older than the newest bucket goes to the newest
 * bucket, since a breaker's clock never runs back). Count windows take at
 * most size of them (older ones would fall out at once): O(min(n, size)).
 */
void bw__window_add(bw__window_t *w, uint64_t now_ms, bool failure, bool slow, uint64_t n);

/* The totals over the window as of now_ms (time windows expire old buckets
 * first, which is why this is not const). */
void bw__window_totals(bw__window_t *w, uint64_t now_ms, bw__window_totals_t *out);

#endif
