/*
 * bulwark internal: the supervisor's message protocol, shared by the
 * supervisor actor (supervisor.c and the files beside it, sup_impl.h) and
 * the synchronous API (api.c).
 */
#ifndef BW_SUPERVISOR_INTERNAL_H
#define BW_SUPERVISOR_INTERNAL_H

#include "bulwark/bulwark.h"

/* Request types (user range, below the runtime's system types). */
enum {
  BW__SUP_BASE = 0xFFFE0000u,
  BW__SUP_START,          /* start the initial children; reply: status [+ bw_sup_error_t] */
  BW__SUP_WHICH,          /* reply (moved): bw_child_info_t[n] */
  BW__SUP_COUNT,          /* reply: bw_child_counts_t */
  BW__SUP_CHILD_PID,      /* payload: id; reply: bw_pid_t */
  BW__SUP_START_CHILD,    /* payload: const bw_child_spec_t *; reply: bw_pid_t */
  BW__SUP_START_DYN,      /* payload: void *arg; reply: bw_pid_t */
  BW__SUP_TERMINATE,      /* payload: id */
  BW__SUP_TERMINATE_PID,  /* payload: bw_pid_t */
  BW__SUP_RESTART,        /* payload: id; reply: bw_pid_t */
  BW__SUP_DELETE,         /* payload: id */
  BW__SUP_TIMER,          /* self: a job's timer fired; ref = timer id */
  BW__SUP_YIELD,          /* self: a J_YIELD job resumes; ref = its token */
  BW__SUP_BACKOFF,        /* self: a child's restart backoff is over; ref = timer id */
};

/* Validates one child spec (not its subtree); used by start_child too. */
int bw__sup_check_child(const bw_sup_spec_t *parent, const bw_child_spec_t *c, size_t index,
                        bw_sup_error_t *err);

extern const bw_behaviour_t bw__supervisor_behaviour;
/* runtime/actor.c: the behaviour pid runs; 0 or BW_ENOPROC */
int bw__actor_behaviour(bw_runtime_t *rt, bw_pid_t pid, const bw_behaviour_t **out);

#endif
