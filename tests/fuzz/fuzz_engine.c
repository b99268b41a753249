//  fuzz_engine - fuzzes the broker's routing logic (broker/engine.c with its
//  services, worker sessions and calls, engine_pipe.c with its pipelines,
//  producer links and consumer sessions, and engine_repl.c with its replica
//  sets) as broker.c drives it, without sockets. The input is two config
//  bytes, then a script of operations: a well-formed command from one of
//  four peers (routing ids 0 to 3) built from a few field bytes, a REPLY to
//  a ticket the broker handed out, raw frames, a clock step with or without
//  a tick, a failed send, and replication: a JOIN (with the (epoch, seq) the
//  set started from, its current one, one its buffer holds, or others), runs
//  of APPLIED near the replica's next seq with bodies that may differ,
//  MISSING, SNAPSHOT chunks for a token a SYNC handed out, and write and
//  quorum-read CALLs. After each one the outbox is drained and every
//  message in it must go to a peer that spoke, decode under the broker's own
//  limits, and be a command the broker may send (tickets only grow; a WRITE
//  goes to a live replica in the set's epoch, each replica's WRITEs follow
//  on one another unless it just joined, asked, or got a snapshot, and a
//  live replica has been sent every write; a relayed SNAPSHOT is the chunk
//  just sent); and the engine's bookkeeping must add up (slots, calls in
//  flight, queues, ready lists; no call waits while its service has a free
//  slot; each replica set's members, states, donors and write buffer; an
//  active set keeps its epoch, and a set never starts an epoch its service
//  used before). At the end the clock jumps past every heartbeat, grace
//  period and window: then no worker, call, service or offender may be
//  left, and every CALL the broker took, writes included, must have been
//  answered exactly once by its counters, before the engine is destroyed
//  (LeakSanitizer checks that too). Pipelines keep their bound and their
//  books: every message taken is acknowledged, given up, or still held.
//  Half the runs turn authorization on with a keyring of three keys (all
//  rights, some, none) plus one unknown key; each peer speaks with one of
//  them and may switch (its routing id taken over), and connections may be
//  reported closed. Then every worker and consumer session must hold a key
//  that may serve or pull what it does.
//  The engine's log lines go nowhere.
#include "engine.h"
#include "fuzz_common.h"
#include "zm_hash.h"
#include "zmesh.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PEERS 4
#define S_TICKETS 8                     //  recent tickets kept to answer
#define S_STEPS_MAX 256
#define S_T0 1000000                    //  ms: when the engine starts
#define S_DRAIN_MS 10000000             //  past any heartbeat x liveness (60 s x 100)
#define S_OUT_BODY_MAX (16u << 20)      //  any body the broker sends (status grows)

static const char *const s_services[] = {"echo", "kv", "echo.2", "zmesh.status", "zmesh.none"};
static const char *const s_pipelines[] = {"nums", "words", "zmesh.pipe"};
static const int64_t s_deltas[] = {0, 1, 50, 99, 100, 400, 1000, 2999, 5000, 60000};
static const uint32_t s_timeouts[] = {0, 0, 1, 50, 100, 1000, 5000, UINT32_MAX};
static const uint32_t s_statuses[] = {200, 500, 200, 500, 404, 999};
static const uint32_t s_heartbeats[] = {100, 250, 1000, 60000};
static const int64_t s_graces[] = {0, 100, 500, 2000};
static const char *const s_joins[] = {"kv", "kv", "kv", "echo", "kv", "kv", "kv", "zmesh.kv"};
static const uint32_t s_write_flags[] = {ZM_CALL_WRITE, ZM_CALL_QUORUM, 0,
                                         ZM_CALL_WRITE | ZM_CALL_PROGRESS};
#define S_EPOCH_BASE 1000               //  the broker's start "wall clock" in half the runs
#define S_SETS 8                        //  services whose replica sets are followed
#define S_COUNT(array) (sizeof(array) / sizeof((array)[0]))

//  What the broker sent one peer as a replica, in its current session.
typedef struct {
    uint64_t sent;                      //  the last WRITE seq sent to it (0: none)
    bool member_before;                 //  a replica when the step began
    bool live_before;                   //  and one that was sent every new write
    bool wrote;                         //  got a WRITE in this step
    uint64_t step_last;                 //  the last WRITE seq it got in this step
} s_replica_t;

//  One service's replica set, followed across steps by name: a set may be
//  forgotten and made again, and must not start an epoch the service used.
typedef struct {
    char name[ZM_NAME_MAX + 1];         //  "" = a free entry
    uint64_t epoch;                     //  its epoch after the last step (0: none, or stopped)
    uint64_t last;                      //  and its last seq
    uint64_t highest;                   //  the highest epoch it ever had
} s_set_t;

//  One run of the script.
typedef struct {
    zm_engine_t *engine;                //  owned
    zm_engine_config_t config;          //  what the engine was made with
    zm_fuzz_cursor_t input;             //  the script
    int64_t now;                        //  ms
    bool heard[S_PEERS];                //  peers that sent something: the only ones answered
    uint64_t tickets[S_TICKETS];        //  recent REQUEST tickets, a ring; 0 = none yet
    uint8_t holders[S_TICKETS];         //  the peer each ticket went to
    size_t next_slot;                   //  next slot of the ring
    uint64_t last_ticket;               //  highest ticket seen: tickets only grow
    uint64_t progress_out;              //  PROGRESS forwarded to callers
    uint64_t messages[S_TICKETS];       //  recent DELIVER message ids, a ring
    uint8_t receivers[S_TICKETS];       //  the consumer each went to
    size_t next_message;
    uint64_t seqs[S_PEERS];             //  next PUSH seq of each peer
    bool secure;                        //  the engine checks keys
    uint8_t shift[S_PEERS];             //  which key each peer speaks with now
    uint64_t busy_replies;              //  CALLs answered 503 (rejected_busy counts refusals too)
    s_replica_t replicas[S_PEERS];
    s_set_t sets[S_SETS];
    int speaker;                        //  the peer whose command this step delivered, or -1
    uint64_t tokens[S_TICKETS];         //  recent SYNC tokens, a ring
    uint8_t donors[S_TICKETS];          //  the replica each was sent to
    size_t next_token;
    bool snapshot_sent;                 //  this step delivered a SNAPSHOT: the broker may relay it
    zm_proto_t snapshot;                //  that SNAPSHOT (body kept), to compare the relay with
} s_run_t;

//  The keys of secure runs: made once per process, in a directory removed at once.
#define S_KEYS 4
static zm_keyring_t *s_keyring;
static char s_keys[S_KEYS][ZM_CURVE_KEY_TXT];     //  the last is not in the keyring

static void
s_make_key(const char *dir, int index, const char *serve, const char *call, const char *push,
           const char *pull, bool admin)
{
    zcert_t *cert = zcert_new();
    if (serve)
        zcert_set_meta(cert, "serve", "%s", serve);
    if (call)
        zcert_set_meta(cert, "call", "%s", call);
    if (push)
        zcert_set_meta(cert, "push", "%s", push);
    if (pull)
        zcert_set_meta(cert, "pull", "%s", pull);
    if (admin)
        zcert_set_meta(cert, "admin", "yes");
    char path[128];
    snprintf(path, sizeof path, "%s/%d.key", dir, index);
    if (dir[0])
        zcert_save_public(cert, path);
    memcpy(s_keys[index], zcert_public_txt(cert), ZM_CURVE_KEY_TXT);
    zcert_destroy(&cert);
}

static void
s_make_keyring(void)
{
    char dir[] = "/tmp/zmesh-fuzz-keys-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    s_make_key(dir, 0, "*", "*", "*", "*", true);
    s_make_key(dir, 1, "echo", "echo,kv", "nums", "nums", false);
    s_make_key(dir, 2, NULL, NULL, NULL, NULL, false);
    s_make_key("", 3, "*", "*", "*", "*", true);        //  never written: unknown
    s_keyring = zm_keyring_new(dir);
    for (int index = 0; index < 3; index++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%d.key", dir, index);
        unlink(path);
    }
    rmdir(dir);
}

static const char *
s_key_of(const s_run_t *run, uint8_t peer)
{
    return run->secure ? s_keys[(peer + run->shift[peer]) % S_KEYS] : NULL;
}

//  With keys, a session's key must (still) allow what the session does.
static bool
s_session_allowed(const zm_engine_t *engine, const char *key, zm_right_t right,
                  const char *name)
{
    if (!engine->keyring)
        return key == NULL;
    zm_key_t *entry = zm_keyring_lookup(engine->keyring, key);
    return entry && zm_rights_allow(&entry->rights, right, name);
}

static void
s_configure(zm_engine_config_t *config, zm_fuzz_cursor_t *input)
{
    zm_engine_config_defaults(config);
    uint8_t a = zm_fuzz_byte(input);
    uint8_t b = zm_fuzz_byte(input);
    config->max_queue = 1 + (a & 3);
    config->max_services = 1 + (a >> 2 & 3);
    config->limits.check_body = !(a & 0x10);
    config->grace_ms = s_graces[a >> 5 & 3];
    config->limits.max_body = a & 0x80 ? 256 : 65536;
    if (b & 1)
        config->max_queue_bytes = 300;
    config->limits.max_depth = b & 2 ? 8 : 64;
    if (b & 4)
        config->max_garbage = 2;
    if (b & 8)
        config->max_deliveries = 2;
    //  As broker.c: the start time, above the epochs replicas bring (mostly).
    config->epoch_base = b & 0x20 ? 0 : S_EPOCH_BASE;
}

//  Whether the run checks keys: from the second config byte.
static bool
s_secure_run(const zm_fuzz_cursor_t *input)
{
    return input->size >= 2 && (input->data[1] & 0x10);
}

static bool
s_known_status(uint32_t status)
{
    static const uint32_t known[] = {200, 400, 403, 404, 408, 413, 500, 502, 503, 505};
    for (size_t i = 0; i < S_COUNT(known); i++)
        if (status == known[i])
            return true;
    return false;
}

//  The worker session of peer, if it has one.
static zm_worker_t *
s_worker_of(const zm_engine_t *engine, uint8_t peer)
{
    char id[3];
    snprintf(id, sizeof id, "%02x", peer);
    return zhashx_lookup(engine->workers, id);
}

//  The replica set peer is a member of, or NULL.
static zm_replset_t *
s_set_of(const zm_engine_t *engine, uint8_t peer, zm_member_t **member_p)
{
    zm_worker_t *worker = s_worker_of(engine, peer);
    zm_member_t *member = worker ? worker->member : NULL;
    if (member_p)
        *member_p = member;
    return member ? worker->service->replset : NULL;
}

//  The entry that follows the set of service name; a new one if asked (NULL when full).
static s_set_t *
s_set_entry(s_run_t *run, const char *name, bool create)
{
    for (size_t index = 0; index < S_SETS; index++)
        if (strcmp(run->sets[index].name, name) == 0)
            return &run->sets[index];
    if (!create)
        return NULL;
    for (size_t index = 0; index < S_SETS; index++)
        if (!run->sets[index].name[0]) {
            snprintf(run->sets[index].name, sizeof run->sets[index].name, "%s", name);
            return &run->sets[index];
        }
    return NULL;
}

//  A WRITE to peer: it is a live replica (or was one when the step began and
//  has gone since), in its set's epoch, of a seq given out. Its WRITEs
//  follow on one another; the first of a step follows the last it got unless
//  it was not live (it joined, or its snapshot ended) or it spoke (MISSING).
static void
s_on_write(s_run_t *run, uint8_t peer, const zm_proto_t *command)
{
    zm_member_t *member;
    zm_replset_t *set = s_set_of(run->engine, peer, &member);
    s_replica_t *replica = &run->replicas[peer];
    ZM_FUZZ_CHECK(member ? member->live : replica->member_before);
    ZM_FUZZ_CHECK(command->kind == ZM_WRITE_KIND_WRITE
                  || command->kind == ZM_WRITE_KIND_QUORUM_READ);
    ZM_FUZZ_CHECK(command->seq >= 1 && command->epoch > 0);
    if (set) {
        //  Sent in this step: in the epoch it had when the step began, or has now.
        s_set_t *entry = s_set_entry(run, member->worker->service->name, false);
        ZM_FUZZ_CHECK(command->epoch == set->epoch || (entry && command->epoch == entry->epoch));
        ZM_FUZZ_CHECK(command->seq <= set->last || (entry && command->seq <= entry->last));
    }
    if (replica->wrote)
        ZM_FUZZ_CHECK(command->seq == replica->step_last + 1);
    else if (replica->live_before && run->speaker != peer)
        ZM_FUZZ_CHECK(command->seq == replica->sent + 1);
    replica->wrote = true;
    replica->step_last = replica->sent = command->seq;
}

//  Checks one message the broker sends: [routing][empty][header][body?].
static void
s_check_out(s_run_t *run, zmsg_t *msg)
{
    zframe_t *routing = zmsg_pop(msg);
    ZM_FUZZ_CHECK(routing && zframe_size(routing) <= 1);
    //  An empty routing id: the answer to a call whose client's connection
    //  closed (secure runs only), sent to no one.
    bool nobody = zframe_size(routing) == 0;
    uint8_t peer = nobody ? 0 : zframe_data(routing)[0];
    zframe_destroy(&routing);
    ZM_FUZZ_CHECK(nobody ? run->secure : peer < S_PEERS && run->heard[peer]);
    zm_proto_limits_t limits = run->config.limits;
    limits.max_body = S_OUT_BODY_MAX;
    zm_proto_t command;
    zm_proto_error_t error;
    zm_proto_init(&command);
    ZM_FUZZ_CHECK(zm_proto_decode(&command, msg, &limits, &error));
    ZM_FUZZ_CHECK(command.cmd != ZM_CMD_CALL && command.cmd != ZM_CMD_READY);
    ZM_FUZZ_CHECK(!nobody || command.cmd == ZM_CMD_REPLY || command.cmd == ZM_CMD_PROGRESS);
    switch (command.cmd) {
    case ZM_CMD_REPLY:
        ZM_FUZZ_CHECK(s_known_status(command.status));
        if (command.status == ZM_STATUS_BUSY)
            run->busy_replies++;
        break;
    case ZM_CMD_DISCONNECT:
        ZM_FUZZ_CHECK(s_known_status(command.status));
        break;
    case ZM_CMD_REQUEST: {
        ZM_FUZZ_CHECK(command.id > run->last_ticket);
        ZM_FUZZ_CHECK(strncmp(command.service, "zmesh.", 6) != 0);
        //  Reads go to current replicas only.
        zm_member_t *member;
        s_set_of(run->engine, peer, &member);
        ZM_FUZZ_CHECK(!member || member->state == ZM_MEMBER_CURRENT);
        run->last_ticket = command.id;
        run->tickets[run->next_slot] = command.id;
        run->holders[run->next_slot] = peer;
        run->next_slot = (run->next_slot + 1) % S_TICKETS;
        break;
    }
    case ZM_CMD_WRITE:
        s_on_write(run, peer, &command);
        break;
    case ZM_CMD_SYNC: {
        //  To a current replica (unless gone since), for a new token.
        zm_member_t *member;
        s_set_of(run->engine, peer, &member);
        ZM_FUZZ_CHECK(command.id > 0);
        ZM_FUZZ_CHECK(member ? member->state == ZM_MEMBER_CURRENT
                             : run->replicas[peer].member_before);
        run->tokens[run->next_token] = command.id;
        run->donors[run->next_token] = peer;
        run->next_token = (run->next_token + 1) % S_TICKETS;
        break;
    }
    case ZM_CMD_SNAPSHOT: {
        //  A relay of the chunk the donor just sent, to another replica that catches up.
        zm_member_t *member;
        s_set_of(run->engine, peer, &member);
        const zm_proto_t *sent = &run->snapshot;
        ZM_FUZZ_CHECK(run->snapshot_sent && run->speaker != peer);
        ZM_FUZZ_CHECK(member && member->state != ZM_MEMBER_JOINED);
        ZM_FUZZ_CHECK(command.id == sent->id && command.epoch == sent->epoch
                      && command.seq == sent->seq && command.index == sent->index
                      && command.more == sent->more && zframe_eq(command.body, sent->body));
        break;
    }
    case ZM_CMD_PROGRESS:                           //  only to a caller that asked
        run->progress_out++;
        break;
    case ZM_CMD_DELIVER:
        ZM_FUZZ_CHECK(command.attempt >= 1 && command.attempt <= run->config.max_deliveries);
        ZM_FUZZ_CHECK(strncmp(command.service, "zmesh.", 6) != 0);
        run->messages[run->next_message] = command.id;
        run->receivers[run->next_message] = peer;
        run->next_message = (run->next_message + 1) % S_TICKETS;
        break;
    case ZM_CMD_REFUSE:
    case ZM_CMD_DONE:
        ZM_FUZZ_CHECK(s_known_status(command.status));
        break;
    case ZM_CMD_ACCEPT:
    case ZM_CMD_RESUME:
    case ZM_CMD_HEARTBEAT:
        break;
    default:                                        //  never sent by the broker
        ZM_FUZZ_CHECK(false);
    }
    zm_proto_reset(&command);
}

static void
s_drain(s_run_t *run)
{
    zmsg_t *msg;
    while ((msg = zm_engine_outbox_pop(run->engine))) {
        s_check_out(run, msg);
        zmsg_destroy(&msg);
    }
}

//  Recounts each worker's calls: within its slots, in the call table, and
//  its state and place in the ready list agree with its free slots.
static void
s_check_workers(zm_engine_t *engine)
{
    size_t held = 0;
    for (zm_worker_t *worker = zhashx_first(engine->workers); worker;
         worker = zhashx_next(engine->workers)) {
        size_t inflight = zlistx_size(worker->inflight);
        bool free_slot = inflight < worker->slots;
        ZM_FUZZ_CHECK(inflight <= worker->slots);
        ZM_FUZZ_CHECK(worker->state == (free_slot ? ZM_WORKER_READY : ZM_WORKER_BUSY));
        //  A replica that is not current is kept off the ready list.
        ZM_FUZZ_CHECK((worker->ready_handle != NULL) == (free_slot && !worker->withheld));
        ZM_FUZZ_CHECK(zhashx_lookup(engine->services, worker->service->name) == worker->service);
        ZM_FUZZ_CHECK((worker->member != NULL) == (worker->service->replset != NULL));
        ZM_FUZZ_CHECK(worker->member || !worker->withheld);
        ZM_FUZZ_CHECK(
            s_session_allowed(engine, worker->key, ZM_RIGHT_SERVE, worker->service->name));
        for (zm_call_t *call = zlistx_first(worker->inflight); call;
             call = zlistx_next(worker->inflight)) {
            ZM_FUZZ_CHECK(call->worker == worker
                          && (worker->idempotent ? call->body != NULL : call->body == NULL));
            ZM_FUZZ_CHECK(zm_hash_lookup(engine->calls, call->ticket) == call);
        }
        held += inflight;
    }
    ZM_FUZZ_CHECK(zhashx_size(engine->calls) == held);
}

//  Recounts each service from its workers and its queue.
static void
s_check_services(zm_engine_t *engine)
{
    for (zm_service_t *service = zhashx_first(engine->services); service;
         service = zhashx_next(engine->services)) {
        size_t workers = 0, slots = 0, inflight = 0, ready = 0, bytes = 0, fresh = 0;
        for (zm_worker_t *worker = zhashx_first(engine->workers); worker;
             worker = zhashx_next(engine->workers)) {
            if (worker->service != service)
                continue;
            workers++;
            slots += worker->slots;
            inflight += zlistx_size(worker->inflight);
            ready += worker->ready_handle != NULL;
        }
        for (zm_call_t *call = zlistx_first(service->queue); call;
             call = zlistx_next(service->queue)) {
            bytes += zframe_size(call->body);
            fresh += call->attempts == 0;
        }
        ZM_FUZZ_CHECK(service->workers == workers && service->slots == slots);
        ZM_FUZZ_CHECK(service->inflight == inflight);
        ZM_FUZZ_CHECK(zlistx_size(service->ready) == ready);
        ZM_FUZZ_CHECK(service->queued_bytes == bytes);
        //  The bound holds for calls not yet dispatched; calls back from a lost
        //  worker were admitted once and may go over it (ZMP.md, section 10.3).
        ZM_FUZZ_CHECK(fresh <= service->max_queue);
        //  Dispatch is eager: a call never waits while a worker has a free slot.
        //  A replicated service's queue is in order: a write waits at its head
        //  (and what follows it) only while the set is not sequencing.
        zm_call_t *head = zlistx_first(service->queue);
        if (head && service->replset && (head->flags & (ZM_CALL_WRITE | ZM_CALL_QUORUM)))
            ZM_FUZZ_CHECK(service->replset->epoch == 0);
        else
            ZM_FUZZ_CHECK(head == NULL || ready == 0);
    }
    ZM_FUZZ_CHECK(zhashx_size(engine->services) <= engine->config.max_services);
}

//  Checks one member of set against its worker and the set's state. Returns
//  true if it waits for a donor (catching up, no snapshot asked).
static bool
s_check_member(const zm_engine_t *engine, const zm_service_t *service, const zm_replset_t *set,
               const zm_member_t *member)
{
    const zm_worker_t *worker = member->worker;
    ZM_FUZZ_CHECK(zhashx_lookup(engine->workers, worker->id) == worker);
    ZM_FUZZ_CHECK(worker->member == member && worker->service == service);
    ZM_FUZZ_CHECK(worker->withheld == (member->state != ZM_MEMBER_CURRENT));
    //  Members wait as JOINED exactly while the set is not sequencing.
    ZM_FUZZ_CHECK((member->state == ZM_MEMBER_JOINED) == (set->epoch == 0));
    ZM_FUZZ_CHECK(!member->live || member->applied <= set->last);
    switch (member->state) {
    case ZM_MEMBER_JOINED:
        ZM_FUZZ_CHECK(!member->live && !member->token && !member->donor && !member->relaying);
        return false;
    case ZM_MEMBER_CURRENT:
        ZM_FUZZ_CHECK(member->live && !member->token && !member->donor && !member->relaying);
        return false;
    case ZM_MEMBER_CATCHING:
        break;
    }
    if (member->live) {
        //  Sent the writes it missed: current once it applied them.
        ZM_FUZZ_CHECK(!member->token && !member->donor && !member->relaying);
        ZM_FUZZ_CHECK(member->applied < member->current_at && member->current_at <= set->last);
        return false;
    }
    //  Waiting for a snapshot: asked from a current member of the same set,
    //  or from nobody. (relaying is not checked: nothing reads it.)
    ZM_FUZZ_CHECK((member->token != 0) == (member->donor != NULL));
    ZM_FUZZ_CHECK(member->token <= set->next_token);
    if (!member->donor)
        return true;
    ZM_FUZZ_CHECK(member->donor != member);
    ZM_FUZZ_CHECK(zlistx_find(set->members, member->donor) != NULL);
    ZM_FUZZ_CHECK(member->donor->state == ZM_MEMBER_CURRENT);
    return false;
}

//  Recounts each replica set: its members are the service's workers, their
//  states agree with the set's, and the write buffer holds first..last with
//  the calls it says wait, the bytes it says it holds, and no write whose
//  quorum has applied it still waiting.
static void
s_check_replsets(const zm_engine_t *engine)
{
    for (zm_service_t *service = zhashx_first(engine->services); service;
         service = zhashx_next(engine->services)) {
        const zm_replset_t *set = service->replset;
        if (!set)
            continue;
        ZM_FUZZ_CHECK(set->replicas >= 1 && set->replicas <= ZM_REPLICAS_MAX);
        ZM_FUZZ_CHECK(set->quorum <= set->replicas);
        size_t members = zlistx_size(set->members);
        ZM_FUZZ_CHECK(members == service->workers && members <= ZM_REPLSET_MEMBERS_MAX);
        //  The member list has one cursor: copy it before looking at donors.
        const zm_member_t *list[ZM_REPLSET_MEMBERS_MAX];
        size_t count = 0;
        for (zm_member_t *member = zlistx_first(set->members); member;
             member = zlistx_next(set->members))
            list[count++] = member;
        uint64_t slots = 0;
        size_t current = 0, waiting = 0, live = 0;
        for (size_t index = 0; index < count; index++) {
            const zm_member_t *member = list[index];
            ZM_FUZZ_CHECK(member->slot < 64 && !(slots & (1ull << member->slot)));
            slots |= 1ull << member->slot;
            current += member->state == ZM_MEMBER_CURRENT;
            live += member->live;
            waiting += s_check_member(engine, service, set, member);
        }
        ZM_FUZZ_CHECK(slots == set->slots_used);
        //  A member waits for a donor only while there is none to ask.
        ZM_FUZZ_CHECK(waiting == 0 || current == 0);
        if (set->epoch == 0)        //  not started yet, or stopped (its members sent away)
            ZM_FUZZ_CHECK(members < zm_replset_start_count(set) && set->ring_count == 0
                          && set->unanswered == 0);
        else                        //  sequencing: a current member to answer reads and
                                    //  donate, or a live one that becomes current
            ZM_FUZZ_CHECK(current > 0 || live > 0);
        ZM_FUZZ_CHECK(members <= set->replicas);    //  never more than N: the quorum argument
        ZM_FUZZ_CHECK(set->committed <= set->last);
        ZM_FUZZ_CHECK(set->epoch == 0
                      || (set->ref_seq <= set->committed && set->first > set->ref_seq
                          && set->epoch > set->ref_epoch));
        //  The buffer: first..last, in order.
        ZM_FUZZ_CHECK(set->first >= 1 && set->first <= set->last + 1);
        ZM_FUZZ_CHECK(set->ring_count == set->last + 1 - set->first);
        ZM_FUZZ_CHECK(set->ring_count <= set->ring_size && set->ring_count <= ZM_REPLSET_WRITES_MAX);
        size_t unanswered = 0, bytes = 0;
        for (uint64_t seq = set->first; seq <= set->last; seq++) {
            const zm_write_t *write = zm_replset_write(set, seq);
            ZM_FUZZ_CHECK(write && write->seq == seq && write->body);
            ZM_FUZZ_CHECK(write->kind == ZM_WRITE_KIND_WRITE
                          || write->kind == ZM_WRITE_KIND_QUORUM_READ);
            ZM_FUZZ_CHECK(write->replied == (write->reply != NULL));
            bytes += zframe_size(write->body) + (write->reply ? zframe_size(write->reply) : 0);
            if (!write->call)
                continue;
            unanswered++;
            ZM_FUZZ_CHECK(write->call->sequenced && write->call->request_id == write->write_id);
            //  Acks count only from members still there; a quorum of them
            //  would have answered it.
            ZM_FUZZ_CHECK((write->acked_by & ~set->slots_used) == 0);
            ZM_FUZZ_CHECK(zm_replset_acks(write) < zm_replset_quorum(set));
        }
        ZM_FUZZ_CHECK(set->unanswered == unanswered && set->bytes == bytes);
        ZM_FUZZ_CHECK(set->bytes <= ZM_REPLSET_BYTES_MAX);
    }
}

//  Recounts each pipeline from its queue and its consumers: the bound holds,
//  and no message waits while a consumer has free credit.
static void
s_check_pipelines(zm_engine_t *engine)
{
    size_t items = 0;
    for (zm_pipeline_t *pipeline = zhashx_first(engine->pipelines); pipeline;
         pipeline = zhashx_next(engine->pipelines)) {
        size_t held = 0, bytes = 0, inflight = 0, ready = 0, consumers = 0, credit = 0;
        ZM_FUZZ_CHECK(zm_itemq_check(pipeline->queue));    //  recounts it, ids in order
        held += zm_itemq_size(pipeline->queue);
        bytes += zm_itemq_bytes(pipeline->queue);
        for (zm_consumer_t *consumer = zhashx_first(engine->consumers); consumer;
             consumer = zhashx_next(engine->consumers)) {
            if (consumer->pipeline != pipeline)
                continue;
            consumers++;
            credit += consumer->credit;
            ZM_FUZZ_CHECK(
                s_session_allowed(engine, consumer->key, ZM_RIGHT_PULL, pipeline->name));
            ready += consumer->ready_handle != NULL;
            ZM_FUZZ_CHECK(zlistx_size(consumer->inflight) <= consumer->credit);
            //  A consumer that sent RELEASE is leaving: never ready again.
            ZM_FUZZ_CHECK((consumer->ready_handle != NULL)
                          == (zlistx_size(consumer->inflight) < consumer->credit
                              && !consumer->gone));
            for (zm_item_t *item = zlistx_first(consumer->inflight); item;
                 item = zlistx_next(consumer->inflight)) {
                ZM_FUZZ_CHECK(item->consumer == consumer);
                ZM_FUZZ_CHECK(zm_hash_lookup(engine->items, item->id) == item);
                held++;
                inflight++;
                bytes += item->size;
            }
        }
        ZM_FUZZ_CHECK(pipeline->held == held && pipeline->held_bytes == bytes);
        ZM_FUZZ_CHECK(held <= pipeline->max_held && bytes <= pipeline->max_bytes);
        ZM_FUZZ_CHECK(pipeline->inflight == inflight && pipeline->consumers == consumers);
        ZM_FUZZ_CHECK(pipeline->credit == credit && zlistx_size(pipeline->ready) == ready);
        ZM_FUZZ_CHECK(zm_pipeline_queued(pipeline) == 0 || ready == 0);
        items += inflight;
    }
    ZM_FUZZ_CHECK(zhashx_size(engine->items) == items);
    ZM_FUZZ_CHECK(zhashx_size(engine->pipelines) <= engine->config.max_pipelines);
}

//  Hands msg to the engine as the ROUTER would, from peer.
static void
s_deliver(s_run_t *run, uint8_t peer, zmsg_t *msg)
{
    zframe_t *routing = zframe_new(&peer, 1);
    zmsg_prepend(msg, &routing);
    run->heard[peer] = true;
    run->speaker = peer;
    zm_engine_on_message(run->engine, &msg, s_key_of(run, peer), run->now);
    ZM_FUZZ_CHECK(msg == NULL);
    //  The transport would close a kicked peer's connection; here the peer may
    //  speak again, as a reconnected one would. Taking the flag clears it.
    if (zm_engine_take_kick(run->engine))
        ZM_FUZZ_CHECK(!zm_engine_take_kick(run->engine));
}

//  A body frame: a small int, raw input bytes, nesting around the depth
//  limit, or a bin sized around the body limit.
static zframe_t *
s_body(s_run_t *run)
{
    uint8_t kind = zm_fuzz_byte(&run->input);
    uint8_t x = zm_fuzz_byte(&run->input);
    if (kind % 4 == 0) {
        uint8_t fixint = x & 0x7f;
        return zframe_new(&fixint, 1);
    }
    if (kind % 4 == 1)
        return zm_fuzz_frame(&run->input, x);
    if (kind % 4 == 2) {
        uint8_t nested[72];
        size_t depth = x % 70;
        memset(nested, 0x91, depth);                //  [[[...nil...]]]
        nested[depth] = 0xc0;
        return zframe_new(nested, depth + 1);
    }
    size_t size = run->config.limits.max_body - 1 + x % 3;
    zframe_t *frame = zframe_new(NULL, size);
    uint8_t *data = zframe_data(frame);
    memset(data, 0, size);
    uint32_t length = (uint32_t) (size - 5);
    data[0] = 0xc6;                                 //  bin 32
    for (int i = 0; i < 4; i++)
        data[1 + i] = (uint8_t) (length >> (24 - 8 * i));
    return frame;
}

//  Encodes command, with a body when it takes one, and delivers it.
static void
s_send_command(s_run_t *run, uint8_t peer, zm_proto_t *command)
{
    if (command->cmd == ZM_CMD_CALL || command->cmd == ZM_CMD_REQUEST
        || command->cmd == ZM_CMD_REPLY || command->cmd == ZM_CMD_PUSH)
        command->body = s_body(run);
    s_deliver(run, peer, zm_proto_encode(command));
}

//  A well-formed command of any kind, from three field bytes.
static void
s_op_command(s_run_t *run, uint8_t peer)
{
    uint8_t kind = zm_fuzz_byte(&run->input);
    uint8_t a = zm_fuzz_byte(&run->input);
    uint8_t b = zm_fuzz_byte(&run->input);
    uint8_t c = zm_fuzz_byte(&run->input);
    zm_proto_t command;
    zm_proto_init(&command);
    const zm_cmd_t kinds[] = {ZM_CMD_CALL,       ZM_CMD_READY,   ZM_CMD_HEARTBEAT,
                              ZM_CMD_CALL,       ZM_CMD_DISCONNECT, ZM_CMD_REQUEST,
                              ZM_CMD_REPLY,      ZM_CMD_PROGRESS};
    command.cmd = kinds[kind % S_COUNT(kinds)];
    if (command.cmd == ZM_CMD_CALL || command.cmd == ZM_CMD_READY
        || command.cmd == ZM_CMD_REQUEST)
        snprintf(command.service, sizeof command.service, "%s",
                 s_services[a % S_COUNT(s_services)]);
    if (command.cmd == ZM_CMD_READY) {
        command.slots = 1 + b % 3;
        command.heartbeat_ms = s_heartbeats[c % S_COUNT(s_heartbeats)];
        command.liveness = 2 + c / 16 % 3;
        command.flags = b >> 7;                     //  idempotent half the time
    }
    else {
        command.id = b;
        command.timeout_ms = s_timeouts[c % S_COUNT(s_timeouts)];
        command.status = s_statuses[a % S_COUNT(s_statuses)];
    }
    if (command.cmd == ZM_CMD_DISCONNECT)
        snprintf(command.reason, sizeof command.reason, "%s", "bye");
    if (command.cmd != ZM_CMD_CALL && command.cmd != ZM_CMD_REQUEST)
        command.timeout_ms = 0;
    if (command.cmd == ZM_CMD_CALL)
        command.flags = a >> 7;                     //  reads PROGRESS half the time
    if (command.cmd == ZM_CMD_REQUEST)
        command.attempt = 1 + c % 3;
    if (command.cmd == ZM_CMD_PROGRESS) {
        uint8_t slot = b % S_TICKETS;               //  usually a ticket it holds
        command.id = run->tickets[slot];
        command.extend_ms = s_timeouts[c % S_COUNT(s_timeouts)];
        if (a & 0x80 && run->tickets[slot])
            peer = run->holders[slot];
    }
    s_send_command(run, peer, &command);
}

//  A pipeline command: PUSH (usually the next seq, sometimes a resend or a
//  gap), CONSUME, or an ACK of recent deliveries, usually by their holder.
static void
s_op_pipe(s_run_t *run, uint8_t peer)
{
    uint8_t kind = zm_fuzz_byte(&run->input);
    uint8_t a = zm_fuzz_byte(&run->input);
    uint8_t b = zm_fuzz_byte(&run->input);
    zm_proto_t command;
    zm_proto_init(&command);
    snprintf(command.service, sizeof command.service, "%s",
             s_pipelines[a % S_COUNT(s_pipelines)]);
    if (kind % 3 == 0) {
        command.cmd = ZM_CMD_PUSH;
        uint64_t seq = ++run->seqs[peer];
        if (b % 8 == 0 && seq > 2)
            seq -= 2;                               //  a resend
        else if (b % 8 == 1)
            seq += 1;                               //  a gap
        command.id = b % 16 == 2 ? 0 : seq;
        command.flags = a >> 7;                     //  DONE half the time
    }
    else if (kind % 3 == 1) {
        command.cmd = ZM_CMD_CONSUME;
        command.credit = 1 + b % 3;
        command.heartbeat_ms = s_heartbeats[b / 4 % S_COUNT(s_heartbeats)];
        command.liveness = 2 + b / 16 % 3;
    }
    else {
        command.cmd = kind & 0x40 ? ZM_CMD_RELEASE : ZM_CMD_ACK;
        command.ack_count = 1 + b % 3;
        for (uint32_t i = 0; i < command.ack_count; i++) {
            size_t slot = (a + i) % S_TICKETS;
            command.acks[i] = run->messages[slot] ? run->messages[slot] : 1;
            if (i == 0 && b & 0x80 && run->messages[slot])
                peer = run->receivers[slot];
        }
    }
    s_send_command(run, peer, &command);
}

//  A message off the push endpoint: usually a good PUSH, sometimes raw bytes.
//  The transport reads none while the engine holds one for a full pipeline.
static void
s_op_plain_push(s_run_t *run)
{
    uint8_t a = zm_fuzz_byte(&run->input);
    if (zm_engine_push_blocked(run->engine))
        return;
    zmsg_t *msg;
    if (a & 0x80) {
        zframe_t *frame = zm_fuzz_frame(&run->input, zm_fuzz_byte(&run->input));
        msg = zmsg_new();
        zmsg_append(msg, &frame);
    }
    else {
        zm_proto_t command;
        zm_proto_init(&command);
        command.cmd = ZM_CMD_PUSH;
        snprintf(command.service, sizeof command.service, "%s",
                 s_pipelines[a % S_COUNT(s_pipelines)]);
        command.body = s_body(run);
        msg = zm_proto_encode(&command);
        zframe_t *delimiter = zmsg_pop(msg);        //  a PUSH socket sends none
        zframe_destroy(&delimiter);
    }
    zm_engine_on_push(run->engine, &msg, s_key_of(run, a % S_PEERS), run->now);
    ZM_FUZZ_CHECK(msg == NULL);
}

//  A worker REPLY to a ticket the broker handed out, usually from its holder.
static void
s_op_reply(s_run_t *run, uint8_t peer)
{
    uint8_t slot = zm_fuzz_byte(&run->input) % S_TICKETS;
    uint8_t a = zm_fuzz_byte(&run->input);
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REPLY;
    command.id = run->tickets[slot];
    command.status = s_statuses[a % S_COUNT(s_statuses)];
    if (a & 0x80 && run->tickets[slot])
        peer = run->holders[slot];
    s_send_command(run, peer, &command);
}

//  An (epoch, seq) for a replica to report, picked by b and c: nothing, the
//  set's current state or one its buffer holds, the state it started from,
//  a newer or older epoch, or small numbers.
static void
s_pick_state(const s_run_t *run, const zm_replset_t *set, uint8_t b, uint8_t c,
             uint64_t *epoch, uint64_t *seq)
{
    uint64_t back = c % 4;
    *epoch = 0;
    *seq = 0;
    switch (b % 8) {
    case 0:
        return;
    case 1:
        if (set) {
            *epoch = set->epoch;
            *seq = set->last;
        }
        return;
    case 2:
        if (set) {
            *epoch = set->ref_epoch;
            *seq = set->ref_seq;
        }
        return;
    case 3:
        if (set) {
            *epoch = set->epoch;
            *seq = set->last > back ? set->last - back : 0;
        }
        return;
    case 4:                             //  the edge of the buffer
        if (set) {
            *epoch = set->epoch;
            *seq = set->first - 1 + c % 2;
        }
        return;
    case 5:                             //  past the broker's start
        *epoch = run->config.epoch_base + 1 + c % 2;
        *seq = c / 2 % 8;
        return;
    case 6:
        *epoch = c % 4;
        *seq = c / 4 % 8;
        return;
    default:
        if (set) {
            *epoch = set->epoch + (c & 1 ? 1 : -1);     //  0 - 1: the highest epoch
            *seq = set->last + back;
        }
        return;
    }
}

//  A reply body that replicas may agree on or not: one of three small
//  ints, or one from the input.
static zframe_t *
s_reply_body(s_run_t *run, uint8_t c)
{
    if (c % 8 == 7)
        return s_body(run);
    uint8_t fixint = c % 3;
    return zframe_new(&fixint, 1);
}

//  Replication: a replica's JOIN, a run of APPLIED, MISSING or a SNAPSHOT
//  chunk, or a client's write or quorum read.
static void
s_op_repl(s_run_t *run, uint8_t peer)
{
    uint8_t kind = zm_fuzz_byte(&run->input);
    uint8_t a = zm_fuzz_byte(&run->input);
    uint8_t b = zm_fuzz_byte(&run->input);
    uint8_t c = zm_fuzz_byte(&run->input);
    zm_member_t *member;
    zm_replset_t *set = s_set_of(run->engine, peer, &member);
    if (!set) {                         //  a client or a newcomer: kv's, if it has one
        zm_service_t *service = zhashx_lookup(run->engine->services, "kv");
        set = service ? service->replset : NULL;
    }
    zm_proto_t command;
    zm_proto_init(&command);
    switch (kind % 8) {
    case 0:
    case 1:
        command.cmd = ZM_CMD_JOIN;
        snprintf(command.service, sizeof command.service, "%s",
                 s_joins[kind / 8 % 8]);
        command.replicas = 1 + a % 3;
        command.quorum = a / 4 % (command.replicas + 1);
        if (a & 0x80 && set) {          //  what the set has: usually accepted
            command.replicas = set->replicas;
            command.quorum = set->quorum;
        }
        command.heartbeat_ms = s_heartbeats[c / 64];
        command.liveness = 2 + c / 16 % 3;
        s_pick_state(run, set, b, c, &command.epoch, &command.seq);
        break;
    case 2:
    case 3: {
        //  1 to 8 in a row, each the next the replica owes unless b says otherwise.
        size_t count = 1 + b / 32;
        for (size_t i = 0; i < count; i++) {
            set = s_set_of(run->engine, peer, &member);
            zm_proto_init(&command);
            command.cmd = ZM_CMD_APPLIED;
            command.epoch = set ? set->epoch : b % 4;
            if (set && (a & 3) == 3)
                command.epoch += a & 4 ? 1 : -1;
            uint64_t applied = member ? member->applied : c % 4;
            command.seq = (a >> 3 & 7) == 0 ? applied + 2 : (a >> 3 & 7) == 1 ? applied
                                                                                : applied + 1;
            command.status = (a & 0x40) && (i + c) % 3 == 0 ? ZM_STATUS_HANDLER_ERROR
                                                            : ZM_STATUS_OK;
            if (a & 0x80 && i == 0)
                command.status = s_statuses[c % S_COUNT(s_statuses)];
            command.body = s_reply_body(run, (uint8_t) (c + (b & 8 ? i : 0)));
            s_deliver(run, peer, zm_proto_encode(&command));
        }
        return;
    }
    case 4:
        command.cmd = ZM_CMD_MISSING;
        s_pick_state(run, set, b, c, &command.epoch, &command.seq);
        if (member && a % 4 == 0) {
            command.epoch = set->epoch;
            command.seq = member->applied > c % 3 ? member->applied - c % 3 : 0;
        }
        break;
    case 5: {
        //  Usually by the donor a recent SYNC went to, for its token.
        command.cmd = ZM_CMD_SNAPSHOT;
        uint8_t slot = a % S_TICKETS;
        command.id = run->tokens[slot] + (b & 0x80 ? 1 : 0);
        if (a & 0x80 && run->tokens[slot]) {
            peer = run->donors[slot];
            set = s_set_of(run->engine, peer, &member);
            if (!set) {
                zm_service_t *service = zhashx_lookup(run->engine->services, "kv");
                set = service ? service->replset : NULL;
            }
        }
        if (member && b % 4 == 0) {     //  the donor's own state, as a replica sends it
            command.epoch = set->epoch;
            command.seq = member->applied;
        }
        else
            s_pick_state(run, set, b / 4, c, &command.epoch, &command.seq);
        command.index = c % 3;
        command.more = (c & 0x30) == 0x30;
        uint8_t chunk[8] = {0xc4, (uint8_t) (c % 6)};
        memset(chunk + 2, c, sizeof chunk - 2);
        command.body = zframe_new(chunk, 2 + c % 6);
        zm_proto_reset(&run->snapshot);
        run->snapshot = command;
        run->snapshot.body = zframe_dup(command.body);
        run->snapshot_sent = true;
        s_deliver(run, peer, zm_proto_encode(&command));
        return;
    }
    default:
        command.cmd = ZM_CMD_CALL;
        snprintf(command.service, sizeof command.service, "%s", a & 0x40 ? "echo" : "kv");
        command.flags = s_write_flags[a % S_COUNT(s_write_flags)];
        command.id = b;
        command.timeout_ms = s_timeouts[c % S_COUNT(s_timeouts)];
        break;
    }
    s_send_command(run, peer, &command);
}

//  Raw frames: a count, then each frame's length (255: two more bytes) and bytes.
static void
s_op_raw(s_run_t *run, uint8_t peer)
{
    zmsg_t *msg = zmsg_new();
    size_t frames = zm_fuzz_byte(&run->input) % 5;
    for (size_t i = 0; i < frames; i++) {
        size_t length = zm_fuzz_byte(&run->input);
        if (length == 255)
            length = zm_fuzz_u16(&run->input);
        zframe_t *frame = zm_fuzz_frame(&run->input, length);
        zmsg_append(msg, &frame);
    }
    s_deliver(run, peer, msg);
}

static void
s_op_clock(s_run_t *run)
{
    uint8_t step = zm_fuzz_byte(&run->input);
    run->now += s_deltas[(step & 0x7f) % S_COUNT(s_deltas)];
    if (!(step & 0x80)) {                           //  else time passes with no tick
        zm_engine_on_tick(run->engine, run->now);
    }
}

static void
s_op_send_failed(s_run_t *run, uint8_t peer)
{
    bool full = zm_fuzz_byte(&run->input) & 1;
    zframe_t *routing = zframe_new(&peer, 1);
    zm_engine_on_send_failed(run->engine, routing, full, run->now);
    zframe_destroy(&routing);
}

//  Secure runs: the peer's routing id is taken over by a peer with another
//  key, or the transport reports its connection closed.
static void
s_op_connection(s_run_t *run, uint8_t peer)
{
    uint8_t a = zm_fuzz_byte(&run->input);
    if (!run->secure)
        return;
    if (a & 1)
        run->shift[peer]++;
    else {
        char id[3];
        snprintf(id, sizeof id, "%02x", peer);
        zm_engine_on_gone(run->engine, id, run->now);
    }
}

//  Before a step: where each peer stands as a replica.
static void
s_step_begin(s_run_t *run)
{
    run->speaker = -1;
    run->snapshot_sent = false;
    zm_proto_reset(&run->snapshot);
    for (uint8_t peer = 0; peer < S_PEERS; peer++) {
        zm_member_t *member;
        s_set_of(run->engine, peer, &member);
        s_replica_t *replica = &run->replicas[peer];
        replica->member_before = member != NULL;
        replica->live_before = member && member->live;
        replica->wrote = false;
        if (!member)
            replica->sent = 0;          //  a new session starts from nothing
    }
}

//  After a step and its drain: each live replica was sent every write up to
//  its set's last or the end of its window, and each set kept its epoch while it sequenced; a set
//  that starts sequencing takes an epoch its service never had.
static void
s_step_end(s_run_t *run)
{
    for (uint8_t peer = 0; peer < S_PEERS; peer++) {
        zm_member_t *member;
        zm_replset_t *set = s_set_of(run->engine, peer, &member);
        s_replica_t *replica = &run->replicas[peer];
        if (!member || !member->live)
            continue;
        if (!replica->live_before && !replica->wrote)
            replica->sent = member->sent;   //  brought up where the set stood: nothing to send
        //  Sent what the broker says, and everything up to the last or its window's end.
        ZM_FUZZ_CHECK(replica->sent == member->sent && member->sent <= set->last);
        ZM_FUZZ_CHECK(member->sent == set->last
                      || member->sent - member->applied == ZM_REPLSET_WINDOW);
    }
    bool seen[S_SETS] = {false};
    for (zm_service_t *service = zhashx_first(run->engine->services); service;
         service = zhashx_next(run->engine->services)) {
        const zm_replset_t *set = service->replset;
        s_set_t *entry = set ? s_set_entry(run, service->name, true) : NULL;
        if (!entry)
            continue;
        seen[entry - run->sets] = true;
        if (set->epoch == 0)
            entry->epoch = entry->last = 0;
        else if (entry->epoch == set->epoch) {
            ZM_FUZZ_CHECK(set->last >= entry->last);
            entry->last = set->last;
        }
        else {
            //  Started in this step (an active set keeps its epoch), past
            //  every epoch this service had before: a replica holding seq s
            //  of an earlier start's epoch would pass for a prefix of the
            //  new history.
            ZM_FUZZ_CHECK(entry->epoch == 0);
            ZM_FUZZ_CHECK(set->epoch > entry->highest);
            entry->epoch = set->epoch;
            if (set->epoch > entry->highest)
                entry->highest = set->epoch;
            entry->last = set->last;
        }
    }
    for (size_t index = 0; index < S_SETS; index++)
        if (!seen[index])
            run->sets[index].epoch = run->sets[index].last = 0;
}

static void
s_step(s_run_t *run)
{
    uint8_t op = zm_fuzz_byte(&run->input);
    uint8_t peer = zm_fuzz_byte(&run->input) % S_PEERS;
    s_step_begin(run);
    switch (op % 16) {
    case 0: case 1: case 2: s_op_command(run, peer); break;
    case 3: s_op_reply(run, peer); break;
    case 4: s_op_raw(run, peer); break;
    case 5: case 6: s_op_clock(run); break;
    case 7: case 8: s_op_pipe(run, peer); break;
    case 9: s_op_plain_push(run); break;
    case 10: s_op_send_failed(run, peer); break;
    case 11: s_op_connection(run, peer); break;
    default: s_op_repl(run, peer); break;
    }
    s_drain(run);
    s_step_end(run);
    s_check_workers(run->engine);
    s_check_services(run->engine);
    s_check_replsets(run->engine);
    s_check_pipelines(run->engine);
}

//  Jumps past every deadline: workers expire first, then their services'
//  grace runs out. Nothing may be left, and nothing lost.
static void
s_finish(s_run_t *run)
{
    for (int round = 0; round < 2; round++) {
        s_step_begin(run);
        run->now += S_DRAIN_MS;
        zm_engine_on_tick(run->engine, run->now);
        s_drain(run);
        s_step_end(run);
        s_check_workers(run->engine);
        s_check_services(run->engine);
        s_check_replsets(run->engine);
    }
    zm_proto_reset(&run->snapshot);
    zm_engine_t *engine = run->engine;
    ZM_FUZZ_CHECK(zhashx_size(engine->workers) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->calls) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->services) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->garbage) == 0);
    //  Every CALL taken was answered once: by its worker, a write by its
    //  replicas (after a quorum of them applied it, or 408 at its deadline,
    //  or 502 when its set stopped), or with a reason. rejected_busy also
    //  counts READYs and JOINs refused: the 503 REPLYs are counted here.
    const zm_counters_t *c = &engine->counters;
    ZM_FUZZ_CHECK(c->rejected_busy >= run->busy_replies);
    //  A repeated CALL is counted in calls and answered by its original.
    ZM_FUZZ_CHECK(c->calls == c->replies + c->handler_errors + run->busy_replies
                                  + c->rejected_no_service + c->expired + c->worker_lost
                                  + c->duplicate_calls);
    ZM_FUZZ_CHECK(c->writes + c->quorum_reads <= c->calls);
    ZM_FUZZ_CHECK(zhashx_size(engine->unanswered) == 0);
    ZM_FUZZ_CHECK(run->progress_out <= c->progress);
    //  No consumer is left; every message taken was acknowledged, given up,
    //  or still waits in its pipeline (they wait without a deadline).
    ZM_FUZZ_CHECK(zhashx_size(engine->consumers) == 0 && zhashx_size(engine->links) == 0);
    size_t held = 0;
    for (zm_pipeline_t *pipeline = zhashx_first(engine->pipelines); pipeline;
         pipeline = zhashx_next(engine->pipelines))
        held += pipeline->held;
    ZM_FUZZ_CHECK(c->pushes_accepted == c->acks + c->dropped_poison + held);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    zm_fuzz_quiet();
    s_make_keyring();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_run_t run;
    memset(&run, 0, sizeof run);
    zm_fuzz_cursor_init(&run.input, data, size);
    s_configure(&run.config, &run.input);
    run.now = S_T0;
    run.engine = zm_engine_new(&run.config, run.now);
    run.secure = s_secure_run(&run.input);
    if (run.secure)
        zm_engine_set_keyring(run.engine, s_keyring);
    for (int steps = 0; steps < S_STEPS_MAX && zm_fuzz_left(&run.input) > 0; steps++)
        s_step(&run);
    s_finish(&run);
    zm_engine_destroy(&run.engine);
    return 0;
}
