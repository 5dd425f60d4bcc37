// The durable store's properties blob: a private on-disk format, decoded as
// untrusted bytes.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "core/message.h"
#include "durable_store_fixture.h"

namespace ferry::core::store_test {
namespace {




TEST(DurableStoreProperties, RoundTripKeepsBinaryDataAndUserPropertyOrder) {
  const Properties props = RichProperties();
  Result<Properties> back = DecodeMessageProperties(EncodeMessageProperties(props));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back.value(), props);
}

TEST(DurableStoreProperties, OnlyMessagePropertiesArePersisted) {
  Properties props;
  EXPECT_EQ(EncodeMessageProperties(props), "");
  props.topic_alias = 3;
  props.subscription_identifiers = {1};
  EXPECT_EQ(EncodeMessageProperties(props), "");
  Result<Properties> empty = DecodeMessageProperties("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.value(), Properties{});
}

TEST(DurableStoreProperties, EveryTruncationIsAnError) {
  const std::string blob = EncodeMessageProperties(RichProperties());
  for (size_t n = 1; n < blob.size(); ++n) {
    Result<Properties> r = DecodeMessageProperties(std::string_view(blob).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  }
}

TEST(DurableStoreProperties, BadHeaderOrTrailingBytesAreErrors) {
  std::string blob = EncodeMessageProperties(RichProperties());
  EXPECT_NE(DecodeMessageProperties("\x02\x01\x01").status().message().find("unknown format version 2"),
            std::string::npos);
  EXPECT_NE(DecodeMessageProperties("\x01\x40").status().message().find("unknown flags 0x40"),
            std::string::npos);
  EXPECT_NE(DecodeMessageProperties(blob + "z").status().message().find("1 trailing bytes"),
            std::string::npos);
}

TEST(DurableStoreProperties, HugeCountsAreRejectedBeforeAllocating) {
  // User properties flag, count 0xFFFFFFFF, and nothing after it.
  Result<Properties> r = DecodeMessageProperties(std::string("\x01\x10\xff\xff\xff\xff", 6));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("too large"), std::string::npos);
  // A length prefix larger than the blob.
  r =
      DecodeMessageProperties(std::string("\x01\x02\x7f\xff\xff\xff"
                                   "abc",
                                   9));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated content type"), std::string::npos);
}

}  // namespace
}  // namespace ferry::core::store_test
