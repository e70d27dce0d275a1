#include "infra/pg_columns.hpp"

#include <stdexcept>

#include "infra/cached_statement.hpp"
#include "infra/inbound_values.hpp"

namespace wachat::infra {

void pg_columns::check_width(std::size_t values) const {
  if (values != columns_.size()) {
    throw std::logic_error("pg_columns: a row needs one value per column");
  }
}

std::vector<std::string> pg_columns::params() const {
  std::vector<std::string> out;
  out.reserve(columns_.size());
  for (const auto& column : columns_) {
    out.push_back(pg_json(column));
  }
  return out;
}

pqxx::result exec_columns(pqxx::transaction_base& tx, const std::string& name,
                          const std::string& sql, std::initializer_list<const pg_columns*> sets) {
  return exec_columns(tx, name, sql, sets, {});
}

pqxx::result exec_columns(pqxx::transaction_base& tx, const std::string& name, const std::string& sql,
                          std::initializer_list<const pg_columns*> sets, const std::vector<std::string>& extra) {
  std::vector<std::string> params;
  for (const auto* set : sets) {
    for (auto& p : set->params()) {
      params.push_back(std::move(p));
    }
  }
  params.insert(params.end(), extra.begin(), extra.end());
  return exec_cached(tx, name, sql, pqxx::prepare::make_dynamic_params(params));
}

std::string rows_from(std::size_t first, std::size_t count) {
  std::string out = "ROWS FROM (";
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) {
      out += ", ";
    }
    out += "json_array_elements_text($" + std::to_string(first + i) + "::json)";
  }
  return out + ")";
}

std::string first_column_ids() {
  return "ARRAY(SELECT r::bigint FROM json_array_elements_text($1::json) r)";
}

}  // namespace wachat::infra
