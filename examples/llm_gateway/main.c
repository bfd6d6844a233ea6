/*
 * llm_gateway: agents answering prompts through a language-model service
 * over HTTP, kept up by supervision and protected by a resilience policy.
 *
 *   load generator --prompt--> agent-N --POST--> client (HTTP, libcurl multi,
 *   (an actor, N/s)            (4 actors)         on the runtime's I/O)
 *                                                 policy inside: fallback,
 *                                                 deadline, retry + budget,
 *                                                 breaker, rate limit,
 *                                                 attempt timeout; its
 *                                                 limits: the bulkhead
 *                                                      |  HTTP/1.1, JSON
 *                                                      v
 *                     model_server (a child process: OpenAI-compatible chat
 *                     completions with fault switches), or --url: a real one
 *
 * The tree is in tree.c; the files are listed in gateway.h. By default the
 * gateway starts examples/model_server and gives it the fault schedule:
 * a latency distribution (10-90 ms, 4 % up to 400 ms more), random errors
 * (500), two error bursts, a quota (429 with Retry-After), hangs (no
 * answer: the attempt timeout stops the transfer and closes its
 * connection); the outage is the server going away (killed, then started
 * again on the same port when the outage is over: server.c says why not
 * its 503 mode). What a user sees, in the default run (20 s): healthy
 * traffic; an error burst that retries absorb; an agent crash that its
 * supervisor repairs; the outage: calls fail, the breaker opens, the
 * fallback answers from a "cache", half-open probes fail and the breaker
 * reopens; the service comes back, a probe succeeds, the breaker closes,
 * model answers resume.
 *
 *   ./llm_gateway                          20 s, a status line per second
 *   ./llm_gateway --duration 60 --outage-at 20 --outage-for 15
 *   ./llm_gateway --hang-rate 5 --error-rate 10 --slow --quota 30
 *   ./llm_gateway --crash-agent-at 3       (off: --crash-agent-at -1)
 *   ./llm_gateway --port 9000              observer port (0 = any free one)
 *   ./llm_gateway --quiet --duration 3     only the summary line (ctest)
 *   OPENAI_API_KEY=... ./llm_gateway --url https://api.openai.com/v1 \
 *       --model gpt-4o-mini --rps 1        a real service instead
 *
 * Every prompt is accounted for: answered by the model, answered by the
 * fallback (by cause), or failed (by cause); the run checks prompts =
 * answered + failed + in flight, with nothing in flight after the drain.
 * Exit code 0 when the accounting balances and the faults had the effects
 * described, 1 otherwise, 2 on a bad command line. Only the public header
 * is used (and jansson for the JSON).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include "gateway.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_failures;

#define EXPECT(cond)                                                                         \
  ((cond) ? true                                                                             \
          : (fprintf(stderr, "llm_gateway: FAILED at %s:%d: %s\n", __FILE__, __LINE__, #cond), \
             g_failures++, false))

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The handles of the parts that live in the tree. */
struct parts {
  bw_breaker_t *br;
  bw_policy_t *pol;
  bw_http_t *http;
  bw_metrics_t *met;
  bw_health_t *health;
  struct gen_arg gm;
};

/* Makes the handles and fills the tree's specs; metrics and health. */
static int setup(bw_runtime_t *rt, struct parts *p) {
  int rc = model_client_new(rt, &p->br, &p->pol, &p->http);
  if (rc == 0)
    rc = bw_breaker_child_spec(p->br, "breaker", &connection_children[CONN_BREAKER]);
  if (rc == 0)
    rc = bw_http_child_spec(p->http, "client", &connection_children[CONN_CLIENT]);
  connection_children[CONN_CLIENT].name = "llm-client"; /* agents find it by name */

  /* Metrics: the breaker, the HTTP client per host (bulwark_http_*: the
   * model server's requests, errors, latency), the agents' mailboxes, the
   * gateway's counters. */
  if (rc == 0)
    rc = bw_metrics_new(rt, NULL, &p->met);
  if (rc == 0)
    rc = bw_metrics_child_spec(p->met, "metrics", &gateway_children[CH_METRICS]);
  if (rc == 0)
    rc = bw_metrics_add_breaker(p->met, p->br);
  if (rc == 0)
    rc = bw_metrics_add_http(p->met, p->http);
  for (unsigned i = 0; rc == 0 && i < NAGENTS; i++)
    rc = bw_metrics_add_actor(p->met, agent_specs[i].name);
  bw_metric_family_t *fam = NULL;
  static const char *const result_label[] = {"result"};
  if (rc == 0)
    rc = bw_metrics_family(p->met, BW_METRIC_COUNTER, "gateway_prompts_total",
                           "Prompts by result.", result_label, 1, &fam);
  const char *model_v[] = {"model"}, *fallback_v[] = {"fallback"}, *failed_v[] = {"failed"};
  if (rc == 0)
    rc = bw_metrics_counter(fam, model_v, &p->gm.model);
  if (rc == 0)
    rc = bw_metrics_counter(fam, fallback_v, &p->gm.fallback);
  if (rc == 0)
    rc = bw_metrics_counter(fam, failed_v, &p->gm.failed);
  if (rc == 0)
    rc = bw_metrics_histogram_new(p->met, "gateway_answer_seconds",
                                  "Prompt to model answer, as the client sees it.",
                                  &p->gm.latency);

  /* Health: the breaker, config and the agents; restart storms and
   * escalations from the event bus (the defaults). */
  bw_health_opts_t ho;
  bw_health_opts_init(&ho);
  ho.name = "gateway";
  ho.period_ms = 500;
  if (rc == 0)
    rc = bw_health_new(rt, &ho, &p->health);
  if (rc == 0)
    rc = bw_health_child_spec(p->health, "health", &gateway_children[CH_HEALTH]);
  bw_health_component_t hc;
  if (rc == 0) {
    bw_health_component_init(&hc, BW_HEALTH_KIND_BREAKER, "llm-breaker");
    hc.breaker = p->br;
    rc = bw_health_add(p->health, &hc);
  }
  for (unsigned i = 0; rc == 0 && i <= NAGENTS; i++) {
    const char *name = i < NAGENTS ? agent_specs[i].name : "config";
    bw_health_component_init(&hc, BW_HEALTH_KIND_ACTOR, name);
    hc.target_name = name;
    rc = bw_health_add(p->health, &hc);
  }
  /* The live tree page shows the breaker and the monitor. */
  if (rc == 0)
    rc = bw_tree_annotate_breaker(rt, p->br);
  if (rc == 0)
    rc = bw_tree_annotate_health(rt, p->health);
  return rc;
}

int main(int argc, char **argv) {
  int rc = parse_args(argc, argv);
  if (rc != 0)
    return rc;
  if (g_set.remote && getenv(g_set.api_key_env) == NULL) {
    fprintf(stderr, "llm_gateway: %s is not set; calling %s without an API key\n",
            g_set.api_key_env, g_set.url);
    g_set.api_key_env = NULL;
  }
  json_object_seed(0); /* jansson's hash seed, once, before any thread uses it */

  bw_runtime_t *rt = NULL;
  rc = bw_runtime_create(NULL, &rt);
  if (rc != 0) {
    fprintf(stderr, "llm_gateway: bw_runtime_create: %s\n", bw_strerror(rc));
    return 1;
  }
  /* The run's clock starts now; the model server's fault schedule is in
   * times after its own start, a few ms later. */
  g_t0_ms = bw_now_ms(rt);
  pid_t server = -1;
  if (!g_set.remote && (server = server_start(0, 0)) < 0) {
    bw_runtime_destroy(rt);
    return 1;
  }

  static struct parts p;
  bw_observer_t *obs = NULL;
  rc = setup(rt, &p);
  bw_pid_t events = BW_PID_NONE, root = BW_PID_NONE, gen = BW_PID_NONE;
  if (rc == 0)
    rc = bw_spawn(rt, &events_behaviour, NULL, NULL, &events);
  if (rc == 0)
    rc = bw_event_subscribe(rt, events,
                            BW_EV_MASK(BW_EV_BREAKER_STATE) | BW_EV_MASK(BW_EV_CHILD_EXITED) |
                                BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                BW_EV_MASK(BW_EV_SUP_ESCALATED) |
                                BW_EV_MASK(BW_EV_HEALTH_CHANGED));
  bw_sup_error_t err;
  if (rc == 0 && (rc = bw_supervisor_start(rt, &gateway, &root, &err)) != 0)
    fprintf(stderr, "llm_gateway: start failed at %s: %s\n", err.child, err.message);
  if (rc == 0)
    rc = bw_spawn(rt, &generator_behaviour, &p.gm, NULL, &gen);
  if (rc != 0) {
    fprintf(stderr, "llm_gateway: setup: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    bw_runtime_destroy(rt);
    server_stop(server);
    return 1;
  }

  /* --- The observer, if it was built. ----------------------------------- */
  bw_observer_opts_t oo;
  bw_observer_opts_init(&oo);
  oo.port = (uint16_t)g_set.port;
  oo.tree_root = root;
  oo.metrics = p.met;
  oo.health = p.health;
  int orc = bw_observer_start(rt, &oo, &obs);
  if (orc == BW_ESTATE && oo.port != 0) {
    say("observer: port %u is taken; using any free port\n", (unsigned)oo.port);
    oo.port = 0;
    orc = bw_observer_start(rt, &oo, &obs);
  }
  say("llm_gateway: %u agents -> client (HTTP; retry, breaker, %llu/s limit, %llu ms timeout)"
      " -> %s (%s%s); %u prompts/s, %u s\n",
      NAGENTS, (unsigned long long)g_set.limiter_rate,
      (unsigned long long)g_set.attempt_timeout_ms, g_set.url, g_set.model,
      g_set.remote ? "" : ", model_server child", g_set.rps / g_set.scale, g_set.duration_s);
  if (orc == 0)
    say("observer: http://127.0.0.1:%u/  (also /metrics, /health, /tree)\n",
        (unsigned)bw_observer_port(obs));
  else
    say("observer: not available (%s)\n", bw_strerror(orc));
  if (g_set.remote)
    say("faults: the service's own");
  else if (g_set.outage_for_ms > 0)
    say("faults: outage %.1f-%.1f s", (double)g_set.outage_at_ms / 1000.0,
        (double)(g_set.outage_at_ms + g_set.outage_for_ms) / 1000.0);
  else
    say("faults: no outage");
  if (g_set.crash_at_ms >= 0)
    say(", agent crash at %.1f s", (double)g_set.crash_at_ms / 1000.0);
  if (!g_set.remote)
    say(", hangs %u %%, errors %u %%, quota %u/s%s%s\n", g_set.hang_pct, g_set.error_pct,
        g_set.quota_rps, g_set.bursts ? ", error bursts" : "", g_set.slow ? ", slow" : "");
  else
    say("\n");
  atomic_store(&g_producing, true);

  /* --- Run: inject, print, until the time is up and the story is told. --
   * The run ends when the time is up *and* the faults have had their
   * effect (the breaker closed again after the outage, the crashed agent
   * was restarted), so a slow machine stretches it rather than failing. */
  const uint64_t total = (uint64_t)g_set.duration_s * 1000u, deadline = total + 60000u;
  uint64_t t = 0, next_status = 1000;
  bool crashed = false, down = false, restarted = false;
  for (;;) {
    sleep_ms(10);
    t = run_ms(rt);
    if (!g_set.remote && g_set.outage_for_ms > 0 && !down && in_outage(t)) {
      say("  >> fault: the model server is killed (outage for %.1f s)\n",
          (double)g_set.outage_for_ms / 1000.0);
      server_kill(server);
      server = -1;
      down = true;
    }
    if (down && !restarted && t >= g_set.outage_at_ms + g_set.outage_for_ms) {
      say("  >> the model server is started again on port %u\n", (unsigned)server_port());
      restarted = true;
      server = server_start(server_port(), t);
      EXPECT(server > 0); /* the same port, free again */
    }
    if (!crashed && g_set.crash_at_ms >= 0 && t >= (uint64_t)g_set.crash_at_ms) {
      say("  >> fault: the next agent to take a prompt crashes\n");
      atomic_store(&g_crash_agent, true);
      crashed = true;
    }
    if (t >= next_status) {
      print_status(rt, root, p.br, p.http, p.health, t);
      next_status += 1000;
    }
    bool effects = true;
    if (g_set.outage_for_ms > 0)
      effects = atomic_load(&g_ev.closed_after_outage) &&
                bw_breaker_state(p.br) == BW_BREAKER_CLOSED &&
                atomic_load(&g_led.model_after_outage) > 0;
    if (g_set.crash_at_ms >= 0)
      effects = effects && atomic_load(&g_ev.agent_restarts) >= 1;
    if ((t >= total && effects) || t >= deadline)
      break;
  }
  EXPECT(t < deadline); /* the faults had their effect in time */

  /* --- Drain: no new prompts; wait until every prompt is settled. ------- */
  atomic_store(&g_producing, false);
  say("  >> load stopped; draining\n");
  uint64_t prompts = 0, model = 0, fb = 0, failed = 0;
  const uint64_t drain_until = bw_now_ms(rt) + 30000u + 2 * g_set.deadline_ms;
  do {
    sleep_ms(10);
    prompts = atomic_load(&g_led.prompts);
    model = atomic_load(&g_led.model);
    fb = fallback_total();
    failed = failed_total();
  } while (model + fb + failed != prompts && bw_now_ms(rt) < drain_until);

  /* --- Read what the parts say, while they run. ------------------------- */
  (void)bw_breaker_flush(p.br, 5000);
  bw_breaker_stats_t bm;
  (void)bw_breaker_stats(p.br, &bm);
  bw_policy_stats_t pm;
  (void)bw_policy_stats(p.pol, &pm);
  bw_http_stats_t hs;
  EXPECT(bw_http_stats(p.http, &hs) == 0);
  struct server_stats ss;
  bool have_ss = !g_set.remote && server_stats(&ss);
  /* the client's one host (the model server), as /metrics labels it */
  static bw_http_host_stats_t hosts[BW_HTTP_HOSTS_MAX + 1];
  size_t nhosts = 0;
  EXPECT(bw_http_host_stats(p.http, hosts, BW_HTTP_HOSTS_MAX + 1, &nhosts) == 0 && nhosts == 1);
  bw_histogram_summary_t lat = {0}, host_lat = {0};
  bw_metrics_snapshot_t *snap = NULL;
  if (bw_metrics_collect(p.met, 5000) == 0 && bw_metrics_latest(p.met, &snap) == 0) {
    (void)bw_metrics_snapshot_histogram(snap, "gateway_answer_seconds", NULL, 0, &lat);
    const char *host_lv[] = {bw_http_name(p.http), hosts[0].host};
    (void)bw_metrics_snapshot_histogram(snap, "bulwark_http_request_duration_seconds", host_lv,
                                        2, &host_lat);
    bw_metrics_snapshot_release(snap);
  }
  (void)bw_health_flush(p.health, 5000);
  int final_health = bw_health_status(p.health);
  unsigned up = 0, all = 0;
  count_tree(rt, root, &up, &all, 0);
  int http_tree = 0, http_health = 0;
  static char body[65536];
  if (obs != NULL) {
    /* The observer serves our tree (the HTTP client in it) and health:
     * what the live page draws. */
    http_tree = http_get(bw_observer_port(obs), "/tree", body, sizeof body);
    EXPECT(http_tree == 200 && strstr(body, "\"client\"") != NULL &&
           strstr(body, "\"agent-3\"") != NULL);
    http_health = http_get(bw_observer_port(obs), "/health", body, sizeof body);
    EXPECT(http_health == 200 || http_health == 503);
    (void)bw_observer_stop(obs);
    obs = NULL;
  }

  /* --- Stop, free the handles the tree's actors used, stop the server. -- */
  EXPECT(bw_runtime_stop(rt) == 0);
  bw_runtime_stats_t rs;
  (void)bw_runtime_stats(rt, &rs);
  (void)bw_tree_forget_all(rt);
  EXPECT(bw_health_destroy(p.health) == 0);
  EXPECT(bw_metrics_destroy(p.met) == 0);
  EXPECT(bw_http_destroy(p.http) == 0);
  EXPECT(bw_policy_destroy(p.pol) == 0);
  EXPECT(bw_breaker_destroy(p.br) == 0);
  server_stop(server);

  print_summary(t, prompts, model, fb, failed, &lat, &pm, &bm, &hs, &ss, have_ss, up, all,
                final_health, &rs);
  say("  per host (bulwark_http_*): %s: %llu answered, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      hosts[0].host, (unsigned long long)host_lat.count, (double)host_lat.p50_ns / 1e6,
      (double)host_lat.p99_ns / 1e6, (double)host_lat.max_ns / 1e6);

  /* --- Self-check: invariants, nothing that depends on timing. ---------- */
  uint64_t in_flight = prompts - model - fb - failed;
  EXPECT(prompts > 0 && model > 0);
  EXPECT(model + fb + failed == prompts); /* every prompt accounted for once */
  EXPECT(in_flight == 0);
  EXPECT(hs.in_flight == 0 && hs.queued == 0);
  EXPECT(host_lat.count > 0 && host_lat.count <= hs.requests); /* the reporter has the host */
  /* The policy's calls not finished: only those the client cancelled
   * because their agent crashed (it drops them without ending the policy's
   * ticket: a known client bug), never more. */
  EXPECT(pm.in_flight <= hs.cancels);
  EXPECT(rs.sent == rs.handled + rs.dead_letters);
  EXPECT(up == all && all == 3u + CONN__COUNT + NAGENTS);
  if (g_set.outage_for_ms > 0) {
    EXPECT(atomic_load(&g_ev.opens_in_outage) >= 1); /* the outage opened the breaker */
    EXPECT(atomic_load(&g_ev.closed_after_outage));  /* and it closed after it */
    EXPECT(bm.state == BW_BREAKER_CLOSED);
    EXPECT(atomic_load(&g_led.fallback[BW_POLICY_CAUSE_BREAKER]) > 0); /* fail fast, answered */
    EXPECT(atomic_load(&g_led.model_after_outage) > 0); /* the model answers again */
    EXPECT(hs.conn_errors > 0);                         /* the client saw it go */
  }
  if (g_set.crash_at_ms >= 0) {
    EXPECT(atomic_load(&g_ev.agent_restarts) >= 1);           /* the crash was repaired */
    EXPECT(atomic_load(&g_led.failed[FAIL_AGENT_CRASH]) >= 1); /* its prompt, counted */
  }

  bw_runtime_destroy(rt);
  if (g_failures) {
    fprintf(stderr, "llm_gateway: FAILED: %d unexpected result(s)\n", g_failures);
    return 1;
  }
  printf("%sllm_gateway: ok: %llu prompts = model %llu + fallback %llu + failed %llu; "
         "breaker opened %llu time(s) and closed; %u restart(s)%s\n",
         g_quiet ? "" : "\n", (unsigned long long)prompts, (unsigned long long)model,
         (unsigned long long)fb, (unsigned long long)failed, (unsigned long long)bm.opens,
         atomic_load(&g_ev.restarts), http_tree == 200 ? "; observer served /tree" : "");
  return 0;
}
