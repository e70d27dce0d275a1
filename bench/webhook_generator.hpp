#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wachat::bench {

// Makes distinct, Meta-shaped text-message webhooks of roughly a given size, fast enough that
// the load generator does not steal the CPU it is trying to measure (2 cores shared with the
// server and PostgreSQL). The document is built once with nlohmann::json around fixed-width
// placeholders; each body is then the template with digits written over those placeholders,
// which keeps it valid JSON without escaping anything by hand.
class webhook_generator {
 public:
  // run_id must match [A-Za-z0-9_-]{1,64} (checked: it is searched for in stored bodies).
  // With `visitors` > 0 (at most 10^8), body `seq` comes from customer `seq % visitors`: a
  // fixed crowd writing again and again. With 0, nearly every body is a new customer.
  webhook_generator(std::string run_id, std::size_t approx_bytes, std::uint64_t visitors = 0);

  // Body number `seq`: its wamid is "wamid.<run_id>.<seq, 12 digits>", its sender is derived
  // from seq, its timestamp is `unix_time`. Writes into `out`, reusing its capacity.
  void render(std::uint64_t seq, std::int64_t unix_time, std::string& out) const;
  // The sender's WhatsApp id in body `seq` ("55119" and 8 digits).
  std::string wa_id(std::uint64_t seq) const;

  // Appears in every body this generator makes, and in nothing of another run.
  std::string run_marker() const;
  const std::string& run_id() const { return run_id_; }
  std::size_t body_size() const { return template_.size(); }

  static bool valid_run_id(const std::string& run_id);

 private:
  std::string build_template(std::size_t filler_bytes) const;
  void locate_placeholders();

  std::uint64_t phone_tail(std::uint64_t seq) const;

  std::string run_id_;
  std::uint64_t visitors_ = 0;
  std::string template_;
  std::vector<std::size_t> seq_at_;    // 12-digit sequence number
  std::vector<std::size_t> phone_at_;  // 8-digit tail of the customer's phone number
  std::vector<std::size_t> time_at_;   // 10-digit unix timestamp
};

}  // namespace wachat::bench
