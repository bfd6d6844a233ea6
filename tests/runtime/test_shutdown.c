/*
 * Runtime shutdown: bw_runtime_stop with actors that are busy and have full
 * mailboxes (every terminate runs with reason shutdown; what was still queued,
 * and pending timers, are dead letters; sent == handled + dead letters), the
 * calls that fail with BW_ESHUTDOWN afterwards, stop from inside an actor,
 * destroy without stop. Then what must not hang: kill and stop when memory
 * has run out (the runtime's allocation-failure hook makes every pool
 * allocation fail, as under ulimit -v), destroy from inside a handler (it
 * aborts, saying why), and a handler that ends its thread with
 * pthread_exit (the actor counts as crashed and the runtime goes on).
 */
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/internal.h" /* bw__test_alloc_fail_after */

enum { T_DATA = 1, T_BLOCK, T_MOVE, T_STOP_RT, T_GET, T_DESTROY_RT, T_PTHREAD_EXIT };

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static int terms;
static int term_by_kind[BW_REASON__COUNT];
static uint64_t handled_by_handlers; /* user messages the handlers saw */
static int dtor_calls;
static int init_calls;
static bw_reason_t last_crash; /* the reason of the last crashed terminate */
static bwt_gate_t gate;

static void reset(void) {
  bwt_lock(&sync_);
  terms = 0;
  memset(term_by_kind, 0, sizeof term_by_kind);
  handled_by_handlers = 0;
  dtor_calls = 0;
  init_calls = 0;
  bwt_unlock(&sync_);
}

static void counting_dtor(void *p) {
  bwt_lock(&sync_);
  dtor_calls++;
  bwt_unlock_signal(&sync_);
  free(p);
}

typedef struct w_state {
  uint64_t handled;
} w_state_t;

static int w_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  (void)arg;
  bwt_lock(&sync_);
  init_calls++;
  bwt_unlock(&sync_);
  return 0;
}

static int w_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  w_state_t *st = state;
  if (msg->type < BW_MSG_SYSTEM_BASE)
    st->handled++;
  switch (msg->type) {
  case T_BLOCK:
    bwt_gate_pass(&gate);
    break;
  case T_STOP_RT: {
    int rc = bw_runtime_stop(bw_ctx_runtime(ctx));
    bw_reply(ctx, msg, 0, T_STOP_RT, &rc, sizeof rc);
    break;
  }
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, NULL, 0);
    break;
  case T_DESTROY_RT:
    bw_runtime_destroy(bw_ctx_runtime(ctx)); /* aborts: never returns */
    break;
  case T_PTHREAD_EXIT:
    pthread_exit(NULL);
  default:
    break;
  }
  return BW_CONTINUE;
}

static void w_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  w_state_t *st = state;
  bwt_lock(&sync_);
  terms++;
  if (reason->kind >= 0 && reason->kind < BW_REASON__COUNT)
    term_by_kind[reason->kind]++;
  if (reason->kind == BW_REASON_CRASH)
    last_crash = *reason;
  handled_by_handlers += st->handled;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t w = {
    .name = "w",
    .state_size = sizeof(w_state_t),
    .init = w_init,
    .handle = w_handle,
    .terminate = w_terminate,
};

static bw_pid_t spawn_w(bw_runtime_t *rt, bool dedicated, bool trap) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = dedicated;
  o.trap_exit = trap;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &w, NULL, &o, &pid), 0);
  return pid;
}

typedef struct stopper {
  bw_runtime_t *rt;
  int rc;
} stopper_t;

static void *stop_thread(void *arg) {
  stopper_t *s = arg;
  s->rc = bw_runtime_stop(s->rt);
  return NULL;
}

static void test_stop_with_nonempty_mailboxes(void **state) {
  (void)state;
  reset();
  bwt_gate_init(&gate);
  bw_runtime_t *rt = bwt_runtime(2, true);
  enum { NORMAL = 50, TRAP = 5, BLOCKED = 3, PER = 10, BACKLOG = 100, MOVES = 3, TIMERS = 3 };
  bw_pid_t normal[NORMAL], trap[TRAP], blocked[BLOCKED];
  for (int i = 0; i < NORMAL; i++)
    normal[i] = spawn_w(rt, false, false);
  for (int i = 0; i < TRAP; i++)
    trap[i] = spawn_w(rt, false, true);
  for (int i = 0; i < BLOCKED; i++) {
    blocked[i] = spawn_w(rt, true, false);
    assert_int_equal(bw_send(rt, blocked[i], T_BLOCK, NULL, 0), 0);
  }
  assert_true(bwt_gate_await_waiting(&gate, BLOCKED));

  for (int k = 0; k < PER; k++) {
    for (int i = 0; i < NORMAL; i++)
      assert_int_equal(bw_send(rt, normal[i], T_DATA, &k, sizeof k), 0);
    for (int i = 0; i < TRAP; i++)
      assert_int_equal(bw_send(rt, trap[i], T_DATA, &k, sizeof k), 0);
  }
  for (int i = 0; i < BLOCKED; i++)
    for (int k = 0; k < BACKLOG; k++)
      assert_int_equal(bw_send(rt, blocked[i], T_DATA, &k, sizeof k), 0);
  for (int k = 0; k < MOVES; k++) {
    void *p = malloc(32);
    assert_non_null(p);
    assert_int_equal(bw_send_move(rt, blocked[0], T_MOVE, p, 32, counting_dtor), 0);
  }
  for (int k = 0; k < TIMERS; k++)
    assert_int_equal(bw_send_after(rt, normal[0], 1000, T_DATA, &k, sizeof k, NULL), 0);

  /* stop while three actors hold their handlers, their mailboxes full */
  stopper_t st = {rt, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, stop_thread, &st), 0);
  /* stop refuses new spawns from its start (sends may still be accepted,
   * for ordered shutdowns): spawn until refused, to know it has begun */
  int extra = 0; /* actors spawned before the stop began */
  struct timespec dl = bwt_deadline();
  for (;;) {
    int src = bw_spawn(rt, &w, NULL, NULL, NULL);
    if (src == BW_ESHUTDOWN)
      break;
    assert_int_equal(src, 0);
    extra++;
    if (bwt_past(&dl))
      fail_msg("bw_spawn still succeeds after bw_runtime_stop began");
    sched_yield();
  }
  bwt_gate_open(&gate);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(st.rc, 0);

  bwt_lock(&sync_);
  assert_int_equal(terms, NORMAL + TRAP + BLOCKED + extra);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], NORMAL + TRAP + BLOCKED + extra);
  assert_int_equal(dtor_calls, MOVES);
  uint64_t seen = handled_by_handlers;
  bwt_unlock(&sync_);

  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.spawned, NORMAL + TRAP + BLOCKED + extra);
  assert_int_equal(s.exited, NORMAL + TRAP + BLOCKED + extra);
  assert_int_equal(s.crashed, 0);
  assert_int_equal(s.handled, seen);
  bwt_assert_accounting(&s);
  assert_int_equal(s.dead_by_reason[BW_DL_SHUTDOWN] + s.dead_by_reason[BW_DL_EXITED], s.dead_letters);
  /* the pending timers at least; how much of the backlogs was handled
   * before each actor got its shutdown is a race with the stop */
  assert_true(s.dead_by_reason[BW_DL_SHUTDOWN] >= TIMERS);
  /* everything sent is accounted for */
  assert_true(s.sent >= (uint64_t)(NORMAL + TRAP) * PER + BLOCKED * (BACKLOG + 1) + MOVES + TIMERS);
  for (int i = 0; i < BLOCKED; i++)
    assert_false(bw_is_alive(rt, blocked[i]));
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&gate);
}

static void test_stop_dead_letters_pending_timers(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t a = spawn_w(rt, false, false);
  for (int k = 0; k < 3; k++)
    assert_int_equal(bw_send_after(rt, a, 1000 + k, T_DATA, &k, sizeof k, NULL), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, a, T_GET, NULL, 0, 0, &rep), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_SHUTDOWN], 3);
  assert_int_equal(s.dead_letters, 3);
  bwt_assert_accounting(&s);
  bwt_lock(&sync_);
  assert_int_equal(terms, 1);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], 1);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_calls_after_stop(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t a = spawn_w(rt, false, false);
  bw_pid_t sub = spawn_w(rt, false, false);
  assert_int_equal(bw_register(rt, "a", a), 0);
  bw_timer_t t = 0;
  int v = 1;
  assert_int_equal(bw_send_after(rt, a, 10, T_DATA, &v, sizeof v, &t), 0);
  assert_int_equal(bw_clock_advance(rt, 10), 0); /* fired */
  bw_timer_t t2 = 0;
  assert_int_equal(bw_send_interval(rt, a, 10, T_DATA, &v, sizeof v, &t2), 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s0 = bwt_stats(rt);
  int inits = 0;
  bwt_lock(&sync_);
  inits = init_calls;
  bwt_unlock(&sync_);

  assert_int_equal(bw_runtime_stop(rt), BW_ESHUTDOWN);
  assert_int_equal(bw_send(rt, a, T_DATA, &v, sizeof v), BW_ESHUTDOWN);
  assert_int_equal(bw_send_named(rt, "a", T_DATA, &v, sizeof v), BW_ESHUTDOWN);
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &w, NULL, NULL, &p), BW_ESHUTDOWN);
  assert_int_equal(bw_send_after(rt, a, 10, T_DATA, &v, sizeof v, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_send_interval(rt, a, 10, T_DATA, &v, sizeof v, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_timer_cancel(rt, t2), BW_ESHUTDOWN);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, a, T_GET, NULL, 0, 0, &rep), BW_ESHUTDOWN);
  assert_int_equal(bw_register(rt, "b", a), BW_ESHUTDOWN);
  assert_int_equal(bw_exit(rt, a, BW_REASON_KILL, 0, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_clock_advance(rt, 10), BW_ESHUTDOWN);
  assert_int_equal(bw_dead_letter_subscribe(rt, sub), BW_ESHUTDOWN);
  char *mp = malloc(4);
  assert_non_null(mp);
  assert_int_equal(bw_send_move(rt, a, T_MOVE, mp, 4, counting_dtor), BW_ESHUTDOWN);
  free(mp); /* the caller kept it */
  assert_false(bw_is_alive(rt, a));

  /* failed calls changed nothing */
  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.sent, s0.sent);
  assert_int_equal(s1.dead_letters, s0.dead_letters);
  assert_int_equal(s1.spawned, s0.spawned);
  bwt_assert_accounting(&s1);
  bwt_lock(&sync_);
  assert_int_equal(init_calls, inits);
  assert_int_equal(dtor_calls, 0);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_stop_from_inside_actor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a = spawn_w(rt, false, false);
  bw_pid_t d = spawn_w(rt, true, false);
  bw_reply_t rep;
  int rc;
  assert_int_equal(bw_call(rt, a, T_STOP_RT, NULL, 0, 0, &rep), 0);
  memcpy(&rc, rep.data, sizeof rc);
  assert_int_equal(rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_call(rt, d, T_STOP_RT, NULL, 0, 0, &rep), 0);
  memcpy(&rc, rep.data, sizeof rc);
  assert_int_equal(rc, BW_EWOULDBLOCK);
  /* still running */
  assert_int_equal(bw_call(rt, a, T_GET, NULL, 0, 0, &rep), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_destroy(rt);
}

static void test_destroy_without_stop(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  for (int i = 0; i < 10; i++) {
    bw_pid_t p = spawn_w(rt, i % 3 == 0, false);
    for (int k = 0; k < 20; k++)
      assert_int_equal(bw_send(rt, p, T_DATA, &k, sizeof k), 0);
    void *m = malloc(8);
    assert_non_null(m);
    assert_int_equal(bw_send_move(rt, p, T_MOVE, m, 8, counting_dtor), 0);
  }
  bw_runtime_destroy(rt);
  bwt_lock(&sync_);
  assert_int_equal(terms, 10);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], 10);
  assert_int_equal(dtor_calls, 10);
  bwt_unlock(&sync_);
  bw_runtime_destroy(NULL);
}

/* --- what must not hang -------------------------------------------------- */

static bw_pid_t spawn_opts(bw_runtime_t *rt, bool dedicated, bool trap, bool root) {
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.dedicated_thread = dedicated;
  o.trap_exit = trap;
  o.ordered_shutdown = root;
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &w, NULL, &o, &pid), 0);
  return pid;
}

/* A kill needs no memory: with every allocation failing, bw_exit(KILL)
 * returns 0 and the actor is gone (it used to queue a wake-up message that
 * could not be allocated, and the idle actor lived on). Same for an urgent
 * exit signal whose own message could still be allocated. */
static void test_kill_without_memory(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t a = spawn_opts(rt, false, false, false);
  bw_pid_t t = spawn_opts(rt, false, true, false);
  bw_pid_t d = spawn_opts(rt, true, false, false);
  bw_pid_t u = spawn_opts(rt, false, false, false);
  bw_reply_t rep;
  for (int i = 0; i < 2; i++) /* all idle, their mailboxes marked empty */
    assert_int_equal(bw_call(rt, i ? d : a, T_GET, NULL, 0, 0, &rep), 0);
  bw__test_alloc_fail_after(rt, 0);
  assert_int_equal(bw_spawn(rt, &w, NULL, NULL, NULL), BW_ENOMEM);
  int v = 1;
  assert_int_equal(bw_send(rt, a, T_DATA, &v, sizeof v), BW_ENOMEM);
  assert_int_equal(bw_exit(rt, a, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_exit(rt, t, BW_REASON_KILL, 0, NULL), 0); /* traps: still dies */
  assert_int_equal(bw_exit(rt, d, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(!bw_is_alive(rt, a) && !bw_is_alive(rt, t) && !bw_is_alive(rt, d));
  /* an urgent (non-trapping) exit: its reason is a message, which may
   * fail with BW_ENOMEM; once it is accepted, the wake-up needs nothing */
  assert_int_equal(bw_exit(rt, u, BW_REASON_SHUTDOWN, 0, NULL), BW_ENOMEM);
  assert_true(bw_is_alive(rt, u));
  bw__test_alloc_fail_after(rt, 1);
  assert_int_equal(bw_exit(rt, u, BW_REASON_SHUTDOWN, 7, "go"), 0);
  BWT_POLL(!bw_is_alive(rt, u));
  bw__test_alloc_fail_after(rt, -1);
  bwt_lock(&sync_);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], 1); /* a kill skips terminate */
  assert_int_equal(terms, 1);
  bwt_unlock(&sync_);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.exited, 4);
  bw_runtime_destroy(rt);
}

typedef struct destroyer {
  bw_runtime_t *rt;
  atomic_int done;
} destroyer_t;

static void *destroy_thread(void *arg) {
  destroyer_t *d = arg;
  bw_runtime_destroy(d->rt);
  atomic_store(&d->done, 1);
  return NULL;
}

/* After bw_spawn failed with BW_ENOMEM, destroy (stop) still ends, and
 * every actor runs terminate: plain, trapping, dedicated, and a trapping
 * root whose ordered shutdown signal cannot be allocated. It used to wait
 * forever for actors whose shutdown wake-up had failed to allocate. */
static void test_destroy_without_memory(void **state) {
  (void)state;
  reset();
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = 2;
  o.manual_clock = true;
  o.stop_grace_ms = 60000; /* a root that is never told would hold it up */
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  enum { PLAIN = 20, TRAP = 5, DED = 2, ROOTS = 2 };
  for (int i = 0; i < PLAIN; i++)
    spawn_opts(rt, false, false, false);
  for (int i = 0; i < TRAP; i++)
    spawn_opts(rt, false, true, false);
  for (int i = 0; i < DED; i++)
    spawn_opts(rt, true, false, false);
  for (int i = 0; i < ROOTS; i++)
    spawn_opts(rt, false, true, true);
  int spawned = PLAIN + TRAP + DED + ROOTS;
  bw__test_alloc_fail_after(rt, 0);
  assert_int_equal(bw_spawn(rt, &w, NULL, NULL, NULL), BW_ENOMEM);
  destroyer_t d = {rt, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, destroy_thread, &d), 0);
  BWT_POLL(atomic_load(&d.done) == 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  bwt_lock(&sync_);
  assert_int_equal(terms, spawned);
  assert_int_equal(term_by_kind[BW_REASON_SHUTDOWN], spawned);
  bwt_unlock(&sync_);
}

/* bw_runtime_destroy from inside a handler would wait for itself: it aborts
 * the process with a message that says why (checked in a child process,
 * whose alarm turns the old hang into a failure). */
static void test_destroy_from_handler_aborts(void **state) {
  (void)state;
  if (getenv("BW_TEST_VALGRIND") != NULL)
    skip(); /* valgrind reports the child's abort as an error exit */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    alarm(20);
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    bwt_quiet_log(&o);
    o.workers = 1;
    bw_runtime_t *rt = NULL;
    if (bw_runtime_create(&o, &rt) != 0)
      _exit(3);
    bw_pid_t p;
    if (bw_spawn(rt, &w, NULL, NULL, &p) != 0 || bw_send(rt, p, T_DESTROY_RT, NULL, 0) != 0)
      _exit(4);
    for (;;)
      pause();
  }
  close(fds[1]);
  char buf[1024];
  size_t n = 0;
  ssize_t k;
  while (n < sizeof buf - 1 && (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)k;
  buf[n] = '\0';
  close(fds[0]);
  int wst = 0;
  assert_int_equal(waitpid(child, &wst, 0), child);
  assert_true(WIFSIGNALED(wst));
  assert_int_equal(WTERMSIG(wst), SIGABRT);
  assert_non_null(strstr(buf, "bw_runtime_destroy called from inside an actor"));
}

/* A handler that calls pthread_exit: the actor counts as crashed (its
 * terminate sees reason crash, as links and monitors do), a new thread
 * takes over the worker (one worker here, so the next call proves it), and
 * destroy ends. The same on a dedicated thread. Both used to hang destroy
 * without a word. */
static void test_pthread_exit_in_handler(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(1, false);
  for (int i = 0; i < 2; i++) {
    bool dedicated = i == 1;
    bw_pid_t a = spawn_opts(rt, dedicated, false, false);
    assert_int_equal(bw_send(rt, a, T_PTHREAD_EXIT, NULL, 0), 0);
    BWT_POLL(!bw_is_alive(rt, a));
    bwt_lock(&sync_);
    assert_int_equal(term_by_kind[BW_REASON_CRASH], i + 1);
    assert_int_equal(last_crash.code, BW_ECRASH);
    assert_non_null(strstr(last_crash.text, "pthread_exit"));
    bwt_unlock(&sync_);
    bw_pid_t b = spawn_opts(rt, false, false, false);
    bw_reply_t rep;
    assert_int_equal(bw_call(rt, b, T_GET, NULL, 0, 1000ull * BWT_WAIT_SECONDS, &rep), 0);
  }
  bwt_lock(&sync_);
  assert_int_equal(term_by_kind[BW_REASON_CRASH], 2);
  bwt_unlock(&sync_);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.crashed, 2);
  destroyer_t d = {rt, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, destroy_thread, &d), 0);
  BWT_POLL(atomic_load(&d.done) == 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  bwt_lock(&sync_);
  assert_int_equal(terms, 4); /* and the two callees, at shutdown */
  bwt_unlock(&sync_);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stop_with_nonempty_mailboxes),
      cmocka_unit_test(test_stop_dead_letters_pending_timers),
      cmocka_unit_test(test_calls_after_stop),
      cmocka_unit_test(test_stop_from_inside_actor),
      cmocka_unit_test(test_destroy_without_stop),
      cmocka_unit_test(test_kill_without_memory),
      cmocka_unit_test(test_destroy_without_memory),
      cmocka_unit_test(test_destroy_from_handler_aborts),
      cmocka_unit_test(test_pthread_exit_in_handler),
  };
  return BWT_RUN_SUITE(tests);
}
