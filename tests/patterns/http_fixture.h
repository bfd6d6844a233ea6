/*
 * A hostile HTTP/1.1 test server for the HTTP client's suite: a listening
 * socket on 127.0.0.1 (a free port) and a thread per connection, answering
 * by path:
 *
 *   /ok            200, body "hello" (keep-alive)
 *   /echo          200, the request body back, and the request's headers
 *                  in X-Seen-Auth (the Authorization header) and
 *                  X-Seen-Method
 *   /status/N      status N, with Retry-After: 1 when the query is ?ra
 *   /flaky         503 while the server's outage flag is set, else 200
 *   /stream/N      200 with a chunked body of N KiB, written as fast as the
 *                  socket takes it (stream_sent counts what it took)
 *   /hang          reads the request, then nothing until the peer closes
 *   /slow          a 200 whose body comes one byte every 100 ms (50 bytes)
 *   /cut           Content-Length 100, 10 bytes, then close
 *   /badheader     a status line that is not HTTP
 *   /hugeheader    200 with 200 KiB of headers
 *   /badchunk      Transfer-Encoding: chunked with a malformed chunk size
 *   /big/N         200 with N bytes of body
 *   /gate          waits until the test opens the gate (gate_open), then
 *                  200 "gated": the test moves a manual clock meanwhile
 *
 * It counts connections accepted and connections the peer closed (a read
 * returning 0 or an error while the server had nothing more to say), so a
 * test can see that a cancelled transfer closed its socket.
 */
#ifndef BW_TESTS_HTTP_FIXTURE_H
#define BW_TESTS_HTTP_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct hfx {
  int lfd;
  uint16_t port;
  pthread_t thread;
  atomic_bool stop;
  atomic_uint accepted, peer_closed, hang_closed, active;
  atomic_bool outage;        /* /flaky answers 503 while set */
  atomic_uint flaky_hits, status_hits;
  atomic_ulong stream_sent; /* body bytes /stream/N got into the socket */
  atomic_bool gate_open;    /* /gate answers once set */
  atomic_uint gate_waiting; /* /gate requests that arrived */
} hfx_t;

typedef struct hfx_conn {
  hfx_t *s;
  int fd;
} hfx_conn_t;

static void hfx_send(int fd, const char *d, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, d, n, MSG_NOSIGNAL);
    if (k <= 0)
      return;
    d += k;
    n -= (size_t)k;
  }
}

static void hfx_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hfx_sendf(int fd, const char *fmt, ...) {
  char b[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n > 0)
    hfx_send(fd, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}

/* Waits until the peer closes (or the server stops): returns true if it did. */
static bool hfx_wait_close(hfx_t *s, int fd) {
  char b[512];
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 50);
    if (r < 0)
      return false;
    if (r == 0)
      continue;
    ssize_t k = recv(fd, b, sizeof b, 0);
    if (k <= 0)
      return true;
  }
  return false;
}

/* Reads one request: returns the bytes of the head and body in buf (head
 * ends at \r\n\r\n); 0 when the peer closed. */
static size_t hfx_read_request(int fd, char *buf, size_t cap, size_t *head_len,
                               size_t *body_len) {
  size_t len = 0;
  char *end = NULL;
  while (end == NULL) {
    if (len + 1 >= cap)
      return 0;
    ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
    if (k <= 0)
      return 0;
    len += (size_t)k;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  *head_len = (size_t)(end + 4 - buf);
  size_t cl = 0;
  const char *h = strcasestr(buf, "\r\nContent-Length:");
  if (h != NULL && h < end)
    cl = strtoul(h + 17, NULL, 10);
  while (len < *head_len + cl && len + 1 < cap) {
    ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
    if (k <= 0)
      return 0;
    len += (size_t)k;
  }
  buf[len] = '\0';
  *body_len = len - *head_len;
  return len;
}

static void hfx_header_value(const char *head, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  char pat[64];
  snprintf(pat, sizeof pat, "\r\n%s:", name);
  const char *h = strcasestr(head, pat);
  if (h == NULL)
    return;
  h += strlen(pat);
  while (*h == ' ')
    h++;
  size_t n = strcspn(h, "\r\n");
  if (n >= cap)
    n = cap - 1;
  memcpy(out, h, n);
  out[n] = '\0';
}

static void *hfx_conn_main(void *arg) {
  hfx_conn_t *c = arg;
  hfx_t *s = c->s;
  int fd = c->fd;
  free(c);
  enum { BIG = 256 * 1024 };
  char *big = malloc(BIG);
  char *buf = big != NULL ? malloc(1 << 20) : NULL;
  for (;;) {
    size_t hl = 0, bl = 0;
    if (buf == NULL || hfx_read_request(fd, buf, 1 << 20, &hl, &bl) == 0) {
      atomic_fetch_add(&s->peer_closed, 1);
      break;
    }
    char method[16] = {0}, path[256] = {0};
    if (sscanf(buf, "%15s %255s", method, path) != 2)
      break;
    if (strcmp(path, "/ok") == 0) {
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (strcmp(path, "/echo") == 0) {
      char auth[256];
      hfx_header_value(buf, "Authorization", auth, sizeof auth);
      hfx_sendf(fd,
                "HTTP/1.1 200 OK\r\nX-Seen-Auth: %s\r\nX-Seen-Method: %s\r\n"
                "Content-Length: %zu\r\n\r\n",
                auth, method, bl);
      hfx_send(fd, buf + hl, bl);
    } else if (strncmp(path, "/status/", 8) == 0) {
      int code = atoi(path + 8);
      bool ra = strstr(path, "?ra") != NULL;
      atomic_fetch_add(&s->status_hits, 1);
      hfx_sendf(fd, "HTTP/1.1 %d X\r\n%sContent-Length: 2\r\n\r\nno", code,
                ra ? "Retry-After: 1\r\n" : "");
    } else if (strncmp(path, "/stream/", 8) == 0) {
      unsigned long kib = strtoul(path + 8, NULL, 10);
      struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      memset(big, 's', 1024);
      bool dead = false;
      for (unsigned long i = 0; i < kib && !dead; i++) {
        char piece[1100];
        memcpy(piece, "400\r\n", 5);
        memcpy(piece + 5, big, 1024);
        memcpy(piece + 1029, "\r\n", 2);
        size_t off = 0;
        while (off < 1031) {
          ssize_t k = send(fd, piece + off, 1031 - off, MSG_NOSIGNAL);
          if (k > 0) {
            off += (size_t)k;
          } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                     !atomic_load(&s->stop)) {
            continue; /* the client is not reading: wait */
          } else {
            dead = true;
            break;
          }
        }
        if (!dead)
          atomic_fetch_add(&s->stream_sent, 1024);
      }
      if (!dead)
        hfx_sendf(fd, "0\r\n\r\n");
      else
        break;
    } else if (strcmp(path, "/flaky") == 0) {
      atomic_fetch_add(&s->flaky_hits, 1);
      if (atomic_load(&s->outage))
        hfx_sendf(fd, "HTTP/1.1 503 Down\r\nContent-Length: 4\r\n\r\ndown");
      else
        hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
    } else if (strcmp(path, "/hang") == 0) {
      if (hfx_wait_close(s, fd))
        atomic_fetch_add(&s->hang_closed, 1);
      atomic_fetch_add(&s->peer_closed, 1);
      break;
    } else if (strcmp(path, "/slow") == 0) {
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
      bool closed = false;
      for (int i = 0; i < 50 && !atomic_load(&s->stop) && !closed; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
          char t[64];
          closed = recv(fd, t, sizeof t, 0) <= 0;
        }
        if (!closed)
          hfx_send(fd, "x", 1);
      }
      if (closed || hfx_wait_close(s, fd))
        atomic_fetch_add(&s->hang_closed, 1);
      atomic_fetch_add(&s->peer_closed, 1);
      break;
    } else if (strcmp(path, "/cut") == 0) {
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
      break;
    } else if (strcmp(path, "/badheader") == 0) {
      hfx_sendf(fd, "SMTP/9 hello there\r\n\r\n");
      break;
    } else if (strcmp(path, "/hugeheader") == 0) {
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\n");
      for (int i = 0; i < 200; i++) {
        memset(big, 'a', 1000);
        big[1000] = '\0';
        hfx_sendf(fd, "X-Pad-%d: %.1000s\r\n", i, big);
      }
      hfx_sendf(fd, "Content-Length: 2\r\n\r\nok");
      hfx_wait_close(s, fd);
      break;
    } else if (strcmp(path, "/badchunk") == 0) {
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
      hfx_wait_close(s, fd);
      break;
    } else if (strcmp(path, "/gate") == 0) {
      atomic_fetch_add(&s->gate_waiting, 1);
      while (!atomic_load(&s->gate_open) && !atomic_load(&s->stop))
        usleep(1000);
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngated");
    } else if (strncmp(path, "/big/", 5) == 0) {
      size_t n = strtoul(path + 5, NULL, 10);
      if (n > BIG)
        n = BIG;
      memset(big, 'b', n);
      hfx_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
      hfx_send(fd, big, n);
    } else {
      hfx_sendf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
  }
  free(buf);
  free(big);
  close(fd);
  atomic_fetch_sub(&s->active, 1);
  return NULL;
}

static void *hfx_main(void *arg) {
  hfx_t *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    hfx_conn_t *c = malloc(sizeof *c);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->s = s;
    c->fd = fd;
    atomic_fetch_add(&s->accepted, 1);
    atomic_fetch_add(&s->active, 1);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, hfx_conn_main, c) != 0) {
      atomic_fetch_sub(&s->active, 1);
      close(fd);
      free(c);
    }
    pthread_attr_destroy(&a);
  }
  return NULL;
}

static inline void hfx_start(hfx_t *s) {
  memset(s, 0, sizeof *s);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->lfd >= 0);
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, 512), 0);
  socklen_t al = sizeof a;
  getsockname(s->lfd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->thread, NULL, hfx_main, s), 0);
}

static inline void hfx_stop(hfx_t *s) {
  atomic_store(&s->stop, true);
  pthread_join(s->thread, NULL);
  close(s->lfd);
  /* connection threads see stop within 100 ms */
  for (int i = 0; i < 200 && atomic_load(&s->active) > 0; i++)
    usleep(10000);
}

/* Waits (real time, bounded) until *v >= want. */
static inline bool hfx_wait_at_least(atomic_uint *v, unsigned want) {
  for (int i = 0; i < 1000; i++) {
    if (atomic_load(v) >= want)
      return true;
    usleep(10000);
  }
  return atomic_load(v) >= want;
}

#endif
