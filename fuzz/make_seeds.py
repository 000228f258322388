#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/<target>/ (the regression-* files there are inputs that once broke
an invariant; they are kept as they are). Run from the repository root: python3 fuzz/make_seeds.py"""
import os
import re

corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')


def write(target, name, data):
    with open(os.path.join(corpus, target, name), 'wb') as f:
        f.write(data)


# ---- codec: the selector byte (the decoder, numbered as codec_fuzzer.cpp's switch) and a reply captured from
# etcd 3.4.23 (the fixtures of tests/unit/codec_test.cpp).
text = open(os.path.join(corpus, '..', '..', 'tests', 'unit', 'codec_test.cpp')).read()
text += open(os.path.join(corpus, '..', '..', 'tests', 'unit', 'txn_batch_test.cpp')).read()
fixtures = dict(re.findall(r'constexpr std::string_view (\w+)\s*=\s*(?://[^\n]*)?\s*R"\((.*?)\)";', text, re.S))


def codec(name, selector, body, prefix=b''):
    write('codec', name, bytes([selector]) + prefix + body.encode())


codec('range', 0, fixtures['captured_range_one'])
codec('put-prev-kv', 1, fixtures['captured_put_prev_kv'])
codec('delete-prev-kvs', 2, fixtures['captured_delete_prev_kvs'])
codec('txn-acquired', 3, fixtures['captured_txn_acquired'])
codec('txn-delete', 3, fixtures['captured_txn_delete'])
codec('txn-batch', 3, fixtures['captured_txn_batch'])
codec('lease-grant', 4, fixtures['captured_lease_grant'])
codec('keepalive', 5, '{"result":{"header":{"cluster_id":"11521007050457943832","member_id":"368659260856335979",'
      '"revision":"4","raft_term":"2"},"ID":"1234","TTL":"30"}}\n')
codec('time-to-live', 7, fixtures['captured_time_to_live_keys'])
codec('authenticate', 9, fixtures['captured_authenticate'])
codec('version', 10, fixtures['captured_version'])
codec('health', 11, fixtures['captured_health'])
codec('watch-events', 12, fixtures['captured_watch_events'])
codec('watch-update-prev-kv', 12, fixtures['captured_watch_update_prev_kv'])
codec('watch-compacted', 12, fixtures['captured_watch_compacted'])
codec('watch-permission-denied', 13, fixtures['captured_watch_permission_denied'])
codec('watch-member-stopping', 13, fixtures['captured_watch_member_stopping'])
codec('error-lease-not-found', 14, fixtures['captured_lease_not_found'], bytes([404 // 4, 404 % 4]))
codec('error-invalid-token', 14, fixtures['captured_invalid_token'], bytes([401 // 4, 401 % 4]))
codec('grpc-not-leader', 15, 'etcdserver: not leader', bytes([9]))


# ---- line_splitter: byte 0 -> max_line = 1 + b % 64; then chunks: a control byte (length = c % 32, lines to take
# after the feed = c // 32, 7 = all) and the chunk's bytes.
def splitter(name, max_line, stream, cuts, take=7):
    data = bytes([max_line - 1])
    i = k = 0
    while i < len(stream):
        n = min(cuts[k % len(cuts)], 31, len(stream) - i)
        data += bytes([take * 32 + n]) + stream[i:i + n]
        i += n
        k += 1
    write('line_splitter', name, data)


watch = (b'{"result":{"header":{"revision":"11"},"created":true}}\n'
         b'{"result":{"header":{"revision":"12"},"events":[{"kv":{"key":"bC8x"}}]}}\n')
splitter('watch-lines-31', 64, watch, [31])
splitter('watch-lines-7', 64, watch, [7, 3, 11])
splitter('crlf-split', 8, b'12345678\r\nabc\r\n\r\nxy\n', [9, 1, 4, 2])
splitter('crlf-together', 8, b'12345678\r\nabc\r\n', [10, 5])
splitter('empty-lines', 4, b'\n\n\r\nab\n\n', [1])
splitter('flood-no-newline', 16, b'x' * 80, [31])
splitter('line-at-bound', 5, b'abcde\nabcdef\n', [6, 7])
splitter('slow-consumer', 32, b'a\nbb\nccc\ndddd\n', [3, 3, 3, 3, 3], take=1)
splitter('cr-inside', 8, b'ab\rcd\r\r\n', [2, 2, 2, 2])
splitter('byte-at-a-time', 12, b'{"a":1}\r\n{"b":2}\n', [1])


# ---- lock_machine: FuzzedDataProvider takes integers from the END of the input, so the bytes are listed in the
# order the fuzzer consumes them (mode byte first, then operation codes and their arguments, as
# lock_machine_fuzzer.cpp's switches number them) and written reversed.
def machine(name, mode, ops):
    write('lock_machine', name, bytes(reversed([mode] + ops)))


PUT, DEL, TXN_PUT, TXN_DEL, EXPIRE, OPERATOR = 0, 1, 2, 3, 4, 5  # etcd changes
DELIVER, DELIVER_N, READ, REPLY, PROBE, PROBE_REPLY = 6, 7, 8, 9, 10, 11  # what the driver does
UNREACH, KEEPALIVE_GONE, COMPACT, RELEASE = 12, 13, 14, 15
acquire = [READ, REPLY, 0]
machine('world-acquire-alone', 0, acquire + [DELIVER])
machine('world-wait-then-handoff', 0, [PUT, 0, 1] + acquire + [DEL, 1, DELIVER_N, 3])
machine('world-observer', 2, [PUT, 0, 0, PUT, 1, 2, READ, REPLY, 0, DEL, 0, DELIVER_N, 4])
machine('world-unknown-then-probe', 0, acquire + [UNREACH, PROBE, PROBE_REPLY])
machine('world-compaction-reread', 0, [PUT, 2, 1] + acquire + [COMPACT, DEL, 0, DELIVER, READ, REPLY, 0, DELIVER])
machine('world-lease-expires', 0, acquire + [EXPIRE, 1, KEEPALIVE_GONE, DELIVER, READ, REPLY, 0, DELIVER])
machine('world-release', 0, [PUT, 3, 0] + acquire + [DEL, 1, DELIVER_N, 3, RELEASE])
machine('world-operator-recreates', 0, acquire + [DEL, 0, OPERATOR, 0, DELIVER_N, 3, READ, REPLY, 0])
machine('world-ties', 0, [TXN_PUT, 0, 1] + acquire + [TXN_DEL, 1, 2, DELIVER_N, 5])
machine('world-read-fails', 0, [READ, REPLY, 1, PUT, 0, 1, DELIVER, READ, REPLY, 0, DELIVER])
# free mode: on_snapshot(rev, n entries (name, identity, create, lease), my key), on_put, on_probe, ...
machine('free-mixed', 1, [0, 5, 2, 3, 1, 5, 0, 3, 1, 8, 0, 3, 1, 10, 1, 3, 2, 0, 9, 5, 4, 5, 10, 6, 7])
# read-write lock (mode bit 7 without bit 2; bit 6: we read): a PUT's value picks 1 etcdctl's empty, 3 a writer's, 7 a reader's.
# Our key l/100 sorts before l/a, so DEL 1 is l/a.
RW_WRITE, RW_READ = 128, 192
machine('rw-reader-behind-writer', RW_READ, [PUT, 0, 1, 3] + acquire + [DEL, 1, DELIVER_N, 3])
machine('rw-readers-share', RW_READ, [PUT, 0, 1, 7, PUT, 1, 2, 7] + acquire + [DELIVER_N, 3, PUT, 2, 3, 3, DELIVER])
machine('rw-writer-waits-for-readers', RW_WRITE,
        [PUT, 0, 1, 7, PUT, 1, 2, 7] + acquire + [DEL, 1, DELIVER, DEL, 1, DELIVER_N, 3, PROBE, PROBE_REPLY])
machine('rw-etcdctl-holds', RW_READ, [PUT, 0, 1, 1] + acquire + [UNREACH, DEL, 1, DELIVER_N, 3, PROBE, PROBE_REPLY])
machine('rw-free-mixed', RW_READ | 1, [0, 5, 2, 7, 3, 1, 5, 3, 0, 3, 1, 8, 0, 3, 1, 10, 1, 7, 3, 2, 0, 9, 5, 4, 5, 10, 6, 7])
# partial view (mode bit 6 alone: watch_scope::predecessor's machine, a plain lock that contends); op 16 is the
# driver's trust_watch_ahead(), op 17 flips whether the lease is proven. Our key l/100 sorts before l/a and l/b: DEL 1 is l/a, DEL 2 l/b. A read's reply
# takes a revision byte only when etcd moved on since the read began (none here), and one that says whether the watch
# tells of our key when the snapshot was not complete.
PARTIAL, TRUST, PROVEN = 64, 16, 17  # PROVEN: the lease's lifetime is proven no longer, or again
machine('partial-acquire-alone', PARTIAL, acquire + [DELIVER])
machine('partial-second-trusts-delete', PARTIAL, [PUT, 0, 1] + acquire + [TRUST, DEL, 1, DELIVER_N, 7])
machine('partial-delete-ahead-rereads', PARTIAL, [PUT, 0, 1] + acquire + [DEL, 1, DELIVER_N, 7, READ, REPLY, 0, DELIVER])
machine('partial-third-rereads-then-trusts', PARTIAL,
        [PUT, 0, 1, PUT, 1, 2] + acquire + [0, TRUST, DEL, 2, DELIVER_N, 7, READ, REPLY, 0, TRUST, DEL, 1, DELIVER_N, 7])
machine('partial-reset-no-trust', PARTIAL,
        [PUT, 0, 1] + acquire + [COMPACT, TRUST, DEL, 1, DELIVER_N, 7, READ, REPLY, 0, DELIVER_N, 7, PROBE, PROBE_REPLY])
machine('partial-turn-while-unproven', PARTIAL, [PUT, 0, 1] + acquire + [TRUST, PROVEN, DEL, 1, DELIVER_N, 7, PROBE,
                                                  PROBE_REPLY, PROVEN, PROBE, PROBE_REPLY])
