//  test-worker - a worker program for the integration tests, built on the
//  public library only (zmesh.h): it serves one service in one of a few
//  modes whose behaviour the tests can predict: echo, tag (wraps the
//  request with a tag naming this worker), fail (handler error), slow
//  (sleeps the requested ms, then echoes), hang (blocks until stopped),
//  progress (like slow, reporting progress at once and every 200 ms) and
//  count (waits --delay-ms, then wraps the request with its pid, so a test
//  can tell which worker answered). --idempotent declares its calls safe to
//  run again on another worker.
//  SIGINT/SIGTERM stop it cleanly (exit 0) and wake hanging handlers. It
//  must stay trivial: it is a fixture, not code under test.
#include "zmesh.h"

#include <errno.h>
#include <getopt.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_EXIT_USAGE 2
#define S_PROGRESS_EVERY_MS 200     //  mode progress: how often the handler reports

typedef struct {
    const char *broker;         //  borrowed from argv
    const char *service;        //  borrowed from argv
    const char *mode;           //  borrowed from argv
    const char *tag;            //  borrowed from argv; mode tag
    int threads;
    int inline_slots;           //  --inline: handlers in the worker's thread, this many slots
    int heartbeat_ms;
    int liveness;
    int extend_ms;              //  mode progress: what each report asks for
    int delay_ms;               //  mode count: how long it works before answering
    bool idempotent;            //  --idempotent
} s_args_t;

static zmesh_worker_t *volatile s_worker;     //  for the signal handler
static volatile sig_atomic_t s_stopping;
static int s_stop_pipe[2] = {-1, -1};         //  readable once stopping: wakes handlers

static void
s_on_signal(int signal_number)
{
    (void) signal_number;
    int saved = errno;
    s_stopping = 1;
    if (s_worker)
        zmesh_worker_stop(s_worker);
    ssize_t rc = write(s_stop_pipe[1], "x", 1);  //  never read: stays readable
    (void) rc;
    errno = saved;
}

//  Blocks until the worker is stopping.
static void
s_wait_stop(void)
{
    struct pollfd item = {.fd = s_stop_pipe[0], .events = POLLIN};
    while (poll(&item, 1, -1) < 0 && errno == EINTR)
        ;
}

static int
s_echo(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) arg;
    *reply_p = zmesh_msg_new(zmesh_msg_data(request), zmesh_msg_size(request));
    return ZMESH_OK;
}

//  A reply of the packed head followed by the request bytes verbatim: the
//  head is a map whose last value is left for the request.
static zmesh_msg_t *
s_wrap(const zmesh_pack_t *head, const zmesh_msg_t *request)
{
    size_t head_size = zmesh_pack_size(head), size = head_size + zmesh_msg_size(request);
    char *bytes = malloc(size);
    if (!bytes)
        abort();
    memcpy(bytes, zmesh_pack_data(head), head_size);
    memcpy(bytes + head_size, zmesh_msg_data(request), zmesh_msg_size(request));
    zmesh_msg_t *reply = zmesh_msg_new(bytes, size);
    free(bytes);
    return reply;
}

//  {"tag": TEXT, "req": <request>}
static int
s_tag(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    const s_args_t *args = arg;
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, 2);
    zmesh_pack_str(pack, "tag");
    zmesh_pack_str(pack, args->tag);
    zmesh_pack_str(pack, "req");
    *reply_p = s_wrap(pack, request);
    zmesh_pack_destroy(&pack);
    return ZMESH_OK;
}

//  Sets *reply_p to a msgpack str with the reason and returns a failure.
static int
s_failure(zmesh_msg_t **reply_p, const char *reason)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_str(pack, reason);
    *reply_p = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return ZMESH_EHANDLER;
}

static int
s_fail(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) request;
    (void) arg;
    return s_failure(reply_p, "failed on purpose");
}

//  Reads the request as a msgpack uint of at most 600000 (ms); false otherwise.
static bool
s_request_ms(const zmesh_msg_t *request, int *ms_p)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    bool ok = msgpack_unpack_next(&result, zmesh_msg_data(request), zmesh_msg_size(request),
                                  &offset) == MSGPACK_UNPACK_SUCCESS
              && result.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER
              && result.data.via.u64 <= 600000;
    *ms_p = ok ? (int) result.data.via.u64 : 0;
    msgpack_unpacked_destroy(&result);
    return ok;
}

//  A plain sleep, deaf to stop requests: a stopping worker must leave the
//  call to the broker (WORKER_LOST), not answer it early.
static void
s_sleep_ms(int ms)
{
    struct timespec left = {ms / 1000, (long) (ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

//  The request is a msgpack uint: sleep that many ms, then echo.
static int
s_slow(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    int sleep_ms;
    if (!s_request_ms(request, &sleep_ms))
        return s_failure(reply_p, "slow wants a uint of at most 600000 ms");
    s_sleep_ms(sleep_ms);
    return s_echo(request, reply_p, arg);
}

//  Sleeps until the CLOCK_MONOTONIC time at, however often interrupted.
static void
s_sleep_until(const struct timespec *at)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, at, NULL) == EINTR)
        ;
}

//  The CLOCK_MONOTONIC time ms after start.
static struct timespec
s_after(const struct timespec *start, int ms)
{
    struct timespec at = {start->tv_sec + ms / 1000, start->tv_nsec + (ms % 1000) * 1000000L};
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    return at;
}

//  Like slow, but reports progress (asking for --extend-ms more) when it
//  starts and every S_PROGRESS_EVERY_MS after, so a call whose timeout is
//  shorter than the whole sleep still succeeds. The times are absolute: a
//  worker frozen (SIGSTOP) past its end answers as soon as it thaws.
static int
s_progress(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    const s_args_t *args = arg;
    int total_ms;
    if (!s_request_ms(request, &total_ms))
        return s_failure(reply_p, "progress wants a uint of at most 600000 ms");
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int elapsed_ms = 0;
    while (elapsed_ms < total_ms) {
        if (zmesh_worker_progress(args->extend_ms) != ZMESH_OK)
            return s_failure(reply_p, "zmesh_worker_progress refused");
        int next_ms = (elapsed_ms / S_PROGRESS_EVERY_MS + 1) * S_PROGRESS_EVERY_MS;
        struct timespec at = s_after(&start, next_ms < total_ms ? next_ms : total_ms);
        s_sleep_until(&at);
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed_ms = (int) ((now.tv_sec - start.tv_sec) * 1000
                            + (now.tv_nsec - start.tv_nsec) / 1000000L);
    }
    return s_echo(request, reply_p, arg);
}

//  {"pid": PID, "req": <request>}, after --delay-ms.
static int
s_count(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    const s_args_t *args = arg;
    s_sleep_ms(args->delay_ms);
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_map(pack, 2);
    zmesh_pack_str(pack, "pid");
    zmesh_pack_uint(pack, (uint64_t) getpid());
    zmesh_pack_str(pack, "req");
    *reply_p = s_wrap(pack, request);
    zmesh_pack_destroy(&pack);
    return ZMESH_OK;
}

static int
s_hang(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) request;
    (void) arg;
    s_wait_stop();
    return s_failure(reply_p, "stopped while hanging");
}

static zmesh_handler_fn *
s_handler_of(const char *mode)
{
    static const struct {
        const char *name;
        zmesh_handler_fn *handler;
    } modes[] = {
        {"echo", s_echo}, {"tag", s_tag},           {"fail", s_fail},   {"slow", s_slow},
        {"hang", s_hang}, {"progress", s_progress}, {"count", s_count},
    };
    for (size_t i = 0; mode && i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode, modes[i].name) == 0)
            return modes[i].handler;
    return NULL;
}

static int
s_usage(void)
{
    fprintf(stderr, "usage: test-worker --broker EP --service NAME\n"
                    "                   --mode echo|tag|fail|slow|hang|progress|count\n"
                    "                   [--threads N] [--tag TEXT] [--heartbeat-ms N]"
                    " [--liveness N]\n"
                    "                   [--idempotent] [--extend-ms N] [--delay-ms N]"
                    " [--inline SLOTS]\n");
    return S_EXIT_USAGE;
}

//  Parses a whole number in [min, max]; false on anything else.
static bool
s_number(const char *text, int min, int max, int *value_p)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return false;
    *value_p = (int) value;
    return true;
}

static bool
s_parse(int argc, char **argv, s_args_t *args)
{
    static const struct option options[] = {
        {"broker", required_argument, NULL, 'b'},    {"service", required_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},      {"threads", required_argument, NULL, 't'},
        {"tag", required_argument, NULL, 'g'},       {"heartbeat-ms", required_argument, NULL, 'h'},
        {"liveness", required_argument, NULL, 'l'},  {"idempotent", no_argument, NULL, 'i'},
        {"extend-ms", required_argument, NULL, 'e'}, {"delay-ms", required_argument, NULL, 'd'},
        {"inline", required_argument, NULL, 'n'},    {NULL, 0, NULL, 0},
    };
    bool ok = true;
    int option;
    while (ok && (option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'b': args->broker = optarg; break;
        case 's': args->service = optarg; break;
        case 'm': args->mode = optarg; break;
        case 'g': args->tag = optarg; break;
        case 't': ok = s_number(optarg, 1, 1024, &args->threads); break;
        case 'h': ok = s_number(optarg, 100, 60000, &args->heartbeat_ms); break;
        case 'l': ok = s_number(optarg, 2, 100, &args->liveness); break;
        case 'i': args->idempotent = true; break;
        case 'e': ok = s_number(optarg, 0, 600000, &args->extend_ms); break;
        case 'd': ok = s_number(optarg, 0, 600000, &args->delay_ms); break;
        case 'n': ok = s_number(optarg, 1, 1024, &args->inline_slots); break;
        default: ok = false; break;
        }
    }
    return ok && optind == argc && args->broker && args->service && s_handler_of(args->mode);
}

int
main(int argc, char **argv)
{
    //  We own SIGINT/SIGTERM (they must reach zmesh_worker_stop), and CZMQ's
    //  log lines belong on stderr, the harness's log file.
    setenv("ZSYS_SIGHANDLER", "false", 1);
    setenv("ZSYS_LOGSTREAM", "stderr", 1);
    s_args_t args = {
        .tag = "", .threads = 1, .heartbeat_ms = 1000, .liveness = 3, .extend_ms = 1000};
    if (!s_parse(argc, argv, &args))
        return s_usage();
    if (pipe(s_stop_pipe) != 0)
        return 1;
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    int rc;
    zmesh_worker_t *worker = zmesh_worker_new(args.broker, args.service, &rc);
    if (!worker) {
        fprintf(stderr, "test-worker: %s\n", zmesh_strerror(rc));
        return S_EXIT_USAGE;
    }
    zmesh_worker_set_threads(worker, args.threads);
    zmesh_worker_set_inline(worker, args.inline_slots);
    zmesh_worker_set_heartbeat(worker, args.heartbeat_ms, args.liveness);
    zmesh_worker_set_idempotent(worker, args.idempotent);
    s_worker = worker;
    rc = s_stopping ? ZMESH_OK : zmesh_worker_run(worker, s_handler_of(args.mode), &args);
    //  From here a signal changes nothing: ignore it rather than touch a freed worker.
    action.sa_handler = SIG_IGN;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    s_worker = NULL;
    if (rc != ZMESH_OK)
        fprintf(stderr, "test-worker: run failed: %s (%s)\n", zmesh_strerror(rc),
                zmesh_worker_error(worker));
    zmesh_worker_destroy(&worker);
    return rc == ZMESH_OK ? 0 : 1;
}
