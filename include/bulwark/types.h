/*
 * bulwark: the types every module shares: pids, messages, exit reasons.
 */
#ifndef BULWARK_TYPES_H
#define BULWARK_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A pid names one incarnation of an actor of one runtime. It is an opaque
 * 64-bit value: from the top, the node (8 bits, bw_pid_node), the runtime's
 * tag (8), a generation (26) and a slot (22; at most 4,194,304 live actors
 * per runtime). A pid is never 0 (BW_PID_NONE).
 *
 * When an actor exits, its pid stays dead: a send to it is a dead letter
 * with reason noproc (BW_ENOPROC), never a delivery to an actor that came
 * after it. Its slot is reused with the next generation, and freed slots
 * wait in batches before reuse (64 slots at first, growing with the
 * runtime's spawns to 65,536), so a slot's generation advances at most
 * once per batch: an old pid could name a new actor only after about
 * 2^26 * 65,536 = 2^42 (4.4e12) spawns, 17 days of nonstop spawning at
 * this runtime's 3M actors/s, and then only while its slot holds that one
 * generation of 2^26 (runtime/RUNTIME.md, "Pids").
 *
 * A pid of another runtime of the process, or of a destroyed runtime, is
 * a dead pid too (BW_ENOPROC, dead letter noproc; bw_is_alive false): its
 * tag differs. Tags (1..255) come from a process-wide counter that skips
 * those of live runtimes, so live runtimes always differ while fewer than
 * 256 are live; a destroyed runtime's tag comes back only after the counter
 * went round (254 creates, less the runtimes still live).
 */
typedef uint64_t bw_pid_t;
#define BW_PID_NONE ((bw_pid_t)0)

typedef struct bw_runtime bw_runtime_t;

/* The handle an actor callback receives; valid only during that callback. */
typedef struct bw_ctx bw_ctx_t;

/* Largest payload bw_send copies inline into the message. */
#define BW_MSG_INLINE_MAX 192u

/*
 * Message types at or above this value are reserved for the runtime.
 * User types are any value below it.
 */
#define BW_MSG_SYSTEM_BASE 0xFFFF0000u

/*
 * Message types the resilience patterns (breaker, bulkhead, retry, ...) use
 * for their own protocols: [BW_MSG_PATTERN_BASE, BW_MSG_SYSTEM_BASE), 256
 * types per pattern. They are ordinary message types to the runtime; user
 * code should stay below BW_MSG_PATTERN_BASE so as never to collide.
 */
#define BW_MSG_PATTERN_BASE 0xFFFE0000u
#define BW_MSG_BREAKER_BASE (BW_MSG_PATTERN_BASE + 0x0100u)
#define BW_MSG_BULKHEAD_BASE (BW_MSG_PATTERN_BASE + 0x0200u)
#define BW_MSG_RETRY_BASE (BW_MSG_PATTERN_BASE + 0x0300u)
#define BW_MSG_RATELIMIT_BASE (BW_MSG_PATTERN_BASE + 0x0400u)
#define BW_MSG_POLICY_BASE (BW_MSG_PATTERN_BASE + 0x0500u)
#define BW_MSG_HEALTH_BASE (BW_MSG_PATTERN_BASE + 0x0600u)
#define BW_MSG_METRICS_BASE (BW_MSG_PATTERN_BASE + 0x0700u)
#define BW_MSG_HTTP_BASE (BW_MSG_PATTERN_BASE + 0x0900u)
enum {
  /* An exit signal delivered as a message to an actor that traps exits.
   * from = the pid that sent it; data = const bw_reason_t *. */
  BW_MSG_EXIT = BW_MSG_SYSTEM_BASE + 1,
  /* A monitored actor went down. from = the monitored pid,
   * ref = the monitor reference, data = const bw_reason_t *. */
  BW_MSG_DOWN,
  /* The receive timeout set with bw_set_receive_timeout elapsed
   * without a message. No payload. */
  BW_MSG_TIMEOUT,
  /* A request made with bw_request got no reply before its deadline.
   * ref = the request's reference. No payload. */
  BW_MSG_REQUEST_TIMEOUT,
  /* A dead letter, for subscribers (bw_dead_letter_subscribe).
   * data = const bw_dead_letter_t *. */
  BW_MSG_DEAD_LETTER,
  /* The watchdog found a handler running past its limit (spawn option
   * hang_limit_ms), sent to hang_report_to. data = const bw_hang_t *. */
  BW_MSG_HUNG,
};

/* The payload of BW_MSG_HUNG. */
typedef struct bw_hang {
  bw_pid_t pid;        /* the actor whose handler is still running */
  uint64_t running_ms; /* how long it has run so far */
  uint64_t limit_ms;
} bw_hang_t;

/*
 * A message as a handler sees it. Valid only during the handler call;
 * copy what you keep.
 */
typedef struct bw_msg {
  uint32_t type;    /* user type, or a BW_MSG_* system type */
  uint32_t len;     /* payload bytes */
  bw_pid_t from;    /* sender, or BW_PID_NONE from a non-actor thread */
  uint64_t ref;     /* request/reply correlation, monitor or timer ref; 0 if none */
  const void *data; /* payload (inline copy or moved pointer); NULL if len == 0 */
  int32_t status;   /* on a reply: the replier's status (0 or a negative BW_E code) */
  uint32_t flags;   /* BW_MSGF_* */
} bw_msg_t;

enum {
  BW_MSGF_REQUEST = 1u << 0, /* sender awaits a reply: answer with bw_reply */
  BW_MSGF_REPLY = 1u << 1,   /* this is a reply to a request of ours */
  BW_MSGF_MOVED = 1u << 2,   /* payload is a moved pointer (bw_msg_take) */
};

/* Why an actor exited. */
typedef enum bw_reason_kind {
  BW_REASON_NORMAL = 0, /* the actor stopped itself (handler returned BW_STOP) */
  BW_REASON_SHUTDOWN,   /* asked to stop: supervisor or runtime shutdown */
  BW_REASON_KILLED,     /* killed by an untrappable kill signal */
  BW_REASON_CRASH,      /* a handler returned an error or called bw_fail */
  BW_REASON_NOPROC,     /* the target did not exist (monitor/link of a dead pid) */
  BW_REASON_NOCONNECTION, /* the target's node was lost */
  BW_REASON_KILL,       /* signal only: bw_exit with it kills, untrappably */
  BW_REASON__COUNT
} bw_reason_kind_t;

#define BW_REASON_TEXT_MAX 120u

/* An exit reason: kind, error code (crash), and a text (truncated to fit). */
typedef struct bw_reason {
  int32_t kind; /* bw_reason_kind_t */
  int32_t code; /* for CRASH: the negative code the handler returned or failed with */
  char text[BW_REASON_TEXT_MAX];
} bw_reason_t;

/* "normal", "shutdown", "killed", "crash", ... */
const char *bw_reason_kind_name(int kind);

/* True if the reason is abnormal (anything but normal and shutdown). */
bool bw_reason_is_abnormal(const bw_reason_t *r);

#ifdef __cplusplus
}
#endif
#endif
