"""kvtool.py - a client of a replicated kv service speaking ZMP/1 itself (DEALER, CALL with the
write and quorum-read flags), for the replication shell tests. It sees the wire as a client
does, so it can do what a careful client must: choose random 63-bit request ids, keep one id
for all the resends of a write, and resend on a timeout, a lost broker, 502 or 503.

  write ENDPOINT --count N --acked FILE [--op put|cas] [--prefix P] [--window W]
        [--timeout-ms T] [--value-bytes B] [--progress FILE] [--gate FILE]
      N writes of new keys P000000.. with a window of W in flight; every write resent with
      the same request id until it is answered 200. Each acknowledged write goes to FILE as
      "key value". --op cas writes with expected nil, so a write applied twice would answer
      ok:false: the tool fails on that. --progress: a file that holds the count acknowledged
      so far; --gate: a file holding how many writes may be started so far (the tests hold the
      writer there to line their faults up with the writes).
  check ENDPOINT --acked FILE... [--exact] [--digest-reads K] [--window W]
      Reads every key of the FILEs back with quorum reads and compares the values; asks the
      digest K times with plain reads (one replica each, the broker takes them in turn) and
      once with a quorum read. --exact: the FILEs are the whole state, so the digest must be
      the SHA-1 of the state they describe, packed as the kv service packs it.
  retry ENDPOINT [--save FILE]
      Retries of writes with the same request id: applied once (see s_retry). --save: the
      writes with their ids and answers, and the keys' values after, for replay.
  replay ENDPOINT --save FILE
      Resends the saved writes with their ids: each must get its first answer again, and the
      keys keep their values.
  bad ENDPOINT
      Writes whose body is no kv request: each must get 500 with a reason.
Exit status 0 when everything matched, 1 on a mismatch, 2 on bad usage or a dead end."""
import argparse
import collections
import hashlib
import os
import random
import sys
import time

import msgpack
import zmq

ZM_CALL_WRITE = 4
ZM_CALL_QUORUM = 8
RETRY_STATUSES = (404, 408, 502, 503)


def fail(text):
    print("kvtool: FAIL: " + text, file=sys.stderr, flush=True)
    sys.exit(1)


def new_id():
    return random.getrandbits(63) or 1


class Client:
    """One DEALER connection; calls by request id, answers matched by id."""

    def __init__(self, endpoint, service, timeout_ms):
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.service = service
        self.timeout_ms = timeout_ms

    def send(self, request_id, flags, body, service=None):
        header = ["ZMP1", "CALL", request_id, service or self.service, self.timeout_ms, flags]
        self.socket.send_multipart([b"", msgpack.packb(header), body])

    def receive(self, wait_ms):
        """(request_id, status, body object) of the next REPLY, or None after wait_ms."""
        deadline = time.monotonic() + wait_ms / 1000.0
        while True:
            left = deadline - time.monotonic()
            if not self.socket.poll(max(0, int(left * 1000))):
                return None
            frames = self.socket.recv_multipart()
            if len(frames) < 2 or frames[0] != b"":
                fail("a message that is no ZMP/1 envelope: %r" % frames[:2])
            header = msgpack.unpackb(frames[1], raw=False)
            if header[:2] != ["ZMP1", "REPLY"] or len(frames) != 3:
                fail("unexpected message %r" % header)
            return header[2], header[3], msgpack.unpackb(frames[2], raw=False)

    def call(self, flags, request, request_id=None, attempts=20, service=None):
        """One call, resent with the same id after a timeout, 404, 408, 502 or 503 (a write
        stays exactly-once that way); returns (status, body, resends)."""
        request_id = request_id or new_id()
        body = msgpack.packb(request)
        for attempt in range(attempts):
            self.send(request_id, flags, body, service)
            deadline = time.monotonic() + self.timeout_ms / 1000.0 + 2.0
            while time.monotonic() < deadline:
                answer = self.receive(100)
                if answer is None or answer[0] != request_id:
                    continue                    # a late answer to an earlier call
                if answer[1] not in RETRY_STATUSES:
                    return answer[1], answer[2], attempt
                time.sleep(0.05)
                break
        fail("no answer to %r in %d attempts" % (request, attempts))

    def close(self):
        self.socket.close()


def write_file(path, text):
    with open(path + ".tmp", "w") as out:
        out.write(text)
    os.replace(path + ".tmp", path)


def read_gate(path, count):
    if not path:
        return count
    try:
        with open(path) as gate:
            return min(count, int(gate.read().strip() or 0))
    except (OSError, ValueError):
        return 0


def s_write(args):
    client = Client(args.endpoint, args.service, args.timeout_ms)
    resend_after = args.timeout_ms / 1000.0 + 1.0     # the broker answers 408 before this
    pending = {}                                      # request id -> [index, body, sent at]
    statuses = collections.Counter()
    acked = []
    next_index = resends = 0
    last_progress = 0.0
    started = time.monotonic()
    filler = "x" * max(0, args.value_bytes - 24)
    gate = last_gate = last_scan = 0.0
    while len(acked) < args.count:
        now = time.monotonic()
        if next_index >= gate and now - last_gate > 0.01:
            gate = read_gate(args.gate, args.count)
            last_gate = now
        while len(pending) < args.window and next_index < gate:
            key = "%s%06d" % (args.prefix, next_index)
            value = "v%d-%d%s" % (next_index, random.getrandbits(32), filler)
            if args.op == "put":
                request = {"op": "put", "key": key, "value": value}
            else:
                request = {"op": "cas", "key": key, "expected": None, "value": value}
            request_id = new_id()
            body = msgpack.packb(request)
            pending[request_id] = [key, value, body, time.monotonic()]
            client.send(request_id, ZM_CALL_WRITE, body)
            next_index += 1
        answer = client.receive(10)
        while answer is not None:
            now = time.monotonic()
            request_id, status, reply = answer
            entry = pending.get(request_id)
            if entry is not None:
                statuses[status] += 1
                key, value, body, _ = entry
                if status == 200:
                    want = {"ok": True, "value": value} if args.op == "cas" else {"ok": True}
                    if reply != want:
                        fail("%s of new key %s (request id %d) answered %r: applied twice?"
                             % (args.op, key, request_id, reply))
                    acked.append((key, value))
                    del pending[request_id]
                elif status in RETRY_STATUSES:
                    client.send(request_id, ZM_CALL_WRITE, body)
                    entry[3] = now
                    resends += 1
                else:
                    fail("write of %s answered %d %r" % (key, status, reply))
            answer = client.receive(0)
        now = time.monotonic()
        if now - last_scan > 0.1:
            last_scan = now
            for request_id, entry in pending.items():
                if now - entry[3] > resend_after:   # the broker lost it (restart)
                    client.send(request_id, ZM_CALL_WRITE, entry[2])
                    entry[3] = now
                    resends += 1
                    statuses["resent on silence"] += 1
        if args.progress and now - last_progress > 0.05:
            write_file(args.progress, str(len(acked)))
            last_progress = now
        if now - started > args.max_seconds:
            fail("%d of %d writes acknowledged after %d s" % (len(acked), args.count,
                                                             args.max_seconds))
    elapsed = time.monotonic() - started
    with open(args.acked, "w") as out:
        for key, value in acked:
            out.write("%s %s\n" % (key, value))
    if args.progress:
        write_file(args.progress, str(len(acked)))
    client.close()
    print("writer: %d writes (%s) acknowledged in %.1f s (%.0f/s), %d resends, answers %s"
          % (len(acked), args.op, elapsed, len(acked) / elapsed, resends,
             dict(sorted(statuses.items(), key=str))), flush=True)


def load_acked(paths):
    state = {}
    for path in paths:
        with open(path) as acked:
            for line in acked:
                key, value = line.rstrip("\n").split(" ", 1)
                state[key] = value
    return state


def expected_digest(state):
    """The kv service's digest of state: SHA-1 of one MessagePack map, keys in byte order."""
    ordered = {key: state[key] for key in sorted(state, key=lambda k: k.encode())}
    return hashlib.sha1(msgpack.packb(ordered, use_bin_type=True)).hexdigest()


def broker_status(client):
    status, reply, _ = client.call(0, None, service="zmesh.status")
    if status != 200:
        fail("zmesh.status answered %d %r" % (status, reply))
    return reply


def replica_set(client):
    for entry in broker_status(client).get("replicated", []):
        if entry["service"] == client.service:
            return entry
    fail("the broker has no replicated service %s" % client.service)


def served(client):
    """Requests answered so far by each worker of the service, by worker id."""
    return {worker["id"]: worker["served"] for worker in broker_status(client)["workers"]
            if worker["service"] == client.service}


def s_check(args):
    state = load_acked(args.acked)
    client = Client(args.endpoint, args.service, args.timeout_ms)
    keys = sorted(state)
    pending = {}
    missing, wrong = [], []
    index = resends = 0
    started = time.monotonic()
    while index < len(keys) or pending:
        while len(pending) < args.window and index < len(keys):
            request_id = new_id()
            body = msgpack.packb({"op": "get", "key": keys[index]})
            pending[request_id] = [keys[index], body, time.monotonic()]
            client.send(request_id, ZM_CALL_QUORUM, body)
            index += 1
        answer = client.receive(50)
        now = time.monotonic()
        if answer is not None and answer[0] in pending:
            request_id, status, reply = answer
            key, body, _ = pending[request_id]
            if status in RETRY_STATUSES:
                client.send(request_id, ZM_CALL_QUORUM, body)
                pending[request_id][2] = now
                resends += 1
                continue
            del pending[request_id]
            if status != 200:
                fail("quorum read of %s answered %d %r" % (key, status, reply))
            if not reply.get("found"):
                missing.append(key)
            elif reply.get("value") != state[key]:
                wrong.append((key, reply.get("value"), state[key]))
        for request_id, entry in pending.items():
            if now - entry[2] > args.timeout_ms / 1000.0 + 1.0:
                client.send(request_id, ZM_CALL_QUORUM, entry[1])
                entry[2] = now
                resends += 1
        if now - started > args.max_seconds:
            fail("reading back took more than %d s" % args.max_seconds)
    print("checker: %d acknowledged writes read back with quorum reads in %.1f s: "
          "lost = %d, wrong value = %d, resends %d"
          % (len(keys), time.monotonic() - started, len(missing), len(wrong), resends),
          flush=True)
    ok = not missing and not wrong
    for key in missing[:5]:
        print("checker: lost: %s" % key, file=sys.stderr)
    for key, got, want in wrong[:5]:
        print("checker: %s holds %r, acknowledged %r" % (key, got, want), file=sys.stderr)

    #  Digests: a plain read goes to one replica, which the broker's status tells (its
    #  "served" goes up by one), so each replica's digest is known by its id; a quorum read is
    #  answered by every live replica and the broker compares the answers (replica_divergence).
    members = replica_set(client)["members"]
    per_replica = collections.defaultdict(list)
    reads = 0
    while reads < max(args.digest_reads, 20 * len(members)):
        before = served(client)
        status, reply, _ = client.call(0, {"op": "digest"})
        if status != 200:
            fail("digest read answered %d %r" % (status, reply))
        after = served(client)
        reads += 1
        moved = [worker for worker in after if after[worker] != before.get(worker)]
        if len(moved) == 1:
            per_replica[moved[0]].append("%s keys=%d" % (reply["digest"], reply["keys"]))
        if reads >= args.digest_reads and all(m["id"] in per_replica for m in members):
            break
    status, reply, _ = client.call(ZM_CALL_QUORUM, {"op": "digest"})
    if status != 200:
        fail("quorum digest read answered %d %r" % (status, reply))
    quorum = "%s keys=%d" % (reply["digest"], reply["keys"])
    digests = set()
    for member in members:
        seen = per_replica.get(member["id"], [])
        digests.update(seen)
        print("checker: replica %s (%s, seq %d): %s" % (
            member["id"], member["state"], member["seq"],
            ", ".join("%s (x%d)" % item for item in collections.Counter(seen).items())
            or "no plain read reached it"), flush=True)
        if not seen:
            ok = False
    print("checker: %d plain digest reads, %d distinct digests; quorum read: %s"
          % (reads, len(digests), quorum), flush=True)
    if len(digests) != 1 or quorum not in digests:
        print("checker: replicas hold different states", file=sys.stderr)
        ok = False
    if args.exact:
        want = "%s keys=%d" % (expected_digest(state), len(state))
        print("checker: digest of the acknowledged writes: %s" % want, flush=True)
        if quorum != want:
            print("checker: the replicas' state is not the acknowledged writes",
                  file=sys.stderr)
            ok = False
    client.close()
    sys.exit(0 if ok else 1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))
    print("retry: %s: %r" % (what, got), flush=True)


def s_retry(args):
    """A write resent with its request id is answered as the first time and not applied
    again: after its answer, while it is in flight (from a second connection, which the
    broker sequences again), and after a later write changed the key."""
    one = Client(args.endpoint, args.service, args.timeout_ms)
    two = Client(args.endpoint, args.service, args.timeout_ms)
    tag = "%x" % random.getrandbits(32)
    writes = []                             # [request id, request, status, reply]
    plain_call = one.call

    def recorded_call(flags, request, request_id=None):
        request_id = request_id or new_id()
        answer = plain_call(flags, request, request_id)
        if flags == ZM_CALL_WRITE:
            writes.append([request_id, request, answer[0], answer[1]])
        return answer
    one.call = recorded_call
    ok_true = (200, {"ok": True})
    cas_first = (200, {"ok": True, "value": "first"})

    #  cas on an absent key, resent after its answer: applied again it would answer ok:false.
    key = "retry-a-" + tag
    request_id = new_id()
    status, reply, _ = one.call(ZM_CALL_WRITE, {"op": "cas", "key": key, "expected": None,
                                                "value": "first"}, request_id)
    expect("cas on a new key", (status, reply), cas_first)
    status, reply, _ = one.call(ZM_CALL_WRITE, {"op": "cas", "key": key, "expected": None,
                                                "value": "first"}, request_id)
    expect("the same cas id again, after its answer", (status, reply), cas_first)
    status, reply, _ = one.call(ZM_CALL_WRITE, {"op": "cas", "key": key, "expected": None,
                                                "value": "second"})
    expect("the same cas with a new id", (status, reply), (200, {"ok": False, "value": "first"}))
    status, reply, _ = one.call(ZM_CALL_QUORUM, {"op": "get", "key": key})
    expect("the key after the retries", (status, reply), (200, {"found": True, "value": "first"}))

    #  The same write from two connections at once: both are sequenced, one is applied.
    key = "retry-b-" + tag
    request_id = new_id()
    body = msgpack.packb({"op": "cas", "key": key, "expected": None, "value": "first"})
    one.send(request_id, ZM_CALL_WRITE, body)
    two.send(request_id, ZM_CALL_WRITE, body)
    for name, client in (("first connection", one), ("second connection", two)):
        answer = client.receive(args.timeout_ms + 2000)
        if answer is None:
            fail("no answer on the %s" % name)
        expect("cas sent twice at once, answer on the " + name, answer,
               (request_id,) + cas_first)
    status, reply, _ = one.call(ZM_CALL_QUORUM, {"op": "get", "key": key})
    expect("the key after the concurrent retry", (status, reply),
           (200, {"found": True, "value": "first"}))
    writes.append([request_id, msgpack.unpackb(body), 200, cas_first[1]])

    #  put, delete, then the put resent with its id: answered ok, not applied again.
    key = "retry-c-" + tag
    put_id = new_id()
    put = {"op": "put", "key": key, "value": "v1"}
    expect("put", one.call(ZM_CALL_WRITE, put, put_id)[:2], ok_true)
    expect("delete", one.call(ZM_CALL_WRITE, {"op": "delete", "key": key})[:2],
           (200, {"deleted": True}))
    expect("the put resent with its id", one.call(ZM_CALL_WRITE, put, put_id)[:2], ok_true)
    expect("the key after the resent put", one.call(ZM_CALL_QUORUM, {"op": "get", "key": key})[:2],
           (200, {"found": False}))
    expect("the key read plainly", one.call(0, {"op": "get", "key": key})[:2],
           (200, {"found": False}))
    expect("the put with a new id", one.call(ZM_CALL_WRITE, put)[:2], ok_true)
    expect("the key after it", one.call(ZM_CALL_QUORUM, {"op": "get", "key": key})[:2],
           (200, {"found": True, "value": "v1"}))
    one.close()
    two.close()
    keys = sorted({request["key"] for _, request, _, _ in writes})
    final = {}
    client = Client(args.endpoint, args.service, args.timeout_ms)
    for key in keys:
        final[key] = client.call(ZM_CALL_QUORUM, {"op": "get", "key": key})[1]
    client.close()
    if args.save:
        with open(args.save, "wb") as out:
            out.write(msgpack.packb({"writes": writes, "final": final}))
    print("retry: all retries answered as the first time and applied once (%d writes)"
          % len(writes), flush=True)


def s_replay(args):
    """Sends every write that retry saved again, with its request id: each must get its first
    answer and the keys must hold what they held."""
    with open(args.save, "rb") as saved:
        record = msgpack.unpackb(saved.read(), raw=False)
    client = Client(args.endpoint, args.service, args.timeout_ms)
    for request_id, request, status, reply in record["writes"]:
        answer = client.call(ZM_CALL_WRITE, request, request_id)[:2]
        if list(answer) != [status, reply]:
            fail("%r resent with id %d answered %r, first %r" % (request, request_id, answer,
                                                                 (status, reply)))
    for key, reply in sorted(record["final"].items()):
        answer = client.call(ZM_CALL_QUORUM, {"op": "get", "key": key})[1]
        if answer != reply:
            fail("%s holds %r after the resends, %r before" % (key, answer, reply))
    client.close()
    print("replay: %d writes resent with their ids: first answers, nothing applied again"
          % len(record["writes"]), flush=True)


def s_bad(args):
    """Writes that are no kv request get 500 and a reason; the service still works after."""
    client = Client(args.endpoint, args.service, args.timeout_ms)
    bodies = [
        ("an integer", 42),
        ("a string", "put k v"),
        ("a map without op", {"key": "k", "value": 1}),
        ("an unknown op", {"op": "frobnicate", "key": "k"}),
        ("a read sent as a write", {"op": "get", "key": "k"}),
        ("a digest sent as a write", {"op": "digest"}),
        ("an empty key", {"op": "put", "key": "", "value": 1}),
        ("a put without value", {"op": "put", "key": "k"}),
    ]
    for what, request in bodies:
        status, reply, _ = client.call(ZM_CALL_WRITE, request)
        if status != 500 or not isinstance(reply, str) or not reply:
            fail("%s as a write answered %d %r, want 500 with a reason" % (what, status, reply))
        print("bad: %s -> %d %r" % (what, status, reply), flush=True)
    status, reply, _ = client.call(0, {"op": "put", "key": "k", "value": 1})
    if status != 500:
        fail("a put sent as a plain read answered %d %r" % (status, reply))
    print("bad: a put sent as a plain read -> %d %r" % (status, reply), flush=True)
    status, reply, _ = client.call(ZM_CALL_WRITE, {"op": "put", "key": "after-bad", "value": 7})
    if (status, reply) != (200, {"ok": True}):
        fail("a good put after the bad ones answered %d %r" % (status, reply))
    status, reply, _ = client.call(ZM_CALL_QUORUM, {"op": "get", "key": "after-bad"})
    if (status, reply) != (200, {"found": True, "value": 7}):
        fail("reading it back answered %d %r" % (status, reply))
    print("bad: a good put and its quorum read after them: ok", flush=True)
    client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["write", "check", "retry", "replay", "bad"])
    parser.add_argument("endpoint")
    parser.add_argument("--service", default="kv")
    parser.add_argument("--timeout-ms", type=int, default=3000)
    parser.add_argument("--max-seconds", type=int, default=100)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--op", choices=["put", "cas"], default="put")
    parser.add_argument("--prefix", default="k")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--value-bytes", type=int, default=0)
    parser.add_argument("--acked", nargs="+")
    parser.add_argument("--progress")
    parser.add_argument("--gate")
    parser.add_argument("--exact", action="store_true")
    parser.add_argument("--save")
    parser.add_argument("--digest-reads", type=int, default=12)
    args = parser.parse_args()
    if args.mode in ("write", "check") and not args.acked:
        parser.error("%s needs --acked" % args.mode)
    if args.mode == "write":
        args.acked = args.acked[0]
    if args.mode == "replay" and not args.save:
        parser.error("replay needs --save")
    {"write": s_write, "check": s_check, "retry": s_retry, "replay": s_replay,
     "bad": s_bad}[args.mode](args)


if __name__ == "__main__":
    main()
