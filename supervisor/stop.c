/*
 * bulwark: the supervisor's stop jobs: a shutdown signal to each child in
 * reverse order, a wait up to its timeout on the runtime's clock, then a
 * kill; never blocking the scheduler thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- stopping ------------------------------------------------------------------- */

bool bw__sup_stop_list_add(job_t *j, bw_pid_t pid) {
  bw_pid_t *p = realloc(j->pids, (j->npids + 1) * sizeof(bw_pid_t));
  if (p == NULL)
    return false;
  j->pids = p;
  j->pids[j->npids++] = pid;
  return true;
}

/* Running children from index `from` (all if from = 0), except `except`,
 * in reverse start order. */
void bw__sup_stop_list_build(sup_t *s, job_t *j, uint32_t from, int except) {
  for (uint32_t k = s->n; k-- > from;) {
    child_t *c = &s->ch[k];
    if (!c->gone && c->pid != BW_PID_NONE && (int)k != except)
      bw__sup_stop_list_add(j, c->pid);
  }
  j->built = true;
}

static void child_stopped(sup_t *s, child_t *c, int32_t target) {
  c->pid = BW_PID_NONE;
  if (c->spec->restart == BW_TEMPORARY || (c->dynamic && target == BW_CHILD_STOPPED))
    c->gone = true; /* temporary children and stopped dynamic ones go away */
  else
    c->state = target;
  /* stopped to be restarted with a failed sibling (one_for_all,
   * rest_for_one): that is a restart of this child too */
  if (target == BW_CHILD_RESTARTING && !c->gone)
    c->restarts++;
  (void)s;
}

int bw__sup_step_stop(bw_ctx_t *ctx, sup_t *s, job_t *j) {
  if (!j->built)
    bw__sup_stop_list_build(s, j, 0, -1);
  while (j->pos < j->npids) {
    int i = bw__sup_find_pid(s, j->pids[j->pos]);
    if (i < 0) { /* already gone */
      j->pos++;
      j->signalled = false;
      continue;
    }
    if (j->signalled)
      return STEP_WAIT;
    child_t *c = &s->ch[i];
    int64_t sd = bw__sup_shutdown_of(c);
    j->signalled = true;
    if (sd == BW_SHUTDOWN_BRUTAL_KILL) {
      bw_exit(bw__sup_rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
    } else {
      /* the timer first: the timeout runs from the moment of the signal */
      if (sd > 0)
        j->timer = bw__sup_self_timer(ctx, (uint64_t)sd);
      bw_exit(bw__sup_rt_of(ctx), c->pid, BW_REASON_SHUTDOWN, 0, NULL);
    }
    return STEP_WAIT;
  }
  if (j->kind == J_EXIT) {
    bw__sup_event(ctx, s, BW_EV_SUP_SHUTDOWN, NULL, bw_self(ctx), &j->reason, 0, 0);
    bw__sup_reply_done(ctx, j, 0, NULL, 0);
    bw_exit_self(ctx, j->reason.kind, j->reason.code, j->reason.text);
    return STEP_WAIT; /* the actor exits after this handler */
  }
  bw__sup_reply_done(ctx, j, 0, NULL, 0);
  return STEP_DONE;
}

/* The exit of a child the front stop job is working through. */
bool bw__sup_stop_job_saw_exit(bw_ctx_t *ctx, sup_t *s, bw_pid_t pid, int i) {
  if (s->njobs == 0)
    return false;
  job_t *j = &s->jobs[0];
  if ((j->kind != J_STOP && j->kind != J_EXIT) || !j->built)
    return false;
  for (uint32_t k = j->pos; k < j->npids; k++) {
    if (j->pids[k] != pid)
      continue;
    child_stopped(s, &s->ch[i], j->kind == J_EXIT ? BW_CHILD_STOPPED : j->target);
    if (k == j->pos) {
      if (j->timer != 0) {
        bw_timer_cancel(bw__sup_rt_of(ctx), j->timer);
        j->timer = 0;
      }
      j->pos++;
      j->signalled = false;
    }
    return true;
  }
  return false;
}
