//  zm_error - texts for the public error codes.
#include "zmesh.h"

const char *
zmesh_strerror(int err)
{
    switch ((zmesh_err_t) err) {
    case ZMESH_OK:
        return "success";
    case ZMESH_EINVAL:
        return "invalid argument or malformed message";
    case ZMESH_ETIMEDOUT:
        return "timed out";
    case ZMESH_ENOSERVICE:
        return "no such service";
    case ZMESH_EAGAIN:
        return "busy, try again";
    case ZMESH_ECLOSED:
        return "closed";
    case ZMESH_ETOOBIG:
        return "message too big";
    case ZMESH_EHANDLER:
        return "the service's handler failed";
    case ZMESH_EWORKERLOST:
        return "the worker was lost";
    case ZMESH_EPROTO:
        return "protocol error";
    case ZMESH_ESYS:
        return "system error";
    case ZMESH_EUNREACHABLE:
        return "no broker reachable";
    case ZMESH_EDENIED:
        return "denied by the broker's access rules";
    }
    return "unknown error";
}
