//  cmd_bench.c - `zmesh bench call SERVICE` and `zmesh bench push PIPELINE`: drive a running
//  broker with synthetic calls (K in flight) or pushes, then print the throughput and the
//  latency percentiles, as text or one JSON object on stdout. While it runs, a progress line
//  goes to stderr about once a second. The first failed call or message ends the run with the
//  exit code `zmesh call` or `zmesh push` would give, and no results: a figure measured over
//  failures would mislead. SIGINT ends the sending early; what is in flight is still waited for
//  and the results so far are printed.
#define _GNU_SOURCE                 //  sigaction's SA_RESETHAND

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "zm_proto.h"

#define S_GRACE_MS 1000             //  past a call's timeout, when we stop trusting the library
#define S_TICK_MS 100               //  longest wait between two looks at the clock

//  A call in flight: its request id (0: a free slot) and when it was sent.
typedef struct {
    uint64_t id;
    uint64_t sent_us;
} s_slot_t;

//  One bench run.
typedef struct {
    const zm_cli_t *cli;        //  borrowed
    const char *what;           //  borrowed: "bench call SERVICE", for messages
    const char *kind;           //  borrowed: "call" or "push"
    const char *unit;           //  "calls" or "msg"
    char *payload;              //  owned: the MessagePack string sent every time
    size_t payload_size;
    uint64_t start_us;          //  when the timed part began
    uint64_t end_us;            //  when it ended
    uint64_t sent;              //  calls or messages sent
    uint64_t done;              //  calls answered, or messages settled
    int progress;               //  0: none; 1: one line redrawn (a terminal); 2: a line each
    uint64_t next_tick_us;      //  when the next progress line is due
    uint64_t tick_done;         //  done at the last progress line
    uint64_t tick_us;           //  time of the last progress line
    uint32_t *latencies;        //  owned: microseconds per call or message, in completion order
    size_t latency_count;
    size_t latency_capacity;
    s_slot_t *slots;            //  owned: calls in flight, open addressing on the request id
    size_t slot_mask;           //  slot count - 1 (a power of two)
} s_bench_t;

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_sigint(int signal_number)
{
    (void) signal_number;
    s_interrupted = 1;
}

static uint64_t
s_now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t) now.tv_sec * 1000000u + (uint64_t) now.tv_nsec / 1000u;
}

static void *
s_alloc(size_t size)
{
    void *memory = calloc(1, size ? size : 1);
    if (!memory)
        abort();                    //  out of memory aborts, as zm_alloc does
    return memory;
}

//  Makes the payload: one MessagePack string of x's that is exactly size bytes with its header.
static char *
s_payload_new(size_t size)
{
    char *data = s_alloc(size);
    size_t header;
    if (size <= 32) {               //  fixstr: 0..31 bytes
        header = 1;
        data[0] = (char) (0xa0 | (size - 1));
    }
    else if (size <= 257) {         //  str 8
        header = 2;
        data[0] = (char) 0xd9;
        data[1] = (char) (size - 2);
    }
    else if (size <= 65538) {       //  str 16
        header = 3;
        data[0] = (char) 0xda;
        data[1] = (char) ((size - 3) >> 8);
        data[2] = (char) (size - 3);
    }
    else {                          //  str 32
        header = 5;
        data[0] = (char) 0xdb;
        for (int byte = 0; byte < 4; byte++)
            data[1 + byte] = (char) ((size - 5) >> (24 - 8 * byte));
    }
    memset(data + header, 'x', size - header);
    return data;
}

static void
s_record(s_bench_t *self, uint64_t latency_us)
{
    if (self->latency_count == self->latency_capacity) {
        self->latency_capacity = self->latency_capacity ? self->latency_capacity * 2 : 4096;
        self->latencies = realloc(self->latencies,
                                  self->latency_capacity * sizeof self->latencies[0]);
        if (!self->latencies)
            abort();
    }
    self->latencies[self->latency_count++] =
        latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t) latency_us;
}

//  True while more should be sent: --count not reached, --duration not over, no SIGINT.
static bool
s_more(const s_bench_t *self, uint64_t now_us)
{
    if (s_interrupted)
        return false;
    if (self->cli->count > 0)
        return self->sent < (uint64_t) self->cli->count;
    return now_us - self->start_us < (uint64_t) self->cli->duration_s * 1000000u;
}

//  Prints a progress line when one is due.
static void
s_progress(s_bench_t *self, uint64_t now_us)
{
    if (!self->progress || now_us < self->next_tick_us)
        return;
    double seconds = (double) (now_us - self->tick_us) / 1e6;
    double rate = seconds > 0 ? (double) (self->done - self->tick_done) / seconds : 0;
    fprintf(stderr, "%szmesh: %s: %.0f s, %llu %s, %.0f %s/s%s", self->progress == 1 ? "\r" : "",
            self->what, (double) (now_us - self->start_us) / 1e6,
            (unsigned long long) self->done, self->unit, rate, self->unit,
            self->progress == 1 ? "\033[K" : "\n");
    fflush(stderr);
    self->tick_done = self->done;
    self->tick_us = now_us;
    self->next_tick_us = now_us + 1000000u;
}

//  Erases the redrawn progress line, so what follows starts on a clean line.
static void
s_progress_end(s_bench_t *self)
{
    if (self->progress == 1 && self->tick_us != self->start_us) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

//  ---------------------------------------------------------------------------------------
//  bench call

static s_slot_t *
s_slot_find(s_bench_t *self, uint64_t id)
{
    for (size_t index = id & self->slot_mask;; index = (index + 1) & self->slot_mask) {
        s_slot_t *slot = &self->slots[index];
        if (slot->id == id || slot->id == 0)
            return slot;            //  the call's slot, or the free one where it would go
    }
}

//  Frees a slot of linear probing: moves back the entries after it that would no longer be
//  found past the hole (no tombstones, so lookups stay short however long the run).
static void
s_slot_free(s_bench_t *self, s_slot_t *slot)
{
    size_t hole = (size_t) (slot - self->slots);
    size_t index = hole;
    while (true) {
        index = (index + 1) & self->slot_mask;
        s_slot_t *next = &self->slots[index];
        if (next->id == 0)
            break;
        size_t home = next->id & self->slot_mask;
        //  next may fill the hole if its home is not in (hole, index], cyclically
        bool stays = hole <= index ? (home > hole && home <= index)
                                   : (home > hole || home <= index);
        if (!stays) {
            self->slots[hole] = *next;
            hole = index;
        }
    }
    self->slots[hole].id = 0;
}

//  Reports a failed call and returns the exit code.
static int
s_call_fail(s_bench_t *self, zmesh_client_t *client, int rc)
{
    s_progress_end(self);
    char detail[512];
    zm_cli_detail(self->cli, client, rc, detail, sizeof detail);
    return zm_cli_fail(self->what, rc, detail);
}

//  Sends calls until K are in flight or no more should be sent.
static int
s_call_fill(s_bench_t *self, zmesh_client_t *client, size_t *pending_p)
{
    const zm_cli_t *cli = self->cli;
    while (*pending_p < (size_t) cli->inflight && s_more(self, s_now_us())) {
        uint64_t id = 0;
        uint64_t sent_us = s_now_us();
        int rc = zmesh_client_send(client, cli->args[1], self->payload, self->payload_size,
                                   cli->timeout_ms, &id);
        if (rc != ZMESH_OK)
            return s_call_fail(self, client, rc);
        s_slot_t *slot = s_slot_find(self, id);
        slot->id = id;
        slot->sent_us = sent_us;
        self->sent++;
        (*pending_p)++;
    }
    return ZM_CLI_EXIT_OK;
}

//  Runs the timed calls. Returns the exit code.
static int
s_call_run(s_bench_t *self, zmesh_client_t *client)
{
    const zm_cli_t *cli = self->cli;
    size_t slot_count = 2;
    while (slot_count < 2 * (size_t) cli->inflight)
        slot_count *= 2;
    self->slots = s_alloc(slot_count * sizeof self->slots[0]);
    self->slot_mask = slot_count - 1;
    size_t pending = 0;
    uint64_t last_answer_us = s_now_us();
    uint64_t patience_us = ((uint64_t) cli->timeout_ms + S_GRACE_MS) * 1000u;
    while (true) {
        int exit_code = s_call_fill(self, client, &pending);
        if (exit_code != ZM_CLI_EXIT_OK)
            return exit_code;
        if (pending == 0)
            return ZM_CLI_EXIT_OK;
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_recv(client, S_TICK_MS, &id, &reply);
        uint64_t now_us = s_now_us();
        zmesh_msg_destroy(&reply);
        s_slot_t *slot = id ? s_slot_find(self, id) : NULL;
        if (slot && slot->id == id) {
            if (rc != ZMESH_OK)
                return s_call_fail(self, client, rc);
            s_record(self, now_us - slot->sent_us);
            s_slot_free(self, slot);
            pending--;
            self->done++;
            last_answer_us = now_us;
        }
        else if (id == 0 && rc != ZMESH_EAGAIN && rc != ZMESH_OK)
            return s_call_fail(self, client, rc);       //  the client itself failed
        else if (id == 0 && now_us - last_answer_us > patience_us)
            return s_call_fail(self, client, ZMESH_ETIMEDOUT);  //  the library owed us one
        s_progress(self, now_us);
    }
}

static int
s_bench_call(s_bench_t *self)
{
    const zm_cli_t *cli = self->cli;
    if (!zm_proto_valid_name(cli->args[1], strlen(cli->args[1]))) {
        fprintf(stderr, "zmesh: %s: bad service name (1 to 255 printable ASCII bytes, no space)\n",
                self->what);
        return ZM_CLI_EXIT_USAGE;
    }
    int exit_code = ZM_CLI_EXIT_OK;
    zmesh_client_t *client = zm_cli_connect(cli, self->what, &exit_code);
    if (!client)
        return exit_code;
    //  One untimed call connects and checks the service answers; the first timed call would
    //  otherwise carry the connection set-up, and a missing service would cost a run.
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, cli->args[1], self->payload, self->payload_size,
                               cli->timeout_ms, &reply);
    zmesh_msg_destroy(&reply);
    if (rc != ZMESH_OK)
        exit_code = s_call_fail(self, client, rc);
    else {
        self->start_us = self->tick_us = s_now_us();
        self->next_tick_us = self->start_us + 1000000u;
        exit_code = s_call_run(self, client);
        self->end_us = s_now_us();
    }
    zmesh_client_destroy(&client);
    return exit_code;
}

//  ---------------------------------------------------------------------------------------
//  bench push

static int
s_push_fail(s_bench_t *self, zmesh_producer_t *producer, int rc)
{
    s_progress_end(self);
    char detail[512];
    zm_cli_producer_detail(self->cli, producer, rc, detail, sizeof detail);
    return zm_cli_fail(self->what, rc, detail);
}

//  Sends the messages; with a window of 1 in accepted or processed mode each waits for its
//  receipt and is timed, otherwise they go without waiting and the final flush settles them.
static int
s_push_run(s_bench_t *self, zmesh_producer_t *producer, bool timed)
{
    const zm_cli_t *cli = self->cli;
    int flags = timed ? cli->mode : cli->mode | ZMESH_ASYNC;
    uint64_t now_us = s_now_us();
    while (s_more(self, now_us)) {
        uint64_t sent_us = now_us;
        int rc = zmesh_producer_send(producer, self->payload, self->payload_size, flags);
        now_us = s_now_us();
        if (rc != ZMESH_OK && !(s_interrupted && (rc == ZMESH_EAGAIN || rc == ZMESH_ETIMEDOUT)))
            return s_push_fail(self, producer, rc);
        if (rc == ZMESH_EAGAIN)
            break;                  //  SIGINT before it entered the window: not sent
        self->sent++;
        if (timed && rc == ZMESH_OK)
            s_record(self, now_us - sent_us);
        self->done = self->sent - zmesh_producer_pending(producer);
        if (now_us >= self->next_tick_us && !timed) {
            //  a look at the receipts, so a refused message is reported while we run
            rc = zmesh_producer_flush(producer, 0);
            if (rc != ZMESH_OK && rc != ZMESH_ETIMEDOUT)
                return s_push_fail(self, producer, rc);
        }
        s_progress(self, now_us);
    }
    //  Every message sent must be settled before the clock stops; the progress line goes on
    //  meanwhile. An interrupted timed send leaves one message to settle too.
    uint64_t deadline_us = s_now_us() + (uint64_t) cli->timeout_ms * 1000u;
    while (true) {
        int rc = zmesh_producer_flush(producer, S_TICK_MS);
        now_us = s_now_us();
        self->done = self->sent - zmesh_producer_pending(producer);
        if (rc == ZMESH_OK)
            return ZM_CLI_EXIT_OK;
        if (rc != ZMESH_ETIMEDOUT || now_us >= deadline_us)
            return s_push_fail(self, producer, rc);
        s_progress(self, now_us);
    }
}

static int
s_bench_push(s_bench_t *self)
{
    const zm_cli_t *cli = self->cli;
    if (!zm_cli_pipeline_ok(self->what, cli->args[1]))
        return ZM_CLI_EXIT_USAGE;
    int exit_code = ZM_CLI_EXIT_OK;
    zmesh_producer_t *producer = zm_cli_producer_new(cli, self->what, cli->args[1], &exit_code);
    if (!producer)
        return exit_code;
    bool timed = cli->mode != ZMESH_QUEUED && cli->window == 1;
    self->start_us = self->tick_us = s_now_us();
    self->next_tick_us = self->start_us + 1000000u;
    exit_code = s_push_run(self, producer, timed);
    self->end_us = s_now_us();
    zmesh_producer_destroy(&producer);
    return exit_code;
}

//  ---------------------------------------------------------------------------------------
//  Results

static int
s_compare(const void *left, const void *right)
{
    uint32_t a = *(const uint32_t *) left, b = *(const uint32_t *) right;
    return (a > b) - (a < b);
}

//  The nearest-rank percentile of the sorted latencies.
static uint32_t
s_percentile(const s_bench_t *self, size_t percent)
{
    size_t rank = (percent * self->latency_count + 99) / 100;
    return self->latencies[rank > 0 ? rank - 1 : 0];
}

//  Writes text as a JSON string (a ZMP name: printable ASCII, so only " and \ need escapes).
static void
s_json_string(const char *text)
{
    putchar('"');
    for (; *text; text++) {
        if (*text == '"' || *text == '\\')
            putchar('\\');
        putchar(*text);
    }
    putchar('"');
}

static const char *
s_mode_name(int mode)
{
    return mode == ZMESH_PROCESSED ? "processed" : mode == ZMESH_ACCEPTED ? "accepted" : "queued";
}

static int
s_print_results(s_bench_t *self)
{
    const zm_cli_t *cli = self->cli;
    bool call = strcmp(self->kind, "call") == 0;
    double seconds = (double) (self->end_us - self->start_us) / 1e6;
    double rate = seconds > 0 ? (double) self->done / seconds : 0;
    uint64_t sum = 0;
    for (size_t index = 0; index < self->latency_count; index++)
        sum += self->latencies[index];
    bool latency = self->latency_count > 0;
    uint32_t figures[6] = {0};
    if (latency) {
        qsort(self->latencies, self->latency_count, sizeof self->latencies[0], s_compare);
        figures[0] = self->latencies[0];
        figures[1] = s_percentile(self, 50);
        figures[2] = s_percentile(self, 90);
        figures[3] = s_percentile(self, 99);
        figures[4] = self->latencies[self->latency_count - 1];
        figures[5] = (uint32_t) ((sum + self->latency_count / 2) / self->latency_count);
    }
    if (cli->json) {
        printf("{\"command\":\"%s\",\"target\":", self->kind);
        s_json_string(cli->args[1]);
        printf(",\"count\":%llu,\"size\":%zu,", (unsigned long long) self->done,
               self->payload_size);
        if (call)
            printf("\"inflight\":%d,", cli->inflight);
        else
            printf("\"mode\":\"%s\",\"window\":%d,", s_mode_name(cli->mode),
                   cli->window > 0 ? cli->window : 1000);
        printf("\"seconds\":%.3f,\"rate\":%.0f,\"latency_us\":", seconds, rate);
        if (latency)
            printf("{\"min\":%u,\"p50\":%u,\"p90\":%u,\"p99\":%u,\"max\":%u,\"mean\":%u}}\n",
                   figures[0], figures[1], figures[2], figures[3], figures[4], figures[5]);
        else
            printf("null}\n");
    }
    else {
        printf("%s: %llu %s of %zu bytes, ", self->what, (unsigned long long) self->done,
               call ? "calls" : "messages", self->payload_size);
        if (call)
            printf("%d in flight", cli->inflight);
        else
            printf("%s, window %d", s_mode_name(cli->mode), cli->window > 0 ? cli->window : 1000);
        printf(", in %.3f s\n  throughput  %.0f %s/s\n", seconds, rate, self->unit);
        if (latency)
            printf("  latency us  min %u  p50 %u  p90 %u  p99 %u  max %u  mean %u\n", figures[0],
                   figures[1], figures[2], figures[3], figures[4], figures[5]);
        else
            printf("  latency     not measured (%s)\n",
                   cli->mode == ZMESH_QUEUED
                       ? "queued mode has no per-message receipt"
                       : "a window above 1 settles messages in bulk: use --window 1");
    }
    if (fflush(stdout) == EOF) {
        fprintf(stderr, "zmesh: %s: cannot write to stdout\n", self->what);
        return ZM_CLI_EXIT_FAILED;
    }
    return ZM_CLI_EXIT_OK;
}

int
zm_cli_bench(const zm_cli_t *cli)
{
    char what[300];
    snprintf(what, sizeof what, "bench %s %s", cli->args[0], cli->args[1]);
    bool call = strcmp(cli->args[0], "call") == 0;
    s_bench_t self = {
        .cli = cli,
        .what = what,
        .kind = call ? "call" : "push",
        .unit = call ? "calls" : "msg",
        .payload = s_payload_new((size_t) cli->size),
        .payload_size = (size_t) cli->size,
        .progress = isatty(STDERR_FILENO) ? 1 : cli->progress ? 2 : 0,
    };
    //  The first SIGINT ends the sending; SA_RESETHAND lets a second one kill as usual.
    struct sigaction action = {.sa_handler = s_on_sigint, .sa_flags = SA_RESETHAND};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    int exit_code = call ? s_bench_call(&self) : s_bench_push(&self);
    if (exit_code == ZM_CLI_EXIT_OK) {
        s_progress_end(&self);
        exit_code = s_print_results(&self);
    }
    free(self.payload);
    free(self.latencies);
    free(self.slots);
    return exit_code;
}
