//  echo.c - the built-in echo handler: replies with an exact copy of the request bytes. It never
//  decodes the payload (the broker already checked it is one MessagePack object), so it is also
//  the baseline for measuring the mesh itself.
#include "echo.h"

#include <assert.h>

int
zw_echo_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    assert(request);
    assert(reply_p);
    (void) arg;
    *reply_p = zmesh_msg_new(zmesh_msg_data(request), zmesh_msg_size(request));
    return ZMESH_OK;
}
