/*
 * llm_gateway: an agent. It takes a prompt (a request from the load
 * generator), adds what it knows (the model, from config), sends a
 * chat-completions request to the HTTP client, and answers the prompt when
 * the client answers: it keeps each prompt's request to reply to later.
 *
 * Every prompt it accepted gets exactly one reply: the client always
 * answers (the request's deadline bounds the call, retries included; if
 * the client exits, the runtime answers BW_ENOPROC). If the agent itself
 * crashes, the runtime answers the prompts it held with BW_ENOPROC
 * (requests monitor their target), and the client, which monitors its
 * requesters, cancels their transfers.
 */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

struct agent_slot {
  uint64_t ref;    /* the client request's ref; 0 = free */
  bw_msg_t prompt; /* the prompt's request (data cleared): bw_reply needs it */
  uint64_t sent_ns;
};

struct agent {
  uint32_t id;
  uint32_t inflight;
  const struct settings *cfg;
  struct agent_slot s[AGENT_INFLIGHT];
};

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  struct agent *a = state;
  a->id = *(const uint32_t *)arg;
  a->cfg = atomic_load(&g_config);
  return a->cfg != NULL ? 0 : BW_ESTATE; /* config starts first: this never fails */
}

static void agent_reply(bw_ctx_t *ctx, const bw_msg_t *prompt, int status, uint32_t type,
                        uint64_t sent_ns, int cause, const struct llm_answer *ans) {
  struct agent_reply r = {.sent_ns = sent_ns, .cause = cause};
  if (ans != NULL) {
    r.tokens = ans->tokens;
    memcpy(r.text, ans->text, sizeof r.text);
  }
  (void)bw_reply(ctx, prompt, status, type, &r, sizeof r);
}

/* The client's status (http.h's table) as the ledger's cause. */
static int fail_of(int status) {
  switch (status) {
  case BW_ETIMEDOUT: return FAIL_TIMEOUT;
  case BW_EHTTP_SERVER: return FAIL_MODEL_ERROR;
  case BW_EHTTP_THROTTLED: return FAIL_THROTTLED;
  case BW_ECONNREFUSED:
  case BW_EDNS:
  case BW_ETLS:
  case BW_EPROTO:
  case BW_ETOOBIG: return FAIL_CONNECTION;
  case BW_ELIMIT: return FAIL_CLIENT_FULL;
  case BW_ENOPROC:
  case BW_ENOTFOUND:
  case BW_ECANCELED: return FAIL_CLIENT_DOWN;
  default: return FAIL_OTHER;
  }
}

static void agent_prompt(bw_ctx_t *ctx, struct agent *a, const bw_msg_t *msg) {
  struct prompt p;
  if (msg->len != sizeof p) {
    (void)bw_reply(ctx, msg, BW_EINVAL, AGENT_FAILED, NULL, 0);
    return;
  }
  memcpy(&p, msg->data, sizeof p);
  /* Fault injection: a bug (say, a tool's output it cannot parse). bw_fail
   * unwinds at once; this prompt and every other it held are answered
   * BW_ENOPROC by the runtime, and its supervisor starts a fresh agent. */
  if (atomic_exchange(&g_crash_agent, false))
    bw_fail(ctx, BW_ESTATE, "agent-%u: injected crash, %u prompt(s) in flight", a->id,
            a->inflight + 1);
  if (a->inflight == AGENT_INFLIGHT) {
    agent_reply(ctx, msg, BW_ELIMIT, AGENT_FAILED, p.sent_ns, FAIL_AGENT_BUSY, NULL);
    return;
  }
  bw_pid_t client = BW_PID_NONE;
  uint64_t ref = 0;
  int rc = bw_whereis(bw_ctx_runtime(ctx), "llm-client", &client);
  if (rc == 0) {
    bw_http_req_t *q = model_request(a->id, a->cfg->model, p.text);
    /* The request's deadline is the policy's: the client answers by then,
     * retries included, and stops the transfer if it must. */
    rc = q == NULL ? BW_ENOMEM : bw_http_request(ctx, client, q, a->cfg->deadline_ms, &ref);
  }
  if (rc != 0) {
    agent_reply(ctx, msg, rc, AGENT_FAILED, p.sent_ns, fail_of(rc), NULL);
    return;
  }
  for (uint32_t i = 0; i < AGENT_INFLIGHT; i++) {
    struct agent_slot *s = &a->s[i];
    if (s->ref != 0)
      continue;
    s->ref = ref;
    s->prompt = *msg;
    s->prompt.data = NULL;
    s->prompt.len = 0;
    s->sent_ns = p.sent_ns;
    a->inflight++;
    return;
  }
}

/* The client's answer: pass it on to the prompt's sender. It is the
 * model's response (BW_HTTP_MSG_RESPONSE, a moved bw_http_resp_t the
 * runtime frees after this handler), the policy's fallback (LLM_FALLBACK,
 * inline), or an error with no payload. */
static void agent_answer(bw_ctx_t *ctx, struct agent *a, const bw_msg_t *rep) {
  for (uint32_t i = 0; i < AGENT_INFLIGHT; i++) {
    struct agent_slot *s = &a->s[i];
    if (s->ref != rep->ref || s->ref == 0)
      continue;
    struct llm_answer ans;
    const bw_http_resp_t *r =
        rep->type == BW_HTTP_MSG_RESPONSE && rep->len == sizeof *r ? rep->data : NULL;
    if (rep->type == BW_MSG_REQUEST_TIMEOUT) { /* only if the client's own deadline was late */
      agent_reply(ctx, &s->prompt, BW_ETIMEDOUT, AGENT_FAILED, s->sent_ns, FAIL_TIMEOUT, NULL);
    } else if (rep->status == 0 && rep->type == LLM_FALLBACK && rep->len == sizeof ans) {
      memcpy(&ans, rep->data, sizeof ans);
      agent_reply(ctx, &s->prompt, 0, AGENT_ANSWER, s->sent_ns, ans.cause, &ans);
    } else if (rep->status == 0 && r != NULL && r->code == 200 &&
               model_parse(r->body, r->body_len, &ans)) {
      agent_reply(ctx, &s->prompt, 0, AGENT_ANSWER, s->sent_ns, BW_POLICY_CAUSE_NONE, &ans);
    } else if (rep->status == 0) { /* a 4xx, or not a chat completion */
      agent_reply(ctx, &s->prompt, BW_EPROTO, AGENT_FAILED, s->sent_ns, FAIL_BAD_ANSWER, NULL);
    } else {
      agent_reply(ctx, &s->prompt, rep->status, AGENT_FAILED, s->sent_ns, fail_of(rep->status),
                  NULL);
    }
    s->ref = 0;
    a->inflight--;
    return;
  }
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct agent *a = state;
  if ((msg->flags & BW_MSGF_REPLY) || msg->type == BW_MSG_REQUEST_TIMEOUT) {
    agent_answer(ctx, a, msg);
  } else if (msg->type == PROMPT && (msg->flags & BW_MSGF_REQUEST)) {
    agent_prompt(ctx, a, msg);
  } else if (msg->type == BW_HEALTH_MSG_CHECK && (msg->flags & BW_MSGF_REQUEST)) {
    char why[48];
    snprintf(why, sizeof why, "%u prompts in flight", a->inflight);
    (void)bw_health_answer(ctx, msg,
                           a->inflight > AGENT_INFLIGHT * 3 / 4 ? BW_HEALTH_DEGRADED
                                                                : BW_HEALTH_HEALTHY,
                           why);
  }
  return BW_CONTINUE;
}

const bw_behaviour_t agent_behaviour = {
    .name = "agent",
    .state_size = sizeof(struct agent),
    .init = agent_init,
    .handle = agent_handle,
};
