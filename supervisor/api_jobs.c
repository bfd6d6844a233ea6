/*
 * bulwark: the supervisor's side of its run-time API (api.c sends the
 * requests): start, terminate, restart and delete children, run as jobs
 * so they follow the queue's order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- run-time API requests ------------------------------------------------------ */

int bw__sup_step_api(bw_ctx_t *ctx, sup_t *s, job_t *j) {
  const char *id = (const char *)j->payload;
  bool simple = s->spec->strategy == BW_SIMPLE_ONE_FOR_ONE;
  int i;
  switch (j->api) {
  case BW__SUP_START_CHILD: {
    const bw_child_spec_t *spec;
    memcpy(&spec, j->payload, sizeof(spec));
    bw_sup_error_t e;
    if (simple) {
      bw__sup_reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    if (spec == NULL || bw__sup_check_child(s->spec, spec, s->n, &e) != 0 ||
        (spec->supervisor != NULL && bw_supervisor_validate(spec->supervisor, &e) != 0)) {
      bw__sup_reply_done(ctx, j, BW_EINVAL, NULL, 0);
      return STEP_DONE;
    }
    if (bw__sup_find_id(s, spec->id) >= 0) {
      bw__sup_reply_done(ctx, j, BW_EALREADY, NULL, 0);
      return STEP_DONE;
    }
    i = bw__sup_add_child(s, spec, NULL, false);
    break;
  }
  case BW__SUP_START_DYN: {
    void *arg;
    memcpy(&arg, j->payload, sizeof(arg));
    if (!simple) {
      bw__sup_reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    i = bw__sup_add_child(s, &s->spec->children[0], arg, true);
    break;
  }
  case BW__SUP_TERMINATE:
  case BW__SUP_TERMINATE_PID: {
    if (j->api == BW__SUP_TERMINATE_PID) {
      bw_pid_t pid;
      memcpy(&pid, j->payload, sizeof(pid));
      i = simple ? bw__sup_find_pid(s, pid) : -1;
      if (!simple) {
        bw__sup_reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
        return STEP_DONE;
      }
    } else {
      i = simple ? -1 : bw__sup_find_id(s, id);
      if (simple) {
        bw__sup_reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
        return STEP_DONE;
      }
    }
    if (i < 0) {
      bw__sup_reply_done(ctx, j, BW_ENOTFOUND, NULL, 0);
      return STEP_DONE;
    }
    child_t *c = &s->ch[i];
    if (c->pid == BW_PID_NONE) {
      /* not running: stopped already, waiting out its backoff, or waiting
       * for its group's restart. Its own restart is off; a group restart
       * it heads still brings back the others when its timer fires */
      if (!bw__sup_group_strategy(s))
        bw__sup_restart_cancel(ctx, c);
      if (c->spec->restart == BW_TEMPORARY) {
        bw__sup_restart_handoff(ctx, s, (uint32_t)i);
        c->gone = true;
      }
      c->state = BW_CHILD_STOPPED;
      bw__sup_reply_done(ctx, j, 0, NULL, 0);
      return STEP_DONE;
    }
    /* this job becomes a stop of that one child, replying when done */
    j->kind = J_STOP;
    j->target = BW_CHILD_STOPPED;
    bw__sup_stop_list_add(j, c->pid);
    j->built = true;
    return STEP_AGAIN;
  }
  case BW__SUP_RESTART:
  case BW__SUP_DELETE:
    if (simple) {
      bw__sup_reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    i = bw__sup_find_id(s, id);
    if (i < 0) {
      bw__sup_reply_done(ctx, j, BW_ENOTFOUND, NULL, 0);
      return STEP_DONE;
    }
    if (s->ch[i].state == BW_CHILD_RUNNING) {
      bw__sup_reply_done(ctx, j, BW_ERUNNING, NULL, 0);
      return STEP_DONE;
    }
    if (s->ch[i].state == BW_CHILD_RESTARTING) {
      bw__sup_reply_done(ctx, j, BW_ERESTARTING, NULL, 0);
      return STEP_DONE;
    }
    if (j->api == BW__SUP_DELETE) {
      bw__sup_restart_handoff(ctx, s, (uint32_t)i);
      s->ch[i].gone = true;
      bw__sup_reply_done(ctx, j, 0, NULL, 0);
      return STEP_DONE;
    }
    break;
  default:
    bw__sup_reply_done(ctx, j, BW_EINVAL, NULL, 0);
    return STEP_DONE;
  }
  if (i < 0) {
    bw__sup_reply_done(ctx, j, BW_ENOMEM, NULL, 0);
    return STEP_DONE;
  }
  /* start child i, replying with its pid or the error */
  j->kind = J_START;
  j->mode = MODE_API;
  j->from = j->cur = (uint32_t)i;
  j->only_one = true;
  return STEP_AGAIN;
}
