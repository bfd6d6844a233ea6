/*
 * bulwark: the circuit breaker's proxy mode (patterns/BREAKER.md, "Proxy
 * mode"): a request of a type outside the breaker's range is forwarded to
 * the target with bw_request and the call timeout, the requester kept by
 * copy in a fixed open-addressing table, the target's reply relayed. Run by
 * the actor (breaker_actor.c), which judges the outcomes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/breaker.h"
#include "bulwark/error.h"
#include "bulwark/event.h"
#include "bulwark/message.h"
#include "bulwark/registry.h"
#include "bulwark/runtime.h"
#include "patterns/breaker_internal.h"

static uint32_t pend_home(const bw_breaker_t *br, uint64_t ref) {
  return (uint32_t)((ref * 0x9E3779B97F4A7C15ull) >> 32) & br->pend_mask;
}

static br_pend_t *pend_find(bw_breaker_t *br, uint64_t ref) {
  if (ref == 0)
    return NULL;
  for (uint32_t i = pend_home(br, ref);; i = (i + 1) & br->pend_mask) {
    if (br->pend[i].ref == ref)
      return &br->pend[i];
    if (br->pend[i].ref == 0)
      return NULL;
  }
}

static void pend_put(bw_breaker_t *br, const br_pend_t *e) {
  uint32_t i = pend_home(br, e->ref);
  while (br->pend[i].ref != 0)
    i = (i + 1) & br->pend_mask;
  br->pend[i] = *e;
  br->npend++;
}

/* Removes by backward shift (linear probing keeps no tombstones). */
static void pend_remove(bw_breaker_t *br, br_pend_t *e) {
  uint32_t i = (uint32_t)(e - br->pend), j = i;
  for (;;) {
    j = (j + 1) & br->pend_mask;
    if (br->pend[j].ref == 0)
      break;
    uint32_t k = pend_home(br, br->pend[j].ref);
    /* move j back to i unless its home lies cyclically in (i, j] */
    bool in = i <= j ? (k > i && k <= j) : (k > i || k <= j);
    if (!in) {
      br->pend[i] = br->pend[j];
      i = j;
    }
  }
  br->pend[i].ref = 0;
  br->npend--;
}

static void proxy_outcome(br_actor_t *a, int status, uint32_t epoch, uint64_t dur_ns) {
  bw_breaker_t *br = a->br;
  bool slow = br->slow_ns != 0 && dur_ns > br->slow_ns;
  bw__br_on_outcome(a, bw__br_classify(br, status), slow, epoch, 1);
}

void bw__br_proxy_request(br_actor_t *a, const bw_msg_t *msg) {
  bw_breaker_t *br = a->br;
  bw_ctx_t *ctx = a->ctx;
  bw_pid_t target = br->cfg.target;
  if (target == BW_PID_NONE && br->cfg.target_name == NULL) {
    bw_reply(ctx, msg, BW_ESTATE, 0, NULL, 0);
    return;
  }
  if (msg->flags & BW_MSGF_MOVED) {
    bw_reply(ctx, msg, BW_ETOOBIG, 0, NULL, 0); /* forwards inline payloads only */
    return;
  }
  if (br->npend >= br->cfg.max_inflight) {
    bw_reply(ctx, msg, BW_ELIMIT, 0, NULL, 0);
    return;
  }
  uint32_t flags, epoch;
  bool half;
  if (bw__br_admit(br, &flags, &epoch, &half) != 0) {
    bw__br_pub_add(&br->pub.rejected, 1);
    if (half)
      bw__br_pub_add(&br->pub.not_permitted, 1);
    uint64_t retry = bw_breaker_retry_after_ms(br);
    bw_reply(ctx, msg, BW_ECIRCUIT_OPEN, BW_BREAKER_MSG_OPEN, &retry, sizeof retry);
    bw__br_publish_event(a, BW_EV_CALL_REJECTED, 1, 0);
    return;
  }
  int rc = 0;
  if (br->cfg.target_name != NULL)
    rc = bw_whereis(br->rt, br->cfg.target_name, &target) == 0 ? 0 : BW_ENOPROC;
  uint64_t ref = 0;
  if (rc == 0)
    rc = bw_request(ctx, target, msg->type, msg->data, msg->len, br->cfg.call_timeout_ms, &ref);
  if (rc != 0) {
    bw_reply(ctx, msg, rc, 0, NULL, 0);
    if (flags & PF_RECORD)
      proxy_outcome(a, rc, epoch, 0);
    return;
  }
  br_pend_t e;
  memset(&e, 0, sizeof e);
  e.ref = ref;
  e.start_ns = bw_now_ns(br->rt);
  e.epoch = epoch;
  e.flags = flags;
  e.req = *msg;
  e.req.data = NULL;
  e.req.len = 0;
  pend_put(br, &e);
}

/* A reply from the target, or its deadline (status BW_ETIMEDOUT). */
void bw__br_proxy_settle(br_actor_t *a, const bw_msg_t *msg, bool timed_out) {
  bw_breaker_t *br = a->br;
  br_pend_t *p = pend_find(br, msg->ref);
  if (p == NULL)
    return;
  br_pend_t e = *p;
  pend_remove(br, p);
  uint64_t now = bw_now_ns(br->rt);
  uint64_t dur = now > e.start_ns ? now - e.start_ns : 0;
  int status;
  if (timed_out) {
    status = BW_ETIMEDOUT;
    bw__br_pub_add(&br->pub.timeouts, 1);
    bw_reply(a->ctx, &e.req, status, 0, NULL, 0);
  } else if (msg->flags & BW_MSGF_MOVED) {
    /* a moved payload's destructor is not ours to pass on: the runtime
     * frees it after this handler; the requester gets the status only */
    status = msg->status;
    bw_reply(a->ctx, &e.req, status != 0 ? status : BW_ETOOBIG, msg->type, NULL, 0);
  } else {
    status = msg->status;
    bw_reply(a->ctx, &e.req, status, msg->type, msg->data, msg->len);
  }
  if (e.flags & PF_RECORD)
    proxy_outcome(a, status, e.epoch, dur);
}

