/*
 * Tests of the HTTP client (patterns/http.c, include/bulwark/http.h)
 * against real servers on loopback: the hostile fixture server
 * (http_fixture.h, in this process) for statuses and faults, and the main
 * demo's model server (examples/model_server, its own process) for 1,000
 * concurrent requests. These use the real clock: the servers' behaviour is
 * in real time. Every wait is bounded; no assertion is about speed.
 */
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "bulwark/http.h"
#include "http_fixture.h"
#include "patterns/http_internal.h" /* bw__http_host_key, tested on its own */

static hfx_t g_srv;

static int setup(void **st) {
  (void)st;
  hfx_start(&g_srv);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  hfx_stop(&g_srv);
  return 0;
}

typedef struct env {
  bw_runtime_t *rt;
  bw_http_t *h;
  bw_pid_t pid;
} env_t;

static env_t env_up_clock(const bw_http_opts_t *o, bool manual_clock) {
  env_t e = {0};
  e.rt = bwt_runtime(2, manual_clock);
  int rc = bw_http_new(e.rt, o, &e.h);
  if (rc == BW_ENOTSUP) {
    bw_runtime_destroy(e.rt);
    skip(); /* built without libcurl */
  }
  assert_int_equal(rc, 0);
  assert_int_equal(bw_http_start(e.h, &e.pid), 0);
  return e;
}

static env_t env_up(const bw_http_opts_t *o) {
  return env_up_clock(o, false);
}

static void env_down(env_t *e) {
  assert_int_equal(bw_http_destroy(e->h), 0);
  bw_runtime_destroy(e->rt);
}

static char *url(const char *path) {
  static char b[256];
  snprintf(b, sizeof b, "http://127.0.0.1:%u%s", g_srv.port, path);
  return b;
}

static int get(env_t *e, const char *path, uint64_t timeout_ms, bw_http_resp_t **r) {
  bw_http_req_t *q = bw_http_req_new("GET", url(path));
  assert_non_null(q);
  return bw_http_call(e->rt, e->pid, q, timeout_ms, r);
}

static void test_get_keepalive(void **st) {
  (void)st;
  env_t e = env_up(NULL);
  unsigned before = atomic_load(&g_srv.accepted);
  for (int i = 0; i < 3; i++) {
    bw_http_resp_t *r = NULL;
    assert_int_equal(get(&e, "/ok", 5000, &r), 0);
    assert_non_null(r);
    assert_int_equal(r->code, 200);
    assert_int_equal(r->body_len, 5);
    assert_string_equal(r->body, "hello");
    char v[16];
    assert_int_equal(bw_http_resp_header(r, "content-length", v, sizeof v), 1);
    assert_string_equal(v, "5");
    assert_int_equal(bw_http_resp_header(r, "X-None", v, sizeof v), BW_ENOTFOUND);
    bw_http_resp_free(r);
  }
  /* one connection, kept alive across the three requests */
  assert_int_equal(atomic_load(&g_srv.accepted) - before, 1);
  bw_http_stats_t s;
  assert_int_equal(bw_http_stats(e.h, &s), 0);
  assert_int_equal(s.requests, 3);
  assert_int_equal(s.responses_2xx, 3);
  assert_int_equal(s.in_flight, 0);
  assert_true(s.bytes_received >= 15);
  env_down(&e);
}

static void test_echo_token_from_env(void **st) {
  (void)st;
  setenv("BWT_HTTP_TOKEN", "s3cret-token", 1);
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.bearer_token_env = "BWT_HTTP_TOKEN";
  env_t e = env_up(&o);
  bw_http_req_t *q = bw_http_req_new("PUT", url("/echo"));
  assert_int_equal(bw_http_req_header(q, "Content-Type: text/plain"), 0);
  assert_int_equal(bw_http_req_header(q, "bad\r\nInjected: 1"), BW_EINVAL);
  assert_int_equal(bw_http_req_header(q, "no colon"), BW_EINVAL);
  assert_int_equal(bw_http_req_body(q, "payload!", 8), 0);
  assert_true(bw_http_req_is_idempotent(q));
  bw_http_resp_t *r = NULL;
  assert_int_equal(bw_http_call(e.rt, e.pid, q, 5000, &r), 0);
  assert_non_null(r);
  assert_int_equal(r->body_len, 8);
  assert_memory_equal(r->body, "payload!", 8);
  char v[64];
  assert_true(bw_http_resp_header(r, "X-Seen-Auth", v, sizeof v) > 0);
  assert_string_equal(v, "Bearer s3cret-token");
  assert_true(bw_http_resp_header(r, "X-Seen-Method", v, sizeof v) > 0);
  assert_string_equal(v, "PUT");
  bw_http_resp_free(r);
  env_down(&e);
  /* a named variable that is not set is refused at validation */
  unsetenv("BWT_HTTP_TOKEN");
  assert_int_equal(bw_http_opts_validate(&o), BW_EINVAL);
}

static void test_statuses(void **st) {
  (void)st;
  env_t e = env_up(NULL);
  struct {
    const char *path;
    int status;
    long code;
    uint64_t ra;
  } cases[] = {
      {"/status/404", 0, 404, 0},
      {"/status/500", BW_EHTTP_SERVER, 500, 0},
      {"/status/503", BW_EHTTP_SERVER, 503, 0},
      {"/status/503?ra", BW_EHTTP_SERVER, 503, 1000},
      {"/status/429?ra", BW_EHTTP_THROTTLED, 429, 1000},
      {"/status/429", BW_EHTTP_THROTTLED, 429, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bw_http_resp_t *r = NULL;
    assert_int_equal(get(&e, cases[i].path, 5000, &r), cases[i].status);
    assert_non_null(r); /* the response comes with these statuses */
    assert_int_equal(r->code, cases[i].code);
    assert_int_equal(r->retry_after_ms, cases[i].ra);
    bw_http_resp_free(r);
  }
  assert_true(bw_http_is_failure(BW_EHTTP_SERVER));
  assert_true(bw_http_is_failure(BW_ETIMEDOUT));
  assert_true(bw_http_is_failure(BW_ECONNREFUSED));
  assert_false(bw_http_is_failure(BW_EHTTP_THROTTLED));
  assert_false(bw_http_is_failure(0));
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.responses_4xx, 3);
  assert_int_equal(s.responses_5xx, 3);
  assert_int_equal(bw_http_classify(BW_EHTTP_SERVER, NULL), BW_BREAKER_FAILURE);
  assert_int_equal(bw_http_classify(BW_EHTTP_THROTTLED, NULL), BW_BREAKER_IGNORED);
  assert_int_equal(bw_http_classify(0, NULL), BW_BREAKER_SUCCESS);
  assert_int_equal(s.throttled, 2);
  env_down(&e);
}

static void test_refused(void **st) {
  (void)st;
  /* a port nobody listens on: bind one, note it, close it */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  char u[64];
  snprintf(u, sizeof u, "http://127.0.0.1:%u/", ntohs(a.sin_port));
  env_t e = env_up(NULL);
  bw_http_resp_t *r = (bw_http_resp_t *)1;
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r),
                   BW_ECONNREFUSED);
  assert_null(r);
  /* bad requests never reach the network */
  assert_null(bw_http_req_new("get", u));
  assert_null(bw_http_req_new("GET", "http://x/\r\nInjected"));
  assert_int_equal(bw_http_call(e.rt, e.pid, NULL, 0, &r), BW_EINVAL);
  assert_null(bw_http_req_new("GET", "gopher://127.0.0.1/"));
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", "http://[::1"), 5000, &r),
                   BW_EINVAL);
  env_down(&e);
}

/* The deadline stops the transfer: the server sees its connection close. */
static void test_timeout_closes_connection(void **st) {
  (void)st;
  env_t e = env_up(NULL);
  unsigned closed = atomic_load(&g_srv.hang_closed);
  bw_http_resp_t *r = (bw_http_resp_t *)1;
  assert_int_equal(get(&e, "/hang", 300, &r), BW_ETIMEDOUT);
  assert_null(r);
  assert_true(hfx_wait_at_least(&g_srv.hang_closed, closed + 1));
  /* a body that trickles in is cut the same way */
  assert_int_equal(get(&e, "/slow", 300, &r), BW_ETIMEDOUT);
  assert_true(hfx_wait_at_least(&g_srv.hang_closed, closed + 2));
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.timeouts, 2);
  assert_int_equal(s.in_flight, 0);
  /* the client still works */
  assert_int_equal(get(&e, "/ok", 5000, &r), 0);
  bw_http_resp_free(r);
  env_down(&e);
}

static void test_broken_servers(void **st) {
  (void)st;
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.max_body = 1000;
  env_t e = env_up(&o);
  struct {
    const char *path;
    int status;
  } cases[] = {
      {"/cut", BW_EPROTO},        {"/badheader", BW_EPROTO}, {"/hugeheader", BW_EPROTO},
      {"/badchunk", BW_EPROTO},   {"/big/5000", BW_ETOOBIG}, {"/big/900", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bw_http_resp_t *r = NULL;
    int rc = get(&e, cases[i].path, 5000, &r);
    if (rc != cases[i].status)
      fail_msg("%s: got %s, want %s", cases[i].path, bw_strerror(rc),
               bw_strerror(cases[i].status));
    if (rc == 0) {
      assert_int_equal(r->body_len, 900);
      bw_http_resp_free(r);
    } else {
      assert_null(r);
    }
  }
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.proto_errors, 4);
  assert_int_equal(s.too_big, 1);
  assert_int_equal(s.in_flight, 0);
  env_down(&e);
}

/* --- per-host statistics ------------------------------------------------------------ */

static void test_host_key(void **st) {
  (void)st;
  struct {
    const char *url, *key;
  } cases[] = {
      {"http://127.0.0.1:8080/x?y#z", "http://127.0.0.1:8080"},
      {"HTTPS://User:Pw@API.Example.COM/v1", "https://api.example.com:443"},
      {"http://example.com", "http://example.com:80"},
      {"http://h:/p", "http://h:80"},
      {"http://[::1]:0080/", "http://[::1]:80"},
      {"https://[::1]/", "https://[::1]:443"},
      {"http://a@b@host:1/", "http://host:1"}, /* the last @ ends the credentials */
      {"http://caf\xc3\xa9.example/", "http://caf%C3%A9.example:80"},
      {"http://a\"b\\c/", "http://a\"b\\c:80"}, /* escaped by the exposition, not here */
  };
  char k[BW_HTTP_HOST_KEY_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_true(bw__http_host_key(cases[i].url, k, sizeof k));
    assert_string_equal(k, cases[i].key);
  }
  /* a key that does not fit says so (its host counts in "other") */
  char u[300];
  snprintf(u, sizeof u, "http://127.0.0.1:%0200d/", 7);
  assert_false(bw__http_host_key(u, k, sizeof k));
  assert_int_equal(strlen(k), sizeof k - 1);
}

static const bw_http_host_stats_t *host_row(const bw_http_host_stats_t *hs, size_t n,
                                            const char *host) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(hs[i].host, host) == 0)
      return &hs[i];
  return NULL;
}

static uint64_t bucket_sum(const bw_http_host_stats_t *r) {
  uint64_t n = 0;
  for (unsigned b = 0; b < BW_HTTP_LATENCY_BUCKETS; b++)
    n += r->latency[b];
  return n;
}

/* Two servers on two ports are two hosts: each counts its own requests,
 * responses and bytes, and its histogram holds exactly its responses. */
static void test_per_host_counts(void **st) {
  (void)st;
  env_t e = env_up(NULL); /* first: it skips without libcurl */
  static hfx_t b;
  hfx_start(&b);
  char ub[128];
  bw_http_resp_t *r = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(get(&e, "/ok", 5000, &r), 0);
    bw_http_resp_free(r);
  }
  const char *bpaths[] = {"/status/404", "/status/404", "/status/503", "/echo"};
  int bwant[] = {0, 0, BW_EHTTP_SERVER, 0};
  for (int i = 0; i < 4; i++) {
    snprintf(ub, sizeof ub, "http://127.0.0.1:%u%s", b.port, bpaths[i]);
    bw_http_req_t *q = bw_http_req_new(i == 3 ? "POST" : "GET", ub);
    if (i == 3)
      assert_int_equal(bw_http_req_body(q, "0123456789", 10), 0);
    assert_int_equal(bw_http_call(e.rt, e.pid, q, 5000, &r), bwant[i]);
    bw_http_resp_free(r);
  }
  static bw_http_host_stats_t hs[BW_HTTP_HOSTS_MAX + 1];
  size_t n = 0;
  assert_int_equal(bw_http_host_stats(e.h, hs, BW_HTTP_HOSTS_MAX + 1, &n), 0);
  assert_int_equal(n, 2);
  char ka[64], kb[64];
  snprintf(ka, sizeof ka, "http://127.0.0.1:%u", g_srv.port);
  snprintf(kb, sizeof kb, "http://127.0.0.1:%u", b.port);
  assert_string_equal(hs[0].host, ka); /* in the order they came */
  assert_string_equal(hs[1].host, kb);
  const bw_http_host_stats_t *a = &hs[0], *bb = &hs[1];
  assert_int_equal(a->stats.requests, 3);
  assert_int_equal(a->stats.responses_2xx, 3);
  assert_int_equal(a->stats.responses_4xx + a->stats.responses_5xx, 0);
  assert_int_equal(a->stats.bytes_received, 15); /* "hello" three times */
  assert_int_equal(a->stats.bytes_sent, 0);
  assert_int_equal(a->stats.in_flight, 0); /* counted before the reply */
  assert_int_equal(bb->stats.requests, 4);
  assert_int_equal(bb->stats.responses_2xx, 1);
  assert_int_equal(bb->stats.responses_4xx, 2);
  assert_int_equal(bb->stats.responses_5xx, 1);
  assert_int_equal(bb->stats.bytes_sent, 10);
  assert_int_equal(bb->stats.in_flight, 0);
  /* the histogram: one record per response, its count the buckets' sum */
  assert_int_equal(a->latency_count, 3);
  assert_int_equal(bucket_sum(a), 3);
  assert_int_equal(bb->latency_count, 4);
  assert_int_equal(bucket_sum(bb), 4);
  assert_true(a->latency_max_ns <= a->latency_sum_ns);
  /* the process-wide counters are the rows' sums */
  bw_http_stats_t s;
  assert_int_equal(bw_http_stats(e.h, &s), 0);
  assert_int_equal(s.requests, 7);
  assert_int_equal(s.responses_2xx, 4);
  assert_int_equal(s.bytes_received, a->stats.bytes_received + bb->stats.bytes_received);
  /* a short array: the first rows, and how many there are */
  assert_int_equal(bw_http_host_stats(e.h, hs, 1, &n), BW_ETOOBIG);
  assert_int_equal(n, 2);
  assert_string_equal(hs[0].host, ka);
  assert_int_equal(bw_http_host_stats(e.h, NULL, 0, &n), BW_ETOOBIG);
  assert_int_equal(n, 2);
  assert_int_equal(bw_http_host_stats(NULL, hs, 1, &n), BW_EINVAL);
  assert_int_equal(bw_http_host_stats(e.h, NULL, 1, &n), BW_EINVAL);
  assert_int_equal(bw_http_host_stats(e.h, hs, 1, NULL), BW_EINVAL);
  assert_string_equal(bw_http_name(e.h), "http");
  assert_null(bw_http_name(NULL));
  env_down(&e);
  hfx_stop(&b);
}

/* 70 distinct hosts and a key too long to keep: 64 rows, then "other". */
static void test_host_table_bound(void **st) {
  (void)st;
  /* a port nobody listens on: bind one, note it, close it (refused at once) */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  unsigned port = ntohs(a.sin_port);
  env_t e = env_up(NULL);
  char u[300];
  bw_http_resp_t *r;
  enum { HOSTS_SENT = 70 };
  for (unsigned i = 0; i < HOSTS_SENT; i++) {
    /* 127.0.0.2 .. 127.0.0.71: loopback addresses, nobody there */
    snprintf(u, sizeof u, "http://127.0.0.%u:%u/", i + 2, port);
    int rc = bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r);
    if (rc != BW_ECONNREFUSED)
      fail_msg("%s: %s", u, bw_strerror(rc));
  }
  /* a port too long for a key (curl refuses the URL: nothing is sent) */
  char junk[201];
  memset(junk, 'x', 200);
  junk[200] = '\0';
  snprintf(u, sizeof u, "http://127.0.0.2:%s/", junk);
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r), BW_EINVAL);
  static bw_http_host_stats_t hs[BW_HTTP_HOSTS_MAX + 2];
  size_t n = 0;
  assert_int_equal(bw_http_host_stats(e.h, hs, BW_HTTP_HOSTS_MAX + 2, &n), 0);
  assert_int_equal(n, BW_HTTP_HOSTS_MAX + 1);
  uint64_t sum = 0;
  for (unsigned i = 0; i < BW_HTTP_HOSTS_MAX; i++) {
    char k[64];
    snprintf(k, sizeof k, "http://127.0.0.%u:%u", i + 2, port);
    assert_string_equal(hs[i].host, k);
    assert_int_equal(hs[i].stats.requests, 1);
    assert_int_equal(hs[i].stats.conn_errors, 1);
    assert_int_equal(hs[i].latency_count, 0); /* no response: not in the histogram */
    sum += hs[i].stats.requests;
  }
  const bw_http_host_stats_t *other = &hs[BW_HTTP_HOSTS_MAX];
  assert_string_equal(other->host, BW_HTTP_HOST_OTHER);
  assert_int_equal(other->stats.requests, HOSTS_SENT - BW_HTTP_HOSTS_MAX + 1);
  assert_int_equal(other->stats.conn_errors, HOSTS_SENT - BW_HTTP_HOSTS_MAX);
  assert_int_equal(other->stats.in_flight, 0);
  sum += other->stats.requests;
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.requests, sum);
  /* a known host keeps its row once the table is full */
  snprintf(u, sizeof u, "http://127.0.0.2:%u/", port);
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r),
                   BW_ECONNREFUSED);
  assert_int_equal(bw_http_host_stats(e.h, hs, BW_HTTP_HOSTS_MAX + 2, &n), 0);
  assert_int_equal(hs[0].stats.requests, 2);
  snprintf(u, sizeof u, "http://127.0.0.71:%u", port); /* the 70th host: in "other" */
  assert_null(host_row(hs, n, u));
  env_down(&e);
}

typedef struct call_arg {
  env_t *e;
  const char *path;
  int rc;
  bw_http_resp_t *r;
} call_arg_t;

static void *call_main(void *p) {
  call_arg_t *c = p;
  c->rc = get(c->e, c->path, 60000, &c->r);
  return NULL;
}

/* The latency is on the runtime's clock: with a manual clock it is exactly
 * the time the test moved while the server held the answer. */
static void test_latency_manual_clock(void **st) {
  (void)st;
  env_t e = env_up_clock(NULL, true);
  atomic_store(&g_srv.gate_open, false);
  unsigned waiting = atomic_load(&g_srv.gate_waiting);
  call_arg_t c = {.e = &e, .path = "/gate"};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, call_main, &c), 0);
  assert_true(hfx_wait_at_least(&g_srv.gate_waiting, waiting + 1));
  assert_int_equal(bw_clock_advance(e.rt, 250), 0);
  atomic_store(&g_srv.gate_open, true);
  pthread_join(th, NULL);
  assert_int_equal(c.rc, 0);
  assert_non_null(c.r);
  assert_string_equal(c.r->body, "gated");
  bw_http_resp_free(c.r);
  bw_http_host_stats_t hs[2];
  size_t n = 0;
  assert_int_equal(bw_http_host_stats(e.h, hs, 2, &n), 0);
  assert_int_equal(n, 1);
  const uint64_t ns = 250000000ull;
  assert_int_equal(hs[0].latency_count, 1);
  assert_int_equal(hs[0].latency_sum_ns, ns);
  assert_int_equal(hs[0].latency_max_ns, ns);
  /* the metrics reporter's layout: the same bucket as its histograms */
  assert_int_equal(hs[0].latency[bw_histogram_bucket_of(ns)], 1);
  env_down(&e);
}

/* --- server-sent events and streaming ------------------------------------------- */

static void test_sse_parser(void **st) {
  (void)st;
  bw_sse_t p;
  bw_sse_init(&p, 64);
  const char *in = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: two\ndata: lines\n\n"
                   "id: 3\n\ndata:[DONE]\r\n\r\n";
  /* fed one byte at a time: events come out whole, whatever the cuts */
  char out[64];
  const char *want[] = {"{\"a\":1}", "two\nlines", "[DONE]"};
  size_t got = 0;
  for (const char *c = in; *c; c++) {
    assert_int_equal(bw_sse_feed(&p, c, 1), 0);
    int n;
    while ((n = bw_sse_next(&p, out, sizeof out)) > 0) {
      assert_true(got < 3);
      assert_string_equal(out, want[got]);
      assert_int_equal(n, (int)strlen(want[got]));
      got++;
    }
    assert_true(n == 0);
  }
  assert_int_equal(got, 3);
  /* an event over max is refused, and parsing goes on after it */
  char big[100];
  memset(big, 'x', sizeof big);
  assert_int_equal(bw_sse_feed(&p, big, sizeof big), BW_ETOOBIG);
  assert_int_equal(bw_sse_feed(&p, "data: ok\n\n", 10), 0);
  assert_int_equal(bw_sse_next(&p, out, sizeof out), 2);
  assert_string_equal(out, "ok");
  /* a small out buffer cuts, and says the full length */
  assert_int_equal(bw_sse_feed(&p, "data: abcdef\n\n", 14), 0);
  assert_int_equal(bw_sse_next(&p, out, 4), 6);
  assert_string_equal(out, "abc");
  assert_int_equal(bw_sse_next(NULL, out, 4), BW_EINVAL);
  bw_sse_free(&p);
}

/* A consumer of a streamed body: acks at once, or holds its acks while
 * stalled (until a GO message). */
enum { GO = 7 };
typedef struct sink_arg {
  bw_pid_t client;
  const char *url;
  const char *body; /* POST it (a chat request), else GET */
  uint32_t credit;
  atomic_bool stalled;
  atomic_uint chunks, max_unacked, done, events, done_events;
  atomic_int status;
  atomic_ulong bytes;
  atomic_ulong resp_chunks;
} sink_arg_t;

typedef struct sink {
  sink_arg_t *a;
  uint64_t held[BW_HTTP_CREDIT_MAX];
  uint32_t nheld;
  bw_sse_t sse;
} sink_t;

static int sink_init(bw_ctx_t *ctx, void *state, void *arg) {
  sink_t *s = state;
  s->a = arg;
  bw_sse_init(&s->sse, 1 << 16);
  bw_http_req_t *q = bw_http_req_new(s->a->body ? "POST" : "GET", s->a->url);
  if (q == NULL || bw_http_req_stream(q, s->a->credit) != 0)
    return BW_ENOMEM;
  if (s->a->body != NULL) {
    bw_http_req_header(q, "Content-Type: application/json");
    bw_http_req_body(q, s->a->body, strlen(s->a->body));
  }
  return bw_http_request(ctx, s->a->client, q, 60000, NULL);
}

static void sink_ack(bw_ctx_t *ctx, sink_t *s, uint64_t token) {
  bw_http_chunk_t c = {.token = token};
  bw_http_ack(ctx, s->a->client, &c);
}

static int sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  sink_t *s = state;
  if (msg->type == GO) {
    atomic_store(&s->a->stalled, false);
    for (uint32_t i = 0; i < s->nheld; i++)
      sink_ack(ctx, s, s->held[i]);
    s->nheld = 0;
  } else if (msg->type == BW_HTTP_MSG_CHUNK) {
    const bw_http_chunk_t *c = msg->data;
    atomic_fetch_add(&s->a->chunks, 1);
    atomic_fetch_add(&s->a->bytes, c->len);
    if (bw_sse_feed(&s->sse, c->data, c->len) == 0) {
      char ev[4096];
      while (bw_sse_next(&s->sse, ev, sizeof ev) > 0) {
        atomic_fetch_add(&s->a->events, 1);
        if (strcmp(ev, "[DONE]") == 0)
          atomic_fetch_add(&s->a->done_events, 1);
      }
    }
    if (atomic_load(&s->a->stalled)) {
      if (s->nheld < BW_HTTP_CREDIT_MAX)
        s->held[s->nheld++] = c->token;
      if (s->nheld > atomic_load(&s->a->max_unacked))
        atomic_store(&s->a->max_unacked, s->nheld);
    } else {
      sink_ack(ctx, s, c->token);
    }
  } else if (msg->type == BW_HTTP_MSG_RESPONSE) {
    bw_http_resp_t *r = bw_msg_take(ctx, msg);
    atomic_store(&s->a->status, msg->status);
    if (r != NULL)
      atomic_store(&s->a->resp_chunks, r->chunks);
    bw_http_resp_free(r);
    atomic_store(&s->a->done, 1);
    bw_sse_free(&s->sse);
    return BW_STOP;
  }
  return BW_CONTINUE;
}

static void sink_cleanup(void *state) {
  bw_sse_free(&((sink_t *)state)->sse);
}

static const bw_behaviour_t sink_b = {.name = "sink",
                                      .state_size = sizeof(sink_t),
                                      .init = sink_init,
                                      .handle = sink_handle,
                                      .cleanup = sink_cleanup};

static bool wait_flag(atomic_uint *v) {
  for (int i = 0; i < 3000 && atomic_load(v) == 0; i++)
    usleep(10000);
  return atomic_load(v) != 0;
}

/* A stalled consumer holds the stream at its credit: the client stops
 * reading, the server's writes stop at what the sockets buffer; once the
 * consumer acks, the rest arrives, all of it, in order. */
static void test_stream_slow_consumer(void **st) {
  (void)st;
  env_t e = env_up(NULL);
  enum { KIB = 16384 }; /* 16 MiB: more than loopback's socket buffers hold */
  static sink_arg_t a;
  memset(&a, 0, sizeof a);
  a.client = e.pid;
  a.url = url("/stream/16384");
  a.credit = 4;
  atomic_store(&a.stalled, true);
  atomic_store(&g_srv.stream_sent, 0);
  bw_pid_t sink;
  assert_int_equal(bw_spawn(e.rt, &sink_b, &a, NULL, &sink), 0);
  /* the consumer gets exactly its credit, then nothing while it stalls */
  for (int i = 0; i < 3000 && atomic_load(&a.chunks) < 4; i++)
    usleep(10000);
  usleep(300000);
  assert_int_equal(atomic_load(&a.chunks), 4);
  unsigned long sent = atomic_load(&g_srv.stream_sent);
  print_message("stalled: 4 chunks held, server wrote %lu KiB of %d\n", sent / 1024, KIB);
  assert_true(sent < (unsigned long)KIB * 1024 / 2); /* held back by TCP, not buffered */
  assert_int_equal(bw_send(e.rt, sink, GO, NULL, 0), 0);
  assert_true(wait_flag(&a.done));
  assert_int_equal(atomic_load(&a.status), 0);
  assert_int_equal(atomic_load(&a.bytes), (unsigned long)KIB * 1024);
  assert_int_equal(atomic_load(&a.max_unacked), 4);
  assert_int_equal(atomic_load(&a.resp_chunks), atomic_load(&a.chunks));
  env_down(&e);
}

/* --- the policy around HTTP ------------------------------------------------------ */

static bw_policy_t *http_policy(bw_runtime_t *rt, uint32_t attempts) {
  bw_policy_opts_t po;
  assert_int_equal(bw_http_policy_preset("api", &po), 0);
  po.max_attempts = attempts;
  po.backoff.initial_ms = 10;
  po.backoff.max_ms = 20;
  po.budget = false;
  po.breaker_opts.failure_threshold = 3;
  po.breaker_opts.open_ms = 300;
  po.breaker_opts.half_open_permits = 1;
  po.breaker_opts.success_threshold = 1;
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, &po, &p), 0);
  return p;
}

static env_t env_policy(bw_policy_t **p, uint32_t attempts) {
  env_t e = {0};
  e.rt = bwt_runtime(2, false);
  *p = http_policy(e.rt, attempts);
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.policy = *p;
  int rc = bw_http_new(e.rt, &o, &e.h);
  if (rc == BW_ENOTSUP) {
    bw_policy_destroy(*p);
    bw_runtime_destroy(e.rt);
    skip();
  }
  assert_int_equal(rc, 0);
  assert_int_equal(bw_http_start(e.h, &e.pid), 0);
  return e;
}

/* The client first (it uses the policy), then the policy (its breaker
 * actor), then the runtime. */
static void env_down_policy(env_t *e, bw_policy_t *p) {
  assert_int_equal(bw_http_destroy(e->h), 0);
  assert_int_equal(bw_policy_destroy(p), 0);
  bw_runtime_destroy(e->rt);
}

static bool wait_state(bw_breaker_t *br, int want) {
  for (int i = 0; i < 1000; i++) {
    if ((int)bw_breaker_state(br) == want)
      return true;
    usleep(5000);
  }
  return false;
}

/* An outage opens the breaker (then calls fail fast, without reaching the
 * server); once the server is back a probe closes it. */
static void test_policy_breaker_outage(void **st) {
  (void)st;
  bw_policy_t *p;
  env_t e = env_policy(&p, 1);
  bw_breaker_t *br = bw_policy_breaker(p);
  assert_non_null(br);
  atomic_store(&g_srv.outage, true);
  for (int i = 0; i < 3; i++) {
    bw_http_resp_t *r = NULL;
    assert_int_equal(get(&e, "/flaky", 5000, &r), BW_EHTTP_SERVER);
    assert_non_null(r);
    assert_int_equal(r->code, 503);
    bw_http_resp_free(r);
  }
  assert_true(wait_state(br, BW_BREAKER_OPEN));
  unsigned hits = atomic_load(&g_srv.flaky_hits);
  bw_http_resp_t *r = (bw_http_resp_t *)1;
  assert_int_equal(get(&e, "/flaky", 5000, &r), BW_ECIRCUIT_OPEN);
  assert_null(r);
  assert_int_equal(atomic_load(&g_srv.flaky_hits), hits); /* failed fast */
  atomic_store(&g_srv.outage, false);
  assert_true(wait_state(br, BW_BREAKER_HALF_OPEN));
  assert_int_equal(get(&e, "/flaky", 5000, &r), 0);
  assert_string_equal(r->body, "fine");
  bw_http_resp_free(r);
  assert_true(wait_state(br, BW_BREAKER_CLOSED));
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.refused, 1);
  env_down_policy(&e, p);
}

/* 429 with Retry-After: the retry waits at least that long; a POST is not
 * retried unless marked idempotent. */
static void test_policy_retry_after(void **st) {
  (void)st;
  bw_policy_t *p;
  env_t e = env_policy(&p, 2);
  unsigned hits = atomic_load(&g_srv.status_hits);
  uint64_t t0 = bw_now_ns(e.rt);
  bw_http_resp_t *r = NULL;
  assert_int_equal(get(&e, "/status/429?ra", 10000, &r), BW_EHTTP_THROTTLED);
  uint64_t took_ms = (bw_now_ns(e.rt) - t0) / 1000000u;
  assert_non_null(r);
  assert_int_equal(r->code, 429);
  bw_http_resp_free(r);
  assert_int_equal(atomic_load(&g_srv.status_hits) - hits, 2);
  assert_true(took_ms >= 1000); /* the server's Retry-After, not the 10 ms backoff */
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.retries, 1);
  /* a POST goes once (the host's hold from above has passed: 1 s) */
  hits = atomic_load(&g_srv.status_hits);
  bw_http_req_t *q = bw_http_req_new("POST", url("/status/500"));
  assert_int_equal(bw_http_call(e.rt, e.pid, q, 10000, &r), BW_EHTTP_SERVER);
  bw_http_resp_free(r);
  assert_int_equal(atomic_load(&g_srv.status_hits) - hits, 1);
  /* marked idempotent, it is retried */
  q = bw_http_req_new("POST", url("/status/500"));
  bw_http_req_idempotent(q, 1);
  assert_int_equal(bw_http_call(e.rt, e.pid, q, 10000, &r), BW_EHTTP_SERVER);
  bw_http_resp_free(r);
  assert_int_equal(atomic_load(&g_srv.status_hits) - hits, 3);
  env_down_policy(&e, p);
}

/* --- a name that does not resolve, with no DNS server asked ------------------------ */

/* The name: a 64-byte label (DNS allows 63) under .invalid (RFC 2606).
 * glibc's getaddrinfo cannot encode it as a query and fails at once
 * (EAI_NONAME) without opening a socket to port 53; curl reports
 * CURLE_COULDNT_RESOLVE_HOST, not a malformed URL. So the failure path
 * runs for real while nothing leaves the machine (patterns/HTTP.md says
 * how that was checked). Through a policy that would retry 3 times: the
 * breaker counts a failure, and no retry is made. */
static void test_dns_failure(void **st) {
  (void)st;
  char label[65], u[128], key[128];
  memset(label, 'a', 64);
  label[64] = '\0';
  snprintf(u, sizeof u, "http://%s.invalid/v1", label);
  snprintf(key, sizeof key, "http://%s.invalid:80", label);
  bw_policy_t *p;
  env_t e = env_policy(&p, 3);
  bw_breaker_t *br = bw_policy_breaker(p);
  bw_breaker_stats_t before, after;
  assert_int_equal(bw_breaker_stats(br, &before), 0);
  bw_http_resp_t *r = (bw_http_resp_t *)1;
  int rc = bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r);
  if (rc != BW_EDNS)
    fail_msg("%s: got %s (%s), want BW_EDNS", u, bw_err_name(rc), bw_strerror(rc));
  assert_null(r);
  assert_non_null(strstr(bw_strerror(rc), "resolved")); /* the reason the caller can show */
  /* the documented class: a failure for the breaker, not retried */
  assert_int_equal(bw_http_classify(BW_EDNS, NULL), BW_BREAKER_FAILURE);
  assert_false(bw_http_retryable(BW_EDNS, NULL));
  assert_int_equal(bw_breaker_flush(br, 5000), 0);
  assert_int_equal(bw_breaker_stats(br, &after), 0);
  assert_int_equal(after.failed - before.failed, 1);
  bw_http_stats_t s;
  assert_int_equal(bw_http_stats(e.h, &s), 0);
  assert_int_equal(s.dns_errors, 1);
  assert_int_equal(s.retries, 0);
  assert_int_equal(s.in_flight, 0);
  bw_http_host_stats_t hs[2];
  size_t n = 0;
  assert_int_equal(bw_http_host_stats(e.h, hs, 2, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hs[0].host, key);
  assert_int_equal(hs[0].stats.dns_errors, 1);
  assert_int_equal(hs[0].stats.requests, 1);
  assert_int_equal(hs[0].stats.in_flight, 0);
  assert_int_equal(hs[0].latency_count, 0); /* no response: not a latency */
  env_down_policy(&e, p);
}

/* --- an actor as the requester ------------------------------------------------ */

typedef struct agent_arg {
  bw_pid_t client;
  const char *url;
  unsigned n;
  uint64_t timeout_ms;
  atomic_uint *ok, *bad, *sent;
  const char *body; /* POST it when set, else GET */
} agent_arg_t;

typedef struct agent {
  agent_arg_t *a;
} agent_t;

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  agent_t *s = state;
  s->a = arg;
  for (unsigned i = 0; i < s->a->n; i++) {
    bw_http_req_t *q = bw_http_req_new(s->a->body ? "POST" : "GET", s->a->url);
    if (q == NULL)
      return BW_ENOMEM;
    if (s->a->body != NULL &&
        (bw_http_req_header(q, "Content-Type: application/json") != 0 ||
         bw_http_req_body(q, s->a->body, strlen(s->a->body)) != 0)) {
      bw_http_req_free(q);
      return BW_ENOMEM;
    }
    int rc = bw_http_request(ctx, s->a->client, q, s->a->timeout_ms, NULL);
    if (rc != 0)
      return rc;
    atomic_fetch_add(s->a->sent, 1);
  }
  return 0;
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  agent_t *s = state;
  if (msg->type == 1)
    return BW_STOP;
  if (msg->type != BW_HTTP_MSG_RESPONSE)
    return BW_CONTINUE;
  bw_http_resp_t *r = bw_msg_take(ctx, msg);
  if (msg->status == 0 && r != NULL && r->code == 200)
    atomic_fetch_add(s->a->ok, 1);
  else
    atomic_fetch_add(s->a->bad, 1);
  bw_http_resp_free(r);
  return BW_CONTINUE;
}

static const bw_behaviour_t agent_b = {
    .name = "agent", .state_size = sizeof(agent_t), .init = agent_init, .handle = agent_handle};

/* A requester that exits mid-request gives its policy slot back: with one
 * concurrent call allowed, the next request still goes (found by the demo). */
static void test_policy_cancel_releases_slot(void **st) {
  (void)st;
  bw_runtime_t *rt = bwt_runtime(2, false);
  bw_policy_opts_t po;
  assert_int_equal(bw_http_policy_preset("api", &po), 0);
  po.max_concurrent = 1;
  po.max_attempts = 1;
  bw_policy_t *p = NULL;
  assert_int_equal(bw_policy_new(rt, &po, &p), 0);
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.policy = p;
  env_t e = {.rt = rt};
  int rc = bw_http_new(rt, &o, &e.h);
  if (rc == BW_ENOTSUP) {
    bw_policy_destroy(p);
    bw_runtime_destroy(rt);
    skip();
  }
  assert_int_equal(bw_http_start(e.h, &e.pid), 0);
  atomic_uint ok = 0, bad = 0, sent = 0;
  unsigned acc = atomic_load(&g_srv.accepted);
  agent_arg_t a = {e.pid, url("/hang"), 1, 60000, &ok, &bad, &sent, NULL};
  bw_pid_t ag;
  assert_int_equal(bw_spawn(rt, &agent_b, &a, NULL, &ag), 0);
  assert_true(hfx_wait_at_least(&g_srv.accepted, acc + 1));
  assert_int_equal(bw_exit(rt, ag, BW_REASON_KILL, 0, NULL), 0);
  bw_policy_stats_t pm;
  for (int i = 0; i < 500; i++) {
    bw_policy_stats(p, &pm);
    if (pm.in_flight == 0)
      break;
    usleep(10000);
  }
  assert_int_equal(pm.in_flight, 0);
  bw_http_resp_t *r = NULL;
  assert_int_equal(get(&e, "/ok", 5000, &r), 0); /* not BW_EBULKHEAD_FULL */
  bw_http_resp_free(r);
  /* a deadline gives it back too */
  assert_int_equal(get(&e, "/hang", 200, &r), BW_ETIMEDOUT);
  assert_int_equal(get(&e, "/ok", 5000, &r), 0);
  bw_http_resp_free(r);
  env_down_policy(&e, p);
}

/* A requester that exits takes its transfers with it. */
static void test_caller_exit_cancels(void **st) {
  (void)st;
  env_t e = env_up(NULL);
  atomic_uint ok = 0, bad = 0, sent = 0;
  unsigned acc = atomic_load(&g_srv.accepted), closed = atomic_load(&g_srv.hang_closed);
  agent_arg_t a = {e.pid, url("/hang"), 2, 60000, &ok, &bad, &sent, NULL};
  bw_pid_t ag;
  assert_int_equal(bw_spawn(e.rt, &agent_b, &a, NULL, &ag), 0);
  assert_true(hfx_wait_at_least(&g_srv.accepted, acc + 2));
  assert_int_equal(bw_send(e.rt, ag, 1, NULL, 0), 0); /* stop */
  assert_true(hfx_wait_at_least(&g_srv.hang_closed, closed + 2));
  bw_http_stats_t s;
  for (int i = 0; i < 500; i++) {
    bw_http_stats(e.h, &s);
    if (s.in_flight == 0)
      break;
    usleep(10000);
  }
  assert_int_equal(s.cancels, 2);
  assert_int_equal(s.in_flight, 0);
  assert_int_equal(atomic_load(&ok) + atomic_load(&bad), 0); /* nothing arrived later */
  env_down(&e);
}

/* --- 1,000 concurrent requests from 100 actors, no thread per request ------------ */

static unsigned thread_count(void) {
  unsigned n = 0;
  FILE *f = fopen("/proc/self/status", "r");
  char line[128];
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Threads: %u", &n) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return n;
}

static pid_t start_model_server_on(uint16_t *port, const char *want_port) {
#ifdef BW_MODEL_SERVER
  int p[2];
  if (pipe(p) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test that failed */
    dup2(p[1], 1);
    close(p[0]);
    execl(BW_MODEL_SERVER, "model_server", "--port", want_port, "--latency-ms", "200:200",
          "--tail", "0:0", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  FILE *f = fdopen(p[0], "r");
  char line[128] = {0};
  unsigned pt = 0;
  if (f == NULL || fgets(line, sizeof line, f) == NULL ||
      sscanf(line, "model_server listening on 127.0.0.1:%u", &pt) != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (f)
      fclose(f);
    return -1;
  }
  fclose(f);
  *port = (uint16_t)pt;
  return pid;
#else
  (void)port;
  (void)want_port;
  return -1;
#endif
}

static pid_t start_model_server(uint16_t *port) {
  return start_model_server_on(port, "0");
}

/* The server killed mid-run: requests get a clear status, none hangs, and
 * the client works again once the server is back on the same port. */
static void test_server_killed_and_restarted(void **st) {
  (void)st;
  uint16_t port = 0;
  pid_t srv = start_model_server(&port);
  if (srv < 0)
    skip();
  env_t e = env_up(NULL);
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%u/healthz", port);
  bw_http_resp_t *r = NULL;
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r), 0);
  bw_http_resp_free(r);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
  for (int i = 0; i < 3; i++) {
    r = (bw_http_resp_t *)1;
    int rc = bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r);
    if (rc != BW_ECONNREFUSED && rc != BW_ECONNRESET)
      fail_msg("server down: got %s", bw_strerror(rc));
    assert_null(r);
  }
  char p[8];
  snprintf(p, sizeof p, "%u", port);
  uint16_t again = 0;
  srv = start_model_server_on(&again, p);
  assert_true(srv > 0);
  assert_int_equal(again, port);
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 5000, &r), 0);
  assert_string_equal(r->body, "ok");
  bw_http_resp_free(r);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.conn_errors, 3);
  assert_int_equal(s.in_flight, 0);
  env_down(&e);
}

/* --- TLS: a certificate that does not verify, and one that does with its CA ------- */

static bool run_quiet(const char *cmd) {
  return system(cmd) == 0;
}

static void test_tls_verification(void **st) {
  (void)st;
  if (!run_quiet("command -v openssl >/dev/null 2>&1"))
    skip(); /* the test command installs openssl */
  char dir[] = "/tmp/bwt_tlsXXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem -out %s/c.pem -days 1 "
           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
           dir, dir);
  assert_true(run_quiet(cmd));
  /* a free port: bind one, note it, close it */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  unsigned port = ntohs(a.sin_port);
  char acc[32], cert[300], key[300];
  snprintf(acc, sizeof acc, "127.0.0.1:%u", port);
  snprintf(cert, sizeof cert, "%s/c.pem", dir);
  snprintf(key, sizeof key, "%s/k.pem", dir);
  pid_t srv = fork();
  if (srv == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int dn = open("/dev/null", O_RDWR);
    dup2(dn, 0);
    dup2(dn, 1);
    dup2(dn, 2);
    execlp("openssl", "openssl", "s_server", "-accept", acc, "-cert", cert, "-key", key, "-www",
           "-quiet", (char *)NULL);
    _exit(127);
  }
  /* wait until it listens (bounded) */
  bool up = false;
  for (int i = 0; i < 500 && !up; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    up = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
    close(c);
    if (!up)
      usleep(10000);
  }
  assert_true(up);
  char u[64];
  snprintf(u, sizeof u, "https://127.0.0.1:%u/", port);
  /* the system's CAs do not know this certificate */
  env_t e = env_up(NULL);
  bw_http_resp_t *r = (bw_http_resp_t *)1;
  /* (a long deadline: a handshake under valgrind takes seconds) */
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 120000, &r), BW_ETLS);
  assert_null(r);
  bw_http_stats_t s;
  bw_http_stats(e.h, &s);
  assert_int_equal(s.tls_errors, 1);
  env_down(&e);
  /* with it as the CA it verifies */
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.ca_file = cert;
  e = env_up(&o);
  assert_int_equal(bw_http_call(e.rt, e.pid, bw_http_req_new("GET", u), 120000, &r), 0);
  assert_int_equal(r->code, 200);
  bw_http_resp_free(r);
  env_down(&e);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_quiet(cmd);
}

static void test_thousand_concurrent(void **st) {
  (void)st;
  uint16_t port = 0;
  pid_t srv = start_model_server(&port);
  if (srv < 0)
    skip(); /* built without the model server (libmicrohttpd or jansson missing) */
  bw_http_opts_t o;
  bw_http_opts_init(&o);
  o.max_in_flight = 1000;
  o.max_per_host = 1000;
  env_t e = env_up(&o);
  /* the request is a POST to the chat endpoint: the model server holds each
   * one 200 ms, so they overlap */
  static char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%u/v1/chat/completions", port);
  unsigned base = thread_count();
  atomic_uint ok = 0, bad = 0, sent = 0;
  enum { ACTORS = 100, EACH = 10 };
  agent_arg_t a = {e.pid, u, EACH, 60000, &ok, &bad, &sent,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"};
  for (int i = 0; i < ACTORS; i++) {
    bw_pid_t ag;
    assert_int_equal(bw_spawn(e.rt, &agent_b, &a, NULL, &ag), 0);
  }
  unsigned peak_threads = 0;
  uint64_t peak_in_flight = 0;
  for (int i = 0; i < 6000 && atomic_load(&ok) + atomic_load(&bad) < ACTORS * EACH; i++) {
    unsigned t = thread_count();
    if (t > peak_threads)
      peak_threads = t;
    bw_http_stats_t s;
    bw_http_stats(e.h, &s);
    if (s.in_flight > peak_in_flight)
      peak_in_flight = s.in_flight;
    usleep(10000);
  }
  kill(srv, SIGTERM);
  waitpid(srv, NULL, 0);
  print_message("1000 requests: ok %u, failed %u; threads %u before, %u at peak; peak in flight "
                "%lu\n",
                atomic_load(&ok), atomic_load(&bad), base, peak_threads,
                (unsigned long)peak_in_flight);
  assert_int_equal(atomic_load(&ok), ACTORS * EACH);
  assert_int_equal(atomic_load(&bad), 0);
  assert_true(peak_in_flight >= 100); /* they were in flight together */
  /* no thread per request (the workers poll; at most one thread more,
   * curl's resolver for a moment) */
  assert_true(peak_threads <= base + 1);
  env_down(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_keepalive),
      cmocka_unit_test(test_echo_token_from_env),
      cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_timeout_closes_connection),
      cmocka_unit_test(test_broken_servers),
      cmocka_unit_test(test_host_key),
      cmocka_unit_test(test_per_host_counts),
      cmocka_unit_test(test_host_table_bound),
      cmocka_unit_test(test_latency_manual_clock),
      cmocka_unit_test(test_caller_exit_cancels),
      cmocka_unit_test(test_sse_parser),
      cmocka_unit_test(test_stream_slow_consumer),
      cmocka_unit_test(test_policy_breaker_outage),
      cmocka_unit_test(test_policy_retry_after),
      cmocka_unit_test(test_policy_cancel_releases_slot),
      cmocka_unit_test(test_dns_failure),
      cmocka_unit_test(test_thousand_concurrent),
      cmocka_unit_test(test_server_killed_and_restarted),
      cmocka_unit_test(test_tls_verification),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
