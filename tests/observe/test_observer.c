/*
 * The HTTP observer: every endpoint's status and content type, 404 and 405,
 * the page being self-contained, and that slow and malformed clients do not
 * stop it serving others. A plain socket client, so the test needs nothing
 * but the library.
 */
#include "support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulwark/metrics.h"
#include "bulwark/observer.h"

/* --- a tiny HTTP/1.0 client --------------------------------------------------- */

typedef struct http_resp {
  int status;
  char head[2048];
  char *body; /* malloc'ed, NUL-terminated */
  size_t body_len;
} http_resp_t;

static int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

/* Sends raw bytes, reads until the server closes (HTTP/1.0). */
static http_resp_t http_raw(uint16_t port, const char *req) {
  int fd = connect_to(port);
  size_t n = strlen(req);
  assert_int_equal(write(fd, req, n), (ssize_t)n);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    assert_true(poll(&p, 1, BWT_WAIT_SECONDS * 1000) == 1); /* else the server hung */
    if (len + 4096 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    ssize_t r = read(fd, buf + len, cap - len - 1);
    assert_true(r >= 0);
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  http_resp_t out;
  memset(&out, 0, sizeof out);
  char *sep = strstr(buf, "\r\n\r\n");
  if (sscanf(buf, "HTTP/1.%*d %d", &out.status) != 1 || sep == NULL) {
    out.status = 0; /* closed without an answer */
    out.body = buf;
    return out;
  }
  size_t hl = (size_t)(sep - buf);
  if (hl >= sizeof out.head)
    hl = sizeof out.head - 1;
  memcpy(out.head, buf, hl);
  out.body_len = len - (size_t)(sep + 4 - buf);
  out.body = malloc(out.body_len + 1);
  memcpy(out.body, sep + 4, out.body_len + 1);
  free(buf);
  return out;
}

static http_resp_t http_get(uint16_t port, const char *path) {
  char req[256];
  snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
  http_resp_t r = http_raw(port, req);
  assert_int_not_equal(r.status, 0);
  return r;
}

static bool has_header(const http_resp_t *r, const char *h) {
  return strcasestr(r->head, h) != NULL;
}

/* --- the system under observation ----------------------------------------------- */

static int idle_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx, (void)st, (void)m;
  return BW_CONTINUE;
}

static const bw_behaviour_t idle_beh = {.name = "idle", .handle = idle_handle};

static const bw_child_spec_t kids[] = {
    {.id = "config", .behaviour = &idle_beh},
    {.id = "conn", .behaviour = &idle_beh},
};
static const bw_sup_spec_t root_spec = {
    .name = "root", .strategy = BW_REST_FOR_ONE, .children = kids, .nchildren = 2};

typedef struct world {
  bw_runtime_t *rt;
  bw_pid_t root;
  bw_health_t *health;
  bw_metrics_t *metrics;
  bw_observer_t *obs;
  uint16_t port;
} world_t;

static world_t world_up(bool with_all) {
  world_t w;
  memset(&w, 0, sizeof w);
  w.rt = bwt_runtime(2, true);
  bw_sup_error_t err;
  assert_int_equal(bw_supervisor_start(w.rt, &root_spec, &w.root, &err), 0);
  bw_observer_opts_t o;
  bw_observer_opts_init(&o);
  if (with_all) {
    assert_int_equal(bw_health_create(w.rt, NULL, &w.health), 0);
    assert_int_equal(bw_metrics_create(w.rt, NULL, &w.metrics), 0);
    o.tree_root = w.root;
    o.health = w.health;
    o.metrics = w.metrics;
  }
  o.timeout_s = 2;
  int rc = bw_observer_start(w.rt, &o, &w.obs);
  if (rc == BW_ENOTSUP)
    skip(); /* built without libmicrohttpd */
  assert_int_equal(rc, 0);
  w.port = bw_observer_port(w.obs);
  assert_true(w.port != 0);
  return w;
}

static void world_down(world_t *w) {
  assert_int_equal(bw_observer_stop(w->obs), 0);
  if (w->health != NULL)
    assert_int_equal(bw_health_destroy(w->health), 0);
  if (w->metrics != NULL)
    assert_int_equal(bw_metrics_destroy(w->metrics), 0);
  bw_runtime_destroy(w->rt);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_endpoints(void **st) {
  (void)st;
  world_t w = world_up(true);

  http_resp_t r = http_get(w.port, "/tree");
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: application/json"));
  assert_non_null(strstr(r.body, "\"id\":\"config\""));
  assert_non_null(strstr(r.body, "\"id\":\"conn\""));
  assert_non_null(strstr(r.body, "\"type\":\"supervisor\""));
  free(r.body);

  /* the monitor has no components: healthy once it has run a round */
  assert_int_equal(bw_health_check_now(w.health), 0);
  assert_int_equal(bw_health_flush(w.health, 0), 0);
  r = http_get(w.port, "/health");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"status\":\"healthy\""));
  free(r.body);

  assert_int_equal(bw_metrics_collect(w.metrics, 0), 0);
  r = http_get(w.port, "/metrics");
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(r.body, "# TYPE bulwark_"));
  free(r.body);

  r = http_get(w.port, "/");
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: text/html"));
  assert_non_null(strstr(r.body, "fetch('/tree')"));
  /* self-contained: no external assets */
  assert_null(strstr(r.body, "src=\"http"));
  assert_null(strstr(r.body, "href=\"http"));
  free(r.body);

  uint64_t ok = 0;
  assert_int_equal(bw_observer_counts(w.obs, &ok, NULL, NULL, NULL), 0);
  assert_int_equal(ok, 4);
  world_down(&w);
}

static void test_unhealthy_is_503(void **st) {
  (void)st;
  world_t w = world_up(true);
  bw_health_component_t c;
  bw_health_component_init(&c, BW_HEALTH_KIND_ACTOR, "ghost");
  c.pid = (bw_pid_t)0x7777000000001ull; /* nobody */
  assert_int_equal(bw_health_add(w.health, &c), 0);
  assert_int_equal(bw_health_check_now(w.health), 0);
  assert_int_equal(bw_health_flush(w.health, 0), 0);
  http_resp_t r = http_get(w.port, "/health");
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "\"name\":\"ghost\""));
  free(r.body);
  world_down(&w);
}

static void test_not_found_and_bad_method(void **st) {
  (void)st;
  world_t w = world_up(false);
  http_resp_t r = http_get(w.port, "/nope");
  assert_int_equal(r.status, 404);
  free(r.body);
  /* configured without a tree, monitor or reporter: those paths are 404 */
  const char *paths[] = {"/tree", "/health", "/metrics"};
  for (int i = 0; i < 3; i++) {
    r = http_get(w.port, paths[i]);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "configured"));
    free(r.body);
  }
  r = http_raw(w.port, "POST /tree HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
  assert_int_equal(r.status, 405);
  assert_true(has_header(&r, "Allow: GET, HEAD"));
  free(r.body);
  r = http_raw(w.port, "DELETE / HTTP/1.0\r\n\r\n");
  assert_int_equal(r.status, 405);
  free(r.body);
  uint64_t nf = 0, bm = 0;
  assert_int_equal(bw_observer_counts(w.obs, NULL, &nf, &bm, NULL), 0);
  assert_int_equal(nf, 4);
  assert_int_equal(bm, 2);
  world_down(&w);
}

/* A client that connects and says nothing, and one that sends garbage: the
 * others are still served, at once. */
static void test_slow_and_malformed_clients(void **st) {
  (void)st;
  world_t w = world_up(true);
  int idle[4];
  for (int i = 0; i < 4; i++)
    idle[i] = connect_to(w.port);
  int half = connect_to(w.port);
  const char *partial = "GET /tree HTTP/1.1\r\nHost: x\r\n"; /* never finished */
  assert_int_equal(write(half, partial, strlen(partial)), (ssize_t)strlen(partial));

  /* answered 400, or dropped: either way not served, and not in the way */
  http_resp_t r = http_raw(w.port, "\x01\x02garbage\r\n\r\n");
  assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
  free(r.body);
  r = http_get(w.port, "/tree");
  assert_int_equal(r.status, 200);
  free(r.body);
  /* the runtime is unaffected */
  assert_true(bw_is_alive(w.rt, w.root));
  for (int i = 0; i < 4; i++)
    close(idle[i]);
  close(half);
  world_down(&w);
}

static void test_bad_options(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(1, true);
  bw_observer_opts_t o;
  bw_observer_t *ob = NULL;
  bw_observer_opts_init(&o);
  assert_int_equal(bw_observer_start(NULL, &o, &ob), BW_EINVAL);
  assert_int_equal(bw_observer_start(rt, NULL, &ob), BW_EINVAL);
  assert_int_equal(bw_observer_start(rt, &o, NULL), BW_EINVAL);
  int rc = bw_observer_start(rt, &o, &ob);
  if (rc == BW_ENOTSUP) {
    bw_runtime_destroy(rt);
    skip();
  }
  assert_int_equal(rc, 0);
  /* the same port again: in use */
  bw_observer_opts_t o2 = o;
  bw_observer_t *ob2 = NULL;
  o2.port = bw_observer_port(ob);
  assert_int_equal(bw_observer_start(rt, &o2, &ob2), BW_ESTATE);
  assert_int_equal(bw_observer_stop(ob), 0);
  o2 = o;
  o2.bind_addr = "localhost"; /* not a dotted quad */
  assert_int_equal(bw_observer_start(rt, &o2, &ob2), BW_EINVAL);
  o2 = o;
  o2.refresh_ms = 50;
  assert_int_equal(bw_observer_start(rt, &o2, &ob2), BW_EINVAL);
  o2 = o;
  o2.max_connections = 5000;
  assert_int_equal(bw_observer_start(rt, &o2, &ob2), BW_EINVAL);
  o2 = o;
  o2.max_body = 100;
  assert_int_equal(bw_observer_start(rt, &o2, &ob2), BW_EINVAL);
  assert_int_equal(bw_observer_stop(NULL), 0);
  assert_int_equal(bw_observer_port(NULL), 0);
  assert_int_equal(bw_runtime_stop(rt), 0);
  assert_int_equal(bw_observer_start(rt, &o, &ob2), BW_ESHUTDOWN);
  bw_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_endpoints),
      cmocka_unit_test(test_unhealthy_is_503),
      cmocka_unit_test(test_not_found_and_bad_method),
      cmocka_unit_test(test_slow_and_malformed_clients),
      cmocka_unit_test(test_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
