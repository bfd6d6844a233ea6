/*
 * Three node processes: this test (node 1, "ctl", manual clock) and two
 * node_peer processes (nodes 2 and 3, "p2" and "p3", real clocks), through
 * a private nats-server. Remote request/reply, per-pair order for 100,000
 * messages, cluster-wide names, monitors and links with the remote actor
 * crashing and with its node process killed (noconnection once this node's
 * clock has run past the detection time), and a supervisor restarting a
 * child on a fallback node. Skipped without nats-server.
 */
#include "support.h"

#include <stdatomic.h>

#include "tests/node/nats_server.h"
#include "tests/node/node_actors.h"
#include "tests/node/peer_proto.h"
#ifdef BW_HAVE_NATS
#include <nats/nats.h>
#endif

#ifndef BW_NODE_PEER
#error "BW_NODE_PEER: the path of node_peer"
#endif

#define HB_MS 100
#define MISSES 3

static bwt_nats_t server;
static bool have_server;

typedef struct peer {
  pid_t pid;
  int stdin_fd;
} peer_t;

static bool peer_start(peer_t *p, const char *name, unsigned id) {
  int in[2], out[2];
  /* close-on-exec: another peer must not inherit this one's stdin */
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    return false;
  char idbuf[8];
  snprintf(idbuf, sizeof idbuf, "%u", id);
  char *argv[] = {BW_NODE_PEER, server.url, (char *)name, idbuf, "bwcluster", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  int rc = posix_spawn(&p->pid, BW_NODE_PEER, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    return false;
  }
  p->stdin_fd = in[1];
  /* "ready" once it has joined */
  char buf[16] = {0};
  ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  return n > 0 && strncmp(buf, "ready", 5) == 0;
}

static void peer_end(peer_t *p) {
  if (p->pid > 0) {
    close(p->stdin_fd); /* it leaves cleanly */
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
  }
}

static void peer_kill(peer_t *p) {
  kill(p->pid, SIGKILL); /* no goodbye: the others find out by silence */
  waitpid(p->pid, NULL, 0);
  close(p->stdin_fd);
  p->pid = 0;
}

typedef struct cluster {
  bw_runtime_t *rt;
  peer_t p2, p3;
} cluster_t;

static void cluster_up(cluster_t *c) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = 2;
  o.manual_clock = true;
  o.node_id = 1;
  assert_int_equal(bw_runtime_create(&o, &c->rt), 0);
  bw_node_opts_t no;
  bw_node_opts_init(&no);
  no.name = "ctl";
  no.url = server.url;
  no.cluster = "bwcluster";
  no.heartbeat_ms = HB_MS;
  no.heartbeat_misses = MISSES;
  assert_int_equal(bw_node_start(c->rt, &no), 0);
  assert_true(peer_start(&c->p2, "p2", 2));
  assert_true(peer_start(&c->p3, "p3", 3));
  assert_int_equal(bw_node_wait(c->rt, "p2", 10000, NULL), 0);
  assert_int_equal(bw_node_wait(c->rt, "p3", 10000, NULL), 0);
}

static void cluster_down(cluster_t *c) {
  bw_runtime_destroy(c->rt);
  peer_end(&c->p2);
  peer_end(&c->p3);
}

static bw_pid_t whereis(bw_runtime_t *rt, const char *name) {
  bw_pid_t p = BW_PID_NONE;
  BWT_POLL(bw_node_whereis(rt, name, &p) == 0);
  return p;
}

static peer_report_t report(bw_runtime_t *rt, bw_pid_t svc) {
  bw_reply_t rep;
  peer_report_t r;
  memset(&r, 0, sizeof r);
  assert_int_equal(bw_call(rt, svc, PEER_REPORT, NULL, 0, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof r);
  memcpy(&r, rep.data, sizeof r);
  return r;
}

/* Moves this node's clock past the silence of a killed node: one heartbeat
 * period at a time, each after a frame from the live peer has arrived (it
 * beats every 50 ms of real time), so only the dead one goes silent. */
static void run_clock_past_silence(bw_runtime_t *rt) {
  for (int step = 0; step < MISSES + 2; step++) {
    bw_node_stats_t before, now;
    assert_int_equal(bw_node_stats(rt, &before), 0);
    BWT_POLL(bw_node_stats(rt, &now) == 0 && now.frames_in > before.frames_in);
    assert_int_equal(bw_clock_advance(rt, HB_MS), 0);
  }
}

/* --- actors in this node --------------------------------------------------------- */


#define REQUIRE_SERVER()                                                       \
  do {                                                                         \
    if (!have_server)                                                          \
      skip();                                                                  \
  } while (0)

/* --- tests ---------------------------------------------------------------------- */

static void test_cluster_calls_names_and_order(void **state) {
  (void)state;
  REQUIRE_SERVER();
  cluster_t c;
  cluster_up(&c);
  bw_pid_t s2 = whereis(c.rt, "p2.svc"), s3 = whereis(c.rt, "p3.svc");
  assert_int_equal(bw_pid_node(s2), 2);
  assert_int_equal(bw_pid_node(s3), 3);
  /* request/reply across processes */
  const char hello[] = "across the wire";
  bw_reply_t rep;
  assert_int_equal(bw_call(c.rt, s2, PEER_ECHO, hello, sizeof hello, 0, &rep), 0);
  assert_int_equal(rep.len, sizeof hello);
  assert_memory_equal(rep.data, hello, sizeof hello);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(bw_send(c.rt, s2, PEER_COUNT, NULL, 0), 0);
  /* per-pair order: 100,000 numbers from one actor here to p3's service */
  atomic_store(&pump_failed, 0);
  uint32_t total = (uint32_t)bwt_scaled(100000);
  pump_arg pa = {.target = s3, .total = total, .seq_type = PEER_SEQ};
  bw_pid_t pump;
  assert_int_equal(bw_spawn(c.rt, &pump_b, &pa, NULL, &pump), 0);
  assert_int_equal(bw_send(c.rt, pump, T_PUMP, NULL, 0), 0);
  peer_report_t r3;
  BWT_POLL_FOR((r3 = report(c.rt, s3)).seq_seen >= total, 120);
  assert_int_equal(atomic_load(&pump_failed), 0);
  assert_int_equal(r3.seq_seen, total);
  assert_int_equal(r3.seq_bad, 0);
  peer_report_t r2 = report(c.rt, s2);
  assert_int_equal(r2.count, 1000); /* sent before the report request: in order */
  cluster_down(&c);
}

static void test_cluster_remote_crash_and_kill(void **state) {
  (void)state;
  REQUIRE_SERVER();
  cluster_t c;
  cluster_up(&c);
  bw_pid_t s2 = whereis(c.rt, "p2.svc"), s3 = whereis(c.rt, "p3.svc");
  watcher_rec m2 = {0}, m3 = {0}, l3 = {0};
  bw_pid_t w2, w3, k3;
  assert_int_equal(bw_spawn(c.rt, &watcher_b, &m2, NULL, &w2), 0);
  assert_int_equal(bw_spawn(c.rt, &watcher_b, &m3, NULL, &w3), 0);
  assert_int_equal(bw_spawn(c.rt, &watcher_b, &l3, NULL, &k3), 0);
  assert_int_equal(bw_send(c.rt, w2, T_WATCH, &s2, sizeof s2), 0);
  assert_int_equal(bw_send(c.rt, w3, T_WATCH, &s3, sizeof s3), 0);
  assert_int_equal(bw_send(c.rt, k3, T_LINK, &s3, sizeof s3), 0);
  bw_node_stats_t ns;
  BWT_POLL(bw_node_stats(c.rt, &ns) == 0 && ns.links == 3);

  /* p2's service crashes: DOWN with its reason; p2's supervisor restarts it
   * and the name moves to the new pid */
  assert_int_equal(bw_send(c.rt, s2, PEER_CRASH, NULL, 0), 0);
  BWT_POLL(atomic_load(&m2.downs) == 1);
  assert_int_equal(atomic_load(&m2.down_kind), BW_REASON_CRASH);
  bw_pid_t s2b = BW_PID_NONE;
  BWT_POLL(bw_node_whereis(c.rt, "p2.svc", &s2b) == 0 && s2b != s2);

  /* p3's process is killed: nothing until this node's clock has run past
   * heartbeat_ms * heartbeat_misses; then noconnection, and its names go */
  peer_kill(&c.p3);
  assert_int_equal(atomic_load(&m3.downs), 0);
  assert_true(bw_node_connected(c.rt, 3));
  run_clock_past_silence(c.rt);
  BWT_POLL(atomic_load(&m3.downs) == 1 && atomic_load(&l3.exits) == 1);
  assert_int_equal(atomic_load(&m3.down_kind), BW_REASON_NOCONNECTION);
  assert_int_equal(atomic_load(&l3.exit_kind), BW_REASON_NOCONNECTION);
  assert_false(bw_node_connected(c.rt, 3));
  assert_true(bw_node_connected(c.rt, 2));
  bw_pid_t gone;
  assert_int_equal(bw_node_whereis(c.rt, "p3.svc", &gone), BW_ENOTFOUND);
  assert_int_equal(bw_send(c.rt, s3, PEER_COUNT, NULL, 0), BW_ENOCONN);
  /* p2 still answers */
  bw_reply_t rep;
  assert_int_equal(bw_call(c.rt, s2b, PEER_ECHO, "x", 1, 0, &rep), 0);
  cluster_down(&c);
}

static bw_pid_t child_pid(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  return bw_sup_child_pid(rt, sup, id, &p) == 0 ? p : BW_PID_NONE;
}

static void test_cluster_supervisor_fallback(void **state) {
  (void)state;
  REQUIRE_SERVER();
  cluster_t c;
  cluster_up(&c);
  static const bw_remote_child_t remote = {.behaviour = "rworker", .nodes = {"p3", "p2"}};
  static const bw_child_spec_t kids[] = {{.id = "worker", .remote = &remote}};
  static const bw_sup_spec_t spec = {.name = "ctl", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 10, .period_ms = 60000,
                                     .children = kids, .nchildren = 1};
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(c.rt, &spec, &sup, &err), 0);
  bw_pid_t w = child_pid(c.rt, sup, "worker");
  assert_int_equal(bw_pid_node(w), 3);
  bw_reply_t rep;
  assert_int_equal(bw_call(c.rt, w, PEER_ECHO, "y", 1, 0, &rep), 0);
  /* its node dies: the child counts as failed and comes back on p2 */
  peer_kill(&c.p3);
  run_clock_past_silence(c.rt);
  BWT_POLL(bw_pid_node(child_pid(c.rt, sup, "worker")) == 2);
  w = child_pid(c.rt, sup, "worker");
  assert_int_equal(bw_call(c.rt, w, PEER_ECHO, "z", 1, 0, &rep), 0);
  bw_child_info_t info;
  size_t n = 0;
  assert_int_equal(bw_sup_which_children(c.rt, sup, &info, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(info.restarts, 1);
  cluster_down(&c);
}


/* The NATS server is restarted in the middle of a stream from this node to
 * p3's service: every node reconnects, and every message this node was told
 * went arrives exactly once, in order; any refused meanwhile is a dead
 * letter here. */
static void test_cluster_server_restart(void **state) {
  (void)state;
  REQUIRE_SERVER();
  cluster_t c;
  cluster_up(&c);
  bw_pid_t s3 = whereis(c.rt, "p3.svc");
  atomic_store(&pump_failed, 0);
  uint32_t total = (uint32_t)bwt_scaled(100000);
  pump_arg pa = {.target = s3, .total = total, .seq_type = PEER_SEQ};
  bw_pid_t pump;
  assert_int_equal(bw_spawn(c.rt, &pump_b, &pa, NULL, &pump), 0);
  assert_int_equal(bw_send(c.rt, pump, T_PUMP, NULL, 0), 0);
  bw_runtime_stats_t st;
  BWT_POLL(bw_runtime_stats(c.rt, &st) == 0 && st.forwarded >= total / 10);
  bwt_nats_stop(&server);
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL); /* the server stays away a while (not a timing assertion) */
  assert_true(bwt_nats_start(&server, server.port));
  /* everything sent or refused, and p3 has all that went */
  BWT_POLL_FOR(bw_runtime_stats(c.rt, &st) == 0 &&
                   st.forwarded + st.dead_by_reason[BW_DL_NOCONNECTION] >= total + 0,
               120);
  uint64_t refused = atomic_load(&pump_failed);
  assert_int_equal(st.dead_by_reason[BW_DL_NOCONNECTION], refused);
  peer_report_t r3;
  BWT_POLL_FOR((r3 = report(c.rt, s3)).seq_seen >= total - refused, 120);
  assert_int_equal(r3.seq_seen, total - refused);
  assert_true(r3.seq_bad <= refused); /* a hole per refused run, never a repeat */
  fprintf(stderr, "cluster server restart: %u sent, %lu refused, %lu arrived once in order\n",
          total, (unsigned long)refused, (unsigned long)r3.seq_seen);
  cluster_down(&c);
}

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
#ifdef BW_HAVE_NATS
  have_server = bwt_have_nats_server() && bwt_nats_start(&server, 0);
#endif
  if (!have_server)
    fprintf(stderr, "test_cluster: nats-server not available: skipped\n");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  bwt_nats_stop(&server);
#ifdef BW_HAVE_NATS
  nats_Close(); /* libnats's own threads and buffers */
#endif
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_calls_names_and_order),
      cmocka_unit_test(test_cluster_remote_crash_and_kill),
      cmocka_unit_test(test_cluster_supervisor_fallback),
      cmocka_unit_test(test_cluster_server_restart),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
