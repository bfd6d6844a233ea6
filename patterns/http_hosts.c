/*
 * The HTTP client's per-host accounting (include/bulwark/http.h, "Per-host
 * statistics"): a request's host key, the table of rows the client actor
 * counts into, and the lock-free read of it from any thread.
 *
 * The table is fixed: BW_HTTP_HOSTS_MAX named rows and one "other" row,
 * allocated by bw_http_new. A host gets a named row the first time it is
 * seen, while there is one free, and keeps it for the handle's life;
 * later hosts count in "other". Rejected: evicting the least used host to
 * make room, because a reader could see a row's key change under its
 * counters, and an evicted host's Prometheus counters would go back to 0
 * (a counter reset for every scraper); and growing the table, which a
 * stream of hostile URLs would grow without bound.
 *
 * One writer, the client actor (a restarted one follows its predecessor's
 * end), so counters are a relaxed load and store; readers load each value
 * relaxed, since nothing is published through a counter. A named row is
 * published by the count of rows in use: its key is written first, then
 * the count is stored with release, and readers load the count with
 * acquire, so the key of every row below it is complete (keys never
 * change afterwards).
 */
#include <stdio.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "patterns/http_internal.h"

/* --- the key ------------------------------------------------------------------------------- */

typedef struct keybuf {
  char *p;
  size_t len, cap;
  bool cut;
} keybuf;

static void put(keybuf *k, const char *s, size_t n) {
  for (size_t i = 0; i < n && !k->cut; i++) {
    unsigned char c = (unsigned char)s[i];
    char enc[4];
    size_t m = 1;
    if (c >= 'A' && c <= 'Z') {
      enc[0] = (char)(c + 32);
    } else if (c < 0x21 || c > 0x7e) {
      /* a label value must be valid UTF-8 and printable in logs */
      snprintf(enc, sizeof enc, "%%%02X", c);
      m = 3;
    } else {
      enc[0] = (char)c;
    }
    if (k->len + m >= k->cap) {
      k->cut = true;
      return;
    }
    memcpy(k->p + k->len, enc, m);
    k->len += m;
    k->p[k->len] = '\0';
  }
}

static bool all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return n > 0;
}

bool bw__http_host_key(const char *url, char *out, size_t cap) {
  if (cap == 0)
    return false;
  keybuf k = {.p = out, .cap = cap};
  out[0] = '\0';
  const char *sep = strstr(url, "://");
  const char *scheme = url, *auth = sep ? sep + 3 : url;
  size_t slen = sep ? (size_t)(sep - url) : 0;
  size_t alen = strcspn(auth, "/?#");
  /* no credentials in a key: they would end up in metrics */
  for (size_t i = alen; i > 0; i--)
    if (auth[i - 1] == '@') {
      alen -= i;
      auth += i;
      break;
    }
  /* host, then an optional :port; an IPv6 literal keeps its brackets */
  size_t hlen = alen;
  if (alen > 0 && auth[0] == '[') {
    const char *rb = memchr(auth, ']', alen);
    hlen = rb ? (size_t)(rb - auth) + 1 : alen;
  } else {
    const char *colon = memchr(auth, ':', alen);
    hlen = colon ? (size_t)(colon - auth) : alen;
  }
  const char *port = auth + hlen;
  size_t plen = alen - hlen;
  if (plen > 0 && port[0] == ':')
    port++, plen--;
  put(&k, scheme, slen);
  put(&k, "://", 3);
  put(&k, auth, hlen);
  put(&k, ":", 1);
  if (plen == 0) {
    bool tls = slen == 5 && (scheme[4] == 's' || scheme[4] == 'S');
    put(&k, tls ? "443" : "80", tls ? 3 : 2);
  } else if (all_digits(port, plen) && plen <= 5) {
    unsigned long v = 0; /* "080" and "80" are one port */
    for (size_t i = 0; i < plen; i++)
      v = v * 10u + (unsigned long)(port[i] - '0');
    char num[8];
    int n = snprintf(num, sizeof num, "%lu", v);
    put(&k, num, (size_t)n);
  } else {
    put(&k, port, plen);
  }
  return !k.cut;
}

/* --- the table (the actor writes) ---------------------------------------------------------- */

static uint64_t fnv1a(const char *s) {
  uint64_t x = 1469598103934665603ull;
  for (; *s; s++)
    x = (x ^ (unsigned char)*s) * 1099511628211ull;
  return x;
}

/* O(rows in use): at most 64 hash compares per request, cheaper than the
 * URL parse before it; a hash index was not worth its code. */
uint32_t bw__http_row_of(bw_http_t *h, const char *key, bool fits) {
  if (!fits)
    return BW__HTTP_OTHER;
  uint64_t x = fnv1a(key);
  /* relaxed: the actor is the only writer of nrows */
  uint32_t n = bw__ld32_rlx(&h->nrows);
  for (uint32_t i = 0; i < n; i++)
    if (h->rows[i].hash == x && strcmp(h->rows[i].key, key) == 0)
      return i;
  if (n == BW_HTTP_HOSTS_MAX)
    return BW__HTTP_OTHER;
  bw__http_row_t *r = &h->rows[n];
  snprintf(r->key, sizeof r->key, "%s", key);
  r->hash = x;
  /* release: the key is complete before a reader can see the row */
  bw__st32_rel(&h->nrows, n + 1);
  return n;
}

void bw__http_latency(bw_http_t *h, uint32_t row, uint64_t ns) {
  bw__hist_record_1w(h->rows[row].lat, ns);
}

void bw__http_idle(bw_http_t *h) {
  /* relaxed, as every counter: a reader wants the value, no order */
  bw__st64_rlx(&h->c[BW__HC_INFL], 0);
  bw__st64_rlx(&h->c[BW__HC_QUEUED], 0);
  for (uint32_t i = 0; i <= BW__HTTP_OTHER; i++) {
    bw__st64_rlx(&h->rows[i].c[BW__HC_INFL], 0);
    bw__st64_rlx(&h->rows[i].c[BW__HC_QUEUED], 0);
  }
}

/* --- reading (any thread) ------------------------------------------------------------------- */

void bw__http_stats_fill(const uint64_t *c, bw_http_stats_t *out) {
  uint64_t v[BW__HC__N];
  for (int i = 0; i < BW__HC__N; i++)
    v[i] = bw__ld64_rlx(&c[i]); /* relaxed: each counter on its own */
  *out = (bw_http_stats_t){
      .requests = v[BW__HC_REQ], .responses_2xx = v[BW__HC_2XX], .responses_3xx = v[BW__HC_3XX],
      .responses_4xx = v[BW__HC_4XX], .responses_5xx = v[BW__HC_5XX],
      .throttled = v[BW__HC_THR], .timeouts = v[BW__HC_TMO], .cancels = v[BW__HC_CANCEL],
      .conn_errors = v[BW__HC_CONN], .dns_errors = v[BW__HC_DNS], .tls_errors = v[BW__HC_TLS],
      .proto_errors = v[BW__HC_PROTO], .too_big = v[BW__HC_BIG], .queue_full = v[BW__HC_QFULL],
      .in_flight = v[BW__HC_INFL], .queued = v[BW__HC_QUEUED], .bytes_sent = v[BW__HC_TX],
      .bytes_received = v[BW__HC_RX], .retries = v[BW__HC_RETRY],
      .fallbacks = v[BW__HC_FALLBACK], .refused = v[BW__HC_REFUSED]};
}

static void row_read(const bw__http_row_t *r, const char *name, bw_http_host_stats_t *out) {
  snprintf(out->host, sizeof out->host, "%s", name);
  bw__http_stats_fill(r->c, &out->stats);
  uint64_t count = 0;
  for (unsigned b = 0; b < BW__HIST_BUCKETS; b++) {
    out->latency[b] = bw__ld64_rlx(&r->lat[b]); /* relaxed: see bw__hist_record_1w */
    count += out->latency[b];
  }
  out->latency_count = count;
  out->latency_sum_ns = bw__ld64_rlx(&r->lat[BW__HIST_SUM]);
  out->latency_max_ns = bw__ld64_rlx(&r->lat[BW__HIST_MAX]);
}

int bw_http_host_stats(const bw_http_t *h, bw_http_host_stats_t *out, size_t cap, size_t *n) {
  if (h == NULL || n == NULL || (out == NULL && cap > 0))
    return BW_EINVAL;
  /* acquire: pairs with bw__http_row_of's release; the keys below it are whole */
  uint32_t named = bw__ld32_acq(&h->nrows);
  const bw__http_row_t *other = &h->rows[BW__HTTP_OTHER];
  /* every request counts in requests first, so "other" is in use iff that is */
  bool with_other = bw__ld64_rlx(&other->c[BW__HC_REQ]) != 0;
  size_t total = named + (with_other ? 1u : 0u), k = 0;
  for (uint32_t i = 0; i < named && k < cap; i++, k++)
    row_read(&h->rows[i], h->rows[i].key, &out[k]);
  if (with_other && k < cap)
    row_read(other, BW_HTTP_HOST_OTHER, &out[k]);
  *n = total;
  return total > cap ? BW_ETOOBIG : 0;
}
