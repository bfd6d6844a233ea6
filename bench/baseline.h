/*
 * Reading bw-bench's --json files back: as a baseline to compare with
 * (--baseline), and to validate one (--check-json). Both go through the
 * JSON reader (json.h); nothing outside the project is needed.
 */
#ifndef BW_BENCH_BASELINE_H
#define BW_BENCH_BASELINE_H

#include <stddef.h>
#include <stdio.h>

#include "stats.h"

/*
 * Loads a results file into *b (filled, to be freed with
 * bench_baseline_free). Every result must have a name, params, a unit and
 * higher_is_better; a failed one (an "error", null figures) is kept with
 * ok = false. Returns 0, or -1 with a message in err.
 */
int bench_baseline_load(const char *path, bench_baseline_t *b, char *err,
                        size_t cap);

void bench_baseline_free(bench_baseline_t *b);

/*
 * Validates a results file: it parses; machine, config and results are
 * there with the types the runner writes; each of the nexpect names has
 * exactly one result, without an error; every figure (median, min, max,
 * each run) is finite and positive, where a figure for which lower is
 * better may also be 0 (an idle runtime that used no CPU in the window is
 * a perfect score, not a broken run); min <= median <= max and every run
 * lies within [min, max]. Each problem is printed to out, one per line.
 * Returns the number of problems (0: the file is good).
 */
int bench_check_json(const char *path, const char *const *expect,
                     size_t nexpect, FILE *out);

#endif
