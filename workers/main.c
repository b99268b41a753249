//  main.c - zmesh-worker: serves one service through a zmesh broker, or runs one pipeline stage
//  (--pipeline), with the built-in echo handler or an --exec program, or is one replica of the
//  replicated key-value service (--builtin kv --replicas N). It parses flags (with
//  ZMESH_* environment fallbacks), owns SIGINT/SIGTERM (they stop the worker; a second one
//  during shutdown kills the process), runs the library's worker loop or the stage and cleans
//  up the children. It never asserts on argv or the
//  environment: a bad value is a usage message and exit code 2.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo.h"
#include "exec.h"
#include "files.h"
#include "kv.h"
#include "stage.h"
#include "zm_log.h"
#include "zm_proto.h"
#include "zmesh.h"

//  Exit codes, as README.md gives them for all zmesh programs.
enum { S_EXIT_OK = 0, S_EXIT_FAILED = 1, S_EXIT_USAGE = 2, S_EXIT_DENIED = 6 };

#define S_CREDIT_DEFAULT 10         //  --credit of a stage

static const char s_usage[] =
    "usage: zmesh-worker --service NAME [--builtin echo | --exec CMD] [--threads N]\n"
    "                    [--idempotent] [--heartbeat-ms N] [--liveness N] [--broker EP]\n"
    "                    [--curve-secret FILE --broker-key KEY] [--verbose]\n"
    "       zmesh-worker --builtin files --root DIR [--service NAME] [--threads N] ...\n"
    "       zmesh-worker --builtin kv --replicas N [--quorum W] [--data-dir DIR]\n"
    "                    [--service NAME] [--heartbeat-ms N] [--liveness N] [--broker EP] ...\n"
    "       zmesh-worker --pipeline IN [--output OUT] [--builtin echo | --exec CMD]\n"
    "                    [--threads N] [--credit N] [--heartbeat-ms N] [--liveness N]\n"
    "                    [--broker EP] [--curve-secret FILE --broker-key KEY] [--verbose]\n"
    "\n"
    "Serves the service NAME through a zmesh broker, or runs a pipeline stage: takes each\n"
    "message of the pipeline IN, runs it through the handler and pushes the result into\n"
    "the pipeline OUT (or drops it without --output). A message is acknowledged only once\n"
    "its result is held by the broker, so a stage that dies loses nothing.\n"
    "\n"
    "Options:\n"
    "  --service NAME     the service to serve (default: $ZMESH_SERVICE)\n"
    "  --pipeline IN      run a stage consuming the pipeline IN instead (excludes --service)\n"
    "  --output OUT       push each result into the pipeline OUT (--pipeline only)\n"
    "  --credit N         messages each stage thread holds at once, 1..1000 (default 10)\n"
    "  --builtin echo     reply with the request, byte for byte (the default handler)\n"
    "  --builtin files    serve the files under --root DIR (service \"files\" by default):\n"
    "                     {\"op\": \"stat\"|\"list\"|\"read\", \"path\": P, \"offset\": N,\n"
    "                     \"length\": N}; a streamed read sends the bytes in chunks and ends\n"
    "                     with their size and SHA-1 (`zmesh get`). Paths are relative to DIR;\n"
    "                     absolute paths, '..' and symbolic links leading out are refused\n"
    "  --root DIR         the directory --builtin files serves\n"
    "  --builtin kv       one replica of a replicated key-value store (service \"kv\" by\n"
    "                     default): {\"op\": \"put\"|\"delete\"|\"cas\", \"key\": K, ...} are\n"
    "                     writes (`zmesh call kv JSON --write`), applied by every replica in\n"
    "                     the broker's order and answered once a quorum of them has;\n"
    "                     {\"op\": \"get\"|\"digest\", ...} are reads, answered by one replica\n"
    "                     (or through the quorum with --quorum)\n"
    "  --replicas N       the service's replication factor, 1..16, the same for every\n"
    "                     replica (default: $ZMESH_REPLICAS); --builtin kv only\n"
    "  --quorum W         replicas that must apply a write before it is answered, 1..N, or 0\n"
    "                     for a majority, N/2+1 (default: $ZMESH_QUORUM, else 0)\n"
    "  --data-dir DIR     keep the replica's state in DIR (created if missing; one replica\n"
    "                     per directory) so that a restart resumes from it; without it the\n"
    "                     state is in memory and a restart catches up from the other\n"
    "                     replicas (default: $ZMESH_DATA_DIR)\n"
    "  --exec CMD         run `/bin/sh -c CMD`, one child per request in progress, kept\n"
    "                     running across requests; each request (message) is written to\n"
    "                     its stdin as one JSON line and its next stdout line (JSON) is the\n"
    "                     reply (result). A child that exits or writes a line that is not\n"
    "                     JSON fails that request and is restarted; a stage does not\n"
    "                     acknowledge that message, which goes back to the pipeline. Its\n"
    "                     stderr is ours.\n"
    "  --threads N        requests handled at once, 1..1024 (default: $ZMESH_THREADS, else 1);\n"
    "                     a stage runs one consumer and one child per thread\n"
    "  --idempotent       the service's calls may run again on another worker if this one\n"
    "                     dies holding them, instead of failing with \"worker lost\"\n"
    "                     (default: on if $ZMESH_IDEMPOTENT is 1, else off)\n"
    "  --heartbeat-ms N   heartbeat interval, 100..60000 (default 1000)\n"
    "  --liveness N       silent intervals before the broker counts as dead, 2..100 (default 3)\n"
    "  --broker EP        broker endpoint, or a comma-separated list of brokers: each\n"
    "                     reconnection goes to the next one of the list\n"
    "                     (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    "  --curve-secret FILE  this worker's secret key file, from `zmesh keygen` (mode\n"
    "                     0600; default: $ZMESH_CURVE_SECRET); with --broker-key, every\n"
    "                     connection (a stage's consumers and producers too) is CURVE\n"
    "  --broker-key KEY   the broker's public key: 40 characters of Z85, or its key file\n"
    "                     (default: $ZMESH_BROKER_KEY); both or neither\n"
    "  --verbose          log every request\n"
    "  --help             show this help\n"
    "\n"
    "SIGINT or SIGTERM stops the worker (exit 0); a stage hands back what it holds. Exit\n"
    "codes: 0 stopped, 1 failed (for example refused by the broker), 2 usage (also a bad\n"
    "key file), 6 denied by the broker's access rules (this key may not serve the service,\n"
    "or consume IN, or push to OUT).\n";

//  The command line, after the environment fallbacks. Strings are borrowed from argv or environ.
typedef struct {
    const char *service;        //  --service, else $ZMESH_SERVICE without --pipeline; or NULL
    const char *pipeline;       //  --pipeline IN; NULL if not given
    const char *output;         //  --output OUT; NULL if not given
    const char *broker;         //  --broker, else $ZMESH_BROKER, else the default endpoint
    const char *builtin;        //  --builtin NAME; NULL if not given
    const char *exec;           //  --exec CMD; NULL if not given
    const char *curve_secret;   //  --curve-secret, else $ZMESH_CURVE_SECRET; NULL: no CURVE
    const char *broker_key;     //  --broker-key, else $ZMESH_BROKER_KEY; NULL: no CURVE
    const char *root;           //  --root DIR (--builtin files); NULL if not given
    const char *data_dir;       //  --data-dir, else $ZMESH_DATA_DIR (--builtin kv); NULL: memory
    int replicas;               //  --replicas, else $ZMESH_REPLICAS, 1..16; 0 if not given
    int quorum;                 //  --quorum, else $ZMESH_QUORUM, 0..replicas; -1 if not given
    int threads;                //  1..1024
    int credit;                 //  --credit, 1..1000; 0 if not given
    int heartbeat_ms;           //  0: the library's default
    int liveness;               //  0: the library's default
    bool idempotent;            //  --idempotent, or $ZMESH_IDEMPOTENT=1
    bool verbose;               //  --verbose
    bool help;                  //  --help or -h
    char error[256];            //  the first usage error; "" if none
} s_args_t;

//  What the signal handler needs. Set before the handlers are installed, cleared after they
//  are removed.
static zmesh_worker_t *volatile s_worker;
static zmesh_replica_t *volatile s_replica;
static zw_exec_t *volatile s_exec;
static zw_stage_t *volatile s_stage;
static volatile sig_atomic_t s_signal;      //  the signal that stopped us; 0 if none

static void
s_set_error(s_args_t *args, const char *format, const char *value)
{
    if (args->error[0] == '\0')             //  the first error is the one worth reporting
        snprintf(args->error, sizeof args->error, format, value);
}

//  Parses an integer in [min, max]: an optional sign, digits, nothing after them.
static bool
s_parse_int(const char *text, int min, int max, int *value_p)
{
    errno = 0;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || value < min || value > max)
        return false;
    *value_p = (int) value;
    return true;
}

//  A service a worker may register: a valid ZMP name outside the broker's own
//  "zmesh." prefix. Checked here so a typo is a usage error, not a refusal.
static bool
s_service_valid(const char *service)
{
    return zm_proto_valid_name(service, strlen(service)) && strncmp(service, "zmesh.", 6) != 0;
}

//  Applies one option that takes a value.
static void
s_apply(s_args_t *args, const char *name, const char *value)
{
    if (strcmp(name, "--service") == 0)
        args->service = value;
    else if (strcmp(name, "--pipeline") == 0)
        args->pipeline = value;
    else if (strcmp(name, "--output") == 0)
        args->output = value;
    else if (strcmp(name, "--credit") == 0) {
        if (!s_parse_int(value, 1, 1000, &args->credit))
            s_set_error(args, "--credit wants 1..1000, not '%s'", value);
    }
    else if (strcmp(name, "--broker") == 0 && value[0] == '\0')
        s_set_error(args, "option %s needs a non-empty endpoint", name);
    else if (strcmp(name, "--broker") == 0)
        args->broker = value;
    else if (strcmp(name, "--builtin") == 0)
        args->builtin = value;
    else if (strcmp(name, "--exec") == 0)
        args->exec = value;
    else if (strcmp(name, "--root") == 0)
        args->root = value;
    else if (strcmp(name, "--data-dir") == 0) {
        if (value[0] == '\0')
            s_set_error(args, "option %s needs a directory", name);
        args->data_dir = value;
    }
    else if (strcmp(name, "--replicas") == 0) {
        if (!s_parse_int(value, 1, ZM_REPLICAS_MAX, &args->replicas))
            s_set_error(args, "--replicas wants 1..16, not '%s'", value);
    }
    else if (strcmp(name, "--quorum") == 0) {
        if (!s_parse_int(value, 0, ZM_REPLICAS_MAX, &args->quorum))
            s_set_error(args, "--quorum wants 0..16 (0: a majority), not '%s'", value);
    }
    else if (strcmp(name, "--curve-secret") == 0 || strcmp(name, "--broker-key") == 0) {
        if (value[0] == '\0')
            s_set_error(args, "option %s needs a value", name);
        if (name[2] == 'c')
            args->curve_secret = value;
        else
            args->broker_key = value;
    }
    else if (strcmp(name, "--threads") == 0) {
        if (!s_parse_int(value, 1, 1024, &args->threads))
            s_set_error(args, "--threads wants 1..1024, not '%s'", value);
    }
    else if (strcmp(name, "--heartbeat-ms") == 0) {
        if (!s_parse_int(value, 100, 60000, &args->heartbeat_ms))
            s_set_error(args, "--heartbeat-ms wants 100..60000, not '%s'", value);
    }
    else if (!s_parse_int(value, 2, 100, &args->liveness))  //  --liveness, the last one
        s_set_error(args, "--liveness wants 2..100, not '%s'", value);
}

static bool
s_takes_value(const char *name)
{
    static const char *names[] = {"--service",  "--pipeline", "--output",       "--credit",
                                  "--broker",   "--builtin",  "--exec",         "--threads",
                                  "--heartbeat-ms", "--liveness", "--curve-secret",
                                  "--broker-key", "--root", "--data-dir", "--replicas",
                                  "--quorum"};
    for (size_t index = 0; index < sizeof names / sizeof names[0]; index++) {
        if (strcmp(name, names[index]) == 0)
            return true;
    }
    return false;
}

//  Parses options as `--name value` or `--name=value`. No positional arguments exist.
static void
s_parse_args(int argc, char **argv, s_args_t *args)
{
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        const char *equals = strchr(arg, '=');
        size_t name_size = equals ? (size_t) (equals - arg) : strlen(arg);
        char name[32];
        if (arg[0] != '-' || name_size >= sizeof name) {
            s_set_error(args, arg[0] == '-' ? "unknown option %s" : "unexpected argument '%s'",
                        arg);
            continue;
        }
        memcpy(name, arg, name_size);
        name[name_size] = '\0';
        const char *value = equals ? equals + 1 : NULL;
        bool flag = strcmp(name, "--verbose") == 0 || strcmp(name, "--help") == 0
                 || strcmp(name, "-h") == 0 || strcmp(name, "--idempotent") == 0;
        if (flag && value)
            s_set_error(args, "option %s takes no value", name);
        else if (flag && strcmp(name, "--verbose") == 0)
            args->verbose = true;
        else if (flag && strcmp(name, "--idempotent") == 0)
            args->idempotent = true;
        else if (flag)
            args->help = true;
        else if (!s_takes_value(name))
            s_set_error(args, "unknown option %s", name);
        else if (!value && index + 1 >= argc)
            s_set_error(args, "option %s needs a value", name);
        else
            s_apply(args, name, value ? value : argv[++index]);
    }
}

//  Checks the options of a stage (--pipeline).
static void
s_check_stage_args(s_args_t *args)
{
    if (args->service)
        s_set_error(args, "%s", "--service and --pipeline exclude each other");
    if (args->idempotent)
        s_set_error(args, "%s", "--idempotent is for a service, not a stage");
    if (!s_service_valid(args->pipeline))
        s_set_error(args, "bad pipeline name '%s' (1 to 255 printable ASCII bytes, no space, "
                          "not starting with zmesh.)", args->pipeline);
    if (args->output && !s_service_valid(args->output))
        s_set_error(args, "bad pipeline name '%s' (1 to 255 printable ASCII bytes, no space, "
                          "not starting with zmesh.)", args->output);
}

//  Takes the CURVE settings from the environment where no option gave them, and checks that
//  both or neither are set: one alone is a mistake that would silently talk in the clear.
static void
s_check_curve_args(s_args_t *args)
{
    const char *secret = getenv("ZMESH_CURVE_SECRET");
    const char *key = getenv("ZMESH_BROKER_KEY");
    if (!args->curve_secret && secret && secret[0])
        args->curve_secret = secret;
    if (!args->broker_key && key && key[0])
        args->broker_key = key;
    if (args->curve_secret && !args->broker_key)
        s_set_error(args, "%s", "--curve-secret (or ZMESH_CURVE_SECRET) needs --broker-key "
                                "(or ZMESH_BROKER_KEY) too: give both for CURVE, or neither");
    else if (args->broker_key && !args->curve_secret)
        s_set_error(args, "%s", "--broker-key (or ZMESH_BROKER_KEY) needs --curve-secret "
                                "(or ZMESH_CURVE_SECRET) too: give both for CURVE, or neither");
}

//  Checks the options of a replica (--builtin kv), taking the replication settings from the
//  environment where no option gave them; and that no other handler got them. The
//  environment is read only for a replica, so a shell that exports them for one does not
//  break the others. threads_flag, idempotent_flag: given on the command line.
static void
s_check_replica_args(s_args_t *args, bool threads_flag, bool idempotent_flag)
{
    bool kv = args->builtin && strcmp(args->builtin, "kv") == 0;
    if (!kv) {
        if (args->replicas)
            s_set_error(args, "%s", "--replicas is for --builtin kv");
        else if (args->quorum >= 0)
            s_set_error(args, "%s", "--quorum is for --builtin kv (with --replicas N)");
        else if (args->data_dir)
            s_set_error(args, "%s", "--data-dir is for --builtin kv (with --replicas N)");
        return;
    }
    const char *replicas = getenv("ZMESH_REPLICAS");
    const char *quorum = getenv("ZMESH_QUORUM");
    const char *data_dir = getenv("ZMESH_DATA_DIR");
    if (!args->replicas && replicas && replicas[0]
        && !s_parse_int(replicas, 1, ZM_REPLICAS_MAX, &args->replicas))
        s_set_error(args, "ZMESH_REPLICAS wants 1..16, not '%s'", replicas);
    if (args->quorum < 0 && quorum && quorum[0]
        && !s_parse_int(quorum, 0, ZM_REPLICAS_MAX, &args->quorum))
        s_set_error(args, "ZMESH_QUORUM wants 0..16 (0: a majority), not '%s'", quorum);
    if (!args->data_dir && data_dir && data_dir[0])
        args->data_dir = data_dir;
    if (!args->service && !args->pipeline)
        args->service = "kv";
    if (args->pipeline)
        s_set_error(args, "%s", "--builtin kv serves a service, not a stage");
    if (!args->replicas)
        s_set_error(args, "%s", "--builtin kv needs --replicas N (or ZMESH_REPLICAS): the "
                                "service's replication factor, the same for every replica");
    else if (args->quorum > args->replicas) {
        char text[16];
        snprintf(text, sizeof text, "%d", args->quorum);
        s_set_error(args, "--quorum (or ZMESH_QUORUM) wants 0..N, at most --replicas, not %s",
                    text);
    }
    if (threads_flag)
        s_set_error(args, "%s", "--threads is not for --builtin kv: a replica applies its "
                                "writes in one thread, in order");
    if (idempotent_flag)
        s_set_error(args, "%s", "--idempotent is not for --builtin kv: the broker runs a read "
                                "again on another replica by itself");
    if (args->quorum < 0)
        args->quorum = 0;
}

//  Fills in the environment fallbacks and checks what only the whole command line can tell.
static void
s_check_args(s_args_t *args)
{
    s_check_replica_args(args, args->threads != 0, args->idempotent);
    const char *threads = getenv("ZMESH_THREADS");
    if (args->threads == 0 && threads && threads[0]
        && !s_parse_int(threads, 1, 1024, &args->threads))
        s_set_error(args, "ZMESH_THREADS wants 1..1024, not '%s'", threads);
    if (args->threads == 0)
        args->threads = 1;
    const char *idempotent = getenv("ZMESH_IDEMPOTENT");
    //  A stage has no calls and a replica's reads are rerun anyway: the setting is for neither.
    bool worker = !args->pipeline && !(args->builtin && strcmp(args->builtin, "kv") == 0);
    if (!args->idempotent && worker && idempotent && idempotent[0]
        && strcmp(idempotent, "0") != 0) {
        if (strcmp(idempotent, "1") == 0)
            args->idempotent = true;
        else
            s_set_error(args, "ZMESH_IDEMPOTENT wants 0 or 1, not '%s'", idempotent);
    }
    if (args->pipeline)
        s_check_stage_args(args);
    else if (!args->service && args->builtin && strcmp(args->builtin, "files") == 0)
        args->service = "files";
    else if (!args->service)
        s_set_error(args, "%s", "missing --service NAME (or ZMESH_SERVICE) or --pipeline IN");
    else if (!s_service_valid(args->service))
        s_set_error(args, "bad service name '%s' (1 to 255 printable ASCII bytes, no space, "
                          "not starting with zmesh.)", args->service);
    if (!args->pipeline && args->output)
        s_set_error(args, "%s", "--output is for a stage: it needs --pipeline");
    if (!args->pipeline && args->credit)
        s_set_error(args, "%s", "--credit is for a stage: it needs --pipeline");
    if (args->builtin && args->exec)
        s_set_error(args, "%s", "--builtin and --exec exclude each other");
    bool files = args->builtin && strcmp(args->builtin, "files") == 0;
    bool kv = args->builtin && strcmp(args->builtin, "kv") == 0;
    if (args->builtin && strcmp(args->builtin, "echo") != 0 && !files && !kv)
        s_set_error(args, "unknown --builtin '%s' (there are: echo, files, kv)", args->builtin);
    if (files && !args->root)
        s_set_error(args, "%s", "--builtin files needs --root DIR");
    if (files && args->pipeline)
        s_set_error(args, "%s", "--builtin files serves a service, not a stage");
    if (args->root && !files)
        s_set_error(args, "%s", "--root is for --builtin files");
    if (args->root && args->root[0] == '\0')
        s_set_error(args, "%s", "--root needs a directory");
    if (args->exec && args->exec[0] == '\0')
        s_set_error(args, "%s", "--exec needs a command");
    s_check_curve_args(args);
}

static void
s_on_signal(int signal_number)
{
    if (s_signal != 0) {
        //  A second signal while stopping: the user insists, die the default way.
        signal(signal_number, SIG_DFL);
        raise(signal_number);
        return;
    }
    int saved_errno = errno;
    s_signal = signal_number;
    if (s_exec)
        zw_exec_stop(s_exec);
    if (s_worker)
        zmesh_worker_stop(s_worker);
    if (s_replica)
        zmesh_replica_stop(s_replica);
    if (s_stage)
        zw_stage_stop(s_stage);
    errno = saved_errno;
}

static void
s_handle_signals(void (*handler)(int))
{
    struct sigaction action = {.sa_handler = handler};
    sigemptyset(&action.sa_mask);
    //  No SA_RESTART: a blocking poll in the worker loop should wake up and see the stop.
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

//  Opens /dev/null on any of fds 0..2 that is closed, so that a pipe made later cannot land on
//  them: a child's stdin pipe numbered 0 would lose its dup2 and close-on-exec at once.
static void
s_ensure_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) != fd)
            exit(S_EXIT_FAILED);
    }
}

//  Writes text as a log value: in double quotes, with '"' and '\' escaped, control bytes as
//  '?', cut at the buffer's size, so one value can never break a log line into two.
static const char *
s_quote(const char *text, char *buffer, size_t size)
{
    size_t used = 0;
    buffer[used++] = '"';
    for (; *text && used + 4 < size; text++) {
        unsigned char byte = (unsigned char) *text;
        if (byte == '"' || byte == '\\')
            buffer[used++] = '\\';
        buffer[used++] = byte < 0x20 || byte == 0x7f ? '?' : (char) byte;
    }
    buffer[used++] = '"';
    buffer[used] = '\0';
    return buffer;
}

//  The handler the library calls: the chosen one, plus a debug line per request.
typedef struct {
    zmesh_handler_fn *handler;  //  zw_echo_handler or zw_exec_handler
    void *arg;                  //  borrowed: its argument
} s_dispatch_t;

static int
s_handle(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    const s_dispatch_t *dispatch = arg;
    int rc = dispatch->handler(request, reply_p, dispatch->arg);
    zm_log_debug("zmesh-worker: request bytes=%zu reply_bytes=%zu ok=%s",
                 zmesh_msg_size(request), *reply_p ? zmesh_msg_size(*reply_p) : 0,
                 rc == ZMESH_OK ? "yes" : "no");
    return rc;
}

static void
s_log_outcome(const s_args_t *args, const char *error, int rc)
{
    if (rc == ZMESH_OK) {
        const char *how = s_signal == SIGINT ? "SIGINT" : s_signal == SIGTERM ? "SIGTERM" : "stop";
        zm_log_info("zmesh-worker: stopped service=%s by=%s", args->service, how);
        return;
    }
    char detail[300];
    zm_log_error("zmesh-worker: failed service=%s broker=%s error=\"%s\" detail=%s",
                 args->service, args->broker, zmesh_strerror(rc),
                 s_quote(error, detail, sizeof detail));
}

//  The exit code for what the worker loop or the stage returned.
static int
s_exit_code(int rc)
{
    if (rc == ZMESH_EINVAL)
        return S_EXIT_USAGE;        //  the library could not use --broker
    if (rc == ZMESH_EDENIED)
        return S_EXIT_DENIED;
    return rc == ZMESH_OK ? S_EXIT_OK : S_EXIT_FAILED;
}

//  Creates the worker, serves until stopped, and cleans up. Returns the exit code.
static int
s_serve(const s_args_t *args, const zmesh_curve_t *curve)
{
    int err = ZMESH_OK;
    zmesh_worker_t *worker = zmesh_worker_new_secure(args->broker, args->service, curve, &err);
    if (!worker) {
        zm_log_error("zmesh-worker: failed service=%s broker=%s error=\"%s\"", args->service,
                     args->broker, zmesh_strerror(err));
        return err == ZMESH_EINVAL ? S_EXIT_USAGE : S_EXIT_FAILED;
    }
    zmesh_worker_set_threads(worker, args->threads);
    zmesh_worker_set_idempotent(worker, args->idempotent);
    if (args->heartbeat_ms || args->liveness)
        zmesh_worker_set_heartbeat(worker, args->heartbeat_ms ? args->heartbeat_ms : 1000,
                                   args->liveness ? args->liveness : 3);
    zw_files_t *files = NULL;
    if (args->root) {
        char error[PATH_MAX + 128];
        files = zw_files_new(args->root, error, sizeof error);
        if (!files) {
            zm_log_error("zmesh-worker: %s", error);
            zmesh_worker_destroy(&worker);
            return S_EXIT_USAGE;
        }
    }
    zw_exec_t *bridge = args->exec ? zw_exec_new(args->exec) : NULL;
    s_dispatch_t dispatch = {bridge ? zw_exec_handler : zw_echo_handler, bridge};
    if (files) {
        dispatch.handler = zw_files_handler;
        dispatch.arg = files;
    }
    s_worker = worker;
    s_exec = bridge;
    s_handle_signals(s_on_signal);
    char command[300] = "";
    if (bridge)
        s_quote(args->exec, command, sizeof command);
    zm_log_info("zmesh-worker: started service=%s threads=%d idempotent=%s broker=%s "
                "handler=%s%s%s", args->service, args->threads, args->idempotent ? "yes" : "no",
                args->broker, bridge ? "exec" : files ? "files" : "echo",
                bridge ? " command=" : "", command);
    int rc = zmesh_worker_run(worker, s_handle, &dispatch);
    s_handle_signals(SIG_DFL);      //  from here on, a signal ends the cleanup at once
    if (bridge)
        zw_exec_stop(bridge);       //  also when run failed: no handler may wait on a child
    s_worker = NULL;
    s_exec = NULL;
    s_log_outcome(args, zmesh_worker_error(worker), rc);
    zmesh_worker_destroy(&worker);  //  first: no handler may run while the children go
    zw_exec_destroy(&bridge);
    zw_files_destroy(&files);
    return s_exit_code(rc);
}

//  The kv state machine as the replica drives it, plus a debug line per request.
static int
s_kv_handle(void *arg, bool write, const void *body, size_t size, zmesh_msg_t **reply_p)
{
    int rc = zw_kv_handle(arg, write, body, size, reply_p);
    zm_log_debug("zmesh-worker: %s bytes=%zu reply_bytes=%zu ok=%s", write ? "write" : "read",
                 size, *reply_p ? zmesh_msg_size(*reply_p) : 0, rc == ZMESH_OK ? "yes" : "no");
    return rc;
}

static void
s_kv_snapshot(void *arg, void **data_p, size_t *size_p)
{
    zw_kv_snapshot(arg, data_p, size_p);
}

static bool
s_kv_restore(void *arg, const void *data, size_t size)
{
    return zw_kv_restore(arg, data, size);
}

//  Runs one replica of the kv service until stopped, and cleans up. Returns the exit code.
static int
s_serve_replica(const s_args_t *args, const zmesh_curve_t *curve)
{
    zw_kv_t *kv = zw_kv_new();
    zmesh_state_t state = {s_kv_handle, s_kv_snapshot, s_kv_restore, kv};
    int err = ZMESH_OK;
    zmesh_replica_t *replica = zmesh_replica_new_secure(args->broker, args->service, &state,
                                                        args->replicas, args->quorum,
                                                        args->data_dir, curve, &err);
    if (!replica) {
        //  The library logged why a data directory cannot be used.
        zm_log_error("zmesh-worker: failed service=%s broker=%s error=\"%s\"", args->service,
                     args->broker, zmesh_strerror(err));
        zw_kv_destroy(&kv);
        return err == ZMESH_EINVAL ? S_EXIT_USAGE : S_EXIT_FAILED;
    }
    if (args->heartbeat_ms || args->liveness)
        zmesh_replica_set_heartbeat(replica, args->heartbeat_ms ? args->heartbeat_ms : 1000,
                                    args->liveness ? args->liveness : 3);
    s_replica = replica;
    s_handle_signals(s_on_signal);
    char dir[300] = "";
    if (args->data_dir)
        s_quote(args->data_dir, dir, sizeof dir);
    zm_log_info("zmesh-worker: started service=%s handler=kv replicas=%d quorum=%d broker=%s "
                "data_dir=%s", args->service, args->replicas, args->quorum, args->broker,
                args->data_dir ? dir : "(none)");
    int rc = zmesh_replica_run(replica);
    s_handle_signals(SIG_DFL);
    s_replica = NULL;
    s_log_outcome(args, zmesh_replica_error(replica), rc);
    zmesh_replica_destroy(&replica);
    zw_kv_destroy(&kv);
    return s_exit_code(rc);
}

//  A stage's stop hook: children that do not answer are abandoned after a grace.
static void
s_exec_stop(void *arg)
{
    zw_exec_stop(arg);
}

//  Runs a pipeline stage until stopped, and cleans up. Returns the exit code.
static int
s_run_stage(const s_args_t *args, const zmesh_curve_t *curve)
{
    zw_exec_t *bridge = args->exec ? zw_exec_new(args->exec) : NULL;
    s_dispatch_t dispatch = {bridge ? zw_exec_handler : zw_echo_handler, bridge};
    zw_stage_config_t config = {
        .broker = args->broker,
        .curve = curve,
        .input = args->pipeline,
        .output = args->output,
        .threads = args->threads,
        .credit = args->credit ? args->credit : S_CREDIT_DEFAULT,
        .heartbeat_ms = args->heartbeat_ms,
        .liveness = args->liveness,
        .stop = bridge ? s_exec_stop : NULL,
        .stop_arg = bridge,
    };
    zw_stage_t *stage = zw_stage_new(&config, s_handle, &dispatch);
    s_stage = stage;
    s_exec = bridge;
    s_handle_signals(s_on_signal);
    char command[300] = "";
    if (bridge)
        s_quote(args->exec, command, sizeof command);
    zm_log_info("zmesh-worker: started pipeline=%s output=%s threads=%d credit=%d broker=%s "
                "handler=%s%s%s", args->pipeline, args->output ? args->output : "(none)",
                args->threads, config.credit, args->broker, bridge ? "exec" : "echo",
                bridge ? " command=" : "", command);
    int rc = zw_stage_run(stage);
    s_handle_signals(SIG_DFL);      //  from here on, a signal ends the cleanup at once
    s_stage = NULL;
    s_exec = NULL;
    char detail[300];
    if (rc == ZMESH_OK)
        zm_log_info("zmesh-worker: stopped pipeline=%s by=%s", args->pipeline,
                    s_signal == SIGINT ? "SIGINT" : s_signal == SIGTERM ? "SIGTERM" : "stop");
    else
        zm_log_error("zmesh-worker: failed pipeline=%s broker=%s error=%s", args->pipeline,
                     args->broker, s_quote(zw_stage_error(stage), detail, sizeof detail));
    zw_stage_destroy(&stage);       //  every lane has ended: no handler runs any more
    zw_exec_destroy(&bridge);
    return s_exit_code(rc);
}

int
main(int argc, char **argv)
{
    //  We own SIGINT/SIGTERM: they must reach zmesh_worker_stop and the --exec bridge, and
    //  CZMQ would otherwise install handlers of its own that only set a flag of its own.
    bool sighandler_set = getenv("ZSYS_SIGHANDLER") != NULL;
    setenv("ZSYS_SIGHANDLER", "false", 0);
    s_args_t args = {.broker = ZMESH_DEFAULT_ENDPOINT, .quorum = -1};
    const char *env_broker = getenv("ZMESH_BROKER");
    const char *env_service = getenv("ZMESH_SERVICE");
    if (env_broker && env_broker[0])
        args.broker = env_broker;
    s_parse_args(argc, argv, &args);
    if (!args.service && !args.pipeline && env_service && env_service[0])
        args.service = env_service;     //  a fallback for a service worker, not for a stage
    if (args.help) {
        fputs(s_usage, stdout);
        return S_EXIT_OK;
    }
    s_check_args(&args);
    if (args.error[0]) {
        fprintf(stderr, "zmesh-worker: %s\n\n%s", args.error, s_usage);
        return S_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);       //  a dead child's pipe is an EPIPE we report, not our death
    s_ensure_std_fds();
    zm_log_init("zmesh-worker", args.verbose);  //  runs zsys_init, the one reader of it
    if (!sighandler_set)
        unsetenv("ZSYS_SIGHANDLER");    //  not for our --exec children to inherit
    zmesh_curve_t *curve = NULL;
    if (args.curve_secret) {
        curve = zmesh_curve_new(args.curve_secret, args.broker_key, NULL);
        if (!curve) {
            fprintf(stderr, "zmesh-worker: %s\n", zmesh_curve_error());
            return S_EXIT_USAGE;    //  a key file the user named is unusable: bad input
        }
        zm_log_info("zmesh-worker: CURVE on key=%s", zmesh_curve_public_key(curve));
    }
    int exit_code = args.pipeline  ? s_run_stage(&args, curve)
                    : args.replicas ? s_serve_replica(&args, curve)
                                    : s_serve(&args, curve);
    zmesh_curve_destroy(&curve);
    return exit_code;
}
