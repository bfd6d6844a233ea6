/*
 * replay: a main() for the fuzz harnesses where libFuzzer is absent (gcc,
 * CI's plain, ASan and TSan builds): feeds every file named on the command
 * line, and every file in every directory named (sorted by name, not
 * recursive), to LLVMFuzzerTestOneInput once, in order. A harness that
 * finds a problem aborts, so the exit status is the verdict; replay itself
 * fails (exit 2) only when a path cannot be read. An empty directory is
 * allowed (a harness with no regression inputs yet).
 *
 *   replay_fuzz_spec tests/fuzz/corpus/fuzz_spec tests/fuzz/regress/fuzz_spec
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long g_runs;

static int run_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 2;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if (nb == NULL) {
        free(buf);
        fclose(fp);
        return 2;
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, fp);
    len += got;
    if (got == 0)
      break;
  }
  fclose(fp);
  /* libFuzzer hands over an exact-size copy: do the same, so ASan sees a
   * read past the input */
  uint8_t *exact = malloc(len ? len : 1);
  if (exact == NULL) {
    free(buf);
    return 2;
  }
  memcpy(exact, buf, len);
  free(buf);
  if (getenv("REPLAY_VERBOSE") != NULL)
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  g_runs++;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open directory %s\n", dir);
    return 2;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue; /* ., .., and hidden files such as .gitkeep */
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *names);
      if (nn == NULL)
        break;
      names = nn;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof *names, cmp_names);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
      rc = run_file(path);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize(&argc, &argv);
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such path %s\n", argv[i]);
      rc = 2;
    } else if (S_ISDIR(st.st_mode)) {
      rc = run_dir(argv[i]);
    } else {
      rc = run_file(argv[i]);
    }
  }
  printf("replay: %lu inputs run\n", g_runs);
  return rc;
}
