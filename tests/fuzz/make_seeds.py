#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

A few valid and edge-case inputs per target, made here from scratch (the image
headers too), so that the corpus can be regenerated and reviewed. Seeds found by
fuzzing (the inputs of fixed bugs) are committed beside these, named
regression-*, and are not touched.

Usage: tests/fuzz/make_seeds.py   (needs the zstd program, see install-deps.sh)
"""

import gzip
import os
import struct
import subprocess
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
BOM = b"\xef\xbb\xbf"


def write(target, name, data):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3", "--check"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


# --- input_lines: 4 parameter bytes, then the file (see input_lines_fuzzer.cc) -----

TEXT, CSV, TSV, JSONL = 0, 1, 2, 3
AS_IS, GZIP, ZSTD = 0, 1, 2
LINK = 0x80


def input_seed(name, fmt, storage, content, max_line=0, piece=0, resume=0, link=False):
    params = bytes([fmt + 4 * storage + (LINK if link else 0), max_line, piece, resume])
    write("input_lines", name, params + content)


URLS = b"https://example.com/a.jpg\n  http://example.org/b.png\t\n\n" \
       b"https://example.net/c?x=1&y=2\r\nlast-without-newline"
CSV_TEXT = (b'url,caption,width\n'
            b'https://example.com/1.jpg,"a ""quoted"" caption",640\n'
            b'"https://example.com/2.jpg","two\nlines",480\n'
            b'\n'
            b',empty url,1\n'
            b'https://example.com/3.jpg,too,many,fields\n'
            b'https://example.com/4.jpg,"closed"then text,1\n'
            b'"https://example.com/5.jpg,unterminated\n')
TSV_TEXT = b"caption\turl\nfirst\thttps://example.com/1.jpg\n\t\nx\t\n"
JSONL_TEXT = (b'{"url": "https://example.com/1.jpg", "caption": "caf\\u00e9", "n": -1.5e3,'
              b' "tags": ["a", {"b": null}], "ok": true}\n'
              b'{"url":"https://example.com/\\ud83d\\ude00"}\n'
              b'{"url": 5}\n'
              b'{"caption": "no url"}\n'
              b'[1, 2]\n'
              b'{"url": "a", "url": "b"}\n'
              b'{"url": "\\u0000"}\n'
              b'not json\n')

input_seed("text", TEXT, AS_IS, URLS, piece=6, resume=2)
input_seed("text_bom_long_lines", TEXT, AS_IS,
           BOM + b"0123456789\nshort\n" + b"x" * 40 + b"\r\n" + b"y" * 12 + b"\r\n",
           max_line=10, piece=4, resume=1)
input_seed("text_binary", TEXT, AS_IS, b"ok\n\x00\x01\xff\xfe\n\xc3\x28\n\x7f\nend\n")
input_seed("text_gzip", TEXT, GZIP, URLS, piece=9, resume=128)
input_seed("text_zstd", TEXT, ZSTD, URLS * 3, piece=17, resume=4)
input_seed("text_raw_gzip_two_members", TEXT, AS_IS,
           gzip.compress(URLS, mtime=0) + gzip.compress(b"second\n", mtime=0), piece=3)
input_seed("text_raw_gzip_truncated", TEXT, AS_IS,
           gzip.compress(URLS * 4, mtime=0)[:-9], piece=5)
input_seed("text_raw_zstd", TEXT, AS_IS, zstd(URLS), piece=8)
input_seed("text_raw_zstd_corrupt", TEXT, AS_IS,
           zstd(URLS * 4)[:20] + b"\x00" * 8 + zstd(URLS * 4)[28:], piece=11)
input_seed("csv", CSV, AS_IS, CSV_TEXT, piece=7, resume=3)
input_seed("csv_gzip", CSV, GZIP, CSV_TEXT, max_line=40, piece=13, resume=100)
input_seed("csv_bad_header", CSV, AS_IS, b"link,url,link\nhttps://x,y,z\n")
input_seed("csv_link_column", CSV, ZSTD, b"\n\nid,link\n1,https://example.com/x\n",
           link=True, piece=2)
input_seed("tsv", TSV, AS_IS, TSV_TEXT, piece=5, resume=1)
input_seed("tsv_zstd", TSV, ZSTD, TSV_TEXT * 2, piece=31)
input_seed("jsonl", JSONL, AS_IS, JSONL_TEXT, piece=10, resume=5)
input_seed("jsonl_gzip", JSONL, GZIP, JSONL_TEXT, max_line=50, piece=21, resume=60)
input_seed("jsonl_link", JSONL, AS_IS, b'{"link": "https://example.com/x", "url": 1}\n',
           link=True)

# --- json_line: one line -------------------------------------------------------------

for i, line in enumerate([
        b'{"url": "https://example.com/1.jpg", "caption": "a cat"}',
        b'{"url":"https://example.com/2.jpg","n":12345678901234567890123,"f":-0.0e+1,'
        b'"b":[true,false,null],"o":{"k":{"k":[]}}}',
        b'  {"caption": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t",'
        b' "url": " https://example.com/3 "}  ',
        b'{"url": "https://example.com/4", "url": "again"}',
        b'{"url": ""}',
        b'{"url": "\\u0001"}',
        b'{"url": 1}',
        b'{"caption": "no url"}',
        b'["url", "https://example.com/5"]',
        b'"just a string"',
        b'{"url": "x", "deep": ' + b'[' * 70 + b']' * 70 + b'}',
        b'{"url": "x", "bad": 01}',
        b'{"url": "x", "lone": "\\udc00"}',
        b'{"url": "x",}',
        b'{}',
]):
    write("json_line", "line%02d" % i, line)

# --- line_text: one line -------------------------------------------------------------

for i, line in enumerate([
        b"https://example.com/a.jpg?x=1&y=2#frag",
        "caf\u00e9 \u65e5\u672c \U0001f600".encode(),
        b"tab\there and a \\ backslash",
        b"\x00\x01\x1f\x7f control",
        b"\xc0\xaf overlong slash",
        b"\xed\xa0\x80 surrogate",
        b"\xf4\x90\x80\x80 above U+10FFFF",
        b"\xe2\x82 cut",
        b"a" * 79 + "\u00e9".encode(),
        b"  \t  blanks around \t ",
        b"12345678\x80abcdefgh",
]):
    write("line_text", "line%02d" % i, line)

# --- image_header: the first bytes of image files ----------------------------------


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width, height, color_type, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + width * 3) * height)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat) +
            png_chunk(b"IEND", b""))


def jpeg(width, height, orientation=None):
    out = b"\xff\xd8"
    out += b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    if orientation is not None:
        # Exif, little-endian TIFF header, IFD0 with one entry: Orientation SHORT.
        tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
            struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
        payload = b"Exif\x00\x00" + tiff
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    out += b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + b"\x00" * 8 + b"\xff\xd9"
    return out


def gif(width, height):
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b"\x3b"


def riff(chunk_kind, chunk):
    body = b"WEBP" + chunk_kind + struct.pack("<I", len(chunk)) + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width, height):
    return riff(b"VP8 ", b"\x30\x01\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) +
                b"\x00" * 10)


def webp_lossless(width, height, alpha):
    bits = (width - 1) | ((height - 1) << 14) | ((1 if alpha else 0) << 28)
    return riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 4)


def webp_extended(width, height, alpha):
    flags = 0x10 if alpha else 0
    canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    return riff(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)


def bmp(width, height, core=False):
    if core:
        dib = struct.pack("<IHHHH", 12, width, height, 1, 24)
    else:
        dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\x00" * (((width * 3 + 3) // 4) * 4 * abs(height))
    offset = 14 + len(dib)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + pixels


def tiff(little):
    if little:
        return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + b"\x00" * 4
    return b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 0) + b"\x00" * 4


for name, data in [
        ("png_rgb", png(3, 2, 2)),
        ("png_rgba", png(2, 2, 6)),
        ("png_palette_trns", png(2, 1, 3, png_chunk(b"PLTE", b"\x00" * 3) +
                                 png_chunk(b"tRNS", b"\x00"))),
        ("png_huge", png(1, 1, 0)[:16] + struct.pack(">II", 100000, 100000) +
         png(1, 1, 0)[24:]),
        ("jpeg", jpeg(640, 480)),
        ("jpeg_exif_orientation_6", jpeg(4, 3, orientation=6)),
        ("jpeg_fill_bytes", b"\xff\xd8\xff\xff\xff" + jpeg(5, 7)[2:]),
        ("gif", gif(300, 200)),
        ("webp_lossy", webp_lossy(321, 123)),
        ("webp_lossless_alpha", webp_lossless(9, 7, True)),
        ("webp_extended", webp_extended(100000, 10, True)),
        ("bmp", bmp(3, 2)),
        ("bmp_top_down", bmp(2, -2)),
        ("bmp_core", bmp(2, 3, core=True)),
        ("tiff_little", tiff(True)),
        ("tiff_big", tiff(False)),
]:
    write("image_header", name, data)

# --- exif: image files with EXIF blocks ---------------------------------------------
# The oracle fixtures of the exif field (tests/fixtures/exif, made by its
# make_fixtures.py), which hold every container and field type.

EXIF_FIXTURES = os.path.join(os.path.dirname(ROOT), os.pardir, "fixtures", "exif")
for name in sorted(os.listdir(EXIF_FIXTURES)):
    if name.endswith((".jpg", ".png", ".webp", ".tiff")):
        with open(os.path.join(EXIF_FIXTURES, name), "rb") as f:
            write("exif", name, f.read())

# --- http_headers: header line, robot name, list ------------------------------------

for i, text in enumerate([
        b"X-Robots-Tag: noai, noimageai\nsluice\nnoai\nnoimageai\nnoindex",
        b"x-robots-tag: otherbot: noindex, nofollow\nsluice\nnoindex",
        b"X-Robots-Tag: SLUICE: none\nsluice\nnoindex\nnoimageindex",
        b"X-Robots-Tag: unavailable_after: 25 Jun 2010 15:00:00 PST, max-image-preview:"
        b" large, *: noimageai\nsluice\nnoimageai",
        b"Retry-After: 120",
        b"Retry-After:   Wed, 21 Oct 2015 07:28:00 GMT  ",
        b"Retry-After: Sun, 06 Nov 2094 08:49:37 GMT",
        b"Retry-After: 99999999999999999999999",
        b"Content-Type: Image/JPEG; charset=binary\n\nimage/\ntext/html",
        b"Content-Type: \t image/webp \t\n\nimage/webp",
        b"Content-Type: ;\n\n",
        b"HTTP/1.1 200 OK",
        b": no name",
        b"Bad Name: value",
]):
    write("http_headers", "header%02d" % i, text)

# --- pipeline_config: a pipeline file -----------------------------------------------

for i, text in enumerate([
        b"""name: example
description: every top-level key
group: main
batch_size: 500
lease_seconds: 30.5
in_flight_batches: 4
threads: 2
chunk_size: 64
grace_seconds: 0
allow_private_networks: true
input: {format: csv, url_column: link, max_line_bytes: 1024}
output: {layout: webdataset, dir: /tmp/out, image_field: encoded, metadata: false, stats: true}
stages:
  - {name: first, type: noop}
  - name: pause
    type: sleep
    ms: 5
    max_in_flight: 2000
  - {type: fail, fraction: 0.25, reason: timeout, seed: -7}
  - {name: p, type: probe, count: 3, ratio: 0.1, enabled: no, label: x, mode: slow,
     list: [a, b]}
""",
        b"name: minimal\nstages: [{type: noop}]\n",
        b"name: errors\nbatch_size: 0\nbogus: 1\ninput: {format: xml}\n"
        b"output: {layout: tar, image_field: ''}\n"
        b"stages:\n  - {type: sleep, ms: x}\n  - {type: sleep}\n  - {type: nope}\n"
        b"  - {name: a.b, type: noop}\n  - 5\n  - {name: only}\n",
        b"name: anchors\nbase: &base {type: probe, list: [x, y]}\n"
        b"stages:\n  - <<: *base\n    name: one\n  - {<<: *base, name: two, count: 1}\n",
        b"name: 'quoted: name'\nstages:\n- type: fail\n  reason: !!str injected\n"
        b"  fraction: .5e0\n  seed: 0x7fffffffffffffff\n",
        b"--- \nname: docs\nstages: [{type: noop}]\n...\n---\nname: second\n",
        b"[not, a, mapping]\n",
        b"name: bad yaml\nstages: [{type: noop\n",
]):
    write("pipeline_config", "pipeline%02d" % i, text)

# --- config_override: --set texts, one per line -------------------------------------

for i, text in enumerate([
        b"batch_size=250",
        b"stages.wait.ms=7\nstages.probe.list=[c, d]\ninput.url_column=link",
        b"stages.0.name=renamed\nstages.3.fraction=1",
        b"output.layout=none\noutput.metadata=false\nname=other",
        b"new.nested.key=1",
        b"stages.nope.ms=1\nstages.1=replace",
        b"batch_size={a: [1, 2]}\ninput=",
        b"=value\nno equals sign\n..=1",
        b"stages.probe.mode=fast\nstages.probe.count=&a 5\nthreads=0x10",
]):
    write("config_override", "set%02d" % i, text)

# --- record_codec: 1 byte of stream piece size, then encoded records ------------------
# The layout of src/core/record_codec.cc, each frame compressed by the zstd program
# from a file (so that the frame says its content size, as the codec requires).


def zstd_file(data):
    import tempfile
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(["zstd", "-q", "-c", "--fast=5", "--check", f.name],
                              stdout=subprocess.PIPE, check=True).stdout


def rc_str(b):
    return struct.pack("<I", len(b)) + b


def rc_record(item, url, columns=(), reason=0, error=b"", fields=()):
    out = struct.pack("<Q", item) + rc_str(url) + struct.pack("<I", len(columns))
    for name, text in columns:
        out += rc_str(name) + rc_str(text)
    out += bytes([reason]) + rc_str(error) + struct.pack("<I", len(fields))
    for name, tag, value in fields:
        out += rc_str(name) + bytes([tag]) + value
    return out


def rc_frame(records):
    raw = b"SLRC" + struct.pack("<II", 1, len(records)) + b"".join(records)
    return zstd_file(raw)


def image_v2(cols, rows, channels):
    header = struct.pack("<iiiqqB", cols, rows, channels, cols * 2, rows * 2, 0)
    return header + bytes((i * 7) % 256 for i in range(cols * rows * channels))


every_type = rc_record(7, b"http://example.com/a.jpg", [(b"caption", b"a cat")], 0, b"", [
    (b"flag", 1, b"\x01"), (b"count", 2, struct.pack("<q", -42)),
    (b"ratio", 3, struct.pack("<d", 0.3)), (b"text", 4, rc_str(b"caf\xc3\xa9")),
    (b"body", 5, rc_str(b"\x00\x01\xff")), (b"unset", 0, b""),
    (b"boxes", 7, rc_str(b"[[1,2,3,4]]")),
    (b"image", 6, rc_str(b"image-v2") + rc_str(image_v2(3, 2, 3)))])
failed = rc_record(8, b"http://example.com/b.jpg", [], 6, b"HTTP 404",
                   [(b"http_status", 2, struct.pack("<q", 404))])
gray = rc_record(9, b"u", [], 0, b"", [(b"image", 6, rc_str(b"image-v2") +
                                        rc_str(image_v2(5, 4, 1)))])
for i, (piece, data) in enumerate([
        (255, rc_frame([every_type, failed])),
        (0, rc_frame([every_type]) + rc_frame([failed, gray])),
        (16, rc_frame([])),
        (3, rc_frame([gray]) + rc_frame([every_type])),
]):
    write("record_codec", "records%02d" % i, bytes([piece]) + data)

print("seeds written under", ROOT)
