/*
 * bulwark internal: the atomic operations every folder's lock-free code uses
 * (runtime/, supervisor/, patterns/, observe/, node/). The one copy: a file
 * that needs an order or a width missing here adds it here, with both
 * mappings, rather than a shim of its own.
 *
 * Normal builds use Concurrency Kit's ck_pr (inline assembly tuned per CPU;
 * on x86-64's TSO, acquire/release fences are compiler barriers only).
 * ThreadSanitizer cannot see inline assembly, so under BW_TSAN the same
 * operations map to the compiler's __atomic builtins. The mapping, stated
 * once for every function below:
 *
 *   name          ck build                            under BW_TSAN
 *   ld*_rlx       ck_pr_load                          __ATOMIC_RELAXED
 *   ld*_acq       ck_pr_load, fence_acquire           __ATOMIC_ACQUIRE
 *   st*_rlx       ck_pr_store                         __ATOMIC_RELAXED
 *   st*_rel       fence_release, ck_pr_store          __ATOMIC_RELEASE
 *   faa cas xchg  fence_atomic, RMW, fence_atomic_load __ATOMIC_SEQ_CST
 *   *_rlx RMWs    the bare ck_pr RMW                  __ATOMIC_RELAXED
 *   fence_seq_cst ck_pr_fence_memory                  a SEQ_CST RMW on a word
 *
 * An RMW without a suffix is a full barrier: on x86-64 ck's RMWs are locked
 * instructions, and the breaker's store-then-load handshakes (its journal's
 * idle mark, its rejection notice) rely on that. SEQ_CST is the TSan order
 * that says so. (This header used ACQ_REL there while the breaker's own shim
 * used SEQ_CST; TSan draws the same happens-before edges for both, so the
 * choice changes no report, only what the code claims.) An _rlx RMW is
 * atomic and orders nothing else: for counters and numbers through which no
 * memory is published; on x86-64 it is the same locked instruction.
 *
 * Each call site says which order it needs and why; the names carry the
 * order so the comment and the code cannot disagree.
 */
#ifndef BW_RUNTIME_ATOMIC_H
#define BW_RUNTIME_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(BW_TSAN) && BW_TSAN

#define BW__RMW __ATOMIC_SEQ_CST /* the full-barrier RMWs' order: see above */
#define BW__RLX __ATOMIC_RELAXED

static inline void *bw__ld_ptr_rlx(void *const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void *bw__ld_ptr_acq(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st_ptr_rlx(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st_ptr_rel(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void *bw__xchg_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, BW__RMW); }
static inline bool bw__cas_ptr(void **p, void *expect, void *v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, BW__RMW, BW__RMW);
}
static inline uint64_t bw__ld64_rlx(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t bw__ld64_acq(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st64_rlx(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st64_rel(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t bw__faa64(uint64_t *p, uint64_t d) { return __atomic_fetch_add(p, d, BW__RMW); }
static inline bool bw__cas64(uint64_t *p, uint64_t expect, uint64_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, BW__RMW, BW__RMW);
}
static inline uint64_t bw__xchg64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, BW__RMW); }
static inline uint64_t bw__faa64_rlx(uint64_t *p, uint64_t d) { return __atomic_fetch_add(p, d, BW__RLX); }
static inline bool bw__cas64_rlx(uint64_t *p, uint64_t expect, uint64_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, BW__RLX, BW__RLX);
}
/* Returns the value seen: expect itself when the CAS succeeded. */
static inline uint64_t bw__cas64_val_rlx(uint64_t *p, uint64_t expect, uint64_t v) {
  __atomic_compare_exchange_n(p, &expect, v, false, BW__RLX, BW__RLX);
  return expect;
}
static inline uint32_t bw__ld32_rlx(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t bw__ld32_acq(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st32_rlx(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st32_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t bw__faa32(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, BW__RMW); }
static inline bool bw__cas32(uint32_t *p, uint32_t expect, uint32_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, BW__RMW, BW__RMW);
}
static inline uint32_t bw__xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, BW__RMW); }
static inline uint32_t bw__faa32_rlx(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, BW__RLX); }
static inline bool bw__cas32_rlx(uint32_t *p, uint32_t expect, uint32_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, BW__RLX, BW__RLX);
}
/* GCC's TSan does not support fences; a seq_cst RMW on a shared word is a
 * full barrier on x86-64 (locked instruction) and is visible to TSan. */
static inline void bw__fence_seq_cst(void) {
  static uint64_t bw__fence_word;
  (void)__atomic_fetch_add(&bw__fence_word, 0, __ATOMIC_SEQ_CST);
}
static inline void bw__cpu_relax(void) { __builtin_ia32_pause(); }

#undef BW__RMW
#undef BW__RLX

#else /* Concurrency Kit */

#include <ck_pr.h>

static inline void *bw__ld_ptr_rlx(void *const *p) { return ck_pr_load_ptr(p); }
static inline void *bw__ld_ptr_acq(void *const *p) {
  void *v = ck_pr_load_ptr(p);
  ck_pr_fence_acquire();
  return v;
}
static inline void bw__st_ptr_rlx(void **p, void *v) { ck_pr_store_ptr(p, v); }
static inline void bw__st_ptr_rel(void **p, void *v) {
  ck_pr_fence_release();
  ck_pr_store_ptr(p, v);
}
/* ck_pr_fas/cas/faa are full barriers on every CPU ck supports as RMW+fences. */
static inline void *bw__xchg_ptr(void **p, void *v) {
  ck_pr_fence_atomic();
  void *r = ck_pr_fas_ptr(p, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline bool bw__cas_ptr(void **p, void *expect, void *v) {
  ck_pr_fence_atomic();
  bool r = ck_pr_cas_ptr(p, expect, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint64_t bw__ld64_rlx(const uint64_t *p) { return ck_pr_load_64(p); }
static inline uint64_t bw__ld64_acq(const uint64_t *p) {
  uint64_t v = ck_pr_load_64(p);
  ck_pr_fence_acquire();
  return v;
}
static inline void bw__st64_rlx(uint64_t *p, uint64_t v) { ck_pr_store_64(p, v); }
static inline void bw__st64_rel(uint64_t *p, uint64_t v) {
  ck_pr_fence_release();
  ck_pr_store_64(p, v);
}
static inline uint64_t bw__faa64(uint64_t *p, uint64_t d) {
  ck_pr_fence_atomic();
  uint64_t r = ck_pr_faa_64(p, d);
  ck_pr_fence_atomic_load();
  return r;
}
static inline bool bw__cas64(uint64_t *p, uint64_t expect, uint64_t v) {
  ck_pr_fence_atomic();
  bool r = ck_pr_cas_64(p, expect, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint64_t bw__xchg64(uint64_t *p, uint64_t v) {
  ck_pr_fence_atomic();
  uint64_t r = ck_pr_fas_64(p, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint64_t bw__faa64_rlx(uint64_t *p, uint64_t d) { return ck_pr_faa_64(p, d); }
static inline bool bw__cas64_rlx(uint64_t *p, uint64_t expect, uint64_t v) {
  return ck_pr_cas_64(p, expect, v);
}
/* Returns the value seen: expect itself when the CAS succeeded. */
static inline uint64_t bw__cas64_val_rlx(uint64_t *p, uint64_t expect, uint64_t v) {
  uint64_t seen;
  ck_pr_cas_64_value(p, expect, v, &seen);
  return seen;
}
static inline uint32_t bw__ld32_rlx(const uint32_t *p) { return ck_pr_load_32(p); }
static inline uint32_t bw__ld32_acq(const uint32_t *p) {
  uint32_t v = ck_pr_load_32(p);
  ck_pr_fence_acquire();
  return v;
}
static inline void bw__st32_rlx(uint32_t *p, uint32_t v) { ck_pr_store_32(p, v); }
static inline void bw__st32_rel(uint32_t *p, uint32_t v) {
  ck_pr_fence_release();
  ck_pr_store_32(p, v);
}
static inline uint32_t bw__faa32(uint32_t *p, uint32_t d) {
  ck_pr_fence_atomic();
  uint32_t r = ck_pr_faa_32(p, d);
  ck_pr_fence_atomic_load();
  return r;
}
static inline bool bw__cas32(uint32_t *p, uint32_t expect, uint32_t v) {
  ck_pr_fence_atomic();
  bool r = ck_pr_cas_32(p, expect, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint32_t bw__xchg32(uint32_t *p, uint32_t v) {
  ck_pr_fence_atomic();
  uint32_t r = ck_pr_fas_32(p, v);
  ck_pr_fence_atomic_load();
  return r;
}
static inline uint32_t bw__faa32_rlx(uint32_t *p, uint32_t d) { return ck_pr_faa_32(p, d); }
static inline bool bw__cas32_rlx(uint32_t *p, uint32_t expect, uint32_t v) {
  return ck_pr_cas_32(p, expect, v);
}
static inline void bw__fence_seq_cst(void) { ck_pr_fence_memory(); }
static inline void bw__cpu_relax(void) { ck_pr_stall(); }

#endif

/* Typed wrappers for pointer fields (T **). */
#define BW__LD_ACQ(pp) ((__typeof__(*(pp)))bw__ld_ptr_acq((void *const *)(pp)))
#define BW__LD_RLX(pp) ((__typeof__(*(pp)))bw__ld_ptr_rlx((void *const *)(pp)))
#define BW__ST_REL(pp, v) bw__st_ptr_rel((void **)(pp), (void *)(v))
#define BW__ST_RLX(pp, v) bw__st_ptr_rlx((void **)(pp), (void *)(v))
#define BW__XCHG(pp, v) ((__typeof__(*(pp)))bw__xchg_ptr((void **)(pp), (void *)(v)))
#define BW__CAS(pp, e, v) bw__cas_ptr((void **)(pp), (void *)(e), (void *)(v))

#endif
