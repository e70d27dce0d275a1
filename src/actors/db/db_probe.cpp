#include "actors/db/db_probe.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include "actors/ask.hpp"
#include "actors/db/db_interfaces.hpp"

namespace wachat::actors {
namespace {

struct probe_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  static inline const char* name = "db_probe";
};

db_probe_actor::behavior_type probe_actor(db_probe_actor::stateful_pointer<probe_state> self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](probe_atom) {
        auto& st = self->state;
        try {
          if (!st.conn || !st.conn->is_open()) {
            st.conn = std::make_unique<pqxx::connection>(st.url);
          }
          pqxx::nontransaction nt{*st.conn};
          nt.exec("SELECT 1");
          return true;
        } catch (const std::exception&) {
          st.conn.reset();
          return false;
        }
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

struct db_probe::impl {
  caf::actor_system* sys = nullptr;
  db_probe_actor actor;
};

db_probe::db_probe(caf::actor_system& sys, std::string database_url)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->actor = sys.spawn<caf::detached>(probe_actor, std::move(database_url));
}

db_probe::~db_probe() { caf::anon_send(impl_->actor, stop_atom::value); }

void db_probe::check(std::function<void(bool)> done) {
  // The HTTP side answers its own 2 s timeout first; this one only ends the asking actor.
  ask<bool>(*impl_->sys, impl_->actor, std::chrono::milliseconds(5000), std::move(done),
            [](const std::string&) { return false; }, probe_atom::value);
}

}  // namespace wachat::actors
