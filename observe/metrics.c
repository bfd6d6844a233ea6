/*
 * bulwark: the metrics registry and the reporter actor (see
 * include/bulwark/metrics.h and observe/METRICS.md).
 *
 * Three kinds of storage, by who writes:
 * - Counters and histograms that user code updates on hot paths live in a
 *   cell arena: BW_METRICS_THREADS slots of max_cells 8-byte cells. Each
 *   thread owns one slot (claimed on its first update, recycled at its
 *   exit), so an update is a relaxed load and a relaxed store of its own
 *   cell: no lock prefix, and no cache line shared with another writer,
 *   since slots are max_cells * 8 bytes apart. Threads beyond the private
 *   slots share the last one with atomic adds. The reporter sums a series'
 *   cell over the slots at collection. Rejected: one atomic add per update
 *   on a shared word (a locked instruction, and a contended line with two
 *   busy threads), and per-series padded shards (a cache line per thread per
 *   series: 4 KB per counter).
 * - Gauges are one atomic word (a double's bits): a gauge is set, not
 *   summed, so it cannot be split by thread.
 * - Collected series (the runtime's counters, breakers, pools, retry
 *   policies) hold the value the reporter read from their source, in the
 *   same word; only the reporter writes them.
 * Families, series, sources and subscribers are guarded by one mutex that
 * only registration and the reporter's collection take; no update does.
 *
 * The reporter publishes each collection as an immutable, reference-counted
 * snapshot: latest (for readers on any thread, e.g. the HTTP observer) and
 * one reference per subscriber, sent as a moved pointer whose destructor
 * releases it. latest is swapped under a small mutex held for a pointer
 * swap and a reference increment: a lock-free swap would need split
 * reference counts (a reader's increment can race with the last release),
 * and readers come at scrape rate, not at message rate.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/metrics.h"
#include "bulwark/registry.h"
#include "bulwark/retry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "observe/histogram.h"
#include "runtime/atomic.h"

#define METRICS_MAGIC 0x4d455452u
#define NO_CELL UINT32_MAX
#define SHARED_SLOT (BW_METRICS_THREADS - 1u)
#define MAX_PERIOD_MS 86400000ull
#define MAX_WAITERS 8u
#define SRC_SERIES_MAX 16u

/* The reporter's internal messages. */
enum {
  M_TICK = BW_MSG_METRICS_BASE + 0x80, /* timer: collect */
  M_COLLECT,                           /* request (bw_metrics_collect): collect, answer when published */
  M_RECHECK,                           /* a pool source was removed while asked: maybe publish */
};

/* --- Thread slots ---------------------------------------------------------- */

/* Private slots in use (bit i = slot i, i < SHARED_SLOT), process-wide: a
 * thread has the same slot in every registry. */
static uint64_t slot_bits;
/* One past the highest private slot ever claimed: the collector sums only
 * slots below it, plus the shared one. */
static uint32_t slot_hwm;
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
/* This thread's slot + 1; 0 = none claimed yet. */
static _Thread_local uint32_t tl_slot;

static void slot_release(void *p) {
  uint32_t s = (uint32_t)(uintptr_t)p - 1u;
  /* Updates from later thread-exit destructors go to the shared slot: this
   * one may be someone else's from the next line on. */
  tl_slot = SHARED_SLOT + 1u;
  if (s >= SHARED_SLOT)
    return;
  for (;;) {
    uint64_t b = bw__ld64_rlx(&slot_bits);
    /* acq_rel (bw__cas64): release, so this thread's cell stores
     * happen-before the loads of the thread that claims the slot next */
    if (bw__cas64(&slot_bits, b, b & ~(1ull << s)))
      return;
  }
}

static void slot_key_make(void) { (void)pthread_key_create(&slot_key, slot_release); }

static uint32_t slot_claim(void) {
  pthread_once(&slot_once, slot_key_make);
  uint32_t s = SHARED_SLOT;
  for (;;) {
    uint64_t b = bw__ld64_rlx(&slot_bits);
    uint64_t free_bits = ~b & ((1ull << SHARED_SLOT) - 1u);
    if (free_bits == 0)
      break;
    uint32_t i = (uint32_t)__builtin_ctzll(free_bits);
    /* acquire (bw__cas64 is acq_rel): see the previous owner's stores to
     * the cells before adding to them */
    if (bw__cas64(&slot_bits, b, b | (1ull << i))) {
      s = i;
      break;
    }
  }
  if (s != SHARED_SLOT) {
    for (;;) {
      uint32_t h = bw__ld32_rlx(&slot_hwm);
      /* acq_rel CAS; only monotonicity matters: a collector that reads an
       * older hwm misses a slot created after it started, whose updates
       * are then simply counted by the next collection */
      if (h > s || bw__cas32(&slot_hwm, h, s + 1u))
        break;
    }
    (void)pthread_setspecific(slot_key, (void *)(uintptr_t)(s + 1u));
  }
  tl_slot = s + 1u;
  return s + 1u;
}

static inline uint32_t my_slot(void) {
  uint32_t t = tl_slot;
  return t != 0 ? t - 1u : slot_claim() - 1u;
}

/* --- Data ------------------------------------------------------------------ */

typedef struct met_series {
  /* Read by updates: first on purpose. */
  uint32_t kind;   /* bw_metric_type_t */
  uint32_t cell;   /* first cell, or NO_CELL (gauges, collected series) */
  uint64_t *base;  /* &cells[cell] in slot 0 */
  size_t stride;   /* cells per slot */
  uint64_t bits;   /* gauge: a double's bits; collected counter: its value */
  /* Cold. */
  struct bw_metric_family *fam;
  bool collected;  /* value set by the reporter */
  bool present;    /* in snapshots (a removed source's series are not) */
  const char **lv; /* label values */
} met_series_t;

struct bw_metric_family {
  bw_metrics_t *m;
  int type;
  char *name;
  char *help;
  size_t nlabels;
  char *labels[BW_METRICS_LABELS_MAX];
  met_series_t **series;
  size_t nseries, capseries;
};

enum { SRC_BREAKER = 1, SRC_BULKHEAD, SRC_RETRY, SRC_ACTOR };

typedef struct met_src {
  int kind;
  const void *ptr; /* breaker, retry policy */
  bw_pid_t pid;    /* pool (BW_PID_NONE: look name up) */
  char name[BW_METRICS_VALUE_MAX + 1];
  met_series_t *s[SRC_SERIES_MAX];
  size_t ns;
  uint64_t ref; /* pool: the metrics request in flight, 0 if none */
} met_src_t;

struct bw_metrics {
  uint32_t magic;
  bw_runtime_t *rt;
  bw_metrics_opts_t o;
  uint64_t *cells; /* BW_METRICS_THREADS * o.max_cells */
  uint64_t pid;    /* the actor's bw_pid_t (atomic) */

  pthread_mutex_t mu; /* guards everything below */
  uint32_t ncells;
  bw_metric_family_t **fams;
  size_t nfams;
  met_src_t **srcs;
  size_t nsrcs, capsrcs;
  bw_pid_t subs[BW_METRICS_SUBSCRIBERS_MAX];
  size_t nsubs;
  bool started; /* the actor was spawned by bw_metrics_start */
  bw_timer_t timer;
  /* the actor's collection in progress */
  bool collecting;
  uint64_t seq;
  bw_msg_t waiters[MAX_WAITERS];
  size_t nwaiters;
  /* built-in families */
  bw_metric_family_t *f_sent, *f_handled, *f_rejected, *f_dead, *f_spawned, *f_exited,
      *f_crashed, *f_live, *f_restarts, *f_transitions, *f_util;
  met_series_t *s_sent, *s_handled, *s_rejected, *s_dead[BW_DL__COUNT], *s_spawned,
      *s_exited, *s_crashed, *s_live, *s_util;
  /* the previous collection's uptime and idle time, for utilisation */
  uint64_t util_uptime, util_idle;

  pthread_mutex_t latest_mu; /* guards latest */
  bw_metrics_snapshot_t *latest;
};

typedef struct snap_fam {
  bw_metric_family_info_t info;
  size_t first; /* index of its first series */
} snap_fam_t;

struct bw_metrics_snapshot {
  uint64_t refs;
  uint64_t seq, time_ns;
  size_t nfam, nser;
  snap_fam_t *fam;
  bw_metric_series_info_t *ser;
  const char **ptrs; /* label names and values */
  uint64_t *buckets;
  char *str;
};

/* --- Names ------------------------------------------------------------------ */

static bool name_ok(const char *s, bool metric) {
  if (s == NULL || *s == '\0' || strlen(s) > BW_METRICS_NAME_MAX)
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (metric && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && p != s))
      return false;
  }
  /* label names starting with __ are reserved for Prometheus' own use */
  return metric || !(s[0] == '_' && s[1] == '_');
}

/* The series names a family exposes: itself, or x_bucket, x_sum, x_count. */
static size_t exposed_names(int type, const char *name, char out[3][BW_METRICS_NAME_MAX + 8]) {
  if (type != BW_METRIC_HISTOGRAM) {
    strcpy(out[0], name);
    return 1;
  }
  static const char *const suffix[3] = {"_bucket", "_sum", "_count"};
  for (int i = 0; i < 3; i++) {
    strcpy(out[i], name);
    strcat(out[i], suffix[i]);
  }
  return 3;
}

static bool names_clash(const bw_metric_family_t *f, int type, const char *name) {
  char a[3][BW_METRICS_NAME_MAX + 8], b[3][BW_METRICS_NAME_MAX + 8];
  size_t na = exposed_names(f->type, f->name, a), nb = exposed_names(type, name, b);
  if (strcmp(f->name, name) == 0)
    return true;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++)
      if (strcmp(a[i], b[j]) == 0)
        return true;
  return false;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* --- Families and series (under m->mu) ------------------------------------ */

static void family_free(bw_metric_family_t *f) {
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->nseries; i++) {
    met_series_t *s = f->series[i];
    for (size_t j = 0; j < f->nlabels; j++)
      free((void *)s->lv[j]);
    free(s->lv);
    free(s);
  }
  free(f->series);
  for (size_t j = 0; j < f->nlabels; j++)
    free(f->labels[j]);
  free(f->name);
  free(f->help);
  free(f);
}

static bw_metric_family_t *family_find(bw_metrics_t *m, const char *name) {
  for (size_t i = 0; i < m->nfams; i++)
    if (strcmp(m->fams[i]->name, name) == 0)
      return m->fams[i];
  return NULL;
}

static int family_add_locked(bw_metrics_t *m, int type, const char *name, const char *help,
                             const char *const *labels, size_t nlabels,
                             bw_metric_family_t **out) {
  if (type < BW_METRIC_COUNTER || type > BW_METRIC_HISTOGRAM || !name_ok(name, true) ||
      nlabels > BW_METRICS_LABELS_MAX || (nlabels > 0 && labels == NULL) ||
      (help != NULL && strlen(help) > BW_METRICS_HELP_MAX))
    return BW_EINVAL;
  for (size_t i = 0; i < nlabels; i++) {
    if (!name_ok(labels[i], false))
      return BW_EINVAL;
    if (type == BW_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)
      return BW_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(labels[i], labels[j]) == 0)
        return BW_EINVAL;
  }
  for (size_t i = 0; i < m->nfams; i++)
    if (names_clash(m->fams[i], type, name))
      return BW_EEXIST;
  if (m->nfams >= m->o.max_families)
    return BW_ELIMIT;
  bw_metric_family_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return BW_ENOMEM;
  f->m = m;
  f->type = type;
  f->name = dupstr(name);
  f->help = dupstr(help != NULL ? help : "");
  bool ok = f->name != NULL && f->help != NULL;
  for (size_t i = 0; i < nlabels && ok; i++) {
    f->labels[i] = dupstr(labels[i]);
    f->nlabels = i + 1;
    ok = f->labels[i] != NULL;
  }
  if (!ok) {
    family_free(f);
    return BW_ENOMEM;
  }
  m->fams[m->nfams++] = f;
  *out = f;
  return 0;
}

/* A built-in family: the existing one if it has this shape, else a new one. */
static int family_ensure_locked(bw_metrics_t *m, int type, const char *name, const char *help,
                                const char *const *labels, size_t nlabels,
                                bw_metric_family_t **out) {
  bw_metric_family_t *f = family_find(m, name);
  if (f == NULL)
    return family_add_locked(m, type, name, help, labels, nlabels, out);
  if (f->type != type || f->nlabels != nlabels)
    return BW_EEXIST;
  for (size_t i = 0; i < nlabels; i++)
    if (strcmp(f->labels[i], labels[i]) != 0)
      return BW_EEXIST;
  *out = f;
  return 0;
}

static met_series_t *series_find(bw_metric_family_t *f, const char *const *lv) {
  for (size_t i = 0; i < f->nseries; i++) {
    met_series_t *s = f->series[i];
    size_t j = 0;
    while (j < f->nlabels && strcmp(s->lv[j], lv[j]) == 0)
      j++;
    if (j == f->nlabels)
      return s;
  }
  return NULL;
}

/* The series for lv, created if new; collected: its value comes from the
 * reporter (no cells). */
static int series_get_locked(bw_metric_family_t *f, const char *const *lv, bool collected,
                             met_series_t **out) {
  bw_metrics_t *m = f->m;
  if (f->nlabels > 0 && lv == NULL)
    return BW_EINVAL;
  for (size_t i = 0; i < f->nlabels; i++)
    if (lv[i] == NULL || strlen(lv[i]) > BW_METRICS_VALUE_MAX)
      return BW_EINVAL;
  met_series_t *s = series_find(f, lv);
  if (s != NULL) {
    if (s->collected != collected)
      return BW_EEXIST;
    *out = s;
    return 0;
  }
  if (f->nseries >= m->o.max_series)
    return BW_ELIMIT;
  uint32_t ncells = 0;
  if (!collected)
    ncells = f->type == BW_METRIC_COUNTER ? 1u
             : f->type == BW_METRIC_HISTOGRAM ? BW_HISTOGRAM_CELLS
                                              : 0u;
  if (ncells > m->o.max_cells - m->ncells)
    return BW_ELIMIT;
  if (f->nseries == f->capseries) {
    size_t cap = f->capseries ? f->capseries * 2 : 4;
    met_series_t **ns = realloc(f->series, cap * sizeof *ns);
    if (ns == NULL)
      return BW_ENOMEM;
    f->series = ns;
    f->capseries = cap;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return BW_ENOMEM;
  s->lv = calloc(f->nlabels + 1, sizeof *s->lv);
  bool ok = s->lv != NULL;
  for (size_t i = 0; i < f->nlabels && ok; i++)
    ok = (s->lv[i] = dupstr(lv[i])) != NULL;
  if (!ok) {
    if (s->lv != NULL)
      for (size_t i = 0; i < f->nlabels; i++)
        free((void *)s->lv[i]);
    free(s->lv);
    free(s);
    return BW_ENOMEM;
  }
  s->kind = (uint32_t)f->type;
  s->fam = f;
  s->collected = collected;
  s->present = true;
  s->stride = m->o.max_cells;
  if (ncells > 0) {
    s->cell = m->ncells;
    s->base = &m->cells[s->cell];
    m->ncells += ncells;
  } else {
    s->cell = NO_CELL;
  }
  f->series[f->nseries++] = s;
  *out = s;
  return 0;
}

/* --- Options, lifecycle ------------------------------------------------------ */

void bw_metrics_opts_init(bw_metrics_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->period_ms = 1000;
  o->runtime_metrics = true;
  o->max_families = 256;
  o->max_series = 1024;
  o->max_cells = 65536;
}

static bool opts_ok(const bw_metrics_opts_t *o) {
  return o->period_ms >= 1 && o->period_ms <= MAX_PERIOD_MS && o->max_families >= 1 &&
         o->max_families <= 4096 && o->max_series >= 1 && o->max_series <= 65536 &&
         o->max_cells >= 64 && o->max_cells <= (1u << 22);
}

static uint64_t dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static double bitsd(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

static int add_runtime_families(bw_metrics_t *m) {
  static const char *const reason[] = {"reason"};
  static const char *const restart_labels[] = {"supervisor", "child"};
  static const char *const trans_labels[] = {"breaker", "from", "to"};
  int rc = 0;
#define FAM(var, type, name, help, labels, n)                                                 \
  if (rc == 0)                                                                                \
  rc = family_add_locked(m, type, name, help, labels, n, &m->var)
#define SER(fam, var, lv)                                                                     \
  if (rc == 0)                                                                                \
  rc = series_get_locked(m->fam, lv, true, &m->var)
  FAM(f_sent, BW_METRIC_COUNTER, "bulwark_messages_sent_total",
      "User messages accepted by the runtime (queued or dead-lettered).", NULL, 0);
  SER(f_sent, s_sent, NULL);
  FAM(f_handled, BW_METRIC_COUNTER, "bulwark_messages_handled_total",
      "User messages passed to a handler.", NULL, 0);
  SER(f_handled, s_handled, NULL);
  FAM(f_rejected, BW_METRIC_COUNTER, "bulwark_messages_rejected_total",
      "Sends refused by a full bounded mailbox (reject policy).", NULL, 0);
  SER(f_rejected, s_rejected, NULL);
  FAM(f_dead, BW_METRIC_COUNTER, "bulwark_dead_letters_total", "Dead letters, by reason.",
      reason, 1);
  for (int i = 0; i < BW_DL__COUNT; i++) {
    const char *lv[1] = {bw_dead_reason_name(i)};
    SER(f_dead, s_dead[i], lv);
  }
  FAM(f_spawned, BW_METRIC_COUNTER, "bulwark_actors_spawned_total",
      "Actors whose init succeeded.", NULL, 0);
  SER(f_spawned, s_spawned, NULL);
  FAM(f_exited, BW_METRIC_COUNTER, "bulwark_actors_exited_total",
      "Actors that exited after a successful init.", NULL, 0);
  SER(f_exited, s_exited, NULL);
  FAM(f_crashed, BW_METRIC_COUNTER, "bulwark_actors_crashed_total",
      "Actors that exited with reason crash.", NULL, 0);
  SER(f_crashed, s_crashed, NULL);
  FAM(f_live, BW_METRIC_GAUGE, "bulwark_actors_live", "Actors alive now.", NULL, 0);
  SER(f_live, s_live, NULL);
  FAM(f_util, BW_METRIC_GAUGE, "bulwark_scheduler_utilisation",
      "Share of the scheduler workers' time not parked since the previous collection (0..1).",
      NULL, 0);
  SER(f_util, s_util, NULL);
  FAM(f_restarts, BW_METRIC_COUNTER, "bulwark_actor_restarts_total",
      "Children restarted by their supervisor (counted from events while the reporter runs).",
      restart_labels, 2);
  FAM(f_transitions, BW_METRIC_COUNTER, "bulwark_breaker_state_changes_total",
      "Circuit breaker state changes (counted from events while the reporter runs).",
      trans_labels, 3);
#undef FAM
#undef SER
  return rc;
}

int bw_metrics_new(bw_runtime_t *rt, const bw_metrics_opts_t *opts, bw_metrics_t **out) {
  bw_metrics_opts_t o;
  if (opts != NULL)
    o = *opts;
  else
    bw_metrics_opts_init(&o);
  if (rt == NULL || out == NULL || !opts_ok(&o))
    return BW_EINVAL;
  bw_metrics_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return BW_ENOMEM;
  m->magic = METRICS_MAGIC;
  m->rt = rt;
  m->o = o;
  /* calloc of a large block maps zero pages lazily: a slot's pages are
   * touched only by a thread that updates */
  m->cells = calloc((size_t)BW_METRICS_THREADS * o.max_cells, sizeof *m->cells);
  m->fams = calloc(o.max_families, sizeof *m->fams);
  if (m->cells == NULL || m->fams == NULL) {
    free(m->cells);
    free(m->fams);
    free(m);
    return BW_ENOMEM;
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->latest_mu, NULL);
  if (o.runtime_metrics) {
    int rc = add_runtime_families(m);
    if (rc != 0) {
      m->magic = 0;
      for (size_t i = 0; i < m->nfams; i++)
        family_free(m->fams[i]);
      pthread_mutex_destroy(&m->mu);
      pthread_mutex_destroy(&m->latest_mu);
      free(m->cells);
      free(m->fams);
      free(m);
      return rc;
    }
  }
  *out = m;
  return 0;
}

static bool valid(const bw_metrics_t *m) { return m != NULL && m->magic == METRICS_MAGIC; }

bw_pid_t bw_metrics_pid(const bw_metrics_t *m) {
  /* relaxed: a snapshot of who runs now, like bw_breaker_pid */
  return valid(m) ? bw__ld64_rlx(&m->pid) : BW_PID_NONE;
}

int bw_metrics_child_spec(bw_metrics_t *m, const char *id, bw_child_spec_t *out) {
  if (!valid(m) || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_metrics_behaviour;
  out->arg = m;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

int bw_metrics_start(bw_metrics_t *m) {
  if (!valid(m))
    return BW_EINVAL;
  bw_pid_t pid;
  int rc = bw_spawn(m->rt, &bw_metrics_behaviour, m, NULL, &pid);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&m->mu);
  m->started = true;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int bw_metrics_create(bw_runtime_t *rt, const bw_metrics_opts_t *opts, bw_metrics_t **out) {
  bw_metrics_t *m;
  int rc = bw_metrics_new(rt, opts, &m);
  if (rc != 0)
    return rc;
  rc = bw_metrics_start(m);
  if (rc != 0) {
    bw_metrics_destroy(m);
    return rc;
  }
  *out = m;
  return 0;
}

int bw_metrics_stop(bw_metrics_t *m) {
  if (!valid(m))
    return BW_EINVAL;
  bw_pid_t pid = bw_metrics_pid(m);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  pthread_mutex_lock(&m->mu);
  bool started = m->started;
  pthread_mutex_unlock(&m->mu);
  if (!started)
    return BW_ESTATE; /* its supervisor would only restart it */
  /* Refuse on a scheduler thread before the actor is told to stop, so that
   * BW_EWOULDBLOCK leaves it running (and bw_metrics_destroy frees nothing). */
  if (!bw_may_block(m->rt))
    return BW_EWOULDBLOCK;
  int rc = bw_exit(m->rt, pid, BW_REASON_SHUTDOWN, 0, "metrics stop");
  if (rc != 0)
    return rc;
  rc = bw_wait_exit(m->rt, pid, 0, NULL);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&m->mu);
  m->started = false;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int bw_metrics_destroy(bw_metrics_t *m) {
  if (!valid(m))
    return 0;
  /* The pid is cleared by the actor's terminate: a registry whose actor
   * ended (runtime stopped too) never touches the runtime here. */
  bw_pid_t pid = bw_metrics_pid(m);
  if (pid != BW_PID_NONE && bw_is_alive(m->rt, pid)) {
    pthread_mutex_lock(&m->mu);
    bool started = m->started;
    pthread_mutex_unlock(&m->mu);
    if (!started)
      return BW_ERUNNING;
    int rc = bw_metrics_stop(m);
    if (rc != 0 && rc != BW_ENOPROC)
      return rc;
  }
  m->magic = 0;
  for (size_t i = 0; i < m->nfams; i++)
    family_free(m->fams[i]);
  for (size_t i = 0; i < m->nsrcs; i++)
    free(m->srcs[i]);
  free(m->srcs);
  bw_metrics_snapshot_release(m->latest);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->latest_mu);
  free(m->cells);
  free(m->fams);
  free(m);
  return 0;
}

/* --- Public registration ----------------------------------------------------- */

int bw_metrics_family(bw_metrics_t *m, bw_metric_type_t type, const char *name,
                      const char *help, const char *const *label_names, size_t nlabels,
                      bw_metric_family_t **out) {
  if (!valid(m) || out == NULL)
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  int rc = family_add_locked(m, (int)type, name, help, label_names, nlabels, out);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static int series_public(bw_metric_family_t *f, int type, const char *const *lv, void **out) {
  if (f == NULL || out == NULL || !valid(f->m) || f->type != type)
    return BW_EINVAL;
  pthread_mutex_lock(&f->m->mu);
  met_series_t *s = NULL;
  int rc = series_get_locked(f, lv, false, &s);
  pthread_mutex_unlock(&f->m->mu);
  if (rc == BW_EEXIST) /* a collected series of a built-in family */
    rc = BW_EINVAL;
  if (rc == 0)
    *out = s;
  return rc;
}

int bw_metrics_counter(bw_metric_family_t *f, const char *const *lv, bw_counter_t **out) {
  return series_public(f, BW_METRIC_COUNTER, lv, (void **)out);
}

int bw_metrics_gauge(bw_metric_family_t *f, const char *const *lv, bw_gauge_t **out) {
  return series_public(f, BW_METRIC_GAUGE, lv, (void **)out);
}

int bw_metrics_histogram(bw_metric_family_t *f, const char *const *lv, bw_histogram_t **out) {
  return series_public(f, BW_METRIC_HISTOGRAM, lv, (void **)out);
}

static int plain_new(bw_metrics_t *m, int type, const char *name, const char *help,
                     void **out) {
  if (out == NULL)
    return BW_EINVAL;
  bw_metric_family_t *f;
  int rc = bw_metrics_family(m, (bw_metric_type_t)type, name, help, NULL, 0, &f);
  if (rc != 0)
    return rc;
  return series_public(f, type, NULL, out);
}

int bw_metrics_counter_new(bw_metrics_t *m, const char *name, const char *help,
                           bw_counter_t **out) {
  return plain_new(m, BW_METRIC_COUNTER, name, help, (void **)out);
}

int bw_metrics_gauge_new(bw_metrics_t *m, const char *name, const char *help, bw_gauge_t **out) {
  return plain_new(m, BW_METRIC_GAUGE, name, help, (void **)out);
}

int bw_metrics_histogram_new(bw_metrics_t *m, const char *name, const char *help,
                             bw_histogram_t **out) {
  return plain_new(m, BW_METRIC_HISTOGRAM, name, help, (void **)out);
}

/* --- Updates ------------------------------------------------------------------ */

int bw_counter_add(bw_counter_t *c, uint64_t n) {
  met_series_t *s = (met_series_t *)c;
  if (s == NULL || s->kind != BW_METRIC_COUNTER || s->cell == NO_CELL)
    return BW_EINVAL;
  uint32_t t = my_slot();
  uint64_t *p = s->base + (size_t)t * s->stride;
  if (t != SHARED_SLOT)
    /* relaxed load and store, not an atomic add: only this thread writes
     * this cell; the collector needs its latest value, no ordering */
    bw__st64_rlx(p, bw__ld64_rlx(p) + n);
  else
    (void)bw__faa64(p, n); /* shared slot: several writers */
  return 0;
}

int bw_gauge_set(bw_gauge_t *g, double v) {
  met_series_t *s = (met_series_t *)g;
  if (s == NULL || s->kind != BW_METRIC_GAUGE || s->collected)
    return BW_EINVAL;
  /* relaxed: the value is all there is to see */
  bw__st64_rlx(&s->bits, dbits(v));
  return 0;
}

int bw_gauge_add(bw_gauge_t *g, double d) {
  met_series_t *s = (met_series_t *)g;
  if (s == NULL || s->kind != BW_METRIC_GAUGE || s->collected)
    return BW_EINVAL;
  for (;;) {
    uint64_t old = bw__ld64_rlx(&s->bits);
    /* CAS: concurrent adds must not lose one another */
    if (bw__cas64(&s->bits, old, dbits(bitsd(old) + d)))
      return 0;
  }
}

int bw_histogram_record(bw_histogram_t *h, uint64_t ns) {
  met_series_t *s = (met_series_t *)h;
  if (s == NULL || s->kind != BW_METRIC_HISTOGRAM || s->cell == NO_CELL)
    return BW_EINVAL;
  uint32_t t = my_slot();
  uint64_t *b = s->base + (size_t)t * s->stride;
  unsigned i = bw__hist_index(ns);
  if (t != SHARED_SLOT) {
    /* relaxed, as in bw_counter_add: the cells are this thread's. The
     * bucket is written before the sum, but the collector does not rely on
     * any order: _count comes from the buckets alone. */
    bw__st64_rlx(&b[i], bw__ld64_rlx(&b[i]) + 1);
    bw__st64_rlx(&b[BW__HIST_SUM], bw__ld64_rlx(&b[BW__HIST_SUM]) + ns);
    if (ns > bw__ld64_rlx(&b[BW__HIST_MAX]))
      bw__st64_rlx(&b[BW__HIST_MAX], ns);
    return 0;
  }
  (void)bw__faa64(&b[i], 1);
  (void)bw__faa64(&b[BW__HIST_SUM], ns);
  for (;;) {
    uint64_t cur = bw__ld64_rlx(&b[BW__HIST_MAX]);
    if (ns <= cur || bw__cas64(&b[BW__HIST_MAX], cur, ns))
      return 0;
  }
}

/* --- Reading cells (the collector) --------------------------------------------- */

static uint64_t cell_sum(const met_series_t *s, uint32_t off, uint32_t hwm) {
  uint64_t v = bw__ld64_rlx(&s->base[(size_t)SHARED_SLOT * s->stride + off]);
  for (uint32_t t = 0; t < hwm; t++)
    v += bw__ld64_rlx(&s->base[(size_t)t * s->stride + off]);
  return v;
}

static uint64_t cell_max(const met_series_t *s, uint32_t off, uint32_t hwm) {
  uint64_t v = bw__ld64_rlx(&s->base[(size_t)SHARED_SLOT * s->stride + off]);
  for (uint32_t t = 0; t < hwm; t++) {
    uint64_t x = bw__ld64_rlx(&s->base[(size_t)t * s->stride + off]);
    if (x > v)
      v = x;
  }
  return v;
}

/* --- Sources -------------------------------------------------------------------- */

static met_src_t *src_find(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                           const char *name, size_t *idx) {
  for (size_t i = 0; i < m->nsrcs; i++) {
    met_src_t *s = m->srcs[i];
    if (s->kind != kind)
      continue;
    bool hit = (ptr != NULL && s->ptr == ptr) || (pid != BW_PID_NONE && s->pid == pid) ||
               (name != NULL && strcmp(s->name, name) == 0);
    if (hit) {
      if (idx != NULL)
        *idx = i;
      return s;
    }
  }
  return NULL;
}

typedef struct fam_def {
  int type;
  const char *name, *help;
} fam_def_t;

/* Adds a source and its series: for each def, the series with the source's
 * name as first label value and extra[k] (may be NULL) as the second. */
static int src_add(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid, const char *name,
                   const char *label, const fam_def_t *defs, size_t ndefs,
                   const char *second_label, const char *const *const *second) {
  if (!valid(m) || name == NULL || *name == '\0' || strlen(name) > BW_METRICS_VALUE_MAX)
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  int rc = 0;
  if (src_find(m, kind, ptr, pid, name, NULL) != NULL) {
    rc = BW_EEXIST;
    goto out;
  }
  if (m->nsrcs == m->capsrcs) {
    size_t cap = m->capsrcs ? m->capsrcs * 2 : 8;
    met_src_t **ns = realloc(m->srcs, cap * sizeof *ns);
    if (ns == NULL) {
      rc = BW_ENOMEM;
      goto out;
    }
    m->srcs = ns;
    m->capsrcs = cap;
  }
  met_src_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    rc = BW_ENOMEM;
    goto out;
  }
  s->kind = kind;
  s->ptr = ptr;
  s->pid = pid;
  strcpy(s->name, name);
  for (size_t d = 0; d < ndefs && rc == 0; d++) {
    const char *const *vals = second != NULL ? second[d] : NULL;
    const char *labels[2] = {label, second_label};
    bw_metric_family_t *f;
    rc = family_ensure_locked(m, defs[d].type, defs[d].name, defs[d].help, labels,
                              vals != NULL ? 2 : 1, &f);
    for (size_t k = 0; rc == 0 && (k == 0 || (vals != NULL && vals[k] != NULL)); k++) {
      const char *lv[2] = {name, vals != NULL ? vals[k] : NULL};
      if (s->ns == SRC_SERIES_MAX) {
        rc = BW_ELIMIT;
        break;
      }
      met_series_t *ser;
      rc = series_get_locked(f, lv, true, &ser);
      if (rc == 0) {
        /* a source added again: its series come back; values start from
         * what it reports now */
        ser->present = kind != SRC_ACTOR && kind != SRC_BULKHEAD;
        s->s[s->ns++] = ser;
      }
      if (vals == NULL)
        break;
    }
  }
  if (rc != 0) {
    /* series already created stay (bounded by the family's limit) but are
     * not shown: nothing reports into them */
    for (size_t i = 0; i < s->ns; i++)
      s->s[i]->present = false;
    free(s);
    goto out;
  }
  m->srcs[m->nsrcs++] = s;
out:
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static int src_remove(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                      const char *name) {
  if (!valid(m) || (ptr == NULL && pid == BW_PID_NONE && name == NULL))
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  size_t i;
  met_src_t *s = src_find(m, kind, ptr, pid, name, &i);
  if (s == NULL) {
    pthread_mutex_unlock(&m->mu);
    return BW_ENOTFOUND;
  }
  for (size_t k = 0; k < s->ns; k++)
    s->s[k]->present = false;
  bool was_asked = s->ref != 0;
  memmove(&m->srcs[i], &m->srcs[i + 1], (m->nsrcs - i - 1) * sizeof *m->srcs);
  m->nsrcs--;
  free(s);
  bw_pid_t actor = bw__ld64_rlx(&m->pid);
  pthread_mutex_unlock(&m->mu);
  /* the actor may be waiting for this pool's answer to publish */
  if (was_asked && actor != BW_PID_NONE)
    (void)bw_send(m->rt, actor, M_RECHECK, NULL, 0);
  return 0;
}

static const fam_def_t breaker_defs[] = {
    {BW_METRIC_GAUGE, "bulwark_breaker_state",
     "Circuit breaker state: 0 closed, 1 open, 2 half_open, 3 disabled, 4 forced_open, "
     "5 metrics_only."},
    {BW_METRIC_COUNTER, "bulwark_breaker_calls_total", "Calls through a circuit breaker, by result."},
    {BW_METRIC_COUNTER, "bulwark_breaker_slow_calls_total", "Calls slower than the slow-call limit."},
    {BW_METRIC_COUNTER, "bulwark_breaker_timeouts_total", "Proxied calls that timed out."},
    {BW_METRIC_GAUGE, "bulwark_breaker_failure_rate", "Failure rate over the window, percent."},
    {BW_METRIC_GAUGE, "bulwark_breaker_slow_rate", "Slow-call rate over the window, percent."},
};
static const char *const breaker_results[] = {"successful", "failed", "ignored", "rejected", NULL};
static const char *const *const breaker_second[] = {NULL, breaker_results, NULL, NULL, NULL, NULL};

int bw_metrics_add_breaker(bw_metrics_t *m, bw_breaker_t *br) {
  if (br == NULL)
    return BW_EINVAL;
  return src_add(m, SRC_BREAKER, br, BW_PID_NONE, bw_breaker_name(br), "breaker", breaker_defs,
                 6, "result", breaker_second);
}

int bw_metrics_remove_breaker(bw_metrics_t *m, bw_breaker_t *br) {
  return br == NULL ? BW_EINVAL : src_remove(m, SRC_BREAKER, br, BW_PID_NONE, NULL);
}

static const fam_def_t bulkhead_defs[] = {
    {BW_METRIC_COUNTER, "bulwark_bulkhead_executions_total", "Bulkhead work items, by outcome."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_available", "Workers that could take work now."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_busy", "Workers running a job."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_queued", "Work waiting in the queue."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_lent", "Workers checked out."},
    {BW_METRIC_GAUGE, "bulwark_bulkhead_overflow", "Overflow workers running."},
};
static const char *const bulkhead_states[] = {"completed", "crashed", "rejected", "timed_out", NULL};
static const char *const *const bulkhead_second[] = {bulkhead_states, NULL, NULL, NULL, NULL, NULL};

int bw_metrics_add_bulkhead(bw_metrics_t *m, bw_pid_t pool, const char *name) {
  if (name == NULL)
    return BW_EINVAL;
  return src_add(m, SRC_BULKHEAD, NULL, pool, name, "pool", bulkhead_defs, 6, "state",
                 bulkhead_second);
}

int bw_metrics_remove_bulkhead(bw_metrics_t *m, const char *name) {
  return name == NULL ? BW_EINVAL : src_remove(m, SRC_BULKHEAD, NULL, BW_PID_NONE, name);
}

static const fam_def_t retry_defs[] = {
    {BW_METRIC_COUNTER, "bulwark_retry_attempts_total", "Attempts sent, first ones and retries."},
    {BW_METRIC_COUNTER, "bulwark_retry_retries_total", "Retries scheduled."},
    {BW_METRIC_COUNTER, "bulwark_timeouts_total", "Attempts that timed out."},
    {BW_METRIC_COUNTER, "bulwark_retry_calls_total", "Calls through a retry policy, by result."},
    {BW_METRIC_COUNTER, "bulwark_retry_budget_exhausted_total",
     "Calls ended because the retry budget refused a retry."},
    {BW_METRIC_GAUGE, "bulwark_retry_in_flight", "Calls in flight."},
};
static const char *const retry_results[] = {"success", "failure", "rejected", NULL};
static const char *const *const retry_second[] = {NULL, NULL, NULL, retry_results, NULL, NULL};

int bw_metrics_add_retry(bw_metrics_t *m, const bw_retry_t *r, const char *name) {
  bw_retry_metrics_t probe;
  /* a policy never passed to bw_retry_init has no counters to read */
  if (r == NULL || bw_retry_metrics(r, &probe) != 0)
    return BW_EINVAL;
  if (name == NULL)
    name = r->opts.name;
  return src_add(m, SRC_RETRY, r, BW_PID_NONE, name, "policy", retry_defs, 6, "result",
                 retry_second);
}

int bw_metrics_remove_retry(bw_metrics_t *m, const bw_retry_t *r) {
  return r == NULL ? BW_EINVAL : src_remove(m, SRC_RETRY, r, BW_PID_NONE, NULL);
}

static const fam_def_t actor_defs[] = {
    {BW_METRIC_GAUGE, "bulwark_mailbox_depth", "Messages waiting in a registered actor's mailbox."},
};

int bw_metrics_add_actor(bw_metrics_t *m, const char *name) {
  if (name == NULL || strlen(name) > BW_NAME_MAX)
    return BW_EINVAL;
  return src_add(m, SRC_ACTOR, NULL, BW_PID_NONE, name, "actor", actor_defs, 1, NULL, NULL);
}

int bw_metrics_remove_actor(bw_metrics_t *m, const char *name) {
  return name == NULL ? BW_EINVAL : src_remove(m, SRC_ACTOR, NULL, BW_PID_NONE, name);
}

/* --- Subscribers ------------------------------------------------------------------ */

int bw_metrics_subscribe(bw_metrics_t *m, bw_pid_t pid) {
  if (!valid(m) || pid == BW_PID_NONE)
    return BW_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  size_t i = 0;
  while (i < m->nsubs && m->subs[i] != pid)
    i++;
  if (i == m->nsubs) {
    if (m->nsubs == BW_METRICS_SUBSCRIBERS_MAX)
      rc = BW_ELIMIT;
    else
      m->subs[m->nsubs++] = pid;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static bool sub_remove_locked(bw_metrics_t *m, bw_pid_t pid) {
  for (size_t i = 0; i < m->nsubs; i++) {
    if (m->subs[i] == pid) {
      m->subs[i] = m->subs[--m->nsubs];
      return true;
    }
  }
  return false;
}

int bw_metrics_unsubscribe(bw_metrics_t *m, bw_pid_t pid) {
  if (!valid(m) || pid == BW_PID_NONE)
    return BW_EINVAL;
  pthread_mutex_lock(&m->mu);
  bool found = sub_remove_locked(m, pid);
  pthread_mutex_unlock(&m->mu);
  return found ? 0 : BW_ENOTFOUND;
}

/* --- Snapshots ----------------------------------------------------------------- */

static void snapshot_free(bw_metrics_snapshot_t *s) {
  free(s->fam);
  free(s->ser);
  free(s->ptrs);
  free(s->buckets);
  free(s->str);
  free(s);
}

const bw_metrics_snapshot_t *bw_metrics_snapshot_retain(const bw_metrics_snapshot_t *s) {
  if (s != NULL)
    /* acq_rel add (bw__faa64); a retain needs no order of its own: the
     * caller already holds a reference */
    (void)bw__faa64(&((bw_metrics_snapshot_t *)s)->refs, 1);
  return s;
}

void bw_metrics_snapshot_release(const bw_metrics_snapshot_t *s) {
  if (s == NULL)
    return;
  bw_metrics_snapshot_t *w = (bw_metrics_snapshot_t *)s;
  /* acq_rel: every holder's reads happen-before the free by the last one */
  if (bw__faa64(&w->refs, (uint64_t)-1) == 1)
    snapshot_free(w);
}

static void snapshot_release_cb(void *p) { bw_metrics_snapshot_release(p); }

uint64_t bw_metrics_snapshot_seq(const bw_metrics_snapshot_t *s) { return s ? s->seq : 0; }
uint64_t bw_metrics_snapshot_time_ns(const bw_metrics_snapshot_t *s) { return s ? s->time_ns : 0; }
size_t bw_metrics_snapshot_nfamilies(const bw_metrics_snapshot_t *s) { return s ? s->nfam : 0; }

int bw_metrics_snapshot_family(const bw_metrics_snapshot_t *s, size_t i,
                               bw_metric_family_info_t *out) {
  if (s == NULL || out == NULL || i >= s->nfam)
    return BW_EINVAL;
  *out = s->fam[i].info;
  return 0;
}

int bw_metrics_snapshot_series(const bw_metrics_snapshot_t *s, size_t family, size_t i,
                               bw_metric_series_info_t *out) {
  if (s == NULL || out == NULL || family >= s->nfam || i >= s->fam[family].info.nseries)
    return BW_EINVAL;
  *out = s->ser[s->fam[family].first + i];
  return 0;
}

static const bw_metric_series_info_t *snap_lookup(const bw_metrics_snapshot_t *s,
                                                  const char *name, const char *const *lv,
                                                  size_t n, int type) {
  for (size_t i = 0; i < s->nfam; i++) {
    const snap_fam_t *f = &s->fam[i];
    if (strcmp(f->info.name, name) != 0)
      continue;
    if (f->info.type != type || f->info.nlabels != n)
      return NULL;
    for (size_t k = 0; k < f->info.nseries; k++) {
      const bw_metric_series_info_t *ser = &s->ser[f->first + k];
      size_t j = 0;
      while (j < n && strcmp(ser->label_values[j], lv[j]) == 0)
        j++;
      if (j == n)
        return ser;
    }
    return NULL;
  }
  return NULL;
}

static bool lv_ok(const char *const *lv, size_t n) {
  if (n > 0 && lv == NULL)
    return false;
  for (size_t i = 0; i < n; i++)
    if (lv[i] == NULL)
      return false;
  return true;
}

int bw_metrics_snapshot_value(const bw_metrics_snapshot_t *s, const char *name,
                              const char *const *lv, size_t n, double *out) {
  if (s == NULL || name == NULL || out == NULL || !lv_ok(lv, n))
    return BW_EINVAL;
  const bw_metric_series_info_t *ser = snap_lookup(s, name, lv, n, BW_METRIC_COUNTER);
  if (ser == NULL)
    ser = snap_lookup(s, name, lv, n, BW_METRIC_GAUGE);
  if (ser == NULL)
    return BW_ENOTFOUND;
  *out = ser->value;
  return 0;
}

int bw_metrics_snapshot_histogram(const bw_metrics_snapshot_t *s, const char *name,
                                  const char *const *lv, size_t n,
                                  bw_histogram_summary_t *out) {
  if (s == NULL || name == NULL || out == NULL || !lv_ok(lv, n))
    return BW_EINVAL;
  const bw_metric_series_info_t *ser = snap_lookup(s, name, lv, n, BW_METRIC_HISTOGRAM);
  if (ser == NULL)
    return BW_ENOTFOUND;
  *out = ser->h;
  return 0;
}

/* Builds a snapshot of every present series (under m->mu): counts first,
 * then one allocation per array, then the copy. */
static bw_metrics_snapshot_t *snapshot_build_locked(bw_metrics_t *m) {
  size_t nfam = m->nfams, nser = 0, nptr = 0, nhist = 0, nstr = 0;
  for (size_t i = 0; i < nfam; i++) {
    bw_metric_family_t *f = m->fams[i];
    nstr += strlen(f->name) + strlen(f->help) + 2;
    nptr += f->nlabels;
    for (size_t j = 0; j < f->nlabels; j++)
      nstr += strlen(f->labels[j]) + 1;
    for (size_t k = 0; k < f->nseries; k++) {
      met_series_t *s = f->series[k];
      if (!s->present)
        continue;
      nser++;
      nptr += f->nlabels;
      for (size_t j = 0; j < f->nlabels; j++)
        nstr += strlen(s->lv[j]) + 1;
      if (f->type == BW_METRIC_HISTOGRAM)
        nhist++;
    }
  }
  bw_metrics_snapshot_t *sn = calloc(1, sizeof *sn);
  if (sn == NULL)
    return NULL;
  sn->fam = calloc(nfam + 1, sizeof *sn->fam);
  sn->ser = calloc(nser + 1, sizeof *sn->ser);
  sn->ptrs = calloc(nptr + 1, sizeof *sn->ptrs);
  sn->buckets = calloc(nhist * BW_HISTOGRAM_BUCKETS + 1, sizeof *sn->buckets);
  sn->str = malloc(nstr + 1);
  if (sn->fam == NULL || sn->ser == NULL || sn->ptrs == NULL || sn->buckets == NULL ||
      sn->str == NULL) {
    snapshot_free(sn);
    return NULL;
  }
  sn->refs = 1;
  sn->nfam = nfam;
  sn->nser = nser;
  char *sp = sn->str;
  const char **pp = sn->ptrs;
  uint64_t *bp = sn->buckets;
  size_t si = 0;
#define COPY(dst, src)                                                                        \
  do {                                                                                        \
    size_t n_ = strlen(src) + 1;                                                              \
    memcpy(sp, src, n_);                                                                      \
    (dst) = sp;                                                                               \
    sp += n_;                                                                                 \
  } while (0)
  uint32_t hwm = bw__ld32_rlx(&slot_hwm);
  for (size_t i = 0; i < nfam; i++) {
    bw_metric_family_t *f = m->fams[i];
    snap_fam_t *sf = &sn->fam[i];
    COPY(sf->info.name, f->name);
    COPY(sf->info.help, f->help);
    sf->info.type = f->type;
    sf->info.nlabels = f->nlabels;
    sf->info.label_names = pp;
    for (size_t j = 0; j < f->nlabels; j++)
      COPY(*pp++, f->labels[j]);
    sf->first = si;
    for (size_t k = 0; k < f->nseries; k++) {
      met_series_t *s = f->series[k];
      if (!s->present)
        continue;
      bw_metric_series_info_t *out = &sn->ser[si++];
      sf->info.nseries++;
      out->label_values = pp;
      for (size_t j = 0; j < f->nlabels; j++)
        COPY(*pp++, s->lv[j]);
      switch (f->type) {
      case BW_METRIC_COUNTER:
        out->value = s->collected ? (double)bw__ld64_rlx(&s->bits)
                                  : (double)cell_sum(s, 0, hwm);
        break;
      case BW_METRIC_GAUGE:
        out->value = bitsd(bw__ld64_rlx(&s->bits));
        break;
      default:
        for (uint32_t b = 0; b < BW_HISTOGRAM_BUCKETS; b++)
          bp[b] = cell_sum(s, b, hwm);
        (void)bw_histogram_summarize(bp, cell_sum(s, BW__HIST_SUM, hwm),
                                     cell_max(s, BW__HIST_MAX, hwm), &out->h);
        out->buckets = bp;
        bp += BW_HISTOGRAM_BUCKETS;
        break;
      }
    }
  }
#undef COPY
  return sn;
}

int bw_metrics_latest(bw_metrics_t *m, bw_metrics_snapshot_t **out) {
  if (!valid(m) || out == NULL)
    return BW_EINVAL;
  pthread_mutex_lock(&m->latest_mu);
  bw_metrics_snapshot_t *s = m->latest;
  if (s != NULL)
    bw_metrics_snapshot_retain(s);
  pthread_mutex_unlock(&m->latest_mu);
  if (s == NULL)
    return BW_ENOTFOUND;
  *out = s;
  return 0;
}

int bw_metrics_render(bw_metrics_t *m, int format, char *buf, size_t cap, size_t *len) {
  bw_metrics_snapshot_t *s;
  int rc = bw_metrics_latest(m, &s);
  if (rc != 0)
    return rc;
  rc = bw_metrics_snapshot_render(s, format, buf, cap, len);
  bw_metrics_snapshot_release(s);
  return rc;
}

int bw_metrics_render_alloc(bw_metrics_t *m, int format, char **out, size_t *len) {
  bw_metrics_snapshot_t *s;
  int rc = bw_metrics_latest(m, &s);
  if (rc != 0)
    return rc;
  rc = bw_metrics_snapshot_render_alloc(s, format, out, len);
  bw_metrics_snapshot_release(s);
  return rc;
}

/* --- The reporter actor ---------------------------------------------------------- */

typedef struct rep_state {
  bw_metrics_t *m;
  bool events; /* subscribed to the event bus */
} rep_state_t;

static void set_counter(met_series_t *s, uint64_t v) {
  /* relaxed: only the reporter writes; snapshots read under m->mu */
  if (s != NULL)
    bw__st64_rlx(&s->bits, v);
}

static void set_gauge(met_series_t *s, double v) {
  if (s != NULL)
    bw__st64_rlx(&s->bits, dbits(v));
}

static void collect_runtime_locked(bw_metrics_t *m) {
  if (!m->o.runtime_metrics)
    return;
  bw_runtime_stats_t st;
  if (bw_runtime_stats(m->rt, &st) != 0)
    return;
  set_counter(m->s_sent, st.sent);
  set_counter(m->s_handled, st.handled);
  set_counter(m->s_rejected, st.rejected);
  for (int i = 0; i < BW_DL__COUNT; i++)
    set_counter(m->s_dead[i], st.dead_by_reason[i]);
  set_counter(m->s_spawned, st.spawned);
  set_counter(m->s_exited, st.exited);
  set_counter(m->s_crashed, st.crashed);
  set_gauge(m->s_live, (double)st.live);
  /* utilisation over the interval since the previous collection */
  uint64_t du = st.uptime_ns - m->util_uptime, di = st.idle_ns - m->util_idle;
  if (m->util_uptime != 0 && du > 0 && st.workers > 0) {
    double u = 1.0 - (double)di / ((double)du * st.workers);
    set_gauge(m->s_util, u < 0 ? 0 : u > 1 ? 1 : u);
  }
  m->util_uptime = st.uptime_ns;
  m->util_idle = st.idle_ns;
}

static void collect_breaker(met_src_t *s) {
  bw_breaker_metrics_t bm;
  if (bw_breaker_metrics(s->ptr, &bm) != 0)
    return;
  /* series order: state, calls{successful, failed, ignored, rejected},
   * slow, timeouts, failure_rate, slow_rate (breaker_defs) */
  set_gauge(s->s[0], bm.state);
  set_counter(s->s[1], bm.successful);
  set_counter(s->s[2], bm.failed);
  set_counter(s->s[3], bm.ignored);
  set_counter(s->s[4], bm.rejected);
  set_counter(s->s[5], bm.slow);
  set_counter(s->s[6], bm.timeouts);
  set_gauge(s->s[7], bm.failure_rate);
  s->s[7]->present = bm.failure_rate >= 0;
  set_gauge(s->s[8], bm.slow_rate);
  s->s[8]->present = bm.slow_rate >= 0;
}

static void collect_retry(met_src_t *s) {
  bw_retry_metrics_t rm;
  if (bw_retry_metrics(s->ptr, &rm) != 0)
    return;
  /* attempts, retries, timeouts, calls{success, failure, rejected},
   * budget_exhausted, in_flight (retry_defs) */
  set_counter(s->s[0], rm.attempts);
  set_counter(s->s[1], rm.retries);
  set_counter(s->s[2], rm.timeouts);
  set_counter(s->s[3], rm.successes);
  set_counter(s->s[4], rm.failures);
  set_counter(s->s[5], rm.rejected);
  set_counter(s->s[6], rm.budget_exhausted);
  set_gauge(s->s[7], (double)rm.in_flight);
}

static void collect_actor(bw_metrics_t *m, met_src_t *s) {
  bw_pid_t pid;
  uint32_t depth = 0;
  bool ok = bw_whereis(m->rt, s->name, &pid) == 0 && bw_mailbox_depth(m->rt, pid, &depth) == 0;
  set_gauge(s->s[0], depth);
  s->s[0]->present = ok;
}

static void bulkhead_update(met_src_t *s, const bw_bulkhead_metrics_t *bm) {
  /* executions{completed, crashed, rejected, timed_out}, available, busy,
   * queued, lent, overflow (bulkhead_defs) */
  set_counter(s->s[0], bm->completed);
  set_counter(s->s[1], bm->crashed);
  set_counter(s->s[2], bm->rejected);
  set_counter(s->s[3], bm->timed_out);
  set_gauge(s->s[4], bm->available);
  set_gauge(s->s[5], bm->busy);
  set_gauge(s->s[6], bm->queued);
  set_gauge(s->s[7], bm->lent);
  set_gauge(s->s[8], bm->overflow);
  for (size_t i = 0; i < s->ns; i++)
    s->s[i]->present = true;
}

static void bulkhead_absent(met_src_t *s) {
  for (size_t i = 0; i < s->ns; i++)
    s->s[i]->present = false;
}

static bool pending_locked(const bw_metrics_t *m) {
  for (size_t i = 0; i < m->nsrcs; i++)
    if (m->srcs[i]->ref != 0)
      return true;
  return false;
}

/* Publishes the collection in progress: a snapshot to latest and to each
 * subscriber; answers bw_metrics_collect's waiters. */
static void publish(bw_ctx_t *ctx, bw_metrics_t *m) {
  bw_pid_t subs[BW_METRICS_SUBSCRIBERS_MAX];
  bw_msg_t waiters[MAX_WAITERS];
  pthread_mutex_lock(&m->mu);
  bw_metrics_snapshot_t *sn = snapshot_build_locked(m);
  if (sn != NULL) {
    sn->seq = ++m->seq;
    sn->time_ns = bw_now_ns(m->rt);
  }
  m->collecting = false;
  for (size_t i = 0; i < m->nsrcs; i++)
    m->srcs[i]->ref = 0; /* late answers are ignored */
  size_t nsubs = m->nsubs, nw = m->nwaiters;
  memcpy(subs, m->subs, nsubs * sizeof *subs);
  memcpy(waiters, m->waiters, nw * sizeof *waiters);
  m->nwaiters = 0;
  pthread_mutex_unlock(&m->mu);

  if (sn != NULL) {
    pthread_mutex_lock(&m->latest_mu);
    bw_metrics_snapshot_t *old = m->latest;
    m->latest = sn;
    pthread_mutex_unlock(&m->latest_mu);
    bw_metrics_snapshot_release(old);
    for (size_t i = 0; i < nsubs; i++) {
      bw_metrics_snapshot_retain(sn);
      int rc = bw_send_move(m->rt, subs[i], BW_METRICS_MSG_SNAPSHOT, sn, sizeof *sn,
                            snapshot_release_cb);
      if (rc == BW_ENOPROC) { /* the runtime ran the destructor */
        pthread_mutex_lock(&m->mu);
        (void)sub_remove_locked(m, subs[i]);
        pthread_mutex_unlock(&m->mu);
      } else if (rc != 0) { /* BW_EFULL, BW_ESHUTDOWN: still ours */
        bw_metrics_snapshot_release(sn);
      }
    }
  }
  for (size_t i = 0; i < nw; i++)
    (void)bw_reply(ctx, &waiters[i], sn != NULL ? 0 : BW_ENOMEM, M_COLLECT, NULL, 0);
}

/* Starts a collection: reads every synchronous source now and asks every
 * pool; publishes at once if no pool is asked. A collection still waiting
 * for pools is published first, with what it has. */
static void collect(bw_ctx_t *ctx, bw_metrics_t *m) {
  pthread_mutex_lock(&m->mu);
  bool unfinished = m->collecting;
  pthread_mutex_unlock(&m->mu);
  if (unfinished)
    publish(ctx, m);

  pthread_mutex_lock(&m->mu);
  m->collecting = true;
  collect_runtime_locked(m);
  for (size_t i = 0; i < m->nsrcs; i++) {
    met_src_t *s = m->srcs[i];
    switch (s->kind) {
    case SRC_BREAKER:
      collect_breaker(s);
      break;
    case SRC_RETRY:
      collect_retry(s);
      break;
    case SRC_ACTOR:
      collect_actor(m, s);
      break;
    case SRC_BULKHEAD: {
      bw_pid_t pool = s->pid;
      if (pool == BW_PID_NONE && bw_whereis(m->rt, s->name, &pool) != 0)
        pool = BW_PID_NONE;
      uint64_t ref = 0;
      if (pool == BW_PID_NONE || bw_bulkhead_metrics_request(ctx, pool, &ref) != 0) {
        bulkhead_absent(s);
        ref = 0;
      }
      s->ref = ref;
      break;
    }
    }
  }
  bool wait = pending_locked(m);
  pthread_mutex_unlock(&m->mu);
  if (!wait)
    publish(ctx, m);
}

/* A pool's answer (or its request's timeout: bm NULL). */
static void on_pool_answer(bw_ctx_t *ctx, bw_metrics_t *m, uint64_t ref, const bw_msg_t *msg) {
  pthread_mutex_lock(&m->mu);
  bool known = false;
  for (size_t i = 0; i < m->nsrcs && !known; i++) {
    met_src_t *s = m->srcs[i];
    if (s->kind != SRC_BULKHEAD || s->ref != ref || ref == 0)
      continue;
    known = true;
    s->ref = 0;
    bw_bulkhead_metrics_t bm;
    if (msg != NULL && bw_bulkhead_metrics_from_reply(msg, &bm) == 0)
      bulkhead_update(s, &bm);
    else
      bulkhead_absent(s); /* timed out, or the pool is gone */
  }
  bool done = known && m->collecting && !pending_locked(m);
  pthread_mutex_unlock(&m->mu);
  if (done)
    publish(ctx, m);
}

static void on_event(bw_metrics_t *m, const bw_event_t *ev) {
  bw_metric_family_t *f = NULL;
  const char *lv[3];
  char from[24], to[24];
  if (ev->type == BW_EV_CHILD_RESTARTED) {
    f = m->f_restarts;
    lv[0] = ev->source_name;
    lv[1] = ev->subject_id;
  } else if (ev->type == BW_EV_BREAKER_STATE) {
    f = m->f_transitions;
    lv[0] = ev->source_name;
    strncpy(from, bw_breaker_state_name((int)ev->a), sizeof from - 1);
    from[sizeof from - 1] = '\0';
    strncpy(to, bw_breaker_state_name((int)ev->b), sizeof to - 1);
    to[sizeof to - 1] = '\0';
    lv[1] = from;
    lv[2] = to;
  }
  if (f == NULL)
    return;
  pthread_mutex_lock(&m->mu);
  met_series_t *s;
  /* past max_series the event is not counted: labels come from the
   * system, and a bounded registry beats an unbounded one */
  if (series_get_locked(f, lv, true, &s) == 0)
    set_counter(s, bw__ld64_rlx(&s->bits) + 1);
  pthread_mutex_unlock(&m->mu);
}

static int rep_init(bw_ctx_t *ctx, void *state, void *arg) {
  rep_state_t *st = state;
  bw_metrics_t *m = arg;
  if (!valid(m))
    return BW_EINVAL;
  bw_pid_t self = bw_self(ctx);
  pthread_mutex_lock(&m->mu);
  bw_pid_t cur = bw__ld64_rlx(&m->pid);
  if (cur != BW_PID_NONE && cur != self && bw_is_alive(m->rt, cur)) {
    pthread_mutex_unlock(&m->mu);
    return BW_EALREADY;
  }
  /* A predecessor killed untrappably left its interval timer running (its
   * terminate did not run): cancel it, or it would dead-letter forever. */
  if (m->timer != 0)
    (void)bw_timer_cancel(m->rt, m->timer);
  m->timer = 0;
  m->collecting = false;
  for (size_t i = 0; i < m->nsrcs; i++)
    m->srcs[i]->ref = 0;
  m->nwaiters = 0;
  int rc = bw_send_interval(m->rt, self, m->o.period_ms, M_TICK, NULL, 0, &m->timer);
  if (rc == 0)
    /* relaxed: readers (bw_metrics_pid) only want a recent pid */
    bw__st64_rlx(&m->pid, self);
  pthread_mutex_unlock(&m->mu);
  if (rc != 0)
    return rc;
  st->m = m;
  if (m->o.runtime_metrics)
    st->events = bw_event_subscribe(m->rt, self,
                                    BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                        BW_EV_MASK(BW_EV_BREAKER_STATE)) == 0;
  return 0;
}

static int rep_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  rep_state_t *st = state;
  bw_metrics_t *m = st->m;
  if (msg->flags & BW_MSGF_REPLY) {
    on_pool_answer(ctx, m, msg->ref, msg);
    return BW_CONTINUE;
  }
  switch (msg->type) {
  case M_TICK:
    collect(ctx, m);
    break;
  case M_COLLECT: {
    if (!(msg->flags & BW_MSGF_REQUEST))
      break;
    pthread_mutex_lock(&m->mu);
    bool unfinished = m->collecting;
    pthread_mutex_unlock(&m->mu);
    if (unfinished)
      publish(ctx, m); /* its waiters are answered; this one waits for the next */
    pthread_mutex_lock(&m->mu);
    bool room = m->nwaiters < MAX_WAITERS;
    if (room) {
      m->waiters[m->nwaiters] = *msg;
      m->waiters[m->nwaiters].data = NULL;
      m->waiters[m->nwaiters].len = 0;
      m->nwaiters++;
    }
    pthread_mutex_unlock(&m->mu);
    if (!room)
      (void)bw_reply(ctx, msg, BW_ELIMIT, M_COLLECT, NULL, 0);
    else
      collect(ctx, m);
    break;
  }
  case M_RECHECK: {
    pthread_mutex_lock(&m->mu);
    bool done = m->collecting && !pending_locked(m);
    pthread_mutex_unlock(&m->mu);
    if (done)
      publish(ctx, m);
    break;
  }
  case BW_MSG_REQUEST_TIMEOUT:
    on_pool_answer(ctx, m, msg->ref, NULL);
    break;
  case BW_MSG_EVENT:
    if (msg->len == sizeof(bw_event_t))
      on_event(m, msg->data);
    break;
  default:
    break; /* stray messages are ignored: the reporter must not crash on them */
  }
  return BW_CONTINUE;
}

static void rep_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  rep_state_t *st = state;
  bw_metrics_t *m = st->m;
  if (m == NULL)
    return;
  if (st->events)
    (void)bw_event_unsubscribe(m->rt, bw_self(ctx));
  pthread_mutex_lock(&m->mu);
  if (m->timer != 0)
    (void)bw_timer_cancel(m->rt, m->timer);
  m->timer = 0;
  m->collecting = false;
  size_t nw = m->nwaiters;
  bw_msg_t waiters[MAX_WAITERS];
  memcpy(waiters, m->waiters, nw * sizeof *waiters);
  m->nwaiters = 0;
  if (bw__ld64_rlx(&m->pid) == bw_self(ctx))
    bw__st64_rlx(&m->pid, BW_PID_NONE);
  pthread_mutex_unlock(&m->mu);
  for (size_t i = 0; i < nw; i++)
    (void)bw_reply(ctx, &waiters[i], BW_ESHUTDOWN, M_COLLECT, NULL, 0);
}

const bw_behaviour_t bw_metrics_behaviour = {
    .name = "bulwark.metrics",
    .state_size = sizeof(rep_state_t),
    .init = rep_init,
    .handle = rep_handle,
    .terminate = rep_terminate,
    .never_muted = true, /* see RUNTIME.md, "Back-pressure" */
};

int bw_metrics_collect(bw_metrics_t *m, uint64_t timeout_ms) {
  if (!valid(m))
    return BW_EINVAL;
  bw_pid_t pid = bw_metrics_pid(m);
  if (pid == BW_PID_NONE)
    return BW_ENOPROC;
  bw_reply_t r;
  return bw_call(m->rt, pid, M_COLLECT, NULL, 0, timeout_ms, &r);
}
