//  harness - runs real zmesh processes for the integration tests: spawns a
//  program with fork/execv (stdout piped or logged, stderr to a log file in
//  the test's mkdtemp directory, optionally under an address-space limit),
//  reads its stdout line by line against a deadline, starts brokers and test
//  workers, waits for conditions by deadline-bounded polling (never a bare
//  sleep), asks the broker's zmesh.status and decodes it, and kills and
//  reaps everything in teardown, with an atexit handler and PR_SET_PDEATHSIG
//  so that no child outlives a test. It must not hide a failure: a child
//  that did not exit cleanly after SIGTERM is counted and its log is shown.
#ifndef ZM_HARNESS_H_INCLUDED
#define ZM_HARNESS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zmesh.h"

#define ZM_HARNESS_PROCS_MAX 32       //  processes per harness
#define ZM_HARNESS_OBJECTS_MAX 32     //  adopted objects per harness
#define ZM_HARNESS_COUNTERS_MAX 64    //  counters kept from one status reply
#define ZM_HARNESS_START_MS 10000     //  how long a broker may take to print its endpoint
#define ZM_HARNESS_STOP_MS 10000      //  SIGTERM to SIGKILL (ASan's leak check takes time)

typedef struct zm_proc zm_proc_t;
typedef struct zm_harness zm_harness_t;

//  A condition that wait_until polls; arg is the caller's.
typedef bool(zm_predicate_fn)(void *arg);

//  What zmesh.status said about one service, and the broker's counters.
typedef struct {
    uint64_t workers;                 //  registered workers of the service (0 if unknown)
    uint64_t slots;                   //  sum of their slots
    uint64_t inflight;                //  calls its workers hold
    uint64_t queued;                  //  calls waiting in its queue
    bool known;                       //  the broker listed the service
    size_t counter_count;             //  used entries of counters
    struct {
        char name[32];
        uint64_t value;
    } counters[ZM_HARNESS_COUNTERS_MAX];
} zm_status_t;

//  Takes the program paths from the test's command line: argv[1] is
//  zmesh-broker, argv[2] is test-worker. Exits with 2 on bad usage.
void zm_harness_init(int argc, char **argv);

//  Creates a harness with a fresh mkdtemp directory. Never NULL (aborts).
zm_harness_t *zm_harness_new(void);

//  Destroys the adopted objects, then sends SIGTERM to every child still
//  running, waits ZM_HARNESS_STOP_MS, then SIGKILLs and reaps the rest; removes the directory (kept if
//  ZMESH_IT_KEEP is set). Returns how many children it stopped did not exit
//  0, and prints their logs. Sets *self_p to NULL.
int zm_harness_destroy(zm_harness_t **self_p);

//  cmocka fixtures: *state becomes a new harness; teardown destroys it and
//  fails (-1) if a child it stopped did not exit cleanly.
int zm_harness_setup(void **state);
int zm_harness_teardown(void **state);

//  The temporary directory, borrowed.
const char *zm_harness_dir(const zm_harness_t *self);

//  Destroys an object in teardown, so that a failed assert (which leaves the
//  test function at once) leaks nothing. The test must not destroy it itself.
typedef void(zm_destroy_fn)(void **object_p);
void zm_harness_adopt(zm_harness_t *self, void *object, zm_destroy_fn *destroy);

//  A new client of endpoint, owned by the harness (see adopt). NULL on failure.
zmesh_client_t *zm_harness_client(zm_harness_t *self, const char *endpoint);

//  Starts argv[0] with argv. stdout goes to a pipe read by
//  zm_harness_read_line if pipe_stdout, else to the log; stderr always goes
//  to DIR/NN-name.log; stdin is /dev/null. Returns NULL if fork failed; an
//  execv failure shows as exit status 127.
zm_proc_t *zm_harness_spawn(zm_harness_t *self, const char *name, char *const argv[],
                            bool pipe_stdout);

//  Reads one line of the child's stdout (without the newline) into buffer,
//  waiting with poll() at most deadline_ms from now. Returns ZMESH_OK,
//  ZMESH_ETIMEDOUT, or ZMESH_ECLOSED at end of file. A longer line is cut.
int zm_harness_read_line(zm_proc_t *proc, char *buffer, size_t size, int deadline_ms);

//  Starts a broker bound to bind (for example "tcp://127.0.0.1:*") with
//  --print-endpoint and the NULL-terminated extra flags (may be NULL), and
//  reads back the endpoint it bound. Unless extra has --push-bind, the push
//  endpoint (ZMP.md 16.7) binds "tcp://127.0.0.1:*"; unless it is "none",
//  the second line the broker prints, its bound push endpoint, is read too
//  (zm_proc_push_endpoint). Returns NULL, with the child stopped, if an
//  endpoint did not come within ZM_HARNESS_START_MS.
zm_proc_t *zm_harness_broker(zm_harness_t *self, const char *bind, const char *const extra[],
                             char *endpoint, size_t size);

//  A broker's bound push endpoint, borrowed; "" if it has none.
const char *zm_proc_push_endpoint(const zm_proc_t *proc);

//  Starts test-worker for service in mode, with extra flags (may be NULL).
zm_proc_t *zm_harness_worker(zm_harness_t *self, const char *endpoint, const char *service,
                             const char *mode, const char *const extra[]);

//  Sends signal to the child if it still runs. A SIGKILL marks the child as
//  killed on purpose, so teardown does not judge its exit status.
void zm_harness_kill(zm_proc_t *proc, int signal);

//  Waits at most deadline_ms for the child to end. True if it has; then
//  *status_p (may be NULL) gets its waitpid status.
bool zm_harness_reap(zm_proc_t *proc, int deadline_ms, int *status_p);

//  SIGTERM, reap within deadline_ms, else SIGKILL and reap. Returns the
//  waitpid status.
int zm_harness_stop(zm_proc_t *proc, int deadline_ms);

//  True if a waitpid status says "exited with 0".
bool zm_harness_exited_ok(int status);

pid_t zm_proc_pid(const zm_proc_t *proc);

//  The file that holds the child's stderr (its log), borrowed.
const char *zm_proc_log_path(const zm_proc_t *proc);

//  Children spawned from now on start with an address-space limit
//  (RLIMIT_AS, set between fork and execv) of bytes; 0 means they inherit
//  the test's limit, as before. A child whose limit cannot be set exits 127.
//  Not for sanitizer builds: ASan reserves terabytes of virtual memory.
void zm_harness_set_address_limit(zm_harness_t *self, size_t bytes);

//  Polls predicate every few milliseconds until it holds (true) or
//  deadline_ms from now have passed (false). The predicate runs at least once.
bool zm_harness_wait_until(zm_predicate_fn *predicate, void *arg, int deadline_ms);

//  Calls "zmesh.status" (body nil) on a new client and decodes the reply.
//  service may be NULL. Returns ZMESH_OK or the call's error.
int zm_harness_status(const char *endpoint, const char *service, zm_status_t *status);

//  A counter from a status reply; UINT64_MAX if the reply had no such counter.
uint64_t zm_status_counter(const zm_status_t *self, const char *name);

//  Waits until the broker reports exactly count workers for service.
bool zm_harness_wait_workers(const char *endpoint, const char *service, uint64_t count,
                             int deadline_ms);

//  Milliseconds since an arbitrary point (zclock_mono).
int64_t zm_harness_now(void);

//  One counter of the broker's zmesh.status, or UINT64_MAX if it did not answer.
uint64_t zm_harness_counter(const char *endpoint, const char *name);

//  In a forked child: stdin from /dev/null, stdout to out (-1: /dev/null),
//  stderr to err (-1: kept), dies with the test (PDEATHSIG), an address-space
//  limit when address_limit > 0, then execv. Async-signal-safe; never returns.
void zm_harness_exec(char *const argv[], int out, int err, pid_t parent, size_t address_limit)
    __attribute__((noreturn));

//  True if the file at path holds text (read whole: test logs are small).
bool zm_harness_file_contains(const char *path, const char *text);

#endif
