/*
 * llm_gateway: the load generator (an actor outside the tree: N prompts a
 * second to the agents, round robin), the ledger where every prompt ends
 * up, and the event log (what supervision, the breaker and the health
 * monitor report on the event bus).
 */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

const char *const fail_names[FAIL__COUNT] = {
    "timeout",     "model_error", "throttled",   "connection", "bad_answer", "client_full",
    "client_down", "agent_crash", "no_agent",    "agent_busy", "other"};

struct ledger g_led;
struct event_counts g_ev;

uint64_t fallback_total(void) {
  uint64_t n = 0;
  for (int i = 0; i < BW_POLICY_CAUSE__COUNT; i++)
    n += atomic_load(&g_led.fallback[i]);
  return n;
}

uint64_t failed_total(void) {
  uint64_t n = 0;
  for (int i = 0; i < FAIL__COUNT; i++)
    n += atomic_load(&g_led.failed[i]);
  return n;
}

static void led_fail(int why) {
  atomic_fetch_add(&g_led.failed[why], 1);
}

/* === The load generator ==================================================== */

struct generator {
  const struct gen_arg *m;
  bw_timer_t tick;
  uint32_t next_id, next_agent;
  uint64_t per_mille; /* prompts owed, in thousandths */
};

static int gen_init(bw_ctx_t *ctx, void *state, void *arg) {
  struct generator *g = state;
  g->m = arg;
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), GEN_TICK_MS, GEN_TICK, NULL, 0,
                          &g->tick);
}

static const char *const topics[] = {
    "Summarise the incident report.", "Draft a reply to the customer.",
    "Explain the stack trace.",       "Translate the release notes.",
    "Classify this support ticket.",  "Suggest a name for the service.",
};

static void gen_send(bw_ctx_t *ctx, struct generator *g) {
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  char name[16];
  snprintf(name, sizeof name, "agent-%u", g->next_agent);
  g->next_agent = (g->next_agent + 1) % NAGENTS;
  struct prompt p = {.sent_ns = bw_now_ns(rt), .id = ++g->next_id};
  snprintf(p.text, sizeof p.text, "%s", topics[p.id % (sizeof topics / sizeof topics[0])]);
  atomic_fetch_add(&g_led.prompts, 1);
  bw_pid_t to = BW_PID_NONE;
  uint64_t ref;
  /* By name: an agent's pid changes when it is restarted, and while it
   * restarts the name is free: nobody to send to. No deadline: the agent
   * always answers, or the runtime does for it. */
  int rc = bw_whereis(rt, name, &to);
  if (rc == 0)
    rc = bw_request(ctx, to, PROMPT, &p, sizeof p, 0, &ref);
  if (rc != 0) { /* nothing queued: settled here */
    led_fail(FAIL_NO_AGENT);
    (void)bw_counter_inc(g->m->failed);
  }
}

static void gen_settle(struct generator *g, bw_runtime_t *rt, const bw_msg_t *rep) {
  struct agent_reply r;
  if (rep->len != sizeof r) {
    /* No payload: the runtime's answer, the agent exited with it
     * (BW_ENOPROC while handling it, BW_ENOREPLY holding it deferred). */
    led_fail(rep->status == BW_ENOPROC || rep->status == BW_ENOREPLY ? FAIL_AGENT_CRASH
                                                                     : FAIL_OTHER);
    (void)bw_counter_inc(g->m->failed);
    return;
  }
  memcpy(&r, rep->data, sizeof r);
  if (rep->status == 0 && rep->type == AGENT_ANSWER) {
    if (r.cause == BW_POLICY_CAUSE_NONE) {
      atomic_fetch_add(&g_led.model, 1);
      if (g_set.outage_for_ms > 0 && run_ms(rt) >= g_set.outage_at_ms + g_set.outage_for_ms)
        atomic_fetch_add(&g_led.model_after_outage, 1);
      (void)bw_counter_inc(g->m->model);
      (void)bw_histogram_record(g->m->latency, bw_now_ns(rt) - r.sent_ns);
    } else {
      atomic_fetch_add(&g_led.fallback[r.cause > 0 && r.cause < BW_POLICY_CAUSE__COUNT
                                            ? r.cause
                                            : BW_POLICY_CAUSE_NONE],
                       1);
      (void)bw_counter_inc(g->m->fallback);
    }
  } else {
    led_fail(r.cause >= 0 && r.cause < FAIL__COUNT ? r.cause : FAIL_OTHER);
    (void)bw_counter_inc(g->m->failed);
  }
}

static int gen_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct generator *g = state;
  if (msg->flags & BW_MSGF_REPLY) {
    gen_settle(g, bw_ctx_runtime(ctx), msg);
    return BW_CONTINUE;
  }
  if (msg->type != GEN_TICK || !atomic_load(&g_producing))
    return BW_CONTINUE;
  /* rps per second at GEN_TICK_MS ticks: rps * tick / 1000 prompts a tick,
   * the fraction carried over. */
  unsigned rps = g_set.rps / g_set.scale;
  g->per_mille += (uint64_t)(rps > 1u ? rps : 1u) * GEN_TICK_MS;
  for (; g->per_mille >= 1000u; g->per_mille -= 1000u)
    gen_send(ctx, g);
  return BW_CONTINUE;
}

static void gen_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  struct generator *g = state;
  (void)bw_timer_cancel(bw_ctx_runtime(ctx), g->tick);
}

const bw_behaviour_t generator_behaviour = {
    .name = "load-generator",
    .state_size = sizeof(struct generator),
    .init = gen_init,
    .handle = gen_handle,
    .terminate = gen_terminate,
};

/* === The event log ========================================================= */

static int events_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type != BW_MSG_EVENT || msg->len < sizeof(bw_event_t))
    return BW_CONTINUE;
  bw_event_t ev;
  memcpy(&ev, msg->data, sizeof ev);
  uint64_t t = ev.time_ns / 1000000u - g_t0_ms; /* run time, ms */
  uint64_t outage_end = g_set.outage_at_ms + g_set.outage_for_ms;
  switch (ev.type) {
  case BW_EV_BREAKER_STATE:
    say("  [breaker] %s: %s -> %s\n", ev.source_name, bw_breaker_state_name((int)ev.a),
        bw_breaker_state_name((int)ev.b));
    /* Opened by the outage: while it lasts, or just after it, by failures
     * reported late (an attempt that timed out, at most a deadline). */
    if (g_set.outage_for_ms > 0 && ev.b == BW_BREAKER_OPEN && t >= g_set.outage_at_ms &&
        t < outage_end + g_set.deadline_ms)
      atomic_fetch_add(&g_ev.opens_in_outage, 1);
    if (g_set.outage_for_ms > 0 && ev.b == BW_BREAKER_CLOSED && t >= outage_end)
      atomic_store(&g_ev.closed_after_outage, true);
    break;
  case BW_EV_CHILD_EXITED:
    if (ev.reason_kind == BW_REASON_CRASH || ev.reason_kind == BW_REASON_KILLED) {
      atomic_fetch_add(&g_ev.crashes, 1);
      say("  [supervisor] %s/%s crashed: %s\n", ev.source_name, ev.subject_id, ev.text);
    }
    break;
  case BW_EV_CHILD_RESTARTED:
    atomic_fetch_add(&g_ev.restarts, 1);
    if (strcmp(ev.source_name, "agents") == 0)
      atomic_fetch_add(&g_ev.agent_restarts, 1);
    say("  [supervisor] %s/%s restarted (restart #%lld)\n", ev.source_name, ev.subject_id,
        (long long)ev.a);
    break;
  case BW_EV_SUP_ESCALATED:
    say("  [supervisor] %s gave up: %s\n", ev.source_name, ev.text);
    break;
  case BW_EV_HEALTH_CHANGED:
    say("  [health] %s -> %s\n", bw_health_status_name((int)ev.a),
        bw_health_status_name((int)ev.b));
    break;
  default:
    break;
  }
  return BW_CONTINUE;
}

const bw_behaviour_t events_behaviour = {.name = "event-log", .handle = events_handle};
