/* tfmc.c: the `tfmc` command, a thin client of libtfmc (include/tfmc.h). It parses the command
 * line, prints diagnostics and picks the exit status: 0 success, 1 bad input or compile error,
 * 2 wrong usage. */
#include <stdlib.h>
#include <string.h>

#include "tfmc.h"
#include "tfmc_config.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, MAX_TOKENS = 4096 };

static const char usage_main[] =
    "usage: tfmc COMMAND [ARGS]   or   tfmc FILE -o OUT.c [-p NAME]\n"
    "\n"
    "tfmc compiles .tfm programs (RASP programs and transformer model declarations).\n"
    "\n"
    "commands:\n"
    "  eval FILE [-p NAME] [--trace] [TOKEN...]  run a RASP program in the reference interpreter\n"
    "  check FILE                                parse and check a file, report every error\n"
    "  help [COMMAND]                            show help for a command\n"
    "\n"
    "options:\n"
    "  -h, --help      show this help\n"
    "  -V, --version   print the version\n"
    "\n"
    "With TOKENs on the command line the input is that one sequence; with none, each line of\n"
    "standard input is one sequence of whitespace-separated tokens. Exit status: 0 on success,\n"
    "1 on bad input or a compile error, 2 on wrong usage.\n";

static const char usage_eval[] =
    "usage: tfmc eval FILE [-p NAME] [--trace] [--] [TOKEN...]\n"
    "\n"
    "Run the RASP program NAME of FILE (optional when FILE holds one program) in the reference\n"
    "interpreter, which has exactly Tracr's semantics. Each input sequence gives one output line:\n"
    "its values separated by spaces, `_` for an undefined value.\n"
    "\n"
    "  -p, --program NAME  the program to run\n"
    "  --trace             print every named SOp's values, aligned in columns, for each input\n"
    "  --                  end of options: what follows are tokens (for tokens starting with `-`)\n"
    "\n"
    "With TOKENs the input is that one sequence; with none, each line of standard input is one\n"
    "sequence. A bad line (unknown token, too long, empty) gives an empty output line, one error\n"
    "line on standard error naming the input line, and exit status 1 at the end.\n";

static const char usage_check[] =
    "usage: tfmc check FILE\n"
    "\n"
    "Parse and check FILE and report every error, caret-style. Prints nothing and exits 0 when\n"
    "the file is correct.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tfmc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see `tfmc --help`)\n");
    return EXIT_USAGE;
}

/* Load FILE and report its diagnostics; NULL (with the exit status in *status) on failure. */
static TfmcContext *load(const char *path, int *status)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "tfmc: out of memory\n");
        *status = EXIT_INPUT;
        return NULL;
    }
    TfmcStatus st = tfmc_load_file(ctx, path);
    if (st != TFMC_OK) {
        if (st == TFMC_ERR_NOMEM) fprintf(stderr, "tfmc: out of memory\n");
        tfmc_print_diagnostics(ctx, stderr);
        tfmc_context_free(ctx);
        *status = EXIT_INPUT;
        return NULL;
    }
    return ctx;
}

static int cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_check, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("check: unknown option `%s`", argv[i]);
        if (file) return usage_error("check: more than one file given (`%s`)", argv[i]);
        file = argv[i];
    }
    if (!file) return usage_error("check: no FILE given%s", "");
    int status = 0;
    TfmcContext *ctx = load(file, &status);
    if (!ctx) return status;
    tfmc_context_free(ctx);
    return 0;
}

/* Evaluate one sequence and print its line (and the trace); returns false on a bad input. */
static bool eval_one(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, bool trace)
{
    TfmcValue out[MAX_TOKENS];
    if (tfmc_eval(ctx, p, tokens, n, out) != TFMC_OK) return false;
    if (trace) tfmc_eval_trace(ctx, p, tokens, n, stdout);
    tfmc_print_values(stdout, out, n);
    return true;
}

static int cmd_eval(int argc, char **argv)
{
    const char *file = NULL, *name = NULL;
    bool trace = false;
    char **words = malloc(sizeof(char *) * (size_t)(argc + 1));
    size_t nwords = 0;
    bool options_done = false;
    int status = 0;
    if (!words) return EXIT_INPUT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        /* A word that starts with `-` and a digit is a token (negative integers), not an option. */
        bool option = !options_done && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9');
        if (option && !strcmp(a, "--")) {
            options_done = true;
        } else if (option && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            fputs(usage_eval, stdout);
            free(words);
            return 0;
        } else if (option && (!strcmp(a, "-p") || !strcmp(a, "--program"))) {
            if (i + 1 >= argc) {
                free(words);
                return usage_error("eval: `%s` needs a program name", a);
            }
            name = argv[++i];
        } else if (option && !strncmp(a, "--program=", 10)) {
            name = a + 10;
        } else if (option && !strcmp(a, "--trace")) {
            trace = true;
        } else if (option) {
            free(words);
            return usage_error("eval: unknown option `%s`", a);
        } else if (!file) {
            file = a;
        } else {
            words[nwords++] = argv[i];
        }
    }
    if (!file) {
        free(words);
        return usage_error("eval: no FILE given%s", "");
    }
    TfmcContext *ctx = load(file, &status);
    if (!ctx) {
        free(words);
        return status;
    }
    const TfmcProgram *p;
    if (tfmc_find_program(ctx, name, &p) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    if (tfmc_program_kind(p) != TFMC_PROGRAM_RASP) {
        fprintf(stderr, "tfmc: eval: `%s` is a model declaration; eval runs RASP programs\n", tfmc_program_name(p));
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    TfmcValue tokens[MAX_TOKENS];
    char err[512];
    if (nwords > 0) {
        if (tfmc_parse_words(p, words, nwords, tokens, MAX_TOKENS, err, sizeof err) != TFMC_OK) {
            fputc('\n', stdout);
            fprintf(stderr, "tfmc: input: %s\n", err);
            status = EXIT_INPUT;
        } else {
            eval_one(ctx, p, tokens, nwords, trace);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        for (long lineno = 1; (len = getline(&line, &cap, stdin)) >= 0; lineno++) {
            size_t n;
            if (strlen(line) != (size_t)len) {
                fputc('\n', stdout);
                fprintf(stderr, "tfmc: input line %ld: the line contains a NUL byte\n", lineno);
                status = EXIT_INPUT;
                continue;
            }
            if (tfmc_parse_tokens(p, line, tokens, MAX_TOKENS, &n, err, sizeof err) != TFMC_OK) {
                fputc('\n', stdout);
                fflush(stdout);
                fprintf(stderr, "tfmc: input line %ld: %s\n", lineno, err);
                status = EXIT_INPUT;
                continue;
            }
            eval_one(ctx, p, tokens, n, trace);
        }
        free(line);
    }
    tfmc_context_free(ctx);
    free(words);
    return status;
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(argv[0], "eval")) fputs(usage_eval, stdout);
    else if (!strcmp(argv[0], "check")) fputs(usage_check, stdout);
    else return usage_error("help: unknown command `%s`", argv[0]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("tfmc %s\n", tfmc_version());
        return 0;
    }
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "help")) return cmd_help(argc - 2, argv + 2);
    if (cmd[0] == '-') return usage_error("unknown option `%s`", cmd);
    if (!strcmp(cmd, "run") || !strcmp(cmd, "config") || !strcmp(cmd, "verify")) {
        fprintf(stderr, "tfmc: `%s` is not available in this version yet (see `tfmc --help`)\n", cmd);
        return EXIT_USAGE;
    }
    if (strchr(cmd, '.') || strchr(cmd, '/')) {
        fprintf(stderr, "tfmc: compiling to C (`tfmc FILE -o OUT.c`) is not available in this version yet\n");
        return EXIT_USAGE;
    }
    return usage_error("unknown command `%s`", cmd);
}
