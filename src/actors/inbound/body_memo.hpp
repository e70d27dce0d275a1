#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wachat::actors {

// The bodies of inbox rows this process's intake has just committed, kept by the dispatcher so
// that its claim does not read them back from PostgreSQL: a bytea body crosses the socket as
// hex (two bytes per byte) and is decoded again here, for rows whose bytes are already in
// memory. Bounded in rows and bytes; when full, newer bodies are not kept (the oldest are
// claimed first), and a claim reads what is not held. Not thread-safe: the dispatcher's own.
class body_memo {
 public:
  body_memo(std::size_t max_rows, std::size_t max_bytes) : max_rows_(max_rows), max_bytes_(max_bytes) {}

  // Keeps `body` for row `id` unless full (then the claim reads it).
  void keep(std::int64_t id, std::string body);
  // The first `limit` held ids above `after`, ascending: the rows a claim above `after` would
  // most likely return.
  std::vector<std::int64_t> held_above(std::int64_t after, std::size_t limit) const;
  // The body of row `id`, no longer held; none when it was not held.
  std::optional<std::string> take(std::int64_t id);
  // A claim of at most `limit` rows above `after` returned `ids` (ascending, bodies taken). It
  // returns the lowest pending ids it can lock, so a held row it passed over is locked by
  // another process or no longer pending (and all above `after` when it was not full): its
  // body will not be needed.
  void claimed(std::int64_t after, const std::vector<std::int64_t>& ids, std::size_t limit);

  std::size_t rows() const { return bodies_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  void erase_range(std::int64_t above, std::int64_t below);  // ids in (above, below)

  std::size_t max_rows_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::map<std::int64_t, std::string> bodies_;
};

}  // namespace wachat::actors
