// SPDX-License-Identifier: MIT
// file_server: a small static HTTP/1.1 file server. GET and HEAD answer with a file's bytes,
// moved by splice::copy from the file to the socket; PUT stores a request body, moved by
// splice::copy from the socket to a file, and answers 201. Keep-alive and pipelined requests,
// Content-Length framing, nothing outside ROOT_DIR (no "..", no symlink anywhere on the path).
//   file_server LISTEN_HOST:PORT ROOT_DIR [--userspace] [--idle-timeout SECONDS] [--drain-timeout SECONDS]
//               [--no-openat2] [--no-msg-more] [--small-body BYTES]
// A thread per connection over blocking sockets: splice::copy waits inside the system calls, and
// each request reads as straight-line code. An idle or stalled client is cut after --idle-timeout
// (60 s) by SO_RCVTIMEO/SO_SNDTIMEO and the copies' poller deadline.
// SIGTERM or SIGINT stops it gracefully: the listener closes at once (what was queued is taken
// first), a request under way is answered whole with "Connection: close", a connection waiting for
// its next request ends, and the server exits when the last one has: 0, or 1 when --drain-timeout
// (30 s) or a second signal cut some (their sockets shut down, "cut by drain" in their log line).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <splice/splice.hpp>

#include "beneath.hpp"
#include "net.hpp"

namespace {

struct server_settings {
  std::string listen, root;
  bool userspace = false;
  bool openat2 = true;    // --no-openat2 forces the per-component walk (for tests)
  bool msg_more = true;   // --no-msg-more sends the response head without MSG_MORE (for measuring)
  std::uint64_t small_body = 64 << 10;  // --small-body: a body up to this size goes out with its head in one send
  int idle_timeout_s = 60;
  int drain_timeout_s = 30;
};

[[noreturn]] void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s LISTEN_HOST:PORT ROOT_DIR [--userspace] [--idle-timeout SECONDS] [--drain-timeout SECONDS] "
               "[--no-openat2] [--no-msg-more] [--small-body BYTES]\n",
               prog);
  std::exit(2);
}

server_settings parse(int argc, char** argv) {
  server_settings s;
  if (argc < 3) usage(argv[0]);
  s.listen = argv[1];
  s.root = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--userspace") s.userspace = true;
    else if (a == "--idle-timeout" && i + 1 < argc) s.idle_timeout_s = std::max(1, std::atoi(argv[++i]));
    else if (a == "--drain-timeout" && i + 1 < argc) s.drain_timeout_s = std::max(0, std::atoi(argv[++i]));
    else if (a == "--no-openat2") s.openat2 = false;
    else if (a == "--no-msg-more") s.msg_more = false;
    else if (a == "--small-body" && i + 1 < argc) s.small_body = std::strtoull(argv[++i], nullptr, 10);
    else usage(argv[0]);
  }
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 411: return "Length Required";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Internal Server Error";
  }
}

/// status_for maps an errno from opening or creating a path to the answer.
int status_for(int err) {
  switch (err) {
    case ENOENT: case ENOTDIR: return 404;
    case ELOOP: case EXDEV: case EACCES: case EPERM: case EISDIR: return 403;  // a symlink, or outside the root
    case ENAMETOOLONG: return 400;
    case ENOSPC: case EDQUOT: case EFBIG: return 507;
    default: return 500;
  }
}

/// request is one parsed request head.
struct request {
  std::string_view method, target;
  bool http11 = true;
  bool keep_alive = true;
  bool has_length = false, chunked = false, expect_continue = false;
  std::uint64_t length = 0;
};

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr("!#$%&'*+-.^_`|~", c)) return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// parse_request_line checks "METHOD SP TARGET SP HTTP/1.x" and returns the status to answer with
// when it is not acceptable, or 0.
int parse_request_line(std::string_view line, request& req) {
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == line.npos ? line.npos : line.find(' ', sp1 + 1);
  if (sp2 == line.npos) return 400;
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(req.method) || req.target.empty() || req.target.front() != '/') return 400;
  for (char c : req.target)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return 400;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7])))
    return 400;
  if (version[5] != '1') return 505;
  req.http11 = version[7] != '0';
  req.keep_alive = req.http11;
  return 0;
}

// parse_header takes one "name: value" line; returns the status to answer with, or 0.
int parse_header(std::string_view line, request& req) {
  const auto colon = line.find(':');
  if (colon == line.npos || !is_token(line.substr(0, colon))) return 400;
  const std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
  if (iequals(name, "content-length")) {
    if (value.empty() || value.size() > 18) return 400;
    std::uint64_t n = 0;
    for (char c : value) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return 400;
      n = n * 10 + std::uint64_t(c - '0');
    }
    if (req.has_length && n != req.length) return 400;  // two lengths that disagree: smuggling
    req.has_length = true;
    req.length = n;
  } else if (iequals(name, "transfer-encoding")) {
    req.chunked = true;  // not supported: answered 501, since the body cannot be framed
  } else if (iequals(name, "connection")) {
    for (std::size_t i = 0; i <= value.size();) {
      const std::size_t j = std::min(value.find(',', i), value.size());
      const std::string_view t = trim(value.substr(i, j - i));
      if (iequals(t, "close")) req.keep_alive = false;
      else if (iequals(t, "keep-alive")) req.keep_alive = true;
      i = j + 1;
    }
  } else if (iequals(name, "expect")) {
    req.expect_continue = iequals(value, "100-continue");
  }
  return 0;
}

// decode_target turns the target's path into components; returns 400 for a bad escape, a ".."
// component or a NUL, else 0.
int decode_target(std::string_view target, std::vector<std::string>& parts) {
  target = target.substr(0, target.find_first_of("?#"));
  std::string path;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      path += target[i];
      continue;
    }
    if (i + 2 >= target.size() || !std::isxdigit(static_cast<unsigned char>(target[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(target[i + 2])))
      return 400;
    path += char(std::stoi(std::string(target.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return example::split_path(path, parts) ? 0 : 400;
}

bool send_all(int fd, const char* p, std::size_t n, int flags = 0) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, flags | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= std::size_t(w);
  }
  return true;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= std::size_t(w);
  }
  return true;
}

// head_of writes a response head into h, replacing what it held (a connection reuses one string,
// so a response allocates nothing once it has grown). An HTTP/1.0 client keeps the connection only
// when told so.
void head_of(int status, std::uint64_t length, const request& req, bool keep_alive, std::string& h) {
  h.assign("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason(status));
  h.append("\r\nServer: splice-file-server\r\nContent-Length: ").append(std::to_string(length)).append("\r\n");
  if (status == 200) h += "Content-Type: application/octet-stream\r\n";
  h += !keep_alive ? "Connection: close\r\n\r\n" : req.http11 ? "\r\n" : "Connection: keep-alive\r\n\r\n";
}

std::atomic<unsigned long> temp_names{0};

/// connection serves one client's requests in order until it leaves, fails or asks to close.
/// Invariant: buf_[begin_, end_) holds bytes received and not yet consumed, which may be the
/// start of the next request, or of a PUT's body.
class connection {
 public:
  connection(int fd, const server_settings& cfg, const example::beneath& paths, const splice::drain& drain)
      : fd_(fd), cfg_(cfg), paths_(paths), drain_(drain), poller_(std::chrono::seconds(cfg.idle_timeout_s)),
        buf_(16 << 10) {
    opt_.userspace = cfg.userspace;
    opt_.sigpipe_ignored = true;  // main() ignores SIGPIPE, as nginx does
  }

  /// Serves requests until the connection ends; returns how it ended.
  std::string run() {
    for (;;) {
      request req;
      std::size_t head_len = 0;
      const int status = read_head(req, head_len);
      if (status < 0) return how_;
      if (status > 0) {  // a request we cannot parse: answer it and close, the stream has lost its framing
        reply(status, req, true);
        return "answered " + std::to_string(status);
      }
      ++requests_;
      begin_ += head_len;
      if (!handle(req)) return how_;
    }
  }

  unsigned long requests() const { return requests_; }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t received() const { return received_; }
  bool spliced() const { return spliced_; }

 private:
  // read_head waits until buf_ holds a whole request head, parses it into req and sets len to its
  // size. Returns 0, a status to answer with, or -1 when the client left, idled out or failed.
  // A bad request line is answered as soon as its line has arrived.
  int read_head(request& req, std::size_t& len) {
    bool line_ok = false;
    for (;;) {
      std::string_view have(buf_.data() + begin_, end_ - begin_);
      while (have.substr(0, 2) == "\r\n") have.remove_prefix(2), begin_ += 2;  // tolerated before a request
      const auto eol = have.find("\r\n");
      if (!line_ok && eol != have.npos) {
        if (const int s = parse_request_line(have.substr(0, eol), req)) return s;
        line_ok = true;
      } else if (!line_ok && have.find('\n') != have.npos) {
        return 400;  // a bare LF ends the line
      }
      const auto end = have.find("\r\n\r\n");
      if (end != have.npos) {
        for (std::size_t at = eol + 2; at < end + 2;) {
          const std::size_t next = have.find("\r\n", at);
          if (const int s = parse_header(have.substr(at, next - at), req)) return s;
          at = next + 2;
        }
        len = end + 4;
        return 0;
      }
      if (begin_ > 0) {  // make room: move what is left to the front
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == buf_.size()) return 431;
      if (end_ == begin_ && !next_request()) return how_ = "ok, drained", -1;
      const ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (n > 0) {
        end_ += std::size_t(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        how_ = n == 0 ? (end_ > begin_ ? "eof inside a request" : "ok")
                      : (errno == EAGAIN || errno == EWOULDBLOCK) ? "idle timeout" : std::strerror(errno);
        return -1;
      }
    }
  }

  // next_request waits, with nothing of a request received, until its first bytes come (true), or
  // the idle timeout passes (true: the recv that follows says so) or a graceful stop has begun
  // (false: the connection ends between requests).
  bool next_request() {
    if (drain_.requested()) return false;
    pollfd p[2] = {{fd_, POLLIN, 0}, {drain_.fd(), POLLIN, 0}};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(cfg_.idle_timeout_s);
    for (;;) {
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      const int n = ::poll(p, drain_.fd() < 0 ? 1 : 2, int(std::max<long long>(ms, 0)));
      if (n < 0 && errno == EINTR) continue;
      return !(n > 0 && p[1].revents);
    }
  }

  // keep says whether the connection may go on after answering req: not once a drain has begun.
  bool keep(const request& req) const { return req.keep_alive && !drain_.requested(); }

  bool handle(const request& req) {
    if (req.chunked) return reply(501, req, true);
    if (req.method == "PUT") return put(req);
    if (req.method != "GET" && req.method != "HEAD") return reply(501, req, req.length > 0);
    if (req.length > 0) return reply(400, req, true);  // a GET with a body we will not read
    return get(req, req.method == "HEAD");
  }

  // reply sends a status with a short text body (none for HEAD) and says whether to go on.
  bool reply(int status, const request& req, bool close) {
    const bool keep = this->keep(req) && !close;
    const std::string text = std::to_string(status) + " " + reason(status) + "\n";
    head_of(status, text.size(), req, keep, out_);
    if (req.method != "HEAD") out_ += text;
    if (!send_all(fd_, out_.data(), out_.size())) return ended("send failed");
    return keep || ended("answered " + std::to_string(status));
  }

  bool ended(std::string why) {
    how_ = std::move(why);
    return false;
  }

  bool get(const request& req, bool head_only) {
    std::vector<std::string> parts;
    if (const int s = decode_target(req.target, parts)) return reply(s, req, false);
    if (parts.empty()) return reply(403, req, false);
    // O_NONBLOCK, so that a FIFO under the root cannot hold the open; cleared below for a file
    // that goes to splice::copy (a read of a regular file ignores it).
    splice::unique_fd file(paths_.open(parts, O_RDONLY | O_NONBLOCK));
    if (!file) return reply(status_for(errno), req, false);
    struct stat st {};
    if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return reply(403, req, false);
    const std::uint64_t size = std::uint64_t(st.st_size);
    const bool body = !head_only && size > 0;
    const bool go_on = keep(req);
    head_of(200, size, req, go_on, out_);
    if (body && size <= cfg_.small_body) return send_small(go_on, file.get(), size);
    if (body && ::fcntl(file.get(), F_SETFL, 0) != 0) return reply(403, req, false);
    // MSG_MORE holds the head back until the body's first bytes join it in one segment.
    if (!send_all(fd_, out_.data(), out_.size(), body && cfg_.msg_more ? MSG_MORE : 0)) return ended("send failed");
    if (!body) return go_on || ended("ok");
    const splice::result r = splice::copy(fd_, file.get(), size, poller_, opt_);
    sent_ += r.bytes;
    spliced_ |= r.spliced;
    if (r.error) return ended(std::string(r.op) + ": " + r.error.message());
    if (r.bytes != size) return ended("file shrank while sent");  // the framing is broken: close
    return go_on || ended("ok");
  }

  // send_small reads a body of at most small_body bytes behind the head already in out_ and sends
  // both with one send: per response recv, open, fstat, read, send and close, 6 system calls where
  // the head's send and splice::copy (which learns both fds, then sendfile) made 15. Up to that size
  // the calls saved cost more than the copy that sendfile avoids (measured at 1 KiB and 64 KiB).
  bool send_small(bool go_on, int file, std::uint64_t size) {
    const std::size_t head = out_.size();
    out_.resize(head + std::size_t(size));
    for (std::size_t got = 0; got < size;) {
      const ssize_t n = ::read(file, &out_[head + got], std::size_t(size) - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN && ::fcntl(file, F_SETFL, 0) == 0) continue;  // a file system that honours O_NONBLOCK
      if (n < 0) return ended(std::string("read: ") + std::strerror(errno));  // nothing sent: close, the client retries
      if (n == 0) return ended("file shrank while read");  // nothing sent; its Content-Length cannot be kept
      got += std::size_t(n);
    }
    if (!send_all(fd_, out_.data(), out_.size())) return ended("send failed");
    sent_ += size;
    return go_on || ended("ok");
  }

  // put stores the body under a temporary name in the target's directory and renames it into
  // place only once every byte has arrived, so a client that leaves early leaves no file behind.
  bool put(const request& req) {
    if (!req.has_length) return reply(411, req, true);
    const bool body = req.length > 0;
    std::vector<std::string> parts;
    if (const int s = decode_target(req.target, parts)) return reply(s, req, body);
    if (parts.empty()) return reply(403, req, body);
    splice::unique_fd dir(paths_.open_parent(parts));
    if (!dir) return reply(status_for(errno), req, body);
    const std::string temp = ".put." + std::to_string(::getpid()) + "." + std::to_string(++temp_names);
    splice::unique_fd file(
        ::openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!file) return reply(status_for(errno), req, body);
    const auto discard = [&](int status, std::string why) {
      ::unlinkat(dir.get(), temp.c_str(), 0);
      if (status) reply(status, req, true);
      return ended(std::move(why));
    };
    // Bytes of the body that arrived with the head go first; the rest comes straight from the socket.
    const std::uint64_t early = std::min<std::uint64_t>(end_ - begin_, req.length);
    if (req.expect_continue && req.http11 && early < req.length) {
      static constexpr char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!send_all(fd_, go_on, sizeof go_on - 1)) return discard(0, "send failed");
    }
    if (!write_all(file.get(), buf_.data() + begin_, early))
      return discard(status_for(errno), std::string("write: ") + std::strerror(errno));
    begin_ += early;
    received_ += early;
    if (early < req.length) {
      const std::uint64_t rest = req.length - early;
      const splice::result r = splice::copy(file.get(), fd_, rest, poller_, opt_);
      received_ += r.bytes;
      spliced_ |= r.spliced;
      if (r.error) return discard(status_for(r.error.value()), std::string(r.op) + ": " + r.error.message());
      if (r.bytes != rest) return discard(0, "client left inside a body");
    }
    if (::renameat(dir.get(), temp.c_str(), dir.get(), parts.back().c_str()) != 0) {
      const int err = errno;
      ::unlinkat(dir.get(), temp.c_str(), 0);
      return reply(status_for(err), req, false);  // the body was read whole: the stream goes on
    }
    return reply(201, req, false);
  }

  int fd_;
  const server_settings& cfg_;
  const example::beneath& paths_;
  const splice::drain& drain_;
  splice::poll_poller poller_;
  splice::options opt_;
  std::vector<char> buf_;
  std::size_t begin_ = 0, end_ = 0;
  std::string out_;  // the response being sent: a head, and a small body behind it
  unsigned long requests_ = 0;
  std::uint64_t sent_ = 0, received_ = 0;
  bool spliced_ = false;
  std::string how_ = "ok";  // how the connection ended
};

// prepare sets what every accepted socket needs: no Nagle delay between a head and a short body,
// and the idle deadline on each blocking receive and send.
void prepare(int fd, int idle_timeout_s) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const timeval tv{idle_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

int main(int argc, char** argv) {
  const server_settings cfg = parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  const int stop = example::stop_signals();  // before any thread starts: all inherit the mask
  const int root = ::open(cfg.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    std::perror(cfg.root.c_str());
    return 1;
  }
  const example::beneath paths(root, cfg.openat2);
  ::close(paths.open({"."}, O_RDONLY | O_DIRECTORY));  // settles whether openat2 is there
  std::printf("serving %s, paths resolved by %s, bodies %s\n", cfg.root.c_str(), paths.resolver(),
              cfg.userspace ? "through user space" : "by splice::copy");
  // Non-blocking, so that taking what is queued at a graceful stop ends when the queue is empty.
  const int listener = example::listen_on(cfg.listen, SOCK_NONBLOCK);
  const int ended = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // a connection thread ended
  if (listener < 0 || stop < 0 || ended < 0) return 1;

  splice::drain drain;
  std::mutex mu;
  std::map<int, bool> live;  // client fds being served, to cut them at the drain's deadline
  bool cutting = false;      // the deadline came: what ends now was cut (under mu)
  unsigned long next_id = 0, cut = 0;

  // serve accepts one connection and serves it on a thread of its own; false when none was there.
  const auto serve = [&]() {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    // Blocking (accept4 does not pass O_NONBLOCK on): the copies wait inside the system calls.
    const int client = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (client < 0) return errno == ECONNABORTED || errno == EINTR;  // EMFILE and friends: the next poll tries again
    prepare(client, cfg.idle_timeout_s);
    const unsigned long id = ++next_id;
    std::lock_guard<std::mutex> lock(mu);
    live[client] = true;
    try {
      std::thread([&, client, id, who = example::to_string(reinterpret_cast<sockaddr*>(&peer))] {
        connection c(client, cfg, paths, drain);
        const std::string how = c.run();
        std::lock_guard<std::mutex> lock(mu);  // closed under the lock: the cut may not shut a reused fd
        std::printf("conn %lu %s: %lu requests, in %llu bytes, out %llu bytes, spliced %s, %s%s\n", id, who.c_str(),
                    c.requests(), (unsigned long long)c.received(), (unsigned long long)c.sent(),
                    c.spliced() ? "yes" : "no", how.c_str(), cutting ? ", cut by drain" : "");
        std::fflush(stdout);
        cut += cutting ? 1 : 0;
        live.erase(client);
        ::close(client);
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(ended, &one, sizeof one);
      }).detach();
    } catch (const std::system_error&) {  // no thread to be had: this client goes away
      live.erase(client);
      ::close(client);
    }
    return true;
  };

  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (example::on_signal(stop, drain, cfg.drain_timeout_s)) break;
    if (fds[0].revents & POLLIN) serve();
  }
  // A graceful stop: take what is queued, close the listener, and let each connection finish the
  // request under way (next_request() ends those between requests). At the deadline, or on a
  // second signal, what is left is cut: its sockets shut down, which ends a blocking copy or recv.
  if (!drain.requested()) drain.request(std::chrono::steady_clock::now() + std::chrono::seconds(cfg.drain_timeout_s));
  while (serve()) {
  }
  ::close(listener);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (live.empty()) break;
      if (!cutting && std::chrono::steady_clock::now() >= drain.deadline()) {
        cutting = true;
        for (const auto& entry : live) ::shutdown(entry.first, SHUT_RDWR);
      }
    }
    pollfd fds[2] = {{stop, POLLIN, 0}, {ended, POLLIN, 0}};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(drain.deadline() - std::chrono::steady_clock::now());
    if (::poll(fds, 2, cutting ? -1 : int(std::clamp<long long>(ms.count(), 0, 1 << 30))) < 0 && errno != EINTR) break;
    example::on_signal(stop, drain, cfg.drain_timeout_s);
    std::uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(ended, &count, sizeof count);
  }
  example::print_pool();
  std::printf("stopped\n");
  std::lock_guard<std::mutex> lock(mu);
  return example::exit_status(cut);
}
