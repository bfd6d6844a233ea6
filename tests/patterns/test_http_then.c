/*
 * A continuation around an HTTP client request (bulwark/reply.h with
 * bulwark/http.h): bw_http_request gives the request's ref, bw_then
 * attaches the continuation, which gets the client's status and takes the
 * response with bw_msg_take, instead of the handler matching the ref. A
 * 200, a 5xx (the response attached), the client's deadline (no response),
 * and bw_await around an HTTP request: messages that arrive while the
 * request is out are handled after the continuation. Against the fixture
 * server (http_fixture.h) on loopback, with the real clock.
 */
#include "support.h"

#include "bulwark/http.h"
#include "http_fixture.h"

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

enum { T_GET = 1, T_NOTE };

typedef struct get_cmd {
  bw_pid_t client;
  uint64_t timeout_ms;
  bool await;
  char path[32];
} get_cmd_t;

typedef struct ev {
  bool cont;         /* the continuation, or the handler (a note) */
  int status;
  long code;         /* -1: no response */
  char body[16];
  uint32_t note;
} ev_t;

static bwt_sync_t sync_ = BWT_SYNC_INIT;
static ev_t evs[16]; /* under sync_ */
static int nev;
static int closures_freed;

static void record(ev_t e) {
  bwt_lock(&sync_);
  if (nev < 16)
    evs[nev++] = e;
  bwt_unlock_signal(&sync_);
}

static void closure_free(void *p) {
  free(p);
  bwt_lock(&sync_);
  closures_freed++;
  bwt_unlock_signal(&sync_);
}

/* The whole of the answer's handling: no ref to match, no table. */
static int on_response(bw_ctx_t *ctx, void *state, const bw_msg_t *reply, int status,
                       void *closure) {
  (void)state;
  (void)closure;
  ev_t e = {.cont = true, .status = status, .code = -1};
  bw_http_resp_t *r = reply != NULL && reply->type == BW_HTTP_MSG_RESPONSE
                          ? bw_msg_take(ctx, reply)
                          : NULL; /* NULL when the exchange failed */
  if (r != NULL) {
    e.code = r->code;
    snprintf(e.body, sizeof e.body, "%.*s", (int)r->body_len, r->body);
  }
  bw_http_resp_free(r);
  record(e);
  return BW_CONTINUE;
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == T_NOTE) {
    ev_t e = {.cont = false};
    memcpy(&e.note, msg->data, sizeof e.note);
    record(e);
    return BW_CONTINUE;
  }
  const get_cmd_t *c = msg->data;
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", g_srv.port, c->path);
  uint64_t ref;
  int rc = bw_http_request(ctx, c->client, bw_http_req_new("GET", url), c->timeout_ms, &ref);
  if (rc == 0)
    rc = bw_then(ctx, ref, on_response, malloc(16), closure_free);
  if (rc == 0 && c->await)
    rc = bw_await(ctx, ref);
  bw_reply(ctx, msg, rc, T_GET, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t agent = {.name = "agent", .handle = agent_handle};

typedef struct env {
  bw_runtime_t *rt;
  bw_http_t *h;
  bw_pid_t client, agent;
} env_t;

static env_t env_up(void) {
  env_t e = {0};
  bwt_lock(&sync_);
  nev = 0;
  closures_freed = 0;
  bwt_unlock(&sync_);
  e.rt = bwt_runtime(2, false);
  int rc = bw_http_new(e.rt, NULL, &e.h);
  if (rc == BW_ENOTSUP) {
    bw_runtime_destroy(e.rt);
    skip(); /* built without libcurl */
  }
  assert_int_equal(rc, 0);
  assert_int_equal(bw_http_start(e.h, &e.client), 0);
  assert_int_equal(bw_spawn(e.rt, &agent, NULL, NULL, &e.agent), 0);
  return e;
}

static void env_down(env_t *e) {
  assert_int_equal(bw_http_destroy(e->h), 0);
  bw_runtime_destroy(e->rt);
}

static void get(env_t *e, const char *path, uint64_t timeout_ms, bool await) {
  get_cmd_t c = {.client = e->client, .timeout_ms = timeout_ms, .await = await};
  snprintf(c.path, sizeof c.path, "%s", path);
  bw_reply_t rep;
  assert_int_equal(bw_call(e->rt, e->agent, T_GET, &c, sizeof c, 0, &rep), 0);
  assert_int_equal(rep.status, 0);
}

static ev_t event_at(int i) {
  bwt_lock(&sync_);
  ev_t e = evs[i];
  bwt_unlock(&sync_);
  return e;
}

static void test_then_http(void **st) {
  (void)st;
  env_t e = env_up();
  get(&e, "/ok", 5000, false);
  BWT_AWAIT(&sync_, nev == 1 && closures_freed == 1);
  ev_t v = event_at(0);
  assert_true(v.cont);
  assert_int_equal(v.status, 0);
  assert_int_equal(v.code, 200);
  assert_string_equal(v.body, "hello");

  get(&e, "/status/503", 5000, false);
  BWT_AWAIT(&sync_, nev == 2 && closures_freed == 2);
  v = event_at(1);
  assert_int_equal(v.status, BW_EHTTP_SERVER);
  assert_int_equal(v.code, 503); /* attached */

  get(&e, "/hang", 200, false);
  BWT_AWAIT(&sync_, nev == 3 && closures_freed == 3);
  v = event_at(2);
  assert_int_equal(v.status, BW_ETIMEDOUT);
  assert_int_equal(v.code, -1);
  env_down(&e);
}

/* The await around an HTTP request: notes sent while the request is out
 * are handled after its continuation, in their order. */
static void test_await_http(void **st) {
  (void)st;
  env_t e = env_up();
  atomic_store(&g_srv.gate_open, false);
  unsigned waiting = atomic_load(&g_srv.gate_waiting);
  get(&e, "/gate", 5000, true);
  assert_true(hfx_wait_at_least(&g_srv.gate_waiting, waiting + 1));
  for (uint32_t i = 1; i <= 3; i++)
    assert_int_equal(bw_send(e.rt, e.agent, T_NOTE, &i, sizeof i), 0);
  atomic_store(&g_srv.gate_open, true);
  BWT_AWAIT(&sync_, nev == 4);
  ev_t v = event_at(0);
  assert_true(v.cont);
  assert_int_equal(v.status, 0);
  assert_string_equal(v.body, "gated");
  for (int i = 1; i <= 3; i++) {
    v = event_at(i);
    assert_false(v.cont);
    assert_int_equal(v.note, (uint32_t)i);
  }
  env_down(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_then_http),
      cmocka_unit_test(test_await_http),
  };
  bwt_apply_filter();
  return cmocka_run_group_tests(tests, setup, teardown);
}
