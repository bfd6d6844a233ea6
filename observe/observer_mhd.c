/*
 * bulwark: the HTTP observer (observer.h), its server, on libmicrohttpd.
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
 * What the server answers is decided by bw__observer_route
 * (observer_route.c); which connections it keeps, by the table in
 * observer_conns.c; the options and the handle are observer.c's.
 * observer_none.c is built instead when libmicrohttpd is missing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulwark/bulwark.h"
#include "bulwark/observer.h"
#include "observe/observer_impl.h"
#include "observe/observer_internal.h"
#include "runtime/internal.h"

#include <microhttpd.h>

/* libmicrohttpd before 0.9.71 returned int from callbacks */
#if MHD_VERSION >= 0x00097002
#define BW_MHD_RESULT enum MHD_Result
#else
#define BW_MHD_RESULT int
#endif

static conn_t *conn_of(struct MHD_Connection *mc) {
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i != NULL ? i->socket_context : NULL;
}

/* libmicrohttpd: a connection started (in its thread, before it polls the
 * socket) or ended (before it closes the socket). */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode what) {
  bw_observer_t *o = cls;
  if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
    conn_t *c = *socket_context;
    if (c == NULL)
      return;
    pthread_mutex_lock(&o->lock);
    if (!c->closing)
      o->nlive--;
    c->state = CONN_FREE;
    o->nopen--;
    pthread_mutex_unlock(&o->lock);
    *socket_context = NULL;
    return;
  }
  const union MHD_ConnectionInfo *fi =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
  const union MHD_ConnectionInfo *ai =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (fi == NULL)
    return;
  pthread_mutex_lock(&o->lock);
  conn_t *c = NULL;
  for (uint32_t i = 0; i < o->cap && c == NULL; i++)
    if (o->conns[i].state == CONN_FREE)
      c = &o->conns[i];
  if (c == NULL) { /* libmicrohttpd's own limit keeps this from happening */
    (void)shutdown(fi->connect_fd, SHUT_RDWR);
    o->n_refused++;
    pthread_mutex_unlock(&o->lock);
    return;
  }
  memset(c, 0, sizeof *c);
  c->fd = fi->connect_fd;
  c->state = CONN_WAITING;
  c->since_ns = bw__mono_ns();
  const struct sockaddr *sa = ai != NULL ? ai->client_addr : NULL;
  if (sa != NULL && sa->sa_family == AF_INET) {
    c->addr_len = 4;
    memcpy(c->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  } else if (sa != NULL && sa->sa_family == AF_INET6) {
    c->addr_len = 16;
    memcpy(c->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
  }
  o->nopen++;
  o->nlive++;
  *socket_context = c;
  bw__observer_make_room(o);
  if (o->watch_idle || o->over)
    pthread_cond_signal(&o->wake);
  pthread_mutex_unlock(&o->lock);
}

/* libmicrohttpd: a request's answer was sent (or the request ended
 * otherwise): the connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)con_cls, (void)toe;
  conn_t *c = conn_of(mc);
  if (c != NULL)
    bw__observer_conn_enter(cls, c, CONN_WAITING);
}

/* --- requests --------------------------------------------------------------------- */

static BW_MHD_RESULT respond(struct MHD_Connection *c, bw__http_resp_t *a, bw_observer_t *o) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(a->len, a->body, a->body != NULL ? MHD_RESPMEM_MUST_FREE
                                                                       : MHD_RESPMEM_PERSISTENT);
  if (r == NULL) {
    free(a->body);
    return MHD_NO;
  }
  unsigned status = a->status;
  MHD_add_response_header(r, "Content-Type", a->content_type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, "Allow", "GET, HEAD");
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"bulwark observer\"");
  BW_MHD_RESULT ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  /* relaxed: statistics */
  uint64_t *ctr = status < 300   ? &o->n_ok
                  : status == 404 ? &o->n_not_found
                  : status == 405 ? &o->n_bad_method
                  : status == 401 ? &o->n_unauthorized
                  : status == 421 ? &o->n_misdirected
                                  : &o->n_errors;
  bw__faa64(ctr, 1);
  return ret;
}

static BW_MHD_RESULT on_request(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  bw_observer_t *o = cls;
  /* first call: headers only; answer on the last, once any body (which
   * we ignore) has been read; until then the connection is still
   * delivering its request, under its deadline */
  static int marker;
  if (*con_cls == NULL) {
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_size != 0) {
    *upload_size = 0; /* discard a body */
    return MHD_YES;
  }
  conn_t *conn = conn_of(c);
  if (conn != NULL)
    bw__observer_conn_enter(o, conn, CONN_HANDLING);
  bw__http_req_t req = {
      .method = method,
      .url = url,
      .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
      .authorization =
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
  };
  bw__http_resp_t a;
  if (bw__observer_route(o, &req, &a) != 0)
    return MHD_NO;
  BW_MHD_RESULT ret = respond(c, &a, o);
  if (conn != NULL)
    bw__observer_conn_enter(o, conn, CONN_SENDING);
  return ret;
}

/* --- start and stop ------------------------------------------------------------------ */
int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  bw_observer_opts_t o;
  bw__observer_resolved_t r;
  if (bw__observer_resolve_opts(opts, &o, &r) != 0)
    return BW_EINVAL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.port);
  sa.sin_addr = r.addr;
  bw_observer_t *ob = NULL;
  int rc = bw__observer_alloc(rt, &o, &r, &ob);
  if (rc != 0)
    return rc;
  /* libmicrohttpd's own limit: ours plus room for connections being closed */
  uint32_t slack = o.max_connections / 4 > 8 ? o.max_connections / 4 : 8;
  uint32_t hard = o.max_connections + slack;
  if ((rc = bw__observer_conns_init(ob, hard)) != 0) {
    bw__observer_dispose(ob);
    return rc;
  }
  /* two polling threads: one slow request (a big tree walk) does not hold
   * up the others; MHD_USE_ERROR_LOG off: errors are answered, not printed */
  ob->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, o.port, NULL, NULL, on_request, ob,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, 2u,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)hard, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, ob, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, ob, MHD_OPTION_END);
  if (ob->daemon == NULL) {
    bw__observer_conns_destroy(ob);
    bw__observer_dispose(ob);
    return BW_ESTATE;
  }
#ifdef TCP_DEFER_ACCEPT
  /* Linux: a connection reaches accept only once it has sent something (or
   * after about timeout_s), so idle connections take no slot at all and a
   * legitimate one arrives with its request already in its socket, where
   * victim sees it. A connection accepted just before this call is
   * handled as usual. */
  const union MHD_DaemonInfo *lfd = MHD_get_daemon_info(ob->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  int defer_s = (int)o.timeout_s;
  if (lfd != NULL)
    (void)setsockopt(lfd->listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
#endif
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(ob->daemon, MHD_DAEMON_INFO_BIND_PORT);
  /* relaxed: the port is a value on its own; a request racing this store
   * (possible only with opts.port 0, when nobody can know it yet) sees 0 */
  bw__st32_rlx(&ob->port, info != NULL ? info->port : o.port);
  if ((ntohl(r.addr.s_addr) >> 24) != 127 && ob->token_len == 0)
    fprintf(stderr,
            "bulwark: warning: the observer listens on %s:%u without a token: anyone who can "
            "reach that address can read /metrics, /health and /tree (set "
            "bw_observer_opts.token or BW_OBSERVER_TOKEN)\n",
            ob->bound, (unsigned)bw__ld32_rlx(&ob->port));
  *out = ob;
  return 0;
}

uint16_t bw_observer_port(const bw_observer_t *o) {
  /* relaxed: see bw_observer_start */
  return o != NULL ? (uint16_t)bw__ld32_rlx(&o->port) : 0;
}

int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *nf, uint64_t *bm,
                       uint64_t *err) {
  if (o == NULL)
    return BW_EINVAL;
  /* relaxed: statistics */
  if (ok != NULL)
    *ok = bw__ld64_rlx(&o->n_ok);
  if (nf != NULL)
    *nf = bw__ld64_rlx(&o->n_not_found);
  if (bm != NULL)
    *bm = bw__ld64_rlx(&o->n_bad_method);
  if (err != NULL)
    *err = bw__ld64_rlx(&o->n_errors);
  return 0;
}

int bw_observer_stats(const bw_observer_t *o, bw_observer_stats_t *out) {
  if (o == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  (void)bw_observer_counts(o, &out->ok, &out->not_found, &out->bad_method, &out->errors);
  /* relaxed: statistics */
  out->unauthorized = bw__ld64_rlx(&o->n_unauthorized);
  out->misdirected = bw__ld64_rlx(&o->n_misdirected);
  if (o->daemon == NULL)
    return 0; /* bw__observer_new's: no connections */
  bw_observer_t *m = (bw_observer_t *)o; /* the lock only */
  pthread_mutex_lock(&m->lock);
  out->evicted = o->n_evicted;
  out->timed_out = o->n_timed_out;
  out->refused = o->n_refused;
  out->connections = o->nopen;
  pthread_mutex_unlock(&m->lock);
  return 0;
}

int bw_observer_stop(bw_observer_t *o) {
  if (o == NULL)
    return 0;
  /* every connection ends (and leaves the table) before this returns */
  MHD_stop_daemon(o->daemon);
  bw__observer_conns_destroy(o);
  bw__observer_dispose(o);
  return 0;
}
