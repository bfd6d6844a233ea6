/*
 * bulwark: the HTTP observer's request handling without a server, for the
 * fuzz harness (tests/fuzz/fuzz_observer.c) and for observer.c itself.
 *
 * observer.c splits a request in two: bw__observer_route decides the
 * answer (status, body, content type) from a method and a URL alone;
 * libmicrohttpd only carries it. So the whole of what a client can steer
 * is reachable without sockets, and without libmicrohttpd installed.
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

/*
 * An observer that serves nothing: opts are checked and defaulted as
 * bw_observer_start does (bind_addr is not looked at), but no server
 * starts. Free it with bw__observer_free. Returns 0, BW_EINVAL,
 * BW_ESHUTDOWN, BW_ENOMEM.
 */
int bw__observer_new(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out);
void bw__observer_free(bw_observer_t *o);

/*
 * Answers method on url (the path, without the query string, as
 * libmicrohttpd passes it; both NUL-terminated, any bytes). Does not count
 * the request (bw_observer_counts counts answers actually queued). From a
 * thread that is not a scheduler thread (/tree calls the supervisors).
 * Returns 0 with *out filled, or BW_ENOMEM (no answer: the server then
 * drops the connection).
 */
int bw__observer_route(bw_observer_t *o, const char *method, const char *url,
                       bw__http_resp_t *out);

#endif
