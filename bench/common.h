//  common.h - helpers shared by the benchmark programs: clocks, MessagePack
//  payloads of an exact size, percentiles, result lines, CURVE key pairs for
//  the libzmq baselines, and a zmesh-broker child process (start, stop, its
//  memory and CPU). Nothing here measures anything by itself.
#ifndef BENCH_COMMON_H_INCLUDED
#define BENCH_COMMON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

//  Monotonic clock in microseconds.
int64_t bench_now_us(void);

//  Fills buffer with one MessagePack bin object of exactly size bytes in all
//  (size >= 3), so the same bytes are valid zmesh payloads and baseline frames.
void bench_payload(uint8_t *buffer, size_t size);

//  Sorts the n samples and returns the p-th percentile (0..100); 0 if n is 0.
double bench_percentile(int64_t *samples, size_t n, double p);

//  Prints one result line "NAME VALUE" on stdout and flushes it: run.sh reads
//  these lines, everything else goes to stderr.
void bench_result(const char *name, double value);

//  The options every benchmark program takes after its mode.
typedef struct {
    size_t size;                        //  --size BYTES: payload, 3..65000 (default 64)
    double seconds;                     //  --seconds S: measuring time (default 1)
    bool curve;                         //  --curve, where the program offers it
} bench_options_t;

#define BENCH_OPTIONS_DEFAULT {.size = 64, .seconds = 1.0, .curve = false}

//  Reads argv[*index] (and its value, moving *index past it) if it is
//  --size, --seconds or, when curve_ok, --curve; false if it is none of them.
bool bench_option(bench_options_t *self, int argc, char *argv[], int *index, bool curve_ok);

//  Exits with a message unless the options are in range.
void bench_options_check(const bench_options_t *self);

//  Prints a message on stderr and exits with status 1.
void bench_fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

//  CURVE keys for the libzmq baselines: one server pair, one client pair.
typedef struct {
    char server_public[41];
    char server_secret[41];
    char client_public[41];
    char client_secret[41];
} bench_curve_t;

//  Makes fresh key pairs.
void bench_curve_init(bench_curve_t *self);

//  Makes socket (a void * libzmq socket) the CURVE server, or a client of
//  that server; keys NULL does nothing (plain).
void bench_curve_server(const bench_curve_t *keys, void *socket);
void bench_curve_client(const bench_curve_t *keys, void *socket);

//  A zmesh-broker child process bound to tcp://127.0.0.1:* with no push
//  endpoint. extra is a NULL-terminated list of more arguments (may be NULL).
typedef struct {
    pid_t pid;
    char endpoint[256];             //  as printed by --print-endpoint
} bench_broker_t;

//  Starts the broker at binary (NULL: $BENCH_BROKER, else the one built with
//  the benchmarks) and waits until it prints its endpoint. A broker silent
//  for 10 s is killed and started again, up to 3 times in all; then the
//  program fails.
void bench_broker_start(bench_broker_t *self, const char *binary, const char *const *extra);

//  Stops the broker with SIGTERM (SIGKILL after 2 s) and reaps it.
void bench_broker_stop(bench_broker_t *self);

//  Resident memory of pid in KiB (VmRSS), or -1.
long bench_rss_kib(pid_t pid);

//  User plus system CPU time of pid so far, in clock ticks, or -1.
long long bench_cpu_ticks(pid_t pid);

//  How many workers the broker at endpoint has registered for service, read
//  with `zmesh status --json`; -1 if the status call failed.
long bench_service_workers(const char *endpoint, const char *service);

//  Keys for a CURVE zmesh run, made with `zmesh keygen` in a fresh temporary
//  directory: a broker pair and one peer key that may serve, call, push and
//  pull everything. Paths are absolute.
typedef struct {
    char dir[256];                  //  the temporary directory
    char keys_dir[300];             //  the broker's --curve-keys directory
    char broker_secret[300];        //  the broker's --curve-secret file
    char broker_public[300];        //  the broker's public certificate
    char peer_secret[300];          //  the peer's secret certificate
} bench_keys_t;

void bench_keys_make(bench_keys_t *self);

//  Removes the temporary directory.
void bench_keys_remove(bench_keys_t *self);

#endif
