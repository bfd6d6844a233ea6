/*
 * bulwark: the HTTP observer (observer.h), on libmicrohttpd.
 *
 * libmicrohttpd runs its own threads: a small pool of polling threads
 * (MHD_OPTION_THREAD_POOL_SIZE) on epoll, so a slow or malformed client
 * never holds a scheduler thread. Each GET renders its body fresh:
 * /metrics from the reporter's latest published snapshot (a copy, no lock
 * on the reporter), /health from the monitor's published snapshot, /tree by
 * walking the supervisors (bw_call from this thread, which is allowed: it
 * is not a scheduler thread). Bodies are malloc'ed per request and handed
 * to libmicrohttpd to free: a request is not a hot path.
 *
 * Rejected alternative: a thread per connection (MHD_USE_THREAD_PER_CONNECTION)
 * costs a thread per slow client; the pool's event loop does not.
 *
 * Hostile clients (issue #14). libmicrohttpd's own defences are an idle
 * timeout, which a slowloris client (a header byte now and then) never
 * trips, and limits that refuse the newcomer, which starve a legitimate
 * client behind an attacker holding every slot (measured: 0 of 8 /metrics
 * requests answered in 15 s behind 64 idle connections). So the observer
 * keeps its own table of connections (conn_t; libmicrohttpd reports each
 * connection's start and end and each request's), under one mutex, and
 * decides three things itself:
 * - a deadline per phase: a connection waiting for its request (from its
 *   opening, or from its previous answer) and one taking delivery of an
 *   answer has timeout_s to be done, whatever it trickles meanwhile. A
 *   watchdog thread sleeps until the earliest deadline (a condition
 *   variable; with no connection it sleeps until woken, no polling) and
 *   shuts the late ones down. Time spent rendering an answer is ours and
 *   has no deadline.
 * - who gives up a slot (make_room, at each new connection): past
 *   max_per_client for an address or max_connections in all, a connection
 *   waiting for its request is closed, the longest-waiting first, of the
 *   address over its share or else of the address holding the most. Not
 *   one with unread bytes in its socket (a request arriving), nor one
 *   younger than the grace (a request libmicrohttpd has read but not yet
 *   handed over looks idle; on a loaded machine that gap was measured at
 *   8 ms, and closing such connections lost 1 request in 15 under a
 *   hostile client). When nothing can be given up the table stays over
 *   its limit (libmicrohttpd's own limit, higher, still holds) and the
 *   watchdog retries every RETRY_NS until it is back within.
 * - which connections reach accept: TCP_DEFER_ACCEPT (Linux) holds a
 *   connection in the kernel until it sends data, so one that says
 *   nothing never takes a slot, and a request arrives with its bytes
 *   already unread in its socket.
 * Rejected alternative: refusing or closing the newcomer at the limit
 * (libmicrohttpd's behaviour) is what starved the legitimate client;
 * closing the oldest connection regardless of unread bytes and age lost a
 * request whenever an attacker's burst outnumbered the slots.
 * Closing is shutdown(2) on the socket: libmicrohttpd sees the end of the
 * stream and frees the connection in its own thread. The descriptor stays
 * valid while it is in the table (libmicrohttpd reports the end before it
 * closes it, and the report takes the table's mutex), so a shutdown never
 * reaches a reused descriptor.
 *
 * The answer to a request is decided by bw__observer_route (method, URL,
 * Host and Authorization in; status and body out; observer_internal.h),
 * which knows nothing of libmicrohttpd: the fuzz harness drives it
 * directly, and it is built with or without the library. It checks, in
 * this order: the Host (421), then, except for the page, the token (401),
 * then the method (405) and the path.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

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

/* The most a connection waiting for its request is kept from being given
 * up after it opened or was answered (a quarter of timeout_s below 2 s):
 * ample for libmicrohttpd to read and hand over a request that has
 * arrived, short enough that slots turn over quickly under attack. */
#define GRACE_MAX_NS (500u * 1000000u)

/* How soon the watchdog tries make_room again while the table is over a
 * limit (connections with a request arriving are read within moments). */
#define RETRY_NS (10u * 1000000u)

/* One connection the server holds (see the top of the file). */
enum { CONN_FREE, CONN_WAITING, CONN_HANDLING, CONN_SENDING };
typedef struct conn {
  int fd;
  uint8_t state;
  bool closing;      /* shut down by us; libmicrohttpd has not freed it yet */
  uint8_t addr_len;  /* the client's address: 4 or 16 bytes */
  uint8_t addr[16];
  uint64_t since_ns; /* start of the current phase (bw__mono_ns) */
  uint64_t round;    /* the make_room pass that found it with unread bytes */
} conn_t;

typedef struct addr_count {
  const conn_t *first; /* a connection from this address */
  uint32_t n;          /* live connections from it */
  bool spent;          /* none of them can be given up now */
} addr_count_t;

struct bw_observer {
  bw_runtime_t *rt;
  bw_observer_opts_t opts;   /* bind_addr, token and allowed_hosts cleared */
  struct MHD_Daemon *daemon; /* NULL for bw__observer_new's server-less observer */
  uint32_t port;             /* atomic: stored once the server is bound */

  /* the Host check */
  char bound[INET_ADDRSTRLEN]; /* the bound address, as inet_ntop writes it */
  bool bound_any;              /* bound to 0.0.0.0: any IP literal names us */
  bool any_host;               /* "*" in allowed_hosts: no check */
  uint32_t nhosts;
  char hosts[BW_OBSERVER_HOSTS_MAX][BW_OBSERVER_HOST_LEN_MAX + 1];

  /* the token: token_len bytes, zero-padded, so the comparison reads the
   * whole buffer whatever the lengths; 0 = none */
  size_t token_len;
  char token[BW_OBSERVER_TOKEN_MAX + 1];

  /* answers (atomic) */
  uint64_t n_ok, n_not_found, n_bad_method, n_errors, n_unauthorized, n_misdirected;

  /* connections: all below under lock (the server only) */
  pthread_mutex_t lock;
  pthread_cond_t wake;     /* the watchdog's */
  pthread_t watchdog;
  bool stopping;           /* the watchdog's signal to end */
  bool watch_idle;         /* the watchdog waits with no deadline: wake it */
  uint64_t timeout_ns;
  uint64_t grace_ns;       /* how long a new connection is not given up */
  uint32_t cap;            /* entries of conns and scratch */
  uint32_t nopen, nlive;   /* in the table; of those, not closing */
  conn_t *conns;
  addr_count_t *scratch;   /* make_room's per-address counts */
  uint64_t round;          /* make_room's pass, for victim's marks */
  bool over;               /* over a limit: make_room to try again soon */
  uint64_t n_evicted, n_timed_out, n_refused;
};

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
static bool split_host(const char *h, size_t *name_len, const char **port) {
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
  if (!split_host(host, &len, &port))
    return false;
  for (uint32_t i = 0; i < o->nhosts; i++) {
    size_t elen;
    const char *eport;
    (void)split_host(o->hosts[i], &elen, &eport); /* checked at start */
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
static size_t token_length(const char *t) {
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

/* --- options ------------------------------------------------------------------------- */

/* What resolve_opts found beside the options themselves. */
typedef struct resolved {
  struct in_addr addr; /* the bind address */
  const char *token;   /* NULL = none; from opts or the environment */
} resolved_t;

/* Checks opts and fills in the defaults. Returns 0 or BW_EINVAL. */
static int resolve_opts(const bw_observer_opts_t *in, bw_observer_opts_t *o, resolved_t *r) {
  *o = *in;
  if (o->refresh_ms == 0)
    o->refresh_ms = 1000;
  if (o->max_connections == 0)
    o->max_connections = 128;
  if (o->max_per_client == 0)
    o->max_per_client = o->max_connections > 1 ? o->max_connections / 2 : 1;
  if (o->timeout_s == 0)
    o->timeout_s = 3;
  if (o->max_body == 0)
    o->max_body = 4u << 20;
  if (o->refresh_ms < 100 || o->refresh_ms > 60000 || o->max_connections > 1024 ||
      o->max_per_client > o->max_connections || o->timeout_s > 3600 || o->max_body < 4096 ||
      o->max_body > (64u << 20))
    return BW_EINVAL;
  if (inet_pton(AF_INET, o->bind_addr != NULL ? o->bind_addr : "127.0.0.1", &r->addr) != 1)
    return BW_EINVAL;
  r->token = o->token;
  if (r->token == NULL) {
    const char *env = getenv("BW_OBSERVER_TOKEN");
    r->token = env != NULL && env[0] != '\0' ? env : NULL;
  }
  if (r->token != NULL && token_length(r->token) == 0)
    return BW_EINVAL;
  if (o->allowed_hosts != NULL) {
    uint32_t n = 0;
    for (; o->allowed_hosts[n] != NULL; n++) {
      size_t len;
      const char *port;
      if (n == BW_OBSERVER_HOSTS_MAX ||
          (strcmp(o->allowed_hosts[n], "*") != 0 &&
           !split_host(o->allowed_hosts[n], &len, &port)))
        return BW_EINVAL;
    }
  }
  return 0;
}

/* After resolve_opts: refuses a stopped runtime, allocates, copies what is
 * kept. */
static int observer_alloc(bw_runtime_t *rt, const bw_observer_opts_t *o, const resolved_t *r,
                          bw_observer_t **out) {
  /* refuse after stop, as every other start does */
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  bw_observer_t *ob = calloc(1, sizeof *ob);
  if (ob == NULL)
    return BW_ENOMEM;
  ob->rt = rt;
  ob->opts = *o;
  ob->opts.bind_addr = NULL; /* not kept: only used to bind */
  ob->opts.token = NULL;
  ob->opts.allowed_hosts = NULL;
  /* relaxed: no other thread yet */
  bw__st32_rlx(&ob->port, o->port);
  inet_ntop(AF_INET, &r->addr, ob->bound, sizeof ob->bound);
  ob->bound_any = r->addr.s_addr == htonl(INADDR_ANY);
  if (o->allowed_hosts != NULL) {
    for (const char *const *h = o->allowed_hosts; *h != NULL; h++) {
      if (strcmp(*h, "*") == 0)
        ob->any_host = true;
      else
        snprintf(ob->hosts[ob->nhosts++], sizeof ob->hosts[0], "%s", *h);
    }
  }
  if (r->token != NULL) {
    ob->token_len = token_length(r->token);
    memcpy(ob->token, r->token, ob->token_len);
  }
  *out = ob;
  return 0;
}

/* Frees what observer_alloc made, after wiping the token. */
static void observer_free(bw_observer_t *o) {
  volatile char *t = o->token;
  for (size_t i = 0; i < sizeof o->token; i++)
    t[i] = 0;
  free(o);
}

int bw__observer_new(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  resolved_t r;
  int rc = resolve_opts(opts, &o, &r);
  if (rc != 0)
    return rc;
  return observer_alloc(rt, &o, &r, out);
}

void bw__observer_free(bw_observer_t *o) {
  if (o != NULL)
    observer_free(o);
}

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
int bw_observer_stats(const bw_observer_t *o, bw_observer_stats_t *out) {
  (void)o, (void)out;
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

/* --- the connection table (under o->lock) --------------------------------------- */

static bool same_addr(const conn_t *a, const conn_t *b) {
  return a->addr_len == b->addr_len && memcmp(a->addr, b->addr, a->addr_len) == 0;
}

/* Closes c (shutdown: libmicrohttpd frees it) and counts it in *why. */
static void conn_close(bw_observer_t *o, conn_t *c, uint64_t *why) {
  (void)shutdown(c->fd, SHUT_RDWR);
  c->closing = true;
  o->nlive--;
  (*why)++;
}

/* Whether c's socket holds bytes the server has not read yet: a connection
 * just accepted whose request is on its way in. libmicrohttpd reads what
 * arrives at once, so an idle or trickling connection has none for long. */
static bool has_unread(const conn_t *c) {
  int n = 0;
  return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

/* The connection to give up from like's address: the one waiting longest
 * for its request, with nothing unread, that has waited at least
 * o->grace_ns; NULL if none, with *arriving set when the address has
 * others waiting that are younger or have unread bytes (they may be
 * requests on their way: libmicrohttpd reads a request and hands it to
 * on_request within moments, but a loaded machine can delay that by
 * milliseconds, and in that gap a request looks like an idle connection).
 * Those with unread bytes are marked for the rest of this round of
 * make_room, so each costs one system call per round; the usual cost is
 * one call and a pass over the table. */
static conn_t *victim(bw_observer_t *o, const conn_t *like, uint64_t now, bool *arriving) {
  for (;;) {
    conn_t *best = NULL;
    for (uint32_t i = 0; i < o->cap; i++) {
      conn_t *c = &o->conns[i];
      if (c->state != CONN_WAITING || c->closing || !same_addr(c, like))
        continue;
      if (c->round == o->round || now - c->since_ns < o->grace_ns) {
        *arriving = true;
        continue;
      }
      if (best == NULL || c->since_ns < best->since_ns)
        best = c;
    }
    if (best == NULL || !has_unread(best))
      return best;
    best->round = o->round; /* passed over this round */
  }
}

/* Brings the table within max_per_client per address and max_connections
 * in all, closing connections that wait for their request with nothing
 * unread: from an address over its share, then from the address holding
 * the most, longest-waiting first. A connection with unread bytes (a
 * request arriving) or whose request is being answered is never closed to
 * make room; when only those are left, the table stays over its limits
 * for the moment (libmicrohttpd's own limit, higher, still holds) and
 * o->over asks the watchdog to try again shortly. O(connections x
 * distinct addresses) plus the system calls of victim. */
static void make_room(bw_observer_t *o) {
  uint64_t now = bw__mono_ns();
  o->round++;
  uint32_t naddr = 0;
  for (uint32_t i = 0; i < o->cap; i++) {
    const conn_t *c = &o->conns[i];
    if (c->state == CONN_FREE || c->closing)
      continue;
    uint32_t k = 0;
    while (k < naddr && !same_addr(o->scratch[k].first, c))
      k++;
    if (k == naddr)
      o->scratch[naddr++] = (addr_count_t){c, 0, false};
    o->scratch[k].n++;
  }
  bool over = false;
  for (uint32_t k = 0; k < naddr; k++) {
    addr_count_t *a = &o->scratch[k];
    while (a->n > o->opts.max_per_client) {
      bool arriving = false;
      conn_t *v = victim(o, a->first, now, &arriving);
      if (v == NULL) {
        over = true;
        break;
      }
      conn_close(o, v, &o->n_evicted);
      a->n--;
    }
  }
  while (o->nlive > o->opts.max_connections) {
    addr_count_t *big = NULL;
    for (uint32_t k = 0; k < naddr; k++)
      if (!o->scratch[k].spent && (big == NULL || o->scratch[k].n > big->n))
        big = &o->scratch[k];
    bool arriving = false;
    conn_t *v = big != NULL ? victim(o, big->first, now, &arriving) : NULL;
    if (v == NULL && big != NULL && !arriving) {
      big->spent = true; /* all its connections are being answered: the next biggest */
      continue;
    }
    if (v == NULL) {
      /* none left, or the biggest holder's are arriving requests: they
       * will be read and answered, or become idle and be given up, soon;
       * the smaller holders are not asked to pay for them */
      over = true;
      break;
    }
    conn_close(o, v, &o->n_evicted);
    big->n--;
  }
  o->over = over;
}

/* Moves c to state, starting its phase now; wakes the watchdog if it had
 * no deadline to wait for (otherwise its next wake-up comes no later than
 * this new deadline: every deadline in the table is at most now + timeout). */
static void conn_enter(bw_observer_t *o, conn_t *c, uint8_t state) {
  pthread_mutex_lock(&o->lock);
  if (c->state != CONN_FREE) {
    c->state = state;
    c->since_ns = bw__mono_ns();
    if (state != CONN_HANDLING && o->watch_idle)
      pthread_cond_signal(&o->wake);
  }
  pthread_mutex_unlock(&o->lock);
}

static conn_t *conn_of(struct MHD_Connection *mc) {
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i != NULL ? i->socket_context : NULL;
}

/* libmicrohttpd: a connection started (in its thread, before it polls the
 * socket) or ended (before it closes the socket). */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode what) {
  bw_observer_t *o = cls;
  if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
    conn_t *c = *socket_context;
    if (c == NULL)
      return;
    pthread_mutex_lock(&o->lock);
    if (!c->closing)
      o->nlive--;
    c->state = CONN_FREE;
    o->nopen--;
    pthread_mutex_unlock(&o->lock);
    *socket_context = NULL;
    return;
  }
  const union MHD_ConnectionInfo *fi =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
  const union MHD_ConnectionInfo *ai =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (fi == NULL)
    return;
  pthread_mutex_lock(&o->lock);
  conn_t *c = NULL;
  for (uint32_t i = 0; i < o->cap && c == NULL; i++)
    if (o->conns[i].state == CONN_FREE)
      c = &o->conns[i];
  if (c == NULL) { /* libmicrohttpd's own limit keeps this from happening */
    (void)shutdown(fi->connect_fd, SHUT_RDWR);
    o->n_refused++;
    pthread_mutex_unlock(&o->lock);
    return;
  }
  memset(c, 0, sizeof *c);
  c->fd = fi->connect_fd;
  c->state = CONN_WAITING;
  c->since_ns = bw__mono_ns();
  const struct sockaddr *sa = ai != NULL ? ai->client_addr : NULL;
  if (sa != NULL && sa->sa_family == AF_INET) {
    c->addr_len = 4;
    memcpy(c->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  } else if (sa != NULL && sa->sa_family == AF_INET6) {
    c->addr_len = 16;
    memcpy(c->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
  }
  o->nopen++;
  o->nlive++;
  *socket_context = c;
  make_room(o);
  if (o->watch_idle || o->over)
    pthread_cond_signal(&o->wake);
  pthread_mutex_unlock(&o->lock);
}

/* libmicrohttpd: a request's answer was sent (or the request ended
 * otherwise): the connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)con_cls, (void)toe;
  conn_t *c = conn_of(mc);
  if (c != NULL)
    conn_enter(cls, c, CONN_WAITING);
}

/* The watchdog: closes connections past their phase's deadline, retries
 * make_room while over a limit, then sleeps until the next of those, or
 * until woken when there is none. */
static void *watchdog_main(void *arg) {
  bw_observer_t *o = arg;
  pthread_mutex_lock(&o->lock);
  while (!o->stopping) {
    if (o->over)
      make_room(o);
    uint64_t now = bw__mono_ns(), next = o->over ? now + RETRY_NS : UINT64_MAX;
    for (uint32_t i = 0; i < o->cap; i++) {
      conn_t *c = &o->conns[i];
      if (c->state == CONN_FREE || c->state == CONN_HANDLING || c->closing)
        continue;
      uint64_t due = c->since_ns + o->timeout_ns;
      if (due <= now)
        conn_close(o, c, &o->n_timed_out);
      else if (due < next)
        next = due;
    }
    if (next == UINT64_MAX) {
      o->watch_idle = true;
      pthread_cond_wait(&o->wake, &o->lock);
      o->watch_idle = false;
    } else {
      struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
      (void)pthread_cond_timedwait(&o->wake, &o->lock, &ts);
    }
  }
  pthread_mutex_unlock(&o->lock);
  return NULL;
}

/* --- requests --------------------------------------------------------------------- */

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
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, "Allow", "GET, HEAD");
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"bulwark observer\"");
  BW_MHD_RESULT ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  /* relaxed: statistics */
  uint64_t *ctr = status < 300   ? &o->n_ok
                  : status == 404 ? &o->n_not_found
                  : status == 405 ? &o->n_bad_method
                  : status == 401 ? &o->n_unauthorized
                  : status == 421 ? &o->n_misdirected
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
  /* first call: headers only; answer on the last, once any body (which
   * we ignore) has been read; until then the connection is still
   * delivering its request, under its deadline */
  static int marker;
  if (*con_cls == NULL) {
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_size != 0) {
    *upload_size = 0; /* discard a body */
    return MHD_YES;
  }
  conn_t *conn = conn_of(c);
  if (conn != NULL)
    conn_enter(o, conn, CONN_HANDLING);
  bw__http_req_t req = {
      .method = method,
      .url = url,
      .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
      .authorization =
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
  };
  bw__http_resp_t a;
  if (bw__observer_route(o, &req, &a) != 0)
    return MHD_NO;
  BW_MHD_RESULT ret = respond(c, &a, o);
  if (conn != NULL)
    conn_enter(o, conn, CONN_SENDING);
  return ret;
}

/* --- start and stop ------------------------------------------------------------------ */

/* The table, its lock and the watchdog. Returns 0, BW_ENOMEM or BW_ETHREAD. */
static int conns_init(bw_observer_t *o, uint32_t cap) {
  o->cap = cap;
  o->timeout_ns = (uint64_t)o->opts.timeout_s * 1000000000u;
  o->grace_ns = o->timeout_ns / 4 < GRACE_MAX_NS ? o->timeout_ns / 4 : GRACE_MAX_NS;
  o->conns = calloc(cap, sizeof *o->conns);
  o->scratch = calloc(cap, sizeof *o->scratch);
  if (o->conns == NULL || o->scratch == NULL)
    goto no_mem;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0)
    goto no_mem;
  /* deadlines are on the monotonic clock, as bw__mono_ns */
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&o->wake, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0)
    goto no_mem;
  if (pthread_mutex_init(&o->lock, NULL) != 0) {
    pthread_cond_destroy(&o->wake);
    goto no_mem;
  }
  if (pthread_create(&o->watchdog, NULL, watchdog_main, o) != 0) {
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    free(o->conns);
    free(o->scratch);
    return BW_ETHREAD;
  }
  return 0;
no_mem:
  free(o->conns);
  free(o->scratch);
  return BW_ENOMEM;
}

static void conns_destroy(bw_observer_t *o) {
  pthread_mutex_lock(&o->lock);
  o->stopping = true;
  pthread_cond_signal(&o->wake);
  pthread_mutex_unlock(&o->lock);
  pthread_join(o->watchdog, NULL);
  pthread_mutex_destroy(&o->lock);
  pthread_cond_destroy(&o->wake);
  free(o->conns);
  free(o->scratch);
}

int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  resolved_t r;
  if (resolve_opts(opts, &o, &r) != 0)
    return BW_EINVAL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.port);
  sa.sin_addr = r.addr;
  bw_observer_t *ob = NULL;
  int rc = observer_alloc(rt, &o, &r, &ob);
  if (rc != 0)
    return rc;
  /* libmicrohttpd's own limit: ours plus room for connections being closed */
  uint32_t slack = o.max_connections / 4 > 8 ? o.max_connections / 4 : 8;
  uint32_t hard = o.max_connections + slack;
  if ((rc = conns_init(ob, hard)) != 0) {
    observer_free(ob);
    return rc;
  }
  /* two polling threads: one slow request (a big tree walk) does not hold
   * up the others; MHD_USE_ERROR_LOG off: errors are answered, not printed */
  ob->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, o.port, NULL, NULL, on_request, ob,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, 2u,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)hard, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, ob, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, ob, MHD_OPTION_END);
  if (ob->daemon == NULL) {
    conns_destroy(ob);
    observer_free(ob);
    return BW_ESTATE;
  }
#ifdef TCP_DEFER_ACCEPT
  /* Linux: a connection reaches accept only once it has sent something (or
   * after about timeout_s), so idle connections take no slot at all and a
   * legitimate one arrives with its request already in its socket, where
   * victim sees it. A connection accepted just before this call is
   * handled as usual. */
  const union MHD_DaemonInfo *lfd = MHD_get_daemon_info(ob->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  int defer_s = (int)o.timeout_s;
  if (lfd != NULL)
    (void)setsockopt(lfd->listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
#endif
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(ob->daemon, MHD_DAEMON_INFO_BIND_PORT);
  /* relaxed: the port is a value on its own; a request racing this store
   * (possible only with opts.port 0, when nobody can know it yet) sees 0 */
  bw__st32_rlx(&ob->port, info != NULL ? info->port : o.port);
  if ((ntohl(r.addr.s_addr) >> 24) != 127 && ob->token_len == 0)
    fprintf(stderr,
            "bulwark: warning: the observer listens on %s:%u without a token: anyone who can "
            "reach that address can read /metrics, /health and /tree (set "
            "bw_observer_opts.token or BW_OBSERVER_TOKEN)\n",
            ob->bound, (unsigned)bw__ld32_rlx(&ob->port));
  *out = ob;
  return 0;
}

uint16_t bw_observer_port(const bw_observer_t *o) {
  /* relaxed: see bw_observer_start */
  return o != NULL ? (uint16_t)bw__ld32_rlx(&o->port) : 0;
}

int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *nf, uint64_t *bm,
                       uint64_t *err) {
  if (o == NULL)
    return BW_EINVAL;
  /* relaxed: statistics */
  if (ok != NULL)
    *ok = bw__ld64_rlx(&o->n_ok);
  if (nf != NULL)
    *nf = bw__ld64_rlx(&o->n_not_found);
  if (bm != NULL)
    *bm = bw__ld64_rlx(&o->n_bad_method);
  if (err != NULL)
    *err = bw__ld64_rlx(&o->n_errors);
  return 0;
}

int bw_observer_stats(const bw_observer_t *o, bw_observer_stats_t *out) {
  if (o == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  (void)bw_observer_counts(o, &out->ok, &out->not_found, &out->bad_method, &out->errors);
  /* relaxed: statistics */
  out->unauthorized = bw__ld64_rlx(&o->n_unauthorized);
  out->misdirected = bw__ld64_rlx(&o->n_misdirected);
  if (o->daemon == NULL)
    return 0; /* bw__observer_new's: no connections */
  bw_observer_t *m = (bw_observer_t *)o; /* the lock only */
  pthread_mutex_lock(&m->lock);
  out->evicted = o->n_evicted;
  out->timed_out = o->n_timed_out;
  out->refused = o->n_refused;
  out->connections = o->nopen;
  pthread_mutex_unlock(&m->lock);
  return 0;
}

int bw_observer_stop(bw_observer_t *o) {
  if (o == NULL)
    return 0;
  /* every connection ends (and leaves the table) before this returns */
  MHD_stop_daemon(o->daemon);
  conns_destroy(o);
  observer_free(o);
  return 0;
}

#endif /* BW_HAVE_MHD */
