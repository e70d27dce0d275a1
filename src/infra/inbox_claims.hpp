#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pqxx {
class connection_base;
class transaction_base;
}

namespace wachat::infra {

struct claimed_event {
  std::int64_t id = 0;
  std::string body;
};

struct event_finish {
  std::int64_t id = 0;
  std::string status;  // processed | rejected | unroutable | failed | pending (try again)
  std::optional<std::string> error;
  std::set<std::string> unroutable_ids;
  std::int64_t owner_key = 0;  // the key it was committed with, for rows processed from memory
};

// The inbox's bookkeeping for the dispatcher. Most rows never need a claim: the intake writer
// commits them owned (owner_key, the key of an advisory lock its connection holds) and its own
// process processes them from memory, then finish_owned(). Rows nobody owns (given back, tried
// again, committed by a process that died) are claimed with FOR UPDATE SKIP LOCKED in a
// transaction that stays open until they are finished, so several processes share the work and
// a dead process's rows come back as soon as its connection is gone.
class inbox_claims {
 public:
  explicit inbox_claims(pqxx::connection_base& conn) : conn_(conn) {}

  // Locks up to `limit` pending rows with ids above `after` (oldest first) in `tx` and returns
  // them, in id order.
  static std::vector<claimed_event> claim(pqxx::transaction_base& tx, std::size_t limit,
                                          std::int64_t after);
  // Records how rows claimed in `tx` ended; they are released when `tx` commits.
  static void finish(pqxx::transaction_base& tx, const std::vector<event_finish>& rows);
  // Records how owned rows ended, each only while its owner_key is still the one it was
  // committed with; in autocommit. Returns how many were written as done (not 'pending').
  std::size_t finish_owned(const std::vector<event_finish>& rows);
  // Gives pending rows owned by `owner_key` back to any claim (their process will not do them).
  std::size_t give_back(const std::vector<std::int64_t>& ids, std::int64_t owner_key);
  // Pending rows whose owner is dead are given back to any claim: a key registered in
  // wa_inbox_owners (migration 020) whose lock is gone (its dispatcher stopped or died, with its
  // process or alone, or its connection broke) and whose holder has not refreshed it for
  // `grace`. Its registration goes with them. `own_key` (the caller's) is left alone.
  std::size_t free_orphans(std::int64_t own_key, std::chrono::seconds grace);
  // As free_orphans, for every owned row older than `grace` whose key is not locked, registered
  // or not (keys of processes older than migration 020). Walks every owned row: at start only.
  std::size_t free_all_orphans(std::int64_t own_key, std::chrono::seconds grace);
  // Takes a session advisory lock on a new random key (62 bits, never 0) on this connection,
  // registers it, and returns the key, or 0 if none could be taken. Rows committed with the key
  // are this process's while the connection lives.
  std::int64_t take_owner_key();
  // Takes the lock on `key` again (after the connection that held it was lost) and registers it.
  bool retake_owner_key(std::int64_t key);
  // Marks `key` seen now (registering it again if a sweep removed it); its holder does this
  // every second, so that a sweep can tell a dead key from one being taken again.
  void refresh_owner_key(std::int64_t key);
  // 'processing' rows whose lease ran out go back to pending. Versions before claims by row lock
  // marked claimed rows 'processing'; a process of such a version may have died holding some.
  std::size_t requeue_stale(std::chrono::seconds lease);
  // Unroutable rows that name a phone number id some site now has go back to pending.
  std::size_t requeue_routable();
  // Failed rows get another chance, bounded by attempts, after a back-off that grows with the
  // square of the attempts (10 s, 40 s, 90 s, ...): a deadlock or a bug fixed by a restart
  // heals by itself, a payload that always fails stops costing work.
  std::size_t requeue_failed(int max_attempts);
  // Age in milliseconds of the oldest pending row nobody owns or, if older, of row
  // `oldest_held` (the oldest the caller holds; 0 for none) while it is pending; 0 when none.
  std::int64_t pending_lag_ms(std::int64_t oldest_held);

 private:
  pqxx::connection_base& conn_;
};

}  // namespace wachat::infra
