"""A tiny recursive-resolver stand-in on 127.0.0.1 for glbox's tests.

Prints the UDP port it listens on as the first line of stdout, then answers
until its standard input closes. Each query for an A record is answered
from the JSON file given as the first argument, read afresh for every query
so a test can "publish" a record while glbox waits:

    {"git.example.com": ["203.0.113.7"]}

A name the file does not list gets NXDOMAIN, as a resolver answers for a
name that does not exist yet (RFC 1035, section 4.1.1). Every query's name
is appended to the file named by the second argument, so a test can see
that glbox asked.
"""

import json
import socket
import struct
import sys
import threading


def question_name(message, at):
    labels = []
    while message[at] != 0:
        length = message[at]
        labels.append(message[at + 1 : at + 1 + length].decode("ascii"))
        at += 1 + length
    return ".".join(labels).lower(), at + 1


def answer(query, records_path):
    query_id, _flags, questions = struct.unpack("!HHH", query[:6])
    name, end = question_name(query, 12)
    qtype, _qclass = struct.unpack("!HH", query[end : end + 4])
    question = query[12 : end + 4]
    try:
        with open(records_path) as f:
            records = json.load(f)
    except (OSError, ValueError):
        records = {}
    addresses = records.get(name)
    # QR, RD and RA set; rcode 3 (NXDOMAIN) for an unknown name.
    flags = 0x8180 if addresses is not None else 0x8183
    answers = b""
    count = 0
    if addresses is not None and qtype == 1:
        for address in addresses:
            rdata = socket.inet_aton(address)
            # The name as a pointer to the question (offset 12).
            answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, len(rdata)) + rdata
            count += 1
    header = struct.pack("!HHHHHH", query_id, flags, questions, count, 0, 0)
    return header + question + answers, name


def main():
    records_path, log_path = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)

    def serve():
        while True:
            query, peer = sock.recvfrom(1500)
            reply, name = answer(query, records_path)
            with open(log_path, "a") as log:
                log.write(name + "\n")
            sock.sendto(reply, peer)

    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
