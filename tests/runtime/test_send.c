/*
 * bw_send and bw_send_move: inline copies (up to BW_MSG_INLINE_MAX, empty
 * payloads), moved pointers and their destructors (once, after the handler;
 * never after bw_msg_take; on a dead letter; on a crash), sender pid.
 */
#include "support.h"

enum { T_DATA = 1, T_MOVE, T_TAKE, T_MOVE_CRASH, T_GET, T_FWD };

static bwt_sync_t sync_ = BWT_SYNC_INIT;

/* Guarded by sync_. */
static struct {
  int seq;             /* a global step counter, to order events */
  int handler_end_seq; /* step at which the last T_MOVE handler returned */
  int dtor_calls;
  int dtor_seq;
  void *dtor_arg;
  void *seen_ptr;
  uint32_t seen_len;
  uint32_t seen_flags;
  void *taken;
  int taken_freed;
  bool inline_take_null;
} ev;

static void reset(void) {
  bwt_lock(&sync_);
  memset(&ev, 0, sizeof ev);
  bwt_unlock(&sync_);
}

static void counting_dtor(void *p) {
  bwt_lock(&sync_);
  ev.dtor_calls++;
  ev.dtor_seq = ++ev.seq;
  ev.dtor_arg = p;
  bwt_unlock_signal(&sync_);
  free(p);
}

typedef struct sink_state {
  int handled;
  uint8_t last[BW_MSG_INLINE_MAX];
  uint32_t last_len;
  bool last_data_null;
  bw_pid_t last_from;
} sink_state_t;

typedef struct sink_info {
  int handled;
  uint32_t last_len;
  bool last_data_null;
  bw_pid_t last_from;
  uint8_t sum; /* xor of the last payload's bytes */
} sink_info_t;

static int sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  sink_state_t *st = state;
  switch (msg->type) {
  case T_DATA:
    st->handled++;
    st->last_len = msg->len;
    st->last_data_null = msg->data == NULL;
    st->last_from = msg->from;
    if (msg->len > 0 && msg->len <= sizeof st->last)
      memcpy(st->last, msg->data, msg->len);
    bwt_lock(&sync_);
    ev.inline_take_null = bw_msg_take(ctx, msg) == NULL;
    bwt_unlock(&sync_);
    return BW_CONTINUE;
  case T_MOVE:
  case T_MOVE_CRASH:
    st->handled++;
    bwt_lock(&sync_);
    ev.seen_ptr = (void *)msg->data;
    ev.seen_len = msg->len;
    ev.seen_flags = msg->flags;
    ev.handler_end_seq = ++ev.seq;
    bwt_unlock(&sync_);
    return msg->type == T_MOVE_CRASH ? BW_ECRASH : BW_CONTINUE;
  case T_TAKE: {
    st->handled++;
    void *p = bw_msg_take(ctx, msg);
    bwt_lock(&sync_);
    ev.seen_ptr = (void *)msg->data;
    ev.seen_flags = msg->flags;
    ev.taken = p;
    ev.handler_end_seq = ++ev.seq;
    bwt_unlock(&sync_);
    if (p != NULL) {
      free(p);
      bwt_lock(&sync_);
      ev.taken_freed++;
      bwt_unlock(&sync_);
    }
    return BW_CONTINUE;
  }
  case T_FWD: {
    /* forwards the payload (a pid) a message, so its sender is an actor */
    bw_pid_t to;
    memcpy(&to, msg->data, sizeof to);
    bw_send(bw_ctx_runtime(ctx), to, T_DATA, "x", 1);
    return BW_CONTINUE;
  }
  case T_GET: {
    sink_info_t info;
    memset(&info, 0, sizeof info);
    info.handled = st->handled;
    info.last_len = st->last_len;
    info.last_data_null = st->last_data_null;
    info.last_from = st->last_from;
    for (uint32_t i = 0; i < st->last_len && i < sizeof st->last; i++)
      info.sum ^= st->last[i];
    bw_reply(ctx, msg, 0, T_GET, &info, sizeof info);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t sink = {
    .name = "sink", .state_size = sizeof(sink_state_t), .handle = sink_handle};

static sink_info_t get_info(bw_runtime_t *rt, bw_pid_t pid) {
  bw_reply_t rep;
  sink_info_t info;
  assert_int_equal(bw_call(rt, pid, T_GET, NULL, 0, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof info);
  memcpy(&info, rep.data, sizeof info);
  return info;
}

static void test_inline_copy_max_and_empty(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);

  uint8_t buf[BW_MSG_INLINE_MAX];
  uint8_t x = 0;
  for (size_t i = 0; i < sizeof buf; i++) {
    buf[i] = (uint8_t)(i * 7 + 3);
    x ^= buf[i];
  }
  assert_int_equal(bw_send(rt, pid, T_DATA, buf, sizeof buf), 0);
  /* the copy was taken at send time */
  memset(buf, 0, sizeof buf);
  sink_info_t info = get_info(rt, pid);
  assert_int_equal(info.handled, 1);
  assert_int_equal(info.last_len, BW_MSG_INLINE_MAX);
  assert_int_equal(info.sum, x);
  assert_int_equal(info.last_from, BW_PID_NONE);

  assert_int_equal(bw_send(rt, pid, T_DATA, NULL, 0), 0);
  info = get_info(rt, pid);
  assert_int_equal(info.handled, 2);
  assert_int_equal(info.last_len, 0);
  assert_true(info.last_data_null);

  /* one byte too many is refused, and not counted as sent */
  uint8_t big[BW_MSG_INLINE_MAX + 1];
  memset(big, 1, sizeof big);
  bw_runtime_stats_t before = bwt_stats(rt);
  assert_int_equal(bw_send(rt, pid, T_DATA, big, sizeof big), BW_ETOOBIG);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.sent, before.sent);
  info = get_info(rt, pid);
  assert_int_equal(info.handled, 2);

  /* bw_msg_take on an inline message gives NULL */
  bwt_lock(&sync_);
  assert_true(ev.inline_take_null);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_sender_pid(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t a, b;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &a), 0);
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &b), 0);
  /* a sends to b from its handler: msg->from is a */
  assert_int_equal(bw_send(rt, a, T_FWD, &b, sizeof b), 0);
  BWT_POLL(get_info(rt, b).handled == 1);
  sink_info_t info = get_info(rt, b);
  assert_int_equal(info.last_from, a);
  bw_runtime_destroy(rt);
}

static void test_move_dtor_once_after_handler(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);

  char *p = malloc(1000);
  assert_non_null(p);
  memset(p, 'm', 1000);
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, p, 1000, counting_dtor), 0);
  BWT_AWAIT(&sync_, ev.dtor_calls >= 1);
  /* later messages are handled after the dtor had its chance to run twice */
  (void)get_info(rt, pid);
  bwt_lock(&sync_);
  assert_ptr_equal(ev.seen_ptr, p);
  assert_int_equal(ev.seen_len, 1000);
  assert_true(ev.seen_flags & BW_MSGF_MOVED);
  assert_int_equal(ev.dtor_calls, 1);
  assert_ptr_equal(ev.dtor_arg, p);
  assert_true(ev.dtor_seq > ev.handler_end_seq);
  bwt_unlock(&sync_);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bwt_lock(&sync_);
  assert_int_equal(ev.dtor_calls, 1);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_move_take_skips_dtor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);

  char *p = malloc(64);
  assert_non_null(p);
  assert_int_equal(bw_send_move(rt, pid, T_TAKE, p, 64, counting_dtor), 0);
  /* the call is handled after T_TAKE (same sender): the take is done */
  (void)get_info(rt, pid);
  bwt_lock(&sync_);
  assert_ptr_equal(ev.taken, p);
  assert_true(ev.seen_flags & BW_MSGF_MOVED);
  assert_int_equal(ev.taken_freed, 1);
  bwt_unlock(&sync_);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bwt_lock(&sync_);
  assert_int_equal(ev.dtor_calls, 0);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_move_null_dtor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);
  static char stat_buf[32] = "static";
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, stat_buf, sizeof stat_buf, NULL), 0);
  (void)get_info(rt, pid);
  bwt_lock(&sync_);
  assert_ptr_equal(ev.seen_ptr, stat_buf);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_move_to_dead_pid_runs_dtor(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);
  assert_int_equal(bw_exit(rt, pid, BW_REASON_KILL, 0, NULL), 0);
  BWT_AWAIT_DEAD(rt, pid);

  bw_runtime_stats_t before = bwt_stats(rt);
  char *p = malloc(16);
  assert_non_null(p);
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, p, 16, counting_dtor), BW_ENOPROC);
  BWT_AWAIT(&sync_, ev.dtor_calls >= 1);
  bw_runtime_stats_t after = bwt_stats(rt);
  assert_int_equal(after.dead_by_reason[BW_DL_NOPROC],
                   before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_int_equal(after.sent, before.sent + 1);

  assert_int_equal(bw_runtime_stop(rt), 0);
  bwt_lock(&sync_);
  assert_int_equal(ev.dtor_calls, 1);
  assert_ptr_equal(ev.dtor_arg, p);
  assert_ptr_equal(ev.seen_ptr, NULL); /* never handled */
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_move_dtor_runs_after_crash(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);
  char *p = malloc(8);
  assert_non_null(p);
  assert_int_equal(bw_send_move(rt, pid, T_MOVE_CRASH, p, 8, counting_dtor), 0);
  BWT_AWAIT(&sync_, ev.dtor_calls >= 1);
  BWT_AWAIT_DEAD(rt, pid);
  assert_int_equal(bw_runtime_stop(rt), 0);
  bwt_lock(&sync_);
  assert_int_equal(ev.dtor_calls, 1);
  assert_ptr_equal(ev.seen_ptr, p);
  bwt_unlock(&sync_);
  bw_runtime_destroy(rt);
}

static void test_move_bad_args_keep_ownership(void **state) {
  (void)state;
  reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t pid;
  assert_int_equal(bw_spawn(rt, &sink, NULL, NULL, &pid), 0);
  char *p = malloc(8);
  assert_non_null(p);
  assert_int_equal(bw_send_move(rt, pid, BW_MSG_SYSTEM_BASE, p, 8, counting_dtor), BW_EINVAL);
  assert_int_equal(bw_send_move(NULL, pid, T_MOVE, p, 8, counting_dtor), BW_EINVAL);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_send_move(rt, pid, T_MOVE, p, 8, counting_dtor), BW_ESHUTDOWN);
  bwt_lock(&sync_);
  assert_int_equal(ev.dtor_calls, 0);
  bwt_unlock(&sync_);
  free(p); /* still ours */
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inline_copy_max_and_empty),
      cmocka_unit_test(test_sender_pid),
      cmocka_unit_test(test_move_dtor_once_after_handler),
      cmocka_unit_test(test_move_take_skips_dtor),
      cmocka_unit_test(test_move_null_dtor),
      cmocka_unit_test(test_move_to_dead_pid_runs_dtor),
      cmocka_unit_test(test_move_dtor_runs_after_crash),
      cmocka_unit_test(test_move_bad_args_keep_ownership),
  };
  return BWT_RUN_SUITE(tests);
}
