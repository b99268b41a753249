//  echo.h - the built-in echo service of zmesh-worker: the reply is the request, byte for byte.
#ifndef ZW_ECHO_H_INCLUDED
#define ZW_ECHO_H_INCLUDED

#include "zmesh.h"

//  A zmesh_handler_fn; arg is unused. Thread-safe: it keeps no state.
int zw_echo_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg);

#endif
