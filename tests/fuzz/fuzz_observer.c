/*
 * fuzz_observer: bytes -> what the observer shows (a supervision tree whose
 * child ids are arbitrary bytes, a health monitor with a check component
 * whose name, status and reason are arbitrary, a metrics registry with
 * series whose label values are arbitrary) and requests (method + URL,
 * query string included, from a list or arbitrary bytes; with the guards
 * on, a token and allowed hosts, also Host and Authorization headers from
 * a list or arbitrary bytes) -> the observer's router
 * (bw__observer_route, observe/observer_internal.h; no sockets).
 *
 * Checked for each answer: the status is the one the route must give
 * (421 for a Host that does not name the server, then 401 without the
 * token except for the page, then
 * 405 for a method other than GET/HEAD, 404 for an unknown path or an
 * absent component, 503 for a dead tree root or an unhealthy monitor or
 * nothing collected yet, 200 otherwise; 500 only if the body would exceed
 * max_body); the content type matches; every JSON body (errors, /health,
 * /tree) is well-formed (tests/json_check.h) and agrees with the status;
 * the Prometheus text has one sample or comment per line, so a label value
 * with a newline or quote cannot break the format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bulwark/bulwark.h"
#include "bulwark/health.h"
#include "bulwark/metrics.h"
#include "bulwark/observer.h"
#include "bulwark/tree.h"
#include "observe/observer_internal.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/json_check.h"

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "fuzz_observer: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

#define MAX_REQS 8
#define NKIDS 3

static bw_runtime_t *g_rt;
static uint64_t g_inputs, g_reqs, g_by_status[6]; /* 200, 404, 405, 500, 503, other */
static uint64_t g_guarded[2]; /* 421, 401 */

static void rt_down(void) {
  if (getenv("BW_FUZZ_STATS") != NULL)
    fprintf(stderr,
            "fuzz_observer: %llu inputs, %llu requests: 200 %llu, 404 %llu, 405 %llu, "
            "500 %llu, 503 %llu, 421 %llu, 401 %llu\n",
            (unsigned long long)g_inputs, (unsigned long long)g_reqs,
            (unsigned long long)g_by_status[0], (unsigned long long)g_by_status[1],
            (unsigned long long)g_by_status[2], (unsigned long long)g_by_status[3],
            (unsigned long long)g_by_status[4], (unsigned long long)g_guarded[0],
            (unsigned long long)g_guarded[1]);
  bw_runtime_destroy(g_rt);
  g_rt = NULL;
}

static int h_idle(bw_ctx_t *ctx, void *st, const bw_msg_t *m) {
  (void)ctx, (void)st, (void)m;
  return BW_CONTINUE;
}
static const bw_behaviour_t idle = {.name = "idle", .handle = h_idle};

/* The health check: answers what the input said. */
typedef struct check_arg {
  int status;
  char reason[80];
} check_arg_t;

static int fz_check(void *arg, char *reason, size_t cap) {
  const check_arg_t *a = arg;
  if (a->reason[0] != '\0')
    snprintf(reason, cap, "%s", a->reason);
  return a->status;
}

/* What the input set up. */
typedef struct world {
  bw_child_spec_t kids[NKIDS];
  char ids[NKIDS][BW_SUP_ID_MAX];
  bw_sup_spec_t spec;
  bw_pid_t root;
  bool root_dead;
  bw_health_t *health;
  check_arg_t check;
  int health_status; /* the aggregate the snapshot shows */
  bw_metrics_t *metrics;
  bool collected;
  bw_observer_t *obs;
} world_t;

static void up_tree(fz_t *f, world_t *w) {
  size_t n = 0;
  for (unsigned i = 0; i < NKIDS && fz_bool(f); i++) {
    fz_str(f, w->ids[n], BW_SUP_ID_MAX - 1);
    if (w->ids[n][0] == '\0')
      continue;
    bool dup = false;
    for (size_t j = 0; j < n; j++)
      dup |= strcmp(w->ids[j], w->ids[n]) == 0;
    if (dup)
      continue;
    memset(&w->kids[n], 0, sizeof w->kids[n]);
    w->kids[n].id = w->ids[n];
    w->kids[n].behaviour = &idle;
    n++;
  }
  memset(&w->spec, 0, sizeof w->spec);
  w->spec.name = "fz";
  w->spec.strategy = BW_ONE_FOR_ONE;
  w->spec.children = w->kids;
  w->spec.nchildren = n;
  bw_sup_error_t err;
  CHECK(bw_supervisor_start(g_rt, &w->spec, &w->root, &err) == 0);
  if (fz_u8(f) < 32) { /* a root that is gone: 503 */
    CHECK(bw_sup_stop(g_rt, w->root) == 0);
    w->root_dead = true;
  }
}

static void up_health_empty(world_t *w) {
  CHECK(bw_health_check_now(w->health) == 0);
  CHECK(bw_health_flush(w->health, 0) == 0);
  /* a monitor with no component of ours is healthy once it has run a round */
  for (time_t t0 = time(NULL); bw_health_status(w->health) != BW_HEALTH_HEALTHY;)
    CHECK(time(NULL) - t0 < 20);
}

static void up_health(fz_t *f, world_t *w) {
  CHECK(bw_health_new(g_rt, NULL, &w->health) == 0);
  CHECK(bw_health_start(w->health, NULL) == 0);
  w->health_status = BW_HEALTH_HEALTHY;
  if (fz_bool(f)) {
    char name[BW_HEALTH_NAME_MAX];
    fz_str(f, name, BW_HEALTH_NAME_MAX - 1);
    if (name[0] == '\0')
      strcpy(name, "c");
    fz_str(f, w->check.reason, sizeof w->check.reason - 1);
    static const int st[] = {BW_HEALTH_HEALTHY, BW_HEALTH_DEGRADED, BW_HEALTH_UNHEALTHY,
                             BW_ETIMEDOUT};
    w->check.status = st[fz_below(f, 4)];
    bw_health_component_t c;
    bw_health_component_init(&c, BW_HEALTH_KIND_CHECK, name);
    c.check = fz_check;
    c.check_arg = &w->check;
    int rc = bw_health_add(w->health, &c);
    if (rc == BW_EEXIST) {
      /* a built-in component's name ("restarts", "escalations", "watchdog") */
      CHECK(strcmp(name, "restarts") == 0 || strcmp(name, "escalations") == 0 ||
            strcmp(name, "watchdog") == 0);
      up_health_empty(w);
      return;
    }
    CHECK(rc == 0);
    int want = w->check.status < 0 ? BW_HEALTH_UNHEALTHY : w->check.status;
    /* rounds until the check's answer is in the snapshot (it runs on a
     * helper thread and answers asynchronously) */
    bw_health_info_t info;
    time_t t0 = time(NULL);
    for (;;) {
      CHECK(bw_health_check_now(w->health) == 0);
      CHECK(bw_health_flush(w->health, 0) == 0);
      if (bw_health_component_info(w->health, name, &info) == 0 && info.status == want &&
          bw_health_status(w->health) == want)
        break;
      CHECK(time(NULL) - t0 < 20);
      struct timespec ts = {0, 200 * 1000};
      nanosleep(&ts, NULL);
    }
    w->health_status = want;
  } else {
    up_health_empty(w);
  }
}

static void up_metrics(fz_t *f, world_t *w) {
  bw_metrics_opts_t o;
  bw_metrics_opts_init(&o);
  o.runtime_metrics = fz_bool(f);
  o.max_cells = 1024;
  CHECK(bw_metrics_new(g_rt, &o, &w->metrics) == 0);
  CHECK(bw_metrics_start(w->metrics, NULL) == 0);
  static const char *const labels[] = {"method", "path"};
  bw_metric_family_t *fam = NULL;
  CHECK(bw_metrics_family(w->metrics, BW_METRIC_COUNTER, "fz_requests_total",
                          "requests by \"method\" and path\\ (help text: escaped)", labels, 2,
                          &fam) == 0);
  for (unsigned i = fz_below(f, 4); i > 0; i--) {
    char v1[BW_METRICS_VALUE_MAX + 1], v2[BW_METRICS_VALUE_MAX + 1];
    fz_str(f, v1, BW_METRICS_VALUE_MAX);
    fz_str(f, v2, BW_METRICS_VALUE_MAX);
    const char *vals[] = {v1, v2};
    bw_counter_t *c = NULL;
    CHECK(bw_metrics_counter(fam, vals, &c) == 0);
    CHECK(bw_counter_add(c, fz_u8(f)) == 0);
  }
  bw_gauge_t *g = NULL;
  CHECK(bw_metrics_gauge_new(w->metrics, "fz_gauge", NULL, &g) == 0);
  double vals[] = {0.0, -1.5, 1e300, -0.0, 3.25};
  CHECK(bw_gauge_set(g, vals[fz_below(f, 5)]) == 0);
  if (fz_u8(f) >= 32) {
    CHECK(bw_metrics_collect(w->metrics, 0) == 0);
    w->collected = true;
  }
}

static void down(world_t *w) {
  if (w->obs != NULL)
    bw__observer_free(w->obs);
  if (w->root != BW_PID_NONE && !w->root_dead)
    CHECK(bw_sup_stop(g_rt, w->root) == 0);
  if (w->health != NULL)
    CHECK(bw_health_destroy(w->health) == 0);
  if (w->metrics != NULL)
    CHECK(bw_metrics_destroy(w->metrics) == 0);
}

/* --- requests ---------------------------------------------------------------------- */

static const char *const methods[] = {"GET", "HEAD", "POST", "get", "DELETE", "", "GET "};
static const char *const paths[] = {"/metrics", "/health", "/tree", "/", "/index.html",
                                    "/metrics/", "//tree", "/tree?x=1", "", "/TREE",
                                    "/health\n", "*"};

/* The Prometheus text: lines of "# HELP", "# TYPE" or a sample
 * `name{labels} value`; a label value's quote, backslash and newline are
 * escaped, so no line starts with anything else and quotes balance. */
static void check_prometheus(const char *t, size_t len) {
  CHECK(strlen(t) == len);
  CHECK(len == 0 || t[len - 1] == '\n');
  const char *p = t;
  while (*p != '\0') {
    const char *nl = strchr(p, '\n');
    CHECK(nl != NULL);
    if (p[0] == '#') {
      CHECK(strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0);
    } else {
      CHECK((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z') || p[0] == '_' ||
            p[0] == ':');
      /* quotes outside escapes come in pairs */
      int quotes = 0;
      for (const char *q = p; q < nl; q++) {
        if (*q == '\\' && quotes % 2 == 1) {
          q++;
          CHECK(*q == '\\' || *q == '"' || *q == 'n');
        } else if (*q == '"') {
          quotes++;
        }
      }
      CHECK(quotes % 2 == 0);
    }
    p = nl + 1;
  }
}

static void expect_json(const bw__http_resp_t *r) {
  CHECK(strcmp(r->content_type, "application/json") == 0);
  char *s = malloc(r->len + 1);
  CHECK(s != NULL);
  memcpy(s, r->body, r->len);
  s[r->len] = '\0';
  CHECK(strlen(s) == r->len);
  if (!bwt_json_valid(s)) {
    fprintf(stderr, "fuzz_observer: invalid JSON (%zu bytes): %.400s\n", r->len, s);
    abort();
  }
  free(s);
}

static bool body_has(const bw__http_resp_t *r, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= r->len; i++)
    if (memcmp(r->body + i, needle, n) == 0)
      return true;
  return false;
}

/* The guards (what & 16): the server is "bound" to 10.1.2.3:9100 with
 * these extra names and this token. */
#define FZ_TOKEN "fz.T0ken~+/="
static const char *const fz_allowed[] = {"observer.lan", "Proxy.LAN:8443", NULL};
static const char *const hosts[] = {
    "localhost",        "LOCALHOST:9100", "127.0.0.1:9100", "[::1]:9100",    "10.1.2.3",
    "observer.lan:1",   "proxy.lan:8443", "evil.example",   "localhost:9101", "localhost:09100",
    "localhost.:9100",  "proxy.lan",      "[::1",           "",              "10.1.2.3:9100:1",
    "observer.lan:123456"};
static const char *const auths[] = {
    "Bearer " FZ_TOKEN, "bearer   " FZ_TOKEN, "Bearer fz.T0ken~+/", "Bearer " FZ_TOKEN "=",
    "Basic " FZ_TOKEN,  FZ_TOKEN,              "Bearer",            "Bearer "};

/* The Host check, from its specification rather than its code: one of
 * the built-in names with port 9100 or none, observer.lan with any port
 * of 1 to 5 digits or none, proxy.lan:8443 exactly; any case. */
static bool host_ok(const char *h) {
  if (h == NULL)
    return true;
  static const char *const exact[] = {"localhost", "127.0.0.1", "[::1]", "10.1.2.3",
                                      "observer.lan", "proxy.lan:8443"};
  char want[64];
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    if (strcasecmp(h, exact[i]) == 0)
      return true;
    snprintf(want, sizeof want, "%s:9100", exact[i]);
    if (i < 4 && strcasecmp(h, want) == 0)
      return true;
  }
  if (strncasecmp(h, "observer.lan:", 13) == 0) {
    size_t d = strspn(h + 13, "0123456789");
    return d >= 1 && d <= 5 && h[13 + d] == '\0';
  }
  return false;
}

/* The token check: "Bearer" in any case, spaces, the token. */
static bool auth_ok(const char *a) {
  if (a == NULL || strncasecmp(a, "bearer ", 7) != 0)
    return false;
  a += 7;
  while (*a == ' ')
    a++;
  return strcmp(a, FZ_TOKEN) == 0;
}

static void request(const world_t *w, bool guarded, const char *method, const char *url,
                    const char *host, const char *auth) {
  bw__http_resp_t r;
  bw__http_req_t req = {.method = method, .url = url, .host = host, .authorization = auth};
  int rc = bw__observer_route(w->obs, &req, &r);
  CHECK(rc == 0);
  g_reqs++;
  bool page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
  if (guarded && (!host_ok(host) || (!page && !auth_ok(auth)))) {
    unsigned refused = !host_ok(host) ? 421 : 401;
    if (r.status != refused) {
      fprintf(stderr, "fuzz_observer: Host '%s' Authorization '%s' answered %u, expected %u\n",
              host ? host : "(none)", auth ? auth : "(none)", r.status, refused);
      abort();
    }
    g_guarded[refused == 421 ? 0 : 1]++;
    expect_json(&r);
    CHECK(body_has(&r, "\"error\":"));
    CHECK(!body_has(&r, FZ_TOKEN)); /* never shown */
    free(r.body);
    return;
  }
  unsigned want;
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (!get)
    want = 405;
  else if (strcmp(url, "/metrics") == 0)
    want = w->metrics == NULL ? 404 : w->collected ? 200 : 503;
  else if (strcmp(url, "/health") == 0)
    want = w->health == NULL ? 404 : w->health_status == BW_HEALTH_HEALTHY ? 200 : 503;
  else if (strcmp(url, "/tree") == 0)
    want = w->root == BW_PID_NONE ? 404 : w->root_dead ? 503 : 200;
  else if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
    want = 200;
  else
    want = 404;
  if (r.status != want) {
    fprintf(stderr, "fuzz_observer: %s '%s' answered %u, expected %u: %.*s\n", method, url,
            r.status, want, (int)(r.len < 300 ? r.len : 300), r.body ? r.body : "");
    abort();
  }
  g_by_status[want == 200 ? 0 : want == 404 ? 1 : want == 405 ? 2 : want == 500 ? 3 : 4]++;
  CHECK(r.body != NULL && r.content_type != NULL);
  if (get && strcmp(url, "/metrics") == 0 && want == 200) {
    CHECK(strncmp(r.content_type, "text/plain; version=0.0.4", 25) == 0);
    check_prometheus(r.body, r.len);
    CHECK(body_has(&r, "fz_gauge "));
  } else if (get && want == 200 && (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)) {
    CHECK(strncmp(r.content_type, "text/html", 9) == 0);
    CHECK(body_has(&r, "</html>"));
  } else {
    expect_json(&r);
    if (want == 200 && strcmp(url, "/tree") == 0)
      CHECK(body_has(&r, "\"children\":["));
    if (get && strcmp(url, "/health") == 0 && w->health != NULL)
      CHECK(body_has(&r, want == 200 ? "\"status\":\"healthy\"" : "\"status\":\""));
    bool health_body = get && strcmp(url, "/health") == 0 && w->health != NULL;
    if (want == 404 || want == 405 || (want == 503 && !health_body))
      CHECK(body_has(&r, "\"error\":"));
  }
  free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_rt == NULL) {
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    o.log_level = BW_LOG_OFF; /* inputs crash actors by the thousand: no reports */
    o.workers = 2;
    o.manual_clock = true;
    CHECK(bw_runtime_create(&o, &g_rt) == 0);
    atexit(rt_down);
    unsetenv("BW_OBSERVER_TOKEN"); /* the input says whether there is a token */
  }
  g_inputs++;
  fz_t f = fz_init(data, size);
  static world_t w;
  memset(&w, 0, sizeof w);
  uint8_t what = fz_u8(&f);
  if (what & 1)
    up_tree(&f, &w);
  if (what & 2)
    up_health(&f, &w);
  if (what & 4)
    up_metrics(&f, &w);

  bool guarded = (what & 16) != 0;
  bw_observer_opts_t o;
  bw_observer_opts_init(&o);
  if (guarded) {
    o.bind_addr = "10.1.2.3"; /* parsed, never bound */
    o.port = 9100;
    o.token = FZ_TOKEN;
    o.allowed_hosts = fz_allowed;
  }
  o.tree_root = w.root;
  o.health = w.health;
  o.metrics = w.metrics;
  o.refresh_ms = (what & 8) ? 100 + fz_below(&f, 200) : 0;
  CHECK(bw__observer_new(g_rt, &o, &w.obs) == 0);

  for (int i = 0; i < MAX_REQS && !fz_done(&f); i++) {
    char mbuf[32], ubuf[256];
    uint8_t k = fz_u8(&f);
    const char *method = methods[k % 7];
    if (k >= 224) {
      fz_str(&f, mbuf, sizeof mbuf - 1);
      method = mbuf;
    }
    k = fz_u8(&f);
    const char *url = paths[k % 12];
    if (k >= 192) {
      fz_str(&f, ubuf, sizeof ubuf - 1);
      url = ubuf;
    }
    /* libmicrohttpd passes the path without the query: both forms */
    char path[256];
    snprintf(path, sizeof path, "%s", url);
    char *q = strchr(path, '?');
    if (q != NULL && (k & 1))
      *q = '\0';
    const char *host = NULL, *auth = NULL;
    char hbuf[64], abuf[64];
    if (guarded) {
      k = fz_u8(&f);
      host = k < 224 ? hosts[k % (sizeof hosts / sizeof hosts[0])] : NULL;
      if (k >= 240) {
        fz_str(&f, hbuf, sizeof hbuf - 1);
        host = hbuf;
      }
      k = fz_u8(&f);
      auth = k < 224 ? auths[k % (sizeof auths / sizeof auths[0])] : NULL;
      if (k >= 240) {
        fz_str(&f, abuf, sizeof abuf - 1);
        auth = abuf;
      }
    }
    request(&w, guarded, method, path, host, auth);
  }
  down(&w);
  return 0;
}
