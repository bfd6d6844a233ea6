/*
 * Deferred replies (include/bulwark/reply.h): bw_reply_defer keeps a
 * request as a reply token; bw_reply_token answers it once, later, from
 * another handler call. A token answers once (a second answer, through
 * the same copy or another, is BW_EREPLIED); one still unanswered when the
 * actor exits (held or lost; after a stop, a crash, a kill, or a handler
 * that deferred and stopped) is answered BW_ENOREPLY by the runtime, and
 * nothing else is (no extra BW_ENOPROC, no late reply). Requesters: plain
 * threads with bw_call (the token from a waiter's request), and actors
 * with bw_request_then (the continuation's status and reply). Misuse
 * returns the documented codes.
 */
#include "support.h"

enum {
  T_KEEP = 1,  /* request: defer it, keep the token */
  T_KEEP_LOSE, /* request: defer it into a local, and forget it */
  T_KEEP_STOP, /* request: defer it, and stop */
  T_ANSWER,    /* answer every kept token with (val + its index), then
                  try the first again, and a copy of it */
  T_ANSWER_MOVE, /* answer the first kept token with a moved payload */
  T_OLD_WAY,   /* answer the first kept token by bw_reply on a copy */
  T_STOP,
  T_CRASH,
  T_MISUSE,    /* request: the misuse checks, rcs in the reply */
  T_PLAIN,     /* a plain message (not a request) */
  T_GO,        /* main -> client: request `to` (a go_t) with a continuation */
  T_ANS,
};

#define KEEP_MAX 8

static bwt_sync_t sync_ = BWT_SYNC_INIT;
/* under sync_ */
static int kept;            /* tokens the keeper holds */
static int answer_rc[KEEP_MAX];
static int again_rc, copy_rc; /* the second answers */
static bool answered;
static int cont_status = 1;
static bool cont_has_reply;
static uint32_t cont_val;

static void reset(void) {
  bwt_lock(&sync_);
  kept = 0;
  memset(answer_rc, 0x7f, sizeof answer_rc);
  again_rc = copy_rc = 1;
  answered = false;
  cont_status = 1;
  cont_has_reply = false;
  cont_val = 0;
  bwt_unlock(&sync_);
}

/* --- the keeper ------------------------------------------------------------ */

typedef struct keeper_st {
  bw_reply_token_t tok[KEEP_MAX];
  int n;
} keeper_st;

static void note_kept(int n) {
  bwt_lock(&sync_);
  kept = n;
  bwt_unlock_signal(&sync_);
}

static void answer_all(bw_ctx_t *ctx, keeper_st *s, uint32_t val) {
  int rc[KEEP_MAX];
  for (int i = 0; i < s->n; i++) {
    uint32_t v = val + (uint32_t)i;
    rc[i] = bw_reply_token(ctx, &s->tok[i], 0, T_ANS, &v, sizeof v);
  }
  int again = BW_EINVAL, copy = BW_EINVAL;
  if (s->n > 0) {
    bw_reply_token_t c = s->tok[0];
    c.flags = 0; /* a copy taken before the answer: the runtime's record decides */
    again = bw_reply_token(ctx, &s->tok[0], 0, T_ANS, NULL, 0);
    copy = bw_reply_token(ctx, &c, 0, T_ANS, NULL, 0);
  }
  bwt_lock(&sync_);
  memcpy(answer_rc, rc, (size_t)s->n * sizeof rc[0]);
  again_rc = again;
  copy_rc = copy;
  answered = true;
  bwt_unlock_signal(&sync_);
  s->n = 0;
}

static void moved_free(void *p) { free(p); }

/* The misuse checks, in the handler of a request (msg). */
static void misuse(bw_ctx_t *ctx, keeper_st *s, const bw_msg_t *msg) {
  int rc[10];
  bw_reply_token_t t, t2;
  bw_msg_t copy = *msg;
  rc[0] = bw_reply_defer(ctx, &copy, &t);   /* not the message being handled */
  rc[1] = bw_reply_defer(ctx, msg, NULL);
  rc[2] = bw_reply_defer(ctx, msg, &t);     /* ok */
  rc[3] = bw_reply_defer(ctx, msg, &t2);    /* twice */
  rc[4] = bw_reply_token(ctx, &t, 1, T_ANS, NULL, 0); /* status > 0: stays live */
  uint8_t big[BW_MSG_INLINE_MAX + 1] = {0};
  rc[5] = bw_reply_token(ctx, &t, 0, T_ANS, big, sizeof big); /* too big: stays live */
  bw_reply_token_t other = t;
  other.owner = msg->from; /* not this actor's */
  rc[6] = bw_reply_token(ctx, &other, 0, T_ANS, NULL, 0);
  rc[7] = bw_reply_token(ctx, NULL, 0, T_ANS, NULL, 0);
  /* the answer the caller gets: the rcs so far */
  rc[8] = 0;
  rc[9] = 0;
  rc[8] = bw_reply_token(ctx, &t, 0, T_ANS, rc, sizeof rc);
  (void)s;
}

static int keeper_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  keeper_st *s = state;
  uint32_t v = 0;
  if (msg->len == sizeof v)
    memcpy(&v, msg->data, sizeof v);
  switch (msg->type) {
  case T_KEEP:
    if (s->n < KEEP_MAX && bw_reply_defer(ctx, msg, &s->tok[s->n]) == 0)
      s->n++;
    note_kept(s->n);
    return BW_CONTINUE;
  case T_KEEP_LOSE: {
    bw_reply_token_t lost;
    (void)bw_reply_defer(ctx, msg, &lost);
    note_kept(s->n + 1);
    return BW_CONTINUE;
  }
  case T_KEEP_STOP: {
    bw_reply_token_t t;
    (void)bw_reply_defer(ctx, msg, &t);
    return BW_STOP;
  }
  case T_ANSWER:
    answer_all(ctx, s, v);
    return BW_CONTINUE;
  case T_ANSWER_MOVE: {
    uint32_t *p = malloc(sizeof *p);
    *p = v;
    int rc = bw_reply_token_move(ctx, &s->tok[0], 0, T_ANS, p, sizeof *p, moved_free);
    s->n = 0;
    bwt_lock(&sync_);
    answer_rc[0] = rc;
    answered = true;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  case T_MISUSE:
    misuse(ctx, s, msg);
    return BW_CONTINUE;
  case T_PLAIN: {
    bw_reply_token_t t;
    int rc = bw_reply_defer(ctx, msg, &t); /* not a request */
    bwt_lock(&sync_);
    answer_rc[0] = rc;
    answered = true;
    bwt_unlock_signal(&sync_);
    return BW_CONTINUE;
  }
  case T_OLD_WAY: /* answer the first kept request by bw_reply on a copy */
    if (s->n > 0) {
      bw_msg_t copy = {.from = s->tok[0].to, .ref = s->tok[0].ref, .flags = BW_MSGF_REQUEST};
      int rc = bw_reply(ctx, &copy, 0, T_ANS, &v, sizeof v);
      int again = bw_reply_token(ctx, &s->tok[0], 0, T_ANS, NULL, 0);
      bwt_lock(&sync_);
      answer_rc[0] = rc;
      again_rc = again;
      answered = true;
      bwt_unlock_signal(&sync_);
      s->n = 0;
    }
    return BW_CONTINUE;
  case T_STOP:
    return BW_STOP;
  case T_CRASH:
    return BW_ECANCELED;
  default:
    return BW_CONTINUE;
  }
}

/* During a runtime stop, terminate may still answer what it holds. */
static void keeper_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *why) {
  keeper_st *s = state;
  if (why->kind != BW_REASON_SHUTDOWN || s->n == 0)
    return;
  int rc = bw_reply_token(ctx, &s->tok[0], 0, T_ANS, NULL, 0);
  bwt_lock(&sync_);
  answer_rc[0] = rc;
  answered = true;
  bwt_unlock_signal(&sync_);
}

static const bw_behaviour_t keeper = {.name = "keeper",
                                      .state_size = sizeof(keeper_st),
                                      .handle = keeper_handle,
                                      .terminate = keeper_terminate};

/* --- requesters -------------------------------------------------------------- */

/* A plain thread's bw_call. */
typedef struct caller {
  bw_runtime_t *rt;
  bw_pid_t to;
  uint32_t type, val;
  uint64_t timeout_ms;
  pthread_t th;
  int rc;
  bw_reply_t rep;
} caller_t;

static void *caller_main(void *arg) {
  caller_t *c = arg;
  c->rc = bw_call(c->rt, c->to, c->type, &c->val, sizeof c->val, c->timeout_ms, &c->rep);
  return NULL;
}

static void call_start(caller_t *c, bw_runtime_t *rt, bw_pid_t to, uint32_t type, uint32_t val,
                       uint64_t timeout_ms) {
  *c = (caller_t){.rt = rt, .to = to, .type = type, .val = val, .timeout_ms = timeout_ms};
  assert_int_equal(pthread_create(&c->th, NULL, caller_main, c), 0);
}

static void call_join(caller_t *c) { assert_int_equal(pthread_join(c->th, NULL), 0); }

static uint32_t rep_val(const bw_reply_t *r) {
  uint32_t v = 0;
  if (r->len == sizeof v)
    memcpy(&v, r->data, sizeof v);
  return v;
}

/* An actor requester with a continuation. */
static int on_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                     void *closure) {
  (void)ctx;
  (void)state;
  (void)closure;
  bwt_lock(&sync_);
  cont_status = status;
  cont_has_reply = reply != NULL;
  if (reply != NULL && reply->len == sizeof cont_val)
    memcpy(&cont_val, reply->data, sizeof cont_val);
  bwt_unlock_signal(&sync_);
  return BW_CONTINUE;
}

static int client_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_GO) {
    bw_pid_t to;
    memcpy(&to, msg->data, sizeof to);
    uint32_t v = 5;
    int rc = bw_request_then(ctx, to, T_KEEP, &v, sizeof v, 0, on_answer, NULL, NULL, NULL);
    bw_reply(ctx, msg, rc, T_ANS, NULL, 0);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t client = {.name = "client", .handle = client_handle};

static bw_pid_t spawn(bw_runtime_t *rt, const bw_behaviour_t *b) {
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, b, NULL, NULL, &pid), 0);
  return pid;
}

static void finish(bw_runtime_t *rt, uint64_t late) {
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.dead_by_reason[BW_DL_LATE_REPLY], late);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- tests ------------------------------------------------------------------- */

/* Two plain threads' bw_calls, kept and answered later from another
 * handler call: each gets its own answer; a second answer, through the
 * token or a copy of it, is BW_EREPLIED and sends nothing. */
static void test_token_answered_later(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  caller_t c[2];
  call_start(&c[0], rt, k, T_KEEP, 0, 0);
  BWT_AWAIT(&sync_, kept == 1);
  call_start(&c[1], rt, k, T_KEEP, 0, 0);
  BWT_AWAIT(&sync_, kept == 2);
  uint32_t base = 100;
  assert_int_equal(bw_send(rt, k, T_ANSWER, &base, sizeof base), 0);
  call_join(&c[0]);
  call_join(&c[1]);
  assert_int_equal(c[0].rc, 0);
  assert_int_equal(rep_val(&c[0].rep), 100);
  assert_int_equal(c[1].rc, 0);
  assert_int_equal(rep_val(&c[1].rep), 101);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], 0);
  assert_int_equal(answer_rc[1], 0);
  assert_int_equal(again_rc, BW_EREPLIED);
  assert_int_equal(copy_rc, BW_EREPLIED);
  finish(rt, 0);
}

/* The same with a moved payload: the caller owns it. */
static void test_token_answered_moved(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  caller_t c;
  call_start(&c, rt, k, T_KEEP, 0, 0);
  BWT_AWAIT(&sync_, kept == 1);
  uint32_t v = 77;
  assert_int_equal(bw_send(rt, k, T_ANSWER_MOVE, &v, sizeof v), 0);
  call_join(&c);
  assert_int_equal(c.rc, 0);
  assert_non_null(c.rep.ptr);
  assert_int_equal(*(uint32_t *)c.rep.ptr, 77);
  c.rep.dtor(c.rep.ptr);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], 0);
  finish(rt, 0);
}

/* bw_reply on a copy of a deferred request answers it and spends the
 * token: the token then says BW_EREPLIED and the exit answers nothing
 * more (no late reply). */
static void test_token_spent_by_bw_reply(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  caller_t c;
  call_start(&c, rt, k, T_KEEP, 0, 0);
  BWT_AWAIT(&sync_, kept == 1);
  uint32_t v = 9;
  assert_int_equal(bw_send(rt, k, T_OLD_WAY, &v, sizeof v), 0);
  call_join(&c);
  assert_int_equal(c.rc, 0);
  assert_int_equal(rep_val(&c.rep), 9);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], 0);
  assert_int_equal(again_rc, BW_EREPLIED);
  assert_int_equal(bw_send(rt, k, T_STOP, NULL, 0), 0);
  BWT_AWAIT_DEAD(rt, k);
  finish(rt, 0);
}

/* Tokens still unanswered at the keeper's exit, whether it stops,
 * crashes or is killed and whether it held them or lost them, are
 * answered BW_ENOREPLY, once. */
static void test_token_answered_at_exit(void **state) {
  (void)state;
  for (int how = 0; how < 3; how++) {
    reset();
    bw_runtime_t *rt = bwt_runtime(2, true);
    bw_pid_t k = spawn(rt, &keeper);
    caller_t c[2];
    call_start(&c[0], rt, k, T_KEEP, 0, 0);
    BWT_AWAIT(&sync_, kept == 1);
    call_start(&c[1], rt, k, T_KEEP_LOSE, 0, 0); /* dropped on the floor */
    BWT_AWAIT(&sync_, kept == 2);
    if (how == 0)
      assert_int_equal(bw_send(rt, k, T_STOP, NULL, 0), 0);
    else if (how == 1)
      assert_int_equal(bw_send(rt, k, T_CRASH, NULL, 0), 0);
    else
      assert_int_equal(bw_exit(rt, k, BW_REASON_KILL, 0, NULL), 0);
    call_join(&c[0]);
    call_join(&c[1]);
    assert_int_equal(c[0].rc, BW_ENOREPLY);
    assert_int_equal(c[1].rc, BW_ENOREPLY);
    assert_int_equal(c[0].rep.len, 0);
    finish(rt, 0);
  }
}

/* An answer from terminate during a runtime stop is not refused. */
static void test_token_during_stop(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  caller_t c;
  call_start(&c, rt, k, T_KEEP, 0, 0);
  BWT_AWAIT(&sync_, kept == 1);
  assert_int_equal(bw_runtime_stop(rt), 0);
  call_join(&c);
  assert_true(answered);
  /* not refused; the waiter is stopped too, so the answer reached it (0)
   * or it had gone (BW_ENOPROC), and the call saw the answer or the stop */
  assert_true(answer_rc[0] == 0 || answer_rc[0] == BW_ENOPROC);
  assert_true(c.rc == 0 || c.rc == BW_ESHUTDOWN);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* A handler that defers and stops: BW_ENOREPLY, and no BW_ENOPROC besides
 * (which would be a late reply). */
static void test_token_defer_then_stop(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  uint32_t v = 0;
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, k, T_KEEP_STOP, &v, sizeof v, 0, &rep), BW_ENOREPLY);
  BWT_AWAIT_DEAD(rt, k);
  finish(rt, 0);
}

/* An actor requester: its continuation gets the answer, or BW_ENOREPLY
 * with no reply when the keeper exits holding the token. */
static void test_token_actor_requester(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper), cl = spawn(rt, &client);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, cl, T_GO, &k, sizeof k, 0, &rep), 0);
  BWT_AWAIT(&sync_, kept == 1);
  uint32_t base = 40;
  assert_int_equal(bw_send(rt, k, T_ANSWER, &base, sizeof base), 0);
  BWT_AWAIT(&sync_, cont_status != 1);
  assert_int_equal(cont_status, 0);
  assert_true(cont_has_reply);
  assert_int_equal(cont_val, 40);

  reset();
  assert_int_equal(bw_call(rt, cl, T_GO, &k, sizeof k, 0, &rep), 0);
  BWT_AWAIT(&sync_, kept == 1);
  assert_int_equal(bw_send(rt, k, T_CRASH, NULL, 0), 0);
  BWT_AWAIT(&sync_, cont_status != 1);
  assert_int_equal(cont_status, BW_ENOREPLY);
  assert_false(cont_has_reply);
  finish(rt, 0);
}

/* The requester is gone (its bw_call timed out on the manual clock): the
 * answer is BW_ENOPROC (a dead letter "late_reply"), and the token is
 * spent. */
static void test_token_requester_gone(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  caller_t c;
  call_start(&c, rt, k, T_KEEP, 0, 50);
  BWT_AWAIT(&sync_, kept == 1);
  assert_int_equal(bw_clock_advance(rt, 50), 0);
  call_join(&c);
  assert_int_equal(c.rc, BW_ETIMEDOUT);
  uint32_t base = 1;
  assert_int_equal(bw_send(rt, k, T_ANSWER, &base, sizeof base), 0);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], BW_ENOPROC);
  assert_int_equal(again_rc, BW_EREPLIED);
  /* and the keeper's exit answers nothing more */
  finish(rt, 1);
}

/* Misuse: the documented codes; a refused answer leaves the token live. */
static void test_token_misuse(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t k = spawn(rt, &keeper);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, k, T_MISUSE, NULL, 0, 0, &rep), 0);
  int rc[10];
  assert_int_equal(rep.len, sizeof rc);
  memcpy(rc, rep.data, sizeof rc);
  assert_int_equal(rc[0], BW_EINVAL);
  assert_int_equal(rc[1], BW_EINVAL);
  assert_int_equal(rc[2], 0);
  assert_int_equal(rc[3], BW_ESTATE);
  assert_int_equal(rc[4], BW_EINVAL);
  assert_int_equal(rc[5], BW_ETOOBIG);
  assert_int_equal(rc[6], BW_EINVAL);
  assert_int_equal(rc[7], BW_EINVAL);
  assert_int_equal(rc[8], 0); /* written before the answer was sent: 0 */

  assert_int_equal(bw_send(rt, k, T_PLAIN, NULL, 0), 0);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], BW_EINVAL);

  bw_reply_token_t t = {0};
  assert_int_equal(bw_reply_defer(NULL, NULL, &t), BW_ENOTACTOR);
  assert_int_equal(bw_reply_token(NULL, &t, 0, 0, NULL, 0), BW_ENOTACTOR);
  assert_int_equal(bw_reply_token_move(NULL, &t, 0, 0, NULL, 0, NULL), BW_ENOTACTOR);
  finish(rt, 0);
}

/* A handler that answered with bw_reply cannot defer it any more. */
static int replier_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  bw_reply(ctx, msg, 0, T_ANS, NULL, 0);
  bw_reply_token_t t;
  int rc = bw_reply_defer(ctx, msg, &t);
  bwt_lock(&sync_);
  answer_rc[0] = rc;
  answered = true;
  bwt_unlock_signal(&sync_);
  return BW_CONTINUE;
}

static const bw_behaviour_t replier = {.name = "replier", .handle = replier_handle};

static void test_defer_after_reply(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t r = spawn(rt, &replier);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, r, 1, NULL, 0, 0, &rep), 0);
  BWT_AWAIT(&sync_, answered);
  assert_int_equal(answer_rc[0], BW_EREPLIED);
  finish(rt, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_answered_later),
      cmocka_unit_test(test_token_answered_moved),
      cmocka_unit_test(test_token_spent_by_bw_reply),
      cmocka_unit_test(test_token_answered_at_exit),
      cmocka_unit_test(test_token_defer_then_stop),
      cmocka_unit_test(test_token_during_stop),
      cmocka_unit_test(test_token_actor_requester),
      cmocka_unit_test(test_token_requester_gone),
      cmocka_unit_test(test_token_misuse),
      cmocka_unit_test(test_defer_after_reply),
  };
  return BWT_RUN_SUITE(tests);
}
