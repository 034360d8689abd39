// The HTML report as a browser draws it: headless Chromium renders the report
// of a hand-built trace; the DOM must hold plots with real geometry and the
// screenshot must show them (not a blank page). Skips without Chromium
// (./test installs it: scripts/bootstrap.sh, UMBRA_TEST_PACKAGES).
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "recorder/analysis.h"
#include "recorder/export.h"
#include "tests/recorder/png.h"
#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using namespace testing;

constexpr const char* kChromium = "/usr/bin/chromium";

// nic0 crashes twice under steady traffic; disk0 keeps running.
std::string Report() {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  DeviceId disk = b.Device("disk0", "block");
  for (int64_t t = 2 * kMs; t < 100 * kMs; t += 100 * kUs) {
    bool down = (t > 30 * kMs && t < 35 * kMs) || (t > 60 * kMs && t < 62 * kMs);
    if (!down) b.Ok(t, nic);
    b.Ok(t + 50 * kUs, disk, RequestOp::kRead);
  }
  FullRecovery(b, nic, 30 * kMs + 10 * kUs, "segfault");
  FullRecovery(b, nic, 60 * kMs + 10 * kUs, "hang");
  auto report = Analyze(b.trace());
  EXPECT_TRUE(report);
  std::ostringstream out;
  EXPECT_TRUE(WriteHtmlReport(b.trace(), *report, out));
  return out.str();
}

// Runs Chromium on `html` with `what` (--dump-dom, --screenshot=…); true when it exited 0.
bool RunChromium(const TempDir& dir, const std::string& what, const std::string& stdout_path) {
  std::string html_path = dir.File("report.html");
  WriteFile(html_path, Report());
  std::string cmd = std::string(kChromium) +
                    " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                    " --disable-background-networking --disable-component-update --disable-sync"
                    " --user-data-dir=" +
                    dir.File("profile") + " " + what + " file://" + html_path + " > " + stdout_path + " 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

// The values of `attribute` on every `<tag class="cls"` element of `dom`.
std::vector<std::string> Attributes(const std::string& dom, const std::string& tag, const std::string& cls,
                                    const std::string& attribute) {
  std::vector<std::string> out;
  std::regex element("<" + tag + " class=\"" + cls + "\"[^>]*>");
  std::regex value(" " + attribute + "=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), element); it != std::sregex_iterator(); ++it) {
    std::smatch m;
    std::string e = it->str();
    if (std::regex_search(e, m, value)) out.push_back(m[1]);
  }
  return out;
}

// The distinct y coordinates of a polyline's points.
std::set<std::string> DistinctY(const std::string& points) {
  std::set<std::string> ys;
  std::istringstream in(points);
  std::string p;
  while (in >> p) ys.insert(p.substr(p.find(',') + 1));
  return ys;
}

TEST(HtmlRenderTest, ChromiumBuildsEveryPlotWithRealGeometry) {
  if (access(kChromium, X_OK) != 0) GTEST_SKIP() << kChromium << " is not installed; cannot render the HTML report";
  TempDir dir;
  ASSERT_TRUE(RunChromium(dir, "--dump-dom", dir.File("dom.html")));
  const std::string dom = ReadFile(dir.File("dom.html"));
  // Throughput: a line per device across the plot; nic0's falls at each crash.
  auto series = Attributes(dom, "polyline", "series", "points");
  ASSERT_EQ(series.size(), 2u) << dom.substr(0, 2000);
  for (const auto& points : series) EXPECT_GE(std::count(points.begin(), points.end(), ','), 50) << points;
  auto nic = Attributes(dom, "polyline", "series\" data-series=\"nic0", "points");
  ASSERT_EQ(nic.size(), 1u);
  EXPECT_GT(DistinctY(nic[0]).size(), 2u) << nic[0];
  // The gap CDF: a step line per fault type that climbs.
  auto cdf = Attributes(dom, "polyline", "cdf", "points");
  ASSERT_EQ(cdf.size(), 2u);
  for (const auto& points : cdf) EXPECT_GE(DistinctY(points).size(), 2u) << points;
  // Phase bars: segments of non-zero width.
  auto widths = Attributes(dom, "rect", "phase", "width");
  ASSERT_EQ(widths.size(), 16u);
  for (const auto& w : widths) EXPECT_GE(std::stod(w), 1.0);
  EXPECT_EQ(Attributes(dom, "line", "crash", "x1").size(), 2u);
}

// Pixels within 40 of `rgb` in every channel.
size_t PixelsNear(const umbra::testing::Image& img, uint32_t rgb) {
  size_t n = 0;
  for (uint32_t y = 0; y < img.height; ++y)
    for (uint32_t x = 0; x < img.width; ++x) {
      const uint8_t* p = img.At(x, y);
      if (std::abs(p[0] - int(rgb >> 16 & 0xff)) < 40 && std::abs(p[1] - int(rgb >> 8 & 0xff)) < 40 &&
          std::abs(p[2] - int(rgb & 0xff)) < 40)
        ++n;
    }
  return n;
}

TEST(HtmlRenderTest, ScreenshotShowsThePlotsNotABlankPage) {
  if (access(kChromium, X_OK) != 0) GTEST_SKIP() << kChromium << " is not installed; cannot render the HTML report";
  TempDir dir;
  const std::string png = dir.File("report.png");
  ASSERT_TRUE(RunChromium(dir, "--screenshot=" + png + " --window-size=1000,2600", dir.File("out.txt")));
  auto img = umbra::testing::DecodePng(ReadFile(png));
  ASSERT_TRUE(img) << "not a PNG Chromium writes: " << png;
  ASSERT_EQ(img->width, 1000u);
  size_t ink = 0;
  std::set<uint32_t> colours;
  for (uint32_t y = 0; y < img->height; ++y)
    for (uint32_t x = 0; x < img->width; ++x) {
      const uint8_t* p = img->At(x, y);
      if (p[0] < 235 || p[1] < 235 || p[2] < 235) ++ink;
      colours.insert((uint32_t(p[0] >> 4) << 8) | (uint32_t(p[1] >> 4) << 4) | uint32_t(p[2] >> 4));
    }
  const size_t pixels = size_t{img->width} * img->height;
  EXPECT_GT(ink, pixels / 50) << "the page is almost blank";
  EXPECT_GT(colours.size(), 20u) << "too few colours for plots";
  // The drawn lines and bars, by colour: the throughput series, the crash
  // lines, the resumed lines, and the restart segments of the phase bars.
  EXPECT_GT(PixelsNear(*img, 0x1f5fbf), 500u) << "throughput lines / histogram bars";
  EXPECT_GT(PixelsNear(*img, 0xd62728), 100u) << "crash lines";
  EXPECT_GT(PixelsNear(*img, 0x2ca02c), 100u) << "resumed lines";
  EXPECT_GT(PixelsNear(*img, 0xff7f0e), 100u) << "restart segments";
}

}  // namespace
}  // namespace umbra::recorder
