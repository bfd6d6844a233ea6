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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"
#include "supervisor/sup_internal.h"

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

typedef struct sup {
  const bw_sup_spec_t *spec;
  bw_pid_t parent;
  int32_t intensity;
  uint64_t period_ms;
  child_t *ch;
  uint32_t n, cap;
  uint64_t *rst; /* restart times (ms) in the period */
  uint32_t nrst, caprst;
  job_t *jobs;
  uint32_t njobs, capjobs;
  bw_pid_t *ignore; /* abandoned children whose exit is expected */
  uint32_t nignore, capignore;
  bool exiting;
  uint64_t rng;
  uint64_t yield_seq;
} sup_t;

typedef struct sup_arg {
  const bw_sup_spec_t *spec;
  bw_pid_t parent;
} sup_arg_t;

/* --- helpers ---------------------------------------------------------------- */

static bw_runtime_t *rt_of(bw_ctx_t *ctx) { return bw_ctx_runtime(ctx); }

static void reason_set(bw_reason_t *r, int kind, int code, const char *text) {
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  r->code = code;
  if (text != NULL)
    snprintf(r->text, sizeof(r->text), "%.*s", (int)sizeof(r->text) - 1, text);
}

static bool grow(void **p, uint32_t *cap, uint32_t n, size_t elem) {
  if (n < *cap)
    return true;
  uint32_t nc = *cap ? *cap * 2 : 8;
  void *q = realloc(*p, nc * elem);
  if (q == NULL)
    return false;
  *p = q;
  *cap = nc;
  return true;
}

static int64_t shutdown_of(const child_t *c) {
  int64_t v = c->spec->shutdown_ms;
  if (v == BW_SHUTDOWN_DEFAULT)
    return c->spec->supervisor != NULL ? BW_SHUTDOWN_INFINITY : 5000;
  return v;
}

static const char *child_id(const child_t *c) { return c->dynamic ? "" : c->spec->id; }

static int find_pid(const sup_t *s, bw_pid_t pid) {
  if (pid == BW_PID_NONE)
    return -1;
  for (uint32_t i = 0; i < s->n; i++)
    if (!s->ch[i].gone && s->ch[i].pid == pid)
      return (int)i;
  return -1;
}

static int find_id(const sup_t *s, const char *id) {
  for (uint32_t i = 0; i < s->n; i++)
    if (!s->ch[i].gone && !s->ch[i].dynamic && strcmp(s->ch[i].spec->id, id) == 0)
      return (int)i;
  return -1;
}

static int add_child(sup_t *s, const bw_child_spec_t *spec, void *arg, bool dynamic) {
  if (!grow((void **)&s->ch, &s->cap, s->n, sizeof(child_t)))
    return -1;
  child_t *c = &s->ch[s->n];
  memset(c, 0, sizeof(*c));
  c->spec = spec;
  c->arg = dynamic ? arg : spec->arg;
  c->dynamic = dynamic;
  c->state = BW_CHILD_STOPPED;
  return (int)s->n++;
}

static bool ignore_take(sup_t *s, bw_pid_t pid) {
  for (uint32_t i = 0; i < s->nignore; i++) {
    if (s->ignore[i] == pid) {
      s->ignore[i] = s->ignore[--s->nignore];
      return true;
    }
  }
  return false;
}

static void ignore_add(sup_t *s, bw_pid_t pid) {
  if (grow((void **)&s->ignore, &s->capignore, s->nignore, sizeof(bw_pid_t)))
    s->ignore[s->nignore++] = pid;
}

/* --- the job queue ---------------------------------------------------------- */

/* Makes room for a job at pos and returns it zeroed (NULL: no memory). */
static job_t *job_insert(sup_t *s, uint32_t pos, int kind) {
  if (!grow((void **)&s->jobs, &s->capjobs, s->njobs, sizeof(job_t)))
    return NULL;
  if (pos > s->njobs)
    pos = s->njobs;
  memmove(&s->jobs[pos + 1], &s->jobs[pos], (s->njobs - pos) * sizeof(job_t));
  s->njobs++;
  job_t *j = &s->jobs[pos];
  memset(j, 0, sizeof(*j));
  j->kind = kind;
  return j;
}

static job_t *job_push(sup_t *s, int kind) { return job_insert(s, s->njobs, kind); }

static void job_release(bw_ctx_t *ctx, job_t *j) {
  if (j->timer != 0 && j->kind != J_YIELD)
    bw_timer_cancel(rt_of(ctx), j->timer);
  j->timer = 0;
  free(j->pids);
  j->pids = NULL;
}

static void reply_done(bw_ctx_t *ctx, job_t *j, int status, const void *data, size_t len) {
  if (!j->has_req)
    return;
  j->has_req = false;
  if (j->has_err) {
    /* too large to go inline: moved, freed by whoever ends up with it */
    bw_sup_error_t *e = malloc(sizeof(*e));
    if (e != NULL) {
      *e = j->err;
      if (bw_reply_move(ctx, &j->req, j->err.code, BW__SUP_START, e, sizeof(*e), free) == 0)
        return;
      free(e);
    }
    bw_reply(ctx, &j->req, j->err.code, 0, NULL, 0);
    return;
  }
  bw_reply(ctx, &j->req, status, 0, data, len);
}

static void job_pop(bw_ctx_t *ctx, sup_t *s) {
  job_release(ctx, &s->jobs[0]);
  memmove(&s->jobs[0], &s->jobs[1], (s->njobs - 1) * sizeof(job_t));
  s->njobs--;
}

static bw_timer_t self_timer(bw_ctx_t *ctx, uint64_t ms) {
  bw_timer_t t = 0;
  bw_send_after(rt_of(ctx), bw_self(ctx), ms, BW__SUP_TIMER, NULL, 0, &t);
  return t;
}

/* --- telemetry ------------------------------------------------------------------- */

static void sup_event(bw_ctx_t *ctx, sup_t *s, int type, const child_t *c, bw_pid_t subject,
                      const bw_reason_t *r, int64_t a, int64_t b) {
  bw_runtime_t *rt = rt_of(ctx);
  if (!bw_event_wanted(rt, type))
    return;
  bw_event_t ev = {.type = (uint32_t)type, .source = bw_self(ctx), .subject = subject, .a = a,
                   .b = b};
  if (r != NULL) {
    ev.reason_kind = r->kind;
    ev.reason_code = r->code;
  }
  bw_event_set_names(&ev, s->spec->name, c != NULL ? child_id(c) : NULL, r != NULL ? r->text : NULL);
  bw_event_publish(rt, &ev);
}

/* --- intensity and backoff ------------------------------------------------------ */

/* Records a restart; false when that makes more than `intensity` restarts in
 * the period (OTP: keep restarts at or after now - period, then count). */
static bool add_restart(bw_ctx_t *ctx, sup_t *s) {
  uint64_t now = bw_now_ms(rt_of(ctx));
  uint64_t threshold = now > s->period_ms ? now - s->period_ms : 0;
  uint32_t keep = 0;
  for (uint32_t i = 0; i < s->nrst; i++)
    if (s->rst[i] >= threshold)
      s->rst[keep++] = s->rst[i];
  s->nrst = keep;
  if (grow((void **)&s->rst, &s->caprst, s->nrst, sizeof(uint64_t)))
    s->rst[s->nrst++] = now;
  return (int64_t)s->nrst <= (int64_t)s->intensity;
}

static uint64_t backoff_delay(bw_ctx_t *ctx, sup_t *s, child_t *c) {
  const bw_backoff_t *b = &s->spec->backoff;
  if (b->initial_ms == 0)
    return 0;
  uint64_t now = bw_now_ms(rt_of(ctx));
  if (c->last_start_ms != 0 && now - c->last_start_ms >= s->period_ms)
    c->backoff_n = 0; /* it stayed up a whole period: start over */
  uint64_t max = b->max_ms ? b->max_ms : 30000;
  uint64_t mult = b->multiplier ? b->multiplier : 2;
  uint64_t d = b->initial_ms;
  for (uint32_t i = 0; i < c->backoff_n && d < max; i++)
    d *= mult;
  if (d > max)
    d = max;
  c->backoff_n++;
  if (b->jitter_pct > 0) {
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t span = d * b->jitter_pct / 100;
    d -= (s->rng >> 33) % (span + 1);
  }
  return d;
}

/* --- restarts waiting out a backoff --------------------------------------------- */

/* Child i (and, under one_for_all / rest_for_one, the group it heads) is
 * restarted when a timer of its own fires (BW__SUP_BACKOFF), not by a job:
 * a job at the head of the queue would hold up every later job (another
 * child's restart, the run-time API, a shutdown) for the whole delay.
 * False if no timer could be armed: the caller restarts at once. */
static bool restart_later(bw_ctx_t *ctx, sup_t *s, uint32_t i, uint64_t d) {
  bw_timer_t t = 0;
  if (bw_send_after(rt_of(ctx), bw_self(ctx), d, BW__SUP_BACKOFF, NULL, 0, &t) != 0 || t == 0)
    return false;
  s->ch[i].restart_timer = t;
  return true;
}

static void restart_cancel(bw_ctx_t *ctx, child_t *c) {
  if (c->restart_timer != 0)
    bw_timer_cancel(rt_of(ctx), c->restart_timer);
  c->restart_timer = 0;
}

static bool group_strategy(const sup_t *s) {
  return s->spec->strategy == BW_ONE_FOR_ALL || s->spec->strategy == BW_REST_FOR_ONE;
}

/* Where the restart of child i (and its group) starts, and whether it is
 * that child alone. */
static void restart_range(const sup_t *s, uint32_t i, uint32_t *from, bool *only_one) {
  *from = s->spec->strategy == BW_ONE_FOR_ALL ? 0 : i;
  *only_one = !group_strategy(s);
}

static void push_restart(sup_t *s, uint32_t i) {
  job_t *start = job_push(s, J_START);
  if (start == NULL)
    return;
  start->mode = MODE_RESTART;
  restart_range(s, i, &start->from, &start->only_one);
  start->cur = start->from;
}

/* A restart timer fired: its child's (group's) start joins the queue. */
static void backoff_fired(sup_t *s, bw_timer_t t) {
  if (s->exiting)
    return;
  for (uint32_t i = 0; i < s->n; i++) {
    if (!s->ch[i].gone && s->ch[i].restart_timer == t) {
      s->ch[i].restart_timer = 0;
      push_restart(s, i);
      return;
    }
  }
}

/* Child i is deleted with its restart timer pending: that timer was the
 * group's too (the child itself was terminated during its backoff), so it
 * moves to the next child of the group still waiting for it, or is
 * cancelled when none is left. */
static void restart_handoff(bw_ctx_t *ctx, sup_t *s, uint32_t i) {
  child_t *c = &s->ch[i];
  if (c->restart_timer == 0)
    return;
  uint32_t from = s->spec->strategy == BW_REST_FOR_ONE ? i + 1 : 0;
  for (uint32_t k = from; group_strategy(s) && k < s->n; k++) {
    child_t *o = &s->ch[k];
    if (k != i && !o->gone && o->state == BW_CHILD_RESTARTING && o->restart_timer == 0) {
      o->restart_timer = c->restart_timer;
      c->restart_timer = 0;
      return;
    }
  }
  restart_cancel(ctx, c);
}

/* The supervisor is going away: no restart is pending any more. */
static void restarts_drop(bw_ctx_t *ctx, sup_t *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    child_t *c = &s->ch[i];
    restart_cancel(ctx, c);
    if (!c->gone && c->pid == BW_PID_NONE && c->state == BW_CHILD_RESTARTING)
      c->state = BW_CHILD_STOPPED;
  }
}

/* Stops everything and exits with a reason saying why (escalation). */
static void escalate(bw_ctx_t *ctx, sup_t *s) {
  char text[BW_REASON_TEXT_MAX];
  snprintf(text, sizeof(text), "reached max restart intensity (%d in %llu ms)", (int)s->intensity,
           (unsigned long long)s->period_ms);
  /* abandon queued work: requesters learn the supervisor is going away */
  while (s->njobs > 0) {
    job_t *j = &s->jobs[0];
    if (j->has_req) {
      j->has_err = false;
      reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
    }
    job_pop(ctx, s);
  }
  restarts_drop(ctx, s);
  job_t *x = job_push(s, J_EXIT);
  if (x != NULL)
    reason_set(&x->reason, BW_REASON_CRASH, BW_ELIMIT, text);
  s->exiting = true;
  bw_reason_t r;
  reason_set(&r, BW_REASON_CRASH, BW_ELIMIT, text);
  sup_event(ctx, s, BW_EV_SUP_ESCALATED, NULL, bw_self(ctx), &r, s->nrst, (int64_t)s->period_ms);
}

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

static int spawn_child(bw_ctx_t *ctx, child_t *c, bw_reason_t *why) {
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
  int rc = bw_spawn(rt_of(ctx), b, arg, &o, &pid);
  if (rc != 0)
    return rc;
  c->pid = pid;
  c->state = BW_CHILD_RUNNING;
  c->last_start_ms = bw_now_ms(rt_of(ctx));
  return 0;
}

static void started_event(bw_ctx_t *ctx, sup_t *s, const job_t *j, const child_t *c) {
  sup_event(ctx, s, j->mode == MODE_RESTART ? BW_EV_CHILD_RESTARTED : BW_EV_CHILD_STARTED, c,
            c->pid, NULL, c->restarts, 0);
}

/* Child i of the front job failed to start. Returns the step result. */
static int start_failed(bw_ctx_t *ctx, sup_t *s, uint32_t i, int code, const bw_reason_t *why,
                        const char *subpath) {
  job_t *j = &s->jobs[0];
  child_t *c = &s->ch[i];
  sup_event(ctx, s, BW_EV_CHILD_START_FAILED, c, c->pid, why, code, 0);
  if (c->pid != BW_PID_NONE)
    ignore_add(s, c->pid); /* a nested supervisor on its way out */
  c->pid = BW_PID_NONE;
  if (j->mode == MODE_INITIAL) {
    /* roll back what started, in reverse, then fail the start */
    job_t fail = *j;
    j->pids = NULL;
    j->timer = 0;
    job_pop(ctx, s);
    job_t *x = job_insert(s, 0, J_EXIT);
    if (x == NULL)
      return STEP_AGAIN;
    x->has_req = fail.has_req;
    x->req = fail.req;
    x->has_err = true;
    fill_error(&x->err, c, code, why, subpath);
    reason_set(&x->reason, BW_REASON_SHUTDOWN, code, x->err.message);
    s->exiting = true;
    return STEP_AGAIN;
  }
  if (j->mode == MODE_API) {
    j->has_err = true;
    fill_error(&j->err, c, code, why, subpath);
    reply_done(ctx, j, code, NULL, 0);
    if (j->api == BW__SUP_START_CHILD || j->api == BW__SUP_START_DYN)
      c->gone = true;
    else
      c->state = BW_CHILD_STOPPED;
    return STEP_DONE;
  }
  /* a failed restart counts, and is retried (after backoff, if any) */
  c->state = BW_CHILD_RESTARTING;
  c->restarts++;
  if (!add_restart(ctx, s)) {
    escalate(ctx, s);
    return STEP_AGAIN;
  }
  /* retry after the backoff: this job ends here and the child's own timer
   * restarts it and the rest of its group (those after it in this job's
   * range are still waiting, marked restarting), so the queue goes on */
  uint64_t d = backoff_delay(ctx, s, c);
  if (d > 0 && restart_later(ctx, s, i, d))
    return STEP_DONE;
  /* no backoff: retry after the messages already queued (as OTP's
   * try_again_restart), never in a loop inside one handler, which would
   * keep the supervisor from hearing, say, its parent's shutdown */
  j->cur = i;
  job_insert(s, 0, J_YIELD);
  return STEP_AGAIN;
}

static int step_start(bw_ctx_t *ctx, sup_t *s, job_t *j) {
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
    reason_set(&why, BW_REASON_NORMAL, 0, NULL);
    if (c->spec->remote != NULL) {
      /* on another node: ask it, and wait for its answer as for a nested
       * supervisor's (the pid comes with the answer) */
      uint64_t ref = 0;
      int rc = bw__node_remote_spawn(ctx, c->spec->remote, &ref);
      if (rc != 0) {
        reason_set(&why, BW_REASON_NOCONNECTION, rc, "no connected node to start it on");
        return start_failed(ctx, s, i, rc, &why, NULL);
      }
      c->pid = BW_PID_NONE;
      j->wait_ref = ref;
      return STEP_WAIT;
    }
    int rc = spawn_child(ctx, c, &why);
    if (rc != 0)
      return start_failed(ctx, s, i, rc, &why, NULL);
    if (c->spec->supervisor != NULL) {
      uint64_t ref = 0;
      rc = bw_request(ctx, c->pid, BW__SUP_START, NULL, 0, 0, &ref);
      if (rc != 0) {
        reason_set(&why, BW_REASON_CRASH, rc, "could not ask the supervisor to start");
        bw_exit(rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
        return start_failed(ctx, s, i, rc, &why, NULL);
      }
      j->wait_ref = ref;
      return STEP_WAIT;
    }
    started_event(ctx, s, j, c);
    if (j->mode == MODE_API && j->only_one)
      reply_done(ctx, j, 0, &c->pid, sizeof(c->pid));
  }
  reply_done(ctx, j, 0, NULL, 0); /* the initial start: the tree is up */
  return STEP_DONE;
}

/* The nested supervisor the front J_START waits for answered. */
static void nested_started(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  job_t *j = &s->jobs[0];
  uint32_t i = j->cur;
  j->wait_ref = 0;
  child_t *c = &s->ch[i];
  if (m->status == 0 && c->spec->remote != NULL) {
    /* the answer comes from the child itself, after its link */
    c->pid = m->from;
    c->state = BW_CHILD_RUNNING;
    c->last_start_ms = bw_now_ms(rt_of(ctx));
  }
  if (m->status == 0) {
    started_event(ctx, s, j, c);
    if (j->mode == MODE_API && j->only_one)
      reply_done(ctx, j, 0, &c->pid, sizeof(c->pid));
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
    reason_set(&why, BW_REASON_CRASH, m->status,
               c->spec->remote != NULL ? "remote start failed" : "nested supervisor failed to start");
  }
  if (start_failed(ctx, s, i, m->status, &why, sub) == STEP_DONE)
    job_pop(ctx, s);
}

/* --- stopping ------------------------------------------------------------------- */

static bool stop_list_add(job_t *j, bw_pid_t pid) {
  bw_pid_t *p = realloc(j->pids, (j->npids + 1) * sizeof(bw_pid_t));
  if (p == NULL)
    return false;
  j->pids = p;
  j->pids[j->npids++] = pid;
  return true;
}

/* Running children from index `from` (all if from = 0), except `except`,
 * in reverse start order. */
static void stop_list_build(sup_t *s, job_t *j, uint32_t from, int except) {
  for (uint32_t k = s->n; k-- > from;) {
    child_t *c = &s->ch[k];
    if (!c->gone && c->pid != BW_PID_NONE && (int)k != except)
      stop_list_add(j, c->pid);
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

static int step_stop(bw_ctx_t *ctx, sup_t *s, job_t *j) {
  if (!j->built)
    stop_list_build(s, j, 0, -1);
  while (j->pos < j->npids) {
    int i = find_pid(s, j->pids[j->pos]);
    if (i < 0) { /* already gone */
      j->pos++;
      j->signalled = false;
      continue;
    }
    if (j->signalled)
      return STEP_WAIT;
    child_t *c = &s->ch[i];
    int64_t sd = shutdown_of(c);
    j->signalled = true;
    if (sd == BW_SHUTDOWN_BRUTAL_KILL) {
      bw_exit(rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
    } else {
      /* the timer first: the timeout runs from the moment of the signal */
      if (sd > 0)
        j->timer = self_timer(ctx, (uint64_t)sd);
      bw_exit(rt_of(ctx), c->pid, BW_REASON_SHUTDOWN, 0, NULL);
    }
    return STEP_WAIT;
  }
  if (j->kind == J_EXIT) {
    sup_event(ctx, s, BW_EV_SUP_SHUTDOWN, NULL, bw_self(ctx), &j->reason, 0, 0);
    reply_done(ctx, j, 0, NULL, 0);
    bw_exit_self(ctx, j->reason.kind, j->reason.code, j->reason.text);
    return STEP_WAIT; /* the actor exits after this handler */
  }
  reply_done(ctx, j, 0, NULL, 0);
  return STEP_DONE;
}

/* The exit of a child the front stop job is working through. */
static bool stop_job_saw_exit(bw_ctx_t *ctx, sup_t *s, bw_pid_t pid, int i) {
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
        bw_timer_cancel(rt_of(ctx), j->timer);
        j->timer = 0;
      }
      j->pos++;
      j->signalled = false;
    }
    return true;
  }
  return false;
}

/* --- restart decisions --------------------------------------------------------- */

static void child_exited(bw_ctx_t *ctx, sup_t *s, uint32_t i, const bw_reason_t *r) {
  child_t *c = &s->ch[i];
  c->pid = BW_PID_NONE;
  bool abnormal = bw_reason_is_abnormal(r);
  if (c->spec->restart == BW_TEMPORARY) {
    c->gone = true;
    return;
  }
  if (s->exiting || (c->spec->restart == BW_TRANSIENT && !abnormal)) {
    c->state = BW_CHILD_STOPPED;
    if (c->dynamic)
      c->gone = true;
    return;
  }
  c->state = BW_CHILD_RESTARTING;
  c->restarts++;
  if (!add_restart(ctx, s)) {
    escalate(ctx, s);
    return;
  }
  uint64_t d = backoff_delay(ctx, s, c);
  restart_cancel(ctx, c);
  if (group_strategy(s)) {
    uint32_t from = s->spec->strategy == BW_REST_FOR_ONE ? i + 1 : 0;
    /* this group restart takes over the restarts its members were
     * waiting for (a sibling's backoff, a failed start's retry): they
     * come back with the group, after this child's backoff */
    for (uint32_t k = from; k < s->n; k++)
      restart_cancel(ctx, &s->ch[k]);
    job_t *stop = job_push(s, J_STOP);
    if (stop == NULL)
      return;
    stop->target = BW_CHILD_RESTARTING;
    stop_list_build(s, stop, from, (int)i);
  }
  /* the backoff is a timer of this child's: the stop above runs now, the
   * restart joins the queue when the timer fires */
  if (d > 0 && restart_later(ctx, s, i, d))
    return;
  push_restart(s, i);
}

/* The watchdog reports child i hung. With hang_is_crash: kill it (effective
 * when its handler returns; its exit is then ignored) and restart it now. */
static void child_hung(bw_ctx_t *ctx, sup_t *s, const bw_hang_t *h) {
  int i = find_pid(s, h->pid);
  if (i < 0)
    return;
  child_t *c = &s->ch[i];
  /* the event, with the child's id and how long its handler has run */
  sup_event(ctx, s, BW_EV_WATCHDOG_HUNG, c, h->pid, NULL, (int64_t)(h->running_ms * 1000000ull),
            (int64_t)h->limit_ms);
  if (!c->spec->hang_is_crash || s->exiting)
    return;
  ignore_add(s, c->pid);
  bw_exit(rt_of(ctx), c->pid, BW_REASON_KILL, 0, NULL);
  if (c->spec->name != NULL)
    bw_unregister(rt_of(ctx), c->spec->name); /* for the replacement */
  bw_reason_t r;
  char text[BW_REASON_TEXT_MAX];
  snprintf(text, sizeof(text), "hung: handler ran %llu ms (limit %llu ms)",
           (unsigned long long)h->running_ms, (unsigned long long)h->limit_ms);
  reason_set(&r, BW_REASON_CRASH, BW_ETIMEDOUT, text);
  sup_event(ctx, s, BW_EV_CHILD_EXITED, c, h->pid, &r, 0, 0);
  child_exited(ctx, s, (uint32_t)i, &r);
}

/* --- run-time API requests ------------------------------------------------------ */

static int step_api(bw_ctx_t *ctx, sup_t *s, job_t *j) {
  const char *id = (const char *)j->payload;
  bool simple = s->spec->strategy == BW_SIMPLE_ONE_FOR_ONE;
  int i;
  switch (j->api) {
  case BW__SUP_START_CHILD: {
    const bw_child_spec_t *spec;
    memcpy(&spec, j->payload, sizeof(spec));
    bw_sup_error_t e;
    if (simple) {
      reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    if (spec == NULL || bw__sup_check_child(s->spec, spec, s->n, &e) != 0 ||
        (spec->supervisor != NULL && bw_supervisor_validate(spec->supervisor, &e) != 0)) {
      reply_done(ctx, j, BW_EINVAL, NULL, 0);
      return STEP_DONE;
    }
    if (find_id(s, spec->id) >= 0) {
      reply_done(ctx, j, BW_EALREADY, NULL, 0);
      return STEP_DONE;
    }
    i = add_child(s, spec, NULL, false);
    break;
  }
  case BW__SUP_START_DYN: {
    void *arg;
    memcpy(&arg, j->payload, sizeof(arg));
    if (!simple) {
      reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    i = add_child(s, &s->spec->children[0], arg, true);
    break;
  }
  case BW__SUP_TERMINATE:
  case BW__SUP_TERMINATE_PID: {
    if (j->api == BW__SUP_TERMINATE_PID) {
      bw_pid_t pid;
      memcpy(&pid, j->payload, sizeof(pid));
      i = simple ? find_pid(s, pid) : -1;
      if (!simple) {
        reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
        return STEP_DONE;
      }
    } else {
      i = simple ? -1 : find_id(s, id);
      if (simple) {
        reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
        return STEP_DONE;
      }
    }
    if (i < 0) {
      reply_done(ctx, j, BW_ENOTFOUND, NULL, 0);
      return STEP_DONE;
    }
    child_t *c = &s->ch[i];
    if (c->pid == BW_PID_NONE) {
      /* not running: stopped already, waiting out its backoff, or waiting
       * for its group's restart. Its own restart is off; a group restart
       * it heads still brings back the others when its timer fires */
      if (!group_strategy(s))
        restart_cancel(ctx, c);
      if (c->spec->restart == BW_TEMPORARY) {
        restart_handoff(ctx, s, (uint32_t)i);
        c->gone = true;
      }
      c->state = BW_CHILD_STOPPED;
      reply_done(ctx, j, 0, NULL, 0);
      return STEP_DONE;
    }
    /* this job becomes a stop of that one child, replying when done */
    j->kind = J_STOP;
    j->target = BW_CHILD_STOPPED;
    stop_list_add(j, c->pid);
    j->built = true;
    return STEP_AGAIN;
  }
  case BW__SUP_RESTART:
  case BW__SUP_DELETE:
    if (simple) {
      reply_done(ctx, j, BW_ENOTSUP, NULL, 0);
      return STEP_DONE;
    }
    i = find_id(s, id);
    if (i < 0) {
      reply_done(ctx, j, BW_ENOTFOUND, NULL, 0);
      return STEP_DONE;
    }
    if (s->ch[i].state == BW_CHILD_RUNNING) {
      reply_done(ctx, j, BW_ERUNNING, NULL, 0);
      return STEP_DONE;
    }
    if (s->ch[i].state == BW_CHILD_RESTARTING) {
      reply_done(ctx, j, BW_ERESTARTING, NULL, 0);
      return STEP_DONE;
    }
    if (j->api == BW__SUP_DELETE) {
      restart_handoff(ctx, s, (uint32_t)i);
      s->ch[i].gone = true;
      reply_done(ctx, j, 0, NULL, 0);
      return STEP_DONE;
    }
    break;
  default:
    reply_done(ctx, j, BW_EINVAL, NULL, 0);
    return STEP_DONE;
  }
  if (i < 0) {
    reply_done(ctx, j, BW_ENOMEM, NULL, 0);
    return STEP_DONE;
  }
  /* start child i, replying with its pid or the error */
  j->kind = J_START;
  j->mode = MODE_API;
  j->from = j->cur = (uint32_t)i;
  j->only_one = true;
  return STEP_AGAIN;
}

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
      r = step_start(ctx, s, j);
      break;
    case J_STOP:
    case J_EXIT:
      r = step_stop(ctx, s, j);
      break;
    case J_API:
      r = step_api(ctx, s, j);
      break;
    case J_YIELD:
      if (j->timer == 0) {
        j->timer = ++s->yield_seq;
        if (bw_send(rt_of(ctx), bw_self(ctx), BW__SUP_YIELD, &j->timer, sizeof(j->timer)) != 0)
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
      job_pop(ctx, s);
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
    snprintf(info[k].id, sizeof(info[k].id), "%s", child_id(c));
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
  int i = find_id(s, id);
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
  s->intensity = s->spec->intensity == 0                   ? 1
                 : s->spec->intensity == BW_INTENSITY_NONE ? 0
                                                           : s->spec->intensity;
  s->period_ms = s->spec->period_ms ? s->spec->period_ms : 5000;
  s->rng = bw_self(ctx) ^ 0x9E3779B97F4A7C15ull;
  bw_trap_exit(ctx, true);
  for (size_t i = 0; i < s->spec->nchildren; i++) {
    if (s->spec->strategy == BW_SIMPLE_ONE_FOR_ONE)
      break; /* the template is not a child */
    if (add_child(s, &s->spec->children[i], NULL, false) < 0)
      return BW_ENOMEM;
  }
  return 0;
}

static void on_exit_msg(bw_ctx_t *ctx, sup_t *s, const bw_msg_t *m) {
  const bw_reason_t *r = m->data;
  int i = find_pid(s, m->from);
  if (i >= 0) {
    sup_event(ctx, s, BW_EV_CHILD_EXITED, &s->ch[i], m->from, r, 0, 0);
    if (stop_job_saw_exit(ctx, s, m->from, i))
      return;
    job_t *j = s->njobs > 0 ? &s->jobs[0] : NULL;
    if (j != NULL && j->kind == J_START && j->wait_ref != 0 && j->cur == (uint32_t)i) {
      /* the nested supervisor we wait for died before answering */
      j->wait_ref = 0;
      if (start_failed(ctx, s, (uint32_t)i, r->code ? r->code : BW_ECRASH, r, NULL) == STEP_DONE)
        job_pop(ctx, s);
      return;
    }
    child_exited(ctx, s, (uint32_t)i, r);
    return;
  }
  if (ignore_take(s, m->from))
    return;
  if ((m->from == s->parent || m->from == BW_PID_NONE) && r->kind != BW_REASON_NORMAL &&
      !s->exiting) {
    /* the parent, or a thread outside the actors (the runtime stopping,
     * bw_sup_stop), stops us */
    while (s->njobs > 0) {
      job_t *j = &s->jobs[0];
      j->has_err = false;
      reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
      job_pop(ctx, s);
    }
    restarts_drop(ctx, s); /* children waiting out a backoff stay stopped */
    job_t *x = job_push(s, J_EXIT);
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
  job_t *j = job_push(s, J_API);
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
  int i = find_id(s, m->data);
  if (i < 0 || s->ch[i].gone || s->ch[i].state != BW_CHILD_RESTARTING)
    return false;
  bw_reply(ctx, m, BW_ERESTARTING, 0, NULL, 0);
  return true;
}

static int sup_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  sup_t *s = state;
  if (m->flags & BW_MSGF_REPLY) {
    if (s->njobs > 0 && s->jobs[0].kind == J_START && s->jobs[0].wait_ref == m->ref)
      nested_started(ctx, s, m);
  } else {
    switch (m->type) {
    case BW_MSG_EXIT:
      on_exit_msg(ctx, s, m);
      break;
    case BW_MSG_HUNG:
      if (m->len == sizeof(bw_hang_t))
        child_hung(ctx, s, m->data);
      break;
    case BW_MSG_REQUEST_TIMEOUT:
      /* a remote child's node did not answer in time: a failed start */
      if (s->njobs > 0 && s->jobs[0].kind == J_START && s->jobs[0].wait_ref == m->ref) {
        job_t *j = &s->jobs[0];
        j->wait_ref = 0;
        bw_reason_t why;
        reason_set(&why, BW_REASON_NOCONNECTION, BW_ETIMEDOUT, "remote start timed out");
        if (start_failed(ctx, s, j->cur, BW_ETIMEDOUT, &why, NULL) == STEP_DONE)
          job_pop(ctx, s);
      }
      break;
    case BW__SUP_YIELD:
      if (s->njobs > 0 && s->jobs[0].kind == J_YIELD && m->len == sizeof(uint64_t) &&
          *(const uint64_t *)m->data == s->jobs[0].timer)
        job_pop(ctx, s);
      break;
    case BW__SUP_BACKOFF:
      backoff_fired(s, m->ref);
      break;
    case BW__SUP_TIMER:
      if (s->njobs > 0 && s->jobs[0].timer == m->ref) {
        job_t *j = &s->jobs[0];
        j->timer = 0;
        if ((j->kind == J_STOP || j->kind == J_EXIT) && j->pos < j->npids)
          bw_exit(rt_of(ctx), j->pids[j->pos], BW_REASON_KILL, 0, NULL); /* shutdown timed out */
      }
      break;
    case BW__SUP_START: {
      if (!(m->flags & BW_MSGF_REQUEST))
        break;
      job_t *j = job_push(s, J_START);
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
      reply_done(ctx, j, BW_ESHUTDOWN, NULL, 0);
    }
    job_release(ctx, j);
  }
  restarts_drop(ctx, s);
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
  free(s->rst);
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
