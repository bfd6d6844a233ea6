/*
 * The HTTP client actor: libcurl's multi interface driven by the runtime's
 * poller (bulwark/io.h) and timers, the way libcurl documents event-loop
 * integration (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 * curl_multi_socket_action). One actor holds one multi handle, so every
 * curl call happens in its handler, on whichever worker runs it: no lock,
 * no thread of its own, no thread per request.
 *
 *   request (moved bw_http_req_t) -> a transfer slot (an easy handle kept
 *   for reuse) or the queue -> socket callbacks arm watches, the timer
 *   callback arms one runtime timer -> BW_MSG_IO / tick messages drive
 *   curl_multi_socket_action -> finished transfers are answered with a
 *   moved bw_http_resp_t.
 *
 * A request's deadline is a runtime timer armed when it arrives (queue wait
 * included); when it fires the transfer is removed from the multi handle,
 * which closes its connection, and the requester gets BW_ETIMEDOUT. The
 * requester is monitored: if it exits, its transfers are dropped the same
 * way. See include/bulwark/http.h for the statuses.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/io.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/http_internal.h"

/* The client's own messages (to itself). */
#define MSG_TICK (BW_MSG_HTTP_BASE + 0x40u)     /* curl's timer: payload the generation */
#define MSG_DEADLINE (BW_MSG_HTTP_BASE + 0x41u) /* a request's deadline: payload xfer id */

#define IN_FLIGHT_MAX 65536u

struct bw_http {
  bw_runtime_t *rt;
  bw_http_opts_t o;  /* strings point into the copies below */
  char name[32];
  char *ca_file, *ca_path, *client_cert, *client_key, *user_agent;
  char *auth; /* "Authorization: Bearer ..." or NULL; never printed */
  bw_pid_t pid;     /* relaxed atomics: written by the actor, read anywhere */
  bool started_here;
  /* counters: written by the actor only; relaxed, since each is read on its
   * own for monitoring and nothing is published through them */
  uint64_t c[19];
};

enum { C_REQ, C_2XX, C_3XX, C_4XX, C_5XX, C_THR, C_TMO, C_CANCEL, C_CONN, C_DNS, C_TLS, C_PROTO,
       C_BIG, C_QFULL, C_INFL, C_QUEUED, C_TX, C_RX, C__N };
_Static_assert(C__N <= 19, "counter array");

static void cnt_add(bw_http_t *h, int i, uint64_t n) {
  __atomic_store_n(&h->c[i], __atomic_load_n(&h->c[i], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* --- per-actor state ------------------------------------------------------------ */

typedef struct xfer {
  CURL *easy;            /* kept across uses (curl_easy_reset) */
  bw_http_req_t *q;      /* NULL when the slot is free */
  struct curl_slist *hdrs;
  bw_msg_t req;          /* the request's header (from, ref, flags), to reply */
  uint64_t id;           /* slot index + 2^32 * use count: what the deadline names */
  bw_timer_t deadline;
  uint64_t mon;          /* monitor on the requester */
  uint64_t start_ns;
  bool running;          /* in the multi handle (else queued) */
  bool too_big, hdr_big;
  size_t max_body, max_header;
  char *hbuf, *bbuf;
  size_t hlen, hcap, blen, bcap;
  uint32_t next_free, qnext;
  char err[CURL_ERROR_SIZE];
} xfer;

typedef struct sock {
  bw_io_t w;
  uint32_t want;
  struct sock *prev, *next; /* the client's list, to free them after a kill */
} sock;

typedef struct client {
  bw_http_t *h;
  bw_ctx_t *ctx;  /* valid during a callback: curl calls back only from inside ours */
  bw_runtime_t *rt;
  CURLM *multi;
  xfer *x;
  uint32_t nslots, free_head, qhead, qtail, nqueued, nrunning;
  uint64_t tick_gen;
  uint64_t tick_due_ns; /* 0 = no tick pending */
  bw_timer_t tick_timer;
  sock *cur;            /* the socket whose event is being handled */
  sock *socks;
} client;

#define NONE UINT32_MAX

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;
static void curl_once(void) {
  g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- buffers ------------------------------------------------------------------------- */

static bool buf_append(char **b, size_t *len, size_t *cap, const char *d, size_t n, size_t max) {
  if (*len + n > max)
    return false;
  if (*len + n + 1 > *cap) {
    size_t nc = *cap ? *cap : 1024;
    while (nc < *len + n + 1)
      nc *= 2;
    char *nb = realloc(*b, nc);
    if (nb == NULL)
      return false;
    *b = nb;
    *cap = nc;
  }
  memcpy(*b + *len, d, n);
  *len += n;
  (*b)[*len] = '\0';
  return true;
}

static size_t on_body(char *d, size_t sz, size_t n, void *ud) {
  xfer *t = ud;
  size_t bytes = sz * n;
  if (!buf_append(&t->bbuf, &t->blen, &t->bcap, d, bytes, t->max_body)) {
    t->too_big = true;
    return 0;
  }
  return bytes;
}

static size_t on_header(char *d, size_t sz, size_t n, void *ud) {
  xfer *t = ud;
  size_t bytes = sz * n;
  if (bytes >= 5 && memcmp(d, "HTTP/", 5) == 0)
    t->hlen = 0; /* a new response (after 100 Continue or an informational one) */
  if (!buf_append(&t->hbuf, &t->hlen, &t->hcap, d, bytes, t->max_header)) {
    t->hdr_big = true;
    return 0;
  }
  return bytes;
}

/* --- the answer --------------------------------------------------------------------- */

static int status_of_curl(CURLcode rc, const xfer *t) {
  switch (rc) {
  case CURLE_OK: return 0;
  case CURLE_COULDNT_CONNECT: return BW_ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return BW_EDNS;
  case CURLE_OPERATION_TIMEDOUT: return BW_ETIMEDOUT;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED: return BW_ETLS;
  case CURLE_OUT_OF_MEMORY: return BW_ENOMEM;
  case CURLE_FILESIZE_EXCEEDED: return BW_ETOOBIG;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    /* curl reports a malformed chunked body as a receive error too */
    return strstr(t->err, "chunk") != NULL || strstr(t->err, "header") != NULL ? BW_EPROTO
                                                                              : BW_ECONNRESET;
  case CURLE_WRITE_ERROR: return t->too_big ? BW_ETOOBIG : t->hdr_big ? BW_EPROTO : BW_EIO;
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_UNSUPPORTED_PROTOCOL: return BW_EPROTO; /* the scheme was checked: HTTP/0.9 */
  case CURLE_URL_MALFORMAT: return BW_EINVAL;
  default: return BW_EIO;
  }
}

static void count_status(bw_http_t *h, int st, long code) {
  switch (st) {
  case BW_ETIMEDOUT: cnt_add(h, C_TMO, 1); break;
  case BW_ECONNREFUSED:
  case BW_ECONNRESET: cnt_add(h, C_CONN, 1); break;
  case BW_EDNS: cnt_add(h, C_DNS, 1); break;
  case BW_ETLS: cnt_add(h, C_TLS, 1); break;
  case BW_EPROTO: cnt_add(h, C_PROTO, 1); break;
  case BW_ETOOBIG: cnt_add(h, C_BIG, 1); break;
  case BW_EHTTP_THROTTLED: cnt_add(h, C_THR, 1); break;
  default: break;
  }
  if (code >= 200 && code < 600)
    cnt_add(h, C_2XX + (int)(code / 100) - 2, 1);
}

/* Retry-After: delta seconds, or an HTTP date (curl_getdate). */
static uint64_t retry_after_ms(const bw_http_resp_t *r) {
  char v[64];
  if (bw_http_resp_header(r, "Retry-After", v, sizeof v) < 0)
    return 0;
  char *end;
  unsigned long s = strtoul(v, &end, 10);
  if (end != v && *end == '\0')
    return s > 86400ul ? 86400000ull : (uint64_t)s * 1000ull;
  time_t when = curl_getdate(v, NULL);
  time_t now = time(NULL);
  if (when == (time_t)-1 || when <= now)
    return when == (time_t)-1 ? 0 : 1;
  uint64_t d = (uint64_t)(when - now);
  return d > 86400u ? 86400000ull : d * 1000ull;
}

static void slot_release(client *c, xfer *t);

/* Ends t: replies (unless the requester is gone: reply = false) and frees
 * the slot. st < 0 without a response for transport errors. */
static void finish(client *c, xfer *t, int st, bool with_resp, bool reply) {
  bw_http_t *h = c->h;
  bw_http_resp_t *r = NULL;
  long code = 0;
  if (with_resp && st == 0) {
    r = calloc(1, sizeof *r);
    if (r == NULL) {
      st = BW_ENOMEM;
    } else {
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
      r->code = code;
      r->headers = t->hbuf ? t->hbuf : strdup("");
      r->headers_len = t->hlen;
      r->body = t->bbuf ? t->bbuf : strdup("");
      r->body_len = t->blen;
      t->hbuf = t->bbuf = NULL;
      t->hlen = t->hcap = t->blen = t->bcap = 0;
      r->elapsed_us = (bw_now_ns(c->rt) - t->start_ns) / 1000u;
      r->retry_after_ms = retry_after_ms(r);
      st = bw__http_status_of(code, r->retry_after_ms);
      curl_off_t up = 0, down = 0;
      curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up);
      curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
      cnt_add(h, C_TX, (uint64_t)up);
      cnt_add(h, C_RX, (uint64_t)down);
    }
  }
  count_status(h, st, code);
  if (reply) {
    if (r != NULL) {
      int rc = bw_reply_move(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, r, sizeof *r,
                             bw_http_resp_dtor);
      /* on these the runtime did not take r (bw_reply_move's contract) */
      if (rc == BW_EINVAL || rc == BW_EREMOTE || rc == BW_ESHUTDOWN || rc == BW_ENOMEM)
        bw_http_resp_free(r);
    } else {
      (void)bw_reply(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, NULL, 0);
    }
  } else {
    bw_http_resp_free(r);
  }
  slot_release(c, t);
}

static void slot_release(client *c, xfer *t) {
  if (t->running) {
    curl_multi_remove_handle(c->multi, t->easy); /* closes an unfinished connection */
    t->running = false;
    c->nrunning--;
  }
  if (t->deadline)
    bw_timer_cancel(c->rt, t->deadline);
  if (t->mon)
    bw_demonitor(c->ctx, t->mon);
  curl_slist_free_all(t->hdrs);
  bw_http_req_free(t->q);
  free(t->hbuf);
  free(t->bbuf);
  t->hdrs = NULL;
  t->q = NULL;
  t->hbuf = t->bbuf = NULL;
  t->hlen = t->hcap = t->blen = t->bcap = 0;
  t->deadline = 0;
  t->mon = 0;
  t->id += 1ull << 32;
  uint32_t i = (uint32_t)(t - c->x);
  t->next_free = c->free_head;
  c->free_head = i;
  cnt_add(c->h, C_INFL, (uint64_t)-1);
}

/* --- starting a transfer -------------------------------------------------------------- */

static int setup_easy(client *c, xfer *t) {
  bw_http_t *h = c->h;
  bw_http_req_t *q = t->q;
  if (t->easy == NULL && (t->easy = curl_easy_init()) == NULL)
    return BW_ENOMEM;
  CURL *e = t->easy;
  curl_easy_reset(e);
  for (size_t i = 0; i < q->nheaders; i++) {
    struct curl_slist *n = curl_slist_append(t->hdrs, q->headers[i]);
    if (n == NULL)
      return BW_ENOMEM;
    t->hdrs = n;
  }
  const char *extra[] = {"Expect:", h->auth};
  for (size_t i = 0; i < 2; i++) {
    if (extra[i] == NULL)
      continue;
    struct curl_slist *n = curl_slist_append(t->hdrs, extra[i]);
    if (n == NULL)
      return BW_ENOMEM;
    t->hdrs = n;
  }
  CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc != CURLE_OK ? rc : curl_easy_setopt(e, opt, val))
  SET(CURLOPT_URL, q->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_PRIVATE, (void *)t);
  SET(CURLOPT_ERRORBUFFER, t->err);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)t);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)t);
  SET(CURLOPT_HTTPHEADER, t->hdrs);
  SET(CURLOPT_CONNECTTIMEOUT_MS, (long)h->o.connect_timeout_ms);
  SET(CURLOPT_USERAGENT, h->user_agent ? h->user_agent : "bulwark/0.1");
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->o.max_body);
  if (h->ca_file)
    SET(CURLOPT_CAINFO, h->ca_file);
  if (h->ca_path)
    SET(CURLOPT_CAPATH, h->ca_path);
  if (h->client_cert)
    SET(CURLOPT_SSLCERT, h->client_cert);
  if (h->client_key)
    SET(CURLOPT_SSLKEY, h->client_key);
  if (strcmp(q->method, "GET") == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(q->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(q->method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, q->method);
    if (q->has_body || strcmp(q->method, "POST") == 0) {
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
      SET(CURLOPT_POSTFIELDS, q->body ? q->body : "");
    }
  }
#undef SET
  return rc == CURLE_OK ? 0 : rc == CURLE_OUT_OF_MEMORY ? BW_ENOMEM : BW_EINVAL;
}

static void start(client *c, xfer *t) {
  int rc = setup_easy(c, t);
  if (rc == 0 && curl_multi_add_handle(c->multi, t->easy) != CURLM_OK)
    rc = BW_ENOMEM;
  if (rc != 0) {
    finish(c, t, rc, false, true);
    return;
  }
  t->running = true;
  t->start_ns = bw_now_ns(c->rt);
  c->nrunning++;
}

static void start_queued(client *c) {
  while (c->qhead != NONE && c->nrunning < c->h->o.max_in_flight) {
    xfer *t = &c->x[c->qhead];
    c->qhead = t->qnext;
    if (c->qhead == NONE)
      c->qtail = NONE;
    c->nqueued--;
    cnt_add(c->h, C_QUEUED, (uint64_t)-1);
    start(c, t);
  }
}

static void unqueue(client *c, xfer *t) {
  uint32_t i = (uint32_t)(t - c->x), prev = NONE;
  for (uint32_t k = c->qhead; k != NONE; prev = k, k = c->x[k].qnext) {
    if (k != i)
      continue;
    if (prev == NONE)
      c->qhead = t->qnext;
    else
      c->x[prev].qnext = t->qnext;
    if (c->qtail == i)
      c->qtail = prev;
    c->nqueued--;
    cnt_add(c->h, C_QUEUED, (uint64_t)-1);
    return;
  }
}

static void on_request(client *c, const bw_msg_t *msg) {
  bw_http_t *h = c->h;
  bw_http_req_t *q = bw_msg_take(c->ctx, msg);
  if (!(msg->flags & BW_MSGF_REQUEST) || q == NULL) {
    bw_http_req_free(q);
    if (msg->flags & BW_MSGF_REQUEST)
      (void)bw_reply(c->ctx, msg, BW_EINVAL, BW_HTTP_MSG_RESPONSE, NULL, 0);
    return;
  }
  cnt_add(h, C_REQ, 1);
  if (c->free_head == NONE || (c->nrunning >= h->o.max_in_flight && c->nqueued >= h->o.max_queued)) {
    cnt_add(h, C_QFULL, 1);
    bw_http_req_free(q);
    (void)bw_reply(c->ctx, msg, BW_ELIMIT, BW_HTTP_MSG_RESPONSE, NULL, 0);
    return;
  }
  xfer *t = &c->x[c->free_head];
  c->free_head = t->next_free;
  cnt_add(h, C_INFL, 1);
  t->q = q;
  t->req = *msg;
  t->req.data = NULL;
  t->req.len = 0;
  t->too_big = t->hdr_big = false;
  t->max_body = h->o.max_body;
  t->max_header = h->o.max_header;
  t->err[0] = '\0';
  uint64_t ms = q->timeout_ms ? q->timeout_ms : h->o.default_timeout_ms;
  if (bw_send_after(c->rt, bw_self(c->ctx), ms, MSG_DEADLINE, &t->id, sizeof t->id,
                    &t->deadline) != 0)
    t->deadline = 0; /* the requester's own deadline still ends its wait */
  if (msg->from != BW_PID_NONE)
    (void)bw_monitor(c->ctx, msg->from, &t->mon);
  if (c->nrunning < h->o.max_in_flight) {
    start(c, t);
    return;
  }
  t->qnext = NONE;
  if (c->qtail == NONE)
    c->qhead = (uint32_t)(t - c->x);
  else
    c->x[c->qtail].qnext = (uint32_t)(t - c->x);
  c->qtail = (uint32_t)(t - c->x);
  c->nqueued++;
  cnt_add(h, C_QUEUED, 1);
}

/* --- curl's callbacks ------------------------------------------------------------------- */

static uint32_t interest(int what) {
  switch (what) {
  case CURL_POLL_IN: return BW_IO_IN;
  case CURL_POLL_OUT: return BW_IO_OUT;
  case CURL_POLL_INOUT: return BW_IO_IN | BW_IO_OUT;
  default: return 0;
  }
}

static void sock_unlink(client *c, sock *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp) {
  (void)e;
  client *c = ud;
  sock *s = sp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      (void)bw_io_unwatch(c->ctx, s->w);
      curl_multi_assign(c->multi, fd, NULL);
      if (c->cur == s)
        c->cur = NULL;
      sock_unlink(c, s);
      free(s);
    }
    return 0;
  }
  uint32_t want = interest(what);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL)
      return -1;
    if (bw_io_watch(c->ctx, fd, want, 0, s, &s->w) != 0) {
      free(s);
      return -1;
    }
    s->want = want;
    s->next = c->socks;
    if (c->socks)
      c->socks->prev = s;
    c->socks = s;
    curl_multi_assign(c->multi, fd, s);
    return 0;
  }
  s->want = want;
  return bw_io_arm(c->ctx, s->w, want) == 0 ? 0 : -1;
}

/* curl wants to be called after timeout_ms (-1: no timer). One runtime
 * timer at a time: a later time leaves the earlier timer armed (an early
 * call is harmless: curl just sets its timer again). */
static int on_timer(CURLM *m, long timeout_ms, void *ud) {
  (void)m;
  client *c = ud;
  if (timeout_ms < 0)
    return 0;
  uint64_t due = bw_now_ns(c->rt) + (uint64_t)timeout_ms * 1000000ull;
  if (c->tick_due_ns != 0 && c->tick_due_ns <= due)
    return 0;
  c->tick_due_ns = due;
  uint64_t gen = ++c->tick_gen;
  if (c->tick_timer)
    (void)bw_timer_cancel(c->rt, c->tick_timer);
  c->tick_timer = 0;
  if (timeout_ms == 0)
    return bw_send(c->rt, bw_self(c->ctx), MSG_TICK, &gen, sizeof gen) == 0 ? 0 : -1;
  return bw_send_after(c->rt, bw_self(c->ctx), (uint64_t)timeout_ms, MSG_TICK, &gen, sizeof gen,
                       &c->tick_timer) == 0 ? 0 : -1;
}

static void reap(client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    xfer *t = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    if (t == NULL || t->q == NULL)
      continue;
    CURLcode rc = m->data.result;
    finish(c, t, status_of_curl(rc, t), rc == CURLE_OK, true);
  }
  start_queued(c);
}

static void action(client *c, curl_socket_t fd, int mask) {
  int running = 0;
  curl_multi_socket_action(c->multi, fd, mask, &running);
  reap(c);
}

/* --- the actor ------------------------------------------------------------------------------- */

static int cl_init(bw_ctx_t *ctx, void *state, void *arg) {
  client *c = state;
  bw_http_t *h = arg;
  if (h == NULL)
    return BW_EINVAL;
  c->h = h;
  c->ctx = ctx;
  c->rt = h->rt;
  c->nslots = h->o.max_in_flight + h->o.max_queued;
  c->x = calloc(c->nslots, sizeof *c->x);
  c->multi = curl_multi_init();
  if (c->x == NULL || c->multi == NULL)
    goto fail;
  for (uint32_t i = 0; i < c->nslots; i++) {
    c->x[i].id = i;
    c->x[i].next_free = i + 1 < c->nslots ? i + 1 : NONE;
  }
  c->free_head = 0;
  c->qhead = c->qtail = NONE;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->o.max_per_host);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)h->o.max_per_host * 4);
  __atomic_store_n(&h->pid, bw_self(ctx), __ATOMIC_RELEASE); /* release: pairs with bw_http_pid */
  return 0;
fail:
  if (c->multi)
    curl_multi_cleanup(c->multi);
  free(c->x);
  c->x = NULL;
  c->multi = NULL;
  return BW_ENOMEM;
}

static int cl_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  client *c = state;
  c->ctx = ctx;
  switch (msg->type) {
  case BW_HTTP_MSG_REQUEST:
    on_request(c, msg);
    break;
  case BW_MSG_IO: {
    const bw_io_event_t *ev = msg->data;
    sock *s = ev->ud;
    int mask = (ev->events & BW_IO_IN ? CURL_CSELECT_IN : 0) |
               (ev->events & BW_IO_OUT ? CURL_CSELECT_OUT : 0) |
               (ev->events & (BW_IO_ERR | BW_IO_HUP) ? CURL_CSELECT_ERR : 0);
    c->cur = s;
    action(c, ev->fd, mask);
    /* one-shot: re-arm what curl still wants of this socket */
    if (c->cur == s && s->want != 0)
      (void)bw_io_arm(ctx, s->w, s->want);
    c->cur = NULL;
    break;
  }
  case MSG_TICK: {
    uint64_t gen;
    memcpy(&gen, msg->data, sizeof gen);
    if (gen != c->tick_gen)
      break; /* superseded by an earlier timer that already ran */
    c->tick_due_ns = 0;
    c->tick_timer = 0;
    action(c, CURL_SOCKET_TIMEOUT, 0);
    break;
  }
  case MSG_DEADLINE: {
    uint64_t id;
    memcpy(&id, msg->data, sizeof id);
    xfer *t = &c->x[(uint32_t)id];
    if ((uint32_t)id >= c->nslots || t->q == NULL || t->id != id)
      break; /* ended meanwhile */
    t->deadline = 0;
    if (!t->running)
      unqueue(c, t);
    finish(c, t, BW_ETIMEDOUT, false, true);
    start_queued(c);
    break;
  }
  case BW_HTTP_MSG_CANCEL: {
    uint64_t ref;
    if (msg->len != sizeof ref)
      break;
    memcpy(&ref, msg->data, sizeof ref);
    for (uint32_t i = 0; i < c->nslots; i++) {
      xfer *t = &c->x[i];
      if (t->q != NULL && t->req.ref == ref && t->req.from == msg->from) {
        if (!t->running)
          unqueue(c, t);
        cnt_add(c->h, C_CANCEL, 1);
        finish(c, t, BW_ECANCELED, false, true);
        start_queued(c);
        break;
      }
    }
    break;
  }
  case BW_MSG_DOWN:
    /* a requester exited: its transfers stop, nothing is answered */
    for (uint32_t i = 0; i < c->nslots; i++) {
      xfer *t = &c->x[i];
      if (t->q != NULL && t->mon == msg->ref) {
        t->mon = 0; /* already gone: no demonitor */
        if (!t->running)
          unqueue(c, t);
        cnt_add(c->h, C_CANCEL, 1);
        finish(c, t, BW_ECANCELED, false, false);
      }
    }
    start_queued(c);
    break;
  default:
    if (msg->flags & BW_MSGF_REQUEST)
      (void)bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    break;
  }
  return BW_CONTINUE;
}

static void cl_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *why) {
  (void)why;
  client *c = state;
  c->ctx = ctx;
  if (c->x == NULL)
    return;
  for (uint32_t i = 0; i < c->nslots; i++)
    if (c->x[i].q != NULL) {
      cnt_add(c->h, C_CANCEL, 1);
      finish(c, &c->x[i], BW_ECANCELED, false, true);
    }
  c->qhead = c->qtail = NONE;
  c->nqueued = 0;
}

/* Runs however the actor ends (a kill too): frees curl's handles. The
 * runtime has already removed the watches; curl closes its sockets. */
static void cl_cleanup(void *state) {
  client *c = state;
  if (c->x == NULL)
    return;
  bw_http_t *h = c->h;
  /* with no ctx, curl must not call back into the runtime */
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, NULL);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
  if (c->tick_timer)
    (void)bw_timer_cancel(c->rt, c->tick_timer);
  for (uint32_t i = 0; i < c->nslots; i++) {
    xfer *t = &c->x[i];
    if (t->deadline)
      (void)bw_timer_cancel(c->rt, t->deadline);
    if (t->running)
      curl_multi_remove_handle(c->multi, t->easy);
    if (t->easy)
      curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    bw_http_req_free(t->q);
    free(t->hbuf);
    free(t->bbuf);
  }
  curl_multi_cleanup(c->multi);
  while (c->socks) {
    sock *s = c->socks;
    c->socks = s->next;
    free(s);
  }
  free(c->x);
  c->x = NULL;
  __atomic_store_n(&h->c[C_INFL], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->c[C_QUEUED], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->pid, BW_PID_NONE, __ATOMIC_RELEASE);
}

const bw_behaviour_t bw_http_behaviour = {
    .name = "http_client",
    .state_size = sizeof(client),
    .init = cl_init,
    .handle = cl_handle,
    .terminate = cl_terminate,
    .cleanup = cl_cleanup,
};

/* --- the handle ------------------------------------------------------------------------------ */

void bw_http_opts_init(bw_http_opts_t *o) {
  if (o == NULL)
    return;
  memset(o, 0, sizeof *o);
  o->max_in_flight = 256;
  o->max_per_host = 16;
  o->max_queued = 1024;
  o->default_timeout_ms = 30000;
  o->connect_timeout_ms = 10000;
  o->max_body = 16u << 20;
  o->max_header = 64u << 10;
}

int bw_http_opts_validate(const bw_http_opts_t *o) {
  if (o == NULL || o->max_in_flight == 0 || o->max_in_flight > IN_FLIGHT_MAX ||
      o->max_per_host == 0 || o->max_queued > IN_FLIGHT_MAX || o->default_timeout_ms == 0 ||
      o->default_timeout_ms > 86400000ull || o->connect_timeout_ms > 86400000ull ||
      o->max_body == 0 || o->max_header < 256 || (o->name && strlen(o->name) > 31))
    return BW_EINVAL;
  if (o->bearer_token_env != NULL && o->bearer_token == NULL) {
    const char *v = getenv(o->bearer_token_env);
    if (v == NULL || *v == '\0')
      return BW_EINVAL;
  }
  if (o->bearer_token != NULL && strpbrk(o->bearer_token, "\r\n") != NULL)
    return BW_EINVAL;
  return 0;
}

static char *dup_opt(const char *s, bool *bad) {
  if (s == NULL)
    return NULL;
  char *d = strdup(s);
  if (d == NULL)
    *bad = true;
  return d;
}

static void http_free(bw_http_t *h) {
  free(h->ca_file);
  free(h->ca_path);
  free(h->client_cert);
  free(h->client_key);
  free(h->user_agent);
  if (h->auth != NULL) {
    /* the secret does not outlive its use in memory we give back */
    volatile char *p = h->auth;
    while (*p)
      *p++ = '\0';
    free(h->auth);
  }
  free(h);
}

int bw_http_new(bw_runtime_t *rt, const bw_http_opts_t *o, bw_http_t **out) {
  bw_http_opts_t def;
  if (o == NULL) {
    bw_http_opts_init(&def);
    o = &def;
  }
  if (rt == NULL || out == NULL || bw_http_opts_validate(o) != 0)
    return BW_EINVAL;
  pthread_once(&g_curl_once, curl_once);
  if (g_curl_init_rc != CURLE_OK)
    return BW_ENOMEM;
  bw_http_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return BW_ENOMEM;
  h->rt = rt;
  h->o = *o;
  snprintf(h->name, sizeof h->name, "%s", o->name ? o->name : "http");
  bool bad = false;
  h->ca_file = dup_opt(o->ca_file, &bad);
  h->ca_path = dup_opt(o->ca_path, &bad);
  h->client_cert = dup_opt(o->client_cert, &bad);
  h->client_key = dup_opt(o->client_key, &bad);
  h->user_agent = dup_opt(o->user_agent, &bad);
  const char *tok = o->bearer_token ? o->bearer_token
                    : o->bearer_token_env ? getenv(o->bearer_token_env) : NULL;
  if (tok != NULL && *tok != '\0') {
    size_t n = strlen(tok) + sizeof "Authorization: Bearer ";
    h->auth = malloc(n);
    if (h->auth == NULL)
      bad = true;
    else
      snprintf(h->auth, n, "Authorization: Bearer %s", tok);
  }
  h->o.name = h->name;
  h->o.ca_file = h->ca_file;
  h->o.ca_path = h->ca_path;
  h->o.client_cert = h->client_cert;
  h->o.client_key = h->client_key;
  h->o.user_agent = h->user_agent;
  h->o.bearer_token = NULL; /* kept only in h->auth */
  h->o.bearer_token_env = NULL;
  if (bad) {
    http_free(h);
    return BW_ENOMEM;
  }
  *out = h;
  return 0;
}

int bw_http_child_spec(bw_http_t *h, const char *id, bw_child_spec_t *out) {
  if (h == NULL || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &bw_http_behaviour;
  out->arg = h;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

bw_pid_t bw_http_pid(const bw_http_t *h) {
  /* acquire: pairs with the actor's release store in init */
  return h == NULL ? BW_PID_NONE : __atomic_load_n(&h->pid, __ATOMIC_ACQUIRE);
}

int bw_http_start(bw_http_t *h, bw_pid_t *out) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t p = bw_http_pid(h);
  if (p != BW_PID_NONE && bw_is_alive(h->rt, p))
    return BW_EALREADY;
  int rc = bw_spawn(h->rt, &bw_http_behaviour, h, NULL, &p);
  if (rc != 0)
    return rc;
  h->started_here = true;
  if (out != NULL)
    *out = p;
  return 0;
}

int bw_http_stop(bw_http_t *h) {
  if (h == NULL)
    return BW_EINVAL;
  bw_pid_t p = bw_http_pid(h);
  if (p == BW_PID_NONE || !bw_is_alive(h->rt, p))
    return 0;
  if (!h->started_here)
    return BW_ERUNNING;
  if (!bw_may_block(h->rt))
    return BW_EWOULDBLOCK;
  bw_exit(h->rt, p, BW_REASON_SHUTDOWN, 0, "http client stopped");
  int rc = bw_wait_exit(h->rt, p, 0, NULL);
  if (rc == 0 || rc == BW_ENOPROC)
    h->started_here = false;
  return rc == BW_ENOPROC ? 0 : rc;
}

int bw_http_destroy(bw_http_t *h) {
  if (h == NULL)
    return 0;
  int rc = bw_http_stop(h);
  if (rc != 0)
    return rc;
  http_free(h);
  return 0;
}

int bw_http_stats(const bw_http_t *h, bw_http_stats_t *out) {
  if (h == NULL || out == NULL)
    return BW_EINVAL;
  uint64_t v[C__N];
  for (int i = 0; i < C__N; i++)
    v[i] = __atomic_load_n(&h->c[i], __ATOMIC_RELAXED);
  *out = (bw_http_stats_t){
      .requests = v[C_REQ], .responses_2xx = v[C_2XX], .responses_3xx = v[C_3XX],
      .responses_4xx = v[C_4XX], .responses_5xx = v[C_5XX], .throttled = v[C_THR],
      .timeouts = v[C_TMO], .cancels = v[C_CANCEL], .conn_errors = v[C_CONN],
      .dns_errors = v[C_DNS], .tls_errors = v[C_TLS], .proto_errors = v[C_PROTO],
      .too_big = v[C_BIG], .queue_full = v[C_QFULL], .in_flight = v[C_INFL],
      .queued = v[C_QUEUED], .bytes_sent = v[C_TX], .bytes_received = v[C_RX]};
  return 0;
}

/* --- sending requests -------------------------------------------------------------------------- */

int bw_http_request(bw_ctx_t *ctx, bw_pid_t client_pid, bw_http_req_t *q, uint64_t timeout_ms,
                    uint64_t *ref) {
  if (q == NULL)
    return BW_EINVAL;
  q->timeout_ms = timeout_ms;
  /* the requester's own deadline a little after the client's, so the
   * client's BW_ETIMEDOUT (which closes the transfer) is what arrives */
  uint64_t wait = timeout_ms ? timeout_ms + 1000 : 0;
  int rc = bw_request_move(ctx, client_pid, BW_HTTP_MSG_REQUEST, q, sizeof *q, bw__http_req_dtor,
                           wait, ref);
  if (rc != 0 && rc != BW_ENOPROC)
    bw_http_req_free(q); /* "ownership moves, whatever the outcome" */
  return rc;
}

int bw_http_call(bw_runtime_t *rt, bw_pid_t client_pid, bw_http_req_t *q, uint64_t timeout_ms,
                 bw_http_resp_t **out) {
  if (out != NULL)
    *out = NULL;
  if (q == NULL || out == NULL) {
    bw_http_req_free(q);
    return BW_EINVAL;
  }
  q->timeout_ms = timeout_ms;
  bw_reply_t r;
  uint64_t wait = timeout_ms ? timeout_ms + 1000 : 0;
  /* q is the runtime's now, whatever the outcome (bw_call_move) */
  int rc = bw_call_move(rt, client_pid, BW_HTTP_MSG_REQUEST, q, sizeof *q, bw__http_req_dtor,
                        wait, &r);
  if (r.ptr != NULL && r.type == BW_HTTP_MSG_RESPONSE)
    *out = r.ptr;
  else if (r.ptr != NULL && r.dtor != NULL)
    r.dtor(r.ptr);
  return rc;
}
