//  zm_dealer - the DEALER connection pieces that the peers of libzmesh share.
#include "zm_dealer.h"

#include "zm_log.h"
#include "zm_secure.h"
#include "zmesh.h"

zm_endpoints_t *
zm_dealer_check(const char *endpoint, const char *pipeline, const zmesh_curve_t *curve,
                int *err_p)
{
    zm_endpoints_t *endpoints = zm_endpoints_new(endpoint);
    bool valid = endpoints && pipeline && zm_proto_valid_name(pipeline, strlen(pipeline))
                 && strncmp(pipeline, "zmesh.", 6) != 0;
    for (size_t i = 0; valid && i < zm_endpoints_size(endpoints); i++) {
        zsock_t *probe = zm_dealer_open(zm_endpoints_next(endpoints), false, 0,
                                       ZM_DEALER_RECONNECT_MAX, curve);
        valid = probe != NULL;                  //  libzmq judges each endpoint once
        zsock_destroy(&probe);
    }
    if (err_p)
        *err_p = valid ? ZMESH_OK : ZMESH_EINVAL;
    if (!valid)
        zm_endpoints_destroy(&endpoints);
    return endpoints;                           //  back at its first entry: the walk went round
}

zsock_t *
zm_dealer_open(const char *endpoint, bool immediate, int linger_ms, int reconnect_max_ms,
               const zmesh_curve_t *curve)
{
    assert(endpoint);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    assert(sock);
    zsock_set_sndtimeo(sock, 0);
    zsock_set_linger(sock, linger_ms);
    zsock_set_reconnect_ivl_max(sock, reconnect_max_ms);
    zsock_set_immediate(sock, immediate ? 1 : 0);
    zm_secure_apply(curve, sock);               //  before connecting: the handshake uses it
    if (zsock_connect(sock, "%s", endpoint) != 0)
        zsock_destroy(&sock);
    return sock;
}

void
zm_dealer_abandon(zsock_t **sock_p)
{
    assert(sock_p);
    if (*sock_p)
        zsock_set_linger(*sock_p, 0);
    zsock_destroy(sock_p);
}

int
zm_dealer_send_msg(zsock_t *sock, zmsg_t **msg_p, zframe_t *last)
{
    assert(sock);
    assert(msg_p && *msg_p);
    //  The first frame decides: once libzmq took it, it takes the rest of
    //  the message too (the high-water mark counts whole messages).
    int rc = ZMESH_OK;
    size_t frames = zmsg_size(*msg_p);
    zframe_t *frame = zmsg_first(*msg_p);
    for (size_t i = 0; frame && rc == ZMESH_OK; i++) {
        bool more = i + 1 < frames || last;
        if (zframe_send(&frame, sock, ZFRAME_REUSE | ZFRAME_DONTWAIT | (more ? ZFRAME_MORE : 0))
            != 0)
            rc = i == 0 && errno == EAGAIN ? ZMESH_EAGAIN : ZMESH_ESYS;
        frame = zmsg_next(*msg_p);
    }
    if (rc == ZMESH_OK && last && zframe_send(&last, sock, ZFRAME_REUSE | ZFRAME_DONTWAIT) != 0)
        rc = ZMESH_ESYS;
    if (rc != ZMESH_EAGAIN)
        zmsg_destroy(msg_p);
    return rc;
}

int
zm_dealer_send(zsock_t *sock, zm_proto_t *command, zframe_t *body)
{
    assert(sock);
    assert(command);
    zmsg_t *msg = zm_proto_encode(command);
    if (body) {
        zframe_t *placeholder = zmsg_last(msg);
        zmsg_remove(msg, placeholder);
        zframe_destroy(&placeholder);
    }
    int rc = zm_dealer_send_msg(sock, &msg, body);
    zmsg_destroy(&msg);
    return rc;
}

bool
zm_dealer_recv(zsock_t *sock, zm_proto_t *command, const char *role)
{
    assert(sock);
    assert(command);
    zm_proto_reset(command);
    if (!(zsock_events(sock) & ZMQ_POLLIN))
        return false;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return false;
    zm_proto_limits_t limits = {.max_body = ZM_DEALER_BODY_MAX, .check_body = false};
    zm_proto_error_t error;
    bool decoded = zm_proto_decode(command, msg, &limits, &error);
    if (!decoded) {
        zmsg_first(msg);
        zframe_t *header = zmsg_next(msg);
        char hex[80];
        zm_log_warning("%s: bad message from broker reason=\"%s\" header=%s", role, error.reason,
                       header ? zm_log_hex(hex, zframe_data(header), zframe_size(header)) : "-");
        zm_proto_reset(command);
    }
    zmsg_destroy(&msg);
    return decoded;
}
