//  harness - the process harness of the integration tests (see harness.h).
//  Children are started with fork/execv, stdout on a pipe, stderr in a log
//  file; every live pid is also kept in a process-wide table that an atexit
//  handler kills, and each child asks the kernel for SIGKILL when the test
//  process dies (PR_SET_PDEATHSIG), so even a test killed by ctest's timeout
//  leaves nothing behind. Waiting is always poll() or deadline-bounded
//  polling. It must not interpret test results: it reports, the tests assert.
#define _GNU_SOURCE
#include "harness.h"

#include "zmesh.h"

#include <czmq.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_POLL_MS 5                   //  wait_until's polling interval
#define S_STATUS_TIMEOUT_MS 2000      //  one zmesh.status call
#define S_LINE_MAX 4096               //  bytes of stdout kept while looking for a newline
#define S_LOG_TAIL 8192               //  bytes of a log shown for a failed child

struct zm_proc {
    char name[64];                    //  for logs: "broker", "worker-echo", ...
    char log_path[PATH_MAX];          //  its stderr
    char push_endpoint[256];          //  a broker's push endpoint, "" if none
    pid_t pid;
    int out;                          //  owned read end of its stdout, -1 if not piped
    char pending[S_LINE_MAX];         //  stdout read but not yet returned
    size_t pending_size;
    bool reaped;                      //  waitpid has returned it
    bool judged;                      //  the test took its exit status: teardown won't
    bool killed;                      //  SIGKILLed on purpose: its status means nothing
    int status;                       //  waitpid status once reaped
};

struct zm_harness {
    char dir[256];                    //  mkdtemp directory, removed by destroy
    zm_proc_t *procs[ZM_HARNESS_PROCS_MAX];    //  owned, in start order
    size_t proc_count;
    struct {
        void *object;                 //  owned
        zm_destroy_fn *destroy;
    } objects[ZM_HARNESS_OBJECTS_MAX];
    size_t object_count;
    size_t address_limit;             //  RLIMIT_AS of children spawned from now on; 0 = inherit
};

static const char *s_broker_bin;      //  borrowed from argv
static const char *s_worker_bin;      //  borrowed from argv
static pid_t s_live[ZM_HARNESS_PROCS_MAX * 4];    //  every unreaped child; 0 = free
static bool s_atexit_done;

//  Last resort: whatever is still running when the test process exits dies.
static void
s_kill_all(void)
{
    for (size_t i = 0; i < sizeof s_live / sizeof s_live[0]; i++)
        if (s_live[i] > 0) {
            kill(s_live[i], SIGKILL);
            waitpid(s_live[i], NULL, 0);
            s_live[i] = 0;
        }
}

//  Replaces old_pid by new_pid in the table: (0, pid) adds, (pid, 0) removes.
static void
s_live_set(pid_t old_pid, pid_t new_pid)
{
    for (size_t i = 0; i < sizeof s_live / sizeof s_live[0]; i++)
        if (s_live[i] == old_pid) {
            s_live[i] = new_pid;
            return;
        }
    bool table_full = old_pid == 0;
    assert(!table_full);              //  more live children than s_live holds: raise its size
}

void
zm_harness_init(int argc, char **argv)
{
    if (argc != 3 || access(argv[1], X_OK) != 0 || access(argv[2], X_OK) != 0) {
        fprintf(stderr, "usage: %s ZMESH-BROKER TEST-WORKER (both executable)\n",
                argc > 0 ? argv[0] : "test");
        exit(2);
    }
    s_broker_bin = argv[1];
    s_worker_bin = argv[2];
    if (!s_atexit_done) {
        atexit(s_kill_all);
        s_atexit_done = true;
    }
}

int64_t
zm_harness_now(void)
{
    return zclock_mono();
}

zm_harness_t *
zm_harness_new(void)
{
    assert(s_broker_bin);             //  zm_harness_init first
    zm_harness_t *self = calloc(1, sizeof *self);
    assert(self);
    const char *tmp = getenv("TMPDIR");
    //  ipc:// paths in it must stay well under the 107 bytes of sun_path.
    int length = snprintf(self->dir, sizeof self->dir, "%s/zmesh-it-XXXXXX",
                          tmp && *tmp && strlen(tmp) < 64 ? tmp : "/tmp");
    assert(length > 0 && (size_t) length < sizeof self->dir);
    char *made = mkdtemp(self->dir);
    assert(made);
    return self;
}

const char *
zm_harness_dir(const zm_harness_t *self)
{
    assert(self);
    return self->dir;
}

void
zm_harness_adopt(zm_harness_t *self, void *object, zm_destroy_fn *destroy)
{
    assert(self);
    assert(object);
    assert(destroy);
    assert(self->object_count < ZM_HARNESS_OBJECTS_MAX);
    self->objects[self->object_count].object = object;
    self->objects[self->object_count].destroy = destroy;
    self->object_count++;
}

static void
s_client_destroy(void **client_p)
{
    zmesh_client_destroy((zmesh_client_t **) client_p);
}

zmesh_client_t *
zm_harness_client(zm_harness_t *self, const char *endpoint)
{
    assert(self);
    assert(endpoint);
    zmesh_client_t *client = zmesh_client_new(endpoint, NULL);
    if (client)
        zm_harness_adopt(self, client, s_client_destroy);
    return client;
}

pid_t
zm_proc_pid(const zm_proc_t *proc)
{
    assert(proc);
    return proc->pid;
}

const char *
zm_proc_log_path(const zm_proc_t *proc)
{
    assert(proc);
    return proc->log_path;
}

void
zm_harness_set_address_limit(zm_harness_t *self, size_t bytes)
{
    assert(self);
    self->address_limit = bytes;
}

bool
zm_harness_exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void
zm_harness_exec(char *const argv[], int out, int err, pid_t parent, size_t address_limit)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);                   //  the parent died before prctl
    struct rlimit limit = {.rlim_cur = address_limit, .rlim_max = address_limit};
    if (address_limit > 0 && setrlimit(RLIMIT_AS, &limit) != 0)
        _exit(127);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out >= 0 ? out : null, 1) < 0
        || (err >= 0 && dup2(err, 2) < 0))
        _exit(127);
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    _exit(127);
}

bool
zm_harness_file_contains(const char *path, const char *text)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    char *bytes = NULL;
    size_t size = 0;
    FILE *copy = open_memstream(&bytes, &size);
    char buffer[8192];
    size_t got;
    while (copy && (got = fread(buffer, 1, sizeof buffer, file)) > 0)
        fwrite(buffer, 1, got, copy);
    fclose(file);
    if (copy)
        fclose(copy);
    bool found = bytes && memmem(bytes, size, text, strlen(text)) != NULL;
    free(bytes);
    return found;
}

zm_proc_t *
zm_harness_spawn(zm_harness_t *self, const char *name, char *const argv[], bool pipe_stdout)
{
    assert(self);
    assert(name);
    assert(argv && argv[0]);
    assert(self->proc_count < ZM_HARNESS_PROCS_MAX);
    zm_proc_t *proc = calloc(1, sizeof *proc);
    assert(proc);
    snprintf(proc->name, sizeof proc->name, "%s", name);
    snprintf(proc->log_path, sizeof proc->log_path, "%s/%02zu-%s.log", self->dir,
             self->proc_count, name);
    proc->out = -1;
    int log = open(proc->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int out[2] = {-1, -1};
    if (log < 0 || (pipe_stdout && pipe2(out, O_CLOEXEC) != 0)) {
        perror("harness: log or pipe");
        abort();
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        zm_harness_exec(argv, out[1] >= 0 ? out[1] : log, log, parent, self->address_limit);
    close(log);
    if (out[1] >= 0)
        close(out[1]);
    if (pid < 0) {
        if (out[0] >= 0)
            close(out[0]);
        free(proc);
        return NULL;
    }
    proc->pid = pid;
    proc->out = out[0];
    s_live_set(0, pid);
    self->procs[self->proc_count++] = proc;
    return proc;
}

//  Moves one complete line from pending into buffer; false if there is none.
static bool
s_take_line(zm_proc_t *proc, char *buffer, size_t size, bool at_eof)
{
    char *newline = memchr(proc->pending, '\n', proc->pending_size);
    if (!newline && !(at_eof && proc->pending_size > 0)
        && proc->pending_size < sizeof proc->pending)
        return false;
    size_t length = newline ? (size_t) (newline - proc->pending) : proc->pending_size;
    size_t used = newline ? length + 1 : length;
    size_t copied = length < size - 1 ? length : size - 1;
    memcpy(buffer, proc->pending, copied);
    buffer[copied] = '\0';
    memmove(proc->pending, proc->pending + used, proc->pending_size - used);
    proc->pending_size -= used;
    return true;
}

int
zm_harness_read_line(zm_proc_t *proc, char *buffer, size_t size, int deadline_ms)
{
    assert(proc);
    assert(buffer && size > 0);
    assert(proc->out >= 0);           //  spawned with pipe_stdout
    int64_t deadline = zclock_mono() + deadline_ms;
    while (!s_take_line(proc, buffer, size, false)) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            return ZMESH_ETIMEDOUT;
        struct pollfd item = {.fd = proc->out, .events = POLLIN};
        int rc = poll(&item, 1, (int) left);
        if (rc < 0 && errno != EINTR)
            return ZMESH_ECLOSED;
        if (rc <= 0)
            continue;
        ssize_t got = read(proc->out, proc->pending + proc->pending_size,
                           sizeof proc->pending - proc->pending_size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return s_take_line(proc, buffer, size, true) ? ZMESH_OK : ZMESH_ECLOSED;
        proc->pending_size += (size_t) got;
    }
    return ZMESH_OK;
}

//  Builds argv = head..., extra..., NULL into a fixed array.
static void
s_build_argv(char **argv, size_t max, char *const head[], size_t head_count,
             const char *const extra[])
{
    size_t count = 0;
    for (size_t i = 0; i < head_count; i++)
        argv[count++] = head[i];
    for (size_t i = 0; extra && extra[i]; i++) {
        assert(count + 1 < max);
        argv[count++] = (char *) extra[i];
    }
    argv[count] = NULL;
}

//  The value of --push-bind among the extra flags, or NULL.
static const char *
s_push_bind_of(const char *const extra[])
{
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(extra[i], "--push-bind") == 0)
            return extra[i + 1];
    return NULL;
}

//  Reads one endpoint line of the broker's --print-endpoint output.
static bool
s_read_endpoint(zm_proc_t *proc, const char *what, char *endpoint, size_t size)
{
    int rc = zm_harness_read_line(proc, endpoint, size, ZM_HARNESS_START_MS);
    if (rc == ZMESH_OK
        && (strncmp(endpoint, "tcp://", 6) == 0 || strncmp(endpoint, "ipc://", 6) == 0))
        return true;
    fprintf(stderr, "harness: broker printed no %s (%s)\n", what,
            rc == ZMESH_OK ? endpoint : zmesh_strerror(rc));
    return false;
}

zm_proc_t *
zm_harness_broker(zm_harness_t *self, const char *bind, const char *const extra[],
                  char *endpoint, size_t size)
{
    assert(self);
    assert(bind);
    assert(endpoint && size > 0);
    //  The push endpoint's default port is fixed: tests run side by side
    //  bind a wildcard port unless they chose one.
    const char *push_bind = s_push_bind_of(extra);
    char *head[] = {(char *) s_broker_bin, "--bind", (char *) bind, "--print-endpoint",
                    "--push-bind", "tcp://127.0.0.1:*"};
    char *argv[32];
    s_build_argv(argv, 32, head, push_bind ? 4 : 6, extra);
    zm_proc_t *proc = zm_harness_spawn(self, "broker", argv, true);
    if (!proc)
        return NULL;
    bool pushing = !push_bind || strcmp(push_bind, "none") != 0;
    if (s_read_endpoint(proc, "endpoint", endpoint, size)
        && (!pushing || s_read_endpoint(proc, "push endpoint", proc->push_endpoint,
                                        sizeof proc->push_endpoint)))
        return proc;
    zm_harness_stop(proc, ZM_HARNESS_STOP_MS);
    return NULL;
}

const char *
zm_proc_push_endpoint(const zm_proc_t *proc)
{
    assert(proc);
    return proc->push_endpoint;
}

zm_proc_t *
zm_harness_worker(zm_harness_t *self, const char *endpoint, const char *service,
                  const char *mode, const char *const extra[])
{
    assert(self);
    assert(endpoint && service && mode);
    char *head[] = {(char *) s_worker_bin, "--broker", (char *) endpoint, "--service",
                    (char *) service, "--mode", (char *) mode};
    char *argv[32];
    s_build_argv(argv, 32, head, 7, extra);
    char name[64];
    snprintf(name, sizeof name, "worker-%s", mode);
    return zm_harness_spawn(self, name, argv, false);
}

void
zm_harness_kill(zm_proc_t *proc, int signal)
{
    assert(proc);
    if (proc->reaped)
        return;
    if (signal == SIGKILL)
        proc->killed = true;
    kill(proc->pid, signal);
}

//  One waitpid(WNOHANG); true once the child is reaped.
static bool
s_try_reap(void *arg)
{
    zm_proc_t *proc = arg;
    if (proc->reaped)
        return true;
    int status;
    pid_t rc = waitpid(proc->pid, &status, WNOHANG);
    if (rc == proc->pid || (rc < 0 && errno == ECHILD)) {
        proc->reaped = true;
        proc->status = rc == proc->pid ? status : -1;
        s_live_set(proc->pid, 0);
    }
    return proc->reaped;
}

bool
zm_harness_reap(zm_proc_t *proc, int deadline_ms, int *status_p)
{
    assert(proc);
    if (!zm_harness_wait_until(s_try_reap, proc, deadline_ms))
        return false;
    proc->judged = true;
    if (status_p)
        *status_p = proc->status;
    return true;
}

int
zm_harness_stop(zm_proc_t *proc, int deadline_ms)
{
    assert(proc);
    zm_harness_kill(proc, SIGTERM);
    int status = -1;                  //  stays -1 if even SIGKILL left it unreaped
    if (!zm_harness_reap(proc, deadline_ms, &status)) {
        fprintf(stderr, "harness: %s pid=%d ignored SIGTERM for %d ms, killing it\n", proc->name,
                (int) proc->pid, deadline_ms);
        zm_harness_kill(proc, SIGKILL);
        zm_harness_reap(proc, ZM_HARNESS_STOP_MS, &status);
    }
    return status;
}

bool
zm_harness_wait_until(zm_predicate_fn *predicate, void *arg, int deadline_ms)
{
    assert(predicate);
    int64_t deadline = zclock_mono() + deadline_ms;
    while (true) {
        if (predicate(arg))
            return true;
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            return false;
        //  The polling interval, bounded by the deadline: not a wait for the condition.
        poll(NULL, 0, left < S_POLL_MS ? (int) left : S_POLL_MS);
    }
}

//  True once every child of the harness is reaped.
static bool
s_all_reaped(void *arg)
{
    zm_harness_t *self = arg;
    bool all = true;
    for (size_t i = 0; i < self->proc_count; i++)
        all = s_try_reap(self->procs[i]) && all;
    return all;
}

static void
s_show_log(const zm_proc_t *proc)
{
    fprintf(stderr, "---- %s pid=%d status=0x%x log %s (tail) ----\n", proc->name, (int) proc->pid,
            proc->status, proc->log_path);
    FILE *file = fopen(proc->log_path, "r");
    if (!file)
        return;
    if (fseek(file, 0, SEEK_END) == 0 && ftell(file) > S_LOG_TAIL)
        fseek(file, -S_LOG_TAIL, SEEK_END);
    else
        fseek(file, 0, SEEK_SET);
    char buffer[1024];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0)
        fwrite(buffer, 1, got, stderr);
    fclose(file);
    fprintf(stderr, "---- end of %s ----\n", proc->name);
}

static void
s_remove_dir(const char *path)
{
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir(dir)))
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                unlinkat(dirfd(dir), entry->d_name, 0);
        closedir(dir);
    }
    rmdir(path);
}

int
zm_harness_destroy(zm_harness_t **self_p)
{
    assert(self_p);
    zm_harness_t *self = *self_p;
    if (!self)
        return 0;
    while (self->object_count > 0) {
        self->object_count--;
        self->objects[self->object_count].destroy(&self->objects[self->object_count].object);
    }
    for (size_t i = 0; i < self->proc_count; i++)
        zm_harness_kill(self->procs[i], SIGTERM);
    if (!zm_harness_wait_until(s_all_reaped, self, ZM_HARNESS_STOP_MS))
        for (size_t i = 0; i < self->proc_count; i++)
            if (!self->procs[i]->reaped) {
                fprintf(stderr, "harness: %s ignored SIGTERM\n", self->procs[i]->name);
                zm_harness_kill(self->procs[i], SIGKILL);
                self->procs[i]->killed = false;     //  still a failure: judge it
            }
    zm_harness_wait_until(s_all_reaped, self, ZM_HARNESS_STOP_MS);
    int failed = 0;
    bool show_all = getenv("ZMESH_IT_LOGS") != NULL;
    for (size_t i = 0; i < self->proc_count; i++) {
        zm_proc_t *proc = self->procs[i];
        bool bad = !proc->judged && !proc->killed && !zm_harness_exited_ok(proc->status);
        failed += bad;
        if (bad || show_all)
            s_show_log(proc);
        if (proc->out >= 0)
            close(proc->out);
        free(proc);
    }
    if (getenv("ZMESH_IT_KEEP"))
        fprintf(stderr, "harness: kept %s\n", self->dir);
    else
        s_remove_dir(self->dir);
    free(self);
    *self_p = NULL;
    return failed;
}

int
zm_harness_setup(void **state)
{
    *state = zm_harness_new();
    return 0;
}

int
zm_harness_teardown(void **state)
{
    zm_harness_t *self = *state;
    int failed = zm_harness_destroy(&self);
    *state = NULL;
    if (failed)
        fprintf(stderr, "harness: %d child(ren) did not exit cleanly after SIGTERM\n", failed);
    return failed ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  zmesh.status

static bool
s_key_is(const msgpack_object *key, const char *name)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(name)
           && memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

static uint64_t
s_uint(const msgpack_object *value)
{
    return value->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? value->via.u64 : 0;
}

//  Fills status from the services[] entry named service, if it is one.
static void
s_read_service(const msgpack_object *entry, const char *service, zm_status_t *status)
{
    if (entry->type != MSGPACK_OBJECT_MAP)
        return;
    const msgpack_object_map *map = &entry->via.map;
    bool match = false;
    for (uint32_t i = 0; i < map->size; i++)
        if (s_key_is(&map->ptr[i].key, "name") && s_key_is(&map->ptr[i].val, service))
            match = true;
    if (!match)
        return;
    status->known = true;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key, *value = &map->ptr[i].val;
        if (s_key_is(key, "workers"))
            status->workers = s_uint(value);
        else if (s_key_is(key, "slots"))
            status->slots = s_uint(value);
        else if (s_key_is(key, "inflight"))
            status->inflight = s_uint(value);
        else if (s_key_is(key, "queued"))
            status->queued = s_uint(value);
    }
}

static void
s_read_counters(const msgpack_object *counters, zm_status_t *status)
{
    if (counters->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < counters->via.map.size; i++) {
        const msgpack_object *key = &counters->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && status->counter_count == ZM_HARNESS_COUNTERS_MAX)
            fprintf(stderr, "harness: status counter %.*s not kept: raise"
                            " ZM_HARNESS_COUNTERS_MAX\n",
                    (int) key->via.str.size, key->via.str.ptr);
        if (key->type != MSGPACK_OBJECT_STR || status->counter_count == ZM_HARNESS_COUNTERS_MAX)
            continue;
        size_t at = status->counter_count++;
        snprintf(status->counters[at].name, sizeof status->counters[at].name, "%.*s",
                 (int) key->via.str.size, key->via.str.ptr);
        status->counters[at].value = s_uint(&counters->via.map.ptr[i].val);
    }
}

//  Decodes a status reply; false if it is not the documented map.
static bool
s_decode_status(const void *data, size_t size, const char *service, zm_status_t *status)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    bool ok = msgpack_unpack_next(&result, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && result.data.type == MSGPACK_OBJECT_MAP;
    const msgpack_object_map *map = ok ? &result.data.via.map : NULL;
    for (uint32_t i = 0; ok && i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key, *value = &map->ptr[i].val;
        if (s_key_is(key, "services") && value->type == MSGPACK_OBJECT_ARRAY && service)
            for (uint32_t j = 0; j < value->via.array.size; j++)
                s_read_service(&value->via.array.ptr[j], service, status);
        else if (s_key_is(key, "counters"))
            s_read_counters(value, status);
    }
    msgpack_unpacked_destroy(&result);
    return ok && status->counter_count > 0;
}

int
zm_harness_status(const char *endpoint, const char *service, zm_status_t *status)
{
    assert(endpoint);
    assert(status);
    memset(status, 0, sizeof *status);
    int rc;
    zmesh_client_t *client = zmesh_client_new(endpoint, &rc);
    if (!client)
        return rc;
    zmesh_msg_t *reply = NULL;
    rc = zmesh_client_call(client, "zmesh.status", "\xc0", 1, S_STATUS_TIMEOUT_MS, &reply);
    if (rc == ZMESH_OK
        && !s_decode_status(zmesh_msg_data(reply), zmesh_msg_size(reply), service, status))
        rc = ZMESH_EPROTO;
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    return rc;
}

uint64_t
zm_status_counter(const zm_status_t *self, const char *name)
{
    assert(self);
    assert(name);
    for (size_t i = 0; i < self->counter_count; i++)
        if (strcmp(self->counters[i].name, name) == 0)
            return self->counters[i].value;
    return UINT64_MAX;
}

typedef struct {
    const char *endpoint;
    const char *service;
    uint64_t count;
} s_workers_wanted_t;

static bool
s_has_workers(void *arg)
{
    s_workers_wanted_t *wanted = arg;
    zm_status_t status;
    return zm_harness_status(wanted->endpoint, wanted->service, &status) == ZMESH_OK
           && status.workers == wanted->count;
}

bool
zm_harness_wait_workers(const char *endpoint, const char *service, uint64_t count,
                        int deadline_ms)
{
    s_workers_wanted_t wanted = {endpoint, service, count};
    return zm_harness_wait_until(s_has_workers, &wanted, deadline_ms);
}

uint64_t
zm_harness_counter(const char *endpoint, const char *name)
{
    assert(endpoint);
    assert(name);
    zm_status_t status;
    if (zm_harness_status(endpoint, NULL, &status) != ZMESH_OK)
        return UINT64_MAX;
    return zm_status_counter(&status, name);
}
