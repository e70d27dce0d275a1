#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <utility>

namespace wachat::infra {

// The inbound path's connections (writers, dispatcher) and the event hub's run only statements
// driven by primary keys, unique indexes and TIDs. Sequential scans are priced out on them, so
// that a plan made while a table is small (a generic plan above all) still probes instead of
// walking the table once it has grown. Nothing becomes impossible: where no index applies,
// PostgreSQL still scans.
inline std::unique_ptr<pqxx::connection> connect_for_probes(const std::string& url) {
  auto c = std::make_unique<pqxx::connection>(url);
  // set_variable, not a plain SET: libpqxx applies it again when it reconnects by itself.
  c->set_variable("enable_seqscan", "off");
  // A plan that must scan anyway (a small table without an index to use, pg_locks) is then
  // priced at 10^10 and crosses jit_above_cost: PostgreSQL compiled it with LLVM each time it
  // ran, 110-130 ms for a statement that takes 0.3 ms (bench/RESULTS.md, set 13). These are
  // short statements: JIT never pays here.
  c->set_variable("jit", "off");
  return c;
}

// Runs `sql` as the prepared statement `name` of the transaction's connection: defined on first
// use (libpqxx registers it with the server lazily, once per connection), then only bound and
// executed. Parsing, analysing and planning every batch statement anew was about a tenth of the
// machine's CPU at 2,000 messages/s (bench/RESULTS.md).
//
// Only for statements that have one sensible plan whatever the table statistics (index probes
// through LATERAL ... LIMIT 1, TID scans, primary keys), or that run on a connection from
// connect_for_probes: after five runs PostgreSQL may settle on a generic plan, made with the
// statistics of the moment, possibly of a young table.
// A name must always stand for the same text; libpqxx rejects a redefinition.
template <typename... Args>
pqxx::result exec_cached(pqxx::transaction_base& tx, const std::string& name,
                         const std::string& sql, Args&&... args) {
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace wachat::infra
