#include <gtest/gtest.h>

#include "runtime/model/link_flags.h"

namespace umbra::model {
namespace {

void ExpectInvalid(LinkFlags flags, const std::string& fragment) {
  auto ok = ValidateLinkFlags(flags);
  ASSERT_FALSE(ok) << flags.ToString() << " was accepted";
  EXPECT_EQ(ok.error().code, Errc::kInvalidArgument);
  EXPECT_NE(ok.error().message.find(fragment), std::string::npos) << ok.error().message;
}

TEST(LinkFlags, ValidCombinationsAreAccepted) {
  for (LinkFlags f :
       {LinkFlags(), LinkFlags(LinkFlag::kManaged), LinkFlags(LinkFlag::kStateless),
        LinkFlag::kManaged | LinkFlag::kOptional, LinkFlag::kManaged | LinkFlag::kAutoRemoveConsumer,
        LinkFlag::kManaged | LinkFlag::kAutoRemoveSupplier, LinkFlag::kAutoProbeConsumer | LinkFlag::kOptional,
        LinkFlag::kOptional | LinkFlag::kAutoRemoveSupplier}) {
    EXPECT_TRUE(ValidateLinkFlags(f)) << f.ToString();
  }
}

TEST(LinkFlags, ManagedIsTheDefault) {
  EXPECT_TRUE(LinkFlags().managed());
  EXPECT_FALSE(LinkFlags(LinkFlag::kStateless).managed());
  EXPECT_EQ(LinkFlags().ToString(), "managed");
}

TEST(LinkFlags, StatelessAndManagedTogetherIsInvalid) {
  ExpectInvalid(LinkFlag::kStateless | LinkFlag::kManaged, "either stateless or managed");
}

TEST(LinkFlags, StatelessWithManagedOnlyFlagsIsInvalid) {
  ExpectInvalid(LinkFlag::kStateless | LinkFlag::kAutoRemoveConsumer, "auto-remove-consumer needs a managed link");
  ExpectInvalid(LinkFlag::kStateless | LinkFlag::kAutoRemoveSupplier, "auto-remove-supplier needs a managed link");
  ExpectInvalid(LinkFlag::kStateless | LinkFlag::kAutoProbeConsumer, "auto-probe-consumer needs a managed link");
  ExpectInvalid(LinkFlag::kStateless | LinkFlag::kOptional, "optional needs a managed link");
}

TEST(LinkFlags, BothAutoRemoveFlagsIsInvalid) {
  ExpectInvalid(LinkFlag::kAutoRemoveConsumer | LinkFlag::kAutoRemoveSupplier, "not both");
}

TEST(LinkFlags, AutoProbeWithAutoRemoveIsInvalid) {
  ExpectInvalid(LinkFlag::kAutoProbeConsumer | LinkFlag::kAutoRemoveConsumer, "cannot be auto-removed");
  ExpectInvalid(LinkFlag::kAutoProbeConsumer | LinkFlag::kAutoRemoveSupplier, "cannot be auto-removed");
}

TEST(LinkFlags, UnknownBitsAreInvalid) { ExpectInvalid(LinkFlags::FromBits(1u << 9), "unknown link flag bits 0x200"); }

TEST(LinkFlags, ParseAndPrintRoundTrip) {
  auto f = LinkFlags::Parse("managed, optional,auto-probe-consumer");
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_TRUE(f->optional());
  EXPECT_TRUE(f->has(LinkFlag::kAutoProbeConsumer));
  EXPECT_EQ(f->ToString(), "managed,auto-probe-consumer,optional");
  auto bad = LinkFlags::Parse("managed,optonal");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown link flag \"optonal\""), std::string::npos);
}

}  // namespace
}  // namespace umbra::model
