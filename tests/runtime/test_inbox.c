/*
 * Inboxes (bulwark/inbox.h): a thread's pid and mailbox. Receiving (wait,
 * poll, timeout, selective), requests both ways, links and monitors,
 * closing by destroy, by the runtime's stop and by a kill, names, moved
 * payloads, the calls refused on a scheduler thread, and the accounting
 * invariant across all of it.
 *
 * Time: a receive's timeout is real time (the thread is not an actor), so
 * it is tested with 0 (poll), with a message already there, and with one
 * short bounded wait; request deadlines are on the runtime's clock, manual
 * here.
 */
#include "support.h"

enum { T_ECHO = 1, T_SEND_BACK, T_CRASH, T_STOP, T_HOLD, T_ASK_INBOX, T_NOTE, T_LINK_TO };

/* An actor that echoes requests, sends plain messages back to their
 * sender, crashes or stops when told, and can ask its own questions. */
typedef struct echo {
  bw_pid_t inbox; /* where T_ASK_INBOX's answer is reported */
  uint64_t ask_ref;
} echo_t;

static int echo_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  echo_t *e = st;
  if (m->flags & BW_MSGF_REPLY) { /* the inbox answered T_ASK_INBOX */
    int v = m->status == 0 && m->len == sizeof(int) ? *(const int *)m->data : -1;
    bw_send(bw_ctx_runtime(ctx), e->inbox, T_NOTE, &v, sizeof v);
    return BW_CONTINUE;
  }
  switch (m->type) {
  case T_ECHO:
    if (m->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, m, 0, T_ECHO, m->data, m->len);
    return BW_CONTINUE;
  case T_SEND_BACK:
    bw_send(bw_ctx_runtime(ctx), m->from, T_SEND_BACK, m->data, m->len);
    return BW_CONTINUE;
  case T_CRASH:
    bw_fail(ctx, -42, "told to crash");
  case T_STOP:
    return BW_STOP;
  case T_HOLD: /* a request kept unanswered */
    return BW_CONTINUE;
  case T_ASK_INBOX: { /* payload: the inbox's pid; asks it a question */
    memcpy(&e->inbox, m->data, sizeof e->inbox);
    int q = 20;
    bw_request(ctx, e->inbox, T_ECHO, &q, sizeof q, 0, &e->ask_ref);
    return BW_CONTINUE;
  }
  case T_LINK_TO: { /* payload: a pid to link to, and where to report exits */
    bw_pid_t p[2];
    memcpy(p, m->data, sizeof p);
    e->inbox = p[1];
    bw_trap_exit(ctx, true);
    bw_link(ctx, p[0]);
    return BW_CONTINUE;
  }
  case BW_MSG_EXIT: { /* a trapped exit: its reason's kind, reported */
    const bw_reason_t *r = m->data;
    int kind = r->kind;
    bw_send(bw_ctx_runtime(ctx), e->inbox, T_NOTE, &kind, sizeof kind);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t echo_b = {.name = "echo", .state_size = sizeof(echo_t),
                                      .handle = echo_handle};

static bw_pid_t spawn_echo(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &echo_b, NULL, NULL, &p), 0);
  return p;
}

static bw_inbox_t *inbox_new(bw_runtime_t *rt) {
  bw_inbox_t *ib = NULL;
  assert_int_equal(bw_inbox_new(rt, NULL, &ib), 0);
  assert_non_null(ib);
  return ib;
}

/* A receive that must succeed, waiting as long as the tests' deadline. */
static const bw_msg_t *recv_ok(bw_inbox_t *ib) {
  const bw_msg_t *m = NULL;
  assert_int_equal(bw_inbox_receive(ib, BWT_WAIT_SECONDS * 1000u, &m), 0);
  assert_non_null(m);
  return m;
}

static const bw_msg_t *recv_match_ok(bw_inbox_t *ib, uint32_t type, uint64_t ref) {
  const bw_msg_t *m = NULL;
  assert_int_equal(bw_inbox_receive_match(ib, type, ref, BWT_WAIT_SECONDS * 1000u, &m), 0);
  assert_non_null(m);
  return m;
}

/* Waits until pid is past its exit path: sends to it then fail at once
 * (while it exits they still land, and its exit path answers them). */
static void gone(bw_runtime_t *rt, bw_pid_t pid) {
  uint32_t d;
  BWT_POLL(bw_mailbox_depth(rt, pid, &d) == BW_ENOPROC);
}

static void finish(bw_runtime_t *rt) {
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_int_equal(s.live, 0);
  bw_runtime_destroy(rt);
}

/* --- receiving ---------------------------------------------------------------- */

static void test_receive_from_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  bw_pid_t me = bw_inbox_pid(ib), e = spawn_echo(rt);
  assert_true(bw_is_alive(rt, me));
  assert_int_not_equal(me, e);
  /* the actor answers the inbox's pid with a plain send */
  for (int i = 0; i < 100; i++)
    assert_int_equal(bw_inbox_send(ib, e, T_SEND_BACK, &i, sizeof i), 0);
  for (int i = 0; i < 100; i++) {
    const bw_msg_t *m = recv_ok(ib);
    assert_int_equal(m->type, T_SEND_BACK);
    assert_int_equal(m->from, e);
    assert_int_equal(m->len, sizeof i);
    assert_int_equal(*(const int *)m->data, i); /* in send order */
  }
  bw_inbox_destroy(ib);
  assert_false(bw_is_alive(rt, me));
  finish(rt);
}

static void test_poll_and_short_wait(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  const bw_msg_t *m = (const bw_msg_t *)&m;
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT); /* nothing there */
  assert_null(m);
  /* a message already there: a poll takes it, from a plain thread's send */
  int v = 7;
  assert_int_equal(bw_send(rt, bw_inbox_pid(ib), 5, &v, sizeof v), 0);
  uint32_t depth = 0;
  assert_int_equal(bw_mailbox_depth(rt, bw_inbox_pid(ib), &depth), 0);
  assert_int_equal(depth, 1);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), 0);
  assert_int_equal(m->type, 5);
  assert_int_equal(m->from, BW_PID_NONE);
  assert_int_equal(*(const int *)m->data, 7);
  /* one short real wait: it times out, not before its time, and not much
   * after (generous: a loaded machine) */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(bw_inbox_receive(ib, 30, &m), BW_ETIMEDOUT);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  assert_true(ms >= 29);
  assert_true(ms < 30 * 1000);
  /* the manual clock does not move a receive's timeout: a message sent
   * after the timed-out wait (its post is stale now) is still received */
  assert_int_equal(bw_send(rt, bw_inbox_pid(ib), 6, NULL, 0), 0);
  assert_int_equal(recv_ok(ib)->type, 6);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT);
  bw_inbox_destroy(ib);
  finish(rt);
}

/* A thread that sends to the inbox once the main thread is likely asleep
 * in its receive: the wake-up path (not a timing assertion). */
typedef struct later {
  bw_runtime_t *rt;
  bw_pid_t to;
  int n;
} later_t;

static void *send_later(void *p) {
  later_t *l = p;
  for (int i = 0; i < l->n; i++) {
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    bw_send(l->rt, l->to, 9, &i, sizeof i);
  }
  return NULL;
}

static void test_blocking_receive_wakes(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  later_t l = {rt, bw_inbox_pid(ib), 20};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, send_later, &l), 0);
  for (int i = 0; i < l.n; i++) {
    const bw_msg_t *m = NULL;
    assert_int_equal(bw_inbox_receive(ib, BW_INBOX_FOREVER, &m), 0);
    assert_int_equal(*(const int *)m->data, i);
  }
  pthread_join(th, NULL);
  bw_inbox_destroy(ib);
  finish(rt);
}

static void test_receive_match(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  bw_pid_t me = bw_inbox_pid(ib);
  for (int i = 0; i < 6; i++) /* types 1 2 1 2 1 2 */
    assert_int_equal(bw_send(rt, me, 1 + (uint32_t)(i % 2), &i, sizeof i), 0);
  const bw_msg_t *m;
  /* the first type 2 (i = 1); the type 1s before it stay, in order */
  m = recv_match_ok(ib, 2, 0);
  assert_int_equal(*(const int *)m->data, 1);
  assert_int_equal(bw_inbox_receive_match(ib, 3, 0, 0, &m), BW_ETIMEDOUT); /* none */
  assert_int_equal(bw_inbox_receive_match(ib, 2, 0, 0, &m), 0);
  assert_int_equal(*(const int *)m->data, 3);
  for (int want = 0; want <= 5; want++) {
    if (want == 1 || want == 3)
      continue;
    m = recv_ok(ib);
    assert_int_equal(*(const int *)m->data, want); /* arrival order kept */
  }
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT);
  /* any type, by ref: a reply among other messages */
  bw_pid_t e = spawn_echo(rt);
  uint64_t r1, r2;
  int a = 1, b = 2;
  assert_int_equal(bw_inbox_request(ib, e, T_ECHO, &a, sizeof a, 0, &r1), 0);
  assert_int_equal(bw_inbox_request(ib, e, T_ECHO, &b, sizeof b, 0, &r2), 0);
  assert_int_equal(bw_send(rt, me, 4, NULL, 0), 0);
  m = recv_match_ok(ib, BW_INBOX_ANY_TYPE, r2);
  assert_true(m->flags & BW_MSGF_REPLY);
  assert_int_equal(*(const int *)m->data, 2);
  m = recv_match_ok(ib, T_ECHO, r1);
  assert_int_equal(*(const int *)m->data, 1);
  assert_int_equal(recv_ok(ib)->type, 4);
  bw_inbox_destroy(ib);
  finish(rt);
}

/* --- requests both ways -------------------------------------------------------- */

static void test_request_reply_and_deadline(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  bw_pid_t e = spawn_echo(rt);
  uint64_t ref;
  int v = 11;
  assert_int_equal(bw_inbox_request(ib, e, T_ECHO, &v, sizeof v, 1000, &ref), 0);
  const bw_msg_t *m = recv_match_ok(ib, BW_INBOX_ANY_TYPE, ref);
  assert_int_equal(m->status, 0);
  assert_int_equal(m->from, e);
  assert_int_equal(*(const int *)m->data, 11);
  /* a deadline on the runtime's clock: an unanswered request times out */
  assert_int_equal(bw_inbox_request(ib, e, T_HOLD, NULL, 0, 100, &ref), 0);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT);
  assert_int_equal(bw_clock_advance(rt, 100), 0);
  m = recv_match_ok(ib, BW_MSG_REQUEST_TIMEOUT, ref);
  assert_int_equal(m->ref, ref);
  /* the target dies holding a request: the reply says BW_ENOPROC */
  assert_int_equal(bw_inbox_request(ib, e, T_HOLD, NULL, 0, 0, &ref), 0);
  assert_int_equal(bw_send(rt, e, T_STOP, NULL, 0), 0);
  m = recv_match_ok(ib, BW_INBOX_ANY_TYPE, ref);
  assert_true(m->flags & BW_MSGF_REPLY);
  assert_int_equal(m->status, BW_ENOPROC);
  /* to a dead pid: refused at once */
  gone(rt, e);
  assert_int_equal(bw_inbox_request(ib, e, T_ECHO, NULL, 0, 0, &ref), BW_ENOPROC);
  bw_inbox_destroy(ib);
  finish(rt);
}

/* Asks the inbox's pid with bw_call from another thread. */
typedef struct caller {
  bw_runtime_t *rt;
  bw_pid_t to;
  int rc, got;
} caller_t;

static void *call_inbox(void *p) {
  caller_t *c = p;
  int q = 5;
  bw_reply_t r;
  c->rc = bw_call(c->rt, c->to, T_ECHO, &q, sizeof q, 0, &r);
  if (c->rc == 0)
    memcpy(&c->got, r.data, sizeof c->got);
  return NULL;
}

static void test_inbox_answers_requests(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  /* from a plain thread's bw_call */
  caller_t c = {rt, bw_inbox_pid(ib), -1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, call_inbox, &c), 0);
  const bw_msg_t *m = recv_ok(ib);
  assert_true(m->flags & BW_MSGF_REQUEST);
  int a = *(const int *)m->data * 2;
  bw_msg_t copy = *m; /* a copy answers as well as the message */
  assert_int_equal(bw_inbox_reply(ib, &copy, 0, T_ECHO, &a, sizeof a), 0);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.got, 10);
  /* from an actor's bw_request: its reply handler reports to us */
  bw_pid_t e = spawn_echo(rt), me = bw_inbox_pid(ib);
  assert_int_equal(bw_send(rt, e, T_ASK_INBOX, &me, sizeof me), 0);
  m = recv_ok(ib);
  assert_int_equal(m->from, e);
  assert_true(m->flags & BW_MSGF_REQUEST);
  a = *(const int *)m->data + 1;
  assert_int_equal(bw_inbox_reply(ib, m, 0, T_ECHO, &a, sizeof a), 0);
  m = recv_match_ok(ib, T_NOTE, 0);
  assert_int_equal(*(const int *)m->data, 21);
  assert_int_equal(bw_inbox_reply(ib, m, 0, 0, NULL, 0), BW_EINVAL); /* not a request */
  bw_inbox_destroy(ib);
  finish(rt);
}

/* --- monitors and links ---------------------------------------------------------- */

static void test_monitor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  bw_pid_t e = spawn_echo(rt), f = spawn_echo(rt);
  uint64_t ref, ref2;
  assert_int_equal(bw_inbox_monitor(ib, e, &ref), 0);
  assert_int_equal(bw_inbox_monitor(ib, f, &ref2), 0);
  assert_int_equal(bw_inbox_demonitor(ib, ref2), 0);
  assert_int_equal(bw_inbox_demonitor(ib, ref2), BW_ENOTFOUND);
  assert_int_equal(bw_send(rt, f, T_STOP, NULL, 0), 0); /* no DOWN: demonitored */
  assert_int_equal(bw_send(rt, e, T_CRASH, NULL, 0), 0);
  const bw_msg_t *m = recv_ok(ib);
  assert_int_equal(m->type, BW_MSG_DOWN);
  assert_int_equal(m->ref, ref);
  assert_int_equal(m->from, e);
  const bw_reason_t *r = m->data;
  assert_int_equal(r->kind, BW_REASON_CRASH);
  assert_int_equal(r->code, -42);
  /* a dead pid: DOWN noproc at once */
  gone(rt, e);
  assert_int_equal(bw_inbox_monitor(ib, e, &ref), 0);
  m = recv_ok(ib);
  assert_int_equal(m->type, BW_MSG_DOWN);
  assert_int_equal(((const bw_reason_t *)m->data)->kind, BW_REASON_NOPROC);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT);
  /* a DOWN that receive_match passed over goes with its monitor */
  bw_pid_t g = spawn_echo(rt), me = bw_inbox_pid(ib);
  assert_int_equal(bw_inbox_monitor(ib, g, &ref), 0);
  assert_int_equal(bw_send(rt, g, T_STOP, NULL, 0), 0);
  uint32_t depth = 0;
  BWT_POLL(bw_mailbox_depth(rt, me, &depth) == 0 && depth >= 1); /* the DOWN is queued */
  assert_int_equal(bw_inbox_receive_match(ib, T_NOTE, 0, 0, &m), BW_ETIMEDOUT);
  assert_int_equal(bw_inbox_demonitor(ib, ref), 0);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT);
  bw_inbox_destroy(ib);
  finish(rt);
}

static void test_links(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt), *ib2 = inbox_new(rt);
  bw_pid_t me = bw_inbox_pid(ib);
  /* the inbox links to an actor that crashes: an exit message, not a death */
  bw_pid_t e = spawn_echo(rt);
  assert_int_equal(bw_inbox_link(ib, e), 0);
  assert_int_equal(bw_send(rt, e, T_CRASH, NULL, 0), 0);
  const bw_msg_t *m = recv_ok(ib);
  assert_int_equal(m->type, BW_MSG_EXIT);
  assert_int_equal(m->from, e);
  assert_int_equal(((const bw_reason_t *)m->data)->kind, BW_REASON_CRASH);
  /* to a dead pid: BW_ENOPROC and an exit message noproc */
  gone(rt, e);
  assert_int_equal(bw_inbox_link(ib, e), BW_ENOPROC);
  m = recv_ok(ib);
  assert_int_equal(m->type, BW_MSG_EXIT);
  assert_int_equal(((const bw_reason_t *)m->data)->kind, BW_REASON_NOPROC);
  /* unlinked before it crashes: no exit (the unlink is queued first) */
  bw_pid_t u = spawn_echo(rt);
  assert_int_equal(bw_inbox_link(ib, u), 0);
  assert_int_equal(bw_inbox_unlink(ib, u), 0);
  assert_int_equal(bw_send(rt, u, T_CRASH, NULL, 0), 0);
  assert_int_equal(bw_wait_exit(rt, u, 0, NULL), 0);
  /* a trapping actor links itself to the inbox and reports to ib2; a
   * plain one is linked by the inbox */
  bw_pid_t t = spawn_echo(rt), plain = spawn_echo(rt);
  bw_pid_t link_to[2] = {me, bw_inbox_pid(ib2)};
  assert_int_equal(bw_send(rt, t, T_LINK_TO, link_to, sizeof link_to), 0);
  assert_int_equal(bw_inbox_link(ib, plain), 0);
  uint64_t ref; /* t has linked once it answers */
  assert_int_equal(bw_inbox_request(ib, t, T_ECHO, NULL, 0, 0, &ref), 0);
  recv_match_ok(ib, BW_INBOX_ANY_TYPE, ref);
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ETIMEDOUT); /* none from u */
  /* destroy: reason normal; the trapping actor is told, the plain one
   * ignores it and lives */
  bw_inbox_destroy(ib);
  m = recv_ok(ib2);
  assert_int_equal(m->type, T_NOTE);
  assert_int_equal(m->from, t);
  assert_int_equal(*(const int *)m->data, BW_REASON_NORMAL);
  assert_true(bw_is_alive(rt, plain));
  bw_inbox_destroy(ib2);
  finish(rt);
}

/* --- closing ---------------------------------------------------------------------------- */

static void test_destroy_dead_letters(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  bw_pid_t me = bw_inbox_pid(ib);
  for (int i = 0; i < 5; i++)
    assert_int_equal(bw_send(rt, me, 1 + (uint32_t)(i % 2), NULL, 0), 0);
  const bw_msg_t *m;
  assert_int_equal(bw_inbox_receive_match(ib, 2, 0, 0, &m), 0); /* one passed over */
  bw_runtime_stats_t s0 = bwt_stats(rt);
  bw_inbox_destroy(ib); /* 4 left: dead letters "exited" (1 passed over, 3 queued) */
  bw_runtime_stats_t s1 = bwt_stats(rt);
  assert_int_equal(s1.dead_by_reason[BW_DL_EXITED] - s0.dead_by_reason[BW_DL_EXITED], 4);
  /* a send to the destroyed inbox: noproc */
  assert_int_equal(bw_send(rt, me, 1, NULL, 0), BW_ENOPROC);
  assert_int_equal(bw_runtime_stats(rt, &s1), 0);
  assert_int_equal(s1.dead_by_reason[BW_DL_NOPROC] - s0.dead_by_reason[BW_DL_NOPROC], 1);
  finish(rt);
}

typedef struct receiver {
  bw_inbox_t *ib;
  int rc;
  bool entered;
  bwt_sync_t sync;
} receiver_t;

static void *receive_forever(void *p) {
  receiver_t *r = p;
  bwt_lock(&r->sync);
  r->entered = true;
  bwt_unlock_signal(&r->sync);
  const bw_msg_t *m;
  r->rc = bw_inbox_receive(r->ib, BW_INBOX_FOREVER, &m);
  return NULL;
}

static void test_stop_with_inbox(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  /* one inbox asleep in a receive on another thread, one idle, one with
   * messages queued */
  receiver_t r = {.ib = inbox_new(rt), .rc = 1, .sync = BWT_SYNC_INIT};
  bw_inbox_t *idle = inbox_new(rt), *busy = inbox_new(rt);
  assert_int_equal(bw_send(rt, bw_inbox_pid(busy), 3, NULL, 0), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, receive_forever, &r), 0);
  BWT_AWAIT(&r.sync, r.entered); /* asleep, or about to be: stop ends it either way */
  uint32_t live_before = (uint32_t)bwt_stats(rt).live;
  assert_true(live_before >= 3);
  assert_int_equal(bw_runtime_stop(rt), 0); /* no hang */
  pthread_join(th, NULL);
  assert_int_equal(r.rc, BW_ESHUTDOWN);
  const bw_msg_t *m;
  assert_int_equal(bw_inbox_receive(idle, 0, &m), BW_ESHUTDOWN);
  assert_int_equal(bw_inbox_receive(busy, BW_INBOX_FOREVER, &m), BW_ESHUTDOWN);
  assert_int_equal(bw_inbox_send(idle, bw_inbox_pid(busy), 1, NULL, 0), BW_ESHUTDOWN);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  assert_int_equal(s.live, 0);
  assert_true(s.dead_by_reason[BW_DL_SHUTDOWN] >= 1); /* busy's queued message */
  assert_int_equal(bw_inbox_new(rt, NULL, &idle), BW_ESHUTDOWN);
  bw_inbox_destroy(r.ib);
  bw_inbox_destroy(busy);
  /* idle is left for bw_runtime_destroy to free (no leak under the
   * sanitizers and valgrind) */
  bw_runtime_destroy(rt);
}

/* Neither stopped nor its inbox destroyed: bw_runtime_destroy does both. */
static void test_destroy_runtime_with_inbox(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt);
  assert_int_equal(bw_send_move(rt, bw_inbox_pid(ib), 1, malloc(8), 8, free), 0);
  assert_int_equal(bw_send_move(rt, bw_inbox_pid(ib), 1, malloc(8), 8, free), 0);
  const bw_msg_t *m = recv_ok(ib); /* one held, one queued: both freed */
  (void)m;
  bw_runtime_destroy(rt);
}

static void test_kill_closes(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt), *watch = inbox_new(rt);
  bw_pid_t me = bw_inbox_pid(ib);
  uint64_t ref;
  assert_int_equal(bw_inbox_monitor(watch, me, &ref), 0); /* an inbox monitors an inbox */
  assert_int_equal(bw_send(rt, me, 1, NULL, 0), 0);
  assert_int_equal(bw_exit(rt, me, BW_REASON_SHUTDOWN, 0, NULL), 0); /* trapped */
  const bw_msg_t *m = recv_ok(ib);
  assert_int_equal(m->type, 1);
  m = recv_ok(ib);
  assert_int_equal(m->type, BW_MSG_EXIT);
  assert_int_equal(((const bw_reason_t *)m->data)->kind, BW_REASON_SHUTDOWN);
  /* an untrappable kill closes it at its next call */
  assert_int_equal(bw_exit(rt, me, BW_REASON_KILL, 0, NULL), 0);
  assert_int_equal(bw_inbox_receive(ib, BW_INBOX_FOREVER, &m), BW_ENOPROC);
  assert_false(bw_is_alive(rt, me));
  assert_int_equal(bw_inbox_receive(ib, 0, &m), BW_ENOPROC);
  assert_int_equal(bw_inbox_monitor(ib, bw_inbox_pid(watch), &ref), BW_ENOPROC);
  m = recv_ok(watch);
  assert_int_equal(m->type, BW_MSG_DOWN);
  assert_int_equal(m->from, me);
  assert_int_equal(((const bw_reason_t *)m->data)->kind, BW_REASON_KILLED);
  bw_inbox_destroy(ib);
  bw_inbox_destroy(watch);
  finish(rt);
}

/* --- names, moved payloads, refusals ------------------------------------------------------- */

static int dtor_runs;
static void count_dtor(void *p) {
  free(p);
  dtor_runs++;
}

static void test_named_and_moved(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = NULL, *other = NULL;
  assert_int_equal(bw_inbox_new(rt, "main", &ib), 0);
  bw_pid_t p;
  assert_int_equal(bw_whereis(rt, "main", &p), 0);
  assert_int_equal(p, bw_inbox_pid(ib));
  assert_int_equal(bw_inbox_new(rt, "main", &other), BW_EEXIST);
  assert_null(other);
  assert_int_equal(bw_send_named(rt, "main", 3, NULL, 0), 0);
  assert_int_equal(recv_ok(ib)->type, 3);
  /* moved payloads: freed at the next receive, or taken */
  dtor_runs = 0;
  assert_int_equal(bw_send_move(rt, p, 4, malloc(16), 16, count_dtor), 0);
  assert_int_equal(bw_send_move(rt, p, 4, malloc(16), 16, count_dtor), 0);
  assert_int_equal(bw_send_move(rt, p, 4, malloc(16), 16, count_dtor), 0);
  const bw_msg_t *m = recv_ok(ib);
  assert_true(m->flags & BW_MSGF_MOVED);
  assert_int_equal(dtor_runs, 0);
  m = recv_ok(ib); /* the first one's life ended */
  assert_int_equal(dtor_runs, 1);
  void *mine = bw_inbox_msg_take(ib, m);
  assert_non_null(mine);
  assert_null(bw_inbox_msg_take(ib, m)); /* once */
  free(mine);
  m = recv_ok(ib);
  assert_int_equal(dtor_runs, 1);
  bw_inbox_msg_free(ib, m);
  assert_int_equal(dtor_runs, 2);
  bw_inbox_msg_free(ib, m); /* not the held one any more: ignored */
  bw_inbox_destroy(ib);
  assert_int_equal(bw_whereis(rt, "main", &p), BW_ENOTFOUND);
  assert_int_equal(bw_inbox_new(rt, "main", &ib), 0); /* free again */
  bw_inbox_destroy(ib);
  finish(rt);
}

/* An actor that tries the inbox calls from its handler (a scheduler
 * thread) and reports the codes. */
typedef struct tries {
  bw_inbox_t *ib;
  int rc[4];
} tries_t;

static int try_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)st;
  tries_t *t = *(tries_t *const *)m->data;
  const bw_msg_t *got;
  bw_inbox_t *nib = NULL;
  t->rc[0] = bw_inbox_receive(t->ib, 0, &got);
  t->rc[1] = bw_inbox_send(t->ib, bw_self(ctx), 1, NULL, 0);
  t->rc[2] = bw_inbox_new(bw_ctx_runtime(ctx), NULL, &nib);
  t->rc[3] = bw_inbox_pid(t->ib) != BW_PID_NONE;
  bw_reply(ctx, m, 0, 0, NULL, 0);
  return BW_CONTINUE;
}
static const bw_behaviour_t try_b = {.name = "try", .handle = try_handle};

static void test_refusals(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_inbox_t *ib = inbox_new(rt), *none = NULL;
  const bw_msg_t *m = NULL;
  uint64_t ref;
  char long_name[BW_NAME_MAX + 2];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  assert_int_equal(bw_inbox_new(NULL, NULL, &none), BW_EINVAL);
  assert_int_equal(bw_inbox_new(rt, NULL, NULL), BW_EINVAL);
  assert_int_equal(bw_inbox_new(rt, "", &none), BW_EINVAL);
  assert_int_equal(bw_inbox_new(rt, long_name, &none), BW_EINVAL);
  assert_null(none);
  assert_int_equal(bw_inbox_receive(NULL, 0, &m), BW_EINVAL);
  assert_int_equal(bw_inbox_receive(ib, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_inbox_receive(ib, UINT64_MAX - 1, &m), BW_EINVAL);
  assert_int_equal(bw_inbox_send(NULL, 1, 1, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_inbox_send(ib, bw_inbox_pid(ib), BW_MSG_SYSTEM_BASE, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_inbox_request(NULL, 1, 1, NULL, 0, 0, &ref), BW_EINVAL);
  assert_int_equal(bw_inbox_monitor(ib, 1, NULL), BW_EINVAL);
  assert_int_equal(bw_inbox_link(ib, bw_inbox_pid(ib)), BW_EINVAL);
  assert_int_equal(bw_inbox_demonitor(ib, 12345), BW_ENOTFOUND);
  assert_int_equal(bw_inbox_demonitor(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_inbox_link(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_inbox_unlink(NULL, 1), BW_EINVAL);
  assert_int_equal(bw_inbox_unlink(ib, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_inbox_unlink(ib, 12345), 0); /* not linked */
  assert_int_equal(bw_inbox_reply(NULL, m, 0, 0, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_inbox_receive_match(NULL, 1, 0, 0, &m), BW_EINVAL);
  assert_null(bw_inbox_msg_take(NULL, m));
  assert_null(bw_inbox_msg_take(ib, NULL));
  bw_inbox_msg_free(NULL, m);
  bw_inbox_msg_free(ib, NULL);
  assert_int_equal(bw_inbox_pid(NULL), BW_PID_NONE);
  bw_inbox_destroy(NULL);
  /* on a scheduler thread */
  tries_t t = {.ib = ib};
  tries_t *tp = &t;
  bw_pid_t a;
  bw_reply_t r;
  assert_int_equal(bw_spawn(rt, &try_b, NULL, NULL, &a), 0);
  assert_int_equal(bw_call(rt, a, 1, &tp, sizeof tp, 0, &r), 0);
  assert_int_equal(t.rc[0], BW_EWOULDBLOCK);
  assert_int_equal(t.rc[1], BW_EWOULDBLOCK);
  assert_int_equal(t.rc[2], BW_EWOULDBLOCK);
  assert_int_equal(t.rc[3], 1);
  /* a second receiver while one waits */
  receiver_t rv = {.ib = ib, .rc = 1, .sync = BWT_SYNC_INIT};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, receive_forever, &rv), 0);
  BWT_AWAIT(&rv.sync, rv.entered);
  int rc;
  /* until the other thread is inside, ours may take the lock first and
   * find nothing: poll until it is refused */
  BWT_POLL((rc = bw_inbox_receive(ib, 0, &m)) == BW_ESTATE);
  assert_int_equal(bw_send(rt, bw_inbox_pid(ib), 8, NULL, 0), 0); /* wakes it */
  pthread_join(th, NULL);
  assert_int_equal(rv.rc, 0);
  bw_inbox_destroy(ib);
  finish(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_receive_from_actor),
      cmocka_unit_test(test_poll_and_short_wait),
      cmocka_unit_test(test_blocking_receive_wakes),
      cmocka_unit_test(test_receive_match),
      cmocka_unit_test(test_request_reply_and_deadline),
      cmocka_unit_test(test_inbox_answers_requests),
      cmocka_unit_test(test_monitor),
      cmocka_unit_test(test_links),
      cmocka_unit_test(test_destroy_dead_letters),
      cmocka_unit_test(test_stop_with_inbox),
      cmocka_unit_test(test_destroy_runtime_with_inbox),
      cmocka_unit_test(test_kill_closes),
      cmocka_unit_test(test_named_and_moved),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
