/*
 * llm_gateway: an agent. It takes a prompt (a request from the load
 * generator), adds what it knows (the model, from config), sends a
 * chat-completions request to the HTTP client, and answers the prompt when
 * the client answers: it keeps the prompt as a reply token (bw_reply_defer)
 * and the model call's continuation (bw_then) answers it, so there is no
 * table of prompts in flight and no reply ref to match (bulwark/reply.h).
 *
 * Every prompt it accepted gets exactly one reply: the client always
 * answers (the request's deadline bounds the call, retries included; if
 * the client exits, the runtime settles the call BW_ENOPROC). If the agent
 * itself crashes, the runtime answers the prompts it held with BW_ENOREPLY
 * (their tokens), frees the continuations' closures, and the client, which
 * monitors its requesters, cancels their transfers.
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent {
  uint32_t id;
  uint32_t inflight;
  const struct settings *cfg;
};

/* A prompt in flight: kept until the model call is settled. */
struct pending {
  bw_reply_token_t prompt; /* the load generator's request, answered once */
  uint64_t sent_ns;
};

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  struct agent *a = state;
  a->id = *(const uint32_t *)arg;
  a->cfg = atomic_load(&g_config);
  return a->cfg != NULL ? 0 : BW_ESTATE; /* config starts first: this never fails */
}

static void agent_reply(bw_ctx_t *ctx, bw_reply_token_t *prompt, int status, uint32_t type,
                        uint64_t sent_ns, int cause, const struct llm_answer *ans) {
  struct agent_reply r = {.sent_ns = sent_ns, .cause = cause};
  if (ans != NULL) {
    r.tokens = ans->tokens;
    memcpy(r.text, ans->text, sizeof r.text);
  }
  (void)bw_reply_token(ctx, prompt, status, type, &r, sizeof r);
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

/* The client's answer, passed on to the prompt's sender: the model's
 * response (BW_HTTP_MSG_RESPONSE, a moved bw_http_resp_t the runtime frees
 * after this call), the policy's fallback (LLM_FALLBACK, inline), or an
 * error (the client's, or BW_ETIMEDOUT if its own deadline was late). */
static int agent_answer(bw_ctx_t *ctx, void *state, const bw_msg_t *rep, int status,
                        void *closure) {
  struct agent *a = state;
  struct pending *p = closure; /* freed by the runtime after this call */
  struct llm_answer ans;
  const bw_http_resp_t *r =
      rep != NULL && rep->type == BW_HTTP_MSG_RESPONSE && rep->len == sizeof *r ? rep->data
                                                                                 : NULL;
  a->inflight--;
  if (status == 0 && rep->type == LLM_FALLBACK && rep->len == sizeof ans) {
    memcpy(&ans, rep->data, sizeof ans);
    agent_reply(ctx, &p->prompt, 0, AGENT_ANSWER, p->sent_ns, ans.cause, &ans);
  } else if (status == 0 && r != NULL && r->code == 200 &&
             model_parse(r->body, r->body_len, &ans)) {
    agent_reply(ctx, &p->prompt, 0, AGENT_ANSWER, p->sent_ns, BW_POLICY_CAUSE_NONE, &ans);
  } else if (status == 0) { /* a 4xx, or not a chat completion */
    agent_reply(ctx, &p->prompt, BW_EPROTO, AGENT_FAILED, p->sent_ns, FAIL_BAD_ANSWER, NULL);
  } else {
    agent_reply(ctx, &p->prompt, status, AGENT_FAILED, p->sent_ns, fail_of(status), NULL);
  }
  return BW_CONTINUE;
}

static void agent_prompt(bw_ctx_t *ctx, struct agent *a, const bw_msg_t *msg) {
  /* Fault injection: a bug (say, a tool's output it cannot parse). bw_fail
   * unwinds at once; the runtime answers this prompt BW_ENOPROC and every
   * other it held BW_ENOREPLY, and its supervisor starts a fresh agent. */
  if (atomic_exchange(&g_crash_agent, false))
    bw_fail(ctx, BW_ESTATE, "agent-%u: injected crash, %u prompt(s) in flight", a->id,
            a->inflight + 1);
  struct prompt pr;
  struct pending *p = malloc(sizeof *p);
  if (p == NULL || msg->len != sizeof pr || bw_reply_defer(ctx, msg, &p->prompt) != 0) {
    (void)bw_reply(ctx, msg, p == NULL ? BW_ENOMEM : BW_EINVAL, AGENT_FAILED, NULL, 0);
    free(p);
    return;
  }
  memcpy(&pr, msg->data, sizeof pr);
  p->sent_ns = pr.sent_ns;
  bw_pid_t client = BW_PID_NONE;
  uint64_t ref = 0;
  bool busy = a->inflight == AGENT_INFLIGHT;
  int rc = busy ? BW_ELIMIT : bw_whereis(bw_ctx_runtime(ctx), "llm-client", &client);
  if (rc == 0) {
    bw_http_req_t *q = model_request(a->id, a->cfg->model, pr.text);
    /* The request's deadline is the policy's: the client answers by then,
     * retries included, and stops the transfer if it must. */
    rc = q == NULL ? BW_ENOMEM : bw_http_request(ctx, client, q, a->cfg->deadline_ms, &ref);
  }
  if (rc == 0)
    rc = bw_then(ctx, ref, agent_answer, p, free);
  if (rc != 0) {
    agent_reply(ctx, &p->prompt, rc, AGENT_FAILED, p->sent_ns,
                busy ? FAIL_AGENT_BUSY : fail_of(rc), NULL);
    free(p);
    return;
  }
  a->inflight++;
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct agent *a = state;
  if (msg->type == PROMPT && (msg->flags & BW_MSGF_REQUEST)) {
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
