/*
 * The HTTP client's handle: options, lifecycle (new, child_spec, start,
 * stop, destroy, pid, stats) and the two ways to send a request. The actor
 * that does the transfers is patterns/http.c.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/runtime.h"
#include "patterns/http_internal.h"

#define IN_FLIGHT_MAX 65536u

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;
static void curl_once(void) {
  g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}
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
  free(h->rows);
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
  /* the per-host table, whole: requests never allocate for it */
  h->rows = calloc(BW_HTTP_HOSTS_MAX + 1u, sizeof *h->rows);
  if (h->rows == NULL)
    bad = true;
  else
    snprintf(h->rows[BW__HTTP_OTHER].key, sizeof h->rows[0].key, "%s", BW_HTTP_HOST_OTHER);
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
  return h == NULL ? BW_PID_NONE : bw__ld64_acq(&h->pid);
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
  bw__http_stats_fill(h->c, out);
  return 0;
}

const char *bw_http_name(const bw_http_t *h) {
  return h == NULL ? NULL : h->name;
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
  if (q == NULL || out == NULL || q->credit != 0) {
    bw_http_req_free(q); /* a stream needs an actor to receive its chunks */
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

int bw_http_ack(bw_ctx_t *ctx, bw_pid_t client_pid, const bw_http_chunk_t *c) {
  if (ctx == NULL || c == NULL)
    return BW_EINVAL;
  return bw_send(bw_ctx_runtime(ctx), client_pid, BW_HTTP_MSG_ACK, &c->token, sizeof c->token);
}
