#include "proxy/sniff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::proxy {
namespace {

struct SniffCase {
  std::string first_bytes;
  Protocol want;
};

const std::vector<SniffCase> kSniff = {
    {"", Protocol::kNeedMore},
    {std::string("\x04", 1), Protocol::kSocks4},
    {std::string("\x04\x01\x00\x50", 4), Protocol::kSocks4},
    {std::string("\x05", 1), Protocol::kSocks5},
    {std::string("\x05\x01\x00", 3), Protocol::kSocks5},
    {"C", Protocol::kHttp},
    {"CONNECT example.com:443 HTTP/1.1\r\n", Protocol::kHttp},
    {"GET http://example.com/ HTTP/1.1\r\n", Protocol::kHttp},
    {"POST", Protocol::kHttp},
    {"get / HTTP/1.1", Protocol::kHttp},  // not a valid method, but the 400 helps a person
    {std::string("\x16\x03\x01\x02\x00", 5), Protocol::kUnknown},  // a TLS ClientHello
    {std::string("\x00", 1), Protocol::kUnknown},
    {std::string("\x01", 1), Protocol::kUnknown},
    {std::string("\xff", 1), Protocol::kUnknown},
    {" GET", Protocol::kUnknown},
    {"\r\nGET", Protocol::kUnknown},
    {"1080", Protocol::kUnknown},
    {"{\"json\":1}", Protocol::kUnknown},
};

TEST(ProxySniff, TellsTheProtocolsApartByTheFirstByte) {
  for (const SniffCase& c : kSniff) {
    EXPECT_EQ(Sniff(c.first_bytes), c.want)
        << "\"" << c.first_bytes << "\" sniffed as " << ProtocolName(Sniff(c.first_bytes));
  }
}

TEST(ProxySniff, NeedsNoMoreThanItsDeclaredBytes) {
  for (const SniffCase& c : kSniff) {
    const std::string prefix = c.first_bytes.substr(0, kSniffBytes);
    EXPECT_EQ(Sniff(prefix), c.want);
  }
}

TEST(ProxySniff, NamesEveryProtocol) {
  EXPECT_EQ(ProtocolName(Protocol::kSocks4), "SOCKS4");
  EXPECT_EQ(ProtocolName(Protocol::kSocks5), "SOCKS5");
  EXPECT_EQ(ProtocolName(Protocol::kHttp), "HTTP");
  EXPECT_EQ(ProtocolName(Protocol::kUnknown), "unknown");
  EXPECT_EQ(ProtocolName(Protocol::kNeedMore), "undecided");
}

}  // namespace
}  // namespace tether::proxy
