// The sysfs-like tree: paths, attributes, validation, events and rendering.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "tests/runtime/model/model_test_util.h"

namespace umbra::model::testing {
namespace {

class TreeTest : public ModelFixture {
 protected:
  void SetUp() override {
    ModelFixture::SetUp();
    AddDrv("e1000", {"umbra,e1000"});
    AddDrv("clk", {"umbra,clk"});
    AddDev("clk0", "umbra,clk");
    AddDev("nic0", "umbra,e1000", "net");
    Link("nic0", "clk0", LinkFlag::kManaged | LinkFlag::kAutoRemoveConsumer);
  }
};

TEST_F(TreeTest, EveryPathToADeviceLeadsToTheSameAttributes) {
  for (auto p : {"/devices/platform/nic0", "/class/net/nic0", "/bus/platform/devices/nic0"}) {
    EXPECT_EQ(Attr(std::string(p) + "/state"), "bound") << p;
    EXPECT_EQ(Attr(std::string(p) + "/driver"), "e1000") << p;
  }
  EXPECT_EQ(Attr("/devices/platform/nic0/class"), "net");
  EXPECT_EQ(Attr("/devices/platform/nic0/compatible"), "umbra,e1000");
  EXPECT_EQ(Attr("/bus/platform/drivers/e1000/bound"), "nic0");
  EXPECT_EQ(Attr("/bus/platform/drivers/e1000/state"), "loaded");
}

TEST_F(TreeTest, LinksAreObjectsWithAttributes) {
  EXPECT_EQ(Attr("/links/clk0--nic0/status"), "active");
  EXPECT_EQ(Attr("/links/clk0--nic0/flags"), "managed,auto-remove-consumer");
  EXPECT_EQ(Attr("/links/clk0--nic0/auto_remove_on"), "consumer unbind");
  EXPECT_EQ(Attr("/devices/platform/nic0/supplier:clk0/status"), "active");
  EXPECT_EQ(Attr("/devices/platform/clk0/consumer:nic0/supplier"), "clk0");
}

TEST_F(TreeTest, ListShowsDirectoriesAndAttributes) {
  EXPECT_EQ(model_->List("/").value(), (std::vector<std::string>{"bus", "class", "devices", "links"}));
  EXPECT_EQ(model_->List("/class/net").value(), (std::vector<std::string>{"nic0"}));
  auto dev = model_->List("/devices/platform/nic0").value();
  EXPECT_EQ(dev.front(), "supplier:clk0");
  EXPECT_NE(std::find(dev.begin(), dev.end(), "state"), dev.end());
  EXPECT_EQ(model_->List("/bus/platform/drivers").value(), (std::vector<std::string>{"e1000", "clk"}));
  EXPECT_EQ(model_->List("/nope").error().code, Errc::kNotFound);
}

TEST_F(TreeTest, ReadingADirectoryOrAMissingFileFails) {
  EXPECT_EQ(model_->Read("/devices/platform").error().code, Errc::kInvalidArgument);
  EXPECT_EQ(model_->Read("/devices/platform/nic0/nope").error().code, Errc::kNotFound);
  EXPECT_EQ(model_->Read("/devices/platform/ghost/state").error().code, Errc::kNotFound);
  EXPECT_EQ(model_->Read("/bus/platform/drivers/e1000/bind").error().message, "attribute bind is write-only");
}

TEST_F(TreeTest, ReadOnlyAttributesRefuseWrites) {
  auto r = model_->Write("/devices/platform/nic0/state", "bound");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message, "/devices/platform/nic0/state: attribute state is read-only");
}

TEST_F(TreeTest, StoreValidatesValues) {
  auto bad = model_->Write("/bus/platform/drivers_autoprobe", "maybe");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("\"maybe\" is not a boolean"), std::string::npos) << bad.error().message;
  EXPECT_TRUE(model_->Write("/bus/platform/drivers_autoprobe", "0\n"));  // echo's newline is fine
  EXPECT_EQ(Attr("/bus/platform/drivers_autoprobe"), "0");
  auto multi = model_->Write("/bus/platform/drivers_autoprobe", "1\n0");
  ASSERT_FALSE(multi);
  EXPECT_NE(multi.error().message.find("single value"), std::string::npos);
  auto longv = model_->Write("/bus/platform/drivers_autoprobe", std::string(300, '1'));
  ASSERT_FALSE(longv);
  EXPECT_NE(longv.error().message.find("value too long (300 bytes, at most 256"), std::string::npos);
}

TEST_F(TreeTest, BindAndUnbindThroughDriverAttributes) {
  auto wrong = model_->Write("/bus/platform/drivers/clk/unbind", "nic0");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("nic0 is not bound to clk"), std::string::npos);
  EXPECT_FALSE(model_->Write("/bus/platform/drivers/e1000/unbind", "ghost"));
  ASSERT_TRUE(model_->Write("/bus/platform/drivers/e1000/unbind", "nic0\n"));
  EXPECT_EQ(State("nic0"), "unbound");
  EXPECT_FALSE(model_->link_state("nic0", "clk0"));  // auto-remove-consumer
  auto mismatch = model_->Write("/bus/platform/drivers/clk/bind", "nic0");
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find("clk does not match nic0"), std::string::npos);
  ASSERT_TRUE(model_->Write("/bus/platform/drivers/e1000/bind", "nic0"));
  EXPECT_EQ(State("nic0"), "bound");
}

TEST_F(TreeTest, CustomAttributesValidateInTheirStore) {
  int mtu = 1500;
  ASSERT_TRUE(model_->AddAttribute("/devices/platform/nic0",
                                   Attribute{.name = "mtu",
                                             .mode = AttrMode::kReadWrite,
                                             .show = [&] { return Result<std::string>(std::to_string(mtu)); },
                                             .store = [&](std::string_view v) -> Result<void> {
                                               int x = 0;
                                               for (char c : v) {
                                                 if (c < '0' || c > '9')
                                                   return Fail(Errc::kInvalidArgument, "mtu must be a number");
                                                 x = x * 10 + (c - '0');
                                               }
                                               if (x < 68 || x > 9000)
                                                 return Fail(Errc::kInvalidArgument, "mtu must be in 68..9000");
                                               mtu = x;
                                               return {};
                                             }}));
  EXPECT_EQ(Attr("/class/net/nic0/mtu"), "1500");
  ASSERT_TRUE(model_->Write("/class/net/nic0/mtu", "9000"));
  EXPECT_EQ(mtu, 9000);
  auto r = model_->Write("/class/net/nic0/mtu", "90000");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "/class/net/nic0/mtu: mtu must be in 68..9000");
  EXPECT_EQ(mtu, 9000);
  EXPECT_EQ(model_
                ->AddAttribute("/devices/platform/nic0", Attribute{.name = "state",
                                                                   .mode = AttrMode::kReadOnly,
                                                                   .show = [] { return Result<std::string>(""); }})
                .error()
                .code,
            Errc::kAlreadyExists);
  EXPECT_EQ(model_->AddAttribute("/devices", Attribute{.name = "x"}).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(
      model_->AddAttribute("/devices/platform/nic0", Attribute{.name = "ro", .mode = AttrMode::kReadOnly}).error().code,
      Errc::kInvalidArgument);  // no show function
}

TEST_F(TreeTest, CustomAttributeFunctionsMayCallBackIntoTheModel) {
  ASSERT_TRUE(model_->AddAttribute("/devices/platform/nic0",
                                   Attribute{.name = "clock_state", .mode = AttrMode::kReadOnly, .show = [&] {
                                               return model_->Read("/devices/platform/clk0/state");
                                             }}));
  EXPECT_EQ(Attr("/devices/platform/nic0/clock_state"), "bound");
}

TEST_F(TreeTest, EventsArriveInOrderAndStopWhenTheSubscriptionDies) {
  std::vector<std::string> seen;
  uint64_t last_seq = 0;
  auto sub = std::make_unique<Subscription>(model_->Subscribe([&](const Event& e) {
    EXPECT_GT(e.seq, last_seq);
    last_seq = e.seq;
    seen.push_back(std::string(EventTypeName(e.type)) + " " + e.name + (e.detail.empty() ? "" : " " + e.detail));
  }));
  AddDev("nic1", "umbra,e1000");
  EXPECT_EQ(seen, (std::vector<std::string>{"add nic1", "change nic1 unbound -> probing",
                                            "change nic1 probing -> bound", "bind nic1 e1000"}));
  sub.reset();
  AddDev("nic2", "umbra,e1000");
  EXPECT_EQ(seen.size(), 4u);
}

TEST_F(TreeTest, ASubscriptionMayEndInsideItsOwnCallback) {
  int calls = 0;
  Subscription sub;
  sub = model_->Subscribe([&](const Event&) {
    ++calls;
    sub.Reset();
  });
  AddDev("nic1", "umbra,e1000");
  EXPECT_EQ(calls, 1);
}

TEST_F(TreeTest, TextRenderingShowsStatesAndLinks) {
  std::string text = model_->RenderText();
  EXPECT_NE(text.find("bus platform  drivers_autoprobe=1"), std::string::npos) << text;
  EXPECT_NE(text.find("  device nic0  [bound]  driver=e1000  class=net"), std::string::npos) << text;
  EXPECT_NE(text.find("    supplier clk0  [active]  managed,auto-remove-consumer"), std::string::npos) << text;
  EXPECT_NE(text.find("    consumer nic0  [active]"), std::string::npos) << text;
  EXPECT_NE(text.find("  driver e1000  [loaded]  compatible=umbra,e1000  bound=nic0"), std::string::npos) << text;
  EXPECT_NE(text.find("class net\n  nic0  [bound]"), std::string::npos) << text;
}

TEST_F(TreeTest, JsonRenderingIsValidJson) {
  std::string json = model_->RenderJson();
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  const auto& buses = parsed.fields().at("buses").list_value();
  ASSERT_EQ(buses.values_size(), 1);
  const auto& devices = buses.values(0).struct_value().fields().at("devices").list_value();
  ASSERT_EQ(devices.values_size(), 2);
  EXPECT_EQ(devices.values(1).struct_value().fields().at("state").string_value(), "bound");
  const auto& links = parsed.fields().at("links").list_value();
  ASSERT_EQ(links.values_size(), 1);
  EXPECT_EQ(links.values(0).struct_value().fields().at("status").string_value(), "active");
}

}  // namespace
}  // namespace umbra::model::testing
