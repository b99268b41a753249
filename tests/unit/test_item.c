//  test_item - the queue pipeline messages wait in (broker/item.h): id
//  order with messages put back among fresh ones, body bytes, DONE routing
//  ids, large bodies, destruction with messages in it, and chunks that grow
//  with the queue and are freed as it drains.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "item.h"

#include <string.h>

//  Appends message id with a body of size bytes, each byte (id + i) & 0xff,
//  so a popped body tells which message it was.
static void
s_append(zm_itemq_t *queue, uint64_t id, size_t size, zframe_t *producer, uint64_t seq)
{
    zframe_t *body = zframe_new(NULL, size);
    for (size_t i = 0; i < size; i++)
        zframe_data(body)[i] = (byte) (id + i);
    zm_itemq_append(queue, id, &body, producer, seq);
    assert_null(body);
    assert_true(zm_itemq_check(queue));
}

//  Pops the next message, checks it is id with its body, and returns it.
static zm_item_t *
s_pop(zm_itemq_t *queue, uint64_t id, size_t size)
{
    zm_item_t *item = zm_itemq_pop(queue);
    assert_non_null(item);
    assert_int_equal(item->id, id);
    assert_int_equal(item->size, size);
    for (size_t i = 0; i < size; i++)
        assert_int_equal(zm_item_data(item)[i], (byte) (id + i));
    zframe_t *body = zm_item_body(item);
    assert_int_equal(zframe_size(body), size);
    assert_memory_equal(zframe_data(body), zm_item_data(item), size);
    zframe_destroy(&body);
    assert_null(item->consumer);
    assert_true(zm_itemq_check(queue));
    return item;
}

static void
s_pop_destroy(zm_itemq_t *queue, uint64_t id, size_t size)
{
    zm_item_t *item = s_pop(queue, id, size);
    zm_item_destroy(&item);
}

static void
test_item_fresh_messages_pop_in_order(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    assert_null(zm_itemq_pop(queue));
    for (uint64_t id = 1; id <= 100; id++)
        s_append(queue, id * 3, id % 40, NULL, 0);      //  ids need not be consecutive
    assert_int_equal(zm_itemq_size(queue), 100);
    for (uint64_t id = 1; id <= 100; id++) {
        zm_item_t *item = s_pop(queue, id * 3, id % 40);
        assert_int_equal(item->attempts, 0);
        assert_null(item->producer);
        zm_item_destroy(&item);
    }
    assert_int_equal(zm_itemq_size(queue), 0);
    assert_null(zm_itemq_pop(queue));
    zm_itemq_destroy(&queue);
    assert_null(queue);
}

static void
test_item_put_back_goes_by_id_among_fresh(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    for (uint64_t id = 1; id <= 10; id++)
        s_append(queue, id, 16, NULL, 0);
    zm_item_t *held[6] = {NULL};
    for (uint64_t id = 1; id <= 5; id++) {
        held[id] = s_pop(queue, id, 16);
        held[id]->attempts = 1;
    }
    //  Back as a lost consumer gives them, newest first, and a fresh one
    //  taken in between: the queue is in id order all the same.
    zm_itemq_put_back(queue, held[4]);
    zm_itemq_put_back(queue, held[2]);
    s_append(queue, 11, 16, NULL, 0);
    zm_itemq_put_back(queue, held[5]);
    assert_true(zm_itemq_check(queue));
    assert_int_equal(zm_itemq_size(queue), 9);
    zm_item_t *item = s_pop(queue, 2, 16);
    assert_ptr_equal(item, held[2]);            //  the same item, attempts kept
    assert_int_equal(item->attempts, 1);
    //  Taken again and back again while fresh ones are ahead of others.
    zm_itemq_put_back(queue, item);
    s_pop_destroy(queue, 2, 16);
    s_pop_destroy(queue, 4, 16);
    s_pop_destroy(queue, 5, 16);
    s_pop_destroy(queue, 6, 16);
    zm_itemq_put_back(queue, held[3]);          //  back after higher ids went out
    s_pop_destroy(queue, 3, 16);
    s_pop_destroy(queue, 7, 16);
    zm_itemq_put_back(queue, held[1]);
    s_pop_destroy(queue, 1, 16);
    for (uint64_t id = 8; id <= 11; id++)
        s_pop_destroy(queue, id, 16);
    assert_null(zm_itemq_pop(queue));
    zm_itemq_destroy(&queue);
}

static void
test_item_counts_body_bytes(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    s_append(queue, 1, 0, NULL, 0);
    s_append(queue, 2, 16, NULL, 0);
    s_append(queue, 3, 1024, NULL, 0);          //  the largest kept inline
    s_append(queue, 4, 1025, NULL, 0);          //  the smallest kept as its frame
    s_append(queue, 5, 100000, NULL, 0);
    assert_int_equal(zm_itemq_bytes(queue), 16 + 1024 + 1025 + 100000);
    s_pop_destroy(queue, 1, 0);
    zm_item_t *item = s_pop(queue, 2, 16);
    assert_int_equal(zm_itemq_bytes(queue), 1024 + 1025 + 100000);
    zm_itemq_put_back(queue, item);
    assert_int_equal(zm_itemq_bytes(queue), 16 + 1024 + 1025 + 100000);
    assert_true(zm_itemq_check(queue));
    s_pop_destroy(queue, 2, 16);
    s_pop_destroy(queue, 3, 1024);
    s_pop_destroy(queue, 4, 1025);
    assert_int_equal(zm_itemq_bytes(queue), 100000);
    s_pop_destroy(queue, 5, 100000);
    assert_int_equal(zm_itemq_bytes(queue), 0);
    zm_itemq_destroy(&queue);
}

static void
test_item_large_body_keeps_its_frame(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    zframe_t *body = zframe_new(NULL, 4096);
    memset(zframe_data(body), 'x', 4096);
    zframe_t *original = body;
    zm_itemq_append(queue, 1, &body, NULL, 0);
    assert_null(body);
    zm_item_t *item = zm_itemq_pop(queue);
    assert_ptr_equal(item->frame, original);    //  not copied
    assert_int_equal(item->size, 4096);
    zm_item_destroy(&item);
    zm_itemq_destroy(&queue);
}

static void
test_item_keeps_done_routing_and_seq(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    zframe_t *short_id = zframe_new("\x00\x6b\x8b\x45\x67", 5);
    byte long_bytes[255];
    for (size_t i = 0; i < sizeof long_bytes; i++)
        long_bytes[i] = (byte) (255 - i);
    zframe_t *long_id = zframe_new(long_bytes, sizeof long_bytes);
    s_append(queue, 1, 16, short_id, 41);
    s_append(queue, 2, 16, NULL, 0);
    s_append(queue, 3, 2000, long_id, 42);      //  with a body kept as its frame
    s_append(queue, 4, 7, long_id, UINT64_MAX);
    //  The routing ids were copied: the caller's frames are its own.
    zframe_destroy(&short_id);
    zframe_destroy(&long_id);
    zm_item_t *item = s_pop(queue, 1, 16);
    assert_non_null(item->producer);
    assert_memory_equal(zframe_data(item->producer), "\x00\x6b\x8b\x45\x67", 5);
    assert_int_equal(zframe_size(item->producer), 5);
    assert_int_equal(item->seq, 41);
    zm_item_destroy(&item);
    item = s_pop(queue, 2, 16);
    assert_null(item->producer);
    zm_item_destroy(&item);
    for (uint64_t id = 3; id <= 4; id++) {
        item = s_pop(queue, id, id == 3 ? 2000 : 7);
        assert_int_equal(zframe_size(item->producer), sizeof long_bytes);
        assert_memory_equal(zframe_data(item->producer), long_bytes, sizeof long_bytes);
        assert_int_equal(item->seq, id == 3 ? 42 : UINT64_MAX);
        zm_item_destroy(&item);
    }
    zm_itemq_destroy(&queue);
}

static void
test_item_record_larger_than_a_chunk(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    //  An inline body after a 65,000-byte routing id: a record over the
    //  64 KiB chunk size, which gets a chunk of its own size.
    zframe_t *producer = zframe_new(NULL, 65000);
    memset(zframe_data(producer), 'r', 65000);
    s_append(queue, 1, 1000, producer, 1);
    s_append(queue, 2, 1000, producer, 2);
    s_append(queue, 3, 16, NULL, 0);
    zframe_destroy(&producer);
    for (uint64_t id = 1; id <= 2; id++) {
        zm_item_t *item = s_pop(queue, id, 1000);
        assert_int_equal(zframe_size(item->producer), 65000);
        assert_int_equal(item->seq, id);
        zm_item_destroy(&item);
    }
    s_pop_destroy(queue, 3, 16);
    zm_itemq_destroy(&queue);
}

//  Sanitizer builds prove nothing is left behind: fresh inline and large
//  bodies, routing ids, and items put back.
static void
test_item_destroy_with_messages_in_it(void **state)
{
    (void) state;
    zm_itemq_t *queue = zm_itemq_new();
    zframe_t *producer = zframe_new("abcde", 5);
    for (uint64_t id = 1; id <= 5000; id++)
        s_append(queue, id, id % 7 ? 16 : 3000, id % 3 ? NULL : producer, id);
    zframe_destroy(&producer);
    zm_item_t *item = s_pop(queue, 1, 16);
    zm_itemq_put_back(queue, item);
    assert_int_equal(zm_itemq_size(queue), 5000);
    zm_itemq_destroy(&queue);
    assert_null(queue);
    zm_itemq_destroy(&queue);                   //  NULL: nothing to do
}

static void
test_item_grows_and_shrinks(void **state)
{
    (void) state;
    enum { COUNT = 200000 };
    zm_itemq_t *queue = zm_itemq_new();
    assert_int_equal(zm_itemq_footprint(queue), 0);
    for (uint64_t id = 1; id <= COUNT; id++)
        zm_itemq_append(queue, id, &(zframe_t *) {zframe_new("0123456789abcdef", 16)}, NULL,
                        0);
    assert_true(zm_itemq_check(queue));
    //  16 bytes of record and 16 of body, and a little for chunk ends.
    size_t full = zm_itemq_footprint(queue);
    assert_in_range(full, (size_t) COUNT * 32, (size_t) COUNT * 34);
    assert_int_equal(zm_itemq_freed(queue), 0);
    for (uint64_t id = 1; id <= COUNT / 2; id++) {
        zm_item_t *item = zm_itemq_pop(queue);
        assert_int_equal(item->id, id);
        zm_item_destroy(&item);
    }
    //  Drained chunks are freed as the head leaves them.
    assert_in_range(zm_itemq_footprint(queue), full / 2 - 131072, full / 2 + 131072);
    assert_int_equal(zm_itemq_freed(queue) + zm_itemq_footprint(queue), full);
    for (uint64_t id = COUNT / 2 + 1; id <= COUNT; id++) {
        zm_item_t *item = zm_itemq_pop(queue);
        assert_int_equal(item->id, id);
        zm_item_destroy(&item);
    }
    assert_true(zm_itemq_check(queue));
    assert_int_equal(zm_itemq_footprint(queue), 0);     //  the last chunk was a big one
    assert_int_equal(zm_itemq_take_freed(queue), full);
    assert_int_equal(zm_itemq_freed(queue), 0);

    //  A queue that empties over and over keeps its first small chunk:
    //  nothing is allocated or freed per message.
    s_append(queue, COUNT + 1, 16, NULL, 0);
    size_t small = zm_itemq_footprint(queue);
    assert_in_range(small, 1, 4096);
    for (uint64_t id = COUNT + 1; id <= COUNT + 1000; id++) {
        s_pop_destroy(queue, id, 16);
        s_append(queue, id + 1, 16, NULL, 0);
        assert_int_equal(zm_itemq_footprint(queue), small);
    }
    assert_int_equal(zm_itemq_freed(queue), 0);
    //  Growing again starts from the small chunk.
    for (uint64_t id = COUNT + 1002; id <= COUNT + 3000; id++)
        s_append(queue, id, 16, NULL, 0);
    assert_true(zm_itemq_footprint(queue) > small);
    zm_itemq_destroy(&queue);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_fresh_messages_pop_in_order),
        cmocka_unit_test(test_item_put_back_goes_by_id_among_fresh),
        cmocka_unit_test(test_item_counts_body_bytes),
        cmocka_unit_test(test_item_large_body_keeps_its_frame),
        cmocka_unit_test(test_item_keeps_done_routing_and_seq),
        cmocka_unit_test(test_item_record_larger_than_a_chunk),
        cmocka_unit_test(test_item_destroy_with_messages_in_it),
        cmocka_unit_test(test_item_grows_and_shrinks),
    };
    return cmocka_run_group_tests_name("item", tests, NULL, NULL);
}
