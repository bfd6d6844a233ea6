/*
 * bulwark: the supervisor's start jobs: spawning children in order (local,
 * nested supervisors that answer when their tree is up, remote children
 * through the runtime's remote-operations hook, which a started node
 * installs), rolling back in reverse on a failure, and restarts that fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- starting ----------------------------------------------------------------- */

static void fill_error(bw_sup_error_t *e, const child_t *c, int code, const bw_reason_t *r,
                       const char *subpath) {
  memset(e, 0, sizeof(*e));
  e->code = code;
  const char *id = c->dynamic ? "(dynamic)" : c->spec->id;
  if (subpath != NULL && subpath[0] != '\0')
    snprintf(e->child, sizeof(e->child), "%s/%s", id, subpath);
  else
    snprintf(e->child, sizeof(e->child), "%s", id);
  if (r != NULL)
    e->reason = *r;
  snprintf(e->message, sizeof(e->message), "child '%s' failed to start: %s%s%.100s", e->child,
           bw_strerror(code), (r && r->text[0]) ? ": " : "", r ? r->text : "");
}

static int spawn_child(bw_ctx_t *ctx, sup_t *s, child_t *c, bw_reason_t *why) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.link = true;
  o.init_error = why;
  const bw_behaviour_t *b = c->spec->behaviour;
  void *arg = c->arg;
  sup_arg_t sa;
  if (c->spec->supervisor != NULL) {
    sa.spec = c->spec->supervisor;
    sa.parent = bw_self(ctx);
    sa.parent_path = s->path; /* its reports name it by its place in the tree */
    sa.id = c->spec->id;
    b = &bw__supervisor_behaviour;
    arg = &sa;
    o.trap_exit = true;
    /* a nested supervisor is registered under its child spec's name, as a
     * worker is (its own spec's name is a label: one spec may serve many
     * children); a clash fails the start with BW_EEXIST */
    o.name = c->spec->name;
  } else {
    o.mailbox_capacity = c->spec->mailbox_capacity;
    o.overflow = c->spec->overflow;
    o.dedicated_thread = c->spec->dedicated_thread;
    o.name = c->spec->name;
    o.hang_limit_ms = c->spec->hang_limit_ms;
    o.hang_report_to = c->spec->hang_limit_ms ? bw_self(ctx) : BW_PID_NONE;
  }
  bw_pid_t pid;
  /* its id in the tree, for bw_child_id: a dynamic child's is its
   * template's (the spec outlives the supervisor) */
  int rc = bw__spawn_child(bw__sup_rt_of(ctx), b, arg, &o, c->spec->id, &pid);
  if (rc != 0)
    return rc;
  c->pid = pid;
  c->state = BW_CHILD_RUNNING;
  c->last_start_ms = bw_now_ms(bw__sup_rt_of(ctx));
  return 0;
}

static void started_event(bw_ctx_t *ctx, sup_t *s, const job_t *j, const child_t *c) {
  bw__sup_event(ctx, s, j->mode == MODE_RESTART ? BW_EV_CHILD_RESTARTED : BW_EV_CHILD_STARTED, c,
            c->pid, NULL, c->restarts, 0);
}

/* Child i of the front job failed to start. Returns the step result. */
int bw__sup_start_failed(bw_ctx_t *ctx, sup_t *s, uint32_t i, int code, const bw_reason_t *why,
                        const char *subpath) {
  job_t *j = &s->jobs[0];
  child_t *c = &s->ch[i];
  bw__sup_event(ctx, s, BW_EV_CHILD_START_FAILED, c, c->pid, why, code, 0);
  if (c->pid != BW_PID_NONE)
    bw__sup_ignore_add(s, c->pid); /* a nested supervisor on its way out */
  c->pid = BW_PID_NONE;
  if (j->mode == MODE_INITIAL) {
    /* roll back what started, in reverse, then fail the start */
    job_t fail = *j;
    j->pids = NULL;
    j->timer = 0;
    bw__sup_job_pop(ctx, s);
    job_t *x = bw__sup_job_insert(s, 0, J_EXIT);
    if (x == NULL)
      return STEP_AGAIN;
    x->has_req = fail.has_req;
    x->req = fail.req;
    x->has_err = true;
    fill_error(&x->err, c, code, why, subpath);
    bw__sup_reason_set(&x->reason, BW_REASON_SHUTDOWN, code, x->err.message);
    s->exiting = true;
    return STEP_AGAIN;
  }
  if (j->mode == MODE_API) {
    j->has_err = true;
    fill_error(&j->err, c, code, why, subpath);
    bw__sup_reply_done(ctx, j, code, NULL, 0);
    if (j->api == BW__SUP_START_CHILD || j->api == BW__SUP_START_DYN)
      c->gone = true;
    else
      c->state = BW_CHILD_STOPPED;
    return STEP_DONE;
  }
  /* a failed restart counts, and is retried (after backoff, if any) */
  c->state = BW_CHILD_RESTARTING;
  c->restarts++;
  if (!bw__sup_add_restart(ctx, s)) {
    bw__sup_escalate(ctx, s);
    return STEP_AGAIN;
  }
  /* retry after the backoff: this job ends here and the child's own timer
   * restarts it and the rest of its group (those after it in this job's
   * range are still waiting, marked restarting), so the queue goes on */
  uint64_t d = bw__sup_backoff_delay(ctx, s, c);
  if (d > 0 && bw__sup_restart_later(ctx, s, i, d))
    return STEP_DONE;
  /* no backoff: retry after the messages already queued (as OTP's
   * try_again_restart), never in a loop inside one handler, which would
   * keep the supervisor from hearing, say, its parent's shutdown */
  j->cur = i;
  bw__sup_job_insert(s, 0, J_YIELD);
  return STEP_AGAIN;
}

int bw__sup_step_start(bw_ctx_t *ctx, sup_t *s, job_t *j) {
  if (j->wait_ref != 0)
    return STEP_WAIT;
  for (; j->cur < s->n; j->cur++) {
    uint32_t i = j->cur;
    if (i < j->from || (j->only_one && i != j->from))
      continue;
    child_t *c = &s->ch[i];
    if (c->gone || c->state == BW_CHILD_RUNNING)
      continue;
    if (j->mode == MODE_RESTART &&
        (c->state != BW_CHILD_RESTARTING || c->restart_timer != 0))
      continue; /* not to restart, or its own backoff timer will */
    if (j->mode == MODE_INITIAL && c->dynamic)
      continue;
    bw_reason_t why;
    bw__sup_reason_set(&why, BW_REASON_NORMAL, 0, NULL);
    if (c->spec->remote != NULL) {
      /* on another node: ask it, and wait for its answer as for a nested
       * supervisor's (the pid comes with the answer) */
      uint64_t ref = 0;
      int rc = bw__remote_spawn(ctx, c->spec->remote, &ref);
      if (rc != 0) {
        bw__sup_reason_set(&why, BW_REASON_NOCONNECTION, rc,
                           rc == BW_ENOTSUP ? "no node started on this runtime"
                                            : "no connected node to start it on");
        return bw__sup_start_failed(ctx, s, i, rc, &why, NULL);
      }
      c->pid = BW_PID_NONE;
      j->wait_ref = ref;
      return STEP_WAIT;
    }
    int rc = spawn_child(ctx, s, c, &why);
    if (rc != 0)
      return bw__sup_start_failed(ctx, s, i, rc, &why, NULL);
    if (c->spec->supervisor != NULL) {
      uint64_t ref = 0;
      rc = bw_request(ctx, c->pid, BW__SUP_START, NULL, 0, 0, &ref);
      if (rc != 0) {
        bw__sup_reason_set(&why, BW_REASON_CRASH, rc, "could not ask the supervisor to start");
        bw_exit(bw__sup_rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
        return bw__sup_start_failed(ctx, s, i, rc, &why, NULL);
      }
      j->wait_ref = ref;
      return STEP_WAIT;
    }
    started_event(ctx, s, j, c);
    if (j->mode == MODE_API && j->only_one)
      bw__sup_reply_done(ctx, j, 0, &c->pid, sizeof(c->pid));
  }
  bw__sup_reply_done(ctx, j, 0, NULL, 0); /* the initial start: the tree is up */
  return STEP_DONE;
}

/* The nested supervisor the front J_START waits for answered. */
void bw__sup_nested_started(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  job_t *j = &s->jobs[0];
  uint32_t i = j->cur;
  j->wait_ref = 0;
  child_t *c = &s->ch[i];
  if (m->status == 0 && c->spec->remote != NULL) {
    /* the answer comes from the child itself, after its link */
    c->pid = m->from;
    c->state = BW_CHILD_RUNNING;
    c->last_start_ms = bw_now_ms(bw__sup_rt_of(ctx));
  }
  if (m->status == 0) {
    started_event(ctx, s, j, c);
    if (j->mode == MODE_API && j->only_one)
      bw__sup_reply_done(ctx, j, 0, &c->pid, sizeof(c->pid));
    j->cur++;
    return;
  }
  bw_reason_t why;
  const char *sub = NULL;
  if (m->type == BW__SUP_START && m->len == sizeof(bw_sup_error_t)) {
    const bw_sup_error_t *e = m->data;
    why = e->reason;
    sub = e->child;
  } else {
    bw__sup_reason_set(&why, BW_REASON_CRASH, m->status,
               c->spec->remote != NULL ? "remote start failed" : "nested supervisor failed to start");
  }
  if (bw__sup_start_failed(ctx, s, i, m->status, &why, sub) == STEP_DONE)
    bw__sup_job_pop(ctx, s);
}
