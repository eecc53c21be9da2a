// faces: detects faces in the decoded image and writes how many, where and how sure.
//
// Reads:   "image"  ImagePayload (src/stages/image.h), 8-bit BGR; its original
//                   width/height, which may exceed the pixels held when decode
//                   reduced a JPEG, define the coordinates written
// Writes:  "faces"        int64, the number of faces kept
//          "face_boxes"   text, JSON [[x,y,w,h],...]: integers in ORIGINAL image
//                         pixels, clipped to the image, best score first; "[]"
//          "face_scores"  text, JSON [s,...] with 3 decimals, in the same order.
//                         hog: dlib's detection confidence (0 at its default
//                         threshold, higher is surer); haar: the number of
//                         neighbouring windows merged into the face (an integer,
//                         written as e.g. 12.000), as Haar cascades give no score;
//                         blazeface: the network's probability, 0..1
//          "face_landmarks"  blazeface only: text, JSON [[x1,y1,...,x6,y6],...], six
//                         points per face in the same order, integers in ORIGINAL
//                         pixels clipped to the image: the subject's right eye, left
//                         eye, nose tip, mouth centre, right ear, left ear
// Fails:   kStage  no "image" payload (decode must run first), as resize does
//
// How it detects: the pixels are shrunk (INTER_AREA) so that their longer side is
// `detect_size`, never enlarged, and made grayscale. hog (default): dlib's HOG
// frontal face detector (src/stages/hog_detector.h), after `upsample` doublings;
// haar: OpenCV's cascade on the histogram-equalized gray copy
// (src/stages/haar_detector.h). blazeface: MediaPipe's BlazeFace CNN on the pixels
// as held, letterboxed into its 256 x 256 input (src/stages/blazeface_detector.h;
// detect_size and upsample do not apply), faces scoring at least `score_threshold`,
// merged at `nms_iou`. Boxes are scaled back to the original size; boxes whose
// smaller side is under `min_face_size` original pixels are dropped.
//
// Thread-safety: Process() may run concurrently on different chunks; each thread
// uses its own detector (dlib's and OpenCV's are not safe to share while they run).
#ifndef SLUICE_STAGES_FACES_STAGE_H_
#define SLUICE_STAGES_FACES_STAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "sluice/status.h"
#include "src/stages/blazeface_detector.h"
#include "src/stages/haar_detector.h"
#include "src/stages/hog_detector.h"
#include "src/stages/image.h"

namespace sluice {

enum class FaceDetectorKind : std::uint8_t { kHog, kHaar, kBlazeFace };

struct FacesOptions {
  FaceDetectorKind detector = FaceDetectorKind::kHog;  // "detector": hog|haar|blazeface
  int detect_size = 640;   // "detect_size": longer side searched; 0: pixels as held
  int min_face_size = 0;   // "min_face_size": drop smaller faces (original pixels)
  int upsample = 0;        // "upsample": hog: doublings before detecting, 0..2
  double min_score = 0.0;  // "min_score": hog: added to dlib's threshold (-1..3)
  int min_neighbors = 3;   // "min_neighbors": haar: windows that must agree
  std::string cascade = kDefaultHaarCascade;  // "cascade": haar: cascade XML file
  double score_threshold = 0.5;  // "score_threshold": blazeface: keep faces scoring more
  double nms_iou = 0.3;          // "nms_iou": blazeface: merge boxes overlapping more
  std::string model;  // "model": blazeface: ONNX file; empty: DefaultBlazeFaceModelPath()
};

class FacesStage final : public CpuStage {
 public:
  // Builds the stage; with the haar detector, reads `options.cascade`, with
  // blazeface `options.model`, and fails (InvalidArgument naming the file) if it
  // cannot be loaded.
  static Result<std::unique_ptr<FacesStage>> Create(FacesOptions options);

  void ProcessOne(Record& record) override;
  StageFields Fields() const override {
    StageFields fields =
        DeclaredFields({"image"}, {"faces", "face_boxes", "face_scores"});
    if (options_.detector == FaceDetectorKind::kBlazeFace) {
      fields.writes.push_back("face_landmarks");
    }
    return fields;
  }

  // The faces ProcessOne() finds in `image`, boxes in original coordinates, clipped
  // and filtered. Exposed for tests and benchmarks. Thread-safe.
  std::vector<FaceDetection> Detect(const ImagePayload& image) const;

 private:
  FacesStage(FacesOptions options, std::unique_ptr<HaarFaceDetector> haar,
             std::unique_ptr<BlazeFaceDetector> blazeface);

  const FacesOptions options_;
  const std::unique_ptr<HaarFaceDetector> haar_;            // set for kHaar only
  const std::unique_ptr<BlazeFaceDetector> blazeface_;      // set for kBlazeFace only
};

// Registers "faces" with its YAML options: detector (hog|haar|blazeface, default
// hog), detect_size (0..65536, default 640), min_face_size (0..65536, default 0),
// upsample (0..2, default 0), min_score (-1..3, default 0), min_neighbors (0..100,
// default 3), cascade (path, default kDefaultHaarCascade), score_threshold (0..1,
// default 0.5), nms_iou (0..1, default 0.3), model (path, default
// DefaultBlazeFaceModelPath()). Each detector ignores the other detectors' options.
// Fails if one of the names is registered already.
Status RegisterFaceStages(StageRegistry& registry);

}  // namespace sluice

#endif  // SLUICE_STAGES_FACES_STAGE_H_
