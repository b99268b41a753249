//  files.c - the built-in files service: answers {"op": "stat" | "list" | "read", "path": P,
//  "offset": N, "length": N} for the files under one root. A streamed read sends the bytes as
//  parts of at most S_CHUNK bytes (MessagePack bin), each only when the client has credit for
//  it, and ends with {"size": bytes, "sha1": hex}; a streamed list sends arrays of entries. A
//  path is resolved component by component from a descriptor of the root (symbolic links
//  included) and must stay under it: absolute paths, ".." and links that lead out are refused
//  with a reason, never followed. Only regular files are opened for reading. It never writes.
#define _GNU_SOURCE                 //  realpath with NULL, O_PATH, O_CLOEXEC

#include "files.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zm_proto.h"

#define S_CHUNK (256u << 10)        //  bytes per part, when the size limit allows
#define S_LIST_BATCH 256            //  entries per part of a streamed list
#define S_LIST_MAX 10000            //  entries of a list that is not streamed
#define S_REQUEST_MAX 8192          //  bytes of a request
//  Longest wait for credit before a part. The broker cancels a stream silent past its
//  timeout, but a lost CANCEL must not hold a handler thread for ever.
#define S_PART_WAIT_MS (10 * 60 * 1000)

struct zw_files {
    char *root;                     //  owned: the root, resolved
    size_t root_size;
    int root_fd;                    //  owned: O_PATH descriptor of the root; paths start here
    size_t chunk;                   //  bytes per part
};

//  What a request asked for.
typedef struct {
    char op[8];
    char path[PATH_MAX];            //  as given, relative to the root
    uint64_t offset;
    uint64_t length;                //  0: to the end
} s_request_t;

zw_files_t *
zw_files_new(const char *root, char *error, size_t error_size)
{
    char *resolved = realpath(root, NULL);
    struct stat info;
    if (!resolved || stat(resolved, &info) != 0 || !S_ISDIR(info.st_mode)
        || access(resolved, R_OK | X_OK) != 0) {
        snprintf(error, error_size, "--root %s is not a directory we can read (%s)", root,
                 resolved && errno == 0 ? "not a directory" : strerror(errno ? errno : ENOTDIR));
        free(resolved);
        return NULL;
    }
    zw_files_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->root = resolved;
    self->root_size = strlen(resolved);
    self->root_fd = open(resolved, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (self->root_fd < 0) {
        snprintf(error, error_size, "--root %s cannot be opened (%s)", root, strerror(errno));
        free(resolved);
        free(self);
        return NULL;
    }
    size_t max_body = zm_max_body_default();
    self->chunk = max_body - 16 < S_CHUNK ? max_body - 16 : S_CHUNK;     //  room for the bin head
    return self;
}

void
zw_files_destroy(zw_files_t **self_p)
{
    zw_files_t *self = *self_p;
    if (!self)
        return;
    close(self->root_fd);
    free(self->root);
    free(self);
    *self_p = NULL;
}

//  Fails the request with a reason (a MessagePack str), as handlers do.
static int
s_fail(zmesh_msg_t **reply_p, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int
s_fail(zmesh_msg_t **reply_p, const char *format, ...)
{
    char text[ZM_REASON_MAX + 1];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_str(pack, text);
    *reply_p = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return ZMESH_EINVAL;
}

static bool
s_key_is(const msgpack_object *key, const char *name)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(name)
           && memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

//  Reads the request map. Returns false with a reason in *reply_p.
static bool
s_parse(const zmesh_msg_t *message, s_request_t *request, zmesh_msg_t **reply_p)
{
    memset(request, 0, sizeof *request);
    const char *data = zmesh_msg_data(message);
    size_t size = zmesh_msg_size(message);
    //  Checked before unpacking: msgpack-c allocates what a header claims.
    if (size > S_REQUEST_MAX || zmesh_msgpack_check(data, size, 4) != ZMESH_OK) {
        s_fail(reply_p, "a request is a map: {\"op\": \"stat\"|\"list\"|\"read\", \"path\": ...}");
        return false;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    bool ok = msgpack_unpack_next(&unpacked, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && unpacked.data.type == MSGPACK_OBJECT_MAP;
    for (uint32_t i = 0; ok && i < unpacked.data.via.map.size; i++) {
        const msgpack_object *key = &unpacked.data.via.map.ptr[i].key;
        const msgpack_object *value = &unpacked.data.via.map.ptr[i].val;
        bool text = value->type == MSGPACK_OBJECT_STR;
        bool number = value->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        if (s_key_is(key, "op") && text && value->via.str.size < sizeof request->op)
            memcpy(request->op, value->via.str.ptr, value->via.str.size);
        else if (s_key_is(key, "path") && text && value->via.str.size < sizeof request->path) {
            if (memchr(value->via.str.ptr, '\0', value->via.str.size))
                ok = false;
            memcpy(request->path, value->via.str.ptr, value->via.str.size);
        }
        else if (s_key_is(key, "offset") && number)
            request->offset = value->via.u64;
        else if (s_key_is(key, "length") && number)
            request->length = value->via.u64;
        else
            ok = false;
    }
    msgpack_unpacked_destroy(&unpacked);
    if (!ok)
        s_fail(reply_p, "bad request: known fields are op (str), path (str), offset and length "
                        "(unsigned integers)");
    return ok;
}

//  A path resolved under the root: the object itself as an O_PATH descriptor, which nothing
//  can swap for another afterwards, and, when it was reached by name, the directory holding it
//  and that name, to open it for reading without following anything.
typedef struct {
    int fd;                         //  owned: O_PATH descriptor of the object
    int parent;                     //  owned: O_PATH descriptor of its directory, or -1
    char name[NAME_MAX + 1];        //  its name in parent
} s_target_t;

static void
s_target_close(s_target_t *target)
{
    if (target->fd >= 0)
        close(target->fd);
    if (target->parent >= 0)
        close(target->parent);
    target->fd = target->parent = -1;
}

#define S_LINKS_MAX 40              //  symbolic links followed in one path, as the kernel does
#define S_DEPTH_MAX 1024            //  directories deep below the root

//  Resolves the request's path under the root, one component at a time from the root's
//  descriptor: each is opened with O_NOFOLLOW relative to the directory already reached, and a
//  symbolic link is read and its target walked the same way, ".." in it going back up the
//  directories held, never past the root. Nothing is looked up by a path string, so a writer
//  under the root who swaps a directory for a link between our check and our use changes
//  nothing: the descriptors held are what was checked. Returns false with a reason in *reply_p
//  for a path that is absolute, has a ".." part, does not exist, or leads out of the root
//  through a symbolic link.
static bool
s_resolve(const zw_files_t *self, const char *path, s_target_t *target, zmesh_msg_t **reply_p)
{
    target->fd = target->parent = -1;
    target->name[0] = '\0';
    if (path[0] == '/') {
        s_fail(reply_p, "refused: '%s' is an absolute path; paths are relative to the root",
               path);
        return false;
    }
    for (const char *part = path; *part; part += strcspn(part, "/"), part += strspn(part, "/")) {
        if (strncmp(part, "..", 2) == 0 && (part[2] == '/' || part[2] == '\0')) {
            s_fail(reply_p, "refused: '%s' has a '..' part; paths may not leave the root", path);
            return false;
        }
    }
    //  stack[0] is the root; stack[depth] the directory reached. The last component opened
    //  by name is at stack[depth + 1] while it is not known to be a directory.
    int *stack = malloc(sizeof(int) * (S_DEPTH_MAX + 2));
    char *work = malloc(2 * PATH_MAX + 2);      //  what is left to walk
    char *link = malloc(PATH_MAX + 1);
    if (!stack || !work || !link)
        abort();
    stack[0] = dup(self->root_fd);
    size_t depth = 0;
    snprintf(work, 2 * PATH_MAX + 2, "%s", path);
    int links = 0;
    int error = stack[0] < 0 ? errno : 0;
    bool escaped = false;
    bool named = false;                         //  stack[depth] was opened by name
    char *at = work;
    while (!error && !escaped) {
        at += strspn(at, "/");
        if (*at == '\0')
            break;
        size_t size = strcspn(at, "/");
        char name[NAME_MAX + 1];
        if (size > NAME_MAX) {
            error = ENAMETOOLONG;
            break;
        }
        memcpy(name, at, size);
        name[size] = '\0';
        at += size;
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {          //  only from a link's target
            if (depth == 0)
                escaped = true;
            else {
                close(stack[depth--]);
                named = false;
            }
            continue;
        }
        struct stat info;
        if (depth > 0) {
            //  Going down from stack[depth]: it must be a directory.
            if (fstat(stack[depth], &info) != 0) {
                error = errno;
                break;
            }
            if (!S_ISDIR(info.st_mode)) {
                error = ENOTDIR;
                break;
            }
        }
        if (depth == S_DEPTH_MAX) {
            error = ENAMETOOLONG;
            break;
        }
        int fd = openat(stack[depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &info) != 0) {
            error = errno;
            if (fd >= 0)
                close(fd);
            break;
        }
        if (!S_ISLNK(info.st_mode)) {
            stack[++depth] = fd;
            named = true;
            snprintf(target->name, sizeof target->name, "%s", name);
            continue;
        }
        //  A symbolic link: its target, then the rest of the path, walked from here.
        ssize_t length = readlinkat(fd, "", link, PATH_MAX);
        close(fd);
        if (length < 0 || length >= PATH_MAX || ++links > S_LINKS_MAX) {
            error = length < 0 ? errno : length >= PATH_MAX ? ENAMETOOLONG : ELOOP;
            break;
        }
        link[length] = '\0';
        const char *from = link;
        if (link[0] == '/') {
            //  An absolute target is followed only if it names a place under the root.
            bool under = self->root_size == 1
                         || (strncmp(link, self->root, self->root_size) == 0
                             && (link[self->root_size] == '/' || link[self->root_size] == '\0'));
            if (!under) {
                escaped = true;
                break;
            }
            from = link + (self->root_size == 1 ? 0 : self->root_size);
            while (depth > 0)
                close(stack[depth--]);
            named = false;
        }
        size_t rest = strlen(at);
        if (strlen(from) + 1 + rest + 1 > 2 * PATH_MAX + 2) {
            error = ENAMETOOLONG;
            break;
        }
        memmove(work + strlen(from) + 1, at, rest + 1);
        memcpy(work, from, strlen(from));
        work[strlen(from)] = '/';
        at = work;
    }
    size_t keep = 0;                            //  stack entries handed to target
    if (!error && !escaped) {
        target->fd = stack[depth];
        keep = 1;
        if (named && depth > 0) {
            target->parent = stack[depth - 1];
            keep = 2;
        }
        else
            target->name[0] = '\0';
    }
    for (size_t i = 0; i + keep <= depth; i++)
        close(stack[i]);
    free(stack);
    free(work);
    free(link);
    if (escaped) {
        s_fail(reply_p, "refused: '%s' leads out of the root through a symbolic link", path);
        return false;
    }
    if (error) {
        s_fail(reply_p, "cannot open '%s': %s", path, strerror(error));
        return false;
    }
    return true;
}

static const char *
s_type(mode_t mode)
{
    return S_ISREG(mode) ? "file" : S_ISDIR(mode) ? "dir" : S_ISLNK(mode) ? "link" : "other";
}

static int
s_reply_pack(zmesh_pack_t *pack, zmesh_msg_t **reply_p)
{
    *reply_p = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return ZMESH_OK;
}

static int
s_stat(const s_request_t *request, const s_target_t *target, zmesh_msg_t **reply_p)
{
    struct stat info;
    if (fstat(target->fd, &info) != 0)
        return s_fail(reply_p, "cannot stat '%s': %s", request->path, strerror(errno));
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, 5);
    zmesh_pack_str(pack, "path");
    zmesh_pack_str(pack, request->path);
    zmesh_pack_str(pack, "type");
    zmesh_pack_str(pack, s_type(info.st_mode));
    zmesh_pack_str(pack, "size");
    zmesh_pack_uint(pack, (uint64_t) info.st_size);
    zmesh_pack_str(pack, "mtime");
    zmesh_pack_int(pack, (int64_t) info.st_mtime);
    zmesh_pack_str(pack, "mode");
    zmesh_pack_uint(pack, info.st_mode & 07777);
    return s_reply_pack(pack, reply_p);
}

//  Bytes of an array of count items whose packed bytes are in items: the array head, then
//  the items as they are. The caller frees *data_p.
static size_t
s_array_of(const zmesh_pack_t *items, uint64_t count, char **data_p)
{
    zmesh_pack_t *head = zmesh_pack_new();
    zmesh_pack_array(head, (uint32_t) count);
    size_t size = zmesh_pack_size(head) + zmesh_pack_size(items);
    char *data = malloc(size ? size : 1);
    if (!data)
        abort();
    memcpy(data, zmesh_pack_data(head), zmesh_pack_size(head));
    memcpy(data + zmesh_pack_size(head), zmesh_pack_data(items), zmesh_pack_size(items));
    zmesh_pack_destroy(&head);
    *data_p = data;
    return size;
}

//  Lists a directory: streamed, arrays of up to S_LIST_BATCH entries and then {"entries": n};
//  otherwise one reply {"entries": n, "list": [...]} of at most S_LIST_MAX entries.
static int
s_list(const s_request_t *request, const s_target_t *target, zmesh_msg_t **reply_p)
{
    int fd = openat(target->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        int error = errno;
        if (fd >= 0)
            close(fd);
        return s_fail(reply_p, "cannot list '%s': %s", request->path, strerror(error));
    }
    bool streaming = zmesh_worker_streaming();
    zmesh_pack_t *entries = zmesh_pack_new();   //  entries not sent yet, packed one by one
    uint64_t count = 0, pending = 0;
    int rc = ZMESH_OK;
    struct dirent *entry;
    while (rc == ZMESH_OK) {
        entry = readdir(dir);
        if ((!entry || pending == S_LIST_BATCH) && streaming && pending > 0) {
            char *data;
            size_t size = s_array_of(entries, pending, &data);
            rc = zmesh_worker_send_part(data, size, S_PART_WAIT_MS);
            free(data);
            zmesh_pack_reset(entries);
            pending = 0;
        }
        if (!entry)
            break;
        struct stat info;
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0
            || fstatat(dirfd(dir), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0)
            continue;                           //  the directory itself, or removed meanwhile
        zmesh_pack_map(entries, 3);
        zmesh_pack_str(entries, "name");
        zmesh_pack_str(entries, entry->d_name);
        zmesh_pack_str(entries, "type");
        zmesh_pack_str(entries, s_type(info.st_mode));
        zmesh_pack_str(entries, "size");
        zmesh_pack_uint(entries, (uint64_t) info.st_size);
        count++;
        pending++;
        if (!streaming && count > S_LIST_MAX)
            rc = ZMESH_ETOOBIG;
    }
    closedir(dir);
    if (rc == ZMESH_OK) {
        char *list = NULL;
        size_t list_size = streaming ? 0 : s_array_of(entries, count, &list);
        zmesh_pack_t *reply = zmesh_pack_new();
        zmesh_pack_map(reply, streaming ? 1 : 2);
        zmesh_pack_str(reply, "entries");
        zmesh_pack_uint(reply, count);
        if (!streaming)
            zmesh_pack_str(reply, "list");
        size_t size = zmesh_pack_size(reply) + list_size;
        char *data = malloc(size);
        if (!data)
            abort();
        memcpy(data, zmesh_pack_data(reply), zmesh_pack_size(reply));
        if (list)
            memcpy(data + zmesh_pack_size(reply), list, list_size);
        *reply_p = zmesh_msg_new(data, size);
        free(data);
        free(list);
        zmesh_pack_destroy(&reply);
    }
    zmesh_pack_destroy(&entries);
    if (rc == ZMESH_ETOOBIG)
        return s_fail(reply_p, "'%s' has more than %d entries: list it with a stream "
                               "(zmesh call --stream)", request->path, S_LIST_MAX);
    if (rc != ZMESH_OK)
        return s_fail(reply_p, "list stopped: %s", zmesh_strerror(rc));
    return ZMESH_OK;
}

//  The final reply of a read: how many bytes went, and their SHA-1 in lowercase hex.
static int
s_read_summary(uint64_t sent, zdigest_t *digest, const char *data, size_t size,
               zmesh_msg_t **reply_p)
{
    static const char digits[] = "0123456789abcdef";
    const byte *hash = zdigest_data(digest);
    char hex[2 * 20 + 1];
    for (size_t i = 0; i < zdigest_size(digest) && i < 20; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 15];
    }
    hex[40] = '\0';
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, data ? 3 : 2);
    zmesh_pack_str(pack, "size");
    zmesh_pack_uint(pack, sent);
    zmesh_pack_str(pack, "sha1");
    zmesh_pack_str(pack, hex);
    if (data) {
        zmesh_pack_str(pack, "data");
        zmesh_pack_bin(pack, data, size);
    }
    return s_reply_pack(pack, reply_p);
}

//  Reads [offset, offset + length) of a file (to its end when length is 0). Streamed, the
//  bytes go as parts; otherwise the range must fit one chunk and comes in the reply's "data".
static int
s_read(const zw_files_t *self, const s_request_t *request, const s_target_t *target,
       zmesh_msg_t **reply_p)
{
    //  Only a regular file is opened: opening a FIFO waits for a writer, and a device may
    //  act on open. The name is opened again without following anything and without
    //  blocking, and must still be the file checked; it may have been swapped meanwhile.
    struct stat checked, info;
    if (fstat(target->fd, &checked) != 0)
        return s_fail(reply_p, "cannot open '%s': %s", request->path, strerror(errno));
    if (!S_ISREG(checked.st_mode) || target->parent < 0)
        return s_fail(reply_p, "cannot read '%s': not a regular file (a %s)", request->path,
                      S_ISDIR(checked.st_mode) ? "directory" : S_ISFIFO(checked.st_mode) ? "FIFO"
                      : S_ISCHR(checked.st_mode) || S_ISBLK(checked.st_mode) ? "device"
                      : S_ISSOCK(checked.st_mode) ? "socket" : "special file");
    int fd = openat(target->parent, target->name,
                    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &info) != 0) {
        int error = errno;
        if (fd >= 0)
            close(fd);
        return s_fail(reply_p, "cannot open '%s': %s", request->path, strerror(error));
    }
    if (!S_ISREG(info.st_mode) || info.st_dev != checked.st_dev || info.st_ino != checked.st_ino) {
        close(fd);
        return s_fail(reply_p, "cannot read '%s': it changed while it was opened",
                      request->path);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    uint64_t size = (uint64_t) info.st_size;
    uint64_t start = request->offset < size ? request->offset : size;
    uint64_t end = request->length && request->length < size - start ? start + request->length
                                                                      : size;
    bool streaming = zmesh_worker_streaming();
    if (!streaming && end - start > self->chunk) {
        close(fd);
        return s_fail(reply_p, "reading more than %zu bytes needs a streamed call (zmesh get, "
                               "zmesh call --stream)", self->chunk);
    }
    char *buffer = malloc(self->chunk);
    if (!buffer)
        abort();
    zdigest_t *digest = zdigest_new();
    zmesh_pack_t *pack = zmesh_pack_new();
    uint64_t at = start;
    int rc = ZMESH_OK;                          //  a failed send
    int error = 0;                              //  a failed read's errno
    size_t got = 0;
    while (at < end) {
        size_t want = end - at < self->chunk ? (size_t) (end - at) : self->chunk;
        ssize_t count = pread(fd, buffer, want, (off_t) at);
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0) {
            error = errno;
            break;
        }
        if (count == 0)
            break;                              //  the file shrank: what there was is sent
        got = (size_t) count;
        zdigest_update(digest, (byte *) buffer, got);
        at += got;
        if (!streaming)
            break;
        zmesh_pack_bin(pack, buffer, got);
        rc = zmesh_worker_send_part(zmesh_pack_data(pack), zmesh_pack_size(pack),
                                    S_PART_WAIT_MS);
        zmesh_pack_reset(pack);
        if (rc != ZMESH_OK)
            break;
    }
    close(fd);
    zmesh_pack_destroy(&pack);
    int result;
    if (error)
        result = s_fail(reply_p, "read of '%s' failed: %s", request->path, strerror(error));
    else if (rc != ZMESH_OK)
        result = s_fail(reply_p, "read of '%s' stopped: %s", request->path, zmesh_strerror(rc));
    else
        result = s_read_summary(at - start, digest, streaming ? NULL : buffer,
                                streaming ? 0 : got, reply_p);
    zdigest_destroy(&digest);
    free(buffer);
    return result;
}

int
zw_files_handler(const zmesh_msg_t *message, zmesh_msg_t **reply_p, void *arg)
{
    const zw_files_t *self = arg;
    s_request_t request;
    if (!s_parse(message, &request, reply_p))
        return ZMESH_EINVAL;
    s_target_t target;
    if (!s_resolve(self, request.path[0] ? request.path : ".", &target, reply_p))
        return ZMESH_EINVAL;
    int rc;
    if (strcmp(request.op, "stat") == 0)
        rc = s_stat(&request, &target, reply_p);
    else if (strcmp(request.op, "list") == 0)
        rc = s_list(&request, &target, reply_p);
    else if (strcmp(request.op, "read") == 0)
        rc = s_read(self, &request, &target, reply_p);
    else
        rc = s_fail(reply_p, "unknown op '%s': stat, list or read", request.op);
    s_target_close(&target);
    return rc;
}
