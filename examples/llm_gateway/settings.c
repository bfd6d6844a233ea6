/*
 * llm_gateway: the command line, and the settings derived from it.
 *
 * Faults default to fractions of the run (outage from 35 % for 25 %, but at
 * least 3 s, long enough for open, failed probes and reopening; agent
 * crash at 20 %; error bursts at 15 % and 80 %), so a short run tells the
 * same story. BW_TEST_SCALE=N (sanitizer builds) divides the load by N and
 * stretches timeouts N times.
 */
#define _GNU_SOURCE /* readlink, for the path of the model server */

#include "gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct settings g_set;
bool g_quiet;
uint64_t g_t0_ms;
atomic_bool g_producing;
atomic_bool g_crash_agent;

void say(const char *fmt, ...) {
  if (g_quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

uint64_t run_ms(bw_runtime_t *rt) {
  return bw_now_ms(rt) - g_t0_ms;
}

bool in_outage(uint64_t t) {
  return g_set.outage_for_ms > 0 && t >= g_set.outage_at_ms &&
         t < g_set.outage_at_ms + g_set.outage_for_ms;
}

uint64_t burst_at_ms(int i) {
  uint64_t run = (uint64_t)g_set.duration_s * 1000u;
  return i == 0 ? run * 15 / 100 : run * 80 / 100;
}

bool in_burst(uint64_t t) {
  if (!g_set.bursts)
    return false;
  for (int i = 0; i < 2; i++)
    if (t >= burst_at_ms(i) && t < burst_at_ms(i) + BURST_MS)
      return true;
  return false;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--duration S] [--rps N] [--outage-at S] [--outage-for S]\n"
          "          [--crash-agent-at S] [--hang-rate PCT] [--error-rate PCT] [--slow]\n"
          "          [--no-bursts] [--quota RPS] [--port N] [--quiet]\n"
          "          [--server PATH] [--url URL [--model NAME] [--api-key-env NAME]]\n"
          "  S: seconds (decimals allowed); PCT: percent of calls; --outage-for 0 and\n"
          "  --crash-agent-at -1 turn those faults off; --port 0: any free port.\n"
          "  By default the gateway starts examples/model_server (next to its own\n"
          "  binary, or --server PATH) with these faults. --url points it at any\n"
          "  OpenAI-compatible endpoint instead (https://api.openai.com/v1, ...): no\n"
          "  server is started, the faults are the real service's, the API key is read\n"
          "  from the variable --api-key-env names (default OPENAI_API_KEY).\n",
          argv0);
  return 2;
}

/* Parses a number into *out; false if it is not one (or out of [lo, hi]). */
static bool num(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

/* The model server's binary: beside our own (build/examples/). */
static void default_server_path(void) {
  char self[400];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    snprintf(g_set.server_path, sizeof g_set.server_path, "./model_server");
    return;
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash != NULL)
    *slash = '\0';
  snprintf(g_set.server_path, sizeof g_set.server_path, "%s/model_server", self);
}

/* An endpoint: a base URL (".../v1") gets "/chat/completions" appended. */
static bool set_url(const char *u) {
  if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
    return false;
  size_t n = strlen(u);
  while (n > 0 && u[n - 1] == '/')
    n--;
  const char *tail = "/chat/completions";
  bool has = n >= strlen(tail) && strncmp(u + n - strlen(tail), tail, strlen(tail)) == 0;
  int k = snprintf(g_set.url, sizeof g_set.url, "%.*s%s", (int)n, u, has ? "" : tail);
  return k > 0 && (size_t)k < sizeof g_set.url;
}

int parse_args(int argc, char **argv) {
  double v, outage_at = -1, outage_for = -1, crash_at = -2, rps = -1;
  const char *model = NULL;
  g_set.duration_s = 20;
  g_set.hang_pct = 1;
  g_set.error_pct = 2;
  g_set.bursts = true;
  g_set.port = -1;
  default_server_path();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      g_quiet = true;
      continue;
    }
    if (strcmp(a, "--slow") == 0) {
      g_set.slow = true;
      continue;
    }
    if (strcmp(a, "--no-bursts") == 0) {
      g_set.bursts = false;
      continue;
    }
    if (val == NULL)
      return usage(argv[0]);
    i++;
    if (strcmp(a, "--duration") == 0 && num(val, 1, 86400, &v))
      g_set.duration_s = (unsigned)v;
    else if (strcmp(a, "--rps") == 0 && num(val, 1, 100000, &v))
      rps = v;
    else if (strcmp(a, "--outage-at") == 0 && num(val, 0, 86400, &v))
      outage_at = v;
    else if (strcmp(a, "--outage-for") == 0 && num(val, 0, 86400, &v))
      outage_for = v;
    else if (strcmp(a, "--crash-agent-at") == 0 && num(val, -1e9, 86400, &v))
      crash_at = v < 0 ? -1 : v;
    else if (strcmp(a, "--hang-rate") == 0 && num(val, 0, 100, &v))
      g_set.hang_pct = (unsigned)(v + 0.5);
    else if (strcmp(a, "--error-rate") == 0 && num(val, 0, 100, &v))
      g_set.error_pct = (unsigned)(v + 0.5);
    else if (strcmp(a, "--quota") == 0 && num(val, 0, 1000000, &v))
      g_set.quota_rps = (unsigned)v;
    else if (strcmp(a, "--port") == 0 && num(val, 0, 65535, &v))
      g_set.port = (int)v;
    else if (strcmp(a, "--server") == 0 && strlen(val) < sizeof g_set.server_path)
      snprintf(g_set.server_path, sizeof g_set.server_path, "%s", val);
    else if (strcmp(a, "--url") == 0 && set_url(val))
      g_set.remote = true;
    else if (strcmp(a, "--model") == 0 && val[0] != '\0' && strlen(val) < sizeof g_set.model)
      model = val;
    else if (strcmp(a, "--api-key-env") == 0 && val[0] != '\0')
      g_set.api_key_env = val;
    else
      return usage(argv[0]);
  }
  const char *scale = getenv("BW_TEST_SCALE");
  g_set.scale = scale != NULL && atoi(scale) > 1 ? (unsigned)atoi(scale) : 1u;
  if (g_set.port < 0)
    g_set.port = g_quiet ? 0 : 8080;
  uint64_t run = (uint64_t)g_set.duration_s * 1000u;
  if (g_set.remote) {
    /* A real service: its faults are its own, its calls cost money and take
     * seconds. A gentle load, long timeouts, no outage to wait for. */
    snprintf(g_set.model, sizeof g_set.model, "%s", model ? model : "gpt-4o-mini");
    if (g_set.api_key_env == NULL)
      g_set.api_key_env = "OPENAI_API_KEY";
    g_set.rps = rps > 0 ? (unsigned)rps : 1u;
    g_set.outage_for_ms = 0;
    g_set.crash_at_ms = crash_at >= -1 ? (crash_at < 0 ? -1 : (int64_t)(crash_at * 1000.0))
                                       : (int64_t)(run * 20 / 100);
    g_set.attempt_timeout_ms = 30000u * g_set.scale;
    g_set.deadline_ms = 60000u * g_set.scale;
    g_set.breaker_open_ms = 10000;
    g_set.limiter_rate = g_set.rps * 2u + 1u;
    return 0;
  }
  snprintf(g_set.model, sizeof g_set.model, "%s", model ? model : "bulwark-mini");
  g_set.rps = rps > 0 ? (unsigned)rps : 50u;
  /* The outage: at least 3 s, so that a short run shows the breaker open,
   * its half-open probes fail, and it reopen before the server is back. */
  uint64_t for_ms = run * 25 / 100 < 3000u ? 3000u : run * 25 / 100;
  g_set.outage_at_ms = outage_at >= 0 ? (uint64_t)(outage_at * 1000.0) : run * 35 / 100;
  g_set.outage_for_ms = outage_for >= 0 ? (uint64_t)(outage_for * 1000.0) : for_ms;
  g_set.crash_at_ms = crash_at >= -1 ? (crash_at < 0 ? -1 : (int64_t)(crash_at * 1000.0))
                                     : (int64_t)(run * 20 / 100);
  /* Derived: timeouts stretch with the scale (sanitizers are slow), rates
   * shrink with the load. */
  g_set.attempt_timeout_ms = 400u * g_set.scale;
  g_set.deadline_ms = 2000u * g_set.scale;
  uint64_t open = g_set.outage_for_ms / 5;
  g_set.breaker_open_ms = open < 100 ? 100 : open > 1000 ? 1000 : open;
  /* Our limiter, 80/s, stays under the service's quota (120/s unless
   * --quota says otherwise: set it below the load to see 429s, Retry-After
   * and the client holding calls back). The default load is 50/s. */
  g_set.limiter_rate = 80u / g_set.scale > 5u ? 80u / g_set.scale : 5u;
  if (g_set.quota_rps == 0)
    g_set.quota_rps = 120u / g_set.scale > 8u ? 120u / g_set.scale : 8u;
  return 0;
}
