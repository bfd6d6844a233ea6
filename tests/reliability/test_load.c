/*
 * Load (issue #8, "Load and bad input"): the runtime at volume, with every
 * message accounted for.
 *
 * - A million live actors at once: each handles exactly one message, then
 *   all are stopped; the memory each costs is printed.
 * - Ten million sends from two threads at one slow actor with a bounded
 *   mailbox: senders see BW_EFULL (reject policy) and count it, the backlog
 *   stays within the bound, memory stays bounded, and nothing is lost:
 *   accepted == handled, accepted + rejected == attempted, and the
 *   runtime's own counters agree. The drop policy likewise, its drops being
 *   dead letters with reason "full".
 * - Ten thousand actors linked in a chain die together when the last one
 *   crashes, each with the crash's reason; with one actor in the middle
 *   trapping exits, the chain stops there.
 *
 * Volumes go through bwt_scaled (BW_TEST_SCALE), so sanitizer and valgrind
 * runs shrink them. Figures are printed (to stdout) for the notes;
 * speed is never asserted (that is bench/'s job).
 */
#include "support.h"

enum { T_PING = 1, T_HOLD, T_FLOOD };

/* --- helpers ------------------------------------------------------------------ */

/* Resident set size in bytes (Linux), 0 if unknown. */
static uint64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return 0;
  char line[256];
  uint64_t kb = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtoull(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb * 1024u;
}

static double secs_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static struct timespec now_mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

/* Sanitizers and valgrind keep shadow memory and quarantines: the RSS
 * bound below is for what the runtime itself holds, so those runs get a
 * looser one. */
static bool instrumented(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#else
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  return getenv("BW_TEST_VALGRIND") != NULL;
#endif
}

/* A big volume: bwt_scaled, and a further quarter under valgrind, which
 * runs one thread at a time (a cross-thread wake-up per message costs
 * milliseconds there). */
static unsigned long volume(unsigned long full) {
  unsigned long v = bwt_scaled(full);
  if (getenv("BW_TEST_VALGRIND") != NULL && v >= 4)
    v /= 4;
  return v;
}

/* --- a million live actors ----------------------------------------------------- */

static uint8_t *cell_seen;      /* one byte per actor: messages it handled */
static uint64_t cell_handled;   /* atomic: the sum of cell_seen */

typedef struct cell {
  uint32_t idx;
} cell_t;

static int cell_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((cell_t *)state)->idx = (uint32_t)(uintptr_t)arg;
  return 0;
}

static int cell_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  if (msg->type == T_PING) {
    cell_seen[((cell_t *)state)->idx]++;
    /* seq_cst: the byte above is written before the main thread, which
     * reads cell_seen after seeing the count, can count it */
    __atomic_add_fetch(&cell_handled, 1, __ATOMIC_SEQ_CST);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t cell_beh = {
    .name = "cell", .state_size = sizeof(cell_t), .init = cell_init, .handle = cell_handle};

/* The pinger sends T_PING to cell_pids[first, first + count): the pings go
 * actor to actor on the workers, as in a real program (a send from a thread
 * outside the runtime goes through the injection queue and may wake a
 * parked worker each time). */
static const bw_pid_t *cell_pids;
static uint64_t ping_errors; /* atomic */

typedef struct ping_range {
  uint64_t first, count;
} ping_range_t;

static int pinger_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->len != sizeof(ping_range_t))
    return BW_CONTINUE;
  ping_range_t r;
  memcpy(&r, msg->data, sizeof r);
  for (uint64_t i = r.first; i < r.first + r.count; i++)
    if (bw_send(bw_ctx_runtime(ctx), cell_pids[i], T_PING, NULL, 0) != 0)
      __atomic_add_fetch(&ping_errors, 1, __ATOMIC_SEQ_CST);
  return BW_CONTINUE;
}

static const bw_behaviour_t pinger_beh = {.name = "pinger", .handle = pinger_handle};

static void test_million_live_actors(void **state) {
  (void)state;
  const uint64_t n = volume(1000000);
  bw_pid_t *pids = calloc(n, sizeof *pids);
  cell_seen = calloc(n, 1);
  assert_non_null(pids);
  assert_non_null(cell_seen);
  __atomic_store_n(&cell_handled, 0, __ATOMIC_SEQ_CST);

  bw_runtime_t *rt = bwt_runtime(2, false);
  uint64_t rss0 = rss_bytes();
  struct timespec t0 = now_mono();
  for (uint64_t i = 0; i < n; i++)
    assert_int_equal(bw_spawn(rt, &cell_beh, (void *)(uintptr_t)i, NULL, &pids[i]), 0);
  double spawn_s = secs_since(&t0);
  uint64_t rss1 = rss_bytes();

  /* all alive at once */
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, n);
  assert_int_equal(s.spawned, n);
  assert_int_equal(s.exited, 0);
  assert_true(bw_is_alive(rt, pids[0]));
  assert_true(bw_is_alive(rt, pids[n / 2]));
  assert_true(bw_is_alive(rt, pids[n - 1]));

  /* one message each, each handled exactly once: two pinger actors send
   * them, 1,000 per handler call */
  bw_pid_t pinger[2];
  assert_int_equal(bw_spawn(rt, &pinger_beh, NULL, NULL, &pinger[0]), 0);
  assert_int_equal(bw_spawn(rt, &pinger_beh, NULL, NULL, &pinger[1]), 0);
  cell_pids = pids; /* published to the pingers by the sends below */
  __atomic_store_n(&ping_errors, 0, __ATOMIC_SEQ_CST);
  t0 = now_mono();
  for (uint64_t i = 0, k = 0; i < n; i += 1000, k++) {
    ping_range_t r = {i, n - i < 1000 ? n - i : 1000};
    assert_int_equal(bw_send(rt, pinger[k & 1], T_PING, &r, sizeof r), 0);
  }
  BWT_POLL_FOR(__atomic_load_n(&cell_handled, __ATOMIC_SEQ_CST) == n, 120);
  double ping_s = secs_since(&t0);
  uint64_t once = 0;
  for (uint64_t i = 0; i < n; i++)
    once += cell_seen[i] == 1;
  assert_int_equal(once, n);
  assert_int_equal(__atomic_load_n(&ping_errors, __ATOMIC_SEQ_CST), 0);
  const uint64_t nranges = (n + 999) / 1000;
  /* the runtime counts a message handled once its handler has returned */
  BWT_POLL(bwt_stats(rt).handled == n + nranges);
  assert_int_equal(bwt_stats(rt).live, n + 2);

  /* all stopped: a shutdown exit to each (none traps) */
  t0 = now_mono();
  for (uint64_t i = 0; i < n; i++)
    assert_int_equal(bw_exit(rt, pids[i], BW_REASON_SHUTDOWN, 0, "load test"), 0);
  BWT_POLL_FOR(bwt_stats(rt).live == 2, 120); /* the pingers remain */
  double stop_s = secs_since(&t0);
  s = bwt_stats(rt);
  assert_int_equal(s.exited, n);
  assert_int_equal(s.crashed, 0);
  assert_false(bw_is_alive(rt, pids[0]));
  assert_false(bw_is_alive(rt, pids[n - 1]));
  /* a stale pid stays dead: its message is a noproc dead letter */
  assert_int_equal(bw_send(rt, pids[n / 2], T_PING, NULL, 0), BW_ENOPROC);

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_int_equal(s.sent, n + nranges + 1);
  assert_int_equal(s.handled, n + nranges);
  assert_int_equal(s.dead_by_reason[BW_DL_NOPROC], 1);
  bw_runtime_destroy(rt);

  double per_actor = rss1 > rss0 ? (double)(rss1 - rss0) / (double)n : 0.0;
  printf("[load] %llu live actors: spawn %.2f s, one message each %.2f s, stop %.2f s; "
         "RSS +%.1f MB = %.0f bytes per actor (behaviour state %zu bytes)\n",
         (unsigned long long)n, spawn_s, ping_s, stop_s, (double)(rss1 - rss0) / 1048576.0,
         per_actor, sizeof(cell_t));
  free(pids);
  free(cell_seen);
  cell_seen = NULL;
  cell_pids = NULL;
}

/* --- a flood at one slow actor with a bounded mailbox ----------------------------- */

#define FLOOD_SENDERS 2
#define FLOOD_CAP 1024u
#define FLOOD_BATCH 64u /* the runtime's default batch (runtime.h: 0 = 64) */

typedef struct flood_msg {
  uint32_t sender;
  uint32_t _pad;
  uint64_t seq;
} flood_msg_t;

/* What the slow receiver saw (written only by it, read after the flood). */
typedef struct flood_rx {
  uint64_t handled;                    /* atomic */
  uint64_t last_seq[FLOOD_SENDERS];    /* 1-based; 0 = nothing yet */
  uint64_t out_of_order;
  uint64_t bad;
} flood_rx_t;

static flood_rx_t flood_rx;
static bwt_gate_t flood_gate;
static volatile uint64_t flood_sink;

static int slow_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == T_HOLD) {
    /* blocks (on its own thread) until the senders have met a full
     * mailbox, so that BW_EFULL does not depend on timing */
    if (!bwt_gate_pass(&flood_gate))
      flood_rx.bad++;
  } else if (msg->type == T_FLOOD && msg->len == sizeof(flood_msg_t)) {
    flood_msg_t m;
    memcpy(&m, msg->data, sizeof m);
    if (m.sender >= FLOOD_SENDERS) {
      flood_rx.bad++;
    } else {
      /* per-sender order holds, with gaps where sends were refused */
      if (m.seq <= flood_rx.last_seq[m.sender])
        flood_rx.out_of_order++;
      flood_rx.last_seq[m.sender] = m.seq;
    }
    /* slow: a little work per message, so senders outrun it */
    uint64_t x = m.seq;
    for (int i = 0; i < 300; i++)
      x = x * 6364136223846793005ull + 1442695040888963407ull;
    flood_sink = x;
  } else {
    flood_rx.bad++;
  }
  /* seq_cst: the records above are complete before the count shows them */
  __atomic_add_fetch(&flood_rx.handled, 1, __ATOMIC_SEQ_CST);
  return BW_CONTINUE;
}

static const bw_behaviour_t slow_beh = {.name = "slow", .handle = slow_handle};

typedef struct flood_sender {
  pthread_t th;
  bw_runtime_t *rt;
  bw_pid_t to;
  uint32_t id;
  uint64_t attempts;
  /* results, read by the main thread after pthread_join */
  uint64_t accepted, rejected, other_errors;
  uint32_t max_depth;
  int depth_errors;
  int done; /* atomic: set when it has sent everything */
} flood_sender_t;

static void *flood_sender_main(void *p) {
  flood_sender_t *f = p;
  flood_msg_t m = {.sender = f->id, ._pad = 0, .seq = 0};
  for (uint64_t i = 0; i < f->attempts; i++) {
    m.seq = i + 1;
    int rc = bw_send(f->rt, f->to, T_FLOOD, &m, sizeof m);
    if (rc == 0)
      f->accepted++;
    else if (rc == BW_EFULL)
      f->rejected++;
    else
      f->other_errors++;
    if ((i & 255u) == 0) {
      uint32_t d = 0;
      if (bw_mailbox_depth(f->rt, f->to, &d) != 0)
        f->depth_errors++;
      else if (d > f->max_depth)
        f->max_depth = d;
    }
  }
  /* release: the results above are complete before done reads 1 (the
   * main thread reads them after pthread_join anyway) */
  __atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void flood(bw_overflow_t policy, uint64_t attempts) {
  if (attempts < 4 * FLOOD_CAP)
    attempts = 4 * FLOOD_CAP; /* enough to overflow at any BW_TEST_SCALE */
  memset(&flood_rx, 0, sizeof flood_rx);
  bwt_gate_init(&flood_gate);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.mailbox_capacity = FLOOD_CAP;
  o.overflow = policy;
  o.dedicated_thread = true; /* it blocks at the gate first */
  bw_pid_t rx;
  assert_int_equal(bw_spawn(rt, &slow_beh, NULL, &o, &rx), 0);
  assert_int_equal(bw_send(rt, rx, T_HOLD, NULL, 0), 0);
  assert_true(bwt_gate_await_waiting(&flood_gate, 1));

  uint64_t rss0 = rss_bytes(), rss_peak = rss0;
  uint32_t main_max_depth = 0;
  flood_sender_t snd[FLOOD_SENDERS];
  struct timespec t0 = now_mono();
  for (uint32_t i = 0; i < FLOOD_SENDERS; i++) {
    memset(&snd[i], 0, sizeof snd[i]);
    snd[i].rt = rt;
    snd[i].to = rx;
    snd[i].id = i;
    snd[i].attempts = attempts / FLOOD_SENDERS + (i == 0 ? attempts % FLOOD_SENDERS : 0);
    assert_int_equal(pthread_create(&snd[i].th, NULL, flood_sender_main, &snd[i]), 0);
  }
  /* the mailbox fills while the receiver is held: then let it run */
  if (policy == BW_OVERFLOW_REJECT)
    BWT_POLL(bwt_stats(rt).rejected > 0);
  else
    BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_FULL] > 0);
  /* held: the mailbox is full (FLOOD_CAP queued) and the T_HOLD message
   * is in the running turn; a sender may be between the two counts its
   * push updates, hence the slack below */
  uint32_t d = 0;
  assert_int_equal(bw_mailbox_depth(rt, rx, &d), 0);
  assert_true(d <= FLOOD_CAP + 1);
  assert_true(d + FLOOD_SENDERS >= FLOOD_CAP + 1);
  main_max_depth = d;
  bwt_gate_open(&flood_gate);

  /* sample memory and the backlog while the flood runs (the sleep only
   * paces the sampling) */
  struct timespec dl = bwt_deadline_in(120);
  for (;;) {
    uint32_t done = 0;
    for (uint32_t i = 0; i < FLOOD_SENDERS; i++)
      done += __atomic_load_n(&snd[i].done, __ATOMIC_ACQUIRE);
    uint64_t r = rss_bytes();
    if (r > rss_peak)
      rss_peak = r;
    if (bw_mailbox_depth(rt, rx, &d) == 0 && d > main_max_depth)
      main_max_depth = d;
    if (done == FLOOD_SENDERS)
      break;
    if (bwt_past(&dl))
      fail_msg("the flood did not end");
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (uint32_t i = 0; i < FLOOD_SENDERS; i++)
    assert_int_equal(pthread_join(snd[i].th, NULL), 0);
  double flood_s = secs_since(&t0);
  uint64_t rss_end = rss_bytes();
  if (rss_end > rss_peak)
    rss_peak = rss_end;

  uint64_t accepted = 1, rejected = 0, tried = 1; /* 1: the T_HOLD message */
  uint32_t max_depth = main_max_depth;
  for (uint32_t i = 0; i < FLOOD_SENDERS; i++) {
    assert_int_equal(snd[i].other_errors, 0);
    assert_int_equal(snd[i].depth_errors, 0);
    assert_int_equal(snd[i].accepted + snd[i].rejected, snd[i].attempts);
    accepted += snd[i].accepted;
    rejected += snd[i].rejected;
    tried += snd[i].attempts;
    if (snd[i].max_depth > max_depth)
      max_depth = snd[i].max_depth;
  }
  assert_int_equal(tried, attempts + 1);
  assert_int_equal(accepted + rejected, tried);

  /* everything accepted is handled (the mailbox drains) */
  if (policy == BW_OVERFLOW_REJECT) {
    assert_true(rejected > 0);
    BWT_POLL_FOR(__atomic_load_n(&flood_rx.handled, __ATOMIC_SEQ_CST) == accepted, 60);
  } else {
    assert_int_equal(rejected, 0); /* drops are not refusals */
    BWT_POLL_FOR(__atomic_load_n(&flood_rx.handled, __ATOMIC_SEQ_CST) +
                         bwt_stats(rt).dead_by_reason[BW_DL_FULL] ==
                     accepted,
                 60);
  }
  /* the depth catches up when the receiver's last turn ends */
  BWT_POLL(bw_mailbox_depth(rt, rx, &d) == 0 && d == 0);
  uint64_t handled = __atomic_load_n(&flood_rx.handled, __ATOMIC_SEQ_CST);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t end = bwt_stats(rt);
  bwt_assert_accounting(&end);
  /* nothing was queued any more at stop, so stop dead-lettered nothing */
  assert_int_equal(end.dead_by_reason[BW_DL_SHUTDOWN], 0);
  assert_int_equal(end.handled, handled);
  assert_int_equal(end.sent, accepted);
  assert_int_equal(end.rejected, rejected);
  if (policy == BW_OVERFLOW_REJECT) {
    assert_int_equal(end.handled, accepted);
    assert_int_equal(end.dead_letters, 0);
  } else {
    assert_true(end.dead_by_reason[BW_DL_FULL] > 0);
    assert_int_equal(end.dead_letters, end.dead_by_reason[BW_DL_FULL]);
    assert_int_equal(end.handled + end.dead_by_reason[BW_DL_FULL], accepted);
  }
  assert_int_equal(flood_rx.bad, 0);
  assert_int_equal(flood_rx.out_of_order, 0);

  /*
   * The backlog bound. bw_mailbox_depth counts pushes minus the pops of
   * completed turns, while the capacity counts messages not yet popped: a
   * turn in progress (at most one batch) has popped messages the depth
   * still shows, so depth <= capacity + batch (see the report: actor.h
   * says "as of the end of its last turn", which is not quite this).
   */
  assert_true(max_depth <= FLOOD_CAP + FLOOD_BATCH);

  /* memory: the bounded mailbox holds at most FLOOD_CAP small messages
   * (well under 1 MB); allow for the pool caches of the threads and
   * allocator slack, generously, and more for instrumented runs */
  uint64_t growth = rss_peak > rss0 ? rss_peak - rss0 : 0;
  uint64_t bound = instrumented() ? 256ull << 20 : 32ull << 20;
  printf("[load] flood (%s policy): %llu sends from %d threads in %.2f s: %llu accepted, "
         "%llu %s, %llu handled; max backlog seen %u (capacity %u); RSS +%.1f MB peak "
         "(bound %.0f MB)\n",
         policy == BW_OVERFLOW_REJECT ? "reject" : "drop", (unsigned long long)attempts,
         FLOOD_SENDERS, flood_s, (unsigned long long)accepted,
         (unsigned long long)(policy == BW_OVERFLOW_REJECT ? rejected
                                                           : end.dead_by_reason[BW_DL_FULL]),
         policy == BW_OVERFLOW_REJECT ? "rejected (BW_EFULL)" : "dropped (dead letters \"full\")",
         (unsigned long long)handled, max_depth, FLOOD_CAP, (double)growth / 1048576.0,
         (double)bound / 1048576.0);
  assert_true(rss0 != 0);
  assert_true(growth < bound);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&flood_gate);
}

static void test_flood_bounded_reject(void **state) {
  (void)state;
  flood(BW_OVERFLOW_REJECT, volume(10000000));
}

static void test_flood_bounded_drop(void **state) {
  (void)state;
  flood(BW_OVERFLOW_DROP, volume(4000000));
}

/* --- a chain of linked actors dying together ------------------------------------ */

#define CHAIN_CODE (-4242)
#define CHAIN_TEXT "chain link broke"

typedef struct chain_rec {
  int terms;            /* terminate calls */
  bw_reason_t reason;   /* terminate's reason */
  int exits;            /* BW_MSG_EXIT received (a trapping actor) */
  bw_pid_t exit_from;
  bw_reason_t exit_reason;
} chain_rec_t;

static chain_rec_t *chain_recs; /* one per actor, written by that actor only */
static uint64_t chain_terms;    /* atomic: terminate calls */
static uint64_t chain_exits;    /* atomic: BW_MSG_EXIT received */

typedef struct chain_arg {
  uint32_t idx;
  bw_pid_t prev;
} chain_arg_t;

typedef struct chain_st {
  uint32_t idx;
} chain_st_t;

static int chain_init(bw_ctx_t *ctx, void *state, void *arg) {
  const chain_arg_t *a = arg;
  ((chain_st_t *)state)->idx = a->idx;
  /* linked to the one before it, in init (so before spawn returns) */
  return a->prev != BW_PID_NONE ? bw_link(ctx, a->prev) : 0;
}

static int chain_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  chain_st_t *st = state;
  if (msg->type == T_PING)
    bw_fail(ctx, CHAIN_CODE, "%s", CHAIN_TEXT);
  if (msg->type == BW_MSG_EXIT) {
    chain_rec_t *r = &chain_recs[st->idx];
    r->exits++;
    r->exit_from = msg->from;
    memcpy(&r->exit_reason, msg->data, sizeof r->exit_reason);
    __atomic_add_fetch(&chain_exits, 1, __ATOMIC_SEQ_CST);
  }
  return BW_CONTINUE;
}

static void chain_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  chain_rec_t *r = &chain_recs[((chain_st_t *)state)->idx];
  r->terms++;
  r->reason = *reason;
  /* seq_cst: the record is complete before the count shows it */
  __atomic_add_fetch(&chain_terms, 1, __ATOMIC_SEQ_CST);
}

static const bw_behaviour_t chain_beh = {.name = "chain",
                                         .state_size = sizeof(chain_st_t),
                                         .init = chain_init,
                                         .handle = chain_handle,
                                         .terminate = chain_terminate};

/* Builds a chain of n actors (each linked to the one before), the one at
 * trap_at (or none if >= n) trapping exits. */
static bw_pid_t *chain_build(bw_runtime_t *rt, uint32_t n, uint32_t trap_at) {
  bw_pid_t *pids = calloc(n, sizeof *pids);
  chain_recs = calloc(n, sizeof *chain_recs);
  assert_non_null(pids);
  assert_non_null(chain_recs);
  __atomic_store_n(&chain_terms, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&chain_exits, 0, __ATOMIC_SEQ_CST);
  for (uint32_t i = 0; i < n; i++) {
    chain_arg_t a = {.idx = i, .prev = i > 0 ? pids[i - 1] : BW_PID_NONE};
    bw_spawn_opts_t o;
    bw_spawn_opts_init(&o);
    o.trap_exit = i == trap_at;
    assert_int_equal(bw_spawn(rt, &chain_beh, &a, &o, &pids[i]), 0);
  }
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, n);
  return pids;
}

static void test_linked_chain_dies_together(void **state) {
  (void)state;
  const uint32_t n = (uint32_t)(bwt_scaled(10000) < 4 ? 4 : bwt_scaled(10000));
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t *pids = chain_build(rt, n, UINT32_MAX);

  struct timespec t0 = now_mono();
  assert_int_equal(bw_send(rt, pids[n - 1], T_PING, NULL, 0), 0); /* the last one crashes */
  BWT_POLL_FOR(__atomic_load_n(&chain_terms, __ATOMIC_SEQ_CST) == n, 60);
  BWT_POLL(bwt_stats(rt).live == 0);
  double die_s = secs_since(&t0);

  bw_reason_t want;
  memset(&want, 0, sizeof want);
  want.kind = BW_REASON_CRASH;
  want.code = CHAIN_CODE;
  snprintf(want.text, sizeof want.text, "%s", CHAIN_TEXT);
  uint32_t dead = 0, same_reason = 0, once = 0;
  for (uint32_t i = 0; i < n; i++) {
    dead += !bw_is_alive(rt, pids[i]);
    same_reason += bwt_reason_eq(&chain_recs[i].reason, &want);
    once += chain_recs[i].terms == 1 && chain_recs[i].exits == 0;
  }
  assert_int_equal(dead, n);
  assert_int_equal(same_reason, n);
  assert_int_equal(once, n);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.exited, n);
  assert_int_equal(s.crashed, n); /* the crash, and n - 1 exits with its reason */
  /* a monitor set now on any of them reports noproc: they are gone */
  bw_reason_t r;
  assert_int_equal(bw_wait_exit(rt, pids[0], 0, &r), 0);
  assert_int_equal(r.kind, BW_REASON_NOPROC);

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  printf("[load] chain of %u linked actors: all died with the crash's reason in %.3f s\n", n,
         die_s);
  free(pids);
  free(chain_recs);
  chain_recs = NULL;
}

static void test_linked_chain_stops_at_trapper(void **state) {
  (void)state;
  const uint32_t n = (uint32_t)(bwt_scaled(10000) < 4 ? 4 : bwt_scaled(10000));
  const uint32_t mid = n / 2;
  assert_true(mid >= 1);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t *pids = chain_build(rt, n, mid);

  assert_int_equal(bw_send(rt, pids[n - 1], T_PING, NULL, 0), 0);
  /* everything after the trapper dies; the trapper gets one EXIT */
  BWT_POLL_FOR(__atomic_load_n(&chain_terms, __ATOMIC_SEQ_CST) == n - 1 - mid &&
                   __atomic_load_n(&chain_exits, __ATOMIC_SEQ_CST) == 1,
               60);
  BWT_POLL(bwt_stats(rt).live == mid + 1);

  bw_reason_t want;
  memset(&want, 0, sizeof want);
  want.kind = BW_REASON_CRASH;
  want.code = CHAIN_CODE;
  snprintf(want.text, sizeof want.text, "%s", CHAIN_TEXT);
  uint32_t alive_ok = 0, dead_ok = 0;
  for (uint32_t i = 0; i < n; i++) {
    const chain_rec_t *c = &chain_recs[i];
    if (i <= mid)
      alive_ok += bw_is_alive(rt, pids[i]) && c->terms == 0 && (i == mid || c->exits == 0);
    else
      dead_ok += !bw_is_alive(rt, pids[i]) && c->terms == 1 && bwt_reason_eq(&c->reason, &want);
  }
  assert_int_equal(alive_ok, mid + 1);
  assert_int_equal(dead_ok, n - 1 - mid);
  const chain_rec_t *t = &chain_recs[mid];
  assert_int_equal(t->exits, 1);
  assert_int_equal(t->exit_from, pids[mid + 1]);
  assert_true(bwt_reason_eq(&t->exit_reason, &want));
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.crashed, n - 1 - mid);

  /* the survivors still work: the first one crashes now, and takes the
   * rest up to the trapper with it, which gets a second EXIT */
  assert_int_equal(bw_send(rt, pids[0], T_PING, NULL, 0), 0);
  BWT_POLL_FOR(__atomic_load_n(&chain_terms, __ATOMIC_SEQ_CST) == n - 1 &&
                   __atomic_load_n(&chain_exits, __ATOMIC_SEQ_CST) == 2,
               60);
  BWT_POLL(bwt_stats(rt).live == 1);
  assert_true(bw_is_alive(rt, pids[mid]));
  assert_int_equal(chain_recs[mid].exit_from, pids[mid - 1]);

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_int_equal(chain_recs[mid].terms, 1);
  assert_int_equal(chain_recs[mid].reason.kind, BW_REASON_SHUTDOWN);
  bw_runtime_destroy(rt);
  printf("[load] chain of %u with a trapper at %u: %u died, %u survived until stop\n", n, mid,
         n - 1 - mid, mid + 1);
  free(pids);
  free(chain_recs);
  chain_recs = NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_million_live_actors),
      cmocka_unit_test(test_flood_bounded_reject),
      cmocka_unit_test(test_flood_bounded_drop),
      cmocka_unit_test(test_linked_chain_dies_together),
      cmocka_unit_test(test_linked_chain_stops_at_trapper),
  };
  return BWT_RUN_SUITE(tests);
}
