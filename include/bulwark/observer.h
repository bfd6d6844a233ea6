/*
 * bulwark: the live observer, an embedded HTTP server (libmicrohttpd).
 *
 *   GET /metrics   Prometheus text exposition of a metrics reporter
 *   GET /health    the health monitor's JSON; 200 when healthy, 503 otherwise
 *   GET /tree      JSON of the live supervision tree (tree.h)
 *   GET /          a self-contained page (no external assets) that draws the
 *                  tree, the breakers and the pools and refreshes itself
 *
 * Unknown paths answer 404, methods other than GET and HEAD 405. The server
 * runs on its own threads (never a scheduler's), so slow or malformed
 * clients never stall the runtime. Opt-in, and bound to 127.0.0.1 unless
 * told otherwise.
 *
 * Connections (hostile clients, issue #14). Each connection must deliver a
 * whole request within timeout_s of opening, or of its previous answer (a
 * keep-alive connection waiting for its next request is delivering one),
 * and take delivery of each answer within timeout_s; otherwise it is
 * closed, whatever it trickles meanwhile (slowloris). On Linux a
 * connection is accepted only once it has sent something (or after about
 * timeout_s), so connections that say nothing take no slot. New
 * connections are not refused for want of room: when an address holds
 * more than max_per_client, or the server more than max_connections, the
 * connection closed instead is one waiting for its request with nothing
 * unread, open (or answered) at least min(timeout_s / 4, 500 ms) ago, the
 * longest-waiting first: of that address, or else of the address holding
 * the most. Connections whose request is arriving or being answered are
 * not closed to make room (the server may exceed its limits for a moment;
 * beyond a hard ceiling of max_connections plus a quarter, at least 8, new
 * connections wait in the kernel's queue). So a client holding many idle
 * or slow connections, even from the same address as others (a NAT, a
 * proxy, loopback), delays a request by about the time it takes to accept
 * it; where addresses differ its own connections are the ones closed.
 * bw_observer_stats counts what was closed and why.
 *
 * Protection (issue #14). Every request's Host header, when present, must
 * name this server: "localhost", "127.0.0.1", "[::1]" or the bound address
 * (any IP literal when bound to 0.0.0.0), with the bound port or no port,
 * or an entry of allowed_hosts; otherwise 421 Misdirected Request. This
 * stops a web page that rebinds its own DNS name to this machine (DNS
 * rebinding) from reading /tree and /metrics through a local browser: the
 * browser sends the page's name as Host. A request without Host (HTTP/1.0;
 * browsers always send it) is not checked. With a token (opts.token, or
 * the environment variable BW_OBSERVER_TOKEN when opts.token is NULL),
 * /metrics, /health, /tree and unknown paths answer 401 (with
 * "WWW-Authenticate: Bearer") unless the request carries
 * "Authorization: Bearer <token>"; the comparison takes the same time
 * whatever the bytes. The page itself (/, /index.html) holds no data and
 * is served without the token; it sends the token with its requests, taken
 * from the address's fragment (http://host:port/#token=TOKEN: a fragment
 * is never sent to a server; the page removes it from the address bar and
 * keeps the token for the tab in sessionStorage) or asked for once when a
 * request answers 401. The token is never printed, logged or shown on a
 * page. Binding to an address outside 127.0.0.0/8 without a token prints a
 * warning on stderr. Plain HTTP: use a token only on a trusted network, or
 * behind a TLS proxy (add its name to allowed_hosts).
 *
 * Built when libmicrohttpd is found at configure time (Debian:
 * libmicrohttpd-dev); otherwise bw_observer_start returns BW_ENOTSUP.
 */
#ifndef BULWARK_OBSERVER_H
#define BULWARK_OBSERVER_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_observer bw_observer_t;
typedef struct bw_metrics bw_metrics_t;
typedef struct bw_health bw_health_t;

/* The longest bearer token, in bytes. */
#define BW_OBSERVER_TOKEN_MAX 256
/* The most entries of allowed_hosts, and the longest entry in bytes. */
#define BW_OBSERVER_HOSTS_MAX 32
#define BW_OBSERVER_HOST_LEN_MAX 255

typedef struct bw_observer_opts {
  /* An IPv4 address to bind to (copied); NULL = "127.0.0.1". */
  const char *bind_addr;
  /* TCP port; 0 = any free port (bw_observer_port tells which). */
  uint16_t port;
  /* What the endpoints show; each may be absent (its path then answers 404
   * with a JSON error saying so). Not owned: they must outlive the observer. */
  bw_pid_t tree_root;    /* the root supervisor for /tree */
  bw_metrics_t *metrics; /* for /metrics */
  bw_health_t *health;   /* for /health */
  /* Page refresh period, 100 .. 60000 ms; 0 = 1000. */
  uint32_t refresh_ms;
  /* Connections open at once, 1 .. 1024; 0 = 128. Beyond it a waiting
   * connection is closed to make room (see "Connections" above). */
  uint32_t max_connections;
  /* Connections one client address may hold, 1 .. max_connections;
   * 0 = half of max_connections (at least 1). Beyond it a waiting
   * connection of that address is closed to make room. */
  uint32_t max_per_client;
  /* Seconds a connection has to deliver each request (from its opening or
   * its previous answer; idle keep-alive time counts) and to take delivery
   * of each answer, and the most it may go without any progress;
   * 1 .. 3600; 0 = 3. */
  uint32_t timeout_s;
  /* Largest response body, 4 KiB .. 64 MiB; 0 = 4 MiB (a bigger tree or
   * metrics text answers 500 with a JSON error). */
  size_t max_body;
  /* The bearer token the data paths require (copied), 1 .. BW_OBSERVER_TOKEN_MAX
   * bytes of letters, digits and "-._~+/", then any "=" (RFC 6750's
   * b64token); NULL = the environment variable BW_OBSERVER_TOKEN, if set
   * and not empty (the same rules), else no token. */
  const char *token;
  /* More names the Host header may carry, besides localhost, 127.0.0.1,
   * [::1] and the bound address (copied): a NULL-terminated array of up to
   * BW_OBSERVER_HOSTS_MAX entries, each "name" (any port), "name:port"
   * (that port only) or "[v6-address]" with or without ":port", compared
   * without regard to case; "*" turns the Host check off. NULL = none. */
  const char *const *allowed_hosts;
} bw_observer_opts_t;

void bw_observer_opts_init(bw_observer_opts_t *opts);

/*
 * Starts serving. Returns 0 with *out; BW_EINVAL (NULL rt or out, bad
 * option, an address that is not IPv4 dotted-quad, a token or an
 * allowed_hosts entry not as described above, BW_OBSERVER_TOKEN set to
 * such a token); BW_ENOTSUP (built without libmicrohttpd); BW_ESTATE (the
 * port could not be bound: in use); BW_ENOMEM; BW_ETHREAD (the thread that
 * times connections out could not start); BW_ESHUTDOWN. Binding outside
 * 127.0.0.0/8 without a token prints a warning on stderr.
 */
int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out);

/* The port it listens on (the one chosen when opts.port was 0); 0 for NULL. */
uint16_t bw_observer_port(const bw_observer_t *o);

/* Requests served since start, by answer: 2xx, 404, 405, 5xx (401 and
 * 421: bw_observer_stats; any pointer may be NULL). Returns 0 or BW_EINVAL. */
int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *not_found,
                       uint64_t *bad_method, uint64_t *errors);

/* What the server did since start. */
typedef struct bw_observer_stats {
  /* Answers, as bw_observer_counts: 2xx, 404, 405, 5xx (and any other). */
  uint64_t ok, not_found, bad_method, errors;
  uint64_t unauthorized; /* 401: no token, or a wrong one */
  uint64_t misdirected;  /* 421: a Host this server does not answer to */
  uint64_t evicted;      /* waiting connections closed to make room */
  uint64_t timed_out;    /* connections closed at their deadline (timeout_s) */
  uint64_t refused;      /* new connections closed at once: the table was full */
  uint32_t connections;  /* open now (including ones being closed) */
} bw_observer_stats_t;

/* Fills *out. Returns 0, or BW_EINVAL (NULL o or out). */
int bw_observer_stats(const bw_observer_t *o, bw_observer_stats_t *out);

/* Stops serving (waits for requests in progress) and frees it. Call before
 * destroying what it shows, and before bw_runtime_destroy. NULL is a no-op.
 * Returns 0. */
int bw_observer_stop(bw_observer_t *o);

#ifdef __cplusplus
}
#endif
#endif
