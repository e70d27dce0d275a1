#include <catch2/catch.hpp>
#include <string_view>
#include <vector>

#include "domain/status_order.hpp"

using namespace wachat::domain;

TEST_CASE("status ranks follow sent < failed < delivered < read < played") {
  CHECK(status_rank("sent") < status_rank("failed"));
  CHECK(status_rank("failed") < status_rank("delivered"));
  CHECK(status_rank("delivered") < status_rank("read"));
  CHECK(status_rank("read") < status_rank("played"));
  CHECK(status_rank("deleted") == 0);
  CHECK(status_rank("") == 0);
  CHECK(status_rank("queued") == 0);
  CHECK(status_rank("READ") == 0);
  STATIC_REQUIRE(status_rank("played") == 5);
}

TEST_CASE("a status only ever moves up") {
  CHECK(status_may_advance("sent", "delivered"));
  CHECK(status_may_advance("sent", "read"));  // delivered may be skipped
  CHECK(status_may_advance("failed", "delivered"));  // delivered can follow failed
  CHECK(status_may_advance("read", "played"));
  CHECK(status_may_advance("queued", "sent"));
  CHECK(status_may_advance("queued", "failed"));
  CHECK(status_may_advance("", "sent"));

  CHECK_FALSE(status_may_advance("read", "delivered"));  // read arrived before delivered
  CHECK_FALSE(status_may_advance("read", "sent"));
  CHECK_FALSE(status_may_advance("delivered", "failed"));
  CHECK_FALSE(status_may_advance("delivered", "delivered"));
  CHECK_FALSE(status_may_advance("sent", "deleted"));
  CHECK_FALSE(status_may_advance("queued", "deleted"));
}

TEST_CASE("the statuses a new one must not replace are those ranked as high or higher") {
  using list = std::vector<std::string_view>;
  CHECK(statuses_not_replaced_by("sent") == list{"sent", "failed", "delivered", "read", "played"});
  CHECK(statuses_not_replaced_by("failed") == list{"failed", "delivered", "read", "played"});
  CHECK(statuses_not_replaced_by("delivered") == list{"delivered", "read", "played"});
  CHECK(statuses_not_replaced_by("read") == list{"read", "played"});
  CHECK(statuses_not_replaced_by("played") == list{"played"});
  // Unknown statuses replace nothing; local states ("queued", "received") are never in the list,
  // so any known status replaces them.
  CHECK(statuses_not_replaced_by("deleted").empty());
  CHECK(statuses_not_replaced_by("queued").empty());
  for (std::string_view current : {"queued", "received", "sent", "failed", "delivered", "read", "played", "x"}) {
    for (std::string_view next : {"sent", "failed", "delivered", "read", "played"}) {
      auto kept = statuses_not_replaced_by(next);
      bool replaced = std::find(kept.begin(), kept.end(), current) == kept.end();
      INFO(current << " -> " << next);
      CHECK(replaced == status_may_advance(current, next));
    }
  }
}
