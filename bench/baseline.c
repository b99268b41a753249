//  baseline.c - the libzmq baselines the zmesh figures are compared with, each
//  run with the same payloads in the same run.sh invocation:
//    pushpull     direct PUSH -> PULL, msg/s
//    forwarder    PUSH -> (PULL|PUSH forwarder) -> PULL, msg/s
//    reqrep       direct REQ -> REP, synchronous round trip p50/p99 (us)
//    dealer       direct DEALER -> ROUTER echo, 100 requests in flight, req/s
//    broker-async DEALER client -> minimal broker (ROUTER front, ROUTER back)
//                 -> 2 DEALER workers, 100 in flight, req/s
//    broker-sync  the same, one request at a time, round trip p50/p99 (us)
//  Every role but the measuring one (producer or client, in the main
//  process) is a process of its own with its own libzmq context, as zmesh's
//  broker and peers are. --curve makes the bound side the CURVE server.
//  Results are "NAME VALUE" lines on stdout (common.h).
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_INFLIGHT 100
#define S_WORKERS 2
#define S_MAX_FRAMES 8

typedef struct {
    size_t size;                        //  payload bytes
    double seconds;                     //  measuring time
    bench_curve_t keys;                 //  used when curve is true
    bool curve;
} s_options_t;

//  A role (server, broker, worker, forwarder, sink) runs in a process of its
//  own, as zmesh's broker and peers do: thread switches inside one process
//  are cheaper than switches between processes, and a baseline must not get
//  that advantage. The child is forked before the parent opens any libzmq
//  context, makes its own, and reports lines on a pipe: its endpoints,
//  "ready", a result.
typedef struct {
    pid_t pid;
    int out;                            //  read end of the child's report pipe
} s_child_t;

//  A role's body: arg is its peer's endpoint or a mode, report its pipe.
typedef void(s_role_fn)(const s_options_t *options, const char *arg, FILE *report);

static const bench_curve_t *
s_keys(const s_options_t *options)
{
    return options->curve ? &options->keys : NULL;
}

static void *
s_socket(void *ctx, int type)
{
    void *socket = zmq_socket(ctx, type);
    if (!socket)
        bench_fail("zmq_socket: %s", zmq_strerror(errno));
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    return socket;
}

//  Binds a new socket of type in ctx to an ephemeral port; endpoint gets it.
static void *
s_bind(void *ctx, int type, const s_options_t *options, char *endpoint, size_t size)
{
    void *socket = s_socket(ctx, type);
    bench_curve_server(s_keys(options), socket);
    if (zmq_bind(socket, "tcp://127.0.0.1:*") != 0)
        bench_fail("zmq_bind: %s", zmq_strerror(errno));
    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, endpoint, &size);
    return socket;
}

static void *
s_connect(void *ctx, int type, const s_options_t *options, const char *endpoint)
{
    void *socket = s_socket(ctx, type);
    bench_curve_client(s_keys(options), socket);
    if (zmq_connect(socket, endpoint) != 0)
        bench_fail("zmq_connect: %s", zmq_strerror(errno));
    return socket;
}

//  Receives one multipart message into frames; returns the frame count, or
//  -1 when the context is shut down (or the socket would block, with flags).
static int
s_recv_all(void *socket, zmq_msg_t *frames, int flags)
{
    int count = 0;
    while (true) {
        //  Frames past the last slot overwrite it: no baseline sends that many.
        zmq_msg_t *frame = &frames[count < S_MAX_FRAMES ? count : S_MAX_FRAMES - 1];
        if (count >= S_MAX_FRAMES)
            zmq_msg_close(frame);
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, socket, flags) < 0) {
            zmq_msg_close(frame);
            return -1;
        }
        if (count < S_MAX_FRAMES)
            count++;
        if (!zmq_msg_more(frame))
            return count;
    }
}

//  Sends frames[first..count) as one message (taking them); false on failure.
static bool
s_send_all(void *socket, zmq_msg_t *frames, int first, int count)
{
    for (int i = first; i < count; i++) {
        if (zmq_msg_send(&frames[i], socket, i + 1 < count ? ZMQ_SNDMORE : 0) < 0) {
            for (int j = i; j < count; j++)
                zmq_msg_close(&frames[j]);
            return false;
        }
    }
    return true;
}

//  Forks a child running fn; the parent reads its report with s_expect.
static s_child_t
s_spawn(s_role_fn *fn, const s_options_t *options, const char *arg)
{
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0)
        bench_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    s_child_t child = {.pid = fork(), .out = pipe_fds[0]};
    if (child.pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (child.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   //  a failing benchmark leaves no role behind
        close(pipe_fds[0]);
        FILE *report = fdopen(pipe_fds[1], "w");
        if (!report)
            _exit(1);
        setvbuf(report, NULL, _IOLBF, 0);
        fn(options, arg, report);
        fclose(report);
        _exit(0);
    }
    close(pipe_fds[1]);
    return child;
}

//  Reads the child's next report line into line, waiting up to timeout_ms;
//  fails the program if none comes (the child died or hangs).
static void
s_expect(s_child_t *child, char *line, size_t size, int timeout_ms, const char *what)
{
    size_t used = 0;
    int64_t deadline = bench_now_us() + (int64_t) timeout_ms * 1000;
    while (used + 1 < size) {
        int64_t left = (deadline - bench_now_us()) / 1000;
        struct pollfd item = {child->out, POLLIN, 0};
        if (left <= 0 || poll(&item, 1, (int) left) != 1 || read(child->out, line + used, 1) != 1)
            bench_fail("baseline: no %s from a role within %d ms", what, timeout_ms);
        if (line[used] == '\n')
            break;
        used++;
    }
    line[used] = '\0';
}

static void
s_stop(s_child_t *child)
{
    kill(child->pid, SIGTERM);
    waitpid(child->pid, NULL, 0);
    close(child->out);
}

//  Echoes every message back as it came, until killed.
static void
s_echo(void *socket)
{
    zmq_msg_t frames[S_MAX_FRAMES];
    int count;
    while ((count = s_recv_all(socket, frames, 0)) > 0)
        if (!s_send_all(socket, frames, 0, count))
            break;
}

//  A direct server: arg "rep" (REP) or "router" (ROUTER echo).
static void
s_server_role(const s_options_t *options, const char *arg, FILE *report)
{
    char endpoint[256];
    void *ctx = zmq_ctx_new();
    void *socket = s_bind(ctx, strcmp(arg, "rep") == 0 ? ZMQ_REP : ZMQ_ROUTER, options, endpoint,
                          sizeof endpoint);
    fprintf(report, "%s\n", endpoint);
    s_echo(socket);
}

//  A worker of the minimal broker at arg: says READY, then echoes
//  [client][body].
static void
s_worker_role(const s_options_t *options, const char *arg, FILE *report)
{
    (void) report;
    void *ctx = zmq_ctx_new();
    void *socket = s_connect(ctx, ZMQ_DEALER, options, arg);
    zmq_send(socket, "READY", 5, 0);
    s_echo(socket);
}

//  PULL -> PUSH without looking at the frames.
static void
s_forwarder_role(const s_options_t *options, const char *arg, FILE *report)
{
    (void) arg;
    char in[256], out[256];
    void *ctx = zmq_ctx_new();
    void *pull = s_bind(ctx, ZMQ_PULL, options, in, sizeof in);
    void *push = s_bind(ctx, ZMQ_PUSH, options, out, sizeof out);
    fprintf(report, "%s %s\n", in, out);
    zmq_msg_t frames[S_MAX_FRAMES];
    int count;
    while ((count = s_recv_all(pull, frames, 0)) > 0)
        if (!s_send_all(push, frames, 0, count))
            break;
}

//  The minimal forwarding broker: a ROUTER front (clients) and a ROUTER
//  back (workers). A worker's first message [worker]["READY"] adds it to the
//  ring; a request [client][body] goes to the next worker as
//  [worker][client][body]; a reply [worker][client][body] goes back as
//  [client][body]. Frames are moved, never parsed or copied. Reports
//  "FRONT BACK", then "ready" once S_WORKERS workers registered.
static void
s_broker_role(const s_options_t *options, const char *arg, FILE *report)
{
    (void) arg;
    char front_endpoint[256], back_endpoint[256];
    void *ctx = zmq_ctx_new();
    void *front = s_bind(ctx, ZMQ_ROUTER, options, front_endpoint, sizeof front_endpoint);
    void *back = s_bind(ctx, ZMQ_ROUTER, options, back_endpoint, sizeof back_endpoint);
    fprintf(report, "%s %s\n", front_endpoint, back_endpoint);
    zmq_msg_t workers[16];
    int worker_count = 0, next = 0;
    zmq_msg_t frames[S_MAX_FRAMES + 1];
    zmq_pollitem_t items[2] = {{front, 0, ZMQ_POLLIN, 0}, {back, 0, ZMQ_POLLIN, 0}};
    while (zmq_poll(items, 2, -1) >= 0) {
        for (int i = 0; i < 256; i++) {
            int count = s_recv_all(back, frames, ZMQ_DONTWAIT);
            if (count < 0)
                break;
            if (count == 2 && worker_count < 16) {
                zmq_msg_init(&workers[worker_count]);
                zmq_msg_move(&workers[worker_count++], &frames[0]);
                zmq_msg_close(&frames[1]);
                if (worker_count == S_WORKERS)
                    fprintf(report, "ready\n");
            }
            else if (count >= 3) {
                zmq_msg_close(&frames[0]);
                s_send_all(front, frames, 1, count);
            }
            else
                for (int j = 0; j < count; j++)
                    zmq_msg_close(&frames[j]);
        }
        for (int i = 0; i < 256 && worker_count > 0; i++) {
            int count = s_recv_all(front, frames + 1, ZMQ_DONTWAIT);
            if (count < 0)
                break;
            zmq_msg_init(&frames[0]);
            zmq_msg_copy(&frames[0], &workers[next]);
            next = (next + 1) % worker_count;
            s_send_all(back, frames, 0, count + 1);
        }
    }
}

//  Counts messages until the 1-byte end marker and reports the time it came
//  ("END_US", the monotonic clock is the machine's, so the parent can use
//  it). arg NULL: binds a PULL and reports its endpoint first; else connects
//  to arg and reports "connected".
static void
s_sink_role(const s_options_t *options, const char *arg, FILE *report)
{
    char endpoint[256];
    void *ctx = zmq_ctx_new();
    void *socket;
    if (arg) {
        socket = s_connect(ctx, ZMQ_PULL, options, arg);
        fprintf(report, "connected\n");
    }
    else {
        socket = s_bind(ctx, ZMQ_PULL, options, endpoint, sizeof endpoint);
        fprintf(report, "%s\n", endpoint);
    }
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, socket, 0) >= 0)
        if (zmq_msg_size(&frame) == 1) {
            fprintf(report, "%lld\n", (long long) bench_now_us());
            break;
        }
}

#define S_ROLE_TIMEOUT_MS 10000

//  Pushes payloads into endpoint for the measuring time, then the end marker;
//  reports msg/s as the sink saw them. forward: through a forwarder.
static void
s_run_pipeline(const s_options_t *options, bool forward)
{
    char endpoint[256], back[256], line[600];
    s_child_t forwarder = {.pid = 0}, sink;
    if (forward) {
        forwarder = s_spawn(s_forwarder_role, options, NULL);
        s_expect(&forwarder, line, sizeof line, S_ROLE_TIMEOUT_MS, "forwarder endpoints");
        if (sscanf(line, "%255s %255s", endpoint, back) != 2)
            bench_fail("baseline: bad forwarder report '%s'", line);
        sink = s_spawn(s_sink_role, options, back);
        s_expect(&sink, line, sizeof line, S_ROLE_TIMEOUT_MS, "sink connection");
    }
    else {
        sink = s_spawn(s_sink_role, options, NULL);
        s_expect(&sink, endpoint, sizeof endpoint, S_ROLE_TIMEOUT_MS, "sink endpoint");
    }
    void *producer_ctx = zmq_ctx_new();
    void *producer = s_connect(producer_ctx, ZMQ_PUSH, options, endpoint);

    uint8_t *payload = malloc(options->size);
    bench_payload(payload, options->size);
    for (int i = 0; i < 1000; i++)          //  warm up: connections made, handshakes done
        zmq_send(producer, payload, options->size, 0);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (options->seconds * 1e6);
    long long sent = 0;
    do {
        for (int i = 0; i < 256; i++)
            if (zmq_send(producer, payload, options->size, 0) >= 0)
                sent++;
    } while (bench_now_us() < stop);
    uint8_t end = 0xc0;
    zmq_send(producer, &end, 1, 0);
    s_expect(&sink, line, sizeof line, (int) (options->seconds * 1000) + 60000, "end of run");
    int64_t end_us = atoll(line);
    bench_result("rate", (double) sent / ((double) (end_us - start) / 1e6));

    zmq_close(producer);
    zmq_ctx_term(producer_ctx);
    s_stop(&sink);
    if (forward)
        s_stop(&forwarder);
    free(payload);
}

//  Drives requests at endpoint: with inflight > 1 a DEALER keeps that many
//  in flight and req/s is reported; with 1 each round trip is timed and
//  p50/p99 in microseconds are reported. type: ZMQ_REQ or ZMQ_DEALER.
static void
s_run_client(const s_options_t *options, const char *endpoint, int type, int inflight)
{
    void *ctx = zmq_ctx_new();
    void *client = s_connect(ctx, type, options, endpoint);
    uint8_t *payload = malloc(options->size);
    uint8_t *reply = malloc(options->size + 16);
    bench_payload(payload, options->size);
    for (int i = 0; i < 100; i++) {         //  warm up
        zmq_send(client, payload, options->size, 0);
        zmq_recv(client, reply, options->size + 16, 0);
    }
    size_t capacity = 1 << 20, samples = 0;
    int64_t *latency = malloc(capacity * sizeof *latency);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (options->seconds * 1e6);
    long long done = 0;
    int pending = 0;
    while (true) {
        int64_t now = bench_now_us();
        if (now >= stop)
            break;
        while (pending < inflight) {
            zmq_send(client, payload, options->size, 0);
            pending++;
        }
        if (zmq_recv(client, reply, options->size + 16, 0) < 0)
            bench_fail("recv: %s", zmq_strerror(errno));
        pending--;
        done++;
        if (inflight == 1 && samples < capacity)
            latency[samples++] = bench_now_us() - now;
    }
    int64_t elapsed = bench_now_us() - start;
    while (pending-- > 0)
        zmq_recv(client, reply, options->size + 16, 0);
    if (inflight == 1) {
        bench_result("p50", bench_percentile(latency, samples, 50));
        bench_result("p99", bench_percentile(latency, samples, 99));
    }
    else
        bench_result("rate", (double) done / ((double) elapsed / 1e6));
    free(latency);
    free(reply);
    free(payload);
    zmq_close(client);
    zmq_ctx_term(ctx);
}

//  A direct server (REP or ROUTER echo) and a client.
static void
s_run_direct(const s_options_t *options, const char *server, int client_type, int inflight)
{
    char endpoint[256];
    s_child_t child = s_spawn(s_server_role, options, server);
    s_expect(&child, endpoint, sizeof endpoint, S_ROLE_TIMEOUT_MS, "server endpoint");
    s_run_client(options, endpoint, client_type, inflight);
    s_stop(&child);
}

static void
s_run_broker(const s_options_t *options, int inflight)
{
    char front[256], back[256], line[600];
    s_child_t broker = s_spawn(s_broker_role, options, NULL);
    s_expect(&broker, line, sizeof line, S_ROLE_TIMEOUT_MS, "broker endpoints");
    if (sscanf(line, "%255s %255s", front, back) != 2)
        bench_fail("baseline: bad broker report '%s'", line);
    s_child_t workers[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++)
        workers[i] = s_spawn(s_worker_role, options, back);
    s_expect(&broker, line, sizeof line, S_ROLE_TIMEOUT_MS, "workers' registration");
    s_run_client(options, front, ZMQ_DEALER, inflight);
    for (int i = 0; i < S_WORKERS; i++)
        s_stop(&workers[i]);
    s_stop(&broker);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_baseline MODE [--size BYTES] [--seconds S] [--curve]\n"
                    "MODE: pushpull forwarder reqrep dealer broker-async broker-sync\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    if (argc < 2)
        s_usage();
    bench_options_t common = BENCH_OPTIONS_DEFAULT;
    for (int i = 2; i < argc; i++)
        if (!bench_option(&common, argc, argv, &i, true))
            s_usage();
    bench_options_check(&common);
    s_options_t options = {.size = common.size, .seconds = common.seconds, .curve = common.curve};
    if (options.curve)
        bench_curve_init(&options.keys);
    const char *mode = argv[1];
    if (strcmp(mode, "pushpull") == 0)
        s_run_pipeline(&options, false);
    else if (strcmp(mode, "forwarder") == 0)
        s_run_pipeline(&options, true);
    else if (strcmp(mode, "reqrep") == 0)
        s_run_direct(&options, "rep", ZMQ_REQ, 1);
    else if (strcmp(mode, "dealer") == 0)
        s_run_direct(&options, "router", ZMQ_DEALER, S_INFLIGHT);
    else if (strcmp(mode, "broker-async") == 0)
        s_run_broker(&options, S_INFLIGHT);
    else if (strcmp(mode, "broker-sync") == 0)
        s_run_broker(&options, 1);
    else
        s_usage();
    return 0;
}
