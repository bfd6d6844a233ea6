/*
 * http_agent: an agent actor that asks a language model over HTTP, through
 * the HTTP client actor with a resilience policy around every call (breaker,
 * retry with backoff and budget, rate limit, timeout). No thread waits on
 * the network: the client is an actor driven by the runtime's I/O.
 *
 *   ./http_agent                       starts ./model_server beside it
 *   ./http_agent http://127.0.0.1:8000/v1/chat/completions
 *
 * With a URL of your own, OPENAI_API_KEY (if set) is sent as a bearer token.
 */
#define _GNU_SOURCE
#include <bulwark/bulwark.h>

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { ASKS = 5 };

typedef struct agent {
  bw_pid_t client;
  const char *url;
  int answered, failed;
} agent_t;

static int ask(bw_ctx_t *ctx, agent_t *a, int n) {
  char body[200];
  snprintf(body, sizeof body,
           "{\"model\":\"bulwark-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
           "\"question %d\"}]}", n);
  bw_http_req_t *q = bw_http_req_new("POST", a->url);
  if (q == NULL || bw_http_req_header(q, "Content-Type: application/json") != 0 ||
      bw_http_req_body(q, body, strlen(body)) != 0) {
    bw_http_req_free(q);
    return BW_ENOMEM;
  }
  bw_http_req_idempotent(q, 1); /* asking again is harmless: let the policy retry */
  return bw_http_request(ctx, a->client, q, 10000, NULL);
}

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  agent_t *a = state;
  *a = *(agent_t *)arg;
  for (int i = 0; i < ASKS; i++) {
    int rc = ask(ctx, a, i);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  agent_t *a = state;
  if (msg->type != BW_HTTP_MSG_RESPONSE)
    return BW_CONTINUE;
  bw_http_resp_t *r = bw_msg_take(ctx, msg);
  const char *content = r != NULL ? strstr(r->body, "\"content\":") : NULL;
  if (msg->status == 0 && content != NULL) {
    printf("answer (%ld, %llu us): %.60s...\n", r->code, (unsigned long long)r->elapsed_us,
           content + 10);
    a->answered++;
  } else {
    printf("failed: %s (HTTP %ld)\n", bw_strerror(msg->status), r ? r->code : 0L);
    a->failed++;
  }
  bw_http_resp_free(r);
  return a->answered + a->failed == ASKS ? BW_STOP : BW_CONTINUE;
}

static const bw_behaviour_t agent_b = {
    .name = "agent", .state_size = sizeof(agent_t), .init = agent_init, .handle = agent_handle};

/* Starts ./model_server beside this program; its port is on its first line. */
static pid_t start_server(char *url, size_t cap) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  int p[2];
  if (n <= 0 || pipe(p) != 0)
    return -1;
  exe[n] = '\0';
  char path[4200];
  snprintf(path, sizeof path, "%s/model_server", dirname(exe));
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(p[1], 1);
    execl(path, "model_server", "--port", "0", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  FILE *f = fdopen(p[0], "r");
  unsigned port = 0;
  char line[128];
  if (f == NULL || fgets(line, sizeof line, f) == NULL ||
      sscanf(line, "model_server listening on 127.0.0.1:%u", &port) != 1)
    return -1;
  fclose(f);
  snprintf(url, cap, "http://127.0.0.1:%u/v1/chat/completions", port);
  return pid;
}

int main(int argc, char **argv) {
  char url[256];
  pid_t server = -1;
  if (argc > 1) {
    snprintf(url, sizeof url, "%s", argv[1]);
  } else if ((server = start_server(url, sizeof url)) < 0) {
    fprintf(stderr, "http_agent: no URL given and no ./model_server to start\n");
    return 1;
  }
  bw_runtime_t *rt;
  if (bw_runtime_create(NULL, &rt) != 0)
    return 1;
  /* the policy: the "ai" preset adjusted for HTTP statuses */
  bw_policy_opts_t po;
  bw_http_policy_preset("ai", &po);
  bw_policy_t *policy;
  bw_http_opts_t ho;
  bw_http_opts_init(&ho);
  if (bw_policy_new(rt, &po, &policy) != 0)
    return 1;
  ho.policy = policy;
  if (argc > 1 && getenv("OPENAI_API_KEY") != NULL)
    ho.bearer_token_env = "OPENAI_API_KEY";
  bw_http_t *http;
  agent_t a = {.url = url};
  bw_pid_t agent;
  if (bw_http_new(rt, &ho, &http) != 0 || bw_http_start(http, &a.client) != 0 ||
      bw_spawn(rt, &agent_b, &a, NULL, &agent) != 0)
    return 1;
  bw_wait_exit(rt, agent, 60000, NULL);
  bw_http_stats_t s;
  bw_http_stats(http, &s);
  printf("requests %llu, 2xx %llu, retries %llu, timeouts %llu\n",
         (unsigned long long)s.requests, (unsigned long long)s.responses_2xx,
         (unsigned long long)s.retries, (unsigned long long)s.timeouts);
  bw_http_destroy(http);
  bw_policy_destroy(policy);
  bw_runtime_destroy(rt);
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
  }
  return s.responses_2xx == ASKS ? 0 : 1;
}
