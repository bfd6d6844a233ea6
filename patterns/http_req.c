/*
 * The HTTP client's requests and responses: building a request, reading a
 * response's headers, and what a status means to the resilience patterns
 * (include/bulwark/http.h; the client actor is patterns/http.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bulwark/error.h"
#include "bulwark/breaker.h"
#include "bulwark/http.h"
#include "bulwark/policy.h"
#include "patterns/http_internal.h"

static bool method_ok(const char *m) {
  size_t n = 0;
  for (; m[n] != '\0'; n++)
    if (m[n] < 'A' || m[n] > 'Z')
      return false;
  return n > 0 && n <= 16;
}

static bool idempotent_method(const char *m) {
  static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(m, ok[i]) == 0)
      return true;
  return false;
}

bw_http_req_t *bw_http_req_new(const char *method, const char *url) {
  if (method == NULL || url == NULL || !method_ok(method) ||
      (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
    return NULL;
  for (const char *p = url; *p; p++)
    if (*p == '\r' || *p == '\n' || *p == ' ')
      return NULL;
  bw_http_req_t *q = calloc(1, sizeof *q);
  if (q == NULL)
    return NULL;
  q->url = strdup(url);
  if (q->url == NULL) {
    free(q);
    return NULL;
  }
  strcpy(q->method, method);
  q->idempotent = idempotent_method(method);
  return q;
}

int bw_http_req_header(bw_http_req_t *q, const char *line) {
  if (q == NULL || line == NULL || strchr(line, ':') == NULL || line[0] == ':' ||
      strpbrk(line, "\r\n") != NULL)
    return BW_EINVAL;
  char **nh = realloc(q->headers, (q->nheaders + 1) * sizeof *nh);
  if (nh == NULL)
    return BW_ENOMEM;
  q->headers = nh;
  q->headers[q->nheaders] = strdup(line);
  if (q->headers[q->nheaders] == NULL)
    return BW_ENOMEM;
  q->nheaders++;
  return 0;
}

int bw_http_req_body(bw_http_req_t *q, const void *data, size_t len) {
  if (q == NULL || (data == NULL && len > 0))
    return BW_EINVAL;
  char *b = malloc(len + 1);
  if (b == NULL)
    return BW_ENOMEM;
  if (len > 0)
    memcpy(b, data, len);
  b[len] = '\0';
  free(q->body);
  q->body = b;
  q->body_len = len;
  q->has_body = true;
  return 0;
}

int bw_http_req_stream(bw_http_req_t *q, uint32_t credit) {
  if (q == NULL || credit == 0 || credit > BW_HTTP_CREDIT_MAX)
    return BW_EINVAL;
  q->credit = credit;
  return 0;
}

void bw_http_req_idempotent(bw_http_req_t *q, int yes) {
  if (q != NULL)
    q->idempotent = yes != 0;
}

int bw_http_req_is_idempotent(const bw_http_req_t *q) {
  return q != NULL && q->idempotent;
}

void bw_http_req_free(bw_http_req_t *q) {
  if (q == NULL)
    return;
  for (size_t i = 0; i < q->nheaders; i++)
    free(q->headers[i]);
  free(q->headers);
  free(q->body);
  free(q->url);
  free(q);
}

void bw__http_req_dtor(void *q) {
  bw_http_req_free(q);
}

/* --- responses --------------------------------------------------------------- */

int bw_http_resp_header(const bw_http_resp_t *r, const char *name, char *buf, size_t cap) {
  if (r == NULL || name == NULL || (buf == NULL && cap > 0))
    return BW_EINVAL;
  size_t nl = strlen(name);
  const char *p = r->headers, *end = r->headers ? r->headers + r->headers_len : NULL;
  while (p != NULL && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    if ((size_t)(le - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl + 1;
      while (v < le && (*v == ' ' || *v == '\t'))
        v++;
      const char *ve = le;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      size_t n = (size_t)(ve - v);
      if (cap > 0) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, v, k);
        buf[k] = '\0';
      }
      return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
    }
    p = eol ? eol + 1 : end;
  }
  return BW_ENOTFOUND;
}

void bw_http_resp_free(bw_http_resp_t *r) {
  if (r == NULL)
    return;
  free(r->headers);
  free(r->body);
  free(r);
}

void bw_http_resp_dtor(void *r) {
  bw_http_resp_free(r);
}

int bw_http_is_failure(int status) {
  switch (status) {
  case BW_EHTTP_SERVER:
  case BW_ETIMEDOUT:
  case BW_ECONNREFUSED:
  case BW_EDNS:
  case BW_ETLS:
  case BW_EPROTO:
    return 1;
  default:
    return 0;
  }
}

/* The status a response code gives (http.h's table). */
int bw__http_status_of(long code, uint64_t retry_after_ms) {
  (void)retry_after_ms; /* a 5xx is a failure even when it says when to come back */
  if (code == 429)
    return BW_EHTTP_THROTTLED;
  if (code >= 500)
    return BW_EHTTP_SERVER;
  return 0;
}

int bw_http_classify(int status, void *arg) {
  (void)arg;
  if (bw_http_is_failure(status))
    return BW_BREAKER_FAILURE;
  if (status == BW_EHTTP_THROTTLED || status == BW_ECANCELED)
    return BW_BREAKER_IGNORED;
  return BW_BREAKER_SUCCESS;
}

bool bw_http_retryable(int status, void *arg) {
  (void)arg;
  switch (status) {
  case BW_EHTTP_SERVER:
  case BW_EHTTP_THROTTLED:
  case BW_ETIMEDOUT:
  case BW_ECONNREFUSED:
  case BW_ECONNRESET:
  case BW_EPROTO:
    return true;
  default:
    return false;
  }
}

int bw_http_policy_preset(const char *name, bw_policy_opts_t *o) {
  int rc = bw_policy_preset(name, o);
  if (rc != 0)
    return rc;
  o->breaker_opts.classify = bw_http_classify;
  o->breaker_opts.classify_arg = NULL;
  o->retryable = bw_http_retryable;
  o->retryable_arg = NULL;
  /* the in-caller form sends nothing to a target, but a policy must name
   * one: the client's conventional name */
  if (o->target == BW_PID_NONE && o->target_name == NULL)
    o->target_name = "http";
  return 0;
}
