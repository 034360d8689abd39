// A driver built against another protocol version: it says Hello with
// version 99 and waits. The host must refuse it before touching anything.
#include <unistd.h>

#include "base/unique_fd.h"
#include "runtime/ipc/control_channel.h"
#include "umbra/control.pb.h"

int main() {
  umbra::ipc::ControlChannel control{umbra::UniqueFd(3)};
  umbra::proto::DriverToHost hello;
  hello.mutable_hello()->set_protocol_version(99);
  hello.mutable_hello()->set_driver_name("old-protocol");
  hello.mutable_hello()->set_driver_version("0.0");
  if (!control.Send(hello)) return 1;
  umbra::proto::HostToDriver m;
  while (control.Receive(m)) {}  // until the host closes the channel
  return 0;
}
