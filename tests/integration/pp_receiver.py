# pp_receiver.py PORT OUT — a PROXY protocol v2 consumer for the integration tests
# (test_proxy_protocol.sh, second_factor/test_proxy_user.sh): on 127.0.0.1:PORT it
# decodes the header of each connection into OUT, one "name=value" line per field
# (TLVs as 0xNN=value, PP2_TYPE_SSL's sub-TLVs as ssl_0xNN=value), then the first line
# of the stream as data=..., answers "ok" and closes; a connection without a header
# is "none first=LINE". Each connection's block ends with "--".
import socket, struct, sys
port, out = int(sys.argv[1]), sys.argv[2]
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(8)
def read(c, n):
    b = b""
    while len(b) < n:
        got = c.recv(n - len(b))
        if not got:
            raise EOFError
        b += got
    return b
def tlvs(data, lines, prefix):
    i = 0
    while i < len(data):
        t, l = data[i], struct.unpack(">H", data[i + 1:i + 3])[0]
        v = data[i + 3:i + 3 + l]
        if len(v) != l:
            lines.append("error=short tlv")
            return
        if t == 0x20:
            lines.append("ssl_client=%d" % v[0])
            lines.append("ssl_verify=%d" % struct.unpack(">I", v[1:5])[0])
            tlvs(v[5:], lines, "ssl_")
        else:
            lines.append("%s0x%02x=%s" % (prefix, t, v.decode()))
        i += 3 + l
while True:
    c, _ = s.accept()
    lines = []
    try:
        head = read(c, 1)
        if head != SIG[:1]:
            while not head.endswith(b"\n"):
                head += read(c, 1)
            lines.append("none first=%r" % head)
        else:
            head += read(c, 15)
            if head[:12] != SIG:
                raise EOFError
            lines.append("ver_cmd=0x%02x fam=0x%02x" % (head[12], head[13]))
            body = read(c, struct.unpack(">H", head[14:16])[0])
            if head[13] == 0x11:
                src, dst, sp, dp = body[0:4], body[4:8], body[8:10], body[10:12]
                lines.append("src=%s:%d" % (socket.inet_ntoa(src), struct.unpack(">H", sp)[0]))
                lines.append("dst=%s:%d" % (socket.inet_ntoa(dst), struct.unpack(">H", dp)[0]))
                tlvs(body[12:], lines, "")
            line = b""
            while not line.endswith(b"\n"):
                line += read(c, 1)
            lines.append("data=%s" % line.decode().strip())
        c.sendall(b"ok\n")
    except EOFError:
        lines.append("eof")
    c.close()
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n--\n")
