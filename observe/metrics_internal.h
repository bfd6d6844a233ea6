/*
 * bulwark: the metrics registry's shared internals (observe/metrics*.c).
 *
 * observe/metrics.c           options, lifecycle, public registration, subscribers
 * observe/metrics_store.c     thread slots, names, families and series, updates
 * observe/metrics_sources.c   breakers, pools, retry policies and actors as sources
 * observe/metrics_http.c      HTTP clients as sources: per-host series made as hosts come
 * observe/metrics_snapshot.c  immutable snapshots: building, reading, latest
 * observe/metrics_reporter.c  the reporter actor: collection and publishing
 */
#ifndef BULWARK_OBSERVE_METRICS_INTERNAL_H
#define BULWARK_OBSERVE_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/metrics.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "runtime/atomic.h"
#include "runtime/subs.h"

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

/* --- Data ------------------------------------------------------------------ */

typedef struct met_series {
  /* Read by updates: first on purpose. */
  uint32_t kind;   /* bw_metric_type_t */
  uint32_t cell;   /* first cell, or NO_CELL (gauges, collected series) */
  uint64_t *base;  /* &cells[cell] in slot 0 */
  size_t stride;   /* cells per slot */
  uint64_t bits;   /* gauge: a double's bits; collected counter: its value */
  /* collected histogram: BW_HISTOGRAM_CELLS (buckets, sum, max), written
   * by the reporter and read by snapshots, both under m->mu */
  uint64_t *hist;
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

enum { SRC_BREAKER = 1, SRC_BULKHEAD, SRC_RETRY, SRC_ACTOR, SRC_HTTP };

typedef struct met_src {
  int kind;
  const void *ptr; /* breaker, retry policy */
  bw_pid_t pid;    /* pool (BW_PID_NONE: look name up) */
  char name[BW_METRICS_VALUE_MAX + 1];
  met_series_t *s[SRC_SERIES_MAX];
  size_t ns;
  uint64_t ref; /* pool: the metrics request in flight, 0 if none */
  void *ext;    /* HTTP client: its rows and per-host series (metrics_http.c); freed with it */
} met_src_t;

struct bw_metrics {
  uint32_t magic;
  bw_runtime_t *rt;
  bw_metrics_opts_t o;
  uint64_t *cells; /* BW_METRICS_THREADS * o.max_cells */
  uint64_t pid;    /* the actor's bw_pid_t (atomic) */

  bw__subs subs;      /* snapshot subscribers (runtime/subs.h: its own lock) */
  pthread_mutex_t mu; /* guards everything below */
  uint32_t ncells;
  bw_metric_family_t **fams;
  size_t nfams;
  met_src_t **srcs;
  size_t nsrcs, capsrcs;
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

/* --- Shared between the files ----------------------------------------------- */

/* metrics_store.c: one past the highest private slot ever claimed. */
extern uint32_t bw__metrics_slot_hwm;

uint64_t bw__metrics_dbits(double v);
double bw__metrics_bitsd(uint64_t b);
void bw__metrics_family_free(bw_metric_family_t *f);
int bw__metrics_family_add_locked(bw_metrics_t *m, int type, const char *name, const char *help,
                                  const char *const *labels, size_t nlabels,
                                  bw_metric_family_t **out);
int bw__metrics_family_ensure_locked(bw_metrics_t *m, int type, const char *name,
                                     const char *help, const char *const *labels,
                                     size_t nlabels, bw_metric_family_t **out);
int bw__metrics_series_get_locked(bw_metric_family_t *f, const char *const *lv, bool collected,
                                  met_series_t **out);

/* metrics_sources.c */
met_src_t *bw__metrics_src_find_locked(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                                       const char *name, size_t *idx);
/* Appends a new source of kind (ptr, name) to m: BW_EEXIST if one has
 * them, BW_ENOMEM. */
int bw__metrics_src_new_locked(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                               const char *name, met_src_t **out);
void bw__metrics_src_free(met_src_t *s);
/* Removes a source (its series leave the snapshots). Returns 0,
 * BW_EINVAL, BW_ENOTFOUND. */
int bw__metrics_src_remove(bw_metrics_t *m, int kind, const void *ptr, bw_pid_t pid,
                           const char *name);

/* metrics_http.c (under m->mu) */
void bw__metrics_http_collect_locked(bw_metrics_t *m, met_src_t *s);
void bw__metrics_http_absent_locked(met_src_t *s);

/* The reporter's writes of collected values: relaxed, since only the
 * reporter writes them and snapshots read them under m->mu. */
static inline void bw__metrics_set_counter(met_series_t *s, uint64_t v) {
  if (s != NULL)
    bw__st64_rlx(&s->bits, v);
}

static inline void bw__metrics_set_gauge(met_series_t *s, double v) {
  if (s != NULL)
    bw__st64_rlx(&s->bits, bw__metrics_dbits(v));
}

/* metrics.c */
bool bw__metrics_valid(const bw_metrics_t *m);

/* metrics_snapshot.c */
bw_metrics_snapshot_t *bw__metrics_snapshot_build_locked(bw_metrics_t *m);

#endif
