//  test_security - authorization in the broker (ZMP.md section 18), without
//  sockets: rights patterns, the keyring read from a directory of
//  certificates, the connection table, and the engine checking every
//  command against the key that sent it.
#define _GNU_SOURCE                 //  nftw
#include "engine_fixture.h"

#include "conns.h"
#include "keyring.h"
#include "rights.h"

#include <czmq.h>
#include <ftw.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  Key directories made for a test

typedef struct {
    char dir[64];
    char alice[ZM_CURVE_KEY_TXT];   //  serve echo, call echo and sum*
    char bob[ZM_CURVE_KEY_TXT];     //  call echo, push and pull jobs
    char root[ZM_CURVE_KEY_TXT];    //  admin, nothing else
    char mute[ZM_CURVE_KEY_TXT];    //  no rights at all
    zm_keyring_t *keyring;
} s_keys_t;

//  Writes a public certificate NAME.key with the given metadata (NULL: not set).
static void
s_write_cert(const char *dir, const char *name, const char *serve, const char *call,
             const char *push, const char *pull, bool admin, char *key)
{
    zcert_t *cert = zcert_new();
    zcert_set_meta(cert, "name", "%s", name);
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
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    assert_int_equal(zcert_save(cert, path), 0);   //  writes NAME.key_secret too
    memcpy(key, zcert_public_txt(cert), ZM_CURVE_KEY_TXT);
    zcert_destroy(&cert);
}

static void
s_keys_make(s_keys_t *keys)
{
    snprintf(keys->dir, sizeof keys->dir, "/tmp/zt-keys-XXXXXX");
    assert_non_null(mkdtemp(keys->dir));
    s_write_cert(keys->dir, "alice", "echo", "echo, sum*", NULL, NULL, false, keys->alice);
    s_write_cert(keys->dir, "bob", NULL, "echo", "jobs", "jobs", false, keys->bob);
    s_write_cert(keys->dir, "root", NULL, NULL, NULL, NULL, true, keys->root);
    s_write_cert(keys->dir, "mute", NULL, NULL, NULL, NULL, false, keys->mute);
    keys->keyring = zm_keyring_new(keys->dir);
}

static int
s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
    (void) info;
    (void) flag;
    (void) walk;
    return remove(path);
}

static void
s_keys_free(s_keys_t *keys)
{
    zm_keyring_destroy(&keys->keyring);
    //  Not zdir_remove: it leaks on a tree with a subdirectory.
    assert_int_equal(nftw(keys->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void
s_remove_cert(const s_keys_t *keys, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.key", keys->dir, name);
    assert_int_equal(unlink(path), 0);
}

//  Rewrites NAME.key with the same key pair and new push and pull rights.
static void
s_rewrite_rights(const s_keys_t *keys, const char *name, const char *push, const char *pull)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.key", keys->dir, name);
    zcert_t *old = zcert_load(path);
    assert_non_null(old);
    zcert_t *cert = zcert_new_from(zcert_public_key(old), zcert_secret_key(old));
    zcert_destroy(&old);
    zcert_set_meta(cert, "name", "%s", name);
    if (push)
        zcert_set_meta(cert, "push", "%s", push);
    if (pull)
        zcert_set_meta(cert, "pull", "%s", pull);
    assert_int_equal(zcert_save(cert, path), 0);
    zcert_destroy(&cert);
}

//  ---------------------------------------------------------------------------
//  Rights

static void
test_rights_patterns(void **state)
{
    (void) state;
    zm_rights_t rights;
    memset(&rights, 0, sizeof rights);
    zm_rights_set(&rights, ZM_RIGHT_CALL, " echo ,, sum* ,");
    zm_rights_set(&rights, ZM_RIGHT_PUSH, "*");
    assert_true(zm_rights_allow(&rights, ZM_RIGHT_CALL, "echo"));
    assert_true(zm_rights_allow(&rights, ZM_RIGHT_CALL, "sum"));
    assert_true(zm_rights_allow(&rights, ZM_RIGHT_CALL, "summary"));
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_CALL, "echo2"));
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_CALL, " echo"));
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_SERVE, "echo"));
    assert_true(zm_rights_allow(&rights, ZM_RIGHT_PUSH, "anything"));
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_PULL, "anything"));
    //  Reserved names: no pattern reaches them, "*" included; only admin calls.
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_PUSH, "zmesh.x"));
    zm_rights_set(&rights, ZM_RIGHT_CALL, "*");
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_CALL, "zmesh.status"));
    rights.admin = true;
    assert_true(zm_rights_allow(&rights, ZM_RIGHT_CALL, "zmesh.status"));
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_SERVE, "zmesh.status"));
    //  Replacing a list, and an empty one.
    zm_rights_set(&rights, ZM_RIGHT_CALL, "other");
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_CALL, "echo"));
    zm_rights_set(&rights, ZM_RIGHT_CALL, " , ");
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_CALL, "other"));
    zm_rights_clear(&rights);
    assert_false(rights.admin);
    assert_false(zm_rights_allow(&rights, ZM_RIGHT_PUSH, "anything"));
}

//  ---------------------------------------------------------------------------
//  Keyring

static void
test_keyring_reads_certificates_and_rights(void **state)
{
    (void) state;
    s_keys_t keys;
    s_keys_make(&keys);
    //  Files the keyring must skip or survive: junk, a subdirectory with one
    //  more key (read, as zauth reads it), secret files (never keys).
    char path[128];
    snprintf(path, sizeof path, "%s/README", keys.dir);
    FILE *junk = fopen(path, "w");
    assert_non_null(junk);
    fputs("not a certificate\n", junk);
    fclose(junk);
    snprintf(path, sizeof path, "%s/more", keys.dir);
    assert_int_equal(mkdir(path, 0700), 0);
    char carol[ZM_CURVE_KEY_TXT];
    s_write_cert(path, "carol", NULL, "*", NULL, NULL, false, carol);
    zm_keyring_destroy(&keys.keyring);
    keys.keyring = zm_keyring_new(keys.dir);

    assert_int_equal(zm_keyring_size(keys.keyring), 5);
    zm_key_t *alice = zm_keyring_lookup(keys.keyring, keys.alice);
    assert_non_null(alice);
    assert_string_equal(alice->name, "alice");
    assert_true(zm_rights_allow(&alice->rights, ZM_RIGHT_SERVE, "echo"));
    assert_true(zm_rights_allow(&alice->rights, ZM_RIGHT_CALL, "sum2"));
    assert_false(zm_rights_allow(&alice->rights, ZM_RIGHT_PUSH, "jobs"));
    assert_false(alice->rights.admin);
    zm_key_t *root = zm_keyring_lookup(keys.keyring, keys.root);
    assert_true(root && root->rights.admin);
    zm_key_t *mute = zm_keyring_lookup(keys.keyring, keys.mute);
    assert_non_null(mute);
    for (int right = 0; right < ZM_RIGHT_COUNT; right++)
        assert_false(zm_rights_allow(&mute->rights, right, "echo"));
    assert_non_null(zm_keyring_lookup(keys.keyring, carol));
    //  A second certificate named alice: shown under a name of its own.
    char twin[ZM_CURVE_KEY_TXT];
    s_write_cert(path, "alice", NULL, NULL, NULL, NULL, false, twin);
    assert_true(zm_keyring_refresh(keys.keyring, NULL));
    const char *first = zm_keyring_lookup(keys.keyring, keys.alice)->name;
    const char *second = zm_keyring_lookup(keys.keyring, twin)->name;
    assert_true(streq(first, "alice") || streq(second, "alice"));
    assert_string_not_equal(first, second);
    assert_null(zm_keyring_lookup(keys.keyring, "0000000000000000000000000000000000000000"));
    assert_null(zm_keyring_lookup(keys.keyring, NULL));
    s_keys_free(&keys);
}

static void
test_keyring_refresh_reports_removed_keys(void **state)
{
    (void) state;
    s_keys_t keys;
    s_keys_make(&keys);
    zlistx_t *removed = zlistx_new();
    assert_false(zm_keyring_refresh(keys.keyring, removed));        //  nothing changed
    zm_keyring_lookup(keys.keyring, keys.bob)->messages = 7;
    s_remove_cert(&keys, "alice");
    assert_true(zm_keyring_refresh(keys.keyring, removed));
    assert_int_equal(zlistx_size(removed), 1);
    char *gone = zlistx_detach(removed, NULL);
    assert_string_equal(gone, keys.alice);
    free(gone);
    assert_null(zm_keyring_lookup(keys.keyring, keys.alice));
    //  A key that stays keeps its counts across the reload.
    assert_int_equal(zm_keyring_lookup(keys.keyring, keys.bob)->messages, 7);
    //  A new key is picked up.
    char dave[ZM_CURVE_KEY_TXT];
    s_write_cert(keys.dir, "dave", NULL, "*", NULL, NULL, false, dave);
    assert_true(zm_keyring_refresh(keys.keyring, removed));
    assert_int_equal(zlistx_size(removed), 0);
    assert_non_null(zm_keyring_lookup(keys.keyring, dave));
    zlistx_destroy(&removed);
    s_keys_free(&keys);
}

//  ---------------------------------------------------------------------------
//  Connection table

static char *
s_take(zlistx_t *list)
{
    return zlistx_detach(list, NULL);
}

static void
s_count_fd(void *arg, int fd, uint64_t tag)
{
    int *sum = arg;
    *sum += fd + (int) tag;
}

static void
s_expect_gone(zlistx_t *gone, const char *expected)
{
    char *id = s_take(gone);
    assert_non_null(id);
    assert_string_equal(id, expected);
    free(id);
}

static void
test_conns_track_routing_ids(void **state)
{
    (void) state;
    const char *k1 = "1111111111111111111111111111111111111111";
    const char *k2 = "2222222222222222222222222222222222222222";
    zm_conns_t *conns = zm_conns_new();
    zlistx_t *gone = zlistx_new();
    assert_int_equal(zm_conns_seen(conns, 10, "aa", k1, gone), ZM_CONN_NEW);
    assert_int_equal(zm_conns_seen(conns, 10, "aa", k1, gone), ZM_CONN_KNOWN);
    assert_int_equal(zm_conns_seen(conns, 11, NULL, k1, gone), ZM_CONN_NEW);  //  push endpoint
    assert_int_equal(zm_conns_seen(conns, 12, "bb", k2, gone), ZM_CONN_NEW);
    zm_conns_tag(conns, 11, 100);
    assert_int_equal(zlistx_size(gone), 0);
    assert_int_equal(zm_conns_size(conns), 3);
    assert_int_equal(zm_conns_state(conns, "aa"), ZM_CONN_LIVE);
    assert_int_equal(zm_conns_state(conns, "cc"), ZM_CONN_NONE);
    int sum = 0;
    zm_conns_each_of_key(conns, k1, s_count_fd, &sum);
    assert_int_equal(sum, 121);

    //  The routing id "aa" shows up on another connection: the first is gone.
    assert_int_equal(zm_conns_seen(conns, 13, "aa", k2, gone), ZM_CONN_NEW);
    s_expect_gone(gone, "aa");
    assert_int_equal(zlistx_size(gone), 0);
    assert_int_equal(zm_conns_state(conns, "aa"), ZM_CONN_LIVE);

    //  A message that claims a live connection's descriptor with another id
    //  is a late one from a connection closed before: not recorded.
    assert_int_equal(zm_conns_seen(conns, 12, "dd", k1, gone), ZM_CONN_LATE);
    assert_int_equal(zm_conns_state(conns, "dd"), ZM_CONN_NONE);
    assert_int_equal(zm_conns_state(conns, "bb"), ZM_CONN_LIVE);

    //  bb's connection closes: still its own until swept, messages it sent
    //  before closing count as its own, nothing is sent to it meanwhile.
    zm_conns_closing(conns, 12, 1000);
    assert_int_equal(zm_conns_state(conns, "bb"), ZM_CONN_CLOSING);
    assert_int_equal(zm_conns_seen(conns, 12, "bb", k2, gone), ZM_CONN_KNOWN);
    zm_conns_sweep(conns, false, 1000, gone);           //  not older than 1000
    assert_int_equal(zlistx_size(gone), 0);
    //  Descriptor 12 given to another peer: the closing one is gone.
    assert_int_equal(zm_conns_seen(conns, 12, "ee", k1, gone), ZM_CONN_NEW);
    s_expect_gone(gone, "bb");
    assert_int_equal(zm_conns_state(conns, "bb"), ZM_CONN_NONE);

    //  Sweeps.
    zm_conns_closing(conns, 13, 2000);
    zm_conns_closing(conns, 11, 2000);
    zm_conns_closing(conns, 99, 2000);                  //  unknown: nothing
    zm_conns_sweep(conns, false, 2001, gone);
    s_expect_gone(gone, "aa");                          //  11 had no routing id
    assert_int_equal(zlistx_size(gone), 0);
    zm_conns_closing(conns, 12, 3000);
    zm_conns_sweep(conns, true, 0, gone);
    s_expect_gone(gone, "ee");
    assert_int_equal(zm_conns_size(conns), 0);
    zlistx_destroy(&gone);
    zm_conns_destroy(&conns);
    assert_null(conns);
}

//  ---------------------------------------------------------------------------
//  The engine with a keyring

typedef struct {
    zm_engine_t *engine;            //  first: the fixture's helpers read *state as the engine
    s_keys_t keys;
} s_secure_t;

static int
s_setup(void **state)
{
    void *engine_state = NULL;
    zt_setup(&engine_state);
    s_secure_t *secure = calloc(1, sizeof *secure);
    assert_non_null(secure);
    secure->engine = engine_state;
    s_keys_make(&secure->keys);
    zm_engine_set_keyring(secure->engine, secure->keys.keyring);
    *state = secure;
    return 0;
}

static int
s_teardown(void **state)
{
    s_secure_t *secure = *state;
    void *engine_state = secure->engine;
    zt_teardown(&engine_state);
    s_keys_free(&secure->keys);
    free(secure);
    return 0;
}

static void
s_push(zm_engine_t *engine, const char *producer, const char *pipeline, uint64_t seq,
       int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_PUSH;
    snprintf(command.service, sizeof command.service, "%s", pipeline);
    command.id = seq;
    command.body = zframe_new(ZT_BODY.data, ZT_BODY.size);
    zt_feed(engine, producer, &command, now);
}

static void
s_consume(zm_engine_t *engine, const char *consumer, const char *pipeline, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CONSUME;
    snprintf(command.service, sizeof command.service, "%s", pipeline);
    command.credit = 10;
    command.heartbeat_ms = ZT_HEARTBEAT_MS;
    command.liveness = ZT_LIVENESS;
    zt_feed(engine, consumer, &command, now);
}

static void
test_engine_calls_follow_the_callers_rights(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id(secure->keys.alice);
    zt_ready(engine, "W1", "echo", 1, now);
    zt_expect_empty(engine);

    //  bob may call echo: it reaches the worker.
    zt_set_user_id(secure->keys.bob);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, now);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    //  bob may not call sum: 403, nothing queued, counted for bob.
    zt_call(engine, "C1", 2, "sum", 0, ZT_BODY, now);
    zt_expect_error(engine, "C1", 2, ZM_STATUS_DENIED, "denied: key 'bob' may not call 'sum'");
    zt_expect_empty(engine);
    //  A key with no rights is denied everything it starts.
    zt_set_user_id(secure->keys.mute);
    zt_call(engine, "C2", 3, "echo", 0, ZT_BODY, now);
    zt_expect_error(engine, "C2", 3, ZM_STATUS_DENIED, "denied");
    zt_set_user_id(secure->keys.alice);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, now);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, ZT_ANSWER);

    //  zmesh.status: admin only, whatever a key's call patterns say.
    zt_set_user_id(secure->keys.alice);
    zt_call(engine, "C3", 4, "zmesh.status", 0, ZT_BYTES("\xc0"), now);
    zt_expect_error(engine, "C3", 4, ZM_STATUS_DENIED, "admin only");
    zt_set_user_id(secure->keys.root);
    const zt_status_t *status = zt_status_fetch(engine, now);
    const msgpack_object *section = zt_map_get(status->root, "security");
    assert_non_null(section);
    assert_int_equal(zt_map_uint(section, "keys"), 4);
    const msgpack_object *stats = zt_map_get(section, "key_stats");
    const msgpack_object *bob = zt_map_get(stats, "bob");
    assert_int_equal(zt_map_uint(bob, "messages"), 2);
    assert_int_equal(zt_map_uint(bob, "denied"), 1);
    const msgpack_object *alice = zt_map_get(stats, "alice");
    assert_int_equal(zt_map_uint(alice, "messages"), 3);
    assert_int_equal(zt_map_uint(alice, "denied"), 1);
    assert_int_equal(engine->counters.denied, 3);
}

static void
test_engine_registration_follows_rights(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    //  bob may not serve echo: DISCONNECT 403, no worker.
    zt_set_user_id(secure->keys.bob);
    zt_ready(engine, "W1", "echo", 1, now);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_DENIED, "may not serve 'echo'");
    assert_int_equal(zhashx_size(engine->workers), 0);
    //  alice may serve echo, not kv.
    zt_set_user_id(secure->keys.alice);
    zt_ready(engine, "W2", "kv", 1, now);
    zt_expect_disconnect(engine, "W2", ZM_STATUS_DENIED, "may not serve 'kv'");
    zt_ready(engine, "W3", "echo", 1, now);
    zt_expect_empty(engine);
    zm_worker_t *worker = zhashx_lookup(engine->workers, "5733");
    assert_non_null(worker);
    assert_string_equal(worker->key, secure->keys.alice);
    //  Pipelines: bob pushes and pulls jobs, alice neither.
    s_push(engine, "P1", "jobs", 1, now);
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REFUSE);
    assert_int_equal(out->command.status, ZM_STATUS_DENIED);
    s_consume(engine, "K1", "jobs", now);
    zt_expect_disconnect(engine, "K1", ZM_STATUS_DENIED, "may not pull 'jobs'");
    zt_set_user_id(secure->keys.bob);
    s_consume(engine, "K2", "jobs", now);
    s_push(engine, "P2", "jobs", 1, now);
    out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_DELIVER);
    zt_assert_peer(out, "K2");
    out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_ACCEPT);
    zt_assert_peer(out, "P2");
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.denied, 4);
    //  The push endpoint: bob's message is taken, alice's dropped and counted.
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_PUSH;
    snprintf(command.service, sizeof command.service, "jobs");
    command.body = zframe_new(ZT_BODY.data, ZT_BODY.size);
    zmsg_t *msg = zm_proto_encode(&command);
    zmsg_t *copy = zmsg_dup(msg);
    zframe_t *delimiter = zmsg_pop(msg);    //  a PUSH socket sends no delimiter
    zframe_destroy(&delimiter);
    delimiter = zmsg_pop(copy);
    zframe_destroy(&delimiter);
    zm_engine_on_push(engine, &msg, secure->keys.alice, now);
    assert_int_equal(engine->counters.denied, 5);
    zt_expect_empty(engine);
    zm_engine_on_push(engine, &copy, secure->keys.bob, now);
    out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_DELIVER);
    assert_int_equal(engine->counters.pushes_accepted, 2);
}

static void
test_engine_unknown_key_reaches_nothing(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id("0000000000000000000000000000000000000000");
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, now);
    zt_expect_empty(engine);
    assert_true(zm_engine_take_kick(engine));
    zt_set_user_id(NULL);
    zt_ready(engine, "W1", "echo", 1, now);
    zt_expect_empty(engine);
    assert_true(zm_engine_take_kick(engine));
    assert_int_equal(engine->counters.denied_unknown_key, 2);
    assert_int_equal(engine->counters.calls, 0);
    assert_int_equal(zhashx_size(engine->workers), 0);
    assert_int_equal(zhashx_size(engine->services), 0);
}

//  A peer with another key that takes a worker's routing id (the worker's
//  connection is gone) ends that session: the call is answered 502 (not
//  idempotent) and the newcomer's REPLY for the ticket is not forwarded.
static void
test_engine_routing_id_taken_by_another_key(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id(secure->keys.alice);
    zt_ready(engine, "W1", "echo", 1, now);
    zt_set_user_id(secure->keys.bob);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, now);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    //  bob, as W1, answers alice's ticket.
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, now);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.sessions_replaced, 1);
    assert_int_equal(engine->counters.replies, 0);
    assert_int_equal(zhashx_size(engine->workers), 0);
}

//  A key removed, or one that lost the right it uses: its sessions end.
static void
test_engine_recheck_ends_revoked_sessions(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id(secure->keys.alice);
    zt_ready(engine, "W1", "echo", 1, now);
    zt_set_user_id(secure->keys.bob);
    s_consume(engine, "K1", "jobs", now);
    zt_expect_empty(engine);
    zm_engine_recheck_keys(engine, now);                //  nothing changed
    zt_expect_empty(engine);

    s_remove_cert(&secure->keys, "alice");
    assert_true(zm_keyring_refresh(secure->keys.keyring, NULL));
    zm_engine_recheck_keys(engine, now);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_DENIED, "removed");
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.sessions_revoked, 1);
    assert_int_equal(zhashx_size(engine->workers), 0);

    //  bob keeps his key but loses pull: the file is rewritten with push only.
    s_rewrite_rights(&secure->keys, "bob", "jobs", NULL);
    assert_true(zm_keyring_refresh(secure->keys.keyring, NULL));
    assert_non_null(zm_keyring_lookup(secure->keys.keyring, secure->keys.bob));
    zm_engine_recheck_keys(engine, now);
    zt_expect_disconnect(engine, "K1", ZM_STATUS_DENIED, "may no longer pull");
    zt_expect_empty(engine);
    assert_int_equal(zhashx_size(engine->consumers), 0);
    assert_int_equal(engine->counters.sessions_revoked, 2);
}

static void
test_engine_closed_connection_ends_session(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id(secure->keys.alice);
    zt_ready_flags(engine, "W1", "echo", 1, ZM_READY_IDEMPOTENT, now);
    zt_ready(engine, "W2", "echo", 1, now);
    zt_set_user_id(secure->keys.bob);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, now);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zm_engine_on_gone(engine, "5731", now);                 //  W1's connection closed
    zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    zt_expect_empty(engine);
    assert_null(zhashx_lookup(engine->workers, "5731"));
    zm_engine_on_gone(engine, "4331", now);                 //  a client: nothing to end
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.sessions_closed, 1);
}

//  A client's connection closes while its call is held: a peer that takes
//  its routing id later gets neither that answer nor the old call's place.
static void
test_engine_closed_client_answers_go_nowhere(void **state)
{
    s_secure_t *secure = *state;
    zm_engine_t *engine = secure->engine;
    int64_t now = ZT_T0;
    zt_set_user_id(secure->keys.alice);
    zt_ready(engine, "W1", "echo", 2, now);
    zt_set_user_id(secure->keys.bob);
    zt_call(engine, "C1", 7, "echo", 0, ZT_BODY, now);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zm_engine_on_gone(engine, "4331", now);
    zt_expect_empty(engine);
    //  Another peer as C1, the same request id: a call of its own, not a copy.
    zt_call(engine, "C1", 7, "echo", 0, ZT_BODY, now);
    uint64_t second = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    assert_int_equal(engine->counters.duplicate_calls, 0);
    zt_set_user_id(secure->keys.alice);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, now);
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REPLY);
    assert_string_equal(out->peer, "");         //  to no one
    zt_answer(engine, "W1", second, ZM_STATUS_OK, ZT_BODY, now);
    zt_expect_reply(engine, "C1", 7, ZM_STATUS_OK, ZT_BODY);
    zt_expect_empty(engine);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rights_patterns),
        cmocka_unit_test(test_keyring_reads_certificates_and_rights),
        cmocka_unit_test(test_keyring_refresh_reports_removed_keys),
        cmocka_unit_test(test_conns_track_routing_ids),
        cmocka_unit_test_setup_teardown(test_engine_calls_follow_the_callers_rights, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_registration_follows_rights, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_unknown_key_reaches_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_routing_id_taken_by_another_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_recheck_ends_revoked_sessions, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_closed_connection_ends_session, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_engine_closed_client_answers_go_nowhere, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
