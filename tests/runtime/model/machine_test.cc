// Machine files: the examples load; errors name the file, line and field.
#include <gtest/gtest.h>

#include "runtime/model/machine.h"
#include "tests/runtime/model/model_test_util.h"
#include "umbra/machine.pb.h"

namespace umbra::model::testing {
namespace {

std::string Example(const std::string& name) { return std::string(UMBRA_SOURCE_DIR) + "/examples/machines/" + name; }

BackendFactory SyncBackends() {
  return [](Model& m, const DriverSpec&) {
    return std::make_shared<InProcessBackend>(m, InProcessBackend::Completion::kSynchronous);
  };
}

std::string ParseError(std::string_view content, std::string_view file) {
  auto r = ParseMachine(content, file);
  if (r) return "(parsed)";
  EXPECT_EQ(r.error().code, Errc::kParse);
  return r.error().message;
}

TEST(Machine, TheSmallExampleLoadsAndBinds) {
  auto m = LoadMachine(Example("small.textproto"));
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ((*m)->settings().restart_budget().max_restarts(), 3u);
  auto model = BuildModel(**m, SyncBackends());
  ASSERT_TRUE(model) << model.error().ToString();
  EXPECT_EQ((*model)->Read("/class/net/nic0/state").value(), "bound");
  EXPECT_EQ((*model)->Read("/class/block/disk0/driver").value(), "blk");
}

TEST(Machine, TheLinksExampleProbesInDependencyOrder) {
  auto m = LoadMachine(Example("links.textproto"));
  ASSERT_TRUE(m) << m.error().ToString();
  auto model = BuildModel(**m, SyncBackends()).value();
  for (auto n : {"clk0", "phy0", "nic0", "snd0", "netcon0"}) {
    EXPECT_EQ(model->device_state(n).value(), DeviceState::kBound) << n;
  }
  EXPECT_EQ(model->Read("/links/phy0--nic0/flags").value(), "managed,optional");
  EXPECT_EQ(model->link_count(), 4u);
  std::string tree = model->RenderText();
  EXPECT_NE(tree.find("supplier phy0  [active]  managed,optional"), std::string::npos) << tree;
}

TEST(Machine, TheJsonExampleLoads) {
  auto m = LoadMachine(Example("links.json"));
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ((*m)->devices(1).device_class(), "net");
  auto model = BuildModel(**m, SyncBackends()).value();
  EXPECT_EQ(model->Read("/links/clk0--nic0/status").value(), "active");
}

TEST(Machine, AMissingFileSaysWhich) {
  auto r = LoadMachine("/nonexistent/m.textproto");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/m.textproto"), std::string::npos);
}

TEST(Machine, TextSyntaxErrorsNameLineAndColumn) {
  std::string text = "buses { name: \"platform\" }\ndevices {\n  name: \"nic0\"\n  bus \"platform\"\n}\n";
  std::string err = ParseError(text, "m.textproto");
  EXPECT_TRUE(err.starts_with("m.textproto:4:")) << err;
}

TEST(Machine, TextUnknownFieldNamesTheField) {
  std::string text = "buses { name: \"platform\" }\ndevices { nmae: \"nic0\" }\n";
  std::string err = ParseError(text, "m.pbtxt");
  EXPECT_TRUE(err.starts_with("m.pbtxt:2:")) << err;
  EXPECT_NE(err.find("nmae"), std::string::npos) << err;
}

TEST(Machine, TextSemanticErrorsNameLineAndFieldPath) {
  std::string text = "buses { name: \"platform\" }\n"
                     "devices { name: \"nic0\" bus: \"platform\" }\n"
                     "devices {\n"
                     "  name: \"disk0\"\n"
                     "  bus: \"pcie\"\n"
                     "}\n";
  EXPECT_EQ(ParseError(text, "m.textproto"), "m.textproto:5:3: devices[1].bus: unknown bus \"pcie\"");
}

TEST(Machine, DuplicateNamesAreRefused) {
  std::string text = "buses { name: \"p\" }\ndevices { name: \"a\" bus: \"p\" }\ndevices { name: \"a\" bus: \"p\" }\n";
  EXPECT_EQ(ParseError(text, "m.textproto"), "m.textproto:3:11: devices[1].name: duplicate device \"a\"");
}

TEST(Machine, LinkErrorsNameTheLink) {
  std::string base = "buses { name: \"p\" }\n"
                     "devices { name: \"a\" bus: \"p\" }\n"
                     "devices { name: \"b\" bus: \"p\" }\n"
                     "devices { name: \"c\" bus: \"p\" }\n"
                     "links { consumer: \"a\" supplier: \"b\" }\n"
                     "links { consumer: \"b\" supplier: \"c\" }\n";
  EXPECT_EQ(ParseError(base + "links { consumer: \"c\" supplier: \"a\" }\n", "m.textproto"),
            "m.textproto:7:1: links[2]: link c -> a would close a cycle: c -> a -> b -> c");
  EXPECT_EQ(ParseError(base + "links { consumer: \"c\" supplier: \"zz\" }\n", "m.textproto"),
            "m.textproto:7:23: links[2].supplier: unknown device \"zz\"");
  std::string bad_flag =
      ParseError(base + "links { consumer: \"c\" supplier: \"a\" flags: \"optonal\" }\n", "m.textproto");
  EXPECT_TRUE(bad_flag.starts_with("m.textproto:7:")) << bad_flag;
  EXPECT_NE(bad_flag.find("links[2].flags[0]: unknown link flag \"optonal\""), std::string::npos) << bad_flag;
  EXPECT_EQ(ParseError(base + "links { consumer: \"c\" supplier: \"a\" flags: \"stateless\" flags: \"optional\" }\n",
                       "m.textproto"),
            "m.textproto:7:37: links[2].flags: invalid link flags stateless,optional: optional needs a managed link "
            "(the model does not track a stateless one)");
}

TEST(Machine, JsonSyntaxErrorsNameLineAndColumn) {
  std::string json = "{\n  \"buses\": [ { \"name\": \"p\" } ],\n  \"devices\": [ { \"name\" \"a\" } ]\n}\n";
  std::string err = ParseError(json, "m.json");
  EXPECT_EQ(err, "m.json:3:25: expected ':' after \"name\"");
}

TEST(Machine, JsonUnknownFieldNamesTheField) {
  std::string json = "{\n  \"buses\": [ { \"name\": \"p\" } ],\n  \"devices\": [\n    { \"nmae\": \"a\" }\n  ]\n}\n";
  EXPECT_EQ(ParseError(json, "m.json"), "m.json:4:7: devices[0].nmae: Cannot find field.");
}

TEST(Machine, JsonSemanticErrorsNameLineAndFieldPath) {
  std::string json =
      "{\n  \"buses\": [ { \"name\": \"p\" } ],\n  \"devices\": [\n    { \"name\": \"a\", \"bus\": \"q\" }\n  ]\n}\n";
  EXPECT_EQ(ParseError(json, "m.json"), "m.json:4:20: devices[0].bus: unknown bus \"q\"");
}

TEST(Machine, FormatIsDetectedByContentWithoutAnExtension) {
  EXPECT_TRUE(ParseMachine("{ \"buses\": [ { \"name\": \"p\" } ] }", "machine"));
  EXPECT_TRUE(ParseMachine("buses { name: \"p\" }", "machine"));
}

}  // namespace
}  // namespace umbra::model::testing
