//  zm_msg - internal constructors of zmesh_msg_t that adopt a frame, so a
//  payload received from a socket reaches the caller without a copy.
#ifndef ZM_MSG_H_INCLUDED
#define ZM_MSG_H_INCLUDED

#include "zmesh.h"

#include <czmq.h>

//  Wraps *frame_p in a new message and NULLs *frame_p.
zmesh_msg_t *zm_msg_adopt(zframe_t **frame_p);

//  Unwraps the message into its frame and frees the wrapper.
zframe_t *zm_msg_release(zmesh_msg_t **msg_p);

#endif
