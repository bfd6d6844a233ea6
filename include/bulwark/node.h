/*
 * bulwark: nodes. Several processes (nodes) send to, link to and monitor
 * each other's actors through a NATS server (Debian: nats-server; the C
 * client libnats-dev). The node layer is an optional part of the build:
 * without libnats, bw_node_start returns BW_ENOTSUP and nothing else
 * changes.
 *
 * A node is a runtime created with bw_runtime_opts.node_id (1..255, unique
 * in the cluster) and joined with bw_node_start. Every pid carries its
 * node, so a pid is valid anywhere in the cluster, also inside payloads.
 *
 * What is location-transparent: bw_send (the payload bytes are copied into
 * a frame; order per sender and receiver is kept), requests and replies
 * (bw_request, bw_reply, bw_call), exit signals (bw_exit, kill included),
 * links and monitors. A message to a pid whose node is not connected is a
 * dead letter with reason noconnection (bw_send returns BW_ENOCONN). When a
 * node is lost (silent for heartbeat_ms * heartbeat_misses, or it said
 * goodbye), every local actor linked to one of its actors gets an exit
 * signal, and every monitor a DOWN, with reason noconnection.
 * Pointer payloads (bw_send_move, bw_reply_move) cross only for a message
 * type with a serializer registered on both nodes (bw_node_serializer);
 * otherwise they return BW_EREMOTE and the caller keeps the pointer.
 * What is not location-transparent: bw_is_alive and bw_mailbox_depth
 * (local pids only), the local registry (bw_register; use bw_node_register).
 *
 * Cost: a remote send encodes a frame on the sender's stack and hands it to
 * libnats (which takes its connection's lock and copies it into its write
 * buffer); nothing is allocated per message. Frames arrive on libnats's
 * subscription thread, which delivers them as a local send would.
 */
#ifndef BULWARK_NODE_H
#define BULWARK_NODE_H

#include "bulwark/actor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_node_opts {
  /* This node's name, unique in the cluster: 1..63 printable characters,
   * no spaces. Required. */
  const char *name;
  /* The NATS server(s): "nats://host:port", comma-separated. Required. */
  const char *url;
  /* The subject prefix that separates clusters sharing a NATS server:
   * letters, digits, '-' and '_'. Default "bulwark". */
  const char *cluster;
  /* Authentication, from configuration (never compile it in): a token, or a
   * user and password, or a credentials file (JWT and nkey seed). */
  const char *token;
  const char *user;
  const char *password;
  const char *creds_file;
  /* TLS to the server: on when secure is set or any file is given. */
  bool secure;
  const char *ca_file;   /* trusted CAs for the server's certificate */
  const char *cert_file; /* client certificate and key, if the server asks */
  const char *key_file;
  /* Liveness: a heartbeat every heartbeat_ms (runtime clock; default 250);
   * a node silent for heartbeat_misses periods (default 4) is lost. */
  uint32_t heartbeat_ms;
  uint32_t heartbeat_misses;
  /* How long bw_node_start waits for the server (wall clock; default 5000). */
  uint32_t connect_timeout_ms;
  /* Frames are written to the server at once (the default: a round trip
   * costs about 1.5x a plain NATS request here), or, with batch_writes,
   * gathered by libnats's flusher (about 4x the throughput of a stream of
   * small messages, and about a millisecond more per hop). */
  bool batch_writes;
} bw_node_opts_t;

void bw_node_opts_init(bw_node_opts_t *opts);

/*
 * Joins the cluster: connects to NATS, announces this node and starts its
 * heartbeat (an actor named "bw.node"). From a thread that is not a
 * scheduler thread. Other nodes are known once they answer; bw_node_wait
 * waits for one.
 * Returns 0; BW_EINVAL (NULL, bad options, or the runtime has no node_id);
 * BW_EALREADY (already started on this runtime, even if stopped since);
 * BW_ETIMEDOUT or BW_ENOCONN (the server could not be reached);
 * BW_ENOTSUP (built without libnats); BW_ESHUTDOWN; BW_ENOMEM.
 */
int bw_node_start(bw_runtime_t *rt, const bw_node_opts_t *opts);

/*
 * Leaves the cluster: says goodbye (other nodes see noconnection at once,
 * without waiting for the heartbeat), then closes the connection. Remote
 * pids are then unreachable (noconnection). Also done by
 * bw_runtime_destroy. Returns 0, BW_EINVAL, BW_ESTATE (not started).
 */
int bw_node_stop(bw_runtime_t *rt);

/* The node a pid belongs to (0 for a pid of a plain runtime). */
static inline unsigned bw_pid_node(bw_pid_t pid) { return (unsigned)(pid >> 56); }

/*
 * Waits until the node named name is connected, at most timeout_ms of wall
 * clock (0 = do not wait); *id (optional) gets its node id. From a thread
 * that is not a scheduler thread.
 * Returns 0, BW_ETIMEDOUT, BW_EINVAL, BW_ESTATE (not started), BW_EWOULDBLOCK.
 */
int bw_node_wait(bw_runtime_t *rt, const char *name, uint64_t timeout_ms, unsigned *id);

/*
 * Cluster-wide names. Every node keeps the whole directory (each owner
 * announces its names, and sends them all to a node that joins), so
 * bw_node_whereis is a local lookup, without a round trip. A name goes when
 * its actor exits, when it is unregistered, or when its node is lost.
 * Registering one name on two nodes at the same moment is settled the same
 * way everywhere: the lower node id keeps it (counted in name_conflicts);
 * a name already known as taken gives BW_EEXIST.
 *
 * bw_node_register: pid must be a live actor of this node. Names: 1..63
 * printable characters, no spaces. Returns 0 (also if pid already has it),
 * BW_EINVAL, BW_EEXIST, BW_ENOPROC, BW_ESTATE (node not running), BW_ENOMEM.
 * bw_node_unregister: a name this node registered. Returns 0, BW_EINVAL,
 * BW_ENOTFOUND, BW_ESTATE.
 * bw_node_whereis: Returns 0 with *out, BW_ENOTFOUND, BW_EINVAL, BW_ESTATE.
 */
int bw_node_register(bw_runtime_t *rt, const char *name, bw_pid_t pid);
int bw_node_unregister(bw_runtime_t *rt, const char *name);
int bw_node_whereis(bw_runtime_t *rt, const char *name, bw_pid_t *out);

/*
 * Exports a behaviour under a name, so that supervisors on other nodes can
 * start children here (bw_child_spec_t.remote, bulwark/supervisor.h). Do it
 * right after bw_node_start; a start asked for before is refused
 * (BW_ENOTFOUND) and retried by the supervisor as a failed start.
 * Returns 0 (also if already exported with the same behaviour), BW_EINVAL,
 * BW_EEXIST (the name has another behaviour), BW_ELIMIT (64 exports),
 * BW_ESTATE (node not started).
 */
int bw_node_export(bw_runtime_t *rt, const char *name, const bw_behaviour_t *b);

/*
 * How a moved payload of one message type crosses nodes. encode writes the
 * payload (ptr, len as given to bw_send_move) into buf, at most cap bytes
 * (64 KiB), and returns the bytes written or a negative code; the sender's
 * dtor then runs as for a delivered message. decode rebuilds it on the
 * receiving node: *ptr, *len and the *dtor the runtime calls when the
 * receiver is done (unless it takes the payload with bw_msg_take); it
 * returns 0 or a negative code. A payload that cannot be encoded is a dead
 * letter on the sender (reason undecodable; bw_send_move returns the
 * code), one that cannot be decoded a dead letter on the receiver.
 * Both run on the sending / receiving thread and must not block.
 */
typedef struct bw_serializer {
  long (*encode)(const void *ptr, size_t len, void *buf, size_t cap);
  int (*decode)(const void *buf, size_t n, void **ptr, size_t *len, void (**dtor)(void *));
} bw_serializer_t;

/* Registers the serializer for a message type (once per type; up to 64).
 * Returns 0, BW_EINVAL, BW_EEXIST, BW_ELIMIT, BW_ESTATE (not started). */
int bw_node_serializer(bw_runtime_t *rt, uint32_t type, const bw_serializer_t *s);

/* Whether node id is connected now (a snapshot). */
bool bw_node_connected(bw_runtime_t *rt, unsigned id);

typedef struct bw_node_stats {
  uint64_t frames_out;   /* frames published (messages, signals, control) */
  uint64_t frames_in;    /* frames received and applied */
  uint64_t bad_frames;   /* frames dropped as malformed (never applied) */
  uint64_t unreachable;  /* messages and signals for a node not connected */
  uint64_t nodes_up;     /* join and rejoin transitions seen */
  uint64_t nodes_lost;   /* loss transitions (silence, goodbye, disconnect) */
  uint64_t name_conflicts; /* names claimed by two nodes at once (settled) */
  uint64_t frames_dropped; /* frames the NATS client dropped (slow consumer): should stay 0 */
  uint64_t resent;       /* frames sent again (not acknowledged in time, or asked for) */
  uint64_t duplicates;   /* frames received twice (a resend crossed its ACK), dropped */
  uint32_t connected;    /* nodes connected now */
  uint32_t links;        /* cross-node links and monitors tracked now */
  uint32_t names;        /* cluster-wide names known now */
} bw_node_stats_t;

/* Returns 0, BW_EINVAL, BW_ESTATE (not started). */
int bw_node_stats(bw_runtime_t *rt, bw_node_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
