#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into corpus/<target>/.

Each seed is a small, valid (or nearly valid) input in the target's own input
format (see the comment at the top of each fuzz_<target>.c), so the fuzzers
start from deep states instead of rediscovering the protocol byte by byte.
Run it again after changing an input format; the files it writes are
committed. Standard library only.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# --- a minimal MessagePack packer (smallest encodings, as zm_pack's writer)
def pack(value):
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value <= 0x7F:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack(">b", value)
        if 0 <= value <= 0xFF:
            return b"\xcc" + struct.pack(">B", value)
        if 0 <= value <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", value)
        if 0 <= value <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", value)
        if value >= 0:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode()
        if len(data) < 32:
            return bytes([0xA0 | len(data)]) + data
        if len(data) <= 0xFF:
            return b"\xd9" + bytes([len(data)]) + data
        return b"\xda" + struct.pack(">H", len(data)) + data
    if isinstance(value, bytes):
        return b"\xc4" + bytes([len(value)]) + value
    if isinstance(value, list):
        if len(value) < 16:
            head = bytes([0x90 | len(value)])
        else:
            head = b"\xdc" + struct.pack(">H", len(value))
        return head + b"".join(pack(item) for item in value)
    if isinstance(value, dict):
        head = bytes([0x80 | len(value)])
        return head + b"".join(pack(k) + pack(v) for k, v in value.items())
    raise TypeError(value)


def header(*fields):
    return pack(["ZMP1", *fields])


# --- fuzz_proto: frames, each a 2-byte big-endian length and its bytes
def frames(*parts):
    return b"".join(struct.pack(">H", len(part)) + part for part in parts)


BODY = b"\x81\xa1x\x93\x01\x02\x03"                    # {"x": [1, 2, 3]}, ZMP.md 4.3
CALL_4_3 = bytes.fromhex("95a45a4d5031a443414c4c01a46563686fcd1388")

PROTO = {
    "call": frames(b"", CALL_4_3, BODY),
    "call-no-timeout": frames(b"", header("CALL", 2, "kv"), b"\xc0"),
    "reply": frames(b"", header("REPLY", 1, 200), pack("answer")),
    "ready": frames(b"", header("READY", "echo", 1, 1000, 3)),
    "ready-wide-ints": frames(b"", b"\x96\xa4ZMP1\xa5READY\xa4echo\xd0\x01\xcd\x03\xe8\xcf"
                              + struct.pack(">Q", 3)),
    "request": frames(b"", header("REQUEST", 7, "echo", 0), pack(None)),
    "heartbeat": frames(b"", header("HEARTBEAT")),
    "call-stream": frames(b"", header("CALL", 5, "files", 5000, 2, 16), BODY),
    "request-stream": frames(b"", header("REQUEST", 8, "files", 5000, 1, 16), BODY),
    "part": frames(b"", header("PART", 8, 1), b"\xc4\x03abc"),
    "credit": frames(b"", header("CREDIT", 8, 4)),
    "cancel": frames(b"", header("CANCEL", 8)),
    "disconnect": frames(b"", header("DISCONNECT", 200, "bye")),
    "other-version": frames(b"", pack(["ZMP2", "CALL", 1, "echo"]), BODY),
    "big-header": frames(b"", header("CALL", 3, "echo", 0, "x" * 600), BODY),
    "deep-body": frames(b"", header("CALL", 4, "echo"), b"\x91" * 40 + b"\xc0"),
    "progress": frames(b"", header("PROGRESS", 7, 1000)),
    # pipelines, ZMP.md section 16.2
    "push": frames(b"", header("PUSH", "numbers", 1, 0), pack(1)),
    "push-done": frames(b"", header("PUSH", "numbers", 2**64 - 1, 1), BODY),
    "push-bad-body": frames(b"", header("PUSH", "jobs", 3, 0), b"\x92\x01"),
    "push-endpoint": frames(header("PUSH", "numbers", 0, 0), pack("no delimiter")),
    "accept": frames(b"", header("ACCEPT", "numbers", 2)),
    "refuse": frames(b"", header("REFUSE", "numbers", 3, 503), pack("pipeline is full")),
    "resume": frames(b"", header("RESUME", "numbers", 256)),
    "done": frames(b"", header("DONE", "numbers", 2, 200)),
    "consume": frames(b"", header("CONSUME", "numbers", 10, 1000, 3)),
    "deliver": frames(b"", header("DELIVER", "numbers", 1, 2), pack(1)),
    "ack": frames(b"", header("ACK", 1, 2, 3)),
    "ack-48": frames(b"", header("ACK", *range(2**64 - 48, 2**64))),
    # replicated services, ZMP.md section 20
    "join": frames(b"", header("JOIN", "kv", 1000, 3, 3, 0, 1700000000000, 42)),
    "join-empty": frames(b"", header("JOIN", "kv", 100, 2, 16, 16, 0, 0)),
    "write": frames(b"", header("WRITE", 1700000000000, 43, 2**63 + 5, 0),
                    pack({"op": "put", "key": "a", "value": 1})),
    "write-quorum-read": frames(b"", header("WRITE", 5, 1, 9, 1), pack({"op": "get", "key": "a"})),
    "applied": frames(b"", header("APPLIED", 5, 1, 200), pack({"ok": True})),
    "missing": frames(b"", header("MISSING", 5, 0)),
    "sync": frames(b"", header("SYNC", 1)),
    "snapshot": frames(b"", header("SNAPSHOT", 1, 5, 9, 0, 1), pack(b"state bytes")),
    "snapshot-last": frames(b"", header("SNAPSHOT", 1, 5, 9, 1, 0), b"\xc6\x00\x00\x00\x01z"),
}


# --- fuzz_engine: two config bytes, then steps [op][peer][operands...]
def command(peer, kind, a=0, b=0, c=0, body=b""):
    kinds = {"CALL": 0, "READY": 1, "HEARTBEAT": 2, "DISCONNECT": 4, "REQUEST": 5, "REPLY": 6}
    return bytes([0, peer, kinds[kind], a, b, c]) + body


def fixint(value):
    return bytes([0, value])                            # body kind 0: one fixint


def answer(slot, status_byte, body):
    return bytes([3, 0, slot, status_byte]) + body      # REPLY to a ticket, from its holder


def clock(step):
    return bytes([5, 0, step])


def raw(peer, *parts):
    return bytes([4, peer, len(parts)]) + b"".join(bytes([len(p)]) + p for p in parts)


# Replication: [12][peer][kind][a][b][c], kind 0 JOIN, 2 APPLIED, 4 MISSING,
# 5 SNAPSHOT, 6 CALL (a: 0 write, 1 quorum read, 2 plain read; then a body)
def join(peer, b=0, c=0x40, a=2):                      # kv, 3 replicas, majority; 250 ms x 3
    return bytes([12, peer, 0, a, b, c])


def applied(peer, count=1, a=0x10, c=0):               # the next seq, 200, body 0
    return bytes([12, peer, 2, a, (count - 1) * 32, c])


def kv_call(peer, request_id, a=0, c=0):
    return bytes([12, peer, 6, a, request_id, c]) + fixint(request_id & 0x7F)


ENGINE = {
    # queue 4, services 4, bodies checked, grace 500 ms, 64 KiB bodies
    "rpc": b"\x4f\x00"
    + command(1, "READY", a=0, b=1, c=2)                # echo, 2 slots, 1000 ms x 2
    + command(0, "CALL", a=0, b=5, body=fixint(7))
    + answer(0, 0x80, fixint(9))                        # 200 from the holder
    + clock(4)
    + command(2, "CALL", a=3, b=9, body=fixint(1))      # zmesh.status
    + command(1, "HEARTBEAT")
    + command(1, "DISCONNECT"),
    "expiry": b"\x4f\x00"
    + command(1, "READY", a=1, b=0, c=2)                # kv, 1 slot, 1000 ms x 2
    + command(0, "CALL", a=1, b=1, c=3, body=fixint(1)) # 50 ms timeout: dispatched
    + command(0, "CALL", a=1, b=2, c=4, body=fixint(2)) # 100 ms timeout: queued
    + clock(4)                                          # both answered 408
    + answer(0, 0x81, fixint(3))                        # 500, late: dropped
    + clock(7) + clock(7),                              # the worker expires
    "no-worker": b"\x6f\x00"
    + command(3, "CALL", a=2, b=1, body=fixint(1))      # echo.2, nobody serves it
    + clock(6) + clock(7),
    "limits": b"\x80\x03"                               # 1 queued call, 256-byte bodies, depth 8
    + command(1, "READY", a=0, b=0, c=1)
    + command(0, "CALL", a=0, b=1, body=bytes([3, 2]))  # bin over the body limit
    + command(0, "CALL", a=0, b=2, body=bytes([2, 9]))  # nested past depth 8
    + command(0, "CALL", a=0, b=3, body=bytes([1, 2]) + b"\x92\x01")  # truncated array
    + command(2, "CALL", a=1, b=4, body=fixint(0))
    + command(2, "CALL", a=2, b=5, body=fixint(0)),     # one service too many
    "bad-worker": b"\x4f\x00"
    + command(1, "READY", a=0, b=2, c=0)
    + command(1, "CALL", a=0, b=1, body=fixint(1))      # a worker may not CALL
    + command(2, "READY", a=4, b=0, c=0)                # zmesh.* is reserved
    + command(3, "REQUEST", a=0, b=1, body=fixint(1))
    + command(3, "REPLY", a=0, b=1, body=fixint(1)),    # not registered
    "raw": b"\x4f\x00"
    + raw(0, b"", CALL_4_3, BODY)
    + raw(1, b"", pack(["ZMP9", "READY"]))
    + raw(2, b"x", b"", b"")
    + raw(3),
    "send-failed": b"\x4f\x00"
    + command(1, "READY", a=0, b=0, c=0)
    + command(0, "CALL", a=0, b=1, body=fixint(1))
    + bytes([10, 1, 0])                                 # worker unreachable
    + bytes([10, 0, 1]),                                # client queue full
    # replicas 1 and 2 start kv; a write and a quorum read answered after
    # two APPLIED; replica 3 joins where the set stands; a plain read
    "repl-write": b"\x4f\x00"
    + join(1) + join(2)
    + kv_call(0, 5)
    + applied(1) + applied(2, c=1)                      # bodies differ: divergence
    + join(3, b=1)
    + kv_call(0, 6, a=1)
    + applied(1) + applied(2) + applied(3)
    + kv_call(0, 7, a=2)
    + answer(0, 0x80, fixint(9))
    + clock(4),
    # replica 2 joins with a newer epoch: replica 1 gets its snapshot, in
    # two chunks, then the write sequenced meanwhile
    "repl-snapshot": b"\x4f\x00"
    + join(1) + join(2, b=5, c=0x46)
    + kv_call(0, 9, c=5)
    + bytes([12, 2, 5, 0x80, 0, 0x30])                  # chunk 0 of the SYNC's token, more
    + bytes([12, 2, 5, 0x80, 0, 0x01])                  # chunk 1, the last
    + applied(2) + applied(1)
    + clock(7),
    # writes, then replica 1 says it misses the last two; then replica 2
    # leaves: with replica 1 catching up the set stops, and both join again
    "repl-missing": b"\x4f\x00"
    + join(1) + join(2)
    + kv_call(0, 1) + kv_call(0, 2) + kv_call(0, 3)
    + applied(1, count=3) + applied(2, count=3)
    + bytes([12, 1, 4, 0, 0, 2])                        # MISSING(epoch, applied - 2)
    + command(2, "DISCONNECT")
    + join(1, b=5, c=0x44) + join(2, b=6, c=0x45)        # (1001, 2) and (1, 1): epoch 1002
    + kv_call(3, 4)
    + command(2, "DISCONNECT") + command(1, "DISCONNECT"),  # the write answered 502
}


# --- fuzz_pack: a depth byte, then one object
OBJECT = {"int": [0, 127, 128, -1, -33, 65535, 2**32, -(2**40)], "f": 0.5, "s": "é",
          "b": b"\x00\x01", "t": True, "n": None, "m": {1: [2.5, False]}}
PACK = {
    "body": b"\x00" + BODY,
    "header": b"\x00" + CALL_4_3,
    "types": b"\x00" + pack(OBJECT),
    "ext-and-wide": b"\x00" + b"\x93\xd4\x01\x02\xc7\x03\x05abc\xdd\x00\x00\x00\x01\xda\x00\x01z",
    "depth-limit": b"\x03" + b"\x91\x91\x91\xc0",
    "depth-over": b"\x03" + b"\x91\x91\x91\x90",
    "default-deep": b"\xf0" + b"\x91" * 64 + b"\xc0",
    "lying-count": b"\x00" + b"\xdd\xff\xff\xff\xff\xc0",
}


# --- fuzz_json: the same bytes are read as MessagePack and as JSON text
JSON = {
    "msgpack-map": pack({"x": [1, 2, 3], "s": "a\x00b", "r": 0.1, "n": None}),
    "msgpack-oneway": b"\x84\xc4\x01\x00\xd5\x05ab\x01\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
                      b"\x91\x01\xca\x3f\xc0\x00\x00\x92\x01\x02\xc3",
    "msgpack-bad-utf8": b"\xa2\xc3\x28",
    "text-object": b'{"x":[1,2,3],"s":"a\\u0000b","r":0.1,"big":-9223372036854775808,"t":true}',
    "text-scalars": b' [1.0, 1e20, -0.0, "\\ud83d\\ude00", null, false] ',
    "text-dollar": b'{"$bin":"AAE=","$ext":5}',
    "text-too-deep": b"[" * 65 + b"]" * 65,
    "msgpack-bin-at-limit": b"\x91" * 64 + b"\xc4\x01\x00",   # one-way: {"$bin"} is a level deeper
    "msgpack-nul-key": b"\x81\xa2a\x00\x01",                  # one-way: jansson refuses the key
}


# --- fuzz_replica: mode byte, then a kv request, a snapshot or a file
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def record_crc(seq, body):
    return crc32c(struct.pack("<QQ", seq, len(body)) + body)


def bin_(data):
    return b"\xc4" + bytes([len(data)]) + data


def kv_put(key, value):
    return pack({"op": "put", "key": key, "value": value})


def log_record(seq, epoch, write_id, body):
    data = b"\x94" + pack(epoch) + b"\x00" + pack(write_id) + bin_(body)
    return struct.pack("<IIQ", len(data), record_crc(seq, data), seq) + data


KV_STATE = pack({"a": 1, "b": [1, 2]})
REPLICA_SNAPSHOT = (b"\x95" + pack("zmreplica1") + pack(3) + pack(7) + bin_(KV_STATE)
                    + b"\x91\x94" + pack(42) + pack(7) + pack(0) + bin_(pack({"ok": True})))

REPLICA = {
    "write-put": b"\x00" + kv_put("k", {"x": [1, 2]}),
    "write-cas": b"\x00" + pack({"op": "cas", "key": "a", "expected": 1, "value": 2}),
    "write-delete": b"\x00" + pack({"op": "delete", "key": "b"}),
    "read-get": b"\x01" + pack({"op": "get", "key": "a"}),
    "read-digest": b"\x01" + pack({"op": "digest"}),
    "read-put": b"\x01" + kv_put("k", 1),
    "restore-state": b"\x02" + KV_STATE,
    "install-snapshot": b"\x03" + REPLICA_SNAPSHOT,
    "file-log": b"\x04\x01" + b"".join(log_record(i, 1, 100 + i, kv_put("k%d" % i, i))
                                      for i in range(1, 4)),
    "file-snapshot": b"\x05\x01" + struct.pack("<QQI", 7, len(REPLICA_SNAPSHOT),
                                              record_crc(7, REPLICA_SNAPSHOT)) + REPLICA_SNAPSHOT,
}


def write(target, seeds):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    for name, data in seeds.items():
        with open(os.path.join(folder, name), "wb") as out:
            out.write(data)


def main():
    write("proto", PROTO)
    write("engine", ENGINE)
    write("pack", PACK)
    write("json", JSON)
    write("replica", REPLICA)
    return 0


if __name__ == "__main__":
    sys.exit(main())
