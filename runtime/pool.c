/*
 * bulwark: the memory pool for messages and actors.
 *
 * Fixed size classes carved from 64 KiB-aligned chunks. Every runtime-owned
 * thread (worker, dedicated, timer) and every outside thread that sends has
 * a cache: a plain free list per class that only its owner touches, plus a
 * remote list per class where other threads return blocks the owner carved.
 * A remote free is a CAS push; the owner takes the whole remote list with
 * one exchange when its local list runs dry. Push-only plus take-all has no
 * ABA problem, so no double-width CAS and no lock on this path. The chunk
 * header names the owner and the class, so a block carries no header.
 *
 * In steady state (messages cycling between threads) allocation and free
 * are a few loads and stores; malloc is called only to grow (new chunk).
 * Chunks are returned to the system when the runtime is destroyed.
 * Rejected alternative: ck_stack's MPMC pop needs a double-width CAS and
 * a global head that every thread would contend on.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

static const size_t class_size[BW__POOL_NCLASS] = {64,  128, 192,  256,  384,
                                                   512, 768, 1024, 2048, 4096};

int bw__pool_class(size_t size) {
  for (int i = 0; i < BW__POOL_NCLASS; i++)
    if (size <= class_size[i])
      return i;
  return -1;
}

size_t bw__pool_class_size(int cls) { return class_size[cls]; }

void bw__cache_init(bw__cache *c, bw__runtime *rt) {
  memset(c, 0, sizeof(*c));
  c->rt = rt;
}

static bw__chunk *chunk_of(void *p) {
  return (bw__chunk *)((uintptr_t)p & ~(uintptr_t)(BW__CHUNK_SIZE - 1));
}

static bool cache_refill(bw__cache *c, int cls) {
  /* acquire: the remote freers' writes of each block's link (release in
   * their CAS) must be visible before we walk the list */
  void *list = bw__xchg_ptr(&c->remote[cls].head, NULL);
  if (list != NULL) {
    c->cls[cls].free = list;
    return true;
  }
  bw__chunk *ch = aligned_alloc(BW__CHUNK_SIZE, BW__CHUNK_SIZE);
  if (ch == NULL)
    return false;
  ch->owner = c;
  ch->cls = (uint32_t)cls;
  pthread_mutex_lock(&c->rt->pool_mx);
  ch->all_next = c->rt->chunks;
  c->rt->chunks = ch;
  pthread_mutex_unlock(&c->rt->pool_mx);
  c->cls[cls].bump = (char *)ch + sizeof(bw__chunk);
  c->cls[cls].end = (char *)ch + BW__CHUNK_SIZE;
  return true;
}

/* The test hook's slow path: one more allocation, if the budget allows. */
static bool __attribute__((noinline)) hook_allows(bw__runtime *rt) {
  /* acquire: pairs with the release that armed the hook, so the budget set
   * before it is what the RMW below counts down */
  if (!bw__ld32_acq(&rt->alloc_hook))
    return true;
  /* RMW: each allocation takes exactly one unit of the budget */
  return (int64_t)bw__faa64((uint64_t *)&rt->alloc_left, (uint64_t)-1) > 0;
}

void bw__test_alloc_fail_after(bw__runtime *rt, int64_t n) {
  if (rt == NULL)
    return;
  /* relaxed, then release on the flag: the budget is visible to whoever
   * sees the hook armed (hook_allows) */
  bw__st64_rlx((uint64_t *)&rt->alloc_left, (uint64_t)(n < 0 ? 0 : n));
  bw__st32_rel(&rt->alloc_hook, n < 0 ? 0 : 1);
}

void *bw__pool_alloc(bw__cache *c, int cls) {
  /* relaxed: the word is written only by tests; an allocation that races
   * with arming the hook may go either way, as with real memory */
  if (__builtin_expect(bw__ld32_rlx(&c->rt->alloc_hook) != 0, 0) && !hook_allows(c->rt))
    return NULL;
  for (;;) {
    void *b = c->cls[cls].free;
    if (b != NULL) {
      /* relaxed: the link was written by this thread or made visible by
       * the acquire exchange in cache_refill */
      c->cls[cls].free = BW__LD_RLX((void **)b);
      return b;
    }
    size_t sz = class_size[cls];
    if (c->cls[cls].bump != NULL && c->cls[cls].bump + sz <= c->cls[cls].end) {
      b = c->cls[cls].bump;
      c->cls[cls].bump += sz;
      return b;
    }
    if (!cache_refill(c, cls))
      return NULL;
  }
}

void bw__pool_free(bw__cache *c, void *p) {
  bw__chunk *ch = chunk_of(p);
  bw__cache *owner = ch->owner;
  int cls = (int)ch->cls;
  if (owner == c) {
    BW__ST_RLX((void **)p, c->cls[cls].free);
    c->cls[cls].free = p;
    return;
  }
  void **head = &owner->remote[cls].head;
  void *old = BW__LD_RLX(head);
  for (;;) {
    BW__ST_RLX((void **)p, old);
    /* release (in the CAS): the link written above must be visible to the
     * owner's acquire exchange that takes the list */
    if (bw__cas_ptr(head, old, p))
      return;
    old = BW__LD_RLX(head);
  }
}

/* A cache for a thread the runtime starts (dedicated actor thread, timer):
 * reuse one a finished thread left, so its chunks keep being used. */
bw__cache *bw__cache_acquire(bw__runtime *rt) {
  pthread_mutex_lock(&rt->pool_mx);
  bw__cache *c = rt->spare_caches;
  if (c != NULL) {
    rt->spare_caches = c->spare_next;
    pthread_mutex_unlock(&rt->pool_mx);
    return c;
  }
  pthread_mutex_unlock(&rt->pool_mx);
  c = aligned_alloc(BW__CACHELINE, (sizeof(bw__cache) + BW__CACHELINE - 1) &
                                       ~(size_t)(BW__CACHELINE - 1));
  if (c == NULL)
    return NULL;
  bw__cache_init(c, rt);
  pthread_mutex_lock(&rt->pool_mx);
  c->all_next = rt->caches;
  rt->caches = c;
  pthread_mutex_unlock(&rt->pool_mx);
  return c;
}

void bw__cache_release(bw__runtime *rt, bw__cache *c) {
  pthread_mutex_lock(&rt->pool_mx);
  c->spare_next = rt->spare_caches;
  rt->spare_caches = c;
  pthread_mutex_unlock(&rt->pool_mx);
}

void bw__pool_destroy(bw__runtime *rt) {
  bw__chunk *ch = rt->chunks;
  while (ch != NULL) {
    bw__chunk *n = ch->all_next;
    free(ch);
    ch = n;
  }
  rt->chunks = NULL;
  bw__cache *c = rt->caches;
  while (c != NULL) {
    bw__cache *n = c->all_next;
    free(c);
    c = n;
  }
  rt->caches = NULL;
  rt->spare_caches = NULL;
}
