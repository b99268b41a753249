//  test_proto_repl.c - unit tests of the codec's replication commands
//  (ZMP.md section 20): JOIN WRITE APPLIED MISSING SYNC SNAPSHOT encode and
//  decode back with all their fields; every range edge is accepted and the
//  value just past it refused with 400 (replicas 1..16, quorum 0..replicas,
//  seq from 1 but for JOIN and MISSING, kind and more 0..1, tokens from 1);
//  wrong field and frame counts are refused; the bodies of WRITE and
//  APPLIED obey the limits like any other, while a SNAPSHOT chunk has its
//  own bound (ZM_SNAPSHOT_CHUNK bytes as a bin) whatever max_body says; a
//  refusal tells whether the write id or token was read; and one header per
//  command is compared byte for byte with one written by hand from the
//  spec's grammar. After each refusal a good message still decodes into the
//  same struct. No sockets, no sleeps; a fixture owns every allocation.

#include "proto_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The largest SNAPSHOT body: a bin 32 head and ZM_SNAPSHOT_CHUNK bytes.
#define S_CHUNK_BODY (ZM_SNAPSHOT_CHUNK + 5)

//  Builds the good header of cmd in fx->pack: write id and token 7.
static void
s_good_header(zt_proto_fixture_t *fx, zm_cmd_t cmd)
{
    switch (cmd) {
    case ZM_CMD_JOIN:
        zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(3), U(0), U(5), U(9));
        break;
    case ZM_CMD_WRITE:
        zt_proto_header(fx, "WRITE", "uuuu", U(5), U(10), U(7), U(0));
        break;
    case ZM_CMD_APPLIED:
        zt_proto_header(fx, "APPLIED", "uuu", U(5), U(10), U(200));
        break;
    case ZM_CMD_MISSING:
        zt_proto_header(fx, "MISSING", "uu", U(5), U(9));
        break;
    case ZM_CMD_SYNC:
        zt_proto_header(fx, "SYNC", "u", U(7));
        break;
    default:
        zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(7), U(5), U(9), U(0), U(0));
        break;
    }
}

//  A good message of cmd decodes.
static void
s_good(zt_proto_fixture_t *fx, zm_cmd_t cmd)
{
    s_good_header(fx, cmd);
    zt_proto_message(fx, zt_proto_has_body(cmd) ? 1 : 0, "\xc4\x01" "x", 3);
    zt_proto_accept(fx, &zt_proto_checked, zm_proto_cmd_name(cmd));
    assert_int_equal(fx->self.cmd, cmd);
    assert_true(zt_proto_has_body(cmd) ? fx->self.body != NULL : fx->self.body == NULL);
}

//  fx->pack with `bodies` nil bodies must be refused 400, with id 7 when
//  have_id; the good message of cmd decodes after.
static void
s_expect_400(zt_proto_fixture_t *fx, zm_cmd_t cmd, int bodies, const char *label, bool have_id)
{
    zt_proto_message(fx, bodies, "\xc0", 1);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, label, cmd, ZM_STATUS_MALFORMED, have_id, 7);
    s_good(fx, cmd);
}

static void
s_assert_body(const zm_proto_t *self, const char *expected, size_t size)
{
    assert_non_null(self->body);
    assert_int_equal(zframe_size(self->body), size);
    assert_memory_equal(zframe_data(self->body), expected, size);
}

//  ---------------------------------------------------------------------
//  Round trips

static void
test_proto_repl_round_trips_join(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const struct {
        const char *service;
        uint32_t heartbeat_ms, liveness, replicas, quorum;
        uint64_t epoch, seq;
    } cases[] = {
        {"kv", 1000, 3, 3, 0, 0, 0},                //  an empty replica, majority quorum
        {"kv", 100, 2, 1, 1, 1, 1},
        {"a.b", 60000, 100, ZM_REPLICAS_MAX, ZM_REPLICAS_MAX, UINT64_MAX, UINT64_MAX},
        {"~", 250, 5, 5, 3, (uint64_t) 1 << 41, 12345678901ull},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        fx->in.cmd = ZM_CMD_JOIN;
        strcpy(fx->in.service, cases[index].service);
        fx->in.heartbeat_ms = cases[index].heartbeat_ms;
        fx->in.liveness = cases[index].liveness;
        fx->in.replicas = cases[index].replicas;
        fx->in.quorum = cases[index].quorum;
        fx->in.epoch = cases[index].epoch;
        fx->in.seq = cases[index].seq;
        fx->in.body = zframe_new("\xc0", 1);    //  stray body: encode drops and frees it
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 9);
        assert_string_equal(fx->self.service, cases[index].service);
        assert_int_equal(fx->self.heartbeat_ms, cases[index].heartbeat_ms);
        assert_int_equal(fx->self.liveness, cases[index].liveness);
        assert_int_equal(fx->self.replicas, cases[index].replicas);
        assert_int_equal(fx->self.quorum, cases[index].quorum);
        assert_true(fx->self.epoch == cases[index].epoch);
        assert_true(fx->self.seq == cases[index].seq);
        assert_int_equal(fx->self.id, 0);
    }
    //  The longest service name still fits the header.
    fx->in.cmd = ZM_CMD_JOIN;
    memset(fx->in.service, 'k', ZM_NAME_MAX);
    fx->in.service[ZM_NAME_MAX] = '\0';
    fx->in.heartbeat_ms = 1000;
    fx->in.liveness = 3;
    fx->in.replicas = ZM_REPLICAS_MAX;
    fx->in.epoch = UINT64_MAX;
    fx->in.seq = UINT64_MAX;
    uint8_t header[ZM_HEADER_MAX];
    zt_proto_round_trip(fx, header);
    assert_int_equal(strlen(fx->self.service), ZM_NAME_MAX);
}

//  {"op": "put", "k": 1}
#define S_PUT "\x82\xa2" "op" "\xa3" "put" "\xa1" "k" "\x01"

static void
test_proto_repl_round_trips_write(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const struct {
        uint64_t epoch, seq, id;
        uint32_t kind;
    } cases[] = {
        {0, 1, 0, ZM_WRITE_KIND_WRITE},
        {1700000000000ull, 42, 7, ZM_WRITE_KIND_QUORUM_READ},
        {UINT64_MAX, UINT64_MAX, UINT64_MAX, ZM_WRITE_KIND_WRITE},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        fx->in.cmd = ZM_CMD_WRITE;
        fx->in.epoch = cases[index].epoch;
        fx->in.seq = cases[index].seq;
        fx->in.id = cases[index].id;
        fx->in.kind = cases[index].kind;
        fx->in.body = zframe_new(BYTES(S_PUT));
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 6);
        assert_true(fx->self.epoch == cases[index].epoch);
        assert_true(fx->self.seq == cases[index].seq);
        assert_true(fx->self.id == cases[index].id);
        assert_int_equal(fx->self.kind, cases[index].kind);
        s_assert_body(&fx->self, BYTES(S_PUT));
        assert_string_equal(fx->self.service, "");
    }
    //  No body: encode sends nil.
    fx->in.cmd = ZM_CMD_WRITE;
    fx->in.seq = 1;
    uint8_t header[ZM_HEADER_MAX];
    zt_proto_round_trip(fx, header);
    s_assert_body(&fx->self, "\xc0", 1);
}

static void
test_proto_repl_round_trips_applied(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint32_t statuses[] = {ZM_STATUS_OK, ZM_STATUS_HANDLER_ERROR, 100, 999};
    for (size_t index = 0; index < COUNT(statuses); index++) {
        fx->in.cmd = ZM_CMD_APPLIED;
        fx->in.epoch = index;
        fx->in.seq = UINT64_MAX - index;
        fx->in.status = statuses[index];
        fx->in.body = zframe_new("\xa2" "ok", 3);
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 5);
        assert_int_equal(fx->self.epoch, index);
        assert_true(fx->self.seq == UINT64_MAX - index);
        assert_int_equal(fx->self.status, statuses[index]);
        s_assert_body(&fx->self, "\xa2" "ok", 3);
    }
    //  A handler that gave no reply: the body is nil.
    fx->in.cmd = ZM_CMD_APPLIED;
    fx->in.epoch = 1;
    fx->in.seq = 1;
    fx->in.status = ZM_STATUS_HANDLER_ERROR;
    uint8_t header[ZM_HEADER_MAX];
    zt_proto_round_trip(fx, header);
    s_assert_body(&fx->self, "\xc0", 1);
}

//  MISSING names the replica's last applied write, so seq 0 (nothing
//  applied yet) is valid; SYNC holds only its token.
static void
test_proto_repl_round_trips_missing_and_sync(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint64_t values[][2] = {{0, 0}, {5, 9}, {UINT64_MAX, UINT64_MAX}};
    for (size_t index = 0; index < COUNT(values); index++) {
        fx->in.cmd = ZM_CMD_MISSING;
        fx->in.epoch = values[index][0];
        fx->in.seq = values[index][1];
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 4);
        assert_true(fx->self.epoch == values[index][0]);
        assert_true(fx->self.seq == values[index][1]);
    }
    const uint64_t tokens[] = {1, 300, UINT64_MAX};
    for (size_t index = 0; index < COUNT(tokens); index++) {
        fx->in.cmd = ZM_CMD_SYNC;
        fx->in.id = tokens[index];
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 3);
        assert_true(fx->self.id == tokens[index]);
        assert_true(fx->self.epoch == 0 && fx->self.seq == 0);
    }
}

static void
test_proto_repl_round_trips_snapshot(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const struct {
        uint64_t token, epoch, seq;
        uint32_t index;
        bool more;
    } cases[] = {
        {1, 0, 1, 0, false},                        //  one chunk holds it all
        {2, 5, 9, 0, true},
        {2, 5, 9, 1, false},
        {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX, true},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        fx->in.cmd = ZM_CMD_SNAPSHOT;
        fx->in.id = cases[index].token;
        fx->in.epoch = cases[index].epoch;
        fx->in.seq = cases[index].seq;
        fx->in.index = cases[index].index;
        fx->in.more = cases[index].more;
        fx->in.body = zframe_new("\xc4\x03" "abc", 5);
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.fields, 7);
        assert_true(fx->self.id == cases[index].token);
        assert_true(fx->self.epoch == cases[index].epoch);
        assert_true(fx->self.seq == cases[index].seq);
        assert_int_equal(fx->self.index, cases[index].index);
        assert_int_equal(fx->self.more, cases[index].more);
        s_assert_body(&fx->self, "\xc4\x03" "abc", 5);
    }
    //  A whole chunk, ZM_SNAPSHOT_CHUNK bytes in a bin 32, goes through.
    fx->data = calloc(1, S_CHUNK_BODY);
    assert_non_null(fx->data);
    memcpy(fx->data, "\xc6\x00\x01\x00\x00", 5);
    fx->in.cmd = ZM_CMD_SNAPSHOT;
    fx->in.id = 3;
    fx->in.seq = 1;
    fx->in.body = zframe_new(fx->data, S_CHUNK_BODY);
    uint8_t header[ZM_HEADER_MAX];
    zt_proto_round_trip(fx, header);
    assert_int_equal(zframe_size(fx->self.body), S_CHUNK_BODY);
}

//  ---------------------------------------------------------------------
//  The spec's grammar, byte for byte

static void
test_proto_repl_headers_match_the_spec(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    //  join-header = array(signature, str("JOIN"), service, heartbeat-ms,
    //  liveness, replicas, quorum, epoch, seq) for "kv", 1000 (uint 16), 3,
    //  3 replicas, quorum 2, epoch 1700000000000 (uint 64), seq 42.
    static const char join[] = "\x99\xa4" "ZMP1" "\xa4" "JOIN" "\xa2" "kv" "\xcd\x03\xe8"
                               "\x03\x03\x02" "\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00" "\x2a";
    fx->in.cmd = ZM_CMD_JOIN;
    strcpy(fx->in.service, "kv");
    fx->in.heartbeat_ms = 1000;
    fx->in.liveness = 3;
    fx->in.replicas = 3;
    fx->in.quorum = 2;
    fx->in.epoch = 1700000000000ull;
    fx->in.seq = 42;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(join));

    //  write-header = array(signature, str("WRITE"), epoch, seq, write-id,
    //  kind) for epoch 5, seq 300 (uint 16), write id 2^32 (uint 64), quorum read.
    static const char write[] = "\x96\xa4" "ZMP1" "\xa5" "WRITE" "\x05\xcd\x01\x2c"
                                "\xcf\x00\x00\x00\x01\x00\x00\x00\x00" "\x01";
    fx->in.cmd = ZM_CMD_WRITE;
    fx->in.epoch = 5;
    fx->in.seq = 300;
    fx->in.id = (uint64_t) 1 << 32;
    fx->in.kind = ZM_WRITE_KIND_QUORUM_READ;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(write));

    //  applied-header = array(signature, str("APPLIED"), epoch, seq, status)
    //  for epoch 5, seq 300, status 500 (uint 16).
    static const char applied[] = "\x95\xa4" "ZMP1" "\xa7" "APPLIED" "\x05\xcd\x01\x2c"
                                  "\xcd\x01\xf4";
    fx->in.cmd = ZM_CMD_APPLIED;
    fx->in.epoch = 5;
    fx->in.seq = 300;
    fx->in.status = 500;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(applied));

    //  missing-header = array(signature, str("MISSING"), epoch, seq): 5, 0.
    static const char missing[] = "\x94\xa4" "ZMP1" "\xa7" "MISSING" "\x05\x00";
    fx->in.cmd = ZM_CMD_MISSING;
    fx->in.epoch = 5;
    fx->in.seq = 0;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(missing));

    //  sync-header = array(signature, str("SYNC"), token): token 1.
    static const char sync[] = "\x93\xa4" "ZMP1" "\xa4" "SYNC" "\x01";
    fx->in.cmd = ZM_CMD_SYNC;
    fx->in.id = 1;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(sync));

    //  snapshot-header = array(signature, str("SNAPSHOT"), token, epoch,
    //  seq, index, more) for token 1, epoch 5, seq 300, chunk 2, more 1.
    static const char snapshot[] = "\x97\xa4" "ZMP1" "\xa8" "SNAPSHOT" "\x01\x05\xcd\x01\x2c"
                                   "\x02\x01";
    fx->in.cmd = ZM_CMD_SNAPSHOT;
    fx->in.id = 1;
    fx->in.epoch = 5;
    fx->in.seq = 300;
    fx->in.index = 2;
    fx->in.more = true;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(snapshot));
}

//  Other packers use wider encodings than needed; every one is accepted.
static void
test_proto_repl_accepts_foreign_encodings(void **state)
{
    zt_proto_fixture_t *fx = *state;
    // clang-format off
    static const char join[] = "\xdc\x00\x09" "\xd9\x04" "ZMP1" "\xd9\x04" "JOIN"
                               "\xda\x00\x02" "kv" "\xd2\x00\x00\x03\xe8" "\xd0\x03"
                               "\xcf\x00\x00\x00\x00\x00\x00\x00\x03" "\xcc\x02"
                               "\xd3\x00\x00\x00\x00\x00\x00\x00\x05" "\xce\x00\x00\x00\x09";
    //  Signed integers that hold non-negative values, as some packers write them.
    static const char write[] = "\x96\xa4" "ZMP1" "\xa5" "WRITE" "\xd0\x05" "\xd1\x00\x0a"
                                "\xd2\x00\x00\x00\x07" "\xd3\x00\x00\x00\x00\x00\x00\x00\x01";
    static const char snapshot[] = "\x97\xa4" "ZMP1" "\xa8" "SNAPSHOT" "\xd0\x07" "\xd0\x05"
                                   "\xd0\x09" "\xd0\x00" "\xd0\x01";
    // clang-format on
    zmsg_destroy(&fx->msg);
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, "", 0);
    zmsg_addmem(fx->msg, join, sizeof join - 1);
    zt_proto_accept(fx, &zt_proto_checked, "wide join");
    assert_int_equal(fx->self.cmd, ZM_CMD_JOIN);
    assert_string_equal(fx->self.service, "kv");
    assert_int_equal(fx->self.heartbeat_ms, 1000);
    assert_int_equal(fx->self.liveness, 3);
    assert_int_equal(fx->self.replicas, 3);
    assert_int_equal(fx->self.quorum, 2);
    assert_int_equal(fx->self.epoch, 5);
    assert_int_equal(fx->self.seq, 9);

    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, "", 0);
    zmsg_addmem(fx->msg, write, sizeof write - 1);
    zmsg_addmem(fx->msg, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "write of ints");
    assert_int_equal(fx->self.epoch, 5);
    assert_int_equal(fx->self.seq, 10);
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.kind, 1);
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, "", 0);
    zmsg_addmem(fx->msg, snapshot, sizeof snapshot - 1);
    zmsg_addmem(fx->msg, "\xc4\x00", 2);
    zt_proto_accept(fx, &zt_proto_checked, "snapshot of ints");
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.seq, 9);
    assert_true(fx->self.more);
}

//  ---------------------------------------------------------------------
//  Range edges

static void
test_proto_repl_accepts_range_edges(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  quorum 0 (majority) to replicas, for every replicas 1..16.
    for (uint64_t replicas = 1; replicas <= ZM_REPLICAS_MAX; replicas++) {
        for (uint64_t quorum = 0; quorum <= replicas; quorum += replicas) {
            zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(100), U(2),
                            replicas, quorum, U(0), U(0));
            zt_proto_message(fx, 0, NULL, 0);
            zt_proto_accept(fx, &zt_proto_checked, "join edges");
            assert_int_equal(fx->self.replicas, replicas);
            assert_int_equal(fx->self.quorum, quorum);
        }
    }
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(60000), U(100), U(1), U(1), U(UINT64_MAX),
                    U(UINT64_MAX));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "join max");
    zt_proto_header(fx, "WRITE", "uuuu", U(0), U(1), U(0), U(0));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "write seq 1 id 0");
    zt_proto_header(fx, "APPLIED", "uuu", U(0), U(1), U(100));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "applied status 100");
    zt_proto_header(fx, "APPLIED", "uuu", U(0), U(1), U(999));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "applied status 999");
    zt_proto_header(fx, "MISSING", "uu", U(0), U(0));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "missing 0 0");
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(1), U(0), U(1), U(UINT32_MAX), U(1));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "snapshot max index");
    assert_int_equal(fx->self.index, UINT32_MAX);
    //  An empty replica's snapshot is at (0, 0).
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(1), U(0), U(0), U(0), U(0));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "snapshot of an empty state");
    assert_true(fx->self.seq == 0 && fx->self.epoch == 0);
    //  JOIN's optional tenth field, the replica's id.
    zt_proto_header(fx, "JOIN", "suuuuuuu", "kv", U(100), U(2), U(3), U(0), U(4), U(5),
                    U(UINT64_MAX));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "join with a replica id");
    assert_true(fx->self.id == UINT64_MAX && fx->self.seq == 5);
    zm_proto_t join;
    zm_proto_init(&join);
    join.cmd = ZM_CMD_JOIN;
    snprintf(join.service, sizeof join.service, "kv");
    join.heartbeat_ms = 100;
    join.liveness = 2;
    join.replicas = 3;
    join.id = 42;
    zmsg_t *msg = zm_proto_encode(&join);
    zm_proto_t back;
    zm_proto_init(&back);
    zm_proto_error_t error;
    assert_true(zm_proto_decode(&back, msg, NULL, &error));
    assert_int_equal(back.fields, 10);
    assert_true(back.id == 42);
    zmsg_destroy(&msg);
    join.id = 0;                    //  no id: the nine fields of before
    msg = zm_proto_encode(&join);
    assert_true(zm_proto_decode(&back, msg, NULL, &error));
    assert_int_equal(back.fields, 9);
    zm_proto_reset(&back);
    zmsg_destroy(&msg);
}

static void
test_proto_repl_rejects_out_of_range_fields(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  JOIN: nothing before its ranges is an id.
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(0), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "replicas 0", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(17), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "replicas 17", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(3), U(4), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "quorum over replicas", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(1), U(2), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "quorum 2 of 1", false);
    zt_proto_header(fx, "JOIN", "suuuiuu", "kv", U(1000), U(3), U(3), I(-1), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "quorum -1", false);
    zt_proto_header(fx, "JOIN", "suuiuuu", "kv", U(1000), U(3), I(-3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "replicas -3", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(99), U(3), U(3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "heartbeat 99", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(60001), U(3), U(3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "heartbeat 60001", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(1), U(3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "liveness 1", false);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(101), U(3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "liveness 101", false);
    zt_proto_header(fx, "JOIN", "suuuuiu", "kv", U(1000), U(3), U(3), U(0), I(-1), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "epoch -1", false);
    zt_proto_header(fx, "JOIN", "suuuuun", "kv", U(1000), U(3), U(3), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "seq nil", false);
    zt_proto_header(fx, "JOIN", "suuuuus", "kv", U(1000), U(3), U(3), U(0), U(0), "9");
    s_expect_400(fx, ZM_CMD_JOIN, 0, "seq a str", false);
    const char *names[] = {"", "k v", "caf\xc3\xa9"};
    for (size_t index = 0; index < COUNT(names); index++) {
        zt_proto_header(fx, "JOIN", "suuuuuu", names[index], U(1000), U(3), U(3), U(0), U(0), U(0));
        s_expect_400(fx, ZM_CMD_JOIN, 0, "join name", false);
    }
    zt_proto_header(fx, "JOIN", "uuuuuuu", U(1), U(1000), U(3), U(3), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "join name a uint", false);

    //  WRITE: the write id comes after epoch and seq.
    zt_proto_header(fx, "WRITE", "uuuu", U(5), U(0), U(7), U(0));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write seq 0", false);
    zt_proto_header(fx, "WRITE", "iuuu", I(-5), U(1), U(7), U(0));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write epoch -5", false);
    zt_proto_header(fx, "WRITE", "uuiu", U(5), U(1), I(-7), U(0));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write id -7", false);
    zt_proto_header(fx, "WRITE", "uunu", U(5), U(1), U(0));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write id nil", false);
    zt_proto_header(fx, "WRITE", "uuuu", U(5), U(1), U(7), U(2));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "kind 2", true);
    zt_proto_header(fx, "WRITE", "uuuu", U(5), U(1), U(7), U((uint64_t) UINT32_MAX + 1));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "kind 2^32", true);
    zt_proto_header(fx, "WRITE", "uuub", U(5), U(1), U(7));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "kind true", true);

    //  APPLIED.
    zt_proto_header(fx, "APPLIED", "uuu", U(5), U(0), U(200));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied seq 0", false);
    zt_proto_header(fx, "APPLIED", "uuu", U(5), U(1), U(99));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied status 99", false);
    zt_proto_header(fx, "APPLIED", "uuu", U(5), U(1), U(1000));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied status 1000", false);
    zt_proto_header(fx, "APPLIED", "usu", U(5), "1", U(200));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied seq a str", false);

    //  MISSING: seq 0 is fine, a negative one is not.
    zt_proto_header(fx, "MISSING", "ui", U(5), I(-1));
    s_expect_400(fx, ZM_CMD_MISSING, 0, "missing seq -1", false);
    zt_proto_header(fx, "MISSING", "nu", U(0));
    s_expect_400(fx, ZM_CMD_MISSING, 0, "missing epoch nil", false);

    //  SYNC and SNAPSHOT: the token, from 1, comes first.
    zt_proto_header(fx, "SYNC", "u", U(0));
    s_expect_400(fx, ZM_CMD_SYNC, 0, "sync token 0", false);
    zt_proto_header(fx, "SYNC", "i", I(-1));
    s_expect_400(fx, ZM_CMD_SYNC, 0, "sync token -1", false);
    zt_proto_header(fx, "SYNC", "s", "7");
    s_expect_400(fx, ZM_CMD_SYNC, 0, "sync token a str", false);
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(0), U(5), U(9), U(0), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "snapshot token 0", false);
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(7), U(5), U(9), U((uint64_t) UINT32_MAX + 1), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "snapshot index 2^32", true);
    zt_proto_header(fx, "SNAPSHOT", "uuuiu", U(7), U(5), U(9), I(-1), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "snapshot index -1", true);
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(7), U(5), U(9), U(0), U(2));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "more 2", true);
    zt_proto_header(fx, "SNAPSHOT", "uuuub", U(7), U(5), U(9), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "more true", true);
    zt_proto_header(fx, "SNAPSHOT", "uuuun", U(7), U(5), U(9), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "more nil", true);
}

//  ---------------------------------------------------------------------
//  Field and frame counts

static void
test_proto_repl_rejects_wrong_field_counts(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zt_proto_header(fx, "JOIN", "suuuuu", "kv", U(1000), U(3), U(3), U(0), U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "join without seq", false);
    zt_proto_header(fx, "JOIN", "suuuuuuuu", "kv", U(1000), U(3), U(3), U(0), U(0), U(0), U(9),
                    U(0));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "join with 11 fields", false);
    zt_proto_header(fx, "JOIN", "suuu", "kv", U(1000), U(3), U(1));
    s_expect_400(fx, ZM_CMD_JOIN, 0, "join as READY", false);
    zt_proto_header(fx, "WRITE", "uuu", U(5), U(1), U(7));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write without kind", false);
    zt_proto_header(fx, "WRITE", "uuuuu", U(5), U(1), U(7), U(0), U(0));
    s_expect_400(fx, ZM_CMD_WRITE, 1, "write with 7 fields", false);
    zt_proto_header(fx, "APPLIED", "uu", U(5), U(1));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied without status", false);
    zt_proto_header(fx, "APPLIED", "uuuu", U(5), U(1), U(200), U(0));
    s_expect_400(fx, ZM_CMD_APPLIED, 1, "applied with 6 fields", false);
    zt_proto_header(fx, "MISSING", "u", U(5));
    s_expect_400(fx, ZM_CMD_MISSING, 0, "missing without seq", false);
    zt_proto_header(fx, "MISSING", "uuu", U(5), U(1), U(1));
    s_expect_400(fx, ZM_CMD_MISSING, 0, "missing with 5 fields", false);
    zt_proto_header(fx, "SYNC", "");
    s_expect_400(fx, ZM_CMD_SYNC, 0, "sync without token", false);
    zt_proto_header(fx, "SYNC", "uu", U(7), U(5));
    s_expect_400(fx, ZM_CMD_SYNC, 0, "sync with 4 fields", false);
    zt_proto_header(fx, "SNAPSHOT", "uuuu", U(7), U(5), U(9), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "snapshot without more", false);
    zt_proto_header(fx, "SNAPSHOT", "uuuuuu", U(7), U(5), U(9), U(0), U(0), U(0));
    s_expect_400(fx, ZM_CMD_SNAPSHOT, 1, "snapshot with 8 fields", false);
    //  An array that claims more items than it holds.
    s_good_header(fx, ZM_CMD_MISSING);
    uint8_t header[64];
    size_t size = zmesh_pack_size(fx->pack);
    memcpy(header, zmesh_pack_data(fx->pack), size);
    header[0] = 0x95;                           //  5 items, 4 there
    zmsg_destroy(&fx->msg);
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, "", 0);
    zmsg_addmem(fx->msg, header, size);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "missing cut short", ZM_CMD_MISSING,
                        ZM_STATUS_MALFORMED, false, 0);
    //  And a byte after the array.
    header[0] = 0x94;
    header[size] = 0x00;
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, "", 0);
    zmsg_addmem(fx->msg, header, size + 1);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "missing and a byte", ZM_CMD_MISSING,
                        ZM_STATUS_MALFORMED, false, 0);
    s_good(fx, ZM_CMD_MISSING);
}

static void
test_proto_repl_rejects_wrong_frame_counts(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  With a body, but none or two: the id (write id, token) was read.
    const zm_cmd_t with_body[] = {ZM_CMD_WRITE, ZM_CMD_APPLIED, ZM_CMD_SNAPSHOT};
    for (size_t index = 0; index < COUNT(with_body); index++) {
        for (int bodies = 0; bodies <= 2; bodies += 2) {
            s_good_header(fx, with_body[index]);
            zt_proto_message(fx, bodies, "\xc0", 1);
            bool have_id = with_body[index] != ZM_CMD_APPLIED;
            zt_proto_refuse_cmd(fx, &zt_proto_checked, "frames", with_body[index],
                                ZM_STATUS_MALFORMED, have_id, 7);
            s_good(fx, with_body[index]);
        }
    }
    //  Without a body, with one.
    const zm_cmd_t without[] = {ZM_CMD_JOIN, ZM_CMD_MISSING, ZM_CMD_SYNC};
    for (size_t index = 0; index < COUNT(without); index++) {
        s_good_header(fx, without[index]);
        zt_proto_message(fx, 1, "\xc0", 1);
        zt_proto_refuse_cmd(fx, &zt_proto_checked, "body", without[index], ZM_STATUS_MALFORMED,
                            without[index] == ZM_CMD_SYNC, 7);
        s_good(fx, without[index]);
    }
    //  No delimiter in front.
    s_good_header(fx, ZM_CMD_JOIN);
    zmsg_destroy(&fx->msg);
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, zmesh_pack_data(fx->pack), zmesh_pack_size(fx->pack));
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "join without delimiter", 0, ZM_STATUS_MALFORMED,
                        false, 0);
}

//  ---------------------------------------------------------------------
//  Bodies

//  WRITE and APPLIED carry a call's body and a handler's reply: the limits
//  apply to them as to CALL and REPLY.
static void
test_proto_repl_checks_write_and_applied_bodies(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const zm_proto_limits_t small = {.max_body = 4, .check_body = true, .max_depth = 2};
    s_good_header(fx, ZM_CMD_WRITE);
    zt_proto_message(fx, 1, BYTES("\xa4" "abcd"));
    zt_proto_refuse_cmd(fx, &small, "write too big", ZM_CMD_WRITE, ZM_STATUS_TOO_BIG, true, 7);
    s_good_header(fx, ZM_CMD_WRITE);
    zt_proto_message(fx, 1, BYTES("\x91\x91\x91\x01"));
    zt_proto_refuse_cmd(fx, &small, "write too deep", ZM_CMD_WRITE, ZM_STATUS_MALFORMED, true, 7);
    s_good_header(fx, ZM_CMD_WRITE);
    zt_proto_message(fx, 1, BYTES("\x01\x02"));
    zt_proto_refuse_cmd(fx, &small, "write trailing bytes", ZM_CMD_WRITE, ZM_STATUS_MALFORMED,
                        true, 7);
    s_good_header(fx, ZM_CMD_APPLIED);
    zt_proto_message(fx, 1, BYTES("\x94\x01\x02\x03\x04"));
    zt_proto_refuse_cmd(fx, &small, "applied too big", ZM_CMD_APPLIED, ZM_STATUS_TOO_BIG, false, 0);
    s_good_header(fx, ZM_CMD_APPLIED);
    zt_proto_message(fx, 1, BYTES("\xc1"));
    zt_proto_refuse_cmd(fx, &small, "applied not msgpack", ZM_CMD_APPLIED, ZM_STATUS_MALFORMED,
                        false, 0);
    s_good_header(fx, ZM_CMD_APPLIED);
    zt_proto_message(fx, 1, "", 0);
    zt_proto_refuse_cmd(fx, &small, "applied empty", ZM_CMD_APPLIED, ZM_STATUS_MALFORMED, false, 0);
    //  At the limit, and unchecked, they pass.
    s_good_header(fx, ZM_CMD_WRITE);
    zt_proto_message(fx, 1, BYTES("\xa3" "abc"));
    zt_proto_accept(fx, &small, "write at the limit");
    assert_int_equal(zframe_size(fx->self.body), 4);
    s_good_header(fx, ZM_CMD_APPLIED);
    zt_proto_message(fx, 1, BYTES("\xc1\xc1"));
    zt_proto_accept(fx, NULL, "applied unchecked");
    assert_int_equal(zframe_size(fx->self.body), 2);
}

//  A snapshot chunk of ZM_SNAPSHOT_CHUNK bytes passes whatever max_body is,
//  so catch-up never depends on it; one byte more is 413 under every limit,
//  the default 1 MiB included.
static void
test_proto_repl_bounds_snapshot_chunks(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->data = calloc(1, S_CHUNK_BODY + 1);
    assert_non_null(fx->data);
    const zm_proto_limits_t small = {.max_body = 16, .check_body = true, .max_depth = 2};
    const zm_proto_limits_t unchecked = {.max_body = 16, .check_body = false};
    const zm_proto_limits_t large = {.max_body = 4 * S_CHUNK_BODY, .check_body = true};
    const zm_proto_limits_t *limits[] = {&small, &unchecked, &large, &zt_proto_checked, NULL};
    for (size_t index = 0; index < COUNT(limits); index++) {
        memcpy(fx->data, "\xc6\x00\x01\x00\x00", 5);            //  bin 32 of 64 KiB
        s_good_header(fx, ZM_CMD_SNAPSHOT);
        zt_proto_message(fx, 1, fx->data, S_CHUNK_BODY);
        zt_proto_accept(fx, limits[index], "whole chunk");
        assert_int_equal(zframe_size(fx->self.body), S_CHUNK_BODY);
        memcpy(fx->data, "\xc6\x00\x01\x00\x01", 5);            //  bin 32 of 64 KiB + 1
        s_good_header(fx, ZM_CMD_SNAPSHOT);
        zt_proto_message(fx, 1, fx->data, S_CHUNK_BODY + 1);
        zt_proto_refuse_cmd(fx, limits[index], "chunk + 1", ZM_CMD_SNAPSHOT, ZM_STATUS_TOO_BIG,
                            true, 7);
    }
    //  A chunk within the bound is still checked as MessagePack when asked.
    memcpy(fx->data, "\xc6\x00\x01\x00\x01", 5);                //  claims one byte more
    s_good_header(fx, ZM_CMD_SNAPSHOT);
    zt_proto_message(fx, 1, fx->data, S_CHUNK_BODY);
    zt_proto_refuse_cmd(fx, &small, "chunk cut short", ZM_CMD_SNAPSHOT,
                        ZM_STATUS_MALFORMED, true, 7);
    s_good_header(fx, ZM_CMD_SNAPSHOT);
    zt_proto_message(fx, 1, fx->data, S_CHUNK_BODY);
    zt_proto_accept(fx, &unchecked, "chunk unchecked");
    //  The bound is the SNAPSHOT's alone: a WRITE of the same size is 413
    //  under a 16-byte limit.
    memcpy(fx->data, "\xc6\x00\x01\x00\x00", 5);
    s_good_header(fx, ZM_CMD_WRITE);
    zt_proto_message(fx, 1, fx->data, S_CHUNK_BODY);
    zt_proto_refuse_cmd(fx, &small, "write of a chunk", ZM_CMD_WRITE, ZM_STATUS_TOO_BIG, true, 7);
    s_good(fx, ZM_CMD_SNAPSHOT);
}

//  ---------------------------------------------------------------------
//  Versions and sizes

static void
test_proto_repl_rejects_other_version_and_long_header(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  ZMP2 JOIN: 505 and still a JOIN, so the broker answers DISCONNECT.
    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, 9);
    zmesh_pack_str(fx->pack, "ZMP2");
    zmesh_pack_str(fx->pack, "JOIN");
    zmesh_pack_str(fx->pack, "kv");
    zmesh_pack_uint(fx->pack, 1000);
    zmesh_pack_uint(fx->pack, 3);
    zmesh_pack_uint(fx->pack, 3);
    zmesh_pack_uint(fx->pack, 0);
    zmesh_pack_uint(fx->pack, 0);
    zmesh_pack_uint(fx->pack, 0);
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "ZMP2 join", ZM_CMD_JOIN, ZM_STATUS_BAD_VERSION,
                        false, 0);
    //  A JOIN header over 512 bytes: 413, still a JOIN.
    char name[ZM_NAME_MAX + 1];
    memset(name, 'k', ZM_NAME_MAX);
    name[ZM_NAME_MAX] = '\0';
    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, 9);
    zmesh_pack_str(fx->pack, "ZMP1");
    zmesh_pack_str(fx->pack, "JOIN");
    zmesh_pack_str(fx->pack, name);
    zmesh_pack_str(fx->pack, name);             //  not a number, and too long anyway
    for (int index = 0; index < 5; index++)
        zmesh_pack_uint(fx->pack, 0);
    assert_true(zmesh_pack_size(fx->pack) > ZM_HEADER_MAX);
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "long join", ZM_CMD_JOIN,
                        ZM_STATUS_TOO_BIG, false, 0);
    s_good(fx, ZM_CMD_JOIN);
}

//  A decode replaces the replication fields of the previous command.
static void
test_proto_repl_decode_clears_the_previous_fields(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zt_proto_header(fx, "SNAPSHOT", "uuuuu", U(7), U(5), U(9), U(3), U(1));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "snapshot");
    assert_true(fx->self.more);
    zt_proto_header(fx, "JOIN", "suuuuuu", "kv", U(1000), U(3), U(3), U(2), U(0), U(0));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "join");
    s_good(fx, ZM_CMD_SYNC);
    assert_int_equal(fx->self.id, 7);
    assert_true(fx->self.epoch == 0 && fx->self.seq == 0);
    assert_int_equal(fx->self.replicas, 0);
    assert_int_equal(fx->self.quorum, 0);
    assert_int_equal(fx->self.index, 0);
    assert_false(fx->self.more);
    assert_string_equal(fx->self.service, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ZT_PROTO_TEST(test_proto_repl_round_trips_join),
        ZT_PROTO_TEST(test_proto_repl_round_trips_write),
        ZT_PROTO_TEST(test_proto_repl_round_trips_applied),
        ZT_PROTO_TEST(test_proto_repl_round_trips_missing_and_sync),
        ZT_PROTO_TEST(test_proto_repl_round_trips_snapshot),
        ZT_PROTO_TEST(test_proto_repl_headers_match_the_spec),
        ZT_PROTO_TEST(test_proto_repl_accepts_foreign_encodings),
        ZT_PROTO_TEST(test_proto_repl_accepts_range_edges),
        ZT_PROTO_TEST(test_proto_repl_rejects_out_of_range_fields),
        ZT_PROTO_TEST(test_proto_repl_rejects_wrong_field_counts),
        ZT_PROTO_TEST(test_proto_repl_rejects_wrong_frame_counts),
        ZT_PROTO_TEST(test_proto_repl_checks_write_and_applied_bodies),
        ZT_PROTO_TEST(test_proto_repl_bounds_snapshot_chunks),
        ZT_PROTO_TEST(test_proto_repl_rejects_other_version_and_long_header),
        ZT_PROTO_TEST(test_proto_repl_decode_clears_the_previous_fields),
    };
    return cmocka_run_group_tests_name("proto_repl", tests, NULL, NULL);
}
