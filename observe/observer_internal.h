/*
 * bulwark: the HTTP observer's request handling without a server, for the
 * fuzz harness (tests/fuzz/fuzz_observer.c) and for the observer itself.
 *
 * The observer splits a request in two: bw__observer_route decides the
 * answer (status, body, content type) from the method, the URL and the
 * Host and Authorization headers alone; libmicrohttpd only carries it. So
 * the whole of what a client can steer in a request is reachable without
 * sockets, and without libmicrohttpd installed. (How connections are
 * admitted and timed out is the server's, in observer_conns.c, and is tested
 * with sockets in tests/observe/test_observer.c.)
 */
#ifndef BW_PATTERNS_OBSERVER_INTERNAL_H
#define BW_PATTERNS_OBSERVER_INTERNAL_H

#include <stddef.h>

#include "bulwark/observer.h"

/* One answer. body is malloc'ed (the caller owns it: free, or hand it to
 * libmicrohttpd to free); content_type is static. */
typedef struct bw__http_resp {
  unsigned status;
  char *body;
  size_t len;
  const char *content_type;
} bw__http_resp_t;

/* One request: what the router looks at. All NUL-terminated, any bytes. */
typedef struct bw__http_req {
  const char *method;
  const char *url;           /* the path, without the query string, as libmicrohttpd passes it */
  const char *host;          /* the Host header; NULL: none */
  const char *authorization; /* the Authorization header; NULL: none */
} bw__http_req_t;

/*
 * An observer that serves nothing: opts are checked and defaulted as
 * bw_observer_start does (the token and allowed_hosts too, and bind_addr
 * is parsed: the Host check accepts it), but no server starts; the port
 * the Host check accepts is opts->port. Free it with bw__observer_free.
 * Returns 0, BW_EINVAL, BW_ESHUTDOWN, BW_ENOMEM.
 */
int bw__observer_new(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out);
void bw__observer_free(bw_observer_t *o);

/*
 * Answers req: 421 for a Host that is not ours, 401 without the token (if
 * one is set; the page excepted), 405 for a method other than GET and
 * HEAD, then by path (observer.h). Does not count the request
 * (bw_observer_counts counts answers actually queued). From a thread that
 * is not a scheduler thread (/tree calls the supervisors). Returns 0 with
 * *out filled, or BW_ENOMEM (no answer: the server then drops the
 * connection).
 */
int bw__observer_route(bw_observer_t *o, const bw__http_req_t *req, bw__http_resp_t *out);

#endif
