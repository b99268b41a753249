//  cmd_pull.c - `zmesh pull PIPELINE`: consumes a pipeline and prints each message as one
//  compact JSON line on stdout (with --meta, wrapped with its id and attempt). A message is
//  acknowledged only after its line was written and flushed, so a message pull could not print
//  (stdout closed, no JSON form) goes back to the pipeline when pull leaves, never lost. The
//  messages already received are printed together, flushed once, then acknowledged.
//  SIGINT and SIGTERM end the loop; leaving destroys the consumer, which tells the broker
//  (DISCONNECT) so the messages still held go to other consumers at once.
#define _GNU_SOURCE                 //  asprintf

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "zm_json.h"

#define S_SLICE_MS 200              //  longest wait between two looks at the stop flag

static volatile sig_atomic_t s_signal;     //  the signal that stopped us; 0 if none

static void
s_on_signal(int signal_number)
{
    s_signal = signal_number;
}

//  Installs handler for SIGINT and SIGTERM (without SA_RESTART, so waits wake up) and ignores
//  SIGPIPE, so that a closed stdout is an error we report, not a death without DISCONNECT.
static void
s_handle_signals(void (*handler)(int))
{
    struct sigaction action = {.sa_handler = handler};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, handler == SIG_DFL ? SIG_DFL : SIG_IGN);
}

static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Prints one message as a JSON line into stdout's buffer. Returns the exit code.
static int
s_print(const char *what, const zmesh_msg_t *msg, const zmesh_delivery_t *delivery, bool meta)
{
    char *body = NULL;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_msgpack_to_json(zmesh_msg_data(msg), zmesh_msg_size(msg), &body, error,
                           sizeof error) != ZMESH_OK) {
        fprintf(stderr, "zmesh: %s: message %llu has no JSON form: %s\n", what,
                (unsigned long long) delivery->id, error);
        return ZM_CLI_EXIT_FAILED;
    }
    int written = 0;
    if (meta)
        written = printf("{\"id\":%llu,\"attempt\":%lu,\"redelivered\":%s,\"body\":%s}\n",
                         (unsigned long long) delivery->id, (unsigned long) delivery->attempt,
                         delivery->redelivered ? "true" : "false", body);
    else
        written = printf("%s\n", body);
    free(body);
    if (written < 0) {
        fprintf(stderr, "zmesh: %s: cannot write to stdout: %s\n", what, strerror(errno));
        return ZM_CLI_EXIT_FAILED;
    }
    return ZM_CLI_EXIT_OK;
}

//  The messages of one batch: printed, not yet flushed nor acknowledged.
typedef struct {
    uint64_t *ids;              //  owned: their ids, credit of them at most
    int count;                  //  ids held
} s_batch_t;

//  Flushes stdout, then acknowledges the batch: once acknowledged, a message exists only in
//  our output, so it must be written first. Returns the exit code.
static int
s_settle(const char *what, zmesh_consumer_t *consumer, s_batch_t *batch)
{
    if (fflush(stdout) == EOF) {
        fprintf(stderr, "zmesh: %s: cannot write to stdout: %s\n", what, strerror(errno));
        return ZM_CLI_EXIT_FAILED;  //  not acknowledged: they go back to the pipeline
    }
    for (int index = 0; index < batch->count; index++) {
        int rc = zmesh_consumer_ack(consumer, batch->ids[index]);
        if (rc != ZMESH_OK)
            return zm_cli_fail(what, rc, "cannot acknowledge a message");
    }
    batch->count = 0;
    return ZM_CLI_EXIT_OK;
}

//  Receives up to `room` messages, waiting wait_ms for the first and taking only those already
//  there after it, and prints them. Returns the exit code; batch holds what was printed.
static int
s_take(const zm_cli_t *cli, const char *what, zmesh_consumer_t *consumer, int wait_ms,
       int room, s_batch_t *batch)
{
    while (batch->count < room) {
        zmesh_msg_t *msg = NULL;
        zmesh_delivery_t delivery = {0};
        int rc = zmesh_consumer_recv(consumer, batch->count == 0 ? wait_ms : 0, &msg, &delivery);
        if (rc == ZMESH_EAGAIN || (rc == ZMESH_ECLOSED && s_signal))
            return ZM_CLI_EXIT_OK;
        if (rc != ZMESH_OK)
            return zm_cli_fail(what, rc, zmesh_consumer_error(consumer));
        int exit_code = s_print(what, msg, &delivery, cli->meta);
        zmesh_msg_destroy(&msg);
        if (exit_code != ZM_CLI_EXIT_OK)
            return exit_code;       //  not acknowledged: it goes back to the pipeline
        batch->ids[batch->count++] = delivery.id;
    }
    return ZM_CLI_EXIT_OK;
}

//  Receives, prints and acknowledges messages until --count, --timeout, a signal or a failure.
//  Messages already received are printed together and flushed once: a write per message would
//  cost more than the rest of the work.
static int
s_pull(const zm_cli_t *cli, const char *what, zmesh_consumer_t *consumer, int credit)
{
    s_batch_t batch = {.ids = calloc((size_t) credit, sizeof *batch.ids)};
    if (!batch.ids)
        abort();                    //  out of memory aborts, as zm_alloc does
    int received = 0;
    int exit_code = ZM_CLI_EXIT_OK;
    int64_t last_at = s_now_ms();
    while (exit_code == ZM_CLI_EXIT_OK && !s_signal
           && (cli->count == 0 || received < cli->count)) {
        int wait_ms = S_SLICE_MS;
        if (cli->timeout_ms > 0) {
            int64_t left = last_at + cli->timeout_ms - s_now_ms();
            if (left <= 0) {
                fprintf(stderr, "zmesh: %s: timed out: no message for %d ms (%d received, "
                                "broker %s)%s%s\n", what, cli->timeout_ms, received, cli->broker,
                        cli->curve && received == 0 ? "; " : "",
                        cli->curve && received == 0 ? ZM_CLI_CURVE_HINT : "");
                exit_code = ZM_CLI_EXIT_TIMEOUT;
                break;
            }
            wait_ms = left < S_SLICE_MS ? (int) left : S_SLICE_MS;
        }
        int room = cli->count > 0 && cli->count - received < credit ? cli->count - received
                                                                     : credit;
        exit_code = s_take(cli, what, consumer, wait_ms, room, &batch);
        received += batch.count;
        if (batch.count > 0)
            last_at = s_now_ms();
        //  Done: take nothing more before the last acks free credit, or the
        //  broker would send messages that then come back flagged redelivered.
        if (cli->count > 0 && received >= cli->count)
            zmesh_consumer_leave(consumer);
        //  What was printed before a failure is still flushed and acknowledged.
        int settled = s_settle(what, consumer, &batch);
        exit_code = exit_code != ZM_CLI_EXIT_OK ? exit_code : settled;
    }
    free(batch.ids);
    if (exit_code == ZM_CLI_EXIT_OK && s_signal && cli->count > 0 && received < cli->count) {
        fprintf(stderr, "zmesh: %s: stopped by a signal after %d of %d messages\n", what,
                received, cli->count);
        return ZM_CLI_EXIT_FAILED;
    }
    return exit_code;
}

int
zm_cli_pull(const zm_cli_t *cli)
{
    char what[300];
    snprintf(what, sizeof what, "pull %s", cli->args[0]);
    if (!zm_cli_pipeline_ok(what, cli->args[0]))
        return ZM_CLI_EXIT_USAGE;
    int err = ZMESH_OK;
    zmesh_consumer_t *consumer =
        zmesh_consumer_new_secure(cli->broker, cli->args[0], cli->curve, &err);
    if (!consumer) {
        char detail[300];
        snprintf(detail, sizeof detail, "cannot use broker endpoint '%s'", cli->broker);
        zm_cli_fail(what, err, detail);
        return err == ZMESH_EINVAL ? ZM_CLI_EXIT_USAGE : ZM_CLI_EXIT_FAILED;
    }
    //  No more credit than messages wanted: `--count 1` must not take a second message from
    //  the pipeline only to hand it back, flagged as redelivered, when it leaves.
    int credit = cli->count > 0 && cli->count < cli->credit ? cli->count : cli->credit;
    zmesh_consumer_set_credit(consumer, credit);
    s_handle_signals(s_on_signal);
    int exit_code = s_pull(cli, what, consumer, credit);
    zmesh_consumer_destroy(&consumer);      //  DISCONNECT: what we hold goes back at once
    s_handle_signals(SIG_DFL);
    return exit_code;
}
