/*
 * Nodes over NATS: two nodes (two runtimes, each with its own NATS
 * connection) in one process, against a private nats-server on a free
 * loopback port. Remote send, request/reply, per-pair order, remote
 * monitors and links (remote crash, node lost by silence under the manual
 * clock, node leaving), unreachable nodes, malformed frames, bad options.
 * Skipped when nats-server is not installed.
 */
#include "support.h"

#include <stdatomic.h>

#include "node/node_internal.h"
#include "tests/node/nats_server.h"
#include "tests/node/node_actors.h"
#ifdef BW_HAVE_NATS
#include <nats/nats.h>
#endif

enum { T_COUNT = 1, T_ECHO, T_CRASH, T_SEQ };

#define HB_MS 100
#define MISSES 3

static bwt_nats_t server;
static bool have_server;

/* --- actors ----------------------------------------------------------------- */

static atomic_ulong counted;

/* counts T_COUNT, answers T_ECHO requests with the payload, crashes on T_CRASH */
static int server_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  switch (msg->type) {
  case T_COUNT:
    atomic_fetch_add(&counted, 1);
    return BW_CONTINUE;
  case T_ECHO:
    if (msg->flags & BW_MSGF_REQUEST)
      bw_reply(ctx, msg, 0, T_ECHO, msg->data, msg->len);
    return BW_CONTINUE;
  case T_CRASH:
    return BW_ECRASH;
  default:
    return BW_CONTINUE;
  }
}
static const bw_behaviour_t server_b = {.name = "server", .handle = server_handle};

/* checks that T_SEQ numbers arrive in order */
typedef struct seq_state {
  uint32_t next;
} seq_state;
static atomic_uint seq_seen, seq_bad;
static int seq_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  seq_state *s = state;
  if (msg->type == T_SEQ) {
    uint32_t v;
    memcpy(&v, msg->data, sizeof v);
    if (v != s->next)
      atomic_fetch_add(&seq_bad, 1);
    s->next = v + 1;
    atomic_fetch_add(&seq_seen, 1);
  }
  return BW_CONTINUE;
}
static const bw_behaviour_t seq_b = {.name = "seq", .state_size = sizeof(seq_state),
                                     .handle = seq_handle};



/* a plain actor that does not trap exits: dies with its linked peer */
static int plain_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_LINK) {
    bw_pid_t p;
    memcpy(&p, msg->data, sizeof p);
    bw_link(ctx, p);
  }
  return BW_CONTINUE;
}
static const bw_behaviour_t plain_b = {.name = "plain", .handle = plain_handle};

/* --- a pair of nodes ---------------------------------------------------------- */

static bw_runtime_t *node_rt(unsigned id, bool manual) {
  bw_runtime_opts_t o;
  bw_runtime_opts_init(&o);
  bwt_quiet_log(&o);
  o.workers = 2;
  o.manual_clock = manual;
  o.node_id = id;
  bw_runtime_t *rt = NULL;
  assert_int_equal(bw_runtime_create(&o, &rt), 0);
  return rt;
}

static void join(bw_runtime_t *rt, const char *name) {
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = name;
  o.url = server.url;
  o.cluster = "bwtest";
  o.heartbeat_ms = HB_MS;
  o.heartbeat_misses = MISSES;
  assert_int_equal(bw_node_start(rt, &o), 0);
}

static void pair(bw_runtime_t **a, bw_runtime_t **b, bool manual) {
  *a = node_rt(1, manual);
  *b = node_rt(2, manual);
  join(*a, "alpha");
  join(*b, "beta");
  unsigned id = 0;
  assert_int_equal(bw_node_wait(*a, "beta", 10000, &id), 0);
  assert_int_equal(id, 2);
  assert_int_equal(bw_node_wait(*b, "alpha", 10000, &id), 0);
  assert_int_equal(id, 1);
}

static bw_pid_t spawn_on(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg) {
  bw_pid_t p = BW_PID_NONE;
  assert_int_equal(bw_spawn(rt, b, arg, NULL, &p), 0);
  return p;
}

/* every user message accounted for on both nodes, once quiet */
static void assert_pair_accounting(bw_runtime_t *a, bw_runtime_t *b) {
  bw_runtime_stats_t sa, sb;
  BWT_POLL(bw_runtime_stats(a, &sa) == 0 && bw_runtime_stats(b, &sb) == 0 &&
           sa.sent == sa.handled + sa.dead_letters + sa.forwarded &&
           sb.sent == sb.handled + sb.dead_letters + sb.forwarded);
}

#define REQUIRE_SERVER()                                                       \
  do {                                                                         \
    if (!have_server)                                                          \
      skip();                                                                  \
  } while (0)

/* --- tests ---------------------------------------------------------------------- */

static void test_remote_send_and_call(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  atomic_store(&counted, 0);
  bw_pid_t srv = spawn_on(a, &server_b, NULL);
  assert_int_equal(bw_pid_node(srv), 1);
  for (int i = 0; i < 100; i++)
    assert_int_equal(bw_send(b, srv, T_COUNT, &i, sizeof i), 0);
  BWT_POLL(atomic_load(&counted) == 100);

  /* a synchronous call from a thread of node beta to an actor of alpha */
  char payload[BW_MSG_INLINE_MAX];
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (char)(i * 7);
  bw_reply_t rep;
  assert_int_equal(bw_call(b, srv, T_ECHO, payload, sizeof payload, 0, &rep), 0);
  assert_int_equal(rep.type, T_ECHO);
  assert_int_equal(rep.len, sizeof payload);
  assert_memory_equal(rep.data, payload, sizeof payload);

  /* a pointer cannot cross: refused, the caller keeps it */
  int *p = malloc(sizeof *p);
  assert_int_equal(bw_send_move(b, srv, T_COUNT, p, sizeof *p, free), BW_EREMOTE);
  free(p);

  bw_runtime_stats_t sb = bwt_stats(b);
  assert_true(sb.forwarded >= 101);
  bw_node_stats_t ns;
  assert_int_equal(bw_node_stats(a, &ns), 0);
  assert_true(ns.frames_in >= 101);
  assert_int_equal(ns.bad_frames, 0);
  assert_int_equal(ns.connected, 1);
  assert_pair_accounting(a, b);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

static void test_pair_order(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  atomic_store(&seq_seen, 0);
  atomic_store(&seq_bad, 0);
  atomic_store(&pump_failed, 0);
  uint32_t total = (uint32_t)bwt_scaled(100000);
  bw_pid_t sink = spawn_on(a, &seq_b, NULL);
  pump_arg pa = {.target = sink, .total = total, .seq_type = T_SEQ};
  bw_pid_t pump = spawn_on(b, &pump_b, &pa);
  assert_int_equal(bw_send(b, pump, T_PUMP, NULL, 0), 0);
  BWT_POLL_FOR(atomic_load(&seq_seen) + atomic_load(&pump_failed) >= total, 120);
  assert_int_equal(atomic_load(&pump_failed), 0);
  assert_int_equal(atomic_load(&seq_seen), total);
  assert_int_equal(atomic_load(&seq_bad), 0);
  assert_pair_accounting(a, b);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

static void test_remote_monitor_and_link_on_crash(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  bw_pid_t target = spawn_on(a, &server_b, NULL);
  watcher_rec mon = {0}, lnk = {0};
  bw_pid_t w1 = spawn_on(b, &watcher_b, &mon);
  bw_pid_t w2 = spawn_on(b, &watcher_b, &lnk);
  bw_pid_t victim = spawn_on(b, &plain_b, NULL); /* linked, not trapping: dies too */
  assert_int_equal(bw_send(b, w1, T_WATCH, &target, sizeof target), 0);
  assert_int_equal(bw_send(b, w2, T_LINK, &target, sizeof target), 0);
  assert_int_equal(bw_send(b, victim, T_LINK, &target, sizeof target), 0);
  BWT_POLL(atomic_load(&mon.monitor_rc) == 1000 && atomic_load(&lnk.link_rc) == 1000);
  /* the link and monitor are recorded on both sides before the crash */
  bw_node_stats_t ns;
  BWT_POLL(bw_node_stats(a, &ns) == 0 && ns.links == 3);
  assert_int_equal(bw_send(b, target, T_CRASH, NULL, 0), 0);
  BWT_POLL(atomic_load(&mon.downs) == 1 && atomic_load(&lnk.exits) == 1);
  assert_int_equal(atomic_load(&mon.down_kind), BW_REASON_CRASH);
  assert_int_equal(atomic_load(&lnk.exit_kind), BW_REASON_CRASH);
  BWT_POLL(!bw_is_alive(b, victim));
  assert_true(bw_is_alive(b, w1));
  /* nothing left over on either side */
  BWT_POLL(bw_node_stats(a, &ns) == 0 && ns.links == 0);
  BWT_POLL(bw_node_stats(b, &ns) == 0 && ns.links == 0);

  /* monitoring a remote pid that is already dead: DOWN noproc */
  watcher_rec late = {0};
  bw_pid_t w3 = spawn_on(b, &watcher_b, &late);
  assert_int_equal(bw_send(b, w3, T_WATCH, &target, sizeof target), 0);
  BWT_POLL(atomic_load(&late.downs) == 1);
  assert_int_equal(atomic_load(&late.down_kind), BW_REASON_NOPROC);
  /* a message to it is a dead letter on alpha, reason noproc */
  bw_runtime_stats_t before = bwt_stats(a);
  assert_int_equal(bw_send(b, target, T_COUNT, NULL, 0), 0);
  BWT_POLL(bwt_stats(a).dead_by_reason[BW_DL_NOPROC] == before.dead_by_reason[BW_DL_NOPROC] + 1);
  assert_pair_accounting(a, b);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* alpha goes silent (a crashed process); beta finds out when its manual
 * clock has run past heartbeat_ms * heartbeat_misses, not before */
static void test_node_lost_by_silence(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  bw_pid_t target = spawn_on(a, &server_b, NULL);
  watcher_rec mon = {0}, lnk = {0};
  bw_pid_t w1 = spawn_on(b, &watcher_b, &mon);
  bw_pid_t w2 = spawn_on(b, &watcher_b, &lnk);
  bw_pid_t victim = spawn_on(b, &plain_b, NULL);
  assert_int_equal(bw_send(b, w1, T_WATCH, &target, sizeof target), 0);
  assert_int_equal(bw_send(b, w2, T_LINK, &target, sizeof target), 0);
  assert_int_equal(bw_send(b, victim, T_LINK, &target, sizeof target), 0);
  bw_node_stats_t ns;
  BWT_POLL(bw_node_stats(a, &ns) == 0 && ns.links == 3);

  assert_int_equal(bw__node_sever(a), 0);
  /* within the limit: still connected */
  assert_int_equal(bw_clock_advance(b, HB_MS * MISSES), 0);
  assert_int_equal(bw_node_stats(b, &ns), 0);
  assert_int_equal(ns.nodes_lost, 0);
  assert_true(bw_node_connected(b, 1));
  /* one period more: lost, and every watcher hears noconnection */
  assert_int_equal(bw_clock_advance(b, HB_MS * 2), 0);
  BWT_POLL(atomic_load(&mon.downs) == 1 && atomic_load(&lnk.exits) == 1);
  assert_int_equal(atomic_load(&mon.down_kind), BW_REASON_NOCONNECTION);
  assert_int_equal(atomic_load(&lnk.exit_kind), BW_REASON_NOCONNECTION);
  BWT_POLL(!bw_is_alive(b, victim));
  assert_false(bw_node_connected(b, 1));
  assert_int_equal(bw_node_stats(b, &ns), 0);
  assert_int_equal(ns.nodes_lost, 1);
  assert_int_equal(ns.links, 0);

  /* a message to the lost node: a dead letter, noconnection */
  bw_runtime_stats_t before = bwt_stats(b);
  assert_int_equal(bw_send(b, target, T_COUNT, NULL, 0), BW_ENOCONN);
  bw_runtime_stats_t after = bwt_stats(b);
  assert_int_equal(after.dead_by_reason[BW_DL_NOCONNECTION],
                   before.dead_by_reason[BW_DL_NOCONNECTION] + 1);
  /* a link or monitor made now gets its answer at once */
  watcher_rec late = {0};
  bw_pid_t w3 = spawn_on(b, &watcher_b, &late);
  assert_int_equal(bw_send(b, w3, T_WATCH, &target, sizeof target), 0);
  assert_int_equal(bw_send(b, w3, T_LINK, &target, sizeof target), 0);
  BWT_POLL(atomic_load(&late.downs) == 1 && atomic_load(&late.exits) == 1);
  assert_int_equal(atomic_load(&late.down_kind), BW_REASON_NOCONNECTION);
  assert_int_equal(atomic_load(&late.exit_kind), BW_REASON_NOCONNECTION);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* a node that leaves says goodbye: the others know at once */
static void test_node_leaves(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  bw_pid_t target = spawn_on(a, &server_b, NULL);
  watcher_rec mon = {0};
  bw_pid_t w = spawn_on(b, &watcher_b, &mon);
  assert_int_equal(bw_send(b, w, T_WATCH, &target, sizeof target), 0);
  bw_node_stats_t ns;
  BWT_POLL(bw_node_stats(a, &ns) == 0 && ns.links == 1);
  assert_int_equal(bw_node_stop(a), 0);
  assert_int_equal(bw_node_stop(a), BW_ESTATE);
  BWT_POLL(atomic_load(&mon.downs) == 1);
  assert_int_equal(atomic_load(&mon.down_kind), BW_REASON_NOCONNECTION);
  assert_false(bw_node_connected(b, 1));
  /* and alpha, having left, reaches nobody */
  bw_pid_t on_b = spawn_on(b, &server_b, NULL);
  assert_int_equal(bw_send(a, on_b, T_COUNT, NULL, 0), BW_ENOCONN);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

static void test_unknown_node_and_bad_input(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  /* node 9 never joined */
  bw_pid_t ghost = ((bw_pid_t)9 << 56) | ((bw_pid_t)1 << 32) | 5;
  assert_int_equal(bw_send(a, ghost, T_COUNT, NULL, 0), BW_ENOCONN);
  assert_int_equal(bw_exit(a, ghost, BW_REASON_SHUTDOWN, 0, NULL), BW_ENOCONN);
  watcher_rec r = {0};
  bw_pid_t w = spawn_on(a, &watcher_b, &r);
  assert_int_equal(bw_send(a, w, T_WATCH, &ghost, sizeof ghost), 0);
  assert_int_equal(bw_send(a, w, T_LINK, &ghost, sizeof ghost), 0);
  BWT_POLL(atomic_load(&r.downs) == 1 && atomic_load(&r.exits) == 1);
  assert_int_equal(atomic_load(&r.down_kind), BW_REASON_NOCONNECTION);

  /* options */
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = "again";
  o.url = server.url;
  assert_int_equal(bw_node_start(a, &o), BW_EALREADY);
  assert_int_equal(bw_node_start(NULL, &o), BW_EINVAL);
  assert_int_equal(bw_node_start(a, NULL), BW_EINVAL);
  bw_runtime_t *plain = bwt_runtime(1, true); /* no node_id */
  assert_int_equal(bw_node_start(plain, &o), BW_EINVAL);
  assert_int_equal(bw_node_stop(plain), BW_ESTATE);
  bw_node_stats_t ns;
  assert_int_equal(bw_node_stats(plain, &ns), BW_ESTATE);
  bw_runtime_destroy(plain);
  bw_runtime_t *c = node_rt(3, true);
  o.name = "has space";
  assert_int_equal(bw_node_start(c, &o), BW_EINVAL);
  o.name = "gamma";
  o.cluster = "a.b";
  assert_int_equal(bw_node_start(c, &o), BW_EINVAL);
  o.cluster = "bwtest";
  o.user = "u"; /* a user without a password */
  assert_int_equal(bw_node_start(c, &o), BW_EINVAL);
  o.user = NULL;
  /* nobody listening */
  char url[64];
  snprintf(url, sizeof url, "nats://127.0.0.1:%d", bwt_free_port());
  o.url = url;
  o.connect_timeout_ms = 500;
  int rc = bw_node_start(c, &o);
  assert_true(rc == BW_ENOCONN || rc == BW_ETIMEDOUT);
  /* and it can still join afterwards */
  o.url = server.url;
  assert_int_equal(bw_node_start(c, &o), 0);
  assert_int_equal(bw_node_wait(c, "alpha", 10000, NULL), 0);
  assert_int_equal(bw_node_wait(c, "nobody", 0, NULL), BW_ETIMEDOUT);
  bw_runtime_destroy(c);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}


static bool whereis_is(bw_runtime_t *rt, const char *name, bw_pid_t want) {
  bw_pid_t p = BW_PID_NONE;
  int rc = bw_node_whereis(rt, name, &p);
  return want == BW_PID_NONE ? rc == BW_ENOTFOUND : (rc == 0 && p == want);
}

static void test_cluster_names(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  atomic_store(&counted, 0);
  bw_pid_t sa = spawn_on(a, &server_b, NULL);
  bw_pid_t sb = spawn_on(b, &server_b, NULL);
  assert_int_equal(bw_node_register(a, "db.primary", sa), 0);
  assert_int_equal(bw_node_register(a, "db.primary", sa), 0); /* again: same pid */
  assert_true(whereis_is(a, "db.primary", sa));
  BWT_POLL(whereis_is(b, "db.primary", sa));
  /* taken, as seen from beta */
  assert_int_equal(bw_node_register(b, "db.primary", sb), BW_EEXIST);
  /* found by name, sent to across nodes */
  bw_pid_t to;
  assert_int_equal(bw_node_whereis(b, "db.primary", &to), 0);
  assert_int_equal(bw_send(b, to, T_COUNT, NULL, 0), 0);
  BWT_POLL(atomic_load(&counted) == 1);
  /* bad input */
  assert_int_equal(bw_node_register(b, "bad name", sb), BW_EINVAL);
  assert_int_equal(bw_node_register(b, "x", sa), BW_ENOPROC); /* not beta's actor */
  assert_int_equal(bw_node_whereis(b, "nobody", &to), BW_ENOTFOUND);
  assert_int_equal(bw_node_unregister(b, "db.primary"), BW_ENOTFOUND); /* alpha's */

  /* a node that joins later learns every name at once */
  bw_runtime_t *c = node_rt(3, true);
  join(c, "gamma");
  assert_int_equal(bw_node_wait(c, "alpha", 10000, NULL), 0);
  BWT_POLL(whereis_is(c, "db.primary", sa));

  /* two nodes claiming one name at the same moment: the lower id keeps it,
   * and every node ends up agreeing */
  bw_pid_t sc = spawn_on(c, &server_b, NULL);
  assert_int_equal(bw_node_wait(b, "gamma", 10000, NULL), 0);
  assert_int_equal(bw_node_wait(c, "beta", 10000, NULL), 0);
  int rb = bw_node_register(b, "leader", sb);
  int rc = bw_node_register(c, "leader", sc);
  assert_int_equal(rb, 0);
  assert_true(rc == 0 || rc == BW_EEXIST);
  BWT_POLL(whereis_is(a, "leader", sb) && whereis_is(b, "leader", sb) &&
           whereis_is(c, "leader", sb));

  /* the owner exits: the name goes everywhere */
  assert_int_equal(bw_exit(a, sa, BW_REASON_KILL, 0, NULL), 0);
  BWT_POLL(whereis_is(a, "db.primary", BW_PID_NONE) && whereis_is(b, "db.primary", BW_PID_NONE) &&
           whereis_is(c, "db.primary", BW_PID_NONE));
  /* unregistered: gone everywhere */
  assert_int_equal(bw_node_unregister(b, "leader"), 0);
  BWT_POLL(whereis_is(a, "leader", BW_PID_NONE) && whereis_is(c, "leader", BW_PID_NONE));
  /* the owner's node lost: its names go */
  assert_int_equal(bw_node_register(c, "gamma.svc", sc), 0);
  BWT_POLL(whereis_is(a, "gamma.svc", sc));
  assert_int_equal(bw_node_stop(c), 0);
  BWT_POLL(whereis_is(a, "gamma.svc", BW_PID_NONE) && whereis_is(b, "gamma.svc", BW_PID_NONE));
  bw_runtime_destroy(c);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* a worker exported for remote supervisors: its init argument is a tag it
 * keeps; it crashes on T_CRASH */
static atomic_int remote_inits;
static int rworker_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  if (arg != NULL)
    memcpy(state, arg, sizeof(uint32_t));
  atomic_fetch_add(&remote_inits, 1);
  return 0;
}
static int rworker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  return msg->type == T_CRASH ? BW_ECRASH : BW_CONTINUE;
}
static const bw_behaviour_t rworker_b = {.name = "rworker", .state_size = sizeof(uint32_t),
                                         .init = rworker_init, .handle = rworker_handle};

static bw_pid_t child_pid(bw_runtime_t *rt, bw_pid_t sup, const char *id) {
  bw_pid_t p = BW_PID_NONE;
  if (bw_sup_child_pid(rt, sup, id, &p) != 0)
    return BW_PID_NONE;
  return p;
}

static void test_supervisor_with_remote_child(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  bw_runtime_t *c = node_rt(3, true);
  join(c, "gamma");
  assert_int_equal(bw_node_wait(a, "gamma", 10000, NULL), 0);
  assert_int_equal(bw_node_export(b, "rworker", &rworker_b), 0);
  assert_int_equal(bw_node_export(c, "rworker", &rworker_b), 0);
  assert_int_equal(bw_node_export(c, "rworker", &server_b), BW_EEXIST);
  atomic_store(&remote_inits, 0);

  static const uint32_t tag = 42;
  static const bw_remote_child_t remote = {
      .behaviour = "rworker", .nodes = {"beta", "gamma"}, .arg = &tag, .arg_len = sizeof tag};
  static const bw_child_spec_t kids[] = {{.id = "far", .remote = &remote}};
  static const bw_sup_spec_t spec = {.name = "root", .strategy = BW_ONE_FOR_ONE,
                                     .intensity = 10, .period_ms = 60000,
                                     .children = kids, .nchildren = 1};
  bw_pid_t sup;
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(a, &spec, &sup, &err), 0);
  bw_pid_t far = child_pid(a, sup, "far");
  assert_int_equal(bw_pid_node(far), 2); /* the first choice */
  assert_true(bw_is_alive(b, far));
  assert_int_equal(atomic_load(&remote_inits), 1);

  /* it crashes: restarted, on beta again */
  assert_int_equal(bw_send(a, far, T_CRASH, NULL, 0), 0);
  BWT_POLL(child_pid(a, sup, "far") != far && child_pid(a, sup, "far") != BW_PID_NONE);
  bw_pid_t far2 = child_pid(a, sup, "far");
  assert_int_equal(bw_pid_node(far2), 2);

  /* beta is lost: the child counts as failed, and comes back on gamma */
  assert_int_equal(bw__node_sever(b), 0);
  /* alpha's clock runs on past beta's silence while gamma keeps talking:
   * each period, gamma's heartbeat reaches alpha before alpha's clock moves */
  for (int step = 0; step < MISSES + 2; step++) {
    bw_node_stats_t before, now;
    assert_int_equal(bw_node_stats(a, &before), 0);
    assert_int_equal(bw_clock_advance(c, HB_MS), 0);
    BWT_POLL(bw_node_stats(a, &now) == 0 && now.frames_in > before.frames_in);
    assert_int_equal(bw_clock_advance(a, HB_MS), 0);
  }
  /* The wait above shows that a frame reached alpha, not that alpha's agent
   * had handled gamma's heartbeat before alpha's clock moved: now and then
   * (about 1 run in 10 on a loaded 2-core machine) alpha counted gamma
   * late too, and the restart's remote spawn then waited for a timeout on
   * a clock nobody moved. So both clocks go on moving, one heartbeat period
   * at a time, until the child is back on gamma (a few periods at most). */
  for (int step = 0; step < 200 && bw_pid_node(child_pid(a, sup, "far")) != 3; step++) {
    bw_node_stats_t before, now;
    assert_int_equal(bw_node_stats(a, &before), 0);
    assert_int_equal(bw_clock_advance(c, HB_MS), 0);
    BWT_POLL(bw_node_stats(a, &now) == 0 && now.frames_in > before.frames_in);
    assert_int_equal(bw_clock_advance(a, HB_MS), 0);
  }
  BWT_POLL(bw_pid_node(child_pid(a, sup, "far")) == 3);
  bw_pid_t far3 = child_pid(a, sup, "far");
  assert_true(bw_is_alive(c, far3));
  assert_int_equal(atomic_load(&remote_inits), 3);

  /* stopping the tree stops the remote child */
  assert_int_equal(bw_sup_stop(a, sup), 0);
  BWT_POLL(!bw_is_alive(c, far3));

  /* a spec whose nodes are all unknown fails to start, clearly */
  static const bw_remote_child_t nowhere = {.behaviour = "rworker", .nodes = {"delta"}};
  static const bw_child_spec_t kids2[] = {{.id = "lost", .remote = &nowhere}};
  static const bw_sup_spec_t spec2 = {.name = "r2", .children = kids2, .nchildren = 1};
  assert_int_equal(bw_supervisor_start(a, &spec2, &sup, &err), BW_ENOCONN);
  assert_string_equal(err.child, "lost");
  /* and a bad remote spec is refused before anything starts */
  static const bw_remote_child_t bad = {.behaviour = "rworker"};
  static const bw_child_spec_t kids3[] = {{.id = "bad", .remote = &bad}};
  static const bw_sup_spec_t spec3 = {.name = "r3", .children = kids3, .nchildren = 1};
  assert_int_equal(bw_supervisor_validate(&spec3, &err), BW_EINVAL);
  bw_runtime_destroy(c);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* counts T_SEQ numbers and checks they only ever grow (a message refused
 * while the server was away leaves a hole; none may come twice or late) */
static atomic_uint mono_seen, mono_bad;
static int mono_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  int64_t *last = state;
  if (msg->type == T_SEQ) {
    uint32_t v;
    memcpy(&v, msg->data, sizeof v);
    if ((int64_t)v < *last)
      atomic_fetch_add(&mono_bad, 1);
    *last = (int64_t)v + 1;
    atomic_fetch_add(&mono_seen, 1);
  }
  return BW_CONTINUE;
}
static const bw_behaviour_t mono_b = {.name = "mono", .state_size = sizeof(int64_t),
                                      .handle = mono_handle};

/* the NATS server goes away in the middle of a stream and comes back on the
 * same port: the nodes reconnect, and every message the sender was told
 * went (0) arrives exactly once, in order; the others were refused as
 * unreachable and are dead letters there: counted exactly */
static void test_server_restart_mid_stream(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  atomic_store(&mono_seen, 0);
  atomic_store(&mono_bad, 0);
  atomic_store(&pump_failed, 0);
  uint32_t total = (uint32_t)bwt_scaled(200000);
  bw_pid_t sink = spawn_on(a, &mono_b, NULL);
  pump_arg pa = {.target = sink, .total = total, .seq_type = T_SEQ};
  bw_pid_t pump = spawn_on(b, &pump_b, &pa);
  assert_int_equal(bw_send(b, pump, T_PUMP, NULL, 0), 0);
  BWT_POLL(atomic_load(&mono_seen) >= total / 10);
  bwt_nats_stop(&server);
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL); /* the server stays away a while (not a timing assertion) */
  assert_true(bwt_nats_start(&server, server.port));
  bw_runtime_stats_t sb;
  BWT_POLL_FOR(bw_runtime_stats(b, &sb) == 0 &&
                   sb.forwarded + sb.dead_by_reason[BW_DL_NOCONNECTION] >= total &&
                   atomic_load(&mono_seen) == sb.forwarded,
               120);
  assert_int_equal(sb.forwarded + sb.dead_by_reason[BW_DL_NOCONNECTION], total);
  assert_int_equal(sb.dead_by_reason[BW_DL_NOCONNECTION], atomic_load(&pump_failed));
  assert_int_equal(atomic_load(&mono_bad), 0);
  bw_node_stats_t na, nb;
  assert_int_equal(bw_node_stats(a, &na), 0);
  assert_int_equal(bw_node_stats(b, &nb), 0);
  fprintf(stderr,
          "server restart: %u messages, %lu forwarded and delivered once, %u refused "
          "(dead letters), %lu frames resent, %lu duplicates dropped, %lu dropped by the client\n",
          total, (unsigned long)sb.forwarded, atomic_load(&pump_failed),
          (unsigned long)nb.resent, (unsigned long)na.duplicates,
          (unsigned long)na.frames_dropped);
  assert_int_equal(na.frames_dropped, 0);
  assert_pair_accounting(a, b);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* a moved payload that crosses with a serializer: a heap blob of any size */
enum { T_BLOB = 40, T_BLOB_NOSER };
typedef struct blob {
  size_t n;
  unsigned char *bytes;
} blob;
static void blob_free(void *p) {
  blob *b = p;
  free(b->bytes);
  free(b);
}
static blob *blob_new(size_t n, unsigned seed) {
  blob *b = malloc(sizeof *b);
  b->n = n;
  b->bytes = malloc(n);
  for (size_t i = 0; i < n; i++)
    b->bytes[i] = (unsigned char)(i * 31 + seed);
  return b;
}
static long blob_encode(const void *ptr, size_t len, void *buf, size_t cap) {
  (void)len;
  const blob *b = ptr;
  if (b->n + sizeof(uint32_t) > cap)
    return BW_ETOOBIG;
  uint32_t n = (uint32_t)b->n;
  memcpy(buf, &n, sizeof n);
  memcpy((char *)buf + sizeof n, b->bytes, b->n);
  return (long)(sizeof n + b->n);
}
static int blob_decode(const void *buf, size_t n, void **ptr, size_t *len, void (**dtor)(void *)) {
  uint32_t m;
  if (n < sizeof m)
    return BW_EINVAL;
  memcpy(&m, buf, sizeof m);
  if (m != n - sizeof m)
    return BW_EINVAL;
  blob *b = malloc(sizeof *b);
  b->n = m;
  b->bytes = malloc(m ? m : 1);
  memcpy(b->bytes, (const char *)buf + sizeof m, m);
  *ptr = b;
  *len = sizeof *b;
  *dtor = blob_free;
  return 0;
}
static const bw_serializer_t blob_ser = {.encode = blob_encode, .decode = blob_decode};

static atomic_int blobs_ok, blobs_bad;
static int blob_sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == T_BLOB && (msg->flags & BW_MSGF_MOVED)) {
    const blob *b = msg->data;
    bool ok = b->n == 40000;
    for (size_t i = 0; ok && i < b->n; i++)
      ok = b->bytes[i] == (unsigned char)(i * 31 + 7);
    atomic_fetch_add(ok ? &blobs_ok : &blobs_bad, 1);
  }
  return BW_CONTINUE;
}
static const bw_behaviour_t blob_sink_b = {.name = "blob_sink", .handle = blob_sink_handle};

static void test_moved_payload_serializer(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  assert_int_equal(bw_node_serializer(a, T_BLOB, &blob_ser), 0);
  assert_int_equal(bw_node_serializer(b, T_BLOB, &blob_ser), 0);
  assert_int_equal(bw_node_serializer(b, T_BLOB, &blob_ser), BW_EEXIST);
  assert_int_equal(bw_node_serializer(b, T_BLOB_NOSER, NULL), BW_EINVAL);
  atomic_store(&blobs_ok, 0);
  atomic_store(&blobs_bad, 0);
  bw_pid_t sink = spawn_on(a, &blob_sink_b, NULL);
  for (int i = 0; i < 20; i++)
    assert_int_equal(bw_send_move(b, sink, T_BLOB, blob_new(40000, 7), sizeof(blob), blob_free), 0);
  BWT_POLL(atomic_load(&blobs_ok) == 20);
  assert_int_equal(atomic_load(&blobs_bad), 0);
  /* too big for a frame: refused by the serializer, a dead letter here */
  bw_runtime_stats_t before = bwt_stats(b);
  assert_int_equal(bw_send_move(b, sink, T_BLOB, blob_new(70000, 7), sizeof(blob), blob_free),
                   BW_ETOOBIG);
  assert_int_equal(bwt_stats(b).dead_by_reason[BW_DL_UNDECODABLE],
                   before.dead_by_reason[BW_DL_UNDECODABLE] + 1);
  /* a type without a serializer: refused, the caller keeps the pointer */
  blob *keep = blob_new(10, 1);
  assert_int_equal(bw_send_move(b, sink, T_BLOB_NOSER, keep, sizeof(blob), blob_free), BW_EREMOTE);
  blob_free(keep);
  /* a serializer on the sender only: the receiver cannot decode it */
  assert_int_equal(bw_node_serializer(b, T_BLOB_NOSER, &blob_ser), 0);
  before = bwt_stats(a);
  assert_int_equal(bw_send_move(b, sink, T_BLOB_NOSER, blob_new(100, 7), sizeof(blob), blob_free), 0);
  BWT_POLL(bwt_stats(a).dead_by_reason[BW_DL_UNDECODABLE] ==
           before.dead_by_reason[BW_DL_UNDECODABLE] + 1);
  assert_pair_accounting(a, b);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* every code node.h documents that the other tests do not produce */
static atomic_int probe_rc_start, probe_rc_stop, probe_rc_wait;
static int probe_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  (void)msg;
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = "probe";
  o.url = "nats://127.0.0.1:1";
  atomic_store(&probe_rc_start, bw_node_start(rt, &o));
  atomic_store(&probe_rc_stop, bw_node_stop(rt));
  atomic_store(&probe_rc_wait, bw_node_wait(rt, "alpha", 1000, NULL));
  return BW_CONTINUE;
}
static const bw_behaviour_t probe_b = {.name = "probe", .handle = probe_handle};

static void test_node_error_codes(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  bw_pid_t p = spawn_on(a, &server_b, NULL);
  bw_node_stats_t ns;
  bw_pid_t out;
  /* NULL arguments */
  assert_int_equal(bw_node_stop(NULL), BW_EINVAL);
  assert_int_equal(bw_node_wait(NULL, "x", 0, NULL), BW_EINVAL);
  assert_int_equal(bw_node_wait(a, NULL, 0, NULL), BW_EINVAL);
  assert_int_equal(bw_node_stats(a, NULL), BW_EINVAL);
  assert_int_equal(bw_node_register(a, NULL, p), BW_EINVAL);
  assert_int_equal(bw_node_unregister(a, NULL), BW_EINVAL);
  assert_int_equal(bw_node_whereis(a, "x", NULL), BW_EINVAL);
  assert_int_equal(bw_node_export(a, "x", NULL), BW_EINVAL);
  assert_int_equal(bw_node_export(a, "", &server_b), BW_EINVAL);
  assert_false(bw_node_connected(a, 0));
  assert_false(bw_node_connected(a, 999));
  /* from a scheduler thread: the blocking ones refuse */
  bw_pid_t probe = spawn_on(a, &probe_b, NULL);
  atomic_store(&probe_rc_wait, 1);
  assert_int_equal(bw_send(a, probe, 1, NULL, 0), 0);
  BWT_POLL(atomic_load(&probe_rc_wait) != 1); /* the last one it stores */
  assert_int_equal(atomic_load(&probe_rc_start), BW_EWOULDBLOCK);
  assert_int_equal(atomic_load(&probe_rc_stop), BW_EWOULDBLOCK);
  assert_int_equal(atomic_load(&probe_rc_wait), BW_EWOULDBLOCK);
  /* 64 exports at most */
  char name[16];
  int rc = 0;
  for (int i = 0; i < 65 && rc == 0; i++) {
    snprintf(name, sizeof name, "beh%d", i);
    rc = bw_node_export(a, name, &server_b);
  }
  assert_int_equal(rc, BW_ELIMIT);
  /* a node that has left */
  assert_int_equal(bw_node_stop(b), 0);
  assert_int_equal(bw_node_register(b, "late", spawn_on(b, &server_b, NULL)), BW_ESTATE);
  assert_int_equal(bw_node_unregister(b, "late"), BW_ESTATE);
  assert_int_equal(bw_node_stats(b, &ns), 0); /* still readable */
  /* not started at all: every call says so */
  bw_runtime_t *c = node_rt(5, true);
  assert_int_equal(bw_node_stop(c), BW_ESTATE);
  assert_int_equal(bw_node_wait(c, "alpha", 0, NULL), BW_ESTATE);
  assert_int_equal(bw_node_stats(c, &ns), BW_ESTATE);
  assert_int_equal(bw_node_register(c, "x", p), BW_ESTATE);
  assert_int_equal(bw_node_unregister(c, "x"), BW_ESTATE);
  assert_int_equal(bw_node_whereis(c, "x", &out), BW_ESTATE);
  assert_int_equal(bw_node_export(c, "x", &server_b), BW_ESTATE);
  static const bw_serializer_t ser = {.encode = blob_encode, .decode = blob_decode};
  assert_int_equal(bw_node_serializer(c, T_BLOB, &ser), BW_ESTATE);
  assert_int_equal(bw_node_serializer(a, BW_MSG_SYSTEM_BASE, &ser), BW_EINVAL);
  /* after the runtime stopped */
  assert_int_equal(bw_runtime_stop(c), 0);
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = "late";
  o.url = server.url;
  assert_int_equal(bw_node_start(c, &o), BW_ESHUTDOWN);
  bw_runtime_destroy(c);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}

/* credentials and TLS come from the options: a server that wants a token
 * lets in the node that has it and nobody else; a TLS server is reached
 * with the CA that signed its certificate, and not without */
static int try_join(bw_runtime_t *rt, const char *url, const char *token, const char *ca,
                    bool secure) {
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = "guarded";
  o.url = url;
  o.cluster = "bwsec";
  o.token = token;
  o.ca_file = ca;
  o.secure = secure;
  o.connect_timeout_ms = 2000;
  return bw_node_start(rt, &o);
}

static void test_token_and_tls(void **state) {
  (void)state;
  REQUIRE_SERVER();
  /* a token */
  bwt_nats_t guarded = {0};
  const char *auth[] = {"--auth", "s3cret-from-config", NULL};
  assert_true(bwt_nats_start_with(&guarded, 0, auth));
  bw_runtime_t *rt = node_rt(7, true);
  int rc = try_join(rt, guarded.url, "wrong", NULL, false);
  assert_true(rc == BW_ENOCONN || rc == BW_ETIMEDOUT);
  rc = try_join(rt, guarded.url, NULL, NULL, false);
  assert_true(rc == BW_ENOCONN || rc == BW_ETIMEDOUT);
  assert_int_equal(try_join(rt, guarded.url, "s3cret-from-config", NULL, false), 0);
  bw_runtime_destroy(rt);
  bwt_nats_stop(&guarded);

#if defined(__SANITIZE_THREAD__)
  /* TLS happens inside libnats and OpenSSL, which are not built with TSan:
   * it reports races inside libssl's buffers between libnats's threads
   * (whose own locking it does not fully see). Not ours to fix or to
   * suppress blindly; the TLS half runs in the other passes. */
  skip();
#endif
  /* TLS, with a throwaway CA made here */
  char dir[] = "/tmp/bwtlsXXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "(cd %s && printf 'subjectAltName=DNS:localhost\\n' > ext && "
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
           "-subj /CN=bwtest-ca && "
           "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
           "-subj /CN=localhost && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out server.pem -days 1 -extfile ext) >/dev/null 2>&1",
           dir);
  if (system("command -v openssl >/dev/null 2>&1") != 0) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)system(cmd);
    skip(); /* no openssl to make certificates with */
  }
  assert_int_equal(system(cmd), 0);
  char cert[256], key[256], ca[256], url[128];
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  const char *tls[] = {"--tls", "--tlscert", cert, "--tlskey", key, NULL};
  bwt_nats_t secure = {0};
  assert_true(bwt_nats_start_with(&secure, 0, tls));
  snprintf(url, sizeof url, "nats://localhost:%d", secure.port);
  rt = node_rt(8, true);
  rc = try_join(rt, url, NULL, NULL, true); /* without the CA: not trusted */
  assert_true(rc == BW_ENOCONN || rc == BW_ETIMEDOUT);
  assert_int_equal(try_join(rt, url, NULL, ca, true), 0);
  bw_runtime_destroy(rt);
  bwt_nats_stop(&secure);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)system(cmd);
}

#ifdef BW_HAVE_NATS
/* frames from a raw NATS client: garbage, truncated, lying about their
 * source, oversized: counted and dropped, never applied, never a crash */
static void test_malformed_frames(void **state) {
  (void)state;
  REQUIRE_SERVER();
  bw_runtime_t *a, *b;
  pair(&a, &b, true);
  atomic_store(&counted, 0);
  bw_pid_t srv = spawn_on(a, &server_b, NULL);
  natsConnection *nc = NULL;
  assert_int_equal(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
  uint8_t buf[4096];
  memset(buf, 0xAB, sizeof buf);
  int sent = 0;
  const char *subj = "bwtest.n.1";
  for (int len = 0; len < 300; len += 7, sent++)
    assert_int_equal(natsConnection_Publish(nc, subj, buf, len), NATS_OK);
  /* a well-formed header with a wrong length, a reserved type, a pid of
   * the wrong node, and a huge payload */
  uint8_t f[64 + 8];
  memset(f, 0, sizeof f);
  uint64_t seq1 = 1;
  uint32_t epoch = 0x5eed;
  memcpy(f + 48, &seq1, 8);
  memcpy(f + 56, &epoch, 4);
  f[0] = 0x62;
  f[1] = 0x77;
  f[2] = 1;
  f[3] = 1; /* user */
  f[4] = 2;
  f[5] = 1;
  uint32_t len8 = 8;
  memcpy(f + 20, &len8, 4);
  memcpy(f + 32, &srv, 8);
  uint32_t t = T_COUNT;
  memcpy(f + 12, &t, 4);
  /* correct frame: delivered (so the test knows the checks are not simply
   * refusing everything) */
  assert_int_equal(natsConnection_Publish(nc, subj, f, sizeof f), NATS_OK);
  uint32_t bad = 999;
  memcpy(f + 20, &bad, 4);
  assert_int_equal(natsConnection_Publish(nc, subj, f, sizeof f), NATS_OK);
  sent++;
  memcpy(f + 20, &len8, 4);
  t = BW_MSG_SYSTEM_BASE + 1;
  memcpy(f + 12, &t, 4);
  assert_int_equal(natsConnection_Publish(nc, subj, f, sizeof f), NATS_OK);
  sent++;
  t = T_COUNT;
  memcpy(f + 12, &t, 4);
  f[5] = 3; /* to a pid of node 1, addressed as node 3 */
  assert_int_equal(natsConnection_Publish(nc, subj, f, sizeof f), NATS_OK);
  sent++;
  assert_int_equal(natsConnection_Publish(nc, subj, buf, sizeof buf), NATS_OK);
  sent++;
  /* and garbage on the control subject */
  assert_int_equal(natsConnection_Publish(nc, "bwtest.ctl", buf, 60), NATS_OK);
  sent++;
  natsConnection_Flush(nc);
  bw_node_stats_t ns;
  BWT_POLL(bw_node_stats(a, &ns) == 0 && ns.bad_frames == (uint64_t)sent);
  BWT_POLL(atomic_load(&counted) == 1);
  /* still working */
  assert_int_equal(bw_send(b, srv, T_COUNT, NULL, 0), 0);
  BWT_POLL(atomic_load(&counted) == 2);
  natsConnection_Destroy(nc);
  bw_runtime_destroy(b);
  bw_runtime_destroy(a);
}
#endif

static void test_without_server_or_library(void **state) {
  (void)state;
  bw_runtime_t *rt = node_rt(4, true);
  bw_node_opts_t o;
  bw_node_opts_init(&o);
  o.name = "lonely";
  o.url = "nats://127.0.0.1:1";
  o.connect_timeout_ms = 200;
  int rc = bw_node_start(rt, &o);
#ifdef BW_HAVE_NATS
  assert_true(rc == BW_ENOCONN || rc == BW_ETIMEDOUT);
#else
  assert_int_equal(rc, BW_ENOTSUP);
#endif
  /* a node that never joined: remote pids are unreachable, not a crash */
  bw_pid_t other = ((bw_pid_t)7 << 56) | ((bw_pid_t)1 << 32) | 1;
  assert_int_equal(bw_send(rt, other, T_COUNT, NULL, 0), BW_ENOPROC);
  bw_runtime_destroy(rt);
}

static int group_setup(void **state) {
  (void)state;
#ifdef BW_HAVE_NATS
  have_server = bwt_have_nats_server() && bwt_nats_start(&server, 0);
  if (!have_server)
    fprintf(stderr, "test_node: nats-server not available: node tests skipped\n");
#endif
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  bwt_nats_stop(&server);
#ifdef BW_HAVE_NATS
  nats_Close();
#endif
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_without_server_or_library),
      cmocka_unit_test(test_remote_send_and_call),
      cmocka_unit_test(test_pair_order),
      cmocka_unit_test(test_remote_monitor_and_link_on_crash),
      cmocka_unit_test(test_node_lost_by_silence),
      cmocka_unit_test(test_node_leaves),
      cmocka_unit_test(test_unknown_node_and_bad_input),
      cmocka_unit_test(test_cluster_names),
      cmocka_unit_test(test_supervisor_with_remote_child),
      cmocka_unit_test(test_server_restart_mid_stream),
      cmocka_unit_test(test_moved_payload_serializer),
      cmocka_unit_test(test_node_error_codes),
      cmocka_unit_test(test_token_and_tls),
#ifdef BW_HAVE_NATS
      cmocka_unit_test(test_malformed_frames),
#endif
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
