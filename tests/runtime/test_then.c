/*
 * Continuations on requests (include/bulwark/reply.h): bw_request_then,
 * bw_request_then_move, bw_then on a bw_request's ref, bw_await and
 * bw_request_await.
 *
 * Each continuation runs exactly once, in the requester, instead of its
 * handler: on the reply (the replier's status and payload), on the deadline
 * (the manual clock; a later reply is a dead letter and runs nothing), on
 * the callee's crash or exit (BW_ENOPROC, reply NULL); its closure_free
 * runs once after it, or at the requester's exit when it never ran (a
 * reply then reaches nobody, not even a new actor in the same slot). A
 * continuation's return stops or crashes the actor as a handler's does.
 * Many outstanding at once each find their own closure. The await holds
 * other messages until its continuation has run, then they are handled in
 * arrival order. Misuse returns the documented codes.
 */
#include "support.h"

#include "runtime/internal.h" /* bw__pid_test_quarantine, BW__PID_SLOT */

enum {
  T_ECHO = 1, /* server: reply val + 1 */
  T_FAILREQ,  /* server: reply BW_ECANCELED with a payload */
  T_HOLD,     /* server: keep the request (copied) */
  T_RELEASE,  /* server: answer what it holds, newest first (val + 1) */
  T_CRASH,    /* server: crash while handling the request */
  T_CRASH_LATER, /* server: crash (holding whatever it holds) */
  T_MOVED,    /* server: reply with a moved payload */
  T_GO,       /* main -> client (bw_call): a go_t */
  T_NOTE,     /* main -> client: handled by the handler (logged) */
  T_STOP,     /* main -> client: BW_STOP */
  T_ANS,
};

enum { OP_THEN, OP_THEN_MOVE, OP_PLAIN_THEN, OP_AWAIT, OP_MANY, OP_PLAIN };

/* what a continuation returns (set by the test) */
enum { RET_CONTINUE, RET_STOP, RET_ERROR, RET_FAIL };

#define MAXEV 64
#define MANY 1000

typedef struct go {
  int op;
  bw_pid_t to;
  uint32_t type;
  uint32_t val;
  uint64_t timeout_ms;
  uint32_t count; /* OP_MANY */
} go_t;

typedef struct go_reply {
  int rc;
  uint64_t ref;
} go_reply_t;

typedef struct cev {
  bool from_then; /* a continuation, or the handler */
  int status;
  bool has_reply;
  uint32_t type, len, val, id;
  bool took; /* bw_msg_take gave the moved payload */
} cev_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static cev_t evs[MAXEV];
static int nev;
static int frees[MANY + 8]; /* closure_free calls per closure id */
static int nfrees;
static int then_ret;
static int many_seen, many_bad;
static int held_n;
static uint32_t notes_seen, notes_bad; /* notes must come 1, 2, 3, ... */
static bool watched;
static bw_reason_t watched_why;

static void reset(void) {
  bwt_lock(&sync_);
  memset(evs, 0, sizeof evs);
  nev = 0;
  memset(frees, 0, sizeof frees);
  nfrees = 0;
  then_ret = RET_CONTINUE;
  many_seen = many_bad = 0;
  held_n = 0;
  notes_seen = notes_bad = 0;
  watched = false;
  bwt_unlock(&sync_);
}

static void record(cev_t e) {
  bwt_lock(&sync_);
  if (nev < MAXEV)
    evs[nev++] = e;
  bwt_unlock_signal(&sync_);
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

static int free_count(void) {
  bwt_lock(&sync_);
  int n = nfrees;
  bwt_unlock(&sync_);
  return n;
}

/* A closure is an id in a pointer (no memory to free: we count the calls). */
static void count_free(void *closure) {
  bwt_lock(&sync_);
  frees[(uintptr_t)closure]++;
  nfrees++;
  bwt_unlock_signal(&sync_);
}

static void moved_dtor(void *p) { free(p); }

/* --- the server ------------------------------------------------------------ */

#define HOLD_MAX 16

typedef struct server_st {
  bw_msg_t held[HOLD_MAX];
  int nheld;
} server_st;

static int server_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  server_st *s = state;
  uint32_t v = 0;
  if (msg->len == sizeof v)
    memcpy(&v, msg->data, sizeof v);
  v++;
  switch (msg->type) {
  case T_ECHO:
    bw_reply(ctx, msg, 0, T_ANS, &v, sizeof v);
    return BW_CONTINUE;
  case T_FAILREQ:
    bw_reply(ctx, msg, BW_ECANCELED, T_ANS, &v, sizeof v);
    return BW_CONTINUE;
  case T_MOVED: {
    uint32_t *p = malloc(sizeof *p);
    *p = v;
    bw_reply_move(ctx, msg, 0, T_ANS, p, sizeof *p, moved_dtor);
    return BW_CONTINUE;
  }
  case T_HOLD:
    if (s->nheld < HOLD_MAX) {
      s->held[s->nheld] = *msg;
      s->held[s->nheld].data = NULL; /* the copy keeps no payload */
      s->held[s->nheld].len = v;     /* the answer to give */
      s->nheld++;
    }
    bwt_lock(&sync_);
    held_n = s->nheld;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  case T_RELEASE:
    while (s->nheld > 0) {
      bw_msg_t *h = &s->held[--s->nheld];
      uint32_t a = h->len;
      bw_reply(ctx, h, 0, T_ANS, &a, sizeof a);
    }
    bwt_lock(&sync_);
    held_n = 0;
    bwt_unlock_signal(&sync_);
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, T_ANS, NULL, 0);
    return BW_CONTINUE;
  case T_CRASH:
    bw_fail(ctx, BW_ECANCELED, "crash while handling a request");
    return BW_CONTINUE;
  case T_CRASH_LATER:
    return BW_ECANCELED;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t server = {
    .name = "server", .state_size = sizeof(server_st), .handle = server_handle};

/* --- the client ------------------------------------------------------------ */

static int on_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                     void *closure) {
  (void)state;
  cev_t e = {.from_then = true, .status = status, .has_reply = reply != NULL,
             .id = (uint32_t)(uintptr_t)closure};
  if (reply != NULL) {
    e.type = reply->type;
    e.len = reply->len;
    if (reply->flags & BW_MSGF_MOVED) {
      uint32_t *p = bw_msg_take(ctx, reply);
      e.took = p != NULL;
      if (p != NULL) {
        e.val = *p;
        free(p);
      }
    } else if (reply->len == sizeof e.val) {
      memcpy(&e.val, reply->data, sizeof e.val);
    }
  }
  record(e);
  bwt_lock(&sync_);
  int ret = then_ret;
  bwt_unlock(&sync_);
  switch (ret) {
  case RET_STOP:
    return BW_STOP;
  case RET_ERROR:
    return BW_ETIMEDOUT;
  case RET_FAIL:
    bw_fail(ctx, BW_ECANCELED, "continuation failed");
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

/* OP_MANY: closure = its index; the reply must carry index + 1 */
static int on_many(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                   void *closure) {
  (void)ctx;
  (void)state;
  uint32_t v = 0;
  if (reply != NULL && reply->len == sizeof v)
    memcpy(&v, reply->data, sizeof v);
  bwt_lock(&sync_);
  many_seen++;
  if (status != 0 || v != (uint32_t)(uintptr_t)closure + 1)
    many_bad++;
  bwt_unlock_signal(&sync_);
  return BW_CONTINUE;
}

static int do_go(bw_ctx_t *ctx, const go_t *g, uint64_t *ref) {
  void *cl = (void *)(uintptr_t)g->val;
  switch (g->op) {
  case OP_THEN:
    return bw_request_then(ctx, g->to, g->type, &g->val, sizeof g->val, g->timeout_ms,
                           on_answer, cl, count_free, ref);
  case OP_THEN_MOVE: {
    uint32_t *p = malloc(sizeof *p);
    *p = g->val;
    int rc = bw_request_then_move(ctx, g->to, g->type, p, sizeof *p, moved_dtor,
                                  g->timeout_ms, on_answer, cl, count_free, ref);
    if (rc != 0 && rc != BW_ENOPROC)
      free(p);
    return rc;
  }
  case OP_PLAIN_THEN: {
    int rc = bw_request(ctx, g->to, g->type, &g->val, sizeof g->val, g->timeout_ms, ref);
    return rc != 0 ? rc : bw_then(ctx, *ref, on_answer, cl, count_free);
  }
  case OP_AWAIT:
    return bw_request_await(ctx, g->to, g->type, &g->val, sizeof g->val, g->timeout_ms,
                            on_answer, cl, count_free, ref);
  case OP_MANY:
    for (uint32_t i = 0; i < g->count; i++) {
      int rc = bw_request_then(ctx, g->to, g->type, &i, sizeof i, g->timeout_ms, on_many,
                               (void *)(uintptr_t)i, NULL, ref);
      if (rc != 0)
        return rc;
    }
    return 0;
  case OP_PLAIN:
    return bw_request(ctx, g->to, g->type, &g->val, sizeof g->val, g->timeout_ms, ref);
  default:
    return BW_EINVAL;
  }
}

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_GO) {
    go_t g;
    memcpy(&g, msg->data, sizeof g);
    go_reply_t r = {0, 0};
    r.rc = do_go(ctx, &g, &r.ref);
    bw_reply(ctx, msg, 0, T_ANS, &r, sizeof r);
    return BW_CONTINUE;
  }
  if (msg->type == T_STOP)
    return BW_STOP;
  if (msg->type == T_NOTE && msg->len == sizeof(uint32_t)) {
    uint32_t v;
    memcpy(&v, msg->data, sizeof v);
    bwt_lock(&sync_);
    if (v != ++notes_seen)
      notes_bad++;
    bwt_unlock_signal(&sync_);
  }
  /* anything else the handler sees is logged: notes, and replies that
   * should have gone to a continuation */
  cev_t e = {.from_then = false, .status = msg->status, .type = msg->type, .len = msg->len};
  if (msg->len == sizeof e.val)
    memcpy(&e.val, msg->data, sizeof e.val);
  record(e);
  return BW_CONTINUE;
}

static const bw_behaviour_t client = {.name = "client", .handle = client_handle};

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, b, NULL, NULL, &pid), 0);
  return pid;
}

static go_reply_t go(bw_runtime_t *rt, bw_pid_t cl, go_t g) {
  bw_reply_t rep;
  go_reply_t r;
  assert_int_equal(bw_call(rt, cl, T_GO, &g, sizeof g, 0, &rep), 0);
  memcpy(&r, rep.data, sizeof r);
  return r;
}

static go_t op(int o, bw_pid_t to, uint32_t type, uint32_t val, uint64_t timeout_ms) {
  return (go_t){.op = o, .to = to, .type = type, .val = val, .timeout_ms = timeout_ms};
}

/* Everything the client had queued before this is handled (not while it
 * awaits: the call would be held too). */
static void sync_with(bw_runtime_t *rt, bw_pid_t pid) {
  go_reply_t r = go(rt, pid, op(-1, BW_PID_NONE, 0, 0, 0));
  assert_int_equal(r.rc, BW_EINVAL);
}

static void note(bw_runtime_t *rt, bw_pid_t to, uint32_t v) {
  assert_int_equal(bw_send(rt, to, T_NOTE, &v, sizeof v), 0);
}

static uint32_t depth(bw_runtime_t *rt, bw_pid_t pid) {
  uint32_t d = UINT32_MAX;
  assert_int_equal(bw_mailbox_depth(rt, pid, &d), 0);
  return d;
}

static void finish(bw_runtime_t *rt, uint64_t late_replies) {
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_LATE_REPLY], late_replies);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- tests ------------------------------------------------------------------ */

/* The reply goes to the continuation (not the handler), with the
 * replier's status and payload; closure_free runs once after it. The
 * same through bw_then on a bw_request's ref, and with a moved payload
 * both ways (the continuation takes the reply's). */
static void test_then_reply(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);

  go_reply_t r = go(rt, cl, op(OP_THEN, sv, T_ECHO, 7, 1000));
  assert_int_equal(r.rc, 0);
  assert_int_not_equal(r.ref, 0);
  BWT_AWAIT(&sync_, nev == 1 && nfrees == 1);
  cev_t e = event_at(0);
  assert_true(e.from_then);
  assert_int_equal(e.status, 0);
  assert_true(e.has_reply);
  assert_int_equal(e.type, T_ANS);
  assert_int_equal(e.val, 8);
  assert_int_equal(e.id, 7);
  assert_int_equal(frees[7], 1);

  r = go(rt, cl, op(OP_PLAIN_THEN, sv, T_ECHO, 3, 0));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 2 && nfrees == 2);
  e = event_at(1);
  assert_true(e.from_then);
  assert_int_equal(e.val, 4);
  assert_int_equal(e.id, 3);

  r = go(rt, cl, op(OP_THEN_MOVE, sv, T_MOVED, 11, 1000));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 3 && nfrees == 3);
  e = event_at(2);
  assert_true(e.from_then);
  assert_true(e.took);
  assert_int_equal(e.val, 12);

  /* the deadlines were cancelled: nothing more comes */
  assert_int_equal(bw_clock_advance(rt, 5000), 0);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 3);
  assert_int_equal(free_count(), 3);
  finish(rt, 0);
}

/* An error reply: the replier's code, and its payload. */
static void test_then_error_reply(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, op(OP_THEN, sv, T_FAILREQ, 5, 0));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 1 && nfrees == 1);
  cev_t e = event_at(0);
  assert_true(e.from_then);
  assert_int_equal(e.status, BW_ECANCELED);
  assert_true(e.has_reply);
  assert_int_equal(e.val, 6);
  finish(rt, 0);
}

/* The deadline on the manual clock: BW_ETIMEDOUT with no reply, once;
 * the reply that comes later is a dead letter "late_reply" and runs
 * nothing (neither the continuation again nor the handler). */
static void test_then_timeout(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, op(OP_THEN, sv, T_HOLD, 1, 100));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, held_n == 1);
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_clock_advance(rt, 2), 0);
  BWT_AWAIT(&sync_, nev == 1 && nfrees == 1);
  cev_t e = event_at(0);
  assert_true(e.from_then);
  assert_int_equal(e.status, BW_ETIMEDOUT);
  assert_false(e.has_reply);

  bw_reply_t rep;
  assert_int_equal(bw_call(rt, sv, T_RELEASE, NULL, 0, 0, &rep), 0);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] == 1);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 1);
  assert_int_equal(free_count(), 1);
  finish(rt, 1);
}

/* The callee crashes while handling the request (the runtime answers
 * BW_ENOPROC for it), or crashes later holding it (its DOWN settles it),
 * or is dead already (nothing sent, nothing runs). */
static void test_then_callee_dies(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_reply_t r = go(rt, cl, op(OP_THEN, sv, T_CRASH, 1, 0));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, nev == 1 && nfrees == 1);
  cev_t e = event_at(0);
  assert_true(e.from_then);
  assert_int_equal(e.status, BW_ENOPROC);
  assert_false(e.has_reply);
  BWT_AWAIT_DEAD(rt, sv);

  sv = spawn(rt, &server);
  r = go(rt, cl, op(OP_THEN, sv, T_HOLD, 2, 0));
  assert_int_equal(r.rc, 0);
  BWT_AWAIT(&sync_, held_n == 1);
  assert_int_equal(bw_send(rt, sv, T_CRASH_LATER, NULL, 0), 0);
  BWT_AWAIT(&sync_, nev == 2 && nfrees == 2);
  e = event_at(1);
  assert_int_equal(e.status, BW_ENOPROC);
  assert_false(e.has_reply);
  assert_int_equal(e.id, 2);
  BWT_AWAIT_DEAD(rt, sv);

  /* dead already: bw_request's BW_ENOPROC, and the closure stays ours */
  r = go(rt, cl, op(OP_THEN, sv, T_ECHO, 3, 0));
  assert_int_equal(r.rc, BW_ENOPROC);
  sync_with(rt, cl);
  assert_int_equal(nevents(), 2);
  assert_int_equal(free_count(), 2);
  finish(rt, 0);
}

/* The requester exits with continuations pending: each closure_free runs
 * once, no continuation runs; the replies that come later reach nobody,
 * not even a new actor that took the requester's slot. */
static void test_then_requester_exits(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw__pid_test_quarantine(rt, 0); /* a freed slot is reused at once */
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  for (uint32_t i = 1; i <= 3; i++)
    assert_int_equal(go(rt, cl, op(OP_THEN, sv, T_HOLD, i, 0)).rc, 0);
  BWT_AWAIT(&sync_, held_n == 3);
  assert_int_equal(bw_send(rt, cl, T_STOP, NULL, 0), 0);
  /* its slot is free (the last step of an exit), and the next spawn takes
   * it: no bw_call (whose waiter takes a slot) until then. Acquire, as an
   * allocator reads it */
  BWT_POLL((uint32_t)bw__ld64_acq(&((bw__runtime *)rt)->slot_young) == BW__PID_SLOT(cl) + 1);
  assert_int_equal(free_count(), 3);
  assert_int_equal(frees[1] + frees[2] + frees[3], 3);
  assert_int_equal(frees[1] * frees[2] * frees[3], 1);
  assert_int_equal(nevents(), 0);

  bw_pid_t cl2 = spawn(rt, &client);
  assert_int_equal(BW__PID_SLOT(cl2), BW__PID_SLOT(cl));
  assert_int_not_equal(cl2, cl);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, sv, T_RELEASE, NULL, 0, 0, &rep), 0);
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] == 3);
  sync_with(rt, cl2);
  assert_int_equal(nevents(), 0);
  assert_int_equal(free_count(), 3);
  finish(rt, 3);
}

/* Monitors the pid it is given, and records its exit reason. */
static int watcher_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  uint64_t ref;
  return bw_monitor(ctx, *(const bw_pid_t *)arg, &ref);
}

static int watcher_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == BW_MSG_DOWN) {
    bwt_lock(&sync_);
    memcpy(&watched_why, msg->data, sizeof watched_why);
    watched = true;
    bwt_unlock_signal(&sync_);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t watcher = {
    .name = "watcher", .init = watcher_init, .handle = watcher_handle};

/* A continuation's return is a handler's: BW_STOP exits normally, a
 * negative code crashes with it, bw_fail crashes; the closure is freed
 * once in every case (after an unwinding bw_fail, by the exit path). */
static void test_then_return_and_crash(void **state) {
  (void)state;
  const struct {
    int ret, kind, code;
  } cases[] = {
      {RET_STOP, BW_REASON_NORMAL, 0},
      {RET_ERROR, BW_REASON_CRASH, BW_ETIMEDOUT},
      {RET_FAIL, BW_REASON_CRASH, BW_ECANCELED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    reset();
    then_ret = cases[i].ret;
    bw_runtime_t *rt = bwt_runtime(2, true);
    bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client), w;
    assert_int_equal(bw_spawn(rt, &watcher, &cl, NULL, &w), 0); /* monitors cl */
    assert_int_equal(go(rt, cl, op(OP_THEN, sv, T_ECHO, 9, 0)).rc, 0);
    BWT_AWAIT(&sync_, watched);
    assert_int_equal(watched_why.kind, cases[i].kind);
    assert_int_equal(watched_why.code, cases[i].code);
    assert_int_equal(nevents(), 1);
    assert_int_equal(free_count(), 1);
    assert_int_equal(frees[9], 1);
    finish(rt, 0);
  }
}

/* A thousand requests in flight at once: each continuation gets its own
 * closure and its own answer; a second thousand reuses the entries. */
static void test_then_many_outstanding(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  go_t g = op(OP_MANY, sv, T_ECHO, 0, 60000);
  g.count = MANY;
  assert_int_equal(go(rt, cl, g).rc, 0);
  BWT_AWAIT(&sync_, many_seen == MANY);
  assert_int_equal(many_bad, 0);
  /* and again, reusing the table's entries */
  assert_int_equal(go(rt, cl, g).rc, 0);
  BWT_AWAIT(&sync_, many_seen == 2 * MANY);
  assert_int_equal(many_bad, 0);
  assert_int_equal(nevents(), 0); /* the handler saw none of them */
  finish(rt, 0);
}

/* The await: messages that arrive while it waits are held; the
 * continuation runs first, then they are handled in arrival order (and a
 * second await later works the same). Deterministic: the notes are in
 * the client's mailbox before the server is told to answer, so without
 * the hold the handler would take them before the reply. Held messages
 * still count in the mailbox's depth. */
static void test_await_holds_messages(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  for (int round = 0; round < 2; round++) {
    int base = nevents();
    assert_int_equal(go(rt, cl, op(OP_AWAIT, sv, T_HOLD, 40, 0)).rc, 0);
    BWT_AWAIT(&sync_, held_n == 1);
    for (uint32_t v = 1; v <= 5; v++)
      note(rt, cl, v);
    BWT_POLL(depth(rt, cl) == 5);
    assert_int_equal(nevents(), base);
    assert_int_equal(bw_send(rt, sv, T_RELEASE, NULL, 0), 0);
    BWT_AWAIT(&sync_, nev == base + 6);
    cev_t e = event_at(base);
    assert_true(e.from_then);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.val, 41);
    for (int i = 1; i <= 5; i++) {
      e = event_at(base + i);
      assert_false(e.from_then);
      assert_int_equal(e.type, T_NOTE);
      assert_int_equal(e.val, (uint32_t)i);
    }
  }
  BWT_POLL(depth(rt, cl) == 0); /* the turn's pops are counted at its end */
  finish(rt, 0);
}

/* A flood while awaiting: held a batch at a time (the worker is not kept
 * by one endless turn), every message handled afterwards, in order. */
static void test_await_flood(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  assert_int_equal(go(rt, cl, op(OP_AWAIT, sv, T_HOLD, 1, 0)).rc, 0);
  BWT_AWAIT(&sync_, held_n == 1);
  uint32_t n = (uint32_t)bwt_scaled(20000);
  for (uint32_t v = 1; v <= n; v++)
    note(rt, cl, v);
  BWT_POLL(depth(rt, cl) == n); /* all of them held or queued, none handled */
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_send(rt, sv, T_RELEASE, NULL, 0), 0);
  BWT_AWAIT(&sync_, notes_seen == n);
  bwt_lock(&sync_);
  uint32_t bad = notes_bad;
  bwt_unlock(&sync_);
  assert_int_equal(bad, 0);
  assert_true(event_at(0).from_then); /* the continuation came first */
  finish(rt, 0);
}

/* An await ends on its deadline as well (the manual clock): the held
 * messages follow the BW_ETIMEDOUT continuation. */
static void test_await_timeout(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  assert_int_equal(go(rt, cl, op(OP_AWAIT, sv, T_HOLD, 1, 50)).rc, 0);
  BWT_AWAIT(&sync_, held_n == 1);
  note(rt, cl, 1);
  note(rt, cl, 2);
  BWT_POLL(depth(rt, cl) == 2);
  assert_int_equal(bw_clock_advance(rt, 49), 0);
  assert_int_equal(nevents(), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  BWT_AWAIT(&sync_, nev == 3);
  assert_true(event_at(0).from_then);
  assert_int_equal(event_at(0).status, BW_ETIMEDOUT);
  assert_int_equal(event_at(1).val, 1);
  assert_int_equal(event_at(2).val, 2);
  finish(rt, 0);
}

/* A kill reaches an awaiting actor at once; what it held becomes dead
 * letters, and its closure is freed. */
static void test_await_killed(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), cl = spawn(rt, &client);
  assert_int_equal(go(rt, cl, op(OP_AWAIT, sv, T_HOLD, 1, 0)).rc, 0);
  BWT_AWAIT(&sync_, held_n == 1);
  note(rt, cl, 1);
  note(rt, cl, 2);
  BWT_POLL(depth(rt, cl) == 2);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_exit(rt, cl, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, cl);
  /* the drain comes after the exit is announced */
  BWT_POLL(bwt_stats(rt).dead_by_reason[BW_DL_EXITED] ==
           before.dead_by_reason[BW_DL_EXITED] + 2);
  assert_int_equal(nevents(), 0);
  assert_int_equal(free_count(), 1);
  finish(rt, 0);
}

/* Misuse: the documented codes, and nothing attached. */
static int misuse_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  int rc[10];
  uint64_t ref = 0;
  bw_pid_t to;
  memcpy(&to, msg->data, sizeof to);
  rc[0] = bw_then(ctx, 12345, on_answer, NULL, NULL);                   /* not ours */
  rc[1] = bw_request(ctx, to, T_HOLD, NULL, 0, 0, &ref);
  rc[2] = bw_then(ctx, ref, NULL, NULL, NULL);                          /* NULL fn */
  rc[3] = bw_then(ctx, ref, on_answer, (void *)1, count_free);
  rc[4] = bw_then(ctx, ref, on_answer, NULL, NULL);                     /* twice */
  rc[5] = bw_await(ctx, 999);                                           /* no continuation */
  rc[6] = bw_await(ctx, ref);
  rc[7] = bw_request_await(ctx, to, T_ECHO, NULL, 0, 0, on_answer, NULL, NULL, NULL);
  rc[8] = bw_await(ctx, ref);                                           /* awaiting already */
  rc[9] = bw_request_then(ctx, to, T_ECHO, NULL, 0, 0, NULL, NULL, NULL, NULL); /* NULL fn */
  bw_reply(ctx, msg, 0, T_ANS, rc, sizeof rc);
  return BW_CONTINUE;
}

static const bw_behaviour_t misuse = {.name = "misuse", .handle = misuse_handle};

static void test_misuse(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t sv = spawn(rt, &server), m = spawn(rt, &misuse);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, m, 1, &sv, sizeof sv, 0, &rep), 0);
  int rc[10];
  memcpy(rc, rep.data, sizeof rc);
  assert_int_equal(rc[0], BW_ENOTFOUND);
  assert_int_equal(rc[1], 0);
  assert_int_equal(rc[2], BW_EINVAL);
  assert_int_equal(rc[3], 0);
  assert_int_equal(rc[4], BW_ESTATE);
  assert_int_equal(rc[5], BW_ENOTFOUND);
  assert_int_equal(rc[6], 0);
  assert_int_equal(rc[7], BW_ESTATE); /* one await at a time: nothing sent */
  assert_int_equal(rc[8], BW_ESTATE);
  assert_int_equal(rc[9], BW_EINVAL);
  /* not from an actor */
  assert_int_equal(bw_request_then(NULL, sv, T_ECHO, NULL, 0, 0, on_answer, NULL, NULL, NULL),
                   BW_ENOTACTOR);
  assert_int_equal(bw_then(NULL, 1, on_answer, NULL, NULL), BW_ENOTACTOR);
  assert_int_equal(bw_await(NULL, 1), BW_ENOTACTOR);
  /* the awaited request settles at the misuse actor's exit: its closure
   * is freed, the continuation never runs */
  assert_int_equal(bw_exit(rt, m, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, m);
  assert_int_equal(free_count(), 1);
  assert_int_equal(nevents(), 0);
  finish(rt, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_then_reply),
      cmocka_unit_test(test_then_error_reply),
      cmocka_unit_test(test_then_timeout),
      cmocka_unit_test(test_then_callee_dies),
      cmocka_unit_test(test_then_requester_exits),
      cmocka_unit_test(test_then_return_and_crash),
      cmocka_unit_test(test_then_many_outstanding),
      cmocka_unit_test(test_await_holds_messages),
      cmocka_unit_test(test_await_flood),
      cmocka_unit_test(test_await_timeout),
      cmocka_unit_test(test_await_killed),
      cmocka_unit_test(test_misuse),
  };
  return BWT_RUN_SUITE(tests);
}
