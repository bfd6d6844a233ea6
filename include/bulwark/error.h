/*
 * bulwark: error codes.
 *
 * Every public function returns 0 on success or one of these negative codes.
 * A function that fails never calls the callback it was given, and never
 * takes ownership of what it was given unless its documentation says so.
 */
#ifndef BULWARK_ERROR_H
#define BULWARK_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define BW_ERRNO_MAP(X)                                                        \
  X(EINVAL, -1, "invalid argument")                                            \
  X(ENOMEM, -2, "out of memory")                                               \
  X(ENOPROC, -3, "no such actor (dead or stale pid)")                          \
  X(EFULL, -4, "mailbox full")                                                 \
  X(ETOOBIG, -5, "payload too large for an inline message")                   \
  X(ESHUTDOWN, -6, "runtime is stopped or stopping")                          \
  X(ETIMEDOUT, -7, "timed out")                                                \
  X(EEXIST, -8, "name already registered")                                     \
  X(ENOTFOUND, -9, "not found")                                                \
  X(ENOTACTOR, -10, "must be called from inside an actor callback")           \
  X(EWOULDBLOCK, -11, "call would block a scheduler thread")                  \
  X(ECRASH, -12, "actor crashed")                                              \
  X(ESTATE, -13, "operation not valid in the current state")                  \
  X(ETHREAD, -14, "could not create a thread")                                 \
  X(ECANCELED, -15, "cancelled")                                               \
  X(ELIMIT, -16, "a configured limit was reached")                            \
  X(ECIRCUIT_OPEN, -17, "circuit breaker is open")                            \
  X(EBULKHEAD_FULL, -18, "bulkhead pool and queue are full")                  \
  X(ERATE_LIMITED, -19, "rate limit exceeded")                                \
  X(EALREADY, -20, "already started or present")                              \
  X(ERUNNING, -21, "still running")                                           \
  X(ERESTARTING, -22, "child is restarting")                                   \
  X(ENOTSUP, -23, "not supported (by this build, strategy or configuration)")  \
  X(EBUDGET, -24, "retry budget exhausted")                                   \
  X(ENOCONN, -25, "the pid's node is not connected (message dead-lettered)")  \
  X(EREMOTE, -26, "a pointer payload cannot cross nodes without a serializer") \
  X(EBADF, -27, "bad or closed file descriptor")                               \
  X(ECONNREFUSED, -28, "connection refused")                                   \
  X(ECONNRESET, -29, "connection reset by peer")                               \
  X(EADDRINUSE, -30, "address already in use")                                 \
  X(EIO, -31, "input/output error")                                            \
  X(EHTTP_SERVER, -32, "the HTTP server answered with an error (5xx)")         \
  X(EHTTP_THROTTLED, -33, "the HTTP server asked to slow down (429, or 503 with Retry-After)") \
  X(EDNS, -34, "the host name could not be resolved")                          \
  X(ETLS, -35, "TLS handshake or certificate verification failed")             \
  X(EPROTO, -36, "the peer broke the protocol (malformed or oversized response)") \
  X(ENOREPLY, -37, "the actor exited without answering a request it had deferred") \
  X(EREPLIED, -38, "the request was already answered (a reply token answers once)")

typedef enum bw_errno {
  BW_OK = 0,
#define BW__ERR_ENUM(name, value, msg) BW_##name = value,
  BW_ERRNO_MAP(BW__ERR_ENUM)
#undef BW__ERR_ENUM
  BW__ERR_LAST = -39
} bw_errno_t;

/* A static, human-readable message for a code; never NULL. A code
 * registered with bw_error_register gives its text; other unknown codes
 * give "unknown error". */
const char *bw_strerror(int err);

/* The symbolic name of a code ("BW_EFULL"); never NULL. A registered code
 * gives its name as registered ("APP_EQUOTA"); other unknown codes give
 * "BW_UNKNOWN". */
const char *bw_err_name(int err);

/*
 * Application error codes. bulwark keeps -1 .. -999 for its own codes
 * (the list above, and what it adds later); an application's codes are
 * BW_ERR_USER_FIRST (-1000) and below. Registered, a code gets a name and
 * a text that bw_err_name and bw_strerror return, and so every report
 * made with them: a crash's reason text ("handler returned APP_EQUOTA"
 * when a handler returns the code), a supervisor's start error, the
 * observer's JSON, the logger's crash reports (bulwark/log.h).
 */
#define BW_ERR_USER_FIRST (-1000)
#define BW_ERR_NAME_MAX 63u  /* bytes of a registered name, at most */
#define BW_ERR_TEXT_MAX 127u /* bytes of a registered text, at most */
#define BW_ERR_USER_CAP 256u /* registered codes per process, at most */

/*
 * Registers code (<= BW_ERR_USER_FIRST) with a name (1..BW_ERR_NAME_MAX
 * bytes, e.g. "APP_EQUOTA") and a text (1..BW_ERR_TEXT_MAX bytes, e.g.
 * "quota exceeded"), both copied, for the life of the process (there is
 * no unregister: a string bw_strerror returned stays valid). Thread-safe,
 * from any thread, at any time, with or without a runtime; lookups take no
 * lock. Registering a code again with the same name and text is 0 (a
 * library's init may run twice).
 * Returns 0; BW_EINVAL (code above BW_ERR_USER_FIRST: 0, a positive value
 * or one of bulwark's range; NULL, empty or too long name or text);
 * BW_EEXIST (code registered with another name or text); BW_ELIMIT
 * (BW_ERR_USER_CAP codes registered already).
 */
int bw_error_register(int code, const char *name, const char *text);

#ifdef __cplusplus
}
#endif
#endif
