//  partition - network partitions for the integration tests (see
//  partition.h). The namespaces and the veth pair are made with ip(8), run
//  to completion by zm_fault_run; names carry the test's pid, so parallel
//  runs never meet, and namespaces left by a run that was killed are
//  removed by the next one. The proxy is one thread with poll(): it only
//  moves bytes, and in a cut it neither reads nor accepts, so nothing is
//  lost or closed, as on a link that is down.
#define _GNU_SOURCE
#include "partition.h"

#include "fault.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_NETNS_DIR "/run/netns"
#define S_PREFIX "zmf-"               //  namespaces: zmf-PID-b, zmf-PID-w
#define S_BROKER_ADDRESS "10.200.0.1"
#define S_WORKER_ADDRESS "10.200.0.2"
#define S_IP_MS 10000                 //  one ip(8) command
#define S_PAIRS 32                    //  proxied connections at once
#define S_CHUNK 65536

//  The proxy: worker connections in, broker connections out, in pairs.
typedef struct {
    int listener;                     //  owned, 127.0.0.1:port
    int port;
    int target_port;                  //  the broker's
    int wake[2];                      //  owned self-pipe: a cut, a heal or a stop
    atomic_bool blackhole;
    atomic_bool stop;
    atomic_int generation;            //  bumped by each cut or heal
    atomic_int applied;               //  the generation the thread works with
    pthread_t thread;
    int pairs[S_PAIRS][2];            //  owned: [0] the worker's side, [1] the broker's; -1 free
} s_proxy_t;

struct zm_partition {
    bool netns;                       //  namespaces, else proxy
    char ns_broker[32];
    char ns_worker[32];
    char veth_broker[16];
    char veth_worker[16];
    int home;                         //  owned: our first network namespace, -1 if unused
    char bind[64];
    s_proxy_t *proxy;                 //  owned, proxy mode
};

//  ---------------------------------------------------------------------
//  Namespaces

static bool
s_ip(char *const argv[])
{
    return zm_fault_run(argv, false, S_IP_MS) == 0;
}

static void
s_netns_delete(const char *name)
{
    char *argv[] = {"ip", "netns", "delete", (char *) name, NULL};
    zm_fault_run(argv, true, S_IP_MS);
}

//  Deletes namespaces of earlier runs whose process is gone.
static void
s_remove_stale(void)
{
    DIR *dir = opendir(S_NETNS_DIR);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        int pid = 0;
        if (sscanf(entry->d_name, S_PREFIX "%d-", &pid) == 1 && pid > 0
            && kill(pid, 0) != 0 && errno == ESRCH)
            s_netns_delete(entry->d_name);
    }
    closedir(dir);
}

//  Address, up, and loopback up for one side.
static bool
s_netns_side(const char *ns, const char *veth, const char *address)
{
    char cidr[32];
    snprintf(cidr, sizeof cidr, "%s/30", address);
    char *add[] = {"ip", "-n", (char *) ns, "addr", "add", cidr, "dev", (char *) veth, NULL};
    char *up[] = {"ip", "-n", (char *) ns, "link", "set", (char *) veth, "up", NULL};
    char *lo[] = {"ip", "-n", (char *) ns, "link", "set", "lo", "up", NULL};
    return s_ip(add) && s_ip(up) && s_ip(lo);
}

//  Makes both namespaces and the veth pair straight inside them, then moves
//  this process into the broker's. False, with nothing left, on any failure.
static bool
s_netns_setup(zm_partition_t *self)
{
    int pid = (int) getpid();
    snprintf(self->ns_broker, sizeof self->ns_broker, S_PREFIX "%d-b", pid);
    snprintf(self->ns_worker, sizeof self->ns_worker, S_PREFIX "%d-w", pid);
    snprintf(self->veth_broker, sizeof self->veth_broker, "zmfb%d", pid % 10000000);
    snprintf(self->veth_worker, sizeof self->veth_worker, "zmfw%d", pid % 10000000);
    char *add_broker[] = {"ip", "netns", "add", self->ns_broker, NULL};
    char *add_worker[] = {"ip", "netns", "add", self->ns_worker, NULL};
    char *veth[] = {"ip",   "link",  "add",  self->veth_broker, "netns", self->ns_broker,
                    "type", "veth",  "peer", "name",            self->veth_worker,
                    "netns", self->ns_worker, NULL};
    bool ok = geteuid() == 0 && s_ip(add_broker) && s_ip(add_worker) && s_ip(veth)
              && s_netns_side(self->ns_broker, self->veth_broker, S_BROKER_ADDRESS)
              && s_netns_side(self->ns_worker, self->veth_worker, S_WORKER_ADDRESS);
    char path[128];
    snprintf(path, sizeof path, S_NETNS_DIR "/%s", self->ns_broker);
    int target = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    self->home = ok ? open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
    ok = ok && target >= 0 && self->home >= 0 && setns(target, CLONE_NEWNET) == 0;
    if (target >= 0)
        close(target);
    if (!ok) {
        if (self->home >= 0)
            close(self->home);
        self->home = -1;
        s_netns_delete(self->ns_worker);    //  takes the veth pair with it
        s_netns_delete(self->ns_broker);
    }
    return ok;
}

static void
s_netns_teardown(zm_partition_t *self)
{
    //  This process goes home; the namespace it leaves lives on, unnamed,
    //  while libzmq's I/O threads (which stay in it) do: until we exit.
    if (self->home >= 0 && setns(self->home, CLONE_NEWNET) != 0)
        perror("partition: setns home");
    if (self->home >= 0)
        close(self->home);
    s_netns_delete(self->ns_worker);
    s_netns_delete(self->ns_broker);
}

static bool
s_netns_link(zm_partition_t *self, const char *state)
{
    char *argv[] = {"ip", "-n", self->ns_worker, "link", "set", self->veth_worker, (char *) state,
                    NULL};
    return s_ip(argv);
}

//  ---------------------------------------------------------------------
//  Proxy

static void
s_pair_close(s_proxy_t *self, int index)
{
    close(self->pairs[index][0]);
    close(self->pairs[index][1]);
    self->pairs[index][0] = self->pairs[index][1] = -1;
}

//  A new worker connection: pairs it with a new connection to the broker.
static void
s_on_accept(s_proxy_t *self)
{
    int from = accept4(self->listener, NULL, NULL, SOCK_CLOEXEC);
    if (from < 0)
        return;
    struct sockaddr_in broker = {.sin_family = AF_INET, .sin_port = htons(self->target_port)};
    inet_pton(AF_INET, "127.0.0.1", &broker.sin_addr);
    int to = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int free_index = -1;
    for (int i = 0; i < S_PAIRS && free_index < 0; i++)
        if (self->pairs[i][0] < 0)
            free_index = i;
    if (to < 0 || free_index < 0 || connect(to, (struct sockaddr *) &broker, sizeof broker) != 0) {
        close(from);
        if (to >= 0)
            close(to);
        return;
    }
    self->pairs[free_index][0] = from;
    self->pairs[free_index][1] = to;
}

//  Moves what one side has to the other; false if either side is done.
static bool
s_forward(int from, int to)
{
    char buffer[S_CHUNK];
    ssize_t got = read(from, buffer, sizeof buffer);
    if (got <= 0)
        return false;
    for (ssize_t sent = 0; sent < got;) {
        ssize_t rc = send(to, buffer + sent, (size_t) (got - sent), MSG_NOSIGNAL);
        if (rc < 0 && errno != EINTR)
            return false;
        sent += rc > 0 ? rc : 0;
    }
    return true;
}

static void *
s_proxy_main(void *arg)
{
    s_proxy_t *self = arg;
    while (!atomic_load(&self->stop)) {
        atomic_store(&self->applied, atomic_load(&self->generation));
        bool open = !atomic_load(&self->blackhole);
        struct pollfd items[2 + 2 * S_PAIRS];
        int owners[2 + 2 * S_PAIRS];      //  pair index of each item, -1 for the others
        nfds_t count = 0;
        items[count] = (struct pollfd){.fd = self->wake[0], .events = POLLIN};
        owners[count++] = -1;
        items[count] = (struct pollfd){.fd = open ? self->listener : -1, .events = POLLIN};
        owners[count++] = -1;
        for (int i = 0; i < S_PAIRS; i++)
            for (int side = 0; side < 2 && self->pairs[i][0] >= 0; side++) {
                items[count] = (struct pollfd){.fd = open ? self->pairs[i][side] : -1,
                                               .events = POLLIN};
                owners[count++] = i;
            }
        if (poll(items, count, -1) < 0 && errno != EINTR)
            break;
        char drain[64];
        if (items[0].revents & POLLIN)
            while (read(self->wake[0], drain, sizeof drain) > 0)
                ;
        if (items[1].revents & POLLIN)
            s_on_accept(self);
        for (nfds_t i = 2; i < count; i++) {
            int pair = owners[i];
            if (!items[i].revents || self->pairs[pair][0] < 0)
                continue;
            int from = items[i].fd, to = from == self->pairs[pair][0] ? self->pairs[pair][1]
                                                                      : self->pairs[pair][0];
            if (!s_forward(from, to))
                s_pair_close(self, pair);
        }
    }
    return NULL;
}

//  Listens on 127.0.0.1 and starts the thread; NULL if it cannot.
static s_proxy_t *
s_proxy_new(int target_port)
{
    s_proxy_t *self = calloc(1, sizeof *self);
    assert(self);
    memset(self->pairs, -1, sizeof self->pairs);
    self->target_port = target_port;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    socklen_t size = sizeof address;
    self->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = self->listener >= 0
              && bind(self->listener, (struct sockaddr *) &address, sizeof address) == 0
              && listen(self->listener, 64) == 0
              && getsockname(self->listener, (struct sockaddr *) &address, &size) == 0
              && pipe2(self->wake, O_CLOEXEC | O_NONBLOCK) == 0
              && pthread_create(&self->thread, NULL, s_proxy_main, self) == 0;
    if (!ok) {
        if (self->listener >= 0)
            close(self->listener);
        free(self);
        return NULL;
    }
    self->port = ntohs(address.sin_port);
    return self;
}

static void
s_proxy_destroy(s_proxy_t **self_p)
{
    s_proxy_t *self = *self_p;
    if (!self)
        return;
    atomic_store(&self->stop, true);
    ssize_t rc = write(self->wake[1], "x", 1);
    (void) rc;
    pthread_join(self->thread, NULL);
    for (int i = 0; i < S_PAIRS; i++)
        if (self->pairs[i][0] >= 0)
            s_pair_close(self, i);
    close(self->listener);
    close(self->wake[0]);
    close(self->wake[1]);
    free(self);
    *self_p = NULL;
}

static bool
s_proxy_applied(void *arg)
{
    s_proxy_t *self = arg;
    return atomic_load(&self->applied) == atomic_load(&self->generation);
}

//  Sets the blackhole and returns once the thread works with it: no byte
//  moves after a cut returns.
static bool
s_proxy_set(s_proxy_t *self, bool blackhole)
{
    atomic_store(&self->blackhole, blackhole);
    atomic_fetch_add(&self->generation, 1);
    ssize_t rc = write(self->wake[1], "x", 1);
    (void) rc;
    return zm_harness_wait_until(s_proxy_applied, self, 5000);
}

//  ---------------------------------------------------------------------
//  The partition

zm_partition_t *
zm_partition_new(void)
{
    zm_partition_t *self = calloc(1, sizeof *self);
    assert(self);
    self->home = -1;
    const char *forced = getenv("ZMESH_IT_PARTITION");
    if (!forced || strcmp(forced, "proxy") != 0) {
        s_remove_stale();
        self->netns = s_netns_setup(self);
    }
    snprintf(self->bind, sizeof self->bind, "tcp://%s:*",
             self->netns ? S_BROKER_ADDRESS : "127.0.0.1");
    return self;
}

void
zm_partition_destroy(zm_partition_t **self_p)
{
    assert(self_p);
    zm_partition_t *self = *self_p;
    if (!self)
        return;
    s_proxy_destroy(&self->proxy);
    if (self->netns)
        s_netns_teardown(self);
    free(self);
    *self_p = NULL;
}

const char *
zm_partition_mode(const zm_partition_t *self)
{
    assert(self);
    return self->netns ? "netns" : "proxy";
}

const char *
zm_partition_bind(const zm_partition_t *self)
{
    assert(self);
    return self->bind;
}

bool
zm_partition_route(zm_partition_t *self, const char *broker, char *worker, size_t size)
{
    assert(self && broker && worker);
    if (self->netns) {
        snprintf(worker, size, "%s", broker);
        return true;
    }
    const char *colon = strrchr(broker, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (port <= 0 || self->proxy || !(self->proxy = s_proxy_new(port)))
        return false;
    snprintf(worker, size, "tcp://127.0.0.1:%d", self->proxy->port);
    return true;
}

zm_proc_t *
zm_partition_worker(zm_partition_t *self, zm_harness_t *harness, const char *endpoint,
                    const char *service, const char *mode, const char *const extra[])
{
    assert(self && harness && endpoint && service && mode);
    if (!self->netns)
        return zm_harness_worker(harness, endpoint, service, mode, extra);
    char ip[256];
    if (!zm_fault_which("ip", ip, sizeof ip))
        return NULL;
    char *argv[40] = {ip, "netns", "exec", self->ns_worker, (char *) zm_fault_worker_bin(),
                      "--broker", (char *) endpoint, "--service", (char *) service, "--mode",
                      (char *) mode};
    size_t count = 11;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert(count + 1 < sizeof argv / sizeof argv[0]);
        argv[count++] = (char *) extra[i];
    }
    argv[count] = NULL;
    char name[64];
    snprintf(name, sizeof name, "worker-%s", mode);
    return zm_harness_spawn(harness, name, argv, false);
}

bool
zm_partition_cut(zm_partition_t *self)
{
    assert(self);
    return self->netns ? s_netns_link(self, "down") : self->proxy && s_proxy_set(self->proxy, true);
}

bool
zm_partition_heal(zm_partition_t *self)
{
    assert(self);
    return self->netns ? s_netns_link(self, "up") : self->proxy && s_proxy_set(self->proxy, false);
}
