#!/usr/bin/env python3
"""An exec stage in Python, standard library only (docs/exec.md).

sluice starts this script once per worker thread and keeps it running. It reads one
JSON request per line on stdin and answers each with one JSON line on stdout, in
order:

    request: {"id": 7, "url": "https://example.com/a.jpg", "caption": "...",
              "bytes_path": "/tmp/sluice-exec-Ab12Cd/7-0"}
    reply:   {"id": 7, "host": "example.com", "body_bytes": 48213, "kind": "jpeg"}
    or:      {"id": 7, "error": "why this record failed"}

The bytes come as a file path ("bytes_path", read it before answering: it is
removed once the reply is in) or inline ("bytes_base64"), as the pipeline's
`bytes_as` says. Anything written on stderr goes to sluice's log.

Copy it, keep the loop, and replace describe() with your own code.
"""
import base64
import json
import sys
import urllib.parse

# The first bytes of the image formats sluice knows, and their names.
MAGIC = [
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
]


def read_bytes(request):
    """The record's bytes, however they were sent; None if none were."""
    if "bytes_path" in request:
        with open(request["bytes_path"], "rb") as f:
            return f.read()
    if "bytes_base64" in request:
        return base64.b64decode(request["bytes_base64"])
    return None


def kind_of(data):
    for magic, name in MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "other"


def describe(request):
    """The fields this stage writes for one record (the pipeline's `writes`)."""
    url = urllib.parse.urlsplit(request.get("url", ""))
    if not url.hostname:
        raise ValueError(f"no host in url {request.get('url')!r}")
    reply = {"host": url.hostname}
    caption = request.get("caption")
    if caption is not None:
        reply["caption_words"] = len(caption.split())
    data = read_bytes(request)
    if data is not None:
        reply["body_bytes"] = len(data)
        reply["kind"] = kind_of(data)
    return reply


def main():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = describe(request)
        except Exception as e:  # one bad record fails alone, the script goes on
            reply = {"error": f"{type(e).__name__}: {e}"}
        reply["id"] = request["id"]
        sys.stdout.write(json.dumps(reply) + "\n")
        # Each reply is flushed at once: sluice is waiting for it.
        sys.stdout.flush()


if __name__ == "__main__":
    main()
