// sluice-make-corpus: writes a benchmark corpus of JPEGs made from seed photos.
//
//   sluice-make-corpus SEED_DIR OUT_DIR COUNT [MIN_SIDE MAX_SIDE [SEED]]
//
// Image i is seed photo (i mod seeds), resized so that its longer side is a
// deterministic pseudo-random length in [MIN_SIDE, MAX_SIDE] (default 200..1200),
// saved as OUT_DIR/NNNNNN.jpg at quality 90. Real photos (faces included) make the
// decode, resize and detection costs those of real inputs, not of flat test images.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: sluice-make-corpus SEED_DIR OUT_DIR COUNT [MIN_SIDE MAX_SIDE "
                 "[SEED]]\n";
    return 2;
  }
  const std::filesystem::path seed_dir = argv[1];
  const std::filesystem::path out_dir = argv[2];
  const int count = std::stoi(argv[3]);
  const int min_side = argc > 5 ? std::stoi(argv[4]) : 200;
  const int max_side = argc > 5 ? std::stoi(argv[5]) : 1200;
  const unsigned seed = argc > 6 ? static_cast<unsigned>(std::stoul(argv[6])) : 1;
  if (count <= 0 || min_side < 16 || max_side < min_side) {
    std::cerr << "sluice-make-corpus: need COUNT > 0 and 16 <= MIN_SIDE <= MAX_SIDE\n";
    return 2;
  }

  std::vector<cv::Mat> seeds;
  std::error_code error;
  std::vector<std::filesystem::path> names;
  for (const auto& entry : std::filesystem::directory_iterator(seed_dir, error)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") names.push_back(entry.path());
  }
  if (error) {
    std::cerr << "sluice-make-corpus: " << seed_dir << ": " << error.message() << "\n";
    return 1;
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    cv::Mat image = cv::imread(name.string(), cv::IMREAD_COLOR);
    if (!image.empty()) seeds.push_back(std::move(image));
  }
  if (seeds.empty()) {
    std::cerr << "sluice-make-corpus: no readable photo in " << seed_dir << "\n";
    return 1;
  }
  std::filesystem::create_directories(out_dir, error);
  if (error) {
    std::cerr << "sluice-make-corpus: " << out_dir << ": " << error.message() << "\n";
    return 1;
  }

  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> side(min_side, max_side);
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, 90};
  for (int i = 0; i < count; ++i) {
    const cv::Mat& source = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int longer = side(rng);
    const double scale = static_cast<double>(longer) / std::max(source.cols, source.rows);
    cv::Mat resized;
    cv::resize(source, resized, cv::Size(), scale, scale,
               scale < 1 ? cv::INTER_AREA : cv::INTER_CUBIC);
    const std::string path = (out_dir / fmt::format("{:06d}.jpg", i)).string();
    if (!cv::imwrite(path, resized, params)) {
      std::cerr << "sluice-make-corpus: cannot write " << path << "\n";
      return 1;
    }
  }
  std::cout << fmt::format("{} images ({}..{} px) from {} photos in {}\n", count,
                           min_side, max_side, seeds.size(), out_dir.string());
  return 0;
}
