/*
 * bulwark: the HTTP observer (observer.h): its options and its handle.
 *
 * libmicrohttpd runs its own threads: a small pool of polling threads
 * (MHD_OPTION_THREAD_POOL_SIZE) on epoll, so a slow or malformed client
 * never holds a scheduler thread. Each GET renders its body fresh:
 * /metrics from the reporter's latest published snapshot (a copy, no lock
 * on the reporter), /health from the monitor's published snapshot, /tree by
 * walking the supervisors (bw_call from this thread, which is allowed: it
 * is not a scheduler thread). Bodies are malloc'ed per request and handed
 * to libmicrohttpd to free: a request is not a hot path.
 *
 * Rejected alternative: a thread per connection (MHD_USE_THREAD_PER_CONNECTION)
 * costs a thread per slow client; the pool's event loop does not.
 *
 *
 * The observer is five files, one idea each:
 * - observer.c (this file): the options (checked and defaulted) and the
 *   handle, with bw__observer_new's server-less observer;
 * - observer_route.c: the answer to a request, without a server
 *   (bw__observer_route: the Host and token checks, the page, the paths);
 * - observer_conns.c: the connection table and the watchdog, the
 *   defences against hostile clients (issue #14);
 * - observer_mhd.c: the server on libmicrohttpd (start, stop, counters);
 * - observer_none.c, built instead of the last two when libmicrohttpd is
 *   missing: bw_observer_start says BW_ENOTSUP.
 * Their shared state (struct bw_observer) is in observer_impl.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/bulwark.h"
#include "bulwark/observer.h"
#include "observe/observer_impl.h"
#include "observe/observer_internal.h"
#include "runtime/internal.h"

void bw_observer_opts_init(bw_observer_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->bind_addr = "127.0.0.1";
}

/* --- options ------------------------------------------------------------------------- */

/* Checks opts and fills in the defaults. Returns 0 or BW_EINVAL. */
int bw__observer_resolve_opts(const bw_observer_opts_t *in, bw_observer_opts_t *o,
                              bw__observer_resolved_t *r) {
  *o = *in;
  if (o->refresh_ms == 0)
    o->refresh_ms = 1000;
  if (o->max_connections == 0)
    o->max_connections = 128;
  if (o->max_per_client == 0)
    o->max_per_client = o->max_connections > 1 ? o->max_connections / 2 : 1;
  if (o->timeout_s == 0)
    o->timeout_s = 3;
  if (o->max_body == 0)
    o->max_body = 4u << 20;
  if (o->refresh_ms < 100 || o->refresh_ms > 60000 || o->max_connections > 1024 ||
      o->max_per_client > o->max_connections || o->timeout_s > 3600 || o->max_body < 4096 ||
      o->max_body > (64u << 20))
    return BW_EINVAL;
  if (inet_pton(AF_INET, o->bind_addr != NULL ? o->bind_addr : "127.0.0.1", &r->addr) != 1)
    return BW_EINVAL;
  r->token = o->token;
  if (r->token == NULL) {
    const char *env = getenv("BW_OBSERVER_TOKEN");
    r->token = env != NULL && env[0] != '\0' ? env : NULL;
  }
  if (r->token != NULL && bw__observer_token_length(r->token) == 0)
    return BW_EINVAL;
  if (o->allowed_hosts != NULL) {
    uint32_t n = 0;
    for (; o->allowed_hosts[n] != NULL; n++) {
      size_t len;
      const char *port;
      if (n == BW_OBSERVER_HOSTS_MAX ||
          (strcmp(o->allowed_hosts[n], "*") != 0 &&
           !bw__observer_split_host(o->allowed_hosts[n], &len, &port)))
        return BW_EINVAL;
    }
  }
  return 0;
}

/* After bw__observer_resolve_opts: refuses a stopped runtime, allocates, copies what is
 * kept. */
int bw__observer_alloc(bw_runtime_t *rt, const bw_observer_opts_t *o,
                       const bw__observer_resolved_t *r, bw_observer_t **out) {
  /* refuse after stop, as every other start does */
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  bw_observer_t *ob = calloc(1, sizeof *ob);
  if (ob == NULL)
    return BW_ENOMEM;
  ob->rt = rt;
  ob->opts = *o;
  ob->opts.bind_addr = NULL; /* not kept: only used to bind */
  ob->opts.token = NULL;
  ob->opts.allowed_hosts = NULL;
  /* relaxed: no other thread yet */
  bw__st32_rlx(&ob->port, o->port);
  inet_ntop(AF_INET, &r->addr, ob->bound, sizeof ob->bound);
  ob->bound_any = r->addr.s_addr == htonl(INADDR_ANY);
  if (o->allowed_hosts != NULL) {
    for (const char *const *h = o->allowed_hosts; *h != NULL; h++) {
      if (strcmp(*h, "*") == 0)
        ob->any_host = true;
      else
        snprintf(ob->hosts[ob->nhosts++], sizeof ob->hosts[0], "%s", *h);
    }
  }
  if (r->token != NULL) {
    ob->token_len = bw__observer_token_length(r->token);
    memcpy(ob->token, r->token, ob->token_len);
  }
  *out = ob;
  return 0;
}

/* Frees what bw__observer_alloc made, after wiping the token. */
void bw__observer_dispose(bw_observer_t *o) {
  volatile char *t = o->token;
  for (size_t i = 0; i < sizeof o->token; i++)
    t[i] = 0;
  free(o);
}

int bw__observer_new(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  bw__observer_resolved_t r;
  int rc = bw__observer_resolve_opts(opts, &o, &r);
  if (rc != 0)
    return rc;
  return bw__observer_alloc(rt, &o, &r, out);
}

void bw__observer_free(bw_observer_t *o) {
  if (o != NULL)
    bw__observer_dispose(o);
}
