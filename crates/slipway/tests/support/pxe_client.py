#!/usr/bin/env python3
"""A PXE firmware's first steps, for tests: broadcast a DHCPDISCOVER with the PXE
options (60 PXEClient, 93 arch, 97 GUID), collect every OFFER for a while (a PXE
client merges an address OFFER with a ProxyDHCP OFFER), then send the ProxyDHCP
REQUEST to port 4011 of the server that offered boot information. Prints JSON.

    pxe_client.py MAC ARCH [WAIT_SECONDS]
"""
import json, random, socket, struct, sys, time

mac = bytes(int(b, 16) for b in sys.argv[1].split(":"))
arch = int(sys.argv[2])
wait = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
xid = random.getrandbits(32)

def packet(msg_type, ciaddr="0.0.0.0", extra=b""):
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                       socket.inet_aton(ciaddr), bytes(4), bytes(4), bytes(4),
                       mac + bytes(10), bytes(64), bytes(128))
    vc = b"PXEClient:Arch:%05d:UNDI:003016" % arch
    opts = bytes([53, 1, msg_type]) + bytes([60, len(vc)]) + vc
    opts += bytes([93, 2]) + struct.pack("!H", arch)
    opts += bytes([97, 17, 0]) + bytes(range(16)) + extra
    return head + bytes([99, 130, 83, 99]) + opts + bytes([255])

def parse(data):
    if len(data) < 240 or data[236:240] != bytes([99, 130, 83, 99]):
        return None
    yiaddr = socket.inet_ntoa(data[16:20])
    siaddr = socket.inet_ntoa(data[20:24])
    file_field = data[108:236].split(b"\0", 1)[0].decode(errors="replace")
    opts, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        opts[code] = data[i + 2:i + 2 + length]
        i += 2 + length
    return {
        "type": opts.get(53, b"\0")[0],
        "yiaddr": yiaddr,
        "siaddr": siaddr,
        "file": file_field,
        "bootfile": opts.get(67, b"").decode(errors="replace"),
        "server_id": socket.inet_ntoa(opts[54]) if 54 in opts else None,
        "vendor_class": opts.get(60, b"").decode(errors="replace"),
    }

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, 25, b"eth0")  # SO_BINDTODEVICE
s.bind(("0.0.0.0", 68))
s.settimeout(0.2)
offers = []
deadline = time.time() + wait
s.sendto(packet(1), ("255.255.255.255", 67))
while time.time() < deadline:
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        continue
    p = parse(data)
    if p and p["type"] == 2:
        p["from"] = src[0]
        offers.append(p)

ack = None
address = next((o["yiaddr"] for o in offers if o["yiaddr"] != "0.0.0.0"), None)
proxy = next((o for o in offers if o["yiaddr"] == "0.0.0.0" and o["server_id"]), None)
if proxy and address:
    # The client now has an address (a real one would configure it); ask the proxy on 4011.
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.setsockopt(socket.SOL_SOCKET, 25, b"eth0")
    q.bind(("0.0.0.0", 0))
    q.settimeout(3)
    q.sendto(packet(3, ciaddr=address, extra=bytes([54, 4]) + socket.inet_aton(proxy["server_id"])),
             (proxy["server_id"], 4011))
    try:
        data, src = q.recvfrom(2048)
        ack = parse(data)
    except socket.timeout:
        ack = None
print(json.dumps({"offers": offers, "proxy_ack": ack}))
