//  engine_repl - replicated services (ZMP.md section 20). Replicas JOIN a
//  service with their last (epoch, seq); once enough have joined the broker
//  picks the reference state, starts an epoch of its own and gives every
//  write the next sequence number. A write goes to every live replica in
//  order and is answered once W of them applied it. A replica that is
//  behind gets the writes it misses from the buffer, or a snapshot of a
//  current replica relayed chunk by chunk, then the writes after it. Reads
//  go to one current replica through the normal dispatch (REQUEST/REPLY),
//  quorum reads through the write path. The data structures are replset.c.
#include "engine_internal.h"

#include "zm_alloc.h"
#include "zm_log.h"

//  Epochs and sequence numbers a JOIN may report: below 2^63, so that the
//  ones the broker gives after them never wrap.
#define ZM_REPL_BOUND (1ull << 63)

static zm_replset_t *
s_set_of(zm_worker_t *worker)
{
    return worker->service->replset;
}

//  Sends write to member.
static void
s_send_write(zm_engine_t *self, zm_replset_t *set, zm_member_t *member, zm_write_t *write)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_WRITE;
    command.epoch = set->epoch;
    command.seq = write->seq;
    command.id = write->write_id;
    command.kind = write->kind;
    command.body = zframe_dup(write->body);
    zm_engine_send(self, member->worker->routing, &command);
    member->sent = write->seq;
}

static void s_catch_up(zm_engine_t *self, zm_replset_t *set, zm_member_t *member);

//  Sends a live member the writes it has not been sent, from the buffer, as
//  far as its window allows: a replica far behind is fed as it applies, so
//  neither its queue in the broker nor the buffer's hold on it grows. One
//  the buffer no longer serves gets a snapshot.
static void
s_pump(zm_engine_t *self, zm_replset_t *set, zm_member_t *member)
{
    while (member->live && member->sent < set->last
           && member->sent - member->applied < ZM_REPLSET_WINDOW) {
        zm_write_t *write = zm_replset_write(set, member->sent + 1);
        if (!write) {
            s_catch_up(self, set, member);
            return;
        }
        s_send_write(self, set, member, write);
    }
}

//  Member holds the state at seq: it is sent what follows, through its window.
static void
s_send_after(zm_engine_t *self, zm_replset_t *set, zm_member_t *member, uint64_t seq)
{
    member->applied = member->sent = seq;
    s_pump(self, set, member);
}

//  True if the writes after seq are all in the buffer (or there are none).
static bool
s_buffer_has_after(const zm_replset_t *set, uint64_t seq)
{
    return seq == set->last || (seq < set->last && zm_replset_write(set, seq + 1));
}

//  True if a replica at seq is best brought up from the buffer: it holds
//  what follows, and not so much of it that a snapshot is cheaper.
static bool
s_resend_fits(const zm_replset_t *set, uint64_t seq)
{
    return s_buffer_has_after(set, seq) && set->last - seq <= ZM_REPLSET_RESEND_MAX;
}

//  True if a replica at (epoch, seq) holds a prefix of this set's history:
//  a state of this epoch (one broker start gives each seq once), or the
//  state the set started from.
static bool
s_is_prefix(const zm_replset_t *set, uint64_t epoch, uint64_t seq)
{
    return (epoch == set->epoch && seq >= set->ref_seq && seq <= set->last)
           || (epoch == set->ref_epoch && seq == set->ref_seq);
}

static void s_ask_snapshot(zm_engine_t *self, zm_replset_t *set, zm_member_t *member);
static void s_deactivate(zm_engine_t *self, zm_service_t *service, zm_replset_t *set,
                         int64_t now);

//  True while the set has a current member, or a live one that becomes
//  current once it applied what it was sent: someone holds every write.
static bool
s_can_go_on(zm_replset_t *set)
{
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        if (member->state == ZM_MEMBER_CURRENT || member->live)
            return true;
    return false;
}

//  Copies the members into list (ZM_REPLSET_MEMBERS_MAX entries): the
//  member list has one cursor, and what a loop does may walk it again.
static size_t
s_members(zm_replset_t *set, zm_member_t **list)
{
    size_t count = 0;
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        list[count++] = member;
    return count;
}

//  Asks a donor for each member that waits for one.
static void
s_find_donors(zm_engine_t *self, zm_replset_t *set)
{
    zm_member_t *list[ZM_REPLSET_MEMBERS_MAX];
    size_t count = s_members(set, list);
    for (size_t index = 0; index < count; index++)
        if (list[index]->state == ZM_MEMBER_CATCHING && !list[index]->live
            && !list[index]->donor)
            s_ask_snapshot(self, set, list[index]);
}

static void s_answer(zm_engine_t *self, zm_replset_t *set, zm_write_t *write);

//  Takes the call of write, which a quorum now holds: it is committed.
static zm_call_t *
s_take_call(zm_replset_t *set, zm_write_t *write)
{
    zm_call_t *call = write->call;
    write->call = NULL;
    set->unanswered--;
    if (write->seq > set->committed)
        set->committed = write->seq;
    return call;
}

//  A quorum holds write, but no replica's answer to it reached the broker
//  (they all joined again since): the client is told to resend it with the
//  same request id, which the replicas answer with their first answer.
static void
s_answer_unknown(zm_engine_t *self, zm_replset_t *set, zm_write_t *write)
{
    zm_call_t *call = s_take_call(set, write);
    zm_engine_reply_error(self, call->client, call->request_id, ZM_STATUS_WORKER_LOST,
                          "a quorum of replicas applied the write but its answer was lost; "
                          "resend it with the same request id for the answer");
    self->counters.worker_lost++;
    zm_engine_settle(self, call);
    zm_call_destroy(&call);
}

//  Counts member's acknowledgement of the writes still waiting up to its
//  holds mark: it holds them though it never applied them in this session
//  (its snapshot or its stored state has them), and may count for them.
static void
s_credit_held(zm_engine_t *self, zm_replset_t *set, zm_member_t *member)
{
    uint64_t upto = member->holds;
    member->holds = 0;
    if (set->unanswered == 0)
        return;
    for (uint64_t seq = set->first; seq <= upto && seq <= set->last; seq++) {
        zm_write_t *write = zm_replset_write(set, seq);
        if (!write->call)
            continue;
        write->acked_by |= 1ull << member->slot;
        if (zm_replset_acks(write) < zm_replset_quorum(set))
            continue;
        if (write->replied)
            s_answer(self, set, write);
        else
            s_answer_unknown(self, set, write);
    }
}

//  The member has every write up to a recent one: it serves reads.
static void
s_make_current(zm_engine_t *self, zm_replset_t *set, zm_member_t *member, int64_t now)
{
    member->state = ZM_MEMBER_CURRENT;
    member->token = 0;
    member->donor = NULL;
    member->relaying = false;
    zm_worker_t *worker = member->worker;
    worker->withheld = false;
    zm_service_requeue_worker(worker->service, worker, false);
    zm_log_info("broker: replica current id=%s service=%s seq=%" PRIu64, worker->id,
                worker->service->name, member->applied);
    s_find_donors(self, set);               //  a donor for those that waited for one
    (void) now;
}

//  Member is no longer current: it serves no reads, and those that waited
//  for its snapshot ask another donor (a current one: only its state is
//  known to follow on the buffer).
static void
s_leave_current(zm_engine_t *self, zm_replset_t *set, zm_member_t *member)
{
    bool was_current = member->state == ZM_MEMBER_CURRENT;
    member->state = ZM_MEMBER_CATCHING;
    member->worker->withheld = true;
    zm_service_requeue_worker(member->worker->service, member->worker, false);
    if (!was_current)
        return;
    zm_member_t *list[ZM_REPLSET_MEMBERS_MAX];
    size_t count = s_members(set, list);
    for (size_t index = 0; index < count; index++)
        if (list[index]->donor == member && !list[index]->live) {
            list[index]->donor = NULL;
            list[index]->token = 0;
        }
    s_find_donors(self, set);
}

//  Takes member out of the readers and the writes' receivers while it waits.
static void
s_withhold(zm_member_t *member)
{
    member->live = false;
    member->relaying = false;
    member->worker->withheld = true;
    zm_service_requeue_worker(member->worker->service, member->worker, false);
}

//  Asks the current member with the fewest reads in hand for a snapshot
//  for member; with none current, member waits for one.
static void
s_ask_snapshot(zm_engine_t *self, zm_replset_t *set, zm_member_t *member)
{
    zm_member_t *donor = NULL;
    zm_member_t *before = NULL;                 //  one that did not answer: the last choice
    for (zm_member_t *other = zlistx_first(set->members); other;
         other = zlistx_next(set->members)) {
        if (other == member || other->state != ZM_MEMBER_CURRENT)
            continue;
        //  The most recent state first (a snapshot behind the joiner's own would take
        //  it back), then the one with the fewest reads in hand.
        if (other == member->donor)
            before = other;
        else if (!donor || other->applied > donor->applied
                 || (other->applied == donor->applied
                     && zlistx_size(other->worker->inflight)
                            < zlistx_size(donor->worker->inflight)))
            donor = other;
    }
    if (!donor)
        donor = before;
    member->donor = donor;
    member->token = 0;
    member->relaying = false;
    member->waiting_since = 0;
    if (!donor)
        return;
    member->token = ++set->next_token;
    set->catchups++;
    self->counters.catchups++;
    zm_proto_t sync;
    zm_proto_init(&sync);
    sync.cmd = ZM_CMD_SYNC;
    sync.id = member->token;
    zm_engine_send(self, donor->worker->routing, &sync);
    zm_log_info("broker: replica catching up id=%s service=%s from=%s token=%" PRIu64,
                member->worker->id, member->worker->service->name, donor->worker->id,
                member->token);
}

//  Starts a snapshot catch-up for member.
static void
s_catch_up(zm_engine_t *self, zm_replset_t *set, zm_member_t *member)
{
    s_withhold(member);
    s_leave_current(self, set, member);         //  may have found it a donor already
    if (!member->token)
        s_ask_snapshot(self, set, member);
}

//  Brings member up to date: from the buffer when it holds a prefix of the
//  history and the buffer has what follows, else through a snapshot.
static void
s_bring_up(zm_engine_t *self, zm_replset_t *set, zm_member_t *member, uint64_t epoch,
           uint64_t seq, int64_t now)
{
    if (!s_is_prefix(set, epoch, seq) || !s_resend_fits(set, seq)) {
        s_catch_up(self, set, member);
        return;
    }
    member->applied = seq;
    member->live = true;
    member->token = 0;
    member->donor = NULL;
    if (epoch == set->epoch) {
        member->holds = seq;                    //  its JOIN or MISSING vouches for them
        s_credit_held(self, set, member);
    }
    s_send_after(self, set, member, seq);
    if (!member->live)
        return;                                 //  the buffer could not serve it after all
    if (seq == set->last)
        s_make_current(self, set, member, now);
    else {
        member->current_at = set->last;
        s_leave_current(self, set, member);
    }
}

//  Enough replicas joined: the set starts sequencing from the most recent
//  state among them, in an epoch no earlier broker start used.
static void
s_activate(zm_engine_t *self, zm_service_t *service, zm_replset_t *set, int64_t now)
{
    zm_member_t *ref = NULL;
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        if (!ref || member->joined_epoch > ref->joined_epoch
            || (member->joined_epoch == ref->joined_epoch
                && member->joined_seq > ref->joined_seq))
            ref = member;
    assert(ref);
    set->ref_epoch = ref->joined_epoch;
    set->ref_seq = ref->joined_seq;
    //  Past the reference, past the broker's start time, and past every epoch
    //  this broker gave before (a set that stopped and starts again).
    uint64_t epoch = set->ref_epoch + 1;
    if (epoch < self->config.epoch_base)
        epoch = self->config.epoch_base;
    if (epoch <= self->last_epoch)
        epoch = self->last_epoch + 1;
    //  A random step on top: two starts that see the same reference (the
    //  clock went back, say) still pick different epochs.
    epoch += self->config.epoch_salt % ZM_EPOCH_SALT_RANGE;
    set->epoch = self->last_epoch = epoch;
    set->last = set->committed = set->ref_seq;
    set->first = set->last + 1;
    zm_log_info("broker: replicated service started service=%s epoch=%" PRIu64 " seq=%" PRIu64
                " from=%s replicas=%u quorum=%u",
                service->name, set->epoch, set->last, ref->worker->id, set->replicas,
                zm_replset_quorum(set));
    //  The reference first: the others may need it as a donor.
    s_bring_up(self, set, ref, ref->joined_epoch, ref->joined_seq, now);
    zm_member_t *list[ZM_REPLSET_MEMBERS_MAX];
    size_t count = s_members(set, list);
    for (size_t index = 0; index < count; index++)
        if (list[index] != ref)
            s_bring_up(self, set, list[index], list[index]->joined_epoch,
                       list[index]->joined_seq, now);
}

void
zm_engine_repl_on_join(zm_engine_t *self, zframe_t **routing_p, const char *id,
                       zm_proto_t *command, int64_t now)
{
    if (zm_engine_refuse_reserved(self, *routing_p, id, command->service, "service", now))
        return;
    zm_service_t *service = zm_engine_service_require(self, command->service, now);
    if (!service) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_BUSY, "too many services");
        self->counters.rejected_busy++;
        return;
    }
    if (!service->replset && service->workers > 0) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED,
                             "the service has plain workers (READY): it is not replicated");
        self->counters.rejected_malformed++;
        return;
    }
    if (command->epoch >= ZM_REPL_BOUND || command->seq >= ZM_REPL_BOUND) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED,
                             "epoch and seq must be below 2^63");
        self->counters.rejected_malformed++;
        return;
    }
    if (!service->replset)
        service->replset = zm_replset_new(command->replicas, command->quorum);
    zm_replset_t *set = service->replset;
    if (set->replicas != command->replicas || set->quorum != command->quorum) {
        char reason[ZM_REASON_MAX + 1];
        snprintf(reason, sizeof reason,
                 "the service has replicas=%u quorum=%u; this JOIN says replicas=%u quorum=%u",
                 set->replicas, set->quorum, command->replicas, command->quorum);
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED, reason);
        self->counters.rejected_malformed++;
        return;
    }
    //  The same replica on a new connection (it heard nothing from the broker
    //  for a while): its old session ends, so that one replica is never
    //  counted twice.
    zm_member_t *old = NULL;
    for (zm_member_t *member = zlistx_first(set->members); member && command->id;
         member = zlistx_next(set->members))
        if (member->replica_id == command->id)
            old = member;
    if (old) {
        zm_log_notice("broker: replica rejoined on a new connection id=%s old=%s service=%s",
                      id, old->worker->id, service->name);
        self->counters.sessions_replaced++;
        zm_worker_on_event(old->worker, ZM_WORKER_DISCONNECT, now);
        set->replacing = true;                  //  not a reason to stop: it is back below
        zm_engine_retire_worker(self, old->worker, "replaced by its new session", now);
        set->replacing = false;
    }
    //  A replica is a worker session for reads: heartbeats, slots, REQUEST
    //  and REPLY, and its reads may run again elsewhere if it dies.
    zm_proto_t ready;
    zm_proto_init(&ready);
    ready.cmd = ZM_CMD_READY;
    ready.slots = ZM_REPLSET_READ_SLOTS;
    ready.heartbeat_ms = command->heartbeat_ms;
    ready.liveness = command->liveness;
    ready.flags = ZM_READY_IDEMPOTENT;
    zframe_t *routing = zframe_dup(*routing_p);
    zm_worker_t *worker = zm_worker_new(&routing, id, service, &ready, now);
    zm_member_t *member = zm_replset_add(set, worker, command->epoch, command->seq);
    if (!member) {
        zm_worker_destroy(&worker);
        char reason[ZM_REASON_MAX + 1];
        snprintf(reason, sizeof reason,
                 "the service has its %u replicas: this one may join when one leaves",
                 set->replicas);
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_BUSY, reason);
        self->counters.rejected_busy++;
        return;
    }
    member->replica_id = command->id;
    worker->member = member;
    worker->withheld = true;
    if (self->sender)
        worker->key = zm_strdup(self->sender->key);
    zhashx_insert(self->workers, id, worker);
    zm_liveness_sched_add(self->worker_beats, &worker->peer, worker);
    zm_service_attach(service, worker);
    zm_log_info("broker: replica joined id=%s service=%s epoch=%" PRIu64 " seq=%" PRIu64, id,
                service->name, command->epoch, command->seq);
    if (set->epoch) {
        s_bring_up(self, set, member, command->epoch, command->seq, now);
        if (!s_can_go_on(set)) {                //  it replaced the last current one, and
            s_deactivate(self, service, set, now);  //  needs a snapshot nobody can give
            return;
        }
    }
    else if (zlistx_size(set->members) >= zm_replset_start_count(set))
        s_activate(self, service, set, now);
    zm_engine_dispatch(self, service, now);
}

//  Answers the client of write with the first replica's reply.
static void
s_answer(zm_engine_t *self, zm_replset_t *set, zm_write_t *write)
{
    zm_call_t *call = s_take_call(set, write);
    zframe_t *body = write->reply ? zframe_dup(write->reply) : NULL;
    zm_engine_answer(self, call, write->status, &body);
    zm_call_destroy(&call);
}

static void
s_on_applied(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    zm_member_t *member = worker->member;
    zm_replset_t *set = s_set_of(worker);
    if (!member->live || command->epoch != set->epoch || command->seq <= member->applied) {
        //  From before a catch-up started over, or before this epoch: harmless.
        self->counters.stray_applied++;
        return;
    }
    if (command->seq != member->applied + 1 || command->seq > member->sent) {
        zm_engine_kick_worker(self, worker, "APPLIED out of sequence", now);
        return;
    }
    if (command->status != ZM_STATUS_OK && command->status != ZM_STATUS_HANDLER_ERROR) {
        zm_engine_kick_worker(self, worker, "an APPLIED status must be 200 or 500", now);
        return;
    }
    zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
    member->applied = command->seq;
    if (member->holds)
        s_credit_held(self, set, member);       //  it applied on top of what it held
    zm_write_t *write = zm_replset_write(set, command->seq);
    if (write && !write->replied) {
        write->replied = true;
        write->status = command->status;
        write->reply = command->body;
        command->body = NULL;
        set->bytes += zframe_size(write->reply);
    }
    else if (write
             && (write->status != command->status
                 || !zframe_eq(write->reply, command->body))) {
        self->counters.replica_divergence++;
        zm_log_warning("broker: replicas answered a write differently service=%s seq=%" PRIu64
                       " id=%s status=%u first=%u",
                       worker->service->name, command->seq, worker->id, command->status,
                       write->status);
    }
    if (write && write->call) {
        write->acked_by |= 1ull << member->slot;
        if (zm_replset_acks(write) >= zm_replset_quorum(set))
            s_answer(self, set, write);
    }
    if (member->state == ZM_MEMBER_CATCHING && member->applied >= member->current_at)
        s_make_current(self, set, member, now);
    s_pump(self, set, member);                  //  its window moved
}

//  The replica's state does not follow on what it was sent: it says where
//  it stands, and gets what follows or a snapshot.
static void
s_on_missing(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    zm_member_t *member = worker->member;
    zm_replset_t *set = s_set_of(worker);
    zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
    if (!set->epoch || member->state == ZM_MEMBER_JOINED)
        return;                 //  not sequencing yet: its JOIN said where it stands
    if (member->state == ZM_MEMBER_CATCHING && !member->live && member->token)
        return;                 //  a snapshot is on its way; it failed an older one
    zm_log_notice("broker: replica missing writes id=%s service=%s epoch=%" PRIu64
                  " seq=%" PRIu64 " last=%" PRIu64,
                  worker->id, worker->service->name, command->epoch, command->seq, set->last);
    self->counters.catchup_resends++;
    member->joined_epoch = command->epoch;
    member->joined_seq = command->seq;
    s_bring_up(self, set, member, command->epoch, command->seq, now);
    //  It was the last current replica and needs a snapshot nobody can give:
    //  the set starts again from what its replicas hold.
    if (!s_can_go_on(set))
        s_deactivate(self, worker->service, set, now);
}

//  A chunk of the snapshot a donor makes for a catching-up member: relayed
//  as it comes. After the last, the member gets the writes after it.
static void
s_on_snapshot(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    zm_replset_t *set = s_set_of(worker);
    zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
    zm_member_t *joiner = NULL;
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        if (member->token == command->id && member->donor == worker->member)
            joiner = member;
    if (!joiner || command->seq > set->last) {
        self->counters.stray_applied++;         //  its joiner left, or started over
        return;
    }
    if (joiner->joined_epoch == set->epoch && command->seq < joiner->joined_seq) {
        //  Behind what the joiner holds: installing it would take back writes
        //  it acknowledged. Asked again (the donor has moved on since).
        self->counters.stray_applied++;
        s_ask_snapshot(self, set, joiner);
        return;
    }
    joiner->relaying = true;
    joiner->waiting_since = 0;
    zm_proto_t chunk;
    zm_proto_init(&chunk);
    chunk.cmd = ZM_CMD_SNAPSHOT;
    chunk.id = command->id;
    chunk.epoch = command->epoch;
    chunk.seq = command->seq;
    chunk.index = command->index;
    chunk.more = command->more;
    chunk.body = command->body;
    command->body = NULL;
    zm_engine_send(self, joiner->worker->routing, &chunk);
    if (command->more)
        return;
    if (!s_buffer_has_after(set, command->seq)) {
        s_ask_snapshot(self, set, joiner);      //  the buffer moved on meanwhile
        return;
    }
    joiner->holds = command->seq;               //  counted once it proves the install
    joiner->live = true;
    joiner->relaying = false;
    joiner->token = 0;
    joiner->donor = NULL;
    joiner->current_at = set->last;
    s_send_after(self, set, joiner, command->seq);   //  sets applied
    if (joiner->applied >= joiner->current_at)
        s_make_current(self, set, joiner, now);
}

void
zm_engine_repl_on_member(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command,
                         int64_t now)
{
    zm_service_t *service = worker->service;   //  worker may be kicked: keep its service
    switch (command->cmd) {
    case ZM_CMD_APPLIED:
        s_on_applied(self, worker, command, now);
        break;
    case ZM_CMD_MISSING:
        s_on_missing(self, worker, command, now);
        break;
    case ZM_CMD_SNAPSHOT:
        s_on_snapshot(self, worker, command, now);
        break;
    default:
        return;
    }
    //  A replica that became current takes queued reads; answered writes made
    //  room in the buffer for queued ones.
    if (zm_service_queued(service) > 0)
        zm_engine_dispatch(self, service, now);
}

//  No current replica is left: nobody can be a donor, and the writes not
//  answered may be on no replica any more. The set stops, its waiting
//  writes are answered 502 (a retry with the same request id is safe), and
//  the remaining replicas are asked to join again with where they stand
//  now, as after a broker restart.
static void
s_deactivate(zm_engine_t *self, zm_service_t *service, zm_replset_t *set, int64_t now)
{
    zm_log_warning("broker: replicated service stopped: no current replica service=%s "
                   "epoch=%" PRIu64 " seq=%" PRIu64,
                   service->name, set->epoch, set->last);
    zlistx_t *orphans = zlistx_new();
    zm_replset_clear(set, orphans);
    for (zm_call_t *call = zlistx_first(orphans); call; call = zlistx_next(orphans)) {
        zm_engine_reply_error(self, call->client, call->request_id, ZM_STATUS_WORKER_LOST,
                              "the replicas holding the write were lost; retry it with the "
                              "same request id");
        self->counters.worker_lost++;
        zm_engine_settle(self, call);
        zm_call_destroy(&call);
    }
    zlistx_destroy(&orphans);
    set->epoch = 0;
    zlistx_t *rest = zlistx_new();              //  borrowed workers
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        zlistx_add_end(rest, member->worker);
    for (zm_worker_t *worker = zlistx_first(rest); worker; worker = zlistx_next(rest)) {
        zm_engine_disconnect(self, worker->routing, ZM_STATUS_BUSY,
                             "the replicated service restarts: join again");
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        zm_engine_retire_worker(self, worker, "replica set restarts", now);
    }
    zlistx_destroy(&rest);
}

void
zm_engine_repl_forget(zm_engine_t *self, zm_worker_t *worker, int64_t now)
{
    zm_member_t *member = worker->member;
    zm_service_t *service = worker->service;
    zm_replset_t *set = service->replset;
    worker->member = NULL;
    zm_replset_remove(set, member);             //  frees member
    if (!set->epoch || set->replacing)
        return;
    if (!s_can_go_on(set)) {
        s_deactivate(self, service, set, now);
        return;
    }
    s_find_donors(self, set);               //  those whose donor it was ask another
}

//  Sequences the write or quorum read call (taken) and sends it to every
//  live replica.
static void
s_sequence(zm_engine_t *self, zm_replset_t *set, zm_call_t *call)
{
    uint32_t kind = (call->flags & ZM_CALL_WRITE) ? ZM_WRITE_KIND_WRITE
                                                   : ZM_WRITE_KIND_QUORUM_READ;
    if (kind == ZM_WRITE_KIND_WRITE)
        self->counters.writes++;
    else
        self->counters.quorum_reads++;
    call->sequenced = true;
    zm_write_t *write = zm_replset_append(set, call, kind);
    for (zm_member_t *member = zlistx_first(set->members); member;
         member = zlistx_next(set->members))
        if (member->live && member->sent + 1 == write->seq
            && member->sent - member->applied < ZM_REPLSET_WINDOW)
            s_send_write(self, set, member, write);     //  the others get it by s_pump
}

void
zm_engine_repl_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now)
{
    zm_replset_t *set = service->replset;
    zm_call_t *call;
    while ((call = zlistx_first(service->queue))) {
        if (call->deadline && now >= call->deadline) {
            call = zm_service_dequeue(service);
            zm_engine_reply_error(self, call->client, call->request_id, ZM_STATUS_EXPIRED,
                                  "the call's timeout passed before a replica took it");
            self->counters.expired++;
            zm_engine_settle(self, call);
            zm_call_destroy(&call);
            continue;
        }
        if (call->flags & (ZM_CALL_WRITE | ZM_CALL_QUORUM)) {
            if (!set->epoch || !zm_replset_room(set, zframe_size(call->body)))
                return;         //  in order: what comes after waits too
            s_sequence(self, set, zm_service_dequeue(service));
            continue;
        }
        zm_worker_t *worker = zm_service_next_worker(service);
        if (!worker)
            return;
        zm_engine_send_call(self, service, zm_service_dequeue(service), worker, now);
    }
}

//  True if a current member other than member's donor could give it a snapshot.
static bool
s_other_donor(zm_replset_t *set, zm_member_t *member)
{
    for (zm_member_t *other = zlistx_first(set->members); other;
         other = zlistx_next(set->members))
        if (other != member && other != member->donor && other->state == ZM_MEMBER_CURRENT)
            return true;
    return false;
}

//  Members that wait for a snapshot: a donor silent for ZM_REPLSET_SYNC_MS
//  (stopped, or too slow) is replaced by another, if there is one.
static void
s_tick_catch_ups(zm_engine_t *self, zm_replset_t *set, int64_t now)
{
    zm_member_t *list[ZM_REPLSET_MEMBERS_MAX];
    size_t count = s_members(set, list);
    for (size_t index = 0; index < count; index++) {
        zm_member_t *member = list[index];
        if (!member->token || member->live)
            continue;
        if (!member->waiting_since)
            member->waiting_since = now;
        else if (now - member->waiting_since >= ZM_REPLSET_SYNC_MS && !s_other_donor(set, member))
            member->waiting_since = now;        //  no other to ask: its donor may be busy
                                                //  with another joiner's snapshot; wait on
        else if (now - member->waiting_since >= ZM_REPLSET_SYNC_MS) {
            zm_log_notice("broker: snapshot late, asking again id=%s service=%s donor=%s",
                          member->worker->id, member->worker->service->name,
                          member->donor ? member->donor->worker->id : "none");
            s_ask_snapshot(self, set, member);
        }
    }
}

void
zm_engine_repl_tick(zm_engine_t *self, zm_service_t *service, int64_t now)
{
    zm_replset_t *set = service->replset;
    if (set->epoch)
        s_tick_catch_ups(self, set, now);
    if (set->unanswered == 0)
        return;
    for (uint64_t seq = set->first; seq <= set->last; seq++) {
        zm_write_t *write = zm_replset_write(set, seq);
        zm_call_t *call = write->call;
        if (!call || !call->deadline || now < call->deadline)
            continue;
        zm_engine_reply_error(self, call->client, call->request_id, ZM_STATUS_EXPIRED,
                              "the call's timeout passed before a quorum of replicas applied "
                              "it; it may still apply: retry with the same request id");
        self->counters.expired++;
        zm_engine_settle(self, call);
        zm_call_destroy(&write->call);
        set->unanswered--;
    }
}
