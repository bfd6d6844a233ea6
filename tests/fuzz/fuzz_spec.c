/*
 * fuzz_spec: bytes -> a forest of supervision specs -> bw_supervisor_validate,
 * checked against a model of the rules (supervisor.h, supervisor/spec.c),
 * and, for small valid trees, bw_supervisor_start + bw_sup_stop on a live
 * runtime checked against a model of the start (init failures, registered
 * name clashes).
 *
 * The input builds up to MAX_SPECS supervisor specs with up to MAX_KIDS
 * children each. A child's nested spec is any of the specs, the ones above
 * it included, so cycles and shared subtrees come up (cut by the depth
 * limit). Ids are NULL, empty, from a small pool (so siblings collide) or
 * arbitrary bytes up to 80 long (over the 63-byte limit); enums take valid
 * values or arbitrary ints; numbers take their boundaries or arbitrary
 * values. A disagreement with the model, or an error report that does not
 * name the offending child, aborts (a crash to libFuzzer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bulwark/bulwark.h"
#include "tests/fuzz/fuzz_input.h"

#define MAX_SPECS 6
#define MAX_KIDS 6
#define ID_MAX 80
#define DEPTH_MAX 32  /* supervisor.h: depth <= 32 */
#define START_MAX 48  /* actors a start may create (the tree, expanded) */

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "fuzz_spec: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

/* --- behaviours ----------------------------------------------------------------- */

static int h_ok(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx, (void)st, (void)m;
  return BW_CONTINUE;
}
static int init_ok(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx, (void)st, (void)arg;
  return 0;
}
static int init_crash(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx, (void)st, (void)arg;
  return BW_ECRASH;
}
static const bw_behaviour_t beh_ok = {.name = "ok", .handle = h_ok};
static const bw_behaviour_t beh_init = {.name = "init", .init = init_ok, .handle = h_ok,
                                        .state_size = 24};
static const bw_behaviour_t beh_crash = {.name = "crash", .init = init_crash, .handle = h_ok};
static const bw_behaviour_t beh_nohandle = {.name = "nohandle", .init = init_ok};

/* --- the specs of one input ------------------------------------------------------- */

typedef struct world {
  bw_sup_spec_t sups[MAX_SPECS];
  bw_child_spec_t kids[MAX_SPECS][MAX_KIDS];
  char sup_names[MAX_SPECS][ID_MAX + 1];
  char ids[MAX_SPECS][MAX_KIDS][ID_MAX + 1];
  char regnames[MAX_SPECS][MAX_KIDS][BW_NAME_MAX + 2];
  unsigned nspecs;
} world_t;

static const char *const id_pool[] = {"a", "b", "worker", "a"};

static int32_t pick_i32(fz_t *f, const int32_t *vals, unsigned n) {
  unsigned k = fz_below(f, n + 1);
  return k < n ? vals[k] : (int32_t)fz_u32(f);
}

static void build_child(fz_t *f, world_t *w, unsigned s, unsigned i) {
  bw_child_spec_t *c = &w->kids[s][i];
  memset(c, 0, sizeof *c);
  char *id = w->ids[s][i];
  switch (fz_below(f, 6)) {
  case 0: c->id = NULL; break;
  case 1: id[0] = '\0'; c->id = id; break;
  case 2: case 3: c->id = id_pool[fz_below(f, 4)]; break;
  default: fz_str(f, id, ID_MAX); c->id = id; break;
  }
  /* what it runs: a behaviour, a nested spec, both or neither */
  unsigned what = fz_below(f, 8);
  static const bw_behaviour_t *const behs[] = {&beh_ok, &beh_init, &beh_crash, &beh_nohandle};
  if (what <= 4 || what == 6)
    c->behaviour = behs[what < 4 ? what : fz_below(f, 4)];
  if (what >= 5)
    c->supervisor = &w->sups[fz_below(f, MAX_SPECS)];
  static const int32_t restarts[] = {BW_PERMANENT, BW_TRANSIENT, BW_TEMPORARY, -1, 3};
  c->restart = (bw_restart_t)pick_i32(f, restarts, 5);
  static const int32_t types[] = {BW_WORKER, BW_SUPERVISOR, -1, 2};
  unsigned t = fz_below(f, 3);
  c->type = t == 0 ? (c->supervisor ? BW_SUPERVISOR : BW_WORKER)
                   : (bw_child_type_t)pick_i32(f, types, 4);
  static const int64_t shut[] = {0, BW_SHUTDOWN_BRUTAL_KILL, BW_SHUTDOWN_INFINITY, -3, 1, 5000,
                                 INT64_MIN, INT64_MAX};
  unsigned k = fz_below(f, 9);
  c->shutdown_ms = k < 8 ? shut[k] : (int64_t)fz_u64(f);
  static const int32_t ovf[] = {BW_OVERFLOW_REJECT, BW_OVERFLOW_DROP, 2, -1};
  c->overflow = fz_below(f, 4) != 0 ? BW_OVERFLOW_REJECT : (bw_overflow_t)pick_i32(f, ovf, 4);
  char *rn = w->regnames[s][i];
  switch (fz_below(f, 8)) {
  case 0: rn[0] = '\0'; c->name = rn; break;
  case 1: memset(rn, 'n', BW_NAME_MAX + 1); rn[BW_NAME_MAX + 1] = '\0'; c->name = rn; break;
  case 2: memset(rn, 'n', BW_NAME_MAX); rn[BW_NAME_MAX] = '\0'; c->name = rn; break;
  case 3: snprintf(rn, BW_NAME_MAX + 2, "fz.%u", fz_below(f, 3)); c->name = rn; break;
  default: c->name = NULL; break;
  }
  uint8_t opts = fz_u8(f);
  c->mailbox_capacity = (opts & 1) ? fz_u8(f) : 0;
  c->dedicated_thread = (opts & 2) != 0;
  c->hang_limit_ms = (opts & 4) ? fz_u16(f) : 0;
  c->hang_is_crash = (opts & 8) != 0;
}

static void build(fz_t *f, world_t *w) {
  memset(w, 0, sizeof *w);
  w->nspecs = 1 + fz_below(f, MAX_SPECS);
  for (unsigned s = 0; s < MAX_SPECS; s++) {
    bw_sup_spec_t *sp = &w->sups[s];
    if (s >= w->nspecs) { /* unused slots: a valid empty spec */
      sp->name = "empty";
      continue;
    }
    if (fz_below(f, 4) == 0) {
      sp->name = NULL;
    } else {
      fz_str(f, w->sup_names[s], ID_MAX);
      sp->name = w->sup_names[s];
    }
    static const int32_t strat[] = {BW_ONE_FOR_ONE, BW_ONE_FOR_ALL, BW_REST_FOR_ONE,
                                    BW_SIMPLE_ONE_FOR_ONE, -1, 4};
    unsigned k = fz_below(f, 4);
    sp->strategy = k < 3 ? (bw_strategy_t)k : (bw_strategy_t)pick_i32(f, strat, 6);
    static const int32_t inten[] = {0, 1, 5, BW_INTENSITY_NONE, -2, 1000000, 1000001,
                                    INT32_MIN, INT32_MAX};
    sp->intensity = fz_bool(f) ? 0 : pick_i32(f, inten, 9);
    static const uint64_t per[] = {0, 5000, 86400000ull, 86400001ull, UINT64_MAX};
    k = fz_below(f, 8);
    sp->period_ms = k < 5 ? per[k] : (k == 5 ? fz_u64(f) : 0);
    if (fz_below(f, 4) == 0) {
      sp->backoff.initial_ms = fz_u64(f);
      sp->backoff.max_ms = fz_u64(f);
      static const uint32_t mul[] = {0, 2, 1000, 1001};
      k = fz_below(f, 5);
      sp->backoff.multiplier = k < 4 ? mul[k] : fz_u32(f);
      static const uint32_t jit[] = {0, 50, 100, 101};
      k = fz_below(f, 5);
      sp->backoff.jitter_pct = k < 4 ? jit[k] : fz_u32(f);
    }
    size_t n = fz_below(f, MAX_KIDS + 1);
    for (unsigned i = 0; i < n; i++)
      build_child(f, w, s, i);
    sp->children = w->kids[s];
    sp->nchildren = n;
    if (n > 0 && fz_below(f, 16) == 0)
      sp->children = NULL; /* nchildren > 0 with no array */
    else if (n == 0 && fz_bool(f))
      sp->children = NULL; /* fine: nothing to read */
  }
}

/* --- the model of bw_supervisor_validate ------------------------------------------- */

/* Which check failed first (in spec.c's order: the supervisor's own fields,
 * then each child: its fields, duplicates among the earlier siblings, its
 * nested spec), as the name the error must carry. */
typedef struct verdict {
  int rc;
  char culprit[BW_SUP_ID_MAX];
} verdict_t;

static int bad(verdict_t *v, const char *who) {
  v->rc = BW_EINVAL;
  snprintf(v->culprit, sizeof v->culprit, "%s", who);
  return BW_EINVAL;
}

static int model_child(const bw_sup_spec_t *s, const bw_child_spec_t *c, size_t i,
                       verdict_t *v) {
  (void)s;
  char idx[32];
  snprintf(idx, sizeof idx, "#%zu", i);
  if (c->id == NULL || c->id[0] == '\0')
    return bad(v, idx);
  if (strlen(c->id) > BW_SUP_ID_MAX - 1)
    return bad(v, c->id);
  int has_b = c->behaviour != NULL, has_s = c->supervisor != NULL;
  if (has_b + has_s != 1)
    return bad(v, c->id);
  if (has_b && c->behaviour->handle == NULL)
    return bad(v, c->id);
  int r = (int)c->restart, t = (int)c->type, o = (int)c->overflow;
  if (r < BW_PERMANENT || r > BW_TEMPORARY)
    return bad(v, c->id);
  if (t != BW_WORKER && t != BW_SUPERVISOR)
    return bad(v, c->id);
  if (t == BW_SUPERVISOR && !has_s)
    return bad(v, c->id);
  if (c->shutdown_ms < -2)
    return bad(v, c->id);
  if (o != BW_OVERFLOW_REJECT && o != BW_OVERFLOW_DROP)
    return bad(v, c->id);
  if (c->name != NULL && (c->name[0] == '\0' || strlen(c->name) > BW_NAME_MAX))
    return bad(v, c->id);
  return 0;
}

static int model_sup(const bw_sup_spec_t *s, int depth, verdict_t *v) {
  const char *pn = s->name ? s->name : "(unnamed)";
  int strat = (int)s->strategy;
  if (depth > DEPTH_MAX || strat < BW_ONE_FOR_ONE || strat > BW_SIMPLE_ONE_FOR_ONE ||
      s->intensity < -1 || s->intensity > 1000000 || s->period_ms > 86400000ull ||
      s->backoff.jitter_pct > 100 || s->backoff.multiplier > 1000 ||
      (s->nchildren > 0 && s->children == NULL) ||
      (strat == BW_SIMPLE_ONE_FOR_ONE && s->nchildren != 1))
    return bad(v, pn);
  for (size_t i = 0; i < s->nchildren; i++) {
    const bw_child_spec_t *c = &s->children[i];
    if (model_child(s, c, i, v) != 0)
      return BW_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->children[j].id, c->id) == 0)
        return bad(v, c->id);
    if (c->supervisor != NULL && model_sup(c->supervisor, depth + 1, v) != 0)
      return BW_EINVAL;
  }
  return 0;
}

/* --- the model of a start ---------------------------------------------------------- */

/* Actors a start creates (the root too), capped at limit + 1. */
static unsigned tree_size(const bw_sup_spec_t *s, unsigned limit) {
  unsigned n = 1;
  if (s->strategy == BW_SIMPLE_ONE_FOR_ONE)
    return n; /* the template starts nothing */
  for (size_t i = 0; i < s->nchildren && n <= limit; i++)
    n += s->children[i].supervisor ? tree_size(s->children[i].supervisor, limit) : 1;
  return n;
}

/* The first child that fails to start, in start order (depth first,
 * declaration order), and the path the error names, as supervisor.c's
 * fill_error builds it: "id/subpath" cut to 63 bytes at each level. */
typedef struct start_model {
  const char *names[START_MAX + 1];
  unsigned nnames;
} start_model_t;

/* bw_spawn registers a name before init runs: BW_EEXIST if taken. */
static int model_register(start_model_t *m, const char *name) {
  if (name == NULL)
    return 0;
  for (unsigned k = 0; k < m->nnames; k++)
    if (strcmp(m->names[k], name) == 0)
      return BW_EEXIST;
  m->names[m->nnames++] = name;
  return 0;
}

static int model_start(const bw_sup_spec_t *s, start_model_t *m, char *path) {
  if (s->strategy == BW_SIMPLE_ONE_FOR_ONE)
    return 0;
  for (size_t i = 0; i < s->nchildren; i++) {
    const bw_child_spec_t *c = &s->children[i];
    int rc = 0;
    char sub[BW_SUP_ID_MAX] = "";
    if (c->supervisor != NULL) {
      /* a nested supervisor takes its child spec's name, then starts its
       * children (its own spec's name is not registered) */
      rc = model_register(m, c->name);
      if (rc == 0)
        rc = model_start(c->supervisor, m, sub);
    } else {
      rc = model_register(m, c->name);
      if (rc == 0 && c->behaviour == &beh_crash)
        rc = BW_ECRASH;
    }
    if (rc != 0) {
      char full[2 * BW_SUP_ID_MAX + 2];
      snprintf(full, sizeof full, sub[0] != '\0' ? "%s/%s" : "%s", c->id, sub);
      snprintf(path, BW_SUP_ID_MAX, "%.63s", full);
      return rc;
    }
  }
  return 0;
}


/* --- the runtime, once per process ------------------------------------------------ */

static bw_runtime_t *g_rt;
static uint64_t g_inputs, g_valid, g_starts, g_started;

static void rt_down(void) {
  if (getenv("BW_FUZZ_STATS") != NULL)
    fprintf(stderr, "fuzz_spec: %llu inputs, %llu valid, %llu starts (%llu up)\n",
            (unsigned long long)g_inputs, (unsigned long long)g_valid,
            (unsigned long long)g_starts, (unsigned long long)g_started);
  bw_runtime_destroy(g_rt);
  g_rt = NULL;
}

static bw_runtime_t *rt_get(void) {
  if (g_rt == NULL) {
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    o.log_level = BW_LOG_OFF; /* inputs crash actors by the thousand: no reports */
    o.workers = 2;
    o.manual_clock = true;
    CHECK(bw_runtime_create(&o, &g_rt) == 0);
  }
  return g_rt;
}

static uint64_t live_now(void) {
  bw_runtime_stats_t st;
  CHECK(bw_runtime_stats(g_rt, &st) == 0);
  return st.live;
}

static void try_start(const bw_sup_spec_t *root) {
  bw_runtime_t *rt = rt_get();
  uint64_t live0 = live_now();
  start_model_t m = {.nnames = 0};
  char path[BW_SUP_ID_MAX] = "";
  /* the root is registered under its spec's name (unless NULL or "") */
  int want = model_register(&m, root->name != NULL && root->name[0] != '\0' ? root->name : NULL);
  if (want != 0)
    snprintf(path, sizeof path, "%.63s", root->name); /* err names the root */
  else
    want = model_start(root, &m, path);
  bw_pid_t sup = BW_PID_NONE;
  bw_sup_error_t err;
  memset(&err, 0x5A, sizeof err);
  int rc = bw_supervisor_start(rt, root, &sup, &err);
  g_starts++;
  g_started += rc == 0;
  if (rc != want)
    fprintf(stderr, "fuzz_spec: start gave %s, the model %s (%s: %s)\n", bw_err_name(rc),
            bw_err_name(want), err.child, err.message);
  CHECK(rc == want);
  if (rc == 0) {
    CHECK(bw_is_alive(rt, sup));
    bw_child_counts_t cc;
    CHECK(bw_sup_count_children(rt, sup, &cc) == 0);
    size_t expect = root->strategy == BW_SIMPLE_ONE_FOR_ONE ? 0 : root->nchildren;
    CHECK(cc.active == expect);
    CHECK(bw_sup_stop(rt, sup) == 0);
    CHECK(!bw_is_alive(rt, sup));
  } else {
    CHECK(err.code == rc);
    CHECK(memchr(err.child, '\0', sizeof err.child) != NULL);
    if (strcmp(err.child, path) != 0)
      fprintf(stderr, "fuzz_spec: start error names '%s', the model '%s'\n", err.child, path);
    CHECK(strcmp(err.child, path) == 0);
  }
  /* everything it started is gone: exits finish asynchronously after the
   * supervisor's own, so poll (bounded: a leak is a failure) */
  for (unsigned spins = 0; live_now() != live0; spins++) {
    CHECK(spins < 2000000);
    if (spins > 100) {
      struct timespec ts = {0, 100 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_t f = fz_init(data, size);
  uint8_t mode = fz_u8(&f);
  static world_t w; /* static: about 8 KiB, and specs must outlive a start */
  build(&f, &w);
  if (g_inputs++ == 0)
    atexit(rt_down);

  /* which spec is the root: any of them (a nested one too) */
  const bw_sup_spec_t *root = &w.sups[mode % w.nspecs];
  verdict_t v = {0, ""};
  int want = model_sup(root, 1, &v);
  bw_sup_error_t err;
  memset(&err, 0x5A, sizeof err);
  int rc = bw_supervisor_validate(root, (mode & 0x80) ? &err : NULL);
  if (rc != want)
    fprintf(stderr, "fuzz_spec: validate gave %d, the model %d (culprit '%s')\n", rc, want,
            v.culprit);
  CHECK(rc == want);
  if ((mode & 0x80) && rc != 0) {
    CHECK(err.code == BW_EINVAL);
    CHECK(memchr(err.child, '\0', sizeof err.child) != NULL);
    CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
    CHECK(err.message[0] != '\0');
    CHECK(err.reason.kind == BW_REASON_CRASH && err.reason.code == BW_EINVAL);
    if (strcmp(err.child, v.culprit) != 0)
      fprintf(stderr, "fuzz_spec: error names '%s', the model '%s' (%s)\n", err.child,
              v.culprit, err.message);
    CHECK(strcmp(err.child, v.culprit) == 0);
  }
  CHECK(bw_supervisor_validate(NULL, NULL) == BW_EINVAL);
  g_valid += rc == 0;

  /* a start of a small valid tree: bit 6 asks for it */
  /* (trees with a killed nested supervisor included: they leaked its
   * arrays until the behaviour's cleanup hook; regress/fuzz_spec/
   * leak-killed-supervisor) */
  if (rc == 0 && (mode & 0x40) && tree_size(root, START_MAX) <= START_MAX)
    try_start(root);
  return 0;
}
