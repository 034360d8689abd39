// Helpers shared by the device-model tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/model/inprocess_backend.h"
#include "runtime/model/model.h"

namespace umbra::model::testing {

using Completion = InProcessBackend::Completion;

class ModelFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Model::Create().value();
    ASSERT_TRUE(model_->AddBus("platform"));
  }

  DeviceHandle AddDev(const std::string& name, const std::string& compatible = "test,dev",
                      const std::string& cls = "") {
    auto h = model_->AddDevice({.name = name, .bus = "platform", .compatible = {compatible}, .device_class = cls});
    EXPECT_TRUE(h) << h.error().ToString();
    return h ? *h : DeviceHandle();
  }

  std::shared_ptr<InProcessBackend> AddDrv(const std::string& name, std::vector<std::string> compatible,
                                           Completion completion = Completion::kSynchronous) {
    auto backend = std::make_shared<InProcessBackend>(*model_, completion);
    auto ok = model_->AddDriver({.name = name, .bus = "platform", .compatible = std::move(compatible)}, backend);
    EXPECT_TRUE(ok) << ok.error().ToString();
    return backend;
  }

  void Link(const std::string& consumer, const std::string& supplier, LinkFlags flags = LinkFlag::kManaged) {
    auto ok = model_->AddLink(consumer, supplier, flags);
    ASSERT_TRUE(ok) << ok.error().ToString();
  }

  std::string State(const std::string& name) {
    auto s = model_->device_state(name);
    return s ? DeviceStateName(*s) : "(" + s.error().ToString() + ")";
  }

  std::string LinkStatus(const std::string& consumer, const std::string& supplier) {
    auto s = model_->link_state(consumer, supplier);
    return s ? LinkStateName(*s) : "(" + s.error().ToString() + ")";
  }

  std::string Attr(const std::string& path) {
    auto v = model_->Read(path);
    return v ? *v : "(" + v.error().ToString() + ")";
  }

  std::unique_ptr<Model> model_;
};

// Records what a consumer hears, as "recovering clk0", "failed clk0 optional".
class RecordingListener : public LinkListener {
 public:
  void OnSupplierRecovering(const Device& s) override { Add("recovering " + s.name()); }
  void OnSupplierRecovered(const Device& s) override { Add("recovered " + s.name()); }
  void OnSupplierFailed(const Device& s, LinkOptional optional) override {
    Add("failed " + s.name() + (optional == LinkOptional::kYes ? " optional" : " required"));
  }
  void OnSupplierUnbound(const Device& s) override { Add("unbound " + s.name()); }

  std::vector<std::string> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }

 private:
  void Add(std::string e) {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

}  // namespace umbra::model::testing
