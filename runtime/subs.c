/*
 * bulwark: a subscriber list (runtime/subs.h). O(cap) per change and per
 * publication; cap is at most 32.
 */
#include <string.h>

#include "bulwark/error.h"
#include "runtime/subs.h"

void bw__subs_init(bw__subs *s, uint32_t cap) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->cap = cap < BW__SUBS_MAX ? cap : BW__SUBS_MAX;
}

void bw__subs_destroy(bw__subs *s) { pthread_mutex_destroy(&s->mu); }

/* Under s->mu. */
static void recompute_any(bw__subs *s) {
  uint64_t any = 0;
  for (uint32_t i = 0; i < s->cap; i++)
    if (bw__ld64_rlx(&s->pid[i]) != BW_PID_NONE)
      any |= bw__ld64_rlx(&s->mask[i]);
  /* release: a publisher that sees a bit set then reads the slots */
  bw__st64_rel(&s->any, any);
}

int bw__subs_add(bw__subs *s, bw_pid_t pid, uint64_t mask) {
  int rc = BW_ELIMIT;
  pthread_mutex_lock(&s->mu);
  uint32_t free_slot = UINT32_MAX;
  for (uint32_t i = 0; i < s->cap; i++) {
    bw_pid_t p = bw__ld64_rlx(&s->pid[i]);
    if (p == pid) {
      bw__st64_rel(&s->mask[i], mask);
      rc = 0;
      break;
    }
    if (p == BW_PID_NONE && free_slot == UINT32_MAX)
      free_slot = i;
  }
  if (rc != 0 && free_slot != UINT32_MAX) {
    bw__st64_rel(&s->mask[free_slot], mask);
    /* release: the mask is in place before the slot is seen in use */
    bw__st64_rel(&s->pid[free_slot], pid);
    rc = 0;
  }
  recompute_any(s);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int bw__subs_remove(bw__subs *s, bw_pid_t pid) {
  int rc = BW_ENOTFOUND;
  pthread_mutex_lock(&s->mu);
  for (uint32_t i = 0; i < s->cap; i++) {
    if (bw__ld64_rlx(&s->pid[i]) == pid) {
      /* release, as every store of a slot's pid (the event bus's order);
       * a publisher that still sees the old pid sends it one more message,
       * which an unsubscribe racing a publication allows */
      bw__st64_rel(&s->pid[i], BW_PID_NONE);
      rc = 0;
    }
  }
  recompute_any(s);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void bw__subs_drop(bw__subs *s, uint32_t i, bw_pid_t pid) {
  if (i >= s->cap)
    return;
  pthread_mutex_lock(&s->mu);
  if (bw__ld64_rlx(&s->pid[i]) == pid) {
    bw__st64_rel(&s->pid[i], BW_PID_NONE); /* release: as in bw__subs_remove */
    recompute_any(s);
  }
  pthread_mutex_unlock(&s->mu);
}
