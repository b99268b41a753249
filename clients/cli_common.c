//  cli_common.c - what the `zmesh` subcommands share: connecting to the broker, and reporting
//  (replies as JSON lines on stdout, errors as one `zmesh: WHAT: <error>: <detail>` line on
//  stderr, outcomes as exit codes). Payloads come from the network, so their conversion may
//  fail; that is reported, never asserted.
#define _GNU_SOURCE                 //  asprintf, vasprintf

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zm_json.h"
#include "zm_proto.h"

int
zm_cli_exit_code(int err)
{
    switch ((zmesh_err_t) err) {
    case ZMESH_OK:
        return ZM_CLI_EXIT_OK;
    case ZMESH_ETIMEDOUT:
    case ZMESH_EUNREACHABLE:
        return ZM_CLI_EXIT_TIMEOUT;
    case ZMESH_ENOSERVICE:
        return ZM_CLI_EXIT_NOSERVICE;
    case ZMESH_EAGAIN:
        return ZM_CLI_EXIT_BUSY;
    case ZMESH_EDENIED:
        return ZM_CLI_EXIT_DENIED;
    case ZMESH_ETOOBIG:
        return ZM_CLI_EXIT_USAGE;   //  the request the user gave us is too big: bad input
    case ZMESH_EINVAL:              //  the broker found our request malformed: our bug, not theirs
    case ZMESH_ECLOSED:
    case ZMESH_EHANDLER:
    case ZMESH_EWORKERLOST:
    case ZMESH_EPROTO:
    case ZMESH_ESYS:
        return ZM_CLI_EXIT_FAILED;
    }
    return ZM_CLI_EXIT_FAILED;
}

char *
zm_cli_error_text(const char *what, int err, const char *detail)
{
    char *text = NULL;
    int size;
    if (detail && detail[0])
        size = asprintf(&text, "zmesh: %s: %s: %s", what, zmesh_strerror(err), detail);
    else
        size = asprintf(&text, "zmesh: %s: %s", what, zmesh_strerror(err));
    if (size < 0)
        abort();                    //  out of memory aborts, as zm_alloc does
    return text;
}

int
zm_cli_fail(const char *what, int err, const char *detail)
{
    char *text = zm_cli_error_text(what, err, detail);
    fprintf(stderr, "%s\n", text);
    free(text);
    return zm_cli_exit_code(err);
}

int
zm_cli_print_reply(const char *what, const zmesh_msg_t *reply)
{
    char *text = NULL;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_msgpack_to_json(zmesh_msg_data(reply), zmesh_msg_size(reply), &text, error,
                           sizeof error) != ZMESH_OK) {
        fprintf(stderr, "zmesh: %s: the reply has no JSON form: %s\n", what, error);
        return ZM_CLI_EXIT_FAILED;
    }
    //  One write per line and a flush: a coprocess reading our stdout must see each reply as
    //  soon as it exists, not when a stdio buffer fills.
    bool written = puts(text) != EOF && fflush(stdout) != EOF;
    free(text);
    if (!written) {
        fprintf(stderr, "zmesh: %s: cannot write to stdout: %s\n", what, strerror(errno));
        return ZM_CLI_EXIT_FAILED;
    }
    return ZM_CLI_EXIT_OK;
}

zmesh_client_t *
zm_cli_connect(const zm_cli_t *cli, const char *what, int *exit_code_p)
{
    int err = ZMESH_OK;
    zmesh_client_t *client = zmesh_client_new_secure(cli->broker, cli->curve, &err);
    if (client) {
        zmesh_client_set_retries(client, cli->retries);
        return client;
    }
    char detail[300];
    snprintf(detail, sizeof detail, "cannot use broker endpoint '%s'", cli->broker);
    zm_cli_fail(what, err, detail);
    //  A bad --broker is the user's input, the rest (a failed socket) is ours.
    *exit_code_p = err == ZMESH_EINVAL ? ZM_CLI_EXIT_USAGE : ZM_CLI_EXIT_FAILED;
    return NULL;
}

void
zm_cli_detail(const zm_cli_t *cli, zmesh_client_t *client, int err, char *buffer, size_t size)
{
    const char *detail = zmesh_client_error(client);
    //  libzmq connects in the background, so an unreachable broker shows up as a timeout: say
    //  where we looked, since that is the usual cause.
    if (err == ZMESH_ETIMEDOUT || err == ZMESH_EUNREACHABLE)
        snprintf(buffer, size, "%s%s(timeout %d ms, broker %s)%s%s", detail, detail[0] ? " " : "",
                 cli->timeout_ms, cli->broker, cli->curve ? "; " : "",
                 cli->curve ? ZM_CLI_CURVE_HINT : "");
    else
        snprintf(buffer, size, "%s", detail);
}

bool
zm_cli_pipeline_ok(const char *what, const char *name)
{
    if (zm_proto_valid_name(name, strlen(name)) && strncmp(name, "zmesh.", 6) != 0)
        return true;
    fprintf(stderr, "zmesh: %s: bad pipeline name (1 to 255 printable ASCII bytes, no space, "
                    "not starting with zmesh.)\n", what);
    return false;
}
