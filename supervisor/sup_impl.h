/*
 * bulwark internal: the supervisor actor's state, shared by its files:
 *   supervisor.c  the behaviour, the job loop, queries, bw_supervisor_start;
 *   children.c    the children table, the job queue, events;
 *   start.c       start jobs (and rollback);
 *   stop.c        stop jobs (shutdown, timeout, kill);
 *   restart.c     intensity, backoff, restart decisions;
 *   report.c      reports to the runtime's logger, the supervisor's path;
 *   api_jobs.c    the run-time API's requests, as jobs.
 */
#ifndef BW_SUPERVISOR_IMPL_H
#define BW_SUPERVISOR_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "bulwark/bulwark.h"
#include "runtime/grow.h"
#include "runtime/intensity.h"

enum { J_START, J_STOP, J_EXIT, J_API, J_YIELD };
enum { MODE_INITIAL, MODE_RESTART, MODE_API };
enum { STEP_DONE, STEP_WAIT, STEP_AGAIN };

typedef struct child {
  const bw_child_spec_t *spec;
  void *arg;
  bw_pid_t pid;
  int32_t state; /* bw_child_state_t */
  bool dynamic;
  bool gone; /* deleted; compacted when the queue is empty */
  uint32_t restarts;
  uint32_t backoff_n;
  uint64_t last_start_ms;
  /* A restart waiting out its backoff: this child's and, under one_for_all
   * and rest_for_one, that of the group it heads (the children stopped with
   * it). A timer of its own, never a job: the queue goes on meanwhile. */
  bw_timer_t restart_timer;
} child_t;

typedef struct job {
  int kind;
  /* J_START */
  int mode;
  uint32_t from, cur;
  bool only_one;
  uint64_t wait_ref; /* awaited start reply of a nested supervisor */
  /* J_STOP and J_EXIT */
  bw_pid_t *pids;
  uint32_t npids, pos;
  bool built, signalled;
  int32_t target; /* state given to stopped children */
  bw_timer_t timer; /* kill timer; J_YIELD's token */
  bw_reason_t reason; /* J_EXIT: the supervisor's exit reason */
  /* reply when done */
  uint32_t api; /* request type of J_API */
  bool has_req;
  bw_msg_t req;
  bool has_err;
  bw_sup_error_t err;
  uint8_t payload[BW_SUP_ID_MAX];
} job_t;

/* A supervisor's path in its tree ("root/service"), for its reports. */
#define BW__SUP_PATH_MAX 192u

typedef struct sup {
  const bw_sup_spec_t *spec;
  bw_pid_t parent;
  int32_t intensity;
  uint64_t period_ms;
  child_t *ch;
  uint32_t n, cap;
  bw__intensity rst; /* restart times (ms): intensity over the period */
  job_t *jobs;
  uint32_t njobs, capjobs;
  bw_pid_t *ignore; /* abandoned children whose exit is expected */
  uint32_t nignore, capignore;
  bool exiting;
  uint64_t rng;
  uint64_t yield_seq;
  char path[BW__SUP_PATH_MAX]; /* the parent's path / the child id; a root: its name */
} sup_t;

typedef struct sup_arg {
  const bw_sup_spec_t *spec;
  bw_pid_t parent;
  /* a nested supervisor: its parent's path and its child id (NULL: a root) */
  const char *parent_path;
  const char *id;
} sup_arg_t;

/* children.c */
bw_runtime_t *bw__sup_rt_of(bw_ctx_t *ctx);
void bw__sup_reason_set(bw_reason_t *r, int kind, int code, const char *text);
int64_t bw__sup_shutdown_of(const child_t *c);
const char *bw__sup_child_id(const child_t *c);
int bw__sup_find_pid(const sup_t *s, bw_pid_t pid);
int bw__sup_find_id(const sup_t *s, const char *id);
int bw__sup_add_child(sup_t *s, const bw_child_spec_t *spec, void *arg, bool dynamic);
bool bw__sup_ignore_take(sup_t *s, bw_pid_t pid);
void bw__sup_ignore_add(sup_t *s, bw_pid_t pid);
job_t *bw__sup_job_insert(sup_t *s, uint32_t pos, int kind);
job_t *bw__sup_job_push(sup_t *s, int kind);
void bw__sup_job_release(bw_ctx_t *ctx, job_t *j);
void bw__sup_reply_done(bw_ctx_t *ctx, job_t *j, int status, const void *data, size_t len);
void bw__sup_job_pop(bw_ctx_t *ctx, sup_t *s);
bw_timer_t bw__sup_self_timer(bw_ctx_t *ctx, uint64_t ms);
void bw__sup_event(bw_ctx_t *ctx, sup_t *s, int type, const child_t *c, bw_pid_t subject,
                   const bw_reason_t *r, int64_t a, int64_t b);

/* restart.c */
bool bw__sup_add_restart(bw_ctx_t *ctx, sup_t *s);
uint64_t bw__sup_backoff_delay(bw_ctx_t *ctx, sup_t *s, child_t *c);
bool bw__sup_restart_later(bw_ctx_t *ctx, sup_t *s, uint32_t i, uint64_t d);
void bw__sup_restart_cancel(bw_ctx_t *ctx, child_t *c);
bool bw__sup_group_strategy(const sup_t *s);
void bw__sup_backoff_fired(sup_t *s, bw_timer_t t);
void bw__sup_restart_handoff(bw_ctx_t *ctx, sup_t *s, uint32_t i);
void bw__sup_restarts_drop(bw_ctx_t *ctx, sup_t *s);
void bw__sup_escalate(bw_ctx_t *ctx, sup_t *s);
void bw__sup_child_exited(bw_ctx_t *ctx, sup_t *s, uint32_t i, const bw_reason_t *r);
void bw__sup_child_hung(bw_ctx_t *ctx, sup_t *s, const bw_hang_t *h);

/* start.c */
int bw__sup_start_failed(bw_ctx_t *ctx, sup_t *s, uint32_t i, int code, const bw_reason_t *why,
                         const char *subpath);
int bw__sup_step_start(bw_ctx_t *ctx, sup_t *s, job_t *j);
void bw__sup_nested_started(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m);

/* stop.c */
bool bw__sup_stop_list_add(job_t *j, bw_pid_t pid);
void bw__sup_stop_list_build(sup_t *s, job_t *j, uint32_t from, int except);
int bw__sup_step_stop(bw_ctx_t *ctx, sup_t *s, job_t *j);
bool bw__sup_stop_job_saw_exit(bw_ctx_t *ctx, sup_t *s, bw_pid_t pid, int i);

/* report.c */
void bw__sup_path_init(sup_t *s, const sup_arg_t *a);
void bw__sup_report(bw_ctx_t *ctx, sup_t *s, int type, const child_t *c, bw_pid_t subject,
                    const bw_reason_t *r, int64_t a, int64_t b);

/* api_jobs.c */
int bw__sup_step_api(bw_ctx_t *ctx, sup_t *s, job_t *j);

#endif
