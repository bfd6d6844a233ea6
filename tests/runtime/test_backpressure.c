/*
 * Back-pressure: actors that send to an overloaded actor are muted until it
 * catches up (actor.h, bw_mailbox_depth), so a fast producer cannot grow a
 * slow consumer's mailbox without bound; and muting never deadlocks, never
 * loses a message, and never outlives the overloaded actor or the runtime.
 *
 * With one worker the interleaving is fixed: the producer's turn is a whole
 * batch of handler calls (64 x chunk sends) unless it is muted, and the
 * consumer runs between its turns; so the bound asserted below is exact
 * reasoning, not timing: one producer turn plus the low watermark.
 */
#include <semaphore.h>

#include "support.h"

enum { M_ITEM = 1, M_CONT, M_START };

#define CHUNK 1000u
#define BATCH 64u
/* the most a consumer can have queued when its producer is muted in time:
 * one full producer turn (BATCH chunks) on top of a backlog just under the
 * overload mark (32 batches), plus the chunks sent while the consumer's turn
 * that raised the mark was running and the one that noticed it */
#define BACKLOG_BOUND (BATCH * CHUNK + 32u * BATCH + 4u * CHUNK)

typedef struct shared {
  bwt_sync_t sync;
  uint64_t n;          /* messages each producer sends */
  bw_pid_t peer;       /* consumer (or the other flooder) */
  uint64_t received;   /* by the consumer, in order */
  uint64_t out_of_order;
  uint32_t max_depth;  /* the consumer's mailbox depth, the most seen */
  uint64_t stop_after; /* consumer stops itself after this many (0 = never) */
  bool echo;           /* consumer sends itself a note per item (its own backlog) */
  uint64_t sent_ok, sent_noproc, sent_other;
  bool producer_done;
} shared_t;

/* --- producer: chunk sends per handler call, then a "continue" to itself --- */

typedef struct producer {
  shared_t *sh;
  uint64_t seq;
  uint64_t ok, noproc, other;
} producer_t;

static int producer_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((producer_t *)state)->sh = arg;
  return 0;
}

static int producer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  producer_t *p = state;
  shared_t *sh = p->sh;
  if (msg->type != M_START && msg->type != M_CONT)
    return BW_CONTINUE;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  for (unsigned i = 0; i < CHUNK && p->seq < sh->n; i++, p->seq++) {
    int rc = bw_send(rt, sh->peer, M_ITEM, &p->seq, sizeof p->seq);
    if (rc == 0)
      p->ok++;
    else if (rc == BW_ENOPROC)
      p->noproc++;
    else
      p->other++;
  }
  if (p->seq < sh->n)
    return bw_send(rt, bw_self(ctx), M_CONT, NULL, 0) == 0 ? BW_CONTINUE : BW_EINVAL;
  bwt_lock(&sh->sync);
  sh->sent_ok = p->ok;
  sh->sent_noproc = p->noproc;
  sh->sent_other = p->other;
  sh->producer_done = true;
  bwt_unlock_signal(&sh->sync);
  return BW_STOP;
}

static const bw_behaviour_t producer_beh = {
    .name = "producer",
    .state_size = sizeof(producer_t),
    .init = producer_init,
    .handle = producer_handle,
};

/* --- consumer: checks order, records its depth ------------------------------ */

typedef struct consumer {
  shared_t *sh;
  uint64_t next;
  uint64_t bad;
  uint32_t max_depth;
} consumer_t;

static int consumer_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((consumer_t *)state)->sh = arg;
  return 0;
}

static int consumer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  consumer_t *c = state;
  shared_t *sh = c->sh;
  if (msg->type != M_ITEM)
    return BW_CONTINUE;
  if (sh->echo && bw_send(bw_ctx_runtime(ctx), bw_self(ctx), M_CONT, NULL, 0) != 0)
    return BW_EINVAL;
  uint64_t v;
  memcpy(&v, msg->data, sizeof v);
  if (v != c->next)
    c->bad++;
  c->next = v + 1;
  uint32_t d = 0;
  if (bw_mailbox_depth(bw_ctx_runtime(ctx), bw_self(ctx), &d) == 0 && d > c->max_depth)
    c->max_depth = d;
  bool stop = sh->stop_after != 0 && c->next == sh->stop_after;
  if (c->next == sh->n || stop || (c->next & 0xFFFu) == 0) {
    bwt_lock(&sh->sync);
    sh->received = c->next;
    sh->out_of_order = c->bad;
    sh->max_depth = c->max_depth;
    bwt_unlock_signal(&sh->sync);
  }
  return stop ? BW_STOP : BW_CONTINUE;
}

static const bw_behaviour_t consumer_beh = {
    .name = "consumer",
    .state_size = sizeof(consumer_t),
    .init = consumer_init,
    .handle = consumer_handle,
};

static void shared_init(shared_t *sh, uint64_t n) {
  memset(sh, 0, sizeof *sh);
  pthread_mutex_init(&sh->sync.mu, NULL);
  pthread_cond_init(&sh->sync.cv, NULL);
  sh->n = n;
}

static void shared_destroy(shared_t *sh) {
  pthread_cond_destroy(&sh->sync.cv);
  pthread_mutex_destroy(&sh->sync.mu);
}

/* With one worker the interleaving is fixed and BACKLOG_BOUND is exact.
 * With two, the operating system may stop the consumer's thread for a
 * while (a shared machine) as the producer runs on: the bound is then that
 * the backlog does not grow with the flood (a quarter of it). */
static void flood_once(unsigned workers, bool echo) {
  bw_runtime_t *rt = bwt_runtime(workers, false);
  shared_t sh;
  /* scaled down under the sanitizers and valgrind, but never so far that a
   * flood without back-pressure would stay under the bound */
  uint64_t n = bwt_scaled(workers == 1 ? 1000000 : 4000000);
  uint64_t least = (workers == 1 ? 3 : 8) * (uint64_t)BACKLOG_BOUND;
  shared_init(&sh, n > least ? n : least);
  sh.echo = echo;
  uint32_t bound = workers == 1 ? BACKLOG_BOUND : (uint32_t)(sh.n / 4);
  /* its own notes queue behind the producer's items, one per item handled:
   * at most as many as the producer's items ahead of them */
  if (echo)
    bound *= 2;
  bw_pid_t c, p;
  assert_int_equal(bw_spawn(rt, &consumer_beh, &sh, NULL, &c), 0);
  sh.peer = c;
  assert_int_equal(bw_spawn(rt, &producer_beh, &sh, NULL, &p), 0);
  assert_int_equal(bw_send(rt, p, M_START, NULL, 0), 0);
  BWT_AWAIT(&sh.sync, sh.producer_done && sh.received == sh.n);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t st = bwt_stats(rt);
  bwt_assert_accounting(&st);
  bw_runtime_destroy(rt);

  assert_int_equal(sh.sent_ok, sh.n);
  assert_int_equal(sh.out_of_order, 0);
  /* without back-pressure the backlog reaches n: the producer outruns */
  assert_true(sh.n > 2 * BACKLOG_BOUND);
  /* valgrind runs one thread at a time, for long slices: with two workers
   * the producer's thread may run on while the consumer's waits its turn,
   * so only the one-worker bound (exact reasoning) holds there */
  bool serialised = getenv("BW_TEST_VALGRIND") != NULL;
  if (sh.max_depth > bound && !(serialised && workers > 1))
    fail_msg("consumer's backlog reached %u (bound %u)", sh.max_depth, bound);
  shared_destroy(&sh);
}

/* A producer that outruns its consumer is muted: the backlog stays bounded,
 * and every message arrives, in order. */
static void test_backlog_bounded_one_worker(void **st) {
  (void)st;
  flood_once(1, false);
}

static void test_backlog_bounded_two_workers(void **st) {
  (void)st;
  flood_once(2, false);
}

/* A consumer that also queues work for itself: its own backlog is not
 * counted for overload, but the producer's still is, so the flood is
 * still bounded. */
static void test_backlog_bounded_with_self_backlog(void **st) {
  (void)st;
  flood_once(1, true);
}

/* The consumer exits while its producer is muted: the producer is released,
 * and its later sends are noproc dead letters, every one accounted for. */
static void test_consumer_exit_unmutes(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  shared_t sh;
  uint64_t n = bwt_scaled(400000);
  shared_init(&sh, n > 3 * (uint64_t)BACKLOG_BOUND ? n : 3 * (uint64_t)BACKLOG_BOUND);
  sh.stop_after = 5000; /* well inside the backlog of the first producer turn */
  bw_pid_t c, p;
  assert_int_equal(bw_spawn(rt, &consumer_beh, &sh, NULL, &c), 0);
  sh.peer = c;
  assert_int_equal(bw_spawn(rt, &producer_beh, &sh, NULL, &p), 0);
  assert_int_equal(bw_send(rt, p, M_START, NULL, 0), 0);
  BWT_AWAIT(&sh.sync, sh.producer_done);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  assert_int_equal(sh.received, 5000);
  assert_int_equal(sh.sent_other, 0);
  assert_int_equal(sh.sent_ok + sh.sent_noproc, sh.n);
  assert_true(sh.sent_noproc > 0);
  shared_destroy(&sh);
}

/* The runtime stops while a producer is muted on a consumer that is far
 * behind: stop completes, and every message is handled or dead-lettered. */
static void test_stop_while_muted(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  shared_t sh;
  shared_init(&sh, UINT64_C(1) << 40); /* never finishes */
  bw_pid_t c, p;
  assert_int_equal(bw_spawn(rt, &consumer_beh, &sh, NULL, &c), 0);
  sh.peer = c;
  assert_int_equal(bw_spawn(rt, &producer_beh, &sh, NULL, &p), 0);
  assert_int_equal(bw_send(rt, p, M_START, NULL, 0), 0);
  BWT_AWAIT(&sh.sync, sh.received >= 3u * 4096u);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_true(s.dead_by_reason[BW_DL_SHUTDOWN] > 0);
  bw_runtime_destroy(rt);
  shared_destroy(&sh);
}

/* --- two actors flooding each other ------------------------------------------ */

typedef struct flooder {
  shared_t *sh; /* its own counters */
  bw_pid_t peer;
  uint64_t sent, got;
  bool told;
} flooder_t;

typedef struct flood_arg {
  shared_t *sh;
} flood_arg_t;

static int flooder_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((flooder_t *)state)->sh = arg;
  return 0;
}

static void flooder_report(flooder_t *f) {
  if (f->told || f->sent < f->sh->n || f->got < f->sh->n)
    return;
  f->told = true;
  bwt_lock(&f->sh->sync);
  f->sh->received = f->got;
  f->sh->sent_ok = f->sent;
  f->sh->producer_done = true;
  bwt_unlock_signal(&f->sh->sync);
}

static int flooder_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  flooder_t *f = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  if (msg->type == M_START)
    memcpy(&f->peer, msg->data, sizeof f->peer);
  if (msg->type == M_ITEM) {
    f->got++;
  } else if (msg->type == M_START || msg->type == M_CONT) {
    for (unsigned i = 0; i < CHUNK && f->sent < f->sh->n; i++, f->sent++)
      if (bw_send(rt, f->peer, M_ITEM, &f->sent, sizeof f->sent) != 0)
        return BW_EINVAL;
    if (f->sent < f->sh->n && bw_send(rt, bw_self(ctx), M_CONT, NULL, 0) != 0)
      return BW_EINVAL;
  }
  flooder_report(f);
  return BW_CONTINUE;
}

static const bw_behaviour_t flooder_beh = {
    .name = "flooder",
    .state_size = sizeof(flooder_t),
    .init = flooder_init,
    .handle = flooder_handle,
};

/* Each of two actors floods the other: whichever falls behind mutes the
 * other, never both, so both finish. */
static void test_mutual_flood_no_deadlock(void **st) {
  (void)st;
  for (unsigned workers = 1; workers <= 2; workers++) {
    bw_runtime_t *rt = bwt_runtime(workers, false);
    shared_t a, b;
    shared_init(&a, bwt_scaled(300000));
    shared_init(&b, bwt_scaled(300000));
    bw_pid_t pa, pb;
    assert_int_equal(bw_spawn(rt, &flooder_beh, &a, NULL, &pa), 0);
    assert_int_equal(bw_spawn(rt, &flooder_beh, &b, NULL, &pb), 0);
    assert_int_equal(bw_send(rt, pa, M_START, &pb, sizeof pb), 0);
    assert_int_equal(bw_send(rt, pb, M_START, &pa, sizeof pa), 0);
    BWT_AWAIT(&a.sync, a.producer_done);
    BWT_AWAIT(&b.sync, b.producer_done);
    assert_int_equal(a.received, a.n);
    assert_int_equal(b.received, b.n);
    assert_int_equal(bw_runtime_stop(rt), 0);
    bw_runtime_stats_t s = bwt_stats(rt);
    bwt_assert_accounting(&s);
    bw_runtime_destroy(rt);
    shared_destroy(&a);
    shared_destroy(&b);
  }
}

/* --- kept pins (send.c) ------------------------------------------------------- */

enum { K_PEER = 10, K_DIE };

typedef struct pair_actor {
  bw_pid_t peer;
} pair_actor_t;

static int pair_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  pair_actor_t *p = state;
  if (msg->type == K_PEER) {
    memcpy(&p->peer, msg->data, sizeof p->peer);
    uint64_t ref;
    return bw_monitor(ctx, p->peer, &ref) == 0 ? BW_CONTINUE : BW_EINVAL;
  }
  if (msg->type == K_DIE) {
    /* a stream of sends to the peer keeps a pin on it for the rest of
     * this turn; then both exit at once, each telling the other (DOWN) */
    for (int i = 0; i < 8; i++)
      bw_send(bw_ctx_runtime(ctx), p->peer, M_ITEM, &i, sizeof i);
    return BW_STOP;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t pair_beh = {
    .name = "pair", .state_size = sizeof(pair_actor_t), .handle = pair_handle};

/* Two actors that monitor each other, sending to each other right up to
 * their exits, exit at the same time on two workers: neither exit may wait
 * for the other's kept pin (it once could, and both workers hung). */
static void test_kept_pins_simultaneous_exits(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(2, false);
  for (unsigned round = 0; round < bwt_scaled(2000); round++) {
    bw_pid_t a, b;
    assert_int_equal(bw_spawn(rt, &pair_beh, NULL, NULL, &a), 0);
    assert_int_equal(bw_spawn(rt, &pair_beh, NULL, NULL, &b), 0);
    assert_int_equal(bw_send(rt, a, K_PEER, &b, sizeof b), 0);
    assert_int_equal(bw_send(rt, b, K_PEER, &a, sizeof a), 0);
    assert_int_equal(bw_send(rt, a, K_DIE, NULL, 0), 0);
    assert_int_equal(bw_send(rt, b, K_DIE, NULL, 0), 0);
    assert_int_equal(bw_wait_exit(rt, a, 0, NULL), 0);
    assert_int_equal(bw_wait_exit(rt, b, 0, NULL), 0);
  }
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* From inside a handler, before any send kept a pin: a send to no pid and
 * to an unregistered name are dead letters, not a crash (the kept-pin
 * lookup once read through a NULL slot for BW_PID_NONE). */
enum { K_NOWHERE = 20 };

static int nowhere_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  int v = 1;
  int a = bw_send(rt, BW_PID_NONE, M_ITEM, &v, sizeof v);
  int b = bw_send_named(rt, "nobody-by-this-name", M_ITEM, &v, sizeof v);
  int res[2] = {a, b};
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, K_NOWHERE, res, sizeof res);
  return BW_CONTINUE;
}

static const bw_behaviour_t nowhere_beh = {.name = "nowhere", .handle = nowhere_handle};

static void test_send_to_nobody_from_handler(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  bw_pid_t a;
  assert_int_equal(bw_spawn(rt, &nowhere_beh, NULL, NULL, &a), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, a, K_NOWHERE, NULL, 0, 0, &rep), 0);
  int res[2];
  memcpy(res, rep.data, sizeof res);
  assert_int_equal(res[0], BW_ENOPROC);
  assert_true(res[1] == BW_ENOPROC || res[1] == BW_ENOTFOUND);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- bw_mailbox_depth -------------------------------------------------------- */

static int idle_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_CONTINUE;
}

static const bw_behaviour_t idle_beh = {.name = "idle", .handle = idle_handle};

static void test_mailbox_depth(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  bw_pid_t a;
  uint32_t d = 99;
  assert_int_equal(bw_spawn(rt, &idle_beh, NULL, NULL, &a), 0);
  assert_int_equal(bw_mailbox_depth(NULL, a, &d), BW_EINVAL);
  assert_int_equal(bw_mailbox_depth(rt, a, NULL), BW_EINVAL);
  assert_int_equal(bw_mailbox_depth(rt, BW_PID_NONE, &d), BW_ENOPROC);
  assert_int_equal(bw_mailbox_depth(rt, a, &d), 0);
  assert_int_equal(d, 0);
  assert_int_equal(bw_exit(rt, a, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_wait_exit(rt, a, 0, NULL), 0);
  assert_int_equal(bw_mailbox_depth(rt, a, &d), BW_ENOPROC);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_destroy(rt);
}


/* --- who may be muted -----------------------------------------------------------
 *
 * A "slow" actor on a thread of its own handles each message only when the
 * test hands it a permit, so its backlog stays exactly as the test made it:
 * either sent by others (the test thread: it is then overloaded) or sent by
 * itself (then it is busy, not overloaded). Probe actors, on the one worker,
 * send it something and then send themselves M_NEXT in the same handler
 * call: a muted probe ends its turn there and M_NEXT waits; a probe that is
 * not muted handles M_NEXT in the same turn. So whether a probe was muted is
 * decided by the order of its own handler calls, not by timing.
 */

enum { S_START = 40, S_ITEM, S_CHECK, P_GO, P_NEXT, P_ASK, H_TICK, C_CRASH };
enum { SEND_USER = 1, SEND_EXIT, SEND_MONITOR, SEND_REQUEST };

typedef struct slow_sh {
  bwt_sync_t sync;
  sem_t permits;
  bool open;           /* every handler call passes (the end of a test) */
  bool waiting;        /* a handler call waits for a permit */
  uint64_t handled;    /* messages handled, this incarnation */
  uint64_t self_work;  /* S_START: how many S_ITEM it sends itself */
  uint64_t ask_at;     /* at this handled count + 1, request the replier */
  bw_pid_t replier;
  bw_pid_t pid;        /* the current incarnation */
  int starts;
} slow_sh_t;

static void slow_sh_init(slow_sh_t *sh) {
  memset(sh, 0, sizeof *sh);
  pthread_mutex_init(&sh->sync.mu, NULL);
  pthread_cond_init(&sh->sync.cv, NULL);
  assert_int_equal(sem_init(&sh->permits, 0, 0), 0);
}

/* Lets every handler call of the slow actor through, now and later. */
static void slow_open(slow_sh_t *sh) {
  bwt_lock(&sh->sync);
  sh->open = true;
  bwt_unlock_signal(&sh->sync);
  for (int i = 0; i < 4; i++)
    sem_post(&sh->permits);
}

static void slow_sh_destroy(slow_sh_t *sh) {
  sem_destroy(&sh->permits);
  pthread_cond_destroy(&sh->sync.cv);
  pthread_mutex_destroy(&sh->sync.mu);
}

static int slow_init(bw_ctx_t *ctx, void *state, void *arg) {
  slow_sh_t *sh = arg;
  *(slow_sh_t **)state = sh;
  bw_trap_exit(ctx, true); /* exit signals queue up behind its backlog */
  bwt_lock(&sh->sync);
  sh->pid = bw_self(ctx);
  sh->handled = 0;
  sh->starts++;
  bwt_unlock_signal(&sh->sync);
  return 0;
}

static int slow_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  slow_sh_t *sh = *(slow_sh_t **)state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  if (msg->type == S_START)
    for (uint64_t i = 0; i < sh->self_work; i++)
      if (bw_send(rt, bw_self(ctx), S_ITEM, NULL, 0) != 0)
        return BW_EINVAL;
  if (sh->ask_at != 0 && sh->handled + 1 == sh->ask_at) {
    uint64_t ref;
    if (bw_request(ctx, sh->replier, P_ASK, NULL, 0, 0, &ref) != 0)
      return BW_EINVAL;
  }
  bwt_lock(&sh->sync);
  sh->waiting = true;
  bool open = sh->open;
  bwt_unlock_signal(&sh->sync);
  if (!open) {
    struct timespec dl = bwt_deadline();
    while (sem_timedwait(&sh->permits, &dl) != 0 && errno == EINTR) {
    }
  }
  bwt_lock(&sh->sync);
  sh->waiting = false;
  sh->handled++;
  bwt_unlock_signal(&sh->sync);
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, S_CHECK, NULL, 0);
  /* a trapped shutdown, reached once its backlog is behind it */
  return msg->type == BW_MSG_EXIT ? BW_STOP : BW_CONTINUE;
}

static const bw_behaviour_t slow_beh = {
    .name = "slow",
    .state_size = sizeof(slow_sh_t *),
    .init = slow_init,
    .handle = slow_handle,
};

static void permits(slow_sh_t *sh, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    sem_post(&sh->permits);
}

/* The slow actor, with 5,000 messages queued by the test thread, handles one
 * batch and waits in the first call of its next turn: at the end of that
 * batch it saw 4,936 messages from others queued, and is overloaded. */
#define SLOW_BACKLOG 5000u

static void make_overloaded(bw_runtime_t *rt, slow_sh_t *sh) {
  for (unsigned i = 0; i < SLOW_BACKLOG; i++)
    assert_int_equal(bw_send(rt, sh->pid, S_ITEM, NULL, 0), 0);
  permits(sh, BATCH);
  BWT_AWAIT(&sh->sync, sh->handled == BATCH && sh->waiting);
}

/* The same backlog, but sent by the slow actor to itself (after one message
 * from outside, S_START): busy, not overloaded. */
static void make_self_backlogged(bw_runtime_t *rt, slow_sh_t *sh) {
  sh->self_work = SLOW_BACKLOG;
  assert_int_equal(bw_send(rt, sh->pid, S_START, NULL, 0), 0);
  permits(sh, BATCH);
  BWT_AWAIT(&sh->sync, sh->handled == BATCH && sh->waiting);
}

static bw_pid_t spawn_slow(bw_runtime_t *rt, slow_sh_t *sh) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = true; /* its waits hold no scheduler thread */
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &slow_beh, sh, &o, &pid), 0);
  return pid;
}

typedef struct probe_sh {
  bwt_sync_t sync;
  bool went, ran_next, answered;
  int send_rc;
} probe_sh_t;

typedef struct probe_go {
  bw_pid_t target;
  int how;
} probe_go_t;

static int probe_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  *(probe_sh_t **)state = arg;
  return 0;
}

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  probe_sh_t *sh = *(probe_sh_t **)state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  int rc = 0;
  switch (msg->type) {
  case P_GO: {
    probe_go_t g;
    memcpy(&g, msg->data, sizeof g);
    uint64_t ref;
    if (g.how == SEND_USER)
      rc = bw_send(rt, g.target, S_ITEM, NULL, 0);
    else if (g.how == SEND_EXIT)
      rc = bw_exit(rt, g.target, BW_REASON_SHUTDOWN, 0, NULL); /* trapped: queued */
    else if (g.how == SEND_MONITOR)
      rc = bw_monitor(ctx, g.target, &ref);
    else
      rc = bw_request(ctx, g.target, S_CHECK, NULL, 0, 0, &ref);
    bwt_lock(&sh->sync);
    sh->went = true;
    sh->send_rc = rc;
    bwt_unlock_signal(&sh->sync);
    break;
  }
  case P_ASK: /* a request from the slow actor: answer it */
    rc = bw_reply(ctx, msg, 0, P_ASK, NULL, 0);
    bwt_lock(&sh->sync);
    sh->answered = true;
    sh->send_rc = rc;
    bwt_unlock_signal(&sh->sync);
    break;
  case P_NEXT:
    bwt_lock(&sh->sync);
    sh->ran_next = true;
    bwt_unlock_signal(&sh->sync);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
  /* in the same handler call as the send: muted, it waits */
  return bw_send(rt, bw_self(ctx), P_NEXT, NULL, 0) == 0 ? BW_CONTINUE : BW_EINVAL;
}

static const bw_behaviour_t probe_beh = {
    .name = "probe",
    .state_size = sizeof(probe_sh_t *),
    .init = probe_init,
    .handle = probe_handle,
};

/* The same probe, of a behaviour that is never muted. */
static const bw_behaviour_t probe_never_muted_beh = {
    .name = "probe.never_muted",
    .state_size = sizeof(probe_sh_t *),
    .init = probe_init,
    .handle = probe_handle,
    .never_muted = true,
};

static void probe_sh_init(probe_sh_t *sh) {
  memset(sh, 0, sizeof *sh);
  pthread_mutex_init(&sh->sync.mu, NULL);
  pthread_cond_init(&sh->sync.cv, NULL);
}

static void probe_sh_destroy(probe_sh_t *sh) {
  pthread_cond_destroy(&sh->sync.cv);
  pthread_mutex_destroy(&sh->sync.mu);
}

static bw_pid_t spawn_probe(bw_runtime_t *rt, const bw_behaviour_t *b, probe_sh_t *sh,
                            bool never_muted) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.never_muted = never_muted;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, b, sh, &o, &pid), 0);
  return pid;
}

static void probe_go(bw_runtime_t *rt, bw_pid_t probe, bw_pid_t target, int how) {
  probe_go_t g = {.target = target, .how = how};
  assert_int_equal(bw_send(rt, probe, P_GO, &g, sizeof g), 0);
}

static void finish(bw_runtime_t *rt, slow_sh_t *sh) {
  slow_open(sh);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* A plain actor that sends a user message to an overloaded actor is still
 * muted (the fan-in bound), until the backlog drains; one spawned
 * never_muted, or of a never_muted behaviour, sending the same is not. */
static void test_never_muted_actors(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  slow_sh_t sh;
  slow_sh_init(&sh);
  bw_pid_t w = spawn_slow(rt, &sh);
  make_overloaded(rt, &sh);
  probe_sh_t plain, opt, beh;
  probe_sh_init(&plain);
  probe_sh_init(&opt);
  probe_sh_init(&beh);
  bw_pid_t pp = spawn_probe(rt, &probe_beh, &plain, false);
  bw_pid_t po = spawn_probe(rt, &probe_beh, &opt, true);
  bw_pid_t pb = spawn_probe(rt, &probe_never_muted_beh, &beh, false);
  probe_go(rt, pp, w, SEND_USER);
  BWT_AWAIT(&plain.sync, plain.went);
  probe_go(rt, po, w, SEND_USER);
  BWT_AWAIT(&opt.sync, opt.ran_next);
  probe_go(rt, pb, w, SEND_USER);
  BWT_AWAIT(&beh.sync, beh.ran_next);
  /* the plain probe's turn ended before the others' began (one worker):
   * had it not been muted, it would have handled P_NEXT in that turn */
  bwt_lock(&plain.sync);
  bool plain_ran = plain.ran_next;
  bwt_unlock(&plain.sync);
  assert_false(plain_ran);
  assert_int_equal(plain.send_rc, 0);
  /* the backlog drains: the muted probe runs again */
  slow_open(&sh);
  BWT_AWAIT(&plain.sync, plain.ran_next);
  finish(rt, &sh);
  probe_sh_destroy(&plain);
  probe_sh_destroy(&opt);
  probe_sh_destroy(&beh);
  slow_sh_destroy(&sh);
}

/* An exit signalled to a muted actor takes effect at once, not when the
 * actor it is muted on has drained: a kill, and a shutdown it does not
 * trap (a supervisor's terminate_child or shutdown timeout). */
static void test_exit_reaches_muted_actor(void **st) {
  (void)st;
  for (int kind = 0; kind < 2; kind++) {
    bw_runtime_t *rt = bwt_runtime(1, false);
    slow_sh_t sh;
    slow_sh_init(&sh);
    bw_pid_t w = spawn_slow(rt, &sh);
    make_overloaded(rt, &sh);
    probe_sh_t p, other, n;
    probe_sh_init(&p);
    probe_sh_init(&other);
    probe_sh_init(&n);
    bw_pid_t pp = spawn_probe(rt, &probe_beh, &p, false);
    bw_pid_t po = spawn_probe(rt, &probe_beh, &other, false);
    bw_pid_t pn = spawn_probe(rt, &probe_beh, &n, true);
    probe_go(rt, pp, w, SEND_USER);
    BWT_AWAIT(&p.sync, p.went);
    probe_go(rt, po, w, SEND_USER);
    BWT_AWAIT(&other.sync, other.went);
    probe_go(rt, pn, w, SEND_USER);
    BWT_AWAIT(&n.sync, n.ran_next);
    bwt_lock(&p.sync);
    bool muted = !p.ran_next;
    bwt_unlock(&p.sync);
    assert_true(muted); /* as in test_never_muted_actors */
    assert_int_equal(bw_exit(rt, pp, kind == 0 ? BW_REASON_KILL : BW_REASON_SHUTDOWN, 0, NULL),
                     0);
    BWT_AWAIT_DEAD(rt, pp);
    /* the other sender muted on the same actor lives on */
    assert_true(bw_is_alive(rt, po));
    finish(rt, &sh);
    probe_sh_destroy(&p);
    probe_sh_destroy(&other);
    probe_sh_destroy(&n);
    slow_sh_destroy(&sh);
  }
}

/* Exit signals and monitors sent to an overloaded actor never mute the
 * sender, even a plain actor. */
static void test_signals_never_mute(void **st) {
  (void)st;
  for (int how = SEND_EXIT; how <= SEND_MONITOR; how++) {
    bw_runtime_t *rt = bwt_runtime(1, false);
    slow_sh_t sh;
    slow_sh_init(&sh);
    bw_pid_t w = spawn_slow(rt, &sh);
    make_overloaded(rt, &sh);
    probe_sh_t p;
    probe_sh_init(&p);
    bw_pid_t pp = spawn_probe(rt, &probe_beh, &p, false);
    probe_go(rt, pp, w, how);
    BWT_AWAIT(&p.sync, p.ran_next);
    assert_int_equal(p.send_rc, 0);
    finish(rt, &sh);
    probe_sh_destroy(&p);
    slow_sh_destroy(&sh);
  }
}

/* A replier that answers an overloaded requester is not muted: its next
 * message, and the next caller's reply, are not held up. */
static void test_reply_never_mutes(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, false);
  slow_sh_t sh;
  slow_sh_init(&sh);
  probe_sh_t r;
  probe_sh_init(&r);
  sh.replier = spawn_probe(rt, &probe_beh, &r, false);
  sh.ask_at = BATCH + 1; /* the first call after it became overloaded */
  spawn_slow(rt, &sh);
  make_overloaded(rt, &sh);
  BWT_AWAIT(&r.sync, r.answered);
  BWT_AWAIT(&r.sync, r.ran_next);
  assert_int_equal(r.send_rc, 0);
  finish(rt, &sh);
  probe_sh_destroy(&r);
  slow_sh_destroy(&sh);
}

/* A backlog an actor sent itself, after it handled a message from outside,
 * does not make it overloaded: a plain actor that sends it messages or
 * requests (a pinger) is not muted. */
static void test_self_backlog_does_not_mute(void **st) {
  (void)st;
  for (int how = SEND_USER; how <= SEND_REQUEST; how += SEND_REQUEST - SEND_USER) {
    bw_runtime_t *rt = bwt_runtime(1, false);
    slow_sh_t sh;
    slow_sh_init(&sh);
    bw_pid_t w = spawn_slow(rt, &sh);
    make_self_backlogged(rt, &sh);
    uint32_t depth = 0;
    assert_int_equal(bw_mailbox_depth(rt, w, &depth), 0);
    assert_true(depth >= SLOW_BACKLOG - 2 * BATCH); /* the backlog is there */
    probe_sh_t p;
    probe_sh_init(&p);
    bw_pid_t pp = spawn_probe(rt, &probe_beh, &p, false);
    probe_go(rt, pp, w, how);
    BWT_AWAIT(&p.sync, p.ran_next);
    assert_int_equal(p.send_rc, 0);
    finish(rt, &sh);
    probe_sh_destroy(&p);
    slow_sh_destroy(&sh);
  }
}

/* --- a periodic checker (a health monitor's shape) keeps its period ------------ */

typedef struct ticker_sh {
  bwt_sync_t sync;
  bw_pid_t target;
  unsigned ticks;
} ticker_sh_t;

static int ticker_init(bw_ctx_t *ctx, void *state, void *arg) {
  *(ticker_sh_t **)state = arg;
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), 100, H_TICK, NULL, 0, NULL);
}

static int ticker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  ticker_sh_t *sh = *(ticker_sh_t **)state;
  if (msg->type != H_TICK)
    return BW_CONTINUE; /* replies */
  uint64_t ref;
  if (bw_request(ctx, sh->target, S_CHECK, NULL, 0, 0, &ref) != 0)
    return BW_EINVAL;
  bwt_lock(&sh->sync);
  sh->ticks++;
  bwt_unlock_signal(&sh->sync);
  return BW_CONTINUE;
}

static const bw_behaviour_t ticker_beh = {
    .name = "ticker",
    .state_size = sizeof(ticker_sh_t *),
    .init = ticker_init,
    .handle = ticker_handle,
    .never_muted = true,
};

/* Every 100 ms (manual clock) it asks an overloaded actor for its check:
 * never muted, it handles every tick, on time. */
static void test_periodic_checker_keeps_period(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, true);
  slow_sh_t sh;
  slow_sh_init(&sh);
  bw_pid_t w = spawn_slow(rt, &sh);
  make_overloaded(rt, &sh);
  ticker_sh_t t = {.sync = BWT_SYNC_INIT, .target = w};
  bw_pid_t tp;
  assert_int_equal(bw_spawn(rt, &ticker_beh, &t, NULL, &tp), 0);
  for (unsigned i = 1; i <= 10; i++) {
    assert_int_equal(bw_clock_advance(rt, 100), 0);
    BWT_AWAIT(&t.sync, t.ticks == i);
  }
  finish(rt, &sh);
  slow_sh_destroy(&sh);
}

/* The library's health monitor (period 100 ms, manual clock) checks an
 * overloaded actor every round: it is not muted by asking, keeps its
 * period, and sees another component die (issue 14: muted, it ran no
 * round for 2.4 s and kept reporting a killed component healthy). */
static int answerer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == BW_HEALTH_MSG_CHECK)
    bw_health_answer(ctx, msg, BW_HEALTH_HEALTHY, NULL);
  return BW_CONTINUE;
}

static const bw_behaviour_t answerer_beh = {.name = "answerer", .handle = answerer_handle};

static uint64_t health_rounds(bw_health_t *h) {
  bw_health_stats_t m;
  assert_int_equal(bw_health_stats(h, &m), 0);
  return m.rounds;
}

static int health_of(bw_health_t *h, const char *name) {
  bw_health_info_t info;
  return bw_health_component_info(h, name, &info) == 0 ? info.status : -1;
}

static void test_health_monitor_keeps_period(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, true);
  slow_sh_t sh;
  slow_sh_init(&sh);
  bw_pid_t w = spawn_slow(rt, &sh);
  make_overloaded(rt, &sh);
  bw_pid_t v;
  assert_int_equal(bw_spawn(rt, &answerer_beh, NULL, NULL, &v), 0);
  bw_health_opts_t o;
  bw_health_opts_init(&o);
  o.period_ms = 100;
  bw_health_t *h;
  assert_int_equal(bw_health_new(rt, &o, &h), 0);
  assert_int_equal(bw_health_start(h, NULL), 0);
  /* its start (a first round) is behind it: rounds now come from ticks */
  assert_int_equal(bw_health_flush(h, 0), 0);
  uint64_t r0 = health_rounds(h);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "slow");
  c.pid = w;
  assert_int_equal(bw_health_add(h, &c), 0);
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "victim");
  c.pid = v;
  assert_int_equal(bw_health_add(h, &c), 0);
  for (uint64_t i = 1; i <= 5; i++) {
    assert_int_equal(bw_clock_advance(rt, 100), 0);
    BWT_POLL(health_rounds(h) == r0 + i);
  }
  assert_int_equal(bw_exit(rt, v, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, v);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  BWT_POLL(health_rounds(h) == r0 + 6);
  BWT_POLL(health_of(h, "victim") == BW_HEALTH_UNHEALTHY);
  slow_open(&sh);
  assert_int_equal(bw_health_destroy(h), 0);
  finish(rt, &sh);
  slow_sh_destroy(&sh);
}

/* The library's own long-lived actors are never muted, however started. */
extern const bw_behaviour_t bw__supervisor_behaviour;

static void test_library_actors_never_muted(void **st) {
  (void)st;
  assert_true(bw__supervisor_behaviour.never_muted);
  assert_true(bw_health_behaviour.never_muted);
  assert_true(bw_metrics_behaviour.never_muted);
  assert_true(bw_bulkhead_behaviour.never_muted);
  assert_true(bw_policy_behaviour.never_muted);
  assert_true(bw_retry_behaviour.never_muted);
}

/* --- a supervisor is never frozen by the child it stops ------------------------- */

static int crasher_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  return msg->type == C_CRASH ? BW_ECRASH : BW_CONTINUE;
}

static const bw_behaviour_t crasher_beh = {.name = "crasher", .handle = crasher_handle};

typedef struct count_call {
  bwt_sync_t sync;
  bw_runtime_t *rt;
  bw_pid_t sup;
  bool done;
  int rc;
  bw_child_counts_t counts;
} count_call_t;

static void *count_thread(void *arg) {
  count_call_t *c = arg;
  bw_child_counts_t counts;
  int rc = bw_sup_count_children(c->rt, c->sup, &counts);
  bwt_lock(&c->sync);
  c->rc = rc;
  c->counts = counts;
  c->done = true;
  bwt_unlock_signal(&c->sync);
  return NULL;
}

/*
 * one_for_all: a sibling crashes while the trapping child "slow" holds a
 * long backlog (sent by others, or by itself as in issue 14). The
 * supervisor sends it the shutdown signal, which queues behind the
 * backlog; it is not muted for that, so it answers its API at once, and
 * when shutdown_ms (200 ms, manual clock) has passed its timer kills the
 * child and the tree restarts, with the backlog still there.
 */
static void sup_restart_within_shutdown(bool self_backlog) {
  bw_runtime_t *rt = bwt_runtime(1, true);
  slow_sh_t sh;
  slow_sh_init(&sh);
  const bw_child_spec_t kids[] = {
      {.id = "slow",
       .behaviour = &slow_beh,
       .arg = &sh,
       .restart = BW_PERMANENT,
       .shutdown_ms = 200,
       .dedicated_thread = true},
      {.id = "crasher", .behaviour = &crasher_beh, .restart = BW_PERMANENT, .shutdown_ms = 200},
  };
  const bw_sup_spec_t spec = {.name = "bp",
                              .strategy = BW_ONE_FOR_ALL,
                              .intensity = 10,
                              .period_ms = 60000,
                              .children = kids,
                              .nchildren = 2};
  bw_pid_t sup;
  assert_int_equal(bw_supervisor_start(rt, &spec, &sup, NULL), 0);
  if (self_backlog)
    make_self_backlogged(rt, &sh);
  else
    make_overloaded(rt, &sh);
  bw_pid_t crasher;
  assert_int_equal(bw_sup_child_pid(rt, sup, "crasher", &crasher), 0);
  assert_int_equal(bw_send(rt, crasher, C_CRASH, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, crasher);
  /* the crasher's exit is in the supervisor's mailbox before this call's
   * request: answered, the supervisor has sent "slow" its shutdown */
  count_call_t cc = {.sync = BWT_SYNC_INIT, .rt = rt, .sup = sup};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, count_thread, &cc), 0);
  BWT_AWAIT(&cc.sync, cc.done);
  pthread_join(th, NULL);
  assert_int_equal(cc.rc, 0);
  assert_int_equal(cc.counts.specs, 2);
  /* "slow" traps the shutdown: it waits behind the backlog */
  bwt_lock(&sh.sync);
  int starts = sh.starts;
  bwt_unlock(&sh.sync);
  assert_int_equal(starts, 1);
  /* shutdown_ms later the timer fires (its message is queued before
   * bw_clock_advance returns, so before the next call's request): the
   * supervisor kills "slow", effective when its handler call returns */
  assert_int_equal(bw_clock_advance(rt, 200), 0);
  bw_child_counts_t counts;
  assert_int_equal(bw_sup_count_children(rt, sup, &counts), 0);
  bwt_lock(&sh.sync);
  uint64_t handled = sh.handled;
  bwt_unlock(&sh.sync);
  permits(&sh, 1);
  BWT_AWAIT(&sh.sync, sh.starts == 2);
  /* killed in the first handler call after the timeout: the backlog was
   * never worked through */
  assert_int_equal(handled, BATCH);
  assert_int_equal(bw_sup_count_children(rt, sup, &counts), 0);
  assert_int_equal(counts.active, 2);
  finish(rt, &sh);
  slow_sh_destroy(&sh);
}

static void test_sup_restart_overloaded_child(void **st) {
  (void)st;
  sup_restart_within_shutdown(false);
}

static void test_sup_restart_self_backlogged_child(void **st) {
  (void)st;
  sup_restart_within_shutdown(true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backlog_bounded_one_worker),
      cmocka_unit_test(test_backlog_bounded_two_workers),
      cmocka_unit_test(test_backlog_bounded_with_self_backlog),
      cmocka_unit_test(test_consumer_exit_unmutes),
      cmocka_unit_test(test_stop_while_muted),
      cmocka_unit_test(test_mutual_flood_no_deadlock),
      cmocka_unit_test(test_kept_pins_simultaneous_exits),
      cmocka_unit_test(test_send_to_nobody_from_handler),
      cmocka_unit_test(test_mailbox_depth),
      cmocka_unit_test(test_never_muted_actors),
      cmocka_unit_test(test_signals_never_mute),
      cmocka_unit_test(test_exit_reaches_muted_actor),
      cmocka_unit_test(test_reply_never_mutes),
      cmocka_unit_test(test_self_backlog_does_not_mute),
      cmocka_unit_test(test_periodic_checker_keeps_period),
      cmocka_unit_test(test_health_monitor_keeps_period),
      cmocka_unit_test(test_library_actors_never_muted),
      cmocka_unit_test(test_sup_restart_overloaded_child),
      cmocka_unit_test(test_sup_restart_self_backlogged_child),
  };
  return BWT_RUN_SUITE(tests);
}
