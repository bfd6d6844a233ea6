/*
 * bulwark: TCP helpers on the runtime's watches (bulwark/io.h, runtime/IO.md).
 *
 * A bw_tcp_t is one owned watch whose user data is the bw_tcp_t itself,
 * freed by the watch's destructor: bw_tcp_close, or the owner's exit,
 * frees it, closes its socket and drops its deadline. Everything here runs
 * on the owner's thread, inside its handler; nothing is shared.
 *
 * Back-pressure on input: the socket is armed for input only while the
 * read buffer has room. An owner that does not consume (bw_tcp_getline,
 * bw_tcp_consume) stops reading, the kernel's buffer fills, and TCP's
 * window stops the peer; an owner that is behind on its mailbox has not
 * even handled the last readiness message, so nothing is read either
 * (one-shot: no second event until it re-arms).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/internal.h"

enum { K_LISTEN = 1, K_CONN = 2 };
enum { S_CONNECTING = 1, S_OPEN = 2, S_FAILED = 3 };

#define RBUF_START 4096u

struct bw_tcp {
  bw_runtime_t *rt;
  bw_io_t w;
  int fd;
  uint8_t kind, state;
  bool eof;
  uint16_t port;
  uint32_t armed;      /* interest last asked of the watch (0 after an event) */
  bw_timer_t deadline; /* connect deadline, 0 if none */
  char *rbuf;          /* bytes [roff, roff + rlen) wait unconsumed */
  uint32_t roff, rlen, rcap, rmax;
  char *wbuf;          /* bytes [woff, wlen) wait to be written */
  uint32_t woff, wlen, wcap, wmax;
};

void bw_tcp_opts_init(bw_tcp_opts_t *o) {
  if (o == NULL)
    return;
  o->read_max = 16u * 1024u;
  o->write_max = 64u * 1024u;
}

static int map_errno(int e) {
  switch (e) {
  case ECONNREFUSED:
    return BW_ECONNREFUSED;
  case ECONNRESET:
  case EPIPE:
  case ECONNABORTED:
    return BW_ECONNRESET;
  case ETIMEDOUT:
    return BW_ETIMEDOUT;
  case EADDRINUSE:
    return BW_EADDRINUSE;
  case EMFILE:
  case ENFILE:
    return BW_ELIMIT;
  case ENOMEM:
  case ENOBUFS:
    return BW_ENOMEM;
  default:
    return BW_EIO;
  }
}

static void tcp_free(void *p) {
  bw_tcp_t *c = p;
  if (c->deadline != 0)
    bw_timer_cancel(c->rt, c->deadline);
  free(c->rbuf);
  free(c->wbuf);
  free(c);
}

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  /* loopback unless the caller names another address */
  return inet_pton(AF_INET, addr != NULL ? addr : "127.0.0.1", &sa->sin_addr) == 1 ? 0
                                                                                   : BW_EINVAL;
}

/* A bw_tcp_t around fd (owned from here: closed on failure too). */
static int tcp_new(bw_ctx_t *ctx, int fd, int kind, int state, uint32_t events,
                   const bw_tcp_opts_t *opts, bw_tcp_t **out) {
  bw_tcp_opts_t d;
  if (opts == NULL) {
    bw_tcp_opts_init(&d);
    opts = &d;
  }
  bw_tcp_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    return BW_ENOMEM;
  }
  c->rt = bw_ctx_runtime(ctx);
  c->fd = fd;
  c->kind = (uint8_t)kind;
  c->state = (uint8_t)state;
  c->rmax = opts->read_max ? opts->read_max : 16u * 1024u;
  c->wmax = opts->write_max ? opts->write_max : 64u * 1024u;
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
    c->port = ntohs(sa.sin_port);
  int rc = bw__io_watch(ctx, fd, events, BW_IO_OWNED, c, tcp_free, &c->w);
  if (rc != 0) {
    close(fd);
    free(c);
    return rc;
  }
  c->armed = events;
  *out = c;
  return 0;
}

int bw_tcp_listen(bw_ctx_t *ctx, const char *addr, uint16_t port, int backlog,
                  const bw_tcp_opts_t *opts, bw_tcp_t **out) {
  if (ctx == NULL || bw__tl.cur != (bw__actor *)ctx)
    return BW_ENOTACTOR;
  struct sockaddr_in sa;
  if (out == NULL || parse_addr(addr, port, &sa) != 0)
    return BW_EINVAL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return map_errno(errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
    int e = map_errno(errno);
    close(fd);
    return e;
  }
  return tcp_new(ctx, fd, K_LISTEN, S_OPEN, BW_IO_IN, opts, out);
}

int bw_tcp_accept(bw_ctx_t *ctx, bw_tcp_t *l, bw_tcp_t **out) {
  if (ctx == NULL || bw__tl.cur != (bw__actor *)ctx)
    return BW_ENOTACTOR;
  if (l == NULL || l->kind != K_LISTEN || out == NULL)
    return BW_EINVAL;
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      /* a connection inherits the listener's buffer limits */
      bw_tcp_opts_t o = {.read_max = l->rmax, .write_max = l->wmax};
      int rc = tcp_new(ctx, fd, K_CONN, S_OPEN, BW_IO_IN, &o, out);
      return rc == 0 ? 1 : rc;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* drained: wait for the next connection */
      int rc = bw_io_arm(ctx, l->w, BW_IO_IN);
      l->armed = BW_IO_IN;
      return rc;
    }
    return map_errno(errno);
  }
}

int bw_tcp_connect(bw_ctx_t *ctx, const char *addr, uint16_t port, uint64_t timeout_ms,
                   const bw_tcp_opts_t *opts, bw_tcp_t **out) {
  if (ctx == NULL || bw__tl.cur != (bw__actor *)ctx)
    return BW_ENOTACTOR;
  struct sockaddr_in sa;
  if (out == NULL || parse_addr(addr, port, &sa) != 0 || port == 0)
    return BW_EINVAL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return map_errno(errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
    int e = map_errno(errno);
    close(fd);
    return e;
  }
  /* done or not, the answer comes as writability: one path for both */
  bw_tcp_t *c;
  int rc = tcp_new(ctx, fd, K_CONN, S_CONNECTING, BW_IO_OUT, opts, &c);
  if (rc != 0)
    return rc;
  if (timeout_ms > 0) {
    rc = bw_io_deadline(ctx, c->w, timeout_ms, &c->deadline);
    if (rc != 0) {
      bw_tcp_close(ctx, c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

/* Asks the watch for what c needs now, if that changed. */
static int rearm(bw_ctx_t *ctx, bw_tcp_t *c) {
  uint32_t want = 0;
  if (c->kind == K_LISTEN)
    want = BW_IO_IN;
  else if (c->state == S_CONNECTING)
    want = BW_IO_OUT;
  else if (c->state == S_OPEN) {
    if (!c->eof && c->rlen < c->rmax)
      want |= BW_IO_IN;
    if (c->wlen > c->woff)
      want |= BW_IO_OUT;
  }
  if (want == c->armed)
    return 0;
  c->armed = want;
  int rc = bw_io_arm(ctx, c->w, want);
  return rc == BW_ENOTFOUND ? BW_EINVAL : rc;
}

/* Reads what fits; returns BW_TCP_DATA / BW_TCP_EOF bits or a code. */
static int fill(bw_tcp_t *c) {
  int got = 0;
  for (;;) {
    if (c->roff > 0 && c->roff + c->rlen == c->rcap) {
      memmove(c->rbuf, c->rbuf + c->roff, c->rlen); /* compact */
      c->roff = 0;
    }
    if (c->rlen == c->rcap && c->rcap < c->rmax) {
      uint32_t nc = c->rcap ? c->rcap * 2 : RBUF_START;
      if (nc > c->rmax)
        nc = c->rmax;
      char *p = realloc(c->rbuf, nc);
      if (p == NULL)
        return got ? got : BW_ENOMEM;
      c->rbuf = p;
      c->rcap = nc;
    }
    uint32_t room = c->rcap - c->roff - c->rlen;
    if (room == 0)
      return got; /* full: stop reading until the owner consumes */
    ssize_t n = recv(c->fd, c->rbuf + c->roff + c->rlen, room, 0);
    if (n > 0) {
      c->rlen += (uint32_t)n;
      got |= BW_TCP_DATA;
      if ((uint32_t)n < room)
        return got; /* the kernel had no more: save the EAGAIN call */
      continue;
    }
    if (n == 0) {
      c->eof = true;
      return got | BW_TCP_EOF;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return got;
    return map_errno(errno);
  }
}

/* Writes what the kernel takes; returns BW_TCP_DRAINED or 0, or a code. */
static int flush(bw_tcp_t *c) {
  while (c->woff < c->wlen) {
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n > 0) {
      c->woff += (uint32_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    return map_errno(errno);
  }
  c->woff = c->wlen = 0;
  return BW_TCP_DRAINED;
}

int bw_tcp_on_io(bw_ctx_t *ctx, bw_tcp_t *c, const bw_io_event_t *ev) {
  if (ctx == NULL || c == NULL || ev == NULL || ev->watch != c->w)
    return BW_EINVAL;
  if (ev->events & BW_IO_TIMEOUT) {
    /* a deadline does not consume the one-shot registration */
    if (c->state != S_CONNECTING)
      return 0; /* connected just before the timer fired */
    c->state = S_FAILED;
    c->deadline = 0;
    return BW_ETIMEDOUT;
  }
  c->armed = 0; /* the event used up the one-shot registration */
  if (c->kind == K_LISTEN)
    return BW_TCP_ACCEPT; /* bw_tcp_accept re-arms when drained */
  int res = 0;
  if (c->state == S_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
      err = errno;
    if (err != 0) {
      c->state = S_FAILED;
      return map_errno(err);
    }
    c->state = S_OPEN;
    if (c->deadline != 0) {
      bw_timer_cancel(c->rt, c->deadline);
      c->deadline = 0;
    }
    res |= BW_TCP_CONNECTED;
  } else if (c->state == S_OPEN) {
    if ((ev->events & (BW_IO_IN | BW_IO_HUP | BW_IO_ERR)) && !c->eof) {
      int r = fill(c);
      if (r < 0) {
        c->state = S_FAILED;
        return r;
      }
      res |= r;
    }
    if ((ev->events & (BW_IO_OUT | BW_IO_ERR)) && c->wlen > c->woff) {
      int r = flush(c);
      if (r < 0) {
        c->state = S_FAILED;
        return r;
      }
      res |= r;
    }
  } else {
    return 0;
  }
  int rc = rearm(ctx, c);
  return rc < 0 ? rc : res;
}

static void consumed(bw_ctx_t *ctx, bw_tcp_t *c, uint32_t n) {
  c->roff += n;
  c->rlen -= n;
  if (c->rlen == 0)
    c->roff = 0;
  rearm(ctx, c); /* input again, if reading had stopped for room */
}

int bw_tcp_getline(bw_ctx_t *ctx, bw_tcp_t *c, const char **line, size_t *len) {
  if (ctx == NULL || c == NULL || line == NULL || len == NULL)
    return BW_EINVAL;
  if (c->rlen == 0)
    return 0;
  char *p = c->rbuf + c->roff;
  char *nl = memchr(p, '\n', c->rlen);
  if (nl == NULL)
    return c->rlen >= c->rmax ? BW_ELIMIT : 0;
  *line = p;
  *len = (size_t)(nl - p);
  consumed(ctx, c, (uint32_t)(nl - p) + 1);
  return 1;
}

size_t bw_tcp_peek(const bw_tcp_t *c, const char **data) {
  if (c == NULL)
    return 0;
  if (data != NULL)
    *data = c->rbuf != NULL ? c->rbuf + c->roff : NULL;
  return c->rlen;
}

void bw_tcp_consume(bw_ctx_t *ctx, bw_tcp_t *c, size_t n) {
  if (ctx == NULL || c == NULL)
    return;
  consumed(ctx, c, n > c->rlen ? c->rlen : (uint32_t)n);
}

int bw_tcp_write(bw_ctx_t *ctx, bw_tcp_t *c, const void *data, size_t len) {
  if (ctx == NULL || c == NULL || (data == NULL && len > 0))
    return BW_EINVAL;
  if (c->kind != K_CONN || c->state != S_OPEN)
    return BW_ESTATE;
  if (len == 0)
    return 0;
  size_t queued = c->wlen - c->woff;
  if (len > c->wmax || queued + len > c->wmax)
    return BW_EFULL;
  const char *src = data;
  if (queued == 0) {
    /* nothing ahead of us: straight to the kernel, copy only the rest */
    for (;;) {
      ssize_t n = send(c->fd, src, len, MSG_NOSIGNAL);
      if (n >= 0) {
        src += n;
        len -= (size_t)n;
        if (len == 0)
          return 0;
        continue;
      }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      c->state = S_FAILED;
      return map_errno(errno);
    }
  }
  if (c->woff > 0 && c->wlen + len > c->wcap) {
    memmove(c->wbuf, c->wbuf + c->woff, queued);
    c->woff = 0;
    c->wlen = (uint32_t)queued;
  }
  if (c->wlen + len > c->wcap) {
    uint32_t nc = c->wcap ? c->wcap : 4096u;
    while (nc < c->wlen + len)
      nc *= 2;
    if (nc > c->wmax)
      nc = c->wmax;
    char *p = realloc(c->wbuf, nc);
    if (p == NULL)
      return BW_ENOMEM;
    c->wbuf = p;
    c->wcap = nc;
  }
  memcpy(c->wbuf + c->wlen, src, len);
  c->wlen += (uint32_t)len;
  return rearm(ctx, c);
}

size_t bw_tcp_pending(const bw_tcp_t *c) { return c != NULL ? c->wlen - c->woff : 0; }

uint16_t bw_tcp_port(const bw_tcp_t *c) { return c != NULL ? c->port : 0; }

bw_io_t bw_tcp_watch(const bw_tcp_t *c) { return c != NULL ? c->w : 0; }

void bw_tcp_close(bw_ctx_t *ctx, bw_tcp_t *c) {
  if (ctx == NULL || c == NULL)
    return;
  bw_io_unwatch(ctx, c->w); /* closes the socket, frees c through tcp_free */
}
