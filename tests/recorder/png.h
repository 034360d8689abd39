// A small PNG reader for tests that look at screenshots: 8-bit RGB or RGBA,
// not interlaced (what headless Chromium writes). Returns RGBA pixels.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace umbra::testing {

struct Image {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgba;  // row-major, 4 bytes per pixel
  const uint8_t* At(uint32_t x, uint32_t y) const { return &rgba[(size_t{y} * width + x) * 4]; }
};

namespace png_detail {

inline uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

inline uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return uint8_t(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Undoes the per-row filters in place; `raw` holds height × (1 + stride) bytes.
inline bool Unfilter(std::vector<uint8_t>& raw, uint32_t height, size_t stride, size_t bpp, std::vector<uint8_t>& out) {
  out.assign(size_t{height} * stride, 0);
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* row = &out[y * stride];
    const uint8_t* up = y > 0 ? &out[(y - 1) * stride] : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? row[i - bpp] : 0, b = up ? up[i] : 0, c = (up && i >= bpp) ? up[i - bpp] : 0;
      switch (filter) {
        case 0: row[i] = in[i]; break;
        case 1: row[i] = uint8_t(in[i] + a); break;
        case 2: row[i] = uint8_t(in[i] + b); break;
        case 3: row[i] = uint8_t(in[i] + (a + b) / 2); break;
        case 4: row[i] = uint8_t(in[i] + Paeth(a, b, c)); break;
        default: return false;
      }
    }
  }
  return true;
}

}  // namespace png_detail

inline std::optional<Image> DecodePng(const std::string& file) {
  using png_detail::Be32;
  if (file.size() < 8 || file.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return std::nullopt;
  Image img;
  uint8_t depth = 0, colour = 0, interlace = 0;
  std::string idat;
  for (size_t at = 8; at + 12 <= file.size();) {
    const uint32_t len = Be32(file, at);
    const std::string type = file.substr(at + 4, 4);
    if (at + 12 + len > file.size()) return std::nullopt;
    if (type == "IHDR") {
      img.width = Be32(file, at + 8);
      img.height = Be32(file, at + 12);
      depth = uint8_t(file[at + 16]);
      colour = uint8_t(file[at + 17]);
      interlace = uint8_t(file[at + 20]);
    } else if (type == "IDAT") {
      idat += file.substr(at + 8, len);
    } else if (type == "IEND") {
      break;
    }
    at += 12 + len;
  }
  if (depth != 8 || interlace != 0 || (colour != 2 && colour != 6)) return std::nullopt;
  const size_t bpp = colour == 6 ? 4 : 3, stride = size_t{img.width} * bpp;
  std::vector<uint8_t> raw(size_t{img.height} * (stride + 1));
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      raw_len != raw.size())
    return std::nullopt;
  std::vector<uint8_t> pixels;
  if (!png_detail::Unfilter(raw, img.height, stride, bpp, pixels)) return std::nullopt;
  img.rgba.resize(size_t{img.width} * img.height * 4);
  for (size_t i = 0, n = size_t{img.width} * img.height; i < n; ++i) {
    for (size_t k = 0; k < 3; ++k) img.rgba[i * 4 + k] = pixels[i * bpp + k];
    img.rgba[i * 4 + 3] = bpp == 4 ? pixels[i * bpp + 3] : 255;
  }
  return img;
}

}  // namespace umbra::testing
