#!/usr/bin/python3
"""The comparison program of bench/images_bench.sh: img2dataset's download loop.

It does what img2dataset's downloader does for each shard of URLs, without the
library: a thread pool downloads (urllib), and the process decodes, resizes to
SIZE (keep ratio, then a white border to SIZE x SIZE: img2dataset's "border" mode,
cv2.INTER_AREA down), encodes JPEG at quality 95 one image at a time, and writes a
WebDataset tar shard (KEY.jpg + KEY.json). One process per core.

Usage: img2dataset_baseline.py URLS_FILE OUT_DIR [processes] [threads] [shard_size]
Prints: "<images ok> <failed> <seconds>".
"""

import io
import json
import multiprocessing
import os
import sys
import tarfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

SIZE = 256


def download(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read(), None
    except Exception as error:  # noqa: BLE001 - any failure is a failed item
        return None, str(error)


def resize_border(data):
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    height, width = image.shape[:2]
    scale = SIZE / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top = (SIZE - new_h) // 2
    left = (SIZE - new_w) // 2
    image = cv2.copyMakeBorder(image, top, SIZE - new_h - top, left, SIZE - new_w - left,
                               cv2.BORDER_CONSTANT, value=[255, 255, 255])
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return encoded.tobytes() if ok else None


def process_shard(args):
    shard_id, first_key, urls, out_dir, threads = args
    cv2.setNumThreads(1)
    ok = failed = 0
    path = os.path.join(out_dir, f"{shard_id:08d}.tar")
    with tarfile.open(path + ".tmp", "w") as tar, ThreadPoolExecutor(threads) as pool:
        for offset, (data, error) in enumerate(pool.map(download, urls)):
            key = f"{first_key + offset:09d}"
            encoded = resize_border(data) if data is not None else None
            if encoded is None:
                failed += 1
                continue
            ok += 1
            for name, payload in ((key + ".jpg", encoded),
                                  (key + ".json", json.dumps({"key": key}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    os.replace(path + ".tmp", path)
    return ok, failed


def main():
    urls_file, out_dir = sys.argv[1], sys.argv[2]
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    shard_size = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    with open(urls_file) as f:
        urls = [line.strip() for line in f if line.strip()]
    os.makedirs(out_dir, exist_ok=True)
    shards = [(i // shard_size, i, urls[i:i + shard_size], out_dir, threads)
              for i in range(0, len(urls), shard_size)]
    start = time.time()
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(process_shard, shards, chunksize=1)
    seconds = time.time() - start
    print(sum(r[0] for r in results), sum(r[1] for r in results), f"{seconds:.3f}")


if __name__ == "__main__":
    main()
