/*
 * bulwark: error codes and reason names.
 */
#include "runtime/internal.h"

const char *bw_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define BW__ERR_MSG(name, value, msg)                                          \
  case value:                                                                  \
    return msg;
    BW_ERRNO_MAP(BW__ERR_MSG)
#undef BW__ERR_MSG
  default: {
    const char *t = bw__error_user_text(err); /* an application's (error_user.c) */
    return t != NULL ? t : "unknown error";
  }
  }
}

const char *bw_err_name(int err) {
  switch (err) {
  case 0:
    return "BW_OK";
#define BW__ERR_NAME(name, value, msg)                                         \
  case value:                                                                  \
    return "BW_" #name;
    BW_ERRNO_MAP(BW__ERR_NAME)
#undef BW__ERR_NAME
  default: {
    const char *n = bw__error_user_name(err);
    return n != NULL ? n : "BW_UNKNOWN";
  }
  }
}

const char *bw_reason_kind_name(int kind) {
  static const char *const names[BW_REASON__COUNT] = {
      "normal", "shutdown", "killed", "crash", "noproc", "noconnection", "kill"};
  if (kind < 0 || kind >= BW_REASON__COUNT)
    return "unknown";
  return names[kind];
}

bool bw_reason_is_abnormal(const bw_reason_t *r) {
  return r != NULL && r->kind != BW_REASON_NORMAL && r->kind != BW_REASON_SHUTDOWN;
}

const char *bw_dead_reason_name(int reason) {
  static const char *const names[BW_DL__COUNT] = {"noproc", "full", "shutdown",
                                                  "exited", "late_reply",
                                                  "noconnection", "undecodable"};
  if (reason < 0 || reason >= BW_DL__COUNT)
    return "unknown";
  return names[reason];
}
