/*
 * bulwark internal: the pieces every backoff is made of (runtime/backoff.c):
 * a seeded generator, a uniform draw, capped exponential growth and the
 * downward jitter. Users: the supervisor's restart backoff, the breaker's
 * open wait, and the public retry backoff (patterns/backoff.c, whose
 * fractional multiplier and full / equal / decorrelated jitter are its own:
 * bulwark/retry.h documents them, and it draws from the same generator).
 *
 * Decided once for the supervisor and the breaker, which had a copy each:
 * the generator is splitmix64 (the supervisor had a 64-bit LCG), a draw is
 * Lemire's multiply-shift (both had a modulo), and the jitter only ever
 * shortens a wait (both did), so a cap holds.
 */
#ifndef BW_RUNTIME_BACKOFF_H
#define BW_RUNTIME_BACKOFF_H

#include <stdint.h>

/* splitmix64 (Steele, Lea, Flood): the next 64 random bits from *state;
 * every state is valid, 0 included, so any seed works. */
uint64_t bw__rand64(uint64_t *state);

/* Uniform in [lo, hi] (lo <= hi), by Lemire's multiply-shift: no division,
 * and a bias below (hi - lo + 1) / 2^64, far under anything a delay shows. */
uint64_t bw__rand_between(uint64_t *rng, uint64_t lo, uint64_t hi);

/* min(cap, base * mult^n): the n-th wait of a capped exponential backoff
 * (n = 0 is base itself). mult <= 1 keeps it constant. Never overflows,
 * whatever the arguments: the product stops growing at the cap. O(n) while
 * below the cap, at most 64 steps. */
uint64_t bw__backoff_exp(uint64_t base, uint64_t mult, uint32_t n, uint64_t cap);

/* d shortened by a uniform draw in [0, d * pct / 100] (pct <= 100): jitter
 * that never lengthens a wait. pct 0 returns d and draws nothing. */
uint64_t bw__backoff_jitter_down(uint64_t d, uint32_t pct, uint64_t *rng);

#endif
