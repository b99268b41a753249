//  Unit tests for zm_replica with the kv service: order, epochs, retried
//  writes answered once, quorum reads, persistence across restarts,
//  snapshots installed forwards and backwards, compaction, the bound on
//  remembered write ids, and bytes that are not a snapshot.
#include "kv.h"
#include "zm_json.h"
#include "zm_replica.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_handle(void *arg, bool write, const void *body, size_t size, zmesh_msg_t **reply_p)
{
    return zw_kv_handle(arg, write, body, size, reply_p);
}

static void
s_snapshot(void *arg, void **data_p, size_t *size_p)
{
    zw_kv_snapshot(arg, data_p, size_p);
}

static bool
s_restore(void *arg, const void *data, size_t size)
{
    return zw_kv_restore(arg, data, size);
}

//  A replica with its own kv.
typedef struct {
    zw_kv_t *kv;
    zm_replica_t *replica;
    zm_replog_report_t report;
} s_node_t;

static void
s_node_start(s_node_t *node, const char *dir)
{
    node->kv = zw_kv_new();
    zm_replica_service_t service = {s_handle, s_snapshot, s_restore, node->kv};
    char error[256] = "";
    node->replica = zm_replica_new(&service, dir, &node->report, error, sizeof error);
    assert_non_null(node->replica);
}

static void
s_node_stop(s_node_t *node)
{
    zm_replica_destroy(&node->replica);
    zw_kv_destroy(&node->kv);
}

static char s_root[64];

static int
s_setup(void **unused)
{
    (void) unused;
    snprintf(s_root, sizeof s_root, "/tmp/zm-replica-XXXXXX");
    assert_non_null(mkdtemp(s_root));
    return 0;
}

static int
s_teardown(void **unused)
{
    (void) unused;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", s_root);
    assert_int_equal(system(command), 0);
    return 0;
}

static const char *
s_dir(const char *name)
{
    static char path[2][128];
    static int next;
    next = !next;
    snprintf(path[next], sizeof path[next], "%s/%s", s_root, name);
    return path[next];
}

//  Writes json as write seq of epoch with id; returns the status, the reply
//  as JSON in reply (if not NULL), *duplicate_p (if not NULL).
static int
s_write(s_node_t *node, uint64_t epoch, uint64_t seq, uint64_t id, bool quorum_read,
        const char *json, char *reply, size_t reply_size, bool *duplicate_p)
{
    char *body;
    size_t size;
    assert_int_equal(zm_json_to_msgpack(json, strlen(json), &body, &size, NULL, 0), ZMESH_OK);
    zm_replica_answer_t answer;
    int rc = zm_replica_write(node->replica, epoch, seq, id, quorum_read, body, size, &answer);
    free(body);
    if (rc != ZMESH_OK)
        return rc;
    if (reply) {
        char *text;
        assert_non_null(answer.reply);
        assert_int_equal(zm_msgpack_to_json(zmesh_msg_data(answer.reply),
                                            zmesh_msg_size(answer.reply), &text, NULL, 0),
                         ZMESH_OK);
        snprintf(reply, reply_size, "%s", text);
        free(text);
    }
    if (duplicate_p)
        *duplicate_p = answer.duplicate;
    zmesh_msg_destroy(&answer.reply);
    return answer.status;
}

static void
s_put(s_node_t *node, uint64_t epoch, uint64_t seq, uint64_t id, int n)
{
    char json[128];
    snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k%d\",\"value\":%d}", n, n);
    assert_int_equal(s_write(node, epoch, seq, id, false, json, NULL, 0, NULL), ZMESH_OK);
}

static void
s_digest(s_node_t *node, char digest[ZW_KV_DIGEST_HEX])
{
    zw_kv_digest(node->kv, digest);
}

static void
test_order_and_epochs(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, NULL);
    s_put(&node, 7, 1, 101, 1);
    s_put(&node, 7, 2, 102, 2);
    //  A gap, a repeat of an applied seq, an older epoch: refused, nothing changes.
    assert_int_equal(s_write(&node, 7, 4, 104, false, "{\"op\":\"put\",\"key\":\"x\",\"value\":1}",
                             NULL, 0, NULL),
                     ZMESH_EINVAL);
    assert_int_equal(s_write(&node, 7, 2, 105, false, "{\"op\":\"put\",\"key\":\"x\",\"value\":1}",
                             NULL, 0, NULL),
                     ZMESH_EINVAL);
    assert_int_equal(s_write(&node, 6, 3, 106, false, "{\"op\":\"put\",\"key\":\"x\",\"value\":1}",
                             NULL, 0, NULL),
                     ZMESH_EINVAL);
    assert_int_equal(zw_kv_size(node.kv), 2);
    assert_int_equal(zm_replica_seq(node.replica), 2);
    //  A newer epoch goes on from the next seq.
    s_put(&node, 9, 3, 107, 3);
    assert_int_equal(zm_replica_epoch(node.replica), 9);
    assert_int_equal(zm_replica_seq(node.replica), 3);
    s_node_stop(&node);
}

//  A retried write (same id, a later seq) is answered as the first time and
//  not applied again: a compare-and-set shows it.
static void
test_retried_write_applied_once(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, NULL);
    const char *cas = "{\"op\":\"cas\",\"key\":\"c\",\"expected\":null,\"value\":1}";
    char reply[256];
    bool duplicate = true;
    assert_int_equal(s_write(&node, 1, 1, 500, false, cas, reply, sizeof reply, &duplicate),
                     ZMESH_OK);
    assert_string_equal(reply, "{\"ok\":true,\"value\":1}");
    assert_false(duplicate);
    assert_int_equal(s_write(&node, 1, 2, 500, false, cas, reply, sizeof reply, &duplicate),
                     ZMESH_OK);
    assert_string_equal(reply, "{\"ok\":true,\"value\":1}");   //  the first answer again
    assert_true(duplicate);
    //  The same request under a new id runs, and fails its condition.
    assert_int_equal(s_write(&node, 1, 3, 501, false, cas, reply, sizeof reply, &duplicate),
                     ZMESH_OK);
    assert_string_equal(reply, "{\"ok\":false,\"value\":1}");
    assert_false(duplicate);
    //  A refused write is remembered with its error too.
    const char *bad = "{\"op\":\"put\",\"key\":\"\",\"value\":1}";
    assert_int_equal(s_write(&node, 1, 4, 502, false, bad, reply, sizeof reply, NULL),
                     ZMESH_EHANDLER);
    assert_int_equal(s_write(&node, 1, 5, 502, false, bad, reply, sizeof reply, &duplicate),
                     ZMESH_EHANDLER);
    assert_true(duplicate);
    //  Id 0 is never deduplicated.
    const char *put = "{\"op\":\"put\",\"key\":\"z\",\"value\":1}";
    assert_int_equal(s_write(&node, 1, 6, 0, false, put, NULL, 0, &duplicate), ZMESH_OK);
    assert_int_equal(s_write(&node, 1, 7, 0, false, put, NULL, 0, &duplicate), ZMESH_OK);
    assert_false(duplicate);
    assert_int_equal(zm_replica_remembered(node.replica), 3);
    s_node_stop(&node);
}

static void
test_quorum_read(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, NULL);
    s_put(&node, 1, 1, 11, 5);
    char reply[256];
    assert_int_equal(s_write(&node, 1, 2, 12, true, "{\"op\":\"get\",\"key\":\"k5\"}", reply,
                             sizeof reply, NULL),
                     ZMESH_OK);
    assert_string_equal(reply, "{\"found\":true,\"value\":5}");
    assert_int_equal(zm_replica_seq(node.replica), 2);     //  it took a seq
    assert_int_equal(zm_replica_remembered(node.replica), 1);  //  but no memo
    //  A write sent as a quorum read is a read: refused, nothing changes.
    assert_int_equal(s_write(&node, 1, 3, 13, true, "{\"op\":\"put\",\"key\":\"q\",\"value\":1}",
                             reply, sizeof reply, NULL),
                     ZMESH_EHANDLER);
    assert_int_equal(zw_kv_size(node.kv), 1);
    //  A plain read.
    zm_replica_answer_t answer;
    const char get[] = "\x82\xa2op\xa3get\xa3key\xa2k5";
    zm_replica_read(node.replica, get, sizeof get - 1, &answer);
    assert_int_equal(answer.status, ZMESH_OK);
    assert_non_null(answer.reply);
    zmesh_msg_destroy(&answer.reply);
    s_node_stop(&node);
}

//  With a directory, a restarted replica has every synced write, its epoch
//  and seq, and still recognises retried ids.
static void
test_restart_from_disk(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, s_dir("a"));
    assert_false(node.report.damaged);
    for (int i = 1; i <= 300; i++)
        s_put(&node, 4, (uint64_t) i, 1000 + (uint64_t) i, i);
    assert_int_equal(zm_replica_sync(node.replica), ZMESH_OK);
    char before[ZW_KV_DIGEST_HEX];
    s_digest(&node, before);
    s_node_stop(&node);

    s_node_start(&node, s_dir("a"));
    assert_false(node.report.damaged);
    assert_int_equal(node.report.records, 300);
    assert_int_equal(zm_replica_seq(node.replica), 300);
    assert_int_equal(zm_replica_epoch(node.replica), 4);
    char after[ZW_KV_DIGEST_HEX];
    s_digest(&node, after);
    assert_string_equal(before, after);
    bool duplicate = false;
    assert_int_equal(s_write(&node, 4, 301, 1050, false,
                             "{\"op\":\"put\",\"key\":\"k50\",\"value\":\"again\"}", NULL, 0,
                             &duplicate),
                     ZMESH_OK);
    assert_true(duplicate);
    s_node_stop(&node);
}

//  Catch-up: a fresh replica installs a peer's snapshot and then goes on
//  with the next writes; a replica ahead on a dead epoch goes back to it.
static void
test_snapshot_install(void **unused)
{
    (void) unused;
    s_node_t donor, joiner;
    s_node_start(&donor, NULL);
    s_node_start(&joiner, s_dir("joiner"));
    for (int i = 1; i <= 50; i++)
        s_put(&donor, 2, (uint64_t) i, 2000 + (uint64_t) i, i);
    //  The joiner holds writes of an epoch that died: seq 1..60 of epoch 1.
    for (int i = 1; i <= 60; i++)
        s_put(&joiner, 1, (uint64_t) i, 9000 + (uint64_t) i, -i);
    assert_int_equal(zm_replica_sync(joiner.replica), ZMESH_OK);

    void *snapshot;
    size_t size;
    zm_replica_snapshot(donor.replica, &snapshot, &size);
    assert_int_equal(zm_replica_install(joiner.replica, snapshot, size), ZMESH_OK);
    free(snapshot);
    assert_int_equal(zm_replica_seq(joiner.replica), 50);
    assert_int_equal(zm_replica_epoch(joiner.replica), 2);
    char digest_donor[ZW_KV_DIGEST_HEX], digest_joiner[ZW_KV_DIGEST_HEX];
    s_digest(&donor, digest_donor);
    s_digest(&joiner, digest_joiner);
    assert_string_equal(digest_donor, digest_joiner);
    //  The donor's remembered ids came along.
    bool duplicate = false;
    assert_int_equal(s_write(&joiner, 2, 51, 2010, false,
                             "{\"op\":\"put\",\"key\":\"k10\",\"value\":0}", NULL, 0, &duplicate),
                     ZMESH_OK);
    assert_true(duplicate);
    assert_int_equal(s_write(&donor, 2, 51, 2010, false,
                             "{\"op\":\"put\",\"key\":\"k10\",\"value\":0}", NULL, 0, NULL),
                     ZMESH_OK);
    s_put(&joiner, 2, 52, 2052, 52);
    s_put(&donor, 2, 52, 2052, 52);
    assert_int_equal(zm_replica_sync(joiner.replica), ZMESH_OK);
    s_digest(&donor, digest_donor);
    s_node_stop(&joiner);

    //  After a restart the joiner is where it was: the dead epoch's writes
    //  did not come back from its log.
    s_node_start(&joiner, s_dir("joiner"));
    assert_false(joiner.report.damaged);
    assert_int_equal(zm_replica_seq(joiner.replica), 52);
    s_digest(&joiner, digest_joiner);
    assert_string_equal(digest_donor, digest_joiner);
    s_node_stop(&joiner);
    s_node_stop(&donor);
}

static void
test_install_refuses_junk(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, NULL);
    s_put(&node, 1, 1, 1, 1);
    assert_int_equal(zm_replica_install(node.replica, "\xc1", 1), ZMESH_EINVAL);
    assert_int_equal(zm_replica_install(node.replica, NULL, 0), ZMESH_EINVAL);
    //  ["zmreplica1", 1, 1, <a kv state that is not a map>, []]
    const char wrong_state[] = "\x95\xaazmreplica1\x01\x01\xc4\x01\x90\x90";
    assert_int_equal(zm_replica_install(node.replica, wrong_state, sizeof wrong_state - 1),
                     ZMESH_EINVAL);
    //  the right shape with a memo of id 0
    const char zero_id[] = "\x95\xaazmreplica1\x01\x01\xc4\x01\x80\x91\x94\x00\x01\x00\xc0";
    assert_int_equal(zm_replica_install(node.replica, zero_id, sizeof zero_id - 1),
                     ZMESH_EINVAL);
    assert_int_equal(zw_kv_size(node.kv), 1);
    assert_int_equal(zm_replica_seq(node.replica), 1);
    //  and a good one: the empty state at seq 9
    const char good[] = "\x95\xaazmreplica1\x03\x09\xc4\x01\x80\x90";
    assert_int_equal(zm_replica_install(node.replica, good, sizeof good - 1), ZMESH_OK);
    assert_int_equal(zw_kv_size(node.kv), 0);
    assert_int_equal(zm_replica_seq(node.replica), 9);
    assert_int_equal(zm_replica_epoch(node.replica), 3);
    s_node_stop(&node);
}

//  The log is folded into a snapshot once it is large; nothing is lost.
static void
test_compaction(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, s_dir("big"));
    char json[4200];
    char value[4001];
    memset(value, 'v', 4000);
    value[4000] = '\0';
    uint64_t seq = 0;
    char path[160];
    snprintf(path, sizeof path, "%s/log", s_dir("big"));
    struct stat info;
    bool compacted = false;
    while (!compacted && seq < 10000) {
        seq++;
        snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k%llu\",\"value\":\"%s\"}",
                 (unsigned long long) (seq % 3000), value);
        assert_int_equal(s_write(&node, 1, seq, seq, false, json, NULL, 0, NULL), ZMESH_OK);
        if (seq % 100 == 0) {
            assert_int_equal(zm_replica_sync(node.replica), ZMESH_OK);
            assert_int_equal(stat(path, &info), 0);
            compacted = seq > 1000 && info.st_size < 1024 * 1024;
        }
    }
    assert_true(compacted);
    s_put(&node, 1, seq + 1, seq + 1, 1);
    assert_int_equal(zm_replica_sync(node.replica), ZMESH_OK);
    char before[ZW_KV_DIGEST_HEX];
    s_digest(&node, before);
    s_node_stop(&node);
    s_node_start(&node, s_dir("big"));
    assert_false(node.report.damaged);
    assert_true(node.report.snapshot_seq > 0);
    assert_int_equal(zm_replica_seq(node.replica), seq + 1);
    char after[ZW_KV_DIGEST_HEX];
    s_digest(&node, after);
    assert_string_equal(before, after);
    s_node_stop(&node);
}

static void
test_remembered_bound(void **unused)
{
    (void) unused;
    s_node_t node;
    s_node_start(&node, NULL);
    const char put[] = "\x83\xa2op\xa3put\xa3key\xa1k\xa5value\x01";
    uint64_t total = ZM_REPLICA_REMEMBER + 10;
    for (uint64_t seq = 1; seq <= total; seq++) {
        zm_replica_answer_t answer;
        assert_int_equal(zm_replica_write(node.replica, 1, seq, seq, false, put, sizeof put - 1,
                                          &answer),
                         ZMESH_OK);
        zmesh_msg_destroy(&answer.reply);
    }
    assert_int_equal(zm_replica_remembered(node.replica), ZM_REPLICA_REMEMBER);
    zm_replica_answer_t answer;
    //  Id 5 was forgotten: applied again. Id total - 5 is still known.
    assert_int_equal(zm_replica_write(node.replica, 1, total + 1, 5, false, put, sizeof put - 1,
                                      &answer),
                     ZMESH_OK);
    assert_false(answer.duplicate);
    zmesh_msg_destroy(&answer.reply);
    assert_int_equal(zm_replica_write(node.replica, 1, total + 2, total - 5, false, put,
                                      sizeof put - 1, &answer),
                     ZMESH_OK);
    assert_true(answer.duplicate);
    zmesh_msg_destroy(&answer.reply);
    s_node_stop(&node);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_epochs),
        cmocka_unit_test(test_retried_write_applied_once),
        cmocka_unit_test(test_quorum_read),
        cmocka_unit_test_setup_teardown(test_restart_from_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install, s_setup, s_teardown),
        cmocka_unit_test(test_install_refuses_junk),
        cmocka_unit_test_setup_teardown(test_compaction, s_setup, s_teardown),
        cmocka_unit_test(test_remembered_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
