/*
 * Dead letters: subscribers get BW_MSG_DEAD_LETTER with the reason, the
 * intended receiver, the sender, the type, the length and the flags of each
 * undeliverable message (noproc, full); unsubscribe; limits; notifications
 * that cannot be delivered are not themselves notified.
 */
#include "support.h"

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/health.h"

enum { T_DATA = 1, T_GET, T_STOP, T_FWD, T_BLOCK };

#define MAXEV 256
#define NSUB 17

typedef struct dl_ev {
  int sub;           /* which subscriber got it */
  uint32_t msg_type; /* BW_MSG_DEAD_LETTER, checked */
  uint32_t msg_len;
  bw_dead_letter_t dl;
} dl_ev_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static dl_ev_t evs[MAXEV]; /* under sync_ */
static int nev;
static int per_sub[NSUB];
static bwt_gate_t gate;

static void reset(void) {
  bwt_lock(&sync_);
  memset(evs, 0, sizeof evs);
  memset(per_sub, 0, sizeof per_sub);
  nev = 0;
  bwt_unlock(&sync_);
}

static dl_ev_t event_at(int i) {
  bwt_lock(&sync_);
  dl_ev_t e = evs[i];
  bwt_unlock(&sync_);
  return e;
}

static int nevents(void) {
  bwt_lock(&sync_);
  int n = nev;
  bwt_unlock(&sync_);
  return n;
}

static int sub_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  *(int *)state = (int)(intptr_t)arg;
  return 0;
}

static int sub_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  int id = *(int *)state;
  switch (msg->type) {
  case BW_MSG_DEAD_LETTER:
    bwt_lock(&sync_);
    if (nev < MAXEV) {
      evs[nev].sub = id;
      evs[nev].msg_type = msg->type;
      evs[nev].msg_len = msg->len;
      if (msg->data != NULL)
        evs[nev].dl = *(const bw_dead_letter_t *)msg->data;
    }
    nev++;
    if (id >= 0 && id < NSUB)
      per_sub[id]++;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, NULL, 0);
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  case T_FWD: {
    bw_pid_t to;
    memcpy(&to, msg->data, sizeof to);
    bw_send(bw_ctx_runtime(ctx), to, T_DATA, "abc", 3);
    return BW_CONTINUE;
  }
  case T_BLOCK:
    bwt_gate_pass(&gate);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t sub = {
    .name = "sub", .state_size = sizeof(int), .init = sub_init, .handle = sub_handle};

static bw_pid_t spawn_sub(bw_runtime_t *rt, int id) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sub, (void *)(intptr_t)id, NULL, &pid), 0);
  return pid;
}

static bw_pid_t dead_pid(bw_runtime_t *rt) {
  bw_pid_t pid = spawn_sub(rt, -1);
  assert_int_equal(bw_send(rt, pid, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, pid);
  return pid;
}

static void sync_with(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
}

static void test_subscriber_gets_noproc(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t s = spawn_sub(rt, 0);
  bw_pid_t d = dead_pid(rt);
  assert_int_equal(bw_dead_letter_subscribe(rt, s), 0);

  assert_int_equal(bw_send(rt, d, 77, "hello", 5), BW_ENOPROC);
  BWT_AWAIT(&sync_, nev == 1);
  dl_ev_t e = event_at(0);
  assert_int_equal(e.msg_type, BW_MSG_DEAD_LETTER);
  assert_int_equal(e.dl.reason, BW_DL_NOPROC);
  assert_int_equal(e.dl.type, 77);
  assert_int_equal(e.dl.to, d);
  assert_int_equal(e.dl.from, BW_PID_NONE);
  assert_int_equal(e.dl.len, 5);

  /* sent by an actor: its pid is the dead letter's from */
  bw_pid_t a = spawn_sub(rt, 1);
  assert_int_equal(bw_send(rt, a, T_FWD, &d, sizeof d), 0);
  BWT_AWAIT(&sync_, nev == 2);
  e = event_at(1);
  assert_int_equal(e.dl.reason, BW_DL_NOPROC);
  assert_int_equal(e.dl.type, T_DATA);
  assert_int_equal(e.dl.to, d);
  assert_int_equal(e.dl.from, a);
  assert_int_equal(e.dl.len, 3);
  assert_int_equal(e.sub, 0);

  /* a moved payload keeps its flag */
  static char buf[40];
  assert_int_equal(bw_send_move(rt, d, 78, buf, sizeof buf, NULL), BW_ENOPROC);
  BWT_AWAIT(&sync_, nev == 3);
  e = event_at(2);
  assert_int_equal(e.dl.type, 78);
  assert_int_equal(e.dl.len, sizeof buf);
  assert_true(e.dl.flags & BW_MSGF_MOVED);
  bw_runtime_destroy(rt);
}

static void test_subscriber_gets_full(void **state) {
  (void)state;
  reset();
  bwt_gate_init(&gate);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t s = spawn_sub(rt, 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, s), 0);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.mailbox_capacity = 1;
  o.overflow = BW_OVERFLOW_DROP;
  o.dedicated_thread = true;
  bw_pid_t b;
  assert_int_equal(bw_spawn(rt, &sub, (void *)(intptr_t)1, &o, &b), 0);
  assert_int_equal(bw_send(rt, b, T_BLOCK, NULL, 0), 0);
  assert_true(bwt_gate_await_waiting(&gate, 1));
  assert_int_equal(bw_send(rt, b, T_DATA, "1", 1), 0);
  assert_int_equal(bw_send(rt, b, 99, "22", 2), 0); /* dropped */
  BWT_AWAIT(&sync_, nev == 1);
  dl_ev_t e = event_at(0);
  assert_int_equal(e.dl.reason, BW_DL_FULL);
  assert_int_equal(e.dl.to, b);
  assert_int_equal(e.dl.type, 99);
  assert_int_equal(e.dl.len, 2);
  bwt_gate_open(&gate);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_unsubscribe(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t s = spawn_sub(rt, 0);
  bw_pid_t d = dead_pid(rt);
  assert_int_equal(bw_dead_letter_subscribe(rt, s), 0);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, s), 0);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, s), BW_ENOTFOUND);
  assert_int_equal(bw_send(rt, d, 1, NULL, 0), BW_ENOPROC); /* not notified */
  assert_int_equal(bw_dead_letter_subscribe(rt, s), 0);
  assert_int_equal(bw_send(rt, d, 2, NULL, 0), BW_ENOPROC);
  BWT_AWAIT(&sync_, nev >= 1);
  sync_with(rt, s);
  assert_int_equal(nevents(), 1);
  assert_int_equal(event_at(0).dl.type, 2);
  bw_runtime_stats_t st = bwt_stats(rt);
  assert_int_equal(st.dead_by_reason[BW_DL_NOPROC], 2);
  bw_runtime_destroy(rt);
}

static void test_subscribe_limits_and_errors(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t d = dead_pid(rt);
  assert_int_equal(bw_dead_letter_subscribe(rt, d), BW_ENOPROC);
  assert_int_equal(bw_dead_letter_subscribe(NULL, d), BW_EINVAL);
  assert_int_equal(bw_dead_letter_unsubscribe(NULL, d), BW_EINVAL);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, d), BW_ENOTFOUND);

  bw_pid_t subs[NSUB];
  for (int i = 0; i < NSUB; i++)
    subs[i] = spawn_sub(rt, i);
  for (int i = 0; i < 16; i++)
    assert_int_equal(bw_dead_letter_subscribe(rt, subs[i]), 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), BW_ELIMIT);

  /* every subscriber gets each dead letter, once */
  assert_int_equal(bw_send(rt, d, 5, NULL, 0), BW_ENOPROC);
  BWT_AWAIT(&sync_, nev == 16);
  for (int i = 0; i < NSUB; i++)
    sync_with(rt, subs[i]);
  bwt_lock(&sync_);
  for (int i = 0; i < 16; i++)
    assert_int_equal(per_sub[i], 1);
  assert_int_equal(per_sub[16], 0);
  bwt_unlock(&sync_);

  /* a freed place can be taken */
  assert_int_equal(bw_dead_letter_unsubscribe(rt, subs[0]), 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), 0);
  bw_runtime_destroy(rt);
}

/* A subscriber found dead when a dead letter is offered to it is dropped
 * (runtime/subs.h, the rule of every subscriber list): its place is free
 * for another, and unsubscribing it says it is not there. Before, a dead
 * subscriber held its place until unsubscribed. */
static void test_dead_subscriber_dropped(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t d = dead_pid(rt);
  bw_pid_t subs[NSUB];
  for (int i = 0; i < NSUB; i++)
    subs[i] = spawn_sub(rt, i);
  for (int i = 0; i < 16; i++)
    assert_int_equal(bw_dead_letter_subscribe(rt, subs[i]), 0);
  assert_int_equal(bw_send(rt, subs[0], T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, subs[0]);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), BW_ELIMIT); /* still held */
  /* the dead letter is offered to every subscriber in this call: the
   * offer to subs[0] finds it dead */
  assert_int_equal(bw_send(rt, d, 5, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, subs[0]), BW_ENOTFOUND);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), 0);
  BWT_AWAIT(&sync_, nev == 15);
  bw_runtime_destroy(rt);
}

static void test_undeliverable_notification_not_notified(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t s1 = spawn_sub(rt, 1), s2 = spawn_sub(rt, 2);
  assert_int_equal(bw_dead_letter_subscribe(rt, s1), 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, s2), 0);
  assert_int_equal(bw_send(rt, s1, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, s1);

  bw_pid_t d = dead_pid(rt);
  /* d's stop itself produced no dead letter; reset the count */
  bwt_lock(&sync_);
  int base = per_sub[2];
  bwt_unlock(&sync_);
  assert_int_equal(bw_send(rt, d, 9, NULL, 0), BW_ENOPROC);
  BWT_AWAIT(&sync_, per_sub[2] == base + 1);
  sync_with(rt, s2);
  bwt_lock(&sync_);
  /* the notification to the dead s1 is not reported to s2 */
  assert_int_equal(per_sub[2], base + 1);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

/* --- the library's internal messages are marked ------------------------------- */

static void test_type_ranges(void **state) {
  (void)state;
  /* yours */
  assert_false(bw_msg_type_is_internal(0));
  assert_false(bw_msg_type_is_internal(77));
  assert_false(bw_msg_type_is_internal(BW_MSG_PATTERN_BASE - 1));
  /* a pattern's public protocol */
  assert_false(bw_msg_type_is_internal(BW_BULKHEAD_RUN));
  assert_false(bw_msg_type_is_internal(BW_BULKHEAD_RESULT));
  assert_false(bw_msg_type_is_internal(BW_BREAKER_MSG_OPEN));
  assert_false(bw_msg_type_is_internal(BW_HEALTH_MSG_SIGNAL));
  assert_false(bw_msg_type_is_internal(BW_MSG_HEALTH_BASE + BW_MSG_BLOCK_INTERNAL - 1));
  /* a pattern's internal half, the node block, the runtime's */
  assert_true(bw_msg_type_is_internal(BW_MSG_BULKHEAD_BASE + BW_MSG_BLOCK_INTERNAL));
  assert_true(bw_msg_type_is_internal(BW_MSG_BREAKER_BASE + 0xFFu));
  assert_true(bw_msg_type_is_internal(BW_MSG_NODE_BASE));
  assert_true(bw_msg_type_is_internal(BW_MSG_NODE_BASE + 2));
  assert_false(bw_msg_type_is_internal(BW_MSG_NODE_BASE + BW_MSG_BLOCK_SIZE));
  assert_true(bw_msg_type_is_internal(BW_MSG_SYSTEM_BASE));
  assert_true(bw_msg_type_is_internal(BW_MSG_EVENT));
  assert_true(bw_msg_type_is_internal(BW_MSG_DEAD_LETTER));
  assert_true(bw_msg_type_is_internal(UINT32_MAX));
}

static int blocking_job(bw_ctx_t *ctx, void *res, void *arg) {
  (void)ctx;
  (void)res;
  (void)arg;
  return bwt_gate_pass(&gate) ? 0 : BW_ETIMEDOUT;
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

/* The first dead letter to pool with a type of the bulkhead's internal
 * half (its worker's "done" note), or -1. */
static int find_note(bw_pid_t pool) {
  int n = nevents();
  for (int i = 0; i < n && i < MAXEV; i++) {
    dl_ev_t e = event_at(i);
    if (e.dl.to == pool && e.dl.type >= BW_MSG_BULKHEAD_BASE + BW_MSG_BLOCK_INTERNAL &&
        e.dl.type < BW_MSG_BULKHEAD_BASE + BW_MSG_BLOCK_SIZE)
      return i;
  }
  return -1;
}

/* The index of the first record at or after `from` of the user's message
 * (type 77) to `d`, or -1. */
static int user_record(int from, bw_pid_t d) {
  for (int i = from; i < nevents() && i < MAXEV; i++) {
    dl_ev_t e = event_at(i);
    if (e.dl.to == d && e.dl.type == 77)
      return i;
  }
  return -1;
}

/* How many records at or after `from` are marked internal. */
static uint64_t internal_records(int from) {
  uint64_t k = 0;
  for (int i = from; i < nevents() && i < MAXEV; i++)
    k += event_at(i).dl.internal ? 1 : 0;
  return k;
}

static const bw_bulkhead_opts_t pool_opts = {
    .name = "pool", .workers = 1, .dedicated_threads = true};
static bw_child_spec_t pool_kids[1]; /* bw_bulkhead_child_spec fills it */
static const bw_sup_spec_t pool_sup = {
    .name = "pools", .strategy = BW_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000,
    .children = pool_kids, .nchildren = 1};

/* A pool restarted while its worker is inside a job: the worker's "done"
 * note goes to the old pool, a dead letter marked internal; a user's
 * message to a dead pid is not marked. */
static void test_internal_marked(void **state) {
  (void)state;
  reset();
  bwt_gate_init(&gate);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t s = spawn_sub(rt, 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, s), 0);
  uint64_t base = bwt_stats(rt).dead_internal; /* every later one is recorded */
  bw_pid_t sup, pool, again = BW_PID_NONE;
  bw_bulkhead_t *ph = NULL;
  assert_int_equal(bw_bulkhead_new(rt, &pool_opts, &ph), 0);
  assert_int_equal(bw_bulkhead_child_spec(ph, "pool", &pool_kids[0]), 0);
  assert_int_equal(bw_supervisor_start(rt, &pool_sup, &sup, NULL), 0);
  assert_int_equal(bw_sup_child_pid(rt, sup, "pool", &pool), 0);
  assert_int_equal(bw_bulkhead_pid(ph), pool);
  uint64_t internal_before = bwt_stats(rt).dead_internal;

  job_thread_t j = {ph, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, run_job, &j), 0);
  assert_true(bwt_gate_await_waiting(&gate, 1)); /* the worker is in the job */
  assert_int_equal(bw_exit(rt, pool, BW_REASON_KILL, 0, "test"), 0);
  BWT_AWAIT_DEAD(rt, pool);
  BWT_POLL(bw_sup_child_pid(rt, sup, "pool", &again) == 0 && again != pool &&
           again != BW_PID_NONE);
  bwt_gate_open(&gate); /* the job returns: its note goes to the old pool */
  pthread_join(th, NULL);
  assert_int_equal(j.rc, BW_ENOPROC); /* the pool it asked is gone */

  /* the note: to the old pool, noproc, a bulkhead internal type, marked */
  int at = -1;
  BWT_POLL((at = find_note(pool)) >= 0);
  dl_ev_t note = event_at(at);
  assert_int_equal(note.dl.reason, BW_DL_NOPROC);
  assert_int_equal(note.dl.internal, 1);
  assert_true(note.dl.from != BW_PID_NONE); /* the worker */
  /* every dead letter is marked exactly as its type says */
  int n = nevents();
  for (int i = 0; i < n && i < MAXEV; i++) {
    dl_ev_t e = event_at(i);
    assert_int_equal(e.dl.internal, bw_msg_type_is_internal(e.dl.type) ? 1 : 0);
  }
  assert_true(bwt_stats(rt).dead_internal > internal_before);

  /* a user message: not marked, and not counted as internal. Other
   * internal dead letters of the restart (the old pool's worker ending) may
   * still be on their way, so the check is that the internal counter
   * equals the internal records delivered, once everything has arrived. */
  bw_pid_t d = dead_pid(rt);
  assert_int_equal(bw_send(rt, d, 77, "x", 1), BW_ENOPROC);
  BWT_POLL(user_record(n, d) >= 0);
  assert_int_equal(event_at(user_record(n, d)).dl.internal, 0);
  BWT_POLL(bwt_stats(rt).dead_internal - base == internal_records(0));
  assert_int_equal(bw_sup_stop(rt, sup), 0);
  assert_int_equal(bw_bulkhead_destroy(ph), 0);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_subscriber_gets_noproc),
      cmocka_unit_test(test_subscriber_gets_full),
      cmocka_unit_test(test_unsubscribe),
      cmocka_unit_test(test_subscribe_limits_and_errors),
      cmocka_unit_test(test_dead_subscriber_dropped),
      cmocka_unit_test(test_undeliverable_notification_not_notified),
      cmocka_unit_test(test_type_ranges),
      cmocka_unit_test(test_internal_marked),
  };
  return BWT_RUN_SUITE(tests);
}
