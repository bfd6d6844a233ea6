/*
 * The runtime's internal toolkit, the one copy every folder uses: array
 * growth (runtime/grow.h).
 */
#include "support.h"

#include <stdint.h>
#include <stdlib.h>

#include "runtime/grow.h"

/* Doubling from the first capacity, the contents kept. */
static void test_grow_doubles(void **state) {
  (void)state;
  uint32_t *a = NULL, cap = 0;
  for (uint32_t n = 0; n < 100; n++) {
    assert_true(bw__grow((void **)&a, &cap, n, sizeof *a, 4));
    a[n] = n;
  }
  assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
  for (uint32_t n = 0; n < 100; n++)
    assert_int_equal(a[n], n);
  /* room already there: nothing changes */
  uint32_t *before = a;
  assert_true(bw__grow((void **)&a, &cap, 100, sizeof *a, 4));
  assert_ptr_equal(a, before);
  assert_int_equal(cap, 128);
  free(a);
}

/* A size that would overflow uint32_t elements or size_t bytes is refused
 * before realloc sees it, and the array is left as it was. */
static void test_grow_overflow(void **state) {
  (void)state;
  char one = 'x';
  void *p = &one; /* never passed to realloc: every call below must refuse */
  uint32_t cap = 0x80000000u;
  assert_false(bw__grow(&p, &cap, cap, 1, 4)); /* twice would wrap uint32_t */
  assert_ptr_equal(p, &one);
  assert_int_equal(cap, 0x80000000u);
  cap = 0x40000000u;
  assert_false(bw__grow(&p, &cap, cap, SIZE_MAX / 0x40000000u, 4)); /* bytes overflow */
  assert_ptr_equal(p, &one);
  assert_int_equal(cap, 0x40000000u);
  cap = 0;
  assert_false(bw__grow(&p, &cap, 0, 0, 4)); /* a zero-sized element is a bug */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grow_doubles),
      cmocka_unit_test(test_grow_overflow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
