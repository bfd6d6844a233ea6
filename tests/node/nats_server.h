/*
 * Test helper: a private nats-server (Debian's package) on loopback, on a
 * free port, for the node tests. Skips (77 / cmocka skip) when nats-server
 * is not installed.
 */
#ifndef BW_TESTS_NATS_SERVER_H
#define BW_TESTS_NATS_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct bwt_nats {
  pid_t pid;
  int port;
  char url[64];
} bwt_nats_t;

/* A port nobody listens on now (the kernel's choice for port 0). */
static inline int bwt_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static inline bool bwt_port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

static inline bool bwt_have_nats_server(void) {
  return access("/usr/bin/nats-server", X_OK) == 0 || access("/usr/sbin/nats-server", X_OK) == 0 ||
         system("command -v nats-server >/dev/null 2>&1") == 0;
}

/* Starts nats-server on port (0 = a free one) with extra arguments (NULL-
 * terminated, may be NULL); waits up to 10 s until it accepts connections.
 * Returns false if it could not. */
static inline bool bwt_nats_start_with(bwt_nats_t *s, int port, const char *const *extra) {
  s->port = port > 0 ? port : bwt_free_port();
  if (s->port <= 0)
    return false;
  snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
  char portbuf[16];
  snprintf(portbuf, sizeof(portbuf), "%d", s->port);
  char *argv[24] = {"nats-server", "-a", "127.0.0.1", "-p", portbuf, NULL};
  for (int i = 0, k = 5; extra != NULL && extra[i] != NULL && k < 23; i++, k++) {
    argv[k] = (char *)extra[i];
    argv[k + 1] = NULL;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&s->pid, "nats-server", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return false;
  for (int i = 0; i < 1000; i++) {
    if (bwt_port_open(s->port))
      return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL); /* waiting for a process to start, not timing */
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  return false;
}

static inline bool bwt_nats_start(bwt_nats_t *s, int port) {
  return bwt_nats_start_with(s, port, NULL);
}

static inline void bwt_nats_stop(bwt_nats_t *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

#endif
