//  fuzz_engine - fuzzes the broker's routing logic (broker/engine.c with its
//  services, worker sessions and calls, and engine_pipe.c with its pipelines,
//  producer links and consumer sessions) as broker.c drives it, without
//  sockets. The input is two config bytes, then a script of operations:
//  a well-formed command from one of four peers (routing ids 0 to 3) built
//  from a few field bytes, a REPLY to a ticket the broker handed out, raw
//  frames, a clock step with or without a tick, and a failed send. After
//  each one the outbox is drained and every message in it must go to a peer
//  that spoke, decode under the broker's own limits, and be a command the
//  broker may send (tickets only grow); and the engine's bookkeeping must
//  add up (slots, calls in flight, queues, ready lists; no call waits while
//  its service has a free slot). At the end the clock jumps past every
//  heartbeat, grace period and window: then no worker, call, service or
//  offender may be left, and every CALL the broker took must have been
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
#define S_COUNT(array) (sizeof(array) / sizeof((array)[0]))

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
    uint64_t busy_readies;              //  READYs refused 503: counted as rejected_busy too
    uint64_t progress_out;              //  PROGRESS forwarded to callers
    uint64_t messages[S_TICKETS];       //  recent DELIVER message ids, a ring
    uint8_t receivers[S_TICKETS];       //  the consumer each went to
    size_t next_message;
    uint64_t seqs[S_PEERS];             //  next PUSH seq of each peer
    bool secure;                        //  the engine checks keys
    uint8_t shift[S_PEERS];             //  which key each peer speaks with now
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
        break;
    case ZM_CMD_DISCONNECT:
        ZM_FUZZ_CHECK(s_known_status(command.status));
        if (command.status == ZM_STATUS_BUSY)
            run->busy_readies++;
        break;
    case ZM_CMD_REQUEST:
        ZM_FUZZ_CHECK(command.id > run->last_ticket);
        ZM_FUZZ_CHECK(strncmp(command.service, "zmesh.", 6) != 0);
        run->last_ticket = command.id;
        run->tickets[run->next_slot] = command.id;
        run->holders[run->next_slot] = peer;
        run->next_slot = (run->next_slot + 1) % S_TICKETS;
        break;
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
        ZM_FUZZ_CHECK((worker->ready_handle != NULL) == free_slot);
        ZM_FUZZ_CHECK(zhashx_lookup(engine->services, worker->service->name) == worker->service);
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
        ZM_FUZZ_CHECK(zm_service_queued(service) == 0 || ready == 0);
    }
    ZM_FUZZ_CHECK(zhashx_size(engine->services) <= engine->config.max_services);
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
    if (!(step & 0x80))                             //  else time passes with no tick
        zm_engine_on_tick(run->engine, run->now);
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

static void
s_step(s_run_t *run)
{
    uint8_t op = zm_fuzz_byte(&run->input);
    uint8_t peer = zm_fuzz_byte(&run->input) % S_PEERS;
    switch (op % 12) {
    case 0: case 1: case 2: s_op_command(run, peer); break;
    case 3: s_op_reply(run, peer); break;
    case 4: s_op_raw(run, peer); break;
    case 5: case 6: s_op_clock(run); break;
    case 7: case 8: s_op_pipe(run, peer); break;
    case 9: s_op_plain_push(run); break;
    case 11: s_op_connection(run, peer); break;
    default: s_op_send_failed(run, peer); break;
    }
    s_drain(run);
    s_check_workers(run->engine);
    s_check_services(run->engine);
    s_check_pipelines(run->engine);
}

//  Jumps past every deadline: workers expire first, then their services'
//  grace runs out. Nothing may be left, and nothing lost.
static void
s_finish(s_run_t *run)
{
    for (int round = 0; round < 2; round++) {
        run->now += S_DRAIN_MS;
        zm_engine_on_tick(run->engine, run->now);
        s_drain(run);
    }
    zm_engine_t *engine = run->engine;
    ZM_FUZZ_CHECK(zhashx_size(engine->workers) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->calls) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->services) == 0);
    ZM_FUZZ_CHECK(zhashx_size(engine->garbage) == 0);
    //  Every CALL taken was answered once: by its worker, or with a reason.
    const zm_counters_t *c = &engine->counters;
    ZM_FUZZ_CHECK(c->rejected_busy >= run->busy_readies);
    //  A repeated CALL is counted in calls and answered by its original.
    ZM_FUZZ_CHECK(c->calls == c->replies + c->handler_errors + c->rejected_busy - run->busy_readies
                                  + c->rejected_no_service + c->expired + c->worker_lost
                                  + c->duplicate_calls);
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
