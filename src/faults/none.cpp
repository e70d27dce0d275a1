// The production build: fault points do nothing (see actors/supervision/fault_point.hpp).
#include "actors/supervision/fault_point.hpp"

namespace wachat::actors {

void fault_point(std::string_view) {}

}  // namespace wachat::actors
