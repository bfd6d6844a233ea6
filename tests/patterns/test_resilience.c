/*
 * The registry of named breakers and pools: get-or-create returns the same
 * object for the same name (also from two threads at once), kinds do not
 * mix, reset all, the stats, iteration, a dead pool revived by the next
 * get, bad arguments, the keeper's lifecycle (unsupervised and in a tree),
 * and destroy freeing what the registry made, before or after the runtime
 * stops (the ASan build checks that nothing leaks).
 */
#include "support.h"

#include "bulwark/resilience.h"

/* A registry with its keeper running (bw_resilience_new + start). */
static bw_resilience_t *reg_up(bw_runtime_t *rt, const bw_resilience_opts_t *o) {
  bw_resilience_t *reg = NULL;
  assert_int_equal(bw_resilience_new(rt, o, &reg), 0);
  assert_int_equal(bw_resilience_start(reg, NULL), 0);
  return reg;
}

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
  bw_resilience_t *reg = reg_up(rt, NULL);
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
  bw_resilience_stats_t h;
  assert_int_equal(bw_resilience_stats(reg, &h), 0);
  n = (int)h.breakers;
  assert_int_equal(n, 8);
  bw_breaker_t *f = NULL;
  assert_int_equal(bw_resilience_find_breaker(reg, "c", &f), 0);
  assert_ptr_equal(f, a.br[2]);
  assert_string_equal(bw_breaker_name(f), "c");
  assert_int_equal(bw_resilience_find_breaker(reg, "zz", &f), BW_ENOTFOUND);
  /* the runtime's stop stops the keeper, which stops the breakers first;
   * destroy then frees what is left */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_resilience_pid(reg), BW_PID_NONE);
  assert_int_equal(bw_resilience_destroy(reg), 0);
  bw_runtime_destroy(rt);
}

static int count_kinds(const bw_resilience_entry_t *e, void *arg) {
  int *k = arg;
  k[e->kind]++;
  return 0;
}

static void test_pools_stats_reset(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_resilience_t *reg = reg_up(rt, NULL);
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
  bw_resilience_stats_t h;
  assert_int_equal(bw_resilience_stats(reg, &h), 0);
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
  assert_int_equal(bw_resilience_stats(reg, &h), 0);
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
  assert_int_equal(bw_resilience_stats(reg, &h), 0);
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
  assert_int_equal(bw_resilience_opts_validate(&o), BW_EINVAL);
  assert_int_equal(bw_resilience_opts_validate(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_new(rt, &o, &reg), BW_EINVAL);
  assert_int_equal(bw_resilience_new(NULL, NULL, &reg), BW_EINVAL);
  assert_int_equal(bw_resilience_new(rt, NULL, NULL), BW_EINVAL);
  assert_null(reg);
  o.capacity = 1;
  reg = reg_up(rt, &o);
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
  assert_int_equal(bw_resilience_stats(reg, NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_reset_breakers(NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_destroy(NULL), 0);
  assert_int_equal(bw_resilience_destroy(reg), 0); /* stops and frees it and its breaker */
  bw_runtime_destroy(rt);
}

/* The keeper under a supervisor: a child like any other. Its shutdown (the
 * tree's stop) stops the registry's breakers and pools; creation is then
 * refused until a keeper runs again; stop and destroy refuse while the
 * supervisor runs it. */
static bw_child_spec_t tree_kids[1]; /* filled from the registry's handle */
static const bw_sup_spec_t tree_spec = {.name = "resilience", .strategy = BW_REST_FOR_ONE,
                                        .intensity = 3, .children = tree_kids, .nchildren = 1};

static void test_keeper_in_a_tree(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_resilience_t *reg = NULL;
  assert_int_equal(bw_resilience_new(rt, NULL, &reg), 0);
  bw_child_spec_t cs;
  assert_int_equal(bw_resilience_child_spec(NULL, "k", &cs), BW_EINVAL);
  assert_int_equal(bw_resilience_child_spec(reg, NULL, &cs), BW_EINVAL);
  assert_int_equal(bw_resilience_child_spec(reg, "k", NULL), BW_EINVAL);
  assert_int_equal(bw_resilience_child_spec(reg, "registry", &tree_kids[0]), 0);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &tree_spec, &sup, NULL), 0);
  bw_pid_t keeper = bw_resilience_pid(reg);
  assert_int_not_equal(keeper, BW_PID_NONE);
  assert_int_equal(bw_resilience_start(reg, NULL), BW_EALREADY);
  assert_int_equal(bw_resilience_stop(reg), BW_ERUNNING);
  assert_int_equal(bw_resilience_destroy(reg), BW_ERUNNING);

  bw_breaker_t *br;
  assert_int_equal(bw_resilience_breaker(reg, "pay", NULL, &br), 0);
  bw_bulkhead_opts_t po;
  bw_bulkhead_opts_init(&po);
  bw_bulkhead_t *pool;
  assert_int_equal(bw_resilience_pool(reg, "db", &po, &pool), 0);
  bw_pid_t bpid = bw_breaker_pid(br), ppid = bw_bulkhead_pid(pool);

  /* a crashed keeper is restarted; what it made runs on */
  assert_int_equal(bw_exit(rt, keeper, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_resilience_pid(reg) != BW_PID_NONE && bw_resilience_pid(reg) != keeper);
  assert_true(bw_is_alive(rt, bpid) && bw_is_alive(rt, ppid));

  /* the tree's stop: the keeper stops the breaker and the pool first */
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_resilience_pid(reg), BW_PID_NONE);
  assert_false(bw_is_alive(rt, bpid));
  assert_false(bw_is_alive(rt, ppid));
  bw_breaker_t *late;
  assert_int_equal(bw_resilience_breaker(reg, "late", NULL, &late), BW_ESHUTDOWN);
  assert_int_equal(bw_resilience_breaker(reg, "pay", NULL, &late), BW_ESHUTDOWN); /* no revival */

  /* a keeper again (unsupervised): the registry serves again */
  bw_pid_t k2 = BW_PID_NONE;
  assert_int_equal(bw_resilience_start(reg, &k2), 0);
  assert_int_equal(bw_resilience_pid(reg), k2);
  assert_int_equal(bw_resilience_breaker(reg, "pay", NULL, &late), 0);
  assert_ptr_equal(late, br); /* revived on the same handle */
  assert_true(bw_is_alive(rt, bw_breaker_pid(br)));
  assert_int_equal(bw_resilience_stop(reg), 0);
  assert_false(bw_is_alive(rt, k2));
  assert_false(bw_is_alive(rt, bw_breaker_pid(br)));
  assert_int_equal(bw_resilience_stop(reg), 0); /* nothing runs */
  assert_int_equal(bw_resilience_destroy(reg), 0);
  bw_runtime_destroy(rt);
}

/* Used without a keeper: creation works, and destroy stops what it made. */
static void test_without_keeper(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_resilience_t *reg = NULL;
  assert_int_equal(bw_resilience_new(rt, NULL, &reg), 0);
  assert_int_equal(bw_resilience_pid(reg), BW_PID_NONE);
  bw_breaker_t *br;
  assert_int_equal(bw_resilience_breaker(reg, "a", NULL, &br), 0);
  bw_pid_t bpid = bw_breaker_pid(br);
  assert_true(bw_is_alive(rt, bpid));
  assert_int_equal(bw_resilience_destroy(reg), 0);
  assert_false(bw_is_alive(rt, bpid));
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_or_create_two_threads),
      cmocka_unit_test(test_pools_stats_reset),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_keeper_in_a_tree),
      cmocka_unit_test(test_without_keeper),
  };
  return BWT_RUN_SUITE(tests);
}
