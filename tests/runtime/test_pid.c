/*
 * Pids: a stale pid (its actor exited, its slot perhaps reused) stays dead
 * forever: sends to it are BW_ENOPROC dead letters (noproc) and never reach
 * the actor that now has the slot. Garbage pids are safe. A pid of another
 * runtime of the process, live or destroyed, is a dead pid here. Reuse is
 * spread over a quarantine of slots, and a slot goes past the old 24-bit
 * wrap point without its old pids coming back (issue #14, "Pids").
 *
 * The layout (node | runtime tag | generation | slot) and the test hooks
 * come from runtime/internal.h.
 */
#include "support.h"

#include "runtime/internal.h"

enum { T_PING = 1, T_GET, T_STOP };

typedef struct counter_state {
  int pings;
} counter_state_t;

static int counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  counter_state_t *st = state;
  switch (msg->type) {
  case T_PING:
    st->pings++;
    return BW_CONTINUE;
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, &st->pings, sizeof st->pings);
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t counter = {
    .name = "counter", .state_size = sizeof(counter_state_t), .handle = counter_handle};

static int pings_of(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  int n;
  memcpy(&n, rep.data, sizeof n);
  return n;
}

static void test_stale_pid_after_reuse(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  /* no quarantine: a freed slot is reused at once, the worst case for
   * stale pids (the default spreads reuse over 65,536 slots) */
  bw__pid_test_quarantine(rt, 0);

  /* many generations of short-lived actors, so slots are reused */
  enum { CYCLES = 200, FRESH = 300 };
  static bw_pid_t old[CYCLES];
  for (int i = 0; i < CYCLES; i++) {
    assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &old[i]), 0);
    assert_int_equal(bw_send(rt, old[i], T_PING, NULL, 0), 0);
    assert_int_equal(pings_of(rt, old[i]), 1);
    assert_int_equal(bw_send(rt, old[i], T_STOP, NULL, 0), 0);
    BWT_AWAIT_DEAD(rt, old[i]);
  }
  /* the counters trail bw_is_alive a little (not a snapshot) */
  BWT_POLL(bwt_stats(rt).live == 0);

  static bw_pid_t fresh[FRESH];
  for (int i = 0; i < FRESH; i++)
    assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &fresh[i]), 0);

  /* a pid is never handed out twice */
  for (int i = 0; i < CYCLES; i++) {
    for (int j = 0; j < i; j++)
      assert_int_not_equal(old[i], old[j]);
    for (int j = 0; j < FRESH; j++)
      assert_int_not_equal(old[i], fresh[j]);
  }

  bw_runtime_stats_t before = bwt_stats(rt);
  for (int i = 0; i < CYCLES; i++) {
    assert_false(bw_is_alive(rt, old[i]));
    assert_int_equal(bw_send(rt, old[i], T_PING, NULL, 0), BW_ENOPROC);
  }
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC],
                   before.dead_by_reason[BW_DL_NOPROC] + CYCLES);
  assert_int_equal(after.dead_letters, before.dead_letters + CYCLES);
  assert_int_equal(after.sent, before.sent + CYCLES);

  /* none of it reached the actors that live in those slots now; each call
   * queues behind anything main sent to that actor before */
  for (int j = 0; j < FRESH; j++) {
    assert_true(bw_is_alive(rt, fresh[j]));
    assert_int_equal(pings_of(rt, fresh[j]), 0);
  }

  /* a call to a stale pid fails the same way */
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, old[0], T_GET, NULL, 0, 0, &rep), BW_ENOPROC);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  /* the failed call may or may not count as a dead letter of its own */
  assert_in_range(s.dead_by_reason[BW_DL_NOPROC], CYCLES, CYCLES + 1);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_stale_pid_simple(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a, b;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &a), 0);
  assert_int_equal(bw_send(rt, a, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, a);
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &b), 0);
  assert_int_not_equal(a, b);
  assert_int_equal(bw_send(rt, a, T_PING, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_send(rt, b, T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(rt, b), 1);
  assert_false(bw_is_alive(rt, a));
  assert_true(bw_is_alive(rt, b));
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_NOPROC], 1);
  bw_runtime_destroy(rt);
}

static void test_garbage_pids(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t live;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &live), 0);
  const bw_pid_t garbage[] = {
      UINT64_MAX, 0xDEADBEEFDEADBEEFull, 0x0123456789ABCDEFull,
      0x00000000FFFFFFFFull, 0xFFFFFFFF00000000ull, 1ull << 62,
  };
  bw_runtime_stats_t before = bwt_stats(rt);
  int n = 0;
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    if (garbage[i] == live)
      continue;
    n++;
    assert_false(bw_is_alive(rt, garbage[i]));
    assert_int_equal(bw_send(rt, garbage[i], T_PING, NULL, 0), BW_ENOPROC);
    assert_int_equal(bw_exit(rt, garbage[i], BW_REASON_SHUTDOWN, 0, NULL), BW_ENOPROC);
  }
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + n);

  /* BW_PID_NONE is never alive; a send to it is refused one way or another */
  assert_false(bw_is_alive(rt, BW_PID_NONE));
  int rc = bw_send(rt, BW_PID_NONE, T_PING, NULL, 0);
  assert_true(rc == BW_ENOPROC || rc == BW_EINVAL);

  assert_int_equal(pings_of(rt, live), 0);
  bw_runtime_destroy(rt);
}

/* --- spread and wrap ------------------------------------------------------ */

/* Waits until pid's slot is back on the free side: freed slots go on the
 * young stack, so it is that stack's top once the reaper is done (the test
 * spawns nothing meanwhile, so nothing takes it off). */
static void await_freed(bw_runtime_t *rt, bw_pid_t pid) {
  /* acquire: as an allocator reads it */
  BWT_POLL((uint32_t)bw__ld64_acq(&rt->slot_young) == BW__PID_SLOT(pid) + 1);
}

/* Spawns one actor, kills it and waits until its slot is free again. */
static bw_pid_t spawn_and_free(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &p), 0);
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
  await_freed(rt, p);
  return p;
}

/* One short-lived actor after another, each gone before the next, in a
 * fresh runtime (the quarantine at its smallest, 64): they walk through the
 * slots of a batch; the old last-in-first-out reuse gave them all slot 0,
 * whose generation then wrapped after 2^24 of them. */
static void test_reuse_spread(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  enum { N = 2000, Q = BW__SLOT_QUARANTINE_MIN };
  static uint32_t uses[N];
  memset(uses, 0, sizeof uses);
  for (int i = 0; i < N; i++) {
    bw_pid_t p = spawn_and_free(rt);
    uint32_t slot = BW__PID_SLOT(p);
    assert_true(slot < N);
    uses[slot]++;
    /* the first Q each have a fresh slot */
    if (i < Q)
      assert_int_equal(uses[slot], 1);
  }
  uint32_t most = 0, slots = 0;
  for (int i = 0; i < N; i++) {
    most = uses[i] > most ? uses[i] : most;
    slots += uses[i] != 0;
  }
  assert_true(slots >= Q);
  assert_true(most <= 1 + N / Q);
  bw_runtime_destroy(rt);
}

/* With a quarantine of Q (lowered by the test hook, to see it cycle), a
 * slot is in at most one batch of Q frees per reuse: after n spawn/exit
 * cycles no slot has had more than 1 + n / Q actors, and the runtime uses
 * a bounded number of slots (reuse does happen). */
static void test_reuse_quarantine(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  enum { Q = 64, N = Q * 20 };
  bw__pid_test_quarantine(rt, Q);
  static uint32_t uses[N];
  memset(uses, 0, sizeof uses);
  uint32_t prev_gen[N];
  memset(prev_gen, 0, sizeof prev_gen);
  for (int i = 0; i < N; i++) {
    bw_pid_t p = spawn_and_free(rt);
    uint32_t slot = BW__PID_SLOT(p);
    assert_true(slot < N);
    uses[slot]++;
    /* each incarnation of a slot has the next generation */
    assert_int_equal(BW__PID_GEN(p), prev_gen[slot] + 1);
    prev_gen[slot] = BW__PID_GEN(p);
  }
  uint32_t most = 0, slots = 0;
  for (int i = 0; i < N; i++) {
    most = uses[i] > most ? uses[i] : most;
    slots += uses[i] != 0;
  }
  assert_true(most <= 1 + N / Q);
  assert_true(most >= N / (2 * Q)); /* slots were reused */
  assert_true(slots >= Q);
  assert_true(slots <= 2 * Q + 1);
  assert_true(bw__ld32_rlx(&rt->slot_bump) <= 2 * Q + 1);
  bw_runtime_destroy(rt);
}

/* The batch grows with use: one slot per 1,024 reused so far (the count is
 * set directly, as if that many had been), up to 65,536. */
static uint32_t distinct_slots(bw_runtime_t *rt, int n, uint32_t *most) {
  static uint32_t uses[BW__SLOT_PAGE];
  memset(uses, 0, sizeof uses);
  uint32_t slots = 0;
  *most = 0;
  for (int i = 0; i < n; i++) {
    uint32_t slot = BW__PID_SLOT(spawn_and_free(rt));
    assert_true(slot < BW__SLOT_PAGE);
    slots += uses[slot]++ == 0;
    *most = uses[slot] > *most ? uses[slot] : *most;
  }
  return slots;
}

static void test_reuse_batch_grows(void **state) {
  (void)state;
  uint32_t most;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw__st64_rlx(&rt->slot_reused, 200u << BW__SLOT_QUARANTINE_SHIFT);
  assert_int_equal(distinct_slots(rt, 1000, &most), 200);
  assert_true(most <= 1 + 1000 / 200);
  bw_runtime_destroy(rt);

  /* past 2^26 reused: the largest batch; 2,000 actors, 2,000 slots */
  rt = bwt_runtime(2, false);
  bw__st64_rlx(&rt->slot_reused, 1ull << 40);
  assert_int_equal(distinct_slots(rt, 2000, &most), 2000);
  assert_int_equal(most, 1);
  bw_runtime_destroy(rt);
}

/* One slot past the old wrap point: the generation had 24 bits, so the
 * slot's 2^24-th next actor got its first actor's pid back. The test hook
 * sets the slot's next generation as if 2^24 actors had come and gone
 * (spawning them would take seconds per slot; with the quarantine, days). */
static void test_slot_past_old_wrap(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw__pid_test_quarantine(rt, 0); /* reuse at once: the slot comes back */
  bw_pid_t a;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &a), 0);
  assert_int_equal(bw_send(rt, a, T_STOP, NULL, 0), 0);
  await_freed(rt, a);
  uint32_t slot = BW__PID_SLOT(a), g = BW__PID_GEN(a);

  bw__pid_test_next_gen(rt, slot, g + (1u << 24));
  bw_pid_t b;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &b), 0);
  assert_int_equal(BW__PID_SLOT(b), slot);
  assert_int_equal(BW__PID_GEN(b), g + (1u << 24));
  /* the old layout kept 24 bits of generation: there, b's pid was a's */
  assert_int_equal(BW__PID_GEN(b) & 0xFFFFFFu, g);
  assert_int_not_equal(a, b);

  bw_runtime_stats_t before = bwt_stats(rt);
  assert_false(bw_is_alive(rt, a));
  assert_true(bw_is_alive(rt, b));
  assert_int_equal(bw_send(rt, a, T_PING, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_exit(rt, a, BW_REASON_KILL, 0, NULL), BW_ENOPROC);
  uint32_t depth;
  assert_int_equal(bw_mailbox_depth(rt, a, &depth), BW_ENOPROC);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_true(bw_is_alive(rt, b));
  assert_int_equal(pings_of(rt, b), 0);

  /* and on: the slot's next actor has the next generation */
  assert_int_equal(bw_send(rt, b, T_STOP, NULL, 0), 0);
  await_freed(rt, b);
  bw_pid_t c;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &c), 0);
  assert_int_equal(BW__PID_SLOT(c), slot);
  assert_int_equal(BW__PID_GEN(c), g + (1u << 24) + 1);
  assert_int_equal(bw_send(rt, b, T_PING, NULL, 0), BW_ENOPROC);
  assert_int_equal(pings_of(rt, c), 0);

  bw_runtime_destroy(rt);

  /* the generation wraps only at 2^26, and never to 0 (no live pid has
   * generation 0): what RUNTIME.md's arithmetic counts. A fresh runtime:
   * bw_call's waiter (above) takes a slot of its own, which would come
   * first now. */
  rt = bwt_runtime(2, false);
  bw__pid_test_quarantine(rt, 0);
  bw_pid_t d, e;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &d), 0);
  assert_int_equal(bw_exit(rt, d, BW_REASON_KILL, 0, NULL), 0);
  await_freed(rt, d);
  slot = BW__PID_SLOT(d);
  bw__pid_test_next_gen(rt, slot, BW__GEN_MASK);
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &d), 0);
  assert_int_equal(BW__PID_SLOT(d), slot);
  assert_int_equal(BW__PID_GEN(d), BW__GEN_MASK);
  assert_int_equal(bw_exit(rt, d, BW_REASON_KILL, 0, NULL), 0);
  await_freed(rt, d);
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &e), 0);
  assert_int_equal(BW__PID_SLOT(e), slot);
  assert_int_equal(BW__PID_GEN(e), 1);
  assert_true(bw_is_alive(rt, e));
  assert_false(bw_is_alive(rt, d));
  bw_runtime_destroy(rt);
}

/* --- pids of other runtimes --------------------------------------------------- */

/* Everything that takes a pid refuses foreign (a pid of another runtime
 * that names the same slot and generation as victim, a live actor of rt):
 * a dead pid, and the victim hears nothing. */
static void assert_refused(bw_runtime_t *rt, bw_pid_t foreign, bw_pid_t victim) {
  assert_int_equal(BW__PID_SLOT(foreign), BW__PID_SLOT(victim));
  assert_int_equal(BW__PID_GEN(foreign), BW__PID_GEN(victim));
  assert_int_not_equal(foreign, victim);
  int pings = pings_of(rt, victim);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_false(bw_is_alive(rt, foreign));
  assert_int_equal(bw_send(rt, foreign, T_PING, NULL, 0), BW_ENOPROC);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, foreign, T_GET, NULL, 0, 0, &rep), BW_ENOPROC);
  uint32_t depth;
  assert_int_equal(bw_mailbox_depth(rt, foreign, &depth), BW_ENOPROC);
  assert_int_equal(bw_register(rt, "foreign", foreign), BW_ENOPROC);
  /* the kill that once took the victim instead */
  assert_int_equal(bw_exit(rt, foreign, BW_REASON_KILL, 0, NULL), BW_ENOPROC);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_true(after.dead_by_reason[BW_DL_NOPROC] >= before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_true(bw_is_alive(rt, victim));
  assert_int_equal(pings_of(rt, victim), pings);
}

static void test_pid_foreign_runtime(void **state) {
  (void)state;
  /* a pid of one runtime means nothing in another, even with the same
   * slot and generation (the first actor of each) */
  bw_runtime_t *r1 = bwt_runtime(1, false);
  bw_runtime_t *r2 = bwt_runtime(1, false);
  bw_pid_t a, b;
  assert_int_equal(bw_spawn(r1, &counter, NULL, NULL, &a), 0);
  assert_int_equal(bw_spawn(r2, &counter, NULL, NULL, &b), 0);
  assert_true(bw_is_alive(r1, a));
  assert_true(bw_is_alive(r2, b));
  assert_int_not_equal(BW__PID_TAG(a), 0);
  assert_int_not_equal(BW__PID_TAG(a), BW__PID_TAG(b));
  assert_int_equal(bw_send(r1, a, T_PING, NULL, 0), 0);
  assert_int_equal(pings_of(r1, a), 1);
  assert_refused(r2, a, b);
  assert_refused(r1, b, a);
  assert_int_equal(pings_of(r1, a), 1);
  bw_runtime_destroy(r1);
  bw_runtime_destroy(r2);
}

/* A pid of a destroyed runtime: refused by the new runtime's own check
 * (ASan would see a read of the old one's memory). Also for two runtimes
 * with the same node id, one after the other: a node restarted in the same
 * process. */
static void test_pid_destroyed_runtime(void **state) {
  (void)state;
  for (unsigned node = 0; node <= 3; node += 3) {
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    bwt_quiet_log(&o);
    o.workers = 1;
    o.node_id = node;
    bw_runtime_t *r1 = NULL, *r2 = NULL;
    assert_int_equal(bw_runtime_create(&o, &r1), 0);
    bw_pid_t a, b;
    assert_int_equal(bw_spawn(r1, &counter, NULL, NULL, &a), 0);
    assert_int_equal(bw_pid_node(a), node);
    bw_runtime_destroy(r1);
    assert_int_equal(bw_runtime_create(&o, &r2), 0);
    assert_int_equal(bw_spawn(r2, &counter, NULL, NULL, &b), 0);
    assert_int_equal(bw_pid_node(b), node);
    assert_refused(r2, a, b);
    bw_runtime_destroy(r2);
  }
}

/* Tags: never 0, different for every live runtime of the process, and a
 * long-lived runtime's tag is skipped while the counter goes round (more
 * than 255 runtimes created and destroyed beside it). */
static bw_pid_t first_pid(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &counter, NULL, NULL, &p), 0);
  return p;
}

static void test_runtime_tags(void **state) {
  (void)state;
  enum { LIVE = 8, CHURN = 300 };
  bw_runtime_t *rts[LIVE];
  uint32_t tags[LIVE];
  for (int i = 0; i < LIVE; i++) {
    rts[i] = bwt_runtime(1, true);
    tags[i] = BW__PID_TAG(first_pid(rts[i]));
    assert_int_not_equal(tags[i], 0);
    for (int j = 0; j < i; j++)
      assert_int_not_equal(tags[i], tags[j]);
  }
  for (int k = 0; k < CHURN; k++) {
    bw_runtime_t *rt = bwt_runtime(1, true);
    uint32_t t = BW__PID_TAG(first_pid(rt));
    assert_int_not_equal(t, 0);
    for (int j = 0; j < LIVE; j++)
      assert_int_not_equal(t, tags[j]);
    bw_runtime_destroy(rt);
  }
  for (int i = 0; i < LIVE; i++)
    bw_runtime_destroy(rts[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stale_pid_simple),
      cmocka_unit_test(test_stale_pid_after_reuse),
      cmocka_unit_test(test_garbage_pids),
      cmocka_unit_test(test_pid_foreign_runtime),
      cmocka_unit_test(test_pid_destroyed_runtime),
      cmocka_unit_test(test_runtime_tags),
      cmocka_unit_test(test_reuse_spread),
      cmocka_unit_test(test_reuse_quarantine),
      cmocka_unit_test(test_reuse_batch_grows),
      cmocka_unit_test(test_slot_past_old_wrap),
  };
  return BWT_RUN_SUITE(tests);
}
