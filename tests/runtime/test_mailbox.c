/*
 * Mailboxes: many producers to one actor (every message exactly once, in
 * per-producer order, exact stats), producers as threads and as actors;
 * bounded mailboxes under the reject and the drop policies, with exact
 * accounting; the unbounded default loses nothing while its actor is blocked.
 */
#include "support.h"

#include <stdatomic.h>

enum { T_DATA = 1, T_GO, T_ACK, T_BLOCK, T_GET, T_MOVE };

#define NPROD 8
#define FULL_COUNT 1000000ul
/* Messages in flight at most, for the thread producers: bounds memory, since
 * an unbounded mailbox would otherwise hold most of the 8M messages. */
#define WINDOW 65536u
#define CHUNK 1000u  /* actor producers: messages per credit */
#define CREDITS 4u   /* actor producers: chunks in flight per producer */

typedef struct item {
  uint32_t producer;
  uint32_t seq; /* 1, 2, ... per producer */
} item_t;

/* --- the sink: checks order and counts ---------------------------------- */

typedef struct sink_cfg {
  unsigned long per_producer;
  bool ack; /* actor producers: ack every CHUNK messages */
} sink_cfg_t;

typedef struct sink_state {
  sink_cfg_t cfg;
  uint32_t last[NPROD];
  bw_pid_t from[NPROD];
  uint64_t count[NPROD];
  uint64_t order_violations;
  uint64_t from_violations;
  uint64_t bad_items;
  uint64_t ack_errors;
} sink_state_t;

static _Atomic uint64_t sink_handled;   /* data messages the sink handled */
static _Atomic uint64_t producers_done; /* actor producers that got their last ack */
static _Atomic uint64_t queued_total;   /* thread producers: messages sent so far */

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static sink_state_t sink_final; /* the sink's state at terminate; under sync_ */
static int sink_terminated;

static int sink_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  sink_state_t *st = state;
  st->cfg = *(const sink_cfg_t *)arg;
  return 0;
}

static int sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  sink_state_t *st = state;
  if (msg->type != T_DATA || msg->len != sizeof(item_t)) {
    st->bad_items++;
    return BW_CONTINUE;
  }
  item_t it;
  memcpy(&it, msg->data, sizeof it);
  if (it.producer >= NPROD) {
    st->bad_items++;
    return BW_CONTINUE;
  }
  if (it.seq != st->last[it.producer] + 1)
    st->order_violations++;
  st->last[it.producer] = it.seq;
  if (st->count[it.producer]++ == 0)
    st->from[it.producer] = msg->from;
  else if (st->from[it.producer] != msg->from)
    st->from_violations++;
  if (st->cfg.ack && (it.seq % CHUNK == 0 || it.seq == st->cfg.per_producer)) {
    if (bw_send(bw_ctx_runtime(ctx), msg->from, T_ACK, &it, sizeof it) != 0)
      st->ack_errors++;
  }
  /* release: the state above is published with the count (read by main) */
  atomic_fetch_add_explicit(&sink_handled, 1, memory_order_release);
  return BW_CONTINUE;
}

static void sink_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)reason;
  bwt_lock(&sync_);
  sink_final = *(sink_state_t *)state;
  sink_terminated++;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t sink = {
    .name = "sink",
    .state_size = sizeof(sink_state_t),
    .init = sink_init,
    .handle = sink_handle,
    .terminate = sink_terminate,
};

static void reset(void) {
  atomic_store(&sink_handled, 0);
  atomic_store(&producers_done, 0);
  atomic_store(&queued_total, 0);
  bwt_lock(&sync_);
  memset(&sink_final, 0, sizeof sink_final);
  sink_terminated = 0;
  bwt_unlock(&sync_);
}

static void check_sink(unsigned long per) {
  bwt_lock(&sync_);
  sink_state_t f = sink_final;
  int term = sink_terminated;
  bwt_unlock(&sync_);
  assert_int_equal(term, 1);
  assert_int_equal(f.bad_items, 0);
  assert_int_equal(f.order_violations, 0);
  assert_int_equal(f.from_violations, 0);
  assert_int_equal(f.ack_errors, 0);
  for (int p = 0; p < NPROD; p++) {
    assert_int_equal(f.count[p], per);
    assert_int_equal(f.last[p], per);
  }
}

/* --- producers as threads ------------------------------------------------ */

typedef struct thread_prod {
  bw_runtime_t *rt;
  bw_pid_t sink;
  uint32_t id;
  unsigned long count;
  unsigned long errors; /* sends that did not return 0 */
} thread_prod_t;

static void *thread_producer(void *arg) {
  thread_prod_t *p = arg;
  for (unsigned long s = 1; s <= p->count; s++) {
    if ((s & 255) == 1) {
      /* flow control: wait while too many messages are in flight */
      atomic_fetch_add_explicit(&queued_total, 256, memory_order_relaxed);
      unsigned spins = 0;
      struct timespec dl = bwt_deadline_in(250);
      while (atomic_load_explicit(&queued_total, memory_order_relaxed) >
             atomic_load_explicit(&sink_handled, memory_order_relaxed) + WINDOW) {
        if (bwt_past(&dl))
          break; /* the main thread's wait reports the failure */
        bwt_relax(&spins);
      }
    }
    item_t it = {p->id, (uint32_t)s};
    if (bw_send(p->rt, p->sink, T_DATA, &it, sizeof it) != 0)
      p->errors++;
  }
  return NULL;
}

static void test_threads_to_one_actor(void **state) {
  (void)state;
  reset();
  const unsigned long per = bwt_scaled(FULL_COUNT);
  bw_runtime_t *rt = bwt_runtime(2, false);
  sink_cfg_t cfg = {per, false};
  bw_pid_t sp;
  assert_int_equal(bw_spawn(rt, &sink, &cfg, NULL, &sp), 0);

  pthread_t th[NPROD];
  thread_prod_t prods[NPROD];
  for (uint32_t i = 0; i < NPROD; i++) {
    prods[i] = (thread_prod_t){rt, sp, i, per, 0};
    assert_int_equal(pthread_create(&th[i], NULL, thread_producer, &prods[i]), 0);
  }
  for (int i = 0; i < NPROD; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (int i = 0; i < NPROD; i++)
    assert_int_equal(prods[i].errors, 0);

  BWT_POLL_FOR(atomic_load_explicit(&sink_handled, memory_order_acquire) >= NPROD * per, 250);
  assert_int_equal(bw_runtime_stop(rt), 0);
  check_sink(per);
  for (int p = 0; p < NPROD; p++)
    assert_int_equal(sink_final.from[p], BW_PID_NONE);

  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.sent, NPROD * per);
  assert_int_equal(s.handled, NPROD * per);
  assert_int_equal(s.dead_letters, 0);
  assert_int_equal(s.rejected, 0);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- producers as actors -------------------------------------------------- */

typedef struct actor_prod_cfg {
  bw_pid_t sink;
  uint32_t id;
  unsigned long count;
} actor_prod_cfg_t;

typedef struct actor_prod {
  actor_prod_cfg_t cfg;
  unsigned long next; /* next seq to send */
  unsigned long acks;
  unsigned long errors;
} actor_prod_t;

static unsigned long prod_errors[NPROD]; /* under sync_ */

static int prod_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  actor_prod_t *st = state;
  st->cfg = *(const actor_prod_cfg_t *)arg;
  st->next = 1;
  return 0;
}

static void prod_send_chunk(bw_ctx_t *ctx, actor_prod_t *st) {
  for (unsigned k = 0; k < CHUNK && st->next <= st->cfg.count; k++, st->next++) {
    item_t it = {st->cfg.id, (uint32_t)st->next};
    if (bw_send(bw_ctx_runtime(ctx), st->cfg.sink, T_DATA, &it, sizeof it) != 0)
      st->errors++;
  }
}

static int prod_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  actor_prod_t *st = state;
  unsigned long chunks = (st->cfg.count + CHUNK - 1) / CHUNK;
  if (msg->type == T_GO) {
    for (unsigned c = 0; c < CREDITS; c++)
      prod_send_chunk(ctx, st);
  } else if (msg->type == T_ACK) {
    prod_send_chunk(ctx, st);
    if (++st->acks == chunks) {
      bwt_lock(&sync_);
      prod_errors[st->cfg.id] = st->errors;
      bwt_unlock(&sync_);
      atomic_fetch_add_explicit(&producers_done, 1, memory_order_release);
    }
  } else {
    st->errors++;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t producer = {
    .name = "producer",
    .state_size = sizeof(actor_prod_t),
    .init = prod_init,
    .handle = prod_handle,
};

static void test_actors_to_one_actor(void **state) {
  (void)state;
  reset();
  const unsigned long per = bwt_scaled(FULL_COUNT);
  const unsigned long chunks = (per + CHUNK - 1) / CHUNK;
  bw_runtime_t *rt = bwt_runtime(2, false);
  sink_cfg_t cfg = {per, true};
  bw_pid_t sp;
  assert_int_equal(bw_spawn(rt, &sink, &cfg, NULL, &sp), 0);
  bw_pid_t pp[NPROD];
  for (uint32_t i = 0; i < NPROD; i++) {
    actor_prod_cfg_t pc = {sp, i, per};
    assert_int_equal(bw_spawn(rt, &producer, &pc, NULL, &pp[i]), 0);
  }
  for (int i = 0; i < NPROD; i++)
    assert_int_equal(bw_send(rt, pp[i], T_GO, NULL, 0), 0);

  BWT_POLL_FOR(atomic_load_explicit(&producers_done, memory_order_acquire) == NPROD, 250);
  assert_int_equal(atomic_load(&sink_handled), NPROD * per);
  assert_int_equal(bw_runtime_stop(rt), 0);
  check_sink(per);
  for (int p = 0; p < NPROD; p++) {
    assert_int_equal(sink_final.from[p], pp[p]);
    assert_int_equal(prod_errors[p], 0);
  }

  bw_runtime_stats_t s = bwt_stats(rt);
  const uint64_t total = NPROD * per + NPROD * chunks + NPROD; /* data, acks, go */
  assert_int_equal(s.sent, total);
  assert_int_equal(s.handled, total);
  assert_int_equal(s.dead_letters, 0);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- bounded mailboxes, with a dedicated-thread actor held at a gate ---- */

static bwt_gate_t gate;
static _Atomic uint64_t blocker_handled;
static int dtor_calls; /* under sync_ */

static void counting_dtor(void *p) {
  bwt_lock(&sync_);
  dtor_calls++;
  bwt_unlock_signal(&sync_);
  free(p);
}

typedef struct blocker_state {
  uint32_t last;
  uint32_t handled;
  uint32_t violations;
} blocker_state_t;

static int blocker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  blocker_state_t *st = state;
  switch (msg->type) {
  case T_BLOCK:
    bwt_gate_pass(&gate);
    break;
  case T_DATA:
  case T_MOVE: {
    uint32_t seq;
    memcpy(&seq, msg->data, sizeof seq);
    if (seq != st->last + 1)
      st->violations++;
    st->last = seq;
    st->handled++;
    atomic_fetch_add_explicit(&blocker_handled, 1, memory_order_release);
    break;
  }
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, st, sizeof *st);
    break;
  default:
    break;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t blocker = {
    .name = "blocker", .state_size = sizeof(blocker_state_t), .handle = blocker_handle};

static bw_pid_t spawn_blocked(bw_runtime_t *rt, uint32_t cap, bw_overflow_t ov) {
  bwt_gate_init(&gate);
  atomic_store(&blocker_handled, 0);
  bwt_lock(&sync_);
  dtor_calls = 0;
  bwt_unlock(&sync_);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.mailbox_capacity = cap;
  o.overflow = ov;
  o.dedicated_thread = true;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &blocker, NULL, &o, &pid), 0);
  assert_int_equal(bw_send(rt, pid, T_BLOCK, NULL, 0), 0);
  /* the handler holds T_BLOCK: from now on the mailbox only fills */
  assert_true(bwt_gate_await_waiting(&gate, 1));
  return pid;
}

static blocker_state_t blocker_get(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  blocker_state_t st;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof st);
  memcpy(&st, rep.data, sizeof st);
  return st;
}

#define CAP 8u

static void test_bounded_reject(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid = spawn_blocked(rt, CAP, BW_OVERFLOW_REJECT);

  uint32_t seq;
  for (seq = 1; seq <= CAP; seq++)
    assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), 0);
  bw_runtime_stats_t s0 = bwt_stats(rt);
  /* seq == CAP + 1: refused, twice; the sender keeps it */
  assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), BW_EFULL);
  assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), BW_EFULL);
  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.rejected, 2);
  assert_int_equal(s1.sent, s0.sent); /* rejected sends are not counted */
  assert_int_equal(s1.dead_letters, 0);

  /* a refused move leaves the pointer with the caller */
  uint32_t *mp = malloc(sizeof *mp);
  assert_non_null(mp);
  *mp = seq;
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, mp, sizeof *mp, counting_dtor), BW_EFULL);
  bw_runtime_stats_t s2 = bwt_stats(rt);
  assert_int_equal(s2.rejected, 3);
  bwt_lock(&sync_);
  assert_int_equal(dtor_calls, 0);
  bwt_unlock(&sync_);
  free(mp);

  /* a call into a full reject mailbox fails the same way */
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), BW_EFULL);
  bw_runtime_stats_t s3 = bwt_stats(rt);
  assert_int_equal(s3.rejected, 4);

  bwt_gate_open(&gate);
  BWT_POLL(atomic_load_explicit(&blocker_handled, memory_order_acquire) == CAP);
  /* room again: the refused message can be sent now */
  assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), 0);
  blocker_state_t st = blocker_get(rt, pid);
  assert_int_equal(st.handled, CAP + 1);
  assert_int_equal(st.last, CAP + 1);
  assert_int_equal(st.violations, 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.rejected, 4);
  assert_int_equal(s.dead_letters, 0);
  /* T_BLOCK, CAP + 1 data, one call */
  assert_true(s.handled >= CAP + 3);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_bounded_drop(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid = spawn_blocked(rt, CAP, BW_OVERFLOW_DROP);

  uint32_t seq;
  for (seq = 1; seq <= CAP; seq++)
    assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), 0);
  bw_runtime_stats_t s0 = bwt_stats(rt);
  enum { EXTRA = 5 };
  for (int i = 0; i < EXTRA; i++, seq++)
    assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), 0);
  /* a dropped move is a dead letter: its destructor runs */
  uint32_t *mp = malloc(sizeof *mp);
  assert_non_null(mp);
  *mp = seq;
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, mp, sizeof *mp, counting_dtor), 0);
  BWT_AWAIT(&sync_, dtor_calls == 1);

  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.rejected, 0);
  assert_int_equal(s1.dead_by_reason[BW_DL_FULL], EXTRA + 1);
  assert_int_equal(s1.dead_letters, EXTRA + 1);
  assert_int_equal(s1.sent, s0.sent + EXTRA + 1);

  bwt_gate_open(&gate);
  BWT_POLL(atomic_load_explicit(&blocker_handled, memory_order_acquire) == CAP);
  /* the first CAP arrived, in order; the later ones were dropped */
  blocker_state_t st = blocker_get(rt, pid);
  assert_int_equal(st.handled, CAP);
  assert_int_equal(st.last, CAP);
  assert_int_equal(st.violations, 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_FULL], EXTRA + 1);
  assert_int_equal(s.dead_letters, EXTRA + 1);
  assert_int_equal(s.rejected, 0);
  assert_true(s.handled >= CAP + 2);
  bwt_assert_accounting(&s);
  bwt_lock(&sync_);
  assert_int_equal(dtor_calls, 1);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_unbounded_keeps_all_while_blocked(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid = spawn_blocked(rt, 0, BW_OVERFLOW_DROP);
  enum { N = 20000 };
  for (uint32_t seq = 1; seq <= N; seq++)
    assert_int_equal(bw_send(rt, pid, T_DATA, &seq, sizeof seq), 0);
  bwt_gate_open(&gate);
  blocker_state_t st = blocker_get(rt, pid);
  assert_int_equal(st.handled, N);
  assert_int_equal(st.last, N);
  assert_int_equal(st.violations, 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_letters, 0);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bounded_reject),
      cmocka_unit_test(test_bounded_drop),
      cmocka_unit_test(test_unbounded_keeps_all_while_blocked),
      cmocka_unit_test(test_threads_to_one_actor),
      cmocka_unit_test(test_actors_to_one_actor),
  };
  return BWT_RUN_SUITE(tests);
}
