//  security - CURVE for the broker's endpoints: its key pair, the keyring,
//  and zauth, started and proven to refuse an unknown key before anything
//  binds (a CURVE server without a working ZAP handler lets anyone in).
#ifndef ZM_SECURITY_H_INCLUDED
#define ZM_SECURITY_H_INCLUDED

#include "keyring.h"

typedef struct zm_security zm_security_t;

//  Loads the broker's secret certificate (refused if group or others may
//  read it), reads the keys directory, starts zauth on it and probes it
//  with a throwaway key. NULL, with the reason logged, if any step fails.
zm_security_t *zm_security_start(const char *secret_file, const char *keys_dir);
void zm_security_destroy(zm_security_t **self_p);

//  Makes sock a CURVE server with the broker's key pair. Before binding.
void zm_security_apply(zm_security_t *self, zsock_t *sock);

//  Makes zauth read the keys directory again (after the keyring changed).
void zm_security_reload(zm_security_t *self);

//  The keyring the engine checks rights against (owned by self).
zm_keyring_t *zm_security_keyring(zm_security_t *self);

//  The broker's public key, Z85.
const char *zm_security_public_key(zm_security_t *self);

#endif
