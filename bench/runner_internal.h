/*
 * bw-bench's runner, inside: what its files share. Benchmarks never include
 * this; they see runner.h only.
 *
 * The runner is split by idea (bench/CMakeLists.txt lists the files in
 * order): runner.c is main, the order of a session; runner_benches.c the
 * catalogue; runner_harness.c the helpers benchmarks call (runner.h);
 * runner_opts.c the command line; runner_machine.c what the figures ran on;
 * runner_run.c a child process per measured run; runner_output.c what the
 * terminal shows; runner_files.c the --json, --csv, --report files and
 * --check-json. Functions and data shared between these files start with
 * runner_; its types (options_t, result_t, machine_t) are the runner's own.
 */
#ifndef BW_BENCH_RUNNER_INTERNAL_H
#define BW_BENCH_RUNNER_INTERNAL_H

#include "runner.h"

#include "baseline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Set by bench/CMakeLists.txt; the fallbacks serve a build without CMake. */
#ifndef BW_BENCH_BUILD_TYPE
#define BW_BENCH_BUILD_TYPE ""
#endif
#ifndef BW_BENCH_SANITIZE
#define BW_BENCH_SANITIZE ""
#endif
#ifndef BW_BENCH_LIB_OPTIMIZED
#if defined(__OPTIMIZE__)
#define BW_BENCH_LIB_OPTIMIZED 1
#else
#define BW_BENCH_LIB_OPTIMIZED 0
#endif
#endif

/* A sanitizer the build flags did not announce still shows in the macros. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZER_SEEN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||   \
    __has_feature(memory_sanitizer)
#define BENCH_SANITIZER_SEEN 1
#endif
#endif
#ifndef BENCH_SANITIZER_SEEN
#define BENCH_SANITIZER_SEEN 0
#endif

#if defined(__clang__)
#define BENCH_COMPILER __VERSION__
#elif defined(__GNUC__)
#define BENCH_COMPILER "gcc " __VERSION__
#else
#define BENCH_COMPILER "unknown"
#endif

/* Exit status (runner.c's comment says when each is used). */
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_REGRESSED 3

/* "bw-bench", the prefix of every message the runner prints. */
extern const char runner_prog[];

/* --- The catalogue (runner_benches.c) ------------------------------------ */

/* Room for this many benchmarks in options_t.selected; runner_benches.c
 * fails to compile if the catalogue outgrows it. */
#define RUNNER_MAX_BENCHES 64

/* Every benchmark, in the order --list and a full run show them. */
extern const bench_t *const runner_benches[];
extern const size_t runner_nbench;

/* The catalogue index of the benchmark called name, or -1. */
int runner_bench_index(const char *name);

/* --- The command line (runner_opts.c) ------------------------------------ */

typedef struct override {
  const char *arg;   /* as given, for messages */
  char scope[64];    /* benchmark name, or "" for every selected one */
  char key[64];
  uint64_t value;
  bool used;
} override_t;

typedef struct options {
  unsigned runs;
  bool quick;
  bool force;
  bool no_fork;
  unsigned workers;
  uint64_t timeout_ms;
  const char *json_path;
  const char *csv_path;
  const char *baseline_path;
  double same_band_pct;
  double fail_over_pct; /* < 0: no threshold */
  const char *report_dir;
  const char *check_json_path;
  override_t *ov;
  size_t nov;
  bool selected[RUNNER_MAX_BENCHES]; /* indexed as runner_benches */
} options_t;

/* The defaults: 5 runs, a 120 s watchdog, no outputs, nothing selected. */
void runner_opts_init(options_t *o);

/* Frees what parsing allocated (the --param overrides). */
void runner_opts_free(options_t *o);

/* Fills *o from argv and selects the benchmarks the arguments name (all
 * if none). --help prints the usage and exits 0; a bad command line exits
 * EXIT_USAGE with a message. *list: --list was given. */
void runner_parse_args(options_t *o, int argc, char **argv, bool *list);

/* Resolves the parameters of benchmark b: defaults, --quick, overrides;
 * marks the overrides used. Exits EXIT_USAGE on a value out of range. */
void runner_resolve_params(options_t *o, size_t b, uint64_t *param);

/* After every selected benchmark resolved its parameters: exits
 * EXIT_USAGE, saying why, if a --param matched none of them. */
void runner_check_overrides(const options_t *o);

/* "key=value key=value", as the table, the JSON and the CSV show them. */
void runner_format_params(const bench_t *b, const uint64_t *param, char *buf,
                          size_t cap);

/* --list: the selected benchmarks, their units and parameters, on stdout. */
void runner_list(const options_t *o);

/* --- The machine (runner_machine.c) -------------------------------------- */

typedef struct machine {
  char cpu[160];
  long cores;
  char kernel[200];
  char build_type[64];
  char sanitize[64];
  char date[32];
} machine_t;

/* Describes this machine and build; start is the session's start time. */
void runner_machine_probe(machine_t *m, time_t start);

/* Figures from a sanitizer build or an unoptimised library say nothing
 * about the runtime's speed; refuse them unless asked. Returns a reason,
 * or NULL if the build is fit to measure. */
const char *runner_build_unfit(void);

/* --- Running (runner_run.c) ---------------------------------------------- */

typedef struct result {
  const bench_t *bench;
  uint64_t param[BENCH_MAX_PARAMS];
  char params[256];
  unsigned done;   /* runs completed */
  double *value;   /* [runs] */
  double *seconds; /* [runs] */
  uint64_t *work;  /* [runs] */
  bool failed;
  unsigned failed_run; /* 1-based */
  char error[BENCH_ERR_MAX];
  double median, min, max;
} result_t;

/* One result per selected benchmark, parameters resolved (which exits on
 * a bad --param), room for o->runs runs. Returns the array with its length
 * in *n, or NULL (said why) when memory runs out. */
result_t *runner_results_new(options_t *o, size_t *n);

void runner_results_free(result_t *res, size_t n);

/* Runs every result's benchmark o->runs times, reporting progress, until
 * its first failed run. Returns 0, or EXIT_FAILED if a benchmark failed. */
int runner_run_all(const options_t *o, result_t *res, size_t n);

/* --- The terminal (runner_output.c) -------------------------------------- */

/* Progress lines update in place only when stderr is a terminal. */
void runner_progress_init(void);

void runner_progress_run(size_t idx, size_t total, const result_t *res,
                         unsigned run, unsigned runs);

void runner_progress_done(size_t idx, size_t total, const result_t *res);

/* The results table and the machine line. */
void runner_print_table(FILE *f, const result_t *res, size_t n,
                        const machine_t *m, const options_t *o,
                        unsigned workers);

/* r against its entry in the baseline (*entry: that entry, or NULL). */
bench_cmp_t runner_compare(const result_t *r, const bench_baseline_t *base,
                           const options_t *o,
                           const bench_base_entry_t **entry);

/* The comparison with --baseline, after the table. Returns true if a
 * benchmark is slower than its baseline by more than --fail-over. */
bool runner_print_comparison(FILE *f, const result_t *res, size_t n,
                             const bench_baseline_t *base,
                             const options_t *o);

/* --- Files (runner_files.c) ---------------------------------------------- */

/* Opens an output file for writing; exits EXIT_USAGE if it cannot. */
FILE *runner_open_output(const char *path, const char *what);

/* Closes f; wrote is the writer's return code. Returns 0, or -1 (said why)
 * if the write or the close failed. */
int runner_close_output(FILE *f, const char *path, int wrote);

/* --json. Returns 0, or -1 on a write error. */
int runner_write_json(FILE *f, const result_t *res, size_t n,
                      const machine_t *m, const options_t *o,
                      unsigned workers);

/* --csv: one row per run, and one per failure. Returns 0, or -1. */
int runner_write_csv(FILE *f, const result_t *res, size_t n);

/* --report: the charts and index.html. Returns 0, or -1 (said why). */
int runner_write_report(const result_t *res, size_t n, const machine_t *m,
                        const options_t *o, unsigned workers,
                        const bench_baseline_t *base);

/* --check-json: validates a results file against the selected benchmarks.
 * Returns 0, or EXIT_FAILED if the file is bad. */
int runner_check_json(const options_t *o);

#endif
