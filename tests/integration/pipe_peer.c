//  test-pipe-peer - the producer and consumer of the pipeline integration
//  tests, built on the public library only (zmesh.h).
//
//  `produce` sends numbered messages 1..N (or FIRST..FIRST+N-1) into a
//  pipeline with zmesh_producer in a chosen mode, flushes, and prints one
//  line, "produced sent=N flush=TEXT pending=P error=TEXT", then exits 0 if
//  every send and the flush returned ZMESH_OK, 1 if not, 0 when stopped by
//  SIGINT/SIGTERM. A message is the msgpack uint n, or with --pad BYTES the
//  map {"n": n, "pad": "xxx..."}.
//
//  `consume` receives messages of a pipeline with zmesh_consumer and, for
//  each, appends "ID ATTEMPT REDELIVERED N" to the --out file with one
//  write(2) (so a SIGKILL loses nothing it wrote), then works (sleeps
//  --slow-ms for the first --slow-count messages, all if 0), then acks. A
//  body that is neither form above is recorded with N = 0. With --count it
//  exits 0 after that many messages; SIGINT/SIGTERM stop it cleanly (exit 0).
//  It must stay trivial: it is a fixture, not code under test.
#include "zmesh.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_EXIT_USAGE 2
#define S_RECV_MS 100                 //  how often the consumer looks at the stop flag
#define S_PAD_MAX (1 << 20)

typedef struct {
    const char *broker;               //  borrowed from argv
    const char *pipeline;             //  borrowed from argv
    const char *out;                  //  borrowed from argv: consume's record file
    int mode;                         //  produce: ZMESH_QUEUED, _ACCEPTED, _PROCESSED
    bool async;                       //  produce: ZMESH_ASYNC on every send
    long count;                       //  produce: messages; consume: exit after (0: never)
    long first;                       //  produce: the first number
    int pad;                          //  produce: bytes of padding (0: a plain uint)
    int window;                       //  produce: 0 = the library's default
    int flush_ms;                     //  produce: flush timeout (-1: none)
    int credit;                       //  consume
    int heartbeat_ms;                 //  consume
    int liveness;                     //  consume
    int slow_ms;                      //  consume: work per message
    long slow_count;                  //  consume: messages that take slow_ms (0: all)
} s_args_t;

static volatile sig_atomic_t s_stopping;

static void
s_on_signal(int signal_number)
{
    (void) signal_number;
    s_stopping = 1;
}

static void
s_sleep_ms(int ms)
{
    struct timespec left = {ms / 1000, (long) (ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR && !s_stopping)
        ;
}

//  ---------------------------------------------------------------------
//  produce

//  Packs message number n into pack (reset first).
static void
s_pack_number(zmesh_pack_t *pack, uint64_t n, const char *pad, int pad_size)
{
    zmesh_pack_reset(pack);
    if (pad_size == 0) {
        zmesh_pack_uint(pack, n);
        return;
    }
    zmesh_pack_map(pack, 2);
    zmesh_pack_str(pack, "n");
    zmesh_pack_uint(pack, n);
    zmesh_pack_str(pack, "pad");
    zmesh_pack_strn(pack, pad, (size_t) pad_size);
}

static int
s_produce(const s_args_t *args)
{
    int rc;
    zmesh_producer_t *producer = zmesh_producer_new(args->broker, args->pipeline, &rc);
    if (!producer) {
        fprintf(stderr, "test-pipe-peer: producer: %s\n", zmesh_strerror(rc));
        return S_EXIT_USAGE;
    }
    zmesh_producer_set_mode(producer, args->mode);
    if (args->window > 0)
        zmesh_producer_set_window(producer, args->window);
    char *pad = malloc((size_t) args->pad + 1);
    if (!pad)
        abort();
    memset(pad, 'x', (size_t) args->pad);
    zmesh_pack_t *pack = zmesh_pack_new();
    int flags = args->mode | (args->async ? ZMESH_ASYNC : 0);
    long sent = 0;
    rc = ZMESH_OK;
    while (sent < args->count && !s_stopping) {
        s_pack_number(pack, (uint64_t) (args->first + sent), pad, args->pad);
        rc = zmesh_producer_send(producer, zmesh_pack_data(pack), zmesh_pack_size(pack), flags);
        if (rc != ZMESH_OK) {
            fprintf(stderr, "test-pipe-peer: send %ld: %s (%s)\n", args->first + sent,
                    zmesh_strerror(rc), zmesh_producer_error(producer));
            break;
        }
        sent++;
    }
    int flushed = zmesh_producer_flush(producer, s_stopping ? 0 : args->flush_ms);
    printf("produced sent=%ld flush=%s pending=%zu error=%s\n", sent, zmesh_strerror(flushed),
           zmesh_producer_pending(producer), zmesh_producer_error(producer));
    fflush(stdout);
    zmesh_pack_destroy(&pack);
    free(pad);
    zmesh_producer_destroy(&producer);
    if (s_stopping)
        return 0;                     //  told to stop: the result line says how far it got
    return rc == ZMESH_OK && flushed == ZMESH_OK ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  consume

static bool
s_key_is(const msgpack_object *key, const char *name)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(name)
           && memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

//  The number in a message body: a uint, or the "n" of a map; 0 otherwise.
static uint64_t
s_number_of(const zmesh_msg_t *msg)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    uint64_t n = 0;
    if (msgpack_unpack_next(&result, zmesh_msg_data(msg), zmesh_msg_size(msg), &offset)
        == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *object = &result.data;
        if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            n = object->via.u64;
        for (uint32_t i = 0; object->type == MSGPACK_OBJECT_MAP && i < object->via.map.size; i++)
            if (s_key_is(&object->via.map.ptr[i].key, "n")
                && object->via.map.ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                n = object->via.map.ptr[i].val.via.u64;
    }
    msgpack_unpacked_destroy(&result);
    return n;
}

//  Appends one record with a single write: a reader never sees half a line
//  from a process that was killed.
static bool
s_record(int fd, const zmesh_delivery_t *delivery, uint64_t n)
{
    char line[128];
    int length = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu32 " %d %" PRIu64 "\n",
                          delivery->id, delivery->attempt, delivery->redelivered ? 1 : 0, n);
    return length > 0 && write(fd, line, (size_t) length) == length;
}

//  Handles one message: record, work, ack. False on a failure to report.
static bool
s_handle(const s_args_t *args, zmesh_consumer_t *consumer, int fd, zmesh_msg_t *msg,
         const zmesh_delivery_t *delivery, long handled)
{
    if (!s_record(fd, delivery, s_number_of(msg))) {
        fprintf(stderr, "test-pipe-peer: write %s: %s\n", args->out, strerror(errno));
        return false;
    }
    if (args->slow_ms > 0 && (args->slow_count == 0 || handled < args->slow_count))
        s_sleep_ms(args->slow_ms);
    int rc = zmesh_consumer_ack(consumer, delivery->id);
    if (rc != ZMESH_OK)
        fprintf(stderr, "test-pipe-peer: ack %" PRIu64 ": %s\n", delivery->id,
                zmesh_strerror(rc));
    return rc == ZMESH_OK;
}

static int
s_consume(const s_args_t *args)
{
    int fd = open(args->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "test-pipe-peer: open %s: %s\n", args->out, strerror(errno));
        return 1;
    }
    int rc;
    zmesh_consumer_t *consumer = zmesh_consumer_new(args->broker, args->pipeline, &rc);
    if (!consumer) {
        fprintf(stderr, "test-pipe-peer: consumer: %s\n", zmesh_strerror(rc));
        close(fd);
        return S_EXIT_USAGE;
    }
    zmesh_consumer_set_credit(consumer, args->credit);
    zmesh_consumer_set_heartbeat(consumer, args->heartbeat_ms, args->liveness);
    long handled = 0;
    bool ok = true;
    while (ok && !s_stopping && (args->count == 0 || handled < args->count)) {
        zmesh_msg_t *msg = NULL;
        zmesh_delivery_t delivery = {0};
        rc = zmesh_consumer_recv(consumer, S_RECV_MS, &msg, &delivery);
        if (rc == ZMESH_OK)
            ok = s_handle(args, consumer, fd, msg, &delivery, handled++);
        else if (rc != ZMESH_EAGAIN && !(rc == ZMESH_ECLOSED && s_stopping)) {
            fprintf(stderr, "test-pipe-peer: recv: %s (%s)\n", zmesh_strerror(rc),
                    zmesh_consumer_error(consumer));
            ok = false;
        }
        zmesh_msg_destroy(&msg);
    }
    fprintf(stderr, "test-pipe-peer: consumed %ld messages\n", handled);
    zmesh_consumer_destroy(&consumer);
    close(fd);
    return ok ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  arguments

static int
s_usage(void)
{
    fprintf(stderr,
            "usage: test-pipe-peer produce --broker EP --pipeline NAME --count N [--first N]\n"
            "                      [--mode queued|accepted|processed] [--async] [--pad BYTES]\n"
            "                      [--window N] [--flush-ms MS]\n"
            "       test-pipe-peer consume --broker EP --pipeline NAME --out FILE [--count N]\n"
            "                      [--credit N] [--heartbeat-ms N] [--liveness N]\n"
            "                      [--slow-ms MS] [--slow-count N]\n");
    return S_EXIT_USAGE;
}

//  Parses a whole number in [min, max]; false on anything else.
static bool
s_number(const char *text, long min, long max, long *value_p)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return false;
    *value_p = value;
    return true;
}

static bool
s_int(const char *text, long min, long max, int *value_p)
{
    long value;
    if (!s_number(text, min, max, &value))
        return false;
    *value_p = (int) value;
    return true;
}

static bool
s_mode(const char *text, int *mode_p)
{
    *mode_p = strcmp(text, "queued") == 0      ? ZMESH_QUEUED
              : strcmp(text, "accepted") == 0  ? ZMESH_ACCEPTED
              : strcmp(text, "processed") == 0 ? ZMESH_PROCESSED
                                               : 0;
    return *mode_p != 0;
}

static bool
s_option(int option, s_args_t *args)
{
    switch (option) {
    case 'b': args->broker = optarg; return true;
    case 'p': args->pipeline = optarg; return true;
    case 'o': args->out = optarg; return true;
    case 'm': return s_mode(optarg, &args->mode);
    case 'a': args->async = true; return true;
    case 'n': return s_number(optarg, 0, 100000000, &args->count);
    case 'f': return s_number(optarg, 1, 1000000000, &args->first);
    case 'P': return s_int(optarg, 0, S_PAD_MAX, &args->pad);
    case 'w': return s_int(optarg, 1, 100000, &args->window);
    case 'F': return s_int(optarg, -1, 600000, &args->flush_ms);
    case 'c': return s_int(optarg, 1, 1000, &args->credit);
    case 'h': return s_int(optarg, 100, 60000, &args->heartbeat_ms);
    case 'l': return s_int(optarg, 2, 100, &args->liveness);
    case 's': return s_int(optarg, 0, 60000, &args->slow_ms);
    case 'S': return s_number(optarg, 0, 100000000, &args->slow_count);
    default: return false;
    }
}

static bool
s_parse(int argc, char **argv, s_args_t *args)
{
    static const struct option options[] = {
        {"broker", required_argument, NULL, 'b'},     {"pipeline", required_argument, NULL, 'p'},
        {"out", required_argument, NULL, 'o'},        {"mode", required_argument, NULL, 'm'},
        {"async", no_argument, NULL, 'a'},            {"count", required_argument, NULL, 'n'},
        {"first", required_argument, NULL, 'f'},      {"pad", required_argument, NULL, 'P'},
        {"window", required_argument, NULL, 'w'},     {"flush-ms", required_argument, NULL, 'F'},
        {"credit", required_argument, NULL, 'c'},     {"heartbeat-ms", required_argument, NULL, 'h'},
        {"liveness", required_argument, NULL, 'l'},   {"slow-ms", required_argument, NULL, 's'},
        {"slow-count", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0},
    };
    optind = 2;
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1)
        if (!s_option(option, args))
            return false;
    return optind == argc && args->broker && args->pipeline;
}

int
main(int argc, char **argv)
{
    //  We own SIGINT/SIGTERM, and CZMQ's log lines belong on stderr.
    setenv("ZSYS_SIGHANDLER", "false", 1);
    setenv("ZSYS_LOGSTREAM", "stderr", 1);
    s_args_t args = {.mode = ZMESH_QUEUED, .first = 1, .flush_ms = -1, .credit = 10,
                     .heartbeat_ms = 1000, .liveness = 3};
    bool produce = argc > 1 && strcmp(argv[1], "produce") == 0;
    bool consume = argc > 1 && strcmp(argv[1], "consume") == 0;
    if (!(produce || consume) || !s_parse(argc, argv, &args) || (consume && !args.out))
        return s_usage();
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    return produce ? s_produce(&args) : s_consume(&args);
}
