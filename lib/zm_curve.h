//  zm_curve - CURVE key material for every zmesh program: loading a secret
//  certificate (refusing one that others may read), reading a public key
//  given as Z85 text or as a certificate file, and applying both to a
//  socket. The broker's authorization rules are not here (broker/keyring).
#ifndef ZM_CURVE_H_INCLUDED
#define ZM_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#define ZM_CURVE_KEY_TXT 41             //  a Z85 public key and its NUL

//  Loads the CZMQ certificate at path, which must hold a secret key. Refuses
//  a file that is not regular, or that group or others may read or write
//  (the secret would be known beyond its owner), and a file without a secret
//  key. Returns the certificate, or NULL with the reason in error.
zcert_t *zm_curve_load_secret(const char *path, char *error, size_t size);

//  Reads a public key given as 40 characters of Z85, or as the path of a
//  certificate file (public or secret: only its public key is read), into
//  key. Returns false with the reason in error.
bool zm_curve_parse_key(const char *text, char key[ZM_CURVE_KEY_TXT], char *error,
                        size_t size);

//  True if text is 40 characters of Z85 that decode to a 32-byte key.
bool zm_curve_is_key(const char *text);

//  Makes sock a CURVE client of the server with public key server_key, with
//  cert as its own key pair. Call before connecting.
void zm_curve_apply_client(const zcert_t *cert, const char *server_key, zsock_t *sock);

//  Makes sock a CURVE server with cert as its key pair. Call before binding.
void zm_curve_apply_server(const zcert_t *cert, zsock_t *sock);

#endif
