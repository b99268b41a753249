//  keyring - public keys and their rights, from a directory of certificates.
//
//  A certificate names its rights in its metadata, as `zmesh keygen` writes
//  them: serve, call, push and pull (comma-separated patterns) and admin
//  ("yes"). A key without them may connect and nothing else.
#include "keyring.h"

#include "zm_alloc.h"
#include "zm_log.h"

#include <dirent.h>
#include <sys/stat.h>

#define S_MAX_DEPTH 8           //  subdirectory levels read
#define S_MAX_FILES 100000      //  files read at most
#define S_CERT_MAX 16384        //  bytes: a larger file is no certificate of ours

struct zm_keyring {
    char *dir;                  //  owned
    zhashx_t *keys;             //  Z85 key -> owned zm_key_t
    uint64_t signature;         //  of the files last read: names, sizes, times
};

static void
s_key_destroy(void **item_p)
{
    zm_key_t *key = *item_p;
    if (key) {
        free(key->name);
        zm_rights_clear(&key->rights);
        free(key);
        *item_p = NULL;
    }
}

static bool
s_is_secret(const char *name)
{
    size_t length = strlen(name);
    return length >= 7 && streq(name + length - 7, "_secret");
}

static uint64_t
s_mix(uint64_t hash, const void *data, size_t size)
{
    const uint8_t *byte = data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ byte[i]) * 1099511628211ULL;     //  FNV-1a
    return hash;
}

//  Calls visit on every regular certificate file under path. Returns the
//  signature of what it saw, so a caller can tell whether anything changed.
typedef void(s_visit_fn)(void *arg, const char *path);

static uint64_t
s_walk(const char *path, int depth, uint64_t hash, size_t *files, s_visit_fn *visit, void *arg)
{
    DIR *dir = opendir(path);
    if (!dir)
        return hash;
    struct dirent *entry;
    while ((entry = readdir(dir)) && *files < S_MAX_FILES) {
        if (entry->d_name[0] == '.')
            continue;                               //  ., .., and hidden files, as zdir
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", path, entry->d_name) >= (int) sizeof child)
            continue;
        struct stat info;
        if (stat(child, &info) != 0)
            continue;
        if (S_ISDIR(info.st_mode)) {
            if (depth < S_MAX_DEPTH)
                hash = s_walk(child, depth + 1, hash, files, visit, arg);
            continue;
        }
        if (!S_ISREG(info.st_mode) || s_is_secret(entry->d_name))
            continue;
        (*files)++;
        hash = s_mix(hash, child, strlen(child) + 1);
        hash = s_mix(hash, &info.st_size, sizeof info.st_size);
        hash = s_mix(hash, &info.st_mtim, sizeof info.st_mtim);
        hash = s_mix(hash, &info.st_ino, sizeof info.st_ino);
        if (visit)
            visit(arg, child);
    }
    closedir(dir);
    return hash;
}

static uint64_t
s_signature(const char *dir)
{
    size_t files = 0;
    return s_walk(dir, 0, 14695981039346656037ULL, &files, NULL, NULL);
}

//  What a load collects: keys by public key, and the names given out.
typedef struct {
    zhashx_t *keys;             //  Z85 key -> owned zm_key_t
    zhashx_t *names;            //  name -> borrowed zm_key_t
} s_load_t;

//  Reads a certificate file as configuration text. Not zcert_load: CZMQ's
//  file loader leaks on a file with a syntax error, and anyone who can drop
//  a file in the keys directory could make the broker grow at each reload.
static zconfig_t *
s_read_cert(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return NULL;
    char text[S_CERT_MAX + 1];
    size_t size = fread(text, 1, sizeof text, file);
    fclose(file);
    if (size == 0 || size > S_CERT_MAX)
        return NULL;
    text[size] = '\0';
    return zconfig_str_load(text);
}

static void
s_load_one(void *arg, const char *path)
{
    s_load_t *load = arg;
    zhashx_t *keys = load->keys;
    zconfig_t *cert = s_read_cert(path);
    const char *public_key = cert ? zconfig_get(cert, "curve/public-key", NULL) : NULL;
    if (!zm_curve_is_key(public_key)) {
        zm_log_warning("keyring: not a certificate file=%s", path);
        zconfig_destroy(&cert);
        return;
    }
    zm_key_t *key = zm_alloc(sizeof *key);
    memcpy(key->key, public_key, ZM_CURVE_KEY_TXT);
    const char *name = zconfig_get(cert, "metadata/name", NULL);
    if (!name || !*name) {
        name = strrchr(path, '/');
        name = name ? name + 1 : path;
    }
    if (zhashx_lookup(load->names, name)) {
        //  Names label keys in logs and status: two keys never share one.
        char unique[300];
        snprintf(unique, sizeof unique, "%.255s~%.8s", name, key->key);
        zm_log_warning("keyring: name used twice file=%s name=%s shown_as=%s", path, name,
                       unique);
        key->name = zm_strdup(unique);
    }
    else
        key->name = zm_strdup(name);
    for (int right = 0; right < ZM_RIGHT_COUNT; right++) {
        char entry[32];
        snprintf(entry, sizeof entry, "metadata/%s", zm_right_name(right));
        zm_rights_set(&key->rights, right, zconfig_get(cert, entry, NULL));
    }
    const char *admin = zconfig_get(cert, "metadata/admin", NULL);
    key->rights.admin = admin && (streq(admin, "yes") || streq(admin, "true") || streq(admin, "1"));
    zconfig_destroy(&cert);
    if (zhashx_lookup(keys, key->key)) {
        zm_log_warning("keyring: key listed twice file=%s key=%s", path, key->key);
        void *item = key;
        s_key_destroy(&item);
        return;
    }
    zhashx_insert(keys, key->key, key);
    zhashx_insert(load->names, key->name, key);
}

static zhashx_t *
s_load(const char *dir, uint64_t *signature_p)
{
    zhashx_t *keys = zhashx_new();
    zhashx_set_destructor(keys, s_key_destroy);
    s_load_t load = {keys, zhashx_new()};
    size_t files = 0;
    *signature_p = s_walk(dir, 0, 14695981039346656037ULL, &files, s_load_one, &load);
    zhashx_destroy(&load.names);
    return keys;
}

zm_keyring_t *
zm_keyring_new(const char *dir)
{
    assert(dir);
    zm_keyring_t *self = zm_alloc(sizeof *self);
    self->dir = zm_strdup(dir);
    self->keys = s_load(dir, &self->signature);
    zm_log_info("keyring: loaded dir=%s keys=%zu", dir, zhashx_size(self->keys));
    return self;
}

void
zm_keyring_destroy(zm_keyring_t **self_p)
{
    assert(self_p);
    zm_keyring_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->keys);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

bool
zm_keyring_refresh(zm_keyring_t *self, zlistx_t *removed)
{
    assert(self);
    if (s_signature(self->dir) == self->signature)
        return false;
    uint64_t signature;
    zhashx_t *keys = s_load(self->dir, &signature);
    for (zm_key_t *old = zhashx_first(self->keys); old; old = zhashx_next(self->keys)) {
        zm_key_t *key = zhashx_lookup(keys, old->key);
        if (key) {
            key->messages = old->messages;      //  the same key: its counts go on
            key->denied = old->denied;
        }
        else {
            zm_log_notice("keyring: key removed name=%s key=%s", old->name, old->key);
            if (removed)
                zlistx_add_end(removed, zm_strdup(old->key));
        }
    }
    zm_log_info("keyring: reloaded dir=%s keys=%zu", self->dir, zhashx_size(keys));
    zhashx_destroy(&self->keys);
    self->keys = keys;
    self->signature = signature;
    return true;
}

zm_key_t *
zm_keyring_lookup(const zm_keyring_t *self, const char *key)
{
    assert(self);
    return key ? zhashx_lookup(self->keys, key) : NULL;
}

size_t
zm_keyring_size(const zm_keyring_t *self)
{
    return zhashx_size(self->keys);
}

zm_key_t *
zm_keyring_first(const zm_keyring_t *self)
{
    return zhashx_first(self->keys);
}

zm_key_t *
zm_keyring_next(const zm_keyring_t *self)
{
    return zhashx_next(self->keys);
}
