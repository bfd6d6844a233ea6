/*
 * bulwark internal: the node layer's shared state, for its files:
 *   node.c        start, stop, destroy, the API;
 *   membership.c  which nodes are up; the cross-node links and monitors;
 *   frames_in.c   frames from other nodes, applied;
 *   frames_out.c  the runtime's hook: frames to other nodes, serializers;
 *   agent.c       the node actor: heartbeat, silence check, spawns;
 *   channel.c     numbered, acknowledged channels to each node (NODE.md,
 *                 "Channels") and their back-pressure gates;
 *   names.c       the cluster-wide name directory.
 * Only built with libnats (BW_HAVE_NATS).
 */
#ifndef BW_NODE_IMPL_H
#define BW_NODE_IMPL_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bulwark/node.h"
#include "node/wire.h"
#include "runtime/grow.h"
#include "runtime/internal.h"

#define SUBJ_MAX 96
#define T_TICK (BW_MSG_PATTERN_BASE + 0x0800u) /* the heartbeat timer */
#define T_WATCH_NAME (BW_MSG_PATTERN_BASE + 0x0801u) /* monitor a pid with a name */
#define T_SPAWN (BW_MSG_PATTERN_BASE + 0x0802u)      /* start an exported behaviour */
#define EXPORTS_MAX 64
#define SER_MAX 64

enum { M_NONE = 0, M_UP = 1, M_LOST = 2 };
enum { N_RUNNING = 1, N_STOPPED = 2 };
enum { R_LINK = 1, R_MON_OUT, R_MON_IN };

typedef struct member {
  uint32_t state;        /* atomic: M_*; read lock-free by senders */
  uint64_t last_seen_ms; /* atomic: runtime clock at its last frame */
  uint64_t incarnation;  /* under mx; 0 = not yet announced */
  bw_pid_t agent;        /* under mx: its node actor (starts remote children) */
  char name[BW__WIRE_NAME_MAX + 1]; /* under mx */
} member;

/* A cross-node relation: a link (local, remote), or a monitor by ref
 * (R_MON_OUT: local watches remote; R_MON_IN: remote watches local). */
typedef struct rel {
  uint32_t kind;
  bw_pid_t local, remote;
  uint64_t ref;
} rel;

/* The cluster-wide name directory: every node keeps all of it, so a lookup
 * is local. An entry comes from the owner's NAME_ADD (or our own register);
 * it goes with NAME_DEL, the owner's exit, or the owner node's loss. Two
 * nodes registering one name at once: the lower node id keeps it. */
typedef struct name_ent {
  char name[BW__WIRE_NAME_MAX + 1];
  bw_pid_t pid;
} name_ent;

#define TX_MAX 65536u /* unacknowledged frames per destination */
#define TX_HIGH 8192u /* from here on, actor senders are muted ... */
#define TX_LOW 2048u  /* ... until down to here */
#define ACK_EVERY 64u

typedef struct txslot {
  uint64_t seq;
  uint32_t len;
  uint8_t *big; /* a frame with a serialized payload (else in buf), freed once acknowledged */
  uint8_t buf[BW__WIRE_MAX];
} txslot;

static inline const uint8_t *slot_frame(const txslot *s) {
  return s->big != NULL ? s->big : s->buf;
}

/* The sending side of a channel to one node. */
typedef struct txchan {
  pthread_mutex_t mx;
  uint32_t epoch;
  uint64_t next;  /* the next frame's number (from 1) */
  uint64_t acked; /* every frame up to this one is acknowledged */
  uint64_t acked_at_tick; /* ticks when acked last moved: resend after a quiet one */
  txslot *ring;   /* frames acked+1 .. next-1, at seq & (cap - 1) */
  uint32_t cap;
  bw__gate gate;  /* closed from TX_HIGH to TX_LOW */
} txchan;

/* The receiving side (only the data subscription's thread touches it). */
typedef struct rxchan {
  uint32_t epoch;
  uint64_t expected; /* the next number to apply */
  uint64_t nacked;   /* the number last asked for again (one NACK per gap) */
  uint32_t since_ack;
} rxchan;

typedef struct node {
  bw__runtime *rt;
  natsConnection *nc;
  natsSubscription *sub_data, *sub_ctl;
  uint32_t state; /* atomic: N_* */
  uint32_t hb_ms, misses;
  uint64_t incarnation;
  char name[BW__WIRE_NAME_MAX + 1];
  char ctl_subj[SUBJ_MAX];
  char subj[256][SUBJ_MAX]; /* "<cluster>.n.<id>" */
  bw_pid_t agent;

  pthread_mutex_t mx; /* membership changes, the relation table, subs_live */
  pthread_cond_t cv;  /* membership changes, subscriptions completed */
  member m[256];
  rel *rels;
  uint32_t nrels, caprels;
  name_ent *names;
  uint32_t nnames, capnames;
  struct {
    uint32_t type;
    bw_serializer_t s;
  } ser[SER_MAX]; /* under mx */
  uint32_t nser;
  struct {
    char name[64];
    const bw_behaviour_t *b;
  } exports[EXPORTS_MAX]; /* under mx */
  uint32_t nexports;
  uint32_t subs_live;

  /* stats: atomic adds, relaxed (counters only) */
  uint64_t frames_out, frames_in, bad_frames, unreachable, nodes_up, nodes_lost;
  uint64_t name_conflicts, resent, duplicates, gaps;
  uint64_t ticks; /* heartbeat periods so far */
  uint32_t gates_off; /* atomic: stopping: no sender is muted any more */

  txchan tx[256];
  rxchan rx[256];
} node;

/* node.c */
node *bw__node_of(bw__runtime *rt); /* NULL if rt has no node layer */
const bw_reason_t *bw__node_noconnection(void);
void bw__node_copy_str(char *dst, size_t cap, const char *src);
bool bw__node_valid_token(const char *s, size_t max, bool dots_ok);

/* membership.c (the relation table under n->mx) */
bool bw__node_rel_add(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref);
void bw__node_rel_del(node *n, uint32_t kind, bw_pid_t local, bw_pid_t remote, uint64_t ref);
void bw__node_publish_control(node *n, uint8_t kind, unsigned dst);
void bw__node_lost(node *n, unsigned id, bool tell, bool bye);
void bw__node_seen(node *n, unsigned id, uint64_t inc, const char *name, bw_pid_t agent);
void bw__node_on_control(node *n, const bw__frame *f);

/* frames_in.c */
void bw__node_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
void bw__node_on_sub_complete(void *closure);

/* frames_out.c */
const bw_serializer_t *bw__node_serializer_of(node *n, uint32_t type);
bool bw__node_can_move(bw__runtime *rt, uint32_t type, void *ud);
int bw__node_unreachable(node *n, bw__msg *m);
int bw__node_deliver(bw__runtime *rt, bw__msg *m, void *ud);

/* agent.c */
extern const bw_behaviour_t bw__node_agent_behaviour;

/* channel.c */
bool bw__node_publish(node *n, const char *subj, const bw__frame *f);
uint32_t bw__node_new_epoch(void);
bool bw__node_channel_send(node *n, unsigned id, bw__frame *f, uint8_t *big, size_t bigcap);
void bw__node_channel_resend(node *n, unsigned id, txchan *t, uint64_t from); /* under t->mx */
void bw__node_channel_control(node *n, unsigned id, uint8_t kind, uint64_t seq, uint32_t epoch);
void bw__node_channel_reset(node *n, unsigned id);
void bw__node_gates_open_all(node *n);
void bw__node_on_ack(node *n, const bw__frame *f);
void bw__node_on_reconnected(natsConnection *nc, void *closure);

/* names.c (all under n->mx but the last three, which take it) */
void bw__node_names_drop_node(node *n, unsigned id); /* under n->mx */
void bw__node_names_send_all(node *n, unsigned id);
void bw__node_on_name(node *n, const bw__frame *f);
void bw__node_names_owner_down(node *n, bw_pid_t pid);

#endif
