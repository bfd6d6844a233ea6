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
 * runs on its own threads (never a scheduler's), with a connection limit and
 * a per-connection timeout, so slow or malformed clients cost at most those
 * threads and never stall the runtime. Opt-in, and bound to 127.0.0.1
 * unless told otherwise.
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
  /* Concurrent connections, 1 .. 1024; 0 = 32. Beyond it new ones are
   * refused at accept. */
  uint32_t max_connections;
  /* Idle seconds before a connection is closed, 1 .. 3600; 0 = 5. */
  uint32_t timeout_s;
  /* Largest response body, 4 KiB .. 64 MiB; 0 = 4 MiB (a bigger tree or
   * metrics text answers 500 with a JSON error). */
  size_t max_body;
} bw_observer_opts_t;

void bw_observer_opts_init(bw_observer_opts_t *opts);

/*
 * Starts serving. Returns 0 with *out; BW_EINVAL (NULL rt or out, bad
 * option, an address that is not IPv4 dotted-quad); BW_ENOTSUP (built
 * without libmicrohttpd); BW_ESTATE (the port could not be bound: in use);
 * BW_ENOMEM; BW_ESHUTDOWN.
 */
int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out);

/* The port it listens on (the one chosen when opts.port was 0); 0 for NULL. */
uint16_t bw_observer_port(const bw_observer_t *o);

/* Requests served since start, by answer: 2xx, 404, 405, 5xx (any may be
 * NULL). Returns 0 or BW_EINVAL. */
int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *not_found,
                       uint64_t *bad_method, uint64_t *errors);

/* Stops serving (waits for requests in progress) and frees it. Call before
 * destroying what it shows, and before bw_runtime_destroy. NULL is a no-op.
 * Returns 0. */
int bw_observer_stop(bw_observer_t *o);

#ifdef __cplusplus
}
#endif
#endif
