// Races: attribute reads and link changes against recovery; handle use against
// removal. Meant to run under TSan and ASan as well.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/runtime/model/model_test_util.h"

namespace umbra::model::testing {
namespace {

using ConcurrencyTest = ModelFixture;

TEST_F(ConcurrencyTest, ReadsAndLinkChangesRaceWithRecovery) {
  AddDrv("any", {"test,dev"});
  constexpr int kSuppliers = 4, kConsumers = 8;
  for (int i = 0; i < kSuppliers; ++i) AddDev("s" + std::to_string(i));
  for (int i = 0; i < kConsumers; ++i) {
    AddDev("c" + std::to_string(i));
    Link("c" + std::to_string(i), "s" + std::to_string(i % kSuppliers),
         i % 2 ? LinkFlag::kManaged | LinkFlag::kOptional : LinkFlags(LinkFlag::kManaged));
    ASSERT_TRUE(model_->SetLinkListener("c" + std::to_string(i), std::make_shared<RecordingListener>()));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> events{0};
  Subscription sub = model_->Subscribe([&](const Event&) { events.fetch_add(1, std::memory_order_relaxed); });

  std::thread recovery([&] {  // the supervisor
    for (int round = 0; round < 300; ++round) {
      std::string s = "s" + std::to_string(round % kSuppliers);
      (void)model_->SetRecovering(s);
      (void)model_->SetRecovered(s);
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      int i = t;
      while (!stop) {
        std::string c = "c" + std::to_string(i++ % kConsumers);
        (void)model_->Read("/devices/platform/" + c + "/state");
        (void)model_->Read("/devices/platform/" + c + "/degraded");
        (void)model_->Read("/links/s0--c0/status");
        (void)model_->List("/devices/platform/" + c);
        if (i % 50 == 0) (void)model_->RenderText();
      }
    });
  }
  std::thread linker([&] {
    int i = 0;
    while (!stop) {
      std::string extra = "s" + std::to_string(i % kSuppliers);
      std::string consumer = "c" + std::to_string((i + 1) % kConsumers);
      if (model_->AddLink(consumer, extra, LinkFlag::kManaged | LinkFlag::kOptional)) {
        (void)model_->RemoveLink(consumer, extra);
      }
      ++i;
    }
  });
  recovery.join();
  for (auto& r : readers) r.join();
  linker.join();
  for (int i = 0; i < kSuppliers; ++i) EXPECT_EQ(State("s" + std::to_string(i)), "bound");
  EXPECT_GT(events.load(), 0);
}

TEST_F(ConcurrencyTest, HandleUseRacesWithRemoval) {
  AddDrv("any", {"test,dev"});
  for (int round = 0; round < 200; ++round) {
    auto h = AddDev("victim");
    std::atomic<bool> go{false};
    std::atomic<int> ok{0}, gone{0};
    std::vector<std::thread> users;
    for (int t = 0; t < 3; ++t) {
      users.emplace_back([&, h] {
        while (!go) std::this_thread::yield();
        for (int i = 0; i < 50; ++i) {
          auto r = h.Access([&](Device& d) -> Result<void> {
            // Removal may have begun (generation 0) but waits for us: the
            // device is neither unbound nor unpublished while we are inside.
            EXPECT_EQ(d.state(), DeviceState::kBound);
            return {};
          });
          auto s = h.Read("state");
          if (r && s) {
            ok.fetch_add(1);
          } else {
            auto code = r ? s.error().code : r.error().code;
            // After removal: kNoDevice from the handle, or kNotFound from the tree.
            EXPECT_TRUE(code == Errc::kNoDevice || code == Errc::kNotFound) << ErrcName(code);
            gone.fetch_add(1);
          }
        }
      });
    }
    go = true;
    ASSERT_TRUE(model_->RemoveDevice("victim"));
    for (auto& u : users) u.join();
    EXPECT_FALSE(h.alive());
    EXPECT_EQ(h.Read("state").error().code, Errc::kNoDevice);
  }
}

// Regression: reader-preferring rwlocks could starve removal while handle
// users kept the revocation lock busy; users must stop once removal begins.
TEST_F(ConcurrencyTest, RemovalIsNotStarvedByAStreamOfHandleUsers) {
  auto h = AddDev("busy");
  std::atomic<int> running{0};
  std::vector<std::thread> users;
  for (int t = 0; t < 4; ++t) {
    users.emplace_back([&, h] {
      running.fetch_add(1);
      while (h.Access([](Device&) -> Result<void> {
        std::this_thread::yield();
        return {};
      })) {}
    });
  }
  while (running.load() < 4) std::this_thread::yield();
  ASSERT_TRUE(model_->RemoveDevice("busy"));  // returns: not starved
  for (auto& u : users) u.join();             // and every user noticed
  EXPECT_FALSE(h.alive());
}

TEST_F(ConcurrencyTest, AsyncProbesCompleteFromOtherThreads) {
  auto backend = AddDrv("slow", {"test,slow"}, Completion::kOnDemand);
  constexpr int kN = 32;
  for (int i = 0; i < kN; ++i) AddDev("d" + std::to_string(i), "test,slow");
  std::vector<std::thread> completers;
  for (int t = 0; t < 4; ++t) {
    completers.emplace_back([&, t] {
      for (int i = t; i < kN; i += 4) EXPECT_TRUE(backend->CompleteProbe("d" + std::to_string(i)));
    });
  }
  for (auto& c : completers) c.join();
  for (int i = 0; i < kN; ++i) EXPECT_EQ(State("d" + std::to_string(i)), "bound");
}

}  // namespace
}  // namespace umbra::model::testing
