#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

namespace wachat::infra {

// The rows of a set-based statement, sent column by column: parameter $k is one JSON array
// holding column k of every row, and the statement reads them back with rows_from(). PostgreSQL
// parses flat arrays without building a hash table for each row's object as json_to_recordset
// does, and no key is written, escaped or parsed per row: a 15-column row cost 4 µs instead of
// 9.4 µs inside PostgreSQL (bench/RESULTS.md), and the JSON nodes on our side are fewer.
class pg_columns {
 public:
  explicit pg_columns(std::size_t count) : columns_(count, nlohmann::json::array()) {}

  // One value per column, in the columns' order (nullptr for SQL NULL).
  template <typename... Values>
  void add(Values&&... values) {
    check_width(sizeof...(Values));
    std::size_t i = 0;
    (columns_[i++].push_back(std::forward<Values>(values)), ...);
  }

  std::size_t rows() const { return columns_.empty() ? 0 : columns_.front().size(); }
  bool empty() const { return rows() == 0; }

  // The parameters, $1 … $count: JSON texts, invalid UTF-8 replaced (pg_json).
  std::vector<std::string> params() const;

 private:
  void check_width(std::size_t values) const;
  std::vector<nlohmann::json> columns_;
};

// Runs `sql` as the prepared statement `name` (exec_cached) with the columns of `sets`, in
// order, as its parameters.
pqxx::result exec_columns(pqxx::transaction_base& tx, const std::string& name,
                          const std::string& sql, std::initializer_list<const pg_columns*> sets);
// The same with plain text parameters after the columns' (a site, a channel name).
pqxx::result exec_columns(pqxx::transaction_base& tx, const std::string& name, const std::string& sql,
                          std::initializer_list<const pg_columns*> sets, const std::vector<std::string>& extra);

// A column value: the value, or JSON null (SQL NULL) when there is none.
template <typename T>
nlohmann::json nullable(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// "ROWS FROM (json_array_elements_text($first::json), …)" over `count` parameters: a row per
// array element, each column as text (SQL NULL for JSON null), to be named with AS t(…) and cast.
std::string rows_from(std::size_t first, std::size_t count);

// "ARRAY(SELECT r::bigint FROM json_array_elements_text($1::json) r)": the ids in the first
// column, for `WHERE x.id = ANY(...)` beside the join on them. It gives an UPDATE ... FROM a
// primary-key path into its table; as a plain join the planner scanned the whole table.
std::string first_column_ids();

}  // namespace wachat::infra
