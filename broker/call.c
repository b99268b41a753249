//  call - lifecycle of one broker-side call record.
#include "call.h"

#include "zm_alloc.h"

zm_call_t *
zm_call_new(zframe_t **client_p, zm_proto_t *command, int64_t now)
{
    assert(client_p && *client_p);
    assert(command && command->body);
    zm_call_t *self = zm_alloc(sizeof *self);
    self->client = *client_p;
    *client_p = NULL;
    self->request_id = command->id;
    self->body = command->body;
    command->body = NULL;
    self->queued_at = now;
    self->deadline = command->timeout_ms ? now + command->timeout_ms : 0;
    self->flags = command->flags;
    self->timeout_ms = command->timeout_ms;
    if (command->flags & ZM_CALL_STREAM)
        self->granted = command->window ? command->window : ZM_WINDOW_DEFAULT;
    return self;
}

void
zm_call_destroy(zm_call_t **self_p)
{
    assert(self_p);
    zm_call_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy(&self->body);
    zframe_destroy(&self->client);
    free(self->key);
    free(self);
    *self_p = NULL;
}
