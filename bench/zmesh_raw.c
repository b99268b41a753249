//  zmesh_raw.c - the zmesh broker alone, without the client and worker
//  libraries: a client and 2 workers that speak ZMP directly on DEALER
//  sockets (libzmesh's own codec, one thread each, no handler threads), so
//  the broker's share of the zmesh RPC figures can be told from the
//  libraries'. The peers do what the minimal broker's peers do: the workers
//  answer at once, each offering 50 slots.
//    async        100 calls in flight, req/s
//    sync         one call at a time, p50/p99 (us)
//  Results are "NAME VALUE" lines on stdout (common.h).
#include "zm_proto.h"
#include "zmesh_setup.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define S_INFLIGHT 100
#define S_WORKERS 2
#define S_TIMEOUT_MS 10000

typedef struct {
    bench_setup_t setup;
    size_t size;                        //  payload bytes
    double seconds;                     //  measuring time
} s_bench_t;

//  Decodes one message from socket into command; false on a bad message.
static bool
s_recv(zsock_t *socket, zm_proto_t *command)
{
    zmsg_t *msg = zmsg_recv(socket);
    if (!msg)
        return false;
    zm_proto_error_t error;
    zm_proto_init(command);
    bool ok = zm_proto_decode(command, msg, NULL, &error);
    zmsg_destroy(&msg);
    return ok;
}

static void
s_send(zsock_t *socket, zm_proto_t *command)
{
    zmsg_t *msg = zm_proto_encode(command);
    zmsg_send(&msg, socket);
    zmsg_destroy(&msg);
}

//  One worker: READY with 50 slots, then every REQUEST answered at once with
//  its own body; heartbeats are set long enough never to be due in a run.
static void *
s_worker_main(void *arg)
{
    const char *endpoint = arg;
    zsock_t *socket = zsock_new_dealer(endpoint);
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_READY;
    snprintf(command.service, sizeof command.service, "echo");
    command.slots = S_INFLIGHT / S_WORKERS;
    command.heartbeat_ms = 60000;
    command.liveness = 10;
    s_send(socket, &command);
    while (!zsys_interrupted) {
        if (!s_recv(socket, &command)) {
            zm_proto_reset(&command);
            continue;
        }
        if (command.cmd == ZM_CMD_REQUEST) {
            zframe_t *body = command.body;
            command.body = NULL;
            uint64_t ticket = command.id;
            zm_proto_reset(&command);
            command.cmd = ZM_CMD_REPLY;
            command.id = ticket;
            command.status = ZM_STATUS_OK;
            command.body = body;
            s_send(socket, &command);
        }
        zm_proto_reset(&command);
    }
    zsock_destroy(&socket);
    return NULL;
}

static int
s_workers_main(void *arg)
{
    s_bench_t *self = arg;
    zsys_init();                //  once, here: two threads creating the first sockets race it
    pthread_t threads[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++)
        pthread_create(&threads[i], NULL, s_worker_main, self->setup.broker.endpoint);
    for (int i = 0; i < S_WORKERS; i++)
        pthread_join(threads[i], NULL);
    return 0;
}

static void
s_call(zsock_t *client, uint64_t id, const uint8_t *payload, size_t size)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = id;
    command.timeout_ms = S_TIMEOUT_MS;
    snprintf(command.service, sizeof command.service, "echo");
    command.body = zframe_new(payload, size);
    s_send(client, &command);
}

//  Waits for one REPLY; fails the program on anything but a 200.
static void
s_reply(zsock_t *client)
{
    zm_proto_t command;
    if (!s_recv(client, &command) || command.cmd != ZM_CMD_REPLY
        || command.status != ZM_STATUS_OK)
        bench_fail("raw client: no good REPLY (status %u)", command.status);
    zm_proto_reset(&command);
}

static void
s_run(s_bench_t *self, int inflight)
{
    pid_t workers = bench_spawn(s_workers_main, self);
    zsock_t *client = zsock_new_dealer(self->setup.broker.endpoint);
    zsock_set_rcvtimeo(client, S_TIMEOUT_MS);
    uint8_t *payload = malloc(self->size);
    bench_payload(payload, self->size);
    uint64_t id = 0;
    for (int i = 0; i < 200; i++) {         //  warm up; the first calls wait for the workers
        s_call(client, ++id, payload, self->size);
        s_reply(client);
    }
    usleep(200000);
    size_t capacity = 1 << 20, samples = 0;
    int64_t *latency = malloc(capacity * sizeof *latency);
    long long ticks = bench_cpu_ticks(self->setup.broker.pid);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (self->seconds * 1e6);
    long long done = 0;
    int pending = 0;
    while (true) {
        int64_t now = bench_now_us();
        if (now >= stop)
            break;
        for (; pending < inflight; pending++)
            s_call(client, ++id, payload, self->size);
        s_reply(client);
        pending--;
        done++;
        if (inflight == 1 && samples < capacity)
            latency[samples++] = bench_now_us() - now;
    }
    int64_t elapsed = bench_now_us() - start;
    long long used = bench_cpu_ticks(self->setup.broker.pid) - ticks;
    bench_result("broker_cpu_pct",
                 100.0 * (double) used / (double) sysconf(_SC_CLK_TCK) / ((double) elapsed / 1e6));
    for (; pending > 0; pending--)
        s_reply(client);
    if (inflight == 1) {
        bench_result("p50", bench_percentile(latency, samples, 50));
        bench_result("p99", bench_percentile(latency, samples, 99));
    }
    else
        bench_result("rate", (double) done / ((double) elapsed / 1e6));
    zsock_destroy(&client);
    kill(workers, SIGTERM);
    bench_reap(workers, 5000);
    free(latency);
    free(payload);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_raw async|sync [--size BYTES] [--seconds S]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    if (argc < 2)
        s_usage();
    bench_options_t options = BENCH_OPTIONS_DEFAULT;
    for (int i = 2; i < argc; i++)
        if (!bench_option(&options, argc, argv, &i, false))
            s_usage();
    bench_options_check(&options);
    s_bench_t self = {.size = options.size, .seconds = options.seconds};
    int inflight = strcmp(argv[1], "async") == 0 ? S_INFLIGHT
                   : strcmp(argv[1], "sync") == 0 ? 1 : 0;
    if (!inflight)
        s_usage();
    bench_setup_start(&self.setup, false, NULL);
    s_run(&self, inflight);
    bench_setup_stop(&self.setup);
    return 0;
}
