//  cli.h - what the parts of the `zmesh` program share: the parsed command line, the exit codes
//  of README.md ("Exit codes"), the mapping from zmesh_err_t to them, pipeline name checks
//  and the subcommand entry points. Everything here reads argv or prints; nothing talks to the
//  network except the subcommands through the public zmesh.h API.
#ifndef ZM_CLI_H_INCLUDED
#define ZM_CLI_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

#include "zmesh.h"

//  Process exit codes, stable for scripts.
enum {
    ZM_CLI_EXIT_OK = 0,
    ZM_CLI_EXIT_FAILED = 1,     //  handler error, worker lost, protocol, anything else
    ZM_CLI_EXIT_USAGE = 2,      //  bad flag, bad argument, bad JSON, request too big
    ZM_CLI_EXIT_TIMEOUT = 3,    //  no reply in time (also: broker unreachable)
    ZM_CLI_EXIT_NOSERVICE = 4,  //  no worker offered the service within the broker's grace
    ZM_CLI_EXIT_BUSY = 5,       //  the service's queue was full
    ZM_CLI_EXIT_DENIED = 6,     //  the broker's access rules deny this key that command (403)
};

//  Added to a timeout's detail when CURVE is configured: a wrong broker key, or a key the
//  broker does not know, fails the handshake, and that looks like a broker that is not there.
#define ZM_CLI_CURVE_HINT                                                                      \
    "if the broker runs CURVE, check --broker-key is its public key and that this key is in " \
    "its keys directory"


//  Default --timeout of call and status, in milliseconds. push and pull wait without a limit
//  unless given --timeout: a full pipeline or an empty one is normal, not an error.
#define ZM_CLI_TIMEOUT_DEFAULT 5000

//  Default --credit of pull.
#define ZM_CLI_CREDIT_DEFAULT 100

//  Defaults and bounds of bench: --inflight, --size (the broker's own default --max-body is
//  1 MiB, its highest 256 MiB), and the run length when neither --count nor --duration is given.
#define ZM_CLI_INFLIGHT_DEFAULT 100
#define ZM_CLI_INFLIGHT_MAX 10000
#define ZM_CLI_SIZE_DEFAULT 64
#define ZM_CLI_SIZE_MAX (256 << 20)
#define ZM_CLI_DURATION_DEFAULT 10

//  The parsed command line. All strings are borrowed from argv or the environment.
typedef struct {
    const char *command;        //  "call", "status", "push", "pull", "keygen", "bench" or "get"; NULL
                                //  if none
    const char *broker;         //  --broker, else $ZMESH_BROKER, else ZMESH_DEFAULT_ENDPOINT
    int timeout_ms;             //  --timeout, > 0; -1 (push and pull by default): no limit
    int retries;                //  --retries, 0..100 (call only)
    bool json;                  //  --json (status and bench)
    bool raw;                   //  --raw: stdin is MessagePack (push only)
    int mode;                   //  --mode: ZMESH_QUEUED (default), _ACCEPTED or _PROCESSED (push
                                //  and bench)
    int window;                 //  --window, 1..100000; 0: the default (push and bench)
    int count;                  //  --count, > 0; 0: no limit (pull and bench)
    int duration_s;             //  --duration, seconds > 0; 0: not given (bench only)
    int inflight;               //  --inflight, 1..10000 (bench call only)
    int size;                   //  --size, payload bytes, 1..ZM_CLI_SIZE_MAX (bench only)
    bool progress;              //  --progress: progress lines even when stderr is no terminal
    int credit;                 //  --credit, 1..1000 (pull only)
    bool meta;                  //  --meta: print id, attempt and body (pull only)
    const char *curve_secret;   //  --curve-secret, else $ZMESH_CURVE_SECRET; NULL: no CURVE
    const char *broker_key;     //  --broker-key, else $ZMESH_BROKER_KEY; NULL: no CURVE
    zmesh_curve_t *curve;       //  owned by main: the keys loaded from the two above, or NULL
    const char *dir;            //  --dir (keygen only), "." if not given
    const char *rights[4];      //  --serve, --call, --push, --pull (keygen only); NULL: not given
    bool admin;                 //  --admin (keygen only)
    bool force;                 //  --force (keygen only)
    bool stream;                //  --stream: a streamed call, each part printed (call only)
    int call_flags;             //  --write: ZMESH_CALL_WRITE, --quorum: ZMESH_CALL_QUORUM, else 0
                                //  (call only)
    const char *output;         //  --output FILE (get only); NULL: the path's last name
    const char *service;        //  --service NAME (get only); NULL: "files"
    const char *args[2];        //  positional arguments after the command
    int arg_count;              //  how many of args are set
} zm_cli_t;

//  Maps a zmesh_err_t (ZMESH_OK included) to the process exit code.
int zm_cli_exit_code(int err);

//  Returns "zmesh: WHAT: <strerror>: <detail>" (without ": <detail>" when detail is NULL or
//  empty), malloc'ed, without a newline: the one error line format of every subcommand.
char *zm_cli_error_text(const char *what, int err, const char *detail);

//  Prints zm_cli_error_text() and a newline to stderr and returns the exit code for err.
int zm_cli_fail(const char *what, int err, const char *detail);

//  Prints a reply payload as one compact JSON line on stdout and flushes it, so a script that
//  reads our output line by line sees each reply at once. Returns the exit code: ZM_CLI_EXIT_OK,
//  or ZM_CLI_EXIT_FAILED (reported as "zmesh: WHAT: ...") if the payload has no JSON form.
int zm_cli_print_reply(const char *what, const zmesh_msg_t *reply);

//  Creates a client of cli->broker, with cli->curve's keys if any, that resends unanswered
//  calls cli->retries times. On failure reports it as "zmesh: WHAT: ...", sets *exit_code_p
//  and returns NULL.
zmesh_client_t *zm_cli_connect(const zm_cli_t *cli, const char *what, int *exit_code_p);

//  Writes the detail of an error outcome of client into buffer: zmesh_client_error(), and for
//  a timeout also the timeout and the broker endpoint (an unreachable broker looks the same),
//  and with CURVE, ZM_CLI_CURVE_HINT.
void zm_cli_detail(const zm_cli_t *cli, zmesh_client_t *client, int err, char *buffer,
                   size_t size);

//  Creates a producer of pipeline at cli->broker, with cli->curve's keys if any, in cli->mode,
//  with cli->timeout_ms and cli->window (if set). On failure reports it as "zmesh: WHAT: ...",
//  sets *exit_code_p and returns NULL.
zmesh_producer_t *zm_cli_producer_new(const zm_cli_t *cli, const char *what, const char *pipeline,
                                      int *exit_code_p);

//  Writes the detail of a failed send or flush of producer into buffer: zmesh_producer_error(),
//  and for a timeout or a full window also the timeout and the broker endpoint, and with CURVE,
//  ZM_CLI_CURVE_HINT.
void zm_cli_producer_detail(const zm_cli_t *cli, zmesh_producer_t *producer, int err,
                            char *buffer, size_t size);

//  True if name may name a pipeline we push to or pull from: a valid ZMP name (1 to 255
//  printable ASCII bytes, no space) outside the broker's reserved "zmesh." prefix. If not,
//  reports "zmesh: WHAT: bad pipeline name ..." on stderr.
bool zm_cli_pipeline_ok(const char *what, const char *name);

//  Subcommands: each returns the process exit code and prints its own errors.
int zm_cli_call(const zm_cli_t *cli);
int zm_cli_status(const zm_cli_t *cli);
int zm_cli_push(const zm_cli_t *cli);
int zm_cli_pull(const zm_cli_t *cli);
int zm_cli_keygen(const zm_cli_t *cli);
int zm_cli_bench(const zm_cli_t *cli);
int zm_cli_get(const zm_cli_t *cli);

#endif
