/* The HTTP client's shared internals (patterns/http*.c). */
#ifndef BULWARK_PATTERNS_HTTP_INTERNAL_H
#define BULWARK_PATTERNS_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/http.h"
#include "bulwark/policy.h"
#include "runtime/atomic.h"
#include "runtime/histogram.h"

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

/* A host's row (patterns/http_hosts.c): its key, counters and latencies. */
typedef struct bw__http_row {
  char key[BW_HTTP_HOST_KEY_MAX]; /* written once, before the row is published */
  uint64_t hash;                  /* of key: the actor's lookup only */
  uint64_t c[24];                 /* as bw_http's c[], for this host */
  uint64_t lat[BW__HIST_CELLS];   /* answered requests' latency (ns): buckets, sum, max */
} bw__http_row_t;

/* The "other" row's index: after the named ones. */
#define BW__HTTP_OTHER BW_HTTP_HOSTS_MAX

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
  /* per host: BW_HTTP_HOSTS_MAX named rows, then "other"; allocated by
   * bw_http_new, so the request path never allocates for them */
  bw__http_row_t *rows;
  /* named rows in use: the actor publishes a row with a release store,
   * readers load it with acquire (patterns/http_hosts.c) */
  uint32_t nrows;
};

enum {
  BW__HC_REQ, BW__HC_2XX, BW__HC_3XX, BW__HC_4XX, BW__HC_5XX, BW__HC_THR, BW__HC_TMO,
  BW__HC_CANCEL, BW__HC_CONN, BW__HC_DNS, BW__HC_TLS, BW__HC_PROTO, BW__HC_BIG, BW__HC_QFULL,
  BW__HC_INFL, BW__HC_QUEUED, BW__HC_TX, BW__HC_RX, BW__HC_RETRY, BW__HC_FALLBACK,
  BW__HC_REFUSED, BW__HC__N
};
_Static_assert(BW__HC__N <= 24, "the handle's counter array");
_Static_assert(BW_HTTP_LATENCY_BUCKETS == BW__HIST_BUCKETS, "http.h's buckets are the runtime's");
_Static_assert(BW_HTTP_HOST_KEY_MAX > sizeof BW_HTTP_HOST_OTHER, "the other row's name fits");

static inline void bw__http_add(uint64_t *c, uint64_t n) {
  /* one writer (the actor): a relaxed load and store, no locked add;
   * readers load relaxed, since nothing is published through a counter */
  bw__st64_rlx(c, bw__ld64_rlx(c) + n);
}

/* Counts n in counter i, process-wide and in the host's row. */
static inline void bw__http_cnt(bw_http_t *h, uint32_t row, int i, uint64_t n) {
  bw__http_add(&h->c[i], n);
  bw__http_add(&h->rows[row].c[i], n);
}

/* patterns/http_hosts.c */
/* The host key of url (http.h's form) into out (cap bytes). Returns false
 * if it did not fit: out then holds a cut, terminated key. */
bool bw__http_host_key(const char *url, char *out, size_t cap);
/* The row for a key (from the actor only): its own, a new one while there
 * is room, else BW__HTTP_OTHER (so also when the key did not fit). */
uint32_t bw__http_row_of(bw_http_t *h, const char *key, bool fits);
/* Records an answered request's latency in its row (the actor only). */
void bw__http_latency(bw_http_t *h, uint32_t row, uint64_t ns);
/* Nothing in flight or queued any more (the actor starts or ends). */
void bw__http_idle(bw_http_t *h);
/* bw_http_stats_t from a counter array (the handle's or a row's). */
void bw__http_stats_fill(const uint64_t *c, bw_http_stats_t *out);

void bw__http_req_dtor(void *q);
/* The reply status of a response code (http.h's table). */
int bw__http_status_of(long code, uint64_t retry_after_ms);

#endif
