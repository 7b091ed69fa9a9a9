#!/usr/bin/env python3
"""web_client.py — one connection to a browser login page, as a browser would use it.

  web_client.py HOST PORT CERT KEY CA PATH STEP...

GETs PATH (unless PATH is "-": a connection that asks for nothing yet), then for each STEP posts to the form on the same connection: STEP is the
answer to the current prompt, "csrf=VALUE:ANSWER" sends VALUE as the form's token
instead of the page's; "get:PATH" GETs PATH instead, and "wait:FILE" waits until FILE
exists. Each response is printed as "=== STATUS", its headers, and its body.
Standard library only."""
import os
import time
import re
import socket
import ssl
import sys
import urllib.parse


def read_response(sock_file):
    status_line = sock_file.readline().decode("latin-1").rstrip("\r\n")
    if not status_line:
        return None
    headers = []
    length = None
    while True:
        line = sock_file.readline().decode("latin-1").rstrip("\r\n")
        if line == "":
            break
        headers.append(line)
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    body = sock_file.read(length) if length is not None else sock_file.read()
    return status_line, headers, body.decode("utf-8", "replace")


def show(response):
    status_line, headers, body = response
    print("=== " + status_line.split(" ", 2)[1])
    for header in headers:
        print(header)
    print()
    print(body, flush=True)


def main():
    host, port, cert, key, ca, path = sys.argv[1:7]
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock_file = sock.makefile("rb")
            response = None, [], ""
            if path != "-":
                sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
                response = read_response(sock_file)
                show(response)
            else:
                print("=== connected", flush=True)
            for step in sys.argv[7:]:
                if step.startswith("wait:"):
                    while not os.path.exists(step[5:]):
                        time.sleep(0.05)
                    continue
                if step.startswith("get:"):
                    sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % step[4:]).encode())
                    response = read_response(sock_file)
                    show(response)
                    continue
                match = re.search(r'name="csrf" value="([0-9a-f]*)"', response[2])
                token = match.group(1) if match else ""
                if step.startswith("csrf="):
                    token, _, step = step[5:].partition(":")
                body = urllib.parse.urlencode({"csrf": token, "answer": step}).encode()
                sock.sendall(b"POST /.ktlstun/login HTTP/1.1\r\nHost: localhost\r\n"
                             b"Content-Type: application/x-www-form-urlencoded\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
                response = read_response(sock_file)
                if response is None:
                    print("=== closed")
                    return
                show(response)


if __name__ == "__main__":
    main()
