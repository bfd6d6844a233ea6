/*
 * bulwark: the HTTP observer's connection table and its watchdog: the
 * defences against hostile clients. Built with libmicrohttpd only; the
 * server that reports connections here is observer_mhd.c.
 *
 * Hostile clients (issue #14). libmicrohttpd's own defences are an idle
 * timeout, which a slowloris client (a header byte now and then) never
 * trips, and limits that refuse the newcomer, which starve a legitimate
 * client behind an attacker holding every slot (measured: 0 of 8 /metrics
 * requests answered in 15 s behind 64 idle connections). So the observer
 * keeps its own table of connections (conn_t; libmicrohttpd reports each
 * connection's start and end and each request's), under one mutex, and
 * decides three things itself:
 * - a deadline per phase: a connection waiting for its request (from its
 *   opening, or from its previous answer) and one taking delivery of an
 *   answer has timeout_s to be done, whatever it trickles meanwhile. A
 *   watchdog thread sleeps until the earliest deadline (a condition
 *   variable; with no connection it sleeps until woken, no polling) and
 *   shuts the late ones down. Time spent rendering an answer is ours and
 *   has no deadline.
 * - who gives up a slot (make_room, at each new connection): past
 *   max_per_client for an address or max_connections in all, a connection
 *   waiting for its request is closed, the longest-waiting first, of the
 *   address over its share or else of the address holding the most. Not
 *   one with unread bytes in its socket (a request arriving), nor one
 *   younger than the grace (a request libmicrohttpd has read but not yet
 *   handed over looks idle; on a loaded machine that gap was measured at
 *   8 ms, and closing such connections lost 1 request in 15 under a
 *   hostile client). When nothing can be given up the table stays over
 *   its limit (libmicrohttpd's own limit, higher, still holds) and the
 *   watchdog retries every RETRY_NS until it is back within.
 * - which connections reach accept: TCP_DEFER_ACCEPT (Linux) holds a
 *   connection in the kernel until it sends data, so one that says
 *   nothing never takes a slot, and a request arrives with its bytes
 *   already unread in its socket.
 * Rejected alternative: refusing or closing the newcomer at the limit
 * (libmicrohttpd's behaviour) is what starved the legitimate client;
 * closing the oldest connection regardless of unread bytes and age lost a
 * request whenever an attacker's burst outnumbered the slots.
 * Closing is shutdown(2) on the socket: libmicrohttpd sees the end of the
 * stream and frees the connection in its own thread. The descriptor stays
 * valid while it is in the table (libmicrohttpd reports the end before it
 * closes it, and the report takes the table's mutex), so a shutdown never
 * reaches a reused descriptor.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "bulwark/bulwark.h"
#include "bulwark/observer.h"
#include "observe/observer_impl.h"
#include "observe/observer_internal.h"
#include "runtime/internal.h"

/* The most a connection waiting for its request is kept from being given
 * up after it opened or was answered (a quarter of timeout_s below 2 s):
 * ample for libmicrohttpd to read and hand over a request that has
 * arrived, short enough that slots turn over quickly under attack. */
#define GRACE_MAX_NS (500u * 1000000u)

/* How soon the watchdog tries make_room again while the table is over a
 * limit (connections with a request arriving are read within moments). */
#define RETRY_NS (10u * 1000000u)

/* --- the connection table (under o->lock) --------------------------------------- */

static bool same_addr(const conn_t *a, const conn_t *b) {
  return a->addr_len == b->addr_len && memcmp(a->addr, b->addr, a->addr_len) == 0;
}

/* Closes c (shutdown: libmicrohttpd frees it) and counts it in *why. */
static void conn_close(bw_observer_t *o, conn_t *c, uint64_t *why) {
  (void)shutdown(c->fd, SHUT_RDWR);
  c->closing = true;
  o->nlive--;
  (*why)++;
}

/* Whether c's socket holds bytes the server has not read yet: a connection
 * just accepted whose request is on its way in. libmicrohttpd reads what
 * arrives at once, so an idle or trickling connection has none for long. */
static bool has_unread(const conn_t *c) {
  int n = 0;
  return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

/* The connection to give up from like's address: the one waiting longest
 * for its request, with nothing unread, that has waited at least
 * o->grace_ns; NULL if none, with *arriving set when the address has
 * others waiting that are younger or have unread bytes (they may be
 * requests on their way: libmicrohttpd reads a request and hands it to
 * on_request within moments, but a loaded machine can delay that by
 * milliseconds, and in that gap a request looks like an idle connection).
 * Those with unread bytes are marked for the rest of this round of
 * make_room, so each costs one system call per round; the usual cost is
 * one call and a pass over the table. */
static conn_t *victim(bw_observer_t *o, const conn_t *like, uint64_t now, bool *arriving) {
  for (;;) {
    conn_t *best = NULL;
    for (uint32_t i = 0; i < o->cap; i++) {
      conn_t *c = &o->conns[i];
      if (c->state != CONN_WAITING || c->closing || !same_addr(c, like))
        continue;
      if (c->round == o->round || now - c->since_ns < o->grace_ns) {
        *arriving = true;
        continue;
      }
      if (best == NULL || c->since_ns < best->since_ns)
        best = c;
    }
    if (best == NULL || !has_unread(best))
      return best;
    best->round = o->round; /* passed over this round */
  }
}

/* Brings the table within max_per_client per address and max_connections
 * in all, closing connections that wait for their request with nothing
 * unread: from an address over its share, then from the address holding
 * the most, longest-waiting first. A connection with unread bytes (a
 * request arriving) or whose request is being answered is never closed to
 * make room; when only those are left, the table stays over its limits
 * for the moment (libmicrohttpd's own limit, higher, still holds) and
 * o->over asks the watchdog to try again shortly. O(connections x
 * distinct addresses) plus the system calls of victim. */
void bw__observer_make_room(bw_observer_t *o) {
  uint64_t now = bw__mono_ns();
  o->round++;
  uint32_t naddr = 0;
  for (uint32_t i = 0; i < o->cap; i++) {
    const conn_t *c = &o->conns[i];
    if (c->state == CONN_FREE || c->closing)
      continue;
    uint32_t k = 0;
    while (k < naddr && !same_addr(o->scratch[k].first, c))
      k++;
    if (k == naddr)
      o->scratch[naddr++] = (addr_count_t){c, 0, false};
    o->scratch[k].n++;
  }
  bool over = false;
  for (uint32_t k = 0; k < naddr; k++) {
    addr_count_t *a = &o->scratch[k];
    while (a->n > o->opts.max_per_client) {
      bool arriving = false;
      conn_t *v = victim(o, a->first, now, &arriving);
      if (v == NULL) {
        over = true;
        break;
      }
      conn_close(o, v, &o->n_evicted);
      a->n--;
    }
  }
  while (o->nlive > o->opts.max_connections) {
    addr_count_t *big = NULL;
    for (uint32_t k = 0; k < naddr; k++)
      if (!o->scratch[k].spent && (big == NULL || o->scratch[k].n > big->n))
        big = &o->scratch[k];
    bool arriving = false;
    conn_t *v = big != NULL ? victim(o, big->first, now, &arriving) : NULL;
    if (v == NULL && big != NULL && !arriving) {
      big->spent = true; /* all its connections are being answered: the next biggest */
      continue;
    }
    if (v == NULL) {
      /* none left, or the biggest holder's are arriving requests: they
       * will be read and answered, or become idle and be given up, soon;
       * the smaller holders are not asked to pay for them */
      over = true;
      break;
    }
    conn_close(o, v, &o->n_evicted);
    big->n--;
  }
  o->over = over;
}

/* Moves c to state, starting its phase now; wakes the watchdog if it had
 * no deadline to wait for (otherwise its next wake-up comes no later than
 * this new deadline: every deadline in the table is at most now + timeout). */
void bw__observer_conn_enter(bw_observer_t *o, conn_t *c, uint8_t state) {
  pthread_mutex_lock(&o->lock);
  if (c->state != CONN_FREE) {
    c->state = state;
    c->since_ns = bw__mono_ns();
    if (state != CONN_HANDLING && o->watch_idle)
      pthread_cond_signal(&o->wake);
  }
  pthread_mutex_unlock(&o->lock);
}

/* The watchdog: closes connections past their phase's deadline, retries
 * make_room while over a limit, then sleeps until the next of those, or
 * until woken when there is none. */
static void *watchdog_main(void *arg) {
  bw_observer_t *o = arg;
  pthread_mutex_lock(&o->lock);
  while (!o->stopping) {
    if (o->over)
      bw__observer_make_room(o);
    uint64_t now = bw__mono_ns(), next = o->over ? now + RETRY_NS : UINT64_MAX;
    for (uint32_t i = 0; i < o->cap; i++) {
      conn_t *c = &o->conns[i];
      if (c->state == CONN_FREE || c->state == CONN_HANDLING || c->closing)
        continue;
      uint64_t due = c->since_ns + o->timeout_ns;
      if (due <= now)
        conn_close(o, c, &o->n_timed_out);
      else if (due < next)
        next = due;
    }
    if (next == UINT64_MAX) {
      o->watch_idle = true;
      pthread_cond_wait(&o->wake, &o->lock);
      o->watch_idle = false;
    } else {
      struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
      (void)pthread_cond_timedwait(&o->wake, &o->lock, &ts);
    }
  }
  pthread_mutex_unlock(&o->lock);
  return NULL;
}

/* --- start and stop ------------------------------------------------------------------ */

/* The table, its lock and the watchdog. Returns 0, BW_ENOMEM or BW_ETHREAD. */
int bw__observer_conns_init(bw_observer_t *o, uint32_t cap) {
  o->cap = cap;
  o->timeout_ns = (uint64_t)o->opts.timeout_s * 1000000000u;
  o->grace_ns = o->timeout_ns / 4 < GRACE_MAX_NS ? o->timeout_ns / 4 : GRACE_MAX_NS;
  o->conns = calloc(cap, sizeof *o->conns);
  o->scratch = calloc(cap, sizeof *o->scratch);
  if (o->conns == NULL || o->scratch == NULL)
    goto no_mem;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0)
    goto no_mem;
  /* deadlines are on the monotonic clock, as bw__mono_ns */
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&o->wake, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0)
    goto no_mem;
  if (pthread_mutex_init(&o->lock, NULL) != 0) {
    pthread_cond_destroy(&o->wake);
    goto no_mem;
  }
  if (pthread_create(&o->watchdog, NULL, watchdog_main, o) != 0) {
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    free(o->conns);
    free(o->scratch);
    return BW_ETHREAD;
  }
  return 0;
no_mem:
  free(o->conns);
  free(o->scratch);
  return BW_ENOMEM;
}

void bw__observer_conns_destroy(bw_observer_t *o) {
  pthread_mutex_lock(&o->lock);
  o->stopping = true;
  pthread_cond_signal(&o->wake);
  pthread_mutex_unlock(&o->lock);
  pthread_join(o->watchdog, NULL);
  pthread_mutex_destroy(&o->lock);
  pthread_cond_destroy(&o->wake);
  free(o->conns);
  free(o->scratch);
}
