#!/usr/bin/env python3
"""Seeds tests/fuzz/corpus/<target>/ from the table tests' inputs.

Each target's seeds are the string literals of the unit tests of the same parser (adjacent
literals joined, C escapes decoded), put in the shape that target reads (see the comment
at the top of each tests/fuzz/*_fuzz.cc), plus a few hand-made inputs where the tests
build theirs in code (mux packets). File names are the SHA-1 of the contents, as libFuzzer
names what it finds, so re-running adds nothing twice. Run from anywhere:
    tests/fuzz/seed_corpus.py
"""
import hashlib
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "tests" / "unit"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"

LITERAL = re.compile(r'R"(?P<delim>[^(\s]*)\((?P<raw>.*?)\)(?P=delim)"|"(?P<cooked>(?:[^"\\\n]|\\.)*)"',
                     re.S)


def unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        i += 1
        e = body[i]
        simple = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'",
                  "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v", "?": b"?"}
        if e in simple:
            out += simple[e]
            i += 1
        elif e == "x":
            j = i + 1
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(body[i + 1:j], 16) & 0xFF)
            i = j
        elif e in "01234567":
            j = i
            while j < len(body) and j < i + 3 and body[j] in "01234567":
                j += 1
            out.append(int(body[i:j], 8) & 0xFF)
            i = j
        else:  # \u and the rest: keep as written
            out += ("\\" + e).encode()
            i += 1
    return bytes(out)


def literals(*files):
    """The string literals of `files`; adjacent ones ("a" "b") are one."""
    seeds = []
    for name in files:
        text = (UNIT / name).read_text(errors="replace")
        # Drop comments, so an apostrophe or quote in one cannot start a literal.
        text = re.sub(r"//[^\n]*", "", text)
        last_end, current = None, None
        for m in LITERAL.finditer(text):
            value = m.group("raw").encode() if m.group("raw") is not None else unescape(
                m.group("cooked"))
            between = text[last_end:m.start()] if last_end is not None else None
            if current is not None and between is not None and between.strip() == "":
                current += value
            else:
                if current is not None:
                    seeds.append(current)
                current = value
            last_end = m.end()
        if current is not None:
            seeds.append(current)
    return [s for s in seeds if len(s) >= 2 and not s.startswith(b"#include")]


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def sstr(b):
    return u32(len(b)) + b


def packet(payload):
    return sstr(payload)


HELLO = u32(1) + u32(4)
MUX_PAYLOADS = [
    HELLO,
    HELLO + sstr(b"ext") + sstr(b"value"),
    u32(0x10000002) + u32(2) + sstr(b"") + u32(0) * 4 + u32(0xFFFFFFFF) + sstr(b"xterm") +
    sstr(b"nvidia-smi") + sstr(b"LANG=C.UTF-8"),
    u32(0x10000002) + u32(3) + sstr(b"") + u32(1) + u32(0) * 3 + u32(0x7E) + sstr(b"xterm-256color") +
    sstr(b""),
    u32(0x10000002) + u32(4) + sstr(b"") + u32(0) * 3 + u32(1) + u32(0xFFFFFFFF) + sstr(b"") +
    sstr(b"sftp"),
    u32(0x10000004) + u32(5),
    u32(0x10000005) + u32(6),
    u32(0x10000006) + u32(7) + u32(1) + sstr(b"LOCALHOST") + u32(8000) + sstr(b"localhost") +
    u32(8000),
    u32(0x10000006) + u32(8) + u32(2) + sstr(b"") + u32(0) + sstr(b"localhost") + u32(3000),
    u32(0x10000006) + u32(9) + u32(3) + sstr(b"127.0.0.1") + u32(1080) + sstr(b"") + u32(0),
    u32(0x10000006) + u32(10) + u32(1) + sstr(b"/tmp/l.sock") + u32(0xFFFFFFFE) +
    sstr(b"/run/r.sock") + u32(0xFFFFFFFE),
    u32(0x10000007) + u32(11) + u32(1) + sstr(b"LOCALHOST") + u32(8000) + sstr(b"localhost") +
    u32(8000),
    u32(0x10000008) + u32(12) + sstr(b"") + sstr(b"localhost") + u32(22),
    u32(0x10000008) + u32(13) + sstr(b"") + sstr(b"/run/x.sock") + u32(0xFFFFFFFE),
    u32(0x10000009) + u32(14),
    u32(0x1000000F) + u32(15),
    u32(0x20000001) + u32(16),
    u32(0x80000001) + u32(17),
    u32(0x80000003) + u32(18) + sstr(b"no"),
    u32(0x80000005) + u32(19) + u32(4242),
]


def mux_server_seeds():
    """flags, where the descriptors go, then what the client writes."""
    seeds = []
    session = MUX_PAYLOADS[2]
    stdio = MUX_PAYLOADS[12]
    # hello (sent by the harness: flag 4), then each request alone, without descriptors.
    for p in MUX_PAYLOADS[1:]:
        seeds.append(bytes([4, 255]) + packet(p))
    # A session with its three descriptors after the request, as ssh sends it; half-closed
    # too; descriptors before the request; a stdio forward with its two.
    seeds.append(bytes([4 | 3, 255]) + packet(session))
    seeds.append(bytes([4 | 8 | 3, 255]) + packet(session))
    seeds.append(bytes([4 | 3, 0]) + packet(session))
    seeds.append(bytes([4 | 2, 255]) + packet(stdio))
    # A session still running when its client goes (the daemon must end it).
    sleeper = (u32(0x10000002) + u32(20) + sstr(b"") + u32(0) * 4 + u32(0xFFFFFFFF) +
               sstr(b"") + sstr(b"sleep 60"))
    seeds.append(bytes([4 | 3, 255]) + packet(sleeper))
    seeds.append(bytes([4 | 8 | 3, 255]) + packet(sleeper))
    # Two sessions on one client; one request then an alive check.
    seeds.append(bytes([4 | 3, 128]) + packet(session) + packet(session))
    seeds.append(bytes([4, 255]) + packet(MUX_PAYLOADS[5]) + packet(session))
    # The client's own hello, no help from the harness; a request before hello; a huge length.
    seeds.append(bytes([0, 255]) + packet(HELLO) + packet(MUX_PAYLOADS[5]))
    seeds.append(bytes([0, 255]) + packet(MUX_PAYLOADS[5]))
    seeds.append(bytes([4, 255]) + u32(0x7FFFFFFF) + b"x")
    seeds.append(bytes([4 | 8, 255]) + packet(u32(1) + u32(3)))
    return seeds


def nvidia_seeds():
    data = UNIT / "agent" / "testdata"
    seeds = []
    smi = data / "nvidia_smi"
    for gpus in sorted(smi.glob("*.gpus.csv")):
        apps = gpus.with_name(gpus.name.replace(".gpus.", ".apps."))
        seeds.append(gpus.read_bytes() + b"\0" + (apps.read_bytes() if apps.exists() else b""))
    for txt in sorted(smi.glob("*.txt")):
        seeds.append(txt.read_bytes())
    for f in sorted((data / "proc").rglob("*")):
        if f.is_file():
            seeds.append(f.read_bytes())
    return seeds


def control_seeds():
    seeds = [s for s in literals("control/control_server_test.cc",
                                 "daemon/host_daemon_control_test.cc") if b"{" in s or b"[" in s]
    seeds += [
        b'{"cmd":"status"}', b'{"cmd":"ping"}', b'{"cmd":"env"}',
        b'{"cmd":"forward","kind":"local","spec":"127.0.0.1:0:localhost:80"}',
        b'{"cmd":"forward","kind":"dynamic","spec":"127.0.0.1:0"}',
        b'{"cmd":"forward","kind":"remote","spec":"9000:localhost:3000"}',
        b'{"cmd":"forward","kind":"local","spec":"l.sock:localhost:80"}',
        b'{"cmd":"cancel","spec":"9000"}',
        b'{"cmd":"cancel","kind":"remote","spec":"9000:localhost:3000"}',
        b'{"cmd":"proxy","port":10808,"open":false,"upstream":"socks5://127.0.0.1:7890"}',
        b'{"cmd":"proxy","port":10809,"open":true}',
        b'{"cmd":"proxy","upstream":"http://user:pw@127.0.0.1:3128"}',
    ]
    return seeds


def targets():
    proxy = literals("proxy/handshake_test.cc")
    return {
        "control_line": control_seeds(),
        "forward_spec": literals("config/forward_spec_test.cc"),
        "http_proxy": literals("proxy/http_proxy_test.cc"),
        "socks": literals("proxy/socks_test.cc", "proxy/sniff_test.cc"),
        "proxy_handshake": [bytes([c]) + s for s in proxy for c in (0, 1)],
        "upstream": literals("proxy/upstream_test.cc"),
        "ssh_config": [b"gpu\n" + s for s in literals("config/ssh_config_test.cc")
                       if b"Host" in s or b"Match" in s] +
                      [s for s in literals("config/ssh_config_test.cc") if b"\n" not in s][:40],
        "mux_codec": MUX_PAYLOADS + [b"".join(packet(p) for p in MUX_PAYLOADS[:6])],
        "mux_server": mux_server_seeds(),
        "nvidia_smi": nvidia_seeds(),
        "http_request": [s for s in literals("agent/http_request_test.cc",
                                             "agent/server_test.cc") if b"HTTP" in s],
    }


def main():
    for target, seeds in targets().items():
        out = CORPUS / target
        out.mkdir(parents=True, exist_ok=True)
        written = 0
        for seed in seeds:
            path = out / hashlib.sha1(seed).hexdigest()
            if not path.exists():
                path.write_bytes(seed)
                written += 1
        print(f"{target}: {len(seeds)} seeds, {written} new, {len(list(out.iterdir()))} files")


if __name__ == "__main__":
    main()
