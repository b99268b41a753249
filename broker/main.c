//  zmesh-broker - routes RPC calls between zmesh clients and workers, and
//  pipeline messages from producers to consumers.
//  Reads flags and ZMESH_* environment variables, then runs the broker.
#include "broker.h"

#include "zm_log.h"
#include "zm_random.h"
#include "zmesh.h"

#include <getopt.h>
#include <stdlib.h>

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: zmesh-broker [options]\n"
            "Routes zmesh calls from clients to workers, and pipeline messages from\n"
            "producers to consumers (protocol: schemas/ZMP.md).\n\n"
            "  --bind EP            endpoint to bind (env ZMESH_BIND; default %s)\n"
            "  --push-bind EP       push endpoint for plain PUSH producers, or none\n"
            "                       (env ZMESH_PUSH_BIND; default %s)\n"
            "  --grace-ms N         how long a call waits for a service's first worker\n"
            "                       before it fails with 404 (env ZMESH_GRACE_MS; default 2000)\n"
            "  --max-queue N        queued calls per service before 503 busy, and messages\n"
            "                       held per pipeline (env ZMESH_MAX_QUEUE; default 1024)\n"
            "  --max-body BYTES     largest payload (env ZMESH_MAX_BODY; default 1048576)\n"
            "  --max-depth N        deepest payload nesting, 1..64 (env ZMESH_MAX_DEPTH; default 64)\n"
            "  --max-attempts N     dispatches of a call to an idempotent service, so retries\n"
            "                       after lost workers, 1..100 (env ZMESH_MAX_ATTEMPTS; default 3)\n"
            "  --max-deliveries N   deliveries of a pipeline message whose consumers are all\n"
            "                       lost before it is given up, 1..1000\n"
            "                       (env ZMESH_MAX_DELIVERIES; default 10)\n"
            "  --max-garbage N      malformed messages from one peer within 10 s before its\n"
            "                       connection is closed; 0 = never (env ZMESH_MAX_GARBAGE;\n"
            "                       default 16)\n"
            "  --no-check-payloads  do not check that payloads are one MessagePack object\n"
            "  --curve-secret FILE  turn CURVE on: the broker's secret certificate, from\n"
            "                       `zmesh keygen broker` (mode 0600; env ZMESH_CURVE_SECRET)\n"
            "  --curve-keys DIR     with --curve-secret: the public certificates of every\n"
            "                       peer let in, with their rights (env ZMESH_CURVE_KEYS).\n"
            "                       A key whose file is removed is cut off within 2 s\n"
            "  --insecure           allow binding an endpoint other hosts can reach without\n"
            "                       CURVE (env ZMESH_INSECURE=1)\n"
            "  --print-endpoint     print the bound endpoint, then the push endpoint, on\n"
            "                       stdout once listening\n"
            "  --verbose            log debug lines (env ZMESH_VERBOSE=1)\n"
            "  --help               this text\n\n"
            "Stops cleanly on SIGINT or SIGTERM. Exit codes: 0 stopped, 1 cannot bind or\n"
            "cannot set up security, 2 bad option.\n",
            ZMESH_DEFAULT_ENDPOINT, ZMESH_DEFAULT_PUSH_ENDPOINT);
}

//  Parses a whole decimal number within [min, max]; false on anything else.
static bool
s_parse_size(const char *text, long long min, long long max, long long *value_p)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || *end || value < min || value > max)
        return false;
    *value_p = value;
    return true;
}

//  Applies one numeric setting; reports a bad value and returns false.
static bool
s_set_number(const char *name, const char *text, long long min, long long max,
             long long *value_p)
{
    if (s_parse_size(text, min, max, value_p))
        return true;
    fprintf(stderr, "zmesh-broker: %s must be a whole number from %lld to %lld, not '%s'\n",
            name, min, max, text ? text : "");
    return false;
}

//  A flag given an empty value is a mistake (an unset variable in a unit
//  file or a compose file), not a wish to run without it.
static bool
s_given(const char *name, const char *value)
{
    if (*value)
        return true;
    fprintf(stderr, "zmesh-broker: %s needs a value\n", name);
    return false;
}

int
main(int argc, char *argv[])
{
    zm_broker_config_t config = {.bind = getenv("ZMESH_BIND"),
                                 .push_bind = getenv("ZMESH_PUSH_BIND"),
                                 .curve_secret = getenv("ZMESH_CURVE_SECRET"),
                                 .curve_keys = getenv("ZMESH_CURVE_KEYS")};
    const char *env_insecure = getenv("ZMESH_INSECURE");
    config.insecure = env_insecure && strcmp(env_insecure, "1") == 0;
    zm_engine_config_defaults(&config.engine);
    if (!config.bind || !*config.bind)
        config.bind = ZMESH_DEFAULT_ENDPOINT;
    if (!config.push_bind || !*config.push_bind)
        config.push_bind = ZMESH_DEFAULT_PUSH_ENDPOINT;
    const char *env_verbose = getenv("ZMESH_VERBOSE");
    bool verbose = env_verbose && strcmp(env_verbose, "1") == 0;
    long long grace = config.engine.grace_ms, queue = (long long) config.engine.max_queue;
    long long body = (long long) config.engine.limits.max_body;
    long long depth = config.engine.limits.max_depth;
    long long garbage = config.engine.max_garbage;
    long long attempts = config.engine.max_attempts;
    long long deliveries = config.engine.max_deliveries;
    bool ok = true;
    const char *env;
    if ((env = getenv("ZMESH_GRACE_MS")))
        ok = ok && s_set_number("ZMESH_GRACE_MS", env, 0, 3600000, &grace);
    if ((env = getenv("ZMESH_MAX_QUEUE")))
        ok = ok && s_set_number("ZMESH_MAX_QUEUE", env, 1, 10000000, &queue);
    if ((env = getenv("ZMESH_MAX_BODY")))
        ok = ok && s_set_number("ZMESH_MAX_BODY", env, 16, 256LL << 20, &body);
    if ((env = getenv("ZMESH_MAX_DEPTH")))
        ok = ok && s_set_number("ZMESH_MAX_DEPTH", env, 1, 64, &depth);
    if ((env = getenv("ZMESH_MAX_ATTEMPTS")))
        ok = ok && s_set_number("ZMESH_MAX_ATTEMPTS", env, 1, 100, &attempts);
    if ((env = getenv("ZMESH_MAX_GARBAGE")))
        ok = ok && s_set_number("ZMESH_MAX_GARBAGE", env, 0, 1000000, &garbage);
    if ((env = getenv("ZMESH_MAX_DELIVERIES")))
        ok = ok && s_set_number("ZMESH_MAX_DELIVERIES", env, 1, 1000, &deliveries);

    static const struct option options[] = {
        {"bind", required_argument, NULL, 'b'},
        {"push-bind", required_argument, NULL, 'P'},
        {"max-deliveries", required_argument, NULL, 'D'},
        {"grace-ms", required_argument, NULL, 'g'},
        {"max-queue", required_argument, NULL, 'q'},
        {"max-body", required_argument, NULL, 'm'},
        {"max-depth", required_argument, NULL, 'd'},
        {"max-garbage", required_argument, NULL, 'x'},
        {"max-attempts", required_argument, NULL, 'a'},
        {"no-check-payloads", no_argument, NULL, 'n'},
        {"curve-secret", required_argument, NULL, 'S'},
        {"curve-keys", required_argument, NULL, 'K'},
        {"insecure", no_argument, NULL, 'I'},
        {"print-endpoint", no_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while (ok && (option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'b': config.bind = optarg; break;
        case 'P': config.push_bind = optarg; break;
        case 'D': ok = s_set_number("--max-deliveries", optarg, 1, 1000, &deliveries); break;
        case 'g': ok = s_set_number("--grace-ms", optarg, 0, 3600000, &grace); break;
        case 'q': ok = s_set_number("--max-queue", optarg, 1, 10000000, &queue); break;
        case 'm': ok = s_set_number("--max-body", optarg, 16, 256LL << 20, &body); break;
        case 'd': ok = s_set_number("--max-depth", optarg, 1, 64, &depth); break;
        case 'x': ok = s_set_number("--max-garbage", optarg, 0, 1000000, &garbage); break;
        case 'a': ok = s_set_number("--max-attempts", optarg, 1, 100, &attempts); break;
        case 'n': config.engine.limits.check_body = false; break;
        case 'S': config.curve_secret = optarg; ok = s_given("--curve-secret", optarg); break;
        case 'K': config.curve_keys = optarg; ok = s_given("--curve-keys", optarg); break;
        case 'I': config.insecure = true; break;
        case 'p': config.print_endpoint = true; break;
        case 'v': verbose = true; break;
        case 'h': s_usage(stdout); return 0;
        default: ok = false; break;
        }
    }
    if (ok && optind < argc) {
        fprintf(stderr, "zmesh-broker: unexpected argument '%s'\n", argv[optind]);
        ok = false;
    }
    if (config.curve_secret && !*config.curve_secret)
        config.curve_secret = NULL;
    if (config.curve_keys && !*config.curve_keys)
        config.curve_keys = NULL;
    if (ok && !config.curve_secret != !config.curve_keys) {
        fprintf(stderr, "zmesh-broker: --curve-secret and --curve-keys go together "
                        "(or ZMESH_CURVE_SECRET and ZMESH_CURVE_KEYS)\n");
        ok = false;
    }
    if (!ok) {
        s_usage(stderr);
        return 2;
    }
    config.engine.grace_ms = grace;
    config.engine.epoch_base = (uint64_t) zclock_time();
    config.engine.epoch_salt = zm_random_id(&config);
    config.engine.max_queue = (size_t) queue;
    config.engine.limits.max_body = (size_t) body;
    config.engine.limits.max_depth = (int) depth;
    config.engine.max_garbage = (uint32_t) garbage;
    config.engine.max_attempts = (uint32_t) attempts;
    config.engine.max_deliveries = (uint32_t) deliveries;
    if (strcmp(config.push_bind, "none") == 0)
        config.push_bind = NULL;
    zm_log_init("zmesh-broker", verbose);
    return zm_broker_run(&config);
}
