//  zmesh_broker.c - the broker's own costs, which have no libzmq baseline:
//    memory        VmRSS of a broker holding 1,000,000 16-byte messages
//                  pushed at a consumer that takes no more (rss_kib, and
//                  bytes_per_msg: growth over the idle broker per message)
//    idle          broker CPU, % of one core, with 10,000 idle workers
//                  heartbeating at the default interval (idle_workers.c)
//    failover      ms from killing (kill -9) the worker process holding a
//                  call of an idempotent service to the client's reply from
//                  the second worker; --stop: SIGSTOP instead, so the worker
//                  just falls silent and only heartbeats can tell
//  Results are "NAME VALUE" lines on stdout (common.h).
#include "idle_workers.h"
#include "zmesh_setup.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define S_MESSAGES 1000000
#define S_MESSAGE_SIZE 16
#define S_IDLE_WORKERS 10000
#define S_IDLE_PROCESSES 4

//  ---------------------------------------------------------------------
//  Memory

static void
s_run_memory(void)
{
    bench_setup_t setup;
    const char *extra[] = {"--max-queue", "2000000", NULL};
    bench_setup_start(&setup, false, extra);
    zmesh_consumer_t *consumer = zmesh_consumer_new(setup.broker.endpoint, "held", NULL);
    zmesh_consumer_set_credit(consumer, 1);
    zmesh_msg_t *msg = NULL;
    zmesh_consumer_recv(consumer, 100, &msg, NULL);     //  registers
    zmesh_producer_t *producer = zmesh_producer_new(setup.broker.endpoint, "held", NULL);
    zmesh_producer_set_window(producer, 10000);
    uint8_t payload[S_MESSAGE_SIZE];
    bench_payload(payload, sizeof payload);
    int rc = zmesh_producer_send(producer, payload, sizeof payload, ZMESH_ACCEPTED);
    if (rc != ZMESH_OK)
        bench_fail("push: %s", zmesh_strerror(rc));
    //  The consumer takes this one and never acknowledges it: it is stopped.
    if (zmesh_consumer_recv(consumer, 5000, &msg, NULL) != ZMESH_OK)
        bench_fail("the consumer got nothing");
    zmesh_msg_destroy(&msg);
    usleep(200000);
    long before = bench_rss_kib(setup.broker.pid);
    for (int i = 0; i < S_MESSAGES; i++) {
        rc = zmesh_producer_send(producer, payload, sizeof payload,
                                 ZMESH_ACCEPTED | ZMESH_ASYNC);
        if (rc != ZMESH_OK)
            bench_fail("push %d: %s (%s)", i, zmesh_strerror(rc), zmesh_producer_error(producer));
    }
    rc = zmesh_producer_flush(producer, 120000);
    if (rc != ZMESH_OK)
        bench_fail("flush: %s (%s)", zmesh_strerror(rc), zmesh_producer_error(producer));
    long after = bench_rss_kib(setup.broker.pid);
    bench_result("rss_kib", (double) after);
    bench_result("bytes_per_msg", (double) (after - before) * 1024.0 / S_MESSAGES);
    zmesh_producer_destroy(&producer);
    zmesh_consumer_destroy(&consumer);
    bench_setup_stop(&setup);
}

//  ---------------------------------------------------------------------
//  Idle workers

typedef struct {
    const char *endpoint;
    int count;                          //  workers of this process
    int ready;                          //  written to once all READYs are sent
} s_idle_t;

static int
s_idle_main(void *arg)
{
    s_idle_t *self = arg;
    return idle_workers_run(self->endpoint, self->count, self->ready);
}

static void
s_raise_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static void
s_run_idle(void)
{
    s_raise_file_limit();               //  the broker inherits it: 10,000 connections
    bench_setup_t setup;
    bench_setup_start(&setup, false, NULL);
    int ready[2];
    if (pipe(ready) != 0)
        bench_fail("pipe failed");
    pid_t children[S_IDLE_PROCESSES];
    s_idle_t idle = {setup.broker.endpoint, S_IDLE_WORKERS / S_IDLE_PROCESSES, ready[1]};
    for (int i = 0; i < S_IDLE_PROCESSES; i++)
        children[i] = bench_spawn(s_idle_main, &idle);
    for (int i = 0; i < S_IDLE_PROCESSES; i++) {
        struct pollfd item = {ready[0], POLLIN, 0};
        char byte;
        if (poll(&item, 1, 60000) != 1 || read(ready[0], &byte, 1) != 1)
            bench_fail("the idle workers did not start");
    }
    //  Every worker registered, then one more interval for the first heartbeats.
    long registered = 0;
    for (int i = 0; i < 60 && registered < S_IDLE_WORKERS; i++) {
        sleep(1);
        registered = bench_service_workers(setup.broker.endpoint, "idle");
        fprintf(stderr, "bench: %ld idle workers registered\n", registered);
    }
    if (registered < S_IDLE_WORKERS)
        bench_fail("only %ld of %d idle workers registered", registered, S_IDLE_WORKERS);
    sleep(1);
    long long ticks = bench_cpu_ticks(setup.broker.pid);
    int64_t start = bench_now_us();
    sleep(5);
    long long used = bench_cpu_ticks(setup.broker.pid) - ticks;
    double elapsed = (double) (bench_now_us() - start) / 1e6;
    bench_result("cpu_pct", 100.0 * (double) used / (double) sysconf(_SC_CLK_TCK) / elapsed);
    bench_result("rss_kib", (double) bench_rss_kib(setup.broker.pid));
    registered = bench_service_workers(setup.broker.endpoint, "idle");
    if (registered < S_IDLE_WORKERS)
        bench_fail("only %ld of %d idle workers stayed registered", registered, S_IDLE_WORKERS);
    for (int i = 0; i < S_IDLE_PROCESSES; i++) {
        kill(children[i], SIGTERM);
        bench_reap(children[i], 5000);
    }
    bench_setup_stop(&setup);
}

//  ---------------------------------------------------------------------
//  Failover

typedef struct {
    const char *endpoint;
    int signal_fd;                      //  first worker: written to when it holds the call
    int go_fd;                          //  second worker: read before it starts
} s_failover_t;

static int
s_hold(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) request;
    (void) reply_p;
    s_failover_t *self = arg;
    if (write(self->signal_fd, "x", 1) != 1)
        return ZMESH_ESYS;
    sleep(60);                          //  killed long before
    return ZMESH_OK;
}

static int
s_answer(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) arg;
    *reply_p = zmesh_msg_new(zmesh_msg_data(request), zmesh_msg_size(request));
    return ZMESH_OK;
}

static int
s_serve(s_failover_t *self, zmesh_handler_fn *handler)
{
    zmesh_worker_t *worker = zmesh_worker_new(self->endpoint, "slow", NULL);
    zmesh_worker_set_idempotent(worker, true);
    int rc = zmesh_worker_run(worker, handler, self);
    zmesh_worker_destroy(&worker);
    return rc == ZMESH_OK ? 0 : 1;
}

static int
s_holder_main(void *arg)
{
    return s_serve(arg, s_hold);
}

static int
s_answerer_main(void *arg)
{
    s_failover_t *self = arg;
    char byte;
    if (read(self->go_fd, &byte, 1) != 1)
        return 1;
    return s_serve(self, s_answer);
}

static void
s_run_failover(bool stop)
{
    bench_setup_t setup;
    bench_setup_start(&setup, false, NULL);
    int held[2], go[2];
    if (pipe(held) != 0 || pipe(go) != 0)
        bench_fail("pipe failed");
    s_failover_t roles = {setup.broker.endpoint, held[1], go[0]};
    pid_t holder = bench_spawn(s_holder_main, &roles);
    pid_t answerer = bench_spawn(s_answerer_main, &roles);
    zmesh_client_t *client = zmesh_client_new(setup.broker.endpoint, NULL);
    uint8_t payload[64];
    bench_payload(payload, sizeof payload);
    if (zmesh_client_send(client, "slow", payload, sizeof payload, 30000, NULL) != ZMESH_OK)
        bench_fail("the call was not sent");
    struct pollfd item = {held[0], POLLIN, 0};
    char byte;
    if (poll(&item, 1, 10000) != 1 || read(held[0], &byte, 1) != 1)
        bench_fail("the first worker never got the call");
    if (write(go[1], "x", 1) != 1)
        bench_fail("cannot start the second worker");
    usleep(500000);                     //  the second worker registers
    int64_t start = bench_now_us();
    kill(holder, stop ? SIGSTOP : SIGKILL);
    uint64_t id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(client, 30000, &id, &reply);
    int64_t end = bench_now_us();
    if (rc != ZMESH_OK)
        bench_fail("no reply after the worker died: %s", zmesh_strerror(rc));
    bench_result("ms", (double) (end - start) / 1000.0);
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    kill(holder, SIGKILL);
    bench_reap(holder, 5000);
    kill(answerer, SIGTERM);
    bench_reap(answerer, 5000);
    bench_setup_stop(&setup);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_broker memory | idle | failover [--stop]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    if (argc < 2)
        s_usage();
    if (strcmp(argv[1], "memory") == 0 && argc == 2)
        s_run_memory();
    else if (strcmp(argv[1], "idle") == 0 && argc == 2)
        s_run_idle();
    else if (strcmp(argv[1], "failover") == 0 && argc == 2)
        s_run_failover(false);
    else if (strcmp(argv[1], "failover") == 0 && argc == 3 && strcmp(argv[2], "--stop") == 0)
        s_run_failover(true);
    else
        s_usage();
    return 0;
}
