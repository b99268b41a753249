//  exec.c - the --exec bridge: runs `/bin/sh -c CMD` children and speaks JSON lines with them.
//  Per request it writes the request as one JSON line to a child's stdin and reads one JSON
//  line back as the reply. Children are pooled, not bound to threads: a handler takes an idle
//  child for one request and gives it back, so there are never more children than requests
//  running at once (the worker's threads), whatever threads the library runs handlers on, and
//  a child is never shared. A child that fails (exits, closes stdout, writes a line that is not
//  JSON) fails the request and is killed; the next request starts a fresh one. Everything a
//  child writes is untrusted: it is bounded and checked, never asserted.
#define _GNU_SOURCE                 //  pipe2

#include "exec.h"

#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zm_alloc.h"
#include "zm_json.h"
#include "zm_line.h"
#include "zm_log.h"

extern char **environ;

#define S_LINE_MAX (64u << 20)      //  longest reply line accepted from a child, in bytes
#define S_SLICE_MS 100              //  poll slice between two looks at the stop flag
#define S_STOP_GRACE_MS 2000        //  how long a child may still answer once we are stopping
#define S_EXIT_GRACE_MS 1000        //  from SIGTERM to SIGKILL when the bridge is destroyed
#define S_REASON_MAX 256            //  longest failure reason, NUL included

//  zw_exec_stop runs in signal handlers: the flag must be a lock-free atomic.
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free for signal handlers");

//  One child process and the lines read from it.
typedef struct {
    pid_t pid;                  //  the child's pid and process group; 0 when none runs
    int to_child;               //  write end of its stdin, non-blocking; -1 when none
    int from_child;             //  read end of its stdout, non-blocking; -1 when none
    zm_line_reader_t *reader;   //  owned: reads from_child; NULL when none runs
    bool busy;                  //  a handler holds it; guarded by the bridge's lock
} s_child_t;

struct zw_exec {
    char *command;              //  owned: the shell command of every child
    pthread_mutex_t lock;       //  guards children, count and every child's busy flag
    s_child_t **children;       //  owned array of owned children, idle or busy
    size_t count;               //  children in the array
    atomic_int stopping;        //  set by zw_exec_stop, maybe from a signal handler
};

zw_exec_t *
zw_exec_new(const char *command)
{
    assert(command);
    zw_exec_t *self = zm_alloc(sizeof *self);
    self->command = zm_strdup(command);
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->stopping, 0);
    return self;
}

void
zw_exec_stop(zw_exec_t *self)
{
    assert(self);
    atomic_store(&self->stopping, 1);
}

static void
s_describe_status(int status, char *buffer, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buffer, size, "exit=%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buffer, size, "signal=%d", WTERMSIG(status));
    else
        snprintf(buffer, size, "status=%d", status);
}

//  Closes the pipes, drops what was read and forgets the child, which the caller has reaped.
static void
s_child_reset(s_child_t *child)
{
    zm_line_reader_destroy(&child->reader);
    if (child->to_child >= 0)
        close(child->to_child);
    if (child->from_child >= 0)
        close(child->from_child);
    child->to_child = -1;
    child->from_child = -1;
    child->pid = 0;
}

//  Kills the child's whole process group (the shell may have forked the command) and reaps it.
static void
s_child_kill(s_child_t *child, const char *reason)
{
    if (child->pid > 0) {
        kill(-child->pid, SIGKILL);
        int status = 0;
        while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR)
            ;
        char outcome[32];
        s_describe_status(status, outcome, sizeof outcome);
        zm_log_warning("zmesh-worker: child killed pid=%d %s reason=\"%s\"", (int) child->pid,
                       outcome, reason);
    }
    s_child_reset(child);
}

//  Reaps the child if it exited while idle, so the next request starts a fresh one instead of
//  failing on a dead pipe.
static void
s_child_check(s_child_t *child)
{
    if (child->pid <= 0)
        return;
    //  Peek without reaping: while the zombie exists its pid cannot be reused, so killing what
    //  it left in its process group cannot hit a stranger.
    siginfo_t info = {0};
    if (waitid(P_PID, (id_t) child->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0
        || info.si_pid != child->pid)
        return;
    kill(-child->pid, SIGKILL);
    int status = 0;
    while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR)
        ;
    char outcome[32];
    s_describe_status(status, outcome, sizeof outcome);
    zm_log_warning("zmesh-worker: child exited pid=%d %s", (int) child->pid, outcome);
    s_child_reset(child);
}

//  Sets up what the child gets: stdin and stdout on our pipes, stderr passed through, its own
//  process group (so we can kill all it forks, and a terminal's Ctrl-C does not kill it under
//  us), no blocked signals and SIGPIPE back to default (we ignore it; an ignored disposition
//  would survive exec).
static void
s_spawn_setup(posix_spawn_file_actions_t *actions, posix_spawnattr_t *attributes,
              int child_stdin, int child_stdout)
{
    posix_spawn_file_actions_init(actions);
    posix_spawn_file_actions_adddup2(actions, child_stdin, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(actions, child_stdout, STDOUT_FILENO);
    posix_spawnattr_init(attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(attributes, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(attributes, &defaults);
    posix_spawnattr_setpgroup(attributes, 0);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setflags(attributes, flags);
}

//  Starts `/bin/sh -c COMMAND` with pipes to its stdin and stdout. The pipes are close-on-exec,
//  so a child started by another thread never inherits them (it would hold our stdin open).
//  posix_spawn, not fork: it is safe in a threaded process. Returns 0, or -1 with a reason.
static int
s_child_start(zw_exec_t *self, s_child_t *child, char *reason, size_t size)
{
    int to_child[2];
    int from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0) {
        snprintf(reason, size, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(from_child, O_CLOEXEC) != 0) {
        snprintf(reason, size, "cannot make a pipe: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    s_spawn_setup(&actions, &attributes, to_child[0], from_child[1]);
    char *argv[] = {"/bin/sh", "-c", self->command, NULL};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(to_child[0]);
    close(from_child[1]);
    if (rc != 0) {
        snprintf(reason, size, "cannot start /bin/sh: %s", strerror(rc));
        close(to_child[1]);
        close(from_child[0]);
        return -1;
    }
    //  Non-blocking on our side only (each pipe end is its own open file description), so a
    //  child that stops reading or writing cannot hold a handler past the stop grace.
    fcntl(to_child[1], F_SETFL, O_NONBLOCK);
    fcntl(from_child[0], F_SETFL, O_NONBLOCK);
    child->pid = pid;
    child->to_child = to_child[1];
    child->from_child = from_child[0];
    child->reader = zm_line_reader_new(child->from_child, S_LINE_MAX);
    zm_log_info("zmesh-worker: child started pid=%d", (int) pid);
    return 0;
}

//  Says how long the next wait may last: a slice, so that the stop flag is looked at between
//  two, cut short when the worker is stopping and the grace that started at *give_up_at_p (0:
//  not yet) is running out. Returns 0 with *timeout_ms_p, or -1 with a reason once it has run out.
static int
s_slice(zw_exec_t *self, int64_t *give_up_at_p, int *timeout_ms_p, char *reason, size_t size)
{
    *timeout_ms_p = S_SLICE_MS;
    if (!atomic_load(&self->stopping))
        return 0;
    int64_t now = zclock_mono();
    if (*give_up_at_p == 0)
        *give_up_at_p = now + S_STOP_GRACE_MS;
    if (now >= *give_up_at_p) {
        snprintf(reason, size, "the worker is stopping and the command did not answer");
        return -1;
    }
    if (*give_up_at_p - now < S_SLICE_MS)
        *timeout_ms_p = (int) (*give_up_at_p - now);
    return 0;
}

//  Waits until fd is ready for events, in slices (see s_slice). Returns 0 when ready (or
//  broken: the next write says how), -1 with a reason when the stop grace has run out.
static int
s_wait(zw_exec_t *self, int fd, short events, int64_t *give_up_at_p, char *reason, size_t size)
{
    while (true) {
        int timeout_ms = 0;
        if (s_slice(self, give_up_at_p, &timeout_ms, reason, size) != 0)
            return -1;
        struct pollfd item = {.fd = fd, .events = events};
        int ready = poll(&item, 1, timeout_ms);
        if (ready > 0)
            return 0;
        if (ready < 0 && errno != EINTR) {
            snprintf(reason, size, "poll failed: %s", strerror(errno));
            return -1;
        }
    }
}

//  Writes all of data to the child's stdin. Returns 0, or -1 with a reason.
static int
s_write_all(zw_exec_t *self, s_child_t *child, const char *data, size_t size,
            int64_t *give_up_at_p, char *reason, size_t reason_size)
{
    while (size > 0) {
        ssize_t written = write(child->to_child, data, size);
        if (written > 0) {
            data += written;
            size -= (size_t) written;
        }
        else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s_wait(self, child->to_child, POLLOUT, give_up_at_p, reason, reason_size) != 0)
                return -1;
        }
        else if (written < 0 && errno == EPIPE) {
            snprintf(reason, reason_size, "the command closed its stdin or exited");
            return -1;
        }
        else if (written < 0 && errno != EINTR) {
            snprintf(reason, reason_size, "cannot write to the command: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

//  Reads one line from the child's stdout into *line_p (NUL-terminated, without its "\n" or
//  "\r\n", borrowed until the next read), in slices (see s_slice). A last line that the end of
//  its stdout cuts off is no reply: the child died mid-line. Returns 0, or -1 with a reason.
static int
s_read_line(zw_exec_t *self, s_child_t *child, int64_t *give_up_at_p, char **line_p,
            size_t *length_p, char *reason, size_t size)
{
    while (true) {
        int timeout_ms = 0;
        if (s_slice(self, give_up_at_p, &timeout_ms, reason, size) != 0)
            return -1;
        zm_line_status_t status = zm_line_reader_next(child->reader, timeout_ms, line_p, length_p);
        if (status == ZM_LINE_OK && zm_line_reader_terminated(child->reader))
            return 0;
        switch (status) {
        case ZM_LINE_OK:            //  a last line with no "\n": no reply
        case ZM_LINE_EOF:
            snprintf(reason, size, "the command closed its stdout or exited");
            return -1;
        case ZM_LINE_NONE:
            break;                  //  not yet, or a signal: look at the stop flag again
        case ZM_LINE_TOOLONG:
            snprintf(reason, size, "the command wrote a line over %u bytes", S_LINE_MAX);
            return -1;
        case ZM_LINE_ERROR:
            snprintf(reason, size, "cannot read from the command: %s", strerror(errno));
            return -1;
        }
    }
}

//  Runs one request through the child, starting it first if none runs. json ends with "\n".
//  Returns 0 with *reply_p set, or -1 with a reason (the caller kills the child).
static int
s_exchange(zw_exec_t *self, s_child_t *child, const char *json, size_t json_size,
           zmesh_msg_t **reply_p, char *reason, size_t size)
{
    s_child_check(child);
    if (child->pid == 0 && s_child_start(self, child, reason, size) != 0)
        return -1;
    int64_t give_up_at = 0;
    char *line = NULL;
    size_t length = 0;
    if (s_write_all(self, child, json, json_size, &give_up_at, reason, size) != 0
        || s_read_line(self, child, &give_up_at, &line, &length, reason, size) != 0)
        return -1;
    char *data = NULL;
    size_t data_size = 0;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_json_to_msgpack(line, length, &data, &data_size, error, sizeof error) != ZMESH_OK) {
        char sample[65];
        zm_log_warning("zmesh-worker: child wrote no JSON pid=%d bytes=%zu sample=%s",
                       (int) child->pid, length, zm_log_hex(sample, line, length));
        snprintf(reason, size, "the command wrote a line that is not JSON: %s", error);
        return -1;
    }
    *reply_p = zmesh_msg_new(data, data_size);
    free(data);
    zm_log_debug("zmesh-worker: child answered pid=%d bytes=%zu", (int) child->pid, length);
    return 0;
}

//  Takes an idle child (one already running if any), or a new empty one, for one request.
static s_child_t *
s_acquire(zw_exec_t *self)
{
    pthread_mutex_lock(&self->lock);
    s_child_t *chosen = NULL;
    for (size_t index = 0; index < self->count; index++) {
        s_child_t *child = self->children[index];
        if (!child->busy && (!chosen || (chosen->pid == 0 && child->pid > 0)))
            chosen = child;
    }
    if (!chosen) {
        //  Pointers to children stay valid when the array grows: it holds pointers.
        s_child_t **children = realloc(self->children, (self->count + 1) * sizeof *children);
        if (!children)
            abort();                //  out of memory aborts, as zm_alloc does
        self->children = children;
        chosen = zm_alloc(sizeof *chosen);
        chosen->to_child = -1;
        chosen->from_child = -1;
        self->children[self->count++] = chosen;
    }
    chosen->busy = true;
    pthread_mutex_unlock(&self->lock);
    return chosen;
}

static void
s_release(zw_exec_t *self, s_child_t *child)
{
    pthread_mutex_lock(&self->lock);
    child->busy = false;
    pthread_mutex_unlock(&self->lock);
}

//  Fails the request: the reply is a MessagePack str with the reason, which the client sees.
static int
s_fail(zmesh_msg_t **reply_p, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int
s_fail(zmesh_msg_t **reply_p, const char *format, ...)
{
    char reason[S_REASON_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    zm_log_warning("zmesh-worker: request failed reason=\"%s\"", reason);
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_str(pack, reason);
    *reply_p = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return ZMESH_EHANDLER;
}

int
zw_exec_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    assert(request);
    assert(reply_p);
    assert(arg);
    zw_exec_t *self = arg;
    char *json = NULL;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_msgpack_to_json(zmesh_msg_data(request), zmesh_msg_size(request), &json, error,
                           sizeof error) != ZMESH_OK)
        return s_fail(reply_p, "the request has no JSON form: %s", error);
    size_t json_size = strlen(json);
    char *line = realloc(json, json_size + 2);     //  room for "\n" and NUL
    if (!line)
        abort();                    //  out of memory aborts, as zm_alloc does
    line[json_size++] = '\n';
    line[json_size] = '\0';
    s_child_t *child = s_acquire(self);
    char reason[S_REASON_MAX] = "";
    int rc = s_exchange(self, child, line, json_size, reply_p, reason, sizeof reason);
    if (rc != 0)
        s_child_kill(child, reason);    //  its stream is out of step: start over next time
    s_release(self, child);
    free(line);
    return rc == 0 ? ZMESH_OK : s_fail(reply_p, "%s", reason);
}

//  Waits up to S_EXIT_GRACE_MS for the children sent SIGTERM to exit, then kills the rest.
static void
s_reap_all(zw_exec_t *self)
{
    int64_t deadline = zclock_mono() + S_EXIT_GRACE_MS;
    size_t running = self->count;
    while (running > 0) {
        running = 0;
        for (size_t index = 0; index < self->count; index++) {
            s_child_t *child = self->children[index];
            int status = 0;
            if (child->pid > 0 && waitpid(child->pid, &status, WNOHANG) == child->pid) {
                char outcome[32];
                s_describe_status(status, outcome, sizeof outcome);
                zm_log_info("zmesh-worker: child stopped pid=%d %s", (int) child->pid, outcome);
                s_child_reset(child);
            }
            running += child->pid > 0;
        }
        if (running > 0 && zclock_mono() >= deadline)
            break;
        if (running > 0)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000}, NULL);
    }
    for (size_t index = 0; index < self->count; index++)
        s_child_kill(self->children[index], "did not stop on SIGTERM");
}

void
zw_exec_destroy(zw_exec_t **self_p)
{
    assert(self_p);
    zw_exec_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++) {
        s_child_t *child = self->children[index];
        if (child->to_child >= 0)
            close(child->to_child);     //  a filter ends at EOF on its own
        child->to_child = -1;
        if (child->pid > 0)
            kill(-child->pid, SIGTERM);
    }
    s_reap_all(self);
    for (size_t index = 0; index < self->count; index++)
        free(self->children[index]);    //  reaped above: pipes and reader already gone
    free(self->children);
    pthread_mutex_destroy(&self->lock);
    free(self->command);
    free(self);
    *self_p = NULL;
}
