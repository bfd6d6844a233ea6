/*
 * The HTTP client actor: libcurl's multi interface driven by the runtime's
 * I/O (bulwark/io.h) and timers, the way libcurl documents event-loop
 * integration (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 * curl_multi_socket_action). One actor holds one multi handle, so every
 * curl call happens in its handler, on whichever worker runs it: no lock,
 * no thread of its own, no thread per request.
 *
 * A request's life, in a slot of a table allocated at init:
 *
 *   arrives (moved bw_http_req_t): deadline timer armed, requester monitored
 *     -> [host held by a Retry-After?  WAIT until then, or THROTTLED at once
 *         if that is past the deadline]
 *     -> [policy: bw_policy_enter: go / RETRY later (WAIT) / final error]
 *     -> a transfer (RUN) when fewer than max_in_flight run, else QUEUED
 *     -> done: the status (http.h's table); [policy: bw_policy_exit: final,
 *        or RETRY after max(backoff, Retry-After) if the request is
 *        idempotent] -> answered with a moved bw_http_resp_t
 *
 * The deadline, an attempt's timeout and the requester's exit remove the
 * transfer from the multi handle, which closes its connection: nothing of
 * it arrives later. See include/bulwark/http.h and patterns/HTTP.md. The
 * curl side (buffers, easy handles, callbacks, results) is patterns/http_curl.c.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/http.h"
#include "bulwark/io.h"
#include "bulwark/runtime.h"
#include "bulwark/timer.h"
#include "patterns/http_actor.h"

/* Counts an attempt's or a request's end with status st. */
static void count_status(client *c, const xfer *t, int st) {
  int i;
  switch (st) {
  case BW_ETIMEDOUT: i = BW__HC_TMO; break;
  case BW_ECONNREFUSED:
  case BW_ECONNRESET: i = BW__HC_CONN; break;
  case BW_EDNS: i = BW__HC_DNS; break;
  case BW_ETLS: i = BW__HC_TLS; break;
  case BW_EPROTO: i = BW__HC_PROTO; break;
  case BW_ETOOBIG: i = BW__HC_BIG; break;
  case BW_EHTTP_THROTTLED: i = BW__HC_THR; break;
  case BW_ECIRCUIT_OPEN:
  case BW_ERATE_LIMITED:
  case BW_EBULKHEAD_FULL:
  case BW_EBUDGET: i = BW__HC_REFUSED; break;
  default: return;
  }
  bw__http_cnt(c->h, t->row, i, 1);
}

/* --- hosts held by a Retry-After (keyed by the host key, http.h) ----------------------------- */

static uint64_t held_until(client *c, const char *host, uint64_t now) {
  for (unsigned i = 0; i < HOSTS; i++)
    if (c->holds[i].until_ns > now && strcmp(c->holds[i].host, host) == 0)
      return c->holds[i].until_ns;
  return 0;
}

static void hold_host(client *c, const char *host, uint64_t until) {
  hold_t *slot = &c->holds[0];
  for (unsigned i = 0; i < HOSTS; i++) {
    hold_t *h = &c->holds[i];
    if (strcmp(h->host, host) == 0) {
      slot = h;
      break;
    }
    if (h->until_ns < slot->until_ns)
      slot = h; /* else the one that ends first (expired ones are 0 or past) */
  }
  snprintf(slot->host, sizeof slot->host, "%s", host);
  if (until > slot->until_ns)
    slot->until_ns = until;
}

/* --- slots ---------------------------------------------------------------------------------- */

static void stop_transfer(client *c, xfer *t) {
  if (t->state == X_RUN) {
    curl_multi_remove_handle(c->multi, t->easy); /* closes an unfinished connection */
    c->nrunning--;
  }
  bw__http_cancel_timer(c, &t->attempt);
  bw__http_cancel_timer(c, &t->wake);
}

static void unqueue(client *c, xfer *t) {
  uint32_t i = (uint32_t)(t - c->x), prev = NONE;
  for (uint32_t k = c->qhead; k != NONE; prev = k, k = c->x[k].next) {
    if (k != i)
      continue;
    if (prev == NONE)
      c->qhead = t->next;
    else
      c->x[prev].next = t->next;
    if (c->qtail == i)
      c->qtail = prev;
    bw__http_cnt(c->h, t->row, BW__HC_QUEUED, (uint64_t)-1);
    return;
  }
}

/* Ends an attempt the policy let through (its permit, slot and breaker
 * report) when the request ends outside attempt_done: a deadline, a
 * cancellation, the requester's exit, the client stopping. */
static void policy_close(client *c, xfer *t, int st) {
  if (t->in_attempt) {
    t->in_attempt = false;
    (void)bw_policy_exit(c->h->o.policy, &t->ticket, st, NULL);
  }
}

/* Frees t's slot: everything of the request goes. */
static void slot_release(client *c, xfer *t) {
  if (t->state == X_QUEUED)
    unqueue(c, t);
  stop_transfer(c, t);
  bw__http_cancel_timer(c, &t->deadline);
  if (t->mon)
    bw_demonitor(c->ctx, t->mon);
  t->mon = 0;
  curl_slist_free_all(t->hdrs);
  t->hdrs = NULL;
  bw_http_req_free(t->q);
  t->q = NULL;
  bw__http_bufs_free(t);
  t->state = X_FREE;
  t->id += 1ull << 32;
  t->next = c->free_head;
  c->free_head = (uint32_t)(t - c->x);
}

/* Counts the request's end, before its reply is sent: a requester that
 * reads the stats once answered sees its request ended. */
static void count_end(client *c, xfer *t, int st, const bw_http_resp_t *r) {
  count_status(c, t, st);
  if (t->state == X_QUEUED) {
    unqueue(c, t);
    t->state = X_WAIT;
  }
  bw__http_cnt(c->h, t->row, BW__HC_INFL, (uint64_t)-1);
  if (r != NULL) /* the server answered: the latency histogram's requests */
    bw__http_latency(c->h, t->row, bw_now_ns(c->rt) - t->arrive_ns);
}

/* The request is over: answer (reply = false when the requester is gone)
 * with status st and the response r (NULL: none; freed here if not sent). */
static void answer(client *c, xfer *t, int st, bw_http_resp_t *r, bool reply) {
  policy_close(c, t, st);
  count_end(c, t, st, r);
  if (reply && t->in_policy && t->ticket.fallback_used) {
    /* the policy's fallback answered: its status, type and payload */
    const bw_policy_answer_t *a = &t->ticket.answer;
    bw__http_cnt(c->h, t->row, BW__HC_FALLBACK, 1);
    (void)bw_reply(c->ctx, &t->req, a->status, a->type, a->len ? a->data : NULL, a->len);
    bw_http_resp_free(r);
  } else if (reply && r != NULL) {
    int rc = bw_reply_move(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, r, sizeof *r,
                           bw_http_resp_dtor);
    /* on these the runtime did not take r (bw_reply_move's contract) */
    if (rc == BW_EINVAL || rc == BW_EREMOTE || rc == BW_ESHUTDOWN || rc == BW_ENOMEM)
      bw_http_resp_free(r);
  } else {
    if (reply)
      (void)bw_reply(c->ctx, &t->req, st, BW_HTTP_MSG_RESPONSE, NULL, 0);
    bw_http_resp_free(r);
  }
  slot_release(c, t);
}

static xfer *slot_of(client *c, const bw_msg_t *msg) {
  uint64_t id;
  if (msg->len != sizeof id)
    return NULL;
  memcpy(&id, msg->data, sizeof id);
  uint32_t i = (uint32_t)id;
  if (i >= c->nslots || c->x[i].state == X_FREE || c->x[i].id != id)
    return NULL; /* over meanwhile: a stale timer */
  return &c->x[i];
}

static int arm(client *c, xfer *t, uint32_t type, uint64_t ms, bw_timer_t *out) {
  return bw_send_after(c->rt, bw_self(c->ctx), ms, type, &t->id, sizeof t->id, out);
}

/* --- starting a transfer ------------------------------------------------------------------------ */

static void attempt_done(client *c, xfer *t, int st, bw_http_resp_t *r);

/* Starts the attempt's transfer now (a running slot is free). */
static void run(client *c, xfer *t) {
  bw__http_bufs_free(t);
  t->unacked = 0;
  t->paused = false;
  int rc = bw__http_setup_easy(c, t);
  if (rc == 0 && curl_multi_add_handle(c->multi, t->easy) != CURLM_OK)
    rc = BW_ENOMEM;
  if (rc != 0) {
    t->state = X_WAIT; /* not running: nothing to remove */
    attempt_done(c, t, rc, NULL);
    return;
  }
  t->state = X_RUN;
  t->start_ns = bw_now_ns(c->rt);
  c->nrunning++;
  uint64_t ms = t->in_policy ? t->ticket.timeout_ms : 0;
  if (ms > 0 && arm(c, t, MSG_ATTEMPT, ms, &t->attempt) != 0)
    t->attempt = 0; /* the deadline still bounds it */
}

static void run_queued(client *c) {
  while (c->qhead != NONE && c->nrunning < c->h->o.max_in_flight) {
    xfer *t = &c->x[c->qhead];
    c->qhead = t->next;
    if (c->qhead == NONE)
      c->qtail = NONE;
    bw__http_cnt(c->h, t->row, BW__HC_QUEUED, (uint64_t)-1);
    run(c, t);
  }
}

static void wait_for(client *c, xfer *t, uint64_t ms) {
  t->state = X_WAIT;
  if (arm(c, t, MSG_WAKE, ms ? ms : 1, &t->wake) != 0)
    answer(c, t, BW_ENOMEM, NULL, true);
}

/* The next attempt of t: the host's hold, the policy's stages, then a
 * transfer now or in the queue. */
static void attempt(client *c, xfer *t) {
  uint64_t now = bw_now_ns(c->rt);
  uint64_t held = held_until(c, t->host, now);
  bool outlasts = held != 0 && t->deadline_ns != 0 && held >= t->deadline_ns;
  if (held != 0 && !outlasts) {
    wait_for(c, t, (held - now + 999999u) / 1000000u);
    return;
  }
  if (t->in_policy) {
    int rc = bw_policy_enter(c->h->o.policy, &t->ticket);
    if (rc == BW_POLICY_RETRY) {
      wait_for(c, t, t->ticket.retry_in_ms);
      return;
    }
    if (rc != 0) {
      answer(c, t, rc, NULL, true);
      return;
    }
    t->in_attempt = true;
  }
  if (outlasts) {
    /* the server's wait outlasts ours: throttled at once, through the
     * policy (its counters, its fallback) when there is one */
    attempt_done(c, t, BW_EHTTP_THROTTLED, NULL);
    return;
  }
  if (c->nrunning < c->h->o.max_in_flight) {
    run(c, t);
    return;
  }
  t->state = X_QUEUED;
  t->next = NONE;
  uint32_t i = (uint32_t)(t - c->x);
  if (c->qtail == NONE)
    c->qhead = i;
  else
    c->x[c->qtail].next = i;
  c->qtail = i;
  bw__http_cnt(c->h, t->row, BW__HC_QUEUED, 1);
}

/* An attempt ended with st (r: its response, if any): the policy decides
 * between the final answer and another attempt. */
static void attempt_done(client *c, xfer *t, int st, bw_http_resp_t *r) {
  stop_transfer(c, t);
  t->state = X_WAIT;
  /* the server asked for time (429, or 503 and the like with Retry-After) */
  if (r != NULL && st != 0 && r->retry_after_ms > 0)
    hold_host(c, t->host, bw_now_ns(c->rt) + r->retry_after_ms * 1000000ull);
  if (!t->in_policy) {
    answer(c, t, st, r, true);
    return;
  }
  uint64_t retry_ms = 0;
  t->in_attempt = false;
  int rc = bw_policy_exit(c->h->o.policy, &t->ticket, st, &retry_ms);
  if (rc == BW_POLICY_RETRY && bw_http_req_is_idempotent(t->q) && t->seq == 0) {
    count_status(c, t, st); /* each failed attempt is counted once */
    bw__http_cnt(c->h, t->row, BW__HC_RETRY, 1);
    uint64_t ra = r != NULL ? r->retry_after_ms : 0;
    bw_http_resp_free(r);
    wait_for(c, t, retry_ms > ra ? retry_ms : ra);
    return;
  }
  /* final: the policy's status (st itself, or BW_EBUDGET, ...); the
   * response goes with it when it is this attempt's own status */
  int final = rc == BW_POLICY_RETRY ? st : rc;
  if (final != st) {
    bw_http_resp_free(r);
    r = NULL;
  }
  answer(c, t, final, r, true);
}

static void on_request(client *c, const bw_msg_t *msg) {
  bw_http_t *h = c->h;
  bw_http_req_t *q = bw_msg_take(c->ctx, msg);
  if (!(msg->flags & BW_MSGF_REQUEST) || q == NULL) {
    bw_http_req_free(q);
    if (msg->flags & BW_MSGF_REQUEST)
      (void)bw_reply(c->ctx, msg, BW_EINVAL, BW_HTTP_MSG_RESPONSE, NULL, 0);
    return;
  }
  char key[BW_HTTP_HOST_KEY_MAX];
  bool fits = bw__http_host_key(q->url, key, sizeof key);
  uint32_t row = bw__http_row_of(h, key, fits);
  bw__http_cnt(h, row, BW__HC_REQ, 1);
  if (c->free_head == NONE) {
    bw__http_cnt(h, row, BW__HC_QFULL, 1);
    bw_http_req_free(q);
    (void)bw_reply(c->ctx, msg, BW_ELIMIT, BW_HTTP_MSG_RESPONSE, NULL, 0);
    return;
  }
  xfer *t = &c->x[c->free_head];
  c->free_head = t->next;
  t->row = row;
  bw__http_cnt(h, row, BW__HC_INFL, 1);
  t->q = q;
  t->req = *msg;
  t->req.data = NULL;
  t->req.len = 0;
  t->max_body = h->o.max_body;
  t->max_header = h->o.max_header;
  t->state = X_WAIT;
  t->seq = 0;
  memcpy(t->host, key, sizeof t->host);
  uint64_t ms = q->timeout_ms ? q->timeout_ms : h->o.default_timeout_ms;
  t->arrive_ns = bw_now_ns(c->rt);
  t->deadline_ns = t->arrive_ns + ms * 1000000ull;
  if (arm(c, t, MSG_DEADLINE, ms, &t->deadline) != 0)
    t->deadline = 0; /* the requester's own deadline still ends its wait */
  if (msg->from != BW_PID_NONE)
    (void)bw_monitor(c->ctx, msg->from, &t->mon);
  t->in_policy = h->o.policy != NULL;
  if (t->in_policy) {
    bw_policy_ticket_init(&t->ticket);
    t->ticket.req = NULL; /* the fallback sees an empty request (the original is gone) */
  }
  attempt(c, t);
}

static void reap(client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    xfer *t = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    if (t == NULL || t->state != X_RUN)
      continue;
    CURLcode rc = m->data.result;
    int st = bw__http_status_of_curl(rc, t);
    bw_http_resp_t *r = rc == CURLE_OK ? bw__http_take_response(c, t, &st) : NULL;
    attempt_done(c, t, st, r);
  }
  run_queued(c);
}

static void action(client *c, curl_socket_t fd, int mask) {
  int running = 0;
  curl_multi_socket_action(c->multi, fd, mask, &running);
  reap(c);
}

/* --- the actor ----------------------------------------------------------------------------------------- */

static int cl_init(bw_ctx_t *ctx, void *state, void *arg) {
  client *c = state;
  bw_http_t *h = arg;
  if (h == NULL)
    return BW_EINVAL;
  c->h = h;
  c->ctx = ctx;
  c->rt = h->rt;
  c->nslots = h->o.max_in_flight + h->o.max_queued;
  c->x = calloc(c->nslots, sizeof *c->x);
  c->multi = curl_multi_init();
  if (c->x == NULL || c->multi == NULL) {
    if (c->multi)
      curl_multi_cleanup(c->multi);
    free(c->x);
    c->x = NULL;
    return BW_ENOMEM;
  }
  for (uint32_t i = 0; i < c->nslots; i++) {
    c->x[i].c = c;
    c->x[i].id = i;
    c->x[i].next = i + 1 < c->nslots ? i + 1 : NONE;
  }
  c->free_head = 0;
  c->qhead = c->qtail = NONE;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, bw__http_on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, bw__http_on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->o.max_per_host);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)h->o.max_per_host * 4);
  /* the policy's own breaker needs its actor to change state (the
   * executor form starts it the same way); it stays with the policy */
  bw_breaker_t *br = h->o.policy ? bw_policy_breaker(h->o.policy) : NULL;
  if (br != NULL && bw_breaker_pid(br) == BW_PID_NONE) {
    int rc = bw_breaker_start(br, NULL);
    if (rc != 0 && rc != BW_EALREADY) {
      curl_multi_cleanup(c->multi);
      free(c->x);
      c->x = NULL;
      return rc;
    }
  }
  /* restarted: nothing is in flight any more */
  bw__http_idle(h);
  /* release: pairs with bw_http_pid's acquire */
  bw__st64_rel(&h->pid, bw_self(ctx));
  return 0;
}

static void on_io(client *c, const bw_msg_t *msg) {
  const bw_io_event_t *ev = msg->data;
  sock *s = ev->ud;
  int mask = (ev->events & BW_IO_IN ? CURL_CSELECT_IN : 0) |
             (ev->events & BW_IO_OUT ? CURL_CSELECT_OUT : 0) |
             (ev->events & (BW_IO_ERR | BW_IO_HUP) ? CURL_CSELECT_ERR : 0);
  c->cur = s;
  action(c, ev->fd, mask);
  /* one-shot: re-arm what curl still wants of this socket */
  if (c->cur == s && s->want != 0)
    (void)bw_io_arm(c->ctx, s->w, s->want);
  c->cur = NULL;
}

/* The requester is gone or asked to stop: the transfer stops, closing its
 * connection. */
static void drop(client *c, xfer *t, bool reply) {
  bw__http_cnt(c->h, t->row, BW__HC_CANCEL, 1);
  answer(c, t, BW_ECANCELED, NULL, reply);
}

/* The armed timer for curl fired (see bw__http_on_timer): call curl if its
 * time has come, else arm again for the time it wants now. */
static void on_tick(client *c, const bw_msg_t *msg) {
  uint64_t gen;
  memcpy(&gen, msg->data, sizeof gen);
  if (gen != c->tick_gen)
    return; /* replaced by an earlier one */
  c->tick_timer = 0;
  c->tick_armed_ns = 0;
  if (c->tick_due_ns == 0)
    return; /* curl no longer wants a call */
  uint64_t now = bw_now_ns(c->rt);
  if (now < c->tick_due_ns) {
    (void)bw__http_arm_tick(c, (c->tick_due_ns - now + 999999u) / 1000000u);
    return;
  }
  c->tick_due_ns = 0;
  action(c, CURL_SOCKET_TIMEOUT, 0);
}

/* curl asked for a call as soon as possible (a timeout of 0) during this
 * handler: make it now, once; if it asks again, the next one goes through
 * the mailbox, so other messages are not starved by a curl that keeps
 * asking. */
static void tick_now(client *c) {
  if (!c->tick_now)
    return;
  c->tick_now = false;
  action(c, CURL_SOCKET_TIMEOUT, 0);
  if (c->tick_now) {
    c->tick_now = false;
    c->tick_due_ns = bw_now_ns(c->rt); /* due now: on_tick calls curl */
    (void)bw__http_arm_tick(c, 0);
  }
}

static void cl_dispatch(client *c, bw_ctx_t *ctx, const bw_msg_t *msg) {
  xfer *t;
  switch (msg->type) {
  case BW_HTTP_MSG_REQUEST:
    on_request(c, msg);
    break;
  case BW_MSG_IO:
    on_io(c, msg);
    break;
  case MSG_TICK:
    on_tick(c, msg);
    break;
  case MSG_DEADLINE:
    if ((t = slot_of(c, msg)) != NULL) {
      t->deadline = 0;
      answer(c, t, BW_ETIMEDOUT, NULL, true); /* an open attempt is reported timed out */
      run_queued(c);
    }
    break;
  case MSG_ATTEMPT:
    if ((t = slot_of(c, msg)) != NULL && t->state == X_RUN) {
      t->attempt = 0;
      attempt_done(c, t, BW_ETIMEDOUT, NULL);
      run_queued(c);
    }
    break;
  case MSG_WAKE:
    if ((t = slot_of(c, msg)) != NULL && t->state == X_WAIT) {
      t->wake = 0;
      attempt(c, t);
    }
    break;
  case BW_HTTP_MSG_ACK:
    if ((t = slot_of(c, msg)) != NULL && t->unacked > 0) {
      t->unacked--;
      if (t->paused && t->state == X_RUN && t->unacked < t->q->credit) {
        t->paused = false;
        /* curl hands the kept piece to on_stream now and asks for a
         * timer to go on reading */
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
        reap(c);
      }
    }
    break;
  case BW_HTTP_MSG_CANCEL: {
    uint64_t ref;
    if (msg->len != sizeof ref)
      break;
    memcpy(&ref, msg->data, sizeof ref);
    for (uint32_t i = 0; i < c->nslots; i++)
      if (c->x[i].state != X_FREE && c->x[i].req.ref == ref && c->x[i].req.from == msg->from) {
        drop(c, &c->x[i], true);
        run_queued(c);
        break;
      }
    break;
  }
  case BW_MSG_DOWN:
    /* a requester exited: its transfers stop, nothing is answered */
    for (uint32_t i = 0; i < c->nslots; i++)
      if (c->x[i].state != X_FREE && c->x[i].mon == msg->ref) {
        c->x[i].mon = 0; /* already gone: no demonitor */
        drop(c, &c->x[i], false);
      }
    run_queued(c);
    break;
  default:
    if (msg->flags & BW_MSGF_REQUEST)
      (void)bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
    break;
  }
}

static int cl_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  client *c = state;
  c->ctx = ctx;
  cl_dispatch(c, ctx, msg);
  tick_now(c);
  return BW_CONTINUE;
}

static void cl_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *why) {
  (void)why;
  client *c = state;
  c->ctx = ctx;
  if (c->x == NULL)
    return;
  for (uint32_t i = 0; i < c->nslots; i++)
    if (c->x[i].state != X_FREE)
      drop(c, &c->x[i], true);
}

/* Runs however the actor ends (a kill too): frees curl's handles. The
 * runtime has removed the watches already; curl closes its sockets. */
static void cl_cleanup(void *state) {
  client *c = state;
  if (c->x == NULL)
    return;
  bw_http_t *h = c->h;
  /* with no ctx, curl must not call back into the runtime: the watches
   * are gone with the actor, so its closes only close (bw__http_on_close) */
  c->closing = true;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, NULL);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
  if (c->tick_timer)
    (void)bw_timer_cancel(c->rt, c->tick_timer);
  for (uint32_t i = 0; i < c->nslots; i++) {
    xfer *t = &c->x[i];
    bw_timer_t *tms[] = {&t->deadline, &t->attempt, &t->wake};
    for (int k = 0; k < 3; k++)
      if (*tms[k])
        (void)bw_timer_cancel(c->rt, *tms[k]);
    if (t->state == X_RUN)
      curl_multi_remove_handle(c->multi, t->easy);
    if (t->easy)
      curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    bw_http_req_free(t->q);
    bw__http_bufs_free(t);
  }
  curl_multi_cleanup(c->multi);
  while (c->socks) {
    sock *s = c->socks;
    c->socks = s->next;
    free(s);
  }
  free(c->byfd);
  c->byfd = NULL;
  c->nbyfd = 0;
  free(c->x);
  c->x = NULL;
  bw__http_idle(h);
  /* release: pairs with bw_http_pid's acquire */
  bw__st64_rel(&h->pid, BW_PID_NONE);
}

const bw_behaviour_t bw_http_behaviour = {
    .name = "http_client",
    .state_size = sizeof(client),
    .init = cl_init,
    .handle = cl_handle,
    .terminate = cl_terminate,
    .cleanup = cl_cleanup,
    .never_muted = true, /* it answers many requesters: never frozen by one */
};
