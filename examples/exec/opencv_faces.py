#!/usr/bin/env python3
"""A face detector as an exec stage: OpenCV's Haar cascade, from Python (docs/exec.md).

The way to plug your own detector into sluice: keep this loop and replace
FaceFinder with your model. sluice starts one copy of the script per worker thread,
so the model is loaded once per copy and then serves every record it is sent.

    request: {"id": 7, "url": "...", "bytes_path": "/tmp/sluice-exec-Ab12Cd/7-0"}
    reply:   {"id": 7, "faces": 2, "face_boxes": [[x, y, w, h], ...],
              "width": 640, "height": 480}
    or:      {"id": 7, "error": "cannot decode the image"}

Needs python3-opencv (Debian) and the cascades of opencv-data. The cascade file can
be given as the first argument.
"""
import base64
import json
import os
import sys

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


def cascade_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    # pip's opencv-python ships the cascades in cv2.data; Debian's package does not,
    # and opencv-data installs them here.
    candidates = []
    data = getattr(cv2, "data", None)
    if data is not None:
        candidates.append(os.path.join(data.haarcascades, CASCADE))
    candidates.append(os.path.join("/usr/share/opencv4/haarcascades", CASCADE))
    candidates.append(os.path.join("/usr/share/opencv/haarcascades", CASCADE))
    for path in candidates:
        if os.path.exists(path):
            return path
    sys.exit(f"opencv_faces: no {CASCADE} in {', '.join(candidates)} "
             "(install opencv-data, or give the cascade's path)")


class FaceFinder:
    """Finds faces in an 8-bit BGR image: a list of [x, y, width, height]."""

    def __init__(self, path):
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            sys.exit(f"opencv_faces: {path} is not a cascade OpenCV can load")

    def find(self, image):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(20, 20))
        return [[int(v) for v in box] for box in found]


def read_image(request):
    if "bytes_path" in request:
        data = np.fromfile(request["bytes_path"], dtype=np.uint8)
    elif "bytes_base64" in request:
        data = np.frombuffer(base64.b64decode(request["bytes_base64"]), dtype=np.uint8)
    else:
        raise ValueError("no bytes in the request (set bytes_field in the pipeline)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("cannot decode the image")
    return image


def main():
    finder = FaceFinder(cascade_path())
    for line in sys.stdin:
        request = json.loads(line)
        try:
            image = read_image(request)
            boxes = finder.find(image)
            reply = {"faces": len(boxes), "face_boxes": boxes,
                     "width": image.shape[1], "height": image.shape[0]}
        except Exception as e:  # one bad image fails alone, the script goes on
            reply = {"error": f"{type(e).__name__}: {e}"}
        reply["id"] = request["id"]
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
