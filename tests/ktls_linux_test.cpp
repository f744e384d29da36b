// SPDX-License-Identifier: MIT
// Splicing into and out of kTLS sockets: TCP sockets whose TLS records the kernel encrypts and
// decrypts (CONFIG_TLS; the kernel's Documentation/networking/tls.rst). There is no handshake here:
// both ends of one connection get the same fixed AES-GCM-128 keys, as a TLS library would hand
// them to the kernel after one, TLS_TX on the sending end and TLS_RX on the receiving end.
//
// Where the kernel refuses the "tls" ULP (ENOENT without CONFIG_TLS), each case says
// "SKIP: <reason>" in a WARN and asserts nothing, as the other Linux tests do for what a machine
// lacks; ctest reports those cases as skipped (SKIP_REGULAR_EXPRESSION, tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include <linux/tls.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "splice/splice.hpp"
#include "support.hpp"

#ifndef SOL_TLS
#define SOL_TLS 282  // include/linux/socket.h; glibc's <sys/socket.h> has it since 2.27
#endif
#ifndef TCP_ULP
#define TCP_ULP 31  // include/uapi/linux/tcp.h
#endif

namespace {

using crypto_info = tls12_crypto_info_aes_gcm_128;  // TLS 1.3 uses the same struct for AES-GCM-128

// What the kernel reads from setsockopt(SOL_TLS, TLS_TX or TLS_RX) for AES-GCM-128
// (include/uapi/linux/tls.h): version and cipher_type (two u16), then iv 8, key 16, salt 4 and
// rec_seq 8 bytes, no padding: 40 bytes, which the kernel checks as the option's length.
static_assert(SOL_TLS == 282 && TCP_ULP == 31 && TLS_TX == 1 && TLS_RX == 2);
static_assert(TLS_CIPHER_AES_GCM_128 == 51 && TLS_1_2_VERSION == 0x0303 && TLS_1_3_VERSION == 0x0304);
static_assert(sizeof(crypto_info) == 40);
static_assert(offsetof(crypto_info, iv) == 4 && offsetof(crypto_info, key) == 12 && offsetof(crypto_info, salt) == 28 &&
              offsetof(crypto_info, rec_seq) == 32);

constexpr unsigned char alert_record = 21;  // TLS content types (RFC 8446, 5.1)

/// Attaches the kernel's TLS ULP to the connected TCP socket fd (it must be ESTABLISHED): returns
/// 0, or the errno.
int attach_tls(int fd) { return ::setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == 0 ? 0 : errno; }

/// Returns why kTLS cannot be tried here, or "" when the kernel takes the ULP.
std::string ktls_missing() {
  const test::tcp_pair p = test::make_tcp();
  const int err = attach_tls(p.a.get());
  if (err == 0) return "";
  return "setsockopt(SOL_TCP, TCP_ULP, \"tls\") failed with " + std::string(std::strerror(err)) + " (errno " +
         std::to_string(err) + "): this kernel has no kTLS (CONFIG_TLS), so splicing into kTLS is not tested";
}

/// Fixed test keys for `version` (TLS_1_2_VERSION or TLS_1_3_VERSION); the record sequence starts
/// at 0 on both ends.
crypto_info test_keys(std::uint16_t version) {
  crypto_info c;
  std::memset(&c, 0, sizeof c);
  c.info.version = version;
  c.info.cipher_type = TLS_CIPHER_AES_GCM_128;
  for (std::size_t i = 0; i < sizeof c.key; ++i) c.key[i] = static_cast<unsigned char>(0x10 + i);
  for (std::size_t i = 0; i < sizeof c.iv; ++i) c.iv[i] = static_cast<unsigned char>(0xa0 + i);
  for (std::size_t i = 0; i < sizeof c.salt; ++i) c.salt[i] = static_cast<unsigned char>(0x50 + i);
  return c;
}

/// One TCP connection with kTLS in one direction: what is written to tx() leaves as TLS records,
/// and rx() decrypts them.
struct ktls_channel {
  test::tcp_pair p = test::make_tcp();
  int tx() const { return p.a.get(); }
  int rx() const { return p.b.get(); }
};

/// Puts kTLS on c: the ULP on both ends, then the same keys as TLS_TX on tx() and TLS_RX on rx().
/// Returns false, having said why, where the kernel refuses TLS 1.3 keys (a kernel with TLS 1.2
/// only); TLS 1.2 must work wherever the ULP does.
bool enable(ktls_channel& c, std::uint16_t version) {
  REQUIRE(attach_tls(c.tx()) == 0);
  REQUIRE(attach_tls(c.rx()) == 0);
  const crypto_info keys = test_keys(version);
  int err = ::setsockopt(c.tx(), SOL_TLS, TLS_TX, &keys, sizeof keys) == 0 ? 0 : errno;
  if (err == 0) err = ::setsockopt(c.rx(), SOL_TLS, TLS_RX, &keys, sizeof keys) == 0 ? 0 : errno;
  if (err != 0 && version == TLS_1_3_VERSION) {
    // Not "SKIP:": the TLS 1.2 run of the same case did run.
    WARN("TLS 1.3 not tested: setsockopt(SOL_TLS) with TLS 1.3 keys failed with " << std::strerror(err));
    return false;
  }
  REQUIRE(err == 0);
  return true;
}

/// Sends data as one record of TLS content type `type` through the kTLS TX socket fd, as a TLS
/// library sends an alert (tls.rst, "Send TLS control messages").
ssize_t send_record(int fd, unsigned char type, const std::string& data) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof type)] = {};
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_TLS;
  c->cmsg_type = TLS_SET_RECORD_TYPE;
  c->cmsg_len = CMSG_LEN(sizeof type);
  std::memcpy(CMSG_DATA(c), &type, sizeof type);
  msg.msg_controllen = c->cmsg_len;
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/// Receives one record from the kTLS RX socket fd with a control buffer, as a TLS library does:
/// its content type (-1 if the kernel gave none, which means application data) and its bytes.
std::pair<int, std::string> recv_record(int fd) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(unsigned char))] = {};
  char buf[1 << 14];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return {-1, "recvmsg: " + std::string(std::strerror(errno))};
  int type = -1;
  if (const cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
    type = *CMSG_DATA(c);
  return {type, std::string(buf, std::size_t(n))};
}

/// Options that keep a socket-to-socket copy on its pipe from the first byte to the last.
splice::options on_the_pipe() {
  splice::options o;
  o.splice_after = 0;
  return o;
}

}  // namespace

TEST_CASE("a socket spliced into a kTLS socket arrives exact through kTLS RX", "[ktls][tx]") {
  if (const std::string why = ktls_missing(); !why.empty()) {
    WARN("SKIP: " << why);
    return;
  }
  const std::uint16_t version = GENERATE(std::uint16_t(TLS_1_2_VERSION), std::uint16_t(TLS_1_3_VERSION));
  CAPTURE(version);
  ktls_channel enc;
  if (!enable(enc, version)) return;
  test::tcp_pair plain = test::make_tcp();  // src: plain TCP, so the route is socket -> pipe -> kTLS socket
  const std::string data = test::payload(1 << 20, 71);

  std::thread writer([&] {
    test::write_all(plain.a.get(), data);
    ::shutdown(plain.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(enc.rx(), data.size()); });  // read(2): kTLS decrypts
  const splice::result res = splice::copy(enc.tx(), plain.b.get(), 1 << 20);
  if (res.bytes < data.size()) {  // let the threads end; the checks below fail
    ::shutdown(enc.tx(), SHUT_WR);
    plain.b.reset();
  }
  writer.join();
  reader.join();

  CHECK_FALSE(res.error);
  CHECK(std::string(res.op).empty());
  CHECK(res.bytes == data.size());
  CHECK(res.unsent == 0);
  CHECK(res.spliced);  // splice moved the bytes into the kTLS socket, no user-space fallback
  CHECK(got.size() == data.size());
  CHECK((got == data));
}

TEST_CASE("a kTLS RX socket spliced into a socket gives the plaintext, exact", "[ktls][rx]") {
  if (const std::string why = ktls_missing(); !why.empty()) {
    WARN("SKIP: " << why);
    return;
  }
  const std::uint16_t version = GENERATE(std::uint16_t(TLS_1_2_VERSION), std::uint16_t(TLS_1_3_VERSION));
  CAPTURE(version);
  ktls_channel enc;
  if (!enable(enc, version)) return;
  test::tcp_pair plain = test::make_tcp();
  const std::string data = test::payload((1 << 20) + 4099, 72);  // not a whole number of records

  std::thread writer([&] {
    test::write_all(enc.tx(), data);  // send(2): kTLS encrypts
    ::shutdown(enc.tx(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(plain.b.get()); });
  splice::poll_poller poller;
  const splice::result res = splice::copy(plain.a.get(), enc.rx(), splice::no_limit, poller, on_the_pipe());
  ::shutdown(plain.a.get(), SHUT_WR);
  if (res.error) enc.p.b.reset();  // let the writer end; the checks below fail
  writer.join();
  reader.join();

  CHECK_FALSE(res.error);
  CHECK(res.bytes == data.size());
  CHECK(res.spliced);
  CHECK((got == data));
}

TEST_CASE("an alert record ends a copy out of kTLS RX with EIO from read, every byte before it delivered",
          "[ktls][rx][control]") {
  if (const std::string why = ktls_missing(); !why.empty()) {
    WARN("SKIP: " << why);
    return;
  }
  const std::uint16_t version = GENERATE(std::uint16_t(TLS_1_2_VERSION), std::uint16_t(TLS_1_3_VERSION));
  CAPTURE(version);
  ktls_channel enc;
  if (!enable(enc, version)) return;
  test::tcp_pair plain = test::make_tcp();
  const std::string before = test::payload(100000, 73), after = test::payload(50000, 74);
  const std::string alert("\x01\x00", 2);  // warning, close_notify: the kernel only carries it

  std::thread writer([&] {
    test::write_all(enc.tx(), before);
    send_record(enc.tx(), alert_record, alert);
    test::write_all(enc.tx(), after);
    ::shutdown(enc.tx(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(plain.b.get()); });
  splice::poll_poller poller;
  // The splice that meets the alert says EINVAL (tls_sw_splice_read: splice does not carry
  // control records) and leaves it queued; the copy goes on with read(2), which says EIO (a
  // control record and no control buffer to give its type in).
  const splice::result first = splice::copy(plain.a.get(), enc.rx(), splice::no_limit, poller, on_the_pipe());
  CHECK(first.error == std::errc::io_error);
  CHECK(std::string(first.op) == "read");
  CHECK(first.bytes == before.size());
  CHECK(first.unsent == 0);
  CHECK(first.spliced);
  // What a TLS library does next: recvmsg with a control buffer takes the record, type and all.
  const std::pair<int, std::string> record = first.error ? recv_record(enc.rx()) : std::pair<int, std::string>{};
  CHECK(record.first == alert_record);
  CHECK((record.second == alert));
  // Then the caller copies again, on the pipe from the first byte.
  const splice::result second = splice::copy(plain.a.get(), enc.rx(), splice::no_limit, poller, on_the_pipe());
  ::shutdown(plain.a.get(), SHUT_WR);
  if (second.error) enc.p.b.reset();
  writer.join();
  reader.join();

  CHECK_FALSE(second.error);
  CHECK(second.bytes == after.size());
  CHECK(second.spliced);
  CHECK((got == before + after));
}
