//  cmd_call.c - `zmesh call SERVICE [JSON]`: converts JSON requests to MessagePack, calls the
//  service through the broker and prints each reply as one compact JSON line. With no JSON
//  argument it reads one request per stdin line and keeps up to S_WINDOW calls in flight while
//  input is ready, printing outcomes strictly in input order and stopping at the first failed
//  line. It must never reorder output, print anything but replies on stdout, or wait on stdin
//  while a reply it could print is waiting. --write and --quorum make each call a write or a
//  quorum read of a replicated service.
#define _GNU_SOURCE                 //  asprintf, vasprintf

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "zm_json.h"
#include "zm_line.h"
#include "zm_proto.h"

#define S_WINDOW 32                 //  calls in flight at most, in stdin mode
#define S_LINE_MAX (64u << 20)      //  longest stdin line, in bytes
#define S_POLL_MS 20                //  reply wait between two looks at stdin
#define S_GRACE_MS 1000             //  past a call's timeout, when we stop trusting the library

//  One call of stdin mode, from its line being read to its outcome being printed.
typedef struct {
    uint64_t id;                //  request id from zmesh_client_send; 0 for a local failure
    bool done;                  //  the outcome below is known
    int exit_code;              //  the outcome as an exit code (ZM_CLI_EXIT_OK on success)
    zmesh_msg_t *reply;         //  owned: the reply on success (NULL means nil)
    char *message;              //  owned: the error line for stderr, on failure
} s_call_t;

//  The calls of stdin mode in input order: a ring of at most S_WINDOW.
typedef struct {
    const zm_cli_t *cli;        //  borrowed
    zmesh_client_t *client;     //  borrowed
    const char *what;           //  borrowed: "call SERVICE", for messages
    s_call_t ring[S_WINDOW];    //  owned outcomes; the oldest at head
    size_t head;                //  index of the oldest call
    size_t count;               //  calls in the ring
    size_t line_number;         //  stdin lines read so far, for messages
    bool failed;                //  some call failed: read no more input
} s_pipeline_t;

//  What a single call needs: the JSON argument as MessagePack (*data_p,
//  malloc'ed) and a client. Returns ZM_CLI_EXIT_OK, or the exit code after
//  saying what went wrong (then nothing is left to free).
static int
s_prepare(const zm_cli_t *cli, const char *what, const char *json, char **data_p, size_t *size_p,
          zmesh_client_t **client_p)
{
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_json_to_msgpack(json, strlen(json), data_p, size_p, error, sizeof error) != ZMESH_OK) {
        fprintf(stderr, "zmesh: %s: %s\n", what, error);
        return ZM_CLI_EXIT_USAGE;
    }
    int exit_code = ZM_CLI_EXIT_OK;
    *client_p = zm_cli_connect(cli, what, &exit_code);
    if (!*client_p) {
        free(*data_p);
        *data_p = NULL;
    }
    return exit_code;
}

//  Calls once with the JSON argument and prints the reply.
static int
s_call_once(const zm_cli_t *cli, const char *what, const char *json)
{
    const char *service = cli->args[0];
    char *data = NULL;
    size_t size = 0;
    zmesh_client_t *client = NULL;
    int exit_code = s_prepare(cli, what, json, &data, &size, &client);
    if (!client)
        return exit_code;
    zmesh_msg_t *reply = NULL;
    int rc;
    if (cli->call_flags == ZMESH_CALL_WRITE)
        rc = zmesh_client_write(client, service, data, size, cli->timeout_ms, &reply);
    else if (cli->call_flags == ZMESH_CALL_QUORUM)
        rc = zmesh_client_read_quorum(client, service, data, size, cli->timeout_ms, &reply);
    else
        rc = zmesh_client_call(client, service, data, size, cli->timeout_ms, &reply);
    free(data);
    if (rc == ZMESH_OK)
        exit_code = zm_cli_print_reply(what, reply);
    else {
        char detail[512];
        zm_cli_detail(cli, client, rc, detail, sizeof detail);
        exit_code = zm_cli_fail(what, rc, detail);
    }
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    return exit_code;
}

//  Streams one call with the JSON argument: prints each part as a JSON line as it arrives, then
//  the final reply. Each part printed grants the worker credit for one more.
static int
s_call_stream(const zm_cli_t *cli, const char *what, const char *json)
{
    char *data = NULL;
    size_t size = 0;
    zmesh_client_t *client = NULL;
    int exit_code = s_prepare(cli, what, json, &data, &size, &client);
    if (!client)
        return exit_code;
    uint64_t id = 0;
    int rc = zmesh_client_stream(client, cli->args[0], data, size, cli->timeout_ms, cli->window,
                                 &id);
    free(data);
    bool last = rc != ZMESH_OK;
    while (!last && exit_code == ZM_CLI_EXIT_OK) {
        zmesh_msg_t *msg = NULL;
        rc = zmesh_client_next(client, id, -1, &msg, &last);
        if (rc == ZMESH_OK)
            exit_code = msg ? zm_cli_print_reply(what, msg) : ZM_CLI_EXIT_OK;
        zmesh_msg_destroy(&msg);
        if (rc != ZMESH_OK)
            last = true;
    }
    if (rc != ZMESH_OK) {
        char detail[512];
        zm_cli_detail(cli, client, rc, detail, sizeof detail);
        exit_code = zm_cli_fail(what, rc, detail);
    }
    zmesh_client_destroy(&client);      //  a stream cut short by us is cancelled by the broker
    return exit_code;
}

//  Appends a call at the tail of the ring; the caller checked there is room.
static s_call_t *
s_push(s_pipeline_t *self)
{
    s_call_t *call = &self->ring[(self->head + self->count) % S_WINDOW];
    memset(call, 0, sizeof *call);
    self->count++;
    return call;
}

//  Records a failed outcome with its error line.
static void
s_fail(s_pipeline_t *self, s_call_t *call, int exit_code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static void
s_fail(s_pipeline_t *self, s_call_t *call, int exit_code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (vasprintf(&call->message, format, args) < 0)
        abort();                    //  out of memory aborts, as zm_alloc does
    va_end(args);
    call->exit_code = exit_code;
    call->done = true;
    self->failed = true;
}

//  Records the outcome of a call the library reported.
static void
s_complete(s_pipeline_t *self, s_call_t *call, int rc, zmesh_msg_t **reply_p)
{
    if (rc == ZMESH_OK) {
        call->reply = *reply_p;
        *reply_p = NULL;
        call->done = true;
        return;
    }
    char detail[512];
    zm_cli_detail(self->cli, self->client, rc, detail, sizeof detail);
    char *text = zm_cli_error_text(self->what, rc, detail);
    s_fail(self, call, zm_cli_exit_code(rc), "%s", text);
    free(text);
}

//  Converts one stdin line and sends it as a call. A line that cannot be sent is recorded as a
//  failed call, so it is reported in its place in the output order.
static void
s_send_line(s_pipeline_t *self, const char *line, size_t length)
{
    s_call_t *call = s_push(self);
    char *data = NULL;
    size_t size = 0;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_json_to_msgpack(line, length, &data, &size, error, sizeof error) != ZMESH_OK) {
        s_fail(self, call, ZM_CLI_EXIT_USAGE, "zmesh: %s: line %zu: %s", self->what,
               self->line_number, error);
        return;
    }
    int rc = zmesh_client_send_flags(self->client, self->cli->args[0], data, size,
                                     self->cli->timeout_ms, self->cli->call_flags, &call->id);
    free(data);
    if (rc != ZMESH_OK)
        s_complete(self, call, rc, NULL);
}

static bool
s_blank(const char *line, size_t length)
{
    return strspn(line, " \t\r\f\v") == length;
}

//  Reads and sends lines while the window has room and input is ready. It blocks on stdin only
//  when no call is in flight, so a reply is never held back by a user who has not typed yet.
//  Returns true when no more lines will be read.
static bool
s_read_lines(s_pipeline_t *self, zm_line_reader_t *reader)
{
    while (self->count < S_WINDOW && !self->failed) {
        char *line = NULL;
        size_t length = 0;
        int timeout_ms = self->count == 0 ? -1 : 0;
        zm_line_status_t status = zm_line_reader_next(reader, timeout_ms, &line, &length);
        if (status == ZM_LINE_NONE)
            return false;
        if (status == ZM_LINE_EOF)
            return true;
        self->line_number++;
        if (status == ZM_LINE_TOOLONG)
            s_fail(self, s_push(self), ZM_CLI_EXIT_USAGE,
                   "zmesh: %s: line %zu: longer than %u bytes", self->what, self->line_number,
                   S_LINE_MAX);
        else if (status == ZM_LINE_ERROR)
            s_fail(self, s_push(self), ZM_CLI_EXIT_FAILED, "zmesh: %s: cannot read stdin: %m",
                   self->what);
        else if (!s_blank(line, length))
            s_send_line(self, line, length);
    }
    return self->failed;
}

//  Prints the outcomes at the head of the ring that are known, in order. Returns the exit code
//  of the first failure printed, or ZM_CLI_EXIT_OK.
static int
s_flush(s_pipeline_t *self)
{
    while (self->count > 0 && self->ring[self->head].done) {
        s_call_t *call = &self->ring[self->head];
        int exit_code = call->exit_code;
        if (exit_code != ZM_CLI_EXIT_OK)
            fprintf(stderr, "%s\n", call->message);
        else if (call->reply)
            exit_code = zm_cli_print_reply(self->what, call->reply);
        else if (puts("null") == EOF || fflush(stdout) == EOF)
            exit_code = ZM_CLI_EXIT_FAILED;
        zmesh_msg_destroy(&call->reply);
        free(call->message);
        call->message = NULL;
        self->head = (self->head + 1) % S_WINDOW;
        self->count--;
        if (exit_code != ZM_CLI_EXIT_OK)
            return exit_code;
    }
    return ZM_CLI_EXIT_OK;
}

static s_call_t *
s_find(s_pipeline_t *self, uint64_t id)
{
    for (size_t index = 0; index < self->count; index++) {
        s_call_t *call = &self->ring[(self->head + index) % S_WINDOW];
        if (!call->done && call->id == id)
            return call;
    }
    return NULL;
}

//  Waits for one outcome. While more input may be read, it waits briefly so that stdin is
//  looked at again soon; otherwise it waits past the head call's deadline, after which the
//  library owes us its outcome and a missing one counts as a timeout.
static void
s_wait(s_pipeline_t *self, bool reading)
{
    int timeout_ms = reading ? S_POLL_MS : self->cli->timeout_ms + S_GRACE_MS;
    if (timeout_ms < 0)
        timeout_ms = self->cli->timeout_ms;         //  int overflow near INT_MAX
    uint64_t id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(self->client, timeout_ms, &id, &reply);
    s_call_t *call = id ? s_find(self, id) : NULL;
    s_call_t *head = &self->ring[self->head];
    if (call)
        s_complete(self, call, rc, &reply);
    else if (id == 0 && rc != ZMESH_EAGAIN && rc != ZMESH_OK)
        s_complete(self, head, rc, &reply);        //  the client itself failed
    else if (id == 0 && !reading)
        s_complete(self, head, ZMESH_ETIMEDOUT, NULL);
    zmesh_msg_destroy(&reply);                      //  only a reply to no call of ours is left
}

//  Frees the outcomes never printed (after a failure).
static void
s_clear(s_pipeline_t *self)
{
    for (size_t index = 0; index < self->count; index++) {
        s_call_t *call = &self->ring[(self->head + index) % S_WINDOW];
        zmesh_msg_destroy(&call->reply);
        free(call->message);
    }
    self->count = 0;
}

//  Stdin mode: one call per non-blank line, one output line per call, in input order.
static int
s_call_lines(const zm_cli_t *cli, const char *what)
{
    int exit_code = ZM_CLI_EXIT_OK;
    zmesh_client_t *client = zm_cli_connect(cli, what, &exit_code);
    if (!client)
        return exit_code;
    zm_line_reader_t *reader = zm_line_reader_new(STDIN_FILENO, S_LINE_MAX);
    s_pipeline_t self = {.cli = cli, .client = client, .what = what};
    bool input_done = false;
    while (exit_code == ZM_CLI_EXIT_OK) {
        if (!input_done)
            input_done = s_read_lines(&self, reader);
        exit_code = s_flush(&self);
        if (exit_code != ZM_CLI_EXIT_OK || (input_done && self.count == 0))
            break;
        if (self.count > 0)
            s_wait(&self, !input_done && !self.failed && self.count < S_WINDOW);
    }
    s_clear(&self);
    zm_line_reader_destroy(&reader);
    zmesh_client_destroy(&client);
    return exit_code;
}

int
zm_cli_call(const zm_cli_t *cli)
{
    char what[300];
    snprintf(what, sizeof what, "call %s", cli->args[0]);
    if (!zm_proto_valid_name(cli->args[0], strlen(cli->args[0]))) {
        fprintf(stderr, "zmesh: %s: bad service name (1 to 255 printable ASCII bytes, no space)\n",
                what);
        return ZM_CLI_EXIT_USAGE;
    }
    if (cli->stream)
        return s_call_stream(cli, what, cli->args[1]);
    if (cli->arg_count == 2)
        return s_call_once(cli, what, cli->args[1]);
    return s_call_lines(cli, what);
}
