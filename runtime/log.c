/*
 * bulwark: the logger (bulwark/log.h).
 *
 * A call that passes the level check formats its message, then the whole
 * line (text or JSON, with the JSON writer of jsonw.h), into buffers on
 * its own stack: no allocation, no lock, and a line of at most
 * BW_LOG_LINE_MAX bytes whatever it is given (messages and values are cut
 * to fit, marked "..."). The line then goes to stderr in one write(2), so
 * concurrent lines never interleave, or to the sink.
 *
 * The sink. A reader (a logging thread) must never call a sink whose
 * argument bw_log_set_sink has already given back, and must take no lock.
 * So there are two sink slots, `cur` says which is in force, and each slot
 * counts the calls using it (`inflight`). A reader counts itself in slot
 * i = cur, then checks that cur is still i (else it uncounts itself and
 * tries again) and calls sinks[i]. The setter writes the slot not in
 * force, switches cur to it, then waits until the old slot's count is 0:
 * readers that counted themselves before the switch finish, later ones see
 * the switch and move. The count-then-check and switch-then-wait pairs are
 * a Dekker pattern: seq_cst fences on both sides, so at least one side
 * sees the other. New readers go to the new slot, so the wait ends even
 * while lines keep coming. Rejected: a lock around the call (the sink
 * would run under it, and one slow sink would serialize every logging
 * thread); a pointer to a heap pair swapped atomically (its memory could
 * be freed only at destroy).
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/jsonw.h"
#include "runtime/log.h"

/* --- names ------------------------------------------------------------------ */

static const char *const level_names[] = {"default", "debug", "info", "notice",
                                          "warning", "error",  "off"};

const char *bw_log_level_name(int level) {
  return (level > BW_LOG_DEFAULT && level <= BW_LOG_OFF) ? level_names[level] : "unknown";
}

int bw_log_level_parse(const char *name) {
  static const struct {
    const char *name;
    int level;
  } aliases[] = {{"warn", BW_LOG_WARNING}, {"err", BW_LOG_ERROR}, {"none", BW_LOG_OFF}};
  if (name == NULL)
    return BW_EINVAL;
  for (int l = BW_LOG_DEBUG; l <= BW_LOG_OFF; l++)
    if (strcasecmp(name, level_names[l]) == 0)
      return l;
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcasecmp(name, aliases[i].name) == 0)
      return aliases[i].level;
  return BW_EINVAL;
}

int bw_log_format_parse(const char *name) {
  if (name != NULL && strcasecmp(name, "text") == 0)
    return BW_LOG_TEXT;
  if (name != NULL && strcasecmp(name, "json") == 0)
    return BW_LOG_JSON;
  return BW_EINVAL;
}

int bw_pid_format(bw_pid_t pid, char *buf, size_t cap) {
  char tmp[32];
  int n = pid == BW_PID_NONE ? snprintf(tmp, sizeof tmp, "<none>")
                             : snprintf(tmp, sizeof tmp, "<%u.%u.%u>", BW__PID_NODE(pid),
                                        BW__PID_SLOT(pid), BW__PID_GEN(pid));
  if (buf != NULL && cap > 0)
    snprintf(buf, cap, "%s", tmp);
  return n;
}

/* --- the runtime's logger: level, format, environment -------------------------- */

enum { ENV_BAD_LEVEL = 1, ENV_BAD_FORMAT = 2 };

/* What an environment variable says (its parse) or, unset, dflt; *bad
 * gets bit when it is set but not understood. */
static int from_env(const char *var, int (*parse)(const char *), int dflt, uint32_t *bad,
                    uint32_t bit) {
  const char *v = getenv(var);
  if (v == NULL || v[0] == '\0')
    return dflt;
  int x = parse(v);
  if (x >= 0)
    return x;
  *bad |= bit;
  return dflt;
}

bool bw__log_opts_valid(const bw_runtime_opts_t *o) {
  return o->log_level >= BW_LOG_DEFAULT && o->log_level <= BW_LOG_OFF &&
         o->log_format >= BW_LOG_FORMAT_DEFAULT && o->log_format <= BW_LOG_JSON;
}

void bw__log_init(bw__runtime *rt, const bw_runtime_opts_t *o) {
  bw__log *lg = &rt->log;
  memset(lg, 0, sizeof(*lg));
  lg->level = o->log_level != BW_LOG_DEFAULT
                  ? (uint32_t)o->log_level
                  : (uint32_t)from_env("BW_LOG_LEVEL", bw_log_level_parse, BW_LOG_NOTICE,
                                       &lg->env_bad, ENV_BAD_LEVEL);
  lg->format = o->log_format != BW_LOG_FORMAT_DEFAULT
                   ? (uint32_t)o->log_format
                   : (uint32_t)from_env("BW_LOG_FORMAT", bw_log_format_parse, BW_LOG_TEXT,
                                        &lg->env_bad, ENV_BAD_FORMAT);
  pthread_mutex_init(&lg->set_mx, NULL);
}

/* The value is not repeated: it is not ours to print. */
void bw__log_env_check(bw__runtime *rt) {
  if (rt->log.env_bad & ENV_BAD_LEVEL)
    bw_log_write(rt, BW_LOG_WARNING, NULL, 0,
                 "BW_LOG_LEVEL not understood (debug, info, notice, warning, error, off); "
                 "using %s",
                 bw_log_level_name((int)rt->log.level));
  if (rt->log.env_bad & ENV_BAD_FORMAT)
    bw_log_write(rt, BW_LOG_WARNING, NULL, 0, "BW_LOG_FORMAT not understood (text, json); using %s",
                 rt->log.format == BW_LOG_JSON ? "json" : "text");
}

void bw__log_destroy(bw__runtime *rt) { pthread_mutex_destroy(&rt->log.set_mx); }

bool bw_log_enabled(const bw_runtime_t *rt, int level) {
  /* relaxed: the level is a setting on its own; a change reaches other
   * threads soon, which is all bw_log_set_level promises */
  return rt != NULL && level >= BW_LOG_DEBUG && level <= BW_LOG_ERROR &&
         (uint32_t)level >= bw__ld32_rlx(&rt->log.level);
}

int bw_log_set_level(bw_runtime_t *rt, int level) {
  if (rt == NULL || level < BW_LOG_DEBUG || level > BW_LOG_OFF)
    return BW_EINVAL;
  bw__st32_rlx(&rt->log.level, (uint32_t)level); /* relaxed: see bw_log_enabled */
  return 0;
}

int bw_log_get_level(const bw_runtime_t *rt) {
  return rt == NULL ? BW_EINVAL : (int)bw__ld32_rlx(&rt->log.level); /* relaxed: as above */
}

int bw_log_set_format(bw_runtime_t *rt, int format) {
  if (rt == NULL || (format != BW_LOG_TEXT && format != BW_LOG_JSON))
    return BW_EINVAL;
  bw__st32_rlx(&rt->log.format, (uint32_t)format); /* relaxed: a setting on its own */
  return 0;
}

/* --- text lines ------------------------------------------------------------------ */

/* A control character as an escape (\n, \r, \t, \xNN), so a line stays
 * one line whatever a message or a value holds. */
static void text_ctl(bw__jw_t *w, unsigned char c) {
  if (c == '\n' || c == '\r' || c == '\t') {
    char e[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : 't'};
    bw__jw_raw(w, e, 2);
  } else {
    bw__jw_fmt(w, "\\x%02x", c);
  }
}

static bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7F; }

/* A message or a name: as it is, controls escaped. */
static void text_bare(bw__jw_t *w, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    if (is_ctl(*p))
      text_ctl(w, *p);
    else
      bw__jw_raw(w, (const char *)p, 1);
  }
}

/* A key: one word (spaces, '=', quotes and controls become '_'). */
static void text_key(bw__jw_t *w, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    bool odd = is_ctl(*p) || *p == ' ' || *p == '=' || *p == '"';
    bw__jw_raw(w, odd ? "_" : (const char *)p, 1);
  }
}

/* A value: bare if it is one word, else quoted with \" \\ and controls
 * escaped (logfmt's habit). */
static void text_value(bw__jw_t *w, const char *s) {
  bool quote = s[0] == '\0';
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && !quote; p++)
    quote = is_ctl(*p) || *p == ' ' || *p == '=' || *p == '"' || *p == '\\';
  if (!quote) {
    bw__jw_lit(w, s);
    return;
  }
  bw__jw_raw(w, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      bw__jw_raw(w, e, 2);
    } else if (is_ctl(*p)) {
      text_ctl(w, *p);
    } else {
      bw__jw_raw(w, (const char *)p, 1);
    }
  }
  bw__jw_raw(w, "\"", 1);
}

/* Where a cut may go: not inside a UTF-8 sequence. */
static size_t utf8_floor(const char *s, size_t n) {
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  return n;
}

/* time level who: message key=value ...; cut with "..." to fit. */
static void text_line(bw__jw_t *w, const bw_log_record_t *r, const char *when, const char *pid) {
  bw__jw_lit(w, when);
  bw__jw_raw(w, " ", 1);
  bw__jw_lit(w, bw_log_level_name(r->level));
  const char *who = r->path[0] != '\0' ? r->path : r->actor;
  if (who[0] != '\0') {
    bw__jw_raw(w, " ", 1);
    text_bare(w, who);
  }
  if (r->pid != BW_PID_NONE) {
    bw__jw_raw(w, " ", 1);
    bw__jw_lit(w, pid);
  }
  bw__jw_raw(w, ": ", 2);
  text_bare(w, r->msg);
  for (size_t i = 0; i < r->nfields; i++) {
    bw__jw_raw(w, " ", 1);
    text_key(w, r->fields[i].key);
    bw__jw_raw(w, "=", 1);
    if (r->fields[i].str != NULL)
      text_value(w, r->fields[i].str);
    else
      bw__jw_fmt(w, "%lld", r->fields[i].num);
  }
  if (w->len > w->cap) { /* too long: keep what fits, say so */
    size_t keep = utf8_floor(w->b, w->cap - 3);
    memcpy(w->b + keep, "...", 3);
    w->len = keep + 3;
  }
}

/* --- JSON lines ------------------------------------------------------------------ */

/* Room kept free at every step for what may still have to close the line. */
#define JSON_TAIL ",\"truncated\":true}"
#define JSON_RESERVE (sizeof(JSON_TAIL) - 1)

static size_t json_limit(const bw__jw_t *w) {
  return w->cap > JSON_RESERVE ? w->cap - JSON_RESERVE : 0;
}

/* Bytes s takes as a JSON string (bw__jw_str into nothing: it counts). */
static size_t json_len(const char *s) {
  bw__jw_t probe = {.b = NULL, .cap = 0, .len = 0};
  bw__jw_str(&probe, s);
  return probe.len;
}

/* s as a JSON string, whole if it fits below the limit, else its longest
 * prefix that fits with "..." after it (cut between characters; found by
 * bisection, as escaping makes a prefix's size more than its length).
 * False if not even that fits (w unchanged). */
static bool json_str_fit(bw__jw_t *w, const char *s) {
  size_t limit = json_limit(w);
  if (w->len + json_len(s) <= limit) {
    bw__jw_str(w, s);
    return true;
  }
  char cut[BW_LOG_LINE_MAX];
  size_t n = strnlen(s, sizeof cut - 4), lo = 0, hi = n;
  while (lo < hi) { /* the largest k whose cut fits */
    size_t k = (lo + hi + 1) / 2;
    memcpy(cut, s, k);
    memcpy(cut + k, "...", 4);
    if (w->len + json_len(cut) <= limit)
      lo = k;
    else
      hi = k - 1;
  }
  lo = utf8_floor(s, lo);
  memcpy(cut, s, lo);
  memcpy(cut + lo, "...", 4);
  if (w->len + json_len(cut) > limit)
    return false;
  bw__jw_str(w, cut);
  return true;
}

/* ,"key":value; false (w unchanged) if it does not fit. */
static bool json_member(bw__jw_t *w, const char *key, const char *str, long long num) {
  size_t mark = w->len;
  bw__jw_raw(w, ",", 1);
  bw__jw_str(w, key);
  bw__jw_raw(w, ":", 1);
  bool ok = w->len <= json_limit(w);
  if (ok && str != NULL)
    ok = json_str_fit(w, str);
  else if (ok)
    bw__jw_fmt(w, "%lld", num);
  if (!ok || w->len > json_limit(w)) {
    w->len = mark;
    return false;
  }
  return true;
}

static void json_line(bw__jw_t *w, const bw_log_record_t *r, const char *when, const char *pid) {
  bw__jw_lit(w, "{\"time\":");
  bw__jw_str(w, when);
  bw__jw_lit(w, ",\"level\":");
  bw__jw_str(w, bw_log_level_name(r->level));
  bool whole = json_member(w, "msg", r->msg, 0);
  if (whole && r->actor[0] != '\0')
    whole = json_member(w, "actor", r->actor, 0);
  if (whole && r->pid != BW_PID_NONE)
    whole = json_member(w, "pid", pid, 0);
  if (whole && r->path[0] != '\0')
    whole = json_member(w, "path", r->path, 0);
  for (size_t i = 0; whole && i < r->nfields; i++)
    whole = json_member(w, r->fields[i].key, r->fields[i].str, r->fields[i].num);
  bw__jw_lit(w, whole ? "}" : JSON_TAIL);
}

/* --- writing a line ---------------------------------------------------------------- */

/* Set while this thread runs a sink: a line it logs goes to stderr, and
 * bw_log_set_sink would wait for itself. */
static __thread unsigned in_sink;

/* One write(2): lines from several threads never interleave. */
static void write_stderr(const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, line, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* nowhere to say it */
    line += n;
    len -= (size_t)n;
  }
}

/* Counts the caller in the slot in force and returns it. */
static uint32_t slot_enter(bw__log *lg) {
  for (;;) {
    uint32_t i = bw__ld32_rlx(&lg->cur) & 1u; /* relaxed: only a guess, checked below */
    bw__faa32(&lg->inflight[i], 1);           /* seq_cst RMW: see the fence */
    /* seq_cst fence: the count above is visible before cur is read again,
     * against bw_log_set_sink's switch-then-wait (a Dekker pair); the
     * acquire load pairs with the switch's release, so the slot's fn and
     * arg, written before it, are seen */
    bw__fence_seq_cst();
    if (bw__ld32_acq(&lg->cur) == i)
      return i;
    /* switched meanwhile: uncount (it read nothing of slot i) and take the
     * other; seq_cst RMW like every change of the count */
    bw__faa32(&lg->inflight[i], (uint32_t)-1);
  }
}

static void deliver(bw__runtime *rt, const bw_log_record_t *rec) {
  bw__log *lg = &rt->log;
  if (in_sink != 0) {
    write_stderr(rec->line, rec->len);
    return;
  }
  uint32_t i = slot_enter(lg);
  bw__log_sink s = lg->sinks[i];
  if (s.fn == NULL) {
    write_stderr(rec->line, rec->len);
  } else {
    in_sink++;
    s.fn(rec, s.arg);
    in_sink--;
  }
  /* seq_cst RMW (release): the call is over before the setter sees 0 */
  bw__faa32(&lg->inflight[i], (uint32_t)-1);
}

static void wait_unused(uint32_t *count) {
  /* acquire: the calls counted there have returned before we go on */
  while (bw__ld32_acq(count) != 0)
    sched_yield();
}

int bw_log_set_sink(bw_runtime_t *rt, bw_log_sink_fn fn, void *arg) {
  if (rt == NULL)
    return BW_EINVAL;
  if (in_sink != 0)
    return BW_EWOULDBLOCK;
  bw__log *lg = &rt->log;
  pthread_mutex_lock(&lg->set_mx);
  /* relaxed: only setters change cur, and set_mx orders them */
  uint32_t old = bw__ld32_rlx(&lg->cur) & 1u, next = old ^ 1u;
  /* no reader uses slot next: the last switch away from it waited for its
   * readers, and any that count themselves there now see cur = old and
   * leave without reading it */
  lg->sinks[next].fn = fn;
  lg->sinks[next].arg = arg;
  /* release (seq_cst RMW): the pair is written before a reader that sees
   * next reads it; the fence pairs with deliver's (count, then re-read) */
  bw__xchg32(&lg->cur, next);
  bw__fence_seq_cst();
  wait_unused(&lg->inflight[old]);
  pthread_mutex_unlock(&lg->set_mx);
  return 0;
}

/* --- a line ---------------------------------------------------------------------- */

static uint64_t wall_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ISO 8601 UTC with milliseconds; gmtime_r, as localtime_r may read the
 * time zone files (and allocate) */
#define TIME_MAX 96 /* room for any int gmtime_r gives, as GCC counts */
static void format_time(uint64_t ns, char b[TIME_MAX]) {
  time_t s = (time_t)(ns / 1000000000ull);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(b, TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ns / 1000000ull % 1000u));
}

/* vsnprintf into a BW_LOG_MSG_MAX buffer, cut with "..." when longer */
static void format_msg(char *msg, const char *fmt, va_list ap) {
  int n = vsnprintf(msg, BW_LOG_MSG_MAX, fmt, ap);
  if (n < 0)
    snprintf(msg, BW_LOG_MSG_MAX, "(message not formatted)");
  else if ((size_t)n >= BW_LOG_MSG_MAX)
    memcpy(msg + utf8_floor(msg, BW_LOG_MSG_MAX - 4), "...", 4);
}

/* The fields a line carries: NULL keys skipped, at most BW_LOG_FIELDS_MAX. */
static size_t keep_fields(const bw_log_field_t *in, size_t n, bw_log_field_t *out) {
  size_t k = 0;
  for (size_t i = 0; in != NULL && i < n && k < BW_LOG_FIELDS_MAX; i++)
    if (in[i].key != NULL)
      out[k++] = in[i];
  return k;
}

static int emit(bw__runtime *rt, int level, const bw__log_who *who, const bw_log_field_t *fields,
                size_t nfields, const char *fmt, va_list ap) {
  char msg[BW_LOG_MSG_MAX], line[BW_LOG_LINE_MAX], when[TIME_MAX], pid[32];
  bw_log_field_t f[BW_LOG_FIELDS_MAX];
  format_msg(msg, fmt, ap);
  bw_log_record_t rec = {
      .level = level,
      .time_ns = wall_now_ns(),
      .pid = who->pid,
      .actor = who->name != NULL ? who->name : "",
      .path = who->path != NULL ? who->path : "",
      .msg = msg,
      .fields = f,
      .nfields = keep_fields(fields, nfields, f),
  };
  format_time(rec.time_ns, when);
  bw_pid_format(rec.pid, pid, sizeof pid);
  bw__jw_t w = {.b = line, .cap = sizeof line - 1, .len = 0}; /* room for the '\n' */
  if (bw__ld32_rlx(&rt->log.format) == BW_LOG_JSON) /* relaxed: a setting on its own */
    json_line(&w, &rec, when, pid);
  else
    text_line(&w, &rec, when, pid);
  line[w.len] = '\n';
  rec.line = line;
  rec.len = w.len + 1;
  deliver(rt, &rec);
  return 1;
}

/* The calling actor, if it is one of rt's. */
static bw__log_who caller(const bw__runtime *rt) {
  const bw__actor *a = bw__tl.cur;
  bw__log_who who = {.pid = BW_PID_NONE, .name = "", .path = ""};
  if (a != NULL && a->rt == rt) {
    who.pid = a->pid;
    who.name = a->beh != NULL && a->beh->name != NULL ? a->beh->name : "";
  }
  return who;
}

int bw_log_writev(bw_runtime_t *rt, int level, const bw_log_field_t *fields, size_t nfields,
                  const char *fmt, va_list ap) {
  if (rt == NULL || fmt == NULL || level < BW_LOG_DEBUG || level > BW_LOG_ERROR)
    return BW_EINVAL;
  if (!bw_log_enabled(rt, level))
    return 0;
  bw__log_who who = caller(rt);
  return emit(rt, level, &who, fields, nfields, fmt, ap);
}

int bw_log_write(bw_runtime_t *rt, int level, const bw_log_field_t *fields, size_t nfields,
                 const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = bw_log_writev(rt, level, fields, nfields, fmt, ap);
  va_end(ap);
  return rc;
}

int bw__log_about(bw__runtime *rt, int level, const bw__log_who *who,
                  const bw_log_field_t *fields, size_t nfields, const char *fmt, ...) {
  if (rt == NULL || who == NULL || fmt == NULL || level < BW_LOG_DEBUG || level > BW_LOG_ERROR)
    return BW_EINVAL;
  if (!bw_log_enabled(rt, level))
    return 0;
  va_list ap;
  va_start(ap, fmt);
  int rc = emit(rt, level, who, fields, nfields, fmt, ap);
  va_end(ap);
  return rc;
}

/* --- what the runtime logs itself ---------------------------------------------------- */

size_t bw__log_reason_fields(const bw_reason_t *r, bw_log_field_t f[4]) {
  size_t n = 0;
  f[n++] = BW_LOG_STR("reason", bw_reason_kind_name(r->kind));
  if (r->code != 0) {
    f[n++] = BW_LOG_STR("code", bw_err_name(r->code));
    f[n++] = BW_LOG_STR("error", bw_strerror(r->code));
  }
  if (r->text[0] != '\0')
    f[n++] = BW_LOG_STR("detail", r->text);
  return n;
}

void bw__log_lone_crash(bw__actor *a, const bw_reason_t *r) {
  /* linked: whoever is linked hears of it (a supervisor reports it) */
  if (!bw_log_enabled(a->rt, BW_LOG_ERROR) || (a->ext != NULL && a->ext->nlinks > 0))
    return;
  bw_log_field_t f[4];
  size_t n = bw__log_reason_fields(r, f);
  bw__log_who who = {.pid = a->pid, .name = a->beh != NULL ? a->beh->name : NULL};
  bw__log_about(a->rt, BW_LOG_ERROR, &who, f, n, "actor crashed");
}
