/*
 * llm_gateway: the supervision tree, declared as C data (rest_for_one:
 * each child depends on those before it):
 *
 *   gateway (rest_for_one)
 *   ├── config        the settings; agents read them, so they start after it
 *   ├── metrics       the metrics reporter (/metrics)
 *   ├── connection    (rest_for_one) the model client:
 *   │   ├── breaker   the circuit breaker's actor
 *   │   └── client    the HTTP client (policy inside), registered "llm-client"
 *   ├── agents        (one_for_one) agent-0 .. agent-3
 *   └── health        the health monitor (/health), last: nothing needs it
 *
 * main fills in the specs of the library's actors (metrics, breaker,
 * client, health) from their handles.
 */
#include "gateway.h"

#include <string.h>

/*
 * The configuration actor: checks the settings and publishes them for the
 * actors after it (agents read the model name from it at init). Declared
 * first: when it restarts (a reload), rest_for_one restarts everything that
 * read it. It answers the health monitor's checks.
 */
_Atomic(const struct settings *) g_config;

static int config_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  const struct settings *s = arg;
  if (s->model[0] == '\0' || s->url[0] == '\0' || s->attempt_timeout_ms == 0 ||
      s->deadline_ms == 0)
    return BW_EINVAL; /* the tree fails to start, naming "config" */
  atomic_store(&g_config, s);
  return 0;
}

static int config_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == BW_HEALTH_MSG_CHECK && (msg->flags & BW_MSGF_REQUEST))
    (void)bw_health_answer(ctx, msg, BW_HEALTH_HEALTHY, g_set.model);
  return BW_CONTINUE;
}

static void config_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)state;
  (void)reason;
  atomic_store(&g_config, NULL);
}

static const bw_behaviour_t config_behaviour = {
    .name = "config",
    .init = config_init,
    .handle = config_handle,
    .terminate = config_terminate,
};

bw_child_spec_t connection_children[CONN__COUNT] = {
    [CONN_BREAKER] = {.id = "breaker"}, /* filled in main: bw_breaker_child_spec */
    [CONN_CLIENT] = {.id = "client"},   /* filled in main: bw_http_child_spec */
};
static const bw_sup_spec_t connection_sup = {
    .name = "connection",
    .strategy = BW_REST_FOR_ONE, /* the client needs the breaker */
    .intensity = 10,
    .period_ms = 5000,
    .children = connection_children,
    .nchildren = CONN__COUNT,
};

static const uint32_t agent_ids[NAGENTS] = {0, 1, 2, 3};
#define AGENT(i)                                                                             \
  {.id = "agent-" #i, .behaviour = &agent_behaviour, .arg = (void *)&agent_ids[i],          \
   .name = "agent-" #i}
const bw_child_spec_t agent_specs[NAGENTS] = {AGENT(0), AGENT(1), AGENT(2), AGENT(3)};
static const bw_sup_spec_t agents_sup = {
    .name = "agents",
    .strategy = BW_ONE_FOR_ONE, /* agents are independent of one another */
    .intensity = 10,
    .period_ms = 5000,
    .children = agent_specs,
    .nchildren = NAGENTS,
};

bw_child_spec_t gateway_children[CH__COUNT] = {
    [CH_CONFIG] = {.id = "config", .behaviour = &config_behaviour, .arg = &g_set,
                   .name = "config"},
    [CH_METRICS] = {.id = "metrics"}, /* filled in main: bw_metrics_child_spec */
    [CH_CONNECTION] = {.id = "connection", .supervisor = &connection_sup,
                       .type = BW_SUPERVISOR},
    [CH_AGENTS] = {.id = "agents", .supervisor = &agents_sup, .type = BW_SUPERVISOR},
    [CH_HEALTH] = {.id = "health"}, /* filled in main: bw_health_child_spec */
};
const bw_sup_spec_t gateway = {
    .name = "gateway",
    .strategy = BW_REST_FOR_ONE,
    .intensity = 10,
    .period_ms = 5000,
    .children = gateway_children,
    .nchildren = CH__COUNT,
};
