//  zmesh.c - the `zmesh` scripting CLI: parses the command line (global options may come before
//  or after the subcommand), prints help and version, and dispatches to `call` or `status`.
//  It only reads argv and the environment; it never asserts on them: every bad flag or argument
//  is a usage message on stderr and exit code 2.
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char s_usage_main[] =
    "usage: zmesh [--broker EP] COMMAND [ARGS...]\n"
    "       zmesh --help | --version\n"
    "\n"
    "Commands:\n"
    "  call SERVICE [JSON]   call a service, print the reply as one JSON line\n"
    "  status                show the broker's services, workers and counters\n"
    "\n"
    "Global options (before or after the command):\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    "  --timeout MS   how long to wait for each reply (default 5000)\n"
    "  --help, -h     show help (`zmesh COMMAND --help` for a command)\n"
    "  --version      print the version\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (handler error, worker lost, protocol), 2 usage or bad JSON,\n"
    "3 timeout or broker unreachable, 4 no such service, 5 busy.\n";

static const char s_usage_call[] =
    "usage: zmesh call SERVICE [JSON] [--timeout MS] [--retries N] [--broker EP]\n"
    "\n"
    "Converts JSON to MessagePack, calls SERVICE through the broker and prints the reply\n"
    "as one compact JSON line on stdout.\n"
    "\n"
    "Without JSON, reads one JSON request per line from stdin (blank lines are skipped)\n"
    "and prints one reply line per request, in input order. Up to 32 calls are kept in\n"
    "flight when input is ready. The first failed line stops the command: the replies\n"
    "before it are printed, the error goes to stderr and sets the exit code; lines after\n"
    "it that were already sent may still have run on the service.\n"
    "\n"
    "Options:\n"
    "  --timeout MS   give up on a call after MS milliseconds (default 5000)\n"
    "  --retries N    resend a call that got no answer up to N times, 0..100 (default 0),\n"
    "                 with the same request id; the timeout is shared between the\n"
    "                 attempts. A broker still holding the call ignores the copy; a copy\n"
    "                 reaching another broker, or one after a reconnection, runs again:\n"
    "                 use it for services that are safe to call twice\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers, used one at a\n"
    "                 time: the next when the current one does not answer\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    "\n"
    "Errors print `zmesh: call SERVICE: <error>: <detail>` on stderr. Exit codes: 0 ok,\n"
    "1 handler error/worker lost/protocol, 2 usage or bad JSON, 3 timeout or broker\n"
    "unreachable, 4 no such service, 5 busy.\n";

static const char s_usage_status[] =
    "usage: zmesh status [--json] [--timeout MS] [--broker EP]\n"
    "\n"
    "Asks the broker for its state (the reserved service zmesh.status) and prints it as\n"
    "tables: services, workers and every counter.\n"
    "\n"
    "Options:\n"
    "  --json         print the broker's reply as one JSON line instead\n"
    "  --timeout MS   how long to wait for the reply (default 5000)\n"
    "  --broker EP    broker endpoint, or a comma-separated list of brokers\n"
    "                 (default: $ZMESH_BROKER, else " ZMESH_DEFAULT_ENDPOINT ")\n"
    "\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 timeout or broker unreachable.\n";

//  What the command line asked for, beyond zm_cli_t.
typedef struct {
    bool help;                  //  --help or -h
    bool version;               //  --version
    bool json_given;            //  --json appeared (checked against the command later)
    bool retries_given;         //  --retries appeared (checked against the command later)
    const char *error;          //  first usage error, static text or s_error_buffer
} s_flags_t;

static char s_error_buffer[256];

static const char *
s_usage_for(const char *command)
{
    if (command && strcmp(command, "call") == 0)
        return s_usage_call;
    if (command && strcmp(command, "status") == 0)
        return s_usage_status;
    return s_usage_main;
}

//  An argument is an option if it starts with "-", except "-" alone and negative numbers:
//  `zmesh call svc -5` sends the JSON number -5.
static bool
s_is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0' && !isdigit((unsigned char) arg[1]);
}

//  Parses a count in [min, max]: digits only, no sign, no trailing bytes.
static bool
s_parse_count(const char *text, long min, long max, int *value_p)
{
    if (!isdigit((unsigned char) text[0]))
        return false;
    errno = 0;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *value_p = (int) value;
    return true;
}

//  Parses a strictly positive millisecond count.
static bool
s_parse_ms(const char *text, int *value_p)
{
    return s_parse_count(text, 1, INT_MAX, value_p);
}

static void
s_set_error(s_flags_t *flags, const char *format, const char *arg)
{
    if (flags->error)
        return;                 //  the first error is the one worth reporting
    snprintf(s_error_buffer, sizeof s_error_buffer, format, arg);
    flags->error = s_error_buffer;
}

//  Applies the option at argv[*index_p], in the form `--name value` or `--name=value`, and moves
//  *index_p past a separate value.
static void
s_parse_option(int argc, char **argv, int *index_p, zm_cli_t *cli, s_flags_t *flags)
{
    const char *arg = argv[*index_p];
    const char *equals = strchr(arg, '=');
    size_t name_size = equals ? (size_t) (equals - arg) : strlen(arg);
    char name[32];
    if (name_size >= sizeof name) {
        s_set_error(flags, "unknown option %s", arg);
        return;
    }
    memcpy(name, arg, name_size);
    name[name_size] = '\0';
    const char *value = equals ? equals + 1 : NULL;
    bool takes_value = strcmp(name, "--broker") == 0 || strcmp(name, "--timeout") == 0
                    || strcmp(name, "--retries") == 0;
    if (takes_value && !value) {
        if (*index_p + 1 >= argc) {
            s_set_error(flags, "option %s needs a value", name);
            return;
        }
        value = argv[++*index_p];
    }
    else if (!takes_value && value) {
        s_set_error(flags, "option %s takes no value", name);
        return;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        flags->help = true;
    else if (strcmp(name, "--version") == 0)
        flags->version = true;
    else if (strcmp(name, "--json") == 0)
        flags->json_given = true;
    else if (strcmp(name, "--broker") == 0 && value[0] == '\0')
        s_set_error(flags, "option %s needs a non-empty endpoint", name);
    else if (strcmp(name, "--broker") == 0)
        cli->broker = value;
    else if (strcmp(name, "--timeout") == 0 && !s_parse_ms(value, &cli->timeout_ms))
        s_set_error(flags, "--timeout wants milliseconds from 1 to 2147483647, not '%s'", value);
    else if (strcmp(name, "--retries") == 0 && !s_parse_count(value, 0, 100, &cli->retries))
        s_set_error(flags, "--retries wants 0..100, not '%s'", value);
    else if (strcmp(name, "--retries") == 0)
        flags->retries_given = true;
    else if (strcmp(name, "--timeout") != 0)
        s_set_error(flags, "unknown option %s", name);
}

//  Splits argv into options, the command and its positional arguments. "--" ends the options,
//  for JSON text that would look like one.
static void
s_parse_args(int argc, char **argv, zm_cli_t *cli, s_flags_t *flags)
{
    bool options_done = false;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        if (!options_done && strcmp(arg, "--") == 0)
            options_done = true;
        else if (!options_done && s_is_option(arg))
            s_parse_option(argc, argv, &index, cli, flags);
        else if (!cli->command)
            cli->command = arg;
        else if (cli->arg_count < 2)
            cli->args[cli->arg_count++] = arg;
        else
            s_set_error(flags, "unexpected argument '%s'", arg);
    }
}

//  Checks that the command exists and got the arguments and options it accepts.
static void
s_check_command(zm_cli_t *cli, s_flags_t *flags)
{
    if (!cli->command) {
        s_set_error(flags, "%s", "missing command");
        return;
    }
    if (strcmp(cli->command, "call") == 0) {
        if (cli->arg_count < 1)
            s_set_error(flags, "%s", "call needs a SERVICE");
        if (flags->json_given)
            s_set_error(flags, "%s", "option --json is for status only");
    }
    else if (strcmp(cli->command, "status") == 0) {
        if (cli->arg_count > 0)
            s_set_error(flags, "unexpected argument '%s'", cli->args[0]);
        cli->json = flags->json_given;
        if (flags->retries_given)
            s_set_error(flags, "%s", "option --retries is for call only");
    }
    else
        s_set_error(flags, "unknown command '%s'", cli->command);
}

int
main(int argc, char **argv)
{
    //  CZMQ installs SIGINT/SIGTERM handlers that only set a flag unless told not to; a CLI
    //  must die on Ctrl-C as any Unix tool does, so keep the default dispositions.
    setenv("ZSYS_SIGHANDLER", "false", 0);
    const char *env_broker = getenv("ZMESH_BROKER");
    zm_cli_t cli = {
        .broker = env_broker && env_broker[0] ? env_broker : ZMESH_DEFAULT_ENDPOINT,
        .timeout_ms = ZM_CLI_TIMEOUT_DEFAULT,
    };
    s_flags_t flags = {0};
    s_parse_args(argc, argv, &cli, &flags);
    if (flags.help) {
        fputs(s_usage_for(cli.command), stdout);
        return ZM_CLI_EXIT_OK;
    }
    if (flags.version) {
        printf("zmesh %d.%d.%d\n", ZMESH_VERSION_MAJOR, ZMESH_VERSION_MINOR, ZMESH_VERSION_PATCH);
        return ZM_CLI_EXIT_OK;
    }
    s_check_command(&cli, &flags);
    if (flags.error) {
        fprintf(stderr, "zmesh: %s\n\n%s", flags.error, s_usage_for(cli.command));
        return ZM_CLI_EXIT_USAGE;
    }
    if (strcmp(cli.command, "call") == 0)
        return zm_cli_call(&cli);
    return zm_cli_status(&cli);
}
