/*
 * A private nats-server per run (nats_server.h). Waiting for it is polling
 * a connect every 10 ms: the server says nothing when it is ready, and a
 * run's setup is outside its measured span.
 */
#include "nats_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define NATS_READY_MS 10000u /* how long a start may take */
#define NATS_POLL_MS 10u

/* Finds an executable nats-server: each PATH directory, then Debian's.
 * Returns true with its path in out. */
static bool find_server(char *out, size_t cap)
{
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin", path ? path : "");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d;
       d = strtok_r(NULL, ":", &save)) {
    int n = snprintf(out, cap, "%s/nats-server", d);
    if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
      return true;
  }
  return false;
}

/* A loopback address on port (0: let the kernel choose). */
static struct sockaddr_in loopback(int port)
{
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A loopback port nobody listens on now: the kernel's pick for port 0. The
 * server binds it a moment later; another process taking it in between
 * makes the start fail, not the run hang. Returns the port, or -1. */
static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static bool accepts(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  struct sockaddr_in a = loopback(port);
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* Spawns exe on s->port, its output to /dev/null. Returns 0 or -1. */
static int spawn_server(const char *exe, bench_nats_t *s)
{
  char port[16];
  snprintf(port, sizeof port, "%d", s->port);
  char *argv[] = {"nats-server", "-a", "127.0.0.1", "-p", port, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  int rc = posix_spawn(&s->pid, exe, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    s->pid = 0;
  return rc == 0 ? 0 : -1;
}

/* Waits until the server accepts connections. Returns false if it exited
 * (then reaped) or did not within NATS_READY_MS. */
static bool wait_ready(bench_nats_t *s)
{
  uint64_t deadline = bench_now_ns() + (uint64_t)NATS_READY_MS * 1000000u;
  while (bench_now_ns() < deadline) {
    if (accepts(s->port))
      return true;
    if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
      s->pid = 0;
      return false;
    }
    bench_sleep_ms(NATS_POLL_MS);
  }
  return false;
}

int bench_nats_start(bench_run_t *r, bench_nats_t *s)
{
  char exe[PATH_MAX];
  memset(s, 0, sizeof *s);
  if (!find_server(exe, sizeof exe))
    return bench_fail(r, "nats-server is not installed (Debian: apt-get "
                         "install nats-server)");
  s->port = free_port();
  if (s->port <= 0 || spawn_server(exe, s) != 0)
    return bench_fail(r, "could not start nats-server");
  snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
  if (!wait_ready(s)) {
    if (s->pid > 0) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, NULL, 0);
      s->pid = 0;
    }
    return bench_fail(r, "could not start nats-server");
  }
  return 0;
}

void bench_nats_stop(bench_nats_t *s)
{
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGTERM);
  while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  s->pid = 0;
}
