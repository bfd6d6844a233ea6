/*
 * bulwark internal: the HTTP observer's state, shared by its files
 * (observer.c: options and handle; observer_route.c: answers;
 * observer_conns.c: the connection table; observer_mhd.c: the server).
 */
#ifndef BW_OBSERVE_OBSERVER_IMPL_H
#define BW_OBSERVE_OBSERVER_IMPL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/observer.h"

struct MHD_Daemon;

/* One connection the server holds (see observer_conns.c). */
enum { CONN_FREE, CONN_WAITING, CONN_HANDLING, CONN_SENDING };
typedef struct conn {
  int fd;
  uint8_t state;
  bool closing;      /* shut down by us; libmicrohttpd has not freed it yet */
  uint8_t addr_len;  /* the client's address: 4 or 16 bytes */
  uint8_t addr[16];
  uint64_t since_ns; /* start of the current phase (bw__mono_ns) */
  uint64_t round;    /* the make_room pass that found it with unread bytes */
} conn_t;

typedef struct addr_count {
  const conn_t *first; /* a connection from this address */
  uint32_t n;          /* live connections from it */
  bool spent;          /* none of them can be given up now */
} addr_count_t;

struct bw_observer {
  bw_runtime_t *rt;
  bw_observer_opts_t opts;   /* bind_addr, token and allowed_hosts cleared */
  struct MHD_Daemon *daemon; /* NULL for bw__observer_new's server-less observer */
  uint32_t port;             /* atomic: stored once the server is bound */

  /* the Host check */
  char bound[INET_ADDRSTRLEN]; /* the bound address, as inet_ntop writes it */
  bool bound_any;              /* bound to 0.0.0.0: any IP literal names us */
  bool any_host;               /* "*" in allowed_hosts: no check */
  uint32_t nhosts;
  char hosts[BW_OBSERVER_HOSTS_MAX][BW_OBSERVER_HOST_LEN_MAX + 1];

  /* the token: token_len bytes, zero-padded, so the comparison reads the
   * whole buffer whatever the lengths; 0 = none */
  size_t token_len;
  char token[BW_OBSERVER_TOKEN_MAX + 1];

  /* answers (atomic) */
  uint64_t n_ok, n_not_found, n_bad_method, n_errors, n_unauthorized, n_misdirected;

  /* connections: all below under lock (the server only) */
  pthread_mutex_t lock;
  pthread_cond_t wake;     /* the watchdog's */
  pthread_t watchdog;
  bool stopping;           /* the watchdog's signal to end */
  bool watch_idle;         /* the watchdog waits with no deadline: wake it */
  uint64_t timeout_ns;
  uint64_t grace_ns;       /* how long a new connection is not given up */
  uint32_t cap;            /* entries of conns and scratch */
  uint32_t nopen, nlive;   /* in the table; of those, not closing */
  conn_t *conns;
  addr_count_t *scratch;   /* make_room's per-address counts */
  uint64_t round;          /* make_room's pass, for victim's marks */
  bool over;               /* over a limit: make_room to try again soon */
  uint64_t n_evicted, n_timed_out, n_refused;
};

/* --- options and the handle (observer.c) --- */

/* What bw__observer_resolve_opts found beside the options themselves. */
typedef struct resolved {
  struct in_addr addr; /* the bind address */
  const char *token;   /* NULL = none; from opts or the environment */
} bw__observer_resolved_t;

/* Checks opts and fills in the defaults. Returns 0 or BW_EINVAL. */

/* Checks opts and fills in the defaults. Returns 0 or BW_EINVAL. */
int bw__observer_resolve_opts(const bw_observer_opts_t *in, bw_observer_opts_t *o,
                              bw__observer_resolved_t *r);

/* After bw__observer_resolve_opts: refuses a stopped runtime, allocates, copies what is
 * kept. Returns 0, BW_ESHUTDOWN or BW_ENOMEM. */
int bw__observer_alloc(bw_runtime_t *rt, const bw_observer_opts_t *o,
                       const bw__observer_resolved_t *r, bw_observer_t **out);

/* Frees what bw__observer_alloc made, after wiping the token. */
void bw__observer_dispose(bw_observer_t *o);

/* --- the Host and token checks (observer_route.c) --- */

/* Splits a Host value (or an allowed_hosts entry): name, then ":port" or
 * nothing. Returns false for anything else. */
bool bw__observer_split_host(const char *h, size_t *name_len, const char **port);

/* RFC 6750's b64token: its length, or 0 if t is not one or is too long. */
size_t bw__observer_token_length(const char *t);

/* --- the connection table (observer_conns.c; with libmicrohttpd only) --- */

/* The table, its lock and the watchdog. Returns 0, BW_ENOMEM or BW_ETHREAD. */
int bw__observer_conns_init(bw_observer_t *o, uint32_t cap);
/* Stops the watchdog and frees the table. */
void bw__observer_conns_destroy(bw_observer_t *o);
/* Under o->lock: brings the table within its limits (see observer_conns.c). */
void bw__observer_make_room(bw_observer_t *o);
/* Moves c to state, starting its phase now (takes o->lock). */
void bw__observer_conn_enter(bw_observer_t *o, conn_t *c, uint8_t state);

#endif
