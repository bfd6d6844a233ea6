/*
 * llm_gateway: the model server, started as a child process.
 *
 * By default the gateway runs examples/model_server (an OpenAI-compatible
 * chat-completions server on loopback) and tells it the fault schedule the
 * demo's story needs, as times after it starts (it starts right after the
 * gateway's clock, g_t0_ms): latency, the tail, random 500s, two error
 * bursts, hangs, a quota. The outage is the server going away: main kills
 * it (SIGKILL: connections reset, then refused) and starts it again on the
 * same port when the outage is over, with the rest of the schedule. (The
 * server's own --outage answers 503 with Retry-After, which the HTTP
 * client treats as throttling, not failure: it holds calls back for the
 * Retry-After instead of letting them fail, and the breaker ignores it.)
 * The child dies with us (PR_SET_PDEATHSIG), so it never outlives a
 * crashed gateway.
 */
#define _GNU_SOURCE

#include "gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint16_t g_port; /* the server's */

uint16_t server_port(void) {
  return g_port;
}

#define MAXARGS 40

/* Appends "flag A:B" (seconds or ms, as fmt says). */
static void add(char **argv, int *n, char *buf, size_t cap, const char *flag, const char *fmt,
                double a, double b) {
  argv[(*n)++] = (char *)flag;
  snprintf(buf, cap, fmt, a, b);
  argv[(*n)++] = buf;
}

/* Appends "flag N". */
static void add1(char **argv, int *n, char *buf, size_t cap, const char *flag, unsigned v) {
  argv[(*n)++] = (char *)flag;
  snprintf(buf, cap, "%u", v);
  argv[(*n)++] = buf;
}

pid_t server_start(uint16_t port, uint64_t base_ms) {
  char portv[8], lat[32], tail[32], err[16], hang[16], quota[16], burst[2][48];
  char *argv[MAXARGS];
  int n = 0;
  unsigned k = g_set.slow ? 4u : 1u;
  argv[n++] = "model_server";
  add1(argv, &n, portv, sizeof portv, "--port", port);
  add(argv, &n, lat, sizeof lat, "--latency-ms", "%.0f:%.0f", 10.0 * k, 90.0 * k);
  add(argv, &n, tail, sizeof tail, "--tail", "%.0f:%.0f", 4, 400.0 * k);
  add1(argv, &n, err, sizeof err, "--error-rate", g_set.error_pct);
  add1(argv, &n, hang, sizeof hang, "--hang-rate", g_set.hang_pct);
  argv[n++] = "--hang-s";
  argv[n++] = "5"; /* a hung call: long past our attempt timeout, which cancels it */
  add1(argv, &n, quota, sizeof quota, "--quota", g_set.quota_rps);
  for (int i = 0; g_set.bursts && i < 2; i++) /* the bursts still ahead, in its time */
    if (burst_at_ms(i) >= base_ms)
      add(argv, &n, burst[i], sizeof burst[i], "--burst", "%.3f:%.3f",
          (double)(burst_at_ms(i) - base_ms) / 1000.0, BURST_MS / 1000.0);
  if (g_set.api_key_env != NULL) {
    argv[n++] = "--api-key-env";
    argv[n++] = (char *)g_set.api_key_env;
  }
  argv[n] = NULL;

  int p[2];
  if (pipe(p) != 0) {
    perror("llm_gateway: pipe");
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    perror("llm_gateway: fork");
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) { /* the child: only async-signal-safe calls until exec */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* it dies with the gateway */
    if (getppid() != parent)
      _exit(127); /* the gateway died before the line above */
    (void)dup2(p[1], STDOUT_FILENO);
    close(p[0]);
    close(p[1]);
    execv(g_set.server_path, argv);
    _exit(127);
  }
  close(p[1]);
  /* Its first line says where it listens; 10 s at most (a sanitized build
   * starts slowly). */
  char line[128] = {0};
  size_t got = 0;
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  while (got + 1 < sizeof line && memchr(line, '\n', got) == NULL) {
    if (poll(&pf, 1, 10000) <= 0)
      break;
    ssize_t r = read(p[0], line + got, sizeof line - 1 - got);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(p[0]); /* it prints nothing else */
  unsigned got_port = 0;
  if (sscanf(line, "model_server listening on 127.0.0.1:%u", &got_port) != 1 || got_port == 0 ||
      got_port > 65535) {
    fprintf(stderr,
            "llm_gateway: the model server (%s) did not start; build it (cmake --build build "
            "--target model_server), give its path with --server, or use --url\n",
            g_set.server_path);
    server_stop(pid);
    return -1;
  }
  if (port != 0) /* a restart: the same port, so the URL the agents read stays */
    return got_port == port ? pid : (server_stop(pid), -1);
  /* The first start, before the tree: nothing reads the URL yet. */
  g_port = (uint16_t)got_port;
  snprintf(g_set.url, sizeof g_set.url, "http://127.0.0.1:%u/v1/chat/completions", got_port);
  return pid;
}

void server_kill(pid_t pid) {
  if (pid <= 0)
    return;
  (void)kill(pid, SIGKILL);
  (void)waitpid(pid, NULL, 0);
}

void server_stop(pid_t pid) {
  if (pid <= 0)
    return;
  (void)kill(pid, SIGTERM);
  for (int i = 0; i < 500; i++) { /* 5 s */
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    struct timespec ts = {.tv_nsec = 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  (void)kill(pid, SIGKILL);
  (void)waitpid(pid, NULL, 0);
}

int http_get(uint16_t port, const char *path, char *body, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {.tv_sec = 5};
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char req[128];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, body + got, cap - 1 - got)) > 0)
      got += (size_t)r;
  }
  close(fd);
  body[got] = '\0';
  int code = -1;
  if (sscanf(body, "HTTP/%*d.%*d %d", &code) != 1)
    code = -1;
  return code;
}

bool server_stats(struct server_stats *out) {
  static char body[2048];
  memset(out, 0, sizeof *out);
  if (g_port == 0 || http_get(g_port, "/stats", body, sizeof body) != 200)
    return false;
  const char *j = strstr(body, "\r\n\r\n");
  return j != NULL && sscanf(j + 4,
                             "{\"calls\":%lu,\"ok\":%lu,\"e500\":%lu,\"e503\":%lu,\"e429\":%lu,"
                             "\"hangs\":%lu",
                             &out->calls, &out->ok, &out->e500, &out->e503, &out->e429,
                             &out->hangs) == 6;
}
