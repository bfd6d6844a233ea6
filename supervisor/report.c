/*
 * bulwark: the supervisor's reports to the runtime's logger (bulwark/log.h),
 * as OTP's supervisors write theirs: a child's crash, its restart, a start
 * that failed, a hung handler, giving up past the restart intensity. Each
 * names the child (id, pid, its path in the tree) and gives the reason as
 * fields: its kind, the error code's name and bw_strerror text, the
 * reason's own text, the restarts so far. Never a message or its payload.
 *
 * Called from bw__sup_event (children.c), the one place every supervisor
 * event is built, whether or not anyone subscribes to the bus. Rejected:
 * an actor subscribed to the bus that logs what it receives. It would be
 * one more actor in every runtime (counted in the statistics tests read),
 * its lines would come late and out of order with the supervisor's own
 * work, the last ones lost at stop, and the events carry less than a
 * report needs (the reason's text cut to 47 bytes, no restart count on an
 * exit, no path).
 */
#include <stdio.h>
#include <string.h>

#include "runtime/log.h"
#include "supervisor/sup_impl.h"
#include "supervisor/sup_internal.h"

/* --- the path of a supervisor in its tree ------------------------------------------- */

void bw__sup_path_init(sup_t *s, const sup_arg_t *a) {
  if (a->parent_path != NULL && a->parent_path[0] != '\0')
    snprintf(s->path, sizeof(s->path), "%s/%s", a->parent_path, a->id ? a->id : "");
  else if (a->parent_path != NULL)
    snprintf(s->path, sizeof(s->path), "%s", a->id ? a->id : "");
  else /* a root: its spec's name */
    snprintf(s->path, sizeof(s->path), "%s", s->spec->name ? s->spec->name : "");
}

/* A child's id (a simple_one_for_one child: its template's id). */
static const char *child_name(const child_t *c) { return c->spec->id ? c->spec->id : ""; }

static void child_path(const sup_t *s, const child_t *c, char *buf, size_t cap) {
  if (s->path[0] != '\0')
    snprintf(buf, cap, "%s/%s", s->path, child_name(c));
  else
    snprintf(buf, cap, "%s", child_name(c));
}

/* --- levels --------------------------------------------------------------------- */

/* The level of an event's report; 0: not reported. */
static int level_of(int type, const bw_reason_t *r) {
  switch (type) {
  case BW_EV_CHILD_EXITED:
    return bw_reason_is_abnormal(r) ? BW_LOG_ERROR : BW_LOG_INFO;
  case BW_EV_CHILD_RESTARTED:
    return BW_LOG_NOTICE;
  case BW_EV_CHILD_STARTED:
  case BW_EV_SUP_SHUTDOWN:
    return BW_LOG_INFO;
  case BW_EV_CHILD_START_FAILED:
  case BW_EV_SUP_ESCALATED:
    return BW_LOG_ERROR;
  case BW_EV_WATCHDOG_HUNG:
    return BW_LOG_WARNING;
  default:
    return 0;
  }
}

static const char *exit_msg(const bw_reason_t *r) {
  switch (r->kind) {
  case BW_REASON_CRASH:
    return "child crashed";
  case BW_REASON_KILLED:
    return "child killed";
  case BW_REASON_NORMAL:
  case BW_REASON_SHUTDOWN:
    return "child stopped";
  default:
    return "child exited";
  }
}

/* --- the reports ------------------------------------------------------------------- */

/* A report about child c (pid: the one the event names). */
static void child_report(bw_ctx_t *ctx, sup_t *s, int type, int level, const child_t *c,
                         bw_pid_t pid, const bw_reason_t *r, int64_t a, int64_t b) {
  char path[BW__SUP_PATH_MAX + BW_SUP_ID_MAX];
  child_path(s, c, path, sizeof path);
  bw__log_who who = {.pid = pid, .name = child_name(c), .path = path};
  bw_log_field_t f[8];
  size_t n = r != NULL && r->code != 0 ? bw__log_reason_fields(r, f) : 0;
  const char *msg = "child started";
  switch (type) {
  case BW_EV_CHILD_EXITED:
    msg = exit_msg(r);
    n = bw__log_reason_fields(r, f); /* a normal exit's too */
    break;
  case BW_EV_CHILD_RESTARTED:
    msg = "child restarted";
    break;
  case BW_EV_CHILD_START_FAILED:
    msg = "child failed to start";
    if (n == 0) { /* no reason with a code (spawn itself failed): the event's a is the code */
      f[n++] = BW_LOG_STR("code", bw_err_name((int)a));
      f[n++] = BW_LOG_STR("error", bw_strerror((int)a));
      if (r != NULL && r->text[0] != '\0')
        f[n++] = BW_LOG_STR("detail", r->text);
    }
    break;
  case BW_EV_WATCHDOG_HUNG:
    msg = "child hung: handler running past its limit";
    f[n++] = BW_LOG_NUM("running_ms", a / 1000000);
    f[n++] = BW_LOG_NUM("limit_ms", b);
    break;
  default:
    break;
  }
  f[n++] = BW_LOG_NUM("restarts", c->restarts);
  bw__log_about(bw__sup_rt_of(ctx), level, &who, f, n, "%s", msg);
}

/* A report about the supervisor itself. */
static void sup_report(bw_ctx_t *ctx, sup_t *s, int type, int level, const bw_reason_t *r,
                       int64_t a, int64_t b) {
  bw__log_who who = {.pid = bw_self(ctx), .name = s->spec->name, .path = s->path};
  bw_log_field_t f[8];
  size_t n = r != NULL ? bw__log_reason_fields(r, f) : 0;
  if (type == BW_EV_SUP_ESCALATED) {
    f[n++] = BW_LOG_NUM("restarts", a);
    f[n++] = BW_LOG_NUM("intensity", s->intensity);
    f[n++] = BW_LOG_NUM("period_ms", b);
  }
  bw__log_about(bw__sup_rt_of(ctx), level, &who, f, n, "%s",
                type == BW_EV_SUP_ESCALATED
                    ? "supervisor gave up: too many restarts; stopping its children"
                    : "supervisor stopped its children");
}

void bw__sup_report(bw_ctx_t *ctx, sup_t *s, int type, const child_t *c, bw_pid_t subject,
                    const bw_reason_t *r, int64_t a, int64_t b) {
  int level = level_of(type, r);
  if (level == 0 || !bw_log_enabled(bw__sup_rt_of(ctx), level))
    return;
  if (c != NULL)
    child_report(ctx, s, type, level, c, subject, r, a, b);
  else
    sup_report(ctx, s, type, level, r, a, b);
}
