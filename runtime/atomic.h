/*
 * bulwark internal: the atomic operations the runtime's lock-free code uses.
 *
 * Normal builds use Concurrency Kit's ck_pr (inline assembly tuned per CPU;
 * on x86-64's TSO, acquire/release fences are compiler barriers only).
 * ThreadSanitizer cannot see inline assembly, so under BW_TSAN the same
 * operations map to the compiler's __atomic builtins with the same orders.
 * Each call site says which order it needs and why; the names below carry
 * the order so the comment and the code cannot disagree.
 */
#ifndef BW_RUNTIME_ATOMIC_H
#define BW_RUNTIME_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(BW_TSAN) && BW_TSAN

static inline void *bw__ld_ptr_rlx(void *const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void *bw__ld_ptr_acq(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st_ptr_rlx(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st_ptr_rel(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void *bw__xchg_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static inline bool bw__cas_ptr(void **p, void *expect, void *v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint64_t bw__ld64_rlx(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t bw__ld64_acq(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st64_rlx(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st64_rel(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t bw__faa64(uint64_t *p, uint64_t d) { return __atomic_fetch_add(p, d, __ATOMIC_ACQ_REL); }
static inline bool bw__cas64(uint64_t *p, uint64_t expect, uint64_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint32_t bw__ld32_rlx(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t bw__ld32_acq(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void bw__st32_rlx(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void bw__st32_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t bw__faa32(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, __ATOMIC_ACQ_REL); }
static inline bool bw__cas32(uint32_t *p, uint32_t expect, uint32_t v) {
  return __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint32_t bw__xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
/* GCC's TSan does not support fences; a seq_cst RMW on a shared word is a
 * full barrier on x86-64 (locked instruction) and is visible to TSan. */
static inline void bw__fence_seq_cst(void) {
  static uint64_t bw__fence_word;
  (void)__atomic_fetch_add(&bw__fence_word, 0, __ATOMIC_SEQ_CST);
}
static inline void bw__cpu_relax(void) { __builtin_ia32_pause(); }

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
/* ck_pr_fas/cas are full barriers on every CPU ck supports as RMW+fences. */
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
