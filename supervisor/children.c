/*
 * bulwark: the supervisor's bookkeeping: its table of children (find, add,
 * the pids whose exit is expected), its job queue, and its telemetry
 * events (each also a report to the logger: report.c). The behaviour that
 * uses them is supervisor.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- helpers ---------------------------------------------------------------- */

bw_runtime_t *bw__sup_rt_of(bw_ctx_t *ctx) { return bw_ctx_runtime(ctx); }

void bw__sup_reason_set(bw_reason_t *r, int kind, int code, const char *text) {
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  r->code = code;
  if (text != NULL)
    snprintf(r->text, sizeof(r->text), "%.*s", (int)sizeof(r->text) - 1, text);
}

int64_t bw__sup_shutdown_of(const child_t *c) {
  int64_t v = c->spec->shutdown_ms;
  if (v == BW_SHUTDOWN_DEFAULT)
    return c->spec->supervisor != NULL ? BW_SHUTDOWN_INFINITY : 5000;
  return v;
}

const char *bw__sup_child_id(const child_t *c) { return c->dynamic ? "" : c->spec->id; }

int bw__sup_find_pid(const sup_t *s, bw_pid_t pid) {
  if (pid == BW_PID_NONE)
    return -1;
  for (uint32_t i = 0; i < s->n; i++)
    if (!s->ch[i].gone && s->ch[i].pid == pid)
      return (int)i;
  return -1;
}

int bw__sup_find_id(const sup_t *s, const char *id) {
  for (uint32_t i = 0; i < s->n; i++)
    if (!s->ch[i].gone && !s->ch[i].dynamic && strcmp(s->ch[i].spec->id, id) == 0)
      return (int)i;
  return -1;
}

int bw__sup_add_child(sup_t *s, const bw_child_spec_t *spec, void *arg, bool dynamic) {
  if (!bw__grow((void **)&s->ch, &s->cap, s->n, sizeof(child_t), 8))
    return -1;
  child_t *c = &s->ch[s->n];
  memset(c, 0, sizeof(*c));
  c->spec = spec;
  c->arg = dynamic ? arg : spec->arg;
  c->dynamic = dynamic;
  c->state = BW_CHILD_STOPPED;
  return (int)s->n++;
}

bool bw__sup_ignore_take(sup_t *s, bw_pid_t pid) {
  for (uint32_t i = 0; i < s->nignore; i++) {
    if (s->ignore[i] == pid) {
      s->ignore[i] = s->ignore[--s->nignore];
      return true;
    }
  }
  return false;
}

void bw__sup_ignore_add(sup_t *s, bw_pid_t pid) {
  if (bw__grow((void **)&s->ignore, &s->capignore, s->nignore, sizeof(bw_pid_t), 8))
    s->ignore[s->nignore++] = pid;
}

/* --- the job queue ---------------------------------------------------------- */

/* Makes room for a job at pos and returns it zeroed (NULL: no memory). */
job_t *bw__sup_job_insert(sup_t *s, uint32_t pos, int kind) {
  if (!bw__grow((void **)&s->jobs, &s->capjobs, s->njobs, sizeof(job_t), 8))
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

job_t *bw__sup_job_push(sup_t *s, int kind) { return bw__sup_job_insert(s, s->njobs, kind); }

void bw__sup_job_release(bw_ctx_t *ctx, job_t *j) {
  if (j->timer != 0 && j->kind != J_YIELD)
    bw_timer_cancel(bw__sup_rt_of(ctx), j->timer);
  j->timer = 0;
  free(j->pids);
  j->pids = NULL;
}

void bw__sup_reply_done(bw_ctx_t *ctx, job_t *j, int status, const void *data, size_t len) {
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

void bw__sup_job_pop(bw_ctx_t *ctx, sup_t *s) {
  bw__sup_job_release(ctx, &s->jobs[0]);
  memmove(&s->jobs[0], &s->jobs[1], (s->njobs - 1) * sizeof(job_t));
  s->njobs--;
}

bw_timer_t bw__sup_self_timer(bw_ctx_t *ctx, uint64_t ms) {
  bw_timer_t t = 0;
  bw_send_after(bw__sup_rt_of(ctx), bw_self(ctx), ms, BW__SUP_TIMER, NULL, 0, &t);
  return t;
}

/* --- telemetry ------------------------------------------------------------------- */

void bw__sup_event(bw_ctx_t *ctx, sup_t *s, int type, const child_t *c, bw_pid_t subject,
                      const bw_reason_t *r, int64_t a, int64_t b) {
  bw_runtime_t *rt = bw__sup_rt_of(ctx);
  bw__sup_report(ctx, s, type, c, subject, r, a, b); /* the logger's (report.c) */
  if (!bw_event_wanted(rt, type))
    return;
  bw_event_t ev = {.type = (uint32_t)type, .source = bw_self(ctx), .subject = subject, .a = a,
                   .b = b};
  if (r != NULL) {
    ev.reason_kind = r->kind;
    ev.reason_code = r->code;
  }
  bw_event_set_names(&ev, s->spec->name, c != NULL ? bw__sup_child_id(c) : NULL,
                     r != NULL ? r->text : NULL);
  bw_event_publish(rt, &ev);
}
