//  security - the broker's CURVE set-up: key pair, keyring, zauth, probe.
#include "security.h"

#include "zm_alloc.h"
#include "zm_log.h"

#define S_PROBE_MS 5000         //  how long the probe waits for the refusal

struct zm_security {
    char *keys_dir;             //  owned
    zcert_t *cert;              //  owned: the broker's key pair
    zm_keyring_t *keyring;      //  owned
    zactor_t *auth;             //  owned: zauth
};

//  Connects to a CURVE server of our own with a key nobody listed, and
//  waits for the handshake to fail on authentication. Any other outcome
//  (the handshake succeeds, a message gets through, nothing happens) means
//  the ZAP handler is not doing its job, and the broker must not serve.
static bool
s_probe(zm_security_t *self)
{
    zsock_t *server = zsock_new(ZMQ_ROUTER);
    zsock_t *client = zsock_new(ZMQ_DEALER);
    zsock_t *events = zsock_new(ZMQ_PAIR);
    zcert_t *stranger = zcert_new();
    assert(server && client && events && stranger);
    bool refused = false;
    const char *outcome = "no handshake outcome in time";
    char monitor[64];
    snprintf(monitor, sizeof monitor, "inproc://zmesh-probe-%p", (void *) self);
    zm_security_apply(self, server);
    zsock_set_linger(client, 0);
    zm_curve_apply_client(stranger, zcert_public_txt(self->cert), client);
    int port = zsock_bind(server, "tcp://127.0.0.1:*");
    if (port < 0
        || zmq_socket_monitor(zsock_resolve(server), monitor,
                              ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                  | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                  | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
               != 0
        || zsock_connect(events, "%s", monitor) != 0
        || zsock_connect(client, "tcp://127.0.0.1:%d", port) != 0)
        outcome = "cannot set up the probe sockets";
    else {
        zstr_send(client, "probe");
        zsock_set_rcvtimeo(events, 200);
        int64_t deadline = zclock_mono() + S_PROBE_MS;
        while (zclock_mono() < deadline) {
            zmsg_t *event = zmsg_recv(events);
            if (zsock_events(server) & ZMQ_POLLIN) {
                outcome = "a message from an unknown key got through";
                zmsg_destroy(&event);
                break;
            }
            if (!event)
                continue;
            zframe_t *head = zmsg_first(event);
            uint16_t type = 0;
            if (head && zframe_size(head) >= 2)
                memcpy(&type, zframe_data(head), 2);
            zmsg_destroy(&event);
            if (type == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                refused = true;
                break;
            }
            if (type == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                outcome = "an unknown key completed the handshake";
                break;
            }
        }
    }
    zmq_socket_monitor(zsock_resolve(server), NULL, 0);
    zcert_destroy(&stranger);
    zsock_destroy(&client);
    zsock_destroy(&events);
    zsock_destroy(&server);
    if (refused)
        zm_log_info("broker: security probe passed: an unknown key was refused");
    else
        zm_log_error("broker: security probe failed: %s; refusing to serve", outcome);
    return refused;
}

zm_security_t *
zm_security_start(const char *secret_file, const char *keys_dir)
{
    assert(secret_file && keys_dir);
    char error[512];
    zcert_t *cert = zm_curve_load_secret(secret_file, error, sizeof error);
    if (!cert) {
        zm_log_error("broker: %s", error);
        return NULL;
    }
    struct stat info;
    if (stat(keys_dir, &info) != 0 || !S_ISDIR(info.st_mode)) {
        zm_log_error("broker: the keys directory %s is not a directory", keys_dir);
        zcert_destroy(&cert);
        return NULL;
    }
    zm_security_t *self = zm_alloc(sizeof *self);
    self->cert = cert;
    self->keys_dir = zm_strdup(keys_dir);
    self->keyring = zm_keyring_new(keys_dir);
    self->auth = zactor_new(zauth, NULL);
    assert(self->auth);
    zstr_sendx(self->auth, "CURVE", keys_dir, NULL);
    zsock_wait(self->auth);
    if (!s_probe(self))
        zm_security_destroy(&self);
    else
        zm_log_info("broker: curve on public_key=%s keys=%zu dir=%s", zcert_public_txt(cert),
                    zm_keyring_size(self->keyring), keys_dir);
    return self;
}

void
zm_security_destroy(zm_security_t **self_p)
{
    assert(self_p);
    zm_security_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy(&self->auth);
    zm_keyring_destroy(&self->keyring);
    zcert_destroy(&self->cert);
    free(self->keys_dir);
    free(self);
    *self_p = NULL;
}

void
zm_security_apply(zm_security_t *self, zsock_t *sock)
{
    assert(self && sock);
    zsock_set_zap_domain(sock, "zmesh");
    zm_curve_apply_server(self->cert, sock);
}

void
zm_security_reload(zm_security_t *self)
{
    assert(self);
    zstr_sendx(self->auth, "CURVE", self->keys_dir, NULL);
    zsock_wait(self->auth);
}

zm_keyring_t *
zm_security_keyring(zm_security_t *self)
{
    assert(self);
    return self->keyring;
}

const char *
zm_security_public_key(zm_security_t *self)
{
    assert(self);
    return zcert_public_txt(self->cert);
}
