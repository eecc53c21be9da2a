// The address rule behind DESIGN.md guarantee 6: by default sluice contacts only
// public unicast addresses.
//
// The fetch stage applies it to the address of every socket it is about to connect
// (curl's open-socket callback), so that it holds for the address actually used:
// after DNS, after every redirect, whatever the URL said. Refused ranges:
//   IPv4: 0.0.0.0/8 (this network), 10/8, 172.16/12, 192.168/16 (private),
//         100.64/10 (carrier-grade NAT), 127/8 (loopback), 169.254/16 (link-local,
//         cloud metadata endpoints), 192.0.0/24 (protocol assignments),
//         198.18/15 (benchmarking), 224/4 (multicast), 240/4 (reserved, broadcast).
//   IPv6: :: and ::1, fe80::/10 (link-local), fc00::/7 (unique local),
//         fec0::/10 (old site-local), ff00::/8 (multicast), and the IPv4 ranges
//         above when embedded: ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible),
//         64:ff9b::/96 (NAT64), 2002::/16 (6to4).
//
// Pure functions; thread-safe.
#ifndef SLUICE_STAGES_SSRF_GUARD_H_
#define SLUICE_STAGES_SSRF_GUARD_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

namespace sluice {

// True if the IPv4 address (host byte order) is in a refused range.
bool IsNonPublicIpv4(std::uint32_t address);

// True if the IPv6 address (network byte order, 16 bytes) is in a refused range.
bool IsNonPublicIpv6(const std::array<std::uint8_t, 16>& address);

// True if `address` may not be contacted by default. Families other than IPv4 and
// IPv6 (e.g. Unix sockets) are refused too.
bool IsNonPublicAddress(const sockaddr* address, socklen_t length);

// "1.2.3.4", "[::1]", or "family N" for other families: for messages.
std::string AddressText(const sockaddr* address, socklen_t length);

}  // namespace sluice

#endif  // SLUICE_STAGES_SSRF_GUARD_H_
