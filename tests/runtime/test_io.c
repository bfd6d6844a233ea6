/*
 * I/O in the runtime (bulwark/io.h): descriptor watches delivered as
 * BW_MSG_IO messages by the workers that poll, their ownership by actors, and
 * the TCP helpers (a line-protocol echo server serving 1,000 concurrent
 * connections from a 2-worker runtime).
 *
 * Operations that need an actor's context run in a probe actor: the main
 * thread bw_call's it with an op, it answers with the return code and
 * records every BW_MSG_IO it receives in a shared log (under a bwt_sync,
 * asserted on the main thread).
 */
#include "support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- the probe --------------------------------------------------------------- */

enum { T_OP = 1 };
enum {
  OP_WATCH = 1,  /* bw_io_watch(fd, ev, flags): reply payload = the id */
  OP_ARM,        /* bw_io_arm(w, ev) */
  OP_UNWATCH,    /* bw_io_unwatch(w) */
  OP_DEADLINE,   /* bw_io_deadline(w, ms) */
  OP_QUEUED_UNWATCH, /* watch fd for IN, write to wfd, wait until the event is
                      * queued behind this handler, then unwatch */
  OP_QUEUED_KILL,    /* same, then kills itself: it dies with the event queued */
  OP_CHURN,      /* ms times: watch fd (readable) for IN, arm it again, unwatch */
  OP_NOP,
};

typedef struct op {
  int op;
  int fd, wfd;
  uint32_t ev, flags;
  bw_io_t w;
  uint64_t ms;
} op_t;

typedef struct io_log {
  bwt_sync_t sync;
  int n;                 /* BW_MSG_IO received */
  bw_io_t last_w;
  uint32_t last_ev;
  int n_timeout;
} io_log_t;

static io_log_t LOG = {.sync = BWT_SYNC_INIT};

static void log_reset(void) {
  bwt_lock(&LOG.sync);
  LOG.n = 0;
  LOG.last_w = 0;
  LOG.last_ev = 0;
  LOG.n_timeout = 0;
  bwt_unlock(&LOG.sync);
}

static int probe_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  (void)st;
  if (msg->type == BW_MSG_IO) {
    const bw_io_event_t *ev = msg->data;
    bwt_lock(&LOG.sync);
    LOG.n++;
    LOG.last_w = ev->watch;
    LOG.last_ev = ev->events;
    if (ev->events & BW_IO_TIMEOUT)
      LOG.n_timeout++;
    bwt_unlock_signal(&LOG.sync);
    return BW_CONTINUE;
  }
  if (msg->type != T_OP)
    return BW_CONTINUE;
  op_t o;
  memcpy(&o, msg->data, sizeof o);
  int rc = 0;
  bw_io_t w = 0;
  switch (o.op) {
  case OP_WATCH:
    rc = bw_io_watch(ctx, o.fd, o.ev, o.flags, NULL, &w);
    break;
  case OP_ARM:
    rc = bw_io_arm(ctx, o.w, o.ev);
    break;
  case OP_UNWATCH:
    rc = bw_io_unwatch(ctx, o.w);
    break;
  case OP_DEADLINE:
    rc = bw_io_deadline(ctx, o.w, o.ms, NULL);
    break;
  case OP_QUEUED_UNWATCH:
  case OP_QUEUED_KILL: {
    rc = bw_io_watch(ctx, o.fd, BW_IO_IN, o.flags, NULL, &w);
    if (rc != 0)
      break;
    if (write(o.wfd, "x", 1) != 1) {
      rc = BW_EIO;
      break;
    }
    /* the other worker (blocked in epoll_wait, or woken for this watch's
     * epoll set) queues the event behind this handler: wait for it (a
     * bounded wait on a scheduler thread, acceptable in a test) */
    struct timespec dl = bwt_deadline();
    unsigned spins = 0;
    uint32_t depth = 0;
    while (bw_mailbox_depth(bw_ctx_runtime(ctx), bw_self(ctx), &depth) == 0 && depth == 0 &&
           !bwt_past(&dl))
      bwt_relax(&spins);
    if (depth == 0) {
      rc = BW_ETIMEDOUT;
      break;
    }
    if (o.op == OP_QUEUED_UNWATCH)
      rc = bw_io_unwatch(ctx, w);
    else /* the kill is taken before the next message: the queued event */
      rc = bw_exit(bw_ctx_runtime(ctx), bw_self(ctx), BW_REASON_KILL, 0, NULL);
    break;
  }
  case OP_CHURN:
    for (uint64_t i = 0; i < o.ms && rc == 0; i++) {
      rc = bw_io_watch(ctx, o.fd, BW_IO_IN, 0, NULL, &w);
      if (rc == 0 && (i & 1))
        rc = bw_io_arm(ctx, w, BW_IO_IN | BW_IO_OUT);
      if (rc == 0)
        rc = bw_io_unwatch(ctx, w);
    }
    break;
  default:
    break;
  }
  bw_reply(ctx, msg, rc, 0, &w, sizeof w);
  return BW_CONTINUE;
}

static const bw_behaviour_t PROBE = {.name = "io_probe", .handle = probe_handle};

static int op_call(bw_runtime_t *rt, bw_pid_t p, op_t o, bw_io_t *w) {
  bw_reply_t r;
  memset(&r, 0, sizeof r);
  int rc = bw_call(rt, p, T_OP, &o, sizeof o, 0, &r);
  if (w != NULL && r.len == sizeof(bw_io_t))
    memcpy(w, r.data, sizeof *w);
  return rc;
}

static bw_pid_t spawn_probe(bw_runtime_t *rt) {
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &PROBE, NULL, NULL, &p), 0);
  return p;
}

static int log_n(void) {
  bwt_lock(&LOG.sync);
  int n = LOG.n;
  bwt_unlock(&LOG.sync);
  return n;
}

static bool fd_closed(int fd) { return fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* --- watches ------------------------------------------------------------------- */

static void test_pipe_in_out_rearm(void **s) {
  (void)s;
  log_reset();
  int threads0 = count_threads();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p = spawn_probe(rt);
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  bw_io_t wr = 0, rd = 0;
  /* the workers poll: a watch adds no thread */
  int threads1 = count_threads();
  assert_true(threads1 > threads0);
  /* an empty pipe is writable: an OUT event at once */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[1], .ev = BW_IO_OUT}, &wr), 0);
  assert_int_equal(count_threads(), threads1);
  assert_true(wr != 0);
  BWT_AWAIT(&LOG.sync, LOG.n == 1);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == wr);
  assert_true(LOG.last_ev & BW_IO_OUT);
  bwt_unlock(&LOG.sync);
  /* nothing to read yet: a read watch stays silent until a write */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = BW_IO_IN}, &rd), 0);
  assert_true(rd != 0 && rd != wr);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_NOP}, NULL), 0);
  assert_int_equal(log_n(), 1);
  assert_int_equal(write(pf[1], "ab", 2), 2);
  BWT_AWAIT(&LOG.sync, LOG.n == 2);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == rd);
  assert_true(LOG.last_ev & BW_IO_IN);
  bwt_unlock(&LOG.sync);
  /* one-shot: the unread bytes give no second event until the actor
   * re-arms; re-arming the write side gives its event, and by then the read
   * side has had its chance to (wrongly) fire */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = wr, .ev = BW_IO_OUT}, NULL), 0);
  BWT_AWAIT(&LOG.sync, LOG.n == 3);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == wr);
  bwt_unlock(&LOG.sync);
  /* re-arm the read side: the bytes are still there, so it fires again */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = rd, .ev = BW_IO_IN}, NULL), 0);
  BWT_AWAIT(&LOG.sync, LOG.n == 4);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == rd);
  bwt_unlock(&LOG.sync);
  /* change of interest: the write watch armed for both; a pipe's write end
   * is never readable, so OUT alone comes */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = wr, .ev = BW_IO_IN | BW_IO_OUT}, NULL),
                   0);
  BWT_AWAIT(&LOG.sync, LOG.n == 5);
  /* remove both; later arms find nothing */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = rd}, NULL), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = wr}, NULL), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = rd, .ev = BW_IO_IN}, NULL),
                   BW_ENOTFOUND);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = wr}, NULL), BW_ENOTFOUND);
  /* not owned: still open */
  assert_false(fd_closed(pf[0]));
  assert_false(fd_closed(pf[1]));
  bw_runtime_destroy(rt);
  /* the workers are joined (a sanitizer may have added a thread of its
   * own since threads0: compare with the runtime running) */
  assert_true(count_threads() < threads1);
  close(pf[0]);
  close(pf[1]);
}

/* An event already queued when the watch is removed is never delivered. */
static void test_no_message_after_unwatch(void **s) {
  (void)s;
  log_reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p = spawn_probe(rt);
  for (int i = 0; i < 20; i++) {
    int pf[2];
    assert_int_equal(pipe(pf), 0);
    assert_int_equal(
        op_call(rt, p, (op_t){.op = OP_QUEUED_UNWATCH, .fd = pf[0], .wfd = pf[1]}, NULL), 0);
    assert_int_equal(op_call(rt, p, (op_t){.op = OP_NOP}, NULL), 0);
    close(pf[0]);
    close(pf[1]);
  }
  assert_int_equal(log_n(), 0);
  /* the same with a descriptor number reused at once by a new watch: the
   * old event (its id, not the fd) cannot reach the new watch */
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_QUEUED_UNWATCH, .fd = pf[0], .wfd = pf[1]},
                           NULL),
                   0);
  close(pf[0]);
  close(pf[1]);
  int pg[2];
  assert_int_equal(pipe(pg), 0);
  bw_io_t w2 = 0;
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pg[0], .ev = BW_IO_IN}, &w2), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_NOP}, NULL), 0);
  assert_int_equal(log_n(), 0);
  assert_int_equal(write(pg[1], "y", 1), 1);
  BWT_AWAIT(&LOG.sync, LOG.n == 1);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == w2);
  bwt_unlock(&LOG.sync);
  bw_runtime_destroy(rt);
  close(pg[0]);
  close(pg[1]);
}

static void test_bad_descriptors(void **s) {
  (void)s;
  log_reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p = spawn_probe(rt);
  bw_io_t w = 0;
  /* outside an actor */
  assert_int_equal(bw_io_watch(NULL, 0, BW_IO_IN, 0, NULL, &w), BW_ENOTACTOR);
  assert_int_equal(bw_io_arm(NULL, 1, BW_IO_IN), BW_ENOTACTOR);
  assert_int_equal(bw_io_unwatch(NULL, 1), BW_ENOTACTOR);
  assert_int_equal(bw_io_deadline(NULL, 1, 1, NULL), BW_ENOTACTOR);
  /* -1, a closed descriptor, a regular file */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = -1, .ev = BW_IO_IN}, NULL),
                   BW_EBADF);
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  close(pf[1]);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[1], .ev = BW_IO_OUT}, NULL),
                   BW_EBADF);
  FILE *tf = tmpfile();
  assert_non_null(tf);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = fileno(tf), .ev = BW_IO_IN}, NULL),
                   BW_EBADF);
  fclose(tf);
  /* bad bits */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = 0x100}, NULL),
                   BW_EINVAL);
  assert_int_equal(
      op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = BW_IO_IN, .flags = 0x40}, NULL),
      BW_EINVAL);
  /* twice the same descriptor */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = 0}, &w), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = 0}, NULL),
                   BW_EEXIST);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = w, .ev = 0x100}, NULL), BW_EINVAL);
  /* closed under a (not owned) watch: arming it says so */
  close(pf[0]);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = w, .ev = BW_IO_IN}, NULL), BW_EBADF);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = w}, NULL), 0);
  /* ids that were never watches, or are another actor's */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = 0, .ev = BW_IO_IN}, NULL),
                   BW_ENOTFOUND);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = ~0ull, .ev = BW_IO_IN}, NULL),
                   BW_ENOTFOUND);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_DEADLINE, .w = w, .ms = 1}, NULL), BW_ENOTFOUND);
  int pg[2];
  assert_int_equal(pipe(pg), 0);
  bw_io_t theirs = 0;
  bw_pid_t other = spawn_probe(rt);
  assert_int_equal(op_call(rt, other, (op_t){.op = OP_WATCH, .fd = pg[0], .ev = 0}, &theirs), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = theirs}, NULL), BW_ENOTFOUND);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_ARM, .w = theirs, .ev = BW_IO_IN}, NULL),
                   BW_ENOTFOUND);
  assert_int_equal(log_n(), 0);
  bw_runtime_destroy(rt);
  close(pg[0]);
  close(pg[1]);
}

/* Watches removed while a polling worker fires them, thousands of times: the
 * poller's claim races the removal, and no event of a removed watch ever
 * reaches the handler (run under TSan and ASan too). */
static void test_churn(void **s) {
  (void)s;
  log_reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p = spawn_probe(rt);
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  assert_int_equal(write(pf[1], "r", 1), 1); /* always readable */
  for (int round = 0; round < 10; round++)
    assert_int_equal(
        op_call(rt, p, (op_t){.op = OP_CHURN, .fd = pf[0], .ms = bwt_scaled(1000)}, NULL), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_NOP}, NULL), 0);
  assert_int_equal(log_n(), 0);
  /* and a watch that stays still works afterwards */
  bw_io_t w = 0;
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = BW_IO_IN}, &w), 0);
  BWT_AWAIT(&LOG.sync, LOG.n == 1);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_w == w);
  bwt_unlock(&LOG.sync);
  bw_runtime_destroy(rt);
  close(pf[0]);
  close(pf[1]);
}

/* Owned descriptors die with their actor, whatever the exit: stop, crash,
 * kill, and a kill with an event queued. */
static int exit_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  if (msg->type == T_OP + 1)
    return BW_STOP;
  if (msg->type == T_OP + 2)
    return BW_ECRASH;
  return probe_handle(ctx, st, msg);
}
static const bw_behaviour_t EXITER = {.name = "io_exiter", .handle = exit_handle};

static void test_owned_closed_on_exit(void **s) {
  (void)s;
  log_reset();
  bw_runtime_t *rt = bwt_runtime(2, false);
  for (int how = 0; how < 4; how++) {
    bw_pid_t p;
    assert_int_equal(bw_spawn(rt, &EXITER, NULL, NULL, &p), 0);
    int pf[2];
    assert_int_equal(pipe(pf), 0);
    bw_io_t w;
    assert_int_equal(
        op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[1], .ev = 0, .flags = BW_IO_OWNED}, &w), 0);
    if (how == 3) {
      /* an event queued behind the kill */
      assert_int_equal(op_call(rt, p,
                               (op_t){.op = OP_QUEUED_KILL, .fd = pf[0], .wfd = pf[1],
                                      .flags = BW_IO_OWNED},
                               NULL),
                       0);
    } else {
      assert_int_equal(
          op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = BW_IO_IN, .flags = BW_IO_OWNED},
                  NULL),
          0);
      assert_false(fd_closed(pf[0]));
      assert_false(fd_closed(pf[1]));
    }
    if (how == 0)
      assert_int_equal(bw_send(rt, p, T_OP + 1, NULL, 0), 0);
    else if (how == 1)
      assert_int_equal(bw_send(rt, p, T_OP + 2, NULL, 0), 0);
    else if (how == 2)
      assert_int_equal(bw_exit(rt, p, BW_REASON_KILL, 0, NULL), 0);
    bw_reason_t why;
    assert_int_equal(bw_wait_exit(rt, p, 0, &why), 0);
    assert_true(fd_closed(pf[0]));
    assert_true(fd_closed(pf[1]));
  }
  /* the queued event of the killed actor was never handled */
  assert_int_equal(log_n(), 0);
  bw_runtime_destroy(rt);
}

/* Deadlines run on the runtime's clock: deterministic under the manual one. */
static void test_deadline_manual_clock(void **s) {
  (void)s;
  log_reset();
  bw_runtime_t *rt = bwt_runtime(2, true);
  bw_pid_t p = spawn_probe(rt);
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  bw_io_t w = 0, w2 = 0;
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = BW_IO_IN}, &w), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_DEADLINE, .w = w, .ms = 100}, NULL), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[1], .ev = 0}, &w2), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_DEADLINE, .w = w2, .ms = 50}, NULL), 0);
  /* removed before its deadline: nothing comes */
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_UNWATCH, .w = w2}, NULL), 0);
  assert_int_equal(bw_clock_advance(rt, 99), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_NOP}, NULL), 0);
  assert_int_equal(log_n(), 0);
  assert_int_equal(bw_clock_advance(rt, 1), 0);
  BWT_AWAIT(&LOG.sync, LOG.n == 1);
  bwt_lock(&LOG.sync);
  assert_int_equal(LOG.n_timeout, 1);
  assert_true(LOG.last_w == w);
  assert_int_equal(LOG.last_ev, BW_IO_TIMEOUT);
  bwt_unlock(&LOG.sync);
  /* the deadline left the readiness registration alone */
  assert_int_equal(write(pf[1], "z", 1), 1);
  BWT_AWAIT(&LOG.sync, LOG.n == 2);
  bwt_lock(&LOG.sync);
  assert_true(LOG.last_ev & BW_IO_IN);
  bwt_unlock(&LOG.sync);
  bw_runtime_destroy(rt);
  close(pf[0]);
  close(pf[1]);
}

/* --- TCP ---------------------------------------------------------------------- */

static void raise_nofile(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* The echo server: answers each line with the line. */
typedef struct server {
  bw_tcp_t *l;
  uint16_t port;     /* atomic: set once listening */
  uint32_t open;     /* atomic: connections open now */
  uint32_t max_open; /* atomic */
  uint32_t errors;   /* atomic */
} server_t;

static int server_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)st;
  server_t *sv = arg;
  int rc = bw_tcp_listen(ctx, NULL, 0, 4096, NULL, &sv->l);
  if (rc != 0)
    return rc;
  __atomic_store_n(&sv->port, bw_tcp_port(sv->l), __ATOMIC_SEQ_CST);
  return 0;
}

static server_t *SERVER;

static int server_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  (void)st;
  server_t *sv = SERVER;
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  const bw_io_event_t *ev = msg->data;
  bw_tcp_t *c = ev->ud;
  int r = bw_tcp_on_io(ctx, c, ev);
  if (r < 0) {
    __atomic_add_fetch(&sv->errors, 1, __ATOMIC_SEQ_CST);
    bw_tcp_close(ctx, c);
    __atomic_sub_fetch(&sv->open, 1, __ATOMIC_SEQ_CST);
    return BW_CONTINUE;
  }
  if (r & BW_TCP_ACCEPT) {
    bw_tcp_t *nc;
    int a;
    while ((a = bw_tcp_accept(ctx, c, &nc)) == 1) {
      uint32_t n = __atomic_add_fetch(&sv->open, 1, __ATOMIC_SEQ_CST);
      uint32_t m = __atomic_load_n(&sv->max_open, __ATOMIC_SEQ_CST);
      while (n > m && !__atomic_compare_exchange_n(&sv->max_open, &m, n, false,
                                                   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    }
    if (a < 0)
      __atomic_add_fetch(&sv->errors, 1, __ATOMIC_SEQ_CST);
    return BW_CONTINUE;
  }
  const char *line;
  size_t len;
  int g;
  while ((g = bw_tcp_getline(ctx, c, &line, &len)) == 1) {
    char out[256];
    if (len >= sizeof out)
      len = sizeof out - 1;
    memcpy(out, line, len);
    out[len] = '\n';
    if (bw_tcp_write(ctx, c, out, len + 1) != 0)
      __atomic_add_fetch(&sv->errors, 1, __ATOMIC_SEQ_CST);
  }
  if (g < 0 || (r & BW_TCP_EOF)) {
    bw_tcp_close(ctx, c);
    __atomic_sub_fetch(&sv->open, 1, __ATOMIC_SEQ_CST);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t SERVER_B = {
    .name = "echo_server", .init = server_init, .handle = server_handle};

/* A client actor holding many connections: each sends one line, checks the
 * echo, and stays open until T_FINISH. */
enum { T_START = 10, T_FINISH };
#define CONNS_PER_CLIENT 250

typedef struct client {
  uint16_t port;
  int base;
  bw_tcp_t *c[CONNS_PER_CLIENT];
  uint32_t *done;   /* atomic, shared: echoes checked */
  uint32_t *errors; /* atomic, shared */
} client_t;

static int conn_index(client_t *cl, const bw_tcp_t *c) {
  for (int i = 0; i < CONNS_PER_CLIENT; i++)
    if (cl->c[i] == c)
      return i;
  return -1;
}

static int client_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  client_t *cl = *(client_t **)st;
  if (msg->type == T_START) {
    memcpy(&cl, msg->data, sizeof cl);
    *(client_t **)st = cl;
    for (int i = 0; i < CONNS_PER_CLIENT; i++)
      if (bw_tcp_connect(ctx, NULL, cl->port, 0, NULL, &cl->c[i]) != 0)
        __atomic_add_fetch(cl->errors, 1, __ATOMIC_SEQ_CST);
    return BW_CONTINUE;
  }
  if (msg->type == T_FINISH) {
    for (int i = 0; i < CONNS_PER_CLIENT; i++) {
      bw_tcp_close(ctx, cl->c[i]);
      cl->c[i] = NULL;
    }
    bw_reply(ctx, msg, 0, 0, NULL, 0);
    return BW_CONTINUE;
  }
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  const bw_io_event_t *ev = msg->data;
  bw_tcp_t *c = ev->ud;
  int i = conn_index(cl, c);
  int r = bw_tcp_on_io(ctx, c, ev);
  if (r < 0 || i < 0) {
    __atomic_add_fetch(cl->errors, 1, __ATOMIC_SEQ_CST);
    return BW_CONTINUE;
  }
  if (r & BW_TCP_CONNECTED) {
    char line[64];
    int n = snprintf(line, sizeof line, "hello %d\n", cl->base + i);
    if (bw_tcp_write(ctx, c, line, (size_t)n) != 0)
      __atomic_add_fetch(cl->errors, 1, __ATOMIC_SEQ_CST);
  }
  const char *got;
  size_t len;
  if (bw_tcp_getline(ctx, c, &got, &len) == 1) {
    char want[64];
    int n = snprintf(want, sizeof want, "hello %d", cl->base + i);
    if ((size_t)n == len && memcmp(got, want, len) == 0)
      __atomic_add_fetch(cl->done, 1, __ATOMIC_SEQ_CST);
    else
      __atomic_add_fetch(cl->errors, 1, __ATOMIC_SEQ_CST);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t CLIENT_B = {
    .name = "echo_client", .state_size = sizeof(client_t *), .handle = client_handle};

static void test_echo_1000_connections(void **s) {
  (void)s;
  raise_nofile(4096);
  bw_runtime_t *rt = bwt_runtime(2, false);
  server_t sv;
  memset(&sv, 0, sizeof sv);
  SERVER = &sv;
  bw_pid_t sp;
  assert_int_equal(bw_spawn(rt, &SERVER_B, &sv, NULL, &sp), 0);
  uint16_t port = __atomic_load_n(&sv.port, __ATOMIC_SEQ_CST);
  assert_true(port != 0);
  enum { NCLIENTS = 4 };
  static client_t cls[NCLIENTS];
  uint32_t done = 0, errors = 0;
  bw_pid_t cp[NCLIENTS];
  for (int k = 0; k < NCLIENTS; k++) {
    memset(&cls[k], 0, sizeof cls[k]);
    cls[k].port = port;
    cls[k].base = k * CONNS_PER_CLIENT;
    cls[k].done = &done;
    cls[k].errors = &errors;
    assert_int_equal(bw_spawn(rt, &CLIENT_B, NULL, NULL, &cp[k]), 0);
    client_t *p = &cls[k];
    assert_int_equal(bw_send(rt, cp[k], T_START, &p, sizeof p), 0);
  }
  BWT_POLL(__atomic_load_n(&done, __ATOMIC_SEQ_CST) == NCLIENTS * CONNS_PER_CLIENT ||
           __atomic_load_n(&errors, __ATOMIC_SEQ_CST) != 0);
  assert_int_equal(__atomic_load_n(&errors, __ATOMIC_SEQ_CST), 0);
  assert_int_equal(__atomic_load_n(&sv.errors, __ATOMIC_SEQ_CST), 0);
  /* every connection is open at once, on both sides */
  assert_int_equal(__atomic_load_n(&sv.open, __ATOMIC_SEQ_CST), NCLIENTS * CONNS_PER_CLIENT);
  /* and no thread per connection: main, 2 workers (they poll), the timer
   * thread, and a few the runtime may keep (watchdog, spares) */
  int threads = count_threads();
  assert_true(threads > 0);
  assert_true(threads <= 10);
  for (int k = 0; k < NCLIENTS; k++) {
    bw_reply_t r;
    assert_int_equal(bw_call(rt, cp[k], T_FINISH, NULL, 0, 0, &r), 0);
  }
  /* the server sees every peer close, and closes its side */
  BWT_POLL(__atomic_load_n(&sv.open, __ATOMIC_SEQ_CST) == 0);
  assert_int_equal(__atomic_load_n(&sv.max_open, __ATOMIC_SEQ_CST), NCLIENTS * CONNS_PER_CLIENT);
  assert_int_equal(__atomic_load_n(&sv.errors, __ATOMIC_SEQ_CST), 0);
  bw_runtime_destroy(rt);
}

/* A connect's outcome, recorded by a one-connection actor. */
typedef struct conn_try {
  bwt_sync_t sync;
  int result; /* 0 until known: BW_TCP_CONNECTED bits or a code */
  int start_rc;
} conn_try_t;

static conn_try_t TRY = {.sync = BWT_SYNC_INIT};

typedef struct try_arg {
  uint16_t port;
  uint64_t timeout_ms;
} try_arg_t;

static int try_init(bw_ctx_t *ctx, void *st, void *arg) {
  try_arg_t *a = arg;
  bw_tcp_t **c = st;
  int rc = bw_tcp_connect(ctx, NULL, a->port, a->timeout_ms, NULL, c);
  bwt_lock(&TRY.sync);
  TRY.start_rc = rc;
  bwt_unlock_signal(&TRY.sync);
  return 0;
}

static int try_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  bw_tcp_t **c = st;
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  int r = bw_tcp_on_io(ctx, *c, msg->data);
  if (r == 0)
    return BW_CONTINUE;
  bwt_lock(&TRY.sync);
  TRY.result = r;
  bwt_unlock_signal(&TRY.sync);
  return BW_CONTINUE;
}

static const bw_behaviour_t TRY_B = {
    .name = "conn_try", .state_size = sizeof(bw_tcp_t *), .init = try_init, .handle = try_handle};

static void try_reset(void) {
  bwt_lock(&TRY.sync);
  TRY.result = 0;
  TRY.start_rc = 1;
  bwt_unlock(&TRY.sync);
}

/* A port with a bound socket that does not listen: connections are refused. */
static void test_connect_refused(void **s) {
  (void)s;
  try_reset();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t sl = sizeof sa;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  bw_runtime_t *rt = bwt_runtime(2, false);
  try_arg_t a = {.port = ntohs(sa.sin_port), .timeout_ms = 0};
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &TRY_B, &a, NULL, &p), 0);
  BWT_AWAIT(&TRY.sync, TRY.start_rc == BW_ECONNREFUSED ||
                           (TRY.start_rc == 0 && TRY.result != 0));
  bwt_lock(&TRY.sync);
  if (TRY.start_rc == 0)
    assert_int_equal(TRY.result, BW_ECONNREFUSED);
  bwt_unlock(&TRY.sync);
  bw_runtime_destroy(rt);
  close(fd);
}

/* A connect that cannot finish (a listener whose backlog is full and that
 * never accepts) fails at its deadline, on the manual clock. */
static void test_connect_deadline(void **s) {
  (void)s;
  try_reset();
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(l, 0), 0);
  socklen_t sl = sizeof sa;
  assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
  /* fill the backlog: these complete into the accept queue, later SYNs
   * are dropped (and retried by the kernel for seconds) */
  int fill[4];
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fill[i] >= 0);
    int rc = connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    assert_true(rc == 0 || errno == EINPROGRESS);
  }
  bw_runtime_t *rt = bwt_runtime(2, true);
  try_arg_t a = {.port = ntohs(sa.sin_port), .timeout_ms = 1000};
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &TRY_B, &a, NULL, &p), 0);
  bwt_lock(&TRY.sync);
  assert_int_equal(TRY.start_rc, 0);
  bwt_unlock(&TRY.sync);
  assert_int_equal(bw_clock_advance(rt, 1000), 0);
  BWT_AWAIT(&TRY.sync, TRY.result != 0);
  bwt_lock(&TRY.sync);
  assert_int_equal(TRY.result, BW_ETIMEDOUT);
  bwt_unlock(&TRY.sync);
  bw_runtime_destroy(rt);
  for (int i = 0; i < 4; i++)
    close(fill[i]);
  close(l);
}

/* The TCP helpers' error codes, from inside one actor that connects to its
 * own listener with small buffers. */
typedef struct pair_rec {
  bwt_sync_t sync;
  bool done;
  int listen_badaddr, listen_inuse, connect_badaddr, connect_port0, accept_conn;
  int write_listener, write_connecting, onio_wrong, write_toobig, getline_long;
  size_t peek_full, peek_rest;
} pair_rec_t;

static pair_rec_t PAIR = {.sync = BWT_SYNC_INIT};

typedef struct pair_st {
  bw_tcp_t *l, *cli, *srv;
} pair_st_t;

static int pair_init(bw_ctx_t *ctx, void *st, void *arg) {
  (void)arg;
  pair_st_t *ps = st;
  bw_tcp_opts_t o;
  bw_tcp_opts_init(&o);
  o.read_max = 64;
  o.write_max = 128;
  bw_tcp_t *x = NULL;
  bwt_lock(&PAIR.sync);
  PAIR.listen_badaddr = bw_tcp_listen(ctx, "not-an-address", 0, 0, &o, &x);
  int rc = bw_tcp_listen(ctx, NULL, 0, 0, &o, &ps->l);
  if (rc == 0) {
    PAIR.listen_inuse = bw_tcp_listen(ctx, NULL, bw_tcp_port(ps->l), 0, &o, &x);
    PAIR.connect_badaddr = bw_tcp_connect(ctx, "300.1.1.1", 80, 0, &o, &x);
    PAIR.connect_port0 = bw_tcp_connect(ctx, NULL, 0, 0, &o, &x);
    PAIR.write_listener = bw_tcp_write(ctx, ps->l, "x", 1);
    rc = bw_tcp_connect(ctx, NULL, bw_tcp_port(ps->l), 0, &o, &ps->cli);
  }
  if (rc == 0) {
    PAIR.write_connecting = bw_tcp_write(ctx, ps->cli, "x", 1);
    PAIR.accept_conn = bw_tcp_accept(ctx, ps->cli, &x);
    bw_io_event_t wrong = {.watch = bw_tcp_watch(ps->l), .events = BW_IO_IN};
    PAIR.onio_wrong = bw_tcp_on_io(ctx, ps->cli, &wrong);
  }
  bwt_unlock(&PAIR.sync);
  return rc;
}

static int pair_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  pair_st_t *ps = st;
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  const bw_io_event_t *ev = msg->data;
  bw_tcp_t *c = ev->ud;
  int r = bw_tcp_on_io(ctx, c, ev);
  if (r < 0)
    return r; /* crash: the test sees done never set */
  if ((r & BW_TCP_ACCEPT) && bw_tcp_accept(ctx, ps->l, &ps->srv) != 1)
    return BW_EIO;
  if (r & BW_TCP_CONNECTED) {
    char big[129];
    memset(big, 'a', sizeof big);
    bwt_lock(&PAIR.sync);
    PAIR.write_toobig = bw_tcp_write(ctx, c, big, sizeof big);
    bwt_unlock(&PAIR.sync);
    /* 100 bytes, no newline: more than the peer's 64-byte read buffer */
    if (bw_tcp_write(ctx, c, big, 100) != 0)
      return BW_EIO;
  }
  if (c == ps->srv && (r & BW_TCP_DATA)) {
    const char *line;
    size_t len;
    const char *data;
    size_t have = bw_tcp_peek(c, &data);
    bwt_lock(&PAIR.sync);
    if (PAIR.getline_long == 0) {
      int g = bw_tcp_getline(ctx, c, &line, &len);
      if (g != 0) {
        /* full: reading stopped at read_max, with 36 bytes still unread */
        PAIR.getline_long = g;
        PAIR.peek_full = have;
        /* consuming makes room: input is armed again and the rest comes */
        bw_tcp_consume(ctx, c, have);
      }
    } else {
      PAIR.peek_rest += have;
      bw_tcp_consume(ctx, c, have);
      PAIR.done = PAIR.peek_rest == 36;
    }
    bwt_unlock_signal(&PAIR.sync);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t PAIR_B = {
    .name = "tcp_pair", .state_size = sizeof(pair_st_t), .init = pair_init, .handle = pair_handle};

static void test_tcp_errors(void **s) {
  (void)s;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_tcp_t *x = NULL;
  assert_int_equal(bw_tcp_listen(NULL, NULL, 0, 0, NULL, &x), BW_ENOTACTOR);
  assert_int_equal(bw_tcp_connect(NULL, NULL, 1, 0, NULL, &x), BW_ENOTACTOR);
  assert_int_equal(bw_tcp_accept(NULL, NULL, &x), BW_ENOTACTOR);
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &PAIR_B, NULL, NULL, &p), 0);
  BWT_AWAIT(&PAIR.sync, PAIR.done);
  bwt_lock(&PAIR.sync);
  assert_int_equal(PAIR.listen_badaddr, BW_EINVAL);
  assert_int_equal(PAIR.listen_inuse, BW_EADDRINUSE);
  assert_int_equal(PAIR.connect_badaddr, BW_EINVAL);
  assert_int_equal(PAIR.connect_port0, BW_EINVAL);
  assert_int_equal(PAIR.write_listener, BW_ESTATE);
  assert_int_equal(PAIR.write_connecting, BW_ESTATE);
  assert_int_equal(PAIR.accept_conn, BW_EINVAL);
  assert_int_equal(PAIR.onio_wrong, BW_EINVAL);
  assert_int_equal(PAIR.write_toobig, BW_EFULL);
  assert_int_equal(PAIR.getline_long, BW_ELIMIT);
  assert_int_equal(PAIR.peek_full, 64);
  assert_int_equal(PAIR.peek_rest, 36);
  bwt_unlock(&PAIR.sync);
  assert_true(bw_is_alive(rt, p));
  bw_runtime_destroy(rt);
}

/* A watch made while the actor is exiting (from terminate, during stop)
 * is still removed with it, and its owned descriptor closed. */
static int SHUT_RC = 1;
static int SHUT_FD[2] = {-1, -1};
static void shut_terminate(bw_ctx_t *ctx, void *st, const bw_reason_t *r) {
  (void)st;
  (void)r;
  bw_io_t w;
  __atomic_store_n(&SHUT_RC, bw_io_watch(ctx, SHUT_FD[0], BW_IO_IN, BW_IO_OWNED, NULL, &w),
                   __ATOMIC_SEQ_CST);
}
static const bw_behaviour_t SHUT_B = {
    .name = "io_shut", .handle = probe_handle, .terminate = shut_terminate};

static void test_watch_during_stop(void **s) {
  (void)s;
  /* made before the actor, so its terminate sees it without a race */
  assert_int_equal(pipe(SHUT_FD), 0);
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_pid_t p;
  assert_int_equal(bw_spawn(rt, &SHUT_B, NULL, NULL, &p), 0);
  /* a deadline too far to represent */
  int pf[2];
  assert_int_equal(pipe(pf), 0);
  bw_io_t w = 0;
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_WATCH, .fd = pf[0], .ev = 0}, &w), 0);
  assert_int_equal(op_call(rt, p, (op_t){.op = OP_DEADLINE, .w = w, .ms = UINT64_MAX}, NULL),
                   BW_EINVAL);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(__atomic_load_n(&SHUT_RC, __ATOMIC_SEQ_CST), 0);
  assert_true(fd_closed(SHUT_FD[0]));
  assert_false(fd_closed(SHUT_FD[1]));
  bw_runtime_destroy(rt);
  close(SHUT_FD[1]);
  close(pf[0]);
  close(pf[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipe_in_out_rearm),
      cmocka_unit_test(test_no_message_after_unwatch),
      cmocka_unit_test(test_bad_descriptors),
      cmocka_unit_test(test_churn),
      cmocka_unit_test(test_owned_closed_on_exit),
      cmocka_unit_test(test_deadline_manual_clock),
      cmocka_unit_test(test_connect_refused),
      cmocka_unit_test(test_connect_deadline),
      cmocka_unit_test(test_tcp_errors),
      cmocka_unit_test(test_watch_during_stop),
      cmocka_unit_test(test_echo_1000_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
