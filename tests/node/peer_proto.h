/*
 * What tests/node/node_peer.c and the processes that drive it say to each
 * other: message types of the peer's service actor, and its report.
 */
#ifndef BW_TESTS_PEER_PROTO_H
#define BW_TESTS_PEER_PROTO_H

#include <stdint.h>

enum {
  PEER_COUNT = 100, /* counted */
  PEER_ECHO,        /* a request: answered with its own payload */
  PEER_SEQ,         /* a uint32 that must be one more than the last */
  PEER_REPORT,      /* a request: answered with peer_report_t */
  PEER_CRASH,       /* the service crashes (its supervisor restarts it) */
};

typedef struct peer_report {
  uint64_t count;
  uint64_t seq_seen;
  uint64_t seq_bad;
} peer_report_t;

#endif
