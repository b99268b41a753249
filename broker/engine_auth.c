//  engine_auth - who may do what (ZMP.md section 18). With a keyring, each
//  message comes with its sender's public key, the ZAP User-Id: the only
//  identity the broker trusts (a peer picks its own routing id and may send
//  any other metadata). A session is bound to the key it registered with;
//  every command that starts something (CALL, READY, JOIN, PUSH, CONSUME) is
//  checked against the sender key's rights and denied with 403.
#include "engine_internal.h"

#include "zm_alloc.h"
#include "zm_log.h"

static void
s_free_id(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

static zm_right_t
s_right_of(zm_cmd_t cmd, bool *checked_p)
{
    *checked_p = true;
    switch (cmd) {
    case ZM_CMD_CALL:
        return ZM_RIGHT_CALL;
    case ZM_CMD_READY:
    case ZM_CMD_JOIN:
        return ZM_RIGHT_SERVE;
    case ZM_CMD_PUSH:
        return ZM_RIGHT_PUSH;
    case ZM_CMD_CONSUME:
        return ZM_RIGHT_PULL;
    default:
        *checked_p = false;         //  answered as errors or ignored by the engine
        return ZM_RIGHT_COUNT;
    }
}

//  The sentence a denied peer reads, and the log shows.
static void
s_denial(char *reason, size_t size, const zm_key_t *key, zm_right_t right, const char *name)
{
    //  Long names are cut: the reason must fit a DISCONNECT.
    if (strncmp(name, "zmesh.", 6) == 0)
        snprintf(reason, size, "denied: key '%.64s' may not %s the reserved %.120s (admin only)",
                 key->name, zm_right_name(right), name);
    else
        snprintf(reason, size, "denied: key '%.64s' may not %s '%.120s'", key->name,
                 zm_right_name(right), name);
}

//  Ends the session routing id holds if it belongs to another key: the
//  peer that registered it is gone and another took its routing id.
static void
s_unbind_foreign(zm_engine_t *self, const char *id, const char *key, int64_t now)
{
    zm_worker_t *worker = zhashx_lookup(self->workers, id);
    if (worker && (!worker->key || !streq(worker->key, key))) {
        zm_log_warning("broker: routing id reused by another key id=%s service=%s", id,
                       worker->service->name);
        self->counters.sessions_replaced++;
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        zm_engine_retire_worker(self, worker, "routing id reused by another key", now);
    }
    zm_consumer_t *consumer = zhashx_lookup(self->consumers, id);
    if (consumer && (!consumer->key || !streq(consumer->key, key))) {
        zm_log_warning("broker: routing id reused by another key id=%s pipeline=%s", id,
                       consumer->pipeline->name);
        self->counters.sessions_replaced++;
        zm_engine_pipe_retire(self, consumer, "routing id reused by another key", now);
    }
}

bool
zm_engine_auth_sender(zm_engine_t *self, const char *id, const char *user_id, int64_t now)
{
    self->sender = zm_keyring_lookup(self->keyring, user_id);
    if (!self->sender) {
        //  Let in by zauth but not (or no longer) in the keyring: its file
        //  was removed since the handshake. Its connection is closed.
        self->counters.denied_unknown_key++;
        if (!self->kick)
            zm_log_notice("broker: message from a key not in the keyring id=%s key=%s", id,
                          user_id ? user_id : "(none)");
        self->kick = true;
        return false;
    }
    self->sender->messages++;
    s_unbind_foreign(self, id, self->sender->key, now);
    return true;
}

bool
zm_engine_auth_admit(zm_engine_t *self, zframe_t *routing, const char *id,
                     zm_proto_t *command, int64_t now)
{
    (void) id;
    (void) now;
    bool checked;
    zm_right_t right = s_right_of(command->cmd, &checked);
    zm_key_t *key = self->sender;
    assert(key);
    if (!checked || zm_rights_allow(&key->rights, right, command->service))
        return true;
    char reason[ZM_REASON_MAX + 1];
    s_denial(reason, sizeof reason, key, right, command->service);
    zm_log_notice("broker: %s id=%s key=%s", reason, id, key->key);
    self->counters.denied++;
    key->denied++;
    switch (command->cmd) {
    case ZM_CMD_CALL:
        zm_engine_reply_error(self, routing, command->id, ZM_STATUS_DENIED, reason);
        break;
    case ZM_CMD_PUSH:
        zm_engine_pipe_on_bad_push(self, routing, id, command, ZM_STATUS_DENIED, reason, now);
        break;
    default:                                    //  READY, JOIN, CONSUME
        zm_engine_disconnect(self, routing, ZM_STATUS_DENIED, reason);
        break;
    }
    return false;
}

bool
zm_engine_auth_push(zm_engine_t *self, const char *user_id, const char *pipeline)
{
    zm_key_t *key = zm_keyring_lookup(self->keyring, user_id);
    if (!key) {
        self->counters.denied_unknown_key++;
        zm_log_notice("broker: push dropped: key not in the keyring key=%s",
                      user_id ? user_id : "(none)");
        return false;
    }
    key->messages++;
    if (zm_rights_allow(&key->rights, ZM_RIGHT_PUSH, pipeline))
        return true;
    char reason[ZM_REASON_MAX + 1];
    s_denial(reason, sizeof reason, key, ZM_RIGHT_PUSH, pipeline);
    zm_log_notice("broker: push dropped: %s key=%s", reason, key->key);
    self->counters.denied++;
    key->denied++;
    return false;
}

//  The right a session uses, and the name it uses it on.
static bool
s_still_allowed(zm_engine_t *self, const char *key_text, zm_right_t right, const char *name)
{
    zm_key_t *key = zm_keyring_lookup(self->keyring, key_text);
    return key && zm_rights_allow(&key->rights, right, name);
}

void
zm_engine_recheck_keys(zm_engine_t *self, int64_t now)
{
    assert(self);
    if (!self->keyring)
        return;
    zlistx_t *workers = zlistx_new();           //  borrowed: retire after the walk
    for (zm_worker_t *worker = zhashx_first(self->workers); worker;
         worker = zhashx_next(self->workers))
        if (!worker->key
            || !s_still_allowed(self, worker->key, ZM_RIGHT_SERVE, worker->service->name))
            zlistx_add_end(workers, worker);
    //  All leave the ready lists first, so that a call one of them held is
    //  not requeued to another that is revoked in the same pass.
    //  Each is looked up again by its id before it goes: retiring a replica
    //  may end the sessions of its replica set's others (engine_repl.c).
    zlistx_t *ids = zlistx_new();
    zlistx_set_destructor(ids, s_free_id);
    for (zm_worker_t *worker = zlistx_first(workers); worker; worker = zlistx_next(workers)) {
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        zm_service_requeue_worker(worker->service, worker, false);
        zlistx_add_end(ids, zm_strdup(worker->id));
    }
    zlistx_destroy(&workers);
    for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids)) {
        zm_worker_t *worker = zhashx_lookup(self->workers, id);
        if (!worker)
            continue;
        zm_log_notice("broker: worker session revoked id=%s service=%s", worker->id,
                      worker->service->name);
        zm_engine_disconnect(self, worker->routing, ZM_STATUS_DENIED,
                             "denied: the key was removed or may no longer serve this service");
        self->counters.sessions_revoked++;
        zm_engine_retire_worker(self, worker, "key revoked", now);
    }
    zlistx_destroy(&ids);
    zlistx_t *consumers = zlistx_new();
    for (zm_consumer_t *consumer = zhashx_first(self->consumers); consumer;
         consumer = zhashx_next(self->consumers))
        if (!consumer->key
            || !s_still_allowed(self, consumer->key, ZM_RIGHT_PULL, consumer->pipeline->name))
            zlistx_add_end(consumers, consumer);
    for (zm_consumer_t *consumer = zlistx_first(consumers); consumer;
         consumer = zlistx_next(consumers)) {
        zm_log_notice("broker: consumer session revoked id=%s pipeline=%s", consumer->id,
                      consumer->pipeline->name);
        zm_engine_disconnect(self, consumer->routing, ZM_STATUS_DENIED,
                             "denied: the key was removed or may no longer pull this pipeline");
        self->counters.sessions_revoked++;
        zm_engine_pipe_retire(self, consumer, "key revoked", now);
    }
    zlistx_destroy(&consumers);
}
