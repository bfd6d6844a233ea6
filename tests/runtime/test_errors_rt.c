/*
 * The error-code table (include/bulwark/ERRORS.md), runtime headers: every
 * code the table lists for actor.h, message.h, runtime.h, timer.h,
 * registry.h, dead_letter.h and event.h is produced here by at least one
 * assert, or by tests/runtime/test_bad_input.c (the table says which);
 * error.h and types.h are covered by tests/runtime/test_error.c. Codes only
 * reachable on allocation failure (BW_ENOMEM, BW_ETHREAD) are not tested.
 *
 * Calls that need an actor's context run in a probe actor, which executes
 * one operation per request and replies with its return code. Counters
 * shared with actors use seq_cst __atomic operations: the simplest correct
 * order, and their cost does not matter here.
 */
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_OP = 1, T_DATA, T_HOLD, T_NAMED_INIT };

enum op {
  OP_CTX = 1,         /* reply with the probe's ctx pointer */
  OP_LINK,            /* bw_link(ctx, pid) */
  OP_LINK_SELF,
  OP_UNLINK,
  OP_MONITOR,         /* bw_monitor(ctx, pid, &ref): u = ref */
  OP_MONITOR_NULLREF,
  OP_DEMONITOR,       /* bw_demonitor(ctx, u) */
  OP_EXIT_SELF,       /* bw_exit_self(ctx, (int)u, 0, NULL) */
  OP_SET_RT,          /* bw_set_receive_timeout(ctx, u) */
  OP_WAIT_EXIT,       /* bw_wait_exit(rt, pid, 0, NULL) on a scheduler thread */
  OP_CALL,            /* bw_call(rt, pid, ...) on a scheduler thread */
  OP_STOP_RT,         /* bw_runtime_stop(rt) from an actor */
  OP_REQUEST,         /* bw_request(ctx, pid, type = u, len = len) */
  OP_REQUEST_NULLDATA,
  OP_REPLY_STATUS,    /* bw_reply(ctx, msg, (int)u, ...) */
  OP_REPLY_NULLREQ,
  OP_REPLY_TYPE,      /* bw_reply with a reserved type */
  OP_REPLY_BIG,
  OP_REPLY_NULLDATA,
  OP_REPLY_MOVE_NOTREQ,
  OP_REPLY_MOVE_NULLPTR,
  OP_REPLY_MOVE_HUGE,
  OP_HOLD_REQ,        /* keep the request, do not answer it */
  OP_REPLY_HELD,      /* bw_reply to the kept request */
  OP_REPLY_MOVE_HELD, /* bw_reply_move to the kept request */
  OP_STOP_NOREPLY,    /* return BW_STOP without answering */
  OP_STATUS,          /* answer with status (int)u */
  OP_TAKE,            /* bw_msg_take on this (inline) request and on NULLs */
  OP_SPAWN_LINK,      /* bw_spawn with link, from inside */
  OP_REQUEST_DEADLINE, /* bw_request(ctx, pid, T_DATA, no payload, deadline u ms) */
};

typedef struct op_req {
  int op;
  uint32_t len;
  bw_pid_t pid;
  uint64_t u;
} op_req_t;

typedef struct op_res {
  int rc;
  int rc2;
  uint64_t u;
} op_res_t;

static int dtor_calls; /* atomic */
static void count_dtor(void *p) {
  (void)p;
  __atomic_add_fetch(&dtor_calls, 1, __ATOMIC_SEQ_CST);
}
static int dtors(void) { return __atomic_load_n(&dtor_calls, __ATOMIC_SEQ_CST); }

static int moved_cookie;

typedef struct probe {
  bw_msg_t held;  /* a kept request (its payload is not used) */
  bool has_held;
  uint64_t downs; /* BW_MSG_DOWN received */
  bw_reason_t down_reason;
} probe_t;

static int idle_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg);
static const bw_behaviour_t idle_beh = {.name = "idle", .handle = idle_handle};

static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  probe_t *p = state;
  if (msg->type == BW_MSG_DOWN) {
    p->downs++;
    memcpy(&p->down_reason, msg->data, sizeof p->down_reason);
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY)
    return BW_CONTINUE; /* replies to requests made by OP_REQUEST */
  if (msg->type != T_OP || msg->len != sizeof(op_req_t))
    return BW_CONTINUE;
  op_req_t q;
  memcpy(&q, msg->data, sizeof q);
  op_res_t r = {0, 0, 0};
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 0, sizeof big);
  bw_reply_t rep;
  switch (q.op) {
  case OP_CTX:
    r.u = (uint64_t)(uintptr_t)ctx;
    break;
  case OP_LINK:
    r.rc = bw_link(ctx, q.pid);
    break;
  case OP_LINK_SELF:
    r.rc = bw_link(ctx, bw_self(ctx));
    break;
  case OP_UNLINK:
    r.rc = bw_unlink(ctx, q.pid);
    break;
  case OP_MONITOR:
    r.rc = bw_monitor(ctx, q.pid, &r.u);
    break;
  case OP_MONITOR_NULLREF:
    r.rc = bw_monitor(ctx, q.pid, NULL);
    break;
  case OP_DEMONITOR:
    r.rc = bw_demonitor(ctx, q.u);
    break;
  case OP_EXIT_SELF:
    r.rc = bw_exit_self(ctx, (int)q.u, 0, NULL);
    break;
  case OP_SET_RT:
    r.rc = bw_set_receive_timeout(ctx, q.u);
    break;
  case OP_WAIT_EXIT:
    r.rc = bw_wait_exit(rt, q.pid, 0, NULL);
    break;
  case OP_CALL:
    r.rc = bw_call(rt, q.pid, T_DATA, NULL, 0, 0, &rep);
    break;
  case OP_STOP_RT:
    r.rc = bw_runtime_stop(rt);
    break;
  case OP_REQUEST:
    r.rc = bw_request(ctx, q.pid, (uint32_t)q.u, big, q.len, 0, &r.u);
    break;
  case OP_REQUEST_DEADLINE:
    r.rc = bw_request(ctx, q.pid, T_DATA, NULL, 0, q.u, &r.u);
    break;
  case OP_REQUEST_NULLDATA:
    r.rc = bw_request(ctx, q.pid, T_DATA, NULL, 4, 0, &r.u);
    break;
  case OP_REPLY_STATUS:
    r.rc = bw_reply(ctx, msg, (int)q.u, T_DATA, NULL, 0);
    break;
  case OP_REPLY_NULLREQ:
    r.rc = bw_reply(ctx, NULL, 0, T_DATA, NULL, 0);
    r.rc2 = bw_reply_move(ctx, NULL, 0, T_DATA, NULL, 0, NULL);
    break;
  case OP_REPLY_TYPE:
    r.rc = bw_reply(ctx, msg, 0, BW_MSG_SYSTEM_BASE, NULL, 0);
    r.rc2 = bw_reply_move(ctx, msg, 0, BW_MSG_EXIT, NULL, 0, NULL);
    break;
  case OP_REPLY_BIG:
    r.rc = bw_reply(ctx, msg, 0, T_DATA, big, sizeof big);
    break;
  case OP_REPLY_NULLDATA:
    r.rc = bw_reply(ctx, msg, 0, T_DATA, NULL, 8);
    break;
  case OP_REPLY_MOVE_NOTREQ: {
    bw_msg_t fake = *msg;
    fake.flags = 0;
    r.rc = bw_reply_move(ctx, &fake, 0, T_DATA, &moved_cookie, 4, count_dtor);
    break;
  }
  case OP_REPLY_MOVE_NULLPTR:
    r.rc = bw_reply_move(ctx, msg, 0, T_DATA, NULL, 4, count_dtor);
    break;
  case OP_REPLY_MOVE_HUGE:
    r.rc = bw_reply_move(ctx, msg, 0, T_DATA, &moved_cookie, (size_t)UINT32_MAX + 1u, count_dtor);
    break;
  case OP_HOLD_REQ:
    p->held = *msg;
    p->held.data = NULL;
    p->held.len = 0;
    p->has_held = true;
    return BW_CONTINUE; /* no answer */
  case OP_REPLY_HELD:
    r.rc = p->has_held ? bw_reply(ctx, &p->held, 0, T_DATA, NULL, 0) : -9999;
    break;
  case OP_REPLY_MOVE_HELD:
    r.rc = p->has_held ? bw_reply_move(ctx, &p->held, 0, T_DATA, &moved_cookie, 4, count_dtor)
                       : -9999;
    break;
  case OP_STOP_NOREPLY:
    return BW_STOP;
  case OP_STATUS:
    r.u = p->downs;
    bw_reply(ctx, msg, (int)(int64_t)q.u, T_DATA, &r, sizeof r);
    return BW_CONTINUE;
  case OP_TAKE:
    r.rc = bw_msg_take(ctx, msg) == NULL ? 0 : -1;      /* inline: not moved */
    r.rc2 = (bw_msg_take(NULL, msg) == NULL ? 0 : -1) + /* no ctx */
            (bw_msg_take(ctx, NULL) == NULL ? 0 : -1);
    break;
  case OP_SPAWN_LINK: {
    bw_spawn_opts_t o;
    bw_spawn_opts_init(&o);
    o.link = true;
    bw_pid_t kid;
    r.rc = bw_spawn(rt, &idle_beh, NULL, &o, &kid);
    r.u = kid;
    break;
  }
  default:
    r.rc = -9999;
  }
  bw_reply(ctx, msg, 0, T_OP, &r, sizeof r);
  return BW_CONTINUE;
}

static const bw_behaviour_t probe_beh = {
    .name = "probe", .state_size = sizeof(probe_t), .handle = probe_handle};

static int idle_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, T_DATA, NULL, 0);
  return BW_CONTINUE;
}

/* Runs one operation in the probe; returns its result (asserts the call). */
static op_res_t op3(bw_runtime_t *rt, bw_pid_t probe, int op, bw_pid_t pid, uint64_t u,
                    uint32_t len) {
  op_req_t q = {.op = op, .len = len, .pid = pid, .u = u};
  bw_reply_t rep;
  int rc = bw_call(rt, probe, T_OP, &q, sizeof q, 0, &rep);
  assert_int_equal(rc, 0);
  assert_int_equal(rep.len, sizeof(op_res_t));
  op_res_t r;
  memcpy(&r, rep.data, sizeof r);
  return r;
}

static op_res_t op(bw_runtime_t *rt, bw_pid_t probe, int o, bw_pid_t pid, uint64_t u) {
  return op3(rt, probe, o, pid, u, 0);
}

static bw_pid_t spawn_probe(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &probe_beh, NULL, NULL, &p), 0);
  return p;
}

static bw_pid_t spawn_idle(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &idle_beh, NULL, NULL, &p), 0);
  return p;
}

/* A pid that was alive and is now dead (stale). */
static bw_pid_t dead_pid(bw_runtime_t *rt) {
  bw_pid_t p = spawn_idle(rt);
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, p);
  return p;
}

/* --- a held actor with a full bounded mailbox ------------------------------------ */

static bwt_gate_t hold_gate;

static int holder_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_HOLD)
    bwt_gate_pass(&hold_gate);
  if (msg->flags & BW_MSGF_REQUEST)
    bw_reply(ctx, msg, 0, T_DATA, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t holder_beh = {.name = "holder", .handle = holder_handle};

/* Spawns an actor (on its own thread) with a mailbox of capacity 1 and
 * fills it: one message blocked in its handler, one queued. */
static bw_pid_t full_actor(bw_runtime_t *rt, const char *name) {
  bwt_gate_init(&hold_gate);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.mailbox_capacity = 1;
  o.dedicated_thread = true;
  o.name = name;
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &holder_beh, NULL, &o, &p), 0);
  assert_int_equal(bw_send(rt, p, T_HOLD, NULL, 0), 0);
  assert_true(bwt_gate_await_waiting(&hold_gate, 1));
  assert_int_equal(bw_send(rt, p, T_DATA, NULL, 0), 0);
  return p;
}

static void full_actor_release(void) {
  bwt_gate_open(&hold_gate);
}

/* --- actor.h ------------------------------------------------------------------------ */

static int init_calls, term_calls; /* atomic */

typedef struct init_arg {
  int mode;
} init_arg_t;

enum { INIT_OK = 0, INIT_RET_NEG, INIT_RET_POS, INIT_FAIL, INIT_FAIL_ZERO };

static int failing_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state;
  __atomic_add_fetch(&init_calls, 1, __ATOMIC_SEQ_CST);
  const init_arg_t *a = arg;
  switch (a != NULL ? a->mode : INIT_OK) {
  case INIT_RET_NEG:
    return -77;
  case INIT_RET_POS:
    return 5;
  case INIT_FAIL:
    bw_fail(ctx, BW_ETIMEDOUT, "init gave up after %d tries", 3);
  case INIT_FAIL_ZERO:
    bw_fail(ctx, 0, "no code");
  default:
    return 0;
  }
}

static void counting_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *r) {
  (void)ctx;
  (void)state;
  (void)r;
  __atomic_add_fetch(&term_calls, 1, __ATOMIC_SEQ_CST);
}

static const bw_behaviour_t initf_beh = {.name = "initf",
                                         .init = failing_init,
                                         .handle = idle_handle,
                                         .terminate = counting_terminate};

static const bw_behaviour_t huge_beh = {
    .name = "huge", .state_size = ((size_t)1 << 30) + 1, .handle = idle_handle};

static void test_actor_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  __atomic_store_n(&init_calls, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&term_calls, 0, __ATOMIC_SEQ_CST);

  /* bw_spawn */
  bw_pid_t pid = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, &huge_beh, NULL, NULL, &pid), BW_EINVAL); /* state > 1 GiB */
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  bw_reason_t why;
  o.init_error = &why;
  init_arg_t a = {INIT_RET_NEG};
  assert_int_equal(bw_spawn(rt, &initf_beh, &a, &o, &pid), -77); /* init's code */
  assert_int_equal(why.kind, BW_REASON_CRASH);
  assert_int_equal(why.code, -77);
  a.mode = INIT_FAIL;
  assert_int_equal(bw_spawn(rt, &initf_beh, &a, &o, &pid), BW_ETIMEDOUT); /* bw_fail's code */
  assert_int_equal(why.code, BW_ETIMEDOUT);
  assert_string_equal(why.text, "init gave up after 3 tries");
  a.mode = INIT_FAIL_ZERO;
  assert_int_equal(bw_spawn(rt, &initf_beh, &a, &o, &pid), BW_ECRASH); /* code 0: crash */
  a.mode = INIT_RET_POS;
  assert_int_equal(bw_spawn(rt, &initf_beh, &a, &o, &pid), BW_EINVAL); /* > 0: EINVAL */
  assert_int_equal(__atomic_load_n(&init_calls, __ATOMIC_SEQ_CST), 4);
  assert_int_equal(__atomic_load_n(&term_calls, __ATOMIC_SEQ_CST), 0); /* never after init failed */

  bw_spawn_opts_init(&o);
  o.name = "taken";
  bw_pid_t holder;
  assert_int_equal(bw_spawn(rt, &initf_beh, NULL, &o, &holder), 0);
  assert_int_equal(bw_spawn(rt, &initf_beh, NULL, &o, &pid), BW_EEXIST);
  assert_int_equal(__atomic_load_n(&init_calls, __ATOMIC_SEQ_CST), 5); /* not the loser's */
  assert_int_equal(bw_whereis(rt, "taken", &pid), 0);
  assert_int_equal(pid, holder);
  bw_runtime_stats_t s = bwt_stats(rt);
  assert_int_equal(s.live, 1);
  assert_int_equal(s.spawned, 1);

  /* spawn with link from inside an actor works (from outside: ENOTACTOR,
   * test_bad_input) */
  bw_pid_t probe = spawn_probe(rt);
  op_res_t r = op(rt, probe, OP_SPAWN_LINK, 0, 0);
  assert_int_equal(r.rc, 0);
  assert_true(bw_is_alive(rt, (bw_pid_t)r.u));

  /* ctx accessors on NULL */
  assert_int_equal(bw_self(NULL), BW_PID_NONE);
  assert_null(bw_ctx_runtime(NULL));
  assert_string_equal(bw_ctx_name(NULL), "");
  bw_trap_exit(NULL, true); /* no-op */
  bw_spawn_opts_init(NULL); /* no-op */

  /* the probe's ctx, used from the wrong thread (main) */
  bw_ctx_t *pctx = (bw_ctx_t *)(uintptr_t)op(rt, probe, OP_CTX, 0, 0).u;
  assert_non_null(pctx);
  bw_pid_t dead = dead_pid(rt);
  uint64_t ref = 0;

  /* bw_exit_self */
  assert_int_equal(bw_exit_self(NULL, BW_REASON_CRASH, -1, NULL), BW_EINVAL);
  assert_int_equal(bw_exit_self(pctx, BW_REASON_CRASH, -1, NULL), BW_EINVAL); /* wrong thread */
  assert_int_equal(op(rt, probe, OP_EXIT_SELF, 0, BW_REASON_KILL).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_EXIT_SELF, 0, (uint64_t)-1).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_EXIT_SELF, 0, BW_REASON__COUNT).rc, BW_EINVAL);
  assert_true(bw_is_alive(rt, probe));

  /* bw_set_receive_timeout */
  assert_int_equal(bw_set_receive_timeout(pctx, 10), BW_EINVAL); /* wrong thread */
  assert_int_equal(op(rt, probe, OP_SET_RT, 0, UINT64_MAX).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_SET_RT, 0, 0).rc, 0); /* off */

  /* bw_link */
  assert_int_equal(bw_link(NULL, dead), BW_ENOTACTOR);
  assert_int_equal(bw_link(pctx, dead), BW_ENOTACTOR); /* wrong thread */
  assert_int_equal(op(rt, probe, OP_LINK, BW_PID_NONE, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_LINK_SELF, 0, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_LINK, dead, 0).rc, BW_ENOPROC);
  assert_int_equal(op(rt, probe, OP_LINK, 0xDEADBEEFDEADBEEFull, 0).rc, BW_ENOPROC);

  /* bw_unlink */
  assert_int_equal(bw_unlink(NULL, dead), BW_ENOTACTOR);
  assert_int_equal(bw_unlink(pctx, dead), BW_ENOTACTOR);
  assert_int_equal(op(rt, probe, OP_UNLINK, BW_PID_NONE, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_UNLINK, dead, 0).rc, 0); /* not linked: 0 */

  /* bw_monitor / bw_demonitor */
  assert_int_equal(bw_monitor(NULL, dead, &ref), BW_ENOTACTOR);
  assert_int_equal(bw_monitor(pctx, dead, &ref), BW_ENOTACTOR);
  assert_int_equal(op(rt, probe, OP_MONITOR_NULLREF, dead, 0).rc, BW_EINVAL);
  r = op(rt, probe, OP_MONITOR, dead, 0); /* dead: 0, and a DOWN noproc */
  assert_int_equal(r.rc, 0);
  assert_int_not_equal(r.u, 0);
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, probe, T_OP, &(op_req_t){.op = OP_STATUS}, sizeof(op_req_t), 0,
                           &rep),
                   0);
  op_res_t st;
  memcpy(&st, rep.data, sizeof st);
  assert_int_equal(st.u, 1); /* one DOWN */
  assert_int_equal(op(rt, probe, OP_DEMONITOR, 0, r.u).rc, BW_ENOTFOUND); /* it fired */
  bw_pid_t other = spawn_idle(rt);
  r = op(rt, probe, OP_MONITOR, other, 0);
  assert_int_equal(r.rc, 0);
  assert_int_equal(bw_demonitor(pctx, r.u), BW_ENOTACTOR);
  assert_int_equal(bw_demonitor(NULL, r.u), BW_ENOTACTOR);
  assert_int_equal(op(rt, probe, OP_DEMONITOR, 0, r.u).rc, 0);
  assert_int_equal(op(rt, probe, OP_DEMONITOR, 0, r.u).rc, BW_ENOTFOUND); /* twice */
  assert_int_equal(op(rt, probe, OP_DEMONITOR, 0, 0).rc, BW_ENOTFOUND);

  /* bw_exit */
  assert_int_equal(bw_exit(rt, dead, BW_REASON_SHUTDOWN, 0, NULL), BW_ENOPROC); /* stale */
  assert_int_equal(bw_exit(rt, BW_PID_NONE, BW_REASON_KILL, 0, NULL), BW_ENOPROC);
  assert_int_equal(bw_exit(rt, other, BW_REASON_NORMAL, 0, NULL), 0); /* ignored */
  assert_int_equal(bw_call(rt, other, T_DATA, NULL, 0, 0, &rep), 0);
  assert_true(bw_is_alive(rt, other));

  /* bw_wait_exit */
  assert_int_equal(bw_wait_exit(NULL, other, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_wait_exit(rt, other, UINT64_MAX, NULL), BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_WAIT_EXIT, other, 0).rc, BW_EWOULDBLOCK);
  assert_int_equal(bw_wait_exit(rt, other, 1, NULL), BW_ETIMEDOUT); /* it never exits */
  assert_int_equal(bw_wait_exit(rt, dead, 0, &why), 0);
  assert_int_equal(why.kind, BW_REASON_NOPROC);

  /* bw_mailbox_depth */
  uint32_t depth;
  assert_int_equal(bw_mailbox_depth(NULL, other, &depth), BW_EINVAL);
  assert_int_equal(bw_mailbox_depth(rt, other, NULL), BW_EINVAL);
  assert_int_equal(bw_mailbox_depth(rt, dead, &depth), BW_ENOPROC);
  assert_int_equal(bw_mailbox_depth(rt, BW_PID_NONE, &depth), BW_ENOPROC);
  assert_int_equal(bw_mailbox_depth(rt, other, &depth), 0);

  /* bw_is_alive */
  assert_false(bw_is_alive(NULL, other));
  assert_false(bw_is_alive(rt, dead));

  assert_int_equal(bw_runtime_stop(rt), 0);
  s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* bw_fail outside its actor's callback aborts the process (a programming
 * error): checked in a child process. */
static void test_actor_h_fail_outside(void **state) {
  (void)state;
  if (getenv("BW_TEST_VALGRIND") != NULL)
    skip(); /* valgrind reports the child's abort as an error exit */
  fflush(NULL);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, 2);
    bw_fail(NULL, BW_ECRASH, "outside");
  }
  int wst = 0;
  assert_int_equal(waitpid(child, &wst, 0), child);
  assert_true(WIFSIGNALED(wst));
  assert_int_equal(WTERMSIG(wst), SIGABRT);
}

/* --- message.h ---------------------------------------------------------------------- */

static void test_message_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  __atomic_store_n(&dtor_calls, 0, __ATOMIC_SEQ_CST);
  bw_pid_t probe = spawn_probe(rt);
  bw_pid_t dead = dead_pid(rt);
  bw_ctx_t *pctx = (bw_ctx_t *)(uintptr_t)op(rt, probe, OP_CTX, 0, 0).u;
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 0, sizeof big);
  bw_reply_t rep;

  /* bw_send: a stale pid is a noproc dead letter */
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send(rt, dead, T_DATA, "x", 1), BW_ENOPROC);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_int_equal(after.sent, before.sent + 1);
  /* argument checks come before the size check */
  assert_int_equal(bw_send(rt, probe, BW_MSG_SYSTEM_BASE, big, sizeof big), BW_EINVAL);

  /* bw_send_move: who owns the pointer after each code */
  assert_int_equal(bw_send_move(NULL, probe, T_DATA, &moved_cookie, 4, count_dtor), BW_EINVAL);
  assert_int_equal(bw_send_move(rt, probe, T_DATA, NULL, 4, count_dtor), BW_EINVAL);
  assert_int_equal(bw_send_move(rt, probe, BW_MSG_DOWN, &moved_cookie, 4, count_dtor), BW_EINVAL);
  assert_int_equal(
      bw_send_move(rt, probe, T_DATA, &moved_cookie, (size_t)UINT32_MAX + 1u, count_dtor),
      BW_ETOOBIG);
  assert_int_equal(dtors(), 0); /* the caller kept it each time */
  assert_int_equal(bw_send_move(rt, dead, T_DATA, &moved_cookie, 4, count_dtor), BW_ENOPROC);
  assert_int_equal(dtors(), 1); /* dead-lettered: the runtime ran dtor */
  assert_int_equal(bw_send_move(rt, probe, T_DATA, NULL, 0, NULL), 0);

  /* bw_msg_take: NULL unless the current message's payload is moved */
  op_res_t r = op(rt, probe, OP_TAKE, 0, 0);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.rc2, 0);

  /* bw_send to no pid at all */
  assert_int_equal(bw_send(rt, BW_PID_NONE, T_DATA, NULL, 0), BW_ENOPROC);

  /* bw_request */
  uint64_t ref;
  assert_int_equal(bw_request(NULL, probe, T_DATA, NULL, 0, 0, &ref), BW_ENOTACTOR);
  assert_int_equal(bw_request(pctx, probe, T_DATA, NULL, 0, 0, &ref), BW_ENOTACTOR);
  assert_int_equal(op3(rt, probe, OP_REQUEST, probe, BW_MSG_SYSTEM_BASE, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_REQUEST_NULLDATA, probe, 0).rc, BW_EINVAL);
  assert_int_equal(op3(rt, probe, OP_REQUEST, probe, T_DATA, BW_MSG_INLINE_MAX + 1).rc,
                   BW_ETOOBIG);
  assert_int_equal(op3(rt, probe, OP_REQUEST, dead, T_DATA, 0).rc, BW_ENOPROC);

  /* bw_reply / bw_reply_move */
  bw_msg_t fake_req;
  memset(&fake_req, 0, sizeof fake_req);
  fake_req.flags = BW_MSGF_REQUEST;
  fake_req.from = probe;
  fake_req.ref = 1;
  assert_int_equal(bw_reply(NULL, &fake_req, 0, T_DATA, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_reply_move(NULL, &fake_req, 0, T_DATA, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_REPLY_STATUS, 0, 1).rc, BW_EINVAL); /* status > 0 */
  r = op(rt, probe, OP_REPLY_NULLREQ, 0, 0);
  assert_int_equal(r.rc, BW_EINVAL);
  assert_int_equal(r.rc2, BW_EINVAL);
  r = op(rt, probe, OP_REPLY_TYPE, 0, 0);
  assert_int_equal(r.rc, BW_EINVAL);
  assert_int_equal(r.rc2, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_REPLY_BIG, 0, 0).rc, BW_ETOOBIG);
  assert_int_equal(op(rt, probe, OP_REPLY_NULLDATA, 0, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_REPLY_MOVE_NOTREQ, 0, 0).rc, BW_EINVAL);
  assert_int_equal(op(rt, probe, OP_REPLY_MOVE_NULLPTR, 0, 0).rc, BW_EINVAL);
  /* reply_move's size limit is BW_EINVAL, not bw_reply's BW_ETOOBIG */
  assert_int_equal(op(rt, probe, OP_REPLY_MOVE_HUGE, 0, 0).rc, BW_EINVAL);
  assert_int_equal(dtors(), 1); /* the caller kept ptr each time */

  /* bw_call: ETIMEDOUT (the probe keeps the request; the deadline is on
   * the runtime's clock, which here is real: 1 ms) */
  op_req_t hold = {.op = OP_HOLD_REQ};
  assert_int_equal(bw_call(rt, probe, T_OP, &hold, sizeof hold, 1, &rep), BW_ETIMEDOUT);
  /* a reply to it now: the requester is gone */
  assert_int_equal(op(rt, probe, OP_REPLY_HELD, 0, 0).rc, BW_ENOPROC);
  assert_int_equal(op(rt, probe, OP_REPLY_MOVE_HELD, 0, 0).rc, BW_ENOPROC);
  BWT_POLL(dtors() == 2); /* dead-lettered: the runtime ran dtor */
  assert_true(bwt_stats(rt).dead_by_reason[BW_DL_LATE_REPLY] >= 2);

  assert_int_equal(bw_call(rt, probe, T_OP, NULL, 0, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_call(rt, dead, T_DATA, NULL, 0, 0, &rep), BW_ENOPROC);
  assert_int_equal(op(rt, probe, OP_CALL, probe, 0).rc, BW_EWOULDBLOCK);
  /* the replier's status comes back as the call's result */
  op_req_t stq = {.op = OP_STATUS, .u = (uint64_t)(int64_t)-77};
  assert_int_equal(bw_call(rt, probe, T_OP, &stq, sizeof stq, 0, &rep), -77);
  assert_int_equal(rep.status, -77);
  stq.u = (uint64_t)(int64_t)BW_ECIRCUIT_OPEN;
  assert_int_equal(bw_call(rt, probe, T_OP, &stq, sizeof stq, 0, &rep), BW_ECIRCUIT_OPEN);
  /* the target exits without answering: ENOPROC */
  bw_pid_t quitter = spawn_probe(rt);
  op_req_t quit = {.op = OP_STOP_NOREPLY};
  assert_int_equal(bw_call(rt, quitter, T_OP, &quit, sizeof quit, 0, &rep), BW_ENOPROC);
  BWT_AWAIT_DEAD(rt, quitter);

  /* BW_EFULL from every sending function, against a full mailbox */
  bw_pid_t full = full_actor(rt, "full");
  before = bwt_stats(rt);
  assert_int_equal(bw_send(rt, full, T_DATA, NULL, 0), BW_EFULL);
  assert_int_equal(bw_send_move(rt, full, T_DATA, &moved_cookie, 4, count_dtor), BW_EFULL);
  assert_int_equal(dtors(), 2); /* the caller kept it */
  assert_int_equal(bw_call(rt, full, T_DATA, NULL, 0, 0, &rep), BW_EFULL);
  assert_int_equal(op3(rt, probe, OP_REQUEST, full, T_DATA, 0).rc, BW_EFULL);
  assert_int_equal(bw_send_named(rt, "full", T_DATA, NULL, 0), BW_EFULL);
  after = bwt_stats(rt);
  assert_int_equal(after.rejected, before.rejected + 5);
  assert_int_equal(after.sent, before.sent + 2); /* the two op requests to the probe */
  full_actor_release();

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
  bwt_gate_destroy(&hold_gate);
}

/* --- runtime.h ------------------------------------------------------------------------- */

static int term_spawn_rc = 1; /* what a spawn from terminate during stop returned */

static void spawning_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *r) {
  (void)state;
  (void)r;
  bw_pid_t p;
  __atomic_store_n(&term_spawn_rc, bw_spawn(bw_ctx_runtime(ctx), &idle_beh, NULL, NULL, &p),
                   __ATOMIC_SEQ_CST);
}

static const bw_behaviour_t spawning_beh = {
    .name = "spawning", .handle = idle_handle, .terminate = spawning_terminate};

static void test_runtime_h(void **state) {
  (void)state;
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bw_runtime_opts_init(NULL); /* no-op */
  bw_runtime_t *rt = NULL;
  o.batch = 1000001; /* undocumented limit: at most 1,000,000 */
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
  assert_null(rt);

  assert_int_equal(bw_runtime_workers(NULL), 0);
  assert_int_equal(bw_now_ns(NULL), 0);
  assert_int_equal(bw_now_ms(NULL), 0);
  assert_string_equal(bw_dead_reason_name(-1), "unknown");
  assert_string_equal(bw_dead_reason_name(BW_DL__COUNT), "unknown");
  assert_string_equal(bw_dead_reason_name(BW_DL_FULL), "full");

  /* the clock: real clocks cannot be advanced */
  rt = bwt_runtime(1, false);
  assert_int_equal(bw_clock_advance(rt, 1), BW_EINVAL);
  bw_pid_t probe = spawn_probe(rt);
  assert_int_equal(op(rt, probe, OP_STOP_RT, 0, 0).rc, BW_EWOULDBLOCK); /* from an actor */
  assert_true(bw_is_alive(rt, probe));
  /* spawns are refused while stop runs (here: from a terminate callback) */
  bw_pid_t sp;
  assert_int_equal(bw_spawn(rt, &spawning_beh, NULL, NULL, &sp), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(__atomic_load_n(&term_spawn_rc, __ATOMIC_SEQ_CST), BW_ESHUTDOWN);
  assert_int_equal(bw_runtime_stop(rt), BW_ESHUTDOWN); /* double stop */
  bw_runtime_stats_t s;
  assert_int_equal(bw_runtime_stats(rt, &s), 0); /* still answers */
  assert_int_equal(s.live, 0);
  bw_runtime_destroy(rt); /* after stop: fine */

  rt = bwt_runtime(1, true);
  assert_int_equal(bw_clock_advance(rt, UINT64_MAX), BW_EINVAL);
  assert_int_equal(bw_clock_advance(rt, 0), 0);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  assert_int_equal(bw_now_ms(rt), 5);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_clock_advance(rt, 1), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

/* Everything after bw_runtime_stop (the operations a stopped runtime
 * refuses, and those that still answer). */
static void test_after_stop(void **state) {
  (void)state;
  __atomic_store_n(&dtor_calls, 0, __ATOMIC_SEQ_CST);
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_idle(rt);
  assert_int_equal(bw_register(rt, "p", p), 0);
  bw_timer_t t;
  assert_int_equal(bw_send_after(rt, p, 100, T_DATA, NULL, 0, &t), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s0 = bwt_stats(rt);
  assert_int_equal(s0.dead_by_reason[BW_DL_SHUTDOWN], 1); /* the pending timer */

  bw_pid_t q;
  bw_reply_t rep;
  bw_reason_t why;
  uint32_t depth;
  assert_int_equal(bw_spawn(rt, &idle_beh, NULL, NULL, &q), BW_ESHUTDOWN);
  assert_int_equal(bw_send(rt, p, T_DATA, NULL, 0), BW_ESHUTDOWN);
  assert_int_equal(bw_send_move(rt, p, T_DATA, &moved_cookie, 4, count_dtor), BW_ESHUTDOWN);
  assert_int_equal(dtors(), 0); /* the caller keeps ptr */
  assert_int_equal(bw_call(rt, p, T_DATA, NULL, 0, 0, &rep), BW_ESHUTDOWN);
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), BW_ESHUTDOWN);
  assert_int_equal(bw_wait_exit(rt, p, 0, &why), BW_ESHUTDOWN);
  assert_int_equal(bw_runtime_stop(rt), BW_ESHUTDOWN);
  assert_int_equal(bw_clock_advance(rt, 1), BW_ESHUTDOWN);
  assert_int_equal(bw_send_after(rt, p, 1, T_DATA, NULL, 0, &t), BW_ESHUTDOWN);
  assert_int_equal(bw_send_interval(rt, p, 1, T_DATA, NULL, 0, &t), BW_ESHUTDOWN);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ESHUTDOWN);
  assert_int_equal(bw_register(rt, "q", p), BW_ESHUTDOWN);
  assert_int_equal(bw_unregister(rt, "p"), BW_ENOTFOUND); /* its holder is gone */
  assert_int_equal(bw_whereis(rt, "p", &q), BW_ENOTFOUND);
  assert_int_equal(bw_send_named(rt, "p", T_DATA, NULL, 0), BW_ESHUTDOWN);
  assert_int_equal(bw_dead_letter_subscribe(rt, p), BW_ESHUTDOWN);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, p), BW_ENOTFOUND);
  assert_int_equal(bw_event_subscribe(rt, p, BW_EV_ALL), BW_ESHUTDOWN);
  assert_int_equal(bw_event_unsubscribe(rt, p), BW_ENOTFOUND);
  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = BW_EV_DEAD_LETTER;
  assert_int_equal(bw_event_publish(rt, &ev), 0); /* nobody listens */
  assert_int_equal(bw_mailbox_depth(rt, p, &depth), BW_ENOPROC);
  assert_false(bw_is_alive(rt, p));
  bw_runtime_stats_t s1 = bwt_stats(rt);
  /* refused calls count nothing */
  assert_int_equal(s1.sent, s0.sent);
  assert_int_equal(s1.dead_letters, s0.dead_letters);
  bwt_assert_accounting(&s1);
  bw_runtime_destroy(rt);
}

/* --- timer.h ------------------------------------------------------------------------------ */

static void test_timer_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_idle(rt);
  bw_timer_t t = 0;
  assert_int_equal(bw_send_after(rt, p, UINT64_MAX, T_DATA, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_interval(rt, p, UINT64_MAX, T_DATA, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_interval(rt, p, 10, BW_MSG_SYSTEM_BASE, NULL, 0, &t), BW_EINVAL);
  assert_int_equal(bw_send_interval(rt, p, 10, T_DATA, NULL, 1, &t), BW_EINVAL);

  /* cancel: once 0, then ENOTFOUND */
  assert_int_equal(bw_send_after(rt, p, 50, T_DATA, NULL, 0, &t), 0);
  assert_int_equal(bw_timer_cancel(rt, t), 0);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND);
  assert_int_equal(bw_timer_cancel(rt, 0), BW_EINVAL);

  /* an interval can be cancelled after it has fired; a one-shot cannot */
  bw_timer_t iv;
  assert_int_equal(bw_send_interval(rt, p, 10, T_DATA, NULL, 0, &iv), 0);
  assert_int_equal(bw_clock_advance(rt, 35), 0); /* three ticks */
  assert_int_equal(bw_timer_cancel(rt, iv), 0);
  assert_int_equal(bw_timer_cancel(rt, iv), BW_ENOTFOUND);

  /* a timer to a dead pid is accepted; it fires as a noproc dead letter,
   * and an interval to it ends by itself (then: ENOTFOUND) */
  bw_pid_t dead = dead_pid(rt);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send_after(rt, dead, 5, T_DATA, NULL, 0, &t), 0);
  assert_int_equal(bw_send_interval(rt, dead, 5, T_DATA, NULL, 0, &iv), 0);
  assert_int_equal(bw_clock_advance(rt, 5), 0);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 2);
  assert_int_equal(bw_timer_cancel(rt, t), BW_ENOTFOUND);
  assert_int_equal(bw_timer_cancel(rt, iv), BW_ENOTFOUND);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* The timer cap (bw_runtime_opts.max_timers, timer.h): BW_ELIMIT from the
 * calls that arm a timer of the application at the cap, and from the
 * deadlines' calls once their quarter of headroom is used too. */
static void test_timer_cap(void **state) {
  (void)state;
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bw_runtime_t *rt = NULL;
  o.max_timers = BW_TIMERS_MAX + 1;
  assert_int_equal(bw_runtime_create(&o, &rt), BW_EINVAL);
  assert_null(rt);
  o.max_timers = 4; /* deadlines: up to 5 */
  o.manual_clock = true;
  o.workers = 2;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  bw_pid_t probe = spawn_probe(rt);
  bw_pid_t idle = spawn_idle(rt);
  for (int i = 0; i < 4; i++)
    assert_int_equal(bw_send_after(rt, idle, 1000, T_DATA, NULL, 0, NULL), 0);
  bw_runtime_stats_t before = bwt_stats(rt);
  bw_timer_t t = 7;
  assert_int_equal(bw_send_after(rt, idle, 1000, T_DATA, NULL, 0, &t), BW_ELIMIT);
  assert_int_equal(t, 7);
  assert_int_equal(bw_send_interval(rt, idle, 10, T_DATA, NULL, 0, NULL), BW_ELIMIT);
  assert_int_equal(op(rt, probe, OP_SET_RT, 0, 100).rc, BW_ELIMIT);
  assert_int_equal(bwt_stats(rt).sent, before.sent + 2); /* the op's request and reply only */
  /* a deadline still fits (the headroom); with it taken (a request that
   * another probe never answers keeps its deadline pending), none does */
  bw_reply_t rep;
  assert_int_equal(bw_call(rt, idle, T_DATA, NULL, 0, 100, &rep), 0);
  bw_pid_t mute = spawn_probe(rt);
  assert_int_equal(op(rt, probe, OP_REQUEST_DEADLINE, mute, 100000).rc, 0);
  assert_int_equal(op(rt, probe, OP_REQUEST_DEADLINE, idle, 100).rc, BW_ELIMIT);
  assert_int_equal(bw_call(rt, idle, T_DATA, NULL, 0, 100, &rep), BW_ELIMIT);
  assert_int_equal(bw_wait_exit(rt, idle, 100, NULL), BW_ELIMIT);
  /* the library's own types are never refused for the cap */
  assert_int_equal(bw_send_after(rt, idle, 1000, BW_MSG_PATTERN_BASE + 0xFF00u, NULL, 0, NULL), 0);
  assert_int_equal(bw_call(rt, idle, T_DATA, NULL, 0, 0, &rep), 0); /* no deadline: fine */
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- registry.h ----------------------------------------------------------------------------- */

static void test_registry_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p = spawn_idle(rt), p2 = spawn_idle(rt);
  bw_pid_t dead = dead_pid(rt);
  char long_name[BW_NAME_MAX + 2];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  char max_name[BW_NAME_MAX + 1];
  memset(max_name, 'm', sizeof max_name - 1);
  max_name[sizeof max_name - 1] = '\0';
  bw_pid_t out;

  /* bw_register */
  assert_int_equal(bw_register(NULL, "a", p), BW_EINVAL);
  assert_int_equal(bw_register(rt, NULL, p), BW_EINVAL);
  assert_int_equal(bw_register(rt, "", p), BW_EINVAL);
  assert_int_equal(bw_register(rt, long_name, p), BW_EINVAL);
  assert_int_equal(bw_register(rt, "a", dead), BW_ENOPROC);
  assert_int_equal(bw_register(rt, "a", BW_PID_NONE), BW_ENOPROC);
  assert_int_equal(bw_register(rt, max_name, p), 0); /* the limit itself */
  assert_int_equal(bw_register(rt, "a", p), 0);
  assert_int_equal(bw_register(rt, "a", p2), BW_EEXIST);
  assert_int_equal(bw_register(rt, "a", p), BW_EEXIST); /* even for its holder */
  assert_int_equal(bw_register(rt, "b", p), 0);         /* a pid may have several */

  /* bw_whereis */
  assert_int_equal(bw_whereis(NULL, "a", &out), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, "a", NULL), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, NULL, &out), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, long_name, &out), BW_EINVAL);
  assert_int_equal(bw_whereis(rt, "zz", &out), BW_ENOTFOUND);
  assert_int_equal(bw_whereis(rt, "a", &out), 0);
  assert_int_equal(out, p);

  /* bw_send_named */
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 0, sizeof big);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send_named(NULL, "a", T_DATA, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send_named(rt, NULL, T_DATA, NULL, 0), BW_EINVAL);
  assert_int_equal(bw_send_named(rt, "a", T_DATA, NULL, 1), BW_EINVAL);
  assert_int_equal(bw_send_named(rt, "a", T_DATA, big, sizeof big), BW_ETOOBIG);
  assert_int_equal(bw_send_named(rt, "zz", T_DATA, big, sizeof big), BW_ETOOBIG);
  bw_runtime_stats_t mid = bwt_stats(rt);
  assert_int_equal(mid.sent, before.sent);
  assert_int_equal(bw_send_named(rt, "zz", T_DATA, "x", 1), BW_ENOTFOUND);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC], before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_int_equal(bw_send_named(rt, "a", T_DATA, "x", 1), 0);

  /* bw_unregister */
  assert_int_equal(bw_unregister(NULL, "a"), BW_EINVAL);
  assert_int_equal(bw_unregister(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_unregister(rt, ""), BW_EINVAL);
  assert_int_equal(bw_unregister(rt, "zz"), BW_ENOTFOUND);
  assert_int_equal(bw_unregister(rt, "b"), 0);
  assert_int_equal(bw_unregister(rt, "b"), BW_ENOTFOUND);

  /* a dead holder frees its names */
  assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, p);
  assert_int_equal(bw_whereis(rt, "a", &out), BW_ENOTFOUND);
  assert_int_equal(bw_unregister(rt, max_name), BW_ENOTFOUND);
  assert_int_equal(bw_register(rt, "a", p2), 0);
  assert_int_equal(bw_send_named(rt, "a", T_DATA, NULL, 0), 0);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

/* --- dead_letter.h and event.h ----------------------------------------------------------- */

static void test_dead_letter_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t dead = dead_pid(rt);
  bw_pid_t subs[17];
  for (int i = 0; i < 17; i++)
    subs[i] = spawn_idle(rt);
  assert_int_equal(bw_dead_letter_subscribe(NULL, subs[0]), BW_EINVAL);
  assert_int_equal(bw_dead_letter_subscribe(rt, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_dead_letter_subscribe(rt, dead), BW_ENOPROC);
  for (int i = 0; i < 16; i++)
    assert_int_equal(bw_dead_letter_subscribe(rt, subs[i]), 0);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[0]), 0); /* again: no new slot */
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), BW_ELIMIT);
  assert_int_equal(bw_dead_letter_unsubscribe(NULL, subs[0]), BW_EINVAL);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, subs[16]), BW_ENOTFOUND);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, subs[3]), 0);
  assert_int_equal(bw_dead_letter_unsubscribe(rt, subs[3]), BW_ENOTFOUND);
  assert_int_equal(bw_dead_letter_subscribe(rt, subs[16]), 0); /* a slot is free again */
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

static void test_event_h(void **state) {
  (void)state;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t dead = dead_pid(rt);
  bw_pid_t subs[33];
  for (int i = 0; i < 33; i++)
    subs[i] = spawn_idle(rt);
  assert_int_equal(bw_event_subscribe(NULL, subs[0], BW_EV_ALL), BW_EINVAL);
  assert_int_equal(bw_event_subscribe(rt, BW_PID_NONE, BW_EV_ALL), BW_EINVAL);
  assert_int_equal(bw_event_subscribe(rt, subs[0], 0), BW_EINVAL); /* empty mask */
  assert_int_equal(bw_event_subscribe(rt, dead, BW_EV_ALL), BW_ENOPROC);
  for (int i = 0; i < 32; i++)
    assert_int_equal(bw_event_subscribe(rt, subs[i], BW_EV_MASK(BW_EV_HEALTH_CHANGED)), 0);
  assert_int_equal(bw_event_subscribe(rt, subs[0], BW_EV_ALL), 0); /* replaces the mask */
  assert_int_equal(bw_event_subscribe(rt, subs[32], BW_EV_ALL), BW_ELIMIT);

  bw_event_t ev;
  memset(&ev, 0, sizeof ev);
  assert_int_equal(bw_event_publish(NULL, &ev), BW_EINVAL);
  assert_int_equal(bw_event_publish(rt, NULL), BW_EINVAL);
  assert_int_equal(bw_event_publish(rt, &ev), BW_EINVAL); /* type 0 */
  ev.type = 64;
  assert_int_equal(bw_event_publish(rt, &ev), BW_EINVAL);
  ev.type = BW_EV_HEALTH_CHANGED;
  assert_int_equal(bw_event_publish(rt, &ev), 32);
  ev.type = BW_EV_DEAD_LETTER;
  ev.time_ns = 0;
  assert_int_equal(bw_event_publish(rt, &ev), 1); /* only subs[0] takes all */
  assert_false(bw_event_wanted(NULL, BW_EV_DEAD_LETTER));
  assert_false(bw_event_wanted(rt, 0));
  assert_false(bw_event_wanted(rt, 64));
  assert_true(bw_event_wanted(rt, BW_EV_DEAD_LETTER));
  assert_string_equal(bw_event_type_name(0), "unknown");
  assert_string_equal(bw_event_type_name(BW_EV__COUNT), "unknown");
  bw_event_set_names(NULL, "a", "b", "c"); /* no-op */
  bw_event_set_names(&ev, NULL, NULL, NULL);
  assert_string_equal(ev.source_name, "");

  assert_int_equal(bw_event_unsubscribe(NULL, subs[0]), BW_EINVAL);
  assert_int_equal(bw_event_unsubscribe(rt, BW_PID_NONE), BW_EINVAL);
  assert_int_equal(bw_event_unsubscribe(rt, subs[32]), BW_ENOTFOUND);
  assert_int_equal(bw_event_unsubscribe(rt, subs[0]), 0);
  assert_int_equal(bw_event_unsubscribe(rt, subs[0]), BW_ENOTFOUND);
  assert_int_equal(bw_event_subscribe(rt, subs[32], BW_EV_ALL), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bw_runtime_stats_t s = bwt_stats(rt);
  bwt_assert_accounting(&s);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actor_h),
      cmocka_unit_test(test_actor_h_fail_outside),
      cmocka_unit_test(test_message_h),
      cmocka_unit_test(test_runtime_h),
      cmocka_unit_test(test_after_stop),
      cmocka_unit_test(test_timer_h),
      cmocka_unit_test(test_timer_cap),
      cmocka_unit_test(test_registry_h),
      cmocka_unit_test(test_dead_letter_h),
      cmocka_unit_test(test_event_h),
  };
  return BWT_RUN_SUITE(tests);
}
