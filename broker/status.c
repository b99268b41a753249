//  status - the reply body of the reserved service "zmesh.status": services,
//  workers, pipelines and counters as one MessagePack map (schema in ZMP.md).
#include "engine.h"

#include "zm_msg.h"

static void
s_pack_key_uint(zmesh_pack_t *pack, const char *key, uint64_t value)
{
    zmesh_pack_str(pack, key);
    zmesh_pack_uint(pack, value);
}

static void
s_pack_services(const zm_engine_t *self, zmesh_pack_t *pack)
{
    zmesh_pack_str(pack, "services");
    zmesh_pack_array(pack, (uint32_t) zhashx_size(self->services));
    zhashx_t *services = self->services;
    for (zm_service_t *service = zhashx_first(services); service;
         service = zhashx_next(services)) {
        zmesh_pack_map(pack, 6);
        zmesh_pack_str(pack, "name");
        zmesh_pack_str(pack, service->name);
        s_pack_key_uint(pack, "workers", service->workers);
        s_pack_key_uint(pack, "slots", service->slots);
        s_pack_key_uint(pack, "inflight", service->inflight);
        s_pack_key_uint(pack, "queued", zm_service_queued(service));
        s_pack_key_uint(pack, "calls", service->calls);
    }
}

static void
s_pack_workers(const zm_engine_t *self, zmesh_pack_t *pack, int64_t now)
{
    zmesh_pack_str(pack, "workers");
    zmesh_pack_array(pack, (uint32_t) zhashx_size(self->workers));
    for (zm_worker_t *worker = zhashx_first(self->workers); worker;
         worker = zhashx_next(self->workers)) {
        zmesh_pack_map(pack, 7);
        zmesh_pack_str(pack, "id");
        zmesh_pack_str(pack, worker->id);
        zmesh_pack_str(pack, "idempotent");
        zmesh_pack_bool(pack, worker->idempotent);
        zmesh_pack_str(pack, "service");
        zmesh_pack_str(pack, worker->service->name);
        s_pack_key_uint(pack, "slots", worker->slots);
        s_pack_key_uint(pack, "inflight", zlistx_size(worker->inflight));
        s_pack_key_uint(pack, "served", worker->served);
        s_pack_key_uint(pack, "silent_ms", (uint64_t) (now - worker->peer.last_heard));
    }
}

static void
s_pack_pipeline(const zm_pipeline_t *pipeline, zmesh_pack_t *pack)
{
    zmesh_pack_map(pack, 11);
    s_pack_key_uint(pack, "queued", zm_pipeline_queued(pipeline));
    s_pack_key_uint(pack, "in_flight", pipeline->inflight);
    s_pack_key_uint(pack, "delivered", pipeline->delivered);
    s_pack_key_uint(pack, "acked", pipeline->acked);
    s_pack_key_uint(pack, "redelivered", pipeline->redelivered);
    s_pack_key_uint(pack, "consumers", pipeline->consumers);
    s_pack_key_uint(pack, "credit", pipeline->credit);
    s_pack_key_uint(pack, "free_credit", pipeline->credit - pipeline->inflight);
    s_pack_key_uint(pack, "waiting_producers", zlistx_size(pipeline->waiting));
    s_pack_key_uint(pack, "refused_full", pipeline->refused_full);
    zmesh_pack_str(pack, "drops");
    zmesh_pack_map(pack, 2);
    s_pack_key_uint(pack, "poison", pipeline->dropped_poison);
    s_pack_key_uint(pack, "push_malformed", pipeline->dropped_push_malformed);
}

//  A map keyed by pipeline name (ZMP.md 16.9).
static void
s_pack_pipelines(const zm_engine_t *self, zmesh_pack_t *pack)
{
    zmesh_pack_str(pack, "pipelines");
    zmesh_pack_map(pack, (uint32_t) zhashx_size(self->pipelines));
    for (zm_pipeline_t *pipeline = zhashx_first(self->pipelines); pipeline;
         pipeline = zhashx_next(self->pipelines)) {
        zmesh_pack_str(pack, pipeline->name);
        s_pack_pipeline(pipeline, pack);
    }
}

static void
s_pack_counters(const zm_engine_t *self, zmesh_pack_t *pack)
{
    uint32_t count = 0;
#define ZM_COUNT(name) count++;
    ZM_COUNTERS(ZM_COUNT)
#undef ZM_COUNT
    zmesh_pack_str(pack, "counters");
    zmesh_pack_map(pack, count);
#define ZM_PACK(name) s_pack_key_uint(pack, #name, self->counters.name);
    ZM_COUNTERS(ZM_PACK)
#undef ZM_PACK
}

//  Each replicated service: its replica set and each replica's place (ZMP.md 20.9).
static void
s_pack_replicated(const zm_engine_t *self, zmesh_pack_t *pack)
{
    uint32_t count = 0;
    for (zm_service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services))
        if (service->replset)
            count++;
    zmesh_pack_str(pack, "replicated");
    zmesh_pack_array(pack, count);
    for (zm_service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services)) {
        zm_replset_t *set = service->replset;
        if (!set)
            continue;
        zmesh_pack_map(pack, 9);
        zmesh_pack_str(pack, "service");
        zmesh_pack_str(pack, service->name);
        s_pack_key_uint(pack, "replicas", set->replicas);
        s_pack_key_uint(pack, "quorum", zm_replset_quorum(set));
        s_pack_key_uint(pack, "epoch", set->epoch);
        s_pack_key_uint(pack, "seq", set->last);
        s_pack_key_uint(pack, "committed", set->committed);
        s_pack_key_uint(pack, "buffered", set->ring_count);
        s_pack_key_uint(pack, "catchups", set->catchups);
        zmesh_pack_str(pack, "members");
        zmesh_pack_array(pack, (uint32_t) zlistx_size(set->members));
        for (zm_member_t *member = zlistx_first(set->members); member;
             member = zlistx_next(set->members)) {
            zmesh_pack_map(pack, 4);
            zmesh_pack_str(pack, "id");
            zmesh_pack_str(pack, member->worker->id);
            zmesh_pack_str(pack, "state");
            zmesh_pack_str(pack, zm_member_state_name(member->state));
            uint64_t seq = member->state == ZM_MEMBER_JOINED ? member->joined_seq
                                                              : member->applied;
            s_pack_key_uint(pack, "seq", seq);
            s_pack_key_uint(pack, "lag", set->last > seq ? set->last - seq : 0);
        }
    }
}

//  Whether CURVE is on and, if so, each key the broker knows by name.
static void
s_pack_security(const zm_engine_t *self, zmesh_pack_t *pack)
{
    zmesh_pack_str(pack, "security");
    zmesh_pack_map(pack, self->keyring ? 3 : 1);
    zmesh_pack_str(pack, "curve");
    zmesh_pack_bool(pack, self->keyring != NULL);
    if (!self->keyring)
        return;
    s_pack_key_uint(pack, "keys", zm_keyring_size(self->keyring));
    zmesh_pack_str(pack, "key_stats");
    zmesh_pack_map(pack, (uint32_t) zm_keyring_size(self->keyring));
    for (zm_key_t *key = zm_keyring_first(self->keyring); key;
         key = zm_keyring_next(self->keyring)) {
        zmesh_pack_str(pack, key->name);
        zmesh_pack_map(pack, 3);
        zmesh_pack_str(pack, "key");
        zmesh_pack_str(pack, key->key);
        s_pack_key_uint(pack, "messages", key->messages);
        s_pack_key_uint(pack, "denied", key->denied);
    }
}

zframe_t *
zm_engine_status(const zm_engine_t *self, int64_t now)
{
    assert(self);
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, 8);
    zmesh_pack_str(pack, "version");
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", ZMESH_VERSION_MAJOR, ZMESH_VERSION_MINOR,
             ZMESH_VERSION_PATCH);
    zmesh_pack_str(pack, version);
    s_pack_key_uint(pack, "uptime_ms", (uint64_t) (now - self->started_at));
    s_pack_services(self, pack);
    s_pack_workers(self, pack, now);
    s_pack_pipelines(self, pack);
    s_pack_replicated(self, pack);
    s_pack_counters(self, pack);
    s_pack_security(self, pack);
    zframe_t *body = zframe_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return body;
}
