//  common.c - helpers shared by the benchmark programs (see common.h).
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_START_TIMEOUT_MS 10000    //  how long a broker may take to listen

#ifndef BENCH_BROKER_BIN
#define BENCH_BROKER_BIN "zmesh-broker"
#endif
#ifndef BENCH_ZMESH_BIN
#define BENCH_ZMESH_BIN "zmesh"
#endif

int64_t
bench_now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

void
bench_payload(uint8_t *buffer, size_t size)
{
    //  bin 8 (c4 len) up to 257 bytes in all, bin 16 (c5 len16) above.
    size_t header = size <= 257 ? 2 : 3;
    size_t data = size - header;
    if (header == 2) {
        buffer[0] = 0xc4;
        buffer[1] = (uint8_t) data;
    }
    else {
        buffer[0] = 0xc5;
        buffer[1] = (uint8_t) (data >> 8);
        buffer[2] = (uint8_t) data;
    }
    for (size_t i = 0; i < data; i++)
        buffer[header + i] = (uint8_t) ('a' + i % 26);
}

static int
s_compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

double
bench_percentile(int64_t *samples, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(samples, n, sizeof *samples, s_compare);
    size_t index = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
    if (index >= n)
        index = n - 1;
    return (double) samples[index];
}

void
bench_result(const char *name, double value)
{
    printf("%s %.1f\n", name, value);
    fflush(stdout);
}

void
bench_fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

void
bench_curve_init(bench_curve_t *self)
{
    if (zmq_curve_keypair(self->server_public, self->server_secret) != 0
        || zmq_curve_keypair(self->client_public, self->client_secret) != 0)
        bench_fail("libzmq has no CURVE support");
}

void
bench_curve_server(const bench_curve_t *keys, void *socket)
{
    if (!keys)
        return;
    int on = 1;
    zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->server_secret, 40);
}

void
bench_curve_client(const bench_curve_t *keys, void *socket)
{
    if (!keys)
        return;
    zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, keys->server_public, 40);
    zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, keys->client_public, 40);
    zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->client_secret, 40);
}

//  Starts the broker once; false if it printed no endpoint in time (it is
//  then stopped).
static bool
s_broker_try(bench_broker_t *self, const char *binary, const char *const *extra)
{
    if (!binary)
        binary = getenv("BENCH_BROKER") ? getenv("BENCH_BROKER") : BENCH_BROKER_BIN;
    const char *args[64] = {binary, "--bind", "tcp://127.0.0.1:*", "--push-bind", "none",
                            "--print-endpoint"};
    size_t count = 6;
    for (size_t i = 0; extra && extra[i] && count < 63; i++)
        args[count++] = extra[i];
    args[count] = NULL;
    int out[2];
    if (pipe(out) != 0)
        bench_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    self->pid = fork();
    if (self->pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (self->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   //  a failing benchmark leaves no broker behind
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (!getenv("BENCH_VERBOSE")) {
            FILE *null = freopen("/dev/null", "w", stderr);
            (void) null;
        }
        execv(binary, (char *const *) args);
        _exit(127);
    }
    close(out[1]);
    //  Read the first line by hand, with a deadline: a broker that hangs
    //  before listening must not hang the benchmark.
    size_t size = 0;
    int64_t deadline = bench_now_us() + S_START_TIMEOUT_MS * 1000;
    while (size + 1 < sizeof self->endpoint) {
        int64_t left = (deadline - bench_now_us()) / 1000;
        struct pollfd item = {out[0], POLLIN, 0};
        if (left <= 0 || poll(&item, 1, (int) left) != 1)
            break;
        if (read(out[0], self->endpoint + size, 1) != 1)
            break;
        if (self->endpoint[size] == '\n')
            break;
        size++;
    }
    self->endpoint[size] = '\0';
    close(out[0]);
    if (size == 0) {
        bench_broker_stop(self);
        return false;
    }
    self->endpoint[strcspn(self->endpoint, "\r\n")] = '\0';
    return true;
}

void
bench_broker_start(bench_broker_t *self, const char *binary, const char *const *extra)
{
    for (int attempt = 1; attempt <= 3; attempt++) {
        if (s_broker_try(self, binary, extra))
            return;
        fprintf(stderr, "bench: the broker printed no endpoint within %d ms (attempt %d)\n",
                S_START_TIMEOUT_MS, attempt);
    }
    bench_fail("the broker would not start");
}

void
bench_broker_stop(bench_broker_t *self)
{
    if (self->pid <= 0)
        return;
    kill(self->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(self->pid, NULL, WNOHANG) == self->pid) {
            self->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(self->pid, SIGKILL);
    waitpid(self->pid, NULL, 0);
    self->pid = 0;
}

long
bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    long rss = -1;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmRSS: %ld", &rss) == 1)
            break;
    fclose(file);
    return rss;
}

long long
bench_cpu_ticks(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t size = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[size] = '\0';
    //  Fields after the command name (which may hold spaces) start past ')'.
    const char *at = strrchr(text, ')');
    if (!at)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime)
        != 2)
        return -1;
    return (long long) (utime + stime);
}

long
bench_service_workers(const char *endpoint, const char *service)
{
    const char *zmesh = getenv("BENCH_ZMESH") ? getenv("BENCH_ZMESH") : BENCH_ZMESH_BIN;
    char command[1024];
    snprintf(command, sizeof command, "'%s' --broker '%s' --timeout 10000 status --json", zmesh,
             endpoint);
    FILE *reader = popen(command, "r");
    if (!reader)
        return -1;
    //  The services come first, before the (long) list of workers.
    char head[65536];
    size_t size = fread(head, 1, sizeof head - 1, reader);
    head[size] = '\0';
    while (fread(command, 1, sizeof command, reader) > 0)
        ;
    if (pclose(reader) != 0)
        return -1;
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"name\":\"%s\",\"workers\":", service);
    const char *at = strstr(head, pattern);
    return at ? atol(at + strlen(pattern)) : 0;
}

static void
s_run(const char *command)
{
    if (system(command) != 0)
        bench_fail("failed: %s", command);
}

void
bench_keys_make(bench_keys_t *self)
{
    snprintf(self->dir, sizeof self->dir, "/tmp/zmesh-bench-XXXXXX");
    if (!mkdtemp(self->dir))
        bench_fail("mkdtemp: %s", strerror(errno));
    const char *zmesh = getenv("BENCH_ZMESH") ? getenv("BENCH_ZMESH") : BENCH_ZMESH_BIN;
    char command[2048];
    snprintf(command, sizeof command, "'%s' keygen broker --dir '%s' >/dev/null", zmesh,
             self->dir);
    s_run(command);
    snprintf(command, sizeof command,
             "'%s' keygen bench --dir '%s' --serve '*' --call '*' --push '*' --pull '*'"
             " >/dev/null && mkdir '%s/keys' && cp '%s/bench.key' '%s/keys/'",
             zmesh, self->dir, self->dir, self->dir, self->dir);
    s_run(command);
    snprintf(self->keys_dir, sizeof self->keys_dir, "%s/keys", self->dir);
    snprintf(self->broker_secret, sizeof self->broker_secret, "%s/broker.key_secret", self->dir);
    snprintf(self->broker_public, sizeof self->broker_public, "%s/broker.key", self->dir);
    snprintf(self->peer_secret, sizeof self->peer_secret, "%s/bench.key_secret", self->dir);
}

void
bench_keys_remove(bench_keys_t *self)
{
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", self->dir);
    if (system(command) != 0)
        fprintf(stderr, "bench: could not remove %s\n", self->dir);
}

bool
bench_option(bench_options_t *self, int argc, char *argv[], int *index, bool curve_ok)
{
    const char *name = argv[*index];
    bool value = *index + 1 < argc;
    if (strcmp(name, "--size") == 0 && value)
        self->size = (size_t) atol(argv[++*index]);
    else if (strcmp(name, "--seconds") == 0 && value)
        self->seconds = atof(argv[++*index]);
    else if (strcmp(name, "--curve") == 0 && curve_ok)
        self->curve = true;
    else
        return false;
    return true;
}

void
bench_options_check(const bench_options_t *self)
{
    if (self->size < 3 || self->size > 65000)
        bench_fail("--size must be 3..65000");
    if (!(self->seconds > 0))
        bench_fail("--seconds must be more than 0");
}
