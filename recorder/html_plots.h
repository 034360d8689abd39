// Private to the HTML report: the plots of WriteHtmlReport beyond the
// throughput per device (export_html.cc).
#pragma once

#include <string>

#include "recorder/analysis.h"

namespace umbra::recorder::html {

// Per device class, the cumulative distribution of the gap, one step line
// per fault type (<svg class="gap-cdf" data-class="net">, <polyline
// class="cdf" data-fault="segfault">), on a logarithmic time axis.
std::string GapCdfPlots(const Report& report);

// Per fault, one bar from the fault to the end of its recovery, split into
// detect and the recovery phases (<svg class="phases">, <rect class="phase"
// data-phase="restart">); time in no phase (a restart backoff) is grey.
std::string PhaseBars(const Report& report);

}  // namespace umbra::recorder::html
