/*
 * Timers under the manual clock: bw_send_after fires when the clock reaches
 * its due time and not before; equal due times fire in creation order;
 * bw_send_interval fires once per period; cancel; receive timeouts; bw_call
 * deadlines on the runtime's clock; the cap on pending timers
 * (bw_runtime_opts.max_timers): what it refuses, the deadlines' headroom,
 * and the timers it never refuses (a receive timeout's re-arming, a
 * supervisor's shutdown timer).
 *
 * bw_clock_advance queues the due timers' messages before it returns, and a
 * bw_call from the main thread queues behind them (same sender), so one call
 * after an advance is enough to see what fired.
 */
#include "support.h"

#include <stdatomic.h>

enum { T_TICK = 1, T_GET, T_SET_TIMEOUT, T_ARM, T_HOLD, T_RELEASE, T_STOP };

#define MAXEV 256

typedef struct event {
  uint32_t type;
  uint32_t len;
  uint64_t ref;
  bw_pid_t from;
  uint32_t val;
  bw_pid_t to; /* the actor that got it */
} event_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static event_t evs[MAXEV]; /* under sync_ */
static int nev;
static bool holding;
static bw_msg_t held; /* a copy of a request, to answer later */
static int release_rc;

static void reset(void) {
  bwt_lock(&sync_);
  memset(evs, 0, sizeof evs);
  nev = 0;
  holding = false;
  release_rc = 1;
  bwt_unlock(&sync_);
}

static int nevents(void) {
  bwt_lock(&sync_);
  int n = nev;
  bwt_unlock(&sync_);
  return n;
}

static event_t event_at(int i) {
  bwt_lock(&sync_);
  event_t e = evs[i];
  bwt_unlock(&sync_);
  return e;
}

typedef struct arm_req {
  bw_pid_t to;
  uint64_t ms;
  uint32_t val;
} arm_req_t;

static int tp_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  uint64_t ms = (uint64_t)(uintptr_t)arg;
  if (ms > 0)
    return bw_set_receive_timeout(ctx, ms);
  return 0;
}

static int tp_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  switch (msg->type) {
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, NULL, 0);
    return BW_CONTINUE;
  case T_SET_TIMEOUT: {
    uint64_t ms;
    memcpy(&ms, msg->data, sizeof ms);
    int rc = bw_set_receive_timeout(ctx, ms);
    bw_reply(ctx, msg, rc, T_SET_TIMEOUT, NULL, 0);
    return BW_CONTINUE;
  }
  case T_ARM: {
    arm_req_t a;
    memcpy(&a, msg->data, sizeof a);
    bw_timer_t t = 0;
    int rc = bw_send_after(bw_ctx_runtime(ctx), a.to, a.ms, T_TICK, &a.val, sizeof a.val, &t);
    bw_reply(ctx, msg, rc, T_ARM, &t, sizeof t);
    return BW_CONTINUE;
  }
  case T_HOLD:
    bwt_lock(&sync_);
    held = *msg;
    held.data = NULL;
    held.len = 0;
    holding = true;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  case T_RELEASE: {
    bwt_lock(&sync_);
    bw_msg_t h = held;
    bwt_unlock(&sync_);
    int rc = bw_reply(ctx, &h, 0, T_HOLD, NULL, 0);
    bwt_lock(&sync_);
    release_rc = rc;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  case T_STOP:
    return BW_STOP;
  default:
    bwt_lock(&sync_);
    if (nev < MAXEV) {
      event_t *e = &evs[nev];
      e->type = msg->type;
      e->len = msg->len;
      e->ref = msg->ref;
      e->from = msg->from;
      e->to = bw_self(ctx);
      if (msg->len == sizeof(uint32_t))
        memcpy(&e->val, msg->data, sizeof e->val);
    }
    nev++;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t tp = {
    .name = "timer_probe", .state_size = 8, .init = tp_init, .handle = tp_handle};

static bw_pid_t spawn_tp(bw_runtime_t *rt, uint64_t receive_timeout_ms) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &tp, (void *)(uintptr_t)receive_timeout_ms, NULL, &pid), 0);
  return pid;
}

static void sync_with(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
}

static bw_timer_t after(bw_runtime_t *rt, bw_pid_t pid, uint64_t ms, uint32_t val) {
  bw_timer_t t = 0;
  assert_int_equal(bw_send_after(rt, pid, ms, T_TICK, &val, sizeof val, &t), 0);
  assert_int_not_equal(t, 0);
  return t;
}

static void test_send_after_fires_when_due(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  assert_int_equal(bw_now_ms(rt), 0);
  bw_pid_t p = spawn_tp(rt, 0);

  uint32_t val = 41;
  bw_timer_t t = 0;
  assert_int_equal(bw_send_after(rt, p, 100, T_TICK, &val, sizeof val, &t), 0);
  assert_int_not_equal(t, 0);
  val = 0; /* the payload was copied when the timer was set */

  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(bw_now_ms(rt), 99);
  sync_with(rt, p);
  assert_int_equal(nevents(), 0);

  assert_int_equal(bw_clock_advance(rt, 1), 0);
  assert_int_equal(bw_now_ms(rt), 100);
  assert_int_equal(bw_now_ns(rt), 100ull * 1000000ull);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  event_t e = event_at(0);
  assert_int_equal(e.type, T_TICK);
  assert_int_equal(e.ref, t);
  assert_int_equal(e.val, 41);
  assert_int_equal(e.from, BW_PID_NONE);

  /* a one-shot fires once */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

static void test_equal_due_fire_in_creation_order(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 0);
  bw_timer_t ids[8];
  for (uint32_t i = 0; i < 5; i++)
    ids[i] = after(rt, p, 50, 10 + i);
  ids[5] = after(rt, p, 30, 1);
  ids[6] = after(rt, p, 10, 0);
  ids[7] = after(rt, p, 51, 99);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < i; j++)
      assert_int_not_equal(ids[i], ids[j]);

  assert_int_equal(bw_clock_advance(rt, 100), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 8);
  const uint32_t want[8] = {0, 1, 10, 11, 12, 13, 14, 99};
  const int want_id[8] = {6, 5, 0, 1, 2, 3, 4, 7};
  for (int i = 0; i < 8; i++) {
    assert_int_equal(event_at(i).val, want[i]);
    assert_int_equal(event_at(i).ref, ids[want_id[i]]);
  }
  bw_runtime_destroy(rt);
}

static void test_interval_once_per_period(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 0);
  uint32_t val = 7;
  bw_timer_t t = 0;
  assert_int_equal(bw_send_interval(rt, p, 10, T_TICK, &val, sizeof val, &t), 0);
  assert_int_not_equal(t, 0);

  assert_int_equal(bw_clock_advance(rt, 9), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 2);
  for (int k = 3; k <= 6; k++) {
    assert_int_equal(bw_clock_advance(rt, 10), 0);
    sync_with(rt, p);
    assert_int_equal(nevents(), k);
  }
  for (int i = 0; i < 6; i++) {
    assert_int_equal(event_at(i).ref, t);
    assert_int_equal(event_at(i).val, 7);
  }

  assert_int_equal(bw_timer_cancel(rt, t), 0);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 6);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

static void test_interval_catches_up_on_big_advance(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 0);
  uint32_t val = 3;
  bw_timer_t t = 0;
  assert_int_equal(bw_send_interval(rt, p, 10, T_TICK, &val, sizeof val, &t), 0);
  /* three periods in one step: three ticks */
  assert_int_equal(bw_clock_advance(rt, 30), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 3);
  assert_int_equal(bw_timer_cancel(rt, t), 0);
  bw_runtime_destroy(rt);
}

/* An interval timer whose target was killed (it could not cancel) ends with
 * one noproc dead letter instead of ticking into the void for ever. */
static void test_interval_ends_when_target_dies(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 0);
  uint32_t val = 1;
  bw_timer_t t = 0;
  assert_int_equal(bw_send_interval(rt, p, 10, T_TICK, &val, sizeof val, &t), 0);
  assert_int_equal(bw_clock_advance(rt, 10), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, p);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  bw_runtime_stats_t afterst = bwt_stats(rt);
  assert_int_equal(afterst.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND); /* it ended */
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_cancel_before_fire(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 0);
  bw_timer_t a = after(rt, p, 50, 1);
  bw_timer_t b = after(rt, p, 50, 2);
  assert_int_equal(bw_timer_cancel(rt, a), 0);
  assert_int_equal(bw_timer_cancel(rt, a), BW_ENOTFOUND);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 1);
  assert_int_equal(event_at(0).ref, b);
  assert_int_equal(event_at(0).val, 2);
  assert_int_equal(bw_timer_cancel(rt, b), BW_ENOTFOUND); /* fired */

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_letters, 0); /* a cancelled timer is not a dead letter */
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_timer_from_actor_and_to_dead_pid(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t a = spawn_tp(rt, 0);
  bw_pid_t b = spawn_tp(rt, 0);
  arm_req_t req = {b, 20, 5};
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, a, T_ARM, &req, sizeof req, 0, &rep), 0);
  bw_timer_t t;
  memcpy(&t, rep.data, sizeof t);
  assert_int_equal(bw_clock_advance(rt, 20), 0);
  sync_with(rt, b);
  assert_int_equal(nevents(), 1);
  event_t e = event_at(0);
  assert_int_equal(e.to, b);
  assert_int_equal(e.from, a); /* set from inside a: sent from a */
  assert_int_equal(e.ref, t);

  /* the receiver dies before the timer fires: a noproc dead letter */
  after(rt, b, 10, 6);
  assert_int_equal(bw_send(rt, b, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, b);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_clock_advance(rt, 10), 0);
  bw_runtime_stats_t afterst = bwt_stats(rt);
  assert_int_equal(afterst.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_int_equal(nevents(), 1);
  bw_runtime_destroy(rt);
}

/*
 * Whether the runtime re-arms a receive timeout when it hands the actor a
 * message or after the handler returns is not specified; the handler's reply
 * may reach the main thread before a re-arm after the handler. So each step
 * below has the same outcome for a re-arm at the handler's time or at the end
 * of the next advance.
 */
static void test_receive_timeout(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_tp(rt, 100); /* set in init, at t = 0: due at 100 */

  assert_int_equal(bw_clock_advance(rt, 60), 0);
  sync_with(rt, p); /* t = 60: a message re-arms it: due at 160 (or 220) */
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_clock_advance(rt, 60), 0);
  sync_with(rt, p); /* t = 120: nothing at 100, since re-armed */
  assert_int_equal(nevents(), 0);

  /* inactivity: one timeout, not one per period. Two advances, so that a
   * re-arm done late (at t = 1120) is due within them too. */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_AWAIT(&sync_, nev >= 1);
  /* the timeout itself is not a message that re-arms it: more inactivity
   * gives no second timeout */
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  sync_with(rt, p); /* t = 4120 */
  assert_int_equal(nevents(), 1);
  event_t e = event_at(0);
  assert_int_equal(e.type, BW_MSG_TIMEOUT);
  assert_int_equal(e.len, 0);

  /* the call above re-armed it */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  sync_with(rt, p); /* t = 4219: not yet */
  assert_int_equal(nevents(), 1);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_AWAIT(&sync_, nev >= 2);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 2);
  assert_int_equal(event_at(1).type, BW_MSG_TIMEOUT);

  /* 0 turns it off */
  uint64_t off = 0;
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, p, T_SET_TIMEOUT, &off, sizeof off, 0, &rep), 0);
  assert_int_equal(bw_clock_advance(rt, 10000), 0);
  assert_int_equal(bw_clock_advance(rt, 10000), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 2);

  /* and it can be set again from a handler */
  uint64_t ms = 50;
  assert_int_equal(bw_call(rt, p, T_SET_TIMEOUT, &ms, sizeof ms, 0, &rep), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_AWAIT(&sync_, nev >= 3);
  sync_with(rt, p);
  assert_int_equal(nevents(), 3);
  bw_runtime_destroy(rt);
}

/* --- bw_call deadlines ------------------------------------------------------ */

typedef struct caller {
  bw_runtime_t *rt;
  bw_pid_t to;
  uint64_t timeout_ms;
  int rc;
  _Atomic int done;
} caller_t;

static void *call_thread(void *arg) {
  caller_t *c = arg;
  bw_reply_t rep;
  c->rc = bw_call(c->rt, c->to, T_HOLD, NULL, 0, c->timeout_ms, &rep);
  atomic_store(&c->done, 1);
  return NULL;
}

static void test_call_times_out_on_manual_clock(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t holder = spawn_tp(rt, 0);
  assert_int_equal(bw_clock_advance(rt, 5), 0);

  caller_t c = {rt, holder, 100, 1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, call_thread, &c), 0);
  BWT_AWAIT(&sync_, holding); /* the request arrived: the call is waiting */
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(atomic_load(&c.done), 0);
  assert_int_equal(bw_clock_advance(rt, 2), 0);
  /* do not hang if the deadline was missed: release the caller, then fail */
  struct timespec dl = bwt_deadline();
  unsigned spins = 0;
  while (!atomic_load(&c.done) && !bwt_past(&dl))
    bwt_relax(&spins);
  bool returned = atomic_load(&c.done);
  if (!returned)
    bw_clock_advance(rt, 1000000);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_true(returned);
  assert_int_equal(c.rc, BW_ETIMEDOUT);

  /* answering now is too late: a dead letter (late_reply) */
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send(rt, holder, T_RELEASE, NULL, 0), 0);
  BWT_AWAIT(&sync_, release_rc != 1);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] ==
           before.dead_by_reason[BW_DL_LATE_REPLY] + 1);
  bw_runtime_destroy(rt);
}

/* --- the cap on pending timers (bw_runtime_opts.max_timers) ------------------ */

static bw_runtime_t *capped_runtime(uint32_t max_timers) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = 2;
  o.manual_clock = true;
  o.max_timers = max_timers;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  return rt;
}

static int arm_from(bw_runtime_t *rt, bw_pid_t actor, bw_pid_t to, uint64_t ms) {
  arm_req_t a = {to, ms, 99};
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, actor, T_ARM, &a, sizeof a, 0, &rep) == 0 ||
                       rep.status == BW_ELIMIT,
                   true);
  return rep.status;
}

/* The application's timers stop at the cap with BW_ELIMIT (from a thread
 * and from an actor, one-shot and interval), nothing armed or counted; a
 * slot comes back when a timer fires or is cancelled; an interval holds one
 * slot however often it fires. */
static void test_cap_refuses_beyond_max(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = capped_runtime(8);
  bw_pid_t p = spawn_tp(rt, 0);
  bw_timer_t iv = 0;
  assert_int_equal(bw_send_interval(rt, p, 10, T_TICK, NULL, 0, &iv), 0);
  bw_timer_t t[7];
  for (int i = 0; i < 7; i++)
    t[i] = after(rt, p, 100, (uint32_t)i);
  bw_runtime_stats_t before = bwt_stats(rt);
  uint32_t v = 8;
  bw_timer_t none = 0;
  assert_int_equal(bw_send_after(rt, p, 100, T_TICK, &v, sizeof v, &none), BW_ELIMIT);
  assert_int_equal(none, 0);
  assert_int_equal(bw_send_interval(rt, p, 5, T_TICK, NULL, 0, &none), BW_ELIMIT);
  assert_int_equal(arm_from(rt, p, p, 100), BW_ELIMIT);
  bw_runtime_stats_t now = bwt_stats(rt);
  assert_int_equal(now.sent, before.sent + 2); /* arm_from's request and reply */
  assert_int_equal(now.dead_letters, before.dead_letters);

  /* the interval fires five times and still holds one slot */
  assert_int_equal(bw_clock_advance(rt, 50), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 5);
  assert_int_equal(bw_send_after(rt, p, 100, T_TICK, &v, sizeof v, NULL), BW_ELIMIT);
  /* a cancel gives a slot back */
  assert_int_equal(bw_timer_cancel(rt, t[0]), 0);
  assert_int_equal(arm_from(rt, p, p, 100), 0);
  assert_int_equal(bw_send_after(rt, p, 100, T_TICK, &v, sizeof v, NULL), BW_ELIMIT);
  /* so does firing: the six one-shots left are due at 100 (the actor's at
   * 150 and the interval stay) */
  assert_int_equal(bw_clock_advance(rt, 50), 0);
  sync_with(rt, p);
  assert_int_equal(nevents(), 5 + 5 + 6);
  for (int i = 0; i < 6; i++)
    after(rt, p, 100, 100 + (uint32_t)i);
  assert_int_equal(bw_send_after(rt, p, 100, T_TICK, &v, sizeof v, NULL), BW_ELIMIT);
  assert_int_equal(bw_timer_cancel(rt, iv), 0);
  after(rt, p, 100, 200);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_int_equal(s.dead_by_reason[BW_DL_SHUTDOWN], 8); /* the pending ones */
  bw_runtime_destroy(rt);
}

/* Setting a receive timeout at the cap is refused, and then there is none
 * (no BW_MSG_TIMEOUT later); one set below the cap keeps re-arming at the
 * cap (its re-arming is never refused). */
static void test_cap_receive_timeout(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = capped_runtime(2);
  bw_pid_t keeps = spawn_tp(rt, 50); /* set in init: one slot while armed */
  bw_pid_t p = spawn_tp(rt, 0);
  after(rt, p, 100000, 1);
  uint64_t ms = 50;
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, p, T_SET_TIMEOUT, &ms, sizeof ms, 0, &rep), BW_ELIMIT);
  /* keeps' timeout fires (a slot frees), a message re-arms it; p's never */
  for (int round = 1; round <= 3; round++) {
    assert_int_equal(bw_clock_advance(rt, 1000), 0);
    assert_int_equal(bw_clock_advance(rt, 1000), 0);
    BWT_AWAIT(&sync_, nev >= round);
    /* fill the freed slot: keeps' re-arm below is beyond the cap */
    bw_timer_t fill = after(rt, p, 100000, 2);
    sync_with(rt, keeps); /* a message: re-arms keeps' timeout */
    sync_with(rt, p);
    assert_int_equal(nevents(), round);
    assert_int_equal(event_at(round - 1).type, BW_MSG_TIMEOUT);
    assert_int_equal(event_at(round - 1).to, keeps);
    assert_int_equal(bw_timer_cancel(rt, fill), 0);
  }
  bw_runtime_destroy(rt);
}

/* Deadlines may go a quarter beyond the cap: with the application's timers
 * at the cap, bw_call with a deadline still works; beyond the headroom it
 * fails with BW_ELIMIT and sends nothing. */
static void test_cap_deadline_headroom(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = capped_runtime(8); /* deadlines: up to 10 */
  bw_pid_t p = spawn_tp(rt, 0);
  for (int i = 0; i < 8; i++)
    after(rt, p, 100000, (uint32_t)i);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, p, T_GET, NULL, 0, 1000, &rep), 0);
  /* the library's own timers are not capped: they take the headroom */
  for (int i = 0; i < 2; i++)
    assert_int_equal(bw_send_after(rt, p, 100000, BW_MSG_PATTERN_BASE + 0xFF00u, NULL, 0, NULL), 0);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_call(rt, p, T_GET, NULL, 0, 1000, &rep), BW_ELIMIT);
  assert_int_equal(bwt_stats(rt).sent, before.sent); /* nothing sent */
  assert_int_equal(bw_call(rt, p, T_GET, NULL, 0, 0, &rep), 0); /* no deadline: fine */
  assert_int_equal(bw_send_after(rt, p, 100000, BW_MSG_PATTERN_BASE + 0xFF00u, NULL, 0, NULL), 0);
  bw_runtime_destroy(rt);
}

/* A supervisor's shutdown timer is not the application's: with the cap
 * full, a child that traps and ignores its shutdown is still killed when
 * shutdown_ms has passed (a capped timer would fail where no one looks,
 * and terminate_child would wait for good). */
static int stubborn_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  (void)arg;
  bw_trap_exit(ctx, true);
  return 0;
}

static const bw_behaviour_t stubborn = {
    .name = "stubborn", .init = stubborn_init, .handle = tp_handle};

typedef struct term_call {
  bw_runtime_t *rt;
  bw_pid_t sup;
  int rc;
  _Atomic int done;
} term_call_t;

static void *terminate_thread(void *arg) {
  term_call_t *c = arg;
  c->rc = bw_sup_terminate_child(c->rt, c->sup, "s");
  atomic_store(&c->done, 1);
  return NULL;
}

static void test_cap_spares_supervisor_timers(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = capped_runtime(4);
  static const bw_child_spec_t kids[] = {{.id = "s", .behaviour = &stubborn, .shutdown_ms = 100}};
  bw_sup_spec_t spec = {.strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 1};
  bw_pid_t sup, s;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "s", &s), 0);
  bw_pid_t p = spawn_tp(rt, 0);
  for (int i = 0; i < 4; i++)
    after(rt, p, 1000000, (uint32_t)i);
  assert_int_equal(bw_send_after(rt, p, 10, T_TICK, NULL, 0, NULL), BW_ELIMIT); /* full */
  term_call_t c = {rt, sup, 1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, terminate_thread, &c), 0);
  BWT_AWAIT(&sync_, nev >= 1); /* the child got its shutdown exit, and traps it */
  assert_int_equal(event_at(0).type, BW_MSG_EXIT);
  /* the supervisor arms its timer around the signal: step until it fires */
  struct timespec dl = bwt_deadline();
  unsigned spins = 0;
  while (!atomic_load(&c.done) && !bwt_past(&dl)) {
    assert_int_equal(bw_clock_advance(rt, 50), 0);
    bwt_relax(&spins);
  }
  bool returned = atomic_load(&c.done);
  if (!returned)
    bw_exit(rt, s, BW_REASON_KILL, 0, NULL); /* release the thread, then fail */
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_true(returned);
  assert_int_equal(c.rc, 0);
  assert_false(bw_is_alive(rt, s));
  assert_true(bw_now_ms(rt) < 1000000); /* killed by its shutdown timer, before ours */
  bw_runtime_destroy(rt);
}

static void test_clock_advance_needs_manual_clock(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, false);
  assert_int_equal(bw_clock_advance(rt, 1), BW_EINVAL);
  uint64_t a = bw_now_ns(rt);
  uint64_t b = bw_now_ns(rt);
  assert_true(b >= a);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_send_after_fires_when_due),
      cmocka_unit_test(test_equal_due_fire_in_creation_order),
      cmocka_unit_test(test_interval_once_per_period),
      cmocka_unit_test(test_interval_catches_up_on_big_advance),
      cmocka_unit_test(test_interval_ends_when_target_dies),
      cmocka_unit_test(test_cancel_before_fire),
      cmocka_unit_test(test_timer_from_actor_and_to_dead_pid),
      cmocka_unit_test(test_receive_timeout),
      cmocka_unit_test(test_call_times_out_on_manual_clock),
      cmocka_unit_test(test_cap_refuses_beyond_max),
      cmocka_unit_test(test_cap_receive_timeout),
      cmocka_unit_test(test_cap_deadline_headroom),
      cmocka_unit_test(test_cap_spares_supervisor_timers),
      cmocka_unit_test(test_clock_advance_needs_manual_clock),
  };
  return BWT_RUN_SUITE(tests);
}
