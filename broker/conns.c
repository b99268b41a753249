//  conns - live connections by descriptor and by routing id.
#include "conns.h"

#include "zm_alloc.h"
#include "zm_hash.h"

typedef struct {
    int fd;
    char key[ZM_CURVE_KEY_TXT];
    char *id;                   //  owned hex routing id; NULL on the push endpoint
    uint64_t tag;               //  the transport's
    bool closing;               //  the connection closed; not swept yet
    int64_t closing_at;         //  ms
} s_conn_t;

struct zm_conns {
    zhashx_t *by_fd;            //  descriptor (zm_hash key) -> owned s_conn_t
    zhashx_t *by_id;            //  hex id -> borrowed s_conn_t
    size_t closing;             //  connections closing
};

static void
s_conn_destroy(void **item_p)
{
    s_conn_t *conn = *item_p;
    if (conn) {
        free(conn->id);
        free(conn);
        *item_p = NULL;
    }
}

zm_conns_t *
zm_conns_new(void)
{
    zm_conns_t *self = zm_alloc(sizeof *self);
    self->by_fd = zm_hash_new_u64();
    zhashx_set_destructor(self->by_fd, s_conn_destroy);
    self->by_id = zhashx_new();
    return self;
}

void
zm_conns_destroy(zm_conns_t **self_p)
{
    assert(self_p);
    zm_conns_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->by_id);
    zhashx_destroy(&self->by_fd);
    free(self);
    *self_p = NULL;
}

//  The table key of a descriptor: never 0, as zm_hash wants (-1 included).
static uint64_t
s_fd_id(int fd)
{
    return (uint64_t) (uint32_t) fd + 1;
}

static s_conn_t *
s_at(const zm_conns_t *self, int fd)
{
    return zm_hash_lookup(self->by_fd, s_fd_id(fd));
}

//  Forgets conn; its routing id, if any, goes to gone.
static void
s_forget(zm_conns_t *self, s_conn_t *conn, zlistx_t *gone)
{
    if (conn->closing)
        self->closing--;
    if (conn->id) {
        if (zhashx_lookup(self->by_id, conn->id) == conn)
            zhashx_delete(self->by_id, conn->id);
        if (gone)
            zlistx_add_end(gone, zm_strdup(conn->id));
    }
    zhashx_delete(self->by_fd, ZM_HASH_KEY(s_fd_id(conn->fd)));   //  frees conn
}

static bool
s_same(const s_conn_t *conn, const char *id, const char *key)
{
    return streq(conn->key, key) && (conn->id == NULL) == (id == NULL)
           && (!id || streq(conn->id, id));
}

bool
zm_conns_known(const zm_conns_t *self, int fd, const char *id, const char *key)
{
    assert(self && key);
    s_conn_t *conn = s_at(self, fd);
    return conn && s_same(conn, id, key);
}

zm_conn_seen_t
zm_conns_seen(zm_conns_t *self, int fd, const char *id, const char *key, zlistx_t *gone)
{
    assert(self && key);
    s_conn_t *conn = s_at(self, fd);
    if (conn) {
        if (s_same(conn, id, key))
            return ZM_CONN_KNOWN;       //  closing or not: it may be its last messages
        //  Events are read before each message: had the connection on fd
        //  closed, it would be closing now. It is not, so this message is
        //  from an older connection, closed before fd was given out again.
        if (!conn->closing)
            return ZM_CONN_LATE;
        s_forget(self, conn, gone);     //  fd is a new connection's now
    }
    if (id) {
        s_conn_t *holder = zhashx_lookup(self->by_id, id);
        if (holder)
            s_forget(self, holder, gone);               //  the id moved to a new connection
    }
    conn = zm_alloc(sizeof *conn);
    conn->fd = fd;
    snprintf(conn->key, sizeof conn->key, "%s", key);
    conn->id = id ? zm_strdup(id) : NULL;
    zhashx_insert(self->by_fd, ZM_HASH_KEY(s_fd_id(fd)), conn);
    if (id)
        zhashx_insert(self->by_id, id, conn);
    return ZM_CONN_NEW;
}

void
zm_conns_closing(zm_conns_t *self, int fd, int64_t now)
{
    assert(self);
    s_conn_t *conn = s_at(self, fd);
    if (conn && !conn->closing) {
        conn->closing = true;
        conn->closing_at = now;
        self->closing++;
    }
}

void
zm_conns_sweep(zm_conns_t *self, bool all, int64_t before, zlistx_t *gone)
{
    assert(self);
    if (self->closing == 0)
        return;
    zlistx_t *swept = zlistx_new();                     //  borrowed: forget after the walk
    for (s_conn_t *conn = zhashx_first(self->by_fd); conn; conn = zhashx_next(self->by_fd))
        if (conn->closing && (all || conn->closing_at < before))
            zlistx_add_end(swept, conn);
    for (s_conn_t *conn = zlistx_first(swept); conn; conn = zlistx_next(swept))
        s_forget(self, conn, gone);
    zlistx_destroy(&swept);
}

zm_conn_state_t
zm_conns_state(const zm_conns_t *self, const char *id)
{
    assert(self && id);
    s_conn_t *conn = zhashx_lookup(self->by_id, id);
    return !conn ? ZM_CONN_NONE : conn->closing ? ZM_CONN_CLOSING : ZM_CONN_LIVE;
}

void
zm_conns_tag(zm_conns_t *self, int fd, uint64_t tag)
{
    assert(self);
    s_conn_t *conn = s_at(self, fd);
    if (conn)
        conn->tag = tag;
}

void
zm_conns_each_of_key(const zm_conns_t *self, const char *key, zm_conns_fn *fn, void *arg)
{
    assert(self && key && fn);
    for (s_conn_t *conn = zhashx_first(self->by_fd); conn; conn = zhashx_next(self->by_fd))
        if (streq(conn->key, key))
            fn(arg, conn->fd, conn->tag);
}

bool
zm_conns_live_fd(const zm_conns_t *self, int fd, uint64_t *tag_p)
{
    assert(self && tag_p);
    s_conn_t *conn = s_at(self, fd);
    if (!conn || conn->closing)
        return false;
    *tag_p = conn->tag;
    return true;
}

size_t
zm_conns_size(const zm_conns_t *self)
{
    return zhashx_size(self->by_fd);
}
