/*
 * Error codes and the small naming functions of types.h and runtime.h:
 * bw_strerror, bw_err_name, bw_reason_kind_name, bw_reason_is_abnormal,
 * bw_dead_reason_name.
 */
#include "support.h"

#include <limits.h>

typedef struct code_info {
  int code;
  const char *name;
  const char *msg;
} code_info_t;

#define CODE_ROW(n, v, m) {BW_##n, "BW_" #n, m},
static const code_info_t codes[] = {BW_ERRNO_MAP(CODE_ROW)};
#undef CODE_ROW
#define NCODES (sizeof codes / sizeof codes[0])

static void test_strerror_every_code(void **state) {
  (void)state;
  /* the list is dense: -1 .. BW__ERR_LAST + 1 */
  assert_int_equal(NCODES, -(BW__ERR_LAST) - 1);
  for (size_t i = 0; i < NCODES; i++) {
    const char *m = bw_strerror(codes[i].code);
    assert_non_null(m);
    assert_string_not_equal(m, "unknown error");
    assert_string_equal(m, codes[i].msg);
    /* distinct from every other code's message */
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(m, bw_strerror(codes[j].code));
  }
}

static void test_strerror_unknown(void **state) {
  (void)state;
  const int unknown[] = {12345, BW__ERR_LAST, BW__ERR_LAST - 1, -1000, 1, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *m = bw_strerror(unknown[i]);
    assert_non_null(m);
    assert_string_equal(m, "unknown error");
  }
  assert_non_null(bw_strerror(BW_OK));
}

static void test_err_name(void **state) {
  (void)state;
  for (size_t i = 0; i < NCODES; i++) {
    const char *n = bw_err_name(codes[i].code);
    assert_non_null(n);
    assert_string_equal(n, codes[i].name);
  }
  assert_non_null(bw_err_name(12345));
  assert_non_null(bw_err_name(INT_MIN));
}

static void test_codes_values(void **state) {
  (void)state;
  /* The values are ABI: pin a few and check they are dense and negative. */
  assert_int_equal(BW_EINVAL, -1);
  assert_int_equal(BW_ENOPROC, -3);
  assert_int_equal(BW_EFULL, -4);
  assert_int_equal(BW_ESHUTDOWN, -6);
  assert_int_equal(BW_ERATE_LIMITED, -19);
  for (size_t i = 0; i < NCODES; i++)
    assert_int_equal(codes[i].code, -(int)(i + 1));
}

static void test_reason_kind_names(void **state) {
  (void)state;
  assert_string_equal(bw_reason_kind_name(BW_REASON_NORMAL), "normal");
  assert_string_equal(bw_reason_kind_name(BW_REASON_SHUTDOWN), "shutdown");
  assert_string_equal(bw_reason_kind_name(BW_REASON_KILLED), "killed");
  assert_string_equal(bw_reason_kind_name(BW_REASON_CRASH), "crash");
  assert_string_equal(bw_reason_kind_name(BW_REASON_NOPROC), "noproc");
  for (int k = 0; k < BW_REASON__COUNT; k++) {
    const char *n = bw_reason_kind_name(k);
    assert_non_null(n);
    for (int j = 0; j < k; j++)
      assert_string_not_equal(n, bw_reason_kind_name(j));
  }
}

static void test_reason_is_abnormal(void **state) {
  (void)state;
  bw_reason_t r;
  memset(&r, 0, sizeof r);
  r.kind = BW_REASON_NORMAL;
  assert_false(bw_reason_is_abnormal(&r));
  r.kind = BW_REASON_SHUTDOWN;
  assert_false(bw_reason_is_abnormal(&r));
  r.kind = BW_REASON_CRASH;
  r.code = BW_ECRASH;
  assert_true(bw_reason_is_abnormal(&r));
  r.kind = BW_REASON_KILLED;
  r.code = 0;
  assert_true(bw_reason_is_abnormal(&r));
  r.kind = BW_REASON_NOPROC;
  assert_true(bw_reason_is_abnormal(&r));
  r.kind = BW_REASON_NOCONNECTION;
  assert_true(bw_reason_is_abnormal(&r));
}

static void test_dead_reason_names(void **state) {
  (void)state;
  assert_string_equal(bw_dead_reason_name(BW_DL_NOPROC), "noproc");
  assert_string_equal(bw_dead_reason_name(BW_DL_FULL), "full");
  assert_string_equal(bw_dead_reason_name(BW_DL_SHUTDOWN), "shutdown");
  assert_string_equal(bw_dead_reason_name(BW_DL_EXITED), "exited");
  assert_string_equal(bw_dead_reason_name(BW_DL_LATE_REPLY), "late_reply");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strerror_every_code),
      cmocka_unit_test(test_strerror_unknown),
      cmocka_unit_test(test_err_name),
      cmocka_unit_test(test_codes_values),
      cmocka_unit_test(test_reason_kind_names),
      cmocka_unit_test(test_reason_is_abnormal),
      cmocka_unit_test(test_dead_reason_names),
  };
  return BWT_RUN_SUITE(tests);
}
