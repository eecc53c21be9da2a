// The EXIF tags of an image as img2dataset writes them in its `exif` column:
//
//   json.dumps({k: str(v).strip() for k, v in
//               exifread.process_file(original_bytes, details=False).items()
//               if v is not None})
//
// and None when exifread raises. ExifJson() gives the same text, byte for byte,
// for what exifread 3.0.0 (Debian 12's python3-exifread) reads, with one
// difference: tags whose codes exifread prints as labels (Orientation 6 is "Rotated
// 90 CW", Flash 16 "Flash did not fire, compulsory flash mode", ...) keep their
// codes, written as exifread writes a code it has no label for ("6", "16"; the
// codes of a multi-value tag run together: ComponentsConfiguration "1230").
//
// How it works. The TIFF header is found where exifread looks for it
// (src/stages/exif_container.h: a TIFF file's start, a JPEG's Exif APP1, PNG's
// eXIf chunk, an extended WebP's EXIF chunk). Offsets in the TIFF structure count
// from its header and, as in exifread, reach to the end of the whole file, not
// only of the segment that holds it: a value past the end reads as 0, one cut by
// the end makes exifread raise. The IFD chain from IFD0 ("Image", "Thumbnail",
// "IFD 2", ...; a revisited IFD ends it) is printed, then the Exif IFD ("EXIF") of
// Image's ExifOffset; the GPS and Interoperability IFDs when their pointer tags
// are met, before the pointer itself. Values are printed as exifread prints them:
// Python's str() of its ints, Fractions, float 1-tuples and lists (over 50 values:
// the first 20 and ", ... ]"), ASCII cut at the first NUL, as text if it is UTF-8
// and as Python's repr of bytes if not. Keys keep their first place, as in a
// Python dict. MakerNote, UserComment and ApplicationNotes (XMP) are skipped, as
// img2dataset's details=False does.
//
// Files that exifread reads without finding EXIF (GIF, BMP, HTML, a JPEG without
// an Exif APP1...) give "{}". HEIC, which exifread reads and sluice does not decode,
// gives nullopt.
//
// The bytes are untrusted: every read is bounds-checked, and the work is bounded.
// exifread's own limits are kept (a field with 1000 or more values reads none;
// revisited IFDs end the chain); beyond them, an input that would have ExifJson
// read more than 2^17 IFD entries, 2^22 numeric values or 32 MiB of text (ASCII
// read plus text printed) gives nullopt. Such inputs cost exifread seconds to hours
// (0.5 to 2 s per million values; an IFD can claim 65535 entries and be reached
// from as many pointer tags); a camera's EXIF block has about 50 tags.
//
// Thread-safe: a pure function.
#ifndef SLUICE_STAGES_EXIF_H_
#define SLUICE_STAGES_EXIF_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace sluice {

// img2dataset's `exif` text for the image file `file` (all of its bytes, as
// downloaded), or nullopt where img2dataset writes None (see the top of the file).
std::optional<std::string> ExifJson(std::span<const std::uint8_t> file);

}  // namespace sluice

#endif  // SLUICE_STAGES_EXIF_H_
