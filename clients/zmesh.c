//  zmesh.c - the `zmesh` scripting CLI: parses the command line (global options may come before
//  or after the subcommand), prints help and version, loads the CURVE keys, and dispatches to
//  `call`, `status`, `push`, `pull`, `keygen` or `bench`.
//  It only reads argv and the environment; it never asserts on them: every bad flag or argument
//  is a usage message on stderr and exit code 2.
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zm_proto.h"

//  The CURVE options, the same for every command that talks to a broker.
#define S_CURVE_OPTIONS                                                                       \
    "  --curve-secret FILE  this client's secret key file, from `zmesh keygen` (mode 0600;\n" \
    "                 default: $ZMESH_CURVE_SECRET); with --broker-key, talk CURVE\n"          \
    "  --broker-key KEY     the broker's public key: 40 characters of Z85, or its key\n"     \
    "                 file (default: $ZMESH_BROKER_KEY); both or neither\n"

static const char s_usage_main[] =
    "usage: zmesh [--broker EP] COMMAND [ARGS...]\n"
    "       zmesh --help | --version\n"
    "\n"
    "Commands:\n"
    "  call SERVICE [JSON]   call a service, print the reply as one JSON line\n"
    "  get PATH              fetch a file from a files service (zmesh-worker --builtin files)\n"
    "  push PIPELINE         send each stdin line (JSON) into a pipeline\n"
    "  pull PIPELINE         print each message of a pipeline as one JSON line\n"
    "  status                show the broker's services, pipelines, workers and counters\n"
    "  keygen NAME           make a CURVE key pair (NAME.key, NAME.key_secret) and its rights\n"
    "  bench call SERVICE    measure calls through the broker: calls/s and latency\n"
    "  bench push PIPELINE   measure pushes into a pipeline: messages/s\n"
    "\n"
    "Global options (before or after the command):\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    "  --timeout MS   how long to wait for each reply (default 5000; push and pull:\n"
    "                 no limit)\n"
    S_CURVE_OPTIONS
    "  --help, -h     show help (`zmesh COMMAND --help` for a command)\n"
    "  --version      print the version\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (handler error, worker lost, protocol), 2 usage or bad JSON\n"
    "(also a bad key file), 3 timeout or broker unreachable, 4 no such service, 5 busy,\n"
    "6 denied by the broker's access rules.\n";

static const char s_usage_call[] =
    "usage: zmesh call SERVICE [JSON] [--write | --quorum] [--timeout MS] [--retries N]\n"
    "                  [--broker EP]\n"
    "       zmesh call --stream SERVICE JSON [--window N] [--timeout MS] [--broker EP]\n"
    "\n"
    "Converts JSON to MessagePack, calls SERVICE through the broker and prints the reply\n"
    "as one compact JSON line on stdout.\n"
    "\n"
    "Without JSON, reads one JSON request per line from stdin (blank lines are skipped)\n"
    "and prints one reply line per request, in input order. Up to 32 calls are kept in\n"
    "flight when input is ready. The first failed line stops the command: the replies\n"
    "before it are printed, the error goes to stderr and sets the exit code; lines after\n"
    "it that were already sent may still have run on the service.\n"
    "\n"
    "With --stream, asks for a streamed reply: prints each part the worker sends as one\n"
    "JSON line as it arrives, then the final reply as the last line. The worker sends\n"
    "only as fast as they are printed (credit flows back as parts are read).\n"
    "\n"
    "With --write, each request is a write to a replicated service (zmesh-worker\n"
    "--replicas N): the broker puts it in the order of the service's writes, every\n"
    "replica applies it, and the reply comes once the service's quorum of replicas\n"
    "applied it. A plain call to such a service reads one replica, which may not have\n"
    "applied the latest acknowledged writes yet; with --quorum, the read is ordered\n"
    "with the writes and sees every write acknowledged before it. Other services\n"
    "ignore both. A write's request id is its write id: the replicas apply a write\n"
    "resent by --retries once, and answer the copy with the first answer.\n"
    "\n"
    "Options:\n"
    "  --write        a write to a replicated service (not with --stream or --quorum)\n"
    "  --quorum       a quorum read of a replicated service (not with --stream)\n"
    "  --stream       a streamed call (needs the JSON argument; no --retries)\n"
    "  --window N     with --stream: parts in flight at most, 1..1024 (default 16)\n"
    "  --timeout MS   give up on a call after MS milliseconds (default 5000); with\n"
    "                 --stream, when no part came for MS milliseconds\n"
    "  --retries N    resend a call that got no answer up to N times, 0..100 (default 0),\n"
    "                 with the same request id; the timeout is shared between the\n"
    "                 attempts. A broker still holding the call ignores the copy; a copy\n"
    "                 reaching another broker, or one after a reconnection, runs again:\n"
    "                 use it for services that are safe to call twice, and with --write\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers, used one at a\n"
    "                 time: the next when the current one does not answer\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Errors print `zmesh: call SERVICE: <error>: <detail>` on stderr. Exit codes: 0 ok,\n"
    "1 handler error/worker lost/protocol, 2 usage or bad JSON, 3 timeout or broker\n"
    "unreachable, 4 no such service, 5 busy, 6 denied (this key may not call SERVICE).\n";

static const char s_usage_get[] =
    "usage: zmesh get PATH [--output FILE] [--service NAME] [--window N] [--timeout MS]\n"
    "                 [--progress] [--broker EP]\n"
    "\n"
    "Fetches the file PATH (relative to the worker's --root) from a files service\n"
    "(`zmesh-worker --builtin files --root DIR`) through the broker, as a stream of chunks\n"
    "that the worker sends only as fast as they are written, so memory stays flat on\n"
    "every side whatever the file's size. The bytes go to FILE.part; once the worker's\n"
    "byte count and SHA-1 match what was written, FILE.part is renamed to FILE. A fetch\n"
    "that fails (worker lost, timeout, checksum mismatch) leaves no FILE and exits non-zero.\n"
    "A progress bar goes to stderr when it is a terminal.\n"
    "\n"
    "Options:\n"
    "  --output FILE  where to write (default: the last part of PATH, in the current\n"
    "                 directory; - for stdout, which is written as the bytes come)\n"
    "  --service NAME the files service (default files)\n"
    "  --window N     chunks in flight at most, 1..1024 (default 16; chunks are 256 KiB)\n"
    "  --timeout MS   give up when no chunk came for MS milliseconds (default 5000)\n"
    "  --progress     progress lines on stderr even when it is not a terminal\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Errors print `zmesh: get PATH: <error>: <detail>` on stderr. Exit codes: 0 ok (the\n"
    "checksum matched), 1 failed (no such file, path refused, worker lost, checksum\n"
    "mismatch, write error), 2 usage, 3 timeout or broker unreachable, 4 no files\n"
    "service, 6 denied.\n";

static const char s_usage_status[] =
    "usage: zmesh status [--json] [--timeout MS] [--broker EP]\n"
    "\n"
    "Asks the broker for its state (the reserved service zmesh.status) and prints it as\n"
    "tables: services, pipelines, workers, replicated services (one table each: its\n"
    "replicas, quorum, epoch, last sequence number and the last answered, then each\n"
    "replica's state, last write applied and lag behind the last) and every counter.\n"
    "\n"
    "Options:\n"
    "  --json         print the broker's reply as one JSON line instead\n"
    "  --timeout MS   how long to wait for the reply (default 5000)\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 timeout or broker unreachable, 6 denied (with\n"
    "CURVE, only a key made with --admin may ask).\n";

static const char s_usage_push[] =
    "usage: zmesh push PIPELINE [--raw] [--mode queued|accepted|processed] [--window N]\n"
    "                  [--timeout MS] [--broker EP]\n"
    "\n"
    "Sends one message into PIPELINE per stdin line: each line is one JSON value, sent as\n"
    "MessagePack (blank lines are skipped). With --raw, stdin is a stream of MessagePack\n"
    "objects one after the other, each sent as it is.\n"
    "\n"
    "A full pipeline slows push down to its consumers' pace; nothing is dropped. Exit 0\n"
    "means the broker accepted every message. A bad line (or a bad or cut-off --raw\n"
    "object) stops the command with exit 2 and its line number (byte offset) on stderr,\n"
    "once the lines before it are accepted. So does a message the broker refuses (over\n"
    "its size limit); in queued mode, lines after it may have been sent already.\n"
    "\n"
    "Options:\n"
    "  --raw          read MessagePack instead of JSON lines\n"
    "  --mode M       when a message counts as sent (schemas/ZMP.md section 16.8):\n"
    "                 queued (default): sent without waiting, many in flight; push\n"
    "                 waits for the broker to accept them all before it exits\n"
    "                 accepted: one at a time, each once the broker holds it\n"
    "                 processed: one at a time, each once a consumer acknowledged it\n"
    "  --window N     messages in flight not yet accepted, 1..100000 (default 1000)\n"
    "  --timeout MS   give up when the broker has not taken a message, or the messages\n"
    "                 sent, within MS milliseconds (default: wait as long as it takes)\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Errors print `zmesh: push PIPELINE: <error>: <detail>` on stderr. Exit codes: 0 ok,\n"
    "1 failed (a consumer was lost in processed mode, protocol), 2 usage or bad input,\n"
    "3 timeout, 5 busy (the pipeline stayed full for --timeout), 6 denied (this key may\n"
    "not push to PIPELINE).\n";

static const char s_usage_pull[] =
    "usage: zmesh pull PIPELINE [--count N] [--credit N] [--timeout MS] [--meta]\n"
    "                  [--broker EP]\n"
    "\n"
    "Takes messages from PIPELINE and prints each as one compact JSON line on stdout, then\n"
    "acknowledges it: a message is acknowledged only once its line is written, so one that\n"
    "pull could not print goes to another consumer. SIGINT or SIGTERM stops pull cleanly:\n"
    "the messages it holds go back to the pipeline.\n"
    "\n"
    "Options:\n"
    "  --count N      exit after N messages (default: run until stopped)\n"
    "  --credit N     messages held at once, 1..1000 (default 100; at most N with --count)\n"
    "  --timeout MS   exit 3 when no message came for MS milliseconds (default: wait)\n"
    "  --meta         print {\"id\":..,\"attempt\":..,\"redelivered\":..,\"body\":..} per\n"
    "                 message; attempt > 1 (redelivered) means it may have been seen before\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Exit codes: 0 ok (or stopped by a signal without --count), 1 failed (refused by the\n"
    "broker, a message with no JSON form, stdout closed, stopped before --count), 2 usage,\n"
    "3 timeout, 6 denied (this key may not pull from PIPELINE).\n";

static const char s_usage_keygen[] =
    "usage: zmesh keygen NAME [--dir DIR] [--serve LIST] [--call LIST] [--push LIST]\n"
    "                    [--pull LIST] [--admin] [--force]\n"
    "\n"
    "Makes a CURVE key pair for a broker, worker or client: DIR/NAME.key holds the public\n"
    "key and the rights below, DIR/NAME.key_secret the secret key too (mode 0600: keep it\n"
    "private). Prints the public key and both paths. To let the key in, copy NAME.key into\n"
    "the keys directory of the broker (zmesh-broker --curve-keys DIR). The broker's own key\n"
    "pair is made the same way (`zmesh keygen broker`); its rights are not used.\n"
    "\n"
    "A key has only the rights given here; one made without any may connect and nothing\n"
    "more. LIST is a comma-separated list of fnmatch(3) patterns, such as echo,kv or jobs.*\n"
    "or * (quote it for the shell); patterns never match the reserved zmesh.* names.\n"
    "\n"
    "Options:\n"
    "  --dir DIR      where to write the files (default: the current directory; made if\n"
    "                 missing)\n"
    "  --serve LIST   services it may serve as a worker\n"
    "  --call LIST    services it may call\n"
    "  --push LIST    pipelines it may push to\n"
    "  --pull LIST    pipelines it may consume\n"
    "  --admin        it may call the broker's management service (zmesh status)\n"
    "  --force        replace existing files (else refused)\n"
    "\n"
    "NAME is 1 to 64 letters, digits and . _ - @ + (not starting with a dot). Exit codes:\n"
    "0 ok, 1 failed (a file exists without --force, a write failed), 2 usage.\n";

static const char s_usage_bench[] =
    "usage: zmesh bench call SERVICE [--count N | --duration SEC] [--inflight K]\n"
    "                  [--size BYTES] [--timeout MS] [--json] [--progress] [--broker EP]\n"
    "       zmesh bench push PIPELINE [--count N | --duration SEC] [--size BYTES]\n"
    "                  [--mode queued|accepted|processed] [--window W] [--timeout MS]\n"
    "                  [--json] [--progress] [--broker EP]\n"
    "\n"
    "Measures a running deployment with synthetic traffic and prints the throughput and\n"
    "latency percentiles. Every payload is a MessagePack string of x's, BYTES long in\n"
    "all (header included), so the echo worker answers it as it is and `zmesh pull`\n"
    "prints it. The run stops at the first failed call or message, as `zmesh call` and\n"
    "`zmesh push` would, and prints no results.\n"
    "\n"
    "bench call keeps K calls in flight. It first makes one untimed call, to connect and\n"
    "to check that SERVICE answers. Latency is from sending a call to its reply; with K\n"
    "calls in flight it includes the wait in the broker's queue: --inflight 1 measures the\n"
    "round trip.\n"
    "\n"
    "bench push sends into PIPELINE (where they stay until a consumer takes them: have\n"
    "one running, or `zmesh pull PIPELINE --count N` after). The time runs from the first\n"
    "send until every message met its mode. In accepted and processed mode with --window\n"
    "1 (their default), each message waits for its receipt and its latency, send to\n"
    "receipt, is measured. Otherwise (queued mode, or a window above 1) messages are\n"
    "sent without waiting and the producer reports receipts in bulk, so only the\n"
    "throughput is measured. A pipeline holds at most the broker's --max-queue messages\n"
    "(default 1024): with no consumer running, a longer run stops busy or timed out.\n"
    "\n"
    "Options:\n"
    "  --count N        send N calls or messages\n"
    "  --duration SEC   send for SEC seconds, then wait for the last ones (default 10,\n"
    "                   when --count is not given)\n"
    "  --inflight K     calls in flight at once, 1..10000 (call only; default 100)\n"
    "  --size BYTES     payload size, 1 to 256M; a k or m suffix counts KiB or MiB\n"
    "                   (default 64; the broker refuses more than its --max-body)\n"
    "  --mode M         push only: queued (default), accepted or processed, as for\n"
    "                   `zmesh push` (a processed run needs a consumer running)\n"
    "  --window W       push only: messages in flight not yet settled, 1..100000\n"
    "                   (default: 1000 queued, 1 accepted and processed)\n"
    "  --timeout MS     how long a call, or a message's receipt, may take (default 5000)\n"
    "  --json           print the results as one JSON object\n"
    "  --progress       a progress line on stderr every second even when stderr is not\n"
    "                   a terminal (on a terminal it is one line, redrawn every second)\n"
    "  --broker EP      broker endpoint, or a comma-separated list of brokers\n"
    "                   (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    S_CURVE_OPTIONS
    "\n"
    "Results go to stdout:\n"
    "  bench call echo: 20000 calls of 64 bytes, 100 in flight, in 1.532 s\n"
    "    throughput  13055 calls/s\n"
    "    latency us  min 310  p50 7480  p90 8120  p99 9730  max 12004  mean 7561\n"
    "With --json: {\"command\":\"call\",\"target\":\"echo\",\"count\":20000,\"size\":64,\n"
    "\"inflight\":100,\"seconds\":1.532,\"rate\":13055,\"latency_us\":{\"min\":310,\n"
    "\"p50\":7480,\"p90\":8120,\"p99\":9730,\"max\":12004,\"mean\":7561}} (push: \"mode\" and\n"
    "\"window\" instead of \"inflight\", and \"latency_us\":null when not measured).\n"
    "Percentiles are nearest-rank over every call or message.\n"
    "\n"
    "SIGINT stops sending: the calls or messages in flight are waited for and the results\n"
    "so far printed (a second SIGINT ends at once).\n"
    "\n"
    "Errors print `zmesh: bench call SERVICE: <error>: <detail>` on stderr. Exit codes:\n"
    "0 ok, 1 failed, 2 usage, 3 timeout or broker unreachable, 4 no such service,\n"
    "5 busy (the service queue, or for push the pipeline, stayed full), 6 denied.\n";

//  What the command line asked for, beyond zm_cli_t.
typedef struct {
    bool help;                  //  --help or -h
    bool version;               //  --version
    unsigned given;             //  bit i: s_options[i] appeared (checked against the command)
    const char *error;          //  first usage error, static text or s_error_buffer
} s_flags_t;

//  An option: its name, whether it takes a value, and the commands it is for, separated by
//  spaces (NULL: any).
typedef struct {
    const char *name;
    bool takes_value;
    const char *commands;
} s_option_t;

static const s_option_t s_options[] = {
    {"--help", false, NULL},         {"-h", false, NULL},
    {"--version", false, NULL},      {"--broker", true, NULL},
    {"--timeout", true, NULL},       {"--retries", true, "call"},
    {"--json", false, "status bench"}, {"--raw", false, "push"},
    {"--mode", true, "push bench"},  {"--window", true, "push bench get call"},
    {"--count", true, "pull bench"}, {"--credit", true, "pull"},
    {"--meta", false, "pull"},       {"--curve-secret", true, NULL},
    {"--broker-key", true, NULL},    {"--dir", true, "keygen"},
    {"--serve", true, "keygen"},     {"--call", true, "keygen"},
    {"--push", true, "keygen"},      {"--pull", true, "keygen"},
    {"--admin", false, "keygen"},    {"--force", false, "keygen"},
    {"--duration", true, "bench"},   {"--inflight", true, "bench"},
    {"--size", true, "bench"},       {"--progress", false, "bench get"},
    {"--stream", false, "call"},     {"--output", true, "get"},
    {"--service", true, "get"},      {"--write", false, "call"},
    {"--quorum", false, "call"},
};
#define S_OPTION_COUNT (sizeof s_options / sizeof s_options[0])
_Static_assert(S_OPTION_COUNT <= 32, "s_flags_t.given has one bit per option");

static char s_error_buffer[256];

static const char *
s_usage_for(const char *command)
{
    if (command && strcmp(command, "call") == 0)
        return s_usage_call;
    if (command && strcmp(command, "status") == 0)
        return s_usage_status;
    if (command && strcmp(command, "push") == 0)
        return s_usage_push;
    if (command && strcmp(command, "pull") == 0)
        return s_usage_pull;
    if (command && strcmp(command, "keygen") == 0)
        return s_usage_keygen;
    if (command && strcmp(command, "bench") == 0)
        return s_usage_bench;
    if (command && strcmp(command, "get") == 0)
        return s_usage_get;
    return s_usage_main;
}

//  An argument is an option if it starts with "-", except "-" alone and negative numbers:
//  `zmesh call svc -5` sends the JSON number -5.
static bool
s_is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0' && !isdigit((unsigned char) arg[1]);
}

//  Parses a count in [min, max]: digits only, no sign, no trailing bytes.
static bool
s_parse_count(const char *text, long min, long max, int *value_p)
{
    if (!isdigit((unsigned char) text[0]))
        return false;
    errno = 0;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *value_p = (int) value;
    return true;
}

//  Parses a size in [1, ZM_CLI_SIZE_MAX] bytes: digits, then optionally k or m (KiB, MiB).
static bool
s_parse_size(const char *text, int *value_p)
{
    if (!isdigit((unsigned char) text[0]))
        return false;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || value > ZM_CLI_SIZE_MAX)
        return false;
    if (*end == 'k' || *end == 'K')
        value *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        value *= 1024 * 1024, end++;
    if (*end != '\0' || value < 1 || value > ZM_CLI_SIZE_MAX)
        return false;
    *value_p = (int) value;
    return true;
}

static void
s_set_error(s_flags_t *flags, const char *format, const char *arg)
{
    if (flags->error)
        return;                 //  the first error is the one worth reporting
    snprintf(s_error_buffer, sizeof s_error_buffer, format, arg);
    flags->error = s_error_buffer;
}

static int
s_parse_mode(const char *text)
{
    if (strcmp(text, "queued") == 0)
        return ZMESH_QUEUED;
    if (strcmp(text, "accepted") == 0)
        return ZMESH_ACCEPTED;
    if (strcmp(text, "processed") == 0)
        return ZMESH_PROCESSED;
    return 0;
}

//  Stores the value of an option that takes one.
static void
s_apply(const char *name, const char *value, zm_cli_t *cli, s_flags_t *flags)
{
    if (strcmp(name, "--broker") == 0) {
        if (value[0] == '\0')
            s_set_error(flags, "option %s needs a non-empty endpoint", name);
        cli->broker = value;
    }
    else if (strcmp(name, "--timeout") == 0) {
        if (!s_parse_count(value, 1, INT_MAX, &cli->timeout_ms))
            s_set_error(flags, "--timeout wants milliseconds from 1 to 2147483647, not '%s'",
                        value);
    }
    else if (strcmp(name, "--retries") == 0) {
        if (!s_parse_count(value, 0, 100, &cli->retries))
            s_set_error(flags, "--retries wants 0..100, not '%s'", value);
    }
    else if (strcmp(name, "--mode") == 0) {
        if ((cli->mode = s_parse_mode(value)) == 0)
            s_set_error(flags, "--mode wants queued, accepted or processed, not '%s'", value);
    }
    else if (strcmp(name, "--window") == 0) {
        if (!s_parse_count(value, 1, 100000, &cli->window))
            s_set_error(flags, "--window wants 1..100000, not '%s'", value);
    }
    else if (strcmp(name, "--curve-secret") == 0 || strcmp(name, "--broker-key") == 0) {
        if (value[0] == '\0')
            s_set_error(flags, "option %s needs a value", name);
        if (name[2] == 'c')
            cli->curve_secret = value;
        else
            cli->broker_key = value;
    }
    else if (strcmp(name, "--dir") == 0) {
        if (value[0] == '\0')
            s_set_error(flags, "option %s needs a directory", name);
        cli->dir = value;
    }
    else if (strcmp(name, "--output") == 0 || strcmp(name, "--service") == 0) {
        if (value[0] == '\0')
            s_set_error(flags, "option %s needs a value", name);
        if (name[2] == 'o')
            cli->output = value;
        else
            cli->service = value;
    }
    else if (strcmp(name, "--serve") == 0)
        cli->rights[0] = value;
    else if (strcmp(name, "--call") == 0)
        cli->rights[1] = value;
    else if (strcmp(name, "--push") == 0)
        cli->rights[2] = value;
    else if (strcmp(name, "--pull") == 0)
        cli->rights[3] = value;
    else if (strcmp(name, "--count") == 0) {
        if (!s_parse_count(value, 1, INT_MAX, &cli->count))
            s_set_error(flags, "--count wants 1 to 2147483647, not '%s'", value);
    }
    else if (strcmp(name, "--duration") == 0) {
        if (!s_parse_count(value, 1, 86400 * 365, &cli->duration_s))
            s_set_error(flags, "--duration wants whole seconds from 1, not '%s'", value);
    }
    else if (strcmp(name, "--inflight") == 0) {
        if (!s_parse_count(value, 1, ZM_CLI_INFLIGHT_MAX, &cli->inflight))
            s_set_error(flags, "--inflight wants 1..10000, not '%s'", value);
    }
    else if (strcmp(name, "--size") == 0) {
        if (!s_parse_size(value, &cli->size))
            s_set_error(flags, "--size wants 1 to 256m bytes (k, m: KiB, MiB), not '%s'",
                        value);
    }
    else if (!s_parse_count(value, 1, 1000, &cli->credit))     //  --credit, the last one
        s_set_error(flags, "--credit wants 1..1000, not '%s'", value);
}

//  Applies the option at argv[*index_p], in the form `--name value` or `--name=value`, and moves
//  *index_p past a separate value.
static void
s_parse_option(int argc, char **argv, int *index_p, zm_cli_t *cli, s_flags_t *flags)
{
    const char *arg = argv[*index_p];
    const char *equals = strchr(arg, '=');
    size_t name_size = equals ? (size_t) (equals - arg) : strlen(arg);
    size_t option = 0;
    while (option < S_OPTION_COUNT && (strlen(s_options[option].name) != name_size
                                       || strncmp(s_options[option].name, arg, name_size) != 0))
        option++;
    if (option == S_OPTION_COUNT) {
        s_set_error(flags, "unknown option %s", arg);
        return;
    }
    const char *name = s_options[option].name;
    const char *value = equals ? equals + 1 : NULL;
    if (s_options[option].takes_value && !value) {
        if (*index_p + 1 >= argc) {
            s_set_error(flags, "option %s needs a value", name);
            return;
        }
        value = argv[++*index_p];
    }
    else if (!s_options[option].takes_value && value) {
        s_set_error(flags, "option %s takes no value", name);
        return;
    }
    flags->given |= 1u << option;
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        flags->help = true;
    else if (strcmp(name, "--version") == 0)
        flags->version = true;
    else if (strcmp(name, "--json") == 0)
        cli->json = true;
    else if (strcmp(name, "--raw") == 0)
        cli->raw = true;
    else if (strcmp(name, "--meta") == 0)
        cli->meta = true;
    else if (strcmp(name, "--admin") == 0)
        cli->admin = true;
    else if (strcmp(name, "--force") == 0)
        cli->force = true;
    else if (strcmp(name, "--progress") == 0)
        cli->progress = true;
    else if (strcmp(name, "--stream") == 0)
        cli->stream = true;
    else if (strcmp(name, "--write") == 0)
        cli->call_flags |= ZMESH_CALL_WRITE;
    else if (strcmp(name, "--quorum") == 0)
        cli->call_flags |= ZMESH_CALL_QUORUM;
    else
        s_apply(name, value, cli, flags);
}

//  Splits argv into options, the command and its positional arguments. "--" ends the options,
//  for JSON text that would look like one.
static void
s_parse_args(int argc, char **argv, zm_cli_t *cli, s_flags_t *flags)
{
    bool options_done = false;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        if (!options_done && strcmp(arg, "--") == 0)
            options_done = true;
        else if (!options_done && s_is_option(arg))
            s_parse_option(argc, argv, &index, cli, flags);
        else if (!cli->command)
            cli->command = arg;
        else if (cli->arg_count < 2)
            cli->args[cli->arg_count++] = arg;
        else
            s_set_error(flags, "unexpected argument '%s'", arg);
    }
}

static bool
s_given(const s_flags_t *flags, const char *name)
{
    for (size_t option = 0; option < S_OPTION_COUNT; option++) {
        if (strcmp(s_options[option].name, name) == 0)
            return flags->given & (1u << option);
    }
    return false;
}

//  True if the space-separated list commands holds command.
static bool
s_listed(const char *commands, const char *command)
{
    size_t size = strlen(command);
    for (const char *word = commands; *word; word += strcspn(word, " ")) {
        word += strspn(word, " ");
        if (strncmp(word, command, size) == 0 && (word[size] == ' ' || word[size] == '\0'))
            return true;
    }
    return false;
}

//  Refuses the options given that belong to other commands than cli->command.
static void
s_check_options(const zm_cli_t *cli, s_flags_t *flags)
{
    for (size_t option = 0; option < S_OPTION_COUNT; option++) {
        const char *commands = s_options[option].commands;
        if (!flags->error && (flags->given & (1u << option)) && commands
            && !s_listed(commands, cli->command)) {
            //  "push bench" reads "push and bench"; "push bench get" "push, bench and get"
            char list[128] = "";
            const char *last = strrchr(commands, ' ');
            for (const char *word = commands; *word;) {
                size_t size = strcspn(word, " ");
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%.*s",
                         word == commands ? "" : word == last + 1 ? " and " : ", ", (int) size,
                         word);
                word += size;
                word += strspn(word, " ");
            }
            snprintf(s_error_buffer, sizeof s_error_buffer, "option %s is for %s only",
                     s_options[option].name, list);
            flags->error = s_error_buffer;
        }
    }
}

//  Checks `bench call SERVICE` or `bench push PIPELINE` and the options of each, and fills in
//  the defaults that depend on which.
static void
s_check_bench(zm_cli_t *cli, s_flags_t *flags)
{
    const char *kind = cli->arg_count > 0 ? cli->args[0] : "";
    bool call = strcmp(kind, "call") == 0;
    if (!call && strcmp(kind, "push") != 0) {
        s_set_error(flags, "%s", cli->arg_count > 0 ? "bench wants call SERVICE or push PIPELINE"
                                                      : "bench needs call or push");
        return;
    }
    if (cli->arg_count < 2)
        s_set_error(flags, "bench %s needs a target", kind);
    if (call && (s_given(flags, "--mode") || s_given(flags, "--window")))
        s_set_error(flags, "%s", "--mode and --window are for bench push, not bench call");
    if (!call && s_given(flags, "--inflight"))
        s_set_error(flags, "%s", "--inflight is for bench call; bench push has --window");
    if (s_given(flags, "--count") && s_given(flags, "--duration"))
        s_set_error(flags, "%s", "give --count or --duration, not both");
    if (!s_given(flags, "--count") && !s_given(flags, "--duration"))
        cli->duration_s = ZM_CLI_DURATION_DEFAULT;
    if (!call && cli->window == 0 && cli->mode != ZMESH_QUEUED)
        cli->window = 1;            //  one at a time: each message's latency is measured
}

//  Checks that the command exists and got the arguments and options it accepts.
static void
s_check_command(zm_cli_t *cli, s_flags_t *flags)
{
    if (!cli->command) {
        s_set_error(flags, "%s", "missing command");
        return;
    }
    bool known = true;
    int max_args = 0;
    if (strcmp(cli->command, "call") == 0) {
        if (cli->arg_count < 1)
            s_set_error(flags, "%s", "call needs a SERVICE");
        if (cli->stream && cli->arg_count < 2)
            s_set_error(flags, "%s", "call --stream needs the JSON request as an argument");
        if (cli->stream && s_given(flags, "--retries"))
            s_set_error(flags, "%s", "a streamed call is never resent: --retries is not for it");
        if (s_given(flags, "--window") && !cli->stream)
            s_set_error(flags, "%s", "option --window is for call --stream only");
        if (cli->call_flags == (ZMESH_CALL_WRITE | ZMESH_CALL_QUORUM))
            s_set_error(flags, "%s", "a call is a --write or a --quorum read, not both");
        if (cli->stream && cli->call_flags)
            s_set_error(flags, "%s", "--write and --quorum are not for a streamed call");
        max_args = 2;
    }
    else if (strcmp(cli->command, "get") == 0) {
        if (cli->arg_count < 1)
            s_set_error(flags, "%s", "get needs a PATH");
        max_args = 1;
    }
    else if (strcmp(cli->command, "push") == 0 || strcmp(cli->command, "pull") == 0) {
        if (cli->arg_count < 1)
            s_set_error(flags, "%s needs a PIPELINE", cli->command);
        max_args = 1;
        if (!s_given(flags, "--timeout"))
            cli->timeout_ms = -1;       //  waiting on a pipeline is normal: no limit
    }
    else if (strcmp(cli->command, "keygen") == 0) {
        if (cli->arg_count < 1)
            s_set_error(flags, "%s", "keygen needs a NAME");
        max_args = 1;
        if (s_given(flags, "--curve-secret") || s_given(flags, "--broker-key"))
            s_set_error(flags, "%s", "keygen makes keys: --curve-secret and --broker-key are "
                                     "not for it");
    }
    else if (strcmp(cli->command, "bench") == 0) {
        s_check_bench(cli, flags);
        max_args = 2;
    }
    else if (strcmp(cli->command, "status") != 0) {
        s_set_error(flags, "unknown command '%s'", cli->command);
        known = false;
    }
    if (known && cli->arg_count > max_args)
        s_set_error(flags, "unexpected argument '%s'", cli->args[max_args]);
    if (known)
        s_check_options(cli, flags);
    bool streams = strcmp(cli->command, "get") == 0 || strcmp(cli->command, "call") == 0;
    if (streams && cli->window > ZM_WINDOW_MAX)
        s_set_error(flags, "%s", "--window wants 1..1024 for a stream");
}

//  Takes the CURVE settings from the environment where no option gave them, and checks that
//  both or neither are set: one alone is a mistake that would silently talk in the clear.
static void
s_check_curve(zm_cli_t *cli, s_flags_t *flags)
{
    if (strcmp(cli->command, "keygen") == 0)
        return;
    const char *secret = getenv("ZMESH_CURVE_SECRET");
    const char *key = getenv("ZMESH_BROKER_KEY");
    if (!cli->curve_secret && secret && secret[0])
        cli->curve_secret = secret;
    if (!cli->broker_key && key && key[0])
        cli->broker_key = key;
    if (cli->curve_secret && !cli->broker_key)
        s_set_error(flags, "%s", "--curve-secret (or ZMESH_CURVE_SECRET) needs --broker-key "
                                 "(or ZMESH_BROKER_KEY) too: give both for CURVE, or neither");
    else if (cli->broker_key && !cli->curve_secret)
        s_set_error(flags, "%s", "--broker-key (or ZMESH_BROKER_KEY) needs --curve-secret "
                                 "(or ZMESH_CURVE_SECRET) too: give both for CURVE, or neither");
}

//  Loads the CURVE keys if both were given. Returns false after reporting why they are unusable.
static bool
s_load_curve(zm_cli_t *cli)
{
    if (!cli->curve_secret)
        return true;
    cli->curve = zmesh_curve_new(cli->curve_secret, cli->broker_key, NULL);
    if (!cli->curve)
        fprintf(stderr, "zmesh: %s: %s\n", cli->command, zmesh_curve_error());
    return cli->curve != NULL;
}

static int
s_dispatch(const zm_cli_t *cli)
{
    if (strcmp(cli->command, "call") == 0)
        return zm_cli_call(cli);
    if (strcmp(cli->command, "push") == 0)
        return zm_cli_push(cli);
    if (strcmp(cli->command, "pull") == 0)
        return zm_cli_pull(cli);
    if (strcmp(cli->command, "keygen") == 0)
        return zm_cli_keygen(cli);
    if (strcmp(cli->command, "bench") == 0)
        return zm_cli_bench(cli);
    if (strcmp(cli->command, "get") == 0)
        return zm_cli_get(cli);
    return zm_cli_status(cli);
}

int
main(int argc, char **argv)
{
    //  CZMQ installs SIGINT/SIGTERM handlers that only set a flag unless told not to; a CLI
    //  must die on Ctrl-C as any Unix tool does, so keep the default dispositions.
    setenv("ZSYS_SIGHANDLER", "false", 0);
    const char *env_broker = getenv("ZMESH_BROKER");
    zm_cli_t cli = {
        .broker = env_broker && env_broker[0] ? env_broker : ZMESH_DEFAULT_ENDPOINT,
        .timeout_ms = ZM_CLI_TIMEOUT_DEFAULT,
        .mode = ZMESH_QUEUED,
        .credit = ZM_CLI_CREDIT_DEFAULT,
        .inflight = ZM_CLI_INFLIGHT_DEFAULT,
        .size = ZM_CLI_SIZE_DEFAULT,
        .dir = ".",
    };
    s_flags_t flags = {0};
    s_parse_args(argc, argv, &cli, &flags);
    if (flags.help) {
        fputs(s_usage_for(cli.command), stdout);
        return ZM_CLI_EXIT_OK;
    }
    if (flags.version) {
        printf("zmesh %d.%d.%d\n", ZMESH_VERSION_MAJOR, ZMESH_VERSION_MINOR, ZMESH_VERSION_PATCH);
        return ZM_CLI_EXIT_OK;
    }
    s_check_command(&cli, &flags);
    if (!flags.error)
        s_check_curve(&cli, &flags);
    if (flags.error) {
        fprintf(stderr, "zmesh: %s\n\n%s", flags.error, s_usage_for(cli.command));
        return ZM_CLI_EXIT_USAGE;
    }
    if (!s_load_curve(&cli))
        return ZM_CLI_EXIT_USAGE;   //  a key file the user named is unusable: bad input
    int exit_code = s_dispatch(&cli);
    zmesh_curve_destroy(&cli.curve);
    return exit_code;
}
