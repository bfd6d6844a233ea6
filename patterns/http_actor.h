/* The HTTP client actor's state (patterns/http.c), shared with its curl
 * side (patterns/http_curl.c). Only for builds with libcurl. */
#ifndef BULWARK_PATTERNS_HTTP_ACTOR_H
#define BULWARK_PATTERNS_HTTP_ACTOR_H

#include <curl/curl.h>

#include "bulwark/io.h"
#include "bulwark/timer.h"
#include "patterns/http_internal.h"

/* The client's own messages (to itself); payload: the slot's id. */
#define MSG_TICK (BW_MSG_HTTP_BASE + 0x80u)     /* curl's timer (payload: generation) */
#define MSG_DEADLINE (BW_MSG_HTTP_BASE + 0x81u) /* the request's deadline */
#define MSG_ATTEMPT (BW_MSG_HTTP_BASE + 0x82u)  /* an attempt's timeout */
#define MSG_WAKE (BW_MSG_HTTP_BASE + 0x83u)     /* a retry delay or a host's hold ended */

#define HOSTS 32u /* hosts whose Retry-After hold is remembered */

enum { X_FREE, X_QUEUED, X_RUN, X_WAIT };

struct client;

typedef struct xfer {
  struct client *c;
  CURL *easy;            /* kept across uses (curl_easy_reset) */
  bw_http_req_t *q;
  struct curl_slist *hdrs;
  bw_msg_t req;          /* the request's header (from, ref, flags), to reply */
  uint64_t id;           /* slot index + 2^32 * use count: what timers name */
  bw_timer_t deadline, attempt, wake;
  uint64_t deadline_ns;  /* runtime clock; 0 = none */
  uint64_t mon;          /* monitor on the requester */
  uint64_t start_ns;     /* this attempt's transfer began */
  uint64_t arrive_ns;    /* the request arrived: its latency counts from here */
  uint32_t row;          /* its host's row (patterns/http_hosts.c) */
  uint8_t state;
  bool too_big, hdr_big, in_policy;
  bool in_attempt;       /* bw_policy_enter let an attempt through; not exited yet */
  char host[BW_HTTP_HOST_KEY_MAX]; /* the host key (http.h), cut if it did not fit */
  char *hbuf, *bbuf;
  size_t hlen, hcap, blen, bcap, max_body, max_header;
  uint32_t next;         /* free list or queue */
  uint32_t unacked;      /* streamed: chunks sent and not acknowledged */
  uint64_t seq;          /* streamed: chunks sent */
  bool paused;           /* streamed: curl holds the data until an ack */
  bw_policy_ticket_t ticket;
  char err[CURL_ERROR_SIZE];
} xfer;

typedef struct sock {
  bw_io_t w;
  int fd;
  uint32_t want;
  struct sock *prev, *next; /* the client's list, to free them after a kill */
} sock;

typedef struct hold {
  char host[BW_HTTP_HOST_KEY_MAX];
  uint64_t until_ns;
} hold_t;

typedef struct client {
  bw_http_t *h;
  bw_ctx_t *ctx; /* valid during a callback: curl calls back only from inside ours */
  bw_runtime_t *rt;
  CURLM *multi;
  xfer *x;
  uint32_t nslots, free_head, qhead, qtail, nrunning;
  /* curl's timer (bw__http_on_timer): when curl wants to be called (0:
   * never), the runtime timer armed for it (due 0: none) and its
   * generation, and a call wanted as soon as the handler is done */
  uint64_t tick_gen, tick_due_ns, tick_armed_ns;
  bw_timer_t tick_timer;
  bool tick_now;
  sock *cur; /* the socket whose event is being handled */
  sock *socks;
  /* every watched socket by descriptor: curl forgets a socket between
   * transfers (CURL_POLL_REMOVE) and keeps its connection; the watch stays,
   * disarmed, until curl closes the socket (bw__http_on_close) */
  sock **byfd;
  uint32_t nbyfd;
  bool closing; /* cl_cleanup: curl closes its sockets, the watches are gone */
  hold_t holds[HOSTS];
} client;

#define NONE UINT32_MAX

/* patterns/http_curl.c */
int bw__http_arm_tick(client *c, uint64_t ms);
void bw__http_bufs_free(xfer *t);
int bw__http_status_of_curl(CURLcode rc, const xfer *t);
bw_http_resp_t *bw__http_take_response(client *c, xfer *t, int *st);
int bw__http_setup_easy(client *c, xfer *t);
int bw__http_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp);
int bw__http_on_close(void *ud, curl_socket_t fd);
int bw__http_on_timer(CURLM *m, long timeout_ms, void *ud);

static inline void bw__http_cancel_timer(client *c, bw_timer_t *tm) {
  if (*tm)
    (void)bw_timer_cancel(c->rt, *tm);
  *tm = 0;
}

#endif
