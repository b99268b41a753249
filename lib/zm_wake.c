//  zm_wake - the stop request, a flag and a self-pipe, of an engine loop
//  that runs in the caller's thread.
#include "zm_wake.h"

#include "zmesh.h"

#include <assert.h>
#include <fcntl.h>
#include <unistd.h>

int
zm_wake_open(zm_wake_t *self)
{
    assert(self);
    *self = (zm_wake_t){.fd = {-1, -1}};
    if (pipe(self->fd) != 0) {
        self->fd[0] = self->fd[1] = -1;
        return ZMESH_ESYS;
    }
    //  Non-blocking both ways: a full pipe must not block a signal handler,
    //  and the drain stops when it is empty.
    for (int i = 0; i < 2; i++)
        fcntl(self->fd[i], F_SETFL, fcntl(self->fd[i], F_GETFL) | O_NONBLOCK);
    return ZMESH_OK;
}

void
zm_wake_close(zm_wake_t *self)
{
    assert(self);
    for (int i = 0; i < 2; i++) {
        if (self->fd[i] >= 0)
            close(self->fd[i]);
        self->fd[i] = -1;
    }
}

void
zm_wake_request(zm_wake_t *self)
{
    self->requested = 1;
    ssize_t rc = write(self->fd[1], "x", 1);
    (void) rc;                  //  a full pipe already wakes the loop
}

int
zm_wake_fd(const zm_wake_t *self)
{
    assert(self);
    return self->fd[0];
}

void
zm_wake_drain(zm_wake_t *self)
{
    assert(self);
    char buffer[64];
    while (read(self->fd[0], buffer, sizeof buffer) > 0)
        ;
}
