/*
 * bulwark: deferred replies, a request kept to answer later as a reply
 * token (bw_reply_defer, bw_reply_token): include/bulwark/reply.h.
 *
 * A token is a value the user copies freely; what makes it answer once
 * is the actor's own record of its live tokens (ext->tokens: request ref
 * -> requester), which an answer takes out before it sends. A copy of a
 * token whose record is gone answers BW_EREPLIED. The exit path answers
 * every record left with BW_ENOREPLY (bw__defer_on_exit), before the
 * actor's links and monitors are told: a requester's request monitors its
 * target, and per-pair order puts this answer before that DOWN, so the
 * requester hears "exited without answering" rather than a bare
 * BW_ENOPROC.
 *
 * Before tokens, a handler kept a request by copying its bw_msg_t and
 * later called bw_reply on the copy: that still works, but nothing
 * stops a second answer (a dead letter "late_reply") and a lost copy is
 * noticed only through the monitor's BW_ENOPROC.
 *
 * Memory: the record is a reftab entry, in a table that grows by doubling
 * and is reused: no allocation per request once grown. Owner-only (the
 * actor's own thread): no atomics, no locks.
 */
#include "bulwark/reply.h"
#include "runtime/internal.h"

static bw__actor *running_actor(bw_ctx_t *ctx) {
  bw__actor *a = (bw__actor *)ctx;
  return a != NULL && bw__tl.cur == a ? a : NULL;
}

int bw_reply_defer(bw_ctx_t *ctx, const bw_msg_t *req, bw_reply_token_t *out) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  if (req == NULL || out == NULL || !(req->flags & BW_MSGF_REQUEST) || a->cur_msg == NULL ||
      &a->cur_msg->pub != req)
    return BW_EINVAL;
  bw__actor_ext *e = bw__ext_get(a);
  if (e == NULL)
    return BW_ENOMEM;
  if (bw__reftab_has(&e->tokens, req->ref))
    return BW_ESTATE;
  if (bw__tl.replied)
    return BW_EREPLIED;
  if (!bw__reftab_put(&e->tokens, req->ref, req->from, 0))
    return BW_ENOMEM;
  /* the token answers now: neither a handler that returns without
   * answering nor a crash answers it for the handler (turn.c) */
  bw__tl.replied = true;
  *out = (bw_reply_token_t){.to = req->from, .ref = req->ref, .owner = a->pid};
  return 0;
}

/* Takes t's record out (an answer is on its way), or says why not. */
static int token_take(bw__actor *a, bw_reply_token_t *t, bw__refent *rec) {
  if (t == NULL || t->owner != a->pid)
    return BW_EINVAL;
  if ((t->flags & BW_REPLY_TOKEN_ANSWERED) || a->ext == NULL ||
      !bw__reftab_take(&a->ext->tokens, t->ref, rec)) {
    t->flags |= BW_REPLY_TOKEN_ANSWERED;
    return BW_EREPLIED;
  }
  return 0;
}

/* After the answer went out (rc): the token is spent when it was sent or
 * dead-lettered; otherwise its record goes back (no allocation: the
 * entry was just taken, so the table has room). */
static int token_settle(bw__actor *a, bw_reply_token_t *t, const bw__refent *rec, int rc) {
  if (rc == 0 || rc == BW_ENOPROC)
    t->flags |= BW_REPLY_TOKEN_ANSWERED;
  else
    (void)bw__reftab_put(&a->ext->tokens, rec->ref, rec->pid, 0);
  return rc;
}

int bw_reply_token(bw_ctx_t *ctx, bw_reply_token_t *t, int status, uint32_t type,
                   const void *data, size_t len) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  bw__refent rec;
  int rc = token_take(a, t, &rec);
  if (rc != 0)
    return rc;
  bw_msg_t req = {.from = rec.pid, .ref = rec.ref, .flags = BW_MSGF_REQUEST};
  return token_settle(a, t, &rec, bw_reply(ctx, &req, status, type, data, len));
}

int bw_reply_token_move(bw_ctx_t *ctx, bw_reply_token_t *t, int status, uint32_t type,
                        void *ptr, size_t len, void (*dtor)(void *)) {
  bw__actor *a = running_actor(ctx);
  if (a == NULL)
    return BW_ENOTACTOR;
  bw__refent rec;
  int rc = token_take(a, t, &rec);
  if (rc != 0)
    return rc;
  bw_msg_t req = {.from = rec.pid, .ref = rec.ref, .flags = BW_MSGF_REQUEST};
  return token_settle(a, t, &rec, bw_reply_move(ctx, &req, status, type, ptr, len, dtor));
}

void bw__defer_on_exit(bw__actor *a) {
  bw__reftab *tk = &a->ext->tokens;
  for (uint32_t i = 0; i < tk->cap; i++)
    if (tk->e[i].ref != 0)
      (void)bw__reply_status(a->rt, tk->e[i].pid, a->pid, tk->e[i].ref, BW_ENOREPLY);
  bw__reftab_free(tk);
}
