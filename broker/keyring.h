//  keyring - the public keys the broker lets in and the rights of each,
//  read from the certificates in the keys directory (the same files zauth
//  checks at the handshake). Refreshed by the transport once a second: a
//  key whose file is gone is reported, so its sessions can be cut.
#ifndef ZM_KEYRING_H_INCLUDED
#define ZM_KEYRING_H_INCLUDED

#include "rights.h"
#include "zm_curve.h"

#include <czmq.h>

typedef struct {
    char key[ZM_CURVE_KEY_TXT];     //  Z85 public key
    char *name;                     //  owned: the certificate's name, else its file name
    zm_rights_t rights;
    uint64_t messages;              //  messages the broker took from this key
    uint64_t denied;                //  of them, refused by its rights
} zm_key_t;

typedef struct zm_keyring zm_keyring_t;

//  Reads every certificate under dir (subdirectories included; files named
//  *_secret skipped), as zauth does.
zm_keyring_t *zm_keyring_new(const char *dir);
void zm_keyring_destroy(zm_keyring_t **self_p);

//  Reads the directory again if any file in it changed. Appends to removed
//  (strings the caller frees) the public keys that are no longer there.
//  Returns true if the keyring changed (rights may differ too).
bool zm_keyring_refresh(zm_keyring_t *self, zlistx_t *removed);

//  The key record, or NULL if the key is not in the keyring.
zm_key_t *zm_keyring_lookup(const zm_keyring_t *self, const char *key);

//  Iteration, for the status reply.
size_t zm_keyring_size(const zm_keyring_t *self);
zm_key_t *zm_keyring_first(const zm_keyring_t *self);
zm_key_t *zm_keyring_next(const zm_keyring_t *self);

#endif
