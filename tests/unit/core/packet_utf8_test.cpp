// IsValidMqttUtf8: well-formed UTF-8 without U+0000 or surrogates
// [MQTT-1.5.4-1] [MQTT-1.5.4-2], on both the ASCII fast path and the slow path.

#include <gtest/gtest.h>

#include <string>

#include "core/packet.h"

namespace ferry::core {
namespace {

TEST(MqttUtf8, EmptyStringIsValid) { EXPECT_TRUE(IsValidMqttUtf8("")); }

TEST(MqttUtf8, AsciiOfEveryLengthIsValid) {
  std::string s;
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(IsValidMqttUtf8(s)) << i;
    s.push_back(static_cast<char>('a' + i % 26));
  }
}

TEST(MqttUtf8, NulIsInvalidAtEveryPosition) {  // [MQTT-1.5.4-2]
  for (size_t len = 1; len < 24; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      std::string s(len, 'x');
      s[pos] = '\0';
      EXPECT_FALSE(IsValidMqttUtf8(s)) << "length " << len << " position " << pos;
    }
  }
}

TEST(MqttUtf8, MultiByteCharactersAreValid) {
  EXPECT_TRUE(IsValidMqttUtf8("\xC3\xA9"));          // U+00E9
  EXPECT_TRUE(IsValidMqttUtf8("\xE2\x82\xAC"));      // U+20AC
  EXPECT_TRUE(IsValidMqttUtf8("\xF0\x9F\x98\x80"));  // U+1F600
  EXPECT_TRUE(IsValidMqttUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidMqttUtf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(IsValidMqttUtf8("\xEE\x80\x80"));      // U+E000, just above them
}

TEST(MqttUtf8, ByteOrderMarkIsKept) {  // [MQTT-1.5.4-3]
  EXPECT_TRUE(
      IsValidMqttUtf8("\xEF\xBB\xBF"
                      "abc"));
}

TEST(MqttUtf8, NonAsciiAfterALongAsciiRunIsChecked) {
  EXPECT_TRUE(IsValidMqttUtf8("sensors/building-1/temp/\xC3\xA9t\xC3\xA9"));
  EXPECT_FALSE(IsValidMqttUtf8("sensors/building-1/temp/\xC3"));
  EXPECT_FALSE(IsValidMqttUtf8("sensors/building-1/\xFFtemperature"));
}

TEST(MqttUtf8, SurrogatesAreInvalid) {            // [MQTT-1.5.4-1]
  EXPECT_FALSE(IsValidMqttUtf8("\xED\xA0\x80"));  // U+D800
  EXPECT_FALSE(IsValidMqttUtf8("\xED\xBF\xBF"));  // U+DFFF
}

TEST(MqttUtf8, OverlongEncodingsAreInvalid) {
  EXPECT_FALSE(IsValidMqttUtf8("\xC0\xAF"));  // '/' in two bytes
  EXPECT_FALSE(IsValidMqttUtf8("\xC0\x80"));  // U+0000 in two bytes
  EXPECT_FALSE(IsValidMqttUtf8("\xC1\xBF"));
  EXPECT_FALSE(IsValidMqttUtf8("\xE0\x80\xAF"));      // three bytes
  EXPECT_FALSE(IsValidMqttUtf8("\xF0\x80\x80\xAF"));  // four bytes
}

TEST(MqttUtf8, CodePointsAboveU10FFFFAreInvalid) {
  EXPECT_FALSE(IsValidMqttUtf8("\xF4\x90\x80\x80"));
  EXPECT_FALSE(IsValidMqttUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidMqttUtf8("\xFF"));
}

TEST(MqttUtf8, TruncatedSequencesAreInvalid) {
  EXPECT_FALSE(IsValidMqttUtf8("\xC3"));
  EXPECT_FALSE(IsValidMqttUtf8("\xE2\x82"));
  EXPECT_FALSE(IsValidMqttUtf8("\xF0\x9F\x98"));
  EXPECT_FALSE(
      IsValidMqttUtf8("a\xE2\x82"
                      "b"));
}

TEST(MqttUtf8, LoneContinuationByteIsInvalid) {
  EXPECT_FALSE(IsValidMqttUtf8("\x80"));
  EXPECT_FALSE(IsValidMqttUtf8("abc\xBF"));
}

}  // namespace
}  // namespace ferry::core
