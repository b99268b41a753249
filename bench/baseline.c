//  baseline.c - the libzmq baselines the zmesh figures are compared with, each
//  run with the same payloads in the same run.sh invocation:
//    pushpull     direct PUSH -> PULL, msg/s
//    forwarder    PUSH -> (PULL|PUSH forwarder) -> PULL, msg/s
//    reqrep       direct REQ -> REP, synchronous round trip p50/p99 (us)
//    dealer       direct DEALER -> ROUTER echo, 100 requests in flight, req/s
//    broker-async DEALER client -> minimal broker (ROUTER front, ROUTER back)
//                 -> 2 DEALER workers, 100 in flight, req/s
//    broker-sync  the same, one request at a time, round trip p50/p99 (us)
//  Every role has a libzmq context of its own (its own I/O thread), as if it
//  were a process of its own. --curve makes the bound side the CURVE server.
//  Results are "NAME VALUE" lines on stdout (common.h).
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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

//  A role running on a thread of its own with its own context.
typedef struct {
    void *ctx;                          //  owned: shut down to stop the role
    void *socket;                       //  the role's main socket, owned by the thread
    void *other;                        //  a second socket (forwarder, broker), or NULL
    pthread_t thread;
    atomic_int *ready;                  //  broker: workers registered so far
} s_role_t;

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

static void
s_role_start(s_role_t *self, void *(*body)(void *))
{
    if (pthread_create(&self->thread, NULL, body, self) != 0)
        bench_fail("pthread_create failed");
}

static void
s_role_stop(s_role_t *self)
{
    zmq_ctx_shutdown(self->ctx);
    pthread_join(self->thread, NULL);
    zmq_ctx_term(self->ctx);
}

//  Echoes every message back as it came: a REP, a ROUTER server or a worker.
static void *
s_echo_main(void *arg)
{
    s_role_t *self = arg;
    zmq_msg_t frames[S_MAX_FRAMES];
    int count;
    while ((count = s_recv_all(self->socket, frames, 0)) > 0)
        if (!s_send_all(self->socket, frames, 0, count))
            break;
    zmq_close(self->socket);
    return NULL;
}

//  A worker of the minimal broker: says READY, then echoes [client][body].
static void *
s_worker_main(void *arg)
{
    s_role_t *self = arg;
    zmq_send(self->socket, "READY", 5, 0);
    return s_echo_main(arg);
}

//  PULL -> PUSH without looking at the frames.
static void *
s_forwarder_main(void *arg)
{
    s_role_t *self = arg;
    zmq_msg_t frames[S_MAX_FRAMES];
    int count;
    while ((count = s_recv_all(self->socket, frames, 0)) > 0)
        if (!s_send_all(self->other, frames, 0, count))
            break;
    zmq_close(self->socket);
    zmq_close(self->other);
    return NULL;
}

//  The minimal forwarding broker: socket is the ROUTER front (clients), other
//  the ROUTER back (workers). A worker's first message [worker]["READY"] adds
//  it to the ring; a request [client][body] goes to the next worker as
//  [worker][client][body]; a reply [worker][client][body] goes back as
//  [client][body]. Frames are moved, never parsed or copied.
static void *
s_broker_main(void *arg)
{
    s_role_t *self = arg;
    zmq_msg_t workers[16];
    int worker_count = 0, next = 0;
    zmq_msg_t frames[S_MAX_FRAMES + 1];
    zmq_pollitem_t items[2] = {{self->socket, 0, ZMQ_POLLIN, 0}, {self->other, 0, ZMQ_POLLIN, 0}};
    while (zmq_poll(items, 2, -1) >= 0) {
        for (int i = 0; i < 256; i++) {
            int count = s_recv_all(self->other, frames, ZMQ_DONTWAIT);
            if (count < 0)
                break;
            if (count == 2 && worker_count < 16) {
                zmq_msg_init(&workers[worker_count]);
                zmq_msg_move(&workers[worker_count++], &frames[0]);
                zmq_msg_close(&frames[1]);
                atomic_fetch_add(self->ready, 1);
            }
            else if (count >= 3) {
                zmq_msg_close(&frames[0]);
                s_send_all(self->socket, frames, 1, count);
            }
            else
                for (int j = 0; j < count; j++)
                    zmq_msg_close(&frames[j]);
        }
        for (int i = 0; i < 256 && worker_count > 0; i++) {
            int count = s_recv_all(self->socket, frames + 1, ZMQ_DONTWAIT);
            if (count < 0)
                break;
            zmq_msg_init(&frames[0]);
            zmq_msg_copy(&frames[0], &workers[next]);
            next = (next + 1) % worker_count;
            s_send_all(self->other, frames, 0, count + 1);
        }
    }
    for (int i = 0; i < worker_count; i++)
        zmq_msg_close(&workers[i]);
    zmq_close(self->socket);
    zmq_close(self->other);
    return NULL;
}

//  Counts messages until the 1-byte end marker; the time it came is the result.
typedef struct {
    s_role_t role;
    int64_t end_us;
} s_sink_t;

static void *
s_sink_main(void *arg)
{
    s_sink_t *self = arg;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, self->role.socket, 0) >= 0)
        if (zmq_msg_size(&frame) == 1) {
            self->end_us = bench_now_us();
            break;
        }
    zmq_msg_close(&frame);
    zmq_close(self->role.socket);
    return NULL;
}

//  Pushes payloads into endpoint for the measuring time, then the end marker;
//  reports msg/s as the sink saw them. forward: through a forwarder.
static void
s_run_pipeline(const s_options_t *options, bool forward)
{
    char endpoint[256], back[256];
    s_role_t forwarder = {.ctx = zmq_ctx_new()};
    s_sink_t sink = {.role = {.ctx = zmq_ctx_new()}};
    void *producer_ctx = zmq_ctx_new();
    if (forward) {
        forwarder.socket = s_bind(forwarder.ctx, ZMQ_PULL, options, endpoint, sizeof endpoint);
        forwarder.other = s_bind(forwarder.ctx, ZMQ_PUSH, options, back, sizeof back);
        sink.role.socket = s_connect(sink.role.ctx, ZMQ_PULL, options, back);
        s_role_start(&forwarder, s_forwarder_main);
    }
    else
        sink.role.socket = s_bind(sink.role.ctx, ZMQ_PULL, options, endpoint, sizeof endpoint);
    s_role_start(&sink.role, s_sink_main);
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
    pthread_join(sink.role.thread, NULL);
    bench_result("rate", (double) sent / ((double) (sink.end_us - start) / 1e6));

    zmq_close(producer);
    zmq_ctx_term(producer_ctx);
    zmq_ctx_term(sink.role.ctx);
    if (forward)
        s_role_stop(&forwarder);
    else
        zmq_ctx_term(forwarder.ctx);
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
s_run_direct(const s_options_t *options, int server_type, int client_type, int inflight)
{
    char endpoint[256];
    s_role_t server = {.ctx = zmq_ctx_new()};
    server.socket = s_bind(server.ctx, server_type, options, endpoint, sizeof endpoint);
    s_role_start(&server, s_echo_main);
    s_run_client(options, endpoint, client_type, inflight);
    s_role_stop(&server);
}

static void
s_run_broker(const s_options_t *options, int inflight)
{
    char front[256], back[256];
    atomic_int ready = 0;
    s_role_t broker = {.ctx = zmq_ctx_new(), .ready = &ready};
    broker.socket = s_bind(broker.ctx, ZMQ_ROUTER, options, front, sizeof front);
    broker.other = s_bind(broker.ctx, ZMQ_ROUTER, options, back, sizeof back);
    s_role_start(&broker, s_broker_main);
    s_role_t workers[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++) {
        workers[i] = (s_role_t){.ctx = zmq_ctx_new()};
        workers[i].socket = s_connect(workers[i].ctx, ZMQ_DEALER, options, back);
        s_role_start(&workers[i], s_worker_main);
    }
    int64_t deadline = bench_now_us() + 5000000;
    while (atomic_load(&ready) < S_WORKERS)
        if (bench_now_us() > deadline)
            bench_fail("minimal broker: workers did not register");
    s_run_client(options, front, ZMQ_DEALER, inflight);
    for (int i = 0; i < S_WORKERS; i++)
        s_role_stop(&workers[i]);
    s_role_stop(&broker);
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
    s_options_t options = {.size = 64, .seconds = 1.0};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            options.size = (size_t) atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            options.seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--curve") == 0)
            options.curve = true;
        else
            s_usage();
    }
    if (options.size < 3 || options.size > 65000)
        bench_fail("--size must be 3..65000");
    if (options.curve)
        bench_curve_init(&options.keys);
    const char *mode = argv[1];
    if (strcmp(mode, "pushpull") == 0)
        s_run_pipeline(&options, false);
    else if (strcmp(mode, "forwarder") == 0)
        s_run_pipeline(&options, true);
    else if (strcmp(mode, "reqrep") == 0)
        s_run_direct(&options, ZMQ_REP, ZMQ_REQ, 1);
    else if (strcmp(mode, "dealer") == 0)
        s_run_direct(&options, ZMQ_ROUTER, ZMQ_DEALER, S_INFLIGHT);
    else if (strcmp(mode, "broker-async") == 0)
        s_run_broker(&options, S_INFLIGHT);
    else if (strcmp(mode, "broker-sync") == 0)
        s_run_broker(&options, 1);
    else
        s_usage();
    return 0;
}
