#include "src/stages/ssrf_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sluice {
namespace {

struct Ipv4Range {
  std::uint32_t base;
  int prefix;
};

constexpr std::uint32_t V4(std::uint32_t a, std::uint32_t b, std::uint32_t c,
                           std::uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr Ipv4Range kNonPublicIpv4[] = {
    {V4(0, 0, 0, 0), 8},    {V4(10, 0, 0, 0), 8},     {V4(100, 64, 0, 0), 10},
    {V4(127, 0, 0, 0), 8},  {V4(169, 254, 0, 0), 16}, {V4(172, 16, 0, 0), 12},
    {V4(192, 0, 0, 0), 24}, {V4(192, 168, 0, 0), 16}, {V4(198, 18, 0, 0), 15},
    {V4(224, 0, 0, 0), 4},  {V4(240, 0, 0, 0), 4},
};

std::uint32_t EmbeddedIpv4(const std::array<std::uint8_t, 16>& a, std::size_t offset) {
  return V4(a[offset], a[offset + 1], a[offset + 2], a[offset + 3]);
}

bool AllZero(const std::array<std::uint8_t, 16>& a, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    if (a[i] != 0) return false;
  }
  return true;
}

}  // namespace

bool IsNonPublicIpv4(std::uint32_t address) {
  for (const Ipv4Range& range : kNonPublicIpv4) {
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - range.prefix);
    if ((address & mask) == range.base) return true;
  }
  return false;
}

bool IsNonPublicIpv6(const std::array<std::uint8_t, 16>& a) {
  if (AllZero(a, 0, 10)) {
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, which covers :: and ::1).
    if (a[10] == 0xff && a[11] == 0xff) return IsNonPublicIpv4(EmbeddedIpv4(a, 12));
    if (a[10] == 0 && a[11] == 0) return true;
  }
  if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && AllZero(a, 4, 12)) {
    return IsNonPublicIpv4(EmbeddedIpv4(a, 12));  // NAT64 well-known prefix
  }
  if (a[0] == 0x20 && a[1] == 0x02) return IsNonPublicIpv4(EmbeddedIpv4(a, 2));  // 6to4
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;  // link-local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return true;  // site-local
  if ((a[0] & 0xfe) == 0xfc) return true;                  // unique local
  if (a[0] == 0xff) return true;                           // multicast
  return false;
}

bool IsNonPublicAddress(const sockaddr* address, socklen_t length) {
  if (address == nullptr) return true;
  if (address->sa_family == AF_INET &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in v4;
    std::memcpy(&v4, address, sizeof(v4));
    return IsNonPublicIpv4(ntohl(v4.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6 &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 v6;
    std::memcpy(&v6, address, sizeof(v6));
    std::array<std::uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &v6.sin6_addr, bytes.size());
    return IsNonPublicIpv6(bytes);
  }
  return true;
}

std::string AddressText(const sockaddr* address, socklen_t length) {
  if (address == nullptr) return "no address";
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in v4;
    std::memcpy(&v4, address, sizeof(v4));
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
    return text;
  }
  if (address->sa_family == AF_INET6 &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 v6;
    std::memcpy(&v6, address, sizeof(v6));
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
    return std::string("[") + text + "]";
  }
  return "family " + std::to_string(address->sa_family);
}

}  // namespace sluice
