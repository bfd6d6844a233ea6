/*
 * The HTTP client's side facing libcurl: the buffers its data callbacks
 * fill (a body, headers, or a streamed body's chunks), an easy handle set
 * up for a request, what a curl result means in bulwark's codes, the
 * response taken from a finished transfer, and the socket and timer
 * callbacks that turn curl's wishes into watches (bulwark/io.h) and one
 * runtime timer. The actor that owns the multi handle is patterns/http.c.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/io.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/http_actor.h"

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

void bw__http_bufs_free(xfer *t) {
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

int bw__http_status_of_curl(CURLcode rc, const xfer *t) {
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
bw_http_resp_t *bw__http_take_response(client *c, xfer *t, int *st) {
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
  bw__http_cnt(c->h, t->row, BW__HC_TX, (uint64_t)up);
  bw__http_cnt(c->h, t->row, BW__HC_RX, (uint64_t)down);
  if (code >= 200 && code < 600)
    bw__http_cnt(c->h, t->row, BW__HC_2XX + (int)(code / 100) - 2, 1);
  return r;
}

int bw__http_setup_easy(client *c, xfer *t) {
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
  SET(CURLOPT_CLOSESOCKETFUNCTION, bw__http_on_close);
  SET(CURLOPT_CLOSESOCKETDATA, (void *)c);
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
  if ((uint32_t)s->fd < c->nbyfd && c->byfd[s->fd] == s)
    c->byfd[s->fd] = NULL;
  if (c->cur == s)
    c->cur = NULL;
}

/* The watch of fd kept from an earlier transfer, or NULL. */
static sock *sock_of(client *c, curl_socket_t fd) {
  return fd >= 0 && (uint32_t)fd < c->nbyfd ? c->byfd[fd] : NULL;
}

/* Records s under its descriptor; -1 if the table cannot grow. */
static int sock_index(client *c, sock *s) {
  uint32_t fd = (uint32_t)s->fd;
  if (fd >= c->nbyfd) {
    uint32_t n = c->nbyfd ? c->nbyfd : 64;
    while (n <= fd && n < (1u << 24))
      n *= 2;
    if (n <= fd)
      return -1;
    sock **t = realloc(c->byfd, n * sizeof *t);
    if (t == NULL)
      return -1;
    memset(t + c->nbyfd, 0, (n - c->nbyfd) * sizeof *t);
    c->byfd = t;
    c->nbyfd = n;
  }
  c->byfd[fd] = s;
  return 0;
}

static void sock_drop(client *c, sock *s) {
  (void)bw_io_unwatch(c->ctx, s->w);
  sock_unlink(c, s);
  free(s);
}

static sock *sock_new(client *c, curl_socket_t fd, uint32_t want) {
  sock *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->fd = fd;
  if (bw_io_watch(c->ctx, fd, want, 0, s, &s->w) != 0) {
    free(s);
    return NULL;
  }
  s->next = c->socks;
  if (c->socks)
    c->socks->prev = s;
  c->socks = s;
  if (sock_index(c, s) != 0) {
    sock_drop(c, s);
    return NULL;
  }
  return s;
}

/* curl's CURLMOPT_SOCKETFUNCTION. A socket curl stops watching between
 * transfers keeps its watch, disarmed (free: one-shot watches are disabled
 * once they fired), so the next transfer on the kept-alive connection
 * re-arms it (one epoll_ctl) instead of a new watch and a removal per
 * request; curl's close of the socket removes it (bw__http_on_close). */
int bw__http_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp) {
  (void)e;
  client *c = ud;
  sock *s = sp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      s->want = 0;
      if (bw_io_arm(c->ctx, s->w, 0) != 0)
        sock_drop(c, s); /* gone already: forget it */
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  uint32_t want = interest(what);
  if (s == NULL && (s = sock_of(c, fd)) != NULL) {
    s->want = want;
    if (bw_io_arm(c->ctx, s->w, want) == 0) {
      curl_multi_assign(c->multi, fd, s);
      return 0;
    }
    sock_drop(c, s); /* a stale watch of a closed descriptor: a new one */
    s = NULL;
  }
  if (s == NULL) {
    if ((s = sock_new(c, fd, want)) == NULL)
      return -1;
    s->want = want;
    curl_multi_assign(c->multi, fd, s);
    return 0;
  }
  s->want = want;
  return bw_io_arm(c->ctx, s->w, want) == 0 ? 0 : -1;
}

/* curl's CURLOPT_CLOSESOCKETFUNCTION: the watch goes before the socket. */
int bw__http_on_close(void *ud, curl_socket_t fd) {
  client *c = ud;
  sock *s = c->closing ? NULL : sock_of(c, fd);
  if (s != NULL)
    sock_drop(c, s);
  return close(fd);
}

/* curl wants to be called after timeout_ms (-1: no timer), replacing what
 * it asked before. curl changes its mind several times per request (0 when
 * a transfer is added, its connection timeout, -1 when done), so the
 * runtime timer is not cancelled and re-armed each time: a timeout of 0 is
 * a call at the end of the current handler (bw__http_tick_now); a later
 * time leaves an earlier armed timer alone (when it fires it arms again
 * for what curl wants then, see bw__http_on_tick); only an earlier time
 * arms a new one. In steady traffic that is one timer per timeout period,
 * not three timer operations per request. */
int bw__http_on_timer(CURLM *m, long timeout_ms, void *ud) {
  (void)m;
  client *c = ud;
  if (timeout_ms < 0) {
    c->tick_due_ns = 0;
    c->tick_now = false;
    return 0;
  }
  if (timeout_ms == 0) {
    c->tick_due_ns = 0;
    c->tick_now = true;
    return 0;
  }
  c->tick_now = false;
  uint64_t due = bw_now_ns(c->rt) + (uint64_t)timeout_ms * 1000000ull;
  c->tick_due_ns = due;
  if (c->tick_armed_ns != 0 && c->tick_armed_ns <= due)
    return 0;
  return bw__http_arm_tick(c, (uint64_t)timeout_ms) == 0 ? 0 : -1;
}

/* Arms the one runtime timer for curl ms from now (replacing the armed
 * one); 0 is a message to itself. */
int bw__http_arm_tick(client *c, uint64_t ms) {
  bw__http_cancel_timer(c, &c->tick_timer);
  uint64_t gen = ++c->tick_gen;
  c->tick_armed_ns = bw_now_ns(c->rt) + ms * 1000000ull;
  int rc = ms == 0 ? bw_send(c->rt, bw_self(c->ctx), MSG_TICK, &gen, sizeof gen)
                   : bw_send_after(c->rt, bw_self(c->ctx), ms, MSG_TICK, &gen, sizeof gen,
                                   &c->tick_timer);
  if (rc != 0)
    c->tick_armed_ns = 0;
  return rc;
}

