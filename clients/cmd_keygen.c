//  cmd_keygen.c - `zmesh keygen NAME`: makes a CURVE key pair as a CZMQ certificate,
//  DIR/NAME.key (public key and metadata) and DIR/NAME.key_secret (both keys, mode 0600), with
//  the rights the options give written into the metadata for a broker to read: name, serve,
//  call, push, pull (comma-separated fnmatch patterns) and admin. It never overwrites a file
//  without --force, and the secret file is never readable by anyone but its owner, not even
//  while it is being written. It talks to no broker.
#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define S_NAME_MAX 64               //  longest NAME, in bytes

//  The metadata keys of the rights, in the order of zm_cli_t.rights.
static const char *s_right_names[4] = {"serve", "call", "push", "pull"};

//  True if name can be a key's file name and metadata value as it is: 1 to S_NAME_MAX letters,
//  digits and ._-@+, not starting with a dot (no hidden files, no "." or "..").
static bool
s_name_ok(const char *name)
{
    size_t size = strlen(name);
    if (size == 0 || size > S_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < size; i++) {
        unsigned char byte = (unsigned char) name[i];
        if (!(isalnum(byte) || strchr("._-@+", byte)))
            return false;
    }
    return true;
}

//  True if list is comma-separated patterns, none empty, each printable ASCII without spaces
//  or quotes (the certificate file quotes values; a space is most likely a shell slip).
static bool
s_list_ok(const char *list)
{
    bool item_empty = true;
    for (const char *at = list;; at++) {
        if (*at == ',' || *at == '\0') {
            if (item_empty)
                return false;
            if (*at == '\0')
                return true;
            item_empty = true;
            continue;
        }
        unsigned char byte = (unsigned char) *at;
        if (byte <= 0x20 || byte >= 0x7f || byte == '"' || byte == '\'' || byte == '\\')
            return false;
        item_empty = false;
    }
}

//  True if path exists as anything, a dangling symbolic link included.
static bool
s_exists(const char *path)
{
    struct stat info;
    return lstat(path, &info) == 0;
}

//  Makes dir if it is missing (one level). Returns false after reporting why it is unusable.
static bool
s_make_dir(const char *dir)
{
    struct stat info;
    if (stat(dir, &info) == 0) {
        if (S_ISDIR(info.st_mode))
            return true;
        fprintf(stderr, "zmesh: keygen: %s is not a directory\n", dir);
        return false;
    }
    if (errno == ENOENT && mkdir(dir, 0700) == 0)
        return true;
    fprintf(stderr, "zmesh: keygen: cannot make directory %s: %s\n", dir, strerror(errno));
    return false;
}

//  A new certificate with the metadata that cli asks for.
static zcert_t *
s_cert_new(const zm_cli_t *cli, const char *name)
{
    zcert_t *cert = zcert_new();
    assert(cert);
    zcert_set_meta(cert, "name", "%s", name);
    for (int i = 0; i < 4; i++) {
        if (cli->rights[i])
            zcert_set_meta(cert, s_right_names[i], "%s", cli->rights[i]);
    }
    if (cli->admin)
        zcert_set_meta(cert, "admin", "%s", "yes");
    return cert;
}

//  Writes cert to public_path and secret_path. The umask is 077 while CZMQ creates both files,
//  so the secret file is private from its first byte; the public file is then opened up to
//  what the user's umask allows. Returns false after reporting why.
static bool
s_save(zcert_t *cert, const char *public_path, const char *secret_path)
{
    mode_t umask_before = umask(077);
    int rc = zcert_save(cert, public_path);
    int saved_errno = errno;
    umask(umask_before);
    if (rc != 0) {
        fprintf(stderr, "zmesh: keygen: cannot write %s: %s\n", public_path,
                strerror(saved_errno));
        unlink(public_path);
        unlink(secret_path);
        return false;
    }
    //  zcert_save writes through a path, so make sure of the mode of what it made.
    if (chmod(secret_path, 0600) != 0 || chmod(public_path, 0644 & ~umask_before) != 0) {
        fprintf(stderr, "zmesh: keygen: cannot set the mode of %s: %s\n", secret_path,
                strerror(errno));
        return false;
    }
    return true;
}

int
zm_cli_keygen(const zm_cli_t *cli)
{
    const char *name = cli->args[0];
    if (!s_name_ok(name)) {
        fprintf(stderr, "zmesh: keygen: bad NAME '%s': 1 to %d letters, digits and . _ - @ + "
                        "(not starting with a dot)\n", name, S_NAME_MAX);
        return ZM_CLI_EXIT_USAGE;
    }
    for (int i = 0; i < 4; i++) {
        if (cli->rights[i] && !s_list_ok(cli->rights[i])) {
            fprintf(stderr, "zmesh: keygen: bad --%s list '%s': comma-separated patterns, none "
                            "empty, without spaces or quotes\n", s_right_names[i],
                    cli->rights[i]);
            return ZM_CLI_EXIT_USAGE;
        }
    }
    char public_path[PATH_MAX];
    char secret_path[PATH_MAX + sizeof "_secret"];
    size_t dir_size = strlen(cli->dir);
    const char *slash = dir_size > 0 && cli->dir[dir_size - 1] == '/' ? "" : "/";
    int size = snprintf(public_path, sizeof public_path, "%s%s%s.key", cli->dir, slash, name);
    if (size < 0 || (size_t) size + strlen("_secret") >= PATH_MAX) {
        fprintf(stderr, "zmesh: keygen: the path %s/%s.key is too long\n", cli->dir, name);
        return ZM_CLI_EXIT_USAGE;
    }
    snprintf(secret_path, sizeof secret_path, "%s_secret", public_path);
    if (!s_make_dir(cli->dir))
        return ZM_CLI_EXIT_FAILED;
    bool exists = s_exists(public_path) || s_exists(secret_path);
    if (exists && !cli->force) {
        fprintf(stderr, "zmesh: keygen: %s exists: not replaced without --force\n",
                s_exists(secret_path) ? secret_path : public_path);
        return ZM_CLI_EXIT_FAILED;
    }
    //  Replaced files are removed first: CZMQ would write into an existing file and keep its
    //  mode, and follow a symbolic link wherever it points.
    if (exists && ((unlink(public_path) != 0 && errno != ENOENT)
                   || (unlink(secret_path) != 0 && errno != ENOENT))) {
        fprintf(stderr, "zmesh: keygen: cannot replace %s: %s\n", public_path, strerror(errno));
        return ZM_CLI_EXIT_FAILED;
    }
    zcert_t *cert = s_cert_new(cli, name);
    bool saved = s_save(cert, public_path, secret_path);
    if (saved)
        printf("key: %s\npublic: %s\nsecret: %s\n", zcert_public_txt(cert), public_path,
               secret_path);
    zcert_destroy(&cert);
    if (saved && fflush(stdout) == EOF) {
        fprintf(stderr, "zmesh: keygen: cannot write to stdout: %s\n", strerror(errno));
        return ZM_CLI_EXIT_FAILED;
    }
    return saved ? ZM_CLI_EXIT_OK : ZM_CLI_EXIT_FAILED;
}
