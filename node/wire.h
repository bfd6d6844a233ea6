/*
 * bulwark internal: the node wire format. One NATS message carries one
 * frame: a fixed 64-byte little-endian header and a payload.
 *
 *   off  size
 *    0    2   magic 0x7762 ("bw")
 *    2    1   version (1)
 *    3    1   kind (BW__WK_*)
 *    4    1   source node id
 *    5    1   destination node id (0 on the control subject: everyone)
 *    6    2   reserved, 0
 *    8    4   flags (BW__WF_*)
 *   12    4   message type (user frames)
 *   16    4   status (replies), signed
 *   20    4   payload length
 *   24    8   from pid
 *   32    8   to pid
 *   40    8   ref (request, reply or monitor)
 *   48    8   seq: the frame's number on its channel (ACK, NACK: the number
 *             acknowledged, or wanted again); 0 on the control subject
 *   56    4   epoch: the sender's channel incarnation
 *   60    4   reserved, 0
 *   64    -   payload
 *
 * Payloads: a user frame, the message bytes (at most BW_MSG_INLINE_MAX);
 * EXIT and DOWN, a reason (kind i32, code i32, text length u8, text);
 * LINK, UNLINK, MONITOR, DEMONITOR, none; HELLO, HEARTBEAT, BYE and
 * DISCONNECT, the sender's incarnation (u64) and its name (length u8, bytes);
 * NAME_ADD and NAME_DEL, the pid (u64, in the from field too) and the
 * cluster-wide name (length u8, bytes).
 *
 * Decoding is pure and checks everything a hostile sender could get wrong
 * (the fuzz harness drives it): lengths, kinds, flags, pid nodes, reason
 * kinds, names. A frame that fails is counted and dropped, never applied.
 */
#ifndef BW_NODE_WIRE_H
#define BW_NODE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "bulwark/types.h"

#define BW__WIRE_MAGIC 0x7762u
#define BW__WIRE_VERSION 1u
#define BW__WIRE_HDR 64u
#define BW__WIRE_NAME_MAX 63u
/* the largest frame: a header and the largest payload (a user message) */
#define BW__WIRE_MAX (BW__WIRE_HDR + BW_MSG_INLINE_MAX)
/* the largest frame with a serialized (moved) payload */
#define BW__WIRE_MOVED_MAX (64u * 1024u)
#define BW__WIRE_BIG_MAX (BW__WIRE_HDR + BW__WIRE_MOVED_MAX)

enum {
  BW__WK_USER = 1,
  BW__WK_EXIT,
  BW__WK_DOWN,
  BW__WK_LINK,
  BW__WK_UNLINK,
  BW__WK_MONITOR,
  BW__WK_DEMONITOR,
  BW__WK_HELLO = 16, /* I joined: everyone answer with a heartbeat */
  BW__WK_HEARTBEAT,  /* I am alive */
  BW__WK_BYE,        /* I am leaving (a clean stop) */
  BW__WK_DISCONNECT, /* to one node: I declared you lost; do the same */
  BW__WK_NAME_ADD = 20, /* a cluster-wide name now names this pid of mine */
  BW__WK_NAME_DEL,      /* ... no longer */
  BW__WK_ACK = 24,      /* to one node: I have all your frames up to seq */
  BW__WK_NACK,          /* to one node: frames from seq on did not arrive, again please */
};

enum {
  BW__WF_REQUEST = 1u << 0, /* = BW_MSGF_REQUEST */
  BW__WF_REPLY = 1u << 1,   /* = BW_MSGF_REPLY */
  BW__WF_MOVED = 1u << 2,   /* a serialized moved payload (bw_node_serializer) */
  BW__WF_LINKEXIT = 1u << 8, /* an EXIT because a linked actor died */
  BW__WF__ALL = BW__WF_REQUEST | BW__WF_REPLY | BW__WF_MOVED | BW__WF_LINKEXIT,
};

/* A decoded frame; payload points into the buffer decoded. */
typedef struct bw__frame {
  uint8_t kind, src, dst;
  uint32_t flags, type, len;
  int32_t status;
  bw_pid_t from, to;
  uint64_t ref;
  uint64_t seq;
  uint32_t epoch;
  const uint8_t *payload;
  /* EXIT, DOWN */
  bw_reason_t reason;
  /* control frames */
  uint64_t incarnation;
  char name[BW__WIRE_NAME_MAX + 1];
} bw__frame;

/* Encodes f (payload/reason/name per kind) into buf (cap bytes, at least
 * BW__WIRE_MAX; a moved user payload up to BW__WIRE_MOVED_MAX needs its
 * header and length). Returns the frame's length, or 0 if f does not fit
 * the format or buf (payload too long, name too long). */
size_t bw__wire_encode(const bw__frame *f, uint8_t *buf, size_t cap);

/* Decodes len bytes. Returns 0, or a negative code naming the first check
 * that failed (BW__WIRE_E*). */
int bw__wire_decode(const uint8_t *buf, size_t len, bw__frame *out);

enum {
  BW__WIRE_ESHORT = -1,   /* shorter than a header */
  BW__WIRE_EMAGIC = -2,   /* not a bulwark frame, or another version */
  BW__WIRE_EKIND = -3,    /* unknown kind, or flags not allowed for it */
  BW__WIRE_ELEN = -4,     /* payload length wrong for the kind or the frame */
  BW__WIRE_EPID = -5,     /* a pid on the wrong node, or a reserved field set */
  BW__WIRE_EREASON = -6,  /* a malformed reason */
  BW__WIRE_ENAME = -7,    /* a malformed node name */
  BW__WIRE_ETYPE = -8,    /* a user frame with a reserved message type */
};

#endif
