#include "actors/site/conversation_actor.hpp"

#include <caf/all.hpp>
#include <ctime>

#include "domain/inbound_units.hpp"
#include "domain/window.hpp"

namespace wachat::actors {

void decide(conversation_state& st, unit_job& job, std::int64_t now) {
  const auto& u = *job.unit;
  if (u.what == domain::inbound_unit::kind::status) {
    job.closes_window = domain::closes_window(u.status);
    if (job.closes_window) {
      st.window_expiry = 0;  // shut as of the status's time, unless a later message is stored
    }
    return;
  }
  if (u.message.reaction) {
    return;
  }
  st.window_expiry =
      domain::window_expiry_after(st.window_expiry, domain::plausible_timestamp(u.message.timestamp, now));
  job.window_expiry = st.window_expiry;
}

conversation_actor::behavior_type conversation(conversation_actor::stateful_pointer<conversation_state> self,
                                               inbound_writer_actor writer,
                                               conversation_writer_actor changes, site_actor site,
                                               std::string key, std::chrono::milliseconds idle) {
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto rp = self->make_response_promise<domain::unit_outcome>();
        ++self->state.in_flight;
        ++self->state.received;
        decide(self->state, job, static_cast<std::int64_t>(std::time(nullptr)));
        // await, not then: the next unit waits until this one is committed.
        self->request(writer, caf::infinite, write_atom::value, std::move(job))
            .await(
                [=](domain::unit_outcome& o) mutable {
                  --self->state.in_flight;
                  rp.deliver(std::move(o));
                },
                [=](caf::error& e) mutable {
                  --self->state.in_flight;
                  domain::unit_outcome o;
                  o.retryable = true;
                  o.error = "writer unavailable: " + to_string(e);
                  rp.deliver(std::move(o));
                });
        return rp;
      },
      [=](patch_atom, infra::conversation_change& change) -> caf::result<conversation_reply> {
        auto rp = self->make_response_promise<conversation_reply>();
        ++self->state.in_flight;
        ++self->state.received;
        self->request(changes, caf::infinite, write_atom::value, std::move(change))
            .await(
                [=](conversation_reply& r) mutable {
                  --self->state.in_flight;
                  rp.deliver(std::move(r));
                },
                [=](caf::error& e) mutable {
                  --self->state.in_flight;
                  conversation_reply r;
                  r.failed = true;
                  r.error = "conversation writer unavailable: " + to_string(e);
                  rp.deliver(std::move(r));
                });
        return rp;
      },
      [=](stop_atom) { self->quit(); },
      caf::after(idle) >>
          [=] {
            if (self->state.in_flight == 0) {
              // The site decides: units it already forwarded are in our mailbox before its stop.
              self->send(site, idle_atom::value, key, self->id(), self->state.received);
            }
          },
  };
}

}  // namespace wachat::actors
