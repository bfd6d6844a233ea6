/*
 * banking: Savina's bank transactions with request/reply. A teller asks
 * (bw_request) a source account to transfer an amount to a destination
 * account; the source debits itself, asks the destination to credit the
 * amount (bw_request), and only when the destination has answered does it
 * answer the teller (bw_reply): two nested request/reply round trips per
 * transaction, n transactions in flight at once, `accounts` accounts.
 *
 * Checked: every transaction was answered exactly once and without error;
 * each account's final balance equals its opening balance plus the
 * teller's own ledger of what it asked for; total money is conserved
 * exactly (integer cents).
 */
#include "runner.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  BK_TRANSFER = BENCH_MSG_USER, /* teller -> source; request, bk_tx_t */
  BK_CREDIT,                    /* source -> destination; request, int64_t */
};

#define BK_OPENING INT64_C(1000000) /* each account's opening balance */

typedef struct bk_tx {
  uint64_t id;
  bw_pid_t dst;
  int64_t amount;
} bk_tx_t;

typedef struct bk_shared {
  uint64_t n, accounts;
  bw_pid_t *account;
  int64_t *balance;   /* [accounts], written by each account's terminate */
  int64_t *ledger;    /* [accounts], the teller's expected change */
  uint8_t *answered;  /* [n] */
  bench_slot_t *slot; /* [accounts + 1]: msgs; [accounts] = the teller */
} bk_shared_t;

/* --- account ------------------------------------------------------------- */

typedef struct bk_pending {
  uint64_t ref;  /* our credit request */
  bw_msg_t req;  /* the teller's request, kept to answer it (data cleared) */
  uint64_t id;
} bk_pending_t;

typedef struct bk_account {
  bk_shared_t *sh;
  uint64_t idx;
  int64_t balance;
  bk_pending_t *pend;
  size_t npend, cap;
} bk_account_t;

typedef struct bk_arg {
  bk_shared_t *sh;
  uint64_t idx;
} bk_arg_t;

static int bk_account_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bk_account_t *a = state;
  const bk_arg_t *g = arg;
  a->sh = g->sh;
  a->idx = g->idx;
  a->balance = BK_OPENING;
  return 0;
}

static void bk_account_terminate(bw_ctx_t *ctx, void *state,
                                 const bw_reason_t *reason)
{
  (void)ctx;
  (void)reason;
  bk_account_t *a = state;
  a->sh->balance[a->idx] = a->balance;
  free(a->pend);
}

static int bk_account_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bk_account_t *a = state;
  a->sh->slot[a->idx].msgs++;
  if (msg->type == BK_TRANSFER && (msg->flags & BW_MSGF_REQUEST)) {
    bk_tx_t tx;
    if (msg->len != sizeof tx)
      return BW_EINVAL;
    memcpy(&tx, msg->data, sizeof tx);
    if (a->npend == a->cap) {
      size_t cap = a->cap ? 2 * a->cap : 16;
      bk_pending_t *p = realloc(a->pend, cap * sizeof *p);
      if (!p)
        return bw_reply(ctx, msg, BW_ENOMEM, BK_TRANSFER, NULL, 0) == 0
                   ? BW_CONTINUE : BW_ENOMEM;
      a->pend = p;
      a->cap = cap;
    }
    a->balance -= tx.amount;
    bk_pending_t *p = &a->pend[a->npend];
    int rc = bw_request(ctx, tx.dst, BK_CREDIT, &tx.amount, sizeof tx.amount,
                        0, &p->ref);
    if (rc != 0) {
      a->balance += tx.amount; /* not done: undo, and say so */
      bw_reply(ctx, msg, rc, BK_TRANSFER, &tx.id, sizeof tx.id);
      return BW_CONTINUE;
    }
    p->req = *msg;
    p->req.data = NULL;
    p->req.len = 0;
    p->id = tx.id;
    a->npend++;
    return BW_CONTINUE;
  }
  if (msg->type == BK_CREDIT && (msg->flags & BW_MSGF_REQUEST)) {
    int64_t amount;
    if (msg->len != sizeof amount)
      return BW_EINVAL;
    memcpy(&amount, msg->data, sizeof amount);
    a->balance += amount;
    return bw_reply(ctx, msg, 0, BK_CREDIT, NULL, 0) == 0 ? BW_CONTINUE
                                                          : BW_EINVAL;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    /* A credit's answer: find the transfer waiting on it. Linear in the
     * transfers this account has in flight (a handful on average). */
    for (size_t i = 0; i < a->npend; i++) {
      if (a->pend[i].ref != msg->ref)
        continue;
      bk_pending_t p = a->pend[i];
      a->pend[i] = a->pend[--a->npend];
      bw_reply(ctx, &p.req, msg->status, BK_TRANSFER, &p.id, sizeof p.id);
      return BW_CONTINUE;
    }
  }
  return BW_EINVAL;
}

static const bw_behaviour_t bk_account_behaviour = {
    .name = "bench.banking.account",
    .state_size = sizeof(bk_account_t),
    .init = bk_account_init,
    .handle = bk_account_handle,
    .terminate = bk_account_terminate,
};

/* --- teller -------------------------------------------------------------- */

typedef struct bk_teller {
  bk_shared_t *sh;
  uint64_t answers;
  uint64_t rng;
  bench_waiter_t waiter;
} bk_teller_t;

static int bk_teller_init(bw_ctx_t *ctx, void *state, void *arg)
{
  (void)ctx;
  bk_teller_t *t = state;
  t->sh = arg;
  t->rng = 2014; /* Savina's year */
  return 0;
}

static int bk_teller_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg)
{
  bk_teller_t *t = state;
  bk_shared_t *sh = t->sh;
  sh->slot[sh->accounts].msgs++;
  if (msg->type == BENCH_MSG_GO) {
    if (bench_waiter_arm(&t->waiter, msg) != 0)
      return BW_EINVAL;
    for (uint64_t i = 0; i < sh->n; i++) {
      uint64_t s = bench_rand(&t->rng) % sh->accounts;
      uint64_t d = bench_rand(&t->rng) % (sh->accounts - 1);
      if (d >= s)
        d++;
      bk_tx_t tx = {i, sh->account[d], (int64_t)(bench_rand(&t->rng) % 1000)};
      uint64_t ref;
      int rc = bw_request(ctx, sh->account[s], BK_TRANSFER, &tx, sizeof tx, 0,
                          &ref);
      if (rc != 0) {
        bench_waiter_fail(&t->waiter, ctx, "bw_request: %s", bw_strerror(rc));
        return BW_CONTINUE;
      }
      sh->ledger[s] -= tx.amount;
      sh->ledger[d] += tx.amount;
    }
    return BW_CONTINUE;
  }
  if (msg->flags & BW_MSGF_REPLY) {
    uint64_t id;
    if (msg->len != sizeof id) {
      bench_waiter_fail(&t->waiter, ctx, "a transfer failed: %s",
                        bw_strerror(msg->status));
      return BW_CONTINUE;
    }
    memcpy(&id, msg->data, sizeof id);
    if (msg->status != 0 || id >= sh->n || sh->answered[id]) {
      bench_waiter_fail(&t->waiter, ctx, "transaction %" PRIu64 ": %s", id,
                        msg->status ? bw_strerror(msg->status)
                                    : "answered twice or unknown");
      return BW_CONTINUE;
    }
    sh->answered[id] = 1;
    if (++t->answers == sh->n)
      bench_waiter_ok(&t->waiter, ctx, bench_now_ns());
    return BW_CONTINUE;
  }
  return BW_EINVAL;
}

static const bw_behaviour_t bk_teller_behaviour = {
    .name = "bench.banking.teller",
    .state_size = sizeof(bk_teller_t),
    .init = bk_teller_init,
    .handle = bk_teller_handle,
};

static int bk_run(bench_run_t *r)
{
  bk_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.n = bench_param(r, "n");
  sh.accounts = bench_param(r, "accounts");
  sh.account = calloc(sh.accounts, sizeof *sh.account);
  sh.balance = calloc(sh.accounts, sizeof *sh.balance);
  sh.ledger = calloc(sh.accounts, sizeof *sh.ledger);
  sh.answered = calloc(sh.n, 1);
  sh.slot = bench_slots(sh.accounts + 1);
  int ret = -1;
  if (!sh.account || !sh.balance || !sh.ledger || !sh.answered || !sh.slot) {
    bench_fail(r, "out of memory");
    goto out;
  }
  bw_runtime_t *rt;
  if (bench_runtime_create(r, &rt) != 0)
    goto out;
  bw_pid_t teller;
  int rc = bw_spawn(rt, &bk_teller_behaviour, &sh, NULL, &teller);
  for (uint64_t i = 0; rc == 0 && i < sh.accounts; i++) {
    bk_arg_t a = {&sh, i};
    rc = bw_spawn(rt, &bk_account_behaviour, &a, NULL, &sh.account[i]);
  }
  if (rc != 0) {
    bench_fail(r, "bw_spawn: %s", bw_strerror(rc));
    bench_runtime_finish(r, rt, NULL);
    goto out;
  }
  bench_done_t done;
  int go = bench_go(r, rt, teller, NULL, 0, &done);
  bw_runtime_stats_t st;
  int fin = bench_runtime_finish(r, rt, &st);
  if (go != 0 || fin != 0)
    goto out;
  int64_t total = 0;
  uint64_t handled = sh.slot[sh.accounts].msgs;
  for (uint64_t i = 0; i < sh.accounts; i++) {
    if (sh.balance[i] != BK_OPENING + sh.ledger[i]) {
      bench_fail(r, "account %" PRIu64 " holds %" PRId64 ", expected %" PRId64,
                 i, sh.balance[i], BK_OPENING + sh.ledger[i]);
      goto out;
    }
    total += sh.balance[i];
    handled += sh.slot[i].msgs;
  }
  if (total != BK_OPENING * (int64_t)sh.accounts) {
    bench_fail(r, "money not conserved: %" PRId64 " in all, expected %" PRId64,
               total, BK_OPENING * (int64_t)sh.accounts);
    goto out;
  }
  if (bench_check_stats(r, &st, handled, sh.accounts + 1) != 0)
    goto out;
  ret = bench_rate(r, &done, sh.n);
out:
  free(sh.account);
  free(sh.balance);
  free(sh.ledger);
  free(sh.answered);
  free(sh.slot);
  return ret;
}

const bench_t bench_banking = {
    .name = "banking",
    .group = "savina",
    .unit = "tx/s",
    .higher_is_better = true,
    .summary = "a teller's transfers between accounts, nested request/reply",
    .params = {{"n", 50000, 20000, 1, UINT64_C(1) << 32, "transactions"},
               {"accounts", 1000, 1000, 2, 1000000, "accounts"}},
    .run = bk_run,
};
