//  zm_replog - a replica's durable log and snapshot.
//
//  log:       "ZMRLOG1\n", then records: size u32, crc u32, seq u64 (little
//             endian), then size bytes. crc is CRC-32C over seq, size and
//             the bytes, so a flipped bit in any field is caught.
//  snapshot:  "ZMSNAP1\n", seq u64, size u64, crc u32 (over seq, size and
//             the bytes), then size bytes. Written to snapshot.tmp, synced,
//             renamed over snapshot, and the directory synced: a crash
//             leaves the old snapshot or the new one, never half of one.
//
//  Records at or below the snapshot's seq are skipped on replay: a crash
//  between a new snapshot and the log's truncation leaves them behind.
#include "zm_replog.h"

#include "zm_alloc.h"
#include "zm_crc.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_LOG_MAGIC "ZMRLOG1\n"
#define S_SNAP_MAGIC "ZMSNAP1\n"
#define S_MAGIC_SIZE 8
#define S_RECORD_HEADER 16          //  size, crc, seq
#define S_SNAP_HEADER (S_MAGIC_SIZE + 8 + 8 + 4)

struct zm_replog {
    char *dir;                      //  owned
    int log_fd;
    uint64_t log_bytes;             //  the log file's size: where the next record goes
    uint64_t last_seq;
    bool broken;                    //  an append failed and could not be undone
};

static void
s_put32(uint8_t *out, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t) (value >> (8 * i));
}

static void
s_put64(uint8_t *out, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (value >> (8 * i));
}

static uint32_t
s_get32(const uint8_t *in)
{
    uint32_t value = 0;
    for (int i = 3; i >= 0; i--)
        value = value << 8 | in[i];
    return value;
}

static uint64_t
s_get64(const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = value << 8 | in[i];
    return value;
}

//  The checksum of a record or a snapshot: over seq, size, then the bytes.
static uint32_t
s_crc(uint64_t seq, uint64_t size, const void *data)
{
    uint8_t fields[16];
    s_put64(fields, seq);
    s_put64(fields + 8, size);
    uint32_t crc = zm_crc32c(0, fields, sizeof fields);
    return zm_crc32c(crc, data, (size_t) size);
}

static char *
s_path(const zm_replog_t *self, const char *name)
{
    size_t size = strlen(self->dir) + strlen(name) + 2;
    char *path = zm_alloc(size);
    snprintf(path, size, "%s/%s", self->dir, name);
    return path;
}

//  Reads exactly size bytes at offset; false on a short read or an error.
static bool
s_pread_all(int fd, void *buffer, size_t size, uint64_t offset)
{
    uint8_t *cursor = buffer;
    while (size > 0) {
        ssize_t got = pread(fd, cursor, size, (off_t) offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        cursor += got;
        size -= (size_t) got;
        offset += (uint64_t) got;
    }
    return true;
}

//  Writes every iovec at offset, resuming after short writes.
static bool
s_pwrite_all(int fd, struct iovec *iov, int count, uint64_t offset)
{
    while (count > 0) {
        ssize_t put = pwritev(fd, iov, count, (off_t) offset);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return false;
        offset += (uint64_t) put;
        while (count > 0 && (size_t) put >= iov->iov_len) {
            put -= (ssize_t) iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *) iov->iov_base + put;
            iov->iov_len -= (size_t) put;
        }
    }
    return true;
}

static int
s_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void s_damage(zm_replog_report_t *report, bool torn, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_damage(zm_replog_report_t *report, bool torn, const char *format, ...)
{
    if (report->damaged)
        return;                     //  the first damage is the one that matters
    report->damaged = true;
    report->torn_tail = torn;
    va_list args;
    va_start(args, format);
    vsnprintf(report->reason, sizeof report->reason, format, args);
    va_end(args);
}

//  Moves name aside to name.damaged (replacing an older one).
static void
s_set_aside(zm_replog_t *self, const char *name)
{
    char *from = s_path(self, name);
    size_t size = strlen(name) + sizeof ".damaged";
    char *aside_name = zm_alloc(size);
    snprintf(aside_name, size, "%s.damaged", name);
    char *to = s_path(self, aside_name);
    rename(from, to);
    free(aside_name);
    free(from);
    free(to);
}

//  Reads and checks the snapshot; true with *data_p (owned) if there is a
//  good one, false with *present_p telling whether there was a file at all.
static bool
s_read_snapshot(zm_replog_t *self, uint64_t *seq_p, uint8_t **data_p, size_t *size_p,
                bool *present_p, zm_replog_report_t *report)
{
    char *path = s_path(self, "snapshot");
    int fd = open(path, O_RDONLY);
    free(path);
    *present_p = fd >= 0;
    if (fd < 0)
        return false;
    struct stat info;
    uint8_t header[S_SNAP_HEADER];
    bool ok = false;
    if (fstat(fd, &info) != 0 || (uint64_t) info.st_size < S_SNAP_HEADER
        || !s_pread_all(fd, header, sizeof header, 0)
        || memcmp(header, S_SNAP_MAGIC, S_MAGIC_SIZE) != 0)
        s_damage(report, false, "snapshot: no valid header (%" PRIu64 " bytes)",
                 (uint64_t) info.st_size);
    else {
        uint64_t seq = s_get64(header + S_MAGIC_SIZE);
        uint64_t size = s_get64(header + S_MAGIC_SIZE + 8);
        uint32_t crc = s_get32(header + S_MAGIC_SIZE + 16);
        if (size > ZM_REPLOG_SNAPSHOT_MAX || S_SNAP_HEADER + size != (uint64_t) info.st_size)
            s_damage(report, false, "snapshot: length %" PRIu64 " does not match the file (%" PRIu64
                     " bytes)", size, (uint64_t) info.st_size);
        else {
            uint8_t *data = zm_alloc(size ? (size_t) size : 1);
            if (!s_pread_all(fd, data, (size_t) size, S_SNAP_HEADER))
                s_damage(report, false, "snapshot: unreadable (%" PRIu64 " bytes)", size);
            else if (s_crc(seq, size, data) != crc)
                s_damage(report, false, "snapshot: checksum mismatch (seq %" PRIu64 ", %" PRIu64
                         " bytes)", seq, size);
            else {
                *seq_p = seq;
                *data_p = data;
                *size_p = (size_t) size;
                ok = true;
            }
            if (!ok)
                free(data);
        }
    }
    close(fd);
    return ok;
}

//  Opens the log, writing its header if it is new; -1 on an I/O error.
static int
s_open_log(zm_replog_t *self, bool fresh)
{
    char *path = s_path(self, "log");
    int fd = open(path, O_RDWR | O_CREAT | (fresh ? O_TRUNC : 0) | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return -1;
    struct stat info;
    if (fstat(fd, &info) != 0) {
        close(fd);
        return -1;
    }
    if (info.st_size == 0) {
        struct iovec iov = {S_LOG_MAGIC, S_MAGIC_SIZE};
        //  A new file: its directory entry must be durable too, or a power
        //  loss could take the whole log, synced records and all.
        if (!s_pwrite_all(fd, &iov, 1, 0) || fdatasync(fd) != 0 || s_sync_dir(self->dir) != 0) {
            close(fd);
            return -1;
        }
    }
    self->log_fd = fd;
    self->log_bytes = info.st_size ? (uint64_t) info.st_size : S_MAGIC_SIZE;   //  replay checks it
    return 0;
}

//  Copies the log's bytes from offset to its end into "log.damaged"
//  (replacing an older one) before they are cut off: what the replay could
//  not use is kept for whoever investigates. False on an I/O error.
static bool
s_keep_damaged(zm_replog_t *self, uint64_t offset, uint64_t end)
{
    char *path = s_path(self, "log.damaged");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return false;
    uint8_t buffer[65536];
    bool ok = true;
    for (uint64_t at = offset; ok && at < end;) {
        size_t size = end - at < sizeof buffer ? (size_t) (end - at) : sizeof buffer;
        struct iovec iov = {buffer, size};
        ok = s_pread_all(self->log_fd, buffer, size, at) && s_pwrite_all(fd, &iov, 1, at - offset);
        at += size;
    }
    ok = ok && fsync(fd) == 0;
    close(fd);
    return ok;
}

//  Replays the log's records after self->last_seq through apply; cuts the
//  log after its last good record.
static int
s_replay_log(zm_replog_t *self, zm_replog_apply_fn *apply, void *arg, uint64_t snapshot_seq,
             zm_replog_report_t *report)
{
    struct stat info;
    if (fstat(self->log_fd, &info) != 0)
        return -1;
    uint64_t file_size = (uint64_t) info.st_size;
    uint8_t magic[S_MAGIC_SIZE];
    if (file_size < S_MAGIC_SIZE || !s_pread_all(self->log_fd, magic, sizeof magic, 0)
        || memcmp(magic, S_LOG_MAGIC, S_MAGIC_SIZE) != 0) {
        s_damage(report, false, "log: no valid header (%" PRIu64 " bytes)", file_size);
        close(self->log_fd);
        self->log_fd = -1;
        s_set_aside(self, "log");
        return s_open_log(self, true);
    }
    uint64_t offset = S_MAGIC_SIZE;
    uint8_t *data = NULL;
    size_t capacity = 0;
    while (offset < file_size) {
        uint8_t header[S_RECORD_HEADER];
        if (file_size - offset < S_RECORD_HEADER) {
            s_damage(report, true, "log: incomplete record header at offset %" PRIu64
                     " (%" PRIu64 " bytes left)", offset, file_size - offset);
            break;
        }
        if (!s_pread_all(self->log_fd, header, sizeof header, offset))
            return -1;
        uint32_t size = s_get32(header);
        uint32_t crc = s_get32(header + 4);
        uint64_t seq = s_get64(header + 8);
        if (size > ZM_REPLOG_RECORD_MAX) {
            s_damage(report, false, "log: record length %" PRIu64 " at offset %" PRIu64
                     " is over the limit", (uint64_t) size, offset);
            break;
        }
        if (file_size - offset - S_RECORD_HEADER < size) {
            s_damage(report, true, "log: incomplete record at offset %" PRIu64 " (%" PRIu64
                     " bytes of it missing)", offset,
                     (uint64_t) size - (file_size - offset - S_RECORD_HEADER));
            break;
        }
        if (size > capacity) {
            free(data);
            capacity = size;
            data = zm_alloc(capacity);
        }
        if (!s_pread_all(self->log_fd, data, size, offset + S_RECORD_HEADER)) {
            free(data);
            return -1;
        }
        if (s_crc(seq, size, data) != crc) {
            s_damage(report, false, "log: checksum mismatch at offset %" PRIu64 " (seq %" PRIu64
                     ")", offset, seq);
            break;
        }
        if (seq > snapshot_seq) {
            if (seq != self->last_seq + 1) {
                s_damage(report, false, "log: seq %" PRIu64 " follows seq %" PRIu64, seq,
                         self->last_seq);
                break;
            }
            if (!apply(arg, seq, data, size)) {
                s_damage(report, false, "log: record seq %" PRIu64 " at offset %" PRIu64
                         " does not apply", seq, offset);
                break;
            }
            self->last_seq = seq;
            report->records++;
        }
        offset += S_RECORD_HEADER + size;
    }
    free(data);
    if (offset < file_size
        && (!s_keep_damaged(self, offset, file_size) || ftruncate(self->log_fd, (off_t) offset) != 0
            || fdatasync(self->log_fd) != 0))
        return -1;
    self->log_bytes = offset;
    return 0;
}

zm_replog_t *
zm_replog_open(const char *dir, zm_replog_restore_fn *restore, zm_replog_apply_fn *apply,
               void *arg, zm_replog_report_t *report, char *error, size_t error_size)
{
    assert(dir && restore && apply && report);
    memset(report, 0, sizeof *report);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(error, error_size, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    zm_replog_t *self = zm_alloc(sizeof *self);
    self->dir = strdup(dir);
    self->log_fd = -1;

    uint64_t snapshot_seq = 0;
    uint8_t *snapshot = NULL;
    size_t snapshot_size = 0;
    bool present = false;
    bool good = s_read_snapshot(self, &snapshot_seq, &snapshot, &snapshot_size, &present, report);
    if (good && !restore(arg, snapshot_seq, snapshot, snapshot_size)) {
        restore(arg, 0, NULL, 0);
        s_damage(report, false, "snapshot: seq %" PRIu64 " (%" PRIu64 " bytes) is not a state",
                 snapshot_seq, (uint64_t) snapshot_size);
        good = false;
    }
    free(snapshot);
    int rc;
    if (present && !good) {
        //  The log built on the lost snapshot: none of it can be applied.
        s_set_aside(self, "snapshot");
        s_set_aside(self, "log");
        rc = s_open_log(self, true);
        if (rc == 0)
            rc = s_sync_dir(dir);
    }
    else {
        report->snapshot_seq = snapshot_seq;
        self->last_seq = snapshot_seq;
        rc = s_open_log(self, false);
        if (rc == 0)
            rc = s_replay_log(self, apply, arg, snapshot_seq, report);
    }
    if (rc != 0) {
        snprintf(error, error_size, "cannot use %s: %s", dir, strerror(errno));
        zm_replog_destroy(&self);
        return NULL;
    }
    report->last_seq = self->last_seq;
    return self;
}

void
zm_replog_destroy(zm_replog_t **self_p)
{
    assert(self_p);
    zm_replog_t *self = *self_p;
    if (!self)
        return;
    if (self->log_fd >= 0)
        close(self->log_fd);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

int
zm_replog_append(zm_replog_t *self, uint64_t seq, const void *data, size_t size)
{
    assert(self);
    if (self->broken) {
        errno = EIO;
        return -1;
    }
    if (seq != self->last_seq + 1 || size > ZM_REPLOG_RECORD_MAX || (size && !data)) {
        errno = EINVAL;
        return -1;
    }
    uint8_t header[S_RECORD_HEADER];
    s_put32(header, (uint32_t) size);
    s_put32(header + 4, s_crc(seq, size, data));
    s_put64(header + 8, seq);
    struct iovec iov[2] = {{header, sizeof header}, {(void *) data, size}};
    if (!s_pwrite_all(self->log_fd, iov, size ? 2 : 1, self->log_bytes)) {
        int saved = errno;
        //  Undo a partial record, or later appends would follow garbage.
        if (ftruncate(self->log_fd, (off_t) self->log_bytes) != 0)
            self->broken = true;
        errno = saved;
        return -1;
    }
    self->log_bytes += S_RECORD_HEADER + size;
    self->last_seq = seq;
    return 0;
}

int
zm_replog_sync(zm_replog_t *self)
{
    assert(self);
    if (self->broken) {
        errno = EIO;
        return -1;
    }
    return fdatasync(self->log_fd);
}

int
zm_replog_snapshot(zm_replog_t *self, uint64_t seq, const void *data, size_t size)
{
    assert(self);
    if (self->broken) {
        errno = EIO;
        return -1;
    }
    if (size > ZM_REPLOG_SNAPSHOT_MAX || (size && !data)) {
        errno = EINVAL;
        return -1;
    }
    uint8_t header[S_SNAP_HEADER];
    memcpy(header, S_SNAP_MAGIC, S_MAGIC_SIZE);
    s_put64(header + S_MAGIC_SIZE, seq);
    s_put64(header + S_MAGIC_SIZE + 8, size);
    s_put32(header + S_MAGIC_SIZE + 16, s_crc(seq, size, data));
    char *temp = s_path(self, "snapshot.tmp");
    char *path = s_path(self, "snapshot");
    //  1. The new snapshot, whole and synced, beside the old one: a failure
    //     here changes nothing.
    bool written = false;
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        struct iovec iov[2] = {{header, sizeof header}, {(void *) data, size}};
        written = s_pwrite_all(fd, iov, size ? 2 : 1, 0) && fsync(fd) == 0;
        int saved = errno;
        close(fd);
        errno = saved;
    }
    if (!written) {
        int saved = errno;
        unlink(temp);
        free(temp);
        free(path);
        errno = saved;
        return -1;
    }
    //  2. Going back, the log's records after seq go first, so that a crash
    //     cannot replay them on top of the new snapshot (a crash before the
    //     rename leaves the old snapshot alone: a prefix, caught up again).
    //  3. The rename, made durable with the directory.
    //  4. Going forward, the log's records the snapshot covers go last: a
    //     crash before leaves them, and the replay skips them.
    //  From 2 on, a failure leaves disk and memory apart: the log is broken
    //  and refuses every later call, so nothing is acknowledged on it.
    bool ok = true;
    if (seq < self->last_seq)
        ok = ftruncate(self->log_fd, S_MAGIC_SIZE) == 0 && fdatasync(self->log_fd) == 0;
    ok = ok && rename(temp, path) == 0 && s_sync_dir(self->dir) == 0;
    ok = ok && ftruncate(self->log_fd, S_MAGIC_SIZE) == 0 && fdatasync(self->log_fd) == 0;
    int saved = errno;
    if (!ok)
        unlink(temp);
    free(temp);
    free(path);
    self->last_seq = seq;
    self->log_bytes = S_MAGIC_SIZE;
    if (!ok) {
        self->broken = true;
        errno = saved;
        return -1;
    }
    return 0;
}

uint64_t
zm_replog_last_seq(const zm_replog_t *self)
{
    assert(self);
    return self->last_seq;
}

uint64_t
zm_replog_log_bytes(const zm_replog_t *self)
{
    assert(self);
    return self->log_bytes;
}
