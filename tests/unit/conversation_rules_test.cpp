// The conversation actor's rule step (actors::decide): what it hands the store with each unit.
#include <catch2/catch.hpp>
#include <memory>

#include "actors/site/conversation_actor.hpp"

using namespace wachat;

namespace {

constexpr std::int64_t day = 24 * 60 * 60;
constexpr std::int64_t now = 1'800'000'000;

actors::unit_job message_at(std::int64_t ts, bool reaction = false) {
  domain::inbound_unit u;
  u.what = domain::inbound_unit::kind::message;
  u.message.timestamp = ts;
  if (reaction) {
    u.message.reaction = domain::reaction_ref{"wamid.target", "👍"};
  }
  return {1, "acme", std::make_shared<const domain::inbound_unit>(std::move(u))};
}

actors::unit_job status_with(std::string status, std::int64_t code) {
  domain::inbound_unit u;
  u.what = domain::inbound_unit::kind::status;
  u.status.status = std::move(status);
  if (code != 0) {
    u.status.errors.push_back({code, "", "", ""});
  }
  return {1, "acme", std::make_shared<const domain::inbound_unit>(std::move(u))};
}

}  // namespace

TEST_CASE("a customer message opens the window for 24 h from Meta's time; an older one never shrinks it") {
  actors::conversation_state st;
  auto first = message_at(now - 100);
  actors::decide(st, first, now);
  CHECK(first.window_expiry == now - 100 + day);
  auto late_old = message_at(now - 5000);  // delivered late, written earlier
  actors::decide(st, late_old, now);
  CHECK(late_old.window_expiry == now - 100 + day);
  auto newer = message_at(now - 10);
  actors::decide(st, newer, now);
  CHECK(newer.window_expiry == now - 10 + day);
}

TEST_CASE("a timestamp from the future is replaced by the time of receipt; reactions move nothing") {
  actors::conversation_state st;
  auto future = message_at(now + 30 * day);
  actors::decide(st, future, now);
  CHECK(future.window_expiry == now + day);
  auto reaction = message_at(now, true);
  actors::decide(st, reaction, now);
  CHECK(reaction.window_expiry == 0);
  CHECK_FALSE(reaction.closes_window);
}

TEST_CASE("a failed status with 131047 closes the window and forgets the decided expiry") {
  actors::conversation_state st;
  auto m = message_at(now - 100);
  actors::decide(st, m, now);
  auto undeliverable = status_with("failed", 131026);
  actors::decide(st, undeliverable, now);
  CHECK_FALSE(undeliverable.closes_window);
  CHECK(st.window_expiry == now - 100 + day);
  auto closed = status_with("failed", 131047);
  actors::decide(st, closed, now);
  CHECK(closed.closes_window);
  CHECK(st.window_expiry == 0);
  // The next customer message opens it from its own time, not from the forgotten expiry.
  auto older = message_at(now - 2000);
  actors::decide(st, older, now);
  CHECK(older.window_expiry == now - 2000 + day);
}
