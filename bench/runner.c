/*
 * bw-bench: the benchmark runner. This file is main, the order of a
 * session: parse the command line (runner_opts.c), refuse a build whose
 * figures would mislead (runner_machine.c), read the baseline and open the
 * outputs before anything runs, run every selected benchmark, each measured
 * run in a child process (runner_run.c), then print (runner_output.c) and
 * write (runner_files.c) the results. runner_internal.h maps the files.
 *
 * Exit status: 0 all selected benchmarks passed; 1 one or more failed (or an
 * output file could not be written; for --check-json: the file is bad); 2 bad
 * command line, or a build whose figures would mislead (sanitizers, no
 * optimisation) without --force; 3 all passed, but one or more are slower
 * than the --baseline by more than --fail-over.
 */
#include "runner_internal.h"

#include "baseline.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char runner_prog[] = "bw-bench";

/* What a session writes besides stdout, opened before the runs. */
typedef struct outputs {
  bench_baseline_t base; /* zeroed without --baseline */
  FILE *json;
  FILE *csv;
} outputs_t;

/* Refuses, saying why and how to fix it, unless --force. Returns true if
 * the session must stop (EXIT_USAGE). */
static bool refuse_unfit(const options_t *o, const char *unfit)
{
  if (!unfit || o->force)
    return false;
  fprintf(stderr,
          "%s: refusing to report figures: %s.\n"
          "Benchmark an optimised build without sanitizers, e.g.\n"
          "  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release "
          "-DBW_SANITIZE=\n"
          "or pass --force to run anyway (the report is then marked).\n",
          runner_prog, unfit);
  return true;
}

/* Reads the baseline and opens the outputs now: a bad file or path should
 * fail before minutes of runs. Returns 0, or -1 (said why) for a bad
 * baseline; exits EXIT_USAGE for an output it cannot open. */
static int open_outputs(const options_t *o, outputs_t *out)
{
  memset(out, 0, sizeof *out);
  if (o->baseline_path) {
    char err[512];
    if (bench_baseline_load(o->baseline_path, &out->base, err,
                            sizeof err) != 0) {
      fprintf(stderr, "%s: --baseline %s\n", runner_prog, err);
      return -1;
    }
  }
  out->json = o->json_path ? runner_open_output(o->json_path, "JSON") : NULL;
  out->csv = o->csv_path ? runner_open_output(o->csv_path, "CSV") : NULL;
  return 0;
}

/* The table and the comparison on stdout, then the files. Returns
 * exit_code, or the worse code a regression or a failed write makes. */
static int report(const options_t *o, const result_t *res, size_t n,
                  const machine_t *m, unsigned workers, outputs_t *out,
                  int exit_code)
{
  runner_print_table(stdout, res, n, m, o, workers);
  if (o->baseline_path &&
      runner_print_comparison(stdout, res, n, &out->base, o) &&
      exit_code == 0)
    exit_code = EXIT_REGRESSED;
  fflush(stdout);

  if (out->json &&
      runner_close_output(out->json, o->json_path,
                          runner_write_json(out->json, res, n, m, o,
                                            workers)) != 0)
    exit_code = EXIT_FAILED;
  if (out->csv &&
      runner_close_output(out->csv, o->csv_path,
                          runner_write_csv(out->csv, res, n)) != 0)
    exit_code = EXIT_FAILED;
  if (o->report_dir &&
      runner_write_report(res, n, m, o, workers, &out->base) != 0)
    exit_code = EXIT_FAILED;
  return exit_code;
}

/* A measuring session over the selected benchmarks. Returns the exit
 * status. */
static int session(const options_t *o, result_t *res, size_t n)
{
  const char *unfit = runner_build_unfit();
  if (refuse_unfit(o, unfit))
    return EXIT_USAGE;
  outputs_t out;
  if (open_outputs(o, &out) != 0)
    return EXIT_USAGE;

  machine_t m;
  runner_machine_probe(&m, time(NULL));
  unsigned workers =
      o->workers ? o->workers : (unsigned)(m.cores > 0 ? m.cores : 1);
  runner_progress_init();
  if (unfit)
    fprintf(stderr, "%s: WARNING: %s; running anyway (--force)\n",
            runner_prog, unfit);

  int exit_code = runner_run_all(o, res, n);
  exit_code = report(o, res, n, &m, workers, &out, exit_code);
  bench_baseline_free(&out.base);
  return exit_code;
}

int main(int argc, char **argv)
{
  options_t o;
  runner_opts_init(&o);
  bool list = false;
  runner_parse_args(&o, argc, argv, &list);

  int rc;
  if (list) {
    runner_list(&o);
    rc = 0;
  } else if (o.check_json_path) {
    rc = runner_check_json(&o);
  } else {
    size_t n;
    result_t *res = runner_results_new(&o, &n);
    if (!res) {
      rc = EXIT_FAILED;
    } else {
      runner_check_overrides(&o);
      rc = session(&o, res, n);
      runner_results_free(res, n);
    }
  }
  runner_opts_free(&o);
  return rc;
}
