/*
 * bulwark: the HTTP observer's answers (observer_internal.h): what a
 * request gets, decided from the method, the URL and the Host and
 * Authorization headers alone, without a server.
 *
 *
 * The answer to a request is decided by bw__observer_route (method, URL,
 * Host and Authorization in; status and body out; observer_internal.h),
 * which knows nothing of libmicrohttpd: the fuzz harness drives it
 * directly, and it is built with or without the library. It checks, in
 * this order: the Host (421), then, except for the page, the token (401),
 * then the method (405) and the path.
 *
 * Also here: the page (one file, no external assets) and the Host and
 * token checks that the options (observer.c) use too. The server that
 * carries the answers is observer_mhd.c.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bulwark/bulwark.h"
#include "bulwark/health.h"
#include "bulwark/metrics.h"
#include "bulwark/observer.h"
#include "bulwark/tree.h"
#include "observe/observer_impl.h"
#include "observe/observer_internal.h"
#include "runtime/internal.h"

/* The page: one file, no external assets. It polls /tree and /health every
 * refresh period and draws the tree as nested boxes, with breaker and pool
 * states as coloured badges. %u = the refresh period in ms. It holds no
 * data and no token: it sends the token it was given in the address's
 * fragment (#token=..., which no browser sends to a server; removed from
 * the address bar at once, kept for the tab in sessionStorage), or asks
 * for it once when /tree answers 401. */
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
    "const R=%u;let T='';try{T=sessionStorage.getItem('bw_token')||'';}catch(x){}"
    "{const m=/[#&]token=([^&]*)/.exec(location.hash);if(m){T=decodeURIComponent(m[1]);"
    "try{sessionStorage.setItem('bw_token',T);}catch(x){}"
    "history.replaceState(null,'',location.pathname+location.search);}}"
    "let asked=false;"
    "function get(p){return fetch(p,{cache:'no-store',headers:T?{Authorization:'Bearer '+T}:{}});}"
    "function ask(){if(asked)return false;asked=true;"
    "const v=prompt('This observer needs its token:');if(!v)return false;T=v.trim();"
    "try{sessionStorage.setItem('bw_token',T);}catch(x){}return true;}"
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
    "let t=await get('/tree');if(t.status===401&&ask())t=await get('/tree');"
    "if(t.status===401){document.getElementById('err').textContent="
    "'this observer needs its token: open /#token=TOKEN';setTimeout(tick,R);return;}"
    "document.getElementById('tree').innerHTML="
    "t.ok?node(await t.json()):esc('/tree: '+t.status);"
    "const h=await get('/health');if(h.status!==404){const j=await h.json();"
    "const e=document.getElementById('health');e.textContent=j.status;e.className='b '+j.status;"
    "document.getElementById('reasons').innerHTML=(j.components||[]).filter(c=>c.status!=='healthy')"
    ".map(c=>esc(c.name+': '+c.reason)).join('; ');}"
    "document.getElementById('err').textContent='';"
    "document.getElementById('when').textContent=new Date().toLocaleTimeString();"
    "}catch(x){document.getElementById('err').textContent='observer unreachable: '+x;}"
    "setTimeout(tick,R);}"
    "tick();"
    "</script></body></html>";

/* --- answers ----------------------------------------------------------------------- */

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


/* --- the Host check ------------------------------------------------------------ */

/* Splits a Host value (or an allowed_hosts entry): name, then ":port" or
 * nothing; a name in brackets is an IPv6 literal. The port must be 1 to 5
 * digits. Returns false for anything else (empty name, two colons outside
 * brackets, bytes outside visible ASCII). */
bool bw__observer_split_host(const char *h, size_t *name_len, const char **port) {
  size_t n = strlen(h);
  if (n == 0 || n > BW_OBSERVER_HOST_LEN_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
      return false;
  const char *colon;
  if (h[0] == '[') {
    const char *rb = strchr(h, ']');
    if (rb == NULL || rb == h + 1 || (rb[1] != '\0' && rb[1] != ':'))
      return false;
    colon = rb[1] == ':' ? rb + 1 : NULL;
    *name_len = (size_t)(rb + 1 - h);
  } else {
    colon = strchr(h, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
      return false;
    *name_len = colon != NULL ? (size_t)(colon - h) : n;
  }
  *port = NULL;
  if (colon != NULL) {
    size_t digits = strspn(colon + 1, "0123456789");
    if (digits == 0 || digits > 5 || colon[1 + digits] != '\0')
      return false;
    *port = colon + 1;
  }
  return *name_len > 0;
}

static bool name_is(const char *name, size_t len, const char *what) {
  return strlen(what) == len && strncasecmp(name, what, len) == 0;
}

/* An IPv4 dotted quad, or an IPv6 literal in brackets. */
static bool ip_literal(const char *name, size_t len) {
  char b[BW_OBSERVER_HOST_LEN_MAX + 1];
  unsigned char a[16];
  if (len >= 2 && name[0] == '[') {
    memcpy(b, name + 1, len - 2);
    b[len - 2] = '\0';
    return inet_pton(AF_INET6, b, a) == 1;
  }
  memcpy(b, name, len);
  b[len] = '\0';
  return inet_pton(AF_INET, b, a) == 1;
}

/* Whether a request whose Host header is host (NULL: none) is for us. */
static bool host_allowed(const bw_observer_t *o, const char *host) {
  if (host == NULL || o->any_host)
    return true; /* no Host: HTTP/1.0, never a browser's */
  size_t len;
  const char *port;
  if (!bw__observer_split_host(host, &len, &port))
    return false;
  for (uint32_t i = 0; i < o->nhosts; i++) {
    size_t elen;
    const char *eport;
    (void)bw__observer_split_host(o->hosts[i], &elen, &eport); /* checked at start */
    if (eport != NULL ? strcasecmp(host, o->hosts[i]) == 0
                      : name_is(host, len, o->hosts[i]) && elen == len)
      return true;
  }
  if (port != NULL) {
    /* relaxed: the port is stored once, before anyone can know it */
    unsigned bound_port = bw__ld32_rlx(&o->port);
    if (strtoul(port, NULL, 10) != bound_port || (port[0] == '0' && bound_port != 0))
      return false;
  }
  return name_is(host, len, "localhost") || name_is(host, len, "127.0.0.1") ||
         name_is(host, len, "[::1]") || name_is(host, len, o->bound) ||
         (o->bound_any && ip_literal(host, len));
}

/* --- the token ---------------------------------------------------------------------- */

/* RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
 * Returns its length, or 0 if t is not one or is longer than the maximum. */
size_t bw__observer_token_length(const char *t) {
  size_t n = 0;
  for (;; n++) {
    char c = t[n];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok)
      break;
  }
  if (n == 0)
    return 0;
  while (t[n] == '=')
    n++;
  return t[n] == '\0' && n <= BW_OBSERVER_TOKEN_MAX ? n : 0;
}

/* Whether an Authorization header (NULL: none) carries our token:
 * "Bearer", any case, one or more spaces, the token. The comparison reads
 * the whole of both zero-padded buffers, so its time says nothing of how
 * many leading bytes matched; it says whether the given value was longer
 * than the maximum, which is no secret. */
static bool token_ok(const bw_observer_t *o, const char *auth) {
  if (o->token_len == 0)
    return true;
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
    return false;
  auth += 7;
  while (*auth == ' ')
    auth++;
  size_t n = strlen(auth);
  if (n > BW_OBSERVER_TOKEN_MAX)
    return false;
  char given[BW_OBSERVER_TOKEN_MAX + 1];
  memset(given, 0, sizeof given);
  memcpy(given, auth, n);
  unsigned diff = n != o->token_len;
  for (size_t i = 0; i < sizeof given; i++)
    diff |= (unsigned)(unsigned char)(given[i] ^ o->token[i]);
  return diff == 0;
}

/* --- routing: the request in, the answer out ---------------------------------- */

int bw__observer_route(bw_observer_t *o, const bw__http_req_t *req, bw__http_resp_t *out) {
  memset(out, 0, sizeof *out);
  const char *method = req->method, *url = req->url;
  if (!host_allowed(o, req->host))
    return answer_error(out, 421, "this server does not answer to that Host (allowed_hosts)",
                        0);
  bool page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
  if (!page && !token_ok(o, req->authorization))
    return answer_error(out, 401, "a bearer token is required (Authorization: Bearer ...)", 0);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return answer_error(out, 405, "only GET and HEAD", 0);
  if (page)
    return serve_page(o, out);
  if (strcmp(url, "/metrics") == 0)
    return serve_metrics(o, out);
  if (strcmp(url, "/health") == 0)
    return serve_health(o, out);
  if (strcmp(url, "/tree") == 0)
    return serve_tree(o, out);
  return answer_error(out, 404, "no such path", 0);
}
