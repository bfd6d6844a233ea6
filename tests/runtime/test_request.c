/*
 * Request/reply: bw_request between actors (the reply has BW_MSGF_REPLY, the
 * request's ref and the replier's status), deadlines on the manual clock
 * (BW_MSG_REQUEST_TIMEOUT, then the late reply is a dead letter), a target
 * that exits before answering (status BW_ENOPROC), bw_call from the main
 * thread (status and payload; BW_ENOPROC for a dead target), bw_reply misuse.
 */
#include "support.h"

enum {
  T_ECHO = 1, T_ECHO_REPLY, T_FAILREQ, T_HOLD, T_RELEASE, T_EXIT_NOW,
  T_CRASH_NOW, T_REPLY_PLAIN, T_REPLY_BIG, T_GO, T_GET, T_STOP, T_MOVE_REPLY,
};

#define MOVE_LEN 1000u

#define MAXEV 32

typedef struct cev {
  uint32_t type;
  uint32_t flags;
  uint64_t ref;
  int32_t status;
  uint32_t len;
  uint32_t val;
  bw_pid_t from;
} cev_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static cev_t evs[MAXEV];
static int nev;
static uint32_t server_flags;
static bw_pid_t server_from;
static bool holding;
static bw_msg_t held;
static int release_rc;
static int plain_reply_rc;
static int dtor_calls;
static void *dtor_arg;
static void *client_took;

static void counting_dtor(void *p) {
  bwt_lock(&sync_);
  dtor_calls++;
  dtor_arg = p;
  bwt_unlock_signal(&sync_);
  free(p);
}

static void reset(void) {
  bwt_lock(&sync_);
  memset(evs, 0, sizeof evs);
  nev = 0;
  server_flags = 0;
  server_from = BW_PID_NONE;
  holding = false;
  release_rc = 1;
  plain_reply_rc = 1;
  dtor_calls = 0;
  dtor_arg = NULL;
  client_took = NULL;
  bwt_unlock(&sync_);
}

static int nevents(void) {
  bwt_lock(&sync_);
  int n = nev;
  bwt_unlock(&sync_);
  return n;
}

static cev_t event_at(int i) {
  bwt_lock(&sync_);
  cev_t e = evs[i];
  bwt_unlock(&sync_);
  return e;
}

/* --- server -------------------------------------------------------------- */

static int server_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  switch (msg->type) {
  case T_ECHO: {
    uint32_t v;
    memcpy(&v, msg->data, sizeof v);
    v++;
    bwt_lock(&sync_);
    server_flags = msg->flags;
    server_from = msg->from;
    bwt_unlock(&sync_);
    bw_reply(ctx, msg, 0, T_ECHO_REPLY, &v, sizeof v);
    return BW_CONTINUE;
  }
  case T_FAILREQ:
    bw_reply(ctx, msg, BW_ECANCELED, T_FAILREQ, NULL, 0);
    return BW_CONTINUE;
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
    uint32_t v = 1;
    int rc = bw_reply(ctx, &h, 0, T_ECHO_REPLY, &v, sizeof v);
    bwt_lock(&sync_);
    release_rc = rc;
    bwt_unlock_signal(&sync_);
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, T_RELEASE, NULL, 0);
    return BW_CONTINUE;
  }
  case T_MOVE_REPLY: {
    /* a reply bigger than BW_MSG_INLINE_MAX, moved */
    uint8_t *p = malloc(MOVE_LEN);
    for (unsigned i = 0; i < MOVE_LEN; i++)
      p[i] = (uint8_t)i;
    if (bw_reply_move(ctx, msg, 0, T_MOVE_REPLY, p, MOVE_LEN, counting_dtor) != 0)
      free(p);
    return BW_CONTINUE;
  }
  case T_EXIT_NOW:
    return BW_STOP;
  case T_CRASH_NOW:
    return BW_ECRASH;
  case T_REPLY_PLAIN: {
    int rc = bw_reply(ctx, msg, 0, T_REPLY_PLAIN, NULL, 0);
    bwt_lock(&sync_);
    plain_reply_rc = rc;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  case T_REPLY_BIG: {
    uint8_t big[BW_MSG_INLINE_MAX + 1];
    memset(big, 0, sizeof big);
    int rc = bw_reply(ctx, msg, 0, T_REPLY_BIG, big, sizeof big);
    /* the first answer was refused: answer again, with its code as status */
    bw_reply(ctx, msg, rc, T_REPLY_BIG, NULL, 0);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t server = {.name = "server", .state_size = 0, .handle = server_handle};

/* --- client: makes requests when told, records what comes back ----------- */

typedef struct go {
  bw_pid_t to;
  uint32_t type;
  uint32_t val;
  uint64_t timeout_ms;
} go_t;

typedef struct go_reply {
  int rc;
  uint64_t ref;
} go_reply_t;

static int client_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  *(int *)state = arg != NULL; /* takes moved replies */
  return 0;
}

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  if (msg->flags & BW_MSGF_REPLY || msg->type == BW_MSG_REQUEST_TIMEOUT) {
    bwt_lock(&sync_);
    if (nev < MAXEV) {
      cev_t *e = &evs[nev];
      e->type = msg->type;
      e->flags = msg->flags;
      e->ref = msg->ref;
      e->status = msg->status;
      e->len = msg->len;
      e->from = msg->from;
      if (msg->len == sizeof(uint32_t))
        memcpy(&e->val, msg->data, sizeof e->val);
      if (msg->flags & BW_MSGF_MOVED)
        e->val = ((const uint8_t *)msg->data)[MOVE_LEN - 1];
    }
    nev++;
    bwt_unlock_signal(&sync_);
    if (msg->type == T_MOVE_REPLY && *(const int *)state) {
      void *p = bw_msg_take(ctx, msg);
      bwt_lock(&sync_);
      client_took = p;
      bwt_unlock_signal(&sync_);
      free(p);
    }
    return BW_CONTINUE;
  }
  switch (msg->type) {
  case T_GO: {
    go_t g;
    memcpy(&g, msg->data, sizeof g);
    go_reply_t r = {0, 0};
    r.rc = bw_request(ctx, g.to, g.type, &g.val, sizeof g.val, g.timeout_ms, &r.ref);
    bw_reply(ctx, msg, 0, T_GO, &r, sizeof r);
    return BW_CONTINUE;
  }
  case T_GET:
    bw_reply(ctx, msg, 0, T_GET, NULL, 0);
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t client = {
    .name = "client", .state_size = sizeof(int), .init = client_init, .handle = client_handle};

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, b, NULL, NULL, &pid), 0);
  return pid;
}

static go_reply_t go(bw_runtime_t *rt, bw_pid_t cl, bw_pid_t to, uint32_t type, uint32_t val,
                     uint64_t timeout_ms) {
  go_t g = {to, type, val, timeout_ms};
  bw_reply_t rep;
  go_reply_t r;
  assert_int_equal(bw_call(rt, cl, T_GO, &g, sizeof g, 0, &rep), 0);
  memcpy(&r, rep.data, sizeof r);
  return r;
}

static void sync_with(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
}

/* --- tests ----------------------------------------------------------------- */

static void test_request_reply_between_actors(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);

  go_reply_t r1 = go(rt, cl, sv, T_ECHO, 41, 0);
  assert_int_equal(r1.rc, 0);
  assert_int_not_equal(r1.ref, 0);
  BWT_AWAIT(&sync_, nev == 1);
  cev_t e = event_at(0);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_int_equal(e.ref, r1.ref);
  assert_int_equal(e.status, 0);
  assert_int_equal(e.type, T_ECHO_REPLY);
  assert_int_equal(e.len, sizeof(uint32_t));
  assert_int_equal(e.val, 42);
  assert_int_equal(e.from, sv);
  bwt_lock(&sync_);
  assert_true(server_flags & BW_MSGF_REQUEST);
  assert_int_equal(server_from, cl);
  bwt_unlock(&sync_);

  go_reply_t r2 = go(rt, cl, sv, T_FAILREQ, 0, 0);
  assert_int_equal(r2.rc, 0);
  assert_int_not_equal(r2.ref, r1.ref);
  BWT_AWAIT(&sync_, nev == 2);
  e = event_at(1);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_int_equal(e.ref, r2.ref);
  assert_int_equal(e.status, BW_ECANCELED);
  assert_int_equal(e.len, 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_letters, 0);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_request_deadline_then_late_reply(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);

  go_reply_t r = go(rt, cl, sv, T_HOLD, 0, 100);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, holding);
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_clock_advance(rt, 2), 0);
  BWT_AWAIT(&sync_, nev == 1);
  cev_t e = event_at(0);
  assert_int_equal(e.type, BW_MSG_REQUEST_TIMEOUT);
  assert_int_equal(e.ref, r.ref);
  assert_false(e.flags & BW_MSGF_REPLY);

  bw_runtime_stats_t before = bwt_stats(rt);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, sv, T_RELEASE, NULL, 0, 0, &rep), 0);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] ==
           before.dead_by_reason[BW_DL_LATE_REPLY] + 1);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 1); /* the late reply was not delivered */

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_LATE_REPLY], 1);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_reply_in_time_cancels_deadline(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, sv, T_ECHO, 1, 100);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 1);
  assert_int_equal(event_at(0).ref, r.ref);
  assert_int_equal(event_at(0).val, 2);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 1); /* no BW_MSG_REQUEST_TIMEOUT after a reply */
  assert_int_equal(bwt_stats(rt).dead_letters, 0);
  bw_runtime_destroy(rt);
}

/* The target stops (BW_STOP) while handling the request, without answering. */
static void test_request_target_stops_before_answering(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, sv, T_EXIT_NOW, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 1);
  cev_t e = event_at(0);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_int_equal(e.ref, r.ref);
  assert_int_equal(e.status, BW_ENOPROC);
  bw_runtime_destroy(rt);
}

/* The target crashes while handling the request, without answering. */
static void test_request_target_crashes_before_answering(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, sv, T_CRASH_NOW, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 1);
  cev_t e = event_at(0);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_int_equal(e.ref, r.ref);
  assert_int_equal(e.status, BW_ENOPROC);
  bw_runtime_destroy(rt);
}

/* The target keeps the request to answer later, then exits without
 * answering it. */
static void test_request_held_then_target_exits(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, sv, T_HOLD, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, holding);
  assert_int_equal(bw_send(rt, sv, T_EXIT_NOW, NULL, 0), 0);
  BWT_AWAIT(&sync_, nev == 1);
  cev_t e = event_at(0);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_int_equal(e.ref, r.ref);
  assert_int_equal(e.status, BW_ENOPROC);
  bw_runtime_destroy(rt);
}

/* A request to a pid that is already dead: refused at once, or answered
 * with BW_ENOPROC. */
static void test_request_to_dead_pid(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  assert_int_equal(bw_exit(rt, sv, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, sv);
  go_reply_t r = go(rt, cl, sv, T_ECHO, 0, 0);
  if (r.rc == 0) {
    BWT_AWAIT(&sync_, nev == 1);
    cev_t e = event_at(0);
    assert_true(e.flags & BW_MSGF_REPLY);
    assert_int_equal(e.ref, r.ref);
    assert_int_equal(e.status, BW_ENOPROC);
  } else {
    assert_int_equal(r.rc, BW_ENOPROC);
  }
  bw_runtime_destroy(rt);
}

static void test_call_status_and_payload(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server);
  bw_reply_t rep;
  memset(&rep, 0, sizeof rep);
  uint32_t v = 9;
  assert_int_equal(bw_call(rt, sv, T_ECHO, &v, sizeof v, 0, &rep), 0);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.type, T_ECHO_REPLY);
  assert_int_equal(rep.len, sizeof v);
  memcpy(&v, rep.data, sizeof v);
  assert_int_equal(v, 10);
  bwt_lock(&sync_);
  assert_true(server_flags & BW_MSGF_REQUEST);
  bwt_unlock(&sync_);

  /* with a deadline that is not reached */
  v = 1;
  assert_int_equal(bw_call(rt, sv, T_ECHO, &v, sizeof v, 100, &rep), 0);
  memcpy(&v, rep.data, sizeof v);
  assert_int_equal(v, 2);

  /* the replier's negative status is the call's result */
  assert_int_equal(bw_call(rt, sv, T_FAILREQ, NULL, 0, 0, &rep), BW_ECANCELED);
  assert_int_equal(rep.status, BW_ECANCELED);
  assert_int_equal(rep.len, 0);

  /* bw_reply refuses a payload above BW_MSG_INLINE_MAX */
  assert_int_equal(bw_call(rt, sv, T_REPLY_BIG, NULL, 0, 0, &rep), BW_ETOOBIG);

  /* bw_reply to a message that is not a request */
  assert_int_equal(bw_send(rt, sv, T_REPLY_PLAIN, NULL, 0), 0);
  BWT_AWAIT(&sync_, plain_reply_rc != 1);
  bwt_lock(&sync_);
  assert_int_equal(plain_reply_rc, BW_EINVAL);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

/* message.h: "The sender is ... BW_PID_NONE from a thread that is not
 * running an actor", which bw_call's request is sent from. */
static void test_call_request_from_non_actor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server);
  bw_reply_t rep;
  uint32_t v = 9;
  assert_int_equal(bw_call(rt, sv, T_ECHO, &v, sizeof v, 0, &rep), 0);
  bwt_lock(&sync_);
  bw_pid_t from = server_from;
  bwt_unlock(&sync_);
  /* the request came from the call's temporary pid (message.h), which is
   * gone once the call has returned */
  assert_true(from != BW_PID_NONE);
  assert_false(bw_is_alive(rt, from));
  assert_int_equal(bw_send(rt, from, T_ECHO, &v, sizeof v), BW_ENOPROC);
  bw_runtime_destroy(rt);
}

static void test_call_dead_or_exiting_target(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv1 = spawn(rt, &server), sv2 = spawn(rt, &server);
  bw_reply_t rep;
  uint32_t v = 0;
  assert_int_equal(bw_call(rt, sv1, T_EXIT_NOW, NULL, 0, 0, &rep), BW_ENOPROC);
  assert_int_equal(bw_call(rt, sv2, T_CRASH_NOW, NULL, 0, 0, &rep), BW_ENOPROC);
  BWT_AWAIT_DEAD(rt, sv1);
  assert_int_equal(bw_call(rt, sv1, T_ECHO, &v, sizeof v, 0, &rep), BW_ENOPROC);
  assert_int_equal(bw_call(rt, 0xDEADBEEFDEADBEEFull, T_ECHO, &v, sizeof v, 0, &rep), BW_ENOPROC);
  bw_runtime_destroy(rt);
}

static void test_reply_to_gone_requester(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, sv, T_HOLD, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, holding);
  assert_int_equal(bw_send(rt, cl, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, cl);

  bw_runtime_stats_t before = bwt_stats(rt);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, sv, T_RELEASE, NULL, 0, 0, &rep), 0);
  bwt_lock(&sync_);
  int rc = release_rc;
  bwt_unlock(&sync_);
  assert_int_equal(rc, BW_ENOPROC);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] ==
           before.dead_by_reason[BW_DL_LATE_REPLY] + 1);
  bw_runtime_destroy(rt);
}

static void test_reply_move(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server);

  /* to bw_call: the caller owns out->ptr and frees it with out->dtor */
  bw_reply_t rep;
  memset(&rep, 0, sizeof rep);
  assert_int_equal(bw_call(rt, sv, T_MOVE_REPLY, NULL, 0, 0, &rep), 0);
  assert_int_equal(rep.type, T_MOVE_REPLY);
  assert_int_equal(rep.len, MOVE_LEN);
  assert_non_null(rep.ptr);
  assert_ptr_equal(rep.dtor, counting_dtor);
  assert_int_equal(((uint8_t *)rep.ptr)[MOVE_LEN - 1], (uint8_t)(MOVE_LEN - 1));
  bwt_lock(&sync_);
  assert_int_equal(dtor_calls, 0);
  bwt_unlock(&sync_);
  rep.dtor(rep.ptr);
  bwt_lock(&sync_);
  assert_int_equal(dtor_calls, 1);
  bwt_unlock(&sync_);

  /* to an actor that does not take it: the runtime frees it after the handler */
  bw_pid_t cl;
  assert_int_equal(bw_spawn(rt, &client, NULL, NULL, &cl), 0);
  go_reply_t r = go(rt, cl, sv, T_MOVE_REPLY, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, dtor_calls == 2);
  cev_t e = event_at(0);
  assert_true(e.flags & BW_MSGF_REPLY);
  assert_true(e.flags & BW_MSGF_MOVED);
  assert_int_equal(e.len, MOVE_LEN);
  assert_int_equal(e.val, (uint8_t)(MOVE_LEN - 1));
  assert_int_equal(e.ref, r.ref);

  /* to an actor that takes it: no destructor */
  bw_pid_t taker;
  assert_int_equal(bw_spawn(rt, &client, (void *)1, NULL, &taker), 0);
  r = go(rt, taker, sv, T_MOVE_REPLY, 0, 0);
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, client_took != NULL);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bwt_lock(&sync_);
  assert_int_equal(dtor_calls, 2);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_request_outside_actor(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_pid_t sv = spawn(rt, &server);
  uint64_t ref = 0;
  uint32_t v = 0;
  int rc = bw_request(NULL, sv, T_ECHO, &v, sizeof v, 0, &ref);
  assert_true(rc == BW_ENOTACTOR || rc == BW_EINVAL);
  bw_runtime_destroy(rt);
}

/* --- many requests in flight, answered out of order ------------------------- */

enum { T_MANY_GO = 900, T_MANY_Q, T_MANY_FLUSH };
#define MANY 10000u

/* Holds every request, then answers them in a scrambled order. */
typedef struct hoarder {
  bw_msg_t held[MANY];
  uint32_t n;
} hoarder_t;

static int hoarder_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  hoarder_t *h = state;
  if (msg->type == T_MANY_Q && (msg->flags & BW_MSGF_REQUEST) && h->n < MANY) {
    h->held[h->n] = *msg;
    memcpy(&h->held[h->n].status, msg->data, sizeof(uint32_t)); /* keep the number */
    h->held[h->n].data = NULL;
    h->n++;
  } else if (msg->type == T_MANY_FLUSH) {
    /* a permutation of 0..n-1: step by a number coprime with n */
    for (uint32_t k = 0, i = 0; k < h->n; k++, i = (i + 7919) % h->n) {
      uint32_t v = (uint32_t)h->held[i].status;
      bw_reply(ctx, &h->held[i], 0, T_MANY_Q, &v, sizeof v);
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t hoarder = {.name = "hoarder", .state_size = sizeof(hoarder_t),
                                       .handle = hoarder_handle};

/* Sends MANY requests, then checks every reply matches its request. */
typedef struct asker {
  bw_pid_t target;
  uint64_t ref[MANY];
  uint32_t got, wrong;
  bw_msg_t go;
} asker_t;

static int asker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  asker_t *a = state;
  if (msg->type == T_MANY_GO) {
    a->go = *msg;
    memcpy(&a->target, msg->data, sizeof(a->target));
    for (uint32_t i = 0; i < MANY; i++)
      if (bw_request(ctx, a->target, T_MANY_Q, &i, sizeof i, 0, &a->ref[i]) != 0)
        a->wrong++;
    bw_send(bw_ctx_runtime(ctx), a->target, T_MANY_FLUSH, NULL, 0);
  } else if (msg->flags & BW_MSGF_REPLY) {
    uint32_t v;
    memcpy(&v, msg->data, sizeof v);
    if (v >= MANY || a->ref[v] != msg->ref || msg->status != 0)
      a->wrong++;
    if (++a->got == MANY) {
      uint32_t w = a->wrong;
      bw_reply(ctx, &a->go, 0, T_MANY_GO, &w, sizeof w);
    }
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t asker = {.name = "asker", .state_size = sizeof(asker_t),
                                     .handle = asker_handle};

static void test_many_requests_in_flight(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t h, a;
  assert_int_equal(bw_spawn(rt, &hoarder, NULL, NULL, &h), 0);
  assert_int_equal(bw_spawn(rt, &asker, NULL, NULL, &a), 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, a, T_MANY_GO, &h, sizeof h, 0, &rep), 0);
  uint32_t wrong;
  memcpy(&wrong, rep.data, sizeof wrong);
  assert_int_equal(wrong, 0);
  bw_runtime_stats_t st;
  bw_runtime_destroy(rt);
  (void)st;
}

/* --- bounded mailboxes and the messages that never take a slot --------------- */

static void test_call_to_bounded_mailbox_with_one_slot(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.mailbox_capacity = 1;
  bw_pid_t sv;
  assert_int_equal(bw_spawn(rt, &server, NULL, &o, &sv), 0);
  /* the call's monitor signal takes no slot: the request gets the one there is */
  bw_reply_t rep;
  uint32_t v = 5;
  assert_int_equal(bw_call(rt, sv, T_ECHO, &v, sizeof v, 0, &rep), 0);
  bw_runtime_stats_t st;
  bw_runtime_stats(rt, &st);
  assert_int_equal(st.rejected, 0);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_reply_between_actors),
      cmocka_unit_test(test_request_deadline_then_late_reply),
      cmocka_unit_test(test_reply_in_time_cancels_deadline),
      cmocka_unit_test(test_request_target_stops_before_answering),
      cmocka_unit_test(test_request_target_crashes_before_answering),
      cmocka_unit_test(test_request_held_then_target_exits),
      cmocka_unit_test(test_request_to_dead_pid),
      cmocka_unit_test(test_call_status_and_payload),
      cmocka_unit_test(test_call_request_from_non_actor),
      cmocka_unit_test(test_call_dead_or_exiting_target),
      cmocka_unit_test(test_reply_to_gone_requester),
      cmocka_unit_test(test_reply_move),
      cmocka_unit_test(test_request_outside_actor),
      cmocka_unit_test(test_many_requests_in_flight),
      cmocka_unit_test(test_call_to_bounded_mailbox_with_one_slot),
  };
  return BWT_RUN_SUITE(tests);
}
