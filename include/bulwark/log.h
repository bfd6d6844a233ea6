/*
 * bulwark: the runtime's logger. One per runtime: lines with a level, a
 * message and structured fields, in text for people or in JSON lines for
 * machines, written to stderr or handed to a callback of yours (a sink).
 *
 * What it logs by itself (runtime/RUNTIME.md, "Logging"): supervisors'
 * reports, as OTP's logger does: a child's crash (error), its restart
 * (notice), a supervisor giving up past its restart intensity (error), a
 * start that failed (error), a hung handler (warning); started children and
 * orderly stops at info. And the crash of an actor nobody is linked to
 * (error), which would otherwise go unseen. What it never logs: a message's
 * payload, the bytes of any message, or a credential; a crash report gives
 * the reason (kind, code, text), never the message being handled.
 *
 * The level: lines below it are dropped at the cost of one load. It comes
 * from bw_runtime_opts.log_level; left at 0 (BW_LOG_DEFAULT), from the
 * environment variable BW_LOG_LEVEL (debug, info, notice, warning, error,
 * off), read once by bw_runtime_create, else BW_LOG_NOTICE, OTP's default:
 * crash, restart and escalation reports show, started children do not. The
 * format likewise: bw_runtime_opts.log_format, else BW_LOG_FORMAT (text,
 * json), else text. A value given in the options wins over the environment.
 *
 * A text line (the time is UTC, from the wall clock, not the runtime's):
 *   2026-11-23T10:15:02.123Z error root/service/replica-0 <0.7.2>: child
 *   crashed reason=crash code=BW_ESTATE error="wrong state for this
 *   operation" detail="replica-0: random crash" restarts=3
 * (one line). The same as a JSON line:
 *   {"time":"2026-11-23T10:15:02.123Z","level":"error","msg":"child crashed",
 *    "actor":"replica-0","pid":"<0.7.2>","path":"root/service/replica-0",
 *    "reason":"crash","code":"BW_ESTATE","error":"wrong state for this
 *    operation","detail":"replica-0: random crash","restarts":3}
 * A pid reads <node.slot.generation> (bw_pid_format).
 *
 * Cost and safety: a line is formatted on the caller's stack into at most
 * BW_LOG_LINE_MAX bytes (no allocation per call; longer messages and
 * values are cut, marked "..."), written with one write(2) to stderr, so
 * lines from many threads never interleave (a line is shorter than
 * PIPE_BUF), or given to the sink. Control characters in messages and
 * values are escaped, so a line is always one line (and valid JSON). No
 * runtime lock is held while a line is written or the sink runs.
 */
#ifndef BULWARK_LOG_H
#define BULWARK_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "bulwark/actor.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Levels, least severe first. A runtime's level drops every line below it. */
typedef enum bw_log_level {
  BW_LOG_DEFAULT = 0, /* in bw_runtime_opts: BW_LOG_LEVEL, else BW_LOG_NOTICE */
  BW_LOG_DEBUG,       /* for developers: what an actor is doing */
  BW_LOG_INFO,        /* progress: children started, trees stopped in order */
  BW_LOG_NOTICE,      /* normal but significant: a child restarted */
  BW_LOG_WARNING,     /* something is wrong and was handled: a hung handler */
  BW_LOG_ERROR,       /* a crash, a failed start, a supervisor giving up */
  BW_LOG_OFF,         /* as a level to set: nothing at all (benchmarks) */
} bw_log_level_t;

typedef enum bw_log_format {
  BW_LOG_FORMAT_DEFAULT = 0, /* in bw_runtime_opts: BW_LOG_FORMAT, else text */
  BW_LOG_TEXT,               /* for people: time level who: message key=value ... */
  BW_LOG_JSON,               /* JSON lines: one object per line */
} bw_log_format_t;

/* A line's bytes at most, its newline included (less than PIPE_BUF, so one
 * write(2) of it to a pipe is atomic). */
#define BW_LOG_LINE_MAX 2048u
/* Bytes of a formatted message at most; the rest is cut ("..."). */
#define BW_LOG_MSG_MAX 512u
/* Fields a line carries at most; later ones are dropped. */
#define BW_LOG_FIELDS_MAX 16u

/*
 * A structured field: a key and a string value, or a number when str is
 * NULL. Keys should be short words ("port", "peer"): in text they are
 * written as they are (spaces, '=' and controls become '_'), in JSON as
 * escaped strings; the standard keys (time, level, msg, actor, pid, path)
 * are the logger's. The array and its strings need to live only for the
 * call. Never put a payload or a credential in a field.
 */
typedef struct bw_log_field {
  const char *key;
  const char *str; /* the value; NULL: the value is num */
  long long num;
} bw_log_field_t;

#define BW_LOG_STR(k, v) ((bw_log_field_t){.key = (k), .str = (v)})
#define BW_LOG_NUM(k, v) ((bw_log_field_t){.key = (k), .str = NULL, .num = (long long)(v)})

/*
 * What a sink receives: the line's parts and the line itself, already
 * formatted in the runtime's format (with its '\n'). Every pointer is valid
 * only during the call (copy what you keep); strings are never NULL.
 */
typedef struct bw_log_record {
  int level;                    /* bw_log_level_t */
  unsigned long long time_ns;   /* wall clock (CLOCK_REALTIME), ns since 1970 */
  bw_pid_t pid;                 /* the actor the line is about; BW_PID_NONE if none */
  const char *actor;            /* its name (behaviour name, or child id); "" if none */
  const char *path;             /* its place in a tree ("root/service/w"); "" if not known */
  const char *msg;              /* the formatted message */
  const bw_log_field_t *fields; /* the structured fields */
  size_t nfields;
  const char *line;             /* the whole line, as stderr would get it */
  size_t len;                   /* its bytes, the '\n' included */
} bw_log_record_t;

typedef void (*bw_log_sink_fn)(const bw_log_record_t *rec, void *arg);

/*
 * Writes a line if level is at or above the runtime's level. From an
 * actor's callback the line names that actor (its behaviour's name and its
 * pid); from any other thread, nobody. fields may be NULL when nfields is
 * 0. Returns 1 when the line was written (or given to the sink), 0 when the
 * level dropped it, BW_EINVAL (NULL rt or fmt, level not DEBUG..ERROR).
 * Also after bw_runtime_stop, until bw_runtime_destroy.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int bw_log_write(bw_runtime_t *rt, int level, const bw_log_field_t *fields, size_t nfields,
                 const char *fmt, ...);
int bw_log_writev(bw_runtime_t *rt, int level, const bw_log_field_t *fields, size_t nfields,
                  const char *fmt, va_list ap);

/* The runtime of a runtime or of an actor's context: bw_log's first
 * argument may be either. */
static inline bw_runtime_t *bw_log_rt_(bw_runtime_t *rt) { return rt; }
#ifndef __cplusplus
#define BW_LOG_RT(where)                                                                       \
  _Generic((where), bw_runtime_t *: bw_log_rt_, bw_ctx_t *: bw_ctx_runtime,                    \
           const bw_ctx_t *: bw_ctx_runtime)(where)
#else
}
static inline bw_runtime_t *bw_log_rt_(const bw_ctx_t *ctx) { return bw_ctx_runtime(ctx); }
#define BW_LOG_RT(where) bw_log_rt_(where)
extern "C" {
#endif

/*
 * The usual forms, from an actor (ctx) or any thread (rt):
 *   bw_log(ctx, BW_LOG_INFO, "connected to %s", host);
 *   bw_log_kv(rt, BW_LOG_WARNING, ((bw_log_field_t[]){BW_LOG_STR("peer", host),
 *             BW_LOG_NUM("port", port)}), 2, "peer slow");
 * They return what bw_log_write returns.
 */
#define bw_log(where, level, ...) bw_log_write(BW_LOG_RT(where), (level), NULL, 0, __VA_ARGS__)
#define bw_log_kv(where, level, fields, nfields, ...)                                          \
  bw_log_write(BW_LOG_RT(where), (level), (fields), (nfields), __VA_ARGS__)

/* Whether a line at level would be written: lets a caller skip building
 * costly fields. False for a NULL rt. */
bool bw_log_enabled(const bw_runtime_t *rt, int level);

/* Changes the level (BW_LOG_DEBUG..BW_LOG_OFF) or the format
 * (BW_LOG_TEXT, BW_LOG_JSON) at run time; lines being written meanwhile
 * may still use the old one. Return 0 or BW_EINVAL. */
int bw_log_set_level(bw_runtime_t *rt, int level);
int bw_log_set_format(bw_runtime_t *rt, int format);
/* The level in force (BW_LOG_DEBUG..BW_LOG_OFF), or BW_EINVAL for NULL. */
int bw_log_get_level(const bw_runtime_t *rt);

/*
 * Sends every line to fn(record, arg) instead of stderr; fn NULL goes back
 * to stderr. fn runs on the thread that logs (a worker, a dedicated
 * thread, a thread of yours), possibly on several at once, outside any
 * runtime lock; it may call the API (bw_send, ...), and a line it logs
 * itself goes to stderr, not back to it. It must return (no longjmp out of
 * it): the setter waits for it. When this returns, the previous
 * sink is not running and will not be called again: its arg may be freed.
 * Returns 0, BW_EINVAL (NULL rt), BW_EWOULDBLOCK (called from inside a sink,
 * which would wait for itself).
 */
int bw_log_set_sink(bw_runtime_t *rt, bw_log_sink_fn fn, void *arg);

/* "debug", "info", "notice", "warning", "error", "off"; "unknown". */
const char *bw_log_level_name(int level);
/* The level a name means, as BW_LOG_LEVEL takes it (case-insensitive;
 * also "warn", "err", "none"), or BW_EINVAL. */
int bw_log_level_parse(const char *name);
/* "text" or "json" (case-insensitive): BW_LOG_TEXT, BW_LOG_JSON; BW_EINVAL. */
int bw_log_format_parse(const char *name);

/* Writes pid as the logger does, "<node.slot.generation>" ("<none>" for
 * BW_PID_NONE), NUL-terminated and cut to fit cap, as snprintf. Returns
 * the length it needs, without the NUL (at most 22). */
int bw_pid_format(bw_pid_t pid, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
