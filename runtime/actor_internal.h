/*
 * bulwark internal: what the files of an actor's life share among
 * themselves (actor.c, spawn.c, turn.c, mute.c, release.c, dedicated.c,
 * and inbox.c, whose pseudo-actor lives and dies the same way), and nothing
 * else uses. What other runtime files call is in internal.h.
 */
#ifndef BW_RUNTIME_ACTOR_INTERNAL_H
#define BW_RUNTIME_ACTOR_INTERNAL_H

#include "runtime/internal.h"

/* memory (actor.c): a zeroed actor block of size bytes from this thread's
 * pool cache (or aligned malloc when too large); NULL without memory */
bw__actor *bw__actor_alloc(bw__runtime *rt, size_t size);
void bw__actor_free(bw__runtime *rt, bw__actor *a);
void bw__ext_free(bw__actor *a);

/* init (spawn.c): runs init on this thread; 0, or a negative code with
 * *why set (cleanup has run then) */
int bw__run_init(bw__actor *a, void *arg, bw_reason_t *why);

/* the exit path (release.c): everything after terminate, also used when
 * init fails; and one less live actor (waking bw_runtime_stop's waits) */
void bw__actor_release(bw__actor *a, const bw_reason_t *r);
/* One message left in a dead actor's mailbox (release.c; an inbox's close
 * too): a request gets a BW_ENOPROC reply, a user message becomes a dead
 * letter with reason dl, a signal gets a dead actor's answer (reason r) */
void bw__drain_one(bw__runtime *rt, bw__actor *a, bw__msg *m, const bw_reason_t *r, int dl);
void bw__live_dec(bw__runtime *rt, bool root);

/* back-pressure (mute.c), at the end of a turn: parks a on the muted
 * stack of the actor `on` or of the gate g; false if there is nothing to
 * wait for (a then goes on as usual) */
bool bw__mute_on(bw__runtime *rt, bw__actor *a, bw_pid_t on);
bool bw__mute_on_gate(bw__runtime *rt, bw__actor *a, bw__gate *g);

/* dedicated threads (dedicated.c): the thread's start routine, arg = the
 * actor; runs init, posts init_done, then the actor's loop */
void *bw__dedicated_main(void *arg);

#endif
