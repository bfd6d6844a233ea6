/*
 * bulwark: dead letters: every message that could not be delivered or was
 * never handled is counted by reason (bw_runtime_stats) and can be observed.
 */
#ifndef BULWARK_DEAD_LETTER_H
#define BULWARK_DEAD_LETTER_H

#include "bulwark/message.h"
#include "bulwark/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The payload of a BW_MSG_DEAD_LETTER message. */
typedef struct bw_dead_letter {
  int32_t reason;   /* bw_dead_reason_t */
  uint32_t type;    /* the original message's type */
  bw_pid_t to;      /* its intended receiver */
  bw_pid_t from;    /* its sender */
  uint32_t len;     /* its payload length */
  uint32_t flags;   /* its BW_MSGF_* flags */
  /* 1: one of the library's own messages (bw_msg_type_is_internal(type):
   * a pattern's internal type or a runtime one), not one of yours nor a
   * pattern's public protocol; 0 otherwise. */
  uint32_t internal;
  uint32_t _pad;
} bw_dead_letter_t;

/* Each dead letter from now on is also sent to pid as a BW_MSG_DEAD_LETTER
 * (not for dead letters of those notifications themselves), the library's
 * internal ones included, marked (internal = 1; the ranges are in
 * bulwark/message.h). BW_EV_DEAD_LETTER events carry the type in b: test it
 * with bw_msg_type_is_internal. At most 16
 * subscribers; a subscriber found dead when a dead letter is offered to it
 * is dropped (as by the event bus, the health monitor and the metrics
 * reporter). Subscribing again is not an error. Returns 0, BW_EINVAL,
 * BW_ENOPROC, BW_ELIMIT, BW_ESHUTDOWN. */
int bw_dead_letter_subscribe(bw_runtime_t *rt, bw_pid_t pid);

/* Returns 0, BW_EINVAL, BW_ENOTFOUND. */
int bw_dead_letter_unsubscribe(bw_runtime_t *rt, bw_pid_t pid);

#ifdef __cplusplus
}
#endif
#endif
