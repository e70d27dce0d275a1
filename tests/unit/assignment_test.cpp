// Auto-assignment (domain/assignment): who takes a new conversation.
#include <catch2/catch.hpp>

#include "domain/assignment.hpp"

using namespace wachat::domain;

TEST_CASE("the online agent with the fewest active chats under their max takes the conversation") {
  std::vector<agent_load> team{
      {"ann", "online", 3, 5, 100},
      {"bob", "online", 1, 5, 200},
      {"cat", "away", 0, 5, std::nullopt},
      {"dan", "offline", 0, 5, std::nullopt},
      {"eve", "online", 0, 0, std::nullopt},  // max_chats 0: takes none
  };
  CHECK(choose_agent(team) == "bob");
  team[1].active_chats = 5;
  team[1].max_chats = 5;  // full
  CHECK(choose_agent(team) == "ann");
  team[0].active_chats = 5;
  CHECK_FALSE(choose_agent(team));
  CHECK_FALSE(choose_agent({}));
}

TEST_CASE("ties go to whoever waited longest, never-assigned first, then by id") {
  std::vector<agent_load> team{
      {"ann", "online", 1, 5, 300},
      {"bob", "online", 1, 5, 100},
      {"cat", "online", 1, 5, 200},
  };
  CHECK(choose_agent(team) == "bob");
  team.push_back({"dan", "online", 1, 5, std::nullopt});
  CHECK(choose_agent(team) == "dan");
  team.push_back({"abe", "online", 1, 5, std::nullopt});
  CHECK(choose_agent(team) == "abe");
}
