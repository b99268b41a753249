//  fuzz_replica - fuzzes what a replica reads from others: request bodies
//  for the kv service (from any client), snapshots (from a peer during
//  catch-up), and its own files on disk (which may be cut short or
//  flipped). The first input byte picks the mode, the rest is the bytes:
//    0, 1   zw_kv_handle as a write (0) or a read (1), on a kv holding a
//           few keys; oracle: a refused request and any read leave the
//           digest alone; every reply is one valid MessagePack object
//    2      zw_kv_restore; oracle: refused leaves the state alone; accepted
//           gives a snapshot that restores to the same digest and bytes
//    3      zm_replica_install (kv service); oracle: refused leaves seq and
//           digest alone; accepted gives a snapshot a fresh replica installs
//           with the same seq, epoch and digest
//    4, 5   the bytes as the replica's "log" (4) or "snapshot" (5) file,
//           with the right magic in front when the second byte is odd, then
//           zm_replica_new on the directory; oracle: opening again finds no
//           damage (the first open repaired it) and the same seq and digest
#include "fuzz_common.h"
#include "kv.h"
#include "zm_pack.h"
#include "zm_replica.h"
#include "zmesh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_dir[64];

static void s_remove_files(void);

static void
s_remove_dir(void)
{
    s_remove_files();
    rmdir(s_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    zm_fuzz_quiet();
    //  tmpfs where there is one: the replica syncs its files, which costs
    //  nothing there.
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/zm-fuzz-replica-XXXXXX", base);
    if (!mkdtemp(s_dir))
        abort();
    atexit(s_remove_dir);
    return 0;
}

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

//  A kv with three keys, so that requests find something.
static zw_kv_t *
s_kv_seeded(void)
{
    zw_kv_t *kv = zw_kv_new();
    //  {"op":"put","key":"a"|"b"|"c","value":1}
    for (char key = 'a'; key <= 'c'; key++) {
        const char put[] = {(char) 0x83, (char) 0xa2, 'o', 'p', (char) 0xa3, 'p', 'u', 't',
                            (char) 0xa3, 'k', 'e', 'y', (char) 0xa1, key, (char) 0xa5, 'v',
                            'a', 'l', 'u', 'e', 0x01};
        zmesh_msg_t *reply = NULL;
        ZM_FUZZ_CHECK(zw_kv_handle(kv, true, put, sizeof put, &reply) == ZMESH_OK);
        zmesh_msg_destroy(&reply);
    }
    return kv;
}

static void
s_check_reply(const zmesh_msg_t *reply)
{
    ZM_FUZZ_CHECK(reply != NULL);
    ZM_FUZZ_CHECK(zm_pack_check(zmesh_msg_data(reply), zmesh_msg_size(reply), 0) == ZMESH_OK);
}

static void
s_fuzz_request(bool write, const uint8_t *data, size_t size)
{
    zw_kv_t *kv = s_kv_seeded();
    char before[ZW_KV_DIGEST_HEX], after[ZW_KV_DIGEST_HEX];
    zw_kv_digest(kv, before);
    zmesh_msg_t *reply = NULL;
    int rc = zw_kv_handle(kv, write, data, size, &reply);
    ZM_FUZZ_CHECK(rc == ZMESH_OK || rc == ZMESH_EHANDLER);
    s_check_reply(reply);
    zmesh_msg_destroy(&reply);
    zw_kv_digest(kv, after);
    if (rc != ZMESH_OK || !write)
        ZM_FUZZ_CHECK(strcmp(before, after) == 0);
    if (rc == ZMESH_OK)
        ZM_FUZZ_CHECK(zw_kv_is_write(data, size) == write);
    zw_kv_destroy(&kv);
}

static void
s_fuzz_restore(const uint8_t *data, size_t size)
{
    zw_kv_t *kv = s_kv_seeded();
    char before[ZW_KV_DIGEST_HEX], after[ZW_KV_DIGEST_HEX];
    zw_kv_digest(kv, before);
    if (!zw_kv_restore(kv, data, size)) {
        zw_kv_digest(kv, after);
        ZM_FUZZ_CHECK(strcmp(before, after) == 0);
    }
    else {
        void *snapshot, *again;
        size_t snapshot_size, again_size;
        zw_kv_snapshot(kv, &snapshot, &snapshot_size);
        zw_kv_t *copy = zw_kv_new();
        ZM_FUZZ_CHECK(zw_kv_restore(copy, snapshot, snapshot_size));
        zw_kv_snapshot(copy, &again, &again_size);
        ZM_FUZZ_CHECK(again_size == snapshot_size && memcmp(again, snapshot, again_size) == 0);
        zw_kv_digest(kv, before);
        zw_kv_digest(copy, after);
        ZM_FUZZ_CHECK(strcmp(before, after) == 0);
        free(snapshot);
        free(again);
        zw_kv_destroy(&copy);
    }
    zw_kv_destroy(&kv);
}

static zm_replica_t *
s_replica(zw_kv_t *kv, const char *dir, zm_replog_report_t *report)
{
    zm_replica_service_t service = {s_handle, s_snapshot, s_restore, kv};
    char error[256];
    return zm_replica_new(&service, dir, report, error, sizeof error);
}

static void
s_fuzz_install(const uint8_t *data, size_t size)
{
    zw_kv_t *kv = s_kv_seeded();
    zm_replica_t *replica = s_replica(kv, NULL, NULL);
    char before[ZW_KV_DIGEST_HEX], after[ZW_KV_DIGEST_HEX];
    zw_kv_digest(kv, before);
    int rc = zm_replica_install(replica, data, size);
    ZM_FUZZ_CHECK(rc == ZMESH_OK || rc == ZMESH_EINVAL);
    zw_kv_digest(kv, after);
    if (rc != ZMESH_OK)
        ZM_FUZZ_CHECK(strcmp(before, after) == 0 && zm_replica_seq(replica) == 0);
    else {
        void *snapshot;
        size_t snapshot_size;
        zm_replica_snapshot(replica, &snapshot, &snapshot_size);
        zw_kv_t *other_kv = zw_kv_new();
        zm_replica_t *other = s_replica(other_kv, NULL, NULL);
        ZM_FUZZ_CHECK(zm_replica_install(other, snapshot, snapshot_size) == ZMESH_OK);
        ZM_FUZZ_CHECK(zm_replica_seq(other) == zm_replica_seq(replica));
        ZM_FUZZ_CHECK(zm_replica_epoch(other) == zm_replica_epoch(replica));
        ZM_FUZZ_CHECK(zm_replica_remembered(other) == zm_replica_remembered(replica));
        zw_kv_digest(other_kv, before);
        ZM_FUZZ_CHECK(strcmp(before, after) == 0);
        free(snapshot);
        zm_replica_destroy(&other);
        zw_kv_destroy(&other_kv);
    }
    zm_replica_destroy(&replica);
    zw_kv_destroy(&kv);
}

static void
s_remove_files(void)
{
    const char *names[] = {"log", "snapshot", "log.damaged", "snapshot.damaged", "snapshot.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", s_dir, names[i]);
        unlink(path);
    }
}

static void
s_fuzz_file(bool snapshot, bool magic, const uint8_t *data, size_t size)
{
    s_remove_files();
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, snapshot ? "snapshot" : "log");
    FILE *file = fopen(path, "wb");
    ZM_FUZZ_CHECK(file != NULL);
    if (magic)
        fwrite(snapshot ? "ZMSNAP1\n" : "ZMRLOG1\n", 1, 8, file);
    fwrite(data, 1, size, file);
    fclose(file);

    zw_kv_t *kv = zw_kv_new();
    zm_replog_report_t report;
    zm_replica_t *replica = s_replica(kv, s_dir, &report);
    ZM_FUZZ_CHECK(replica != NULL);
    ZM_FUZZ_CHECK(report.last_seq == zm_replica_seq(replica));
    uint64_t seq = zm_replica_seq(replica);
    char first[ZW_KV_DIGEST_HEX], second[ZW_KV_DIGEST_HEX];
    zw_kv_digest(kv, first);
    zm_replica_destroy(&replica);
    zw_kv_destroy(&kv);

    kv = zw_kv_new();
    replica = s_replica(kv, s_dir, &report);
    ZM_FUZZ_CHECK(replica != NULL);
    ZM_FUZZ_CHECK(!report.damaged);
    ZM_FUZZ_CHECK(zm_replica_seq(replica) == seq);
    zw_kv_digest(kv, second);
    ZM_FUZZ_CHECK(strcmp(first, second) == 0);
    zm_replica_destroy(&replica);
    zw_kv_destroy(&kv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0] % 6;
    switch (mode) {
    case 0:
    case 1:
        s_fuzz_request(mode == 0, data + 1, size - 1);
        break;
    case 2:
        s_fuzz_restore(data + 1, size - 1);
        break;
    case 3:
        s_fuzz_install(data + 1, size - 1);
        break;
    default:
        s_fuzz_file(mode == 5, data[1] & 1, data + 2, size - 2);
        break;
    }
    return 0;
}
