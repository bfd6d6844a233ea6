/*
 * bulwark: the name registry: name -> pid, under a reader-writer lock.
 * Lookups are not on the message hot path (bw_send takes a pid); a name is
 * resolved once and the pid kept. A name whose actor died is treated as
 * free: the exit path drops it, and a lookup that races with that exit sees
 * a dead pid and answers BW_ENOTFOUND.
 * O(n) scans: registries hold tens to thousands of names, not millions.
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

int bw_send_named(bw_runtime_t *rt, const char *name, uint32_t type, const void *data,
                  size_t len) {
  bw_pid_t pid;
  int rc = bw_whereis(rt, name, &pid);
  if (rc == BW_ENOTFOUND) {
    /* dead-letter it against no pid, so it is not lost silently */
    rc = bw_send(rt, BW_PID_NONE, type, data, len);
    return rc == BW_ENOPROC ? BW_ENOTFOUND : rc;
  }
  if (rc != 0)
    return rc;
  return bw_send(rt, pid, type, data, len);
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
