#include <gtest/gtest.h>

#include "flexgen/md5.h"

TEST(Md5, Rfc1321TestSuite) {
  EXPECT_EQ(flexgen::md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(flexgen::md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(flexgen::md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(flexgen::md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(flexgen::md5_hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(flexgen::md5_hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(flexgen::md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5, PaddingBoundaries) {
  // Lengths around the 56- and 64-byte padding edges (values from coreutils md5sum).
  EXPECT_EQ(flexgen::md5_hex(std::string(55, 'x')), "04364420e25c512fd958a70738aa8f72");
  EXPECT_EQ(flexgen::md5_hex(std::string(56, 'x')), "668a72d5ba17f08e62dabcafad6db14b");
  EXPECT_EQ(flexgen::md5_hex(std::string(64, 'x')), "c1bb4f81d892b2d57947682aeb252456");
  EXPECT_EQ(flexgen::md5_hex(std::string(1000, 'x')), "398533d48111e9f664b1f64cb10c4b63");
  EXPECT_EQ(flexgen::md5_hex("what currency does japan use?"), "f96d1c99939054611f8245e50e163bad");
}
