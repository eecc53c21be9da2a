#include "src/stages/ssrf_guard.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>

namespace sluice {
namespace {

bool NonPublic(const std::string& text) {
  if (text.find(':') == std::string::npos) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text.c_str(), &v4.sin_addr), 1) << text;
    return IsNonPublicAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
  }
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr), 1) << text;
  return IsNonPublicAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6));
}

TEST(SsrfGuardTest, RefusesNonPublicIpv4) {
  for (const char* address :
       {"0.0.0.0", "10.1.2.3", "100.64.0.1", "127.0.0.1", "127.255.255.254",
        "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.168.1.1",
        "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"}) {
    EXPECT_TRUE(NonPublic(address)) << address;
  }
}

TEST(SsrfGuardTest, AllowsPublicIpv4) {
  for (const char* address :
       {"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.15.255.255", "172.32.0.1",
        "100.128.0.1", "169.253.1.1", "203.0.113.5"}) {
    EXPECT_FALSE(NonPublic(address)) << address;
  }
}

TEST(SsrfGuardTest, RefusesNonPublicIpv6IncludingEmbeddedIpv4) {
  for (const char* address : {"::", "::1", "fe80::1", "fd00::1", "fc00::1", "fec0::1",
                              "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                              "::10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:c0a8:0101::1"}) {
    EXPECT_TRUE(NonPublic(address)) << address;
  }
}

TEST(SsrfGuardTest, AllowsPublicIpv6) {
  for (const char* address :
       {"2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
        "64:ff9b::808:808", "2002:0808:0808::1"}) {
    EXPECT_FALSE(NonPublic(address)) << address;
  }
}

TEST(SsrfGuardTest, RefusesOtherFamiliesAndNull) {
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_TRUE(IsNonPublicAddress(reinterpret_cast<const sockaddr*>(&unix_address),
                                 sizeof(unix_address)));
  EXPECT_TRUE(IsNonPublicAddress(nullptr, 0));
  // A truncated length is not read past.
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  EXPECT_TRUE(IsNonPublicAddress(reinterpret_cast<const sockaddr*>(&v4), 4));
}

TEST(SsrfGuardTest, AddressText) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "169.254.169.254", &v4.sin_addr);
  EXPECT_EQ(AddressText(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4)),
            "169.254.169.254");
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::1", &v6.sin6_addr);
  EXPECT_EQ(AddressText(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6)), "[::1]");
}

}  // namespace
}  // namespace sluice
