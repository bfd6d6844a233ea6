/*
 * bulwark: the HTTP client, a pattern actor on libcurl's multi interface,
 * driven by the runtime's I/O and timers (no thread per request).
 *
 * Requests are messages; the answer is a reply. From an actor:
 *
 *   bw_http_req_t *q = bw_http_req_new("POST", "http://127.0.0.1:8000/v1/chat/completions");
 *   bw_http_req_header(q, "Content-Type: application/json");
 *   bw_http_req_body(q, json, strlen(json));
 *   uint64_t ref;
 *   bw_http_request(ctx, client, q, 5000, &ref);     // q is the client's now
 *   ...
 *   // later, in the handler: msg->type == BW_HTTP_MSG_RESPONSE, msg->ref == ref
 *   bw_http_resp_t *r = bw_msg_take(ctx, msg);      // NULL when the transfer failed
 *   ... msg->status, r->code, r->body, r->body_len ...
 *   bw_http_resp_free(r);
 *
 * From main() or another plain thread, bw_http_call blocks for the answer.
 *
 * The reply's status says how the exchange went, in the terms the
 * resilience patterns use (a policy's target can be the client, see
 * policy.h):
 *   0                    a response with code 1xx-4xx other than 429
 *   BW_EHTTP_SERVER      a 5xx response (attached; a Retry-After in it,
 *                        as a 503 may have, is honoured as for 429)
 *   BW_EHTTP_THROTTLED   429 (attached; its retry_after_ms says for how
 *                        long), or the host is held by an earlier
 *                        Retry-After past this request's deadline
 *   BW_ETIMEDOUT         the request's deadline passed: the transfer was
 *                        stopped and its connection closed
 *   BW_ECONNREFUSED      nobody listens there, or the connection was reset
 *   BW_EDNS              the host name did not resolve
 *   BW_ETLS              the TLS handshake or the peer's certificate failed
 *   BW_EPROTO            the server broke HTTP (malformed or oversized
 *                        headers, bad chunked encoding, closed mid-body)
 *   BW_ETOOBIG           the body passed max_body
 *   BW_ELIMIT            the client's queue was full (not sent)
 *   BW_ECANCELED         the client stopped before the transfer ended
 * Errors other than 0, BW_EHTTP_SERVER and BW_EHTTP_THROTTLED come with no
 * response (the moved payload is NULL).
 */
#ifndef BULWARK_HTTP_H
#define BULWARK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "bulwark/actor.h"
#include "bulwark/message.h"
#include "bulwark/policy.h"
#include "bulwark/supervisor.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types (the client's range). */
#define BW_HTTP_MSG_REQUEST (BW_MSG_HTTP_BASE + 0u)  /* requester -> client */
#define BW_HTTP_MSG_RESPONSE (BW_MSG_HTTP_BASE + 1u) /* the reply's type */
#define BW_HTTP_MSG_CANCEL (BW_MSG_HTTP_BASE + 2u)   /* requester -> client: ref */
#define BW_HTTP_MSG_CHUNK (BW_MSG_HTTP_BASE + 3u)    /* client -> requester: bw_http_chunk_t */
#define BW_HTTP_MSG_ACK (BW_MSG_HTTP_BASE + 4u)      /* requester -> client (bw_http_ack) */

/* --- Requests -------------------------------------------------------------- */

typedef struct bw_http_req bw_http_req_t;

/* A request (method "GET", "POST", ...; url http:// or https://). NULL on
 * bad arguments (NULL, empty, a method with other than A-Z) or no memory. */
bw_http_req_t *bw_http_req_new(const char *method, const char *url);
/* Adds a header line "Name: value" (copied). Returns 0, BW_EINVAL (NULL,
 * no colon, a CR or LF in it), BW_ENOMEM. */
int bw_http_req_header(bw_http_req_t *q, const char *line);
/* Sets the body (copied). Returns 0, BW_EINVAL, BW_ENOMEM. */
int bw_http_req_body(bw_http_req_t *q, const void *data, size_t len);
/* Streams the response body: instead of one body in the reply, it arrives
 * as BW_HTTP_MSG_CHUNK messages (moved bw_http_chunk_t, in order, before
 * the reply) and the reply's response has body_len 0 and chunks = their
 * number. Each chunk must be acknowledged with bw_http_ack; with credit
 * chunks unacknowledged the client stops reading the socket (TCP's window
 * then slows the server) until an ack comes. Credit 1..BW_HTTP_CREDIT_MAX.
 * Only from an actor (bw_http_request); a streamed request is not retried
 * once a chunk was delivered. Returns 0, BW_EINVAL. */
#define BW_HTTP_CREDIT_MAX 1024u
int bw_http_req_stream(bw_http_req_t *q, uint32_t credit);
/* Marks a non-idempotent request (POST, PATCH) as safe to retry. GET,
 * HEAD, OPTIONS, PUT and DELETE are idempotent already. */
void bw_http_req_idempotent(bw_http_req_t *q, int yes);
/* True if the request may be retried (idempotent method, or marked). */
int bw_http_req_is_idempotent(const bw_http_req_t *q);
/* Frees a request that was not sent. NULL is a no-op. */
void bw_http_req_free(bw_http_req_t *q);

/* --- Responses --------------------------------------------------------------- */

typedef struct bw_http_resp {
  long code;               /* 200, 404, 503, ... */
  uint64_t retry_after_ms; /* from Retry-After (seconds or a date); 0 = none */
  char *headers;           /* the response's header lines, CRLF-separated */
  size_t headers_len;
  char *body;              /* NUL-terminated for convenience; body_len excludes it */
  size_t body_len;
  uint64_t elapsed_us;     /* request sent to last byte, the runtime's clock */
  uint64_t chunks;         /* streamed: the chunks delivered before this reply */
} bw_http_resp_t;

/* A piece of a streamed body (bw_http_req_stream): take it with
 * bw_msg_take and free() it, or leave it to the runtime; ack it either way. */
typedef struct bw_http_chunk {
  uint64_t ref;    /* the request's ref (bw_http_request's *ref) */
  uint64_t seq;    /* 0, 1, 2, ... */
  uint64_t token;  /* what bw_http_ack sends back */
  size_t len;
  char data[];     /* len bytes, then a NUL */
} bw_http_chunk_t;

/* Acknowledges a chunk (from the requester's handler): the client may
 * read on. Returns bw_send's codes. */
int bw_http_ack(bw_ctx_t *ctx, bw_pid_t client, const bw_http_chunk_t *c);

/* --- Server-sent events (text/event-stream), for streamed LLM answers ----------- */

/* A parser for the chunks of an event stream: feed it chunk bytes, take
 * whole events out. Caller-allocated; bw_sse_free releases its buffer. */
typedef struct bw_sse {
  char *buf;
  size_t len, cap, max;
} bw_sse_t;
/* max: the longest event kept (bytes); a longer one is BW_ETOOBIG. */
void bw_sse_init(bw_sse_t *p, size_t max);
/* Returns 0, BW_ETOOBIG (an event longer than max: the buffer is dropped),
 * BW_ENOMEM, BW_EINVAL. */
int bw_sse_feed(bw_sse_t *p, const void *data, size_t len);
/* The next whole event's data (its "data:" lines joined by \n, without
 * the prefix; comments and other fields skipped), NUL-terminated in out
 * (cut to cap-1). Returns its full length, 0 when no whole event waits
 * (an event with no data line is skipped), BW_EINVAL. */
int bw_sse_next(bw_sse_t *p, char *out, size_t cap);
void bw_sse_free(bw_sse_t *p);

/* The value of a response header (case-insensitive name), copied into buf
 * (NUL-terminated, cut to cap). Returns its full length, or BW_ENOTFOUND,
 * BW_EINVAL. */
int bw_http_resp_header(const bw_http_resp_t *r, const char *name, char *buf, size_t cap);
void bw_http_resp_free(bw_http_resp_t *r);
/* The dtor for a moved response, for bw_reply_move/bw_call's dtor. */
void bw_http_resp_dtor(void *r);

/* True for the statuses that a breaker should count as failures (5xx,
 * timeouts, connection, DNS, TLS and protocol errors). */
int bw_http_is_failure(int status);
/* A breaker classifier (bw_breaker_classify_fn) for HTTP statuses:
 * failures as bw_http_is_failure (a 503 too, Retry-After or not: the
 * service is down); throttling (429) and cancellations ignored (the server
 * is alive and said so); the rest successes. */
int bw_http_classify(int status, void *arg);
/* A retry predicate (bw_retry_pred_fn) for HTTP statuses: 5xx,
 * throttling, timeouts, refused or reset connections and protocol errors
 * are retried; DNS and TLS failures, 4xx and local refusals are not. */
bool bw_http_retryable(int status, void *arg);
/* Fills o with the policy preset name ("api", "ai", "external", ...; see
 * policy.h) adjusted for HTTP: the breaker's classifier and the retry
 * predicate above. Returns bw_policy_preset's codes. */
int bw_http_policy_preset(const char *name, bw_policy_opts_t *o);

/* --- The client ---------------------------------------------------------------- */

typedef struct bw_http_opts {
  const char *name;              /* for stats and metrics (copied); NULL = "http" */
  uint32_t max_in_flight;        /* transfers at once (default 256, max 65536) */
  uint32_t max_per_host;         /* connections to one host (default 16) */
  uint32_t max_queued;           /* requests waiting for a transfer slot (1024) */
  uint64_t default_timeout_ms;   /* for a request sent with timeout 0 (30000) */
  uint64_t connect_timeout_ms;   /* TCP + TLS handshake (10000) */
  size_t max_body;               /* bytes of a response body kept (16 MiB) */
  size_t max_header;             /* bytes of response headers kept (64 KiB) */
  /* TLS: a CA bundle file or directory instead of the system's, and a
   * client certificate and key (PEM). Verification is always on. */
  const char *ca_file, *ca_path, *client_cert, *client_key;
  /* A bearer token added to every request ("Authorization: Bearer ..."),
   * or the name of an environment variable that holds it (read at new).
   * Never logged, never in stats or errors. */
  const char *bearer_token;
  const char *bearer_token_env;
  const char *user_agent;        /* NULL = "bulwark/0.1" */
  /* A resilience policy around every request (policy.h's in-caller form,
   * run inside the client; caller-owned, must outlive the client): its
   * breaker, retry with backoff and budget, rate limit, attempt timeout
   * and fallback. Set its breaker's classify to bw_http_classify and its
   * retryable to bw_http_retryable (bw_http_policy_preset does both). Only
   * idempotent requests are retried; a retry after a response with
   * Retry-After (429, 503) waits at least that long, and new requests to
   * that host wait too
   * (or fail at once with BW_EHTTP_THROTTLED if the wait outlasts their
   * deadline). NULL = none. */
  bw_policy_t *policy;
} bw_http_opts_t;

void bw_http_opts_init(bw_http_opts_t *o);
/* Returns 0 or BW_EINVAL (NULL; limits of 0 or beyond the maxima; a token
 * env variable that is named but not set). */
int bw_http_opts_validate(const bw_http_opts_t *o);

typedef struct bw_http bw_http_t;

/* A client handle (no actor yet). Returns 0, BW_EINVAL, BW_ENOMEM,
 * BW_ENOTSUP (built without libcurl). */
int bw_http_new(bw_runtime_t *rt, const bw_http_opts_t *o, bw_http_t **out);
/* The client's behaviour (arg: the handle), to put it in a tree. */
extern const bw_behaviour_t bw_http_behaviour;
int bw_http_child_spec(bw_http_t *h, const char *id, bw_child_spec_t *out);
/* Unsupervised: spawns the actor (BW_EALREADY if one runs) / stops it
 * (waits; BW_EWOULDBLOCK from a handler; BW_ERUNNING if supervised). */
int bw_http_start(bw_http_t *h, bw_pid_t *out);
int bw_http_stop(bw_http_t *h);
/* Stops the actor if bw_http_start spawned it (waits) and frees the
 * handle. NULL is a no-op. Returns 0; BW_ERUNNING (a supervised actor
 * still runs: stop it through its supervisor first; nothing freed);
 * BW_EWOULDBLOCK (on a scheduler thread; nothing freed). */
int bw_http_destroy(bw_http_t *h);
/* The running actor's pid, or BW_PID_NONE. */
bw_pid_t bw_http_pid(const bw_http_t *h);

typedef struct bw_http_stats {
  uint64_t requests, responses_2xx, responses_3xx, responses_4xx, responses_5xx;
  uint64_t throttled, timeouts, cancels, conn_errors, dns_errors, tls_errors, proto_errors;
  uint64_t too_big, queue_full;
  uint64_t in_flight, queued;
  uint64_t bytes_sent, bytes_received;
  uint64_t retries;   /* attempts the policy retried */
  uint64_t fallbacks; /* requests the policy's fallback answered */
  uint64_t refused;   /* requests the policy refused (breaker open, rate, budget) */
} bw_http_stats_t;
/* The process-wide counters (each read on its own: the set is not an
 * atomic snapshot while requests run). Returns 0, BW_EINVAL, BW_ENOTSUP. */
int bw_http_stats(const bw_http_t *h, bw_http_stats_t *out);

/* The client's name (bw_http_opts.name, or "http"): what its metrics are
 * labelled with. NULL for NULL (and without libcurl). */
const char *bw_http_name(const bw_http_t *h);

/* --- Per-host statistics ----------------------------------------------------------- */

/* A request's host is the key "scheme://host:port" of its URL: scheme and
 * host in lower case, the port always written (80 or 443 when the URL has
 * none), no user, password, path or query; bytes outside printable ASCII
 * as %XX. The first BW_HTTP_HOSTS_MAX distinct hosts a client sees get a
 * row each, kept for the handle's life (its counters survive restarts of
 * the actor, like bw_http_stats'); later hosts, and keys longer than
 * BW_HTTP_HOST_KEY_MAX - 1 bytes, share one row named BW_HTTP_HOST_OTHER.
 * So a stream of hostile URLs costs no memory beyond the table, which is
 * allocated by bw_http_new (about 100 KiB). */
#define BW_HTTP_HOSTS_MAX 64u
#define BW_HTTP_HOST_KEY_MAX 128u /* bytes of a key, with its NUL */
#define BW_HTTP_HOST_OTHER "other"
/* Latency buckets: the layout of bulwark/metrics.h's histograms (bucket i
 * holds values v in ns with bw_histogram_bucket_upper(i - 1) < v <=
 * bw_histogram_bucket_upper(i); the last one is the overflow). */
#define BW_HTTP_LATENCY_BUCKETS 157u

typedef struct bw_http_host_stats {
  char host[BW_HTTP_HOST_KEY_MAX]; /* the key, or BW_HTTP_HOST_OTHER */
  /* bw_http_stats' counters, for this host's requests only: requests,
   * responses by class (every attempt's response), throttled, timeouts,
   * cancels, connection, DNS, TLS and protocol errors, too_big,
   * queue_full, in_flight and queued now, bytes, retries, fallbacks and
   * refusals by the policy */
  bw_http_stats_t stats;
  /* Latency of the requests answered with a response (any status code):
   * from the request's arrival at the client to its answer, on the
   * runtime's clock (a manual clock drives it), retries and waits
   * included. Requests that ended without a response (timeouts,
   * connection, DNS, TLS errors, cancels, refusals) are not in it: they
   * are in their counters, and would blur the server's latency with the
   * client's own deadlines. latency_count is the sum of the buckets. */
  uint64_t latency_count, latency_sum_ns, latency_max_ns;
  uint64_t latency[BW_HTTP_LATENCY_BUCKETS];
} bw_http_host_stats_t;

/*
 * Copies the per-host rows into out (cap rows at most): the named rows in
 * the order their hosts first came, then BW_HTTP_HOST_OTHER if anything
 * was counted in it. *n is the number of rows there are (at most
 * BW_HTTP_HOSTS_MAX + 1, which is always enough for cap). From any thread;
 * no lock: each value is read on its own, as in bw_http_stats. out may be
 * NULL with cap 0 to ask for *n. Returns 0; BW_ETOOBIG (*n > cap: the
 * first cap rows were copied); BW_EINVAL (NULL h or n, NULL out with cap >
 * 0). (Built without libcurl there is no handle to ask: bw_http_new says
 * BW_ENOTSUP.)
 */
int bw_http_host_stats(const bw_http_t *h, bw_http_host_stats_t *out, size_t cap, size_t *n);

/* From an actor: sends q (ownership moves, whatever the outcome) as a
 * request with a deadline (0 = the client's default). The reply arrives
 * as BW_HTTP_MSG_RESPONSE with msg->ref == *ref. If the requester exits
 * first the transfer is cancelled. Returns bw_request's codes. */
int bw_http_request(bw_ctx_t *ctx, bw_pid_t client, bw_http_req_t *q, uint64_t timeout_ms,
                    uint64_t *ref);
/* From a plain thread: sends q and waits. Returns the reply's status; *out
 * is the response (free it) or NULL. */
int bw_http_call(bw_runtime_t *rt, bw_pid_t client, bw_http_req_t *q, uint64_t timeout_ms,
                 bw_http_resp_t **out);

#ifdef __cplusplus
}
#endif
#endif
