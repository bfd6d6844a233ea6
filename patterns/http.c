/*
 * The HTTP client actor: libcurl's multi interface driven by the runtime's
 * poller (bulwark/io.h) and timers, the way libcurl documents event-loop
 * integration (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 * curl_multi_socket_action). One actor holds one multi handle, so every
 * curl call happens in its handler, on whichever worker runs it: no lock,
 * no thread of its own, no thread per request.
 *
 * A request's life, in a slot of a table allocated at init:
 *
 *   arrives (moved bw_http_req_t): deadline timer armed, requester monitored
 *     -> [host held by a Retry-After?  WAIT until then, or THROTTLED at once
 *         if that is past the deadline]
 *     -> [policy: bw_policy_enter: go / RETRY later (WAIT) / final error]
 *     -> a transfer (RUN) when fewer than max_in_flight run, else QUEUED
 *     -> done: the status (http.h's table); [policy: bw_policy_exit: final,
 *        or RETRY after max(backoff, Retry-After) if the request is
 *        idempotent] -> answered with a moved bw_http_resp_t
 *
 * The deadline, an attempt's timeout and the requester's exit remove the
 * transfer from the multi handle, which closes its connection: nothing of
 * it arrives later. See include/bulwark/http.h and patterns/HTTP.md.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/io.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/http_internal.h"

/* The client's own messages (to itself); payload: the slot's id. */
#define MSG_TICK (BW_MSG_HTTP_BASE + 0x80u)     /* curl's timer (payload: generation) */
#define MSG_DEADLINE (BW_MSG_HTTP_BASE + 0x81u) /* the request's deadline */
#define MSG_ATTEMPT (BW_MSG_HTTP_BASE + 0x82u)  /* an attempt's timeout */
#define MSG_WAKE (BW_MSG_HTTP_BASE + 0x83u)     /* a retry delay or a host's hold ended */

#define HOSTS 32u /* hosts whose Retry-After hold is remembered */
#define HOST_MAX 64u

enum { X_FREE, X_QUEUED, X_RUN, X_WAIT };

struct client;

typedef struct xfer {
  struct client *c;
  CURL *easy;            /* kept across uses (curl_easy_reset) */
  bw_http_req_t *q;
  struct curl_slist *hdrs;
  bw_msg_t req;          /* the request's header (from, ref, flags), to reply */
  uint64_t id;           /* slot index + 2^32 * use count: what timers name */
  bw_timer_t deadline, attempt, wake;
  uint64_t deadline_ns;  /* runtime clock; 0 = none */
  uint64_t mon;          /* monitor on the requester */
  uint64_t start_ns;
  uint8_t state;
  bool too_big, hdr_big, in_policy;
  char host[HOST_MAX];
  char *hbuf, *bbuf;
  size_t hlen, hcap, blen, bcap, max_body, max_header;
  uint32_t next;         /* free list or queue */
  uint32_t unacked;      /* streamed: chunks sent and not acknowledged */
  uint64_t seq;          /* streamed: chunks sent */
  bool paused;           /* streamed: curl holds the data until an ack */
  bw_policy_ticket_t ticket;
  char err[CURL_ERROR_SIZE];
} xfer;

typedef struct sock {
  bw_io_t w;
  uint32_t want;
  struct sock *prev, *next; /* the client's list, to free them after a kill */
} sock;

typedef struct hold {
  char host[HOST_MAX];
  uint64_t until_ns;
} hold_t;

typedef struct client {
  bw_http_t *h;
  bw_ctx_t *ctx; /* valid during a callback: curl calls back only from inside ours */
  bw_runtime_t *rt;
  CURLM *multi;
  xfer *x;
  uint32_t nslots, free_head, qhead, qtail, nrunning;
  uint64_t tick_gen, tick_due_ns;
  bw_timer_t tick_timer;
  sock *cur; /* the socket whose event is being handled */
  sock *socks;
  hold_t holds[HOSTS];
} client;

#define NONE UINT32_MAX

/* --- buffers and curl's data callbacks --------------------------------------------- */

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

static size_t on_stream(xfer *t, const char *d, size_t bytes);

static size_t on_body(char *d, size_t sz, size_t n, void *ud) {
  xfer *t = ud;
  size_t bytes = sz * n;
  if (t->q->credit != 0)
    return on_stream(t, d, bytes);
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

static void bufs_free(xfer *t) {
  free(t->hbuf);
  free(t->bbuf);
  t->hbuf = t->bbuf = NULL;
  t->hlen = t->hcap = t->blen = t->bcap = 0;
  t->too_big = t->hdr_big = false;
  t->err[0] = '\0';
}

/* A streamed body: each piece goes to the requester as a chunk message;
 * with credit chunks unacknowledged curl is told to pause (it keeps this
 * piece and stops reading the socket) until bw_http_ack. */
static size_t on_stream(xfer *t, const char *d, size_t bytes) {
  if (t->unacked >= t->q->credit) {
    t->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  bw_http_chunk_t *ch = malloc(sizeof *ch + bytes + 1);
  if (ch == NULL)
    return 0; /* a write error: the transfer ends with BW_EIO */
  ch->ref = t->req.ref;
  ch->seq = t->seq;
  ch->token = t->id;
  ch->len = bytes;
  memcpy(ch->data, d, bytes);
  ch->data[bytes] = '\0';
  int rc = bw_send_move(t->c->rt, t->req.from, BW_HTTP_MSG_CHUNK, ch, sizeof *ch + bytes, free);
  if (rc != 0) {
    if (rc != BW_ENOPROC)
      free(ch); /* not taken (bw_send_move's contract) */
    return 0;   /* nobody to stream to: stop */
  }
  t->seq++;
  t->unacked++;
  return bytes;
}

/* --- statuses ------------------------------------------------------------------------- */

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

static void count_status(bw_http_t *h, int st) {
  switch (st) {
  case BW_ETIMEDOUT: bw__http_cnt(h, BW__HC_TMO, 1); break;
  case BW_ECONNREFUSED:
  case BW_ECONNRESET: bw__http_cnt(h, BW__HC_CONN, 1); break;
  case BW_EDNS: bw__http_cnt(h, BW__HC_DNS, 1); break;
  case BW_ETLS: bw__http_cnt(h, BW__HC_TLS, 1); break;
  case BW_EPROTO: bw__http_cnt(h, BW__HC_PROTO, 1); break;
  case BW_ETOOBIG: bw__http_cnt(h, BW__HC_BIG, 1); break;
  case BW_EHTTP_THROTTLED: bw__http_cnt(h, BW__HC_THR, 1); break;
  case BW_ECIRCUIT_OPEN:
  case BW_ERATE_LIMITED:
  case BW_EBULKHEAD_FULL:
  case BW_EBUDGET: bw__http_cnt(h, BW__HC_REFUSED, 1); break;
  default: break;
  }
}

/* Retry-After: delta seconds, or an HTTP date. */
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
  if (when == (time_t)-1)
    return 0;
  if (when <= now)
    return 1;
  uint64_t d = (uint64_t)(when - now);
  return d > 86400u ? 86400000ull : d * 1000ull;
}

/* The finished transfer's response (NULL: no memory; *st then BW_ENOMEM). */
static bw_http_resp_t *take_response(client *c, xfer *t, int *st) {
  bw_http_resp_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    *st = BW_ENOMEM;
    return NULL;
  }
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  r->code = code;
  r->headers = t->hbuf ? t->hbuf : calloc(1, 1);
  r->headers_len = t->hlen;
  r->body = t->bbuf ? t->bbuf : calloc(1, 1);
  r->body_len = t->blen;
  t->hbuf = t->bbuf = NULL;
  t->hlen = t->hcap = t->blen = t->bcap = 0;
  r->elapsed_us = (bw_now_ns(c->rt) - t->start_ns) / 1000u;
  r->retry_after_ms = retry_after_ms(r);
  r->chunks = t->seq;
  *st = bw__http_status_of(code, r->retry_after_ms);
  curl_off_t up = 0, down = 0;
  curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
  bw__http_cnt(c->h, BW__HC_TX, (uint64_t)up);
  bw__http_cnt(c->h, BW__HC_RX, (uint64_t)down);
  if (code >= 200 && code < 600)
    bw__http_cnt(c->h, BW__HC_2XX + (int)(code / 100) - 2, 1);
  return r;
}

/* --- hosts held by a Retry-After ---------------------------------------------------------- */

static void host_of(const char *url, char *out) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  const char *at = NULL;
  size_t n = strcspn(p, "/?#");
  for (size_t i = 0; i < n; i++)
    if (p[i] == '@')
      at = p + i; /* no credentials in the key */
  if (at != NULL) {
    n -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  if (n >= HOST_MAX)
    n = HOST_MAX - 1;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
  out[n] = '\0';
}

static uint64_t held_until(client *c, const char *host, uint64_t now) {
  for (unsigned i = 0; i < HOSTS; i++)
    if (c->holds[i].until_ns > now && strcmp(c->holds[i].host, host) == 0)
      return c->holds[i].until_ns;
  return 0;
}

static void hold_host(client *c, const char *host, uint64_t until) {
  hold_t *slot = &c->holds[0];
  for (unsigned i = 0; i < HOSTS; i++) {
    hold_t *h = &c->holds[i];
    if (strcmp(h->host, host) == 0) {
      slot = h;
      break;
    }
    if (h->until_ns < slot->until_ns)
      slot = h; /* else the one that ends first (expired ones are 0 or past) */
  }
  snprintf(slot->host, sizeof slot->host, "%s", host);
  if (until > slot->until_ns)
    slot->until_ns = until;
}

/* --- slots ---------------------------------------------------------------------------------- */

static void cancel_timer(client *c, bw_timer_t *tm) {
  if (*tm)
    (void)bw_timer_cancel(c->rt, *tm);
  *tm = 0;
}

static void stop_transfer(client *c, xfer *t) {
  if (t->state == X_RUN) {
    curl_multi_remove_handle(c->multi, t->easy); /* closes an unfinished connection */
    c->nrunning--;
  }
  cancel_timer(c, &t->attempt);
  cancel_timer(c, &t->wake);
}

static void unqueue(client *c, xfer *t) {
  uint32_t i = (uint32_t)(t - c->x), prev = NONE;
  for (uint32_t k = c->qhead; k != NONE; prev = k, k = c->x[k].next) {
    if (k != i)
      continue;
    if (prev == NONE)
      c->qhead = t->next;
    else
      c->x[prev].next = t->next;
    if (c->qtail == i)
      c->qtail = prev;
    bw__http_cnt(c->h, BW__HC_QUEUED, (uint64_t)-1);
    return;
  }
}

/* Frees t's slot: everything of the request goes. */
static void slot_release(client *c, xfer *t) {
  if (t->state == X_QUEUED)
    unqueue(c, t);
  stop_transfer(c, t);
  cancel_timer(c, &t->deadline);
  if (t->mon)
    bw_demonitor(c->ctx, t->mon);
  t->mon = 0;
  curl_slist_free_all(t->hdrs);
  t->hdrs = NULL;
  bw_http_req_free(t->q);
  t->q = NULL;
  bufs_free(t);
  t->state = X_FREE;
  t->id += 1ull << 32;
  t->next = c->free_head;
  c->free_head = (uint32_t)(t - c->x);
  bw__http_cnt(c->h, BW__HC_INFL, (uint64_t)-1);
}

/* The request is over: answer (reply = false when the requester is gone)
 * with status st and the response r (NULL: none; freed here if not sent). */
static void answer(client *c, xfer *t, int st, bw_http_resp_t *r, bool reply) {
  count_status(c->h, st);
  if (reply && t->in_policy && t->ticket.fallback_used) {
    /* the policy's fallback answered: its status, type and payload */
    const bw_policy_answer_t *a = &t->ticket.answer;
    bw__http_cnt(c->h, BW__HC_FALLBACK, 1);
    (void)bw_reply(c->ctx, &t->req, a->status, a->type, a->len ? a->data : NULL, a->len);
    bw_http_resp_free(r);
  } else if (reply && r != NULL) {
    int rc = bw_reply_move(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, r, sizeof *r,
                           bw_http_resp_dtor);
    /* on these the runtime did not take r (bw_reply_move's contract) */
    if (rc == BW_EINVAL || rc == BW_EREMOTE || rc == BW_ESHUTDOWN || rc == BW_ENOMEM)
      bw_http_resp_free(r);
  } else {
    if (reply)
      (void)bw_reply(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, NULL, 0);
    bw_http_resp_free(r);
  }
  slot_release(c, t);
}

static xfer *slot_of(client *c, const bw_msg_t *msg) {
  uint64_t id;
  if (msg->len != sizeof id)
    return NULL;
  memcpy(&id, msg->data, sizeof id);
  uint32_t i = (uint32_t)id;
  if (i >= c->nslots || c->x[i].state == X_FREE || c->x[i].id != id)
    return NULL; /* over meanwhile: a stale timer */
  return &c->x[i];
}

static int arm(client *c, xfer *t, uint32_t type, uint64_t ms, bw_timer_t *out) {
  return bw_send_after(c->rt, bw_self(c->ctx), ms, type, &t->id, sizeof t->id, out);
}

/* --- starting a transfer ------------------------------------------------------------------------ */

static int setup_easy(client *c, xfer *t) {
  bw_http_t *h = c->h;
  bw_http_req_t *q = t->q;
  if (t->easy == NULL && (t->easy = curl_easy_init()) == NULL)
    return BW_ENOMEM;
  CURL *e = t->easy;
  curl_easy_reset(e);
  curl_slist_free_all(t->hdrs);
  t->hdrs = NULL;
  const char *extra[] = {"Expect:", h->auth};
  for (size_t i = 0; i < q->nheaders + 2; i++) {
    const char *line = i < q->nheaders ? q->headers[i] : extra[i - q->nheaders];
    if (line == NULL)
      continue;
    struct curl_slist *n = curl_slist_append(t->hdrs, line);
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

static void attempt_done(client *c, xfer *t, int st, bw_http_resp_t *r);

/* Starts the attempt's transfer now (a running slot is free). */
static void run(client *c, xfer *t) {
  bufs_free(t);
  t->unacked = 0;
  t->paused = false;
  int rc = setup_easy(c, t);
  if (rc == 0 && curl_multi_add_handle(c->multi, t->easy) != CURLM_OK)
    rc = BW_ENOMEM;
  if (rc != 0) {
    t->state = X_WAIT; /* not running: nothing to remove */
    attempt_done(c, t, rc, NULL);
    return;
  }
  t->state = X_RUN;
  t->start_ns = bw_now_ns(c->rt);
  c->nrunning++;
  uint64_t ms = t->in_policy ? t->ticket.timeout_ms : 0;
  if (ms > 0 && arm(c, t, MSG_ATTEMPT, ms, &t->attempt) != 0)
    t->attempt = 0; /* the deadline still bounds it */
}

static void run_queued(client *c) {
  while (c->qhead != NONE && c->nrunning < c->h->o.max_in_flight) {
    xfer *t = &c->x[c->qhead];
    c->qhead = t->next;
    if (c->qhead == NONE)
      c->qtail = NONE;
    bw__http_cnt(c->h, BW__HC_QUEUED, (uint64_t)-1);
    run(c, t);
  }
}

static void wait_for(client *c, xfer *t, uint64_t ms) {
  t->state = X_WAIT;
  if (arm(c, t, MSG_WAKE, ms ? ms : 1, &t->wake) != 0)
    answer(c, t, BW_ENOMEM, NULL, true);
}

/* The next attempt of t: the host's hold, the policy's stages, then a
 * transfer now or in the queue. */
static void attempt(client *c, xfer *t) {
  uint64_t now = bw_now_ns(c->rt);
  uint64_t held = held_until(c, t->host, now);
  if (held != 0) {
    if (t->deadline_ns != 0 && held >= t->deadline_ns) {
      answer(c, t, BW_EHTTP_THROTTLED, NULL, true); /* the server's wait outlasts ours */
      return;
    }
    wait_for(c, t, (held - now + 999999u) / 1000000u);
    return;
  }
  if (t->in_policy) {
    int rc = bw_policy_enter(c->h->o.policy, &t->ticket);
    if (rc == BW_POLICY_RETRY) {
      wait_for(c, t, t->ticket.retry_in_ms);
      return;
    }
    if (rc != 0) {
      answer(c, t, rc, NULL, true);
      return;
    }
  }
  if (c->nrunning < c->h->o.max_in_flight) {
    run(c, t);
    return;
  }
  t->state = X_QUEUED;
  t->next = NONE;
  uint32_t i = (uint32_t)(t - c->x);
  if (c->qtail == NONE)
    c->qhead = i;
  else
    c->x[c->qtail].next = i;
  c->qtail = i;
  bw__http_cnt(c->h, BW__HC_QUEUED, 1);
}

/* An attempt ended with st (r: its response, if any): the policy decides
 * between the final answer and another attempt. */
static void attempt_done(client *c, xfer *t, int st, bw_http_resp_t *r) {
  stop_transfer(c, t);
  t->state = X_WAIT;
  if (r != NULL && st == BW_EHTTP_THROTTLED && r->retry_after_ms > 0)
    hold_host(c, t->host, bw_now_ns(c->rt) + r->retry_after_ms * 1000000ull);
  if (!t->in_policy) {
    answer(c, t, st, r, true);
    return;
  }
  uint64_t retry_ms = 0;
  int rc = bw_policy_exit(c->h->o.policy, &t->ticket, st, &retry_ms);
  if (rc == BW_POLICY_RETRY && bw_http_req_is_idempotent(t->q) && t->seq == 0) {
    count_status(c->h, st); /* each failed attempt is counted once */
    bw__http_cnt(c->h, BW__HC_RETRY, 1);
    uint64_t ra = r != NULL ? r->retry_after_ms : 0;
    bw_http_resp_free(r);
    wait_for(c, t, retry_ms > ra ? retry_ms : ra);
    return;
  }
  /* final: the policy's status (st itself, or BW_EBUDGET, ...); the
   * response goes with it when it is this attempt's own status */
  int final = rc == BW_POLICY_RETRY ? st : rc;
  if (final != st) {
    bw_http_resp_free(r);
    r = NULL;
  }
  answer(c, t, final, r, true);
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
  bw__http_cnt(h, BW__HC_REQ, 1);
  if (c->free_head == NONE) {
    bw__http_cnt(h, BW__HC_QFULL, 1);
    bw_http_req_free(q);
    (void)bw_reply(c->ctx, msg, BW_ELIMIT, BW_HTTP_MSG_RESPONSE, NULL, 0);
    return;
  }
  xfer *t = &c->x[c->free_head];
  c->free_head = t->next;
  bw__http_cnt(h, BW__HC_INFL, 1);
  t->q = q;
  t->req = *msg;
  t->req.data = NULL;
  t->req.len = 0;
  t->max_body = h->o.max_body;
  t->max_header = h->o.max_header;
  t->state = X_WAIT;
  t->seq = 0;
  host_of(q->url, t->host);
  uint64_t ms = q->timeout_ms ? q->timeout_ms : h->o.default_timeout_ms;
  t->deadline_ns = bw_now_ns(c->rt) + ms * 1000000ull;
  if (arm(c, t, MSG_DEADLINE, ms, &t->deadline) != 0)
    t->deadline = 0; /* the requester's own deadline still ends its wait */
  if (msg->from != BW_PID_NONE)
    (void)bw_monitor(c->ctx, msg->from, &t->mon);
  t->in_policy = h->o.policy != NULL;
  if (t->in_policy) {
    bw_policy_ticket_init(&t->ticket);
    t->ticket.req = NULL; /* the fallback sees an empty request (the original is gone) */
  }
  attempt(c, t);
}

/* --- curl's callbacks ------------------------------------------------------------------------------ */

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
  cancel_timer(c, &c->tick_timer);
  if (timeout_ms == 0)
    return bw_send(c->rt, bw_self(c->ctx), MSG_TICK, &gen, sizeof gen) == 0 ? 0 : -1;
  return bw_send_after(c->rt, bw_self(c->ctx), (uint64_t)timeout_ms, MSG_TICK, &gen, sizeof gen,
                       &c->tick_timer) == 0
             ? 0
             : -1;
}

static void reap(client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    xfer *t = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    if (t == NULL || t->state != X_RUN)
      continue;
    CURLcode rc = m->data.result;
    int st = status_of_curl(rc, t);
    bw_http_resp_t *r = rc == CURLE_OK ? take_response(c, t, &st) : NULL;
    attempt_done(c, t, st, r);
  }
  run_queued(c);
}

static void action(client *c, curl_socket_t fd, int mask) {
  int running = 0;
  curl_multi_socket_action(c->multi, fd, mask, &running);
  reap(c);
}

/* --- the actor ----------------------------------------------------------------------------------------- */

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
  if (c->x == NULL || c->multi == NULL) {
    if (c->multi)
      curl_multi_cleanup(c->multi);
    free(c->x);
    c->x = NULL;
    return BW_ENOMEM;
  }
  for (uint32_t i = 0; i < c->nslots; i++) {
    c->x[i].c = c;
    c->x[i].id = i;
    c->x[i].next = i + 1 < c->nslots ? i + 1 : NONE;
  }
  c->free_head = 0;
  c->qhead = c->qtail = NONE;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->o.max_per_host);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)h->o.max_per_host * 4);
  /* the policy's own breaker needs its actor to change state (the
   * executor form starts it the same way); it stays with the policy */
  bw_breaker_t *br = h->o.policy ? bw_policy_breaker(h->o.policy) : NULL;
  if (br != NULL && bw_breaker_pid(br) == BW_PID_NONE) {
    int rc = bw_breaker_start(br);
    if (rc != 0 && rc != BW_EALREADY) {
      curl_multi_cleanup(c->multi);
      free(c->x);
      c->x = NULL;
      return rc;
    }
  }
  /* restarted: nothing is in flight any more */
  __atomic_store_n(&h->c[BW__HC_INFL], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->c[BW__HC_QUEUED], 0, __ATOMIC_RELAXED);
  /* release: pairs with bw_http_pid's acquire */
  __atomic_store_n(&h->pid, bw_self(ctx), __ATOMIC_RELEASE);
  return 0;
}

static void on_io(client *c, const bw_msg_t *msg) {
  const bw_io_event_t *ev = msg->data;
  sock *s = ev->ud;
  int mask = (ev->events & BW_IO_IN ? CURL_CSELECT_IN : 0) |
             (ev->events & BW_IO_OUT ? CURL_CSELECT_OUT : 0) |
             (ev->events & (BW_IO_ERR | BW_IO_HUP) ? CURL_CSELECT_ERR : 0);
  c->cur = s;
  action(c, ev->fd, mask);
  /* one-shot: re-arm what curl still wants of this socket */
  if (c->cur == s && s->want != 0)
    (void)bw_io_arm(c->ctx, s->w, s->want);
  c->cur = NULL;
}

/* The requester is gone or asked to stop: the transfer stops, closing its
 * connection. */
static void drop(client *c, xfer *t, bool reply) {
  bw__http_cnt(c->h, BW__HC_CANCEL, 1);
  answer(c, t, BW_ECANCELED, NULL, reply);
}

static int cl_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  client *c = state;
  c->ctx = ctx;
  xfer *t;
  switch (msg->type) {
  case BW_HTTP_MSG_REQUEST:
    on_request(c, msg);
    break;
  case BW_MSG_IO:
    on_io(c, msg);
    break;
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
  case MSG_DEADLINE:
    if ((t = slot_of(c, msg)) != NULL) {
      t->deadline = 0;
      if (t->in_policy && t->state == X_RUN)
        (void)bw_policy_exit(c->h->o.policy, &t->ticket, BW_ETIMEDOUT, NULL);
      answer(c, t, BW_ETIMEDOUT, NULL, true);
      run_queued(c);
    }
    break;
  case MSG_ATTEMPT:
    if ((t = slot_of(c, msg)) != NULL && t->state == X_RUN) {
      t->attempt = 0;
      attempt_done(c, t, BW_ETIMEDOUT, NULL);
      run_queued(c);
    }
    break;
  case MSG_WAKE:
    if ((t = slot_of(c, msg)) != NULL && t->state == X_WAIT) {
      t->wake = 0;
      attempt(c, t);
    }
    break;
  case BW_HTTP_MSG_ACK:
    if ((t = slot_of(c, msg)) != NULL && t->unacked > 0) {
      t->unacked--;
      if (t->paused && t->state == X_RUN && t->unacked < t->q->credit) {
        t->paused = false;
        /* curl hands the kept piece to on_stream now and asks for a
         * timer to go on reading */
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
        reap(c);
      }
    }
    break;
  case BW_HTTP_MSG_CANCEL: {
    uint64_t ref;
    if (msg->len != sizeof ref)
      break;
    memcpy(&ref, msg->data, sizeof ref);
    for (uint32_t i = 0; i < c->nslots; i++)
      if (c->x[i].state != X_FREE && c->x[i].req.ref == ref && c->x[i].req.from == msg->from) {
        drop(c, &c->x[i], true);
        run_queued(c);
        break;
      }
    break;
  }
  case BW_MSG_DOWN:
    /* a requester exited: its transfers stop, nothing is answered */
    for (uint32_t i = 0; i < c->nslots; i++)
      if (c->x[i].state != X_FREE && c->x[i].mon == msg->ref) {
        c->x[i].mon = 0; /* already gone: no demonitor */
        drop(c, &c->x[i], false);
      }
    run_queued(c);
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
    if (c->x[i].state != X_FREE)
      drop(c, &c->x[i], true);
}

/* Runs however the actor ends (a kill too): frees curl's handles. The
 * runtime has removed the watches already; curl closes its sockets. */
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
    bw_timer_t *tms[] = {&t->deadline, &t->attempt, &t->wake};
    for (int k = 0; k < 3; k++)
      if (*tms[k])
        (void)bw_timer_cancel(c->rt, *tms[k]);
    if (t->state == X_RUN)
      curl_multi_remove_handle(c->multi, t->easy);
    if (t->easy)
      curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    bw_http_req_free(t->q);
    bufs_free(t);
  }
  curl_multi_cleanup(c->multi);
  while (c->socks) {
    sock *s = c->socks;
    c->socks = s->next;
    free(s);
  }
  free(c->x);
  c->x = NULL;
  __atomic_store_n(&h->c[BW__HC_INFL], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->c[BW__HC_QUEUED], 0, __ATOMIC_RELAXED);
  /* release: pairs with bw_http_pid's acquire */
  __atomic_store_n(&h->pid, BW_PID_NONE, __ATOMIC_RELEASE);
}

const bw_behaviour_t bw_http_behaviour = {
    .name = "http_client",
    .state_size = sizeof(client),
    .init = cl_init,
    .handle = cl_handle,
    .terminate = cl_terminate,
    .cleanup = cl_cleanup,
    .never_muted = true, /* it answers many requesters: never frozen by one */
};
