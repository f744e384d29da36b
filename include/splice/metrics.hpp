// SPDX-License-Identifier: MIT
#ifndef SPLICE_METRICS_HPP_
#define SPLICE_METRICS_HPP_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "detail/tally.hpp"
#include "pipe_pool.hpp"

namespace splice_lib {

/// metrics is a snapshot of what the process's copies and relays have done, for a running proxy to
/// expose without stopping: read() takes one, prometheus() renders it in the Prometheus text
/// exposition format.
///
/// Every copier and duplex counts unless its options::metrics is false: at the end of each
/// advance() that moved bytes (bytes by direction, spliced or by result::fallback's word), at each
/// step::later (a wait for the rate limit), and when a copy or a relay ends (the relay closed, the
/// error by result::op). The counts go into a shard of relaxed atomics that belongs to the calling
/// thread, so counting takes no lock and no locked instruction; read() sums the shards under one
/// mutex, and a thread that exits folds its shard into the sum first, so its counts stay.
/// Thread-safe.
struct metrics {
  /// A count under one label value: a word of result::fallback, or an op.
  struct labelled {
    const char* word = "";
    std::uint64_t value = 0;
  };

  std::uint64_t connections_open = 0;   ///< relays (two-way duplexes) not yet ended
  std::uint64_t connections_total = 0;  ///< relays made
  std::uint64_t bytes_up = 0;           ///< bytes written a to b, and by one-way copies
  std::uint64_t bytes_down = 0;         ///< bytes written b to a
  std::uint64_t spliced_bytes = 0;      ///< of bytes_up + bytes_down, those a kernel route moved
  /// The rest, by result::fallback's word ("other": a word not on README's list).
  std::array<labelled, detail::fallback_count> userspace_bytes{};
  std::uint64_t rate_waits = 0;   ///< advance() calls that returned step::later
  std::uint64_t mirrors_cut = 0;  ///< mirrors cut off (mirror_cut())
  /// Copies and relays that ended in an error, by the op (result::op; a relay counts once, by its
  /// first error; "other": an op not on the list).
  std::array<labelled, detail::error_op_count> errors{};
  std::size_t pipes_in_use = 0;  ///< the pool's pipes held by copies
  std::size_t pipes_idle = 0;    ///< the pool's pipes waiting for reuse
  /// Capacity the pool may still give its pipes (pipe_pool::max_bytes less what they hold);
  /// SIZE_MAX where there is no bound (a privileged process).
  std::size_t pipe_budget_left = 0;

  /// Returns the counts now, with the pipes of pool (the shared one by default).
  static metrics read(const pipe_pool& pool = pipe_pool::shared()) noexcept {
    std::uint64_t v[detail::slot_count];
    detail::tallies::process().sum(v);
    metrics m;
    m.connections_total = v[detail::opened];
    // A relay opened on one thread and closed on another counts in two shards, which the sum reads
    // at two instants: for a moment the close may be seen without the open.
    m.connections_open = v[detail::opened] > v[detail::closed] ? v[detail::opened] - v[detail::closed] : 0;
    m.bytes_up = v[detail::up_bytes], m.bytes_down = v[detail::down_bytes];
    m.spliced_bytes = v[detail::spliced_bytes];
    for (std::size_t i = 0; i < detail::fallback_count; ++i)
      m.userspace_bytes[i] = {detail::fallback_words[i], v[detail::user_bytes + i]};
    m.rate_waits = v[detail::rate_waits], m.mirrors_cut = v[detail::mirrors_cut];
    for (std::size_t i = 0; i < detail::error_op_count; ++i) m.errors[i] = {detail::error_ops[i], v[detail::errors + i]};
    const auto s = pool.stats();
    m.pipes_in_use = s.in_use, m.pipes_idle = s.idle;
    const std::size_t cap = pool.max_bytes();
    m.pipe_budget_left = cap == SIZE_MAX ? SIZE_MAX : cap > s.bytes_held ? cap - s.bytes_held : 0;
    return m;
  }

  /// mirror_cut counts one mirror cut off (one that fell behind or failed). mirror.hpp counts its
  /// own cuts; this is for a mirror of the caller's making. Any thread, no lock.
  static void mirror_cut() noexcept { detail::add_count(detail::this_shard(), detail::mirrors_cut, 1); }

  /// Returns the bytes moved through user space for reason (a result::fallback word; "" for all).
  std::uint64_t userspace(const char* reason = "") const noexcept {
    std::uint64_t n = 0;
    for (const auto& l : userspace_bytes)
      if (!*reason || std::strcmp(reason, l.word) == 0) n += l.value;
    return n;
  }
  /// Returns the copies and relays that ended in an error from op ("" for all).
  std::uint64_t errors_of(const char* op = "") const noexcept {
    std::uint64_t n = 0;
    for (const auto& l : errors)
      if (!*op || std::strcmp(op, l.word) == 0) n += l.value;
    return n;
  }

  /// prometheus renders the snapshot in the Prometheus text exposition format (version 0.0.4):
  /// one family per quantity, each with # HELP and # TYPE, names prefixed splice_, counters ending
  /// in _total, byte quantities in _bytes; every label value of the fixed lists is present, zero or
  /// not. Serve it as "text/plain; version=0.0.4". May throw std::bad_alloc.
  std::string prometheus() const {
    std::string out;
    out.reserve(4096);
    family(out, "connections_open", "gauge", "Relays (two-way duplexes) running now.");
    sample(out, "connections_open", "", "", connections_open);
    family(out, "connections_total", "counter", "Relays started.");
    sample(out, "connections_total", "", "", connections_total);
    family(out, "bytes_total", "counter", "Bytes written to a destination: up is a to b (and one-way copies), down is b to a.");
    sample(out, "bytes_total", "direction", "up", bytes_up);
    sample(out, "bytes_total", "direction", "down", bytes_down);
    family(out, "spliced_bytes_total", "counter", "Bytes moved in the kernel (splice, sendfile, copy_file_range).");
    sample(out, "spliced_bytes_total", "", "", spliced_bytes);
    family(out, "userspace_bytes_total", "counter", "Bytes moved through user space, by why the copy fell back.");
    for (const auto& l : userspace_bytes) sample(out, "userspace_bytes_total", "reason", l.word, l.value);
    family(out, "pipes", "gauge", "Pipes of the pipe pool, held by copies (in_use) or waiting for reuse (idle).");
    sample(out, "pipes", "state", "idle", pipes_idle);
    sample(out, "pipes", "state", "in_use", pipes_in_use);
    family(out, "pipe_budget_bytes", "gauge", "Pipe capacity the pool may still make (+Inf: no bound).");
    if (pipe_budget_left == SIZE_MAX) out += "splice_pipe_budget_bytes +Inf\n";
    else sample(out, "pipe_budget_bytes", "", "", pipe_budget_left);
    family(out, "rate_waits_total", "counter", "Times a copy waited for its rate limit (step::later).");
    sample(out, "rate_waits_total", "", "", rate_waits);
    family(out, "mirrors_cut_total", "counter", "Mirrors cut off.");
    sample(out, "mirrors_cut_total", "", "", mirrors_cut);
    family(out, "errors_total", "counter", "Copies and relays ended by an error, by the call that failed.");
    for (const auto& l : errors) sample(out, "errors_total", "op", l.word, l.value);
    return out;
  }

 private:
  // family writes the # HELP and # TYPE lines of splice_<name>. help holds no backslash or newline.
  static void family(std::string& out, const char* name, const char* type, const char* help) {
    out.append("# HELP splice_").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE splice_").append(name).append(" ").append(type).append("\n");
  }
  // sample writes one line, splice_<name>{label="value"} n; no label when label is "". Label
  // values are the fixed words, which hold no quote, backslash or newline.
  static void sample(std::string& out, const char* name, const char* label, const char* value, std::uint64_t n) {
    out.append("splice_").append(name);
    if (*label) out.append("{").append(label).append("=\"").append(value).append("\"}");
    out.append(" ").append(std::to_string(n)).append("\n");
  }
};

}  // namespace splice_lib

#endif  // SPLICE_METRICS_HPP_
