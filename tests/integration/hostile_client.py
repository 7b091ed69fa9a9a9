#!/usr/bin/env python3
"""hostile_client.py — a network tunnel client that holds a valid certificate and
speaks the framing of daemon/proto/tunnel_frame.h itself, to attack a hub
(test_network_hostile.sh).

    hostile_client.py HOST PORT CERT KEY ATTACK [ARG...]

It connects (TLS 1.3, the hub's certificate not checked: the attacker does not care),
reads the hub's CONFIG, does ATTACK, and prints one line per event:

    config ADDR...           the addresses the hub gave (after the CONFIG frame)
    refused REASON           the hub ended the connection before any CONFIG (REASON:
                             its REFUSED frame, else how it ended)
    replies N                keepalive replies read from the hub
    packets N                packets read from the hub
    echo-replies N           of those, ICMP echo replies (attack pings)
    end HOW SECONDS          how the hub ended the session (close_notify, alert ...,
                             eof: a FIN or a reset, which OpenSSL no longer tells
                             apart) and when, counted from the end of the attack
    hold-done                the hold ran out with the session still open

ATTACKs:
    send HEX [WAIT]          send the bytes (hex), then wait WAIT s (10) for the end
    cut HEX                  send the bytes, then close the TCP connection (no
                             close_notify)
    notify HEX [WAIT]        send the bytes, then close_notify; wait for the end
    slow HEX [WAIT]          send the bytes one a second, never answering; then wait
                             for the end
    silent WAIT              send nothing, never answer; wait for the end
    flood HEX COUNT HOLD     send the frame HEX COUNT times, as fast as the socket
                             takes them, then hold the session HOLD s (answering
                             keepalives)
    hold HOLD [HEX]          send HEX (default none), hold HOLD s answering keepalives
    pings HOLD SRC>DST...    send an ICMP echo request from SRC to DST (IPv4 or IPv6;
                             SRC "self" is the address the hub gave) for each, then
                             hold HOLD s, counting the echo replies that come back
    churn COUNT              COUNT connections, each closed after its CONFIG (every
                             other one cut without close_notify)
"""
import socket
import ssl
import struct
import sys
import time

PACKET, CONFIG, KEEPALIVE, REPLY, REFUSED = 0x01, 0x10, 0x11, 0x12, 0x80


def out(*words):
    print(*words, flush=True)


class Session:
    def __init__(self, host, port, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, int(port)), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        self.buf = b""
        self.replies = 0
        self.packets = 0
        self.echo_replies = 0
        self.refused = None
        self.ended = None
        self.config = None

    def _frames(self, answer):
        while len(self.buf) >= 3:
            ftype, length = self.buf[0], struct.unpack(">H", self.buf[1:3])[0]
            if len(self.buf) < 3 + length:
                return
            payload, self.buf = self.buf[3:3 + length], self.buf[3 + length:]
            if ftype == CONFIG:
                self.config = decode_config(payload)
            elif ftype == KEEPALIVE and answer:
                self.s.sendall(bytes([REPLY]) + struct.pack(">H", 8) + payload)
            elif ftype == REFUSED:
                self.refused = payload.decode(errors="replace")
            elif ftype == REPLY:
                self.replies += 1
            elif ftype == PACKET:
                self.packets += 1
                if (payload[0] >> 4 == 4 and payload[9] == 1 and payload[20] == 0) or \
                        (payload[0] >> 4 == 6 and payload[6] == 58 and payload[40] == 129):
                    self.echo_replies += 1

    def pump(self, seconds, answer=True):
        """Reads what the hub sends for SECONDS (answering its keepalives when
        ANSWER); returns False once the session ended (self.ended says how)."""
        deadline = time.monotonic() + seconds
        while self.ended is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.s.settimeout(min(left, 0.2))
            try:
                data = self.s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except ssl.SSLEOFError:
                self.ended = "eof"
                break
            except ssl.SSLError as e:
                self.ended = "alert " + (e.reason or str(e)).lower()
                break
            except (ConnectionResetError, BrokenPipeError):
                self.ended = "reset"
                break
            except OSError as e:
                self.ended = "error " + str(e)
                break
            if not data:
                self.ended = "close_notify"
                break
            self.buf += data
            self._frames(answer)
        return False

    def wait_config(self):
        deadline = time.monotonic() + 10
        while self.config is None and self.ended is None and time.monotonic() < deadline:
            self.pump(0.02)
        if self.config is None:
            out("refused", self.refused or self.ended or "no CONFIG within 10 s")
            return False
        out("config", *self.config)
        return True

    def send(self, data):
        try:
            self.s.settimeout(10)
            self.s.sendall(data)
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.ended = "reset"
        except ssl.SSLError as e:
            self.ended = "alert " + (e.reason or str(e)).lower()
        except OSError as e:
            self.ended = "error " + str(e)
        return False

    def wait_end(self, seconds, answer=True):
        start = time.monotonic()
        self.pump(seconds, answer)
        out("replies", self.replies)
        out("packets", self.packets)
        out("echo-replies", self.echo_replies)
        if self.ended is None:
            out("hold-done")
        else:
            out("end", self.ended, "%.1f" % (time.monotonic() - start))


def decode_config(p):
    n_addr = p[5]
    at = 7
    addrs = []
    for _ in range(n_addr):
        fam = p[at]
        size = 4 if fam == 4 else 16
        a = socket.inet_ntop(socket.AF_INET if fam == 4 else socket.AF_INET6, p[at + 1:at + 1 + size])
        addrs.append("%s/%d" % (a, p[at + 1 + size]))
        at += 2 + size
    return addrs


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return (~total) & 0xffff


def echo_request(src, dst, seq):
    """An ICMP (or ICMPv6) echo request from SRC to DST, checksums right."""
    body = struct.pack("!HH", 0x4b54, seq) + b"hostile-client-ping"
    if ":" in dst:
        s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
        icmp = struct.pack("!BBH", 128, 0, 0) + body
        pseudo = s6 + d6 + struct.pack("!IxxxB", len(icmp), 58)
        icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
        return struct.pack("!IHBB", 6 << 28, len(icmp), 58, 64) + s6 + d6 + icmp
    icmp = struct.pack("!BBH", 8, 0, 0) + body
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + icmp


def cut(sess):
    """Ends the TCP connection under the TLS session: FIN, no close_notify. What the
    hub sent meanwhile is read first, so that the kernel sends a FIN, not a reset."""
    sock = socket.socket(fileno=sess.s.detach())
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(0.2)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                break
        except socket.timeout:
            continue
        except OSError:
            break
    sock.close()


def main(argv):
    host, port, cert, key, attack = argv[1:6]
    args = argv[6:]
    if attack == "churn":
        for i in range(int(args[0])):
            sess = Session(host, port, cert, key)
            if not sess.wait_config():
                return 1
            if i % 2:
                cut(sess)
            else:
                # close_notify; the hub's may come after data it had in flight.
                sess.s.settimeout(5)
                try:
                    sess.s.unwrap()
                except (OSError, ssl.SSLError):
                    pass
                sess.s.close()
        return 0
    sess = Session(host, port, cert, key)
    if not sess.wait_config():
        return 1
    data = bytes.fromhex(args[0]) if args and attack not in ("silent", "hold", "pings") else b""
    if attack == "send":
        sess.send(data)
        sess.wait_end(float(args[1]) if len(args) > 1 else 10)
    elif attack == "cut":
        sess.send(data)
        time.sleep(0.2)
        cut(sess)
        out("cut")
    elif attack == "notify":
        sess.send(data)
        try:
            sess.s.settimeout(5)
            sess.s.unwrap()
            out("close_notify sent")
        except (OSError, ssl.SSLError) as e:
            out("close_notify failed", e)
        sess.s.close()
    elif attack == "slow":
        for i in range(len(data)):
            if not sess.send(data[i:i + 1]) or not sess.pump(1.0, answer=False):
                break
        sess.wait_end(float(args[1]) if len(args) > 1 else 10, answer=False)
    elif attack == "silent":
        sess.wait_end(float(args[0]), answer=False)
    elif attack == "flood":
        count, hold = int(args[1]), float(args[2])
        chunk = data * max(1, 16000 // len(data))
        sent = 0
        while sent < count and sess.ended is None:
            n = min(count - sent, len(chunk) // len(data))
            if not sess.send(chunk[:n * len(data)]):
                break
            sent += n
            sess.pump(0, True)
        out("sent", sent)
        sess.wait_end(hold)
    elif attack == "pings":
        own = sess.config[0].split("/")[0]
        for seq, spec in enumerate(args[1:], 1):
            src, dst = spec.split(">")
            packet = echo_request(own if src == "self" else src, dst, seq)
            sess.send(bytes([PACKET]) + struct.pack(">H", len(packet)) + packet)
        sess.wait_end(float(args[0]))
    elif attack == "hold":
        if len(args) > 1:
            sess.send(bytes.fromhex(args[1]))
        sess.wait_end(float(args[0]))
    else:
        out("unknown attack", attack)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
