//  fault - helpers for the failure-handling integration tests, beside the
//  harness and without changing it: processes the harness's fixed table
//  cannot hold (chaos restarts workers by the hundred), short commands run
//  to completion (ip netns ...), the broker's workers[] list and single
//  counters from zmesh.status, msgpack payloads of the test-worker modes,
//  and a load generator that keeps a window of calls in flight and proves
//  that each request id completes exactly once, within its deadline. Like
//  the harness it reports and never asserts: client threads run it, and
//  cmocka asserts may only run on the test's main thread.
#ifndef ZM_FAULT_H_INCLUDED
#define ZM_FAULT_H_INCLUDED

#include "harness.h"
#include "zmesh.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZM_FAULT_PROCS_MAX 64         //  fault processes alive at once
#define ZM_FAULT_WORKERS_MAX 16       //  workers[] entries kept from one status reply
#define ZM_FAULT_ERROR_MAX 128
#define ZM_FAULT_LOAD_RUN_MS 90000    //  zm_fault_load_main's deadline: under ctest's 120 s

//  Takes the program paths as zm_harness_init does (argv[1] zmesh-broker,
//  argv[2] test-worker); call it after zm_harness_init.
void zm_fault_init(int argc, char **argv);
const char *zm_fault_broker_bin(void);
const char *zm_fault_worker_bin(void);

//  cmocka fixtures: a harness as zm_harness_setup makes; teardown first
//  stops every fault process (see zm_fault_stop_all), then destroys the
//  harness; it fails if either found a child that did not exit cleanly.
int zm_fault_setup(void **state);
int zm_fault_teardown(void **state);

//  Starts a broker (zm_harness_broker) on ipc://DIR/NAME.ipc in the test's
//  directory, which no other test can reach: a tcp port that a killed
//  broker freed may go to another test's broker, and the killed broker's
//  orphaned workers would join that one. NULL as zm_harness_broker.
zm_proc_t *zm_fault_broker(zm_harness_t *harness, const char *name, const char *const extra[],
                           char *endpoint, size_t size);

//  Starts argv[0] with argv outside the harness: stdin /dev/null, stdout
//  and stderr to log_path, SIGKILL when the test process dies. Returns the
//  pid, or -1 if fork failed or the table is full.
pid_t zm_fault_spawn(const char *log_path, char *const argv[]);

//  Starts test-worker (zm_fault_spawn) for service in mode with the
//  NULL-terminated extra flags (may be NULL); its log goes to dir.
pid_t zm_fault_worker(const char *dir, const char *endpoint, const char *service,
                      const char *mode, const char *const extra[]);

//  Sends signal to a fault process that is still running; a SIGKILL means
//  its exit status will not be judged.
void zm_fault_kill(pid_t pid, int signal);

//  Waits at most deadline_ms for a fault process to end; true if it has,
//  and *status_p (may be NULL) gets its waitpid status.
bool zm_fault_reap(pid_t pid, int deadline_ms, int *status_p);

//  SIGTERM to every fault process still running, SIGKILL to those still
//  running after ZM_HARNESS_STOP_MS; returns how many of them did not exit 0.
int zm_fault_stop_all(void);

//  Finds program in PATH, then in /usr/sbin and /sbin (a test's PATH may
//  lack them); writes its path. False if there is none.
bool zm_fault_which(const char *program, char *path, size_t size);

//  Runs argv[0] (searched as zm_fault_which does) to completion, its output to stderr
//  unless quiet. Returns its exit code, or -1 if it could not run, died of
//  a signal, or was still running after deadline_ms (then it is killed).
int zm_fault_run(char *const argv[], bool quiet, int deadline_ms);

//  True if a log file in dir whose name ends with suffix (harness logs are
//  NN-name.log) holds text.
bool zm_fault_log_contains(const char *dir, const char *suffix, const char *text);

//  One entry of zmesh.status's workers[].
typedef struct {
    char id[64];                      //  hex routing id (cut if longer)
    char service[64];
    bool idempotent;
    uint64_t inflight;
    uint64_t served;
} zm_fault_worker_t;

//  Reads the workers[] entries of service (every service if NULL), at most
//  max of them. Returns ZMESH_OK or the status call's error.
int zm_fault_workers(const char *endpoint, const char *service, zm_fault_worker_t *workers,
                     size_t max, size_t *count_p);


//  Waits at most deadline_ms until counter name is at least value; true if
//  it got there. *seen_p (may be NULL) gets the last value read.
bool zm_fault_wait_counter(const char *endpoint, const char *name, uint64_t value,
                           int deadline_ms, uint64_t *seen_p);

//  Keeps a fault in place for ms (an outage, a partition): the length of
//  the scenario, not a wait for a condition, which zm_harness_wait_until is for.
void zm_fault_hold(int ms);

//  A msgpack uint (the slow and progress modes sleep that many ms).
zmesh_msg_t *zm_fault_uint(uint64_t value);

//  Reads a count-mode reply {"pid": PID, "req": <request>}: true, with
//  *pid_p set, if it is one and its request is exactly `sent`.
bool zm_fault_count_reply(const zmesh_msg_t *reply, const zmesh_msg_t *sent, uint64_t *pid_p);

//  A window of calls from one client to an echo-like service (the reply is
//  the request, or a count-mode reply around it), and what became of them.
typedef struct zm_fault_load {
    zmesh_client_t *client;           //  borrowed; only the thread that runs the load uses it
    const char *service;              //  borrowed
    int number;                       //  client number, part of every request
    size_t total;                     //  calls to make
    size_t window;                    //  calls in flight at most
    int timeout_ms;                   //  of each call
    uint64_t *ids;                    //  owned: request id of call i (a failed send
                                      //  repeats the id before it)
    int64_t *sent_at;                 //  owned: ms, just before call i was sent
    uint8_t *completions;             //  owned: how often call i completed
    size_t sent;                      //  calls handed to the client
    atomic_size_t done;               //  calls completed (other threads may read it)
    size_t ok;                        //  replies with their own request in them
    size_t worker_lost;               //  ZMESH_EWORKERLOST
    size_t timed_out;                 //  ZMESH_ETIMEDOUT
    size_t unreachable;               //  ZMESH_EUNREACHABLE, from send or completion
    size_t no_service;                //  ZMESH_ENOSERVICE
    size_t other_errors;              //  any other error
    size_t anomalies;                 //  duplicates, unknown ids, wrong replies, a stall
    int64_t worst_late_ms;            //  longest completion past its call's deadline
    int64_t slowest_ms;               //  longest completion
    char first_anomaly[ZM_FAULT_ERROR_MAX];
} zm_fault_load_t;

//  A load of total calls, window at a time. Never NULL (aborts).
zm_fault_load_t *zm_fault_load_new(zmesh_client_t *client, int number, const char *service,
                                   size_t total, size_t window, int timeout_ms);
void zm_fault_load_destroy(zm_fault_load_t **self_p);

//  Sends calls until window are in flight, then waits at most wait_ms for
//  one completion and records it. Returns false once every call completed.
bool zm_fault_load_step(zm_fault_load_t *self, int wait_ms);

//  Steps until every call completed or deadline_ms passed (an anomaly).
void zm_fault_load_run(zm_fault_load_t *self, int deadline_ms);

//  A pthread entry: zm_fault_load_run(load, ZM_FAULT_LOAD_RUN_MS); returns NULL.
void *zm_fault_load_main(void *load);

//  Prints one line of figures: ok, each kind of error, latencies.
void zm_fault_load_print(const zm_fault_load_t *self, const char *label);

#endif
