//  zm_link - a peer's connection to the broker: socket, broker list,
//  heartbeat timing and reconnect backoff, for the worker, consumer and
//  replica engines.
#include "zm_link.h"

#include "zm_dealer.h"
#include "zm_log.h"
#include "zm_secure.h"

#include <inttypes.h>
#include <stdlib.h>

void
zm_link_init(zm_link_t *self, const char *name, zm_endpoints_t *endpoints,
             const zmesh_curve_t *curve, int heartbeat_ms, int liveness)
{
    assert(self);
    assert(name);
    assert(endpoints);
    *self = (zm_link_t){
        .name = name,
        .endpoints = endpoints,
        .curve = curve,
        .heartbeat_ms = heartbeat_ms,
        .liveness = liveness,
        .reconnect_max_ms = ZM_LINK_BACKOFF_MAX,
        .backoff = ZM_LINK_BACKOFF_MIN,
    };
}

int
zm_link_connect(zm_link_t *self)
{
    assert(self);
    zm_dealer_abandon(&self->sock);
    const char *endpoint = self->session == 0 ? zm_endpoints_current(self->endpoints)
                                              : zm_endpoints_next(self->endpoints);
    self->session++;
    self->last_heard = zclock_mono();
    self->sock = zm_dealer_open(endpoint, false, ZM_LINK_LINGER_MS, self->reconnect_max_ms,
                                self->curve);
    return self->sock ? ZMESH_OK : ZMESH_EINVAL;
}

const char *
zm_link_endpoint(const zm_link_t *self)
{
    assert(self);
    return zm_endpoints_current(self->endpoints);
}

void
zm_link_drop(zm_link_t *self)
{
    assert(self);
    zm_dealer_abandon(&self->sock);
}

int
zm_link_send(zm_link_t *self, zm_proto_t *command)
{
    assert(self);
    assert(command);
    int rc = zm_dealer_send(self->sock, command, NULL);
    if (rc != ZMESH_OK)
        zm_log_debug("%s: send failed cmd=%s", self->name, zm_proto_cmd_name(command->cmd));
    self->last_sent = zclock_mono();
    return rc;
}

void
zm_link_drain(zm_link_t *self, int max, zm_link_command_fn *handler, void *engine)
{
    assert(self);
    assert(handler);
    zm_proto_t command;
    zm_proto_init(&command);
    bool more = true;
    for (int i = 0; more && i < max && self->sock && (zsock_events(self->sock) & ZMQ_POLLIN);
         i++) {
        self->last_heard = zclock_mono();   //  even a malformed message: the broker is there
        if (zm_dealer_recv(self->sock, &command, self->name))
            more = handler(engine, &command);
    }
    zm_proto_reset(&command);
}

void
zm_link_registered(zm_link_t *self)
{
    assert(self);
    self->backoff = ZM_LINK_BACKOFF_MIN;
}

bool
zm_link_final(uint32_t status)
{
    return status == ZM_STATUS_DENIED || status == ZM_STATUS_TOO_BIG
           || status == ZM_STATUS_BAD_VERSION;
}

int
zm_link_disconnected(zm_link_t *self, const zm_proto_t *command, bool final)
{
    assert(self);
    assert(command);
    zm_dealer_abandon(&self->sock);
    if (final) {
        zm_log_error("%s: broker refused us status=%u reason=\"%s\"", self->name,
                     command->status, command->reason);
        return command->status == ZM_STATUS_DENIED ? ZMESH_EDENIED : ZMESH_EPROTO;
    }
    //  Usually "not registered" after a broker restart.
    zm_log_notice("%s: broker disconnected us status=%u reason=\"%s\" retry_ms=%d", self->name,
                  command->status, command->reason, self->backoff);
    self->reconnect_at = zclock_mono() + self->backoff + (int) (random() % 100);
    self->backoff = self->backoff * 2 > ZM_LINK_BACKOFF_MAX ? ZM_LINK_BACKOFF_MAX
                                                            : self->backoff * 2;
    return ZMESH_OK;
}

bool
zm_link_silent(const zm_link_t *self, int64_t now)
{
    assert(self);
    return now - self->last_heard >= (int64_t) self->heartbeat_ms * self->liveness;
}

bool
zm_link_tick(zm_link_t *self, int64_t now)
{
    assert(self);
    if (!self->sock)
        return now >= self->reconnect_at;
    if (zm_link_silent(self, now)) {
        const char *hint = zm_secure_hint(self->curve);
        zm_log_notice("%s: broker silent ms=%" PRId64 ", reconnecting%s%s", self->name,
                      now - self->last_heard, hint[0] ? "; " : "", hint);
        return true;
    }
    if (now - self->last_sent >= self->heartbeat_ms) {
        zm_proto_t heartbeat;
        zm_proto_init(&heartbeat);
        heartbeat.cmd = ZM_CMD_HEARTBEAT;
        zm_link_send(self, &heartbeat);
    }
    return false;
}

long
zm_link_wait_ms(const zm_link_t *self, int64_t now)
{
    assert(self);
    int64_t next = self->reconnect_at;
    if (self->sock) {
        int64_t due = self->last_sent + self->heartbeat_ms;
        int64_t dead = self->last_heard + (int64_t) self->heartbeat_ms * self->liveness;
        next = dead < due ? dead : due;
    }
    return next > now ? (long) (next - now) : 0;
}
