//  zm_curve - CURVE key material: secret certificates, public keys, sockets.
#include "zm_curve.h"

#include <sys/stat.h>

#define S_ZERO_KEY "0000000000000000000000000000000000000000"

bool
zm_curve_is_key(const char *text)
{
    if (!text || strlen(text) != ZM_CURVE_KEY_TXT - 1)
        return false;
    uint8_t bytes[32];
    return zmq_z85_decode(bytes, text) != NULL;
}

//  A secret file must be private to its owner: anyone else who can read it
//  can be that peer; anyone who can write it can swap the key.
static bool
s_private(const char *path, char *error, size_t size)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        snprintf(error, size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    if (!S_ISREG(info.st_mode)) {
        snprintf(error, size, "%s is not a regular file", path);
        return false;
    }
    if (info.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(error, size,
                 "secret key file %s has mode %04o: group or others may use it (chmod 600 %s)",
                 path, (unsigned) (info.st_mode & 07777), path);
        return false;
    }
    return true;
}

zcert_t *
zm_curve_load_secret(const char *path, char *error, size_t size)
{
    assert(path);
    if (!s_private(path, error, size))
        return NULL;
    //  zcert_load reads path + "_secret" instead when that exists: a public
    //  file named here with its secret beside it. That file must be private too.
    char secret[PATH_MAX];
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (access(secret, F_OK) == 0 && !s_private(secret, error, size))
        return NULL;
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        snprintf(error, size, "%s is not a CURVE certificate", path);
        return NULL;
    }
    if (streq(zcert_secret_txt(cert), S_ZERO_KEY)) {
        snprintf(error, size, "%s holds no secret key (give the _secret file)", path);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

bool
zm_curve_parse_key(const char *text, char key[ZM_CURVE_KEY_TXT], char *error, size_t size)
{
    assert(text);
    if (zm_curve_is_key(text)) {
        memcpy(key, text, ZM_CURVE_KEY_TXT);
        return true;
    }
    zcert_t *cert = access(text, R_OK) == 0 ? zcert_load(text) : NULL;
    if (!cert || streq(zcert_public_txt(cert), S_ZERO_KEY)) {
        snprintf(error, size, "%s is neither a 40-character Z85 key nor a certificate file",
                 text);
        zcert_destroy(&cert);
        return false;
    }
    memcpy(key, zcert_public_txt(cert), ZM_CURVE_KEY_TXT);
    zcert_destroy(&cert);
    return true;
}

void
zm_curve_apply_client(const zcert_t *cert, const char *server_key, zsock_t *sock)
{
    assert(cert && server_key && sock);
    zcert_apply((zcert_t *) cert, sock);
    zsock_set_curve_serverkey(sock, server_key);
}

void
zm_curve_apply_server(const zcert_t *cert, zsock_t *sock)
{
    assert(cert && sock);
    zcert_apply((zcert_t *) cert, sock);
    zsock_set_curve_server(sock, 1);
}
