//  cmd_get.c - `zmesh get PATH [--output FILE]`: fetches a file from the files service
//  (`zmesh-worker --builtin files`) with a streamed read. It asks for the file's size first
//  (stat), writes each part as it comes into FILE.part, checks the byte count and the SHA-1
//  the worker sends at the end against what it wrote, and only then renames FILE.part to FILE.
//  A stream that fails (worker lost, timeout, a part missing) or a checksum that differs is an
//  error and leaves no FILE behind: a truncated file is never reported as a success. Memory
//  stays at the stream's window of parts, whatever the file's size. A progress bar goes to
//  stderr on a terminal (or, with --progress, a line a second anywhere).
#define _GNU_SOURCE                 //  asprintf

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "zm_proto.h"

#define S_SERVICE_DEFAULT "files"

//  The state of one fetch.
typedef struct {
    const zm_cli_t *cli;        //  borrowed
    const char *what;           //  borrowed: "get PATH", for messages
    zmesh_client_t *client;     //  owned
    int fd;                     //  the output; -1 if not open
    char *temp;                 //  owned: FILE.part; NULL for stdout
    uint64_t expected;          //  the size stat gave
    uint64_t received;          //  bytes written
    zdigest_t *digest;          //  owned: SHA-1 of the bytes written
    int progress;               //  0 none, 1 a bar redrawn (terminal), 2 a line a second
    int64_t started;            //  ms
    int64_t next_tick;          //  ms: when the next progress update is due
} s_get_t;

//  Packs {"op": op, "path": path}.
static zmesh_pack_t *
s_request(const char *op, const char *path)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, 2);
    zmesh_pack_str(pack, "op");
    zmesh_pack_str(pack, op);
    zmesh_pack_str(pack, "path");
    zmesh_pack_str(pack, path);
    return pack;
}

//  Reads field key of a reply map: a string into text (size bytes) or an unsigned integer.
//  False if the reply is not a map or the field is missing or of another type.
static bool
s_field(const zmesh_msg_t *reply, const char *key, char *text, size_t size, uint64_t *number)
{
    const char *data = zmesh_msg_data(reply);
    size_t length = zmesh_msg_size(reply);
    if (zmesh_msgpack_check(data, length, 8) != ZMESH_OK)
        return false;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    bool found = false;
    if (msgpack_unpack_next(&unpacked, data, length, &offset) == MSGPACK_UNPACK_SUCCESS
        && unpacked.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < unpacked.data.via.map.size && !found; i++) {
            const msgpack_object *name = &unpacked.data.via.map.ptr[i].key;
            const msgpack_object *value = &unpacked.data.via.map.ptr[i].val;
            if (name->type != MSGPACK_OBJECT_STR || name->via.str.size != strlen(key)
                || memcmp(name->via.str.ptr, key, name->via.str.size) != 0)
                continue;
            if (text && value->type == MSGPACK_OBJECT_STR && value->via.str.size < size) {
                memcpy(text, value->via.str.ptr, value->via.str.size);
                text[value->via.str.size] = '\0';
                found = true;
            }
            else if (number && value->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *number = value->via.u64;
                found = true;
            }
        }
    }
    msgpack_unpacked_destroy(&unpacked);
    return found;
}

//  The bytes of a part, which must be exactly one MessagePack bin.
static bool
s_bin(const zmesh_msg_t *part, const uint8_t **data_p, size_t *size_p)
{
    const uint8_t *data = zmesh_msg_data(part);
    size_t size = zmesh_msg_size(part), head, length;
    if (size >= 2 && data[0] == 0xc4)
        head = 2, length = data[1];
    else if (size >= 3 && data[0] == 0xc5)
        head = 3, length = (size_t) data[1] << 8 | data[2];
    else if (size >= 5 && data[0] == 0xc6)
        head = 5, length = (size_t) data[1] << 24 | (size_t) data[2] << 16
                           | (size_t) data[3] << 8 | data[4];
    else
        return false;
    if (head + length != size)
        return false;
    *data_p = data + head;
    *size_p = length;
    return true;
}

static void
s_human(double bytes, char *text, size_t size)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4)
        bytes /= 1024, unit++;
    snprintf(text, size, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
}

//  Draws the progress bar (or line) when one is due, or at the end (done).
static void
s_progress(s_get_t *self, bool done)
{
    int64_t now = zclock_mono();
    if (!self->progress || (!done && now < self->next_tick))
        return;
    self->next_tick = now + (self->progress == 1 ? 100 : 1000);
    double seconds = (double) (now - self->started) / 1000.0;
    char got[32], total[32], rate[32];
    s_human((double) self->received, got, sizeof got);
    s_human((double) self->expected, total, sizeof total);
    s_human(seconds > 0 ? (double) self->received / seconds : 0, rate, sizeof rate);
    int percent = self->expected ? (int) (self->received * 100 / self->expected) : 100;
    percent = percent > 100 ? 100 : percent;
    char bar[31];
    int filled = percent * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%s[%s] %3d%% %s / %s %s/s%s", self->progress == 1 ? "\r" : "", bar, percent,
            got, total, rate, self->progress == 1 ? (done ? "\033[K\n" : "\033[K") : "\n");
    fflush(stderr);
}

static int
s_fail(s_get_t *self, int err, const char *format, ...) __attribute__((format(printf, 3, 4)));

static int
s_fail(s_get_t *self, int err, const char *format, ...)
{
    char detail[512];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    if (self->progress == 1)
        fputc('\n', stderr);
    return zm_cli_fail(self->what, err, detail);
}

//  Fails with the client's error detail, as zmesh call does.
static int
s_fail_call(s_get_t *self, int rc)
{
    char detail[512];
    zm_cli_detail(self->cli, self->client, rc, detail, sizeof detail);
    if (self->progress == 1)
        fputc('\n', stderr);
    return zm_cli_fail(self->what, rc, detail);
}

//  Asks the worker for the file's type and size.
static int
s_stat(s_get_t *self, const char *service, const char *path)
{
    zmesh_pack_t *request = s_request("stat", path);
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(self->client, service, zmesh_pack_data(request),
                               zmesh_pack_size(request), self->cli->timeout_ms, &reply);
    zmesh_pack_destroy(&request);
    if (rc != ZMESH_OK)
        return s_fail_call(self, rc);
    char type[16] = "";
    bool ok = s_field(reply, "type", type, sizeof type, NULL)
              && s_field(reply, "size", NULL, 0, &self->expected);
    zmesh_msg_destroy(&reply);
    if (!ok)
        return s_fail(self, ZMESH_EPROTO, "the service's stat reply has no type and size: is "
                                          "%s a files service?", service);
    if (strcmp(type, "file") != 0)
        return s_fail(self, ZMESH_EINVAL, "%s is a %s, not a regular file", path, type);
    return ZM_CLI_EXIT_OK;
}

static bool
s_write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t count = write(fd, data, size);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return false;
        data += count;
        size -= (size_t) count;
    }
    return true;
}

//  Checks the final reply of the read against what was written.
static int
s_verify(s_get_t *self, const zmesh_msg_t *reply)
{
    uint64_t size = 0;
    char sha1[64] = "";
    if (!s_field(reply, "size", NULL, 0, &size) || !s_field(reply, "sha1", sha1, sizeof sha1, NULL))
        return s_fail(self, ZMESH_EPROTO, "the read's final reply has no size and sha1");
    if (size != self->received)
        return s_fail(self, ZMESH_EPROTO, "the worker sent %llu bytes, %llu arrived",
                      (unsigned long long) size, (unsigned long long) self->received);
    char mine[41];
    const byte *hash = zdigest_data(self->digest);
    for (int i = 0; i < 20; i++)
        snprintf(mine + 2 * i, 3, "%02x", hash[i]);
    if (strcmp(mine, sha1) != 0)
        return s_fail(self, ZMESH_EPROTO, "checksum mismatch: the worker's SHA-1 is %s, the "
                                          "bytes written have %s", sha1, mine);
    return ZM_CLI_EXIT_OK;
}

//  Reads the stream into the output.
static int
s_fetch(s_get_t *self, const char *service, const char *path)
{
    zmesh_pack_t *request = s_request("read", path);
    uint64_t id = 0;
    int rc = zmesh_client_stream(self->client, service, zmesh_pack_data(request),
                                 zmesh_pack_size(request), self->cli->timeout_ms,
                                 self->cli->window, &id);
    zmesh_pack_destroy(&request);
    if (rc != ZMESH_OK)
        return s_fail_call(self, rc);
    while (true) {
        zmesh_msg_t *msg = NULL;
        bool last = false;
        rc = zmesh_client_next(self->client, id, -1, &msg, &last);
        if (rc != ZMESH_OK) {
            zmesh_msg_destroy(&msg);
            if (!last)
                zmesh_client_cancel(self->client, id);
            return s_fail_call(self, rc);
        }
        if (last) {
            int exit_code = s_verify(self, msg);
            zmesh_msg_destroy(&msg);
            return exit_code;
        }
        const uint8_t *data;
        size_t size;
        bool ok = s_bin(msg, &data, &size);
        if (ok) {
            ok = s_write_all(self->fd, data, size);
            if (!ok) {
                zmesh_msg_destroy(&msg);
                zmesh_client_cancel(self->client, id);
                return s_fail(self, ZMESH_ESYS, "cannot write %s: %s",
                              self->temp ? self->temp : "stdout", strerror(errno));
            }
            zdigest_update(self->digest, (byte *) data, size);
            self->received += size;
        }
        zmesh_msg_destroy(&msg);
        if (!ok) {
            zmesh_client_cancel(self->client, id);
            return s_fail(self, ZMESH_EPROTO, "a part of the read is not MessagePack bin");
        }
        s_progress(self, false);
    }
}

int
zm_cli_get(const zm_cli_t *cli)
{
    const char *path = cli->args[0];
    const char *service = cli->service ? cli->service : S_SERVICE_DEFAULT;
    char what[300];
    snprintf(what, sizeof what, "get %s", path);
    char *copy = strdup(path);
    if (!copy)
        abort();
    const char *output = cli->output ? cli->output : basename(copy);
    if (!cli->output && (strcmp(output, "/") == 0 || strcmp(output, ".") == 0
                         || strcmp(output, "..") == 0)) {
        free(copy);
        fprintf(stderr, "zmesh: %s: no file name in the path: give --output FILE\n", what);
        return ZM_CLI_EXIT_USAGE;
    }
    s_get_t self = {.cli = cli, .what = what, .fd = -1, .digest = zdigest_new()};
    bool to_stdout = strcmp(output, "-") == 0;
    self.progress = isatty(STDERR_FILENO) ? 1 : cli->progress ? 2 : 0;
    int exit_code = ZM_CLI_EXIT_OK;
    self.client = zm_cli_connect(cli, what, &exit_code);
    if (self.client)
        exit_code = s_stat(&self, service, path);
    if (exit_code == ZM_CLI_EXIT_OK && to_stdout)
        self.fd = STDOUT_FILENO;
    else if (exit_code == ZM_CLI_EXIT_OK) {
        if (asprintf(&self.temp, "%s.part", output) < 0)
            abort();
        self.fd = open(self.temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (self.fd < 0) {
            exit_code = s_fail(&self, ZMESH_ESYS, "cannot create %s: %s", self.temp,
                               strerror(errno));
            free(self.temp);
            self.temp = NULL;
        }
    }
    if (exit_code == ZM_CLI_EXIT_OK) {
        self.started = zclock_mono();
        s_progress(&self, true);
        exit_code = s_fetch(&self, service, path);
    }
    if (exit_code == ZM_CLI_EXIT_OK)
        s_progress(&self, true);
    if (self.temp) {
        if (close(self.fd) != 0 && exit_code == ZM_CLI_EXIT_OK)
            exit_code = s_fail(&self, ZMESH_ESYS, "cannot write %s: %s", self.temp,
                               strerror(errno));
        if (exit_code == ZM_CLI_EXIT_OK && rename(self.temp, output) != 0)
            exit_code = s_fail(&self, ZMESH_ESYS, "cannot rename %s to %s: %s", self.temp,
                               output, strerror(errno));
        if (exit_code != ZM_CLI_EXIT_OK)
            unlink(self.temp);          //  a failed fetch leaves nothing that looks whole
        free(self.temp);
    }
    zdigest_destroy(&self.digest);
    zmesh_client_destroy(&self.client);
    free(copy);
    return exit_code;
}
