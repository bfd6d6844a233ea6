/*
 * bulwark: non-blocking I/O as messages, and TCP helpers on top.
 *
 * An actor watches a file descriptor; when the descriptor is ready the
 * actor receives a BW_MSG_IO system message (payload: bw_io_event_t). A
 * watch is one-shot: after a message the watch is disarmed until the actor
 * arms it again with bw_io_arm (typically in the handler, after reading
 * until EAGAIN). The runtime's workers poll one epoll set (created by the
 * first watch): there is no poller thread and no thread per descriptor.
 * See runtime/IO.md for the threading model, ownership and costs.
 *
 * Watches belong to the actor that made them: every call below must run
 * inside that actor's callback. When the actor exits, for any reason (kill
 * included), its watches are removed, the destructor of their user data
 * runs, and the descriptors registered with BW_IO_OWNED are closed. A
 * BW_MSG_IO message never arrives for a watch after bw_io_unwatch returned.
 *
 * Deadlines (a connect timeout) run on the runtime's timers and clock
 * (bw_io_deadline), never on epoll timeouts, so a manual clock drives them.
 */
#ifndef BULWARK_IO_H
#define BULWARK_IO_H

#include "bulwark/timer.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A watch: a nonzero id (a slot and its generation: an id comes back
 * only after its slot has been reused 2^32 times, so a stale id is
 * refused, not confused with a newer watch). */
typedef uint64_t bw_io_t;

/* Readiness bits (bw_io_watch, bw_io_arm, bw_io_event_t.events). */
enum {
  BW_IO_IN = 1u << 0,      /* readable (or a listening socket has a connection) */
  BW_IO_OUT = 1u << 1,     /* writable (or a connect finished, well or not) */
  BW_IO_ERR = 1u << 2,     /* an error is pending (events only) */
  BW_IO_HUP = 1u << 3,     /* the peer hung up (events only) */
  BW_IO_TIMEOUT = 1u << 4, /* a deadline set with bw_io_deadline passed (events only) */
};

/* Watch flags (bw_io_watch). */
enum {
  /* The watch owns the descriptor: bw_io_unwatch and the actor's exit
   * close it. Without it the caller closes it, after bw_io_unwatch. */
  BW_IO_OWNED = 1u << 0,
};

/* The system message type of a readiness event. Payload: bw_io_event_t.
 * It is a system message: never refused by a bounded mailbox, never
 * dropped by back-pressure, and its node is preallocated per watch (no
 * allocation per event). */
#define BW_MSG_IO (BW_MSG_SYSTEM_BASE + 0x0100u)

typedef struct bw_io_event {
  bw_io_t watch;   /* which watch */
  int fd;          /* its descriptor */
  uint32_t events; /* BW_IO_* bits that were ready */
  void *ud;        /* the user data given to bw_io_watch */
} bw_io_event_t;

/*
 * Watches fd for the BW_IO_IN / BW_IO_OUT bits in events (0: registered
 * but not armed; arm it later with bw_io_arm). ud comes back in every
 * event. The descriptor is put in non-blocking mode.
 * Returns 0 with *out set; BW_ENOTACTOR (not inside ctx's callback);
 * BW_EINVAL (NULL out, unknown bits in events or flags); BW_EBADF (fd < 0,
 * closed, or not pollable: a regular file); BW_EEXIST (fd is already
 * watched); BW_ENOMEM; BW_ELIMIT (no descriptor left for the runtime's
 * epoll set); BW_ESHUTDOWN (the runtime has stopped). During bw_runtime_stop watches
 * still work (a shutdown may need to flush), and die with their actors. On failure an owned fd is NOT closed: the caller keeps it.
 */
int bw_io_watch(bw_ctx_t *ctx, int fd, uint32_t events, uint32_t flags, void *ud,
                bw_io_t *out);

/*
 * Arms w for events (BW_IO_IN, BW_IO_OUT or both), replacing its interest;
 * 0 disarms it. Called while the watch's message is being handled (or is
 * queued), the new interest takes effect when that message is done, so at
 * most one message per watch is ever in flight. A message already on its
 * way may still arrive after a disarm; after bw_io_unwatch none does.
 * Cost: one epoll_ctl system call, no lock, no allocation.
 * Returns 0; BW_ENOTACTOR; BW_EINVAL (unknown bits); BW_ENOTFOUND (not a
 * live watch of this actor); BW_EBADF (the descriptor was closed under it).
 */
int bw_io_arm(bw_ctx_t *ctx, bw_io_t w, uint32_t events);

/*
 * Removes w: no message for it arrives from now on (one already queued is
 * discarded), its user data's destructor runs (TCP helpers), and an owned
 * descriptor is closed.
 * Returns 0; BW_ENOTACTOR; BW_ENOTFOUND (not a live watch of this actor).
 */
int bw_io_unwatch(bw_ctx_t *ctx, bw_io_t w);

/*
 * Arms a deadline on w: after ms on the runtime's clock (manual or not),
 * w's owner gets a BW_MSG_IO with events = BW_IO_TIMEOUT, unless w was
 * removed first. *timer (may be NULL) can be cancelled with
 * bw_timer_cancel. Returns 0; BW_ENOTACTOR; BW_ENOTFOUND; BW_ENOMEM;
 * BW_ESHUTDOWN.
 */
int bw_io_deadline(bw_ctx_t *ctx, bw_io_t w, uint64_t ms, bw_timer_t *timer);

/* ------------------------------------------------------------------------ */
/* TCP helpers: a listener and connections owned by the calling actor, each
 * one watch whose user data is the bw_tcp_t. The owner passes every
 * BW_MSG_IO event whose ud is a bw_tcp_t to bw_tcp_on_io. */

typedef struct bw_tcp bw_tcp_t;

/* What bw_tcp_on_io found (bits). */
enum {
  BW_TCP_CONNECTED = 1u << 0, /* a bw_tcp_connect finished: ready to use */
  BW_TCP_DATA = 1u << 1,      /* received bytes wait in the read buffer */
  BW_TCP_DRAINED = 1u << 2,   /* everything written has gone to the kernel */
  BW_TCP_EOF = 1u << 3,       /* the peer closed its side: no more data will come */
  BW_TCP_ACCEPT = 1u << 4,    /* a listener has connections: call bw_tcp_accept */
};

/* Options of a connection (read and write buffer limits). */
typedef struct bw_tcp_opts {
  /* read buffer: reading stops (the socket is not polled for input) while
   * this many bytes wait unconsumed; back-pressure reaches the peer
   * through TCP's window. Default 16 KiB. */
  uint32_t read_max;
  /* write buffer: bw_tcp_write refuses (BW_EFULL) what would exceed it.
   * Default 64 KiB. */
  uint32_t write_max;
} bw_tcp_opts_t;

void bw_tcp_opts_init(bw_tcp_opts_t *o);

/*
 * Listens on addr:port (IPv4 dotted quad; NULL means 127.0.0.1: nothing
 * listens beyond loopback unless the caller names another address; port 0
 * picks a free port, see bw_tcp_port). The listener's owner gets
 * BW_TCP_ACCEPT from bw_tcp_on_io, then calls bw_tcp_accept.
 * Returns 0 with *out; BW_ENOTACTOR; BW_EINVAL (NULL out, bad address);
 * BW_EADDRINUSE; BW_EIO (another socket error); bw_io_watch's codes.
 */
int bw_tcp_listen(bw_ctx_t *ctx, const char *addr, uint16_t port, int backlog,
                  const bw_tcp_opts_t *opts, bw_tcp_t **out);

/*
 * Accepts one pending connection of listener l, owned by the caller and
 * armed for input. Returns 1 with *out; 0 when none is pending (the
 * listener is re-armed); BW_EINVAL (l not a listener, NULL out);
 * BW_ELIMIT (out of descriptors: the listener is not re-armed, so it does
 * not spin; call bw_tcp_accept again once descriptors are freed); BW_EIO;
 * bw_io_watch's codes.
 */
int bw_tcp_accept(bw_ctx_t *ctx, bw_tcp_t *l, bw_tcp_t **out);

/*
 * Starts connecting to addr:port (IPv4; NULL means 127.0.0.1). The result
 * comes as an event: bw_tcp_on_io returns BW_TCP_CONNECTED, or
 * BW_ECONNREFUSED, or BW_ETIMEDOUT when timeout_ms (0 = none) passes first
 * on the runtime's clock. Returns 0 with *out; BW_ENOTACTOR; BW_EINVAL;
 * BW_ECONNREFUSED (refused at once); BW_EIO; bw_io_watch's codes.
 */
int bw_tcp_connect(bw_ctx_t *ctx, const char *addr, uint16_t port, uint64_t timeout_ms,
                   const bw_tcp_opts_t *opts, bw_tcp_t **out);

/*
 * Handles a BW_MSG_IO event of c: finishes a connect, reads into the read
 * buffer (up to read_max), flushes the write buffer, and re-arms c for
 * what it needs next (input while the read buffer has room and the peer
 * has not closed; output while bytes wait to be written).
 * Returns BW_TCP_* bits (0: nothing new); BW_EINVAL (NULL, not c's event);
 * BW_ECONNREFUSED, BW_ETIMEDOUT (connect); BW_ECONNRESET; BW_EIO. After a
 * negative code c is dead: close it.
 */
int bw_tcp_on_io(bw_ctx_t *ctx, bw_tcp_t *c, const bw_io_event_t *ev);

/*
 * The next received line (bytes up to '\n', which is not included) as a
 * pointer into the read buffer and its length; valid until the next call
 * on c. Returns 1 with a line (consumed: the space is freed, and input
 * re-armed if reading had stopped for room); 0 when no whole line waits;
 * BW_ELIMIT when the read buffer is full without a '\n' (a line longer
 * than read_max: the caller decides, typically closes c).
 */
int bw_tcp_getline(bw_ctx_t *ctx, bw_tcp_t *c, const char **line, size_t *len);

/* Bytes waiting unread in c's read buffer (for a protocol that is not
 * line-based: bw_tcp_peek / bw_tcp_consume). */
size_t bw_tcp_peek(const bw_tcp_t *c, const char **data);
/* Drops n read bytes (n capped at what waits); re-arms input if needed. */
void bw_tcp_consume(bw_ctx_t *ctx, bw_tcp_t *c, size_t n);

/*
 * Queues len bytes to send (writing at once what the kernel takes).
 * Returns 0; BW_EFULL (the write buffer would exceed write_max: nothing
 * was queued; wait for BW_TCP_DRAINED); BW_EINVAL; BW_ESTATE (still
 * connecting, or a listener); BW_ECONNRESET, BW_EIO.
 */
int bw_tcp_write(bw_ctx_t *ctx, bw_tcp_t *c, const void *data, size_t len);

/* Bytes queued and not yet taken by the kernel. */
size_t bw_tcp_pending(const bw_tcp_t *c);

/* The local port of c (a listener on port 0: the one picked); 0 on NULL. */
uint16_t bw_tcp_port(const bw_tcp_t *c);

/* The watch of c (to compare with bw_io_event_t.watch). */
bw_io_t bw_tcp_watch(const bw_tcp_t *c);

/* Closes c: its watch is removed (no more events), its descriptor closed,
 * its memory freed. Unsent bytes are dropped. NULL is a no-op. The owner's
 * exit closes every bw_tcp_t it still has. */
void bw_tcp_close(bw_ctx_t *ctx, bw_tcp_t *c);

#ifdef __cplusplus
}
#endif
#endif
