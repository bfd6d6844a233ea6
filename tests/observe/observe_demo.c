/*
 * observe_demo: a small live system for the observer's "real parts" tests
 * (tests/observe/test_prometheus.sh, test_chromium.sh): a real Prometheus
 * server scrapes it, a headless Chromium renders its page.
 *
 *   observe_demo [--port N] [--seconds S] [--stdin]
 *
 * Starts a runtime (real clock), the supervision tree
 *
 *   root (rest_for_one)
 *     config            worker
 *     conn              worker, registered as "conn"
 *     agents            supervisor (one_for_one)
 *       agent-1         worker
 *       agent-2         worker
 *
 * whose workers tick every 100 ms (so the runtime's counters move), a
 * metrics reporter collecting every 200 ms (plus demo_ticks_total and
 * conn's mailbox depth), a health monitor checking "conn" every 500 ms, and
 * the observer on 127.0.0.1:N (N = 0: any free port). Prints "port=NNNN"
 * on stdout (flushed) once it serves, with a first metrics snapshot taken, then serves until SIGINT/SIGTERM, S
 * seconds (0 = no limit; default 600, so a forgotten demo ends by itself),
 * or, with --stdin, until stdin closes. Exit 0 after a clean stop, 1 on a
 * start failure (reason on stderr), 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif

#include <bulwark/bulwark.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { DEMO_TICK = 1 }; /* a worker's own interval timer */

#define TICK_MS 100u
#define METRICS_PERIOD_MS 200u
#define HEALTH_PERIOD_MS 500u

/* The reporter's app counter, set before the tree starts and read-only
 * afterwards (workers only add to the series it points to). */
static bw_counter_t *g_ticks;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

typedef struct worker {
  uint64_t ticks;
} worker_t;

static int worker_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)state, (void)arg;
  /* The timer ends by itself once this actor is dead (timer.h), so a
   * restarted worker leaves no stale ticker behind. */
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), TICK_MS, DEMO_TICK, NULL, 0, NULL);
}

static int worker_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  worker_t *w = state;
  if (msg->type == DEMO_TICK) {
    w->ticks++;
    (void)bw_counter_inc(g_ticks);
  } else if (msg->type == BW_HEALTH_MSG_CHECK && (msg->flags & BW_MSGF_REQUEST)) {
    (void)bw_health_answer(ctx, msg, BW_HEALTH_HEALTHY, "ticking");
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t worker_beh = {
    .name = "demo_worker", .state_size = sizeof(worker_t), .init = worker_init,
    .handle = worker_handle};

static const bw_child_spec_t agent_kids[] = {
    {.id = "agent-1", .behaviour = &worker_beh},
    {.id = "agent-2", .behaviour = &worker_beh},
};
static const bw_sup_spec_t agents_spec = {
    .name = "agents", .strategy = BW_ONE_FOR_ONE, .children = agent_kids, .nchildren = 2};

static const bw_child_spec_t root_kids[] = {
    {.id = "config", .behaviour = &worker_beh},
    {.id = "conn", .behaviour = &worker_beh, .name = "conn"},
    {.id = "agents", .supervisor = &agents_spec, .type = BW_SUPERVISOR},
};
static const bw_sup_spec_t root_spec = {
    .name = "root", .strategy = BW_REST_FOR_ONE, .children = root_kids, .nchildren = 3};

static void usage(void) {
  fprintf(stderr, "usage: observe_demo [--port N] [--seconds S] [--stdin]\n");
}

static int parse_u(const char *s, unsigned long max, unsigned long *out) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define FAIL(what, rc)                                                                        \
  do {                                                                                        \
    fprintf(stderr, "observe_demo: %s: %s (%s)\n", what, bw_err_name(rc), bw_strerror(rc)); \
    goto out;                                                                                 \
  } while (0)

int main(int argc, char **argv) {
  unsigned long port = 0, seconds = 600;
  int watch_stdin = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      if (parse_u(argv[++i], 65535, &port) != 0)
        return usage(), 2;
    } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      if (parse_u(argv[++i], 86400ul * 365, &seconds) != 0)
        return usage(), 2;
    } else if (strcmp(argv[i], "--stdin") == 0) {
      watch_stdin = 1;
    } else {
      return usage(), 2;
    }
  }

  /* Block the stop signals before any thread exists, so every runtime and
   * server thread inherits the mask and only ppoll below takes them. */
  sigset_t stop_set, wait_mask;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_set, &wait_mask);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGHUP);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a scraper that hangs up must not kill us */

  int status = 1, rc;
  bw_runtime_t *rt = NULL;
  bw_metrics_t *metrics = NULL;
  bw_health_t *health = NULL;
  bw_observer_t *obs = NULL;
  bw_pid_t root = BW_PID_NONE;
  int annotated = 0;

  bw_runtime_opts_t ro;
  bw_runtime_opts_init(&ro);
  ro.workers = 2;
  if ((rc = bw_runtime_create(&ro, &rt)) != 0)
    FAIL("runtime", rc);

  bw_metrics_opts_t mo;
  bw_metrics_opts_init(&mo);
  mo.period_ms = METRICS_PERIOD_MS;
  if ((rc = bw_metrics_new(rt, &mo, &metrics)) != 0)
    FAIL("metrics", rc);
  if ((rc = bw_metrics_counter_new(metrics, "demo_ticks_total", "Ticks handled by the demo's workers.",
                                   &g_ticks)) != 0)
    FAIL("metrics counter", rc);
  if ((rc = bw_metrics_add_actor(metrics, "conn")) != 0)
    FAIL("metrics actor", rc);

  bw_sup_error_t err;
  if ((rc = bw_supervisor_start(rt, &root_spec, &root, &err)) != 0) {
    fprintf(stderr, "observe_demo: tree: %s at %s: %s\n", bw_err_name(rc), err.child, err.message);
    goto out;
  }
  if ((rc = bw_metrics_start(metrics, NULL)) != 0)
    FAIL("metrics start", rc);
  /* A first snapshot now, so /metrics answers 200 (not 503 "nothing
   * collected yet") from the moment the port is printed. */
  if ((rc = bw_metrics_collect(metrics, 10000)) != 0)
    FAIL("metrics collect", rc);

  bw_health_opts_t ho;
  bw_health_opts_init(&ho);
  ho.name = "demo";
  ho.period_ms = HEALTH_PERIOD_MS;
  if ((rc = bw_health_new(rt, &ho, &health)) != 0)
    FAIL("health", rc);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "conn");
  c.target_name = "conn";
  if ((rc = bw_health_add(health, &c)) != 0)
    FAIL("health component", rc);
  if ((rc = bw_health_start(health, NULL)) != 0)
    FAIL("health start", rc);
  if ((rc = bw_tree_annotate_health(rt, health)) != 0)
    FAIL("tree annotate", rc);
  annotated = 1;

  bw_observer_opts_t oo;
  bw_observer_opts_init(&oo);
  oo.port = (uint16_t)port;
  oo.tree_root = root;
  oo.metrics = metrics;
  oo.health = health;
  oo.refresh_ms = 500;
  if ((rc = bw_observer_start(rt, &oo, &obs)) != 0)
    FAIL("observer", rc);

  printf("port=%u\n", (unsigned)bw_observer_port(obs));
  fflush(stdout);

  double deadline = seconds > 0 ? mono_s() + (double)seconds : 0;
  while (!g_stop) {
    double left = 1.0;
    if (deadline > 0) {
      left = deadline - mono_s();
      if (left <= 0)
        break;
      if (left > 1.0)
        left = 1.0;
    }
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    int n = ppoll(watch_stdin ? &p : NULL, watch_stdin ? 1 : 0, &ts, &wait_mask);
    if (n > 0 && watch_stdin) {
      char buf[256];
      ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
        break; /* stdin closed */
    }
  }
  status = 0;

out:
  if (obs != NULL)
    (void)bw_observer_stop(obs);
  if (annotated)
    (void)bw_tree_forget_health(rt, health);
  /* The workers add to g_ticks: stop them before the registry goes. */
  if (root != BW_PID_NONE && (rc = bw_sup_stop(rt, root)) != 0) {
    fprintf(stderr, "observe_demo: tree stop: %s\n", bw_err_name(rc));
    status = 1;
  }
  if (health != NULL && (rc = bw_health_destroy(health)) != 0) {
    fprintf(stderr, "observe_demo: health destroy: %s\n", bw_err_name(rc));
    status = 1;
  }
  if (metrics != NULL && (rc = bw_metrics_destroy(metrics)) != 0) {
    fprintf(stderr, "observe_demo: metrics destroy: %s\n", bw_err_name(rc));
    status = 1;
  }
  bw_runtime_destroy(rt);
  return status;
}
