/*
 * llm_gateway: what the run shows: the status line once a second (the
 * tree, the breaker, the HTTP client, the ledger, the server's counters)
 * and the summary at the end.
 */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

/* Workers running / workers declared, walking the live tree. */
void count_tree(bw_runtime_t *rt, bw_pid_t sup, unsigned *up, unsigned *all, int depth) {
  bw_child_info_t info[8];
  size_t n = 0;
  if (depth > 4 || bw_sup_which_children(rt, sup, info, 8, &n) != 0)
    return;
  for (size_t i = 0; i < n && i < 8; i++) {
    if (info[i].type == BW_SUPERVISOR && info[i].pid != BW_PID_NONE) {
      count_tree(rt, info[i].pid, up, all, depth + 1);
      continue;
    }
    (*all)++;
    if (info[i].state == BW_CHILD_RUNNING)
      (*up)++;
  }
}

static const char *phase_name(uint64_t t, bw_breaker_t *br) {
  if (g_set.remote)
    return "live";
  if (in_outage(t))
    return "OUTAGE";
  if (in_burst(t))
    return "err-burst";
  if (g_set.outage_for_ms > 0 && t >= g_set.outage_at_ms + g_set.outage_for_ms &&
      !atomic_load(&g_ev.closed_after_outage) && bw_breaker_state(br) != BW_BREAKER_CLOSED)
    return "recovering";
  return "healthy";
}

void print_status(bw_runtime_t *rt, bw_pid_t root, bw_breaker_t *br, bw_http_t *http,
                         bw_health_t *h, uint64_t t) {
  unsigned up = 0, all = 0;
  count_tree(rt, root, &up, &all, 0);
  bw_http_stats_t hs;
  if (bw_http_stats(http, &hs) != 0)
    memset(&hs, 0, sizeof hs);
  uint64_t prompts = atomic_load(&g_led.prompts), model = atomic_load(&g_led.model);
  uint64_t fb = fallback_total(), failed = failed_total();
  char causes[200] = "";
  size_t off = 0;
  for (int i = 0; i < FAIL__COUNT && off < sizeof causes; i++) {
    uint64_t n = atomic_load(&g_led.failed[i]);
    if (n > 0)
      off += (size_t)snprintf(causes + off, sizeof causes - off, "%s%s %llu", off ? ", " : " (",
                              fail_names[i], (unsigned long long)n);
  }
  if (off > 0 && off < sizeof causes)
    snprintf(causes + off, sizeof causes - off, ")");
  char srv[96] = "";
  struct server_stats ss;
  if (!g_set.remote && server_stats(&ss))
    snprintf(srv, sizeof srv, " | server: %lu calls, %lu x 500, %lu x 503, %lu x 429", ss.calls,
             ss.e500, ss.e503, ss.e429);
  say("t=%2llus %-11s| tree %u/%u up, restarts %u | breaker %-9s | http %llu in flight, "
      "%llu queued | prompts %llu: model %llu, fallback %llu, failed %llu%s, in flight %llu | "
      "retries %llu | health %s%s\n",
      (unsigned long long)(t / 1000), phase_name(t, br), up, all, atomic_load(&g_ev.restarts),
      bw_breaker_state_name((int)bw_breaker_state(br)), (unsigned long long)hs.in_flight,
      (unsigned long long)hs.queued, (unsigned long long)prompts, (unsigned long long)model,
      (unsigned long long)fb, (unsigned long long)failed, causes,
      (unsigned long long)(prompts - model - fb - failed), (unsigned long long)hs.retries,
      bw_health_status_name(bw_health_status(h)), srv);
}

void print_summary(uint64_t t, uint64_t prompts, uint64_t model, uint64_t fb,
                          uint64_t failed, const bw_histogram_summary_t *lat,
                          const bw_policy_stats_t *pm, const bw_breaker_stats_t *bm,
                          const bw_http_stats_t *hs, const struct server_stats *ss, bool have_ss,
                          unsigned up, unsigned all, int final_health,
                          const bw_runtime_stats_t *rs) {
  say("\nsummary after %.1f s:\n", (double)t / 1000.0);
  say("  prompts %llu = model %llu + fallback %llu + failed %llu + in flight at stop %llu\n",
      (unsigned long long)prompts, (unsigned long long)model, (unsigned long long)fb,
      (unsigned long long)failed, (unsigned long long)(prompts - model - fb - failed));
  say("  fallback by cause:");
  for (int i = 1; i < BW_POLICY_CAUSE__COUNT; i++)
    if (atomic_load(&g_led.fallback[i]))
      say(" %s %llu", bw_policy_cause_name(i),
          (unsigned long long)atomic_load(&g_led.fallback[i]));
  say("\n  failed by cause:");
  for (int i = 0; i < FAIL__COUNT; i++)
    say(" %s %llu", fail_names[i], (unsigned long long)atomic_load(&g_led.failed[i]));
  say("\n  model answer latency: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
      (double)lat->p50_ns / 1e6, (double)lat->p99_ns / 1e6, (double)lat->max_ns / 1e6);
  say("  policy: %llu calls, %llu attempts, %llu retries, %llu timeouts, %llu budget "
      "refusals, %llu rate waits, %llu fallbacks, %llu in flight\n",
      (unsigned long long)pm->calls, (unsigned long long)pm->attempts,
      (unsigned long long)pm->retries, (unsigned long long)pm->timeouts,
      (unsigned long long)pm->budget_exhausted, (unsigned long long)pm->rate_waits,
      (unsigned long long)pm->fallbacks,
      (unsigned long long)pm->in_flight);
  say("  http client: %llu requests; responses 2xx %llu, 4xx %llu, 5xx %llu; throttled %llu, "
      "timeouts %llu, cancelled %llu, connection errors %llu, queue full %llu; %llu bytes out, "
      "%llu in\n",
      (unsigned long long)hs->requests, (unsigned long long)hs->responses_2xx,
      (unsigned long long)hs->responses_4xx, (unsigned long long)hs->responses_5xx,
      (unsigned long long)hs->throttled, (unsigned long long)hs->timeouts,
      (unsigned long long)hs->cancels, (unsigned long long)hs->conn_errors,
      (unsigned long long)hs->queue_full,
      (unsigned long long)hs->bytes_sent, (unsigned long long)hs->bytes_received);
  say("  breaker: opened %llu time(s) (%u in the outage), rejected %llu, failed %llu, "
      "succeeded %llu, ignored %llu; now %s\n",
      (unsigned long long)bm->opens, atomic_load(&g_ev.opens_in_outage),
      (unsigned long long)bm->rejected, (unsigned long long)bm->failed,
      (unsigned long long)bm->successful, (unsigned long long)bm->ignored,
      bw_breaker_state_name(bm->state));
  if (have_ss)
    say("  model server (since it last started): %lu calls, %lu ok, %lu errors (500), %lu unavailable (503), %lu over "
        "quota (429), %lu hangs\n",
        ss->calls, ss->ok, ss->e500, ss->e503, ss->e429, ss->hangs);
  say("  supervision: %u crash(es), %u restart(s) (%u of agents); tree %u/%u up at the end; "
      "health %s\n",
      atomic_load(&g_ev.crashes), atomic_load(&g_ev.restarts),
      atomic_load(&g_ev.agent_restarts), up, all, bw_health_status_name(final_health));
  say("  runtime: sent %llu = handled %llu + dead letters %llu (late replies %llu)\n",
      (unsigned long long)rs->sent, (unsigned long long)rs->handled,
      (unsigned long long)rs->dead_letters,
      (unsigned long long)rs->dead_by_reason[BW_DL_LATE_REPLY]);
}

