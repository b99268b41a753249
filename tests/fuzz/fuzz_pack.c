//  fuzz_pack - fuzzes zm_pack: the validator zm_pack_check, which must walk
//  hostile MessagePack without allocating or reading past the buffer, and
//  the header reader and writer. The first input byte is the depth limit
//  (signed: zero, negative and over 64 all mean the default of 64); the
//  rest is the object. Oracles: an accepted object is refused once cut by a
//  byte or given one more (a frame holds exactly one object); a looser depth
//  accepts what a tighter one did; msgpack-c's unpacker agrees where it is
//  safe to ask it (accepted, under 4 KiB, at most 32 deep: msgpack-c's own
//  limit); and a reader driven by the input's last bytes reads in bounds,
//  sticks on its first failure, and reads what the writer writes back.
#include "fuzz_common.h"
#include "zm_pack.h"
#include "zmesh.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define S_UNPACK_MAX 4096       //  msgpack-c allocates 16 bytes per claimed item
#define S_UNPACK_DEPTH 32       //  msgpack-c's MSGPACK_EMBED_STACK_SIZE
#define S_READER_STEPS 64

//  Asserts msgpack-c reads data as one object and nothing else.
static void
s_check_msgpack_c(const uint8_t *data, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc
        = msgpack_unpack_next(&unpacked, (const char *) data, size, &offset);
    ZM_FUZZ_CHECK(rc == MSGPACK_UNPACK_SUCCESS);
    ZM_FUZZ_CHECK(offset == size);
    msgpack_unpacked_destroy(&unpacked);
}

//  Checks an object zm_pack_check accepted at depth.
static void
s_check_accepted(const uint8_t *data, size_t size, int depth)
{
    if (depth <= 0 || depth > ZM_PACK_DEPTH_MAX)
        depth = ZM_PACK_DEPTH_MAX;
    for (int looser = depth + 1; looser <= ZM_PACK_DEPTH_MAX; looser += 7)
        ZM_FUZZ_CHECK(zm_pack_check(data, size, looser) == ZMESH_OK);
    ZM_FUZZ_CHECK(zm_pack_check(data, size, ZM_PACK_DEPTH_MAX) == ZMESH_OK);
    //  MessagePack is a prefix code: no proper prefix of an object is one.
    ZM_FUZZ_CHECK(zm_pack_check(data, size - 1, depth) != ZMESH_OK);
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, data, size);
    longer[size] = 0xc0;                            //  nil: trailing bytes
    ZM_FUZZ_CHECK(zm_pack_check(longer, size + 1, depth) != ZMESH_OK);
    free(longer);
    if (size < S_UNPACK_MAX && zm_pack_check(data, size, S_UNPACK_DEPTH) == ZMESH_OK)
        s_check_msgpack_c(data, size);
}

//  Writes value with the writer into an exactly sized buffer and one byte
//  short of it: the first must read back, the second must refuse, in bounds.
static void
s_check_writer_uint(uint64_t value, size_t consumed)
{
    uint8_t scratch[16];
    zm_writer_t writer;
    zm_writer_init(&writer, scratch, sizeof scratch);
    zm_writer_uint(&writer, value);
    ZM_FUZZ_CHECK(writer.ok && writer.size <= consumed);   //  smallest encoding
    size_t needed = writer.size;
    uint8_t *exact = malloc(needed);
    zm_writer_init(&writer, exact, needed);
    zm_writer_uint(&writer, value);
    ZM_FUZZ_CHECK(writer.ok && writer.size == needed);
    zm_reader_t reader;
    uint64_t again = 0;
    zm_reader_init(&reader, exact, needed);
    ZM_FUZZ_CHECK(zm_reader_uint(&reader, &again) && again == value && zm_reader_done(&reader));
    zm_writer_init(&writer, exact, needed - 1);
    zm_writer_uint(&writer, value);
    ZM_FUZZ_CHECK(!writer.ok && writer.size <= writer.max_size);
    free(exact);
}

static void
s_check_writer_str(const char *text, size_t length, size_t consumed)
{
    size_t capacity = length + 5;
    uint8_t *buffer = malloc(capacity);
    zm_writer_t writer;
    zm_writer_init(&writer, buffer, capacity);
    zm_writer_str(&writer, text, length);
    ZM_FUZZ_CHECK(writer.ok && writer.size <= consumed);
    zm_reader_t reader;
    const char *again;
    size_t again_length;
    zm_reader_init(&reader, buffer, writer.size);
    ZM_FUZZ_CHECK(zm_reader_str(&reader, &again, &again_length) && zm_reader_done(&reader));
    ZM_FUZZ_CHECK(again_length == length && memcmp(again, text, length) == 0);
    size_t written = writer.size;
    zm_writer_init(&writer, buffer, written - 1);
    zm_writer_str(&writer, text, length);
    ZM_FUZZ_CHECK(!writer.ok && writer.size <= writer.max_size);
    free(buffer);
}

static void
s_check_writer_array(uint32_t count, size_t consumed)
{
    uint8_t buffer[8];
    zm_writer_t writer;
    zm_writer_init(&writer, buffer, sizeof buffer);
    zm_writer_array(&writer, count);
    ZM_FUZZ_CHECK(writer.ok && writer.size <= consumed);
    zm_reader_t reader;
    uint32_t again = 0;
    zm_reader_init(&reader, buffer, writer.size);
    ZM_FUZZ_CHECK(zm_reader_array(&reader, &again) && again == count && zm_reader_done(&reader));
}

//  One read of the kind op picks. A scalar read is a whole object, which
//  the validator must accept as it stands.
static bool
s_read(zm_reader_t *reader, uint8_t op)
{
    const uint8_t *start = reader->cursor;
    uint64_t value;
    uint32_t count;
    const char *text;
    size_t length;
    switch (op % 3) {
    case 0:
        if (!zm_reader_uint(reader, &value))
            return false;
        ZM_FUZZ_CHECK(zm_pack_check(start, (size_t) (reader->cursor - start), 0) == ZMESH_OK);
        s_check_writer_uint(value, (size_t) (reader->cursor - start));
        return true;
    case 1:
        if (!zm_reader_str(reader, &text, &length))
            return false;
        ZM_FUZZ_CHECK((const uint8_t *) text > start);
        ZM_FUZZ_CHECK((const uint8_t *) text + length == reader->cursor);
        ZM_FUZZ_CHECK(zm_pack_check(start, (size_t) (reader->cursor - start), 0) == ZMESH_OK);
        s_check_writer_str(text, length, (size_t) (reader->cursor - start));
        return true;
    default:
        if (!zm_reader_array(reader, &count))
            return false;
        s_check_writer_array(count, (size_t) (reader->cursor - start));
        return true;
    }
}

//  Reads data with a sequence of reads taken from its last bytes, backwards.
static void
s_check_reader(const uint8_t *data, size_t size)
{
    zm_reader_t reader;
    zm_reader_init(&reader, data, size);
    for (size_t step = 0; step < S_READER_STEPS && step < size; step++) {
        const uint8_t *before = reader.cursor;
        bool was_ok = reader.ok;
        bool read = s_read(&reader, data[size - 1 - step]);
        ZM_FUZZ_CHECK(reader.cursor >= data && reader.cursor <= data + size);
        ZM_FUZZ_CHECK(read == reader.ok);
        ZM_FUZZ_CHECK(!read || (was_ok && reader.cursor > before));
        ZM_FUZZ_CHECK(zm_reader_done(&reader) == (reader.ok && reader.cursor == data + size));
    }
    //  A failed reader stays failed.
    uint64_t value;
    if (!reader.ok)
        ZM_FUZZ_CHECK(!zm_reader_uint(&reader, &value) && !reader.ok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int depth = (int8_t) data[0];
    const uint8_t *object = data + 1;
    size_t object_size = size - 1;
    if (zm_pack_check(object, object_size, depth) == ZMESH_OK)
        s_check_accepted(object, object_size, depth);
    s_check_reader(object, object_size);
    return 0;
}
