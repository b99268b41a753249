#!/usr/bin/env bash
#  Tests docker/ against a real Docker engine: builds the image, brings the compose stack up,
#  calls the echo service and runs the pipeline stage from a client container and from the
#  host, restarts the broker and waits for the workers to come back, then takes it all down
#  (volumes included). Prints each check and how long each step took.
#
#  What it needs, it gets: Debian's docker.io and docker-compose (apt) when there is no
#  docker, dockerd started by hand when none runs (and stopped at the end, its iptables rules
#  and ip_forward put back as they were), and, when no registry can be reached, a
#  debian:bookworm-slim made with debootstrap from the machine's apt mirror (made once; kept
#  as an image). Run as root, or as a user of a running engine. Exits non-zero, loudly, when
#  no engine can be had.
#
#  Settings: ZMESH_TEST_IMAGE (image tag, default zmesh:test), ZMESH_TEST_PROJECT (compose
#  project, default zmeshtest), ZMESH_TEST_MIRROR (the Debian mirror for debootstrap, default
#  the one in /etc/apt/sources.list*), ZMESH_TEST_BUILD_NETWORK (docker build --network,
#  default host; bridge works too where dockerd may set up NAT), ZMESH_HOST_CLI (the zmesh
#  the host-side checks run: a path, or "image" for the image's zmesh in a container on the
#  host's network; default: build*/clients/zmesh if one runs here, else "image").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
image=${ZMESH_TEST_IMAGE:-zmesh:test}
project=${ZMESH_TEST_PROJECT:-zmeshtest}
build_network=${ZMESH_TEST_BUILD_NETWORK:-host}
base=debian:bookworm-slim
compose_file="$here/compose.yml"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-docker-test.XXXXXX")
started_at=$(date +%s%N)
step_at=$started_at
report=()                   #  lines of the summary: checks and timings, in order
dockerd_pid=""              #  set when this script started dockerd
stack_up=false

#  --- output ------------------------------------------------------------------------------

s_elapsed() {               #  seconds since $1 (ns), one decimal
    local now
    now=$(date +%s%N)
    printf '%d.%d' $(((now - $1) / 1000000000)) $((((now - $1) / 100000000) % 10))
}
say() { printf '[%6ss] %s\n' "$(s_elapsed "$started_at")" "$*"; }
step() {                    #  ends the step before (recording its time), starts the next
    if [ -n "${step_name:-}" ]; then
        report+=("time  $(printf '%6ss' "$(s_elapsed "$step_at")")  $step_name")
    fi
    step_name=$1
    step_at=$(date +%s%N)
    say "== $1"
}
pass() { say "PASS: $*"; report+=("PASS  $*"); }
skip() { say "SKIPPED: $*"; report+=("SKIPPED: $*"); }
loud() {                    #  a failure nobody can miss
    {
        echo
        echo "######################################################################"
        for line in "$@"; do echo "### $line"; done
        echo "######################################################################"
        echo
    } >&2
}
fail() { loud "FAIL: $*" "docker/test.sh did NOT pass"; exit 1; }

#  Polls "$@" until it succeeds or SECONDS pass: every wait of this script is one of these.
#  Returns 1 at the deadline.
wait_for() {
    local seconds=$1
    shift
    local deadline=$(($(date +%s%N) + seconds * 1000000000))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(date +%s%N)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.25
    done
}

#  --- cleanup -----------------------------------------------------------------------------

#  iptables as they were before dockerd started: put back when this script stops it.
iptables_saved=""
ip_forward_saved=""
docker0_existed=true

cleanup() {
    local rc=$?
    set +e
    if $stack_up; then
        say "cleanup: taking the stack down"
        compose down -v --remove-orphans >"$scratch/down.log" 2>&1 || cat "$scratch/down.log"
    fi
    if [ -n "$dockerd_pid" ]; then
        say "cleanup: stopping the dockerd this script started (pid $dockerd_pid)"
        kill -TERM "$dockerd_pid" 2>/dev/null
        if ! wait_for 30 s_gone "$dockerd_pid"; then
            loud "dockerd (pid $dockerd_pid) did not stop within 30 s; killing it"
            kill -KILL "$dockerd_pid" 2>/dev/null
        fi
        s_restore_network
    fi
    rm -rf "$scratch"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

s_gone() { ! kill -0 "$1" 2>/dev/null; }

#  dockerd adds DOCKER chains, NAT rules and a FORWARD policy of DROP, and turns ip_forward on;
#  none of them touch loopback traffic, but they are not ours to leave behind.
s_save_network() {
    if command -v iptables-save >/dev/null; then
        #  Only a save that worked is restored later: restoring nothing would
        #  replace the host's rules with empty tables.
        if iptables_saved=$(iptables-save 2>/dev/null); then
            iptables_save_ok=true
        fi
    fi
    ip_forward_saved=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || true)
    if ! ip link show docker0 >/dev/null 2>&1; then
        docker0_existed=false
    fi
}

s_restore_network() {
    if [ "${iptables_save_ok:-false}" != true ]; then
        loud "iptables was not saved before dockerd started: its rules are left as dockerd left them"
    elif command -v iptables-restore >/dev/null; then
        #  The tables dockerd writes, each as it was (or empty, with ACCEPT policies, if it
        #  held nothing): iptables-restore replaces a table it is given, chains and all.
        local table
        for table in filter nat; do
            if grep -q "^\*$table\$" <<<"$iptables_saved"; then
                sed -n "/^\*$table\$/,/^COMMIT\$/p" <<<"$iptables_saved"
            elif [ "$table" = filter ]; then
                printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'
            else
                printf '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n'
            fi
        done >"$scratch/iptables.restore"
        iptables-restore <"$scratch/iptables.restore" || loud "could not restore iptables"
    fi
    if [ -n "$ip_forward_saved" ]; then
        echo "$ip_forward_saved" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    fi
    if ! $docker0_existed; then
        ip link delete docker0 2>/dev/null || true
    fi
    say "cleanup: iptables, ip_forward and docker0 are as before dockerd started"
}

#  --- the engine --------------------------------------------------------------------------

s_apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || return 1
        sudo="sudo"
    fi
    say "installing with apt-get: $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >"$scratch/apt.log" 2>&1 ||
        ! $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" \
            >>"$scratch/apt.log" 2>&1; then
        tail -20 "$scratch/apt.log" >&2
        return 1
    fi
}

s_no_engine() {
    loud "NO DOCKER ENGINE: $*" "docker/test.sh tested nothing and did NOT pass"
    exit 1
}

step "engine"
if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    if ! docker info >/dev/null 2>&1; then
        s_apt_install docker.io || s_no_engine "docker.io could not be installed"
    fi
fi
if docker info >/dev/null 2>&1; then
    say "a Docker engine runs already: using it (and leaving it running)"
else
    if [ "$(id -u)" -ne 0 ]; then
        s_no_engine "none runs, and only root may start dockerd here"
    fi
    if pgrep -x dockerd >/dev/null; then
        s_no_engine "a dockerd runs but 'docker info' fails: $(docker info 2>&1 | tail -1)"
    fi
    s_save_network
    say "starting dockerd (log: /var/log/zmesh-test-dockerd.log)"
    dockerd >/var/log/zmesh-test-dockerd.log 2>&1 &
    dockerd_pid=$!
    #  Ends early, too, if dockerd dies.
    s_engine_settled() { docker info || s_gone "$dockerd_pid"; }
    if ! wait_for 60 s_engine_settled || ! docker info >/dev/null 2>&1; then
        tail -20 /var/log/zmesh-test-dockerd.log >&2
        s_no_engine "dockerd did not answer 'docker info' within 60 s (its log is above)"
    fi
fi
pass "Docker engine: server $(docker version --format '{{.Server.Version}}' 2>/dev/null)"

#  Compose v2 is `docker compose`; Debian bookworm packages v1, `docker-compose`.
if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
else
    if ! command -v docker-compose >/dev/null; then
        s_apt_install docker-compose || s_no_engine "docker-compose could not be installed"
    fi
    compose_cmd=(docker-compose)
fi
#  Every compose command gets a deadline: 120 s, or $compose_deadline.
compose() {
    timeout "${compose_deadline:-120}" "${compose_cmd[@]}" -p "$project" -f "$compose_file" "$@"
}
say "compose: ${compose_cmd[*]} ($("${compose_cmd[@]}" version --short 2>/dev/null || echo ?))"

#  --- the base image ----------------------------------------------------------------------

#  The Debian mirror of this machine's apt sources (one-line or deb822), for SUITE.
s_mirror_for() {
    local suite=$1
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk -v suite="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i + 1) == suite) { print $i; exit } }' |
        head -1 | grep . && return 0
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uri != "" && found) { print uri; exit } uri = ""; found = 0; next }
            $1 == "URIs:" { uri = $2 }
            $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
            END { if (uri != "" && found) print uri }' | head -1 | grep .
}

step "base image $base"
if docker image inspect "$base" >/dev/null 2>&1; then
    pass "base image $base: cached"
elif timeout 30 docker pull "$base" >"$scratch/pull.log" 2>&1; then
    pass "base image $base: pulled from a registry"
else
    say "no registry answered ($(tail -1 "$scratch/pull.log")); making $base with debootstrap"
    command -v debootstrap >/dev/null || s_apt_install debootstrap ||
        fail "debootstrap could not be installed"
    [ "$(id -u)" -eq 0 ] || fail "debootstrap needs root"
    mirror=${ZMESH_TEST_MIRROR:-$(s_mirror_for bookworm || echo http://deb.debian.org/debian)}
    security=$(s_mirror_for bookworm-security || true)
    say "mirror: $mirror"
    rootfs="$scratch/rootfs"
    timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
        >"$scratch/debootstrap.log" 2>&1 ||
        { tail -20 "$scratch/debootstrap.log" >&2; fail "debootstrap failed"; }
    {
        echo "deb $mirror bookworm main"
        echo "deb $mirror bookworm-updates main"
        [ -z "$security" ] || echo "deb $security bookworm-security main"
    } >"$rootfs/etc/apt/sources.list"
    #  As the official slim image: no documentation from later installs, no kept .debs.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    tar -C "$rootfs" --numeric-owner -c . |
        docker import --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - "$base" >/dev/null || fail "docker import of the debootstrapped root failed"
    rm -rf "$rootfs"
    pass "base image $base: made with debootstrap from $mirror"
fi

#  --- the image ---------------------------------------------------------------------------

step "build $image"
#  The build context is the files git knows (tracked, and new ones not ignored), as they are
#  in the working tree: no build directories, however large.
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -c 2>/dev/null) >"$scratch/context.tar"
else
    tar -C "$root" --exclude='./build*' -c . >"$scratch/context.tar"
fi
if ! timeout 1200 docker build --network "$build_network" -t "$image" -f docker/Dockerfile - \
        <"$scratch/context.tar" >"$scratch/build.log" 2>&1; then
    tail -30 "$scratch/build.log" >&2
    fail "docker build failed"
fi
pass "image $image built ($(docker image inspect -f '{{.Size}}' "$image" |
    awk '{printf "%.1f MB", $1 / 1e6}')), build network: $build_network"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
case "$user" in
    "" | 0 | 0:* | root | root:*) fail "the image runs as root (User '$user')" ;;
esac
pass "the image runs as user $user, not root"
missing=$(timeout 60 docker run --rm --entrypoint sh "$image" -c \
    'ldd /usr/local/bin/zmesh-broker /usr/local/bin/zmesh-worker /usr/local/bin/zmesh | grep "not found" || true')
[ -z "$missing" ] || fail "the programs miss libraries in the image: $missing"
pass "zmesh-broker, zmesh-worker and zmesh find every shared library in the image"

#  --- the stack ---------------------------------------------------------------------------

#  Free ports on the host's loopback for the published broker ports: 5555 may be in use by
#  whoever runs tests on this host.
s_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(s_free_port)
push_port=$(s_free_port)
export ZMESH_IMAGE="$image" ZMESH_PORT="127.0.0.1:$port" ZMESH_PUSH_PORT="127.0.0.1:$push_port"

step "compose up"
compose down -v --remove-orphans >/dev/null 2>&1 || true   #  leftovers of an interrupted run
stack_up=true
if ! compose up -d >"$scratch/up.log" 2>&1; then
    cat "$scratch/up.log" >&2
    compose logs --no-color >&2 || true
    fail "compose up failed"
fi
pass "compose up: init, broker, echo x2, squares (broker on 127.0.0.1:$port)"

#  The loopback check: other programs on this host talk on 127.0.0.1 while dockerd runs, its
#  NAT rules for the published ports in place.
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 - <<'EOF' || fail "loopback TCP on 127.0.0.1 fails while the stack runs"
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname(), timeout=5)
peer, _ = server.accept()
client.sendall(b"ping")
assert peer.recv(4) == b"ping"
EOF
    pass "loopback TCP on 127.0.0.1 works with dockerd and the stack running"
fi

cid() { compose ps -q "$1" | head -1; }
broker_cid=$(cid broker)
init_cid=$(compose ps -a -q init 2>/dev/null | head -1)
[ -n "$init_cid" ] || init_cid=$(docker ps -a -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=init" | head -1)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$init_cid")" = 0 ] || fail "init did not exit 0"
pass "init made the keys and exited 0"
[ "$(compose ps -q echo | wc -l)" -eq 2 ] || fail "not 2 echo containers: $(compose ps -q echo | wc -l)"
pass "echo is scaled to 2 containers"
[ "$(docker exec "$broker_cid" id -u)" != 0 ] || fail "the broker runs as root"
pass "the broker's container runs as uid $(docker exec "$broker_cid" id -u)"

broker_health() { docker inspect -f '{{.State.Health.Status}}' "$broker_cid"; }
broker_healthy() { [ "$(broker_health)" = healthy ]; }     #  asked again at every poll
wait_for 30 broker_healthy || fail "the broker is not healthy: $(broker_health)"
pass "the broker is healthy (HEALTHCHECK: zmesh status with the health key)"

#  `zmesh` in a one-off client container of the stack, with the client key.
#  Compose's own progress lines ("Creating ...") are left out of its stderr.
client() {
    local rc=0
    compose run --rm --no-deps -T client "$@" 2>"$scratch/client.err" || rc=$?
    grep -v -e '^Creating ' -e ' Creating$' -e ' Created$' "$scratch/client.err" >&2 || true
    return "$rc"
}

#  The broker's status, as JSON, asked from a client container.
status_json() { client zmesh status --json --timeout 3000; }
#  Succeeds when the status shows N workers of SERVICE and N consumers of PIPELINE.
status_has() {
    local json
    json=$(status_json) || return 1
    /usr/bin/python3 -c '
import json, sys
status = json.loads(sys.argv[1])
workers = {s["name"]: s["workers"] for s in status["services"]}
consumers = status["pipelines"].get(sys.argv[4], {}).get("consumers", 0)
sys.exit(0 if workers.get(sys.argv[2], 0) == int(sys.argv[3]) and consumers == int(sys.argv[5]) else 1)
' "$json" "$1" "$2" "$3" "$4"
}

step "calls and a pipeline from a client container"
#  Two echo containers: two workers (of two slots each, one per handler thread).
wait_for 30 status_has echo 2 numbers 1 ||
    fail "the broker does not show 2 echo workers and 1 stage: $(status_json || true)"
pass "client container: zmesh status shows the 2 echo workers and the stage"
json=$(status_json)
/usr/bin/python3 -c 'import json, sys; s = json.loads(sys.argv[1]); sys.exit(0 if s["security"]["curve"] else 1)' "$json" ||
    fail "the broker's status says CURVE is off"
pass "client container: the broker runs CURVE"
reply=$(client zmesh call echo '{"x":[1,2,3],"from":"client container"}')
[ "$reply" = '{"x":[1,2,3],"from":"client container"}' ] || fail "echo replied '$reply'"
pass "client container: zmesh call echo replies with its request"
for i in $(seq 1 20); do echo "{\"i\":$i}"; done | client zmesh call echo >"$scratch/calls.out"
if [ "$(wc -l <"$scratch/calls.out")" -ne 20 ] || [ "$(tail -1 "$scratch/calls.out")" != '{"i":20}' ]; then
    fail "20 calls from stdin: $(head -3 "$scratch/calls.out")"
fi
json=$(status_json)
busy=$(/usr/bin/python3 -c 'import json, sys; print(sum(1 for w in json.loads(sys.argv[1])["workers"] if w["service"] == "echo" and w["served"] > 0))' "$json")
[ "$busy" -ge 2 ] || fail "21 calls went to $busy echo worker(s) only"
pass "client container: 21 calls answered, spread over $busy echo workers"
set +e
client zmesh call forbidden '{}' --timeout 3000 >/dev/null 2>"$scratch/denied.err"
rc=$?
set -e
[ "$rc" -eq 6 ] || fail "a call the client key may not make exited $rc, not 6 (denied): $(cat "$scratch/denied.err")"
pass "client container: a call outside the client key's rights is denied (exit 6)"
set +e
compose run --rm --no-deps -T -e ZMESH_CURVE_SECRET= -e ZMESH_BROKER_KEY= client \
    zmesh call echo '{}' --timeout 2000 >/dev/null 2>"$scratch/plain.err"
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "a client without CURVE exited $rc, not 3 (no answer): $(cat "$scratch/plain.err")"
pass "client container: a client without a key gets no answer (exit 3)"

#  The pipeline: numbers -> squares (the stage) -> pulled here. Checks every square arrived.
s_pipeline() {           #  COUNT, then the push and pull commands' prefix
    local count=$1
    shift
    seq 1 "$count" | "$@" zmesh push numbers --mode accepted --timeout 20000 ||
        { echo "push failed" >&2; return 1; }
    "$@" zmesh pull squares --count "$count" --timeout 20000 >"$scratch/squares.out" ||
        { echo "pull failed" >&2; return 1; }
    local expect got
    expect=$(seq 1 "$count" | awk '{ print $1 * $1 }' | sort -n | md5sum)
    got=$(sort -n "$scratch/squares.out" | md5sum)
    [ "$expect" = "$got" ] || { echo "squares differ: $(head -3 "$scratch/squares.out")" >&2; return 1; }
}
s_pipeline 500 client || fail "pipeline from the client container"
pass "client container: 500 numbers pushed into 'numbers' come out squared from 'squares'"

step "calls and a pipeline from the host"
#  The client's keys, copied out of its volume (the secret key is mode 600, as zmesh insists).
mkdir -m 700 "$scratch/keys"
for file in client.key_secret broker.key; do
    timeout 60 docker run --rm -v "${project}_keys-client:/keys/client:ro" --entrypoint cat "$image" \
        "/keys/client/$file" >"$scratch/keys/$file"
done
chmod 600 "$scratch/keys/client.key_secret"
host_cli=${ZMESH_HOST_CLI:-}
if [ "$host_cli" = image ]; then
    host_cli=""
elif [ -z "$host_cli" ]; then
    #  The most recently built of the build directories' (an older one may lack options).
    for candidate in $(ls -t "$root"/build*/clients/zmesh 2>/dev/null); do
        if [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
            host_cli=$candidate
            break
        fi
    done
fi
if [ -n "$host_cli" ]; then
    host_what="the host's zmesh ($host_cli)"
    keys=$scratch/keys
    host_zmesh() { timeout 60 "$host_cli" "$@"; }
else
    host_what="the image's zmesh in a container on the host's network (no zmesh built here)"
    keys=/hostkeys
    host_zmesh() {          #  docker run passes on only the environment it is told to
        timeout 60 docker run --rm -i --network host --user "$(id -u):$(id -g)" \
            -e ZMESH_BROKER -e ZMESH_CURVE_SECRET -e ZMESH_BROKER_KEY \
            -v "$scratch/keys:/hostkeys:ro" --entrypoint zmesh "$image" "$@"
    }
fi
say "host client: $host_what"
host() {                    #  host zmesh ARGS: the CLI, through the published port
    shift
    ZMESH_BROKER="tcp://127.0.0.1:$port" ZMESH_CURVE_SECRET="$keys/client.key_secret" \
        ZMESH_BROKER_KEY="$keys/broker.key" host_zmesh "$@"
}
reply=$(host zmesh call echo '{"from":"host"}')
[ "$reply" = '{"from":"host"}' ] || fail "host: echo replied '$reply'"
pass "host: zmesh call echo through 127.0.0.1:$port replies ($host_what)"
host zmesh status >/dev/null || fail "host: zmesh status"
pass "host: zmesh status answers"
s_pipeline 500 host || fail "pipeline from the host"
pass "host: 500 numbers through the stage come back squared"

step "kv replicas"
#  Succeeds when the broker shows the kv service with N current replicas.
kv_current() {
    local json
    json=$(status_json) || return 1
    /usr/bin/python3 -c '
import json, sys
sets = [r for r in json.loads(sys.argv[1]).get("replicated", []) if r["service"] == "kv"]
current = sum(1 for m in sets[0]["members"] if m["state"] == "current") if sets else 0
sys.exit(0 if current == int(sys.argv[2]) else 1)
' "$json" "$1"
}
#  kv_puts FROM TO: puts kFROM..kTO from the host with --write; fails unless each is acked.
kv_puts() {
    seq "$1" "$2" | sed 's/.*/{"op":"put","key":"k&","value":&}/' |
        host zmesh call kv --write --timeout 5000 >"$scratch/kv.out" || return 1
    [ "$(grep -c '^{"ok":true}$' "$scratch/kv.out")" -eq $(($2 - $1 + 1)) ]
}
wait_for 60 kv_current 3 || fail "the broker does not show 3 current kv replicas: $(status_json || true)"
pass "the broker shows the kv service with 3 current replicas"
kv_puts 1 50 || fail "50 puts: $(head -3 "$scratch/kv.out")"
pass "host: 50 puts to kv acknowledged (each applied by 2 of 3 replicas, fsync'ed)"
killed=$(cid kv-2)
docker kill "$killed" >/dev/null || fail "docker kill kv-2"
kv_puts 51 100 || fail "50 puts with kv-2 killed: $(head -3 "$scratch/kv.out")"
pass "kv-2 killed (SIGKILL): 50 more puts acknowledged by the other two"
seq 1 100 | sed 's/.*/{"op":"get","key":"k&"}/' |
    host zmesh call kv --quorum --timeout 5000 >"$scratch/kv.get" || fail "quorum reads"
/usr/bin/python3 -c '
import json, sys
lines = open(sys.argv[1]).read().split("\n")[:100]
bad = [i for i, line in enumerate(lines, 1) if json.loads(line) != {"found": True, "value": i}]
sys.exit("wrong or missing: %s" % bad[:5] if bad else 0)
' "$scratch/kv.get" || fail "an acknowledged put was not read back"
pass "all 100 acknowledged puts read back through the quorum (lost = 0)"
docker start "$killed" >/dev/null || fail "docker start kv-2"
wait_for 60 kv_current 3 || fail "kv-2 did not catch up: $(status_json || true)"
for i in $(seq 1 12); do echo '{"op":"digest"}'; done | host zmesh call kv >"$scratch/kv.digest" ||
    fail "digest reads"
digests=$(sort -u "$scratch/kv.digest")
[ "$(echo "$digests" | wc -l)" -eq 1 ] || fail "the replicas differ: $digests"
#  Plain reads go round the current replicas: each must have answered some of the 12, kv-2's
#  new session included, or the agreement above proves nothing about it.
answered=$(/usr/bin/python3 -c '
import json, sys
workers = json.loads(sys.argv[1])["workers"]
print(sum(1 for w in workers if w["service"] == "kv" and w["served"] > 0))
' "$(status_json)")
[ "$answered" -eq 3 ] || fail "only $answered of the 3 kv replicas answered the digest reads"
pass "kv-2 restarted from its volume, caught up: 12 digest reads, answered by all 3 replicas, agree ($digests)"

step "broker restart"
restart_at=$(date +%s%N)
compose restart broker >"$scratch/restart.log" 2>&1 || { cat "$scratch/restart.log" >&2; fail "compose restart broker"; }
say "broker restarted in $(s_elapsed "$restart_at") s; waiting for calls to succeed"
call_ok() { [ "$(host zmesh call echo '{"again":true}' --timeout 2000)" = '{"again":true}' ]; }
wait_for 60 call_ok || fail "no echo call succeeded within 60 s of the broker's restart"
pass "calls succeed again $(s_elapsed "$restart_at") s after the broker restart began"
wait_for 60 status_has echo 2 numbers 1 ||
    fail "the workers did not all come back: $(status_json || true)"
pass "both echo workers and the stage are back $(s_elapsed "$restart_at") s after the restart began"
s_pipeline 100 client || fail "pipeline after the broker restart"
pass "the pipeline runs again after the broker restart"
wait_for 30 broker_healthy || fail "the restarted broker is not healthy"
pass "the restarted broker is healthy"

step "init runs once"
key_before=$(timeout 60 docker run --rm -v "${project}_keys-client:/k:ro" --entrypoint cat "$image" /k/broker.key | md5sum)
compose run --rm --no-deps -T init >"$scratch/init.log" 2>&1 || { cat "$scratch/init.log"; fail "init again"; }
grep -q "nothing to do" "$scratch/init.log" || fail "init again: $(cat "$scratch/init.log")"
key_after=$(timeout 60 docker run --rm -v "${project}_keys-client:/k:ro" --entrypoint cat "$image" /k/broker.key | md5sum)
[ "$key_before" = "$key_after" ] || fail "init run again changed the keys"
pass "init run again keeps the keys"

step "compose down -v"
compose down -v --remove-orphans >"$scratch/down.log" 2>&1 || { cat "$scratch/down.log" >&2; fail "compose down -v"; }
stack_up=false
left=$(docker ps -a -q --filter "label=com.docker.compose.project=$project" | wc -l)
volumes=$(docker volume ls -q --filter "label=com.docker.compose.project=$project" | wc -l)
if [ "$left" -ne 0 ] || [ "$volumes" -ne 0 ]; then
    fail "after down -v: $left containers, $volumes volumes left"
fi
pass "compose down -v leaves no container and no volume"
step "done"

echo
echo "docker/test.sh: every check passed in $(s_elapsed "$started_at") s"
printf '  %s\n' "${report[@]}"
