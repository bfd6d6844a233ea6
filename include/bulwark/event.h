/*
 * bulwark: telemetry events. One bus per runtime: components publish typed
 * events; subscribers are actors, which get each event they asked for as a
 * BW_MSG_EVENT message. Publishing never blocks and never allocates in
 * steady state (an event is one pooled message per subscriber); with no
 * subscriber for a type it costs one load.
 */
#ifndef BULWARK_EVENT_H
#define BULWARK_EVENT_H

#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The message type events arrive with; data = const bw_event_t *. */
#define BW_MSG_EVENT (BW_MSG_SYSTEM_BASE + 16u)

typedef enum bw_event_type {
  BW_EV_CHILD_STARTED = 1, /* a supervisor started a child (subject, id; a = start count) */
  BW_EV_CHILD_EXITED,      /* a child exited (reason) */
  BW_EV_CHILD_RESTARTED,   /* a child was restarted (a = its restart count, b = delay ms) */
  BW_EV_SUP_ESCALATED,     /* a supervisor exceeded its restart intensity and exits */
  BW_EV_SUP_SHUTDOWN,      /* a supervisor stopped its tree (reason) */
  BW_EV_CHILD_START_FAILED, /* a child's start failed (reason) */
  BW_EV_WATCHDOG_HUNG,     /* a handler ran past its limit (subject; a = running ns) */
  BW_EV_DEAD_LETTER,       /* a dead letter (a = bw_dead_reason_t, b = message type) */
  BW_EV_BREAKER_STATE,     /* a circuit breaker changed state (a = from, b = to) */
  BW_EV_CALL_REJECTED,     /* a breaker rejected a call */
  BW_EV_BULKHEAD_REJECTED, /* a bulkhead rejected work */
  BW_EV_BULKHEAD_TIMEOUT,  /* work waited too long in a bulkhead's queue */
  BW_EV_HEALTH_CHANGED,    /* the health monitor's status changed (a = from, b = to) */
  BW_EV_NODE_UP,           /* a node joined or came back (a = node id; subject_id = its name) */
  BW_EV_NODE_DOWN,         /* a node was lost or left (a = node id, b = 1 if it said goodbye) */
  BW_EV__COUNT
} bw_event_type_t;

#define BW_EV_MASK(t) (1ull << (t))
#define BW_EV_ALL (~0ull)

typedef struct bw_event {
  uint32_t type;       /* bw_event_type_t */
  int32_t reason_kind; /* bw_reason_kind_t, when the event has a reason */
  uint64_t time_ns;    /* the runtime's clock */
  bw_pid_t source;     /* the publisher (e.g. the supervisor) */
  bw_pid_t subject;    /* the actor it is about (e.g. the child) */
  int64_t a, b;        /* numbers, per type (see above) */
  int32_t reason_code;
  uint32_t _pad;
  char source_name[32]; /* e.g. the supervisor's name */
  char subject_id[32];  /* e.g. the child's id */
  char text[48];        /* the reason's text, truncated */
} bw_event_t;

/* "child_started", ... */
const char *bw_event_type_name(int type);

/* Delivers matching events (mask of BW_EV_MASK bits; BW_EV_ALL) to pid.
 * Subscribing again replaces the mask. At most 32 subscribers; a subscriber
 * that exits is dropped. Returns 0, BW_EINVAL, BW_ENOPROC, BW_ELIMIT,
 * BW_ESHUTDOWN. */
int bw_event_subscribe(bw_runtime_t *rt, bw_pid_t pid, uint64_t mask);
int bw_event_unsubscribe(bw_runtime_t *rt, bw_pid_t pid); /* 0, BW_EINVAL, BW_ENOTFOUND */

/* True if anyone listens to this type (lets publishers skip building it). */
bool bw_event_wanted(const bw_runtime_t *rt, int type);

/* Publishes: time_ns is set if 0, source if BW_PID_NONE (the calling
 * actor). Returns the number of subscribers it was sent to, or BW_EINVAL. */
int bw_event_publish(bw_runtime_t *rt, bw_event_t *ev);

/* Fills an event's strings safely (any may be NULL). */
void bw_event_set_names(bw_event_t *ev, const char *source_name, const char *subject_id,
                        const char *text);

#ifdef __cplusplus
}
#endif
#endif
