// Private to the HTML report (export_html.cc, html_plots.cc): escaping,
// number formatting and the plot geometry every SVG in the report shares.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace umbra::recorder::html {

inline constexpr int kWidth = 820;
inline constexpr int kHeight = 220;
inline constexpr int kLeft = 70;
inline constexpr int kRight = 20;
inline constexpr int kTop = 20;
inline constexpr int kBottom = 40;

inline std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// A coordinate with one decimal.
inline std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// The colour of series `i` (fault types in a CDF, phases in a bar).
inline const char* Palette(size_t i) {
  static constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                             "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return kColours[i % (sizeof kColours / sizeof kColours[0])];
}

inline std::string Line(const char* cls, double x1, double y1, double x2, double y2) {
  return std::string("<line class=\"") + cls + "\" x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) +
         "\" y2=\"" + Num(y2) + "\"/>";
}

inline std::string Text(double x, double y, const std::string& text, const char* anchor = "start") {
  return "<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" text-anchor=\"" + anchor + "\">" + Escape(text) + "</text>";
}

}  // namespace umbra::recorder::html
