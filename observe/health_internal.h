/*
 * bulwark: the health monitor's shared internals (observe/health*.c).
 *
 * observe/health.c           the API: names, options, lifecycle, registration, readers
 * observe/health_snapshot.c  the published snapshot: rendering, swapping, pinning
 * observe/health_monitor.c   the monitor actor: transitions, checks, rounds, messages
 * observe/health_recovery.c  recovery actions and the dedicated-thread helpers
 * observe/health_recorder.c  the event recorder: a history that outlives the monitor
 */
#ifndef BULWARK_OBSERVE_HEALTH_INTERNAL_H
#define BULWARK_OBSERVE_HEALTH_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/actor.h"
#include "bulwark/event.h"
#include "bulwark/health.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "runtime/intensity.h"
#include "runtime/subs.h"

/* Internal message types. */
enum {
  HM_TICK = BW_MSG_HEALTH_BASE + 0x80u, /* a round: the interval timer, or check_now */
  HM_RUN,          /* monitor -> check helper: run check idx (hm_run_t) */
  HM_DONE,         /* check helper -> monitor: its result (hm_done_t) */
  HM_DEADLINE,     /* timer -> monitor: a check's deadline (hm_run_t) */
  HM_FLUSH,        /* request: answered once everything before it is handled */
  HM_RECOVER,      /* monitor -> recovery helper: act on component idx (uint32_t) */
  HM_RECOVER_DONE, /* recovery helper -> monitor (hm_rdone_t) */
  HM_EVENT,        /* recorder -> monitor: a bus event, as it happens (bw_event_t) */
  HM_REPLAY,       /* recorder -> monitor: a recorded event, replayed (bw_event_t) */
  HM_ATTACH,       /* monitor -> recorder: forward to me, after a replay (bw_pid_t) */
};

typedef struct hm_run {
  uint32_t idx, seq;
} hm_run_t;

typedef struct hm_done {
  uint32_t idx, seq;
  int32_t rc;
  uint32_t _pad;
  char reason[BW_HEALTH_REASON_MAX];
} hm_done_t;

typedef struct hm_rdone {
  uint32_t idx;
  int32_t rc;
} hm_rdone_t;

#define NBUILTIN 3u
#define RETIRE_MAX 16u

/* A registered component: immutable once counted in h->ncomp. */
typedef struct comp {
  bw_health_component_t d; /* its strings point into the fields below */
  char name[BW_HEALTH_NAME_MAX];
  char target[BW_NAME_MAX + 1];
  char child_id[BW_SUP_ID_MAX];
} comp_t;

/* A component's judgement: written by the monitor only. */
typedef struct cst {
  int32_t status;
  uint64_t since_ms;
  char reason[BW_HEALTH_REASON_MAX];
  /* recovery */
  uint64_t next_action_ms; /* while unhealthy: when the next action is due */
  uint64_t actions;
  int32_t action_rc;
  /* actor and bulkhead: an action is repeated only on a judgement from a
   * probe made after it (the answer to one made before, or the target's
   * own exit caused by the action, says nothing about the result) */
  uint64_t acted_seq;  /* probe count when the last action was taken */
  uint64_t probes;     /* probes made */
  uint64_t judged_seq; /* the probe the current judgement comes from */
  uint64_t pending_seq; /* the probe in flight */
  /* actor and bulkhead: the request in flight */
  bool pending;
  uint64_t ref;
  bw_pid_t target_pid;
  /* bulkhead: the rejection count of the last answer */
  bool bh_have;
  uint64_t bh_rejected;
  /* check: the run in flight */
  bool running, overrun;
  uint32_t seq;
  bw_timer_t deadline;
  bw_pid_t helper;
  /* escalations, watchdog: bad until then */
  uint64_t until_ms;
} cst_t;

/* An immutable published snapshot: one allocation, info[] then json. */
typedef struct snap {
  int32_t status;
  uint32_t ncomp;
  size_t json_len;
  bw_health_info_t *info;
  char *json;
} snap_t;

struct bw_health {
  bw_runtime_t *rt;
  bw_health_opts_t cfg;
  char name[BW_HEALTH_NAME_MAX];
  uint32_t cap; /* entries: built-ins + max_components */
  uint32_t nbuiltin;
  uint32_t ncomp; /* published with release by bw_health_add */
  comp_t *comps;
  cst_t *st;
  pthread_mutex_t reg_mx; /* writers of comps only; never the monitor */
  bw__subs subs; /* signal subscribers (runtime/subs.h) */
  bw_pid_t pid; /* the running monitor */
  bool owned;   /* spawned by bw_health_start */
  bw_timer_t tick_timer; /* of the latest incarnation: a successor cancels it */
  bw_pid_t recovery_helper;
  /* The event recorder (an actor of the handle, like the helpers): the
   * only subscriber to the built-ins' events, so none is lost while the
   * monitor is down (a monitor restarted with its siblings missed theirs).
   * The pid is read by bw_health_flush on any thread (atomic); the fields
   * below it are written by the recorder only, read by nobody else. */
  bw_pid_t recorder;
  bw_event_t *rec_rst; /* the last restart_limit + 1 BW_EV_CHILD_RESTARTED */
  uint32_t rec_rst_n, rec_rst_pos;
  bw_event_t rec_esc, rec_hang; /* the last escalation and hang report (type 0: none) */
  /* restart storm, as the monitor judges it: the last restart_limit + 1
   * restart times, ms (rebuilt by each incarnation from the recorder's
   * replay); the window is runtime/intensity.h's */
  bw__intensity rst;
  char rst_last[BW_HEALTH_REASON_MAX];
  /* the aggregate */
  int32_t agg;
  uint64_t agg_since;
  uint32_t status_pub; /* for bw_health_status */
  bool running, dirty;
  uint32_t seen; /* components the monitor has picked up */
  /* snapshots */
  snap_t *snap;
  uint64_t readers;
  snap_t *retired[RETIRE_MAX];
  uint32_t nretired;
  char *scratch;
  size_t scratch_cap;
  bw_health_stats_t m;
};

typedef struct hm_actor {
  bw_health_t *h;
  bw_ctx_t *ctx;
} hm_actor_t;

/* --- shared between the files --------------------------------------------------------- */

/* health.c: small helpers */
void bw__health_inc(uint64_t *f);
void bw__health_copy_text(char *dst, size_t cap, const char *src);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void bw__health_fmt_text(char *dst, size_t cap, const char *fmt, ...);
bool bw__health_status_ok(int32_t s);

/* health_snapshot.c */
bool bw__health_publish(bw_health_t *h, uint32_t n);
const snap_t *bw__health_snap_pin(const bw_health_t *h);
void bw__health_snap_unpin(const bw_health_t *h);

/* health_monitor.c */
void bw__health_signal_all(hm_actor_t *a, int kind, int cause, int from, int to,
                           const char *comp, const char *reason);
bw_pid_t bw__health_resolve(const comp_t *c, bw_runtime_t *rt);

/* health_recovery.c */
void bw__health_recover(hm_actor_t *a, uint32_t i, uint64_t now);
void bw__health_spawn_helper(hm_actor_t *a, bw_pid_t *slot);

/* health_recorder.c */
uint64_t bw__health_rec_attach(hm_actor_t *a);

#endif
