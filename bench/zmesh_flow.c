//  zmesh_flow.c - throughput and latency of a real zmesh-broker, driven
//  through the libzmesh C API:
//    pipe MODE    1 producer -> broker -> 1 consumer (credit 100), msg/s; MODE
//                 is queued (blocking sends, returns once queued locally),
//                 accepted or processed (both ZMESH_ASYNC, window 1000)
//    rpc-async    1 client, 100 calls in flight over 2 workers, req/s
//    rpc-sync     1 client, one call at a time over 2 workers, p50/p99 (us)
//  The consumer and the workers run in a child process of their own, the
//  producer or client in this one, the broker in a third. Results are
//  "NAME VALUE" lines on stdout (common.h).
#include "zmesh_setup.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_INFLIGHT 100
#define S_WORKERS 2
#define S_CALL_TIMEOUT 10000

typedef struct {
    bench_setup_t setup;
    size_t size;                        //  payload bytes
    double seconds;                     //  measuring time
    int threads;                        //  slots per worker (inline), or handler threads
    bool handler_threads;               //  --threads: run handlers in threads, not inline
    int mode;                           //  pipe: ZMESH_QUEUED, _ACCEPTED or _PROCESSED
    int report[2];                      //  pipe: the consumer's report to the parent
    int done[2];                        //  pipe: closed by the parent when it has flushed
} s_bench_t;

//  Reports the broker's CPU use since ticks, over elapsed_us, as % of one
//  core: near 100 means the broker, not the peers, sets the pace.
static void
s_report_cpu(s_bench_t *self, long long ticks, int64_t elapsed_us)
{
    long long used = bench_cpu_ticks(self->setup.broker.pid) - ticks;
    bench_result("broker_cpu_pct",
                 100.0 * (double) used / (double) sysconf(_SC_CLK_TCK) / ((double) elapsed_us / 1e6));
}

//  ---------------------------------------------------------------------
//  Pipeline

//  The consumer process: acknowledges every message; at the 1-byte end
//  marker it writes the time it came to the report pipe.
static int
s_consumer_main(void *arg)
{
    s_bench_t *self = arg;
    zmesh_consumer_t *consumer = zmesh_consumer_new_secure(
        self->setup.broker.endpoint, "bench", bench_setup_curve(&self->setup), NULL);
    zmesh_consumer_set_credit(consumer, 100);
    int64_t end_us = 0;
    while (!end_us) {
        zmesh_msg_t *msg = NULL;
        zmesh_delivery_t delivery;
        int rc = zmesh_consumer_recv(consumer, 30000, &msg, &delivery);
        if (rc != ZMESH_OK) {
            fprintf(stderr, "bench: consumer: %s\n", zmesh_strerror(rc));
            return 1;
        }
        if (zmesh_msg_size(msg) == 1)
            end_us = bench_now_us();
        zmesh_consumer_ack(consumer, delivery.id);
        zmesh_msg_destroy(&msg);
    }
    if (write(self->report[1], &end_us, sizeof end_us) != sizeof end_us)
        return 1;
    //  Stay until the producer has every receipt: leaving at once can lose the
    //  acknowledgements not yet sent, and a PROCESSED flush then never ends.
    close(self->done[1]);
    char byte;
    while (read(self->done[0], &byte, 1) > 0)
        ;
    zmesh_consumer_destroy(&consumer);
    return 0;
}

static void
s_send(zmesh_producer_t *producer, const void *data, size_t size, int flags)
{
    int rc = zmesh_producer_send(producer, data, size, flags);
    if (rc != ZMESH_OK)
        bench_fail("producer: %s (%s)", zmesh_strerror(rc), zmesh_producer_error(producer));
}

static void
s_run_pipe(s_bench_t *self)
{
    if (pipe(self->report) != 0 || pipe(self->done) != 0)
        bench_fail("pipe failed");
    pid_t consumer = bench_spawn(s_consumer_main, self);
    close(self->done[0]);
    close(self->report[1]);             //  a consumer that dies is then an end of file
    zmesh_producer_t *producer = zmesh_producer_new_secure(
        self->setup.broker.endpoint, "bench", bench_setup_curve(&self->setup), NULL);
    zmesh_producer_set_mode(producer, self->mode);
    uint8_t *payload = malloc(self->size);
    bench_payload(payload, self->size);
    //  Warm up: the consumer is registered once a PROCESSED send returns.
    s_send(producer, payload, self->size, ZMESH_PROCESSED);
    for (int i = 0; i < 1000; i++)
        s_send(producer, payload, self->size, ZMESH_ACCEPTED | ZMESH_ASYNC);
    int flags = self->mode == ZMESH_QUEUED ? 0 : ZMESH_ASYNC;
    long long ticks = bench_cpu_ticks(self->setup.broker.pid);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (self->seconds * 1e6);
    long long sent = 0;
    do {
        for (int i = 0; i < 64; i++, sent++)
            s_send(producer, payload, self->size, flags);
    } while (bench_now_us() < stop);
    uint8_t end = 0xc0;
    s_send(producer, &end, 1, flags);
    int rc = zmesh_producer_flush(producer, 30000);
    if (rc != ZMESH_OK)
        bench_fail("producer flush: %s", zmesh_strerror(rc));
    int64_t end_us = 0;
    if (read(self->report[0], &end_us, sizeof end_us) != sizeof end_us)
        bench_fail("the consumer reported nothing");
    //  Sends that return on acceptance or processing end when flush does.
    int64_t last = self->mode == ZMESH_PROCESSED ? bench_now_us() : end_us;
    if (last < end_us)
        last = end_us;
    bench_result("rate", (double) sent / ((double) (last - start) / 1e6));
    s_report_cpu(self, ticks, bench_now_us() - start);
    close(self->done[1]);
    if (bench_reap(consumer, 5000) != 0)
        bench_fail("the consumer failed");
    zmesh_producer_destroy(&producer);
    free(payload);
}

//  ---------------------------------------------------------------------
//  RPC

static int
s_echo(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) arg;
    *reply_p = zmesh_msg_new(zmesh_msg_data(request), zmesh_msg_size(request));
    return ZMESH_OK;
}

static void *
s_worker_thread(void *arg)
{
    zmesh_worker_t *worker = arg;
    int rc = zmesh_worker_run(worker, s_echo, NULL);
    if (rc != ZMESH_OK)
        fprintf(stderr, "bench: worker: %s (%s)\n", zmesh_strerror(rc), zmesh_worker_error(worker));
    return NULL;
}

//  The workers process: S_WORKERS echo workers, until SIGTERM.
static int
s_workers_main(void *arg)
{
    s_bench_t *self = arg;
    zmesh_worker_t *workers[S_WORKERS];
    pthread_t threads[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++) {
        workers[i] = zmesh_worker_new_secure(self->setup.broker.endpoint, "echo",
                                             bench_setup_curve(&self->setup), NULL);
        //  The echo handler is quick: inline, the worker offers its slots
        //  without a hand-off to a thread per request (--threads to compare).
        if (self->handler_threads)
            zmesh_worker_set_threads(workers[i], self->threads);
        else
            zmesh_worker_set_inline(workers[i], self->threads);
        pthread_create(&threads[i], NULL, s_worker_thread, workers[i]);
    }
    for (int i = 0; i < S_WORKERS; i++) {
        pthread_join(threads[i], NULL);
        zmesh_worker_destroy(&workers[i]);
    }
    return 0;
}

static void
s_call(zmesh_client_t *client, const uint8_t *payload, size_t size)
{
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, "echo", payload, size, S_CALL_TIMEOUT, &reply);
    if (rc != ZMESH_OK)
        bench_fail("call: %s (%s)", zmesh_strerror(rc), zmesh_client_error(client));
    zmesh_msg_destroy(&reply);
}

static void
s_run_rpc(s_bench_t *self, int inflight)
{
    pid_t workers = bench_spawn(s_workers_main, self);
    zmesh_client_t *client = zmesh_client_new_secure(self->setup.broker.endpoint,
                                                     bench_setup_curve(&self->setup), NULL);
    uint8_t *payload = malloc(self->size);
    bench_payload(payload, self->size);
    //  Warm up until both workers are there: the first calls wait for them.
    for (int i = 0; i < 200; i++)
        s_call(client, payload, self->size);
    usleep(200000);
    size_t capacity = 1 << 20, samples = 0;
    int64_t *latency = malloc(capacity * sizeof *latency);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (self->seconds * 1e6);
    long long done = 0;
    long long ticks = bench_cpu_ticks(self->setup.broker.pid);
    while (true) {
        int64_t now = bench_now_us();
        if (now >= stop)
            break;
        if (inflight == 1) {
            s_call(client, payload, self->size);
            if (samples < capacity)
                latency[samples++] = bench_now_us() - now;
            done++;
            continue;
        }
        while (zmesh_client_pending(client) < (size_t) inflight) {
            int rc = zmesh_client_send(client, "echo", payload, self->size, S_CALL_TIMEOUT, NULL);
            if (rc != ZMESH_OK)
                bench_fail("send: %s", zmesh_strerror(rc));
        }
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_recv(client, S_CALL_TIMEOUT, &id, &reply);
        if (rc != ZMESH_OK)
            bench_fail("recv: %s (%s)", zmesh_strerror(rc), zmesh_client_error(client));
        zmesh_msg_destroy(&reply);
        done++;
    }
    int64_t elapsed = bench_now_us() - start;
    s_report_cpu(self, ticks, elapsed);
    while (zmesh_client_pending(client) > 0) {
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        zmesh_client_recv(client, S_CALL_TIMEOUT, &id, &reply);
        zmesh_msg_destroy(&reply);
    }
    if (inflight == 1) {
        bench_result("p50", bench_percentile(latency, samples, 50));
        bench_result("p99", bench_percentile(latency, samples, 99));
    }
    else
        bench_result("rate", (double) done / ((double) elapsed / 1e6));
    zmesh_client_destroy(&client);
    kill(workers, SIGTERM);
    if (bench_reap(workers, 5000) != 0)
        fprintf(stderr, "bench: the workers did not stop cleanly\n");
    free(latency);
    free(payload);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_zmesh MODE [--size BYTES] [--seconds S] [--curve] [--threads N]\n"
                    "MODE: pipe-queued pipe-accepted pipe-processed rpc-async rpc-sync\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    if (argc < 2)
        s_usage();
    s_bench_t self = {.threads = S_INFLIGHT / S_WORKERS};
    bench_options_t options = BENCH_OPTIONS_DEFAULT;
    for (int i = 2; i < argc; i++) {
        if (bench_option(&options, argc, argv, &i, true))
            continue;
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            self.threads = atoi(argv[++i]);
            self.handler_threads = true;
        }
        else
            s_usage();
    }
    bench_options_check(&options);
    self.size = options.size;
    self.seconds = options.seconds;
    bool curve = options.curve;
    const char *mode = argv[1];
    bench_setup_start(&self.setup, curve, NULL);
    if (strcmp(mode, "pipe-queued") == 0)
        self.mode = ZMESH_QUEUED;
    else if (strcmp(mode, "pipe-accepted") == 0)
        self.mode = ZMESH_ACCEPTED;
    else if (strcmp(mode, "pipe-processed") == 0)
        self.mode = ZMESH_PROCESSED;
    if (self.mode)
        s_run_pipe(&self);
    else if (strcmp(mode, "rpc-async") == 0)
        s_run_rpc(&self, S_INFLIGHT);
    else if (strcmp(mode, "rpc-sync") == 0)
        s_run_rpc(&self, 1);
    else {
        bench_setup_stop(&self.setup);
        s_usage();
    }
    bench_setup_stop(&self.setup);
    return 0;
}
