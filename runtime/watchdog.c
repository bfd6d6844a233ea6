/*
 * bulwark: the hung-actor watchdog.
 *
 * A watched actor (spawn option hang_limit_ms) stamps the thread that runs
 * it when each handler call starts and clears the stamp when it ends: a
 * clock read and two stores per message, for watched actors only. The
 * timer facility scans the stamps: the timer thread every few milliseconds
 * while watched actors exist (real clock), or each bw_clock_advance (manual
 * clock). A handler past its limit is reported once per call: an event, a
 * BW_MSG_HUNG to the actor's hang_report_to, and, when it holds a scheduler
 * thread, a spare worker so the other actors keep running. A C handler
 * cannot be preempted; what to do about it (for example kill it, which takes
 * effect when it returns, and start a replacement) is the supervisor's call.
 */
#include "runtime/internal.h"

static void report(bw__runtime *rt, bw__thread *th, bw_pid_t pid, uint64_t ran_ns,
                   uint64_t limit_ms, bw_pid_t to) {
  /* one event per hang, from whoever knows the most: the actor told about
   * it (a supervisor adds the child's id), else the runtime */
  int told = BW_ENOPROC;
  if (to != BW_PID_NONE) {
    bw_hang_t h = {.pid = pid, .running_ms = ran_ns / 1000000ull, .limit_ms = limit_ms};
    bw__msg *m = bw__msg_new(rt, to, BW__K_USER, BW_MSG_HUNG, &h, sizeof(h));
    if (m != NULL) {
      m->pub.from = BW_PID_NONE;
      m->pub.flags = BW__MF_NO_NOTIFY;
      told = bw__deliver(rt, m, false);
    }
  }
  if (told != 0 && bw_event_wanted(rt, BW_EV_WATCHDOG_HUNG)) {
    bw_event_t ev = {.type = BW_EV_WATCHDOG_HUNG, .source = BW_PID_NONE, .subject = pid,
                     .a = (int64_t)ran_ns, .b = (int64_t)limit_ms};
    bw_event_set_names(&ev, "watchdog", NULL, "handler running past its limit");
    bw_event_publish(rt, &ev);
  }
  if (th->kind == BW__TH_WORKER) {
    bw__sched_add_spare(rt);
    /* the actors queued behind the hung call may be taken by any worker
     * now (a lone one is otherwise left to its own worker, see steal) */
    bw__sched_handoff(th->worker);
  }
}

static void check(bw__runtime *rt, bw__thread *th, uint64_t now) {
  /* acquire: pairs with the release store of busy_pid, written after the
   * other fields when a call starts */
  bw_pid_t pid = bw__ld64_acq(&th->busy_pid);
  if (pid == BW_PID_NONE)
    return;
  uint64_t since = bw__ld64_rlx(&th->busy_since);
  uint64_t limit = bw__ld64_rlx(&th->busy_limit_ms);
  bw_pid_t to = bw__ld64_rlx(&th->busy_report_to);
  /* the call may have ended and another begun meanwhile: check again */
  if (bw__ld64_acq(&th->busy_pid) != pid || bw__ld64_rlx(&th->busy_since) != since)
    return;
  if (now < since || now - since < limit * 1000000ull)
    return;
  /* once per call: the scanner alone writes reported_since */
  if (bw__ld64_rlx(&th->reported_since) == since + 1)
    return;
  bw__st64_rlx(&th->reported_since, since + 1);
  report(rt, th, pid, now - since, limit, to);
}

void bw__watchdog_scan(bw__runtime *rt) {
  if (bw__ld32_rlx(&rt->nwatched) == 0)
    return;
  uint64_t now = bw__now_ns(rt);
  for (unsigned i = 0, n = bw__nworkers(rt); i < n; i++)
    check(rt, &rt->workers[i].th, now);
  pthread_mutex_lock(&rt->life_mx);
  for (bw__thread *th = rt->watch_list; th != NULL; th = th->watch_next)
    check(rt, th, now);
  pthread_mutex_unlock(&rt->life_mx);
}
