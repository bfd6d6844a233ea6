/* The HTTP client's shared internals (patterns/http*.c). */
#ifndef BULWARK_PATTERNS_HTTP_INTERNAL_H
#define BULWARK_PATTERNS_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/http.h"
#include "bulwark/policy.h"

struct bw_http_req {
  char method[17];
  char *url;
  char **headers;
  size_t nheaders;
  char *body;
  size_t body_len;
  bool has_body;
  bool idempotent;
  uint64_t timeout_ms; /* set by bw_http_request / bw_http_call */
  uint32_t credit;     /* streamed: chunks unacknowledged at most; 0 = not streamed */
};

/* The handle (patterns/http_client.c); the actor (patterns/http.c) reads
 * its options and writes its counters. */
struct bw_http {
  bw_runtime_t *rt;
  bw_http_opts_t o; /* strings point into the copies below */
  char name[32];
  char *ca_file, *ca_path, *client_cert, *client_key, *user_agent;
  char *auth;       /* "Authorization: Bearer ..." or NULL; never printed */
  bw_pid_t pid;     /* release/acquire: see bw_http_pid */
  bool started_here;
  /* counters: written by the actor only, read anywhere; relaxed, since each
   * is read on its own for monitoring and nothing is published through it */
  uint64_t c[24];
};

enum {
  BW__HC_REQ, BW__HC_2XX, BW__HC_3XX, BW__HC_4XX, BW__HC_5XX, BW__HC_THR, BW__HC_TMO,
  BW__HC_CANCEL, BW__HC_CONN, BW__HC_DNS, BW__HC_TLS, BW__HC_PROTO, BW__HC_BIG, BW__HC_QFULL,
  BW__HC_INFL, BW__HC_QUEUED, BW__HC_TX, BW__HC_RX, BW__HC_RETRY, BW__HC_FALLBACK,
  BW__HC_REFUSED, BW__HC__N
};
_Static_assert(BW__HC__N <= 24, "the handle's counter array");

static inline void bw__http_cnt(bw_http_t *h, int i, uint64_t n) {
  /* one writer (the actor): a relaxed load and store, no locked add */
  __atomic_store_n(&h->c[i], __atomic_load_n(&h->c[i], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void bw__http_req_dtor(void *q);
/* The reply status of a response code (http.h's table). */
int bw__http_status_of(long code, uint64_t retry_after_ms);

#endif
