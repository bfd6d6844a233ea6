/*
 * bulwark: the name registry: name -> pid, under a reader-writer lock.
 * Lookups are not on the message hot path (bw_send takes a pid); a name is
 * resolved once and the pid kept. A name whose actor died is treated as
 * free: the exit path drops it, and a lookup that races with that exit sees
 * a dead pid and answers BW_ENOTFOUND.
 * O(n) scans: registries hold tens to thousands of names, not millions.
 * A send by name resolves and delivers under the read lock (bw__registry_with).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/grow.h"
#include "runtime/internal.h"

static int find(const bw__runtime *rt, const char *name) {
  for (uint32_t i = 0; i < rt->nreg; i++)
    if (strcmp(rt->reg[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int check_name(const char *name) {
  if (name == NULL || name[0] == '\0' || strlen(name) > BW_NAME_MAX)
    return BW_EINVAL;
  return 0;
}

int bw__registry_add(bw__runtime *rt, const char *name, bw_pid_t pid) {
  pthread_rwlock_wrlock(&rt->reg_lock);
  int i = find(rt, name);
  if (i >= 0) {
    if (bw_is_alive(rt, rt->reg[i].pid)) {
      pthread_rwlock_unlock(&rt->reg_lock);
      return BW_EEXIST;
    }
    rt->reg[i].pid = pid; /* the old owner is dead: the name is free */
    pthread_rwlock_unlock(&rt->reg_lock);
    return 0;
  }
  if (!bw__grow((void **)&rt->reg, &rt->capreg, rt->nreg, sizeof(*rt->reg), 16)) {
    pthread_rwlock_unlock(&rt->reg_lock);
    return BW_ENOMEM;
  }
  char *copy = strdup(name);
  if (copy == NULL) {
    pthread_rwlock_unlock(&rt->reg_lock);
    return BW_ENOMEM;
  }
  rt->reg[rt->nreg++] = (bw__registry_ent){.name = copy, .pid = pid};
  pthread_rwlock_unlock(&rt->reg_lock);
  return 0;
}

int bw_register(bw_runtime_t *rt, const char *name, bw_pid_t pid) {
  if (rt == NULL || check_name(name) != 0)
    return BW_EINVAL;
  if (bw__ld32_acq(&rt->state) == BW__RT_STOPPED)
    return BW_ESHUTDOWN;
  if (!bw_is_alive(rt, pid))
    return BW_ENOPROC;
  int rc = bw__registry_add(rt, name, pid);
  /* the actor may have died between the check and the insert; its exit
   * path may have missed the new entry, so check again */
  if (rc == 0 && !bw_is_alive(rt, pid)) {
    bw__registry_drop_pid(rt, pid);
    return BW_ENOPROC;
  }
  return rc;
}

static void remove_at(bw__runtime *rt, uint32_t i) {
  free(rt->reg[i].name);
  rt->reg[i] = rt->reg[--rt->nreg];
}

int bw_unregister(bw_runtime_t *rt, const char *name) {
  if (rt == NULL || check_name(name) != 0)
    return BW_EINVAL;
  pthread_rwlock_wrlock(&rt->reg_lock);
  int i = find(rt, name);
  int rc = BW_ENOTFOUND;
  if (i >= 0) {
    rc = bw_is_alive(rt, rt->reg[i].pid) ? 0 : BW_ENOTFOUND;
    remove_at(rt, (uint32_t)i);
  }
  pthread_rwlock_unlock(&rt->reg_lock);
  return rc;
}

int bw_whereis(const bw_runtime_t *rt, const char *name, bw_pid_t *out) {
  if (rt == NULL || out == NULL || check_name(name) != 0)
    return BW_EINVAL;
  bw__runtime *mrt = (bw__runtime *)rt;
  pthread_rwlock_rdlock(&mrt->reg_lock);
  int i = find(rt, name);
  bw_pid_t pid = i >= 0 ? rt->reg[i].pid : BW_PID_NONE;
  pthread_rwlock_unlock(&mrt->reg_lock);
  if (pid == BW_PID_NONE || !bw_is_alive(rt, pid))
    return BW_ENOTFOUND;
  *out = pid;
  return 0;
}

/*
 * Sending by name (bw_send_named here, bw_request_named and bw_call_named
 * in named.c): fn runs with the registry read-locked, given the name's
 * holder, or BW_PID_NONE when no live actor holds it (fn's send then
 * dead-letters the message noproc, as for any dead pid). While the read
 * lock is held no exit, unregister or re-registration can move the name
 * (all take the write lock), so what fn sends lands in the mailbox of the
 * actor that holds the name at that instant, never in that of one that
 * held it before: a whereis followed by a send can reach an old holder
 * that has since exited (BW_ENOPROC) while its restarted successor holds
 * the name. fn must not touch the registry's names (it would wait for
 * itself): a send, a request or a timer is fine.
 */
int bw__registry_with(bw__runtime *rt, const char *name, bw__named_fn fn, void *ud) {
  if (rt == NULL || check_name(name) != 0)
    return BW_EINVAL;
  pthread_rwlock_rdlock(&rt->reg_lock);
  int i = find(rt, name);
  bw_pid_t pid = i >= 0 ? rt->reg[i].pid : BW_PID_NONE;
  if (pid != BW_PID_NONE && !bw_is_alive(rt, pid))
    pid = BW_PID_NONE; /* exiting: its successor cannot have taken the name yet */
  int rc = fn(rt, pid, ud);
  pthread_rwlock_unlock(&rt->reg_lock);
  return rc;
}

typedef struct named_send {
  uint32_t type;
  const void *data;
  size_t len;
} named_send;

static int send_to(bw__runtime *rt, bw_pid_t pid, void *ud) {
  const named_send *s = ud;
  return bw_send(rt, pid, s->type, s->data, s->len);
}

int bw_send_named(bw_runtime_t *rt, const char *name, uint32_t type, const void *data,
                  size_t len) {
  named_send s = {type, data, len};
  int rc = bw__registry_with(rt, name, send_to, &s);
  /* its documented code for "nobody holds it" (the message was
   * dead-lettered against no pid, so it is not lost silently) */
  return rc == BW_ENOPROC ? BW_ENOTFOUND : rc;
}

/* Exit path of an actor registered at spawn or later. */
void bw__registry_drop_pid(bw__runtime *rt, bw_pid_t pid) {
  pthread_rwlock_wrlock(&rt->reg_lock);
  for (uint32_t i = 0; i < rt->nreg;) {
    if (rt->reg[i].pid == pid)
      remove_at(rt, i);
    else
      i++;
  }
  pthread_rwlock_unlock(&rt->reg_lock);
}

void bw__registry_destroy(bw__runtime *rt) {
  for (uint32_t i = 0; i < rt->nreg; i++)
    free(rt->reg[i].name);
  free(rt->reg);
  rt->reg = NULL;
  rt->nreg = rt->capreg = 0;
  pthread_rwlock_destroy(&rt->reg_lock);
}
