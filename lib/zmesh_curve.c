//  zmesh_curve - the CURVE keys of a zmesh client: its own certificate,
//  loaded from a private secret file, and the broker's public key. Objects
//  that connect keep a copy and apply it to every socket they open to a
//  broker (zm_secure.h). The file checks live in zm_curve, shared with the
//  broker.
#include "zm_alloc.h"
#include "zm_curve.h"
#include "zm_secure.h"

#define S_ERROR_MAX 512

struct zmesh_curve {
    zcert_t *cert;                          //  owned: our key pair
    char broker_key[ZM_CURVE_KEY_TXT];      //  the broker's public key, Z85
};

//  Why the calling thread's last zmesh_curve_new failed.
static __thread char s_error[S_ERROR_MAX];

zmesh_curve_t *
zmesh_curve_new(const char *secret_file, const char *broker_key, int *err_p)
{
    s_error[0] = '\0';
    zcert_t *cert = NULL;
    char key[ZM_CURVE_KEY_TXT];
    if (!secret_file || !secret_file[0])
        snprintf(s_error, sizeof s_error, "no secret key file given");
    else if (!broker_key || !broker_key[0])
        snprintf(s_error, sizeof s_error, "no broker key given");
    else if ((cert = zm_curve_load_secret(secret_file, s_error, sizeof s_error)) != NULL
             && !zm_curve_parse_key(broker_key, key, s_error, sizeof s_error))
        zcert_destroy(&cert);
    if (err_p)
        *err_p = cert ? ZMESH_OK : ZMESH_EINVAL;
    if (!cert)
        return NULL;
    zmesh_curve_t *self = zm_alloc(sizeof *self);
    self->cert = cert;
    memcpy(self->broker_key, key, sizeof self->broker_key);
    return self;
}

void
zmesh_curve_destroy(zmesh_curve_t **self_p)
{
    assert(self_p);
    zmesh_curve_t *self = *self_p;
    if (!self)
        return;
    zcert_destroy(&self->cert);
    free(self);
    *self_p = NULL;
}

const char *
zmesh_curve_public_key(const zmesh_curve_t *self)
{
    assert(self);
    return zcert_public_txt(self->cert);     //  a read, though CZMQ's prototype is not const
}

const char *
zmesh_curve_error(void)
{
    return s_error;
}

zmesh_curve_t *
zm_secure_dup(const zmesh_curve_t *curve)
{
    if (!curve)
        return NULL;
    zmesh_curve_t *copy = zm_alloc(sizeof *copy);
    copy->cert = zcert_dup(curve->cert);     //  a read, though CZMQ's prototype is not const
    assert(copy->cert);
    memcpy(copy->broker_key, curve->broker_key, sizeof copy->broker_key);
    return copy;
}

void
zm_secure_apply(const zmesh_curve_t *curve, zsock_t *sock)
{
    assert(sock);
    if (curve)
        zm_curve_apply_client(curve->cert, curve->broker_key, sock);
}

const char *
zm_secure_hint(const zmesh_curve_t *curve)
{
    return curve ? "if the broker runs CURVE, check that the broker key is its public key "
                   "and that this key is in its keys directory"
                 : "";
}
