//  cmd_push.c - `zmesh push PIPELINE`: sends one message into a pipeline per stdin line (one
//  JSON value, converted to MessagePack) or, with --raw, per MessagePack object of stdin. In
//  queued mode (the default) messages are sent without waiting for their receipts, the
//  producer's window bounding how many are in flight, and a flush at the end waits until the
//  broker accepted every one, so exit 0 means nothing was lost. In accepted and processed mode
//  each message is sent and waited for before the next line is read, for interactive use. The
//  first bad input or failed message stops the command; what was sent before it is still
//  flushed. It prints nothing on stdout.
#define _GNU_SOURCE                 //  asprintf

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "raw_reader.h"
#include "zm_json.h"
#include "zm_line.h"

#define S_INPUT_MAX (64u << 20)     //  longest line or raw object, in bytes
#define S_IDLE_MS 1000              //  stdin wait between two looks at the producer's receipts

//  One push command's state.
typedef struct {
    const zm_cli_t *cli;        //  borrowed
    const char *what;           //  borrowed: "push PIPELINE", for messages
    zmesh_producer_t *producer; //  owned
    zm_line_reader_t *lines;    //  owned: stdin as JSON lines; NULL with --raw
    zm_raw_reader_t *objects;   //  owned: stdin as MessagePack; NULL without --raw
    size_t line_number;         //  lines (or objects) read so far, for messages
    int flags;                  //  send flags of every message
    bool send_failed;           //  a send failed and was reported
} s_push_t;

//  What reading the next input gave.
typedef enum {
    S_INPUT_MESSAGE,            //  a message to send in *data_p
    S_INPUT_NONE,               //  nothing yet
    S_INPUT_END,                //  end of input
    S_INPUT_FAILED,             //  bad input or a read error, reported; *exit_code_p says which
} s_input_t;

void
zm_cli_producer_detail(const zm_cli_t *cli, zmesh_producer_t *producer, int err, char *buffer,
                       size_t size)
{
    const char *error = zmesh_producer_error(producer);
    if (err == ZMESH_ETIMEDOUT || err == ZMESH_EAGAIN)
        snprintf(buffer, size, "%s%s(%s within %d ms, broker %s)%s%s", error,
                 error[0] ? " " : "",
                 err == ZMESH_EAGAIN ? "the pipeline stayed full or no broker took messages"
                                     : "not settled",
                 cli->timeout_ms, cli->broker, cli->curve ? "; " : "",
                 cli->curve ? ZM_CLI_CURVE_HINT : "");
    else
        snprintf(buffer, size, "%s", error);
}

//  Reports a failed send or flush and returns the exit code.
static int
s_fail(s_push_t *self, int rc)
{
    char detail[512];
    zm_cli_producer_detail(self->cli, self->producer, rc, detail, sizeof detail);
    return zm_cli_fail(self->what, rc, detail);
}

//  Reads the next stdin line as a JSON value converted to MessagePack (*data_p malloc'ed).
static s_input_t
s_next_line(s_push_t *self, int timeout_ms, char **data_p, size_t *size_p, int *exit_code_p)
{
    char *line = NULL;
    size_t length = 0;
    zm_line_status_t status = zm_line_reader_next(self->lines, timeout_ms, &line, &length);
    if (status == ZM_LINE_NONE)
        return S_INPUT_NONE;
    if (status == ZM_LINE_EOF)
        return S_INPUT_END;
    self->line_number++;
    *exit_code_p = ZM_CLI_EXIT_USAGE;
    if (status == ZM_LINE_TOOLONG) {
        fprintf(stderr, "zmesh: %s: line %zu: longer than %u bytes\n", self->what,
                self->line_number, S_INPUT_MAX);
        return S_INPUT_FAILED;
    }
    if (status == ZM_LINE_ERROR) {
        fprintf(stderr, "zmesh: %s: cannot read stdin: %s\n", self->what, strerror(errno));
        *exit_code_p = ZM_CLI_EXIT_FAILED;
        return S_INPUT_FAILED;
    }
    if (strspn(line, " \t\r\f\v") == length)
        return S_INPUT_NONE;        //  a blank line counts for numbering, sends nothing
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_json_to_msgpack(line, length, data_p, size_p, error, sizeof error) != ZMESH_OK) {
        fprintf(stderr, "zmesh: %s: line %zu: %s\n", self->what, self->line_number, error);
        return S_INPUT_FAILED;
    }
    return S_INPUT_MESSAGE;
}

//  Reads the next MessagePack object of stdin (*data_p malloc'ed).
static s_input_t
s_next_object(s_push_t *self, int timeout_ms, char **data_p, size_t *size_p, int *exit_code_p)
{
    const void *data = NULL;
    size_t size = 0;
    zm_raw_status_t status = zm_raw_reader_next(self->objects, timeout_ms, &data, &size);
    if (status == ZM_RAW_NONE)
        return S_INPUT_NONE;
    if (status == ZM_RAW_EOF)
        return S_INPUT_END;
    self->line_number++;
    if (status == ZM_RAW_OK) {
        *data_p = malloc(size);
        if (!*data_p)
            abort();                //  out of memory aborts, as zm_alloc does
        memcpy(*data_p, data, size);
        *size_p = size;
        return S_INPUT_MESSAGE;
    }
    const char *why = status == ZM_RAW_TRUNCATED ? "cut off by the end of input"
                    : status == ZM_RAW_BAD       ? "not MessagePack (or nested over 64 deep)"
                    : status == ZM_RAW_TOOBIG    ? "over 64 MiB"
                                                 : strerror(errno);
    fprintf(stderr, "zmesh: %s: object %zu at byte %llu: %s\n", self->what, self->line_number,
            (unsigned long long) zm_raw_reader_offset(self->objects), why);
    *exit_code_p = status == ZM_RAW_ERROR ? ZM_CLI_EXIT_FAILED : ZM_CLI_EXIT_USAGE;
    return S_INPUT_FAILED;
}

//  Sends every input until the end, the first bad input or the first failed message.
static int
s_send_all(s_push_t *self)
{
    while (true) {
        char *data = NULL;
        size_t size = 0;
        int exit_code = ZM_CLI_EXIT_OK;
        //  In queued mode, a pause in the input is the time to look at the receipts, so a
        //  refused message is reported while the user is still typing.
        bool queued = (self->flags & ZMESH_MODE_MASK) == ZMESH_QUEUED;
        int timeout_ms = queued ? S_IDLE_MS : -1;
        s_input_t input = self->lines
                            ? s_next_line(self, timeout_ms, &data, &size, &exit_code)
                            : s_next_object(self, timeout_ms, &data, &size, &exit_code);
        if (input == S_INPUT_END)
            return ZM_CLI_EXIT_OK;
        if (input == S_INPUT_FAILED)
            return exit_code;
        int rc = ZMESH_OK;
        if (input == S_INPUT_NONE && queued) {
            rc = zmesh_producer_flush(self->producer, 0);
            rc = rc == ZMESH_ETIMEDOUT ? ZMESH_OK : rc;     //  some are still on their way
        }
        else if (input == S_INPUT_MESSAGE) {
            rc = zmesh_producer_send(self->producer, data, size, self->flags);
            free(data);
        }
        if (rc != ZMESH_OK) {
            self->send_failed = true;
            return s_fail(self, rc);
        }
    }
}

zmesh_producer_t *
zm_cli_producer_new(const zm_cli_t *cli, const char *what, const char *pipeline,
                    int *exit_code_p)
{
    int err = ZMESH_OK;
    zmesh_producer_t *producer =
        zmesh_producer_new_secure(cli->broker, pipeline, cli->curve, &err);
    if (!producer) {
        char detail[300];
        snprintf(detail, sizeof detail, "cannot use broker endpoint '%s'", cli->broker);
        zm_cli_fail(what, err, detail);
        *exit_code_p = err == ZMESH_EINVAL ? ZM_CLI_EXIT_USAGE : ZM_CLI_EXIT_FAILED;
        return NULL;
    }
    zmesh_producer_set_mode(producer, cli->mode);
    zmesh_producer_set_timeout(producer, cli->timeout_ms);
    if (cli->window > 0)
        zmesh_producer_set_window(producer, cli->window);
    return producer;
}

int
zm_cli_push(const zm_cli_t *cli)
{
    char what[300];
    snprintf(what, sizeof what, "push %s", cli->args[0]);
    if (!zm_cli_pipeline_ok(what, cli->args[0]))
        return ZM_CLI_EXIT_USAGE;
    int exit_code = ZM_CLI_EXIT_OK;
    s_push_t self = {.cli = cli, .what = what};
    self.producer = zm_cli_producer_new(cli, what, cli->args[0], &exit_code);
    if (!self.producer)
        return exit_code;
    self.flags = cli->mode == ZMESH_QUEUED ? ZMESH_QUEUED | ZMESH_ASYNC : cli->mode;
    if (cli->raw)
        self.objects = zm_raw_reader_new(STDIN_FILENO, S_INPUT_MAX);
    else
        self.lines = zm_line_reader_new(STDIN_FILENO, S_INPUT_MAX);
    exit_code = s_send_all(&self);
    //  Whatever stopped us, what was sent before it must reach the broker: a bad line must not
    //  cost the good ones. A failed flush outranks a bad line's exit code 2, which tells the
    //  caller that every line before it was accepted. After a failed send, the flush may
    //  report the same failure again: it was told once.
    int rc = zmesh_producer_flush(self.producer, cli->timeout_ms);
    if (rc != ZMESH_OK && !self.send_failed)
        exit_code = s_fail(&self, rc);
    zm_raw_reader_destroy(&self.objects);
    zm_line_reader_destroy(&self.lines);
    zmesh_producer_destroy(&self.producer);
    return exit_code;
}
