/*
 * Links, exit signals, trap-exit and monitors (Erlang's semantics):
 * abnormal exits propagate along links with the same reason; normal (and
 * shutdown) exits do not; a trapping actor gets BW_MSG_EXIT and survives;
 * BW_REASON_KILL kills even a trapping actor, with reason killed and no
 * terminate; monitors deliver one BW_MSG_DOWN with the ref and the reason
 * (noproc at once for a dead pid); demonitor means no DOWN; bw_link to a dead
 * pid is BW_ENOPROC.
 */
#include "support.h"

enum {
  T_LINK = 1, T_UNLINK, T_MONITOR, T_DEMONITOR, T_TRAP, T_CRASH, T_FAIL,
  T_STOP, T_GET, T_LINK_SELF, T_EXIT_SELF, T_EXIT_SELF_BAD, T_WAIT_EXIT,
};

#define NREC 8
#define MAXDOWN 8

typedef struct down_rec {
  bw_pid_t from;
  uint64_t ref;
  bw_reason_t reason;
} down_rec_t;

typedef struct rec {
  int terms;
  bw_reason_t term_reason;
  int exits;
  bw_pid_t exit_from;
  bw_reason_t exit_reason;
  int downs;
  down_rec_t down[MAXDOWN];
} rec_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static rec_t recs[NREC]; /* under sync_ */

static void reset(void) {
  bwt_lock(&sync_);
  memset(recs, 0, sizeof recs);
  bwt_unlock(&sync_);
}

static rec_t rec_of(int id) {
  bwt_lock(&sync_);
  rec_t r = recs[id];
  bwt_unlock(&sync_);
  return r;
}

typedef struct probe_state {
  int id;
} probe_state_t;

typedef struct cmd_reply {
  int rc;
  uint64_t ref;
} cmd_reply_t;

static int probe_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((probe_state_t *)state)->id = (int)(intptr_t)arg;
  return 0;
}

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  probe_state_t *st = state;
  cmd_reply_t r = {0, 0};
  bw_pid_t pid = BW_PID_NONE;
  if (msg->type < BW_MSG_SYSTEM_BASE && msg->len == sizeof pid)
    memcpy(&pid, msg->data, sizeof pid);
  switch (msg->type) {
  case T_LINK:
    r.rc = bw_link(ctx, pid);
    break;
  case T_LINK_SELF:
    r.rc = bw_link(ctx, bw_self(ctx));
    break;
  case T_UNLINK:
    r.rc = bw_unlink(ctx, pid);
    break;
  case T_MONITOR:
    r.rc = bw_monitor(ctx, pid, &r.ref);
    break;
  case T_DEMONITOR: {
    uint64_t ref;
    memcpy(&ref, msg->data, sizeof ref);
    r.rc = bw_demonitor(ctx, ref);
    break;
  }
  case T_TRAP:
    bw_trap_exit(ctx, msg->len > 0 && *(const uint8_t *)msg->data != 0);
    break;
  case T_CRASH: {
    int code;
    memcpy(&code, msg->data, sizeof code);
    return code;
  }
  case T_FAIL:
    bw_fail(ctx, -55, "bad %d", 55);
  case T_STOP:
    return BW_STOP;
  case T_GET:
    break;
  case T_EXIT_SELF:
    /* exits once this callback returns; the return value is ignored */
    r.rc = bw_exit_self(ctx, BW_REASON_CRASH, -31, "exit self");
    bw_reply(ctx, msg, 0, msg->type, &r, sizeof r);
    return BW_CONTINUE;
  case T_EXIT_SELF_BAD:
    r.rc = bw_exit_self(ctx, 99, 0, NULL);
    break;
  case T_WAIT_EXIT: {
    bw_reason_t why;
    r.rc = bw_wait_exit(bw_ctx_runtime(ctx), pid, 0, &why);
    break;
  }
  case BW_MSG_EXIT:
    bwt_lock(&sync_);
    recs[st->id].exits++;
    recs[st->id].exit_from = msg->from;
    recs[st->id].exit_reason = *(const bw_reason_t *)msg->data;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  case BW_MSG_DOWN:
    bwt_lock(&sync_);
    if (recs[st->id].downs < MAXDOWN) {
      down_rec_t *d = &recs[st->id].down[recs[st->id].downs];
      d->from = msg->from;
      d->ref = msg->ref;
      d->reason = *(const bw_reason_t *)msg->data;
    }
    recs[st->id].downs++;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, msg->type, &r, sizeof r);
  return BW_CONTINUE;
}

static void probe_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  probe_state_t *st = state;
  bwt_lock(&sync_);
  recs[st->id].terms++;
  recs[st->id].term_reason = *reason;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t probe = {
    .name = "probe",
    .state_size = sizeof(probe_state_t),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
};

static bw_pid_t spawn_probe(bw_runtime_t *rt, int id, bool trap) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.trap_exit = trap;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &probe, (void *)(intptr_t)id, &o, &pid), 0);
  return pid;
}

/* Runs a command in the actor and returns its reply. */
static cmd_reply_t cmd(bw_runtime_t *rt, bw_pid_t pid, uint32_t type, const void *arg, size_t len) {
  bw_reply_t rep;
  cmd_reply_t r;
  assert_int_equal(bw_call(rt, pid, type, arg, len, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof r);
  memcpy(&r, rep.data, sizeof r);
  return r;
}

static int link_to(bw_runtime_t *rt, bw_pid_t who, bw_pid_t target) {
  return cmd(rt, who, T_LINK, &target, sizeof target).rc;
}

static void sync_with(bw_runtime_t *rt, bw_pid_t pid) {
  (void)cmd(rt, pid, T_GET, NULL, 0);
}

static void crash(bw_runtime_t *rt, bw_pid_t pid, int code) {
  assert_int_equal(bw_send(rt, pid, T_CRASH, &code, sizeof code), 0);
}

/* --- links ----------------------------------------------------------------- */

static void test_link_abnormal_exit_propagates(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  bw_pid_t c = spawn_probe(rt, 2, false);
  bw_pid_t bystander = spawn_probe(rt, 3, false);
  assert_int_equal(link_to(rt, a, b), 0);
  assert_int_equal(link_to(rt, c, a), 0); /* c - a - b */

  crash(rt, b, -77);
  BWT_AWAIT(&sync_, recs[0].terms == 1 && recs[2].terms == 1);
  BWT_AWAIT_DEAD(rt, a);
  BWT_AWAIT_DEAD(rt, b);
  BWT_AWAIT_DEAD(rt, c);
  rec_t rb = rec_of(1), ra = rec_of(0), rc = rec_of(2);
  assert_int_equal(rb.terms, 1);
  assert_int_equal(rb.term_reason.kind, BW_REASON_CRASH);
  assert_int_equal(rb.term_reason.code, -77);
  /* the linked actors die with the same reason */
  assert_true(bwt_reason_eq(&ra.term_reason, &rb.term_reason));
  assert_true(bwt_reason_eq(&rc.term_reason, &rb.term_reason));

  assert_true(bw_is_alive(rt, bystander));
  sync_with(rt, bystander);
  assert_int_equal(rec_of(3).terms, 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.crashed, 3);
  bw_runtime_destroy(rt);
}

static void test_link_normal_exit_does_not_propagate(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  assert_int_equal(link_to(rt, a, b), 0);
  assert_int_equal(bw_send(rt, b, T_STOP, NULL, 0), 0);
  BWT_AWAIT(&sync_, recs[1].terms == 1);
  BWT_AWAIT_DEAD(rt, b);
  assert_int_equal(rec_of(1).term_reason.kind, BW_REASON_NORMAL);

  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(rec_of(0).terms, 0);

  /* a normal exit signal from outside is ignored by a non-trapping actor */
  assert_int_equal(bw_exit(rt, a, BW_REASON_NORMAL, 0, NULL), 0);
  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(rec_of(0).terms, 0);
  bw_runtime_destroy(rt);
}

/* As in Erlang, only normal exits stay local: a shutdown propagates over a
 * link to a non-trapping actor (actor.h, bw_link). */
static void test_link_shutdown_exit_propagates(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  assert_int_equal(link_to(rt, a, b), 0);
  assert_int_equal(bw_exit(rt, b, BW_REASON_SHUTDOWN, 0, "bye"), 0);
  BWT_AWAIT(&sync_, recs[1].terms == 1);
  BWT_AWAIT(&sync_, recs[0].terms == 1);
  BWT_AWAIT_DEAD(rt, b);
  BWT_AWAIT_DEAD(rt, a);
  rec_t rb = rec_of(1), ra = rec_of(0);
  assert_int_equal(rb.term_reason.kind, BW_REASON_SHUTDOWN);
  assert_string_equal(rb.term_reason.text, "bye");
  assert_int_equal(ra.term_reason.kind, BW_REASON_SHUTDOWN);
  assert_string_equal(ra.term_reason.text, "bye");
  bw_runtime_destroy(rt);
}

static void test_exit_signal_kills_non_trapping(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  assert_int_equal(bw_exit(rt, a, BW_REASON_CRASH, -9, "from main"), 0);
  BWT_AWAIT(&sync_, recs[0].terms == 1);
  BWT_AWAIT_DEAD(rt, a);
  rec_t r = rec_of(0);
  assert_int_equal(r.term_reason.kind, BW_REASON_CRASH);
  assert_int_equal(r.term_reason.code, -9);
  assert_string_equal(r.term_reason.text, "from main");
  assert_int_equal(bw_exit(rt, a, BW_REASON_CRASH, -9, NULL), BW_ENOPROC);
  bw_runtime_destroy(rt);
}

static void test_trap_exit_gets_message_and_survives(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  uint8_t on = 1;
  (void)cmd(rt, a, T_TRAP, &on, 1);
  assert_int_equal(link_to(rt, a, b), 0);
  assert_int_equal(bw_send(rt, b, T_FAIL, NULL, 0), 0);
  BWT_AWAIT(&sync_, recs[0].exits == 1);
  rec_t ra = rec_of(0);
  assert_int_equal(ra.exit_from, b);
  assert_int_equal(ra.exit_reason.kind, BW_REASON_CRASH);
  assert_int_equal(ra.exit_reason.code, -55);
  assert_string_equal(ra.exit_reason.text, "bad 55");
  BWT_AWAIT_DEAD(rt, b);
  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(rec_of(0).terms, 0);
  assert_int_equal(rec_of(0).exits, 1);

  /* an exit signal from a non-actor thread: from is BW_PID_NONE */
  assert_int_equal(bw_exit(rt, a, BW_REASON_CRASH, -3, "from main"), 0);
  BWT_AWAIT(&sync_, recs[0].exits == 2);
  ra = rec_of(0);
  assert_int_equal(ra.exit_from, BW_PID_NONE);
  assert_int_equal(ra.exit_reason.kind, BW_REASON_CRASH);
  assert_int_equal(ra.exit_reason.code, -3);
  assert_string_equal(ra.exit_reason.text, "from main");
  assert_true(bw_is_alive(rt, a));

  /* trapping switched off: the next signal kills */
  on = 0;
  (void)cmd(rt, a, T_TRAP, &on, 1);
  assert_int_equal(bw_exit(rt, a, BW_REASON_CRASH, -4, NULL), 0);
  BWT_AWAIT(&sync_, recs[0].terms == 1);
  assert_int_equal(rec_of(0).term_reason.code, -4);
  assert_int_equal(rec_of(0).exits, 2);

  /* opts.trap_exit traps from the start */
  bw_pid_t d = spawn_probe(rt, 2, true);
  assert_int_equal(bw_exit(rt, d, BW_REASON_SHUTDOWN, 0, NULL), 0);
  BWT_AWAIT(&sync_, recs[2].exits == 1);
  assert_int_equal(rec_of(2).exit_reason.kind, BW_REASON_SHUTDOWN);
  sync_with(rt, d);
  assert_true(bw_is_alive(rt, d));
  bw_runtime_destroy(rt);
}

static void test_kill_is_untrappable(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, true);   /* victim, traps exits */
  bw_pid_t m = spawn_probe(rt, 1, false);  /* monitors a */
  bw_pid_t l = spawn_probe(rt, 2, true);   /* linked to a, traps */
  cmd_reply_t mon = cmd(rt, m, T_MONITOR, &a, sizeof a);
  assert_int_equal(mon.rc, 0);
  assert_int_equal(link_to(rt, l, a), 0);

  assert_int_equal(bw_exit(rt, a, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT(&sync_, recs[1].downs == 1 && recs[2].exits == 1);
  BWT_AWAIT_DEAD(rt, a);
  rec_t rm = rec_of(1), rl = rec_of(2), ra = rec_of(0);
  assert_int_equal(rm.down[0].from, a);
  assert_int_equal(rm.down[0].ref, mon.ref);
  assert_int_equal(rm.down[0].reason.kind, BW_REASON_KILLED);
  assert_int_equal(rl.exit_from, a);
  assert_int_equal(rl.exit_reason.kind, BW_REASON_KILLED);
  assert_int_equal(ra.exits, 0); /* it did not get it as a message */
  assert_int_equal(ra.terms, 0); /* terminate is not called after a kill */
  assert_true(bw_is_alive(rt, l));

  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(rec_of(0).terms, 0);
  assert_int_equal(rec_of(2).terms, 1);
  bw_runtime_destroy(rt);
}

static void test_link_dead_pid(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t dead = spawn_probe(rt, 0, false);
  assert_int_equal(bw_send(rt, dead, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, dead);

  bw_pid_t a = spawn_probe(rt, 1, false);
  assert_int_equal(link_to(rt, a, dead), BW_ENOPROC);
  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(rec_of(1).exits, 0);

  bw_pid_t t = spawn_probe(rt, 2, true);
  assert_int_equal(link_to(rt, t, dead), BW_ENOPROC);
  /* the EXIT was queued during the link call, before this call's request */
  sync_with(rt, t);
  rec_t rt2 = rec_of(2);
  assert_int_equal(rt2.exits, 1);
  assert_int_equal(rt2.exit_from, dead);
  assert_int_equal(rt2.exit_reason.kind, BW_REASON_NOPROC);

  assert_int_equal(cmd(rt, a, T_LINK_SELF, NULL, 0).rc, BW_EINVAL);
  bw_runtime_destroy(rt);
}

static void test_unlink_and_idempotent_link(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  assert_int_equal(link_to(rt, a, b), 0);
  assert_int_equal(cmd(rt, a, T_UNLINK, &b, sizeof b).rc, 0);
  crash(rt, b, -1);
  BWT_AWAIT(&sync_, recs[1].terms == 1);
  BWT_AWAIT_DEAD(rt, b);
  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));
  assert_int_equal(rec_of(0).terms, 0);

  /* linking twice is one link: one EXIT */
  bw_pid_t t = spawn_probe(rt, 2, true);
  bw_pid_t c = spawn_probe(rt, 3, false);
  assert_int_equal(link_to(rt, t, c), 0);
  assert_int_equal(link_to(rt, t, c), 0);
  crash(rt, c, -2);
  BWT_AWAIT(&sync_, recs[2].exits >= 1);
  BWT_AWAIT_DEAD(rt, c);
  sync_with(rt, t);
  assert_int_equal(rec_of(2).exits, 1);
  bw_runtime_destroy(rt);
}

/* --- monitors -------------------------------------------------------------- */

static void test_monitor_down(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t m = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  bw_pid_t c = spawn_probe(rt, 2, false);
  cmd_reply_t r1 = cmd(rt, m, T_MONITOR, &b, sizeof b);
  cmd_reply_t r2 = cmd(rt, m, T_MONITOR, &c, sizeof c);
  assert_int_equal(r1.rc, 0);
  assert_int_equal(r2.rc, 0);
  assert_int_not_equal(r1.ref, 0);
  assert_int_not_equal(r2.ref, 0);
  assert_int_not_equal(r1.ref, r2.ref);

  crash(rt, b, -77);
  BWT_AWAIT(&sync_, recs[0].downs == 1);
  rec_t rm = rec_of(0);
  assert_int_equal(rm.down[0].from, b);
  assert_int_equal(rm.down[0].ref, r1.ref);
  assert_int_equal(rm.down[0].reason.kind, BW_REASON_CRASH);
  assert_int_equal(rm.down[0].reason.code, -77);
  /* a monitor is not a link: the monitoring actor lives on */
  sync_with(rt, m);
  assert_true(bw_is_alive(rt, m));

  assert_int_equal(bw_send(rt, c, T_STOP, NULL, 0), 0);
  BWT_AWAIT(&sync_, recs[0].downs == 2);
  rm = rec_of(0);
  assert_int_equal(rm.down[1].from, c);
  assert_int_equal(rm.down[1].ref, r2.ref);
  assert_int_equal(rm.down[1].reason.kind, BW_REASON_NORMAL);
  sync_with(rt, m);
  assert_int_equal(rec_of(0).downs, 2);
  assert_int_equal(rec_of(0).terms, 0);
  bw_runtime_destroy(rt);
}

static void test_monitor_dead_pid_noproc_at_once(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t m = spawn_probe(rt, 0, false);
  bw_pid_t dead = spawn_probe(rt, 1, false);
  assert_int_equal(bw_send(rt, dead, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, dead);

  cmd_reply_t r = cmd(rt, m, T_MONITOR, &dead, sizeof dead);
  assert_int_equal(r.rc, 0);
  /* at once: the DOWN is queued before the next request */
  sync_with(rt, m);
  rec_t rm = rec_of(0);
  assert_int_equal(rm.downs, 1);
  assert_int_equal(rm.down[0].from, dead);
  assert_int_equal(rm.down[0].ref, r.ref);
  assert_int_equal(rm.down[0].reason.kind, BW_REASON_NOPROC);

  bw_pid_t garbage = 0xDEADBEEFDEADBEEFull;
  r = cmd(rt, m, T_MONITOR, &garbage, sizeof garbage);
  assert_int_equal(r.rc, 0);
  sync_with(rt, m);
  rm = rec_of(0);
  assert_int_equal(rm.downs, 2);
  assert_int_equal(rm.down[1].ref, r.ref);
  assert_int_equal(rm.down[1].reason.kind, BW_REASON_NOPROC);
  bw_runtime_destroy(rt);
}

static void test_demonitor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t m = spawn_probe(rt, 0, false);
  bw_pid_t b = spawn_probe(rt, 1, false);
  cmd_reply_t r1 = cmd(rt, m, T_MONITOR, &b, sizeof b);
  cmd_reply_t r2 = cmd(rt, m, T_MONITOR, &b, sizeof b);
  assert_int_equal(r1.rc, 0);
  assert_int_equal(r2.rc, 0);
  assert_int_not_equal(r1.ref, r2.ref);
  assert_int_equal(cmd(rt, m, T_DEMONITOR, &r1.ref, sizeof r1.ref).rc, 0);
  assert_int_equal(cmd(rt, m, T_DEMONITOR, &r1.ref, sizeof r1.ref).rc, BW_ENOTFOUND);

  crash(rt, b, -5);
  /* the remaining monitor fires; the removed one never does */
  BWT_AWAIT(&sync_, recs[0].downs >= 1);
  BWT_AWAIT_DEAD(rt, b);
  sync_with(rt, m);
  rec_t rm = rec_of(0);
  assert_int_equal(rm.downs, 1);
  assert_int_equal(rm.down[0].ref, r2.ref);
  assert_int_equal(rm.down[0].reason.code, -5);

  /* demonitor after the DOWN: the monitor is gone */
  assert_int_equal(cmd(rt, m, T_DEMONITOR, &r2.ref, sizeof r2.ref).rc, BW_ENOTFOUND);
  bw_runtime_destroy(rt);
}

/* --- bw_exit_self and bw_wait_exit ------------------------------------------ */

static void test_exit_self(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_probe(rt, 0, false);
  bw_pid_t t = spawn_probe(rt, 1, true);
  assert_int_equal(link_to(rt, t, a), 0);
  /* a bad kind is refused, and changes nothing */
  assert_int_equal(cmd(rt, a, T_EXIT_SELF_BAD, NULL, 0).rc, BW_EINVAL);
  assert_int_equal(bw_exit_self(NULL, BW_REASON_CRASH, -1, NULL), BW_EINVAL);
  sync_with(rt, a);
  assert_true(bw_is_alive(rt, a));

  assert_int_equal(cmd(rt, a, T_EXIT_SELF, NULL, 0).rc, 0);
  BWT_AWAIT(&sync_, recs[0].terms == 1 && recs[1].exits == 1);
  BWT_AWAIT_DEAD(rt, a);
  rec_t ra = rec_of(0), rt1 = rec_of(1);
  assert_int_equal(ra.term_reason.kind, BW_REASON_CRASH);
  assert_int_equal(ra.term_reason.code, -31);
  assert_string_equal(ra.term_reason.text, "exit self");
  assert_int_equal(rt1.exit_from, a);
  assert_true(bwt_reason_eq(&rt1.exit_reason, &ra.term_reason));
  bw_runtime_destroy(rt);
}

/* An actor on its own thread that, told to, blocks at a gate and then
 * crashes with -13: so a test can have it crash after something else has
 * been queued behind it. */
static bwt_gate_t gate_;

static int gated_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  (void)ctx;
  (void)st;
  (void)msg;
  return bwt_gate_pass(&gate_) ? -13 : BW_CONTINUE;
}

static void gated_terminate(bw_ctx_t *ctx, void *st, const bw_reason_t *r) {
  (void)ctx;
  (void)st;
  (void)r;
  bwt_lock(&sync_);
  recs[0].terms++;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t gated = {
    .name = "gated", .handle = gated_handle, .terminate = gated_terminate};

static int gate_waiting(void) {
  pthread_mutex_lock(&gate_.mu);
  int w = gate_.waiting;
  pthread_mutex_unlock(&gate_.mu);
  return w;
}

typedef struct opener {
  bw_runtime_t *rt;
  bw_pid_t pid;
} opener_t;

/* Opens the gate once the actor has a second message queued behind the one
 * it is blocked in: the monitor bw_wait_exit sends. */
static void *open_when_monitored(void *arg) {
  opener_t *o = arg;
  uint32_t d = 0;
  unsigned spins = 0;
  while (bw_mailbox_depth(o->rt, o->pid, &d) == 0 && d < 2)
    bwt_relax(&spins);
  bwt_gate_open(&gate_);
  return NULL;
}

static void test_wait_exit(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  /* the crash comes after the wait has begun (its monitor is queued), so
   * the wait sees the crash's reason, not noproc */
  bwt_gate_init(&gate_);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = true;
  bw_pid_t a;
  assert_int_equal(bw_spawn(rt, &gated, NULL, &o, &a), 0);
  assert_int_equal(bw_send(rt, a, T_CRASH, NULL, 0), 0);
  BWT_POLL(gate_waiting() == 1);
  opener_t op = {rt, a};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, open_when_monitored, &op), 0);
  bw_reason_t why;
  memset(&why, 0, sizeof why);
  assert_int_equal(bw_wait_exit(rt, a, 0, &why), 0);
  pthread_join(th, NULL);
  bwt_gate_destroy(&gate_);
  assert_int_equal(why.kind, BW_REASON_CRASH);
  assert_int_equal(why.code, -13);
  assert_false(bw_is_alive(rt, a));
  /* terminate ran before the exit was announced */
  assert_int_equal(rec_of(0).terms, 1);

  /* already gone: at once, noproc */
  memset(&why, 0, sizeof why);
  assert_int_equal(bw_wait_exit(rt, a, 0, &why), 0);
  assert_int_equal(why.kind, BW_REASON_NOPROC);
  assert_int_equal(bw_wait_exit(rt, a, 0, NULL), 0);

  /* not on a scheduler thread */
  bw_pid_t b = spawn_probe(rt, 1, false), c = spawn_probe(rt, 2, false);
  assert_int_equal(cmd(rt, b, T_WAIT_EXIT, &c, sizeof c).rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_wait_exit(NULL, c, 0, NULL), BW_EINVAL);
  assert_true(bw_is_alive(rt, c));
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_wait_exit(rt, c, 0, NULL), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

typedef struct waiter {
  bw_runtime_t *rt;
  bw_pid_t pid;
  int rc;
  int done; /* __atomic */
} waiter_t;

static void *wait_thread(void *arg) {
  waiter_t *w = arg;
  w->rc = bw_wait_exit(w->rt, w->pid, 100, NULL);
  __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void test_wait_exit_times_out(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t a = spawn_probe(rt, 0, false);
  waiter_t w = {rt, a, 1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
  /* the deadline is on the manual clock: nothing ends the wait but time */
  struct timespec dl = bwt_deadline();
  unsigned spins = 0;
  while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE) && !bwt_past(&dl)) {
    assert_int_equal(bw_clock_advance(rt, 50), 0);
    bwt_relax(&spins);
  }
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.rc, BW_ETIMEDOUT);
  assert_true(bw_is_alive(rt, a));
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_link_abnormal_exit_propagates),
      cmocka_unit_test(test_link_normal_exit_does_not_propagate),
      cmocka_unit_test(test_link_shutdown_exit_propagates),
      cmocka_unit_test(test_exit_signal_kills_non_trapping),
      cmocka_unit_test(test_trap_exit_gets_message_and_survives),
      cmocka_unit_test(test_kill_is_untrappable),
      cmocka_unit_test(test_link_dead_pid),
      cmocka_unit_test(test_unlink_and_idempotent_link),
      cmocka_unit_test(test_monitor_down),
      cmocka_unit_test(test_monitor_dead_pid_noproc_at_once),
      cmocka_unit_test(test_demonitor),
      cmocka_unit_test(test_exit_self),
      cmocka_unit_test(test_wait_exit),
      cmocka_unit_test(test_wait_exit_times_out),
  };
  return BWT_RUN_SUITE(tests);
}
