#include "domain/status_order.hpp"

#include <array>

namespace wachat::domain {

std::vector<std::string_view> statuses_not_replaced_by(std::string_view next) {
  static constexpr std::array<std::string_view, 5> known = {"sent", "failed", "delivered", "read", "played"};
  std::vector<std::string_view> out;
  const int rank = status_rank(next);
  if (rank == 0) {
    return out;
  }
  for (auto s : known) {
    if (status_rank(s) >= rank) {
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace wachat::domain
