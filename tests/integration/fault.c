//  fault - helpers of the failure-handling integration tests (see fault.h).
//  Processes started here live in a table of their own, killed at exit and
//  by the kernel when the test dies (PR_SET_PDEATHSIG), as the harness does
//  for its children. Status reads use a fresh client per call, so they never
//  disturb the clients under test. It asserts only on programmer errors,
//  never on what a peer or a child did.
#define _GNU_SOURCE
#include "fault.h"

#include <czmq.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_STATUS_TIMEOUT_MS 2000      //  one zmesh.status call
#define S_STEP_MS 100                 //  zm_fault_load_run's wait per step

//  A process started by zm_fault_spawn.
typedef struct {
    pid_t pid;                        //  0: free entry
    bool killed;                      //  SIGKILLed on purpose: its status means nothing
} s_proc_t;

static const char *s_broker_bin;      //  borrowed from argv
static const char *s_worker_bin;      //  borrowed from argv
static s_proc_t s_procs[ZM_FAULT_PROCS_MAX];
static unsigned s_spawned;            //  names log files

//  Whatever is still running when the test process exits dies.
static void
s_kill_all(void)
{
    for (size_t i = 0; i < ZM_FAULT_PROCS_MAX; i++)
        if (s_procs[i].pid > 0) {
            kill(s_procs[i].pid, SIGKILL);
            waitpid(s_procs[i].pid, NULL, 0);
            s_procs[i].pid = 0;
        }
}

void
zm_fault_init(int argc, char **argv)
{
    assert(argc == 3);                //  zm_harness_init has checked them
    s_broker_bin = argv[1];
    s_worker_bin = argv[2];
    atexit(s_kill_all);
}

const char *
zm_fault_broker_bin(void)
{
    assert(s_broker_bin);
    return s_broker_bin;
}

const char *
zm_fault_worker_bin(void)
{
    assert(s_worker_bin);
    return s_worker_bin;
}

int
zm_fault_setup(void **state)
{
    return zm_harness_setup(state);
}

int
zm_fault_teardown(void **state)
{
    int failed = zm_fault_stop_all();
    if (failed)
        fprintf(stderr, "fault: %d process(es) did not exit cleanly after SIGTERM\n", failed);
    int harness_failed = zm_harness_teardown(state);
    return harness_failed || failed ? -1 : 0;
}

zm_proc_t *
zm_fault_broker(zm_harness_t *harness, const char *name, const char *const extra[],
                char *endpoint, size_t size)
{
    assert(harness && name && endpoint);
    char bind[256];
    snprintf(bind, sizeof bind, "ipc://%s/%s.ipc", zm_harness_dir(harness), name);
    return zm_harness_broker(harness, bind, extra, endpoint, size);
}

//  ---------------------------------------------------------------------
//  Processes

//  Forks argv with stdout and stderr on out (-1: stdout to /dev/null, stderr kept).
static pid_t
s_fork(char *const argv[], int out)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        zm_harness_exec(argv, out, out, parent, 0);
    return pid;
}

static s_proc_t *
s_proc_of(pid_t pid)
{
    for (size_t i = 0; i < ZM_FAULT_PROCS_MAX; i++)
        if (s_procs[i].pid == pid)
            return &s_procs[i];
    return NULL;
}

pid_t
zm_fault_spawn(const char *log_path, char *const argv[])
{
    assert(log_path);
    assert(argv && argv[0]);
    s_proc_t *entry = s_proc_of(0);
    if (!entry)
        return -1;
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log < 0)
        return -1;
    pid_t pid = s_fork(argv, log);
    close(log);
    if (pid > 0)
        *entry = (s_proc_t){.pid = pid};
    return pid > 0 ? pid : -1;
}

pid_t
zm_fault_worker(const char *dir, const char *endpoint, const char *service, const char *mode,
                const char *const extra[])
{
    assert(dir && endpoint && service && mode);
    char *argv[32] = {(char *) zm_fault_worker_bin(), "--broker", (char *) endpoint, "--service",
                      (char *) service, "--mode", (char *) mode};
    size_t count = 7;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert(count + 1 < sizeof argv / sizeof argv[0]);
        argv[count++] = (char *) extra[i];
    }
    argv[count] = NULL;
    char log_path[PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s/fault-%03u-%s.log", dir, s_spawned++, mode);
    return zm_fault_spawn(log_path, argv);
}

void
zm_fault_kill(pid_t pid, int signal)
{
    s_proc_t *entry = pid > 0 ? s_proc_of(pid) : NULL;
    if (!entry)
        return;                       //  not ours, or already reaped
    if (signal == SIGKILL)
        entry->killed = true;
    kill(pid, signal);
}

typedef struct {
    pid_t pid;
    int status;
    bool reaped;
} s_reaping_t;

static bool
s_try_reap(void *arg)
{
    s_reaping_t *reaping = arg;
    pid_t rc = waitpid(reaping->pid, &reaping->status, WNOHANG);
    reaping->reaped = rc == reaping->pid || (rc < 0 && errno == ECHILD);
    return reaping->reaped;
}

bool
zm_fault_reap(pid_t pid, int deadline_ms, int *status_p)
{
    s_proc_t *entry = pid > 0 ? s_proc_of(pid) : NULL;
    assert(entry);                    //  one of ours, not yet reaped
    s_reaping_t reaping = {.pid = pid, .status = -1};
    if (!zm_harness_wait_until(s_try_reap, &reaping, deadline_ms))
        return false;
    entry->pid = 0;
    if (status_p)
        *status_p = reaping.status;
    return true;
}

static bool
s_all_reaped(void *arg)
{
    int *failed = arg;
    bool all = true;
    for (size_t i = 0; i < ZM_FAULT_PROCS_MAX; i++) {
        s_reaping_t reaping = {.pid = s_procs[i].pid, .status = -1};
        if (reaping.pid <= 0)
            continue;
        if (!s_try_reap(&reaping)) {
            all = false;
            continue;
        }
        if (!s_procs[i].killed && !zm_harness_exited_ok(reaping.status)) {
            fprintf(stderr, "fault: pid %d ended with status 0x%x\n", (int) reaping.pid,
                    reaping.status);
            (*failed)++;
        }
        s_procs[i].pid = 0;
    }
    return all;
}

//  True once pid catches SIGTERM (its SigCgt mask in /proc), or is gone. A
//  process that has only just been spawned (the chaos test respawns workers
//  to the end) would otherwise die of the signal's default action before
//  it installed its handler, and look like one that does not stop cleanly.
static bool
s_catches_sigterm(void *arg)
{
    pid_t pid = *(pid_t *) arg;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return true;
    bool caught = true;                 //  unreadable: do not wait for it
    unsigned long long mask;
    char state = 0;
    while (fgets(line, sizeof line, file)) {
        if (sscanf(line, "State: %c", &state) == 1 && state == 'Z')
            break;                      //  exited already: nothing to wait for
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) {
            caught = (mask >> (SIGTERM - 1)) & 1;
            break;
        }
    }
    fclose(file);
    return caught;
}

int
zm_fault_stop_all(void)
{
    int failed = 0;
    for (size_t i = 0; i < ZM_FAULT_PROCS_MAX; i++)
        if (s_procs[i].pid > 0) {
            zm_harness_wait_until(s_catches_sigterm, &s_procs[i].pid, ZM_HARNESS_STOP_MS);
            kill(s_procs[i].pid, SIGTERM);
        }
    if (!zm_harness_wait_until(s_all_reaped, &failed, ZM_HARNESS_STOP_MS))
        for (size_t i = 0; i < ZM_FAULT_PROCS_MAX; i++)
            if (s_procs[i].pid > 0) {
                fprintf(stderr, "fault: pid %d ignored SIGTERM\n", (int) s_procs[i].pid);
                kill(s_procs[i].pid, SIGKILL);
                s_procs[i].killed = false;      //  still a failure: judge it
            }
    zm_harness_wait_until(s_all_reaped, &failed, ZM_HARNESS_STOP_MS);
    return failed;
}

bool
zm_fault_which(const char *program, char *path, size_t size)
{
    assert(program && path && size > 0);
    if (strchr(program, '/')) {
        snprintf(path, size, "%s", program);
        return access(path, X_OK) == 0;
    }
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/bin:/bin", env ? env : "");
    char *saveptr = NULL;
    for (char *dir = strtok_r(dirs, ":", &saveptr); dir; dir = strtok_r(NULL, ":", &saveptr)) {
        snprintf(path, size, "%s/%s", dir, program);
        if (*dir && access(path, X_OK) == 0)
            return true;
    }
    return false;
}

int
zm_fault_run(char *const argv[], bool quiet, int deadline_ms)
{
    assert(argv && argv[0]);
    char path[PATH_MAX];
    if (!zm_fault_which(argv[0], path, sizeof path))
        return -1;
    char *args[64];
    size_t count = 0;
    args[count++] = path;
    for (size_t i = 1; argv[i]; i++) {
        assert(count + 1 < sizeof args / sizeof args[0]);
        args[count++] = argv[i];
    }
    args[count] = NULL;
    int null = quiet ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
    pid_t pid = s_fork(args, null);
    if (null >= 0)
        close(null);
    if (pid < 0)
        return -1;
    s_reaping_t reaping = {.pid = pid, .status = -1};
    if (!zm_harness_wait_until(s_try_reap, &reaping, deadline_ms)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return WIFEXITED(reaping.status) ? WEXITSTATUS(reaping.status) : -1;
}

bool
zm_fault_log_contains(const char *dir, const char *suffix, const char *text)
{
    assert(dir && suffix && text);
    DIR *listing = opendir(dir);
    if (!listing)
        return false;
    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir(listing))) {
        size_t length = strlen(entry->d_name), tail = strlen(suffix);
        if (length < tail || strcmp(entry->d_name + length - tail, suffix) != 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        found = zm_harness_file_contains(path, text);
    }
    closedir(listing);
    return found;
}

//  ---------------------------------------------------------------------
//  zmesh.status

static bool
s_key_is(const msgpack_object *key, const char *name)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(name)
           && memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

static void
s_copy_str(const msgpack_object *value, char *text, size_t size)
{
    if (value->type == MSGPACK_OBJECT_STR)
        snprintf(text, size, "%.*s", (int) value->via.str.size, value->via.str.ptr);
}

//  Decodes one workers[] entry; false if it is not a map.
static bool
s_read_worker(const msgpack_object *entry, zm_fault_worker_t *worker)
{
    memset(worker, 0, sizeof *worker);
    if (entry->type != MSGPACK_OBJECT_MAP)
        return false;
    for (uint32_t i = 0; i < entry->via.map.size; i++) {
        const msgpack_object *key = &entry->via.map.ptr[i].key;
        const msgpack_object *value = &entry->via.map.ptr[i].val;
        bool number = value->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        if (s_key_is(key, "id"))
            s_copy_str(value, worker->id, sizeof worker->id);
        else if (s_key_is(key, "service"))
            s_copy_str(value, worker->service, sizeof worker->service);
        else if (s_key_is(key, "idempotent"))
            worker->idempotent = value->type == MSGPACK_OBJECT_BOOLEAN && value->via.boolean;
        else if (s_key_is(key, "inflight") && number)
            worker->inflight = value->via.u64;
        else if (s_key_is(key, "served") && number)
            worker->served = value->via.u64;
    }
    return true;
}

//  Keeps the workers[] entries of service from a status reply.
static int
s_decode_workers(const zmesh_msg_t *reply, const char *service, zm_fault_worker_t *workers,
                 size_t max, size_t *count_p)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    int rc = ZMESH_EPROTO;
    if (msgpack_unpack_next(&result, zmesh_msg_data(reply), zmesh_msg_size(reply), &offset)
            == MSGPACK_UNPACK_SUCCESS
        && result.data.type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < result.data.via.map.size; i++) {
            const msgpack_object_kv *pair = &result.data.via.map.ptr[i];
            if (!s_key_is(&pair->key, "workers") || pair->val.type != MSGPACK_OBJECT_ARRAY)
                continue;
            rc = ZMESH_OK;
            for (uint32_t j = 0; j < pair->val.via.array.size && *count_p < max; j++) {
                zm_fault_worker_t *worker = &workers[*count_p];
                if (s_read_worker(&pair->val.via.array.ptr[j], worker)
                    && (!service || strcmp(worker->service, service) == 0))
                    (*count_p)++;
            }
        }
    msgpack_unpacked_destroy(&result);
    return rc;
}

int
zm_fault_workers(const char *endpoint, const char *service, zm_fault_worker_t *workers,
                 size_t max, size_t *count_p)
{
    assert(endpoint);
    assert(workers || max == 0);
    assert(count_p);
    *count_p = 0;
    int rc;
    zmesh_client_t *client = zmesh_client_new(endpoint, &rc);
    if (!client)
        return rc;
    zmesh_msg_t *reply = NULL;
    rc = zmesh_client_call(client, "zmesh.status", "\xc0", 1, S_STATUS_TIMEOUT_MS, &reply);
    if (rc == ZMESH_OK)
        rc = s_decode_workers(reply, service, workers, max, count_p);
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    return rc;
}

typedef struct {
    const char *endpoint;
    const char *name;
    uint64_t value;
    uint64_t seen;
} s_counter_wanted_t;

static bool
s_counter_reached(void *arg)
{
    s_counter_wanted_t *wanted = arg;
    wanted->seen = zm_harness_counter(wanted->endpoint, wanted->name);
    return wanted->seen != UINT64_MAX && wanted->seen >= wanted->value;
}

bool
zm_fault_wait_counter(const char *endpoint, const char *name, uint64_t value, int deadline_ms,
                      uint64_t *seen_p)
{
    s_counter_wanted_t wanted = {endpoint, name, value, UINT64_MAX};
    bool reached = zm_harness_wait_until(s_counter_reached, &wanted, deadline_ms);
    if (seen_p)
        *seen_p = wanted.seen;
    return reached;
}

void
zm_fault_hold(int ms)
{
    int64_t until = zm_harness_now() + ms;
    int64_t left;
    while ((left = until - zm_harness_now()) > 0)
        poll(NULL, 0, (int) left);
}

//  ---------------------------------------------------------------------
//  Payloads

zmesh_msg_t *
zm_fault_uint(uint64_t value)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_uint(pack, value);
    zmesh_msg_t *msg = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return msg;
}

bool
zm_fault_count_reply(const zmesh_msg_t *reply, const zmesh_msg_t *sent, uint64_t *pid_p)
{
    assert(reply && sent && pid_p);
    const char *data = zmesh_msg_data(reply);
    size_t size = zmesh_msg_size(reply), sent_size = zmesh_msg_size(sent);
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    bool ok = msgpack_unpack_next(&result, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && result.data.type == MSGPACK_OBJECT_MAP
              && result.data.via.map.size == 2;
    const msgpack_object_kv *pairs = ok ? result.data.via.map.ptr : NULL;
    ok = ok && s_key_is(&pairs[0].key, "pid") && s_key_is(&pairs[1].key, "req")
         && pairs[0].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    //  "req" is the last value, appended verbatim: the tail must be the request.
    ok = ok && size > sent_size
         && memcmp(data + size - sent_size, zmesh_msg_data(sent), sent_size) == 0;
    if (ok)
        *pid_p = pairs[0].val.via.u64;
    msgpack_unpacked_destroy(&result);
    return ok;
}

//  ---------------------------------------------------------------------
//  Load

zm_fault_load_t *
zm_fault_load_new(zmesh_client_t *client, int number, const char *service, size_t total,
                  size_t window, int timeout_ms)
{
    assert(client && service);
    assert(total > 0 && window > 0 && timeout_ms > 0);
    zm_fault_load_t *self = calloc(1, sizeof *self);
    assert(self);
    self->client = client;
    self->service = service;
    self->number = number;
    self->total = total;
    self->window = window;
    self->timeout_ms = timeout_ms;
    self->ids = calloc(total, sizeof *self->ids);
    self->sent_at = calloc(total, sizeof *self->sent_at);
    self->completions = calloc(total, sizeof *self->completions);
    assert(self->ids && self->sent_at && self->completions);
    atomic_init(&self->done, 0);
    return self;
}

void
zm_fault_load_destroy(zm_fault_load_t **self_p)
{
    assert(self_p);
    zm_fault_load_t *self = *self_p;
    if (!self)
        return;
    free(self->completions);
    free(self->sent_at);
    free(self->ids);
    free(self);
    *self_p = NULL;
}

static void
s_anomaly(zm_fault_load_t *self, const char *format, ...)
{
    if (self->anomalies++ == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(self->first_anomaly, sizeof self->first_anomaly, format, args);
        va_end(args);
    }
}

//  Call i of client n is [n, i]: no two calls of a test alike.
static zmesh_msg_t *
s_request(const zm_fault_load_t *self, size_t index)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, 2);
    zmesh_pack_uint(pack, (uint64_t) self->number);
    zmesh_pack_uint(pack, index);
    zmesh_msg_t *msg = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return msg;
}

//  Counts an error outcome by kind.
static void
s_count_error(zm_fault_load_t *self, int rc)
{
    if (rc == ZMESH_EWORKERLOST)
        self->worker_lost++;
    else if (rc == ZMESH_ETIMEDOUT)
        self->timed_out++;
    else if (rc == ZMESH_EUNREACHABLE)
        self->unreachable++;
    else if (rc == ZMESH_ENOSERVICE)
        self->no_service++;
    else
        self->other_errors++;
}

//  Records the outcome of call index: its kind, its timing, and whether a
//  reply carries the call's own request (echo, or count-mode reply).
static void
s_record(zm_fault_load_t *self, size_t index, int rc, const zmesh_msg_t *reply)
{
    int64_t elapsed = zm_harness_now() - self->sent_at[index];
    if (elapsed > self->slowest_ms)
        self->slowest_ms = elapsed;
    if (elapsed - self->timeout_ms > self->worst_late_ms)
        self->worst_late_ms = elapsed - self->timeout_ms;
    if (self->completions[index]++ > 0)
        s_anomaly(self, "call %zu (id %llu) completed twice", index,
                  (unsigned long long) self->ids[index]);
    atomic_fetch_add(&self->done, 1);
    if (rc != ZMESH_OK) {
        s_count_error(self, rc);
        return;
    }
    zmesh_msg_t *sent = s_request(self, index);
    uint64_t pid;
    bool own = (zmesh_msg_size(reply) == zmesh_msg_size(sent)
                && memcmp(zmesh_msg_data(reply), zmesh_msg_data(sent), zmesh_msg_size(sent)) == 0)
               || zm_fault_count_reply(reply, sent, &pid);
    zmesh_msg_destroy(&sent);
    if (own)
        self->ok++;
    else
        s_anomaly(self, "call %zu: the reply is not its own request", index);
}

//  Sends calls until window are in flight or all are sent. A send that
//  fails completes its call at once.
static void
s_top_up(zm_fault_load_t *self)
{
    while (self->sent < self->total && self->sent - atomic_load(&self->done) < self->window) {
        size_t index = self->sent++;
        zmesh_msg_t *request = s_request(self, index);
        self->sent_at[index] = zm_harness_now();
        int rc = zmesh_client_send(self->client, self->service, zmesh_msg_data(request),
                                   zmesh_msg_size(request), self->timeout_ms, &self->ids[index]);
        zmesh_msg_destroy(&request);
        if (rc != ZMESH_OK) {
            self->ids[index] = index > 0 ? self->ids[index - 1] : 0;
            s_record(self, index, rc, NULL);
        }
    }
}

//  The call a request id belongs to; total if none. ids[] never decreases
//  (a failed send repeats the id before it), so the first entry holding id
//  is its call.
static size_t
s_index_of(const zm_fault_load_t *self, uint64_t id)
{
    size_t low = 0, high = self->sent;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (self->ids[middle] < id)
            low = middle + 1;
        else
            high = middle;
    }
    return id != 0 && low < self->sent && self->ids[low] == id ? low : self->total;
}

bool
zm_fault_load_step(zm_fault_load_t *self, int wait_ms)
{
    assert(self);
    s_top_up(self);
    if (atomic_load(&self->done) == self->total)
        return false;
    uint64_t id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(self->client, wait_ms, &id, &reply);
    if (id != 0) {                    //  a completion (EAGAIN without an id: none yet)
        size_t index = s_index_of(self, id);
        if (index == self->total)
            s_anomaly(self, "completion of id %llu, never sent", (unsigned long long) id);
        else
            s_record(self, index, rc, reply);
    }
    zmesh_msg_destroy(&reply);
    return atomic_load(&self->done) < self->total;
}

void
zm_fault_load_run(zm_fault_load_t *self, int deadline_ms)
{
    assert(self);
    int64_t deadline = zm_harness_now() + deadline_ms;
    while (zm_fault_load_step(self, S_STEP_MS))
        if (zm_harness_now() >= deadline) {
            s_anomaly(self, "stalled: %zu of %zu calls completed after %d ms",
                      atomic_load(&self->done), self->total, deadline_ms);
            return;
        }
    if (zmesh_client_pending(self->client) != 0)
        s_anomaly(self, "the client still holds %zu calls", zmesh_client_pending(self->client));
}

void *
zm_fault_load_main(void *load)
{
    zm_fault_load_run(load, ZM_FAULT_LOAD_RUN_MS);
    return NULL;
}

void
zm_fault_load_print(const zm_fault_load_t *self, const char *label)
{
    assert(self && label);
    printf("%s: calls=%zu ok=%zu worker_lost=%zu timed_out=%zu unreachable=%zu no_service=%zu"
           " other_errors=%zu anomalies=%zu slowest_ms=%lld worst_late_ms=%lld\n",
           label, self->total, self->ok, self->worker_lost, self->timed_out, self->unreachable,
           self->no_service, self->other_errors, self->anomalies, (long long) self->slowest_ms,
           (long long) self->worst_late_ms);
    if (self->anomalies)
        printf("%s: first anomaly: %s\n", label, self->first_anomaly);
    fflush(stdout);
}
