//  idle_workers.c - many idle zmesh workers in one process (idle_workers.h).
//  The wire commands come from libzmesh's own codec (zm_proto), so they are
//  exactly what zmesh_worker_t sends.
#include "idle_workers.h"

#include "zm_proto.h"

#include <czmq.h>
#include <stdlib.h>
#include <unistd.h>

#define S_HEARTBEAT_MS 1000             //  zmesh_worker_t's default interval
#define S_LIVENESS 3                    //  and liveness

//  Sends one command without a body; false if libzmq would not take it.
static bool
s_send(zsock_t *socket, zm_cmd_t cmd)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    if (cmd == ZM_CMD_READY) {
        snprintf(command.service, sizeof command.service, "idle");
        command.slots = 1;
        command.heartbeat_ms = S_HEARTBEAT_MS;
        command.liveness = S_LIVENESS;
    }
    zmsg_t *msg = zm_proto_encode(&command);
    int rc = zmsg_send(&msg, socket);
    zmsg_destroy(&msg);
    return rc == 0;
}

//  Reads and drops what the first count workers received, and sends a
//  HEARTBEAT from each whose interval has passed.
static void
s_beat(zsock_t **sockets, zmq_pollitem_t *items, int64_t *last_sent, int count)
{
    int64_t now = zclock_mono();
    for (int i = 0; i < count; i++) {
        while (items[i].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv_nowait(sockets[i]);
            if (!msg)
                break;
            zmsg_destroy(&msg);
        }
        if (now - last_sent[i] >= S_HEARTBEAT_MS && s_send(sockets[i], ZM_CMD_HEARTBEAT))
            last_sent[i] = now;
    }
}

int
idle_workers_run(const char *endpoint, int count, int ready_fd)
{
    zsys_set_max_sockets((size_t) count + 64);
    zsock_t **sockets = calloc((size_t) count, sizeof *sockets);
    zmq_pollitem_t *items = calloc((size_t) count, sizeof *items);
    int64_t *last_sent = calloc((size_t) count, sizeof *last_sent);
    for (int i = 0; i < count; i++) {
        sockets[i] = zsock_new(ZMQ_DEALER);
        if (!sockets[i]) {
            fprintf(stderr, "bench: idle worker %d: no socket (%s)\n", i, zmq_strerror(errno));
            return 1;
        }
        zsock_set_linger(sockets[i], 0);
        zsock_set_sndtimeo(sockets[i], 0);
        if (zsock_connect(sockets[i], "%s", endpoint) != 0 || !s_send(sockets[i], ZM_CMD_READY))
            return 1;
        items[i] = (zmq_pollitem_t){zsock_resolve(sockets[i]), 0, ZMQ_POLLIN, 0};
        //  Spread the heartbeats over the interval, as independent workers are.
        last_sent[i] = zclock_mono() - (int64_t) i * S_HEARTBEAT_MS / count;
        //  Connect in small batches: a burst overflows the broker's listen
        //  backlog, and a dropped SYN is retried only after a second or more.
        //  The workers connected so far go on heartbeating meanwhile, or the
        //  first ones would expire before the last one is connected.
        if (i % 50 == 49) {
            int64_t until = zclock_mono() + 50;
            for (int64_t left = 50; left > 0; left = until - zclock_mono()) {
                if (zmq_poll(items, i + 1, (long) left) < 0)
                    return 1;
                s_beat(sockets, items, last_sent, i + 1);
            }
        }
    }
    if (write(ready_fd, "x", 1) != 1)
        return 1;
    while (!zsys_interrupted) {
        if (zmq_poll(items, count, 50) < 0)
            break;
        s_beat(sockets, items, last_sent, count);
    }
    for (int i = 0; i < count; i++)
        zsock_destroy(&sockets[i]);
    free(last_sent);
    free(items);
    free(sockets);
    return 0;
}
