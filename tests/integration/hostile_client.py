#!/usr/bin/env python3
"""hostile_client.py — a network tunnel client that holds a valid certificate and
speaks the framing of daemon/proto/tunnel_frame.h itself, to attack a hub
(test_network_hostile.sh).

    hostile_client.py HOST PORT CERT KEY ATTACK [ARG...]

It connects (TLS 1.3, the hub's certificate not checked: the attacker does not care),
reads the hub's CONFIG, does ATTACK, and prints one line per event:

    config ADDR...           the addresses the hub gave (after the CONFIG frame)
    refused REASON           the hub ended the connection before any CONFIG
    replies N                keepalive replies read from the hub
    packets N                packets read from the hub
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
    churn COUNT              COUNT connections, each closed after its CONFIG (every
                             other one cut without close_notify)
"""
import socket
import ssl
import struct
import sys
import time

PACKET, CONFIG, KEEPALIVE, REPLY = 0x01, 0x10, 0x11, 0x12


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
            elif ftype == REPLY:
                self.replies += 1
            elif ftype == PACKET:
                self.packets += 1

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
            self.pump(0.2)
        if self.config is None:
            out("refused", self.ended or "no CONFIG within 10 s")
            return False
        out("config", *self.config)
        return True

    def send(self, data):
        try:
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


def cut(sess):
    """Closes the TCP connection under the TLS session: FIN, no close_notify."""
    sock = socket.socket(fileno=sess.s.detach())
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
                sess.s.unwrap()
                sess.s.close()
        return 0
    sess = Session(host, port, cert, key)
    if not sess.wait_config():
        return 1
    data = bytes.fromhex(args[0]) if args and attack not in ("silent", "hold") else b""
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
