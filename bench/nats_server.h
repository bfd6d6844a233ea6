/*
 * A private nats-server for the node benchmarks (bench_node.c): Debian's
 * nats-server package, on loopback, on a port the kernel just handed out,
 * started for one run and stopped with it, so runs never share a server's
 * state and never need one already running.
 *
 * Bench's own, not the tests' helper (tests/node/nats_server.h): bench
 * uses only the public headers and its own files. It reports the way every
 * bench helper does, with r->error, and starts the executable it found,
 * so "installed" and "started" cannot disagree.
 */
#ifndef BW_BENCH_NATS_SERVER_H
#define BW_BENCH_NATS_SERVER_H

#include "runner.h"

#include <sys/types.h>

typedef struct bench_nats {
  pid_t pid;    /* 0: not running */
  int port;
  char url[64]; /* nats://127.0.0.1:PORT, for bw_node_opts.url */
} bench_nats_t;

/*
 * Starts nats-server (looked up on PATH, then in /usr/sbin and /usr/bin,
 * where Debian puts it) on a free loopback port, and waits up to 10 s for
 * it to accept connections. Returns 0, or -1 with r->error set: not
 * installed, or it could not start (then nothing is left running).
 */
int bench_nats_start(bench_run_t *r, bench_nats_t *s);

/* Stops a started server (SIGTERM, then waits for it to exit). A zeroed
 * or already stopped bench_nats_t is a no-op. */
void bench_nats_stop(bench_nats_t *s);

#endif
