/*
 * bulwark: the node wire format (see wire.h). Explicit little-endian
 * encoding, so nodes on different hosts agree whatever their byte order.
 */
#include <string.h>

#include "node/wire.h"
#include "runtime/internal.h" /* the pid layout: BW__PID_* */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static bool is_control(unsigned kind) {
  return kind >= BW__WK_HELLO && kind <= BW__WK_DISCONNECT;
}

static bool is_name(unsigned kind) {
  return kind == BW__WK_NAME_ADD || kind == BW__WK_NAME_DEL;
}

static bool is_ack(unsigned kind) { return kind == BW__WK_ACK || kind == BW__WK_NACK; }

static bool is_signal(unsigned kind) {
  return kind >= BW__WK_EXIT && kind <= BW__WK_DEMONITOR;
}

size_t bw__wire_encode(const bw__frame *f, uint8_t *buf, size_t cap) {
  uint8_t *p = buf + BW__WIRE_HDR;
  size_t plen = 0;
  if (cap < BW__WIRE_MAX)
    return 0;
  if (f->kind == BW__WK_USER) {
    size_t max = (f->flags & BW__WF_MOVED) ? BW__WIRE_MOVED_MAX : BW_MSG_INLINE_MAX;
    if (f->len > max || BW__WIRE_HDR + (size_t)f->len > cap || (f->len > 0 && f->payload == NULL))
      return 0;
    if (f->len > 0 && f->payload != p) /* a serializer may have written it in place */
      memcpy(p, f->payload, f->len);
    plen = f->len;
  } else if (f->kind == BW__WK_EXIT || f->kind == BW__WK_DOWN) {
    size_t tl = strnlen(f->reason.text, BW_REASON_TEXT_MAX - 1);
    put32(p, (uint32_t)f->reason.kind);
    put32(p + 4, (uint32_t)f->reason.code);
    p[8] = (uint8_t)tl;
    memcpy(p + 9, f->reason.text, tl);
    plen = 9 + tl;
  } else if (is_control(f->kind) || is_name(f->kind)) {
    size_t nl = strnlen(f->name, BW__WIRE_NAME_MAX + 1);
    if (nl > BW__WIRE_NAME_MAX)
      return 0;
    put64(p, is_name(f->kind) ? f->from : f->incarnation);
    p[8] = (uint8_t)nl;
    memcpy(p + 9, f->name, nl);
    plen = 9 + nl;
  } else if (!is_signal(f->kind) && !is_ack(f->kind)) {
    return 0;
  }
  put16(buf, BW__WIRE_MAGIC);
  buf[2] = BW__WIRE_VERSION;
  buf[3] = f->kind;
  buf[4] = f->src;
  buf[5] = f->dst;
  put16(buf + 6, 0);
  put32(buf + 8, f->flags);
  put32(buf + 12, f->type);
  put32(buf + 16, (uint32_t)f->status);
  put32(buf + 20, (uint32_t)plen);
  put64(buf + 24, f->from);
  put64(buf + 32, f->to);
  put64(buf + 40, f->ref);
  put64(buf + 48, f->seq);
  put32(buf + 56, f->epoch);
  put32(buf + 60, 0);
  return BW__WIRE_HDR + plen;
}

static unsigned pid_node(bw_pid_t p) { return (unsigned)(p >> 56); }
/* A pid some runtime could have minted: a runtime tag and a generation. The
 * node it names checks the rest (the tag is that node's runtime's). */
static bool pid_minted(bw_pid_t p) { return BW__PID_TAG(p) != 0 && BW__PID_GEN(p) != 0; }

int bw__wire_decode(const uint8_t *buf, size_t len, bw__frame *f) {
  if (buf == NULL || len < BW__WIRE_HDR)
    return BW__WIRE_ESHORT;
  if (get16(buf) != BW__WIRE_MAGIC || buf[2] != BW__WIRE_VERSION)
    return BW__WIRE_EMAGIC;
  memset(f, 0, sizeof(*f));
  f->kind = buf[3];
  f->src = buf[4];
  f->dst = buf[5];
  f->flags = get32(buf + 8);
  f->type = get32(buf + 12);
  f->status = (int32_t)get32(buf + 16);
  f->len = get32(buf + 20);
  f->from = get64(buf + 24);
  f->to = get64(buf + 32);
  f->ref = get64(buf + 40);
  f->seq = get64(buf + 48);
  f->epoch = get32(buf + 56);
  f->payload = buf + BW__WIRE_HDR;
  if (f->len != len - BW__WIRE_HDR)
    return BW__WIRE_ELEN;
  if (get16(buf + 6) != 0 || get32(buf + 60) != 0 || f->src == 0)
    return BW__WIRE_EPID;
  if (is_ack(f->kind)) {
    /* channel control, to one node: no payload, a number */
    if (f->dst == 0 || f->len != 0 || f->flags != 0 || f->type != 0 || f->status != 0 ||
        f->from != BW_PID_NONE || f->to != BW_PID_NONE || f->ref != 0 || f->seq == 0)
      return BW__WIRE_EKIND;
    return 0;
  }
  /* frames on a channel (to one node) are numbered from 1; the control
   * subject's (HELLO, HEARTBEAT, BYE, DISCONNECT) are not */
  if (is_control(f->kind) ? (f->seq != 0 || f->epoch != 0) : (f->dst != 0 && f->seq == 0))
    return BW__WIRE_EPID;
  const uint8_t *p = f->payload;
  if (is_control(f->kind) || is_name(f->kind)) {
    if (f->flags != 0 || f->type != 0 || f->status != 0 || f->ref != 0)
      return BW__WIRE_EKIND;
    if (f->len < 9 || f->len != 9u + p[8])
      return BW__WIRE_ELEN;
    if (p[8] == 0 || p[8] > BW__WIRE_NAME_MAX)
      return BW__WIRE_ENAME;
    for (unsigned i = 0; i < p[8]; i++)
      if (p[9 + i] < 0x21 || p[9 + i] > 0x7e)
        return BW__WIRE_ENAME; /* printable, no spaces: it goes into subjects and logs */
    memcpy(f->name, p + 9, p[8]);
    f->name[p[8]] = '\0';
    if (is_name(f->kind)) {
      /* a name for one of the sender's own live pids, on a channel */
      if (f->dst == 0)
        return BW__WIRE_EPID;
      if (get64(p) != f->from || pid_node(f->from) != f->src || !pid_minted(f->from))
        return BW__WIRE_EPID;
      return 0;
    }
    /* from: the sender's node actor, or nobody */
    if (f->from != BW_PID_NONE && pid_node(f->from) != f->src)
      return BW__WIRE_EPID;
    f->incarnation = get64(p);
    return 0;
  }
  /* messages and signals: to one node, from one of the sender's actors (or
   * nobody, for a message from a thread that is not an actor) */
  if (f->dst == 0 || pid_node(f->to) != f->dst || !pid_minted(f->to))
    return BW__WIRE_EPID;
  if (f->from != BW_PID_NONE && pid_node(f->from) != f->src)
    return BW__WIRE_EPID;
  if (f->kind == BW__WK_USER) {
    if ((f->flags & ~(uint32_t)(BW__WF_REQUEST | BW__WF_REPLY | BW__WF_MOVED)) != 0)
      return BW__WIRE_EKIND;
    if (f->len > ((f->flags & BW__WF_MOVED) ? BW__WIRE_MOVED_MAX : BW_MSG_INLINE_MAX))
      return BW__WIRE_ELEN;
    if (f->type >= BW_MSG_SYSTEM_BASE)
      return BW__WIRE_ETYPE;
    if ((f->flags & (BW__WF_REQUEST | BW__WF_REPLY)) != 0 && f->from == BW_PID_NONE)
      return BW__WIRE_EPID; /* a request or reply needs someone to answer */
    if (f->len == 0)
      f->payload = NULL;
    return 0;
  }
  if (!is_signal(f->kind))
    return BW__WIRE_EKIND;
  if (f->type != 0 || f->status != 0 ||
      (f->flags & ~(uint32_t)(f->kind == BW__WK_EXIT ? BW__WF_LINKEXIT : 0)) != 0)
    return BW__WIRE_EKIND;
  /* signals other than a plain exit come from an actor */
  if (f->from == BW_PID_NONE && f->kind != BW__WK_EXIT)
    return BW__WIRE_EPID;
  if (f->kind == BW__WK_EXIT || f->kind == BW__WK_DOWN) {
    if (f->len < 9 || f->len != 9u + p[8] || p[8] >= BW_REASON_TEXT_MAX)
      return BW__WIRE_ELEN;
    int32_t k = (int32_t)get32(p);
    /* kill travels as a signal only; DOWN never carries it */
    if (k < 0 || k >= BW_REASON__COUNT || (k == BW_REASON_KILL && f->kind == BW__WK_DOWN))
      return BW__WIRE_EREASON;
    f->reason.kind = k;
    f->reason.code = (int32_t)get32(p + 4);
    memcpy(f->reason.text, p + 9, p[8]);
    f->reason.text[p[8]] = '\0';
    if (memchr(f->reason.text, '\0', p[8]) != NULL)
      return BW__WIRE_EREASON;
    return 0;
  }
  if (f->len != 0)
    return BW__WIRE_ELEN;
  if ((f->kind == BW__WK_MONITOR || f->kind == BW__WK_DEMONITOR) && f->ref == 0)
    return BW__WIRE_EPID;
  return 0;
}
