/*
 * "No allocation per message in steady state", checked: this binary
 * replaces malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign,
 * valloc and pvalloc with wrappers that count calls (from every thread: the
 * runtime's workers and timer thread included) and forward to glibc's own
 * allocator (__libc_malloc and friends). Each scenario warms up first (the
 * pools carve their chunks, the tables grow to their working size), then
 * counts the allocations across a million messages (divided by
 * BW_TEST_SCALE) and asserts there are none:
 * - bw_send between two actors, ping-pong and one-way (windowed, so the
 *   mailbox depth, and with it the pool's working set, is bounded);
 * - bw_request / bw_reply between two actors, four requests in flight,
 *   each with a deadline (a timer armed and cancelled per request);
 * - the same with continuations (bw_request_then), and then with the
 *   server keeping each request as a reply token (bw_reply_defer) and
 *   answering four at a time (bw_reply_token): the continuation and token
 *   tables grow during the warm-up and are reused after;
 * - the policy pipeline's in-caller fast path (bw_policy_enter /
 *   bw_policy_exit) with a breaker, a rate limiter and a retry budget, on
 *   its success path: from an actor whose attempts are real requests, and
 *   from a plain thread with no message at all;
 * - a log line (bw_log_kv with fields to escape), text and JSON to a sink,
 *   and text to stderr, from an actor and from a plain thread (a tenth as
 *   many lines: a line costs more than a message).
 * The runtime has two workers and the real clock, so blocks are freed on
 * other threads than the ones that took them (the pool's remote lists), and
 * the breaker's flush timer fires during the run.
 *
 * Skipped, and why:
 * - under AddressSanitizer, ThreadSanitizer or MemorySanitizer (detected at
 *   compile time): they bring their own allocator and intercept these very
 *   functions, so the wrappers are not built at all; the paths are still
 *   exercised by test_send, test_request and test_policy there;
 * - under LeakSanitizer alone (detected at run time): it intercepts malloc
 *   as well;
 * - under valgrind (BW_TEST_VALGRIND set, as .ci/run does, or vgpreload in
 *   LD_PRELOAD): it redirects the allocator calls of the library to its
 *   own, past these wrappers (measured: a runtime's creation counted 0), so
 *   a zero would prove nothing. valgrind still checks these paths' memory
 *   in test_send, test_request and test_policy.
 *
 * When a window is not clean, the first few allocations' stacks are printed
 * (addresses: resolve with addr2line -f -e test_alloc).
 */
#include "support.h"

#include <execinfo.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bulwark/policy.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BWT_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define BWT_NO_INTERPOSE 1
#endif
#endif

/* --- the counting allocator ------------------------------------------------ */

#define SITES 4
#define SITE_DEPTH 16

static atomic_int counting;     /* 1 inside a measured window */
static atomic_ulong nallocs;    /* allocations in the window */
static void *site_frames[SITES][SITE_DEPTH];
static int site_depth[SITES];
static void *volatile sink; /* so the compiler keeps the counter's test allocations */

#ifndef BWT_NO_INTERPOSE
static _Thread_local int in_hook; /* backtrace() may allocate itself */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t sz);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static void note(void) {
  /* relaxed: the window opens before the kick message is sent and closes
   * after its completion is seen, and those hand-offs already order the
   * flag against the work in between */
  if (!atomic_load_explicit(&counting, memory_order_relaxed) || in_hook)
    return;
  unsigned long i = atomic_fetch_add_explicit(&nallocs, 1, memory_order_relaxed);
  if (i < SITES) {
    in_hook = 1;
    site_depth[i] = backtrace(site_frames[i], SITE_DEPTH);
    in_hook = 0;
  }
}

void *malloc(size_t n) {
  note();
  return __libc_malloc(n);
}

void *calloc(size_t n, size_t sz) {
  note();
  return __libc_calloc(n, sz);
}

void *realloc(void *p, size_t n) {
  note();
  return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }

void *aligned_alloc(size_t align, size_t n) {
  note();
  return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n);
void *memalign(size_t align, size_t n) {
  note();
  return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  note();
  if (align < sizeof(void *) || (align & (align - 1)) != 0)
    return EINVAL;
  void *p = __libc_memalign(align, n);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

void *valloc(size_t n);
void *valloc(size_t n) {
  note();
  return __libc_memalign(4096, n);
}

void *pvalloc(size_t n);
void *pvalloc(size_t n) {
  note();
  return __libc_memalign(4096, (n + 4095) & ~(size_t)4095);
}
#endif

/* Why the counts cannot be trusted here, or NULL. */
static const char *skip_reason(void) {
#ifdef BWT_NO_INTERPOSE
  return "built with a sanitizer that replaces malloc";
#else
  extern void __lsan_do_leak_check(void) __attribute__((weak));
  if (__lsan_do_leak_check != NULL)
    return "LeakSanitizer replaces malloc";
  const char *pre = getenv("LD_PRELOAD");
  if (getenv("BW_TEST_VALGRIND") != NULL || (pre != NULL && strstr(pre, "vgpreload") != NULL))
    return "valgrind replaces malloc";
  return NULL;
#endif
}

static bool skip_if_unreliable(void) {
  const char *why = skip_reason();
  if (why == NULL)
    return false;
  print_message("skipped: %s\n", why);
  return true;
}

static void window_open(void) {
  atomic_store(&nallocs, 0);
  atomic_store(&counting, 1);
}

static unsigned long window_close(void) {
  atomic_store(&counting, 0);
  return atomic_load(&nallocs);
}

static void print_sites(const char *what, unsigned long n) {
  print_error("%s: %lu allocation(s) in the window; the first ones:\n", what, n);
  for (unsigned long i = 0; i < n && i < SITES; i++) {
    print_error("  allocation %lu:\n", i + 1);
    backtrace_symbols_fd(site_frames[i], site_depth[i], 2);
  }
}

/* --- the scenarios' actors -------------------------------------------------- */

enum {
  T_START = 1, /* payload: uint64_t rounds; from the main thread */
  T_PING,
  T_PONG,
  T_DATA,      /* payload: uint64_t, bit 0 = last of a burst */
  T_ACK,
  T_REQ,
  T_ANS,
};

#define BURST 256u  /* one-way: messages per burst */
#define INFLIGHT 4u /* requests in flight */

static sem_t done;     /* posted by a driver when its round is over */
static atomic_int failures; /* anything unexpected a driver saw */

static void fail_note(void) { atomic_fetch_add(&failures, 1); }

/* The peer an actor talks to, given at spawn. */
typedef struct peer_st {
  bw_pid_t peer;
  uint64_t left, seen;
  uint32_t inflight;
  bw_policy_t *policy;
  bw_policy_ticket_t tickets[INFLIGHT];
  uint64_t refs[INFLIGHT];
} peer_st;

static int peer_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  ((peer_st *)state)->peer = (bw_pid_t)(uintptr_t)arg;
  return 0;
}

static uint64_t start_rounds(const bw_msg_t *msg) {
  uint64_t n;
  memcpy(&n, msg->data, sizeof n);
  return n;
}

/* ping-pong */
static int pinger(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  if (msg->type == T_START)
    s->left = start_rounds(msg);
  else if (msg->type != T_PONG || --s->left == 0) {
    if (msg->type != T_PONG)
      fail_note();
    sem_post(&done);
    return BW_CONTINUE;
  }
  if (bw_send(rt, s->peer, T_PING, &s->left, sizeof s->left) != 0)
    fail_note();
  return BW_CONTINUE;
}

static int ponger(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type != T_PING || msg->len != sizeof(uint64_t) ||
      bw_send(bw_ctx_runtime(ctx), msg->from, T_PONG, msg->data, msg->len) != 0)
    fail_note();
  return BW_CONTINUE;
}

/* one-way, in bursts: the consumer acks the last message of each */
static void burst(bw_ctx_t *ctx, peer_st *s) {
  uint32_t k = s->left < BURST ? (uint32_t)s->left : BURST;
  for (uint32_t i = 0; i < k; i++) {
    uint64_t v = (s->seen++ << 1) | (i + 1 == k);
    if (bw_send(bw_ctx_runtime(ctx), s->peer, T_DATA, &v, sizeof v) != 0)
      fail_note();
  }
  s->left -= k;
}

static int producer(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  if (msg->type == T_START) {
    s->left = start_rounds(msg);
    burst(ctx, s);
  } else if (msg->type == T_ACK && s->left > 0) {
    burst(ctx, s);
  } else {
    if (msg->type != T_ACK)
      fail_note();
    sem_post(&done);
  }
  return BW_CONTINUE;
}

static int consumer(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  uint64_t v;
  if (msg->type != T_DATA || msg->len != sizeof v) {
    fail_note();
    return BW_CONTINUE;
  }
  memcpy(&v, msg->data, sizeof v);
  if ((v >> 1) != s->seen++) /* in send order, none lost */
    fail_note();
  if ((v & 1) && bw_send(bw_ctx_runtime(ctx), msg->from, T_ACK, NULL, 0) != 0)
    fail_note();
  return BW_CONTINUE;
}

/* request/reply: the server answers with the request's payload plus one */
static int server(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  uint64_t v;
  if (msg->type != T_REQ || !(msg->flags & BW_MSGF_REQUEST) || msg->len != sizeof v) {
    fail_note();
    return BW_CONTINUE;
  }
  memcpy(&v, msg->data, sizeof v);
  v++;
  if (bw_reply(ctx, msg, 0, T_ANS, &v, sizeof v) != 0)
    fail_note();
  return BW_CONTINUE;
}

#define DEADLINE_MS 60000u /* never reached: armed and cancelled per request */

static void request_next(bw_ctx_t *ctx, peer_st *s, uint32_t slot) {
  s->left--;
  s->inflight++;
  if (bw_request(ctx, s->peer, T_REQ, &s->left, sizeof s->left, DEADLINE_MS, &s->refs[slot]) != 0)
    fail_note();
}

static int find_slot(const peer_st *s, uint64_t ref) {
  for (uint32_t i = 0; i < INFLIGHT; i++)
    if (s->refs[i] == ref)
      return (int)i;
  return -1;
}

static bool reply_ok(const bw_msg_t *msg) {
  return (msg->flags & BW_MSGF_REPLY) && msg->type == T_ANS && msg->status == 0 &&
         msg->len == sizeof(uint64_t);
}

static int client(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  if (msg->type == T_START) {
    s->left = start_rounds(msg);
    for (uint32_t i = 0; i < INFLIGHT && s->left > 0; i++)
      request_next(ctx, s, i);
    return BW_CONTINUE;
  }
  int slot = find_slot(s, msg->ref);
  if (!reply_ok(msg) || slot < 0) {
    fail_note();
    return BW_CONTINUE;
  }
  s->inflight--;
  s->refs[slot] = 0;
  if (s->left > 0)
    request_next(ctx, s, (uint32_t)slot);
  else if (s->inflight == 0)
    sem_post(&done);
  return BW_CONTINUE;
}

/* the policy's in-caller form: each attempt is a request to the server */
static void attempt_next(bw_ctx_t *ctx, peer_st *s, uint32_t slot) {
  bw_policy_ticket_t *t = &s->tickets[slot];
  s->left--;
  int rc = bw_policy_enter(s->policy, t);
  if (rc != 0) { /* the success path only: every stage lets it through */
    fail_note();
    return;
  }
  s->inflight++;
  rc = bw_request(ctx, s->peer, T_REQ, &s->left, sizeof s->left, t->timeout_ms, &s->refs[slot]);
  if (rc != 0) {
    fail_note();
    s->inflight--;
    (void)bw_policy_exit(s->policy, t, rc, NULL);
  }
}

static int policy_client(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  if (msg->type == T_START) {
    s->left = start_rounds(msg);
    for (uint32_t i = 0; i < INFLIGHT && s->left > 0; i++)
      attempt_next(ctx, s, i);
    if (s->inflight == 0)
      sem_post(&done);
    return BW_CONTINUE;
  }
  int slot = find_slot(s, msg->ref);
  if (!reply_ok(msg) || slot < 0) {
    fail_note();
    return BW_CONTINUE;
  }
  s->inflight--;
  s->refs[slot] = 0;
  if (bw_policy_exit(s->policy, &s->tickets[slot], msg->status, NULL) != 0)
    fail_note();
  if (s->left > 0)
    attempt_next(ctx, s, (uint32_t)slot);
  if (s->inflight == 0)
    sem_post(&done);
  return BW_CONTINUE;
}

/* request/reply with continuations (bulwark/reply.h): the same traffic
 * as client's, the replies matched by the runtime; closure = the slot */
static int then_next(bw_ctx_t *ctx, peer_st *s, uintptr_t slot);

static int on_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                     void *closure) {
  peer_st *s = state;
  if (reply == NULL || !reply_ok(reply) || status != 0)
    fail_note();
  s->inflight--;
  if (s->left > 0)
    return then_next(ctx, s, (uintptr_t)closure);
  if (s->inflight == 0)
    sem_post(&done);
  return BW_CONTINUE;
}

static int then_next(bw_ctx_t *ctx, peer_st *s, uintptr_t slot) {
  s->left--;
  s->inflight++;
  if (bw_request_then(ctx, s->peer, T_REQ, &s->left, sizeof s->left, DEADLINE_MS, on_answer,
                      (void *)slot, NULL, NULL) != 0)
    fail_note();
  return BW_CONTINUE;
}

static int then_client(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  peer_st *s = state;
  if (msg->type != T_START) { /* every reply goes to a continuation */
    fail_note();
    return BW_CONTINUE;
  }
  s->left = start_rounds(msg);
  for (uintptr_t i = 0; i < INFLIGHT && s->left > 0; i++)
    then_next(ctx, s, i);
  return BW_CONTINUE;
}

/* request/reply with deferred replies: keeps each request as a reply
 * token, and answers those it holds when it has INFLIGHT of them, or the
 * requests are running out (the payload counts down to 0) */
typedef struct keeper_st {
  bw_reply_token_t tok[INFLIGHT];
  uint64_t val[INFLIGHT];
  uint32_t n;
} keeper_st;

static int token_server(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  keeper_st *k = state;
  if (msg->type != T_REQ || msg->len != sizeof(uint64_t) || k->n == INFLIGHT ||
      bw_reply_defer(ctx, msg, &k->tok[k->n]) != 0) {
    fail_note();
    return BW_CONTINUE;
  }
  memcpy(&k->val[k->n], msg->data, sizeof(uint64_t));
  if (++k->n < INFLIGHT && k->val[k->n - 1] >= INFLIGHT)
    return BW_CONTINUE;
  for (uint32_t i = 0; i < k->n; i++) {
    uint64_t v = k->val[i] + 1;
    if (bw_reply_token(ctx, &k->tok[i], 0, T_ANS, &v, sizeof v) != 0)
      fail_note();
  }
  k->n = 0;
  return BW_CONTINUE;
}

/* mallocs (and frees) once per T_START: the counter's own check */
static int allocator(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  sink = malloc(24);
  free(sink);
  sem_post(&done);
  return BW_CONTINUE;
}

static const bw_behaviour_t allocator_b = {.name = "allocator", .state_size = 0, .init = NULL, .handle = allocator};
static const bw_behaviour_t pinger_b = {.name = "pinger", .state_size = sizeof(peer_st), .init = peer_init, .handle = pinger};
static const bw_behaviour_t ponger_b = {.name = "ponger", .state_size = 0, .init = NULL, .handle = ponger};
static const bw_behaviour_t producer_b = {.name = "producer", .state_size = sizeof(peer_st), .init = peer_init, .handle = producer};
static const bw_behaviour_t consumer_b = {.name = "consumer", .state_size = sizeof(peer_st), .init = NULL, .handle = consumer};
static const bw_behaviour_t server_b = {.name = "server", .state_size = 0, .init = NULL, .handle = server};
static const bw_behaviour_t client_b = {.name = "client", .state_size = sizeof(peer_st), .init = peer_init, .handle = client};
static const bw_behaviour_t then_client_b = {.name = "then_client", .state_size = sizeof(peer_st), .init = peer_init, .handle = then_client};
static const bw_behaviour_t token_server_b = {.name = "token_server", .state_size = sizeof(keeper_st), .init = NULL, .handle = token_server};

typedef struct policy_arg {
  bw_pid_t server;
  bw_policy_t *policy;
} policy_arg;

static int policy_client_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  peer_st *s = state;
  const policy_arg *a = arg;
  s->peer = a->server;
  s->policy = a->policy;
  for (uint32_t i = 0; i < INFLIGHT; i++)
    bw_policy_ticket_init(&s->tickets[i]);
  return 0;
}

static const bw_behaviour_t policy_client_b = {.name = "policy_client", .state_size = sizeof(peer_st), .init = policy_client_init, .handle = policy_client};

/* --- the measuring harness ------------------------------------------------- */

#define MESSAGES 1000000ul  /* per measured window, before BW_TEST_SCALE */
#define WARM_ROUNDS_MAX 50  /* warm-up rounds before giving up on a quiet one */
#define WORKERS 2           /* so blocks are freed on other threads than their own */

/* One round: the driver is told to make `rounds` round trips; returns the
 * allocations made meanwhile, on any thread, if measured. */
static unsigned long run_round(bw_runtime_t *rt, bw_pid_t driver, uint64_t rounds, bool measure) {
  if (measure)
    window_open();
  int rc = bw_send(rt, driver, T_START, &rounds, sizeof rounds);
  struct timespec dl = bwt_deadline_in(120);
  int w;
  while ((w = sem_timedwait(&done, &dl)) != 0 && errno == EINTR) {
  }
  unsigned long n = measure ? window_close() : 0;
  assert_int_equal(rc, 0);
  assert_int_equal(w, 0);
  return n;
}

/*
 * Warm-up rounds of a tenth of the work until one makes no allocation (the
 * pools and tables have reached their working size; a worker thread that
 * has not yet carved a chunk of a size does it once), then the measured
 * round of `rounds` (units of the work: what it reports). measure_steady:
 * msgs_per_round is the messages one round trip sends, to turn MESSAGES
 * into round trips.
 */
static void measure_rounds(const char *what, bw_runtime_t *rt, bw_pid_t driver, uint64_t rounds,
                           uint64_t units, const char *unit) {
  uint64_t warm = rounds / 10 > 1000 ? rounds / 10 : 1000;
  unsigned long n = 1;
  int tries = 0;
  while (n != 0 && tries++ < WARM_ROUNDS_MAX)
    n = run_round(rt, driver, warm, true);
  if (n != 0)
    print_sites(what, n);
  assert_int_equal(n, 0); /* never quiet: an allocation every round */
  n = run_round(rt, driver, rounds, true);
  if (n != 0)
    print_sites(what, n);
  assert_int_equal(atomic_load(&failures), 0);
  assert_int_equal(n, 0);
  print_message("%s: %llu %s, 0 allocations (%d warm-up round(s))\n", what,
                (unsigned long long)units, unit, tries);
}

static void measure_steady(const char *what, bw_runtime_t *rt, bw_pid_t driver,
                           unsigned msgs_per_round) {
  uint64_t rounds = bwt_scaled(MESSAGES) / msgs_per_round;
  measure_rounds(what, rt, driver, rounds, rounds * msgs_per_round, "messages");
}

/*
 * A pool cache carves its first chunk of a size class the first time its
 * thread allocates that size: once per thread and class for the runtime's
 * life, not per message. Which worker runs an actor is the scheduler's
 * choice, so a worker could send for the first time inside a measured
 * window. This makes each worker send first: one warmer per worker, each
 * waiting in its handler until all are running at once (so each holds a
 * different worker), then sending. Blocking a worker is fine here: it is
 * bounded and nothing else runs yet.
 */
static atomic_int warmers_in;

static int warmer(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type != T_START)
    return BW_CONTINUE; /* its own sends */
  atomic_fetch_add(&warmers_in, 1);
  struct timespec dl = bwt_deadline();
  unsigned spins = 0;
  while (atomic_load(&warmers_in) < WORKERS && !bwt_past(&dl))
    bwt_relax(&spins);
  if (atomic_load(&warmers_in) < WORKERS)
    fail_note();
  uint8_t pay[BW_MSG_INLINE_MAX] = {0};
  for (size_t len = 0; len <= sizeof pay; len += 8) /* every class a message may use */
    if (bw_send(bw_ctx_runtime(ctx), bw_self(ctx), T_PING, pay, len) != 0)
      fail_note();
  sem_post(&done);
  return BW_CONTINUE;
}

static const bw_behaviour_t warmer_b = {.name = "warmer", .state_size = 0, .init = NULL, .handle = warmer};

static bw_runtime_t *setup(void) {
  atomic_store(&failures, 0);
  atomic_store(&warmers_in, 0);
  assert_int_equal(sem_init(&done, 0, 0), 0);
  bw_runtime_t *rt = bwt_runtime(WORKERS, false); /* the real clock */
  bw_pid_t w[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    assert_int_equal(bw_spawn(rt, &warmer_b, NULL, NULL, &w[i]), 0);
  for (int i = 0; i < WORKERS; i++)
    assert_int_equal(bw_send(rt, w[i], T_START, NULL, 0), 0);
  for (int i = 0; i < WORKERS; i++) {
    struct timespec dl = bwt_deadline();
    assert_int_equal(sem_timedwait(&done, &dl), 0);
  }
  assert_int_equal(atomic_load(&failures), 0);
  return rt;
}

static void teardown(bw_runtime_t *rt) {
  bw_runtime_destroy(rt);
  sem_destroy(&done);
}

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg) {
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, b, arg, NULL, &pid), 0);
  return pid;
}

/* --- tests ---------------------------------------------------------------- */

/* The counter sees what it must: an allocation in the window is counted
 * (from this thread and from an actor), and none outside it. Without this
 * the zeros below could be a counter that never counts. */
static void test_counter_counts(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  window_open();
  sink = malloc(100);
  free(sink);
  void *q = NULL;
  int rc = posix_memalign(&q, 64, 256);
  sink = q;
  free(sink);
  unsigned long n = window_close();
  sink = malloc(10); /* outside: not counted */
  free(sink);
  assert_int_equal(rc, 0);
  assert_int_equal(n, 2);
  assert_int_equal(atomic_load(&nallocs), 2);

  /* a runtime's first spawn allocates (slot page, actor, caches) */
  window_open();
  bw_runtime_t *rt = setup();
  bw_pid_t a = spawn(rt, &allocator_b, NULL);
  n = window_close();
  assert_true(n > 0);
  /* and a handler's malloc on a worker thread is counted: once a round */
  (void)run_round(rt, a, 1, false);
  assert_int_equal(run_round(rt, a, 1, true), 1);
  assert_int_equal(run_round(rt, a, 3, true), 1);
  teardown(rt);
}

static void test_send_ping_pong(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t pong = spawn(rt, &ponger_b, NULL);
  bw_pid_t ping = spawn(rt, &pinger_b, (void *)(uintptr_t)pong);
  measure_steady("bw_send ping-pong", rt, ping, 2);
  bw_runtime_stats_t st = bwt_stats(rt);
  assert_true(st.handled >= bwt_scaled(MESSAGES));
  assert_int_equal(st.dead_letters, 0);
  teardown(rt);
}

static void test_send_one_way(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t cons = spawn(rt, &consumer_b, NULL);
  bw_pid_t prod = spawn(rt, &producer_b, (void *)(uintptr_t)cons);
  measure_steady("bw_send one-way", rt, prod, 1);
  assert_int_equal(bwt_stats(rt).dead_letters, 0);
  teardown(rt);
}

static void test_request_reply(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t srv = spawn(rt, &server_b, NULL);
  bw_pid_t cli = spawn(rt, &client_b, (void *)(uintptr_t)srv);
  measure_steady("bw_request/bw_reply", rt, cli, 2);
  assert_int_equal(bwt_stats(rt).dead_letters, 0);
  teardown(rt);
}

/* The same traffic with continuations, then also with reply tokens: the
 * continuation table and the token table grow once, then are reused. */
static void test_request_then(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t srv = spawn(rt, &server_b, NULL);
  bw_pid_t cli = spawn(rt, &then_client_b, (void *)(uintptr_t)srv);
  measure_steady("bw_request_then/bw_reply", rt, cli, 2);
  assert_int_equal(bwt_stats(rt).dead_letters, 0);
  teardown(rt);
}

static void test_reply_tokens(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t srv = spawn(rt, &token_server_b, NULL);
  bw_pid_t cli = spawn(rt, &then_client_b, (void *)(uintptr_t)srv);
  measure_steady("bw_request_then/bw_reply_token", rt, cli, 2);
  assert_int_equal(bwt_stats(rt).dead_letters, 0);
  teardown(rt);
}

static bw_policy_t *fast_policy(bw_runtime_t *rt, bw_pid_t target) {
  bw_policy_opts_t o;
  bw_policy_opts_init(&o);
  o.target = target;
  o.breaker = true;
  o.rate_limit = true; /* a rate no run reaches: every token is there */
  o.rate = 1000000000ull;
  o.rate_period_ms = 1000;
  o.rate_burst = BW_RATELIMIT_MAX_BURST;
  o.budget = true;
  o.attempt_timeout_ms = DEADLINE_MS; /* a deadline per attempt, as in use */
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, &o, &p), 0);
  assert_int_equal(bw_breaker_start(bw_policy_breaker(p), NULL), 0);
  return p;
}

static void test_policy_fast_path(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  bw_pid_t srv = spawn(rt, &server_b, NULL);
  bw_policy_t *p = fast_policy(rt, srv);
  policy_arg a = {srv, p};
  bw_pid_t cli = spawn(rt, &policy_client_b, &a);
  measure_steady("policy in an actor", rt, cli, 2);
  bw_policy_stats_t m;
  assert_int_equal(bw_policy_stats(p, &m), 0);
  assert_int_equal(m.failures, 0);
  assert_int_equal(m.successes, m.calls);
  assert_true(m.successes >= bwt_scaled(MESSAGES) / 2);

  /* the same stages from a plain thread, with no message at all */
  uint64_t n = bwt_scaled(MESSAGES);
  bw_policy_ticket_t t;
  bw_policy_ticket_init(&t);
  for (int i = 0; i < 1000; i++) { /* warm-up: this thread's journal stripe */
    assert_int_equal(bw_policy_enter(p, &t), 0);
    assert_int_equal(bw_policy_exit(p, &t, 0, NULL), 0);
  }
  int bad = 0;
  window_open();
  for (uint64_t i = 0; i < n; i++)
    bad |= bw_policy_enter(p, &t) | bw_policy_exit(p, &t, 0, NULL);
  unsigned long allocs = window_close();
  if (allocs != 0)
    print_sites("policy from a thread", allocs);
  assert_int_equal(bad, 0);
  assert_int_equal(allocs, 0);
  print_message("policy from a thread: %llu calls, 0 allocations\n", (unsigned long long)n);
  assert_int_equal(bw_exit(rt, cli, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, cli);
  assert_int_equal(bw_policy_destroy(p), 0);
  teardown(rt);
}

/* --- logging ----------------------------------------------------------------- */

/* A line per loop, with fields to escape, from an actor (bulwark/log.h). */
static atomic_ulong log_lines;

static void count_sink(const bw_log_record_t *r, void *arg) {
  (void)arg;
  if (r->len > 0 && r->line[r->len - 1] == '\n')
    atomic_fetch_add(&log_lines, 1);
}

static void log_some(bw_runtime_t *rt, uint64_t n, bool *bad) {
  for (uint64_t i = 0; i < n; i++) {
    bw_log_field_t f[] = {BW_LOG_STR("peer", "db-1"), BW_LOG_NUM("seq", (long long)i),
                          BW_LOG_STR("note", "a \"quoted\"\nvalue")};
    if (bw_log_kv(rt, BW_LOG_WARNING, f, 3, "round %llu of %llu", (unsigned long long)i,
                  (unsigned long long)n) != 1)
      *bad = true;
  }
}

static int log_driver(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  bool bad = msg->type != T_START;
  if (!bad)
    log_some(bw_ctx_runtime(ctx), start_rounds(msg), &bad);
  if (bad)
    fail_note();
  sem_post(&done);
  return BW_CONTINUE;
}

static const bw_behaviour_t log_driver_b = {.name = "log_driver", .state_size = 0, .init = NULL, .handle = log_driver};

/* log lines per measured window: a tenth of MESSAGES, as a line costs
 * about 2 us (a message, 0.1) */
#define LOG_LINES (MESSAGES / 10)

/* "No allocation per log call": text and JSON to a sink, text to stderr
 * (here /dev/null), from an actor and from a plain thread. */
static void test_logging(void **state) {
  (void)state;
  if (skip_if_unreliable())
    skip();
  bw_runtime_t *rt = setup();
  assert_int_equal(bw_log_set_level(rt, BW_LOG_INFO), 0); /* setup's runtime is quiet */
  assert_int_equal(bw_log_set_sink(rt, count_sink, NULL), 0);
  bw_pid_t drv = spawn(rt, &log_driver_b, NULL);
  uint64_t lines = bwt_scaled(LOG_LINES);
  measure_rounds("bw_log, text, to a sink", rt, drv, lines, lines, "lines");
  assert_int_equal(bw_log_set_format(rt, BW_LOG_JSON), 0);
  measure_rounds("bw_log, JSON, to a sink", rt, drv, lines, lines, "lines");
  assert_true(atomic_load(&log_lines) >= 2 * lines);

  /* to stderr: one write(2) a line, nothing else */
  assert_int_equal(bw_log_set_format(rt, BW_LOG_TEXT), 0);
  assert_int_equal(bw_log_set_sink(rt, NULL, NULL), 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
  assert_true(saved >= 0 && null >= 0);
  assert_true(dup2(null, STDERR_FILENO) >= 0);
  run_round(rt, drv, 1000, false);
  unsigned long n = run_round(rt, drv, lines, true);
  /* and from this thread, which is no actor of the runtime */
  bool bad = false;
  log_some(rt, 1000, &bad);
  window_open();
  log_some(rt, lines, &bad);
  unsigned long m = window_close();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(null);
  if (n != 0)
    print_sites("bw_log to stderr, from an actor", n);
  if (m != 0)
    print_sites("bw_log to stderr, from a thread", m);
  assert_false(bad);
  assert_int_equal(atomic_load(&failures), 0);
  assert_int_equal(n, 0);
  assert_int_equal(m, 0);
  print_message("bw_log to stderr: %llu lines from an actor, as many from a thread, 0 allocations\n",
                (unsigned long long)lines);
  teardown(rt);
}

int main(void) {
  /* load what backtrace() needs now, outside any window */
  void *frames[2];
  (void)backtrace(frames, 2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_counts),
      cmocka_unit_test(test_send_ping_pong),
      cmocka_unit_test(test_send_one_way),
      cmocka_unit_test(test_request_reply),
      cmocka_unit_test(test_request_then),
      cmocka_unit_test(test_reply_tokens),
      cmocka_unit_test(test_policy_fast_path),
      cmocka_unit_test(test_logging),
  };
  return BWT_RUN_SUITE(tests);
}
