/*
 * The registry of named breakers and pools: get-or-create returns the same
 * object for the same name (also from two threads at once), kinds do not
 * mix, reset all, the health summary, iteration, a dead pool revived by the
 * next get, bad arguments, and the registry freeing what it made when the
 * runtime stops (the ASan build checks that nothing leaks).
 */
#include "support.h"

#include "bulwark/resilience.h"

typedef struct race {
  bw_resilience_t *reg;
  pthread_barrier_t *bar;
  bw_breaker_t *br[8];
  int rc[8];
} race_t;

static void *racer(void *arg) {
  race_t *r = arg;
  pthread_barrier_wait(r->bar);
  static const char *const names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
  for (int i = 0; i < 8; i++)
    r->rc[i] = bw_resilience_breaker(r->reg, names[i], NULL, &r->br[i]);
  return NULL;
}

static void test_get_or_create_two_threads(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_resilience_t *reg;
  assert_int_equal(bw_resilience_create(rt, NULL, &reg), 0);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 2);
  race_t a = {.reg = reg, .bar = &bar}, b = {.reg = reg, .bar = &bar};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, racer, &a);
  pthread_create(&tb, NULL, racer, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_barrier_destroy(&bar);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(a.rc[i], 0);
    assert_int_equal(b.rc[i], 0);
    assert_non_null(a.br[i]);
    assert_ptr_equal(a.br[i], b.br[i]);
  }
  int n = 0;
  bw_resilience_health_t h;
  assert_int_equal(bw_resilience_health(reg, &h), 0);
  n = (int)h.breakers;
  assert_int_equal(n, 8);
  bw_breaker_t *f = NULL;
  assert_int_equal(bw_resilience_find_breaker(reg, "c", &f), 0);
  assert_ptr_equal(f, a.br[2]);
  assert_string_equal(bw_breaker_name(f), "c");
  assert_int_equal(bw_resilience_find_breaker(reg, "zz", &f), BW_ENOTFOUND);
  /* freed by the registry's keeper when the runtime stops */
  bw_runtime_destroy(rt);
}

static int count_kinds(const bw_resilience_entry_t *e, void *arg) {
  int *k = arg;
  k[e->kind]++;
  return 0;
}

static void test_pools_health_reset(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_resilience_t *reg;
  assert_int_equal(bw_resilience_create(rt, NULL, &reg), 0);
  bw_bulkhead_opts_t po;
  bw_bulkhead_opts_init(&po);
  po.workers = 2;
  bw_bulkhead_t *p1 = NULL, *p2 = NULL, *p3 = NULL;
  assert_int_equal(bw_resilience_pool(reg, "db", &po, &p1), 0);
  assert_int_equal(bw_resilience_pool(reg, "db", NULL, &p2), 0); /* opts not needed now */
  assert_ptr_equal(p1, p2);
  assert_int_equal(bw_resilience_pool(reg, "cache", NULL, &p3), BW_EINVAL); /* new: opts needed */
  bw_bulkhead_stats_t bm;
  assert_int_equal(bw_bulkhead_stats(p1, &bm), 0);
  assert_string_equal(bm.name, "db");
  bw_breaker_t *b1, *b2;
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.failure_threshold = 1;
  assert_int_equal(bw_resilience_breaker(reg, "pay", &bo, &b1), 0);
  assert_int_equal(bw_resilience_breaker(reg, "ship", NULL, &b2), 0);
  /* kinds do not mix */
  bw_breaker_t *x;
  assert_int_equal(bw_resilience_breaker(reg, "db", NULL, &x), BW_EINVAL);
  assert_int_equal(bw_resilience_pool(reg, "pay", &po, &p3), BW_EINVAL);
  assert_int_equal(bw_resilience_find_pool(reg, "pay", &p3), BW_ENOTFOUND);
  assert_int_equal(bw_resilience_find_pool(reg, "db", &p3), 0);
  assert_ptr_equal(p3, p1);

  /* trip "pay": one failure */
  bw_breaker_permit_t pm;
  assert_int_equal(bw_breaker_acquire(b1, &pm), 0);
  assert_int_equal(bw_breaker_report(b1, &pm, -1000), 0);
  assert_int_equal(bw_breaker_flush(b1, 0), 0);
  assert_int_equal(bw_breaker_state(b1), BW_BREAKER_OPEN);
  bw_resilience_health_t h;
  assert_int_equal(bw_resilience_health(reg, &h), 0);
  assert_int_equal(h.breakers, 2);
  assert_int_equal(h.by_state[BW_BREAKER_OPEN], 1);
  assert_int_equal(h.by_state[BW_BREAKER_CLOSED], 1);
  assert_int_equal(h.pools, 1);
  assert_int_equal(h.pools_saturated, 0);
  assert_int_equal(h.pools_down, 0);

  /* saturate the pool: both workers lent, no queue */
  bw_bulkhead_lease_t l1, l2;
  assert_int_equal(bw_bulkhead_checkout(p1, BW_PID_NONE, 0, &l1), 0);
  assert_int_equal(bw_bulkhead_checkout(p1, BW_PID_NONE, 0, &l2), 0);
  assert_int_equal(bw_resilience_health(reg, &h), 0);
  assert_int_equal(h.pools_saturated, 1);
  assert_int_equal(bw_bulkhead_checkin(p1, &l1), 0);
  assert_int_equal(bw_bulkhead_checkin(p1, &l2), 0);

  /* reset all */
  assert_int_equal(bw_resilience_reset_breakers(reg), 2);
  assert_int_equal(bw_breaker_flush(b1, 0), 0);
  assert_int_equal(bw_breaker_state(b1), BW_BREAKER_CLOSED);

  /* iteration */
  int kinds[3] = {0, 0, 0};
  assert_int_equal(bw_resilience_foreach(reg, count_kinds, kinds), 3);
  assert_int_equal(kinds[BW_RESILIENCE_BREAKER], 2);
  assert_int_equal(kinds[BW_RESILIENCE_POOL], 1);

  /* a dead pool is started again by the next get, on the same handle */
  bw_pid_t first = bw_bulkhead_pid(p1);
  assert_int_equal(bw_bulkhead_stop(p1), 0);
  assert_int_equal(bw_resilience_health(reg, &h), 0);
  assert_int_equal(h.pools_down, 1);
  bw_bulkhead_t *p4 = NULL;
  assert_int_equal(bw_resilience_pool(reg, "db", NULL, &p4), 0);
  assert_ptr_equal(p4, p1);
  bw_pid_t again = bw_bulkhead_pid(p4);
  assert_true(again != first);
  assert_true(bw_is_alive(rt, again));

  /* destroy before the runtime stops: everything goes */
  bw_pid_t keeper = bw_resilience_pid(reg);
  assert_int_equal(bw_resilience_destroy(reg), 0);
  assert_false(bw_is_alive(rt, keeper));
  assert_false(bw_is_alive(rt, again));
  bw_runtime_destroy(rt);
}

static void test_bad_args(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_resilience_t *reg = NULL;
  bw_resilience_opts_t o;
  bw_resilience_opts_init(&o);
  o.capacity = 0;
  assert_int_equal(bw_resilience_create(rt, &o, &reg), BW_EINVAL);
  assert_int_equal(bw_resilience_create(NULL, NULL, &reg), BW_EINVAL);
  assert_int_equal(bw_resilience_create(rt, NULL, NULL), BW_EINVAL);
  o.capacity = 1;
  assert_int_equal(bw_resilience_create(rt, &o, &reg), 0);
  bw_breaker_t *br;
  bw_bulkhead_t *p;
  assert_int_equal(bw_resilience_breaker(NULL, "a", NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, NULL, NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "", NULL, &br), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "a name that is far too long to be one", NULL, &br),
                   BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, NULL), BW_EINVAL);
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.window_size = 0; /* a zero window */
  assert_int_equal(bw_resilience_breaker(reg, "a", &bo, &br), BW_EINVAL);
  bw_bulkhead_opts_t po;
  bw_bulkhead_opts_init(&po);
  po.workers = 0;
  assert_int_equal(bw_resilience_pool(reg, "p", &po, &p), BW_EINVAL);
  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, &br), 0);
  assert_int_equal(bw_resilience_breaker(reg, "b", NULL, &br), BW_ELIMIT); /* capacity 1 */
  assert_int_equal(bw_resilience_foreach(reg, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_health(reg, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_reset_breakers(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_destroy(NULL), 0);
  bw_runtime_destroy(rt); /* frees the registry and its breaker */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_or_create_two_threads),
      cmocka_unit_test(test_pools_health_reset),
      cmocka_unit_test(test_bad_args),
  };
  return BWT_RUN_SUITE(tests);
}
