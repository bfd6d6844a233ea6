/*
 * bulwark: the supervisor behaviour.
 *
 * A supervisor is an ordinary actor that traps exits and is linked to its
 * children. Everything that takes time (starting a nested supervisor, which
 * answers when its own tree is up; stopping a child: a shutdown signal, a
 * wait up to its timeout on the runtime's clock, then a kill) is a job in a
 * FIFO queue. The supervisor works through the queue between messages and
 * never blocks its scheduler thread. A restart delayed by backoff is not a
 * job but a timer of the child's own, so it holds up nothing else. Exits of
 * children that no job waits for are handled on arrival: they decide
 * restarts by OTP's rules and enqueue jobs.
 *
 * OTP's semantics, point by point: start in order, roll back in reverse on a
 * start failure; one_for_one, one_for_all, rest_for_one, simple_one_for_one;
 * permanent / transient / temporary (a temporary child is deleted when it
 * exits and is not restarted by a group restart); intensity over a sliding
 * period: more than `intensity` restarts stop all children and the
 * supervisor exits (its parent sees a child failure: escalation); a failed
 * restart counts and is retried; exits from the parent stop the tree, exits
 * from strangers are ignored. Beyond OTP: restart backoff with jitter.
 *
 * This file holds the behaviour (its messages, its job loop, the queries
 * answered at once) and bw_supervisor_start. The rest, one idea a file,
 * share the state in sup_impl.h: children.c (the children table, the job
 * queue, events), start.c and stop.c (those jobs), restart.c (intensity,
 * backoff, restart decisions), api_jobs.c (run-time API requests); the
 * specs are checked in spec.c and the synchronous API is api.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- the job loop ------------------------------------------------------------ */

/* Drops deleted children; only while no job holds child indices. */
static void compact(sup_t *s) {
  uint32_t w = 0;
  for (uint32_t i = 0; i < s->n; i++)
    if (!s->ch[i].gone)
      s->ch[w++] = s->ch[i];
  s->n = w;
}

static void run_jobs(bw_ctx_t *ctx, sup_t *s) {
  while (s->njobs > 0) {
    job_t *j = &s->jobs[0];
    int r;
    switch (j->kind) {
    case J_START:
      r = bw__sup_step_start(ctx, s, j);
      break;
    case J_STOP:
    case J_EXIT:
      r = bw__sup_step_stop(ctx, s, j);
      break;
    case J_API:
      r = bw__sup_step_api(ctx, s, j);
      break;
    case J_YIELD:
      if (j->timer == 0) {
        j->timer = ++s->yield_seq;
        if (bw_send(bw__sup_rt_of(ctx), bw_self(ctx), BW__SUP_YIELD, &j->timer,
                    sizeof(j->timer)) != 0)
          j->timer = 0;
      }
      r = j->timer != 0 ? STEP_WAIT : STEP_DONE;
      break;
    default:
      r = STEP_DONE;
    }
    if (r == STEP_WAIT)
      return;
    if (r == STEP_DONE)
      bw__sup_job_pop(ctx, s);
  }
  compact(s);
}

/* --- queries answered at once -------------------------------------------------- */

static void free_info(void *p) { free(p); }

static void answer_which(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->n; i++)
    n += !s->ch[i].gone;
  bw_child_info_t *info = calloc(n ? n : 1, sizeof(*info));
  if (info == NULL) {
    bw_reply(ctx, m, BW_ENOMEM, 0, NULL, 0);
    return;
  }
  uint32_t k = 0;
  for (uint32_t i = 0; i < s->n; i++) {
    const child_t *c = &s->ch[i];
    if (c->gone)
      continue;
    snprintf(info[k].id, sizeof(info[k].id), "%s", bw__sup_child_id(c));
    info[k].pid = c->pid;
    info[k].type = c->spec->supervisor ? BW_SUPERVISOR : BW_WORKER;
    info[k].restart = c->spec->restart;
    info[k].state = c->state;
    info[k].restarts = c->restarts;
    k++;
  }
  if (bw_reply_move(ctx, m, 0, BW__SUP_WHICH, info, k * sizeof(*info), free_info) != 0)
    free(info);
}

static void answer_count(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  bw_child_counts_t cc = {0};
  for (uint32_t i = 0; i < s->n; i++) {
    const child_t *c = &s->ch[i];
    if (c->gone)
      continue;
    cc.specs++;
    if (c->pid != BW_PID_NONE)
      cc.active++;
    if (c->spec->supervisor)
      cc.supervisors++;
    else
      cc.workers++;
  }
  bw_reply(ctx, m, 0, BW__SUP_COUNT, &cc, sizeof(cc));
}

static void answer_child_pid(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  char id[BW_SUP_ID_MAX] = {0};
  memcpy(id, m->data, m->len < sizeof(id) - 1 ? m->len : sizeof(id) - 1);
  int i = bw__sup_find_id(s, id);
  if (i < 0) {
    bw_reply(ctx, m, BW_ENOTFOUND, 0, NULL, 0);
    return;
  }
  const child_t *c = &s->ch[i];
  if (c->pid == BW_PID_NONE) {
    bw_reply(ctx, m, c->state == BW_CHILD_RESTARTING ? BW_ERESTARTING : BW_ESTATE, 0, NULL, 0);
    return;
  }
  bw_reply(ctx, m, 0, 0, &c->pid, sizeof(c->pid));
}

/* --- the behaviour --------------------------------------------------------------- */

static int sup_init(bw_ctx_t *ctx, void *state, void *arg) {
  sup_t *s = state;
  const sup_arg_t *a = arg;
  s->spec = a->spec;
  s->parent = a->parent;
  bw__sup_path_init(s, a);
  s->intensity = s->spec->intensity == 0                   ? 1
                 : s->spec->intensity == BW_INTENSITY_NONE ? 0
                                                           : s->spec->intensity;
  s->period_ms = s->spec->period_ms ? s->spec->period_ms : 5000;
  /* grown on demand: intensity may be up to a million */
  (void)bw__intensity_init(&s->rst, (uint32_t)s->intensity, s->period_ms, false);
  s->rng = bw_self(ctx) ^ 0x9E3779B97F4A7C15ull;
  bw_trap_exit(ctx, true);
  for (size_t i = 0; i < s->spec->nchildren; i++) {
    if (s->spec->strategy == BW_SIMPLE_ONE_FOR_ONE)
      break; /* the template is not a child */
    if (bw__sup_add_child(s, &s->spec->children[i], NULL, false) < 0)
      return BW_ENOMEM;
  }
  return 0;
}

static void on_exit_msg(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  const bw_reason_t *r = m->data;
  int i = bw__sup_find_pid(s, m->from);
  if (i >= 0) {
    bw__sup_event(ctx, s, BW_EV_CHILD_EXITED, &s->ch[i], m->from, r, 0, 0);
    if (bw__sup_stop_job_saw_exit(ctx, s, m->from, i))
      return;
    job_t *j = s->njobs > 0 ? &s->jobs[0] : NULL;
    if (j != NULL && j->kind == J_START && j->wait_ref != 0 && j->cur == (uint32_t)i) {
      /* the nested supervisor we wait for died before answering */
      j->wait_ref = 0;
      if (bw__sup_start_failed(ctx, s, (uint32_t)i, r->code ? r->code : BW_ECRASH, r, NULL) ==
          STEP_DONE)
        bw__sup_job_pop(ctx, s);
      return;
    }
    bw__sup_child_exited(ctx, s, (uint32_t)i, r);
    return;
  }
  if (bw__sup_ignore_take(s, m->from))
    return;
  if ((m->from == s->parent || m->from == BW_PID_NONE) && r->kind != BW_REASON_NORMAL &&
      !s->exiting) {
    /* the parent, or a thread outside the actors (the runtime stopping,
     * bw_sup_stop), stops us */
    while (s->njobs > 0) {
      job_t *j = &s->jobs[0];
      j->has_err = false;
      bw__sup_reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
      bw__sup_job_pop(ctx, s);
    }
    bw__sup_restarts_drop(ctx, s); /* children waiting out a backoff stay stopped */
    job_t *x = bw__sup_job_push(s, J_EXIT);
    if (x != NULL)
      x->reason = *r;
    s->exiting = true;
  }
  /* exits from strangers are ignored, as OTP does */
}

static void queue_api(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  if (s->exiting) {
    bw_reply(ctx, m, BW_ESHUTDOWN, 0, NULL, 0);
    return;
  }
  job_t *j = bw__sup_job_push(s, J_API);
  if (j == NULL) {
    bw_reply(ctx, m, BW_ENOMEM, 0, NULL, 0);
    return;
  }
  j->api = m->type;
  j->has_req = true;
  j->req = *m;
  memcpy(j->payload, m->data, m->len < sizeof(j->payload) - 1 ? m->len : sizeof(j->payload) - 1);
}

/* restart_child and delete_child of a child waiting for its own restart
 * (a backoff, or a restart job not yet run) answer BW_ERESTARTING at once,
 * as OTP's do, instead of queueing behind that restart. */
static bool answer_restarting(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  /* (terminate_child is queued: it cancels that restart) */
  if ((m->type != BW__SUP_RESTART && m->type != BW__SUP_DELETE) || s->exiting || m->len == 0 ||
      ((const char *)m->data)[m->len - 1] != '\0')
    return false;
  int i = bw__sup_find_id(s, m->data);
  if (i < 0 || s->ch[i].gone || s->ch[i].state != BW_CHILD_RESTARTING)
    return false;
  bw_reply(ctx, m, BW_ERESTARTING, 0, NULL, 0);
  return true;
}

static int sup_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  sup_t *s = state;
  if (m->flags & BW_MSGF_REPLY) {
    if (s->njobs > 0 && s->jobs[0].kind == J_START && s->jobs[0].wait_ref == m->ref)
      bw__sup_nested_started(ctx, s, m);
  } else {
    switch (m->type) {
    case BW_MSG_EXIT:
      on_exit_msg(ctx, s, m);
      break;
    case BW_MSG_HUNG:
      if (m->len == sizeof(bw_hang_t))
        bw__sup_child_hung(ctx, s, m->data);
      break;
    case BW_MSG_REQUEST_TIMEOUT:
      /* a remote child's node did not answer in time: a failed start */
      if (s->njobs > 0 && s->jobs[0].kind == J_START && s->jobs[0].wait_ref == m->ref) {
        job_t *j = &s->jobs[0];
        j->wait_ref = 0;
        bw_reason_t why;
        bw__sup_reason_set(&why, BW_REASON_NOCONNECTION, BW_ETIMEDOUT, "remote start timed out");
        if (bw__sup_start_failed(ctx, s, j->cur, BW_ETIMEDOUT, &why, NULL) == STEP_DONE)
          bw__sup_job_pop(ctx, s);
      }
      break;
    case BW__SUP_YIELD:
      if (s->njobs > 0 && s->jobs[0].kind == J_YIELD && m->len == sizeof(uint64_t) &&
          *(const uint64_t *)m->data == s->jobs[0].timer)
        bw__sup_job_pop(ctx, s);
      break;
    case BW__SUP_BACKOFF:
      bw__sup_backoff_fired(s, m->ref);
      break;
    case BW__SUP_TIMER:
      if (s->njobs > 0 && s->jobs[0].timer == m->ref) {
        job_t *j = &s->jobs[0];
        j->timer = 0;
        if ((j->kind == J_STOP || j->kind == J_EXIT) && j->pos < j->npids)
          /* shutdown timed out */
          bw_exit(bw__sup_rt_of(ctx), j->pids[j->pos], BW_REASON_KILL, 0, NULL);
      }
      break;
    case BW__SUP_START: {
      if (!(m->flags & BW_MSGF_REQUEST))
        break;
      job_t *j = bw__sup_job_push(s, J_START);
      if (j == NULL) {
        bw_reply(ctx, m, BW_ENOMEM, 0, NULL, 0);
        break;
      }
      j->mode = MODE_INITIAL;
      j->has_req = true;
      j->req = *m;
      break;
    }
    case BW__SUP_WHICH:
      answer_which(ctx, s, m);
      break;
    case BW__SUP_COUNT:
      answer_count(ctx, s, m);
      break;
    case BW__SUP_CHILD_PID:
      answer_child_pid(ctx, s, m);
      break;
    case BW__SUP_START_CHILD:
    case BW__SUP_START_DYN:
    case BW__SUP_TERMINATE:
    case BW__SUP_TERMINATE_PID:
    case BW__SUP_RESTART:
    case BW__SUP_DELETE:
      if ((m->flags & BW_MSGF_REQUEST) && !answer_restarting(ctx, s, m))
        queue_api(ctx, s, m);
      break;
    default:
      break; /* not for us */
    }
  }
  run_jobs(ctx, s);
  return BW_CONTINUE;
}

static void sup_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  sup_t *s = state;
  for (uint32_t i = 0; i < s->njobs; i++) {
    job_t *j = &s->jobs[i];
    if (j->has_req) {
      j->has_err = false;
      bw__sup_reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
    }
    bw__sup_job_release(ctx, j);
  }
  bw__sup_restarts_drop(ctx, s);
  /* children still running (the supervisor was killed or forced): they are
   * linked, so they get our exit signal; nothing to wait for here */
}

/* After terminate, or instead of it after a kill: the memory. */
static void sup_cleanup(void *state) {
  sup_t *s = state;
  for (uint32_t i = 0; i < s->njobs; i++)
    free(s->jobs[i].pids); /* timers were cancelled by terminate, or die with the pid */
  s->njobs = 0;
  free(s->jobs);
  free(s->ch);
  bw__intensity_free(&s->rst);
  free(s->ignore);
}

const bw_behaviour_t bw__supervisor_behaviour = {
    .name = "bulwark.supervisor",
    .state_size = sizeof(sup_t),
    .init = sup_init,
    .cleanup = sup_cleanup,
    .handle = sup_handle,
    .terminate = sup_terminate,
    .never_muted = true, /* back-pressure never freezes a supervisor (RUNTIME.md) */
};

/* --- starting a tree from outside -------------------------------------------------- */

int bw_supervisor_start(bw_runtime_t *rt, const bw_sup_spec_t *spec, bw_pid_t *out,
                        bw_sup_error_t *err) {
  if (rt == NULL)
    return BW_EINVAL;
  int rc = bw_supervisor_validate(spec, err);
  if (rc != 0)
    return rc;
  /* refuse before anything exists: it waits for the tree to be up */
  if (!bw_may_block(rt))
    return BW_EWOULDBLOCK;
  sup_arg_t a = {.spec = spec, .parent = BW_PID_NONE};
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.trap_exit = true;
  o.ordered_shutdown = true;
  /* the root is registered under its spec's name (it has no child spec);
   * the name goes with the actor when it exits */
  o.name = spec->name != NULL && spec->name[0] != '\0' ? spec->name : NULL;
  bw_pid_t pid;
  if ((rc = bw_spawn(rt, &bw__supervisor_behaviour, &a, &o, &pid)) != 0) {
    if (err != NULL) {
      memset(err, 0, sizeof(*err));
      err->code = rc;
      snprintf(err->child, sizeof(err->child), "%s", spec->name ? spec->name : "");
      if (rc == BW_EEXIST)
        snprintf(err->message, sizeof(err->message),
                 "supervisor %.80s: its name is already registered", spec->name);
      else
        snprintf(err->message, sizeof(err->message), "supervisor %.80s failed to start: %s",
                 spec->name ? spec->name : "", bw_strerror(rc));
    }
    return rc;
  }
  bw_reply_t r;
  rc = bw_call(rt, pid, BW__SUP_START, NULL, 0, 0, &r);
  if (rc != 0) {
    if (err != NULL) {
      if (r.type == BW__SUP_START && r.ptr != NULL && r.len == sizeof(bw_sup_error_t))
        memcpy(err, r.ptr, sizeof(*err));
      else {
        memset(err, 0, sizeof(*err));
        err->code = rc;
        snprintf(err->message, sizeof(err->message), "supervisor %s failed to start: %s",
                 spec->name ? spec->name : "", bw_strerror(rc));
      }
    }
    if (r.ptr != NULL && r.dtor != NULL)
      r.dtor(r.ptr);
    bw_wait_exit(rt, pid, 0, NULL);
    return rc;
  }
  if (out != NULL)
    *out = pid;
  return 0;
}
