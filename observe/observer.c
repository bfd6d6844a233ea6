/*
 * bulwark: the HTTP observer (observer.h), on libmicrohttpd.
 *
 * libmicrohttpd runs its own threads: a small pool of polling threads
 * (MHD_OPTION_THREAD_POOL_SIZE) with a connection limit and an idle timeout,
 * so a slow or malformed client ties up at most a connection slot until
 * its timeout, and never a scheduler thread. Each GET renders its body
 * fresh: /metrics from the reporter's latest published snapshot (a copy,
 * no lock on the reporter), /health from the monitor's published snapshot,
 * /tree by walking the supervisors (bw_call from this thread, which is
 * allowed: it is not a scheduler thread). Bodies are malloc'ed per request
 * and handed to libmicrohttpd to free: a request is not a hot path.
 *
 * Rejected alternative: a thread per connection (MHD_USE_THREAD_PER_CONNECTION)
 * costs a thread per slow client; the pool's event loop does not.
 *
 * The answer to a request is decided by bw__observer_route (method and URL
 * in, status and body out; observer_internal.h), which knows nothing of
 * libmicrohttpd: the fuzz harness drives it directly, and it is built with
 * or without the library.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/bulwark.h"
#include "bulwark/health.h"
#include "bulwark/metrics.h"
#include "bulwark/observer.h"
#include "bulwark/tree.h"
#include "observe/observer_internal.h"
#include "runtime/internal.h"

void bw_observer_opts_init(bw_observer_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->bind_addr = "127.0.0.1";
}

struct MHD_Daemon;

struct bw_observer {
  bw_runtime_t *rt;
  bw_observer_opts_t opts;
  struct MHD_Daemon *daemon; /* NULL for bw__observer_new's server-less observer */
  uint16_t port;
  uint64_t n_ok, n_not_found, n_bad_method, n_errors; /* atomic */
};

/* The page: one file, no external assets. It polls /tree and /health every
 * refresh period and draws the tree as nested boxes, with breaker and pool
 * states as coloured badges. %u = the refresh period in ms. */
static const char page_fmt[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>bulwark observer</title>"
    "<style>"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}"
    "h1{font-size:1.3em}h1 small{color:#888;font-weight:normal}"
    ".node{border-left:3px solid #bbb;margin:.3em 0 .3em 1.2em;padding:.1em .6em}"
    ".sup{border-color:#4a78c2}.b{display:inline-block;border-radius:3px;padding:0 .4em;"
    "margin-left:.4em;font-size:.85em;color:#fff;background:#888}"
    ".ok,.closed,.running,.healthy{background:#2e8b57}.half_open,.degraded,.restarting{background:#d08a00}"
    ".open,.forced_open,.unhealthy,.stopped{background:#c0392b}.pid{color:#888;font-size:.85em}"
    "#err{color:#c0392b}table{border-collapse:collapse}td{padding:0 .8em 0 0}"
    "</style></head><body>"
    "<h1>bulwark <small id=\"when\"></small></h1>"
    "<div>health: <span id=\"health\" class=\"b\">?</span> <span id=\"reasons\"></span></div>"
    "<div id=\"err\"></div><h2>supervision tree</h2><div id=\"tree\">loading...</div>"
    "<script>"
    "const R=%u;"
    "function esc(s){return String(s).replace(/[&<>\"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','\"':'&quot;'}[c]));}"
    "function badge(t,c){return '<span class=\"b '+esc(c)+'\">'+esc(t)+'</span>';}"
    "function node(n){let h='<div class=\"node'+(n.type==='supervisor'?' sup':'')+'\">';"
    "h+='<b>'+esc(n.id||'(root)')+'</b> <span class=\"pid\">'+esc(n.pid||'-')+'</span>';"
    "h+=badge(n.state,n.state);if(n.restarts)h+=badge('restarts '+n.restarts,'');"
    "if(n.mailbox)h+=badge('mailbox '+n.mailbox,'');"
    "if(n.breaker)h+=badge('breaker '+n.breaker.name+': '+n.breaker.state,n.breaker.state);"
    "if(n.bulkhead&&!n.bulkhead.error)h+=badge('pool '+n.bulkhead.name+': '+n.bulkhead.busy+'/'+"
    "n.bulkhead.workers+' busy, '+n.bulkhead.queued+' queued, '+n.bulkhead.rejected+' rejected','');"
    "if(n.health)h+=badge('health: '+n.health.status,n.health.status);"
    "if(n.error)h+=badge(n.error,'stopped');"
    "(n.children||[]).forEach(c=>h+=node(c));return h+'</div>';}"
    "async function tick(){try{"
    "const t=await fetch('/tree');document.getElementById('tree').innerHTML="
    "t.ok?node(await t.json()):esc('/tree: '+t.status);"
    "const h=await fetch('/health');if(h.status!==404){const j=await h.json();"
    "const e=document.getElementById('health');e.textContent=j.status;e.className='b '+j.status;"
    "document.getElementById('reasons').innerHTML=(j.components||[]).filter(c=>c.status!=='healthy')"
    ".map(c=>esc(c.name+': '+c.reason)).join('; ');}"
    "document.getElementById('err').textContent='';"
    "document.getElementById('when').textContent=new Date().toLocaleTimeString();"
    "}catch(x){document.getElementById('err').textContent='observer unreachable: '+x;}"
    "setTimeout(tick,R);}"
    "tick();"
    "</script></body></html>";

/* --- routing: method and URL in, answer out ------------------------------------- */

static int answer(bw__http_resp_t *out, unsigned status, char *body, size_t len,
                  const char *type) {
  out->status = status;
  out->body = body;
  out->len = len;
  out->content_type = type;
  return 0;
}

/* A small JSON error body: {"error":"...","code":"BW_..."}. what is one of
 * this file's literals (no characters that need escaping). */
static int answer_error(bw__http_resp_t *out, unsigned status, const char *what, int code) {
  char *b = malloc(256);
  if (b == NULL)
    return BW_ENOMEM;
  int n = snprintf(b, 256, "{\"error\":\"%s\",\"code\":\"%s\"}\n", what,
                   code != 0 ? bw_err_name(code) : "");
  return answer(out, status, b, (size_t)n, "application/json");
}

static int serve_metrics(bw_observer_t *o, bw__http_resp_t *out) {
  if (o->opts.metrics == NULL)
    return answer_error(out, 404, "no metrics reporter configured", 0);
  char *text = NULL;
  size_t len = 0;
  int rc = bw_metrics_render_alloc(o->opts.metrics, BW_METRICS_PROMETHEUS, &text, &len);
  if (rc == BW_ENOTFOUND)
    return answer_error(out, 503, "no metrics collected yet", rc);
  if (rc != 0)
    return answer_error(out, 500, "metrics could not be rendered", rc);
  return answer(out, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

/* Renders with a growing buffer: f(buf, cap, &len) says BW_ETOOBIG and the
 * length it needs. */
typedef int (*render_fn)(bw_observer_t *o, char *buf, size_t cap, size_t *len, int *extra);

static int render_grow(bw_observer_t *o, render_fn f, char **out, size_t *len, int *extra) {
  size_t cap = 4096;
  for (int tries = 0; tries < 8; tries++) {
    char *b = malloc(cap);
    if (b == NULL)
      return BW_ENOMEM;
    int rc = f(o, b, cap, len, extra);
    if (rc == 0) {
      *out = b;
      return 0;
    }
    free(b);
    if (rc != BW_ETOOBIG)
      return rc;
    if (*len + 1 > o->opts.max_body)
      return BW_ETOOBIG;
    cap = *len + 1 + 1024; /* the tree may grow between two walks */
  }
  return BW_ETOOBIG;
}

static int render_health(bw_observer_t *o, char *buf, size_t cap, size_t *len, int *status) {
  return bw_health_json(o->opts.health, buf, cap, len, status);
}

static int render_tree(bw_observer_t *o, char *buf, size_t cap, size_t *len, int *unused) {
  (void)unused;
  return bw_tree_json(o->rt, o->opts.tree_root, buf, cap, len);
}

static int serve_health(bw_observer_t *o, bw__http_resp_t *out) {
  if (o->opts.health == NULL)
    return answer_error(out, 404, "no health monitor configured", 0);
  char *b = NULL;
  size_t len = 0;
  int status = BW_HEALTH_UNHEALTHY;
  int rc = render_grow(o, render_health, &b, &len, &status);
  if (rc != 0)
    return answer_error(out, 500, "health could not be rendered", rc);
  return answer(out, status == BW_HEALTH_HEALTHY ? 200 : 503, b, len, "application/json");
}

static int serve_tree(bw_observer_t *o, bw__http_resp_t *out) {
  if (o->opts.tree_root == BW_PID_NONE)
    return answer_error(out, 404, "no supervision tree configured", 0);
  char *b = NULL;
  size_t len = 0;
  int rc = render_grow(o, render_tree, &b, &len, NULL);
  if (rc == BW_ENOPROC || rc == BW_ESHUTDOWN)
    return answer_error(out, 503, "the tree's root supervisor is not running", rc);
  if (rc != 0)
    return answer_error(out, 500, "the tree could not be rendered", rc);
  return answer(out, 200, b, len, "application/json");
}

static int serve_page(bw_observer_t *o, bw__http_resp_t *out) {
  size_t cap = sizeof page_fmt + 16;
  char *b = malloc(cap);
  if (b == NULL)
    return BW_ENOMEM;
  int n = snprintf(b, cap, page_fmt, (unsigned)o->opts.refresh_ms);
  return answer(out, 200, b, (size_t)n, "text/html; charset=utf-8");
}

int bw__observer_route(bw_observer_t *o, const char *method, const char *url,
                       bw__http_resp_t *out) {
  memset(out, 0, sizeof *out);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return answer_error(out, 405, "only GET and HEAD", 0);
  if (strcmp(url, "/metrics") == 0)
    return serve_metrics(o, out);
  if (strcmp(url, "/health") == 0)
    return serve_health(o, out);
  if (strcmp(url, "/tree") == 0)
    return serve_tree(o, out);
  if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
    return serve_page(o, out);
  return answer_error(out, 404, "no such path", 0);
}

/* Checks opts and fills in the defaults. Returns 0 or BW_EINVAL. */
static int resolve_opts(const bw_observer_opts_t *in, bw_observer_opts_t *o) {
  *o = *in;
  if (o->refresh_ms == 0)
    o->refresh_ms = 1000;
  if (o->max_connections == 0)
    o->max_connections = 32;
  if (o->timeout_s == 0)
    o->timeout_s = 5;
  if (o->max_body == 0)
    o->max_body = 4u << 20;
  if (o->refresh_ms < 100 || o->refresh_ms > 60000 || o->max_connections > 1024 ||
      o->timeout_s > 3600 || o->max_body < 4096 || o->max_body > (64u << 20))
    return BW_EINVAL;
  return 0;
}

/* After resolve_opts: refuses a stopped runtime, allocates. */
static int observer_alloc(bw_runtime_t *rt, const bw_observer_opts_t *o, bw_observer_t **out) {
  /* refuse after stop, as every other start does */
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  bw_observer_t *ob = calloc(1, sizeof *ob);
  if (ob == NULL)
    return BW_ENOMEM;
  ob->rt = rt;
  ob->opts = *o;
  ob->opts.bind_addr = NULL; /* not kept: only used to bind */
  *out = ob;
  return 0;
}

int bw__observer_new(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  int rc = resolve_opts(opts, &o);
  if (rc != 0)
    return rc;
  return observer_alloc(rt, &o, out);
}

void bw__observer_free(bw_observer_t *o) { free(o); }

#ifndef BW_HAVE_MHD

int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  return BW_ENOTSUP;
}
uint16_t bw_observer_port(const bw_observer_t *o) {
  (void)o;
  return 0;
}
int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *nf, uint64_t *bm,
                       uint64_t *err) {
  (void)o, (void)ok, (void)nf, (void)bm, (void)err;
  return BW_EINVAL;
}
int bw_observer_stop(bw_observer_t *o) {
  (void)o;
  return 0;
}

#else

#include <microhttpd.h>

/* libmicrohttpd before 0.9.71 returned int from callbacks */
#if MHD_VERSION >= 0x00097002
#define BW_MHD_RESULT enum MHD_Result
#else
#define BW_MHD_RESULT int
#endif

static BW_MHD_RESULT respond(struct MHD_Connection *c, bw__http_resp_t *a, bw_observer_t *o) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(a->len, a->body, a->body != NULL ? MHD_RESPMEM_MUST_FREE
                                                                       : MHD_RESPMEM_PERSISTENT);
  if (r == NULL) {
    free(a->body);
    return MHD_NO;
  }
  unsigned status = a->status;
  MHD_add_response_header(r, "Content-Type", a->content_type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, "Allow", "GET, HEAD");
  BW_MHD_RESULT ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  /* relaxed: statistics */
  uint64_t *ctr = status < 300   ? &o->n_ok
                  : status == 404 ? &o->n_not_found
                  : status == 405 ? &o->n_bad_method
                                  : &o->n_errors;
  bw__faa64(ctr, 1);
  return ret;
}

static BW_MHD_RESULT on_request(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  bw_observer_t *o = cls;
  /* first call: headers only; answer on the second, once any body (which
   * we ignore) has been read */
  static int marker;
  if (*con_cls == NULL) {
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_size != 0) {
    *upload_size = 0; /* discard a body */
    return MHD_YES;
  }
  bw__http_resp_t a;
  if (bw__observer_route(o, method, url, &a) != 0)
    return MHD_NO;
  return respond(c, &a, o);
}

int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  if (resolve_opts(opts, &o) != 0)
    return BW_EINVAL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.bind_addr != NULL ? o.bind_addr : "127.0.0.1", &sa.sin_addr) != 1)
    return BW_EINVAL;
  bw_observer_t *ob = NULL;
  int rc = observer_alloc(rt, &o, &ob);
  if (rc != 0)
    return rc;
  /* two polling threads: one slow request (a big tree walk) does not hold
   * up the others; MHD_USE_ERROR_LOG off: errors are answered, not printed */
  ob->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, o.port, NULL, NULL, on_request, ob,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, 2u,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
      MHD_OPTION_END);
  if (ob->daemon == NULL) {
    free(ob);
    return BW_ESTATE;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(ob->daemon, MHD_DAEMON_INFO_BIND_PORT);
  ob->port = info != NULL ? info->port : o.port;
  *out = ob;
  return 0;
}

uint16_t bw_observer_port(const bw_observer_t *o) { return o != NULL ? o->port : 0; }

int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *nf, uint64_t *bm,
                       uint64_t *err) {
  if (o == NULL)
    return BW_EINVAL;
  /* relaxed: statistics */
  if (ok != NULL)
    *ok = bw__ld64_rlx((uint64_t *)&o->n_ok);
  if (nf != NULL)
    *nf = bw__ld64_rlx((uint64_t *)&o->n_not_found);
  if (bm != NULL)
    *bm = bw__ld64_rlx((uint64_t *)&o->n_bad_method);
  if (err != NULL)
    *err = bw__ld64_rlx((uint64_t *)&o->n_errors);
  return 0;
}

int bw_observer_stop(bw_observer_t *o) {
  if (o == NULL)
    return 0;
  MHD_stop_daemon(o->daemon);
  free(o);
  return 0;
}

#endif /* BW_HAVE_MHD */
