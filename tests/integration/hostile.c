//  hostile - shared pieces of the test_hostile_* tests (see hostile.h). It
//  builds on the harness and the raw wire helpers and adds nothing the
//  broker could notice: no socket options beyond linger and routing id, no
//  waiting other than poll deadlines.
#define _GNU_SOURCE
#include "hostile.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define S_WORKER_START_MS 10000       //  an echo worker's first READY

zm_proc_t *
zm_hostile_start(zm_harness_t *harness, const char *const flags[], char *endpoint, size_t size)
{
    return zm_hostile_start_on(harness, "tcp://127.0.0.1:*", flags, endpoint, size);
}

zm_proc_t *
zm_hostile_start_on(zm_harness_t *harness, const char *bind, const char *const flags[],
                    char *endpoint, size_t size)
{
    assert(harness);
    assert(bind);
    assert(endpoint && size > 0);
    zm_proc_t *broker = zm_harness_broker(harness, bind, flags, endpoint, size);
    if (!broker)
        return NULL;
    if (!zm_harness_worker(harness, endpoint, "echo", "echo", NULL)
        || !zm_harness_wait_workers(endpoint, "echo", 1, S_WORKER_START_MS)) {
        fprintf(stderr, "hostile: the echo worker did not register\n");
        return NULL;
    }
    return broker;
}

//  True if id follows rule for the id we sent.
static bool
s_id_ok(uint64_t got, uint64_t sent, zm_hostile_id_t rule)
{
    switch (rule) {
    case ZM_HOSTILE_ID_EXACT:
        return got == sent;
    case ZM_HOSTILE_ID_ZERO:
        return got == 0;
    case ZM_HOSTILE_ID_ANY:
        return got == sent || got == 0;
    }
    return false;
}

bool
zm_hostile_expect(zsock_t *sock, zmsg_t **msg_p, uint64_t status, uint64_t id,
                  zm_hostile_id_t rule)
{
    assert(sock);
    assert(msg_p && *msg_p);
    if (zmsg_send(msg_p, sock) != 0) {
        zmsg_destroy(msg_p);
        fprintf(stderr, "hostile: send failed\n");
        return false;
    }
    zm_wire_answer_t answer;
    if (!zm_wire_recv(sock, &answer, ZM_HOSTILE_TIMEOUT_MS)) {
        fprintf(stderr, "hostile: no answer (or not a ZMP/1 one) within %d ms\n",
                ZM_HOSTILE_TIMEOUT_MS);
        return false;
    }
    zframe_destroy(&answer.body);
    bool ok = strcmp(answer.command, "REPLY") == 0 && answer.frames == 3
              && answer.status == status && s_id_ok(answer.id, id, rule);
    if (!ok)
        fprintf(stderr, "hostile: wanted REPLY %llu id=%llu, got %s %llu id=%llu frames=%zu "
                "\"%s\"\n", (unsigned long long) status, (unsigned long long) id,
                answer.command, (unsigned long long) answer.status,
                (unsigned long long) answer.id, answer.frames, answer.reason);
    return ok;
}

static void
s_sock_destroy(void **sock_p)
{
    zsock_destroy((zsock_t **) sock_p);
}

static void
s_actor_destroy(void **actor_p)
{
    zactor_destroy((zactor_t **) actor_p);
}

zsock_t *
zm_hostile_watched_dealer(zm_harness_t *harness, const char *endpoint, const char *routing_id,
                          zactor_t **monitor_p)
{
    assert(harness);
    assert(endpoint);
    assert(monitor_p);
    *monitor_p = NULL;
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    //  While libzmq reconnects a kicked socket, a send waits: not for ever.
    zsock_set_sndtimeo(sock, ZM_HOSTILE_TIMEOUT_MS);
    if (routing_id)
        zsock_set_identity(sock, routing_id);
    zm_harness_adopt(harness, sock, s_sock_destroy);
    zactor_t *monitor = zactor_new(zmonitor, sock);
    if (!monitor)
        return NULL;
    zm_harness_adopt(harness, monitor, s_actor_destroy);       //  destroyed before sock
    //  Listening starts before the connection exists, so no event is missed.
    zstr_sendx(monitor, "LISTEN", "DISCONNECTED", NULL);
    zstr_sendx(monitor, "START", NULL);
    zsock_wait(monitor);
    if (zsock_connect(sock, "%s", endpoint) != 0)
        return NULL;
    *monitor_p = monitor;
    return sock;
}

bool
zm_hostile_disconnected(zactor_t *monitor, int timeout_ms)
{
    assert(monitor);
    zpoller_t *poller = zpoller_new(monitor, NULL);
    bool ready = zpoller_wait(poller, timeout_ms) == monitor;
    zpoller_destroy(&poller);
    zmsg_t *event = ready ? zmsg_recv(monitor) : NULL;
    char *name = event ? zmsg_popstr(event) : NULL;
    bool disconnected = name && strcmp(name, "DISCONNECTED") == 0;
    zstr_free(&name);
    zmsg_destroy(&event);
    return disconnected;
}

long
zm_hostile_proc_kb(pid_t pid, const char *field)
{
    assert(field);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    char line[256];
    long value = -1;
    size_t length = strlen(field);
    while (value < 0 && fgets(line, sizeof line, file))
        if (strncmp(line, field, length) == 0 && line[length] == ':')
            value = strtol(line + length + 1, NULL, 10);
    fclose(file);
    return value;
}

typedef struct {
    const char *path;
    const char *text;
} s_log_search_t;

//  Reads the whole log and looks for the text: logs here are small.
static bool
s_log_holds(void *arg)
{
    s_log_search_t *search = arg;
    return zm_harness_file_contains(search->path, search->text);
}

bool
zm_hostile_log_has(const zm_proc_t *proc, const char *text, int deadline_ms)
{
    assert(proc);
    assert(text);
    s_log_search_t search = {zm_proc_log_path(proc), text};
    return zm_harness_wait_until(s_log_holds, &search, deadline_ms);
}

bool
zm_hostile_alive(const zm_proc_t *proc)
{
    assert(proc);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    //  WNOWAIT leaves the child to the harness, which judges its exit status.
    int rc = waitid(P_PID, (id_t) zm_proc_pid(proc), &info, WEXITED | WNOHANG | WNOWAIT);
    return rc == 0 && info.si_pid == 0;
}

uint64_t
zm_hostile_random(uint64_t *state)
{
    assert(state);
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void
zm_hostile_random_bytes(uint64_t *state, void *buffer, size_t size)
{
    assert(state);
    assert(buffer || size == 0);
    uint8_t *bytes = buffer;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t value = zm_hostile_random(state);
        size_t take = size - i < 8 ? size - i : 8;
        memcpy(bytes + i, &value, take);
    }
}
