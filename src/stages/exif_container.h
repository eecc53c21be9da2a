// Where the Python exifread library finds the EXIF block (its TIFF header) in an
// image file, for the exif field (src/stages/exif.h). exifread's search is not a
// parser of the formats, and its quirks decide what img2dataset writes, so they
// are kept:
//  - TIFF (II or MM at the start): the file's start.
//  - JPEG (FF D8): the leading segments whose code is JFIF, JFXX, OLYM or Phot are
//    skipped first; then, within the 4000 bytes after them, segments are skipped
//    by their length, whatever their marker, until an APP1 whose code is "Exif"
//    (the TIFF header is 6 bytes after the code, "\0\0" unchecked) or a DQT
//    (which ends the search: an Exif APP1 after an ICC profile of 4 KB is missed).
//  - PNG: the first eXIf chunk, chunks walked by their lengths until IEND.
//  - WebP (RIFF/WEBP): with a VP8X chunk, the EXIF chunk, chunks walked by their
//    sizes from the one after VP8X, without RIFF's padding of odd sizes (an EXIF
//    chunk after an odd-sized one is missed). exifread takes the VP8X chunk size's
//    first byte for its flags and looks when its bit 3 is set, as it is for the
//    10-byte VP8X chunk.
// HEIC, which exifread also reads, is left out: sluice decodes no HEIC.
//
// Thread-safe: a pure function.
#ifndef SLUICE_STAGES_EXIF_CONTAINER_H_
#define SLUICE_STAGES_EXIF_CONTAINER_H_

#include <cstdint>
#include <span>

namespace sluice {

struct ExifBlock {
  enum class Outcome : std::uint8_t {
    kFound,  // the TIFF header is at `tiff_offset`
    kNone,   // exifread finds no EXIF (it returns no tags)
    kRaise,  // exifread raises (img2dataset writes None); also HEIC
  };
  Outcome outcome = Outcome::kNone;
  std::int64_t tiff_offset = 0;  // from the start of the file
};

// Where exifread finds the EXIF block of `file` (all of its bytes).
ExifBlock FindExifBlock(std::span<const std::uint8_t> file);

}  // namespace sluice

#endif  // SLUICE_STAGES_EXIF_CONTAINER_H_
