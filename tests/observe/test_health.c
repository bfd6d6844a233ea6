/*
 * Tests of observe/health.c: component actors answering healthy,
 * unhealthy or not at all; check functions on their helper thread,
 * including one that blocks past its timeout; breaker and bulkhead
 * components with their pain and pleasure signals; restart storms,
 * escalations and watchdog reports from the event bus; the aggregate, its
 * BW_EV_HEALTH_CHANGED events and the JSON snapshot; recovery actions; the
 * monitor under a supervisor; bad input.
 *
 * Everything runs on the manual clock. A round starts when the interval
 * timer fires (bw_clock_advance queues it); bw_health_flush then waits until
 * the monitor has handled it, so its requests and their deadlines are armed
 * before the test moves the clock again. Answers arrive asynchronously: the
 * test polls the published snapshot for the outcome it expects (the outcome
 * is deterministic, only its arrival time is not).
 */
#include "support.h"

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/health.h"

#define PERIOD 1000u
#define FLUSH(h) assert_int_equal(bw_health_flush((h), 0), 0)

#include "json_check.h"

/* --- recorders: signals and events ------------------------------------------------------ */

static bwt_sync_t rec_sync = BWT_SYNC_INIT;
static bw_health_signal_t sigs[256];
static int nsigs;
static bw_event_t evs[64];
static int nevs;

static void rec_reset(void) {
  bwt_lock(&rec_sync);
  nsigs = 0;
  nevs = 0;
  bwt_unlock(&rec_sync);
}

static int rec_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  bwt_lock(&rec_sync);
  if (m->type == BW_HEALTH_MSG_SIGNAL && m->len == sizeof(bw_health_signal_t) && nsigs < 256)
    memcpy(&sigs[nsigs++], m->data, sizeof(bw_health_signal_t));
  else if (m->type == BW_MSG_EVENT && m->len == sizeof(bw_event_t) && nevs < 64)
    memcpy(&evs[nevs++], m->data, sizeof(bw_event_t));
  bwt_unlock_signal(&rec_sync);
  return BW_CONTINUE;
}

static const bw_behaviour_t rec_beh = {.name = "recorder", .handle = rec_handle};

static bw_pid_t recorder(bw_runtime_t *rt, bw_health_t *h) {
  rec_reset();
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &rec_beh, NULL, NULL, &p), 0);
  assert_int_equal(bw_health_subscribe(h, p), 0);
  assert_int_equal(bw_event_subscribe(rt, p, BW_EV_MASK(BW_EV_HEALTH_CHANGED)), 0);
  return p;
}

/* Number of recorded signals with this cause (and component, if not NULL). */
static int count_sig(int cause, const char *comp) {
  int n = 0;
  for (int i = 0; i < nsigs; i++)
    if (sigs[i].cause == cause && (comp == NULL || strcmp(sigs[i].component, comp) == 0))
      n++;
  return n;
}

/* --- a component actor whose answer the test sets ------------------------------------------- */

enum { ANSWER_HEALTHY = 0, ANSWER_DEGRADED, ANSWER_UNHEALTHY, ANSWER_SILENT, ANSWER_ERROR };
static uint32_t comp_mode; /* read by every incarnation */
static uint32_t comp_inits;

static int comp_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)ctx;
  (void)st;
  (void)arg;
  __atomic_fetch_add(&comp_inits, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static int comp_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  if (m->type != BW_HEALTH_MSG_CHECK || !(m->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;
  switch (__atomic_load_n(&comp_mode, __ATOMIC_SEQ_CST)) {
  case ANSWER_HEALTHY:
    bw_health_answer(ctx, m, BW_HEALTH_HEALTHY, NULL);
    break;
  case ANSWER_DEGRADED:
    bw_health_answer(ctx, m, BW_HEALTH_DEGRADED, "slow disk");
    break;
  case ANSWER_UNHEALTHY:
    bw_health_answer(ctx, m, BW_HEALTH_UNHEALTHY, "db \"down\"\n");
    break;
  case ANSWER_ERROR:
    bw_reply(ctx, m, BW_ECRASH, 0, NULL, 0);
    break;
  default:
    break; /* silent */
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t comp_beh = {
    .name = "component", .init = comp_init, .handle = comp_handle};

static void set_mode(uint32_t m) { __atomic_store_n(&comp_mode, m, __ATOMIC_SEQ_CST); }

/* --- helpers ------------------------------------------------------------------------------ */

static bw_health_opts_t quiet_opts(void) {
  bw_health_opts_t o;
  bw_health_opts_init(&o);
  o.period_ms = PERIOD;
  o.restart_limit = 0;
  o.escalation_hold_ms = 0;
  o.hang_hold_ms = 0;
  return o;
}

static bw_health_stats_t metrics(const bw_health_t *h) {
  bw_health_stats_t m;
  assert_int_equal(bw_health_stats(h, &m), 0);
  return m;
}

static int comp_status(const bw_health_t *h, const char *name) {
  bw_health_info_t in;
  if (bw_health_component_info(h, name, &in) != 0)
    return -1;
  return in.status;
}

static bool comp_reason_is(const bw_health_t *h, const char *name, const char *reason) {
  bw_health_info_t in;
  return bw_health_component_info(h, name, &in) == 0 && strcmp(in.reason, reason) == 0;
}

/* One period: the interval fires, the monitor handles its round. */
static void next_round(bw_runtime_t *rt, bw_health_t *h) {
  uint64_t r = metrics(h).rounds;
  assert_int_equal(bw_clock_advance(rt, PERIOD), 0);
  FLUSH(h);
  assert_true(metrics(h).rounds > r);
}

static void add_actor(bw_health_t *h, const char *name, bw_pid_t pid, uint64_t timeout) {
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, name);
  c.pid = pid;
  c.timeout_ms = timeout;
  assert_int_equal(bw_health_add(h, &c), 0);
}

static char json[8192];

static const char *get_json(const bw_health_t *h, int *status) {
  size_t len = 0;
  assert_int_equal(bw_health_json(h, json, sizeof json, &len, status), 0);
  assert_int_equal(len, strlen(json));
  assert_true(bwt_json_valid(json));
  return json;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_actor_component(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_HEALTHY);
  bw_pid_t comp;
  assert_int_equal(bw_spawn(rt, &comp_beh, NULL, NULL, &comp), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  /* not running yet: unhealthy, and the JSON says so */
  int st = -1;
  assert_non_null(strstr(get_json(h, &st), "\"running\":false"));
  assert_int_equal(st, BW_HEALTH_UNHEALTHY);
  add_actor(h, "db", comp, 100);
  assert_int_equal(bw_health_start(h, NULL), 0);
  FLUSH(h); /* the first round runs at once */
  BWT_POLL(metrics(h).answers >= 1);
  FLUSH(h);
  assert_int_equal(comp_status(h, "db"), BW_HEALTH_HEALTHY);
  assert_int_equal(bw_health_status(h), BW_HEALTH_HEALTHY);

  /* degraded, with its reason */
  set_mode(ANSWER_DEGRADED);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "db", "slow disk"));
  assert_int_equal(bw_health_status(h), BW_HEALTH_DEGRADED);

  /* unhealthy, with a reason that needs escaping in JSON */
  set_mode(ANSWER_UNHEALTHY);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "db", "db \"down\"\n"));
  get_json(h, &st);
  assert_int_equal(st, BW_HEALTH_UNHEALTHY);
  assert_non_null(strstr(json, "\"reason\":\"db \\\"down\\\"\\n\""));

  /* an error status: unhealthy with its text */
  set_mode(ANSWER_ERROR);
  next_round(rt, h);
  BWT_POLL(comp_reason_is(h, "db", bw_strerror(BW_ECRASH)));

  /* healthy again */
  set_mode(ANSWER_HEALTHY);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_HEALTHY);
  assert_int_equal(bw_health_status(h), BW_HEALTH_HEALTHY);

  /* no answer: unhealthy "timeout" exactly when the deadline passes */
  set_mode(ANSWER_SILENT);
  uint64_t answers = metrics(h).answers;
  next_round(rt, h);
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  FLUSH(h);
  assert_int_equal(comp_status(h, "db"), BW_HEALTH_HEALTHY);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "db", "timeout"));
  assert_int_equal(metrics(h).timeouts, 1);
  assert_int_equal(metrics(h).answers, answers);

  /* a dead component: unhealthy, "not running" */
  set_mode(ANSWER_HEALTHY);
  assert_int_equal(bw_exit(rt, comp, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, comp);
  next_round(rt, h);
  BWT_POLL(comp_reason_is(h, "db", "not running"));
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* check functions: a result the test sets, and one that blocks at a gate */
static int check_result;
static bwt_gate_t gate;
static uint32_t check_runs;

static int check_fn(void *arg, char *reason, size_t cap) {
  (void)arg;
  __atomic_fetch_add(&check_runs, 1, __ATOMIC_SEQ_CST);
  int r = __atomic_load_n(&check_result, __ATOMIC_SEQ_CST);
  if (r == 99) {
    bwt_gate_pass(&gate);
    return BW_HEALTH_HEALTHY;
  }
  if (r == BW_HEALTH_DEGRADED)
    snprintf(reason, cap, "disk 91%% full");
  return r;
}

static void test_check_function(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bwt_gate_init(&gate);
  __atomic_store_n(&check_result, BW_HEALTH_HEALTHY, __ATOMIC_SEQ_CST);
  __atomic_store_n(&check_runs, 0, __ATOMIC_SEQ_CST);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_CHECK, "disk");
  c.check = check_fn;
  c.timeout_ms = 200;
  assert_int_equal(bw_health_add(h, &c), 0);
  next_round(rt, h); /* picked up by the next round */
  BWT_POLL(metrics(h).answers >= 1);
  FLUSH(h);
  assert_int_equal(comp_status(h, "disk"), BW_HEALTH_HEALTHY);
  assert_true(comp_reason_is(h, "disk", ""));

  __atomic_store_n(&check_result, BW_HEALTH_DEGRADED, __ATOMIC_SEQ_CST);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "disk") == BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "disk", "disk 91% full"));

  __atomic_store_n(&check_result, BW_ETIMEDOUT, __ATOMIC_SEQ_CST); /* a negative code */
  next_round(rt, h);
  BWT_POLL(comp_status(h, "disk") == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "disk", bw_strerror(BW_ETIMEDOUT)));

  /* a check that blocks: unhealthy "timeout" at its deadline, while the
   * monitor keeps handling messages (it runs on the helper's thread) */
  __atomic_store_n(&check_result, 99, __ATOMIC_SEQ_CST);
  next_round(rt, h);
  assert_true(bwt_gate_await_waiting(&gate, 1));
  uint32_t runs = __atomic_load_n(&check_runs, __ATOMIC_SEQ_CST);
  assert_int_equal(bw_clock_advance(rt, 200), 0);
  BWT_POLL(comp_reason_is(h, "disk", "timeout"));
  assert_int_equal(comp_status(h, "disk"), BW_HEALTH_UNHEALTHY);
  /* the next rounds do not start it again while it runs */
  next_round(rt, h);
  next_round(rt, h);
  assert_int_equal(metrics(h).overruns, 2);
  assert_int_equal(__atomic_load_n(&check_runs, __ATOMIC_SEQ_CST), runs);
  assert_int_equal(comp_status(h, "disk"), BW_HEALTH_UNHEALTHY);
  /* it returns (healthy, but late: ignored); the next round runs it again */
  __atomic_store_n(&check_result, BW_HEALTH_HEALTHY, __ATOMIC_SEQ_CST);
  bwt_gate_open(&gate);
  BWT_POLL(metrics(h).late == 1);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "disk") == BW_HEALTH_HEALTHY);
  assert_int_equal(__atomic_load_n(&check_runs, __ATOMIC_SEQ_CST), runs + 1);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_breaker_signals(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "api";
  bo.window = BW_BREAKER_WINDOW_NONE;
  bo.failure_threshold = 1;
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, &bo, &br), 0);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_BREAKER, "api");
  c.breaker = br;
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  recorder(rt, h);
  FLUSH(h);
  assert_int_equal(comp_status(h, "api"), BW_HEALTH_HEALTHY);

  /* one failure opens it: degraded, a pain signal "breaker opened" */
  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report(br, &p, BW_ETIMEDOUT), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
  next_round(rt, h);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_HEALTH_FELL, "") == 1);
  assert_int_equal(comp_status(h, "api"), BW_HEALTH_DEGRADED);
  assert_int_equal(bw_health_status(h), BW_HEALTH_DEGRADED);
  bwt_lock(&rec_sync);
  assert_int_equal(count_sig(BW_HEALTH_CAUSE_BREAKER_OPENED, "api"), 1);
  int i = 0;
  while (sigs[i].cause != BW_HEALTH_CAUSE_BREAKER_OPENED)
    i++;
  assert_int_equal(sigs[i].kind, BW_HEALTH_PAIN);
  assert_int_equal(sigs[i].from, BW_HEALTH_HEALTHY);
  assert_int_equal(sigs[i].to, BW_HEALTH_DEGRADED);
  assert_string_equal(sigs[i].reason, "open");
  bwt_unlock(&rec_sync);
  /* BW_EV_HEALTH_CHANGED, a = from, b = to */
  BWT_AWAIT(&rec_sync, nevs == 1);
  assert_int_equal(evs[0].type, BW_EV_HEALTH_CHANGED);
  assert_int_equal(evs[0].a, BW_HEALTH_HEALTHY);
  assert_int_equal(evs[0].b, BW_HEALTH_DEGRADED);
  assert_string_equal(evs[0].source_name, "health");
  assert_string_equal(evs[0].subject_id, "api");

  /* forced open: unhealthy (the default mapping) */
  assert_int_equal(bw_breaker_force_open(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  next_round(rt, h);
  BWT_POLL(bw_health_status(h) == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "api", "forced_open"));

  /* closed again: pleasure signals, and the aggregate recovers */
  assert_int_equal(bw_breaker_reset(br), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  next_round(rt, h);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_HEALTH_RECOVERED, "") == 1);
  assert_int_equal(bw_health_status(h), BW_HEALTH_HEALTHY);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_BREAKER_CLOSED, "api") == 1);
  BWT_AWAIT(&rec_sync, nevs == 3);
  assert_int_equal(evs[2].a, BW_HEALTH_UNHEALTHY);
  assert_int_equal(evs[2].b, BW_HEALTH_HEALTHY);
  assert_int_equal(metrics(h).aggregate_transitions, 3);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_stop(rt);
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* A breaker left half-open with no traffic goes back to open after its
 * default maximum wait, and the monitor follows it: the component reads
 * open_status again (it stayed half_open_status for good before), and
 * healthy once traffic closes the breaker. */
static void test_breaker_idle_half_open(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo); /* half_open_max_ms: the default */
  bo.name = "idle";
  bo.window = BW_BREAKER_WINDOW_NONE;
  bo.failure_threshold = 1;
  bo.open_ms = 1000;
  bo.success_threshold = 1;
  bo.half_open_permits = 1;
  bw_breaker_t *br = NULL;
  assert_int_equal(bw_breaker_new(rt, &bo, &br), 0);
  assert_int_equal(bw_breaker_start(br, NULL), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_BREAKER, "idle");
  c.breaker = br;
  c.open_status = BW_HEALTH_UNHEALTHY; /* so that open and half-open differ */
  c.half_open_status = BW_HEALTH_DEGRADED;
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  FLUSH(h);
  assert_int_equal(comp_status(h, "idle"), BW_HEALTH_HEALTHY);

  bw_breaker_permit_t p;
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report(br, &p, BW_ETIMEDOUT), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  BWT_POLL(comp_status(h, "idle") == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "idle", "open"));
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_HALF_OPEN);
  BWT_POLL(comp_status(h, "idle") == BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "idle", "half_open"));
  /* nobody calls: at the maximum wait it is open again, and so reads */
  assert_int_equal(bw_clock_advance(rt, BW_BREAKER_HALF_OPEN_MAX_MS), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_OPEN);
  BWT_POLL(comp_status(h, "idle") == BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "idle", "open"));
  BWT_POLL(bw_health_status(h) == BW_HEALTH_UNHEALTHY);
  /* the next half-open gets a call that succeeds: closed, healthy */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_HALF_OPEN);
  assert_int_equal(bw_breaker_acquire(br, &p), 0);
  assert_int_equal(bw_breaker_report(br, &p, 0), 0);
  assert_int_equal(bw_breaker_flush(br, 0), 0);
  assert_int_equal(bw_breaker_state(br), BW_BREAKER_CLOSED);
  BWT_POLL(comp_status(h, "idle") == BW_HEALTH_HEALTHY);
  BWT_POLL(bw_health_status(h) == BW_HEALTH_HEALTHY);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_stop(rt);
  assert_int_equal(bw_breaker_destroy(br), 0);
  bw_runtime_destroy(rt);
}

/* events as supervisors and the watchdog publish them */
static void publish(bw_runtime_t *rt, int type, const char *sup, const char *child, int64_t a) {
  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = (uint32_t)type;
  ev.a = a;
  bw_event_set_names(&ev, sup, child, NULL);
  bw_event_publish(rt, &ev);
}

static void test_restarts_escalation_watchdog(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_health_opts_t o = quiet_opts();
  o.restart_limit = 2;
  o.restart_window_ms = 5000;
  o.escalation_hold_ms = 3000;
  o.hang_hold_ms = 2000;
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  recorder(rt, h);
  FLUSH(h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_HEALTHY);
  assert_int_equal(comp_status(h, "escalations"), BW_HEALTH_HEALTHY);
  assert_int_equal(comp_status(h, "watchdog"), BW_HEALTH_HEALTHY);

  /* two restarts in the window: fine; a third: a storm */
  publish(rt, BW_EV_CHILD_RESTARTED, "root", "w1", 1);
  publish(rt, BW_EV_CHILD_RESTARTED, "root", "w1", 2);
  FLUSH(h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_HEALTHY);
  next_round(rt, h); /* t = 1000 */
  publish(rt, BW_EV_CHILD_RESTARTED, "root", "w2", 1);
  FLUSH(h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "restarts", "3 restarts in 5000 ms, last root/w2"));
  assert_int_equal(bw_health_status(h), BW_HEALTH_DEGRADED);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_COMPONENT_FELL, "restarts") == 1);
  /* the first two leave the window at t = 5000 */
  for (int i = 0; i < 3; i++)
    next_round(rt, h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_DEGRADED);
  next_round(rt, h); /* t = 5000 */
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_HEALTHY);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_COMPONENT_RECOVERED, "restarts") == 1);

  /* an escalation: unhealthy for the hold time */
  publish(rt, BW_EV_SUP_ESCALATED, "payments", "", 0);
  FLUSH(h);
  assert_int_equal(comp_status(h, "escalations"), BW_HEALTH_UNHEALTHY);
  assert_true(comp_reason_is(h, "escalations", "supervisor payments escalated"));
  assert_int_equal(bw_health_status(h), BW_HEALTH_UNHEALTHY);
  /* a hang report meanwhile: degraded (the configured status) */
  publish(rt, BW_EV_WATCHDOG_HUNG, "root", "slow", 1500000000ll);
  FLUSH(h);
  assert_int_equal(comp_status(h, "watchdog"), BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "watchdog", "slow hung (1500 ms)"));
  next_round(rt, h); /* +1000 */
  assert_int_equal(comp_status(h, "watchdog"), BW_HEALTH_DEGRADED);
  next_round(rt, h); /* +2000: the hang's hold is over */
  assert_int_equal(comp_status(h, "watchdog"), BW_HEALTH_HEALTHY);
  assert_int_equal(bw_health_status(h), BW_HEALTH_UNHEALTHY);
  next_round(rt, h); /* +3000: the escalation's too */
  assert_int_equal(comp_status(h, "escalations"), BW_HEALTH_HEALTHY);
  assert_int_equal(bw_health_status(h), BW_HEALTH_HEALTHY);
  assert_int_equal(metrics(h).events, 5);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* A real restart storm: a supervisor restarts a crashing child. */
enum { MSG_CRASH = 1 };
static int crasher_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx;
  (void)st;
  return m->type == MSG_CRASH ? BW_ECRASH : BW_CONTINUE;
}
static const bw_behaviour_t crasher_beh = {.name = "crasher", .handle = crasher_handle};
static const bw_child_spec_t crasher_kids[] = {
    {.id = "crasher", .behaviour = &crasher_beh, .name = "crasher"},
};
static const bw_sup_spec_t crasher_sup = {
    .name = "storm", .strategy = BW_ONE_FOR_ONE, .intensity = 100, .period_ms = 60000,
    .children = crasher_kids, .nchildren = 1};

static void test_real_restart_storm(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_health_opts_t o = quiet_opts();
  o.restart_limit = 3;
  o.restart_window_ms = 10000;
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  FLUSH(h);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &crasher_sup, &sup, NULL), 0);
  for (int i = 0; i < 4; i++) {
    bw_pid_t child;
    assert_int_equal(bw_sup_child_pid(rt, sup, "crasher", &child), 0);
    assert_int_equal(bw_send(rt, child, MSG_CRASH, NULL, 0), 0);
    BWT_AWAIT_DEAD(rt, child);
    BWT_POLL(metrics(h).events >= (uint64_t)i + 1);
  }
  FLUSH(h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "restarts", "4 restarts in 10000 ms, last storm/crasher"));
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/*
 * Placement: a monitor in a rest_for_one tree. Placed after a crashing
 * sibling it is stopped before the sibling restarts and started after, so
 * it used to miss the sibling's restart events (and judged 2 restarts, its
 * own, where there were 4: 0 storms for 2 crashes). Its recorder keeps
 * them for it. Placed first it sees the sibling's restarts only.
 */
static bw_child_spec_t place_kids[2];
static bw_sup_spec_t place_sup = {
    .name = "root", .strategy = BW_REST_FOR_ONE, .intensity = 100, .period_ms = 60000,
    .children = place_kids, .nchildren = 2};

static void crash_child(bw_runtime_t *rt, bw_pid_t sup, bw_health_t *h) {
  bw_pid_t child;
  assert_int_equal(bw_sup_child_pid(rt, sup, "a", &child), 0);
  assert_int_equal(bw_send(rt, child, MSG_CRASH, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, child);
  /* the restart is over when both run again */
  bw_pid_t again = BW_PID_NONE;
  BWT_POLL(bw_sup_child_pid(rt, sup, "a", &again) == 0 && again != child &&
           again != BW_PID_NONE && bw_health_pid(h) != BW_PID_NONE);
}

static void run_placement(bool monitor_last, uint32_t limit, const char *expect) {
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_health_opts_t o = quiet_opts();
  o.restart_limit = limit;
  o.restart_window_ms = 60000;
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_child_spec_t crasher = {.id = "a", .behaviour = &crasher_beh};
  bw_child_spec_t mon;
  assert_int_equal(bw_health_child_spec(h, "health", &mon), 0);
  place_kids[0] = monitor_last ? crasher : mon;
  place_kids[1] = monitor_last ? mon : crasher;
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &place_sup, &sup, NULL), 0);
  FLUSH(h);
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_HEALTHY);
  bw_pid_t first = bw_health_pid(h);
  crash_child(rt, sup, h);
  crash_child(rt, sup, h);
  /* placed last, the monitor was restarted with its sibling; first, not */
  if (monitor_last)
    assert_int_not_equal(bw_health_pid(h), first);
  else
    assert_int_equal(bw_health_pid(h), first);
  BWT_POLL(comp_reason_is(h, "restarts", expect));
  assert_int_equal(comp_status(h, "restarts"), BW_HEALTH_DEGRADED);
  assert_int_equal(bw_health_status(h), BW_HEALTH_DEGRADED);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

static void test_placement_rest_for_one_last(void **state) {
  (void)state;
  /* 2 crashes: a and the monitor restarted twice each */
  run_placement(true, 3, "4 restarts in 60000 ms, last root/health");
}

static void test_placement_rest_for_one_first(void **state) {
  (void)state;
  run_placement(false, 1, "2 restarts in 60000 ms, last root/a");
}

/* a pool whose only worker blocks at the gate */
static int blocking_job(bw_ctx_t *ctx, void *res, void *arg) {
  (void)ctx;
  (void)res;
  (void)arg;
  bwt_gate_pass(&gate);
  return 0;
}

typedef struct job_thread {
  bw_bulkhead_t *pool;
  int rc;
} job_thread_t;

static void *run_job(void *p) {
  job_thread_t *j = p;
  j->rc = bw_bulkhead_run(j->pool, blocking_job, NULL, 0);
  return NULL;
}

static void test_bulkhead_component(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bwt_gate_init(&gate);
  bw_bulkhead_opts_t bo;
  bw_bulkhead_opts_init(&bo);
  bo.name = "db";
  bo.workers = 1;
  bo.dedicated_threads = true;
  bw_bulkhead_t *pool = NULL;
  assert_int_equal(bw_bulkhead_new(rt, &bo, &pool), 0);
  assert_int_equal(bw_bulkhead_start(pool, NULL), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_BULKHEAD, "db-pool");
  c.pid = bw_bulkhead_pid(pool); /* the monitor asks the pool by pid */
  c.timeout_ms = 100;
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  recorder(rt, h);
  BWT_POLL(metrics(h).answers >= 1);
  FLUSH(h);
  assert_int_equal(comp_status(h, "db-pool"), BW_HEALTH_HEALTHY);

  /* the worker is busy; the next job is refused */
  job_thread_t jt = {pool, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, run_job, &jt), 0);
  assert_true(bwt_gate_await_waiting(&gate, 1));
  assert_int_equal(bw_bulkhead_run(pool, blocking_job, NULL, 0), BW_EBULKHEAD_FULL);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "db-pool") == BW_HEALTH_DEGRADED);
  assert_true(comp_reason_is(h, "db-pool", "rejecting (1 since last check)"));
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_BULKHEAD_REJECTING, "db-pool") == 1);
  /* no new rejection by the next round: healthy again */
  uint64_t answers = metrics(h).answers;
  next_round(rt, h);
  BWT_POLL(metrics(h).answers > answers);
  FLUSH(h);
  assert_int_equal(comp_status(h, "db-pool"), BW_HEALTH_HEALTHY);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_BULKHEAD_RECOVERED, "db-pool") == 1);
  bwt_gate_open(&gate);
  pthread_join(th, NULL);
  assert_int_equal(jt.rc, 0);
  assert_int_equal(bw_health_destroy(h), 0);
  assert_int_equal(bw_bulkhead_destroy(pool), 0);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static int recover_calls;
static char recover_comp[32];
static int recover_fn(void *arg, const char *comp) {
  (void)arg;
  bwt_lock(&rec_sync);
  recover_calls++;
  snprintf(recover_comp, sizeof recover_comp, "%s", comp);
  bwt_unlock_signal(&rec_sync);
  return 0;
}

static void test_recovery_call(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_UNHEALTHY);
  recover_calls = 0;
  bw_pid_t comp;
  assert_int_equal(bw_spawn(rt, &comp_beh, NULL, NULL, &comp), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "cache");
  c.pid = comp;
  c.timeout_ms = 100;
  c.action = BW_HEALTH_ACTION_CALL;
  c.action_after_ms = 3000;
  c.recover = recover_fn;
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  bw_pid_t rec = recorder(rt, h);
  (void)rec;
  BWT_POLL(comp_status(h, "cache") == BW_HEALTH_UNHEALTHY); /* since t = 0 */
  next_round(rt, h); /* 1000 */
  next_round(rt, h); /* 2000 */
  assert_int_equal(metrics(h).actions, 0);
  next_round(rt, h); /* 3000: unhealthy for the limit */
  assert_int_equal(metrics(h).actions, 1);
  /* the call (on the helper thread) and the signal (a message to the
   * recorder) arrive independently: wait for both */
  BWT_AWAIT(&rec_sync, recover_calls == 1 &&
                           count_sig(BW_HEALTH_CAUSE_RECOVERY_ACTION, "cache") == 1);
  bwt_lock(&rec_sync);
  assert_string_equal(recover_comp, "cache");
  assert_int_equal(count_sig(BW_HEALTH_CAUSE_RECOVERY_ACTION, "cache"), 1);
  for (int i = 0; i < nsigs; i++)
    if (sigs[i].cause == BW_HEALTH_CAUSE_RECOVERY_ACTION) {
      assert_int_equal(sigs[i].kind, BW_HEALTH_ACTION);
      assert_string_equal(sigs[i].reason, "call");
    }
  bwt_unlock(&rec_sync);
  /* still unhealthy: again after another limit, not before */
  next_round(rt, h);
  next_round(rt, h);
  assert_int_equal(metrics(h).actions, 1);
  next_round(rt, h); /* 6000 */
  assert_int_equal(metrics(h).actions, 2);
  BWT_AWAIT(&rec_sync, recover_calls == 2);
  /* healthy: no more actions; the count shows in the JSON */
  set_mode(ANSWER_HEALTHY);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "cache") == BW_HEALTH_HEALTHY);
  for (int i = 0; i < 4; i++)
    next_round(rt, h);
  assert_int_equal(metrics(h).actions, 2);
  assert_non_null(strstr(get_json(h, NULL), "\"actions\":2,\"action_rc\":0"));
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* A supervised component that stays unhealthy is killed; its supervisor
 * restarts it (found again by its registered name) and it answers healthy. */
static const bw_child_spec_t comp_kids[] = {
    {.id = "svc", .behaviour = &comp_beh, .name = "svc"},
};
static const bw_sup_spec_t comp_sup = {
    .name = "svc_sup", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = comp_kids, .nchildren = 1};

static void test_recovery_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_UNHEALTHY);
  __atomic_store_n(&comp_inits, 0, __ATOMIC_SEQ_CST);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &comp_sup, &sup, NULL), 0);
  bw_pid_t first;
  assert_int_equal(bw_whereis(rt, "svc", &first), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "svc");
  c.target_name = "svc";
  c.timeout_ms = 100;
  c.action = BW_HEALTH_ACTION_RESTART;
  c.action_after_ms = 2000;
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  recorder(rt, h);
  BWT_POLL(comp_status(h, "svc") == BW_HEALTH_UNHEALTHY);
  next_round(rt, h);
  assert_true(bw_is_alive(rt, first));
  set_mode(ANSWER_HEALTHY); /* what the restarted one will say */
  next_round(rt, h);        /* 2000: killed */
  BWT_AWAIT_DEAD(rt, first);
  BWT_POLL(__atomic_load_n(&comp_inits, __ATOMIC_SEQ_CST) == 2);
  bw_pid_t second;
  BWT_POLL(bw_whereis(rt, "svc", &second) == 0 && second != first);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "svc") == BW_HEALTH_HEALTHY);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_COMPONENT_RECOVERED, "svc") == 1);
  BWT_AWAIT(&rec_sync, count_sig(BW_HEALTH_CAUSE_RECOVERY_ACTION, "svc") == 1);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* Restart through the supervisor's API, on the recovery helper thread. */
static void test_recovery_sup_restart(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_UNHEALTHY);
  __atomic_store_n(&comp_inits, 0, __ATOMIC_SEQ_CST);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &comp_sup, &sup, NULL), 0);
  bw_pid_t first;
  assert_int_equal(bw_whereis(rt, "svc", &first), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "svc");
  c.target_name = "svc";
  c.timeout_ms = 100;
  c.action = BW_HEALTH_ACTION_RESTART;
  c.action_after_ms = 1000;
  c.sup = sup;
  c.child_id = "svc";
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  BWT_POLL(comp_status(h, "svc") == BW_HEALTH_UNHEALTHY);
  set_mode(ANSWER_HEALTHY);
  next_round(rt, h); /* 1000: terminate + restart_child */
  BWT_AWAIT_DEAD(rt, first);
  BWT_POLL(__atomic_load_n(&comp_inits, __ATOMIC_SEQ_CST) == 2);
  bw_child_info_t info[1];
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(rt, sup, info, 1, &n), 0);
  assert_int_equal(info[0].state, BW_CHILD_RUNNING);
  assert_int_not_equal(info[0].pid, first);
  next_round(rt, h);
  BWT_POLL(comp_status(h, "svc") == BW_HEALTH_HEALTHY);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

static void test_json_snapshot(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_DEGRADED);
  bw_pid_t comp;
  assert_int_equal(bw_spawn(rt, &comp_beh, NULL, NULL, &comp), 0);
  bw_health_opts_t o = quiet_opts();
  o.name = "mon";
  o.restart_limit = 5;
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  add_actor(h, "caf\xc3\xa9", comp, 100); /* UTF-8 kept as is */
  assert_int_equal(bw_health_start(h, NULL), 0);
  BWT_POLL(comp_status(h, "caf\xc3\xa9") == BW_HEALTH_DEGRADED);
  next_round(rt, h);
  int st = -1;
  get_json(h, &st);
  assert_int_equal(st, BW_HEALTH_DEGRADED);
  const char *want =
      "{\"monitor\":\"mon\",\"running\":true,\"status\":\"degraded\",\"since_ms\":0,"
      "\"time_ms\":0,\"components\":[{\"name\":\"restarts\",\"kind\":\"restarts\","
      "\"status\":\"healthy\",\"reason\":\"\",\"since_ms\":0,\"actions\":0},"
      "{\"name\":\"caf\xc3\xa9\",\"kind\":\"actor\",\"status\":\"degraded\","
      "\"reason\":\"slow disk\",\"since_ms\":0,\"actions\":0}]}";
  /* the snapshot is re-rendered on changes only: its time is the last change */
  assert_string_equal(json, want);
  /* too small: nothing copied, the length needed */
  char small[16];
  size_t len = 0;
  memset(small, 'x', sizeof small);
  assert_int_equal(bw_health_json(h, small, sizeof small, &len, NULL), BW_ETOOBIG);
  assert_int_equal(len, strlen(want));
  assert_int_equal(small[0], 'x');
  assert_int_equal(bw_health_json(h, NULL, 0, &len, NULL), BW_ETOOBIG);
  char *exact = malloc(len + 1);
  assert_int_equal(bw_health_json(h, exact, len + 1, &len, NULL), 0);
  assert_string_equal(exact, want);
  free(exact);
  /* stopped: not running, unhealthy */
  assert_int_equal(bw_exit(rt, bw_health_pid(h), BW_REASON_SHUTDOWN, 0, NULL), 0);
  BWT_POLL(bw_health_pid(h) == BW_PID_NONE);
  assert_non_null(strstr(get_json(h, &st), "\"running\":false,\"status\":\"unhealthy\""));
  assert_int_equal(st, BW_HEALTH_UNHEALTHY);
  assert_int_equal(bw_health_status(h), BW_HEALTH_UNHEALTHY);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* Readers on plain threads while the monitor republishes all the time. */
typedef struct reader {
  bw_health_t *h;
  bool *stop;
  int bad;
  long reads;
} reader_t;

static void *reader_main(void *p) {
  reader_t *r = p;
  char buf[4096];
  while (!__atomic_load_n(r->stop, __ATOMIC_SEQ_CST)) {
    size_t len;
    int st;
    if (bw_health_json(r->h, buf, sizeof buf, &len, &st) != 0 || !bwt_json_valid(buf) ||
        strlen(buf) != len)
      r->bad++;
    r->reads++;
  }
  return NULL;
}

static void test_concurrent_readers(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_health_opts_t o = quiet_opts();
  o.restart_limit = 1;
  o.restart_window_ms = 1;
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  FLUSH(h);
  bool stop = false;
  reader_t rd[2] = {{h, &stop, 0, 0}, {h, &stop, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
  /* each restart event changes the reason text: a new snapshot each */
  unsigned long n = bwt_scaled(2000);
  for (unsigned long i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "w%lu", i);
    publish(rt, BW_EV_CHILD_RESTARTED, "root", id, 0);
    if (i % 64 == 0)
      FLUSH(h);
  }
  FLUSH(h);
  __atomic_store_n(&stop, true, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(rd[i].bad, 0);
    assert_true(rd[i].reads > 0);
  }
  assert_true(metrics(h).snapshots > 10);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

/* The monitor as a supervised child: restarted, it takes the handle over. */
static bw_child_spec_t mon_kids[1];
static const bw_sup_spec_t mon_sup = {
    .name = "mon_sup", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = mon_kids, .nchildren = 1};

static void test_supervised_monitor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  set_mode(ANSWER_UNHEALTHY);
  bw_pid_t comp;
  assert_int_equal(bw_spawn(rt, &comp_beh, NULL, NULL, &comp), 0);
  bw_health_opts_t o = quiet_opts();
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  add_actor(h, "db", comp, 100);
  assert_int_equal(bw_health_child_spec(h, "health", &mon_kids[0]), 0);
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &mon_sup, &sup, NULL), 0);
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_UNHEALTHY);
  bw_pid_t first = bw_health_pid(h);
  assert_int_not_equal(first, BW_PID_NONE);
  /* a second monitor on the same handle is refused */
  assert_int_equal(bw_health_start(h, NULL), BW_EALREADY);
  assert_int_equal(bw_health_destroy(h), BW_ERUNNING);
  uint64_t rounds = metrics(h).rounds;
  assert_int_equal(bw_exit(rt, first, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(bw_health_pid(h) != first && bw_health_pid(h) != BW_PID_NONE);
  FLUSH(h);
  assert_true(metrics(h).rounds > rounds); /* its own first round */
  BWT_POLL(comp_status(h, "db") == BW_HEALTH_UNHEALTHY);
  /* the killed one's interval was cancelled: one round per period */
  rounds = metrics(h).rounds;
  next_round(rt, h);
  assert_int_equal(metrics(h).rounds, rounds + 1);
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_health_destroy(h), 0);
  bw_runtime_destroy(rt);
}

static int dummy_check(void *arg, char *reason, size_t cap) {
  (void)arg;
  (void)reason;
  (void)cap;
  return 0;
}

static void test_bad_input(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_health_opts_t o;
  bw_health_opts_init(&o);
  assert_int_equal(bw_health_opts_validate(&o), 0);
  assert_int_equal(bw_health_opts_validate(NULL), BW_EINVAL);
#define BAD_OPTS(expr)                                                                     \
  do {                                                                                     \
    bw_health_opts_init(&o);                                                               \
    expr;                                                                                  \
    assert_int_equal(bw_health_opts_validate(&o), BW_EINVAL);                              \
    bw_health_t *h_ = NULL;                                                                \
    assert_int_equal(bw_health_new(rt, &o, &h_), BW_EINVAL);                               \
    assert_null(h_);                                                                       \
  } while (0)
  BAD_OPTS(o.period_ms = 0);
  BAD_OPTS(o.period_ms = BW_HEALTH_MAX_MS + 1);
  BAD_OPTS(o.max_components = 0);
  BAD_OPTS(o.max_components = BW_HEALTH_MAX_COMPONENTS + 1);
  BAD_OPTS(o.restart_limit = 1001);
  BAD_OPTS(o.restart_window_ms = 0);
  BAD_OPTS(o.hang_status = 3);
  BAD_OPTS(o.hang_status = -1);
  BAD_OPTS(o.name = "");
  BAD_OPTS(o.name = "a-name-that-is-far-too-long-for-it");
  bw_health_t *h = NULL;
  assert_int_equal(bw_health_new(NULL, NULL, &h), BW_EINVAL);
  assert_int_equal(bw_health_new(rt, NULL, NULL), BW_EINVAL);

  bw_health_opts_init(&o);
  o.max_components = 2;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  bw_health_component_t c;
#define BAD_COMP(kind, name, expr)                                                        \
  do {                                                                                     \
    bw_health_component_init(&c, kind, name);                                              \
    expr;                                                                                  \
    assert_int_equal(bw_health_add(h, &c), BW_EINVAL);                                     \
  } while (0)
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a", (void)0);                         /* no target */
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a", (c.pid = 5, c.target_name = "x")); /* both */
  BAD_COMP(BW_HEALTH_KIND_ACTOR, NULL, c.pid = 5);
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "", c.pid = 5);
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "0123456789012345678901234567890123", c.pid = 5);
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a", (c.pid = 5, c.timeout_ms = BW_HEALTH_MAX_MS + 1));
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a", c.target_name = "");
  BAD_COMP(BW_HEALTH_KIND_CHECK, "a", (void)0); /* no function */
  BAD_COMP(BW_HEALTH_KIND_BREAKER, "a", (void)0); /* no breaker */
  BAD_COMP(BW_HEALTH_KIND_BULKHEAD, "a", (c.pid = 5, c.queue_fraction = 0));
  BAD_COMP(BW_HEALTH_KIND_BULKHEAD, "a", (c.pid = 5, c.queue_fraction = 1.5));
  BAD_COMP(BW_HEALTH_KIND_RESTARTS, "a", (void)0); /* built in only */
  BAD_COMP((bw_health_kind_t)42, "a", (void)0);
  /* actions that do not fit */
  BAD_COMP(BW_HEALTH_KIND_CHECK, "a",
           (c.check = dummy_check, c.action = BW_HEALTH_ACTION_RESTART, c.action_after_ms = 1));
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a",
           (c.pid = 5, c.action = BW_HEALTH_ACTION_RESET_BREAKER, c.action_after_ms = 1));
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a", (c.pid = 5, c.action = BW_HEALTH_ACTION_RESTART)); /* 0 ms */
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a",
           (c.pid = 5, c.action = BW_HEALTH_ACTION_RESTART, c.action_after_ms = 1, c.sup = 7));
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a",
           (c.pid = 5, c.action = BW_HEALTH_ACTION_CALL, c.action_after_ms = 1)); /* no fn */
  BAD_COMP(BW_HEALTH_KIND_ACTOR, "a",
           (c.pid = 5, c.action = (bw_health_action_t)9, c.action_after_ms = 1));
  assert_int_equal(bw_health_add(NULL, &c), BW_EINVAL);
  assert_int_equal(bw_health_add(h, NULL), BW_EINVAL);
  /* duplicates (a built-in's name too), and the limit */
  bw_health_component_init(&c, BW_HEALTH_KIND_CHECK, "restarts");
  c.check = dummy_check;
  assert_int_equal(bw_health_add(h, &c), BW_EEXIST);
  c.name = "one";
  assert_int_equal(bw_health_add(h, &c), 0);
  assert_int_equal(bw_health_add(h, &c), BW_EEXIST);
  c.name = "two";
  assert_int_equal(bw_health_add(h, &c), 0);
  c.name = "three";
  assert_int_equal(bw_health_add(h, &c), BW_ELIMIT);

  /* readers and control */
  size_t len;
  char buf[8];
  bw_health_info_t in;
  bw_health_stats_t m;
  assert_int_equal(bw_health_json(NULL, buf, sizeof buf, &len, NULL), BW_EINVAL);
  assert_int_equal(bw_health_json(h, NULL, 4, &len, NULL), BW_EINVAL);
  assert_int_equal(bw_health_json(h, buf, sizeof buf, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_health_status(NULL), BW_EINVAL);
  assert_int_equal(bw_health_component_info(h, "nope", &in), BW_ENOTFOUND);
  assert_int_equal(bw_health_component_info(h, NULL, &in), BW_EINVAL);
  assert_int_equal(bw_health_stats(NULL, &m), BW_EINVAL);
  assert_int_equal(bw_health_stats(h, NULL), BW_EINVAL);
  assert_int_equal(bw_health_subscribe(h, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_health_subscribe(NULL, 5), BW_EINVAL);
  assert_int_equal(bw_health_unsubscribe(h, 5), BW_ENOTFOUND);
  for (uint64_t i = 1; i <= BW_HEALTH_MAX_SUBSCRIBERS; i++)
    assert_int_equal(bw_health_subscribe(h, i), 0);
  assert_int_equal(bw_health_subscribe(h, 1), 0); /* idempotent */
  assert_int_equal(bw_health_subscribe(h, 99), BW_ELIMIT);
  assert_int_equal(bw_health_unsubscribe(h, 1), 0);
  assert_int_equal(bw_health_check_now(h), BW_ENOPROC); /* not started */
  assert_int_equal(bw_health_flush(h, 0), BW_ENOPROC);
  assert_int_equal(bw_health_check_now(NULL), BW_EINVAL);
  assert_int_equal(bw_health_flush(NULL, 0), BW_EINVAL);
  assert_int_equal(bw_health_start(NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_health_child_spec(h, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_health_pid(NULL), BW_PID_NONE);
  assert_int_equal(bw_health_answer(NULL, NULL, 0, NULL), BW_EINVAL);
  assert_string_equal(bw_health_status_name(7), "unknown");
  assert_string_equal(bw_health_kind_name(0), "unknown");
  assert_string_equal(bw_health_cause_name(99), "unknown");
  assert_string_equal(bw_health_cause_name(BW_HEALTH_CAUSE_BREAKER_OPENED), "breaker_opened");
  /* a monitor of another runtime's handle */
  bw_runtime_t *rt2 = bwt_runtime(1, true);
  assert_int_equal(bw_spawn(rt2, &bw_health_behaviour, h, NULL, NULL), BW_EINVAL);
  bw_runtime_destroy(rt2);
  /* after the runtime stopped */
  assert_int_equal(bw_health_start(h, NULL), 0);
  FLUSH(h);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_health_check_now(h), BW_ENOPROC); /* no monitor runs */
  assert_int_equal(bw_health_flush(h, 0), BW_ENOPROC);
  assert_int_equal(bw_health_json(h, json, sizeof json, &len, NULL), 0);
  assert_true(bwt_json_valid(json));
  assert_int_equal(bw_health_destroy(h), 0);
  assert_int_equal(bw_health_destroy(NULL), 0);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actor_component),
      cmocka_unit_test(test_check_function),
      cmocka_unit_test(test_breaker_signals),
      cmocka_unit_test(test_breaker_idle_half_open),
      cmocka_unit_test(test_restarts_escalation_watchdog),
      cmocka_unit_test(test_real_restart_storm),
      cmocka_unit_test(test_placement_rest_for_one_last),
      cmocka_unit_test(test_placement_rest_for_one_first),
      cmocka_unit_test(test_bulkhead_component),
      cmocka_unit_test(test_recovery_call),
      cmocka_unit_test(test_recovery_restart),
      cmocka_unit_test(test_recovery_sup_restart),
      cmocka_unit_test(test_json_snapshot),
      cmocka_unit_test(test_concurrent_readers),
      cmocka_unit_test(test_supervised_monitor),
      cmocka_unit_test(test_bad_input),
  };
  return BWT_RUN_SUITE(tests);
}
