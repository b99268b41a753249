//  zmesh_repl.c - write throughput of a replicated service through a real
//  zmesh-broker: 3 replicas (W = 2, a majority), each in a child process of
//  its own, 1 client with 100 writes in flight, writes/s.
//    write          replicas keep their state in memory
//    write-durable  each replica in a data directory of its own: an fsync
//                   (group commit) before every acknowledgement
//  The replicas' state machine does nothing but answer: the figure is what
//  sequencing, fan-out to three and the quorum cost, to compare with a
//  plain call to one worker (the RPC figures). Results are "NAME VALUE"
//  lines on stdout (common.h).
#include "zmesh_setup.h"

#include <czmq.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_INFLIGHT 100
#define S_REPLICAS 3
#define S_CALL_TIMEOUT 10000

typedef struct {
    bench_setup_t setup;
    size_t size;                        //  payload bytes
    double seconds;                     //  measuring time
    bool durable;                       //  replicas with data directories
    char dirs[64];                      //  their parent directory
    int index;                          //  the replica a child runs
} s_bench_t;

//  The state machine: answers each request with nil, holds nothing.
static int
s_handle(void *arg, bool write, const void *body, size_t size, zmesh_msg_t **reply_p)
{
    (void) arg;
    (void) write;
    (void) body;
    (void) size;
    *reply_p = NULL;
    return ZMESH_OK;
}

static void
s_snapshot(void *arg, void **data_p, size_t *size_p)
{
    (void) arg;
    *data_p = malloc(1);
    ((uint8_t *) *data_p)[0] = 0xc0;            //  nil
    *size_p = 1;
}

static bool
s_restore(void *arg, const void *data, size_t size)
{
    (void) arg;
    return size == 1 && ((const uint8_t *) data)[0] == 0xc0;
}

//  A replica process, until SIGTERM.
static int
s_replica_main(void *arg)
{
    s_bench_t *self = arg;
    //  The replicas' log lines are noise here, and CZMQ would write them to
    //  stdout, where run.sh reads results.
    zsys_set_logstream(getenv("BENCH_VERBOSE") ? stderr : NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/r%d", self->dirs, self->index);
    zmesh_state_t state = {s_handle, s_snapshot, s_restore, NULL};
    int err = ZMESH_OK;
    zmesh_replica_t *replica =
        zmesh_replica_new(self->setup.broker.endpoint, "bench", &state, S_REPLICAS, 0,
                          self->durable ? dir : NULL, &err);
    if (!replica)
        bench_fail("replica: %s", zmesh_strerror(err));
    int rc = zmesh_replica_run(replica);
    if (rc != ZMESH_OK)
        fprintf(stderr, "bench: replica: %s (%s)\n", zmesh_strerror(rc),
                zmesh_replica_error(replica));
    zmesh_replica_destroy(&replica);
    return 0;
}

static void
s_collect(zmesh_client_t *client)
{
    uint64_t id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(client, S_CALL_TIMEOUT, &id, &reply);
    if (rc != ZMESH_OK)
        bench_fail("write: %s (%s)", zmesh_strerror(rc), zmesh_client_error(client));
    zmesh_msg_destroy(&reply);
}

static void
s_run(s_bench_t *self)
{
    pid_t replicas[S_REPLICAS];
    for (int i = 0; i < S_REPLICAS; i++) {
        self->index = i;
        replicas[i] = bench_spawn(s_replica_main, self);
    }
    zmesh_client_t *client = zmesh_client_new(self->setup.broker.endpoint, NULL);
    uint8_t *payload = malloc(self->size);
    bench_payload(payload, self->size);
    //  Warm up: the first writes wait until two replicas joined.
    for (int i = 0; i < 200; i++) {
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_write(client, "bench", payload, self->size, S_CALL_TIMEOUT,
                                    &reply);
        if (rc != ZMESH_OK)
            bench_fail("write: %s (%s)", zmesh_strerror(rc), zmesh_client_error(client));
        zmesh_msg_destroy(&reply);
    }
    usleep(200000);
    int64_t start = bench_now_us();
    int64_t stop = start + (int64_t) (self->seconds * 1e6);
    long long done = 0;
    long long ticks = bench_cpu_ticks(self->setup.broker.pid);
    while (bench_now_us() < stop) {
        while (zmesh_client_pending(client) < S_INFLIGHT) {
            int rc = zmesh_client_send_flags(client, "bench", payload, self->size,
                                             S_CALL_TIMEOUT, ZMESH_CALL_WRITE, NULL);
            if (rc != ZMESH_OK)
                bench_fail("send: %s", zmesh_strerror(rc));
        }
        s_collect(client);
        done++;
    }
    int64_t elapsed = bench_now_us() - start;
    long long used = bench_cpu_ticks(self->setup.broker.pid) - ticks;
    while (zmesh_client_pending(client) > 0)
        s_collect(client);
    bench_result("rate", (double) done / ((double) elapsed / 1e6));
    bench_result("broker_cpu_pct", 100.0 * (double) used / (double) sysconf(_SC_CLK_TCK)
                                       / ((double) elapsed / 1e6));
    zmesh_client_destroy(&client);
    for (int i = 0; i < S_REPLICAS; i++) {
        kill(replicas[i], SIGTERM);
        if (bench_reap(replicas[i], 5000) != 0)
            fprintf(stderr, "bench: a replica did not stop cleanly\n");
    }
    free(payload);
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: bench_repl write|write-durable [--size BYTES] [--seconds S]\n");
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
    if (strcmp(argv[1], "write-durable") == 0)
        self.durable = true;
    else if (strcmp(argv[1], "write") != 0)
        s_usage();
    //  The data directories on the disk the temporary files use.
    snprintf(self.dirs, sizeof self.dirs, "/tmp/zmesh-bench-repl-XXXXXX");
    if (!mkdtemp(self.dirs))
        bench_fail("mkdtemp failed");
    bench_setup_start(&self.setup, false, NULL);
    s_run(&self);
    bench_setup_stop(&self.setup);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", self.dirs);
    if (system(command) != 0)
        fprintf(stderr, "bench: could not remove %s\n", self.dirs);
    return 0;
}
