#include "actors/db/db_probe.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"

namespace wachat::actors {
namespace {
using probe_callback = std::function<void(bool)>;
}
}  // namespace wachat::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::probe_callback)

namespace wachat::actors {
namespace {

struct probe_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  static inline const char* name = "db_probe";
};

caf::behavior probe_actor(caf::stateful_actor<probe_state>* self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](probe_atom, probe_callback& done) {
        auto& st = self->state;
        bool ok = false;
        try {
          if (!st.conn || !st.conn->is_open()) {
            st.conn = std::make_unique<pqxx::connection>(st.url);
          }
          pqxx::nontransaction nt{*st.conn};
          nt.exec("SELECT 1");
          ok = true;
        } catch (const std::exception&) {
          st.conn.reset();
        }
        done(ok);
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

struct db_probe::impl {
  caf::actor actor;
};

db_probe::db_probe(caf::actor_system& sys, std::string database_url)
    : impl_(std::make_unique<impl>()) {
  impl_->actor = sys.spawn<caf::detached>(probe_actor, std::move(database_url));
}

db_probe::~db_probe() { caf::anon_send(impl_->actor, stop_atom::value); }

void db_probe::check(std::function<void(bool)> done) {
  caf::anon_send(impl_->actor, probe_atom::value, probe_callback{std::move(done)});
}

}  // namespace wachat::actors
