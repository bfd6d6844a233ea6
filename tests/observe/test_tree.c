/*
 * Tests of observe/tree.c: a three-level tree rendered with the right
 * structure and decorations (a breaker actor, a bulkhead pool, a health
 * monitor); a restarted child shows its new pid and restart count; the JSON
 * is well-formed (a small checker below); a buffer too small; bad input.
 *
 * Structure is checked by nesting depth: in {"id":..,"children":[{..}]}
 * the root's own fields sit at depth 1, its children's at depth 3, their
 * children's at depth 5, and so on; and each node must lie inside its
 * parent's object.
 */
#include "support.h"

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/health.h"
#include "bulwark/tree.h"

#include "json_check.h"

/* Depth of nesting (objects and arrays) at offset off of s. */
static int depth_at(const char *s, size_t off) {
  int d = 0;
  bool in_str = false;
  for (size_t i = 0; i < off; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      d++;
    } else if (c == '}' || c == ']') {
      d--;
    }
  }
  return d;
}

/* Offset of the object of node id, and of its end. */
static size_t node_at(const char *s, const char *id, size_t *end) {
  char key[96];
  snprintf(key, sizeof key, "{\"id\":\"%s\"", id);
  const char *p = strstr(s, key);
  assert_non_null(p);
  assert_null(strstr(p + 1, key)); /* one node per id */
  size_t start = (size_t)(p - s);
  int d = depth_at(s, start);
  size_t i = start + 1;
  while (s[i] != '\0' && !(s[i] == '}' && depth_at(s, i) == d + 1))
    i++;
  *end = i;
  return start;
}

static void assert_child_of(const char *s, const char *child, const char *parent) {
  size_t pe, ce;
  size_t ps = node_at(s, parent, &pe);
  size_t cs = node_at(s, child, &ce);
  assert_true(cs > ps && ce < pe);
  assert_int_equal(depth_at(s, cs), depth_at(s, ps) + 2);
}

/* --- the tree ---------------------------------------------------------------------------------- */

enum { MSG_CRASH = 1 };

static int w_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  return m->type == MSG_CRASH ? BW_ECRASH : BW_CONTINUE;
}
static const bw_behaviour_t worker = {.name = "w", .handle = w_handle};

static const bw_bulkhead_opts_t pool_opts = {.name = "jobs", .workers = 2};

/* filled at run time: the breaker's, the pool's and the monitor's specs need handles */
static bw_child_spec_t leaf_kids[4];
static const bw_sup_spec_t leaf_sup = {
    .name = "leaf", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = leaf_kids, .nchildren = 4};
static const bw_child_spec_t mid_kids[] = {
    {.id = "b", .behaviour = &worker},
    {.id = "leaf", .supervisor = &leaf_sup, .type = BW_SUPERVISOR},
};
static const bw_sup_spec_t mid_sup = {
    .name = "mid", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = mid_kids, .nchildren = 2};
static const bw_child_spec_t root_kids[] = {
    {.id = "a", .behaviour = &worker, .restart = BW_TRANSIENT},
    {.id = "mid", .supervisor = &mid_sup, .type = BW_SUPERVISOR},
};
static const bw_sup_spec_t root_sup = {
    .name = "root", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = root_kids, .nchildren = 2};

typedef struct fixture {
  bw_runtime_t *rt;
  bw_breaker_t *br;
  bw_bulkhead_t *pool;
  bw_health_t *h;
  bw_pid_t root;
} fixture_t;

static fixture_t setup_tree(void) {
  fixture_t f = {0};
  f.rt = bwt_runtime(2, true);
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "api-breaker";
  assert_int_equal(bw_breaker_new(f.rt, &bo, &f.br), 0);
  bw_health_opts_t ho;
  bw_health_opts_init(&ho);
  assert_int_equal(bw_health_new(f.rt, &ho, &f.h), 0);
  memset(leaf_kids, 0, sizeof leaf_kids);
  leaf_kids[0] = (bw_child_spec_t){.id = "c", .behaviour = &worker};
  assert_int_equal(bw_breaker_child_spec(f.br, "br", &leaf_kids[1]), 0);
  assert_int_equal(bw_bulkhead_new(f.rt, &pool_opts, &f.pool), 0);
  assert_int_equal(bw_bulkhead_child_spec(f.pool, "pool", &leaf_kids[2]), 0);
  assert_int_equal(bw_health_child_spec(f.h, "health", &leaf_kids[3]), 0);
  assert_int_equal(bw_supervisor_start(f.rt, &root_sup, &f.root, NULL), 0);
  assert_int_equal(bw_tree_annotate_breaker(f.rt, f.br), 0);
  assert_int_equal(bw_tree_annotate_bulkhead(f.rt, BW_PID_NONE, "pool"), 0);
  assert_int_equal(bw_tree_annotate_health(f.rt, f.h), 0);
  return f;
}

static void teardown_tree(fixture_t *f) {
  assert_int_equal(bw_tree_forget_all(f->rt), 3);
  assert_int_equal(bw_sup_stop(f->rt, f->root), 0);
  assert_int_equal(bw_breaker_destroy(f->br), 0);
  assert_int_equal(bw_bulkhead_destroy(f->pool), 0);
  assert_int_equal(bw_health_destroy(f->h), 0);
  bw_runtime_destroy(f->rt);
}

static bw_pid_t pid_of(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_sup_child_pid(rt, sup, id, &p), 0);
  return p;
}

static char buf[16384];

/* Mailbox depths are snapshots as of each actor's last turn's end: a
 * supervisor the walk has just called, or a breaker actor just restarted,
 * may show one in flight. The structural comparisons drop them (after
 * checking each is a number or null); the tests check the idle plain
 * workers' depths on the raw text (raw). */
static char raw[16384];

static void strip_mailbox(char *s) {
  const char *key = ",\"mailbox\":";
  for (char *m = strstr(s, key); m != NULL; m = strstr(m, key)) {
    char *e = m + strlen(key);
    if (strncmp(e, "null", 4) == 0) {
      e += 4;
    } else {
      assert_true(*e >= '0' && *e <= '9');
      while (*e >= '0' && *e <= '9')
        e++;
    }
    memmove(m, e, strlen(e) + 1);
  }
}

static const char *render(fixture_t *f) {
  size_t len = 0;
  assert_int_equal(bw_tree_json(f->rt, f->root, buf, sizeof buf, &len), 0);
  assert_int_equal(len, strlen(buf));
  assert_true(bwt_json_valid(buf));
  memcpy(raw, buf, len + 1);
  strip_mailbox(buf);
  return buf;
}

static void test_three_levels(void **state) {
  (void)state;
  fixture_t f = setup_tree();
  const char *s = render(&f);
  /* the root: depth 1, no id */
  char want[512];
  snprintf(want, sizeof want,
           "{\"id\":\"\",\"pid\":\"%llu\",\"type\":\"supervisor\",\"state\":\"running\","
           "\"children\":[{\"id\":\"a\"",
           (unsigned long long)f.root);
  assert_int_equal(strncmp(s, want, strlen(want)), 0);
  assert_child_of(s, "a", "");
  assert_child_of(s, "mid", "");
  assert_child_of(s, "b", "mid");
  assert_child_of(s, "leaf", "mid");
  assert_child_of(s, "c", "leaf");
  assert_child_of(s, "br", "leaf");
  assert_child_of(s, "pool", "leaf");
  assert_child_of(s, "health", "leaf");
  /* a worker, in full */
  bw_pid_t mid = pid_of(f.rt, f.root, "mid");
  bw_pid_t leaf = pid_of(f.rt, mid, "leaf");
  snprintf(want, sizeof want,
           "{\"id\":\"a\",\"pid\":\"%llu\",\"type\":\"worker\",\"state\":\"running\","
           "\"restart\":\"transient\",\"restarts\":0}",
           (unsigned long long)pid_of(f.rt, f.root, "a"));
  assert_non_null(strstr(s, want));
  snprintf(want, sizeof want, "{\"id\":\"a\",\"pid\":\"%llu\",\"type\":\"worker\","
           "\"state\":\"running\",\"restart\":\"transient\",\"restarts\":0,\"mailbox\":0}",
           (unsigned long long)pid_of(f.rt, f.root, "a"));
  assert_non_null(strstr(raw, want));
  snprintf(want, sizeof want,
           "{\"id\":\"leaf\",\"pid\":\"%llu\",\"type\":\"supervisor\",\"state\":\"running\","
           "\"restart\":\"permanent\",\"restarts\":0,\"children\":[",
           (unsigned long long)leaf);
  assert_non_null(strstr(s, want));
  /* the decorations */
  snprintf(want, sizeof want,
           "{\"id\":\"br\",\"pid\":\"%llu\",\"type\":\"worker\",\"state\":\"running\","
           "\"restart\":\"permanent\",\"restarts\":0,\"breaker\":{\"name\":"
           "\"api-breaker\",\"state\":\"closed\",\"successful\":0,\"failed\":0,\"rejected\":0,"
           "\"opens\":0,\"failure_rate\":null}}",
           (unsigned long long)bw_breaker_pid(f.br));
  assert_non_null(strstr(s, want));
  assert_non_null(strstr(s, "\"bulkhead\":{\"name\":\"jobs\",\"workers\":2,\"busy\":0,"
                            "\"idle\":2,\"lent\":0,\"queued\":0,\"queue_capacity\":0"));
  assert_non_null(strstr(s, "\"health\":{\"status\":\"healthy\"}"));
  /* only those three are decorated */
  assert_null(strstr(strstr(s, "\"breaker\":") + 1, "\"breaker\":"));
  teardown_tree(&f);
}

static void test_restarted_child(void **state) {
  (void)state;
  fixture_t f = setup_tree();
  bw_pid_t mid = pid_of(f.rt, f.root, "mid");
  bw_pid_t leaf = pid_of(f.rt, mid, "leaf");
  bw_pid_t c1 = pid_of(f.rt, leaf, "c");
  bw_pid_t br1 = bw_breaker_pid(f.br);
  char old[64];
  snprintf(old, sizeof old, "\"pid\":\"%llu\"", (unsigned long long)c1);
  assert_non_null(strstr(render(&f), old));
  /* c crashes and the breaker's actor is killed: both restarted */
  assert_int_equal(bw_send(f.rt, c1, MSG_CRASH, NULL, 0), 0);
  BWT_AWAIT_DEAD(f.rt, c1);
  assert_int_equal(bw_exit(f.rt, br1, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(f.rt, br1);
  BWT_POLL(bw_breaker_pid(f.br) != BW_PID_NONE && bw_breaker_pid(f.br) != br1);
  bw_pid_t c2 = pid_of(f.rt, leaf, "c");
  assert_int_not_equal(c1, c2);
  const char *s = render(&f);
  assert_null(strstr(raw, old));
  char want[256];
  snprintf(want, sizeof want,
           "{\"id\":\"c\",\"pid\":\"%llu\",\"type\":\"worker\",\"state\":\"running\","
           "\"restart\":\"permanent\",\"restarts\":1}",
           (unsigned long long)c2);
  assert_non_null(strstr(s, want));
  char *cm = strstr(raw, "{\"id\":\"c\"");
  assert_non_null(cm);
  assert_non_null(strstr(cm, "\"restarts\":1,\"mailbox\":0}"));
  /* the breaker is found again by its handle's new pid */
  snprintf(want, sizeof want,
           "{\"id\":\"br\",\"pid\":\"%llu\",\"type\":\"worker\",\"state\":\"running\","
           "\"restart\":\"permanent\",\"restarts\":1,\"breaker\":{",
           (unsigned long long)bw_breaker_pid(f.br));
  assert_non_null(strstr(s, want));
  /* a transient child that stopped normally shows as stopped, with no pid */
  bw_pid_t a = pid_of(f.rt, f.root, "a");
  assert_int_equal(bw_exit(f.rt, a, BW_REASON_SHUTDOWN, 0, NULL), 0);
  BWT_AWAIT_DEAD(f.rt, a);
  s = render(&f);
  assert_non_null(strstr(s, "{\"id\":\"a\",\"pid\":null,\"type\":\"worker\",\"state\":"
                            "\"stopped\",\"restart\":\"transient\",\"restarts\":0}"));
  teardown_tree(&f);
}

static void test_buffer_too_small(void **state) {
  (void)state;
  fixture_t f = setup_tree();
  size_t need = 0;
  char small[32];
  memset(small, 'x', sizeof small);
  assert_int_equal(bw_tree_json(f.rt, f.root, small, sizeof small, &need), BW_ETOOBIG);
  assert_true(need > sizeof small);
  assert_string_equal(small, "");
  size_t len = 0;
  assert_int_equal(bw_tree_json(f.rt, f.root, NULL, 0, &len), BW_ETOOBIG);
  assert_int_equal(len, need);
  /* exactly the length: no room for the NUL */
  char *b = malloc(need + 1);
  assert_int_equal(bw_tree_json(f.rt, f.root, b, need, &len), BW_ETOOBIG);
  assert_int_equal(bw_tree_json(f.rt, f.root, b, need + 1, &len), 0);
  assert_int_equal(len, need);
  assert_int_equal(strlen(b), need);
  assert_true(bwt_json_valid(b));
  free(b);
  teardown_tree(&f);
}

static void test_bad_input(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  size_t len;
  char b[256];
  assert_int_equal(bw_tree_json(NULL, 1, b, sizeof b, &len), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, BW_PID_NONE, b, sizeof b, &len), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, 1, b, sizeof b, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_json(rt, 1, NULL, 8, &len), BW_EINVAL);
  /* a dead root */
  static const bw_sup_spec_t lone = {.name = "lone", .strategy = BW_ONE_FOR_ONE};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &lone, &sup, NULL), 0);
  assert_int_equal(bw_tree_json(rt, sup, b, sizeof b, &len), 0);
  assert_true(bwt_json_valid(b));
  assert_non_null(strstr(b, "\"children\":[]"));
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_tree_json(rt, sup, b, sizeof b, &len), BW_ENOPROC);
  /* the registry */
  assert_int_equal(bw_tree_annotate_breaker(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_breaker(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_health(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, BW_PID_NONE, ""), BW_EINVAL);
  assert_int_equal(bw_tree_annotate_bulkhead(NULL, 5, NULL), BW_EINVAL);
  assert_int_equal(bw_tree_forget_bulkhead(rt, 5, NULL), BW_ENOTFOUND);
  assert_int_equal(bw_tree_forget_breaker(rt, (bw_breaker_t *)b), BW_ENOTFOUND);
  assert_int_equal(bw_tree_forget_all(NULL), BW_EINVAL);
  for (uint64_t i = 1; i <= 256; i++)
    assert_int_equal(bw_tree_annotate_bulkhead(rt, i, NULL), 0);
  assert_int_equal(bw_tree_annotate_bulkhead(rt, 1, NULL), 0); /* present */
  assert_int_equal(bw_tree_annotate_bulkhead(rt, 257, NULL), BW_ELIMIT);
  assert_int_equal(bw_tree_forget_bulkhead(rt, 1, NULL), 0);
  assert_int_equal(bw_tree_forget_bulkhead(rt, 1, NULL), BW_ENOTFOUND);
  assert_int_equal(bw_tree_forget_all(rt), 255);
  assert_int_equal(bw_tree_forget_all(rt), 0);
  /* after the runtime stopped */
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_tree_json(rt, sup, b, sizeof b, &len), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_three_levels),
      cmocka_unit_test(test_restarted_child),
      cmocka_unit_test(test_buffer_too_small),
      cmocka_unit_test(test_bad_input),
  };
  return BWT_RUN_SUITE(tests);
}
