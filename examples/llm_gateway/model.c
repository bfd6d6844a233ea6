/*
 * llm_gateway: the model client. One HTTP client actor (libcurl's multi
 * interface on the runtime's I/O: no thread per call) with a policy
 * around every request, run inside the client:
 *
 *   fallback -> deadline -> retry (decorrelated jitter, budget) -> breaker
 *            -> rate limit -> attempt timeout -> the client's own limits
 *            (10 transfers at once, 24 waiting: the bulkhead)
 *            -> POST /v1/chat/completions
 *
 * The breaker is ours (a child of the "connection" subtree, started before
 * the client); requests and answers are OpenAI-compatible chat-completions
 * JSON, built and parsed with jansson.
 */
#include "gateway.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fallback: when the policy refuses a call (breaker open, no rate
 * token, the bulkhead full, no retry budget), answer from a "cache" rather
 * than fail. Real errors (timeouts, the service's errors after the
 * retries) are not covered (fallback_on): the agent reports them. The
 * client shows the fallback no request (its request was moved). */
static int fallback(int status, int cause, const bw_msg_t *req, bw_policy_answer_t *out,
                    void *arg) {
  (void)status;
  (void)req;
  (void)arg;
  struct llm_answer a = {.cause = cause, .tokens = 0};
  snprintf(a.text, sizeof a.text, "(cached) The assistant is busy; please ask again soon.");
  out->status = 0;
  out->type = LLM_FALLBACK;
  out->len = sizeof a;
  memcpy(out->data, &a, sizeof a);
  return 0;
}

int model_client_new(bw_runtime_t *rt, bw_breaker_t **brp, bw_policy_t **polp,
                     bw_http_t **httpp) {
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "llm";
  bo.failure_threshold = 12;           /* 12 failed calls in a row ... */
  bo.window = BW_BREAKER_WINDOW_COUNT; /* ... or 90 % of the last 20: an error */
  bo.window_size = 20;                 /* burst (half the calls) does not open it */
  bo.minimum_calls = 10;
  bo.failure_rate_pct = 90.0;
  bo.open_ms = g_set.breaker_open_ms; /* then half-open: */
  bo.jitter_pct = 20;
  bo.half_open_permits = 3; /* 3 probes, 2 must succeed */
  bo.success_threshold = 2;
  bo.half_open_max_ms = 2 * g_set.attempt_timeout_ms;
  bo.classify = bw_http_classify; /* 5xx, timeouts, refused: failures; 429: ignored */
  int rc = bw_breaker_new(rt, &bo, brp);
  if (rc != 0)
    return rc;

  /* The "ai" preset for HTTP, tuned for this demo's scale (the preset's
   * 120 s timeouts suit a real model; the local one answers in ms). */
  bw_policy_opts_t po;
  rc = bw_http_policy_preset("ai", &po);
  if (rc != 0)
    return rc;
  po.name = "llm-client";
  po.deadline_ms = g_set.deadline_ms; /* the whole request, retries included */
  po.max_attempts = 3;
  po.backoff.kind = BW_RETRY_BACKOFF_DECORRELATED; /* jitter: retries never in step */
  po.backoff.initial_ms = 50;
  po.backoff.max_ms = 400;
  po.backoff.multiplier = 3.0;
  po.budget_opts.ratio = 0.2; /* retries: at most 20 % on top of calls */
  po.breaker = false;
  po.shared_breaker = *brp; /* ours, supervised in the tree */
  po.rate_limit = true;
  po.rate = g_set.limiter_rate; /* our side of the service's quota */
  po.rate_period_ms = 1000;
  po.rate_burst = 10;
  po.rate_wait_ms = 250; /* wait a little for a token, then refuse */
  po.attempt_timeout_ms = g_set.attempt_timeout_ms;
  /* No bulkhead in the policy: the client's transfer limits are the
   * bulkhead (below). (A policy bulkhead slot is not given back when the
   * client cancels a running attempt because its requester exited, so
   * each agent crash would shrink it for good.) */
  po.max_concurrent = 0;
  po.max_queued = 0;
  po.queue_timeout_ms = 0;
  po.fallback = fallback;
  po.fallback_on = BW_POLICY_FB_REJECTED;
  rc = bw_policy_new(rt, &po, polp);
  if (rc != 0)
    return rc;

  bw_http_opts_t ho;
  bw_http_opts_init(&ho);
  ho.name = "llm";
  ho.max_in_flight = 10; /* the bulkhead: 10 calls at once ... */
  ho.max_queued = 24;     /* ... 24 wait (at most their deadline); the rest: BW_ELIMIT */
  ho.max_per_host = 10;
  ho.default_timeout_ms = g_set.deadline_ms;
  ho.connect_timeout_ms = g_set.remote ? 10000 : 1000u * g_set.scale;
  ho.bearer_token_env = g_set.api_key_env; /* never printed, never in stats */
  ho.user_agent = "bulwark-llm-gateway/0.1";
  ho.policy = *polp;
  return bw_http_new(rt, &ho, httpp);
}

bw_http_req_t *model_request(uint32_t agent, const char *model, const char *text) {
  char system[48];
  snprintf(system, sizeof system, "You are agent-%u. Answer in one sentence.", agent);
  json_t *o = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:b}", "model", model,
                        "messages", "role", "system", "content", system, "role", "user",
                        "content", text, "max_tokens", 64, "stream", 0);
  char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  bw_http_req_t *q = body != NULL ? bw_http_req_new("POST", g_set.url) : NULL;
  if (q != NULL && (bw_http_req_header(q, "Content-Type: application/json") != 0 ||
                    bw_http_req_body(q, body, strlen(body)) != 0)) {
    bw_http_req_free(q);
    q = NULL;
  }
  free(body);
  if (q != NULL)
    bw_http_req_idempotent(q, 1); /* a completion may be asked for again */
  return q;
}

bool model_parse(const char *body, size_t len, struct llm_answer *out) {
  memset(out, 0, sizeof *out);
  if (body == NULL)
    return false;
  json_error_t err;
  json_t *o = json_loadb(body, len, 0, &err);
  json_t *choices = json_object_get(o, "choices");
  json_t *msg = json_object_get(json_array_get(choices, 0), "message");
  json_t *content = json_object_get(msg, "content");
  json_t *usage = json_object_get(o, "usage");
  bool ok = json_is_string(content);
  if (ok) {
    snprintf(out->text, sizeof out->text, "%s", json_string_value(content));
    json_int_t n = json_integer_value(json_object_get(usage, "completion_tokens"));
    out->tokens = n > 0 && n < 1000000 ? (uint32_t)n : 0u;
  }
  json_decref(o);
  return ok;
}
