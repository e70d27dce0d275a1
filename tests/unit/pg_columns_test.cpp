#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "infra/pg_columns.hpp"

using wachat::infra::pg_columns;
using wachat::infra::first_column_ids;
using wachat::infra::rows_from;

TEST_CASE("pg_columns sends each column as one JSON array, rows in the order added") {
  pg_columns c(3);
  CHECK(c.empty());
  c.add(7, "a\"b", nullptr);
  c.add(std::int64_t{9007199254740993}, "", nlohmann::json::array({"x", "y"}));
  CHECK(c.rows() == 2);
  auto p = c.params();
  REQUIRE(p.size() == 3);
  CHECK(nlohmann::json::parse(p[0]) == nlohmann::json::array({7, 9007199254740993}));
  CHECK(p[0] == "[7,9007199254740993]");  // exact, not through a double
  CHECK(nlohmann::json::parse(p[1]) == nlohmann::json::array({"a\"b", ""}));
  CHECK(p[2] == R"([null,["x","y"]])");
}

TEST_CASE("pg_columns refuses a row of the wrong width and replaces invalid UTF-8") {
  pg_columns c(2);
  CHECK_THROWS_AS(c.add(1), std::logic_error);
  CHECK_THROWS_AS(c.add(1, 2, 3), std::logic_error);
  CHECK(c.empty());
  c.add(std::string{"ok\xff"}, 1);
  auto p = c.params();
  CHECK(nlohmann::json::parse(p[0])[0] == "ok\xEF\xBF\xBD");
}

TEST_CASE("rows_from names one json_array_elements_text per parameter, from the first given") {
  CHECK(rows_from(1, 1) == "ROWS FROM (json_array_elements_text($1::json))");
  CHECK(rows_from(4, 2) ==
        "ROWS FROM (json_array_elements_text($4::json), json_array_elements_text($5::json))");
}

TEST_CASE("first_column_ids reads the first parameter's array as bigints") {
  CHECK(first_column_ids() == "ARRAY(SELECT r::bigint FROM json_array_elements_text($1::json) r)");
}
